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
pub mod commit;
pub mod copy;
pub mod error;
pub mod housekeeping;
pub mod manifest;
pub mod rows;
pub mod snapshots;
pub mod store;
pub mod table;
pub mod write;

#[cfg(test)]
mod tests;

pub use commit::CLAIM_LEASE;
pub use error::LakeError;
pub(crate) use manifest::rfc3339;
pub use manifest::{snapshot_id, Failure, Manifest, SnapshotMode, TableEntry};
pub use store::{s3_store, writer_token, Lake};
