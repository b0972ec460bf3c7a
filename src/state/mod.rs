//! The embedded state database (SQLite through rusqlite, bundled).
//!
//! - [`schema`]: its tables, in one place.
//! - [`db`]: an open database, its errors, the one IMMEDIATE write transaction.
//! - [`audit`]: the hash-chained audit log; [`audit_search`]: a person found in it.
//! - [`accounts`]: staff accounts and their sessions; [`credentials`]: what names,
//!   roles, regions and passwords may be, and passwords hashed with Argon2id.
//! - [`jobs`]: the server's jobs (batches, scheduled reconciliations).
//! - [`people`]: the people each token had checked a day (its daily bound).
//! - [`complete`]: the one transaction every run ends in (audit, run, job).
//! - [`handled`]: a run's changes ranked as a work list, and marked handled.
//! - [`recipients`]: the recipients list kept in the hub, replaced whole, its history.
//! - [`runs`]: reconciliation runs and what each completed run found per household, so
//!   the next run can say what changed.

pub mod accounts;
pub mod audit;
pub mod audit_search;
pub mod backup;
pub mod complete;
pub mod credentials;
pub mod db;
pub mod handled;
pub mod jobs;
pub mod people;
pub mod recipients;
pub mod runs;
pub mod schema;

pub use complete::{Completed, Completion};
pub use db::{AuditFiles, State, StateError, DB_FILE};
pub use runs::{Run, RunDone};
