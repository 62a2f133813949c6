//! The report statements on PostgreSQL, over one connection of their own.

use std::sync::Mutex;

use postgres::types::{ToSql, Type};
use postgres::{Client, NoTls};

use super::store::{DROP_FACTS, FACTS_VERSION, FACTS_VERSION_TABLE, SET_FACTS_VERSION, Sql, Val};
use crate::error::ApiError;

const TABLES: &str = "
CREATE TABLE IF NOT EXISTS report_logs (
    cohort_id TEXT NOT NULL, id TEXT NOT NULL, user_id TEXT NOT NULL, local_date TEXT NOT NULL,
    completed BIGINT NOT NULL, secs BIGINT NOT NULL, transfer BIGINT NOT NULL, corrects TEXT,
    late_arrival BIGINT NOT NULL DEFAULT 0, prompt_id TEXT NOT NULL DEFAULT '', pack_version BIGINT NOT NULL DEFAULT 0,
    -- Clustered by cohort: a report reads each cohort's logs as one range.
    PRIMARY KEY (cohort_id, id)
);
CREATE TABLE IF NOT EXISTS report_log_marks (cohort_id TEXT PRIMARY KEY, seq BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS report_weeks (
    doc_id TEXT PRIMARY KEY, cohort_id TEXT NOT NULL, upto_seq BIGINT NOT NULL, facts TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS report_weeks_by_cohort ON report_weeks (cohort_id);
CREATE TABLE IF NOT EXISTS dashboard_links (
    code_hash BYTEA PRIMARY KEY, program_id TEXT NOT NULL, created_at BIGINT NOT NULL, used_at BIGINT
);
CREATE TABLE IF NOT EXISTS dashboard_sessions (
    token_hash BYTEA PRIMARY KEY, program_id TEXT NOT NULL, facilitator TEXT, expires_at BIGINT NOT NULL
);
-- Links made by a facilitator's app (who, and a short life of their own).
ALTER TABLE dashboard_links ADD COLUMN IF NOT EXISTS facilitator TEXT;
ALTER TABLE dashboard_links ADD COLUMN IF NOT EXISTS expires_at BIGINT;
-- A session made from a facilitator's app lives only as long as that device.
ALTER TABLE dashboard_links ADD COLUMN IF NOT EXISTS device_id TEXT;
ALTER TABLE dashboard_sessions ADD COLUMN IF NOT EXISTS device_id TEXT;
";

/// Any constant shared by every server process: serializes creating the report tables.
const TABLES_LOCK: i64 = 0x6d63_5f72_6570_6f72;

pub struct PostgresSql {
    url: String,
    client: Mutex<Option<Client>>,
}

fn pg(err: postgres::Error) -> ApiError {
    ApiError::Internal(format!("PostgreSQL: {err}"))
}

impl PostgresSql {
    pub fn open(url: &str) -> Result<Self, ApiError> {
        let mut client = Client::connect(url, NoTls).map_err(pg)?;
        let mut tx = client.transaction().map_err(pg)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&TABLES_LOCK]).map_err(pg)?;
        tx.batch_execute(FACTS_VERSION_TABLE).map_err(pg)?;
        let version: i64 =
            tx.query_one("SELECT COALESCE(MAX(version), 0)::BIGINT FROM report_facts_version", &[]).map_err(pg)?.get(0);
        if version < FACTS_VERSION {
            tx.batch_execute(DROP_FACTS).map_err(pg)?;
        }
        tx.batch_execute(TABLES).map_err(pg)?;
        tx.batch_execute(crate::xapi::outbox::POSTGRES_TABLES).map_err(pg)?;
        tx.execute(SET_FACTS_VERSION, &[&FACTS_VERSION]).map_err(pg)?;
        tx.commit().map_err(pg)?;
        Ok(Self { url: url.to_owned(), client: Mutex::new(Some(client)) })
    }

    /// Runs `f` on the connection, reconnecting once if the connection was lost.
    fn with<T>(&self, mut f: impl FnMut(&mut Client) -> Result<T, postgres::Error>) -> Result<T, ApiError> {
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = Some(Client::connect(&self.url, NoTls).map_err(pg)?);
        }
        let client = slot.as_mut().ok_or_else(|| ApiError::Internal("PostgreSQL: no connection".into()))?;
        f(client).map_err(pg)
    }
}

fn params(args: &[Val]) -> Vec<Box<dyn ToSql + Sync>> {
    args.iter()
        .map(|arg| -> Box<dyn ToSql + Sync> {
            match arg {
                Val::Text(t) => Box::new(t.clone()),
                Val::Int(n) => Box::new(*n),
                Val::Bytes(b) => Box::new(b.clone()),
                Val::Null => Box::new(None::<String>),
            }
        })
        .collect()
}

fn read(row: &postgres::Row, i: usize) -> Result<Val, postgres::Error> {
    let ty = row.columns()[i].type_();
    Ok(if *ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::Int)
    } else if *ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i)?.map_or(Val::Null, |n| Val::Int(i64::from(n)))
    } else if *ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Val::Null, Val::Bytes)
    } else {
        row.try_get::<_, Option<String>>(i)?.map_or(Val::Null, Val::Text)
    })
}

impl Sql for PostgresSql {
    fn query(&self, sql: &str, args: &[Val]) -> Result<Vec<Vec<Val>>, ApiError> {
        let boxed = params(args);
        let refs: Vec<&(dyn ToSql + Sync)> = boxed.iter().map(|b| b.as_ref()).collect();
        self.with(|client| {
            let rows = client.query(sql, &refs)?;
            rows.iter().map(|row| (0..row.len()).map(|i| read(row, i)).collect()).collect()
        })
    }

    fn batch(&self, statements: &[(&str, Vec<Val>)]) -> Result<(), ApiError> {
        if statements.is_empty() {
            return Ok(());
        }
        let boxed: Vec<Vec<Box<dyn ToSql + Sync>>> = statements.iter().map(|(_, args)| params(args)).collect();
        self.with(|client| {
            let mut tx = client.transaction()?;
            for ((sql, _), args) in statements.iter().zip(&boxed) {
                let refs: Vec<&(dyn ToSql + Sync)> = args.iter().map(|b| b.as_ref()).collect();
                tx.execute(*sql, &refs)?;
            }
            tx.commit()
        })
    }

    /// A session-level advisory lock: PostgreSQL releases it when this connection ends, however
    /// the process ends. Taking it again on the same session is allowed.
    fn hold_lock(&self, key: i64) -> Result<bool, ApiError> {
        self.with(|client| client.query_one("SELECT pg_try_advisory_lock($1)", &[&key]).map(|row| row.get(0)))
    }
}

impl Drop for PostgresSql {
    /// The blocking client may be dropped on an async worker when the server shuts down; closing
    /// it there would start a runtime inside the runtime.
    fn drop(&mut self) {
        let client = self.client.get_mut().unwrap_or_else(|p| p.into_inner()).take();
        crate::storage::postgres::off_async(move || drop(client));
    }
}
