//! An open state database: SQLite in WAL mode (readers never wait for a writer), its
//! errors, and the one way to write several rows at once — a transaction begun
//! IMMEDIATE, so that what it reads (the audit chain's last entry, the queue) cannot
//! change under it.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::schema;

/// The database file inside a state folder.
pub const DB_FILE: &str = "hedui.db";

/// The audit key's file, in the state folder unless placed elsewhere.
pub const KEY_FILE: &str = "audit.key";

/// The audit anchor's file (the chain's head), in the state folder unless placed
/// elsewhere.
pub const ANCHOR_FILE: &str = "audit.anchor";

/// Where the audit log keeps what is not in the database: its key, and its anchor (the
/// chain's last entry, keyed), each by default in the state folder, each placeable on
/// another volume (`[state] audit_key`, `audit_anchor`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditFiles {
    /// The key of the chain and of the ID hashes.
    pub key: PathBuf,
    /// The chain's head, rewritten after every entry.
    pub anchor: PathBuf,
}

impl AuditFiles {
    /// The files a deployment names (`[state] audit_key`, `audit_anchor`), else those in
    /// its state folder.
    pub fn of(d: &crate::config::Deployment) -> AuditFiles {
        let beside = AuditFiles::beside(&d.state_path);
        AuditFiles {
            key: d.audit_key.clone().unwrap_or(beside.key),
            anchor: d.audit_anchor.clone().unwrap_or(beside.anchor),
        }
    }

    /// The files in state folder `dir`: `audit.key` and `audit.anchor`.
    pub fn beside(dir: &Path) -> AuditFiles {
        AuditFiles {
            key: dir.join(KEY_FILE),
            anchor: dir.join(ANCHOR_FILE),
        }
    }
}

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
    /// The database was written by a newer hedui, whose schema this one does not know.
    #[error("state database {path} has schema version {found}; this hedui knows versions up to {known}: run the hedui that wrote it, or a newer one")]
    Newer {
        /// The database file.
        path: String,
        /// Its schema version.
        found: i64,
        /// The newest version this build knows.
        known: i64,
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
    /// A reconciliation run that is no longer running (failed, or its job queued again
    /// meanwhile) cannot be completed: it is never done, nor audited, twice.
    #[error("state database {path}: run {run} is {status}, not running: it cannot be completed")]
    RunNotRunning {
        /// The database file.
        path: String,
        /// The run.
        run: i64,
        /// Its status now.
        status: String,
    },
    /// The audit key is gone while the log has entries (or an anchor): nothing can be
    /// appended or verified until it is put back — a new key would break the chain.
    #[error("the audit key {path} is missing, but the audit log has entries: put the key back (from its backup); a new key is never made for an existing log")]
    AuditKeyMissing {
        /// Where the key was looked for.
        path: String,
    },
    /// The audit log does not reach its anchor (entries removed from its end, the
    /// anchor removed or not of this key): nothing is appended until it is restored —
    /// appending over the gap would make the shortened log verify again.
    #[error("审计日志的末尾与其锚点不符，可能被删改：在从备份恢复之前不再记录审计条目，请运行 hedui audit verify 查看（the audit log {path} does not reach its anchor: {why}; nothing is appended until it is restored from its backup）")]
    AuditEnd {
        /// The database file.
        path: String,
        /// What is wrong.
        why: String,
    },
    /// An account of that name exists already.
    #[error("账户“{name}”已存在：名称必须唯一（an account named \"{name}\" exists already）")]
    AccountExists {
        /// The name.
        name: String,
    },
    /// No account of that name.
    #[error("没有账户“{name}”（no account named \"{name}\"）")]
    NoAccount {
        /// The name.
        name: String,
    },
    /// The changes file a reconciliation wrote is not what the run found (another run
    /// wrote the same folder meanwhile, or it cannot be read back).
    #[error("state database {path}: run {run}: cannot store the changes written to {file}: {why}")]
    ChangesFile {
        /// The database file.
        path: String,
        /// The run.
        run: i64,
        /// The changes file.
        file: String,
        /// Why.
        why: String,
    },
}

impl StateError {
    /// Whether the database could not be written because its disk (or its size limit)
    /// is full: the server is unavailable until space is freed, not broken.
    pub fn disk_full(&self) -> bool {
        matches!(
            self,
            StateError::Query {
                source: rusqlite::Error::SqliteFailure(e, _),
                ..
            } if e.code == rusqlite::ErrorCode::DiskFull
        )
    }
}

/// The error of a failed query on the database at `path`, while doing `what`.
pub(crate) fn query_err(path: &str, what: &str) -> impl FnOnce(rusqlite::Error) -> StateError {
    let (path, what) = (path.to_owned(), what.to_owned());
    move |source| StateError::Query { path, what, source }
}

/// An open state database.
pub struct State {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
    pub(super) audit: AuditFiles,
}

/// A read handle of database file `path` that this process keeps open until it exits:
/// [`State::ping`] reads the file's header through it. Opening the file and closing it
/// again would close a descriptor of it, and on POSIX closing any descriptor of a file
/// releases every lock the process holds on it — SQLite's too: another process (a
/// `hedui` command run beside the server) would then take the database for unused and
/// delete its write-ahead log under the server, whose later writes would be lost. One
/// handle per file the process pings (a server: one), never closed; a file replaced at
/// the path gets a handle of its own, the old one kept open too.
fn held_file(path: &Path) -> Option<std::sync::Arc<std::fs::File>> {
    use std::sync::{Arc, Mutex, OnceLock};
    type Held = Vec<(PathBuf, (u64, u64), Arc<std::fs::File>)>;
    static HELD: OnceLock<Mutex<Held>> = OnceLock::new();
    let id = file_id(&std::fs::metadata(path).ok()?);
    let mut held = HELD
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some((_, _, f)) = held.iter().find(|(p, i, _)| p == path && *i == id) {
        return Some(f.clone());
    }
    let f = Arc::new(std::fs::File::open(path).ok()?);
    let id = file_id(&f.metadata().ok()?);
    held.push((path.to_owned(), id, f.clone()));
    Some(f)
}

/// A file's device and inode (zero elsewhere than on Unix).
fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        (m.dev(), m.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = m;
        (0, 0)
    }
}

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
        // The file's own header first: pages recently written are read from the WAL,
        // so a database file overwritten under the server could still answer queries.
        // Read through a handle kept open (never one opened and closed: see `held_file`).
        let mut head = [0u8; 16];
        let read = match held_file(&self.path) {
            #[cfg(unix)]
            Some(f) => std::os::unix::fs::FileExt::read_exact_at(&*f, &mut head, 0).is_ok(),
            #[cfg(not(unix))]
            Some(_) => {
                head = *b"SQLite format 3\0";
                true
            }
            None => false,
        };
        if !read || &head != b"SQLite format 3\0" {
            return Err(StateError::Open {
                path: self.path.display().to_string(),
                why: "the file is not an SQLite database (damaged or replaced)".into(),
            });
        }
        // Then the schema and the newest pages of the tables every request touches (the
        // audit chain's head, the job queue): damaged pages answer SQLITE_CORRUPT here,
        // in constant time — a full integrity check would read the whole database.
        self.conn
            .query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .and_then(|()| {
                self.conn.query_row(
                    "SELECT (SELECT max(seq) FROM audit), (SELECT count(*) FROM jobs WHERE status = 'queued')",
                    [],
                    |_| Ok(()),
                )
            })
            .map_err(self.err("answer"))?;
        // And the audit log can be appended to: its key there, its end at its anchor.
        self.audit_end_ok()
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens (creating if needed) the database in folder `dir`, its audit files beside it.
    pub fn open(dir: &Path) -> Result<State, StateError> {
        State::open_with(dir, AuditFiles::beside(dir))
    }

    /// Opens the database in folder `dir` only to read it — never created, never
    /// written (a backup copy on read-only media can be verified).
    pub fn open_read_only(dir: &Path, audit: AuditFiles) -> Result<State, StateError> {
        use rusqlite::OpenFlags;
        let path = dir.join(DB_FILE);
        let open_err = |why: String| StateError::Open {
            path: path.display().to_string(),
            why,
        };
        if !path.is_file() {
            return Err(open_err(
                "there is no state database there (is the folder right?)".into(),
            ));
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI;
        // A database being written has its write-ahead log beside it: read it with the
        // log. One without (nobody has it open: a copy, a backup) is read as the file
        // it is, without making the log's shared-memory file — on read-only media too.
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let live = Path::new(&wal).exists();
        let conn = if live {
            Connection::open_with_flags(&path, flags)
        } else {
            let escaped = path
                .display()
                .to_string()
                .replace('%', "%25")
                .replace('?', "%3f")
                .replace('#', "%23");
            Connection::open_with_flags(format!("file:{escaped}?immutable=1"), flags)
        }
        .map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| open_err(e.to_string()))?;
        // An older database reads as it is; a newer one's tables may mean other things.
        let found: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|e| open_err(e.to_string()))?;
        if found > schema::VERSION {
            return Err(StateError::Newer {
                path: path.display().to_string(),
                found,
                known: schema::VERSION,
            });
        }
        Ok(State { conn, path, audit })
    }

    /// Opens (creating if needed) the database in folder `dir`, with its audit files
    /// where `audit` says.
    pub fn open_with(dir: &Path, audit: AuditFiles) -> Result<State, StateError> {
        let path = dir.join(DB_FILE);
        let open_err = |why: String| StateError::Open {
            path: path.display().to_string(),
            why,
        };
        // A new state folder is the service user's alone (it holds the audit key unless
        // the config places it elsewhere, and every household's members).
        let mut mk = std::fs::DirBuilder::new();
        mk.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut mk, 0o700);
        mk.create(dir).map_err(|e| open_err(e.to_string()))?;
        let conn = Connection::open(&path).map_err(|e| open_err(e.to_string()))?;
        // WAL: readers (the server) never wait for a run being written; a busy database
        // is waited for, not failed.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| open_err(e.to_string()))?;
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(|e| open_err(e.to_string()))?;
        schema::migrate(&conn).map_err(|e| match e {
            schema::Migration::Newer(found) => StateError::Newer {
                path: path.display().to_string(),
                found,
                known: schema::VERSION,
            },
            schema::Migration::Failed(why) => open_err(why),
        })?;
        Ok(State { conn, path, audit })
    }

    /// The error of a failed query on this database, while doing `what`.
    pub(super) fn err(&self, what: &str) -> impl FnOnce(rusqlite::Error) -> StateError {
        query_err(&self.path.display().to_string(), what)
    }

    /// Runs `f` in one write transaction begun IMMEDIATE (the database's write lock
    /// taken at once), committed when `f` succeeds and rolled back when it fails; `f`
    /// gets the transaction and the database's name for its messages. `what` names the
    /// work in messages.
    pub(super) fn write<T>(
        &mut self,
        what: &str,
        f: impl FnOnce(&Transaction<'_>, &str) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let path = self.path.display().to_string();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(query_err(&path, what))?;
        let out = f(&tx, &path)?;
        tx.commit().map_err(query_err(&path, what))?;
        Ok(out)
    }
}
