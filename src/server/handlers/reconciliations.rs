//! `GET /api/v1/reconciliations` and `/{id}/changes`: the reconciliation runs a token
//! may see (those that checked households of its regions) and their changes, only those
//! of its regions. A run it may not see is 404, like one that does not exist.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde_json::{json, Value};

use crate::server::config::{Role, Token};
use crate::server::error::ApiError;
use crate::server::AppState;

fn may_read_runs(token: &Token) -> Result<(), ApiError> {
    if token.role == Role::Auditor {
        return Err(ApiError::forbidden(
            "审计员只能查看审计日志（an auditor token reads the audit log only）",
        ));
    }
    Ok(())
}

/// The runs the token may see, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/reconciliations",
    responses(
        (status = 200, description = "`{\"reconciliations\": [{id, status, started_at, as_of}]}`"),
        (status = 401, description = "No or unknown bearer token"),
        (status = 403, description = "An auditor token"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let token = app.caller(&headers)?;
    may_read_runs(token)?;
    let state = app.state.lock().map_err(|_| ApiError::unavailable())?;
    let mut out = Vec::new();
    for run in state.runs().map_err(|e| ApiError::internal(&e.into()))? {
        let regions = state
            .run_regions(run.id)
            .map_err(|e| ApiError::internal(&e.into()))?;
        if token.role != Role::Admin && !regions.iter().any(|r| token.covers(r)) {
            continue;
        }
        out.push(json!({
            "id": run.id,
            "status": run.status,
            "started_at": run.started_at,
            "as_of": run.as_of,
        }));
    }
    Ok(Json(json!({ "reconciliations": out })))
}

/// One run's changes, those of the token's regions.
#[utoipa::path(
    get,
    path = "/api/v1/reconciliations/{id}/changes",
    params(("id" = i64, Path, description = "The run")),
    responses(
        (status = 200, description = "`{id, status, changes: [changes.jsonl lines]}`"),
        (status = 401, description = "No or unknown bearer token"),
        (status = 403, description = "An auditor token"),
        (status = 404, description = "No such run, or none of the token's regions"),
    ),
    security(("bearer" = []))
)]
pub async fn changes(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let token = app.caller(&headers)?;
    may_read_runs(token)?;
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("没有第 {id} 次复核（no reconciliation run {id}）"),
        )
    };
    let run: i64 = id.trim().parse().map_err(|_| not_found())?;
    let state = app.state.lock().map_err(|_| ApiError::unavailable())?;
    let known = state
        .runs()
        .map_err(|e| ApiError::internal(&e.into()))?
        .into_iter()
        .find(|r| r.id == run)
        .ok_or_else(not_found)?;
    let regions = state
        .run_regions(run)
        .map_err(|e| ApiError::internal(&e.into()))?;
    if token.role != Role::Admin && !regions.iter().any(|r| token.covers(r)) {
        return Err(not_found());
    }
    let changes: Vec<Value> = state
        .changes(run)
        .map_err(|e| ApiError::internal(&e.into()))?
        .into_iter()
        .filter(|(region, _)| token.covers(region))
        .filter_map(|(_, text)| serde_json::from_str(&text).ok())
        .collect();
    let mut changes = changes;
    if !token.role.sees_full_ids() {
        for c in &mut changes {
            for key in ["added_flags", "removed_flags"] {
                if let Some(flags) = c.get_mut(key).and_then(Value::as_array_mut) {
                    for f in flags {
                        super::checks::mask_flag(f);
                    }
                }
            }
        }
    }
    Ok(Json(
        json!({ "id": run, "status": known.status, "changes": changes }),
    ))
}
