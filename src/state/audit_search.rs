//! Finding a person in the audit log ("who looked at my records?"): the ID number typed
//! in is hashed as the log hashes members, the households it was checked in are found,
//! and the entries naming it or those households are listed — in chain order, a page at
//! a time, filtered in SQL first so that a long log is never read into memory.

use rusqlite::params_from_iter;

use super::audit::{entry_row, AuditEntry};
use super::db::{State, StateError};

/// Households a person's search follows at most (their reads are found by household).
pub const MAX_HOUSEHOLDS: usize = 200;

impl State {
    /// The households (as the log names them, with their regions) whose check entries
    /// list the member hashed as `member_hash`.
    pub fn households_of_member(
        &self,
        member_hash: &str,
    ) -> Result<Vec<(String, String)>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT detail FROM audit WHERE instr(detail, ?1) > 0 ORDER BY seq")
            .map_err(self.err("search the audit log"))?;
        let rows = stmt
            .query_map([member_hash], |r| r.get::<_, String>(0))
            .map_err(self.err("search the audit log"))?;
        let mut out: Vec<(String, String)> = Vec::new();
        for detail in rows {
            let detail = detail.map_err(self.err("search the audit log"))?;
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&detail) else {
                continue;
            };
            for h in v["households"].as_array().into_iter().flatten() {
                let named = h["members"]
                    .as_array()
                    .is_some_and(|ms| ms.iter().any(|m| m.as_str() == Some(member_hash)));
                let key = (
                    h["household_id"].as_str().unwrap_or("").to_owned(),
                    h["region_code"].as_str().unwrap_or("").to_owned(),
                );
                if named && !out.contains(&key) && out.len() < MAX_HOUSEHOLDS {
                    out.push(key);
                }
            }
        }
        Ok(out)
    }

    /// Up to `n` entries after `after` whose detail holds one of `needles` (all entries
    /// when there are none), at or after `from` and before `to`, in chain order.
    pub fn audit_matching(
        &self,
        after: i64,
        from: Option<&str>,
        to: Option<&str>,
        needles: &[String],
        n: usize,
    ) -> Result<Vec<AuditEntry>, StateError> {
        if needles.is_empty() {
            return self.audit_page(after, from, to, n);
        }
        let any: Vec<String> = (0..needles.len())
            .map(|i| format!("instr(detail, ?{}) > 0", i + 5))
            .collect();
        let sql = format!(
            "SELECT seq, at, actor, kind, detail, prev_hash, hash FROM audit
             WHERE seq > ?1 AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3)
               AND ({}) ORDER BY seq LIMIT ?4",
            any.join(" OR ")
        );
        let mut values: Vec<rusqlite::types::Value> = vec![
            after.into(),
            from.map(str::to_owned).into(),
            to.map(str::to_owned).into(),
            i64::try_from(n).unwrap_or(i64::MAX).into(),
        ];
        values.extend(needles.iter().map(|s| s.clone().into()));
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(self.err("search the audit log"))?;
        let rows = stmt
            .query_map(params_from_iter(values), entry_row)
            .map_err(self.err("search the audit log"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("search the audit log"))
    }
}
