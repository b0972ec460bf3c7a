//! The one tail every run ends in — a check on the command line, a batch job, a check
//! over the API, a reconciliation (by hand or scheduled): first its output files, each
//! written to a temporary name and renamed; then, in one transaction of the state
//! database, its audit entry and the completion of the reconciliation run and of the
//! server's job it is. A run killed between the two is neither done nor audited: a job
//! is run again, a reconciliation is never a baseline.

use std::collections::BTreeMap;
use std::path::Path;

use crate::applicants::Household;
use crate::changes::{Change, Kept};
use crate::error::Error;
use crate::fault;
use crate::output::summary::Summary;
use crate::output::{self, Compared};
use crate::progress::Progress;
use crate::state::audit::{AuditDetail, AuditedHousehold};
use crate::state::{Completion, RunDone, State};
use crate::verdict::CheckRun;

/// How a run ends.
#[derive(Debug, Clone, Copy)]
pub struct Tail<'a> {
    /// Where its output files go (`None`: none — a check over the API answers in JSON).
    pub out: Option<&'a Path>,
    /// Who ran it, for the audit log: `token:NAME`, `os:USER`, `schedule`.
    pub actor: &'a str,
    /// The audit entry's kind: `check`, `api`, `batch`, `reconcile`, `schedule`.
    pub kind: &'a str,
    /// Audit this household of the run only (an API request checked with others).
    pub household: Option<&'a str>,
    /// The server's job the run is, done with it.
    pub job: Option<&'a str>,
    /// The reconciliation run it is: compared with the previous one.
    pub reconciliation: Option<Reconciled<'a>>,
}

impl<'a> Tail<'a> {
    /// The tail of a run that writes `out` (`None`: no files) and is audited as `kind`
    /// by `actor`.
    pub fn new(out: Option<&'a Path>, actor: &'a str, kind: &'a str) -> Tail<'a> {
        Tail {
            out,
            actor,
            kind,
            household: None,
            job: None,
            reconciliation: None,
        }
    }
}

/// A reconciliation run against its previous completed run.
#[derive(Debug, Clone, Copy)]
pub struct Reconciled<'a> {
    /// The run.
    pub run_id: i64,
    /// The previous completed run, if any.
    pub previous: Option<i64>,
    /// What changed (`changes.jsonl`; the report leads with them).
    pub changes: &'a [Change],
}

/// What publishing did.
#[derive(Debug)]
pub struct Published {
    /// The run's summary (`summary.json`), when it wrote files.
    pub summary: Option<Summary>,
    /// The audit entry (`None`: no state database, or a job queued again meanwhile).
    pub audit_seq: Option<i64>,
    /// Whether the job (if any) was done now (`false`: it was queued again meanwhile
    /// and runs again; it is audited then).
    pub job_done: bool,
}

/// Where a run is recorded.
pub enum Record<'a> {
    /// In this open state database.
    In(&'a mut State),
    /// In the state database of this folder, opened once the outputs are written.
    At(&'a Path),
    /// Nowhere: a command-line check without a state folder (not audited).
    Nowhere,
}

/// Ends `run` as `tail` says, recorded as `record` says.
pub fn publish(
    run: &CheckRun,
    tail: &Tail<'_>,
    record: Record<'_>,
    progress: &Progress,
) -> Result<Published, Error> {
    let summary = match tail.out {
        Some(out) => Some(write_outputs(
            run,
            out,
            tail.reconciliation.as_ref(),
            progress,
        )?),
        None => None,
    };
    let mut opened;
    let state = match record {
        Record::In(state) => Some(state),
        Record::At(dir) => {
            opened = State::open(dir)?;
            Some(&mut opened)
        }
        Record::Nowhere => None,
    };
    let Some(state) = state else {
        return Ok(Published {
            summary,
            audit_seq: None,
            job_done: false,
        });
    };
    if tail.out.is_some() && (tail.job.is_some() || tail.reconciliation.is_some()) {
        fault::pause_thread(
            fault::BEFORE_RUN_DONE,
            &format!("{}: outputs written", tail.kind_of_run()),
            "the run is done",
        );
    }
    let hasher = state.id_hasher()?;
    let detail = match tail.household {
        Some(h) => audit_detail_of(run, h, hasher),
        None => audit_detail(run, hasher),
    };
    let kept: BTreeMap<String, Kept> = match &tail.reconciliation {
        Some(_) => run
            .results
            .iter()
            .map(|r| (r.household_id.clone(), Kept::of(r)))
            .collect(),
        None => BTreeMap::new(),
    };
    let job_summary = tail
        .job
        .map(|_| job_summary(summary.as_ref(), tail.reconciliation.as_ref()))
        .transpose()?;
    let done = state.complete(&Completion {
        actor: tail.actor,
        kind: tail.kind,
        detail: &detail,
        run: tail.reconciliation.as_ref().map(|r| RunDone {
            id: r.run_id,
            households: &kept,
            changes: r.changes,
        }),
        job: tail.job.zip(job_summary.as_ref()),
    })?;
    Ok(Published {
        summary,
        audit_seq: done.audit_seq,
        job_done: done.job_done,
    })
}

impl Tail<'_> {
    /// How the crash tests' pause names the run.
    fn kind_of_run(&self) -> &'static str {
        if self.reconciliation.is_some() {
            "reconcile"
        } else {
            "batch"
        }
    }
}

/// Writes every output file of `run` into `out`; a reconciliation's report leads with
/// its changes, which also go to `changes.jsonl`.
fn write_outputs(
    run: &CheckRun,
    out: &Path,
    reconciliation: Option<&Reconciled<'_>>,
    progress: &Progress,
) -> Result<Summary, Error> {
    let compared = reconciliation.map(|r| Compared {
        run_id: r.run_id,
        previous: r.previous,
        changes: r.changes,
    });
    let summary = output::write_all_with(out, run, compared.as_ref(), progress)?;
    if let Some(r) = reconciliation {
        output::write_jsonl(out, "changes.jsonl", r.changes)?;
        progress.step(&format!(
            "changes.jsonl: {} households changed",
            r.changes.len()
        ));
    }
    Ok(summary)
}

/// What a job's submitter is shown of its run: a batch's summary without the server's
/// paths; a reconciliation's run, previous run, changes and counts.
fn job_summary(
    summary: Option<&Summary>,
    reconciliation: Option<&Reconciled<'_>>,
) -> Result<serde_json::Value, Error> {
    let Some(summary) = summary else {
        return Ok(serde_json::json!({}));
    };
    if let Some(r) = reconciliation {
        return Ok(serde_json::json!({
            "run_id": r.run_id,
            "previous_run": r.previous,
            "changes": r.changes.len(),
            "verdicts": summary.verdicts,
            "households_accepted": summary.applicants.households_accepted,
            "households_rejected": summary.applicants.households_rejected,
        }));
    }
    let mut shown =
        serde_json::to_value(summary).map_err(|e| Error::Internal(format!("job summary: {e}")))?;
    if let Some(o) = shown.as_object_mut() {
        // Server paths are nobody's business.
        o.remove("policy");
        o.remove("sources_dir");
    }
    Ok(shown)
}

/// What a check run read and decided, with members' ID numbers hashed by `hash`.
/// Households rejected before any data was read are not in it.
pub fn audit_detail(run: &CheckRun, hash: impl Fn(&str) -> String) -> AuditDetail {
    of_households(run, |_| true, hash)
}

/// [`audit_detail`] for the one household `household_id` of `run` (an API
/// request whose household was checked in a run with others).
pub fn audit_detail_of(
    run: &CheckRun,
    household_id: &str,
    hash: impl Fn(&str) -> String,
) -> AuditDetail {
    of_households(run, |h| h == household_id, hash)
}

fn of_households(
    run: &CheckRun,
    keep: impl Fn(&str) -> bool,
    hash: impl Fn(&str) -> String,
) -> AuditDetail {
    let declared: std::collections::HashMap<&str, &Household> = run
        .batch
        .households
        .iter()
        .map(|h| (h.household_id.as_str(), h))
        .collect();
    let households = run
        .results
        .iter()
        .filter(|r| keep(&r.household_id))
        .map(|r| {
            let h = declared.get(r.household_id.as_str());
            AuditedHousehold {
                household_id: r.household_id.clone(),
                region_code: r.region_code.clone(),
                authorization_id: h.map(|h| h.authorization_id.clone()).unwrap_or_default(),
                members: h
                    .map(|h| h.members.iter().map(|m| hash(&m.id_number)).collect())
                    .unwrap_or_default(),
                verdict: r.verdict.clone(),
            }
        })
        .collect();
    let mut sources = std::collections::BTreeMap::new();
    for t in &run.tables {
        let read = match (&t.snapshot_id, t.snapshot, t.present) {
            (Some(id), Some(seq), _) => format!("snapshot {seq} ({id})"),
            (_, _, true) => format!("folder {}", run.sources),
            _ => "missing".to_owned(),
        };
        sources.insert(format!("{}/{}", t.source, t.table), read);
    }
    AuditDetail {
        households,
        sources,
        as_of: run.as_of.to_string(),
    }
}
