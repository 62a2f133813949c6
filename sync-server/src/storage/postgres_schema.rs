//! The server's PostgreSQL schema, versioned in `schema_version`. Several server processes may
//! start at once: migrations run under an advisory lock, and a database written by a newer
//! server is refused before anything is written.

use postgres::Client;

use crate::error::ApiError;

pub const VERSION: i32 = 7;

/// Any constant shared by every server process: the advisory lock that serializes migrations.
const MIGRATION_LOCK: i64 = 0x6d63_5f73_6368_656d;

/// The same tables as the SQLite schema (v1 + v2), except practice logs: their sequence is per
/// cohort, taken from `log_counters` under the counter row's lock, so it grows in commit order.
const V1: &str = "
CREATE TABLE meta (key TEXT PRIMARY KEY, value BYTEA NOT NULL);

CREATE TABLE programs (
    id TEXT PRIMARY KEY, title TEXT NOT NULL, blueprint TEXT NOT NULL,
    pack_id TEXT NOT NULL, pack_version BIGINT NOT NULL, pack_file TEXT NOT NULL, pack_toml TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE cohorts (
    id TEXT PRIMARY KEY, program_id TEXT NOT NULL REFERENCES programs (id), title TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE members (
    cohort_id TEXT NOT NULL REFERENCES cohorts (id), user_id TEXT NOT NULL, display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('learner', 'facilitator')), time_zone TEXT NOT NULL,
    joined_on TEXT NOT NULL, left_on TEXT,
    PRIMARY KEY (cohort_id, user_id)
);

CREATE TABLE invites (
    code_hash BYTEA PRIMARY KEY, cohort_id TEXT NOT NULL REFERENCES cohorts (id), role TEXT NOT NULL,
    display_name TEXT NOT NULL, time_zone TEXT NOT NULL, created_at BIGINT NOT NULL,
    used_at BIGINT, user_id TEXT
);

CREATE TABLE devices (
    id TEXT PRIMARY KEY, user_id TEXT NOT NULL, cohort_id TEXT NOT NULL, token_hash BYTEA NOT NULL UNIQUE,
    name TEXT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT
);
CREATE INDEX devices_by_user ON devices (user_id);

-- Actor binding: an actor belongs to the user of its first change; NULL user = the server.
CREATE TABLE actors (actor BYTEA PRIMARY KEY, user_id TEXT);

-- One row per document; writers lock it while they assign doc_seq.
CREATE TABLE docs (doc_id TEXT PRIMARY KEY, last_seq BIGINT NOT NULL);

CREATE TABLE changes (
    doc_id TEXT NOT NULL, hash BYTEA NOT NULL, actor BYTEA NOT NULL, seq BIGINT NOT NULL,
    deps BYTEA NOT NULL, body BYTEA NOT NULL, doc_seq BIGINT NOT NULL,
    PRIMARY KEY (doc_id, hash)
);
CREATE UNIQUE INDEX changes_in_order ON changes (doc_id, doc_seq) INCLUDE (hash);
CREATE UNIQUE INDEX changes_by_actor ON changes (doc_id, actor, seq);

CREATE TABLE doc_heads (doc_id TEXT NOT NULL, hash BYTEA NOT NULL, PRIMARY KEY (doc_id, hash));

-- The validator's index: every entry object and its owner ('' = the server).
CREATE TABLE doc_objects (
    doc_id TEXT NOT NULL, counter BIGINT NOT NULL, actor BYTEA NOT NULL, container TEXT NOT NULL, owner TEXT NOT NULL,
    PRIMARY KEY (doc_id, counter, actor)
);

CREATE TABLE doc_snapshots (doc_id TEXT PRIMARY KEY, upto_seq BIGINT NOT NULL, bytes BYTEA NOT NULL);

CREATE TABLE log_counters (cohort_id TEXT PRIMARY KEY, last_seq BIGINT NOT NULL);

CREATE TABLE practice_logs (
    id TEXT PRIMARY KEY, cohort_id TEXT NOT NULL, seq BIGINT NOT NULL, user_id TEXT NOT NULL,
    body TEXT NOT NULL, received_at BIGINT NOT NULL,
    UNIQUE (cohort_id, seq)
);
";

/// What the trust boundary needs, as in the SQLite schema's version 3: operation counters per
/// change (filled in for existing rows by [`backfill`]), entry keys, per-user bytes per document,
/// the changes `admin repair` removed, and practice logs by learner and day.
const V2: &str = "
ALTER TABLE changes ADD COLUMN start_op BIGINT, ADD COLUMN max_op BIGINT;
-- Every change with doc_seq up to base_seq is in this change's history (0: nothing known).
ALTER TABLE changes ADD COLUMN base_seq BIGINT NOT NULL DEFAULT 0;
CREATE INDEX changes_by_op ON changes (doc_id, actor, start_op);
ALTER TABLE doc_objects ADD COLUMN key TEXT NOT NULL DEFAULT '';
CREATE INDEX doc_objects_by_key ON doc_objects (doc_id, container, key);
CREATE TABLE doc_usage (
    doc_id TEXT NOT NULL, user_id TEXT NOT NULL, bytes BIGINT NOT NULL, PRIMARY KEY (doc_id, user_id)
);
INSERT INTO doc_usage (doc_id, user_id, bytes)
    SELECT c.doc_id, a.user_id, SUM(length(c.body)) FROM changes c JOIN actors a ON a.actor = c.actor
    WHERE a.user_id IS NOT NULL GROUP BY c.doc_id, a.user_id;
CREATE TABLE removed_changes (
    doc_id TEXT NOT NULL, hash BYTEA NOT NULL, reason TEXT NOT NULL, removed_at BIGINT NOT NULL,
    PRIMARY KEY (doc_id, hash)
);
ALTER TABLE practice_logs ADD COLUMN local_date TEXT NOT NULL DEFAULT '';
UPDATE practice_logs SET local_date = COALESCE(body::json->>'local_date', '');
CREATE INDEX practice_logs_by_day ON practice_logs (user_id, local_date);
";

/// People and their profiles, as in the SQLite schema's version 4.
const V3: &str = "
CREATE TABLE users (
    id TEXT PRIMARY KEY, time_zone TEXT NOT NULL, day_start_minutes BIGINT NOT NULL DEFAULT 0,
    reminders TEXT NOT NULL DEFAULT '', profile_changed_at BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL
);
INSERT INTO users (id, time_zone, created_at) SELECT user_id, MIN(time_zone), 0 FROM members GROUP BY user_id;
ALTER TABLE members ADD COLUMN day_start_minutes BIGINT NOT NULL DEFAULT 0;
CREATE INDEX members_by_user ON members (user_id);
ALTER TABLE invites ADD COLUMN for_user TEXT;
CREATE INDEX practice_logs_by_user ON practice_logs (user_id, cohort_id, seq);
CREATE TABLE link_codes (
    code_hash BYTEA PRIMARY KEY, user_id TEXT NOT NULL, cohort_id TEXT NOT NULL, shown_by TEXT NOT NULL,
    expires_at BIGINT NOT NULL, used_at BIGINT
);
";

/// When the server first stored each entry, and invites that expire, as in the SQLite schema's
/// version 5.
const V4: &str = "
ALTER TABLE doc_objects ADD COLUMN stored_at BIGINT;
ALTER TABLE invites ADD COLUMN expires_at BIGINT;
CREATE INDEX invites_by_cohort ON invites (cohort_id, created_at);
";

/// Until when each person has looked at what her cohort did, as in the SQLite schema's version 6.
const V5: &str = "
ALTER TABLE users ADD COLUMN seen_until BIGINT NOT NULL DEFAULT 0;
";

/// The critique weeks a facilitator changed, per cohort, private notes, pauses and imported
/// baselines, as in the SQLite schema's version 7.
const V6: &str = "
ALTER TABLE cohorts ADD COLUMN critique_weeks TEXT NOT NULL DEFAULT '{}';
ALTER TABLE members ADD COLUMN paused_on TEXT;

CREATE TABLE member_notes (
    cohort_id TEXT NOT NULL, seq BIGINT NOT NULL, id TEXT NOT NULL, from_user TEXT NOT NULL,
    to_user TEXT NOT NULL, body TEXT NOT NULL, created_at BIGINT NOT NULL,
    PRIMARY KEY (cohort_id, seq), UNIQUE (from_user, id)
);
CREATE INDEX member_notes_to ON member_notes (to_user, cohort_id, seq);
CREATE TABLE baselines (
    program_id TEXT NOT NULL, learner TEXT NOT NULL, start_date TEXT NOT NULL, active_dates TEXT NOT NULL,
    PRIMARY KEY (program_id, learner)
);
";

/// Arms: a cohort belongs to the cohort arm or to a control arm (the practice loop alone). A
/// program that draws arms at random keeps its seed and how many draws it made; an invite keeps
/// how its learner was assigned (JSON, `domain::arms::Assignment`; NULL: the operator's cohort).
/// Transfer stories learners shared with the program team; learners' calibration ratings.
const V7: &str = "
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

fn stored_version(client: &mut Client) -> Result<i32, postgres::Error> {
    let exists: bool = client.query_one("SELECT to_regclass('schema_version') IS NOT NULL", &[])?.get(0);
    if !exists {
        return Ok(0);
    }
    Ok(client.query_opt("SELECT version FROM schema_version", &[])?.map_or(0, |row| row.get(0)))
}

fn newer(version: i32) -> ApiError {
    ApiError::Internal(format!(
        "the database has schema version {version}, newer than this server's {VERSION}: upgrade the server"
    ))
}

pub fn migrate(client: &mut Client) -> Result<(), ApiError> {
    let pg = |e: postgres::Error| ApiError::Internal(format!("PostgreSQL schema: {e}"));
    let version = stored_version(client).map_err(pg)?;
    if version > VERSION {
        return Err(newer(version));
    }
    if version == VERSION {
        return Ok(());
    }
    let mut tx = client.transaction().map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(pg)?;
    tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)").map_err(pg)?;
    // Read again under the lock: another process may have migrated meanwhile.
    let version: i32 = tx.query_opt("SELECT version FROM schema_version", &[]).map_err(pg)?.map_or(0, |row| row.get(0));
    if version > VERSION {
        return Err(newer(version));
    }
    for (target, sql) in [(1, V1), (2, V2), (3, V3), (4, V4), (5, V5), (6, V6), (7, V7)] {
        if version < target {
            tx.batch_execute(sql).map_err(pg)?;
            if target == 2 {
                backfill(&mut tx).map_err(pg)?;
            }
        }
    }
    if version < VERSION {
        tx.execute("DELETE FROM schema_version", &[]).map_err(pg)?;
        tx.execute("INSERT INTO schema_version (version) VALUES ($1)", &[&VERSION]).map_err(pg)?;
    }
    tx.commit().map_err(pg)
}

/// Fills the operation counters of stored changes and the keys of stored entries.
fn backfill(tx: &mut postgres::Transaction<'_>) -> Result<(), postgres::Error> {
    let rows = tx.query("SELECT doc_id, hash, body FROM changes", &[])?;
    let rows = rows.iter().map(|row| (row.get(0), row.get(1), row.get(2))).collect();
    let tx = std::cell::RefCell::new(tx);
    super::documents::backfill_rows(
        rows,
        |doc, hash, start, max| {
            let update = "UPDATE changes SET start_op = $1, max_op = $2 WHERE doc_id = $3 AND hash = $4";
            tx.borrow_mut().execute(update, &[&start, &max, &doc, &hash]).map(|_| ())
        },
        |doc, counter, actor, key| {
            let update = "UPDATE doc_objects SET key = $1 WHERE doc_id = $2 AND counter = $3 AND actor = $4";
            tx.borrow_mut().execute(update, &[&key, &doc, &counter, &actor]).map(|_| ())
        },
    )
}
