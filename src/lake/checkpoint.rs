//! Where an unfinished pull stands, so the next ingest goes on from there instead of from
//! the first page (SPEC §9: an interrupted snapshot pull resumes from its last cursor).
//! Kept beside the manifests, rewritten after every part a pull writes, removed when the
//! snapshot is committed; never read by checks.

use chrono::{DateTime, Utc};
use datafusion::object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::error::LakeError;
use super::manifest::TableEntry;
use super::store::Lake;
use super::write::Written;

/// A pull of one source that has not been committed yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Source name.
    pub source: String,
    /// The snapshot folder being written.
    pub snapshot_id: String,
    /// The commit the pull started from: if the source has moved on, the pull is stale.
    pub base_seq: u64,
    /// When the pull began (the snapshot's `pulled_at`).
    #[serde(with = "super::rfc3339")]
    pub pulled_at: DateTime<Utc>,
    /// The source's settings the pull was made with (URL, tables, mappings).
    pub fingerprint: String,
    /// Tables finished.
    pub done: Vec<TableEntry>,
    /// The table in progress.
    pub current: Option<InProgress>,
}

/// The table a pull was in the middle of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgress {
    /// Canonical table.
    pub table: String,
    /// Where the department's stream goes on (an HTTP cursor).
    pub position: String,
    /// What is durably written up to there.
    pub written: Written,
    /// Pages read up to there.
    pub pages: u64,
}

impl Lake {
    fn checkpoint_rel(source: &str) -> String {
        format!("sources/{source}/pull-in-progress.json")
    }

    /// Records where the pull of `c.source` stands.
    pub async fn save_checkpoint(&self, c: &Checkpoint) -> Result<(), LakeError> {
        self.put_json(&Self::checkpoint_rel(&c.source), c).await
    }

    /// The unfinished pull of `source`, if any (an unreadable record counts as none).
    pub async fn load_checkpoint(&self, source: &str) -> Result<Option<Checkpoint>, LakeError> {
        let rel = Self::checkpoint_rel(source);
        match self.store.get(&self.path(&rel)).await {
            Ok(r) => {
                let bytes = r
                    .bytes()
                    .await
                    .map_err(self.store_err(format!("read {rel}")))?;
                Ok(serde_json::from_slice(&bytes).ok())
            }
            Err(datafusion::object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.store_err(format!("read {rel}"))(e)),
        }
    }

    /// Forgets the unfinished pull of `source` (after its commit).
    pub async fn clear_checkpoint(&self, source: &str) -> Result<(), LakeError> {
        let rel = Self::checkpoint_rel(source);
        match self.store.delete(&self.path(&rel)).await {
            Ok(()) | Err(datafusion::object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.store_err(format!("delete {rel}"))(e)),
        }
    }
}
