//! Where a run's answer waits between the engine and the tail: the flag rows, the
//! household figures and the rendered evidence records, partitioned by chunk of
//! households (household_id order, [`CHUNK_HOUSEHOLDS`] each) as the engine yields them.
//! A run of one chunk keeps them in memory; a larger one writes each chunk's flag rows
//! and evidence to Arrow IPC files in a temporary folder of its own (mode 0700: the
//! evidence holds ID numbers; removed with the answer, and a day after a killed run by
//! the next large run), so that neither the flags, the evidence nor the assembled
//! results are held whole. The figures (one small row per household) stay in memory.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::ipc::reader::FileReader;
use datafusion::arrow::ipc::writer::FileWriter;
use hedui_connectors::schema::ColumnType;
use serde_json::value::RawValue;

use super::evidence::{render_text, EvidenceIndex, Record};
use super::results::{assemble, Declared, HouseholdResult};
use crate::applicants::Household;
use crate::engine::runner::FlagsKept;

/// Why a run's answer cannot be kept or read back.
#[derive(Debug, thiserror::Error)]
pub enum SpillError {
    /// The temporary folder or one of its files cannot be written or read.
    #[error("cannot keep the run's results in the temporary folder {path}: {source}")]
    Io {
        /// The folder or file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// Rows the engine gave cannot be partitioned or read back (a defect).
    #[error("cannot keep the run's results: {0}")]
    Arrow(#[from] ArrowError),
    /// An evidence record is not JSON (a defect).
    #[error("an evidence record of {table} is not JSON: {why}")]
    Record {
        /// Its table.
        table: String,
        /// Why.
        why: String,
    },
}

/// Households per chunk: the unit in which an answer is assembled, written (a row
/// group of `results.parquet` each) and released.
pub const CHUNK_HOUSEHOLDS: usize = 16 * 1024;

/// [`CHUNK_HOUSEHOLDS`], or the tests' `HEDUI_CHUNK_HOUSEHOLDS` (at least 1): a test
/// makes a small batch take the path of a large one (many chunks, on disk).
pub fn chunk_households() -> usize {
    crate::fault::positive("HEDUI_CHUNK_HOUSEHOLDS", CHUNK_HOUSEHOLDS)
}

/// The schema of a spilled evidence batch: the citing household, the cited record's
/// table, file and row, and the record as JSON text.
fn evidence_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("household_id", DataType::Utf8, false),
        Field::new("table", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("row", DataType::Int64, false),
        Field::new("record", DataType::Utf8, false),
    ]))
}

/// One kind of rows (flags, or evidence) by chunk: in memory, or in one IPC file per
/// chunk.
enum Parts {
    Memory(Vec<Vec<RecordBatch>>),
    Disk {
        dir: PathBuf,
        name: &'static str,
        writers: Vec<Option<FileWriter<BufWriter<File>>>>,
        files: Vec<Option<PathBuf>>,
    },
}

impl std::fmt::Debug for Parts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Parts::Memory(_) => f.write_str("Parts::Memory"),
            Parts::Disk { dir, name, .. } => write!(f, "Parts::Disk({}/{name}-*)", dir.display()),
        }
    }
}

impl Parts {
    fn new(chunks: usize, dir: Option<&std::path::Path>, name: &'static str) -> Parts {
        match dir {
            None => Parts::Memory(vec![Vec::new(); chunks]),
            Some(d) => Parts::Disk {
                dir: d.to_path_buf(),
                name,
                writers: (0..chunks).map(|_| None).collect(),
                files: vec![None; chunks],
            },
        }
    }

    fn add(&mut self, k: usize, batch: RecordBatch) -> Result<(), SpillError> {
        match self {
            Parts::Memory(parts) => parts[k].push(batch),
            Parts::Disk {
                dir,
                name,
                writers,
                files,
            } => {
                let path = dir.join(format!("{name}-{k:05}.arrow"));
                if writers[k].is_none() {
                    let file = File::create(&path).map_err(io(&path))?;
                    writers[k] = Some(
                        FileWriter::try_new_buffered(file, &batch.schema())
                            .map_err(|e| arrow_io(&path, e))?,
                    );
                    files[k] = Some(path.clone());
                }
                if let Some(w) = writers[k].as_mut() {
                    w.write(&batch).map_err(|e| arrow_io(&path, e))?;
                }
            }
        }
        Ok(())
    }

    /// Closes the files; the parts can then be read.
    fn close(&mut self) -> Result<(), SpillError> {
        if let Parts::Disk { writers, dir, .. } = self {
            for w in writers.iter_mut().filter_map(Option::take) {
                let mut w = w;
                w.finish().map_err(|e| arrow_io(dir, e))?;
            }
        }
        Ok(())
    }

    fn read(&self, k: usize) -> Result<Vec<RecordBatch>, SpillError> {
        match self {
            Parts::Memory(parts) => Ok(parts[k].clone()),
            Parts::Disk { files, .. } => match &files[k] {
                None => Ok(Vec::new()),
                Some(path) => {
                    let file = File::open(path).map_err(io(path))?;
                    let reader =
                        FileReader::try_new_buffered(file, None).map_err(|e| arrow_io(path, e))?;
                    reader
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| arrow_io(path, e))
                }
            },
        }
    }

    /// Every batch held (memory), or every file written (disk).
    fn all(&self) -> FlagsKept {
        match self {
            Parts::Memory(parts) => FlagsKept::Batches(parts.iter().flatten().cloned().collect()),
            Parts::Disk { files, .. } => {
                FlagsKept::Files(files.iter().flatten().cloned().collect())
            }
        }
    }
}

/// `batch` in `schema`: the same columns, cast where their types differ.
fn conform(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, SpillError> {
    if batch.schema() == *schema {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| match c.data_type() == f.data_type() {
            true => Ok(c.clone()),
            false => datafusion::arrow::compute::cast(c, f.data_type()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// The name every run's temporary folder starts with.
const SPILL_PREFIX: &str = "hedui-run-";

/// Removes what runs killed before their end left in `temp`: folders of ours untouched
/// for a day (no run lasts a day). Best effort: what cannot be removed is left.
fn sweep(temp: &std::path::Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    let day = std::time::Duration::from_secs(24 * 3600);
    for e in entries.flatten() {
        let ours = e.file_name().to_string_lossy().starts_with(SPILL_PREFIX);
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > day);
        if ours && old && e.file_type().is_ok_and(|t| t.is_dir()) {
            match std::fs::remove_dir_all(e.path()) {
                Ok(()) => tracing::info!("removed the temporary folder of an earlier run"),
                Err(err) => {
                    tracing::warn!("cannot remove an earlier run's temporary folder: {err}")
                }
            }
        }
    }
}

/// An Arrow failure writing or reading `path`: a full or failing disk is the folder's
/// problem, said as such; anything else a defect.
fn arrow_io(path: &std::path::Path, e: ArrowError) -> SpillError {
    match e {
        ArrowError::IoError(_, source) => SpillError::Io {
            path: path.display().to_string(),
            source,
        },
        e => SpillError::Arrow(e),
    }
}

fn io(path: &std::path::Path) -> impl FnOnce(std::io::Error) -> SpillError + '_ {
    move |source| SpillError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// A run's answer being gathered: feed it the engine's batches as they come.
#[derive(Debug)]
pub struct Spill {
    /// The households by chunk, in household_id order.
    chunks: Vec<Vec<Declared>>,
    /// Each household's chunk.
    chunk_of: HashMap<String, u32>,
    figures: Vec<Vec<RecordBatch>>,
    flags: Parts,
    evidence: Parts,
    flag_schema: Option<SchemaRef>,
    flag_rows: usize,
    /// The flag rows of each chunk.
    chunk_flags: Vec<usize>,
    missing: Vec<String>,
    stale: Vec<String>,
    /// The temporary folder of a run of more than one chunk: held so that it lives as
    /// long as the answer, removed when the answer is dropped.
    _dir: Option<tempfile::TempDir>,
}

impl Spill {
    /// Starts gathering the answer to `households` (sorted by household_id); a run of
    /// more than one chunk keeps its rows in a new folder of `temp`, made here — before
    /// the run reads any source, so a temporary folder that cannot be used stops it at
    /// once.
    pub fn start(households: &[Household], temp: &std::path::Path) -> Result<Spill, SpillError> {
        let chunks: Vec<Vec<Declared>> = households
            .chunks(chunk_households())
            .map(|c| c.iter().map(Declared::of).collect())
            .collect();
        let n = chunks.len().max(1);
        let chunk_of = chunks
            .iter()
            .enumerate()
            .flat_map(|(k, c)| c.iter().map(move |d| (d.household_id.clone(), k as u32)))
            .collect();
        let dir = match n {
            // One chunk is held in memory, but the engine spills into the same folder:
            // it is tried here too, so that it fails now, in words, not mid-run.
            1 => {
                tempfile::tempfile_in(temp).map_err(io(temp))?;
                None
            }
            _ => {
                sweep(temp);
                let mut b = tempfile::Builder::new();
                b.prefix(SPILL_PREFIX);
                // The evidence holds members' ID numbers: only this user may read it.
                #[cfg(unix)]
                b.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700));
                Some(b.tempdir_in(temp).map_err(io(temp))?)
            }
        };
        let path = dir.as_ref().map(tempfile::TempDir::path);
        Ok(Spill {
            figures: vec![Vec::new(); n],
            flags: Parts::new(n, path, "flags"),
            evidence: Parts::new(n, path, "evidence"),
            chunks,
            chunk_of,
            flag_schema: None,
            flag_rows: 0,
            chunk_flags: vec![0; n],
            missing: Vec::new(),
            stale: Vec::new(),
            _dir: dir,
        })
    }

    /// The sources missing and stale in this run (every result says them).
    pub fn set_sources(&mut self, missing: &[String], stale: &[String]) {
        self.missing = missing.to_vec();
        self.stale = stale.to_vec();
    }

    /// `batch`'s rows by the chunk of the household in column `col`; rows of no
    /// household of the batch are left out.
    fn split(
        &self,
        batch: &RecordBatch,
        col: usize,
    ) -> Result<Vec<(usize, RecordBatch)>, SpillError> {
        let ids = batch.column(col).as_string::<i32>();
        let mut rows: Vec<Vec<u32>> = Vec::new();
        for r in 0..ids.len() {
            if let Some(&k) = self.chunk_of.get(ids.value(r)) {
                let k = k as usize;
                if rows.len() <= k {
                    rows.resize_with(k + 1, Vec::new);
                }
                rows[k].push(r as u32);
            }
        }
        let whole = rows.iter().filter(|r| !r.is_empty()).count() == 1
            && rows.iter().map(Vec::len).sum::<usize>() == batch.num_rows();
        let mut out = Vec::new();
        for (k, r) in rows.into_iter().enumerate().filter(|(_, r)| !r.is_empty()) {
            if whole {
                out.push((k, batch.clone()));
            } else {
                out.push((k, take_record_batch(batch, &UInt32Array::from(r))?));
            }
        }
        Ok(out)
    }

    /// The schema every flag row is kept in (`flag_rows`', strings plain): each rule
    /// view has its own (a column one rule always fills another leaves empty), and the
    /// rows of all of them go to the same files.
    pub fn set_flag_schema(&mut self, schema: SchemaRef) {
        self.flag_schema = Some(schema);
    }

    /// Adds flag rows (`flag_rows`, household_id first), in the schema set.
    pub fn add_flags(&mut self, batch: &RecordBatch) -> Result<(), SpillError> {
        let batch = match &self.flag_schema {
            Some(schema) => conform(batch, schema)?,
            None => batch.clone(),
        };
        self.flag_rows += batch.num_rows();
        for (k, part) in self.split(&batch, 0)? {
            self.chunk_flags[k] += part.num_rows();
            self.flags.add(k, part)?;
        }
        Ok(())
    }

    /// The schema the flag rows are kept in (once set).
    pub fn flag_schema(&self) -> Option<SchemaRef> {
        self.flag_schema.clone()
    }

    /// The flags kept, in groups of consecutive chunks of at most about `rows` flag rows
    /// each (a chunk with more is a group of its own; call after [`Spill::flags_found`]):
    /// the evidence is looked up a group at a time, so the engine's tables of the
    /// records cited hold one group's references, not every flag's. One group when the
    /// flags are held in memory.
    pub fn flag_groups(&self, rows: usize) -> Vec<FlagsKept> {
        let Parts::Disk { files, .. } = &self.flags else {
            return vec![self.flags.all()];
        };
        let mut groups: Vec<Vec<PathBuf>> = Vec::new();
        let mut in_last = usize::MAX;
        for (k, file) in files.iter().enumerate() {
            let Some(file) = file else { continue };
            let n = self.chunk_flags[k];
            if in_last.saturating_add(n) > rows.max(1) {
                groups.push(Vec::new());
                in_last = 0;
            }
            in_last += n;
            if let Some(g) = groups.last_mut() {
                g.push(file.clone());
            }
        }
        match groups.is_empty() {
            true => vec![FlagsKept::Files(Vec::new())],
            false => groups.into_iter().map(FlagsKept::Files).collect(),
        }
    }

    /// The flag rows added so far.
    pub fn flag_rows(&self) -> usize {
        self.flag_rows
    }

    /// Every flag row added, for the queries that read them (`flags_found`); the files
    /// are closed first.
    pub fn flags_found(&mut self) -> Result<FlagsKept, SpillError> {
        self.flags.close()?;
        Ok(self.flags.all())
    }

    /// Adds household figures (`household_results`, household_id first).
    pub fn add_figures(&mut self, batch: &RecordBatch) -> Result<(), SpillError> {
        for (k, part) in self.split(batch, 0)? {
            self.figures[k].push(part);
        }
        Ok(())
    }

    /// Adds the records of an evidence query on `table` (its canonical `columns`, then
    /// `src_file`, `src_row` and the citing household_id), rendered as JSON.
    pub fn add_evidence(
        &mut self,
        table: &str,
        columns: &[(String, ColumnType)],
        batch: &RecordBatch,
    ) -> Result<(), SpillError> {
        let n = columns.len();
        let records = render_text(columns, batch);
        let table_col: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
            table,
            batch.num_rows(),
        )));
        let rendered = RecordBatch::try_new(
            evidence_schema(),
            vec![
                batch.column(n + 2).clone(),
                table_col,
                batch.column(n).clone(),
                batch.column(n + 1).clone(),
                Arc::new(records),
            ],
        )?;
        for (k, part) in self.split(&rendered, 0)? {
            self.evidence.add(k, part)?;
        }
        Ok(())
    }

    /// The answer gathered, ready to be read.
    pub fn finish(mut self) -> Result<Spilled, SpillError> {
        self.flags.close()?;
        self.evidence.close()?;
        Ok(Spilled(self))
    }
}

/// A run's answer kept by chunk, assembled a chunk at a time.
#[derive(Debug)]
pub struct Spilled(Spill);

impl Spilled {
    /// How many households it answers (those the engine gave figures of).
    pub fn households(&self) -> usize {
        self.0
            .figures
            .iter()
            .flatten()
            .map(RecordBatch::num_rows)
            .sum()
    }

    /// How many chunks it has.
    pub fn chunks(&self) -> usize {
        self.0.chunks.len()
    }

    /// The chunk of household `household_id`.
    pub fn chunk_of(&self, household_id: &str) -> Option<usize> {
        self.0.chunk_of.get(household_id).map(|&k| k as usize)
    }

    /// The results of chunk `k`, in household_id order.
    pub fn assemble(&self, k: usize) -> Result<Vec<HouseholdResult>, SpillError> {
        let s = &self.0;
        let flags = s.flags.read(k)?;
        let mut index = EvidenceIndex::default();
        for b in s.evidence.read(k)? {
            let tables = b.column(1).as_string::<i32>();
            let files = b.column(2).as_string::<i32>();
            let rows = b.column(3).as_primitive::<Int64Type>();
            let records = b.column(4).as_string::<i32>();
            for r in 0..b.num_rows() {
                let (table, file, row) = (tables.value(r), files.value(r), rows.value(r));
                if index.get(table, file, row).is_some() {
                    continue;
                }
                let record = RawValue::from_string(records.value(r).to_owned()).map_err(|e| {
                    SpillError::Record {
                        table: table.to_owned(),
                        why: e.to_string(),
                    }
                })?;
                index.insert(table, file, row, Record::from(record));
            }
        }
        Ok(assemble(
            &s.chunks[k],
            &s.figures[k],
            &flags,
            &index,
            &s.missing,
            &s.stale,
        ))
    }
}
