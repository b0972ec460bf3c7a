//! The schedule and the retention of `hedui serve`: `[schedule] reconcile` (cron, local
//! time) queues a reconciliation of `recipients` unless one is already waiting or
//! running (a fire time missed while the server was down, within the last day, is caught
//! up at start); finished jobs (with their files) and reconciliation runs older than
//! `retention_days` are deleted, the baseline run excepted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::state::jobs::{JobKind, NewJob};

use super::super::app::{stopped, AppState, Shutdown};
use super::super::jobs::{is_job_id, job_dir, new_id, SCHEDULE_ACTOR};

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(6 * 3600);

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

/// [`queue_reconciliation`] on a blocking thread (the state database is never used on
/// the async ones).
async fn queue_off_thread(app: &Arc<AppState>, recipients: &Path) -> Result<Option<String>, Error> {
    let (app, recipients) = (app.clone(), recipients.to_owned());
    tokio::task::spawn_blocking(move || queue_reconciliation(&app, &recipients))
        .await
        .map_err(|e| Error::Internal(format!("the schedule's thread failed: {e}")))?
}

/// Runs `[schedule]` until the server stops: at each fire time (local time) a
/// reconciliation is queued. A fire time missed within the last day while the server
/// was down is caught up now.
pub async fn run_schedule(app: Arc<AppState>, mut shutdown: Shutdown) {
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
    let last = app
        .db(|s| Ok(s.last_job_submitted(JobKind::Reconcile).ok().flatten()))
        .await
        .ok()
        .flatten();
    let caught_up = latest.is_some_and(|missed| {
        let missed = missed
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        last.is_none_or(|at| at < missed)
    });
    if caught_up {
        match queue_off_thread(&app, &schedule.recipients).await {
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
            _ = stopped(&mut shutdown) => return,
        }
        match queue_off_thread(&app, &schedule.recipients).await {
            Ok(Some(id)) => tracing::info!(job = %id, "scheduled reconciliation queued"),
            Ok(None) => {
                tracing::warn!("a reconciliation is still waiting or running; this one is skipped")
            }
            Err(e) => tracing::error!(error = %e, "cannot queue the scheduled reconciliation"),
        }
    }
}

/// Deletes what is older than `retention_days` now, then every few hours.
pub async fn run_retention(app: Arc<AppState>, mut shutdown: Shutdown) {
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
            _ = stopped(&mut shutdown) => return,
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
    // Daily people counts are needed for the day only.
    let today = chrono::Local::now().date_naive().to_string();
    state.forget_people_before(&today)?;
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
