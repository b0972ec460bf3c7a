//! A finished verification run: the batch, each household's result, and what the run
//! read — everything its outputs, its audit entry and its comparison need.

use chrono::NaiveDate;
use hedui_connectors::Problem;

use crate::applicants::Batch;
use crate::sources::TableStatus;

use super::answer::Answer;

/// A finished run, ready to be written.
#[derive(Debug)]
pub struct CheckRun {
    /// Check date D.
    pub as_of: NaiveDate,
    /// When the check ran (this host's clock).
    pub checked_at: chrono::DateTime<chrono::Utc>,
    /// The policy file used.
    pub policy_file: String,
    /// The departments' data used (folder, or lake URL and time).
    pub sources: String,
    /// The validated batch.
    pub batch: Batch,
    /// One result per accepted household, in household_id order, a chunk at a time.
    pub answer: Answer,
    /// Per-table status, in SPEC §2 order.
    pub tables: Vec<TableStatus>,
    /// Sources missing, sorted.
    pub missing_sources: Vec<String>,
    /// Sources stale (lake reads), sorted.
    pub stale_sources: Vec<String>,
    /// Malformed source records.
    pub problems: Vec<Problem>,
    /// How the report names each region code of the batch: `新郑市（410184）`, or
    /// `410102（郑州市）` when the standard in force is the prefecture's or province's.
    pub region_labels: std::collections::BTreeMap<String, String>,
}
