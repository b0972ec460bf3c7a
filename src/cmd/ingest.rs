//! `hedui ingest`: pull the configured sources into the lake (SPEC §9). Each source
//! becomes one new snapshot, committed atomically after all its tables are written;
//! a source that fails commits nothing and the previous snapshot stays current.
//!
//! `files` sources on local paths and `http` sources in snapshot mode are pulled here,
//! page by page into the lake; lookup-mode sources are asked at check time instead.

use std::path::PathBuf;

use chrono::Utc;
use hedui_connectors::{schema, Connector, FilesConnector, HttpConnector, LoadOptions};

use crate::cli::IngestArgs;
use crate::config::{Deployment, SourceConfig, SourceKind, SourceMode};
use crate::error::Error;
use crate::lake::write::TableWriter;
use crate::lake::{snapshot_id, Lake, Manifest, SnapshotMode};
use crate::progress::Progress;
use crate::stage::{stage, Staged};

/// Ingests the selected sources.
pub async fn execute(args: &IngestArgs, progress: &Progress) -> Result<Ingested, Error> {
    let config = Deployment::load(&args.config)?;
    let mut selected: Vec<&SourceConfig> = Vec::new();
    for name in &args.sources {
        let s = config
            .sources
            .iter()
            .find(|s| s.name.as_str() == name.trim())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--source {name}: no such source in {}",
                    args.config.display()
                ))
            })?;
        selected.push(s);
    }
    if args.sources.is_empty() {
        selected = config.sources.iter().collect();
    }
    let lake = Lake::open(&config.lake)?.with_state(&config.state_path);
    // Each source is pulled on its own: one that fails commits nothing (its previous
    // snapshot stays current) and does not stop the others.
    let mut lines = Vec::new();
    let mut first_failure = None;
    for s in selected {
        match ingest_source(&lake, s, &config, progress).await {
            Ok(Outcome::Lookup) => lines.push(format!(
                "{}: lookup mode — asked for the households being checked at check time, nothing to ingest",
                s.name.as_str()
            )),
            Ok(Outcome::Committed(m)) => {
                let rows: u64 = m.tables.iter().map(|t| t.rows).sum();
                let problems: u64 = m.tables.iter().map(|t| t.problems).sum();
                lines.push(format!(
                    "{}: snapshot {} committed ({} tables, {rows} records, {problems} malformed)",
                    m.source,
                    m.seq,
                    m.tables.len()
                ));
            }
            Err(e) => {
                let mut line = format!("{}: failed, nothing committed: {e}", s.name.as_str());
                if let Err(rec) = lake.record_failure(s.name.as_str(), &e.to_string()).await {
                    line.push_str(&format!(" (the failure could not be recorded: {rec})"));
                }
                lines.push(line);
                first_failure.get_or_insert(e);
            }
        }
    }
    Ok(Ingested {
        report: lines.join("\n"),
        failure: first_failure,
    })
}

/// What an ingest run did: one line per source, and the first failure if any.
#[derive(Debug)]
pub struct Ingested {
    /// One line per source.
    pub report: String,
    /// The first source that failed (the run's exit status follows it).
    pub failure: Option<Error>,
}

/// The connector of a snapshot-mode source, and the staged copy it reads when the source
/// is an object-store prefix (kept alive while the connector is used).
async fn connect(
    s: &SourceConfig,
    d: &Deployment,
) -> Result<(Box<dyn Connector>, Option<Staged>), Error> {
    match s.kind {
        SourceKind::Http => Ok((Box::new(HttpConnector::new(s.http())?), None)),
        SourceKind::Files => {
            let (folder, staged) = if !s.url.contains("://") {
                (PathBuf::from(&s.url), None)
            } else if let Some(p) = s.url.strip_prefix("file://") {
                (PathBuf::from(p), None)
            } else {
                let staged = stage(&s.url, &d.lake.s3, &d.state_path.join("staging")).await?;
                (staged.dir().to_owned(), Some(staged))
            };
            Ok((
                Box::new(FilesConnector::new(&folder)?.with_mapping(s.mapping.clone())),
                staged,
            ))
        }
    }
}

/// What ingesting one source came to.
enum Outcome {
    Committed(Manifest),
    /// A lookup-mode source: nothing is pulled ahead of a check.
    Lookup,
}

async fn ingest_source(
    lake: &Lake,
    s: &SourceConfig,
    d: &Deployment,
    progress: &Progress,
) -> Result<Outcome, Error> {
    let name = s.name.as_str();
    if s.mode == SourceMode::Lookup {
        return Ok(Outcome::Lookup);
    }
    let (connector, _staged) = connect(s, d).await?;
    let base_seq = lake.current_seq(name).await?;
    let pulled_at = Utc::now();
    let snapshot_id = snapshot_id(pulled_at, "");
    let opts = LoadOptions {
        reference_date: pulled_at.date_naive(),
    };
    let mut tables = Vec::new();
    for t in &s.tables {
        let Some(schema) = schema::table(t) else {
            continue;
        };
        // A table the department did not deliver is left out of the snapshot: its
        // source is then missing for checks on this snapshot.
        let Some(mut stream) = connector.open(schema, opts).await? else {
            progress.step(&format!("{name}/{t}: absent"));
            continue;
        };
        let mut writer = TableWriter::new(lake, name, &snapshot_id, schema);
        let mut steps = 0u64;
        while let Some(batches) = stream.next().await? {
            writer.push(batches).await?;
            steps += 1;
            if steps % 50 == 0 {
                progress.step(&format!("{name}/{t}: {} records so far", writer.rows()));
            }
        }
        let end = stream.finish();
        let entry = writer.finish(&end.problems).await?;
        progress.step(&format!(
            "{name}/{t}: {} records, {} malformed",
            entry.rows, entry.problems
        ));
        tables.push(entry);
    }
    let manifest = Manifest {
        source: name.to_owned(),
        seq: 0,
        snapshot_id,
        pulled_at,
        committed_at: pulled_at,
        tables,
        freshness_days: s.freshness_days,
        mode: SnapshotMode::Snapshot,
        queried_file: None,
    };
    pause_before_commit(name).await;
    Ok(Outcome::Committed(lake.commit(manifest, base_seq).await?))
}

/// Fault injection for crash tests: with `HEDUI_PAUSE_BEFORE_COMMIT_MS` set, the ingest
/// says so on stderr and waits that long after writing a snapshot's files and before
/// committing its manifest, so a test can kill the process at the worst moment.
async fn pause_before_commit(source: &str) {
    let Some(ms) = std::env::var("HEDUI_PAUSE_BEFORE_COMMIT_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    else {
        return;
    };
    eprintln!("{source}: snapshot written, pausing {ms} ms before commit");
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
}
