//! The departments' deliveries into the lake (SPEC §9): snapshot pulls of `files` and
//! `http` sources ([`pull`]), the staging of `files` sources on object-store prefixes
//! ([`stage`]) and, at check time, the lookups of lookup-mode sources for a batch's
//! members ([`lookup`]); all of a deployment's sources at once ([`all`]). Each delivery
//! becomes a snapshot committed atomically.

pub mod all;
pub mod lookup;
pub mod pull;
pub mod stage;

use hedui_connectors::ConnectorError;

use crate::lake::LakeError;

/// Why a delivery could not be taken into the lake.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The source as configured cannot be read (a prefix without objects, a URL of
    /// an unsupported kind): the user's to fix.
    #[error("{0}")]
    Unusable(String),
    /// The department (its HTTPS interface, its object store, its files) failed or
    /// delivered nothing usable.
    #[error(transparent)]
    Source(#[from] ConnectorError),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] LakeError),
    /// The pull had not ended when the night's time for pulls ran out (`[schedule]
    /// pulls_within_minutes`): what it wrote so far is kept for the next pull.
    #[error("未在规定时间内完成（{minutes} 分钟）：上一份快照仍然有效，已写入的记录保留，下次拉取从那里继续 — the pull did not end within {minutes} minutes; the previous snapshot stays current")]
    OutOfTime {
        /// the time allowed
        minutes: u64,
    },
    /// The local staging folder cannot be written.
    #[error("cannot write {path}: {source}")]
    Disk {
        /// the folder or file
        path: String,
        /// the cause
        source: std::io::Error,
    },
}
