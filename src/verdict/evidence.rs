//! Flags → the source records they rest on: one set-based join per source table between
//! the flags' evidence references (table, file, row) and the table, turned into JSON
//! records of the canonical columns (SPEC §7 `evidence`).

use std::sync::Arc;

use datafusion::common::HashMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type, Int64Type};
use hedui_connectors::decimal::format_decimal;
use hedui_connectors::schema::ColumnType;
use hedui_connectors::validate::days_to_date;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::engine::queries::evidence_queries;
use crate::engine::{EngineError, Runner};

/// Source records by table, file and row (looked up by borrowed names; the names kept
/// once, shared by every piece of evidence that cites them).
#[derive(Debug, Default)]
#[allow(clippy::type_complexity)]
pub struct EvidenceIndex(HashMap<Arc<str>, HashMap<Arc<str>, HashMap<i64, Record>>>);

/// A cited record with its table's and file's shared names.
pub type Cited<'a> = (&'a Arc<str>, &'a Arc<str>, &'a Record);

impl EvidenceIndex {
    /// The record of `table`'s `file` at `row`, with the shared names.
    pub fn get(&self, table: &str, file: &str, row: i64) -> Option<Cited<'_>> {
        let (t, files) = self.0.get_key_value(table)?;
        let (f, rows) = files.get_key_value(file)?;
        Some((t, f, rows.get(&row)?))
    }

    fn insert(&mut self, table: &str, file: &str, row: i64, record: Record) {
        let files = match self.0.get_mut(table) {
            Some(f) => f,
            None => self.0.entry(Arc::from(table)).or_default(),
        };
        let rows = match files.get_mut(file) {
            Some(r) => r,
            None => files.entry(Arc::from(file)).or_default(),
        };
        rows.insert(row, record);
    }
}

/// The canonical columns of one source record as a JSON object, rendered once from the
/// Arrow row (SPEC §7 `record`), shared by the flags that cite it and written into the
/// outputs as it is.
#[derive(Clone)]
pub struct Record(Arc<RawValue>);

impl Record {
    /// `{}`: a record the run could not find (never expected: a flag's reference comes
    /// from the same table).
    pub fn empty() -> Record {
        Record(Arc::from(
            RawValue::from_string("{}".to_owned()).expect("{} is JSON"),
        ))
    }

    /// The record as JSON text.
    pub fn as_str(&self) -> &str {
        self.0.get()
    }

    /// The record's fields (for the few views that show them one by one).
    pub fn fields(&self) -> Map<String, Value> {
        serde_json::from_str(self.0.get()).unwrap_or_default()
    }
}

impl PartialEq for Record {
    fn eq(&self, other: &Record) -> bool {
        self.as_str() == other.as_str()
    }
}

impl std::fmt::Debug for Record {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Record {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (*self.0).serialize(s)
    }
}

/// A batch of cited records: its table's label, the table's canonical columns, the
/// records (those columns, then `src_file` and `src_row`).
type Fetched = (String, Arc<[(String, ColumnType)]>, RecordBatch);

/// Fetches every record referenced by the run's `flags_found` table.
pub async fn fetch(runner: &Runner<'_>) -> Result<EvidenceIndex, EngineError> {
    let mut index = EvidenceIndex::default();
    for (label, sql, columns) in evidence_queries() {
        let columns: Arc<[(String, ColumnType)]> = columns.into();
        let fetched: Vec<Fetched> = runner
            .collect(&sql)
            .await?
            .into_iter()
            .map(|batch| (label.clone(), columns.clone(), batch))
            .collect();
        // Rendering the records is most of the work: on every core, off the async
        // threads; one table at a time, so only its records are held twice.
        index = tokio::task::spawn_blocking(move || index_into(index, &fetched))
            .await
            .map_err(|e| EngineError::DataFusion {
                what: "render the evidence records".into(),
                source: datafusion::error::DataFusionError::Internal(e.to_string()),
            })??;
    }
    Ok(index)
}

/// `index` with `fetched` (table label, its columns, a batch of its records) added: the
/// batches rendered on every core, a share each, then indexed.
fn index_into(mut index: EvidenceIndex, fetched: &[Fetched]) -> Result<EvidenceIndex, EngineError> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rendered: Vec<Result<Vec<Record>, EngineError>> = std::thread::scope(|scope| {
        let parts: Vec<_> = (0..cores)
            .map(|k| {
                scope.spawn(move || {
                    fetched
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| i % cores == k)
                        .map(|(i, (label, columns, batch))| (i, render(label, columns, batch)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all: Vec<(usize, Result<Vec<Record>, EngineError>)> = parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect();
        all.sort_by_key(|(i, _)| *i);
        all.into_iter().map(|(_, r)| r).collect()
    });
    for ((label, columns, batch), records) in fetched.iter().zip(rendered) {
        insert_records(&mut index, label, columns.len(), batch, records?);
    }
    Ok(index)
}

#[cfg(test)]
fn add_records(
    index: &mut EvidenceIndex,
    table: &str,
    columns: &[(String, ColumnType)],
    batch: &RecordBatch,
) -> Result<(), EngineError> {
    let records = render(table, columns, batch)?;
    insert_records(index, table, columns.len(), batch, records);
    Ok(())
}

/// Indexes `records`, rendered from `batch` (its canonical columns, then `src_file` and
/// `src_row`), by file and row.
fn insert_records(
    index: &mut EvidenceIndex,
    table: &str,
    n: usize,
    batch: &RecordBatch,
    records: Vec<Record>,
) {
    let files = batch.column(n).as_string::<i32>();
    let rows = batch.column(n + 1).as_primitive::<Int64Type>();
    for (r, record) in records.into_iter().enumerate() {
        index.insert(table, files.value(r), rows.value(r), record);
    }
}

/// Each record of `batch` rendered as the JSON object of its canonical `columns`.
fn render(
    table: &str,
    columns: &[(String, ColumnType)],
    batch: &RecordBatch,
) -> Result<Vec<Record>, EngineError> {
    // `{"name":` / `,"name":` of every column, escaped once.
    let keys: Vec<Vec<u8>> = columns
        .iter()
        .enumerate()
        .map(|(i, (name, _))| {
            let mut k = if i == 0 { b"{".to_vec() } else { b",".to_vec() };
            // Writing JSON into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut k, name);
            k.push(b':');
            k
        })
        .collect();
    let mut out = Vec::with_capacity(batch.num_rows());
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    for r in 0..batch.num_rows() {
        buf.clear();
        for (i, (_, ty)) in columns.iter().enumerate() {
            buf.extend_from_slice(&keys[i]);
            write_cell(&mut buf, batch.column(i).as_ref(), r, *ty);
        }
        buf.push(b'}');
        let bad = |e: String| EngineError::DataFusion {
            what: format!("render an evidence record of {table}"),
            source: datafusion::error::DataFusionError::Internal(e),
        };
        let text = String::from_utf8(buf.clone()).map_err(|e| bad(e.to_string()))?;
        let record = RawValue::from_string(text).map_err(|e| bad(e.to_string()))?;
        out.push(Record(Arc::from(record)));
    }
    Ok(out)
}

/// A cell as JSON: text as strings, decimals as exact strings, dates `YYYY-MM-DD`,
/// months `YYYY-MM`, empty as null.
fn write_cell(out: &mut Vec<u8>, a: &dyn Array, r: usize, ty: ColumnType) {
    use std::io::Write;
    if a.is_null(r) {
        out.extend_from_slice(b"null");
        return;
    }
    // Writing into a Vec cannot fail.
    let _ = match a.data_type() {
        DataType::Utf8 => serde_json::to_writer(&mut *out, a.as_string::<i32>().value(r))
            .map_err(std::io::Error::other),
        DataType::Decimal128(_, s) => write!(
            out,
            "\"{}\"",
            format_decimal(
                a.as_primitive::<Decimal128Type>().value(r),
                (*s).max(0) as u8
            )
        ),
        DataType::Date32 => match days_to_date(a.as_primitive::<Date32Type>().value(r)) {
            Some(d) if ty == ColumnType::Month => write!(out, "\"{}\"", d.format("%Y-%m")),
            Some(d) => write!(out, "\"{d}\""),
            None => write!(out, "\"\""),
        },
        DataType::Int64 => write!(out, "{}", a.as_primitive::<Int64Type>().value(r)),
        _ => write!(out, "null"),
    };
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, Date32Array, Decimal128Array, Int64Array, StringArray,
    };
    use hedui_connectors::schema::{SRC_FILE, SRC_ROW};
    use serde_json::json;

    use super::*;

    /// A record is rendered once, straight from Arrow: text escaped (quotes, backslashes,
    /// control characters a department may send), decimals exact with their scale, dates
    /// and months in their SPEC forms, empty cells null.
    #[test]
    fn records_render_as_the_json_of_their_canonical_columns() {
        let columns: Vec<(String, ColumnType)> = [
            ("name", ColumnType::Name),
            ("amount", ColumnType::Money),
            ("period", ColumnType::Month),
            ("paid_on", ColumnType::Date),
            ("note", ColumnType::Text),
        ]
        .iter()
        .map(|(c, t)| (c.to_string(), *t))
        .collect();
        let cols: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![Some("王\"小\\二\n"), Some("李四")])),
            Arc::new(
                Decimal128Array::from(vec![Some(-5), Some(123_450)])
                    .with_precision_and_scale(18, 2)
                    .unwrap(),
            ),
            // 2026-03-01 and 2026-03-15 as days since 1970-01-01.
            Arc::new(Date32Array::from(vec![Some(20_513), Some(20_513)])),
            Arc::new(Date32Array::from(vec![Some(20_527), None])),
            Arc::new(StringArray::from(vec![None, Some("")])),
            Arc::new(StringArray::from(vec!["a.csv", "b.csv"])),
            Arc::new(Int64Array::from(vec![2, 7])),
        ];
        let batch = RecordBatch::try_from_iter(
            [
                "name", "amount", "period", "paid_on", "note", SRC_FILE, SRC_ROW,
            ]
            .into_iter()
            .zip(cols),
        )
        .unwrap();
        let mut index = EvidenceIndex::default();
        add_records(&mut index, "hr_income", &columns, &batch).unwrap();
        let first = index.get("hr_income", "a.csv", 2).unwrap().2;
        let v: Value = serde_json::from_str(first.as_str()).unwrap();
        assert_eq!(
            v,
            json!({"name": "王\"小\\二\n", "amount": "-0.05", "period": "2026-03",
                   "paid_on": "2026-03-15", "note": null})
        );
        // Fields keep the canonical order.
        assert!(first.as_str().starts_with("{\"name\":"));
        let second = index.get("hr_income", "b.csv", 7).unwrap().2;
        assert_eq!(
            second.fields(),
            json!({"name": "李四", "amount": "1234.50", "period": "2026-03",
                   "paid_on": null, "note": ""})
            .as_object()
            .unwrap()
            .clone()
        );
        // Written into results as the object itself, not as a string.
        assert_eq!(
            serde_json::to_string(&vec![second.clone()]).unwrap(),
            format!("[{}]", second.as_str())
        );
    }
}
