//! WAL checkpoints for the embedded database, on a thread of their own.
//!
//! SQLite's default copies the WAL back into the database file from inside whichever commit
//! finds it long, so every few hundred writes one sync waited for that copy and its fsync while
//! holding the writer. The writer turns that off; this thread checkpoints in the background
//! instead (PASSIVE: it never blocks the writer or a reader), so the WAL stays short.

use std::path::Path;
use std::sync::mpsc::{RecvTimeoutError, Sender, channel};
use std::time::Duration;

use rusqlite::Connection;

/// How often the WAL is copied back while the server writes.
const EVERY: Duration = Duration::from_millis(200);

/// Stops the thread when dropped (with the storage that owns it).
pub struct Checkpointer {
    _stop: Sender<()>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` on `conn` (a connection of its own).
    pub fn start(conn: Connection, path: &Path) -> std::io::Result<Self> {
        let (stop, stopped) = channel::<()>();
        let name = path.display().to_string();
        std::thread::Builder::new().name("microcohort-checkpoints".into()).spawn(move || {
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(EVERY) {
                if let Err(err) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                    tracing::warn!(database = %name, error = %err, "WAL checkpoint failed; retried shortly");
                }
            }
        })?;
        Ok(Self { _stop: stop })
    }
}
