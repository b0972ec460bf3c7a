//! One file per group of routes.

pub mod audit;
pub mod batches;
pub mod checks;
pub mod health;
pub mod metrics;
pub mod reconciliations;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;

use super::app::AppState;
use super::error::ApiError;

/// The check date of a request (today when not given), or `status`/`code` naming what
/// was given when it is not a date.
pub fn as_of(
    given: Option<&str>,
    status: StatusCode,
    code: &'static str,
) -> Result<chrono::NaiveDate, ApiError> {
    crate::check::as_of(given).map_err(|_| ApiError::bad_as_of(status, code, given.unwrap_or("")))
}

/// A request body, or 413 beyond `max_body_mb` (400 for any other failure to read it).
pub fn body(app: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(app.config.max_body_bytes)
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
        }
    })
}
