//! `hedui check`: verify a batch and write results, rejections, summary, data quality
//! and the report into `--out`.

use crate::check::{run, CheckOptions};
use crate::cli::CheckArgs;
use crate::error::Error;
use crate::output::summary::Summary;
use crate::progress::Progress;
use crate::publish::{publish, Record, Tail};
use crate::state::audit::os_actor;
use crate::state::AuditFiles;

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
    // The audit log: who looked at whose data, under which authorization, on which
    // snapshots — the deployment's [state], else HEDUI_STATE, else the user's own.
    let state = match (args.no_audit, config_state) {
        (true, _) => None,
        (false, Some(s)) => Some(s),
        (false, None) => {
            let dir = match std::env::var_os("HEDUI_STATE") {
                Some(dir) => std::path::PathBuf::from(dir),
                None => default_state_dir()?,
            };
            Some((dir.clone(), AuditFiles::beside(&dir)))
        }
    };
    // Where the run will publish and be recorded is checked before any work: an --out
    // that cannot be written, one another run is writing, or an audit log that cannot
    // take an entry is refused at once, not after the whole check.
    crate::output::FolderLock::probe(&args.out)?;
    if let Some((dir, audit)) = &state {
        crate::state::State::open_with(dir, audit.clone())?.ready_to_audit()?;
    }
    let run = run(&opts, progress).await?;
    let record = match &state {
        Some((dir, audit)) => Record::At(dir, audit),
        None => Record::Nowhere,
    };
    let actor = os_actor();
    let tail = Tail::new(Some(&args.out), &actor, "check");
    let done = publish(&run, &tail, record, progress)?;
    progress.step(&format!("results written to {}", args.out.display()));
    match (done.audit_seq, &state) {
        (Some(seq), Some((dir, _))) => {
            progress.step(&format!("audit log entry {seq} in {}", dir.display()))
        }
        _ => progress.warn(
            "本次核对按 --no-audit 未记入审计日志，仅可用于试算 — this check is not in any audit log (--no-audit): use it for trials only",
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

/// The user's own state folder for checks run without a deployment: `$XDG_DATA_HOME/hedui`,
/// else `~/.local/share/hedui`.
fn default_state_dir() -> Result<std::path::PathBuf, Error> {
    let nonempty = |v: std::ffi::OsString| (!v.is_empty()).then(|| std::path::PathBuf::from(v));
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").and_then(nonempty) {
        return Ok(d.join("hedui"));
    }
    match std::env::var_os("HOME").and_then(nonempty) {
        Some(home) => Ok(home.join(".local/share/hedui")),
        None => Err(Error::Usage(
            "找不到记录审计日志的文件夹（未设置 HOME）：请用 --config 指定部署配置，或设置 HEDUI_STATE；仅试算时可加 --no-audit — no folder for the audit log (HOME is not set): give --config, set HEDUI_STATE, or add --no-audit for a trial".into(),
        )),
    }
}
