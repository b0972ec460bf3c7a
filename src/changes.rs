//! What changed between two reconciliation runs (SPEC §7 `changes.jsonl`): per household
//! whose verdict or flags differ, the previous and the new verdict, the flags added (with
//! value, limit and evidence) and the flags removed, flags named by `{rule, member}`.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::applicants::RejectedHousehold;
use crate::verdict::{Evidence, Flag, HouseholdResult};

/// A flag's identity across runs: its rule and, for per-member rules, the member.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
pub struct FlagRef {
    /// Rule code.
    pub rule: String,
    /// The member's id_number, or null for household rules.
    pub member: Option<String>,
}

/// What a run keeps of one household to compare the next run with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Kept {
    /// The verdict.
    pub verdict: String,
    /// Its flags, sorted.
    pub flags: Vec<FlagRef>,
    /// Its region code (who may see the change).
    #[serde(default)]
    pub region_code: String,
}

impl Kept {
    /// Whether verdict and flags are the same (the region is not a finding).
    fn same_findings(&self, other: &Kept) -> bool {
        self.verdict == other.verdict && self.flags == other.flags
    }
}

impl Kept {
    /// What is kept of a result.
    pub fn of(r: &HouseholdResult) -> Kept {
        let flags: BTreeSet<FlagRef> = r
            .flags
            .iter()
            .map(|f| FlagRef {
                rule: f.rule.clone(),
                member: f.member.clone(),
            })
            .collect();
        Kept {
            verdict: r.verdict.clone(),
            flags: flags.into_iter().collect(),
            region_code: r.region_code.clone(),
        }
    }
}

/// One line of `changes.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Change {
    /// The household.
    pub household_id: String,
    /// Its region (not written to changes.jsonl; who may see the change over the API).
    #[serde(skip)]
    pub region_code: String,
    /// Its verdict in the previous completed run; null when new to the list.
    pub previous_verdict: Option<String>,
    /// Its verdict now; null when it left the list; `rejected` when it is on the list
    /// but its rows were refused this run.
    pub verdict: Option<String>,
    /// Why a `rejected` household was refused: its reason codes, sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<crate::applicants::Reason>>)]
    pub reasons: Option<Vec<&'static str>>,
    /// Flags raised now and not before (written without their severity, which the
    /// verdict already says).
    #[serde(serialize_with = "without_severity")]
    #[schema(value_type = Vec<AddedFlag>)]
    pub added_flags: Vec<Flag>,
    /// Flags raised before and not now.
    pub removed_flags: Vec<FlagRef>,
}

/// A flag added since the previous run, as `changes.jsonl` has it: a flag's fields but
/// its severity (which the verdict already says), borrowed from the flag.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = AddedFlag)]
pub struct Added<'a> {
    /// Rule code.
    #[schema(value_type = String)]
    rule: &'a str,
    /// The member's id_number for per-member rules, else null.
    #[schema(value_type = Option<String>)]
    member: &'a Option<String>,
    /// The figure found (as in results).
    #[schema(value_type = Value)]
    value: &'a Value,
    /// The limit it was compared with.
    #[schema(value_type = Value)]
    limit: &'a Value,
    /// The records it rests on.
    #[schema(value_type = Vec<Evidence>)]
    evidence: &'a [Evidence],
}

/// The type of [`Change::added_flags`] in the OpenAPI document.
type AddedFlag = Added<'static>;

/// `added_flags` as `changes.jsonl` has them: `{rule, member, value, limit, evidence}`.
fn without_severity<S: serde::Serializer>(flags: &[Flag], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(flags.iter().map(|f| Added {
        rule: &f.rule,
        member: &f.member,
        value: &f.value,
        limit: &f.limit,
        evidence: &f.evidence,
    }))
}

/// The changes a run wrote to `changes.jsonl`, one per line (each line as the state
/// keeps it), and the household and region of each line, in the same order.
#[derive(Debug, Clone, Copy)]
pub struct Written<'a> {
    /// The file.
    pub file: &'a std::path::Path,
    /// Each line's household_id and region code.
    pub households: &'a [(String, String)],
}

/// The verdict a household rejected this run is given in `changes.jsonl` and kept as.
pub const REJECTED: &str = "rejected";

/// The changes from `previous` (household → kept, of the last completed run) to
/// `current` (this run's results, sorted by household_id) and `rejected` (the list's
/// households refused this run, sorted), sorted by household_id; unchanged households
/// are left out, so unchanged inputs give no line at all.
pub fn between(
    previous: &BTreeMap<String, Kept>,
    current: &[HouseholdResult],
    rejected: &[RejectedHousehold],
) -> Vec<Change> {
    let mut c = Comparer::new(previous, rejected);
    let mut out = c.next(current);
    out.extend(c.finish());
    out
}

/// What a household rejected this run keeps for the next run: `rejected`, with the
/// flags of the last run that checked it (so that when it is checked again, its flags
/// are compared with those).
pub fn kept_rejected(previous: Option<&Kept>, h: &RejectedHousehold) -> Kept {
    Kept {
        verdict: REJECTED.to_owned(),
        flags: previous.map(|k| k.flags.clone()).unwrap_or_default(),
        region_code: if h.region_code.is_empty() {
            previous.map(|k| k.region_code.clone()).unwrap_or_default()
        } else {
            h.region_code.clone()
        },
    }
}

/// The changes from a previous run, found as this run's results come in household_id
/// order: each call gives the changes of the households up to the last result given
/// (those that left the list and those rejected included), in household_id order.
pub struct Comparer<'a> {
    previous: &'a BTreeMap<String, Kept>,
    rest: std::iter::Peekable<std::collections::btree_map::Iter<'a, String, Kept>>,
    rejected: std::iter::Peekable<std::slice::Iter<'a, RejectedHousehold>>,
}

impl<'a> Comparer<'a> {
    /// Compares with `previous`; `rejected` (sorted by household_id) are the list's
    /// households refused this run.
    pub fn new(
        previous: &'a BTreeMap<String, Kept>,
        rejected: &'a [RejectedHousehold],
    ) -> Comparer<'a> {
        Comparer {
            previous,
            rest: previous.iter().peekable(),
            rejected: rejected.iter().peekable(),
        }
    }

    /// The changes up to the last of `current` (sorted by household_id, after the
    /// results given before).
    pub fn next(&mut self, current: &[HouseholdResult]) -> Vec<Change> {
        let mut out = Vec::new();
        for r in current {
            self.before(Some(&r.household_id), &mut out);
            self.rest
                .next_if(|(h, _)| h.as_str() == r.household_id.as_str());
            if let Some(c) = change_of(self.previous.get(&r.household_id), r) {
                out.push(c);
            }
        }
        out
    }

    /// The changes of the households after the last result: gone, or rejected.
    pub fn finish(mut self) -> Vec<Change> {
        let mut out = Vec::new();
        self.before(None, &mut out);
        out
    }

    /// The households of the previous run and the rejected ones before `bound` (all of
    /// them without one), in household_id order.
    fn before(&mut self, bound: Option<&str>, out: &mut Vec<Change>) {
        let below = |h: &str| bound.is_none_or(|b| h < b);
        loop {
            let prev = self
                .rest
                .peek()
                .map(|(h, _)| h.as_str())
                .filter(|h| below(h));
            let rej = self
                .rejected
                .peek()
                .map(|h| h.household_id.as_str())
                .filter(|h| below(h));
            let rejected_first = match (prev, rej) {
                (None, None) => return,
                (_, None) => false,
                (None, Some(_)) => true,
                (Some(p), Some(r)) => r <= p,
            };
            if !rejected_first {
                if let Some((hid, k)) = self.rest.next() {
                    out.push(gone(hid, k));
                }
                continue;
            }
            let before = if prev == rej {
                self.rest.next().map(|(_, k)| k)
            } else {
                None
            };
            if let Some(h) = self.rejected.next() {
                // Rows without a household_id belong to no household of the list; a
                // household rejected again is unchanged.
                if !h.household_id.is_empty() && before.is_none_or(|k| k.verdict != REJECTED) {
                    out.push(rejected_change(before, h));
                }
            }
        }
    }
}

/// A household of the previous run that is no longer on the list.
fn gone(hid: &str, k: &Kept) -> Change {
    Change {
        household_id: hid.to_owned(),
        region_code: k.region_code.clone(),
        previous_verdict: Some(k.verdict.clone()),
        verdict: None,
        reasons: None,
        added_flags: vec![],
        removed_flags: k.flags.clone(),
    }
}

/// A household on the list whose rows were refused this run: not gone, not compared.
fn rejected_change(before: Option<&Kept>, h: &RejectedHousehold) -> Change {
    Change {
        household_id: h.household_id.clone(),
        region_code: kept_rejected(before, h).region_code,
        previous_verdict: before.map(|k| k.verdict.clone()),
        verdict: Some(REJECTED.to_owned()),
        reasons: Some(h.reasons.iter().map(|r| r.code()).collect()),
        added_flags: vec![],
        removed_flags: vec![],
    }
}

/// The change of household `r` from `before` (none: new to the list), if any.
fn change_of(before: Option<&Kept>, r: &HouseholdResult) -> Option<Change> {
    let now = Kept::of(r);
    if before.is_some_and(|b| b.same_findings(&now)) {
        return None;
    }
    let old: BTreeSet<&FlagRef> = before.map(|k| k.flags.iter().collect()).unwrap_or_default();
    let new: BTreeSet<&FlagRef> = now.flags.iter().collect();
    let added_flags = r
        .flags
        .iter()
        .filter(|f| {
            !old.contains(&FlagRef {
                rule: f.rule.clone(),
                member: f.member.clone(),
            })
        })
        .cloned()
        .collect();
    let removed_flags = old
        .iter()
        .filter(|f| !new.contains(*f))
        .map(|f| (*f).clone())
        .collect();
    Some(Change {
        household_id: r.household_id.clone(),
        region_code: r.region_code.clone(),
        previous_verdict: before.map(|k| k.verdict.clone()),
        verdict: Some(r.verdict.clone()),
        reasons: None,
        added_flags,
        removed_flags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applicants::Reason;

    fn result(hid: &str, verdict: &str, flags: &[(&str, Option<&str>)]) -> HouseholdResult {
        HouseholdResult {
            flags: flags
                .iter()
                .map(|(rule, member)| Flag {
                    rule: (*rule).into(),
                    severity: "disqualifying".into(),
                    member: member.map(str::to_owned),
                    value: Value::from(2),
                    limit: Value::from(1),
                    evidence: vec![],
                })
                .collect(),
            ..crate::verdict::results::sample(hid, verdict)
        }
    }

    /// The same results give no change; a new flag, a removed one, a household that is
    /// new and one that left each give one line, sorted.
    #[test]
    fn changes_between_runs() {
        let first = [
            result("H1", "eligible", &[]),
            result("H2", "review", &[("member_deceased", Some("P2"))]),
            result("H3", "eligible", &[]),
        ];
        let kept: BTreeMap<String, Kept> = first
            .iter()
            .map(|r| (r.household_id.clone(), Kept::of(r)))
            .collect();
        assert!(between(&kept, &first, &[]).is_empty());
        let second = [
            result("H1", "ineligible", &[("vehicle_owned", None)]),
            result("H2", "eligible", &[]),
            result("H4", "eligible", &[]),
        ];
        let c = between(&kept, &second, &[]);
        let lines: Vec<String> = c
            .iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                r#"{"household_id":"H1","previous_verdict":"eligible","verdict":"ineligible","added_flags":[{"rule":"vehicle_owned","member":null,"value":2,"limit":1,"evidence":[]}],"removed_flags":[]}"#,
                r#"{"household_id":"H2","previous_verdict":"review","verdict":"eligible","added_flags":[],"removed_flags":[{"rule":"member_deceased","member":"P2"}]}"#,
                r#"{"household_id":"H3","previous_verdict":"eligible","verdict":null,"added_flags":[],"removed_flags":[]}"#,
                r#"{"household_id":"H4","previous_verdict":null,"verdict":"eligible","added_flags":[],"removed_flags":[]}"#,
            ]
        );
    }

    fn refused(hid: &str, reasons: &[Reason]) -> RejectedHousehold {
        RejectedHousehold {
            household_id: hid.into(),
            region_code: "410184".into(),
            reasons: reasons.to_vec(),
        }
    }

    fn lines(c: &[Change]) -> Vec<String> {
        c.iter()
            .map(|c| serde_json::to_string(c).unwrap())
            .collect()
    }

    /// A recipient whose rows are refused has not left the list: `rejected` with its
    /// reasons (a new one too), nothing on a second refusal, and when it is checked
    /// again its flags are compared with those of the last run that checked it.
    #[test]
    fn a_rejected_recipient_is_not_gone() {
        let first = [
            result("H1", "review", &[("member_deceased", Some("P1"))]),
            result("H2", "eligible", &[]),
        ];
        let kept: BTreeMap<String, Kept> = first
            .iter()
            .map(|r| (r.household_id.clone(), Kept::of(r)))
            .collect();
        let refused_now = [
            refused("H1", &[Reason::InvalidIdNumber, Reason::MissingField]),
            refused("H0", &[Reason::InvalidValue]),
            refused("", &[Reason::MissingField]),
        ];
        let mut sorted = refused_now.to_vec();
        sorted.sort_by(|a, b| a.household_id.cmp(&b.household_id));
        let second = [result("H2", "eligible", &[])];
        assert_eq!(
            lines(&between(&kept, &second, &sorted)),
            [
                r#"{"household_id":"H0","previous_verdict":null,"verdict":"rejected","reasons":["invalid_value"],"added_flags":[],"removed_flags":[]}"#,
                r#"{"household_id":"H1","previous_verdict":"review","verdict":"rejected","reasons":["invalid_id_number","missing_field"],"added_flags":[],"removed_flags":[]}"#,
            ]
        );
        // What the rejected run keeps: `rejected` with the flags last found.
        let mut kept2 = kept.clone();
        for h in &sorted[1..] {
            let k = kept_rejected(kept.get(&h.household_id), h);
            kept2.insert(h.household_id.clone(), k);
        }
        assert_eq!(kept2["H1"].verdict, "rejected");
        assert_eq!(kept2["H1"].flags, kept["H1"].flags);
        // Refused again: unchanged.
        assert!(between(&kept2, &second, &sorted[1..]).is_empty());
        // Checked again with the same flag: only the verdict changed.
        let third = [
            result("H0", "eligible", &[]),
            result("H1", "review", &[("member_deceased", Some("P1"))]),
            result("H2", "eligible", &[]),
        ];
        assert_eq!(
            lines(&between(&kept2, &third, &[])),
            [
                r#"{"household_id":"H0","previous_verdict":"rejected","verdict":"eligible","added_flags":[],"removed_flags":[]}"#,
                r#"{"household_id":"H1","previous_verdict":"rejected","verdict":"review","added_flags":[],"removed_flags":[]}"#,
            ]
        );
    }
}
