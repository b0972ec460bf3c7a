//! `GET /api/v1/audit` (auditor, admin): the audit log's entries, filtered by time and
//! region — only the households within the token's regions are shown, and entries with
//! none of them are left out.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::server::app::AppState;
use crate::server::caller::{Caller, MayAudit};
use crate::server::error::ApiError;
use crate::server::schema::{AuditEntryView, AuditPage};

/// Query parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Entries at or after this time (RFC 3339 or a date).
    from: Option<String>,
    /// Entries before this time (RFC 3339 or a date).
    to: Option<String>,
    /// Only households whose region code starts with this.
    region: Option<String>,
    /// Entries a page (1–1000, default 100).
    limit: Option<usize>,
    /// Where the page starts: the `next_cursor` of the page before.
    cursor: Option<String>,
}

pub(crate) fn bound(v: &Option<String>, name: &str) -> Result<Option<String>, ApiError> {
    let Some(v) = v else { return Ok(None) };
    let v = v.trim();
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(Some(
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        ));
    }
    if let Some(d) = hedui_connectors::validate::parse_date(v) {
        return Ok(Some(format!("{d}T00:00:00.000000Z")));
    }
    Err(ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        format!("{name} 应为日期（YYYY-MM-DD）或时间（RFC 3339），收到“{v}”（{name}={v:?} is not a time or a date）"),
    ))
}

/// Lists audit entries.
#[utoipa::path(
    get,
    path = "/api/v1/audit",
    operation_id = "list_audit_entries",
    params(
        ("from" = Option<String>, Query, description = "Entries at or after this time (RFC 3339 or YYYY-MM-DD)"),
        ("to" = Option<String>, Query, description = "Entries before this time"),
        ("region" = Option<String>, Query, description = "Only households whose region code starts with this"),
        ("limit" = Option<usize>, Query, description = "Entries a page, 1–1000 (default 100)"),
        ("cursor" = Option<String>, Query, description = "The next_cursor of the page before"),
    ),
    responses(
        (status = 200, description = "A page of entries, oldest first, with the households of the token's regions; next_cursor null on the last page", body = AuditPage),
        (status = 400, description = "A bad time"),
        (status = 403, description = "Not an auditor or admin token"),
        Caller<MayAudit>,
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(app): State<Arc<AppState>>,
    Caller(ref token, _): Caller<MayAudit>,
    query: Result<Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(q) = query.map_err(ApiError::bad_query)?;
    let (from, to) = (bound(&q.from, "from")?, bound(&q.to, "to")?);
    let limit = super::page_limit(q.limit)?;
    let after = q.cursor.as_deref().map_or(Ok(0), super::number_cursor)?;
    let (token, region) = (token.clone(), q.region.clone());
    // A page of the log, filtered by time in SQL and by region here, off the async
    // threads; the database is let go before the answer is built.
    let (entries, next) = app
        .db(move |state| {
            super::collect_page(
                limit,
                after,
                |after, n| {
                    state
                        .audit_page(*after, from.as_deref(), to.as_deref(), n)
                        .map_err(|e| ApiError::internal(&e.into()))
                },
                |e| e.seq,
                |e| shown(e, &token, region.as_deref()),
            )
        })
        .await?;
    Ok(Json(AuditPage {
        entries,
        next_cursor: next.map(|seq| seq.to_string()),
    }))
}

/// An entry as the token is shown it: its households of the token's regions (and of
/// `region` when asked), or `None` when it has none (a read naming no household is
/// shown by its regions).
pub(crate) fn shown(
    e: crate::state::audit::AuditEntry,
    token: &crate::server::who::Who,
    region: Option<&str>,
) -> Option<AuditEntryView> {
    let wanted = |r: &str| token.covers(r) && region.is_none_or(|p| r.starts_with(p));
    let detail: Value = serde_json::from_str(&e.detail).unwrap_or(Value::Null);
    let households: Vec<Value> = detail["households"]
        .as_array()
        .map(|hs| {
            hs.iter()
                .filter(|h| wanted(h["region_code"].as_str().unwrap_or("")))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    let by_region = detail["regions"]
        .as_array()
        .is_some_and(|rs| rs.iter().filter_map(Value::as_str).any(wanted));
    if households.is_empty() && !by_region {
        return None;
    }
    Some(AuditEntryView {
        seq: e.seq,
        at: e.at,
        actor: e.actor,
        kind: e.kind,
        as_of: detail["as_of"].clone(),
        households,
        sources: detail["sources"].clone(),
        read: detail["read"].clone(),
        of: detail["of"].clone(),
        prev_hash: e.prev_hash,
        hash: e.hash,
    })
}
