//! The output files of a run (SPEC §7), each written to a temporary name and made
//! visible with one rename.
//!
//! - [`files`]: atomic writes, `results.jsonl`, `rejected.jsonl`, `data_quality.jsonl`
//! - [`parquet`]: `results.parquet` (the same rows, for analysts)
//! - [`summary`]: `summary.json`
//! - [`report`]: `report.html` (templates/report.html)
//! - here: [`write_all_with`], every output of a run (called by `crate::publish` only)

pub mod files;
pub mod parquet;
pub mod report;
pub mod summary;

use std::path::Path;

use crate::progress::Progress;
use crate::verdict::CheckRun;

pub use files::{write_atomic, write_jsonl, OutputError};
pub use report::Compared;

/// Writes every output file of a check run into `dir` (created if needed); returns the
/// summary it wrote. A reconciliation's report leads with `compared`'s changes.
pub fn write_all_with(
    dir: &Path,
    run: &CheckRun,
    compared: Option<&Compared<'_>>,
    progress: &Progress,
) -> Result<summary::Summary, OutputError> {
    std::fs::create_dir_all(dir).map_err(|source| OutputError::Write {
        path: dir.display().to_string(),
        source,
    })?;
    // The two large outputs are written beside each other and beside the rest.
    std::thread::scope(|scope| {
        let jsonl = scope.spawn(|| {
            files::write_jsonl(dir, "results.jsonl", &run.results)?;
            progress.step("results.jsonl written");
            Ok::<(), OutputError>(())
        });
        let parquet = scope.spawn(|| {
            parquet::write(dir, &run.results)?;
            progress.step("results.parquet written");
            Ok::<(), OutputError>(())
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
            Ok::<summary::Summary, OutputError>(summary)
        })();
        let joined = |h: std::thread::ScopedJoinHandle<'_, Result<(), OutputError>>| {
            h.join().unwrap_or_else(|_| Err(OutputError::Panicked))
        };
        let (jsonl, parquet) = (joined(jsonl), joined(parquet));
        jsonl?;
        parquet?;
        rest
    })
}
