//! Reconciliation runs (SPEC §7 `reconcile`): recorded `running` before any work; only a
//! run that finished writing its outputs becomes `done`, in one transaction with its
//! households, its changes and its audit entry. A run that fails is marked `failed`; one
//! that is killed stays `running`. Neither is ever the previous run of a later one: the
//! baseline is always the latest `done` run.

use std::collections::BTreeMap;

use rusqlite::{params, OptionalExtension};

use crate::changes::Kept;

use super::db::{query_err, State, StateError};

/// A reconciliation run completed: what it found per household and the changes it
/// reported (see [`super::complete`]).
#[derive(Debug, Clone, Copy)]
pub struct RunDone<'a> {
    /// The run.
    pub id: i64,
    /// What it found, by household.
    pub households: &'a BTreeMap<String, Kept>,
    /// What it reported as changed (`None`: nothing).
    pub changes: Option<crate::changes::Written<'a>>,
}

/// Marks run `done.id` done with what it found, within the write transaction `tx`: it
/// becomes the baseline of the next run only when `tx` commits.
pub(super) fn finish_in(
    tx: &rusqlite::Transaction<'_>,
    path: &str,
    done: &RunDone<'_>,
) -> Result<(), StateError> {
    let q = |what: &str| query_err(path, what);
    let mut stmt = tx
        .prepare("INSERT INTO run_households (run_id, household_id, kept) VALUES (?1, ?2, ?3)")
        .map_err(q("store the run's households"))?;
    for (hid, kept) in done.households {
        let text = serde_json::to_string(kept).map_err(|e| StateError::Corrupt {
            path: path.to_owned(),
            run: done.id,
            why: e.to_string(),
        })?;
        stmt.execute(params![done.id, hid, text])
            .map_err(q("store the run's households"))?;
    }
    let mut stmt = tx
        .prepare(
            "INSERT INTO run_changes (run_id, household_id, region_code, change) VALUES (?1, ?2, ?3, ?4)",
        )
        .map_err(q("store the run's changes"))?;
    if let Some(written) = done.changes {
        // Read back line by line from the file the run wrote: never held whole.
        let unreadable = |why: String| StateError::ChangesFile {
            path: path.to_owned(),
            run: done.id,
            file: written.file.display().to_string(),
            why,
        };
        let file = std::fs::File::open(written.file).map_err(|e| unreadable(e.to_string()))?;
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(file));
        for (hid, region) in written.households {
            let line = lines
                .next()
                .ok_or_else(|| unreadable("fewer lines than changes".into()))?
                .map_err(|e| unreadable(e.to_string()))?;
            // The line must be this run's change of this household (another run writing
            // to the same folder meanwhile would be stored as this one's otherwise).
            let of = serde_json::from_str::<serde_json::Value>(&line)
                .ok()
                .and_then(|v| {
                    v.get("household_id")
                        .and_then(|h| h.as_str())
                        .map(str::to_owned)
                });
            if of.as_deref() != Some(hid.as_str()) {
                return Err(unreadable(format!(
                    "a line is not the change of household {hid} this run found: was the output folder written by another run meanwhile?"
                )));
            }
            stmt.execute(params![done.id, hid, region, line])
                .map_err(q("store the run's changes"))?;
        }
        if lines.next().is_some() {
            return Err(unreadable(
                "more lines than changes: was the output folder written by another run meanwhile?"
                    .into(),
            ));
        }
    }
    drop(stmt);
    let finished = tx
        .execute(
            "UPDATE runs SET status = 'done', finished_at = ?2 WHERE id = ?1 AND status = 'running'",
            params![done.id, chrono::Utc::now().to_rfc3339()],
        )
        .map_err(q("finish the run"))?;
    if finished == 0 {
        let status: String = tx
            .query_row(
                "SELECT status FROM runs WHERE id = ?1",
                params![done.id],
                |r| r.get(0),
            )
            .optional()
            .map_err(q("finish the run"))?
            .unwrap_or_else(|| "gone".into());
        return Err(StateError::RunNotRunning {
            path: path.to_owned(),
            run: done.id,
            status,
        });
    }
    Ok(())
}

/// Marks run `run` failed with `error` within `tx`, if it is still running.
pub(super) fn fail_in(
    tx: &rusqlite::Transaction<'_>,
    path: &str,
    run: i64,
    error: &str,
) -> Result<(), StateError> {
    tx.execute(
        "UPDATE runs SET status = 'failed', finished_at = ?2, error = ?3
         WHERE id = ?1 AND status = 'running'",
        params![
            run,
            chrono::Utc::now().to_rfc3339(),
            hedui_connectors::idnum::mask_ids_in(error)
        ],
    )
    .map_err(query_err(path, "mark the run failed"))?;
    Ok(())
}

/// A reconciliation run as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    /// Its id, growing.
    pub id: i64,
    /// `running`, `done` or `failed`.
    pub status: String,
    /// When it began (RFC 3339).
    pub started_at: String,
    /// The check date D.
    pub as_of: String,
}

impl State {
    /// Records a reconciliation run as `running`; returns its id.
    pub fn begin_run(
        &self,
        as_of: &str,
        recipients: &str,
        sources: &str,
    ) -> Result<i64, StateError> {
        self.conn
            .execute(
                "INSERT INTO runs (kind, status, started_at, as_of, recipients, sources)
                 VALUES ('reconcile', 'running', ?1, ?2, ?3, ?4)",
                params![chrono::Utc::now().to_rfc3339(), as_of, recipients, sources],
            )
            .map_err(self.err("record the run"))?;
        Ok(self.conn.last_insert_rowid())
    }

    /// Records the region codes of the households run `run` checks (known once the
    /// recipients are read), so that the run is visible to their regions while it runs.
    pub fn set_run_regions(&self, run: i64, regions: &[String]) -> Result<(), StateError> {
        let text = serde_json::to_string(regions).unwrap_or_else(|_| "[]".into());
        self.conn
            .execute(
                "UPDATE runs SET regions = ?2 WHERE id = ?1",
                params![run, text],
            )
            .map_err(self.err("record the run's regions"))?;
        Ok(())
    }

    /// The latest completed run before `run`, if any.
    pub fn previous_done(&self, run: i64) -> Result<Option<Run>, StateError> {
        self.conn
            .query_row(
                "SELECT id, status, started_at, as_of FROM runs
                 WHERE kind = 'reconcile' AND status = 'done' AND id < ?1
                 ORDER BY id DESC LIMIT 1",
                params![run],
                run_row,
            )
            .optional()
            .map_err(self.err("find the previous run"))
    }

    /// What run `run` found per household.
    pub fn households(&self, run: i64) -> Result<BTreeMap<String, Kept>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT household_id, kept FROM run_households WHERE run_id = ?1")
            .map_err(self.err("read a run's households"))?;
        let rows = stmt
            .query_map(params![run], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(self.err("read a run's households"))?;
        let mut out = BTreeMap::new();
        for row in rows {
            let (hid, text) = row.map_err(self.err("read a run's households"))?;
            let kept: Kept = serde_json::from_str(&text).map_err(|e| StateError::Corrupt {
                path: self.path.display().to_string(),
                run,
                why: e.to_string(),
            })?;
            out.insert(hid, kept);
        }
        Ok(out)
    }

    /// Marks run `run` failed with `error` (best effort: the run is never a baseline
    /// either way).
    pub fn fail_run(&mut self, run: i64, error: &str) -> Result<(), StateError> {
        self.write("mark the run failed", |tx, path| {
            fail_in(tx, path, run, error)
        })
    }

    /// The changes a completed run reported: (region_code, change as JSON), by household.
    pub fn changes(&self, run: i64) -> Result<Vec<(String, String)>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT region_code, change FROM run_changes WHERE run_id = ?1 ORDER BY household_id",
            )
            .map_err(self.err("read a run's changes"))?;
        let rows = stmt
            .query_map(params![run], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err("read a run's changes"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("read a run's changes"))
    }

    /// The region codes of the households a run checks (or checked) or reported as gone
    /// from the list (whoever may see those households may see the run).
    pub fn run_regions(&self, run: i64) -> Result<Vec<String>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT kept FROM run_households WHERE run_id = ?1")
            .map_err(self.err("read a run's households"))?;
        let rows = stmt
            .query_map(params![run], |r| r.get::<_, String>(0))
            .map_err(self.err("read a run's households"))?;
        let mut out = std::collections::BTreeSet::new();
        for text in rows {
            let text = text.map_err(self.err("read a run's households"))?;
            if let Ok(k) = serde_json::from_str::<Kept>(&text) {
                out.insert(k.region_code);
            }
        }
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT region_code FROM run_changes WHERE run_id = ?1")
            .map_err(self.err("read a run's regions"))?;
        let gone = stmt
            .query_map(params![run], |r| r.get::<_, String>(0))
            .map_err(self.err("read a run's regions"))?;
        for region in gone {
            out.insert(region.map_err(self.err("read a run's regions"))?);
        }
        let declared: Option<String> = self
            .conn
            .query_row(
                "SELECT regions FROM runs WHERE id = ?1",
                params![run],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("read a run's regions"))?
            .flatten();
        if let Some(text) = declared {
            out.extend(serde_json::from_str::<Vec<String>>(&text).unwrap_or_default());
        }
        Ok(out.into_iter().collect())
    }

    /// Deletes the runs that ended before `before` (RFC 3339), with their households and
    /// changes, except the latest completed run (the next run's baseline); returns how
    /// many.
    pub fn expire_runs(&mut self, before: &str) -> Result<usize, StateError> {
        self.write("expire runs", |tx, path| {
            let q = |what: &str| query_err(path, what);
            let keep: Option<i64> = tx
                .query_row(
                    "SELECT MAX(id) FROM runs WHERE kind = 'reconcile' AND status = 'done'",
                    [],
                    |r| r.get(0),
                )
                .map_err(q("expire runs"))?;
            let keep = keep.unwrap_or(-1);
            let doomed =
            "SELECT id FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?1 AND id <> ?2";
            for table in ["run_households", "run_changes", "handled"] {
                tx.execute(
                    &format!("DELETE FROM {table} WHERE run_id IN ({doomed})"),
                    params![before, keep],
                )
                .map_err(q("expire runs"))?;
            }
            let n = tx
            .execute(
                "DELETE FROM runs WHERE finished_at IS NOT NULL AND finished_at < ?1 AND id <> ?2",
                params![before, keep],
            )
            .map_err(q("expire runs"))?;
            Ok(n)
        })
    }

    /// Run `id`, if there is one.
    pub fn run(&self, id: i64) -> Result<Option<Run>, StateError> {
        self.conn
            .query_row(
                "SELECT id, status, started_at, as_of FROM runs WHERE id = ?1",
                params![id],
                run_row,
            )
            .optional()
            .map_err(self.err("read a run"))
    }

    /// Records the night's pulls run `run` follows (JSON, as its report says them).
    pub fn set_run_pulls(&self, run: i64, pulls: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE runs SET pulls = ?2 WHERE id = ?1",
                params![run, pulls],
            )
            .map_err(self.err("record the night's pulls of a run"))?;
        Ok(())
    }

    /// The night's pulls run `run` followed (JSON), if it followed any.
    pub fn run_pulls(&self, run: i64) -> Result<Option<String>, StateError> {
        self.conn
            .query_row("SELECT pulls FROM runs WHERE id = ?1", params![run], |r| {
                r.get(0)
            })
            .optional()
            .map(Option::flatten)
            .map_err(self.err("read a run"))
    }

    /// The recipients file run `run` read, as it was named.
    pub fn run_recipients(&self, run: i64) -> Result<Option<String>, StateError> {
        self.conn
            .query_row(
                "SELECT recipients FROM runs WHERE id = ?1",
                params![run],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.err("read a run"))
    }

    /// How many changes run `run` reported (of every region).
    pub fn change_count(&self, run: i64) -> Result<i64, StateError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM run_changes WHERE run_id = ?1",
                params![run],
                |r| r.get(0),
            )
            .map_err(self.err("count a run's changes"))
    }

    /// Up to `n` runs with an id below `before` (all when `None`), newest first.
    pub fn runs_page(&self, before: Option<i64>, n: usize) -> Result<Vec<Run>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT id, status, started_at, as_of FROM runs WHERE ?1 IS NULL OR id < ?1
                 ORDER BY id DESC LIMIT ?2",
            )
            .map_err(self.err("list runs"))?;
        let rows = stmt
            .query_map(
                params![before, i64::try_from(n).unwrap_or(i64::MAX)],
                run_row,
            )
            .map_err(self.err("list runs"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("list runs"))
    }

    /// Up to `n` changes of run `run` after household `after`, in household order:
    /// (household_id, region_code, change as JSON).
    pub fn changes_page(
        &self,
        run: i64,
        after: &str,
        n: usize,
    ) -> Result<Vec<(String, String, String)>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT household_id, region_code, change FROM run_changes
                 WHERE run_id = ?1 AND household_id > ?2 ORDER BY household_id LIMIT ?3",
            )
            .map_err(self.err("read the run's changes"))?;
        let rows = stmt
            .query_map(
                params![run, after, i64::try_from(n).unwrap_or(i64::MAX)],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .map_err(self.err("read the run's changes"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("read the run's changes"))
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<Run>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id, status, started_at, as_of FROM runs ORDER BY id DESC")
            .map_err(self.err("list runs"))?;
        let rows = stmt.query_map([], run_row).map_err(self.err("list runs"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("list runs"))
    }
}

/// A `runs` row selected as `id, status, started_at, as_of`.
fn run_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Run> {
    Ok(Run {
        id: r.get(0)?,
        status: r.get(1)?,
        started_at: r.get(2)?,
        as_of: r.get(3)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::state::audit::AuditDetail;
    use crate::state::complete::Completion;

    /// A changes file whose line is not the change of the household the run found (a
    /// second run wrote the same folder) is refused with its own error: the run stays
    /// `running` (never a baseline) and nothing is audited.
    #[test]
    fn a_changes_file_written_by_another_run_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::open(dir.path()).unwrap();
        let run = s.begin_run("2026-11-30", "r.csv", "lake").unwrap();
        let file = dir.path().join("changes.jsonl");
        std::fs::write(&file, "{\"household_id\":\"H9\",\"change\":\"new\"}\n").unwrap();
        let kept = BTreeMap::new();
        let households = [("H1".to_owned(), "410102".to_owned())];
        let detail = AuditDetail {
            households: vec![],
            sources: BTreeMap::new(),
            as_of: "2026-11-30".into(),
        };
        let err = s
            .complete(&Completion {
                run: Some(RunDone {
                    id: run,
                    households: &kept,
                    changes: Some(crate::changes::Written {
                        file: &file,
                        households: &households,
                    }),
                }),
                ..Completion::audit("os:t", "reconcile", &detail)
            })
            .unwrap_err();
        assert!(
            matches!(&err, StateError::ChangesFile { run: r, .. } if *r == run),
            "{err}"
        );
        assert!(err.to_string().contains("another run"), "{err}");
        assert_eq!(s.run(run).unwrap().unwrap().status, "running");
        assert!(s.audit_entries().unwrap().is_empty());
    }
}
