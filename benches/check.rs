//! `hedui check` on a generated city, stage by stage with wall time, CPU and peak memory,
//! beside the same job in DuckDB SQL over the same Parquet files (verdicts, figures,
//! flags and every flag's evidence records, written as JSON Lines), and the two answers
//! compared household by household.
//!
//! ```sh
//! cargo bench --bench check -- --people 1000000 --households 100000 --dir /tmp/bench1m
//! ```
//! - `--dir D` keeps the city, its lake and config in D (shared with the `api` bench) and
//!   reuses them; without it a temporary folder is used.
//! - `--folder` also checks the city's Parquet source folder (`--sources`), not only the
//!   lake.
//! - `--memory-limit SIZE` is passed to `hedui check`.
//! - `--ballista N` also runs the check on a Ballista cluster started on this machine (a
//!   scheduler and N executors, the binaries named by `BALLISTA_SCHEDULER` and
//!   `BALLISTA_EXECUTOR`, by default those `.ci/run` builds under
//!   `~/.cache/hedui/tools/bin`), with each cluster process's peak memory, and compares
//!   its results.jsonl with the local run's byte for byte.
//! - `--no-duckdb` skips the reference. DuckDB is installed by the bench itself, from
//!   PyPI, into a virtual environment under `~/.cache/hedui/duckdb-venv` (Python 3 with
//!   `venv` needed); `.ci/run` never runs it.
//!
//! The reference (`benches/duckdb_reference.py`) runs the rules of `pipelines/*.sql` as
//! they are and builds each household's result in SQL; its input tables (households,
//! members, parameters) are made by hedui's library from the batch and the policy,
//! outside its timing (it is SQL's job from the tables on). Peak memory is the process's
//! maximum resident set (`wait4`), for hedui and for the Python process running DuckDB.

mod common;

use std::collections::BTreeMap;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use datafusion::parquet::arrow::ArrowWriter;
use serde_json::Value;

/// The DuckDB version the reference is measured with (pinned: figures compare).
const DUCKDB_VERSION: &str = "2.0.1";

struct Args {
    people: u64,
    households: u64,
    dir: Option<PathBuf>,
    folder: bool,
    duckdb: bool,
    memory_limit: Option<String>,
    ballista: Option<usize>,
}

fn args() -> Args {
    let (mut folder, mut duckdb, mut memory_limit, mut ballista) = (false, true, None, None);
    let city = common::args(|k, value| match k {
        "--folder" => folder = true,
        "--no-duckdb" => duckdb = false,
        "--memory-limit" => memory_limit = Some(value()),
        "--ballista" => ballista = Some(value().parse().expect("--ballista N: executors")),
        _ => {}
    });
    Args {
        people: city.people,
        households: city.households,
        dir: city.dir,
        folder,
        duckdb,
        memory_limit,
        ballista,
    }
}

/// One measured process.
struct Measured {
    wall: f64,
    user: f64,
    sys: f64,
    peak_rss_mb: f64,
    /// (seconds since start, stage) as the process reported them.
    stages: Vec<(f64, String)>,
}

/// Runs `cmd` to its end; wall time, CPU and peak RSS from `wait4`; stage lines parsed
/// from its stderr by `stage`.
fn measure(mut cmd: Command, stage: fn(&str) -> Option<(f64, String)>) -> Measured {
    cmd.stdout(Stdio::null()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().expect("cannot start the process");
    let err = child.stderr.take().expect("stderr piped");
    let reader = std::thread::spawn(move || {
        std::io::BufReader::new(err)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid value; wait4 fills it for the child we started.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let waited = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = started.elapsed().as_secs_f64();
    assert_eq!(waited, pid, "wait4 failed");
    let lines = reader.join().expect("stderr reader");
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{cmd:?} failed:\n{}",
        lines.join("\n")
    );
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Measured {
        wall,
        user: secs(usage.ru_utime),
        sys: secs(usage.ru_stime),
        peak_rss_mb: usage.ru_maxrss as f64 / 1024.0,
        stages: lines.iter().filter_map(|l| stage(l)).collect(),
    }
}

/// `… stage: WHAT at_us=N rss_mib=M` (hedui's debug log): the stage with the process's
/// resident memory then.
fn hedui_stage(line: &str) -> Option<(f64, String)> {
    let what = line.split_once("stage: ")?.1;
    let (what, fields) = what.rsplit_once(" at_us=")?;
    let mut fields = fields.split_whitespace();
    let at = fields.next()?.parse::<f64>().ok()? / 1e6;
    let rss = fields
        .find_map(|f| f.strip_prefix("rss_mib="))
        .map_or(String::new(), |m| format!(" (RSS {m} MiB)"));
    Some((at, format!("{what}{rss}")))
}

/// `stage SECS WHAT` (the reference script).
fn script_stage(line: &str) -> Option<(f64, String)> {
    let rest = line.strip_prefix("stage ")?;
    let (at, what) = rest.split_once(' ')?;
    Some((at.parse().ok()?, what.to_owned()))
}

fn check(dir: &Path, as_of: &str, data: &[&str], out: &str, limit: Option<&str>) -> Measured {
    let p = |r: &str| dir.join(r).display().to_string();
    let _ = std::fs::remove_dir_all(dir.join(out));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hedui"));
    cmd.args(["check", "--applicants", &p("city/applicants.csv")])
        .args(data)
        .args(["--policy", &p("city/policy.toml"), "--as-of", as_of])
        .args(["--out", &p(out)])
        .env("HEDUI_LOG", "hedui=debug");
    if let Some(l) = limit {
        cmd.args(["--memory-limit", l]);
    }
    measure(cmd, hedui_stage)
}

/// The reference's input tables as Parquet, and the canonical columns of each evidence
/// table with their kind (`columns.json`).
fn reference_inputs(dir: &Path, as_of: &str) -> PathBuf {
    let inputs = dir.join("duckdb-inputs");
    let _ = std::fs::remove_dir_all(&inputs);
    std::fs::create_dir_all(&inputs).unwrap();
    let as_of: chrono::NaiveDate = as_of.parse().unwrap();
    let policy = hedui::policy::Policy::load(&dir.join("city/policy.toml")).unwrap();
    let batch = hedui::applicants::load(&dir.join("city/applicants.csv"), &policy, as_of).unwrap();
    let present: Vec<String> = hedui_connectors::schema::tables()
        .iter()
        .map(|t| t.table.clone())
        .collect();
    let statuses: Vec<(String, String)> = hedui_connectors::schema::sources()
        .into_iter()
        .map(|(s, _)| (s.to_owned(), "present".to_owned()))
        .collect();
    // Every dated table reaching back far enough: no household stale.
    let tables = hedui::engine::inputs::input_tables(
        &batch.households,
        &policy,
        as_of,
        "applicants.csv",
        &present,
        &statuses,
        &[],
    )
    .unwrap();
    for (name, b) in tables {
        let f = std::fs::File::create(inputs.join(format!("{name}.parquet"))).unwrap();
        let mut w = ArrowWriter::try_new(f, b.schema(), None).unwrap();
        w.write(&b).unwrap();
        w.close().unwrap();
    }
    use hedui_connectors::schema::ColumnType;
    let mut columns = serde_json::Map::new();
    for (label, _, cols) in hedui::engine::queries::evidence_queries() {
        let table = if label == hedui::engine::queries::APPLICANTS_TABLE {
            "members".to_owned()
        } else {
            label.clone()
        };
        let cols: Vec<Value> = cols
            .iter()
            .map(|(c, ty)| {
                let kind = match ty {
                    ColumnType::Money | ColumnType::Decimal => "decimal",
                    ColumnType::Date => "date",
                    ColumnType::Month => "month",
                    _ => "text",
                };
                serde_json::json!([c, kind])
            })
            .collect();
        columns.insert(label, serde_json::json!({"table": table, "columns": cols}));
    }
    std::fs::write(
        inputs.join("columns.json"),
        serde_json::to_string_pretty(&columns).unwrap(),
    )
    .unwrap();
    inputs
}

/// The Python of the venv holding DuckDB (made on first use).
fn duckdb_python() -> PathBuf {
    let home = std::env::var_os("HOME").expect("HOME");
    let venv = Path::new(&home).join(".cache/hedui/duckdb-venv");
    let python = venv.join("bin/python");
    let has_duckdb = |py: &Path| {
        Command::new(py)
            .args([
                "-c",
                &format!(
                    "import duckdb; assert duckdb.__version__ == '{}'",
                    DUCKDB_VERSION
                ),
            ])
            .status()
            .is_ok_and(|s| s.success())
    };
    if !has_duckdb(&python) {
        let duckdb = format!("duckdb=={DUCKDB_VERSION}");
        eprintln!("installing {duckdb} into {}", venv.display());
        let ok = Command::new("python3")
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "python3 -m venv failed (install python3 and python3-venv)"
        );
        let ok = Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", &duckdb])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "pip install {duckdb} failed");
    }
    python
}

/// Results by household_id.
fn results(path: &Path) -> BTreeMap<String, Value> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    std::io::BufReader::new(f)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(&l.unwrap()).unwrap();
            (v["household_id"].as_str().unwrap().to_owned(), v)
        })
        .collect()
}

/// Where two JSON values first differ (a path like `flags[2].evidence[0].record.name`).
fn first_difference(a: &Value, b: &Value, at: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, &format!("{at}.{k}")),
                _ => Some(format!("{at}.{k} (present on one side only)")),
            })
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, &format!("{at}[{i}]"))),
        _ if a == b => None,
        _ => Some(format!("{at}: {a} vs {b}")),
    }
}

fn print_run(name: &str, m: &Measured) {
    println!(
        "| {name} | {:.1} | {:.1} + {:.1} | {:.0} |",
        m.wall, m.user, m.sys, m.peak_rss_mb
    );
}

fn print_stages(name: &str, m: &Measured) {
    println!("\n{name}, stage by stage (seconds since start; the stage's own time):\n");
    println!("| stage | at s | took s |");
    println!("| --- | --- | --- |");
    let mut last = 0.0;
    for (at, what) in &m.stages {
        println!("| {what} | {at:.1} | {:.1} |", at - last);
        last = *at;
    }
    println!("| (exit) | {:.1} | {:.1} |", m.wall, m.wall - last);
}

fn main() {
    let a = args();
    let tmp = tempfile::tempdir().unwrap();
    let dir = a.dir.clone().unwrap_or_else(|| tmp.path().to_owned());
    let as_of = common::city(&dir, a.people, a.households);
    let limit = a.memory_limit.as_deref();
    let lake = dir.join("lake").display().to_string();
    let sources = dir.join("city/sources").display().to_string();

    let mut runs: Vec<(String, Measured)> = Vec::new();
    let m = check(&dir, &as_of, &["--lake", &lake], "out-lake", limit);
    runs.push(("`hedui check --lake`".into(), m));
    if a.folder {
        let m = check(&dir, &as_of, &["--sources", &sources], "out-folder", limit);
        runs.push(("`hedui check --sources` (Parquet folder)".into(), m));
    }
    let mut cluster_note = None;
    if let Some(n) = a.ballista {
        let tools = std::path::PathBuf::from(std::env::var("HOME").unwrap_or_default())
            .join(".cache/hedui/tools/bin");
        let bin = |var: &str, name: &str| {
            std::env::var_os(var).map_or_else(|| tools.join(name), std::path::PathBuf::from)
        };
        let started = Instant::now();
        let cluster = common::ballista::Ballista::start(
            &bin("BALLISTA_SCHEDULER", "ballista-scheduler"),
            &bin("BALLISTA_EXECUTOR", "ballista-executor"),
            n,
        );
        let ready = started.elapsed().as_secs_f64();
        let url = cluster.url();
        let m = check(
            &dir,
            &as_of,
            &["--lake", &lake, "--engine", &url],
            "out-cluster",
            limit,
        );
        let peaks = cluster.peak_rss_mib();
        drop(cluster);
        let same = std::fs::read(dir.join("out-cluster/results.jsonl")).ok()
            == std::fs::read(dir.join("out-lake/results.jsonl")).ok();
        let total: f64 = peaks.iter().map(|(_, m)| m).sum();
        cluster_note = Some((
            format!(
                "Ballista ({n} executors on this machine; ready in {ready:.1} s): peak RSS {} — cluster total {total:.0} MiB, with hedui {:.0} MiB; results.jsonl {} the local run's",
                peaks
                    .iter()
                    .map(|(p, m)| format!("{p} {m:.0} MiB"))
                    .collect::<Vec<_>>()
                    .join(", "),
                total + m.peak_rss_mb,
                if same { "byte-equal to" } else { "DIFFERENT from" }
            ),
            same,
        ));
        runs.push((
            format!("`hedui check --lake --engine` (Ballista, {n} executors)"),
            m,
        ));
    }
    let mut compared = None;
    if a.duckdb {
        let python = duckdb_python();
        let inputs = reference_inputs(&dir, &as_of);
        let out = dir.join("duckdb-results.jsonl");
        let mut cmd = Command::new(python);
        cmd.arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/benches/duckdb_reference.py"
        ))
        .args(["--lake", &lake])
        .arg("--inputs")
        .arg(&inputs)
        .args([
            "--pipelines",
            concat!(env!("CARGO_MANIFEST_DIR"), "/pipelines"),
        ])
        .arg("--out")
        .arg(&out);
        let m = measure(cmd, script_stage);
        runs.push(("DuckDB reference (same job, SQL)".into(), m));
        let ours = results(&dir.join("out-lake/results.jsonl"));
        let theirs = results(&out);
        let same = ours
            .iter()
            .filter(|(k, v)| theirs.get(*k) == Some(*v))
            .count();
        let mut diffs: Vec<String> = Vec::new();
        for (k, v) in &ours {
            match theirs.get(k) {
                None => diffs.push(format!("{k}: not in the reference's results")),
                Some(w) => diffs.extend(first_difference(v, w, k)),
            }
        }
        diffs.extend(
            theirs
                .keys()
                .filter(|k| !ours.contains_key(*k))
                .map(|k| format!("{k}: only in the reference's results")),
        );
        compared = Some((ours.len(), theirs.len(), same, diffs));
    }

    println!(
        "\ncity in {} (check date {as_of}); release build; {} cores\n",
        dir.display(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| run | wall s | user + sys CPU s | peak RSS MB |");
    println!("| --- | --- | --- | --- |");
    for (name, m) in &runs {
        print_run(name, m);
    }
    for (name, m) in &runs {
        print_stages(name, m);
    }
    if let Some((note, same)) = &cluster_note {
        println!("\n{note}");
        if !same {
            std::process::exit(1);
        }
    }
    if let Some((ours, theirs, same, diffs)) = compared {
        println!(
            "\nanswers: hedui {ours} households, reference {theirs}; {same} identical (verdict, figures, flags, evidence records)"
        );
        for d in diffs.iter().take(10) {
            println!("  differs: {d}");
        }
        if let (Some((_, h)), Some((_, r))) = (runs.first(), runs.last()) {
            println!(
                "hedui check --lake / reference wall time: {:.2}",
                h.wall / r.wall
            );
        }
        if !diffs.is_empty() {
            std::process::exit(1);
        }
    }
}
