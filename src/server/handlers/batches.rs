//! `POST /api/v1/batches` and `GET /api/v1/batches/{id}[/results|/rejected|/report]`: an
//! applicant batch (CSV in UTF-8 or GBK, XLSX, JSON Lines) as a job in the state
//! database, run by the job worker on the same engine as `check`.
//!
//! The file is read (within the batch limits) when it arrives: an unreadable one is 422
//! at once, one with households outside the token's regions is 403. A batch is visible
//! to the token that submitted it and to tokens whose regions cover every region of it;
//! to any other it is 404, like one that does not exist.

use std::collections::BTreeSet;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::applicants::{read_batch_within, BatchFormat, Column, Rejection};
use crate::server::app::AppState;
use crate::server::caller::{Caller, MayBatch, MayListBatches};
use crate::server::config::{Role, Token};
use crate::server::error::ApiError;
use crate::server::jobs::{is_job_id, job_dir, new_id, out_dir};
use crate::server::schema::{
    BatchAccepted, BatchForm, BatchItem, BatchPage, BatchProgress, BatchStatus,
};
use crate::server::upload;
use crate::state::audit::ReadDetail;
use crate::state::jobs::{Admission, Job, JobKind, NewJob, QueueBound};
use crate::verdict::HouseholdResult;

/// Query parameters of a submission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    /// Check date D (default: today).
    as_of: Option<String>,
    /// The file's name, for messages and the report (its extension tells the format
    /// when the Content-Type does not).
    file_name: Option<String>,
}

/// The extension a Content-Type stands for.
fn extension_of(content_type: Option<&str>) -> Option<&'static str> {
    match crate::server::upload::media_type(content_type?).as_str() {
        "text/csv" => Some("csv"),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet" => Some("xlsx"),
        "application/x-ndjson"
        | "application/jsonl"
        | "application/x-jsonlines"
        | "application/json" => Some("jsonl"),
        _ => None,
    }
}

/// The name the batch goes by: the given name's last component (no folders), at most
/// 100 characters, with the Content-Type's extension when it lacks one.
fn batch_name(given: Option<&str>, ext: Option<&str>) -> String {
    let base = given
        .and_then(|g| g.rsplit(['/', '\\']).next())
        .map(|g| {
            g.chars()
                .filter(|c| !c.is_control())
                .take(100)
                .collect::<String>()
        })
        .map(|g| g.trim().to_owned())
        .filter(|g| !g.is_empty() && g != "." && g != "..")
        .unwrap_or_else(|| "batch".to_owned());
    match ext {
        Some(ext) if !base.to_ascii_lowercase().ends_with(&format!(".{ext}")) => {
            format!("{base}.{ext}")
        }
        _ => base,
    }
}

fn format_extension(f: BatchFormat) -> &'static str {
    match f {
        BatchFormat::Csv => "csv",
        BatchFormat::Xlsx => "xlsx",
        BatchFormat::Jsonl => "jsonl",
    }
}

/// Whether `job` is in `token`'s list: its own batches; for admins and auditors, every
/// batch of their regions.
fn listed(token: &Token, job: &Job) -> bool {
    match token.role {
        Role::Admin | Role::Auditor => {
            job.kind == JobKind::Batch
                && (job.actor == format!("token:{}", token.name)
                    || (!job.regions.is_empty() && job.regions.iter().all(|r| token.covers(r))))
        }
        _ => job.kind == JobKind::Batch && job.actor == format!("token:{}", token.name),
    }
}

/// Whether `token` may see `job`.
pub fn visible(token: &Token, job: &Job) -> bool {
    job.kind == JobKind::Batch
        && (job.actor == format!("token:{}", token.name)
            || (!job.regions.is_empty() && job.regions.iter().all(|r| token.covers(r))))
}

/// Submits a batch.
#[utoipa::path(
    post,
    path = "/api/v1/batches",
    operation_id = "submit_batch",
    description = "An applicant batch (CSV in UTF-8 or GBK, XLSX, JSON Lines, one row per household member) as the body, or as the part `file` of a multipart/form-data form (with optional parts as_of and file_name). The format comes from the Content-Type (of the body, or of the part), else from the file name's extension, else from the content. The file is written to disk as it arrives.",
    params(
        ("as_of" = Option<String>, Query, description = "Check date D, YYYY-MM-DD (default: today)"),
        ("file_name" = Option<String>, Query, description = "The file's name, for messages and the report"),
    ),
    request_body(content(
        (String = "text/csv"),
        ([u8] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (String = "application/x-ndjson"),
        (BatchForm = "multipart/form-data"),
    )),
    responses(
        (status = 202, description = "Queued; `Location` names the batch", body = BatchAccepted),
        (status = 400, description = "Bad query parameters"),
        (status = 413, description = "Body larger than max_body_mb"),
        (status = 422, description = "Not a readable batch (the message names the row or header)"),
        (status = 503, description = "max_queued_jobs batches are waiting (Retry-After)"),
        (status = 403, description = "The token's role, or households outside its regions"),
        Caller<MayBatch>,
    ),
    security(("bearer" = []))
)]
pub async fn submit(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayBatch>,
    headers: HeaderMap,
    query: Result<Query<SubmitQuery>, QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(ApiError::bad_query)?;
    // The file goes to disk as it arrives (the body, or a form's part `file`).
    let upload = upload::receive(
        &app.config.state_dir,
        app.config.max_body_bytes,
        &headers,
        body,
    )
    .await?;
    if let Some(other) = upload
        .fields
        .keys()
        .find(|k| !matches!(k.as_str(), "as_of" | "file_name"))
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("表单中有无法识别的部分“{other}”：只收 file、as_of 和 file_name（the form has a part {other:?}: only file, as_of and file_name are read）"),
        ));
    }
    let field = |k: &str| {
        upload
            .fields
            .get(k)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let as_of = super::as_of(
        &app,
        q.as_of.as_deref().or(field("as_of")),
        StatusCode::BAD_REQUEST,
        "bad_request",
    )?;
    let name = batch_name(
        q.file_name
            .as_deref()
            .or(field("file_name"))
            .or(upload.file_name.as_deref()),
        extension_of(upload.content_type.as_deref()),
    );
    // Read it now: an unreadable file is the caller's to fix, not a failed job later.
    // As many files are read at once as there are cores; the others wait, on disk.
    let parsed = {
        let name = name.clone();
        let limits = app.config.batch_limits;
        let path = upload.file.path().to_owned();
        let _turn = app
            .reading
            .acquire()
            .await
            .map_err(|_| ApiError::stopping())?;
        tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&path).map_err(|e| crate::error::Error::Output {
                path: path.display().to_string(),
                source: e,
            })?;
            Ok::<_, crate::error::Error>(read_batch_within(FsPath::new(&name), &bytes, &limits))
        })
        .await
        .map_err(|e| ApiError::internal(&crate::error::Error::Internal(e.to_string())))?
        .map_err(|e| ApiError::internal(&e))?
    };
    let raw = parsed.map_err(|e| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unreadable_batch",
            e.to_string(),
        )
    })?;
    let regions: BTreeSet<String> = raw
        .rows
        .iter()
        .filter_map(|r| r.values[Column::RegionCode as usize].as_deref())
        .map(|v| hedui_connectors::text::fold_trim(v).into_owned())
        .filter(|v| !v.is_empty())
        .collect();
    let outside: Vec<&String> = regions.iter().filter(|r| !token.covers(r)).collect();
    if !outside.is_empty() {
        let list = outside
            .iter()
            .take(10)
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        return Err(ApiError::forbidden(format!(
            "批次中有该令牌无权核对的行政区划：{list}（the batch has households of regions this token may not check: {list}）"
        )));
    }
    // The batch's people count against the token's day (as written when an ID number
    // cannot be read: it is rejected later, but it was asked for).
    let people: Vec<String> = raw
        .rows
        .iter()
        .filter_map(|r| r.values[Column::IdNumber as usize].as_deref())
        .map(|v| {
            let v = hedui_connectors::text::fold_trim(v);
            hedui_connectors::idnum::normalize_id(&v, as_of).unwrap_or_else(|_| v.into_owned())
        })
        .filter(|v| !v.is_empty())
        .collect();
    super::admit_people(&app, token, people, regions.iter().cloned().collect()).await?;
    let id = new_id().map_err(|e| ApiError::internal(&e))?;
    let dir = job_dir(&app.config.state_dir, &id);
    let input: PathBuf = dir.join(format!("input.{}", format_extension(raw.format)));
    {
        let (dir, target, file) = (dir.clone(), input.clone(), upload.file);
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            file.as_file().sync_all()?;
            file.persist(&target).map_err(|e| e.error)?;
            Ok(())
        })
        .await
        .map_err(|e| ApiError::internal(&crate::error::Error::Internal(e.to_string())))?
        .map_err(|e| {
            ApiError::internal(&crate::error::Error::Output {
                path: input.display().to_string(),
                source: e,
            })
        })?;
    }
    let job = NewJob {
        id: id.clone(),
        kind: JobKind::Batch,
        actor: format!("token:{}", token.name),
        regions: regions.into_iter().collect(),
        file_name: name,
        input: input.display().to_string(),
        as_of: as_of.to_string(),
    };
    let bound = QueueBound {
        total: app.config.max_queued_jobs,
        per_actor: app.config.max_queued_jobs_per_token,
    };
    let queued = app
        .db(move |state| {
            state
                .submit_job(&job, Some(bound))
                .map_err(|e| ApiError::internal(&e.into()))
        })
        .await?;
    let refused = match queued {
        Admission::Queued => None,
        Admission::QueueFull => Some(format!(
            "已有 {n} 个批次在排队，请稍后再提交（{n} batches are waiting; submit again later）",
            n = app.config.max_queued_jobs
        )),
        Admission::ShareFull => Some(format!(
            "该令牌已有 {n} 个批次在排队，请等它们完成后再提交（this token has {n} batches waiting, its share of the queue; submit again when they are done）",
            n = app.config.max_queued_jobs_per_token
        )),
    };
    if let Some(why) = refused {
        let _ = std::fs::remove_dir_all(&dir);
        let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", why);
        e.retry_after_s = Some(60);
        return Err(e);
    }
    app.wrote();
    app.jobs.wake.notify_one();
    tracing::info!(job = %id, token = %token.name, rows = raw.rows.len(), "batch queued");
    let mut resp = (
        StatusCode::ACCEPTED,
        Json(BatchAccepted {
            batch_id: id.clone(),
            status: "queued".into(),
        }),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/api/v1/batches/{id}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
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
    let token = token.clone();
    let (batches, next) = app
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
                |(_, job)| {
                    listed(&token, &job).then(|| BatchItem {
                        batch_id: job.id,
                        status: job.status,
                        file_name: job.file_name,
                        as_of: job.as_of,
                        submitted_at: job.submitted_at,
                        finished_at: job.finished_at,
                    })
                },
            )
        })
        .await?;
    Ok(Json(BatchPage {
        batches,
        next_cursor: next.flatten().map(|id| id.to_string()),
    }))
}

/// The batch `id` if `token` may see it; 404 otherwise.
async fn find(app: &Arc<AppState>, token: &Token, id: &str) -> Result<Job, ApiError> {
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
async fn output(
    app: &Arc<AppState>,
    token: &Token,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_names_are_plain_file_names() {
        assert_eq!(
            batch_name(Some("申请名单.csv"), Some("csv")),
            "申请名单.csv"
        );
        assert_eq!(batch_name(Some("申请名单"), Some("csv")), "申请名单.csv");
        assert_eq!(batch_name(Some("../../etc/passwd"), None), "passwd");
        assert_eq!(
            batch_name(Some("C:\\x\\名单.XLSX"), Some("xlsx")),
            "名单.XLSX"
        );
        assert_eq!(batch_name(Some(".."), None), "batch");
        assert_eq!(batch_name(None, Some("jsonl")), "batch.jsonl");
        assert_eq!(batch_name(Some("a\u{0}\nb.csv"), None), "ab.csv");
        assert_eq!(
            batch_name(Some(&"长".repeat(300)), None).chars().count(),
            100
        );
    }
}
