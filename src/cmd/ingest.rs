//! `hedui ingest`: pull the configured sources into the lake (SPEC §9). Each source
//! becomes one new snapshot, committed atomically after all its tables are written;
//! a source that fails commits nothing and the previous snapshot stays current.
//!
//! `files` sources and `http` sources in snapshot mode are pulled by
//! [`crate::ingest::pull`]; lookup-mode sources are asked at check time instead.

use futures::StreamExt;

use crate::cli::IngestArgs;
use crate::config::{Deployment, SourceConfig};
use crate::error::Error;
use crate::ingest::pull::{pull, Outcome};
use crate::lake::Lake;
use crate::progress::Progress;

/// Sources pulled at the same time by one ingest.
const SOURCES_AT_ONCE: usize = 3;

/// Ingests the selected sources.
pub async fn execute(args: &IngestArgs, progress: &Progress) -> Result<Ingested, Error> {
    let config = Deployment::load(&args.config)?;
    let mut selected: Vec<&SourceConfig> = Vec::new();
    for name in &args.sources {
        let s = config
            .sources
            .iter()
            .find(|s| s.name.as_str() == name.trim())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--source {name}: no such source in {}",
                    args.config.display()
                ))
            })?;
        selected.push(s);
    }
    if args.sources.is_empty() {
        selected = config.sources.iter().collect();
    }
    let lake = Lake::open(&config.lake)?;
    // Each source is pulled on its own: one that fails commits nothing (its previous
    // snapshot stays current) and does not stop the others.
    // Up to SOURCES_AT_ONCE sources are pulled at a time (departments answer at their
    // own pace); the report keeps the config's order.
    let outcomes: Vec<(&SourceConfig, Result<Outcome, Error>)> = futures::stream::iter(selected)
        .map(|s| {
            let (lake, config) = (&lake, &config);
            async move {
                (
                    s,
                    pull(lake, s, config, progress).await.map_err(Error::from),
                )
            }
        })
        .buffered(SOURCES_AT_ONCE)
        .collect()
        .await;
    let mut lines = Vec::new();
    let mut first_failure = None;
    for (s, outcome) in outcomes {
        match outcome {
            Ok(Outcome::Lookup) => lines.push(format!(
                "{}: lookup mode — asked for the households being checked at check time, nothing to ingest",
                s.name.as_str()
            )),
            Ok(Outcome::Committed(m)) => {
                let rows: u64 = m.tables.iter().map(|t| t.rows).sum();
                let problems: u64 = m.tables.iter().map(|t| t.problems).sum();
                lines.push(format!(
                    "{}: snapshot {} committed ({} tables, {rows} records, {problems} malformed)",
                    m.source,
                    m.seq,
                    m.tables.len()
                ));
            }
            Err(e) => {
                let mut line = format!("{}: failed, nothing committed: {e}", s.name.as_str());
                if let Ok(Some(c)) = lake.load_checkpoint(s.name.as_str()).await {
                    let kept = c.done.iter().map(|t| t.rows).sum::<u64>()
                        + c.current.as_ref().map_or(0, |i| i.written.rows);
                    if kept > 0 {
                        line.push_str(&format!(
                            " ({kept} records written so far are kept; the next ingest goes on from there)"
                        ));
                    }
                }
                if let Err(rec) = lake.record_failure(s.name.as_str(), &e.to_string()).await {
                    line.push_str(&format!(" (the failure could not be recorded: {rec})"));
                }
                lines.push(line);
                first_failure.get_or_insert(e);
            }
        }
    }
    Ok(Ingested {
        report: lines.join("\n"),
        failure: first_failure,
    })
}

/// What an ingest run did: one line per source, and the first failure if any.
#[derive(Debug)]
pub struct Ingested {
    /// One line per source.
    pub report: String,
    /// The first source that failed (the run's exit status follows it).
    pub failure: Option<Error>,
}
