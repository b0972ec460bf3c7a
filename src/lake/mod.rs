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
//! A snapshot's files are written first under a fresh `snapshot_id`, each file name
//! carrying its writer's own token (two writers of one snapshot never share a name, so
//! no file of a committed snapshot is ever rewritten); nothing reads them until a
//! manifest naming them exists. The manifest of commit `seq` is written at
//! `manifests/{seq:020}.json`, where `seq` is the sequence the ingest started from plus
//! one: of two concurrent writers that started from the same state, at most one commits
//! (in practice exactly one: they retry after a random pause); the other gets
//! [`LakeError::Conflict`] and commits nothing. The current snapshot of a source is its
//! highest `seq`; the snapshot in force at a past time is the highest `seq` committed at
//! or before it, and `committed_at` grows with `seq` (it is the store's clock, moved
//! past the previous commit's when that clock went back, and the manifest says so).
//!
//! # The commit protocol, and the storage guarantees it relies on
//! 1. The writer puts a claim object of its own, `claims/{seq}/{snapshot_id}-{token}`.
//! 2. It lists `claims/{seq}/`. Any other claim younger than [`CLAIM_LEASE`] (by the
//!    store's clock: the listing's last-modified times, compared with its own claim's)
//!    means a rival: it withdraws and tries again later. Of two writers, the one that
//!    lists second sees the first one's claim, so they cannot both go on.
//! 3. It checks that manifest `seq` does not exist, writes it (put-if-absent where the
//!    store honours it), reads it back and compares the snapshot id, then withdraws its
//!    claim. A late claimant finds the manifest in step 3 (or a newer current sequence
//!    before step 1).
//!
//! This needs no shared lock and no shared `[state]` folder (several hosts, NFS), and
//! no conditional puts (Garage 2.5 ignores `If-None-Match: *`). It relies on: a listing
//! shows every write completed before it (local folders; S3 and Garage are strongly
//! consistent for this), a manifest is one PUT visible entirely or not at all, and a
//! writer that passed step 2 reaches step 3's write within half the lease (it gives up
//! otherwise; a claim older than the lease is taken as left by a writer that died).

pub mod checkpoint;
pub mod rows;
pub mod table;
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
    /// A read-only command pointed at a place that holds no lake (a mistyped path, an
    /// empty prefix): never created, never read as "every source missing".
    #[error("no lake at {url}: {why}")]
    NotFound {
        /// The lake URL.
        url: String,
        /// What was found instead.
        why: String,
    },
    /// Settings that would weaken the lake's transport security (plain HTTP to a host
    /// that is not loopback).
    #[error("lake {url}: {why}")]
    Refused {
        /// The lake URL.
        url: String,
        /// Why.
        why: String,
    },
    /// A snapshot file that cannot be read as the canonical table it should hold.
    #[error("lake {url}: file {path} is unreadable: {why}")]
    BadFile {
        /// The lake URL.
        url: String,
        /// The file, relative to the lake root.
        path: String,
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
    /// Set when `committed_at` had to be moved past the previous commit's (the store's
    /// clock went back): what was found and what was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clock_note: Option<String>,
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
    /// Whether the store honours put-if-absent (used as a second guard where it does).
    put_if_absent: bool,
}

/// How long a commit claim holds: a claim older than this (by the store's clock) is
/// taken as left by a writer that died, and a writer that could not finish its commit
/// within half of it gives up.
pub const CLAIM_LEASE: std::time::Duration = std::time::Duration::from_secs(60);

/// Claim rounds a commit tries before giving up as a conflict.
const CLAIM_ATTEMPTS: u32 = 8;

/// Why a claimed commit did not happen.
enum Claimed {
    /// Another live claim on the same sequence: withdraw and try again.
    Rivals,
    /// Anything else (a conflict found, a store failure).
    Failed(LakeError),
}

impl From<LakeError> for Claimed {
    fn from(e: LakeError) -> Self {
        Claimed::Failed(e)
    }
}

/// A mark unique to one writer (process id and a random part), for names that two
/// writers must never share.
pub fn writer_token() -> String {
    use std::hash::BuildHasher;
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    format!("{:08x}{:08x}", std::process::id(), random as u32)
}

/// An S3 store for `bucket` with the deployment's `[lake.s3]` settings. From the
/// environment come credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
/// `AWS_SESSION_TOKEN`) and, where the config names none, the endpoint and region
/// (`AWS_ENDPOINT`, `AWS_REGION`) — never a setting that weakens transport security:
/// `AWS_ALLOW_INVALID_CERTIFICATES` is ignored, and plain HTTP is allowed only to a
/// loopback endpoint (by the config's `allow_http`, or `AWS_ALLOW_HTTP=true` when the
/// endpoint also comes from the environment).
pub fn s3_store(
    bucket: &str,
    opts: &crate::config::S3Options,
) -> Result<object_store::aws::AmazonS3, datafusion::object_store::Error> {
    use object_store::aws::AmazonS3ConfigKey as Key;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let mut b = AmazonS3Builder::new().with_bucket_name(bucket);
    for (var, key) in [
        ("AWS_ACCESS_KEY_ID", Key::AccessKeyId),
        ("AWS_SECRET_ACCESS_KEY", Key::SecretAccessKey),
        ("AWS_SESSION_TOKEN", Key::Token),
    ] {
        if let Some(v) = env(var) {
            b = b.with_config(key, v);
        }
    }
    let (endpoint, from_env) = match &opts.endpoint {
        Some(ep) => (Some(ep.clone()), false),
        None => (
            env("AWS_ENDPOINT").or_else(|| env("AWS_ENDPOINT_URL")),
            true,
        ),
    };
    if let Some(r) = opts
        .region
        .clone()
        .or_else(|| env("AWS_REGION"))
        .or_else(|| env("AWS_DEFAULT_REGION"))
    {
        b = b.with_region(r);
    }
    let allow_http = if from_env {
        env("AWS_ALLOW_HTTP").is_some_and(|v| v.eq_ignore_ascii_case("true"))
    } else {
        opts.allow_http
    };
    if let Some(ep) = &endpoint {
        let plain = ep.trim().to_ascii_lowercase().starts_with("http://");
        if plain && !(allow_http && crate::config::is_loopback_url(ep)) {
            return Err(datafusion::object_store::Error::NotSupported {
                source: format!(
                    "plain HTTP to {ep} is refused: lake data travels over HTTPS unless the endpoint is a loopback address and plain HTTP is allowed for it"
                )
                .into(),
            });
        }
        b = b.with_endpoint(ep).with_allow_http(plain);
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
    /// Opens an existing lake for reading: a lake is a place where `hedui ingest` has
    /// written (it holds `sources/`). Nothing is created; a place without a lake is
    /// [`LakeError::NotFound`].
    pub async fn open_existing(config: &LakeConfig) -> Result<Lake, LakeError> {
        let missing = |why: &str| LakeError::NotFound {
            url: config.url.clone(),
            why: why.to_owned(),
        };
        if let LakeLocation::Local(dir) = &config.location {
            if !dir.is_dir() {
                return Err(missing(&format!(
                    "the folder {} does not exist (is the path right?)",
                    dir.display()
                )));
            }
        }
        let lake = Lake::open(config)?;
        let listing = match lake.store.list_with_delimiter(Some(&lake.root)).await {
            Ok(l) => l,
            Err(datafusion::object_store::Error::NotFound { .. }) => {
                return Err(missing("the bucket or prefix does not exist"))
            }
            Err(e) => return Err(lake.store_err("list the lake root".into())(e)),
        };
        let ingested = listing
            .common_prefixes
            .iter()
            .any(|p| p.filename() == Some("sources"));
        if !ingested {
            return Err(missing(
                "nothing has been ingested there (no sources/ folder); check the path, or run hedui ingest first",
            ));
        }
        Ok(lake)
    }

    /// Opens the lake of a deployment for writing (a local folder is created if missing).
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
                })
            }
            LakeLocation::S3 { bucket, prefix } => {
                let store = s3_store(bucket, &config.s3).map_err(|source| match source {
                    datafusion::object_store::Error::NotSupported { source } => {
                        LakeError::Refused {
                            url: config.url.clone(),
                            why: source.to_string(),
                        }
                    }
                    source => LakeError::Store {
                        url: config.url.clone(),
                        op: "open".into(),
                        source,
                    },
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
                })
            }
        }
    }

    /// Whether the store answers (one listing of the root).
    pub async fn ping(&self) -> Result<(), LakeError> {
        self.store
            .list_with_delimiter(Some(&self.root))
            .await
            .map(|_| ())
            .map_err(self.store_err("list the lake root".into()))
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
    /// writer took that place: two writers started from one state never both commit,
    /// whether or not the store honours put-if-absent and whatever folders they run from.
    ///
    /// The protocol (see the module's storage guarantees): write a claim object of one's
    /// own under `claims/{seq}/`, list that folder, and go on only if no other live
    /// claim is there; check that manifest `seq` does not exist yet, write it, read it
    /// back; withdraw the claim. Of two writers, the one that lists second always sees
    /// the first one's claim. `committed_at` is the store's clock (the claim's
    /// last-modified time), never the committing host's, and never earlier than the
    /// previous commit's.
    pub async fn commit(
        &self,
        mut manifest: Manifest,
        base_seq: u64,
    ) -> Result<Manifest, LakeError> {
        let source = manifest.source.clone();
        let seq = base_seq + 1;
        let claims = self.path(&format!("sources/{source}/claims/{seq:020}"));
        let mut attempt = 0;
        loop {
            if self.current_seq(&source).await? != base_seq {
                return Err(self.conflict(&source, seq));
            }
            let mine = claims
                .clone()
                .join(format!("{}-{}", manifest.snapshot_id, writer_token()));
            let started = std::time::Instant::now();
            self.store
                .put(
                    &mine,
                    PutPayload::from(manifest.snapshot_id.clone().into_bytes()),
                )
                .await
                .map_err(self.store_err(format!("write claim {mine}")))?;
            let outcome = self
                .commit_claimed(&mut manifest, seq, &claims, &mine, started)
                .await;
            // Withdrawn whatever happened: after a commit, the manifest itself stops
            // later claimants (they find it before writing theirs).
            if let Err(e) = self.store.delete(&mine).await {
                tracing::warn!(source = %source, "cannot withdraw commit claim {mine}: {e}");
            }
            match outcome {
                Ok(()) => return Ok(manifest),
                // Claims met: each side withdraws and tries again after a random pause,
                // so that one of them commits (or finds the other's commit).
                Err(Claimed::Rivals) if attempt + 1 < CLAIM_ATTEMPTS => {
                    attempt += 1;
                    use std::hash::BuildHasher;
                    let jitter = std::collections::hash_map::RandomState::new()
                        .hash_one(std::time::Instant::now())
                        % 200;
                    tokio::time::sleep(std::time::Duration::from_millis(20 + jitter)).await;
                }
                Err(Claimed::Rivals) => return Err(self.conflict(&source, seq)),
                Err(Claimed::Failed(e)) => return Err(e),
            }
        }
    }

    fn conflict(&self, source: &str, seq: u64) -> LakeError {
        LakeError::Conflict {
            url: self.url.clone(),
            source_name: source.to_owned(),
            seq,
        }
    }

    async fn commit_claimed(
        &self,
        manifest: &mut Manifest,
        seq: u64,
        claims: &StorePath,
        mine: &StorePath,
        started: std::time::Instant,
    ) -> Result<(), Claimed> {
        let source = manifest.source.clone();
        let listing = self
            .store
            .list_with_delimiter(Some(claims))
            .await
            .map_err(self.store_err(format!("list {claims}")))?;
        let Some(own) = listing.objects.iter().find(|o| o.location == *mine) else {
            return Err(Claimed::Failed(LakeError::Unsupported {
                url: self.url.clone(),
                why: format!("the store does not list {mine} just written: commits need a store whose listings show completed writes"),
            }));
        };
        // The store's own clock, the same for every writer.
        let store_now = own.last_modified;
        let lease = chrono::Duration::from_std(CLAIM_LEASE).unwrap_or(chrono::Duration::MAX);
        let rivals = listing
            .objects
            .iter()
            .filter(|o| o.location != *mine && o.last_modified + lease > store_now)
            .count();
        if rivals > 0 {
            return Err(Claimed::Rivals);
        }
        if started.elapsed() > CLAIM_LEASE / 2 {
            return Err(Claimed::Failed(self.conflict(&source, seq)));
        }
        let path = self.path(&format!(
            "sources/{source}/manifests/{}",
            manifest_name(seq)
        ));
        match self.store.head(&path).await {
            Ok(_) => return Err(Claimed::Failed(self.conflict(&source, seq))),
            Err(datafusion::object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.store_err(format!("read {path}"))(e).into()),
        }
        // Microseconds, as stored: a re-read manifest compares equal to the one returned.
        let mut at =
            DateTime::from_timestamp_micros(store_now.timestamp_micros()).unwrap_or(store_now);
        if seq > 1 {
            let prev_path = self.path(&format!(
                "sources/{source}/manifests/{}",
                manifest_name(seq - 1)
            ));
            let prev = self.read_manifest(&prev_path).await?;
            if at <= prev.committed_at {
                let clamped = prev.committed_at + chrono::Duration::microseconds(1);
                manifest.clock_note = Some(format!(
                    "the store's clock gave {} for this commit, not after commit {} ({}): committed_at set to {} so that commit times grow with the sequence",
                    at.to_rfc3339(),
                    seq - 1,
                    prev.committed_at.to_rfc3339(),
                    clamped.to_rfc3339()
                ));
                tracing::warn!(source = %source, seq, "commit time clamped: {:?}", manifest.clock_note);
                at = clamped;
            }
        }
        manifest.seq = seq;
        manifest.committed_at = at;
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
            Ok(_) => {}
            Err(datafusion::object_store::Error::AlreadyExists { .. }) => {
                return Err(Claimed::Failed(self.conflict(&source, seq)))
            }
            Err(e) => return Err(self.store_err(format!("commit {path}"))(e).into()),
        }
        // Read back: a writer outside this protocol may have written the same name.
        let back = self.read_manifest(&path).await?;
        if back.snapshot_id != manifest.snapshot_id {
            return Err(Claimed::Failed(self.conflict(&source, seq)));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::object_store::{
        CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
        PutMultipartOptions, PutResult,
    };
    use futures::stream::BoxStream;

    /// A store that ignores put-if-absent and overwrites, as Garage 2.5 does with
    /// `If-None-Match: *`.
    #[derive(Debug)]
    struct IgnoresConditions(LocalFileSystem);

    impl std::fmt::Display for IgnoresConditions {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "IgnoresConditions({})", self.0)
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for IgnoresConditions {
        async fn put_opts(
            &self,
            location: &StorePath,
            payload: PutPayload,
            mut opts: PutOptions,
        ) -> datafusion::object_store::Result<PutResult> {
            opts.mode = PutMode::Overwrite;
            self.0.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &StorePath,
            opts: PutMultipartOptions,
        ) -> datafusion::object_store::Result<Box<dyn MultipartUpload>> {
            self.0.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &StorePath,
            options: GetOptions,
        ) -> datafusion::object_store::Result<GetResult> {
            self.0.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, datafusion::object_store::Result<StorePath>>,
        ) -> BoxStream<'static, datafusion::object_store::Result<StorePath>> {
            self.0.delete_stream(locations)
        }
        fn list(
            &self,
            prefix: Option<&StorePath>,
        ) -> BoxStream<'static, datafusion::object_store::Result<ObjectMeta>> {
            self.0.list(prefix)
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&StorePath>,
        ) -> datafusion::object_store::Result<ListResult> {
            self.0.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &StorePath,
            to: &StorePath,
            options: CopyOptions,
        ) -> datafusion::object_store::Result<()> {
            self.0.copy_opts(from, to, options).await
        }
    }

    /// Writers of one lake on a store without conditional puts, each its own process
    /// (no shared lock, no shared [state] folder).
    fn unconditional(dir: &std::path::Path) -> Lake {
        Lake {
            url: "s3://unconditional".into(),
            store: Arc::new(IgnoresConditions(
                LocalFileSystem::new_with_prefix(dir).unwrap(),
            )),
            root: StorePath::default(),
            table_base: dir.display().to_string(),
            store_url: None,
            put_if_absent: false,
        }
    }

    /// On a store that overwrites instead of refusing, writers started from one state
    /// never both commit, round after round, and the manifest that stands is the one its
    /// writer was told was committed.
    #[tokio::test]
    async fn commits_hold_on_a_store_without_conditional_puts() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (unconditional(dir.path()), unconditional(dir.path()));
        for round in 0..12u64 {
            let (x, y) = tokio::join!(
                a.commit(manifest("hr", &format!("a{round}")), round),
                b.commit(manifest("hr", &format!("b{round}")), round)
            );
            assert!(
                x.is_ok() != y.is_ok(),
                "round {round}: exactly one commits ({:?} / {:?})",
                x.as_ref().map(|m| m.seq),
                y.as_ref().map(|m| m.seq)
            );
            let won = x.or(y).unwrap();
            let current = a.snapshot_at("hr", None).await.unwrap().unwrap();
            assert_eq!(
                (current.seq, &current.snapshot_id),
                (round + 1, &won.snapshot_id)
            );
        }
        // No claim is left behind.
        let claims = dir.path().join("sources/hr/claims");
        let left: usize = std::fs::read_dir(&claims)
            .unwrap()
            .map(|d| std::fs::read_dir(d.unwrap().path()).unwrap().count())
            .sum();
        assert_eq!(left, 0);
    }

    /// Commit times grow with the sequence whatever the clocks did: a previous commit
    /// stamped a day ahead makes the next one's committed_at follow it, and says so.
    #[tokio::test]
    async fn commit_times_grow_with_the_sequence() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path());
        let first = lake.commit(manifest("hr", "a"), 0).await.unwrap();
        assert!(first.clock_note.is_none());
        // A manifest written by a host whose clock ran a day ahead.
        let mut skewed = first.clone();
        skewed.committed_at = first.committed_at + chrono::Duration::days(1);
        std::fs::write(
            dir.path()
                .join(format!("sources/hr/manifests/{}", manifest_name(1))),
            serde_json::to_vec(&skewed).unwrap(),
        )
        .unwrap();
        let second = lake.commit(manifest("hr", "b"), 1).await.unwrap();
        assert_eq!(
            second.committed_at,
            skewed.committed_at + chrono::Duration::microseconds(1)
        );
        assert!(second
            .clock_note
            .as_deref()
            .unwrap()
            .contains("so that commit times grow"));
        let back = lake.snapshot_at("hr", None).await.unwrap().unwrap();
        assert_eq!(
            (back.seq, back.committed_at, back.clock_note),
            (2, second.committed_at, second.clock_note)
        );
    }

    /// A department's or a store's error text is kept with every ID number masked.
    #[tokio::test]
    async fn recorded_failures_mask_id_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let lake = lake(dir.path());
        lake.record_failure(
            "hr",
            "cannot pull hr_income: HTTP 500: no record for 11010519491231002X after cursor 110105194912310021",
        )
        .await
        .unwrap();
        let f = lake.last_failure("hr").await.unwrap().unwrap();
        assert_eq!(
            f.error,
            "cannot pull hr_income: HTTP 500: no record for 110105********002X after cursor 110105********0021"
        );
        let on_disk = std::fs::read_dir(dir.path().join("sources/hr/failures"))
            .unwrap()
            .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
            .collect::<String>();
        assert!(!on_disk.contains("19491231"), "{on_disk}");
    }

    /// Reading never creates a lake: a mistyped folder, or one nothing was ingested
    /// into, is NotFound; the folder is not made.
    #[tokio::test]
    async fn reading_never_creates_a_lake() {
        let dir = tempfile::tempdir().unwrap();
        let typo = dir.path().join("lak");
        let cfg = |p: &std::path::Path| LakeConfig {
            url: p.display().to_string(),
            location: LakeLocation::Local(p.to_owned()),
            s3: Default::default(),
        };
        let e = Lake::open_existing(&cfg(&typo)).await.unwrap_err();
        assert!(matches!(e, LakeError::NotFound { .. }), "{e}");
        assert!(e.to_string().contains("does not exist"), "{e}");
        assert!(!typo.exists());
        let e = Lake::open_existing(&cfg(dir.path())).await.unwrap_err();
        assert!(e.to_string().contains("nothing has been ingested"), "{e}");
        lake(dir.path())
            .commit(manifest("hr", "a"), 0)
            .await
            .unwrap();
        assert!(Lake::open_existing(&cfg(dir.path())).await.is_ok());
    }

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
            clock_note: None,
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
        // The commit time comes from the store's clock (file times, coarser than ours).
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let between = Utc::now();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
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
