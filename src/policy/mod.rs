//! The policy file (SPEC §6): defaults, dated `[[standard]]` entries per region with
//! overrides, and the region lookup that turns a household into its rule parameters.
//!
//! - [`model`]: aid and area types, parameters, standards, the region lookup.
//! - [`parse`]: the TOML file read and checked.

pub mod model;
pub mod parse;

#[cfg(test)]
mod tests;

pub use model::{
    param_keys, AidType, AreaType, Given, NoPolicy, ParamColumn, Params, Policy, PolicyError,
    Standard, FACTOR_SCALE, PARAM_COLUMNS, SPEC_DEFAULTS,
};
