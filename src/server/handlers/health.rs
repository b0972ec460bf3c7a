//! `GET /healthz`: ready only when the state database and the lake answer.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::server::app::AppState;

/// 200 `{"status":"ready"}`, or 503 naming what does not answer.
#[utoipa::path(
    get,
    path = "/healthz",
    responses(
        (status = 200, description = "The state database and the lake answer"),
        (status = 503, description = "One of them does not"),
    )
)]
pub async fn healthz(State(app): State<Arc<AppState>>) -> (StatusCode, Json<Value>) {
    // On a connection of its own (never behind the requests that write), off the async
    // threads, and not waited for beyond HEALTH_WAIT: a database that does not answer
    // makes the server not ready, never a hanging probe.
    let (dir, audit) = (app.config.state_dir.clone(), app.config.audit_files.clone());
    let ping = tokio::task::spawn_blocking(move || {
        crate::state::State::open_read_only(&dir, audit).and_then(|s| s.ping())
    });
    let db = matches!(
        tokio::time::timeout(crate::server::app::HEALTH_WAIT, ping).await,
        Ok(Ok(Ok(())))
    );
    let lake = match &app.setup.sources {
        crate::sources::Opened::Lake { lake, .. } => lake.ping().await.is_ok(),
        crate::sources::Opened::Folder(..) => true,
    };
    if app.disk_full.load(std::sync::atomic::Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": "disk_full",
                "message": "状态数据库所在磁盘已满，暂不能受理（the state database's disk is full）",
            })),
        );
    }
    if db && lake {
        (StatusCode::OK, Json(json!({ "status": "ready" })))
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({
                "error": "not_ready",
                "message": format!("state database {}, lake {}", if db { "ok" } else { "not answering" }, if lake { "ok" } else { "not answering" }),
            })),
        )
    }
}
