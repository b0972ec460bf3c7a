//! `GET /api/v1/batches[/{id}[/results|/rejected|/report]]`: the batches submitted
//! (`submit.rs`) and what their jobs wrote. A batch is visible
//! to the token that submitted it and to tokens whose regions cover every region of it;
//! to any other it is 404, like one that does not exist.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::applicants::Rejection;
use crate::server::app::AppState;
use crate::server::caller::{Caller, MayBatch, MayListBatches};
use crate::server::config::Role;
use crate::server::error::ApiError;
use crate::server::jobs::{is_job_id, out_dir};
use crate::server::schema::{BatchItem, BatchPage, BatchProgress, BatchStatus};
use crate::server::who::Who;
use crate::state::audit::ReadDetail;
use crate::state::jobs::{Job, JobKind};
use crate::verdict::HouseholdResult;

/// Whether `job` is in `token`'s list: its own batches; for admins and auditors, every
/// batch of their regions.
pub fn listed(token: &Who, job: &Job) -> bool {
    match token.role {
        Role::Admin | Role::Auditor => {
            job.kind == JobKind::Batch
                && (job.actor == token.actor
                    || (!job.regions.is_empty() && job.regions.iter().all(|r| token.covers(r))))
        }
        _ => job.kind == JobKind::Batch && job.actor == token.actor,
    }
}

/// Whether `token` may see `job`.
pub fn visible(token: &Who, job: &Job) -> bool {
    job.kind == JobKind::Batch
        && (job.actor == token.actor
            || (!job.regions.is_empty() && job.regions.iter().all(|r| token.covers(r))))
}

/// `limit` and `cursor` of the list of batches.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Batches a page (1–1000, default 100).
    limit: Option<usize>,
    /// Where the page starts: the `next_cursor` of the page before.
    cursor: Option<String>,
}

/// The token's batches (admins and auditors: every batch all of whose regions they
/// cover), newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/batches",
    operation_id = "list_batches",
    params(
        ("limit" = Option<usize>, Query, description = "Batches a page, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before"),
    ),
    responses(
        (status = 200, description = "A page of batches, newest first; next_cursor null on the last page", body = BatchPage),
        (status = 400, description = "A limit outside 1–1000 or a cursor this server did not give"),
        Caller<MayListBatches>,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayListBatches>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<BatchPage>, ApiError> {
    let Query(q) = query.map_err(ApiError::bad_query)?;
    let limit = super::page_limit(q.limit)?;
    let before = q.cursor.as_deref().map(super::number_cursor).transpose()?;
    let (jobs, next) = listed_page(&app, token, before, limit).await?;
    let batches = jobs
        .into_iter()
        .map(|job| BatchItem {
            batch_id: job.id,
            status: job.status,
            file_name: job.file_name,
            as_of: job.as_of,
            submitted_at: job.submitted_at,
            finished_at: job.finished_at,
        })
        .collect();
    Ok(Json(BatchPage {
        batches,
        next_cursor: next.map(|id| id.to_string()),
    }))
}

/// A page of `who`'s list of batches ([`listed`]), newest first, from before the row
/// `before`: up to `limit` batches and the cursor of the next page — for the API and
/// the pages alike.
pub async fn listed_page(
    app: &Arc<AppState>,
    who: &Who,
    before: Option<i64>,
    limit: usize,
) -> Result<(Vec<Job>, Option<i64>), ApiError> {
    let who = who.clone();
    let (jobs, next) = app
        .db(move |state| {
            super::collect_page(
                limit,
                before,
                |before, n| {
                    state
                        .jobs_page(JobKind::Batch, *before, n)
                        .map_err(|e| ApiError::internal(&e.into()))
                },
                |(rowid, _)| Some(*rowid),
                |(_, job)| listed(&who, &job).then_some(job),
            )
        })
        .await?;
    Ok((jobs, next.flatten()))
}

/// The batch `id` if `token` may see it; 404 otherwise.
pub async fn find(app: &Arc<AppState>, token: &Who, id: &str) -> Result<Job, ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("没有批次 {id}（no batch {id}）"),
        )
    };
    if !is_job_id(id) {
        return Err(not_found());
    }
    let wanted = id.to_owned();
    let job = app
        .db(move |s| s.job(&wanted).map_err(|e| ApiError::internal(&e.into())))
        .await?
        .ok_or_else(not_found)?;
    if !visible(token, &job) {
        return Err(not_found());
    }
    Ok(job)
}

/// A batch's status and progress.
#[utoipa::path(
    get,
    path = "/api/v1/batches/{id}",
    operation_id = "batch_status",
    params(("id" = String, Path, description = "The batch_id")),
    responses(
        (status = 200, description = "The batch's status and progress", body = BatchStatus),
        (status = 404, description = "No such batch, or not one the token may see"),
        (status = 403, description = "The token's role may not read batches"),
        Caller<MayBatch>,
    ),
    security(("bearer" = []))
)]
pub async fn status(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayBatch>,
    Path(id): Path<String>,
) -> Result<Json<BatchStatus>, ApiError> {
    let job = find(&app, token, &id).await?;
    Ok(Json(BatchStatus {
        batch_id: job.id,
        status: job.status,
        file_name: job.file_name,
        as_of: job.as_of,
        submitted_at: job.submitted_at,
        started_at: job.started_at,
        finished_at: job.finished_at,
        attempts: job.attempts,
        progress: BatchProgress {
            stage: job.stage,
            steps_done: job.steps,
        },
        summary: job.summary,
        error: job.error,
    }))
}

/// The output file `name` of a done batch, its read audited as `read`.
pub async fn output(
    app: &Arc<AppState>,
    token: &Who,
    id: &str,
    name: &str,
    read: &str,
) -> Result<PathBuf, ApiError> {
    let job = find(app, token, id).await?;
    if job.status != "done" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_done",
            format!(
                "批次尚未完成（状态：{}）（the batch is {}, not done）",
                job.status, job.status
            ),
        ));
    }
    super::audit_read(
        app,
        token,
        ReadDetail {
            read: read.to_owned(),
            of: format!("batch:{}", job.id),
            regions: job.regions.clone(),
            households: vec![],
        },
    )
    .await?;
    Ok(out_dir(&app.config.state_dir, &job.id).join(name))
}

/// A done batch's `results.jsonl` (ID numbers masked for staff).
#[utoipa::path(
    get,
    path = "/api/v1/batches/{id}/results",
    operation_id = "batch_results",
    params(("id" = String, Path, description = "The batch_id")),
    responses(
        (status = 200, description = "results.jsonl: one household per line, each line this object", body = HouseholdResult, content_type = "application/x-ndjson"),
        (status = 404, description = "No such batch, or not one the token may see"),
        (status = 409, description = "The batch is not done"),
        (status = 403, description = "The token's role may not read batches"),
        Caller<MayBatch>,
    ),
    security(("bearer" = []))
)]
pub async fn results(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayBatch>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let path = output(&app, token, &id, "results.jsonl", "batch_results").await?;
    let edit: Option<fn(&mut Value)> = if token.role.sees_full_ids() {
        None
    } else {
        Some(super::checks::mask_result)
    };
    Ok(super::files::stream_jsonl(path, edit))
}

/// A done batch's `rejected.jsonl`.
#[utoipa::path(
    get,
    path = "/api/v1/batches/{id}/rejected",
    operation_id = "batch_rejected",
    params(("id" = String, Path, description = "The batch_id")),
    responses(
        (status = 200, description = "rejected.jsonl: one problem per line, each line this object", body = Rejection, content_type = "application/x-ndjson"),
        (status = 404, description = "No such batch, or not one the token may see"),
        (status = 409, description = "The batch is not done"),
        (status = 403, description = "The token's role may not read batches"),
        Caller<MayBatch>,
    ),
    security(("bearer" = []))
)]
pub async fn rejected(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayBatch>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let path = output(&app, token, &id, "rejected.jsonl", "batch_rejected").await?;
    let edit: Option<fn(&mut Value)> = if token.role.sees_full_ids() {
        None
    } else {
        Some(super::checks::mask_household_id)
    };
    Ok(super::files::stream_jsonl(path, edit))
}

/// A done batch's `report.html` (ID numbers always masked).
#[utoipa::path(
    get,
    path = "/api/v1/batches/{id}/report",
    operation_id = "batch_report",
    params(("id" = String, Path, description = "The batch_id")),
    responses(
        (status = 200, description = "report.html, printable, in Chinese", body = String, content_type = "text/html"),
        (status = 404, description = "No such batch, or not one the token may see"),
        (status = 409, description = "The batch is not done"),
        (status = 403, description = "The token's role may not read batches"),
        Caller<MayBatch>,
    ),
    security(("bearer" = []))
)]
pub async fn report(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayBatch>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let path = output(&app, token, &id, "report.html", "batch_report").await?;
    super::files::html_file(&path).await
}
