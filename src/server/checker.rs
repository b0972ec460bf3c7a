//! The one-household checks of the API, run by a few worker threads (one per core)
//! instead of one thread per request: requests wait in a bounded queue, and a worker
//! takes the next one together with those already waiting that it can check in the same
//! run — one engine run (one snapshot lookup, one execution of each planned pipeline)
//! for several households, which is most of what a check of one household costs.
//!
//! A run of several households gives each of them exactly the answer it gets alone: the
//! rules are per household, and the one rule that looks across households
//! (`member_in_multiple_households`, a batch rule that SPEC §8 excludes from the API)
//! cannot fire, because households sharing a person, or a household_id, never share a
//! run. Requests with different `as_of` dates never share a run either; nor does any
//! request when lookup-mode departments are configured (they are asked for one
//! household's members only).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use chrono::NaiveDate;
use tokio::sync::{mpsc, oneshot};

use crate::applicants::Household;
use crate::check::CheckRun;
use crate::error::Error;

/// Requests waiting at most; beyond, the API answers 503.
pub const QUEUED_CHECKS: usize = 1024;

/// Households checked in one run at most.
pub const RUN_HOUSEHOLDS: usize = 64;

/// Members of the households of one run at most (well within the narrowing limit, so
/// a run reads only its members' rows).
pub const RUN_MEMBERS: usize = 256;

/// What a request gets back: the run its household was checked in.
pub type Answer = Result<Arc<CheckRun>, Arc<Error>>;

/// One household waiting to be checked.
pub(crate) struct Request {
    /// The household.
    pub(crate) household: Household,
    /// Its check date.
    pub(crate) as_of: NaiveDate,
    /// Where its answer goes.
    pub(crate) reply: oneshot::Sender<Answer>,
}

/// Why a check was not run.
#[derive(Debug)]
pub enum Refused {
    /// [`QUEUED_CHECKS`] requests are waiting.
    Busy,
    /// The workers are gone (the server is stopping).
    Stopped,
}

/// The queue of one-household checks and its workers' shared end.
#[derive(Debug)]
pub struct Checker {
    tx: mpsc::Sender<Request>,
    inbox: tokio::sync::Mutex<Inbox>,
}

#[derive(Debug)]
struct Inbox {
    rx: mpsc::Receiver<Request>,
    /// Requests taken from the queue that could not join the run being gathered; they
    /// go first next time.
    held: VecDeque<Request>,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("as_of", &self.as_of)
            .finish()
    }
}

impl Default for Checker {
    fn default() -> Self {
        let (tx, rx) = mpsc::channel(QUEUED_CHECKS);
        Checker {
            tx,
            inbox: tokio::sync::Mutex::new(Inbox {
                rx,
                held: VecDeque::new(),
            }),
        }
    }
}

impl Checker {
    /// Checks `household` (validated) on `as_of`: the run it was checked in.
    pub async fn check(&self, household: Household, as_of: NaiveDate) -> Result<Answer, Refused> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send(Request {
                household,
                as_of,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => Refused::Busy,
                mpsc::error::TrySendError::Closed(_) => Refused::Stopped,
            })?;
        answer.await.map_err(|_| Refused::Stopped)
    }

    /// The next run: the first waiting request and those waiting that may join it.
    pub(crate) async fn next_run(&self, alone: bool) -> Option<Vec<Request>> {
        let mut inbox = self.inbox.lock().await;
        let first = match inbox.held.pop_front() {
            Some(r) => r,
            None => inbox.rx.recv().await?,
        };
        let mut run = Run::new(first);
        if alone {
            return Some(run.requests);
        }
        let mut i = 0;
        while i < inbox.held.len() && !run.full() {
            if inbox.held.get(i).is_some_and(|r| run.admits(r)) {
                if let Some(r) = inbox.held.remove(i) {
                    run.add(r);
                }
            } else {
                i += 1;
            }
        }
        while !run.full() {
            match inbox.rx.try_recv() {
                Ok(r) if run.admits(&r) => run.add(r),
                Ok(r) => inbox.held.push_back(r),
                Err(_) => break,
            }
        }
        Some(run.requests)
    }
}

/// Requests gathered for one run.
struct Run {
    requests: Vec<Request>,
    households: HashSet<String>,
    people: HashSet<String>,
}

impl Run {
    fn new(first: Request) -> Run {
        let mut run = Run {
            requests: Vec::new(),
            households: HashSet::new(),
            people: HashSet::new(),
        };
        run.add(first);
        run
    }

    fn full(&self) -> bool {
        self.requests.len() >= RUN_HOUSEHOLDS
    }

    /// Whether `r` may be checked in this run and get the answer it gets alone.
    fn admits(&self, r: &Request) -> bool {
        let first = &self.requests[0];
        r.as_of == first.as_of
            && !self.households.contains(&r.household.household_id)
            && self.people.len() + r.household.members.len() <= RUN_MEMBERS
            && r.household
                .members
                .iter()
                .all(|m| !self.people.contains(&m.id_number))
    }

    fn add(&mut self, r: Request) {
        self.households.insert(r.household.household_id.clone());
        self.people
            .extend(r.household.members.iter().map(|m| m.id_number.clone()));
        self.requests.push(r);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::applicants::{Member, Relation};
    use crate::policy::{AidType, AreaType};

    fn household(id: &str, people: &[&str]) -> Household {
        Household {
            household_id: id.into(),
            region_code: "410105".into(),
            area_type: AreaType::Urban,
            aid_type: AidType::Dibao,
            authorization_id: "A".into(),
            members: people
                .iter()
                .enumerate()
                .map(|(i, p)| Member {
                    id_number: (*p).into(),
                    name: "张三".into(),
                    relation: if i == 0 {
                        Relation::Applicant
                    } else {
                        Relation::Child
                    },
                    row: i as u64 + 1,
                })
                .collect(),
            standard: 0,
        }
    }

    fn request(id: &str, people: &[&str], day: u32) -> Request {
        Request {
            household: household(id, people),
            as_of: NaiveDate::from_ymd_opt(2026, 11, day).unwrap(),
            reply: oneshot::channel().0,
        }
    }

    /// Waiting requests join a run unless they share a person or a household_id with
    /// it, or have another as_of; those wait for the next run, first in line.
    #[tokio::test]
    async fn a_run_never_mixes_households_that_share_anyone() {
        let c = Checker::default();
        for r in [
            request("H1", &["A", "B"], 30),
            request("H2", &["C"], 30),
            request("H3", &["B", "D"], 30),
            request("H1", &["E"], 30),
            request("H4", &["F"], 29),
            request("H5", &["G"], 30),
        ] {
            c.tx.try_send(r).unwrap();
        }
        let ids = |run: Vec<Request>| {
            run.iter()
                .map(|r| r.household.household_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(c.next_run(false).await.unwrap()), ["H1", "H2", "H5"]);
        assert_eq!(ids(c.next_run(false).await.unwrap()), ["H3", "H1"]);
        assert_eq!(ids(c.next_run(false).await.unwrap()), ["H4"]);
        c.tx.try_send(request("H6", &["A"], 30)).unwrap();
        c.tx.try_send(request("H7", &["B"], 30)).unwrap();
        assert_eq!(ids(c.next_run(true).await.unwrap()), ["H6"]);
        assert_eq!(ids(c.next_run(true).await.unwrap()), ["H7"]);
    }

    /// A run stops at RUN_HOUSEHOLDS households and RUN_MEMBERS people; the queue at
    /// QUEUED_CHECKS requests (then: busy).
    #[tokio::test]
    async fn runs_and_the_queue_are_bounded() {
        let c = Checker::default();
        let people: Vec<String> = (0..QUEUED_CHECKS).map(|i| format!("P{i}")).collect();
        for (i, p) in people.iter().enumerate() {
            c.tx.try_send(request(&format!("H{i}"), &[p.as_str()], 30))
                .unwrap();
        }
        assert!(matches!(
            c.check(
                household("X", &["Q"]),
                NaiveDate::from_ymd_opt(2026, 11, 30).unwrap()
            )
            .await,
            Err(Refused::Busy)
        ));
        assert_eq!(c.next_run(false).await.unwrap().len(), RUN_HOUSEHOLDS);
        let c = Checker::default();
        for i in 0..4 {
            let people: Vec<String> = (0..100).map(|p| format!("Z{i}-{p}")).collect();
            let people: Vec<&str> = people.iter().map(String::as_str).collect();
            c.tx.try_send(request(&format!("B{i}"), &people, 30))
                .unwrap();
        }
        // 100 people each: two fit under RUN_MEMBERS (256), the third does not.
        assert_eq!(c.next_run(false).await.unwrap().len(), 2);
        assert_eq!(c.next_run(false).await.unwrap().len(), 2);
    }
}
