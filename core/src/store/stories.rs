//! Transfer stories a learner chose to share with the program team: kept until the server took
//! them (or refused one), then kept with that outcome for the app to show.

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::domain::practice::TransferEvidence;
use crate::error::Result;
use crate::sync::wire::{RefusedLog, WireStory};

/// Where a shared story is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoryState {
    /// Goes with the next sync.
    Pending,
    /// The program team has it.
    Shared,
    /// The server refused it (the reason: `unknown_log`, `not_yours`).
    Refused(String),
}

/// Queues a story once per log (sharing it again keeps the first).
pub fn add(tx: &Transaction<'_>, log_id: &str, program_id: &str, evidence: &TransferEvidence) -> Result<()> {
    let json = serde_json::to_string(evidence).map_err(|e| crate::Error::Corrupt(e.to_string()))?;
    tx.prepare_cached(
        "INSERT INTO transfer_stories (log_id, program_id, evidence, state) VALUES (?1, ?2, ?3, 'pending')
         ON CONFLICT (log_id) DO NOTHING",
    )?
    .execute(params![log_id, program_id, json])?;
    Ok(())
}

/// Pending stories of a program whose log the server has (not waiting in the outbox) or that
/// goes in the same request (`sending`).
pub fn pending(conn: &Connection, program_id: &str, sending: &dyn Fn(&str) -> bool) -> Result<Vec<WireStory>> {
    let mut stmt = conn.prepare_cached(
        "SELECT s.log_id, s.evidence,
                EXISTS (SELECT 1 FROM outbox o WHERE o.kind = 'practice_log' AND o.entity_id = s.log_id)
         FROM transfer_stories s WHERE s.program_id = ?1 AND s.state = 'pending' ORDER BY s.log_id LIMIT ?2",
    )?;
    // At most what one request takes; the rest go next time.
    let limit = crate::sync::limits::MAX_LOGS_PER_REQUEST as i64;
    let rows = stmt
        .query_map(params![program_id, limit], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))?;
    let mut out = Vec::new();
    for row in rows {
        let (log_id, json, waiting): (String, String, bool) = row?;
        if waiting && !sending(&log_id) {
            continue;
        }
        // Written by this device; one it cannot read stays pending and is shown as such.
        if let Ok(evidence) = serde_json::from_str(&json) {
            out.push(WireStory { log_id, evidence });
        }
    }
    Ok(out)
}

/// Records the server's answer.
pub fn answered(tx: &Transaction<'_>, acked: &[String], refused: &[RefusedLog]) -> Result<()> {
    for id in acked {
        tx.prepare_cached("UPDATE transfer_stories SET state = 'shared' WHERE log_id = ?1")?.execute([id])?;
    }
    for r in refused {
        tx.prepare_cached("UPDATE transfer_stories SET state = 'refused', detail = ?2 WHERE log_id = ?1")?
            .execute(params![r.id, r.reason])?;
    }
    Ok(())
}

/// Where the story about a log is, if she shared one.
pub fn state(conn: &Connection, log_id: &str) -> Result<Option<StoryState>> {
    let row: Option<(String, Option<String>)> = conn
        .query_row("SELECT state, detail FROM transfer_stories WHERE log_id = ?1", [log_id], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()?;
    Ok(row.map(|(state, detail)| match state.as_str() {
        "shared" => StoryState::Shared,
        "refused" => StoryState::Refused(detail.unwrap_or_default()),
        _ => StoryState::Pending,
    }))
}
