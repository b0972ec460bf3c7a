//! The config file as written — the `Raw*` structs, a serde leaf of documented fields
//! with `deny_unknown_fields` — and [`Deployment::parse`], which checks it in named
//! steps (the lake, each source, the state, the engine) and applies the defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use hedui_connectors::mapping::SourceMapping;
use hedui_connectors::schema;
use serde::Deserialize;

use super::cluster::ClusterAddress;
use super::*;

/// The config file as written (checked and given its defaults by [`Deployment::parse`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    /// `[lake]`.
    lake: RawLake,
    /// `[state]`.
    state: RawState,
    /// `[[source]]`, one per department.
    #[serde(default, rename = "source")]
    sources: Vec<RawSource>,
    /// `[server]`, validated by `hedui serve`.
    server: Option<toml::Table>,
    /// `[[token]]`, validated by `hedui serve`.
    #[serde(default, rename = "token")]
    tokens: Vec<toml::Table>,
    /// `[schedule]`, validated by `hedui serve`.
    schedule: Option<toml::Table>,
    /// `[engine]`.
    engine: Option<RawEngine>,
}

/// `[engine]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    /// Memory DataFusion's operators may hold before spilling (`4GiB`; at least 64MiB;
    /// default: half the machine).
    memory_limit: Option<String>,
    /// A Ballista scheduler, `df://HOST[:PORT]` (default: this process runs the rules).
    url: Option<String>,
}

/// `[lake]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLake {
    /// A folder (relative to the config's folder) or `s3://bucket/prefix`.
    url: String,
    /// `[lake.s3]`: endpoint, region, plain HTTP to a loopback endpoint.
    #[serde(default)]
    s3: S3Options,
}

/// `[state]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawState {
    /// The state database's folder (relative to the config's folder).
    path: PathBuf,
    /// Days results, jobs and runs are kept (default [`DEFAULT_RETENTION_DAYS`], at
    /// least 1).
    retention_days: Option<u32>,
    /// The audit key's file (default `audit.key` in the state folder).
    audit_key: Option<PathBuf>,
    /// The audit anchor's file (default `audit.anchor` in the state folder); another
    /// volume than the database's proves the log's end even to someone who can write it.
    audit_anchor: Option<PathBuf>,
}

/// One `[[source]]`: a department, how it delivers, and its field and code mappings.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    /// The department (`hr`, `tax`, `housing`, `police`, `bank`, `fund`).
    name: SourceName,
    /// `files` (a folder or an object-store prefix) or `http` (the interface).
    kind: SourceKind,
    /// Where: a folder, `s3://…/`, or the interface's `https://` URL.
    url: String,
    /// The canonical tables it delivers (default: all of its department's).
    tables: Option<Vec<String>>,
    /// `snapshot` (pulled by `hedui ingest`) or `lookup` (asked at check time).
    #[serde(default)]
    mode: SourceMode,
    /// The environment variable holding its bearer token.
    token_env: Option<String>,
    /// Client certificate for mutual TLS (PEM).
    client_cert: Option<PathBuf>,
    /// Its private key (PEM).
    client_key: Option<PathBuf>,
    /// The CA the department's server certificate is checked against (PEM).
    ca_file: Option<PathBuf>,
    /// Records per page or lookup chunk (default [`DEFAULT_PAGE_SIZE`]).
    page_size: Option<u32>,
    /// Seconds one request may take (default [`DEFAULT_TIMEOUT_S`]).
    timeout_s: Option<u64>,
    /// Retries of a failed request (default [`DEFAULT_MAX_RETRIES`]).
    max_retries: Option<u32>,
    /// Days after which its snapshot is stale (default [`DEFAULT_FRESHNESS_DAYS`]).
    freshness_days: Option<u32>,
    /// Seconds one table's pull may take in all (default [`DEFAULT_PULL_DEADLINE_S`]).
    pull_deadline_s: Option<u64>,
    /// Largest page or lookup answer, MB (default [`DEFAULT_MAX_PAGE_MB`]).
    max_page_mb: Option<u64>,
    /// When `hedui serve` pulls this source (cron, local time), instead of at
    /// `[schedule] ingest` with the others.
    schedule: Option<String>,
    /// Per canonical table: canonical column → the department's field name.
    #[serde(default)]
    fields: BTreeMap<String, BTreeMap<String, String>>,
    /// Per canonical table and column: the department's code → the canonical value.
    #[serde(default)]
    codes: BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
}

/// What every step needs: the file (named in messages) and its folder (relative paths
/// are taken from it).
struct Cx<'a> {
    file: String,
    base: &'a Path,
}

impl Cx<'_> {
    fn fail(&self, key: impl Into<String>, why: impl Into<String>) -> ConfigError {
        ConfigError {
            file: self.file.clone(),
            key: key.into(),
            why: why.into(),
        }
    }

    /// `p` against the config file's folder, made absolute once here: a server started
    /// from another working directory finds the same state, lake and job inputs.
    fn resolve(&self, p: PathBuf) -> PathBuf {
        let joined = if p.is_relative() {
            self.base.join(p)
        } else {
            p
        };
        std::path::absolute(&joined).unwrap_or(joined)
    }
}

impl Deployment {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Deployment, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            key: String::new(),
            why: format!("cannot read the config: {e}"),
        })?;
        Deployment::parse(&text, path)
    }

    /// Parses config text; `path` names the file in messages and anchors relative paths.
    pub fn parse(text: &str, path: &Path) -> Result<Deployment, ConfigError> {
        let cx = Cx {
            file: path.display().to_string(),
            base: path.parent().unwrap_or(Path::new(".")),
        };
        let raw: RawDeployment = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            cx.fail(
                line.map_or_else(String::new, |l| format!("line {l}")),
                e.message().trim(),
            )
        })?;
        let lake = lake(raw.lake, &cx)?;
        let mut sources: Vec<SourceConfig> = Vec::new();
        for (i, s) in raw.sources.into_iter().enumerate() {
            let source = source(i, s, &sources, &cx)?;
            sources.push(source);
        }
        let retention_days = match raw.state.retention_days {
            Some(0) => return Err(cx.fail("state.retention_days", "must be at least 1")),
            Some(d) => d,
            None => DEFAULT_RETENTION_DAYS,
        };
        let (memory_limit, cluster) = engine(raw.engine, &cx)?;
        Ok(Deployment {
            memory_limit,
            cluster,
            file: path.to_owned(),
            lake,
            audit_key: raw.state.audit_key.map(|p| cx.resolve(p)),
            audit_anchor: raw.state.audit_anchor.map(|p| cx.resolve(p)),
            state_path: cx.resolve(raw.state.path),
            retention_days,
            sources,
            server: raw.server,
            tokens: raw.tokens,
            schedule: raw.schedule,
        })
    }
}

/// `[lake]`: its URL, and plain HTTP to S3 only on a loopback endpoint that says so.
fn lake(raw: RawLake, cx: &Cx<'_>) -> Result<LakeConfig, ConfigError> {
    let url = raw.url.trim().to_owned();
    let location = parse_lake_url(&url, cx.base).map_err(|why| cx.fail("lake.url", why))?;
    if let Some(ep) = &raw.s3.endpoint {
        if ep.starts_with("http://") && !raw.s3.allow_http {
            return Err(cx.fail(
                "lake.s3.endpoint",
                "plain http:// needs allow_http = true (loopback only)",
            ));
        }
        if !ep.starts_with("http://") && !ep.starts_with("https://") {
            return Err(cx.fail(
                "lake.s3.endpoint",
                format!("\"{ep}\" is not an http(s) URL"),
            ));
        }
    }
    if raw.s3.allow_http && !raw.s3.endpoint.as_deref().is_some_and(is_loopback_url) {
        return Err(cx.fail(
            "lake.s3.allow_http",
            "plain HTTP is allowed only to a loopback endpoint (127.0.0.1, ::1, localhost)",
        ));
    }
    Ok(LakeConfig {
        url,
        location,
        s3: raw.s3,
    })
}

/// `[engine]`: the memory limit and the cluster.
fn engine(
    raw: Option<RawEngine>,
    cx: &Cx<'_>,
) -> Result<(Option<u64>, Option<ClusterAddress>), ConfigError> {
    let cluster = raw
        .as_ref()
        .and_then(|e| e.url.as_deref())
        .map(ClusterAddress::parse)
        .transpose()
        .map_err(|e| cx.fail("engine.url", e.to_string()))?;
    let memory_limit = raw
        .and_then(|e| e.memory_limit)
        .map(|s| size::parse_size(&s))
        .transpose()
        .map_err(|e| cx.fail("engine.memory_limit", e.to_string()))?;
    Ok((memory_limit, cluster))
}

/// `[[source]]` number `i`, checked against the sources before it.
fn source(
    i: usize,
    s: RawSource,
    earlier: &[SourceConfig],
    cx: &Cx<'_>,
) -> Result<SourceConfig, ConfigError> {
    let key = |k: &str| format!("source[{i}].{k}");
    if let Some(prev) = earlier.iter().position(|p| p.name == s.name) {
        return Err(cx.fail(
            key("name"),
            format!(
                "source \"{}\" is already configured as source[{prev}]",
                s.name.as_str()
            ),
        ));
    }
    let tables = tables_of(&s, &key, cx)?;
    let url = s.url.trim().to_owned();
    check_kind(&s, &url, &key, cx)?;
    let auth = auth_of(&s, &key, cx)?;
    let bounded = |k: &str, v: Option<u64>, default: u64| bounded(k, v, default, &key, cx);
    let page_size = bounded(
        "page_size",
        s.page_size.map(u64::from),
        u64::from(DEFAULT_PAGE_SIZE),
    )?;
    let timeout_s = bounded("timeout_s", s.timeout_s, DEFAULT_TIMEOUT_S)?;
    let max_retries = bounded(
        "max_retries",
        s.max_retries.map(u64::from),
        u64::from(DEFAULT_MAX_RETRIES),
    )?;
    let freshness_days = bounded(
        "freshness_days",
        s.freshness_days.map(u64::from),
        u64::from(DEFAULT_FRESHNESS_DAYS),
    )?;
    let pull_deadline_s = bounded(
        "pull_deadline_s",
        s.pull_deadline_s,
        DEFAULT_PULL_DEADLINE_S,
    )?;
    let max_page_mb = bounded("max_page_mb", s.max_page_mb, DEFAULT_MAX_PAGE_MB)?;
    let mapping = SourceMapping {
        fields: s.fields,
        codes: s.codes,
    };
    mapping
        .validate(&tables)
        .map_err(|e| cx.fail(key(&e.key), e.why))?;
    Ok(SourceConfig {
        name: s.name,
        kind: s.kind,
        url,
        tables,
        mode: s.mode,
        auth,
        ca_file: s.ca_file.map(|p| cx.resolve(p)),
        page_size: u32::try_from(page_size).unwrap_or(DEFAULT_PAGE_SIZE),
        timeout_s,
        max_retries: u32::try_from(max_retries).unwrap_or(DEFAULT_MAX_RETRIES),
        freshness_days: u32::try_from(freshness_days).unwrap_or(DEFAULT_FRESHNESS_DAYS),
        pull_deadline_s,
        max_page_mb,
        schedule: s
            .schedule
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty()),
        mapping,
    })
}

/// The tables a source delivers: those listed (each one of its department's), or all of
/// its department's.
fn tables_of(
    s: &RawSource,
    key: &dyn Fn(&str) -> String,
    cx: &Cx<'_>,
) -> Result<Vec<String>, ConfigError> {
    let fail = |k: String, why: String| cx.fail(k, why);
    let own: Vec<String> = schema::tables()
        .iter()
        .filter(|t| t.source == s.name.as_str())
        .map(|t| t.table.clone())
        .collect();
    let tables = match s.tables.clone() {
        None => own.clone(),
        Some(ts) if ts.is_empty() => return Err(fail(key("tables"), "lists no table".into())),
        Some(ts) => {
            for t in &ts {
                if !own.contains(t) {
                    return Err(fail(
                        key("tables"),
                        format!(
                            "\"{t}\" is not a table of source {} (its tables: {})",
                            s.name.as_str(),
                            own.join(", ")
                        ),
                    ));
                }
            }
            ts
        }
    };
    Ok(tables)
}

/// What a source's kind asks of its URL and settings: https for an interface; a path,
/// `file://` or `s3://` for files, which have no credentials and no lookup mode.
fn check_kind(
    s: &RawSource,
    url: &str,
    key: &dyn Fn(&str) -> String,
    cx: &Cx<'_>,
) -> Result<(), ConfigError> {
    let fail = |k: String, why: String| cx.fail(k, why);
    match s.kind {
        SourceKind::Http => {
            if !url.starts_with("https://") {
                return Err(fail(
                    key("url"),
                    format!("\"{url}\": HTTP sources are reached over https:// only"),
                ));
            }
        }
        SourceKind::Files => {
            if s.mode == SourceMode::Lookup {
                return Err(fail(key("mode"), "lookup mode needs an http source".into()));
            }
            if url.is_empty() {
                return Err(fail(key("url"), "is empty".into()));
            }
            if url.contains("://") && !url.starts_with("file://") && !url.starts_with("s3://") {
                return Err(fail(
                    key("url"),
                    format!("\"{url}\": a files source is a path, file:// or s3:// URL"),
                ));
            }
            for (k, present) in [
                ("token_env", s.token_env.is_some()),
                ("client_cert", s.client_cert.is_some()),
                ("client_key", s.client_key.is_some()),
                ("ca_file", s.ca_file.is_some()),
            ] {
                if present {
                    return Err(fail(key(k), "applies to http sources only".into()));
                }
            }
        }
    }
    Ok(())
}

/// How a source authenticates: a bearer token from the environment, a client
/// certificate with its key, or nothing.
fn auth_of(s: &RawSource, key: &dyn Fn(&str) -> String, cx: &Cx<'_>) -> Result<Auth, ConfigError> {
    let fail = |k: String, why: String| cx.fail(k, why);
    let auth = match (
        s.token_env.clone(),
        s.client_cert.clone(),
        s.client_key.clone(),
    ) {
        (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
            return Err(fail(
                key("token_env"),
                "use either a bearer token or a client certificate, not both".into(),
            ))
        }
        (Some(env), None, None) if env.trim().is_empty() => {
            return Err(fail(key("token_env"), "is empty".into()))
        }
        (Some(env), None, None) => Auth::Bearer { env },
        (None, Some(cert), Some(k)) => Auth::ClientCert {
            cert: cx.resolve(cert),
            key: cx.resolve(k),
        },
        (None, Some(_), None) => {
            return Err(fail(
                key("client_key"),
                "client_cert needs client_key".into(),
            ))
        }
        (None, None, Some(_)) => {
            return Err(fail(
                key("client_cert"),
                "client_key needs client_cert".into(),
            ))
        }
        (None, None, None) => Auth::None,
    };
    Ok(auth)
}

/// A numeric source setting within its [`SOURCE_BOUNDS`], or its default.
fn bounded(
    k: &str,
    v: Option<u64>,
    default: u64,
    key: &dyn Fn(&str) -> String,
    cx: &Cx<'_>,
) -> Result<u64, ConfigError> {
    let Some(v) = v else { return Ok(default) };
    let (_, lo, hi) = SOURCE_BOUNDS
        .iter()
        .find(|(name, _, _)| *name == k)
        .copied()
        .unwrap_or((k, 0, u64::MAX));
    if v < lo {
        Err(cx.fail(key(k), format!("must be at least {lo}")))
    } else if v > hi {
        Err(cx.fail(
            key(k),
            format!("{v} is more than the largest allowed, {hi}"),
        ))
    } else {
        Ok(v)
    }
}
