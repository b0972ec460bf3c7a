//! One verification run (SPEC §7 `check`): policy → applicants → sources → rules →
//! results with evidence. Output files are written by [`crate::output`].

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;

use crate::applicants::{self, Batch};
use crate::config::cluster::ClusterAddress;
use crate::engine::cluster::Scratch;
use crate::engine::inputs::input_tables;
use crate::engine::planned::Planned;
use crate::engine::queries::evidence_queries;
use crate::engine::queries::{FLAG_ROWS, HOUSEHOLD_RESULTS};
use crate::engine::{self, Engine, Runner};
use crate::error::Error;
use crate::policy::Policy;
use crate::progress::Progress;
use crate::sources::{self, SourceInput, Sources};
use crate::verdict::spill::{Spill, SpillError};
use crate::verdict::Answer;

pub use crate::verdict::CheckRun;

/// What a check reads.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Applicant batch file.
    pub applicants: PathBuf,
    /// The departments' data: a source folder or the lake.
    pub sources: SourceInput,
    /// Policy TOML.
    pub policy: PathBuf,
    /// Check date D.
    pub as_of: NaiveDate,
    /// Bytes DataFusion's operators may hold before spilling (half the machine when
    /// `None`).
    pub memory_limit: Option<u64>,
    /// The cluster the pipelines run on (`--engine`; this process when `None`).
    pub cluster: Option<ClusterAddress>,
}

/// What a process's runs read and where they compute: the opened sources and the
/// engine.
#[derive(Debug)]
pub struct Setup {
    /// The departments' data.
    pub sources: sources::Opened,
    /// The engine the rules run on.
    pub engine: Engine,
}

/// Opens `input` and the engine (before the batch is read): DataFusion's operators
/// share `memory_limit` bytes (half the machine when `None`). With a `cluster`, the
/// pipelines run on its executors, which read the lake themselves: a source folder
/// cannot be used, and the scheduler must answer.
pub async fn open(
    input: &SourceInput,
    memory_limit: Option<u64>,
    cluster: Option<&ClusterAddress>,
) -> Result<Setup, Error> {
    if let (Some(c), SourceInput::Folder(dir)) = (cluster, input) {
        return Err(Error::Usage(format!(
            "--engine {} runs the rules on a cluster whose executors read the lake; the source folder {} is read by this machine only: ingest it into a lake (hedui ingest) and give --lake or --config",
            c.url(),
            dir.display()
        )));
    }
    let engine = Engine::open(memory_limit, cluster).await?;
    let sources = sources::open(input).await?;
    Ok(Setup { sources, engine })
}

/// Runs a check.
pub async fn run(opts: &CheckOptions, progress: &Progress) -> Result<CheckRun, Error> {
    // The policy is validated before any data is read.
    let policy = Policy::load(&opts.policy)?;
    progress.step(&format!(
        "policy {}: {} standards",
        opts.policy.display(),
        policy.standards.len()
    ));
    let setup = open(&opts.sources, opts.memory_limit, opts.cluster.as_ref()).await?;
    let batch = applicants::load(&opts.applicants, &policy, opts.as_of)?;
    run_batch(
        batch,
        &policy,
        &setup,
        &opts.sources.label(),
        opts.as_of,
        progress,
    )
    .await
}

/// Verifies an already validated batch against opened sources: the one engine that the
/// command line, reconciliation and the server all run.
pub async fn run_batch(
    batch: Batch,
    policy: &Policy,
    setup: &Setup,
    sources_label: &str,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<CheckRun, Error> {
    // On a cluster, the run's own tables live in a scratch folder of the lake until
    // the run ends, whichever way it ends.
    let scratch = setup.sources.lake().and_then(|l| setup.engine.scratch(l));
    if let Some(s) = &scratch {
        // What runs killed mid-way left (no run lasts a day).
        match s.sweep(chrono::Duration::days(1)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("removed {n} scratch folder(s) of earlier runs"),
            Err(e) => tracing::warn!("{e}"),
        }
    }
    let run = run_in(
        batch,
        policy,
        setup,
        scratch.as_ref(),
        sources_label,
        as_of,
        progress,
    )
    .await;
    if let Some(s) = scratch {
        if let Err(e) = s.remove().await {
            // The run's result stands; the folder is left for the operator.
            tracing::warn!("{e}");
            progress.warn(&format!("集群临时文件未能删除，请手工删除（{e}）"));
        }
    }
    run
}

async fn run_in(
    batch: Batch,
    policy: &Policy,
    setup: &Setup,
    scratch: Option<&Scratch>,
    sources_label: &str,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<CheckRun, Error> {
    let checked_at = chrono::Utc::now();
    announce(&batch, progress);
    let ctx = setup.engine.context()?;
    if let Some(lake) = setup.sources.lake() {
        lake.register_in(&ctx)?;
    }
    // On a cluster the executors read the lake: nothing is narrowed here.
    let narrow = setup.engine.cluster().is_none();
    let mut spill = Spill::start(&batch.households, &std::env::temp_dir())?;
    let mut src = sources::read(&setup.sources, as_of, &batch.households, narrow, progress).await?;
    warn_missing(&src, progress);
    let applicants_label = Path::new(&batch.file)
        .file_name()
        .map_or_else(|| batch.file.clone(), |n| n.to_string_lossy().into_owned());
    let inputs = input_tables(
        &batch.households,
        policy,
        as_of,
        &applicants_label,
        &src.present(),
        &src.statuses(),
        &src.reach(),
    )
    .map_err(|e| Error::Internal(format!("cannot build the input tables: {e}")))?;
    // A few households on the lake (their members' rows read): the pipelines planned
    // once per process run on those rows. Otherwise this run's own session.
    let planned = match src.narrowed {
        true => Some(engine::planned::shared().await?),
        false => None,
    };
    let data = std::mem::take(&mut src.data);
    let mut runner = start(&ctx, setup, scratch, planned, data, inputs, &src, progress).await?;
    progress.step("rules: running");
    spill.set_sources(&src.missing, &src.stale);
    let spill = gather_flags(&mut runner, spill).await?;
    progress.step(&format!("rules: {} flag rows", spill.flag_rows()));
    let spill = each_batch(&runner, HOUSEHOLD_RESULTS, spill, |s, b| s.add_figures(b)).await?;
    progress.step("rules: household figures");
    if let Runner::Session(..) = runner {
        // The views and the results computed once (engine::create_views) have served:
        // only what the evidence reads stays held.
        engine::release_all_but(&ctx, &engine::queries::tables_read())?;
    }
    let spill = gather_evidence(&mut runner, spill).await?;
    progress.step("rules: flags, figures and evidence collected");
    // The departments' rows of this run are no longer needed.
    drop(runner);
    engine::release_all(&ctx)?;
    let answer = Answer::spilled(spill.finish()?);
    let region_labels = region_labels(&batch, policy);
    Ok(CheckRun {
        as_of,
        checked_at,
        policy_file: policy.file.clone(),
        sources: sources_label.to_owned(),
        batch,
        answer,
        tables: src.tables,
        missing_sources: src.missing,
        stale_sources: src.stale,
        problems: src.problems,
        region_labels,
    })
}

/// Says what the batch holds, and which of its columns were ignored.
fn announce(batch: &Batch, progress: &Progress) {
    if !batch.ignored_columns.is_empty() {
        let cols = batch.ignored_columns.join("、");
        progress.warn(&format!(
            "申请名单中以下列无法识别，已忽略：{cols}（columns not recognised and ignored: {}）",
            batch.ignored_columns.join(", ")
        ));
    }
    progress.step(&format!(
        "applicants: {} rows, {} households accepted, {} rejected",
        batch.rows_read,
        batch.households.len(),
        batch.rejected_households.len()
    ));
}

/// Warns of missing and stale sources: no household can then be eligible.
fn warn_missing(src: &Sources, progress: &Progress) {
    if !src.missing.is_empty() {
        progress.warn(&format!(
            "缺少部门数据：{}，任何家庭都不能判为符合条件（missing sources: {}; no household can be eligible）",
            src.missing.join("、"),
            src.missing.join(", ")
        ));
    }
    if !src.stale.is_empty() {
        progress.warn(&format!(
            "部门数据已过期：{}（stale sources: {}; treated as missing）",
            src.stale.join("、"),
            src.stale.join(", ")
        ));
    }
}

/// The runner of this run, its tables registered and its views created: on a cluster
/// (the run's tables written where the executors read them), the planned pipelines fed
/// with a few households' rows, or this run's own session.
#[allow(clippy::too_many_arguments)]
async fn start<'a>(
    ctx: &'a datafusion::prelude::SessionContext,
    setup: &Setup,
    scratch: Option<&'a Scratch>,
    planned: Option<&'a Planned>,
    data: Vec<sources::SourceTable>,
    inputs: Vec<(&'static str, RecordBatch)>,
    src: &Sources,
    progress: &Progress,
) -> Result<Runner<'a>, Error> {
    Ok(match (scratch, planned) {
        // On a cluster: no table held here.
        (Some(scratch), _) => {
            engine::register_sources(ctx, data)?;
            for (name, b) in inputs {
                scratch.register(ctx, name, b.schema(), &[b]).await?;
            }
            scratch.register_empty(ctx).await?;
            engine::create_views(
                ctx,
                engine::FlagsFound::Parquet(scratch.url(engine::FLAGS_FOUND)),
            )
            .await?;
            progress.step(&format!(
                "rules: on the cluster (run tables in {})",
                scratch.rel()
            ));
            Runner::Cluster(ctx, scratch)
        }
        (None, Some(planned)) => {
            let mut rows = std::collections::HashMap::new();
            for t in data {
                if let sources::SourceRows::Memory(b) = t.rows {
                    rows.insert(t.table, b);
                }
            }
            for (name, b) in inputs {
                rows.insert(name.to_owned(), vec![b]);
            }
            Runner::planned(planned, rows, setup.engine.runtime())
        }
        (None, None) => {
            engine::register_sources(ctx, data)?;
            for (name, b) in inputs {
                let schema = b.schema();
                engine::register(ctx, name, schema, vec![b])?;
            }
            engine::register_empty(ctx)?;
            if !src.members_only {
                engine::narrow_to_members(ctx, &src.present()).await?;
                progress.step("sources narrowed to the batch's members");
            }
            let late = engine::create_views(ctx, engine::FlagsFound::Late).await?;
            Runner::Session(ctx, late)
        }
    })
}

/// Gathers the rows of `flag_rows` into `spill` and gives them to the queries that
/// read the flags found. A whole batch: one rule view after the other — the same rows,
/// but the engine's memory is one rule's joins at a time, not all nine side by side
/// (each query runs all its branches at once).
async fn gather_flags(runner: &mut Runner<'_>, mut spill: Spill) -> Result<Spill, Error> {
    let schema = engine::plain_strings(&RecordBatch::new_empty(runner.schema(FLAG_ROWS).await?))
        .map_err(|e| Error::Internal(format!("the flags' schema: {e}")))?
        .schema();
    spill.set_flag_schema(schema.clone());
    let queries: Vec<String> = match runner {
        Runner::Session(..) | Runner::Cluster(..) => engine::rule_views()
            .iter()
            .map(|v| format!("SELECT * FROM {v}"))
            .collect(),
        Runner::Planned { .. } => vec![FLAG_ROWS.to_owned()],
    };
    for q in queries {
        spill = each_batch(runner, &q, spill, |s, b| s.add_flags(b)).await?;
    }
    let (spill, kept) = off_thread(spill, |s| s.flags_found()).await?;
    runner.flags_found(schema, kept).await?;
    if let Runner::Session(..) | Runner::Cluster(..) = runner {
        // The verdicts read the flags back: every one of them, or the run stops (a flag
        // lost would make a household eligible).
        let counted = runner
            .collect(&format!(
                "SELECT COUNT(*) AS n FROM {}",
                engine::FLAGS_FOUND
            ))
            .await?;
        let n = counted.first().filter(|b| b.num_rows() == 1).and_then(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .map(|a| a.value(0))
        });
        if n != i64::try_from(spill.flag_rows()).ok() {
            return Err(Error::Internal(format!(
                "the flags found were not all read back: {} kept, {n:?} read",
                spill.flag_rows()
            )));
        }
    }
    Ok(spill)
}

/// Flag rows whose references one round of the evidence queries looks up (a round is
/// whole chunks, so it may hold one chunk's flags more): the engine holds the distinct
/// references of a round and their hash table, so a large run's evidence is looked up
/// in rounds of consecutive chunks. Each round reads the departments' rows again; on the
/// 10 M province with heavy evidence (6.3 M flags, 6 rounds) the peak was 3.5 GiB, with
/// rounds of 2 M flags 3.8 GiB, in one round 4.6 GiB; a 1 M-person city's 1.1 M flags
/// take one round (docs/PERFORMANCE.md).
const EVIDENCE_FLAGS_PER_ROUND: usize = 1_250_000;

/// [`EVIDENCE_FLAGS_PER_ROUND`], or the tests' `HEDUI_EVIDENCE_ROUND_FLAGS` (at least 1):
/// a small batch looked up in many rounds.
fn evidence_flags_per_round() -> usize {
    crate::fault::positive("HEDUI_EVIDENCE_ROUND_FLAGS", EVIDENCE_FLAGS_PER_ROUND)
}

/// Gathers the records the flags cite into `spill`: every evidence query, over the
/// flags of one round of chunks at a time in a run's own session (the flags on disk,
/// see [`EVIDENCE_FLAGS_PER_ROUND`]), over all of them otherwise. Each household is in
/// one chunk, so the rounds find exactly the records one query over every flag finds.
async fn gather_evidence(runner: &mut Runner<'_>, mut spill: Spill) -> Result<Spill, Error> {
    let rounds = match (&*runner, spill.flag_schema()) {
        (Runner::Session(..), Some(schema)) => {
            Some((schema, spill.flag_groups(evidence_flags_per_round())))
                .filter(|(_, groups)| groups.len() > 1)
        }
        _ => None,
    };
    tracing::debug!(
        rounds = rounds.as_ref().map_or(1, |(_, g)| g.len()),
        "evidence looked up in rounds"
    );
    let Some((schema, groups)) = rounds else {
        return evidence_round(runner, spill).await;
    };
    for flags in groups {
        runner.flags_found(schema.clone(), flags).await?;
        spill = evidence_round(runner, spill).await?;
    }
    // flags_found holds every flag again, as it did before the rounds.
    let (spill, all) = off_thread(spill, |s| s.flags_found()).await?;
    runner.flags_found(schema, all).await?;
    Ok(spill)
}

/// Every evidence query once, over the flags `flags_found` holds now.
async fn evidence_round(runner: &Runner<'_>, mut spill: Spill) -> Result<Spill, Error> {
    for (label, sql, columns) in evidence_queries() {
        let columns: std::sync::Arc<[_]> = columns.into();
        spill = each_batch(runner, &sql, spill, move |s, b| {
            s.add_evidence(&label, &columns, b)
        })
        .await?;
    }
    Ok(spill)
}

/// Runs `sql` and gives each batch it yields to `add` with `spill`, off the async
/// threads (rendering and writing are blocking work).
async fn each_batch<F>(
    runner: &Runner<'_>,
    sql: &str,
    mut spill: Spill,
    add: F,
) -> Result<Spill, Error>
where
    F: Fn(&mut Spill, &RecordBatch) -> Result<(), SpillError> + Send + Sync + 'static,
{
    use futures::StreamExt;
    let add = std::sync::Arc::new(add);
    let mut stream = runner.stream(sql).await?;
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        let add = add.clone();
        spill = off_thread(spill, move |s| add(s, &batch)).await?.0;
    }
    Ok(spill)
}

/// `f` on `spill` on a blocking thread; the spill back with what `f` made.
async fn off_thread<T: Send + 'static>(
    mut spill: Spill,
    f: impl FnOnce(&mut Spill) -> Result<T, SpillError> + Send + 'static,
) -> Result<(Spill, T), Error> {
    tokio::task::spawn_blocking(move || f(&mut spill).map(|t| (spill, t)))
        .await
        .map_err(|e| Error::Internal(format!("keeping the run's results failed: {e}")))?
        .map_err(Error::from)
}

/// How the report names each region code of the batch: `新郑市（410184）`, or
/// `410102（郑州市）` when the standard in force is the prefecture's or province's.
fn region_labels(batch: &Batch, policy: &Policy) -> std::collections::BTreeMap<String, String> {
    batch
        .households
        .iter()
        .filter_map(|h| {
            let st = policy.standards.get(h.standard)?;
            let label = match (st.name.trim(), st.region == h.region_code) {
                ("", _) => h.region_code.clone(),
                (name, true) => format!("{name}（{}）", h.region_code),
                (name, false) => format!("{}（{name}）", h.region_code),
            };
            Some((h.region_code.clone(), label))
        })
        .collect()
}

/// Parses `--as-of`, defaulting to today (local time).
pub fn as_of(arg: Option<&str>) -> Result<NaiveDate, Error> {
    match arg {
        None => Ok(chrono::Local::now().date_naive()),
        Some(s) => hedui_connectors::validate::parse_date(s.trim()).ok_or_else(|| {
            Error::Usage(format!(
                "invalid --as-of {s:?}: expected a calendar date YYYY-MM-DD"
            ))
        }),
    }
}

/// The label used for a path in outputs.
pub fn label(p: &Path) -> String {
    p.display().to_string()
}
