//! `GET /metrics` in the Prometheus text format: requests and latency histograms per
//! route and status, checks per verdict, and each source's snapshot age. Labels are
//! route patterns (`/api/v1/reconciliations/{id}/changes`), never values from a request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// What the server counts.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    verdicts: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    /// Counts one request of `route` answered with `status` after `secs`.
    pub fn request(&self, route: &str, status: u16, secs: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_owned()).or_default();
            for (i, b) in BUCKETS.iter().enumerate() {
                if secs <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// Counts one check's verdict.
    pub fn verdict(&self, verdict: &str) {
        if let Ok(mut v) = self.verdicts.lock() {
            *v.entry(verdict.to_owned()).or_default() += 1;
        }
    }

    /// The counters and histograms as Prometheus text.
    fn render(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "# HELP hedui_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE hedui_http_requests_total counter");
        if let Ok(r) = self.requests.lock() {
            for ((route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "hedui_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP hedui_http_request_duration_seconds Time to answer, by route."
        );
        let _ = writeln!(out, "# TYPE hedui_http_request_duration_seconds histogram");
        if let Ok(l) = self.latency.lock() {
            for (route, h) in l.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "hedui_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "hedui_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "hedui_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "hedui_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        let _ = writeln!(
            out,
            "# HELP hedui_checks_total Households checked through the API, by verdict."
        );
        let _ = writeln!(out, "# TYPE hedui_checks_total counter");
        if let Ok(v) = self.verdicts.lock() {
            for verdict in crate::output::summary::VERDICTS {
                let n = v.get(verdict).copied().unwrap_or(0);
                let _ = writeln!(out, "hedui_checks_total{{verdict=\"{verdict}\"}} {n}");
            }
        }
    }
}

/// Middleware counting every request by its route pattern and status.
pub async fn track(State(app): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let resp = next.run(req).await;
    app.metrics.request(
        &route,
        resp.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    resp
}

/// `GET /metrics`.
#[utoipa::path(
    get,
    path = "/metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"))
)]
pub async fn scrape(State(app): State<Arc<AppState>>) -> Response {
    let mut out = String::new();
    app.metrics.render(&mut out);
    let _ = writeln!(out, "# HELP hedui_source_snapshot_age_seconds Age of each source's current snapshot (since its pull).");
    let _ = writeln!(out, "# TYPE hedui_source_snapshot_age_seconds gauge");
    if let crate::sources::Opened::Lake { lake, .. } = &app.opened {
        for (source, _) in hedui_connectors::schema::sources() {
            if let Ok(Some(m)) = lake.snapshot_at(source, None).await {
                let age = (chrono::Utc::now() - m.pulled_at).num_milliseconds() as f64 / 1000.0;
                let _ = writeln!(
                    out,
                    "hedui_source_snapshot_age_seconds{{source=\"{source}\"}} {age}"
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
