//! Her ratings of a pack's calibration exemplars: the newest per exemplar, kept on the device
//! and sent until the server has that rating.

use rusqlite::{Connection, Transaction, params};

use super::prompts::{from_json, json};
use crate::error::Result;
use crate::sync::wire::{RefusedLog, WireCalibration};

/// Keeps her rating of an exemplar (a new rating replaces the old and goes again).
pub fn rate(tx: &Transaction<'_>, program_id: &str, exemplar_id: &str, scores: &[u8], at: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO calibration_ratings (program_id, exemplar_id, scores, rated_at, sent) VALUES (?1, ?2, ?3, ?4, 0)
         ON CONFLICT (program_id, exemplar_id) DO UPDATE SET scores = ?3, rated_at = ?4, sent = 0, refused = NULL",
    )?
    .execute(params![program_id, exemplar_id, json(&scores)?, at])?;
    Ok(())
}

/// One of her ratings: the exemplar, her scores, and why the server refused it, if it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rating {
    pub exemplar_id: String,
    pub scores: Vec<u8>,
    pub refused: Option<String>,
}

/// Her ratings in a program.
pub fn ratings(conn: &Connection, program_id: &str) -> Result<Vec<Rating>> {
    let mut stmt = conn.prepare_cached(
        "SELECT exemplar_id, scores, refused FROM calibration_ratings WHERE program_id = ?1 ORDER BY exemplar_id",
    )?;
    let rows = stmt.query_map([program_id], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, Option<String>>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (exemplar_id, scores, refused) = row?;
        out.push(Rating { exemplar_id, scores: from_json(&scores)?, refused });
    }
    Ok(out)
}

/// Ratings of a program the server does not have yet.
pub fn unsent(conn: &Connection, program_id: &str) -> Result<Vec<WireCalibration>> {
    let mut stmt = conn.prepare_cached(
        "SELECT exemplar_id, scores, rated_at FROM calibration_ratings WHERE program_id = ?1 AND sent = 0
         ORDER BY exemplar_id LIMIT ?2",
    )?;
    // At most what one request takes; the rest go next time.
    let limit = crate::sync::limits::MAX_CALIBRATION_PER_REQUEST as i64;
    let rows = stmt.query_map(params![program_id, limit], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (exemplar_id, scores, rated_at) = row?;
        out.push(WireCalibration { exemplar_id, scores: from_json(&scores)?, rated_at });
    }
    Ok(out)
}

/// The server has these ratings (`(exemplar, rated_at)`): not sent again unless she rated the
/// exemplar anew meanwhile. Refused ones are not sent again either (the server never takes
/// them); the reason stays for the app to show.
pub fn answered(tx: &Transaction<'_>, program_id: &str, acked: &[(String, i64)], refused: &[RefusedLog]) -> Result<()> {
    for (exemplar_id, rated_at) in acked {
        tx.prepare_cached(
            "UPDATE calibration_ratings SET sent = 1 WHERE program_id = ?1 AND exemplar_id = ?2 AND rated_at = ?3",
        )?
        .execute(params![program_id, exemplar_id, rated_at])?;
    }
    for r in refused {
        tx.prepare_cached(
            "UPDATE calibration_ratings SET sent = 1, refused = ?3 WHERE program_id = ?1 AND exemplar_id = ?2",
        )?
        .execute(params![program_id, r.id, format!("{}: {}", r.reason, r.detail)])?;
    }
    Ok(())
}
