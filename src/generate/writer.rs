//! Streaming writers for generated tables: CSV (UTF-8), JSON Lines, Parquet — rows go
//! out as they are made, so a million-person city never sits in memory.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use chrono::NaiveDate;
use datafusion::arrow::array::{ArrayRef, Date32Builder, Decimal128Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use hedui_connectors::decimal::format_decimal;
use hedui_connectors::schema::{ColumnType, TableSchema};
use hedui_connectors::validate::date_to_days;

use crate::cli::SourceFormat;

/// A generated value.
#[derive(Debug, Clone)]
pub enum Val {
    /// Text.
    Text(String),
    /// Yuan scaled by 100.
    Money(i128),
    /// A date.
    Date(NaiveDate),
    /// A month (first day).
    Month(NaiveDate),
    /// Empty.
    Null,
    /// A deliberately malformed value, written as this text.
    Bad(String),
}

impl Val {
    fn text(&self) -> String {
        match self {
            Val::Text(s) | Val::Bad(s) => s.clone(),
            Val::Money(v) => format_decimal(*v, 2),
            Val::Date(d) => d.format("%Y-%m-%d").to_string(),
            Val::Month(d) => d.format("%Y-%m").to_string(),
            Val::Null => String::new(),
        }
    }
}

enum ColBuf {
    Str(StringBuilder),
    Dec(Decimal128Builder),
    Date(Date32Builder),
}

enum Kind {
    Csv(csv::Writer<BufWriter<File>>),
    Jsonl(BufWriter<File>),
    Parquet {
        writer: ArrowWriter<File>,
        schema: SchemaRef,
        cols: Vec<ColBuf>,
        pending: usize,
    },
}

/// Writes one canonical table.
pub struct TableWriter {
    table: &'static TableSchema,
    kind: Kind,
    /// Rows written.
    pub rows: u64,
}

/// The Parquet schema of a generated table: decimals, dates as date32, the rest strings.
fn parquet_schema(t: &TableSchema) -> SchemaRef {
    Arc::new(Schema::new(
        t.columns
            .iter()
            .map(|c| {
                let dt = match c.ty {
                    ColumnType::Money | ColumnType::Decimal => DataType::Decimal128(18, 2),
                    ColumnType::Date => DataType::Date32,
                    _ => DataType::Utf8,
                };
                Field::new(&c.name, dt, true)
            })
            .collect::<Vec<_>>(),
    ))
}

impl TableWriter {
    /// Creates `dir/TABLE.ext`.
    pub fn create(
        dir: &Path,
        table: &'static TableSchema,
        format: SourceFormat,
    ) -> std::io::Result<Self> {
        let ext = match format {
            SourceFormat::Csv => "csv",
            SourceFormat::Jsonl => "jsonl",
            SourceFormat::Parquet => "parquet",
        };
        let file = File::create(dir.join(format!("{}.{ext}", table.table)))?;
        let kind = match format {
            SourceFormat::Csv => {
                let mut w = csv::Writer::from_writer(BufWriter::new(file));
                w.write_record(table.columns.iter().map(|c| c.name.as_str()))?;
                Kind::Csv(w)
            }
            SourceFormat::Jsonl => Kind::Jsonl(BufWriter::new(file)),
            SourceFormat::Parquet => {
                let schema = parquet_schema(table);
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .set_max_row_group_row_count(Some(256 * 1024))
                    .build();
                let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
                    .map_err(std::io::Error::other)?;
                let cols = Self::fresh(&schema);
                Kind::Parquet {
                    writer,
                    schema,
                    cols,
                    pending: 0,
                }
            }
        };
        Ok(TableWriter {
            table,
            kind,
            rows: 0,
        })
    }

    fn fresh(schema: &SchemaRef) -> Vec<ColBuf> {
        schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Utf8 => ColBuf::Str(StringBuilder::new()),
                DataType::Date32 => ColBuf::Date(Date32Builder::new()),
                dt => ColBuf::Dec(Decimal128Builder::new().with_data_type(dt.clone())),
            })
            .collect()
    }

    /// Writes one row (values in canonical column order).
    pub fn row(&mut self, vals: &[Val]) -> std::io::Result<()> {
        self.rows += 1;
        match &mut self.kind {
            Kind::Csv(w) => w.write_record(vals.iter().map(Val::text))?,
            Kind::Jsonl(w) => {
                let mut line = String::from("{");
                let mut first = true;
                for (c, v) in self.table.columns.iter().zip(vals) {
                    let json = match v {
                        // Every other null is left out, the rest written as null: both mean empty.
                        Val::Null if self.rows % 2 == 0 => continue,
                        Val::Null => "null".to_owned(),
                        // Money alternates between JSON numbers and strings; both are exact.
                        Val::Money(m) if self.rows % 3 == 0 => format_decimal(*m, 2),
                        other => {
                            serde_json::to_string(&other.text()).map_err(std::io::Error::other)?
                        }
                    };
                    if !first {
                        line.push(',');
                    }
                    first = false;
                    line.push_str(&serde_json::to_string(&c.name).map_err(std::io::Error::other)?);
                    line.push(':');
                    line.push_str(&json);
                }
                line.push_str("}\n");
                w.write_all(line.as_bytes())?;
            }
            Kind::Parquet {
                writer,
                schema,
                cols,
                pending,
            } => {
                for (b, v) in cols.iter_mut().zip(vals) {
                    match (b, v) {
                        (ColBuf::Str(b), Val::Null) => b.append_null(),
                        (ColBuf::Str(b), v) => b.append_value(v.text()),
                        (ColBuf::Dec(b), Val::Money(m)) => b.append_value(*m),
                        (ColBuf::Dec(b), _) => b.append_null(),
                        (ColBuf::Date(b), Val::Date(d)) => b.append_value(date_to_days(*d)),
                        (ColBuf::Date(b), _) => b.append_null(),
                    }
                }
                *pending += 1;
                if *pending >= 65_536 {
                    Self::flush_parquet(writer, schema, cols)?;
                    *pending = 0;
                }
            }
        }
        Ok(())
    }

    fn flush_parquet(
        writer: &mut ArrowWriter<File>,
        schema: &SchemaRef,
        cols: &mut [ColBuf],
    ) -> std::io::Result<()> {
        let arrays: Vec<ArrayRef> = cols
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    ColBuf::Str(b) => Arc::new(b.finish()),
                    ColBuf::Dec(b) => Arc::new(b.finish()),
                    ColBuf::Date(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        let batch = RecordBatch::try_new(schema.clone(), arrays).map_err(std::io::Error::other)?;
        writer.write(&batch).map_err(std::io::Error::other)
    }

    /// Flushes and closes the file.
    pub fn finish(self) -> std::io::Result<u64> {
        match self.kind {
            Kind::Csv(mut w) => w.flush()?,
            Kind::Jsonl(mut w) => w.flush()?,
            Kind::Parquet {
                mut writer,
                schema,
                mut cols,
                pending,
            } => {
                if pending > 0 {
                    Self::flush_parquet(&mut writer, &schema, &mut cols)?;
                }
                writer.close().map_err(std::io::Error::other)?;
            }
        }
        Ok(self.rows)
    }
}
