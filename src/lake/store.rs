//! An open lake: its object store (a local folder or an S3 bucket), opened for reading
//! or writing, addressed by DataFusion, and small objects written into it.

use std::sync::Arc;

use datafusion::object_store::local::LocalFileSystem;
use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use object_store::aws::AmazonS3Builder;
use serde::Serialize;

use crate::config::{LakeConfig, LakeLocation};

use super::error::LakeError;

/// An open lake.
#[derive(Debug, Clone)]
pub struct Lake {
    pub(super) url: String,
    pub(super) store: Arc<dyn ObjectStore>,
    pub(super) root: StorePath,
    /// How DataFusion addresses the lake root: an absolute local path, or a URL of a
    /// store registered in the session.
    pub(super) table_base: String,
    /// The store URL to register in a DataFusion session (`s3://bucket`), if any.
    pub(super) store_url: Option<String>,
    /// Whether the store honours put-if-absent (used as a second guard where it does).
    pub(super) put_if_absent: bool,
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

    /// The error of a failed store operation `op`.
    pub(super) fn store_err(
        &self,
        op: String,
    ) -> impl FnOnce(datafusion::object_store::Error) -> LakeError {
        let url = self.url.clone();
        move |source| LakeError::Store { url, op, source }
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
}
