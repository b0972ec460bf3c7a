//! The workers of the one-household checks: one thread per core, each taking the next
//! run of households gathered by the [`crate::server::checker::Checker`] and checking them in one engine run.

use std::sync::Arc;

use crate::applicants::{Batch, Household};
use crate::error::Error;
use crate::progress::Progress;

use super::super::app::{stopped, AppState, Shutdown};

/// Starts `workers` threads checking the queued households of `app` on `handle`'s
/// runtime (the engine's future is driven on a thread of its own: it is not `Send`),
/// until `drained`: the server fires it once the requests in progress are answered, so
/// every check a request waits for is run.
pub fn start(
    app: Arc<AppState>,
    handle: tokio::runtime::Handle,
    workers: usize,
    drained: Shutdown,
) -> Result<(), Error> {
    for n in 0..workers.max(1) {
        let app = app.clone();
        let handle = handle.clone();
        let drained = drained.clone();
        std::thread::Builder::new()
            .name(format!("hedui-check-{n}"))
            .spawn(move || handle.block_on(work(app, drained)))
            .map_err(|e| Error::Internal(format!("cannot start a check worker thread: {e}")))?;
    }
    Ok(())
}

async fn work(app: Arc<AppState>, mut drained: Shutdown) {
    // Lookup-mode departments are asked for one household's members at a time.
    let alone = matches!(&app.setup.sources, crate::sources::Opened::Lake { lookups, .. } if !lookups.is_empty());
    loop {
        let next = tokio::select! {
            biased;
            next = app.checks.next_run(alone) => next,
            _ = stopped(&mut drained) => None,
        };
        let Some(requests) = next else { break };
        let as_of = requests[0].as_of;
        let mut households: Vec<Household> = requests.iter().map(|r| r.household.clone()).collect();
        households.sort_by(|a, b| a.household_id.cmp(&b.household_id));
        let batch = Batch::of_households("api", households);
        tracing::debug!("checks: one run of {} households", requests.len());
        // A defect that panics fails this run's requests (500, logged), not the worker.
        let silent = Progress::silent();
        let run = std::panic::AssertUnwindSafe(crate::check::run_batch(
            batch,
            &app.policy,
            &app.setup,
            &app.sources_label,
            as_of,
            &silent,
        ));
        let answer = match futures::FutureExt::catch_unwind(run).await {
            Ok(run) => run.map(Arc::new).map_err(Arc::new),
            Err(_) => Err(Arc::new(Error::Internal("a check run panicked".into()))),
        };
        for r in requests {
            // A client that went away no longer waits for its answer.
            let _ = r.reply.send(answer.clone());
        }
    }
}
