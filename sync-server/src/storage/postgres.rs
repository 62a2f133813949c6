//! PostgreSQL storage, for several server processes over one database.
//!
//! The `postgres` crate (the blocking face of `tokio-postgres`) with an `r2d2` pool: [`Storage`]
//! is synchronous and runs on blocking threads, so a blocking client needs no runtime bridge per
//! query; each pooled connection keeps its prepared statements.
//!
//! Concurrency between processes, at READ COMMITTED:
//! - a writer locks a document's `docs` row before reading what it has, and keeps it until
//!   commit, so `doc_seq` grows in commit order per document and a change is never stored twice;
//! - practice logs take their per-cohort sequence from a locked counter row, likewise;
//! - deadlocks, serialization failures and lost races run the whole transaction again;
//! - compaction never regresses a snapshot and skips a document another process is compacting.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use automerge::ActorId;
use microcohort_core::sync::wire::{JoinResponse, PackFile, SyncResponse, WireProfile};
use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use rand::Rng;

use super::documents::{self, saved_document, snapshot_of};
use super::enrolment;
use super::graph_cache::GraphCache;
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

/// Times a transaction that lost a race (deadlock, serialization failure, concurrent insert)
/// is tried before the request fails.
const ATTEMPTS: u32 = 8;

/// A pooled connection with its prepared statements.
pub struct Connection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

struct Manager {
    config: postgres::Config,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Connection;
    type Error = postgres::Error;

    fn connect(&self) -> Result<Connection, postgres::Error> {
        let mut client = self.config.connect(NoTls)?;
        // Acknowledged means on disk, whatever the database's own default says.
        client.batch_execute("SET synchronous_commit = on")?;
        Ok(Connection { client, statements: HashMap::new() })
    }

    fn is_valid(&self, conn: &mut Connection) -> Result<(), postgres::Error> {
        conn.client.simple_query("").map(|_| ())
    }

    fn has_broken(&self, conn: &mut Connection) -> bool {
        conn.client.is_closed()
    }
}

pub struct PostgresStorage {
    /// `None` only while dropping.
    pool: Option<r2d2::Pool<Manager>>,
    server_actor: ActorId,
    graphs: GraphCache,
    /// What the server believes of uploaded practice logs.
    rules: LogRules,
}

impl Drop for PostgresStorage {
    /// Closing a blocking client blocks: the server drops its storage on an async thread.
    fn drop(&mut self) {
        let pool = self.pool.take();
        off_async(|| drop(pool));
    }
}

fn pg_error(err: postgres::Error) -> ApiError {
    ApiError::Internal(format!("PostgreSQL: {err}"))
}

/// Errors after which running the transaction again can succeed.
fn is_race(err: &postgres::Error) -> bool {
    err.code().is_some_and(|code| {
        [SqlState::T_R_SERIALIZATION_FAILURE, SqlState::T_R_DEADLOCK_DETECTED, SqlState::UNIQUE_VIOLATION]
            .contains(code)
    })
}

/// The blocking client must not run, nor be dropped, on an async worker thread (`/metrics` and
/// start-up call [`Storage::counts`] there, and the server drops its state there); on blocking
/// threads and outside a runtime this is a plain call.
pub(crate) fn off_async<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

fn prepared(
    client: &mut impl postgres::GenericClient,
    statements: &mut HashMap<&'static str, Statement>,
    sql: &'static str,
) -> Result<Statement, postgres::Error> {
    if let Some(statement) = statements.get(sql) {
        return Ok(statement.clone());
    }
    let statement = client.prepare(sql)?;
    statements.insert(sql, statement.clone());
    Ok(statement)
}

impl Connection {
    fn query(&mut self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> R<Vec<Row>> {
        let statement = prepared(&mut self.client, &mut self.statements, sql).map_err(pg_error)?;
        self.client.query(&statement, params).map_err(pg_error)
    }
}

impl PostgresStorage {
    /// Uses `rules` for the practice logs devices upload (the default: a 14-day back-fill window).
    pub fn with_log_rules(mut self, rules: LogRules) -> Self {
        self.rules = rules;
        self
    }

    /// Connects, creates or migrates the schema, and keeps up to `pool_size` connections.
    pub fn open(url: &str, pool_size: u32) -> Result<Self, String> {
        let config: postgres::Config = url.parse().map_err(|e| format!("database URL: {e}"))?;
        off_async(|| {
            let mut client = config.connect(NoTls).map_err(|e| format!("cannot connect to PostgreSQL: {e}"))?;
            super::postgres_schema::migrate(&mut client).map_err(|e| match e {
                ApiError::Internal(detail) => detail,
                other => other.to_string(),
            })?;
            let server_actor = Self::server_actor(&mut client).map_err(|e| format!("PostgreSQL: {e}"))?;
            let pool = r2d2::Pool::builder()
                .max_size(pool_size.max(1))
                // Every connection opened up front: a burst of requests never waits for new ones.
                .min_idle(None)
                .connection_timeout(Duration::from_secs(30))
                .build(Manager { config })
                .map_err(|e| format!("PostgreSQL pool: {e}"))?;
            Ok(Self { pool: Some(pool), server_actor, graphs: GraphCache::default(), rules: LogRules::default() })
        })
    }

    /// The server's own actor, shared by every process over this database (the first one to
    /// start chooses it).
    fn server_actor(client: &mut Client) -> Result<ActorId, postgres::Error> {
        let fresh = ActorId::random();
        client.execute(
            "INSERT INTO meta (key, value) VALUES ('server_actor', $1) ON CONFLICT (key) DO NOTHING",
            &[&fresh.to_bytes()],
        )?;
        let stored: Vec<u8> = client.query_one("SELECT value FROM meta WHERE key = 'server_actor'", &[])?.get(0);
        client.execute(
            "INSERT INTO actors (actor, user_id) VALUES ($1, NULL) ON CONFLICT (actor) DO NOTHING",
            &[&stored],
        )?;
        Ok(ActorId::from(stored))
    }

    fn connection(&self) -> R<r2d2::PooledConnection<Manager>> {
        let pool = self.pool.as_ref().ok_or_else(|| ApiError::Internal("storage closed".into()))?;
        pool.get().map_err(|e| ApiError::Internal(format!("PostgreSQL pool: {e}")))
    }

    fn read<T>(&self, f: impl FnOnce(&mut Connection) -> R<T>) -> R<T> {
        off_async(|| f(&mut *self.connection()?))
    }

    /// Runs `f` without a transaction: for round trips that write nothing (each statement sees
    /// what is committed, as inside a READ COMMITTED transaction), saving BEGIN and COMMIT.
    fn autocommit<T>(&self, f: impl FnOnce(&PgTx<'_, Client>) -> R<T>) -> R<T> {
        off_async(|| {
            let mut conn = self.connection()?;
            let Connection { client, statements } = &mut *conn;
            f(&PgTx { conn: RefCell::new(client), statements: RefCell::new(statements), raced: Cell::new(false) })
        })
    }

    /// Runs `f` in a transaction, again from the start while it loses races with other writers.
    fn write<T>(&self, f: impl Fn(&PgTx<'_, postgres::Transaction<'_>>) -> R<T>) -> R<T> {
        off_async(|| {
            let mut attempt = 1;
            loop {
                // `(error, lost a race)`; the connection goes back to the pool before a retry.
                let outcome: Result<T, (ApiError, bool)> = {
                    let mut conn = self.connection()?;
                    let Connection { client, statements } = &mut *conn;
                    let mut tx = client.transaction().map_err(pg_error)?;
                    let pg = PgTx {
                        conn: RefCell::new(&mut tx),
                        statements: RefCell::new(statements),
                        raced: Cell::new(false),
                    };
                    let result = f(&pg);
                    let raced = pg.raced.get();
                    match result {
                        Ok(value) => tx.commit().map(|()| value).map_err(|e| {
                            let race = is_race(&e);
                            (pg_error(e), race)
                        }),
                        Err(err) => Err((err, raced)),
                    }
                };
                match outcome {
                    Ok(value) => return Ok(value),
                    Err((err, true)) if attempt < ATTEMPTS => {
                        tracing::debug!(%err, attempt, "transaction lost a race with another writer; running it again");
                        let pause = rand::rng().random_range(1..=5 * u64::from(attempt));
                        std::thread::sleep(Duration::from_millis(pause));
                        attempt += 1;
                    }
                    Err((err, _)) => return Err(err),
                }
            }
        })
    }
}

/// A transaction (or, for read-only round trips, a plain connection) seen as [`Tx`].
pub struct PgTx<'a, C: postgres::GenericClient> {
    conn: RefCell<&'a mut C>,
    statements: RefCell<&'a mut HashMap<&'static str, Statement>>,
    raced: Cell<bool>,
}

impl<C: postgres::GenericClient> PgTx<'_, C> {
    fn fail(&self, err: postgres::Error) -> ApiError {
        if is_race(&err) {
            self.raced.set(true);
        }
        pg_error(err)
    }

    fn query(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> R<Vec<Row>> {
        let mut conn = self.conn.borrow_mut();
        let statement = prepared(&mut **conn, &mut self.statements.borrow_mut(), sql).map_err(|e| self.fail(e))?;
        conn.query(&statement, params).map_err(|e| self.fail(e))
    }

    fn execute(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)]) -> R<u64> {
        let mut conn = self.conn.borrow_mut();
        let statement = prepared(&mut **conn, &mut self.statements.borrow_mut(), sql).map_err(|e| self.fail(e))?;
        conn.execute(&statement, params).map_err(|e| self.fail(e))
    }

    fn first<T>(&self, sql: &'static str, params: &[&(dyn ToSql + Sync)], get: impl FnOnce(&Row) -> T) -> R<Option<T>> {
        Ok(self.query(sql, params)?.first().map(get))
    }

    /// False while another process holds the same document's compaction lock.
    fn try_compaction_lock(&self, doc: &str) -> R<bool> {
        let locked = self.first("SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))", &[&doc], |r| r.get(0))?;
        Ok(locked.unwrap_or(false))
    }
}

impl<C: postgres::GenericClient> Tx for PgTx<'_, C> {
    fn lock_doc(&self, doc: &str) -> R<()> {
        let lock = "SELECT 1 FROM docs WHERE doc_id = $1 FOR UPDATE";
        if self.query(lock, &[&doc])?.is_empty() {
            self.execute(
                "INSERT INTO docs (doc_id, last_seq) VALUES ($1, 0) ON CONFLICT (doc_id) DO NOTHING",
                &[&doc],
            )?;
            self.query(lock, &[&doc])?;
        }
        Ok(())
    }

    fn append_change(&self, doc: &str, c: &NewChange<'_>) -> R<i64> {
        // One round trip: the document's row (locked by this transaction) gives the number.
        let seq = self.first(
            "WITH next AS (
                 INSERT INTO docs (doc_id, last_seq) VALUES ($1, 1)
                 ON CONFLICT (doc_id) DO UPDATE SET last_seq = docs.last_seq + 1 RETURNING last_seq)
             INSERT INTO changes (doc_id, hash, actor, seq, deps, body, doc_seq, start_op, max_op, base_seq)
             SELECT $1, $2, $3, $4, $5, $6, last_seq, $7, $8, COALESCE($9, last_seq) FROM next RETURNING doc_seq",
            &[&doc, &c.hash, &c.actor, &c.seq, &c.deps, &c.body, &c.start_op, &c.max_op, &c.base_seq],
            |r| r.get(0),
        )?;
        seq.ok_or_else(|| ApiError::Internal("no doc_seq returned".into()))
    }

    fn change_seq(&self, doc: &str, hash: &[u8]) -> R<Option<i64>> {
        self.first("SELECT doc_seq FROM changes WHERE doc_id = $1 AND hash = $2", &[&doc, &hash], |r| r.get(0))
    }

    fn change_facts(&self, doc: &str, hash: &[u8]) -> R<Option<(i64, i64)>> {
        let sql = "SELECT COALESCE(max_op, 0), base_seq FROM changes WHERE doc_id = $1 AND hash = $2";
        self.first(sql, &[&doc, &hash], |r| (r.get(0), r.get(1)))
    }

    fn actor_change_seq(&self, doc: &str, actor: &[u8], seq: i64) -> R<Option<i64>> {
        let sql = "SELECT doc_seq FROM changes WHERE doc_id = $1 AND actor = $2 AND seq = $3";
        self.first(sql, &[&doc, &actor, &seq], |r| r.get(0))
    }

    fn actor_tip(&self, doc: &str, actor: &[u8]) -> R<Option<(i64, i64)>> {
        self.first(
            "SELECT seq, COALESCE(max_op, 0) FROM changes WHERE doc_id = $1 AND actor = $2 ORDER BY seq DESC LIMIT 1",
            &[&doc, &actor],
            |r| (r.get(0), r.get(1)),
        )
    }

    fn change_with_op(&self, doc: &str, actor: &[u8], counter: i64) -> R<Option<Vec<u8>>> {
        self.first(
            "SELECT body FROM changes WHERE doc_id = $1 AND actor = $2 AND start_op <= $3 AND max_op >= $3
             ORDER BY start_op DESC LIMIT 1",
            &[&doc, &actor, &counter],
            |r| r.get(0),
        )
    }

    fn graph_after(&self, doc: &str, after: i64) -> R<Vec<GraphRow>> {
        let rows = self.query(
            "SELECT doc_seq, hash, actor, seq, deps FROM changes WHERE doc_id = $1 AND doc_seq > $2 ORDER BY doc_seq",
            &[&doc, &after],
        )?;
        Ok(rows
            .iter()
            .map(|r| GraphRow { doc_seq: r.get(0), hash: r.get(1), actor: r.get(2), seq: r.get(3), deps: r.get(4) })
            .collect())
    }

    fn replace_heads(&self, doc: &str, removed: &[&[u8]], added: &[u8]) -> R<()> {
        self.execute(
            "WITH gone AS (DELETE FROM doc_heads WHERE doc_id = $1 AND hash = ANY($2))
             INSERT INTO doc_heads (doc_id, hash) VALUES ($1, $3) ON CONFLICT DO NOTHING",
            &[&doc, &removed, &added],
        )?;
        Ok(())
    }

    fn heads(&self, doc: &str) -> R<Vec<Vec<u8>>> {
        let rows = self.query("SELECT hash FROM doc_heads WHERE doc_id = $1 ORDER BY hash", &[&doc])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn changes_after(&self, doc: &str, after: i64, limit: i64) -> R<Vec<ChangeRecord>> {
        let sql =
            "SELECT doc_seq, hash, body FROM changes WHERE doc_id = $1 AND doc_seq > $2 ORDER BY doc_seq LIMIT $3";
        let rows = self.query(sql, &[&doc, &after, &limit])?;
        Ok(rows.iter().map(|r| ChangeRecord { doc_seq: r.get(0), hash: r.get(1), body: r.get(2) }).collect())
    }

    fn snapshot(&self, doc: &str) -> R<Option<(i64, Vec<u8>)>> {
        self.first("SELECT upto_seq, bytes FROM doc_snapshots WHERE doc_id = $1", &[&doc], |r| (r.get(0), r.get(1)))
    }

    fn last_seq(&self, doc: &str) -> R<Option<i64>> {
        self.first("SELECT last_seq FROM docs WHERE doc_id = $1", &[&doc], |r| r.get(0))
    }

    fn snapshot_upto(&self, doc: &str) -> R<Option<i64>> {
        self.first("SELECT upto_seq FROM doc_snapshots WHERE doc_id = $1", &[&doc], |r| r.get(0))
    }

    fn change_at(&self, doc: &str, doc_seq: i64) -> R<Option<Vec<u8>>> {
        self.first("SELECT hash FROM changes WHERE doc_id = $1 AND doc_seq = $2", &[&doc, &doc_seq], |r| r.get(0))
    }

    fn put_snapshot(&self, doc: &str, upto_seq: i64, bytes: &[u8]) -> R<()> {
        self.execute(
            "INSERT INTO doc_snapshots (doc_id, upto_seq, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (doc_id) DO UPDATE SET upto_seq = EXCLUDED.upto_seq, bytes = EXCLUDED.bytes
             WHERE doc_snapshots.upto_seq < EXCLUDED.upto_seq",
            &[&doc, &upto_seq, &bytes],
        )?;
        Ok(())
    }

    fn object(&self, doc: &str, counter: i64, actor: &[u8]) -> R<Option<(String, String)>> {
        self.first(
            "SELECT container, owner FROM doc_objects WHERE doc_id = $1 AND counter = $2 AND actor = $3",
            &[&doc, &counter, &actor],
            |r| (r.get(0), r.get(1)),
        )
    }

    fn entry_exists(&self, doc: &str, container: &str, key: &str) -> R<bool> {
        let sql = "SELECT 1 FROM doc_objects WHERE doc_id = $1 AND container = $2 AND key = $3";
        Ok(!self.query(sql, &[&doc, &container, &key])?.is_empty())
    }

    fn insert_object(&self, doc: &str, o: &ObjectRow) -> R<()> {
        self.execute(
            "INSERT INTO doc_objects (doc_id, counter, actor, container, key, owner, stored_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[&doc, &o.counter, &o.actor, &o.container, &o.key, &o.owner, &o.stored_at],
        )?;
        Ok(())
    }

    fn actor_owner(&self, actor: &[u8]) -> R<Option<Option<String>>> {
        self.first("SELECT user_id FROM actors WHERE actor = $1", &[&actor], |r| r.get(0))
    }

    fn bind_actor(&self, actor: &[u8], user_id: Option<&str>) -> R<()> {
        self.execute(
            "INSERT INTO actors (actor, user_id) VALUES ($1, $2) ON CONFLICT (actor) DO NOTHING",
            &[&actor, &user_id],
        )?;
        Ok(())
    }

    fn lost_race(&self, what: String) -> ApiError {
        self.raced.set(true);
        ApiError::Internal(what)
    }

    fn user_doc_bytes(&self, doc: &str, user_id: &str) -> R<i64> {
        let sql = "SELECT bytes FROM doc_usage WHERE doc_id = $1 AND user_id = $2";
        Ok(self.first(sql, &[&doc, &user_id], |r| r.get(0))?.unwrap_or(0))
    }

    fn add_user_doc_bytes(&self, doc: &str, user_id: &str, bytes: i64) -> R<()> {
        self.execute(
            "INSERT INTO doc_usage (doc_id, user_id, bytes) VALUES ($1, $2, $3)
             ON CONFLICT (doc_id, user_id) DO UPDATE SET bytes = doc_usage.bytes + EXCLUDED.bytes",
            &[&doc, &user_id, &bytes],
        )?;
        Ok(())
    }

    fn doc_ids(&self) -> R<Vec<String>> {
        let rows = self.query("SELECT doc_id FROM docs WHERE last_seq > 0 ORDER BY doc_id", &[])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn was_removed(&self, doc: &str, hash: &[u8]) -> R<bool> {
        Ok(!self.query("SELECT 1 FROM removed_changes WHERE doc_id = $1 AND hash = $2", &[&doc, &hash])?.is_empty())
    }

    fn remove_change(&self, doc: &str, hash: &[u8], reason: &str, now: i64) -> R<()> {
        self.execute("DELETE FROM changes WHERE doc_id = $1 AND hash = $2", &[&doc, &hash])?;
        self.execute(
            "INSERT INTO removed_changes (doc_id, hash, reason, removed_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
            &[&doc, &hash, &reason, &now],
        )?;
        Ok(())
    }

    fn clear_derived(&self, doc: &str) -> R<()> {
        self.execute("DELETE FROM doc_heads WHERE doc_id = $1", &[&doc])?;
        self.execute("DELETE FROM doc_objects WHERE doc_id = $1", &[&doc])?;
        self.execute("DELETE FROM doc_snapshots WHERE doc_id = $1", &[&doc])?;
        self.execute("DELETE FROM doc_usage WHERE doc_id = $1", &[&doc])?;
        Ok(())
    }

    fn cohort_program(&self, cohort_id: &str) -> R<Option<ProgramRecord>> {
        let row = self.query(
            "SELECT p.id, p.title, p.blueprint, p.pack_version, c.critique_weeks, c.arm
             FROM cohorts c JOIN programs p ON p.id = c.program_id WHERE c.id = $1",
            &[&cohort_id],
        )?;
        let Some(r) = row.first() else { return Ok(None) };
        Ok(Some(ProgramRecord {
            program_id: r.get(0),
            title: r.get(1),
            blueprint: r.get(2),
            pack_version: pack_version(r.get(3))?,
            critique_weeks: r.get(4),
            arm: r.get(5),
        }))
    }

    fn program_pack(&self, program_id: &str) -> R<Option<PackFile>> {
        let rows = self
            .query("SELECT pack_id, pack_version, pack_file, pack_toml FROM programs WHERE id = $1", &[&program_id])?;
        let Some(r) = rows.first() else { return Ok(None) };
        Ok(Some(PackFile { pack_id: r.get(0), version: pack_version(r.get(1))?, file_name: r.get(2), toml: r.get(3) }))
    }

    fn program_blueprint(&self, program_id: &str) -> R<Option<String>> {
        self.first("SELECT blueprint FROM programs WHERE id = $1", &[&program_id], |r| r.get(0))
    }

    fn program_has_cohorts(&self, program_id: &str) -> R<bool> {
        Ok(!self.query("SELECT 1 FROM cohorts WHERE program_id = $1 LIMIT 1", &[&program_id])?.is_empty())
    }

    fn upsert_program(&self, p: &NewProgram<'_>, now: i64) -> R<()> {
        self.execute(
            "INSERT INTO programs (id, title, blueprint, pack_id, pack_version, pack_file, pack_toml, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET title = EXCLUDED.title, blueprint = EXCLUDED.blueprint,
                 pack_id = EXCLUDED.pack_id, pack_version = EXCLUDED.pack_version,
                 pack_file = EXCLUDED.pack_file, pack_toml = EXCLUDED.pack_toml",
            &[&p.id, &p.title, &p.blueprint, &p.pack_id, &i64::from(p.pack_version), &p.pack_file, &p.pack_toml, &now],
        )?;
        Ok(())
    }

    fn cohort_exists(&self, cohort_id: &str) -> R<bool> {
        Ok(!self.query("SELECT 1 FROM cohorts WHERE id = $1", &[&cohort_id])?.is_empty())
    }

    fn insert_cohort(&self, id: &str, program_id: &str, title: &str, arm: &str, now: i64) -> R<()> {
        self.execute(
            "INSERT INTO cohorts (id, program_id, title, arm, created_at) VALUES ($1, $2, $3, $4, $5)",
            &[&id, &program_id, &title, &arm, &now],
        )?;
        Ok(())
    }

    fn arm_cohorts(&self, program_id: &str, arm: &str, now: i64) -> R<Vec<(String, i64)>> {
        let rows = self.query(ARM_COHORTS, &[&program_id, &arm, &now])?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn lock_arm_randomisation(&self, program_id: &str) -> R<Option<(Option<i64>, i64)>> {
        let rows = self.query("SELECT arm_seed, arm_draws FROM programs WHERE id = $1 FOR UPDATE", &[&program_id])?;
        Ok(rows.first().map(|r| (r.get(0), r.get(1))))
    }

    fn set_arm_randomisation(&self, program_id: &str, seed: i64, draws: i64) -> R<()> {
        self.execute("UPDATE programs SET arm_seed = $1, arm_draws = $2 WHERE id = $3", &[&seed, &draws, &program_id])?;
        Ok(())
    }

    fn roster_rows(&self, cohort_id: &str) -> R<Vec<MemberRecord>> {
        let rows = self.query(
            "SELECT user_id, display_name, role, time_zone, day_start_minutes, joined_on, left_on, paused_on
             FROM members WHERE cohort_id = $1",
            &[&cohort_id],
        )?;
        Ok(rows
            .iter()
            .map(|r| MemberRecord {
                user_id: r.get(0),
                display_name: r.get(1),
                role: r.get(2),
                time_zone: r.get(3),
                day_start_minutes: r.get(4),
                joined_on: r.get(5),
                left_on: r.get(6),
                paused_on: r.get(7),
            })
            .collect())
    }

    fn insert_member(&self, cohort_id: &str, m: &MemberRecord) -> R<()> {
        self.execute(
            "INSERT INTO members (cohort_id, user_id, display_name, role, time_zone, day_start_minutes, joined_on)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&cohort_id, &m.user_id, &m.display_name, &m.role, &m.time_zone, &m.day_start_minutes, &m.joined_on],
        )?;
        Ok(())
    }

    fn set_paused_on(&self, cohort_id: &str, user_id: &str, paused_on: Option<&str>) -> R<()> {
        self.execute(
            "UPDATE members SET paused_on = $1 WHERE cohort_id = $2 AND user_id = $3",
            &[&paused_on, &cohort_id, &user_id],
        )?;
        Ok(())
    }

    fn set_left_on(&self, cohort_id: &str, user_id: &str, left_on: &str) -> R<()> {
        self.execute(
            "UPDATE members SET left_on = $1 WHERE cohort_id = $2 AND user_id = $3",
            &[&left_on, &cohort_id, &user_id],
        )?;
        Ok(())
    }

    fn insert_note(&self, n: &NoteRecord) -> R<()> {
        // The cohort's row lock orders the numbering by commit, so a device asking after the
        // last note it has never skips one committed later with a lower number.
        self.execute("SELECT 1 FROM cohorts WHERE id = $1 FOR UPDATE", &[&n.cohort_id])?;
        self.execute(
            "INSERT INTO member_notes (cohort_id, seq, id, from_user, to_user, body, created_at)
             SELECT $1, COALESCE(MAX(seq), 0) + 1, $2, $3, $4, $5, $6 FROM member_notes WHERE cohort_id = $1
             ON CONFLICT (from_user, id) DO NOTHING",
            &[&n.cohort_id, &n.id, &n.from_user, &n.to_user, &n.body, &n.created_at],
        )?;
        Ok(())
    }

    fn notes_after(&self, cohort_id: &str, to_user: &str, after: i64, limit: i64) -> R<Vec<NoteRecord>> {
        let rows = self.query(
            "SELECT seq, id, from_user, body, created_at FROM member_notes
             WHERE to_user = $1 AND cohort_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
            &[&to_user, &cohort_id, &after, &limit],
        )?;
        Ok(rows
            .iter()
            .map(|r| NoteRecord {
                cohort_id: cohort_id.to_owned(),
                seq: r.get(0),
                id: r.get(1),
                from_user: r.get(2),
                to_user: to_user.to_owned(),
                body: r.get(3),
                created_at: r.get(4),
            })
            .collect())
    }

    fn replace_baseline(&self, program_id: &str, learners: &[(String, String, String)]) -> R<()> {
        self.execute("DELETE FROM baselines WHERE program_id = $1", &[&program_id])?;
        for (learner, start, dates) in learners {
            self.execute(
                "INSERT INTO baselines (program_id, learner, start_date, active_dates) VALUES ($1, $2, $3, $4)",
                &[&program_id, learner, start, dates],
            )?;
        }
        Ok(())
    }

    fn set_critique_weeks(&self, cohort_id: &str, weeks: &str) -> R<()> {
        self.execute("UPDATE cohorts SET critique_weeks = $1 WHERE id = $2", &[&weeks, &cohort_id])?;
        Ok(())
    }

    fn set_joined_on(&self, cohort_id: &str, user_id: &str, joined_on: &str) -> R<()> {
        self.execute(
            "UPDATE members SET joined_on = $1 WHERE cohort_id = $2 AND user_id = $3",
            &[&joined_on, &cohort_id, &user_id],
        )?;
        Ok(())
    }

    fn active_cohorts(&self, user_id: &str) -> R<Vec<String>> {
        let rows = self.query("SELECT cohort_id FROM members WHERE user_id = $1 AND left_on IS NULL", &[&user_id])?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn set_member_day(&self, cohort_id: &str, user_id: &str, time_zone: &str, day_start_minutes: i64) -> R<()> {
        self.execute(
            "UPDATE members SET time_zone = $1, day_start_minutes = $2 WHERE cohort_id = $3 AND user_id = $4",
            &[&time_zone, &day_start_minutes, &cohort_id, &user_id],
        )?;
        Ok(())
    }

    fn user_profile(&self, user_id: &str) -> R<Option<WireProfile>> {
        self.first(
            "SELECT time_zone, day_start_minutes, reminders, profile_changed_at FROM users WHERE id = $1",
            &[&user_id],
            |r| people::stored_profile(r.get(0), r.get(1), r.get::<_, &str>(2), r.get(3)),
        )?
        .transpose()
    }

    fn insert_user(&self, user_id: &str, time_zone: &str, now: i64) -> R<()> {
        self.execute(
            "INSERT INTO users (id, time_zone, created_at) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING",
            &[&user_id, &time_zone, &now],
        )?;
        Ok(())
    }

    fn put_user_profile(&self, user_id: &str, p: &WireProfile) -> R<()> {
        let reminders = serde_json::to_string(&p.reminders).map_err(documents::internal)?;
        let minutes = i64::from(p.day_start_minutes);
        self.execute(
            "UPDATE users SET time_zone = $1, day_start_minutes = $2, reminders = $3, profile_changed_at = $4
             WHERE id = $5",
            &[&p.time_zone, &minutes, &reminders, &p.changed_at, &user_id],
        )?;
        Ok(())
    }

    fn seen_until(&self, user_id: &str) -> R<i64> {
        Ok(self.first("SELECT seen_until FROM users WHERE id = $1", &[&user_id], |r| r.get(0))?.unwrap_or(0))
    }

    fn raise_seen_until(&self, user_id: &str, at: i64) -> R<()> {
        self.execute("UPDATE users SET seen_until = GREATEST(seen_until, $1) WHERE id = $2", &[&at, &user_id])?;
        Ok(())
    }

    fn open_invite(&self, code_hash: &[u8]) -> R<Option<OpenInvite>> {
        self.first(
            "SELECT cohort_id, role, display_name, time_zone, for_user, expires_at FROM invites
             WHERE code_hash = $1 AND used_at IS NULL",
            &[&code_hash],
            |r| OpenInvite {
                cohort_id: r.get(0),
                role: r.get(1),
                display_name: r.get(2),
                time_zone: r.get(3),
                for_user: r.get(4),
                expires_at: r.get(5),
            },
        )
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
        self.execute("DELETE FROM link_codes WHERE expires_at < $1", &[&(expires_at - 86_400_000)])?;
        self.execute(
            "INSERT INTO link_codes (code_hash, user_id, cohort_id, shown_by, expires_at) VALUES ($1, $2, $3, $4, $5)",
            &[&code_hash, &user_id, &cohort_id, &shown_by, &expires_at],
        )?;
        Ok(())
    }

    fn claim_link_code(&self, code_hash: &[u8], now: i64) -> R<Option<(String, String)>> {
        self.first(
            "UPDATE link_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL AND expires_at > $1
             RETURNING user_id, cohort_id",
            &[&now, &code_hash],
            |r| (r.get(0), r.get(1)),
        )
    }

    fn user_devices(&self, user_id: &str) -> R<Vec<DeviceRecord>> {
        let rows = self.query(
            "SELECT id, cohort_id, name, created_at, revoked_at FROM devices WHERE user_id = $1
             ORDER BY created_at DESC, id",
            &[&user_id],
        )?;
        Ok(rows
            .iter()
            .map(|r| DeviceRecord {
                device_id: r.get(0),
                cohort_id: r.get(1),
                name: r.get(2),
                created_at: r.get(3),
                revoked_at: r.get(4),
            })
            .collect())
    }

    fn claim_invite(&self, code_hash: &[u8], user_id: &str, now: i64) -> R<bool> {
        let changed = self.execute(
            "UPDATE invites SET used_at = $1, user_id = $2 WHERE code_hash = $3 AND used_at IS NULL",
            &[&now, &user_id, &code_hash],
        )?;
        Ok(changed == 1)
    }

    fn insert_invite(&self, i: &NewInvite<'_>, now: i64) -> R<()> {
        self.execute(
            "INSERT INTO invites (code_hash, cohort_id, role, display_name, time_zone, created_at, for_user, expires_at,
                 assignment)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &i.code_hash,
                &i.cohort_id,
                &i.role,
                &i.display_name,
                &i.time_zone,
                &now,
                &i.for_user,
                &i.expires_at,
                &i.assignment,
            ],
        )?;
        Ok(())
    }

    fn invites_of(&self, cohort_id: &str) -> R<Vec<InviteRow>> {
        let chars = people::INVITE_ID_CHARS as i32;
        let rows = self.query(
            "SELECT substr(upper(encode(code_hash, 'hex')), 1, $2), role, display_name, for_user, created_at,
                    expires_at, used_at
             FROM invites WHERE cohort_id = $1 ORDER BY created_at DESC",
            &[&cohort_id, &chars],
        )?;
        Ok(rows
            .iter()
            .map(|r| InviteRow {
                id: r.get(0),
                role: r.get(1),
                display_name: r.get(2),
                for_user: r.get(3),
                created_at: r.get(4),
                expires_at: r.get(5),
                used_at: r.get(6),
            })
            .collect())
    }

    fn expire_invite(&self, id: &str, now: i64) -> R<bool> {
        let chars = people::INVITE_ID_CHARS as i32;
        let changed = self.execute(
            "UPDATE invites SET expires_at = $2
             WHERE substr(upper(encode(code_hash, 'hex')), 1, $3) = $1 AND used_at IS NULL
               AND (expires_at IS NULL OR expires_at > $2)",
            &[&id, &now, &chars],
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
            "INSERT INTO devices (id, user_id, cohort_id, token_hash, name, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&id, &user_id, &cohort_id, &token_hash, &name, &now],
        )?;
        Ok(())
    }

    fn revoke_device(&self, device_id: &str, now: i64) -> R<bool> {
        let changed = self
            .execute("UPDATE devices SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL", &[&now, &device_id])?;
        Ok(changed > 0)
    }

    fn insert_practice_log(&self, log: &NewLog<'_>, now: i64) -> R<()> {
        if self.practice_log_exists(log.id)? {
            return Ok(());
        }
        // The counter row stays locked until commit: a cohort's logs get sequence numbers in
        // commit order, which the facilitators' `logs_since` relies on.
        let seq: Option<i64> = self.first(
            "INSERT INTO log_counters (cohort_id, last_seq) VALUES ($1, 1)
             ON CONFLICT (cohort_id) DO UPDATE SET last_seq = log_counters.last_seq + 1 RETURNING last_seq",
            &[&log.cohort_id],
            |r| r.get(0),
        )?;
        let seq = seq.ok_or_else(|| ApiError::Internal("no log sequence returned".into()))?;
        self.execute(
            "INSERT INTO practice_logs (id, cohort_id, seq, user_id, local_date, body, received_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (id) DO NOTHING",
            &[&log.id, &log.cohort_id, &seq, &log.user_id, &log.local_date, &log.body, &now],
        )?;
        Ok(())
    }

    fn practice_log_exists(&self, id: &str) -> R<bool> {
        Ok(!self.query("SELECT 1 FROM practice_logs WHERE id = $1", &[&id])?.is_empty())
    }

    fn entries_stored_after(&self, doc: &str, after_ms: i64) -> R<Vec<String>> {
        let rows = self.query(
            "SELECT key FROM doc_objects WHERE doc_id = $1 AND container IN ('feedback', 'replies')
             GROUP BY key HAVING MIN(stored_at) > $2 ORDER BY key",
            &[&doc, &after_ms],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    fn practice_log_user(&self, id: &str) -> R<Option<String>> {
        self.first("SELECT user_id FROM practice_logs WHERE id = $1", &[&id], |r| r.get(0))
    }

    fn practice_log_body(&self, id: &str) -> R<Option<(String, String, String)>> {
        let sql = "SELECT user_id, cohort_id, body FROM practice_logs WHERE id = $1";
        self.first(sql, &[&id], |r| (r.get(0), r.get(1), r.get(2)))
    }

    fn insert_story(&self, s: &StoryRecord) -> R<()> {
        self.execute(
            STORY_INSERT,
            &[
                &s.log_id,
                &s.user_id,
                &s.cohort_id,
                &s.prompt_id,
                &s.local_date,
                &s.kind,
                &s.note,
                &s.link,
                &s.shared_at,
            ],
        )?;
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
        self.execute(CALIBRATION_UPSERT, &[&cohort_id, &user_id, &exemplar_id, &scores, &rated_at])?;
        Ok(())
    }

    fn logs_on_day(&self, user_id: &str, local_date: &str) -> R<i64> {
        let sql = "SELECT COUNT(*) FROM practice_logs WHERE user_id = $1 AND local_date = $2";
        Ok(self.first(sql, &[&user_id, &local_date], |r| r.get(0))?.unwrap_or(0))
    }

    fn own_logs_after(&self, user_id: &str, after: i64, limit: i64) -> R<Vec<(i64, String)>> {
        let rows = self.query(
            "SELECT seq, body FROM practice_logs WHERE user_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&user_id, &after, &limit],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    fn practice_logs_after(&self, cohort_id: &str, after: i64, except_user: &str, limit: i64) -> R<Vec<(i64, String)>> {
        let rows = self.query(
            "SELECT seq, body FROM practice_logs WHERE cohort_id = $1 AND seq > $2 AND user_id <> $3 ORDER BY seq LIMIT $4",
            &[&cohort_id, &after, &except_user, &limit],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}

fn pack_version(stored: i64) -> R<u32> {
    u32::try_from(stored).map_err(|_| ApiError::Internal(format!("stored pack version {stored}")))
}

fn count(value: i64) -> u32 {
    u32::try_from(value).unwrap_or(u32::MAX)
}

impl Storage for PostgresStorage {
    fn authenticate(&self, token_hash: &[u8]) -> Result<Option<Device>, ApiError> {
        self.read(|conn| {
            for query in [people::DEVICE_IN_ITS_COHORT, people::DEVICE_IN_ANOTHER_COHORT] {
                let rows = conn.query(query, &[&token_hash])?;
                if let Some(r) = rows.first() {
                    return Ok(Some(Device {
                        device_id: r.get(0),
                        user_id: r.get(1),
                        cohort_id: r.get(2),
                        role: r.get(3),
                    }));
                }
            }
            Ok(None)
        })
    }

    fn sync(&self, device: &Device, request: CheckedRequest) -> Result<(SyncResponse, SyncStats), ApiError> {
        if people::speaks_for_person(&request) {
            self.write(|tx| people::apply_person(tx, &self.server_actor, &device.user_id, &request))?;
        }
        // Nothing pushed: nothing locked or written (most syncs).
        if request.writes() {
            // Checked before the write transaction, which stores it under the documents' locks
            // (or checks again a document written to meanwhile); answered after the commit,
            // outside those locks.
            let checked = self.autocommit(|tx| round_trip::check(tx, &self.graphs, device, &request))?;
            let stored =
                self.write(|tx| round_trip::store(tx, &self.graphs, &self.rules, device, &request, checked.clone()))?;
            self.autocommit(|tx| round_trip::answer(tx, device, &request, stored))
        } else {
            self.autocommit(|tx| round_trip::sync(tx, &self.graphs, &self.rules, device, &request))
        }
    }

    fn ping(&self) -> Result<(), ApiError> {
        self.read(|conn| conn.query("SELECT 1 FROM programs LIMIT 1", &[]).map(|_| ()))
    }

    fn counts(&self) -> Result<(u64, u64), ApiError> {
        self.read(|conn| {
            let rows = conn
                .query("SELECT (SELECT COUNT(*) FROM docs WHERE last_seq > 0), (SELECT COUNT(*) FROM changes)", &[])?;
            let row = rows.first().ok_or_else(|| ApiError::Internal("no counts returned".into()))?;
            Ok((row.get::<_, i64>(0).max(0) as u64, row.get::<_, i64>(1).max(0) as u64))
        })
    }

    fn saved_document(&self, doc_id: &str) -> Result<(Vec<u8>, i64), ApiError> {
        self.autocommit(|tx| saved_document(tx, doc_id))
    }

    fn compact(&self, min_new_changes: u64) -> Result<usize, ApiError> {
        let due: Vec<String> = self.read(|conn| {
            let rows = conn.query(
                "SELECT d.doc_id FROM docs d LEFT JOIN doc_snapshots s ON s.doc_id = d.doc_id
                 WHERE d.last_seq - COALESCE(s.upto_seq, 0) >= $1",
                &[&i64::try_from(min_new_changes).unwrap_or(i64::MAX)],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?;
        let mut written = 0;
        for doc in &due {
            // One short transaction per document, without the document's row lock: a snapshot
            // and the rows after it are consistent at any moment because doc_seq is
            // commit-ordered, and a snapshot never replaces one that covers more.
            let wrote = self.write(|tx| {
                if !tx.try_compaction_lock(doc)? {
                    return Ok(false);
                }
                let (upto, bytes) = snapshot_of(tx, doc)?;
                tx.put_snapshot(doc, upto, &bytes)?;
                Ok(true)
            });
            match wrote {
                Ok(wrote) => written += usize::from(wrote),
                Err(err) => {
                    tracing::warn!(doc = %doc, error = %err.detail(), "compaction skipped a document; see `admin check`")
                }
            }
        }
        Ok(written)
    }

    fn check_documents(&self) -> Result<Vec<DocProblem>, ApiError> {
        self.autocommit(|tx| repair::check(tx))
    }

    admin_writes!();

    fn programs(&self) -> Result<Vec<ProgramRow>, ApiError> {
        self.read(|conn| {
            let rows = conn.query("SELECT id, title, pack_id, pack_version FROM programs ORDER BY id", &[])?;
            Ok(rows
                .iter()
                .map(|r| ProgramRow { id: r.get(0), title: r.get(1), pack_id: r.get(2), pack_version: count(r.get(3)) })
                .collect())
        })
    }

    fn cohorts(&self) -> Result<Vec<CohortRow>, ApiError> {
        self.read(|conn| {
            let rows = conn.query(
                "SELECT c.id, c.program_id, c.title, (SELECT COUNT(*) FROM members m WHERE m.cohort_id = c.id), c.arm
                 FROM cohorts c ORDER BY c.id",
                &[],
            )?;
            Ok(rows
                .iter()
                .map(|r| CohortRow {
                    id: r.get(0),
                    program_id: r.get(1),
                    title: r.get(2),
                    members: count(r.get(3)),
                    arm: r.get(4),
                })
                .collect())
        })
    }

    fn members(&self, cohort_id: &str) -> Result<Vec<MemberRow>, ApiError> {
        self.read(|conn| {
            let rows = conn.query(
                "SELECT m.user_id, m.display_name, m.role,
                        (SELECT COUNT(*) FROM devices d WHERE d.user_id = m.user_id AND d.revoked_at IS NULL), m.left_on
                 FROM members m WHERE m.cohort_id = $1 ORDER BY m.role, m.display_name",
                &[&cohort_id],
            )?;
            Ok(rows
                .iter()
                .map(|r| MemberRow {
                    user_id: r.get(0),
                    display_name: r.get(1),
                    role: r.get(2),
                    devices: count(r.get(3)),
                    left_on: r.get(4),
                })
                .collect())
        })
    }
}
