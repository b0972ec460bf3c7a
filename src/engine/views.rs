//! The pipelines of `pipelines/` created as views of a session, in file order, with the
//! table of the flags a run found ([`FlagsFound`]) and the intermediate results computed
//! once per run.

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::DataFusionError;
use datafusion::prelude::SessionContext;

use super::error::{df, EngineError};
use super::queries::FLAGS_FOUND;
use super::session::{
    collect, new_context, parquet_table, plain_strings, register, register_empty, split,
};

include!(concat!(env!("OUT_DIR"), "/pipelines.rs"));

/// Views computed once per run and held as tables (see [`create_views`]): each is read
/// by several later views (rules, the household figures, the evidence), which would
/// otherwise compute it again. Held only where small next to what it saves: `income_records`
/// as a table made the 1 M check 0.5 s faster but held ~1 GB more on the 10 M province
/// (4.8 GB peak), and `household_income` led the planner to joins that held ~0.5–0.9 GB
/// more: those stay views.
const SHARED_RESULTS: &[&str] = &["member_income", "asset_records", "household_assets"];

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
    /// run on a cluster: its executors read it, see [`super::cluster`]).
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
/// run found, see [`FlagsFound`]): held batches, or the Arrow IPC files a large run
/// wrote them to.
#[derive(Debug)]
pub struct LateTable {
    schema: datafusion::arrow::datatypes::SchemaRef,
    /// `None` until the run gives them: reading the table before is an error, never
    /// an empty table (the verdicts would then see no flag).
    rows: std::sync::RwLock<Option<Arc<dyn TableProvider>>>,
}

impl LateTable {
    fn give(&self, table: Arc<dyn TableProvider>) -> Result<(), EngineError> {
        let mut r = self.rows.write().map_err(|_| EngineError::DataFusion {
            what: "keep the flags found".into(),
            source: DataFusionError::Internal("flags_found lock poisoned".into()),
        })?;
        *r = Some(table);
        Ok(())
    }

    /// The rows, held.
    pub(super) fn set(&self, rows: Vec<RecordBatch>) -> Result<(), EngineError> {
        let partitions = if rows.is_empty() {
            vec![vec![]]
        } else {
            split(rows)
        };
        let table = MemTable::try_new(self.schema.clone(), partitions)
            .map_err(df("keep the flags found"))?;
        self.give(Arc::new(table))
    }

    /// The rows, in these Arrow IPC files (`schema` theirs).
    pub(super) fn set_files(
        &self,
        schema: datafusion::arrow::datatypes::SchemaRef,
        files: Vec<std::path::PathBuf>,
    ) -> Result<(), EngineError> {
        use datafusion::datasource::file_format::arrow::ArrowFormat;
        use datafusion::datasource::listing::{
            ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
        };
        if files.is_empty() {
            return self.set(Vec::new());
        }
        // Each file by its URL, never as a pattern: a temporary folder named with `[`,
        // `?`, `*` or bytes that are not UTF-8 is still exactly that folder.
        let urls = files
            .iter()
            .map(|f| {
                let url = url::Url::from_file_path(f).map_err(|()| {
                    DataFusionError::Internal(format!("not an absolute path: {}", f.display()))
                })?;
                ListingTableUrl::try_new(url, None)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(df("read the flags found"))?;
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(
                ListingOptions::new(Arc::new(ArrowFormat)).with_file_extension(".arrow"),
            )
            .with_schema(schema);
        let table = ListingTable::try_new(config).map_err(df("read the flags found"))?;
        self.give(Arc::new(table))
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
        let table = self
            .rows
            .read()
            .map_err(|_| DataFusionError::Internal("flags_found lock poisoned".into()))?
            .clone()
            .ok_or_else(|| {
                DataFusionError::Internal(
                    "flags_found read before the run's flags were collected".into(),
                )
            })?;
        table.scan(state, projection, filters, limit).await
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
