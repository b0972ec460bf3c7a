//! A department's own field names and codes are read through its mapping (SPEC §9): the
//! files connector yields canonical records, and an unmapped code is a malformed record.

use chrono::NaiveDate;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Decimal128Type;
use hedui_connectors::mapping::SourceMapping;
use hedui_connectors::{schema, Connector, FilesConnector, LoadOptions};

fn mapping() -> SourceMapping {
    let text = r#"
        [fields.hr_income]
        id_number = "SFZH"
        period = "FFNY"
        kind = "SRLX"
        amount = "FFJE"
        [codes.hr_income.kind]
        "01" = "wage"
        "02" = "pension"
    "#;
    toml::from_str(text).unwrap()
}

fn values(b: &[RecordBatch], col: usize) -> Vec<String> {
    b.iter()
        .flat_map(|b| {
            b.column(col)
                .as_string::<i32>()
                .iter()
                .map(|v| v.unwrap_or("").to_owned())
                .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn department_fields_and_codes_become_canonical() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hr_income.csv"),
        "SFZH,FFNY,SRLX,FFJE,payer\n\
         11010519491231002X,2026-01,01,3000.50,宇通\n\
         11010519491231002X,2026-02,02,1200,\n\
         11010519491231002X,2026-03,09,100,\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tax_income.jsonl"),
        "{\"id_number\":\"11010519491231002X\",\"period\":\"2026-01\",\"category\":\"wage\",\"income\":3000.5}\n",
    )
    .unwrap();
    let mapping = mapping();
    mapping.validate(&["hr_income".into()]).unwrap();
    let c = FilesConnector::new(dir.path())
        .unwrap()
        .with_mapping(mapping);
    let opts = LoadOptions {
        reference_date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
    };
    let hr = c
        .load(schema::table("hr_income").unwrap(), opts)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hr.rows(), 2);
    assert_eq!(values(&hr.batches, 2), ["wage", "pension"]);
    let amounts: Vec<i128> = hr
        .batches
        .iter()
        .flat_map(|b| {
            b.column(3)
                .as_primitive::<Decimal128Type>()
                .values()
                .to_vec()
        })
        .collect();
    assert_eq!(amounts, [300050, 120000]);
    // An unknown department code is a malformed record, reported with its raw value.
    assert_eq!(hr.problems.len(), 1);
    assert_eq!(
        (
            hr.problems[0].row,
            hr.problems[0].field.as_str(),
            hr.problems[0].reason
        ),
        (4, "kind", "invalid_enum")
    );
    assert_eq!(hr.problems[0].value, "09");
    // Tables without a mapping are read under their canonical names.
    let tax = c
        .load(schema::table("tax_income").unwrap(), opts)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tax.rows(), 1);
}
