//! Lookup-mode sources (SPEC §9): at check time the department is asked only for the
//! members of the batch's accepted households, with each household's authorization, and
//! its answer is kept in the lake as a per-run snapshot naming the people asked for, so
//! the decision can be re-read later (`--snapshot-at`) on the data it was made on.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{NaiveDate, Utc};
use hedui_connectors::http::LookupGroup;
use hedui_connectors::{schema, HttpConnector, LoadOptions};

use crate::applicants::Household;
use crate::config::SourceConfig;
use crate::lake::write::TableWriter;
use crate::lake::{snapshot_id, Lake, LakeError, Manifest, SnapshotMode};
use crate::progress::Progress;

use super::IngestError;

/// How many times a lookup snapshot's commit is retried when another commit of the same
/// source got in first (lookup snapshots of different checks do not replace each other).
const COMMIT_TRIES: u32 = 8;

/// The batch's members grouped by authorization, each group sorted and without repeats.
pub fn groups(households: &[Household]) -> Vec<LookupGroup> {
    let mut by_auth: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for h in households {
        by_auth
            .entry(h.authorization_id.as_str())
            .or_default()
            .extend(h.members.iter().map(|m| m.id_number.as_str()));
    }
    by_auth
        .into_iter()
        .map(|(auth, ids)| LookupGroup {
            authorization_id: auth.to_owned(),
            id_numbers: ids.into_iter().map(str::to_owned).collect(),
        })
        .collect()
}

/// Asks `source` for the batch's members and commits the answer as a lookup snapshot.
pub async fn pull(
    lake: &Lake,
    source: &SourceConfig,
    households: &[Household],
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<Manifest, IngestError> {
    let name = source.name.as_str();
    let connector = HttpConnector::new(source.http())?;
    let groups = groups(households);
    let people: usize = groups.iter().map(|g| g.id_numbers.len()).sum();
    let pulled_at = Utc::now();
    let snapshot_id = snapshot_id(pulled_at, "-lookup");
    let opts = LoadOptions {
        reference_date: as_of,
    };
    let mut tables = Vec::new();
    for t in &source.tables {
        let Some(schema) = schema::table(t) else {
            continue;
        };
        let loaded = connector.lookup(schema, opts, &groups).await?;
        let mut w = TableWriter::new(lake, name, &snapshot_id, schema);
        w.push(loaded.batches).await?;
        w.push_problems(loaded.problems);
        let entry = w.finish().await?;
        progress.step(&format!(
            "{name}/{t}: lookup of {people} people in {} requests: {} records, {} malformed",
            loaded.files.len(),
            entry.rows,
            entry.problems
        ));
        tables.push(entry);
    }
    let queried: BTreeSet<&str> = groups
        .iter()
        .flat_map(|g| g.id_numbers.iter().map(String::as_str))
        .collect();
    let queried_file = format!("sources/{name}/snapshots/{snapshot_id}/queried.json");
    lake.put_json(&queried_file, &queried).await?;
    let manifest = Manifest {
        format: crate::lake::manifest::FORMAT,
        source: name.to_owned(),
        seq: 0,
        snapshot_id,
        pulled_at,
        committed_at: pulled_at,
        tables,
        freshness_days: source.freshness_days,
        mode: SnapshotMode::Lookup,
        queried_file: Some(queried_file),
        clock_note: None,
    };
    let mut tries = 0;
    loop {
        let base = lake.current_seq(name).await?;
        match lake.commit(manifest.clone(), base).await {
            Err(LakeError::Conflict { .. }) if tries + 1 < COMMIT_TRIES => tries += 1,
            other => return Ok(other?),
        }
    }
}
