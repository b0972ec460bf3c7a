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

/// A file written under a temporary name in its folder and made visible by
/// [`AtomicFile::commit`] (synced, then renamed); dropped before, it is removed.
pub struct AtomicFile {
    path: std::path::PathBuf,
    tmp: std::path::PathBuf,
    w: Option<std::io::BufWriter<std::fs::File>>,
}

impl AtomicFile {
    /// Starts `dir/name`.
    pub fn create(dir: &Path, name: &str) -> Result<AtomicFile, OutputError> {
        let path = dir.join(name);
        let tmp = dir.join(format!(".{name}.tmp"));
        let file = std::fs::File::create(&tmp).map_err(|source| OutputError::Write {
            path: path.display().to_string(),
            source,
        })?;
        Ok(AtomicFile {
            path,
            tmp,
            w: Some(std::io::BufWriter::new(file)),
        })
    }

    /// The error of writing this file.
    pub fn error(&self, source: std::io::Error) -> OutputError {
        OutputError::Write {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Syncs the file and gives it its name.
    pub fn commit(mut self) -> Result<(), OutputError> {
        let Some(w) = self.w.take() else {
            return Ok(());
        };
        w.into_inner()
            .map_err(|e| self.error(e.into_error()))?
            .sync_all()
            .map_err(|e| self.error(e))?;
        std::fs::rename(&self.tmp, &self.path).map_err(|e| self.error(e))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.w.as_mut() {
            Some(w) => w.write(buf),
            None => Err(std::io::Error::other("file already committed")),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.as_mut().map_or(Ok(()), Write::flush)
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.w.take().is_some() {
            // Never made visible: no half file is left behind.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Writes `dir/name` atomically (temporary file, then rename).
pub fn write_atomic(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut (dyn Write + Send)) -> std::io::Result<()>,
) -> Result<(), OutputError> {
    let mut file = AtomicFile::create(dir, name)?;
    write(&mut file).map_err(|e| file.error(e))?;
    file.commit()
}

/// Writes `items` one JSON object per line into `w`.
pub fn jsonl_into<T: Serialize>(w: &mut impl Write, items: &[T]) -> std::io::Result<()> {
    for item in items {
        serde_json::to_writer(&mut *w, item)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes one JSON object per line.
pub fn write_jsonl<T: Serialize>(dir: &Path, name: &str, items: &[T]) -> Result<(), OutputError> {
    write_atomic(dir, name, |mut w| jsonl_into(&mut w, items))
}
