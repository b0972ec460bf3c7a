//! `GET /healthz` (and `/readyz`): ready only when the state database and the lake
//! answer — a load balancer sends work only then. `GET /livez`: the process answers and
//! its job worker runs — a supervisor restarts it only when not (a lake that is down is
//! not fixed by a restart).

use std::sync::Arc;

use crate::server::app::AppState;
use crate::server::error::ApiError;
use crate::server::schema::Ready;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

/// 200 `{"status":"ready"}`, or 503 naming what does not answer.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    responses(
        (status = 200, description = "The state database and the lake answer", body = Ready),
        (status = 503, description = "One of them does not, or the state database's disk is full"),
    )
)]
pub async fn healthz(State(app): State<Arc<AppState>>) -> Result<Json<Ready>, ApiError> {
    ready(&app).await
}

/// `GET /readyz`: the same as `/healthz`, by the name probes expect.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    responses(
        (status = 200, description = "The state database and the lake answer", body = Ready),
        (status = 503, description = "One of them does not, or the state database's disk is full"),
    )
)]
pub async fn readyz(State(app): State<Arc<AppState>>) -> Result<Json<Ready>, ApiError> {
    ready(&app).await
}

/// 200 `{"status":"alive"}` while the job worker runs; 503 once it has stopped (a
/// restart is the cure). Nothing outside the process is asked.
#[utoipa::path(
    get,
    path = "/livez",
    operation_id = "livez",
    responses(
        (status = 200, description = "The server and its job worker run", body = Ready),
        (status = 503, description = "The job worker has stopped: restart the server"),
    )
)]
pub async fn livez(State(app): State<Arc<AppState>>) -> Result<Json<Ready>, ApiError> {
    if app.jobs.exited.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_alive",
            "后台任务线程已停止，请重启服务（the job worker has stopped: restart the server）",
        ));
    }
    Ok(Json(Ready {
        status: "alive".into(),
    }))
}

/// Whether the state database and the lake answer.
async fn ready(app: &Arc<AppState>) -> Result<Json<Ready>, ApiError> {
    // On a connection of its own (never behind the requests that write), off the async
    // threads, and not waited for beyond HEALTH_WAIT: a database that does not answer
    // makes the server not ready, never a hanging probe.
    let (dir, audit) = (app.config.state_dir.clone(), app.config.audit_files.clone());
    let ping = tokio::task::spawn_blocking(move || {
        crate::state::State::open_read_only(&dir, audit).and_then(|s| s.ping())
    });
    let db = match tokio::time::timeout(crate::server::app::HEALTH_WAIT, ping).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(hedui_connectors::idnum::mask_ids_in(&e.to_string()).into_owned()),
        Ok(Err(_)) => Err("the probe failed".to_owned()),
        Err(_) => Err(format!(
            "no answer within {} s",
            crate::server::app::HEALTH_WAIT.as_secs()
        )),
    };
    let lake = match &app.setup.sources {
        crate::sources::Opened::Lake { lake, .. } => lake.ping().await.is_ok(),
        crate::sources::Opened::Folder(..) => true,
    };
    if app.disk_full.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "disk_full",
            "状态数据库所在磁盘已满，暂不能受理（the state database's disk is full）",
        ));
    }
    let why = match (&db, lake) {
        (Ok(()), true) => {
            return Ok(Json(Ready {
                status: "ready".into(),
            }))
        }
        (Err(e), _) => {
            // The cause goes to the log: the probe is open to anyone.
            tracing::error!("healthz: the state database does not answer: {e}");
            format!(
                "状态数据库无法读取，请管理员查看服务日志（the state database does not answer; see the server log）{}",
                if lake { "" } else { "；数据湖也无法读取（the lake does not answer either）" }
            )
        }
        (Ok(()), false) => "数据湖无法读取，请检查其存储（the lake does not answer）".to_owned(),
    };
    Err(ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "not_ready",
        why,
    ))
}
