//! One file per subcommand: arguments in, files and a printed summary out.

pub mod audit;
pub mod check;
pub mod demo;
pub mod generate;
pub mod ingest;
pub mod reconcile;
pub mod serve;
pub mod sources;

use chrono::NaiveDate;

use crate::error::Error;

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
