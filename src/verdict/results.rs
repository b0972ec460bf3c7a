//! `results.jsonl`: the result object of one household (SPEC §7), assembled from the
//! pipelines' `household_results` and `flag_rows`, with evidence records attached.

use datafusion::arrow::array::{
    Array, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Int64Type};
use std::sync::Arc;

use datafusion::common::HashMap;
use hedui_connectors::decimal::{div_round_half_away, format_decimal};
use serde::Serialize;
use serde_json::Value;

use super::evidence::{EvidenceIndex, Record};
use crate::applicants::Household;

/// What a result says of the household it answers, from the batch.
#[derive(Debug, Clone)]
pub struct Declared {
    /// Application id.
    pub household_id: String,
    /// 6-digit region code.
    pub region_code: String,
    /// `urban` or `rural`.
    pub area_type: &'static str,
    /// `dibao`, `tekun` or `low_income`.
    pub aid_type: &'static str,
}

impl Declared {
    /// What `h` declares.
    pub fn of(h: &Household) -> Declared {
        Declared {
            household_id: h.household_id.clone(),
            region_code: h.region_code.clone(),
            area_type: h.area_type.code(),
            aid_type: h.aid_type.code(),
        }
    }
}

/// Scale of the pipelines' exact fractions (`DECIMAL(38, 6)`).
const FRACTION_SCALE: u32 = 6;

/// One source record a flag rests on.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Evidence {
    /// Canonical table (or `applicants`).
    #[serde(serialize_with = "shared_str")]
    #[schema(value_type = String)]
    pub table: Arc<str>,
    /// File, relative to its source.
    #[serde(serialize_with = "shared_str")]
    #[schema(value_type = String)]
    pub file: Arc<str>,
    /// Row in that file: as a spreadsheet shows it (header = row 1) for CSV and XLSX,
    /// the line for JSON Lines, the 1-based record for Parquet.
    pub row: i64,
    /// The canonical columns of the record.
    #[schema(value_type = Object)]
    pub record: Record,
}

/// A name shared by many pieces of evidence, written as the string it is.
fn shared_str<S: serde::Serializer>(s: &Arc<str>, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(s)
}

/// One finding.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Flag {
    /// Rule code, e.g. `income_over_limit`.
    pub rule: String,
    /// `disqualifying` or `review`.
    pub severity: String,
    /// The member's id_number for per-member rules, else null.
    pub member: Option<String>,
    /// The figure found. Each rule has one type: money and areas as decimal strings
    /// with 2 fraction digits (`income_over_limit`, `financial_assets_over_limit`,
    /// `residential_area_over_limit`, `vehicle_owned`), the number of properties as an
    /// integer (`residential_properties_over_limit`), the record's text or null for the
    /// identity and consistency rules.
    #[schema(schema_with = figure_schema)]
    pub value: Value,
    /// The limit it was compared with, of the same type as `value`.
    #[schema(schema_with = figure_schema)]
    pub limit: Value,
    /// The records it rests on.
    pub evidence: Vec<Evidence>,
}

/// The schema of a flag's `value` and `limit`: a decimal string, an integer, a text or
/// null (which one is fixed by the rule).
fn figure_schema() -> utoipa::openapi::schema::Schema {
    use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
    let one_of = OneOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .description(Some(
                    "money or area: a decimal string, 2 fraction digits; or a record's text",
                )),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::Integer)
                .description(Some("a count")),
        )
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build();
    Schema::OneOf(one_of)
}

/// The result of one accepted household (a line of `results.jsonl`).
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct HouseholdResult {
    /// Application id.
    pub household_id: String,
    /// 6-digit region code.
    pub region_code: String,
    /// `urban` or `rural`.
    pub area_type: String,
    /// `dibao`, `tekun` or `low_income`.
    pub aid_type: String,
    /// `eligible`, `review`, `incomplete` or `ineligible`.
    pub verdict: String,
    /// n, the declared members.
    pub members: i64,
    /// Household income over the window / (n × months), 2 decimals.
    pub per_capita_monthly_income: String,
    /// Counted financial assets, 2 decimals.
    pub financial_assets: String,
    /// S, the monthly standard for the region and area type.
    pub standard_monthly: String,
    /// Sources missing from this run, sorted.
    pub missing_sources: Vec<String>,
    /// Sources too old on D (lake reads), sorted.
    pub stale_sources: Vec<String>,
    /// Findings.
    pub flags: Vec<Flag>,
}

fn fraction(num: i128, den: i64) -> String {
    let den = i128::from(den.max(1)) * 10i128.pow(FRACTION_SCALE - 2);
    format_decimal(div_round_half_away(num, den), 2)
}

fn figure(unit: &str, num: Option<i128>, den: Option<i64>, text: Option<&str>) -> Value {
    match (unit, num) {
        ("money" | "area", Some(n)) => Value::String(fraction(n, den.unwrap_or(1))),
        ("count", Some(n)) => {
            Value::from(i64::try_from(n / 10i128.pow(FRACTION_SCALE)).unwrap_or(i64::MAX))
        }
        ("text", _) => text.map_or(Value::Null, |t| Value::String(t.to_owned())),
        _ => Value::Null,
    }
}

/// The columns of a `flags_found` batch (SPEC §5 flag rows).
struct FlagColumns<'a> {
    household: &'a StringArray,
    rule: &'a StringArray,
    severity: &'a StringArray,
    member: &'a StringArray,
    unit: &'a StringArray,
    value_num: &'a Decimal128Array,
    value_den: &'a Int64Array,
    value_text: &'a StringArray,
    limit_num: &'a Decimal128Array,
    limit_den: &'a Int64Array,
    ev_table: &'a StringArray,
    ev_file: &'a StringArray,
    ev_row: &'a Int64Array,
}

impl<'a> FlagColumns<'a> {
    fn of(b: &'a RecordBatch) -> Self {
        let s = |i: usize| b.column(i).as_string::<i32>();
        let dec = |i: usize| b.column(i).as_primitive::<Decimal128Type>();
        let int = |i: usize| b.column(i).as_primitive::<Int64Type>();
        FlagColumns {
            household: s(0),
            rule: s(1),
            severity: s(2),
            member: s(3),
            unit: s(4),
            value_num: dec(5),
            value_den: int(6),
            value_text: s(7),
            limit_num: dec(8),
            limit_den: int(9),
            ev_table: s(10),
            ev_file: s(11),
            ev_row: int(12),
        }
    }

    /// What orders a household's flag rows: the flag (rule, member; no member first),
    /// then its evidence reference (table, file, row).
    #[allow(clippy::type_complexity)]
    fn key(
        &self,
        r: usize,
    ) -> (
        &'a str,
        Option<&'a str>,
        Option<&'a str>,
        Option<&'a str>,
        Option<i64>,
    ) {
        (
            self.rule.value(r),
            text(self.member, r),
            text(self.ev_table, r),
            text(self.ev_file, r),
            (!self.ev_row.is_null(r)).then(|| self.ev_row.value(r)),
        )
    }

    fn flag(&self, r: usize) -> Flag {
        let unit = self.unit.value(r);
        let dec = |a: &Decimal128Array| (!a.is_null(r)).then(|| a.value(r));
        let int = |a: &Int64Array| (!a.is_null(r)).then(|| a.value(r));
        Flag {
            rule: self.rule.value(r).to_owned(),
            severity: self.severity.value(r).to_owned(),
            member: text(self.member, r).map(str::to_owned),
            value: figure(
                unit,
                dec(self.value_num),
                int(self.value_den),
                text(self.value_text, r),
            ),
            limit: figure(unit, dec(self.limit_num), int(self.limit_den), None),
            evidence: Vec::new(),
        }
    }
}

fn text(a: &StringArray, r: usize) -> Option<&str> {
    (!a.is_null(r)).then(|| a.value(r))
}

/// One household's flags from its flag rows (`(batch, row)` in `cols`): one flag per
/// (rule, member), sorted so; its evidence the distinct references of its rows, sorted by
/// (table, file, row), each with its record.
fn household_flags(
    cols: &[FlagColumns<'_>],
    mut rows: Vec<(usize, usize)>,
    evidence: &EvidenceIndex,
) -> Vec<Flag> {
    rows.sort_unstable_by(|&(b1, r1), &(b2, r2)| cols[b1].key(r1).cmp(&cols[b2].key(r2)));
    let mut flags: Vec<Flag> = Vec::new();
    let mut last: Option<(&str, Option<&str>)> = None;
    let mut last_ref: Option<(&str, &str, i64)> = None;
    for (b, r) in rows {
        let c = &cols[b];
        let (rule, member, table, file, row) = c.key(r);
        if last != Some((rule, member)) {
            flags.push(c.flag(r));
            last = Some((rule, member));
            last_ref = None;
        }
        let (Some(table), Some(file), Some(row)) = (table, file, row) else {
            continue;
        };
        if last_ref == Some((table, file, row)) {
            continue;
        }
        last_ref = Some((table, file, row));
        if let Some(flag) = flags.last_mut() {
            flag.evidence.push(match evidence.get(table, file, row) {
                Some((table, file, record)) => Evidence {
                    table: table.clone(),
                    file: file.clone(),
                    row,
                    record: record.clone(),
                },
                None => Evidence {
                    table: Arc::from(table),
                    file: Arc::from(file),
                    row,
                    record: Record::empty(),
                },
            });
        }
    }
    flags
}

/// Assembles results from the `household_results` and `flags_found` batches.
pub fn assemble(
    households: &[Declared],
    figures: &[RecordBatch],
    flags: &[RecordBatch],
    evidence: &EvidenceIndex,
    missing: &[String],
    stale: &[String],
) -> Vec<HouseholdResult> {
    // The flag rows of each household, by its id as the batches hold it.
    let cols: Vec<FlagColumns<'_>> = flags.iter().map(FlagColumns::of).collect();
    let mut by_household: HashMap<&str, Vec<(usize, usize)>> = HashMap::new();
    for (b, c) in cols.iter().enumerate() {
        for r in 0..c.household.len() {
            by_household
                .entry(c.household.value(r))
                .or_default()
                .push((b, r));
        }
    }
    #[allow(clippy::type_complexity)]
    let mut figures_by: HashMap<&str, (&str, i64, String, String, String, Vec<String>)> =
        HashMap::new();
    for b in figures {
        let hid = b.column(0).as_string::<i32>();
        let verdict = b.column(1).as_string::<i32>();
        let members = b.column(2).as_primitive::<Int64Type>();
        let income = b.column(3).as_primitive::<Decimal128Type>();
        let den = b.column(4).as_primitive::<Int64Type>();
        let assets = b.column(5).as_primitive::<Decimal128Type>();
        let standard = b.column(6).as_primitive::<Decimal128Type>();
        let income_scale = scale_of(b, 3);
        let assets_scale = scale_of(b, 5);
        // The sources stale for a household alone (its data does not reach back to D).
        let stale_here = b
            .columns()
            .get(7)
            .and_then(|c| datafusion::arrow::compute::cast(c, &DataType::Utf8).ok());
        let stale_here = stale_here.as_ref().map(|c| c.as_string::<i32>());
        for r in 0..b.num_rows() {
            let mut stale_for: Vec<String> = stale.to_vec();
            if let Some(c) = stale_here.filter(|c| c.is_valid(r)) {
                stale_for.extend(
                    c.value(r)
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned),
                );
                stale_for.sort();
                stale_for.dedup();
            }
            let per_capita = div_round_half_away(
                income.value(r) * 100,
                i128::from(den.value(r).max(1)) * 10i128.pow(income_scale),
            );
            let assets = div_round_half_away(assets.value(r) * 100, 10i128.pow(assets_scale));
            figures_by.insert(
                hid.value(r),
                (
                    verdict.value(r),
                    members.value(r),
                    format_decimal(per_capita, 2),
                    format_decimal(assets, 2),
                    format_decimal(standard.value(r), 2),
                    stale_for,
                ),
            );
        }
    }
    let one = |h: &Declared| {
        let (verdict, members, pci, assets, standard, stale_for) =
            figures_by.get(h.household_id.as_str())?;
        let rows = by_household
            .get(h.household_id.as_str())
            .cloned()
            .unwrap_or_default();
        Some(HouseholdResult {
            household_id: h.household_id.clone(),
            region_code: h.region_code.clone(),
            area_type: h.area_type.to_owned(),
            aid_type: h.aid_type.to_owned(),
            verdict: (*verdict).to_owned(),
            members: *members,
            per_capita_monthly_income: pci.clone(),
            financial_assets: assets.clone(),
            standard_monthly: standard.clone(),
            missing_sources: missing.to_vec(),
            stale_sources: stale_for.clone(),
            flags: household_flags(&cols, rows, evidence),
        })
    };
    // Households are independent: assembled on every core, a share each.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let share = households.len().div_ceil(cores).max(1);
    let mut out: Vec<HouseholdResult> = std::thread::scope(|scope| {
        let parts: Vec<_> = households
            .chunks(share)
            .map(|part| scope.spawn(|| part.iter().filter_map(one).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    out.sort_by(|a, b| a.household_id.cmp(&b.household_id));
    out
}

fn scale_of(b: &RecordBatch, i: usize) -> u32 {
    match b.schema().field(i).data_type() {
        datafusion::arrow::datatypes::DataType::Decimal128(_, s) => (*s).max(0) as u32,
        _ => 0,
    }
}

/// A result of one member, no flag and no missing source: the tests' starting point.
#[cfg(test)]
pub fn sample(household_id: &str, verdict: &str) -> HouseholdResult {
    HouseholdResult {
        household_id: household_id.into(),
        region_code: "410184".into(),
        area_type: "urban".into(),
        aid_type: "dibao".into(),
        verdict: verdict.into(),
        members: 1,
        per_capita_monthly_income: "0.00".into(),
        financial_assets: "0.00".into(),
        standard_monthly: "720.00".into(),
        missing_sources: vec![],
        stale_sources: vec![],
        flags: vec![],
    }
}
