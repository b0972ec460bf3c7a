//! The README's samples are real: its applicant CSV is accepted whole (every ID has its
//! right check character), and its sample `results.jsonl` line is exactly the line the
//! hand-made test city produces for that household. A clerk who copies them gets what
//! the README promises.

mod support;

use std::path::Path;

use hedui::applicants::{read_batch, validate};
use hedui::cli::SourceFormat;
use hedui::policy::Policy;
use support::fixture::*;

/// The fenced blocks of `lang` in the README, in order.
fn blocks(lang: &str) -> Vec<String> {
    let root = std::env::var("CARGO_MANIFEST_DIR")
        .unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_owned());
    let readme = std::fs::read_to_string(Path::new(&root).join("README.md")).unwrap();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in readme.lines() {
        match &mut current {
            None if line.trim() == format!("```{lang}") => current = Some(String::new()),
            Some(b) if line.trim() == "```" => {
                out.push(std::mem::take(b));
                current = None;
            }
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
            None => {}
        }
    }
    out
}

/// The README's applicant CSV is accepted: no rejection, every member kept.
#[test]
fn readme_batch_is_accepted() {
    let csv = blocks("csv");
    assert!(!csv.is_empty(), "the README shows an applicant CSV");
    let policy = Policy::parse(hedui::generate::POLICY, "policy.toml").unwrap();
    for text in csv {
        let raw = read_batch(Path::new("申请名单.csv"), text.as_bytes()).unwrap();
        let rows = raw.rows.len();
        let batch = validate("申请名单.csv", raw, &policy, d(AS_OF));
        assert!(
            batch.rejections.is_empty(),
            "README sample rejected: {:?}",
            batch.rejections
        );
        let members: usize = batch.households.iter().map(|h| h.members.len()).sum();
        assert_eq!(members, rows);
    }
}

/// The README's sample result line is the test city's line for that household,
/// byte for byte.
#[test]
fn readme_result_line_is_produced() {
    let json = blocks("json");
    assert_eq!(json.len(), 1, "one results.jsonl sample in the README");
    let sample = json[0].trim();
    let hid = serde_json::from_str::<serde_json::Value>(sample).unwrap()["household_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fx = Fixture::new(SourceFormat::Csv, &[]);
    assert_eq!(fx.check().status.code(), Some(0));
    let text = std::fs::read_to_string(fx.path("out/results.jsonl")).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains(&format!("\"household_id\":\"{hid}\"")))
        .unwrap();
    if sample != line {
        let _ = std::fs::write(
            std::env::temp_dir().join("hedui-readme-sample.jsonl"),
            &text,
        );
    }
    assert_eq!(
        sample, line,
        "update the README's sample from the test city"
    );
}
