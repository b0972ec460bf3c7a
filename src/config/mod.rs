//! The deployment config (SPEC §9, §10): the lake, the state database and the
//! departments' sources with their field and code mappings. One TOML file; unknown keys
//! are errors naming the key; relative paths are taken from the config file's folder.
//!
//! `[server]`, `[[token]]` and `[schedule]` (SPEC §10) belong to `hedui serve`; they
//! are accepted here as tables and validated by the server.

use std::path::{Path, PathBuf};

use hedui_connectors::mapping::SourceMapping;
use hedui_connectors::{Credentials, HttpSource};
use serde::Deserialize;

pub mod cluster;
mod parse;
pub mod size;

use cluster::ClusterAddress;

/// Default page size of HTTP pulls and lookup chunks.
pub const DEFAULT_PAGE_SIZE: u32 = 5000;
/// Default HTTP timeout, seconds.
pub const DEFAULT_TIMEOUT_S: u64 = 30;
/// Default retries of a failed HTTP request.
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Default age, in days, beyond which a source's snapshot is stale.
pub const DEFAULT_FRESHNESS_DAYS: u32 = 35;
/// Default retention of results in the state database, days (SPEC §10).
pub const DEFAULT_RETENTION_DAYS: u32 = 1825;
/// Default longest snapshot pull of one table (`pull_deadline_s`): 6 hours.
pub const DEFAULT_PULL_DEADLINE_S: u64 = 6 * 3600;
/// Default largest page or lookup answer (`max_page_mb`).
pub const DEFAULT_MAX_PAGE_MB: u64 = 64;

/// The range each numeric source setting must fall in: (key, smallest, largest). A value
/// outside is a config error naming the key, so no pull can be made endless by a typo.
pub const SOURCE_BOUNDS: [(&str, u64, u64); 6] = [
    ("page_size", 1, 100_000),
    ("timeout_s", 1, 600),
    ("max_retries", 0, 20),
    ("freshness_days", 1, 3660),
    ("pull_deadline_s", 1, 7 * 24 * 3600),
    ("max_page_mb", 1, 1024),
];

/// A config file that cannot be used: `file: key: why`.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {key}{sep}{why}", sep = if key.is_empty() { "" } else { ": " })]
pub struct ConfigError {
    /// The config file.
    pub file: String,
    /// The key at fault (`source[1].page_size`), or a line reference.
    pub key: String,
    /// Why.
    pub why: String,
}

/// Where the lake lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LakeLocation {
    /// A local folder.
    Local(PathBuf),
    /// An S3 bucket and key prefix.
    S3 {
        /// Bucket name.
        bucket: String,
        /// Key prefix inside the bucket (no leading or trailing `/`).
        prefix: String,
    },
}

/// `[lake.s3]`: how to reach an S3-compatible store. Credentials come from `AWS_*`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Options {
    /// Endpoint URL of an S3-compatible store (default: AWS).
    pub endpoint: Option<String>,
    /// Region name (default `us-east-1`; Garage uses `garage`).
    pub region: Option<String>,
    /// Plain HTTP to the endpoint: allowed only for a loopback endpoint.
    #[serde(default)]
    pub allow_http: bool,
    /// The store honours `If-None-Match: *` (put-if-absent), as AWS S3 does. Default
    /// false: Garage 2.5 and some other S3-compatible stores silently overwrite, so
    /// commits are serialised through a lock in `[state]` instead.
    #[serde(default)]
    pub put_if_absent: bool,
}

/// `[lake]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LakeConfig {
    /// The URL as written.
    pub url: String,
    /// Resolved location.
    pub location: LakeLocation,
    /// S3 options (for `s3://` URLs).
    pub s3: S3Options,
}

/// A department (SPEC §2 source column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceName {
    /// 人社.
    Hr,
    /// 不动产.
    Housing,
    /// 公安.
    Police,
    /// 税务.
    Tax,
    /// 金融.
    Bank,
    /// 公积金.
    Fund,
}

impl SourceName {
    /// The name as in SPEC §2.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceName::Hr => "hr",
            SourceName::Housing => "housing",
            SourceName::Police => "police",
            SourceName::Tax => "tax",
            SourceName::Bank => "bank",
            SourceName::Fund => "fund",
        }
    }
}

/// How a source is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The §9 JSON protocol over HTTPS.
    Http,
    /// A folder or object-store prefix in the §2 layout.
    Files,
}

/// How records are pulled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceMode {
    /// Full pulls into lake snapshots.
    #[default]
    Snapshot,
    /// Queries by ID at check time (HTTP only).
    Lookup,
}

/// Credentials of an HTTP source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// No credentials.
    None,
    /// A bearer token read from this environment variable at pull time.
    Bearer {
        /// Environment variable name.
        env: String,
    },
    /// Mutual TLS with a client certificate and key (PEM).
    ClientCert {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
    },
}

/// One `[[source]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceConfig {
    /// Department.
    pub name: SourceName,
    /// http or files.
    pub kind: SourceKind,
    /// Base URL (http), or folder / object-store prefix (files).
    pub url: String,
    /// Canonical tables the source delivers.
    pub tables: Vec<String>,
    /// snapshot or lookup.
    pub mode: SourceMode,
    /// Credentials.
    pub auth: Auth,
    /// Extra trust roots (PEM) for the department's certificate.
    pub ca_file: Option<PathBuf>,
    /// Records per page / IDs per lookup chunk.
    pub page_size: u32,
    /// Per-request timeout, seconds.
    pub timeout_s: u64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// A snapshot older than this many days on D is stale.
    pub freshness_days: u32,
    /// The longest snapshot pull of one table, seconds.
    pub pull_deadline_s: u64,
    /// The largest page or lookup answer accepted, MiB.
    pub max_page_mb: u64,
    /// Its own pull schedule in `hedui serve` (cron, validated there), if any.
    pub schedule: Option<String>,
    /// Field and code mappings.
    pub mapping: SourceMapping,
}

/// The whole deployment config.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// The file it was read from.
    pub file: PathBuf,
    /// `[lake]`.
    pub lake: LakeConfig,
    /// `[state] path`: the embedded database's folder.
    pub state_path: PathBuf,
    /// `[state] retention_days`.
    pub retention_days: u32,
    /// `[state] audit_key`, when not `audit.key` in the state folder.
    pub audit_key: Option<PathBuf>,
    /// `[state] audit_anchor`, when not `audit.anchor` in the state folder.
    pub audit_anchor: Option<PathBuf>,
    /// `[[source]]`, in file order.
    pub sources: Vec<SourceConfig>,
    /// `[server]` (validated by `serve`).
    pub server: Option<toml::Table>,
    /// `[[token]]` (validated by `serve`).
    pub tokens: Vec<toml::Table>,
    /// `[schedule]` (validated by `serve`).
    pub schedule: Option<toml::Table>,
    /// `[engine] memory_limit`: bytes DataFusion's operators may hold before spilling
    /// (`serve`, its schedule, and `check`/`reconcile --config` without `--memory-limit`).
    pub memory_limit: Option<u64>,
    /// `[engine] url`: the Ballista cluster the rules run on, `df://HOST:PORT` (`serve`,
    /// its schedule, and `check`/`reconcile --config` without `--engine`).
    pub cluster: Option<ClusterAddress>,
}

/// Whether `url` is an http(s) URL whose host is a loopback address. The URL is parsed
/// properly: in `http://localhost:1@192.0.2.2:19001` the host is 192.0.2.2 (the rest is
/// a user name and password), so it is not loopback.
pub fn is_loopback_url(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url.trim()) else {
        return false;
    };
    if !matches!(u.scheme(), "http" | "https") {
        return false;
    }
    match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Parses a lake URL: a local path (relative to `base`), `file:///abs/path` or
/// `s3://bucket/prefix`.
pub fn parse_lake_url(url: &str, base: &Path) -> Result<LakeLocation, String> {
    let url = url.trim();
    if let Some(rest) = url.strip_prefix("s3://") {
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err("s3:// URL without a bucket".into());
        }
        Ok(LakeLocation::S3 {
            bucket: bucket.to_owned(),
            prefix: prefix.trim_matches('/').to_owned(),
        })
    } else if let Some(p) = url.strip_prefix("file://") {
        if !p.starts_with('/') {
            return Err("file:// URLs take an absolute path (file:///var/lib/hedui/lake)".into());
        }
        Ok(LakeLocation::Local(PathBuf::from(p)))
    } else if url.contains("://") {
        Err(format!(
            "\"{url}\": the lake is a local path, file:// or s3:// URL"
        ))
    } else if url.is_empty() {
        Err("is empty".into())
    } else {
        Ok(LakeLocation::Local(base.join(url)))
    }
}

impl LakeConfig {
    /// A lake named by URL alone (`check --lake`); S3 options at their defaults.
    pub fn from_url(url: &str) -> Result<LakeConfig, String> {
        Ok(LakeConfig {
            url: url.trim().to_owned(),
            location: parse_lake_url(url, Path::new("."))?,
            s3: S3Options::default(),
        })
    }
}

impl SourceConfig {
    /// The connector settings of an `http` source.
    pub fn http(&self) -> HttpSource {
        HttpSource {
            url: self.url.clone(),
            credentials: match &self.auth {
                Auth::None => Credentials::None,
                Auth::Bearer { env } => Credentials::BearerEnv(env.clone()),
                Auth::ClientCert { cert, key } => Credentials::ClientCert {
                    cert: cert.clone(),
                    key: key.clone(),
                },
            },
            ca_file: self.ca_file.clone(),
            page_size: self.page_size,
            timeout_s: self.timeout_s,
            max_retries: self.max_retries,
            pull_deadline_s: self.pull_deadline_s,
            max_page_mb: self.max_page_mb,
            mapping: self.mapping.clone(),
        }
    }
}

impl Deployment {
    /// The configured source of a department.
    pub fn source(&self, name: SourceName) -> Option<&SourceConfig> {
        self.sources.iter().find(|s| s.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of SPEC §9, completed with the other departments.
    const EXAMPLE: &str = r#"
[lake]
url = "file:///var/lib/hedui/lake"

[state]
path = "state"

[[source]]
name = "hr"
kind = "http"
url = "https://hr.example.gov.cn/api/v1"
tables = ["hr_income"]
mode = "snapshot"
token_env = "HEDUI_HR_TOKEN"
page_size = 5000
timeout_s = 30
max_retries = 5
freshness_days = 35
[source.fields.hr_income]
id_number = "SFZH"
amount = "FFJE"
[source.codes.hr_income.kind]
"01" = "wage"

[[source]]
name = "housing"
kind = "files"
url = "s3://incoming/housing/"

[[source]]
name = "bank"
kind = "http"
url = "https://bank.example.gov.cn/api"
mode = "lookup"
client_cert = "certs/hedui.pem"
client_key = "certs/hedui.key"
ca_file = "certs/bank-ca.pem"
"#;

    fn parse(text: &str) -> Result<Deployment, ConfigError> {
        Deployment::parse(text, Path::new("/etc/hedui/hedui.toml"))
    }

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    /// `[engine] memory_limit` is read as `--memory-limit` is; a bad one names its key.
    #[test]
    fn engine_memory_limit() {
        assert_eq!(parse(EXAMPLE).unwrap().memory_limit, None);
        let with = |v: &str| format!("{EXAMPLE}\n[engine]\nmemory_limit = \"{v}\"\n");
        assert_eq!(parse(&with("4GiB")).unwrap().memory_limit, Some(4 << 30));
        let e = err(&with("lots"));
        assert!(
            e.starts_with("/etc/hedui/hedui.toml: engine.memory_limit: ")
                && e.contains("must start with a number"),
            "{e}"
        );
        let e = err(&format!("{EXAMPLE}\n[engine]\nmemory_limt = \"4GiB\"\n"));
        assert!(e.contains("memory_limt"), "{e}");
    }

    /// `[engine] url` names the Ballista scheduler; a URL that is not one names its key.
    #[test]
    fn engine_url() {
        assert_eq!(parse(EXAMPLE).unwrap().cluster, None);
        let with = |v: &str| format!("{EXAMPLE}\n[engine]\nurl = \"{v}\"\n");
        assert_eq!(
            parse(&with("df://10.0.0.5:50050"))
                .unwrap()
                .cluster
                .map(|c| c.url().to_owned()),
            Some("df://10.0.0.5:50050".to_owned())
        );
        let e = err(&with("10.0.0.5:50050"));
        assert!(
            e.starts_with("/etc/hedui/hedui.toml: engine.url: invalid engine")
                && e.contains("expected df://HOST:PORT"),
            "{e}"
        );
    }

    /// A config named relative to the working directory gives absolute paths: a server
    /// restarted from another directory finds the same state folder and job inputs.
    #[test]
    fn relative_config_paths_are_made_absolute() {
        let d = Deployment::parse(EXAMPLE, Path::new("hedui.toml")).unwrap();
        assert!(d.state_path.is_absolute(), "{}", d.state_path.display());
        assert_eq!(d.state_path, std::env::current_dir().unwrap().join("state"));
    }

    #[test]
    fn reads_the_spec_example() {
        let d = parse(EXAMPLE).unwrap();
        assert_eq!(
            d.lake.location,
            LakeLocation::Local("/var/lib/hedui/lake".into())
        );
        assert_eq!(d.state_path, PathBuf::from("/etc/hedui/state"));
        assert_eq!(d.retention_days, 1825);
        let hr = d.source(SourceName::Hr).unwrap();
        assert_eq!(
            hr.auth,
            Auth::Bearer {
                env: "HEDUI_HR_TOKEN".into()
            }
        );
        assert_eq!(hr.mapping.fields["hr_income"]["amount"], "FFJE");
        assert_eq!(hr.mapping.codes["hr_income"]["kind"]["01"], "wage");
        let housing = d.source(SourceName::Housing).unwrap();
        assert_eq!(housing.tables, ["property"]);
        assert_eq!(housing.freshness_days, DEFAULT_FRESHNESS_DAYS);
        let bank = d.source(SourceName::Bank).unwrap();
        assert_eq!(bank.mode, SourceMode::Lookup);
        assert_eq!(
            bank.auth,
            Auth::ClientCert {
                cert: "/etc/hedui/certs/hedui.pem".into(),
                key: "/etc/hedui/certs/hedui.key".into()
            }
        );
        assert_eq!(bank.page_size, DEFAULT_PAGE_SIZE);
        assert!(d.source(SourceName::Tax).is_none());
    }

    #[test]
    fn s3_lakes_and_plain_http_to_loopback_only() {
        let base = "[state]\npath = \"s\"\n";
        let d = parse(&format!(
            "{base}[lake]\nurl = \"s3://lake/prod/\"\n[lake.s3]\nendpoint = \"http://127.0.0.1:3900\"\nregion = \"garage\"\nallow_http = true\n"
        ))
        .unwrap();
        assert_eq!(
            d.lake.location,
            LakeLocation::S3 {
                bucket: "lake".into(),
                prefix: "prod".into()
            }
        );
        assert_eq!(
            err(&format!("{base}[lake]\nurl = \"s3://lake\"\n[lake.s3]\nendpoint = \"http://10.0.0.5:3900\"\nallow_http = true\n")),
            "/etc/hedui/hedui.toml: lake.s3.allow_http: plain HTTP is allowed only to a loopback endpoint (127.0.0.1, ::1, localhost)"
        );
        assert!(err(&format!(
            "{base}[lake]\nurl = \"s3://lake\"\n[lake.s3]\nendpoint = \"http://127.0.0.1:3900\"\n"
        ))
        .contains("lake.s3.endpoint: plain http:// needs allow_http"));
        assert!(err(&format!("{base}[lake]\nurl = \"ftp://x/y\"\n")).contains("lake.url"));
        // The host is what the URL says it is, not the text before a colon.
        assert_eq!(
            err(&format!("{base}[lake]\nurl = \"s3://lake\"\n[lake.s3]\nendpoint = \"http://localhost:1@192.0.2.2:19001\"\nallow_http = true\n")),
            "/etc/hedui/hedui.toml: lake.s3.allow_http: plain HTTP is allowed only to a loopback endpoint (127.0.0.1, ::1, localhost)"
        );
    }

    /// Loopback is decided on the parsed host.
    #[test]
    fn loopback_urls_are_parsed() {
        for yes in [
            "http://127.0.0.1:3900",
            "http://localhost:3900/x",
            "http://[::1]:1",
            "https://LOCALHOST",
        ] {
            assert!(is_loopback_url(yes), "{yes}");
        }
        for no in [
            "http://localhost:1@192.0.2.2:19001",
            "http://127.0.0.1.evil.example:1",
            "http://10.0.0.5:3900",
            "ftp://127.0.0.1",
            "127.0.0.1:3900",
        ] {
            assert!(!is_loopback_url(no), "{no}");
        }
    }

    #[test]
    fn bad_configs_name_the_key() {
        let with = |extra: &str| format!("[lake]\nurl = \"/l\"\n[state]\npath = \"/s\"\n{extra}");
        assert_eq!(
            err(&with("[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"https://h\"\npage_sise = 10\n")),
            "/etc/hedui/hedui.toml: line 9: unknown field `page_sise`, expected one of `name`, `kind`, `url`, `tables`, `mode`, `token_env`, `client_cert`, `client_key`, `ca_file`, `page_size`, `timeout_s`, `max_retries`, `freshness_days`, `pull_deadline_s`, `max_page_mb`, `schedule`, `fields`, `codes`"
        );
        let cases = [
            ("[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"http://h\"\n", "source[0].url: \"http://h\": HTTP sources are reached over https:// only"),
            ("[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"https://h\"\ntables = [\"property\"]\n", "source[0].tables: \"property\" is not a table of source hr (its tables: hr_income)"),
            ("[[source]]\nname = \"hr\"\nkind = \"files\"\nurl = \"/x\"\nmode = \"lookup\"\n", "source[0].mode: lookup mode needs an http source"),
            ("[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"https://h\"\npage_size = 0\n", "source[0].page_size: must be at least 1"),
            ("[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"https://h\"\nmax_retries = 4000000000\n", "source[0].max_retries: 4000000000 is more than the largest allowed, 20"),
            ("[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"https://h\"\ntimeout_s = 99999999\n", "source[0].timeout_s: 99999999 is more than the largest allowed, 600"),
            ("[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"https://h\"\npull_deadline_s = 0\n", "source[0].pull_deadline_s: must be at least 1"),
            ("[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"https://h\"\nmax_page_mb = 0\n", "source[0].max_page_mb: must be at least 1"),
            ("[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"https://h\"\nclient_cert = \"c.pem\"\n", "source[0].client_key: client_cert needs client_key"),
            ("[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"https://h\"\n[source.fields.hr_income]\namout = \"FFJE\"\n", "source[0].fields.hr_income.amout: hr_income has no column amout"),
            ("[[source]]\nname = \"hr\"\nkind = \"files\"\nurl = \"/a\"\n[[source]]\nname = \"hr\"\nkind = \"files\"\nurl = \"/b\"\n", "source[1].name: source \"hr\" is already configured as source[0]"),
        ];
        for (extra, want) in cases {
            assert_eq!(
                err(&with(extra)),
                format!("/etc/hedui/hedui.toml: {want}"),
                "{extra}"
            );
        }
        assert!(err(&with(
            "[[source]]\nname = \"welfare\"\nkind = \"files\"\nurl = \"/a\"\n"
        ))
        .contains("unknown variant `welfare`"));
        assert!(err("[state]\npath = \"/s\"\n").contains("missing field `lake`"));
    }
}
