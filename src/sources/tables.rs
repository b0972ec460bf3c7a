//! What the sources of a run are and yield: where the data is ([`SourceInput`]), each
//! canonical table's status, and the rows or files the engine registers.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use hedui_connectors::schema::{self, TableSchema};
use hedui_connectors::validate::days_to_date;
use hedui_connectors::{ConnectorError, Problem};

use crate::config::{Deployment, LakeConfig, SourceConfig, SourceMode};
use crate::lake::LakeError;

/// Why the departments' data cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum SourcesError {
    /// A source delivery (a folder, a file) cannot be used.
    #[error(transparent)]
    Source(#[from] ConnectorError),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// A source folder holding no table file at all (the city folder given instead of
    /// its `sources/`, say): not a check on absent data, the wrong folder.
    #[error(
        "{path} 中没有任何部门数据表（{expected}）：--sources 应指向存放这些文件的文件夹 — {path} holds none of the department tables ({expected}): point --sources at the folder that does"
    )]
    NoTables {
        /// The folder.
        path: String,
        /// What was looked for.
        expected: String,
    },
    /// A query over a snapshot's files failed.
    #[error("cannot {what}: {source}")]
    Query {
        /// what was being done
        what: String,
        /// the cause
        source: datafusion::error::DataFusionError,
    },
}

/// Where a check reads the departments' data.
#[derive(Debug, Clone)]
pub enum SourceInput {
    /// A folder in the SPEC §2 layout (`--sources`).
    Folder(PathBuf),
    /// A lake made by `hedui ingest` (`--lake`), as committed at a time (`--snapshot-at`)
    /// or now.
    Lake {
        /// The lake.
        lake: LakeConfig,
        /// Read the snapshots committed at or before this time.
        at: Option<DateTime<Utc>>,
        /// Lookup-mode sources, asked for the batch's members (unless `at` is given).
        lookups: Vec<SourceConfig>,
    },
}

impl SourceInput {
    /// The departments' data of checks under a deployment: its lake, as committed at
    /// `at` (now when `None`), and its lookup-mode sources.
    pub fn of_deployment(d: &Deployment, at: Option<DateTime<Utc>>) -> SourceInput {
        SourceInput::Lake {
            lake: d.lake.clone(),
            at,
            lookups: d
                .sources
                .iter()
                .filter(|s| s.mode == SourceMode::Lookup)
                .cloned()
                .collect(),
        }
    }

    /// How outputs name the input.
    pub fn label(&self) -> String {
        match self {
            SourceInput::Folder(p) => p.display().to_string(),
            SourceInput::Lake { lake, at: None, .. } => lake.url.clone(),
            SourceInput::Lake {
                lake, at: Some(t), ..
            } => {
                format!("{} @ {}", lake.url, t.to_rfc3339())
            }
        }
    }
}

/// What one canonical table contributed to the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableStatus {
    /// Canonical table.
    pub table: String,
    /// Its source.
    pub source: String,
    /// Whether the source delivered it with at least one usable record.
    pub present: bool,
    /// Why a table counts as absent: `not delivered`, or `no usable record` (an empty,
    /// header-only or all-malformed delivery, SPEC §2).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub absent_because: Option<&'static str>,
    /// Files read (relative to the folder, or the snapshot's files in the lake).
    pub files: Vec<String>,
    /// Records read (good and malformed).
    pub rows_read: u64,
    /// Valid records used by the rules.
    pub rows: usize,
    /// Malformed records kept out.
    pub problems: usize,
    /// Latest date in the table (as_of, period or registered_on), if any.
    pub latest_as_of: Option<String>,
    /// The earliest date of the same column (days since 1970-01-01): how far back the
    /// delivery reaches.
    #[serde(skip)]
    pub earliest: Option<i32>,
    /// Lake reads: the snapshot's commit sequence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<u64>,
    /// Lake reads: the snapshot's folder name (its identity in the lake).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    /// Lake reads: when the snapshot was committed (the lake's clock).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub committed_at: Option<String>,
    /// Lake reads: when the snapshot was pulled from the department.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pulled_at: Option<String>,
}

impl TableStatus {
    pub(super) fn absent(t: &TableSchema) -> Self {
        TableStatus {
            table: t.table.clone(),
            source: t.source.clone(),
            present: false,
            absent_because: Some(NOT_DELIVERED),
            files: vec![],
            rows_read: 0,
            rows: 0,
            problems: 0,
            latest_as_of: None,
            earliest: None,
            snapshot: None,
            snapshot_id: None,
            committed_at: None,
            pulled_at: None,
        }
    }
}

/// [`TableStatus::absent_because`] of a table the source did not deliver.
pub const NOT_DELIVERED: &str = "not delivered";
/// [`TableStatus::absent_because`] of a delivery without one usable record.
pub const NO_USABLE_RECORD: &str = "no usable record";

/// The departments' data of a run, registered in the session.
#[derive(Debug, Default)]
pub struct Sources {
    /// Per canonical table, in SPEC §2 order.
    pub tables: Vec<TableStatus>,
    /// Malformed source records.
    pub problems: Vec<Problem>,
    /// Sources with a table absent (or, in the lake, no snapshot), sorted.
    pub missing: Vec<String>,
    /// Lake sources whose snapshot is older than their freshness on D, sorted.
    pub stale: Vec<String>,
    /// The rows of every present table, for the engine to register.
    pub data: Vec<SourceTable>,
    /// A few households' check on the lake: every present table's [`SourceTable`]
    /// holds only their members' rows, read once (see
    /// [`super::NARROW_TO_MEMBERS_UP_TO`]).
    pub narrowed: bool,
    /// The registered tables already hold only the batch's members' rows (a source
    /// folder keeps them as it validates): nothing left to narrow.
    pub members_only: bool,
}

impl Sources {
    /// Tables delivered.
    pub fn present(&self) -> Vec<String> {
        self.tables
            .iter()
            .filter(|t| t.present)
            .map(|t| t.table.clone())
            .collect()
    }

    /// How far back each present dated table reaches: (source, table, what its first
    /// date must reach — `window` for the income tables, whose periods must reach the
    /// first month of a household's income window, `as_of` for the balances, which must
    /// reach D — and that first date, days since 1970-01-01). A table that does not
    /// reach back far enough for a household makes its source stale for it.
    pub fn reach(&self) -> Vec<(String, String, &'static str, i32)> {
        self.tables
            .iter()
            .filter(|t| t.present)
            .filter_map(|t| {
                let schema = schema::table(&t.table)?;
                let kind = match schema.latest_column() {
                    Some((_, c)) if c.name == "period" => "window",
                    Some((_, c)) if c.name == "as_of" => "as_of",
                    _ => return None,
                };
                Some((t.source.clone(), t.table.clone(), kind, t.earliest?))
            })
            .collect()
    }

    /// (source, `present` | `missing` | `stale`) for every source.
    pub fn statuses(&self) -> Vec<(String, String)> {
        schema::sources()
            .into_iter()
            .map(|(s, _)| {
                let status = if self.missing.iter().any(|m| m == s) {
                    "missing"
                } else if self.stale.iter().any(|m| m == s) {
                    "stale"
                } else {
                    "present"
                };
                (s.to_owned(), status.to_owned())
            })
            .collect()
    }
}

/// The rows of one present canonical table, for the engine to register.
#[derive(Debug)]
pub struct SourceTable {
    /// The canonical table.
    pub table: String,
    /// Its canonical schema.
    pub schema: SchemaRef,
    /// Its rows.
    pub rows: SourceRows,
}

/// Where a present table's rows are.
#[derive(Debug)]
pub enum SourceRows {
    /// Held in memory (a source folder's records, or a few members' rows of the lake).
    Memory(Vec<RecordBatch>),
    /// Snapshot Parquet files (their URLs), read in place.
    Parquet(Vec<String>),
}

/// The latest date of a table's records (its [`TableSchema::latest_column`]) as the
/// summary shows it: `YYYY-MM` for a period, `YYYY-MM-DD` otherwise.
pub(super) fn latest_text(t: &TableSchema, days: Option<i32>) -> Option<String> {
    let d = days_to_date(days?)?;
    Some(match t.latest_column() {
        Some((_, c)) if c.name == "period" => d.format("%Y-%m").to_string(),
        _ => d.to_string(),
    })
}
