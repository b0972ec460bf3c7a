//! One reconciliation (SPEC §7 `reconcile`): re-check every current recipient household
//! with the same engine and pipelines as `check`, write what `check` writes plus
//! `changes.jsonl` against the previous completed run, and only then make this run the
//! baseline of the next one. The command line and the server's schedule both run this.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

use crate::applicants;
use crate::check::run_batch;
use crate::check::Setup;
use crate::error::Error;
use crate::output::summary::Summary;
use crate::policy::Policy;
use crate::progress::Progress;
use crate::publish::{publish, Reconciled, Record, Tail};
use crate::state::State;

/// What a reconciliation reads and where it writes.
pub struct Reconciliation<'a> {
    /// The current recipients (applicant batch formats).
    pub recipients: &'a Path,
    /// The policy.
    pub policy: &'a Policy,
    /// The departments' data and the engine, opened.
    pub setup: &'a Setup,
    /// How outputs name the data read.
    pub sources_label: &'a str,
    /// Check date D.
    pub as_of: NaiveDate,
    /// Output folder.
    pub out: &'a Path,
    /// Who runs it, for the audit log (`os:USER`, `schedule`).
    pub actor: &'a str,
    /// The audit entry's kind (`reconcile`, `schedule`).
    pub audit_kind: &'a str,
    /// The server's job this run is, if any: completed in the run's transaction.
    pub job: Option<&'a str>,
    /// Told the run's id once it is recorded `running` (so that a run interrupted from
    /// the terminal can be failed).
    pub begun: Option<&'a std::sync::OnceLock<i64>>,
    /// The night's pulls it follows (the server's schedule), said in its report.
    pub pulls: Option<&'a crate::output::NightPulls>,
}

/// What a reconciliation did.
#[derive(Debug)]
pub struct Outcome {
    /// The run's id in the state database.
    pub run_id: i64,
    /// The previous completed run compared with, if any.
    pub previous: Option<i64>,
    /// The check's summary.
    pub summary: Summary,
    /// Lines written to changes.jsonl.
    pub changes: usize,
}

/// Runs a reconciliation recorded in `state`; a run that fails is marked failed, one
/// that is killed stays `running`, and neither is ever a baseline.
pub async fn run(
    r: &Reconciliation<'_>,
    state: &mut State,
    progress: &Progress,
) -> Result<Outcome, Error> {
    let run_id = state.begin_run(
        &r.as_of.to_string(),
        &r.recipients.display().to_string(),
        r.sources_label,
    )?;
    if let Some(begun) = r.begun {
        let _ = begun.set(run_id);
    }
    if let Some(job) = r.job {
        state.job_run(job, run_id)?;
    }
    if let Some(pulls) = r.pulls {
        state.set_run_pulls(run_id, &serde_json::to_string(pulls).unwrap_or_default())?;
    }
    tracing::info!(run = run_id, "reconciliation started");
    let outcome = reconcile(r, state, run_id, progress).await;
    if let Err(e) = &outcome {
        if let Err(rec) = state.fail_run(run_id, &e.to_string()) {
            progress.warn(&format!(
                "第 {run_id} 次复核的失败未能记录 — run {run_id} could not be marked failed: {rec}"
            ));
        }
    }
    outcome
}

async fn reconcile(
    r: &Reconciliation<'_>,
    state: &mut State,
    run_id: i64,
    progress: &Progress,
) -> Result<Outcome, Error> {
    let batch = applicants::load(r.recipients, r.policy, r.as_of)?;
    let regions: std::collections::BTreeSet<String> = batch
        .households
        .iter()
        .map(|h| h.region_code.clone())
        .collect();
    state.set_run_regions(run_id, &regions.into_iter().collect::<Vec<_>>())?;
    let checked = run_batch(batch, r.policy, r.setup, r.sources_label, r.as_of, progress).await?;
    let previous = state.previous_done(run_id)?;
    let before = match &previous {
        Some(p) => state.households(p.id)?,
        None => BTreeMap::new(),
    };
    let tail = Tail {
        job: r.job,
        reconciliation: Some(Reconciled {
            run_id,
            previous: previous.as_ref().map(|p| p.id),
            before: &before,
        }),
        pulls: r.pulls,
        ..Tail::new(Some(r.out), r.actor, r.audit_kind)
    };
    let done = publish(&checked, &tail, Record::In(state), progress)?;
    let summary = done
        .summary
        .ok_or_else(|| Error::Internal("a reconciliation wrote no summary".into()))?;
    Ok(Outcome {
        run_id,
        previous: previous.map(|p| p.id),
        summary,
        changes: done.changes,
    })
}
