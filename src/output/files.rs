//! Output files made visible atomically: written to a temporary name in their folder,
//! synced, then renamed — readers never see half a file.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

/// Why an output cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file or folder cannot be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// the file or folder
        path: String,
        /// the cause
        source: std::io::Error,
    },
    /// The report's template cannot be used (a defect).
    #[error("report template: {0}")]
    Template(String),
    /// A writer thread panicked (a defect).
    #[error("an output writer panicked")]
    Panicked,
}

/// Writes `bytes` to `dir/name` atomically (temporary file, then rename).
pub fn write_atomic(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut (dyn Write + Send)) -> std::io::Result<()>,
) -> Result<(), OutputError> {
    let path = dir.join(name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let err = |source| OutputError::Write {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(&tmp).map_err(err)?;
    let mut w = std::io::BufWriter::new(file);
    write(&mut w).map_err(err)?;
    w.into_inner()
        .map_err(|e| err(e.into_error()))?
        .sync_all()
        .map_err(err)?;
    std::fs::rename(&tmp, &path).map_err(err)?;
    Ok(())
}

/// Writes one JSON object per line.
pub fn write_jsonl<T: Serialize>(dir: &Path, name: &str, items: &[T]) -> Result<(), OutputError> {
    write_atomic(dir, name, |w| {
        for item in items {
            serde_json::to_writer(&mut *w, item)?;
            w.write_all(b"\n")?;
        }
        Ok(())
    })
}
