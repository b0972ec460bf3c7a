//! hedui (核对): household economic-status verification. Department records become
//! canonical Arrow tables, SQL pipelines decide per household, outputs carry evidence.
//!
//! # Layout
//! Data flows down this list; a module imports only the modules above it
//! (`tests/layout.rs` holds the code to it).
//! - [`progress`]: progress lines and warnings on stderr.
//! - [`fault`]: the crash tests' one fault-injection hook.
//! - [`config`]: the deployment config (lake, state, sources with mappings, engine;
//!   SPEC §9), documented serde structs.
//! - [`policy`]: policy TOML → standards and parameters per region (SPEC §6).
//! - [`applicants`]: batch files and API JSON → households or rejections (SPEC §3).
//! - [`lake`]: immutable source snapshots with atomically committed manifests (SPEC §9).
//! - [`ingest`]: the departments' deliveries into the lake: pulls, staging of
//!   object-store folders, lookups at check time.
//! - [`sources`]: the departments' data of one run: a source folder or the lake, with
//!   each table's status, missing and stale sources.
//! - [`engine`]: DataFusion running `pipelines/*.sql` (SPEC §5): session, views, planned
//!   pipelines, the Ballista backend, memory, input tables, queries.
//! - [`verdict`]: results, flags, evidence, the one list of rules, a finished run.
//! - [`changes`]: what changed between two runs (`changes.jsonl`).
//! - [`state`]: the embedded state database (SQLite): runs, jobs, the audit chain.
//! - [`output`]: results.jsonl/.parquet, rejected, summary, data_quality, report.html.
//! - [`error`]: the crate's error, its Chinese headline and exit status.
//! - [`check`]: one verification run end to end → a [`verdict::CheckRun`].
//! - [`publish`]: the one tail every run ends in: outputs written atomically, then its
//!   audit entry and the completion of its run and job in one transaction.
//! - [`reconcile`]: a reconciliation run against the previous one.
//! - [`server`]: `hedui serve`, the HTTPS API on the same engine, its jobs and schedule.
//! - [`cli`]: command-line arguments.
//! - [`generate`]: a deterministic synthetic city for demos, tests and benchmarks.
//! - [`cmd`]: one module per subcommand, and [`run`] dispatching a command line.
//!
//! Canonical schemas, ID numbers and source loading live in the `hedui-connectors` crate.

pub mod applicants;
pub mod changes;
pub mod check;
pub mod cli;
pub mod cmd;
pub mod config;
pub mod engine;
pub mod error;
pub mod fault;
pub mod generate;
pub mod ingest;
pub mod lake;
pub mod output;
pub mod policy;
pub mod progress;
pub mod publish;
pub mod reconcile;
pub mod server;
pub mod sources;
pub mod state;
pub mod verdict;

pub use cmd::run;
