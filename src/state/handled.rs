//! The reconciliation work list (SPEC §11): a run's changes ranked for staff — the
//! households that became ineligible first, then by the size of the change — and each
//! change marked handled (`已处理`) with a note, kept with who and when, audited in the
//! same transaction as the mark.

use std::collections::HashMap;

use rusqlite::params;
use serde::Serialize;

use super::audit::append_in;
use super::db::{State, StateError};

/// The longest note kept, in characters.
pub const MAX_NOTE_CHARS: usize = 2000;

/// One change of a run as the work list ranks it (its line is read separately).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ranked {
    /// The household.
    pub household_id: String,
    /// Its region code.
    pub region_code: String,
    /// The verdict before (`None`: new to the list).
    pub previous_verdict: Option<String>,
    /// The verdict now (`None`: it left the list).
    pub verdict: Option<String>,
    /// Flags added and removed.
    pub size: i64,
}

impl Ranked {
    /// Whether the household became ineligible in this run.
    pub fn became_ineligible(&self) -> bool {
        self.verdict.as_deref() == Some("ineligible")
            && self.previous_verdict.as_deref() != Some("ineligible")
    }

    /// Whether the change needs nobody: a household new to the list and eligible.
    pub fn new_and_eligible(&self) -> bool {
        self.previous_verdict.is_none() && self.verdict.as_deref() == Some("eligible")
    }
}

/// Puts `changes` in work-list order: became ineligible first, then the largest
/// changes (flags added and removed, a changed verdict counting one), then by household.
pub fn rank(changes: &mut [Ranked]) {
    let weight = |c: &Ranked| c.size + i64::from(c.previous_verdict != c.verdict);
    changes.sort_by(|a, b| {
        b.became_ineligible()
            .cmp(&a.became_ineligible())
            .then_with(|| weight(b).cmp(&weight(a)))
            .then_with(|| a.household_id.cmp(&b.household_id))
    });
}

/// A change marked handled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Handled {
    /// Who marked it (`user:NAME`).
    pub actor: String,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// What they noted.
    pub note: String,
}

/// The audit entry of a mark.
#[derive(Debug, Serialize)]
struct HandledDetail<'a> {
    read: &'a str,
    of: String,
    regions: [&'a str; 1],
    households: [HouseholdRef<'a>; 1],
    note: &'a str,
}

#[derive(Debug, Serialize)]
struct HouseholdRef<'a> {
    household_id: &'a str,
    region_code: &'a str,
}

impl State {
    /// Every change of run `run` with what ranks it, in household order.
    pub fn ranked_changes(&self, run: i64) -> Result<Vec<Ranked>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT household_id, region_code,
                        json_extract(change, '$.previous_verdict'),
                        json_extract(change, '$.verdict'),
                        COALESCE(json_array_length(change, '$.added_flags'), 0)
                          + COALESCE(json_array_length(change, '$.removed_flags'), 0)
                 FROM run_changes WHERE run_id = ?1 ORDER BY household_id",
            )
            .map_err(self.err("rank the run's changes"))?;
        let rows = stmt
            .query_map(params![run], |r| {
                Ok(Ranked {
                    household_id: r.get(0)?,
                    region_code: r.get(1)?,
                    previous_verdict: r.get(2)?,
                    verdict: r.get(3)?,
                    size: r.get(4)?,
                })
            })
            .map_err(self.err("rank the run's changes"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("rank the run's changes"))
    }

    /// The lines (changes.jsonl) of run `run` for `households`.
    pub fn change_lines(
        &self,
        run: i64,
        households: &[String],
    ) -> Result<HashMap<String, String>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT change FROM run_changes WHERE run_id = ?1 AND household_id = ?2")
            .map_err(self.err("read the run's changes"))?;
        let mut out = HashMap::new();
        for hid in households {
            let line: Option<String> = rusqlite::OptionalExtension::optional(
                stmt.query_row(params![run, hid], |r| r.get(0)),
            )
            .map_err(self.err("read the run's changes"))?;
            if let Some(line) = line {
                out.insert(hid.clone(), line);
            }
        }
        Ok(out)
    }

    /// The changes of run `run` marked handled, by household.
    pub fn handled(&self, run: i64) -> Result<HashMap<String, Handled>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT household_id, actor, at, note FROM handled WHERE run_id = ?1")
            .map_err(self.err("read the handled changes"))?;
        let rows = stmt
            .query_map(params![run], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    Handled {
                        actor: r.get(1)?,
                        at: r.get(2)?,
                        note: r.get(3)?,
                    },
                ))
            })
            .map_err(self.err("read the handled changes"))?;
        rows.collect::<Result<HashMap<_, _>, _>>()
            .map_err(self.err("read the handled changes"))
    }

    /// Marks the change of household `hid` (of `region`) in run `run` handled by
    /// `actor` with `note`, and audits it (kind `acknowledge`) in the same transaction.
    /// Marking it again replaces the note (the audit log keeps both). `false` when the
    /// run reported no change of that household.
    pub fn mark_handled(
        &mut self,
        actor: &str,
        run: i64,
        hid: &str,
        region: &str,
        note: &str,
    ) -> Result<bool, StateError> {
        // ID numbers are never kept whole: in the log a household id shaped as one is
        // hashed as the log hashes members; in a note it is masked, as is any card or
        // account number however it is grouped.
        let hash = self.id_hasher()?;
        let logged = hedui_connectors::idnum::replace_ids_in(hid, |r| format!("#{}", hash(r)));
        let note = hedui_connectors::idnum::mask_numbers_in(note);
        let note = note.as_ref();
        let detail = HandledDetail {
            read: "handled",
            of: format!("run:{run}"),
            regions: [region],
            households: [HouseholdRef {
                household_id: &logged,
                region_code: region,
            }],
            note,
        };
        let appender = self.appender()?;
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let out = self.write("mark a change handled", |tx, path| {
            let q = |what: &str| super::db::query_err(path, what);
            let known: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM run_changes WHERE run_id = ?1 AND household_id = ?2)",
                    params![run, hid],
                    |r| r.get(0),
                )
                .map_err(q("mark a change handled"))?;
            if !known {
                return Ok(None);
            }
            tx.execute(
                "INSERT INTO handled (run_id, household_id, actor, at, note) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (run_id, household_id) DO UPDATE SET actor = ?3, at = ?4, note = ?5",
                params![run, hid, actor, at, note],
            )
            .map_err(q("mark a change handled"))?;
            Ok(Some(append_in(
                tx,
                path,
                &appender,
                actor,
                "acknowledge",
                &detail,
            )?))
        })?;
        match out {
            Some((seq, hash)) => {
                self.anchor_after(&appender.key, seq, &hash);
                Ok(true)
            }
            None => Ok(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(hid: &str, prev: Option<&str>, now: Option<&str>, size: i64) -> Ranked {
        Ranked {
            household_id: hid.into(),
            region_code: "410101".into(),
            previous_verdict: prev.map(Into::into),
            verdict: now.map(Into::into),
            size,
        }
    }

    /// Became ineligible first (whatever their size), then the largest, then by id.
    #[test]
    fn the_work_list_leads_with_households_that_became_ineligible() {
        let mut v = vec![
            c("A", Some("eligible"), Some("review"), 3),
            c("B", Some("eligible"), Some("ineligible"), 1),
            c("C", Some("ineligible"), Some("ineligible"), 5),
            c("D", None, Some("ineligible"), 1),
            c("E", Some("review"), Some("eligible"), 1),
            c("F", Some("eligible"), None, 0),
        ];
        rank(&mut v);
        let order: Vec<&str> = v.iter().map(|c| c.household_id.as_str()).collect();
        assert_eq!(order, ["B", "D", "C", "A", "E", "F"]);
        assert!(c("G", None, Some("eligible"), 0).new_and_eligible());
        assert!(!c("G", None, Some("review"), 1).new_and_eligible());
    }
}
