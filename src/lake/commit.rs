//! The commit protocol (see the lake's opening text for the guarantees it relies on): a
//! claim of one's own, a listing that finds no live rival, the manifest written and read
//! back, the claim withdrawn.

use chrono::DateTime;
use datafusion::object_store::path::Path as StorePath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use super::error::LakeError;
use super::manifest::{manifest_name, Manifest};
use super::store::{writer_token, Lake};

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

impl Lake {
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
