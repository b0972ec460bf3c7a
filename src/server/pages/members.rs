//! The members of households as a batch or a recipients list declared them: read from
//! the file itself, one pass, keeping only the households a page shows.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

/// A member as the file declared them (the ID masked for staff).
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Member {
    /// 姓名.
    pub name: String,
    /// 身份证号, masked unless `full`.
    pub id_number: String,
    /// 与户主关系.
    pub relation: String,
}

/// The members of each of `households` in the applicants file at `input` (named
/// `name`, whose extension says its format), ID numbers masked unless `full`. A file
/// that cannot be read gives no members (the page says so by showing none).
pub fn members_of(
    input: &Path,
    name: &str,
    households: &HashSet<String>,
    full: bool,
) -> HashMap<String, Vec<Member>> {
    let mut out: HashMap<String, Vec<Member>> = HashMap::new();
    if households.is_empty() {
        return out;
    }
    let Ok(bytes) = std::fs::read(input) else {
        return out;
    };
    let Ok(raw) = crate::applicants::read_batch(Path::new(name), &bytes) else {
        return out;
    };
    use crate::applicants::Column;
    let get = |r: &crate::applicants::RawRow, c: Column| {
        r.values[c as usize]
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    for r in &raw.rows {
        let hid = get(r, Column::HouseholdId);
        if !households.contains(&hid) {
            continue;
        }
        let id = get(r, Column::IdNumber);
        out.entry(hid).or_default().push(Member {
            name: get(r, Column::Name),
            id_number: if full {
                id
            } else {
                hedui_connectors::idnum::mask_id(&id)
            },
            relation: get(r, Column::Relation),
        });
    }
    out
}

/// Who a finding concerns, as a report prints it: the member's name and ID as the page
/// shows it, the ID alone when the file does not name them, `本户` for the household.
pub fn who_is(members: &[Member], member: &str) -> String {
    if member.is_empty() {
        return "本户".to_owned();
    }
    members.iter().find(|m| m.id_number == member).map_or_else(
        || member.to_owned(),
        |m| format!("{}（{}）", m.name, m.id_number),
    )
}
