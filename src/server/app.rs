//! What every request and every worker of `hedui serve` shares.

use std::sync::Mutex;

use crate::check::Setup;
use crate::policy::Policy;
use crate::state::State;

use super::auth;
use super::checker::Checker;
use super::config::{ServerConfig, Token};
use super::error::ApiError;
use super::jobs::Jobs;
use super::limit::RateLimiter;
use super::metrics::Metrics;

/// The server's shutdown as its workers are given it: `true` once the server stops.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;

/// Completes once `shutdown` says the server stops (or its sender is gone).
pub async fn stopped(shutdown: &mut Shutdown) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// What every request shares.
pub struct AppState {
    /// The validated server settings and tokens.
    pub config: ServerConfig,
    /// The policy of every check.
    pub policy: Policy,
    /// The departments' data: the lake (current snapshots read per request, so a new
    /// commit is picked up without a restart) and its lookup-mode sources.
    pub setup: Setup,
    /// How results name the data read.
    pub sources_label: String,
    /// The deployment config: its lake and sources, for the night's pulls.
    pub deployment: crate::config::Deployment,
    /// The state database (audit log).
    pub state: Mutex<State>,
    /// Requests per minute per token.
    pub limiter: RateLimiter,
    /// What `/metrics` reports.
    pub metrics: Metrics,
    /// The job worker's shared half.
    pub jobs: Jobs,
    /// The queue of one-household checks.
    pub checks: Checker,
    /// Set when a request was refused for a full disk (by the request middleware), and
    /// cleared by the next write to the state database that succeeds: `/healthz` is not
    /// ready and `/metrics` says so.
    pub disk_full: std::sync::atomic::AtomicBool,
    /// Turns to read an uploaded batch file whole (one per core): uploads wait their
    /// turn on disk, not in memory.
    pub reading: tokio::sync::Semaphore,
}

/// The rate limit's key of requests without a valid token (no token name can be it).
const UNAUTHENTICATED: &str = "\u{0}unauthenticated";

/// How long `/healthz` waits for the state database before saying it does not answer.
pub const HEALTH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl AppState {
    /// Runs `f` on the state database on a blocking thread, never on the async ones: a
    /// slow or locked database (a long write, another process holding its lock) delays
    /// the requests that need it, never the others (`/healthz`, the OpenAPI document,
    /// checks being answered).
    pub async fn db<T: Send + 'static>(
        self: &std::sync::Arc<Self>,
        f: impl FnOnce(&mut State) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let app = self.clone();
        let out = tokio::task::spawn_blocking(move || {
            // A panic in another request's closure poisons the lock; its transaction was
            // rolled back when dropped, so the database is as the last commit left it:
            // go on rather than answer 503 until a restart.
            let mut state = app.state.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut state)
        })
        .await
        .map_err(|_| ApiError::unavailable())?;
        out
    }

    /// A write to the state database succeeded: its disk is not full (any more).
    pub fn wrote(&self) {
        self.disk_full
            .store(false, std::sync::atomic::Ordering::SeqCst);
    }

    /// The token of a request, admitted by the rate limit: 401 or 429 otherwise.
    pub fn caller(&self, headers: &axum::http::HeaderMap) -> Result<&Token, ApiError> {
        let token = match auth::authenticate(headers, &self.config.tokens) {
            Ok(t) => t,
            Err(refused) => {
                // Requests without a valid token share one rate: guessing is slowed too.
                self.limiter
                    .admit(UNAUTHENTICATED)
                    .map_err(ApiError::too_many)?;
                return Err(refused);
            }
        };
        self.limiter
            .admit(&token.name)
            .map_err(ApiError::too_many)?;
        Ok(token)
    }
}
