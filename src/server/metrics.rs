//! `GET /metrics` in the Prometheus text format: requests and latency histograms per
//! route and status, checks per verdict, and each source's snapshot age. Labels are
//! route patterns (`/api/v1/reconciliations/{id}/changes`), never values from a request.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

/// Upper bounds of the latency buckets, microseconds (durations are kept as whole
/// microseconds and printed as seconds: no binary floats anywhere in hedui).
const BUCKETS_US: [u64; 12] = [
    1_000, 2_500, 5_000, 10_000, 20_000, 50_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000,
    10_000_000,
];

/// Microseconds as seconds with six fraction digits (`0.002500`).
pub(crate) fn seconds(us: u64) -> String {
    format!("{}.{:06}", us / 1_000_000, us % 1_000_000)
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS_US.len()],
    count: u64,
    sum_us: u64,
}

/// What the server counts.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    verdicts: Mutex<BTreeMap<String, u64>>,
    /// Per token: people checked (first time of their day), requests refused by the
    /// daily bound.
    people: Mutex<BTreeMap<String, (u64, u64)>>,
    /// Per source: the server's pulls that committed, that failed, and whether the last
    /// one failed.
    pulls: Mutex<BTreeMap<String, (u64, u64, bool)>>,
    /// The server's last verification of the audit chain: when (unix seconds) and
    /// whether it held.
    audit: Mutex<Option<(i64, bool)>>,
}

impl Metrics {
    /// Counts one request of `route` answered with `status` after `us` microseconds.
    pub fn request(&self, route: &str, status: u16, us: u64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((route.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry(route.to_owned()).or_default();
            for (i, b) in BUCKETS_US.iter().enumerate() {
                if us <= *b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum_us = h.sum_us.saturating_add(us);
        }
    }

    /// Counts one check's verdict.
    pub fn verdict(&self, verdict: &str) {
        self.verdicts(verdict, 1);
    }

    /// Counts `n` households decided `verdict` (a batch, a reconciliation).
    pub fn verdicts(&self, verdict: &str, n: u64) {
        if let Ok(mut v) = self.verdicts.lock() {
            *v.entry(verdict.to_owned()).or_default() += n;
        }
    }

    /// Counts one pull of `source` by the server's night: committed (`ok`) or failed.
    pub fn pulled(&self, source: &str, ok: bool) {
        if let Ok(mut p) = self.pulls.lock() {
            let e = p.entry(source.to_owned()).or_default();
            if ok {
                e.0 += 1;
            } else {
                e.1 += 1;
            }
            e.2 = !ok;
        }
    }

    /// Records a verification of the audit chain at `at` (unix seconds): intact or not.
    pub fn audit_verified(&self, at: i64, intact: bool) {
        if let Ok(mut a) = self.audit.lock() {
            *a = Some((at, intact));
        }
    }

    /// Counts `added` people newly checked today by `token`.
    pub fn people(&self, token: &str, added: usize) {
        if let Ok(mut p) = self.people.lock() {
            p.entry(token.to_owned()).or_default().0 += added as u64;
        }
    }

    /// Counts a request of `token` refused by its daily bound.
    pub fn people_refused(&self, token: &str) {
        if let Ok(mut p) = self.people.lock() {
            p.entry(token.to_owned()).or_default().1 += 1;
        }
    }

    /// The counters and histograms as Prometheus text.
    pub fn render(&self, out: &mut String) {
        if let Ok(Some((at, intact))) = self.audit.lock().map(|a| *a) {
            let _ = writeln!(
                out,
                "# HELP hedui_audit_last_verified_timestamp_seconds When the server last verified the whole audit chain (at start, then every six hours)."
            );
            let _ = writeln!(
                out,
                "# TYPE hedui_audit_last_verified_timestamp_seconds gauge"
            );
            let _ = writeln!(out, "hedui_audit_last_verified_timestamp_seconds {at}");
            let _ = writeln!(
                out,
                "# HELP hedui_audit_chain_intact 1 if that verification found the chain intact and its end at the anchor, 0 if not."
            );
            let _ = writeln!(out, "# TYPE hedui_audit_chain_intact gauge");
            let _ = writeln!(out, "hedui_audit_chain_intact {}", u8::from(intact));
        }
        if let Ok(p) = self.pulls.lock() {
            let _ = writeln!(
                out,
                "# HELP hedui_source_pulls_total The server's pulls of each source (its night), by outcome."
            );
            let _ = writeln!(out, "# TYPE hedui_source_pulls_total counter");
            for (source, (ok, failed, _)) in p.iter() {
                let _ = writeln!(
                    out,
                    "hedui_source_pulls_total{{source=\"{source}\",outcome=\"committed\"}} {ok}"
                );
                let _ = writeln!(
                    out,
                    "hedui_source_pulls_total{{source=\"{source}\",outcome=\"failed\"}} {failed}"
                );
            }
            let _ = writeln!(
                out,
                "# HELP hedui_source_last_pull_failed 1 while the server's last pull of the source failed (its previous snapshot stays current)."
            );
            let _ = writeln!(out, "# TYPE hedui_source_last_pull_failed gauge");
            for (source, (_, _, last_failed)) in p.iter() {
                let _ = writeln!(
                    out,
                    "hedui_source_last_pull_failed{{source=\"{source}\"}} {}",
                    u8::from(*last_failed)
                );
            }
        }
        if let Ok(p) = self.people.lock() {
            let _ = writeln!(
                out,
                "# HELP hedui_people_checked_total People checked by token (each once a day), API and batches."
            );
            let _ = writeln!(out, "# TYPE hedui_people_checked_total counter");
            for (token, (n, _)) in p.iter() {
                let _ = writeln!(out, "hedui_people_checked_total{{token=\"{token}\"}} {n}");
            }
            let _ = writeln!(
                out,
                "# HELP hedui_people_refused_total Requests refused by the token's max_people_per_day."
            );
            let _ = writeln!(out, "# TYPE hedui_people_refused_total counter");
            for (token, (_, n)) in p.iter() {
                let _ = writeln!(out, "hedui_people_refused_total{{token=\"{token}\"}} {n}");
            }
        }
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
                for (i, b) in BUCKETS_US.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "hedui_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{}\"}} {}",
                        seconds(*b),
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
                    seconds(h.sum_us)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations are counted in whole microseconds and printed as exact seconds, each
    /// in every bucket at or above it.
    #[test]
    fn histograms_in_exact_seconds() {
        assert_eq!(seconds(2_500), "0.002500");
        assert_eq!(seconds(10_000_000), "10.000000");
        let m = Metrics::default();
        m.request("/healthz", 200, 3_000);
        m.request("/healthz", 200, 40_000);
        let mut out = String::new();
        m.render(&mut out);
        for line in [
            "hedui_http_requests_total{route=\"/healthz\",status=\"200\"} 2",
            "hedui_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.002500\"} 0",
            "hedui_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.005000\"} 1",
            "hedui_http_request_duration_seconds_bucket{route=\"/healthz\",le=\"0.050000\"} 2",
            "hedui_http_request_duration_seconds_sum{route=\"/healthz\"} 0.043000",
            "hedui_http_request_duration_seconds_count{route=\"/healthz\"} 2",
        ] {
            assert!(out.contains(line), "{line}\n{out}");
        }
    }
}
