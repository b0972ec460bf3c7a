//! The people a token had checked on a day — API checks and batches together — kept as
//! keyed hashes of their ID numbers, so that `[[token]] max_people_per_day` bounds how
//! many people's records one token can draw in a day (a household may declare anyone).

use rusqlite::params;

use super::db::{query_err, State, StateError};

/// What [`State::admit_people`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum People {
    /// Admitted: the token's people today now, and how many this request added.
    Admitted {
        /// People checked today, with this request's.
        today: usize,
        /// People of this request not checked today before.
        added: usize,
    },
    /// Refused: this many already today, and the request would add this many more.
    Refused {
        /// People checked today so far.
        today: usize,
        /// People of this request not yet checked today.
        more: usize,
    },
}

impl State {
    /// Counts `people` (hashes) against `token`'s day `day`: admitted (and recorded)
    /// when the day's distinct people stay within `cap`, refused (nothing recorded)
    /// otherwise — in one write transaction.
    pub fn admit_people(
        &mut self,
        token: &str,
        day: &str,
        people: &[String],
        cap: usize,
    ) -> Result<People, StateError> {
        self.write("count the people checked today", |tx, path| {
            let q = |what: &str| query_err(path, what);
            let today: i64 = tx
                .query_row(
                    "SELECT COUNT(*) FROM people_checked WHERE token = ?1 AND day = ?2",
                    params![token, day],
                    |r| r.get(0),
                )
                .map_err(q("count the people checked today"))?;
            let mut known = tx
                .prepare_cached(
                    "SELECT 1 FROM people_checked WHERE token = ?1 AND day = ?2 AND person = ?3",
                )
                .map_err(q("count the people checked today"))?;
            let mut fresh: Vec<&String> = Vec::new();
            for p in people {
                if !fresh.contains(&p)
                    && !known
                        .exists(params![token, day, p])
                        .map_err(q("count the people checked today"))?
                {
                    fresh.push(p);
                }
            }
            drop(known);
            let today = usize::try_from(today).unwrap_or(usize::MAX);
            if today.saturating_add(fresh.len()) > cap {
                return Ok(People::Refused {
                    today,
                    more: fresh.len(),
                });
            }
            let mut add = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO people_checked (token, day, person) VALUES (?1, ?2, ?3)",
                )
                .map_err(q("record the people checked today"))?;
            for p in &fresh {
                add.execute(params![token, day, p])
                    .map_err(q("record the people checked today"))?;
            }
            Ok(People::Admitted {
                today: today + fresh.len(),
                added: fresh.len(),
            })
        })
    }

    /// Forgets the days before `day` (retention of the daily counts).
    pub fn forget_people_before(&self, day: &str) -> Result<usize, StateError> {
        self.conn
            .execute("DELETE FROM people_checked WHERE day < ?1", params![day])
            .map_err(self.err("forget old daily counts"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distinct people a day, per token: the same person twice counts once; beyond the
    /// cap nothing is recorded; another token and another day count apart.
    #[test]
    fn people_a_day_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        let p = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        let day = "2026-12-02";
        assert_eq!(
            s.admit_people("t", day, &p(&["a", "b", "a"]), 3).unwrap(),
            People::Admitted { today: 2, added: 2 }
        );
        assert_eq!(
            s.admit_people("t", day, &p(&["a", "b"]), 3).unwrap(),
            People::Admitted { today: 2, added: 0 }
        );
        assert_eq!(
            s.admit_people("t", day, &p(&["c", "d"]), 3).unwrap(),
            People::Refused { today: 2, more: 2 }
        );
        assert_eq!(
            s.admit_people("t", day, &p(&["c"]), 3).unwrap(),
            People::Admitted { today: 3, added: 1 }
        );
        let one = People::Admitted { today: 1, added: 1 };
        assert_eq!(s.admit_people("u", day, &p(&["d"]), 3).unwrap(), one);
        assert_eq!(
            s.admit_people("t", "2026-12-03", &p(&["d"]), 3).unwrap(),
            one
        );
        assert_eq!(s.forget_people_before("2026-12-03").unwrap(), 4);
    }
}
