//! The lake's errors; [`LakeError::Conflict`] is the typed answer a losing writer gets,
//! which each caller interprets.

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
    /// A manifest written by a newer hedui, in a format this one does not know.
    #[error("lake {url}: manifest {path} has format {found}; this hedui reads formats up to {known}: it was written by a newer hedui — run that one, or a newer one")]
    NewerFormat {
        /// The lake URL.
        url: String,
        /// The object.
        path: String,
        /// Its format.
        found: u32,
        /// The newest this build reads.
        known: u32,
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
