//! The tests' hooks, read from the environment in one way.
//!
//! Fault injection for the crash tests, the one hook: with the environment variable
//! named set to a number of milliseconds, the process says what it is about to do on
//! stderr and waits that long first, so a test can kill it at the worst moment (after a
//! snapshot's files are written and before its manifest is committed; after a run's
//! outputs are written and before the run is done). Unset, nothing happens.
//!
//! Size knobs ([`number`], [`positive`]): a test makes a small run take the path of a
//! large one (parts of a few rows, chunks of a few households, evidence in many rounds).

/// Before a snapshot's manifest is committed (`hedui ingest`).
pub const BEFORE_COMMIT: &str = "HEDUI_PAUSE_BEFORE_COMMIT_MS";

/// Before a run with outputs is recorded done (a reconciliation, a server job).
pub const BEFORE_RUN_DONE: &str = "HEDUI_PAUSE_BEFORE_RUN_DONE_MS";

/// How long `var` asks to pause, if it is set to a number of milliseconds; says so on
/// stderr as `{done}, pausing {ms} ms before {next}` (the text the crash tests wait for).
fn announced(var: &str, done: &str, next: &str) -> Option<std::time::Duration> {
    let ms = std::env::var(var).ok()?.parse::<u64>().ok()?;
    eprintln!("{done}, pausing {ms} ms before {next}");
    Some(std::time::Duration::from_millis(ms))
}

/// Pauses the async task as `var` asks (see [`announced`]).
pub async fn pause(var: &str, done: &str, next: &str) {
    if let Some(d) = announced(var, done, next) {
        tokio::time::sleep(d).await;
    }
}

/// [`pause`] for a thread (a run's tail, which holds no async lock).
pub fn pause_thread(var: &str, done: &str, next: &str) {
    if let Some(d) = announced(var, done, next) {
        std::thread::sleep(d);
    }
}

/// The number `var` is set to, if it is set to one (surrounding blanks allowed).
pub fn number(var: &str) -> Option<usize> {
    std::env::var(var).ok()?.trim().parse().ok()
}

/// The number `var` is set to if it is at least 1, `default` otherwise.
pub fn positive(var: &str, default: usize) -> usize {
    number(var).filter(|n| *n > 0).unwrap_or(default)
}
