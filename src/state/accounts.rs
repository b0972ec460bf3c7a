//! Staff accounts and their sessions (SPEC §11, 统一权限管理): accounts live here, not in
//! the config file, so an admin adds a clerk without a restart. Passwords arrive already
//! hashed (Argon2id, by the caller, off the database lock); sessions are stored only as
//! the SHA-256 of their cookie. Every change to an account is audited in the same
//! transaction as the change.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::audit::append_in;
use super::db::{query_err, State, StateError};

/// Wrong passwords in a row that lock an account.
pub const LOCK_AFTER: i64 = 5;
/// How long a locked account stays locked, seconds.
pub const LOCK_S: i64 = 15 * 60;

/// A staff account as listed (never its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// Its unique name (the audit actor is `user:NAME`).
    pub name: String,
    /// `staff`, `auditor` or `admin`.
    pub role: String,
    /// Region-code prefixes it may check and see.
    pub regions: Vec<String>,
    /// Disabled accounts cannot sign in; their sessions ended when disabled.
    pub disabled: bool,
    /// Locked until this time (unix seconds) after five wrong passwords in a row.
    pub locked_until: Option<i64>,
    /// When it was made (RFC 3339, UTC).
    pub created_at: String,
}

/// A live session's account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// The account's name.
    pub name: String,
    /// Its role.
    pub role: String,
    /// Its regions.
    pub regions: Vec<String>,
    /// The session's CSRF token (every state-changing form carries it).
    pub csrf: String,
}

/// What a sign-in attempt found before its password is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    /// No such account.
    Unknown,
    /// A disabled account, with its hash: told apart only to whoever gives its right
    /// password (a wrong one is answered as for no account).
    Disabled(String),
    /// Locked until this time (unix seconds).
    Locked(i64),
    /// The stored hash to verify the password against.
    Open(String),
}

/// An account change, as its audit entry records it.
#[derive(Debug, Clone, Serialize)]
struct AccountDetail<'a> {
    action: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    regions: Option<&'a [String]>,
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn split_regions(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|r| !r.is_empty())
        .map(str::to_owned)
        .collect()
}

impl State {
    /// Runs `f` and appends its audit entry (`actor`, kind `account`) in one transaction.
    fn account_write<T>(
        &mut self,
        what: &str,
        actor: &str,
        detail: &AccountDetail<'_>,
        f: impl FnOnce(&rusqlite::Transaction<'_>, &str) -> Result<T, StateError>,
    ) -> Result<T, StateError> {
        let appender = self.appender()?;
        let (out, seq, hash) = self.write(what, |tx, path| {
            let out = f(tx, path)?;
            let (seq, hash) = append_in(tx, path, &appender, actor, "account", detail)?;
            Ok((out, seq, hash))
        })?;
        self.anchor_after(&appender.key, seq, &hash);
        Ok(out)
    }

    /// Adds account `name` (role, regions, Argon2id `hash`); a name taken is
    /// [`StateError::AccountExists`].
    pub fn add_account(
        &mut self,
        actor: &str,
        name: &str,
        role: &str,
        regions: &[String],
        hash: &str,
    ) -> Result<(), StateError> {
        let detail = AccountDetail {
            action: "add",
            name,
            role: Some(role),
            regions: Some(regions),
        };
        self.account_write("add an account", actor, &detail, |tx, path| {
            let taken: bool = tx
                .query_row(
                    "SELECT EXISTS (SELECT 1 FROM accounts WHERE name = ?1)",
                    [name],
                    |r| r.get(0),
                )
                .map_err(query_err(path, "add an account"))?;
            if taken {
                return Err(StateError::AccountExists { name: name.into() });
            }
            tx.execute(
                "INSERT INTO accounts (name, role, regions, hash, disabled, failures, created_at)
                 VALUES (?1, ?2, ?3, ?4, 0, 0, ?5)",
                params![name, role, regions.join(","), hash, now_text()],
            )
            .map_err(query_err(path, "add an account"))?;
            Ok(())
        })
    }

    /// Up to `n` accounts after name `after`, by name.
    pub fn accounts_page(&self, after: &str, n: usize) -> Result<Vec<Account>, StateError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT name, role, regions, disabled, locked_until, created_at FROM accounts
                 WHERE name > ?1 ORDER BY name LIMIT ?2",
            )
            .map_err(self.err("list the accounts"))?;
        let rows = st
            .query_map(params![after, n as i64], |r| {
                Ok(Account {
                    name: r.get(0)?,
                    role: r.get(1)?,
                    regions: split_regions(&r.get::<_, String>(2)?),
                    disabled: r.get(3)?,
                    locked_until: r.get(4)?,
                    created_at: r.get(5)?,
                })
            })
            .map_err(self.err("list the accounts"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("list the accounts"))
    }

    /// Account `name`, if there is one.
    pub fn account(&self, name: &str) -> Result<Option<Account>, StateError> {
        self.conn
            .query_row(
                "SELECT name, role, regions, disabled, locked_until, created_at FROM accounts
                 WHERE name = ?1",
                [name],
                |r| {
                    Ok(Account {
                        name: r.get(0)?,
                        role: r.get(1)?,
                        regions: split_regions(&r.get::<_, String>(2)?),
                        disabled: r.get(3)?,
                        locked_until: r.get(4)?,
                        created_at: r.get(5)?,
                    })
                },
            )
            .optional()
            .map_err(self.err("read an account"))
    }

    /// Changes account `name` in one audited transaction: `set` is the SQL assignment
    /// list, `args` its parameters after the name (`?2`, …); the account's sessions
    /// end when `end_sessions`. [`StateError::NoAccount`] when there is none.
    fn change_account(
        &mut self,
        actor: &str,
        detail: &AccountDetail<'_>,
        set: &str,
        args: &[&dyn rusqlite::ToSql],
        end_sessions: bool,
    ) -> Result<(), StateError> {
        let name = detail.name;
        let sql = format!("UPDATE accounts SET {set} WHERE name = ?1");
        self.account_write("change an account", actor, detail, |tx, path| {
            let mut all: Vec<&dyn rusqlite::ToSql> = vec![&name];
            all.extend_from_slice(args);
            let changed = tx
                .execute(&sql, all.as_slice())
                .map_err(query_err(path, "change an account"))?;
            if changed == 0 {
                return Err(StateError::NoAccount { name: name.into() });
            }
            if end_sessions {
                tx.execute("DELETE FROM sessions WHERE account = ?1", [name])
                    .map_err(query_err(path, "end the account's sessions"))?;
            }
            Ok(())
        })
    }

    /// Disables (or enables again) account `name`; disabling ends its sessions.
    pub fn set_account_disabled(
        &mut self,
        actor: &str,
        name: &str,
        disabled: bool,
    ) -> Result<(), StateError> {
        let detail = AccountDetail {
            action: if disabled { "disable" } else { "enable" },
            name,
            role: None,
            regions: None,
        };
        self.change_account(actor, &detail, "disabled = ?2", &[&disabled], disabled)
    }

    /// Sets account `name`'s password (its Argon2id `hash`): the lock and the count of
    /// wrong passwords are cleared, and its sessions end.
    pub fn set_account_password(
        &mut self,
        actor: &str,
        name: &str,
        hash: &str,
    ) -> Result<(), StateError> {
        let detail = AccountDetail {
            action: "passwd",
            name,
            role: None,
            regions: None,
        };
        self.change_account(
            actor,
            &detail,
            "hash = ?2, failures = 0, locked_until = NULL",
            &[&hash],
            true,
        )
    }

    /// Sets account `name`'s role and regions (its sessions read them at once).
    pub fn set_account_access(
        &mut self,
        actor: &str,
        name: &str,
        role: &str,
        regions: &[String],
    ) -> Result<(), StateError> {
        let detail = AccountDetail {
            action: "access",
            name,
            role: Some(role),
            regions: Some(regions),
        };
        let joined = regions.join(",");
        self.change_account(
            actor,
            &detail,
            "role = ?2, regions = ?3",
            &[&role, &joined],
            false,
        )
    }

    /// What signing in as `name` at `now` (unix seconds) must pass.
    pub fn sign_in_gate(&self, name: &str, now: i64) -> Result<Gate, StateError> {
        let row: Option<(String, bool, Option<i64>)> = self
            .conn
            .query_row(
                "SELECT hash, disabled, locked_until FROM accounts WHERE name = ?1",
                [name],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(self.err("read an account"))?;
        Ok(match row {
            None => Gate::Unknown,
            Some((hash, true, _)) => Gate::Disabled(hash),
            Some((_, _, Some(until))) if until > now => Gate::Locked(until),
            Some((hash, _, _)) => Gate::Open(hash),
        })
    }

    /// A wrong password for `name` at `now`: counted; the fifth in a row locks the
    /// account for [`LOCK_S`] (audited) — new sign-ins only, live sessions go on.
    /// Returns the lock's end when it locked.
    pub fn sign_in_failed(&mut self, name: &str, now: i64) -> Result<Option<i64>, StateError> {
        let failures: Option<i64> = self.write("count a wrong password", |tx, path| {
            tx.query_row(
                "UPDATE accounts SET failures = failures + 1 WHERE name = ?1 RETURNING failures",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(query_err(path, "count a wrong password"))
        })?;
        if failures.is_none_or(|f| f < LOCK_AFTER) {
            return Ok(None);
        }
        let until = now + LOCK_S;
        let detail = AccountDetail {
            action: "locked",
            name,
            role: None,
            regions: None,
        };
        self.change_account(
            &format!("user:{name}"),
            &detail,
            "failures = 0, locked_until = ?2",
            &[&until],
            // Live sessions go on: a lock keeps out guessers, it must not let anyone
            // sign a clerk out by typing wrong passwords under their name.
            false,
        )?;
        Ok(Some(until))
    }

    /// A good password for `name`: the count of wrong ones is cleared and session
    /// `session` (the SHA-256 of its cookie) begins, with CSRF token `csrf`; audited.
    pub fn sign_in(
        &mut self,
        name: &str,
        session: &str,
        csrf: &str,
        now: i64,
    ) -> Result<(), StateError> {
        let detail = AccountDetail {
            action: "sign_in",
            name,
            role: None,
            regions: None,
        };
        let actor = format!("user:{name}");
        self.account_write("begin a session", &actor, &detail, |tx, path| {
            let q = |what: &str| query_err(path, what);
            tx.execute(
                "UPDATE accounts SET failures = 0, locked_until = NULL WHERE name = ?1",
                [name],
            )
            .map_err(q("begin a session"))?;
            tx.execute(
                "INSERT INTO sessions (id_hash, account, csrf, created_at, seen_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![session, name, csrf, now, now],
            )
            .map_err(q("begin a session"))?;
            Ok(())
        })
    }

    /// The account of session `session` (the SHA-256 of its cookie) at `now`, if it
    /// is live: seen within `idle_s`, its account enabled. Expired sessions are
    /// removed; a live one's last use is moved on (at most once a minute).
    pub fn session(
        &mut self,
        session: &str,
        now: i64,
        idle_s: i64,
    ) -> Result<Option<SessionUser>, StateError> {
        let row: Option<(i64, String, String, String, String)> = self
            .conn
            .query_row(
                "SELECT s.seen_at, a.name, a.role, a.regions, s.csrf
                 FROM sessions s JOIN accounts a ON a.name = s.account
                 WHERE s.id_hash = ?1 AND a.disabled = 0",
                [session],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
            )
            .optional()
            .map_err(self.err("read a session"))?;
        let Some((seen, name, role, regions, csrf)) = row else {
            return Ok(None);
        };
        if now - seen > idle_s {
            self.end_session(session)?;
            return Ok(None);
        }
        if now - seen >= 60 {
            self.write("keep a session", |tx, path| {
                tx.execute(
                    "UPDATE sessions SET seen_at = ?2 WHERE id_hash = ?1",
                    params![session, now],
                )
                .map_err(query_err(path, "keep a session"))
            })?;
        }
        Ok(Some(SessionUser {
            name,
            role,
            regions: split_regions(&regions),
            csrf,
        }))
    }

    /// Ends session `session` (signing out, or an expired one).
    pub fn end_session(&mut self, session: &str) -> Result<(), StateError> {
        self.write("end a session", |tx, path| {
            tx.execute("DELETE FROM sessions WHERE id_hash = ?1", [session])
                .map_err(query_err(path, "end a session"))
        })
        .map(|_| ())
    }

    /// Removes every session idle longer than `idle_s` at `now`.
    pub fn sweep_sessions(&mut self, now: i64, idle_s: i64) -> Result<usize, StateError> {
        self.write("remove expired sessions", |tx, path| {
            tx.execute("DELETE FROM sessions WHERE seen_at < ?1", [now - idle_s])
                .map_err(query_err(path, "remove expired sessions"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> (tempfile::TempDir, State) {
        let dir = tempfile::tempdir().expect("temp dir");
        let s = State::open(dir.path()).expect("state");
        (dir, s)
    }

    /// Names are unique; the list never shows a hash; changes are audited.
    #[test]
    fn accounts_are_unique_listed_and_audited() {
        let (_d, mut s) = state();
        let r = vec!["4101".to_owned()];
        s.add_account("os:root", "wang", "staff", &r, "$argon2id$x")
            .expect("add");
        let again = s.add_account("os:root", "wang", "admin", &r, "$argon2id$y");
        assert!(
            matches!(again, Err(StateError::AccountExists { .. })),
            "{again:?}"
        );
        let listed = s.accounts_page("", 10).expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].regions, r);
        assert!(!format!("{listed:?}").contains("argon2"));
        let missing = s.set_account_disabled("os:root", "li", true);
        assert!(
            matches!(missing, Err(StateError::NoAccount { .. })),
            "{missing:?}"
        );
        let entries = s.audit_entries().expect("audit");
        assert_eq!(entries.len(), 1, "only the change that happened is audited");
        assert_eq!(
            (entries[0].actor.as_str(), entries[0].kind.as_str()),
            ("os:root", "account")
        );
        assert!(s.verify_audit().expect("verify").is_ok());
    }

    /// Five wrong passwords in a row lock new sign-ins for 15 minutes; a good
    /// one in between starts the count again; a disabled account has no gate.
    #[test]
    fn five_wrong_passwords_lock_and_disabling_ends_sessions() {
        let (_d, mut s) = state();
        s.add_account("os:root", "wang", "staff", &["41".into()], "H")
            .expect("add");
        let t = 1_000_000;
        for _ in 0..4 {
            assert_eq!(s.sign_in_failed("wang", t).expect("count"), None);
        }
        s.sign_in("wang", "sess1", "csrf1", t).expect("sign in");
        for _ in 0..4 {
            assert_eq!(s.sign_in_failed("wang", t).expect("count"), None);
        }
        assert!(s.session("sess1", t, 1800).expect("session").is_some());
        assert_eq!(
            s.sign_in_failed("wang", t).expect("count"),
            Some(t + LOCK_S)
        );
        assert_eq!(
            s.sign_in_gate("wang", t + 10).expect("gate"),
            Gate::Locked(t + LOCK_S)
        );
        assert!(
            s.session("sess1", t, 1800).expect("session").is_some(),
            "a lock ends no live session"
        );
        assert_eq!(
            s.sign_in_gate("wang", t + LOCK_S + 1).expect("gate"),
            Gate::Open("H".into())
        );
        s.sign_in("wang", "sess2", "csrf2", t).expect("sign in");
        assert!(s
            .session("sess2", t + 1799, 1800)
            .expect("session")
            .is_some());
        assert!(
            s.session("sess2", t + 1799 + 1801, 1800)
                .expect("session")
                .is_none(),
            "idle"
        );
        s.sign_in("wang", "sess3", "csrf3", t).expect("sign in");
        s.set_account_disabled("os:root", "wang", true)
            .expect("disable");
        assert!(s.session("sess3", t, 1800).expect("session").is_none());
        assert_eq!(
            s.sign_in_gate("wang", t).expect("gate"),
            Gate::Disabled("H".into())
        );
        assert!(s.verify_audit().expect("verify").is_ok());
    }
}
