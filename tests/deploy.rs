//! docs/DEPLOY.md's first day (`examples/deploy/first-day.sh`) runs as written, under a
//! temporary root: the folders and the key get their modes, the unit's ExecStart serves,
//! the first admin, pull, recipients list and reconciliation go through; then the
//! certificate is renewed with SIGHUP (`systemctl reload`) without a restart, a broken
//! renewal keeps the certificate in use, the audit chain verifies and SIGTERM stops it.

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use support::server::{accepted_rows, hedui, Site};

/// Stops the service the script started (its pid file) when the test ends, however.
struct Service(PathBuf);

impl Service {
    fn pid(&self) -> Option<String> {
        std::fs::read_to_string(&self.0)
            .ok()
            .map(|p| p.trim().to_owned())
    }

    fn signal(&self, sig: &str) {
        let pid = self.pid().expect("the script wrote the service's pid");
        let ok = Command::new("kill").args([sig, &pid]).status().unwrap();
        assert!(ok.success(), "kill {sig} {pid}");
    }

    fn running(&self) -> bool {
        self.pid()
            .is_some_and(|p| Path::new(&format!("/proc/{p}")).exists() && !zombie(&p))
    }
}

fn zombie(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| s.split(' ').nth(2) == Some("Z"))
        .unwrap_or(true)
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill").args(["-9", &pid]).status();
        }
    }
}

/// A self-signed certificate for 127.0.0.1: (PEM certificate, PEM key).
fn certificate() -> (String, String) {
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()]).unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

/// Whether `https://127.0.0.1:port/livez` answers to a client that trusts only `pem`.
async fn trusted(port: u16, pem: &str) -> bool {
    let c = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    c.get(format!("https://127.0.0.1:{port}/livez"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_day_of_deploy_md_runs_as_written() {
    let curl = Command::new("sh")
        .args([
            "-c",
            "command -v curl >/dev/null && command -v setsid >/dev/null && command -v sha256sum >/dev/null",
        ])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        curl,
        "the first day needs curl, setsid and sha256sum (.ci/run installs them)"
    );
    // The centre's inputs: a generated city stands in for the departments.
    let site = Site::new();
    let work = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let w = |f: &str| work.path().join(f);
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy");
    // The page shows the unit that runs here, line for line.
    let unit = std::fs::read_to_string(examples.join("hedui.service")).unwrap();
    let page =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/DEPLOY.md"))
            .unwrap();
    assert!(
        page.contains(&unit),
        "docs/DEPLOY.md shows examples/deploy/hedui.service as it is"
    );
    std::fs::copy(env!("CARGO_BIN_EXE_hedui"), w("hedui")).unwrap();
    std::fs::copy(examples.join("hedui.service"), w("hedui.service")).unwrap();
    std::fs::copy(site.p("city/policy.toml"), w("policy.toml")).unwrap();
    let (pem, key) = certificate();
    std::fs::write(w("server.pem"), &pem).unwrap();
    std::fs::write(w("server.key"), &key).unwrap();
    std::fs::write(
        w("sources.toml"),
        support::files_sources(&site.p("city/sources")),
    )
    .unwrap();
    std::fs::write(w("recipients.csv"), accepted_rows(&site, &["41", "51"])).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let r = |p: &str| root.path().join(p.trim_start_matches('/'));
    let service = Service(r("/run/hedui.pid"));

    let out = Command::new("timeout")
        .args(["--kill-after=10", "900", "bash"])
        .arg(examples.join("first-day.sh"))
        .current_dir(work.path())
        .env("ROOT", root.path())
        .env("PORT", port.to_string())
        .env("LISTEN", "127.0.0.1")
        .env("HOST", "127.0.0.1")
        .env("ADMIN_PASSWORD", "first-admin-password")
        .env("SYSTEM_TOKEN", "case-system-token-of-the-test")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = || std::fs::read_to_string(r("/run/hedui.log")).unwrap_or_default();
    assert!(
        out.status.success() && stdout.contains("first day: ok"),
        "first-day.sh failed\n--- stdout\n{stdout}\n--- stderr\n{}\n--- hedui.log\n{}",
        String::from_utf8_lossy(&out.stderr),
        log()
    );
    assert!(stdout.contains("\"status\":\"ready\""), "{stdout}");
    assert!(stdout.contains("\"added\":"), "the list kept: {stdout}");
    assert!(
        stdout.contains("\"status\":\"done\""),
        "the first run done: {stdout}"
    );

    // Who may read what.
    assert_eq!(mode(&r("/var/lib/hedui")), 0o700);
    assert_eq!(
        mode(&r("/var/lib/hedui/state")),
        0o700,
        "made by hedui itself"
    );
    assert_eq!(mode(&r("/srv/hedui-key")), 0o700);
    assert_eq!(mode(&r("/srv/hedui-key/audit.key")), 0o600);
    assert_eq!(mode(&r("/etc/hedui/tls/server.key")), 0o640);
    assert_eq!(mode(&r("/etc/hedui/hedui.toml")), 0o640);
    assert!(
        !r("/var/lib/hedui/state/audit.key").exists(),
        "the key is on its own volume, not beside the database"
    );

    // A renewed certificate: SIGHUP, and new connections get it without a restart.
    let pid = service.pid().unwrap();
    assert!(trusted(port, &pem).await, "the first certificate is served");
    let (pem2, key2) = certificate();
    std::fs::write(r("/etc/hedui/tls/server.pem"), &pem2).unwrap();
    std::fs::write(r("/etc/hedui/tls/server.key"), &key2).unwrap();
    service.signal("-HUP");
    let started = Instant::now();
    while !trusted(port, &pem2).await {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the renewed certificate is not served\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        !trusted(port, &pem).await,
        "the old one is no longer served"
    );
    assert_eq!(service.pid().unwrap(), pid, "no restart");
    assert!(log().contains("certificate reloaded"), "{}", log());
    // A broken renewal (a key that is not the certificate's) keeps the one in use.
    let (_, other_key) = certificate();
    std::fs::write(r("/etc/hedui/tls/server.key"), other_key).unwrap();
    service.signal("-HUP");
    let started = Instant::now();
    while !log().contains("证书重新加载失败") {
        assert!(started.elapsed() < Duration::from_secs(30), "{}", log());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(trusted(port, &pem2).await, "the certificate in use is kept");
    assert!(service.running());

    // The chain the first day wrote verifies; SIGTERM stops the service cleanly.
    let config = r("/etc/hedui/hedui.toml");
    let verify = hedui(&["audit", "verify", "--config", &config.display().to_string()]);
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
    service.signal("-TERM");
    let started = Instant::now();
    while service.running() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "SIGTERM did not stop it"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(log().contains("hedui: stopped"), "{}", log());
    assert!(
        !log().contains("case-system-token-of-the-test"),
        "no token in the log"
    );
}

/// `systemctl reload` of a server that runs without TLS (loopback only): the SIGHUP is
/// said and ignored, never the end of the process (systemd would not restart it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sighup_without_tls_is_ignored() {
    let site = Site::new();
    let cfg = std::fs::read_to_string(site.p("hedui.toml")).unwrap();
    let plain: String = cfg
        .lines()
        .filter(|l| !l.starts_with("tls_cert") && !l.starts_with("tls_key"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(plain, cfg);
    std::fs::write(site.p("plain.toml"), plain).unwrap();
    let s = site.serve_with("plain.toml", &[]);
    assert!(s.url.starts_with("http://"), "{}", s.url);
    let pid = s.child.id().to_string();
    // Two, one after the other (signals sent at once may arrive as one).
    for n in 1..=2 {
        assert!(Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success());
        let started = Instant::now();
        loop {
            let seen = s.log.lock().unwrap().matches("SIGHUP ignored").count();
            if seen >= n {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{}",
                s.log.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let live = reqwest::get(format!("{}/livez", s.url.trim_end_matches('/')))
        .await
        .unwrap();
    assert_eq!(live.status().as_u16(), 200);
}
