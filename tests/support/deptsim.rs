//! A department simulator for the tests: a real HTTPS server (axum over tokio-rustls, on
//! loopback, certificates made by rcgen at test time) that serves department-style
//! records in the SPEC §9 protocol — snapshot pages with cursors and lookups by ID — and
//! injects faults on demand: 5xx, 429 with Retry-After, slow answers, a connection reset
//! mid-page, a truncated JSON page, an expired token.

#![allow(dead_code)]

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::value::RawValue;
use serde_json::{json, Value};

/// A record as JSON text.
fn raw(v: &Value) -> Box<RawValue> {
    serde_json::value::to_raw_value(v).unwrap()
}

/// A fault the next request meets.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Answer normally.
    None,
    /// Answer with this status (500, 503 …).
    Status(u16),
    /// 429 with `Retry-After: secs`.
    TooMany(u64),
    /// Wait this long, then answer normally (past the client's timeout).
    Slow(Duration),
    /// Send half the page, then break the connection.
    ResetMidPage,
    /// Send a complete HTTP answer whose JSON page is cut off.
    TruncatedJson,
    /// 401, as for an expired token.
    Unauthorized,
    /// Answer with this status and `Retry-After: secs` (a 503 saying "come back now").
    StatusRetryAfter(u16, u64),
    /// Answer normally, but hand out this `next_cursor` (cycles, endless chains).
    NextCursor(String),
    /// Answer with every cursor new and never a last page (`n{count}`), records empty.
    EndlessCursors,
    /// Answer with one record more than the `limit` asked for.
    ExtraRecord,
    /// Answer normally, the JSON followed by this many bytes of whitespace.
    Padded(usize),
}

/// One request the department received.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The table asked for.
    pub table: String,
    /// Snapshot mode: the cursor sent.
    pub cursor: Option<String>,
    /// Lookup mode: the ID numbers asked for.
    pub ids: Vec<String>,
    /// Lookup mode: the authorization sent.
    pub authorization_id: Option<String>,
    /// The fault applied.
    pub fault: Fault,
    /// When the request arrived.
    pub at: std::time::Instant,
}

/// A department: its tables (records with its own field names and codes), the field
/// carrying the ID number per table, its token, and the faults to inject.
#[derive(Debug, Default)]
pub struct Department {
    /// Records kept as their JSON text: a city of millions of records fits in memory.
    tables: HashMap<String, Vec<Box<RawValue>>>,
    id_field: HashMap<String, String>,
    token: Option<String>,
    faults: Mutex<VecDeque<Fault>>,
    always: Mutex<Option<Fault>>,
    log: Mutex<Vec<Logged>>,
}

impl Department {
    /// A department that answers only with `Authorization: Bearer {token}` (when given).
    pub fn new(token: Option<&str>) -> Self {
        Department {
            token: token.map(str::to_owned),
            ..Default::default()
        }
    }

    /// Adds a table; `id_field` is the department's name for the ID number.
    pub fn table(self, name: &str, id_field: &str, records: Vec<Value>) -> Self {
        let raw = records.iter().map(raw).collect();
        self.table_raw(name, id_field, raw)
    }

    /// Adds a table of records already as JSON text.
    pub fn table_raw(mut self, name: &str, id_field: &str, records: Vec<Box<RawValue>>) -> Self {
        self.tables.insert(name.to_owned(), records);
        self.id_field.insert(name.to_owned(), id_field.to_owned());
        self
    }

    /// The next requests meet these faults, in order (then normal answers).
    pub fn inject(&self, faults: impl IntoIterator<Item = Fault>) {
        self.faults.lock().unwrap().extend(faults);
    }

    /// Every request meets this fault until cleared with `None`.
    pub fn always(&self, fault: Option<Fault>) {
        *self.always.lock().unwrap() = fault;
    }

    /// The requests received so far.
    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }

    fn next_fault(&self) -> Fault {
        if let Some(f) = self.always.lock().unwrap().clone() {
            return f;
        }
        self.faults
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Fault::None)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        match &self.token {
            None => true,
            Some(t) => headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v == format!("Bearer {t}")),
        }
    }
}

/// Certificates for one test: a CA, a server certificate for 127.0.0.1/localhost signed
/// by it, a client certificate signed by it, and a server certificate from a rogue CA.
pub struct Pki {
    /// The CA certificate (PEM) hedui is told to trust (`ca_file`).
    pub ca_pem: String,
    ca: Issuer<'static, KeyPair>,
    ca_der: CertificateDer<'static>,
    /// hedui's client certificate and key (PEM), for mutual TLS.
    pub client_cert_pem: String,
    /// The client key (PEM).
    pub client_key_pem: String,
}

fn ca(name: &str) -> (String, CertificateDer<'static>, Issuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), cert.der().clone(), Issuer::new(params, key))
}

fn leaf(
    names: &[&str],
    issuer: &Issuer<'static, KeyPair>,
) -> (CertificateDer<'static>, String, KeyPair) {
    let params =
        CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    (cert.der().clone(), cert.pem(), key)
}

impl Pki {
    /// Fresh certificates.
    pub fn new() -> Pki {
        let (ca_pem, ca_der, ca) = ca("hedui test department CA");
        let (_, client_cert_pem, client_key) = leaf(&["hedui-client"], &ca);
        Pki {
            ca_pem,
            ca,
            ca_der,
            client_cert_pem,
            client_key_pem: client_key.serialize_pem(),
        }
    }

    fn server_cert(&self, rogue: bool) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let names = ["localhost", "127.0.0.1"];
        let (der, _, key) = if rogue {
            let (_, _, other) = ca("somebody else's CA");
            leaf(&names, &other)
        } else {
            leaf(&names, &self.ca)
        };
        (
            vec![der],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
    }

    /// The server's TLS settings: signed by this CA (or by a rogue CA), optionally
    /// requiring a client certificate signed by this CA.
    pub fn server_config(&self, rogue: bool, require_client_cert: bool) -> rustls::ServerConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let (chain, key) = self.server_cert(rogue);
        let builder = if require_client_cert {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca_der.clone()).unwrap();
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let mut cfg = builder.with_single_cert(chain, key).unwrap();
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        cfg
    }
}

/// A running simulator; stops when dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Running {
    /// The base URL of the department's API.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}/api", self.addr.port())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Starts `dept` on 127.0.0.1 (a free port) with `tls`, on its own thread and runtime,
/// so that tests can run the `hedui` binary against it.
pub fn start(dept: Arc<Department>, tls: rustls::ServerConfig) -> Running {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(serve(dept, tls, addr_tx, stop_rx));
    });
    let addr = addr_rx.recv().unwrap();
    Running {
        addr,
        shutdown: Some(stop_tx),
        thread: Some(thread),
    }
}

/// Serves until `stop` fires; sends the bound address first.
pub async fn serve(
    dept: Arc<Department>,
    tls: rustls::ServerConfig,
    addr_tx: std::sync::mpsc::Sender<SocketAddr>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    addr_tx.send(listener.local_addr().unwrap()).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let app = router(dept);
    loop {
        let (tcp, _) = tokio::select! {
            _ = &mut stop => break,
            r = listener.accept() => match r { Ok(c) => c, Err(_) => continue },
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            // A client that does not trust us (or is not trusted) ends here.
            let Ok(stream) = acceptor.accept(tcp).await else {
                return;
            };
            let svc = hyper_util::service::TowerToHyperService::new(app);
            let _ =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new())
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
        });
    }
}

fn router(dept: Arc<Department>) -> Router {
    Router::new()
        .route("/api/{table}", get(snapshot))
        .route("/api/{table}/query", post(lookup))
        .with_state(dept)
}

/// Applies a fault that answers instead of the department (None: go on normally).
async fn fault_answer(fault: &Fault) -> Option<Response> {
    match fault {
        Fault::Status(code) => Some(
            (
                StatusCode::from_u16(*code).unwrap(),
                "department system unavailable",
            )
                .into_response(),
        ),
        Fault::TooMany(secs) => Some(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [(header::RETRY_AFTER, secs.to_string())],
                "slow down",
            )
                .into_response(),
        ),
        Fault::Unauthorized => Some((StatusCode::UNAUTHORIZED, "token expired").into_response()),
        Fault::StatusRetryAfter(code, secs) => Some(
            (
                StatusCode::from_u16(*code).unwrap(),
                [(header::RETRY_AFTER, secs.to_string())],
                "department system unavailable",
            )
                .into_response(),
        ),
        Fault::Slow(d) => {
            tokio::time::sleep(*d).await;
            None
        }
        _ => None,
    }
}

/// The page body, spoiled as the fault says.
fn page(fault: &Fault, body: Vec<u8>) -> Response {
    match fault {
        Fault::TruncatedJson => {
            let cut = body[..body.len() / 2].to_vec();
            ([(header::CONTENT_TYPE, "application/json")], cut).into_response()
        }
        Fault::ResetMidPage => {
            let half = Bytes::from(body[..body.len() / 2].to_vec());
            let stream = futures::stream::iter(vec![
                Ok::<Bytes, std::io::Error>(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "simulated reset",
                )),
            ]);
            Response::builder()
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Fault::Padded(n) => {
            let mut body = body;
            body.extend(std::iter::repeat_n(b' ', *n));
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        _ => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
    }
}

async fn snapshot(
    State(dept): State<Arc<Department>>,
    Path(table): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let fault = dept.next_fault();
    dept.log.lock().unwrap().push(Logged {
        method: "GET",
        table: table.clone(),
        cursor: q.get("cursor").cloned(),
        ids: vec![],
        authorization_id: None,
        fault: fault.clone(),
        at: std::time::Instant::now(),
    });
    if !dept.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    if let Some(r) = fault_answer(&fault).await {
        return r;
    }
    let Some(records) = dept.tables.get(&table) else {
        return (StatusCode::NOT_FOUND, "no such table").into_response();
    };
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(100);
    if fault == Fault::EndlessCursors {
        let n = dept.log.lock().unwrap().len();
        let body =
            serde_json::to_vec(&json!({ "records": [], "next_cursor": format!("n{n}") })).unwrap();
        return page(&fault, body);
    }
    let offset: usize = match q.get("cursor") {
        None => 0,
        Some(c) => match c.strip_prefix("c").and_then(|n| n.parse().ok()) {
            Some(n) => n,
            None => return (StatusCode::BAD_REQUEST, "bad cursor").into_response(),
        },
    };
    let end = (offset + limit).min(records.len());
    let mut next = (end < records.len()).then(|| format!("c{end}"));
    if let Fault::NextCursor(c) = &fault {
        next = Some(c.clone());
    }
    let mut answer: Vec<&RawValue> = records[offset.min(end)..end]
        .iter()
        .map(|r| r.as_ref())
        .collect();
    if fault == Fault::ExtraRecord {
        answer.push(records[0].as_ref());
    }
    let body = serde_json::to_vec(&json!({
        "records": answer,
        "next_cursor": next,
    }))
    .unwrap();
    page(&fault, body)
}

async fn lookup(
    State(dept): State<Arc<Department>>,
    Path(table): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fault = dept.next_fault();
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let ids: Vec<String> = req["id_numbers"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let authorization_id = req["authorization_id"].as_str().map(str::to_owned);
    dept.log.lock().unwrap().push(Logged {
        method: "POST",
        table: table.clone(),
        cursor: None,
        ids: ids.clone(),
        authorization_id: authorization_id.clone(),
        fault: fault.clone(),
        at: std::time::Instant::now(),
    });
    if !dept.authorized(&headers) {
        return (StatusCode::UNAUTHORIZED, "bad token").into_response();
    }
    if authorization_id.as_deref().is_none_or(str::is_empty) {
        return (StatusCode::FORBIDDEN, "no authorization").into_response();
    }
    if let Some(r) = fault_answer(&fault).await {
        return r;
    }
    let (Some(records), Some(id_field)) = (dept.tables.get(&table), dept.id_field.get(&table))
    else {
        return (StatusCode::NOT_FOUND, "no such table").into_response();
    };
    let found: Vec<&RawValue> = records
        .iter()
        .filter(|r| {
            serde_json::from_str::<Value>(r.get()).is_ok_and(|v| {
                v[id_field.as_str()]
                    .as_str()
                    .is_some_and(|id| ids.iter().any(|i| i == id))
            })
        })
        .map(|r| r.as_ref())
        .collect();
    let body = serde_json::to_vec(&json!({ "records": found })).unwrap();
    page(&fault, body)
}

/// How the simulated 人社 department names its fields and codes `hr_income`:
/// (canonical column, department field) and (department code, canonical kind).
pub const HR_FIELDS: [(&str, &str); 5] = [
    ("id_number", "SFZH"),
    ("period", "FFNY"),
    ("kind", "SRLX"),
    ("amount", "FFJE"),
    ("payer", "FFDW"),
];
/// The department's codes for `kind`.
pub const HR_KIND_CODES: [(&str, &str); 4] = [
    ("01", "wage"),
    ("02", "pension"),
    ("03", "unemployment"),
    ("04", "other"),
];

/// The `[[source]]` mapping lines for the simulated 人社 department.
pub fn hr_mapping_toml() -> String {
    let mut s = String::from("[source.fields.hr_income]\n");
    for (canonical, dept) in HR_FIELDS {
        s.push_str(&format!("{canonical} = \"{dept}\"\n"));
    }
    s.push_str("[source.codes.hr_income.kind]\n");
    for (code, kind) in HR_KIND_CODES {
        s.push_str(&format!("\"{code}\" = \"{kind}\"\n"));
    }
    s
}

/// Turns a canonical `hr_income` CSV (as `hedui generate` writes it) into the
/// department's own records: its field names, its codes for `kind`, amounts as JSON
/// numbers where they are numbers (strings otherwise, so malformed values stay as they
/// were), empty cells as `null`.
pub fn hr_records_from_csv(text: &str) -> Vec<Box<RawValue>> {
    let (headers, records) = csv_rows(text);
    let mut out = Vec::new();
    for rec in records {
        let mut obj = serde_json::Map::new();
        for (i, h) in headers.iter().enumerate() {
            let Some(v) = rec.get(i) else { continue };
            let Some((_, dept)) = HR_FIELDS.iter().find(|(c, _)| c == h) else {
                continue;
            };
            let value = match h.as_str() {
                _ if v.is_empty() => Value::Null,
                "kind" => match HR_KIND_CODES.iter().find(|(_, k)| *k == v) {
                    Some((code, _)) => Value::String((*code).to_owned()),
                    None => Value::String(v.to_owned()),
                },
                "amount" => match serde_json::from_str::<serde_json::Number>(v) {
                    Ok(n) if !v.contains(['e', 'E']) => Value::Number(n),
                    _ => Value::String(v.to_owned()),
                },
                _ => Value::String(v.to_owned()),
            };
            obj.insert((*dept).to_owned(), value);
        }
        out.push(raw(&Value::Object(obj)));
    }
    out
}

/// Turns any canonical table's CSV into department records under the canonical field
/// names: every value a JSON string, empty cells `null`.
pub fn canonical_records_from_csv(text: &str) -> Vec<Box<RawValue>> {
    let (headers, records) = csv_rows(text);
    records
        .map(|rec| {
            let obj: serde_json::Map<String, Value> = headers
                .iter()
                .zip(rec.iter())
                .map(|(h, v)| {
                    let v = if v.is_empty() {
                        Value::Null
                    } else {
                        Value::String(v.to_owned())
                    };
                    (h.clone(), v)
                })
                .collect();
            raw(&Value::Object(obj))
        })
        .collect()
}

/// A CSV text's header names (BOM removed) and its records.
fn csv_rows(text: &str) -> (Vec<String>, impl Iterator<Item = csv::StringRecord> + '_) {
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .unwrap()
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').to_owned())
        .collect();
    (headers, rdr.into_records().map(Result::unwrap))
}
