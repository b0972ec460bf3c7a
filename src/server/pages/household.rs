//! `/ui/batches/{id}/households/{household_id}`: the household's 核对报告, printable on
//! A4 — report number, check time and date D, who submitted it, each department's
//! snapshot, the members as the batch declared them, every finding in words with its
//! evidence records (the schemas' labels), and room for signature and seal. Masked for
//! staff; outside the user's regions 404; each view audited.

use std::io::BufRead as _;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use serde_json::Value;

use crate::output::labels::{money, record_zh, table_zh};
use crate::server::app::AppState;
use crate::server::handlers::batches::find;
use crate::server::handlers::checks::mask_result;
use crate::server::jobs::out_dir;
use crate::state::audit::{ReadDetail, ReadHousehold};
use crate::verdict::Rule;

use super::batches::{local_time, role_zh, submitter};
use super::members::{members_of, who_is, Member};
use super::session::Signed;
use super::{render, PageError};

/// A finding as the report prints it.
#[derive(Debug, Serialize)]
pub struct Finding {
    rule: String,
    member: String,
    /// The member it concerns, by name (and masked ID), when the words do not say.
    who: String,
    text: String,
    severity: &'static str,
    evidence: Vec<(String, String, String)>,
}

/// The household's line of `results.jsonl`, if the batch has it.
fn result_line(path: &std::path::Path, hid: &str) -> Result<Option<Value>, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    // Cheap test first (most lines are other households): the id as JSON writes it
    // (a `"` or `\` in it is escaped there).
    let quoted = serde_json::to_string(hid).map_err(|e| e.to_string())?;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|e| e.to_string())?;
        if !line.contains(quoted.as_str()) {
            continue;
        }
        if let Ok(v) = serde_json::from_str::<Value>(&line) {
            if v.get("household_id").and_then(Value::as_str) == Some(hid) {
                return Ok(Some(v));
            }
        }
    }
    Ok(None)
}

/// Each department's snapshot as the run's summary names it: (department, when it
/// was delivered, what its data reaches).
fn sources_of(summary: &Value) -> Vec<(String, String, String)> {
    summary
        .get("sources")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(name, s)| {
                    let when = s
                        .pointer("/snapshot/committed_at")
                        .and_then(Value::as_str)
                        .map(local_time)
                        .unwrap_or_else(|| "无数据".into());
                    let latest = s
                        .get("latest_as_of")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_owned();
                    (
                        crate::output::report::source_zh(name).to_owned(),
                        when,
                        latest,
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The household's findings in words, with the member each concerns and its evidence.
pub fn findings_of(v: &Value, members: &[Member], full: bool) -> Vec<Finding> {
    v.get("flags")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|f| {
            let s = |k: &str| match f.get(k) {
                Some(Value::String(t)) => t.clone(),
                Some(Value::Null) | None => String::new(),
                Some(o) => o.to_string(),
            };
            let member = s("member");
            let who = who_is(members, &member);
            let text = Rule::from_code(&s("rule")).map_or_else(
                || s("rule"),
                |r| r.finding_zh(&money(&s("value")), &money(&s("limit")), &who),
            );
            let evidence = f
                .get("evidence")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|e| {
                    let table = e.get("table").and_then(Value::as_str).unwrap_or("");
                    let place = format!(
                        "{} 第{}行",
                        e.get("file").and_then(Value::as_str).unwrap_or(""),
                        e.get("row").and_then(Value::as_u64).unwrap_or(0)
                    );
                    let record = e
                        .get("record")
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    (
                        table_zh(table).to_owned(),
                        place,
                        record_zh(table, &record, full),
                    )
                })
                .collect();
            let who = if member.is_empty() || text.contains(&who) {
                String::new()
            } else {
                who
            };
            Finding {
                rule: s("rule"),
                member,
                who,
                text,
                severity: if s("severity") == "disqualifying" {
                    "否决项"
                } else {
                    "需复核"
                },
                evidence,
            }
        })
        .collect()
}

/// `GET /ui/batches/{id}/households/{household_id}`.
pub async fn show(
    State(app): State<Arc<AppState>>,
    user: Signed,
    Path((id, hid)): Path<(String, String)>,
) -> Result<Response, PageError> {
    if !user.who.role.may_check() {
        return Err(PageError::not_found());
    }
    let job = find(&app, &user.who, &id)
        .await
        .map_err(|_| PageError::not_found())?;
    if job.status != "done" {
        return Err(PageError::not_found());
    }
    let out = out_dir(&app.config.state_dir, &job.id);
    let full = user.who.role.sees_full_ids();
    let (path, wanted) = (out.join("results.jsonl"), hid.clone());
    let line = tokio::task::spawn_blocking(move || result_line(&path, &wanted))
        .await
        .map_err(|_| {
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "内部错误（internal error）",
            )
        })?
        .map_err(|_| {
            PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "批次结果无法读取（the batch's results cannot be read）",
            )
        })?;
    let Some(mut v) = line else {
        return Err(PageError::not_found());
    };
    let region = v
        .get("region_code")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if !user.who.covers(&region) && job.actor != user.who.actor {
        return Err(PageError::not_found());
    }
    // Showing a household is a read of its data: audited before it is shown.
    let detail = ReadDetail {
        read: "page_household".into(),
        of: format!("batch:{}", job.id),
        regions: vec![region.clone()],
        households: vec![ReadHousehold {
            household_id: hid.clone(),
            region_code: region.clone(),
        }],
    };
    crate::server::handlers::audit_read(&app, &user.who, detail).await?;
    if !full {
        mask_result(&mut v);
    }
    let summary: Value = std::fs::read_to_string(out.join("summary.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null);
    let sources = sources_of(&summary);
    let (input, name, wanted) = (job.input.clone(), job.file_name.clone(), hid.clone());
    let members = tokio::task::spawn_blocking(move || {
        let wanted = std::collections::HashSet::from([wanted]);
        members_of(std::path::Path::new(&input), &name, &wanted, full)
            .into_values()
            .next()
            .unwrap_or_default()
    })
    .await
    .unwrap_or_default();
    let findings = findings_of(&v, &members, full);
    let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    Ok(render(
        StatusCode::OK,
        "household.html",
        minijinja::context! {
            nav => "batches",
            user => user.name,
            role => role_zh(user.who.role),
            csrf => user.csrf,
            report_no => format!("HD-{}-{}", &job.id[..8], hid),
            job_id => job.id,
            file_name => job.file_name,
            as_of => job.as_of,
            checked_at => job.finished_at.as_deref().map(local_time).unwrap_or_default(),
            submitter => submitter(&job.actor),
            household_id => s("household_id"),
            region_code => region,
            verdict => s("verdict"),
            verdict_zh => crate::output::report::verdict_zh(&s("verdict")),
            income => money(&s("per_capita_monthly_income")),
            assets => money(&s("financial_assets")),
            standard => money(&s("standard_monthly")),
            members => members,
            findings => findings,
            sources => sources,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A household whose id holds quotes, slashes or markup is found all the same.
    #[test]
    fn ids_with_quotes_and_slashes_are_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.jsonl");
        let odd = "A\"B/<script>'{{7*7}}";
        let lines = [
            serde_json::json!({"household_id": "SQ1", "verdict": "eligible"}),
            serde_json::json!({"household_id": odd, "verdict": "review"}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&path, text).unwrap();
        let found = result_line(&path, odd).unwrap().expect("found");
        assert_eq!(found["verdict"], "review");
        assert!(result_line(&path, "A").unwrap().is_none());
    }
}
