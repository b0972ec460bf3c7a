//! The output files of a run (SPEC §7), written household chunk by household chunk as
//! the run's answer is read, each to a temporary name and made visible with one rename.
//!
//! - [`files`]: atomic writes, `results.jsonl`, `rejected.jsonl`, `data_quality.jsonl`
//! - [`parquet`]: `results.parquet` (the same rows, for analysts; a row group a chunk)
//! - [`summary`]: `summary.json` (counted as the results come)
//! - [`gathered`]: what the report shows, gathered as the results come, kept small
//! - [`report`]: `report.html` (templates/report.html)
//! - here: [`Outputs`], every output of a run (used by `crate::publish` only)

pub mod files;
pub mod gathered;
pub mod parquet;
pub mod report;
pub mod summary;

use std::path::{Path, PathBuf};

use crate::changes::Change;
use crate::progress::Progress;
use crate::verdict::{CheckRun, HouseholdResult};

pub use files::{write_atomic, write_jsonl, AtomicFile, OutputError};
pub use report::Compared;

/// The output files of a run being written: give it the results chunk by chunk (and a
/// reconciliation's changes), then [`Outputs::finish`].
pub struct Outputs {
    dir: PathBuf,
    results: AtomicFile,
    parquet: parquet::Writer,
    changes: Option<AtomicFile>,
    tally: summary::Tally,
    gathered: gathered::Gathered,
}

impl Outputs {
    /// Starts the outputs in `dir` (created if needed); `changes`: a reconciliation's,
    /// with `changes.jsonl`.
    pub fn create(dir: &Path, changes: bool) -> Result<Outputs, OutputError> {
        std::fs::create_dir_all(dir).map_err(|source| OutputError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        Ok(Outputs {
            dir: dir.to_path_buf(),
            results: AtomicFile::create(dir, "results.jsonl")?,
            parquet: parquet::Writer::create(dir)?,
            changes: match changes {
                true => Some(AtomicFile::create(dir, "changes.jsonl")?),
                false => None,
            },
            tally: summary::Tally::default(),
            gathered: gathered::Gathered::default(),
        })
    }

    /// Writes a chunk of results (in household_id order, after the previous chunk):
    /// its lines of `results.jsonl` and its row group of `results.parquet` side by side.
    pub fn add(&mut self, chunk: &[HouseholdResult]) -> Result<(), OutputError> {
        let (results, parquet) = (&mut self.results, &mut self.parquet);
        let (jsonl, rows) = std::thread::scope(|scope| {
            let jsonl =
                scope.spawn(|| files::jsonl_into(results, chunk).map_err(|e| results.error(e)));
            let rows = parquet.add(chunk);
            let jsonl = jsonl.join().unwrap_or(Err(OutputError::Panicked));
            (jsonl, rows)
        });
        jsonl?;
        rows?;
        self.tally.add(chunk);
        self.gathered.add(chunk);
        Ok(())
    }

    /// Writes changes (in household_id order, after the previous ones) to
    /// `changes.jsonl`.
    pub fn add_changes(&mut self, changes: &[Change]) -> Result<(), OutputError> {
        if let Some(f) = &mut self.changes {
            files::jsonl_into(f, changes).map_err(|e| f.error(e))?;
        }
        self.gathered.add_changes(changes);
        Ok(())
    }

    /// Makes the results visible and writes the rest — `rejected.jsonl`,
    /// `data_quality.jsonl`, `summary.json`, `report.html` (a reconciliation's leading
    /// with `compared`'s changes); returns the summary.
    pub fn finish(
        self,
        run: &CheckRun,
        compared: Option<&Compared>,
        progress: &Progress,
    ) -> Result<summary::Summary, OutputError> {
        let dir = self.dir.as_path();
        self.results.commit()?;
        progress.step("results.jsonl written");
        self.parquet.commit()?;
        progress.step("results.parquet written");
        if let Some(f) = self.changes {
            f.commit()?;
        }
        write_jsonl(dir, "rejected.jsonl", &run.batch.rejections)?;
        write_jsonl(dir, "data_quality.jsonl", &run.problems)?;
        let summary = summary::build(run, self.tally);
        write_atomic(dir, "summary.json", |w| {
            serde_json::to_writer_pretty(&mut *w, &summary)?;
            w.write_all(b"\n")
        })?;
        report::write(dir, run, &summary, &self.gathered, compared)?;
        progress.step("report.html written");
        Ok(summary)
    }
}
