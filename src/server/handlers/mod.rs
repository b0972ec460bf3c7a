//! One file per group of routes.

pub mod checks;
pub mod health;
