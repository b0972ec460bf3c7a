//! What a committed snapshot is: its manifest (tables, files, times, mode), the record
//! of a failed pull, and the names of snapshots and manifests.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::error::LakeError;

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

/// The manifest format this build writes, and the newest it reads:
/// - 1: manifests of releases before formats were kept (no `format` field);
/// - 2: the same fields, with `format`.
///
/// A change to what a manifest means ships as a new number; this build keeps reading
/// every older one, and refuses a newer one in words rather than misread it.
pub const FORMAT: u32 = 2;

fn format_one() -> u32 {
    1
}

/// The one field read before the rest: a newer format may not parse as this one.
#[derive(Deserialize)]
struct Head {
    #[serde(default = "format_one")]
    format: u32,
}

/// A committed snapshot of one source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format ([`FORMAT`] when written by this build; 1 when absent).
    #[serde(default = "format_one")]
    pub format: u32,
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
    /// Reads the manifest `bytes` of object `path` in lake `url`: any format up to
    /// [`FORMAT`]; a newer one is [`LakeError::NewerFormat`].
    pub fn parse(bytes: &[u8], url: &str, path: &str) -> Result<Manifest, LakeError> {
        let bad = |e: serde_json::Error| LakeError::BadManifest {
            url: url.to_owned(),
            path: path.to_owned(),
            why: e.to_string(),
        };
        let head: Head = serde_json::from_slice(bytes).map_err(bad)?;
        if head.format == 0 {
            return Err(LakeError::BadManifest {
                url: url.to_owned(),
                path: path.to_owned(),
                why: "format 0 is no manifest format (they begin at 1)".into(),
            });
        }
        if head.format > FORMAT {
            return Err(LakeError::NewerFormat {
                url: url.to_owned(),
                path: path.to_owned(),
                found: head.format,
                known: FORMAT,
            });
        }
        let m: Manifest = serde_json::from_slice(bytes).map_err(bad)?;
        m.check_files().map_err(|why| LakeError::BadManifest {
            url: url.to_owned(),
            path: path.to_owned(),
            why,
        })?;
        Ok(m)
    }

    /// Every file it names lies in its own source's folder of the lake: relative, no
    /// `..`, `.` or empty segment (a manifest that named `../../etc/x` would make a backup
    /// write, and a check read, outside the lake).
    pub fn check_files(&self) -> Result<(), String> {
        let own = format!("sources/{}/", self.source);
        let files = self
            .tables
            .iter()
            .flat_map(|t| t.files.iter().chain(t.problems_file.iter()))
            .chain(self.queried_file.iter());
        for f in files {
            let inside = f.starts_with(&own)
                && f.split('/')
                    .all(|seg| !seg.is_empty() && seg != "." && seg != ".." && !seg.contains('\\'));
            if !inside || self.source.is_empty() || self.source.contains('/') {
                return Err(format!(
                    "it names the file {f:?}, which is not inside its source's folder {own}"
                ));
            }
        }
        Ok(())
    }

    /// Whether the snapshot is stale on `d`: pulled more than `freshness_days` days
    /// before it, days counted on the calendar of `zone` (the deployment's local time,
    /// as D is): a pull at 01:00 Beijing time belongs to that day, not to the UTC day
    /// before.
    pub fn stale_on<Z: chrono::TimeZone>(&self, d: chrono::NaiveDate, zone: &Z) -> bool {
        self.age_on(d, zone) > i64::from(self.freshness_days)
    }

    /// Days from the pull to `d`, on the calendar of `zone`.
    pub fn age_on<Z: chrono::TimeZone>(&self, d: chrono::NaiveDate, zone: &Z) -> i64 {
        (d - self.pulled_at.with_timezone(zone).date_naive()).num_days()
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

/// The object name of manifest `seq`.
pub(super) fn manifest_name(seq: u64) -> String {
    format!("{seq:020}.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pulled(at: &str, freshness_days: u32) -> Manifest {
        Manifest {
            pulled_at: DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc),
            freshness_days,
            ..crate::lake::tests::manifest("hr", "x")
        }
    }

    /// Freshness counts local calendar days: a pull at 01:00 Beijing time (17:00 UTC the
    /// day before) is of that Beijing day; stale one day past `freshness_days`, not at it.
    #[test]
    fn freshness_counts_local_days() {
        let beijing = chrono::FixedOffset::east_opt(8 * 3600).unwrap();
        let m = pulled("2026-11-01T17:00:00Z", 35);
        let d = |s: &str| chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        // 2026-11-02 (Beijing) + 35 days = 2026-12-07: still fresh; the day after, stale.
        assert!(!m.stale_on(d("2026-12-07"), &beijing));
        assert!(m.stale_on(d("2026-12-08"), &beijing));
        // Counted on the UTC calendar it would already be stale on 12-07.
        assert!(m.stale_on(d("2026-12-07"), &Utc));
    }
}
