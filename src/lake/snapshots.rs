//! Reading a source's committed snapshots: its manifests by sequence (from their names
//! alone), the snapshot in force at a time, the current sequence, and whom a lookup
//! snapshot answers for.

use chrono::{DateTime, Utc};
use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt};

use super::error::LakeError;
use super::manifest::Manifest;
use super::store::Lake;

impl Lake {
    /// The committed manifests of `source` as (sequence, object), by sequence — from
    /// their names alone (`{seq:020}.json`), without reading them.
    pub(super) async fn manifest_names(
        &self,
        source: &str,
    ) -> Result<Vec<(u64, StorePath)>, LakeError> {
        let dir = self.path(&format!("sources/{source}/manifests"));
        let listing = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(self.store_err(format!("list {dir}")))?;
        let mut out: Vec<(u64, StorePath)> = listing
            .objects
            .into_iter()
            .filter_map(|meta| {
                let seq = meta
                    .location
                    .filename()?
                    .strip_suffix(".json")?
                    .parse::<u64>()
                    .ok()?;
                Some((seq, meta.location))
            })
            .collect();
        out.sort_by_key(|(seq, _)| *seq);
        Ok(out)
    }

    pub(super) async fn read_manifest(&self, location: &StorePath) -> Result<Manifest, LakeError> {
        let bytes = self
            .store
            .get(location)
            .await
            .map_err(self.store_err(format!("read {location}")))?
            .bytes()
            .await
            .map_err(self.store_err(format!("read {location}")))?;
        Manifest::parse(&bytes, &self.url, location.as_ref())
    }

    /// Every committed manifest of `source`, by sequence.
    pub async fn manifests(&self, source: &str) -> Result<Vec<Manifest>, LakeError> {
        let mut out = Vec::new();
        for (_, location) in self.manifest_names(source).await? {
            out.push(self.read_manifest(&location).await?);
        }
        Ok(out)
    }

    /// The snapshot of `source` in force at `at` (the latest committed at or before it),
    /// or the current one when `at` is `None`. Reads manifests from the newest back, so
    /// the current snapshot costs one read however long the history.
    pub async fn snapshot_at(
        &self,
        source: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<Manifest>, LakeError> {
        for (_, location) in self.manifest_names(source).await?.iter().rev() {
            let m = self.read_manifest(location).await?;
            if at.is_none_or(|t| m.committed_at <= t) {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }

    /// The current commit sequence of `source` (0 when it has none).
    pub async fn current_seq(&self, source: &str) -> Result<u64, LakeError> {
        Ok(self
            .manifest_names(source)
            .await?
            .last()
            .map_or(0, |(seq, _)| *seq))
    }

    /// The ID numbers a lookup snapshot answers for (empty for a full snapshot).
    pub async fn queried(
        &self,
        m: &Manifest,
    ) -> Result<std::collections::HashSet<String>, LakeError> {
        let Some(rel) = &m.queried_file else {
            return Ok(Default::default());
        };
        let path = self.path(rel);
        let bytes = self
            .store
            .get(&path)
            .await
            .map_err(self.store_err(format!("read {rel}")))?
            .bytes()
            .await
            .map_err(self.store_err(format!("read {rel}")))?;
        serde_json::from_slice(&bytes).map_err(|e| LakeError::BadManifest {
            url: self.url.clone(),
            path: rel.clone(),
            why: e.to_string(),
        })
    }
}
