//! The state database's tables, in one place: reconciliation runs with what each found
//! per household and the changes it reported, the hash-chained audit log, and the jobs
//! of the server. Created when a database is opened, and brought forward from older
//! versions then ([`migrate`]; the version is SQLite's `user_version`).

/// Reconciliation runs, their households and their changes.
pub(super) const RUNS: &str = "
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
    regions     TEXT,
    pulls       TEXT
);
CREATE TABLE IF NOT EXISTS run_changes (
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    household_id TEXT NOT NULL,
    region_code  TEXT NOT NULL,
    change       TEXT NOT NULL,
    PRIMARY KEY (run_id, household_id)
);
CREATE TABLE IF NOT EXISTS handled (
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    household_id TEXT NOT NULL,
    actor        TEXT NOT NULL,
    at           TEXT NOT NULL,
    note         TEXT NOT NULL,
    PRIMARY KEY (run_id, household_id)
);
CREATE TABLE IF NOT EXISTS run_households (
    run_id       INTEGER NOT NULL REFERENCES runs(id),
    household_id TEXT NOT NULL,
    kept         TEXT NOT NULL,
    PRIMARY KEY (run_id, household_id)
);
";

/// The audit log: each entry's hash covers the previous entry's hash.
pub(super) const AUDIT: &str = "
CREATE TABLE IF NOT EXISTS audit (
    seq       INTEGER PRIMARY KEY,
    at        TEXT NOT NULL,
    actor     TEXT NOT NULL,
    kind      TEXT NOT NULL,
    detail    TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash      TEXT NOT NULL
);
";

/// The server's jobs (batches and scheduled reconciliations).
pub(super) const JOBS: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id           TEXT PRIMARY KEY,
    kind         TEXT NOT NULL CHECK (kind IN ('batch', 'reconcile', 'ingest')),
    status       TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    actor        TEXT NOT NULL,
    regions      TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    input        TEXT NOT NULL,
    as_of        TEXT NOT NULL,
    submitted_at TEXT NOT NULL,
    started_at   TEXT,
    finished_at  TEXT,
    attempts     INTEGER NOT NULL DEFAULT 0,
    stage        TEXT,
    steps        INTEGER NOT NULL DEFAULT 0,
    run_id       INTEGER,
    summary      TEXT,
    error        TEXT
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, submitted_at);
CREATE INDEX IF NOT EXISTS jobs_actor ON jobs (actor, started_at);
";

/// The people each token had checked on each day (keyed hashes of their ID numbers):
/// the bound of `[[token]] max_people_per_day`.
pub(super) const PEOPLE: &str = "
CREATE TABLE IF NOT EXISTS people_checked (
    token  TEXT NOT NULL,
    day    TEXT NOT NULL,
    person TEXT NOT NULL,
    PRIMARY KEY (token, day, person)
) WITHOUT ROWID;
";

/// Staff accounts (Argon2id hashes only) and their sessions (the SHA-256 of the cookie
/// only).
pub(super) const ACCOUNTS: &str = "
CREATE TABLE IF NOT EXISTS accounts (
    name         TEXT PRIMARY KEY,
    role         TEXT NOT NULL CHECK (role IN ('staff', 'auditor', 'admin')),
    regions      TEXT NOT NULL,
    hash         TEXT NOT NULL,
    disabled     INTEGER NOT NULL DEFAULT 0,
    failures     INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER,
    created_at   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sessions (
    id_hash    TEXT PRIMARY KEY,
    account    TEXT NOT NULL REFERENCES accounts(name),
    csrf       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    seen_at    INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS sessions_account ON sessions (account);
";

/// The recipients lists (在保名单) the hub kept: each list replaced as a whole, its file
/// kept under the state folder; the households of the current one.
pub(super) const RECIPIENTS: &str = "
CREATE TABLE IF NOT EXISTS recipient_lists (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    uploaded_at TEXT NOT NULL,
    actor       TEXT NOT NULL,
    file_name   TEXT NOT NULL,
    path        TEXT NOT NULL,
    sha256      TEXT NOT NULL,
    households  INTEGER NOT NULL,
    people      INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    removed     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS recipient_households (
    household_id TEXT PRIMARY KEY,
    region_code  TEXT NOT NULL,
    members      TEXT NOT NULL
) WITHOUT ROWID;
";

/// The schema version this build writes:
/// - 0: a database of a release before versions were kept (any of them);
/// - 1: runs keep their regions (`runs.regions`);
/// - 2: the server's jobs include the night's pulls (`jobs.kind` 'ingest');
/// - 3: the hub keeps the recipients list (`recipient_lists`, `recipient_households`),
///   and a run the night's pulls it followed (`runs.pulls`).
pub const VERSION: i64 = 3;

/// Why a database could not be brought to [`VERSION`].
#[derive(Debug)]
pub(super) enum Migration {
    /// It was written by a newer build (its version).
    Newer(i64),
    /// SQLite failed.
    Failed(String),
}

/// Creates the tables of a new database, or brings an older one forward to [`VERSION`]
/// in one transaction (all of it or nothing); a newer one is refused untouched.
pub(super) fn migrate(conn: &rusqlite::Connection) -> Result<(), Migration> {
    let fail = |e: rusqlite::Error| Migration::Failed(e.to_string());
    let version = |c: &rusqlite::Connection| -> Result<i64, Migration> {
        c.query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(fail)
    };
    let found = version(conn)?;
    if found > VERSION {
        return Err(Migration::Newer(found));
    }
    if found == VERSION {
        return Ok(());
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(fail)?;
    let done = (|| {
        // Another process may have migrated it meanwhile.
        let found = version(conn)?;
        if found > VERSION {
            return Err(Migration::Newer(found));
        }
        if found == VERSION {
            return Ok(());
        }
        let exists = |table: &str| -> Result<bool, Migration> {
            conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [table],
                |r| r.get(0),
            )
            .map_err(fail)
        };
        let old = exists("jobs")?;
        for tables in [RUNS, AUDIT, JOBS, PEOPLE, ACCOUNTS, RECIPIENTS] {
            conn.execute_batch(tables).map_err(fail)?;
        }
        if old {
            forward(conn, found)?;
        }
        conn.execute_batch(&format!("PRAGMA user_version = {VERSION}"))
            .map_err(fail)
    })();
    match done {
        Ok(()) => conn.execute_batch("COMMIT").map_err(fail),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

/// The steps from version `from` of an existing database to [`VERSION`].
fn forward(conn: &rusqlite::Connection, from: i64) -> Result<(), Migration> {
    let fail = |e: rusqlite::Error| Migration::Failed(e.to_string());
    // A column of `runs` added by a version, unless the database has it already.
    let add_to_runs = |column: &str| -> Result<(), Migration> {
        let has: bool = conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM pragma_table_info('runs') WHERE name = ?1)",
                [column],
                |r| r.get(0),
            )
            .map_err(fail)?;
        if !has {
            conn.execute_batch(&format!("ALTER TABLE runs ADD COLUMN {column} TEXT"))
                .map_err(fail)?;
        }
        Ok(())
    };
    if from < 1 {
        add_to_runs("regions")?;
    }
    if from < 2 {
        // SQLite cannot change a CHECK: the jobs table is made again with the new one
        // and every row copied.
        conn.execute_batch(
            "ALTER TABLE jobs RENAME TO jobs_v1;
             DROP INDEX IF EXISTS jobs_status;
             DROP INDEX IF EXISTS jobs_actor;",
        )
        .map_err(fail)?;
        conn.execute_batch(JOBS).map_err(fail)?;
        conn.execute_batch(
            "INSERT INTO jobs (id, kind, status, actor, regions, file_name, input, as_of,
                               submitted_at, started_at, finished_at, attempts, stage, steps,
                               run_id, summary, error)
             SELECT id, kind, status, actor, regions, file_name, input, as_of, submitted_at,
                    started_at, finished_at, attempts, stage, steps, run_id, summary, error
             FROM jobs_v1;
             DROP TABLE jobs_v1;",
        )
        .map_err(fail)?;
    }
    if from < 3 {
        // The recipients' tables are new (made above with the others).
        add_to_runs("pulls")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{State, StateError};

    /// A database as the previous release wrote it: no version, jobs of two kinds.
    fn previous_release(dir: &std::path::Path) {
        std::fs::create_dir_all(dir).unwrap();
        let conn = rusqlite::Connection::open(dir.join(crate::state::DB_FILE)).unwrap();
        let old_jobs = JOBS.replace(
            "CHECK (kind IN ('batch', 'reconcile', 'ingest'))",
            "CHECK (kind IN ('batch', 'reconcile'))",
        );
        assert_ne!(old_jobs, JOBS);
        let old_runs = RUNS.replace(",\n    pulls       TEXT", "");
        assert_ne!(old_runs, RUNS);
        for t in [
            old_runs.as_str(),
            AUDIT,
            old_jobs.as_str(),
            PEOPLE,
            ACCOUNTS,
        ] {
            conn.execute_batch(t).unwrap();
        }
        conn.execute(
            "INSERT INTO jobs (id, kind, status, actor, regions, file_name, input, as_of,
                               submitted_at, attempts, steps)
             VALUES ('0123456789abcdef0123456789abcdef', 'batch', 'done', 'token:zz', '4101',
                     '郑州.csv', 'in.csv', '2026-12-01', '2026-12-01T01:00:00.000Z', 1, 3)",
            [],
        )
        .unwrap();
        let err = conn.execute(
            "INSERT INTO jobs (id, kind, status, actor, regions, file_name, input, as_of,
                               submitted_at) VALUES ('x', 'ingest', 'queued', 'schedule', '',
                               '', '', '2026-12-01', '2026-12-01T01:00:00.000Z')",
            [],
        );
        assert!(err.is_err(), "the old table refuses the new kind");
    }

    fn version(dir: &std::path::Path) -> i64 {
        rusqlite::Connection::open(dir.join(crate::state::DB_FILE))
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    }

    /// The previous release's state opens: brought to this version, its jobs kept, the
    /// new kind of job accepted; opening it again changes nothing.
    #[test]
    fn a_previous_release_state_is_brought_forward() {
        let dir = tempfile::tempdir().unwrap();
        previous_release(dir.path());
        let state = State::open(dir.path()).expect("opens");
        assert_eq!(version(dir.path()), VERSION);
        let job = state
            .job("0123456789abcdef0123456789abcdef")
            .unwrap()
            .expect("the old job is kept");
        assert_eq!(
            (job.status.as_str(), job.file_name.as_str()),
            ("done", "郑州.csv")
        );
        state
            .conn
            .execute(
                "INSERT INTO jobs (id, kind, status, actor, regions, file_name, input, as_of,
                                   submitted_at) VALUES ('y', 'ingest', 'queued', 'schedule',
                                   '', '', '', '2026-12-02', '2026-12-02T01:00:00.000Z')",
                [],
            )
            .expect("a pull is a job now");
        // A run keeps the night's pulls; the hub keeps recipients lists.
        state
            .conn
            .execute_batch(
                "UPDATE runs SET pulls = '{}';
                 SELECT COUNT(*) FROM recipient_lists;
                 SELECT COUNT(*) FROM recipient_households;",
            )
            .expect("the tables of version 3");
        drop(state);
        let again = State::open(dir.path()).expect("opens again");
        assert_eq!(version(dir.path()), VERSION);
        assert!(again.job("y").unwrap().is_some());
    }

    /// A database of a newer hedui is refused, named, and left as it was.
    #[test]
    fn a_newer_state_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        drop(State::open(dir.path()).unwrap());
        rusqlite::Connection::open(dir.path().join(crate::state::DB_FILE))
            .unwrap()
            .execute_batch("PRAGMA user_version = 99")
            .unwrap();
        match State::open(dir.path()) {
            Err(
                e @ StateError::Newer {
                    found: 99,
                    known: VERSION,
                    ..
                },
            ) => {
                assert!(e.to_string().contains("schema version 99"), "{e}");
            }
            other => panic!("{:?}", other.map(|_| ())),
        }
        assert_eq!(version(dir.path()), 99);
    }
}
