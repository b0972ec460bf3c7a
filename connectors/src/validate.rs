//! Record validation against a canonical schema: every raw cell either becomes a
//! typed Arrow value or the record becomes a [`Problem`] (SPEC §2: no lenient guessing).

use std::borrow::Cow;
use std::sync::Arc;

use chrono::{Datelike, NaiveDate};
use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use serde::Serialize;

use crate::decimal::{parse_decimal, DecimalError};
use crate::idnum::{mask_id, mask_ids_in, normalized_id};
use crate::mapping::TableMapping;
use crate::schema::{ColumnSpec, ColumnType, TableSchema, DECIMAL_PRECISION, DECIMAL_SCALE};
use crate::text::fold_trim;

/// Rows per record batch built by the loaders.
pub const BATCH_ROWS: usize = 65_536;

/// A raw value as a file format delivers it, before validation.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// Empty, `null` or absent.
    Null,
    /// Text (CSV field, JSON string, Parquet string).
    Text(&'a str),
    /// A JSON number, as its exact source text.
    Number(&'a str),
    /// A Parquet decimal: unscaled value and scale.
    Decimal(i128, i8),
    /// A Parquet integer.
    Int(i64),
    /// A Parquet date (days since 1970-01-01).
    Date32(i32),
    /// Any other type (boolean, object, list …), named.
    Other(&'static str),
}

/// How a binary floating-point value is described: never accepted, money and areas are
/// exact decimals (SPEC §2).
pub const BINARY_FLOAT: &str = "binary floating-point number (exact decimals are required)";

/// Every reason code a malformed record can carry.
pub const REASONS: &[&str] = &[
    "missing_value",
    "invalid_id_number",
    "invalid_date",
    "invalid_month",
    "invalid_number",
    "too_many_decimals",
    "out_of_range",
    "invalid_enum",
    "invalid_type",
    "invalid_json",
    "invalid_record",
    "unsupported_file",
];

/// The reason code spelled `text`, if it is one.
pub fn reason_code(text: &str) -> Option<&'static str> {
    REASONS.iter().find(|r| **r == text).copied()
}

/// One malformed source record (SPEC §2, §7 `data_quality.jsonl`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Problem {
    /// Canonical table.
    pub table: String,
    /// File, relative to its source.
    pub file: String,
    /// The row as a spreadsheet shows it (CSV: header = row 1, first record = 2), the line
    /// (JSONL) or the 1-based record (Parquet).
    pub row: u64,
    /// The first field found wrong ("" when the record as a whole is unreadable).
    pub field: String,
    /// Reason code, e.g. `invalid_date` (one of [`REASONS`]).
    pub reason: &'static str,
    /// The offending value as delivered (ID numbers masked).
    pub value: String,
    /// What is wrong, in words.
    pub message: String,
}

/// A column's last valid text and what it was (see [`TableBuilder::push_row`]).
#[derive(Default)]
struct Repeat {
    text: Vec<u8>,
    value: Repeated,
}

/// What a column's last valid text was.
#[derive(Default, Clone, Copy)]
enum Repeated {
    /// Nothing to reuse.
    #[default]
    Nothing,
    /// Its own value (an ID already canonical).
    AsIs,
    /// This date (days since 1970-01-01).
    Date(i32),
}

/// The most columns a canonical table has (a record's values are kept on the stack).
const MAX_COLUMNS: usize = 16;

/// A validated value (text borrowed from the delivered cell where it can be).
enum Typed<'a> {
    Str(Cow<'a, str>),
    Dec(i128),
    Date(i32),
    Null,
}

struct FieldError {
    reason: &'static str,
    message: String,
}

fn err(reason: &'static str, message: impl Into<String>) -> FieldError {
    debug_assert!(
        REASONS.contains(&reason),
        "reason {reason} missing from REASONS"
    );
    FieldError {
        reason,
        message: message.into(),
    }
}

/// Days from 0001-01-01 (CE) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

/// A date as Arrow Date32 days.
pub fn date_to_days(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

/// Arrow Date32 days as a date.
pub fn days_to_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days + EPOCH_DAYS_FROM_CE)
}

/// Parses exactly `YYYY-MM-DD`, a real calendar date.
pub fn parse_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    if !(b[..4]
        .iter()
        .chain(&b[5..7])
        .chain(&b[8..])
        .all(u8::is_ascii_digit))
    {
        return None;
    }
    NaiveDate::from_ymd_opt(
        s[..4].parse().ok()?,
        s[5..7].parse().ok()?,
        s[8..].parse().ok()?,
    )
}

/// Parses exactly `YYYY-MM` into the first day of that month.
pub fn parse_month(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 7 || b[4] != b'-' || !(b[..4].iter().chain(&b[5..]).all(u8::is_ascii_digit)) {
        return None;
    }
    NaiveDate::from_ymd_opt(s[..4].parse().ok()?, s[5..].parse().ok()?, 1)
}

fn cell_text(cell: &Cell<'_>) -> String {
    match cell {
        Cell::Null => String::new(),
        Cell::Text(s) | Cell::Number(s) => (*s).to_owned(),
        Cell::Decimal(v, s) => {
            if *s > 0 {
                crate::decimal::format_decimal(*v, *s as u8)
            } else {
                v.to_string()
            }
        }
        Cell::Int(v) => v.to_string(),
        Cell::Date32(d) => days_to_date(*d).map(|d| d.to_string()).unwrap_or_default(),
        Cell::Other(t) => format!("<{t}>"),
    }
}

fn validate_cell<'a>(
    col: &ColumnSpec,
    cell: &Cell<'a>,
    today: NaiveDate,
) -> Result<Typed<'a>, FieldError> {
    let cell = match cell {
        Cell::Text(s) if s.trim().is_empty() => &Cell::Null,
        other => other,
    };
    if let Cell::Null = cell {
        if let Some(d) = col.default_scaled() {
            return Ok(Typed::Dec(d));
        }
        return if col.required {
            Err(err("missing_value", "is empty"))
        } else {
            Ok(Typed::Null)
        };
    }
    if let Cell::Other(t) = cell {
        return Err(err(
            "invalid_type",
            format!("is a {t}, not a {:?} value", col.ty),
        ));
    }
    match col.ty {
        ColumnType::IdNumber => {
            let id = match cell {
                Cell::Text(s) | Cell::Number(s) => normalized_id(s, today),
                Cell::Int(v) => {
                    normalized_id(&v.to_string(), today).map(|c| Cow::Owned(c.into_owned()))
                }
                _ => return Err(err("invalid_id_number", "is not text")),
            };
            id.map(Typed::Str)
                .map_err(|e| err("invalid_id_number", e.to_string()))
        }
        ColumnType::Text | ColumnType::Name => match cell {
            Cell::Text(s) | Cell::Number(s) => {
                let v = if col.ty == ColumnType::Name {
                    fold_trim(s)
                } else {
                    Cow::Borrowed(s.trim())
                };
                Ok(Typed::Str(v))
            }
            Cell::Int(v) => Ok(Typed::Str(Cow::Owned(v.to_string()))),
            _ => Err(err("invalid_type", "is not text")),
        },
        ColumnType::Enum => match cell {
            Cell::Text(s) => {
                let s = s.trim();
                if col.values.iter().any(|v| v == s) {
                    Ok(Typed::Str(Cow::Borrowed(s)))
                } else {
                    Err(err(
                        "invalid_enum",
                        format!("is not one of {}", col.values.join(", ")),
                    ))
                }
            }
            _ => Err(err(
                "invalid_enum",
                format!("is not one of {}", col.values.join(", ")),
            )),
        },
        ColumnType::Money | ColumnType::Decimal => {
            let v = match cell {
                Cell::Text(s) | Cell::Number(s) => {
                    parse_decimal(s.trim(), DECIMAL_SCALE).map_err(|e| match e {
                        DecimalError::NotANumber => err("invalid_number", format!("{e}")),
                        DecimalError::TooPrecise(_) => err("too_many_decimals", format!("{e}")),
                        DecimalError::Overflow => err("out_of_range", format!("{e}")),
                    })?
                }
                Cell::Decimal(v, s) => from_scaled(*v, *s)?,
                Cell::Int(v) => i128::from(*v) * 100,
                _ => return Err(err("invalid_number", "is not a number")),
            };
            if let Some(min) = col.min_scaled() {
                if v < min {
                    return Err(err(
                        "out_of_range",
                        if min == 0 {
                            "is negative (refunds and corrections are netted out by the department, never by the hub)".to_owned()
                        } else {
                            format!("is below {}", col.min.as_deref().unwrap_or(""))
                        },
                    ));
                }
            }
            if let Some(max) = col.max_scaled() {
                if v > max {
                    return Err(err(
                        "out_of_range",
                        format!("is above {}", col.max.as_deref().unwrap_or("")),
                    ));
                }
            }
            Ok(Typed::Dec(v))
        }
        ColumnType::Date => match cell {
            Cell::Date32(d) => Ok(Typed::Date(*d)),
            Cell::Text(s) => parse_date(s.trim())
                .map(|d| Typed::Date(date_to_days(d)))
                .ok_or_else(|| err("invalid_date", "is not a calendar date written YYYY-MM-DD")),
            _ => Err(err("invalid_date", "is not a date written YYYY-MM-DD")),
        },
        ColumnType::Month => match cell {
            Cell::Text(s) => parse_month(s.trim())
                .map(|d| Typed::Date(date_to_days(d)))
                .ok_or_else(|| err("invalid_month", "is not a month written YYYY-MM")),
            _ => Err(err("invalid_month", "is not a month written YYYY-MM")),
        },
    }
}

fn from_scaled(v: i128, scale: i8) -> Result<i128, FieldError> {
    let target = DECIMAL_SCALE as i8;
    let out = if scale <= target {
        10i128
            .checked_pow((target - scale) as u32)
            .and_then(|p| v.checked_mul(p))
            .ok_or_else(|| err("out_of_range", "is too large"))?
    } else {
        let p = 10i128.pow((scale - target) as u32);
        if v % p != 0 {
            return Err(err(
                "too_many_decimals",
                format!("has more than {DECIMAL_SCALE} fraction digits"),
            ));
        }
        v / p
    };
    if out.abs() >= 10i128.pow(u32::from(DECIMAL_PRECISION)) {
        return Err(err("out_of_range", "is too large"));
    }
    Ok(out)
}

enum ColBuilder {
    Str(StringBuilder),
    Dec(Decimal128Builder),
    Date(Date32Builder),
}

/// The earlier of two dates, either possibly unknown.
pub fn earlier(a: Option<i32>, b: Option<i32>) -> Option<i32> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, None) => a,
        (None, b) => b,
    }
}

/// Builds canonical record batches from raw rows, collecting problems.
pub struct TableBuilder {
    schema: &'static TableSchema,
    today: NaiveDate,
    mapping: TableMapping,
    builders: Vec<ColBuilder>,
    files: StringBuilder,
    rows: Int64Builder,
    pending: usize,
    /// Only the records of these ID numbers are kept (all are validated).
    keep: Option<Arc<std::collections::HashSet<String>>>,
    repeat: Vec<Repeat>,
    id_column: Option<usize>,
    latest_column: Option<usize>,
    /// Valid records seen, kept or not.
    pub usable: u64,
    /// The latest date of the table's [`TableSchema::latest_column`] among the valid
    /// records (days since 1970-01-01).
    pub latest: Option<i32>,
    /// The earliest date of that column among the valid records: how far back the
    /// delivery reaches.
    pub earliest: Option<i32>,
    /// Finished batches.
    pub batches: Vec<RecordBatch>,
    /// Malformed records found so far.
    pub problems: Vec<Problem>,
    /// Records seen (good and bad).
    pub rows_read: u64,
}

impl TableBuilder {
    /// A builder for `schema`; `today` bounds ID birth dates.
    pub fn new(schema: &'static TableSchema, today: NaiveDate) -> Self {
        let mut b = TableBuilder {
            schema,
            today,
            mapping: TableMapping::identity(schema),
            builders: Vec::new(),
            files: StringBuilder::new(),
            rows: Int64Builder::new(),
            pending: 0,
            keep: None,
            repeat: (0..schema.columns.len())
                .map(|_| Repeat::default())
                .collect(),
            id_column: schema
                .columns
                .iter()
                .position(|c| c.ty == ColumnType::IdNumber && c.name == "id_number"),
            latest_column: schema.latest_column().map(|(i, _)| i),
            usable: 0,
            latest: None,
            earliest: None,
            batches: Vec::new(),
            problems: Vec::new(),
            rows_read: 0,
        };
        b.builders = b.fresh_builders();
        b
    }

    fn fresh_builders(&self) -> Vec<ColBuilder> {
        self.schema
            .columns
            .iter()
            .map(|c| match c.data_type() {
                DataType::Utf8 => ColBuilder::Str(StringBuilder::new()),
                DataType::Date32 => ColBuilder::Date(Date32Builder::new()),
                dt => ColBuilder::Dec(Decimal128Builder::new().with_data_type(dt)),
            })
            .collect()
    }

    /// Reads department field names and codes through `mapping` (SPEC §9).
    pub fn with_mapping(mut self, mapping: TableMapping) -> Self {
        self.mapping = mapping;
        self
    }

    /// Validates every record but keeps only those whose `id_number` is in `ids` (the
    /// members of a batch: a check never reads anyone else's records). The table's
    /// counts ([`TableBuilder::usable`], [`TableBuilder::latest`]) still cover every
    /// valid record.
    pub fn keeping(mut self, ids: Arc<std::collections::HashSet<String>>) -> Self {
        if self.id_column.is_some() {
            self.keep = Some(ids);
        }
        self
    }

    /// An empty builder of the same table, date, mapping and kept IDs: for a part of a
    /// delivery validated beside this one, then taken in with [`TableBuilder::absorb`].
    pub fn sibling(&self) -> TableBuilder {
        let b = TableBuilder::new(self.schema, self.today).with_mapping(self.mapping.clone());
        match &self.keep {
            Some(ids) => b.keeping(ids.clone()),
            None => b,
        }
    }

    /// Takes in `part`'s records and problems after this builder's own (the order of a
    /// delivery read part by part).
    pub fn absorb(&mut self, part: TableBuilder) -> Result<(), ArrowError> {
        self.flush()?;
        self.usable += part.usable;
        self.latest = self.latest.max(part.latest);
        self.earliest = earlier(self.earliest, part.earliest);
        let (batches, problems, rows_read) = part.finish()?;
        self.batches.extend(batches);
        self.problems.extend(problems);
        self.rows_read += rows_read;
        Ok(())
    }

    /// The table being built.
    pub fn schema(&self) -> &'static TableSchema {
        self.schema
    }

    /// The name under which a delivery carries canonical column `i` (its department
    /// field name, or the canonical name when unmapped).
    pub fn field(&self, i: usize) -> &str {
        self.mapping.field(i)
    }

    /// Records a record that could not be read at all (bad JSON, too many CSV fields).
    pub fn push_unreadable(
        &mut self,
        file: &str,
        row: u64,
        reason: &'static str,
        message: String,
        value: &str,
    ) {
        self.rows_read += 1;
        debug_assert!(
            REASONS.contains(&reason),
            "reason {reason} missing from REASONS"
        );
        // The raw record and the parser's message may quote ID numbers: masked (the
        // cut is made after masking, so no ID is split out of the mask's reach).
        let value: String = mask_ids_in(value).chars().take(200).collect();
        self.problems.push(Problem {
            table: self.schema.table.clone(),
            file: mask_ids_in(file).into_owned(),
            row,
            field: String::new(),
            reason,
            value,
            message: mask_ids_in(&message).into_owned(),
        });
    }

    /// Records a file that is not a table file at all (a stray file inside a `TABLE/`
    /// folder): a problem of the run's data quality, row 0, not a reason to stop.
    pub fn push_stray_file(&mut self, file: &str) {
        self.problems.push(Problem {
            table: self.schema.table.clone(),
            file: mask_ids_in(file).into_owned(),
            row: 0,
            field: String::new(),
            reason: "unsupported_file",
            value: String::new(),
            message: "not a table file (expected .csv, .parquet or .jsonl); not read".into(),
        });
    }

    /// Validates one record; `cell(i)` yields the raw value of canonical column `i`, and
    /// `absent(i)` says the file has no such column at all.
    pub fn push_row<'c>(
        &mut self,
        file: &str,
        row: u64,
        mut cell: impl FnMut(usize) -> Cell<'c>,
        absent: impl Fn(usize) -> bool,
    ) -> Result<(), ArrowError> {
        self.rows_read += 1;
        if self.schema.columns.len() > MAX_COLUMNS {
            return Err(ArrowError::InvalidArgumentError(format!(
                "table {} has more than {MAX_COLUMNS} columns",
                self.schema.table
            )));
        }
        // The record's typed values, borrowing the delivered text where they can.
        let mut values: [Typed<'_>; MAX_COLUMNS] = std::array::from_fn(|_| Typed::Null);
        for (i, col) in self.schema.columns.iter().enumerate() {
            let delivered = cell(i);
            // A department code listed in the mapping becomes its canonical value.
            let raw = match &delivered {
                Cell::Text(t) | Cell::Number(t) => self
                    .mapping
                    .code(i, t)
                    .map_or(delivered.clone(), Cell::Text),
                _ => delivered.clone(),
            };
            // The same ID or date text as the previous record's (exports repeat them row
            // after row): its value again, without validating it again.
            let text = match &raw {
                Cell::Text(t)
                    if matches!(
                        col.ty,
                        ColumnType::IdNumber | ColumnType::Date | ColumnType::Month
                    ) =>
                {
                    Some(*t)
                }
                _ => None,
            };
            if let (Some(t), Some(last)) = (text, self.repeat.get(i)) {
                if last.text == t.as_bytes() {
                    match last.value {
                        Repeated::AsIs => {
                            values[i] = Typed::Str(Cow::Borrowed(t));
                            continue;
                        }
                        Repeated::Date(d) => {
                            values[i] = Typed::Date(d);
                            continue;
                        }
                        Repeated::Nothing => {}
                    }
                }
            }
            match validate_cell(col, &raw, self.today) {
                Ok(v) => {
                    if let (Some(t), Some(last)) = (text, self.repeat.get_mut(i)) {
                        last.value = match &v {
                            Typed::Str(s) if s.as_ref() == t => Repeated::AsIs,
                            Typed::Date(d) => Repeated::Date(*d),
                            _ => Repeated::Nothing,
                        };
                        last.text.clear();
                        last.text.extend_from_slice(t.as_bytes());
                    }
                    values[i] = v
                }
                Err(e) => {
                    let mut value = cell_text(&delivered);
                    if col.ty == ColumnType::IdNumber {
                        value = mask_id(value.trim());
                    } else {
                        value = mask_ids_in(&value).into_owned();
                    }
                    let message = if absent(i) && e.reason == "missing_value" {
                        format!("column {} is absent from the file", col.name)
                    } else {
                        format!("{} {}", col.name, e.message)
                    };
                    self.problems.push(Problem {
                        table: self.schema.table.clone(),
                        file: mask_ids_in(file).into_owned(),
                        row,
                        field: col.name.clone(),
                        reason: e.reason,
                        value: value.chars().take(200).collect(),
                        message: mask_ids_in(&message).into_owned(),
                    });
                    return Ok(());
                }
            }
        }
        self.usable += 1;
        if let Some(Typed::Date(d)) = self.latest_column.and_then(|c| values.get(c)) {
            self.latest = self.latest.max(Some(*d));
            self.earliest = earlier(self.earliest, Some(*d));
        }
        if let (Some(keep), Some(c)) = (&self.keep, self.id_column) {
            let kept = matches!(values.get(c), Some(Typed::Str(id)) if keep.contains(id.as_ref()));
            if !kept {
                return Ok(());
            }
        }
        for (b, v) in self.builders.iter_mut().zip(values.iter()) {
            match (b, v) {
                (ColBuilder::Str(b), Typed::Str(s)) => b.append_value(s),
                (ColBuilder::Str(b), Typed::Null) => b.append_null(),
                (ColBuilder::Dec(b), Typed::Dec(d)) => b.append_value(*d),
                (ColBuilder::Dec(b), Typed::Null) => b.append_null(),
                (ColBuilder::Date(b), Typed::Date(d)) => b.append_value(*d),
                (ColBuilder::Date(b), Typed::Null) => b.append_null(),
                _ => {
                    return Err(ArrowError::InvalidArgumentError(
                        "value does not fit its column".into(),
                    ))
                }
            }
        }
        self.files.append_value(file);
        self.rows
            .append_value(i64::try_from(row).unwrap_or(i64::MAX));
        self.pending += 1;
        if self.pending >= BATCH_ROWS {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ArrowError> {
        if self.pending == 0 {
            return Ok(());
        }
        let mut cols: Vec<ArrayRef> = self
            .builders
            .iter_mut()
            .map(|b| -> ArrayRef {
                match b {
                    ColBuilder::Str(b) => Arc::new(b.finish()),
                    ColBuilder::Dec(b) => Arc::new(b.finish()),
                    ColBuilder::Date(b) => Arc::new(b.finish()),
                }
            })
            .collect();
        cols.push(Arc::new(self.files.finish()));
        cols.push(Arc::new(self.rows.finish()));
        self.batches
            .push(RecordBatch::try_new(self.schema.arrow_schema(), cols)?);
        self.pending = 0;
        Ok(())
    }

    /// Takes every valid record so far, the unfinished batch included, so a streaming
    /// reader can hand them on at a boundary it may resume from (a page).
    pub fn take_all(&mut self) -> Result<Vec<RecordBatch>, ArrowError> {
        self.flush()?;
        Ok(std::mem::take(&mut self.batches))
    }

    /// Takes the malformed records found so far.
    pub fn take_problems(&mut self) -> Vec<Problem> {
        std::mem::take(&mut self.problems)
    }

    /// Finishes the last batch.
    pub fn finish(mut self) -> Result<(Vec<RecordBatch>, Vec<Problem>, u64), ArrowError> {
        self.flush()?;
        Ok((self.batches, self.problems, self.rows_read))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::table;

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 22).unwrap()
    }

    /// Pushes `rows` of `f.csv` (numbered from 1) into `b`.
    fn push_all(b: &mut TableBuilder, rows: &[Vec<Cell<'static>>]) {
        for (i, r) in rows.iter().enumerate() {
            b.push_row(
                "f.csv",
                i as u64 + 1,
                |c| r.get(c).cloned().unwrap_or(Cell::Null),
                |_| false,
            )
            .unwrap();
        }
    }

    fn run(table_name: &str, rows: &[Vec<Cell<'static>>]) -> (usize, Vec<Problem>) {
        let mut b = TableBuilder::new(table(table_name).unwrap(), today());
        push_all(&mut b, rows);
        let (batches, problems, _) = b.finish().unwrap();
        (batches.iter().map(|b| b.num_rows()).sum(), problems)
    }

    /// A record's values live on the stack, up to [`MAX_COLUMNS`]: every canonical table
    /// fits.
    #[test]
    fn every_table_fits_the_record_values() {
        for t in crate::schema::tables() {
            assert!(
                t.columns.len() <= MAX_COLUMNS,
                "{} has too many columns",
                t.table
            );
        }
    }

    /// A check keeps only its members' records, but every record is validated and
    /// counted: the others' malformed records are still problems, and the table's valid
    /// count and latest period cover everyone (SPEC §7 summary).
    #[test]
    fn kept_ids_narrow_the_records_not_the_counts() {
        use Cell::*;
        let member = "11010519491231002X";
        let other = "110105194912310011";
        let t = table("hr_income").unwrap();
        let keep: std::collections::HashSet<String> = [member.to_owned()].into();
        let mut b = TableBuilder::new(t, today()).keeping(Arc::new(keep));
        let rows = [
            vec![Text(member), Text("2026-01"), Text("wage"), Text("3000.50")],
            vec![Text(other), Text("2026-03"), Text("wage"), Text("10.00")],
            vec![Text(other), Text("2026-02"), Text("wage"), Text("N/A")],
            // The member's ID as a clerk typed it: still the member.
            vec![
                Text(" 11010519491231002x "),
                Text("2026-02"),
                Text("wage"),
                Text("1"),
            ],
        ];
        push_all(&mut b, &rows);
        let sibling = b.sibling();
        assert!(
            sibling.keep.is_some(),
            "a part validated beside keeps the same IDs"
        );
        assert_eq!((b.usable, b.rows_read), (3, 4));
        assert_eq!(b.latest.and_then(days_to_date), parse_month("2026-03"));
        let (batches, problems, _) = b.finish().unwrap();
        let kept: Vec<i64> = batches
            .iter()
            .flat_map(|b| {
                b.column(b.num_columns() - 1)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Int64Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        assert_eq!(kept, [1, 4], "only the member's records are kept");
        assert_eq!(problems.len(), 1);
        assert_eq!((problems[0].row, problems[0].field.as_str()), (3, "amount"));
    }

    /// Records repeating the previous record's ID or month reuse its value: a legacy
    /// 15-digit ID is converted every time, and a text that differs is validated again.
    #[test]
    fn repeated_ids_and_months_keep_their_values() {
        use Cell::*;
        let t = table("hr_income").unwrap();
        let mut b = TableBuilder::new(t, today());
        let rows = [
            vec![
                Text("11010519491231002X"),
                Text("2026-01"),
                Text("wage"),
                Text("1"),
            ],
            vec![
                Text("11010519491231002X"),
                Text("2026-01"),
                Text("wage"),
                Text("2"),
            ],
            vec![
                Text("110105491231002"),
                Text("2026-02"),
                Text("wage"),
                Text("3"),
            ],
            vec![
                Text("110105491231002"),
                Text("2026-02"),
                Text("wage"),
                Text("4"),
            ],
            vec![
                Text("110105491231002"),
                Text("2026-13"),
                Text("wage"),
                Text("5"),
            ],
        ];
        push_all(&mut b, &rows);
        let (batches, problems, _) = b.finish().unwrap();
        let ids: Vec<String> = batches
            .iter()
            .flat_map(|b| {
                let a = b
                    .column(0)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::StringArray>()
                    .unwrap();
                a.iter().map(|v| v.unwrap().to_owned()).collect::<Vec<_>>()
            })
            .collect();
        let legacy = crate::idnum::normalize_id("110105491231002", today()).unwrap();
        assert_eq!(
            ids,
            [
                "11010519491231002X",
                "11010519491231002X",
                legacy.as_str(),
                legacy.as_str()
            ]
        );
        let periods: Vec<i32> = batches
            .iter()
            .flat_map(|b| {
                b.column(1)
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Date32Array>()
                    .unwrap()
                    .values()
                    .to_vec()
            })
            .collect();
        let month = |m: &str| date_to_days(parse_month(m).unwrap());
        assert_eq!(
            periods,
            [
                month("2026-01"),
                month("2026-01"),
                month("2026-02"),
                month("2026-02")
            ]
        );
        assert_eq!(problems.len(), 1);
        assert_eq!((problems[0].row, problems[0].field.as_str()), (5, "period"));
    }

    /// Bad dates, months, enums and amounts each make the record a problem naming the field.
    #[test]
    fn malformed_records_are_problems() {
        use Cell::*;
        let id = "11010519491231002X";
        let (ok, p) = run(
            "hr_income",
            &[
                vec![Text(id), Text("2026-01"), Text("wage"), Text("3000.50")],
                vec![Text(id), Text("2026-13"), Text("wage"), Text("1")],
                vec![Text(id), Text("2026-01"), Text("salary"), Text("1")],
                vec![Text(id), Text("2026-01"), Text("wage"), Text("N/A")],
                vec![Text(id), Text("2026-01"), Text("wage"), Text("1.2万")],
                vec![
                    Text("110105194912310021"),
                    Text("2026-01"),
                    Text("wage"),
                    Text("1"),
                ],
                vec![Text(id), Text("2026-01"), Text("wage"), Other(BINARY_FLOAT)],
                vec![Text(id), Text("2026-01"), Text("wage"), Number("68.27")],
                vec![Text(id), Text("2026-01"), Text("wage"), Text("-50000.00")],
            ],
        );
        assert_eq!(ok, 2);
        let got: Vec<(u64, &str, &str)> = p
            .iter()
            .map(|p| (p.row, p.field.as_str(), p.reason))
            .collect();
        assert_eq!(
            got,
            [
                (2, "period", "invalid_month"),
                (3, "kind", "invalid_enum"),
                (4, "amount", "invalid_number"),
                (5, "amount", "invalid_number"),
                (6, "id_number", "invalid_id_number"),
                (7, "amount", "invalid_type"),
                (9, "amount", "out_of_range"),
            ]
        );
        assert!(p[6].message.contains("negative"), "{}", p[6].message);
        assert_eq!(p[4].value, "110105********0021");
    }

    /// A record that cannot be read at all keeps its raw text and the parser's message,
    /// with every ID number in them masked.
    #[test]
    fn unreadable_records_are_masked() {
        let t = table("hr_income").unwrap();
        let mut b = TableBuilder::new(t, today());
        b.push_unreadable(
            "hr_income?cursor=11010519491231002X",
            3,
            "invalid_json",
            "invalid type: integer `110105194912310021`".into(),
            "11010519491231002X,2026-01,wage,1,2",
        );
        let (_, p, _) = b.finish().unwrap();
        let all = serde_json::to_string(&p).unwrap();
        assert!(!all.contains("19491231"), "{all}");
        assert_eq!(p[0].value, "110105********002X,2026-01,wage,1,2");
        assert_eq!(p[0].file, "hr_income?cursor=110105********002X");
    }

    /// Dates must be real and dashed; optional ones may be empty; share defaults to 1.
    #[test]
    fn dates_and_defaults() {
        use Cell::*;
        let id = "11010519491231002X";
        let (ok, p) = run(
            "property",
            &[
                vec![
                    Text(id),
                    Text("C1"),
                    Text("residential"),
                    Text("80"),
                    Null,
                    Text("2019-05-04"),
                    Text(""),
                ],
                vec![
                    Text(id),
                    Text("C2"),
                    Text("residential"),
                    Text("80"),
                    Text("1.5"),
                    Text("2019-05-04"),
                ],
                vec![
                    Text(id),
                    Text("C3"),
                    Text("residential"),
                    Text("80"),
                    Null,
                    Text("2026-02-30"),
                ],
                vec![
                    Text(id),
                    Text("C4"),
                    Text("residential"),
                    Text("80"),
                    Null,
                    Text("2019/05/04"),
                ],
                vec![
                    Text(id),
                    Text("C5"),
                    Text("residential"),
                    Decimal(801, 1),
                    Int(1),
                    Date32(0),
                ],
            ],
        );
        assert_eq!(ok, 2);
        let got: Vec<(u64, &str, &str)> = p
            .iter()
            .map(|p| (p.row, p.field.as_str(), p.reason))
            .collect();
        assert_eq!(
            got,
            [
                (2, "share", "out_of_range"),
                (3, "registered_on", "invalid_date"),
                (4, "registered_on", "invalid_date")
            ]
        );
    }
}
