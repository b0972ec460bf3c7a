//! The output files of a run (SPEC §7), written household chunk by household chunk as
//! the run's answer is read, each to a temporary name and made visible with one rename.
//!
//! - [`files`]: atomic writes, `results.jsonl`, `rejected.jsonl`, `data_quality.jsonl`
//! - [`parquet`]: `results.parquet` (the same rows, for analysts; a row group a chunk)
//! - [`summary`]: `summary.json` (counted as the results come)
//! - [`gathered`]: what the report shows, gathered as the results come, kept small
//! - [`report`]: `report.html` (templates/report.html)
//! - [`workbook`]: `results.xlsx` for clerks, made on request from the JSON Lines
//! - [`labels`]: records in words — the schemas' labels, money, masks (pages, reports)
//! - here: [`Outputs`], every output of a run (used by `crate::publish` only)

pub mod files;
pub mod gathered;
pub mod labels;
pub mod parquet;
pub mod report;
pub mod summary;
pub mod workbook;

use std::path::{Path, PathBuf};

use crate::changes::Change;
use crate::progress::Progress;
use crate::verdict::{CheckRun, HouseholdResult};

pub use files::{write_atomic, write_jsonl, AtomicFile, FolderLock, OutputError, Staged};
pub use report::{Compared, NightPulls, Origin};

/// Every file a run may write into its output folder (a file of these names that this
/// run did not write — a reconciliation's `changes.jsonl` under a later check — is
/// removed when it publishes: the folder shows one run).
pub const OUTPUT_FILES: [&str; 7] = [
    "results.jsonl",
    "results.parquet",
    "rejected.jsonl",
    "data_quality.jsonl",
    "summary.json",
    "report.html",
    "changes.jsonl",
];

/// The output files of a run being written: give it the results chunk by chunk (and a
/// reconciliation's changes), then [`Outputs::finish`] and, once the run is recorded,
/// [`Ready::publish`].
pub struct Outputs {
    dir: PathBuf,
    lock: FolderLock,
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
        let lock = FolderLock::take(dir)?;
        Ok(Outputs {
            dir: dir.to_path_buf(),
            lock,
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

    /// Ends the results and writes the rest — `rejected.jsonl`, `data_quality.jsonl`,
    /// `summary.json`, `report.html` (saying where the run comes from, `origin`; a
    /// reconciliation's leading with `compared`'s changes) — all under temporary names,
    /// synced, none visible yet.
    pub fn finish(
        self,
        run: &CheckRun,
        compared: Option<&Compared>,
        origin: &Origin<'_>,
        progress: &Progress,
    ) -> Result<Ready, OutputError> {
        let dir = self.dir.as_path();
        let mut files = vec![self.results.finish()?];
        progress.step("results.jsonl written");
        files.push(self.parquet.finish()?);
        progress.step("results.parquet written");
        let changes = match self.changes {
            Some(f) => Some(f.finish()?),
            None => None,
        };
        files.push(write_jsonl(dir, "rejected.jsonl", &run.batch.rejections)?);
        files.push(write_jsonl(dir, "data_quality.jsonl", &run.problems)?);
        let summary = summary::build(run, self.tally);
        files.push(write_atomic(dir, "summary.json", |w| {
            serde_json::to_writer_pretty(&mut *w, &summary)?;
            w.write_all(b"\n")
        })?);
        files.push(report::write(
            dir,
            run,
            &summary,
            &self.gathered,
            compared,
            origin,
        )?);
        progress.step("report.html written");
        Ok(Ready {
            dir: self.dir,
            _lock: self.lock,
            files,
            changes,
            summary,
        })
    }
}

/// A run's output files written and synced under temporary names, the folder still
/// locked: made visible by [`Ready::publish`] once the run is recorded (audited, its
/// job or reconciliation done). Dropped unpublished, every temporary file is removed.
pub struct Ready {
    dir: PathBuf,
    _lock: FolderLock,
    files: Vec<Staged>,
    changes: Option<Staged>,
    /// The run's summary.
    pub summary: summary::Summary,
}

impl Ready {
    /// Where the run's `changes.jsonl` is until published (its own bytes, which the
    /// state stores).
    pub fn changes_file(&self) -> Option<&Path> {
        self.changes.as_ref().map(Staged::temp_path)
    }

    /// Gives every file its name, results first, and removes the outputs of an earlier
    /// run that this one does not write.
    pub fn publish(self) -> Result<summary::Summary, OutputError> {
        let mut written: Vec<PathBuf> = Vec::new();
        for f in self.files.into_iter().chain(self.changes) {
            written.push(f.path().to_path_buf());
            f.publish()?;
        }
        for name in OUTPUT_FILES {
            let path = self.dir.join(name);
            if !written.contains(&path) && path.exists() {
                std::fs::remove_file(&path).map_err(|source| OutputError::Write {
                    path: path.display().to_string(),
                    source,
                })?;
            }
        }
        Ok(self.summary)
    }
}
