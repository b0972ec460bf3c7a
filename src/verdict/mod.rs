//! Verdicts: what the pipelines decided for each household, with the records behind
//! every finding (SPEC §5, §7 `results.jsonl`).
//!
//! # Layout
//! - [`rule`]: the one list of rules ([`Rule`]): codes, severities, Chinese texts.
//! - [`evidence`]: the flags' references → the source records they rest on.
//! - [`results`]: one household's result ([`HouseholdResult`], [`Flag`], [`Evidence`]),
//!   assembled from the pipelines' rows and the evidence.
//! - [`spill`]: the engine's flags, figures and evidence kept by chunk of households
//!   (in memory, or on disk for a large run) until the tail reads them.
//! - [`answer`]: every household's result ([`Answer`]), assembled a chunk at a time.
//! - [`run`]: a finished run ([`CheckRun`]): the batch, its answer, what it read.

pub mod answer;
pub mod evidence;
pub mod results;
pub mod rule;
pub mod run;
pub mod spill;

pub use answer::Answer;
pub use evidence::{EvidenceIndex, Record};
pub use results::{assemble, Evidence, Flag, HouseholdResult};
pub use rule::{Rule, Severity};
pub use run::CheckRun;
pub use spill::SpillError;
