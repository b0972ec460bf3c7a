//! The `files` connector: a folder holding, per canonical table, `TABLE.csv`,
//! `TABLE.parquet`, `TABLE.jsonl` or a folder `TABLE/` of such files (SPEC §2).

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, AsArray, Date32Array, Decimal128Array, LargeStringArray, StringArray, StringViewArray,
};
use datafusion::arrow::datatypes::{
    DataType, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt8Type,
};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::value::RawValue;

use crate::json::push_record;
use crate::mapping::{SourceMapping, TableMapping};
use crate::schema::TableSchema;
use crate::text::{decode_text, fold_trim};
use crate::validate::{Cell, TableBuilder, BINARY_FLOAT};
use crate::{Connector, ConnectorError, LoadOptions, LoadedTable, TableStream};

/// Reads canonical tables from a local folder.
#[derive(Debug, Clone)]
pub struct FilesConnector {
    root: PathBuf,
    mapping: SourceMapping,
}

impl FilesConnector {
    /// A connector over `root`, which must be a folder.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self, ConnectorError> {
        let root = root.into();
        if !root.is_dir() {
            return Err(ConnectorError::NotAFolder {
                path: root.display().to_string(),
            });
        }
        Ok(FilesConnector {
            root,
            mapping: SourceMapping::default(),
        })
    }

    /// The folder read.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Reads the department's own field names and codes (SPEC §9) through `mapping`.
    pub fn with_mapping(mut self, mapping: SourceMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// The files of `table`, with their labels relative to the root; `None` when absent.
    /// Files inside a `TABLE/` folder that are not table files are listed too: the
    /// loader reports them as data-quality problems.
    pub fn find(&self, table: &str) -> Result<Option<Vec<(PathBuf, String)>>, ConnectorError> {
        let mut entries = Vec::new();
        for ext in ["csv", "parquet", "jsonl"] {
            let p = self.root.join(format!("{table}.{ext}"));
            if p.is_file() {
                entries.push((p, format!("{table}.{ext}")));
            } else if p.exists() {
                return Err(ConnectorError::NotAFile {
                    path: p.display().to_string(),
                });
            }
        }
        let dir = self.root.join(table);
        let has_dir = dir.is_dir();
        if entries.len() + usize::from(has_dir) > 1 {
            let mut names: Vec<String> = entries.iter().map(|e| e.1.clone()).collect();
            if has_dir {
                names.push(format!("{table}/"));
            }
            return Err(ConnectorError::Ambiguous {
                table: table.to_owned(),
                entries: names.join(", "),
            });
        }
        if !has_dir {
            return Ok(if entries.is_empty() {
                None
            } else {
                Some(entries)
            });
        }
        let io = |source| ConnectorError::Io {
            path: dir.display().to_string(),
            source,
        };
        let mut files = Vec::new();
        for e in std::fs::read_dir(&dir).map_err(io)? {
            let e = e.map_err(io)?;
            let name = e.file_name().to_string_lossy().into_owned();
            let path = e.path();
            if name.starts_with('.') || path.is_dir() {
                continue;
            }
            files.push((path, format!("{table}/{name}")));
        }
        files.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(Some(files))
    }
}

#[derive(Clone, Copy)]
enum Format {
    Csv,
    Parquet,
    Jsonl,
}

fn format_of(path: &Path) -> Option<Format> {
    match path.extension()?.to_str()?.to_ascii_lowercase().as_str() {
        "csv" => Some(Format::Csv),
        "parquet" => Some(Format::Parquet),
        "jsonl" | "ndjson" => Some(Format::Jsonl),
        _ => None,
    }
}

#[async_trait::async_trait]
impl Connector for FilesConnector {
    fn describe(&self) -> String {
        self.root.display().to_string()
    }

    async fn open(
        &self,
        table: &'static TableSchema,
        options: LoadOptions,
    ) -> Result<Option<Box<dyn TableStream>>, ConnectorError> {
        Ok(self
            .load(table, options)
            .await?
            .map(LoadedTable::into_stream))
    }

    async fn load(
        &self,
        table: &'static TableSchema,
        options: LoadOptions,
    ) -> Result<Option<LoadedTable>, ConnectorError> {
        self.load_keeping(table, options, None).await
    }
}

impl FilesConnector {
    /// Loads `table`, every record validated, keeping in its batches only the records
    /// of the ID numbers in `keep` when given (a check's members: the rules never read
    /// anyone else's records).
    pub async fn load_keeping(
        &self,
        table: &'static TableSchema,
        options: LoadOptions,
        keep: Option<Arc<HashSet<String>>>,
    ) -> Result<Option<LoadedTable>, ConnectorError> {
        let Some(files) = self.find(&table.table)? else {
            return Ok(None);
        };
        let mapping = self.mapping.table(table);
        tokio::task::spawn_blocking(move || load_files(table, mapping, &files, options, keep))
            .await
            .map_err(|e| ConnectorError::Arrow {
                table: table.table.clone(),
                message: e.to_string(),
            })?
            .map(Some)
    }
}

/// Loads `files` (path, label) of one table synchronously.
pub fn load_files(
    table: &'static TableSchema,
    mapping: TableMapping,
    files: &[(PathBuf, String)],
    options: LoadOptions,
    keep: Option<Arc<HashSet<String>>>,
) -> Result<LoadedTable, ConnectorError> {
    let mut b = TableBuilder::new(table, options.reference_date).with_mapping(mapping);
    if let Some(ids) = keep {
        b = b.keeping(ids);
    }
    for (path, label) in files {
        let shown = path.display().to_string();
        match format_of(path) {
            Some(Format::Csv) => load_csv(&mut b, path, label)?,
            Some(Format::Jsonl) => load_jsonl(&mut b, path, label)?,
            Some(Format::Parquet) => load_parquet(&mut b, path, label)?,
            None => {
                tracing::warn!(file = %shown, "not a table file; listed in data quality");
                b.push_stray_file(label);
            }
        }
    }
    let (usable, latest, earliest) = (b.usable, b.latest, b.earliest);
    let (batches, problems, rows_read) = b.finish().map_err(|e| ConnectorError::Arrow {
        table: table.table.clone(),
        message: e.to_string(),
    })?;
    Ok(LoadedTable {
        schema: table,
        batches,
        problems,
        files: files.iter().map(|f| f.1.clone()).collect(),
        rows_read,
        usable,
        latest,
        earliest,
    })
}

fn arrow_err(
    table: &TableSchema,
) -> impl Fn(datafusion::arrow::error::ArrowError) -> ConnectorError + '_ {
    move |e| ConnectorError::Arrow {
        table: table.table.clone(),
        message: e.to_string(),
    }
}

fn load_csv(b: &mut TableBuilder, path: &Path, label: &str) -> Result<(), ConnectorError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ConnectorError::Io {
        path: shown.clone(),
        source,
    })?;
    let (text, _) = decode_text(&bytes).ok_or_else(|| ConnectorError::Encoding {
        path: shown.clone(),
    })?;
    match load_csv_text(b, &text, label) {
        // An empty file delivers no record: with nothing else, the table counts as
        // absent (SPEC §2), never as proof that nobody earns or owns anything.
        Ok(()) | Err(CsvTextError::NoHeader) => Ok(()),
        Err(CsvTextError::Duplicate(headers)) => Err(ConnectorError::DuplicateHeaders {
            path: shown,
            headers,
        }),
        Err(CsvTextError::Arrow(e)) => Err(ConnectorError::Arrow {
            table: label.to_owned(),
            message: e.to_string(),
        }),
    }
}

/// Why CSV text could not be loaded at all.
#[derive(Debug)]
pub enum CsvTextError {
    /// No header row.
    NoHeader,
    /// Header names given more than once (listed).
    Duplicate(String),
    /// Building Arrow arrays failed.
    Arrow(datafusion::arrow::error::ArrowError),
}

/// Feeds decoded CSV text (header row first) into `b`, one problem per bad record.
pub fn load_csv_text(b: &mut TableBuilder, text: &str, label: &str) -> Result<(), CsvTextError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match rdr.headers() {
        Ok(h) if !h.is_empty() && !(h.len() == 1 && h[0].trim().is_empty()) => h
            .iter()
            .map(|s| fold_trim(s).to_ascii_lowercase())
            .collect(),
        _ => return Err(CsvTextError::NoHeader),
    };
    let mut repeated: Vec<&str> = headers
        .iter()
        .enumerate()
        .filter(|(i, h)| !h.is_empty() && headers[..*i].contains(h))
        .map(|(_, h)| h.as_str())
        .collect();
    repeated.dedup();
    if !repeated.is_empty() {
        return Err(CsvTextError::Duplicate(repeated.join(", ")));
    }
    let schema = b.schema();
    let pos: Vec<Option<usize>> = schema
        .columns
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let field = fold_trim(b.field(i)).to_ascii_lowercase();
            headers.iter().position(|h| *h == field)
        })
        .collect();
    let mut record = csv::StringRecord::new();
    // Rows as a spreadsheet shows the file: the header is row 1, the first record row 2,
    // an empty line (which the reader skips) a row too.
    let mut row: u64 = 1;
    let mut lines = crate::text::Lines::new(text);
    loop {
        let read = rdr.read_record(&mut record);
        let at = match &read {
            Ok(true) => record.position().map(|p| p.byte()),
            Err(e) => e.position().map(|p| p.byte()),
            Ok(false) => None,
        };
        row = at.map_or(row + 1, |b| lines.line_of(b));
        match read {
            Ok(false) => break,
            Ok(true) => {
                if record.len() > headers.len() {
                    let raw: Vec<&str> = record.iter().collect();
                    b.push_unreadable(
                        label,
                        row,
                        "invalid_record",
                        format!(
                            "row has {} fields, the header has {}",
                            record.len(),
                            headers.len()
                        ),
                        &raw.join(","),
                    );
                    continue;
                }
                b.push_row(
                    label,
                    row,
                    |i| match pos[i].and_then(|p| record.get(p)) {
                        Some(s) => Cell::Text(s),
                        None => Cell::Null,
                    },
                    |i| pos[i].is_none(),
                )
                .map_err(CsvTextError::Arrow)?;
            }
            Err(e) => {
                b.push_unreadable(
                    label,
                    row,
                    "invalid_record",
                    format!("unreadable CSV record: {e}"),
                    "",
                );
            }
        }
    }
    Ok(())
}

fn load_jsonl(b: &mut TableBuilder, path: &Path, label: &str) -> Result<(), ConnectorError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| ConnectorError::Io {
        path: shown.clone(),
        source,
    })?;
    let (text, _) = decode_text(&bytes).ok_or(ConnectorError::Encoding { path: shown })?;
    let schema = b.schema();
    for (i, line) in text.lines().enumerate() {
        let row = i as u64 + 1;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<&RawValue>(line) {
            Ok(raw) => push_record(b, label, row, raw).map_err(arrow_err(schema))?,
            Err(e) => b.push_unreadable(
                label,
                row,
                "invalid_json",
                format!("line is not a JSON object: {e}"),
                line,
            ),
        }
    }
    Ok(())
}

/// A typed view of one Parquet column.
enum ColView<'a> {
    Str(&'a StringArray),
    LargeStr(&'a LargeStringArray),
    StrView(&'a StringViewArray),
    Dec(&'a Decimal128Array, i8),
    Int(&'a dyn Array),
    Date(&'a Date32Array),
    Other(&'a dyn Array),
}

fn view(a: &dyn Array) -> ColView<'_> {
    match a.data_type() {
        DataType::Utf8 => ColView::Str(a.as_string::<i32>()),
        DataType::LargeUtf8 => ColView::LargeStr(a.as_string::<i64>()),
        DataType::Utf8View => ColView::StrView(a.as_string_view()),
        DataType::Decimal128(_, s) => ColView::Dec(a.as_primitive(), *s),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => ColView::Int(a),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 => ColView::Int(a),
        DataType::Date32 => ColView::Date(a.as_primitive()),
        _ => ColView::Other(a),
    }
}

fn int_at(a: &dyn Array, i: usize) -> i64 {
    match a.data_type() {
        DataType::Int8 => i64::from(a.as_primitive::<Int8Type>().value(i)),
        DataType::Int16 => i64::from(a.as_primitive::<Int16Type>().value(i)),
        DataType::Int32 => i64::from(a.as_primitive::<Int32Type>().value(i)),
        DataType::Int64 => a.as_primitive::<Int64Type>().value(i),
        DataType::UInt8 => i64::from(a.as_primitive::<UInt8Type>().value(i)),
        DataType::UInt16 => i64::from(a.as_primitive::<UInt16Type>().value(i)),
        _ => i64::from(a.as_primitive::<UInt32Type>().value(i)),
    }
}

impl ColView<'_> {
    fn cell(&self, i: usize) -> Cell<'_> {
        let arr: &dyn Array = match self {
            ColView::Str(a) => *a,
            ColView::LargeStr(a) => *a,
            ColView::StrView(a) => *a,
            ColView::Dec(a, _) => *a,
            ColView::Int(a) | ColView::Other(a) => *a,
            ColView::Date(a) => *a,
        };
        if arr.is_null(i) {
            return Cell::Null;
        }
        match self {
            ColView::Str(a) => Cell::Text(a.value(i)),
            ColView::LargeStr(a) => Cell::Text(a.value(i)),
            ColView::StrView(a) => Cell::Text(a.value(i)),
            ColView::Dec(a, s) => Cell::Decimal(a.value(i), *s),
            ColView::Int(a) => Cell::Int(int_at(*a, i)),
            ColView::Date(a) => Cell::Date32(a.value(i)),
            ColView::Other(a) if a.data_type().is_floating() => Cell::Other(BINARY_FLOAT),
            ColView::Other(_) => Cell::Other("value of an unsupported Parquet type"),
        }
    }
}

fn load_parquet(b: &mut TableBuilder, path: &Path, label: &str) -> Result<(), ConnectorError> {
    let shown = path.display().to_string();
    let file = File::open(path).map_err(|source| ConnectorError::Io {
        path: shown.clone(),
        source,
    })?;
    let perr = |e: datafusion::parquet::errors::ParquetError| ConnectorError::Parquet {
        path: shown.clone(),
        message: e.to_string(),
    };
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(perr)?;
    let names: Vec<&String> = builder.schema().fields().iter().map(|f| f.name()).collect();
    let mut repeated: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, n)| names[..*i].contains(n))
        .map(|(_, n)| n.as_str())
        .collect();
    repeated.dedup();
    if !repeated.is_empty() {
        return Err(ConnectorError::DuplicateHeaders {
            path: shown,
            headers: repeated.join(", "),
        });
    }
    // Row groups are validated on every core, a contiguous share each, and taken in in
    // file order: the same records, problems and row numbers as one pass.
    let metadata = builder.metadata().clone();
    let groups: Vec<i64> = metadata.row_groups().iter().map(|g| g.num_rows()).collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let shares = shares(&groups, cores);
    if shares.len() <= 1 {
        let reader = builder.with_batch_size(8192).build().map_err(perr)?;
        return push_batches(b, reader, &shown, label, 0);
    }
    drop(builder);
    let parts: Vec<Result<TableBuilder, ConnectorError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .iter()
            .map(|(range, first_row)| {
                let mut part = b.sibling();
                let (shown, range, first_row) = (&shown, range.clone(), *first_row);
                scope.spawn(move || {
                    let perr =
                        |e: datafusion::parquet::errors::ParquetError| ConnectorError::Parquet {
                            path: shown.clone(),
                            message: e.to_string(),
                        };
                    let file = File::open(path).map_err(|source| ConnectorError::Io {
                        path: shown.clone(),
                        source,
                    })?;
                    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
                        .map_err(perr)?
                        .with_row_groups(range.collect())
                        .with_batch_size(8192)
                        .build()
                        .map_err(perr)?;
                    push_batches(&mut part, reader, shown, label, first_row)?;
                    Ok(part)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    let schema = b.schema();
    for part in parts {
        b.absorb(part?).map_err(arrow_err(schema))?;
    }
    Ok(())
}

/// Contiguous ranges of row groups, about equal in rows, one per core at most, each with
/// the number of rows before it.
fn shares(groups: &[i64], cores: usize) -> Vec<(std::ops::Range<usize>, u64)> {
    let total: i64 = groups.iter().sum();
    let want = (total / cores.max(1) as i64).max(1);
    let mut out = Vec::new();
    let (mut start, mut rows, mut before) = (0, 0i64, 0u64);
    for (i, n) in groups.iter().enumerate() {
        rows += n;
        if rows >= want && out.len() + 1 < cores {
            out.push((start..i + 1, before));
            before += rows as u64;
            start = i + 1;
            rows = 0;
        }
    }
    if start < groups.len() {
        out.push((start..groups.len(), before));
    }
    out
}

/// Validates every row `reader` yields into `b`, numbering rows from `first_row + 1`.
fn push_batches(
    b: &mut TableBuilder,
    reader: datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReader,
    shown: &str,
    label: &str,
    first_row: u64,
) -> Result<(), ConnectorError> {
    let schema = b.schema();
    let mut row: u64 = first_row;
    for batch in reader {
        let batch = batch.map_err(|e| ConnectorError::Parquet {
            path: shown.to_owned(),
            message: e.to_string(),
        })?;
        let idx: Vec<Option<usize>> = schema
            .columns
            .iter()
            .enumerate()
            .map(|(i, _)| batch.schema().index_of(b.field(i)).ok())
            .collect();
        let views: Vec<Option<ColView<'_>>> = idx
            .iter()
            .map(|i| i.map(|i| view(batch.column(i).as_ref())))
            .collect();
        for r in 0..batch.num_rows() {
            row += 1;
            b.push_row(
                label,
                row,
                |c| views[c].as_ref().map_or(Cell::Null, |v| v.cell(r)),
                |c| views[c].is_none(),
            )
            .map_err(arrow_err(schema))?;
        }
    }
    Ok(())
}
