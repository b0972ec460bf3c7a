//! `hedui check`: verify a batch and write results, rejections, summary, data quality
//! and the report into `--out`.

use crate::check::{run, CheckOptions};
use crate::cli::CheckArgs;
use crate::error::Error;
use crate::output::summary::Summary;
use crate::progress::Progress;
use crate::publish::{publish, Record, Tail};
use crate::state::audit::os_actor;

/// Runs `check` and writes its outputs; returns the run's summary.
pub async fn execute(args: &CheckArgs, progress: &Progress) -> Result<Summary, Error> {
    let data = super::data::resolve_data(&args.data)?;
    let config_state = data.state;
    let opts = CheckOptions {
        applicants: args.applicants.clone(),
        sources: data.input,
        policy: args.policy.clone(),
        as_of: crate::check::as_of(args.as_of.as_deref())?,
        memory_limit: data.memory_limit,
        cluster: data.cluster,
    };
    let run = run(&opts, progress).await?;
    // The audit log of the deployment's [state] (or HEDUI_STATE): who looked at whose
    // data, under which authorization, on which snapshots.
    let state_dir =
        config_state.or_else(|| std::env::var_os("HEDUI_STATE").map(std::path::PathBuf::from));
    let record = match &state_dir {
        Some(dir) => Record::At(dir),
        None => Record::Nowhere,
    };
    let actor = os_actor();
    let tail = Tail::new(Some(&args.out), &actor, "check");
    let done = publish(&run, &tail, record, progress)?;
    progress.step(&format!("results written to {}", args.out.display()));
    match (done.audit_seq, &state_dir) {
        (Some(seq), Some(dir)) => {
            progress.step(&format!("audit log entry {seq} in {}", dir.display()))
        }
        _ => progress.warn(
            "本次核对未记入审计日志（用 --config 或设置 HEDUI_STATE）— this check is not in an audit log: run it with --config, or set HEDUI_STATE to the state folder",
        ),
    }
    done.summary
        .ok_or_else(|| Error::Internal("a check with an output folder wrote no summary".into()))
}

/// A one-paragraph summary for the terminal, in Chinese and English.
pub fn describe(s: &Summary, out: &std::path::Path) -> String {
    let v = |k: &str| s.verdicts.get(k).copied().unwrap_or(0);
    let mut text = format!(
        "核对日期 {}：核对 {} 户（另有 {} 户被退回）：符合条件 {}，需人工复核 {}，数据不全 {}，不符合条件 {}\nchecked {} households on {} ({} rejected): {} eligible, {} review, {} incomplete, {} ineligible",
        s.as_of,
        s.applicants.households_accepted,
        s.applicants.households_rejected,
        v("eligible"),
        v("review"),
        v("incomplete"),
        v("ineligible"),
        s.applicants.households_accepted,
        s.as_of,
        s.applicants.households_rejected,
        v("eligible"),
        v("review"),
        v("incomplete"),
        v("ineligible"),
    );
    if !s.missing_sources.is_empty() {
        text.push_str(&format!(
            "\n缺少部门数据（missing sources）：{}",
            s.missing_sources.join(", ")
        ));
    }
    if !s.stale_sources.is_empty() {
        text.push_str(&format!(
            "\n部门数据已过期（stale sources）：{}",
            s.stale_sources.join(", ")
        ));
    }
    if s.data_quality_problems > 0 {
        text.push_str(&format!(
            "\n部门数据中有 {} 条格式错误的记录，见 data_quality.jsonl（malformed source records: {}, see data_quality.jsonl）",
            s.data_quality_problems, s.data_quality_problems
        ));
    }
    text.push_str(&format!(
        "\n报告（report）：{}",
        out.join("report.html").display()
    ));
    text
}
