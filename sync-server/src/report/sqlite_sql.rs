//! The report statements on the embedded SQLite file, over a connection of their own so a report
//! reads beside the sync writer (WAL) instead of queueing behind it.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, ToSql, TransactionBehavior};

use super::store::{DROP_FACTS, FACTS_VERSION, FACTS_VERSION_TABLE, SET_FACTS_VERSION, Sql, Val};
use crate::error::ApiError;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS report_logs (
    cohort_id TEXT NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL, local_date TEXT NOT NULL,
    completed INTEGER NOT NULL, secs INTEGER NOT NULL, transfer INTEGER NOT NULL, corrects TEXT,
    late_arrival INTEGER NOT NULL DEFAULT 0, prompt_id TEXT NOT NULL DEFAULT '', pack_version INTEGER NOT NULL DEFAULT 0,
    -- Clustered by cohort: a report reads each cohort's logs as one range.
    PRIMARY KEY (cohort_id, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS report_log_marks (cohort_id TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS report_weeks (
    doc_id TEXT PRIMARY KEY, cohort_id TEXT NOT NULL, upto_seq INTEGER NOT NULL, facts TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS report_weeks_by_cohort ON report_weeks (cohort_id);
CREATE TABLE IF NOT EXISTS dashboard_links (
    code_hash BLOB PRIMARY KEY, program_id TEXT NOT NULL, created_at INTEGER NOT NULL, used_at INTEGER
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dashboard_sessions (
    token_hash BLOB PRIMARY KEY, program_id TEXT NOT NULL, facilitator TEXT, expires_at INTEGER NOT NULL
) WITHOUT ROWID;
";

pub struct SqliteSql {
    conn: Mutex<Connection>,
}

impl SqliteSql {
    /// Opens the server's database file (created and migrated by the sync storage first).
    pub fn open(path: &Path) -> Result<Self, ApiError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(Duration::from_secs(10))?;
        // Plans never depend on bound values (see storage/sqlite.rs).
        conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        conn.execute_batch(FACTS_VERSION_TABLE)?;
        let version: i64 =
            conn.query_row("SELECT COALESCE(MAX(version), 0) FROM report_facts_version", [], |r| r.get(0))?;
        if version < FACTS_VERSION {
            conn.execute_batch(DROP_FACTS)?;
        }
        conn.execute_batch(TABLES)?;
        conn.execute_batch(crate::xapi::outbox::SQLITE_TABLES)?;
        conn.execute(&SET_FACTS_VERSION.replace("$1", "?1"), [FACTS_VERSION])?;
        // Links made by a facilitator's app (who, and a short life of their own).
        // A session made from a facilitator's app lives only as long as that device.
        let has_column = |table: &str, name: &str| -> rusqlite::Result<bool> {
            conn.query_row("SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)", [table, name], |r| {
                r.get(0)
            })
        };
        for (table, column, kind) in [
            ("dashboard_links", "facilitator", "TEXT"),
            ("dashboard_links", "expires_at", "INTEGER"),
            ("dashboard_links", "device_id", "TEXT"),
            ("dashboard_sessions", "device_id", "TEXT"),
        ] {
            if !has_column(table, column)? {
                conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
            }
        }
        Ok(Self { conn: Mutex::new(conn) })
    }
}

impl ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Text(t) => ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes())),
            Val::Int(n) => ToSqlOutput::Owned(Value::Integer(*n)),
            Val::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Val::Null => ToSqlOutput::Owned(Value::Null),
        })
    }
}

fn read(value: ValueRef<'_>) -> Val {
    match value {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(n) => Val::Int(n),
        ValueRef::Real(f) => Val::Int(f as i64),
        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
    }
}

impl Sql for SqliteSql {
    fn query(&self, sql: &str, args: &[Val]) -> Result<Vec<Vec<Val>>, ApiError> {
        let conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut stmt = conn.prepare_cached(sql)?;
        let columns = stmt.column_count();
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |row| {
            (0..columns).map(|i| row.get_ref(i).map(read)).collect::<rusqlite::Result<Vec<Val>>>()
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn batch(&self, statements: &[(&str, Vec<Val>)]) -> Result<(), ApiError> {
        if statements.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        for (sql, args) in statements {
            tx.prepare_cached(sql)?.execute(rusqlite::params_from_iter(args))?;
        }
        tx.commit()?;
        Ok(())
    }
}
