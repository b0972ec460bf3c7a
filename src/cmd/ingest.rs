//! `hedui ingest`: pull the configured sources into the lake (SPEC §9). Each source
//! becomes one new snapshot, committed atomically after all its tables are written;
//! a source that fails commits nothing and the previous snapshot stays current.
//!
//! `files` sources on local paths and `http` sources in snapshot mode are pulled here,
//! page by page into the lake; lookup-mode sources are asked at check time instead.

use std::path::PathBuf;

use chrono::Utc;
use futures::StreamExt;
use hedui_connectors::{schema, Connector, FilesConnector, HttpConnector, LoadOptions};

use crate::cli::IngestArgs;
use crate::config::{Deployment, SourceConfig, SourceKind, SourceMode};
use crate::error::Error;
use crate::lake::checkpoint::{Checkpoint, InProgress};
use crate::lake::write::TableWriter;
use crate::lake::{snapshot_id, Lake, Manifest, SnapshotMode};
use crate::progress::Progress;
use crate::stage::{stage, Staged};

/// Sources pulled at the same time by one ingest.
const SOURCES_AT_ONCE: usize = 3;

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
    let lake = Lake::open(&config.lake)?;
    // Each source is pulled on its own: one that fails commits nothing (its previous
    // snapshot stays current) and does not stop the others.
    // Up to SOURCES_AT_ONCE sources are pulled at a time (departments answer at their
    // own pace); the report keeps the config's order.
    let outcomes: Vec<(&SourceConfig, Result<Outcome, Error>)> = futures::stream::iter(selected)
        .map(|s| {
            let (lake, config) = (&lake, &config);
            async move { (s, ingest_source(lake, s, config, progress).await) }
        })
        .buffered(SOURCES_AT_ONCE)
        .collect()
        .await;
    let mut lines = Vec::new();
    let mut first_failure = None;
    for (s, outcome) in outcomes {
        match outcome {
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
                if let Ok(Some(c)) = lake.load_checkpoint(s.name.as_str()).await {
                    let kept = c.done.iter().map(|t| t.rows).sum::<u64>()
                        + c.current.as_ref().map_or(0, |i| i.written.rows);
                    if kept > 0 {
                        line.push_str(&format!(
                            " ({kept} records written so far are kept; the next ingest goes on from there)"
                        ));
                    }
                }
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

/// An unfinished HTTP pull older than this many hours is started again rather than resumed.
const RESUME_WITHIN_H: i64 = 24;

/// Snapshot folders no manifest names are removed once this many hours old (a pull
/// still running or to be resumed is never that old unreferenced).
const ORPHAN_AFTER_H: i64 = 48;

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
    let current_seq = lake.current_seq(name).await?;
    // Only HTTP pulls resume: a folder may have changed between two runs.
    let resumable = s.kind == SourceKind::Http;
    let fingerprint = format!("{}|{}|{:?}", s.url, s.tables.join(","), s.mapping);
    let previous = if resumable {
        lake.load_checkpoint(name).await?
    } else {
        None
    };
    let mut cp = match previous {
        Some(c)
            if c.base_seq == current_seq
                && c.fingerprint == fingerprint
                && Utc::now() - c.pulled_at < chrono::Duration::hours(RESUME_WITHIN_H) =>
        {
            let kept = c.done.iter().map(|e| e.rows).sum::<u64>()
                + c.current.as_ref().map_or(0, |i| i.written.rows);
            progress.warn(&format!(
                "{name}: 接着上次中断处继续拉取 — going on with the pull begun {} ({kept} records already written)",
                c.pulled_at.format("%Y-%m-%d %H:%M:%S UTC")
            ));
            c
        }
        _ => {
            let pulled_at = Utc::now();
            Checkpoint {
                source: name.to_owned(),
                snapshot_id: snapshot_id(pulled_at, ""),
                base_seq: current_seq,
                pulled_at,
                fingerprint,
                done: vec![],
                current: None,
            }
        }
    };
    let opts = LoadOptions {
        reference_date: cp.pulled_at.date_naive(),
    };
    for t in &s.tables {
        let Some(schema) = schema::table(t) else {
            continue;
        };
        if cp.done.iter().any(|e| &e.table == t) {
            continue;
        }
        let (mut stream, mut writer, mut pages) = match cp.current.take() {
            Some(ip) if &ip.table == t => (
                connector.resume(schema, opts, &ip.position).await?,
                TableWriter::resume(lake, name, &cp.snapshot_id, schema, ip.written),
                ip.pages,
            ),
            _ => {
                // A table the department did not deliver is left out of the snapshot:
                // its source is then missing for checks on this snapshot.
                let Some(stream) = connector.open(schema, opts).await? else {
                    progress.step(&format!("{name}/{t}: absent"));
                    continue;
                };
                (
                    stream,
                    TableWriter::new(lake, name, &cp.snapshot_id, schema),
                    0,
                )
            }
        };
        while let Some(batches) = stream.next().await? {
            pages += 1;
            writer.push_problems(stream.take_problems());
            let wrote = writer.push(batches).await?;
            if wrote && resumable {
                if let (Some(position), Some(written)) = (stream.position(), writer.written()) {
                    cp.current = Some(InProgress {
                        table: t.clone(),
                        position,
                        written: written.clone(),
                        pages,
                    });
                    lake.save_checkpoint(&cp).await?;
                }
            }
            if pages % 50 == 0 {
                progress.step(&format!("{name}/{t}: {} records so far", writer.rows()));
            }
        }
        let end = stream.finish();
        writer.push_problems(end.problems);
        let entry = writer.finish().await?;
        if entry.rows == 0 {
            // An empty export is not evidence that nobody earns or owns anything: it
            // never becomes the current snapshot (the failure is recorded instead).
            return Err(hedui_connectors::ConnectorError::EmptyDelivery {
                source_name: name.to_owned(),
                table: t.clone(),
                read: entry.problems,
                problems: entry.problems,
            }
            .into());
        }
        progress.step(&format!(
            "{name}/{t}: {} records, {} malformed",
            entry.rows, entry.problems
        ));
        cp.done.push(entry);
        cp.current = None;
        if resumable {
            lake.save_checkpoint(&cp).await?;
        }
    }
    let manifest = Manifest {
        source: name.to_owned(),
        seq: 0,
        snapshot_id: cp.snapshot_id.clone(),
        pulled_at: cp.pulled_at,
        committed_at: cp.pulled_at,
        tables: cp.done.clone(),
        freshness_days: s.freshness_days,
        mode: SnapshotMode::Snapshot,
        queried_file: None,
        clock_note: None,
    };
    pause_before_commit(name).await;
    let committed = lake.commit(manifest, cp.base_seq).await?;
    if let Some(note) = &committed.clock_note {
        progress.warn(&format!("{name}: 提交时间已校正 — {note}"));
    }
    if resumable {
        lake.clear_checkpoint(name).await?;
    }
    // Housekeeping after a commit: files of pulls that will never be committed.
    match lake
        .remove_orphans(name, chrono::Duration::hours(ORPHAN_AFTER_H))
        .await
    {
        Ok(0) => {}
        Ok(n) => progress.step(&format!("{name}: removed {n} unfinished snapshot folders")),
        Err(e) => progress.warn(&format!(
            "{name}: 未能清理未完成的快照目录 — could not remove unfinished snapshot folders: {e}"
        )),
    }
    Ok(Outcome::Committed(committed))
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
