//! `hedui reconcile` (SPEC §7): the command line of [`crate::reconcile`].

use crate::cli::ReconcileArgs;
use crate::error::Error;
use crate::policy::Policy;
use crate::progress::Progress;
use crate::reconcile::{run, Outcome, Reconciliation};
use crate::state::audit::os_actor;
use crate::state::State;

/// Runs `reconcile`.
pub async fn execute(args: &ReconcileArgs, progress: &Progress) -> Result<Outcome, Error> {
    let data = super::data::resolve_data(&args.data)?;
    let input = data.input;
    let as_of = crate::check::as_of(args.as_of.as_deref())?;
    // The policy is validated before any data is read or any run recorded.
    let policy = Policy::load(&args.policy)?;
    // The output folder and the audit log are checked before any work.
    crate::output::FolderLock::probe(&args.out)?;
    let mut state = State::open(&args.state)?;
    state.ready_to_audit()?;
    let setup = crate::check::open(&input, data.memory_limit, data.cluster.as_ref()).await?;
    let actor = os_actor();
    let begun = std::sync::OnceLock::new();
    let r = Reconciliation {
        recipients: &args.recipients,
        policy: &policy,
        setup: &setup,
        sources_label: &input.label(),
        as_of,
        out: &args.out,
        actor: &actor,
        audit_kind: "reconcile",
        job: None,
        begun: Some(&begun),
        pulls: None,
    };
    let outcome = super::signal::interruptible(run(&r, &mut state, progress)).await;
    if let (Err(Error::Interrupted), Some(id)) = (&outcome, begun.get()) {
        // Never a baseline, and not left `running`.
        let _ = state.fail_run(*id, "interrupted (Ctrl-C or SIGTERM)");
    }
    outcome
}

/// The closing lines for the terminal, in Chinese and English.
pub fn describe(r: &Outcome, out: &std::path::Path) -> String {
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
