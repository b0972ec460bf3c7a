//! `GET /metrics` (Prometheus text) and the middleware counting every request.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::server::app::AppState;
use crate::server::metrics::seconds;

/// Middleware counting every request by its route pattern and status.
pub async fn track(State(app): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().clone();
    let caller = crate::server::caller::CallerName::default();
    req.extensions_mut().insert(caller.clone());
    let started = Instant::now();
    let resp = next.run(req).await;
    let us = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
    app.metrics.request(&route, resp.status().as_u16(), us);
    if resp
        .extensions()
        .get::<crate::server::error::DiskWasFull>()
        .is_some()
    {
        app.disk_full
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    // One line per request: the route as declared (never the path, which may hold a
    // household id), who called, how it ended and how long it took.
    tracing::info!(
        method = %method,
        route = %route,
        status = resp.status().as_u16(),
        ms = us / 1000,
        token = %caller.get().unwrap_or("-"),
        "request"
    );
    resp
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain"))
)]
pub async fn scrape(State(app): State<Arc<AppState>>) -> Response {
    let mut out = String::new();
    app.metrics.render(&mut out);
    // Off the async threads, and not waited for long: a locked database leaves the job
    // gauges at 0 for one scrape rather than stalling it.
    let counts = tokio::time::timeout(
        crate::server::app::HEALTH_WAIT,
        app.db(|s| Ok(s.job_counts().ok())),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .flatten()
    .unwrap_or_default();
    let count = |status: &str| {
        counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, n)| *n)
    };
    let _ = writeln!(
        out,
        "# HELP hedui_state_disk_full 1 while requests are refused for a full disk (state folder or temporary folder), until a write to the state succeeds."
    );
    let _ = writeln!(out, "# TYPE hedui_state_disk_full gauge");
    let _ = writeln!(
        out,
        "hedui_state_disk_full {}",
        u8::from(app.disk_full.load(std::sync::atomic::Ordering::SeqCst))
    );
    let _ = writeln!(
        out,
        "# HELP hedui_job_queue_depth Jobs (batches, scheduled reconciliations) waiting to run."
    );
    let _ = writeln!(out, "# TYPE hedui_job_queue_depth gauge");
    let _ = writeln!(out, "hedui_job_queue_depth {}", count("queued"));
    let _ = writeln!(
        out,
        "# HELP hedui_job_queue_limit Jobs that may wait at most ([server] max_queued_jobs); beyond, uploads are refused."
    );
    let _ = writeln!(out, "# TYPE hedui_job_queue_limit gauge");
    let _ = writeln!(out, "hedui_job_queue_limit {}", app.config.max_queued_jobs);
    let _ = writeln!(
        out,
        "# HELP hedui_jobs Jobs kept in the state database, by status."
    );
    let _ = writeln!(out, "# TYPE hedui_jobs gauge");
    for status in ["queued", "running", "done", "failed"] {
        let _ = writeln!(out, "hedui_jobs{{status=\"{status}\"}} {}", count(status));
    }
    let _ = writeln!(out, "# HELP hedui_source_snapshot_age_seconds Age of each source's current snapshot (since its pull).");
    let _ = writeln!(out, "# TYPE hedui_source_snapshot_age_seconds gauge");
    if let crate::sources::Opened::Lake { lake, .. } = &app.setup.sources {
        for (source, _) in hedui_connectors::schema::sources() {
            if let Ok(Some(m)) = lake.snapshot_at(source, None).await {
                let age_us = (chrono::Utc::now() - m.pulled_at)
                    .num_microseconds()
                    .and_then(|u| u64::try_from(u).ok())
                    .unwrap_or(0);
                let _ = writeln!(
                    out,
                    "hedui_source_snapshot_age_seconds{{source=\"{source}\"}} {}",
                    seconds(age_us)
                );
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        out,
    )
        .into_response()
}
