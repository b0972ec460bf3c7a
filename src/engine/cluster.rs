//! `--engine df://HOST:PORT`: the same pipelines run on an Apache Ballista cluster
//! (a scheduler and its executors, stock binaries of the Ballista version matching our
//! DataFusion).
//!
//! The session of a run is a Ballista client session: its queries are sent to the
//! scheduler as logical plans and executed by the executors, which read every table of
//! the run from Parquet files they can reach themselves. The lake's snapshot tables are
//! such files already. The run's own tables — the batch's members, its parameters, the
//! empty tables of absent sources and the flags the rules found — are written as
//! Parquet into a scratch folder of the run inside the lake (`engine-runs/RUN/`) and
//! removed when the run ends. Nothing of the pipelines runs in hedui's process: no
//! custom function, no table held in its memory (the narrowing of the local engine and
//! its once-computed intermediate results are not used; the executors' scans filter).

use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::{SessionConfig, SessionContext};

use datafusion::object_store::ObjectStoreExt;

use super::error::{ClusterError, EngineError};
use super::session::{all_tables, register_parquet};
use crate::config::cluster::ClusterAddress;
use crate::lake::Lake;

/// Ballista's switch of its adaptive query planner (see [`Cluster::context`]).
const ADAPTIVE_PLANNER: &str = "ballista.planner.adaptive.enabled";

/// How long to wait for the scheduler to accept a connection before a run starts.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A Ballista scheduler the pipelines run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    addr: ClusterAddress,
}

impl Cluster {
    /// The scheduler at `addr`.
    pub fn new(addr: ClusterAddress) -> Cluster {
        Cluster { addr }
    }

    /// `df://HOST:PORT`.
    pub fn url(&self) -> &str {
        self.addr.url()
    }

    /// Fails unless the scheduler accepts a connection: a run does not start against a
    /// cluster that is not there.
    pub async fn reachable(&self) -> Result<(), ClusterError> {
        let host = self
            .addr
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']');
        let unreachable = |why: String| ClusterError::Unreachable {
            url: self.url().to_owned(),
            why,
        };
        match tokio::time::timeout(
            CONNECT_TIMEOUT,
            tokio::net::TcpStream::connect((host, self.addr.port())),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(unreachable(e.to_string())),
            Err(_) => Err(unreachable(format!(
                "no answer within {} s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// A session whose queries run on the cluster.
    pub fn context(
        &self,
        config: SessionConfig,
        runtime: Arc<RuntimeEnv>,
    ) -> Result<SessionContext, ClusterError> {
        use ballista::extension::{SessionConfigExt, SessionStateExt};
        let session = |source| ClusterError::Session {
            url: self.url().to_owned(),
            source,
        };
        let mut config = config.upgrade_for_ballista();
        // Ballista 55's adaptive planner (on by default) never finished the income
        // rule's plan: it re-planned stage after stage (hundreds of thousands in ten
        // minutes) on a 3,000-person city. Its static distributed planner runs the
        // same plans.
        config
            .options_mut()
            .set(ADAPTIVE_PLANNER, "false")
            .map_err(session)?;
        // The lake's Parquet files say they are sorted by id_number; with statistics
        // collected, DataFusion plans on that order: an order-preserving repartition
        // feeding a sort-merge join and sorted aggregates (Ballista prefers sort-merge
        // joins). Ballista's shuffle does not keep that order across the map tasks'
        // outputs, so the join missed matches: on the 1 M city about every second run
        // flagged identity_not_found for 147,406 members who are found. Without file
        // statistics the plans sort after each shuffle themselves.
        config.options_mut().execution.collect_statistics = false;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            .build()
            .upgrade_for_ballista(format!("http://{}:{}", self.addr.host(), self.addr.port()))
            .map_err(session)?;
        Ok(SessionContext::new_with_state(state))
    }
}

/// The scratch folder of one run on the cluster, inside the lake: the run's own tables
/// as Parquet files the executors read.
#[derive(Debug)]
pub struct Scratch {
    store: Arc<dyn datafusion::object_store::ObjectStore>,
    /// `engine-runs/` of the lake.
    parent: datafusion::object_store::path::Path,
    /// `engine-runs/RUN` relative to the lake root.
    rel: String,
    dir: datafusion::object_store::path::Path,
    /// How DataFusion addresses the folder.
    base: String,
}

/// Where the scratch folders of runs are, relative to the lake root.
pub const SCRATCH_DIR: &str = "engine-runs";

impl Scratch {
    /// A new folder for one run (named by the time and a random part: runs at once
    /// never share one).
    pub fn new(lake: &Lake) -> Scratch {
        let rel = format!(
            "{SCRATCH_DIR}/{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ"),
            crate::lake::writer_token()
        );
        Scratch {
            store: lake.store().clone(),
            parent: lake.path(SCRATCH_DIR),
            dir: lake.path(&rel),
            base: lake.file_url(&rel),
            rel,
        }
    }

    /// How DataFusion addresses the run table `table`.
    pub fn url(&self, table: &str) -> String {
        format!("{}/{table}.parquet", self.base)
    }

    /// The folder, relative to the lake root (for messages).
    pub fn rel(&self) -> &str {
        &self.rel
    }

    /// Writes `batches` as the run table `table` (replacing any earlier rows).
    pub async fn write(
        &self,
        table: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(), ClusterError> {
        use datafusion::parquet::arrow::ArrowWriter;
        let fail = |why: String| ClusterError::Scratch {
            table: table.to_owned(),
            location: format!("{}/{table}.parquet", self.rel),
            why,
        };
        let mut buf = Vec::new();
        let mut w =
            ArrowWriter::try_new(&mut buf, schema, None).map_err(|e| fail(e.to_string()))?;
        for b in batches {
            w.write(b).map_err(|e| fail(e.to_string()))?;
        }
        w.close().map_err(|e| fail(e.to_string()))?;
        self.store
            .put(
                &self.dir.clone().join(format!("{table}.parquet")),
                buf.into(),
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(())
    }

    /// Writes `batches` as the run table `table` and registers it in `ctx`.
    pub async fn register(
        &self,
        ctx: &SessionContext,
        table: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<(), EngineError> {
        self.write(table, schema.clone(), batches).await?;
        register_parquet(ctx, table, &[self.url(table)], schema)?;
        Ok(())
    }

    /// Registers, empty, every canonical and input table `ctx` does not have (the
    /// cluster's [`super::session::register_empty`]).
    pub async fn register_empty(&self, ctx: &SessionContext) -> Result<(), EngineError> {
        for (name, schema) in all_tables() {
            let known = ctx
                .table_exist(name.as_str())
                .map_err(|e| EngineError::DataFusion {
                    what: "look up tables".into(),
                    source: e,
                })?;
            if !known {
                self.register(ctx, &name, schema, &[]).await?;
            }
        }
        Ok(())
    }

    /// Removes the scratch folders of other runs older than `older_than` (by the time
    /// in their name): what runs killed mid-way left. Returns how many were removed.
    pub async fn sweep(&self, older_than: chrono::Duration) -> Result<usize, ClusterError> {
        let fail = |why: String| ClusterError::Cleanup {
            location: SCRATCH_DIR.into(),
            why,
        };
        let listing = self
            .store
            .list_with_delimiter(Some(&self.parent))
            .await
            .map_err(|e| fail(e.to_string()))?;
        let now = chrono::Utc::now();
        let mut removed = 0;
        for folder in listing.common_prefixes {
            let made = folder
                .filename()
                .and_then(|n| n.split('-').next())
                .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%S%.6fZ").ok())
                .map(|t| t.and_utc());
            // A folder whose name is not a run's is not ours to remove.
            if made.is_some_and(|made| now - made >= older_than) && folder != self.dir {
                remove_all(&self.store, &folder)
                    .await
                    .map_err(|e| fail(e.to_string()))?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Removes the folder and everything in it.
    pub async fn remove(&self) -> Result<(), ClusterError> {
        remove_all(&self.store, &self.dir)
            .await
            .map_err(|e| ClusterError::Cleanup {
                location: self.rel.clone(),
                why: e.to_string(),
            })?;
        // A local lake (addressed by its path) keeps the emptied folder itself.
        if std::path::Path::new(&self.base).is_absolute() {
            let _ = std::fs::remove_dir(&self.base);
        }
        Ok(())
    }
}

/// Deletes every object under `dir`.
async fn remove_all(
    store: &Arc<dyn datafusion::object_store::ObjectStore>,
    dir: &datafusion::object_store::path::Path,
) -> Result<(), datafusion::object_store::Error> {
    use futures::TryStreamExt;
    let files: Vec<_> = store
        .list(Some(dir))
        .map_ok(|m| m.location)
        .try_collect()
        .await?;
    for f in files {
        match store.delete(&f).await {
            Ok(()) | Err(datafusion::object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A session on the cluster never plans on files' recorded sort order (Ballista's
    /// shuffle does not keep it: sort-merge joins then missed matches), whatever the
    /// local sessions do.
    #[test]
    fn cluster_sessions_plan_without_file_order() {
        let local = super::super::session::session_config();
        assert!(local.options().execution.collect_statistics);
        let cluster = Cluster::new(ClusterAddress::parse("df://127.0.0.1:50050").unwrap());
        let ctx = cluster
            .context(local, Arc::new(RuntimeEnv::default()))
            .unwrap();
        assert!(!ctx.state().config_options().execution.collect_statistics);
    }

    /// A run's tables are written into its own folder and removed with it; folders of
    /// runs older than the sweep's age are removed, a recent one and folders not named
    /// like a run are kept.
    #[tokio::test]
    async fn scratch_folders_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let lake_dir = dir.path().join("lake");
        let config = crate::config::LakeConfig::from_url(lake_dir.to_str().unwrap()).unwrap();
        let lake = Lake::open(&config).unwrap();
        let runs = lake_dir.join(SCRATCH_DIR);
        for old in ["20200101T000000.000000Z-0000abcd", "not-a-run"] {
            std::fs::create_dir_all(runs.join(old)).unwrap();
            std::fs::write(runs.join(old).join("members.parquet"), b"x").unwrap();
        }
        let other = Scratch::new(&lake);
        let scratch = Scratch::new(&lake);
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::empty());
        other.write("members", schema.clone(), &[]).await.unwrap();
        scratch.write("members", schema, &[]).await.unwrap();
        assert!(lake_dir
            .join(scratch.rel())
            .join("members.parquet")
            .is_file());

        assert_eq!(scratch.sweep(chrono::Duration::days(1)).await.unwrap(), 1);
        let left = |d: &str| runs.join(d).join("members.parquet").is_file();
        assert!(
            !left("20200101T000000.000000Z-0000abcd"),
            "a killed run's folder"
        );
        assert!(left("not-a-run"));
        assert!(lake_dir.join(other.rel()).join("members.parquet").is_file());

        scratch.remove().await.unwrap();
        assert!(!lake_dir.join(scratch.rel()).exists());
    }
}
