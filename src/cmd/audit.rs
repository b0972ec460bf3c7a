//! `hedui audit verify`: recompute the audit chain of a state database and name the
//! first broken entry (SPEC §7, §8).

use crate::cli::AuditVerifyArgs;
use crate::error::Error;
use crate::state::{AuditFiles, State};

/// Verifies the chain; the line to print when it is whole.
pub fn verify(args: &AuditVerifyArgs) -> Result<String, Error> {
    let (dir, audit) = match (&args.config, &args.state) {
        (Some(file), _) => {
            let d = crate::config::Deployment::load(file)?;
            let audit = AuditFiles::of(&d);
            (d.state_path, audit)
        }
        (None, Some(dir)) => (dir.clone(), AuditFiles::beside(dir)),
        (None, None) => return Err(Error::Usage("give --config FILE or --state DIR".into())),
    };
    // Read only: verifying never makes a key, never writes, and works on a copy on
    // read-only media.
    let state = State::open_read_only(&dir, audit)?;
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
