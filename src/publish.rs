//! The tail every run ends in: what a run decided, made into the audit log's entry.

use crate::applicants::Household;
use crate::state::audit::{AuditDetail, AuditedHousehold};
use crate::verdict::CheckRun;

/// What a check run read and decided, with members' ID numbers hashed by `hash`.
/// Households rejected before any data was read are not in it.
pub fn audit_detail(run: &CheckRun, hash: impl Fn(&str) -> String) -> AuditDetail {
    of_households(run, |_| true, hash)
}

/// [`audit_detail`] for the one household `household_id` of `run` (an API
/// request whose household was checked in a run with others).
pub fn audit_detail_of(
    run: &CheckRun,
    household_id: &str,
    hash: impl Fn(&str) -> String,
) -> AuditDetail {
    of_households(run, |h| h == household_id, hash)
}

fn of_households(
    run: &CheckRun,
    keep: impl Fn(&str) -> bool,
    hash: impl Fn(&str) -> String,
) -> AuditDetail {
    let declared: std::collections::HashMap<&str, &Household> = run
        .batch
        .households
        .iter()
        .map(|h| (h.household_id.as_str(), h))
        .collect();
    let households = run
        .results
        .iter()
        .filter(|r| keep(&r.household_id))
        .map(|r| {
            let h = declared.get(r.household_id.as_str());
            AuditedHousehold {
                household_id: r.household_id.clone(),
                region_code: r.region_code.clone(),
                authorization_id: h.map(|h| h.authorization_id.clone()).unwrap_or_default(),
                members: h
                    .map(|h| h.members.iter().map(|m| hash(&m.id_number)).collect())
                    .unwrap_or_default(),
                verdict: r.verdict.clone(),
            }
        })
        .collect();
    let mut sources = std::collections::BTreeMap::new();
    for t in &run.tables {
        let read = match (&t.snapshot_id, t.snapshot, t.present) {
            (Some(id), Some(seq), _) => format!("snapshot {seq} ({id})"),
            (_, _, true) => format!("folder {}", run.sources),
            _ => "missing".to_owned(),
        };
        sources.insert(format!("{}/{}", t.source, t.table), read);
    }
    AuditDetail {
        households,
        sources,
        as_of: run.as_of.to_string(),
    }
}
