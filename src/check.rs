//! One verification run (SPEC §7 `check`): policy → applicants → sources → rules →
//! results with evidence. Output files are written by [`crate::output`].

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Date32Type};
use hedui_connectors::schema;
use hedui_connectors::validate::days_to_date;
use hedui_connectors::{Connector, FilesConnector, LoadOptions, LoadedTable, Problem};

use crate::applicants::{self, Batch};
use crate::engine::{self, collect};
use crate::error::Error;
use crate::evidence;
use crate::inputs::input_tables;
use crate::output::results::{assemble, HouseholdResult};
use crate::policy::Policy;
use crate::progress::Progress;

/// What a check reads.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// Applicant batch file.
    pub applicants: PathBuf,
    /// Source folder in the SPEC §2 layout.
    pub sources: PathBuf,
    /// Policy TOML.
    pub policy: PathBuf,
    /// Check date D.
    pub as_of: NaiveDate,
}

/// What one canonical table contributed to the run.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableStatus {
    /// Canonical table.
    pub table: String,
    /// Its source.
    pub source: String,
    /// Whether the source delivered it.
    pub present: bool,
    /// Files read.
    pub files: Vec<String>,
    /// Records read (good and malformed).
    pub rows_read: u64,
    /// Valid records used by the rules.
    pub rows: usize,
    /// Malformed records kept out.
    pub problems: usize,
    /// Latest date in the table (as_of, period or registered_on), if any.
    pub latest_as_of: Option<String>,
}

/// A finished run, ready to be written.
#[derive(Debug)]
pub struct CheckRun {
    /// Check date D.
    pub as_of: NaiveDate,
    /// The policy file used.
    pub policy_file: String,
    /// The source folder used.
    pub sources: String,
    /// The validated batch.
    pub batch: Batch,
    /// One result per accepted household, sorted by household_id.
    pub results: Vec<HouseholdResult>,
    /// Per-table status, in SPEC §2 order.
    pub tables: Vec<TableStatus>,
    /// Sources missing, sorted.
    pub missing_sources: Vec<String>,
    /// Malformed source records.
    pub problems: Vec<Problem>,
}

fn latest_date(t: &LoadedTable) -> Option<String> {
    let col = ["as_of", "period", "registered_on"]
        .into_iter()
        .find(|c| t.schema.column(c).is_some())?;
    let month = col == "period";
    let mut best: Option<i32> = None;
    for b in &t.batches {
        let idx = b.schema().index_of(col).ok()?;
        let a = b.column(idx);
        if a.data_type() != &DataType::Date32 {
            return None;
        }
        let a = a.as_primitive::<Date32Type>();
        for v in a.iter().flatten() {
            best = Some(best.map_or(v, |b| b.max(v)));
        }
    }
    let d = days_to_date(best?)?;
    Some(if month {
        d.format("%Y-%m").to_string()
    } else {
        d.to_string()
    })
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
    let connector = FilesConnector::new(&opts.sources)?;
    let batch = applicants::load(&opts.applicants, &policy, opts.as_of)?;
    progress.step(&format!(
        "applicants: {} rows, {} households accepted, {} rejected",
        batch.rows_read,
        batch.households.len(),
        batch.rejected_households.len()
    ));
    let load_options = LoadOptions {
        reference_date: opts.as_of,
    };
    let mut loaded: Vec<(&'static schema::TableSchema, Option<LoadedTable>)> = Vec::new();
    for t in schema::tables() {
        let table = connector.load(t, load_options).await?;
        match &table {
            Some(lt) => progress.step(&format!(
                "{}: {} records, {} malformed",
                t.table,
                lt.rows_read,
                lt.problems.len()
            )),
            None => progress.step(&format!(
                "{}: absent — source {} missing",
                t.table, t.source
            )),
        }
        loaded.push((t, table));
    }
    let mut missing_sources: Vec<String> = loaded
        .iter()
        .filter(|(_, l)| l.is_none())
        .map(|(t, _)| t.source.clone())
        .collect();
    missing_sources.sort();
    missing_sources.dedup();
    let source_status: Vec<(String, String)> = schema::sources()
        .into_iter()
        .map(|(s, _)| {
            let status = if missing_sources.iter().any(|m| m == s) {
                "missing"
            } else {
                "present"
            };
            (s.to_owned(), status.to_owned())
        })
        .collect();
    let present: Vec<String> = loaded
        .iter()
        .filter(|(_, l)| l.is_some())
        .map(|(t, _)| t.table.clone())
        .collect();

    let ctx = engine::new_context();
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    for (t, l) in loaded {
        match l {
            Some(lt) => {
                tables.push(TableStatus {
                    table: t.table.clone(),
                    source: t.source.clone(),
                    present: true,
                    files: lt.files.clone(),
                    rows_read: lt.rows_read,
                    rows: lt.rows(),
                    problems: lt.problems.len(),
                    latest_as_of: latest_date(&lt),
                });
                problems.extend(lt.problems);
                engine::register(&ctx, &t.table, t.arrow_schema(), lt.batches)?;
            }
            None => tables.push(TableStatus {
                table: t.table.clone(),
                source: t.source.clone(),
                present: false,
                files: vec![],
                rows_read: 0,
                rows: 0,
                problems: 0,
                latest_as_of: None,
            }),
        }
    }
    let applicants_label = opts.applicants.file_name().map_or_else(
        || opts.applicants.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let inputs = input_tables(
        &batch.households,
        &policy,
        opts.as_of,
        &applicants_label,
        &present,
        &source_status,
    )
    .map_err(|e| Error::Internal(format!("cannot build the input tables: {e}")))?;
    for (name, b) in inputs {
        let schema = b.schema();
        engine::register(&ctx, name, schema, vec![b])?;
    }
    engine::register_empty(&ctx)?;
    engine::create_views(&ctx).await?;
    progress.step("rules: running");
    let flags = collect(&ctx, "SELECT * FROM flag_rows").await?;
    progress.step(&format!(
        "rules: {} flag rows",
        flags.iter().map(RecordBatch::num_rows).sum::<usize>()
    ));
    let flag_schema = match flags.first() {
        Some(b) => b.schema(),
        None => ctx
            .table("flag_rows")
            .await
            .map_err(|e| Error::Internal(format!("cannot read flag_rows: {e}")))?
            .schema()
            .inner()
            .clone(),
    };
    engine::register(&ctx, "flags_found", flag_schema, flags.clone())?;
    let figures = collect(&ctx, "SELECT * FROM household_results").await?;
    progress.step("rules: household figures");
    let evidence = evidence::fetch(&ctx).await?;
    progress.step("rules: flags, figures and evidence collected");
    let results = assemble(
        &batch.households,
        &figures,
        &flags,
        &evidence,
        &missing_sources,
        &[],
    );
    progress.step("results assembled");
    Ok(CheckRun {
        as_of: opts.as_of,
        policy_file: policy.file.clone(),
        sources: opts.sources.display().to_string(),
        batch,
        results,
        tables,
        missing_sources,
        problems,
    })
}

/// The label used for a path in outputs.
pub fn label(p: &Path) -> String {
    p.display().to_string()
}
