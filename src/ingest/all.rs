//! Pulling a deployment's sources into its lake, each as one new snapshot: what `hedui
//! ingest` and the server's night (`[schedule] ingest`) both run.

use std::time::Duration;

use futures::StreamExt;

use crate::config::{Deployment, SourceConfig};
use crate::lake::Lake;
use crate::progress::Progress;

use super::pull::{pull, Outcome};
use super::IngestError;

/// Sources pulled at the same time.
const SOURCES_AT_ONCE: usize = 3;

/// Pulls `selected` sources of `config` into its lake, up to [`SOURCES_AT_ONCE`] at a
/// time, each on its own (one that fails commits nothing, records its failure in the
/// lake and does not stop the others) — what `hedui ingest` does, and the server's night
/// (`[schedule] ingest`) too.
///
/// With `within`, a source still pulling when that time has passed since the start is
/// given up while it still reads the department (a pull that has read everything
/// commits): it counts as failed (recorded so in the lake, its previous snapshot current,
/// what it wrote so far kept for the next pull), so the night's reconciliation does not
/// wait for a department that never answers.
pub async fn pull_all(
    config: &Deployment,
    selected: Vec<&SourceConfig>,
    within: Option<Duration>,
    progress: &Progress,
) -> Result<Pulled, IngestError> {
    let deadline = within.map(|w| (tokio::time::Instant::now() + w, w.as_secs() / 60));
    let lake = Lake::open(&config.lake)?;
    // Each source is pulled on its own: one that fails commits nothing (its previous
    // snapshot stays current) and does not stop the others.
    // Up to SOURCES_AT_ONCE sources are pulled at a time (departments answer at their
    // own pace); the report keeps the config's order.
    let outcomes: Vec<(&SourceConfig, Result<Outcome, IngestError>)> =
        futures::stream::iter(selected)
            .map(|s| {
                let lake = &lake;
                async move { (s, pull(lake, s, config, deadline, progress).await) }
            })
            .buffered(SOURCES_AT_ONCE)
            .collect()
            .await;
    let mut lines = Vec::new();
    let mut first_failure = None;
    let (mut refreshed, mut failed) = (Vec::new(), Vec::new());
    for (s, outcome) in outcomes {
        match outcome {
            Ok(Outcome::Lookup) => lines.push(format!(
                "{}: lookup mode — asked for the households being checked at check time, nothing to ingest",
                s.name.as_str()
            )),
            Ok(Outcome::Committed(m)) => {
                let rows: u64 = m.tables.iter().map(|t| t.rows).sum();
                let problems: u64 = m.tables.iter().map(|t| t.problems).sum();
                refreshed.push(m.source.clone());
                lines.push(format!(
                    "{}: snapshot {} committed ({} tables, {rows} records, {problems} malformed)",
                    m.source,
                    m.seq,
                    m.tables.len()
                ));
            }
            Err(e) => {
                failed.push(s.name.as_str().to_owned());
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
    Ok(Pulled {
        report: lines.join("\n"),
        failure: first_failure,
        refreshed,
        failed,
    })
}

/// What the pulls did: one line per source, the first failure if any, and which
/// sources were refreshed and which failed.
#[derive(Debug)]
pub struct Pulled {
    /// One line per source.
    pub report: String,
    /// The first source that failed.
    pub failure: Option<IngestError>,
    /// Sources with a new snapshot.
    pub refreshed: Vec<String>,
    /// Sources that failed (their previous snapshot stays current).
    pub failed: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A department that accepts the connection and never answers is given up when the
    /// night's time for pulls has run out: the source counts as failed, the failure is
    /// recorded in the lake (so `hedui sources` and the page say it) and nothing is
    /// committed.
    #[tokio::test]
    async fn a_source_past_the_nights_time_is_given_up() {
        let dir = tempfile::tempdir().unwrap();
        // Connections are accepted by the kernel and never read.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = silent.local_addr().unwrap().port();
        let text = format!(
            "[lake]\nurl = \"lake\"\n[state]\npath = \"state\"\n\
             [[source]]\nname = \"hr\"\nkind = \"http\"\nurl = \"https://127.0.0.1:{port}\"\n\
             timeout_s = 600\n"
        );
        let config = Deployment::parse(&text, &dir.path().join("hedui.toml")).unwrap();
        let started = std::time::Instant::now();
        let pulled = pull_all(
            &config,
            config.sources.iter().collect(),
            Some(Duration::from_millis(300)),
            &Progress::silent(),
        )
        .await
        .unwrap();
        assert!(started.elapsed() < Duration::from_secs(60));
        assert_eq!(pulled.failed, ["hr"]);
        assert!(pulled.refreshed.is_empty());
        assert!(
            pulled
                .report
                .contains("hr: failed, nothing committed: 未在规定时间内完成"),
            "{}",
            pulled.report
        );
        let lake = Lake::open(&config.lake).unwrap();
        let failure = lake.last_failure("hr").await.unwrap().expect("recorded");
        assert!(
            failure.error.contains("未在规定时间内完成"),
            "{}",
            failure.error
        );
        drop(silent);
    }
}
