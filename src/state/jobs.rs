//! Jobs of `hedui serve` (SPEC §10): batches submitted over the API and scheduled
//! reconciliations, kept in the state database so that they survive a restart.
//!
//! A job is `queued` when submitted, `running` once a worker claimed it (one atomic
//! update, so no two workers take the same job), and `done` or `failed` at the end. A
//! job is `done` in the same transaction as its audit entry: it is never done, nor
//! audited, twice. A server that stops (or is killed) with a job running finds it
//! `running` at its next start and queues it again ([`State::requeue_interrupted`]); a
//! job interrupted [`MAX_ATTEMPTS`] times is failed instead, so a job that kills its
//! server cannot do so forever.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::db::{query_err, State, StateError};

/// Runs of one job at most; the last interruption fails it.
pub const MAX_ATTEMPTS: i64 = 3;

/// What kind of work a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// An applicant batch submitted over the API.
    Batch,
    /// A reconciliation of the recipients, from `[schedule]`.
    Reconcile,
    /// The night's pulls of every source, from `[schedule] ingest`.
    Ingest,
}

impl JobKind {
    fn as_str(self) -> &'static str {
        match self {
            JobKind::Batch => "batch",
            JobKind::Reconcile => "reconcile",
            JobKind::Ingest => "ingest",
        }
    }

    fn parse(s: &str) -> JobKind {
        match s {
            "reconcile" => JobKind::Reconcile,
            "ingest" => JobKind::Ingest,
            _ => JobKind::Batch,
        }
    }
}

/// A job to submit.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// Its id (random, unguessable).
    pub id: String,
    /// Batch or reconciliation.
    pub kind: JobKind,
    /// Who asked: `token:NAME`, or `schedule`.
    pub actor: String,
    /// The region codes of its households (who may see it).
    pub regions: Vec<String>,
    /// The name the file was submitted under (for messages and the report).
    pub file_name: String,
    /// The input file on disk.
    pub input: String,
    /// The check date D.
    pub as_of: String,
}

/// A job as stored.
#[derive(Debug, Clone, Serialize)]
pub struct Job {
    /// Its id.
    pub id: String,
    /// Batch or reconciliation.
    pub kind: JobKind,
    /// `queued`, `running`, `done` or `failed`.
    pub status: String,
    /// Who asked.
    pub actor: String,
    /// The region codes of its households.
    pub regions: Vec<String>,
    /// The name the file was submitted under.
    pub file_name: String,
    /// The input file on disk.
    #[serde(skip)]
    pub input: String,
    /// The check date D.
    pub as_of: String,
    /// When it was submitted (RFC 3339, UTC).
    pub submitted_at: String,
    /// When its last attempt began.
    pub started_at: Option<String>,
    /// When it ended.
    pub finished_at: Option<String>,
    /// Attempts begun (more than one after a restart).
    pub attempts: i64,
    /// The stage the running attempt reached.
    pub stage: Option<String>,
    /// Stages the running attempt has finished.
    pub steps: i64,
    /// The reconciliation run it made (reconcile jobs).
    pub run_id: Option<i64>,
    /// Counts when done (per verdict, rejected households…), as JSON.
    pub summary: Option<serde_json::Value>,
    /// Why it failed.
    pub error: Option<String>,
}

const COLUMNS: &str = "id, kind, status, actor, regions, file_name, input, as_of, submitted_at, \
     started_at, finished_at, attempts, stage, steps, run_id, summary, error";

fn job_of(r: &rusqlite::Row<'_>) -> rusqlite::Result<Job> {
    job_of_at(r, 0)
}

/// A job of a row whose [`COLUMNS`] start at column `at`.
fn job_of_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<Job> {
    let c = |i: usize| at + i;
    let regions: String = r.get(c(4))?;
    let summary: Option<String> = r.get(c(15))?;
    Ok(Job {
        id: r.get(c(0))?,
        kind: JobKind::parse(&r.get::<_, String>(c(1))?),
        status: r.get(c(2))?,
        actor: r.get(c(3))?,
        regions: serde_json::from_str(&regions).unwrap_or_default(),
        file_name: r.get(c(5))?,
        input: r.get(c(6))?,
        as_of: r.get(c(7))?,
        submitted_at: r.get(c(8))?,
        started_at: r.get(c(9))?,
        finished_at: r.get(c(10))?,
        attempts: r.get(c(11))?,
        stage: r.get(c(12))?,
        steps: r.get(c(13))?,
        run_id: r.get(c(14))?,
        summary: summary.and_then(|s| serde_json::from_str(&s).ok()),
        error: r.get(c(16))?,
    })
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Marks running job `id` done within `tx`; false if it was not running.
pub(super) fn mark_done_in(
    tx: &rusqlite::Transaction<'_>,
    path: &str,
    id: &str,
    summary: &serde_json::Value,
) -> Result<bool, StateError> {
    let changed = tx
        .execute(
            "UPDATE jobs SET status = 'done', finished_at = ?2, summary = ?3, stage = 'done'
             WHERE id = ?1 AND status = 'running'",
            params![id, now(), summary.to_string()],
        )
        .map_err(query_err(path, "finish a job"))?;
    Ok(changed > 0)
}

/// What [`State::requeue_interrupted`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Requeued {
    /// Jobs queued again.
    pub queued: Vec<String>,
    /// Jobs failed for having been interrupted [`MAX_ATTEMPTS`] times.
    pub failed: Vec<String>,
}

/// How many jobs may wait: in all, and of one submitter (so that one token cannot fill
/// the queue every other one shares).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBound {
    /// Jobs waiting at most.
    pub total: usize,
    /// Jobs of one actor waiting at most.
    pub per_actor: usize,
}

/// What [`State::submit_job`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Queued.
    Queued,
    /// Refused: the queue is full.
    QueueFull,
    /// Refused: this submitter's share of the queue is full.
    ShareFull,
}

impl State {
    /// Queues `job` unless `bound` says the queue or its submitter's share is full,
    /// checked and inserted in one write transaction (no bound: the schedule's own job).
    pub fn submit_job(
        &mut self,
        job: &NewJob,
        bound: Option<QueueBound>,
    ) -> Result<Admission, StateError> {
        self.write("queue a job", |tx, path| {
        let q = |what: &str| query_err(path, what);
        if let Some(bound) = bound {
            let (queued, mine): (i64, i64) = tx
                .query_row(
                    "SELECT COUNT(*), COALESCE(SUM(actor = ?1), 0) FROM jobs WHERE status = 'queued'",
                    params![job.actor],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .map_err(q("count queued jobs"))?;
            if usize::try_from(mine).unwrap_or(usize::MAX) >= bound.per_actor {
                return Ok(Admission::ShareFull);
            }
            if usize::try_from(queued).unwrap_or(usize::MAX) >= bound.total {
                return Ok(Admission::QueueFull);
            }
        }
        let regions = serde_json::to_string(&job.regions).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO jobs (id, kind, status, actor, regions, file_name, input, as_of, submitted_at)
             VALUES (?1, ?2, 'queued', ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                job.id,
                job.kind.as_str(),
                job.actor,
                regions,
                job.file_name,
                job.input,
                job.as_of,
                now()
            ],
        )
        .map_err(q("queue a job"))?;
        Ok(Admission::Queued)
        })
    }

    /// Takes the oldest queued job — the night's pulls first, then a scheduled
    /// reconciliation (so that it re-checks on what the night pulled), then uploads — and
    /// marks it running (one atomic update).
    /// In its own write transaction: the job is the caller's only once the commit
    /// succeeded (a full disk fails the claim, and the job stays queued).
    pub fn claim_job(&mut self) -> Result<Option<Job>, StateError> {
        self.write("claim a job", |tx, path| {
            tx.query_row(
                &format!(
                    "UPDATE jobs SET status = 'running', started_at = ?1, attempts = attempts + 1,
                            stage = NULL, steps = 0
                     WHERE id = (SELECT id FROM jobs q WHERE status = 'queued'
                                 ORDER BY CASE kind WHEN 'ingest' THEN 0
                                                    WHEN 'reconcile' THEN 1 ELSE 2 END,
                                          (SELECT max(r.started_at) FROM jobs r
                                           WHERE r.actor = q.actor) NULLS FIRST,
                                          submitted_at, rowid
                                 LIMIT 1)
                     RETURNING {COLUMNS}"
                ),
                params![now()],
                job_of,
            )
            .optional()
            .map_err(query_err(path, "claim a job"))
        })
    }

    /// Marks running job `id` done with `summary` (a job that writes no run: the night's
    /// pulls); false if it was not running.
    pub fn finish_job(
        &mut self,
        id: &str,
        summary: &serde_json::Value,
    ) -> Result<bool, StateError> {
        self.write("finish a job", |tx, path| {
            mark_done_in(tx, path, id, summary)
        })
    }

    /// Records the stage a running job reached.
    pub fn job_stage(&self, id: &str, stage: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE jobs SET stage = ?2, steps = steps + 1 WHERE id = ?1 AND status = 'running'",
                params![id, hedui_connectors::idnum::mask_ids_in(stage)],
            )
            .map_err(self.err("record a job's progress"))?;
        Ok(())
    }

    /// Records the reconciliation run a job made.
    pub fn job_run(&self, id: &str, run_id: i64) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE jobs SET run_id = ?2 WHERE id = ?1",
                params![id, run_id],
            )
            .map_err(self.err("record a job's run"))?;
        Ok(())
    }

    /// Fails a running job with `error` (ID numbers masked); one queued again meanwhile
    /// (by a stopping server) is left to run again.
    pub fn fail_job(&self, id: &str, error: &str) -> Result<(), StateError> {
        self.conn
            .execute(
                "UPDATE jobs SET status = 'failed', finished_at = ?2, error = ?3
                 WHERE id = ?1 AND status = 'running'",
                params![id, now(), hedui_connectors::idnum::mask_ids_in(error)],
            )
            .map_err(self.err("fail a job"))?;
        Ok(())
    }

    /// Puts a running job back in the queue (a shutdown that could not wait for it); the
    /// attempt is not counted against [`MAX_ATTEMPTS`]. The reconciliation run it had
    /// begun is failed in the same transaction: the next attempt makes its own, and this
    /// one can no longer be completed.
    pub fn requeue_job(&mut self, id: &str) -> Result<(), StateError> {
        self.write("queue a job again", |tx, path| {
            let run: Option<i64> = tx
                .query_row(
                    "SELECT run_id FROM jobs WHERE id = ?1 AND status = 'running'",
                    params![id],
                    |r| r.get(0),
                )
                .optional()
                .map_err(query_err(path, "queue a job again"))?
                .flatten();
            if let Some(run) = run {
                super::runs::fail_in(
                    tx,
                    path,
                    run,
                    "interrupted: the server stopped during the run",
                )?;
            }
            tx.execute(
                "UPDATE jobs SET status = 'queued', stage = NULL, steps = 0, run_id = NULL,
                        attempts = MAX(attempts - 1, 0)
                 WHERE id = ?1 AND status = 'running'",
                params![id],
            )
            .map_err(query_err(path, "queue a job again"))?;
            Ok(())
        })
    }

    /// At start: every job left `running` by a previous process is queued again, or
    /// failed if it has been interrupted [`MAX_ATTEMPTS`] times. The reconciliation run
    /// an interrupted job had begun is failed (it never becomes a baseline).
    pub fn requeue_interrupted(&mut self) -> Result<Requeued, StateError> {
        let stale: Vec<(String, i64, Option<i64>)> = {
            let mut stmt = self
                .conn
                .prepare("SELECT id, attempts, run_id FROM jobs WHERE status = 'running'")
                .map_err(self.err("find interrupted jobs"))?;
            let rows = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .map_err(self.err("find interrupted jobs"))?;
            rows.collect::<Result<_, _>>()
                .map_err(self.err("find interrupted jobs"))?
        };
        let mut out = Requeued::default();
        for (id, attempts, run) in stale {
            if let Some(run) = run {
                self.fail_run(run, "interrupted: the server stopped during the run")?;
            }
            if attempts >= MAX_ATTEMPTS {
                self.fail_job(
                    &id,
                    &format!("interrupted {attempts} times (the server stopped during each attempt); not tried again"),
                )?;
                out.failed.push(id);
            } else {
                self.conn
                    .execute(
                        "UPDATE jobs SET status = 'queued', stage = NULL, steps = 0, run_id = NULL
                         WHERE id = ?1",
                        params![id],
                    )
                    .map_err(self.err("queue an interrupted job"))?;
                out.queued.push(id);
            }
        }
        Ok(out)
    }

    /// Up to `n` jobs of `kind` submitted before the job of row `before` (all when
    /// `None`), newest first, each with its row number (the cursor of the next page).
    pub fn jobs_page(
        &self,
        kind: JobKind,
        before: Option<i64>,
        n: usize,
    ) -> Result<Vec<(i64, Job)>, StateError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT rowid, {COLUMNS} FROM jobs WHERE kind = ?1 AND (?2 IS NULL OR rowid < ?2)
                 ORDER BY rowid DESC LIMIT ?3"
            ))
            .map_err(self.err("list jobs"))?;
        let rows = stmt
            .query_map(
                params![kind.as_str(), before, i64::try_from(n).unwrap_or(i64::MAX)],
                |r| {
                    let rowid: i64 = r.get(0)?;
                    Ok((rowid, job_of_at(r, 1)?))
                },
            )
            .map_err(self.err("list jobs"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("list jobs"))
    }

    /// One job.
    pub fn job(&self, id: &str) -> Result<Option<Job>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE id = ?1"),
                params![id],
                job_of,
            )
            .optional()
            .map_err(self.err("read a job"))
    }

    /// The job that made reconciliation run `run`, if the server made it.
    pub fn job_of_run(&self, run: i64) -> Result<Option<Job>, StateError> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM jobs WHERE run_id = ?1"),
                params![run],
                job_of,
            )
            .optional()
            .map_err(self.err("read a run's job"))
    }

    /// Jobs per status, for `/metrics`.
    pub fn job_counts(&self) -> Result<Vec<(String, i64)>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT status, COUNT(*) FROM jobs GROUP BY status ORDER BY status")
            .map_err(self.err("count jobs"))?;
        let rows = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.err("count jobs"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("count jobs"))
    }

    /// Whether a job of `kind` is queued or running.
    pub fn job_pending(&self, kind: JobKind) -> Result<bool, StateError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = ?1 AND status IN ('queued', 'running'))",
                params![kind.as_str()],
                |r| r.get(0),
            )
            .map_err(self.err("look for pending jobs"))
    }

    /// Whether a job of the night's pulls of `input` (`""`: the sources without a
    /// schedule of their own; else one source's name) is queued or running.
    pub fn pulls_pending(&self, input: &str) -> Result<bool, StateError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM jobs WHERE kind = 'ingest' AND input = ?1
                                AND status IN ('queued', 'running'))",
                params![input],
                |r| r.get(0),
            )
            .map_err(self.err("look for pending pulls"))
    }

    /// When the latest job of the night's pulls of `input` was submitted (RFC 3339, UTC).
    pub fn last_pulls_submitted(&self, input: &str) -> Result<Option<String>, StateError> {
        self.conn
            .query_row(
                "SELECT MAX(submitted_at) FROM jobs WHERE kind = 'ingest' AND input = ?1",
                params![input],
                |r| r.get(0),
            )
            .map_err(self.err("find the latest pulls"))
    }

    /// When the latest job of `kind` was submitted (RFC 3339, UTC).
    pub fn last_job_submitted(&self, kind: JobKind) -> Result<Option<String>, StateError> {
        self.conn
            .query_row(
                "SELECT MAX(submitted_at) FROM jobs WHERE kind = ?1",
                params![kind.as_str()],
                |r| r.get(0),
            )
            .map_err(self.err("find the latest job"))
    }

    /// The jobs of `kind` done since `since` (RFC 3339), oldest first: the night's pulls
    /// a reconciliation follows (a source with a schedule of its own has its own job).
    pub fn done_since(&self, kind: JobKind, since: &str) -> Result<Vec<Job>, StateError> {
        let mut stmt = self
            .conn
            .prepare(&format!(
                "SELECT {COLUMNS} FROM jobs WHERE kind = ?1 AND status = 'done'
                 AND finished_at >= ?2 ORDER BY finished_at LIMIT 100"
            ))
            .map_err(self.err("find the night's pulls"))?;
        let rows = stmt
            .query_map(params![kind.as_str(), since], job_of)
            .map_err(self.err("find the night's pulls"))?;
        rows.collect::<Result<Vec<_>, _>>()
            .map_err(self.err("find the night's pulls"))
    }

    /// Ids of finished jobs that ended before `before` (RFC 3339), for retention.
    pub fn jobs_finished_before(&self, before: &str) -> Result<Vec<String>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM jobs WHERE status IN ('done', 'failed') AND finished_at < ?1")
            .map_err(self.err("find expired jobs"))?;
        let rows = stmt
            .query_map(params![before], |r| r.get(0))
            .map_err(self.err("find expired jobs"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("find expired jobs"))
    }

    /// Deletes a job's record.
    pub fn delete_job(&self, id: &str) -> Result<(), StateError> {
        self.conn
            .execute("DELETE FROM jobs WHERE id = ?1", params![id])
            .map_err(self.err("delete a job"))?;
        Ok(())
    }

    /// Every job id (to find folders whose job is gone).
    pub fn job_ids(&self) -> Result<std::collections::BTreeSet<String>, StateError> {
        let mut stmt = self
            .conn
            .prepare("SELECT id FROM jobs")
            .map_err(self.err("list jobs"))?;
        let rows = stmt
            .query_map([], |r| r.get(0))
            .map_err(self.err("list jobs"))?;
        rows.collect::<Result<_, _>>()
            .map_err(self.err("list jobs"))
    }
}

#[cfg(test)]
#[path = "jobs_tests.rs"]
mod tests;
