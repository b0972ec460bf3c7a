//! What `report.html` shows of a run's results, gathered as the results come a chunk at
//! a time and kept small: the chart's counts, the households shown in detail, a
//! reconciliation's changes listed.

use std::collections::BTreeMap;

use super::summary::VERDICTS;
use crate::changes::Change;
use crate::verdict::HouseholdResult;

/// Households shown in detail at most (and rejected rows, changes listed): beyond, a
/// report would be too large to open or print; the full lists are in the JSON Lines
/// files beside it.
pub const REPORT_HOUSEHOLDS: usize = 1000;

/// The order in which households need a person: ineligible first, then review, then
/// incomplete; eligible ones last.
fn attention(verdict: &str) -> u8 {
    match verdict {
        "ineligible" => 0,
        "review" => 1,
        "incomplete" => 2,
        _ => 3,
    }
}

/// `cap` shared among groups of `lens` households: evenly, a group taking no more than
/// it has and what it leaves going to the others; any remainder to the first groups.
fn shares(lens: [usize; 3], cap: usize) -> [usize; 3] {
    let mut take = [0usize; 3];
    let mut left = cap;
    loop {
        let open: Vec<usize> = (0..3).filter(|&i| take[i] < lens[i]).collect();
        if open.is_empty() || left == 0 {
            return take;
        }
        let each = (left / open.len()).max(1);
        for i in open {
            let t = each.min(lens[i] - take[i]).min(left);
            take[i] += t;
            left -= t;
        }
    }
}

/// What the report shows of a run's results, gathered chunk by chunk and kept small:
/// the counts of the chart, and the households it shows in detail — all of them (in
/// household_id order) when there are at most [`REPORT_HOUSEHOLDS`]; otherwise those
/// needing a person, ineligible, review, incomplete, each in household_id order, up to
/// the cap. A reconciliation's changes likewise: those that became ineligible first, then
/// other changes of verdict, then findings alone, then households new to or gone from the
/// list, up to the cap.
#[derive(Debug)]
pub struct Gathered {
    cap: usize,
    groups: BTreeMap<(String, String), [u64; 4]>,
    total: usize,
    need_person: usize,
    /// Every household while there are at most `cap`.
    all: Option<Vec<HouseholdResult>>,
    /// The first `cap` of each verdict needing a person, in attention order.
    needing: [Vec<HouseholdResult>; 3],
    /// Households of each group needing a person, all of them.
    counts_needing: [usize; 3],
    changes: [Vec<Change>; 4],
    changes_total: usize,
}

impl Default for Gathered {
    fn default() -> Gathered {
        Gathered::with_cap(REPORT_HOUSEHOLDS)
    }
}

impl Gathered {
    pub(super) fn with_cap(cap: usize) -> Gathered {
        Gathered {
            cap,
            groups: BTreeMap::new(),
            total: 0,
            need_person: 0,
            all: Some(Vec::new()),
            needing: Default::default(),
            counts_needing: [0; 3],
            changes: Default::default(),
            changes_total: 0,
        }
    }

    /// Adds results (in household_id order, after those added before).
    pub fn add(&mut self, results: &[HouseholdResult]) {
        for r in results {
            self.total += 1;
            let c = self
                .groups
                .entry((r.region_code.clone(), r.aid_type.clone()))
                .or_default();
            if let Some(i) = VERDICTS.iter().position(|v| *v == r.verdict) {
                c[i] += 1;
            }
            let a = attention(&r.verdict);
            if a < 3 {
                self.need_person += 1;
                self.counts_needing[a as usize] += 1;
                if self.needing[a as usize].len() < self.cap {
                    self.needing[a as usize].push(r.clone());
                }
            }
            if self.total > self.cap {
                self.all = None;
            }
            if let Some(all) = &mut self.all {
                all.push(r.clone());
            }
        }
    }

    /// Adds changes (in household_id order, after those added before).
    pub fn add_changes(&mut self, changes: &[Change]) {
        for c in changes {
            self.changes_total += 1;
            let rank = match (&c.previous_verdict, &c.verdict) {
                (Some(p), Some(v)) if v == "ineligible" && p != v => 0,
                (Some(p), Some(v)) if p != v => 1,
                (Some(_), Some(_)) => 2,
                _ => 3,
            };
            if self.changes[rank].len() < self.cap {
                self.changes[rank].push(c.clone());
            }
        }
    }

    /// The households shown in detail, and how many need a person. Over the cap, the
    /// cap is shared among ineligible, review and incomplete so that each group needing
    /// a person is represented (a share a group does not fill goes to the others);
    /// ineligible first.
    pub(super) fn detailed(&self) -> (Vec<&HouseholdResult>, usize) {
        let shown = match &self.all {
            Some(all) => all.iter().collect(),
            None => {
                let lens = self.needing.each_ref().map(Vec::len);
                let take = shares(lens, self.cap);
                self.needing
                    .iter()
                    .zip(take)
                    .flat_map(|(group, n)| group.iter().take(n))
                    .collect()
            }
        };
        (shown, self.need_person)
    }

    /// How many of each group needing a person the report shows (ineligible, review,
    /// incomplete).
    pub(super) fn shown_of_each(&self) -> [usize; 3] {
        match &self.all {
            Some(_) => self.needing.each_ref().map(Vec::len),
            None => shares(self.needing.each_ref().map(Vec::len), self.cap),
        }
    }

    /// Households needing a person, by group (ineligible, review, incomplete), all of them.
    pub(super) fn needing_counts(&self) -> [usize; 3] {
        self.counts_needing
    }

    /// The changes listed.
    pub(super) fn listed_changes(&self) -> Vec<&Change> {
        self.changes.iter().flatten().take(self.cap).collect()
    }

    /// Verdict counts per (region code, aid type code).
    pub(super) fn groups(&self) -> &BTreeMap<(String, String), [u64; 4]> {
        &self.groups
    }

    /// Households gathered.
    pub(super) fn total(&self) -> usize {
        self.total
    }

    /// Changes gathered.
    pub(super) fn changes_total(&self) -> usize {
        self.changes_total
    }

    /// How tall the chart is.
    pub(super) fn chart_height(&self) -> usize {
        self.groups.len().min(30) * 22 + 10
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(id: &str, verdict: &str) -> HouseholdResult {
        crate::verdict::results::sample(id, verdict)
    }

    /// A batch within the cap is shown whole, in household_id order; a larger one shows
    /// the households needing a person, ineligible first, up to the cap.
    #[test]
    fn large_batches_show_who_needs_a_person_first() {
        let results: Vec<HouseholdResult> = [
            ("H1", "eligible"),
            ("H2", "incomplete"),
            ("H3", "review"),
            ("H4", "ineligible"),
            ("H5", "eligible"),
            ("H6", "ineligible"),
        ]
        .into_iter()
        .map(|(id, v)| result(id, v))
        .collect();
        let detailed = |cap: usize| {
            let mut g = Gathered::with_cap(cap);
            // Given in two chunks, as a run gives them.
            g.add(&results[..2]);
            g.add(&results[2..]);
            let (shown, need) = g.detailed();
            (
                shown
                    .iter()
                    .map(|r| r.household_id.clone())
                    .collect::<Vec<_>>(),
                need,
            )
        };
        let want = |v: &[&str], n: usize| (v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), n);
        assert_eq!(detailed(6), want(&["H1", "H2", "H3", "H4", "H5", "H6"], 4));
        assert_eq!(detailed(5), want(&["H4", "H6", "H3", "H2"], 4));
        // Over the cap every group needing a person is represented.
        assert_eq!(detailed(3), want(&["H4", "H3", "H2"], 4));
        assert_eq!(detailed(4), want(&["H4", "H6", "H3", "H2"], 4));
    }

    /// The cap is shared evenly; what a small group leaves goes to the others.
    #[test]
    fn the_cap_is_shared_among_the_groups() {
        assert_eq!(shares([5000, 10, 3], 1000), [987, 10, 3]);
        assert_eq!(shares([5000, 5000, 5000], 1000), [334, 333, 333]);
        assert_eq!(shares([0, 2000, 0], 1000), [0, 1000, 0]);
        assert_eq!(shares([1, 1, 1], 1000), [1, 1, 1]);
        assert_eq!(shares([600, 600, 0], 1000), [500, 500, 0]);
    }
}
