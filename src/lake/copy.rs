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
    /// Imports: the objects written, manifests last (for [`Lake::remove_objects`] when
    /// what follows the import fails).
    pub written: Vec<String>,
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
        // The copy holds every household's records: its folders and files are the
        // owner's alone, whatever the umask.
        let write = |rel: &str, body: &[u8]| -> Result<(), LakeError> {
            let file = to.join(rel);
            let fail = |e: std::io::Error| LakeError::Write {
                url: to.display().to_string(),
                what: rel.to_owned(),
                why: e.to_string(),
            };
            if let Some(dir) = file.parent() {
                let mut mk = std::fs::DirBuilder::new();
                mk.recursive(true);
                #[cfg(unix)]
                std::os::unix::fs::DirBuilderExt::mode(&mut mk, 0o700);
                mk.create(dir).map_err(fail)?;
            }
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&file).map_err(fail)?;
            std::io::Write::write_all(&mut f, body).map_err(fail)?;
            f.sync_all().map_err(fail)
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
    /// commit yet: each snapshot's files, then its manifest, source by source. Every
    /// manifest is read and every file it names found before anything is written; a
    /// write that fails removes what this import wrote, so a failed restore leaves the
    /// lake as empty as it was.
    pub async fn import_from(&self, from: &Path) -> Result<Copied, LakeError> {
        let plan = plan_import(from)?;
        let mut written = Vec::new();
        match self.write_plan(from, &plan, &mut written).await {
            Ok(mut done) => {
                done.written = written;
                Ok(done)
            }
            Err(e) => {
                self.remove_objects(&written).await;
                Err(e)
            }
        }
    }

    /// Removes objects `rels` (relative to the lake root), the last first — manifests
    /// before the files they name. Best effort: what cannot be removed stays.
    pub async fn remove_objects(&self, rels: &[String]) {
        for rel in rels.iter().rev() {
            let _ = self.store().delete(&self.path(rel)).await;
        }
    }

    async fn write_plan(
        &self,
        from: &Path,
        plan: &[Planned],
        written: &mut Vec<String>,
    ) -> Result<Copied, LakeError> {
        let mut done = Copied::default();
        for p in plan {
            for rel in &p.files {
                let body = read_file(from, rel)?;
                done.bytes += body.len() as u64;
                self.put_bytes(rel, body).await?;
                written.push(rel.clone());
                done.files += 1;
            }
            for rel in &p.manifests {
                self.put_bytes(rel, read_file(from, rel)?).await?;
                written.push(rel.clone());
                done.manifests += 1;
            }
            if let Some(seq) = p.newest {
                done.sources.push((p.source.clone(), seq));
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

/// One source of a folder to import: its files (failure records, then each snapshot's),
/// then its manifests, by sequence.
struct Planned {
    source: String,
    files: Vec<String>,
    manifests: Vec<String>,
    newest: Option<u64>,
}

fn read_file(from: &Path, rel: &str) -> Result<Vec<u8>, LakeError> {
    std::fs::read(from.join(rel)).map_err(|e| LakeError::BadFile {
        url: from.display().to_string(),
        path: rel.to_owned(),
        why: e.to_string(),
    })
}

/// The names in folder `dir`, sorted (none when it is not there).
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What importing `from` writes, every manifest read and every file it names found.
fn plan_import(from: &Path) -> Result<Vec<Planned>, LakeError> {
    let url = from.display().to_string();
    let mut plan = Vec::new();
    for source in names_in(&from.join("sources")) {
        let mut manifests = Vec::new();
        for name in names_in(&from.join(format!("sources/{source}/manifests"))) {
            let Some(seq) = name
                .strip_suffix(".json")
                .and_then(|s| s.parse::<u64>().ok())
            else {
                continue;
            };
            let rel = format!("sources/{source}/manifests/{name}");
            let m = Manifest::parse(&read_file(from, &rel)?, &url, &rel)?;
            if m.source != source {
                return Err(LakeError::BadManifest {
                    url: url.clone(),
                    path: rel,
                    why: format!("it is a manifest of source {:?}", m.source),
                });
            }
            manifests.push((seq, rel, m));
        }
        manifests.sort_by_key(|(seq, ..)| *seq);
        let failures = format!("sources/{source}/failures");
        let mut files: Vec<String> = names_in(&from.join(&failures))
            .into_iter()
            .map(|n| format!("{failures}/{n}"))
            .collect();
        files.extend(manifests.iter().flat_map(|(_, _, m)| named(m)));
        for rel in &files {
            if !from.join(rel).is_file() {
                return Err(LakeError::BadFile {
                    url: url.clone(),
                    path: rel.clone(),
                    why: "the backup does not hold it (incomplete or damaged backup); nothing was restored".into(),
                });
            }
        }
        plan.push(Planned {
            newest: manifests.last().map(|(seq, ..)| *seq),
            manifests: manifests.into_iter().map(|(_, rel, _)| rel).collect(),
            files,
            source,
        });
    }
    Ok(plan)
}
