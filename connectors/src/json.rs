//! JSON records (JSON Lines files, HTTP pages) → raw cells: strings are text, numbers
//! keep their exact source text (never a binary float), `null` or an omitted field is
//! empty (SPEC §2, §9). Shared by every connector that receives JSON.

use std::collections::BTreeMap;

use datafusion::arrow::error::ArrowError;
use serde_json::value::RawValue;

use crate::validate::{Cell, TableBuilder};

/// One JSON object, its values kept as their raw text.
pub type RawRecord<'a> = BTreeMap<String, &'a RawValue>;

/// Validates one JSON record into `b`: a value that is not a JSON object becomes an
/// unreadable record (`invalid_json`), anything else is validated field by field.
pub fn push_record(
    b: &mut TableBuilder,
    label: &str,
    row: u64,
    raw: &RawValue,
) -> Result<(), ArrowError> {
    let obj: RawRecord<'_> = match serde_json::from_str(raw.get()) {
        Ok(o) => o,
        Err(e) => {
            b.push_unreadable(
                label,
                row,
                "invalid_json",
                format!("record is not a JSON object: {e}"),
                raw.get(),
            );
            return Ok(());
        }
    };
    push_object(b, label, row, &obj)
}

/// Validates one decoded JSON object into `b`.
pub fn push_object(
    b: &mut TableBuilder,
    label: &str,
    row: u64,
    obj: &RawRecord<'_>,
) -> Result<(), ArrowError> {
    let schema = b.schema();
    let raws: Vec<Option<&str>> = (0..schema.columns.len())
        .map(|i| obj.get(b.field(i)).map(|r| r.get()))
        .collect();
    let strings: Vec<Option<String>> = raws
        .iter()
        .map(|r| {
            r.filter(|r| r.starts_with('"'))
                .and_then(|r| serde_json::from_str::<String>(r).ok())
        })
        .collect();
    b.push_row(
        label,
        row,
        |i| match raws[i] {
            None | Some("null") => Cell::Null,
            Some(r) if r.starts_with('"') => match &strings[i] {
                Some(s) => Cell::Text(s.as_str()),
                None => Cell::Other("malformed string"),
            },
            Some(r) if r.starts_with('-') || r.starts_with(|c: char| c.is_ascii_digit()) => {
                Cell::Number(r)
            }
            Some("true") | Some("false") => Cell::Other("boolean"),
            Some(r) if r.starts_with('[') => Cell::Other("list"),
            Some(_) => Cell::Other("object"),
        },
        |i| raws[i].is_none(),
    )
}
