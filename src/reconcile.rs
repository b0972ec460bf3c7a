//! One reconciliation (SPEC §7 `reconcile`): re-check every current recipient household
//! with the same engine and pipelines as `check`, write what `check` writes plus
//! `changes.jsonl` against the previous completed run, and only then make this run the
//! baseline of the next one. The command line and the server's schedule both run this.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::NaiveDate;

use crate::applicants;
use crate::changes::{self, Kept};
use crate::check::run_batch;
use crate::check::Setup;
use crate::error::Error;
use crate::output;
use crate::output::summary::Summary;
use crate::policy::Policy;
use crate::progress::Progress;
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
}

/// What a reconciliation did.
#[derive(Debug)]
pub struct Reconciled {
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
) -> Result<Reconciled, Error> {
    let run_id = state.begin_run(
        &r.as_of.to_string(),
        &r.recipients.display().to_string(),
        r.sources_label,
    )?;
    if let Some(job) = r.job {
        state.job_run(job, run_id)?;
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
) -> Result<Reconciled, Error> {
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
    let found = changes::between(&before, &checked.results);
    let compared = output::Compared {
        run_id,
        previous: previous.as_ref().map(|p| p.id),
        changes: &found,
    };
    let summary = output::write_all_with(r.out, &checked, Some(&compared), progress)?;
    output::write_jsonl(r.out, "changes.jsonl", &found)?;
    progress.step(&format!(
        "changes.jsonl: {} households changed",
        found.len()
    ));
    pause_before_done("reconcile").await;
    let kept: BTreeMap<String, Kept> = checked
        .results
        .iter()
        .map(|res| (res.household_id.clone(), Kept::of(res)))
        .collect();
    let detail = crate::publish::audit_detail(&checked, state.id_hasher()?);
    let job_summary = serde_json::json!({
        "run_id": run_id,
        "previous_run": previous.as_ref().map(|p| p.id),
        "changes": found.len(),
        "verdicts": summary.verdicts,
        "households_accepted": summary.applicants.households_accepted,
        "households_rejected": summary.applicants.households_rejected,
    });
    state.finish_run(
        run_id,
        &kept,
        &found,
        (r.actor, r.audit_kind, &detail),
        r.job.map(|j| (j, &job_summary)),
    )?;
    Ok(Reconciled {
        run_id,
        previous: previous.map(|p| p.id),
        summary,
        changes: found.len(),
    })
}

/// Fault injection for crash tests: with `HEDUI_PAUSE_BEFORE_RUN_DONE_MS` set, a run
/// (`what`: a reconciliation or a server job) says so on stderr and waits that long after
/// writing its outputs and before it is recorded done, so a test can kill it at the worst
/// moment.
pub async fn pause_before_done(what: &str) {
    let Some(ms) = std::env::var("HEDUI_PAUSE_BEFORE_RUN_DONE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    eprintln!("{what}: outputs written, pausing {ms} ms before the run is done");
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}
