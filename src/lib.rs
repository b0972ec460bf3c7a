//! hedui (核对): household economic-status verification. Department records become
//! canonical Arrow tables, SQL pipelines decide per household, outputs carry evidence.
//!
//! # Layout
//! - [`cli`]: command-line arguments; [`cmd`]: one module per subcommand.
//! - [`config`]: the deployment config (lake, state, sources with mappings; SPEC §9).
//! - [`lake`]: immutable source snapshots with atomically committed manifests (SPEC §9).
//! - [`policy`]: policy TOML → standards and parameters per region (SPEC §6).
//! - [`applicants`]: batch files → households or rejections (SPEC §3).
//! - [`inputs`]: households, members and per-household parameters as Arrow tables.
//! - [`engine`]: the DataFusion session and the `pipelines/*.sql` views (SPEC §5).
//! - [`evidence`]: flags → the source records they rest on.
//! - [`sources`]: the departments' data of a run: a source folder or the lake.
//! - [`lookup`]: lookup-mode sources asked for the batch's members at check time.
//! - [`stage`]: `files` sources on object-store prefixes, copied locally to be read.
//! - [`check`]: one verification run end to end.
//! - [`changes`]: what changed between two reconciliation runs (`changes.jsonl`).
//! - [`state`]: the embedded state database (SQLite): reconciliation runs, audit log.
//! - [`server`]: `hedui serve`, the HTTPS API on the same engine.
//! - [`output`]: results.jsonl, rejected.jsonl, summary.json, data_quality.jsonl, report.html.
//! - [`generate`]: a deterministic synthetic city for demos, tests and benchmarks.
//! - [`progress`], [`error`]: progress lines and the error type with exit codes.
//!
//! Canonical schemas, ID numbers and source loading live in the `hedui-connectors` crate.

pub mod applicants;
pub mod changes;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod config;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod generate;
pub mod inputs;
pub mod lake;
pub mod lookup;
pub mod memory;
pub mod output;
pub mod planned;
pub mod policy;
pub mod progress;
pub mod reconcile;
pub mod server;
pub mod sources;
pub mod stage;
pub mod state;

use cli::{Cli, Command};
use error::Error;
use progress::Progress;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
    let progress = Progress::new(cli.quiet);
    runtime.block_on(async {
        match &cli.command {
            Command::Check(args) => {
                let summary = cmd::check::execute(args, &progress).await?;
                if !cli.quiet {
                    println!("{}", cmd::check::describe(&summary, &args.out));
                }
                Ok(())
            }
            Command::Generate(args) => cmd::generate::execute(args, &progress, cli.quiet),
            Command::Demo(args) => cmd::demo::execute(args, &progress, cli.quiet).await,
            Command::Ingest(args) => {
                let done = cmd::ingest::execute(args, &progress).await?;
                if !cli.quiet {
                    println!("{}", done.report);
                }
                done.failure.map_or(Ok(()), Err)
            }
            Command::Serve(args) => cmd::serve::execute(args).await,
            Command::Audit(args) => match &args.command {
                cli::AuditCommand::Verify(v) => {
                    println!("{}", cmd::audit::verify(v)?);
                    Ok(())
                }
            },
            Command::Reconcile(args) => {
                let done = cmd::reconcile::execute(args, &progress).await?;
                if !cli.quiet {
                    println!("{}", cmd::reconcile::describe(&done, &args.out));
                }
                Ok(())
            }
            Command::Sources(args) => {
                let today = cmd::as_of(args.as_of.as_deref())?;
                println!("{}", cmd::sources::execute(args, today).await?);
                Ok(())
            }
        }
    })
}
