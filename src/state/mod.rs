//! The embedded state database (SQLite through rusqlite, bundled): reconciliation runs and
//! what each completed run found per household, so the next run can say what changed;
//! and the hash-chained audit log ([`audit`]).
//!
//! A run is recorded as `running` before any work; only a run that finished writing its
//! outputs becomes `done`, in one transaction with its households. A run that fails is
//! marked `failed`; one that is killed stays `running`. Neither is ever the previous run
//! of a later one: the baseline is always the latest `done` run.

pub mod audit;
pub mod jobs;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use crate::changes::Kept;

/// The database file inside a state folder.
pub const DB_FILE: &str = "hedui.db";

/// Failures of the state database.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The folder or the database cannot be opened or created.
    #[error("cannot open the state database {path}: {why}")]
    Open {
        /// The database file.
        path: String,
        /// Why.
        why: String,
    },
    /// A query failed.
    #[error("state database {path}: cannot {what}: {source}")]
    Query {
        /// The database file.
        path: String,
        /// What was being done.
        what: String,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A stored record that cannot be read back.
    #[error("state database {path}: run {run} holds an unreadable household record: {why}")]
    Corrupt {
        /// The database file.
        path: String,
        /// The run.
        run: i64,
        /// Why.
        why: String,
    },
}

/// The error of a failed query on the database at `path`, while doing `what`.
pub(crate) fn query_err(path: &str, what: &str) -> impl FnOnce(rusqlite::Error) -> StateError {
    let (path, what) = (path.to_owned(), what.to_owned());
    move |source| StateError::Query { path, what, source }
}

/// An open state database.
pub struct State {
    conn: Connection,
    path: PathBuf,
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

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed')),
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    as_of       TEXT NOT NULL,
    recipients  TEXT NOT NULL,
    sources     TEXT NOT NULL,
    error       TEXT,
    regions     TEXT
);
CREATE TABLE IF NOT EXISTS run_changes (
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    household_id TEXT NOT NULL,
    region_code  TEXT NOT NULL,
    change       TEXT NOT NULL,
    PRIMARY KEY (run_id, household_id)
);
CREATE TABLE IF NOT EXISTS run_households (
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    household_id TEXT NOT NULL,
    kept         TEXT NOT NULL,
    PRIMARY KEY (run_id, household_id)
);
";

impl State {
    /// Opens the database in folder `dir` for reading: it must exist (nothing is
    /// created by a command that only reads).
    pub fn open_existing(dir: &Path) -> Result<State, StateError> {
        let path = dir.join(DB_FILE);
        if !path.is_file() {
            return Err(StateError::Open {
                path: path.display().to_string(),
                why: "there is no state database there (is the folder right?)".into(),
            });
        }
        State::open(dir)
    }

    /// Whether the database answers.
    pub fn ping(&self) -> Result<(), StateError> {
        self.conn
            .query_row("SELECT 1", [], |_| Ok(()))
            .map_err(self.err("answer"))
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens (creating if needed) the database in folder `dir`.
    pub fn open(dir: &Path) -> Result<State, StateError> {
        let path = dir.join(DB_FILE);
        let open_err = |why: String| StateError::Open {
            path: path.display().to_string(),
            why,
        };
        std::fs::create_dir_all(dir).map_err(|e| open_err(e.to_string()))?;
        let conn = Connection::open(&path).map_err(|e| open_err(e.to_string()))?;
        // WAL: readers (the server) never wait for a run being written; a busy database
        // is waited for, not failed.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| open_err(e.to_string()))?;
        conn.execute_batch(SCHEMA)
            .map_err(|e| open_err(e.to_string()))?;
        conn.execute_batch(audit::SCHEMA)
            .map_err(|e| open_err(e.to_string()))?;
        conn.execute_batch(jobs::SCHEMA)
            .map_err(|e| open_err(e.to_string()))?;
        // Databases made before runs kept their regions get the column.
        let has_regions: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info('runs') WHERE name = 'regions')",
                [],
                |r| r.get(0),
            )
            .map_err(|e| open_err(e.to_string()))?;
        if !has_regions {
            conn.execute_batch("ALTER TABLE runs ADD COLUMN regions TEXT")
                .map_err(|e| open_err(e.to_string()))?;
        }
        Ok(State { conn, path })
    }

    fn err(&self, what: &str) -> impl FnOnce(rusqlite::Error) -> StateError {
        query_err(&self.path.display().to_string(), what)
    }

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

    /// Completes run `run` with what it found and the changes it reported, appends its
    /// audit entry and (for a job) completes the job, all in one transaction: the run
    /// becomes the baseline of the next run only now, and is audited exactly once.
    pub fn finish_run(
        &mut self,
        run: i64,
        households: &BTreeMap<String, Kept>,
        changes: &[crate::changes::Change],
        audit: (&str, &str, &audit::AuditDetail),
        job: Option<(&str, &serde_json::Value)>,
    ) -> Result<(), StateError> {
        let key = self.audit_key()?;
        let path = self.path.display().to_string();
        let q = |what: &str| query_err(&path, what);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(q("finish the run"))?;
        {
            let mut stmt = tx
                .prepare(
                    "INSERT INTO run_households (run_id, household_id, kept) VALUES (?1, ?2, ?3)",
                )
                .map_err(q("store the run's households"))?;
            for (hid, kept) in households {
                let text = serde_json::to_string(kept).map_err(|e| StateError::Corrupt {
                    path: path.clone(),
                    run,
                    why: e.to_string(),
                })?;
                stmt.execute(params![run, hid, text])
                    .map_err(q("store the run's households"))?;
            }
            let mut stmt = tx
                .prepare(
                    "INSERT INTO run_changes (run_id, household_id, region_code, change) VALUES (?1, ?2, ?3, ?4)",
                )
                .map_err(q("store the run's changes"))?;
            for c in changes {
                let text = serde_json::to_string(c).map_err(|e| StateError::Corrupt {
                    path: path.clone(),
                    run,
                    why: e.to_string(),
                })?;
                stmt.execute(params![run, c.household_id, c.region_code, text])
                    .map_err(q("store the run's changes"))?;
            }
        }
        tx.execute(
            "UPDATE runs SET status = 'done', finished_at = ?2 WHERE id = ?1",
            params![run, chrono::Utc::now().to_rfc3339()],
        )
        .map_err(q("finish the run"))?;
        let (actor, kind, detail) = audit;
        audit::append_in(&tx, &path, &key, actor, kind, detail)?;
        if let Some((id, summary)) = job {
            jobs::mark_done_in(&tx, &path, id, summary)?;
        }
        tx.commit().map_err(q("finish the run"))
    }

    /// Marks run `run` failed with `error` (best effort: the run is never a baseline
    /// either way).
    pub fn fail_run(&self, run: i64, error: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE runs SET status = 'failed', finished_at = ?2, error = ?3 WHERE id = ?1",
                params![
                    run,
                    chrono::Utc::now().to_rfc3339(),
                    hedui_connectors::idnum::mask_ids_in(error)
                ],
            )
            .map_err(self.err("mark the run failed"))?;
        Ok(())
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
        let path = self.path.display().to_string();
        let q = |what: &str| query_err(&path, what);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(q("expire runs"))?;
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
        for table in ["run_households", "run_changes"] {
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
        tx.commit().map_err(q("expire runs"))?;
        Ok(n)
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
