//! `results.jsonl`: the result object of one household (SPEC §7), assembled from the
//! pipelines' `household_results` and `flag_rows`, with evidence records attached.

use std::collections::BTreeMap;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Decimal128Type, Int64Type};
use hedui_connectors::decimal::{div_round_half_away, format_decimal};
use serde::Serialize;
use serde_json::Value;

use crate::applicants::Household;
use crate::evidence::{EvidenceIndex, Record};

/// Scale of the pipelines' exact fractions (`DECIMAL(38, 6)`).
const FRACTION_SCALE: u32 = 6;

/// One source record a flag rests on.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Evidence {
    /// Canonical table (or `applicants`).
    pub table: String,
    /// File, relative to its source.
    pub file: String,
    /// Row in that file.
    pub row: i64,
    /// The canonical columns of the record.
    pub record: Record,
}

/// One finding.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Flag {
    /// Rule code, e.g. `income_over_limit`.
    pub rule: String,
    /// `disqualifying` or `review`.
    pub severity: String,
    /// The member's id_number for per-member rules, else null.
    pub member: Option<String>,
    /// The figure found (money/area as 2-decimal strings, counts as numbers).
    pub value: Value,
    /// The limit it was compared with.
    pub limit: Value,
    /// The records it rests on.
    pub evidence: Vec<Evidence>,
}

/// The result of one accepted household (a line of `results.jsonl`).
#[derive(Debug, Clone, Serialize, PartialEq)]
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

type FlagKey = (String, String, Option<String>);

/// Assembles results from the `household_results` and `flags_found` batches.
pub fn assemble(
    households: &[Household],
    figures: &[RecordBatch],
    flags: &[RecordBatch],
    evidence: &EvidenceIndex,
    missing: &[String],
    stale: &[String],
) -> Vec<HouseholdResult> {
    // (household, rule, member) → flag with its evidence references.
    let mut by_household: BTreeMap<String, BTreeMap<FlagKey, (Flag, Vec<(String, String, i64)>)>> =
        BTreeMap::new();
    for b in flags {
        let s = |i: usize| b.column(i).as_string::<i32>();
        let (hid, rule, sev, member, unit) = (s(0), s(1), s(2), s(3), s(4));
        let dec = |i: usize| b.column(i).as_primitive::<Decimal128Type>();
        let int = |i: usize| b.column(i).as_primitive::<Int64Type>();
        let (vnum, vden, vtext, lnum, lden) = (dec(5), int(6), s(7), dec(8), int(9));
        let (et, ef, er) = (s(10), s(11), int(12));
        for r in 0..b.num_rows() {
            let opt_s = |a: &datafusion::arrow::array::StringArray| {
                (!a.is_null(r)).then(|| a.value(r).to_owned())
            };
            let opt_d =
                |a: &datafusion::arrow::array::Decimal128Array| (!a.is_null(r)).then(|| a.value(r));
            let opt_i =
                |a: &datafusion::arrow::array::Int64Array| (!a.is_null(r)).then(|| a.value(r));
            let key = (
                hid.value(r).to_owned(),
                rule.value(r).to_owned(),
                opt_s(member),
            );
            let entry = by_household
                .entry(key.0.clone())
                .or_default()
                .entry(key.clone())
                .or_insert_with(|| {
                    let u = unit.value(r);
                    (
                        Flag {
                            rule: key.1.clone(),
                            severity: sev.value(r).to_owned(),
                            member: key.2.clone(),
                            value: figure(u, opt_d(vnum), opt_i(vden), opt_s(vtext).as_deref()),
                            limit: figure(u, opt_d(lnum), opt_i(lden), None),
                            evidence: Vec::new(),
                        },
                        Vec::new(),
                    )
                });
            if let (Some(t), Some(f), Some(row)) = (opt_s(et), opt_s(ef), opt_i(er)) {
                entry.1.push((t, f, row));
            }
        }
    }
    let mut figures_by: BTreeMap<String, (String, i64, String, String, String)> = BTreeMap::new();
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
        for r in 0..b.num_rows() {
            let per_capita = div_round_half_away(
                income.value(r) * 100,
                i128::from(den.value(r).max(1)) * 10i128.pow(income_scale),
            );
            let assets = div_round_half_away(assets.value(r) * 100, 10i128.pow(assets_scale));
            figures_by.insert(
                hid.value(r).to_owned(),
                (
                    verdict.value(r).to_owned(),
                    members.value(r),
                    format_decimal(per_capita, 2),
                    format_decimal(assets, 2),
                    format_decimal(standard.value(r), 2),
                ),
            );
        }
    }
    let mut out: Vec<HouseholdResult> = households
        .iter()
        .filter_map(|h| {
            let (verdict, members, pci, assets, standard) = figures_by.remove(&h.household_id)?;
            let mut flags: Vec<Flag> = by_household
                .remove(&h.household_id)
                .unwrap_or_default()
                .into_values()
                .map(|(mut flag, mut refs)| {
                    refs.sort();
                    refs.dedup();
                    flag.evidence = refs
                        .into_iter()
                        .map(|(table, file, row)| {
                            let record = evidence
                                .get(&(table.clone(), file.clone(), row))
                                .cloned()
                                .unwrap_or_else(Record::empty);
                            Evidence {
                                table,
                                file,
                                row,
                                record,
                            }
                        })
                        .collect();
                    flag
                })
                .collect();
            flags.sort_by(|a, b| (&a.rule, &a.member).cmp(&(&b.rule, &b.member)));
            Some(HouseholdResult {
                household_id: h.household_id.clone(),
                region_code: h.region_code.clone(),
                area_type: h.area_type.code().to_owned(),
                aid_type: h.aid_type.code().to_owned(),
                verdict,
                members,
                per_capita_monthly_income: pci,
                financial_assets: assets,
                standard_monthly: standard,
                missing_sources: missing.to_vec(),
                stale_sources: stale.to_vec(),
                flags,
            })
        })
        .collect();
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
