//! The `http` connector (SPEC §9): a department's JSON protocol over HTTPS, rustls only.
//! Snapshot mode pages through `GET {url}/{table}?limit=N[&cursor=C]`; lookup mode asks
//! `POST {url}/{table}/query` for the ID numbers being checked, with their authorization,
//! in chunks of at most `page_size`. Every request is retried on 5xx, 429 (after its
//! `Retry-After`), timeouts and broken connections, with exponential back-off and jitter,
//! resuming from the page it was on; credentials and certificate failures are not retried.
//! Tokens and ID numbers never appear in messages or logs.

use std::error::Error as StdError;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::json::push_record;
use crate::mapping::SourceMapping;
use crate::schema::TableSchema;
use crate::validate::TableBuilder;
use crate::{Connector, ConnectorError, LoadOptions, LoadedTable, Problem, StreamEnd, TableStream};

/// First back-off delay; doubled on every retry, up to [`MAX_BACKOFF`].
pub const BASE_BACKOFF: Duration = Duration::from_millis(200);
/// The longest back-off between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Lookup requests in flight at once.
pub const LOOKUPS_IN_FLIGHT: usize = 8;
/// The longest `Retry-After` honoured; a department asking for more fails the pull.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Pages of one snapshot pull at most, whatever the deadline (a department handing out
/// new cursors forever is stopped here at the latest).
pub const MAX_PAGES: u64 = 1_000_000;

/// How hedui proves who it is to a department.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// No credentials.
    None,
    /// `Authorization: Bearer …` with the token read from this environment variable.
    BearerEnv(String),
    /// Mutual TLS with a client certificate chain and its private key (PEM files).
    ClientCert {
        /// Certificate chain (PEM).
        cert: PathBuf,
        /// Private key (PEM).
        key: PathBuf,
    },
}

/// One HTTP source as the deployment config describes it.
#[derive(Debug, Clone)]
pub struct HttpSource {
    /// Base URL (`https://` only).
    pub url: String,
    /// Credentials.
    pub credentials: Credentials,
    /// Trust only the CA certificates in this PEM file (default: the system roots).
    pub ca_file: Option<PathBuf>,
    /// Records per snapshot page, ID numbers per lookup request.
    pub page_size: u32,
    /// Per-request timeout, seconds (connection, headers and body).
    pub timeout_s: u64,
    /// Retries after the first attempt of each request.
    pub max_retries: u32,
    /// The longest a whole snapshot pull of one table may take, seconds, retries and
    /// waits included; a pull past it fails (and resumes from its last page next time).
    pub pull_deadline_s: u64,
    /// The largest page (or lookup answer) accepted, in MiB; a bigger body is refused
    /// before it is held in memory.
    pub max_page_mb: u64,
    /// Department field names and codes.
    pub mapping: SourceMapping,
}

/// One lookup request group: the ID numbers of households checked under one authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupGroup {
    /// The applicants' signed authorization for this check (SPEC §3).
    pub authorization_id: String,
    /// Normalised 18-digit ID numbers.
    pub id_numbers: Vec<String>,
}

/// Reads canonical tables from a department's HTTPS interface.
#[derive(Clone)]
pub struct HttpConnector {
    inner: Arc<Inner>,
}

struct Inner {
    source: HttpSource,
    client: reqwest::Client,
    token: Option<String>,
}

impl std::fmt::Debug for HttpConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("HttpConnector")
            .field("url", &self.inner.source.url)
            .finish_non_exhaustive()
    }
}

/// The text of an error and its causes, without repeats.
fn chain(e: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    parts.join(": ")
}

/// The TLS failure behind an error, if any (a certificate that is not trusted, a
/// handshake the department refused): such failures are not retried.
fn tls_failure(e: &(dyn StdError + 'static)) -> Option<String> {
    // rustls errors travel inside `io::Error`s, sometimes nested, whose `source()` skips
    // the wrapped error: look inside each one as well as along the chain.
    fn inside(e: &(dyn StdError + 'static), depth: u8) -> Option<String> {
        if let Some(t) = e.downcast_ref::<rustls::Error>() {
            return Some(t.to_string());
        }
        if depth > 0 {
            if let Some(inner) = e
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                return inside(inner, depth - 1);
            }
        }
        None
    }
    let mut cur: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(t) = inside(err, 4) {
            return Some(t);
        }
        cur = err.source();
    }
    None
}

/// A delay of about `d`: half of it fixed, half random (jitter), so that retries of many
/// clients do not arrive together.
fn jittered(d: Duration) -> Duration {
    let half = d / 2;
    let nanos = u64::try_from(half.as_nanos()).unwrap_or(u64::MAX).max(1);
    let random = std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now());
    half + Duration::from_nanos(random % nanos)
}

/// The back-off before retry number `retry` (0-based).
fn backoff(retry: u32) -> Duration {
    let exp = BASE_BACKOFF.saturating_mul(1u32 << retry.min(16));
    jittered(exp.min(MAX_BACKOFF))
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// What one attempt came to.
enum Attempt {
    Done(Vec<u8>),
    /// Worth another attempt after the given delay (or the back-off when `None`).
    Retry(String, Option<Duration>),
    Fatal(String),
}

/// One page of snapshot mode, or a lookup answer (no cursor).
#[derive(Deserialize)]
struct Page<'a> {
    #[serde(borrow)]
    records: Vec<&'a RawValue>,
    #[serde(default)]
    next_cursor: Option<String>,
}

impl HttpConnector {
    /// A connector for `source`: builds the rustls client (https only, the source's
    /// roots, client certificate or bearer token from the environment).
    pub fn new(source: HttpSource) -> Result<Self, ConnectorError> {
        let setup = |message: String| ConnectorError::HttpSetup {
            url: source.url.clone(),
            message,
        };
        if !source.url.starts_with("https://") {
            return Err(setup(
                "HTTP sources are reached over https:// only (never plain HTTP)".into(),
            ));
        }
        let timeout = Duration::from_secs(source.timeout_s.max(1));
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .https_only(true)
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hedui/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &source.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|e| setup(format!("cannot read ca_file {}: {e}", ca.display())))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                setup(format!(
                    "ca_file {} holds no usable PEM certificate: {}",
                    ca.display(),
                    chain(&e)
                ))
            })?;
            if certs.is_empty() {
                return Err(setup(format!(
                    "ca_file {} holds no PEM certificate",
                    ca.display()
                )));
            }
            // The department's own CA replaces the system roots: trust exactly it.
            builder = builder.tls_built_in_root_certs(false);
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let mut token = None;
        match &source.credentials {
            Credentials::None => {}
            Credentials::BearerEnv(var) => match std::env::var(var) {
                Ok(t) if !t.trim().is_empty() => token = Some(t.trim().to_owned()),
                _ => {
                    return Err(setup(format!(
                        "the bearer token variable {var} is not set in the environment"
                    )))
                }
            },
            Credentials::ClientCert { cert, key } => {
                let mut pem = std::fs::read(cert).map_err(|e| {
                    setup(format!("cannot read client_cert {}: {e}", cert.display()))
                })?;
                pem.push(b'\n');
                pem.extend(std::fs::read(key).map_err(|e| {
                    setup(format!("cannot read client_key {}: {e}", key.display()))
                })?);
                let id = reqwest::Identity::from_pem(&pem).map_err(|e| {
                    setup(format!(
                        "client_cert {} / client_key {} are not a usable PEM certificate and key: {}",
                        cert.display(),
                        key.display(),
                        chain(&e)
                    ))
                })?;
                builder = builder.identity(id);
            }
        }
        let client = builder
            .build()
            .map_err(|e| setup(format!("cannot build the HTTPS client: {}", chain(&e))))?;
        Ok(HttpConnector {
            inner: Arc::new(Inner {
                source,
                client,
                token,
            }),
        })
    }

    /// The source's base URL.
    pub fn url(&self) -> &str {
        &self.inner.source.url
    }

    /// Asks the department for the records of `groups`' ID numbers only (lookup mode),
    /// in requests of at most `page_size` IDs, each with its authorization.
    pub async fn lookup(
        &self,
        table: &'static TableSchema,
        options: LoadOptions,
        groups: &[LookupGroup],
    ) -> Result<LoadedTable, ConnectorError> {
        let inner = &self.inner;
        let mut b = TableBuilder::new(table, options.reference_date)
            .with_mapping(inner.source.mapping.table(table));
        let url = format!("{}/{}/query", inner.base(), table.table);
        let chunk = usize::try_from(inner.source.page_size.max(1)).unwrap_or(5000);
        let requests: Vec<(String, String, serde_json::Value)> = groups
            .iter()
            .flat_map(|g| {
                g.id_numbers
                    .chunks(chunk)
                    .map(move |ids| (g.authorization_id.as_str(), ids))
            })
            .enumerate()
            .map(|(i, (auth, ids))| {
                let no = i + 1;
                (
                    format!("{}/query#{no}", table.table),
                    format!("lookup request {no} ({} ID numbers)", ids.len()),
                    serde_json::json!({ "id_numbers": ids, "authorization_id": auth }),
                )
            })
            .collect();
        // Several requests in flight (each a household's authorization); answers are
        // taken in request order, so labels and rows do not depend on timing.
        let mut answers = futures::stream::iter(requests.iter())
            .map(|(_, what, body)| {
                inner.fetch(&table.table, what, || inner.client.post(&url).json(body))
            })
            .buffered(LOOKUPS_IN_FLIGHT);
        let mut files = Vec::new();
        let mut next = requests.iter();
        while let Some(bytes) = answers.next().await {
            let bytes = bytes?;
            let Some((label, what, _)) = next.next() else {
                break;
            };
            let page = inner.parse_page(&table.table, what, &bytes)?;
            for (i, raw) in page.records.iter().enumerate() {
                push_record(&mut b, label, i as u64 + 1, raw)
                    .map_err(|e| inner.arrow_err(table, e))?;
            }
            files.push(label.clone());
        }
        let (batches, problems, rows_read) = b.finish().map_err(|e| inner.arrow_err(table, e))?;
        Ok(LoadedTable::whole(
            table, batches, problems, files, rows_read,
        ))
    }
}

impl Inner {
    fn base(&self) -> &str {
        self.source.url.trim_end_matches('/')
    }

    fn fail(&self, table: &str, message: String) -> ConnectorError {
        // Whatever the department or the transport said may quote an ID number.
        ConnectorError::Http {
            url: self.source.url.clone(),
            table: table.to_owned(),
            message: crate::idnum::mask_ids_in(&message).into_owned(),
        }
    }

    fn arrow_err(
        &self,
        table: &TableSchema,
        e: datafusion::arrow::error::ArrowError,
    ) -> ConnectorError {
        ConnectorError::Arrow {
            table: table.table.clone(),
            message: e.to_string(),
        }
    }

    /// One request, retried as SPEC §9 says; `what` names it in messages.
    async fn fetch(
        &self,
        table: &str,
        what: &str,
        request: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Vec<u8>, ConnectorError> {
        let attempts = self.source.max_retries.saturating_add(1);
        let mut last = String::new();
        for attempt in 0..attempts {
            let mut req = request();
            if let Some(t) = &self.token {
                req = req.bearer_auth(t);
            }
            let outcome = self.attempt(req).await;
            let (why, wait) = match outcome {
                Attempt::Done(body) => return Ok(body),
                Attempt::Fatal(why) => return Err(self.fail(table, format!("{what}: {why}"))),
                Attempt::Retry(why, wait) => (why, wait),
            };
            last = why;
            if attempt + 1 == attempts {
                break;
            }
            let wait = match wait {
                Some(w) if w > MAX_RETRY_AFTER => {
                    return Err(self.fail(
                        table,
                        format!(
                            "{what}: {last}; the department asks to wait {} s (Retry-After), more than the {} s hedui waits",
                            w.as_secs(),
                            MAX_RETRY_AFTER.as_secs()
                        ),
                    ))
                }
                // A `Retry-After: 0` never removes the back-off: the longer of the two.
                Some(w) => w.max(backoff(attempt)),
                None => backoff(attempt),
            };
            tracing::warn!(
                source = %self.source.url,
                table,
                attempt = attempt + 1,
                wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                "{what}: {}; retrying",
                crate::idnum::mask_ids_in(&last)
            );
            tokio::time::sleep(wait).await;
        }
        Err(self.fail(
            table,
            format!("{what}: {last} (gave up after {attempts} attempts)"),
        ))
    }

    async fn attempt(&self, req: reqwest::RequestBuilder) -> Attempt {
        let timeout_s = self.source.timeout_s;
        let transport = |e: reqwest::Error| {
            // The URL is named by the caller; its query (a department's cursor may hold
            // an ID number) is kept out of messages and logs.
            let e = e.without_url();
            if let Some(tls) = tls_failure(&e) {
                return Attempt::Fatal(format!(
                    "TLS failed: {tls} (is the department's certificate signed by the CA in ca_file, or by a system root?)"
                ));
            }
            if e.is_timeout() {
                Attempt::Retry(format!("no answer within {timeout_s} s (timeout_s)"), None)
            } else if e.is_connect() {
                Attempt::Retry(format!("cannot connect: {}", chain(&e)), None)
            } else {
                Attempt::Retry(format!("connection broken: {}", chain(&e)), None)
            }
        };
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return transport(e),
        };
        let status = resp.status();
        let wait = retry_after(resp.headers());
        if status.is_success() {
            let cap = self.source.max_page_mb.saturating_mul(1024 * 1024);
            if resp.content_length().is_some_and(|n| n > cap) {
                return Attempt::Fatal(self.too_big());
            }
            let mut body = Vec::new();
            let mut resp = resp;
            loop {
                match resp.chunk().await {
                    Ok(Some(c)) => {
                        if body.len() as u64 + c.len() as u64 > cap {
                            return Attempt::Fatal(self.too_big());
                        }
                        body.extend_from_slice(&c);
                    }
                    Ok(None) => return Attempt::Done(body),
                    Err(e) => return transport(e),
                }
            }
        }
        let code = format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let code = code.trim_end().to_owned();
        match status {
            StatusCode::TOO_MANY_REQUESTS => Attempt::Retry(code, wait),
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                let how = match &self.source.credentials {
                    Credentials::None => {
                        "no credentials are configured (token_env or client_cert)".to_owned()
                    }
                    Credentials::BearerEnv(v) => format!("check the token in {v}"),
                    Credentials::ClientCert { cert, .. } => {
                        format!("check the client certificate {}", cert.display())
                    }
                };
                Attempt::Fatal(format!(
                    "{code}: the department refused hedui's credentials; {how}"
                ))
            }
            StatusCode::NOT_FOUND => Attempt::Fatal(format!(
                "{code}: the department does not serve this table at this URL"
            )),
            StatusCode::REQUEST_TIMEOUT => Attempt::Retry(code, wait),
            s if s.is_server_error() => Attempt::Retry(code, wait),
            // Other answers (4xx, a redirect) do not change by asking again; the body is
            // not quoted, it may echo ID numbers.
            _ => Attempt::Fatal(code),
        }
    }

    fn too_big(&self) -> String {
        format!(
            "the answer is larger than {} MiB (max_page_mb); ask the department for smaller pages or raise max_page_mb",
            self.source.max_page_mb
        )
    }

    fn parse_page<'a>(
        &self,
        table: &str,
        what: &str,
        body: &'a [u8],
    ) -> Result<Page<'a>, ConnectorError> {
        serde_json::from_slice(body).map_err(|e| {
            let kind = if e.is_eof() {
                "a truncated JSON page"
            } else {
                "not a page of the §9 protocol"
            };
            self.fail(
                table,
                format!("{what}: the department returned {kind} ({e}); the page is not used"),
            )
        })
    }
}

#[async_trait::async_trait]
impl Connector for HttpConnector {
    fn describe(&self) -> String {
        self.inner.source.url.clone()
    }

    async fn open(
        &self,
        table: &'static TableSchema,
        options: LoadOptions,
    ) -> Result<Option<Box<dyn TableStream>>, ConnectorError> {
        Ok(Some(self.pull(table, options, None)))
    }

    async fn resume(
        &self,
        table: &'static TableSchema,
        options: LoadOptions,
        position: &str,
    ) -> Result<Box<dyn TableStream>, ConnectorError> {
        Ok(self.pull(table, options, Some(position.to_owned())))
    }
}

impl HttpConnector {
    /// A snapshot pull of `table` from the first page, or from `cursor`.
    fn pull(
        &self,
        table: &'static TableSchema,
        options: LoadOptions,
        cursor: Option<String>,
    ) -> Box<dyn TableStream> {
        let builder = TableBuilder::new(table, options.reference_date)
            .with_mapping(self.inner.source.mapping.table(table));
        let (page, cursor) = match cursor {
            Some(p) => {
                let (page, cursor) = parse_position(&p);
                (page, Some(cursor))
            }
            None => (0, None),
        };
        let deadline = Duration::from_secs(self.inner.source.pull_deadline_s.max(1));
        Box::new(SnapshotPull {
            inner: self.inner.clone(),
            table,
            builder: Some(builder),
            seen: cursor.iter().cloned().collect(),
            cursor,
            page,
            deadline: tokio::time::Instant::now() + deadline,
            end: StreamEnd::default(),
        })
    }
}

/// A pull's resume position: the number of pages read and the cursor of the next one
/// (`p17:CURSOR`); a bare cursor (an older checkpoint) counts as page 0.
fn position_text(page: u64, cursor: &str) -> String {
    format!("p{page}:{cursor}")
}

fn parse_position(p: &str) -> (u64, String) {
    p.strip_prefix('p')
        .and_then(|rest| rest.split_once(':'))
        .and_then(|(n, c)| Some((n.parse().ok()?, c.to_owned())))
        .unwrap_or_else(|| (0, p.to_owned()))
}

/// A snapshot pull of one table, page by page. A failed request is retried with the
/// cursor it was on, so an interrupted pull goes on from its last page. A cursor seen
/// before (a cycle), more than [`MAX_PAGES`] pages or a pull past its deadline fail it.
struct SnapshotPull {
    inner: Arc<Inner>,
    table: &'static TableSchema,
    /// `None` once the last page was read.
    builder: Option<TableBuilder>,
    cursor: Option<String>,
    /// Every cursor this pull was given.
    seen: std::collections::HashSet<String>,
    /// Pages read, the resumed-from ones included.
    page: u64,
    deadline: tokio::time::Instant,
    end: StreamEnd,
}

impl SnapshotPull {
    /// The page's label, the records' `file`: its number, never its cursor (a cursor
    /// may be a citizen's ID number).
    fn label(&self) -> String {
        format!("{} page {}", self.table.table, self.page)
    }
}

#[async_trait::async_trait]
impl TableStream for SnapshotPull {
    async fn next(&mut self) -> Result<Option<Vec<RecordBatch>>, ConnectorError> {
        let Some(mut b) = self.builder.take() else {
            return Ok(None);
        };
        let inner = self.inner.clone();
        let limit = inner.source.page_size.max(1);
        let url = format!("{}/{}", inner.base(), self.table.table);
        self.page += 1;
        let label = self.label();
        let what = format!("page {}", self.page);
        if self.page > MAX_PAGES {
            return Err(inner.fail(
                &self.table.table,
                format!("{what}: more than {MAX_PAGES} pages; the department's cursors never end"),
            ));
        }
        let mut query: Vec<(&str, String)> = vec![("limit", limit.to_string())];
        if let Some(c) = &self.cursor {
            query.push(("cursor", c.clone()));
        }
        let overdue = || {
            inner.fail(
                &self.table.table,
                format!(
                    "{what}: the pull took longer than {} s (pull_deadline_s); the next ingest resumes from this page",
                    inner.source.pull_deadline_s
                ),
            )
        };
        let bytes = tokio::time::timeout_at(
            self.deadline,
            inner.fetch(&self.table.table, &what, || {
                inner.client.get(&url).query(&query)
            }),
        )
        .await
        .map_err(|_| overdue())??;
        let page = inner.parse_page(&self.table.table, &what, &bytes)?;
        if page.records.len() > limit as usize {
            return Err(inner.fail(
                &self.table.table,
                format!(
                    "{what}: the department returned {} records for limit={limit}; the page is not used",
                    page.records.len()
                ),
            ));
        }
        for (i, raw) in page.records.iter().enumerate() {
            push_record(&mut b, &label, i as u64 + 1, raw)
                .map_err(|e| inner.arrow_err(self.table, e))?;
        }
        let next = page.next_cursor.filter(|c| !c.is_empty());
        if let Some(c) = &next {
            if !self.seen.insert(c.clone()) {
                return Err(inner.fail(
                    &self.table.table,
                    format!("{what}: the department returned a cursor it had returned before (a cycle: the pull would never end)"),
                ));
            }
        }
        match next {
            Some(c) => {
                self.cursor = Some(c);
                // Everything up to the cursor is handed on: a later pull may resume here.
                let out = b.take_all().map_err(|e| inner.arrow_err(self.table, e))?;
                self.builder = Some(b);
                Ok(Some(out))
            }
            None => {
                let (batches, problems, rows_read) =
                    b.finish().map_err(|e| inner.arrow_err(self.table, e))?;
                self.end = StreamEnd {
                    problems,
                    files: vec![format!("{} ({} pages)", self.table.table, self.page)],
                    rows_read,
                };
                Ok(Some(batches))
            }
        }
    }

    fn take_problems(&mut self) -> Vec<Problem> {
        self.builder
            .as_mut()
            .map(TableBuilder::take_problems)
            .unwrap_or_default()
    }

    fn position(&self) -> Option<String> {
        self.builder
            .as_ref()
            .and(self.cursor.as_deref())
            .map(|c| position_text(self.page, c))
    }

    fn finish(self: Box<Self>) -> StreamEnd {
        self.end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Back-off grows with each retry, stays within the cap, and varies (jitter).
    #[test]
    fn backoff_grows_with_jitter() {
        let first = backoff(0);
        assert!(
            first >= BASE_BACKOFF / 2 && first <= BASE_BACKOFF,
            "{first:?}"
        );
        let third = backoff(2);
        assert!(
            third >= BASE_BACKOFF * 2 && third <= BASE_BACKOFF * 4,
            "{third:?}"
        );
        assert!(backoff(40) <= MAX_BACKOFF);
        let samples: std::collections::BTreeSet<_> = (0..20).map(|_| backoff(3)).collect();
        assert!(samples.len() > 1, "jitter varies the delay");
    }

    /// A resume position carries the page count, so labels go on numbering; an older
    /// bare cursor resumes at page 0.
    #[test]
    fn positions_round_trip() {
        assert_eq!(
            parse_position(&position_text(17, "a:b")),
            (17, "a:b".into())
        );
        assert_eq!(parse_position("abc"), (0, "abc".into()));
        assert_eq!(parse_position("p:x"), (0, "p:x".into()));
    }

    /// Retry-After is read as seconds or as an HTTP date.
    #[test]
    fn retry_after_seconds_or_date() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
        h.insert(RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }

    /// Plain HTTP is refused before any request; a missing token variable is named.
    #[test]
    fn refuses_plain_http_and_names_missing_token() {
        let source = |url: &str, credentials| HttpSource {
            url: url.into(),
            credentials,
            ca_file: None,
            page_size: 10,
            timeout_s: 1,
            max_retries: 0,
            pull_deadline_s: 60,
            max_page_mb: 1,
            mapping: SourceMapping::default(),
        };
        let e = HttpConnector::new(source("http://dept.example", Credentials::None)).unwrap_err();
        assert!(e.to_string().contains("https:// only"), "{e}");
        let e = HttpConnector::new(source(
            "https://dept.example",
            Credentials::BearerEnv("HEDUI_TEST_TOKEN_THAT_IS_NOT_SET".into()),
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "cannot connect to https://dept.example: the bearer token variable HEDUI_TEST_TOKEN_THAT_IS_NOT_SET is not set in the environment"
        );
    }
}
