//! Device storage of what facilitators did through the server: moderation and announcements
//! (projected from the cohort document) and the private notes the sync brought her.

use rusqlite::{Connection, Transaction, params};

use crate::docs::cohort::{AnnouncementRow, HiddenMark, ModerationRow};
use crate::error::Result;
use crate::sync::wire::WireNote;

/// Replaces a cohort's moderation and announcements, as projected from its document.
pub fn replace(
    tx: &Transaction<'_>,
    cohort_id: &str,
    moderation: &[ModerationRow],
    announcements: &[AnnouncementRow],
) -> Result<()> {
    tx.execute("DELETE FROM moderation WHERE cohort_id = ?1", [cohort_id])?;
    for m in moderation {
        tx.prepare_cached(
            "INSERT INTO moderation (cohort_id, week, entry, hidden_reason, hidden_by, endorsed_by)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![
            cohort_id,
            m.week,
            m.entry,
            m.hidden.as_ref().map(|h| &h.reason),
            m.hidden.as_ref().map(|h| &h.by),
            m.endorsed_by
        ])?;
    }
    tx.execute("DELETE FROM announcements WHERE cohort_id = ?1", [cohort_id])?;
    for a in announcements {
        tx.prepare_cached(
            "INSERT INTO announcements (cohort_id, key, author, body, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![cohort_id, a.key, a.author, a.body, a.created_at])?;
    }
    Ok(())
}

/// How facilitators moderated the entries of one week of a cohort.
pub fn moderation_of_week(conn: &Connection, cohort_id: &str, week: u32) -> Result<Vec<ModerationRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT entry, hidden_reason, hidden_by, endorsed_by FROM moderation WHERE cohort_id = ?1 AND week = ?2",
    )?;
    let rows = stmt.query_map(params![cohort_id, week], |r| {
        let reason: Option<String> = r.get(1)?;
        let by: Option<String> = r.get(2)?;
        Ok(ModerationRow {
            week,
            entry: r.get(0)?,
            hidden: reason.map(|reason| HiddenMark { reason, by: by.unwrap_or_default() }),
            endorsed_by: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The cohort's announcements, newest first.
pub fn announcements(conn: &Connection, cohort_id: &str) -> Result<Vec<AnnouncementRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key, author, body, created_at FROM announcements WHERE cohort_id = ?1 ORDER BY created_at DESC, key",
    )?;
    let rows = stmt.query_map([cohort_id], |r| {
        Ok(AnnouncementRow { key: r.get(0)?, author: r.get(1)?, body: r.get(2)?, created_at: r.get(3)? })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A facilitator's private note to her, as the device keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNote {
    pub seq: u64,
    pub id: String,
    pub from: String,
    pub body: String,
    pub created_at: i64,
}

/// The last note of the cohort this device holds (0: none): what the next sync asks after.
pub fn notes_watermark(conn: &Connection, cohort_id: &str) -> Result<u64> {
    let last: Option<i64> =
        conn.query_row("SELECT MAX(seq) FROM facilitator_notes WHERE cohort_id = ?1", [cohort_id], |r| r.get(0))?;
    Ok(last.and_then(|seq| u64::try_from(seq).ok()).unwrap_or(0))
}

/// Keeps notes the server sent (a note sent again is kept once).
pub fn store_notes(tx: &Transaction<'_>, cohort_id: &str, notes: &[WireNote]) -> Result<()> {
    for n in notes {
        tx.prepare_cached(
            "INSERT INTO facilitator_notes (cohort_id, seq, id, from_user, body, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT DO NOTHING",
        )?
        .execute(params![cohort_id, n.seq as i64, n.id, n.from, n.body, n.created_at])?;
    }
    Ok(())
}

/// Her notes in a cohort, newest first.
pub fn notes(conn: &Connection, cohort_id: &str) -> Result<Vec<StoredNote>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, id, from_user, body, created_at FROM facilitator_notes WHERE cohort_id = ?1 ORDER BY seq DESC",
    )?;
    let rows = stmt.query_map([cohort_id], |r| {
        Ok(StoredNote {
            seq: r.get::<_, i64>(0)? as u64,
            id: r.get(1)?,
            from: r.get(2)?,
            body: r.get(3)?,
            created_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
