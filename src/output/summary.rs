//! `summary.json`: counts per verdict and per rule, rows read, households accepted and
//! rejected, and each source's rows, latest as_of and problems (SPEC §7).

use std::collections::BTreeMap;

use serde::Serialize;

use crate::sources::TableStatus;
use crate::verdict::{CheckRun, HouseholdResult};

/// Verdicts in the order of SPEC §5.7.
pub const VERDICTS: [&str; 4] = ["eligible", "review", "incomplete", "ineligible"];

/// Counts for one rule.
#[derive(Debug, Clone, Default, Serialize)]
pub struct RuleCount {
    /// Households with the flag.
    pub households: u64,
    /// Flags raised (per-member rules can raise several per household).
    pub flags: u64,
}

/// One source's state in the run.
#[derive(Debug, Clone, Serialize)]
pub struct SourceSummary {
    /// `present` or `missing`.
    pub status: &'static str,
    /// Valid records over its tables.
    pub rows: usize,
    /// Malformed records over its tables.
    pub problems: usize,
    /// Latest date over its tables.
    pub latest_as_of: Option<String>,
    /// Lake reads: the snapshot read (sequence and id), as its tables list it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotRead>,
    /// Per table.
    pub tables: BTreeMap<String, TableStatus>,
}

/// The snapshot of a source a lake read used.
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRead {
    /// Commit sequence.
    pub seq: u64,
    /// Snapshot folder name.
    pub snapshot_id: String,
    /// When it was committed.
    pub committed_at: Option<String>,
}

/// The applicant batch in numbers.
#[derive(Debug, Clone, Serialize)]
pub struct ApplicantSummary {
    /// The file.
    pub file: String,
    /// Its format.
    pub format: crate::applicants::BatchFormat,
    /// Its text encoding (CSV/JSONL).
    pub encoding: Option<String>,
    /// Data rows read.
    pub rows_read: u64,
    /// Headers not recognised, ignored (SPEC §3).
    pub ignored_columns: Vec<String>,
    /// Households verified.
    pub households_accepted: usize,
    /// Households rejected.
    pub households_rejected: usize,
    /// Rejection lines written.
    pub rejections: usize,
}

/// The whole summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Check date D.
    pub as_of: String,
    /// When the check ran (UTC). With the snapshots below, it says exactly which data a
    /// decision rested on, so `--snapshot-at` can re-read it.
    pub checked_at: String,
    /// Policy file.
    pub policy: String,
    /// Source folder, or lake URL (and `--snapshot-at` time).
    pub sources_dir: String,
    /// The batch.
    pub applicants: ApplicantSummary,
    /// Households per verdict.
    pub verdicts: BTreeMap<String, u64>,
    /// Per rule.
    pub rules: BTreeMap<String, RuleCount>,
    /// Per source.
    pub sources: BTreeMap<String, SourceSummary>,
    /// Sources missing.
    pub missing_sources: Vec<String>,
    /// Sources stale (lake reads: snapshot older than its freshness on D).
    pub stale_sources: Vec<String>,
    /// Malformed source records in all.
    pub data_quality_problems: usize,
}

/// The counts of a run's results, gathered chunk by chunk.
#[derive(Debug, Default)]
pub struct Tally {
    verdicts: BTreeMap<String, u64>,
    rules: BTreeMap<String, RuleCount>,
    households: usize,
}

impl Tally {
    /// Counts `results`.
    pub fn add(&mut self, results: &[HouseholdResult]) {
        for r in results {
            self.households += 1;
            *self.verdicts.entry(r.verdict.clone()).or_default() += 1;
            let mut seen: Vec<&str> = Vec::new();
            for f in &r.flags {
                let c = self.rules.entry(f.rule.clone()).or_default();
                c.flags += 1;
                if !seen.contains(&f.rule.as_str()) {
                    c.households += 1;
                    seen.push(&f.rule);
                }
            }
        }
    }
}

/// Builds the summary of a run whose results counted `tally`.
pub fn build(run: &CheckRun, tally: Tally) -> Summary {
    let mut verdicts: BTreeMap<String, u64> =
        VERDICTS.iter().map(|v| ((*v).to_owned(), 0)).collect();
    for (v, n) in tally.verdicts {
        *verdicts.entry(v).or_default() += n;
    }
    let rules = tally.rules;
    let mut sources: BTreeMap<String, SourceSummary> = BTreeMap::new();
    for t in &run.tables {
        let s = sources
            .entry(t.source.clone())
            .or_insert_with(|| SourceSummary {
                status: if run.missing_sources.contains(&t.source) {
                    "missing"
                } else if run.stale_sources.contains(&t.source) {
                    "stale"
                } else {
                    "present"
                },
                rows: 0,
                problems: 0,
                latest_as_of: None,
                snapshot: None,
                tables: BTreeMap::new(),
            });
        if let (Some(seq), Some(id)) = (t.snapshot, &t.snapshot_id) {
            s.snapshot.get_or_insert_with(|| SnapshotRead {
                seq,
                snapshot_id: id.clone(),
                committed_at: t.committed_at.clone(),
            });
        }
        s.rows += t.rows;
        s.problems += t.problems;
        if t.latest_as_of > s.latest_as_of {
            s.latest_as_of = t.latest_as_of.clone();
        }
        s.tables.insert(t.table.clone(), t.clone());
    }
    Summary {
        as_of: run.as_of.to_string(),
        checked_at: run
            .checked_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        policy: run.policy_file.clone(),
        sources_dir: run.sources.clone(),
        applicants: ApplicantSummary {
            file: run.batch.file.clone(),
            format: run.batch.format,
            encoding: run.batch.encoding.clone(),
            rows_read: run.batch.rows_read,
            ignored_columns: run.batch.ignored_columns.clone(),
            households_accepted: tally.households,
            households_rejected: run.batch.rejected_households.len(),
            rejections: run.batch.rejections.len(),
        },
        verdicts,
        rules,
        sources,
        missing_sources: run.missing_sources.clone(),
        stale_sources: run.stale_sources.clone(),
        data_quality_problems: run.problems.len(),
    }
}
