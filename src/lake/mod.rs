//! The lake (SPEC §9): per source, immutable snapshots of canonical Parquet with their
//! malformed records beside them, made visible by committing a manifest.
//!
//! Layout under the lake root:
//!
//! ```text
//! sources/{source}/snapshots/{snapshot_id}/{table}/part-*.parquet   canonical records
//! sources/{source}/snapshots/{snapshot_id}/{table}/problems.jsonl    malformed records
//! sources/{source}/manifests/{seq:020}.json                          one per commit
//! ```
//!
//! A snapshot's files are written first under a fresh `snapshot_id`; nothing reads them
//! until a manifest naming them exists. The manifest of commit `seq` is written with
//! put-if-absent at `manifests/{seq:020}.json`, where `seq` is the sequence the ingest
//! started from plus one: of two concurrent ingests of one source that started from the
//! same state, exactly one can create that object; the other gets [`LakeError::Conflict`]
//! and commits nothing. The current snapshot of a source is its highest `seq`; the
//! snapshot in force at a past time is the highest `seq` committed at or before it.

pub mod write;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use serde::{Deserialize, Serialize};

use crate::config::{LakeConfig, LakeLocation};

/// Failures of the lake.
#[derive(Debug, thiserror::Error)]
pub enum LakeError {
    /// The store refused or failed an operation.
    #[error("lake {url}: {op}: {source}")]
    Store {
        /// The lake URL.
        url: String,
        /// What was being done.
        op: String,
        /// The store's error.
        source: datafusion::object_store::Error,
    },
    /// Another ingest of the same source committed first.
    #[error("lake {url}: source {source_name} changed while this ingest ran (commit {seq} exists already); nothing was committed")]
    Conflict {
        /// The lake URL.
        url: String,
        /// The source.
        source_name: String,
        /// The sequence number taken.
        seq: u64,
    },
    /// A manifest that cannot be read.
    #[error("lake {url}: manifest {path} is unreadable: {why}")]
    BadManifest {
        /// The lake URL.
        url: String,
        /// The object.
        path: String,
        /// Why.
        why: String,
    },
    /// A file of the lake that cannot be written (or its folder created).
    #[error("lake {url}: cannot write {what}: {why}")]
    Write {
        /// The lake URL.
        url: String,
        /// The file or folder.
        what: String,
        /// Why.
        why: String,
    },
    /// A lake location this build cannot open yet.
    #[error("lake {url}: {why}")]
    Unsupported {
        /// The lake URL.
        url: String,
        /// Why.
        why: String,
    },
}

/// One table of a committed snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableEntry {
    /// Canonical table.
    pub table: String,
    /// Parquet files, relative to the lake root.
    pub files: Vec<String>,
    /// Valid records.
    pub rows: u64,
    /// Malformed records.
    pub problems: u64,
    /// The malformed records (JSON Lines), relative to the lake root.
    pub problems_file: Option<String>,
}

/// A committed snapshot of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Source name (`hr`, `police` …).
    pub source: String,
    /// Commit sequence number, from 1.
    pub seq: u64,
    /// The snapshot's folder name.
    pub snapshot_id: String,
    /// When the data was pulled from the department.
    #[serde(with = "rfc3339")]
    pub pulled_at: DateTime<Utc>,
    /// When the manifest was committed.
    #[serde(with = "rfc3339")]
    pub committed_at: DateTime<Utc>,
    /// The tables of the snapshot.
    pub tables: Vec<TableEntry>,
    /// The source's `freshness_days` when it was ingested: checks on a date more than
    /// this many days after `pulled_at` treat the snapshot as stale.
    pub freshness_days: u32,
    /// A full pull (`snapshot`) or one check's lookup (`lookup`).
    #[serde(default)]
    pub mode: SnapshotMode,
    /// Lookup snapshots: the ID numbers asked for (a JSON array, relative to the lake
    /// root). The snapshot answers for these people only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queried_file: Option<String>,
}

/// How a snapshot was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotMode {
    /// A full pull by `hedui ingest`.
    #[default]
    Snapshot,
    /// The answer to one check's lookup: only the people asked for.
    Lookup,
}

impl Manifest {
    /// Whether the snapshot is stale on `d` (SPEC §9).
    pub fn stale_on(&self, d: chrono::NaiveDate) -> bool {
        (d - self.pulled_at.date_naive()).num_days() > i64::from(self.freshness_days)
    }
}

/// A failed pull of a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// Source name.
    pub source: String,
    /// When the pull failed.
    #[serde(with = "rfc3339")]
    pub at: DateTime<Utc>,
    /// The error, in words (never a token or a full ID number).
    pub error: String,
}

/// Timestamps in manifests: RFC 3339 with microseconds, UTC.
mod rfc3339 {
    use chrono::{DateTime, SecondsFormat, Utc};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let text = String::deserialize(d)?;
        DateTime::parse_from_rfc3339(&text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(serde::de::Error::custom)
    }
}

/// An open lake.
#[derive(Debug, Clone)]
pub struct Lake {
    url: String,
    store: Arc<dyn ObjectStore>,
    root: StorePath,
    /// How DataFusion addresses the lake root: an absolute local path, or a URL of a
    /// store registered in the session.
    table_base: String,
}

fn manifest_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

impl Lake {
    /// Opens the lake of a deployment (a local folder is created if missing).
    pub fn open(config: &LakeConfig) -> Result<Lake, LakeError> {
        match &config.location {
            LakeLocation::Local(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| LakeError::Write {
                    url: config.url.clone(),
                    what: dir.display().to_string(),
                    why: e.to_string(),
                })?;
                let dir = std::fs::canonicalize(dir).map_err(|e| LakeError::Write {
                    url: config.url.clone(),
                    what: dir.display().to_string(),
                    why: e.to_string(),
                })?;
                let store =
                    LocalFileSystem::new_with_prefix(&dir).map_err(|source| LakeError::Store {
                        url: config.url.clone(),
                        op: "open".into(),
                        source,
                    })?;
                Ok(Lake {
                    url: config.url.clone(),
                    store: Arc::new(store),
                    root: StorePath::default(),
                    table_base: dir.display().to_string(),
                })
            }
            LakeLocation::S3 { .. } => Err(LakeError::Unsupported {
                url: config.url.clone(),
                why: "s3:// lakes are not available in this build yet".into(),
            }),
        }
    }

    /// The lake's URL as configured.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// How DataFusion addresses the lake file `rel`.
    pub fn file_url(&self, rel: &str) -> String {
        format!("{}/{}", self.table_base, rel.trim_start_matches('/'))
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    /// The path of `rel` (a `/`-separated path relative to the lake root).
    pub fn path(&self, rel: &str) -> StorePath {
        rel.split('/')
            .filter(|p| !p.is_empty())
            .fold(self.root.clone(), |p, part| p.join(part))
    }

    fn store_err(&self, op: String) -> impl FnOnce(datafusion::object_store::Error) -> LakeError {
        let url = self.url.clone();
        move |source| LakeError::Store { url, op, source }
    }

    /// Every committed manifest of `source`, by sequence.
    pub async fn manifests(&self, source: &str) -> Result<Vec<Manifest>, LakeError> {
        let dir = self.path(&format!("sources/{source}/manifests"));
        let listing = self
            .store
            .list_with_delimiter(Some(&dir))
            .await
            .map_err(self.store_err(format!("list {dir}")))?;
        let mut out = Vec::new();
        for meta in listing.objects {
            let name = meta.location.filename().unwrap_or_default();
            if !name.ends_with(".json") || name.starts_with('.') {
                continue;
            }
            let bytes = self
                .store
                .get(&meta.location)
                .await
                .map_err(self.store_err(format!("read {}", meta.location)))?
                .bytes()
                .await
                .map_err(self.store_err(format!("read {}", meta.location)))?;
            let m: Manifest =
                serde_json::from_slice(&bytes).map_err(|e| LakeError::BadManifest {
                    url: self.url.clone(),
                    path: meta.location.to_string(),
                    why: e.to_string(),
                })?;
            out.push(m);
        }
        out.sort_by_key(|m| m.seq);
        Ok(out)
    }

    /// The snapshot of `source` in force at `at` (the latest committed at or before it),
    /// or the current one when `at` is `None`.
    pub async fn snapshot_at(
        &self,
        source: &str,
        at: Option<DateTime<Utc>>,
    ) -> Result<Option<Manifest>, LakeError> {
        let all = self.manifests(source).await?;
        Ok(all
            .into_iter()
            .rev()
            .find(|m| at.is_none_or(|t| m.committed_at <= t)))
    }

    /// Records that a pull of `source` failed (SPEC §9: "the failure is recorded"). The
    /// record sits beside the manifests and never changes what readers see.
    pub async fn record_failure(&self, source: &str, error: &str) -> Result<(), LakeError> {
        let at = Utc::now();
        let failure = Failure {
            source: source.to_owned(),
            at,
            error: error.to_owned(),
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

    /// The current commit sequence of `source` (0 when it has none).
    pub async fn current_seq(&self, source: &str) -> Result<u64, LakeError> {
        Ok(self.manifests(source).await?.last().map_or(0, |m| m.seq))
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

    /// Writes a small JSON object of the lake (not visible until a manifest names it).
    pub async fn put_json(&self, rel: &str, value: &impl Serialize) -> Result<(), LakeError> {
        let body = serde_json::to_vec(value).map_err(|e| LakeError::Write {
            url: self.url.clone(),
            what: rel.to_owned(),
            why: e.to_string(),
        })?;
        self.store
            .put(&self.path(rel), PutPayload::from(body))
            .await
            .map_err(self.store_err(format!("write {rel}")))?;
        Ok(())
    }

    /// Commits `manifest` as the next snapshot of its source after `base_seq` (the
    /// sequence the ingest started from). Fails with [`LakeError::Conflict`] when another
    /// commit took that place: two ingests started from one state cannot both commit.
    pub async fn commit(
        &self,
        mut manifest: Manifest,
        base_seq: u64,
    ) -> Result<Manifest, LakeError> {
        manifest.seq = base_seq + 1;
        // Microseconds, as stored: a re-read manifest compares equal to the one returned.
        let now = Utc::now();
        manifest.committed_at =
            DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
        let path = self.path(&format!(
            "sources/{}/manifests/{}",
            manifest.source,
            manifest_name(manifest.seq)
        ));
        let body = serde_json::to_vec_pretty(&manifest).map_err(|e| LakeError::BadManifest {
            url: self.url.clone(),
            path: path.to_string(),
            why: e.to_string(),
        })?;
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .store
            .put_opts(&path, PutPayload::from(body), opts)
            .await
        {
            Ok(_) => Ok(manifest),
            Err(datafusion::object_store::Error::AlreadyExists { .. }) => {
                Err(LakeError::Conflict {
                    url: self.url.clone(),
                    source_name: manifest.source.clone(),
                    seq: manifest.seq,
                })
            }
            Err(e) => Err(self.store_err(format!("commit {path}"))(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lake(dir: &std::path::Path) -> Lake {
        let cfg = LakeConfig {
            url: dir.display().to_string(),
            location: LakeLocation::Local(dir.to_owned()),
            s3: Default::default(),
        };
        Lake::open(&cfg).unwrap()
    }

    fn manifest(source: &str, id: &str) -> Manifest {
        Manifest {
            source: source.into(),
            seq: 0,
            snapshot_id: id.into(),
            pulled_at: Utc::now(),
            committed_at: Utc::now(),
            tables: vec![TableEntry {
                table: "hr_income".into(),
                files: vec![format!(
                    "sources/{source}/snapshots/{id}/hr_income/part-0.parquet"
                )],
                rows: 10,
                problems: 1,
                problems_file: None,
            }],
            freshness_days: 35,
            mode: SnapshotMode::Snapshot,
            queried_file: None,
        }
    }

    #[tokio::test]
    async fn commits_are_sequenced_and_exclusive() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path());
        assert_eq!(lake.current_seq("hr").await.unwrap(), 0);
        assert!(lake.snapshot_at("hr", None).await.unwrap().is_none());
        let first = lake.commit(manifest("hr", "a"), 0).await.unwrap();
        assert_eq!(first.seq, 1);
        // Two ingests that both started from commit 1: only one commits.
        let (x, y) = tokio::join!(
            lake.commit(manifest("hr", "b"), 1),
            lake.commit(manifest("hr", "c"), 1)
        );
        assert!(x.is_ok() != y.is_ok(), "exactly one must commit");
        let err = x.err().or(y.err()).unwrap();
        assert!(matches!(err, LakeError::Conflict { seq: 2, .. }), "{err}");
        assert!(err.to_string().contains("nothing was committed"));
        let current = lake.snapshot_at("hr", None).await.unwrap().unwrap();
        assert_eq!(current.seq, 2);
        assert!(current.snapshot_id == "b" || current.snapshot_id == "c");
        // Other sources are independent.
        assert_eq!(lake.current_seq("tax").await.unwrap(), 0);
    }

    #[tokio::test]
    async fn time_travel_reads_the_snapshot_in_force() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path());
        let first = lake.commit(manifest("hr", "a"), 0).await.unwrap();
        let between = Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        let second = lake.commit(manifest("hr", "b"), 1).await.unwrap();
        assert_eq!(
            lake.snapshot_at("hr", Some(between))
                .await
                .unwrap()
                .unwrap()
                .snapshot_id,
            "a"
        );
        assert_eq!(
            lake.snapshot_at("hr", Some(second.committed_at))
                .await
                .unwrap()
                .unwrap()
                .snapshot_id,
            "b"
        );
        let before = first.committed_at - chrono::Duration::seconds(1);
        assert!(lake
            .snapshot_at("hr", Some(before))
            .await
            .unwrap()
            .is_none());
    }
}
