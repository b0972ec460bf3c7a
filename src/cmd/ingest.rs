//! `hedui ingest`: pull the configured sources into the lake (SPEC §9). Each source
//! becomes one new snapshot, committed atomically after all its tables are written;
//! a source that fails commits nothing and the previous snapshot stays current.
//!
//! `files` sources and `http` sources in snapshot mode are pulled by
//! [`crate::ingest::pull`]; lookup-mode sources are asked at check time instead.

use crate::cli::IngestArgs;
use crate::config::{Deployment, SourceConfig};
use crate::error::Error;
use crate::ingest::all::{pull_all, Pulled};
use crate::progress::Progress;

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
    let Pulled {
        report, failure, ..
    } = pull_all(&config, selected, None, progress).await?;
    Ok(Ingested {
        report,
        failure: failure.map(Error::from),
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
