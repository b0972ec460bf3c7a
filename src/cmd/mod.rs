//! One file per subcommand: arguments in, files and a printed summary out ([`signal`]:
//! the interruption they share); [`run`]
//! dispatches a parsed command line to them.

pub mod audit;
pub mod backup;
pub mod check;
pub mod data;
pub mod demo;
pub mod generate;
pub mod ingest;
pub mod reconcile;
pub mod serve;
pub mod signal;
pub mod sources;
pub mod user;

use crate::cli::{Cli, Command};
use crate::error::Error;
use crate::progress::Progress;
use signal::interruptible;

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the runtime: {e}")))?;
    let progress = Progress::new(cli.quiet);
    let result = runtime.block_on(async {
        match &cli.command {
            Command::Check(args) => {
                let summary = interruptible(check::execute(args, &progress)).await?;
                if !cli.quiet {
                    println!("{}", check::describe(&summary, &args.out));
                }
                Ok(())
            }
            Command::Generate(args) => generate::execute(args, &progress, cli.quiet),
            Command::Demo(args) => demo::execute(args, &progress, cli.quiet).await,
            Command::Ingest(args) => {
                let done = ingest::execute(args, &progress).await?;
                if !cli.quiet {
                    println!("{}", done.report);
                }
                done.failure.map_or(Ok(()), Err)
            }
            Command::Serve(args) => serve::execute(args).await,
            Command::Audit(args) => match &args.command {
                crate::cli::AuditCommand::Verify(v) => {
                    println!("{}", audit::verify(v)?);
                    Ok(())
                }
            },
            Command::Reconcile(args) => {
                let done = reconcile::execute(args, &progress).await?;
                if !cli.quiet {
                    println!("{}", reconcile::describe(&done, &args.out));
                }
                Ok(())
            }
            Command::Backup(args) => {
                println!("{}", interruptible(backup::backup(args)).await?);
                Ok(())
            }
            Command::Restore(args) => {
                println!("{}", interruptible(backup::restore(args)).await?);
                Ok(())
            }
            Command::User(args) => {
                println!("{}", user::execute(args)?);
                Ok(())
            }
            Command::Sources(args) => {
                let today = crate::check::as_of(args.as_of.as_deref())?;
                println!("{}", sources::execute(args, today).await?);
                Ok(())
            }
        }
    });
    if matches!(result, Err(Error::Interrupted)) {
        // What the dropped work had on blocking threads is not waited for.
        runtime.shutdown_background();
    }
    result
}
