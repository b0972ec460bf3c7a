//! `PUT /api/v1/recipients` and `GET /api/v1/recipients`: the recipients list (在保名单)
//! kept in the hub, replaced whole (validated as a batch is: one rejected row and nothing
//! changes), its history kept. (`POST /api/v1/reconciliations`, a reconciliation of
//! the current list now, is in [`super::reconciliations`].)

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::server::app::AppState;
use crate::server::caller::{Caller, MayReadRuns, MayReconcile};
use crate::server::error::ApiError;
use crate::server::upload;
use crate::server::who::Who;
use crate::state::audit::{ReadDetail, ReadHousehold};
use crate::state::recipients::ListedHousehold;

use super::list_file::read_list;

/// Rejected rows a refused list answers at most (the message gives the total).
const REJECTIONS_SHOWN: usize = 1000;

/// What a replacement must find before it applies.
#[derive(Debug, Clone, Copy, Default)]
pub struct Guard {
    /// The version the caller read (0: none): replaced only if it is still current.
    pub expected: Option<i64>,
    /// Whether removing many of the current households is confirmed; when not, a list
    /// that would remove more than [`LARGE_REMOVAL`] of them (and more than ten) is
    /// refused with `large_removal` — a partial file uploaded by mistake would stop the
    /// night re-checking most recipients.
    pub removal_confirmed: bool,
}

/// The share of the current households whose removal needs confirming (one in five).
pub const LARGE_REMOVAL: (usize, usize) = (1, 5);

/// Query parameters of a replacement.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PutQuery {
    /// The file's name (its extension tells the format when the Content-Type does not).
    pub file_name: Option<String>,
    /// The version the caller read (0: no list yet): the list is replaced only if it is
    /// still the current one, so that two admins do not overwrite each other unseen.
    pub expected_version: Option<i64>,
}

/// The folder the hub keeps its lists' files in.
pub fn lists_dir(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("recipients")
}

/// `PUT /api/v1/recipients`: a recipients file replaces the current list, all of it or
/// nothing.
#[utoipa::path(
    put,
    path = "/api/v1/recipients",
    operation_id = "replace_recipients",
    description = "A recipients list (the applicant formats: CSV in UTF-8 or GBK, XLSX, JSON Lines; or the part `file` of a multipart/form-data form) replaces the current list as a whole. It is validated as a batch is: if any row is rejected nothing changes and the rejected rows are answered. Every household of the new list and of the current one must be in the caller's regions.",
    params(
        ("file_name" = Option<String>, Query, description = "The file's name"),
        ("expected_version" = Option<i64>, Query, description = "Replace only if this is still the current version (0: no list yet); 409 list_changed otherwise"),
    ),
    request_body(content(
        (String = "text/csv"),
        ([u8] = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (String = "application/x-ndjson"),
    )),
    responses(
        (status = 200, description = "The list replaced: its version and counts", body = Object),
        (status = 403, description = "The token's role, or households outside its regions"),
        (status = 409, description = "expected_version is no longer the current version; nothing changed"),
        (status = 413, description = "Body larger than max_body_mb"),
        (status = 422, description = "Not readable, or rows rejected (answered in `rejections`); nothing changed"),
        Caller<MayReconcile>,
    ),
    security(("bearer" = []))
)]
pub async fn replace(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayReconcile>,
    headers: HeaderMap,
    query: Result<Query<PutQuery>, QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(ApiError::bad_query)?;
    let up = upload::receive(
        &app.config.state_dir,
        app.config.max_body_bytes,
        &headers,
        body,
    )
    .await?;
    if let Some(other) = up
        .fields
        .keys()
        .find(|k| k.as_str() != "file_name" && k.as_str() != "expected_version")
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("表单中有无法识别的部分“{other}”：只收 file、file_name 和 expected_version（the form has a part {other:?}: only file, file_name and expected_version are read）"),
        ));
    }
    let name = super::submit::batch_name(
        q.file_name
            .as_deref()
            .or(up.fields.get("file_name").map(String::as_str))
            .or(up.file_name.as_deref()),
        super::submit::extension_of(up.content_type.as_deref()),
    );
    let expected = match q.expected_version {
        Some(v) => Some(v),
        None => up
            .fields
            .get("expected_version")
            .map(|v| super::number_cursor(v))
            .transpose()?,
    };
    let guard = Guard {
        expected,
        // Systems send what they mean; the page asks a person.
        removal_confirmed: true,
    };
    let replaced = replace_with(&app, token, up, name, guard).await?;
    Ok((StatusCode::OK, Json(replaced)).into_response())
}

/// Validates `up` as the new list and, when every row is accepted and in `token`'s
/// regions, makes it the current one: what the answer says of it.
pub async fn replace_with(
    app: &Arc<AppState>,
    token: &Who,
    up: upload::Upload,
    name: String,
    guard: Guard,
) -> Result<Value, ApiError> {
    let (limits, policy) = (app.config.batch_limits, app.policy.clone());
    let path = up.file.path().to_owned();
    let as_of = chrono::Local::now().date_naive();
    // The list replaced: the hub's current one, else the config's first list (whose
    // regions a first upload must cover too, as it replaces it for the night).
    let (who, configured) = (
        token.clone(),
        app.config
            .schedule
            .as_ref()
            .and_then(|s| s.recipients.clone()),
    );
    let hub_regions = app
        .db(move |state| {
            let internal = |e: crate::state::StateError| ApiError::internal(&e.into());
            Ok(match state.current_recipients().map_err(internal)? {
                Some(_) => Some(state.listed_regions().map_err(internal)?),
                None => None,
            })
        })
        .await?;
    let _turn = app
        .reading
        .acquire()
        .await
        .map_err(|_| ApiError::stopping())?;
    let shown = name.clone();
    let read = tokio::task::spawn_blocking(move || {
        read_list(
            &shown,
            &path,
            &limits,
            &policy,
            as_of,
            configured.as_deref(),
            hub_regions,
        )
    })
    .await
    .map_err(|e| ApiError::internal(&crate::error::Error::Internal(e.to_string())))?;
    drop(_turn);
    let read = read?;
    let (batch, current) = (read.batch, read.current_regions);
    // Every household it names, accepted or not, and every household of the list it
    // replaces (a whole replacement removes them), must be the caller's.
    let theirs = outside(
        &who,
        &mut batch
            .households
            .iter()
            .map(|h| h.region_code.as_str())
            .chain(
                batch
                    .rejected_households
                    .iter()
                    .map(|h| h.region_code.as_str()),
            ),
    );
    if !theirs.is_empty() {
        return Err(ApiError::forbidden(format!(
            "名单中有您无权管理的行政区划：{}。名单未更换：请删除这些家庭，或由有权管理这些地区的管理员上传（the list has households of regions this account or token may not manage: {}）",
            theirs.join("、"),
            theirs.join(", ")
        )));
    }
    refuse_removal(outside(&who, &mut current.iter().map(String::as_str)))?;
    if !batch.rejections.is_empty() {
        let total = batch.rejections.len();
        let rows: Vec<Value> = batch
            .rejections
            .iter()
            .take(REJECTIONS_SHOWN)
            .map(|r| {
                json!({
                    "household_id": r.household_id,
                    "row": r.row,
                    "field": r.field,
                    "reason": r.reason.code(),
                    "message": r.message,
                })
            })
            .collect();
        let mut e = ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "rejected_rows",
            format!("在保名单“{name}”有 {total} 处错误，名单未更换：请按行号改正这些行后重新上传（the list has {total} problem(s), listed by row; nothing changed — correct them and upload it again）"),
        );
        e.rejections = Some(Value::Array(rows));
        return Err(e);
    }
    let (households, people, sha256, ext) = (read.households, read.people, read.sha256, read.ext);
    // The guard first, so that a refused list leaves no file behind (it is asked again,
    // atomically, with the replacement). A first upload replaces the config's list.
    if !guard.removal_confirmed {
        removal_from_configured(&read.configured_households, &households)?;
    }
    let (pre, list_households) = (guard, households);
    let list_households = app
        .db(move |state| {
            check_guard(state, pre, &list_households)?;
            Ok(list_households)
        })
        .await?;
    let households = list_households;
    // The file is kept by its content (the reconciliations read it), synced, then
    // renamed into place.
    let dir = lists_dir(&app.config.state_dir);
    let kept = dir.join(format!("{sha256}.{ext}"));
    super::submit::keep(up, &dir, &kept).await?;
    let (actor, who) = (token.actor.clone(), token.clone());
    let file_name = name.clone();
    let path = kept.display().to_string();
    let list = app
        .db(move |state| {
            // Replacing the whole list removes the households it does not name: the
            // current list's regions must be the caller's too.
            // The check and the replacement under the one lock of the state database.
            check_guard(state, guard, &households)?;
            let current = state
                .listed_regions()
                .map_err(|e| ApiError::internal(&e.into()))?;
            refuse_removal(outside(&who, &mut current.iter().map(String::as_str)))?;
            state
                .replace_recipients(&actor, &file_name, &path, &sha256, &households, people)
                .map_err(|e| ApiError::internal(&e.into()))
        })
        .await?;
    app.wrote();
    tracing::info!(list = list.id, token = %token.label, households = list.households, added = list.added, removed = list.removed, "recipients list replaced");
    Ok(json!({
        "version": list.id,
        "file_name": list.file_name,
        "uploaded_at": list.uploaded_at,
        "households": list.households,
        "people": list.people,
        "added": list.added,
        "removed": list.removed,
    }))
}

/// What [`Guard`] asks of the current list, for `households` to replace it.
fn check_guard(
    state: &crate::state::State,
    guard: Guard,
    households: &[ListedHousehold],
) -> Result<(), ApiError> {
    if let Some(v) = guard.expected {
        let now = state
            .current_recipients()
            .map_err(|e| ApiError::internal(&e.into()))?
            .map_or(0, |l| l.id);
        if now != v {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "list_changed",
                format!("在保名单已被更换（现在是第 {now} 版，您看到的是第 {v} 版），本次上传未生效：请先查看当前名单再决定是否上传（the list was replaced meanwhile: it is version {now}, you read version {v}; nothing changed）"),
            ));
        }
    }
    if !guard.removal_confirmed {
        let (removed, of) = state
            .removal_of(households)
            .map_err(|e| ApiError::internal(&e.into()))?;
        large_removal(removed, of)?;
    }
    Ok(())
}

/// [`large_removal`] of the config's households (before the hub holds a list).
fn removal_from_configured(
    configured: &[String],
    households: &[ListedHousehold],
) -> Result<(), ApiError> {
    if configured.is_empty() {
        return Ok(());
    }
    let new: std::collections::HashSet<&str> =
        households.iter().map(|h| h.household_id.as_str()).collect();
    let removed = configured
        .iter()
        .filter(|h| !new.contains(h.as_str()))
        .count();
    large_removal(removed, configured.len())
}

/// 409 `large_removal` when removing `removed` of `of` current households needs
/// confirming.
fn large_removal(removed: usize, of: usize) -> Result<(), ApiError> {
    let (part, whole) = LARGE_REMOVAL;
    if removed > 10 && removed * whole > of * part {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "large_removal",
            format!("这份名单会从当前在保名单中移除 {removed} 户（当前共 {of} 户），这些家庭今后不再每晚复核。名单未更换：如果确实如此，请勾选“确认移除”后重新上传；如果文件不完整，请换成完整的名单（the list would remove {removed} of the {of} current households; nothing changed — confirm the removal, or upload the whole list）"),
        ));
    }
    Ok(())
}

/// The regions of `regions` that `who` does not cover (the first ten, sorted).
fn outside(who: &Who, regions: &mut dyn Iterator<Item = &str>) -> Vec<String> {
    regions
        .filter(|r| !r.is_empty() && !who.covers(r))
        .map(str::to_owned)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .take(10)
        .collect()
}

/// 403 when the current list has households of regions `theirs` the caller may not
/// manage: replacing the list whole would remove them.
fn refuse_removal(theirs: Vec<String>) -> Result<(), ApiError> {
    if theirs.is_empty() {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "当前在保名单中有您无权管理的行政区划：{}，整份替换会删除这些家庭。名单未更换：请由有权管理全部地区的管理员上传（the current list has households of regions this account or token may not manage: {}; replacing it would remove them）",
        theirs.join("、"),
        theirs.join(", ")
    )))
}

/// Query parameters of the list.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Households a page (1–1000, default 100).
    limit: Option<usize>,
    /// Where the page starts: the `next_cursor` of the page before.
    cursor: Option<String>,
}

/// `GET /api/v1/recipients`: the current list's households in the caller's regions, a
/// page at a time (ID numbers masked for staff), audited as a read.
#[utoipa::path(
    get,
    path = "/api/v1/recipients",
    operation_id = "list_recipients",
    params(
        ("limit" = Option<usize>, Query, description = "Households a page, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before"),
    ),
    responses(
        (status = 200, description = "The current list's version and a page of its households", body = Object),
        (status = 400, description = "Bad limit or cursor"),
        Caller<MayReadRuns>,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayReadRuns>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(ApiError::bad_query)?;
    let limit = super::page_limit(q.limit)?;
    // `VERSION.OFFSET`: where the page starts in that version of the list.
    let from = match q.cursor.as_deref() {
        None => None,
        Some(c) => {
            let (v, o) = c.split_once('.').ok_or_else(super::bad_cursor)?;
            Some((super::number_cursor(v)?, super::number_cursor(o)? as u64))
        }
    };
    let full = token.role.sees_full_ids();
    let (list, page, next) = listed_page(&app, token, from, limit).await?;
    let households: Vec<Value> = page
        .into_iter()
        .map(|h| {
            let mut members: Value = serde_json::from_str(&h.members).unwrap_or(Value::Null);
            if !full {
                for m in members.as_array_mut().into_iter().flatten() {
                    if let Some(id) = m["id_number"].as_str() {
                        m["id_number"] = Value::String(hedui_connectors::idnum::mask_id(id));
                    }
                    // A clerk may have typed an ID number into the name too, grouped
                    // or not.
                    if let Some(name) = m["name"].as_str() {
                        let masked = hedui_connectors::idnum::mask_numbers_in(name).into_owned();
                        m["name"] = Value::String(masked);
                    }
                }
            }
            let mut line = json!({
                "household_id": h.household_id,
                "region_code": h.region_code,
                "members": members,
            });
            if !full {
                // A clerk may have typed an ID number as the household's id.
                super::checks::mask_household_id(&mut line);
            }
            line
        })
        .collect();
    Ok(Json(json!({
        "version": list.as_ref().map(|l| l.id),
        "uploaded_at": list.as_ref().map(|l| l.uploaded_at.clone()),
        "households": households,
        "next_cursor": next,
    })))
}

/// The current list and a page of its households in `who`'s regions from `from`
/// (`(version, offset)`; `list_replaced` when the list changed meanwhile), the page's
/// read audited; the cursor of the next page (`VERSION.OFFSET`).
pub async fn listed_page(
    app: &Arc<AppState>,
    who: &Who,
    from: Option<(i64, u64)>,
    limit: usize,
) -> Result<
    (
        Option<crate::state::recipients::RecipientList>,
        Vec<ListedHousehold>,
        Option<String>,
    ),
    ApiError,
> {
    let who = who.clone();
    app
        .db(move |state| {
            let internal = |e: crate::state::StateError| ApiError::internal(&e.into());
            let list = state.current_recipients().map_err(internal)?;
            let version = list.as_ref().map_or(0, |l| l.id);
            let offset = match from {
                None => 0,
                Some((v, o)) if v == version => o,
                Some(_) => {
                    return Err(ApiError::new(
                        StatusCode::BAD_REQUEST,
                        "list_replaced",
                        "在保名单在翻页期间已被更换：请从第一页重新读取（the recipients list was replaced meanwhile; read it again from the first page）",
                    ))
                }
            };
            let (page, next) = state
                .listed_households(offset, &who.regions, limit, super::SCAN_PER_PAGE)
                .map_err(internal)?;
            let hash = state.id_hasher().map_err(internal)?;
            let read: Vec<ReadHousehold> = page
                .iter()
                .map(|h| ReadHousehold {
                    household_id: hedui_connectors::idnum::replace_ids_in(&h.household_id, |r| {
                        format!("#{}", hash(r))
                    })
                    .into_owned(),
                    region_code: h.region_code.clone(),
                })
                .collect();
            if !read.is_empty() {
                state
                    .audit_read(
                        &who.actor,
                        &ReadDetail::of_households("api_recipients", format!("recipients:{version}"), read),
                    )
                    .map_err(internal)?;
            }
            Ok((list, page, next.map(|o| format!("{version}.{o}"))))
        })
        .await
}

/// `GET /api/v1/recipients/history`: the lists the hub kept, newest first — who
/// replaced the list when, with what file, how many households it had, added and
/// removed.
#[utoipa::path(
    get,
    path = "/api/v1/recipients/history",
    operation_id = "recipients_history",
    params(
        ("limit" = Option<usize>, Query, description = "Lists a page, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before"),
    ),
    responses(
        (status = 200, description = "A page of the lists, newest first", body = Object),
        (status = 400, description = "Bad limit or cursor"),
        Caller<MayReconcile>,
    ),
    security(("bearer" = []))
)]
pub async fn history(
    State(app): State<Arc<AppState>>,
    Caller(_, _): Caller<MayReconcile>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(ApiError::bad_query)?;
    let limit = super::page_limit(q.limit)?;
    let before = q.cursor.as_deref().map(super::number_cursor).transpose()?;
    let lists = app
        .db(move |state| {
            state
                .recipient_lists(before, limit + 1)
                .map_err(|e| ApiError::internal(&e.into()))
        })
        .await?;
    let next = (lists.len() > limit).then(|| lists[limit - 1].id.to_string());
    let lists: Vec<Value> = lists
        .into_iter()
        .take(limit)
        .map(|l| {
            json!({
                "version": l.id,
                "uploaded_at": l.uploaded_at,
                "actor": l.actor,
                "file_name": l.file_name,
                "sha256": l.sha256,
                "households": l.households,
                "people": l.people,
                "added": l.added,
                "removed": l.removed,
            })
        })
        .collect();
    Ok(Json(json!({ "lists": lists, "next_cursor": next })))
}

/// The recipients file a reconciliation reads now: the hub's current list, else the
/// first list of the config (`[schedule] recipients`); its path and name.
pub fn current_file(
    state: &crate::state::State,
    configured: Option<&std::path::Path>,
) -> Result<Option<(PathBuf, String)>, crate::state::StateError> {
    if let Some(list) = state.current_recipients()? {
        return Ok(Some((PathBuf::from(list.path), list.file_name)));
    }
    Ok(configured.map(|p| {
        (
            p.to_owned(),
            p.file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        )
    }))
}
