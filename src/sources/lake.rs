//! The lake as a run's sources (SPEC §9): per source the snapshot committed at the
//! run's time (or the answer of a lookup asked for the batch's members), each table's
//! status, its malformed records and latest date (kept per process: committed snapshots
//! never change), and its snapshot Parquet files — read in place, or, for a few
//! households, only their members' rows.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::object_store::ObjectStoreExt;
use datafusion::prelude::SessionContext;
use hedui_connectors::schema::{self, TableSchema};
use hedui_connectors::validate::reason_code;
use hedui_connectors::Problem;

use crate::lake::{Lake, LakeError, Manifest, SnapshotMode};
use crate::progress::Progress;

use super::tables::{
    latest_text, SourceRows, SourceTable, Sources, SourcesError, TableStatus, NO_USABLE_RECORD,
};

/// Snapshot entries kept at most by a [`SnapshotCache`] before it starts afresh.
const CACHED_SNAPSHOT_TABLES: usize = 256;

/// What the checks of one process share about the lake (the server answers many): the
/// Parquet footers and page indexes of the snapshot files, and what never changes for a committed snapshot table — its
/// malformed records and its latest date — keyed by snapshot id and table.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    problems: std::sync::Mutex<HashMap<String, Arc<Vec<Problem>>>>,
    dates: std::sync::Mutex<HashMap<(String, String), Dates>>,
    footers: crate::lake::rows::FooterCache,
}

impl SnapshotCache {
    fn get_problems(&self, rel: &str) -> Option<Arc<Vec<Problem>>> {
        self.problems.lock().ok()?.get(rel).cloned()
    }

    fn put_problems(&self, rel: &str, p: Arc<Vec<Problem>>) {
        if let Ok(mut m) = self.problems.lock() {
            if m.len() >= CACHED_SNAPSHOT_TABLES {
                m.clear();
            }
            m.insert(rel.to_owned(), p);
        }
    }

    fn get_dates(&self, key: &(String, String)) -> Option<Dates> {
        self.dates.lock().ok()?.get(key).copied()
    }

    fn put_dates(&self, key: (String, String), v: Dates) {
        if let Ok(mut m) = self.dates.lock() {
            if m.len() >= CACHED_SNAPSHOT_TABLES {
                m.clear();
            }
            m.insert(key, v);
        }
    }
}

/// Reads the sources of the lake as committed at `at` (now when `None`); `pinned` are
/// the answers of this run's lookups (`None`: the department failed); with at most
/// `narrow_up_to` members, only their rows are read.
#[allow(clippy::too_many_arguments)]
pub(super) async fn read(
    lake: &Lake,
    cache: &SnapshotCache,
    at: Option<DateTime<Utc>>,
    pinned: &HashMap<&str, Option<Manifest>>,
    members: &HashSet<&str>,
    narrow_up_to: usize,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<Sources, SourcesError> {
    let mut s = Sources::default();
    let narrow = !members.is_empty() && members.len() <= narrow_up_to;
    let mut present: Vec<(&TableSchema, Vec<String>)> = Vec::new();
    for (source, tables) in schema::sources() {
        let manifest = snapshot_of(lake, source, at, pinned, members, progress).await?;
        match &manifest {
            None => progress.step(&format!("{source}: no snapshot — missing")),
            Some(m) => {
                progress.step(&format!(
                    "{source}: snapshot {} pulled {}",
                    m.seq,
                    m.pulled_at.to_rfc3339()
                ));
                if m.stale_on(as_of, &chrono::Local) {
                    s.stale.push(source.to_owned());
                }
            }
        }
        for t in tables {
            let files =
                table_of(lake, cache, &mut s, source, t, manifest.as_ref(), progress).await?;
            if let Some(files) = files {
                present.push((t, files));
            }
        }
    }
    if narrow {
        // A few households (the API, a small batch): the rules need no row but their
        // members' (every source joins on id_number), so only those rows are read — the
        // scan prunes the sorted Parquet by its statistics, page index and bloom
        // filters — and the rules run on them in memory. The scans run at once (each
        // waits on its files much of the time).
        let rows = futures::future::try_join_all(
            present
                .iter()
                .map(|(t, files)| narrow_to_members(lake, cache, t, files, members)),
        )
        .await?;
        for ((t, _), rows) in present.iter().zip(rows) {
            s.data.push(SourceTable {
                table: t.table.clone(),
                schema: t.arrow_schema(),
                rows: SourceRows::Memory(rows),
            });
        }
    } else {
        // The rules read the snapshot files in place (row groups and pages pruned by
        // statistics); nothing is copied into memory first.
        for (t, files) in present {
            s.data.push(SourceTable {
                table: t.table.clone(),
                schema: t.arrow_schema(),
                rows: SourceRows::Parquet(files.iter().map(|f| lake.file_url(f)).collect()),
            });
        }
    }
    s.narrowed = narrow;
    Ok(s)
}

/// The snapshot of `source` a run reads: this run's lookup answer, or the one committed
/// at `at`; a kept lookup answer only if it was asked for every member of the batch.
async fn snapshot_of(
    lake: &Lake,
    source: &str,
    at: Option<DateTime<Utc>>,
    pinned: &HashMap<&str, Option<Manifest>>,
    members: &HashSet<&str>,
    progress: &Progress,
) -> Result<Option<Manifest>, SourcesError> {
    let mut manifest = match pinned.get(source) {
        Some(m) => m.clone(),
        None => lake.snapshot_at(source, at).await?,
    };
    // A lookup snapshot answers for the people it asked about only: for anyone
    // else it knows nothing, so it may serve this batch only if it covers everyone.
    if let Some(m) = manifest.as_ref().filter(|m| m.mode == SnapshotMode::Lookup) {
        let queried = lake.queried(m).await?;
        let uncovered = members.iter().filter(|id| !queried.contains(**id)).count();
        if uncovered > 0 {
            progress.warn(&format!(
                "{source}: 保存的查询结果不覆盖本批全部成员，本次核对缺少该部门数据 — the kept lookup answer (snapshot {}) was asked for other households; {uncovered} member(s) of this batch were not asked about, so {source} is missing for this run",
                m.seq
            ));
            manifest = None;
        }
    }
    Ok(manifest)
}

/// Reports table `t` of `source` in `manifest` into `s` (status, malformed records) and
/// gives its snapshot files when it is present with usable records.
async fn table_of(
    lake: &Lake,
    cache: &SnapshotCache,
    s: &mut Sources,
    source: &str,
    t: &TableSchema,
    manifest: Option<&Manifest>,
    progress: &Progress,
) -> Result<Option<Vec<String>>, SourcesError> {
    let entry = manifest
        .as_ref()
        .and_then(|m| m.tables.iter().find(|e| e.table == t.table).map(|e| (m, e)));
    let Some((m, entry)) = entry else {
        s.missing.push(source.to_owned());
        s.tables.push(TableStatus::absent(t));
        return Ok(None);
    };
    if let Some(rel) = &entry.problems_file {
        let problems = match cache.get_problems(rel) {
            Some(p) => p,
            None => {
                let p = Arc::new(read_problems(lake, rel).await?);
                cache.put_problems(rel, p.clone());
                p
            }
        };
        s.problems.extend(problems.iter().cloned());
    }
    // What this snapshot's table is, whether or not it is used.
    let read = TableStatus {
        files: entry.files.clone(),
        rows_read: entry.rows + entry.problems,
        problems: usize::try_from(entry.problems).unwrap_or(usize::MAX),
        snapshot: Some(m.seq),
        snapshot_id: Some(m.snapshot_id.clone()),
        committed_at: Some(m.committed_at.to_rfc3339()),
        pulled_at: Some(m.pulled_at.to_rfc3339()),
        ..TableStatus::absent(t)
    };
    if entry.rows == 0 {
        // A snapshot of an empty delivery (committed before ingest refused
        // them, or only malformed records): absent, as in a folder (SPEC §2).
        progress.warn(&format!(
            "{}: 快照 {} 中没有可用记录，{} 数据缺失（snapshot {} of {} holds no usable record: source {} missing）",
            t.table, m.seq, source, m.seq, t.table, source
        ));
        s.missing.push(source.to_owned());
        s.tables.push(TableStatus {
            absent_because: Some(NO_USABLE_RECORD),
            ..read
        });
        return Ok(None);
    }
    let mut status = TableStatus {
        present: true,
        absent_because: None,
        rows: usize::try_from(entry.rows).unwrap_or(usize::MAX),
        ..read
    };
    // The whole snapshot's first and latest dates (never change: once per process).
    let key = (m.snapshot_id.clone(), t.table.clone());
    let dates = match cache.get_dates(&key) {
        Some(v) => v,
        None => {
            let v = table_dates(lake, t, &entry.files).await?;
            cache.put_dates(key, v);
            v
        }
    };
    status.latest_as_of = latest_text(t, dates.latest);
    status.earliest = dates.earliest;
    s.tables.push(status);
    Ok(Some(entry.files.clone()))
}

/// Batches with at most this many members read only their members' rows of the lake.
pub const NARROW_TO_MEMBERS_UP_TO: usize = 512;

/// [`NARROW_TO_MEMBERS_UP_TO`], or `HEDUI_NARROW_MEMBERS` when set (0: never narrow —
/// the tests compare both ways of reading).
pub(super) fn narrow_limit() -> usize {
    crate::fault::number("HEDUI_NARROW_MEMBERS").unwrap_or(NARROW_TO_MEMBERS_UP_TO)
}

/// The rows of the snapshot table `t` (stored in `files`) whose id_number is one of
/// `members`, read straight from its sorted Parquet (see [`crate::lake::rows`]).
async fn narrow_to_members(
    lake: &Lake,
    cache: &SnapshotCache,
    t: &TableSchema,
    files: &[String],
    members: &HashSet<&str>,
) -> Result<Vec<RecordBatch>, SourcesError> {
    let mut ids: Vec<&str> = members.iter().copied().collect();
    ids.sort_unstable();
    Ok(crate::lake::rows::rows_of(lake, &cache.footers, files, &t.arrow_schema(), &ids).await?)
}

async fn read_problems(lake: &Lake, rel: &str) -> Result<Vec<Problem>, LakeError> {
    let path = lake.path(rel);
    let bytes = lake
        .store()
        .get(&path)
        .await
        .map_err(|source| LakeError::Store {
            url: lake.url().to_owned(),
            op: format!("read {rel}"),
            source,
        })?
        .bytes()
        .await
        .map_err(|source| LakeError::Store {
            url: lake.url().to_owned(),
            op: format!("read {rel}"),
            source,
        })?;
    /// A line of `problems.jsonl` as stored by the ingest.
    #[derive(serde::Deserialize)]
    struct Stored {
        table: String,
        file: String,
        row: u64,
        field: String,
        reason: String,
        value: String,
        message: String,
    }
    let bad = |why: String| LakeError::BadManifest {
        url: lake.url().to_owned(),
        path: rel.to_owned(),
        why,
    };
    let mut out = Vec::new();
    for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let p: Stored = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
        let reason = reason_code(&p.reason)
            .ok_or_else(|| bad(format!("unknown reason code {:?}", p.reason)))?;
        out.push(Problem {
            table: p.table,
            file: p.file,
            row: p.row,
            field: p.field,
            reason,
            value: p.value,
            message: p.message,
        });
    }
    Ok(out)
}

/// The first and the latest date of a snapshot table (days since 1970-01-01).
#[derive(Debug, Clone, Copy, Default)]
struct Dates {
    earliest: Option<i32>,
    latest: Option<i32>,
}

/// The first and latest dates of snapshot table `t` stored in `files` (its
/// [`TableSchema::latest_column`]), read by a query of its own over the files.
async fn table_dates(
    lake: &Lake,
    t: &TableSchema,
    files: &[String],
) -> Result<Dates, SourcesError> {
    let Some((_, col)) = t.latest_column() else {
        return Ok(Dates::default());
    };
    let query = |source| SourcesError::Query {
        what: format!("read the first and latest dates of {}", t.table),
        source,
    };
    let ctx = SessionContext::new();
    lake.register_in(&ctx)?;
    let urls: Vec<String> = files.iter().map(|f| lake.file_url(f)).collect();
    let table = crate::lake::table::parquet_table(&urls, t.arrow_schema()).map_err(query)?;
    ctx.register_table(t.table.as_str(), table).map_err(query)?;
    let batches = ctx
        .sql(&format!(
            "SELECT MIN({c}), MAX({c}) FROM {}",
            t.table,
            c = col.name
        ))
        .await
        .map_err(query)?
        .collect()
        .await
        .map_err(query)?;
    let day = |i: usize| {
        let a = batches.first()?.column(i);
        if a.data_type() != &DataType::Date32 || a.is_empty() || a.is_null(0) {
            return None;
        }
        Some(a.as_primitive::<Date32Type>().value(0))
    };
    Ok(Dates {
        earliest: day(0),
        latest: day(1),
    })
}
