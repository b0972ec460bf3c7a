//! Where a run's data is: `--sources`, `--lake` or `--config`, with the engine's memory
//! limit and cluster from the flags or the deployment config (read once).

use std::path::PathBuf;

use crate::cli::DataArgs;
use crate::error::Error;
use crate::sources::SourceInput;

/// Where the departments' data is, the deployment's `[state]` folder when `--config`
/// names one, and the engine's memory limit (`--memory-limit`, or else the config's
/// `[engine] memory_limit`); the config is read once.
pub fn resolve_data(args: &DataArgs) -> Result<Data, Error> {
    let flag_limit = args
        .memory_limit
        .as_deref()
        .map(crate::config::size::parse_size)
        .transpose()
        .map_err(|e| Error::Usage(e.to_string()))?;
    let flag_cluster = args
        .engine
        .as_deref()
        .map(crate::config::cluster::ClusterAddress::parse)
        .transpose()?;
    let data = |input, state, config_limit: Option<u64>, config_cluster| Data {
        input,
        state,
        memory_limit: flag_limit.or(config_limit),
        cluster: flag_cluster.clone().or(config_cluster),
    };
    let at = match &args.snapshot_at {
            None => None,
            Some(t) => Some(
                chrono::DateTime::parse_from_rfc3339(t.trim())
                    .map_err(|_| {
                        Error::Usage(format!(
                            "invalid --snapshot-at {t:?}: expected a time such as 2026-11-22T18:00:00+08:00"
                        ))
                    })?
                    .with_timezone(&chrono::Utc),
            ),
        };
    match (&args.sources, &args.lake, &args.config) {
        (Some(dir), None, None) if at.is_none() => {
            Ok(data(SourceInput::Folder(dir.clone()), None, None, None))
        }
        (Some(_), None, None) => Err(Error::Usage(
            "--snapshot-at reads a lake: give --lake URL or --config FILE, not --sources".into(),
        )),
        (None, Some(url), None) => {
            let lake = crate::config::LakeConfig::from_url(url)
                .map_err(|why| Error::Usage(format!("invalid --lake {url:?}: {why}")))?;
            Ok(data(
                SourceInput::Lake {
                    lake,
                    at,
                    lookups: vec![],
                },
                None,
                None,
                None,
            ))
        }
        (None, None, Some(file)) => {
            let d = crate::config::Deployment::load(file)?;
            Ok(data(
                SourceInput::of_deployment(&d, at),
                Some((d.state_path.clone(), crate::state::AuditFiles::of(&d))),
                d.memory_limit,
                d.cluster.clone(),
            ))
        }
        _ => Err(Error::Usage(
            "give exactly one of --sources DIR, --lake URL and --config FILE".into(),
        )),
    }
}

/// What [`resolve_data`] finds.
#[derive(Debug)]
pub struct Data {
    /// Where the departments' data is.
    pub input: crate::sources::SourceInput,
    /// The deployment's `[state]` folder and audit files (`--config`).
    pub state: Option<(PathBuf, crate::state::AuditFiles)>,
    /// Bytes DataFusion's operators may hold (half the machine when `None`).
    pub memory_limit: Option<u64>,
    /// The cluster the rules run on (`--engine`, or else the config's `[engine] url`).
    pub cluster: Option<crate::config::cluster::ClusterAddress>,
}
