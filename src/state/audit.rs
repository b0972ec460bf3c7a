//! The audit log (SPEC §8): every check appends an entry — when, who, which households
//! (ID numbers only as keyed hashes), under which authorization, which sources and
//! snapshots were read, the verdict — to an append-only, hash-chained table. Each entry's
//! hash covers its sequence number, its fields and the previous entry's hash, so changing,
//! deleting, inserting or reordering entries breaks the chain at the first entry touched;
//! [`State::verify_audit`] recomputes it and names that entry.
//!
//! Entry hashes and ID numbers are HMAC-SHA-256 under a key kept in `audit.key` beside
//! the database (created once, readable by the owner only): the same person gets the
//! same hash in every entry, nobody without the key can test guesses against the log, and
//! nobody without it can recompute the chain after changing an entry. (Removing entries
//! from the end leaves a shorter chain that still verifies; keep the last `seq` and hash
//! that `hedui audit verify` prints elsewhere to detect that.)

use std::io::Write as _;
use std::path::Path;

use ring::{hmac, rand::SecureRandom};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::db::{query_err, State, StateError};

/// The key file of the ID hashes, in the state folder.
pub const KEY_FILE: &str = "audit.key";

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

/// Appends an entry within the write transaction `tx` (begun IMMEDIATE, so the chain's
/// last entry cannot change under it); returns its sequence number.
pub(super) fn append_in(
    tx: &rusqlite::Transaction<'_>,
    path: &str,
    key: &hmac::Key,
    actor: &str,
    kind: &str,
    detail: &AuditDetail,
) -> Result<i64, StateError> {
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
    Ok(seq)
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
    /// The key of the ID hashes, created on first use (owner-only file).
    pub(super) fn audit_key(&self) -> Result<hmac::Key, StateError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let path = dir.join(KEY_FILE);
        let fail = |why: String| StateError::Open {
            path: path.display().to_string(),
            why,
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) if b.len() == 32 => b,
            Ok(_) => return Err(fail("the audit key is not 32 bytes long".into())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                ring::rand::SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| fail("no system randomness for the audit key".into()))?;
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
                match opts.open(&path) {
                    Ok(mut f) => {
                        f.write_all(&key).map_err(|e| fail(e.to_string()))?;
                        f.sync_all().map_err(|e| fail(e.to_string()))?;
                        key.to_vec()
                    }
                    // Another process made it first: use theirs.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read(&path).map_err(|e| fail(e.to_string()))?
                    }
                    Err(e) => return Err(fail(e.to_string())),
                }
            }
            Err(e) => return Err(fail(e.to_string())),
        };
        Ok(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
    }

    /// A hasher of ID numbers for audit entries.
    pub fn id_hasher(&self) -> Result<impl Fn(&str) -> String, StateError> {
        let key = self.audit_key()?;
        Ok(move |id: &str| hex(hmac::sign(&key, id.as_bytes()).as_ref()))
    }

    /// Every entry, in chain order.
    pub fn audit_entries(&self) -> Result<Vec<AuditEntry>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT seq, at, actor, kind, detail, prev_hash, hash FROM audit ORDER BY seq")
            .map_err(self.err("read the audit log"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AuditEntry {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    actor: r.get(2)?,
                    kind: r.get(3)?,
                    detail: r.get(4)?,
                    prev_hash: r.get(5)?,
                    hash: r.get(6)?,
                })
            })
            .map_err(self.err("read the audit log"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("read the audit log"))
    }

    /// Recomputes the chain: `Ok(n)` with the number of entries when it is whole, or
    /// `Err((seq, why))` naming the first entry that breaks it.
    pub fn verify_audit(&self) -> Result<Result<usize, (i64, String)>, StateError> {
        let entries = self.audit_entries()?;
        let key = self.audit_key()?;
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
        Ok(Ok(entries.len()))
    }
}
