//! Progress for long runs: stage lines on stderr when it is a terminal, silent with
//! `--quiet` or when output is redirected.

use std::io::IsTerminal;
use std::time::Instant;

/// Reports the stages of a run.
#[derive(Debug)]
pub struct Progress {
    enabled: bool,
    started: Instant,
}

impl Progress {
    /// Progress on stderr unless `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> Self {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
            started: Instant::now(),
        }
    }

    /// Silent progress.
    pub fn silent() -> Self {
        Progress {
            enabled: false,
            started: Instant::now(),
        }
    }

    /// Reports a finished stage.
    pub fn step(&self, what: &str) {
        if self.enabled {
            let secs = self.started.elapsed().as_secs_f64();
            eprintln!("[{secs:>7.1}s] {what}");
        }
    }

    /// Reports something the user must know although the run goes on (a department
    /// that failed, a missing source, an ignored column): on stderr, terminal or not,
    /// `--quiet` or not — quiet silences progress, never warnings. ID numbers masked.
    pub fn warn(&self, what: &str) {
        eprintln!(
            "hedui: warning: {}",
            hedui_connectors::idnum::mask_ids_in(what)
        );
    }
}
