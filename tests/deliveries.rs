//! Source deliveries as departments really send them (SPEC §2): empty, header-only and
//! all-malformed tables, a folder named like a table file, stray files in a table
//! folder, duplicated headers and negative money — and that no output a person reads
//! carries a full ID number.

mod support;

use hedui::cli::SourceFormat;
use serde_json::Value;
use support::fixture::*;

fn summary(fx: &Fixture) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fx.path("out/summary.json")).unwrap()).unwrap()
}

fn header_of(fx: &Fixture, file: &str) -> String {
    let text = std::fs::read_to_string(fx.path(file)).unwrap();
    text.lines().next().unwrap().to_owned()
}

/// A header-only `financial.csv`, an empty one and one of malformed records only each
/// make `bank` missing: H001, eligible with the real file, becomes incomplete — an empty
/// export is never proof that nobody owns anything.
#[test]
fn empty_deliveries_count_as_absent() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    assert_eq!(fx.check().status.code(), Some(0));
    assert_eq!(fx.results()[0]["verdict"], "eligible");
    let header = header_of(&fx, "sources/financial.csv");
    let p = people();
    for (name, body) in [
        ("header-only", format!("{header}\n")),
        ("empty", String::new()),
        (
            "all malformed",
            format!("{header}\n{},银行,1,deposit,N/A,2026-10-01\n", p.a),
        ),
    ] {
        std::fs::write(fx.path("sources/financial.csv"), &body).unwrap();
        let out = fx.check();
        assert_eq!(out.status.code(), Some(0), "{name}: {}", stderr(&out));
        let r = &fx.results()[0];
        assert_eq!(r["verdict"], "incomplete", "{name}");
        assert_eq!(r["missing_sources"], serde_json::json!(["bank"]), "{name}");
        let s = summary(&fx);
        assert_eq!(s["sources"]["bank"]["status"], "missing", "{name}");
        assert_eq!(
            s["sources"]["bank"]["tables"]["financial"]["absent_because"], "no usable record",
            "{name}"
        );
        assert!(
            stderr(&out).contains("financial.csv holds no usable record"),
            "{name}: {}",
            stderr(&out)
        );
    }
}

/// A folder called `residents.csv` is an error naming it, never a silently absent table.
#[test]
fn a_folder_named_like_a_table_file_is_an_error() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    std::fs::remove_file(fx.path("sources/residents.csv")).unwrap();
    std::fs::create_dir(fx.path("sources/residents.csv")).unwrap();
    let out = fx.check();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("residents.csv: it is named like a table file but is not a file"),
        "{}",
        stderr(&out)
    );
}

/// A stray file in a `TABLE/` folder is listed in data_quality.jsonl and the run
/// completes with the table's real files.
#[test]
fn a_stray_file_in_a_table_folder_is_a_data_quality_problem() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    assert_eq!(fx.check().status.code(), Some(0));
    let before = fx.results();
    std::fs::create_dir(fx.path("sources/hr_income")).unwrap();
    std::fs::rename(
        fx.path("sources/hr_income.csv"),
        fx.path("sources/hr_income/2026.csv"),
    )
    .unwrap();
    std::fs::write(fx.path("sources/hr_income/说明.txt"), "导出说明").unwrap();
    let out = fx.check();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(verdicts(&fx.results()), verdicts(&before));
    let stray: Vec<Value> = fx
        .jsonl("data_quality.jsonl")
        .into_iter()
        .filter(|p| p["reason"] == "unsupported_file")
        .collect();
    assert_eq!(stray.len(), 1);
    assert_eq!(stray[0]["file"], "hr_income/说明.txt");
    assert_eq!(stray[0]["table"], "hr_income");
}

/// A source header that names a column twice is refused, naming the column.
#[test]
fn duplicated_source_headers_are_refused() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let text = std::fs::read_to_string(fx.path("sources/vehicles.csv")).unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap().replace("plate", "value");
    let rest: Vec<&str> = lines.collect();
    std::fs::write(
        fx.path("sources/vehicles.csv"),
        format!("{header}\n{}\n", rest.join("\n")),
    )
    .unwrap();
    let out = fx.check();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("vehicles.csv: the header names value more than once"),
        "{}",
        stderr(&out)
    );
}

/// A negative deposit is a malformed record, not a debt that lowers the household's
/// assets: H001 keeps its 5000.50 and the record is listed.
#[test]
fn negative_money_is_malformed() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let p = people();
    let mut text = std::fs::read_to_string(fx.path("sources/financial.csv")).unwrap();
    let rows = text.lines().count() - 1;
    text.push_str(&format!(
        "{},农业银行,NEG-1,deposit,-50000.00,2026-10-01\n",
        p.a
    ));
    std::fs::write(fx.path("sources/financial.csv"), text).unwrap();
    let out = fx.check();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.results()[0]["financial_assets"], "5000.50");
    let neg: Vec<Value> = fx
        .jsonl("data_quality.jsonl")
        .into_iter()
        .filter(|p| p["table"] == "financial")
        .collect();
    assert_eq!(neg.len(), 1);
    // The row a spreadsheet shows: the header is row 1.
    assert_eq!(neg[0]["row"], rows as u64 + 2);
    assert_eq!(neg[0]["field"], "balance");
    assert_eq!(neg[0]["reason"], "out_of_range");
    assert!(neg[0]["message"].as_str().unwrap().contains("negative"));
}

/// No output a person reads holds a full ID number: a CSV row with too many fields and
/// a JSON Lines line that is no object (both kept as raw text), a non-text ID quoted by
/// the parser, and a rejected applicant with a future birth date — data_quality.jsonl,
/// rejected.jsonl, summary.json and report.html show masks only (results.jsonl carries
/// the IDs the verification rests on, by SPEC §7).
#[test]
fn no_output_for_people_holds_a_full_id_number() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let p = people();
    let mut hr = std::fs::read_to_string(fx.path("sources/hr_income.csv")).unwrap();
    hr.push_str(&format!("{},2026-01,wage,100,公司,多余字段\n", p.a));
    std::fs::write(fx.path("sources/hr_income.csv"), hr).unwrap();
    std::fs::remove_file(fx.path("sources/vehicles.csv")).unwrap();
    std::fs::write(
        fx.path("sources/vehicles.jsonl"),
        format!(
            "[\"{}\", \"豫A12345\"]\n{{\"id_number\": {}, \"plate\": \"豫A1\", \"vehicle_type\": \"car\", \"value\": \"1\", \"registered_on\": \"2020-01-01\"}}\n",
            p.b,
            &p.c[..17]
        ),
    )
    .unwrap();
    // Born in 2030: a future birth date, whose digits the report must not show.
    let future = id("410184", "20300101", 1);
    let mut batch = std::fs::read(fx.path("applicants.csv")).unwrap();
    let row = format!("H010,410184,城市,低保,AUTH-10,{future},钱十,本人\n");
    let (line, _, _) = encoding_rs::GBK.encode(&row);
    batch.extend_from_slice(&line);
    std::fs::write(fx.path("applicants.csv"), batch).unwrap();

    let out = fx.check();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let dq = std::fs::read_to_string(fx.path("out/data_quality.jsonl")).unwrap();
    assert!(
        dq.contains("invalid_record") && dq.contains("invalid_json"),
        "{dq}"
    );
    let ids = [&p.a, &p.b, &p.c, &p.dd, &p.e, &future];
    for file in [
        "data_quality.jsonl",
        "rejected.jsonl",
        "summary.json",
        "report.html",
    ] {
        let text = std::fs::read_to_string(fx.path("out").join(file)).unwrap();
        for id in ids {
            assert!(!text.contains(id.as_str()), "{file} holds {id}");
            // Nor the first 17 characters of one (an ID without its check character).
            assert!(!text.contains(&id[..17]), "{file} holds most of {id}");
        }
        assert!(
            !text.contains("20300101"),
            "{file} shows the hidden birth date"
        );
    }
    assert!(!stderr(&out).contains(p.a.as_str()));
}
