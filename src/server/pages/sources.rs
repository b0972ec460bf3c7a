//! `/ui/sources`: each department's current snapshot — when it was pulled, how old it
//! is against its freshness, its tables' rows and malformed records — and its last
//! failed pull. Stale or missing sources are marked (in red, and in words).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use crate::output::labels::table_zh;
use crate::output::report::source_zh;
use crate::server::app::AppState;
use crate::sources::Opened;

use super::batches::{local_time, role_zh};
use super::session::Signed;
use super::{render, PageError};

/// One department as the page shows it.
#[derive(Debug, Serialize)]
struct Source {
    name: String,
    name_zh: &'static str,
    /// `fresh`, `stale`, `missing` or `folder`.
    state: &'static str,
    state_zh: &'static str,
    snapshot: Option<u64>,
    pulled_at: String,
    age_days: Option<i64>,
    freshness_days: Option<u32>,
    lookup: bool,
    tables: Vec<(String, String, u64, u64)>,
    failure: Option<(String, String, bool)>,
}

/// `GET /ui/sources`.
pub async fn show(State(app): State<Arc<AppState>>, user: Signed) -> Result<Response, PageError> {
    let today = chrono::Local::now().date_naive();
    let mut out = Vec::new();
    let lake = match &app.setup.sources {
        Opened::Lake { lake, .. } => Some(lake),
        Opened::Folder(_) => None,
    };
    for (name, tables) in hedui_connectors::schema::sources() {
        let mut s = Source {
            name: name.to_owned(),
            name_zh: source_zh(name),
            state: "folder",
            state_zh: "读取数据目录",
            snapshot: None,
            pulled_at: String::new(),
            age_days: None,
            freshness_days: None,
            lookup: false,
            tables: Vec::new(),
            failure: None,
        };
        let Some(lake) = lake else {
            out.push(s);
            continue;
        };
        let unreadable = |e: crate::lake::LakeError| {
            tracing::error!(source = name, error = %e, "the lake cannot be read");
            PageError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "数据湖暂时无法读取，请稍后再试或联系管理员（the lake cannot be read now）",
            )
        };
        let current = lake.snapshot_at(name, None).await.map_err(unreadable)?;
        let failure = lake.last_failure(name).await.map_err(unreadable)?;
        match &current {
            None => {
                s.state = "missing";
                s.state_zh = "无数据：核对时该部门的信息缺失";
            }
            Some(m) => {
                let stale = m.stale_on(today, &chrono::Local);
                s.state = if stale { "stale" } else { "fresh" };
                s.state_zh = if stale {
                    "已过期：核对结论将为“数据不全”"
                } else {
                    "正常"
                };
                s.snapshot = Some(m.seq);
                s.pulled_at = local_time(&m.pulled_at.to_rfc3339());
                s.age_days = Some(m.age_on(today, &chrono::Local));
                s.freshness_days = Some(m.freshness_days);
                s.lookup = m.mode == crate::lake::SnapshotMode::Lookup;
                for t in tables {
                    match m.tables.iter().find(|e| e.table == t.table) {
                        Some(e) => s.tables.push((
                            t.table.clone(),
                            table_zh(&t.table).to_owned(),
                            e.rows,
                            e.problems,
                        )),
                        None => s.tables.push((
                            t.table.clone(),
                            format!("{}（未交付）", table_zh(&t.table)),
                            0,
                            0,
                        )),
                    }
                }
            }
        }
        s.failure = failure.map(|f| {
            let newer = current.as_ref().is_none_or(|m| f.at > m.committed_at);
            (
                local_time(&f.at.to_rfc3339()),
                hedui_connectors::idnum::mask_ids_in(&f.error).into_owned(),
                newer,
            )
        });
        out.push(s);
    }
    Ok(render(
        StatusCode::OK,
        "sources.html",
        minijinja::context! {
            nav => "sources",
            user => user.name,
            role => role_zh(user.who.role),
            csrf => user.csrf,
            sources => out,
            today => today.to_string(),
        },
    ))
}
