//! The departments' data one check reads: either a plain source folder (SPEC §2, loaded
//! through the `files` connector, [`folder`]) or the lake (SPEC §9, snapshot Parquet read
//! in place, lookups asked for the batch's members, [`lake`]). Both yield the same
//! canonical tables, the same per-table status, and the missing and stale sources; the
//! engine registers what they yield.

pub mod folder;
pub mod lake;
pub mod tables;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use hedui_connectors::FilesConnector;

use crate::applicants::Household;
use crate::config::SourceConfig;
use crate::ingest::lookup;
use crate::lake::{Lake, Manifest};
use crate::progress::Progress;

pub use self::lake::NARROW_TO_MEMBERS_UP_TO;
use self::lake::{narrow_limit, SnapshotCache};
pub use self::tables::{
    SourceInput, SourceRows, SourceTable, Sources, SourcesError, TableStatus, NOT_DELIVERED,
    NO_USABLE_RECORD,
};

/// Opens `input` (before the batch is read). A lake is only read — never created —
/// unless lookup-mode sources will write their answers.
pub async fn open(input: &SourceInput) -> Result<Opened, SourcesError> {
    Ok(match input {
        SourceInput::Folder(dir) => Opened::Folder(FilesConnector::new(dir)?),
        SourceInput::Lake { lake, at, lookups } => Opened::Lake {
            lake: if lookups.is_empty() || at.is_some() {
                Lake::open_existing(lake).await?
            } else {
                Lake::open(lake)?
            },
            at: *at,
            lookups: lookups.clone(),
            cache: Arc::new(SnapshotCache::default()),
        },
    })
}

/// An input that could be opened.
#[derive(Debug)]
pub enum Opened {
    /// A source folder.
    Folder(FilesConnector),
    /// A lake, the time to read it at, and the lookup-mode sources to ask.
    Lake {
        /// The lake.
        lake: Lake,
        /// Read as committed at this time (now when `None`).
        at: Option<DateTime<Utc>>,
        /// Lookup-mode sources.
        lookups: Vec<SourceConfig>,
        /// What successive checks share.
        cache: Arc<SnapshotCache>,
    },
}

impl Opened {
    /// The lake, when the input is one.
    pub fn lake(&self) -> Option<&Lake> {
        match self {
            Opened::Lake { lake, .. } => Some(lake),
            Opened::Folder(..) => None,
        }
    }
}

/// Reads every delivered canonical table (or, on the lake, finds its snapshot files)
/// and reports on them; `households` are the batch's accepted households (lookups ask
/// for their members, and a source folder keeps only their records). With `narrow`, a
/// few households' check on the lake reads only their members' rows (see
/// [`NARROW_TO_MEMBERS_UP_TO`]); without (a cluster's executors read the lake
/// themselves), the snapshot files are handed on whole.
pub async fn read(
    opened: &Opened,
    as_of: NaiveDate,
    households: &[Household],
    narrow: bool,
    progress: &Progress,
) -> Result<Sources, SourcesError> {
    let mut s = match opened {
        Opened::Folder(c) => {
            let members: HashSet<String> = households
                .iter()
                .flat_map(|h| h.members.iter().map(|m| m.id_number.clone()))
                .collect();
            folder::read(c, as_of, Arc::new(members), progress).await?
        }
        Opened::Lake {
            lake,
            at,
            lookups,
            cache,
        } => {
            // Live lookups (not when re-reading the past): the answer, or None when the
            // department failed — the source is then missing for this run.
            let mut pinned: HashMap<&str, Option<Manifest>> = HashMap::new();
            if at.is_none() {
                for src in lookups {
                    let name = src.name.as_str();
                    match lookup::pull(lake, src, households, as_of, progress).await {
                        Ok(m) => {
                            pinned.insert(name, Some(m));
                        }
                        Err(e) => {
                            progress.warn(&format!(
                                "{name}: 按身份证号查询失败，本次核对缺少该部门数据 — lookup failed, the source is missing for this run: {e}"
                            ));
                            tracing::warn!(source = name, "lookup failed: {e}");
                            // Best effort: the run goes on with the source missing.
                            let _ = lake.record_failure(name, &e.to_string()).await;
                            pinned.insert(name, None);
                        }
                    }
                }
            }
            let members: HashSet<&str> = households
                .iter()
                .flat_map(|h| h.members.iter().map(|m| m.id_number.as_str()))
                .collect();
            let narrow_up_to = if narrow { narrow_limit() } else { 0 };
            lake::read(
                lake,
                cache,
                *at,
                &pinned,
                &members,
                narrow_up_to,
                as_of,
                progress,
            )
            .await?
        }
    };
    s.missing.sort();
    s.missing.dedup();
    s.stale.sort();
    s.stale.dedup();
    Ok(s)
}
