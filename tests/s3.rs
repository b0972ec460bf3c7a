//! The lake on a real S3-compatible store (Garage on loopback, started by `.ci/garage`):
//! ingest and check work as on a local folder, and two concurrent ingests of one source
//! commit exactly once — on Garage, which ignores `If-None-Match: *`, as on a local path.
//!
//! The store is named by `HEDUI_TEST_S3_ENDPOINT` and `HEDUI_TEST_S3_BUCKET`, with
//! credentials in `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` (`.ci/run` sets them).
//! Without them the S3 half of each test is skipped with a notice, unless
//! `HEDUI_REQUIRE_S3=1` (as in CI), which makes their absence a failure.

use std::process::{Command, Output};

mod support;

use serde_json::Value;
use support::{lines, ok};

fn hedui(args: &[&str], envs: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(args)
        .envs(envs.iter().copied())
        .output()
        .unwrap()
}

/// The test store's `[lake.s3]` table, or `None` (skip) when no store is configured.
fn s3_settings() -> Option<(String, String)> {
    let endpoint = std::env::var("HEDUI_TEST_S3_ENDPOINT").ok();
    let bucket = std::env::var("HEDUI_TEST_S3_BUCKET").ok();
    match (endpoint, bucket) {
        (Some(e), Some(b)) => Some((
            format!("[lake.s3]\nendpoint = \"{e}\"\nregion = \"garage\"\nallow_http = true\n"),
            b,
        )),
        _ if std::env::var("HEDUI_REQUIRE_S3").as_deref() == Ok("1") => {
            panic!("HEDUI_REQUIRE_S3=1 but HEDUI_TEST_S3_ENDPOINT / HEDUI_TEST_S3_BUCKET are not set (see .ci/garage)")
        }
        _ => {
            // Printed on stdout as well: `cargo test` shows a passing test's output only
            // with --nocapture, so the skip is also written where it cannot be missed.
            skipped(
                "S3 HALF SKIPPED — no Garage (run .ci/garage start; CI sets HEDUI_REQUIRE_S3=1)",
            );
            None
        }
    }
}

/// Says that a real-store half was skipped where `cargo test` cannot hide it: straight
/// to the process's stderr (the harness captures only the print macros).
fn skipped(note: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "\n*** {note} ***");
}

/// A unique key prefix per test run.
fn unique(name: &str) -> String {
    format!(
        "{name}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    )
}

struct City {
    dir: tempfile::TempDir,
    today: String,
}

impl City {
    fn new() -> City {
        let dir = tempfile::tempdir().unwrap();
        let today = chrono::Local::now().date_naive().to_string();
        ok(hedui(
            &[
                "generate",
                "--people",
                "400",
                "--households",
                "40",
                "--seed",
                "3",
                "--as-of",
                &today,
                "--out",
                dir.path().join("city").to_str().unwrap(),
            ],
            &[],
        ));
        City { dir, today }
    }

    fn p(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    /// Writes a config with the lake at `lake` (+ `lake_extra`) and all sources from the
    /// city's folder; returns its path.
    fn config(&self, name: &str, lake: &str, lake_extra: &str) -> String {
        self.config_from(name, lake, lake_extra, &self.p("city/sources"))
    }

    /// As [`City::config`], with every source a `files` source at `sources`.
    fn config_from(&self, name: &str, lake: &str, lake_extra: &str, sources: &str) -> String {
        let cfg = format!(
            "[lake]\nurl = \"{lake}\"\n{lake_extra}[state]\npath = \"state-{name}\"\n{}",
            support::files_sources(sources)
        );
        let path = self.dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, cfg).unwrap();
        path.display().to_string()
    }

    fn check(&self, data: &[&str], out: &str) -> Vec<Value> {
        let args = support::city_check_args(self.dir.path(), data, &self.today, out);
        ok(hedui(
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
            &[],
        ));
        lines(&self.dir.path().join(out).join("results.jsonl"))
    }
}

/// Ingest into an `s3://` lake, then check on it: the results equal those of the plain
/// folder and of a local lake.
#[test]
fn s3_lake_checks_like_the_folder() {
    let c = City::new();
    let folder = c.check(&["--sources", &c.p("city/sources")], "folder");
    assert!(folder.iter().any(|r| r["verdict"] == "eligible"));
    let local = c.config("local", "lake", "");
    ok(hedui(&["ingest", "--config", &local], &[]));
    assert_eq!(c.check(&["--config", &local], "local"), folder);

    let Some((s3, bucket)) = s3_settings() else {
        return;
    };
    let lake = format!("s3://{bucket}/{}", unique("check"));
    let cfg = c.config("s3", &lake, &s3);
    let out = ok(hedui(&["ingest", "--config", &cfg], &[]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("fund: snapshot 1 committed"));
    assert_eq!(
        c.check(&["--config", &cfg], "s3"),
        folder,
        "the s3:// lake decides like the folder"
    );
    let out = ok(hedui(&["sources", "--config", &cfg], &[]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("police: snapshot 1 pulled"));

    // Without a config, `--lake s3://…` takes the endpoint from the AWS_* variables.
    let endpoint = std::env::var("HEDUI_TEST_S3_ENDPOINT").unwrap();
    let (applicants, policy, out_dir) = (
        c.p("city/applicants.csv"),
        c.p("city/policy.toml"),
        c.p("s3-url"),
    );
    ok(hedui(
        &[
            "check",
            "--applicants",
            &applicants,
            "--policy",
            &policy,
            "--lake",
            &lake,
            "--as-of",
            &c.today,
            "--out",
            &out_dir,
        ],
        &[("AWS_ENDPOINT", &endpoint), ("AWS_ALLOW_HTTP", "true")],
    ));
    assert_eq!(lines(&c.dir.path().join("s3-url/results.jsonl")), folder);
}

/// Two ingests of one source that both started from the same commit, each with its own
/// `[state]` folder (two hosts): exactly one commits, the other reports the conflict and
/// commits nothing — on a local lake and on Garage (which ignores `If-None-Match` and
/// would silently overwrite).
#[test]
fn concurrent_ingests_commit_once() {
    let c = City::new();
    let mut lakes = vec![(
        c.config("local-a", "lake", ""),
        c.config("local-b", "lake", ""),
        "local",
    )];
    if let Some((s3, bucket)) = s3_settings() {
        let lake = format!("s3://{bucket}/{}", unique("race"));
        lakes.push((
            c.config("s3-a", &lake, &s3),
            c.config("s3-b", &lake, &s3),
            "s3",
        ));
    }
    for (cfg, cfg_b, what) in lakes {
        ok(hedui(&["ingest", "--config", &cfg, "--source", "hr"], &[]));
        // Both write their snapshot files, then wait before committing: both started
        // from commit 1.
        let spawn = |cfg: &str| {
            Command::new(env!("CARGO_BIN_EXE_hedui"))
                .args(["ingest", "--config", cfg, "--source", "hr"])
                .env("HEDUI_PAUSE_BEFORE_COMMIT_MS", "1500")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        };
        let (a, b) = (spawn(&cfg), spawn(&cfg_b));
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let codes = [a.status.code(), b.status.code()];
        assert!(
            codes.contains(&Some(0)) && codes.iter().filter(|c| **c == Some(0)).count() == 1,
            "{what}: exactly one ingest commits: {codes:?}\n{}\n{}",
            String::from_utf8_lossy(&a.stderr),
            String::from_utf8_lossy(&b.stderr)
        );
        let loser = if a.status.success() { &b } else { &a };
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&loser.stdout),
            String::from_utf8_lossy(&loser.stderr)
        );
        assert!(
            said.contains("changed while this ingest ran")
                && said.contains("nothing was committed"),
            "{what}: {said}"
        );
        let out = ok(hedui(&["sources", "--config", &cfg], &[]));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("hr: snapshot 2 pulled"), "{what}: {text}");
    }
}

/// Copies a local folder's files to `s3://bucket/prefix/` on the test store.
fn upload(bucket: &str, prefix: &str, dir: &std::path::Path) {
    use object_store::{ObjectStoreExt, PutPayload};
    let endpoint = std::env::var("HEDUI_TEST_S3_ENDPOINT").unwrap();
    let store = object_store::aws::AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_endpoint(endpoint)
        .with_region("garage")
        .with_allow_http(true)
        .build()
        .unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        let body = std::fs::read(&path).unwrap();
        let key = object_store::path::Path::from(format!("{prefix}/{name}"));
        rt.block_on(store.put(&key, PutPayload::from(body)))
            .unwrap();
    }
}

/// A `files` source on an object-store prefix (the departments drop their files on a
/// shared store) is read like a local folder: the check decides as on the folder.
#[test]
fn files_sources_on_an_s3_prefix() {
    let Some((s3, bucket)) = s3_settings() else {
        return;
    };
    let c = City::new();
    let folder = c.check(&["--sources", &c.p("city/sources")], "folder");
    let incoming = unique("incoming");
    upload(&bucket, &incoming, &c.dir.path().join("city/sources"));
    let cfg = c.config_from("s3src", "lake", &s3, &format!("s3://{bucket}/{incoming}/"));
    let out = ok(hedui(&["ingest", "--config", &cfg], &[]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("police: snapshot 1 committed"));
    assert_eq!(c.check(&["--config", &cfg], "s3src"), folder);
    assert!(
        std::fs::read_dir(c.dir.path().join("state-s3src/staging"))
            .unwrap()
            .next()
            .is_none(),
        "the staged copies are removed"
    );
}
