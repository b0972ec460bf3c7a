//! Fault injection for the crash tests, the one hook: with the environment variable
//! named set to a number of milliseconds, the process says what it is about to do on
//! stderr and waits that long first, so a test can kill it at the worst moment (after a
//! snapshot's files are written and before its manifest is committed; after a run's
//! outputs are written and before the run is done). Unset, nothing happens.

/// Before a snapshot's manifest is committed (`hedui ingest`).
pub const BEFORE_COMMIT: &str = "HEDUI_PAUSE_BEFORE_COMMIT_MS";

/// Before a run with outputs is recorded done (a reconciliation, a server job).
pub const BEFORE_RUN_DONE: &str = "HEDUI_PAUSE_BEFORE_RUN_DONE_MS";

/// How long `var` asks to pause, if it is set to a number of milliseconds.
fn pause_of(var: &str) -> Option<std::time::Duration> {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_millis)
}

/// Pauses the async task as `var` asks, saying `what` on stderr first.
pub async fn pause(var: &str, what: &str) {
    if let Some(d) = pause_of(var) {
        eprintln!("{what}, pausing {} ms", d.as_millis());
        tokio::time::sleep(d).await;
    }
}

/// Pauses the thread as `var` asks, saying `what` on stderr first (a run's tail, which
/// holds no async lock).
pub fn pause_thread(var: &str, what: &str) {
    if let Some(d) = pause_of(var) {
        eprintln!("{what}, pausing {} ms", d.as_millis());
        std::thread::sleep(d);
    }
}
