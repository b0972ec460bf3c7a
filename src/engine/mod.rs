//! The engine: the rules of `pipelines/` run by DataFusion over a run's tables, the
//! departments' canonical tables and the batch's input tables (SPEC §5). Every caller
//! (the command line, reconciliation, the server, the schedule) runs the same SQL
//! through one [`Runner`], whichever backend executes it.
//!
//! # Layout
//! - [`error`]: the engine's errors ([`EngineError`], [`ClusterError`]).
//! - [`memory`]: the memory pool the operators share (`--memory-limit`), spilling beyond.
//! - [`inputs`]: households, members and per-household parameters as Arrow tables.
//! - [`session`]: a run's DataFusion session: settings, tables registered, narrowed to
//!   the batch's members, released; queries collected.
//! - [`queries`]: the queries a run asks (flags, household figures, evidence), named once.
//! - [`views`]: `pipelines/*.sql` created as views, and the table of the flags found.
//! - [`planned`]: the pipelines planned once per process for small checks (the API).
//! - [`cluster`]: the Apache Ballista backend (`--engine df://…`).
//! - [`runner`]: [`Runner`], where a run's queries execute.
//! - [`backend`]: [`Engine`], the runtime and the cluster of a process's runs.
//!
//! # Adding a backend
//! 1. A module that builds what the backend needs to run a query and a [`Runner`]
//!    variant holding it; [`Runner::collect`] runs SQL text of [`queries`] or of a rule
//!    view, [`Runner::add`] takes a table of the run (the flags found), [`Runner::schema`]
//!    answers a query's schema when it returns no row.
//! 2. Register the run's tables with the schemas of [`session::all_tables`] (absent
//!    sources as empty tables) and create the views with [`views::create_views`], with a
//!    [`views::FlagsFound`] that says how the verdicts read the flags — never a second
//!    copy of a rule.
//! 3. Only standard SQL functions: a stock executor must run every pipeline.
//! 4. Prove it equal to the local engine household by household (as `tests/cluster.rs`
//!    does for Ballista).

pub mod backend;
pub mod cluster;
pub mod error;
pub mod inputs;
pub mod memory;
pub mod planned;
pub mod queries;
pub mod runner;
pub mod session;
pub mod views;

pub use backend::Engine;
pub use error::{ClusterError, EngineError};
pub use queries::FLAGS_FOUND;
pub use runner::Runner;
pub use session::{
    collect, narrow_to_members, new_context, new_context_in, plain_strings, register,
    register_empty, register_sources, release_all, release_all_but, session_config,
};
pub use views::{create_views, empty_session, rule_views, FlagsFound, LateTable};
