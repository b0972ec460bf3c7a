//! The jobs of `hedui serve` (SPEC §10): batches submitted over the API and the
//! scheduled reconciliation, run one at a time by a worker thread on the same engine as
//! `check` and `reconcile`, recorded in the state database ([`crate::state::jobs`]).
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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use tokio::runtime::Handle;
use tokio::sync::Notify;

use crate::applicants::{read_batch_within, validate, Limits};
use crate::error::Error;
use crate::output;
use crate::progress::Progress;
use crate::reconcile::{self, Reconciliation};
use crate::state::jobs::{Job, JobKind, NewJob};
use crate::state::State;

use super::AppState;

/// The actor of scheduled jobs in the state database and the audit log.
pub const SCHEDULE_ACTOR: &str = "schedule";

/// How often the worker looks for work when nobody told it.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(6 * 3600);

/// What the handlers and the worker share.
#[derive(Debug, Default)]
pub struct Jobs {
    /// Wakes the worker when a job is queued or the server stops.
    pub wake: Notify,
    stopping: AtomicBool,
    /// The job the worker runs now.
    current: Mutex<Option<String>>,
    /// Set (and `finished` notified) when the worker has stopped.
    exited: AtomicBool,
    finished: Notify,
}

impl Jobs {
    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
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

/// Starts the worker thread. It runs queued jobs one at a time until the server stops.
pub fn start_worker(app: Arc<AppState>, rt: Handle) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("hedui-jobs".into())
        .spawn(move || {
            work(&app, &rt);
            app.jobs.exited.store(true, Ordering::SeqCst);
            app.jobs.finished.notify_one();
        })
        .map(|_| ())
        .map_err(|e| Error::Internal(format!("cannot start the job worker thread: {e}")))
}

/// Tells the worker to stop after its job; waits `grace` for it, then queues the job it
/// is still running again (it is run at the next start, never lost nor done twice).
pub async fn stop_worker(app: &AppState, grace: Duration) {
    app.jobs.stopping.store(true, Ordering::SeqCst);
    app.jobs.wake.notify_one();
    if app.jobs.exited.load(Ordering::SeqCst)
        || tokio::time::timeout(grace, app.jobs.finished.notified())
            .await
            .is_ok()
    {
        return;
    }
    let running = app.jobs.current.lock().ok().and_then(|c| c.clone());
    if let Some(id) = running {
        match app.state.lock() {
            Ok(state) => match state.requeue_job(&id) {
                Ok(()) => tracing::warn!(job = %id, "job still running at shutdown: queued again"),
                Err(e) => {
                    tracing::error!(job = %id, error = %e, "cannot queue the job again; it is queued at the next start")
                }
            },
            Err(_) => {
                tracing::error!(job = %id, "state database lock poisoned; the job is queued at the next start")
            }
        }
    }
}

fn work(app: &AppState, rt: &Handle) {
    let dir = app.config.state_dir.clone();
    let mut state = match State::open(&dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the job worker cannot open the state database; no job will run");
            return;
        }
    };
    while !app.jobs.stopping() {
        let job = match state.claim_job() {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the job queue");
                std::thread::sleep(IDLE_POLL);
                continue;
            }
        };
        let Some(job) = job else {
            rt.block_on(async {
                tokio::select! {
                    _ = app.jobs.wake.notified() => {},
                    _ = tokio::time::sleep(IDLE_POLL) => {},
                }
            });
            continue;
        };
        if let Ok(mut c) = app.jobs.current.lock() {
            *c = Some(job.id.clone());
        }
        tracing::info!(job = %job.id, kind = ?job.kind, attempt = job.attempts, "job started");
        let outcome = run_job(app, &mut state, rt, &job);
        match outcome {
            Ok(()) => tracing::info!(job = %job.id, "job done"),
            Err(e) => {
                tracing::warn!(job = %job.id, error = %hedui_connectors::idnum::mask_ids_in(&e.to_string()), "job failed");
                if let Err(rec) = state.fail_job(&job.id, &e.user_message()) {
                    tracing::error!(job = %job.id, error = %rec, "cannot record the job's failure");
                }
            }
        }
        if let Ok(mut c) = app.jobs.current.lock() {
            *c = None;
        }
    }
}

/// Progress that records each stage in the job table (best effort, on its own
/// connection so the run's transactions never wait for it).
fn job_progress(dir: &Path, id: &str) -> Progress {
    let Ok(conn) = State::open(dir) else {
        return Progress::silent();
    };
    let conn = Mutex::new(conn);
    let id = id.to_owned();
    Progress::reporting_to(Arc::new(move |stage: &str| {
        if let Ok(s) = conn.lock() {
            let _ = s.job_stage(&id, stage);
        }
    }))
}

fn run_job(app: &AppState, state: &mut State, rt: &Handle, job: &Job) -> Result<(), Error> {
    let dir = &app.config.state_dir;
    let as_of = NaiveDate::parse_from_str(&job.as_of, "%Y-%m-%d")
        .map_err(|e| Error::Internal(format!("job {}: as_of {}: {e}", job.id, job.as_of)))?;
    let progress = job_progress(dir, &job.id);
    let out = out_dir(dir, &job.id);
    match job.kind {
        JobKind::Batch => {
            let bytes = std::fs::read(&job.input).map_err(|e| {
                Error::Internal(format!("job {}: cannot read its input: {e}", job.id))
            })?;
            let raw = read_batch_within(Path::new(&job.file_name), &bytes, &Limits::default())?;
            let batch = validate(&job.file_name, raw, &app.policy, as_of);
            progress.step("applicants validated");
            let run = rt.block_on(crate::check::run_batch(
                batch,
                &app.policy,
                &app.setup,
                &app.sources_label,
                as_of,
                &progress,
            ))?;
            let summary = output::write_all(&out, &run, &progress)?;
            rt.block_on(reconcile::pause_before_done("batch"));
            let detail = crate::publish::audit_detail(&run, state.id_hasher()?);
            let mut shown = serde_json::to_value(&summary)
                .map_err(|e| Error::Internal(format!("job summary: {e}")))?;
            if let Some(o) = shown.as_object_mut() {
                // Server paths are nobody's business.
                o.remove("policy");
                o.remove("sources_dir");
            }
            for (verdict, n) in &summary.verdicts {
                app.metrics.verdicts(verdict, *n);
            }
            if !state.finish_job(&job.id, &shown, &job.actor, "batch", &detail)? {
                tracing::warn!(job = %job.id, "the job was queued again meanwhile; it will run again");
            }
            Ok(())
        }
        JobKind::Reconcile => {
            let recipients = PathBuf::from(&job.input);
            let r = Reconciliation {
                recipients: &recipients,
                policy: &app.policy,
                setup: &app.setup,
                sources_label: &app.sources_label,
                as_of,
                out: &out,
                actor: &job.actor,
                audit_kind: "schedule",
                job: Some(&job.id),
            };
            let done = rt.block_on(reconcile::run(&r, state, &progress))?;
            for (verdict, n) in &done.summary.verdicts {
                app.metrics.verdicts(verdict, *n);
            }
            tracing::info!(job = %job.id, run = done.run_id, changes = done.changes, "scheduled reconciliation done");
            Ok(())
        }
    }
}

/// Completes once the server is stopping.
async fn stopped(app: &AppState) {
    while !app.jobs.stopping() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Queues a scheduled reconciliation unless one is waiting or running.
fn queue_reconciliation(app: &AppState, recipients: &Path) -> Result<Option<String>, Error> {
    let id = new_id()?;
    let mut state = app
        .state
        .lock()
        .map_err(|_| Error::Internal("state database lock poisoned".into()))?;
    if state.job_pending(JobKind::Reconcile)? {
        return Ok(None);
    }
    let job = NewJob {
        id: id.clone(),
        kind: JobKind::Reconcile,
        actor: SCHEDULE_ACTOR.into(),
        regions: vec![],
        file_name: recipients
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        input: recipients.display().to_string(),
        as_of: chrono::Local::now().date_naive().to_string(),
    };
    state.submit_job(&job, None)?;
    drop(state);
    app.jobs.wake.notify_one();
    Ok(Some(id))
}

/// Runs `[schedule]` until the server stops: at each fire time (local time) a
/// reconciliation is queued. A fire time missed within the last day while the server
/// was down is caught up now.
pub async fn run_schedule(app: Arc<AppState>) {
    let Some(schedule) = app.config.schedule.clone() else {
        return;
    };
    let now = chrono::Local::now();
    // The latest fire time of the last day, if any.
    let mut latest = None;
    let mut t = now - chrono::Duration::days(1);
    while let Some(n) = schedule.cron.next_after(&t) {
        if n > now {
            break;
        }
        latest = Some(n);
        t = n;
    }
    let caught_up = latest.is_some_and(|missed| {
        let missed = missed
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let last = app
            .state
            .lock()
            .ok()
            .and_then(|s| s.last_job_submitted(JobKind::Reconcile).ok().flatten());
        last.is_none_or(|at| at < missed)
    });
    if caught_up {
        match queue_reconciliation(&app, &schedule.recipients) {
            Ok(Some(id)) => tracing::info!(job = %id, "missed scheduled reconciliation queued"),
            Ok(None) => {}
            Err(e) => tracing::error!(error = %e, "cannot queue the scheduled reconciliation"),
        }
    }
    loop {
        let now = chrono::Local::now();
        let Some(next) = schedule.cron.next_after(&now) else {
            tracing::warn!(cron = %schedule.expression, "the schedule never fires again");
            return;
        };
        tracing::info!(cron = %schedule.expression, next = %next.to_rfc3339(), "next scheduled reconciliation");
        let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {},
            _ = stopped(&app) => return,
        }
        match queue_reconciliation(&app, &schedule.recipients) {
            Ok(Some(id)) => tracing::info!(job = %id, "scheduled reconciliation queued"),
            Ok(None) => {
                tracing::warn!("a reconciliation is still waiting or running; this one is skipped")
            }
            Err(e) => tracing::error!(error = %e, "cannot queue the scheduled reconciliation"),
        }
    }
}

/// Deletes what is older than `retention_days` now, then every few hours.
pub async fn run_retention(app: Arc<AppState>) {
    loop {
        let a = app.clone();
        let swept = tokio::task::spawn_blocking(move || sweep(&a)).await;
        match swept {
            Ok(Ok((jobs, runs))) if jobs + runs > 0 => {
                tracing::info!(jobs, runs, "retention: expired jobs and runs deleted")
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "retention failed"),
            Err(e) => tracing::error!(error = %e, "retention failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(RETENTION_EVERY) => {},
            _ = stopped(&app) => return,
        }
    }
}

/// One retention pass: (jobs deleted, runs deleted). Job folders without a job (an
/// upload cut short) are deleted too once an hour old.
pub fn sweep(app: &AppState) -> Result<(usize, usize), Error> {
    let days = i64::from(app.config.retention_days);
    let before = (chrono::Utc::now() - chrono::Duration::days(days))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut state = app
        .state
        .lock()
        .map_err(|_| Error::Internal("state database lock poisoned".into()))?;
    let expired = state.jobs_finished_before(&before)?;
    let dir = &app.config.state_dir;
    for id in &expired {
        if is_job_id(id) {
            let _ = std::fs::remove_dir_all(job_dir(dir, id));
        }
        state.delete_job(id)?;
    }
    let runs = state.expire_runs(&before)?;
    let known = state.job_ids()?;
    drop(state);
    if let Ok(entries) = std::fs::read_dir(dir.join("jobs")) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(3600));
            if is_job_id(&name) && !known.contains(&name) && old {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    Ok((expired.len(), runs))
}
