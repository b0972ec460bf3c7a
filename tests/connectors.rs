//! `hedui ingest` from a department's HTTPS interface (SPEC §9), against the department
//! simulator (a real HTTPS server on loopback): paging with cursors, field and code
//! mappings, bearer tokens and mutual TLS, retries of transient faults from the page they
//! hit, and failures that commit nothing, are recorded, and leave checks `incomplete`.

mod support;

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::deptsim::{self, Department, Fault, Pki, Running};
use support::lines;
use support::site::*;

/// A snapshot pull pages through the table with cursors, sends the bearer token, maps
/// the department's fields and codes, lists the record with an unknown code as
/// malformed, and commits one snapshot.
#[test]
fn snapshot_pull_pages_maps_and_commits() {
    let site = Site::new(false, false);
    let cfg = site.token_config("");
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 0);
    let all = text(&out);
    assert!(
        all.contains("hr: snapshot 1 committed (1 tables, 6 records, 1 malformed)"),
        "{all}"
    );
    assert!(!all.contains(TOKEN), "the token never appears in output");
    assert_eq!(
        site.cursors(),
        [None, Some("c3".into()), Some("c6".into())],
        "three pages of three"
    );
    let problems = std::fs::read_dir(site.dir.path().join("lake/sources/hr/snapshots"))
        .unwrap()
        .flat_map(|e| std::fs::read_dir(e.unwrap().path().join("hr_income")).unwrap())
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("problems-") && name.ends_with(".jsonl")
        })
        .unwrap();
    let problems = std::fs::read_to_string(problems).unwrap();
    assert!(
        problems.contains("\"reason\":\"invalid_enum\""),
        "{problems}"
    );
    assert!(problems.contains("\"value\":\"99\""), "{problems}");
    assert!(
        problems.contains("\"file\":\"hr_income page 2\""),
        "the record names the page it came on: {problems}"
    );

    let out = hedui(&["sources", "--config", &cfg]);
    assert_exit(&out, 0);
    let all = text(&out);
    assert!(all.contains("hr: snapshot 1"), "{all}");
    assert!(all.contains("hr_income: 6 records, 1 malformed"), "{all}");
}

/// 500, 503, 429 with Retry-After, an answer slower than timeout_s and a connection
/// reset mid-page are all retried, each time from the page they hit (the cursor of the
/// interrupted page, never the first page again), and the pull completes.
#[test]
fn transient_faults_are_retried_from_the_page_they_hit() {
    let site = Site::new(false, false);
    let cfg = site.token_config("timeout_s = 1\nmax_retries = 5");
    site.dept.inject([
        Fault::None,
        Fault::Status(500),
        Fault::Status(503),
        Fault::TooMany(1),
        Fault::Slow(Duration::from_secs(3)),
        Fault::ResetMidPage,
    ]);
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("hr: snapshot 1 committed (1 tables, 6 records, 1 malformed)"));
    let c3 = Some("c3".to_owned());
    assert_eq!(
        site.cursors(),
        [
            None,
            c3.clone(),
            c3.clone(),
            c3.clone(),
            c3.clone(),
            c3.clone(),
            c3,
            Some("c6".into())
        ]
    );
}

/// A pull that finally fails — 503 beyond max_retries, a truncated JSON page, an expired
/// token — commits nothing: the previous snapshot stays current, the failure is
/// recorded with its error, `hedui sources` shows it, and the exit status is 1.
#[test]
fn failed_pulls_commit_nothing_and_are_recorded() {
    let site = Site::new(false, false);
    let cfg = site.token_config("max_retries = 1");
    assert_exit(&hedui(&["ingest", "--config", &cfg]), 0);
    assert_eq!(site.manifests(), 1);

    site.dept.always(Some(Fault::Status(503)));
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 1);
    assert!(
        text(&out).contains(
            "hr: failed, nothing committed: cannot pull hr_income from https://127.0.0.1:"
        ),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("page 1: HTTP 503 Service Unavailable (gave up after 2 attempts)"),
        "{}",
        text(&out)
    );
    site.dept.always(None);

    // The second page is cut off: nothing of the pull is kept, though page 1 was good.
    site.dept.inject([Fault::None, Fault::TruncatedJson]);
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 1);
    assert!(
        text(&out).contains("page 2: the department returned a truncated JSON page"),
        "{}",
        text(&out)
    );

    let before = site.dept.log().len();
    site.dept.always(Some(Fault::Unauthorized));
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 1);
    assert!(
        text(&out).contains("page 1: HTTP 401 Unauthorized: the department refused hedui's credentials; check the token in HEDUI_TEST_HR_TOKEN"),
        "{}",
        text(&out)
    );
    assert!(!text(&out).contains(TOKEN));
    assert_eq!(
        site.dept.log().len(),
        before + 1,
        "a refused token is not retried"
    );
    site.dept.always(None);

    assert_eq!(site.manifests(), 1, "no failed pull committed a snapshot");
    let out = hedui(&["sources", "--config", &cfg]);
    assert_exit(&out, 0);
    let all = text(&out);
    assert!(all.contains("hr: snapshot 1"), "{all}");
    assert!(all.contains("last failed pull"), "{all}");
    assert!(all.contains("HTTP 401 Unauthorized"), "{all}");
}

/// A department whose certificate is not signed by the configured CA is refused at the
/// handshake, never retried, and no request reaches it.
#[test]
fn untrusted_certificate_is_refused() {
    let site = Site::new(true, false);
    let cfg = site.token_config("max_retries = 3");
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 1);
    let all = text(&out);
    assert!(
        all.contains("TLS failed: invalid peer certificate"),
        "{all}"
    );
    assert!(all.contains("ca_file"), "{all}");
    assert!(site.dept.log().is_empty());
    assert_eq!(site.manifests(), 0);
}

/// A department that requires mutual TLS refuses a connection without a client
/// certificate and accepts hedui's.
#[test]
fn mutual_tls_with_a_client_certificate() {
    let site = Site::new(false, true);
    let cfg = site.config("", "max_retries = 1");
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 1);
    // Under TLS 1.3 the refusal arrives after the client's handshake: hedui sees the
    // department's CertificateRequired alert or the connection closed.
    assert!(
        text(&out).contains("hr: failed, nothing committed"),
        "{}",
        text(&out)
    );
    assert!(site.dept.log().is_empty(), "no request got through");
    assert_eq!(site.manifests(), 0);

    let cfg = site.config(
        "client_cert = \"client.pem\"\nclient_key = \"client.key\"",
        "max_retries = 1",
    );
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 0);
    assert!(
        text(&out).contains("hr: snapshot 1 committed"),
        "{}",
        text(&out)
    );
}

/// Bad credentials settings are refused before any request: a token variable that is not
/// set, a client certificate that cannot be read.
#[test]
fn credentials_that_cannot_be_used_are_named() {
    let site = Site::new(false, false);
    let cfg = site.config("token_env = \"HEDUI_TEST_TOKEN_NOT_SET\"", "");
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 2);
    assert!(
        text(&out).contains("the bearer token variable HEDUI_TEST_TOKEN_NOT_SET is not set"),
        "{}",
        text(&out)
    );
    let cfg = site.config(
        "client_cert = \"missing.pem\"\nclient_key = \"client.key\"",
        "",
    );
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 2);
    assert!(
        text(&out).contains("cannot read client_cert"),
        "{}",
        text(&out)
    );
    assert!(site.dept.log().is_empty());
}

/// Results without the evidence's `file`/`row` (an HTTP record names its page instead of
/// a CSV row), to compare a lake fed over HTTPS with the plain folder.
fn without_locations(mut v: Value) -> Value {
    if let Some(flags) = v["flags"].as_array_mut() {
        for f in flags {
            if let Some(ev) = f["evidence"].as_array_mut() {
                for e in ev.iter_mut() {
                    if let Some(o) = e.as_object_mut() {
                        o.remove("file");
                        o.remove("row");
                    }
                }
                ev.sort_by_key(|e| e.to_string());
            }
        }
    }
    v
}

/// A generated city whose 人社 department answers over HTTPS (the simulator, with its own
/// field names and codes, from the city's hr_income) and whose other departments are the
/// city's folder; `hr` holds the extra lines of the hr `[[source]]`.
struct HttpCity {
    dir: tempfile::TempDir,
    today: String,
    dept: Arc<Department>,
    _sim: Running,
    cfg: String,
    hr_csv: String,
}

impl HttpCity {
    fn new(seed: &str, hr: &str) -> HttpCity {
        let dir = tempfile::tempdir().unwrap();
        let p = |rel: &str| dir.path().join(rel).display().to_string();
        let today = chrono::Local::now().date_naive().to_string();
        assert_exit(
            &hedui(&[
                "generate",
                "--people",
                "600",
                "--households",
                "60",
                "--seed",
                seed,
                "--as-of",
                &today,
                "--out",
                &p("city"),
            ]),
            0,
        );
        let hr_csv =
            std::fs::read_to_string(dir.path().join("city/sources/hr_income.csv")).unwrap();
        let pki = Pki::new();
        std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
        let dept = Arc::new(Department::new(Some(TOKEN)).table_raw(
            "hr_income",
            "SFZH",
            deptsim::hr_records_from_csv(&hr_csv),
        ));
        let sim = deptsim::start(dept.clone(), pki.server_config(false, false));
        let mut cfg = format!(
            "[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n\n[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"{}\"\nca_file = \"ca.pem\"\ntoken_env = \"{TOKEN_ENV}\"\n{hr}\n{}\n",
            sim.url(),
            deptsim::hr_mapping_toml()
        );
        for s in ["housing", "police", "tax", "bank", "fund"] {
            cfg.push_str(&format!(
                "[[source]]\nname = \"{s}\"\nkind = \"files\"\nurl = \"{}\"\n",
                p("city/sources")
            ));
        }
        std::fs::write(dir.path().join("hedui.toml"), cfg).unwrap();
        let cfg = p("hedui.toml");
        HttpCity {
            dir,
            today,
            dept,
            _sim: sim,
            cfg,
            hr_csv,
        }
    }

    fn p(&self, rel: &str) -> String {
        self.dir.path().join(rel).display().to_string()
    }

    /// `hedui check` of `applicants` (relative to the city's folder) on `data`, into `out`.
    fn check(&self, data: &[&str], applicants: &str, out: &str) -> Output {
        let (applicants, policy, out) =
            (self.p(applicants), self.p("city/policy.toml"), self.p(out));
        let mut args = vec!["check", "--applicants", &applicants, "--policy", &policy];
        args.extend_from_slice(data);
        args.extend_from_slice(&["--as-of", &self.today, "--out", &out]);
        let o = hedui(&args);
        assert_exit(&o, 0);
        o
    }
}

/// A generated city whose 人社 department answers over HTTPS with its own field names
/// and codes: a first pull that fails leaves hr missing (no household eligible); after a
/// good pull, the check on the lake gives the same verdicts, flags and figures as the
/// check on the plain folder.
#[test]
fn http_fed_lake_checks_like_the_folder() {
    let c = HttpCity::new("5", "page_size = 500\nmax_retries = 1");
    let (dept, cfg, dir) = (&c.dept, &c.cfg, &c.dir);
    let p = |rel: &str| c.p(rel);
    let check = |data: &[&str], out: &str| {
        c.check(data, "city/applicants.csv", out);
    };

    dept.always(Some(Fault::Status(500)));
    assert_exit(&hedui(&["ingest", "--config", &cfg]), 1);
    check(&["--lake", &p("lake")], "failed");
    let failed = lines(&dir.path().join("failed/results.jsonl"));
    assert!(failed.len() > 40);
    for r in &failed {
        assert_eq!(r["missing_sources"], json!(["hr"]), "{r}");
        assert_ne!(r["verdict"], "eligible", "{r}");
    }

    dept.always(None);
    assert_exit(&hedui(&["ingest", "--config", &cfg, "--source", "hr"]), 0);
    check(&["--lake", &p("lake")], "lake");
    check(&["--sources", &p("city/sources")], "folder");
    let lake: Vec<Value> = lines(&dir.path().join("lake/results.jsonl"))
        .into_iter()
        .map(without_locations)
        .collect();
    let folder: Vec<Value> = lines(&dir.path().join("folder/results.jsonl"))
        .into_iter()
        .map(without_locations)
        .collect();
    assert!(folder.iter().any(|r| r["verdict"] == "eligible"));
    assert!(folder.iter().any(|r| r["flags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["rule"] == "income_over_limit")));
    assert_eq!(
        lake, folder,
        "the lake fed over HTTPS decides like the folder"
    );
    let count = |path: PathBuf| std::fs::read_to_string(path).unwrap().lines().count();
    assert_eq!(
        count(dir.path().join("lake/data_quality.jsonl")),
        count(dir.path().join("folder/data_quality.jsonl")),
        "the same malformed records are found either way"
    );
}

/// A 人社 department in lookup mode: `check --config` asks it only for the members of
/// the batch's accepted households, each request with its household's authorization and
/// at most page_size ID numbers, and decides as a check on the folder does; the answer is
/// kept as a lookup snapshot that `--snapshot-at` re-reads without asking again, that
/// never stands in for people it was not asked about, and a department that fails leaves
/// hr missing (never eligible) while the run completes.
#[test]
fn lookup_mode_asks_only_for_the_batch() {
    let c = HttpCity::new("8", "mode = \"lookup\"\npage_size = 4\nmax_retries = 0");
    let (dept, cfg, dir, hr_csv) = (&c.dept, &c.cfg, &c.dir, &c.hr_csv);
    let p = |rel: &str| c.p(rel);
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 0);
    assert!(text(&out).contains("hr: lookup mode"), "{}", text(&out));
    assert!(
        dept.log().is_empty(),
        "ingest does not pull a lookup source"
    );

    let check = |data: &[&str], applicants: &str, out: &str| c.check(data, applicants, out);
    check(&["--config", &cfg], "city/applicants.csv", "lookup");
    check(
        &["--sources", &p("city/sources")],
        "city/applicants.csv",
        "folder",
    );
    let strip = |f: &str| -> Vec<Value> {
        lines(&dir.path().join(f))
            .into_iter()
            .map(without_locations)
            .collect()
    };
    let (lookup, folder) = (strip("lookup/results.jsonl"), strip("folder/results.jsonl"));
    assert_eq!(lookup, folder, "lookups decide as the full data does");
    assert!(folder.iter().any(|r| r["verdict"] == "eligible"));

    // Only the accepted households' members were asked for, each under its authorization.
    let log = dept.log();
    assert!(log.iter().all(|l| l.method == "POST"));
    assert!(log.iter().all(|l| l.ids.len() <= 4 && !l.ids.is_empty()));
    assert!(log
        .iter()
        .all(|l| l.authorization_id.as_deref().is_some_and(|a| !a.is_empty())));
    let asked: std::collections::BTreeSet<String> =
        log.iter().flat_map(|l| l.ids.iter().cloned()).collect();
    let declared: u64 = folder.iter().map(|r| r["members"].as_u64().unwrap()).sum();
    assert!(
        !asked.is_empty() && asked.len() as u64 <= declared,
        "{} people asked for, {declared} declared",
        asked.len()
    );
    let manifest_dir = dir.path().join("lake/sources/hr/manifests");
    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(manifest_dir.join("00000000000000000001.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["mode"], "lookup");
    let queried: std::collections::BTreeSet<String> = serde_json::from_str(
        &std::fs::read_to_string(
            dir.path()
                .join("lake")
                .join(manifest["queried_file"].as_str().unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        asked, queried,
        "the snapshot names exactly the people asked for"
    );
    let hr_records = hr_csv.lines().count() - 1;
    let held: u64 = manifest["tables"][0]["rows"].as_u64().unwrap()
        + manifest["tables"][0]["problems"].as_u64().unwrap();
    assert!(
        (held as usize) < hr_records,
        "the lookup holds the batch's records only ({held} of {hr_records})"
    );

    // Re-reading the past: the kept answer, no new request.
    let at = manifest["committed_at"].as_str().unwrap().to_owned();
    let asked_before = dept.log().len();
    check(
        &["--config", &cfg, "--snapshot-at", &at],
        "city/applicants.csv",
        "again",
    );
    assert_eq!(dept.log().len(), asked_before, "--snapshot-at asks nobody");
    assert_eq!(strip("again/results.jsonl"), lookup);

    // A batch with somebody the lookup was not asked about: the kept answer cannot
    // speak for them, so hr is missing.
    let first = &lookup[0];
    std::fs::write(
        dir.path().join("other.csv"),
        format!(
            "household_id,region_code,area_type,aid_type,authorization_id,id_number,name,relation\nNEW1,{},{},{},AUTH-NEW,{},王新,applicant\n",
            first["region_code"].as_str().unwrap(),
            first["area_type"].as_str().unwrap(),
            first["aid_type"].as_str().unwrap(),
            id("41018419990101001"),
        ),
    )
    .unwrap();
    let o = check(&["--lake", &p("lake")], "other.csv", "other");
    assert!(
        text(&o).contains(
            "1 member(s) of this batch were not asked about, so hr is missing for this run"
        ),
        "{}",
        text(&o)
    );
    for r in lines(&dir.path().join("other/results.jsonl")) {
        assert_eq!(r["missing_sources"], json!(["hr"]), "{r}");
    }

    // The department is down: the run completes, hr is missing, nobody is eligible.
    dept.always(Some(Fault::Status(503)));
    let o = check(&["--config", &cfg], "city/applicants.csv", "down");
    assert!(
        text(&o).contains("lookup failed, the source is missing for this run"),
        "{}",
        text(&o)
    );
    let down = lines(&dir.path().join("down/results.jsonl"));
    assert_eq!(down.len(), folder.len());
    for r in &down {
        assert_eq!(r["missing_sources"], json!(["hr"]), "{r}");
        assert_ne!(r["verdict"], "eligible", "{r}");
    }
}

/// An interrupted pull goes on from its last written page in the next run — after the
/// department failed mid-pull, and after the ingest was killed (SIGKILL) mid-pull — while
/// the lake stays readable with the previous snapshot current, and the resumed snapshot
/// holds exactly what a whole pull holds.
#[test]
fn interrupted_pulls_resume_from_the_last_written_page() {
    let site = Site::new(false, false);
    let cfg = site.token_config("max_retries = 0\ntimeout_s = 30");
    let run = |envs: &[(&str, &str)]| {
        Command::new(env!("CARGO_BIN_EXE_hedui"))
            .args(["ingest", "--config", &cfg])
            .env(TOKEN_ENV, TOKEN)
            .envs(envs.iter().copied())
            .output()
            .unwrap()
    };
    // One part per page of three, so every page is a point to resume from.
    let small_parts = [("HEDUI_LAKE_PART_ROWS", "1")];
    assert_exit(&run(&small_parts), 0);

    // The department fails on page 3: nothing is committed, pages 1–2 are kept.
    site.dept
        .inject([Fault::None, Fault::None, Fault::Status(503)]);
    let out = run(&small_parts);
    assert_exit(&out, 1);
    assert!(
        text(&out).contains("records written so far are kept; the next ingest goes on from there"),
        "{}",
        text(&out)
    );
    assert_eq!(site.manifests(), 1);
    let requests_then = site.dept.log().len();
    let out = run(&small_parts);
    assert_exit(&out, 0);
    assert!(
        text(&out).contains("going on with the pull begun"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("hr: snapshot 2 committed (1 tables, 6 records, 1 malformed)"),
        "{}",
        text(&out)
    );
    assert_eq!(
        site.cursors()[requests_then..],
        [Some("c6".to_owned())],
        "only the page that failed is asked for again"
    );

    // Killed while waiting for page 3: the lake is readable with snapshot 2 current.
    site.dept.inject([
        Fault::None,
        Fault::None,
        Fault::Slow(Duration::from_secs(20)),
    ]);
    let before = site.dept.log().len();
    let mut child = Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(["ingest", "--config", &cfg])
        .env(TOKEN_ENV, TOKEN)
        .env("HEDUI_LAKE_PART_ROWS", "1")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while site.dept.log().len() < before + 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "page 3 was never asked for"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(site.manifests(), 2);
    let out = hedui(&["sources", "--config", &cfg]);
    assert_exit(&out, 0);
    assert!(
        text(&out).contains("hr: snapshot 2 pulled"),
        "{}",
        text(&out)
    );

    let after_kill = site.dept.log().len();
    let out = run(&small_parts);
    assert_exit(&out, 0);
    assert!(
        text(&out).contains("hr: snapshot 3 committed (1 tables, 6 records, 1 malformed)"),
        "{}",
        text(&out)
    );
    assert_eq!(site.cursors()[after_kill..], [Some("c6".to_owned())]);
}
