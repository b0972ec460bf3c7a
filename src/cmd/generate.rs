//! `hedui generate`: write a synthetic city into `--out`.

use crate::cli::GenerateArgs;
use crate::error::Error;
use crate::generate::{generate, CitySpec};
use crate::progress::Progress;

/// Runs `generate`.
pub fn execute(args: &GenerateArgs, progress: &Progress, quiet: bool) -> Result<(), Error> {
    if args.households == 0 || args.people == 0 {
        return Err(Error::Usage(
            "--people and --households must be at least 1".into(),
        ));
    }
    let spec = CitySpec {
        people: args.people,
        households: args.households,
        format: args.format,
        seed: args.seed,
        as_of: crate::check::as_of(args.as_of.as_deref())?,
    };
    progress.step(&format!(
        "generating {} people, {} applicant households",
        spec.people, spec.households
    ));
    let city = generate(&spec, &args.out).map_err(|source| Error::Output {
        path: args.out.display().to_string(),
        source,
    })?;
    if !quiet {
        println!(
            "generated {} people and {} applicant households in {}",
            city.people,
            city.households,
            args.out.display()
        );
        for (t, n) in &city.rows {
            println!("  {t}: {n} rows");
        }
        println!(
            "applicants: {}\npolicy: {}",
            city.applicants.display(),
            city.policy.display()
        );
    }
    Ok(())
}
