//! The job queue: bounds, shares, order, interruptions, completion once.

use std::collections::BTreeMap;

use super::*;
use crate::state::audit::AuditDetail;
use crate::state::complete::Completion;
use crate::state::runs::RunDone;

fn job(id: &str) -> NewJob {
    NewJob {
        id: id.into(),
        kind: JobKind::Batch,
        actor: "token:t".into(),
        regions: vec!["410102".into()],
        file_name: "a.csv".into(),
        input: "/nowhere/a.csv".into(),
        as_of: "2026-11-30".into(),
    }
}

fn detail() -> AuditDetail {
    AuditDetail {
        households: vec![],
        sources: BTreeMap::new(),
        as_of: "2026-11-30".into(),
    }
}

/// The queue is bounded; a job interrupted MAX_ATTEMPTS times is failed, not run
/// again; one interrupted fewer times is queued again with its run failed.
#[test]
fn queue_bound_and_interrupted_jobs() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::open(dir.path()).unwrap();
    let bound = Some(QueueBound {
        total: 2,
        per_actor: 2,
    });
    assert_eq!(s.submit_job(&job("a"), bound).unwrap(), Admission::Queued);
    assert_eq!(s.submit_job(&job("b"), bound).unwrap(), Admission::Queued);
    assert_eq!(
        s.submit_job(&job("c"), bound).unwrap(),
        Admission::ShareFull,
        "third refused"
    );
    let mut other = job("c");
    other.actor = "token:other".into();
    assert_eq!(s.submit_job(&other, bound).unwrap(), Admission::QueueFull);
    assert!(s.job("c").unwrap().is_none());
    // A is claimed and interrupted, with a run begun: queued again, run failed.
    assert_eq!(s.claim_job().unwrap().unwrap().id, "a");
    let run = s.begin_run("2026-11-30", "r.csv", "lake").unwrap();
    s.job_run("a", run).unwrap();
    let r = s.requeue_interrupted().unwrap();
    assert_eq!((r.queued, r.failed), (vec!["a".to_owned()], vec![]));
    assert_eq!(s.run(run).unwrap().unwrap().status, "failed");
    // Interrupted twice more: the third interruption fails it.
    for attempt in 2..=MAX_ATTEMPTS {
        let j = s.claim_job().unwrap().unwrap();
        assert_eq!((j.id.as_str(), j.attempts), ("a", attempt));
        let r = s.requeue_interrupted().unwrap();
        if attempt < MAX_ATTEMPTS {
            assert_eq!(r.queued, vec!["a".to_owned()]);
        } else {
            assert_eq!(r.failed, vec!["a".to_owned()]);
        }
    }
    let a = s.job("a").unwrap().unwrap();
    assert_eq!(a.status, "failed");
    assert!(a.error.unwrap().contains("interrupted 3 times"));
    // A shutdown's re-queue does not count as an attempt; done happens once.
    let b = s.claim_job().unwrap().unwrap();
    assert_eq!((b.id.as_str(), b.attempts), ("b", 1));
    s.requeue_job("b").unwrap();
    assert_eq!(s.claim_job().unwrap().unwrap().attempts, 1);
    let summary = serde_json::json!({});
    let done = |s: &mut State| {
        s.complete(&Completion {
            job: Some(("b", &summary)),
            ..Completion::audit("token:t", "batch", &detail())
        })
        .unwrap()
        .job_done
    };
    assert!(done(&mut s));
    assert!(!done(&mut s));
    assert_eq!(s.audit_entries().unwrap().len(), 1, "audited once");
}

/// The night's reconciliation never waits behind uploads: claimed before batches
/// queued earlier.
#[test]
fn the_schedule_goes_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::open(dir.path()).unwrap();
    for id in ["b1", "b2"] {
        assert_eq!(s.submit_job(&job(id), None).unwrap(), Admission::Queued);
    }
    let mut nightly = job("n");
    nightly.kind = JobKind::Reconcile;
    nightly.actor = "schedule".into();
    assert_eq!(s.submit_job(&nightly, None).unwrap(), Admission::Queued);
    let order: Vec<String> = std::iter::from_fn(|| s.claim_job().unwrap().map(|j| j.id)).collect();
    assert_eq!(order, ["n", "b1", "b2"]);
}

/// A scheduled reconciliation queued again by a stopping server (past its grace) is
/// never done nor audited by the attempt that was stopped: the requeue fails its run,
/// and that attempt's completion records nothing; the next attempt's run completes
/// once.
#[test]
fn a_requeued_run_is_not_completed_twice() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::open(dir.path()).unwrap();
    let mut nightly = job("n");
    nightly.kind = JobKind::Reconcile;
    assert_eq!(s.submit_job(&nightly, None).unwrap(), Admission::Queued);
    assert_eq!(s.claim_job().unwrap().unwrap().id, "n");
    let first = s.begin_run("2026-11-30", "r.csv", "lake").unwrap();
    s.job_run("n", first).unwrap();
    s.requeue_job("n").unwrap();
    assert_eq!(s.run(first).unwrap().unwrap().status, "failed");
    let households = BTreeMap::new();
    let summary = serde_json::json!({});
    let complete = |s: &mut State, run: i64| {
        s.complete(&Completion {
            run: Some(RunDone {
                id: run,
                households: &households,
                changes: None,
            }),
            job: Some(("n", &summary)),
            ..Completion::audit("schedule", "schedule", &detail())
        })
    };
    // The stopped attempt finishes anyway: nothing recorded, its run stays failed.
    let late = complete(&mut s, first).unwrap();
    assert_eq!((late.audit_seq, late.job_done), (None, false));
    assert_eq!(s.run(first).unwrap().unwrap().status, "failed");
    assert!(s.audit_entries().unwrap().is_empty());
    // The next attempt: its own run, done and audited once.
    assert_eq!(s.claim_job().unwrap().unwrap().id, "n");
    let second = s.begin_run("2026-11-30", "r.csv", "lake").unwrap();
    s.job_run("n", second).unwrap();
    let done = complete(&mut s, second).unwrap();
    assert!(done.job_done && done.audit_seq.is_some());
    assert_eq!(s.run(second).unwrap().unwrap().status, "done");
    assert_eq!(s.audit_entries().unwrap().len(), 1);
    // A failed run is never completed, even without a job.
    let e = s
        .complete(&Completion {
            run: Some(RunDone {
                id: first,
                households: &households,
                changes: None,
            }),
            ..Completion::audit("os:clerk", "reconcile", &detail())
        })
        .unwrap_err();
    assert!(matches!(e, StateError::RunNotRunning { .. }), "{e}");
    assert_eq!(s.audit_entries().unwrap().len(), 1);
}

/// Retention deletes old runs with their households, but never the latest done run
/// (the next run's baseline).
#[test]
fn retention_keeps_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::open(dir.path()).unwrap();
    let mut done = Vec::new();
    for _ in 0..2 {
        let run = s.begin_run("2026-11-30", "r.csv", "lake").unwrap();
        let kept = BTreeMap::from([(
            "H1".to_owned(),
            crate::changes::Kept {
                verdict: "eligible".into(),
                flags: vec![],
                region_code: "410102".into(),
            },
        )]);
        s.complete(&Completion {
            run: Some(RunDone {
                id: run,
                households: &kept,
                changes: None,
            }),
            ..Completion::audit("os:t", "reconcile", &detail())
        })
        .unwrap();
        done.push(run);
    }
    let failed = s.begin_run("2026-11-30", "r.csv", "lake").unwrap();
    s.fail_run(failed, "boom").unwrap();
    // Everything ended before a time in the future: all old.
    let n = s.expire_runs("9999-01-01T00:00:00Z").unwrap();
    assert_eq!(n, 2, "the first done run and the failed one");
    assert!(s.run(done[0]).unwrap().is_none());
    assert!(s.households(done[0]).unwrap().is_empty());
    assert!(s.run(failed).unwrap().is_none());
    assert_eq!(s.previous_done(i64::MAX).unwrap().unwrap().id, done[1]);
    assert_eq!(s.households(done[1]).unwrap().len(), 1);
}

/// A database that cannot grow (a full disk; here its page limit) fails the write in
/// words that say so — the server answers 503, not 500 — and the queue is unchanged.
#[test]
fn a_full_database_is_told_apart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::open(dir.path()).unwrap();
    assert_eq!(s.submit_job(&job("a"), None).unwrap(), Admission::Queued);
    let pages: i64 = s
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    s.conn.pragma_update(None, "max_page_count", pages).unwrap();
    let mut big = job("b");
    big.file_name = "x".repeat(200_000);
    let e = s.submit_job(&big, None).unwrap_err();
    assert!(e.disk_full(), "{e}");
    assert!(s.job("b").unwrap().is_none());
    // The queued job is still there to be claimed once the claim can commit.
    assert_eq!(s.claim_job().unwrap().map(|j| j.id), Some("a".to_owned()));
}

/// Jobs are shared out among submitters: the next job is the oldest of the submitter
/// served least recently, so one token's burst never holds back another's batch
/// (scheduled reconciliations first of all).
#[test]
fn the_queue_is_shared_out_among_submitters() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = State::open(dir.path()).unwrap();
    for id in ["a1", "a2", "a3"] {
        s.submit_job(&job(id), None).unwrap();
    }
    let mut b = job("b1");
    b.actor = "token:b".into();
    s.submit_job(&b, None).unwrap();
    let mut claimed = Vec::new();
    while let Some(j) = s.claim_job().unwrap() {
        claimed.push(j.id);
    }
    assert_eq!(claimed, ["a1", "b1", "a2", "a3"]);
}
