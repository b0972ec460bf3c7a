//! The pipelines on an Apache Ballista cluster (`--engine df://HOST:PORT`): a real
//! scheduler and two executors, stock binaries of Ballista 55 started as separate
//! processes on loopback, every port set per process. A check on the cluster writes
//! results byte-equal to the same check run in this process.
//!
//! The binaries are named by `BALLISTA_SCHEDULER` and `BALLISTA_EXECUTOR` (`.ci/run`
//! builds them once into `~/.cache/hedui/tools`). Without them the cluster half is
//! skipped with a notice, unless `HEDUI_REQUIRE_BALLISTA=1` (as in CI), which makes
//! their absence a failure. The refusals (bad URL, no scheduler, a source folder) need
//! no cluster and always run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

// The launcher the `check` bench uses too.
#[path = "../benches/common/ballista.rs"]
mod ballista;

use ballista::{free_port, Ballista};
use support::ok;

fn hedui(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(args)
        .env("HEDUI_LOG", "hedui=info")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The scheduler and executor binaries, or `None` (skip).
fn binaries() -> Option<(PathBuf, PathBuf)> {
    let s = std::env::var_os("BALLISTA_SCHEDULER").map(PathBuf::from);
    let e = std::env::var_os("BALLISTA_EXECUTOR").map(PathBuf::from);
    match (s, e) {
        (Some(s), Some(e)) => Some((s, e)),
        _ if std::env::var("HEDUI_REQUIRE_BALLISTA").as_deref() == Ok("1") => {
            panic!("HEDUI_REQUIRE_BALLISTA=1 but BALLISTA_SCHEDULER / BALLISTA_EXECUTOR are not set (see .ci/run)")
        }
        _ => {
            let _ = writeln!(
                std::io::stderr().lock(),
                "\n*** CLUSTER HALF SKIPPED — no Ballista binaries (set BALLISTA_SCHEDULER and BALLISTA_EXECUTOR; CI sets HEDUI_REQUIRE_BALLISTA=1) ***"
            );
            None
        }
    }
}

/// A generated city, ingested into a local lake (a shared path: the executors run on
/// this machine).
struct City {
    dir: tempfile::TempDir,
    today: String,
}

impl City {
    fn new(people: &str, households: &str) -> City {
        let dir = tempfile::tempdir().unwrap();
        let today = chrono::Local::now().date_naive().to_string();
        let c = City { dir, today };
        ok(hedui(&[
            "generate",
            "--people",
            people,
            "--households",
            households,
            "--seed",
            "11",
            "--as-of",
            &c.today,
            "--out",
            &c.p("city"),
        ]));
        let cfg = format!(
            "[lake]\nurl = \"{}\"\n[state]\npath = \"{}\"\n{}",
            c.p("lake"),
            c.p("state"),
            support::files_sources(&c.p("city/sources"))
        );
        std::fs::write(c.dir.path().join("hedui.toml"), cfg).unwrap();
        ok(hedui(&["ingest", "--config", &c.p("hedui.toml")]));
        c
    }

    fn p(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    /// `hedui check` on the lake with `extra` arguments, into `out`.
    fn check(&self, extra: &[&str], out: &str) -> Output {
        let lake = self.p("lake");
        self.check_on(&[&["--lake", &lake], extra].concat(), out)
    }

    /// `hedui check` with `data` (where the departments' data is, the engine), into `out`.
    fn check_on(&self, data: &[&str], out: &str) -> Output {
        let args = support::city_check_args(self.dir.path(), data, &self.today, out);
        hedui(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn read(&self, rel: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join(rel)).unwrap()
    }
}

/// What a run decided, without the times it ran at: results.jsonl and
/// data_quality.jsonl as written, and summary.json without `checked_at`.
fn decided(c: &City, out: &str) -> (Vec<u8>, Vec<u8>, serde_json::Value) {
    let mut summary: serde_json::Value =
        serde_json::from_slice(&c.read(&format!("{out}/summary.json"))).unwrap();
    summary.as_object_mut().unwrap().remove("checked_at");
    (
        c.read(&format!("{out}/results.jsonl")),
        c.read(&format!("{out}/data_quality.jsonl")),
        summary,
    )
}

/// A check on a scheduler and two executors writes the same bytes as the same check in
/// this process, and leaves no scratch file in the lake. The deployment config's
/// `[engine] url` does the same as `--engine`.
#[test]
fn a_check_on_ballista_equals_the_local_engine() {
    let Some((scheduler, executor)) = binaries() else {
        return;
    };
    let c = City::new("3000", "300");
    let cluster = Ballista::start(&scheduler, &executor, 2);

    ok(c.check(&[], "local"));
    let local = decided(&c, "local");
    assert!(
        local.0.windows(10).any(|w| w == b"\"eligible\""),
        "the city has eligible households"
    );
    assert!(local.0.windows(12).any(|w| w == b"\"ineligible\""));

    let url = cluster.url();
    let out = c.check(&["--engine", &url], "cluster");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        stderr(&out),
        cluster.log_text()
    );
    let jobs = cluster.jobs();
    assert!(
        jobs >= 12,
        "the rules, figures and evidence ran as jobs of the scheduler ({jobs})"
    );
    // Both executors ran part of it: the work was spread, not run by one.
    let tasks = cluster.tasks_per_executor();
    assert!(
        tasks.len() == 2 && tasks.iter().all(|n| *n > 0),
        "tasks per executor: {tasks:?}\n{}",
        cluster.log_text()
    );
    let on_cluster = decided(&c, "cluster");
    assert!(
        on_cluster.0 == local.0,
        "results.jsonl differs between the cluster and this process"
    );
    assert_eq!(on_cluster.1, local.1, "data_quality.jsonl");
    assert_eq!(on_cluster.2, local.2, "summary.json");
    let scratch = Path::new(&c.p("lake")).join("engine-runs");
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch left in the lake: {left:?}");

    // The same through the deployment config's [engine] url.
    let cfg = std::fs::read_to_string(c.dir.path().join("hedui.toml")).unwrap();
    std::fs::write(
        c.dir.path().join("cluster.toml"),
        format!("{cfg}[engine]\nurl = \"{url}\"\n"),
    )
    .unwrap();
    let out = c.check_on(&["--config", &c.p("cluster.toml")], "by-config");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        cluster.jobs() >= 2 * jobs,
        "[engine] url sends the run to the scheduler"
    );
    assert!(decided(&c, "by-config").0 == local.0, "[engine] url");

    // The nightly reconciliation of the same households on the cluster: the results of
    // the local check, every household new to the list.
    let (recipients, policy, state, out_dir) = (
        c.p("city/applicants.csv"),
        c.p("city/policy.toml"),
        c.p("recon-state"),
        c.p("recon"),
    );
    let out = hedui(&[
        "reconcile",
        "--recipients",
        &recipients,
        "--policy",
        &policy,
        "--lake",
        &c.p("lake"),
        "--engine",
        &url,
        "--state",
        &state,
        "--as-of",
        &c.today,
        "--out",
        &out_dir,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        decided(&c, "recon").0 == local.0,
        "reconcile on the cluster"
    );
    let changes = support::lines(&c.dir.path().join("recon/changes.jsonl"));
    // Every household is new: those checked, and those whose rows were refused.
    let refused: std::collections::BTreeSet<String> =
        support::lines(&c.dir.path().join("recon/rejected.jsonl"))
            .iter()
            .map(|r| r["household_id"].as_str().unwrap().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
    assert_eq!(
        changes.len(),
        local.0.iter().filter(|b| **b == b'\n').count() + refused.len(),
        "a first reconciliation lists every household as new"
    );
    assert!(changes.iter().all(|ch| ch["previous_verdict"].is_null()));
}

/// Refusals a clerk or an operator meets, each naming what to do: a URL that is not a
/// scheduler's (exit 2), a scheduler that does not answer (exit 1), and a source folder,
/// which executors elsewhere cannot read (exit 2).
#[test]
fn the_engine_option_refuses_what_cannot_work() {
    let c = City::new("200", "20");
    let out = c.check(&["--engine", "http://127.0.0.1:50050"], "bad");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "计算集群地址有误：invalid engine \"http://127.0.0.1:50050\": expected df://HOST:PORT"
        ),
        "{}",
        stderr(&out)
    );

    let nobody = format!("df://127.0.0.1:{}", free_port());
    let out = c.check(&["--engine", &nobody], "down");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "计算集群不可用：cannot reach the Ballista scheduler at {nobody}"
        )),
        "{}",
        stderr(&out)
    );
    assert!(!Path::new(&c.p("down/results.jsonl")).exists());

    let out = c.check_on(
        &["--sources", &c.p("city/sources"), "--engine", &nobody],
        "folder",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("命令参数有误") && stderr(&out).contains("give --lake or --config"),
        "{}",
        stderr(&out)
    );
}
