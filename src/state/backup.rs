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

/// What [`relocate`] did and found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Relocated {
    /// Paths moved from an old state folder to the new one.
    pub moved: usize,
    /// Paths that must lie in the state folder (the hub's lists, the batches' inputs)
    /// and do not: the old folder named was not the one the database lived in.
    pub strays: Vec<String>,
    /// Paths under the new folder whose files `staged` does not hold: files the backup
    /// lacked.
    pub missing: Vec<String>,
}

/// In the database file `db`, the paths of the state folder's own files (jobs' inputs,
/// the runs' and the hub's recipients lists) that lie under one of `olds` are moved
/// under `new`; others (a config's recipients file) are left. The audit log is never
/// touched: its entries are as they were written. Then what should lie under `new` and
/// does not, and what does but is not yet in `staged` (where the folder is assembled).
pub fn relocate(
    db: &Path,
    olds: &[&Path],
    new: &Path,
    staged: &Path,
) -> Result<Relocated, StateError> {
    let fail = |e: rusqlite::Error| StateError::Open {
        path: db.display().to_string(),
        why: e.to_string(),
    };
    let new_s = plain(new);
    let mut conn = Connection::open(db).map_err(fail)?;
    let tx = conn.transaction().map_err(fail)?;
    let tables: Vec<String> = {
        let mut stmt = tx
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
            .map_err(fail)?;
        let names = stmt.query_map([], |r| r.get(0)).map_err(fail)?;
        names.collect::<Result<_, _>>().map_err(fail)?
    };
    let own: Vec<(&str, &str)> = OWN_PATHS
        .into_iter()
        .filter(|(t, _)| tables.iter().any(|n| n == t))
        .collect();
    let mut done = Relocated::default();
    for old in olds.iter().map(|o| plain(o)) {
        if old.is_empty() || old == new_s {
            continue;
        }
        for (table, column) in &own {
            done.moved += tx
                .execute(
                    &format!(
                        "UPDATE {table} SET {column} = ?2 || substr({column}, length(?1) + 1) \
                         WHERE substr({column}, 1, length(?1) + 1) = ?1 || '/'"
                    ),
                    [&old, &new_s],
                )
                .map_err(fail)?;
        }
    }
    let paths = |sql: &str| -> Result<Vec<String>, StateError> {
        let mut stmt = tx.prepare(sql).map_err(fail)?;
        let rows = stmt.query_map([], |r| r.get(0)).map_err(fail)?;
        rows.collect::<Result<_, _>>().map_err(fail)
    };
    for (table, column) in &own {
        // The hub keeps its lists and the batches' inputs in the state folder itself.
        let kept = match *table {
            "recipient_lists" => format!("SELECT {column} FROM {table}"),
            "jobs" => format!("SELECT {column} FROM {table} WHERE kind = 'batch'"),
            _ => String::new(),
        };
        if !kept.is_empty() {
            done.strays.extend(
                paths(&kept)?
                    .into_iter()
                    .filter(|p| !Path::new(p).starts_with(&new_s)),
            );
        }
        for p in paths(&format!("SELECT {column} FROM {table}"))? {
            let Ok(rel) = Path::new(&p).strip_prefix(&new_s) else {
                continue;
            };
            if !staged.join(rel).exists() && !done.missing.contains(&p) {
                done.missing.push(p);
            }
        }
    }
    tx.commit().map_err(fail)?;
    Ok(done)
}
