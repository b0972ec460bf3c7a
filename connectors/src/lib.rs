//! hedui connectors: department feeds → canonical Arrow tables (SPEC §2).
//!
//! # Layout
//! - [`schema`]: the canonical tables, read from `schemas/*.toml`.
//! - [`validate`]: raw cells → typed Arrow columns or per-record [`Problem`]s.
//! - [`idnum`]: resident ID numbers (SPEC §4).
//! - [`decimal`]: exact decimal text ↔ scaled integers.
//! - [`text`]: full-width folding, UTF-8/GBK detection.
//! - [`mapping`]: department field names and codes → canonical columns and values.
//! - [`json`]: JSON records (JSON Lines, HTTP pages) → raw cells.
//! - [`files`]: the `files` connector (a folder in the §2 layout).
//! - [`http`]: the `http` connector (the §9 JSON protocol over HTTPS: snapshot pages
//!   and lookups by ID), with retries, back-off and `Retry-After`.
//!
//! # Adding a connector
//! 1. A module with a config struct and a type implementing [`Connector`].
//! 2. Feed each record's raw values to a [`validate::TableBuilder`] — never build
//!    canonical batches by hand, so every source is validated the same way.
//! 3. [`Connector::open`] returns a [`TableStream`] that hands on batches as they are
//!    built (a large table never needs to fit in memory), `Ok(None)` for a table the
//!    department does not deliver (the source is then *missing*), and an error for a
//!    delivery that cannot be used at all.

pub mod decimal;
pub mod files;
pub mod http;
pub mod idnum;
pub mod json;
pub mod mapping;
pub mod schema;
pub mod text;
pub mod validate;

use chrono::NaiveDate;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Date32Type;
use datafusion::arrow::record_batch::RecordBatch;

pub use files::FilesConnector;
pub use http::{Credentials, HttpConnector, HttpSource};
pub use schema::TableSchema;
pub use validate::Problem;

/// Errors that make a source delivery unusable as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The source folder does not exist or is not a folder.
    #[error("cannot read source folder {path}: it does not exist or is not a folder")]
    NotAFolder {
        /// the folder
        path: String,
    },
    /// An I/O failure on a file.
    #[error("cannot read {path}: {source}")]
    Io {
        /// the file
        path: String,
        /// the cause
        source: std::io::Error,
    },
    /// More than one entry for one table.
    #[error("cannot load table {table}: several entries for it ({entries}); keep exactly one")]
    Ambiguous {
        /// the table
        table: String,
        /// the competing entries
        entries: String,
    },
    /// An entry named like a table file that is not a readable file (a folder called
    /// `residents.csv`): never taken as an absent table.
    #[error("cannot read {path}: it is named like a table file but is not a file")]
    NotAFile {
        /// the entry
        path: String,
    },
    /// A source file whose header names one column twice.
    #[error("cannot read {path}: the header names {headers} more than once; keep one column each")]
    DuplicateHeaders {
        /// the file
        path: String,
        /// the repeated names
        headers: String,
    },
    /// A text file that is neither UTF-8 nor GBK.
    #[error("cannot read {path}: it is neither UTF-8 nor GBK text")]
    Encoding {
        /// the file
        path: String,
    },
    /// A Parquet file that cannot be decoded.
    #[error("cannot read Parquet file {path}: {message}")]
    Parquet {
        /// the file
        path: String,
        /// the decoder's message
        message: String,
    },
    /// An HTTP source that failed (after its retries, where retrying could help).
    #[error("cannot pull {table} from {url}: {message}")]
    Http {
        /// The source's base URL.
        url: String,
        /// The table being pulled.
        table: String,
        /// What went wrong, in words (never a token or an ID number).
        message: String,
    },
    /// An HTTP source that cannot be set up (credentials, certificates).
    #[error("cannot connect to {url}: {message}")]
    HttpSetup {
        /// The source's base URL.
        url: String,
        /// Why.
        message: String,
    },
    /// A department's object store that failed (files sources on an object-store prefix).
    #[error("cannot read files source {url}: {message}")]
    Store {
        /// The prefix URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A delivery without one usable record (empty, header-only or all malformed): not
    /// committed, so it never replaces a snapshot that holds evidence (SPEC §2).
    #[error("cannot take {table} from {source_name}: the delivery holds no usable record ({read} read, {problems} malformed); nothing committed, the previous snapshot stays current")]
    EmptyDelivery {
        /// The source.
        source_name: String,
        /// The table.
        table: String,
        /// Records read.
        read: u64,
        /// Malformed records among them.
        problems: u64,
    },
    /// A source asked to resume a pull it has no positions for.
    #[error("cannot resume the pull of {table} from {source_name}: it is always read whole")]
    CannotResume {
        /// The source.
        source_name: String,
        /// The table.
        table: String,
    },
    /// Building Arrow arrays failed.
    #[error("cannot build table {table}: {message}")]
    Arrow {
        /// the table
        table: String,
        /// the cause
        message: String,
    },
}

/// What a load needs to know about the run.
#[derive(Debug, Clone, Copy)]
pub struct LoadOptions {
    /// The check date D: ID birth dates after it are invalid.
    pub reference_date: NaiveDate,
}

/// One canonical table as a source delivered it.
#[derive(Debug, Clone)]
pub struct LoadedTable {
    /// The canonical table.
    pub schema: &'static TableSchema,
    /// Valid records, in the canonical Arrow schema (plus `src_file`, `src_row`).
    pub batches: Vec<RecordBatch>,
    /// Malformed records, kept out of `batches`.
    pub problems: Vec<Problem>,
    /// The files read, relative to the source.
    pub files: Vec<String>,
    /// Records read, good and bad.
    pub rows_read: u64,
    /// Valid records (also those not kept in `batches`, see
    /// [`FilesConnector::load_keeping`]).
    pub usable: u64,
    /// The latest date of the table's [`TableSchema::latest_column`] among the valid
    /// records (days since 1970-01-01).
    pub latest: Option<i32>,
    /// The earliest date of that column among the valid records (how far back the
    /// delivery reaches).
    pub earliest: Option<i32>,
}

impl LoadedTable {
    /// A table loaded whole (every valid record in `batches`): its counts taken from
    /// the batches.
    pub fn whole(
        schema: &'static TableSchema,
        batches: Vec<RecordBatch>,
        problems: Vec<Problem>,
        files: Vec<String>,
        rows_read: u64,
    ) -> Self {
        let usable = batches.iter().map(|b| b.num_rows() as u64).sum();
        let dates: Vec<_> = schema
            .latest_column()
            .map(|(i, _)| {
                batches
                    .iter()
                    .filter_map(|b| b.column(i).as_primitive_opt::<Date32Type>())
                    .collect()
            })
            .unwrap_or_default();
        let latest = dates
            .iter()
            .filter_map(|a| datafusion::arrow::compute::max(*a))
            .max();
        let earliest = dates
            .iter()
            .filter_map(|a| datafusion::arrow::compute::min(*a))
            .min();
        LoadedTable {
            schema,
            batches,
            problems,
            files,
            rows_read,
            usable,
            latest,
            earliest,
        }
    }

    /// Number of records held in `batches` (every valid record unless some were not
    /// kept, see [`LoadedTable::usable`]).
    pub fn rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }
}

/// What a finished [`TableStream`] leaves besides its batches.
#[derive(Debug, Clone, Default)]
pub struct StreamEnd {
    /// Malformed records, kept out of the batches.
    pub problems: Vec<Problem>,
    /// The files (or requests) read, relative to the source.
    pub files: Vec<String>,
    /// Records read, good and bad.
    pub rows_read: u64,
}

/// One canonical table being read, batch by batch.
#[async_trait::async_trait]
pub trait TableStream: Send {
    /// The next valid records in the canonical schema (possibly none yet); `None` once
    /// the table is complete.
    async fn next(&mut self) -> Result<Option<Vec<RecordBatch>>, ConnectorError>;

    /// The malformed records found since the last call (a stream that does not hand
    /// them on early returns them from `finish`).
    fn take_problems(&mut self) -> Vec<Problem> {
        Vec::new()
    }

    /// Where the stream stands after the last `next`, when a later pull can resume from
    /// there (an HTTP cursor): everything up to it has been handed on.
    fn position(&self) -> Option<String> {
        None
    }

    /// After `next` returned `None`: the malformed records not yet taken, files and counts.
    fn finish(self: Box<Self>) -> StreamEnd;
}

/// A table already loaded whole, as a stream of one step.
struct Loaded {
    table: Option<LoadedTable>,
    end: StreamEnd,
}

#[async_trait::async_trait]
impl TableStream for Loaded {
    async fn next(&mut self) -> Result<Option<Vec<RecordBatch>>, ConnectorError> {
        Ok(self.table.take().map(|t| {
            self.end = StreamEnd {
                problems: t.problems,
                files: t.files,
                rows_read: t.rows_read,
            };
            t.batches
        }))
    }

    fn finish(self: Box<Self>) -> StreamEnd {
        self.end
    }
}

impl LoadedTable {
    /// The table as a stream (for consumers written against [`TableStream`]).
    pub fn into_stream(self) -> Box<dyn TableStream> {
        Box::new(Loaded {
            table: Some(self),
            end: StreamEnd::default(),
        })
    }
}

/// A department feed that yields canonical tables.
#[async_trait::async_trait]
pub trait Connector: Send + Sync {
    /// A short name for messages (e.g. the source folder or URL).
    fn describe(&self) -> String;

    /// Starts reading one table; `Ok(None)` when the source does not deliver it.
    async fn open(
        &self,
        table: &'static TableSchema,
        options: LoadOptions,
    ) -> Result<Option<Box<dyn TableStream>>, ConnectorError>;

    /// Starts reading one table from a position a previous stream reported
    /// ([`TableStream::position`]); sources without positions refuse.
    async fn resume(
        &self,
        table: &'static TableSchema,
        options: LoadOptions,
        position: &str,
    ) -> Result<Box<dyn TableStream>, ConnectorError> {
        let _ = (options, position);
        Err(ConnectorError::CannotResume {
            source_name: self.describe(),
            table: table.table.clone(),
        })
    }

    /// Loads one table whole; `Ok(None)` when the source does not deliver it.
    async fn load(
        &self,
        table: &'static TableSchema,
        options: LoadOptions,
    ) -> Result<Option<LoadedTable>, ConnectorError> {
        let Some(mut stream) = self.open(table, options).await? else {
            return Ok(None);
        };
        let mut batches = Vec::new();
        let mut problems = Vec::new();
        while let Some(mut more) = stream.next().await? {
            batches.append(&mut more);
            problems.append(&mut stream.take_problems());
        }
        let mut end = stream.finish();
        problems.append(&mut end.problems);
        Ok(Some(LoadedTable::whole(
            table,
            batches,
            problems,
            end.files,
            end.rows_read,
        )))
    }
}
