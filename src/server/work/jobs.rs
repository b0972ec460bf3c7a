//! The job worker: one thread running the queued jobs (the night's pulls, scheduled
//! reconciliations, batches) one at a time until the server stops; a stopping server waits
//! `shutdown_grace_s` for the running job and otherwise queues it again itself.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::NaiveDate;
use tokio::runtime::Handle;

use crate::applicants::batch_of;
use crate::error::Error;
use crate::progress::Progress;
use crate::publish::{publish, Record, Tail};
use crate::reconcile::{self, Reconciliation};
use crate::state::jobs::{Job, JobKind};
use crate::state::State;

use super::super::app::{stopped, AppState, Shutdown};
use super::super::jobs::{night_pulls, out_dir};

/// How often the worker looks for work when nobody told it.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// Starts the worker thread. It runs queued jobs one at a time until `shutdown`.
pub fn start_worker(app: Arc<AppState>, rt: Handle, shutdown: Shutdown) -> Result<(), Error> {
    std::thread::Builder::new()
        .name("hedui-jobs".into())
        .spawn(move || {
            work(&app, &rt, shutdown);
            app.jobs.exited.store(true, Ordering::SeqCst);
            app.jobs.finished.notify_one();
        })
        .map(|_| ())
        .map_err(|e| Error::Internal(format!("cannot start the job worker thread: {e}")))
}

/// Once the server's shutdown has fired: waits `grace` for the worker to finish its job,
/// then queues the job it is still running again (it is run at the next start, never
/// lost nor done twice).
pub async fn stop_worker(app: &AppState, grace: Duration) {
    if app.jobs.exited.load(Ordering::SeqCst)
        || tokio::time::timeout(grace, app.jobs.finished.notified())
            .await
            .is_ok()
    {
        return;
    }
    let running = app.jobs.current.lock().ok().and_then(|c| c.clone());
    if let Some(id) = running {
        // The server is stopping: nothing else waits for this thread.
        let requeued = match app.state.lock() {
            Ok(mut state) => state.requeue_job(&id).map_err(|e| e.to_string()),
            Err(_) => Err("state database lock poisoned".to_owned()),
        };
        match requeued {
            Ok(()) => tracing::warn!(job = %id, "job still running at shutdown: queued again"),
            Err(e) => {
                tracing::error!(job = %id, error = %e, "cannot queue the job again; it is queued at the next start")
            }
        }
    }
}

fn work(app: &AppState, rt: &Handle, mut shutdown: Shutdown) {
    let dir = app.config.state_dir.clone();
    let mut state = match State::open_with(&dir, app.config.audit_files.clone()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "the job worker cannot open the state database; no job will run");
            return;
        }
    };
    while !*shutdown.borrow() {
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
                    _ = stopped(&mut shutdown) => {},
                    _ = tokio::time::sleep(IDLE_POLL) => {},
                }
            });
            continue;
        };
        if let Ok(mut c) = app.jobs.current.lock() {
            *c = Some(job.id.clone());
        }
        tracing::info!(job = %job.id, kind = ?job.kind, attempt = job.attempts, "job started");
        // A defect in one job fails that job, never the worker (every later batch would
        // wait until a restart).
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_job(app, &mut state, rt, &job)
        }))
        .unwrap_or_else(|_| Err(Error::Internal("the job's run panicked".into())));
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
            let batch = batch_of(
                &job.file_name,
                &bytes,
                &app.config.batch_limits,
                &app.policy,
                as_of,
            )?;
            progress.step("applicants validated");
            let run = rt.block_on(crate::check::run_batch(
                batch,
                &app.policy,
                &app.setup,
                &app.sources_label,
                as_of,
                &progress,
            ))?;
            let tail = Tail {
                job: Some(&job.id),
                ..Tail::new(Some(&out), &job.actor, "batch")
            };
            let done = publish(&run, &tail, Record::In(state), &progress)?;
            if let Some(summary) = &done.summary {
                for (verdict, n) in &summary.verdicts {
                    app.metrics.verdicts(verdict, *n);
                }
            }
            if !done.job_done {
                tracing::warn!(job = %job.id, "the job was queued again meanwhile; it will run again");
            }
            Ok(())
        }
        JobKind::Ingest => {
            // One source (its own schedule), or those without a schedule of their own.
            let d = &app.deployment;
            let selected = d
                .sources
                .iter()
                .filter(|s| match job.input.as_str() {
                    "" => s.schedule.is_none(),
                    one => s.name.as_str() == one,
                })
                .collect();
            let within = app.config.schedule.as_ref().and_then(|s| s.pulls_within);
            let pulled =
                rt.block_on(crate::ingest::all::pull_all(d, selected, within, &progress))?;
            for source in &pulled.refreshed {
                app.metrics.pulled(source, true);
            }
            for source in &pulled.failed {
                app.metrics.pulled(source, false);
                // The alert in the log; the sources page and /metrics say it too.
                tracing::error!(job = %job.id, source = %source, "the night's pull failed: the previous snapshot stays current");
            }
            let summary = serde_json::json!({
                "refreshed": pulled.refreshed,
                "failed": pulled.failed,
                "report": hedui_connectors::idnum::mask_ids_in(&pulled.report),
            });
            if !state.finish_job(&job.id, &summary)? {
                tracing::warn!(job = %job.id, "the job was queued again meanwhile; it will run again");
            }
            tracing::info!(job = %job.id, refreshed = pulled.refreshed.len(), failed = pulled.failed.len(), "the night's pulls done");
            Ok(())
        }
        JobKind::Reconcile => {
            let recipients = PathBuf::from(&job.input);
            // The night's pulls it follows (the worker ran them first).
            let pulls = night_pulls(state, &job.submitted_at)?;
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
                begun: None,
                pulls: pulls.as_ref(),
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
