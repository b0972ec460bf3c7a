//! Housekeeping of the lake: failed pulls recorded beside the manifests, and snapshot
//! folders no manifest names removed once old.

use chrono::Utc;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use super::error::LakeError;
use super::manifest::Failure;
use super::store::Lake;

impl Lake {
    /// Removes snapshot folders of `source` that no manifest names and no unfinished
    /// pull will go on with, once they are older than `older_than` (by the time in their
    /// name): the files an ingest that failed for good, lost a conflict or was killed
    /// left behind. Returns how many folders were removed.
    pub async fn remove_orphans(
        &self,
        source: &str,
        older_than: chrono::Duration,
    ) -> Result<usize, LakeError> {
        use futures::TryStreamExt;
        let mut keep: std::collections::HashSet<String> = self
            .manifests(source)
            .await?
            .into_iter()
            .map(|m| m.snapshot_id)
            .collect();
        if let Some(c) = self.load_checkpoint(source).await? {
            keep.insert(c.snapshot_id);
        }
        let dir = self.path(&format!("sources/{source}/snapshots"));
        let listing = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(self.store_err(format!("list {dir}")))?;
        let now = Utc::now();
        let mut removed = 0;
        for folder in listing.common_prefixes {
            let Some(id) = folder.filename().map(str::to_owned) else {
                continue;
            };
            let made = id
                .split('-')
                .next()
                .and_then(|t| chrono::NaiveDateTime::parse_from_str(t, "%Y%m%dT%H%M%S%.6fZ").ok())
                .map(|t| t.and_utc());
            // A folder whose name is not a snapshot id is not ours to remove.
            let Some(made) = made else { continue };
            if keep.contains(&id) || now - made < older_than {
                continue;
            }
            let objects: Vec<_> = self
                .store
                .list(Some(&folder))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .map_err(self.store_err(format!("list {folder}")))?;
            for o in objects {
                match self.store.delete(&o).await {
                    Ok(()) | Err(datafusion::object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(self.store_err(format!("delete {o}"))(e)),
                }
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Records that a pull of `source` failed (SPEC §9: "the failure is recorded"). The
    /// record sits beside the manifests and never changes what readers see.
    pub async fn record_failure(&self, source: &str, error: &str) -> Result<(), LakeError> {
        let at = Utc::now();
        let failure = Failure {
            source: source.to_owned(),
            at,
            // A department's or a store's error text may quote an ID number.
            error: hedui_connectors::idnum::mask_ids_in(error).into_owned(),
        };
        let rel = format!(
            "sources/{source}/failures/{}-{:08x}.json",
            at.format("%Y%m%dT%H%M%S%.6fZ"),
            std::process::id()
        );
        let body = serde_json::to_vec_pretty(&failure).map_err(|e| LakeError::Write {
            url: self.url.clone(),
            what: rel.clone(),
            why: e.to_string(),
        })?;
        self.store
            .put(&self.path(&rel), PutPayload::from(body))
            .await
            .map_err(self.store_err(format!("write {rel}")))?;
        Ok(())
    }

    /// The last recorded failed pull of `source`.
    pub async fn last_failure(&self, source: &str) -> Result<Option<Failure>, LakeError> {
        let dir = self.path(&format!("sources/{source}/failures"));
        let listing = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(self.store_err(format!("list {dir}")))?;
        let Some(last) = listing
            .objects
            .into_iter()
            .max_by(|a, b| a.location.cmp(&b.location))
        else {
            return Ok(None);
        };
        let bytes = self
            .store
            .get(&last.location)
            .await
            .map_err(self.store_err(format!("read {}", last.location)))?
            .bytes()
            .await
            .map_err(self.store_err(format!("read {}", last.location)))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| LakeError::BadManifest {
                url: self.url.clone(),
                path: last.location.to_string(),
                why: e.to_string(),
            })
    }
}
