//! Reading an applicant batch file (CSV in UTF-8/GBK, XLSX first sheet, JSON Lines)
//! into rows of raw text keyed by canonical column, with their file row numbers.

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::Path;

use calamine::{Data, Reader};
use hedui_connectors::text::{decode_text, fold_trim};
use serde_json::value::RawValue;

use super::{ApplicantsError, Column};

/// The format a batch file was read as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchFormat {
    /// Comma-separated values with a header row.
    Csv,
    /// Excel workbook, first sheet.
    Xlsx,
    /// One JSON object per line.
    Jsonl,
}

/// One row: its 1-based number (CSV data row, XLSX sheet row, JSONL line) and raw
/// values per canonical column (`None` = column absent or cell empty).
#[derive(Debug, Clone)]
pub struct RawRow {
    /// Row number as the clerk sees it.
    pub row: u64,
    /// Values in [`Column::ALL`] order.
    pub values: Vec<Option<String>>,
}

/// A batch file's rows, and which canonical columns its header has.
#[derive(Debug, Clone)]
pub struct RawBatch {
    /// Format detected.
    pub format: BatchFormat,
    /// Text encoding for CSV/JSONL (e.g. GBK).
    pub encoding: Option<String>,
    /// Whether each canonical column appears in the header.
    pub present: Vec<bool>,
    /// Data rows.
    pub rows: Vec<RawRow>,
}

fn detect(path: &Path, bytes: &[u8]) -> Option<BatchFormat> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("xlsx") | Some("xlsm") => return Some(BatchFormat::Xlsx),
        Some("csv") | Some("txt") => return Some(BatchFormat::Csv),
        Some("jsonl") | Some("ndjson") | Some("json") => return Some(BatchFormat::Jsonl),
        _ => {}
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return Some(BatchFormat::Xlsx);
    }
    let start = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    match start.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') => Some(BatchFormat::Jsonl),
        Some(_) => Some(BatchFormat::Csv),
        None => None,
    }
}

/// Maps a header cell (English or Chinese, any case, full-width folded) to its column.
fn header_column(h: &str) -> Option<Column> {
    let h = fold_trim(h);
    let lower = h.to_ascii_lowercase();
    Column::ALL
        .into_iter()
        .find(|c| lower == c.name() || h == c.chinese())
}

/// Reads a batch from `bytes`; `path` names it in errors and hints at the format.
pub fn read_batch(path: &Path, bytes: &[u8]) -> Result<RawBatch, ApplicantsError> {
    let shown = path.display().to_string();
    let unreadable = |why: String| ApplicantsError::Unreadable {
        path: shown.clone(),
        why,
    };
    let format = detect(path, bytes).ok_or_else(|| unreadable("the file is empty".into()))?;
    let (headers, rows, encoding): (Vec<String>, Vec<(u64, Vec<String>)>, Option<String>) =
        match format {
            BatchFormat::Csv => {
                let (text, enc) = decode_text(bytes).ok_or_else(|| {
                unreadable("it is not a CSV, XLSX or JSON Lines file (the text is neither UTF-8 nor GBK)".into())
            })?;
                let mut rdr = csv::ReaderBuilder::new()
                    .has_headers(false)
                    .flexible(true)
                    .from_reader(text.as_bytes());
                let mut it = rdr.records();
                let header = match it.next() {
                    Some(Ok(h)) => h.iter().map(str::to_owned).collect::<Vec<_>>(),
                    Some(Err(e)) => {
                        return Err(unreadable(format!("cannot read the header row: {e}")))
                    }
                    None => return Err(unreadable("the file has no header row".into())),
                };
                let mut rows = Vec::new();
                for (i, rec) in it.enumerate() {
                    let row = i as u64 + 1;
                    match rec {
                        Ok(r) => rows.push((row, r.iter().map(str::to_owned).collect())),
                        Err(e) => {
                            return Err(unreadable(format!("data row {row} is not valid CSV: {e}")))
                        }
                    }
                }
                (header, rows, Some(enc.to_string()))
            }
            BatchFormat::Xlsx => {
                let mut wb = calamine::open_workbook_auto_from_rs(Cursor::new(bytes))
                    .map_err(|e| unreadable(format!("not a readable XLSX workbook: {e}")))?;
                let range = wb
                    .worksheet_range_at(0)
                    .ok_or_else(|| unreadable("the workbook has no sheet".into()))?
                    .map_err(|e| unreadable(format!("cannot read the first sheet: {e}")))?;
                let first_row = range.start().map_or(0, |(r, _)| u64::from(r));
                let first_col = range.start().map_or(0, |(_, c)| c as usize);
                let mut it = range.rows().enumerate();
                let header = match it.next() {
                    Some((_, h)) => {
                        let mut v = vec![String::new(); first_col];
                        v.extend(h.iter().map(cell_text));
                        v
                    }
                    None => {
                        return Err(unreadable(
                            "the first sheet is empty (no header row)".into(),
                        ))
                    }
                };
                let mut rows = Vec::new();
                for (i, r) in it {
                    let cells: Vec<String> = std::iter::repeat_n(String::new(), first_col)
                        .chain(r.iter().map(cell_text))
                        .collect();
                    if cells.iter().all(|c| c.trim().is_empty()) {
                        continue;
                    }
                    // Sheet rows are 1-based: the header sits on sheet row first_row + 1.
                    rows.push((first_row + i as u64 + 1, cells));
                }
                (header, rows, None)
            }
            BatchFormat::Jsonl => {
                let (text, enc) = decode_text(bytes).ok_or_else(|| {
                    unreadable("it is not a JSON Lines file (neither UTF-8 nor GBK text)".into())
                })?;
                let mut keys: Vec<String> = Vec::new();
                let mut objs: Vec<(u64, BTreeMap<String, Box<RawValue>>)> = Vec::new();
                for (i, line) in text.lines().enumerate() {
                    if line.trim().is_empty() {
                        continue;
                    }
                    let obj: BTreeMap<String, Box<RawValue>> =
                        serde_json::from_str(line).map_err(|e| {
                            unreadable(format!("line {} is not a JSON object: {e}", i + 1))
                        })?;
                    for k in obj.keys() {
                        if !keys.contains(k) {
                            keys.push(k.clone());
                        }
                    }
                    objs.push((i as u64 + 1, obj));
                }
                if objs.is_empty() {
                    return Err(unreadable("the file has no records".into()));
                }
                let rows = objs
                    .into_iter()
                    .map(|(row, obj)| {
                        let vals = keys
                            .iter()
                            .map(|k| obj.get(k).map(|r| json_text(r.get())).unwrap_or_default())
                            .collect();
                        (row, vals)
                    })
                    .collect();
                (keys, rows, Some(enc.to_string()))
            }
        };
    let mapped: Vec<Option<Column>> = headers.iter().map(|h| header_column(h)).collect();
    if !mapped.contains(&Some(Column::HouseholdId)) {
        return Err(unreadable(
            "there is no household_id (申请编号) column".into(),
        ));
    }
    let present: Vec<bool> = Column::ALL
        .iter()
        .map(|c| mapped.contains(&Some(*c)))
        .collect();
    let rows = rows
        .into_iter()
        .map(|(row, cells)| {
            let mut values = vec![None; Column::ALL.len()];
            for (cell, col) in cells.into_iter().zip(&mapped) {
                if let Some(col) = col {
                    let slot = &mut values[*col as usize];
                    if slot.is_none() {
                        *slot = Some(cell);
                    }
                }
            }
            RawRow { row, values }
        })
        .collect();
    Ok(RawBatch {
        format,
        encoding,
        present,
        rows,
    })
}

fn json_text(raw: &str) -> String {
    if raw.starts_with('"') {
        serde_json::from_str::<String>(raw).unwrap_or_default()
    } else if raw == "null" {
        String::new()
    } else {
        raw.to_owned()
    }
}

fn cell_text(d: &Data) -> String {
    match d {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => {
            if f.fract() == 0.0 && f.abs() < 1e15 {
                format!("{}", *f as i64)
            } else if f.abs() >= 1e15 {
                // Excel keeps 15 significant digits: an 18-digit ID typed as a number
                // has lost its last digits. Keep Excel's own notation so the clerk is
                // told so (see `applicants::excel_number_message`).
                format!("{f:E}")
            } else {
                format!("{f}")
            }
        }
        Data::Bool(b) => b.to_string(),
        Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
        Data::DateTime(dt) => dt.to_string(),
        Data::Error(e) => format!("#{e:?}"),
    }
}
