//! A 人社 department on loopback (the simulator, over HTTPS with our test CA) and a
//! deployment config pointing `hedui ingest` at it, for the connector tests.

use std::process::{Command, Output};
use std::sync::Arc;

use hedui_connectors::idnum::check_char;
use serde_json::{json, Value};

use super::deptsim::{self, Department, Pki, Running};

pub const TOKEN_ENV: &str = "HEDUI_TEST_HR_TOKEN";
pub const TOKEN: &str = "s3cr3t-token-of-the-hr-department";

pub fn id(first17: &str) -> String {
    format!("{first17}{}", check_char(first17.as_bytes()))
}

pub fn hedui(args: &[&str]) -> Output {
    hedui_env(&[], args)
}

/// `hedui ARGS` with more environment variables.
pub fn hedui_env(env: &[(&str, &str)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(args)
        .env(TOKEN_ENV, TOKEN)
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Seven department records of two people, one with a code the mapping does not know.
pub fn hr_records() -> Vec<Value> {
    let (a, b) = (id("41018419800101011"), id("41018419820202022"));
    vec![
        json!({"SFZH": a, "FFNY": "2026-01", "SRLX": "01", "FFJE": 3000.5, "FFDW": "郑州机械厂"}),
        json!({"SFZH": a, "FFNY": "2026-02", "SRLX": "01", "FFJE": "3000.50"}),
        json!({"SFZH": a, "FFNY": "2026-03", "SRLX": "01", "FFJE": 3000}),
        json!({"SFZH": b, "FFNY": "2026-01", "SRLX": "02", "FFJE": 1800, "FFDW": null}),
        json!({"SFZH": b, "FFNY": "2026-02", "SRLX": "02", "FFJE": 1800}),
        json!({"SFZH": b, "FFNY": "2026-03", "SRLX": "99", "FFJE": 1800}),
        json!({"SFZH": b, "FFNY": "2026-04", "SRLX": "02", "FFJE": 1800}),
    ]
}

pub struct Site {
    pub dir: tempfile::TempDir,
    pub dept: Arc<Department>,
    _sim: Running,
    pub url: String,
}

impl Site {
    /// A department with the seven hr records, served with a certificate of our CA (or a
    /// rogue one), optionally requiring hedui's client certificate.
    pub fn new(rogue: bool, mtls: bool) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new();
        std::fs::write(dir.path().join("ca.pem"), &pki.ca_pem).unwrap();
        std::fs::write(dir.path().join("client.pem"), &pki.client_cert_pem).unwrap();
        std::fs::write(dir.path().join("client.key"), &pki.client_key_pem).unwrap();
        let token = (!mtls).then_some(TOKEN);
        let dept = Arc::new(Department::new(token).table("hr_income", "SFZH", hr_records()));
        let sim = deptsim::start(dept.clone(), pki.server_config(rogue, mtls));
        let url = sim.url();
        Site {
            dir,
            dept,
            _sim: sim,
            url,
        }
    }

    /// Writes `hedui.toml` with the hr source over HTTPS; `auth` and `extra` are lines
    /// of its `[[source]]`.
    pub fn config(&self, auth: &str, extra: &str) -> String {
        let cfg = format!(
            "[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n\n[[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"{}\"\nca_file = \"ca.pem\"\npage_size = 3\n{auth}\n{extra}\n{}",
            self.url,
            deptsim::hr_mapping_toml()
        );
        let path = self.dir.path().join("hedui.toml");
        std::fs::write(&path, cfg).unwrap();
        path.display().to_string()
    }

    pub fn token_config(&self, extra: &str) -> String {
        self.config(&format!("token_env = \"{TOKEN_ENV}\""), extra)
    }

    pub fn manifests(&self) -> usize {
        let dir = self.dir.path().join("lake/sources/hr/manifests");
        std::fs::read_dir(dir).map_or(0, |d| d.count())
    }

    pub fn cursors(&self) -> Vec<Option<String>> {
        self.dept.log().into_iter().map(|l| l.cursor).collect()
    }
}

pub fn assert_exit(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "{}", text(out));
}
