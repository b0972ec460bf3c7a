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
/// was given when it is not a date; 422 for a date in the future or more than
/// `[server] max_backdate_days` before today (a back-dated D reads windows the
/// departments' data may not reach).
pub fn as_of(
    app: &AppState,
    given: Option<&str>,
    status: StatusCode,
    code: &'static str,
) -> Result<chrono::NaiveDate, ApiError> {
    let d = crate::check::as_of(given)
        .map_err(|_| ApiError::bad_as_of(status, code, given.unwrap_or("")))?;
    let today = chrono::Local::now().date_naive();
    let days = app.config.max_backdate_days;
    if d > today {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            format!("核对日期 {d} 晚于今天（{today}），不能核对未来的日期（as_of {d} is in the future）"),
        ));
    }
    if (today - d).num_days() > i64::from(days) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            format!(
                "核对日期 {d} 早于今天 {days} 天以上，不能回溯这么久（as_of {d} is more than max_backdate_days = {days} days before today）"
            ),
        ));
    }
    Ok(d)
}

/// A request body, or 413 beyond `max_body_mb`, 408 when it stalled (400 for any other
/// failure to read it).
pub fn body(app: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if let Some(limit) = super::body::stalled(&e) {
            ApiError::body_stalled(limit)
        } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(app.config.max_body_bytes)
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
        }
    })
}

/// Appends the audit entry of a read that returns household data, before it is
/// answered: a read that cannot be audited is not answered.
pub async fn audit_read(
    app: &std::sync::Arc<AppState>,
    token: &crate::server::config::Token,
    detail: crate::state::audit::ReadDetail,
) -> Result<(), ApiError> {
    let actor = format!("token:{}", token.name);
    app.db(move |state| {
        state
            .audit_read(&actor, &detail)
            .map_err(|e| ApiError::internal(&e.into()))
    })
    .await?;
    Ok(())
}
