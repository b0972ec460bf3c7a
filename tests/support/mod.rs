//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::Path;
use std::process::Output;

use serde_json::Value;

pub mod deptsim;
pub mod fixture;
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

/// The JSON lines of an output file (`results.jsonl` …).
pub fn lines(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
