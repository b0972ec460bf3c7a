//! Departments that misbehave (SPEC §9; issue "pulls that never end"): cursor cycles,
//! cursors that never end, pages past their limit or past max_page_mb, and `Retry-After:
//! 0` on a 5xx. Each pull must end, commit nothing, and say why; none may hammer the
//! department without a back-off.

mod support;

use support::deptsim::Fault;
use support::site::*;

/// The hr source's failure as `ingest` prints it.
fn failure(site: &Site, extra: &str) -> String {
    let cfg = site.token_config(extra);
    let out = hedui(&["ingest", "--config", &cfg]);
    assert_exit(&out, 1);
    assert_eq!(site.manifests(), 0, "nothing committed");
    text(&out)
}

/// A cursor handed out again (A → B → A) ends the pull: hedui never asks twice for a
/// page it has seen.
#[test]
fn a_cursor_cycle_ends_the_pull() {
    let site = Site::new(false, false);
    site.dept.inject([
        Fault::NextCursor("c3".into()),
        Fault::NextCursor("c6".into()),
        Fault::NextCursor("c3".into()),
    ]);
    let all = failure(&site, "");
    assert!(
        all.contains("page 3: the department returned a cursor it had returned before"),
        "{all}"
    );
    assert_eq!(site.dept.log().len(), 3, "no page is asked for twice");
}

/// A department that hands out new cursors forever is stopped by pull_deadline_s.
#[test]
fn endless_cursors_meet_the_deadline() {
    let site = Site::new(false, false);
    site.dept.always(Some(Fault::EndlessCursors));
    let all = failure(&site, "pull_deadline_s = 2");
    assert!(
        all.contains("the pull took longer than 2 s (pull_deadline_s)"),
        "{all}"
    );
}

/// A page with more records than the `limit` asked for is refused, named.
#[test]
fn an_over_long_page_is_refused() {
    let site = Site::new(false, false);
    site.dept.inject([Fault::None, Fault::ExtraRecord]);
    let all = failure(&site, "");
    assert!(
        all.contains("page 2: the department returned 4 records for limit=3"),
        "{all}"
    );
}

/// A page larger than max_page_mb is refused before it is held, and not retried.
#[test]
fn a_page_past_max_page_mb_is_refused() {
    let site = Site::new(false, false);
    site.dept.always(Some(Fault::Padded(3 * 1024 * 1024)));
    let all = failure(&site, "max_page_mb = 1\nmax_retries = 3");
    assert!(
        all.contains("the answer is larger than 1 MiB (max_page_mb)"),
        "{all}"
    );
    assert_eq!(
        site.dept.log().len(),
        1,
        "a page too large is not asked again"
    );
}

/// `Retry-After: 0` on a 503 does not remove the back-off: each retry waits at least the
/// back-off floor (half of 200 ms, then 400 ms, … with jitter) — read from the wait each
/// retry announces, not from the clock.
#[test]
fn retry_after_zero_keeps_the_back_off() {
    let site = Site::new(false, false);
    site.dept.always(Some(Fault::StatusRetryAfter(503, 0)));
    let cfg = site.token_config("max_retries = 3");
    let out = hedui_env(
        &[("HEDUI_LOG", "hedui=warn")],
        &["ingest", "--config", &cfg],
    );
    assert_exit(&out, 1);
    let all = text(&out);
    assert!(all.contains("gave up after 4 attempts"), "{all}");
    assert_eq!(site.dept.log().len(), 4);
    let waits: Vec<u64> = all
        .lines()
        .filter(|l| l.contains("retrying"))
        .filter_map(|l| l.split("wait_ms=").nth(1)?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(waits.len(), 3, "one announced wait per retry:\n{all}");
    for (i, ms) in waits.iter().enumerate() {
        let floor = 100u64 << i;
        assert!(
            *ms >= floor,
            "retry {} waited {ms} ms, under {floor} ms",
            i + 1
        );
    }
}
