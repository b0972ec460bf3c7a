//! The one error type at the edge of the library, and its exit status (SPEC §7:
//! 2 for unusable input or arguments, 1 for internal faults).

use crate::applicants::ApplicantsError;
use crate::engine::EngineError;
use crate::policy::PolicyError;
use hedui_connectors::ConnectorError;

/// Anything that stops a command.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad arguments.
    #[error("{0}")]
    Usage(String),
    /// Bad policy file.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Unreadable applicant batch.
    #[error(transparent)]
    Applicants(#[from] ApplicantsError),
    /// Unusable source delivery.
    #[error(transparent)]
    Source(#[from] ConnectorError),
    /// Engine failure.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// Bad deployment config.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The lake failed.
    #[error(transparent)]
    Lake(#[from] crate::lake::LakeError),
    /// Cannot write outputs.
    #[error("cannot write {path}: {source}")]
    Output {
        /// the file
        path: String,
        /// the cause
        source: std::io::Error,
    },
    /// Any other internal fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Exit status for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            // A department that failed (after its retries) is not bad input.
            Error::Source(ConnectorError::Arrow { .. } | ConnectorError::Http { .. }) => 1,
            Error::Usage(_)
            | Error::Policy(_)
            | Error::Applicants(_)
            | Error::Source(_)
            | Error::Config(_) => 2,
            Error::Engine(_) | Error::Output { .. } | Error::Internal(_) | Error::Lake(_) => 1,
        }
    }
}
