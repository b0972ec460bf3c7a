//! The canonical tables of SPEC §2, read from `schemas/*.toml` (compiled in): the one
//! description of their columns, types, enums and required fields that the loaders,
//! the validation, the engine and the docs all use.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Deserialize;

use crate::decimal::parse_decimal;

/// Scale of every decimal column (money in yuan, areas in m², shares).
pub const DECIMAL_SCALE: u8 = 2;
/// Precision of every decimal column: `Decimal128(18, 2)`.
pub const DECIMAL_PRECISION: u8 = 18;
/// Provenance column: the file a record came from, relative to its source.
pub const SRC_FILE: &str = "src_file";
/// Provenance column: the row as a spreadsheet shows it (CSV: header = row 1, first record
/// = 2), the line (JSONL) or the 1-based record (Parquet).
pub const SRC_ROW: &str = "src_row";

/// The raw TOML files, one per canonical table.
const SCHEMA_FILES: [(&str, &str); 7] = [
    (
        "hr_income.toml",
        include_str!("../../schemas/hr_income.toml"),
    ),
    ("property.toml", include_str!("../../schemas/property.toml")),
    (
        "residents.toml",
        include_str!("../../schemas/residents.toml"),
    ),
    ("vehicles.toml", include_str!("../../schemas/vehicles.toml")),
    (
        "tax_income.toml",
        include_str!("../../schemas/tax_income.toml"),
    ),
    (
        "financial.toml",
        include_str!("../../schemas/financial.toml"),
    ),
    (
        "housing_fund.toml",
        include_str!("../../schemas/housing_fund.toml"),
    ),
];

/// The type of a canonical column, as written in `schemas/*.toml`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ColumnType {
    /// A resident ID, normalised per SPEC §4 (Utf8).
    IdNumber,
    /// Free text, trimmed (Utf8).
    Text,
    /// A person's name: full-width folded and trimmed (Utf8).
    Name,
    /// One of the column's `values` (Utf8).
    Enum,
    /// Yuan, at most 2 fraction digits (`Decimal128(18,2)`).
    Money,
    /// A non-money exact decimal with at most 2 fraction digits (`Decimal128(18,2)`).
    Decimal,
    /// `YYYY-MM-DD` (Date32).
    Date,
    /// `YYYY-MM`, held as the first day of the month (Date32).
    Month,
}

/// One column of a canonical table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnSpec {
    /// Canonical column name (SPEC §2).
    pub name: String,
    /// Column type.
    #[serde(rename = "type")]
    pub ty: ColumnType,
    /// Whether a record without this value is malformed (default true).
    #[serde(default = "default_required")]
    pub required: bool,
    /// The column's name for people (pages, reports, workbooks), in Chinese.
    pub label: String,
    /// Allowed values of an `enum` column.
    #[serde(default)]
    pub values: Vec<String>,
    /// The words for each of `values`, in order (in Chinese).
    #[serde(default)]
    pub value_labels: Vec<String>,
    /// Value taken when an optional column is empty (decimal text).
    #[serde(default)]
    pub default: Option<String>,
    /// Smallest allowed value of a decimal column (decimal text).
    #[serde(default)]
    pub min: Option<String>,
    /// Largest allowed value of a decimal column (decimal text).
    #[serde(default)]
    pub max: Option<String>,
    /// What the column holds.
    pub description: String,
}

fn default_required() -> bool {
    true
}

/// A canonical table (SPEC §2).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableSchema {
    /// Table name, e.g. `hr_income`.
    pub table: String,
    /// Source (department) the table belongs to: hr, housing, police, tax, bank, fund.
    pub source: String,
    /// What the table holds.
    pub description: String,
    /// Its name for people, in Chinese (reports, pages): `车辆登记`.
    pub label: String,
    /// Sort order of stored snapshots.
    #[serde(default)]
    pub order_by: Vec<String>,
    /// Columns in canonical order.
    #[serde(rename = "column")]
    pub columns: Vec<ColumnSpec>,
    #[serde(skip)]
    arrow: OnceLock<SchemaRef>,
}

impl ColumnSpec {
    /// The words for `value` of this column: its label if it is one of an enum's
    /// values, else the value as it is.
    pub fn value_label<'a>(&'a self, value: &'a str) -> &'a str {
        self.values
            .iter()
            .position(|v| v == value)
            .and_then(|i| self.value_labels.get(i))
            .map_or(value, String::as_str)
    }

    /// The Arrow type this column is held in.
    pub fn data_type(&self) -> DataType {
        match self.ty {
            ColumnType::IdNumber | ColumnType::Text | ColumnType::Name | ColumnType::Enum => {
                DataType::Utf8
            }
            ColumnType::Money | ColumnType::Decimal => {
                DataType::Decimal128(DECIMAL_PRECISION, DECIMAL_SCALE as i8)
            }
            ColumnType::Date | ColumnType::Month => DataType::Date32,
        }
    }

    /// `min` as a scaled integer.
    pub fn min_scaled(&self) -> Option<i128> {
        self.min
            .as_deref()
            .and_then(|m| parse_decimal(m, DECIMAL_SCALE).ok())
    }

    /// `max` as a scaled integer.
    pub fn max_scaled(&self) -> Option<i128> {
        self.max
            .as_deref()
            .and_then(|m| parse_decimal(m, DECIMAL_SCALE).ok())
    }

    /// `default` as a scaled integer.
    pub fn default_scaled(&self) -> Option<i128> {
        self.default
            .as_deref()
            .and_then(|m| parse_decimal(m, DECIMAL_SCALE).ok())
    }
}

impl TableSchema {
    /// The Arrow schema of loaded records: canonical columns, then `src_file`, `src_row`.
    pub fn arrow_schema(&self) -> SchemaRef {
        self.arrow
            .get_or_init(|| {
                let mut fields: Vec<Field> = self
                    .columns
                    .iter()
                    .map(|c| Field::new(&c.name, c.data_type(), !c.required || c.default.is_some()))
                    .collect();
                fields.push(Field::new(SRC_FILE, DataType::Utf8, false));
                fields.push(Field::new(SRC_ROW, DataType::Int64, false));
                Arc::new(Schema::new(fields))
            })
            .clone()
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnSpec> {
        self.columns.iter().find(|c| c.name == name)
    }

    /// The date column whose latest value says how recent a delivery is (`as_of`,
    /// `period` or `registered_on`; SPEC §7 summary), with its index.
    pub fn latest_column(&self) -> Option<(usize, &ColumnSpec)> {
        ["as_of", "period", "registered_on"]
            .into_iter()
            .find_map(|name| {
                self.columns
                    .iter()
                    .enumerate()
                    .find(|(_, c)| c.name == name)
            })
    }
}

/// All canonical tables, in SPEC §2 order.
pub fn tables() -> &'static [TableSchema] {
    static TABLES: OnceLock<Vec<TableSchema>> = OnceLock::new();
    TABLES.get_or_init(|| {
        SCHEMA_FILES
            .iter()
            .map(|(file, text)| {
                // The schema files are compiled in and checked by `schemas_are_consistent`;
                // a parse failure here is a build defect, not user input.
                toml::from_str::<TableSchema>(text)
                    .unwrap_or_else(|e| panic!("schemas/{file} is invalid: {e}"))
            })
            .collect()
    })
}

/// The canonical table called `name`.
pub fn table(name: &str) -> Option<&'static TableSchema> {
    tables().iter().find(|t| t.table == name)
}

/// The sources (departments), sorted, each with its tables.
pub fn sources() -> Vec<(&'static str, Vec<&'static TableSchema>)> {
    let mut out: Vec<(&'static str, Vec<&'static TableSchema>)> = Vec::new();
    for t in tables() {
        match out.iter_mut().find(|(s, _)| *s == t.source) {
            Some((_, v)) => v.push(t),
            None => out.push((t.source.as_str(), vec![t])),
        }
    }
    out.sort_by(|a, b| a.0.cmp(b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema parses, names its file's table, and its enums/decimal bounds are usable.
    #[test]
    fn schemas_are_consistent() {
        for (file, _) in SCHEMA_FILES {
            let t = table(file.trim_end_matches(".toml")).expect("table named after its file");
            assert!(t.column("id_number").is_some(), "{file} has id_number");
            assert!(
                !t.label.trim().is_empty() && !t.label.is_ascii(),
                "{file} has a Chinese label for people"
            );
            for c in &t.columns {
                assert_eq!(
                    c.ty == ColumnType::Enum,
                    !c.values.is_empty(),
                    "{file}.{}",
                    c.name
                );
                assert!(
                    !c.label.trim().is_empty() && !c.label.is_ascii(),
                    "{file}.{} has a Chinese label",
                    c.name
                );
                assert_eq!(
                    c.values.len(),
                    c.value_labels.len(),
                    "{file}.{}: one label per value",
                    c.name
                );
                assert_eq!(c.min.is_some(), c.min_scaled().is_some());
                assert_eq!(c.max.is_some(), c.max_scaled().is_some());
                assert_eq!(c.default.is_some(), c.default_scaled().is_some());
            }
        }
        let names: Vec<&str> = sources().iter().map(|(s, _)| *s).collect();
        assert_eq!(names, ["bank", "fund", "housing", "hr", "police", "tax"]);
    }

    /// SPEC §2: a negative amount, income, balance, monthly_deposit or value is a
    /// malformed record, so every money column is bounded below by 0.
    #[test]
    fn money_is_never_negative() {
        let mut money = Vec::new();
        for t in tables() {
            for c in t.columns.iter().filter(|c| c.ty == ColumnType::Money) {
                assert_eq!(
                    c.min_scaled(),
                    Some(0),
                    "{}.{} needs min = \"0\"",
                    t.table,
                    c.name
                );
                money.push(c.name.as_str());
            }
        }
        money.sort_unstable();
        money.dedup();
        assert_eq!(
            money,
            ["amount", "balance", "income", "monthly_deposit", "value"]
        );
    }
}
