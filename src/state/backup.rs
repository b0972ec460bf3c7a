//! Backing up and restoring the state database: a consistent copy of a database the
//! server may be writing at that moment (SQLite's online backup, in one step: one read
//! transaction, so the copy is the database as one commit left it), and — for a copy
//! restored into another folder — the paths the database keeps of its own files moved
//! from the old folder to the new one.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::db::{StateError, DB_FILE};

/// What a copy of the database holds, to say and to check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// Its schema version.
    pub schema: i64,
    /// The last audit entry it holds (0 for none).
    pub audit_head: i64,
}

/// Copies the database of state folder `dir` into `to` (a new file) while others may be
/// writing it.
pub fn backup_database(dir: &Path, to: &Path) -> Result<Copied, StateError> {
    let path = dir.join(DB_FILE);
    let fail = |why: String| StateError::Open {
        path: path.display().to_string(),
        why,
    };
    if !path.is_file() {
        return Err(fail(
            "there is no state database there (is [state] path right?)".into(),
        ));
    }
    let src = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| fail(e.to_string()))?;
    src.busy_timeout(std::time::Duration::from_secs(30))
        .map_err(|e| fail(e.to_string()))?;
    let mut dst = Connection::open(to).map_err(|e| StateError::Open {
        path: to.display().to_string(),
        why: e.to_string(),
    })?;
    {
        let b = rusqlite::backup::Backup::new(&src, &mut dst).map_err(|e| fail(e.to_string()))?;
        // Every page in one step (-1): one read transaction, so a writer in between
        // cannot make the copy start over. Busy or locked: wait and try again.
        use rusqlite::backup::StepResult;
        let mut waited = 0;
        loop {
            match b
                .step(-1)
                .map_err(|e| fail(format!("the online backup did not complete: {e}")))?
            {
                StepResult::Done => break,
                StepResult::More => continue,
                _ if waited < 600 => {
                    waited += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                _ => {
                    return Err(fail(
                        "the database stayed locked for 30 s; try again".into(),
                    ))
                }
            }
        }
    }
    describe(&dst).map_err(|e| StateError::Open {
        path: to.display().to_string(),
        why: e.to_string(),
    })
}

fn describe(conn: &Connection) -> rusqlite::Result<Copied> {
    let schema = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let audit_head = conn
        .query_row("SELECT coalesce(max(seq), 0) FROM audit", [], |r| r.get(0))
        .or_else(|e| match e {
            // A database that never audited has no table yet.
            rusqlite::Error::SqliteFailure(..) => Ok(0),
            e => Err(e),
        })?;
    Ok(Copied { schema, audit_head })
}

/// The columns that hold paths of the state folder's own files.
const OWN_PATHS: [(&str, &str); 3] = [
    ("jobs", "input"),
    ("runs", "recipients"),
    ("recipient_lists", "path"),
];

/// `p` as the database compares it: its components joined, without a trailing `/` or
/// `.` segments (`/var/lib/hedui/state/` and `/var/lib/hedui/state` are one folder).
fn plain(p: &Path) -> String {
    p.components()
        .collect::<std::path::PathBuf>()
        .display()
        .to_string()
}

/// The paths under state folder `dir` that database `db` names and that are not there
/// yet in `staged` (where the folder is being assembled): files a backup lacked.
pub fn missing_files(db: &Path, dir: &Path, staged: &Path) -> Result<Vec<String>, StateError> {
    let fail = |why: String| StateError::Open {
        path: db.display().to_string(),
        why,
    };
    let dir_s = plain(dir);
    let conn = Connection::open(db).map_err(|e| fail(e.to_string()))?;
    let mut missing = Vec::new();
    for (table, column) in OWN_PATHS {
        let Ok(mut stmt) = conn.prepare(&format!("SELECT {column} FROM {table}")) else {
            continue;
        };
        let paths: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| fail(e.to_string()))?
            .filter_map(Result::ok)
            .collect();
        for p in paths {
            let Ok(rel) = Path::new(&p).strip_prefix(&dir_s) else {
                continue;
            };
            if !staged.join(rel).exists() && !missing.contains(&p) {
                missing.push(p);
            }
        }
    }
    Ok(missing)
}

/// In the database file `db`, the paths of the state folder's own files (jobs' inputs,
/// the runs' and the hub's recipients lists) that lie under `old` are moved under `new`;
/// others (a config's recipients file) are left. The audit log is never touched: its
/// entries are as they were written. Returns how many paths were moved.
pub fn move_paths(db: &Path, old: &Path, new: &Path) -> Result<usize, StateError> {
    let fail = |why: String| StateError::Open {
        path: db.display().to_string(),
        why,
    };
    let (old, new) = (plain(old), plain(new));
    if old.is_empty() || old == new {
        return Ok(0);
    }
    let mut conn = Connection::open(db).map_err(|e| fail(e.to_string()))?;
    let tx = conn.transaction().map_err(|e| fail(e.to_string()))?;
    let mut moved = 0;
    for (table, column) in OWN_PATHS {
        let exists: bool = tx
            .query_row(
                "SELECT count(*) > 0 FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [table],
                |r| r.get(0),
            )
            .map_err(|e| fail(e.to_string()))?;
        if !exists {
            continue;
        }
        moved += tx
            .execute(
                &format!(
                    "UPDATE {table} SET {column} = ?2 || substr({column}, length(?1) + 1) \
                     WHERE substr({column}, 1, length(?1) + 1) = ?1 || '/'"
                ),
                [&old, &new],
            )
            .map_err(|e| fail(e.to_string()))?;
    }
    tx.commit().map_err(|e| fail(e.to_string()))?;
    Ok(moved)
}

/// The paths database `db` names that must lie in its state folder — the hub's
/// recipients lists and the batches' inputs, which it keeps there itself — and do not lie
/// under `dir`: after [`move_paths`], a sign that the folder the backup said it came from
/// was not the one the database lived in.
pub fn strays(db: &Path, dir: &Path) -> Result<Vec<String>, StateError> {
    let fail = |why: String| StateError::Open {
        path: db.display().to_string(),
        why,
    };
    let dir_s = plain(dir);
    let conn = Connection::open(db).map_err(|e| fail(e.to_string()))?;
    let mut out = Vec::new();
    for sql in [
        "SELECT path FROM recipient_lists",
        "SELECT input FROM jobs WHERE kind = 'batch'",
    ] {
        let Ok(mut stmt) = conn.prepare(sql) else {
            continue;
        };
        let paths: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .map_err(|e| fail(e.to_string()))?
            .filter_map(Result::ok)
            .collect();
        out.extend(
            paths
                .into_iter()
                .filter(|p| !Path::new(p).starts_with(&dir_s)),
        );
    }
    Ok(out)
}
