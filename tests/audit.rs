//! The audit log (SPEC §8): every check and reconciliation appends an entry with the
//! households (ID numbers only as keyed hashes), authorizations, sources and verdicts;
//! `hedui audit verify` proves the chain whole, and changing, deleting, inserting or
//! reordering any entry in the database makes it fail naming that entry.

mod support;

use std::process::{Command, Output};

use hedui::cli::SourceFormat;
use serde_json::Value;
use support::fixture::*;

fn hedui_in(state: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(args)
        .env("HEDUI_STATE", state)
        .output()
        .unwrap()
}

fn verify(state: &str) -> Output {
    hedui_in(state, &["audit", "verify", "--state", state])
}

/// A fixture city whose state folder holds `checks` check entries and one reconcile
/// entry.
fn audited(checks: usize) -> (Fixture, String) {
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    let state = fx.path("state").display().to_string();
    let p = |r: &str| fx.path(r).display().to_string();
    for _ in 0..checks {
        let out = hedui_in(
            &state,
            &[
                "check",
                "--applicants",
                &p("applicants.csv"),
                "--sources",
                &p("sources"),
                "--policy",
                &p("policy.toml"),
                "--as-of",
                AS_OF,
                "--out",
                &p("out"),
            ],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    }
    let out = hedui_in(
        &state,
        &[
            "reconcile",
            "--recipients",
            &p("applicants.csv"),
            "--sources",
            &p("sources"),
            "--policy",
            &p("policy.toml"),
            "--state",
            &state,
            "--as-of",
            AS_OF,
            "--out",
            &p("recon"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    (fx, state)
}

/// `hedui check` of the fixture's batch, audited in `state`, its outputs in `out`.
fn check_into(fx: &Fixture, state: &str, out: &str) -> Output {
    let p = |r: &str| fx.path(r).display().to_string();
    hedui_in(
        state,
        &[
            "check",
            "--applicants",
            &p("applicants.csv"),
            "--sources",
            &p("sources"),
            "--policy",
            &p("policy.toml"),
            "--as-of",
            AS_OF,
            "--out",
            &p(out),
        ],
    )
}

fn db(state: &str) -> rusqlite::Connection {
    rusqlite::Connection::open(std::path::Path::new(state).join("hedui.db")).unwrap()
}

/// Each check and each reconciliation leaves one entry: who, what kind, the accepted
/// households with their authorizations and verdicts, member IDs only as hashes, and the
/// sources read; the chain verifies.
#[test]
fn every_check_leaves_an_entry() {
    let (_fx, state) = audited(1);
    let out = verify(&state);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": 2 entries; last entry 2 "));
    let conn = db(&state);
    let rows: Vec<(i64, String, String, String)> = conn
        .prepare("SELECT seq, actor, kind, detail FROM audit ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        rows.iter().map(|r| (r.0, r.2.as_str())).collect::<Vec<_>>(),
        [(1, "check"), (2, "reconcile")]
    );
    assert!(rows[0].1.starts_with("os:"));
    let detail: Value = serde_json::from_str(&rows[0].3).unwrap();
    let hs = detail["households"].as_array().unwrap();
    assert_eq!(hs.len(), 4);
    assert_eq!(hs[0]["household_id"], "H001");
    assert_eq!(hs[0]["authorization_id"], "AUTH-1");
    assert_eq!(hs[0]["verdict"], "eligible");
    assert_eq!(hs[0]["members"].as_array().unwrap().len(), 2);
    assert_eq!(
        detail["sources"]["police/residents"]
            .as_str()
            .unwrap()
            .split(' ')
            .next(),
        Some("folder")
    );
    // The same person has the same hash in every entry; no ID number is stored.
    let again: Value = serde_json::from_str(&rows[1].3).unwrap();
    assert_eq!(hs[0]["members"], again["households"][0]["members"]);
    let p = people();
    for (_, _, _, d) in &rows {
        for id in [&p.a, &p.b, &p.c, &p.dd, &p.e] {
            assert!(!d.contains(id.as_str()) && !d.contains(&id[..17]));
        }
    }
}

/// Changing, deleting, inserting or reordering an entry breaks the chain at that entry,
/// and `audit verify` names it (exit 1).
#[test]
fn tampering_is_found_and_named() {
    let (fx, state) = audited(3);
    assert_eq!(verify(&state).status.code(), Some(0));
    let pristine = std::fs::read(fx.path("state/hedui.db")).unwrap();
    let restore = || {
        let _ = std::fs::remove_file(fx.path("state/hedui.db-wal"));
        let _ = std::fs::remove_file(fx.path("state/hedui.db-shm"));
        std::fs::write(fx.path("state/hedui.db"), &pristine).unwrap();
    };
    let cases: [(&str, &str, &str); 4] = [
        (
            "change",
            "UPDATE audit SET detail = replace(detail, '\"eligible\"', '\"ineligible\"') WHERE seq = 2",
            "entry 2 is broken: its content does not match its hash",
        ),
        (
            "delete",
            "DELETE FROM audit WHERE seq = 2",
            "entry 2 is broken: entry 2 is missing",
        ),
        (
            "insert",
            "UPDATE audit SET seq = seq + 10 WHERE seq >= 3; UPDATE audit SET seq = seq - 9 WHERE seq >= 13;
             INSERT INTO audit SELECT 3, at, actor, kind, detail, hash, hash FROM audit WHERE seq = 2",
            "entry 3 is broken",
        ),
        (
            "reorder",
            "UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = -1",
            "entry 2 is broken: it does not follow the entry before it",
        ),
    ];
    for (what, sql, said) in cases {
        restore();
        db(&state).execute_batch(sql).unwrap();
        let out = verify(&state);
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(stderr(&out).contains(said), "{what}: {}", stderr(&out));
    }
}

/// Lists the names in folder `dir`, sorted.
fn names(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

/// The log proves its end: removing its last entry or emptying the table fails
/// `audit verify` (the anchor says where the chain ended). Verifying writes nothing (no
/// key made, no journal files), so a copy is checked as it is. A missing key is never
/// replaced: verify says so, and the next check refuses to run unaudited, writing no
/// output.
#[test]
fn the_log_proves_its_end_and_keeps_its_key() {
    let (fx, state) = audited(2);
    let out = verify(&state);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("3 entries"));
    let pristine = std::fs::read(fx.path("state/hedui.db")).unwrap();
    let restore = || {
        let _ = std::fs::remove_file(fx.path("state/hedui.db-wal"));
        let _ = std::fs::remove_file(fx.path("state/hedui.db-shm"));
        std::fs::write(fx.path("state/hedui.db"), &pristine).unwrap();
    };
    for (what, sql) in [
        ("the last entry removed", "DELETE FROM audit WHERE seq = 3"),
        ("the table emptied", "DELETE FROM audit"),
    ] {
        restore();
        db(&state).execute_batch(sql).unwrap();
        let out = verify(&state);
        assert_eq!(out.status.code(), Some(1), "{what}");
        assert!(
            stderr(&out).contains("entries were removed from its end"),
            "{what}: {}",
            stderr(&out)
        );
        // Nothing is appended over the gap (that would make the shortened log verify
        // again): the next check refuses and writes nothing.
        let out = check_into(&fx, &state, "over-the-gap");
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).starts_with("hedui: 审计日志的末尾与其锚点不符"),
            "{what}: {}",
            stderr(&out)
        );
        assert!(!fx.path("over-the-gap/results.jsonl").exists(), "{what}");
        assert_eq!(verify(&state).status.code(), Some(1), "{what}: still found");
    }
    // The anchor removed from a log with entries: likewise.
    restore();
    let anchor = std::fs::read(fx.path("state/audit.anchor")).unwrap();
    std::fs::remove_file(fx.path("state/audit.anchor")).unwrap();
    let out = check_into(&fx, &state, "no-anchor");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("anchor"), "{}", stderr(&out));
    std::fs::write(fx.path("state/audit.anchor"), anchor).unwrap();
    restore();

    // A copy (database, key, anchor) verified as it is: nothing is added to it.
    let copy = fx.path("copy");
    std::fs::create_dir(&copy).unwrap();
    for f in ["hedui.db", "audit.key", "audit.anchor"] {
        std::fs::copy(fx.path("state").join(f), copy.join(f)).unwrap();
    }
    let before = names(&copy);
    let out = verify(&copy.display().to_string());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(names(&copy), before);

    // The key removed: verify refuses, no new key; a check refuses and writes nothing.
    std::fs::remove_file(fx.path("state/audit.key")).unwrap();
    let out = verify(&state);
    assert_ne!(out.status.code(), Some(0));
    assert!(stderr(&out).contains("审计密钥缺失"), "{}", stderr(&out));
    assert!(!fx.path("state/audit.key").exists(), "verify made a key");
    let p = |r: &str| fx.path(r).display().to_string();
    let out = hedui_in(
        &state,
        &[
            "check",
            "--applicants",
            &p("applicants.csv"),
            "--sources",
            &p("sources"),
            "--policy",
            &p("policy.toml"),
            "--as-of",
            AS_OF,
            "--out",
            &p("unaudited"),
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).starts_with("hedui: 审计密钥缺失"),
        "{}",
        stderr(&out)
    );
    assert!(
        !fx.path("state/audit.key").exists(),
        "a check made a new key"
    );
    assert!(
        !fx.path("unaudited/results.jsonl").exists(),
        "results left unaudited"
    );
}
