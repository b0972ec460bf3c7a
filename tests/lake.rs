//! Checks on the lake (SPEC §9): results from `--lake` equal results from `--sources`
//! on the same data; an old snapshot makes its source stale (never `eligible`);
//! `--snapshot-at` re-reads the snapshots in force at a past time.

use std::process::{Command, Output};

mod support;

use serde_json::Value;
use support::{lines, ok};

fn hedui(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(args)
        .output()
        .unwrap()
}

struct City {
    dir: tempfile::TempDir,
    today: String,
}

impl City {
    fn new() -> City {
        let dir = tempfile::tempdir().unwrap();
        let today = chrono::Local::now().date_naive().to_string();
        let city = dir.path().join("city");
        ok(hedui(&[
            "generate",
            "--people",
            "600",
            "--households",
            "60",
            "--seed",
            "11",
            "--as-of",
            &today,
            "--out",
            city.to_str().unwrap(),
        ]));
        let config = format!(
            "[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n{}",
            support::files_sources(&city.join("sources").display().to_string())
        );
        std::fs::write(dir.path().join("hedui.toml"), config).unwrap();
        City { dir, today }
    }

    fn p(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    fn ingest(&self) {
        ok(hedui(&["ingest", "--config", &self.p("hedui.toml")]));
    }

    fn check(&self, data: &[&str], as_of: &str, out: &str) -> Output {
        let args = support::city_check_args(self.dir.path(), data, as_of, out);
        hedui(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }
}

fn sorted(mut v: Vec<Value>) -> Vec<String> {
    let mut s: Vec<String> = v.drain(..).map(|x| x.to_string()).collect();
    s.sort();
    s
}

#[test]
fn lake_results_equal_folder_results() {
    let c = City::new();
    c.ingest();
    let lake = c.p("lake");
    ok(c.check(&["--sources", &c.p("city/sources")], &c.today, "folder"));
    ok(c.check(&["--lake", &lake], &c.today, "lake"));
    let (a, b) = (
        lines(&c.dir.path().join("folder/results.jsonl")),
        lines(&c.dir.path().join("lake/results.jsonl")),
    );
    assert!(a.len() > 40);
    assert!(a.iter().any(|r| r["verdict"] == "eligible"));
    assert_eq!(a, b, "results from --lake differ from --sources");
    assert_eq!(
        sorted(lines(&c.dir.path().join("folder/data_quality.jsonl"))),
        sorted(lines(&c.dir.path().join("lake/data_quality.jsonl")))
    );
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(c.dir.path().join("lake/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        summary["sources"]["hr"]["tables"]["hr_income"]["snapshot"],
        1
    );
    assert_eq!(summary["stale_sources"], serde_json::json!([]));
    // The decision records when it ran and which snapshot of each source it read.
    assert!(summary["checked_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(summary["sources"]["hr"]["snapshot"]["seq"], 1);
    let id = summary["sources"]["hr"]["snapshot"]["snapshot_id"]
        .as_str()
        .unwrap();
    assert!(c
        .dir
        .path()
        .join("lake/sources/hr/snapshots")
        .join(id)
        .is_dir());
}

/// A read-only check never creates a lake: a mistyped path is exit 2 naming it, and no
/// folder appears. Settings from the environment never weaken transport security:
/// plain HTTP to a host that is not loopback is refused (exit 2) before any request,
/// also when the URL's text starts with "localhost".
#[test]
fn lake_addresses_are_checked_before_use() {
    let c = City::new();
    c.ingest();
    let typo = c.p("lakee");
    let out = c.check(&["--lake", &typo], &c.today, "out");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains(&format!("no lake at {typo}: the folder")),
        "{err}"
    );
    assert!(!std::path::Path::new(&typo).exists(), "nothing is created");

    let (applicants, policy, out_dir) = (
        c.p("city/applicants.csv"),
        c.p("city/policy.toml"),
        c.p("out"),
    );
    for endpoint in [
        "http://192.0.2.2:19001",
        "http://localhost:1@192.0.2.2:19001",
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_hedui"))
            .args([
                "check",
                "--applicants",
                &applicants,
                "--policy",
                &policy,
                "--lake",
                "s3://lake/prefix",
                "--out",
                &out_dir,
            ])
            .env("AWS_ENDPOINT", endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ALLOW_INVALID_CERTIFICATES", "true")
            .env("AWS_ACCESS_KEY_ID", "k")
            .env("AWS_SECRET_ACCESS_KEY", "s")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{endpoint}");
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            err.contains(&format!("plain HTTP to {endpoint} is refused")),
            "{err}"
        );
    }
}

#[test]
fn old_snapshots_are_stale_and_never_eligible() {
    let c = City::new();
    c.ingest();
    // 36 days after the pull, past the default freshness of 35 days.
    let later = (chrono::Local::now().date_naive() + chrono::Days::new(36)).to_string();
    ok(c.check(&["--lake", &c.p("lake")], &later, "out"));
    let results = lines(&c.dir.path().join("out/results.jsonl"));
    let all = serde_json::json!(["bank", "fund", "housing", "hr", "police", "tax"]);
    for r in &results {
        assert_eq!(r["stale_sources"], all);
        assert_eq!(r["missing_sources"], serde_json::json!([]));
        assert!(
            r["verdict"] == "incomplete" || r["verdict"] == "ineligible",
            "{r}"
        );
    }
    assert!(results.iter().any(|r| r["verdict"] == "incomplete"));
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(c.dir.path().join("out/summary.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(summary["sources"]["police"]["status"], "stale");
    let html = std::fs::read_to_string(c.dir.path().join("out/report.html")).unwrap();
    assert!(html.contains("以下部门数据已超过更新期限"));
}

#[test]
fn snapshot_at_reads_the_past() {
    let c = City::new();
    c.ingest();
    // The first ingest's last commit (sources are pulled several at a time).
    let first = ["hr", "housing", "police", "tax", "bank", "fund"]
        .iter()
        .map(|s| {
            let m: Value = serde_json::from_str(
                &std::fs::read_to_string(c.dir.path().join(format!(
                    "lake/sources/{s}/manifests/00000000000000000001.json"
                )))
                .unwrap(),
            )
            .unwrap();
            chrono::DateTime::parse_from_rfc3339(m["committed_at"].as_str().unwrap()).unwrap()
        })
        .max()
        .unwrap()
        .to_rfc3339();
    // What a check found then.
    ok(c.check(&["--lake", &c.p("lake")], &c.today, "orig"));
    // The police registry disappears from the department's folder; the next pull
    // commits a police snapshot without it.
    std::fs::remove_file(c.dir.path().join("city/sources/residents.csv")).unwrap();
    // The next commit must be later than `first` on the lake's clock.
    let after = chrono::DateTime::parse_from_rfc3339(&first).unwrap();
    while chrono::Utc::now() <= after {
        std::thread::yield_now();
    }
    c.ingest();
    ok(c.check(&["--lake", &c.p("lake")], &c.today, "now"));
    for r in lines(&c.dir.path().join("now/results.jsonl")) {
        assert_eq!(r["missing_sources"], serde_json::json!(["police"]));
        assert_ne!(r["verdict"], "eligible");
    }
    ok(c.check(
        &["--lake", &c.p("lake"), "--snapshot-at", &first],
        &c.today,
        "then",
    ));
    let then = lines(&c.dir.path().join("then/results.jsonl"));
    for r in &then {
        assert_eq!(r["missing_sources"], serde_json::json!([]), "at {first}");
    }
    assert!(then.iter().any(|r| r["verdict"] == "eligible"));
    // Not only the sources: the very results of a check made then.
    let read =
        |out: &str| std::fs::read_to_string(c.dir.path().join(out).join("results.jsonl")).unwrap();
    assert!(read("then") == read("orig"), "the past read differently");

    // Before the first commit there is no snapshot at all: every source is missing.
    ok(c.check(
        &[
            "--lake",
            &c.p("lake"),
            "--snapshot-at",
            "2000-01-01T00:00:00Z",
        ],
        &c.today,
        "before",
    ));
    for r in lines(&c.dir.path().join("before/results.jsonl")) {
        assert_eq!(r["missing_sources"].as_array().unwrap().len(), 6);
    }

    let out = c.check(
        &["--lake", &c.p("lake"), "--snapshot-at", "yesterday"],
        &c.today,
        "bad",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid --snapshot-at \"yesterday\""));
    let out = c.check(
        &["--sources", &c.p("city/sources"), "--lake", &c.p("lake")],
        &c.today,
        "bad",
    );
    assert_eq!(out.status.code(), Some(2));
}

/// Copies folder `from` into `to`.
fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// A lake the previous release wrote (`tests/fixtures/lake-format-1`: its manifests of
/// format 1, which have no `format` field, and that release's results of a check on
/// it) reads to the same results; an ingest adds a commit of this release's format, the
/// older snapshot still read by time travel; a manifest of a format newer than this
/// hedui knows is refused in words, never misread.
#[test]
fn a_lake_of_the_previous_release_keeps_reading() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/lake-format-1");
    let dir = tempfile::tempdir().unwrap();
    let p = |r: &str| dir.path().join(r).display().to_string();
    copy_dir(&fixture.join("lake"), &dir.path().join("lake"));
    let manifest = dir
        .path()
        .join("lake/sources/hr/manifests/00000000000000000001.json");
    assert!(
        !std::fs::read_to_string(&manifest)
            .unwrap()
            .contains("\"format\""),
        "the fixture is of the format before formats were kept"
    );
    let (applicants, policy) = (
        fixture.join("applicants.csv").display().to_string(),
        fixture.join("policy.toml").display().to_string(),
    );
    let lake = p("lake");
    let check = |out: &str, more: &[&str]| {
        let mut args = vec![
            "check",
            "--lake",
            &lake,
            "--applicants",
            &applicants,
            "--policy",
            &policy,
            "--as-of",
            "2026-12-04",
            "--out",
            out,
            "--no-audit",
            "--quiet",
        ];
        args.extend_from_slice(more);
        hedui(&args)
    };
    let was = std::fs::read_to_string(fixture.join("results.jsonl")).unwrap();
    ok(check(&p("now"), &[]));
    assert_eq!(
        std::fs::read_to_string(p("now/results.jsonl")).unwrap(),
        was
    );

    // The same city's departments again (generated alike), pulled into it by this hedui.
    ok(hedui(&[
        "generate",
        "--people",
        "40",
        "--households",
        "8",
        "--seed",
        "5",
        "--as-of",
        "2026-11-30",
        "--out",
        &p("city"),
        "--quiet",
    ]));
    std::fs::write(
        p("hedui.toml"),
        format!(
            "[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n{}",
            support::files_sources(&p("city/sources"))
        ),
    )
    .unwrap();
    ok(hedui(&["ingest", "--config", &p("hedui.toml"), "--quiet"]));
    let second: Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.path()
                .join("lake/sources/hr/manifests/00000000000000000002.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(second["format"], 2, "{second}");
    ok(check(&p("after"), &[]));
    assert_eq!(
        sorted(lines(&dir.path().join("after/results.jsonl"))),
        sorted(lines(&fixture.join("results.jsonl"))),
        "the same departments' data, the same answers"
    );
    // The old snapshot by time travel: its very results.
    // (the last of the previous release's commits: sources commit one after another).
    let at = ["hr", "housing", "police", "tax", "bank", "fund"]
        .iter()
        .map(|s| {
            let m: Value = serde_json::from_str(
                &std::fs::read_to_string(dir.path().join(format!(
                    "lake/sources/{s}/manifests/00000000000000000001.json"
                )))
                .unwrap(),
            )
            .unwrap();
            m["committed_at"].as_str().unwrap().to_owned()
        })
        .max()
        .unwrap();
    ok(check(&p("then"), &["--snapshot-at", &at]));
    assert_eq!(
        std::fs::read_to_string(p("then/results.jsonl")).unwrap(),
        was
    );

    // A newer format: refused, in words, exit 2.
    let mut newer = second.clone();
    newer["format"] = serde_json::json!(99);
    newer["tables"] = serde_json::json!("changed in a way this hedui cannot know");
    std::fs::write(
        dir.path()
            .join("lake/sources/hr/manifests/00000000000000000003.json"),
        serde_json::to_vec(&newer).unwrap(),
    )
    .unwrap();
    let refused = check(&p("refused"), &[]);
    assert_eq!(refused.status.code(), Some(2));
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(
        said.contains("更新版本的 hedui") && said.contains("format 99"),
        "{said}"
    );
}
