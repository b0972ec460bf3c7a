//! `hedui ingest` of files sources into a local lake: one snapshot per source per run,
//! department field names and codes mapped, bad configs and unknown sources refused.

use std::process::{Command, Output};

use hedui_connectors::idnum::check_char;
use serde_json::Value;

fn hedui(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(args)
        .output()
        .unwrap()
}

fn id(first17: &str) -> String {
    format!("{first17}{}", check_char(first17.as_bytes()))
}

#[test]
fn ingest_commits_one_snapshot_per_source_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let hr = dir.path().join("hr");
    let police = dir.path().join("police");
    std::fs::create_dir_all(&hr).unwrap();
    std::fs::create_dir_all(&police).unwrap();
    let a = id("41018419800101011");
    std::fs::write(
        hr.join("hr_income.csv"),
        format!("SFZH,FFNY,SRLX,FFJE\n{a},2026-01,01,3000\n{a},2026-02,99,3000\n"),
    )
    .unwrap();
    std::fs::write(
        police.join("residents.csv"),
        format!("id_number,name,status\n{a},张伟,normal\n"),
    )
    .unwrap();
    let config = format!(
        r#"
[lake]
url = "lake"
[state]
path = "state"

[[source]]
name = "hr"
kind = "files"
url = "{hr}"
[source.fields.hr_income]
id_number = "SFZH"
period = "FFNY"
kind = "SRLX"
amount = "FFJE"
[source.codes.hr_income.kind]
"01" = "wage"

[[source]]
name = "police"
kind = "files"
url = "file://{police}"
"#,
        hr = hr.display(),
        police = police.display()
    );
    let cfg = dir.path().join("hedui.toml");
    std::fs::write(&cfg, config).unwrap();
    let cfg = cfg.to_str().unwrap();

    let out = hedui(&["ingest", "--config", cfg]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("hr: snapshot 1 committed (1 tables, 1 records, 1 malformed)"),
        "{stdout}"
    );
    // police delivers residents but not vehicles: only residents is in its snapshot.
    assert!(
        stdout.contains("police: snapshot 1 committed (1 tables, 1 records, 0 malformed)"),
        "{stdout}"
    );

    let out = hedui(&["ingest", "--config", cfg, "--source", "hr"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("hr: snapshot 2 committed"));

    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(
            dir.path()
                .join("lake/sources/hr/manifests/00000000000000000002.json"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["tables"][0]["table"], "hr_income");
    assert_eq!(manifest["tables"][0]["rows"], 1);
    let problems = manifest["tables"][0]["problems_file"].as_str().unwrap();
    let text = std::fs::read_to_string(dir.path().join("lake").join(problems)).unwrap();
    assert!(
        text.contains("\"field\":\"kind\"") && text.contains("\"value\":\"99\""),
        "{text}"
    );
    assert!(!dir
        .path()
        .join("lake/sources/police/manifests/00000000000000000002.json")
        .exists());

    // A source that cannot be pulled commits nothing and does not stop the others.
    std::fs::remove_dir_all(&police).unwrap();
    let out = hedui(&["ingest", "--config", cfg]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("hr: snapshot 3 committed"), "{stdout}");
    assert!(
        stdout.contains("police: failed, nothing committed: cannot read source folder"),
        "{stdout}"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read source folder"));
    assert!(!dir
        .path()
        .join("lake/sources/police/manifests/00000000000000000002.json")
        .exists());

    // `hedui sources` shows each source's snapshot, age, staleness and last failure.
    let later = (chrono::Local::now().date_naive() + chrono::Days::new(40)).to_string();
    let out = hedui(&["sources", "--config", cfg, "--as-of", &later]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("hr: snapshot 3 pulled"), "{text}");
    assert!(
        text.contains("(40 days ago, freshness 35 days) — STALE"),
        "{text}"
    );
    assert!(
        text.contains("  hr_income: 1 records, 1 malformed"),
        "{text}"
    );
    assert!(text.contains("police: snapshot 1 pulled"), "{text}");
    assert!(
        text.contains("  vehicles: not delivered — source police missing"),
        "{text}"
    );
    assert!(
        text.contains("(after the current snapshot): cannot read source folder"),
        "{text}"
    );

    let out = hedui(&["ingest", "--config", cfg, "--source", "welfare"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--source welfare: no such source"));

    std::fs::write(
        dir.path().join("bad.toml"),
        "[lake]\nurl = \"l\"\nurll = 1\n[state]\npath = \"s\"\n",
    )
    .unwrap();
    let out = hedui(&[
        "ingest",
        "--config",
        dir.path().join("bad.toml").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.toml: line 3: unknown field `urll`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An ingest killed (SIGKILL) after writing a snapshot's files but before committing
/// leaves the lake readable with the previous snapshot current; the next ingest succeeds.
#[test]
fn ingest_killed_before_commit_leaves_previous_snapshot() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let police = dir.path().join("police");
    std::fs::create_dir_all(&police).unwrap();
    let a = id("41018419800101011");
    std::fs::write(
        police.join("residents.csv"),
        format!("id_number,name,status\n{a},张伟,normal\n"),
    )
    .unwrap();
    let cfg = dir.path().join("hedui.toml");
    std::fs::write(
        &cfg,
        format!("[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n[[source]]\nname = \"police\"\nkind = \"files\"\nurl = \"{}\"\n", police.display()),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    assert_eq!(hedui(&["ingest", "--config", cfg]).status.code(), Some(0));

    std::fs::write(
        police.join("residents.csv"),
        format!("id_number,name,status\n{a},张伟,deceased\n"),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(["ingest", "--config", cfg])
        .env("HEDUI_PAUSE_BEFORE_COMMIT_MS", "60000")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    while !line.contains("pausing") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).unwrap() > 0,
            "ingest ended before pausing"
        );
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let snapshots = std::fs::read_dir(dir.path().join("lake/sources/police/snapshots"))
        .unwrap()
        .count();
    assert_eq!(snapshots, 2, "the killed ingest had written its files");
    let manifests = dir.path().join("lake/sources/police/manifests");
    assert_eq!(
        std::fs::read_dir(&manifests).unwrap().count(),
        1,
        "but committed nothing"
    );
    let out = hedui(&["sources", "--config", cfg]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("police: snapshot 1 pulled"));

    let out = hedui(&["ingest", "--config", cfg]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("police: snapshot 2 committed"));
}

/// An empty or all-malformed delivery is never committed: the previous snapshot stays
/// current (it holds evidence; an empty export does not), the failure is recorded and
/// shown by `hedui sources`, the other sources commit, and the exit status is 1.
#[test]
fn empty_deliveries_are_never_committed() {
    let dir = tempfile::tempdir().unwrap();
    let (bank, police) = (dir.path().join("bank"), dir.path().join("police"));
    std::fs::create_dir_all(&bank).unwrap();
    std::fs::create_dir_all(&police).unwrap();
    let a = id("41018419800101011");
    let header = "id_number,institution,account_no,product,balance,as_of\n";
    std::fs::write(
        bank.join("financial.csv"),
        format!("{header}{a},工商银行,001,deposit,90000.00,2026-10-01\n"),
    )
    .unwrap();
    std::fs::write(
        police.join("residents.csv"),
        format!("id_number,name,status\n{a},张伟,normal\n"),
    )
    .unwrap();
    let cfg = dir.path().join("hedui.toml");
    std::fs::write(
        &cfg,
        format!(
            "[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n[[source]]\nname = \"bank\"\nkind = \"files\"\nurl = \"{}\"\n[[source]]\nname = \"police\"\nkind = \"files\"\nurl = \"{}\"\n",
            bank.display(),
            police.display()
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap();
    assert_eq!(hedui(&["ingest", "--config", cfg]).status.code(), Some(0));

    for body in [
        header.to_owned(),
        format!("{header}{a},工商银行,001,deposit,-5.00,2026-11-01\n"),
    ] {
        std::fs::write(bank.join("financial.csv"), body).unwrap();
        let out = hedui(&["ingest", "--config", cfg]);
        assert_eq!(out.status.code(), Some(1));
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(said.contains("bank: failed, nothing committed"), "{said}");
        assert!(
            said.contains("the delivery holds no usable record"),
            "{said}"
        );
        assert!(said.contains("police: snapshot"), "{said}");
    }
    let out = hedui(&["sources", "--config", cfg, "--as-of", "2026-11-30"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("bank: snapshot 1 pulled"), "{text}");
    assert!(text.contains("holds no usable record"), "{text}");
}
