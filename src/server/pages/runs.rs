//! `/ui/reconciliations` and `/ui/reconciliations/{id}`: the night's changes as a work
//! list. Households that became ineligible come first, then the largest changes; each
//! with its members (from the recipients list the run read), what changed in words and
//! the evidence, and a form to mark it handled (`已处理`) with a note. Households new to
//! the list and eligible need nobody: they are counted, not listed (a first run, where
//! every household is new, is a summary and the few that need a person). Runs outside
//! the user's regions are 404; every view and mark is audited.

use std::collections::HashSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::server::app::AppState;
use crate::server::caller::{MayReadRuns, MayReconcile, Permit};
use crate::server::error::ApiError;
use crate::server::handlers::checks::{mask_flag, mask_household_id};
use crate::server::handlers::reconciliations::queue_reconciliation;
use crate::server::handlers::reconciliations::{visible_run, visible_runs, Covered};
use crate::state::audit::{ReadDetail, ReadHousehold};
use crate::state::handled::{rank, Handled, Ranked, MAX_NOTE_CHARS};
use crate::verdict::Rule;

use super::batches::{local_time, role_zh, submitter};
use super::household::findings_of;
use super::members::{members_of, who_is, Member};
use super::session::Signed;
use super::{render, PageError};

/// Runs a page of the list; changes a page of a run.
const RUNS_PER_PAGE: usize = 50;
const CHANGES_PER_PAGE: usize = 200;

/// Where a page of runs starts.
#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// The run the page before ended at.
    before: Option<i64>,
    /// `queued` after the button.
    #[serde(default)]
    done: String,
}

/// `GET /ui/reconciliations`: the runs of the user's regions, newest first.
pub async fn list(
    State(app): State<Arc<AppState>>,
    user: Signed,
    query: Result<Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    user.permit::<MayReadRuns>()?;
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let notice = (q.done == "queued").then(|| {
        "已发起复核：它在排队，开始后会出现在下表中，完成后请刷新本页查看变化。".to_owned()
    });
    runs_page(&app, &user, q.before, StatusCode::OK, notice, None).await
}

/// `POST /ui/reconciliations` (admins, CSRF token required): a reconciliation of the
/// current recipients list now, as `POST /api/v1/reconciliations`.
pub async fn start(
    State(app): State<Arc<AppState>>,
    user: Signed,
    form: Result<Form<StartForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let csrf = form.ok().and_then(|Form(f)| f.csrf);
    user.require_csrf(csrf.as_deref())?;
    user.permit::<MayReconcile>()?;
    match queue_reconciliation(&app, &user.who).await {
        Ok(_) => Ok(Redirect::to("/ui/reconciliations?done=queued").into_response()),
        Err(e) => runs_page(&app, &user, None, e.status, None, Some(e.message)).await,
    }
}

/// The form of the button that starts one.
#[derive(Debug, Deserialize)]
pub struct StartForm {
    csrf: Option<String>,
}

/// The page of runs before `before`, with a notice or an error above it.
async fn runs_page(
    app: &Arc<AppState>,
    user: &Signed,
    before: Option<i64>,
    status: StatusCode,
    notice: Option<String>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let who = user.who.clone();
    let (runs, next) = app
        .db(move |state| {
            let (runs, next) = visible_runs(state, &who, before, RUNS_PER_PAGE)?;
            let runs: Vec<Value> = runs
                .into_iter()
                .map(|run| {
                    serde_json::json!({
                        "id": run.id,
                        "status": run.status,
                        "status_zh": status_zh(&run.status),
                        "started_at": local_time(&run.started_at),
                        "as_of": run.as_of,
                        "changes": state.change_count(run.id).unwrap_or(0),
                    })
                })
                .collect();
            Ok((runs, next))
        })
        .await?;
    Ok(render(
        status,
        "runs.html",
        minijinja::context! {
            nav => "runs",
            user => user.name,
            role => role_zh(user.who.role),
            csrf => user.csrf,
            runs => runs,
            next => next,
            notice => notice,
            error => error,
            may_start => MayReconcile::allows(user.who.role),
        },
    ))
}

/// A run's status in words.
fn status_zh(status: &str) -> &'static str {
    match status {
        "running" => "进行中",
        "done" => "已完成",
        "failed" => "失败",
        _ => "未知",
    }
}

/// The page of a run's work list.
#[derive(Debug, Default, Deserialize)]
pub struct ShowQuery {
    /// The page, from 1.
    page: Option<usize>,
    /// `open`: only changes not yet handled.
    #[serde(default)]
    show: String,
}

/// How many changes of each kind a run reported (of the user's regions).
#[derive(Debug, Default, Serialize)]
struct Summary {
    total: usize,
    became_ineligible: usize,
    verdict_changed: usize,
    flags_changed: usize,
    new: usize,
    new_eligible: usize,
    left: usize,
    handled: usize,
    first_run: bool,
}

impl Summary {
    fn of(changes: &[Ranked], handled: &std::collections::HashMap<String, Handled>) -> Summary {
        let mut s = Summary {
            total: changes.len(),
            ..Summary::default()
        };
        for c in changes {
            if c.became_ineligible() {
                s.became_ineligible += 1;
            }
            match (&c.previous_verdict, &c.verdict) {
                (None, _) => {
                    s.new += 1;
                    s.new_eligible += usize::from(c.new_and_eligible());
                }
                (Some(_), None) => s.left += 1,
                (Some(a), Some(b)) if a != b => s.verdict_changed += 1,
                _ => s.flags_changed += 1,
            }
            s.handled += usize::from(handled.contains_key(&c.household_id));
        }
        s
    }
}

/// The key of a household's change in the mark form's address: never the household
/// id itself (it may be an ID number, shown masked).
fn change_key(household_id: &str) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, household_id.as_bytes());
    d.as_ref()[..12]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One change as the work list shows it.
#[derive(Debug, Serialize)]
struct Change {
    /// As the page shows it (masked for staff when it is an ID number).
    household_id: String,
    key: String,
    region_code: String,
    previous: Option<String>,
    previous_zh: &'static str,
    verdict: Option<String>,
    verdict_zh: &'static str,
    became_ineligible: bool,
    members: Vec<Member>,
    added: Vec<super::household::Finding>,
    removed: Vec<String>,
    reasons: Vec<String>,
    handled: Option<Value>,
}

/// A verdict of a change in words (`None`: not on the list).
fn verdict_words(v: Option<&str>) -> &'static str {
    match v {
        None => "不在名单中",
        Some("rejected") => "名单行有误",
        Some(v) => crate::output::report::verdict_zh(v),
    }
}

/// `GET /ui/reconciliations/{id}`.
pub async fn show(
    State(app): State<Arc<AppState>>,
    user: Signed,
    Path(id): Path<String>,
    query: Result<Query<ShowQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    user.permit::<MayReadRuns>()?;
    let q = query.map(|Query(q)| q).unwrap_or_default();
    let page = q.page.unwrap_or(1).max(1);
    let open_only = q.show == "open";
    let (who, full) = (user.who.clone(), user.who.role.sees_full_ids());
    let read = app
        .db(move |state| {
            let (run, known) =
                visible_run(state, &who, &id, Covered::Any).map_err(|_| ApiError::not_found())?;
            let mut ranked: Vec<Ranked> = state
                .ranked_changes(run)
                .map_err(|e| ApiError::internal(&e.into()))?
                .into_iter()
                .filter(|c| who.covers(&c.region_code))
                .collect();
            let handled = state
                .handled(run)
                .map_err(|e| ApiError::internal(&e.into()))?;
            let mut summary = Summary::of(&ranked, &handled);
            summary.first_run = state
                .previous_done(run)
                .map_err(|e| ApiError::internal(&e.into()))?
                .is_none();
            ranked.retain(|c| {
                !c.new_and_eligible() && !(open_only && handled.contains_key(&c.household_id))
            });
            rank(&mut ranked);
            let listed = ranked.len();
            let shown: Vec<Ranked> = ranked
                .into_iter()
                .skip((page - 1) * CHANGES_PER_PAGE)
                .take(CHANGES_PER_PAGE + 1)
                .collect();
            let hids: Vec<String> = shown.iter().map(|c| c.household_id.clone()).collect();
            let lines = state
                .change_lines(run, &hids)
                .map_err(|e| ApiError::internal(&e.into()))?;
            let recipients = state
                .run_recipients(run)
                .map_err(|e| ApiError::internal(&e.into()))?;
            let pulls: Option<crate::output::NightPulls> = state
                .run_pulls(run)
                .map_err(|e| ApiError::internal(&e.into()))?
                .and_then(|text| serde_json::from_str(&text).ok());
            // Showing households' changes is a read of their data: audited first.
            let on_page = &shown[..shown.len().min(CHANGES_PER_PAGE)];
            let hash = state
                .id_hasher()
                .map_err(|e| ApiError::internal(&e.into()))?;
            let households: Vec<ReadHousehold> = on_page
                .iter()
                .map(|c| ReadHousehold {
                    household_id: hedui_connectors::idnum::replace_ids_in(&c.household_id, |r| {
                        format!("#{}", hash(r))
                    })
                    .into_owned(),
                    region_code: c.region_code.clone(),
                })
                .collect();
            state
                .audit_read(
                    &who.actor,
                    &ReadDetail::of_households(
                        "page_reconciliation",
                        format!("run:{run}"),
                        households,
                    ),
                )
                .map_err(|e| ApiError::internal(&e.into()))?;
            Ok((
                run, known, summary, listed, shown, lines, handled, recipients, pulls,
            ))
        })
        .await?;
    let (run, known, summary, listed, mut shown, lines, handled, recipients, pulls) = read;
    let more = shown.len() > CHANGES_PER_PAGE;
    shown.truncate(CHANGES_PER_PAGE);
    // The members of the households shown, from the recipients list the run read.
    let wanted: HashSet<String> = shown.iter().map(|c| c.household_id.clone()).collect();
    let members = match recipients {
        Some(path) => tokio::task::spawn_blocking(move || {
            let p = std::path::PathBuf::from(&path);
            members_of(&p, &path, &wanted, full)
        })
        .await
        .unwrap_or_default(),
        None => Default::default(),
    };
    let changes: Vec<Change> = shown
        .into_iter()
        .map(|c| {
            let mut line: Value = lines
                .get(&c.household_id)
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or(Value::Null);
            let members = members.get(&c.household_id).cloned().unwrap_or_default();
            view(&c, &mut line, members, handled.get(&c.household_id), full)
        })
        .collect();
    let next = more.then(|| {
        format!(
            "/ui/reconciliations/{run}?page={}{}",
            page + 1,
            if open_only { "&show=open" } else { "" }
        )
    });
    Ok(render(
        StatusCode::OK,
        "run.html",
        minijinja::context! {
            nav => "runs",
            user => user.name,
            role => role_zh(user.who.role),
            csrf => user.csrf,
            run => minijinja::context! {
                id => run,
                status => known.status,
                status_zh => status_zh(&known.status),
                started_at => local_time(&known.started_at),
                as_of => known.as_of,
            },
            pulls => pulls.map(|p| {
                let zh = |names: &[String]| {
                    names
                        .iter()
                        .map(|s| crate::output::report::source_zh(s))
                        .collect::<Vec<_>>()
                        .join("、")
                };
                minijinja::context! {
                    at => local_time(&p.at),
                    refreshed => zh(&p.refreshed),
                    failed => zh(&p.failed),
                }
            }),
            summary => summary,
            listed => listed,
            changes => changes,
            page => page,
            open_only => open_only,
            next => next,
            max_note => MAX_NOTE_CHARS,
        },
    ))
}

/// A change line as the page shows it, masked unless `full`.
fn view(
    c: &Ranked,
    line: &mut Value,
    members: Vec<Member>,
    handled: Option<&Handled>,
    full: bool,
) -> Change {
    if !full {
        for key in ["added_flags", "removed_flags"] {
            if let Some(flags) = line.get_mut(key).and_then(Value::as_array_mut) {
                flags.iter_mut().for_each(mask_flag);
            }
        }
    }
    let added = findings_of(
        &serde_json::json!({ "flags": line.get("added_flags").cloned().unwrap_or(Value::Null) }),
        &members,
        full,
    );
    let removed = line
        .get("removed_flags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            let rule = f.get("rule").and_then(Value::as_str).unwrap_or("");
            let member = f.get("member").and_then(Value::as_str).unwrap_or("");
            let name =
                Rule::from_code(rule).map_or_else(|| rule.to_owned(), |r| r.name_zh().to_owned());
            format!("{name}（{}）", who_is(&members, member))
        })
        .collect();
    let reasons = line
        .get("reasons")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.as_str().map(crate::applicants::Reason::zh))
        .map(str::to_owned)
        .collect();
    let mut household_id = serde_json::json!({ "household_id": c.household_id });
    if !full {
        mask_household_id(&mut household_id);
    }
    Change {
        household_id: household_id["household_id"]
            .as_str()
            .unwrap_or("")
            .to_owned(),
        key: change_key(&c.household_id),
        region_code: c.region_code.clone(),
        previous_zh: verdict_words(c.previous_verdict.as_deref()),
        previous: c.previous_verdict.clone(),
        verdict_zh: verdict_words(c.verdict.as_deref()),
        verdict: c.verdict.clone(),
        became_ineligible: c.became_ineligible(),
        members,
        added,
        removed,
        reasons,
        handled: handled.map(|h| {
            serde_json::json!({
                "by": submitter(&h.actor),
                "at": local_time(&h.at),
                "note": h.note,
            })
        }),
    }
}

/// The mark form: its CSRF token and the note.
#[derive(Debug, Deserialize)]
pub struct MarkForm {
    csrf: Option<String>,
    #[serde(default)]
    note: String,
    /// The page to go back to.
    page: Option<usize>,
}

/// `POST /ui/reconciliations/{id}/changes/{key}`: marks the change handled
/// with a note (CSRF token required), then back to the work list at that change.
pub async fn mark(
    State(app): State<Arc<AppState>>,
    user: Signed,
    Path((id, key)): Path<(String, String)>,
    form: Result<Form<MarkForm>, axum::extract::rejection::FormRejection>,
) -> Result<Response, PageError> {
    let f = form.map_err(|_| {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "表单内容无法读取，请回到上一页重试（the form could not be read）",
        )
    })?;
    let Form(f) = f;
    user.require_csrf(f.csrf.as_deref())?;
    user.permit::<MayReadRuns>()?;
    let note = f.note.trim().to_owned();
    if note.chars().count() > MAX_NOTE_CHARS {
        return Err(PageError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "备注最多 {MAX_NOTE_CHARS} 个字，请缩短后重新提交（the note is longer than {MAX_NOTE_CHARS} characters; nothing was saved）"
            ),
        ));
    }
    let who = user.who.clone();
    let run = app
        .db(move |state| {
            let (run, _) =
                visible_run(state, &who, &id, Covered::Any).map_err(|_| ApiError::not_found())?;
            let change = state
                .ranked_changes(run)
                .map_err(|e| ApiError::internal(&e.into()))?
                .into_iter()
                .find(|c| change_key(&c.household_id) == key)
                .filter(|c| who.covers(&c.region_code))
                .ok_or_else(ApiError::not_found)?;
            let marked = state
                .mark_handled(
                    &who.actor,
                    run,
                    &change.household_id,
                    &change.region_code,
                    &note,
                )
                .map_err(|e| ApiError::internal(&e.into()))?;
            if marked {
                Ok(run)
            } else {
                Err(ApiError::not_found())
            }
        })
        .await?;
    let page = f.page.unwrap_or(1).max(1);
    Ok(Redirect::to(&format!("/ui/reconciliations/{run}?page={page}")).into_response())
}
