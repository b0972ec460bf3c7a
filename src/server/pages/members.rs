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

/// One row of an applicants file as the pages use it: where it is, whose household,
/// who.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The row as the clerk's spreadsheet numbers it.
    pub row: u64,
    /// 申请编号 as the row gives it.
    pub household_id: String,
    /// The member (ID masked unless the roster was read `full`).
    pub member: Member,
}

/// Every row of the applicants file at `input` (named `name`, whose extension says its
/// format), ID numbers masked unless `full`, in the file's order. A file that cannot be
/// read gives no rows (the pages then show no members).
pub fn roster(input: &Path, name: &str, full: bool) -> Vec<Entry> {
    let Ok(bytes) = std::fs::read(input) else {
        return Vec::new();
    };
    let Ok(raw) = crate::applicants::read_batch(Path::new(name), &bytes) else {
        return Vec::new();
    };
    use crate::applicants::Column;
    let get = |r: &crate::applicants::RawRow, c: Column| {
        r.values[c as usize]
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_owned()
    };
    raw.rows
        .iter()
        .map(|r| {
            // As the engine reads it: a lower-case check letter is the upper-case one.
            let id = get(r, Column::IdNumber).to_uppercase();
            Entry {
                row: r.row,
                household_id: get(r, Column::HouseholdId),
                member: Member {
                    name: get(r, Column::Name),
                    id_number: if full {
                        id
                    } else {
                        hedui_connectors::idnum::mask_id(&id)
                    },
                    // In words, however the file wrote it (`spouse`, 配偶, 妻).
                    relation: {
                        let typed = get(r, Column::Relation);
                        crate::applicants::Relation::parse(&typed)
                            .map_or(typed, |rel| rel.chinese().to_owned())
                    },
                },
            }
        })
        .collect()
}

/// The members of each of `households` in the applicants file at `input` (as
/// [`roster`] reads it).
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
    for e in roster(input, name, full) {
        if households.contains(&e.household_id) {
            out.entry(e.household_id).or_default().push(e.member);
        }
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
