//! `POST /api/v1/batches`: an applicant batch (CSV in UTF-8 or GBK, XLSX, JSON Lines) —
//! the body, or the part `file` of a form — queued as a job in the state database, run
//! by the job worker on the same engine as `check`.
//!
//! The file is written to disk as it arrives and read (within the batch limits) before
//! it is queued: an unreadable one is 422 at once, one with households outside the
//! token's regions is 403, one whose people would pass the token's day 429.

use std::collections::BTreeSet;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::applicants::{read_batch_within, BatchFormat, Column, RawBatch};
use crate::server::app::AppState;
use crate::server::caller::{Caller, MayBatch};
use crate::server::error::ApiError;
use crate::server::jobs::{job_dir, new_id};
use crate::server::schema::{BatchAccepted, BatchForm};
use crate::server::upload::{self, Upload};
use crate::server::who::Who;
use crate::state::jobs::{Admission, JobKind, NewJob, QueueBound};

/// Query parameters of a submission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitQuery {
    /// Check date D (default: today).
    pub as_of: Option<String>,
    /// The file's name, for messages and the report (its extension tells the format
    /// when the Content-Type does not).
    pub file_name: Option<String>,
}

/// The extension a Content-Type stands for.
pub(crate) fn extension_of(content_type: Option<&str>) -> Option<&'static str> {
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
pub(crate) fn batch_name(given: Option<&str>, ext: Option<&str>) -> String {
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
    let id = queue(&app, token, upload, q).await?;
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

/// Reads `upload` as the batch `token` submits and queues it: its id.
pub async fn queue(
    app: &Arc<AppState>,
    token: &Who,
    upload: Upload,
    q: SubmitQuery,
) -> Result<String, ApiError> {
    let (as_of, name) = named(app, &upload, q)?;
    let raw = read(app, &upload, &name).await?;
    let regions = regions_within(token, &raw)?;
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
    super::admit_people(app, token, people, regions.iter().cloned().collect()).await?;
    let id = new_id().map_err(|e| ApiError::internal(&e))?;
    let dir = job_dir(&app.config.state_dir, &id);
    let input: PathBuf = dir.join(format!("input.{}", format_extension(raw.format)));
    keep(upload, &dir, &input).await?;
    let job = NewJob {
        id: id.clone(),
        kind: JobKind::Batch,
        actor: token.actor.clone(),
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
    if let Some(e) = refused(app, queued) {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(e);
    }
    app.wrote();
    app.jobs.wake.notify_one();
    tracing::info!(job = %id, token = %token.label, rows = raw.rows.len(), "batch queued");
    Ok(id)
}

/// The check date and the name of the batch: from the query, else the form's parts,
/// else the file's own name; a form's unknown part is refused.
fn named(
    app: &AppState,
    upload: &Upload,
    q: SubmitQuery,
) -> Result<(chrono::NaiveDate, String), ApiError> {
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
            .filter(|v| !v.trim().is_empty())
    };
    let as_of = super::as_of(
        app,
        // Empty is not given, in the query as in a form (a page's date left blank).
        q.as_of
            .as_deref()
            .filter(|v| !v.trim().is_empty())
            .or(field("as_of")),
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
    Ok((as_of, name))
}

/// Reads the uploaded file now: an unreadable file is the caller's to fix, not a failed
/// job later. As many files are read at once as there are cores; the others wait, on
/// disk.
async fn read(app: &AppState, upload: &Upload, name: &str) -> Result<RawBatch, ApiError> {
    let (name, shown) = (name.to_owned(), name.to_owned());
    let limits = app.config.batch_limits;
    let path = upload.file.path().to_owned();
    let _turn = app
        .reading
        .acquire()
        .await
        .map_err(|_| ApiError::stopping())?;
    let parsed = tokio::task::spawn_blocking(move || {
        let bytes = std::fs::read(&path).map_err(|e| crate::error::Error::Output {
            path: path.display().to_string(),
            source: e,
        })?;
        Ok::<_, crate::error::Error>(read_batch_within(FsPath::new(&name), &bytes, &limits))
    })
    .await
    .map_err(|e| ApiError::internal(&crate::error::Error::Internal(e.to_string())))?
    .map_err(|e| ApiError::internal(&e))?;
    parsed.map_err(|e| {
        // What is wrong first, in Chinese (the reader's words), then which file.
        let message = match e {
            crate::applicants::ApplicantsError::Unreadable { why, .. } => {
                format!("无法读取批次文件“{shown}”：{why}")
            }
            other => format!("无法读取批次文件“{shown}”（{other}）"),
        };
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unreadable_batch",
            message,
        )
    })
}

/// The batch's regions, all of which `token` must cover (403 naming those it does not).
fn regions_within(token: &Who, raw: &RawBatch) -> Result<BTreeSet<String>, ApiError> {
    let regions: BTreeSet<String> = raw
        .rows
        .iter()
        .filter_map(|r| r.values[Column::RegionCode as usize].as_deref())
        .map(|v| hedui_connectors::text::fold_trim(v).into_owned())
        .filter(|v| !v.is_empty())
        .collect();
    let outside: Vec<&str> = regions
        .iter()
        .filter(|r| !token.covers(r))
        .take(10)
        .map(String::as_str)
        .collect();
    if outside.is_empty() {
        return Ok(regions);
    }
    // Each such region with the first row that names it, so the clerk can find it.
    let first_row = |region: &str| {
        raw.rows
            .iter()
            .find(|r| {
                r.values[Column::RegionCode as usize]
                    .as_deref()
                    .is_some_and(|v| hedui_connectors::text::fold_trim(v) == region)
            })
            .map_or(0, |r| r.row)
    };
    let zh: Vec<String> = outside
        .iter()
        .map(|r| format!("{r}（第{}行）", first_row(r)))
        .collect();
    let en: Vec<String> = outside
        .iter()
        .map(|r| format!("{r} (row {})", first_row(r)))
        .collect();
    Err(ApiError::forbidden(format!(
        "批次中有您无权核对的行政区划：{}。整批未提交：请删除这些行政区划的家庭后重新提交，或请管理员为您的账户或令牌开通这些地区（the batch has households of regions this account or token may not check: {}）",
        zh.join("、"),
        en.join(", ")
    )))
}

/// Keeps the uploaded file as the job's input (synced, then renamed into `dir`).
pub(crate) async fn keep(upload: Upload, dir: &FsPath, input: &FsPath) -> Result<(), ApiError> {
    let (dir, target, file) = (dir.to_owned(), input.to_owned(), upload.file);
    tokio::task::spawn_blocking(move || -> std::io::Result<()> {
        // The state folder's own: the owner's alone, whatever the umask.
        let mut mk = std::fs::DirBuilder::new();
        mk.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut mk, 0o700);
        mk.create(&dir)?;
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
    })
}

/// The 503 of a batch the queue has no room for.
fn refused(app: &AppState, queued: Admission) -> Option<ApiError> {
    let why = match queued {
        Admission::Queued => return None,
        Admission::QueueFull => format!(
            "已有 {n} 个批次在排队，请稍后再提交（{n} batches are waiting; submit again later）",
            n = app.config.max_queued_jobs
        ),
        Admission::ShareFull => format!(
            "该令牌已有 {n} 个批次在排队，请等它们完成后再提交（this token has {n} batches waiting, its share of the queue; submit again when they are done）",
            n = app.config.max_queued_jobs_per_token
        ),
    };
    let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "queue_full", why);
    e.retry_after_s = Some(60);
    Some(e)
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
