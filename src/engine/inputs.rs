//! The applicant side of the rules as Arrow tables: accepted households, their members,
//! the per-household parameters table built from the policy (SPEC §6; no value is ever
//! pasted into SQL), the policy's lists, and which source tables the run has.

use std::sync::Arc;

use chrono::{Datelike, Months, NaiveDate};
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Decimal128Array, Int64Array, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;
use hedui_connectors::validate::date_to_days;

use crate::applicants::Household;
use crate::policy::{Given, Policy, PARAM_COLUMNS};

fn utf8(name: &str) -> Field {
    Field::new(name, DataType::Utf8, false)
}

fn dec(name: &str, scale: u8) -> Field {
    Field::new(name, DataType::Decimal128(18, scale as i8), false)
}

/// Name and schema of every input table the pipelines read besides the canonical ones.
pub fn input_schemas() -> Vec<(&'static str, SchemaRef)> {
    let s = |fields: Vec<Field>| Arc::new(Schema::new(fields));
    vec![
        (
            "households",
            s(vec![
                utf8("household_id"),
                utf8("region_code"),
                utf8("area_type"),
                utf8("aid_type"),
                utf8("authorization_id"),
                Field::new("members", DataType::Int64, false),
            ]),
        ),
        (
            "members",
            s(vec![
                utf8("household_id"),
                utf8("id_number"),
                utf8("name"),
                utf8("relation"),
                utf8("src_file"),
                Field::new("src_row", DataType::Int64, false),
            ]),
        ),
        ("params", params_schema()),
    ]
    .into_iter()
    .chain(list_schemas())
    .chain([
        ("present_tables", s(vec![utf8("table_name")])),
        ("run_sources", s(vec![utf8("source"), utf8("status")])),
        (
            "table_reach",
            s(vec![
                utf8("source"),
                utf8("table_name"),
                utf8("reach"),
                Field::new("earliest", DataType::Date32, false),
            ]),
        ),
    ])
    .collect()
}

/// The `params` table's columns: the household, its check date and income window, then
/// every scalar of [`PARAM_COLUMNS`] in order.
fn params_schema() -> SchemaRef {
    let mut fields = vec![
        utf8("household_id"),
        Field::new("as_of", DataType::Date32, false),
        Field::new("window_start", DataType::Date32, false),
        Field::new("window_end", DataType::Date32, false),
    ];
    for c in PARAM_COLUMNS {
        match c.given {
            Given::Count(_) => fields.push(Field::new(c.key, DataType::Int64, false)),
            Given::Figure(scale, _) => fields.push(dec(c.key, scale)),
            Given::Yes(_) => fields.push(Field::new(c.key, DataType::Boolean, false)),
            Given::List(..) => {}
        }
    }
    Arc::new(Schema::new(fields))
}

/// The list tables of [`PARAM_COLUMNS`]: (household_id, value).
fn list_schemas() -> Vec<(&'static str, SchemaRef)> {
    PARAM_COLUMNS
        .iter()
        .filter_map(|c| match c.given {
            Given::List(table, column, _) => Some((
                table,
                Arc::new(Schema::new(vec![utf8("household_id"), utf8(column)])),
            )),
            _ => None,
        })
        .collect()
}

fn schema_of(name: &str) -> SchemaRef {
    input_schemas()
        .into_iter()
        .find(|(n, _)| *n == name)
        .map(|(_, s)| s)
        .unwrap_or_else(|| Arc::new(Schema::empty()))
}

/// The income window of SPEC §5: `[first day of (D's month − months), first day of D's month)`.
pub fn income_window(as_of: NaiveDate, months: u32) -> (NaiveDate, NaiveDate) {
    let end = as_of.with_day(1).unwrap_or(as_of);
    let start = end.checked_sub_months(Months::new(months)).unwrap_or(end);
    (start, end)
}

fn strings(v: Vec<String>) -> ArrayRef {
    Arc::new(StringArray::from(v))
}

fn decimals(v: Vec<i128>, scale: u8) -> Result<ArrayRef, ArrowError> {
    Ok(Arc::new(
        Decimal128Array::from(v).with_precision_and_scale(18, scale as i8)?,
    ))
}

/// Builds every input table for `households` (accepted, each with its standard) checked
/// on `as_of`; `applicants_file` labels the members' evidence rows; `present` lists the
/// canonical tables delivered; `sources` gives each source's status; `reach` how far
/// back each dated table reaches (see `Sources::reach`).
pub fn input_tables(
    households: &[Household],
    policy: &Policy,
    as_of: NaiveDate,
    applicants_file: &str,
    present: &[String],
    sources: &[(String, String)],
    reach: &[(String, String, &'static str, i32)],
) -> Result<Vec<(&'static str, RecordBatch)>, ArrowError> {
    let mut out = vec![
        ("households", households_table(households)?),
        ("members", members_table(households, applicants_file)?),
        ("params", params_table(households, policy, as_of)?),
    ];
    out.extend(list_tables(households, policy)?);
    out.push((
        "present_tables",
        batch("present_tables", vec![strings(present.to_vec())])?,
    ));
    out.push((
        "run_sources",
        batch(
            "run_sources",
            vec![
                strings(sources.iter().map(|s| s.0.clone()).collect()),
                strings(sources.iter().map(|s| s.1.clone()).collect()),
            ],
        )?,
    ));
    out.push((
        "table_reach",
        batch(
            "table_reach",
            vec![
                strings(reach.iter().map(|r| r.0.clone()).collect()),
                strings(reach.iter().map(|r| r.1.clone()).collect()),
                strings(reach.iter().map(|r| r.2.to_owned()).collect()),
                Arc::new(Date32Array::from(
                    reach.iter().map(|r| r.3).collect::<Vec<_>>(),
                )),
            ],
        )?,
    ));
    Ok(out)
}

/// A run table `name` with `cols` in its schema's order.
fn batch(name: &'static str, cols: Vec<ArrayRef>) -> Result<RecordBatch, ArrowError> {
    RecordBatch::try_new(schema_of(name), cols)
}

/// The households' ids, in order.
fn household_ids(households: &[Household]) -> Vec<String> {
    households.iter().map(|h| h.household_id.clone()).collect()
}

/// The `households` table: one row per accepted household.
fn households_table(households: &[Household]) -> Result<RecordBatch, ArrowError> {
    batch(
        "households",
        vec![
            strings(household_ids(households)),
            strings(households.iter().map(|h| h.region_code.clone()).collect()),
            strings(
                households
                    .iter()
                    .map(|h| h.area_type.code().to_owned())
                    .collect(),
            ),
            strings(
                households
                    .iter()
                    .map(|h| h.aid_type.code().to_owned())
                    .collect(),
            ),
            strings(
                households
                    .iter()
                    .map(|h| h.authorization_id.clone())
                    .collect(),
            ),
            Arc::new(Int64Array::from(
                households
                    .iter()
                    .map(|h| h.members.len() as i64)
                    .collect::<Vec<_>>(),
            )),
        ],
    )
}

/// The `members` table: one row per declared member, with its row in the batch file
/// (`applicants_file`) as the evidence of batch rules.
fn members_table(
    households: &[Household],
    applicants_file: &str,
) -> Result<RecordBatch, ArrowError> {
    let members: Vec<(&Household, &crate::applicants::Member)> = households
        .iter()
        .flat_map(|h| h.members.iter().map(move |m| (h, m)))
        .collect();
    batch(
        "members",
        vec![
            strings(
                members
                    .iter()
                    .map(|(h, _)| h.household_id.clone())
                    .collect(),
            ),
            strings(members.iter().map(|(_, m)| m.id_number.clone()).collect()),
            strings(members.iter().map(|(_, m)| m.name.clone()).collect()),
            strings(
                members
                    .iter()
                    .map(|(_, m)| m.relation.code().to_owned())
                    .collect(),
            ),
            strings(vec![applicants_file.to_owned(); members.len()]),
            Arc::new(Int64Array::from(
                members
                    .iter()
                    .map(|(_, m)| m.row as i64)
                    .collect::<Vec<_>>(),
            )),
        ],
    )
}

/// The `params` table: one row per household, its check date, income window, and every
/// scalar of [`PARAM_COLUMNS`] for the standard in force for it.
fn params_table(
    households: &[Household],
    policy: &Policy,
    as_of: NaiveDate,
) -> Result<RecordBatch, ArrowError> {
    let std_of = |h: &Household| &policy.standards[h.standard];
    let days = |d: NaiveDate| date_to_days(d);
    let windows: Vec<(NaiveDate, NaiveDate)> = households
        .iter()
        .map(|h| income_window(as_of, std_of(h).params.income_months))
        .collect();
    let n = households.len();
    let mut columns: Vec<ArrayRef> = vec![
        strings(household_ids(households)),
        Arc::new(Date32Array::from(vec![days(as_of); n])),
        Arc::new(Date32Array::from(
            windows.iter().map(|w| days(w.0)).collect::<Vec<_>>(),
        )),
        Arc::new(Date32Array::from(
            windows.iter().map(|w| days(w.1)).collect::<Vec<_>>(),
        )),
    ];
    for c in PARAM_COLUMNS {
        let each = households.iter();
        columns.push(match c.given {
            Given::Count(get) => Arc::new(Int64Array::from(
                each.map(|h| get(&std_of(h).params)).collect::<Vec<_>>(),
            )),
            Given::Figure(scale, get) => decimals(
                each.map(|h| get(std_of(h), h.area_type, h.aid_type))
                    .collect(),
                scale,
            )?,
            Given::Yes(get) => Arc::new(BooleanArray::from(
                each.map(|h| get(&std_of(h).params)).collect::<Vec<_>>(),
            )),
            Given::List(..) => continue,
        });
    }
    batch("params", columns)
}

/// The list tables of [`PARAM_COLUMNS`] (excluded hr kinds and tax categories, exempt
/// vehicle types): (household_id, value), a row per value.
fn list_tables(
    households: &[Household],
    policy: &Policy,
) -> Result<Vec<(&'static str, RecordBatch)>, ArrowError> {
    let std_of = |h: &Household| &policy.standards[h.standard];
    let mut out = Vec::new();
    for c in PARAM_COLUMNS {
        let Given::List(name, _, get) = c.given else {
            continue;
        };
        let pairs: Vec<(String, String)> = households
            .iter()
            .flat_map(|h| {
                get(&std_of(h).params)
                    .iter()
                    .map(move |v| (h.household_id.clone(), v.clone()))
            })
            .collect();
        out.push((
            name,
            batch(
                name,
                vec![
                    strings(pairs.iter().map(|p| p.0.clone()).collect()),
                    strings(pairs.into_iter().map(|p| p.1).collect()),
                ],
            )?,
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// D = 2026-11-22 with 12 months gives 2025-11 … 2026-10 (end exclusive).
    #[test]
    fn income_window_is_full_months_before_d() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap();
        let (s, e) = income_window(d, 12);
        assert_eq!(
            (s.to_string(), e.to_string()),
            ("2025-11-01".into(), "2026-11-01".into())
        );
        let (s, _) = income_window(NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), 6);
        assert_eq!(s.to_string(), "2025-07-01");
    }
}
