//! The route table: the only place routes are declared (SPEC §8).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use super::handlers::{audit, checks, health, reconciliations};
use super::{metrics, AppState};

/// Every route of the API.
pub fn router(app: Arc<AppState>) -> Router {
    let limit = app.config.max_body_bytes;
    Router::new()
        .route("/api/v1/checks", post(checks::check))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/reconciliations", get(reconciliations::list))
        .route(
            "/api/v1/reconciliations/{id}/changes",
            get(reconciliations::changes),
        )
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::scrape))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}
