//! `hedui sources --config F`: per source and table, the current snapshot, its rows and
//! problems, its age, whether it is stale, and the last failed pull with its error
//! (SPEC §9).

use std::fmt::Write as _;

use chrono::NaiveDate;
use hedui_connectors::schema;

use crate::cli::SourcesArgs;
use crate::config::{Deployment, SourceMode};
use crate::error::Error;
use crate::lake::{Lake, SnapshotMode};

/// Describes every configured source; `today` is the date ages are counted to.
pub async fn execute(args: &SourcesArgs, today: NaiveDate) -> Result<String, Error> {
    let config = Deployment::load(&args.config)?;
    let lake = Lake::open_existing(&config.lake).await?;
    let mut out = String::new();
    for s in &config.sources {
        let name = s.name.as_str();
        let current = lake.snapshot_at(name, None).await?;
        let failure = lake.last_failure(name).await?;
        if s.mode == SourceMode::Lookup {
            let _ = writeln!(
                out,
                "{name}: lookup mode — asked for the members of each batch at check time ({})",
                s.url
            );
        }
        match &current {
            None if s.mode == SourceMode::Lookup => {}
            None => {
                let _ = writeln!(out, "{name}: no snapshot — missing for every check");
            }
            Some(m) => {
                let age = m.age_on(today, &chrono::Local);
                let _ = writeln!(
                    out,
                    "{name}: {}snapshot {} pulled {} ({age} days ago, freshness {} days){}",
                    if m.mode == SnapshotMode::Lookup {
                        "lookup "
                    } else {
                        ""
                    },
                    m.seq,
                    m.pulled_at.format("%Y-%m-%d %H:%M:%S UTC"),
                    s.freshness_days,
                    if age > i64::from(s.freshness_days) {
                        " — STALE"
                    } else {
                        ""
                    }
                );
                for t in &s.tables {
                    match m.tables.iter().find(|e| &e.table == t) {
                        Some(e) => {
                            let _ = writeln!(
                                out,
                                "  {t}: {} records, {} malformed",
                                e.rows, e.problems
                            );
                        }
                        None => {
                            let source = schema::table(t).map_or(name, |x| x.source.as_str());
                            let _ = writeln!(out, "  {t}: not delivered — source {source} missing");
                        }
                    }
                }
            }
        }
        if let Some(f) = failure {
            let newer = current.as_ref().is_none_or(|m| f.at > m.committed_at);
            let _ = writeln!(
                out,
                "  last failed pull {}{}: {}",
                f.at.format("%Y-%m-%d %H:%M:%S UTC"),
                if newer {
                    " (after the current snapshot)"
                } else {
                    ""
                },
                f.error
            );
        }
    }
    Ok(out.trim_end().to_owned())
}
