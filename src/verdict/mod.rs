//! Verdicts: what the pipelines decided for each household, with the records behind
//! every finding (SPEC §5, §7 `results.jsonl`).
//!
//! # Layout
//! - [`rule`]: the one list of rules ([`Rule`]): codes, severities, Chinese texts.
//! - [`evidence`]: the flags' references → the source records they rest on.
//! - [`results`]: one household's result ([`HouseholdResult`], [`Flag`], [`Evidence`]),
//!   assembled from the pipelines' rows and the evidence.
//! - [`run`]: a finished run ([`CheckRun`]): the batch, its results, what it read.

pub mod evidence;
pub mod results;
pub mod rule;
pub mod run;

pub use evidence::{EvidenceIndex, Record};
pub use results::{assemble, Evidence, Flag, HouseholdResult};
pub use rule::{Rule, Severity};
pub use run::CheckRun;
