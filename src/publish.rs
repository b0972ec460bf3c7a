//! The one tail every run ends in — a check on the command line, a batch job, a check
//! over the API, a reconciliation (by hand or scheduled): first its output files, each
//! written to a temporary name and renamed; then, in one transaction of the state
//! database, its audit entry and the completion of the reconciliation run and of the
//! server's job it is. A run killed between the two is neither done nor audited: a job
//! is run again, a reconciliation is never a baseline.
//!
//! The tail reads the run's answer once, a chunk of households at a time, and gives
//! each chunk to everything that needs it — the result files, the summary's counts, the
//! report's small selection, a reconciliation's comparison (its changes written as
//! found), the audit entry's list of verdicts — so that what it holds does not grow
//! with the evidence.

use std::collections::BTreeMap;
use std::path::Path;

use crate::applicants::Household;
use crate::changes::{kept_rejected, Change, Comparer, Kept, Written};
use crate::error::Error;
use crate::fault;
use crate::output::summary::Summary;
use crate::output::{Compared, Origin, Outputs, Ready};
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
    /// The night's pulls it follows (a scheduled reconciliation), for its report.
    pub pulls: Option<&'a crate::output::NightPulls>,
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
            pulls: None,
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
    /// What the previous run found, by household (empty: no previous run); the
    /// changes from it go to `changes.jsonl`, and the report leads with them.
    pub before: &'a BTreeMap<String, Kept>,
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
    /// A reconciliation's changes: households changed, lines of `changes.jsonl`.
    pub changes: usize,
}

/// Where a run is recorded.
pub enum Record<'a> {
    /// In this open state database.
    In(&'a mut State),
    /// In the state database of this folder (its audit files where the second says),
    /// opened before any output is written.
    At(&'a Path, &'a crate::state::AuditFiles),
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
    let mut opened;
    let state = match record {
        Record::In(state) => Some(state),
        Record::At(dir, audit) => {
            opened = State::open_with(dir, audit.clone())?;
            Some(&mut opened)
        }
        Record::Nowhere => None,
    };
    // A run that cannot be audited (its key gone) writes nothing: no result leaves the
    // hub unrecorded.
    if let Some(state) = &state {
        state.ready_to_audit()?;
    }
    let mut read = read_answer(run, tail, progress)?;
    let Some(state) = state else {
        let summary = read.ready.take().map(Ready::publish).transpose()?;
        return Ok(Published {
            summary,
            audit_seq: None,
            job_done: false,
            changes: read.changed.len(),
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
    let detail = audit_detail(run, &read.verdicts, hasher);
    // The run's own changes file, still under its temporary name: what the state
    // stores is what this run wrote.
    let changes_file = read.ready.as_ref().and_then(Ready::changes_file);
    let job_summary = tail
        .job
        .map(|_| {
            job_summary(
                read.ready.as_ref().map(|r| &r.summary),
                tail.reconciliation.as_ref(),
                read.changed.len(),
            )
        })
        .transpose()?;
    let done = state.complete(&Completion {
        actor: tail.actor,
        kind: tail.kind,
        detail: &detail,
        run: tail.reconciliation.as_ref().map(|r| RunDone {
            id: r.run_id,
            households: &read.kept,
            changes: changes_file
                .filter(|_| !read.changed.is_empty())
                .map(|file| Written {
                    file,
                    households: &read.changed,
                }),
        }),
        job: tail.job.zip(job_summary.as_ref()),
    })?;
    // Recorded: the outputs become visible. A job queued again meanwhile recorded
    // nothing, and its attempt's files are dropped (the next attempt writes its own).
    let summary = match (read.ready.take(), done.audit_seq) {
        (Some(ready), Some(_)) => Some(ready.publish()?),
        (Some(ready), None) => Some(ready.summary.clone()),
        (None, _) => None,
    };
    Ok(Published {
        summary,
        audit_seq: done.audit_seq,
        job_done: done.job_done,
        changes: read.changed.len(),
    })
}

/// What the tail keeps of a run's answer once it has read it.
struct Read {
    /// The output files written, not yet visible (when the tail writes files).
    ready: Option<Ready>,
    /// Each audited household's id, region and verdict, in household_id order.
    verdicts: Vec<(String, String, String)>,
    /// A reconciliation's findings by household, for the next run.
    kept: BTreeMap<String, Kept>,
    /// A reconciliation's changed households (id, region), in `changes.jsonl` order.
    changed: Vec<(String, String)>,
}

/// Reads `run`'s answer once, chunk by chunk, into its outputs (if `tail` writes any)
/// and what the audit entry and a reconciliation's completion need.
fn read_answer(run: &CheckRun, tail: &Tail<'_>, progress: &Progress) -> Result<Read, Error> {
    let reconciliation = tail.reconciliation.as_ref();
    if reconciliation.is_some() && tail.out.is_none() {
        return Err(Error::Internal(
            "a reconciliation run has no output folder for its changes".into(),
        ));
    }
    let mut outputs = tail
        .out
        .map(|out| Outputs::create(out, reconciliation.is_some()))
        .transpose()?;
    let rejected = &run.batch.rejected_households;
    let mut comparer = reconciliation.map(|r| Comparer::new(r.before, rejected));
    let mut read = Read {
        ready: None,
        verdicts: Vec::new(),
        kept: BTreeMap::new(),
        changed: Vec::new(),
    };
    let changes = |found: Vec<Change>, read: &mut Read, outputs: &mut Option<Outputs>| {
        read.changed.extend(
            found
                .iter()
                .map(|c| (c.household_id.clone(), c.region_code.clone())),
        );
        match outputs {
            Some(o) => o.add_changes(&found),
            None => Ok(()),
        }
    };
    run.answer.each_chunk(|chunk| {
        if let Some(o) = &mut outputs {
            o.add(chunk)?;
        }
        if let Some(c) = &mut comparer {
            let found = c.next(chunk);
            changes(found, &mut read, &mut outputs)?;
            read.kept
                .extend(chunk.iter().map(|r| (r.household_id.clone(), Kept::of(r))));
        }
        read.verdicts.extend(
            chunk
                .iter()
                .filter(|r| tail.household.is_none_or(|h| h == r.household_id))
                .map(|r| {
                    (
                        r.household_id.clone(),
                        r.region_code.clone(),
                        r.verdict.clone(),
                    )
                }),
        );
        Ok::<(), Error>(())
    })?;
    if let Some(c) = comparer {
        changes(c.finish(), &mut read, &mut outputs)?;
    }
    if let Some(r) = reconciliation {
        // A recipient refused this run is still on the list: kept as `rejected`, with
        // the flags of the run that last checked it.
        for h in rejected.iter().filter(|h| !h.household_id.is_empty()) {
            let k = kept_rejected(r.before.get(&h.household_id), h);
            read.kept.insert(h.household_id.clone(), k);
        }
    }
    if let Some(o) = outputs {
        let compared = reconciliation.map(|r| Compared {
            run_id: r.run_id,
            previous: r.previous,
        });
        let origin = Origin {
            batch: tail.job,
            actor: tail.actor,
            pulls: tail.pulls,
        };
        read.ready = Some(o.finish(run, compared.as_ref(), &origin, progress)?);
        if reconciliation.is_some() {
            progress.step(&format!(
                "changes.jsonl: {} households changed",
                read.changed.len()
            ));
        }
    }
    Ok(read)
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

/// What a job's submitter is shown of its run: a batch's summary without the server's
/// paths; a reconciliation's run, previous run, changes and counts.
fn job_summary(
    summary: Option<&Summary>,
    reconciliation: Option<&Reconciled<'_>>,
    changes: usize,
) -> Result<serde_json::Value, Error> {
    let Some(summary) = summary else {
        return Ok(serde_json::json!({}));
    };
    if let Some(r) = reconciliation {
        return Ok(serde_json::json!({
            "run_id": r.run_id,
            "previous_run": r.previous,
            "changes": changes,
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

/// What a check run read and decided — each of `verdicts` (household, region, verdict)
/// with its members' ID numbers hashed by `hash`. Households rejected before any data
/// was read are not in it.
fn audit_detail(
    run: &CheckRun,
    verdicts: &[(String, String, String)],
    hash: impl Fn(&str) -> String,
) -> AuditDetail {
    let declared: std::collections::HashMap<&str, &Household> = run
        .batch
        .households
        .iter()
        .map(|h| (h.household_id.as_str(), h))
        .collect();
    let households = verdicts
        .iter()
        .map(|(hid, region, verdict)| {
            let h = declared.get(hid.as_str());
            // An ID number typed into a free-text field is stored as ID numbers are:
            // hashed.
            let hide = |text: &str| {
                hedui_connectors::idnum::replace_ids_in(text, |run| format!("#{}", hash(run)))
                    .into_owned()
            };
            AuditedHousehold {
                household_id: hide(hid),
                region_code: region.clone(),
                authorization_id: h.map(|h| hide(&h.authorization_id)).unwrap_or_default(),
                members: h
                    .map(|h| h.members.iter().map(|m| hash(&m.id_number)).collect())
                    .unwrap_or_default(),
                verdict: verdict.clone(),
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
