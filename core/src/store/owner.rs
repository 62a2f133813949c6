//! One owner per database file. Two `Client`s on one file would each cache documents and
//! projections the other does not see, and one's writes could hide or lose the other's; so a
//! second open in the same process is refused (`AlreadyOpen`: use the client that has it open), and
//! another process is kept out by an exclusive lock on a file beside the database
//! (`OpenInAnotherProcess`). Both end when the owning client is dropped (or its process dies).

use std::collections::HashSet;
use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::domain::DomainError;
use crate::error::{Error, Result};

fn open_here() -> &'static Mutex<HashSet<PathBuf>> {
    static OPEN: OnceLock<Mutex<HashSet<PathBuf>>> = OnceLock::new();
    OPEN.get_or_init(Mutex::default)
}

/// This process's claim on a database file, held as long as the store.
#[derive(Debug)]
pub struct Owner {
    path: PathBuf,
    _lock: File,
}

impl Owner {
    pub fn claim(path: &Path) -> Result<Self> {
        if path.as_os_str().is_empty() {
            return Err(DomainError::invalid("path", "is empty; give the app's database file a path").into());
        }
        let path = canonical(path)?;
        let shown = path.display().to_string();
        if !open_here().lock().unwrap_or_else(|p| p.into_inner()).insert(path.clone()) {
            return Err(Error::AlreadyOpen(shown));
        }
        // From here on the registry entry is released by `Drop` if anything fails.
        let mut lock_path = path.clone().into_os_string();
        lock_path.push("-owner");
        let claim = |lock: File| Self { path: path.clone(), _lock: lock };
        let lock = OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path);
        let lock = match lock {
            Ok(file) => claim(file),
            Err(err) => {
                forget(&path);
                return Err(Error::Storage(rusqlite::Error::InvalidPath(PathBuf::from(format!("{shown}: {err}")))));
            }
        };
        match lock._lock.try_lock() {
            Ok(()) => Ok(lock),
            Err(TryLockError::WouldBlock) => Err(Error::OpenInAnotherProcess(shown)),
            Err(TryLockError::Error(err)) => {
                Err(Error::Storage(rusqlite::Error::InvalidPath(PathBuf::from(format!("{shown}: {err}")))))
            }
        }
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        forget(&self.path);
    }
}

fn forget(path: &Path) {
    open_here().lock().unwrap_or_else(|p| p.into_inner()).remove(path);
}

/// The same file however it is named: the canonical directory plus the file name (the file
/// itself may not exist yet).
fn canonical(path: &Path) -> Result<PathBuf> {
    let name = path.file_name().ok_or_else(|| DomainError::invalid("path", "names no file"))?;
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let dir = dir.canonicalize().map_err(|err| DomainError::invalid("path", format!("{}: {err}", dir.display())))?;
    Ok(dir.join(name))
}
