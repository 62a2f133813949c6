//! Backing up and restoring the embedded database. A backup is taken while the server serves
//! (`VACUUM INTO` reads one consistent snapshot beside the writer, WAL) and checked before it is
//! called done; a restore goes only into a data directory without a database, through a file
//! renamed into place, so a half-copied database is never opened. PostgreSQL has its own tools
//! (`pg_dump`, `pg_restore`; see the README).

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::storage::schema;
use crate::storage::sqlite::DATABASE_FILE;

/// Writes a consistent copy of the data directory's database to `to` (which must not exist).
pub fn backup(data_dir: &Path, to: &Path) -> Result<(), String> {
    let database = data_dir.join(DATABASE_FILE);
    if !database.is_file() {
        return Err(format!("{}: no database to back up", database.display()));
    }
    if to.exists() {
        return Err(format!("{} exists; choose a new file for the backup", to.display()));
    }
    let target = to.to_str().ok_or_else(|| format!("{}: not a UTF-8 path", to.display()))?;
    let conn = Connection::open_with_flags(&database, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .map_err(|e| format!("{}: {e}", database.display()))?;
    conn.busy_timeout(std::time::Duration::from_secs(30)).map_err(|e| e.to_string())?;
    conn.execute("VACUUM INTO ?1", [target]).map_err(|e| format!("backup to {}: {e}", to.display()))?;
    check(to).inspect_err(|_| {
        let _ = std::fs::remove_file(to);
    })
}

/// Puts a backup in place as the data directory's database (which must not exist yet).
pub fn restore(from: &Path, data_dir: &Path) -> Result<(), String> {
    let database = data_dir.join(DATABASE_FILE);
    if database.exists() {
        return Err(format!("{} already holds a database; restore into an empty data directory", data_dir.display()));
    }
    check(from)?;
    std::fs::create_dir_all(data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let partial = data_dir.join(format!("{DATABASE_FILE}.restoring"));
    std::fs::copy(from, &partial).map_err(|e| format!("copy {}: {e}", from.display()))?;
    std::fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(|e| e.to_string())?;
    std::fs::rename(&partial, &database).map_err(|e| format!("{}: {e}", database.display()))?;
    // The rename itself must survive a power cut.
    std::fs::File::open(data_dir).and_then(|d| d.sync_all()).map_err(|e| e.to_string())
}

/// A backup that SQLite finds intact and this server can open.
fn check(file: &Path) -> Result<(), String> {
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| format!("{}: not a database ({e})", file.display()))?;
    if integrity != "ok" {
        return Err(format!("{}: damaged ({integrity})", file.display()));
    }
    schema::check_version(&conn).map(|_| ())
}
