//! The route table: the only place routes are declared (SPEC §8).

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;

use super::handlers::{audit, batches, checks, health, reconciliations};
use super::{metrics, AppState};

/// The OpenAPI 3 document, generated from the handlers' annotations.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "hedui", description = "Household economic-status verification (SPEC §8)"),
    paths(
        checks::check,
        batches::submit,
        batches::status,
        batches::results,
        batches::rejected,
        batches::report,
        audit::list,
        reconciliations::list,
        reconciliations::changes,
        reconciliations::report,
        health::healthz,
        metrics::scrape,
        openapi,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme the paths refer to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        doc.components
            .get_or_insert_with(Default::default)
            .add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
    }
}

/// `GET /api/v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    responses((status = 200, description = "This OpenAPI document"))
)]
pub async fn openapi() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(<ApiDoc as utoipa::OpenApi>::openapi())
}

/// Every route of the API.
pub fn router(app: Arc<AppState>) -> Router {
    let limit = app.config.max_body_bytes;
    Router::new()
        .route("/api/v1/checks", post(checks::check))
        .route("/api/v1/batches", post(batches::submit))
        .route("/api/v1/batches/{id}", get(batches::status))
        .route("/api/v1/batches/{id}/results", get(batches::results))
        .route("/api/v1/batches/{id}/rejected", get(batches::rejected))
        .route("/api/v1/batches/{id}/report", get(batches::report))
        .route("/api/v1/audit", get(audit::list))
        .route("/api/v1/reconciliations", get(reconciliations::list))
        .route(
            "/api/v1/reconciliations/{id}/changes",
            get(reconciliations::changes),
        )
        .route(
            "/api/v1/reconciliations/{id}/report",
            get(reconciliations::report),
        )
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::scrape))
        .route("/api/v1/openapi.json", get(openapi))
        .fallback(no_route)
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(app)
}

/// Any path that is not a route: 404 as JSON, told apart from a 404 of a route.
async fn no_route() -> super::error::ApiError {
    super::error::ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "no_route",
        "没有这个接口（no such route; see /api/v1/openapi.json）",
    )
}
