//! The jobs of `hedui serve` (SPEC §10): batches submitted over the API and the
//! scheduled reconciliation, run one at a time by a worker thread on the same engine as
//! `check` and `reconcile` ([`super::work::jobs`]), recorded in the state database
//! ([`crate::state::jobs`]). Here: where a job's files are, its id, and what the
//! handlers and the worker share.
//!
//! - Files: a job's input and outputs live in `[state] path/jobs/ID/` (`input.EXT`,
//!   `out/results.jsonl`, `out/rejected.jsonl`, `out/report.html`, …).
//! - Restart: jobs left `running` are queued again at start; a stopping server waits
//!   `shutdown_grace_s` for the running job and otherwise queues it again itself.
//! - Schedule: `[schedule] reconcile` (cron, local time) queues a reconciliation of
//!   `recipients`, unless one is already waiting or running; a fire time missed while the
//!   server was down (within the last day) is caught up at start.
//! - Retention: finished jobs (and their files) and reconciliation runs older than
//!   `retention_days` are deleted, the baseline run excepted.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Mutex;

use tokio::sync::Notify;

use crate::error::Error;

/// The actor of scheduled jobs in the state database and the audit log.
pub const SCHEDULE_ACTOR: &str = "schedule";

/// What the handlers and the worker share.
#[derive(Debug, Default)]
pub struct Jobs {
    /// Wakes the worker when a job is queued.
    pub wake: Notify,
    /// The job the worker runs now.
    pub(crate) current: Mutex<Option<String>>,
    /// Set (and `finished` notified) when the worker has stopped.
    pub(crate) exited: AtomicBool,
    /// Notified when the worker has stopped.
    pub(crate) finished: Notify,
}

/// The folder of job `id`.
pub fn job_dir(state_dir: &Path, id: &str) -> PathBuf {
    state_dir.join("jobs").join(id)
}

/// The output folder of job `id`.
pub fn out_dir(state_dir: &Path, id: &str) -> PathBuf {
    job_dir(state_dir, id).join("out")
}

/// A new job id: 128 random bits in hex (unguessable, so ids reveal nothing).
pub fn new_id() -> Result<String, Error> {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 16];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| Error::Internal("no system randomness for a job id".into()))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// Whether `id` can be a job id (so it is safe as a folder name).
pub fn is_job_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

/// The night's pulls a reconciliation queued at `submitted_at` follows: the pulls' jobs
/// that ended in the day before, each source as its latest pull of that day left it;
/// `None` when there were none.
pub fn night_pulls(
    state: &crate::state::State,
    submitted_at: &str,
) -> Result<Option<crate::output::NightPulls>, crate::state::StateError> {
    let day_before = chrono::DateTime::parse_from_rfc3339(submitted_at)
        .map(|t| {
            (t - chrono::Duration::days(1))
                .with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        })
        .unwrap_or_default();
    let mut pulls: Option<crate::output::NightPulls> = None;
    for j in state.done_since(crate::state::jobs::JobKind::Ingest, &day_before)? {
        let (Some(sum), Some(at)) = (j.summary, j.finished_at) else {
            continue;
        };
        let p = pulls.get_or_insert_with(Default::default);
        p.at = at;
        for (k, ok) in [("refreshed", true), ("failed", false)] {
            for name in sum[k]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str())
            {
                p.refreshed.retain(|n| n != name);
                p.failed.retain(|n| n != name);
                if ok {
                    p.refreshed.push(name.to_owned());
                } else {
                    p.failed.push(name.to_owned());
                }
            }
        }
    }
    Ok(pulls)
}
