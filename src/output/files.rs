//! Output files made visible atomically: written to a temporary name of their own in
//! their folder, synced, and renamed only once the run is recorded — readers never see
//! half a file, nor the files of a run the audit log does not hold.

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
    /// Another run is writing into the same output folder.
    #[error("{path} 正被另一次核对使用，请等它结束或换一个输出文件夹 — another run is writing into {path}: wait for it to end, or give another --out")]
    Busy {
        /// the folder
        path: String,
    },
    /// The report's template cannot be used (a defect).
    #[error("report template: {0}")]
    Template(String),
    /// A writer thread panicked (a defect).
    #[error("an output writer panicked")]
    Panicked,
}

/// A file written under a temporary name of its own in its folder (unique: two runs
/// never write the same temporary file), then [`AtomicFile::finish`]ed (synced) into a
/// [`Staged`] file that a run makes visible once it is recorded. Dropped before, the
/// temporary file is removed.
pub struct AtomicFile {
    path: std::path::PathBuf,
    w: std::io::BufWriter<tempfile::NamedTempFile>,
}

impl AtomicFile {
    /// Starts `dir/name`.
    pub fn create(dir: &Path, name: &str) -> Result<AtomicFile, OutputError> {
        let path = dir.join(name);
        let tmp = tempfile::Builder::new()
            .prefix(&format!(".{name}."))
            .suffix(TEMP_SUFFIX)
            .tempfile_in(dir)
            .map_err(|source| OutputError::Write {
                path: path.display().to_string(),
                source,
            })?;
        Ok(AtomicFile {
            path,
            w: std::io::BufWriter::new(tmp),
        })
    }

    /// The error of writing this file.
    pub fn error(&self, source: std::io::Error) -> OutputError {
        OutputError::Write {
            path: self.path.display().to_string(),
            source,
        }
    }

    /// Flushes and syncs the file, still under its temporary name (removed if this
    /// fails, or if the staged file is dropped unpublished).
    pub fn finish(self) -> Result<Staged, OutputError> {
        let path = self.path.clone();
        let fail = |source| OutputError::Write {
            path: path.display().to_string(),
            source,
        };
        let tmp = self.w.into_inner().map_err(|e| fail(e.into_error()))?;
        tmp.as_file().sync_all().map_err(fail)?;
        Ok(Staged { path, tmp })
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.w.write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.w.flush()
    }
}

/// The end of every temporary output file's name (found and removed by the next run in
/// the folder when a killed run left one).
pub const TEMP_SUFFIX: &str = ".hedui-tmp";

/// An output file written and synced under its temporary name, waiting to be made
/// visible: [`Staged::publish`] renames it; dropped, it is removed.
pub struct Staged {
    path: std::path::PathBuf,
    tmp: tempfile::NamedTempFile,
}

impl Staged {
    /// Where its bytes are until it is published.
    pub fn temp_path(&self) -> &Path {
        self.tmp.path()
    }

    /// Its name once published.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Gives the file its name (one rename).
    pub fn publish(self) -> Result<(), OutputError> {
        let path = self.path;
        self.tmp.persist(&path).map_err(|e| OutputError::Write {
            path: path.display().to_string(),
            source: e.error,
        })?;
        Ok(())
    }
}

/// Writes `dir/name` under a temporary name, synced, to be published.
pub fn write_atomic(
    dir: &Path,
    name: &str,
    write: impl FnOnce(&mut (dyn Write + Send)) -> std::io::Result<()>,
) -> Result<Staged, OutputError> {
    let mut file = AtomicFile::create(dir, name)?;
    write(&mut file).map_err(|e| file.error(e))?;
    file.finish()
}

/// The lock a run holds on its output folder while it writes and publishes there: a
/// second run given the same folder is refused at once instead of mixing its files with
/// the first one's. Released when dropped (or when the process ends, however it ends).
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
}

/// The lock file inside an output folder.
pub const LOCK_FILE: &str = ".hedui.lock";

impl FolderLock {
    /// Whether a run could write into `dir` now (made, locked, left as it was): asked
    /// before a run does its work, so that it is refused at once, not at its end.
    pub fn probe(dir: &Path) -> Result<(), OutputError> {
        let existed = dir.exists();
        drop(FolderLock::take(dir)?);
        if !existed {
            let _ = std::fs::remove_file(dir.join(LOCK_FILE));
            let _ = std::fs::remove_dir(dir);
        }
        Ok(())
    }

    /// Creates `dir` if needed and takes its lock; temporary files that a killed run
    /// left there are removed (nobody else can be writing them now).
    pub fn take(dir: &Path) -> Result<FolderLock, OutputError> {
        let fail = |source| OutputError::Write {
            path: dir.display().to_string(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(fail)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(fail)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(OutputError::Busy {
                    path: dir.display().to_string(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(fail(e)),
        }
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if name.starts_with('.') && name.ends_with(TEMP_SUFFIX) {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
        Ok(FolderLock { _file: file })
    }
}

/// Writes `items` one JSON object per line into `w`.
pub fn jsonl_into<T: Serialize>(w: &mut impl Write, items: &[T]) -> std::io::Result<()> {
    for item in items {
        serde_json::to_writer(&mut *w, item)?;
        w.write_all(b"\n")?;
    }
    Ok(())
}

/// Writes one JSON object per line, to be published.
pub fn write_jsonl<T: Serialize>(
    dir: &Path,
    name: &str,
    items: &[T],
) -> Result<Staged, OutputError> {
    write_atomic(dir, name, |mut w| jsonl_into(&mut w, items))
}
