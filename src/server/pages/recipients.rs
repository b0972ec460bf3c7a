//! `/ui/recipients` (admins): the recipients list (在保名单) the night re-checks — the
//! current one, its households a page at a time (ID numbers masked), the form that
//! replaces it (the same validation, region rules and audit as `PUT
//! /api/v1/recipients`: one rejected row and nothing changes, the rows told by number),
//! and the lists it replaced, newest first.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::server::app::AppState;
use crate::server::caller::MayReconcile;
use crate::server::error::ApiError;
use crate::server::handlers::recipients::{current_file, listed_page, replace_with};
use crate::server::handlers::submit::{batch_name, extension_of};

use super::batches::{local_time, role_zh, submitter};
use super::session::Signed;
use super::{render, PageError};

/// Households a page; lists of the history a page; rejected rows shown.
const PER_PAGE: usize = 100;
const HISTORY_PER_PAGE: usize = 20;
const REJECTED_SHOWN: usize = 200;

/// Where the pages start, and what the last change did.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    /// The households' page: `VERSION.OFFSET`.
    #[serde(default)]
    cursor: String,
    /// The history's page: the version the page before ended at.
    history: Option<i64>,
    /// `replaced` after an upload.
    #[serde(default)]
    done: String,
}

/// One household as the page shows it.
#[derive(Debug, Serialize)]
struct Row {
    household_id: String,
    region_code: String,
    members: Vec<Member>,
}

/// A member, masked.
#[derive(Debug, Serialize)]
struct Member {
    name: String,
    id_number: String,
    relation: &'static str,
}

/// A rejected row of a refused upload, in words.
#[derive(Debug, Serialize)]
struct Rejected {
    row: u64,
    household_id: String,
    field: &'static str,
    reason: &'static str,
    message: String,
}

/// A list of the history.
#[derive(Debug, Serialize)]
struct Kept {
    version: i64,
    uploaded_at: String,
    actor: String,
    file_name: String,
    households: i64,
    people: i64,
    added: i64,
    removed: i64,
    current: bool,
}

/// `GET /ui/recipients`.
pub async fn show(
    State(app): State<Arc<AppState>>,
    user: Signed,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    user.permit::<MayReconcile>()?;
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let notice =
        (q.done == "replaced").then(|| "已更换在保名单，今晚的复核将读取新名单。".to_owned());
    // As the API reads it: `VERSION.OFFSET`, both numbers in range; anything else is
    // the first page.
    let from = q.cursor.split_once('.').and_then(|(v, o)| {
        let v = crate::server::handlers::number_cursor(v).ok()?;
        let o = crate::server::handlers::number_cursor(o).ok()?;
        Some((v, u64::try_from(o).ok()?))
    });
    page(
        &app,
        &user,
        Shown {
            from,
            history: q.history,
            status: StatusCode::OK,
            notice,
            error: None,
            rejected: Vec::new(),
            rejected_count: 0,
        },
    )
    .await
}

/// What one rendering of the page shows besides the list.
struct Shown {
    from: Option<(i64, u64)>,
    history: Option<i64>,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
    rejected: Vec<Rejected>,
    rejected_count: usize,
}

async fn page(app: &Arc<AppState>, user: &Signed, mut shown: Shown) -> Result<Response, PageError> {
    let (list, households, next) = match listed_page(app, &user.who, shown.from, PER_PAGE).await {
        Ok(p) => p,
        // The list changed while paging: its first page, said why.
        Err(e) if e.code == "list_replaced" => {
            shown.notice = Some(e.message);
            listed_page(app, &user.who, None, PER_PAGE).await?
        }
        Err(e) => return Err(e.into()),
    };
    let (before, configured) = (
        shown.history,
        app.config
            .schedule
            .as_ref()
            .and_then(|s| s.recipients.clone()),
    );
    let (lists, night_reads) = app
        .db(move |s| {
            let internal = |e: crate::state::StateError| ApiError::internal(&e.into());
            let lists = s
                .recipient_lists(before, HISTORY_PER_PAGE + 1)
                .map_err(internal)?;
            let night = current_file(s, configured.as_deref()).map_err(internal)?;
            Ok((lists, night.map(|(_, name)| name)))
        })
        .await?;
    let history_next = (lists.len() > HISTORY_PER_PAGE).then(|| lists[HISTORY_PER_PAGE - 1].id);
    let current = list.as_ref().map(|l| l.id);
    let kept: Vec<Kept> = lists
        .into_iter()
        .take(HISTORY_PER_PAGE)
        .map(|l| Kept {
            current: Some(l.id) == current,
            version: l.id,
            uploaded_at: local_time(&l.uploaded_at),
            actor: submitter(&l.actor),
            file_name: hedui_connectors::idnum::mask_numbers_in(&l.file_name).into_owned(),
            households: l.households,
            people: l.people,
            added: l.added,
            removed: l.removed,
        })
        .collect();
    let rows: Vec<Row> = households
        .into_iter()
        .map(|h| Row {
            household_id: hedui_connectors::idnum::mask_ids_in(&h.household_id).into_owned(),
            region_code: h.region_code,
            members: members_of(&h.members),
        })
        .collect();
    let summary = list.map(|l| {
        minijinja::context! {
            version => l.id,
            file_name => hedui_connectors::idnum::mask_numbers_in(&l.file_name).into_owned(),
            uploaded_at => local_time(&l.uploaded_at),
            actor => submitter(&l.actor),
            households => l.households,
            people => l.people,
            added => l.added,
            removed => l.removed,
        }
    });
    Ok(render(
        shown.status,
        "recipients.html",
        minijinja::context! {
            nav => "recipients",
            user => user.name,
            role => role_zh(user.who.role),
            csrf => user.csrf,
            list => summary,
            night_reads => night_reads.map(|n| hedui_connectors::idnum::mask_numbers_in(&n).into_owned()),
            rows => rows,
            next => next,
            history => kept,
            history_next => history_next,
            notice => shown.notice,
            error => shown.error,
            rejected => shown.rejected,
            rejected_count => shown.rejected_count,
            rejected_max => REJECTED_SHOWN,
        },
    ))
}

/// The members the hub keeps (JSON), masked, the relation in words.
fn members_of(json: &str) -> Vec<Member> {
    let mask = |t: &str| hedui_connectors::idnum::mask_numbers_in(t).into_owned();
    let v: Value = serde_json::from_str(json).unwrap_or(Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .map(|m| {
            let s = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
            Member {
                name: mask(s("name")),
                id_number: hedui_connectors::idnum::mask_id(s("id_number")),
                relation: crate::applicants::Relation::parse(s("relation"))
                    .map_or("", |r| r.chinese()),
            }
        })
        .collect()
}

/// The rejected rows of a refused upload, in words and masked.
fn rejected_of(rows: Option<&Value>) -> Vec<Rejected> {
    let mask = |t: &str| hedui_connectors::idnum::mask_numbers_in(t).into_owned();
    rows.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .take(REJECTED_SHOWN)
        .map(|r| {
            let s = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
            let field = s("field");
            Rejected {
                row: r.get("row").and_then(Value::as_u64).unwrap_or(0),
                household_id: mask(s("household_id")),
                field: crate::applicants::Column::ALL
                    .iter()
                    .find(|c| c.name() == field)
                    .map_or("", |c| c.chinese()),
                reason: crate::applicants::Reason::zh(s("reason")),
                message: mask(s("message")),
            }
        })
        .collect()
}

/// `POST /ui/recipients`: the upload form (`multipart/form-data`: `file`, `csrf`).
/// Accepted, the page says so; refused, it says why and lists the rows.
pub async fn upload(
    State(app): State<Arc<AppState>>,
    user: Signed,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, PageError> {
    user.permit::<MayReconcile>()?;
    let refused = |status, error| Shown {
        from: None,
        history: None,
        status,
        notice: None,
        error: Some(error),
        rejected: Vec::new(),
        rejected_count: 0,
    };
    let mut received = match user.receive_form(&app, &headers, body).await? {
        Ok(u) => u,
        Err(e) => return page(&app, &user, refused(e.status, e.message)).await,
    };
    // The version the page showed: replaced only if it is still the current one.
    let expected = match received.fields.remove("expected_version") {
        None => None,
        Some(v) => Some(v.trim().parse::<i64>().map_err(|_| {
            PageError::new(
                StatusCode::BAD_REQUEST,
                "表单内容有误，请回到在保名单页面重新上传（the form's expected_version is not a number）",
            )
        })?),
    };
    let guard = crate::server::handlers::recipients::Guard {
        expected,
        removal_confirmed: received
            .fields
            .remove("confirm_removal")
            .is_some_and(|v| !v.trim().is_empty()),
    };
    let name = batch_name(
        received.file_name.as_deref(),
        extension_of(received.content_type.as_deref()),
    );
    match replace_with(&app, &user.who, received, name, guard).await {
        Ok(_) => Ok(Redirect::to("/ui/recipients?done=replaced").into_response()),
        Err(e) => {
            let mut shown = refused(
                e.status,
                hedui_connectors::idnum::mask_numbers_in(&e.message).into_owned(),
            );
            shown.rejected = rejected_of(e.rejections.as_ref());
            shown.rejected_count = e
                .rejections
                .as_ref()
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            page(&app, &user, shown).await
        }
    }
}
