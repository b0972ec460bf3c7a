//! The recipients list (在保名单) kept in the hub: each upload replaces the current list
//! as a whole, in one transaction with its audit entry, and is kept in the history (who,
//! when, how many households and people, how many added and removed).

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::audit::append_in;
use super::db::{State, StateError};

/// A household of the current list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedHousehold {
    /// As the list names it.
    pub household_id: String,
    /// Its region code.
    pub region_code: String,
    /// Its members as JSON: `[{"id_number", "name", "relation"}]`.
    pub members: String,
}

/// One list the hub kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecipientList {
    /// Its version, growing.
    pub id: i64,
    /// When it replaced the one before (RFC 3339).
    pub uploaded_at: String,
    /// Who replaced it (`token:NAME`, `user:NAME`).
    pub actor: String,
    /// The file's name as uploaded.
    pub file_name: String,
    /// The file as kept under the state folder (what the reconciliations read).
    #[serde(skip)]
    pub path: String,
    /// The SHA-256 of the file.
    pub sha256: String,
    /// Households on it.
    pub households: i64,
    /// People on it.
    pub people: i64,
    /// Households not on the list before.
    pub added: i64,
    /// Households of the list before that are not on it.
    pub removed: i64,
}

/// What the audit entry of a replacement says.
#[derive(Serialize)]
struct Replaced<'a> {
    /// What was replaced, as reads name what they read.
    of: String,
    /// The regions of its households (the audit is shown to them).
    regions: Vec<&'a str>,
    list: i64,
    file_name: &'a str,
    sha256: &'a str,
    households: usize,
    people: usize,
    added: i64,
    removed: i64,
}

fn list_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RecipientList> {
    Ok(RecipientList {
        id: r.get(0)?,
        uploaded_at: r.get(1)?,
        actor: r.get(2)?,
        file_name: r.get(3)?,
        path: r.get(4)?,
        sha256: r.get(5)?,
        households: r.get(6)?,
        people: r.get(7)?,
        added: r.get(8)?,
        removed: r.get(9)?,
    })
}

const LIST_COLUMNS: &str =
    "id, uploaded_at, actor, file_name, path, sha256, households, people, added, removed";

impl State {
    /// How many households of the current list `households` would remove, and how many
    /// the current list has.
    pub fn removal_of(&self, households: &[ListedHousehold]) -> Result<(usize, usize), StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT household_id FROM recipient_households")
            .map_err(self.err("read the recipients list"))?;
        let current: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(self.err("read the recipients list"))?
            .collect::<Result<_, _>>()
            .map_err(self.err("read the recipients list"))?;
        let new: std::collections::HashSet<&str> =
            households.iter().map(|h| h.household_id.as_str()).collect();
        let removed = current.iter().filter(|h| !new.contains(h.as_str())).count();
        Ok((removed, current.len()))
    }

    /// Makes `households` (read from the file kept at `path`) the current recipients
    /// list, in one transaction with its audit entry (kind `recipients`): all of it or
    /// nothing. Returns the list as recorded.
    pub fn replace_recipients(
        &mut self,
        actor: &str,
        file_name: &str,
        path: &str,
        sha256: &str,
        households: &[ListedHousehold],
        people: usize,
    ) -> Result<RecipientList, StateError> {
        let appender = self.appender()?;
        let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (list, seq, hash) = self.write("replace the recipients list", |tx, db| {
            let q = |what: &'static str| super::db::query_err(db, what);
            // The regions of both lists: the audit is shown to those whose households
            // were added and to those whose households were removed.
            let before: Vec<String> = {
                let mut stmt = tx
                    .prepare("SELECT DISTINCT region_code FROM recipient_households")
                    .map_err(q("replace the recipients list"))?;
                let rows = stmt
                    .query_map([], |r| r.get(0))
                    .map_err(q("replace the recipients list"))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(q("replace the recipients list"))?
            };
            tx.execute_batch(
                "CREATE TEMP TABLE IF NOT EXISTS new_recipients (household_id TEXT PRIMARY KEY);
                 DELETE FROM new_recipients;",
            )
            .map_err(q("compare the recipients lists"))?;
            {
                let mut put = tx
                    .prepare("INSERT OR IGNORE INTO new_recipients (household_id) VALUES (?1)")
                    .map_err(q("compare the recipients lists"))?;
                for h in households {
                    put.execute([&h.household_id])
                        .map_err(q("compare the recipients lists"))?;
                }
            }
            let removed: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM recipient_households
                     WHERE household_id NOT IN (SELECT household_id FROM new_recipients)",
                    [],
                    |r| r.get(0),
                )
                .map_err(q("compare the recipients lists"))?;
            let kept: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM recipient_households
                     WHERE household_id IN (SELECT household_id FROM new_recipients)",
                    [],
                    |r| r.get(0),
                )
                .map_err(q("compare the recipients lists"))?;
            let added = households.len() as i64 - kept;
            tx.execute_batch("DELETE FROM recipient_households; DELETE FROM new_recipients;")
                .map_err(q("replace the recipients list"))?;
            {
                let mut put = tx
                    .prepare(
                        "INSERT INTO recipient_households (household_id, region_code, members)
                         VALUES (?1, ?2, ?3)",
                    )
                    .map_err(q("replace the recipients list"))?;
                for h in households {
                    put.execute(params![h.household_id, h.region_code, h.members])
                        .map_err(q("replace the recipients list"))?;
                }
            }
            tx.execute(
                "INSERT INTO recipient_lists (uploaded_at, actor, file_name, path, sha256,
                                              households, people, added, removed)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    at,
                    actor,
                    file_name,
                    path,
                    sha256,
                    households.len() as i64,
                    people as i64,
                    added,
                    removed
                ],
            )
            .map_err(q("replace the recipients list"))?;
            let id = tx.last_insert_rowid();
            let regions: std::collections::BTreeSet<&str> = households
                .iter()
                .map(|h| h.region_code.as_str())
                .chain(before.iter().map(String::as_str))
                .collect();
            let detail = Replaced {
                of: format!("recipients:{id}"),
                regions: regions.into_iter().collect(),
                list: id,
                file_name,
                sha256,
                households: households.len(),
                people,
                added,
                removed,
            };
            let (seq, hash) = append_in(tx, db, &appender, actor, "recipients", &detail)?;
            let list = tx
                .query_row(
                    &format!("SELECT {LIST_COLUMNS} FROM recipient_lists WHERE id = ?1"),
                    [id],
                    list_row,
                )
                .map_err(q("replace the recipients list"))?;
            Ok((list, seq, hash))
        })?;
        self.anchor_after(&appender.key, seq, &hash);
        Ok(list)
    }

    /// The current recipients list, if one was ever uploaded.
    pub fn current_recipients(&self) -> Result<Option<RecipientList>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {LIST_COLUMNS} FROM recipient_lists ORDER BY id DESC LIMIT 1"),
                [],
                list_row,
            )
            .optional()
            .map_err(self.err("read the recipients list"))
    }

    /// Up to `limit` lists uploaded before list `before` (newest first).
    pub fn recipient_lists(
        &self,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<RecipientList>, StateError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {LIST_COLUMNS} FROM recipient_lists WHERE id < ?1 ORDER BY id DESC LIMIT ?2"
            ))
            .map_err(self.err("read the recipients lists"))?;
        let rows = stmt
            .query_map(params![before.unwrap_or(i64::MAX), limit as i64], list_row)
            .map_err(self.err("read the recipients lists"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("read the recipients lists"))
    }

    /// Up to `limit` households of the current list, in household id order, from the
    /// `from`-th (0-based, of every region), whose region code starts with one of
    /// `prefixes`, looking at `scan` households at most; and where the next page starts
    /// (`None` once the list is exhausted).
    pub fn listed_households(
        &self,
        from: u64,
        prefixes: &[String],
        limit: usize,
        scan: usize,
    ) -> Result<(Vec<ListedHousehold>, Option<u64>), StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT household_id, region_code, members FROM recipient_households
                 ORDER BY household_id LIMIT -1 OFFSET ?1",
            )
            .map_err(self.err("read the recipients list"))?;
        // An offset past what SQLite counts is past the end.
        let Ok(offset) = i64::try_from(from) else {
            return Ok((Vec::new(), None));
        };
        let mut rows = stmt
            .query([offset])
            .map_err(self.err("read the recipients list"))?;
        let (mut out, mut at) = (Vec::new(), from);
        while let Some(r) = rows.next().map_err(self.err("read the recipients list"))? {
            at = at.saturating_add(1);
            let h = ListedHousehold {
                household_id: r.get(0).map_err(self.err("read the recipients list"))?,
                region_code: r.get(1).map_err(self.err("read the recipients list"))?,
                members: r.get(2).map_err(self.err("read the recipients list"))?,
            };
            if prefixes
                .iter()
                .any(|p| h.region_code.starts_with(p.as_str()))
            {
                out.push(h);
            }
            if out.len() == limit || at - from >= scan as u64 {
                // More may follow.
                let more = rows
                    .next()
                    .map_err(self.err("read the recipients list"))?
                    .is_some();
                return Ok((out, more.then_some(at)));
            }
        }
        Ok((out, None))
    }

    /// Forgets the lists uploaded before `before` (RFC 3339), the current one excepted;
    /// returns the files that no list, run or job names any more (the caller deletes
    /// them).
    pub fn expire_recipient_lists(&mut self, before: &str) -> Result<Vec<String>, StateError> {
        self.write("expire old recipients lists", |tx, db| {
            let q = |what: &'static str| super::db::query_err(db, what);
            let mut stmt = tx
                .prepare(
                    "SELECT DISTINCT path FROM recipient_lists
                     WHERE uploaded_at < ?1
                       AND id < (SELECT MAX(id) FROM recipient_lists)",
                )
                .map_err(q("expire old recipients lists"))?;
            let paths = stmt
                .query_map([before], |r| r.get::<_, String>(0))
                .map_err(q("expire old recipients lists"))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(q("expire old recipients lists"))?;
            drop(stmt);
            tx.execute(
                "DELETE FROM recipient_lists
                 WHERE uploaded_at < ?1 AND id < (SELECT MAX(id) FROM recipient_lists)",
                [before],
            )
            .map_err(q("expire old recipients lists"))?;
            let mut unused = Vec::new();
            for path in paths {
                let named: bool = tx
                    .query_row(
                        "SELECT EXISTS (SELECT 1 FROM recipient_lists WHERE path = ?1)
                             OR EXISTS (SELECT 1 FROM runs WHERE recipients = ?1)
                             OR EXISTS (SELECT 1 FROM jobs WHERE input = ?1)",
                        [&path],
                        |r| r.get(0),
                    )
                    .map_err(q("expire old recipients lists"))?;
                if !named {
                    unused.push(path);
                }
            }
            Ok(unused)
        })
    }

    /// The region codes of the current list's households.
    pub fn listed_regions(&self) -> Result<Vec<String>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT region_code FROM recipient_households")
            .map_err(self.err("read the recipients list"))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(self.err("read the recipients list"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("read the recipients list"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn household(id: &str) -> ListedHousehold {
        ListedHousehold {
            household_id: id.into(),
            region_code: "410102".into(),
            members: "[]".into(),
        }
    }

    /// A replacement counts what it added and removed, keeps the history, and is
    /// audited; the current list is the newest.
    #[test]
    fn a_list_replaces_the_one_before() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        assert_eq!(s.current_recipients().unwrap(), None);
        let first = s
            .replace_recipients(
                "token:a",
                "r.csv",
                "p1",
                "h1",
                &[household("A"), household("B")],
                3,
            )
            .unwrap();
        assert_eq!((first.households, first.added, first.removed), (2, 2, 0));
        let second = s
            .replace_recipients(
                "user:zhang",
                "r2.csv",
                "p2",
                "h2",
                &[household("B"), household("C")],
                2,
            )
            .unwrap();
        assert_eq!((second.households, second.added, second.removed), (2, 1, 1));
        assert_eq!(s.current_recipients().unwrap().unwrap().id, second.id);
        let (page, next) = s.listed_households(0, &["41".into()], 10, 100).unwrap();
        let ids: Vec<String> = page.into_iter().map(|h| h.household_id).collect();
        assert_eq!(
            (ids.as_slice(), next),
            (&["B".to_owned(), "C".to_owned()][..], None)
        );
        let (page, next) = s.listed_households(0, &["41".into()], 1, 100).unwrap();
        assert_eq!((page[0].household_id.as_str(), next), ("B", Some(1)));
        let (page, next) = s.listed_households(1, &["41".into()], 1, 100).unwrap();
        assert_eq!((page[0].household_id.as_str(), next), ("C", None));
        // Other regions: nothing, and a scan that stops early says where to go on.
        assert_eq!(
            s.listed_households(0, &["51".into()], 10, 100).unwrap(),
            (vec![], None)
        );
        assert_eq!(
            s.listed_households(0, &["51".into()], 10, 1).unwrap(),
            (vec![], Some(1))
        );
        let history = s.recipient_lists(None, 10).unwrap();
        assert_eq!(
            history.iter().map(|l| l.id).collect::<Vec<_>>(),
            [second.id, first.id]
        );
        assert_eq!(s.recipient_lists(Some(second.id), 10).unwrap().len(), 1);
        let kinds: Vec<String> = s
            .audit_entries()
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["recipients", "recipients"]);
        assert_eq!(s.verify_audit().unwrap(), Ok(2));
        // Retention forgets old lists but the current one, and gives back the files no
        // list, run or job names.
        s.begin_run("2026-12-01", "p2", "lake").unwrap();
        let third = s
            .replace_recipients("token:a", "r3.csv", "p3", "h3", &[household("C")], 1)
            .unwrap();
        let unused = s.expire_recipient_lists("9999-01-01T00:00:00Z").unwrap();
        assert_eq!(unused, ["p1"], "p2 is read by a run");
        let left: Vec<i64> = s
            .recipient_lists(None, 10)
            .unwrap()
            .iter()
            .map(|l| l.id)
            .collect();
        assert_eq!(left, [third.id]);
        assert!(s
            .expire_recipient_lists("9999-01-01T00:00:00Z")
            .unwrap()
            .is_empty());
    }
}
