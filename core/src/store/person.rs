//! What on the device belongs to its person, as one list: "delete my data on this device" and a
//! change of person remove exactly these tables, and a test keeps the list complete as tables
//! are added. The prompt library is the program's, not the person's, and stays.

use rusqlite::{Connection, OptionalExtension, Transaction};

use super::cohort::DOC_TABLES;
use crate::private_text::PersonKey;

use crate::error::Result;

/// Her own data: practice, settings, her key, this device's actor.
const OWN_TABLES: [&str; 15] = [
    "person_key",
    "selection",
    "notified_events",
    "read_marks",
    "refused_logs",
    "enrollments",
    "profile",
    "practice_sessions",
    "practice_logs",
    "daily_activity",
    "outbox",
    "transfer_stories",
    "calibration_ratings",
    "calendar_export",
    "device",
];

/// What the device holds of her cohorts besides their documents (`cohort::DOC_TABLES`): the
/// memberships, rosters, relayed logs and the link. Leaving one cohort removes its part
/// (`cohort::forget_membership`); her own practice, settings and key stay.
const COHORT_TABLES: [&str; 8] = [
    "memberships",
    "roster",
    "critique_weeks",
    "moderation",
    "announcements",
    "facilitator_notes",
    "server_link",
    "cohort_practice_logs",
];

/// Tables that are not the person's: the prompt library, shared by whoever uses the device, and
/// where this database keeps its secrets.
#[cfg(test)]
const KEPT_TABLES: [&str; 3] = ["prompt_packs", "prompts", "secret_home"];

/// The key her private text is sealed with, if this device has it.
pub fn key(conn: &Connection) -> Result<Option<PersonKey>> {
    let bytes: Option<Vec<u8>> =
        conn.query_row("SELECT key FROM person_key WHERE id = 1", [], |r| r.get(0)).optional()?;
    Ok(bytes.and_then(|b| PersonKey::from_bytes(&b)))
}

pub fn save_key(tx: &Transaction<'_>, key: &PersonKey) -> Result<()> {
    tx.execute(
        "INSERT INTO person_key (id, key) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET key = ?1",
        [key.as_bytes().as_slice()],
    )?;
    Ok(())
}

/// A database of a person's only device, from before keys existed, gets her key now.
pub fn key_for_earlier_person(tx: &Transaction<'_>) -> Result<()> {
    let joined: bool = tx.query_row("SELECT EXISTS (SELECT 1 FROM membership)", [], |r| r.get(0))?;
    if joined && key(tx)?.is_none() {
        save_key(tx, &PersonKey::generate())?;
    }
    Ok(())
}

/// Removes the person's data: practice and reflections, cohort copies, sign-in, device actor.
pub fn forget_person(tx: &Transaction<'_>) -> Result<()> {
    for table in COHORT_TABLES.iter().chain(DOC_TABLES.iter()) {
        tx.execute(&format!("DELETE FROM {table}"), [])?;
    }
    for table in OWN_TABLES {
        tx.execute(&format!("DELETE FROM {table}"), [])?;
    }
    Ok(())
}

/// `(practice logs, shared stories and calibration ratings; cohort entries)` recorded here and not
/// yet on the server.
pub fn unsent(conn: &Connection) -> Result<(u64, u64)> {
    let logs: i64 = conn.query_row(
        "SELECT (SELECT COUNT(*) FROM outbox) + (SELECT COUNT(*) FROM transfer_stories WHERE state = 'pending')
              + (SELECT COUNT(*) FROM calibration_ratings WHERE sent = 0)",
        [],
        |r| r.get(0),
    )?;
    let intents: i64 = conn.query_row("SELECT COUNT(*) FROM doc_intents", [], |r| r.get(0))?;
    Ok((logs.max(0) as u64, intents.max(0) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_is_either_the_persons_or_kept() {
        let mut conn = Connection::open_in_memory().unwrap();
        crate::store::schema::migrate(&mut conn).unwrap();
        let mut stmt = conn
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap();
        let mut tables: Vec<String> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        let listed = OWN_TABLES.iter().chain(COHORT_TABLES.iter()).chain(DOC_TABLES.iter()).chain(KEPT_TABLES.iter());
        let mut listed: Vec<String> = listed.map(|t| t.to_string()).collect();
        tables.sort();
        listed.sort();
        assert_eq!(tables, listed, "a new table must be listed, once, as the person's, the cohort's or kept");
    }
}
