//! `hedui reconcile` (SPEC §7) on the hand-made test city: the first run lists every
//! household as new, an unchanged re-run writes an empty changes.jsonl, and between two
//! runs a new property, a new wage, a death, a scrapped car, a closed account and a
//! household leaving the list give exactly the right added/removed flags and verdicts.
//! A run that is killed, or fails, never becomes the baseline.

mod support;

use std::collections::BTreeMap;
use std::process::{Command, Output, Stdio};

use hedui::cli::SourceFormat;
use serde_json::Value;
use support::fixture::*;

struct Recon {
    fx: Fixture,
}

impl Recon {
    fn new() -> Recon {
        let fx = Fixture::new(SourceFormat::Csv, &[]);
        let p = people();
        // A bank account of C's over the asset limit (20000 > 720 × 24), closed later.
        append(
            &fx,
            "sources/financial.csv",
            &format!("{},中国银行,999,deposit,20000.00,2026-09-30\n", p.c),
        );
        write_recipients(&fx, &[]);
        Recon { fx }
    }

    fn args(&self) -> Vec<String> {
        let p = |r: &str| self.fx.path(r).display().to_string();
        [
            "reconcile",
            "--recipients",
            &p("recipients.csv"),
            "--sources",
            &p("sources"),
            "--policy",
            &p("policy.toml"),
            "--state",
            &p("state"),
            "--as-of",
            AS_OF,
            "--out",
            &p("out"),
        ]
        .map(str::to_owned)
        .to_vec()
    }

    /// Runs a reconciliation a household at a time: every household its own chunk,
    /// kept on disk until written, the comparison carried across chunks (households
    /// that left the list among them) — the path of a large list, on a small one.
    fn run(&self) -> Output {
        let out = Command::new(env!("CARGO_BIN_EXE_hedui"))
            .args(self.args())
            .env("HEDUI_CHUNK_HOUSEHOLDS", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        out
    }

    /// changes.jsonl by household.
    fn changes(&self) -> BTreeMap<String, Value> {
        self.fx
            .jsonl("changes.jsonl")
            .into_iter()
            .map(|c| (c["household_id"].as_str().unwrap().to_owned(), c))
            .collect()
    }
}

fn append(fx: &Fixture, file: &str, text: &str) {
    let mut body = std::fs::read_to_string(fx.path(file)).unwrap();
    body.push_str(text);
    std::fs::write(fx.path(file), body).unwrap();
}

fn replace(fx: &Fixture, file: &str, from: &str, to: &str) {
    let body = std::fs::read_to_string(fx.path(file)).unwrap();
    assert!(body.contains(from), "{file} has {from}");
    std::fs::write(fx.path(file), body.replace(from, to)).unwrap();
}

/// The recipients: the test city's batch without the households in `leaving`.
fn write_recipients(fx: &Fixture, leaving: &[&str]) {
    let mut w = csv::Writer::from_path(fx.path("recipients.csv")).unwrap();
    w.write_record(HEADERS_ZH).unwrap();
    for r in applicant_rows() {
        if !leaving.contains(&r[0].as_str()) {
            w.write_record(&r).unwrap();
        }
    }
    w.flush().unwrap();
}

/// Rules of a list of flags, sorted.
fn rules(v: &Value) -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (f["rule"].as_str().unwrap().to_owned(), f["member"].clone()))
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// First run: every household new; second run on the same inputs: no change at all;
/// then each kind of change between two runs is reported exactly.
#[test]
fn reconciliation_reports_exactly_what_changed() {
    let r = Recon::new();
    let p = people();
    let out = r.run();
    assert!(String::from_utf8_lossy(&out.stdout).contains("first run"));
    let first = r.changes();
    assert_eq!(
        first.keys().collect::<Vec<_>>(),
        ["H001", "H002", "H003", "H004", "H005", "H006", "H007"]
    );
    assert!(first.values().all(|c| c["previous_verdict"].is_null()));
    // Recipients whose rows are refused are on the list, not gone: `rejected`, why.
    for h in ["H005", "H006", "H007"] {
        assert_eq!(first[h]["verdict"], "rejected", "{h}");
        assert!(!first[h]["reasons"].as_array().unwrap().is_empty(), "{h}");
    }
    assert_eq!(
        first["H005"]["reasons"],
        serde_json::json!(["invalid_id_number"])
    );
    assert!(first["H001"].get("reasons").is_none());
    assert_eq!(rules(&first["H002"]["added_flags"]).len(), 3);

    r.run();
    assert!(
        std::fs::read_to_string(r.fx.path("out/changes.jsonl"))
            .unwrap()
            .is_empty(),
        "unchanged inputs give an empty changes.jsonl"
    );

    // A new commercial property and a new wage in H001; a death and a scrapped car in
    // H004; C's account closed (balance 0 on a later day); H003 leaves the list.
    append(
        &r.fx,
        "sources/property.csv",
        &format!("{},C-9,commercial,20.00,,2026-06-01,,\n", p.a),
    );
    append(
        &r.fx,
        "sources/hr_income.csv",
        &format!("{},2026-10,wage,20000.00,宇通客车\n", p.b),
    );
    replace(
        &r.fx,
        "sources/residents.csv",
        &format!("{},刘洋,normal", p.e),
        &format!("{},刘洋,deceased", p.e),
    );
    replace(
        &r.fx,
        "sources/vehicles.csv",
        "2022-01-01,",
        "2022-01-01,2026-01-01",
    );
    append(
        &r.fx,
        "sources/financial.csv",
        &format!("{},中国银行,999,deposit,0.00,2026-11-01\n", p.c),
    );
    write_recipients(&r.fx, &["H003"]);
    let out = r.run();
    assert!(String::from_utf8_lossy(&out.stdout).contains("compared with run 2"));
    let c = r.changes();
    assert_eq!(
        c.keys().collect::<Vec<_>>(),
        ["H001", "H002", "H003", "H004"]
    );

    let h1 = &c["H001"];
    assert_eq!(
        (h1["previous_verdict"].as_str(), h1["verdict"].as_str()),
        (Some("eligible"), Some("ineligible"))
    );
    assert_eq!(
        rules(&h1["added_flags"]),
        [
            ("commercial_property".into(), Value::Null),
            ("income_over_limit".into(), Value::Null)
        ]
    );
    assert_eq!(h1["removed_flags"], serde_json::json!([]));
    // Added flags carry value, limit and their evidence.
    let income = h1["added_flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "income_over_limit")
        .unwrap();
    assert_eq!(
        (income["value"].as_str(), income["limit"].as_str()),
        (Some("1333.33"), Some("720.00"))
    );
    assert!(income["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["record"]["amount"] == "20000.00"));

    let h2 = &c["H002"];
    assert_eq!(
        (h2["previous_verdict"].as_str(), h2["verdict"].as_str()),
        (Some("ineligible"), Some("ineligible"))
    );
    assert_eq!(h2["added_flags"], serde_json::json!([]));
    assert_eq!(
        h2["removed_flags"],
        serde_json::json!([{"rule": "financial_assets_over_limit", "member": null}])
    );

    let h3 = &c["H003"];
    assert_eq!(
        (h3["previous_verdict"].as_str(), h3["verdict"].as_str()),
        (Some("review"), None)
    );
    assert_eq!(
        h3["removed_flags"],
        serde_json::json!([{"rule": "member_deceased", "member": p.dd}])
    );

    let h4 = &c["H004"];
    assert_eq!(
        (h4["previous_verdict"].as_str(), h4["verdict"].as_str()),
        (Some("ineligible"), Some("review"))
    );
    assert_eq!(
        rules(&h4["added_flags"]),
        [("member_deceased".into(), Value::from(p.e.clone()))]
    );
    assert_eq!(
        h4["removed_flags"],
        serde_json::json!([{"rule": "vehicle_owned", "member": null}])
    );
    // What check writes is written too.
    assert_eq!(r.fx.results().len(), 3);

    // The staff report leads with the changes: first who became ineligible and why,
    // with the evidence, before the totals; IDs masked.
    let report = std::fs::read_to_string(r.fx.path("out/report.html")).unwrap();
    let at = |s: &str| {
        report
            .find(s)
            .unwrap_or_else(|| panic!("report.html lacks {s}"))
    };
    assert!(report.contains("居民家庭经济状况复核报告"));
    assert!(at("一、本次复核的变化") < at("二、总体情况"));
    assert!(report.contains("与第 2 次复核比较，4 户有变化"));
    // H001 (became ineligible) comes before H002, H004 (other changes) and H003 (left).
    let h1 = at("申请编号 H001　符合条件 → ");
    assert!(h1 < at("申请编号 H004　不符合条件 → "));
    assert!(at("申请编号 H004　不符合条件 → ") < at("申请编号 H003　需人工复核 → "));
    assert!(at("申请编号 H003　需人工复核 → ") < at("二、总体情况"));
    let h1_part = &report[h1..at("申请编号 H004　不符合条件 → ")];
    assert!(h1_part.contains("新发现【否决项】家庭月人均收入 1,333.33 元，超过上限 720.00 元"));
    assert!(
        h1_part.contains("依据：人社收入（hr_income.csv 第2行）"),
        "{h1_part}"
    );
    assert!(h1_part.contains("另有 5 条依据记录"), "{h1_part}");
    assert!(report.contains("已消除：金融资产超过上限"));
    assert!(report.contains("已不在名单中"));
    assert!(
        !report.contains(p.a.as_str()),
        "a full ID number in the report"
    );

    // H004's row is refused next run: rejected, its flags not compared (nor removed);
    // fixed again, it is compared with the last run that checked it.
    let good = std::fs::read_to_string(r.fx.path("recipients.csv")).unwrap();
    std::fs::write(
        r.fx.path("recipients.csv"),
        good.replace(&format!("{},刘洋", p.e), ",刘洋"),
    )
    .unwrap();
    r.run();
    let c = r.changes();
    assert_eq!(c.keys().collect::<Vec<_>>(), ["H004"]);
    assert_eq!(
        (
            c["H004"]["previous_verdict"].as_str(),
            c["H004"]["verdict"].as_str()
        ),
        (Some("review"), Some("rejected"))
    );
    assert_eq!(c["H004"]["reasons"], serde_json::json!(["missing_field"]));
    assert_eq!(c["H004"]["removed_flags"], serde_json::json!([]));
    std::fs::write(r.fx.path("recipients.csv"), &good).unwrap();
    r.run();
    let c = r.changes();
    assert_eq!(c.keys().collect::<Vec<_>>(), ["H004"]);
    assert_eq!(
        (
            c["H004"]["previous_verdict"].as_str(),
            c["H004"]["verdict"].as_str()
        ),
        (Some("rejected"), Some("review"))
    );
    assert_eq!(c["H004"]["added_flags"], serde_json::json!([]));
    assert_eq!(c["H004"]["removed_flags"], serde_json::json!([]));
}

/// A run killed after writing its outputs, and a run that fails, are never the
/// baseline: the next run compares with the last completed one.
#[test]
fn killed_or_failed_runs_are_never_the_baseline() {
    let r = Recon::new();
    let p = people();
    r.run();
    // Run 2 sees a new commercial property in H001, and is killed before it is done.
    append(
        &r.fx,
        "sources/property.csv",
        &format!("{},C-9,commercial,20.00,,2026-06-01,,\n", p.a),
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(r.args())
        .env("HEDUI_PAUSE_BEFORE_RUN_DONE_MS", "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let mut seen = String::new();
    let mut buf = [0u8; 256];
    while !seen.contains("pausing") {
        let n = std::io::Read::read(&mut err, &mut buf).unwrap();
        assert!(n > 0, "the run ended before its pause: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Killed before it was recorded, it published nothing: the folder still shows run
    // 1, where every household was new.
    assert!(r.changes()["H001"]["previous_verdict"].is_null());
    assert!(r.changes()["H001"]["added_flags"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["rule"] != "commercial_property"));

    // Run 3 fails (a policy that does not parse).
    let policy = std::fs::read_to_string(r.fx.path("policy.toml")).unwrap();
    std::fs::write(r.fx.path("policy.toml"), "[defaults]\nbroken = 1\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(r.args())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    std::fs::write(r.fx.path("policy.toml"), policy).unwrap();

    // Run 4 compares with run 1, the last completed one: the property is still new.
    let out = r.run();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("compared with run 1"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let c = r.changes();
    assert_eq!(c.keys().collect::<Vec<_>>(), ["H001"]);
    assert_eq!(
        rules(&c["H001"]["added_flags"]),
        [("commercial_property".into(), Value::Null)]
    );
}
