//! One verification run (SPEC §7 `check`): policy → applicants → sources → rules →
//! results with evidence. Output files are written by [`crate::output`].

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use datafusion::arrow::array::RecordBatch;
use hedui_connectors::Problem;

use crate::applicants::{self, Batch};
use crate::engine;
use crate::error::Error;
use crate::evidence;
use crate::inputs::input_tables;
use crate::output::results::{assemble, HouseholdResult};
use crate::policy::Policy;
use crate::progress::Progress;
use crate::sources::{self, SourceInput, TableStatus};

/// The query of every flag, with its evidence references.
pub const FLAG_ROWS: &str = "SELECT * FROM flag_rows";

/// The query of each household's figures and verdict.
pub const HOUSEHOLD_RESULTS: &str = "SELECT * FROM household_results";

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
    pub cluster: Option<crate::cluster::Cluster>,
}

/// A finished run, ready to be written.
#[derive(Debug)]
pub struct CheckRun {
    /// Check date D.
    pub as_of: NaiveDate,
    /// When the check ran (this host's clock).
    pub checked_at: chrono::DateTime<chrono::Utc>,
    /// The policy file used.
    pub policy_file: String,
    /// The departments' data used (folder, or lake URL and time).
    pub sources: String,
    /// The validated batch.
    pub batch: Batch,
    /// One result per accepted household, sorted by household_id.
    pub results: Vec<HouseholdResult>,
    /// Per-table status, in SPEC §2 order.
    pub tables: Vec<TableStatus>,
    /// Sources missing, sorted.
    pub missing_sources: Vec<String>,
    /// Sources stale (lake reads), sorted.
    pub stale_sources: Vec<String>,
    /// Malformed source records.
    pub problems: Vec<Problem>,
    /// How the report names each region code of the batch: `新郑市（410184）`, or
    /// `410102（郑州市）` when the standard in force is the prefecture's or province's.
    pub region_labels: std::collections::BTreeMap<String, String>,
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
    let opened = sources::open(&opts.sources, opts.memory_limit, opts.cluster.as_ref()).await?;
    let batch = applicants::load(&opts.applicants, &policy, opts.as_of)?;
    run_batch(
        batch,
        &policy,
        &opened,
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
    opened: &sources::Opened,
    sources_label: &str,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<CheckRun, Error> {
    // On a cluster, the run's own tables live in a scratch folder of the lake until
    // the run ends, whichever way it ends.
    let scratch = opened.scratch();
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
        opened,
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
    opened: &sources::Opened,
    scratch: Option<&crate::cluster::Scratch>,
    sources_label: &str,
    as_of: NaiveDate,
    progress: &Progress,
) -> Result<CheckRun, Error> {
    let checked_at = chrono::Utc::now();
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
    let ctx = opened.new_context()?;
    let src = sources::register(opened, &ctx, as_of, &batch.households, progress).await?;
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
    )
    .map_err(|e| Error::Internal(format!("cannot build the input tables: {e}")))?;
    // A few households on the lake (their members' rows read): the pipelines planned
    // once per process run on those rows. Otherwise this run's own session.
    let planned = match (&src.narrowed, opened.runtime()) {
        (Some(_), Some(rt)) => Some((crate::planned::shared().await?, rt)),
        _ => None,
    };
    let mut runner = match (scratch, planned, src.narrowed.clone()) {
        // On a cluster: the run's tables written where the executors read them; no
        // table held here.
        (Some(scratch), _, _) => {
            for (name, b) in inputs {
                scratch.register(&ctx, name, b.schema(), &[b]).await?;
            }
            scratch.register_empty(&ctx).await?;
            engine::create_views(
                &ctx,
                engine::FlagsFound::Parquet(scratch.url(engine::FLAGS_FOUND)),
            )
            .await?;
            progress.step(&format!(
                "rules: on the cluster (run tables in {})",
                scratch.rel()
            ));
            engine::Runner::Cluster(&ctx, scratch)
        }
        (None, Some((planned, runtime)), Some(mut rows)) => {
            for (name, b) in inputs {
                rows.insert(name.to_owned(), vec![b]);
            }
            engine::Runner::planned(planned, rows, runtime)
        }
        _ => {
            for (name, b) in inputs {
                let schema = b.schema();
                engine::register(&ctx, name, schema, vec![b])?;
            }
            engine::register_empty(&ctx)?;
            if !src.members_only {
                engine::narrow_to_members(&ctx, &src.present()).await?;
                progress.step("sources narrowed to the batch's members");
            }
            let late = engine::create_views(&ctx, engine::FlagsFound::Late).await?;
            engine::Runner::Session(&ctx, late)
        }
    };
    progress.step("rules: running");
    let flags = match runner {
        // A whole batch: the rows of flag_rows, one rule view after the other — the
        // same rows, but the engine's memory is one rule's joins at a time, not all
        // nine side by side (each query runs all its branches at once).
        engine::Runner::Session(..) | engine::Runner::Cluster(..) => {
            let mut all = Vec::new();
            for view in engine::rule_views() {
                all.extend(runner.collect(&format!("SELECT * FROM {view}")).await?);
            }
            all
        }
        engine::Runner::Planned { .. } => runner.collect(FLAG_ROWS).await?,
    };
    progress.step(&format!(
        "rules: {} flag rows",
        flags.iter().map(RecordBatch::num_rows).sum::<usize>()
    ));
    tracing::debug!(
        bytes = flags
            .iter()
            .map(RecordBatch::get_array_memory_size)
            .sum::<usize>(),
        "flag rows held"
    );
    let flag_schema = match flags.first() {
        Some(b) => b.schema(),
        None => runner.schema(FLAG_ROWS).await?,
    };
    runner
        .add(engine::FLAGS_FOUND, flag_schema, flags.clone())
        .await?;
    let figures = runner.collect(HOUSEHOLD_RESULTS).await?;
    progress.step("rules: household figures");
    if let engine::Runner::Session(..) = runner {
        // The views and the results computed once (engine::create_views) have served:
        // only what the evidence reads stays held.
        engine::release_all_but(&ctx, &evidence::tables_read())?;
    }
    let evidence = evidence::fetch(&runner).await?;
    progress.step("rules: flags, figures and evidence collected");
    // The departments' rows of this run are no longer needed: their memory is the
    // results' now.
    drop(runner);
    engine::release_all(&ctx)?;
    let results = assemble(
        &batch.households,
        &figures,
        &flags,
        &evidence,
        &src.missing,
        &src.stale,
    );
    progress.step("results assembled");
    let region_labels = batch
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
        .collect();
    Ok(CheckRun {
        as_of,
        checked_at,
        policy_file: policy.file.clone(),
        sources: sources_label.to_owned(),
        batch,
        results,
        tables: src.tables,
        missing_sources: src.missing,
        stale_sources: src.stale,
        problems: src.problems,
        region_labels,
    })
}

/// The label used for a path in outputs.
pub fn label(p: &Path) -> String {
    p.display().to_string()
}
