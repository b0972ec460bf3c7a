//! The schedule and the retention of `hedui serve`: `[schedule] ingest` (cron, local
//! time) queues the night's pulls of every source and `[schedule] reconcile` a
//! reconciliation of `recipients`, each unless one is already waiting or running (a fire
//! time missed while the server was down, within the last day, is caught up at start,
//! the pulls first). The worker runs pulls before reconciliations, so the night
//! re-checks on what it pulled. Finished jobs (with their files) and reconciliation runs
//! older than `retention_days` are deleted, the baseline run excepted.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::error::Error;
use crate::state::jobs::{JobKind, NewJob};

use super::super::app::{stopped, AppState, Shutdown};
use super::super::jobs::{is_job_id, job_dir, new_id, SCHEDULE_ACTOR};

/// How often retention runs.
const RETENTION_EVERY: Duration = Duration::from_secs(6 * 3600);

/// What the schedule queues at its fire times.
#[derive(Debug, Clone)]
struct Timer {
    kind: JobKind,
    /// The pulls' sources: `""` those without a schedule of their own, else one name.
    source: String,
    cron: crate::server::cron::Cron,
    expression: String,
}

impl Timer {
    fn what(&self) -> String {
        match self.kind {
            JobKind::Ingest if self.source.is_empty() => "the night's pulls".to_owned(),
            JobKind::Ingest => format!("pull of {}", self.source),
            _ => "reconciliation".to_owned(),
        }
    }
}

/// Queues a scheduled job of `timer`'s (a reconciliation reads `recipients`) unless one
/// is waiting or running.
fn queue_job(
    app: &AppState,
    timer: &Timer,
    recipients: Option<&Path>,
) -> Result<Option<String>, Error> {
    let kind = timer.kind;
    let id = new_id()?;
    let mut state = app.state.lock().unwrap_or_else(|e| e.into_inner());
    let pending = match kind {
        JobKind::Ingest => state.pulls_pending(&timer.source)?,
        _ => state.job_pending(kind)?,
    };
    if pending {
        return Ok(None);
    }
    let (file_name, input) = match kind {
        JobKind::Ingest => ("ingest".to_owned(), timer.source.clone()),
        // The hub's current list, else the config's first one.
        _ => match super::super::handlers::recipients::current_file(&state, recipients)? {
            Some((path, name)) => (name, path.display().to_string()),
            None => {
                return Err(Error::Usage(
                    "还没有在保名单，本次复核未排队：请上传名单（PUT /api/v1/recipients）或在 [schedule] recipients 中指定文件（there is no recipients list yet: upload one, or name a file in [schedule] recipients）".into(),
                ))
            }
        },
    };
    let job = NewJob {
        id: id.clone(),
        kind,
        actor: SCHEDULE_ACTOR.into(),
        regions: vec![],
        file_name,
        input,
        as_of: chrono::Local::now().date_naive().to_string(),
    };
    state.submit_job(&job, None)?;
    drop(state);
    app.jobs.wake.notify_one();
    Ok(Some(id))
}

/// [`queue_job`] on a blocking thread (the state database is never used on the async
/// ones), its outcome logged.
async fn queue_logged(app: &Arc<AppState>, timer: &Timer, recipients: Option<&Path>, missed: bool) {
    let (a, t, r) = (app.clone(), timer.clone(), recipients.map(Path::to_owned));
    let queued = tokio::task::spawn_blocking(move || queue_job(&a, &t, r.as_deref()))
        .await
        .map_err(|e| Error::Internal(format!("the schedule's thread failed: {e}")))
        .and_then(|q| q);
    let what = timer.what();
    match queued {
        Ok(Some(id)) if missed => tracing::info!(job = %id, "missed scheduled {what} queued"),
        Ok(Some(id)) => tracing::info!(job = %id, "scheduled {what} queued"),
        Ok(None) if missed => {}
        Ok(None) => {
            tracing::warn!("a {what} job is still waiting or running; this one is skipped")
        }
        Err(e) => tracing::error!(error = %e, "cannot queue the scheduled {what}"),
    }
}

/// Whether `timer`'s latest fire time of the last day passed with no job of its kind
/// submitted since (the server was down then).
async fn missed(app: &Arc<AppState>, timer: &Timer) -> bool {
    let now = chrono::Local::now();
    let mut latest = None;
    let mut t = now - chrono::Duration::days(1);
    while let Some(n) = timer.cron.next_after(&t) {
        if n > now {
            break;
        }
        latest = Some(n);
        t = n;
    }
    let (kind, source) = (timer.kind, timer.source.clone());
    let last = app
        .db(move |s| {
            Ok(match kind {
                JobKind::Ingest => s.last_pulls_submitted(&source),
                _ => s.last_job_submitted(kind),
            }
            .ok()
            .flatten())
        })
        .await
        .ok()
        .flatten();
    latest.is_some_and(|missed| {
        let missed = missed
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        last.is_none_or(|at| at < missed)
    })
}

/// Runs `[schedule]` until the server stops: at each fire time (local time) the night's
/// pulls or a reconciliation is queued. Fire times missed within the last day while the
/// server was down are caught up now, the pulls first.
pub async fn run_schedule(app: Arc<AppState>, mut shutdown: Shutdown) {
    let Some(schedule) = app.config.schedule.clone() else {
        return;
    };
    let mut timers: Vec<Timer> = Vec::new();
    if let Some((cron, expression)) = &schedule.ingest {
        timers.push(Timer {
            kind: JobKind::Ingest,
            source: String::new(),
            cron: cron.clone(),
            expression: expression.clone(),
        });
    }
    for (name, cron, expression) in &schedule.sources {
        timers.push(Timer {
            kind: JobKind::Ingest,
            source: name.clone(),
            cron: cron.clone(),
            expression: expression.clone(),
        });
    }
    timers.push(Timer {
        kind: JobKind::Reconcile,
        source: String::new(),
        cron: schedule.cron.clone(),
        expression: schedule.expression.clone(),
    });
    for timer in &timers {
        if missed(&app, timer).await {
            queue_logged(&app, timer, schedule.recipients.as_deref(), true).await;
        }
    }
    loop {
        let now = chrono::Local::now();
        // The next timer to fire (the pulls first when both fire at once).
        let Some((next, timer)) = timers
            .iter()
            .filter_map(|t| t.cron.next_after(&now).map(|n| (n, t)))
            .min_by_key(|(n, t)| (*n, t.kind != JobKind::Ingest))
        else {
            tracing::warn!("the schedule never fires again");
            return;
        };
        tracing::info!(cron = %timer.expression, next = %next.to_rfc3339(), "next scheduled {}", timer.what());
        let wait = (next - now).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {},
            _ = stopped(&mut shutdown) => return,
        }
        // Every timer due at this time, the pulls first.
        for t in timers
            .iter()
            .filter(|t| t.cron.next_after(&now) == Some(next))
        {
            queue_logged(&app, t, schedule.recipients.as_deref(), false).await;
        }
    }
}

/// Verifies the whole audit chain (off the async threads) and records the outcome for
/// `/metrics`; a broken chain is logged as an error.
async fn verify_chain(app: &Arc<AppState>) {
    let (dir, files) = (app.config.state_dir.clone(), app.config.audit_files.clone());
    let verified = tokio::task::spawn_blocking(move || {
        crate::state::State::open_read_only(&dir, files).and_then(|s| s.verify_audit())
    })
    .await;
    let at = chrono::Utc::now().timestamp();
    match verified {
        Ok(Ok(Ok(n))) => {
            app.metrics.audit_verified(at, true);
            tracing::info!(entries = n, "audit chain verified intact");
        }
        Ok(Ok(Err((seq, why)))) => {
            app.metrics.audit_verified(at, false);
            tracing::error!(entry = seq, why = %why, "the audit chain is broken: run `hedui audit verify` and restore from a backup");
        }
        Ok(Err(e)) => tracing::error!(error = %e, "the audit chain could not be verified"),
        Err(e) => tracing::error!(error = %e, "the audit chain could not be verified"),
    }
}

/// Deletes what is older than `retention_days` now, then every few hours; verifies the
/// audit chain as often.
pub async fn run_retention(app: Arc<AppState>, mut shutdown: Shutdown) {
    loop {
        verify_chain(&app).await;
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
    let mut state = app.state.lock().unwrap_or_else(|e| e.into_inner());
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
    // Old recipients lists (never the current one), and their files once nothing reads
    // them.
    let unused = state.expire_recipient_lists(&before)?;
    drop(state);
    let lists = super::super::handlers::recipients::lists_dir(dir);
    for path in unused {
        let path = std::path::PathBuf::from(path);
        if path.starts_with(&lists) {
            let _ = std::fs::remove_file(path);
        }
    }
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
