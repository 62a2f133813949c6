//! The server's SQLite schema, versioned by `user_version` like the device's.

use rusqlite::Connection;

pub const VERSION: u32 = 2;

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

pub fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let version: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    for (target, sql) in [(1, V1), (2, V2)] {
        if version < target {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", target)?;
            tx.commit()?;
        }
    }
    Ok(())
}
