//! `files` sources on object-store prefixes (SPEC §9, `url = "s3://incoming/housing/"`):
//! the prefix's objects, in the §2 layout, are copied into a local staging folder that the
//! files connector reads like any source folder, and removed when the pull is done.

use std::path::{Path, PathBuf};

use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt};

use hedui_connectors::ConnectorError;

use crate::config::S3Options;
use crate::lake::s3_store;

use super::IngestError;

/// A staged copy of an object-store prefix; the folder is removed when dropped.
#[derive(Debug)]
pub struct Staged {
    dir: PathBuf,
}

impl Staged {
    /// The local folder holding the copy.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        // Best effort: a leftover staging folder holds a copy of department files only.
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Copies the objects under `url` (`s3://bucket/prefix/`) into a fresh folder under
/// `staging_root`.
pub async fn stage(url: &str, s3: &S3Options, staging_root: &Path) -> Result<Staged, IngestError> {
    let fail =
        |why: String| IngestError::Unusable(format!("cannot read files source {url}: {why}"));
    // The department's store failing is not bad input: exit status 1.
    let store_fail = |e: datafusion::object_store::Error| {
        IngestError::Source(ConnectorError::Store {
            url: url.to_owned(),
            message: e.to_string(),
        })
    };
    let disk_fail = |path: &Path, source: std::io::Error| IngestError::Disk {
        path: path.display().to_string(),
        source,
    };
    let rest = url
        .strip_prefix("s3://")
        .ok_or_else(|| fail("only s3:// object-store prefixes are supported".into()))?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    let store = s3_store(bucket, s3).map_err(store_fail)?;
    let prefix = StorePath::parse(prefix.trim_matches('/')).map_err(|e| fail(e.to_string()))?;
    let dir = staging_root.join(format!(
        "stage-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| disk_fail(&dir, e))?;
    let staged = Staged { dir };
    let objects = store_list(&store, &prefix).await.map_err(store_fail)?;
    if objects.is_empty() {
        return Err(fail("no objects under this prefix".into()));
    }
    for location in objects {
        let Some(rel) = location.prefix_match(&prefix) else {
            continue;
        };
        let rel: Vec<String> = rel.map(|p| p.as_ref().to_owned()).collect();
        if rel.is_empty() || rel.iter().any(|p| p.starts_with('.') || p == "..") {
            continue;
        }
        let target = rel.iter().fold(staged.dir.clone(), |d, p| d.join(p));
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|e| disk_fail(parent, e))?;
        }
        let bytes = store
            .get(&location)
            .await
            .map_err(store_fail)?
            .bytes()
            .await
            .map_err(store_fail)?;
        std::fs::write(&target, &bytes).map_err(|e| fail(format!("{}: {e}", target.display())))?;
    }
    Ok(staged)
}

/// Every object under `prefix`.
async fn store_list(
    store: &dyn ObjectStore,
    prefix: &StorePath,
) -> Result<Vec<StorePath>, datafusion::object_store::Error> {
    // Two levels suffice for the §2 layout: TABLE.ext files and TABLE/ folders of files.
    let mut out = Vec::new();
    let top = store.list_with_delimiter(Some(prefix)).await?;
    out.extend(top.objects.into_iter().map(|m| m.location));
    for dir in top.common_prefixes {
        let inner = store.list_with_delimiter(Some(&dir)).await?;
        out.extend(inner.objects.into_iter().map(|m| m.location));
    }
    Ok(out)
}
