//! `hedui serve` over real TLS on loopback (a certificate made at test time), called as a
//! case-management system would with reqwest: one household through the API equals that
//! household's line of `check --lake` on the same snapshots, for every household of a
//! small generated city; tokens, roles and regions are enforced; errors are JSON with
//! the right status; every check lands in the audit log; SIGTERM stops the server.

mod support;

use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::server::*;
use support::{lines, ok};

/// What the API answers for a household the batch answered `batch` for:
/// member_in_multiple_households is a batch rule, not on the API; a household under
/// review for it alone is eligible when asked about by itself.
fn asked_alone(batch: &Value) -> Value {
    let mut want = batch.clone();
    let flags = want["flags"].as_array_mut().unwrap();
    let before = flags.len();
    flags.retain(|f| f["rule"] != "member_in_multiple_households");
    if flags.len() < before && flags.is_empty() && want["verdict"] == "review" {
        want["verdict"] = json!("eligible");
    }
    want
}

async fn post(c: &reqwest::Client, s: &Server, token: Option<&str>, body: &Value) -> (u16, Value) {
    let mut req = c.post(format!("{}/api/v1/checks", s.url)).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let v = resp.json::<Value>().await.unwrap_or(Value::Null);
    (status, v)
}

/// Every household of the city through the API equals its line of `check --lake` on the
/// same snapshots; tokens, roles and regions decide who may ask; errors are JSON; each
/// check is audited; SIGTERM stops the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_checks_equal_the_batch_and_enforce_access() {
    // A city where every rule and every verdict occurs (the verdict incomplete on a
    // back-dated check, below).
    let site = Site::with_city(3000, 300, 11);
    // The batch reads the lake's tables whole (narrowing off); the API reads only the
    // household's rows: the answers must be the same.
    let expected = check_lake(&site, "city/applicants.csv", "batch");
    let server = site.serve();
    let c = client(&server);

    let health = c
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);

    let all = bodies(&site);
    assert!(all.len() > 30);
    let manifests: Vec<Value> = ["hr", "housing", "police", "tax", "bank", "fund"]
        .iter()
        .map(|s| {
            let dir = site.dir.path().join(format!("lake/sources/{s}/manifests"));
            let latest = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().path())
                .max()
                .unwrap();
            serde_json::from_slice(&std::fs::read(latest).unwrap()).unwrap()
        })
        .collect();
    // Asked 12 at a time, as a case system's connections would: households waiting
    // together are checked in shared runs, each must still get its own answer.
    use futures::StreamExt;
    let answers: Vec<(u16, Value)> = futures::stream::iter(&all)
        .map(|(_, body)| post(&c, &server, Some(ADMIN), body))
        .buffered(12)
        .collect()
        .await;
    let shared_runs = server
        .log
        .lock()
        .unwrap()
        .lines()
        .filter_map(|l| l.split_once("checks: one run of ").map(|(_, n)| n))
        .filter_map(|n| n.split(' ').next()?.parse::<usize>().ok())
        .filter(|n| *n > 1)
        .count();
    assert!(shared_runs > 0, "no run checked several households");
    let mut seen_rules = std::collections::BTreeSet::new();
    let mut seen_verdicts = std::collections::BTreeSet::new();
    for ((hid, _), (status, mut got)) in all.iter().zip(answers) {
        assert_eq!(status, 200, "{hid}: {got}");
        // The answer names the snapshot of each source it rests on: the current ones.
        let snaps = got
            .as_object_mut()
            .unwrap()
            .remove("snapshots")
            .unwrap_or_else(|| panic!("{hid}: no snapshots"));
        for m in &manifests {
            let s = m["source"].as_str().unwrap();
            assert_eq!(
                snaps[s]["snapshot_id"], m["snapshot_id"],
                "{hid} {s}: {snaps}"
            );
            assert_eq!(snaps[s]["seq"], m["seq"], "{hid} {s}");
        }
        assert_eq!(got, asked_alone(&expected[hid]), "{hid}");
        seen_rules.extend(
            got["flags"]
                .as_array()
                .unwrap()
                .iter()
                .map(|f| f["rule"].as_str().unwrap().to_owned()),
        );
        seen_verdicts.insert(got["verdict"].as_str().unwrap().to_owned());
    }
    // Checked back-dated (within max_backdate_days), households whose departments'
    // records do not reach back that far are incomplete, by the API as by the batch.
    let past = (chrono::Local::now().date_naive() - chrono::Duration::days(200)).to_string();
    let expected_past = check_lake_on(&site, "city/applicants.csv", "past", &past);
    let some: Vec<&(String, Value)> = all.iter().take(40).collect();
    for (hid, body) in &some {
        let mut body = body.clone();
        body["as_of"] = json!(past);
        let (status, mut got) = post(&c, &server, Some(ADMIN), &body).await;
        assert_eq!(status, 200, "{hid}: {got}");
        got.as_object_mut().unwrap().remove("snapshots");
        assert_eq!(
            got,
            asked_alone(&expected_past[hid.as_str()]),
            "{hid} on {past}"
        );
        seen_verdicts.insert(got["verdict"].as_str().unwrap().to_owned());
    }
    let rules: std::collections::BTreeSet<&str> = seen_rules.iter().map(String::as_str).collect();
    assert_eq!(
        rules.into_iter().collect::<Vec<_>>(),
        [
            "commercial_property",
            "financial_assets_over_limit",
            "identity_not_found",
            "income_over_limit",
            "member_deceased",
            "name_mismatch",
            "residential_area_over_limit",
            "residential_properties_over_limit",
            "undeclared_employment",
            "vehicle_owned",
        ],
        "every rule the API applies occurs in the city"
    );
    assert_eq!(
        seen_verdicts.iter().map(String::as_str).collect::<Vec<_>>(),
        ["eligible", "incomplete", "ineligible", "review"]
    );

    let (hid, body) = all
        .iter()
        .find(|(_, b)| b["region_code"].as_str().unwrap().starts_with("4101"))
        .unwrap();
    // No token, an unknown one: 401.
    assert_eq!(post(&c, &server, None, body).await.0, 401);
    let (status, err) = post(&c, &server, Some("not-a-token"), body).await;
    assert_eq!((status, err["error"].as_str()), (401, Some("unauthorized")));
    // The auditor runs no check; a token for another region may not look: 403.
    assert_eq!(post(&c, &server, Some(AUDITOR), body).await.0, 403);
    let (status, err) = post(&c, &server, Some(SYSTEM_5120), body).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (403, Some("forbidden")),
        "{err}"
    );
    // Staff of the region see the result with ID numbers masked.
    let (status, staff) = post(&c, &server, Some(STAFF_4101), body).await;
    assert_eq!(status, 200, "{staff}");
    assert_eq!(staff["household_id"].as_str(), Some(hid.as_str()));
    let text = staff.to_string();
    for m in body["members"].as_array().unwrap() {
        assert!(
            !text.contains(m["id_number"].as_str().unwrap()),
            "staff see masked IDs"
        );
    }
    // A household with a bad ID number: 422 with the §3 reason code.
    let mut bad = body.clone();
    bad["members"][0]["id_number"] = json!("410184199001011230");
    let (status, err) = post(&c, &server, Some(ADMIN), &bad).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("invalid_id_number")),
        "{err}"
    );
    assert_eq!(err["rejections"][0]["field"], "id_number");
    // Not JSON: 400; larger than max_body_mb: 413 — both as JSON.
    let resp = c
        .post(format!("{}/api/v1/checks", server.url))
        .bearer_auth(ADMIN)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "bad_request");
    // The audit log over the API: auditors (and admins) only, their regions only.
    let get = |token: &str, query: &str| {
        c.get(format!("{}/api/v1/audit{query}", server.url))
            .bearer_auth(token)
            .send()
    };
    assert_eq!(get(STAFF_4101, "").await.unwrap().status().as_u16(), 403);
    let log: Value = get(AUDITOR, "").await.unwrap().json().await.unwrap();
    let entries = log["entries"].as_array().unwrap();
    assert!(!entries.is_empty());
    for e in entries {
        assert_eq!(e["kind"], "api");
        // Checked in shared runs or not, an API entry names its own household only.
        assert_eq!(e["households"].as_array().unwrap().len(), 1, "{e}");
        for h in e["households"].as_array().unwrap() {
            assert!(h["region_code"].as_str().unwrap().starts_with("41"), "{h}");
        }
    }
    let narrow: Value = get(AUDITOR, "?region=410184&from=2020-01-01")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for e in narrow["entries"].as_array().unwrap() {
        for h in e["households"].as_array().unwrap() {
            assert_eq!(h["region_code"], "410184");
        }
    }
    assert!(narrow["entries"].as_array().unwrap().len() < entries.len());
    let later: Value = get(AUDITOR, "?from=2999-01-01")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(later["entries"], json!([]));
    assert_eq!(
        get(AUDITOR, "?from=yesterday")
            .await
            .unwrap()
            .status()
            .as_u16(),
        400
    );

    // (Last: the server does not read an oversized body, so it closes that connection.)
    let resp = c
        .post(format!("{}/api/v1/checks", server.url))
        .bearer_auth(ADMIN)
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "body_too_large"
    );

    // SIGTERM: the server stops; every API check is in the audit log, which verifies.
    let mut server = server;
    let pid = server.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    assert!(server.child.wait().unwrap().success());
    let out = hedui(&["audit", "verify", "--config", &site.p("hedui.toml")]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    // The parity checks, the staff check (and no entry for refused or invalid requests).
    let n = all.len() + some.len() + 1;
    assert!(said.contains(&format!(": {n} entries")), "{said}");

    // The server's logs (debug level, every request above) hold no ID number and no
    // token (read once its last line is in).
    wait_log(&server, "hedui: stopped").await;
    let log = server.log.lock().unwrap().clone();
    assert!(log.contains("hedui: stopped"), "{log}");
    for (_, body) in &all {
        for m in body["members"].as_array().unwrap() {
            let id = m["id_number"].as_str().unwrap();
            assert!(
                !log.contains(id) && !log.contains(&id[..17]),
                "an ID number in the log"
            );
        }
    }
    for t in [ADMIN, STAFF_4101, SYSTEM_5120, AUDITOR, "not-a-token"] {
        assert!(!log.contains(t), "a token in the log");
    }
}

/// Beyond `requests_per_minute`, a token gets 429 with Retry-After; another token is not
/// affected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_rate_get_429() {
    let site = Site::new();
    let cfg = std::fs::read_to_string(site.dir.path().join("hedui.toml")).unwrap();
    std::fs::write(
        site.dir.path().join("hedui.toml"),
        cfg.replace(
            "max_body_mb = 1\n",
            "max_body_mb = 1\nrequests_per_minute = 2\n",
        ),
    )
    .unwrap();
    let server = site.serve();
    let c = client(&server);
    let body = json!({});
    // Refused requests count too: the limit protects the server, not the answer.
    // (A body without a region is refused: 422, region_code missing.)
    assert_eq!(post(&c, &server, Some(SYSTEM_5120), &body).await.0, 422);
    assert_eq!(post(&c, &server, Some(SYSTEM_5120), &body).await.0, 422);
    let resp = c
        .post(format!("{}/api/v1/checks", server.url))
        .bearer_auth(SYSTEM_5120)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    let wait: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait));
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "too_many_requests"
    );
    assert_eq!(post(&c, &server, Some(ADMIN), &body).await.0, 422);
}

/// A TLS stream to the server of `s`, trusting its test certificate.
async fn tls_stream(s: &Server) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&s.cert).unwrap();
    for c in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(c.unwrap()).unwrap();
    }
    let cfg = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
        .connect("127.0.0.1".try_into().unwrap(), tcp)
        .await
        .unwrap()
}

/// Everything `io` sends until it closes, or `None` if it is still open after `within`.
async fn until_closed<R: tokio::io::AsyncRead + Unpin>(
    io: &mut R,
    within: std::time::Duration,
) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    match tokio::time::timeout(within, io.read_to_end(&mut got)).await {
        Ok(_) => Some(String::from_utf8_lossy(&got).into_owned()),
        Err(_) => None,
    }
}

/// One client address cannot hold every connection (`max_connections_per_ip`, 3 here):
/// its next connection is closed as it arrives, while another address is answered —
/// idle sockets from one host no longer take the server down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_holds_only_its_share_of_connections() {
    let site = Site::new();
    site.config_variant("share.toml", "max_connections_per_ip = 3\n", "");
    let s = site.serve_with("share.toml", &[]);
    let server: std::net::SocketAddr = s.addr().parse().unwrap();
    let from = |ip: [u8; 4]| async move {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(std::net::SocketAddr::from((ip, 0))).unwrap();
        sock.connect(server).await.unwrap()
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(from([127, 0, 0, 2]).await);
    }
    let mut fourth = from([127, 0, 0, 2]).await;
    // Closed at once (the others would be kept for header_timeout_s, 10 s).
    let closed = until_closed(&mut fourth, std::time::Duration::from_secs(5)).await;
    assert_eq!(
        closed.as_deref(),
        Some(""),
        "a fourth connection of one address was kept"
    );
    let c = client(&s);
    let health = c.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "another address is served");
    drop(held);
}

/// Clients that connect and stall hold nothing (`header_timeout_s`, `body_idle_timeout_s`
/// at 1 s here): a TCP connection that never starts TLS, a request head sent by half, a
/// body that stops halfway (408, JSON) and an idle kept-alive connection are all closed
/// by the server, and the server answers others meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_clients_are_cut_off() {
    use tokio::io::AsyncWriteExt;
    let site = Site::new();
    site.config_variant(
        "slow.toml",
        "header_timeout_s = 1\nbody_idle_timeout_s = 1\n",
        "",
    );
    let s = site.serve_with("slow.toml", &[]);
    // Far longer than the timeouts: a server that never closes fails the test here.
    let patience = std::time::Duration::from_secs(20);

    let mut silent = tokio::net::TcpStream::connect(s.addr()).await.unwrap();
    assert!(
        until_closed(&mut silent, patience).await.is_some(),
        "a connection that never started its TLS handshake was kept open"
    );

    let mut half = tls_stream(&s).await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        .await
        .unwrap();
    half.flush().await.unwrap();
    assert!(
        until_closed(&mut half, patience).await.is_some(),
        "a connection with half a request head was kept open"
    );

    let mut stalled = tls_stream(&s).await;
    let head = format!(
        "POST /api/v1/checks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {ADMIN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"household_id\": "
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.flush().await.unwrap();
    let answer = until_closed(&mut stalled, patience)
        .await
        .expect("a body that stopped halfway was waited for");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"body_timeout\""), "{answer}");
    assert!(answer.contains("请求体传输中断或过慢"), "{answer}");

    let mut idle = tls_stream(&s).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    idle.flush().await.unwrap();
    let answer = until_closed(&mut idle, patience)
        .await
        .expect("an idle kept-alive connection was kept open");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    let c = client(&s);
    let health = c.get(format!("{}/healthz", s.url)).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);
    // Each request is one log line: route, status, who.
    wait_log(&s, "request method=POST route=/api/v1/checks status=408").await;
    let log = s.log.lock().unwrap().clone();
    assert!(log.contains("token=admin"), "{log}");
}

/// The state database is used off the async threads: while another process holds its
/// write lock, the checks (which must append to the audit log) wait for it, and the
/// rest of the server answers meanwhile — the OpenAPI document, `/healthz`; once the
/// lock is released the waiting checks are answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_state_database_stalls_only_what_needs_it() {
    let site = Site::new();
    let s = site.serve();
    let c = client(&s);
    let db = rusqlite::Connection::open(site.dir.path().join("state/hedui.db")).unwrap();
    db.execute_batch("BEGIN IMMEDIATE").unwrap();
    let waiting: Vec<_> = bodies(&site)
        .into_iter()
        .take(4)
        .map(|(_, body)| {
            let (c, url) = (c.clone(), s.url.clone());
            tokio::spawn(async move {
                c.post(format!("{url}/api/v1/checks"))
                    .bearer_auth(ADMIN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            })
        })
        .collect();
    // No signal says the checks reached the database: they are given a moment to.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let patience = std::time::Duration::from_secs(15);
    for path in ["/api/v1/openapi.json", "/healthz"] {
        let resp = tokio::time::timeout(patience, c.get(format!("{}{path}", s.url)).send())
            .await
            .unwrap_or_else(|_| panic!("{path} waited for the locked database"))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{path}");
    }
    db.execute_batch("COMMIT").unwrap();
    for w in waiting {
        assert_eq!(w.await.unwrap(), 200);
    }
}

/// An ID number a clerk typed as the household id is masked in the staff's answer and
/// in the server's log, and stored hashed in the audit log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_number_typed_as_household_id_is_never_shown_in_full() {
    let site = Site::new();
    let s = site.serve();
    let c = client(&s);
    let (_, mut body) = bodies(&site)
        .into_iter()
        .find(|(_, b)| b["region_code"].as_str().unwrap().starts_with("4101"))
        .unwrap();
    let id = body["members"][0]["id_number"].as_str().unwrap().to_owned();
    body["household_id"] = Value::from(id.clone());
    let (status, v) = post(&c, &s, Some(STAFF_4101), &body).await;
    assert_eq!(status, 200, "{v}");
    let shown = v["household_id"].as_str().unwrap();
    assert!(shown.contains('*') && !shown.contains(&id), "{shown}");
    wait_log(&s, "request method=POST route=/api/v1/checks status=200").await;
    assert!(
        !s.log.lock().unwrap().contains(&id),
        "the full ID in the log"
    );
    let audit: Value = get_as(&c, &s, AUDITOR, "/api/v1/audit")
        .await
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    assert!(!text.contains(&id), "the full ID in the audit log");
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["households"].as_array().unwrap())
            .any(|h| h["household_id"].as_str().unwrap().starts_with('#')),
        "{audit}"
    );
}

/// The contract's small print: a route asked with another method is 405 in JSON; the
/// `Bearer` scheme is read in any case; a check without a region is 422, not 403; every
/// answer carries `nosniff` and `no-store`; requests without a valid token share one rate;
/// `/healthz` and `/readyz` fail on a state database that is not one while `/livez`
/// still answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_small_print_of_the_api() {
    let site = Site::new();
    site.config_variant("small.toml", "requests_per_minute = 3\n", "");
    let s = site.serve_with("small.toml", &[]);
    let c = client(&s);
    let resp = c
        .get(format!("{}/api/v1/checks", s.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 405);
    assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
    assert_eq!(resp.headers()["cache-control"], "no-store");
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "method_not_allowed"
    );
    let (_, mut body) = bodies(&site).into_iter().next().unwrap();
    body.as_object_mut().unwrap().remove("region_code");
    let resp = c
        .post(format!("{}/api/v1/checks", s.url))
        .header("authorization", format!("bearer {ADMIN}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    assert_eq!(
        resp.json::<Value>().await.unwrap()["error"],
        "missing_field"
    );
    // Three token-less requests a minute, then 429 for the fourth.
    for _ in 0..3 {
        let (status, _) = post(&c, &s, None, &body).await;
        assert_eq!(status, 401);
    }
    let (status, v) = post(&c, &s, None, &body).await;
    assert_eq!(status, 429, "{v}");
    let (status, _) = post(&c, &s, Some("wrong-token"), &body).await;
    assert_eq!(status, 429);
    // A state database whose file is no longer a database makes the server not ready,
    // in words and without its path (the probe is open to anyone); mended, ready again.
    let healthz = || async {
        let resp = c.get(format!("{}/healthz", s.url)).send().await.unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(healthz().await.0, 200);
    let db = site.dir.path().join("state/hedui.db");
    let head = {
        use std::io::Read;
        let mut b = [0u8; 100];
        std::fs::File::open(&db)
            .unwrap()
            .read_exact(&mut b)
            .unwrap();
        b
    };
    let write_head = |bytes: &[u8]| {
        use std::io::{Seek, Write};
        let mut f = std::fs::OpenOptions::new().write(true).open(&db).unwrap();
        f.seek(std::io::SeekFrom::Start(0)).unwrap();
        f.write_all(bytes).unwrap();
        f.sync_all().unwrap();
    };
    write_head(&[0x5a; 100]);
    let (status, v) = healthz().await;
    // Not ready — but alive: a restart would not mend the file, so the liveness probe
    // asks nothing outside the process; `/readyz` says what `/healthz` says.
    let probe = |path: &'static str| {
        let c = c.clone();
        let url = format!("{}{path}", s.url);
        async move {
            let resp = c.get(url).send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (live, lv) = probe("/livez").await;
    let (ready, _) = probe("/readyz").await;
    write_head(&head);
    assert_eq!((live, lv["status"].as_str()), (200, Some("alive")), "{lv}");
    assert_eq!(ready, 503);
    assert_eq!(
        (status, v["error"].as_str()),
        (503, Some("not_ready")),
        "{v}"
    );
    let message = v["message"].as_str().unwrap();
    assert!(message.starts_with("状态数据库无法读取"), "{message}");
    assert!(
        !message.contains("hedui.db") && !message.contains('/'),
        "{message}"
    );
    assert_eq!(healthz().await.0, 200);
}

/// Follows `path`'s pages of `limit` (items under `key`) to the end: every item once.
async fn all_pages(
    c: &reqwest::Client,
    s: &Server,
    token: &str,
    path: &str,
    key: &str,
    limit: usize,
) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let mut url = format!("{path}{sep}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let v: Value = get_as(c, s, token, &url).await.json().await.unwrap();
        let page = v[key].as_array().unwrap_or_else(|| panic!("{v}"));
        assert!(page.len() <= limit, "{path}: {} items", page.len());
        items.extend(page.iter().cloned());
        match v["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
    panic!("{path}: the pages never end");
}

/// Every list is read a page at a time (`limit` ≤ 1,000, `cursor`): following the
/// cursors gives every item exactly once, in the list's order; a limit outside 1–1000
/// or a cursor the server did not give is 400. `GET /api/v1/batches` lists the caller's
/// batches, newest first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_are_paginated() {
    let site = Site::new();
    site.reconcile();
    let s = site.serve();
    let c = client(&s);
    let ids = |items: &[Value], key: &str| -> Vec<String> {
        items
            .iter()
            .map(|i| {
                i[key]
                    .as_str()
                    .map_or_else(|| i[key].to_string(), str::to_owned)
            })
            .collect()
    };
    let paged = all_pages(
        &c,
        &s,
        ADMIN,
        "/api/v1/reconciliations/1/changes",
        "changes",
        7,
    )
    .await;
    let whole: Value = get_as(
        &c,
        &s,
        ADMIN,
        "/api/v1/reconciliations/1/changes?limit=1000",
    )
    .await
    .json()
    .await
    .unwrap();
    let whole = whole["changes"].as_array().unwrap();
    assert!(whole.len() > 20, "{} changes", whole.len());
    assert_eq!(ids(&paged, "household_id"), ids(whole, "household_id"));
    let runs = all_pages(
        &c,
        &s,
        ADMIN,
        "/api/v1/reconciliations",
        "reconciliations",
        1,
    )
    .await;
    assert_eq!(runs.len(), 1);
    for (_, body) in bodies(&site).into_iter().take(5) {
        assert_eq!(post(&c, &s, Some(ADMIN), &body).await.0, 200);
    }
    let whole: Value = get_as(&c, &s, AUDITOR, "/api/v1/audit?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let paged = all_pages(&c, &s, AUDITOR, "/api/v1/audit", "entries", 2).await;
    assert_eq!(
        ids(&paged, "seq"),
        ids(whole["entries"].as_array().unwrap(), "seq")
    );
    assert!(paged.len() >= 6, "{} entries", paged.len());
    let zz = rows_of(&site, &["4101"]);
    let mut submitted = Vec::new();
    for name in ["a.csv", "b.csv", "c.csv"] {
        let (status, v) = submit(&c, &s, STAFF_4101, "text/csv", name, zz.clone()).await;
        assert_eq!(status, 202, "{v}");
        submitted.push(v["batch_id"].as_str().unwrap().to_owned());
    }
    submitted.reverse();
    let listed = all_pages(&c, &s, STAFF_4101, "/api/v1/batches", "batches", 2).await;
    assert_eq!(ids(&listed, "batch_id"), submitted, "newest first");
    // Another region's token sees none of them.
    let theirs = all_pages(&c, &s, SYSTEM_5120, "/api/v1/batches", "batches", 2).await;
    assert!(theirs.is_empty(), "{theirs:?}");
    // A batch of two regions (4101 and 5120) is an admin's: a token of either region
    // alone neither lists it nor reads it (404, as one that does not exist).
    let (status, v) = submit(
        &c,
        &s,
        ADMIN,
        "text/csv",
        "mixed.csv",
        rows_of(&site, &["4101", "5120"]),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    let mixed = v["batch_id"].as_str().unwrap().to_owned();
    for token in [STAFF_4101, SYSTEM_5120] {
        let listed = all_pages(&c, &s, token, "/api/v1/batches", "batches", 100).await;
        assert!(!ids(&listed, "batch_id").contains(&mixed));
        for path in ["", "/results", "/rejected", "/report"] {
            let resp = get_as(&c, &s, token, &format!("/api/v1/batches/{mixed}{path}")).await;
            assert_eq!(resp.status().as_u16(), 404, "{path}");
        }
    }
    let resp = get_as(&c, &s, ADMIN, &format!("/api/v1/batches/{mixed}")).await;
    assert_eq!(resp.status().as_u16(), 200);
    for bad in ["limit=0", "limit=1001", "cursor=zz", "cursor=-3"] {
        for path in [
            "/api/v1/audit",
            "/api/v1/batches",
            "/api/v1/reconciliations/1/changes",
        ] {
            let token = if path.contains("audit") {
                AUDITOR
            } else {
                ADMIN
            };
            let resp = get_as(&c, &s, token, &format!("{path}?{bad}")).await;
            assert_eq!(resp.status().as_u16(), 400, "{path}?{bad}");
        }
    }
}

/// A token draws at most `max_people_per_day` people's records a day, API checks and
/// batches together: the same people again cost nothing, more is 429 in words (audited,
/// counted in /metrics).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_checks_a_bounded_number_of_people_a_day() {
    let site = Site::new();
    let mut households = bodies(&site)
        .into_iter()
        .filter(|(_, b)| b["region_code"].as_str().unwrap().starts_with("41"));
    let (_, first) = households.next().unwrap();
    let (_, second) = households.next().unwrap();
    let cap = first["members"].as_array().unwrap().len();
    const CAPPED: &str = "capped-token-0001";
    site.config_variant(
        "people.toml",
        "",
        &format!(
            "[[token]]\nname = \"capped\"\nsha256 = \"{}\"\nrole = \"staff\"\nregions = [\"41\"]\nmax_people_per_day = {cap}\n",
            sha256_hex(CAPPED)
        ),
    );
    let s = site.serve_with("people.toml", &[]);
    let c = client(&s);
    assert_eq!(post(&c, &s, Some(CAPPED), &first).await.0, 200);
    assert_eq!(
        post(&c, &s, Some(CAPPED), &first).await.0,
        200,
        "the same people again"
    );
    let resp = c
        .post(format!("{}/api/v1/checks", s.url))
        .bearer_auth(CAPPED)
        .json(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"], "too_many_people", "{v}");
    assert!(
        v["message"].as_str().unwrap().contains("超过每日上限"),
        "{v}"
    );
    let resp = c
        .post(format!("{}/api/v1/batches", s.url))
        .header("content-type", "text/csv")
        .bearer_auth(CAPPED)
        .body(rows_of(&site, &["4101"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429, "a batch counts too");
    // Another token is not affected.
    assert_eq!(post(&c, &s, Some(ADMIN), &second).await.0, 200);
    let m = c
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        m.contains("hedui_people_refused_total{token=\"capped\"} 2"),
        "{m}"
    );
    assert!(
        m.contains(&format!(
            "hedui_people_checked_total{{token=\"capped\"}} {cap}"
        )),
        "{m}"
    );
    let audit: Value = get_as(&c, &s, AUDITOR, "/api/v1/audit?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["read"] == "refused_max_people_per_day" && e["actor"] == "token:capped"),
        "{audit}"
    );
}

/// Beyond the caps a request is 422 in words: a household beyond
/// `max_household_members` (`invalid_value`), a field of 100,000 characters, a check date in the future or more than
/// `max_backdate_days` back — over the API as in a batch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_caps_are_422() {
    let site = Site::new();
    site.config_variant(
        "capped.toml",
        "max_household_members = 2\nmax_backdate_days = 30\n",
        "",
    );
    let s = site.serve_with("capped.toml", &[]);
    let c = client(&s);
    let (_, mut body) = bodies(&site).into_iter().next().unwrap();
    let today = chrono::Local::now().date_naive();
    for (d, said) in [
        (today + chrono::Duration::days(1), "晚于今天"),
        (today - chrono::Duration::days(31), "早于今天 30 天以上"),
    ] {
        let mut dated = body.clone();
        dated["as_of"] = Value::from(d.to_string());
        let (status, v) = post(&c, &s, Some(ADMIN), &dated).await;
        assert_eq!(status, 422, "{v}");
        assert!(v["message"].as_str().unwrap().contains(said), "{v}");
        let resp = c
            .post(format!("{}/api/v1/batches?as_of={d}", s.url))
            .header("content-type", "text/csv")
            .bearer_auth(ADMIN)
            .body(rows_of(&site, &["4101"]))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 422);
    }
    // A field far longer than any ID, code or name (a paste gone wrong, an attack):
    // 422 naming the field, its value never echoed whole.
    let mut long = body.clone();
    long["authorization_id"] = Value::from("x".repeat(100_000));
    let (status, v) = post(&c, &s, Some(ADMIN), &long).await;
    assert_eq!(status, 422, "{v}");
    assert_eq!(v["error"], "invalid_value", "{v}");
    assert!(
        v.to_string().len() < 5_000,
        "the value echoed: {} bytes",
        v.to_string().len()
    );
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .contains("授权书编号有100000个字符，超过上限200个"),
        "{v}"
    );
    let first = body["members"][0].clone();
    let members: Vec<Value> = (0..3)
        .map(|i| {
            let mut m = first.clone();
            m["name"] = Value::from(format!("成员{i}"));
            m
        })
        .collect();
    body["members"] = Value::from(members);
    let (status, v) = post(&c, &s, Some(ADMIN), &body).await;
    assert_eq!(status, 422, "{v}");
    assert!(
        v["rejections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["reason"] == "invalid_value"
                && r["message"]
                    .as_str()
                    .unwrap()
                    .contains("该户申报3名成员，超过上限2名")),
        "{v}"
    );
}

/// Reconciliation runs over the API: a token sees the runs that checked households of
/// its regions and only those households' changes (IDs masked for staff); a run it may
/// not see is 404 like one that does not exist; auditors read no runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconciliation_runs_by_region() {
    let site = Site::new();
    site.reconcile();
    let all = lines(&site.dir.path().join("recon/changes.jsonl"));
    let server = site.serve();
    let c = client(&server);
    let get = |token: &str, path: &str| {
        c.get(format!("{}/api/v1/reconciliations{path}", server.url))
            .bearer_auth(token)
            .send()
    };
    let runs: Value = get(STAFF_4101, "").await.unwrap().json().await.unwrap();
    assert_eq!(runs["reconciliations"][0]["id"], 1);
    assert_eq!(runs["reconciliations"][0]["status"], "done");
    for (token, prefix) in [(STAFF_4101, "4101"), (SYSTEM_5120, "5120")] {
        let got: Value = get(token, "/1/changes")
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = got["changes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["household_id"].as_str().unwrap())
            .collect();
        let want: Vec<&str> = all
            .iter()
            .filter(|c| {
                let hid = c["household_id"].as_str().unwrap();
                expected_region(&site, hid).starts_with(prefix)
            })
            .map(|c| c["household_id"].as_str().unwrap())
            .collect();
        assert!(!want.is_empty());
        assert_eq!(ids, want, "{prefix}");
    }
    // Staff see the members of flags masked.
    let staff: Value = get(STAFF_4101, "/1/changes")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for ch in staff["changes"].as_array().unwrap() {
        for f in ch["added_flags"].as_array().unwrap() {
            if let Some(m) = f["member"].as_str() {
                assert!(m.contains("********"), "{m}");
            }
        }
    }
    // Another region's token: no run listed, and the run is 404, as is a run that
    // does not exist; auditors read no runs.
    let none: Value = get(FUJIAN, "").await.unwrap().json().await.unwrap();
    assert_eq!(none["reconciliations"], json!([]));
    assert_eq!(
        get(FUJIAN, "/1/changes").await.unwrap().status().as_u16(),
        404
    );
    assert_eq!(
        get(ADMIN, "/999/changes").await.unwrap().status().as_u16(),
        404
    );
    assert_eq!(
        get(ADMIN, "/x/changes").await.unwrap().status().as_u16(),
        404
    );
    assert_eq!(get(AUDITOR, "").await.unwrap().status().as_u16(), 403);

    // /metrics: requests by route pattern and status (never a request's own values),
    // latency histograms, checks per verdict, and each source's snapshot age.
    let text = c
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("hedui_http_requests_total{route=\"/api/v1/reconciliations/{id}/changes\",status=\"404\"} 3"),
        "{text}"
    );
    assert!(text
        .contains("hedui_http_requests_total{route=\"/api/v1/reconciliations\",status=\"200\"} 2"));
    assert!(text.contains(
        "hedui_http_request_duration_seconds_count{route=\"/api/v1/reconciliations\"} 3"
    ));
    assert!(text.contains("hedui_checks_total{verdict=\"eligible\"} 0"));
    assert!(text.contains("hedui_source_snapshot_age_seconds{source=\"hr\"} "));
    assert!(!text.contains("/999/") && !text.contains("/x/"));
}

/// The region of a household of the city's batch.
fn expected_region(site: &Site, hid: &str) -> String {
    lines(&site.dir.path().join("recon/results.jsonl"))
        .into_iter()
        .find(|r| r["household_id"] == hid)
        .map(|r| r["region_code"].as_str().unwrap().to_owned())
        .unwrap_or_else(|| listed_region(site, hid))
}

/// The region a household's rows give in the city's applicant list (GBK, household id
/// and region code first): that of a household the run rejected.
fn listed_region(site: &Site, hid: &str) -> String {
    let bytes = std::fs::read(site.dir.path().join("city/applicants.csv")).unwrap();
    let (text, _, _) = encoding_rs::GBK.decode(&bytes);
    csv::Reader::from_reader(text.as_bytes())
        .records()
        .map(Result::unwrap)
        .find(|r| &r[0] == hid)
        .map(|r| r[1].to_owned())
        .unwrap_or_default()
}

/// The OpenAPI document is served, is OpenAPI 3, lists exactly the API's routes, and
/// every route it lists answers (none falls through to the "no such route" 404, which an
/// undocumented path gets).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_the_routes() {
    let site = Site::new();
    let server = site.serve();
    let c = client(&server);
    let doc: Value = c
        .get(format!("{}/api/v1/openapi.json", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."), "{doc}");
    let mut routes: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            routes.push((method.clone(), path.clone()));
        }
    }
    routes.sort();
    let want: Vec<(String, String)> = [
        ("get", "/api/v1/audit"),
        ("get", "/api/v1/batches"),
        ("get", "/api/v1/batches/{id}"),
        ("get", "/api/v1/batches/{id}/rejected"),
        ("get", "/api/v1/batches/{id}/report"),
        ("get", "/api/v1/batches/{id}/results"),
        ("get", "/api/v1/openapi.json"),
        ("get", "/api/v1/recipients"),
        ("get", "/api/v1/recipients/history"),
        ("get", "/api/v1/reconciliations"),
        ("get", "/api/v1/reconciliations/{id}/changes"),
        ("get", "/api/v1/reconciliations/{id}/report"),
        ("get", "/healthz"),
        ("get", "/livez"),
        ("get", "/metrics"),
        ("get", "/readyz"),
        ("post", "/api/v1/batches"),
        ("post", "/api/v1/checks"),
        ("post", "/api/v1/reconciliations"),
        ("put", "/api/v1/recipients"),
    ]
    .iter()
    .map(|(m, p)| ((*m).to_owned(), (*p).to_owned()))
    .collect();
    assert_eq!(routes, want);
    for (method, path) in &routes {
        let url = format!("{}{}", server.url, path.replace("{id}", "1"));
        let req = match method.as_str() {
            "post" => c.post(url).json(&json!({})),
            "put" => c.put(url).body(""),
            _ => c.get(url),
        };
        let resp = req.bearer_auth(ADMIN).send().await.unwrap();
        let body = resp.text().await.unwrap();
        assert!(!body.contains("\"no_route\""), "{method} {path}: {body}");
    }
    let resp = c
        .get(format!("{}/api/v1/nothing", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert_eq!(resp.json::<Value>().await.unwrap()["error"], "no_route");
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
}

/// A `multipart/form-data` body of `parts` (name, file name, Content-Type, bytes) and
/// its Content-Type, as a browser's form sends it.
type Part<'a> = (&'a str, Option<&'a str>, Option<&'a str>, &'a [u8]);

fn form(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----hedui-test-7f3a91";
    let mut body = Vec::new();
    for (name, file, content_type, bytes) in parts {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"").as_bytes(),
        );
        if let Some(f) = file {
            body.extend_from_slice(format!("; filename=\"{f}\"").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        if let Some(ct) = content_type {
            body.extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        body.extend_from_slice(b"\r\n");
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// The files under `state/uploads` (uploads being received).
fn uploads_left(site: &Site) -> Vec<String> {
    std::fs::read_dir(site.p("state/uploads"))
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// A batch arrives as the body or as a form's part `file` (with `as_of`, and the name
/// and format from the part), both written to disk as they arrive and both giving the
/// same results; hostile and sloppy forms (no file, two files, unknown parts, no
/// boundary, cut short, too large) and a body that stalls are refused in words, and
/// nothing of them is left on disk; what a killed server was receiving is removed at
/// the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_arrive_as_bodies_or_forms_and_go_to_disk() {
    use tokio::io::AsyncWriteExt;
    let site = Site::new();
    site.config_variant("up.toml", "body_idle_timeout_s = 1\n", "");
    std::fs::create_dir_all(site.p("state/uploads")).unwrap();
    std::fs::write(site.p("state/uploads/upload-killed"), b"SQ-1,410102").unwrap();
    let s = site.serve_with("up.toml", &[]);
    assert!(uploads_left(&site).is_empty(), "{:?}", uploads_left(&site));
    let c = client(&s);
    let url = format!("{}/api/v1/batches", s.url);
    let csv = rows_of(&site, &["4101"]);

    let (status, raw) = submit(&c, &s, STAFF_4101, "text/csv", "申请名单.csv", csv.clone()).await;
    assert_eq!(status, 202, "{raw}");
    let (ct, body) = form(&[
        ("as_of", None, None, site.today.as_bytes()),
        ("file", Some("申请名单.csv"), Some("text/csv"), &csv),
    ]);
    let resp = c
        .post(&url)
        .header("content-type", ct)
        .bearer_auth(STAFF_4101)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let formed: Value = resp.json().await.unwrap();
    // An XLSX whose part says only application/octet-stream: the file name tells.
    let (text, _, _) = encoding_rs::GBK.decode(&csv);
    let mut wb = rust_xlsxwriter::Workbook::new();
    let sheet = wb.add_worksheet();
    for (r, line) in text.lines().enumerate() {
        for (col, cell) in line.split(',').enumerate() {
            sheet.write_string(r as u32, col as u16, cell).unwrap();
        }
    }
    let xlsx = wb.save_to_buffer().unwrap();
    let (ct, body) = form(&[(
        "file",
        Some("郑州.xlsx"),
        Some("application/octet-stream"),
        &xlsx,
    )]);
    let resp = c
        .post(&url)
        .header("content-type", ct)
        .bearer_auth(STAFF_4101)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let sheet: Value = resp.json().await.unwrap();
    let mut results = Vec::new();
    for (v, name) in [
        (&raw, "申请名单.csv"),
        (&formed, "申请名单.csv"),
        (&sheet, "郑州.xlsx"),
    ] {
        let id = v["batch_id"].as_str().unwrap();
        let done = wait_batch(&c, &s, STAFF_4101, id).await;
        assert_eq!(done["status"], "done", "{done}");
        assert_eq!(done["file_name"], name);
        assert_eq!(done["as_of"].as_str(), Some(site.today.as_str()));
        let text = get_as(&c, &s, STAFF_4101, &format!("/api/v1/batches/{id}/results"))
            .await
            .text()
            .await
            .unwrap();
        results.push(text);
    }
    assert!(results[0].lines().count() > 5, "{}", results[0]);
    assert_eq!(
        results[0], results[1],
        "the form's batch differs from the body's"
    );
    assert_eq!(
        results[0], results[2],
        "the workbook's batch differs from the CSV's"
    );

    // Hostile and sloppy forms.
    let big = vec![b'x'; 1536 * 1024];
    let cases: Vec<(String, Vec<u8>, u16, &str)> = vec![
        {
            let (ct, b) = form(&[("as_of", None, None, site.today.as_bytes())]);
            (ct, b, 400, "没有名为 file 的文件部分")
        },
        {
            let (ct, b) = form(&[
                ("file", Some("a.csv"), None, &csv),
                ("file", Some("b.csv"), None, &csv),
            ]);
            (ct, b, 400, "more than one part named file")
        },
        {
            let (ct, b) = form(&[
                ("file", Some("a.csv"), None, &csv),
                ("csrf", None, None, b"x"),
            ]);
            (ct, b, 400, "无法识别的部分")
        },
        {
            let (_, b) = form(&[("file", Some("a.csv"), None, &csv)]);
            ("multipart/form-data".to_owned(), b, 400, "no boundary")
        },
        {
            let (ct, mut b) = form(&[("file", Some("a.csv"), None, &csv)]);
            b.truncate(b.len() / 2);
            (ct, b, 400, "上传的表单无法读取")
        },
        {
            let (ct, b) = form(&[("file", Some("a.csv"), None, &big)]);
            (ct, b, 413, "请求体超过 1 MB")
        },
        ("text/csv".to_owned(), big.clone(), 413, "请求体超过 1 MB"),
    ];
    for (ct, body, want, words) in cases {
        let resp = c
            .post(&url)
            .header("content-type", &ct)
            .bearer_auth(STAFF_4101)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap();
        assert_eq!(status, want, "{ct}: {v}");
        assert!(v["message"].as_str().unwrap().contains(words), "{ct}: {v}");
    }
    // A body that stops halfway: 408.
    let mut stalled = tls_stream(&s).await;
    let head = format!(
        "POST /api/v1/batches?file_name=x.csv HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {STAFF_4101}\r\nContent-Type: text/csv\r\nContent-Length: 100000\r\n\r\n"
    );
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled
        .write_all(&csv[..csv.len().min(2000)])
        .await
        .unwrap();
    stalled.flush().await.unwrap();
    let answer = until_closed(&mut stalled, std::time::Duration::from_secs(20))
        .await
        .expect("a stalled upload was waited for");
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    // Nothing of the refused uploads stays on disk.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !uploads_left(&site).is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "left: {:?}",
            uploads_left(&site)
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A tmpfs of `size` mounted at a folder for the test's life (needs root).
struct Tmpfs(String);

impl Tmpfs {
    fn mount(at: &str, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs", at])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").args(["-l", &self.0]).status();
    }
}

/// The state folder on a small disk that fills up under a running server: checks and
/// uploads are 503 `disk_full` in words (never 500), `/healthz` is not ready and
/// `/metrics` says so; once space is freed the server answers again by itself, a batch
/// runs to its end, and the audit chain still verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_state_disk_is_503_until_space_is_freed() {
    let site = Site::new();
    let disk = site.p("small-disk");
    let Some(_mounted) = Tmpfs::mount(&disk, "6m") else {
        assert!(
            std::env::var("HEDUI_REQUIRE_MOUNT").is_err(),
            "cannot mount a tmpfs (root is needed)"
        );
        eprintln!("NOTICE: a_full_state_disk_…: mounting a tmpfs needs root; skipped");
        return;
    };
    let base = std::fs::read_to_string(site.p("hedui.toml")).unwrap();
    let config = base.replacen("path = \"state\"", &format!("path = \"{disk}/state\""), 1);
    assert_ne!(config, base);
    std::fs::write(site.p("full.toml"), config).unwrap();
    let s = site.serve_with("full.toml", &[]);
    let c = client(&s);
    let households = bodies(&site);
    let token_for = |b: &Value| {
        if b["region_code"].as_str().unwrap().starts_with("5120") {
            SYSTEM_5120
        } else {
            ADMIN
        }
    };
    let (_, first) = &households[0];
    assert_eq!(post(&c, &s, Some(token_for(first)), first).await.0, 200);
    let health = || async {
        let r = c.get(format!("{}/healthz", s.url)).send().await.unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let gauge = || async {
        let text = c
            .get(format!("{}/metrics", s.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .find(|l| l.starts_with("hedui_state_disk_full "))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    // Fill the disk.
    let filler = format!("{disk}/filler");
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
    }
    // Checks append to the audit log: the first whose write needs space is refused.
    let mut refused = None;
    for (_, body) in households.iter().cycle().take(400) {
        let resp = c
            .post(format!("{}/api/v1/checks", s.url))
            .bearer_auth(token_for(body))
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        let v: Value = resp.json().await.unwrap();
        assert!(status == 200 || status == 503, "{status} {v}");
        if status == 503 {
            refused = Some((v, retry));
            break;
        }
    }
    let (v, retry) = refused.expect("no check was refused on a full disk");
    assert_eq!(v["error"], "disk_full", "{v}");
    assert!(
        v["message"]
            .as_str()
            .unwrap()
            .starts_with("状态目录所在磁盘已满"),
        "{v}"
    );
    assert_eq!(retry.as_deref(), Some("60"));
    let (status, h) = health().await;
    assert_eq!(
        (status, h["error"].as_str()),
        (503, Some("disk_full")),
        "{h}"
    );
    assert_eq!(gauge().await, "hedui_state_disk_full 1");
    let (status, v) = submit(
        &c,
        &s,
        STAFF_4101,
        "text/csv",
        "z.csv",
        rows_of(&site, &["4101"]),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (503, Some("disk_full")),
        "{v}"
    );
    // Space freed: answered again, by itself.
    std::fs::remove_file(&filler).unwrap();
    assert_eq!(post(&c, &s, Some(token_for(first)), first).await.0, 200);
    assert_eq!(health().await.0, 200);
    assert_eq!(gauge().await, "hedui_state_disk_full 0");
    let (status, v) = submit(
        &c,
        &s,
        STAFF_4101,
        "text/csv",
        "z.csv",
        rows_of(&site, &["4101"]),
    )
    .await;
    assert_eq!(status, 202, "{v}");
    let done = wait_batch(&c, &s, STAFF_4101, v["batch_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "done", "{done}");
    assert!(
        !s.log.lock().unwrap().contains("status=500"),
        "a 500 was answered"
    );
    let out = hedui(&["audit", "verify", "--config", &site.p("full.toml")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends `req` and keeps its answer as samples of operation `op` (one per line of JSON
/// Lines, a text body as a string); returns the status and the body.
async fn sampled(
    req: reqwest::RequestBuilder,
    op: &str,
    samples: &mut Vec<support::openapi::Sample>,
) -> (u16, Value) {
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_owned();
    let text = resp.text().await.unwrap();
    let bodies: Vec<Value> = match content_type.as_str() {
        "application/json" => vec![serde_json::from_str(&text).unwrap()],
        "application/x-ndjson" => text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
        _ => vec![Value::String(text.chars().take(2000).collect())],
    };
    for body in &bodies {
        samples.push(support::openapi::Sample {
            operation: op.to_owned(),
            status: status.to_string(),
            content_type: content_type.clone(),
            body: body.clone(),
        });
    }
    let body = match content_type.as_str() {
        "application/x-ndjson" => Value::Array(bodies),
        _ => bodies.into_iter().next().unwrap_or(Value::Null),
    };
    (status, body)
}

/// The OpenAPI document is a valid OpenAPI 3.1 document with unique operation ids, a
/// schema for every request and every answer (errors too), and the real answers of
/// every route — successes and errors, for each role — are what it describes: checked
/// by the test's own validator always, and by openapi-spec-validator and jsonschema when
/// installed (`.ci/run` requires them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_describes_every_answer() {
    use support::openapi::{check, operations, reference_check, response_schema};
    let site = Site::new();
    site.reconcile();
    let s = site.serve();
    let c = client(&s);
    let doc: Value = get_as(&c, &s, ADMIN, "/api/v1/openapi.json")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );

    // Every operation: a unique id, a schema for its request body and for every answer.
    let ops = operations(&doc);
    let mut ids: Vec<&str> = ops
        .iter()
        .map(|(m, p, op)| {
            op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{m} {p} has no operationId"))
        })
        .collect();
    ids.sort();
    let n = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), n, "operation ids repeat: {ids:?}");
    for (method, path, op) in &ops {
        // Starting a reconciliation takes no body; every other upload has one.
        if matches!(method.as_str(), "post" | "put") && *path != "/api/v1/reconciliations" {
            let content = op["requestBody"]["content"].as_object();
            assert!(
                content
                    .is_some_and(|c| !c.is_empty() && c.values().all(|m| m["schema"].is_object())),
                "{method} {path}: no request body schema"
            );
        }
        for (status, r) in op["responses"].as_object().unwrap() {
            let content = r["content"].as_object();
            assert!(
                content
                    .is_some_and(|c| !c.is_empty() && c.values().all(|m| m["schema"].is_object())),
                "{method} {path} {status}: no body schema: {r}"
            );
        }
    }
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for name in [
        "CheckRequest",
        "CheckAnswer",
        "HouseholdResult",
        "Flag",
        "Evidence",
        "Rejection",
        "Change",
        "AddedFlag",
        "ErrorBody",
        "BatchStatus",
        "AuditPage",
        "ChangesPage",
    ] {
        assert!(
            schemas.contains_key(name),
            "no schema {name}: {:?}",
            schemas.keys()
        );
    }

    // Real answers of every route, by role, successes and errors.
    let mut samples = Vec::new();
    let url = |p: &str| format!("{}{p}", s.url);
    let households = bodies(&site);
    let mut flagged = 0;
    for (_, body) in &households {
        let token = if body["region_code"].as_str().unwrap().starts_with("5120") {
            SYSTEM_5120
        } else {
            ADMIN
        };
        let (status, v) = sampled(
            c.post(url("/api/v1/checks")).bearer_auth(token).json(body),
            "check_household",
            &mut samples,
        )
        .await;
        assert_eq!(status, 200, "{v}");
        flagged += usize::from(!v["flags"].as_array().unwrap().is_empty());
    }
    assert!(flagged > 5, "only {flagged} households with findings");
    let (_, one) = &households[0];
    let mut bad_id = one.clone();
    bad_id["members"][0]["id_number"] = json!("410101199001011234");
    for (req, want) in [
        (
            c.post(url("/api/v1/checks"))
                .bearer_auth(ADMIN)
                .json(&bad_id),
            422,
        ),
        (c.post(url("/api/v1/checks")).json(one), 401),
        (
            c.post(url("/api/v1/checks")).bearer_auth(FUJIAN).json(one),
            403,
        ),
        (
            c.post(url("/api/v1/checks")).bearer_auth(AUDITOR).json(one),
            403,
        ),
        (
            c.post(url("/api/v1/checks"))
                .bearer_auth(ADMIN)
                .header("content-type", "application/json")
                .body("{not json"),
            400,
        ),
    ] {
        let (status, v) = sampled(req, "check_household", &mut samples).await;
        assert_eq!(status, want, "{v}");
    }
    // A batch from staff, with one bad row.
    let mut csv = rows_of(&site, &["4101"]);
    let last = csv
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .last()
        .unwrap()
        .to_vec();
    let mut cells: Vec<Vec<u8>> = last.split(|b| *b == b',').map(<[u8]>::to_vec).collect();
    cells[0] = b"BAD-ROW-1".to_vec();
    let id_col = cells
        .iter()
        .position(|c| c.len() == 18 && c[..17].iter().all(u8::is_ascii_digit))
        .unwrap();
    cells[id_col] = b"41010119900101123".to_vec();
    if !csv.ends_with(b"\n") {
        csv.push(b'\n');
    }
    csv.extend_from_slice(&cells.join(&b','));
    csv.push(b'\n');
    let (status, accepted) = sampled(
        c.post(url("/api/v1/batches"))
            .query(&[("file_name", "申请名单.csv")])
            .header("content-type", "text/csv")
            .bearer_auth(STAFF_4101)
            .body(csv.clone()),
        "submit_batch",
        &mut samples,
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["batch_id"].as_str().unwrap().to_owned();
    let (status, _) = sampled(
        c.get(url(&format!("/api/v1/batches/{id}")))
            .bearer_auth(STAFF_4101),
        "batch_status",
        &mut samples,
    )
    .await;
    assert_eq!(status, 200);
    let done = wait_batch(&c, &s, STAFF_4101, &id).await;
    assert_eq!(done["status"], "done", "{done}");
    for (path, op, token, want) in [
        (
            format!("/api/v1/batches/{id}"),
            "batch_status",
            STAFF_4101,
            200,
        ),
        (
            format!("/api/v1/batches/{id}"),
            "batch_status",
            SYSTEM_5120,
            404,
        ),
        (
            "/api/v1/batches/nothing".to_owned(),
            "batch_status",
            ADMIN,
            404,
        ),
        (
            format!("/api/v1/batches/{id}/results"),
            "batch_results",
            STAFF_4101,
            200,
        ),
        (
            format!("/api/v1/batches/{id}/results"),
            "batch_results",
            ADMIN,
            200,
        ),
        (
            format!("/api/v1/batches/{id}/rejected"),
            "batch_rejected",
            STAFF_4101,
            200,
        ),
        (
            format!("/api/v1/batches/{id}/report"),
            "batch_report",
            STAFF_4101,
            200,
        ),
        (
            "/api/v1/batches".to_owned(),
            "list_batches",
            STAFF_4101,
            200,
        ),
        (
            "/api/v1/batches?limit=0".to_owned(),
            "list_batches",
            STAFF_4101,
            400,
        ),
        ("/api/v1/batches".to_owned(), "list_batches", AUDITOR, 200),
        (
            "/api/v1/audit?limit=50".to_owned(),
            "list_audit_entries",
            ADMIN,
            200,
        ),
        (
            "/api/v1/audit?limit=50".to_owned(),
            "list_audit_entries",
            AUDITOR,
            200,
        ),
        (
            "/api/v1/audit".to_owned(),
            "list_audit_entries",
            STAFF_4101,
            403,
        ),
        (
            "/api/v1/audit?from=yesterday".to_owned(),
            "list_audit_entries",
            ADMIN,
            400,
        ),
        (
            "/api/v1/reconciliations".to_owned(),
            "list_reconciliations",
            STAFF_4101,
            200,
        ),
        (
            "/api/v1/reconciliations/1/changes?limit=1000".to_owned(),
            "reconciliation_changes",
            ADMIN,
            200,
        ),
        (
            "/api/v1/reconciliations/1/changes".to_owned(),
            "reconciliation_changes",
            STAFF_4101,
            200,
        ),
        (
            "/api/v1/reconciliations/9/changes".to_owned(),
            "reconciliation_changes",
            ADMIN,
            404,
        ),
        (
            "/api/v1/reconciliations/1/report".to_owned(),
            "reconciliation_report",
            ADMIN,
            404,
        ),
        ("/healthz".to_owned(), "healthz", "", 200),
        ("/readyz".to_owned(), "readyz", "", 200),
        ("/livez".to_owned(), "livez", "", 200),
        ("/metrics".to_owned(), "metrics", "", 200),
        (
            "/api/v1/openapi.json".to_owned(),
            "openapi_document",
            "",
            200,
        ),
    ] {
        let mut req = c.get(url(&path));
        if !token.is_empty() {
            req = req.bearer_auth(token);
        }
        let (status, v) = sampled(req, op, &mut samples).await;
        assert_eq!(status, want, "{path} as {token}: {v}");
    }
    // The recipients list: one household as JSON Lines (a row per member), refused with
    // a bad ID number, then accepted; listed; a reconciliation of it now.
    let (_, one) = &households[0];
    let list = |id_number: Option<&str>| {
        let mut text = String::new();
        for m in one["members"].as_array().unwrap() {
            let mut row = one.clone();
            let fields = row.as_object_mut().unwrap();
            fields.remove("members");
            fields.remove("as_of");
            for k in ["id_number", "name", "relation"] {
                fields.insert(k.to_owned(), m[k].clone());
            }
            if let Some(bad) = id_number {
                fields.insert("id_number".to_owned(), json!(bad));
            }
            text.push_str(&Value::Object(fields.clone()).to_string());
            text.push('\n');
        }
        text
    };
    for (body, token, want) in [
        (list(Some("410101199001011234")), ADMIN, 422),
        (list(None), STAFF_4101, 403),
        (list(None), ADMIN, 200),
    ] {
        let req = c
            .put(url("/api/v1/recipients?file_name=list.jsonl"))
            .bearer_auth(token)
            .header("content-type", "application/x-ndjson")
            .body(body);
        let (status, v) = sampled(req, "replace_recipients", &mut samples).await;
        assert_eq!(status, want, "{v}");
    }
    let (status, v) = sampled(
        c.get(url("/api/v1/recipients?limit=10")).bearer_auth(ADMIN),
        "list_recipients",
        &mut samples,
    )
    .await;
    assert_eq!(
        (status, v["households"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{v}"
    );
    let (status, v) = sampled(
        c.get(url("/api/v1/recipients/history")).bearer_auth(ADMIN),
        "recipients_history",
        &mut samples,
    )
    .await;
    assert_eq!(
        (status, v["lists"].as_array().map(Vec::len)),
        (200, Some(1)),
        "{v}"
    );
    for (token, want) in [(STAFF_4101, 403), (ADMIN, 202), (ADMIN, 409)] {
        let req = c.post(url("/api/v1/reconciliations")).bearer_auth(token);
        let (status, v) = sampled(req, "start_reconciliation", &mut samples).await;
        assert_eq!(status, want, "{v}");
    }
    assert!(
        samples
            .iter()
            .any(|x| x.operation == "batch_rejected" && x.body["household_id"] == "BAD-ROW-1"),
        "the bad row was not rejected"
    );
    assert!(
        samples
            .iter()
            .any(|x| x.operation == "reconciliation_changes"
                && x.body["changes"].as_array().is_some_and(|c| !c.is_empty())),
        "no changes to check"
    );
    // Every operation answered at least once with a success.
    for (_, _, op) in &ops {
        let id = op["operationId"].as_str().unwrap();
        if id == "reconciliation_report" {
            continue; // only the schedule's runs have one: tests/api.rs::scheduled_…
        }
        assert!(
            samples
                .iter()
                .any(|x| x.operation == id && x.status.starts_with('2')),
            "no success of {id} was checked"
        );
    }

    // Each answer is what the document says.
    let mut problems = Vec::new();
    for x in &samples {
        match response_schema(&doc, &x.operation, &x.status, &x.content_type) {
            Ok(schema) => problems.extend(
                check(&doc, schema, &x.body)
                    .into_iter()
                    .map(|p| format!("{} {}: {p}", x.operation, x.status)),
            ),
            Err(e) => problems.push(e),
        }
    }
    problems.sort();
    problems.dedup();
    assert!(
        problems.is_empty(),
        "{} answers, problems:\n{}",
        samples.len(),
        problems.join("\n")
    );
    match reference_check(&doc, &samples) {
        Ok(true) => {}
        Ok(false) => {
            assert!(
                std::env::var("HEDUI_REQUIRE_OPENAPI_VALIDATOR").is_err(),
                "openapi-spec-validator and jsonschema are not installed for HEDUI_PYTHON"
            );
            eprintln!("NOTICE: openapi-spec-validator not installed (pip install openapi-spec-validator; HEDUI_PYTHON=…): only the test's own schema check ran");
        }
        Err(report) => panic!("the reference validators:\n{report}"),
    }
}

/// `hedui check --lake` on `file`: its results by household.
/// `check --lake` of `file` into `out`, reading the lake's tables whole (narrowing off:
/// the server reads only the members' rows, so the two ways are compared), by household.
fn check_lake(site: &Site, file: &str, out: &str) -> std::collections::BTreeMap<String, Value> {
    check_lake_on(site, file, out, &site.today)
}

/// As [`check_lake`], on the date `as_of`.
fn check_lake_on(
    site: &Site,
    file: &str,
    out: &str,
    as_of: &str,
) -> std::collections::BTreeMap<String, Value> {
    ok(hedui_env(
        &[("HEDUI_NARROW_MEMBERS", "0")],
        &[
            "check",
            "--applicants",
            &site.p(file),
            "--lake",
            &site.p("lake"),
            "--policy",
            &site.p("city/policy.toml"),
            "--as-of",
            as_of,
            "--out",
            &site.p(out),
        ],
    ));
    lines(&site.dir.path().join(out).join("results.jsonl"))
        .into_iter()
        .map(|r| (r["household_id"].as_str().unwrap().to_owned(), r))
        .collect()
}

async fn submit(
    c: &reqwest::Client,
    s: &Server,
    token: &str,
    content_type: &str,
    name: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let resp = c
        .post(format!("{}/api/v1/batches", s.url))
        .query(&[("file_name", name)])
        .header("content-type", content_type)
        .bearer_auth(token)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A batch's lifecycle over HTTPS: a GBK CSV with Chinese headers from staff and an XLSX
/// from a case system are queued (202), run, and their results equal `check --lake` on
/// the same file; rejected rows, the report and the status are served to those who may
/// see the batch, 404 to the others; unreadable files are 422 at once, households of
/// another region 403, bodies over the limit 413; every batch is audited once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_lifecycle_over_https() {
    let site = Site::new();
    // Zhengzhou's rows, GBK, plus a sloppy household whose ID number is wrong.
    let mut zz = rows_of(&site, &["4101"]);
    let (bad, _, _) = encoding_rs::GBK
        .encode("SQ-BAD-0001,410102,城镇,低保,AUTH-BAD-1,410184199001011230,张三,本人\n");
    zz.extend_from_slice(&bad);
    std::fs::write(site.p("zz.csv"), &zz).unwrap();
    let expected_zz = check_lake(&site, "zz.csv", "zz-out");
    // Ziyang's rows as an XLSX workbook.
    let zy_rows = rows_of(&site, &["5120"]);
    let (text, _, _) = encoding_rs::GBK.decode(&zy_rows);
    let mut wb = rust_xlsxwriter::Workbook::new();
    let sheet = wb.add_worksheet();
    for (r, line) in text.lines().enumerate() {
        for (c, cell) in line.split(',').enumerate() {
            sheet.write_string(r as u32, c as u16, cell).unwrap();
        }
    }
    let xlsx = wb.save_to_buffer().unwrap();
    std::fs::write(site.p("zy.xlsx"), &xlsx).unwrap();
    let expected_zy = check_lake(&site, "zy.xlsx", "zy-out");

    let server = site.serve();
    let c = client(&server);

    // Staff submit the GBK CSV: 202 with the batch's id and where to find it.
    let resp = c
        .post(format!("{}/api/v1/batches", server.url))
        .query(&[
            ("file_name", "郑州申请名单.csv"),
            ("as_of", site.today.as_str()),
        ])
        .header("content-type", "text/csv")
        .bearer_auth(STAFF_4101)
        .body(zz.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let v: Value = resp.json().await.unwrap();
    let zz_id = v["batch_id"].as_str().unwrap().to_owned();
    assert_eq!(v["status"], "queued");
    assert_eq!(location, format!("/api/v1/batches/{zz_id}"));
    // The case system of Ziyang submits the workbook.
    let (status, v) = submit(&c, &server, SYSTEM_5120, XLSX, "资阳.xlsx", xlsx.clone()).await;
    assert_eq!(status, 202, "{v}");
    let zy_id = v["batch_id"].as_str().unwrap().to_owned();

    let done = wait_batch(&c, &server, STAFF_4101, &zz_id).await;
    assert_eq!(done["status"], "done", "{done}");
    assert_eq!(done["file_name"], "郑州申请名单.csv");
    assert_eq!(done["attempts"], 1);
    assert!(
        done["progress"]["steps_done"].as_i64().unwrap() > 3,
        "{done}"
    );
    let check_summary: Value =
        serde_json::from_slice(&std::fs::read(site.p("zz-out/summary.json")).unwrap()).unwrap();
    assert_eq!(
        done["summary"]["applicants"]["households_rejected"],
        check_summary["applicants"]["households_rejected"]
    );
    assert_eq!(
        done["summary"]["applicants"]["households_accepted"],
        expected_zz.len()
    );
    assert!(done["summary"].get("policy").is_none(), "no server paths");

    // Results: exactly check --lake's, for a token with full view; masked for staff.
    let got: Vec<Value> = get_as(
        &c,
        &server,
        ADMIN,
        &format!("/api/v1/batches/{zz_id}/results"),
    )
    .await
    .text()
    .await
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(got, expected_zz.values().cloned().collect::<Vec<_>>());
    let staff = get_as(
        &c,
        &server,
        STAFF_4101,
        &format!("/api/v1/batches/{zz_id}/results"),
    )
    .await;
    assert_eq!(staff.headers()["content-type"], "application/x-ndjson");
    let staff = staff.text().await.unwrap();
    assert_eq!(staff.lines().count(), expected_zz.len());
    let ids: Vec<String> = {
        let (t, _, _) = encoding_rs::GBK.decode(&zz);
        t.lines()
            .skip(1)
            .map(|l| l.split(',').nth(5).unwrap().to_owned())
            .collect()
    };
    for id in &ids {
        assert!(!staff.contains(id.as_str()), "staff see {id} masked");
    }
    // The rejected row names the household, the field and the reason.
    let rejected = get_as(
        &c,
        &server,
        STAFF_4101,
        &format!("/api/v1/batches/{zz_id}/rejected"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(
        rejected,
        std::fs::read_to_string(site.p("zz-out/rejected.jsonl")).unwrap()
    );
    let r: Value = rejected
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|r| r["household_id"] == "SQ-BAD-0001")
        .unwrap();
    assert_eq!(
        (
            r["household_id"].as_str(),
            r["field"].as_str(),
            r["reason"].as_str()
        ),
        (
            Some("SQ-BAD-0001"),
            Some("id_number"),
            Some("invalid_id_number")
        ),
        "{rejected}"
    );
    // The printable report: named after the file, IDs masked.
    let report = get_as(
        &c,
        &server,
        STAFF_4101,
        &format!("/api/v1/batches/{zz_id}/report"),
    )
    .await;
    assert_eq!(report.status().as_u16(), 200);
    assert!(report.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let report = report.text().await.unwrap();
    // Its first page names the batch, who submitted it and each department's snapshot;
    // the bad row is told in words.
    for said in [
        "<th>申请名单</th><td>郑州申请名单.csv".to_owned(),
        format!("<th>批次编号</th><td>{zz_id}</td>"),
        "<th>提交人</th><td>staff-zhengzhou</td>".to_owned(),
        "人社：".to_owned(),
        "拉取（第 ".to_owned(),
        "<td>身份证号有误</td>".to_owned(),
    ] {
        assert!(report.contains(&said), "{said}: {report}");
    }
    for id in &ids {
        assert!(!report.contains(id.as_str()));
    }

    // Who may not see the batch gets 404, like for one that does not exist; the auditor's
    // role reads no batch (403); no token 401.
    for (token, want) in [(SYSTEM_5120, 404), (FUJIAN, 404), (AUDITOR, 403)] {
        for tail in ["", "/results", "/rejected", "/report"] {
            let resp = get_as(
                &c,
                &server,
                token,
                &format!("/api/v1/batches/{zz_id}{tail}"),
            )
            .await;
            assert_eq!(resp.status().as_u16(), want, "{token} {tail}");
        }
    }
    let resp = c
        .get(format!("{}{location}", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    for id in [
        "0123456789abcdef0123456789abcdef",
        "..%2F..%2Fhedui.db",
        "x",
    ] {
        let resp = get_as(&c, &server, ADMIN, &format!("/api/v1/batches/{id}/results")).await;
        assert_eq!(resp.status().as_u16(), 404, "{id}");
    }

    // The workbook's results equal check --lake on the same workbook.
    let done = wait_batch(&c, &server, SYSTEM_5120, &zy_id).await;
    assert_eq!(done["status"], "done", "{done}");
    let got: Vec<Value> = get_as(
        &c,
        &server,
        SYSTEM_5120,
        &format!("/api/v1/batches/{zy_id}/results"),
    )
    .await
    .text()
    .await
    .unwrap()
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(got, expected_zy.values().cloned().collect::<Vec<_>>());
    // Staff of Zhengzhou may not see Ziyang's batch.
    assert_eq!(
        get_as(&c, &server, STAFF_4101, &format!("/api/v1/batches/{zy_id}"))
            .await
            .status()
            .as_u16(),
        404
    );

    // Refused at once: households of another region (403), files that are no batch
    // (422, saying why), a body over max_body_mb (413), a role that runs no check (403).
    let whole = std::fs::read(site.p("city/applicants.csv")).unwrap();
    let (status, err) = submit(
        &c,
        &server,
        STAFF_4101,
        "text/csv",
        "all.csv",
        whole.clone(),
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (403, Some("forbidden")),
        "{err}"
    );
    assert!(err["message"].as_str().unwrap().contains("5120"), "{err}");
    let header_only: Vec<u8> = zz.split_inclusive(|b| *b == b'\n').next().unwrap().to_vec();
    for (ct, name, body, says) in [
        ("text/csv", "a.csv", header_only, "没有申请人数据行"),
        (
            XLSX,
            "b.xlsx",
            b"PK\x03\x04 not really a workbook".to_vec(),
            "b.xlsx",
        ),
        (
            "application/octet-stream",
            "c.xls",
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1 old excel".to_vec(),
            "另存为",
        ),
        ("text/csv", "d.csv", b"foo,bar\n1,2\n".to_vec(), "foo"),
    ] {
        let (status, err) = submit(&c, &server, STAFF_4101, ct, name, body).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (422, Some("unreadable_batch")),
            "{name}: {err}"
        );
        assert!(
            err["message"].as_str().unwrap().contains(says),
            "{name}: {err}"
        );
        // What is wrong, in Chinese, first; then the file.
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("无法读取批次文件“{name}”：")),
            "{name}: {err}"
        );
    }
    // (A body over max_body_mb is never read whole: the server answers 413 and drops the
    // connection, so that request goes on a connection of its own.)
    let (status, err) = submit(
        &client(&server),
        &server,
        STAFF_4101,
        "text/csv",
        "big.csv",
        vec![b'a'; 2 << 20],
    )
    .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (413, Some("body_too_large"))
    );
    let (status, _) = submit(&c, &server, AUDITOR, "text/csv", "z.csv", zz.clone()).await;
    assert_eq!(status, 403);
    let resp = c
        .post(format!("{}/api/v1/batches", server.url))
        .query(&[("as_of", "tomorrow")])
        .bearer_auth(STAFF_4101)
        .body(zz.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let msg = resp.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        msg.contains("核对日期") && msg.contains("YYYY-MM-DD") && msg.contains("tomorrow"),
        "{msg}"
    );

    // Each batch is in the audit log once, as the token that submitted it.
    let audit: Value = get_as(&c, &server, AUDITOR, "/api/v1/audit")
        .await
        .json()
        .await
        .unwrap();
    let batches: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "batch")
        .collect();
    assert_eq!(
        batches.len(),
        1,
        "the auditor (41) sees Zhengzhou's batch only"
    );
    assert_eq!(batches[0]["actor"], "token:staff-zhengzhou");
    assert_eq!(
        batches[0]["households"].as_array().unwrap().len(),
        expected_zz.len()
    );
    // The queue in /metrics.
    let m = c
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("hedui_job_queue_depth 0"), "{m}");
    assert!(m.contains("hedui_jobs{status=\"done\"} 2"), "{m}");
    assert!(server.log.lock().unwrap().contains("batch queued"));
}

/// Batch jobs survive the server: a server killed (-9) while a batch runs finds it at
/// its next start and runs it again, done (and audited) once; a bounded queue answers
/// 503 with Retry-After when full; SIGTERM waits `shutdown_grace_s` for the running
/// batch, then queues it again without counting the attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_jobs_survive_kill_and_the_queue_is_bounded() {
    let site = Site::new();
    site.config_variant(
        "bounded.toml",
        "max_queued_jobs = 3\nmax_queued_jobs_per_token = 2\nshutdown_grace_s = 1\n",
        "",
    );
    let zz = rows_of(&site, &["4101"]);
    let pause = [("HEDUI_PAUSE_BEFORE_RUN_DONE_MS", "600000")];
    let server = site.serve_with("bounded.toml", &pause);
    let c = client(&server);
    let (status, v) = submit(&c, &server, ADMIN, "text/csv", "a.csv", zz.clone()).await;
    assert_eq!(status, 202, "{v}");
    let a = v["batch_id"].as_str().unwrap().to_owned();
    // A's outputs are written; the worker is held before A is done.
    wait_log(&server, "batch: outputs written, pausing").await;
    let running: Value = get_as(&c, &server, ADMIN, &format!("/api/v1/batches/{a}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(running["status"], "running");
    assert!(running["progress"]["stage"].is_string(), "{running}");
    let mut queued = Vec::new();
    for name in ["b.csv", "c.csv"] {
        let (status, v) = submit(&c, &server, ADMIN, "text/csv", name, zz.clone()).await;
        assert_eq!(status, 202, "{v}");
        queued.push(v["batch_id"].as_str().unwrap().to_owned());
    }
    // One token's share of the queue is full: 503 for it, not for another token, until
    // the queue itself is full.
    let refused = |token: &'static str| {
        let (c, url, body) = (c.clone(), server.url.clone(), zz.clone());
        async move {
            let resp = c
                .post(format!("{url}/api/v1/batches"))
                .header("content-type", "text/csv")
                .bearer_auth(token)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 503);
            assert_eq!(resp.headers()["retry-after"], "60");
            let v = resp.json::<Value>().await.unwrap();
            assert_eq!(v["error"], "queue_full");
            v["message"].as_str().unwrap().to_owned()
        }
    };
    let why = refused(ADMIN).await;
    assert!(why.contains("该令牌已有 2 个批次在排队"), "{why}");
    let (status, v) = submit(&c, &server, STAFF_4101, "text/csv", "d.csv", zz.clone()).await;
    assert_eq!(status, 202, "{v}");
    queued.push(v["batch_id"].as_str().unwrap().to_owned());
    let why = refused(STAFF_4101).await;
    assert!(why.contains("已有 3 个批次在排队"), "{why}");
    let m = c
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("hedui_job_queue_depth 3"), "{m}");
    assert!(m.contains("hedui_jobs{status=\"running\"} 1"), "{m}");

    // kill -9 in the worst moment: outputs written, not yet done.
    drop(server);
    let server = site.serve_with("bounded.toml", &[]);
    let c = client(&server);
    let done = wait_batch(&c, &server, ADMIN, &a).await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_i64()),
        (Some("done"), Some(2)),
        "{done}"
    );
    for id in &queued {
        let done = wait_batch(&c, &server, ADMIN, id).await;
        assert_eq!(
            (done["status"].as_str(), done["attempts"].as_i64()),
            (Some("done"), Some(1))
        );
    }
    assert!(server.log.lock().unwrap().contains("queued again"));
    let audit: Value = get_as(&c, &server, ADMIN, "/api/v1/audit")
        .await
        .json()
        .await
        .unwrap();
    let n = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "batch")
        .count();
    assert_eq!(n, 4, "A, B, C and D are each audited once");
    drop(server);

    // SIGTERM while a batch runs: the server waits a second, queues it again and stops;
    // the next start runs it, and the interrupted attempt does not count.
    let server = site.serve_with("bounded.toml", &pause);
    let c = client(&server);
    let (_, v) = submit(&c, &server, ADMIN, "text/csv", "e.csv", zz.clone()).await;
    let e = v["batch_id"].as_str().unwrap().to_owned();
    wait_log(&server, "batch: outputs written, pausing").await;
    let mut server = server;
    assert!(Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap()
        .success());
    // It stops by itself after its grace (a deadline, not a measurement: a server that
    // waited for the job would still be running long after).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let code = loop {
        if let Some(code) = server.child.try_wait().unwrap() {
            break code;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server did not stop after its grace"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(code.success(), "{code:?}");
    assert!(server
        .log
        .lock()
        .unwrap()
        .contains("job still running at shutdown: queued again"));
    drop(server);
    let server = site.serve_with("bounded.toml", &[]);
    let c = client(&server);
    let done = wait_batch(&c, &server, ADMIN, &e).await;
    assert_eq!(
        (done["status"].as_str(), done["attempts"].as_i64()),
        (Some("done"), Some(1)),
        "{done}"
    );
    drop(server);

    // Retention: a batch finished longer ago than retention_days is deleted at start,
    // record and files.
    let db = rusqlite::Connection::open(site.dir.path().join("state/hedui.db")).unwrap();
    db.execute(
        "UPDATE jobs SET finished_at = '2000-01-01T00:00:00.000Z' WHERE id = ?1",
        [&e],
    )
    .unwrap();
    drop(db);
    assert!(site.dir.path().join("state/jobs").join(&e).exists());
    let server = site.serve_with("bounded.toml", &[]);
    let c = client(&server);
    wait_log(&server, "retention: expired jobs and runs deleted").await;
    let resp = get_as(&c, &server, ADMIN, &format!("/api/v1/batches/{e}")).await;
    assert_eq!(resp.status().as_u16(), 404);
    assert!(!site.dir.path().join("state/jobs").join(&e).exists());
    let resp = get_as(&c, &server, ADMIN, &format!("/api/v1/batches/{a}")).await;
    assert_eq!(resp.status().as_u16(), 200, "younger batches stay");
}

/// Waits (two minutes at most) until the server's log holds `what`.
async fn wait_log(s: &Server, what: &str) {
    for _ in 0..1200 {
        if s.log.lock().unwrap().contains(what) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!(
        "the server never logged {what:?}:\n{}",
        s.log.lock().unwrap()
    );
}

/// The first done reconciliation run of `server` (three minutes at most).
async fn first_done_run(c: &reqwest::Client, server: &Server) -> i64 {
    for _ in 0..900 {
        let runs: Value = get_as(c, server, ADMIN, "/api/v1/reconciliations")
            .await
            .json()
            .await
            .unwrap();
        if let Some(d) = runs["reconciliations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["status"] == "done")
        {
            return d["id"].as_i64().unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("no reconciliation finished");
}

/// The line of run `id`'s report that says the night's pulls.
async fn pulls_said(c: &reqwest::Client, server: &Server, id: i64) -> String {
    let report = get_as(
        c,
        server,
        ADMIN,
        &format!("/api/v1/reconciliations/{id}/report"),
    )
    .await
    .text()
    .await
    .unwrap();
    report
        .lines()
        .find(|l| l.contains("data-pulls"))
        .expect("the night's pulls in the report")
        .to_owned()
}

/// The alert rules of docs/prometheus/hedui-alerts.yml: a rule file of Prometheus's
/// shape (parsed with PyYAML, from the OpenAPI validators' Python, when at hand —
/// required where those are) whose every hedui_* metric is one the server's /metrics
/// exports; the server verifies the audit chain at start and says so there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_rules_use_what_the_server_exports() {
    let site = Site::new();
    let s = site.serve();
    let c = client(&s);
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = get_as(&c, &s, ADMIN, "/metrics")
            .await
            .text()
            .await
            .unwrap();
        if metrics.contains("hedui_audit_last_verified_timestamp_seconds ") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(metrics.contains("hedui_audit_chain_intact 1"), "{metrics}");
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/prometheus/hedui-alerts.yml");
    let rules = std::fs::read_to_string(&path).unwrap();
    let mut used: Vec<String> = Vec::new();
    let mut rest = rules.as_str();
    while let Some(at) = rest.find("hedui_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        if !used.contains(&name) {
            used.push(name);
        }
    }
    // `hedui_*` in the file's comment is no metric.
    used.retain(|n| !n.ends_with('_'));
    assert!(used.len() >= 6, "{used:?}");
    for name in &used {
        assert!(
            metrics.contains(&format!("# TYPE {name} ")),
            "{name} is used by an alert but not exported"
        );
    }
    let python = std::env::var("HEDUI_PYTHON").unwrap_or_else(|_| "python3".into());
    let parsed = std::process::Command::new(&python)
        .args([
            "-c",
            "import sys, yaml\n\
             d = yaml.safe_load(open(sys.argv[1]))\n\
             rules = [r for g in d['groups'] for r in g['rules']]\n\
             assert rules and all({'alert', 'expr', 'labels', 'annotations'} <= set(r) for r in rules), rules\n\
             print(len(rules))",
        ])
        .arg(&path)
        .output();
    match parsed {
        Ok(out) if out.status.success() => {
            assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "7");
        }
        other => assert!(
            std::env::var_os("HEDUI_REQUIRE_OPENAPI_VALIDATOR").is_none(),
            "the rule file does not parse: {other:?}"
        ),
    }
}

/// `[schedule] ingest`: the night pulls every source inside `serve`, as a job (a source
/// with a schedule of its own in a job of its own), then re-checks on what it pulled — a shop delivered into the property register after the
/// last ingest is in the night's reconciliation, the pulls' job ended before the
/// reconciliation's began, and /metrics counts each source's pull. A bad ingest cron
/// stops `serve` at start, named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_night_pulls_then_reconciles_on_what_it_pulled() {
    let site = Site::new();
    std::fs::write(
        site.p("recipients.csv"),
        rows_of(&site, &["41", "51", "11"]),
    )
    .unwrap();
    check_lake(&site, "recipients.csv", "before");
    let (hid, id, _) =
        support::pages::household_of(&site, "before/results.jsonl", "eligible", "4101");
    // Delivered by the department after the last ingest: only a pull brings it in.
    let mut prop = std::fs::read_to_string(site.p("city/sources/property.csv")).unwrap();
    prop.push_str(&format!(
        "{id},NIGHT-1,commercial,200.00,,2020-01-01,,测试路2号\n"
    ));
    std::fs::write(site.p("city/sources/property.csv"), prop).unwrap();

    site.config_variant(
        "bad-night.toml",
        "",
        "[schedule]\ningest = \"61 1 * * *\"\nreconcile = \"0 2 * * *\"\nrecipients = \"recipients.csv\"\n",
    );
    let out = hedui(&["serve", "--config", &site.p("bad-night.toml")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("schedule.ingest"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A source's own schedule is checked as the others are, and needs a [schedule].
    let base = std::fs::read_to_string(site.p("hedui.toml")).unwrap();
    for (name, extra, says) in [
        (
            "bad-own.toml",
            "[schedule]\nreconcile = \"0 2 * * *\"\nrecipients = \"recipients.csv\"\n",
            "source[4].schedule",
        ),
        ("lone-own.toml", "", "needs the [schedule] table"),
    ] {
        let text = base.replacen(
            "name = \"bank\"\n",
            "name = \"bank\"\nschedule = \"0 3 * * 9\"\n",
            1,
        ) + if extra.is_empty() { "" } else { extra };
        let text = if extra.is_empty() {
            text.replace("0 3 * * 9", "0 3 * * *")
        } else {
            text
        };
        std::fs::write(site.p(name), text).unwrap();
        let out = hedui(&["serve", "--config", &site.p(name)]);
        assert_eq!(out.status.code(), Some(2), "{name}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{name}: {err}");
    }
    site.config_variant(
        "night.toml",
        "",
        "[schedule]\ningest = \"* * * * *\"\nreconcile = \"* * * * *\"\nrecipients = \"recipients.csv\"\n",
    );
    // The bank delivers at its own hour: its own pull (caught up at start, as its 03:00
    // of the last day passed with none).
    let night = std::fs::read_to_string(site.p("night.toml")).unwrap();
    let own = night.replacen(
        "name = \"bank\"\n",
        "name = \"bank\"\nschedule = \"0 3 * * *\"\n",
        1,
    );
    assert_ne!(own, night);
    std::fs::write(site.p("night.toml"), own).unwrap();
    let server = site.serve_with("night.toml", &[]);
    let c = client(&server);
    let done = first_done_run(&c, &server).await;
    let changes: Value = get_as(
        &c,
        &server,
        ADMIN,
        &format!("/api/v1/reconciliations/{done}/changes?limit=1000"),
    )
    .await
    .json()
    .await
    .unwrap();
    let theirs = changes["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|ch| ch["household_id"] == hid.as_str())
        .expect("the household is in the night's run")
        .clone();
    assert!(
        theirs["added_flags"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "commercial_property"),
        "the night re-checked on what it pulled: {theirs}"
    );
    // The pulls' job ended before the reconciliation's began.
    let db = rusqlite::Connection::open(site.dir.path().join("state/hedui.db")).unwrap();
    let pulls = |input: &str| -> (String, Value) {
        let (at, summary): (String, String) = db
            .query_row(
                "SELECT finished_at, summary FROM jobs WHERE kind = 'ingest' AND status = 'done'
                 AND input = ?1",
                [input],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        (at, serde_json::from_str(&summary).unwrap())
    };
    let (ingest_done, summary) = pulls("");
    let (bank_done, bank) = pulls("bank");
    assert_eq!(bank["refreshed"], serde_json::json!(["bank"]), "{bank}");
    let reconcile_began: String = db
        .query_row(
            "SELECT min(started_at) FROM jobs WHERE kind = 'reconcile'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        ingest_done <= reconcile_began && bank_done <= reconcile_began,
        "{ingest_done} {bank_done} {reconcile_began}"
    );
    let refreshed = summary["refreshed"].as_array().unwrap();
    assert_eq!(refreshed.len(), 5, "{summary}");
    assert!(!refreshed.contains(&serde_json::json!("bank")), "{summary}");
    assert_eq!(summary["failed"], serde_json::json!([]));
    // The run's report says the night's pulls: when they ended, what they refreshed.
    let said = pulls_said(&c, &server, done).await;
    assert!(
        said.contains("<th>本晚拉取</th>")
            && said.contains("已更新：")
            && said.contains("不动产")
            && !said.contains("拉取失败"),
        "{said}"
    );
    let metrics = get_as(&c, &server, ADMIN, "/metrics")
        .await
        .text()
        .await
        .unwrap();
    // (The schedule pulls every minute: a slow machine may have seen a second night.)
    let committed = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("hedui_source_pulls_total{source=\"housing\",outcome=\"committed\"} ")
        })
        .and_then(|n| n.parse::<u64>().ok());
    assert!(
        committed.is_some_and(|n| n >= 1)
            && metrics
                .contains("hedui_source_pulls_total{source=\"housing\",outcome=\"failed\"} 0")
            && metrics.contains("hedui_source_last_pull_failed{source=\"housing\"} 0"),
        "{metrics}"
    );
}

/// A night whose pulls fail (every department's folder gone): the previous snapshots stay
/// current, the reconciliation still runs on them, and the failure is visible — the
/// report's 拉取失败, /metrics, an error line in the log, the sources page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_night_pull_keeps_the_snapshots_and_says_so() {
    let site = Site::new();
    std::fs::write(site.p("recipients.csv"), rows_of(&site, &["41"])).unwrap();
    std::fs::rename(site.p("city/sources"), site.p("city/sources-gone")).unwrap();
    support::pages::add_user(&site, "zhang", "admin", "41", "pass-word-1");
    site.config_variant(
        "night.toml",
        "",
        "[schedule]\ningest = \"* * * * *\"\nreconcile = \"* * * * *\"\nrecipients = \"recipients.csv\"\n",
    );
    let server = site.serve_with("night.toml", &[]);
    let c = client(&server);
    // It ran on the previous snapshots.
    let done = first_done_run(&c, &server).await;
    let said = pulls_said(&c, &server, done).await;
    assert!(
        said.contains("拉取失败：") && said.contains("不动产") && !said.contains("已更新："),
        "{said}"
    );
    // The run's page says it too.
    let b = support::pages::browser(&server);
    let (cookie, _) =
        support::pages::session(&b, &server, "zhang", "pass-word-1", "/ui/reconciliations").await;
    let (status, _, page) =
        support::pages::get(&b, &server, &cookie, &format!("/ui/reconciliations/{done}")).await;
    assert_eq!(status, 200);
    let on_page = page
        .lines()
        .find(|l| l.contains("data-pulls"))
        .expect("the night's pulls on the run's page");
    assert!(
        on_page.contains("拉取失败：") && on_page.contains("不动产") && !on_page.contains("已更新"),
        "{on_page}"
    );
    // Still checked on what the lake held (fresh enough): no household is incomplete.
    let changes: Value = get_as(
        &c,
        &server,
        ADMIN,
        &format!("/api/v1/reconciliations/{done}/changes?limit=1000"),
    )
    .await
    .json()
    .await
    .unwrap();
    let changes = changes["changes"].as_array().unwrap();
    assert!(!changes.is_empty());
    assert!(
        changes.iter().all(|ch| ch["verdict"] != "incomplete"),
        "{changes:?}"
    );
    let metrics = get_as(&c, &server, ADMIN, "/metrics")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("hedui_source_last_pull_failed{source=\"housing\"} 1")
            && metrics
                .contains("hedui_source_pulls_total{source=\"housing\",outcome=\"failed\"} 1"),
        "{metrics}"
    );
    wait_log(&server, "the night's pull failed").await;
    assert!(server.log.lock().unwrap().contains("ERROR"));
}

/// `[schedule]`: a reconciliation of the recipients is queued at the fire time (and one
/// missed within the last day at start); a server killed (-9) during the run finds the job
/// at its next start and runs it again, and the killed run is never the baseline; the
/// run's report leads with its changes and is served to tokens covering all its regions;
/// the run is audited as `schedule`. A bad cron expression stops `serve` at start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_reconciliation_survives_kill_and_reports_changes() {
    let site = Site::new();
    std::fs::write(
        site.p("recipients.csv"),
        rows_of(&site, &["41", "51", "11"]),
    )
    .unwrap();
    let expected = check_lake(&site, "recipients.csv", "recipients-out");
    site.config_variant(
        "bad-cron.toml",
        "",
        "[schedule]\nreconcile = \"0 25 * * *\"\nrecipients = \"recipients.csv\"\n",
    );
    let out = hedui(&["serve", "--config", &site.p("bad-cron.toml")]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("schedule.reconcile") && err.contains("hour"),
        "{err}"
    );

    site.config_variant(
        "scheduled.toml",
        "",
        "[schedule]\nreconcile = \"* * * * *\"\nrecipients = \"recipients.csv\"\n",
    );
    let server = site.serve_with(
        "scheduled.toml",
        &[("HEDUI_PAUSE_BEFORE_RUN_DONE_MS", "600000")],
    );
    // The fire time of this minute was missed before the server started: caught up now.
    wait_log(&server, "reconcile: outputs written, pausing").await;
    let c = client(&server);
    let runs: Value = get_as(&c, &server, ADMIN, "/api/v1/reconciliations")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(runs["reconciliations"][0]["status"], "running", "{runs}");
    let killed = runs["reconciliations"][0]["id"].as_i64().unwrap();
    drop(server);

    let server = site.serve_with("scheduled.toml", &[]);
    let c = client(&server);
    let mut done = None;
    for _ in 0..600 {
        let runs: Value = get_as(&c, &server, ADMIN, "/api/v1/reconciliations")
            .await
            .json()
            .await
            .unwrap();
        let list = runs["reconciliations"].as_array().unwrap().clone();
        if let Some(d) = list.iter().rev().find(|r| r["status"] == "done") {
            let k = list.iter().find(|r| r["id"] == killed).unwrap();
            assert_eq!(k["status"], "failed", "the killed run: {runs}");
            done = Some(d["id"].as_i64().unwrap());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let done = done.expect("no scheduled run finished");
    assert!(done > killed);
    // The killed run was never a baseline: the first done run finds every household new.
    let changes: Value = get_as(
        &c,
        &server,
        ADMIN,
        &format!("/api/v1/reconciliations/{done}/changes"),
    )
    .await
    .json()
    .await
    .unwrap();
    let changes = changes["changes"].as_array().unwrap();
    // Every household is new: the checked ones, and those whose rows were refused
    // (`rejected`: on the list, not checked).
    let refused: std::collections::BTreeSet<String> =
        lines(&site.dir.path().join("recipients-out/rejected.jsonl"))
            .iter()
            .map(|r| r["household_id"].as_str().unwrap().to_owned())
            .filter(|h| !h.is_empty())
            .collect();
    assert_eq!(changes.len(), expected.len() + refused.len());
    assert_eq!(
        changes
            .iter()
            .filter(|c| c["verdict"] == "rejected")
            .count(),
        refused.len()
    );
    assert!(changes.iter().all(|c| c["previous_verdict"].is_null()));
    // The run's report, changes first.
    let report = get_as(
        &c,
        &server,
        ADMIN,
        &format!("/api/v1/reconciliations/{done}/report"),
    )
    .await;
    assert_eq!(report.status().as_u16(), 200);
    let report = report.text().await.unwrap();
    let changes_at = report.find("一、本次复核的变化").expect("changes section");
    assert!(changes_at < report.find("二、总体情况").unwrap());
    assert!(report.contains("首次复核"));
    // Staff of one city may not read a report that shows other regions' households; the
    // auditor reads no run; the killed run has no report.
    for (token, path, want) in [
        (
            STAFF_4101,
            format!("/api/v1/reconciliations/{done}/report"),
            404,
        ),
        (
            AUDITOR,
            format!("/api/v1/reconciliations/{done}/report"),
            403,
        ),
        (
            ADMIN,
            format!("/api/v1/reconciliations/{killed}/report"),
            404,
        ),
    ] {
        assert_eq!(
            get_as(&c, &server, token, &path).await.status().as_u16(),
            want,
            "{token} {path}"
        );
    }
    // Audited as the schedule, once per completed run.
    let audit: Value = get_as(&c, &server, ADMIN, "/api/v1/audit")
        .await
        .json()
        .await
        .unwrap();
    let scheduled: Vec<&Value> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "schedule")
        .collect();
    assert!(!scheduled.is_empty());
    assert!(scheduled.iter().all(|e| e["actor"] == "schedule"));
    let runs: Value = get_as(&c, &server, ADMIN, "/api/v1/reconciliations")
        .await
        .json()
        .await
        .unwrap();
    let done_runs = runs["reconciliations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["status"] == "done")
        .count();
    assert!(
        scheduled.len() <= done_runs,
        "{} entries, {done_runs} runs",
        scheduled.len()
    );
}

/// Every route × every role × regions: what a token may do is exactly what its role and
/// region prefixes allow — by list and by direct id; a batch or run of other regions is
/// 404 (its existence is not told), a role that may not is 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_by_region_matrix() {
    let site = Site::new();
    // Runs: one of Zhengzhou and Ziyang (41, 51), one of Beijing (11) only.
    std::fs::write(site.p("r1.csv"), rows_of(&site, &["4101", "5120"])).unwrap();
    std::fs::write(site.p("r2.csv"), rows_of(&site, &["1101"])).unwrap();
    for (recipients, out) in [("r1.csv", "r1"), ("r2.csv", "r2")] {
        ok(hedui(&[
            "reconcile",
            "--recipients",
            &site.p(recipients),
            "--lake",
            &site.p("lake"),
            "--policy",
            &site.p("city/policy.toml"),
            "--state",
            &site.p("state"),
            "--as-of",
            &site.today,
            "--out",
            &site.p(out),
        ]));
    }
    let server = site.serve();
    let c = client(&server);
    // (token, role, regions)
    let tokens: [(&str, &str, &[&str]); 5] = [
        (ADMIN, "admin", &["41", "51", "11"]),
        (STAFF_4101, "staff", &["4101"]),
        (SYSTEM_5120, "system", &["5120"]),
        (AUDITOR, "auditor", &["41"]),
        (FUJIAN, "system", &["35"]),
    ];
    let covers = |regions: &[&str], code: &str| regions.iter().any(|p| code.starts_with(p));
    let checks_role = |role: &str| role != "auditor";

    // One household per region through POST /checks.
    let all = bodies(&site);
    for prefix in ["4101", "5120", "1101", "4601"] {
        let body = match all
            .iter()
            .find(|(_, b)| b["region_code"].as_str().unwrap().starts_with(prefix))
        {
            Some((_, b)) => b.clone(),
            // Haikou is nobody's region (nor the policy's): refused before validation.
            None => {
                let mut b = all[0].1.clone();
                b["region_code"] = json!("460106");
                b
            }
        };
        let body = &body;
        let code = body["region_code"].as_str().unwrap();
        for (token, role, regions) in tokens {
            let want = if checks_role(role) && covers(regions, code) {
                200
            } else {
                403
            };
            let (status, v) = post(&c, &server, Some(token), body).await;
            assert_eq!(status, want, "check {code} as {role} {regions:?}: {v}");
        }
    }

    // Batches: each token submits each region's rows; allowed iff the role checks and
    // every region of the batch is the token's.
    let mut batches: Vec<(String, &str, &str)> = Vec::new(); // (id, submitter, prefix)
    for prefix in ["4101", "5120", "1101", "4601"] {
        let rows = rows_of(&site, &[prefix]);
        for (token, role, regions) in tokens {
            let want = if checks_role(role) && covers(regions, prefix) {
                202
            } else {
                403
            };
            let (status, v) = submit(&c, &server, token, "text/csv", "m.csv", rows.clone()).await;
            assert_eq!(status, want, "submit {prefix} as {role} {regions:?}: {v}");
            if status == 202 {
                batches.push((v["batch_id"].as_str().unwrap().to_owned(), token, prefix));
            }
        }
    }
    assert_eq!(batches.len(), 5, "4101 ×2, 5120 ×2, 1101 ×1");
    for (id, submitter, _) in &batches {
        let done = wait_batch(&c, &server, submitter, id).await;
        assert_eq!(done["status"], "done", "{done}");
    }
    // Every batch by id, on every route, for every token.
    let mut staff_accounts = 0;
    for (id, submitter, prefix) in &batches {
        for (token, role, regions) in tokens {
            let want = if !checks_role(role) {
                403
            } else if token == *submitter || covers(regions, prefix) {
                200
            } else {
                404
            };
            for tail in ["", "/results", "/rejected", "/report"] {
                let resp = get_as(&c, &server, token, &format!("/api/v1/batches/{id}{tail}")).await;
                assert_eq!(
                    resp.status().as_u16(),
                    want,
                    "batch {prefix} by {submitter:.5} {tail} as {role} {regions:?}"
                );
                // Masking by role: staff never see a member's full ID number, in
                // results or reports; systems and admins see them in results.
                if want == 200 && tail != "" {
                    let text = resp.text().await.unwrap();
                    let ids = ids_of(&rows_of(&site, &[prefix]));
                    let full = ids.iter().filter(|i| text.contains(i.as_str())).count();
                    let expect_full = tail == "/results" && role != "staff";
                    assert!(
                        if expect_full { full > 0 } else { full == 0 },
                        "batch {prefix} {tail} as {role}: {full} full ID numbers"
                    );
                    // Account numbers alike: masked for staff wherever they stand.
                    for acc in text.split("\"account_no\":\"").skip(1) {
                        let acc = acc.split('"').next().unwrap_or("");
                        if tail == "/results" && role != "staff" {
                            assert!(!acc.contains('*'), "{acc} as {role}");
                        } else if tail == "/results" {
                            assert!(acc.contains('*'), "account {acc} in full to staff");
                            staff_accounts += 1;
                        }
                    }
                }
            }
        }
    }

    assert!(
        staff_accounts > 0,
        "no account evidence reached staff to be masked"
    );

    // Runs: listed iff one of their regions is the token's (run 2 reports run 1's
    // households as gone from the list: their regions see it); by id the same; changes
    // only of the token's regions; no CLI run has a report on the server.
    let run_regions: [(i64, &str, &[&str]); 2] = [
        (1, "r1", &["4101", "5120"]),
        (2, "r2", &["1101", "4101", "5120"]),
    ];
    for (token, role, regions) in tokens {
        let list = get_as(&c, &server, token, "/api/v1/reconciliations").await;
        if role == "auditor" {
            assert_eq!(list.status().as_u16(), 403);
        } else {
            let list: Value = list.json().await.unwrap();
            let ids: Vec<i64> = list["reconciliations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_i64().unwrap())
                .collect();
            let want: Vec<i64> = run_regions
                .iter()
                .rev()
                .filter(|(_, _, rs)| rs.iter().any(|r| covers(regions, r)))
                .map(|(id, _, _)| *id)
                .collect();
            assert_eq!(ids, want, "runs listed for {role} {regions:?}");
        }
        for (id, out, rs) in run_regions {
            let visible = rs.iter().any(|r| covers(regions, r));
            let resp = get_as(
                &c,
                &server,
                token,
                &format!("/api/v1/reconciliations/{id}/changes"),
            )
            .await;
            let want = if role == "auditor" {
                403
            } else if visible {
                200
            } else {
                404
            };
            assert_eq!(
                resp.status().as_u16(),
                want,
                "run {id} changes as {role} {regions:?}"
            );
            if want == 200 {
                let v: Value = resp.json().await.unwrap();
                let got: Vec<String> = v["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| c["household_id"].as_str().unwrap().to_owned())
                    .collect();
                // changes.jsonl of the run, those of the token's regions (a household
                // that left the list has its region from the run that had it).
                let region: std::collections::BTreeMap<String, String> = ["r1", "r2"]
                    .iter()
                    .flat_map(|o| lines(&site.dir.path().join(o).join("results.jsonl")))
                    .map(|r| {
                        (
                            r["household_id"].as_str().unwrap().to_owned(),
                            r["region_code"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect();
                let want: Vec<String> = lines(&site.dir.path().join(out).join("changes.jsonl"))
                    .iter()
                    .map(|c| c["household_id"].as_str().unwrap().to_owned())
                    // A household rejected in every run has its region from the list.
                    .filter(|h| {
                        let r = region
                            .get(h)
                            .cloned()
                            .unwrap_or_else(|| listed_region(&site, h));
                        covers(regions, &r)
                    })
                    .collect();
                assert_eq!(got, want, "run {id} changes as {role} {regions:?}");
            }
            let resp = get_as(
                &c,
                &server,
                token,
                &format!("/api/v1/reconciliations/{id}/report"),
            )
            .await;
            let want = if role == "auditor" { 403 } else { 404 };
            assert_eq!(resp.status().as_u16(), want, "run {id} report as {role}");
        }
    }

    // Without a token, or with one that is not configured, every route but the open
    // three is 401.
    let (id, _, _) = &batches[0];
    for path in [
        "/api/v1/batches".to_owned(),
        format!("/api/v1/batches/{id}"),
        format!("/api/v1/batches/{id}/results"),
        format!("/api/v1/batches/{id}/rejected"),
        format!("/api/v1/batches/{id}/report"),
        "/api/v1/reconciliations".to_owned(),
        "/api/v1/reconciliations/1/changes".to_owned(),
        "/api/v1/reconciliations/1/report".to_owned(),
        "/api/v1/audit".to_owned(),
    ] {
        let bare = c.get(format!("{}{path}", server.url)).send().await.unwrap();
        assert_eq!(bare.status().as_u16(), 401, "{path} without a token");
        let wrong = get_as(&c, &server, "not-a-token", &path).await;
        assert_eq!(wrong.status().as_u16(), 401, "{path} with an unknown token");
    }
    for path in ["/api/v1/checks", "/api/v1/batches"] {
        let bare = c
            .post(format!("{}{path}", server.url))
            .body("x")
            .send()
            .await
            .unwrap();
        assert_eq!(bare.status().as_u16(), 401, "POST {path} without a token");
    }

    // The audit log: auditors and admins only, each entry's households of its regions.
    for (token, role, regions) in tokens {
        let resp = get_as(&c, &server, token, "/api/v1/audit").await;
        if !matches!(role, "auditor" | "admin") {
            assert_eq!(resp.status().as_u16(), 403, "audit as {role}");
            continue;
        }
        let v: Value = resp.json().await.unwrap();
        let entries = v["entries"].as_array().unwrap();
        assert!(!entries.is_empty());
        for e in entries {
            for h in e["households"].as_array().unwrap() {
                assert!(
                    covers(regions, h["region_code"].as_str().unwrap()),
                    "{role}: {h}"
                );
            }
        }
        // Someone else's region asked for by filter: nothing.
        let none: Value = get_as(&c, &server, token, "/api/v1/audit?region=46")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(none["entries"], json!([]), "{role}");
    }
}

/// The recipients list in the hub: a list with rejected rows is refused whole (422, the
/// rows answered by number, nothing changed), one naming regions outside the caller's is
/// 403, staff may not replace it; an accepted one replaces the list (version, households,
/// added, removed), is listed a page at a time (IDs masked for staff, its read audited),
/// and `POST /api/v1/reconciliations` runs one on it now (202 `{"id"}`, 409 while one
/// waits or runs), reading the hub's list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recipients_list_is_kept_in_the_hub() {
    let site = Site::new();
    let server = site.serve();
    let c = client(&server);
    // No list yet, and no [schedule]: nothing to reconcile.
    let none = c
        .post(format!("{}/api/v1/reconciliations", server.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(none.status().as_u16(), 409);
    let none: Value = none.json().await.unwrap();
    assert_eq!(none["error"], "no_recipients", "{none}");

    let mut csv = rows_of(&site, &["41"]);
    let (status, body) = put_list(&c, &server, STAFF_4101, csv.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = put_list(&c, &server, ADMIN, rows_of(&site, &["41", "35"])).await;
    assert!(status == 403 || status == 422, "{body}");
    // The city's applicants have rows a clerk got wrong: refused whole, by row.
    let (status, body) = put_list(&c, &server, ADMIN, csv.clone()).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"], "rejected_rows");
    assert!(
        body["message"].as_str().unwrap().contains("名单未更换"),
        "{body}"
    );
    let listed: Value = get_as(&c, &server, ADMIN, "/api/v1/recipients")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["version"], Value::Null, "nothing changed: {listed}");
    assert_eq!(listed["households"].as_array().unwrap().len(), 0);
    // Without the households of the rejected rows it is accepted.
    let mut first = Value::Null;
    for _ in 0..4 {
        let (status, body) = put_list(&c, &server, ADMIN, csv.clone()).await;
        if status == 200 {
            first = body;
            break;
        }
        assert_eq!(status, 422, "{body}");
        csv = without_rejected(&csv, body["rejections"].as_array().unwrap());
    }
    let n = first["households"].as_i64().unwrap();
    assert!(n > 3, "{first}");
    assert_eq!(
        (first["added"].as_i64(), first["removed"].as_i64()),
        (Some(n), Some(0))
    );
    // A caller that read no list yet (version 0) does not replace the one there now.
    let resp = c
        .put(format!(
            "{}/api/v1/recipients?expected_version=0",
            server.url
        ))
        .bearer_auth(ADMIN)
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 409);
    let stale: Value = resp.json().await.unwrap();
    assert_eq!(stale["error"], "list_changed", "{stale}");
    // The same list again changes nothing but its version.
    let (status, same) = put_list(&c, &server, ADMIN, csv.clone()).await;
    assert_eq!(status, 200, "{same}");
    assert_eq!(
        (
            same["households"].as_i64(),
            same["added"].as_i64(),
            same["removed"].as_i64()
        ),
        (Some(n), Some(0), Some(0))
    );
    // A page at a time; staff see their region only, the ID numbers masked.
    let page: Value = get_as(&c, &server, ADMIN, "/api/v1/recipients?limit=2")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page["version"], same["version"]);
    assert_eq!(page["households"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let next: Value = get_as(
        &c,
        &server,
        ADMIN,
        &format!("/api/v1/recipients?limit=2&cursor={cursor}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_ne!(
        next["households"][0]["household_id"],
        page["households"][0]["household_id"]
    );
    let id = page["households"][0]["members"][0]["id_number"]
        .as_str()
        .unwrap();
    assert_eq!(id.len(), 18, "the admin sees the full ID: {id}");
    let staff: Value = get_as(&c, &server, STAFF_4101, "/api/v1/recipients?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let staff = staff["households"].as_array().unwrap();
    assert!(!staff.is_empty());
    assert!(staff
        .iter()
        .all(|h| h["region_code"].as_str().unwrap().starts_with("4101")));
    assert!(
        staff
            .iter()
            .all(|h| h["members"][0]["id_number"].as_str().unwrap().contains('*')),
        "{staff:?}"
    );
    let bad = get_as(&c, &server, ADMIN, "/api/v1/recipients?cursor=zz").await;
    assert_eq!(bad.status().as_u16(), 400);

    // A smaller list: what it removed is counted.
    let fewer: Vec<u8> = {
        let lines: Vec<&[u8]> = csv.split_inclusive(|b| *b == b'\n').collect();
        let last_household =
            String::from_utf8_lossy(lines.last().unwrap().split(|b| *b == b',').next().unwrap())
                .into_owned();
        lines
            .into_iter()
            .filter(|l| !l.starts_with(last_household.as_bytes()))
            .flat_map(|l| l.to_vec())
            .collect()
    };
    let (status, second) = put_list(&c, &server, ADMIN, fewer).await;
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["households"].as_i64(), Some(n - 1));
    assert_eq!(
        (second["added"].as_i64(), second["removed"].as_i64()),
        (Some(0), Some(1))
    );
    assert!(second["version"].as_i64() > first["version"].as_i64());
    // A page's cursor from before the replacement is refused, not mixed.
    let stale = get_as(
        &c,
        &server,
        ADMIN,
        &format!("/api/v1/recipients?limit=2&cursor={cursor}"),
    )
    .await;
    assert_eq!(stale.status().as_u16(), 400);
    let stale: Value = stale.json().await.unwrap();
    assert_eq!(stale["error"], "list_replaced", "{stale}");
    // The history, newest first, a page at a time: who, the counts.
    let history: Value = get_as(&c, &server, ADMIN, "/api/v1/recipients/history?limit=2")
        .await
        .json()
        .await
        .unwrap();
    let lists = history["lists"].as_array().unwrap();
    assert_eq!(lists[0]["version"], second["version"], "{history}");
    assert_eq!(lists[0]["actor"], "token:admin");
    assert_eq!(
        (lists[0]["removed"].as_i64(), lists[1]["removed"].as_i64()),
        (Some(1), Some(0))
    );
    let older = history["next_cursor"]
        .as_str()
        .expect("a third list")
        .to_owned();
    let last: Value = get_as(
        &c,
        &server,
        ADMIN,
        &format!("/api/v1/recipients/history?limit=2&cursor={older}"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(last["lists"][0]["version"], first["version"], "{last}");
    assert_eq!(last["next_cursor"], Value::Null);
    let staff = get_as(&c, &server, STAFF_4101, "/api/v1/recipients/history").await;
    assert_eq!(staff.status().as_u16(), 403);

    // A reconciliation now, on the hub's list.
    let started = c
        .post(format!("{}/api/v1/reconciliations", server.url))
        .bearer_auth(SYSTEM_5120)
        .send()
        .await
        .unwrap();
    assert_eq!(started.status().as_u16(), 202);
    let started: Value = started.json().await.unwrap();
    assert_eq!(started["id"].as_str().unwrap().len(), 32, "{started}");
    let again = c
        .post(format!("{}/api/v1/reconciliations", server.url))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 409);
    let staff_start = c
        .post(format!("{}/api/v1/reconciliations", server.url))
        .bearer_auth(STAFF_4101)
        .send()
        .await
        .unwrap();
    assert_eq!(staff_start.status().as_u16(), 403);
    let done = first_done_run(&c, &server).await;
    let changes: Value = get_as(
        &c,
        &server,
        ADMIN,
        &format!("/api/v1/reconciliations/{done}/changes?limit=1000"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        changes["changes"].as_array().unwrap().len() as i64,
        n - 1,
        "every household of the hub's list is new: {changes}"
    );
    // Replacing, and reading, the list are in the audit log.
    let audit: Value = get_as(&c, &server, ADMIN, "/api/v1/audit?limit=1000")
        .await
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    assert!(
        text.contains("\"kind\":\"recipients\"") && text.contains("api_recipients"),
        "{text}"
    );
}

/// Before the hub holds a list, the night reads the config's: a token that does not
/// cover all of that file's regions may not replace it with its own region's list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_list_must_cover_the_configured_one() {
    let site = Site::new();
    std::fs::write(site.p("recipients.csv"), rows_of(&site, &["41", "5120"])).unwrap();
    site.config_variant(
        "listed.toml",
        "",
        "[schedule]\nreconcile = \"0 2 * * *\"\nrecipients = \"recipients.csv\"\n",
    );
    let server = site.serve_with("listed.toml", &[]);
    let c = client(&server);
    let (status, body) = put_list(&c, &server, SYSTEM_5120, rows_of(&site, &["5120"])).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("当前在保名单中有您无权管理的行政区划"),
        "{body}"
    );
    let listed: Value = get_as(&c, &server, ADMIN, "/api/v1/recipients")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["version"], Value::Null, "nothing changed: {listed}");
}

/// A health check reads the database file's header without giving up SQLite's lock on
/// it: a `hedui` command run beside the server afterwards (an account added) must not
/// take the database for unused and delete its write-ahead log under the server — the
/// server's later writes would be lost and the audit log would no longer reach its
/// anchor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_check_keeps_the_database_lock() {
    let site = Site::new();
    let server = site.serve();
    let c = client(&server);
    let list = accepted_rows(&site, &["41"]);
    let (status, body) = put_list(&c, &server, ADMIN, list.clone()).await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..3 {
        let h = c
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(h.status().as_u16(), 200);
    }
    support::pages::add_user(&site, "beside", "staff", "4101", "beside-password-1");
    let (status, body) = put_list(&c, &server, ADMIN, list).await;
    assert_eq!(status, 200, "{body}");
    let fds = std::fs::read_dir(format!("/proc/{}/fd", server.child.id())).unwrap();
    for fd in fds.map(Result::unwrap) {
        let target = std::fs::read_link(fd.path()).unwrap_or_default();
        assert!(
            !target.display().to_string().contains("(deleted)"),
            "the server writes into a deleted file: {}",
            target.display()
        );
    }
    let verify = hedui(&["audit", "verify", "--config", &site.p("hedui.toml")]);
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stderr)
    );
}
