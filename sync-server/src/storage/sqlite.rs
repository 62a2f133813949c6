//! The embedded default: one SQLite file in the data directory, WAL, one writer connection.
//! The rules live in the shared modules; this file is the rows.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use automerge::ActorId;
use microcohort_core::sync::wire::{JoinResponse, PackFile, SyncResponse, WireProfile};
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::checkpoints::{Checkpointer, LONG_WAL_PAGES, WalRestart};
use super::documents::{self, saved_document, snapshot_of};
use super::durability::Durability;
use super::enrolment;
use super::graph_cache::GraphCache;
use super::group_commit::GroupCommit;
use super::log_rules::LogRules;
use super::operations;
use super::people;
use super::primitives::{
    ARM_COHORTS, CALIBRATION_UPSERT, ChangeRecord, DeviceRecord, GraphRow, InviteRow, MemberRecord, NewChange,
    NewInvite, NewLog, NewProgram, NoteRecord, ObjectRow, OpenInvite, ProgramRecord, R, STORY_INSERT, StoryRecord, Tx,
};
use super::repair::{self, DocProblem};
use super::{CohortRow, Device, MemberRow, ProgramRow, Storage, SyncStats, round_trip};
use crate::auth;
use crate::error::ApiError;
use microcohort_core::sync::request::CheckedRequest;

/// The embedded database's file in the data directory.
pub const DATABASE_FILE: &str = "microcohort.sqlite";

pub struct SqliteStorage {
    /// The one writer: every write transaction runs here, one at a time.
    writer: Arc<Mutex<Connection>>,
    /// Connections for reads, which WAL lets run beside the writer (authentication, syncs that
    /// write nothing, reports, listings); opened on demand, kept.
    readers: Mutex<Vec<Connection>>,
    path: PathBuf,
    server_actor: ActorId,
    graphs: Arc<GraphCache>,
    /// Syncs that write share the writer's transactions (and fsyncs) with each other.
    group: GroupCommit,
    /// Syncs the WAL after the writer's commits, which do not sync.
    durable: Arc<Durability>,
    /// What the server believes of uploaded practice logs.
    rules: LogRules,
    /// Copies the WAL back into the database file, beside the writer.
    _checkpoints: Checkpointer,
}

/// Idle reader connections kept open: as many as requests read at once under load (a
/// connection opened for one read parses the schema again).
const READERS_KEPT: usize = 16;
/// A reader's page cache. The writer's commits empty it at a reader's next transaction, so
/// under load it holds one transaction's pages at most.
const READER_CACHE_KIB: i64 = 512;
/// The writer connection's page cache.
const WRITER_CACHE_KIB: i64 = 32 * 1024;

/// How long a connection waits for another process's write (or a WAL restart) before failing.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A connection with the settings every one of the server's connections needs.
fn connect(path: &Path) -> Result<Connection, ApiError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "foreign_keys", true)?;
    // Plans never depend on bound values: with the bundled SQLite's STAT4, a statement would
    // otherwise be prepared again whenever a document id changes.
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
    conn.set_prepared_statement_cache_capacity(128);
    Ok(conn)
}

impl SqliteStorage {
    /// Uses `rules` for the practice logs devices upload (the default: a 14-day back-fill window).
    pub fn with_log_rules(mut self, rules: LogRules) -> Self {
        self.rules = rules;
        self
    }

    pub fn open(path: &Path) -> Result<Self, ApiError> {
        let mut conn = connect(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // FULL until the writer thread starts: the schema and the server's actor are on disk.
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Every write goes through this connection: its index pages stay cached (the readers
        // keep a small cache each).
        conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
        // A request's savepoint keeps the pages it overwrote in memory, never in a temporary file.
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // Checkpoints run on their own thread, never inside a commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // A WAL started over is cut back to the length at which it is started over.
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
        conn.pragma_update(None, "journal_size_limit", LONG_WAL_PAGES * page_size)?;
        super::schema::migrate(&mut conn).map_err(ApiError::Internal)?;
        let stored: Option<Vec<u8>> =
            conn.query_row("SELECT value FROM meta WHERE key = 'server_actor'", [], |r| r.get(0)).optional()?;
        let server_actor = match stored {
            Some(bytes) => ActorId::from(bytes),
            None => {
                let actor = ActorId::random();
                conn.execute("INSERT INTO meta (key, value) VALUES ('server_actor', ?1)", [actor.to_bytes()])?;
                conn.execute("INSERT OR IGNORE INTO actors (actor, user_id) VALUES (?1, NULL)", [actor.to_bytes()])?;
                actor
            }
        };
        // From here on every commit is followed by a sync of the WAL (`Durability`) before it is
        // acknowledged: a change the server acknowledged survives a power cut, not only a crash.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let durable = Arc::new(Durability::wal_of(path));
        let writer = Arc::new(Mutex::new(conn));
        let restart = Arc::new(WalRestart::default());
        let group = GroupCommit::start(writer.clone(), restart.clone(), durable.clone())
            .map_err(|e| ApiError::Internal(format!("could not start the writer thread: {e}")))?;
        Ok(Self {
            writer,
            readers: Mutex::default(),
            path: path.to_owned(),
            server_actor,
            graphs: Arc::default(),
            group,
            durable,
            rules: LogRules::default(),
            _checkpoints: Checkpointer::start(connect(path)?, path, LONG_WAL_PAGES, restart)
                .map_err(|e| ApiError::Internal(format!("could not start the checkpoint thread: {e}")))?,
        })
    }

    /// One IMMEDIATE transaction: the single writer, so the rules never race here. Returns once
    /// it is on disk.
    fn write<T>(&self, f: impl FnOnce(&dyn Tx) -> Result<T, ApiError>) -> Result<T, ApiError> {
        self.durable.check().map_err(ApiError::Internal)?;
        let value = {
            let mut conn = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&*tx)?;
            tx.commit()?;
            value
        };
        self.durable.sync().map_err(ApiError::Internal)?;
        Ok(value)
    }

    /// Reads what is committed, on a reader connection, in one read transaction: one consistent
    /// view, and the connection's page cache is checked against the writer's commits once rather
    /// than at every statement (a commit in between empties it).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let pooled = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => {
                let conn = connect(&self.path)?;
                conn.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
                conn
            }
        };
        let result = conn.unchecked_transaction().map_err(ApiError::from).and_then(|tx| {
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        });
        let mut readers = self.readers.lock().unwrap_or_else(|p| p.into_inner());
        if readers.len() < READERS_KEPT {
            readers.push(conn);
        }
        result
    }
}

fn exists(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> R<bool> {
    Ok(conn.prepare_cached(sql)?.query_row(params, |_| Ok(())).optional()?.is_some())
}

impl Tx for Connection {
    fn lock_doc(&self, _doc: &str) -> R<()> {
        Ok(())
    }

    fn append_change(&self, doc: &str, c: &NewChange<'_>) -> R<i64> {
        let doc_seq: i64 = self
            .prepare_cached(
                "INSERT INTO docs (doc_id, last_seq) VALUES (?1, 1)
                 ON CONFLICT (doc_id) DO UPDATE SET last_seq = last_seq + 1 RETURNING last_seq",
            )?
            .query_row([doc], |r| r.get(0))?;
        self.prepare_cached(
            "INSERT INTO changes (doc_id, hash, actor, seq, deps, body, doc_seq, start_op, max_op, base_seq)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            doc,
            c.hash,
            c.actor,
            c.seq,
            c.deps,
            c.body,
            doc_seq,
            c.start_op,
            c.max_op,
            c.base_seq.unwrap_or(doc_seq)
        ])?;
        Ok(doc_seq)
    }

    fn change_seq(&self, doc: &str, hash: &[u8]) -> R<Option<i64>> {
        Ok(self
            .prepare_cached("SELECT doc_seq FROM changes WHERE doc_id = ?1 AND hash = ?2")?
            .query_row(params![doc, hash], |r| r.get(0))
            .optional()?)
    }

    fn change_facts(&self, doc: &str, hash: &[u8]) -> R<Option<(i64, i64)>> {
        Ok(self
            .prepare_cached("SELECT COALESCE(max_op, 0), base_seq FROM changes WHERE doc_id = ?1 AND hash = ?2")?
            .query_row(params![doc, hash], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn actor_change_seq(&self, doc: &str, actor: &[u8], seq: i64) -> R<Option<i64>> {
        Ok(self
            .prepare_cached("SELECT doc_seq FROM changes WHERE doc_id = ?1 AND actor = ?2 AND seq = ?3")?
            .query_row(params![doc, actor, seq], |r| r.get(0))
            .optional()?)
    }

    fn actor_tip(&self, doc: &str, actor: &[u8]) -> R<Option<(i64, i64)>> {
        Ok(self
            .prepare_cached(
                "SELECT seq, COALESCE(max_op, 0) FROM changes WHERE doc_id = ?1 AND actor = ?2 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![doc, actor], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn change_with_op(&self, doc: &str, actor: &[u8], counter: i64) -> R<Option<Vec<u8>>> {
        Ok(self
            .prepare_cached(
                "SELECT body FROM changes WHERE doc_id = ?1 AND actor = ?2 AND start_op <= ?3 AND max_op >= ?3
                 ORDER BY start_op DESC LIMIT 1",
            )?
            .query_row(params![doc, actor, counter], |r| r.get(0))
            .optional()?)
    }

    fn graph_after(&self, doc: &str, after: i64) -> R<Vec<GraphRow>> {
        let mut stmt = self.prepare_cached(
            "SELECT doc_seq, hash, actor, seq, deps FROM changes WHERE doc_id = ?1 AND doc_seq > ?2 ORDER BY doc_seq",
        )?;
        let rows = stmt.query_map(params![doc, after], |r| {
            Ok(GraphRow { doc_seq: r.get(0)?, hash: r.get(1)?, actor: r.get(2)?, seq: r.get(3)?, deps: r.get(4)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn replace_heads(&self, doc: &str, removed: &[&[u8]], added: &[u8]) -> R<()> {
        for hash in removed {
            self.prepare_cached("DELETE FROM doc_heads WHERE doc_id = ?1 AND hash = ?2")?
                .execute(params![doc, hash])?;
        }
        self.prepare_cached("INSERT OR IGNORE INTO doc_heads (doc_id, hash) VALUES (?1, ?2)")?
            .execute(params![doc, added])?;
        Ok(())
    }

    fn heads(&self, doc: &str) -> R<Vec<Vec<u8>>> {
        let mut stmt = self.prepare_cached("SELECT hash FROM doc_heads WHERE doc_id = ?1 ORDER BY hash")?;
        let rows = stmt.query_map([doc], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn changes_after(&self, doc: &str, after: i64, limit: i64) -> R<Vec<ChangeRecord>> {
        let mut stmt = self.prepare_cached(
            "SELECT doc_seq, hash, body FROM changes WHERE doc_id = ?1 AND doc_seq > ?2 ORDER BY doc_seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![doc, after, limit], |r| {
            Ok(ChangeRecord { doc_seq: r.get(0)?, hash: r.get(1)?, body: r.get(2)? })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn snapshot(&self, doc: &str) -> R<Option<(i64, Vec<u8>)>> {
        Ok(self
            .prepare_cached("SELECT upto_seq, bytes FROM doc_snapshots WHERE doc_id = ?1")?
            .query_row([doc], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn last_seq(&self, doc: &str) -> R<Option<i64>> {
        Ok(self
            .prepare_cached("SELECT last_seq FROM docs WHERE doc_id = ?1")?
            .query_row([doc], |r| r.get(0))
            .optional()?)
    }

    fn snapshot_upto(&self, doc: &str) -> R<Option<i64>> {
        Ok(self
            .prepare_cached("SELECT upto_seq FROM doc_snapshots WHERE doc_id = ?1")?
            .query_row([doc], |r| r.get(0))
            .optional()?)
    }

    fn change_at(&self, doc: &str, doc_seq: i64) -> R<Option<Vec<u8>>> {
        Ok(self
            .prepare_cached("SELECT hash FROM changes WHERE doc_id = ?1 AND doc_seq = ?2")?
            .query_row(params![doc, doc_seq], |r| r.get(0))
            .optional()?)
    }

    fn put_snapshot(&self, doc: &str, upto_seq: i64, bytes: &[u8]) -> R<()> {
        self.prepare_cached(
            "INSERT INTO doc_snapshots (doc_id, upto_seq, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT (doc_id) DO UPDATE SET upto_seq = ?2, bytes = ?3 WHERE doc_snapshots.upto_seq < ?2",
        )?
        .execute(params![doc, upto_seq, bytes])?;
        Ok(())
    }

    fn object(&self, doc: &str, counter: i64, actor: &[u8]) -> R<Option<(String, String)>> {
        Ok(self
            .prepare_cached(
                "SELECT container, owner FROM doc_objects WHERE doc_id = ?1 AND counter = ?2 AND actor = ?3",
            )?
            .query_row(params![doc, counter, actor], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn entry_exists(&self, doc: &str, container: &str, key: &str) -> R<bool> {
        exists(
            self,
            "SELECT 1 FROM doc_objects WHERE doc_id = ?1 AND container = ?2 AND key = ?3",
            params![doc, container, key],
        )
    }

    fn insert_object(&self, doc: &str, o: &ObjectRow) -> R<()> {
        self.prepare_cached(
            "INSERT OR IGNORE INTO doc_objects (doc_id, counter, actor, container, key, owner, stored_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![doc, o.counter, o.actor, o.container, o.key, o.owner, o.stored_at])?;
        Ok(())
    }

    fn actor_owner(&self, actor: &[u8]) -> R<Option<Option<String>>> {
        Ok(self
            .prepare_cached("SELECT user_id FROM actors WHERE actor = ?1")?
            .query_row([actor], |r| r.get(0))
            .optional()?)
    }

    fn bind_actor(&self, actor: &[u8], user_id: Option<&str>) -> R<()> {
        self.prepare_cached("INSERT OR IGNORE INTO actors (actor, user_id) VALUES (?1, ?2)")?
            .execute(params![actor, user_id])?;
        Ok(())
    }

    fn lost_race(&self, what: String) -> ApiError {
        // One writer: there is no other process to race with.
        ApiError::Internal(what)
    }

    fn user_doc_bytes(&self, doc: &str, user_id: &str) -> R<i64> {
        Ok(self
            .prepare_cached("SELECT bytes FROM doc_usage WHERE doc_id = ?1 AND user_id = ?2")?
            .query_row(params![doc, user_id], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    fn add_user_doc_bytes(&self, doc: &str, user_id: &str, bytes: i64) -> R<()> {
        self.prepare_cached(
            "INSERT INTO doc_usage (doc_id, user_id, bytes) VALUES (?1, ?2, ?3)
             ON CONFLICT (doc_id, user_id) DO UPDATE SET bytes = bytes + ?3",
        )?
        .execute(params![doc, user_id, bytes])?;
        Ok(())
    }

    fn doc_ids(&self) -> R<Vec<String>> {
        let mut stmt = self.prepare("SELECT doc_id FROM docs ORDER BY doc_id")?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn was_removed(&self, doc: &str, hash: &[u8]) -> R<bool> {
        exists(self, "SELECT 1 FROM removed_changes WHERE doc_id = ?1 AND hash = ?2", params![doc, hash])
    }

    fn remove_change(&self, doc: &str, hash: &[u8], reason: &str, now: i64) -> R<()> {
        self.execute("DELETE FROM changes WHERE doc_id = ?1 AND hash = ?2", params![doc, hash])?;
        self.execute(
            "INSERT OR IGNORE INTO removed_changes (doc_id, hash, reason, removed_at) VALUES (?1, ?2, ?3, ?4)",
            params![doc, hash, reason, now],
        )?;
        Ok(())
    }

    fn clear_derived(&self, doc: &str) -> R<()> {
        for table in ["doc_heads", "doc_objects", "doc_snapshots", "doc_usage"] {
            self.execute(&format!("DELETE FROM {table} WHERE doc_id = ?1"), [doc])?;
        }
        Ok(())
    }

    fn cohort_program(&self, cohort_id: &str) -> R<Option<ProgramRecord>> {
        Ok(self
            .prepare_cached(
                "SELECT p.id, p.title, p.blueprint, p.pack_version, c.critique_weeks, c.arm
                 FROM cohorts c JOIN programs p ON p.id = c.program_id WHERE c.id = ?1",
            )?
            .query_row([cohort_id], |r| {
                Ok(ProgramRecord {
                    program_id: r.get(0)?,
                    title: r.get(1)?,
                    blueprint: r.get(2)?,
                    pack_version: r.get(3)?,
                    critique_weeks: r.get(4)?,
                    arm: r.get(5)?,
                })
            })
            .optional()?)
    }

    fn program_pack(&self, program_id: &str) -> R<Option<PackFile>> {
        Ok(self
            .prepare_cached("SELECT pack_id, pack_version, pack_file, pack_toml FROM programs WHERE id = ?1")?
            .query_row([program_id], |r| {
                Ok(PackFile { pack_id: r.get(0)?, version: r.get(1)?, file_name: r.get(2)?, toml: r.get(3)? })
            })
            .optional()?)
    }

    fn program_blueprint(&self, program_id: &str) -> R<Option<String>> {
        Ok(self
            .prepare_cached("SELECT blueprint FROM programs WHERE id = ?1")?
            .query_row([program_id], |r| r.get(0))
            .optional()?)
    }

    fn program_has_cohorts(&self, program_id: &str) -> R<bool> {
        exists(self, "SELECT 1 FROM cohorts WHERE program_id = ?1 LIMIT 1", [program_id])
    }

    fn upsert_program(&self, p: &NewProgram<'_>, now: i64) -> R<()> {
        self.execute(
            "INSERT INTO programs (id, title, blueprint, pack_id, pack_version, pack_file, pack_toml, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET title = ?2, blueprint = ?3, pack_id = ?4, pack_version = ?5, pack_file = ?6, pack_toml = ?7",
            params![p.id, p.title, p.blueprint, p.pack_id, p.pack_version, p.pack_file, p.pack_toml, now],
        )?;
        Ok(())
    }

    fn cohort_exists(&self, cohort_id: &str) -> R<bool> {
        exists(self, "SELECT 1 FROM cohorts WHERE id = ?1", [cohort_id])
    }

    fn insert_cohort(&self, id: &str, program_id: &str, title: &str, arm: &str, now: i64) -> R<()> {
        self.execute(
            "INSERT INTO cohorts (id, program_id, title, arm, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, program_id, title, arm, now],
        )?;
        Ok(())
    }

    fn arm_cohorts(&self, program_id: &str, arm: &str, now: i64) -> R<Vec<(String, i64)>> {
        // `?N` binds by number; SQLite would number `$N` by first appearance.
        let mut stmt = self.prepare_cached(&ARM_COHORTS.replace('$', "?"))?;
        let rows = stmt.query_map(params![program_id, arm, now], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn lock_arm_randomisation(&self, program_id: &str) -> R<Option<(Option<i64>, i64)>> {
        // One writer at a time already: a plain read is under the lock.
        Ok(self
            .prepare_cached("SELECT arm_seed, arm_draws FROM programs WHERE id = ?1")?
            .query_row([program_id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    fn set_arm_randomisation(&self, program_id: &str, seed: i64, draws: i64) -> R<()> {
        self.execute(
            "UPDATE programs SET arm_seed = ?1, arm_draws = ?2 WHERE id = ?3",
            params![seed, draws, program_id],
        )?;
        Ok(())
    }

    fn roster_rows(&self, cohort_id: &str) -> R<Vec<MemberRecord>> {
        let mut stmt = self.prepare_cached(
            "SELECT user_id, display_name, role, time_zone, day_start_minutes, joined_on, left_on, paused_on
             FROM members WHERE cohort_id = ?1",
        )?;
        let rows = stmt.query_map([cohort_id], |r| {
            Ok(MemberRecord {
                user_id: r.get(0)?,
                display_name: r.get(1)?,
                role: r.get(2)?,
                time_zone: r.get(3)?,
                day_start_minutes: r.get(4)?,
                joined_on: r.get(5)?,
                left_on: r.get(6)?,
                paused_on: r.get(7)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn insert_member(&self, cohort_id: &str, m: &MemberRecord) -> R<()> {
        self.execute(
            "INSERT INTO members (cohort_id, user_id, display_name, role, time_zone, day_start_minutes, joined_on)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![cohort_id, m.user_id, m.display_name, m.role, m.time_zone, m.day_start_minutes, m.joined_on],
        )?;
        Ok(())
    }

    fn set_paused_on(&self, cohort_id: &str, user_id: &str, paused_on: Option<&str>) -> R<()> {
        self.execute(
            "UPDATE members SET paused_on = ?1 WHERE cohort_id = ?2 AND user_id = ?3",
            params![paused_on, cohort_id, user_id],
        )?;
        Ok(())
    }

    fn set_left_on(&self, cohort_id: &str, user_id: &str, left_on: &str) -> R<()> {
        self.execute(
            "UPDATE members SET left_on = ?1 WHERE cohort_id = ?2 AND user_id = ?3",
            params![left_on, cohort_id, user_id],
        )?;
        Ok(())
    }

    fn insert_note(&self, n: &NoteRecord) -> R<()> {
        self.execute(
            "INSERT INTO member_notes (cohort_id, seq, id, from_user, to_user, body, created_at)
             SELECT ?1, COALESCE(MAX(seq), 0) + 1, ?2, ?3, ?4, ?5, ?6 FROM member_notes WHERE cohort_id = ?1
             ON CONFLICT (from_user, id) DO NOTHING",
            params![n.cohort_id, n.id, n.from_user, n.to_user, n.body, n.created_at],
        )?;
        Ok(())
    }

    fn notes_after(&self, cohort_id: &str, to_user: &str, after: i64, limit: i64) -> R<Vec<NoteRecord>> {
        let mut stmt = self.prepare_cached(
            "SELECT seq, id, from_user, body, created_at FROM member_notes
             WHERE to_user = ?1 AND cohort_id = ?2 AND seq > ?3 ORDER BY seq LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![to_user, cohort_id, after, limit], |r| {
            Ok(NoteRecord {
                cohort_id: cohort_id.to_owned(),
                seq: r.get(0)?,
                id: r.get(1)?,
                from_user: r.get(2)?,
                to_user: to_user.to_owned(),
                body: r.get(3)?,
                created_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn replace_baseline(&self, program_id: &str, learners: &[(String, String, String)]) -> R<()> {
        self.execute("DELETE FROM baselines WHERE program_id = ?1", [program_id])?;
        for (learner, start, dates) in learners {
            self.prepare_cached(
                "INSERT INTO baselines (program_id, learner, start_date, active_dates) VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![program_id, learner, start, dates])?;
        }
        Ok(())
    }

    fn set_critique_weeks(&self, cohort_id: &str, weeks: &str) -> R<()> {
        self.execute("UPDATE cohorts SET critique_weeks = ?1 WHERE id = ?2", params![weeks, cohort_id])?;
        Ok(())
    }

    fn set_joined_on(&self, cohort_id: &str, user_id: &str, joined_on: &str) -> R<()> {
        self.execute(
            "UPDATE members SET joined_on = ?1 WHERE cohort_id = ?2 AND user_id = ?3",
            params![joined_on, cohort_id, user_id],
        )?;
        Ok(())
    }

    fn active_cohorts(&self, user_id: &str) -> R<Vec<String>> {
        let mut stmt = self.prepare_cached("SELECT cohort_id FROM members WHERE user_id = ?1 AND left_on IS NULL")?;
        let rows = stmt.query_map([user_id], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn set_member_day(&self, cohort_id: &str, user_id: &str, time_zone: &str, day_start_minutes: i64) -> R<()> {
        self.execute(
            "UPDATE members SET time_zone = ?1, day_start_minutes = ?2 WHERE cohort_id = ?3 AND user_id = ?4",
            params![time_zone, day_start_minutes, cohort_id, user_id],
        )?;
        Ok(())
    }

    fn user_profile(&self, user_id: &str) -> R<Option<WireProfile>> {
        let row = self
            .prepare_cached(
                "SELECT time_zone, day_start_minutes, reminders, profile_changed_at FROM users WHERE id = ?1",
            )?
            .query_row([user_id], |r| Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?, r.get(3)?)))
            .optional()?;
        row.map(|(zone, minutes, reminders, changed)| people::stored_profile(zone, minutes, &reminders, changed))
            .transpose()
    }

    fn insert_user(&self, user_id: &str, time_zone: &str, now: i64) -> R<()> {
        self.execute(
            "INSERT INTO users (id, time_zone, created_at) VALUES (?1, ?2, ?3) ON CONFLICT (id) DO NOTHING",
            params![user_id, time_zone, now],
        )?;
        Ok(())
    }

    fn put_user_profile(&self, user_id: &str, p: &WireProfile) -> R<()> {
        let reminders = serde_json::to_string(&p.reminders).map_err(documents::internal)?;
        self.execute(
            "UPDATE users SET time_zone = ?1, day_start_minutes = ?2, reminders = ?3, profile_changed_at = ?4
             WHERE id = ?5",
            params![p.time_zone, p.day_start_minutes, reminders, p.changed_at, user_id],
        )?;
        Ok(())
    }

    fn seen_until(&self, user_id: &str) -> R<i64> {
        let seen = self
            .prepare_cached("SELECT seen_until FROM users WHERE id = ?1")?
            .query_row([user_id], |r| r.get(0))
            .optional()?;
        Ok(seen.unwrap_or(0))
    }

    fn raise_seen_until(&self, user_id: &str, at: i64) -> R<()> {
        self.execute("UPDATE users SET seen_until = MAX(seen_until, ?1) WHERE id = ?2", params![at, user_id])?;
        Ok(())
    }

    fn open_invite(&self, code_hash: &[u8]) -> R<Option<OpenInvite>> {
        Ok(self
            .query_row(
                "SELECT cohort_id, role, display_name, time_zone, for_user, expires_at FROM invites
                 WHERE code_hash = ?1 AND used_at IS NULL",
                [code_hash],
                |r| {
                    Ok(OpenInvite {
                        cohort_id: r.get(0)?,
                        role: r.get(1)?,
                        display_name: r.get(2)?,
                        time_zone: r.get(3)?,
                        for_user: r.get(4)?,
                        expires_at: r.get(5)?,
                    })
                },
            )
            .optional()?)
    }

    fn insert_link_code(
        &self,
        code_hash: &[u8],
        user_id: &str,
        cohort_id: &str,
        shown_by: &str,
        expires_at: i64,
    ) -> R<()> {
        // Codes expired a day ago are of no use to anyone, not even for an error message.
        self.execute("DELETE FROM link_codes WHERE expires_at < ?1", [expires_at - 86_400_000])?;
        self.execute(
            "INSERT INTO link_codes (code_hash, user_id, cohort_id, shown_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![code_hash, user_id, cohort_id, shown_by, expires_at],
        )?;
        Ok(())
    }

    fn claim_link_code(&self, code_hash: &[u8], now: i64) -> R<Option<(String, String)>> {
        Ok(self
            .query_row(
                "UPDATE link_codes SET used_at = ?1 WHERE code_hash = ?2 AND used_at IS NULL AND expires_at > ?1
                 RETURNING user_id, cohort_id",
                params![now, code_hash],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    fn user_devices(&self, user_id: &str) -> R<Vec<DeviceRecord>> {
        let mut stmt = self.prepare_cached(
            "SELECT id, cohort_id, name, created_at, revoked_at FROM devices WHERE user_id = ?1
             ORDER BY created_at DESC, id",
        )?;
        let rows = stmt.query_map([user_id], |r| {
            Ok(DeviceRecord {
                device_id: r.get(0)?,
                cohort_id: r.get(1)?,
                name: r.get(2)?,
                created_at: r.get(3)?,
                revoked_at: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn claim_invite(&self, code_hash: &[u8], user_id: &str, now: i64) -> R<bool> {
        let changed = self.execute(
            "UPDATE invites SET used_at = ?1, user_id = ?2 WHERE code_hash = ?3 AND used_at IS NULL",
            params![now, user_id, code_hash],
        )?;
        Ok(changed == 1)
    }

    fn insert_invite(&self, i: &NewInvite<'_>, now: i64) -> R<()> {
        self.execute(
            "INSERT INTO invites (code_hash, cohort_id, role, display_name, time_zone, created_at, for_user, expires_at,
                 assignment)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                i.code_hash,
                i.cohort_id,
                i.role,
                i.display_name,
                i.time_zone,
                now,
                i.for_user,
                i.expires_at,
                i.assignment
            ],
        )?;
        Ok(())
    }

    fn invites_of(&self, cohort_id: &str) -> R<Vec<InviteRow>> {
        let mut stmt = self.prepare_cached(
            "SELECT substr(hex(code_hash), 1, ?2), role, display_name, for_user, created_at, expires_at, used_at
             FROM invites WHERE cohort_id = ?1 ORDER BY created_at DESC",
        )?;
        let rows = stmt.query_map(params![cohort_id, people::INVITE_ID_CHARS as i64], |r| {
            Ok(InviteRow {
                id: r.get(0)?,
                role: r.get(1)?,
                display_name: r.get(2)?,
                for_user: r.get(3)?,
                created_at: r.get(4)?,
                expires_at: r.get(5)?,
                used_at: r.get(6)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn expire_invite(&self, id: &str, now: i64) -> R<bool> {
        let changed = self.execute(
            "UPDATE invites SET expires_at = ?2
             WHERE substr(hex(code_hash), 1, ?3) = ?1 AND used_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
            params![id, now, people::INVITE_ID_CHARS as i64],
        )?;
        Ok(changed > 0)
    }

    fn insert_device(
        &self,
        id: &str,
        user_id: &str,
        cohort_id: &str,
        token_hash: &[u8],
        name: &str,
        now: i64,
    ) -> R<()> {
        self.execute(
            "INSERT INTO devices (id, user_id, cohort_id, token_hash, name, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![id, user_id, cohort_id, token_hash, name, now],
        )?;
        Ok(())
    }

    fn revoke_device(&self, device_id: &str, now: i64) -> R<bool> {
        let changed = self.execute(
            "UPDATE devices SET revoked_at = ?1 WHERE id = ?2 AND revoked_at IS NULL",
            params![now, device_id],
        )?;
        Ok(changed > 0)
    }

    fn insert_practice_log(&self, log: &NewLog<'_>, now: i64) -> R<()> {
        // `seq` is the rowid: with one writer it grows in commit order.
        self.prepare_cached(
            "INSERT OR IGNORE INTO practice_logs (id, user_id, cohort_id, local_date, body, received_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![log.id, log.user_id, log.cohort_id, log.local_date, log.body, now])?;
        Ok(())
    }

    fn practice_log_exists(&self, id: &str) -> R<bool> {
        exists(self, "SELECT 1 FROM practice_logs WHERE id = ?1", [id])
    }

    fn entries_stored_after(&self, doc: &str, after_ms: i64) -> R<Vec<String>> {
        let mut stmt = self.prepare_cached(
            "SELECT key FROM doc_objects WHERE doc_id = ?1 AND container IN ('feedback', 'replies')
             GROUP BY key HAVING MIN(stored_at) > ?2 ORDER BY key",
        )?;
        let rows = stmt.query_map(params![doc, after_ms], |r| r.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn practice_log_user(&self, id: &str) -> R<Option<String>> {
        Ok(self
            .prepare_cached("SELECT user_id FROM practice_logs WHERE id = ?1")?
            .query_row([id], |r| r.get(0))
            .optional()?)
    }

    fn practice_log_body(&self, id: &str) -> R<Option<(String, String, String)>> {
        Ok(self
            .prepare_cached("SELECT user_id, cohort_id, body FROM practice_logs WHERE id = ?1")?
            .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?)
    }

    fn insert_story(&self, s: &StoryRecord) -> R<()> {
        self.prepare_cached(STORY_INSERT)?.execute(params![
            s.log_id,
            s.user_id,
            s.cohort_id,
            s.prompt_id,
            s.local_date,
            s.kind,
            s.note,
            s.link,
            s.shared_at
        ])?;
        Ok(())
    }

    fn upsert_calibration(
        &self,
        cohort_id: &str,
        user_id: &str,
        exemplar_id: &str,
        scores: &str,
        rated_at: i64,
    ) -> R<()> {
        self.prepare_cached(CALIBRATION_UPSERT)?.execute(params![cohort_id, user_id, exemplar_id, scores, rated_at])?;
        Ok(())
    }

    fn logs_on_day(&self, user_id: &str, local_date: &str) -> R<i64> {
        Ok(self
            .prepare_cached("SELECT COUNT(*) FROM practice_logs WHERE user_id = ?1 AND local_date = ?2")?
            .query_row(params![user_id, local_date], |r| r.get(0))?)
    }

    fn own_logs_after(&self, user_id: &str, after: i64, limit: i64) -> R<Vec<(i64, String)>> {
        let mut stmt = self.prepare_cached(
            "SELECT seq, body FROM practice_logs WHERE user_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        let rows = stmt.query_map(params![user_id, after, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn practice_logs_after(&self, cohort_id: &str, after: i64, except_user: &str, limit: i64) -> R<Vec<(i64, String)>> {
        let mut stmt = self.prepare_cached(
            "SELECT seq, body FROM practice_logs WHERE cohort_id = ?1 AND seq > ?2 AND user_id != ?3 ORDER BY seq LIMIT ?4",
        )?;
        let rows = stmt.query_map(params![cohort_id, after, except_user, limit], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Storage for SqliteStorage {
    fn authenticate(&self, token_hash: &[u8]) -> Result<Option<Device>, ApiError> {
        self.read(|conn| {
            for query in [people::DEVICE_IN_ITS_COHORT, people::DEVICE_IN_ANOTHER_COHORT] {
                let found = conn
                    .prepare_cached(query)?
                    .query_row([token_hash], |r| {
                        Ok(Device { device_id: r.get(0)?, user_id: r.get(1)?, cohort_id: r.get(2)?, role: r.get(3)? })
                    })
                    .optional()?;
                if found.is_some() {
                    return Ok(found);
                }
            }
            Ok(None)
        })
    }

    fn sync(&self, device: &Device, request: CheckedRequest) -> Result<(SyncResponse, SyncStats), ApiError> {
        if people::speaks_for_person(&request) {
            self.write(|tx| people::apply_person(tx, &self.server_actor, &device.user_id, &request))?;
        }
        if request.writes() {
            // Checked, stored and answered in a transaction shared with the other writes of the
            // moment: the writer's page cache stays warm (a reader's is emptied by every commit,
            // and re-reading it cost more than the answer itself, measured with sync-load on 2
            // cores). The answer is sent only once the transaction is on disk.
            let (graphs, writer, rules) = (self.graphs.clone(), device.clone(), self.rules);
            self.group.run(move |conn| {
                let stored = round_trip::check_and_store(conn, &graphs, &rules, &writer, &request)?;
                round_trip::answer(conn, &writer, &request, stored)
            })
        } else {
            // Nothing pushed: read beside the writer (most syncs).
            self.read(|conn| round_trip::sync(conn, &self.graphs, &self.rules, device, &request))
        }
    }

    fn ping(&self) -> Result<(), ApiError> {
        self.read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM programs", [], |r| r.get::<_, i64>(0)).map(|_| ())?))
    }

    fn counts(&self) -> Result<(u64, u64), ApiError> {
        self.read(|conn| {
            let docs: i64 = conn.query_row("SELECT COUNT(*) FROM docs", [], |r| r.get(0))?;
            let changes: i64 = conn.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))?;
            Ok((docs.max(0) as u64, changes.max(0) as u64))
        })
    }

    fn saved_document(&self, doc_id: &str) -> Result<(Vec<u8>, i64), ApiError> {
        self.read(|conn| saved_document(conn, doc_id))
    }

    fn compact(&self, min_new_changes: u64) -> Result<usize, ApiError> {
        let due: Vec<String> = self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT d.doc_id FROM docs d LEFT JOIN doc_snapshots s ON s.doc_id = d.doc_id
                 WHERE d.last_seq - COALESCE(s.upto_seq, 0) >= ?1",
            )?;
            let rows = stmt.query_map([min_new_changes as i64], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })?;
        let mut written = 0;
        for doc in &due {
            // Built beside the writer; only storing it takes the writer, briefly.
            let snapshot = self.read(|conn| snapshot_of(conn, doc));
            match snapshot.and_then(|(upto, bytes)| self.write(|tx| tx.put_snapshot(doc, upto, &bytes))) {
                Ok(()) => written += 1,
                Err(err) => {
                    tracing::warn!(doc = %doc, error = %err.detail(), "compaction skipped a document; see `admin check`")
                }
            }
        }
        Ok(written)
    }

    fn check_documents(&self) -> Result<Vec<DocProblem>, ApiError> {
        self.read(|conn| repair::check(conn))
    }

    admin_writes!();

    fn programs(&self) -> Result<Vec<ProgramRow>, ApiError> {
        self.read(|conn| {
            let mut stmt = conn.prepare("SELECT id, title, pack_id, pack_version FROM programs ORDER BY id")?;
            let rows = stmt.query_map([], |r| {
                Ok(ProgramRow { id: r.get(0)?, title: r.get(1)?, pack_id: r.get(2)?, pack_version: r.get(3)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn cohorts(&self) -> Result<Vec<CohortRow>, ApiError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT c.id, c.program_id, c.title, (SELECT COUNT(*) FROM members m WHERE m.cohort_id = c.id), c.arm FROM cohorts c ORDER BY c.id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(CohortRow { id: r.get(0)?, program_id: r.get(1)?, title: r.get(2)?, members: r.get(3)?, arm: r.get(4)? })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    fn members(&self, cohort_id: &str) -> Result<Vec<MemberRow>, ApiError> {
        self.read(|conn| {
            let mut stmt = conn.prepare(
                "SELECT m.user_id, m.display_name, m.role,
                        (SELECT COUNT(*) FROM devices d WHERE d.user_id = m.user_id AND d.revoked_at IS NULL), m.left_on
                 FROM members m WHERE m.cohort_id = ?1 ORDER BY m.role, m.display_name",
            )?;
            let rows = stmt.query_map([cohort_id], |r| {
                Ok(MemberRow {
                    user_id: r.get(0)?,
                    display_name: r.get(1)?,
                    role: r.get(2)?,
                    devices: r.get(3)?,
                    left_on: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::sample_changes::feedback_entry;
    use chrono::{Days, NaiveDate};
    use microcohort_core::docs::cohort as cohort_doc;
    use microcohort_core::docs::guard;
    use microcohort_core::domain::blueprint::Blueprint;
    use microcohort_core::domain::roster::Roster;

    /// A storage holding program p1 (day 1 on `start`, UTC, the built-in pack) and its cohort c1.
    fn with_cohort(dir: &Path, start: NaiveDate) -> SqliteStorage {
        let storage = SqliteStorage::open(&dir.join("db.sqlite")).unwrap();
        let blueprint = serde_json::to_string(&Blueprint::default_90_days(start, chrono_tz::UTC)).unwrap();
        let pack = (microcohort_core::DEFAULT_PROMPT_PACK_NAME, microcohort_core::DEFAULT_PROMPT_PACK);
        storage.create_program("p1", "P", &blueprint, pack.0, pack.1).unwrap();
        storage.create_cohort("c1", "p1", "C").unwrap();
        storage
    }

    #[test]
    fn writes_reach_the_database_file_itself_without_any_commit_copying_them_back() {
        let dir = tempfile::tempdir().unwrap();
        let storage = with_cohort(dir.path(), NaiveDate::from_ymd_opt(2026, 3, 2).unwrap());
        join(&storage, "Ada");
        // A copy of the file alone, without its WAL, holds the join once the background
        // checkpoint has run: the writer's commits never copy the WAL back themselves.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let copy = dir.path().join("copy.sqlite");
        loop {
            std::fs::copy(dir.path().join("db.sqlite"), &copy).unwrap();
            let members = Connection::open(&copy)
                .and_then(|c| c.query_row("SELECT COUNT(*) FROM members WHERE cohort_id = 'c1'", [], |r| r.get(0)));
            if members.ok() == Some(1i64) {
                break;
            }
            assert!(std::time::Instant::now() < deadline, "the WAL was never copied back into the database file");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    fn join(storage: &SqliteStorage, name: &str) -> JoinResponse {
        let code = storage.create_invite("c1", "learner", name, "UTC", None).unwrap();
        let token = auth::new_token();
        storage
            .join(&crate::storage::people::JoinRequest::new(
                &auth::hash_invite(&code),
                "phone",
                &auth::hash_secret(&token),
                &token,
            ))
            .unwrap()
    }

    #[test]
    fn a_link_code_links_once_and_not_after_it_expired() {
        let dir = tempfile::tempdir().unwrap();
        let storage = with_cohort(dir.path(), chrono::Utc::now().date_naive());
        let ada = join(&storage, "A");
        let device = storage.authenticate(&auth::hash_secret(&ada.device_token)).unwrap().unwrap();
        let (code, expires_at) = storage.create_link_code(&device).unwrap();
        let hash = auth::hash_invite(&code);
        // At the moment it expires it no longer links, and a fresh one works once.
        assert_eq!(storage.write(|tx| tx.claim_link_code(&hash, expires_at)).unwrap(), None);
        let (code, _) = storage.create_link_code(&device).unwrap();
        let hash = auth::hash_invite(&code);
        let now = crate::storage::documents::now_ms();
        let claimed = storage.write(|tx| tx.claim_link_code(&hash, now)).unwrap();
        assert_eq!(claimed, Some((ada.user_id.clone(), "c1".to_owned())));
        assert_eq!(storage.write(|tx| tx.claim_link_code(&hash, now)).unwrap(), None, "used");
    }

    /// The roster in the cohort document as saved, and the `doc_seq` it reaches.
    fn saved_roster(storage: &SqliteStorage) -> (Roster, i64) {
        let (bytes, upto) = storage.saved_document("cohort:c1").unwrap();
        (cohort_doc::roster(&guard::load(&bytes).unwrap()), upto)
    }

    #[test]
    fn snapshots_cover_the_change_rows_and_later_writes_build_on_them() {
        let dir = tempfile::tempdir().unwrap();
        let storage = with_cohort(dir.path(), chrono::Utc::now().date_naive());
        for name in ["A", "B", "C"] {
            join(&storage, name);
        }
        // Genesis + 3 roster changes: due at a threshold of 4, not at 5.
        assert_eq!(storage.compact(5).unwrap(), 0);
        assert_eq!(storage.compact(4).unwrap(), 1);
        assert_eq!(storage.compact(1).unwrap(), 0, "nothing new since");
        join(&storage, "D");
        let (roster, upto) = saved_roster(&storage);
        assert_eq!(upto, 5);
        assert_eq!(roster.members().len(), 4);
    }

    #[test]
    fn compaction_skips_a_document_that_does_not_load_and_snapshots_the_others() {
        use microcohort_core::docs::{DocId, genesis};
        let dir = tempfile::tempdir().unwrap();
        let storage = with_cohort(dir.path(), chrono::Utc::now().date_naive());
        join(&storage, "A");
        // As a server before the trust boundary stored it: an entry whose field names, as what
        // it overwrites, an operation the week does not have; the week applies it but cannot
        // load again once saved.
        let doc = DocId::week("c1", 1);
        let mut week = genesis(&doc);
        let genesis_change = week.get_changes(&[]).pop().unwrap();
        let actor = ActorId::random();
        week.set_actor(actor.clone());
        let mut ghost = feedback_entry(&mut week, "u/f").decode();
        ghost.operations[1].pred = vec![automerge::legacy::OpId(999, actor)].into();
        ghost.hash = None;
        let ghost = automerge::Change::from(ghost);
        storage
            .write(|tx| {
                for change in [genesis_change.raw_bytes(), ghost.raw_bytes()] {
                    repair::store_unchecked(tx, &doc.to_string(), change)?;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(storage.compact(1).unwrap(), 1, "the cohort document, not the broken week");
        let problems = storage.check_documents().unwrap();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].doc_id, doc.to_string());
        assert!(problems[0].unloadable.is_some() && problems[0].offending.len() == 1, "{problems:?}");
        assert_eq!(storage.repair_document(&doc.to_string()).unwrap().len(), 1);
        assert!(storage.check_documents().unwrap().is_empty());
        assert_eq!(storage.compact(1).unwrap(), 1, "the repaired week");
    }

    #[test]
    fn a_membership_can_be_dated_back_in_the_table_and_the_cohort_document() {
        let dir = tempfile::tempdir().unwrap();
        let start = chrono::Utc::now().date_naive() - Days::new(20);
        let storage = with_cohort(dir.path(), start);
        let joined = join(&storage, "Ana");

        storage.set_joined_on("c1", &joined.user_id, start).unwrap();
        assert_eq!(saved_roster(&storage).0.member(&joined.user_id).unwrap().joined_on, start);
        let in_table: String = storage
            .read(|conn| {
                Ok(conn
                    .query_row("SELECT joined_on FROM members WHERE user_id = ?1", [&joined.user_id], |r| r.get(0))?)
            })
            .unwrap();
        assert_eq!(in_table, start.to_string());

        assert!(matches!(storage.set_joined_on("c1", "nobody", start), Err(ApiError::NotFound(_))));
        storage.remove_member("c1", &joined.user_id, Some(start + Days::new(2))).unwrap();
        let after_leaving = storage.set_joined_on("c1", &joined.user_id, start + Days::new(3));
        assert!(matches!(after_leaving, Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn a_batch_checked_before_another_write_to_its_document_is_checked_again() {
        use automerge::{ROOT, ReadDoc};
        use microcohort_core::docs::{DocId, genesis};
        use microcohort_core::sync::request::check_request;
        use microcohort_core::sync::wire::{DocPush, DocStatus, SyncRequest};
        use serde_bytes::ByteBuf;

        let dir = tempfile::tempdir().unwrap();
        let storage = with_cohort(dir.path(), chrono::Utc::now().date_naive());
        let j = join(&storage, "A");
        let device = Device { device_id: j.device_id, user_id: j.user_id, cohort_id: j.cohort_id, role: j.role };
        let doc = DocId::week("c1", 1);
        let request = |changes: Vec<&[u8]>| {
            let push = DocPush {
                doc_id: doc.to_string(),
                changes: changes.into_iter().map(|c| ByteBuf::from(c.to_vec())).collect(),
                ..Default::default()
            };
            check_request("c1", SyncRequest { docs: vec![push], ..Default::default() }).unwrap()
        };
        let mut week = genesis(&doc);
        let genesis_change = week.get_changes(&[]).pop().unwrap();
        let (stored, _) = storage.sync(&device, request(vec![genesis_change.raw_bytes()])).unwrap();
        assert_eq!(stored.docs[0].status, DocStatus::Ok);
        // Two phones of one actor (a forged clone) each write change 1 of that actor.
        let actor = ActorId::random();
        week.set_actor(actor.clone());
        let mut other = week.fork();
        other.set_actor(actor);
        let user = &device.user_id;
        let (first, second) =
            (feedback_entry(&mut week, &format!("{user}/f1")), feedback_entry(&mut other, &format!("{user}/f2")));
        let (first, second) = (request(vec![first.raw_bytes()]), request(vec![second.raw_bytes()]));
        // Both are checked against the same committed state, and each alone passes...
        let view = |r: &CheckedRequest| storage.read(|c| round_trip::check(c, &storage.graphs, &device, r)).unwrap();
        let (checked_first, checked_second) = (view(&first), view(&second));
        let write = |r: &CheckedRequest, checked| {
            let stored = storage
                .write(|tx| round_trip::store(tx, &storage.graphs, &storage.rules, &device, r, checked))
                .unwrap();
            storage.read(|c| round_trip::answer(c, &device, r, stored)).unwrap()
        };
        // ...but once the first is stored, the second is checked again and refused.
        let (answer, _) = write(&first, checked_first);
        assert_eq!(answer.docs[0].status, DocStatus::Ok);
        let (answer, stats) = write(&second, checked_second);
        assert!(
            matches!(&answer.docs[0].status, DocStatus::Rejected { reason, .. } if reason == "bad_seq"),
            "{answer:?}"
        );
        assert_eq!(stats.changes_stored, 0);
        let (bytes, _) = storage.saved_document(&doc.to_string()).unwrap();
        let saved = guard::load(&bytes).unwrap();
        let feedback = saved.get(ROOT, "feedback").unwrap().unwrap().1;
        assert_eq!(saved.keys(&feedback).count(), 1, "one change numbered 1 by that actor is stored, not two");
    }
}
