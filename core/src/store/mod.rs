//! The device database: bundled SQLite in WAL mode, one connection that does all writing, every
//! write in one immediate transaction (`Store::write`), versioned migrations (`schema`).
//!
//! `synchronous = FULL`: a practice the call reported as saved survives a crash or power loss,
//! not only a killed process. One fsync per logged practice is nothing on a phone.

pub mod calibration;
pub mod cohort;
pub mod dashboard;
pub mod enrollment;
pub mod facilitation;
pub mod notified;
mod owner;
pub mod person;
pub mod practice;
pub mod prompts;
pub mod schema;
pub mod stories;
pub mod sync_state;

use std::path::Path;

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

pub struct Store {
    conn: Connection,
    /// The claim on the file (none in memory); released after the connection closes.
    _owner: Option<owner::Owner>,
}

impl Store {
    /// Opens (creating if needed) and migrates the database at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let owner = owner::Owner::claim(path)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        Self::prepare(conn, &path.display().to_string(), Some(owner))
    }

    pub fn open_in_memory() -> Result<Self> {
        Self::prepare(Connection::open_in_memory()?, ":memory:", None)
    }

    fn prepare(mut conn: Connection, name: &str, owner: Option<owner::Owner>) -> Result<Self> {
        // Refuse a newer schema or a foreign file before anything (even the WAL switch) writes to it.
        schema::check_version(&conn).map_err(|err| match err {
            Error::Storage(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::NotADatabase => {
                Error::NotADatabase(name.to_owned())
            }
            other => other,
        })?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.pragma_update(None, "foreign_keys", true)?;
        // Deleted rows (a moved-out token, "delete my data") are overwritten, not left in free pages.
        conn.pragma_update(None, "secure_delete", true)?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        schema::migrate(&mut conn)?;
        Ok(Self { conn, _owner: owner })
    }

    /// Runs `f` in one immediate transaction: all of it is written, or none of it.
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let tx = self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let value = f(&tx)?;
        tx.commit()?;
        Ok(value)
    }

    pub fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        f(&self.conn)
    }

    /// The connection itself, for work that spans transactions (moving secrets out).
    pub(crate) fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// `PRAGMA integrity_check`: "ok" for a healthy database.
    pub fn integrity_check(&self) -> Result<String> {
        Ok(self.conn.query_row("PRAGMA integrity_check", [], |row| row.get(0))?)
    }
}

/// Milliseconds since the Unix epoch, as instants are stored.
pub(crate) fn to_millis(at: chrono::DateTime<chrono::Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(millis: i64) -> Result<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::from_timestamp_millis(millis)
        .ok_or_else(|| Error::Corrupt(format!("instant {millis} out of range")))
}

pub(crate) fn parse_date(text: &str) -> Result<chrono::NaiveDate> {
    text.parse().map_err(|_| Error::Corrupt(format!("date {text:?}")))
}

pub(crate) fn parse_uuid(text: &str) -> Result<uuid::Uuid> {
    text.parse().map_err(|_| Error::Corrupt(format!("id {text:?}")))
}
