//! The rule pipelines planned once per process and run again for each small check (the
//! API's households): the same `pipelines/` views and evidence queries as every other
//! check, but planned against tables whose rows come with each run ("run tables"), so
//! that a check costs its execution only — not the parsing, optimising and physical
//! planning of twenty nested views each time.
//!
//! Each run gives its rows in a [`RunRows`] extension of the task context; a run table
//! it does not give is empty (as `session::register_empty` does for a session). A plan's
//! operator state is reset before every run (`reset_plan_states`), so runs never see each
//! other's rows and may run at the same time.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{
    reset_plan_states, Boundedness, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use datafusion::prelude::{SessionConfig, SessionContext};
use hedui_connectors::schema;

use super::error::EngineError;
use super::inputs::input_schemas;
use super::queries::{evidence_queries, FLAGS_FOUND, FLAG_ROWS, HOUSEHOLD_RESULTS};
use super::session::plain_strings;
use super::views::{create_views, FlagsFound};

/// The rows of one run, by table.
#[derive(Debug, Default)]
pub struct RunRows(pub HashMap<String, Vec<RecordBatch>>);

/// A table whose rows are given by each run.
#[derive(Debug)]
struct RunTable {
    name: String,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for RunTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(RunScanExec::new(
            self.name.clone(),
            self.schema.clone(),
            projection.cloned(),
        )?))
    }
}

/// Reads a run table's rows from the task context.
#[derive(Debug)]
struct RunScanExec {
    name: String,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl RunScanExec {
    fn new(name: String, full: SchemaRef, projection: Option<Vec<usize>>) -> DfResult<Self> {
        let schema = match &projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(RunScanExec {
            name,
            projection,
            schema,
            properties: Arc::new(properties),
        })
    }
}

impl DisplayAs for RunScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "RunScanExec: {}", self.name)
    }
}

impl ExecutionPlan for RunScanExec {
    fn name(&self) -> &str {
        "RunScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn replace_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
        _: ReplaceChildrenOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn with_new_children(
        self: Arc<Self>,
        _: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "RunScanExec {} has one partition, not {partition}",
                self.name
            )));
        }
        let rows = context.session_config().get_extension::<RunRows>();
        let batches = rows
            .as_ref()
            .and_then(|r| r.0.get(&self.name))
            .map(|b| {
                b.iter()
                    .map(|b| match &self.projection {
                        Some(p) => b.project(p),
                        None => Ok(b.clone()),
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default();
        Ok(Box::pin(MemoryStream::try_new(
            batches,
            self.schema.clone(),
            None,
        )?))
    }
}

static SHARED: tokio::sync::OnceCell<Planned> = tokio::sync::OnceCell::const_new();

/// The planned queries of a check — flags, household figures, evidence — planned at
/// first use and shared by the process.
pub async fn shared() -> Result<&'static Planned, EngineError> {
    SHARED
        .get_or_try_init(|| async {
            let mut queries = vec![FLAG_ROWS.to_owned(), HOUSEHOLD_RESULTS.to_owned()];
            queries.extend(evidence_queries().into_iter().map(|(_, sql, _)| sql));
            Planned::plan(&queries).await
        })
        .await
}

/// The planned queries of a check.
pub struct Planned {
    ctx: SessionContext,
    plans: HashMap<String, Arc<dyn ExecutionPlan>>,
}

impl fmt::Debug for Planned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Planned")
            .field("queries", &self.plans.len())
            .finish()
    }
}

fn df(what: &str) -> impl FnOnce(DataFusionError) -> EngineError + '_ {
    move |source| EngineError::DataFusion {
        what: what.to_owned(),
        source,
    }
}

impl Planned {
    /// Plans `queries` (SQL over the pipeline views, the run tables, and
    /// `flags_found` — the rows of `flag_rows` a run found) in a session of run
    /// tables, one partition (a check of a few households is too small to share out).
    pub async fn plan(queries: &[String]) -> Result<Planned, EngineError> {
        let config = SessionConfig::new()
            .with_information_schema(false)
            .with_batch_size(8192)
            .with_target_partitions(1);
        let ctx = SessionContext::new_with_config(config);
        let mut tables: Vec<(String, SchemaRef)> = schema::tables()
            .iter()
            .map(|t| (t.table.clone(), t.arrow_schema()))
            .collect();
        tables.extend(input_schemas().into_iter().map(|(n, s)| (n.to_owned(), s)));
        for (name, schema) in tables {
            ctx.register_table(
                name.as_str(),
                Arc::new(RunTable {
                    name: name.clone(),
                    schema,
                }),
            )
            .map_err(df("register a run table"))?;
        }
        // flags_found: a run table holding what `flag_rows` gave that run.
        create_views(
            &ctx,
            FlagsFound::Table(|schema| {
                Arc::new(RunTable {
                    name: FLAGS_FOUND.to_owned(),
                    schema,
                })
            }),
        )
        .await?;
        let mut plans = HashMap::new();
        for q in queries {
            let plan = ctx
                .sql(q)
                .await
                .map_err(df("plan a query"))?
                .create_physical_plan()
                .await
                .map_err(df("plan a query"))?;
            plans.insert(q.clone(), plan);
        }
        Ok(Planned { ctx, plans })
    }

    /// The output schema of planned query `sql`.
    pub fn schema(&self, sql: &str) -> Option<SchemaRef> {
        self.plans.get(sql).map(|p| p.schema())
    }

    /// The task context of a run: its rows, in the given runtime (its caches and
    /// memory pool). Made once per set of rows, used by every query of the run.
    pub fn task(
        &self,
        rows: Arc<RunRows>,
        runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    ) -> Arc<TaskContext> {
        let mut state = self.ctx.state();
        state.config_mut().set_extension(rows);
        datafusion::execution::SessionStateBuilder::new_from_existing(state)
            .with_runtime_env(runtime)
            .build()
            .task_ctx()
    }

    /// Runs planned query `sql` in `task` (see [`Planned::task`]); string columns as
    /// plain `Utf8`.
    pub async fn run(
        &self,
        sql: &str,
        task: Arc<TaskContext>,
    ) -> Result<Vec<RecordBatch>, EngineError> {
        let plan = self.plans.get(sql).ok_or_else(|| EngineError::DataFusion {
            what: "run a planned query".into(),
            source: DataFusionError::Internal(format!("not planned: {sql}")),
        })?;
        let plan = reset_plan_states(plan.clone()).map_err(df("reset a planned query"))?;
        let batches = datafusion::physical_plan::collect(plan, task)
            .await
            .map_err(df("run a planned query"))?;
        batches
            .iter()
            .map(plain_strings)
            .collect::<Result<_, _>>()
            .map_err(df("convert query results"))
    }
}
