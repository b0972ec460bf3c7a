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
//! until a manifest naming them exists. The manifest of commit `seq` is written at
//! `manifests/{seq:020}.json`, where `seq` is the sequence the ingest started from plus
//! one: of two concurrent ingests of one source that started from the same state,
//! exactly one commits; the other gets [`LakeError::Conflict`] and commits nothing. The
//! current snapshot of a source is its highest `seq`; the snapshot in force at a past
//! time is the highest `seq` committed at or before it.
//!
//! # Storage guarantees relied on
//! - Local folders: put-if-absent (`PutMode::Create`, a hard link) is atomic.
//! - S3 with `[lake.s3] put_if_absent = true` (AWS): `If-None-Match: *` is honoured.
//! - Other S3-compatible stores (Garage 2.5 ignores `If-None-Match` and overwrites): a
//!   commit takes an exclusive lock file in the deployment's `[state]` folder, re-reads
//!   the source's current sequence under it, and writes the manifest only if nothing was
//!   committed since the ingest began. Every writer of such a lake must share `[state]`.
//! - Readers list `manifests/` and read whole objects: a manifest is one PUT, visible
//!   entirely or not at all.

pub mod checkpoint;
pub mod write;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};
use object_store::aws::AmazonS3Builder;
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
pub(crate) mod rfc3339 {
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
    /// The store URL to register in a DataFusion session (`s3://bucket`), if any.
    store_url: Option<String>,
    /// Whether the store honours put-if-absent.
    put_if_absent: bool,
    /// The deployment's `[state]` folder, where commit locks live.
    state_dir: Option<std::path::PathBuf>,
}

/// How long a commit waits for another commit of the same source to finish.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

/// An S3 store for `bucket` with the deployment's `[lake.s3]` settings; credentials
/// (and, without a config, the endpoint) from the `AWS_*` variables.
pub fn s3_store(
    bucket: &str,
    opts: &crate::config::S3Options,
) -> Result<object_store::aws::AmazonS3, datafusion::object_store::Error> {
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    if let Some(ep) = &opts.endpoint {
        b = b.with_endpoint(ep);
    }
    if let Some(r) = &opts.region {
        b = b.with_region(r);
    }
    if opts.allow_http {
        b = b.with_allow_http(true);
    }
    b.build()
}

/// A fresh snapshot folder name for data pulled at `pulled_at`: the time and the
/// process, so that concurrent pulls never write into one folder; `suffix` marks the kind
/// (`""` for full pulls, `"-lookup"` for lookups).
pub fn snapshot_id(pulled_at: DateTime<Utc>, suffix: &str) -> String {
    format!(
        "{}-{:08x}{suffix}",
        pulled_at.format("%Y%m%dT%H%M%S%.6fZ"),
        std::process::id()
    )
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
                    store_url: None,
                    put_if_absent: true,
                    state_dir: None,
                })
            }
            LakeLocation::S3 { bucket, prefix } => {
                let store = s3_store(bucket, &config.s3).map_err(|source| LakeError::Store {
                    url: config.url.clone(),
                    op: "open".into(),
                    source,
                })?;
                let root = StorePath::parse(prefix).map_err(|e| LakeError::Unsupported {
                    url: config.url.clone(),
                    why: format!("bad key prefix {prefix:?}: {e}"),
                })?;
                let store_url = format!("s3://{bucket}");
                let table_base = if prefix.is_empty() {
                    store_url.clone()
                } else {
                    format!("{store_url}/{prefix}")
                };
                Ok(Lake {
                    url: config.url.clone(),
                    store: Arc::new(store),
                    root,
                    table_base,
                    store_url: Some(store_url),
                    put_if_absent: config.s3.put_if_absent,
                    state_dir: None,
                })
            }
        }
    }

    /// Commits of this lake take their lock in the deployment's `[state]` folder.
    pub fn with_state(mut self, dir: &std::path::Path) -> Lake {
        self.state_dir = Some(dir.to_owned());
        self
    }

    /// Makes the lake's store known to a DataFusion session (object-store lakes).
    pub fn register_in(&self, ctx: &datafusion::prelude::SessionContext) -> Result<(), LakeError> {
        if let Some(u) = &self.store_url {
            let url =
                datafusion::execution::object_store::ObjectStoreUrl::parse(u).map_err(|e| {
                    LakeError::Unsupported {
                        url: self.url.clone(),
                        why: e.to_string(),
                    }
                })?;
            ctx.register_object_store(url.as_ref(), self.store.clone());
        }
        Ok(())
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

    /// The committed manifests of `source` as (sequence, object), by sequence — from
    /// their names alone (`{seq:020}.json`), without reading them.
    async fn manifest_names(&self, source: &str) -> Result<Vec<(u64, StorePath)>, LakeError> {
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

    async fn read_manifest(&self, location: &StorePath) -> Result<Manifest, LakeError> {
        let bytes = self
            .store
            .get(location)
            .await
            .map_err(self.store_err(format!("read {location}")))?
            .bytes()
            .await
            .map_err(self.store_err(format!("read {location}")))?;
        serde_json::from_slice(&bytes).map_err(|e| LakeError::BadManifest {
            url: self.url.clone(),
            path: location.to_string(),
            why: e.to_string(),
        })
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
        let _lock = self.commit_lock(&manifest.source).await?;
        if _lock.is_some() {
            // Serialised: nobody else commits this source now. Anything committed since
            // the ingest began is a conflict, whatever the store does with conditions.
            let current = self.current_seq(&manifest.source).await?;
            if current != base_seq {
                return Err(LakeError::Conflict {
                    url: self.url.clone(),
                    source_name: manifest.source.clone(),
                    seq: base_seq + 1,
                });
            }
        }
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
            mode: if self.put_if_absent {
                PutMode::Create
            } else {
                PutMode::Overwrite
            },
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

    /// The exclusive lock serialising commits of `source`: taken when the lake has a
    /// `[state]` folder (always required when the store lacks put-if-absent). Released
    /// when dropped, or by the OS when the process dies.
    async fn commit_lock(&self, source: &str) -> Result<Option<std::fs::File>, LakeError> {
        let Some(dir) = &self.state_dir else {
            if self.put_if_absent {
                return Ok(None);
            }
            return Err(LakeError::Unsupported {
                url: self.url.clone(),
                why: "this store does not honour put-if-absent ([lake.s3] put_if_absent = false), so commits are serialised through the deployment's [state] folder, which this command was not given".into(),
            });
        };
        let lock_err = |why: String| LakeError::Write {
            url: self.url.clone(),
            what: format!("commit lock in {}", dir.display()),
            why,
        };
        std::fs::create_dir_all(dir).map_err(|e| lock_err(e.to_string()))?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(format!("lake-commit-{source}.lock")))
            .map_err(|e| lock_err(e.to_string()))?;
        let started = std::time::Instant::now();
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Some(file)),
                Err(std::fs::TryLockError::WouldBlock) if started.elapsed() < LOCK_WAIT => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(lock_err(format!(
                        "another commit of {source} held the lock for more than {} s",
                        LOCK_WAIT.as_secs()
                    )))
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(lock_err(e.to_string())),
            }
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

    /// Folders no manifest names are removed once old enough; named, recent and
    /// unfinished-pull folders stay.
    #[tokio::test]
    async fn orphaned_snapshot_folders_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path());
        let old = Utc::now() - chrono::Duration::days(3);
        let (named, orphan, recent) = (
            snapshot_id(old, ""),
            snapshot_id(old - chrono::Duration::seconds(1), "-lookup"),
            snapshot_id(Utc::now(), ""),
        );
        for id in [&named, &orphan, &recent] {
            let f = dir.path().join(format!(
                "sources/hr/snapshots/{id}/hr_income/part-00000.parquet"
            ));
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, b"x").unwrap();
        }
        lake.commit(manifest("hr", &named), 0).await.unwrap();
        let removed = lake
            .remove_orphans("hr", chrono::Duration::hours(24))
            .await
            .unwrap();
        assert_eq!(removed, 1);
        let left = |id: &str| {
            dir.path()
                .join(format!(
                    "sources/hr/snapshots/{id}/hr_income/part-00000.parquet"
                ))
                .exists()
        };
        assert!(left(&named) && left(&recent) && !left(&orphan));
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
