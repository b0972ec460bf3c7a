//! Parquet sources (SPEC §2): money as decimals of any scale up to 2 or integers is read
//! exactly; a binary float column is never accepted, each of its records is a problem.

use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{
    ArrayRef, AsArray, Decimal128Array, Float64Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use hedui_connectors::idnum::check_char;
use hedui_connectors::{schema, Connector, FilesConnector, LoadOptions, LoadedTable};

fn write(dir: &std::path::Path, amount: ArrayRef) {
    let id = format!(
        "{}{}",
        "11010519491231002",
        check_char(b"11010519491231002")
    );
    let n = amount.len();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id_number", DataType::Utf8, false),
        Field::new("period", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("amount", amount.data_type().clone(), true),
    ]));
    let cols: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![id.as_str(); n])),
        Arc::new(StringArray::from(vec!["2026-01"; n])),
        Arc::new(StringArray::from(vec!["wage"; n])),
        amount,
    ];
    let batch = RecordBatch::try_new(schema.clone(), cols).unwrap();
    let file = std::fs::File::create(dir.join("hr_income.parquet")).unwrap();
    let mut w = ArrowWriter::try_new(file, schema, None).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
}

async fn load(dir: &std::path::Path) -> LoadedTable {
    let opts = LoadOptions {
        reference_date: NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(),
    };
    FilesConnector::new(dir)
        .unwrap()
        .load(schema::table("hr_income").unwrap(), opts)
        .await
        .unwrap()
        .unwrap()
}

fn amounts(t: &LoadedTable) -> Vec<i128> {
    t.batches
        .iter()
        .flat_map(|b| {
            b.column(3)
                .as_primitive::<Decimal128Type>()
                .values()
                .to_vec()
        })
        .collect()
}

#[tokio::test]
async fn decimals_and_integers_are_exact() {
    let dir = tempfile::tempdir().unwrap();
    let dec = Decimal128Array::from(vec![68271, 5])
        .with_precision_and_scale(12, 1)
        .unwrap();
    write(dir.path(), Arc::new(dec));
    let t = load(dir.path()).await;
    assert!(t.problems.is_empty());
    assert_eq!(amounts(&t), [682710, 50]);

    write(dir.path(), Arc::new(Int64Array::from(vec![3000])));
    assert_eq!(amounts(&load(dir.path()).await), [300000]);
}

#[tokio::test]
async fn binary_floats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), Arc::new(Float64Array::from(vec![68.27, 1.0])));
    let t = load(dir.path()).await;
    assert_eq!(t.rows(), 0);
    let got: Vec<(u64, &str, &str)> = t
        .problems
        .iter()
        .map(|p| (p.row, p.field.as_str(), p.reason))
        .collect();
    assert_eq!(
        got,
        [(1, "amount", "invalid_type"), (2, "amount", "invalid_type")]
    );
    assert!(
        t.problems[0]
            .message
            .contains("exact decimals are required"),
        "{}",
        t.problems[0].message
    );
}

/// A delivery of many row groups is validated part by part on every core: the records,
/// their order and row numbers, and the malformed records are exactly those of one pass
/// (rows counted from 1 across groups, problems in file order).
#[tokio::test]
async fn row_groups_read_in_parallel_keep_rows_and_problems_in_file_order() {
    let dir = tempfile::tempdir().unwrap();
    let id = format!(
        "{}{}",
        "11010519491231002",
        check_char(b"11010519491231002")
    );
    let n = 23;
    // Rows 5, 12 and 22 are malformed (a period that is not a month).
    let periods: Vec<&str> = (1..=n)
        .map(|r| {
            if [5, 12, 22].contains(&r) {
                "soon"
            } else {
                "2026-01"
            }
        })
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id_number", DataType::Utf8, false),
        Field::new("period", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("amount", DataType::Int64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from(vec![id.as_str(); n])),
            Arc::new(StringArray::from(periods)),
            Arc::new(StringArray::from(vec!["wage"; n])),
            Arc::new(Int64Array::from((1..=n as i64).collect::<Vec<_>>())),
        ],
    )
    .unwrap();
    let props = datafusion::parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(4))
        .build();
    let file = std::fs::File::create(dir.path().join("hr_income.parquet")).unwrap();
    let mut w = ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();

    let t = load(dir.path()).await;
    assert_eq!(t.rows_read, 23);
    let problems: Vec<u64> = t.problems.iter().map(|p| p.row).collect();
    assert_eq!(problems, [5, 12, 22]);
    assert!(t.problems.iter().all(|p| p.field == "period"));
    // Each good record keeps its row number, in file order, and its own amount.
    let rows: Vec<i64> = t
        .batches
        .iter()
        .flat_map(|b| {
            b.column(b.schema().index_of("src_row").unwrap())
                .as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                .values()
                .to_vec()
        })
        .collect();
    let want: Vec<i64> = (1..=23).filter(|r| ![5, 12, 22].contains(r)).collect();
    assert_eq!(rows, want);
    assert_eq!(
        amounts(&t),
        want.iter()
            .map(|r| i128::from(*r) * 100)
            .collect::<Vec<_>>()
    );
}
