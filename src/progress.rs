//! Progress for long runs: stage lines on stderr when it is a terminal, silent with
//! `--quiet` or when output is redirected.

use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Instant;

/// Where a job's stages go besides the terminal (the server's job table).
pub type Sink = Arc<dyn Fn(&str) + Send + Sync>;

/// Reports the stages of a run.
pub struct Progress {
    enabled: bool,
    started: Instant,
    sink: Option<Sink>,
}

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Progress")
            .field("enabled", &self.enabled)
            .field("sink", &self.sink.is_some())
            .finish()
    }
}

impl Progress {
    /// Progress on stderr unless `quiet` or stderr is not a terminal.
    pub fn new(quiet: bool) -> Self {
        Progress {
            enabled: !quiet && std::io::stderr().is_terminal(),
            started: Instant::now(),
            sink: None,
        }
    }

    /// Silent progress.
    pub fn silent() -> Self {
        Progress {
            enabled: false,
            started: Instant::now(),
            sink: None,
        }
    }

    /// Progress that hands each stage to `sink` (and prints nothing).
    pub fn reporting_to(sink: Sink) -> Self {
        Progress {
            enabled: false,
            started: Instant::now(),
            sink: Some(sink),
        }
    }

    /// Reports a finished stage.
    pub fn step(&self, what: &str) {
        tracing::debug!(
            at_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX),
            rss_mib = resident_mib(),
            "stage: {}",
            hedui_connectors::idnum::mask_ids_in(what)
        );
        if let Some(sink) = &self.sink {
            sink(what);
        }
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

/// This process's resident memory in MiB (Linux; 0 elsewhere), for the stage log.
fn resident_mib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}
