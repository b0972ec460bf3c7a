//! The audit log (SPEC §8): every check appends an entry — when, who, which households
//! (ID numbers only as keyed hashes), under which authorization, which sources and
//! snapshots were read, the verdict — to an append-only, hash-chained table. Each entry's
//! hash covers its sequence number, its fields and the previous entry's hash, so changing,
//! deleting, inserting or reordering entries breaks the chain at the first entry touched;
//! [`State::verify_audit`] recomputes it and names that entry.
//!
//! Entry hashes and ID numbers are HMAC-SHA-256 under a key kept in `audit.key` (beside
//! the database unless `[state] audit_key` places it elsewhere; created once, for a new
//! log only, readable by the owner only): the same person gets the same hash in every
//! entry, nobody without the key can test guesses against the log, and nobody without it
//! can recompute the chain after changing an entry. A key that goes missing while the log
//! has entries is an error — appending and verifying stop — never a new key.
//!
//! The log proves its end too: after every entry the chain's head (its `seq` and hash,
//! keyed) is written to the anchor file (`audit.anchor`, or `[state] audit_anchor` on
//! another volume), and verifying compares the chain with it, so removing the last
//! entries or emptying the table is detected.

use std::io::Write as _;

use ring::{hmac, rand::SecureRandom};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::db::{query_err, State, StateError};

pub use super::db::{ANCHOR_FILE, KEY_FILE};

/// The chain's head as the anchor file keeps it: the last entry's `seq` and hash, and a
/// keyed MAC of both (an anchor cannot be rewritten to fit a shortened chain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Anchor {
    /// The last entry's sequence number.
    pub seq: i64,
    /// Its hash.
    pub hash: String,
    /// HMAC-SHA-256 of `seq` and `hash` under the audit key.
    pub mac: String,
}

impl Anchor {
    fn mac(key: &hmac::Key, seq: i64, hash: &str) -> String {
        let mut ctx = hmac::Context::with_key(key);
        ctx.update(b"hedui audit anchor");
        ctx.update(&seq.to_be_bytes());
        ctx.update(hash.as_bytes());
        hex(ctx.sign().as_ref())
    }

    fn new(key: &hmac::Key, seq: i64, hash: &str) -> Anchor {
        Anchor {
            seq,
            hash: hash.to_owned(),
            mac: Anchor::mac(key, seq, hash),
        }
    }
}

/// The previous hash of the first entry.
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One household of a check, as the audit log keeps it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditedHousehold {
    /// The application id.
    pub household_id: String,
    /// Its region code (the log is filtered by region).
    pub region_code: String,
    /// The applicant's signed authorization for this check.
    pub authorization_id: String,
    /// The members' ID numbers, keyed hashes (hex).
    pub members: Vec<String>,
    /// The verdict, or `rejected`.
    pub verdict: String,
}

/// What one check read and decided.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AuditDetail {
    /// The households checked.
    pub households: Vec<AuditedHousehold>,
    /// The departments' data read: a folder, or per source the lake snapshot (`seq` and
    /// id), or `missing`.
    pub sources: std::collections::BTreeMap<String, String>,
    /// The check date D.
    pub as_of: String,
}

/// A read that returned household data (results, rejections, reports, changes): who
/// read what, and which households.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadDetail {
    /// What was read: `batch_results`, `batch_rejected`, `batch_report`,
    /// `reconciliation_changes`, `reconciliation_report`.
    pub read: String,
    /// Of what: `batch:ID`, `run:N`.
    pub of: String,
    /// The regions of the households returned (the log is filtered by region).
    pub regions: Vec<String>,
    /// The households returned, when the read names them one by one (a batch's own
    /// check entry lists its households).
    pub households: Vec<ReadHousehold>,
}

impl ReadDetail {
    /// A read `read` of `of` that returned `households`, its regions theirs (sorted,
    /// each once).
    pub fn of_households(read: &str, of: String, households: Vec<ReadHousehold>) -> ReadDetail {
        let mut regions: Vec<String> = households.iter().map(|h| h.region_code.clone()).collect();
        regions.sort();
        regions.dedup();
        ReadDetail {
            read: read.to_owned(),
            of,
            regions,
            households,
        }
    }
}

/// One household a read returned.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ReadHousehold {
    /// The application id (an ID-shaped one hashed as ID numbers are).
    pub household_id: String,
    /// Its region code.
    pub region_code: String,
}

/// An entry as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Position in the chain, from 1.
    pub seq: i64,
    /// When (RFC 3339, UTC).
    pub at: String,
    /// Who: a token name, or `os:USER` for the command line.
    pub actor: String,
    /// `check`, `reconcile`, `api`, `batch` or `schedule`.
    pub kind: String,
    /// [`AuditDetail`] as JSON.
    pub detail: String,
    /// The previous entry's hash.
    pub prev_hash: String,
    /// This entry's hash.
    pub hash: String,
}

/// An `audit` row selected as `seq, at, actor, kind, detail, prev_hash, hash`.
pub(super) fn entry_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AuditEntry> {
    Ok(AuditEntry {
        seq: r.get(0)?,
        at: r.get(1)?,
        actor: r.get(2)?,
        kind: r.get(3)?,
        detail: r.get(4)?,
        prev_hash: r.get(5)?,
        hash: r.get(6)?,
    })
}

/// Appends an entry within the write transaction `tx` (begun IMMEDIATE, so the chain's
/// last entry cannot change under it); returns its sequence number and hash.
pub(super) fn append_in(
    tx: &rusqlite::Transaction<'_>,
    path: &str,
    appender: &Appender,
    actor: &str,
    kind: &str,
    detail: &impl Serialize,
) -> Result<(i64, String), StateError> {
    let key = &appender.key;
    let q = |what: &str| query_err(path, what);
    let detail = serde_json::to_string(detail).map_err(|e| StateError::Open {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    let last: Option<(i64, String)> = tx
        .query_row(
            "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(q("read the audit log"))?;
    end_reaches_anchor(tx, path, appender, last.as_ref())?;
    let (seq, prev) = match last {
        Some((s, h)) => (s + 1, h),
        None => (1, GENESIS.to_owned()),
    };
    let at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let hash = entry_hash(key, seq, &at, actor, kind, &detail, &prev);
    tx.execute(
        "INSERT INTO audit (seq, at, actor, kind, detail, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        params![seq, at, actor, kind, detail, prev, hash],
    )
    .map_err(q("append to the audit log"))?;
    Ok((seq, hash))
}

/// The audit key and the anchor an entry is appended under.
pub(super) struct Appender {
    /// Held while appending (all connections and processes take it): the anchor read
    /// here is the one the last append wrote — none is between its commit and its
    /// anchor.
    _lock: Option<std::fs::File>,
    /// The key of the chain.
    pub(super) key: hmac::Key,
    /// The chain's head as last written outside the database (`None`: no anchor file).
    anchor: Option<Anchor>,
    /// The anchor file, for messages.
    anchor_path: String,
}

/// Refuses to append to a chain that does not reach its anchor: entries removed from
/// its end (or the whole table emptied) while the anchor says they were there, an
/// anchor file removed from a log with entries, or an anchor not made with this key.
/// Appending over such a gap would make the shortened log verify again. The anchor may
/// be one entry behind the head (a crash between a commit and the anchor's rewrite).
fn end_reaches_anchor(
    conn: &rusqlite::Connection,
    path: &str,
    a: &Appender,
    last: Option<&(i64, String)>,
) -> Result<(), StateError> {
    let broken = |why: String| StateError::AuditEnd {
        path: path.to_owned(),
        why,
    };
    let anchor = match (&a.anchor, last) {
        (None, None) => return Ok(()),
        (None, Some((seq, _))) => {
            return Err(broken(format!(
                "the log has {seq} entries but its anchor {} is missing",
                a.anchor_path
            )))
        }
        (Some(anchor), _) => anchor,
    };
    if anchor.mac != Anchor::mac(&a.key, anchor.seq, &anchor.hash) {
        return Err(broken(format!(
            "the anchor {} was not made with this audit key",
            a.anchor_path
        )));
    }
    let head = last.map_or(0, |(seq, _)| *seq);
    if head < anchor.seq {
        return Err(broken(format!(
            "the log ends at entry {head} but its anchor says {}: entries were removed from its end",
            anchor.seq
        )));
    }
    let at_anchor: Option<String> = conn
        .query_row("SELECT hash FROM audit WHERE seq = ?1", [anchor.seq], |r| {
            r.get(0)
        })
        .optional()
        .map_err(query_err(path, "read the audit log"))?;
    if at_anchor.as_deref() != Some(anchor.hash.as_str()) {
        return Err(broken(format!(
            "entry {} is not the one its anchor names",
            anchor.seq
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The hash of an entry: HMAC-SHA-256 under the audit key over its fields and the
/// previous hash, each length-prefixed so no two field splits give the same input.
pub fn entry_hash(
    key: &hmac::Key,
    seq: i64,
    at: &str,
    actor: &str,
    kind: &str,
    detail: &str,
    prev: &str,
) -> String {
    let mut ctx = hmac::Context::with_key(key);
    for field in [seq.to_string().as_str(), at, actor, kind, detail, prev] {
        ctx.update(&(field.len() as u64).to_be_bytes());
        ctx.update(field.as_bytes());
    }
    hex(ctx.sign().as_ref())
}

/// Who runs this process, for entries made from the command line.
pub fn os_actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("os:{user}")
}

impl State {
    /// Whether the log has no entry and no anchor: a new log, the only one that may
    /// get a new key.
    fn audit_is_new(&self) -> Result<bool, StateError> {
        let entries: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))
            .map_err(self.err("read the audit log"))?;
        Ok(entries == 0 && !self.audit.anchor.exists())
    }

    /// The key of the chain and the ID hashes, to append with: created for a new log
    /// (owner-only file), an error when it is missing for an existing one.
    pub(super) fn audit_key(&self) -> Result<hmac::Key, StateError> {
        match self.read_audit_key()? {
            Some(k) => Ok(k),
            None if self.audit_is_new()? => self.create_audit_key(),
            None => Err(StateError::AuditKeyMissing {
                path: self.audit.key.display().to_string(),
            }),
        }
    }

    /// Whether an entry can be appended now (its key there, or a new log that gets
    /// one; its end where its anchor says): checked before a run writes anything, and
    /// by the server at start and by `/healthz`.
    pub fn ready_to_audit(&self) -> Result<(), StateError> {
        self.audit_key()?;
        self.audit_end_ok()
    }

    /// Whether the log's end is where its anchor says (and its key is there, unless
    /// the log is new) — without making a key: what `/healthz` asks.
    pub fn audit_end_ok(&self) -> Result<(), StateError> {
        let Some(key) = self.read_audit_key()? else {
            return if self.audit_is_new()? {
                Ok(())
            } else {
                Err(StateError::AuditKeyMissing {
                    path: self.audit.key.display().to_string(),
                })
            };
        };
        let a = Appender {
            _lock: None,
            key,
            anchor: self.read_anchor().map_err(|why| StateError::AuditEnd {
                path: self.path.display().to_string(),
                why,
            })?,
            anchor_path: self.audit.anchor.display().to_string(),
        };
        let last: Option<(i64, String)> = self
            .conn
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(self.err("read the audit log"))?;
        end_reaches_anchor(
            &self.conn,
            &self.path.display().to_string(),
            &a,
            last.as_ref(),
        )
    }

    /// The key and the anchor to append under.
    pub(super) fn appender(&self) -> Result<Appender, StateError> {
        let lock_path = self.audit.anchor.with_extension("anchor.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .and_then(|f| f.lock().map(|()| f))
            .map_err(|e| StateError::Open {
                path: lock_path.display().to_string(),
                why: e.to_string(),
            })?;
        let key = self.audit_key()?;
        let anchor_path = self.audit.anchor.display().to_string();
        let anchor = self.read_anchor().map_err(|why| StateError::AuditEnd {
            path: self.path.display().to_string(),
            why,
        })?;
        Ok(Appender {
            _lock: Some(lock),
            key,
            anchor,
            anchor_path,
        })
    }

    /// The key if its file is there.
    fn read_audit_key(&self) -> Result<Option<hmac::Key>, StateError> {
        let path = &self.audit.key;
        let fail = |why: String| StateError::Open {
            path: path.display().to_string(),
            why,
        };
        match std::fs::read(path) {
            Ok(b) if b.len() == 32 => Ok(Some(hmac::Key::new(hmac::HMAC_SHA256, &b))),
            Ok(_) => Err(fail("the audit key is not 32 bytes long".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(fail(e.to_string())),
        }
    }

    fn create_audit_key(&self) -> Result<hmac::Key, StateError> {
        let path = &self.audit.key;
        let fail = |why: String| StateError::Open {
            path: path.display().to_string(),
            why,
        };
        let mut key = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut key)
            .map_err(|_| fail("no system randomness for the audit key".into()))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| fail(e.to_string()))?;
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let bytes = match opts.open(path) {
            Ok(mut f) => {
                f.write_all(&key).map_err(|e| fail(e.to_string()))?;
                f.sync_all().map_err(|e| fail(e.to_string()))?;
                key.to_vec()
            }
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                std::fs::read(path).map_err(|e| fail(e.to_string()))?
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
    }

    /// Rewrites the anchor with the chain's head (after its entry is committed): written
    /// to a temporary file beside it, synced, then renamed over it.
    pub(super) fn write_anchor(
        &self,
        key: &hmac::Key,
        seq: i64,
        hash: &str,
    ) -> Result<(), StateError> {
        let path = &self.audit.anchor;
        let fail = |why: String| StateError::Open {
            path: path.display().to_string(),
            why,
        };
        let text =
            serde_json::to_string(&Anchor::new(key, seq, hash)).map_err(|e| fail(e.to_string()))?;
        let tmp = path.with_extension("anchor.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| fail(e.to_string()))?;
        f.write_all(text.as_bytes())
            .map_err(|e| fail(e.to_string()))?;
        f.sync_all().map_err(|e| fail(e.to_string()))?;
        std::fs::rename(&tmp, path).map_err(|e| fail(e.to_string()))?;
        Ok(())
    }

    /// The anchor, if its file is there.
    fn read_anchor(&self) -> Result<Option<Anchor>, String> {
        match std::fs::read_to_string(&self.audit.anchor) {
            Ok(t) => serde_json::from_str(&t).map(Some).map_err(|e| {
                format!(
                    "the anchor {} cannot be read: {e}",
                    self.audit.anchor.display()
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!(
                "the anchor {} cannot be read: {e}",
                self.audit.anchor.display()
            )),
        }
    }

    /// A hasher of ID numbers for audit entries.
    pub fn id_hasher(&self) -> Result<impl Fn(&str) -> String, StateError> {
        let key = self.audit_key()?;
        Ok(move |id: &str| hex(hmac::sign(&key, id.as_bytes()).as_ref()))
    }

    /// Up to `n` entries after `after` (a sequence number; 0 for the first), in chain
    /// order, at or after `from` and before `to` (RFC 3339 texts) when given: a page of
    /// the log, never the whole of it.
    pub fn audit_page(
        &self,
        after: i64,
        from: Option<&str>,
        to: Option<&str>,
        n: usize,
    ) -> Result<Vec<AuditEntry>, StateError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT seq, at, actor, kind, detail, prev_hash, hash FROM audit
                 WHERE seq > ?1 AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR at < ?3)
                 ORDER BY seq LIMIT ?4",
            )
            .map_err(self.err("read the audit log"))?;
        let rows = stmt
            .query_map(
                params![after, from, to, i64::try_from(n).unwrap_or(i64::MAX)],
                entry_row,
            )
            .map_err(self.err("read the audit log"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("read the audit log"))
    }

    /// Every entry, in chain order.
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at, actor, kind, detail, prev_hash, hash FROM audit ORDER BY seq")
            .map_err(self.err("read the audit log"))?;
        let rows = stmt
            .query_map([], entry_row)
            .map_err(self.err("read the audit log"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("read the audit log"))
    }

    /// Recomputes the chain and compares its end with the anchor: `Ok(n)` with the
    /// number of entries when it is whole, or `Err((seq, why))` naming the first entry
    /// that breaks it. Never writes: no key is made, nothing is appended.
    pub fn verify_audit(&self) -> Result<Result<usize, (i64, String)>, StateError> {
        let entries = self.audit_entries()?;
        let anchor = match self.read_anchor() {
            Ok(a) => a,
            Err(why) => return Ok(Err((entries.len() as i64, why))),
        };
        let Some(key) = self.read_audit_key()? else {
            if entries.is_empty() && anchor.is_none() {
                return Ok(Ok(0));
            }
            return Err(StateError::AuditKeyMissing {
                path: self.audit.key.display().to_string(),
            });
        };
        let mut prev = GENESIS.to_owned();
        for (i, e) in entries.iter().enumerate() {
            let expected_seq = i as i64 + 1;
            if e.seq != expected_seq {
                return Ok(Err((
                    expected_seq,
                    format!(
                        "entry {expected_seq} is missing (the next one is {})",
                        e.seq
                    ),
                )));
            }
            if e.prev_hash != prev {
                return Ok(Err((
                    e.seq,
                    "it does not follow the entry before it (an entry was removed, inserted or moved before it)"
                        .into(),
                )));
            }
            let hash = entry_hash(
                &key,
                e.seq,
                &e.at,
                &e.actor,
                &e.kind,
                &e.detail,
                &e.prev_hash,
            );
            if e.hash != hash {
                return Ok(Err((
                    e.seq,
                    "its content does not match its hash (it was changed)".into(),
                )));
            }
            prev = e.hash.clone();
        }
        let last = entries.len() as i64;
        let Some(anchor) = anchor else {
            if entries.is_empty() {
                return Ok(Ok(0));
            }
            return Ok(Err((
                last,
                format!(
                    "the anchor {} is missing: the end of the log cannot be proven (was it deleted, or is [state] audit_anchor wrong?)",
                    self.audit.anchor.display()
                ),
            )));
        };
        if anchor.mac != Anchor::mac(&key, anchor.seq, &anchor.hash) {
            return Ok(Err((
                anchor.seq,
                "the anchor does not match its key (it was changed)".into(),
            )));
        }
        // Entries after the anchor are those appended while it was being rewritten (a
        // crash in between); entries before it must all be there, its own one unchanged.
        if anchor.seq > last {
            return Ok(Err((
                last + 1,
                format!(
                    "the log ends at entry {last} but its anchor says {}: entries were removed from its end",
                    anchor.seq
                ),
            )));
        }
        if anchor.seq >= 1 && entries[(anchor.seq - 1) as usize].hash != anchor.hash {
            return Ok(Err((
                anchor.seq,
                "it is not the entry the anchor recorded (the log was rewritten)".into(),
            )));
        }
        Ok(Ok(entries.len()))
    }
}
