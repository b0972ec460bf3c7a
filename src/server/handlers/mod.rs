//! One file per group of routes.

pub mod audit;
pub mod checks;
pub mod health;
pub mod reconciliations;
