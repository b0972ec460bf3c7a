//! `results.parquet`: the rows of `results.jsonl` for analysts — one row per household,
//! its figures as decimals, its flags nested with their evidence records.
//!
//! Columns: `household_id`, `region_code`, `area_type`, `aid_type`, `verdict`, `members`
//! (Int64), `per_capita_monthly_income`, `financial_assets`, `standard_monthly`
//! (Decimal128(20, 2)), `missing_sources`, `stale_sources` (List<Utf8>), and `flags`:
//! List<Struct{rule, severity, member, value, limit, evidence: List<Struct{table, file,
//! row (Int64), record}>}>. A flag's `value` and `limit` are the text `results.jsonl`
//! shows (`"84464.05"`, `"2"`, or a text value; null when it has none); an evidence
//! `record` is the record as a JSON object in text (each table has its own fields).

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, ListArray, RecordBatch, StringArray, StructArray,
};
use datafusion::arrow::buffer::OffsetBuffer;
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use serde_json::Value;

use super::files::{AtomicFile, OutputError, Staged};
use crate::verdict::{Evidence, Flag, HouseholdResult};

/// Money figures: yuan with 2 fraction digits.
const MONEY: DataType = DataType::Decimal128(20, 2);

fn text_list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// The item field of a list of structs with `fields`.
fn item_of(fields: Fields) -> Arc<Field> {
    Arc::new(Field::new("item", DataType::Struct(fields), true))
}

fn evidence_fields() -> Fields {
    Fields::from(vec![
        Field::new("table", DataType::Utf8, false),
        Field::new("file", DataType::Utf8, false),
        Field::new("row", DataType::Int64, false),
        Field::new("record", DataType::Utf8, false),
    ])
}

fn flag_fields() -> Fields {
    Fields::from(vec![
        Field::new("rule", DataType::Utf8, false),
        Field::new("severity", DataType::Utf8, false),
        Field::new("member", DataType::Utf8, true),
        Field::new("value", DataType::Utf8, true),
        Field::new("limit", DataType::Utf8, true),
        Field::new(
            "evidence",
            DataType::List(item_of(evidence_fields())),
            false,
        ),
    ])
}

/// The schema of `results.parquet`.
pub fn schema() -> Schema {
    Schema::new(vec![
        Field::new("household_id", DataType::Utf8, false),
        Field::new("region_code", DataType::Utf8, false),
        Field::new("area_type", DataType::Utf8, false),
        Field::new("aid_type", DataType::Utf8, false),
        Field::new("verdict", DataType::Utf8, false),
        Field::new("members", DataType::Int64, false),
        Field::new("per_capita_monthly_income", MONEY, true),
        Field::new("financial_assets", MONEY, true),
        Field::new("standard_monthly", MONEY, true),
        Field::new("missing_sources", text_list_type(), false),
        Field::new("stale_sources", text_list_type(), false),
        Field::new("flags", DataType::List(item_of(flag_fields())), false),
    ])
}

/// A figure as `results.jsonl` shows it, in text.
fn figure_text(v: &Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn strings<'a>(values: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(values.collect::<StringArray>())
}

/// Offsets of lists with the given lengths.
fn offsets(lengths: impl Iterator<Item = usize>) -> OffsetBuffer<i32> {
    OffsetBuffer::from_lengths(lengths)
}

/// Money text ("1794.97") as Decimal128(20, 2), exactly; text that is not a figure is an
/// error, never a silent null.
fn money(values: impl Iterator<Item = Option<String>>) -> Result<ArrayRef, ArrowError> {
    let text: StringArray = values.collect();
    cast_with_options(
        &text,
        &MONEY,
        &CastOptions {
            safe: false,
            ..Default::default()
        },
    )
}

fn text_lists(lists: &[&Vec<String>]) -> Result<ArrayRef, ArrowError> {
    let values = strings(
        lists
            .iter()
            .flat_map(|l| l.iter().map(|s| Some(s.as_str()))),
    );
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new("item", DataType::Utf8, true)),
        offsets(lists.iter().map(|l| l.len())),
        values,
        None,
    )?))
}

fn evidence_list(flags: &[&Flag]) -> Result<ArrayRef, ArrowError> {
    let all: Vec<&Evidence> = flags.iter().flat_map(|f| f.evidence.iter()).collect();
    let items = StructArray::try_new(
        evidence_fields(),
        vec![
            strings(all.iter().map(|e| Some(&*e.table))),
            strings(all.iter().map(|e| Some(&*e.file))),
            Arc::new(all.iter().map(|e| e.row).collect::<Int64Array>()),
            strings(all.iter().map(|e| Some(e.record.as_str()))),
        ],
        None,
    )?;
    Ok(Arc::new(ListArray::try_new(
        Arc::new(Field::new(
            "item",
            DataType::Struct(evidence_fields()),
            true,
        )),
        offsets(flags.iter().map(|f| f.evidence.len())),
        Arc::new(items),
        None,
    )?))
}

fn flag_list(results: &[HouseholdResult]) -> Result<ArrayRef, ArrowError> {
    let flags: Vec<&Flag> = results.iter().flat_map(|r| r.flags.iter()).collect();
    let values: Vec<Option<String>> = flags.iter().map(|f| figure_text(&f.value)).collect();
    let limits: Vec<Option<String>> = flags.iter().map(|f| figure_text(&f.limit)).collect();
    let items = StructArray::try_new(
        flag_fields(),
        vec![
            strings(flags.iter().map(|f| Some(f.rule.as_str()))),
            strings(flags.iter().map(|f| Some(f.severity.as_str()))),
            strings(flags.iter().map(|f| f.member.as_deref())),
            strings(values.iter().map(Option::as_deref)),
            strings(limits.iter().map(Option::as_deref)),
            evidence_list(&flags)?,
        ],
        None,
    )?;
    Ok(Arc::new(ListArray::try_new(
        item_of(flag_fields()),
        offsets(results.iter().map(|r| r.flags.len())),
        Arc::new(items),
        None,
    )?))
}

/// The results as one Arrow batch of [`schema`].
pub fn batch(results: &[HouseholdResult]) -> Result<RecordBatch, ArrowError> {
    let text = |f: fn(&HouseholdResult) -> &str| strings(results.iter().map(|r| Some(f(r))));
    let columns: Vec<ArrayRef> = vec![
        text(|r| &r.household_id),
        text(|r| &r.region_code),
        text(|r| &r.area_type),
        text(|r| &r.aid_type),
        text(|r| &r.verdict),
        Arc::new(results.iter().map(|r| r.members).collect::<Int64Array>()),
        money(
            results
                .iter()
                .map(|r| Some(r.per_capita_monthly_income.clone())),
        )?,
        money(results.iter().map(|r| Some(r.financial_assets.clone())))?,
        money(results.iter().map(|r| Some(r.standard_monthly.clone())))?,
        text_lists(
            &results
                .iter()
                .map(|r| &r.missing_sources)
                .collect::<Vec<_>>(),
        )?,
        text_lists(&results.iter().map(|r| &r.stale_sources).collect::<Vec<_>>())?,
        flag_list(results)?,
    ];
    RecordBatch::try_new(Arc::new(schema()), columns)
}

/// `results.parquet` being written: a row group per chunk of households, written out
/// as it comes (the writer never holds more than one chunk).
pub struct Writer(ArrowWriter<AtomicFile>);

impl Writer {
    /// Starts `dir/results.parquet`.
    pub fn create(dir: &Path) -> Result<Writer, OutputError> {
        let file = AtomicFile::create(dir, "results.parquet")?;
        let props = WriterProperties::builder()
            .set_compression(Compression::LZ4_RAW)
            .build();
        let path = dir.join("results.parquet");
        ArrowWriter::try_new(file, Arc::new(schema()), Some(props))
            .map(Writer)
            .map_err(|e| parquet_error(&path, e))
    }

    /// Adds one row group of `results`.
    pub fn add(&mut self, results: &[HouseholdResult]) -> Result<(), OutputError> {
        if results.is_empty() {
            return Ok(());
        }
        let io = |e: ArrowError| std::io::Error::other(e.to_string());
        let b = batch(results).map_err(|e| self.0.inner().error(io(e)))?;
        self.0
            .write(&b)
            .map_err(|e| self.0.inner().error(std::io::Error::other(e.to_string())))?;
        self.0
            .flush()
            .map_err(|e| self.0.inner().error(std::io::Error::other(e.to_string())))
    }

    /// Ends the file, synced, to be published.
    pub fn finish(self) -> Result<Staged, OutputError> {
        let file = self.0.into_inner().map_err(|e| OutputError::Write {
            path: "results.parquet".into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        file.finish()
    }
}

fn parquet_error(path: &Path, e: datafusion::parquet::errors::ParquetError) -> OutputError {
    OutputError::Write {
        path: path.display().to_string(),
        source: std::io::Error::other(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Array;

    use super::*;

    /// The money figures are exact decimals; text that is not one is refused.
    #[test]
    fn money_is_exact_and_never_silently_null() {
        let a = money(
            ["1794.97", "0.00", "84464.05"]
                .map(|s| Some(s.to_owned()))
                .into_iter(),
        )
        .unwrap();
        let a = a
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Decimal128Array>()
            .unwrap();
        assert_eq!(a.values().to_vec(), vec![179497, 0, 8446405]);
        assert!(money([Some("twelve".to_owned())].into_iter()).is_err());
    }
}
