//! Copying a lake's committed snapshots out to a local folder (a backup) and into an
//! empty lake (a restore). Only what the manifests name is copied — each snapshot's
//! files, then its manifest — so the copy holds every commit the listing found when it
//! began, and no unfinished pull or withdrawn claim. Snapshot files never change once
//! committed, so they can be copied while ingests run; manifests are copied last (out)
//! and written last (in), so a copy cut short never names a file it does not hold.

use std::path::Path;

use datafusion::object_store::{ObjectStoreExt, PutPayload};

use super::error::LakeError;
use super::manifest::Manifest;
use super::store::Lake;

/// What a copy moved.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Per source, its newest sequence copied.
    pub sources: Vec<(String, u64)>,
    /// Manifests copied.
    pub manifests: usize,
    /// Files (snapshot parts, problems, lookups' lists, failure records) copied.
    pub files: usize,
    /// Their bytes.
    pub bytes: u64,
}

/// The files a manifest names, relative to the lake root.
fn named(m: &Manifest) -> Vec<String> {
    let mut out: Vec<String> = m
        .tables
        .iter()
        .flat_map(|t| t.files.iter().chain(t.problems_file.iter()).cloned())
        .collect();
    out.extend(m.queried_file.iter().cloned());
    out
}

impl Lake {
    /// The sources the lake holds (`sources/{name}/`).
    async fn source_names(&self) -> Result<Vec<String>, LakeError> {
        let dir = self.path("sources");
        let listing = match self.store().list_with_delimiter(Some(&dir)).await {
            Ok(l) => l,
            Err(datafusion::object_store::Error::NotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(self.store_err(format!("list {dir}"))(e)),
        };
        let mut names: Vec<String> = listing
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_owned))
            .collect();
        names.sort();
        Ok(names)
    }

    /// Whether any source has a committed snapshot.
    pub async fn has_commits(&self) -> Result<bool, LakeError> {
        for s in self.source_names().await? {
            if !self.manifest_names(&s).await?.is_empty() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn get_bytes(&self, rel: &str) -> Result<bytes::Bytes, LakeError> {
        let path = self.path(rel);
        self.store()
            .get(&path)
            .await
            .map_err(self.store_err(format!("read {rel}")))?
            .bytes()
            .await
            .map_err(self.store_err(format!("read {rel}")))
    }

    /// Copies every committed snapshot and failure record into the local folder `to`
    /// (as `sources/…`, the lake's own layout).
    pub async fn export_to(&self, to: &Path) -> Result<Copied, LakeError> {
        let mut done = Copied::default();
        let write = |rel: &str, body: &[u8]| -> Result<(), LakeError> {
            let file = to.join(rel);
            let fail = |e: std::io::Error| LakeError::Write {
                url: to.display().to_string(),
                what: rel.to_owned(),
                why: e.to_string(),
            };
            if let Some(dir) = file.parent() {
                std::fs::create_dir_all(dir).map_err(fail)?;
            }
            std::fs::write(&file, body).map_err(fail)
        };
        for source in self.source_names().await? {
            let names = self.manifest_names(&source).await?;
            let mut manifests = Vec::new();
            for (seq, location) in names {
                let m = self.read_manifest(&location).await?;
                for rel in named(&m) {
                    let body = self.get_bytes(&rel).await?;
                    write(&rel, &body)?;
                    done.files += 1;
                    done.bytes += body.len() as u64;
                }
                manifests.push((seq, m));
            }
            let failures = self.path(&format!("sources/{source}/failures"));
            if let Ok(listing) = self.store().list_with_delimiter(Some(&failures)).await {
                for o in listing.objects {
                    let Some(name) = o.location.filename() else {
                        continue;
                    };
                    let rel = format!("sources/{source}/failures/{name}");
                    let body = self.get_bytes(&rel).await?;
                    write(&rel, &body)?;
                    done.files += 1;
                    done.bytes += body.len() as u64;
                }
            }
            for (seq, _) in &manifests {
                let rel = format!("sources/{source}/manifests/{seq:020}.json");
                let body = self.get_bytes(&rel).await?;
                write(&rel, &body)?;
                done.manifests += 1;
            }
            if let Some((seq, _)) = manifests.last() {
                done.sources.push((source, *seq));
            }
        }
        Ok(done)
    }

    /// Copies a folder made by [`Lake::export_to`] into this lake, which must hold no
    /// commit yet: each snapshot's files, then its manifest, source by source.
    pub async fn import_from(&self, from: &Path) -> Result<Copied, LakeError> {
        let mut done = Copied::default();
        let read = |rel: &str| -> Result<Vec<u8>, LakeError> {
            std::fs::read(from.join(rel)).map_err(|e| LakeError::BadFile {
                url: from.display().to_string(),
                path: rel.to_owned(),
                why: e.to_string(),
            })
        };
        let list = |dir: &Path| -> Vec<String> {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect();
            names.sort();
            names
        };
        for source in list(&from.join("sources")) {
            let mut manifests = Vec::new();
            for name in list(&from.join(format!("sources/{source}/manifests"))) {
                let Some(seq) = name
                    .strip_suffix(".json")
                    .and_then(|s| s.parse::<u64>().ok())
                else {
                    continue;
                };
                let rel = format!("sources/{source}/manifests/{name}");
                let body = read(&rel)?;
                let m = Manifest::parse(&body, &from.display().to_string(), &rel)?;
                manifests.push((seq, rel, body, m));
            }
            manifests.sort_by_key(|(seq, ..)| *seq);
            let failures = format!("sources/{source}/failures");
            let mut rels: Vec<String> = list(&from.join(&failures))
                .into_iter()
                .map(|n| format!("{failures}/{n}"))
                .collect();
            rels.extend(manifests.iter().flat_map(|(_, _, _, m)| named(m)));
            for rel in rels {
                let body = read(&rel)?;
                done.bytes += body.len() as u64;
                self.put_bytes(&rel, body).await?;
                done.files += 1;
            }
            for (_, rel, body, _) in &manifests {
                self.put_bytes(rel, body.clone()).await?;
                done.manifests += 1;
            }
            if let Some((seq, ..)) = manifests.last() {
                done.sources.push((source, *seq));
            }
        }
        Ok(done)
    }

    async fn put_bytes(&self, rel: &str, body: Vec<u8>) -> Result<(), LakeError> {
        self.store()
            .put(&self.path(rel), PutPayload::from(body))
            .await
            .map_err(self.store_err(format!("write {rel}")))?;
        Ok(())
    }
}
