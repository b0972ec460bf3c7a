//! `hedui reconcile` (SPEC §7): re-check every current recipient household with the same
//! engine and pipelines as `check`, write what `check` writes plus `changes.jsonl`
//! against the previous completed run kept in `--state`, and only then make this run the
//! baseline of the next one.

use std::collections::BTreeMap;

use crate::changes::{self, Kept};
use crate::check::{run, CheckOptions};
use crate::cli::ReconcileArgs;
use crate::error::Error;
use crate::output;
use crate::output::summary::Summary;
use crate::progress::Progress;
use crate::state::audit::{os_actor, AuditDetail};
use crate::state::State;

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

/// Runs `reconcile`.
pub async fn execute(args: &ReconcileArgs, progress: &Progress) -> Result<Reconciled, Error> {
    let opts = CheckOptions {
        applicants: args.recipients.clone(),
        sources: args.data.source_input()?,
        policy: args.policy.clone(),
        as_of: super::as_of(args.as_of.as_deref())?,
    };
    let mut state = State::open(&args.state)?;
    let run_id = state.begin_run(
        &opts.as_of.to_string(),
        &args.recipients.display().to_string(),
        &opts.sources.label(),
    )?;
    tracing::info!(run = run_id, "reconciliation started");
    let outcome = reconcile(args, &opts, &mut state, run_id, progress).await;
    if let Err(e) = &outcome {
        // Never the baseline of a later run, whether this is recorded or not.
        if let Err(rec) = state.fail_run(run_id, &e.to_string()) {
            progress.warn(&format!(
                "第 {run_id} 次核对的失败未能记录 — run {run_id} could not be marked failed: {rec}"
            ));
        }
    }
    outcome
}

async fn reconcile(
    args: &ReconcileArgs,
    opts: &CheckOptions,
    state: &mut State,
    run_id: i64,
    progress: &Progress,
) -> Result<Reconciled, Error> {
    let checked = run(opts, progress).await?;
    let summary = output::write_all(&args.out, &checked, progress)?;
    let previous = state.previous_done(run_id)?;
    let before = match &previous {
        Some(p) => state.households(p.id)?,
        None => BTreeMap::new(),
    };
    let found = changes::between(&before, &checked.results);
    output::write_jsonl(&args.out, "changes.jsonl", &found)?;
    progress.step(&format!(
        "changes.jsonl: {} households changed",
        found.len()
    ));
    pause_before_done().await;
    let kept: BTreeMap<String, Kept> = checked
        .results
        .iter()
        .map(|r| (r.household_id.clone(), Kept::of(r)))
        .collect();
    state.finish_run(run_id, &kept, &found)?;
    let detail = AuditDetail::of(&checked, state.id_hasher()?);
    state.append_audit(&os_actor(), "reconcile", &detail)?;
    Ok(Reconciled {
        run_id,
        previous: previous.map(|p| p.id),
        summary,
        changes: found.len(),
    })
}

/// Fault injection for crash tests: with `HEDUI_PAUSE_BEFORE_RUN_DONE_MS` set, the run
/// says so on stderr and waits that long after writing its outputs and before becoming
/// the baseline, so a test can kill it at the worst moment.
async fn pause_before_done() {
    let Some(ms) = std::env::var("HEDUI_PAUSE_BEFORE_RUN_DONE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    eprintln!("reconcile: outputs written, pausing {ms} ms before the run is done");
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}

/// The closing lines for the terminal, in Chinese and English.
pub fn describe(r: &Reconciled, out: &std::path::Path) -> String {
    let base = match r.previous {
        Some(p) => format!("与第 {p} 次比较（compared with run {p}）"),
        None => "首次运行，无可比较的前次结果（first run: nothing to compare with）".to_owned(),
    };
    format!(
        "{}\n第 {} 次复核：{}，{} 户有变化，见 changes.jsonl（reconciliation run {}: {} households changed, see {}）",
        super::check::describe(&r.summary, out),
        r.run_id,
        base,
        r.changes,
        r.run_id,
        r.changes,
        out.join("changes.jsonl").display()
    )
}
