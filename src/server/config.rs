//! `[server]` and `[[token]]` of the deployment config (SPEC §10), typed and validated
//! before the server binds: TLS unless the address is loopback, tokens only as SHA-256
//! hashes, known roles, region prefixes of digits.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::{ConfigError, Deployment};

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Address to listen on, e.g. `0.0.0.0:8443` (port 0: any free port, printed).
    pub listen: String,
    /// Certificate chain (PEM); required unless `listen` is a loopback address.
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// The policy file the checks use.
    pub policy: PathBuf,
    /// Largest request body, MiB.
    #[serde(default = "default_max_body_mb")]
    pub max_body_mb: u64,
    /// Requests per minute per token; beyond it 429 with Retry-After.
    #[serde(default = "default_requests_per_minute")]
    pub requests_per_minute: u32,
    /// Batches waiting at most; beyond it 503 with Retry-After.
    #[serde(default = "default_max_queued_jobs")]
    pub max_queued_jobs: usize,
    /// Batches one token may have waiting at most (its share of `max_queued_jobs`;
    /// default a quarter of it, at least 1).
    pub max_queued_jobs_per_token: Option<usize>,
    /// Seconds a stopping server waits for the running job before leaving it to be run
    /// again at the next start.
    #[serde(default = "default_shutdown_grace_s")]
    pub shutdown_grace_s: u64,
    /// Data rows a batch may hold at most (API and uploads).
    #[serde(default = "default_max_batch_rows")]
    pub max_batch_rows: usize,
    /// Days before today a request's check date may lie at most (422 beyond, and for a
    /// date in the future).
    #[serde(default = "default_max_backdate_days")]
    pub max_backdate_days: u32,
    /// Members one household may declare at most; beyond it 422 / `invalid_value`.
    #[serde(default = "default_max_household_members")]
    pub max_household_members: usize,
    /// Seconds a connection has to finish its TLS handshake, and to send each request's
    /// head (an idle keep-alive connection is closed after as long).
    #[serde(default = "default_header_timeout_s")]
    pub header_timeout_s: u64,
    /// Connections one client address may hold at once; more are closed as they
    /// arrive (one address cannot fill the server's 1,024 connections with idle ones).
    #[serde(default = "default_max_connections_per_ip")]
    pub max_connections_per_ip: usize,
    /// Minutes a staff page session may go unused before it ends (sign in again).
    #[serde(default = "default_session_idle_minutes")]
    pub session_idle_minutes: u64,
    /// Seconds a request body may pause between two pieces before it is refused (408).
    #[serde(default = "default_body_idle_timeout_s")]
    pub body_idle_timeout_s: u64,
    /// Seconds a whole request body may take (408 beyond).
    #[serde(default = "default_body_timeout_s")]
    pub body_timeout_s: u64,
}

fn default_max_batch_rows() -> usize {
    200_000
}

/// Distinct people a token (or a staff account) may have checked a day, by default.
pub const DEFAULT_MAX_PEOPLE_PER_DAY: usize = 10_000;

fn default_max_people_per_day() -> usize {
    DEFAULT_MAX_PEOPLE_PER_DAY
}

fn default_max_backdate_days() -> u32 {
    366
}

fn default_max_household_members() -> usize {
    30
}

/// Connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 1024;

fn default_max_connections_per_ip() -> usize {
    128
}

fn default_session_idle_minutes() -> u64 {
    30
}

fn default_header_timeout_s() -> u64 {
    10
}

fn default_body_idle_timeout_s() -> u64 {
    30
}

fn default_body_timeout_s() -> u64 {
    600
}

fn default_max_queued_jobs() -> usize {
    20
}

fn default_shutdown_grace_s() -> u64 {
    60
}

/// `[schedule]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleSection {
    /// When to pull every source (optional: without it the night re-checks on what the
    /// lake holds).
    ingest: Option<String>,
    /// How long the night's pulls may take before the sources still pulling are given up
    /// (optional: without it the reconciliation waits for every pull to end).
    pulls_within_minutes: Option<u64>,
    reconcile: String,
    /// The first list (optional: `PUT /api/v1/recipients` may give the first one).
    recipients: Option<PathBuf>,
}

/// The night, validated: its pulls (if any), then its reconciliation.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// When to pull the sources without a schedule of their own, in local time, and the
    /// expression as written.
    pub ingest: Option<(super::cron::Cron, String)>,
    /// The sources with a schedule of their own (`[[source]] schedule`): name, when, as
    /// written.
    pub sources: Vec<(String, super::cron::Cron, String)>,
    /// How long a job of pulls may take: a source still pulling then counts as failed.
    pub pulls_within: Option<std::time::Duration>,
    /// When to reconcile, in local time.
    pub cron: super::cron::Cron,
    /// The expression as written (for logs).
    pub expression: String,
    /// The first recipients file, read until the hub holds a list of its own.
    pub recipients: Option<PathBuf>,
}

fn default_max_body_mb() -> u64 {
    50
}

fn default_requests_per_minute() -> u32 {
    600
}

/// A role a token carries (SPEC §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Verification-centre staff: checks and batches; sees ID numbers masked.
    Staff,
    /// A case-management system: checks and batches; sees full ID numbers.
    System,
    /// Reads the audit log; runs no check.
    Auditor,
    /// Everything.
    Admin,
}

impl Role {
    /// Whether the role may run checks and batches.
    pub fn may_check(self) -> bool {
        matches!(self, Role::Staff | Role::System | Role::Admin)
    }

    /// Whether the role sees full ID numbers.
    pub fn sees_full_ids(self) -> bool {
        matches!(self, Role::System | Role::Admin)
    }
}

/// One `[[token]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Who holds it (in the audit log and metrics; never the token itself).
    pub name: String,
    /// Hex SHA-256 of the token.
    pub sha256: String,
    /// Its role.
    pub role: Role,
    /// Region-code prefixes it may check and see.
    pub regions: Vec<String>,
    /// Distinct people it may have checked a day, API checks and batches together
    /// (429 beyond).
    #[serde(default = "default_max_people_per_day")]
    pub max_people_per_day: usize,
    /// The hash as bytes (filled in by validation).
    #[serde(skip)]
    pub hash: [u8; 32],
}

impl Token {
    /// Whether `region_code` is within the token's regions.
    pub fn covers(&self, region_code: &str) -> bool {
        self.regions
            .iter()
            .any(|p| region_code.starts_with(p.as_str()))
    }
}

/// The server's validated settings.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Certificate and key files, when TLS is on.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// Policy file.
    pub policy: PathBuf,
    /// Body limit, bytes.
    pub max_body_bytes: usize,
    /// Per-token rate.
    pub requests_per_minute: u32,
    /// The tokens.
    pub tokens: Vec<Token>,
    /// The state folder (`[state] path`): jobs, runs, audit log.
    pub state_dir: PathBuf,
    /// The audit key and anchor (`[state] audit_key`, `audit_anchor`).
    pub audit_files: crate::state::AuditFiles,
    /// Days results are kept (`[state] retention_days`).
    pub retention_days: u32,
    /// Batches waiting at most.
    pub max_queued_jobs: usize,
    /// Batches of one token waiting at most.
    pub max_queued_jobs_per_token: usize,
    /// How long a stopping server waits for the running job.
    pub shutdown_grace: std::time::Duration,
    /// `[schedule]`, if any.
    pub schedule: Option<Schedule>,
    /// How long clients may take over their connection and request bodies.
    pub timeouts: Timeouts,
    /// Days a request's check date may lie before today.
    pub max_backdate_days: u32,
    /// Connections one client address may hold at once.
    pub max_connections_per_ip: usize,
    /// How long a page session may go unused.
    pub session_idle: std::time::Duration,
    /// What a batch (or a one-household check) may hold: the file caps with
    /// `max_batch_rows` and `max_household_members`.
    pub batch_limits: crate::applicants::Limits,
}

/// How long a client may take (`[server] header_timeout_s`, `body_idle_timeout_s`,
/// `body_timeout_s`): a client that connects and stalls holds nothing for longer.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// The TLS handshake, and each request head (idle keep-alive connections included).
    pub header: std::time::Duration,
    /// The longest pause inside a request body.
    pub body_idle: std::time::Duration,
    /// A whole request body.
    pub body: std::time::Duration,
}

fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let s = s.trim();
    if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// Makes a [`ConfigError`] of the config file being validated.
struct Fail<'a>(&'a str);

impl Fail<'_> {
    fn at(&self, key: impl Into<String>, why: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.0.to_owned(),
            key: key.into(),
            why: why.into(),
        }
    }

    /// `v` of `server.KEY` unless it is outside `range`.
    fn within<T: PartialOrd + std::fmt::Display>(
        &self,
        key: &str,
        v: T,
        range: std::ops::RangeInclusive<T>,
    ) -> Result<T, ConfigError> {
        if range.contains(&v) {
            return Ok(v);
        }
        let (lo, hi) = (range.start(), range.end());
        Err(self.at(
            format!("server.{key}"),
            format!("{v} 超出 {lo}–{hi}（{v} is outside {lo}–{hi}）"),
        ))
    }
}

impl ServerConfig {
    /// Validates `[server]` and `[[token]]` of `d`; messages name the file and the key.
    pub fn from_deployment(d: &Deployment) -> Result<ServerConfig, ConfigError> {
        let file = d.file.display().to_string();
        let fail = Fail(&file);
        let base = d.file.parent().unwrap_or(Path::new("."));
        let resolve = |p: &PathBuf| {
            let joined = if p.is_relative() {
                base.join(p)
            } else {
                p.clone()
            };
            std::path::absolute(&joined).unwrap_or(joined)
        };
        let table = d
            .server
            .clone()
            .ok_or_else(|| fail.at("server", "hedui serve needs a [server] table"))?;
        let s: ServerSection = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| fail.at("server", e.message()))?;
        let listen: SocketAddr = s.listen.trim().parse().map_err(|_| {
            fail.at(
                "server.listen",
                format!("\"{}\" is not an address such as 0.0.0.0:8443", s.listen),
            )
        })?;
        let tls = match (&s.tls_cert, &s.tls_key) {
            (Some(c), Some(k)) => Some((resolve(c), resolve(k))),
            (None, None) if listen.ip().is_loopback() => None,
            (None, None) => {
                return Err(fail.at(
                    "server.tls_cert",
                    format!(
                    "{listen} is not a loopback address: TLS is required (tls_cert and tls_key)"
                ),
                ))
            }
            _ => return Err(fail.at("server.tls_key", "tls_cert and tls_key go together")),
        };
        let bounded = Bounded::of(&s, &fail)?;
        let schedule = schedule(d, &resolve, &fail)?;
        let tokens = tokens(d, &fail)?;
        Ok(ServerConfig {
            listen,
            tls,
            policy: resolve(&s.policy),
            max_body_bytes: usize::try_from(s.max_body_mb * 1024 * 1024).unwrap_or(usize::MAX),
            requests_per_minute: s.requests_per_minute,
            tokens,
            state_dir: d.state_path.clone(),
            audit_files: crate::state::AuditFiles::of(d),
            retention_days: d.retention_days,
            max_queued_jobs: s.max_queued_jobs,
            max_queued_jobs_per_token: bounded.per_token,
            shutdown_grace: std::time::Duration::from_secs(s.shutdown_grace_s),
            schedule,
            timeouts: bounded.timeouts,
            batch_limits: bounded.batch_limits,
            max_backdate_days: s.max_backdate_days,
            max_connections_per_ip: fail.within(
                "max_connections_per_ip",
                s.max_connections_per_ip,
                1..=MAX_CONNECTIONS,
            )?,
            session_idle: std::time::Duration::from_secs(
                60 * fail.within("session_idle_minutes", s.session_idle_minutes, 1..=24 * 60)?,
            ),
        })
    }
}

/// The numbers of `[server]`, each checked against its bounds.
struct Bounded {
    per_token: usize,
    timeouts: Timeouts,
    batch_limits: crate::applicants::Limits,
}

impl Bounded {
    fn of(s: &ServerSection, fail: &Fail<'_>) -> Result<Bounded, ConfigError> {
        fail.within("max_body_mb", s.max_body_mb, 1..=1024)?;
        fail.within("requests_per_minute", s.requests_per_minute, 1..=u32::MAX)?;
        fail.within("max_queued_jobs", s.max_queued_jobs, 1..=10_000)?;
        let per_token = fail.within(
            "max_queued_jobs_per_token",
            s.max_queued_jobs_per_token
                .unwrap_or((s.max_queued_jobs / 4).max(1)),
            1..=s.max_queued_jobs,
        )?;
        fail.within("shutdown_grace_s", s.shutdown_grace_s, 0..=3600)?;
        let seconds = |key: &str, v: u64| {
            fail.within(key, v, 1..=3600)
                .map(std::time::Duration::from_secs)
        };
        let timeouts = Timeouts {
            header: seconds("header_timeout_s", s.header_timeout_s)?,
            body_idle: seconds("body_idle_timeout_s", s.body_idle_timeout_s)?,
            body: seconds("body_timeout_s", s.body_timeout_s)?,
        };
        let batch_limits = crate::applicants::Limits {
            max_rows: fail.within("max_batch_rows", s.max_batch_rows, 1..=1_048_576)?,
            max_members: fail.within("max_household_members", s.max_household_members, 1..=1000)?,
            ..crate::applicants::Limits::default()
        };
        Ok(Bounded {
            per_token,
            timeouts,
            batch_limits,
        })
    }
}

/// `[schedule]`, validated (its recipients file must be there).
fn schedule(
    d: &Deployment,
    resolve: &dyn Fn(&PathBuf) -> PathBuf,
    fail: &Fail<'_>,
) -> Result<Option<Schedule>, ConfigError> {
    let Some(table) = &d.schedule else {
        if let Some(i) = d.sources.iter().position(|s| s.schedule.is_some()) {
            return Err(fail.at(
                &format!("source[{i}].schedule"),
                "a source's own schedule needs the [schedule] table (its reconcile and recipients)"
                    .to_owned(),
            ));
        }
        return Ok(None);
    };
    let mut sources = Vec::new();
    for (i, s) in d.sources.iter().enumerate() {
        if let Some(e) = &s.schedule {
            let cron = super::cron::Cron::parse(e)
                .map_err(|why| fail.at(&format!("source[{i}].schedule"), why))?;
            sources.push((s.name.as_str().to_owned(), cron, e.clone()));
        }
    }
    let sc: ScheduleSection = toml::Value::Table(table.clone())
        .try_into()
        .map_err(|e: toml::de::Error| fail.at("schedule", e.message()))?;
    let cron = super::cron::Cron::parse(&sc.reconcile)
        .map_err(|why| fail.at("schedule.reconcile", why))?;
    let ingest = match &sc.ingest {
        Some(e) => Some((
            super::cron::Cron::parse(e).map_err(|why| fail.at("schedule.ingest", why))?,
            e.trim().to_owned(),
        )),
        None => None,
    };
    let pulls_within = match sc.pulls_within_minutes {
        None => None,
        Some(m @ 1..=1440) => Some(std::time::Duration::from_secs(m * 60)),
        Some(m) => {
            return Err(fail.at(
                "schedule.pulls_within_minutes",
                format!("{m} 分钟不在 1 到 1440 之间 — give the minutes the night's pulls may take, from 1 to 1440"),
            ))
        }
    };
    let recipients = match &sc.recipients {
        Some(r) => {
            let r = resolve(r);
            if !r.is_file() {
                return Err(fail.at(
                    "schedule.recipients",
                    format!("{} is not a file", r.display()),
                ));
            }
            Some(r)
        }
        None => None,
    };
    Ok(Some(Schedule {
        ingest,
        sources,
        pulls_within,
        cron,
        expression: sc.reconcile.trim().to_owned(),
        recipients,
    }))
}

/// `[[token]]`, validated: hashes, regions, and names and hashes unique.
fn tokens(d: &Deployment, fail: &Fail<'_>) -> Result<Vec<Token>, ConfigError> {
    let mut tokens: Vec<Token> = Vec::new();
    for (i, t) in d.tokens.iter().enumerate() {
        let key = |k: &str| format!("token[{i}].{k}");
        let mut t: Token = toml::Value::Table(t.clone())
            .try_into()
            .map_err(|e: toml::de::Error| fail.at(format!("token[{i}]"), e.message()))?;
        t.hash = parse_hex32(&t.sha256).ok_or_else(|| {
            fail.at(
                key("sha256"),
                "expected the 64 hex digits of the token's SHA-256 (plaintext tokens are never stored)",
            )
        })?;
        if t.regions.is_empty() {
            return Err(fail.at(key("regions"), "needs at least one region prefix"));
        }
        if let Some(r) = t
            .regions
            .iter()
            .find(|r| r.is_empty() || r.len() > 6 || !r.bytes().all(|b| b.is_ascii_digit()))
        {
            return Err(fail.at(
                key("regions"),
                format!("\"{r}\" is not a region-code prefix (1–6 digits)"),
            ));
        }
        if tokens.iter().any(|o| o.hash == t.hash) {
            return Err(fail.at(key("sha256"), "the same token twice"));
        }
        // The name is who the audit log, the rate limit and batch ownership say called:
        // two tokens of one name would read each other's batches.
        t.name = t.name.trim().to_owned();
        if t.name.is_empty() {
            return Err(fail.at(key("name"), "令牌需要一个名称（a token needs a name）"));
        }
        // Staff accounts act as `user:NAME`: a token name with a colon could pass for one.
        if t.name.contains(':') {
            return Err(fail.at(
                key("name"),
                format!(
                    "令牌名称“{}”不能含冒号“:”（a token name holds no colon: \"user:…\" is how staff accounts are named）",
                    t.name
                ),
            ));
        }
        if tokens.iter().any(|o| o.name == t.name) {
            return Err(fail.at(
                key("name"),
                format!(
                    "令牌名称“{}”重复：每个令牌的名称必须唯一（two tokens are named \"{}\"; names must be unique）",
                    t.name, t.name
                ),
            ));
        }
        tokens.push(t);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(server: &str, tokens: &str) -> Result<ServerConfig, String> {
        let text = format!(
            "[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n[server]\nlisten = \"127.0.0.1:0\"\npolicy = \"policy.toml\"\n{server}\n{tokens}"
        );
        let d = Deployment::parse(&text, Path::new("/etc/hedui/hedui.toml"))
            .map_err(|e| e.to_string())?;
        ServerConfig::from_deployment(&d).map_err(|e| e.to_string())
    }

    fn token(name: &str, hash_digit: char, regions: &str) -> String {
        let hash: String = std::iter::repeat_n(hash_digit, 64).collect();
        format!("[[token]]\nname = \"{name}\"\nsha256 = \"{hash}\"\nrole = \"staff\"\nregions = {regions}\n")
    }

    /// Two tokens of one name would share batches, rate and audit actor: refused.
    #[test]
    fn token_names_are_unique() {
        let e = config(
            "",
            &format!(
                "{}{}",
                token("zhengzhou", 'a', "[\"4101\"]"),
                token("zhengzhou", 'b', "[\"5120\"]")
            ),
        )
        .unwrap_err();
        assert!(
            e.contains("token[1].name") && e.contains("令牌名称“zhengzhou”重复"),
            "{e}"
        );
        let e = config("", &token(" ", 'a', "[\"41\"]")).unwrap_err();
        assert!(
            e.contains("token[0].name") && e.contains("令牌需要一个名称"),
            "{e}"
        );
        let ok = config(
            "",
            &format!(
                "{}{}",
                token("a", 'a', "[\"41\"]"),
                token("b", 'b', "[\"41\"]")
            ),
        );
        assert_eq!(ok.map(|c| c.tokens.len()), Ok(2));
        let e = config("", &token("user:bob", 'c', "[\"4101\"]")).unwrap_err();
        assert!(
            e.contains("token[0].name") && e.contains("不能含冒号"),
            "{e}"
        );
    }

    /// Batches and households are capped by default.
    #[test]
    fn batch_caps_default() {
        let c = config("", "").unwrap();
        assert_eq!(c.batch_limits.max_rows, 200_000);
        assert_eq!(c.batch_limits.max_members, 30);
        assert_eq!((c.max_queued_jobs, c.max_queued_jobs_per_token), (20, 5));
        let c = config("max_household_members = 5\nmax_batch_rows = 10", "").unwrap();
        assert_eq!(
            (c.batch_limits.max_rows, c.batch_limits.max_members),
            (10, 5)
        );
        let e = config("max_household_members = 0", "").unwrap_err();
        assert!(e.contains("server.max_household_members"), "{e}");
    }

    /// The night's time for pulls is optional and bounded, in minutes.
    #[test]
    fn pulls_within_minutes_is_bounded() {
        let list = tempfile::NamedTempFile::new().unwrap();
        let night = |extra: &str| {
            format!(
                "[schedule]\nreconcile = \"0 2 * * *\"\nrecipients = '{}'\n{extra}",
                list.path().display()
            )
        };
        let c = config("", &night("")).unwrap();
        assert_eq!(c.schedule.unwrap().pulls_within, None);
        // The first list is optional: the hub may be given one.
        let c = config("", "[schedule]\nreconcile = \"0 2 * * *\"\n").unwrap();
        assert_eq!(c.schedule.unwrap().recipients, None);
        let c = config("", &night("pulls_within_minutes = 240")).unwrap();
        assert_eq!(
            c.schedule.unwrap().pulls_within,
            Some(std::time::Duration::from_secs(240 * 60))
        );
        for bad in ["0", "1441"] {
            let e = config("", &night(&format!("pulls_within_minutes = {bad}"))).unwrap_err();
            assert!(
                e.contains("schedule.pulls_within_minutes") && e.contains("1 到 1440"),
                "{e}"
            );
        }
    }

    /// The client timeouts have defaults and bounds.
    #[test]
    fn timeouts_default_and_bounded() {
        let c = config("", "").unwrap();
        assert_eq!(c.timeouts.header.as_secs(), 10);
        assert_eq!(c.timeouts.body_idle.as_secs(), 30);
        assert_eq!(c.timeouts.body.as_secs(), 600);
        let e = config("header_timeout_s = 0", "").unwrap_err();
        assert!(
            e.contains("server.header_timeout_s") && e.contains("0 超出 1–3600"),
            "{e}"
        );
    }
}
