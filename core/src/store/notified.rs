//! The cohort notifications this device has handed to the app, with the time each was set to
//! fire, so a later plan keeps that time and never repeats one that fired. Kept for 30 days;
//! older events are no longer news anyway.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, Transaction, params};

use crate::error::Result;

const KEEP_MILLIS: i64 = 30 * 24 * 60 * 60 * 1000;

pub fn handed_out(conn: &Connection) -> Result<HashMap<String, DateTime<Utc>>> {
    let mut stmt = conn.prepare_cached("SELECT id, at FROM notified_events")?;
    let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = HashMap::new();
    for row in rows {
        let (id, at) = row?;
        out.insert(id, DateTime::from_timestamp_millis(at).unwrap_or_default());
    }
    Ok(out)
}

/// Records what a plan handed out; the first time given for an id stays.
pub fn record(tx: &Transaction<'_>, handed: &[(&str, DateTime<Utc>)], now_millis: i64) -> Result<()> {
    let mut insert = tx.prepare_cached("INSERT OR IGNORE INTO notified_events (id, at) VALUES (?1, ?2)")?;
    for (id, at) in handed {
        insert.execute(params![id, at.timestamp_millis()])?;
    }
    tx.execute("DELETE FROM notified_events WHERE at < ?1", [now_millis - KEEP_MILLIS])?;
    Ok(())
}

/// When this device took up its program: events from before are history on it.
pub fn enrolled_at(conn: &Connection) -> Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    Ok(conn.query_row("SELECT enrolled_at FROM enrollment WHERE id = 1", [], |r| r.get(0)).optional()?)
}
