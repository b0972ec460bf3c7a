//! The DataFusion session of a run: its settings, tables registered (in memory or as
//! Parquet read in place), narrowed to the batch's members, released, and queries
//! collected with string columns as plain `Utf8`.

use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};
use hedui_connectors::schema;

use crate::sources::{SourceRows, SourceTable};

use super::error::{df, EngineError};
use super::inputs::input_schemas;

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
pub(super) fn split(batches: Vec<RecordBatch>) -> Vec<Vec<RecordBatch>> {
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

/// Registers the departments' tables a run's sources yield, each in memory or read in
/// place (the lake's store made known to `ctx` first, see `Lake::register_in`).
pub fn register_sources(ctx: &SessionContext, tables: Vec<SourceTable>) -> Result<(), EngineError> {
    for t in tables {
        match t.rows {
            SourceRows::Memory(rows) => register(ctx, &t.table, t.schema, rows)?,
            SourceRows::Parquet(urls) => register_parquet(ctx, &t.table, &urls, t.schema)?,
        }
    }
    Ok(())
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
pub(super) fn parquet_table(
    name: &str,
    urls: &[String],
    schema: datafusion::arrow::datatypes::SchemaRef,
) -> Result<Arc<dyn TableProvider>, EngineError> {
    crate::lake::table::parquet_table(urls, schema).map_err(df(format!("register table {name}")))
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
