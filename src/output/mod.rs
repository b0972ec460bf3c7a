//! The output files of a run (SPEC §7), each written to a temporary name and made
//! visible with one rename.
//!
//! - [`results`]: `results.jsonl`
//! - [`parquet`]: `results.parquet` (the same rows, for analysts)
//! - [`summary`]: `summary.json`
//! - [`report`]: `report.html` (templates/report.html)
//! - here: `rejected.jsonl`, `data_quality.jsonl`

pub mod parquet;
pub mod report;
pub mod results;
pub mod summary;

use std::io::Write;
use std::path::Path;

use serde::Serialize;

use crate::check::CheckRun;
use crate::error::Error;
use crate::progress::Progress;

/// Writes `bytes` to `dir/name` atomically (temporary file, then rename).
pub fn write_atomic(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut (dyn Write + Send)) -> std::io::Result<()>,
) -> Result<(), Error> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let err = |source| Error::Output {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(&tmp).map_err(err)?;
    let mut w = std::io::BufWriter::new(file);
    write(&mut w).map_err(err)?;
    w.into_inner()
        .map_err(|e| err(e.into_error()))?
        .sync_all()
        .map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(())
}

/// Writes one JSON object per line.
pub fn write_jsonl<T: Serialize>(dir: &Path, name: &str, items: &[T]) -> Result<(), Error> {
    write_atomic(dir, name, |w| {
        for item in items {
            serde_json::to_writer(&mut *w, item)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}

/// A reconciliation run's changes against its previous completed run, which its report
/// leads with.
#[derive(Debug, Clone, Copy)]
pub struct Compared<'a> {
    /// This run.
    pub run_id: i64,
    /// The run compared with, if any.
    pub previous: Option<i64>,
    /// What changed, by household.
    pub changes: &'a [crate::changes::Change],
}

/// Writes every output file of a check run into `dir` (created if needed); returns the
/// summary it wrote.
pub fn write_all(
    dir: &Path,
    run: &CheckRun,
    progress: &Progress,
) -> Result<summary::Summary, Error> {
    write_all_with(dir, run, None, progress)
}

/// [`write_all`] for a reconciliation: the report leads with `compared`'s changes.
pub fn write_all_with(
    dir: &Path,
    run: &CheckRun,
    compared: Option<&Compared<'_>>,
    progress: &Progress,
) -> Result<summary::Summary, Error> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Output {
        path: dir.display().to_string(),
        source,
    })?;
    // The two large outputs are written beside each other and beside the rest.
    std::thread::scope(|scope| {
        let jsonl = scope.spawn(|| {
            write_jsonl(dir, "results.jsonl", &run.results)?;
            progress.step("results.jsonl written");
            Ok::<(), Error>(())
        });
        let parquet = scope.spawn(|| {
            parquet::write(dir, &run.results)?;
            progress.step("results.parquet written");
            Ok::<(), Error>(())
        });
        let rest = (|| {
            write_jsonl(dir, "rejected.jsonl", &run.batch.rejections)?;
            write_jsonl(dir, "data_quality.jsonl", &run.problems)?;
            let summary = summary::build(run);
            write_atomic(dir, "summary.json", |w| {
                serde_json::to_writer_pretty(&mut *w, &summary)?;
                w.write_all(b"\n")
            })?;
            report::write(dir, run, &summary, compared)?;
            progress.step("report.html written");
            Ok::<summary::Summary, Error>(summary)
        })();
        let joined = |h: std::thread::ScopedJoinHandle<'_, Result<(), Error>>| {
            h.join()
                .unwrap_or_else(|_| Err(Error::Internal("an output writer panicked".into())))
        };
        let (jsonl, parquet) = (joined(jsonl), joined(parquet));
        jsonl?;
        parquet?;
        rest
    })
}
