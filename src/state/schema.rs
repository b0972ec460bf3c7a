//! The state database's tables, in one place: reconciliation runs with what each found
//! per household and the changes it reported, the hash-chained audit log, and the jobs
//! of the server. Created when a database is opened.

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
    regions     TEXT
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
    kind         TEXT NOT NULL CHECK (kind IN ('batch', 'reconcile')),
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
