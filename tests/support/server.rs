//! A generated city ingested into a lake and `hedui serve` over TLS on loopback, with
//! tokens of every role: what the API and page tests run against.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use super::ok;

pub const ADMIN: &str = "admin-token-0001";
pub const STAFF_4101: &str = "staff-token-4101";
pub const SYSTEM_5120: &str = "system-token-5120";
pub const AUDITOR: &str = "auditor-token-01";
pub const FUJIAN: &str = "system-token-35";

pub fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn hedui(args: &[&str]) -> std::process::Output {
    hedui_env(&[], args)
}

pub fn hedui_env(env: &[(&str, &str)], args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

pub struct Server {
    pub child: Child,
    pub url: String,
    pub ca: reqwest::Certificate,
    /// Everything the server wrote on stderr (its logs at debug level).
    pub log: std::sync::Arc<std::sync::Mutex<String>>,
    /// The certificate file it serves.
    pub cert: std::path::PathBuf,
}

impl Server {
    /// `HOST:PORT` the server listens on.
    pub fn addr(&self) -> String {
        self.url
            .trim_start_matches("https://")
            .trim_end_matches('/')
            .to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct Site {
    pub dir: tempfile::TempDir,
    pub today: String,
}

impl Site {
    /// A small generated city ingested into a lake, and a server config with TLS and
    /// tokens.
    pub fn new() -> Site {
        Site::with_city(500, 50, 7)
    }

    /// As [`Site::new`], with a city of `people` in `households` made from `seed`.
    pub fn with_city(people: u32, households: u32, seed: u32) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let today = chrono::Local::now().date_naive().to_string();
        let p = |r: &str| dir.path().join(r).display().to_string();
        ok(hedui(&[
            "generate",
            "--people",
            &people.to_string(),
            "--households",
            &households.to_string(),
            "--seed",
            &seed.to_string(),
            "--as-of",
            &today,
            "--out",
            &p("city"),
        ]));
        let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()])
            .unwrap();
        std::fs::write(dir.path().join("server.pem"), cert.cert.pem()).unwrap();
        std::fs::write(
            dir.path().join("server.key"),
            cert.signing_key.serialize_pem(),
        )
        .unwrap();
        let mut cfg = format!(
            "[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n\n[server]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"server.pem\"\ntls_key = \"server.key\"\npolicy = \"city/policy.toml\"\nmax_body_mb = 1\n\n"
        );
        for (name, token, role, regions) in [
            ("admin", ADMIN, "admin", "[\"41\", \"51\", \"11\"]"),
            ("staff-zhengzhou", STAFF_4101, "staff", "[\"4101\"]"),
            ("system-ziyang", SYSTEM_5120, "system", "[\"5120\"]"),
            ("auditor", AUDITOR, "auditor", "[\"41\"]"),
            ("system-fujian", FUJIAN, "system", "[\"35\"]"),
        ] {
            cfg.push_str(&format!(
                "[[token]]\nname = \"{name}\"\nsha256 = \"{}\"\nrole = \"{role}\"\nregions = {regions}\n\n",
                sha256_hex(token)
            ));
        }
        cfg.push_str(&super::files_sources(&p("city/sources")));
        std::fs::write(dir.path().join("hedui.toml"), cfg).unwrap();
        ok(hedui(&["ingest", "--config", &p("hedui.toml")]));
        Site { dir, today }
    }

    pub fn p(&self, r: &str) -> String {
        self.dir.path().join(r).display().to_string()
    }

    /// `hedui reconcile` of the city's applicants as recipients on the lake into
    /// `recon/`, its run kept in the server's state.
    pub fn reconcile(&self) {
        self.reconcile_with("city/applicants.csv", ["--lake", "lake"], "recon");
    }

    /// `hedui reconcile` of the recipients file `recipients` on `data` (`--lake` or
    /// `--sources` and a folder of the site) into `out`, its run kept in the server's
    /// state.
    pub fn reconcile_with(&self, recipients: &str, data: [&str; 2], out: &str) {
        ok(hedui(&[
            "reconcile",
            "--recipients",
            &self.p(recipients),
            data[0],
            &self.p(data[1]),
            "--policy",
            &self.p("city/policy.toml"),
            "--state",
            &self.p("state"),
            "--as-of",
            &self.today,
            "--out",
            &self.p(out),
        ]));
    }

    /// Starts `hedui serve` and waits until it says where it listens.
    pub fn serve(&self) -> Server {
        self.serve_with("hedui.toml", &[])
    }

    /// A config like hedui.toml with `server_keys` added to `[server]` and `more`
    /// appended, written as `name`.
    pub fn config_variant(&self, name: &str, server_keys: &str, more: &str) {
        let base = std::fs::read_to_string(self.dir.path().join("hedui.toml")).unwrap();
        let text = base.replacen(
            "max_body_mb = 1\n",
            &format!("max_body_mb = 1\n{server_keys}"),
            1,
        );
        std::fs::write(self.dir.path().join(name), format!("{text}\n{more}")).unwrap();
    }

    /// Starts `hedui serve --config NAME` with `env`.
    pub fn serve_with(&self, config: &str, env: &[(&str, &str)]) -> Server {
        let mut child = Command::new(env!("CARGO_BIN_EXE_hedui"))
            .args(["serve", "--config", &self.p(config)])
            .envs(env.iter().copied())
            .env("HEDUI_LOG", "info,hedui=debug")
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let url = loop {
            line.clear();
            assert!(
                err.read_line(&mut line).unwrap() > 0,
                "the server ended before listening"
            );
            log.lock().unwrap().push_str(&line);
            if let Some(u) = line.trim().strip_prefix("hedui: listening on ") {
                break u.to_owned();
            }
        };
        // Keep reading stderr (the server never blocks on it) and keep it for the test.
        let kept = log.clone();
        std::thread::spawn(move || {
            for l in err.lines().map_while(Result::ok) {
                let mut k = kept.lock().unwrap();
                k.push_str(&l);
                k.push('\n');
            }
        });
        let ca = reqwest::Certificate::from_pem(
            &std::fs::read(self.dir.path().join("server.pem")).unwrap(),
        )
        .unwrap();
        Server {
            child,
            url,
            ca,
            log,
            cert: self.dir.path().join("server.pem"),
        }
    }
}

pub fn client(s: &Server) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(s.ca.clone())
        .https_only(true)
        .build()
        .unwrap()
}

/// The city's applicant rows (GBK CSV, Chinese headers, as the generator writes it)
/// whose region code starts with one of `prefixes`, header first.
pub fn rows_of(site: &Site, prefixes: &[&str]) -> Vec<u8> {
    let all = std::fs::read(site.p("city/applicants.csv")).unwrap();
    let mut out = Vec::new();
    for (i, line) in all.split_inclusive(|b| *b == b'\n').enumerate() {
        let region = line.split(|b| *b == b',').nth(1).unwrap_or(b"");
        if i == 0 || prefixes.iter().any(|p| region.starts_with(p.as_bytes())) {
            out.extend_from_slice(line);
        }
    }
    out
}

/// The 18-character ID numbers of a CSV batch's rows.
pub fn ids_of(csv: &[u8]) -> Vec<String> {
    csv.split(|b| *b == b'\n')
        .flat_map(|l| l.split(|b| *b == b','))
        .filter(|c| c.len() == 18 && c[..17].iter().all(u8::is_ascii_digit))
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

/// CSV `csv` without the rows of `rejected` (rejections as the API and `rejected.jsonl`
/// give them) and the rest of their households.
pub fn without_rejected(csv: &[u8], rejected: &[serde_json::Value]) -> Vec<u8> {
    let rows: std::collections::BTreeSet<u64> =
        rejected.iter().filter_map(|r| r["row"].as_u64()).collect();
    let households: std::collections::BTreeSet<&str> = rejected
        .iter()
        .filter_map(|r| r["household_id"].as_str())
        .filter(|h| !h.is_empty())
        .collect();
    csv.split_inclusive(|b| *b == b'\n')
        .enumerate()
        .filter(|(i, line)| {
            let id = String::from_utf8_lossy(line.split(|b| *b == b',').next().unwrap_or(b""));
            *i == 0 || (!rows.contains(&(*i as u64 + 1)) && !households.contains(id.as_ref()))
        })
        .flat_map(|(_, l)| l.to_vec())
        .collect()
}

/// [`rows_of`] without the rows `hedui check` rejects (and the rest of their
/// households): a list the hub accepts whole.
pub fn accepted_rows(site: &Site, prefixes: &[&str]) -> Vec<u8> {
    let mut csv = rows_of(site, prefixes);
    for round in 0..4 {
        let (file, out) = (
            site.p(&format!("accepted-{round}.csv")),
            site.p(&format!("accepted-{round}")),
        );
        std::fs::write(&file, &csv).unwrap();
        let o = hedui(&[
            "check",
            "--applicants",
            &file,
            "--lake",
            &site.p("lake"),
            "--policy",
            &site.p("city/policy.toml"),
            "--as-of",
            &site.today,
            "--out",
            &out,
            "--quiet",
        ]);
        let rejected = std::fs::read_to_string(format!("{out}/rejected.jsonl"))
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&o.stderr)));
        let rejected: Vec<serde_json::Value> = rejected
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if rejected.is_empty() {
            return csv;
        }
        csv = without_rejected(&csv, &rejected);
    }
    panic!("the list still has rejected rows after four rounds");
}

/// The API body of each household of the city's applicant batch, by household.
pub fn bodies(site: &Site) -> Vec<(String, serde_json::Value)> {
    let policy =
        hedui::policy::Policy::load(std::path::Path::new(&site.p("city/policy.toml"))).unwrap();
    let today = chrono::Local::now().date_naive();
    let batch = hedui::applicants::load(
        std::path::Path::new(&site.p("city/applicants.csv")),
        &policy,
        today,
    )
    .unwrap();
    batch
        .households
        .iter()
        .map(|h| {
            let members: Vec<serde_json::Value> = h
                .members
                .iter()
                .map(|m| serde_json::json!({"id_number": m.id_number, "name": m.name, "relation": m.relation.chinese()}))
                .collect();
            (
                h.household_id.clone(),
                serde_json::json!({
                    "household_id": h.household_id,
                    "region_code": h.region_code,
                    "area_type": h.area_type.chinese(),
                    "aid_type": h.aid_type.code(),
                    "authorization_id": h.authorization_id,
                    "members": members,
                }),
            )
        })
        .collect()
}

pub async fn get_as(c: &reqwest::Client, s: &Server, token: &str, path: &str) -> reqwest::Response {
    c.get(format!("{}{path}", s.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// Polls a batch until it is done or failed (two minutes at most).
pub async fn wait_batch(
    c: &reqwest::Client,
    s: &Server,
    token: &str,
    id: &str,
) -> serde_json::Value {
    for _ in 0..600 {
        let v: serde_json::Value = get_as(c, s, token, &format!("/api/v1/batches/{id}"))
            .await
            .json()
            .await
            .unwrap();
        if v["status"] == "done" || v["status"] == "failed" {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    panic!("batch {id} did not finish");
}

/// PUT `body` as the recipients list with `token`.
pub async fn put_list(
    c: &reqwest::Client,
    s: &Server,
    token: &str,
    body: Vec<u8>,
) -> (u16, serde_json::Value) {
    let resp = c
        .put(format!(
            "{}/api/v1/recipients?file_name=在保名单.csv",
            s.url
        ))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(serde_json::Value::Null))
}
