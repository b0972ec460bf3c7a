//! `hedui demo`: generate a small city into a local folder, check it, print the summary
//! and the report's path — the whole job in one command.

use crate::check::{run, CheckOptions};
use crate::cli::{DemoArgs, SourceFormat};
use crate::error::Error;
use crate::generate::{generate, CitySpec};
use crate::progress::Progress;
use crate::publish::{publish, Record, Tail};
use crate::sources::SourceInput;

/// Runs `demo`.
pub async fn execute(args: &DemoArgs, progress: &Progress, quiet: bool) -> Result<(), Error> {
    let as_of = chrono::Local::now().date_naive();
    let spec = CitySpec {
        people: args.people,
        households: args.households,
        format: SourceFormat::Csv,
        seed: 2026,
        as_of,
    };
    let city_dir = args.dir.join("city");
    progress.step(&format!(
        "generating a city of {} people into {}",
        spec.people,
        city_dir.display()
    ));
    let city = generate(&spec, &city_dir).map_err(|source| Error::Output {
        path: city_dir.display().to_string(),
        source,
    })?;
    let opts = CheckOptions {
        applicants: city.applicants,
        sources: SourceInput::Folder(city.sources.clone()),
        policy: city.policy,
        as_of,
        memory_limit: None,
        cluster: None,
    };
    let out = args.dir.join("out");
    let result = run(&opts, progress).await?;
    // The demo's run ends like any other (no state folder: not audited).
    let tail = Tail::new(Some(&out), "demo", "check");
    let summary = publish(&result, &tail, Record::Nowhere, progress)?
        .summary
        .ok_or_else(|| Error::Internal("a check with an output folder wrote no summary".into()))?;
    if !quiet {
        let json = serde_json::to_string_pretty(&summary)
            .map_err(|e| Error::Internal(format!("cannot print the summary: {e}")))?;
        println!("{json}");
        println!("{}", super::check::describe(&summary, &out));
        println!(
            "\nThe city is in {}; try:\n  hedui check --applicants {} --sources {} --policy {} --out {}",
            city_dir.display(),
            opts.applicants.display(),
            city.sources.display(),
            opts.policy.display(),
            out.display()
        );
    }
    Ok(())
}
