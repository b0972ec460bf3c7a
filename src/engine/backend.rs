//! The engine of a process: the DataFusion runtime its runs share (the memory pool of
//! `--memory-limit`, the Parquet metadata cache) and the cluster its queries run on, if
//! any. One per process (the server answers many checks), a session per run.

use std::sync::Arc;

use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::prelude::SessionContext;

use crate::config::cluster::ClusterAddress;
use crate::lake::Lake;

use super::cluster::{Cluster, Scratch};
use super::error::EngineError;
use super::memory;
use super::session::{new_context_in, session_config};

/// Where and within what memory a process's runs execute.
#[derive(Debug)]
pub struct Engine {
    runtime: Arc<RuntimeEnv>,
    cluster: Option<Cluster>,
}

impl Engine {
    /// An engine whose operators share `memory_limit` bytes (half the machine when
    /// `None`, see [`memory`]); with `cluster`, the pipelines run on its executors, and
    /// its scheduler must answer now.
    pub async fn open(
        memory_limit: Option<u64>,
        cluster: Option<&ClusterAddress>,
    ) -> Result<Engine, EngineError> {
        let cluster = cluster.cloned().map(Cluster::new);
        if let Some(c) = &cluster {
            c.reachable().await?;
        }
        let runtime = memory::runtime(memory_limit);
        match runtime.memory_pool.memory_limit() {
            datafusion::execution::memory_pool::MemoryLimit::Finite(n) => {
                tracing::debug!("engine memory pool: {n} bytes, spilling beyond")
            }
            _ => tracing::debug!("engine memory pool: unbounded"),
        }
        Ok(Engine { runtime, cluster })
    }

    /// The runtime the runs share.
    pub fn runtime(&self) -> Arc<RuntimeEnv> {
        self.runtime.clone()
    }

    /// The cluster the pipelines run on (`None`: this process).
    pub fn cluster(&self) -> Option<&Cluster> {
        self.cluster.as_ref()
    }

    /// A DataFusion session for one run, in the shared runtime (the Parquet metadata
    /// read by earlier runs is not read again); with a cluster, a session whose
    /// queries its executors run.
    pub fn context(&self) -> Result<SessionContext, EngineError> {
        Ok(match &self.cluster {
            None => new_context_in(self.runtime.clone()),
            Some(c) => c.context(session_config(), self.runtime.clone())?,
        })
    }

    /// A scratch folder in `lake` for one run on the cluster (`None` when the
    /// pipelines run in this process).
    pub fn scratch(&self, lake: &Lake) -> Option<Scratch> {
        self.cluster.as_ref().map(|_| Scratch::new(lake))
    }
}
