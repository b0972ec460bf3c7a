//! One source pulled into the lake as a new snapshot (`hedui ingest`, SPEC §9): its
//! tables written page by page, then one manifest committed atomically. `files` sources
//! on local paths or object-store prefixes, and `http` sources in snapshot mode, which
//! resume an interrupted pull from their checkpoint. A source that fails commits nothing:
//! its previous snapshot stays current.

use std::path::PathBuf;

use chrono::Utc;
use hedui_connectors::schema::TableSchema;
use hedui_connectors::{schema, Connector, FilesConnector, HttpConnector, LoadOptions};

use crate::config::{Deployment, SourceConfig, SourceKind, SourceMode};
use crate::lake::checkpoint::{Checkpoint, InProgress};
use crate::lake::write::TableWriter;
use crate::lake::{snapshot_id, Lake, Manifest, SnapshotMode, TableEntry};
use crate::progress::Progress;

use super::stage::{stage, Staged};
use super::IngestError;

/// An unfinished HTTP pull older than this many hours is started again rather than resumed.
const RESUME_WITHIN_H: i64 = 24;

/// Snapshot folders no manifest names are removed once this many hours old (a pull
/// still running or to be resumed is never that old unreferenced).
const ORPHAN_AFTER_H: i64 = 48;

/// What pulling one source came to.
#[derive(Debug)]
pub enum Outcome {
    /// The snapshot committed.
    Committed(Manifest),
    /// A lookup-mode source: nothing is pulled ahead of a check.
    Lookup,
}

/// Pulls source `s` of deployment `d` into `lake` as a new snapshot. With `deadline`
/// (when, and its minutes for the message), a pull still reading the department then is
/// given up ([`IngestError::OutOfTime`]); one that has read everything commits whatever
/// the time — a commit is never cut in the middle, so a pull reported failed never
/// became the current snapshot.
pub async fn pull(
    lake: &Lake,
    s: &SourceConfig,
    d: &Deployment,
    deadline: Option<(tokio::time::Instant, u64)>,
    progress: &Progress,
) -> Result<Outcome, IngestError> {
    if s.mode == SourceMode::Lookup {
        return Ok(Outcome::Lookup);
    }
    let resumable = s.kind == SourceKind::Http;
    let read = read_all(lake, s, d, resumable, progress);
    let (cp, _staged) = match deadline {
        Some((at, minutes)) => tokio::time::timeout_at(at, read)
            .await
            .unwrap_or(Err(IngestError::OutOfTime { minutes }))?,
        None => read.await?,
    };
    commit(lake, s, &cp, resumable, progress).await
}

/// Reads every table of source `s` into the lake's files of a new (or resumed) snapshot:
/// its checkpoint, ready to commit, and the staged copy it read (kept until then).
async fn read_all(
    lake: &Lake,
    s: &SourceConfig,
    d: &Deployment,
    resumable: bool,
    progress: &Progress,
) -> Result<(Checkpoint, Option<Staged>), IngestError> {
    let (connector, staged) = connect(s, d).await?;
    // Only HTTP pulls resume: a folder may have changed between two runs.
    let mut cp = start_or_resume(lake, s, resumable, progress).await?;
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
        let Some(entry) = pull_table(
            lake,
            connector.as_ref(),
            schema,
            opts,
            &mut cp,
            resumable,
            progress,
        )
        .await?
        else {
            continue;
        };
        cp.done.push(entry);
        cp.current = None;
        if resumable {
            lake.save_checkpoint(&cp).await?;
        }
    }
    Ok((cp, staged))
}

/// The connector of a snapshot-mode source, and the staged copy it reads when the source
/// is an object-store prefix (kept alive while the connector is used).
async fn connect(
    s: &SourceConfig,
    d: &Deployment,
) -> Result<(Box<dyn Connector>, Option<Staged>), IngestError> {
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

/// The pull to go on with: an HTTP pull's checkpoint when it was begun on the current
/// snapshot, with the same settings, less than [`RESUME_WITHIN_H`] ago; else a new one.
async fn start_or_resume(
    lake: &Lake,
    s: &SourceConfig,
    resumable: bool,
    progress: &Progress,
) -> Result<Checkpoint, IngestError> {
    let name = s.name.as_str();
    let current_seq = lake.current_seq(name).await?;
    let fingerprint = format!("{}|{}|{:?}", s.url, s.tables.join(","), s.mapping);
    let previous = if resumable {
        lake.load_checkpoint(name).await?
    } else {
        None
    };
    Ok(match previous {
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
    })
}

/// Writes one table of the pull into the snapshot folder, page by page (saving the
/// checkpoint after each part written when `resumable`); `None` when the department
/// did not deliver the table (it is left out of the snapshot: its source is then
/// missing for checks on this snapshot).
async fn pull_table(
    lake: &Lake,
    connector: &dyn Connector,
    schema: &'static TableSchema,
    opts: LoadOptions,
    cp: &mut Checkpoint,
    resumable: bool,
    progress: &Progress,
) -> Result<Option<TableEntry>, IngestError> {
    let name = cp.source.clone();
    let t = &schema.table;
    let (mut stream, mut writer, mut pages) = match cp.current.take() {
        Some(ip) if &ip.table == t => (
            connector.resume(schema, opts, &ip.position).await?,
            TableWriter::resume(lake, &name, &cp.snapshot_id, schema, ip.written),
            ip.pages,
        ),
        _ => {
            let Some(stream) = connector.open(schema, opts).await? else {
                progress.step(&format!("{name}/{t}: absent"));
                return Ok(None);
            };
            (
                stream,
                TableWriter::new(lake, &name, &cp.snapshot_id, schema),
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
                lake.save_checkpoint(cp).await?;
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
            source_name: name,
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
    Ok(Some(entry))
}

/// Commits the pull's tables as the source's new snapshot, then clears its checkpoint
/// and removes snapshot folders of pulls that will never be committed.
async fn commit(
    lake: &Lake,
    s: &SourceConfig,
    cp: &Checkpoint,
    resumable: bool,
    progress: &Progress,
) -> Result<Outcome, IngestError> {
    let name = s.name.as_str();
    let manifest = Manifest {
        format: crate::lake::manifest::FORMAT,
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
    crate::fault::pause(
        crate::fault::BEFORE_COMMIT,
        &format!("{name}: snapshot written"),
        "commit",
    )
    .await;
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
