//! The departments' data one check reads, registered in its DataFusion session: either
//! a plain source folder (SPEC §2, loaded through the `files` connector) or the lake
//! (SPEC §9, snapshot Parquet read in place through listing tables). Both yield the same
//! canonical tables, the same per-table status, and the missing and stale sources.

use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use datafusion::object_store::ObjectStoreExt;
use datafusion::prelude::SessionContext;
use hedui_connectors::schema::{self, TableSchema};
use hedui_connectors::validate::{days_to_date, reason_code};
use hedui_connectors::{FilesConnector, LoadOptions, Problem};

use std::collections::{HashMap, HashSet};

use crate::applicants::Household;
use crate::config::{LakeConfig, SourceConfig};
use crate::engine::{self, collect};
use crate::error::Error;
use crate::lake::{Lake, LakeError, Manifest, SnapshotMode};
use crate::lookup;
use crate::progress::Progress;

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
    fn absent(t: &TableSchema) -> Self {
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
    /// A few households' check on the lake: every present table's rows of their
    /// members, read once (see [`NARROW_TO_MEMBERS_UP_TO`]); `None` when the tables
    /// are read whole.
    pub narrowed: Option<HashMap<String, Vec<datafusion::arrow::record_batch::RecordBatch>>>,
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

/// Checks that the input can be opened at all (before the batch is read). A lake is
/// only read — never created — unless lookup-mode sources will write their answers.
/// Opens `input`; DataFusion's operators share `memory_limit` bytes (half the machine
/// when `None`, see [`crate::memory`]). With a `cluster`, the pipelines run on its
/// executors, which read the lake themselves: a source folder cannot be used, and the
/// scheduler must answer.
pub async fn open(
    input: &SourceInput,
    memory_limit: Option<u64>,
    cluster: Option<&crate::cluster::Cluster>,
) -> Result<Opened, Error> {
    if let (Some(c), SourceInput::Folder(dir)) = (cluster, input) {
        return Err(Error::Usage(format!(
            "--engine {} runs the rules on a cluster whose executors read the lake; the source folder {} is read by this machine only: ingest it into a lake (hedui ingest) and give --lake or --config",
            c.url(),
            dir.display()
        )));
    }
    if let Some(c) = cluster {
        c.reachable().await?;
    }
    let runtime = crate::memory::runtime(memory_limit);
    match runtime.memory_pool.memory_limit() {
        datafusion::execution::memory_pool::MemoryLimit::Finite(n) => {
            tracing::debug!("engine memory pool: {n} bytes, spilling beyond")
        }
        _ => tracing::debug!("engine memory pool: unbounded"),
    }
    Ok(match input {
        SourceInput::Folder(dir) => Opened::Folder(FilesConnector::new(dir)?, runtime),
        SourceInput::Lake { lake, at, lookups } => Opened::Lake {
            lake: if lookups.is_empty() || at.is_some() {
                Lake::open_existing(lake).await?
            } else {
                Lake::open(lake)?
            },
            at: *at,
            lookups: lookups.clone(),
            cache: Arc::new(SnapshotCache {
                runtime,
                ..SnapshotCache::default()
            }),
            cluster: cluster.cloned(),
        },
    })
}

/// Snapshot entries kept at most by a [`SnapshotCache`] before it starts afresh.
const CACHED_SNAPSHOT_TABLES: usize = 256;

/// What the checks of one process share about the lake (the server answers many): one
/// DataFusion runtime, whose cache keeps the Parquet footers and page indexes of the
/// snapshot files, and what never changes for a committed snapshot table — its
/// malformed records and its latest date — keyed by snapshot id and table.
#[derive(Debug, Default)]
pub struct SnapshotCache {
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    problems: std::sync::Mutex<HashMap<String, Arc<Vec<Problem>>>>,
    latest: std::sync::Mutex<HashMap<(String, String), Option<String>>>,
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

    fn get_latest(&self, key: &(String, String)) -> Option<Option<String>> {
        self.latest.lock().ok()?.get(key).cloned()
    }

    fn put_latest(&self, key: (String, String), v: Option<String>) {
        if let Ok(mut m) = self.latest.lock() {
            if m.len() >= CACHED_SNAPSHOT_TABLES {
                m.clear();
            }
            m.insert(key, v);
        }
    }
}

/// An input that could be opened.
#[derive(Debug)]
pub enum Opened {
    /// A source folder, and the DataFusion runtime of its checks.
    Folder(
        FilesConnector,
        Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    ),
    /// A lake, the time to read it at, and the lookup-mode sources to ask.
    Lake {
        /// The lake.
        lake: Lake,
        /// Read as committed at this time (now when `None`).
        at: Option<DateTime<Utc>>,
        /// Lookup-mode sources.
        lookups: Vec<SourceConfig>,
        /// What successive checks share.
        cache: Arc<SnapshotCache>,
        /// The cluster the pipelines run on (this process when `None`).
        cluster: Option<crate::cluster::Cluster>,
    },
}

impl Opened {
    /// The shared DataFusion runtime of lake checks.
    pub fn runtime(&self) -> Option<Arc<datafusion::execution::runtime_env::RuntimeEnv>> {
        match self {
            Opened::Lake { cache, .. } => Some(cache.runtime.clone()),
            Opened::Folder(..) => None,
        }
    }

    /// A DataFusion session for one check: on the lake, in the shared runtime (the
    /// Parquet metadata read by earlier checks is not read again); with a cluster, a
    /// session whose queries its executors run.
    pub fn new_context(&self) -> Result<SessionContext, Error> {
        Ok(match self {
            Opened::Folder(_, runtime) => engine::new_context_in(runtime.clone()),
            Opened::Lake {
                cache,
                cluster: None,
                ..
            } => engine::new_context_in(cache.runtime.clone()),
            Opened::Lake {
                cache,
                cluster: Some(c),
                ..
            } => c.context(engine::session_config(), cache.runtime.clone())?,
        })
    }

    /// A scratch folder for one run on the cluster (`None` when the pipelines run in
    /// this process).
    pub fn scratch(&self) -> Option<crate::cluster::Scratch> {
        match self {
            Opened::Lake {
                lake,
                cluster: Some(_),
                ..
            } => Some(crate::cluster::Scratch::new(lake)),
            _ => None,
        }
    }
}

/// Registers every delivered canonical table in `ctx` and reports on them;
/// `households` are the batch's accepted households (lookups ask for their members).
pub async fn register(
    opened: &Opened,
    ctx: &SessionContext,
    as_of: NaiveDate,
    households: &[Household],
    progress: &Progress,
) -> Result<Sources, Error> {
    let mut s = match opened {
        Opened::Folder(c, _) => {
            let members: HashSet<String> = households
                .iter()
                .flat_map(|h| h.members.iter().map(|m| m.id_number.clone()))
                .collect();
            from_folder(c, ctx, as_of, Arc::new(members), progress).await?
        }
        Opened::Lake {
            lake,
            at,
            lookups,
            cache,
            cluster,
        } => {
            // Live lookups (not when re-reading the past): the answer, or None when the
            // department failed — the source is then missing for this run.
            let mut pinned: HashMap<&str, Option<Manifest>> = HashMap::new();
            if at.is_none() {
                for src in lookups {
                    let name = src.name.as_str();
                    match lookup::pull(lake, src, households, as_of, progress).await {
                        Ok(m) => {
                            pinned.insert(name, Some(m));
                        }
                        Err(e) => {
                            progress.warn(&format!(
                                "{name}: 按身份证号查询失败，本次核对缺少该部门数据 — lookup failed, the source is missing for this run: {e}"
                            ));
                            tracing::warn!(source = name, "lookup failed: {e}");
                            // Best effort: the run goes on with the source missing.
                            let _ = lake.record_failure(name, &e.to_string()).await;
                            pinned.insert(name, None);
                        }
                    }
                }
            }
            let members: HashSet<&str> = households
                .iter()
                .flat_map(|h| h.members.iter().map(|m| m.id_number.as_str()))
                .collect();
            // On a cluster the executors read the lake: nothing is narrowed here.
            let narrow_up_to = if cluster.is_some() { 0 } else { narrow_limit() };
            from_lake(
                lake,
                cache,
                *at,
                &pinned,
                &members,
                narrow_up_to,
                ctx,
                as_of,
                progress,
            )
            .await?
        }
    };
    s.missing.sort();
    s.missing.dedup();
    s.stale.sort();
    s.stale.dedup();
    Ok(s)
}

async fn from_folder(
    connector: &FilesConnector,
    ctx: &SessionContext,
    as_of: NaiveDate,
    members: Arc<HashSet<String>>,
    progress: &Progress,
) -> Result<Sources, Error> {
    let options = LoadOptions {
        reference_date: as_of,
    };
    let mut s = Sources {
        members_only: true,
        ..Sources::default()
    };
    for t in schema::tables() {
        // Every record validated (and counted); only the members' records kept.
        match connector
            .load_keeping(t, options, Some(members.clone()))
            .await?
        {
            // Delivered, but not one usable record: counted as absent (SPEC §2), its
            // malformed records still listed.
            Some(lt) if lt.usable == 0 => {
                progress.warn(&format!(
                    "{}: {} 中没有可用记录，按未提供处理，{} 数据缺失（{} holds no usable record ({} read, all malformed or none): counted as absent, source {} missing）",
                    t.table,
                    lt.files.join(", "),
                    t.source,
                    lt.files.join(", "),
                    lt.rows_read,
                    t.source
                ));
                s.missing.push(t.source.clone());
                s.tables.push(TableStatus {
                    absent_because: Some(NO_USABLE_RECORD),
                    files: lt.files.clone(),
                    rows_read: lt.rows_read,
                    problems: lt.problems.len(),
                    ..TableStatus::absent(t)
                });
                s.problems.extend(lt.problems);
            }
            Some(lt) => {
                progress.step(&format!(
                    "{}: {} records, {} malformed",
                    t.table,
                    lt.rows_read,
                    lt.problems.len()
                ));
                s.tables.push(TableStatus {
                    present: true,
                    absent_because: None,
                    files: lt.files.clone(),
                    rows_read: lt.rows_read,
                    rows: usize::try_from(lt.usable).unwrap_or(usize::MAX),
                    problems: lt.problems.len(),
                    latest_as_of: latest_text(t, lt.latest),
                    ..TableStatus::absent(t)
                });
                s.problems.extend(lt.problems);
                engine::register(ctx, &t.table, t.arrow_schema(), lt.batches)?;
            }
            None => {
                progress.step(&format!(
                    "{}: absent — source {} missing",
                    t.table, t.source
                ));
                s.missing.push(t.source.clone());
                s.tables.push(TableStatus::absent(t));
            }
        }
    }
    Ok(s)
}

#[allow(clippy::too_many_arguments)]
async fn from_lake(
    lake: &Lake,
    cache: &SnapshotCache,
    at: Option<DateTime<Utc>>,
    pinned: &HashMap<&str, Option<Manifest>>,
    members: &HashSet<&str>,
    narrow_up_to: usize,
    ctx: &SessionContext,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<Sources, Error> {
    let mut s = Sources::default();
    lake.register_in(ctx)?;
    let narrow = !members.is_empty() && members.len() <= narrow_up_to;
    let mut narrowed = HashMap::new();
    let mut to_narrow: Vec<(&TableSchema, Vec<String>)> = Vec::new();
    for (source, tables) in schema::sources() {
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
        match &manifest {
            None => progress.step(&format!("{source}: no snapshot — missing")),
            Some(m) => {
                progress.step(&format!(
                    "{source}: snapshot {} pulled {}",
                    m.seq,
                    m.pulled_at.to_rfc3339()
                ));
                if m.stale_on(as_of) {
                    s.stale.push(source.to_owned());
                }
            }
        }
        for t in tables {
            let entry = manifest
                .as_ref()
                .and_then(|m| m.tables.iter().find(|e| e.table == t.table).map(|e| (m, e)));
            let Some((m, entry)) = entry else {
                s.missing.push(source.to_owned());
                s.tables.push(TableStatus::absent(t));
                continue;
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
                continue;
            }
            register_snapshot_table(lake, ctx, t, &entry.files)?;
            let mut status = TableStatus {
                present: true,
                absent_because: None,
                rows: usize::try_from(entry.rows).unwrap_or(usize::MAX),
                ..read
            };
            // The whole snapshot's latest date (never changes: once per process).
            let key = (m.snapshot_id.clone(), t.table.clone());
            status.latest_as_of = match cache.get_latest(&key) {
                Some(v) => v,
                None => {
                    let v = latest_date(ctx, &status).await?;
                    cache.put_latest(key, v.clone());
                    v
                }
            };
            // A few households (the API, a small batch): the rules need no row but
            // their members' (every source joins on id_number), so only those rows are
            // read — the scan prunes the sorted Parquet by its statistics, page index
            // and bloom filters — and the rules run on them in memory.
            if narrow {
                to_narrow.push((t, entry.files.clone()));
            }
            s.tables.push(status);
        }
    }
    // The narrowing scans run at once (each waits on its files much of the time).
    let rows = futures::future::try_join_all(
        to_narrow
            .iter()
            .map(|(t, files)| narrow_to_members(lake, cache, t, files, members)),
    )
    .await?;
    for ((t, _), rows) in to_narrow.iter().zip(rows) {
        ctx.deregister_table(t.table.as_str()).map_err(|e| {
            Error::Engine(crate::engine::EngineError::DataFusion {
                what: format!("narrow lake table {}", t.table),
                source: e,
            })
        })?;
        engine::register(ctx, &t.table, t.arrow_schema(), rows.clone())?;
        narrowed.insert(t.table.clone(), rows);
    }
    s.narrowed = narrow.then_some(narrowed);
    Ok(s)
}

/// Batches with at most this many members read only their members' rows of the lake.
pub const NARROW_TO_MEMBERS_UP_TO: usize = 512;

/// [`NARROW_TO_MEMBERS_UP_TO`], or `HEDUI_NARROW_MEMBERS` when set (0: never narrow —
/// the tests compare both ways of reading).
fn narrow_limit() -> usize {
    std::env::var("HEDUI_NARROW_MEMBERS")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(NARROW_TO_MEMBERS_UP_TO)
}

/// The rows of the snapshot table `t` (stored in `files`) whose id_number is one of
/// `members`, read straight from its sorted Parquet (see [`crate::lake::rows`]).
async fn narrow_to_members(
    lake: &Lake,
    cache: &SnapshotCache,
    t: &TableSchema,
    files: &[String],
    members: &HashSet<&str>,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>, Error> {
    let mut ids: Vec<&str> = members.iter().copied().collect();
    ids.sort_unstable();
    Ok(crate::lake::rows::rows_of(lake, &cache.footers, files, &t.arrow_schema(), &ids).await?)
}

/// Registers a snapshot table's Parquet files as a listing table: the rules read them in
/// place (row groups and pages pruned by statistics), nothing is copied into memory first.
fn register_snapshot_table(
    lake: &Lake,
    ctx: &SessionContext,
    t: &TableSchema,
    files: &[String],
) -> Result<(), Error> {
    let urls: Vec<String> = files.iter().map(|f| lake.file_url(f)).collect();
    engine::register_parquet(ctx, &t.table, &urls, t.arrow_schema())?;
    Ok(())
}

async fn read_problems(lake: &Lake, rel: &str) -> Result<Vec<Problem>, Error> {
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

/// The latest date in a registered table (its [`TableSchema::latest_column`]).
async fn latest_date(ctx: &SessionContext, t: &TableStatus) -> Result<Option<String>, Error> {
    let Some(schema) = schema::table(&t.table) else {
        return Ok(None);
    };
    let Some((_, col)) = schema.latest_column() else {
        return Ok(None);
    };
    let batches = collect(ctx, &format!("SELECT MAX({}) FROM {}", col.name, t.table)).await?;
    let Some(a) = batches.first().map(|b| b.column(0)) else {
        return Ok(None);
    };
    if a.data_type() != &DataType::Date32 || a.is_empty() || a.is_null(0) {
        return Ok(None);
    }
    Ok(latest_text(
        schema,
        Some(a.as_primitive::<Date32Type>().value(0)),
    ))
}

/// The latest date of a table's records (its [`TableSchema::latest_column`]) as the
/// summary shows it: `YYYY-MM` for a period, `YYYY-MM-DD` otherwise.
fn latest_text(t: &TableSchema, days: Option<i32>) -> Option<String> {
    let d = days_to_date(days?)?;
    Some(match t.latest_column() {
        Some((_, c)) if c.name == "period" => d.format("%Y-%m").to_string(),
        _ => d.to_string(),
    })
}
