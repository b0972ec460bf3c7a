//! `GET /api/v1/reconciliations` and `/{id}/changes`: the reconciliation runs a token
//! may see (those that checked households of its regions) and their changes, only those
//! of its regions. A run it may not see is 404, like one that does not exist. `POST
//! /api/v1/reconciliations` (admins, systems) queues one of the current recipients list
//! now.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::server::app::AppState;
use crate::server::caller::{Caller, MayReadRuns, MayReconcile};
use crate::server::error::ApiError;
use crate::server::jobs::new_id;
use crate::server::schema::{ChangesPage, RunItem, RunPage};
use crate::server::who::Who;
use crate::state::audit::{ReadDetail, ReadHousehold};
use crate::state::jobs::{JobKind, NewJob};

use super::recipients::current_file;

/// How many of a run's regions a token must cover to see it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Covered {
    /// One (its changes are filtered to the token's regions).
    Any,
    /// All (the report shows every household).
    All,
}

/// Run `id` and its record, if `token` may see it; 404 otherwise — for a run that does
/// not exist and for one of other regions alike.
pub(crate) fn visible_run(
    state: &crate::state::State,
    token: &Who,
    id: &str,
    covered: Covered,
) -> Result<(i64, crate::state::Run), ApiError> {
    let not_found = || {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("没有第 {id} 次复核（no reconciliation run {id}）"),
        )
    };
    let run: i64 = id.trim().parse().map_err(|_| not_found())?;
    let known = state
        .run(run)
        .map_err(|e| ApiError::internal(&e.into()))?
        .ok_or_else(not_found)?;
    let regions = state
        .run_regions(run)
        .map_err(|e| ApiError::internal(&e.into()))?;
    let visible = match covered {
        Covered::Any => regions.iter().any(|r| token.covers(r)),
        Covered::All => !regions.is_empty() && regions.iter().all(|r| token.covers(r)),
    };
    if !visible {
        return Err(not_found());
    }
    Ok((run, known))
}

/// `limit` and `cursor` of a list of runs or changes.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Items a page (1–1000, default 100).
    limit: Option<usize>,
    /// Where the page starts: the `next_cursor` of the page before.
    cursor: Option<String>,
}

/// The runs the token may see, newest first, a page at a time.
#[utoipa::path(
    get,
    path = "/api/v1/reconciliations",
    operation_id = "list_reconciliations",
    params(
        ("limit" = Option<usize>, Query, description = "Runs a page, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before"),
    ),
    responses(
        (status = 200, description = "A page of runs, newest first; next_cursor null on the last page", body = RunPage),
        (status = 400, description = "A limit outside 1–1000 or a cursor this server did not give"),
        (status = 403, description = "An auditor token"),
        Caller<MayReadRuns>,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayReadRuns>,
    query: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RunPage>, ApiError> {
    let axum::extract::Query(q) = query.map_err(ApiError::bad_query)?;
    let limit = super::page_limit(q.limit)?;
    let before = q.cursor.as_deref().map(super::number_cursor).transpose()?;
    let token = token.clone();
    let (runs, next) = app
        .db(move |state| visible_runs(state, &token, before, limit))
        .await?;
    let out = runs
        .into_iter()
        .map(|run| RunItem {
            id: run.id,
            status: run.status,
            started_at: run.started_at,
            as_of: run.as_of,
        })
        .collect();
    Ok(Json(RunPage {
        reconciliations: out,
        next_cursor: next.map(|id| id.to_string()),
    }))
}

/// Up to `limit` runs before run `before` (newest first) that checked households of
/// `who`'s regions, and where the next page starts.
pub(crate) fn visible_runs(
    state: &crate::state::State,
    who: &Who,
    before: Option<i64>,
    limit: usize,
) -> Result<(Vec<crate::state::Run>, Option<i64>), ApiError> {
    let (runs, next) = super::collect_page(
        limit,
        before,
        |before, n| {
            state
                .runs_page(*before, n)
                .map_err(|e| ApiError::internal(&e.into()))
        },
        |run| Some(run.id),
        |run| {
            let regions = state.run_regions(run.id).ok()?;
            regions.iter().any(|r| who.covers(r)).then_some(run)
        },
    )?;
    Ok((runs, next.flatten()))
}

/// One run's changes, those of the token's regions.
#[utoipa::path(
    get,
    path = "/api/v1/reconciliations/{id}/changes",
    operation_id = "reconciliation_changes",
    params(
        ("id" = i64, Path, description = "The run"),
        ("limit" = Option<usize>, Query, description = "Changes a page, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before"),
    ),
    responses(
        (status = 200, description = "A page of the run's changes (changes.jsonl lines); next_cursor null on the last page", body = ChangesPage),
        (status = 400, description = "A limit outside 1–1000 or a cursor this server did not give"),
        (status = 404, description = "No such run, or none of the token's regions"),
        (status = 403, description = "An auditor token"),
        Caller<MayReadRuns>,
    ),
    security(("bearer" = []))
)]
pub async fn changes(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayReadRuns>,
    Path(id): Path<String>,
    query: Result<axum::extract::Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<ChangesPage>, ApiError> {
    let axum::extract::Query(q) = query.map_err(ApiError::bad_query)?;
    let limit = super::page_limit(q.limit)?;
    let after = q
        .cursor
        .as_deref()
        .map_or(Ok(String::new()), super::from_text_cursor)?;
    let (token, masked) = (token.clone(), !token.role.sees_full_ids());
    let (run, known, mut changes, next) = app
        .db(move |state| {
            let (run, known) = visible_run(state, &token, &id, Covered::Any)?;
            let hash = state
                .id_hasher()
                .map_err(|e| ApiError::internal(&e.into()))?;
            // A page of the run's changes, those of the token's regions.
            let (page, next) = super::collect_page(
                limit,
                after,
                |after, n| {
                    state
                        .changes_page(run, after, n)
                        .map_err(|e| ApiError::internal(&e.into()))
                },
                |(hid, _, _)| hid.clone(),
                |(_, region, text)| {
                    let c = serde_json::from_str::<Value>(&text).ok()?;
                    token.covers(&region).then_some((region, c))
                },
            )?;
            let mut households = Vec::new();
            let mut changes: Vec<Value> = Vec::new();
            for (region, c) in page {
                let hid = c["household_id"].as_str().unwrap_or("");
                households.push(ReadHousehold {
                    // An ID number typed as a household id is kept hashed.
                    household_id: hedui_connectors::idnum::replace_ids_in(hid, |r| {
                        format!("#{}", hash(r))
                    })
                    .into_owned(),
                    region_code: region,
                });
                changes.push(c);
            }
            state
                .audit_read(
                    &token.actor,
                    &ReadDetail::of_households(
                        "reconciliation_changes",
                        format!("run:{run}"),
                        households,
                    ),
                )
                .map_err(|e| ApiError::internal(&e.into()))?;
            Ok((run, known, changes, next))
        })
        .await?;
    if masked {
        for c in &mut changes {
            super::checks::mask_household_id(c);
            for key in ["added_flags", "removed_flags"] {
                if let Some(flags) = c.get_mut(key).and_then(Value::as_array_mut) {
                    for f in flags {
                        super::checks::mask_flag(f);
                    }
                }
            }
        }
    }
    Ok(Json(ChangesPage {
        id: run,
        status: known.status,
        changes,
        next_cursor: next.map(|h| super::text_cursor(&h)),
    }))
}

/// A scheduled run's staff report, which leads with its changes.
#[utoipa::path(
    get,
    path = "/api/v1/reconciliations/{id}/report",
    operation_id = "reconciliation_report",
    params(("id" = i64, Path, description = "The run")),
    responses(
        (status = 200, description = "report.html of a run made by the schedule: its changes first (who became ineligible, and why, with evidence), then every household", body = String, content_type = "text/html"),
        (status = 404, description = "No such run, one made on the command line (its report is in its --out), or one with households outside the token's regions"),
        (status = 409, description = "The run is not done"),
        (status = 403, description = "An auditor token"),
        Caller<MayReadRuns>,
    ),
    security(("bearer" = []))
)]
pub async fn report(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayReadRuns>,
    Path(id): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    let who = token.clone();
    let (run, job) = app
        .db(move |state| {
            // The report shows every household of the run: all must be the token's.
            let (run, _) = visible_run(state, &who, &id, Covered::All)?;
            let job = state
                .job_of_run(run)
                .map_err(|e| ApiError::internal(&e.into()))?
                .ok_or_else(|| {
                    ApiError::new(
                        StatusCode::NOT_FOUND,
                        "not_found",
                        format!(
                            "第 {run} 次复核不是服务端定时运行的，报告在其 --out 目录中（run {run} was not made by the schedule: its report is in its --out folder）"
                        ),
                    )
                })?;
            Ok((run, job))
        })
        .await?;
    if job.status != "done" {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "not_done",
            format!("第 {run} 次复核尚未完成（run {run} is not done）"),
        ));
    }
    super::audit_read(
        &app,
        token,
        ReadDetail {
            read: "reconciliation_report".into(),
            of: format!("run:{run}"),
            regions: job.regions.clone(),
            households: vec![],
        },
    )
    .await?;
    let path = crate::server::jobs::out_dir(&app.config.state_dir, &job.id).join("report.html");
    super::files::html_file(&path).await
}

/// `POST /api/v1/reconciliations`: a reconciliation of the current list, queued now.
#[utoipa::path(
    post,
    path = "/api/v1/reconciliations",
    operation_id = "start_reconciliation",
    responses(
        (status = 202, description = "Queued: `id` is its job, which the reconciliations list shows once it begins", body = Object),
        (status = 409, description = "A reconciliation is already waiting or running, or there is no recipients list"),
        Caller<MayReconcile>,
    ),
    security(("bearer" = []))
)]
pub async fn start(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayReconcile>,
) -> Result<Response, ApiError> {
    let id = queue_reconciliation(&app, token).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "id": id }))).into_response())
}

/// Queues a reconciliation of the current list now, as `token`: its job id. 409
/// `already_running` when one waits or runs, `no_recipients` when there is no list.
pub async fn queue_reconciliation(app: &Arc<AppState>, token: &Who) -> Result<String, ApiError> {
    let id = new_id().map_err(|e| ApiError::internal(&e))?;
    let configured = app
        .config
        .schedule
        .as_ref()
        .and_then(|s| s.recipients.clone());
    let (actor, job_id) = (token.actor.clone(), id.clone());
    app.db(move |state| {
        let internal = |e: crate::state::StateError| ApiError::internal(&e.into());
        if state.job_pending(JobKind::Reconcile).map_err(internal)? {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "already_running",
                "已有一次复核在排队或进行中，请等它完成后再发起（a reconciliation is already waiting or running）",
            ));
        }
        let Some((path, file_name)) = current_file(state, configured.as_deref()).map_err(internal)?
        else {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "no_recipients",
                "还没有在保名单：请先在“在保名单”页面（或用 PUT /api/v1/recipients）上传名单，再发起复核（there is no recipients list yet: upload one first）",
            ));
        };
        let job = NewJob {
            id: job_id,
            kind: JobKind::Reconcile,
            actor,
            regions: vec![],
            file_name,
            input: path.display().to_string(),
            as_of: chrono::Local::now().date_naive().to_string(),
        };
        state.submit_job(&job, None).map_err(internal)?;
        Ok(())
    })
    .await?;
    app.wrote();
    app.jobs.wake.notify_one();
    tracing::info!(job = %id, token = %token.label, "reconciliation queued on request");
    Ok(id)
}
