//! What the device knows about its sync server: the link, acknowledged heads, relayed logs.

use automerge::ChangeHash;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::error::{Error, Result};
use crate::sync::wire::{RefusedLog, WireLog};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLink {
    pub server_url: String,
    pub device_id: String,
    pub device_token: String,
    pub last_attempt: Option<i64>,
    pub last_success: Option<i64>,
    pub last_error: Option<String>,
    /// Where the person's practice history continues (`None`: the device has all of it).
    pub history_after: Option<u64>,
}

pub fn link(conn: &Connection) -> Result<Option<ServerLink>> {
    Ok(conn
        .query_row(
            "SELECT server_url, device_id, device_token, last_attempt, last_success, last_error, history_after
             FROM server_link WHERE id = 1",
            [],
            |r| {
                Ok(ServerLink {
                    server_url: r.get(0)?,
                    device_id: r.get(1)?,
                    device_token: r.get(2)?,
                    last_attempt: r.get(3)?,
                    last_success: r.get(4)?,
                    last_error: r.get(5)?,
                    history_after: r.get::<_, Option<i64>>(6)?.map(|after| after.max(0) as u64),
                })
            },
        )
        .optional()?)
}

pub fn save_link(tx: &Transaction<'_>, url: &str, device_id: &str, token: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO server_link (id, server_url, device_id, device_token, history_after) VALUES (1, ?1, ?2, ?3, 0)
         ON CONFLICT (id) DO UPDATE SET server_url = ?1, device_id = ?2, device_token = ?3, history_after = 0",
        params![url, device_id, token],
    )?;
    Ok(())
}

/// The device is no longer linked (its person has no membership left on it).
pub fn forget_link(tx: &Transaction<'_>) -> Result<()> {
    tx.execute("DELETE FROM server_link", [])?;
    Ok(())
}

/// The same device on the server's new address: token, watermarks and history stay.
pub fn move_link(tx: &Transaction<'_>, url: &str) -> Result<()> {
    tx.execute("UPDATE server_link SET server_url = ?1 WHERE id = 1", [url])?;
    Ok(())
}

/// The next page of the person's practice history starts after `next` (`None`: complete).
pub fn save_history_progress(tx: &Transaction<'_>, next: Option<u64>) -> Result<()> {
    tx.execute("UPDATE server_link SET history_after = ?1 WHERE id = 1", [next.map(|n| n as i64)])?;
    Ok(())
}

pub fn record_attempt(tx: &Transaction<'_>, at: i64, outcome: Result<(), &str>) -> Result<()> {
    match outcome {
        Ok(()) => tx.execute(
            "UPDATE server_link SET last_attempt = ?1, last_success = ?1, last_error = NULL WHERE id = 1",
            [at],
        )?,
        Err(message) => {
            tx.execute("UPDATE server_link SET last_attempt = ?1, last_error = ?2 WHERE id = 1", params![at, message])?
        }
    };
    Ok(())
}

pub fn server_heads(conn: &Connection, doc_id: &str) -> Result<Vec<ChangeHash>> {
    let bytes: Option<Vec<u8>> = conn
        .prepare_cached("SELECT server_heads FROM doc_sync WHERE doc_id = ?1")?
        .query_row([doc_id], |r| r.get(0))
        .optional()?;
    bytes.map(|b| hashes(&b)).transpose().map(Option::unwrap_or_default)
}

pub fn save_server_heads(tx: &Transaction<'_>, doc_id: &str, heads: &[ChangeHash]) -> Result<()> {
    let bytes: Vec<u8> = heads.iter().flat_map(|h| h.0).collect();
    tx.prepare_cached(
        "INSERT INTO doc_sync (doc_id, server_heads) VALUES (?1, ?2)
         ON CONFLICT (doc_id) DO UPDATE SET server_heads = ?2",
    )?
    .execute(params![doc_id, bytes])?;
    Ok(())
}

/// Drops the local copy of a document and marks its intents for replay, in one transaction.
pub fn forget_doc(tx: &Transaction<'_>, doc_id: &str) -> Result<()> {
    tx.execute("DELETE FROM doc_sync WHERE doc_id = ?1", [doc_id])?;
    tx.execute("DELETE FROM doc_chunks WHERE doc_id = ?1", [doc_id])?;
    tx.execute("INSERT OR IGNORE INTO replay_needed (doc_id) VALUES (?1)", [doc_id])?;
    Ok(())
}

pub fn needs_replay(conn: &Connection, doc_id: &str) -> Result<bool> {
    Ok(conn.query_row("SELECT 1 FROM replay_needed WHERE doc_id = ?1", [doc_id], |_| Ok(())).optional()?.is_some())
}

pub fn replay_done(tx: &Transaction<'_>, doc_id: &str) -> Result<()> {
    tx.execute("DELETE FROM replay_needed WHERE doc_id = ?1", [doc_id])?;
    Ok(())
}

fn hashes(bytes: &[u8]) -> Result<Vec<ChangeHash>> {
    bytes
        .chunks(32)
        .map(|chunk| ChangeHash::try_from(chunk).map_err(|_| Error::Corrupt("stored change hash".into())))
        .collect()
}

/// Ids of practice logs waiting to be uploaded.
pub fn pending_log_ids(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare_cached("SELECT DISTINCT entity_id FROM outbox WHERE kind = 'practice_log' ORDER BY entity_id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn ack_logs(tx: &Transaction<'_>, ids: &[String]) -> Result<()> {
    for id in ids {
        tx.prepare_cached("DELETE FROM outbox WHERE kind = 'practice_log' AND entity_id = ?1")?.execute([id])?;
    }
    Ok(())
}

/// Logs the server refused leave the outbox; the reason stays for the app to show.
pub fn refuse_logs(tx: &Transaction<'_>, refused: &[RefusedLog], at: i64) -> Result<()> {
    for log in refused {
        tx.prepare_cached("DELETE FROM outbox WHERE kind = 'practice_log' AND entity_id = ?1")?.execute([&log.id])?;
        tx.prepare_cached(
            "INSERT INTO refused_logs (id, reason, detail, refused_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET reason = ?2, detail = ?3, refused_at = ?4",
        )?
        .execute(params![log.id, log.reason, log.detail, at])?;
    }
    Ok(())
}

/// Every log the server refused, newest first.
pub fn refused_logs(conn: &Connection) -> Result<Vec<RefusedLog>> {
    let mut stmt = conn.prepare_cached("SELECT id, reason, detail FROM refused_logs ORDER BY refused_at DESC, id")?;
    let rows = stmt.query_map([], |r| Ok(RefusedLog { id: r.get(0)?, reason: r.get(1)?, detail: r.get(2)? }))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Practice logs relayed for the members of `cohort_id`, and the server's sequence they reach.
pub fn store_cohort_logs(tx: &Transaction<'_>, cohort_id: &str, logs: &[WireLog], watermark: u64) -> Result<()> {
    for l in logs {
        tx.prepare_cached(
            "INSERT OR IGNORE INTO cohort_practice_logs
             (id, user_id, program_id, prompt_id, local_date, time_zone, status, duration_secs, transfer_kind, corrects, recorded_at,
              late_arrival, cohort_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            l.id,
            l.user_id,
            l.program_id,
            l.prompt_id,
            l.local_date,
            l.time_zone,
            l.status,
            l.duration_secs,
            l.transfer_kind,
            l.corrects,
            l.recorded_at,
            l.late_arrival,
            cohort_id
        ])?;
    }
    tx.execute(
        "UPDATE memberships SET logs_watermark = MAX(logs_watermark, ?1) WHERE cohort_id = ?2",
        params![watermark as i64, cohort_id],
    )?;
    Ok(())
}

/// A cohort's relayed practice logs: `(log id, user id, local date, status)`, oldest first.
pub fn cohort_logs(conn: &Connection, cohort_id: &str) -> Result<Vec<(String, String, String, String)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, user_id, local_date, status FROM cohort_practice_logs WHERE cohort_id = ?1 ORDER BY recorded_at, id",
    )?;
    let rows = stmt.query_map([cohort_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
