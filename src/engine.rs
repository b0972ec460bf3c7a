//! The DataFusion session: canonical source tables and applicant inputs registered as
//! tables, the SQL pipelines of `pipelines/` created as views, queries collected.

use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use hedui_connectors::schema;

use crate::inputs::input_schemas;

include!(concat!(env!("OUT_DIR"), "/pipelines.rs"));

/// A failure inside the engine (a defect or resource problem, exit status 1).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// DataFusion refused a table or query.
    #[error("cannot {what}: {source}")]
    DataFusion {
        /// what was being done
        what: String,
        /// the cause
        source: DataFusionError,
    },
}

impl EngineError {
    /// Whether the engine stopped at its memory limit (`--memory-limit`): the user's to
    /// raise, or the batch to split.
    pub fn out_of_memory(&self) -> bool {
        match self {
            EngineError::DataFusion { source, .. } => {
                matches!(source.find_root(), DataFusionError::ResourcesExhausted(_))
            }
        }
    }
}

fn df(what: impl Into<String>) -> impl FnOnce(DataFusionError) -> EngineError {
    let what = what.into();
    move |source| EngineError::DataFusion { what, source }
}

/// The session settings of every run (local or on a cluster).
pub fn session_config() -> SessionConfig {
    let mut config = SessionConfig::new()
        .with_information_schema(false)
        .with_batch_size(8192);
    // Filters evaluated while Parquet is decoded: the lake's tables are narrowed to the
    // batch's members by a semi-join whose keys reach the scan (a dynamic filter), so
    // the other columns are decoded for the members' rows only.
    config.options_mut().execution.parquet.pushdown_filters = true;
    config
}

/// A session configured for the rules.
pub fn new_context() -> SessionContext {
    SessionContext::new_with_config(session_config())
}

/// A session configured for the rules in a shared runtime (its caches, e.g. Parquet
/// metadata, are shared with the other sessions of that runtime).
pub fn new_context_in(
    runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
) -> SessionContext {
    SessionContext::new_with_config_rt(session_config(), runtime)
}

/// Registers `batches` as table `name` with `schema`.
pub fn register(
    ctx: &SessionContext,
    name: &str,
    schema: datafusion::arrow::datatypes::SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<(), EngineError> {
    let partitions = if batches.is_empty() {
        vec![vec![]]
    } else {
        split(batches)
    };
    let table =
        MemTable::try_new(schema, partitions).map_err(df(format!("register table {name}")))?;
    ctx.register_table(name, Arc::new(table))
        .map_err(df(format!("register table {name}")))?;
    Ok(())
}

/// Spreads batches over partitions so scans use every core.
fn split(batches: Vec<RecordBatch>) -> Vec<Vec<RecordBatch>> {
    let n = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .max(1);
    let mut parts: Vec<Vec<RecordBatch>> = vec![Vec::new(); n.min(batches.len()).max(1)];
    let len = parts.len();
    for (i, b) in batches.into_iter().enumerate() {
        parts[i % len].push(b);
    }
    parts
}

/// Every table the pipelines read: the canonical tables (SPEC §2), then the input
/// tables of a run, with their schemas.
pub fn all_tables() -> Vec<(String, datafusion::arrow::datatypes::SchemaRef)> {
    schema::tables()
        .iter()
        .map(|t| (t.table.clone(), t.arrow_schema()))
        .chain(input_schemas().into_iter().map(|(n, s)| (n.to_owned(), s)))
        .collect()
}

/// Registers an empty table for every canonical and input table not yet registered,
/// so the views can be planned whatever a run delivers.
pub fn register_empty(ctx: &SessionContext) -> Result<(), EngineError> {
    for (name, s) in all_tables() {
        if !ctx
            .table_exist(name.as_str())
            .map_err(df("look up tables"))?
        {
            register(ctx, &name, s, vec![])?;
        }
    }
    Ok(())
}

/// Registers the Parquet files `urls` (all with `schema`) as table `name`: read in
/// place, by this process or by a cluster's executors.
pub fn register_parquet(
    ctx: &SessionContext,
    name: &str,
    urls: &[String],
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<(), EngineError> {
    ctx.register_table(name, parquet_table(name, urls, schema)?)
        .map_err(df(format!("register table {name}")))?;
    Ok(())
}

/// The Parquet files `urls` (all with `schema`) as a table (`name` for messages).
fn parquet_table(
    name: &str,
    urls: &[String],
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<Arc<dyn TableProvider>, EngineError> {
    use datafusion::datasource::file_format::parquet::ParquetFormat;
    use datafusion::datasource::listing::{
        ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
    };
    let what = || format!("register table {name}");
    let urls = urls
        .iter()
        .map(ListingTableUrl::parse)
        .collect::<Result<Vec<_>, _>>()
        .map_err(df(what()))?;
    let options =
        ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config).map_err(df(what()))?))
}

/// Replaces each of `tables` by its rows of the batch's members (a semi-join with
/// `members`, held in memory): every rule reaches the departments' records through a
/// member's id_number, so the rules and the evidence then read only those rows, already
/// decoded, instead of scanning the whole tables once per query.
pub async fn narrow_to_members(ctx: &SessionContext, tables: &[String]) -> Result<(), EngineError> {
    for t in tables {
        let started = std::time::Instant::now();
        let sql = format!(
            "SELECT * FROM {t} WHERE id_number IN (SELECT DISTINCT id_number FROM members)"
        );
        let what = format!("read the rows of the batch's members from {t}");
        let frame = ctx.sql(&sql).await.map_err(df(what.clone()))?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.map_err(df(what.clone()))?;
        tracing::debug!(
            table = %t,
            ms = started.elapsed().as_millis() as u64,
            rows = batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
            bytes = batches.iter().map(RecordBatch::get_array_memory_size).sum::<usize>(),
            "narrowed to the batch's members"
        );
        ctx.deregister_table(t.as_str()).map_err(df(what))?;
        register(ctx, t, schema, batches)?;
    }
    Ok(())
}

/// Views computed once per run and held as tables (see [`create_views`]): each is read
/// by several later views (rules, the household figures, the evidence), which would
/// otherwise compute it again. Held only where small next to what it saves: `income_records`
/// as a table made the 1 M check 0.5 s faster but held ~1 GB more on the 10 M province
/// (4.8 GB peak), and `household_income` led the planner to joins that held ~0.5–0.9 GB
/// more: those stay views.
const SHARED_RESULTS: &[&str] = &["member_income", "asset_records", "household_assets"];

/// Drops every table and view of `ctx`, so the rows it holds in memory (the
/// departments' rows narrowed to a batch, the flags) are freed: the views' plans hold
/// their tables, so the tables alone would stay.
pub fn release_all(ctx: &SessionContext) -> Result<(), EngineError> {
    release_all_but(ctx, &[])
}

/// Drops every table and view of `ctx` but those named in `keep` (see [`release_all`]).
pub fn release_all_but(ctx: &SessionContext, keep: &[String]) -> Result<(), EngineError> {
    let state = ctx.state();
    let defaults = &state.config_options().catalog;
    let names = ctx
        .catalog(&defaults.default_catalog)
        .and_then(|c| c.schema(&defaults.default_schema))
        .map(|s| s.table_names())
        .unwrap_or_default();
    for name in names.into_iter().filter(|n| !keep.contains(n)) {
        ctx.deregister_table(name.as_str())
            .map_err(df(format!("release table {name}")))?;
    }
    Ok(())
}

/// The rule views `flag_rows` unites, in its order: the views its `pipelines/` file
/// selects from.
pub fn rule_views() -> Vec<&'static str> {
    let sql = PIPELINES
        .iter()
        .find(|(file, _)| file.ends_with("_flag_rows.sql"))
        .map_or("", |(_, sql)| *sql);
    sql.lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .flat_map(|l| {
            l.split_whitespace()
                .skip_while(|w| !w.eq_ignore_ascii_case("FROM"))
                .nth(1)
        })
        .collect()
}

/// How the views after `flag_rows` (the verdicts) read the flags of a run, the table
/// [`FLAGS_FOUND`].
pub enum FlagsFound {
    /// A view over `flag_rows`: every view self-contained (the `.slt` tests, which
    /// insert rows and query any view).
    View,
    /// A [`LateTable`] the run fills with the rows it collected from `flag_rows`: the
    /// rules are computed once per run, not again for the verdicts.
    Late,
    /// A table made from `flag_rows`' schema (strings as plain `Utf8`) that gets each
    /// run's rows its own way (the planned pipelines' run tables).
    Table(fn(datafusion::arrow::datatypes::SchemaRef) -> Arc<dyn TableProvider>),
    /// The Parquet file at this URL, written once the run has collected its flags (a
    /// run on a cluster: its executors read it, see [`crate::cluster`]).
    Parquet(String),
}

/// Creates every pipeline view, in order, and [`FLAGS_FOUND`] as `flags` says once
/// `flag_rows` exists; the [`LateTable`] to fill for [`FlagsFound::Late`].
pub async fn create_views(
    ctx: &SessionContext,
    flags: FlagsFound,
) -> Result<Option<Arc<LateTable>>, EngineError> {
    let mut found = false;
    let mut late = None;
    for (file, sql) in PIPELINES {
        let flags = &flags;
        ctx.sql(sql)
            .await
            .map_err(df(format!("create the view of pipelines/{file}")))?;
        // A run's session (its tables already hold its rows): the intermediate results
        // that both rules and the household figures read are computed once, here, and
        // the views created after read them as tables.
        if let FlagsFound::Late = flags {
            for view in SHARED_RESULTS {
                if file.ends_with(&format!("_{view}.sql")) {
                    let rows = collect(ctx, &format!("SELECT * FROM {view}")).await?;
                    let schema = match rows.first() {
                        Some(b) => b.schema(),
                        None => plain_strings(&RecordBatch::new_empty(
                            ctx.table(*view)
                                .await
                                .map_err(df(format!("plan {view}")))?
                                .schema()
                                .inner()
                                .clone(),
                        ))
                        .map_err(df(format!("plan {view}")))?
                        .schema(),
                    };
                    ctx.deregister_table(*view)
                        .map_err(df(format!("replace the view {view}")))?;
                    register(ctx, view, schema, rows)?;
                }
            }
        }
        if !found && ctx.table_exist("flag_rows").map_err(df("look up tables"))? {
            found = true;
            match flags {
                FlagsFound::View => {
                    ctx.sql(&format!(
                        "CREATE VIEW {FLAGS_FOUND} AS SELECT * FROM flag_rows"
                    ))
                    .await
                    .map_err(df("create the view flags_found"))?;
                }
                FlagsFound::Late | FlagsFound::Table(_) | FlagsFound::Parquet(_) => {
                    let schema = ctx
                        .table("flag_rows")
                        .await
                        .map_err(df("plan flag_rows"))?
                        .schema()
                        .inner()
                        .clone();
                    let plain = plain_strings(&RecordBatch::new_empty(schema))
                        .map_err(df("plan flags_found"))?;
                    let table: Arc<dyn TableProvider> = match flags {
                        FlagsFound::Table(make) => make(plain.schema()),
                        FlagsFound::Parquet(url) => {
                            parquet_table(FLAGS_FOUND, std::slice::from_ref(url), plain.schema())?
                        }
                        _ => {
                            let t = Arc::new(LateTable {
                                schema: plain.schema(),
                                rows: std::sync::RwLock::new(None),
                            });
                            late = Some(t.clone());
                            t
                        }
                    };
                    ctx.register_table(FLAGS_FOUND, table)
                        .map_err(df("register flags_found"))?;
                }
            }
        }
    }
    Ok(late)
}

/// A table whose rows are given after the views reading it were created (the flags a
/// run found, see [`FlagsFound`]).
#[derive(Debug)]
pub struct LateTable {
    schema: datafusion::arrow::datatypes::SchemaRef,
    /// `None` until the run gives them: reading the table before is an error, never
    /// an empty table (the verdicts would then see no flag).
    rows: std::sync::RwLock<Option<Vec<RecordBatch>>>,
}

impl LateTable {
    fn set(&self, rows: Vec<RecordBatch>) -> Result<(), EngineError> {
        let mut r = self.rows.write().map_err(|_| EngineError::DataFusion {
            what: "keep the flags found".into(),
            source: DataFusionError::Internal("flags_found lock poisoned".into()),
        })?;
        *r = Some(rows);
        Ok(())
    }
}

#[async_trait::async_trait]
impl TableProvider for LateTable {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> datafusion::datasource::TableType {
        datafusion::datasource::TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        filters: &[datafusion::logical_expr::Expr],
        limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn datafusion::physical_plan::ExecutionPlan>> {
        let rows = self
            .rows
            .read()
            .map_err(|_| DataFusionError::Internal("flags_found lock poisoned".into()))?
            .clone()
            .ok_or_else(|| {
                DataFusionError::Internal(
                    "flags_found read before the run's flags were collected".into(),
                )
            })?;
        let partitions = if rows.is_empty() {
            vec![vec![]]
        } else {
            split(rows)
        };
        MemTable::try_new(self.schema.clone(), partitions)?
            .scan(state, projection, filters, limit)
            .await
    }
}

/// A session with every input and canonical table registered empty and every pipeline
/// view created: the starting point of the `.slt` tests, which insert their own rows.
pub async fn empty_session() -> Result<SessionContext, EngineError> {
    let ctx = new_context();
    register_empty(&ctx)?;
    create_views(&ctx, FlagsFound::View).await?;
    Ok(ctx)
}

/// The table of the flags found by a run, which the evidence queries join with.
pub const FLAGS_FOUND: &str = "flags_found";

/// Where a run's queries execute: a session with the run's tables registered and the
/// views created, or the process's [`crate::planned::Planned`] pipelines fed with the
/// run's rows. Either way the same SQL of `pipelines/`.
pub enum Runner<'a> {
    /// A session of this run, and the table of the flags it finds.
    Session(&'a SessionContext, Option<Arc<LateTable>>),
    /// A session on a cluster, and the scratch folder of the run's own tables.
    Cluster(&'a SessionContext, &'a crate::cluster::Scratch),
    /// Planned once; this run's rows.
    Planned {
        /// The planned queries.
        planned: &'a crate::planned::Planned,
        /// The run's rows by table.
        rows: std::collections::HashMap<String, Vec<RecordBatch>>,
        /// The runtime to execute in.
        runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
        /// The task context holding `rows` (remade when a table is added).
        task: Arc<datafusion::execution::TaskContext>,
    },
}

impl<'a> Runner<'a> {
    /// The planned pipelines fed with `rows`.
    pub fn planned(
        planned: &'a crate::planned::Planned,
        rows: std::collections::HashMap<String, Vec<RecordBatch>>,
        runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    ) -> Self {
        let task = planned.task(
            Arc::new(crate::planned::RunRows(rows.clone())),
            runtime.clone(),
        );
        Runner::Planned {
            planned,
            rows,
            runtime,
            task,
        }
    }
}

impl Runner<'_> {
    /// Runs `sql` and collects its batches, string columns as plain `Utf8`.
    pub async fn collect(&self, sql: &str) -> Result<Vec<RecordBatch>, EngineError> {
        match self {
            Runner::Session(ctx, _) | Runner::Cluster(ctx, _) => collect(ctx, sql).await,
            Runner::Planned { planned, task, .. } => planned.run(sql, task.clone()).await,
        }
    }

    /// Adds a table of this run (e.g. [`FLAGS_FOUND`]).
    pub async fn add(
        &mut self,
        name: &str,
        schema: datafusion::arrow::datatypes::SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<(), crate::error::Error> {
        match self {
            // flags_found, read by the verdicts view: its file written (the view reads
            // the file at its URL); any other table written and registered.
            Runner::Cluster(_, scratch) if name == FLAGS_FOUND => {
                Ok(scratch.write(name, schema, &batches).await?)
            }
            Runner::Cluster(ctx, scratch) => scratch.register(ctx, name, schema, &batches).await,
            // flags_found, read by the verdicts view: given its rows in place.
            Runner::Session(_, Some(late)) if name == FLAGS_FOUND => Ok(late.set(batches)?),
            Runner::Session(ctx, _) => Ok(register(ctx, name, schema, batches)?),
            Runner::Planned {
                planned,
                rows,
                runtime,
                task,
            } => {
                rows.insert(name.to_owned(), batches);
                *task = planned.task(
                    Arc::new(crate::planned::RunRows(rows.clone())),
                    runtime.clone(),
                );
                Ok(())
            }
        }
    }

    /// The output schema of `sql` (a view's, when it returns no row).
    pub async fn schema(
        &self,
        sql: &str,
    ) -> Result<datafusion::arrow::datatypes::SchemaRef, EngineError> {
        match self {
            Runner::Session(ctx, _) | Runner::Cluster(ctx, _) => Ok(ctx
                .sql(sql)
                .await
                .map_err(df(format!("plan query {sql}")))?
                .schema()
                .inner()
                .clone()),
            Runner::Planned { planned, .. } => {
                planned.schema(sql).ok_or_else(|| EngineError::DataFusion {
                    what: "find a planned query".into(),
                    source: DataFusionError::Internal(format!("not planned: {sql}")),
                })
            }
        }
    }
}

/// Runs a query and collects its batches, string columns as plain `Utf8`.
pub async fn collect(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, EngineError> {
    let started = std::time::Instant::now();
    let frame = ctx
        .sql(sql)
        .await
        .map_err(df(format!("plan query {sql}")))?;
    let task = Arc::new(frame.task_ctx());
    let plan = frame
        .create_physical_plan()
        .await
        .map_err(df(format!("plan query {sql}")))?;
    let batches = datafusion::physical_plan::collect(plan.clone(), task)
        .await
        .map_err(df(format!("run query {sql}")))?;
    tracing::debug!(
        ms = started.elapsed().as_millis() as u64,
        rows = batches.iter().map(RecordBatch::num_rows).sum::<usize>(),
        "query done: {}",
        sql.lines().next().unwrap_or_default()
    );
    let (spills, spilled_bytes) = spilled(plan.as_ref());
    if spills > 0 {
        // What an operator tuning --memory-limit wants to see: the engine went to disk.
        tracing::debug!(
            spills,
            spilled_bytes,
            "engine spilled to disk at its memory limit: {}",
            sql.lines().next().unwrap_or_default()
        );
    }
    batches
        .iter()
        .map(plain_strings)
        .collect::<Result<_, _>>()
        .map_err(df("convert query results"))
}

/// How often the operators of an executed plan spilled to disk, and how many bytes.
fn spilled(plan: &dyn datafusion::physical_plan::ExecutionPlan) -> (usize, usize) {
    let own = plan.metrics().map_or((0, 0), |m| {
        (m.spill_count().unwrap_or(0), m.spilled_bytes().unwrap_or(0))
    });
    plan.children().into_iter().fold(own, |(n, b), c| {
        let (cn, cb) = spilled(c.as_ref());
        (n + cn, b + cb)
    })
}

/// Casts `Utf8View` / `LargeUtf8` columns to `Utf8`, so readers need one string type.
pub fn plain_strings(batch: &RecordBatch) -> Result<RecordBatch, DataFusionError> {
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::LargeUtf8))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut cols = Vec::with_capacity(schema.fields().len());
    for (f, c) in schema.fields().iter().zip(batch.columns()) {
        if matches!(f.data_type(), DataType::Utf8View | DataType::LargeUtf8) {
            cols.push(cast(c, &DataType::Utf8)?);
            fields.push(Field::new(f.name(), DataType::Utf8, f.is_nullable()));
        } else {
            cols.push(c.clone());
            fields.push(f.as_ref().clone());
        }
    }
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The verdicts read the flags a run collected: before the run gives them, reading
    /// is an error — never a table without flags, which would make households eligible.
    #[tokio::test]
    async fn verdicts_wait_for_the_flags_found() {
        let ctx = new_context();
        register_empty(&ctx).unwrap();
        let late = create_views(&ctx, FlagsFound::Late)
            .await
            .unwrap()
            .expect("a table to fill");
        let early = collect(&ctx, "SELECT * FROM verdicts").await.unwrap_err();
        assert!(
            early
                .to_string()
                .contains("before the run's flags were collected"),
            "{early}"
        );
        late.set(Vec::new()).unwrap();
        let rows: usize = collect(&ctx, "SELECT * FROM verdicts")
            .await
            .unwrap()
            .iter()
            .map(RecordBatch::num_rows)
            .sum();
        assert_eq!(rows, 0, "no household, no verdict");
    }

    /// A whole batch's flags are collected rule view by rule view: those must be exactly
    /// the views `flag_rows` unites, and every rule view the pipelines create.
    #[tokio::test]
    async fn the_rule_views_are_those_of_flag_rows() {
        let views = rule_views();
        let created: Vec<&str> = PIPELINES
            .iter()
            .flat_map(|(_, sql)| sql.split("CREATE VIEW ").skip(1))
            .filter_map(|rest| rest.split_whitespace().next())
            .filter(|v| v.starts_with("rule_"))
            .collect();
        assert_eq!(views, created, "flag_rows unites every rule view, in order");
        assert_eq!(views.len(), 9);
        let ctx = empty_session().await.unwrap();
        let schema = ctx.table("flag_rows").await.unwrap().schema().clone();
        for v in views {
            let s = ctx.table(v).await.unwrap().schema().clone();
            assert_eq!(
                s.fields().len(),
                schema.fields().len(),
                "{v} has flag_rows' columns"
            );
        }
    }
}
