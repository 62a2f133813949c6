//! What the person has been told and has seen: the cohort notifications this device handed to
//! the app, with the time each was set to fire (so a later plan keeps that time and never repeats
//! one that fired; kept for 30 days, older events are no longer news anyway), and her unread mark
//! (until when she has looked at her cohort's news, the latest of all her devices).

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

/// Until when (ms) she has looked at her cohort's news (0: never).
pub fn seen_until(conn: &Connection) -> Result<i64> {
    use rusqlite::OptionalExtension;
    Ok(conn.query_row("SELECT seen_until FROM read_marks WHERE id = 1", [], |r| r.get(0)).optional()?.unwrap_or(0))
}

/// The mark, if it moved on this device since the server last had it.
pub fn unsynced_seen_until(conn: &Connection) -> Result<Option<i64>> {
    use rusqlite::OptionalExtension;
    Ok(conn.query_row("SELECT seen_until FROM read_marks WHERE id = 1 AND synced = 0", [], |r| r.get(0)).optional()?)
}

/// Moves the mark forward (never back); `synced` when it came from the server.
pub fn raise_seen_until(tx: &Transaction<'_>, at: i64, synced: bool) -> Result<()> {
    if at <= seen_until(tx)? {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO read_marks (id, seen_until, synced) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET seen_until = ?1, synced = ?2",
        params![at, synced],
    )?;
    Ok(())
}

/// After a round trip: the mark sent is the server's now, and a later one from another of her
/// devices comes here.
pub fn settle_seen_until(tx: &Transaction<'_>, sent: Option<i64>, held: i64) -> Result<()> {
    if let Some(sent) = sent {
        tx.execute("UPDATE read_marks SET synced = 1 WHERE id = 1 AND seen_until <= ?1", [sent.max(held)])?;
    }
    raise_seen_until(tx, held, true)
}
