//! What the benches share: a generated city, ingested into a local lake, with the
//! deployment config that reads it (kept in `--dir` and reused by later runs).

pub mod ballista;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The city every bench works on.
pub struct CityArgs {
    /// `--people N` (default 100,000).
    pub people: u64,
    /// `--households N` (default 10,000).
    pub households: u64,
    /// `--dir D`: where the city is kept and reused (a temporary folder without it).
    pub dir: Option<PathBuf>,
}

/// Reads the command line: the city's flags here, every other flag handed to `other`
/// with a way to take its value; flags nobody knows are ignored (cargo bench passes
/// `--bench`).
pub fn args(mut other: impl FnMut(&str, &mut dyn FnMut() -> String)) -> CityArgs {
    let mut a = CityArgs {
        people: 100_000,
        households: 10_000,
        dir: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| panic!("{k} needs a value"));
        match k.as_str() {
            "--people" => a.people = v().parse().expect("--people N"),
            "--households" => a.households = v().parse().expect("--households N"),
            "--dir" => a.dir = Some(v().into()),
            _ => other(&k, &mut v),
        }
    }
    a
}

/// The bearer token of the config's `system` token.
pub const TOKEN: &str = "bench-system-token";

/// Runs the hedui binary of this build; panics with its stderr when it fails.
pub fn hedui(args: &[&str]) {
    let out = Command::new(env!("CARGO_BIN_EXE_hedui"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hedui {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha256_hex(s: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Makes (unless `dir/hedui.toml` exists) a city of `people` in `households` (Parquet,
/// seed 1) in `dir/city`, its lake in `dir/lake` and `dir/hedui.toml` (six `files`
/// sources, a TLS server with one `system` token); returns the city's check date.
pub fn city(dir: &Path, people: u64, households: u64) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let p = |r: &str| dir.join(r).display().to_string();
    let as_of_file = dir.join("as_of");
    if dir.join("hedui.toml").exists() {
        // Cities made before `as_of` was kept were made on the day they are used.
        return std::fs::read_to_string(&as_of_file)
            .map(|s| s.trim().to_owned())
            .unwrap_or_else(|_| chrono::Local::now().date_naive().to_string());
    }
    let today = chrono::Local::now().date_naive().to_string();
    let t = Instant::now();
    hedui(&[
        "generate",
        "--people",
        &people.to_string(),
        "--households",
        &households.to_string(),
        "--format",
        "parquet",
        "--seed",
        "1",
        "--as-of",
        &today,
        "--out",
        &p("city"),
        "--quiet",
    ]);
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    std::fs::write(dir.join("server.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("server.key"), cert.signing_key.serialize_pem()).unwrap();
    let mut cfg = format!(
        "[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n\n[server]\nlisten = \"127.0.0.1:0\"\ntls_cert = \"server.pem\"\ntls_key = \"server.key\"\npolicy = \"city/policy.toml\"\nrequests_per_minute = 1000000\n\n[[token]]\nname = \"bench\"\nsha256 = \"{}\"\nrole = \"system\"\nregions = [\"1\", \"2\", \"3\", \"4\", \"5\", \"6\", \"7\", \"8\", \"9\"]\n\n",
        sha256_hex(TOKEN)
    );
    for s in ["hr", "housing", "police", "tax", "bank", "fund"] {
        cfg.push_str(&format!(
            "[[source]]\nname = \"{s}\"\nkind = \"files\"\nurl = \"{}\"\n",
            p("city/sources")
        ));
    }
    std::fs::write(dir.join("hedui.toml"), cfg).unwrap();
    hedui(&["ingest", "--config", &p("hedui.toml"), "--quiet"]);
    std::fs::write(&as_of_file, &today).unwrap();
    eprintln!(
        "city generated and ingested in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    today
}
