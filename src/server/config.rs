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
    /// Seconds a stopping server waits for the running job before leaving it to be run
    /// again at the next start.
    #[serde(default = "default_shutdown_grace_s")]
    pub shutdown_grace_s: u64,
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
    reconcile: String,
    recipients: PathBuf,
}

/// The nightly reconciliation, validated.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// When, in local time.
    pub cron: super::cron::Cron,
    /// The expression as written (for logs).
    pub expression: String,
    /// The current recipients file.
    pub recipients: PathBuf,
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
    /// Days results are kept (`[state] retention_days`).
    pub retention_days: u32,
    /// Batches waiting at most.
    pub max_queued_jobs: usize,
    /// How long a stopping server waits for the running job.
    pub shutdown_grace: std::time::Duration,
    /// `[schedule]`, if any.
    pub schedule: Option<Schedule>,
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

impl ServerConfig {
    /// Validates `[server]` and `[[token]]` of `d`; messages name the file and the key.
    pub fn from_deployment(d: &Deployment) -> Result<ServerConfig, ConfigError> {
        let file = d.file.display().to_string();
        let fail = |key: String, why: String| ConfigError {
            file: file.clone(),
            key,
            why,
        };
        let base = d.file.parent().unwrap_or(Path::new("."));
        let resolve = |p: &PathBuf| {
            if p.is_relative() {
                base.join(p)
            } else {
                p.clone()
            }
        };
        let table = d
            .server
            .clone()
            .ok_or_else(|| fail("server".into(), "hedui serve needs a [server] table".into()))?;
        let s: ServerSection = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| fail("server".into(), e.message().to_owned()))?;
        let listen: SocketAddr = s.listen.trim().parse().map_err(|_| {
            fail(
                "server.listen".into(),
                format!("\"{}\" is not an address such as 0.0.0.0:8443", s.listen),
            )
        })?;
        let tls = match (&s.tls_cert, &s.tls_key) {
            (Some(c), Some(k)) => Some((resolve(c), resolve(k))),
            (None, None) if listen.ip().is_loopback() => None,
            (None, None) => {
                return Err(fail(
                    "server.tls_cert".into(),
                    format!(
                    "{listen} is not a loopback address: TLS is required (tls_cert and tls_key)"
                ),
                ))
            }
            _ => {
                return Err(fail(
                    "server.tls_key".into(),
                    "tls_cert and tls_key go together".into(),
                ))
            }
        };
        if !(1..=1024).contains(&s.max_body_mb) {
            return Err(fail(
                "server.max_body_mb".into(),
                format!("{} is outside 1–1024", s.max_body_mb),
            ));
        }
        if s.requests_per_minute == 0 {
            return Err(fail(
                "server.requests_per_minute".into(),
                "must be at least 1".into(),
            ));
        }
        if !(1..=10_000).contains(&s.max_queued_jobs) {
            return Err(fail(
                "server.max_queued_jobs".into(),
                format!("{} is outside 1–10000", s.max_queued_jobs),
            ));
        }
        if s.shutdown_grace_s > 3600 {
            return Err(fail(
                "server.shutdown_grace_s".into(),
                format!("{} is more than 3600", s.shutdown_grace_s),
            ));
        }
        let schedule = match &d.schedule {
            None => None,
            Some(table) => {
                let sc: ScheduleSection = toml::Value::Table(table.clone()).try_into().map_err(
                    |e: toml::de::Error| fail("schedule".into(), e.message().to_owned()),
                )?;
                let cron = super::cron::Cron::parse(&sc.reconcile)
                    .map_err(|why| fail("schedule.reconcile".into(), why))?;
                let recipients = resolve(&sc.recipients);
                if !recipients.is_file() {
                    return Err(fail(
                        "schedule.recipients".into(),
                        format!("{} is not a file", recipients.display()),
                    ));
                }
                Some(Schedule {
                    cron,
                    expression: sc.reconcile.trim().to_owned(),
                    recipients,
                })
            }
        };
        let mut tokens = Vec::new();
        for (i, t) in d.tokens.iter().enumerate() {
            let key = |k: &str| format!("token[{i}].{k}");
            let mut t: Token =
                toml::Value::Table(t.clone())
                    .try_into()
                    .map_err(|e: toml::de::Error| {
                        fail(format!("token[{i}]"), e.message().to_owned())
                    })?;
            t.hash = parse_hex32(&t.sha256).ok_or_else(|| {
                fail(
                    key("sha256"),
                    "expected the 64 hex digits of the token's SHA-256 (plaintext tokens are never stored)".into(),
                )
            })?;
            if t.regions.is_empty() {
                return Err(fail(
                    key("regions"),
                    "needs at least one region prefix".into(),
                ));
            }
            for r in &t.regions {
                if r.is_empty() || r.len() > 6 || !r.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(fail(
                        key("regions"),
                        format!("\"{r}\" is not a region-code prefix (1–6 digits)"),
                    ));
                }
            }
            if tokens.iter().any(|o: &Token| o.hash == t.hash) {
                return Err(fail(key("sha256"), "the same token twice".into()));
            }
            tokens.push(t);
        }
        Ok(ServerConfig {
            listen,
            tls,
            policy: resolve(&s.policy),
            max_body_bytes: usize::try_from(s.max_body_mb * 1024 * 1024).unwrap_or(usize::MAX),
            requests_per_minute: s.requests_per_minute,
            tokens,
            state_dir: d.state_path.clone(),
            retention_days: d.retention_days,
            max_queued_jobs: s.max_queued_jobs,
            shutdown_grace: std::time::Duration::from_secs(s.shutdown_grace_s),
            schedule,
        })
    }
}
