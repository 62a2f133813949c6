//! WAL checkpoints for the embedded database, on a thread of their own.
//!
//! SQLite's default copies the WAL back into the database file from inside whichever commit
//! finds it long, so every few hundred writes one sync waited for that copy and its fsync while
//! holding the writer. The writer turns that off; this thread checkpoints in the background
//! instead (PASSIVE: it never blocks the writer or a reader).
//!
//! A passive checkpoint never starts the WAL over: SQLite restarts it only when a write begins
//! with every frame already copied back, which under sustained writes never happens (seeding a
//! program grew it to 4.6 GB). A RESTART checkpoint from this thread does not help either: it
//! polls for the writer's lock, which a busy writer takes again at once. So once the WAL is long
//! and the passive rounds have copied nearly all of it, this thread asks the writer, which runs
//! the RESTART between two of its transactions ([`restart`]): it waits briefly for the readers of
//! older snapshots (or gives up until it is asked again), copies the little that is left and
//! starts the file over with its next write.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back while the server writes. (Once a second copied fewer pages
/// per write, but each round's fsync of the database then held up the WAL's for up to 0.4 s.)
const EVERY: Duration = Duration::from_millis(200);
/// Pages in the WAL beyond which it is started over (256 MiB with SQLite's default 4 KiB pages).
/// Each restart holds writes for a moment (sync-load, 50 clients: p99 110-134 ms with restarts
/// past 64 MiB, about once a second; 43 ms past 256 MiB).
pub const LONG_WAL_PAGES: i64 = 64 * 1024;
/// Pages a restart may find left to copy (the passive rounds copy the rest beforehand).
const RESTART_BACKLOG_PAGES: i64 = 1024;
/// How long a restart waits for readers of older snapshots; writes wait meanwhile.
const RESTART_WAIT: Duration = Duration::from_millis(10);
/// At most this many rounds (5 s) between restarts asked of the writer.
const MAX_BACKOFF_ROUNDS: u32 = 25;

/// Between the checkpoint thread, which asks for a restart, and the writer, which runs it.
#[derive(Default)]
pub struct WalRestart {
    wanted: AtomicBool,
    /// Restarts in a row that readers kept from finishing.
    failed: AtomicU32,
}

/// Stops the thread when dropped (with the storage that owns it).
pub struct Checkpointer {
    _stop: Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` on `conn` (a connection of its own); once the
    /// WAL is longer than `long_wal_pages`, asks the writer through `restart` to start it over.
    pub fn start(
        conn: Connection,
        path: &Path,
        long_wal_pages: i64,
        restart: Arc<WalRestart>,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = channel::<()>();
        let name = path.display().to_string();
        std::thread::Builder::new().name("microcohort-checkpoints".into()).spawn(move || {
            // Rounds to wait before asking again: none while restarts finish; doubling with
            // each that readers kept from finishing, so under sustained load the attempts,
            // which hold writes up to RESTART_WAIT, cost little.
            let mut skip = 0u32;
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                match checkpoint(&conn, "PASSIVE") {
                    Ok((_, pages, copied)) if pages > long_wal_pages && pages - copied < RESTART_BACKLOG_PAGES => {
                        if skip > 0 {
                            skip -= 1;
                        } else {
                            restart.wanted.store(true, Ordering::Relaxed);
                            let failed = restart.failed.load(Ordering::Relaxed).min(5);
                            skip = (1u32 << failed).min(MAX_BACKOFF_ROUNDS) - 1;
                        }
                    }
                    Ok(_) => skip = 0,
                    Err(err) => {
                        tracing::warn!(database = %name, error = %err, "WAL checkpoint failed; retried shortly")
                    }
                }
            }
        })?;
        Ok(Self { _stop: stop })
    }
}

/// Run by the writer between transactions when asked: copies back what is left of the WAL once
/// the readers of older snapshots are done (waiting at most [`RESTART_WAIT`]), so that its next
/// write starts the file over.
pub fn restart(conn: &Connection, restart: &WalRestart) {
    if !restart.wanted.swap(false, Ordering::Relaxed) {
        return;
    }
    let restarted = conn.busy_timeout(RESTART_WAIT).and_then(|()| checkpoint(conn, "RESTART"));
    let reset = conn.busy_timeout(super::sqlite::BUSY_TIMEOUT);
    match restarted.and_then(|done| reset.map(|()| done)) {
        Ok((false, ..)) => restart.failed.store(0, Ordering::Relaxed),
        Ok((true, ..)) => {
            restart.failed.fetch_add(1, Ordering::Relaxed);
        }
        Err(err) => tracing::warn!(error = %err, "restarting the WAL failed; asked again later"),
    }
}

/// Runs a checkpoint; returns whether it could not finish, the pages in the WAL and those of them
/// copied back.
fn checkpoint(conn: &Connection, mode: &str) -> rusqlite::Result<(bool, i64, i64)> {
    conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
        Ok((r.get::<_, i64>(0)? != 0, r.get(1)?, r.get(2)?))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::durability::Durability;
    use crate::storage::group_commit::GroupCommit;
    use std::sync::Mutex;
    use std::time::Instant;

    fn open(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.busy_timeout(crate::storage::sqlite::BUSY_TIMEOUT).unwrap();
        conn
    }

    #[test]
    fn a_wal_written_without_a_pause_and_read_all_along_is_started_over() {
        const LONG: i64 = 256;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite");
        let writer = open(&path);
        writer.pragma_update(None, "journal_mode", "WAL").unwrap();
        writer.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
        let page_size: i64 = writer.pragma_query_value(None, "page_size", |r| r.get(0)).unwrap();
        writer.pragma_update(None, "journal_size_limit", LONG * page_size).unwrap();
        writer.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB NOT NULL)", []).unwrap();
        let restart = Arc::new(WalRestart::default());
        let group =
            GroupCommit::start(Arc::new(Mutex::new(writer)), restart.clone(), Arc::new(Durability::wal_of(&path)))
                .unwrap();
        let _checkpoints = Checkpointer::start(open(&path), &path, LONG, restart).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (path, stop) = (path.clone(), stop.clone());
                std::thread::spawn(move || {
                    let conn = open(&path);
                    while !stop.load(Ordering::Relaxed) {
                        conn.query_row("SELECT MAX(id) FROM t", [], |r| r.get::<_, Option<i64>>(0)).unwrap();
                        std::thread::sleep(Duration::from_micros(500));
                    }
                })
            })
            .collect();
        // Writes one after the other for 2 s: far more than LONG pages in all.
        let wal = dir.path().join("db.sqlite-wal");
        let (mut longest, mut written) = (0, 0);
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(2) {
            group.run(|conn| Ok(conn.execute("INSERT INTO t (body) VALUES (zeroblob(16384))", [])?)).unwrap();
            written += 16384;
            longest = longest.max(std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0));
        }
        stop.store(true, Ordering::Relaxed);
        for reader in readers {
            reader.join().unwrap();
        }
        let limit = (LONG * page_size) as u64;
        assert!(written > 16 * limit, "the test wrote too little to tell: {written} bytes");
        // Without restarts the WAL holds everything written; with them, a few rounds of it.
        assert!(longest < written / 2, "the WAL grew to {longest} bytes for {written} bytes written");
    }
}
