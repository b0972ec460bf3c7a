//! One file per group of routes.

pub mod audit;
pub mod batches;
pub mod checks;
pub mod files;
pub mod health;
pub mod list_file;
pub mod metrics;
pub mod recipients;
pub mod reconciliations;
pub mod submit;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;

use super::app::AppState;
use super::error::ApiError;

/// The check date of a request (today when not given), or `status`/`code` naming what
/// was given when it is not a date; 422 for a date in the future or more than
/// `[server] max_backdate_days` before today (a back-dated D reads windows the
/// departments' data may not reach).
pub fn as_of(
    app: &AppState,
    given: Option<&str>,
    status: StatusCode,
    code: &'static str,
) -> Result<chrono::NaiveDate, ApiError> {
    let d = crate::check::as_of(given)
        .map_err(|_| ApiError::bad_as_of(status, code, given.unwrap_or("")))?;
    let today = chrono::Local::now().date_naive();
    let days = app.config.max_backdate_days;
    if d > today {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            format!("核对日期 {d} 晚于今天（{today}），不能核对未来的日期（as_of {d} is in the future）"),
        ));
    }
    if (today - d).num_days() > i64::from(days) {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            format!(
                "核对日期 {d} 早于今天 {days} 天以上，不能回溯这么久（as_of {d} is more than max_backdate_days = {days} days before today）"
            ),
        ));
    }
    Ok(d)
}

/// A request body, or 413 beyond `max_body_mb`, 408 when it stalled (400 for any other
/// failure to read it).
pub fn body(app: &AppState, body: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    body.map_err(|e| {
        if let Some(limit) = super::body::stalled(&e) {
            ApiError::body_stalled(limit)
        } else if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::too_large(app.config.max_body_bytes)
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, "bad_request", e.body_text())
        }
    })
}

/// Appends the audit entry of a read that returns household data, before it is
/// answered: a read that cannot be audited is not answered.
pub async fn audit_read(
    app: &std::sync::Arc<AppState>,
    token: &crate::server::who::Who,
    detail: crate::state::audit::ReadDetail,
) -> Result<(), ApiError> {
    let actor = token.actor.clone();
    app.db(move |state| {
        state
            .audit_read(&actor, &detail)
            .map_err(|e| ApiError::internal(&e.into()))
    })
    .await?;
    Ok(())
}

/// Items of a list page by default, and at most.
pub const DEFAULT_LIMIT: usize = 100;
/// At most this many items a page.
pub const MAX_LIMIT: usize = 1000;
/// Rows looked at at most for one page: a filter that keeps few of them answers a page
/// with fewer items and a cursor to go on, never a scan of everything.
pub const SCAN_PER_PAGE: usize = 10_000;

/// The page size a list was asked for: `limit` (1–1000, default 100), else 400.
pub fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("limit 应为 1–{MAX_LIMIT}，收到 {n}（limit must be 1–{MAX_LIMIT}）"),
        )),
    }
}

/// 400 for a cursor that is not one this server gave.
pub fn bad_cursor() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "cursor 无效：请使用上一页返回的 next_cursor（cursor is not one a previous page gave）",
    )
}

/// One page of a list: rows are fetched from the cursor `after` (`fetch(after, n)`, in
/// the list's order) and each is kept as an item or not (`keep`), until `limit` items or
/// [`SCAN_PER_PAGE`] rows; returns the items and the cursor of the next page (`None` once
/// the rows are exhausted).
pub fn collect_page<K, R, T>(
    limit: usize,
    mut after: K,
    mut fetch: impl FnMut(&K, usize) -> Result<Vec<R>, ApiError>,
    key: impl Fn(&R) -> K,
    mut keep: impl FnMut(R) -> Option<T>,
) -> Result<(Vec<T>, Option<K>), ApiError> {
    let mut items = Vec::new();
    let mut scanned = 0usize;
    loop {
        let want = (limit - items.len()).clamp(DEFAULT_LIMIT, MAX_LIMIT);
        let rows = fetch(&after, want)?;
        let exhausted = rows.len() < want;
        for r in rows {
            scanned += 1;
            after = key(&r);
            if let Some(item) = keep(r) {
                items.push(item);
            }
            if items.len() == limit || scanned >= SCAN_PER_PAGE {
                return Ok((items, Some(after)));
            }
        }
        if exhausted {
            return Ok((items, None));
        }
    }
}

/// A text cursor made opaque (hex), so that no household id stands in a URL as written.
pub fn text_cursor(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The text of a cursor made by [`text_cursor`].
pub fn from_text_cursor(c: &str) -> Result<String, ApiError> {
    if c.len() % 2 != 0 || !c.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(bad_cursor());
    }
    let bytes: Vec<u8> = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&c[i..i + 2], 16).unwrap_or(0))
        .collect();
    String::from_utf8(bytes).map_err(|_| bad_cursor())
}

/// A number cursor (a sequence number, a row id).
pub fn number_cursor(c: &str) -> Result<i64, ApiError> {
    c.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(bad_cursor)
}

/// Counts the people of a request (their ID numbers, hashed as the audit log hashes
/// them) against the token's day, API checks and batches together: 429 beyond its
/// `max_people_per_day`, the refusal audited.
pub async fn admit_people(
    app: &std::sync::Arc<AppState>,
    token: &crate::server::who::Who,
    ids: Vec<String>,
    regions: Vec<String>,
) -> Result<(), ApiError> {
    use crate::state::people::People;
    let (name, actor, cap) = (
        token.label.clone(),
        token.actor.clone(),
        token.max_people_per_day,
    );
    let now = chrono::Local::now();
    let day = now.date_naive().to_string();
    let decided = app
        .db(move |state| {
            let internal = |e: crate::state::StateError| ApiError::internal(&e.into());
            let hash = state.id_hasher().map_err(internal)?;
            let people: Vec<String> = ids.iter().map(|id| hash(id)).collect();
            let decided = state
                .admit_people(&name, &day, &people, cap)
                .map_err(internal)?;
            if let People::Refused { .. } = decided {
                state
                    .audit_read(
                        &actor,
                        &crate::state::audit::ReadDetail {
                            read: "refused_max_people_per_day".into(),
                            of: actor.clone(),
                            regions,
                            households: vec![],
                        },
                    )
                    .map_err(internal)?;
            }
            Ok(decided)
        })
        .await?;
    match decided {
        People::Admitted { added, .. } => {
            app.metrics.people(token.metric_label(), added);
            Ok(())
        }
        People::Refused { today, more } => {
            app.metrics.people_refused(token.metric_label());
            let midnight = (now.date_naive() + chrono::Duration::days(1))
                .and_hms_opt(0, 0, 0)
                .and_then(|t| t.and_local_timezone(chrono::Local).earliest());
            let wait = midnight.map_or(3600, |m| (m - now).num_seconds().max(1) as u64);
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_people",
                format!(
                    "该令牌今天已核对 {today} 人，再核对 {more} 人将超过每日上限 {cap} 人：请明天再试，或请管理员调整 max_people_per_day（this token has had {today} people checked today; {more} more would pass its max_people_per_day of {cap}）"
                ),
            );
            e.retry_after_s = Some(wait);
            Err(e)
        }
    }
}
