//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

use serde_json::Value;

pub mod deptsim;
pub mod fixture;
pub mod openapi;
pub mod pages;
pub mod server;
pub mod site;

/// Asserts that a `hedui` run exited 0 (showing its stderr otherwise).
pub fn ok(out: Output) -> Output {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `[[source]]` tables of a deployment config reading all six departments from the
/// source folder `sources` (`files` sources).
pub fn files_sources(sources: &str) -> String {
    ["hr", "housing", "police", "tax", "bank", "fund"]
        .iter()
        .map(|s| format!("[[source]]\nname = \"{s}\"\nkind = \"files\"\nurl = \"{sources}\"\n"))
        .collect()
}

/// The arguments of `hedui check` on the generated city in `dir/city` (its applicants
/// and policy), `data` saying where the departments' data is, into `dir/out`.
pub fn city_check_args(dir: &Path, data: &[&str], as_of: &str, out: &str) -> Vec<String> {
    let p = |rel: &str| dir.join(rel).display().to_string();
    let mut args: Vec<String> = ["check", "--applicants", &p("city/applicants.csv")]
        .into_iter()
        .chain(["--policy", &p("city/policy.toml")])
        .map(String::from)
        .collect();
    args.extend(data.iter().map(|a| a.to_string()));
    args.extend(["--as-of", as_of, "--out", &p(out)].map(String::from));
    args
}

/// The JSON lines of an output file (`results.jsonl` …).
pub fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
