//! Practice sessions (started, not yet finished) and the append-only practice log.
//!
//! Every log insert, in the caller's transaction, also updates `daily_activity` and queues an
//! outbox intent, so the three can never disagree after a crash.

use std::collections::HashSet;

use chrono::{DateTime, NaiveDate, Utc};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{from_millis, parse_date, parse_uuid, to_millis};
use crate::domain::DomainError;
use crate::domain::metrics::DayActivity;
use crate::domain::practice::{MAX_LOGS_PER_DAY, TransferEvidence, TransferKind};
use crate::error::{Error, Result};

/// Which version of which prompt a practice used.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PromptRef {
    pub pack_id: String,
    pub pack_version: u32,
    pub prompt_id: String,
}

/// A practice whose timer is running.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PracticeSession {
    pub id: Uuid,
    pub program_id: String,
    pub prompt: PromptRef,
    pub started_at: DateTime<Utc>,
    /// The learner's zone when the practice started; it fixes the local date for good.
    pub time_zone: String,
    pub local_date: NaiveDate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PracticeStatus {
    Completed,
    Abandoned,
}

impl PracticeStatus {
    fn as_str(self) -> &'static str {
        match self {
            Self::Completed => "completed",
            Self::Abandoned => "abandoned",
        }
    }
}

/// One row of the practice log. Never edited; a correction is a new row with `corrects` set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PracticeLog {
    pub id: Uuid,
    pub program_id: String,
    pub prompt: PromptRef,
    pub started_at: DateTime<Utc>,
    pub time_zone: String,
    pub local_date: NaiveDate,
    pub status: PracticeStatus,
    pub duration_secs: Option<u32>,
    /// Private to the learner.
    pub reflection: String,
    pub transfer: Option<TransferEvidence>,
    /// The log this one corrects (and so voids).
    pub corrects: Option<Uuid>,
    pub recorded_at: DateTime<Utc>,
}

pub fn insert_session(tx: &Transaction<'_>, s: &PracticeSession) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO practice_sessions (id, program_id, pack_id, pack_version, prompt_id, started_at, time_zone, local_date)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        s.id.to_string(),
        s.program_id,
        s.prompt.pack_id,
        s.prompt.pack_version,
        s.prompt.prompt_id,
        to_millis(s.started_at),
        s.time_zone,
        s.local_date.to_string()
    ])?;
    Ok(())
}

const SESSION_COLUMNS: &str = "id, program_id, pack_id, pack_version, prompt_id, started_at, time_zone, local_date";

pub fn session(conn: &Connection, id: Uuid) -> Result<Option<PracticeSession>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM practice_sessions WHERE id = ?1");
    let raw = conn.prepare_cached(&sql)?.query_row([id.to_string()], raw_session).optional()?;
    raw.map(RawSession::parse).transpose()
}

/// The practice in progress, if any.
pub fn open_session(conn: &Connection) -> Result<Option<PracticeSession>> {
    let sql = format!("SELECT {SESSION_COLUMNS} FROM practice_sessions ORDER BY started_at DESC LIMIT 1");
    let raw = conn.prepare_cached(&sql)?.query_row([], raw_session).optional()?;
    raw.map(RawSession::parse).transpose()
}

pub fn delete_session(tx: &Transaction<'_>, id: Uuid) -> Result<()> {
    tx.prepare_cached("DELETE FROM practice_sessions WHERE id = ?1")?.execute([id.to_string()])?;
    Ok(())
}

/// Appends a log row, keeps `daily_activity` in step (voiding the corrected row's share) and
/// queues the upload intent.
pub fn insert_log(tx: &Transaction<'_>, log: &PracticeLog, voided: Option<&PracticeLog>) -> Result<()> {
    let on_day: i64 = tx
        .prepare_cached("SELECT COUNT(*) FROM practice_logs WHERE program_id = ?1 AND local_date = ?2")?
        .query_row(params![log.program_id, log.local_date.to_string()], |r| r.get(0))?;
    if on_day >= MAX_LOGS_PER_DAY as i64 {
        return Err(DomainError::invalid(
            "local_date",
            format!("{} already holds {MAX_LOGS_PER_DAY} practice logs, the most a day may hold", log.local_date),
        )
        .into());
    }
    let (transfer_kind, transfer_note, transfer_link) = match &log.transfer {
        Some(t) => (Some(t.kind.as_str()), Some(t.note.as_str()), t.link.as_deref()),
        None => (None, None, None),
    };
    tx.prepare_cached(
        "INSERT INTO practice_logs (id, program_id, pack_id, pack_version, prompt_id, started_at, time_zone, local_date,
             status, duration_secs, reflection, transfer_kind, transfer_note, transfer_link, corrects, recorded_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
    )?
    .execute(params![
        log.id.to_string(),
        log.program_id,
        log.prompt.pack_id,
        log.prompt.pack_version,
        log.prompt.prompt_id,
        to_millis(log.started_at),
        log.time_zone,
        log.local_date.to_string(),
        log.status.as_str(),
        log.duration_secs,
        log.reflection,
        transfer_kind,
        transfer_note,
        transfer_link,
        log.corrects.map(|id| id.to_string()),
        to_millis(log.recorded_at),
    ])?;
    if let Some(old) = voided.filter(|old| old.status == PracticeStatus::Completed) {
        add_activity(tx, old, -1)?;
    }
    if log.status == PracticeStatus::Completed {
        add_activity(tx, log, 1)?;
    }
    tx.prepare_cached("INSERT INTO outbox (kind, entity_id, created_at) VALUES ('practice_log', ?1, ?2)")?
        .execute(params![log.id.to_string(), to_millis(log.recorded_at)])?;
    Ok(())
}

/// Stores a log recorded on another of the person's devices (her history, from the server): no
/// outbox entry, nothing if it is already here. A correction whose original is not here yet is
/// skipped (`false`); the caller passes originals first.
pub fn restore_log(tx: &Transaction<'_>, log: &PracticeLog) -> Result<bool> {
    let exists = |id: Uuid| -> Result<bool> {
        Ok(tx.prepare_cached("SELECT 1 FROM practice_logs WHERE id = ?1")?.exists([id.to_string()])?)
    };
    if exists(log.id)? {
        // Private text that could not be opened before (the key came later) fills in now.
        tx.prepare_cached(
            "UPDATE practice_logs SET reflection = ?2, transfer_note = ?3, transfer_link = ?4
             WHERE id = ?1 AND reflection = '' AND transfer_note IS NULL AND transfer_link IS NULL",
        )?
        .execute(params![
            log.id.to_string(),
            log.reflection,
            log.transfer.as_ref().map(|t| t.note.as_str()).filter(|n| !n.is_empty()),
            log.transfer.as_ref().and_then(|t| t.link.as_deref()),
        ])?;
        return Ok(true);
    }
    let voided = match log.corrects {
        Some(original) if !exists(original)? => return Ok(false),
        Some(original) => self::log(tx, original)?,
        None => None,
    };
    insert_log(tx, log, voided.as_ref())?;
    tx.prepare_cached("DELETE FROM outbox WHERE kind = 'practice_log' AND entity_id = ?1")?
        .execute([log.id.to_string()])?;
    Ok(true)
}

fn add_activity(tx: &Transaction<'_>, log: &PracticeLog, sign: i64) -> Result<()> {
    let seconds = sign * i64::from(log.duration_secs.unwrap_or(0));
    tx.prepare_cached(
        "INSERT INTO daily_activity (program_id, local_date, practices, seconds) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (program_id, local_date) DO UPDATE SET practices = practices + ?3, seconds = seconds + ?4",
    )?
    .execute(params![log.program_id, log.local_date.to_string(), sign, seconds])?;
    if sign < 0 {
        tx.prepare_cached("DELETE FROM daily_activity WHERE program_id = ?1 AND local_date = ?2 AND practices <= 0")?
            .execute(params![log.program_id, log.local_date.to_string()])?;
    }
    Ok(())
}

const LOG_COLUMNS: &str = "id, program_id, pack_id, pack_version, prompt_id, started_at, time_zone, local_date, status,
    duration_secs, reflection, transfer_kind, transfer_note, transfer_link, corrects, recorded_at";

pub fn log(conn: &Connection, id: Uuid) -> Result<Option<PracticeLog>> {
    let sql = format!("SELECT {LOG_COLUMNS} FROM practice_logs WHERE id = ?1");
    let raw = conn.prepare_cached(&sql)?.query_row([id.to_string()], raw_log).optional()?;
    raw.map(RawLog::parse).transpose()
}

/// The log that corrects `id`, if any.
pub fn corrected_by(conn: &Connection, id: Uuid) -> Result<Option<Uuid>> {
    let found: Option<String> = conn
        .prepare_cached("SELECT id FROM practice_logs WHERE corrects = ?1")?
        .query_row([id.to_string()], |row| row.get(0))
        .optional()?;
    found.as_deref().map(parse_uuid).transpose()
}

/// Every log not voided by a correction, oldest first.
pub fn effective_logs(conn: &Connection, program_id: &str) -> Result<Vec<PracticeLog>> {
    let sql = format!(
        "SELECT {LOG_COLUMNS} FROM practice_logs AS log
         WHERE program_id = ?1 AND NOT EXISTS (SELECT 1 FROM practice_logs AS later WHERE later.corrects = log.id)
         ORDER BY started_at, recorded_at"
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([program_id], raw_log)?;
    rows.map(|row| row?.parse()).collect()
}

/// Every row ever written, voided ones included, oldest first.
pub fn all_logs(conn: &Connection, program_id: &str) -> Result<Vec<PracticeLog>> {
    let sql = format!("SELECT {LOG_COLUMNS} FROM practice_logs WHERE program_id = ?1 ORDER BY recorded_at, id");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([program_id], raw_log)?;
    rows.map(|row| row?.parse()).collect()
}

/// Active days up to and including `until`.
pub fn daily_activity(conn: &Connection, program_id: &str, until: NaiveDate) -> Result<Vec<DayActivity>> {
    let mut stmt = conn.prepare_cached(
        "SELECT local_date, practices, seconds FROM daily_activity
         WHERE program_id = ?1 AND local_date <= ?2 ORDER BY local_date DESC",
    )?;
    let rows = stmt.query_map(params![program_id, until.to_string()], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, u32>(1)?, row.get::<_, i64>(2)?))
    })?;
    rows.map(|row| {
        let (date, practices, seconds) = row?;
        Ok(DayActivity { date: parse_date(&date)?, practices, seconds: seconds.max(0) as u64 })
    })
    .collect()
}

/// Ids of prompts with an effective completed log on a local date in `from..=to`.
pub fn completed_prompts(
    conn: &Connection,
    program_id: &str,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<HashSet<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT DISTINCT prompt_id FROM practice_logs AS log
         WHERE program_id = ?1 AND local_date BETWEEN ?2 AND ?3 AND status = 'completed'
           AND NOT EXISTS (SELECT 1 FROM practice_logs AS later WHERE later.corrects = log.id)",
    )?;
    let rows = stmt.query_map(params![program_id, from.to_string(), to.to_string()], |row| row.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn outbox_len(conn: &Connection) -> Result<u64> {
    let count: i64 = conn.query_row("SELECT COUNT(*) FROM outbox", [], |row| row.get(0))?;
    Ok(count.max(0) as u64)
}

struct RawSession(String, String, String, u32, String, i64, String, String);

fn raw_session(row: &Row<'_>) -> rusqlite::Result<RawSession> {
    Ok(RawSession(
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
    ))
}

impl RawSession {
    fn parse(self) -> Result<PracticeSession> {
        let RawSession(id, program_id, pack_id, pack_version, prompt_id, started_at, time_zone, local_date) = self;
        Ok(PracticeSession {
            id: parse_uuid(&id)?,
            program_id,
            prompt: PromptRef { pack_id, pack_version, prompt_id },
            started_at: from_millis(started_at)?,
            time_zone,
            local_date: parse_date(&local_date)?,
        })
    }
}

struct RawLog {
    session: RawSession,
    status: String,
    duration_secs: Option<u32>,
    reflection: String,
    transfer: (Option<String>, Option<String>, Option<String>),
    corrects: Option<String>,
    recorded_at: i64,
}

fn raw_log(row: &Row<'_>) -> rusqlite::Result<RawLog> {
    Ok(RawLog {
        session: raw_session(row)?,
        status: row.get(8)?,
        duration_secs: row.get(9)?,
        reflection: row.get(10)?,
        transfer: (row.get(11)?, row.get(12)?, row.get(13)?),
        corrects: row.get(14)?,
        recorded_at: row.get(15)?,
    })
}

impl RawLog {
    fn parse(self) -> Result<PracticeLog> {
        let session = self.session.parse()?;
        let status = match self.status.as_str() {
            "completed" => PracticeStatus::Completed,
            "abandoned" => PracticeStatus::Abandoned,
            other => return Err(Error::Corrupt(format!("practice status {other:?}"))),
        };
        let transfer = match self.transfer {
            (Some(kind), Some(note), link) => Some(TransferEvidence {
                kind: TransferKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("transfer kind {kind:?}")))?,
                note,
                link,
            }),
            _ => None,
        };
        Ok(PracticeLog {
            id: session.id,
            program_id: session.program_id,
            prompt: session.prompt,
            started_at: session.started_at,
            time_zone: session.time_zone,
            local_date: session.local_date,
            status,
            duration_secs: self.duration_secs,
            reflection: self.reflection,
            transfer,
            corrects: self.corrects.as_deref().map(parse_uuid).transpose()?,
            recorded_at: from_millis(self.recorded_at)?,
        })
    }
}
