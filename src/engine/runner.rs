//! Where a run's queries execute: one enum over the engine's backends (a session of
//! this process, the planned pipelines, a Ballista cluster), each running the same SQL.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::cluster::Scratch;
use super::error::{df, EngineError};
use super::planned::{Planned, RunRows};
use super::queries::FLAGS_FOUND;
use super::session::{collect, plain_strings, register};
use super::views::LateTable;

/// The flags a run found, as it kept them: held, or in Arrow IPC files.
#[derive(Debug)]
pub enum FlagsKept {
    /// In memory.
    Batches(Vec<RecordBatch>),
    /// In these files.
    Files(Vec<std::path::PathBuf>),
}

/// Where a run's queries execute: a session with the run's tables registered and the
/// views created, or the process's [`Planned`] pipelines fed with the
/// run's rows. Either way the same SQL of `pipelines/`.
pub enum Runner<'a> {
    /// A session of this run, and the table of the flags it finds.
    Session(&'a SessionContext, Option<Arc<LateTable>>),
    /// A session on a cluster, and the scratch folder of the run's own tables.
    Cluster(&'a SessionContext, &'a Scratch),
    /// Planned once; this run's rows.
    Planned {
        /// The planned queries.
        planned: &'a Planned,
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
        planned: &'a Planned,
        rows: std::collections::HashMap<String, Vec<RecordBatch>>,
        runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    ) -> Self {
        let task = planned.task(Arc::new(RunRows(rows.clone())), runtime.clone());
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

    /// Runs `sql` and gives its batches as the engine yields them (string columns as
    /// plain `Utf8`): on a session or a cluster one batch at a time; the planned
    /// pipelines (a few households) collect theirs first.
    pub async fn stream(
        &self,
        sql: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<RecordBatch, EngineError>>, EngineError>
    {
        use futures::StreamExt;
        let what = format!("run query {sql}");
        match self {
            Runner::Session(ctx, _) | Runner::Cluster(ctx, _) => {
                let stream = ctx
                    .sql(sql)
                    .await
                    .map_err(df(format!("plan query {sql}")))?
                    .execute_stream()
                    .await
                    .map_err(df(what.clone()))?;
                Ok(stream
                    .map(move |b| b.and_then(|b| plain_strings(&b)).map_err(df(what.clone())))
                    .boxed())
            }
            Runner::Planned { .. } => {
                let batches = self.collect(sql).await?;
                Ok(futures::stream::iter(batches.into_iter().map(Ok)).boxed())
            }
        }
    }

    /// Gives the flags found (the rows of `flag_rows`) to the queries that read
    /// [`FLAGS_FOUND`]: held batches, or the Arrow IPC files they were written to.
    pub async fn flags_found(
        &mut self,
        schema: datafusion::arrow::datatypes::SchemaRef,
        rows: FlagsKept,
    ) -> Result<(), EngineError> {
        match (self, rows) {
            (Runner::Session(_, Some(late)), FlagsKept::Files(files)) => {
                late.set_files(schema, files)
            }
            (runner, FlagsKept::Batches(batches)) => runner.add(FLAGS_FOUND, schema, batches).await,
            (runner, FlagsKept::Files(files)) => {
                // Only a run's own session reads them from the files; the others are given
                // the rows.
                let mut batches = Vec::new();
                for f in &files {
                    let file = std::fs::File::open(f).map_err(|e| EngineError::DataFusion {
                        what: format!("read {}", f.display()),
                        source: DataFusionError::IoError(e),
                    })?;
                    let reader =
                        datafusion::arrow::ipc::reader::FileReader::try_new_buffered(file, None)
                            .map_err(|e| EngineError::DataFusion {
                                what: format!("read {}", f.display()),
                                source: e.into(),
                            })?;
                    for b in reader {
                        batches.push(b.map_err(|e| EngineError::DataFusion {
                            what: format!("read {}", f.display()),
                            source: e.into(),
                        })?);
                    }
                }
                runner.add(FLAGS_FOUND, schema, batches).await
            }
        }
    }

    /// Adds a table of this run (e.g. [`FLAGS_FOUND`]).
    pub async fn add(
        &mut self,
        name: &str,
        schema: datafusion::arrow::datatypes::SchemaRef,
        batches: Vec<RecordBatch>,
    ) -> Result<(), EngineError> {
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
                *task = planned.task(Arc::new(RunRows(rows.clone())), runtime.clone());
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
