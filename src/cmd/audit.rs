//! `hedui audit verify`: recompute the audit chain of a state database and name the
//! first broken entry (SPEC §7, §8).

use crate::cli::AuditVerifyArgs;
use crate::error::Error;
use crate::state::State;

/// Verifies the chain; the line to print when it is whole.
pub fn verify(args: &AuditVerifyArgs) -> Result<String, Error> {
    let dir = match (&args.config, &args.state) {
        (Some(file), _) => crate::config::Deployment::load(file)?.state_path,
        (None, Some(dir)) => dir.clone(),
        (None, None) => return Err(Error::Usage("give --config FILE or --state DIR".into())),
    };
    let state = State::open_existing(&dir)?;
    let path = state.path().display().to_string();
    match state.verify_audit()? {
        Ok(n) => {
            let last = state
                .audit_entries()?
                .last()
                .map(|e| format!("; last entry {} {}", e.seq, e.hash))
                .unwrap_or_default();
            Ok(format!(
                "审计日志完整（audit log intact）: {path}: {n} entries{last}"
            ))
        }
        Err((seq, why)) => Err(Error::AuditBroken { path, seq, why }),
    }
}
