//! The README's server walkthrough (`examples/serve-walkthrough.sh`) runs as written on
//! this machine: a generated city, a test certificate made with openssl, tokens, the lake,
//! `hedui serve`, and one curl per route, ending with a verified audit chain.

use std::process::Command;

#[test]
fn the_server_walkthrough_runs_as_written() {
    for tool in ["openssl", "curl", "sha256sum"] {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .status()
            .is_ok_and(|s| s.success());
        assert!(found, "the walkthrough needs {tool} (.ci/run installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    // A free port for the server.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/serve-walkthrough.sh");
    // The script waits with deadlines of its own; `timeout` bounds the whole of it, so a
    // step that hangs fails the test instead of holding it.
    let out = Command::new("timeout")
        .args(["--kill-after=10", "900", "bash"])
        .arg(&script)
        .current_dir(dir.path())
        .env("HEDUI", env!("CARGO_BIN_EXE_hedui"))
        .env("PORT", port.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    assert!(
        out.status.success(),
        "walkthrough failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- serve.log\n{log}"
    );
    assert!(stdout.contains("walkthrough: ok"), "{stdout}");
    // The one household: a result (the verdict and its figures).
    assert!(stdout.contains("\"household_id\":\"SQ1\""), "{stdout}");
    assert!(stdout.contains("\"verdict\":"), "{stdout}");
    // Every file the routes gave is there and is what it says.
    let read = |f: &str| std::fs::read_to_string(dir.path().join(f)).unwrap();
    assert!(read("results.jsonl").lines().count() > 100);
    assert!(read("report.html").contains("居民家庭经济状况核对报告"));
    assert!(read("run-report.html").contains("本次复核的变化"));
    assert!(read("changes.json").contains("\"changes\""));
    assert!(read("audit.json").contains("\"entries\""));
    assert!(read("openapi.json").contains("/api/v1/batches/{id}/report"));
    assert!(stdout.contains("hedui_job_queue_depth 0"), "{stdout}");
    assert!(stdout.contains("\"status\":\"ready\""), "{stdout}");
    // The staff's household shows no full ID number; the server's log none either.
    assert!(!stdout.contains("410102198001010018"), "{stdout}");
    assert!(!log.contains("410102198001010018"), "{log}");
}
