//! The source records flags rest on (SPEC §7 `evidence`): each cited record rendered
//! once as the JSON object of its canonical columns, straight from the Arrow row the
//! engine's evidence join gave (see `engine::queries::evidence_queries`), and the index
//! by table, file and row through which a chunk's flags find theirs.

use std::sync::Arc;

use datafusion::common::HashMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type, Int64Type};
use hedui_connectors::decimal::format_decimal;
use hedui_connectors::schema::ColumnType;
use hedui_connectors::validate::days_to_date;
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

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

    /// Keeps `record` as `table`'s `file` at `row`.
    pub fn insert(&mut self, table: &str, file: &str, row: i64, record: Record) {
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

impl From<Box<RawValue>> for Record {
    fn from(raw: Box<RawValue>) -> Record {
        Record(Arc::from(raw))
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

/// Each record of `batch` rendered as the JSON object of its canonical `columns` (the
/// batch's first columns), as text.
pub fn render_text(columns: &[(String, ColumnType)], batch: &RecordBatch) -> StringArray {
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
    let mut out = StringBuilder::with_capacity(batch.num_rows(), batch.num_rows() * 160);
    let mut buf: Vec<u8> = Vec::with_capacity(256);
    for r in 0..batch.num_rows() {
        buf.clear();
        for (i, (_, ty)) in columns.iter().enumerate() {
            buf.extend_from_slice(&keys[i]);
            write_cell(&mut buf, batch.column(i).as_ref(), r, *ty);
        }
        buf.push(b'}');
        // Every piece written is UTF-8: the keys and strings as serde_json escapes
        // them, the rest ASCII.
        out.append_value(String::from_utf8_lossy(&buf));
    }
    out.finish()
}

#[cfg(test)]
fn add_records(
    index: &mut EvidenceIndex,
    table: &str,
    columns: &[(String, ColumnType)],
    batch: &RecordBatch,
) -> Result<(), String> {
    let n = columns.len();
    let text = render_text(columns, batch);
    let files = batch.column(n).as_string::<i32>();
    let rows = batch.column(n + 1).as_primitive::<Int64Type>();
    for r in 0..batch.num_rows() {
        let raw = RawValue::from_string(text.value(r).to_owned()).map_err(|e| e.to_string())?;
        index.insert(table, files.value(r), rows.value(r), Record::from(raw));
    }
    Ok(())
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
