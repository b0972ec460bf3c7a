//! `/ui/batches`: the user's batches (admins and auditors: all of their regions), newest
//! first, a page at a time, and the upload form — the same limits, formats and errors as
//! `POST /api/v1/batches`, through the same [`queue`](crate::server::handlers::submit::queue).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use crate::server::app::AppState;
use crate::server::handlers::batches::listed_page;
use crate::server::handlers::submit::{queue, SubmitQuery};

pub use crate::output::labels::{local_time, submitter};

use super::session::Signed;
use super::{render, PageError};

/// Batches a page of the list.
const PER_PAGE: usize = 50;

/// Where a page of the list starts.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// The `next` cursor of the page before.
    before: Option<i64>,
}

/// One batch as the list shows it.
#[derive(Debug, Serialize)]
struct Row {
    id: String,
    status: String,
    status_zh: &'static str,
    file_name: String,
    as_of: String,
    submitted_at: String,
    submitter: String,
}

/// A job status in words.
pub fn status_zh(status: &str) -> &'static str {
    match status {
        "queued" => "排队中",
        "running" => "核对中",
        "done" => "已完成",
        "failed" => "失败",
        _ => "未知",
    }
}

/// The page of batches, with `error` said above the form (a refused upload).
async fn page(
    app: &Arc<AppState>,
    user: &Signed,
    before: Option<i64>,
    status: StatusCode,
    error: Option<String>,
) -> Result<Response, PageError> {
    let (jobs, next) = listed_page(app, &user.who, before, PER_PAGE).await?;
    let rows: Vec<Row> = jobs
        .into_iter()
        .map(|job| Row {
            status_zh: status_zh(&job.status),
            submitted_at: local_time(&job.submitted_at),
            submitter: submitter(&job.actor),
            id: job.id,
            status: job.status,
            file_name: job.file_name,
            as_of: job.as_of,
        })
        .collect();
    let may_upload = user.who.role.may_check();
    Ok(render(
        status,
        "batches.html",
        minijinja::context! {
            nav => "batches",
            user => user.name,
            role => role_zh(user.who.role),
            csrf => user.csrf,
            rows => rows,
            next => next,
            may_upload => may_upload,
            error => error,
            today => chrono::Local::now().date_naive().to_string(),
        },
    ))
}

/// A role in words.
pub fn role_zh(role: crate::server::config::Role) -> &'static str {
    use crate::server::config::Role;
    match role {
        Role::Staff => "工作人员",
        Role::Auditor => "审计员",
        Role::Admin => "管理员",
        Role::System => "系统",
    }
}

/// `GET /ui/batches`.
pub async fn list(
    State(app): State<Arc<AppState>>,
    user: Signed,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let before = query.ok().and_then(|Query(q)| q.before);
    page(&app, &user, before, StatusCode::OK, None).await
}

/// `POST /ui/batches`: the upload form (`multipart/form-data`: `file`, `as_of`, `csrf`).
/// Accepted, it leads to the batch's page; refused, the list says why.
pub async fn upload(
    State(app): State<Arc<AppState>>,
    user: Signed,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PageError> {
    user.permit::<crate::server::caller::MayBatch>()?;
    // The CSRF token is checked before the file is read; without it nothing happens.
    let received = match user.receive_form(&app, &headers, body).await? {
        Ok(u) => u,
        Err(e) => return page(&app, &user, None, e.status, Some(e.message)).await,
    };
    let q = SubmitQuery {
        as_of: None,
        file_name: None,
    };
    match queue(&app, &user.who, received, q).await {
        Ok(id) => Ok(Redirect::to(&format!("/ui/batches/{id}")).into_response()),
        Err(e) => {
            let mut message = e.message;
            if let Some(rows) = e.rejections.as_ref().and_then(|r| r.as_array()) {
                for r in rows.iter().take(20) {
                    if let Some(m) = r.get("message").and_then(|m| m.as_str()) {
                        message.push_str("\n");
                        message.push_str(m);
                    }
                }
            }
            page(&app, &user, None, e.status, Some(message)).await
        }
    }
}
