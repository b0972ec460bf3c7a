//! The engine's errors: DataFusion refusing a table or query (a defect, or the memory
//! limit reached), and the cluster backend that cannot be used.

use datafusion::error::DataFusionError;

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
    /// The cluster backend cannot be used (see [`ClusterError`]).
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl EngineError {
    /// Whether the engine stopped at its memory limit (`--memory-limit`): the user's to
    /// raise, or the batch to split.
    pub fn out_of_memory(&self) -> bool {
        match self {
            EngineError::DataFusion { source, .. } => {
                matches!(source.find_root(), DataFusionError::ResourcesExhausted(_))
            }
            EngineError::Cluster(_) => false,
        }
    }
}

pub(super) fn df(what: impl Into<String>) -> impl FnOnce(DataFusionError) -> EngineError {
    let what = what.into();
    move |source| EngineError::DataFusion { what, source }
}

/// Why the cluster cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The scheduler does not answer.
    #[error("cannot reach the Ballista scheduler at {url}: {why}")]
    Unreachable {
        /// the engine URL
        url: String,
        /// the cause
        why: String,
    },
    /// The session cannot be set up.
    #[error("cannot open a session on the Ballista scheduler at {url}: {source}")]
    Session {
        /// the engine URL
        url: String,
        /// the cause
        source: datafusion::error::DataFusionError,
    },
    /// A table of the run cannot be written where the executors read it.
    #[error("cannot write the run table {table} to {location} for the cluster's executors: {why}")]
    Scratch {
        /// the table
        table: String,
        /// where
        location: String,
        /// the cause
        why: String,
    },
    /// The run's scratch folder cannot be removed.
    #[error("cannot remove the run's scratch folder {location} from the lake: {why}")]
    Cleanup {
        /// where
        location: String,
        /// the cause
        why: String,
    },
}
