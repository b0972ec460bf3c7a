//! Applicant batches (SPEC §3): a file of household members → accepted households, or
//! rejections naming household, row, field, reason and a message a clerk understands.
//!
//! - [`limits`]: what a batch file may hold at most.
//! - [`model`]: the columns, households, members, rejections and the validated batch.
//! - [`read`]: CSV (UTF-8 or GBK), XLSX and JSON Lines files → raw rows, within limits;
//!   [`xlsx`]: the workbook's first sheet, its zip checked first, read cell by cell.
//! - [`validate`]: raw rows → households or rejections.

pub mod limits;
pub mod model;
pub mod read;
pub mod validate;
pub mod xlsx;

use std::path::Path;

use chrono::NaiveDate;

use crate::policy::Policy;

pub use model::{
    ApplicantsError, Batch, BatchFormat, Column, Household, Member, Reason, RejectedHousehold,
    Rejection, Relation,
};
pub use read::{read_batch, read_batch_within, Limits, RawBatch, RawRow};
pub use validate::{validate, validate_within};

/// Reads and validates a batch file against the policy on check date `as_of`.
pub fn load(path: &Path, policy: &Policy, as_of: NaiveDate) -> Result<Batch, ApplicantsError> {
    let bytes = std::fs::read(path).map_err(|source| ApplicantsError::Io {
        path: path.display().to_string(),
        source,
    })?;
    batch_of(
        &path.display().to_string(),
        &bytes,
        &Limits::default(),
        policy,
        as_of,
    )
}

/// Reads the batch file `file` (its name says its format when its bytes do not) from
/// `bytes` within `limits`, and validates it: the one way a file becomes a batch.
pub fn batch_of(
    file: &str,
    bytes: &[u8],
    limits: &Limits,
    policy: &Policy,
    as_of: NaiveDate,
) -> Result<Batch, ApplicantsError> {
    let raw = read_batch_within(Path::new(file), bytes, limits)?;
    Ok(validate_within(
        file,
        raw,
        policy,
        as_of,
        limits.max_members,
    ))
}
