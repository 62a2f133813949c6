//! Versioned migrations by `PRAGMA user_version`. Each step runs in its own transaction together
//! with the version bump, so a crash mid-upgrade leaves the previous, consistent version.
//! `tests` below upgrade every earlier version and compare with a fresh database.

use rusqlite::Connection;

use crate::error::{Error, Result};

/// The schema version this code writes.
pub const VERSION: u32 = 16;

/// `MIGRATIONS[n]` upgrades version `n` to `n + 1`.
const MIGRATIONS: [&str; VERSION as usize] = [
    V1_BASE,
    V2_DAILY_ACTIVITY,
    V3_COHORT_DOCUMENTS,
    V4_SYNC,
    V5_INTENTS,
    V6_PEOPLE,
    V7_SHARED_LOG,
    V8_SECRET_HOME,
    V9_ROLE_EXPECTATIONS,
    V10_NOTIFIED_EVENTS,
    V11_AGENDA_EDITS,
    V12_CAPSTONE_SCORES,
    V13_READ_MARKS,
    V14_MEMBERSHIPS,
    V15_FACILITATION,
    V16_ARMS,
];

/// Tables keyed by a text id are WITHOUT ROWID: one b-tree per table instead of a table plus an
/// index, so logging a practice touches fewer pages.
const V1_BASE: &str = "
CREATE TABLE prompt_packs (
    pack_id      TEXT NOT NULL,
    version      INTEGER NOT NULL,
    title        TEXT NOT NULL,
    description  TEXT NOT NULL,
    capstone     TEXT,               -- JSON, optional
    source_name  TEXT NOT NULL,
    imported_at  INTEGER NOT NULL,
    PRIMARY KEY (pack_id, version)
) WITHOUT ROWID;

CREATE TABLE prompts (
    pack_id    TEXT NOT NULL,
    version    INTEGER NOT NULL,
    prompt_id  TEXT NOT NULL,
    position   INTEGER NOT NULL,     -- file order
    week       INTEGER NOT NULL,
    day        INTEGER NOT NULL,
    title      TEXT NOT NULL,
    minutes    INTEGER NOT NULL,
    tags       TEXT NOT NULL,        -- JSON array
    rubric     TEXT NOT NULL,        -- JSON array
    body       TEXT NOT NULL,
    PRIMARY KEY (pack_id, version, prompt_id),
    FOREIGN KEY (pack_id, version) REFERENCES prompt_packs (pack_id, version)
) WITHOUT ROWID;

CREATE TABLE enrollment (
    id             INTEGER PRIMARY KEY CHECK (id = 1),
    program_id     TEXT NOT NULL,
    program_title  TEXT NOT NULL,
    pack_id        TEXT NOT NULL,
    blueprint      TEXT NOT NULL,    -- JSON
    enrolled_at    INTEGER NOT NULL
);

CREATE TABLE profile (
    id                 INTEGER PRIMARY KEY CHECK (id = 1),
    time_zone          TEXT NOT NULL,
    day_start_minutes  INTEGER NOT NULL,
    reminders          TEXT NOT NULL -- JSON
);

CREATE TABLE practice_sessions (
    id            TEXT PRIMARY KEY,
    program_id    TEXT NOT NULL,
    pack_id       TEXT NOT NULL,
    pack_version  INTEGER NOT NULL,
    prompt_id     TEXT NOT NULL,
    started_at    INTEGER NOT NULL,
    time_zone     TEXT NOT NULL,
    local_date    TEXT NOT NULL
) WITHOUT ROWID;

-- Append-only: a correction is a new row naming the row it voids in `corrects`.
CREATE TABLE practice_logs (
    id             TEXT PRIMARY KEY,
    program_id     TEXT NOT NULL,
    pack_id        TEXT NOT NULL,
    pack_version   INTEGER NOT NULL,
    prompt_id      TEXT NOT NULL,
    started_at     INTEGER NOT NULL,
    time_zone      TEXT NOT NULL,
    local_date     TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('completed', 'abandoned')),
    duration_secs  INTEGER,
    reflection     TEXT NOT NULL DEFAULT '',
    transfer_kind  TEXT CHECK (transfer_kind IN ('applied_at_work', 'portfolio')),
    transfer_note  TEXT,
    transfer_link  TEXT,
    corrects       TEXT UNIQUE REFERENCES practice_logs (id),
    recorded_at    INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX practice_logs_by_day ON practice_logs (program_id, local_date);

-- Pending intents for the sync client, oldest first. (No AUTOINCREMENT: its bookkeeping table
-- would cost every practice an extra write, and a reused number after a delete is harmless.)
CREATE TABLE outbox (
    seq         INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    entity_id   TEXT NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE calendar_export (
    id           INTEGER PRIMARY KEY CHECK (id = 1),
    fingerprint  TEXT NOT NULL,
    sequence     INTEGER NOT NULL
);
";

/// A per-day summary of effective completed practices, kept in step with `practice_logs` in the
/// same transaction, so the today screen reads one small row per day instead of every log.
const V2_DAILY_ACTIVITY: &str = "
CREATE TABLE daily_activity (
    program_id  TEXT NOT NULL,
    local_date  TEXT NOT NULL,
    practices   INTEGER NOT NULL,
    seconds     INTEGER NOT NULL,
    PRIMARY KEY (program_id, local_date)
) WITHOUT ROWID;

INSERT INTO daily_activity (program_id, local_date, practices, seconds)
SELECT program_id, local_date, COUNT(*), SUM(duration_secs)
FROM practice_logs AS log
WHERE status = 'completed'
  AND NOT EXISTS (SELECT 1 FROM practice_logs AS later WHERE later.corrects = log.id)
GROUP BY program_id, local_date;
";

/// Cohort documents (automerge chunks) and their projections, which the UI and metrics read.
const V3_COHORT_DOCUMENTS: &str = "
CREATE TABLE device (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    actor  BLOB NOT NULL              -- this device's automerge actor id
);

CREATE TABLE membership (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    cohort_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL
);

-- A document is its chunks in order: a snapshot, then incremental saves.
CREATE TABLE doc_chunks (
    doc_id    TEXT NOT NULL,
    seq       INTEGER NOT NULL,
    snapshot  INTEGER NOT NULL,
    bytes     BLOB NOT NULL,
    PRIMARY KEY (doc_id, seq)
) WITHOUT ROWID;

CREATE TABLE submissions (
    doc_id TEXT NOT NULL, week INTEGER NOT NULL, key TEXT NOT NULL, author TEXT NOT NULL,
    kind TEXT NOT NULL, title TEXT NOT NULL, body TEXT NOT NULL, prompt_id TEXT, attachments TEXT NOT NULL,
    created_at INTEGER NOT NULL, edited_at INTEGER, retracted INTEGER NOT NULL, late INTEGER NOT NULL,
    PRIMARY KEY (doc_id, key)
) WITHOUT ROWID;

CREATE TABLE feedback (
    doc_id TEXT NOT NULL, week INTEGER NOT NULL, key TEXT NOT NULL, author TEXT NOT NULL,
    submission TEXT NOT NULL, body TEXT NOT NULL, suggestion TEXT, criteria TEXT NOT NULL,
    created_at INTEGER NOT NULL, edited_at INTEGER, retracted INTEGER NOT NULL, late INTEGER NOT NULL,
    PRIMARY KEY (doc_id, key)
) WITHOUT ROWID;
CREATE INDEX feedback_by_submission ON feedback (doc_id, submission);

CREATE TABLE replies (
    doc_id TEXT NOT NULL, week INTEGER NOT NULL, key TEXT NOT NULL, author TEXT NOT NULL,
    feedback TEXT NOT NULL, parent TEXT, body TEXT NOT NULL,
    created_at INTEGER NOT NULL, edited_at INTEGER, retracted INTEGER NOT NULL, late INTEGER NOT NULL,
    PRIMARY KEY (doc_id, key)
) WITHOUT ROWID;

CREATE TABLE ratings (
    doc_id TEXT NOT NULL, week INTEGER NOT NULL, key TEXT NOT NULL, author TEXT NOT NULL,
    feedback TEXT NOT NULL, score INTEGER NOT NULL, counted INTEGER NOT NULL,
    created_at INTEGER NOT NULL, edited_at INTEGER,
    PRIMARY KEY (doc_id, key)
) WITHOUT ROWID;

CREATE TABLE attendance (
    doc_id TEXT NOT NULL, week INTEGER NOT NULL, key TEXT NOT NULL, author TEXT NOT NULL,
    member TEXT NOT NULL, present INTEGER NOT NULL, created_at INTEGER NOT NULL, edited_at INTEGER,
    PRIMARY KEY (doc_id, key)
) WITHOUT ROWID;

CREATE TABLE agenda (
    doc_id TEXT NOT NULL, week INTEGER NOT NULL, key TEXT NOT NULL, author TEXT NOT NULL,
    submission TEXT NOT NULL, position INTEGER NOT NULL, note TEXT NOT NULL, created_at INTEGER NOT NULL,
    PRIMARY KEY (doc_id, key)
) WITHOUT ROWID;

CREATE TABLE synthesis (
    doc_id TEXT PRIMARY KEY, week INTEGER NOT NULL, text TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE roster (
    cohort_id TEXT NOT NULL, user_id TEXT NOT NULL, display_name TEXT NOT NULL, role TEXT NOT NULL,
    time_zone TEXT NOT NULL, joined_on TEXT NOT NULL, left_on TEXT,
    PRIMARY KEY (cohort_id, user_id)
) WITHOUT ROWID;
";

/// The link to the sync server and what it has acknowledged.
const V4_SYNC: &str = "
CREATE TABLE server_link (
    id              INTEGER PRIMARY KEY CHECK (id = 1),
    server_url      TEXT NOT NULL,
    device_id       TEXT NOT NULL,
    device_token    TEXT NOT NULL,
    logs_watermark  INTEGER NOT NULL DEFAULT 0,
    last_attempt    INTEGER,
    last_success    INTEGER,
    last_error      TEXT
);

-- The heads the server acknowledged per document (concatenated 32-byte hashes).
CREATE TABLE doc_sync (
    doc_id        TEXT PRIMARY KEY,
    server_heads  BLOB NOT NULL
) WITHOUT ROWID;

-- Cohort members' practice logs relayed to a facilitator's device (no reflections).
CREATE TABLE cohort_practice_logs (
    id             TEXT PRIMARY KEY,
    user_id        TEXT NOT NULL,
    program_id     TEXT NOT NULL,
    prompt_id      TEXT NOT NULL,
    local_date     TEXT NOT NULL,
    time_zone      TEXT NOT NULL,
    status         TEXT NOT NULL,
    duration_secs  INTEGER,
    transfer_kind  TEXT,
    corrects       TEXT,
    recorded_at    INTEGER NOT NULL
) WITHOUT ROWID;
";

/// What the user meant by each local document change, kept until the server accepted it.
const V5_INTENTS: &str = "
CREATE TABLE doc_intents (
    seq          INTEGER PRIMARY KEY,
    doc_id       TEXT NOT NULL,
    intent       TEXT NOT NULL,     -- JSON
    change_hash  BLOB NOT NULL,
    created_at   INTEGER NOT NULL
);
CREATE INDEX doc_intents_by_doc ON doc_intents (doc_id, seq);

-- Documents whose local branch was dropped after a refusal: their intents wait for the
-- server's copy and are replayed on it (kept here so an interrupted sync cannot forget them).
CREATE TABLE replay_needed (doc_id TEXT PRIMARY KEY) WITHOUT ROWID;

-- Intents that could not be replayed after the server refused their document's branch.
CREATE TABLE failed_intents (
    seq        INTEGER PRIMARY KEY,
    doc_id     TEXT NOT NULL,
    intent     TEXT NOT NULL,
    reason     TEXT NOT NULL,
    failed_at  INTEGER NOT NULL
);
";

/// A person across devices: the device's own profile records when it last changed and whether
/// the server has it; every roster member carries her day start; her private-text key; a device that joined for a
/// person fetches her practice history from the server (`history_after`: where the next page
/// starts, NULL once it has all of it).
const V6_PEOPLE: &str = "
ALTER TABLE profile ADD COLUMN changed_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE profile ADD COLUMN synced INTEGER NOT NULL DEFAULT 1;
ALTER TABLE roster ADD COLUMN day_start_minutes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE server_link ADD COLUMN history_after INTEGER;
-- The key the person's private text is sealed with for her own devices (never sent to the server).
CREATE TABLE person_key (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    key  BLOB NOT NULL
);
";

/// A shared practice names its log; relayed logs carry the server's late-arrival mark; logs the
/// server refused are kept with its reason; the entries the server says arrived late.
const V7_SHARED_LOG: &str = "
ALTER TABLE submissions ADD COLUMN practice_log TEXT;
ALTER TABLE cohort_practice_logs ADD COLUMN late_arrival INTEGER NOT NULL DEFAULT 0;
CREATE TABLE late_entries (
    doc_id  TEXT NOT NULL,
    key     TEXT NOT NULL,
    PRIMARY KEY (doc_id, key)
) WITHOUT ROWID;
CREATE TABLE refused_logs (
    id          TEXT PRIMARY KEY,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    refused_at  INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Where the device token and the person's key live (see `secrets`): `scope` names this database's
/// entries in the app's secure storage; `in_app_store` once they moved out of this file.
const V8_SECRET_HOME: &str = "
CREATE TABLE secret_home (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    scope         TEXT NOT NULL,
    in_app_store  INTEGER NOT NULL
);
INSERT INTO secret_home (id, scope, in_app_store) VALUES (1, lower(hex(randomblob(16))), 0);
";

/// What a prompt pack says each weekly role is expected to do (pack format 2), as JSON.
const V9_ROLE_EXPECTATIONS: &str = "
ALTER TABLE prompt_packs ADD COLUMN roles TEXT NOT NULL DEFAULT '[]';
";

/// Cohort events already handed to the app as notifications (see `store::notified`).
const V10_NOTIFIED_EVENTS: &str = "
CREATE TABLE notified_events (
    id  TEXT PRIMARY KEY,
    at  INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Agenda items can be moved and taken off the agenda: their projection keeps both.
const V11_AGENDA_EDITS: &str = "
ALTER TABLE agenda ADD COLUMN edited_at INTEGER;
ALTER TABLE agenda ADD COLUMN retracted INTEGER NOT NULL DEFAULT 0;
";

/// A capstone review's rubric scores (JSON), kept with its feedback row.
const V12_CAPSTONE_SCORES: &str = "
ALTER TABLE feedback ADD COLUMN scores TEXT NOT NULL DEFAULT '[]';
";

/// Her unread mark: until when she has looked at her cohort's news, and whether the server has it.
const V13_READ_MARKS: &str = "
CREATE TABLE read_marks (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    seen_until  INTEGER NOT NULL,
    synced      INTEGER NOT NULL
);
";

/// One database holds every membership of its person (a learner in two programs, a facilitator of
/// several cohorts): a program per row, a membership per row with its own relayed-log watermark,
/// and the selection the screens show. Relayed logs name their cohort.
const V14_MEMBERSHIPS: &str = "
CREATE TABLE enrollments (
    program_id     TEXT PRIMARY KEY,
    program_title  TEXT NOT NULL,
    pack_id        TEXT NOT NULL,
    blueprint      TEXT NOT NULL,    -- JSON
    enrolled_at    INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO enrollments (program_id, program_title, pack_id, blueprint, enrolled_at)
SELECT program_id, program_title, pack_id, blueprint, enrolled_at FROM enrollment;

CREATE TABLE memberships (
    cohort_id       TEXT PRIMARY KEY,
    user_id         TEXT NOT NULL,
    program_id      TEXT,                        -- NULL: joined without a program here
    role            TEXT NOT NULL DEFAULT '',    -- as the server said at joining ('' before)
    logs_watermark  INTEGER NOT NULL DEFAULT 0   -- the server's relayed-log sequence seen
) WITHOUT ROWID;
INSERT INTO memberships (cohort_id, user_id, program_id, logs_watermark)
SELECT cohort_id, user_id, (SELECT program_id FROM enrollment), COALESCE((SELECT logs_watermark FROM server_link), 0)
FROM membership;

-- The program and membership the screens show (the app switches between them).
CREATE TABLE selection (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    program_id  TEXT,
    cohort_id   TEXT
);
INSERT INTO selection (id, program_id, cohort_id)
SELECT 1, (SELECT program_id FROM enrollment), (SELECT cohort_id FROM membership);

DROP TABLE enrollment;
DROP TABLE membership;
ALTER TABLE server_link DROP COLUMN logs_watermark;
ALTER TABLE cohort_practice_logs ADD COLUMN cohort_id TEXT NOT NULL DEFAULT '';
UPDATE cohort_practice_logs SET cohort_id = COALESCE((SELECT cohort_id FROM memberships), '');
";

/// What facilitators did through the server, projected from each cohort document: the critique
/// weeks they changed (moved, a meeting link, a member leading; read into the blueprint every
/// screen of the cohort uses), the entries they hid or endorsed, their announcements; and the
/// private notes the sync brought her.
const V15_FACILITATION: &str = "
CREATE TABLE critique_weeks (
    cohort_id  TEXT NOT NULL,
    week       INTEGER NOT NULL,
    changed    TEXT NOT NULL,     -- JSON
    PRIMARY KEY (cohort_id, week)
) WITHOUT ROWID;

CREATE TABLE moderation (
    cohort_id    TEXT NOT NULL,
    week         INTEGER NOT NULL,
    entry        TEXT NOT NULL,
    hidden_reason TEXT,           -- NULL: shown
    hidden_by    TEXT,
    endorsed_by  TEXT,
    PRIMARY KEY (cohort_id, week, entry)
) WITHOUT ROWID;

CREATE TABLE announcements (
    cohort_id   TEXT NOT NULL,
    key         TEXT NOT NULL,
    author      TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (cohort_id, key)
) WITHOUT ROWID;

-- The day a facilitator marked a member as having stopped practising.
ALTER TABLE roster ADD COLUMN paused_on TEXT;

-- Private notes to her from a cohort's facilitators, as the sync brought them.
CREATE TABLE facilitator_notes (
    cohort_id   TEXT NOT NULL,
    seq         INTEGER NOT NULL,
    id          TEXT NOT NULL,
    from_user   TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (cohort_id, seq)
) WITHOUT ROWID;
";

/// Each membership's arm, as the server said at joining: in a control arm the app runs the
/// practice loop alone. Transfer stories shared with the program team. Calibration exemplars and
/// her ratings of them.
const V16_ARMS: &str = "
ALTER TABLE memberships ADD COLUMN arm TEXT NOT NULL DEFAULT 'cohort';

-- A pack's exemplars for calibration (format 3), and her ratings of them until the server has
-- them (and after: the newest rating of each exemplar is hers to see).
ALTER TABLE prompt_packs ADD COLUMN exemplars TEXT NOT NULL DEFAULT '[]';
CREATE TABLE calibration_ratings (
    program_id   TEXT NOT NULL,
    exemplar_id  TEXT NOT NULL,
    scores       TEXT NOT NULL,               -- JSON: one 1..=5 per rubric criterion
    rated_at     INTEGER NOT NULL,
    sent         INTEGER NOT NULL DEFAULT 0,
    refused      TEXT,                        -- the server's reason, if it refused this rating
    PRIMARY KEY (program_id, exemplar_id)
) WITHOUT ROWID;

-- Transfer stories she shared with the program team, until and after the server took them.
CREATE TABLE transfer_stories (
    log_id      TEXT PRIMARY KEY,
    program_id  TEXT NOT NULL,
    evidence    TEXT NOT NULL,               -- JSON: the log's transfer evidence
    state       TEXT NOT NULL,               -- pending, shared, refused
    detail      TEXT
) WITHOUT ROWID;
";

pub fn user_version(conn: &Connection) -> Result<u32> {
    Ok(conn.query_row("PRAGMA user_version", [], |row| row.get(0))?)
}

/// Fails with [`Error::SchemaTooNew`] for a database written by a newer app. Reads only.
pub fn check_version(conn: &Connection) -> Result<()> {
    let found = user_version(conn)?;
    if found > VERSION {
        return Err(Error::SchemaTooNew { found, supported: VERSION });
    }
    Ok(())
}

/// Upgrades to [`VERSION`], one transaction per step.
pub fn migrate(conn: &mut Connection) -> Result<()> {
    migrate_to(conn, VERSION)
}

/// Upgrades to `target` (≤ [`VERSION`]); tests use it to build every older version.
pub fn migrate_to(conn: &mut Connection, target: u32) -> Result<()> {
    check_version(conn)?;
    let mut version = user_version(conn)?;
    while version < target.min(VERSION) {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        tx.execute_batch(MIGRATIONS[version as usize])?;
        version += 1;
        if version == 6 {
            // Before keys, a person had one device: this one makes her key.
            super::person::key_for_earlier_person(&tx)?;
        }
        if version == 15 {
            // Critique weeks, moderation and pauses the server wrote before this step.
            super::cohort::reproject_cohort_docs(&tx)?;
        }
        tx.pragma_update(None, "user_version", version)?;
        tx.commit()?;
        tracing::info!(version, "device database migrated");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every table, index and column, comparable across databases.
    fn describe(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' ORDER BY name")
            .unwrap();
        let objects: Vec<(String, String, String)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
        let mut out = Vec::new();
        for (kind, name, table) in objects {
            out.push(format!("{kind} {name} on {table}"));
            if kind == "table" {
                let mut cols = conn
                    .prepare(&format!(
                        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{name}')"
                    ))
                    .unwrap();
                let described: Vec<String> = cols
                    .query_map([], |r| {
                        Ok(format!(
                            "  {} {} notnull={} default={:?} pk={}",
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, Option<String>>(3)?,
                            r.get::<_, i64>(4)?
                        ))
                    })
                    .unwrap()
                    .map(Result::unwrap)
                    .collect();
                out.extend(described);
            }
        }
        out
    }

    #[test]
    fn every_older_version_upgrades_to_the_fresh_schema() {
        let mut fresh = Connection::open_in_memory().unwrap();
        migrate(&mut fresh).unwrap();
        assert_eq!(user_version(&fresh).unwrap(), VERSION);
        for old in 0..VERSION {
            let mut conn = Connection::open_in_memory().unwrap();
            migrate_to(&mut conn, old).unwrap();
            assert_eq!(user_version(&conn).unwrap(), old);
            migrate(&mut conn).unwrap();
            assert_eq!(describe(&conn), describe(&fresh), "upgrade from version {old}");
        }
    }

    #[test]
    fn version_two_backfills_daily_activity_from_existing_logs() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 1).unwrap();
        let insert = "INSERT INTO practice_logs (id, program_id, pack_id, pack_version, prompt_id, started_at, time_zone, local_date, status, duration_secs, corrects, recorded_at)
                      VALUES (?1, 'p', 'pack', 1, 'w01-d1', 0, 'UTC', ?2, ?3, ?4, ?5, 0)";
        // (id, local_date, status, duration_secs, corrects)
        type Row<'a> = (&'a str, &'a str, &'a str, Option<i64>, Option<&'a str>);
        let rows: [Row; 5] = [
            ("a", "2026-03-01", "completed", Some(600), None),
            ("b", "2026-03-01", "completed", Some(300), None),
            ("c", "2026-03-02", "completed", Some(100), None),
            ("d", "2026-03-02", "completed", Some(700), Some("c")), // corrects c
            ("e", "2026-03-03", "abandoned", None, None),
        ];
        for row in rows {
            conn.execute(insert, rusqlite::params![row.0, row.1, row.2, row.3, row.4]).unwrap();
        }
        migrate(&mut conn).unwrap();
        let mut stmt =
            conn.prepare("SELECT local_date, practices, seconds FROM daily_activity ORDER BY local_date").unwrap();
        let days: Vec<(String, i64, i64)> =
            stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?))).unwrap().map(Result::unwrap).collect();
        assert_eq!(days, vec![("2026-03-01".into(), 2, 900), ("2026-03-02".into(), 1, 700)]);
    }

    #[test]
    fn version_fourteen_keeps_the_single_membership_selected() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 13).unwrap();
        conn.execute_batch(
            "INSERT INTO enrollment (id, program_id, program_title, pack_id, blueprint, enrolled_at)
                 VALUES (1, 'p1', 'Everyday Leadership', 'pack', '{}', 5);
             INSERT INTO membership (id, cohort_id, user_id) VALUES (1, 'c1', 'ada');
             INSERT INTO server_link (id, server_url, device_id, device_token, logs_watermark)
                 VALUES (1, 'http://s', 'd1', 't', 42);
             INSERT INTO cohort_practice_logs (id, user_id, program_id, prompt_id, local_date, time_zone, status,
                 recorded_at) VALUES ('l1', 'bo', 'p1', 'w01-d1', '2026-03-01', 'UTC', 'completed', 0);",
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let membership: (String, String, Option<String>, i64) = conn
            .query_row("SELECT cohort_id, user_id, program_id, logs_watermark FROM memberships", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .unwrap();
        assert_eq!(membership, ("c1".into(), "ada".into(), Some("p1".into()), 42));
        let selected: (String, String) =
            conn.query_row("SELECT program_id, cohort_id FROM selection", [], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!(selected, ("p1".into(), "c1".into()));
        let enrolled: (String, i64) = conn
            .query_row("SELECT program_title, enrolled_at FROM enrollments", [], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap();
        assert_eq!(enrolled, ("Everyday Leadership".into(), 5));
        let relayed: String = conn.query_row("SELECT cohort_id FROM cohort_practice_logs", [], |r| r.get(0)).unwrap();
        assert_eq!(relayed, "c1");
        assert_eq!(crate::store::cohort::membership(&conn).unwrap().unwrap().cohort_id, "c1");
    }

    #[test]
    fn version_fifteen_projects_what_stored_cohort_documents_already_hold() {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate_to(&mut conn, 14).unwrap();
        let doc = crate::docs::DocId::cohort("c1");
        let mut am = crate::docs::genesis(&doc);
        am.set_actor(automerge::ActorId::random());
        let moved =
            crate::domain::critique_week::CritiqueWeek { lead: Some("ana".into()), revision: 1, ..Default::default() };
        crate::docs::cohort::put_critique_week(&mut am, 2, &moved).unwrap();
        crate::docs::cohort::put_hidden(
            &mut am,
            2,
            "ben/f1",
            Some(&crate::docs::cohort::HiddenMark { reason: "rude".into(), by: "fay".into() }),
        )
        .unwrap();
        conn.execute(
            "INSERT INTO doc_chunks (doc_id, seq, snapshot, bytes) VALUES ('cohort:c1', 0, 1, ?1)",
            [am.save()],
        )
        .unwrap();
        migrate(&mut conn).unwrap();
        let weeks = crate::store::cohort::critique_weeks(&conn, "c1").unwrap();
        assert_eq!(weeks.get(&2), Some(&moved));
        let hidden = crate::store::facilitation::moderation_of_week(&conn, "c1", 2).unwrap();
        assert_eq!(hidden[0].hidden.as_ref().map(|h| h.reason.as_str()), Some("rude"));
    }

    #[test]
    fn a_newer_database_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        conn.pragma_update(None, "user_version", VERSION + 1).unwrap();
        let err = check_version(&conn).unwrap_err();
        assert!(
            matches!(err, Error::SchemaTooNew { found, supported } if found == VERSION + 1 && supported == VERSION)
        );
    }
}
