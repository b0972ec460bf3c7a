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
            Error::Source(
                ConnectorError::Arrow { .. }
                | ConnectorError::Http { .. }
                | ConnectorError::Store { .. }
                | ConnectorError::CannotResume { .. },
            ) => 1,
            // A read-only command pointed at a place without a lake: the user's mistake.
            Error::Lake(
                crate::lake::LakeError::NotFound { .. } | crate::lake::LakeError::Refused { .. },
            ) => 2,
            Error::Usage(_)
            | Error::Policy(_)
            | Error::Applicants(_)
            | Error::Source(_)
            | Error::Config(_) => 2,
            Error::Engine(_) | Error::Output { .. } | Error::Internal(_) | Error::Lake(_) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A department that failed (HTTPS or object store) is exit 1; credentials or
    /// certificates that cannot be used are bad configuration, exit 2.
    #[test]
    fn department_failures_are_not_bad_input() {
        let http = Error::Source(ConnectorError::Http {
            url: "https://hr".into(),
            table: "hr_income".into(),
            message: "HTTP 503".into(),
        });
        let store = Error::Source(ConnectorError::Store {
            url: "s3://incoming/hr/".into(),
            message: "connection refused".into(),
        });
        let setup = Error::Source(ConnectorError::HttpSetup {
            url: "https://hr".into(),
            message: "the bearer token variable X is not set".into(),
        });
        assert_eq!(
            (http.exit_code(), store.exit_code(), setup.exit_code()),
            (1, 1, 2)
        );
    }
}
