//! The one transaction every run ends in: its audit entry, and — when the run is one —
//! the reconciliation run marked done with what it found and the server's job marked
//! done with its summary. All or nothing: a run is never audited without being done,
//! nor done without being audited.

use super::audit::{append_in, AuditDetail, ReadDetail};
use super::db::{State, StateError};
use super::jobs::mark_done_in;
use super::runs::{fail_in, finish_in, RunDone};

/// What completes a run.
#[derive(Debug, Clone, Copy)]
pub struct Completion<'a> {
    /// Who ran it: a token name (`token:NAME`), `os:USER`, `schedule`.
    pub actor: &'a str,
    /// The audit entry's kind: `check`, `api`, `batch`, `reconcile`, `schedule`.
    pub kind: &'a str,
    /// What it read and decided.
    pub detail: &'a AuditDetail,
    /// The reconciliation run it is, done with what it found.
    pub run: Option<RunDone<'a>>,
    /// The server's job it is (id, summary shown to its submitter), done.
    pub job: Option<(&'a str, &'a serde_json::Value)>,
}

impl<'a> Completion<'a> {
    /// A run that is only audited (a check on the command line or over the API).
    pub fn audit(actor: &'a str, kind: &'a str, detail: &'a AuditDetail) -> Completion<'a> {
        Completion {
            actor,
            kind,
            detail,
            run: None,
            job: None,
        }
    }
}

/// What completing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completed {
    /// The audit entry's sequence number (`None`: not audited, see `job_done`).
    pub audit_seq: Option<i64>,
    /// Whether the job (if any) was still running and is now done. A job that is no
    /// longer running (queued again meanwhile, to be run again) is left alone and not
    /// audited — it is audited when it is done — and the run it had begun is failed.
    pub job_done: bool,
}

impl State {
    /// Completes a run in one write transaction (see the module's text).
    pub fn complete(&mut self, c: &Completion<'_>) -> Result<Completed, StateError> {
        let appender = self.appender()?;
        let key = &appender.key;
        let what = match (&c.run, c.job) {
            (Some(_), _) => "finish the run",
            (None, Some(_)) => "finish a job",
            (None, None) => "append to the audit log",
        };
        self.write(what, |tx, path| {
            let job_done = match c.job {
                Some((id, summary)) => mark_done_in(tx, path, id, summary)?,
                None => false,
            };
            // A job that is no longer running (queued again by a stopping server, to be
            // run again): this attempt records nothing, and the run it had begun is
            // failed — the next attempt makes its own.
            if c.job.is_some() && !job_done {
                if let Some(run) = &c.run {
                    fail_in(tx, path, run.id, "superseded: its job was queued again")?;
                }
                return Ok((
                    Completed {
                        audit_seq: None,
                        job_done,
                    },
                    None,
                ));
            }
            if let Some(run) = &c.run {
                finish_in(tx, path, run)?;
            }
            let (seq, hash) = append_in(tx, path, &appender, c.actor, c.kind, c.detail)?;
            Ok((
                Completed {
                    audit_seq: Some(seq),
                    job_done,
                },
                Some(hash),
            ))
        })
        .map(|(done, hash)| {
            if let (Some(seq), Some(hash)) = (done.audit_seq, hash) {
                self.anchor_after(key, seq, &hash);
            }
            done
        })
    }

    /// Appends the entry of a read that returned household data (kind `read`).
    pub fn audit_read(&mut self, actor: &str, detail: &ReadDetail) -> Result<i64, StateError> {
        let appender = self.appender()?;
        let (seq, hash) = self.write("append to the audit log", |tx, path| {
            append_in(tx, path, &appender, actor, "read", detail)
        })?;
        self.anchor_after(&appender.key, seq, &hash);
        Ok(seq)
    }

    /// Rewrites the anchor once entry `seq` is committed. After the commit: an anchor
    /// behind the log (a crash just here) still proves every entry up to it; one ahead of
    /// it would accuse a whole log.
    pub(super) fn anchor_after(&self, key: &ring::hmac::Key, seq: i64, hash: &str) {
        if let Err(e) = self.write_anchor(key, seq, hash) {
            tracing::error!(error = %e, "the audit anchor could not be rewritten; the log's end is proven only up to the previous entry");
        }
    }
}
