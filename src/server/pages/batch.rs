//! `/ui/batches/{id}`: a batch's progress while it is queued or running (the page
//! follows it by itself), then the rows the file could not use (row, name, field, why)
//! and its households in pages of at most 200, filtered by verdict, rule and region and
//! searched by 申请编号, a member's name or masked ID number; and its downloads. A batch
//! outside the user's regions is 404, as over the API.

use std::collections::HashMap;
use std::io::BufRead as _;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::output::labels::money;
use crate::server::app::AppState;
use crate::server::handlers::batches::{find, output};
use crate::server::handlers::checks::mask_result;
use crate::server::jobs::out_dir;
use crate::state::jobs::Job;
use crate::verdict::Rule;

use super::batches::{local_time, role_zh, status_zh};
use super::members::{roster, Entry, Member};
use super::session::Signed;
use super::{enc, render, PageError};

/// Households a page shows at most.
pub const PER_PAGE: usize = 200;

/// The filters and the page of a batch's households.
#[derive(Debug, Default, Deserialize)]
pub struct Filter {
    /// `eligible`, `ineligible`, `review`, `incomplete` (empty: all).
    #[serde(default)]
    verdict: String,
    /// A rule code (empty: all).
    #[serde(default)]
    rule: String,
    /// A region-code prefix (empty: all).
    #[serde(default)]
    region: String,
    /// 申请编号 or part of one (any case), a member's name or part of it, or a member's
    /// ID as the page shows it (masked for staff; a full ID typed is masked first).
    #[serde(default)]
    q: String,
    /// The page, from 1.
    page: Option<usize>,
}

/// One household as the list shows it.
#[derive(Debug, Serialize)]
struct Row {
    household_id: String,
    /// 申请人's name as the file gives it.
    applicant: String,
    region_code: String,
    verdict: String,
    verdict_zh: &'static str,
    members: i64,
    income: String,
    assets: String,
    findings: Vec<&'static str>,
}

/// A page of a done batch's households.
#[derive(Debug, Default, Serialize)]
struct Households {
    rows: Vec<Row>,
    /// Households matching the filters.
    matched: usize,
    /// Households by verdict, all of them.
    counts: Vec<(String, &'static str, usize)>,
    /// Whether there is a next page.
    more: bool,
}

/// The members of a batch by household, from its applicants file.
#[derive(Debug, Default)]
struct Roster {
    by_household: HashMap<String, Vec<Member>>,
    /// Rows' members' names, by row number.
    name_at: HashMap<u64, String>,
}

impl Roster {
    fn of(entries: Vec<Entry>) -> Roster {
        let mut r = Roster::default();
        for e in entries {
            r.name_at.insert(e.row, e.member.name.clone());
            r.by_household
                .entry(e.household_id)
                .or_default()
                .push(e.member);
        }
        r
    }

    /// Whether a member of `household` is named or numbered like `q` (lower-cased).
    fn names(&self, household: &str, q: &str) -> bool {
        self.by_household.get(household).is_some_and(|ms| {
            ms.iter()
                .any(|m| m.name.contains(q) || m.id_number.to_lowercase().contains(q))
        })
    }

    /// The name of `household`'s applicant (本人), or its first member's.
    fn applicant(&self, household: &str) -> String {
        let ms = self.by_household.get(household);
        ms.and_then(|ms| {
            ms.iter()
                .find(|m| {
                    crate::applicants::Relation::parse(&m.relation)
                        == Some(crate::applicants::Relation::Applicant)
                })
                .or(ms.first())
        })
        .map(|m| m.name.clone())
        .unwrap_or_default()
    }
}

/// What a search box holds, as searched and shown back: trimmed, and an ID number typed
/// in full masked as the page shows it to staff (`mask`), so that it matches the masked
/// form and is never shown or linked in full.
fn needle(q: &str, mask: bool) -> String {
    let q = q.trim();
    if mask {
        hedui_connectors::idnum::mask_ids_in(q).into_owned()
    } else {
        q.to_owned()
    }
}

/// Reads the page of `results.jsonl` the filter asks for, masked for `mask`.
fn households(
    path: &std::path::Path,
    f: &Filter,
    mask: bool,
    roster: &Roster,
) -> Result<Households, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let page = f.page.unwrap_or(1).max(1);
    let skip = (page - 1) * PER_PAGE;
    let mut out = Households::default();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    let q = needle(&f.q, mask).to_lowercase();
    let q = q.as_str();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| e.to_string())?;
        let Ok(mut v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if mask {
            mask_result(&mut v);
        }
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let verdict = s("verdict");
        *counts.entry(verdict.clone()).or_default() += 1;
        let flags = v
            .get("flags")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let rules: Vec<String> = flags
            .iter()
            .filter_map(|fl| fl.get("rule").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let keep = (f.verdict.is_empty() || verdict == f.verdict)
            && (f.rule.is_empty() || rules.iter().any(|r| *r == f.rule))
            && (f.region.is_empty() || s("region_code").starts_with(f.region.trim()))
            && (q.is_empty()
                || s("household_id").to_lowercase().contains(q)
                || roster.names(&s("household_id"), q)
                || flags.iter().any(|fl| {
                    fl.get("member")
                        .and_then(Value::as_str)
                        .is_some_and(|m| m.contains(q))
                }));
        if !keep {
            continue;
        }
        out.matched += 1;
        if out.matched <= skip {
            continue;
        }
        if out.rows.len() == PER_PAGE {
            out.more = true;
            continue;
        }
        let mut findings: Vec<&'static str> = rules
            .iter()
            .filter_map(|r| Rule::from_code(r).map(Rule::name_zh))
            .collect();
        findings.dedup();
        out.rows.push(Row {
            applicant: roster.applicant(&s("household_id")),
            household_id: s("household_id"),
            region_code: s("region_code"),
            verdict_zh: crate::output::report::verdict_zh(&verdict),
            verdict,
            members: v.get("members").and_then(Value::as_i64).unwrap_or(0),
            income: money(&s("per_capita_monthly_income")),
            assets: money(&s("financial_assets")),
            findings,
        });
    }
    out.counts = ["ineligible", "review", "incomplete", "eligible"]
        .iter()
        .map(|v| {
            (
                (*v).to_owned(),
                crate::output::report::verdict_zh(v),
                counts.get(*v).copied().unwrap_or(0),
            )
        })
        .collect();
    Ok(out)
}

/// Rows of the file a page lists at most (all of them are in results.xlsx).
pub const REJECTED_SHOWN: usize = 200;

/// A row of the file that could not be used, as the page shows it.
#[derive(Debug, Serialize)]
struct Rejected {
    row: u64,
    household_id: String,
    name: String,
    field: &'static str,
    reason: &'static str,
    message: String,
}

/// The rows of `rejected.jsonl` (the first [`REJECTED_SHOWN`]) with the member's name
/// from the file and the field and reason in words, ID numbers masked for `mask`; and
/// how many there are.
fn rejected(path: &std::path::Path, mask: bool, roster: &Roster) -> (Vec<Rejected>, usize) {
    let Ok(file) = std::fs::File::open(path) else {
        return (Vec::new(), 0);
    };
    // In the file's order of rows (rejected.jsonl is by household, then row).
    let mut lines: Vec<(u64, Value)> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<Value>(&l).ok())
        .map(|v| (v.get("row").and_then(Value::as_u64).unwrap_or(0), v))
        .collect();
    lines.sort_by_key(|(row, _)| *row);
    let count = lines.len();
    let mut shown = Vec::new();
    for (row, v) in lines.into_iter().take(REJECTED_SHOWN) {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let m = |t: String| {
            if mask {
                hedui_connectors::idnum::mask_ids_in(&t).into_owned()
            } else {
                t
            }
        };
        let field = s("field");
        shown.push(Rejected {
            row,
            household_id: m(s("household_id")),
            name: roster.name_at.get(&row).cloned().unwrap_or_default(),
            field: crate::applicants::Column::ALL
                .iter()
                .find(|c| c.name() == field)
                .map_or("", |c| c.chinese()),
            reason: crate::applicants::Reason::zh(&s("reason")),
            message: m(s("message")),
        });
    }
    (shown, count)
}

/// `GET /ui/batches/{id}`.
pub async fn show(
    State(app): State<Arc<AppState>>,
    user: Signed,
    Path(id): Path<String>,
    filter: Result<Query<Filter>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, PageError> {
    let job = find(&app, &user.who, &id)
        .await
        .map_err(|_| PageError::not_found())?;
    let f = filter.map(|Query(f)| f).unwrap_or_default();
    let done = job.status == "done";
    let list = if done && user.who.role.may_check() {
        // Showing households is a read of household data: audited first.
        output(&app, &user.who, &job.id, "results.jsonl", "page_batch").await?;
        let path = out_dir(&app.config.state_dir, &job.id).join("results.jsonl");
        let mask = !user.who.role.sees_full_ids();
        let f2 = Filter {
            verdict: f.verdict.clone(),
            rule: f.rule.clone(),
            region: f.region.clone(),
            q: f.q.clone(),
            page: f.page,
        };
        let (input, name) = (job.input.clone(), job.file_name.clone());
        let read = tokio::task::spawn_blocking(move || {
            let roster = Roster::of(roster(std::path::Path::new(&input), &name, !mask));
            let bad = rejected(&path.with_file_name("rejected.jsonl"), mask, &roster);
            households(&path, &f2, mask, &roster).map(|h| (h, bad))
        })
        .await
        .map_err(|_| {
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "内部错误（internal error）",
            )
        })?;
        Some(read.map_err(|why| {
            tracing::error!(batch = %job.id, error = %why, "batch results unreadable");
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "批次结果无法读取，请联系管理员（the batch's results cannot be read）",
            )
        })?)
    } else {
        None
    };
    let (list, rejected) = match list {
        Some((h, (rows, count))) => (
            Some(h),
            Some(minijinja::context! { rows => rows, count => count }),
        ),
        None => (None, None),
    };
    let q = needle(&f.q, !user.who.role.sees_full_ids());
    let page = f.page.unwrap_or(1).max(1);
    let next = list.as_ref().filter(|l| l.more).map(|_| {
        format!(
            "/ui/batches/{}?verdict={}&rule={}&region={}&q={}&page={}",
            job.id,
            enc(&f.verdict),
            enc(&f.rule),
            enc(&f.region),
            enc(&q),
            page + 1
        )
    });
    let rules: Vec<(&str, &str)> = Rule::ALL.iter().map(|r| (r.code(), r.name_zh())).collect();
    Ok(render(
        StatusCode::OK,
        "batch.html",
        minijinja::context! {
            nav => "batches",
            user => user.name,
            role => role_zh(user.who.role),
            csrf => user.csrf,
            job => view(&job),
            list => list,
            rejected => rejected,
            shown_max => REJECTED_SHOWN,
            f => minijinja::context! { verdict => f.verdict, rule => f.rule, region => f.region, q => q },
            page => page,
            next => next,
            rules => rules,
            may_read => user.who.role.may_check(),
        },
    ))
}

/// A job as the page shows it.
fn view(job: &Job) -> Value {
    serde_json::json!({
        "id": job.id,
        "status": job.status,
        "status_zh": status_zh(&job.status),
        "file_name": job.file_name,
        "as_of": job.as_of,
        "submitted_at": local_time(&job.submitted_at),
        "finished_at": job.finished_at.as_deref().map(local_time),
        "submitter": super::batches::submitter(&job.actor),
        "stage": job.stage,
        "error": job.error,
        "summary": job.summary,
    })
}

/// `GET /ui/batches/{id}/files/{name}`: a done batch's `results.jsonl`, `rejected.jsonl`
/// or `report.html` (masked for staff as over the API).
pub async fn file(
    State(app): State<Arc<AppState>>,
    user: Signed,
    Path((id, name)): Path<(String, String)>,
) -> Result<Response, PageError> {
    if !user.who.role.may_check() {
        return Err(PageError::not_found());
    }
    if name == "results.xlsx" {
        return workbook(&app, &user, &id).await;
    }
    let (read, edit): (&str, Option<fn(&mut Value)>) = match name.as_str() {
        "results.jsonl" => ("batch_results", Some(mask_result)),
        "rejected.jsonl" => (
            "batch_rejected",
            Some(crate::server::handlers::checks::mask_household_id),
        ),
        "report.html" => ("batch_report", None),
        _ => return Err(PageError::not_found()),
    };
    find(&app, &user.who, &id)
        .await
        .map_err(|_| PageError::not_found())?;
    let path = output(&app, &user.who, &id, &name, read).await?;
    if name == "report.html" {
        return Ok(crate::server::handlers::files::html_file(&path).await?);
    }
    let edit = if user.who.role.sees_full_ids() {
        None
    } else {
        edit
    };
    let mut resp = crate::server::handlers::files::stream_jsonl(path, edit);
    if let Ok(v) = axum::http::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        resp.headers_mut()
            .insert(axum::http::header::CONTENT_DISPOSITION, v);
    }
    Ok(resp.into_response())
}

/// A done batch's `results.xlsx`, made now from its JSON Lines (masked for staff), one
/// at a time per core like uploads.
async fn workbook(app: &Arc<AppState>, user: &Signed, id: &str) -> Result<Response, PageError> {
    let job = find(app, &user.who, id)
        .await
        .map_err(|_| PageError::not_found())?;
    let results = output(app, &user.who, id, "results.jsonl", "batch_results_xlsx").await?;
    let rejected = results.with_file_name("rejected.jsonl");
    let full = user.who.role.sees_full_ids();
    let _turn = app.reading.acquire().await.map_err(|_| {
        PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "服务正在停止（the server is stopping）",
        )
    })?;
    let made = tokio::task::spawn_blocking(move || {
        let mask = |v: &mut Value| {
            if !full {
                mask_result(v);
                crate::server::handlers::checks::mask_household_id(v);
            }
        };
        let names = Roster::of(roster(
            std::path::Path::new(&job.input),
            &job.file_name,
            full,
        ))
        .name_at;
        crate::output::workbook::results_xlsx(&results, &rejected, &mask, full, &names)
    })
    .await
    .map_err(|_| {
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "内部错误（internal error）",
        )
    })?;
    let bytes = made.map_err(|why| {
        tracing::error!(batch = %id, error = %why, "results.xlsx could not be made");
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "无法生成 results.xlsx，请联系管理员（the workbook could not be made）",
        )
    })?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    h.insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static(
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        ),
    );
    h.insert(
        axum::http::header::CONTENT_DISPOSITION,
        axum::http::HeaderValue::from_static("attachment; filename=\"results.xlsx\""),
    );
    Ok(resp)
}
