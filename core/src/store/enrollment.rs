//! The learner's program enrollment, profile (zone, day start, reminder preferences) and the
//! calendar export state.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::prompts::{from_json, json};
use crate::domain::blueprint::Blueprint;
use crate::domain::reminders::ReminderPreferences;
use crate::domain::time::{DayStart, parse_time_zone};
use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq)]
pub struct StoredEnrollment {
    pub program_id: String,
    pub program_title: String,
    pub pack_id: String,
    pub blueprint: Blueprint,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Profile {
    pub time_zone: chrono_tz::Tz,
    pub day_start: DayStart,
    pub reminders: ReminderPreferences,
}

/// Records (or updates) a program on this device and selects it for the screens. A selected
/// membership of another program is unselected.
pub fn save_enrollment(tx: &Transaction<'_>, enrollment: &StoredEnrollment, now_millis: i64) -> Result<()> {
    add_enrollment(tx, enrollment, now_millis)?;
    // A cohort joined before its program was known on this device takes this one.
    tx.execute(
        "UPDATE memberships SET program_id = ?1
         WHERE program_id IS NULL AND cohort_id = (SELECT cohort_id FROM selection)",
        [&enrollment.program_id],
    )?;
    tx.execute(
        "INSERT INTO selection (id, program_id, cohort_id) VALUES (1, ?1, NULL)
         ON CONFLICT (id) DO UPDATE SET program_id = ?1,
             cohort_id = CASE WHEN (SELECT program_id FROM memberships WHERE cohort_id = selection.cohort_id) IS ?1
                              THEN cohort_id END",
        [&enrollment.program_id],
    )?;
    Ok(())
}

/// Records (or updates) a program on this device; the selection stays.
pub fn add_enrollment(tx: &Transaction<'_>, enrollment: &StoredEnrollment, now_millis: i64) -> Result<()> {
    tx.execute(
        "INSERT INTO enrollments (program_id, program_title, pack_id, blueprint, enrolled_at)
         VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (program_id) DO UPDATE SET program_title = ?2, pack_id = ?3, blueprint = ?4",
        params![
            enrollment.program_id,
            enrollment.program_title,
            enrollment.pack_id,
            json(&enrollment.blueprint)?,
            now_millis
        ],
    )?;
    Ok(())
}

const ENROLLMENT_COLUMNS: &str = "e.program_id, e.program_title, e.pack_id, e.blueprint";

fn enrollment_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, String)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn parsed(
    (program_id, program_title, pack_id, blueprint): (String, String, String, String),
) -> Result<StoredEnrollment> {
    Ok(StoredEnrollment { program_id, program_title, pack_id, blueprint: from_json(&blueprint)? })
}

/// The selected program (the screens' program).
pub fn enrollment(conn: &Connection) -> Result<Option<StoredEnrollment>> {
    conn.query_row(
        &format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments e JOIN selection s ON s.program_id = e.program_id"),
        [],
        enrollment_row,
    )
    .optional()?
    .map(parsed)
    .transpose()
}

/// A program on this device by its id.
pub fn enrollment_of(conn: &Connection, program_id: &str) -> Result<Option<StoredEnrollment>> {
    conn.query_row(
        &format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments e WHERE e.program_id = ?1"),
        [program_id],
        enrollment_row,
    )
    .optional()?
    .map(parsed)
    .transpose()
}

/// Every program on this device that runs on the pack `pack_id`.
pub fn enrollments_with_pack(conn: &Connection, pack_id: &str) -> Result<Vec<StoredEnrollment>> {
    let mut stmt = conn.prepare(&format!("SELECT {ENROLLMENT_COLUMNS} FROM enrollments e WHERE e.pack_id = ?1"))?;
    let rows = stmt.query_map([pack_id], enrollment_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    rows.into_iter().map(parsed).collect()
}

/// When this device took up the selected program (ms): cohort events from before are history on it.
pub fn enrolled_at(conn: &Connection) -> Result<Option<i64>> {
    Ok(conn
        .query_row("SELECT e.enrolled_at FROM enrollments e JOIN selection s ON s.program_id = e.program_id", [], |r| {
            r.get(0)
        })
        .optional()?)
}

pub fn save_profile(tx: &Transaction<'_>, profile: &Profile) -> Result<()> {
    tx.execute(
        "INSERT INTO profile (id, time_zone, day_start_minutes, reminders) VALUES (1, ?1, ?2, ?3)
         ON CONFLICT (id) DO UPDATE SET time_zone = ?1, day_start_minutes = ?2, reminders = ?3",
        params![profile.time_zone.name(), profile.day_start.minutes(), json(&profile.reminders)?],
    )?;
    Ok(())
}

/// The profile changed on this device at `changed_at` (ms): the next sync sends it.
pub fn mark_profile_changed(tx: &Transaction<'_>, changed_at: i64) -> Result<()> {
    tx.execute("UPDATE profile SET changed_at = ?1, synced = 0 WHERE id = 1", [changed_at])?;
    Ok(())
}

/// The server holds the profile as of `changed_at`; a change made since stays unsent.
pub fn mark_profile_synced(tx: &Transaction<'_>, changed_at: i64) -> Result<()> {
    tx.execute("UPDATE profile SET synced = 1 WHERE id = 1 AND changed_at = ?1", [changed_at])?;
    Ok(())
}

/// The profile was replaced by the server's, which changed at `changed_at`.
pub fn adopt_profile(tx: &Transaction<'_>, changed_at: i64) -> Result<()> {
    tx.execute("UPDATE profile SET changed_at = ?1, synced = 1 WHERE id = 1", [changed_at])?;
    Ok(())
}

/// The profile and when it last changed, if the server does not have it yet.
pub fn unsynced_profile(conn: &Connection) -> Result<Option<(Profile, i64)>> {
    let changed: Option<i64> =
        conn.query_row("SELECT changed_at FROM profile WHERE id = 1 AND synced = 0", [], |r| r.get(0)).optional()?;
    let Some(changed_at) = changed else { return Ok(None) };
    Ok(profile(conn)?.map(|p| (p, changed_at)))
}

/// When the profile last changed (0: never on a device).
pub fn profile_changed_at(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT changed_at FROM profile WHERE id = 1", [], |r| r.get(0)).optional()?.unwrap_or(0))
}

pub fn profile(conn: &Connection) -> Result<Option<Profile>> {
    let mut stmt = conn.prepare_cached("SELECT time_zone, day_start_minutes, reminders FROM profile WHERE id = 1")?;
    stmt.query_row([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?)))
        .optional()?
        .map(|(zone, minutes, reminders)| {
            Ok(Profile {
                time_zone: parse_time_zone(&zone).map_err(|e| Error::Corrupt(e.to_string()))?,
                day_start: DayStart::from_minutes(minutes).map_err(|e| Error::Corrupt(e.to_string()))?,
                reminders: from_json(&reminders)?,
            })
        })
        .transpose()
}

/// Returns the SEQUENCE to export with: unchanged while the fingerprint is, bumped when it changes.
pub fn calendar_sequence(tx: &Transaction<'_>, fingerprint: &str) -> Result<u32> {
    let stored: Option<(String, u32)> = tx
        .query_row("SELECT fingerprint, sequence FROM calendar_export WHERE id = 1", [], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    let sequence = match stored {
        Some((previous, sequence)) if previous == fingerprint => return Ok(sequence),
        Some((_, sequence)) => sequence + 1,
        None => 0,
    };
    tx.execute(
        "INSERT INTO calendar_export (id, fingerprint, sequence) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET fingerprint = ?1, sequence = ?2",
        params![fingerprint, sequence],
    )?;
    Ok(sequence)
}
