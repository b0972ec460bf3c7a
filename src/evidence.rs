//! Flags → the source records they rest on: one set-based join per source table between
//! the flags' evidence references (table, file, row) and the table, turned into JSON
//! records of the canonical columns (SPEC §7 `evidence`).

use std::collections::HashMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type, Decimal128Type, Int64Type};
use hedui_connectors::decimal::format_decimal;
use hedui_connectors::schema::{self, ColumnType, SRC_FILE, SRC_ROW};
use hedui_connectors::validate::days_to_date;
use serde_json::{Map, Value};

use crate::engine::{EngineError, Runner, FLAGS_FOUND};

/// The pseudo-table of applicant rows used as evidence of batch rules.
pub const APPLICANTS_TABLE: &str = "applicants";

/// Source records by (table, file, row).
pub type EvidenceIndex = HashMap<(String, String, i64), Map<String, Value>>;

/// The evidence queries: per table (its label in flags, the table, its canonical
/// columns), the join of the flags' references with the table.
pub fn queries() -> Vec<(String, String, Vec<(String, ColumnType)>)> {
    let mut tables: Vec<(String, String, Vec<(String, ColumnType)>)> = schema::tables()
        .iter()
        .map(|t| {
            (
                t.table.clone(),
                t.table.clone(),
                t.columns.iter().map(|c| (c.name.clone(), c.ty)).collect(),
            )
        })
        .collect();
    tables.push((
        APPLICANTS_TABLE.into(),
        "members".into(),
        ["household_id", "id_number", "name", "relation"]
            .iter()
            .map(|c| (c.to_string(), ColumnType::Text))
            .collect(),
    ));
    tables
        .into_iter()
        .map(|(label, table, columns)| {
            let cols: Vec<String> = columns.iter().map(|(c, _)| format!("t.{c}")).collect();
            let sql = format!(
                "SELECT {}, t.{SRC_FILE}, t.{SRC_ROW} FROM {table} t \
                 JOIN (SELECT DISTINCT ev_file, ev_row FROM {FLAGS_FOUND} WHERE ev_table = '{label}') e \
                 ON t.{SRC_FILE} = e.ev_file AND t.{SRC_ROW} = e.ev_row",
                cols.join(", ")
            );
            (label, sql, columns)
        })
        .collect()
}

/// Fetches every record referenced by the run's `flags_found` table.
pub async fn fetch(runner: &Runner<'_>) -> Result<EvidenceIndex, EngineError> {
    let mut index = EvidenceIndex::new();
    for (label, sql, columns) in queries() {
        for batch in runner.collect(&sql).await? {
            add_records(&mut index, &label, &columns, &batch);
        }
    }
    Ok(index)
}

fn add_records(
    index: &mut EvidenceIndex,
    table: &str,
    columns: &[(String, ColumnType)],
    batch: &RecordBatch,
) {
    let n = columns.len();
    let files = batch.column(n).as_string::<i32>();
    let rows = batch.column(n + 1).as_primitive::<Int64Type>();
    for r in 0..batch.num_rows() {
        let mut rec = Map::new();
        for (i, (name, ty)) in columns.iter().enumerate() {
            rec.insert(name.clone(), cell_json(batch.column(i).as_ref(), r, *ty));
        }
        index.insert(
            (table.to_owned(), files.value(r).to_owned(), rows.value(r)),
            rec,
        );
    }
}

/// A cell as JSON: text as strings, decimals as exact strings, dates `YYYY-MM-DD`,
/// months `YYYY-MM`, empty as null.
pub fn cell_json(a: &dyn Array, r: usize, ty: ColumnType) -> Value {
    if a.is_null(r) {
        return Value::Null;
    }
    match a.data_type() {
        DataType::Utf8 => Value::String(a.as_string::<i32>().value(r).to_owned()),
        DataType::Decimal128(_, s) => Value::String(format_decimal(
            a.as_primitive::<Decimal128Type>().value(r),
            (*s).max(0) as u8,
        )),
        DataType::Date32 => {
            let d = days_to_date(a.as_primitive::<Date32Type>().value(r));
            let text = match (d, ty) {
                (Some(d), ColumnType::Month) => d.format("%Y-%m").to_string(),
                (Some(d), _) => d.to_string(),
                (None, _) => String::new(),
            };
            Value::String(text)
        }
        DataType::Int64 => Value::from(a.as_primitive::<Int64Type>().value(r)),
        _ => Value::Null,
    }
}
