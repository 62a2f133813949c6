//! When a write of the embedded database is on disk. The writer connection commits without
//! syncing (`synchronous = NORMAL`) and every commit is followed by a sync of the WAL file made
//! here, before anyone is told the write happened: the same guarantee as `synchronous = FULL`,
//! but the sync runs outside SQLite's commit, so the writer thread can run the next batch while
//! the disk syncs the last one (see `group_commit`).
//!
//! Between a commit and its sync, readers may already see the change; its author has no answer
//! yet, and her device sends it again if a power cut loses it.
//!
//! A sync that fails may have dropped committed pages (the kernel marks them clean anyway), so
//! the first failure is kept: from then on no write is acknowledged, reads go on, and a restart
//! recovers what the disk holds.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

type SyncFn = Box<dyn Fn() -> std::io::Result<()> + Send + Sync>;

pub struct Durability {
    sync: SyncFn,
    failed: Mutex<Option<String>>,
}

impl Durability {
    /// Syncs the WAL of the database at `database`, and its directory the first time (the WAL
    /// file's own entry must be on disk too).
    pub fn wal_of(database: &Path) -> Self {
        let mut wal = database.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let dir = directory_of(database);
        let dir_synced = AtomicBool::new(false);
        Self::with_sync(Box::new(move || {
            // Opened by name each time: whatever file SQLite writes now is the one synced.
            File::open(&wal)?.sync_data()?;
            if !dir_synced.load(Ordering::Acquire) {
                File::open(&dir)?.sync_all()?;
                dir_synced.store(true, Ordering::Release);
            }
            Ok(())
        }))
    }

    pub fn with_sync(sync: SyncFn) -> Self {
        Self { sync, failed: Mutex::default() }
    }

    /// An error once a sync has failed.
    pub fn check(&self) -> Result<(), String> {
        match &*self.failed.lock().unwrap_or_else(|p| p.into_inner()) {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }

    /// Makes everything committed so far durable.
    pub fn sync(&self) -> Result<(), String> {
        self.check()?;
        (self.sync)().map_err(|err| {
            let why = format!(
                "the database could not make writes durable (syncing its WAL failed: {err}); \
                 no write is accepted until the server restarts"
            );
            tracing::error!("{why}");
            self.failed.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(why).clone()
        })
    }
}

/// The directory holding a file; a bare file name's parent is the empty path, not a directory.
fn directory_of(file: &Path) -> PathBuf {
    match file.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_named_without_a_directory_is_in_the_working_directory() {
        assert_eq!(directory_of(Path::new("db.sqlite")), PathBuf::from("."));
        assert_eq!(directory_of(Path::new("data/db.sqlite")), PathBuf::from("data"));
        File::open(directory_of(Path::new("db.sqlite"))).unwrap().sync_all().unwrap();
    }

    #[test]
    fn a_failed_sync_refuses_every_later_one_even_when_the_disk_recovers() {
        let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = calls.clone();
        let durable = Durability::with_sync(Box::new(move || match counted.fetch_add(1, Ordering::SeqCst) {
            1 => Err(std::io::Error::other("I/O error")),
            _ => Ok(()),
        }));
        assert_eq!(durable.sync(), Ok(()));
        let failed = durable.sync().unwrap_err();
        assert!(failed.contains("I/O error") && failed.contains("restarts"), "{failed}");
        assert_eq!(durable.sync(), Err(failed.clone()), "the disk answers again, but pages may be lost");
        assert_eq!(durable.check(), Err(failed));
        assert_eq!(calls.load(Ordering::SeqCst), 2, "no sync is tried once one failed");
    }
}
