//! Integration tests of the `hedui` binary on fixture folders made by the tests:
//! applicant batches in GBK CSV, XLSX and JSON Lines; sources in CSV, Parquet and JSON
//! Lines; a missing source; malformed records; verdicts, flags, evidence, rejections,
//! exit codes and error messages as a user sees them.

mod support;

use hedui::cli::SourceFormat;
use serde_json::Value;
use support::fixture::*;

/// A GBK batch with Chinese headers is verified: verdicts, figures, flags and evidence.
#[test]
fn gbk_batch_gets_verdicts_with_evidence() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let out = fx.check();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let results = fx.results();
    assert_eq!(
        verdicts(&results),
        [
            ("H001".into(), "eligible".into()),
            ("H002".into(), "ineligible".into()),
            ("H003".into(), "review".into()),
            ("H004".into(), "ineligible".into()),
        ]
    );
    let h1 = &results[0];
    // Wage 1000/month from hr and tax counted once: 12000 / (2 members × 12 months).
    assert_eq!(h1["per_capita_monthly_income"], "500.00");
    assert_eq!(h1["financial_assets"], "5000.50");
    assert_eq!(h1["standard_monthly"], "720.00");
    assert_eq!(h1["members"], 2);
    assert_eq!(h1["missing_sources"], serde_json::json!([]));
    // Two distinct homes held by one member, with both certificate rows as evidence.
    let h2 = &results[1];
    // One member holding 50 + 30 m² also exceeds 40 m² per capita (a review flag).
    assert_eq!(
        flags(h2),
        [
            "residential_area_over_limit",
            "residential_properties_over_limit"
        ]
    );
    assert_eq!(
        (
            h2["flags"][0]["value"].clone(),
            h2["flags"][0]["limit"].clone()
        ),
        ("80.00".into(), "40.00".into())
    );
    let f = &h2["flags"][1];
    assert_eq!(
        (
            f["value"].clone(),
            f["limit"].clone(),
            f["severity"].clone()
        ),
        (2.into(), 1.into(), "disqualifying".into())
    );
    let ev: Vec<(String, i64)> = f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["file"].as_str().unwrap().to_owned(),
                e["row"].as_i64().unwrap(),
            )
        })
        .collect();
    // Rows as a spreadsheet shows the file: the header is row 1.
    assert_eq!(ev, [("property.csv".into(), 4), ("property.csv".into(), 5)]);
    assert_eq!(f["evidence"][0]["record"]["cert_no"], "C-2");
    assert_eq!(f["evidence"][0]["record"]["share"], "1.00");
    // The 15-digit legacy ID was converted and matched the deceased registration.
    let h3 = &results[2];
    assert_eq!(h3["flags"][0]["rule"], "member_deceased");
    assert_eq!(h3["flags"][0]["member"], people().dd);
    let h4 = &results[3];
    assert_eq!(flags(h4), ["vehicle_owned"]);
    assert_eq!(h4["flags"][0]["value"], "50000.00");
    assert_eq!(h4["flags"][0]["limit"], "0.00");
}

/// Rejections name the household, row, field and reason; the rest of the batch goes on.
#[test]
fn bad_rows_reject_their_household_only() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    assert_eq!(fx.check().status.code(), Some(0));
    let rej: Vec<(String, u64, String, String)> = fx
        .jsonl("rejected.jsonl")
        .iter()
        .map(|r| {
            (
                r["household_id"].as_str().unwrap().into(),
                r["row"].as_u64().unwrap(),
                r["field"].as_str().unwrap().into(),
                r["reason"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        rej,
        [
            (
                "H005".into(),
                7,
                "id_number".into(),
                "invalid_id_number".into()
            ),
            (
                "H006".into(),
                8,
                "authorization_id".into(),
                "missing_authorization".into()
            ),
            (
                "H007".into(),
                9,
                "region_code".into(),
                "no_policy_for_region".into()
            ),
        ]
    );
    let msg = fx.jsonl("rejected.jsonl")[0]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(msg.contains("校验位"), "{msg}");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.path("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["applicants"]["rows_read"], 8);
    assert_eq!(summary["applicants"]["households_accepted"], 4);
    assert_eq!(summary["applicants"]["households_rejected"], 3);
    assert_eq!(summary["applicants"]["encoding"], "GBK");
}

/// A malformed source record is listed with table, file, row, field and reason, and
/// counted; it is not used by any rule.
#[test]
fn malformed_source_records_are_listed() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    assert_eq!(fx.check().status.code(), Some(0));
    let dq = fx.jsonl("data_quality.jsonl");
    assert_eq!(dq.len(), 1);
    assert_eq!(dq[0]["table"], "hr_income");
    assert_eq!(dq[0]["file"], "hr_income.csv");
    assert_eq!(dq[0]["row"], 14);
    assert_eq!(dq[0]["field"], "amount");
    assert_eq!(dq[0]["reason"], "invalid_number");
    assert_eq!(dq[0]["value"], "N/A");
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.path("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["data_quality_problems"], 1);
    assert_eq!(summary["sources"]["hr"]["problems"], 1);
    assert_eq!(summary["sources"]["hr"]["rows"], 12);
    assert_eq!(summary["sources"]["hr"]["latest_as_of"], "2026-10");
}

/// A check reads only its batch's members' records, but the summary counts every valid
/// record of the folder and data_quality.jsonl lists every malformed one, whoever they
/// belong to (SPEC §7 summary, §2).
#[test]
fn a_folder_is_counted_whole_whatever_the_batch() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    // H002 alone: no hr_income record, good or malformed, is its member's.
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADERS_ZH).unwrap();
    for r in applicant_rows().into_iter().filter(|r| r[0] == "H002") {
        w.write_record(&r).unwrap();
    }
    std::fs::write(fx.path("h002.csv"), w.into_inner().unwrap()).unwrap();
    assert_eq!(fx.check_with("h002.csv").status.code(), Some(0));
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(fx.path("out/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["sources"]["hr"]["rows"], 12);
    assert_eq!(summary["sources"]["hr"]["problems"], 1);
    assert_eq!(summary["sources"]["hr"]["latest_as_of"], "2026-10");
    let dq = fx.jsonl("data_quality.jsonl");
    assert_eq!(
        (dq.len(), dq[0]["table"].clone(), dq[0]["row"].clone()),
        (1, "hr_income".into(), 14.into())
    );
    let results = fx.jsonl("results.jsonl");
    assert_eq!(verdicts(&results), [("H002".into(), "ineligible".into())]);
}

/// Parquet and JSON Lines sources give the same results as CSV ones.
#[test]
fn source_formats_agree() {
    // The same records in every format; a CSV's rows are numbered from 2 (its header
    // is row 1, as a spreadsheet shows it), a Parquet file's and a JSON Lines file's
    // from 1.
    let normalise = |rs: Vec<Value>, header: i64| {
        let mut rs = rs;
        for r in &mut rs {
            for f in r["flags"].as_array_mut().unwrap() {
                for e in f["evidence"].as_array_mut().unwrap() {
                    e["row"] = Value::from(e["row"].as_i64().unwrap() - header);
                }
            }
        }
        serde_json::to_string(&rs)
            .unwrap()
            .replace(".parquet", ".csv")
            .replace(".jsonl", ".csv")
    };
    let csv = Fixture::new(SourceFormat::Csv, &[]);
    assert_eq!(csv.check().status.code(), Some(0));
    for format in [SourceFormat::Parquet, SourceFormat::Jsonl] {
        let fx = Fixture::new(format, &[]);
        let out = fx.check();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        assert_eq!(
            normalise(fx.results(), 0),
            normalise(csv.results(), 1),
            "{format:?}"
        );
    }
}

/// A missing table makes its source missing on every household: no household is
/// eligible, a disqualified one stays ineligible.
#[test]
fn missing_source_makes_results_incomplete() {
    let fx = Fixture::new(SourceFormat::Csv, &["vehicles"]);
    let out = fx.check();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let results = fx.results();
    assert_eq!(
        verdicts(&results),
        [
            ("H001".into(), "incomplete".into()),
            ("H002".into(), "ineligible".into()),
            ("H003".into(), "incomplete".into()),
            ("H004".into(), "incomplete".into()),
        ]
    );
    for r in &results {
        assert_eq!(r["missing_sources"], serde_json::json!(["police"]));
    }
    // residents is still used: the deceased member is still flagged.
    assert_eq!(flags(&results[2]), ["member_deceased"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("缺少部门数据（missing sources）：police")
    );
}

/// XLSX batches report rejections by sheet row.
#[test]
fn xlsx_batch_uses_sheet_rows() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    for (c, h) in HEADERS_ZH.iter().enumerate() {
        ws.write_string(0, c as u16, *h).unwrap();
    }
    for (r, row) in applicant_rows().iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            // Region codes typed as numbers, as Excel users do.
            if c == 1 {
                ws.write_number(r as u32 + 1, c as u16, v.parse::<f64>().unwrap())
                    .unwrap();
            } else {
                ws.write_string(r as u32 + 1, c as u16, v).unwrap();
            }
        }
    }
    // An ID typed as a number: Excel keeps 15 significant digits.
    let p = people();
    let last = applicant_rows().len() as u32 + 1;
    for (c, v) in [
        "H008", "410184", "城市", "低保", "AUTH-8", "", "郑十", "本人",
    ]
    .iter()
    .enumerate()
    {
        ws.write_string(last, c as u16, *v).unwrap();
    }
    ws.write_number(last, 5, p.e.parse::<f64>().unwrap())
        .unwrap();
    wb.save(fx.path("batch.xlsx")).unwrap();
    let out = fx.check_with("batch.xlsx");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(fx.results().len(), 4);
    let rows: Vec<u64> = fx
        .jsonl("rejected.jsonl")
        .iter()
        .map(|r| r["row"].as_u64().unwrap())
        .collect();
    // Data row 6 of the CSV is sheet row 7 (the header is sheet row 1).
    assert_eq!(rows, [7, 8, 9, 10]);
    let rej = fx.jsonl("rejected.jsonl");
    assert_eq!(rej[3]["reason"], "invalid_id_number");
    let msg = rej[3]["message"].as_str().unwrap();
    assert!(
        msg.contains("身份证号被表格存成了数字") && msg.contains("format the column as text"),
        "{msg}"
    );
}

/// JSON Lines batches with English keys and values, numbers for codes, are accepted.
#[test]
fn jsonl_batch_with_english_values() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let p = people();
    let lines = [
        format!(
            r#"{{"household_id":"H001","region_code":410184,"area_type":"urban","aid_type":"dibao","authorization_id":"AUTH-1","id_number":"{}","name":"张伟","relation":"applicant"}}"#,
            p.a
        ),
        format!(
            r#"{{"household_id":"H001","region_code":"410184","area_type":"城市","aid_type":"低保","authorization_id":"AUTH-1","id_number":"{}","name":"李娜","relation":"spouse"}}"#,
            p.b
        ),
        format!(
            r#"{{"household_id":"H009","region_code":"410184","area_type":"urban","aid_type":"dibao","authorization_id":"AUTH-9","id_number":"{}","name":"王强","relation":"applicant"}}"#,
            p.c
        ),
        format!(
            r#"{{"household_id":"H009","region_code":"410184","area_type":"rural","aid_type":"dibao","authorization_id":"AUTH-9","id_number":"{}","name":"刘洋","relation":"child"}}"#,
            p.e
        ),
    ];
    std::fs::write(fx.path("batch.jsonl"), lines.join("\n")).unwrap();
    let out = fx.check_with("batch.jsonl");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        verdicts(&fx.results()),
        [("H001".into(), "eligible".into())]
    );
    let rej = fx.jsonl("rejected.jsonl");
    assert_eq!(
        (rej[0]["row"].as_u64(), rej[0]["reason"].as_str()),
        (Some(4), Some("inconsistent_household"))
    );
}

/// Unreadable batches, bad policies and bad arguments exit 2 with a clear message.
/// results.parquet holds the rows of results.jsonl: figures as exact decimals, flags
/// nested with their evidence records.
#[test]
fn results_parquet_holds_the_same_rows() {
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Decimal128Type, Int64Type};
    use serde_json::json;
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let out = fx.check();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let file = std::fs::File::open(fx.path("out/results.parquet")).unwrap();
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
    // Figures as results.jsonl shows them, in text.
    let text = |v: &Value| match v {
        Value::Null => Value::Null,
        Value::String(s) => json!(s),
        other => json!(other.to_string()),
    };
    let mut rows = Vec::new();
    for b in reader {
        let b = b.unwrap();
        let s = |name: &str, i: usize| json!(b[name].as_string::<i32>().value(i));
        let money = |name: &str, i: usize| {
            let a = b[name].as_primitive::<Decimal128Type>();
            json!(a.value_as_string(i))
        };
        let texts = |name: &str, i: usize| {
            let l = b[name].as_list::<i32>().value(i);
            let l = l.as_string::<i32>();
            json!((0..l.len()).map(|j| l.value(j)).collect::<Vec<_>>())
        };
        for i in 0..b.num_rows() {
            let flags = b["flags"].as_list::<i32>().value(i);
            let flags = flags.as_struct();
            let col = |n: &str| flags.column_by_name(n).unwrap().clone();
            let opt = |n: &str, j: usize| {
                let c = col(n);
                let c = c.as_string::<i32>();
                if c.is_null(j) {
                    Value::Null
                } else {
                    json!(c.value(j))
                }
            };
            let flags: Vec<Value> = (0..flags.len())
                .map(|j| {
                    let ev = col("evidence").as_list::<i32>().value(j);
                    let ev = ev.as_struct();
                    let e = |n: &str| ev.column_by_name(n).unwrap().clone();
                    let evidence: Vec<Value> = (0..ev.len())
                        .map(|k| {
                            json!({
                                "table": e("table").as_string::<i32>().value(k),
                                "file": e("file").as_string::<i32>().value(k),
                                "row": e("row").as_primitive::<Int64Type>().value(k),
                                "record": serde_json::from_str::<Value>(e("record").as_string::<i32>().value(k)).unwrap(),
                            })
                        })
                        .collect();
                    json!({
                        "rule": opt("rule", j), "severity": opt("severity", j), "member": opt("member", j),
                        "value": opt("value", j), "limit": opt("limit", j), "evidence": evidence,
                    })
                })
                .collect();
            rows.push(json!({
                "household_id": s("household_id", i), "region_code": s("region_code", i),
                "area_type": s("area_type", i), "aid_type": s("aid_type", i), "verdict": s("verdict", i),
                "members": b["members"].as_primitive::<Int64Type>().value(i),
                "per_capita_monthly_income": money("per_capita_monthly_income", i),
                "financial_assets": money("financial_assets", i),
                "standard_monthly": money("standard_monthly", i),
                "missing_sources": texts("missing_sources", i), "stale_sources": texts("stale_sources", i),
                "flags": flags,
            }));
        }
    }
    let mut want = fx.results();
    assert!(want
        .iter()
        .any(|r| !r["flags"].as_array().unwrap().is_empty()));
    for r in &mut want {
        for f in r["flags"].as_array_mut().unwrap() {
            f["value"] = text(&f["value"]);
            f["limit"] = text(&f["limit"]);
        }
    }
    assert_eq!(rows, want);
}

/// `--memory-limit` bounds the engine (the same results within it) and is read as people
/// write sizes; one it cannot use is refused before any data is read.
#[test]
fn memory_limit_bounds_the_engine() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    assert_eq!(fx.check().status.code(), Some(0));
    let unbounded = fx.results();
    let run = |limit: &str| {
        fx.check_command("applicants.csv")
            .env("HEDUI_LOG", "hedui=debug")
            .args(["--memory-limit", limit])
            .output()
            .unwrap()
    };
    let out = run("96MiB");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("engine memory pool: 100663296 bytes"),
        "{}",
        stderr(&out)
    );
    assert_eq!(fx.results(), unbounded);
    for (bad, why) in [
        ("1MiB", "at least 64MiB"),
        ("lots", "must start with a number"),
        ("4 parsecs", "unit must be"),
    ] {
        let out = run(bad);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = stderr(&out);
        assert!(err.starts_with("hedui: 命令参数有误："), "{err}");
        assert!(
            err.contains(&format!("memory limit {bad:?}")) && err.contains(why),
            "{err}"
        );
    }
}

/// A pool too small for the rules' sorts (the smallest accepted, on a 50,000-person
/// city): the engine spills to disk — its debug log says so — and every result is the
/// same as without a limit.
#[test]
fn a_tiny_memory_pool_spills_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let p = |r: &str| dir.path().join(r).display().to_string();
    let out = hedui(&[
        "generate",
        "--people",
        "50000",
        "--households",
        "5000",
        "--format",
        "parquet",
        "--seed",
        "1",
        "--as-of",
        "2026-11-30",
        "--out",
        &p("city"),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let check = |out: &str, limit: Option<&str>| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hedui"));
        c.args(["check", "--applicants", &p("city/applicants.csv")])
            .args([
                "--sources",
                &p("city/sources"),
                "--policy",
                &p("city/policy.toml"),
            ])
            .args(["--as-of", "2026-11-30", "--out", &p(out), "--quiet"])
            .env("HEDUI_LOG", "hedui=debug");
        if let Some(l) = limit {
            c.args(["--memory-limit", l]);
        }
        let o = c.output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let results = std::fs::read_to_string(dir.path().join(out).join("results.jsonl")).unwrap();
        (stderr(&o), results)
    };
    let (_, unbounded) = check("free", None);
    let (log, bounded) = check("tiny", Some("64MiB"));
    assert!(log.contains("engine memory pool: 67108864 bytes"), "{log}");
    assert!(
        log.contains("engine spilled to disk at its memory limit"),
        "the pool was meant to be too small for the sorts: {log}"
    );
    assert!(
        unbounded.lines().count() > 4_000,
        "most of the 5,000 households are checked"
    );
    assert!(bounded == unbounded, "results differ under a 64MiB pool");
}

#[test]
fn unusable_input_exits_2() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    std::fs::write(
        fx.path("garbage.csv"),
        [0x80u8, 0xFF, 0xFF, 0x00, 0x81, 0xFE],
    )
    .unwrap();
    let out = fx.check_with("garbage.csv");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("hedui: 申请名单无法使用：cannot read applicants file"),
        "{}",
        stderr(&out)
    );

    std::fs::write(fx.path("noid.csv"), "姓名,身份证号\n张伟,1\n").unwrap();
    let out = fx.check_with("noid.csv");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing column household_id, region_code, area_type, aid_type, authorization_id, relation"),
        "{}",
        stderr(&out)
    );

    std::fs::write(fx.path("policy.toml"), "[defaults]\nincome_monthz = 12\n").unwrap();
    let out = fx.check();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("policy.toml: defaults.income_monthz: unknown key"),
        "{}",
        stderr(&out)
    );
    // The policy is refused before any data is read: no output folder was made.
    assert!(!fx.path("out").exists());

    std::fs::write(fx.path("policy.toml"), POLICY).unwrap();
    let out = hedui(&[
        "check",
        "--applicants",
        "a",
        "--sources",
        "s",
        "--policy",
        fx.path("policy.toml").to_str().unwrap(),
        "--as-of",
        "2026-02-30",
        "--out",
        "o",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("invalid --as-of"), "{}", stderr(&out));

    let out = hedui(&["check", "--applicants", "a"]);
    assert_eq!(out.status.code(), Some(2));

    // The fixture's own folder (holding `sources/`) instead of `sources/`: no table file
    // at all is the wrong folder, not a check on absent data.
    let p = |r: &str| fx.path(r).display().to_string();
    let out = hedui(&[
        "check",
        "--applicants",
        &p("applicants.csv"),
        "--sources",
        &fx.dir.path().display().to_string(),
        "--policy",
        &p("policy.toml"),
        "--as-of",
        AS_OF,
        "--out",
        &p("out"),
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.starts_with("hedui: 命令参数有误：")
            && err.contains("中没有任何部门数据表（hr_income.csv"),
        "{err}"
    );
}

/// An --out that cannot be written (a file where the folder should be) is the user's
/// mistake: exit 2, named.
#[test]
fn unwritable_output_exits_2() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    std::fs::write(fx.path("out"), "a file, not a folder").unwrap();
    let out = fx.check();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("hedui: 无法写入结果：cannot write"),
        "{}",
        stderr(&out)
    );
}

/// The report is Chinese, self-contained, masks ID numbers and words each finding.
#[test]
fn report_is_chinese_and_masked() {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    assert_eq!(fx.check().status.code(), Some(0));
    let html = std::fs::read_to_string(fx.path("out/report.html")).unwrap();
    assert!(html.contains("居民家庭经济状况核对报告"));
    assert!(html.contains("<svg"));
    assert!(html.contains("名下住房 2 套，超过上限 1 套"));
    // Regions are named from the policy, not printed as bare codes.
    assert!(html.contains("行政区划 新郑市（410184）"), "region named");
    let p = people();
    for full in [&p.a, &p.b, &p.c, &p.dd, &p.e] {
        assert!(!html.contains(full.as_str()), "full ID in report");
    }
    assert!(html.contains(&format!("{}********{}", &p.c[..6], &p.c[14..])));
    assert!(
        !html.contains("src=\"http"),
        "report must be self-contained"
    );
}

/// `check --help` says that one of --sources, --lake and --config is required, and
/// leaving all three out is refused with exit 2.
#[test]
fn check_help_names_the_required_choice() {
    let out = hedui(&["check", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        help.contains("One of --sources DIR, --lake URL or --config FILE is required"),
        "{help}"
    );
    let out = hedui(&["check", "--applicants", "a", "--policy", "p", "--out", "o"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("<--sources <SOURCES>|--lake <LAKE>|--config <CONFIG>>"));
    // A refused command line leads with the Chinese headline, then says what is wrong.
    assert!(
        stderr(&out).starts_with("hedui: 命令参数有误，请用 --help 查看用法"),
        "{}",
        stderr(&out)
    );
    let out = hedui(&["check", "--bogus"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("hedui: 命令参数有误"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("'--bogus'"), "{}", stderr(&out));
}

/// Every command's `--help` ends with an example of it.
#[test]
fn every_command_has_an_example() {
    for cmd in [
        &["check"][..],
        &["reconcile"],
        &["serve"],
        &["ingest"],
        &["sources"],
        &["audit"],
        &["audit", "verify"],
        &["generate"],
        &["demo"],
        &["user"],
        &["user", "add"],
        &["user", "list"],
        &["user", "disable"],
        &["user", "enable"],
        &["user", "passwd"],
    ] {
        let out = hedui(&[cmd, &["--help"]].concat());
        assert_eq!(out.status.code(), Some(0));
        let help = String::from_utf8_lossy(&out.stdout);
        let example = help
            .split_once("示例 Example")
            .map(|(_, e)| e)
            .unwrap_or_else(|| panic!("{cmd:?} --help has no example:\n{help}"));
        assert!(
            example.contains(&format!("hedui {}", cmd.join(" "))),
            "{cmd:?}: {example}"
        );
    }
}

/// The same seed makes the same city; the demo's batch is GBK with Chinese headers.
#[test]
fn generate_is_deterministic() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["a", "b"] {
        let out = hedui(&[
            "generate",
            "--people",
            "400",
            "--households",
            "40",
            "--seed",
            "7",
            "--as-of",
            AS_OF,
            "--out",
            dir.path().join(n).to_str().unwrap(),
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    for f in [
        "applicants.csv",
        "policy.toml",
        "sources/hr_income.csv",
        "sources/property.csv",
        "sources/residents.csv",
    ] {
        assert_eq!(
            std::fs::read(dir.path().join("a").join(f)).unwrap(),
            std::fs::read(dir.path().join("b").join(f)).unwrap(),
            "{f}"
        );
    }
    let bytes = std::fs::read(dir.path().join("a/applicants.csv")).unwrap();
    assert!(std::str::from_utf8(&bytes).is_err(), "applicants are GBK");
    let (text, _, _) = encoding_rs::GBK.decode(&bytes);
    assert!(text.starts_with("申请编号,行政区划代码"));
}

/// `hedui demo` generates, checks and prints the summary and the report's path.
#[test]
fn demo_does_the_whole_job() {
    let dir = tempfile::tempdir().unwrap();
    let out = hedui(&[
        "demo",
        "--dir",
        dir.path().to_str().unwrap(),
        "--people",
        "1500",
        "--households",
        "150",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"verdicts\""), "{stdout}");
    assert!(stdout.contains("报告（report）："), "{stdout}");
    // Long evidence lists (a year of wage records) are cut short in the printed report.
    let report = std::fs::read_to_string(dir.path().join("out/report.html")).unwrap();
    assert!(report.contains("条依据记录，见 results.jsonl"));
    let results = std::fs::read_to_string(dir.path().join("out/results.jsonl")).unwrap();
    assert!(results.lines().count() > 100);
}

/// The rows of a Parquet file, whatever its row groups.
fn parquet_rows(path: &std::path::Path) -> datafusion::arrow::array::RecordBatch {
    let file = std::fs::File::open(path).unwrap();
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap();
    let schema = reader.schema().clone();
    let batches: Vec<_> = reader.build().unwrap().map(Result::unwrap).collect();
    datafusion::arrow::compute::concat_batches(&schema, &batches).unwrap()
}

/// A batch answered in many chunks of households — each chunk's flags and evidence
/// kept in the temporary folder until its results are written — gives exactly what one
/// chunk gives: the same `results.jsonl`, the same rows of `results.parquet`, the same
/// counts and report; the temporary folder is left as it was but for what killed runs left
/// there days ago. A temporary folder that cannot be written stops the run with a message
/// naming it, and no result file appears.
#[test]
fn a_batch_in_many_chunks_gives_the_same_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let p = |r: &str| dir.path().join(r);
    let out = hedui(&[
        "generate",
        "--people",
        "20000",
        "--households",
        "2000",
        "--seed",
        "5",
        "--as-of",
        "2026-11-30",
        "--out",
        &p("city").display().to_string(),
        "--quiet",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    // A temporary folder whose name looks like a pattern is still that folder.
    let tmp = p("tmp [1]?*");
    std::fs::create_dir(&tmp).unwrap();
    // What a run killed two days ago left, and what a run still going has.
    let stale = tmp.join("hedui-run-killed");
    let live = tmp.join("hedui-run-live");
    std::fs::create_dir(&stale).unwrap();
    std::fs::create_dir(&live).unwrap();
    let two_days = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 24 * 3600);
    std::fs::File::open(&stale)
        .unwrap()
        .set_modified(two_days)
        .unwrap();
    let check_in = |out: &str, chunk: Option<&str>, temp: &std::path::Path| {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_hedui"));
        c.arg("check")
            .arg("--applicants")
            .arg(p("city/applicants.csv"))
            .arg("--sources")
            .arg(p("city/sources"))
            .arg("--policy")
            .arg(p("city/policy.toml"))
            .args(["--as-of", "2026-11-30", "--quiet", "--out"])
            .arg(p(out))
            .env("TMPDIR", temp);
        if let Some(n) = chunk {
            // Many chunks, and their evidence looked up a few chunks at a time.
            c.env("HEDUI_CHUNK_HOUSEHOLDS", n)
                .env("HEDUI_EVIDENCE_ROUND_FLAGS", "300");
        }
        if out == "many" {
            // The debug log says in how many rounds.
            c.env("HEDUI_LOG", "hedui::check=debug");
        }
        c.output().unwrap()
    };
    let check = |out: &str, chunk: Option<&str>| check_in(out, chunk, &tmp);
    let one = check("one", None);
    assert_eq!(one.status.code(), Some(0), "{}", stderr(&one));
    let many = check("many", Some("170"));
    assert_eq!(many.status.code(), Some(0), "{}", stderr(&many));
    let rounds: usize = stderr(&many)
        .lines()
        .find(|l| l.contains("evidence looked up in rounds"))
        .and_then(|l| l.split("rounds=").nth(1))
        .and_then(|n| n.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        rounds > 2,
        "the evidence in several rounds: {}",
        stderr(&many)
    );
    let read = |out: &str, f: &str| std::fs::read_to_string(p(out).join(f)).unwrap();
    let results = read("one", "results.jsonl");
    assert!(
        results.lines().count() > 1_500,
        "most households are checked"
    );
    assert!(
        results.contains("\"evidence\":[{"),
        "some flags carry evidence records"
    );
    assert!(
        read("many", "results.jsonl") == results,
        "results.jsonl differs"
    );
    assert_eq!(
        parquet_rows(&p("one/results.parquet")),
        parquet_rows(&p("many/results.parquet"))
    );
    // The same counts and report, but for the time each run was made.
    let summary = |out: &str| {
        let mut s: Value = serde_json::from_str(&read(out, "summary.json")).unwrap();
        let at = s["checked_at"].as_str().unwrap().to_owned();
        s["checked_at"] = Value::Null;
        (s, at)
    };
    let ((s1, at1), (s2, at2)) = (summary("one"), summary("many"));
    assert_eq!(s1, s2);
    let report = |out: &str, at: &str| {
        read(out, "report.html")
            .replace(at, "")
            .lines()
            .filter(|l| !l.contains("<th>核对时间</th>"))
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert!(
        report("one", &at1) == report("many", &at2),
        "report.html differs"
    );
    // Over the report's cap of 1,000 households it says so on its first page, and each
    // group needing a person is represented.
    let printed = read("one", "report.html");
    assert!(
        printed.contains("本报告只逐户列出部分家庭"),
        "the cap is said"
    );
    assert!(printed.matches("<div class=\"household\">").count() <= 1000);
    let mut groups = 0;
    for (v, zh) in [
        ("ineligible", "不符合条件"),
        ("review", "需人工复核"),
        ("incomplete", "数据不全"),
    ] {
        if s1["verdicts"][v].as_u64().unwrap_or(0) > 0 {
            groups += 1;
            assert!(
                printed.contains(&format!("{zh}</span></h3>")),
                "{v} households are represented"
            );
        }
    }
    assert!(
        groups >= 2,
        "the city has households of two groups needing a person"
    );
    let left: Vec<String> = std::fs::read_dir(&tmp)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        left,
        ["hedui-run-live"],
        "the run's temporary files are removed, a killed run's old ones too"
    );

    // A temporary folder that is not there.
    let gone = p("no-such-tmp");
    let o = check_in("broken", Some("170"), &gone);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.starts_with("hedui: 临时文件夹不可用"), "{err}");
    assert!(err.contains("TMPDIR"), "{err}");
    assert!(
        err.contains(&format!(
            "cannot use the temporary folder {}",
            gone.display()
        )),
        "{err}"
    );
    assert!(!p("broken/results.jsonl").exists());

    // Interrupted (SIGTERM, as Ctrl-C does): exit 130 and nothing left behind — no
    // temporary folder (it holds members' ID numbers), no output file.
    let int_tmp = p("tmp-interrupted");
    std::fs::create_dir(&int_tmp).unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hedui"))
        .arg("check")
        .arg("--applicants")
        .arg(p("city/applicants.csv"))
        .arg("--sources")
        .arg(p("city/sources"))
        .arg("--policy")
        .arg(p("city/policy.toml"))
        .args(["--as-of", "2026-11-30", "--quiet", "--out"])
        .arg(p("interrupted"))
        .env("TMPDIR", &int_tmp)
        .env("HEDUI_CHUNK_HOUSEHOLDS", "170")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The run's temporary folder is made before any source is read: it is running.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_dir(&int_tmp).unwrap().next().is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never started"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(130), "{err}");
    assert!(err.starts_with("hedui: 已中断"), "{err}");
    assert_eq!(
        std::fs::read_dir(&int_tmp).unwrap().count(),
        0,
        "temporary files left"
    );
    let left: Vec<String> = std::fs::read_dir(p("interrupted"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".hedui.lock")
                .collect()
        })
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

/// Runs `hedui ARGS` with `stdin` as its standard input.
fn hedui_stdin(args: &[&str], stdin: &str) -> std::process::Output {
    use std::io::Write as _;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Staff accounts from the command line: added with the password on standard input,

/// A state database written by a newer hedui is refused, in words, and left as it was:
/// nothing starts on a schema it does not know.
#[test]
fn a_newer_state_database_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hedui.toml");
    std::fs::write(
        &config,
        format!(
            "[lake]\nurl = \"{}\"\n[state]\npath = \"{}\"\n",
            dir.path().join("lake").display(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let out = hedui(&["user", "list", "--config", c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let db = dir.path().join("state").join("hedui.db");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute_batch("PRAGMA user_version = 7")
        .unwrap();
    for args in [
        vec!["user", "list", "--config", c],
        // Read-only too: a newer schema's tables may mean other things.
        vec!["audit", "verify", "--config", c],
    ] {
        let out = hedui(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("状态数据库由更新版本的 hedui 写成")
                && stderr(&out).contains("schema version 7"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let kept: i64 = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(kept, 7);
}

/// names unique, weak passwords and bad roles or regions refused in words (exit 2),
/// listed without hashes, disabled and enabled, passwords reset — each change audited
/// as the OS user, the chain intact.
#[test]
fn staff_accounts_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("hedui.toml");
    std::fs::write(
        &config,
        format!(
            "[lake]\nurl = \"{}\"\n[state]\npath = \"{}\"\n",
            dir.path().join("lake").display(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let c = config.to_str().unwrap();
    let add = |name: &str, role: &str, regions: &str, pw: &str| {
        hedui_stdin(
            &[
                "user",
                "add",
                "--config",
                c,
                "--name",
                name,
                "--role",
                role,
                "--regions",
                regions,
                "--password-stdin",
            ],
            pw,
        )
    };
    let out = add("wangli", "staff", "4101,4102", "clerk-password-1\n");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("已添加账户 wangli"));
    let out = add("wangli", "admin", "41", "another-password");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("账户“wangli”已存在"),
        "{}",
        stderr(&out)
    );
    for (name, role, regions, pw, says) in [
        ("li", "staff", "4101", "short", "密码太短"),
        ("li", "system", "4101", "long-enough-pw", "角色“system”无效"),
        ("li", "staff", "41x", "long-enough-pw", "地区“41x”无效"),
        ("li", "staff", "4", "long-enough-pw", "地区“4”无效"),
        ("li", "staff", "41015", "long-enough-pw", "应为省（2 位"),
        (
            "li si",
            "staff",
            "4101",
            "long-enough-pw",
            "账户名“li si”无效",
        ),
        ("li", "staff", "4101", "", "标准输入中没有密码"),
    ] {
        let out = add(name, role, regions, pw);
        assert_eq!(out.status.code(), Some(2), "{name} {role} {regions}");
        assert!(stderr(&out).contains(says), "{says}: {}", stderr(&out));
    }
    let out = hedui_stdin(
        &[
            "user",
            "add",
            "--config",
            c,
            "--name",
            "x",
            "--role",
            "staff",
            "--regions",
            "41",
        ],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "the password is never an argument"
    );
    let out = add("审计员", "auditor", "41", "auditor-password");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let out = hedui(&["user", "disable", "--config", c, "wangli"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = hedui(&["user", "list", "--config", c]);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(text.contains("wangli\tstaff\t4101,4102\t已停用"), "{text}");
    assert!(text.contains("审计员\tauditor\t41\t正常"), "{text}");
    assert!(
        !text.contains("argon2") && !text.contains("clerk-password"),
        "{text}"
    );
    let out = hedui(&["user", "enable", "--config", c, "wangli"]);
    assert_eq!(out.status.code(), Some(0));
    let out = hedui_stdin(
        &[
            "user",
            "passwd",
            "--config",
            c,
            "wangli",
            "--password-stdin",
        ],
        "new-clerk-password\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = hedui_stdin(
        &[
            "user",
            "passwd",
            "--config",
            c,
            "nobody",
            "--password-stdin",
        ],
        "new-clerk-password\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("没有账户“nobody”"),
        "{}",
        stderr(&out)
    );

    let out = hedui(&["audit", "verify", "--config", c]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // Two accounts added, one disabled, enabled and given a new password.
    let verified = String::from_utf8_lossy(&out.stdout);
    assert!(verified.contains(": 5 entries"), "{verified}");
}
