//! The server's SQLite schema, versioned by `user_version` like the device's.

use rusqlite::Connection;

pub const VERSION: u32 = 9;

const V1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;

CREATE TABLE programs (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, blueprint TEXT NOT NULL,
    pack_id TEXT NOT NULL, pack_version INTEGER NOT NULL, pack_file TEXT NOT NULL, pack_toml TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE cohorts (
    id TEXT PRIMARY KEY, program_id TEXT NOT NULL REFERENCES programs (id), title TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE members (
    cohort_id TEXT NOT NULL REFERENCES cohorts (id), user_id TEXT NOT NULL, display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('learner', 'facilitator')), time_zone TEXT NOT NULL,
    joined_on TEXT NOT NULL, left_on TEXT,
    PRIMARY KEY (cohort_id, user_id)
) WITHOUT ROWID;

CREATE TABLE invites (
    code_hash BLOB PRIMARY KEY, cohort_id TEXT NOT NULL REFERENCES cohorts (id), role TEXT NOT NULL,
    display_name TEXT NOT NULL, time_zone TEXT NOT NULL, created_at INTEGER NOT NULL,
    used_at INTEGER, user_id TEXT
) WITHOUT ROWID;

CREATE TABLE devices (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, cohort_id TEXT NOT NULL, token_hash BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER
) WITHOUT ROWID;

-- Actor binding: an actor belongs to the user of its first change; NULL user = the server.
CREATE TABLE actors (actor BLOB PRIMARY KEY, user_id TEXT) WITHOUT ROWID;

CREATE TABLE docs (doc_id TEXT PRIMARY KEY, last_seq INTEGER NOT NULL) WITHOUT ROWID;

CREATE TABLE changes (
    doc_id TEXT NOT NULL, hash BLOB NOT NULL, actor BLOB NOT NULL, seq INTEGER NOT NULL,
    deps BLOB NOT NULL, body BLOB NOT NULL, doc_seq INTEGER NOT NULL,
    PRIMARY KEY (doc_id, hash)
) WITHOUT ROWID;
CREATE UNIQUE INDEX changes_in_order ON changes (doc_id, doc_seq);
CREATE UNIQUE INDEX changes_by_actor ON changes (doc_id, actor, seq);

CREATE TABLE doc_heads (doc_id TEXT NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (doc_id, hash)) WITHOUT ROWID;

-- The validator's index: every entry object and its owner ('' = the server).
CREATE TABLE doc_objects (
    doc_id TEXT NOT NULL, counter INTEGER NOT NULL, actor BLOB NOT NULL, container TEXT NOT NULL, owner TEXT NOT NULL,
    PRIMARY KEY (doc_id, counter, actor)
) WITHOUT ROWID;

CREATE TABLE practice_logs (
    seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, user_id TEXT NOT NULL, cohort_id TEXT NOT NULL,
    body TEXT NOT NULL, received_at INTEGER NOT NULL
);
CREATE INDEX practice_logs_by_cohort ON practice_logs (cohort_id, seq);
";

/// Snapshots written in the background: a document saved up to `upto_seq`, so loading it (for
/// the server's own roster writes) need not replay every change row.
const V2: &str = "
CREATE TABLE doc_snapshots (doc_id TEXT PRIMARY KEY, upto_seq INTEGER NOT NULL, bytes BLOB NOT NULL) WITHOUT ROWID;
";

/// What the trust boundary needs (see `policy::history`): each change's operation counters and an
/// index to find the change holding an operation, entry keys, per-user bytes per document, the
/// changes `admin repair` removed, and practice logs by learner and day. Counters and keys of
/// existing rows are filled in by [`backfill`].
const V3: &str = "
ALTER TABLE changes ADD COLUMN start_op INTEGER;
ALTER TABLE changes ADD COLUMN max_op INTEGER;
-- Every change with doc_seq up to base_seq is in this change's history (0: nothing known).
ALTER TABLE changes ADD COLUMN base_seq INTEGER NOT NULL DEFAULT 0;
CREATE INDEX changes_by_op ON changes (doc_id, actor, start_op);
ALTER TABLE doc_objects ADD COLUMN key TEXT NOT NULL DEFAULT '';
CREATE INDEX doc_objects_by_key ON doc_objects (doc_id, container, key);
CREATE TABLE doc_usage (
    doc_id TEXT NOT NULL, user_id TEXT NOT NULL, bytes INTEGER NOT NULL, PRIMARY KEY (doc_id, user_id)
) WITHOUT ROWID;
INSERT INTO doc_usage (doc_id, user_id, bytes)
    SELECT c.doc_id, a.user_id, SUM(length(c.body)) FROM changes c JOIN actors a ON a.actor = c.actor
    WHERE a.user_id IS NOT NULL GROUP BY c.doc_id, a.user_id;
CREATE TABLE removed_changes (
    doc_id TEXT NOT NULL, hash BLOB NOT NULL, reason TEXT NOT NULL, removed_at INTEGER NOT NULL,
    PRIMARY KEY (doc_id, hash)
) WITHOUT ROWID;
ALTER TABLE practice_logs ADD COLUMN local_date TEXT NOT NULL DEFAULT '';
UPDATE practice_logs SET local_date = COALESCE(json_extract(body, '$.local_date'), '');
CREATE INDEX practice_logs_by_day ON practice_logs (user_id, local_date);
";

/// A person is one row whatever her devices and cohorts. Her profile (zone, day start, reminder
/// settings) is what every device and the server compute her days with; the newest change from
/// any of her devices wins. Each membership keeps her current zone and day start for reports. An
/// invite may be for an existing person (a new device, another cohort).
const V4: &str = "
CREATE TABLE users (
    id TEXT PRIMARY KEY, time_zone TEXT NOT NULL, day_start_minutes INTEGER NOT NULL DEFAULT 0,
    reminders TEXT NOT NULL DEFAULT '', profile_changed_at INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO users (id, time_zone, created_at) SELECT user_id, MIN(time_zone), 0 FROM members GROUP BY user_id;
ALTER TABLE members ADD COLUMN day_start_minutes INTEGER NOT NULL DEFAULT 0;
CREATE INDEX members_by_user ON members (user_id);
ALTER TABLE invites ADD COLUMN for_user TEXT;
CREATE INDEX devices_by_user ON devices (user_id);
CREATE INDEX practice_logs_by_user ON practice_logs (user_id, cohort_id, seq);
-- Short-lived codes a person's device shows to link another of her devices.
CREATE TABLE link_codes (
    code_hash BLOB PRIMARY KEY, user_id TEXT NOT NULL, cohort_id TEXT NOT NULL, shown_by TEXT NOT NULL,
    expires_at INTEGER NOT NULL, used_at INTEGER
) WITHOUT ROWID;
";

/// When the server first stored each entry: lateness is a server fact, not a field its author
/// writes (NULL for entries stored before this version: never late). Invites expire.
const V5: &str = "
ALTER TABLE doc_objects ADD COLUMN stored_at INTEGER;
-- Invites stop working (NULL: made before invites expired).
ALTER TABLE invites ADD COLUMN expires_at INTEGER;
CREATE INDEX invites_by_cohort ON invites (cohort_id, created_at);
";

/// Until when each person has looked at what her cohort did (the unread mark of all her devices).
const V6: &str = "
ALTER TABLE users ADD COLUMN seen_until INTEGER NOT NULL DEFAULT 0;
";

/// A document's changes stored in the order they arrived, not scattered by hash: a push appends
/// to the document's last page and a device's catch-up reads consecutive rows, where keying rows
/// by hash put each write on a random one of the document's ~40 pages (a page cache miss and a
/// page written per write, measured with sync-load). The indexes point to the narrow key.
const V9: &str = "
CREATE TABLE changes_in_arrival (
    doc_id TEXT NOT NULL, doc_seq INTEGER NOT NULL, hash BLOB NOT NULL, actor BLOB NOT NULL, seq INTEGER NOT NULL,
    start_op INTEGER, max_op INTEGER, base_seq INTEGER NOT NULL DEFAULT 0, deps BLOB NOT NULL, body BLOB NOT NULL,
    PRIMARY KEY (doc_id, doc_seq)
) WITHOUT ROWID;
INSERT INTO changes_in_arrival (doc_id, doc_seq, hash, actor, seq, start_op, max_op, base_seq, deps, body)
    SELECT doc_id, doc_seq, hash, actor, seq, start_op, max_op, base_seq, deps, body FROM changes ORDER BY doc_id, doc_seq;
DROP TABLE changes;
ALTER TABLE changes_in_arrival RENAME TO changes;
CREATE UNIQUE INDEX changes_by_hash ON changes (doc_id, hash);
CREATE UNIQUE INDEX changes_by_actor ON changes (doc_id, actor, seq);
CREATE INDEX changes_by_op ON changes (doc_id, actor, start_op);
";

/// The database's schema version, and an error for one written by a newer server.
pub fn check_version(conn: &Connection) -> Result<u32, String> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(|e| e.to_string())?;
    if version > VERSION {
        return Err(format!(
            "the database has schema version {version}, newer than this server's {VERSION}: upgrade the server"
        ));
    }
    Ok(version)
}

/// The critique weeks a facilitator changed, per cohort (JSON, as the cohort document holds
/// them): read with the cohort's program on every sync, so no extra query. Facilitators' private
/// notes to one member, numbered per cohort in commit order (a device asks after the last it has).
/// Baselines imported from outside (per-learner activity of an earlier program).
const V7: &str = "
ALTER TABLE cohorts ADD COLUMN critique_weeks TEXT NOT NULL DEFAULT '{}';
ALTER TABLE members ADD COLUMN paused_on TEXT;

CREATE TABLE member_notes (
    cohort_id TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL, from_user TEXT NOT NULL,
    to_user TEXT NOT NULL, body TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (cohort_id, seq), UNIQUE (from_user, id)
);
CREATE INDEX member_notes_to ON member_notes (to_user, cohort_id, seq);
-- Per-learner activity of an earlier program (`admin import-baseline`), for a report's uplift.
CREATE TABLE baselines (
    program_id TEXT NOT NULL, learner TEXT NOT NULL, start_date TEXT NOT NULL, active_dates TEXT NOT NULL,
    PRIMARY KEY (program_id, learner)
);
";

/// Arms: a cohort belongs to the cohort arm or to a control arm (the practice loop alone). A
/// program that draws arms at random keeps its seed and how many draws it made; an invite keeps
/// how its learner was assigned (JSON, `domain::arms::Assignment`; NULL: the operator's cohort).
/// Transfer stories learners shared with the program team; learners' calibration ratings.
const V8: &str = "
ALTER TABLE cohorts ADD COLUMN arm TEXT NOT NULL DEFAULT 'cohort';
ALTER TABLE programs ADD COLUMN arm_seed BIGINT;
ALTER TABLE programs ADD COLUMN arm_draws BIGINT NOT NULL DEFAULT 0;
ALTER TABLE invites ADD COLUMN assignment TEXT;
-- Transfer stories learners shared with the program team, one per practice log.
CREATE TABLE transfer_stories (
    log_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, cohort_id TEXT NOT NULL, prompt_id TEXT NOT NULL,
    local_date TEXT NOT NULL, kind TEXT NOT NULL, note TEXT NOT NULL, link TEXT, shared_at BIGINT NOT NULL
);
CREATE INDEX transfer_stories_by_cohort ON transfer_stories (cohort_id);
-- Learners' ratings of the program pack's calibration exemplars, the newest per exemplar.
CREATE TABLE calibration_ratings (
    cohort_id TEXT NOT NULL, user_id TEXT NOT NULL, exemplar_id TEXT NOT NULL, scores TEXT NOT NULL,
    rated_at BIGINT NOT NULL,
    PRIMARY KEY (cohort_id, user_id, exemplar_id)
);
";

pub fn migrate(conn: &mut Connection) -> Result<(), String> {
    let version = check_version(conn)?;
    let sql = |e: rusqlite::Error| e.to_string();
    for (target, statements) in [(1, V1), (2, V2), (3, V3), (4, V4), (5, V5), (6, V6), (7, V7), (8, V8), (9, V9)] {
        if version < target {
            let tx = conn.transaction().map_err(sql)?;
            tx.execute_batch(statements).map_err(sql)?;
            if target == 3 {
                backfill(&tx)?;
            }
            tx.pragma_update(None, "user_version", target).map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
    }
    Ok(())
}

/// Fills the operation counters of stored changes and the keys of stored entries.
fn backfill(tx: &Connection) -> Result<(), String> {
    let sql = |e: rusqlite::Error| e.to_string();
    let mut rows = tx.prepare("SELECT doc_id, hash, body FROM changes").map_err(sql)?;
    let rows: Vec<(String, Vec<u8>, Vec<u8>)> = rows
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .map_err(sql)?
        .collect::<Result<_, _>>()
        .map_err(sql)?;
    super::documents::backfill_rows(
        rows,
        |doc, hash, start, max| {
            let update = "UPDATE changes SET start_op = ?1, max_op = ?2 WHERE doc_id = ?3 AND hash = ?4";
            tx.execute(update, rusqlite::params![start, max, doc, hash]).map(|_| ()).map_err(sql)
        },
        |doc, counter, actor, key| {
            let update = "UPDATE doc_objects SET key = ?1 WHERE doc_id = ?2 AND counter = ?3 AND actor = ?4";
            tx.execute(update, rusqlite::params![key, doc, counter, actor]).map(|_| ()).map_err(sql)
        },
    )
}

#[cfg(test)]
mod tests {
    use automerge::ActorId;
    use microcohort_core::docs::{DocId, genesis};
    use rusqlite::params;

    use super::*;
    use crate::storage::sample_changes::feedback_entry;

    /// A database as version 2 left it, holding a week with one entry and a practice log.
    fn version_two() -> (Connection, automerge::Change) {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(V1).unwrap();
        conn.execute_batch(V2).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        let doc = DocId::week("c1", 1);
        let mut week = genesis(&doc);
        let first = week.get_changes(&[]).pop().unwrap();
        let actor = ActorId::random();
        week.set_actor(actor.clone());
        let entry_change = feedback_entry(&mut week, "u1/f");
        for (seq, change) in [&first, &entry_change].into_iter().enumerate() {
            conn.execute(
                "INSERT INTO changes (doc_id, hash, actor, seq, deps, body, doc_seq) VALUES (?1, ?2, ?3, 1, x'', ?4, ?5)",
                params![doc.to_string(), change.hash().0, change.actor_id().to_bytes(), change.raw_bytes(), seq as i64 + 1],
            )
            .unwrap();
        }
        conn.execute("INSERT INTO actors (actor, user_id) VALUES (?1, 'u1')", [actor.to_bytes()]).unwrap();
        conn.execute(
            "INSERT INTO doc_objects (doc_id, counter, actor, container, owner) VALUES ('week:c1:1', ?1, ?2, 'feedback', 'u1')",
            params![entry_change.start_op().get() as i64, actor.to_bytes()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO practice_logs (id, user_id, cohort_id, body, received_at) VALUES ('l1', 'u1', 'c1', ?1, 0)",
            [r#"{"local_date":"2026-03-09"}"#],
        )
        .unwrap();
        (conn, entry_change)
    }

    #[test]
    fn version_two_is_migrated_with_its_rows_filled_in_and_a_newer_database_is_refused() {
        let (mut conn, entry) = version_two();
        migrate(&mut conn).unwrap();
        assert_eq!(check_version(&conn).unwrap(), VERSION);
        let (start, max): (i64, i64) = conn
            .query_row("SELECT start_op, max_op FROM changes WHERE hash = ?1", [entry.hash().0], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((start, max), (entry.start_op().get() as i64, entry.start_op().get() as i64 + 1));
        let key: String = conn.query_row("SELECT key FROM doc_objects", [], |r| r.get(0)).unwrap();
        assert_eq!(key, "u1/f");
        let bytes: i64 = conn.query_row("SELECT bytes FROM doc_usage WHERE user_id = 'u1'", [], |r| r.get(0)).unwrap();
        assert_eq!(bytes, entry.raw_bytes().len() as i64);
        let day: String = conn.query_row("SELECT local_date FROM practice_logs", [], |r| r.get(0)).unwrap();
        assert_eq!(day, "2026-03-09");

        conn.pragma_update(None, "user_version", VERSION + 1).unwrap();
        let refused = migrate(&mut conn).unwrap_err();
        assert!(refused.contains("newer than this server"), "{refused}");
    }
}
