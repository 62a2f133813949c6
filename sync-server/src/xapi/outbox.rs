//! The statement queue: a table beside the report tables, filled off the sync path from what the
//! server stored (practice logs after a mark per cohort, week documents that changed, calibration
//! ratings), and emptied by delivery. Rows are kept after delivery: they are also what
//! `admin xapi-export` writes.
//!
//! Filling is idempotent: a statement's id is derived from what it records, so finding the same
//! thing again (after a crash between a fill and its mark, or on a second server process) inserts
//! nothing. A mark moves in the transaction that inserts what it covers.

use std::collections::HashMap;

use microcohort_core::docs::DocId;
use microcohort_core::docs::guard;
use microcohort_core::docs::projection::project_week;
use microcohort_core::sync::wire::WireLog;

use super::statements::{self, Scope, Statement};
use crate::error::ApiError;
use crate::report::store::{ReportStore, Val, t};

type R<T> = Result<T, ApiError>;

pub const SQLITE_TABLES: &str = "
CREATE TABLE IF NOT EXISTS xapi_statements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, program_id TEXT NOT NULL,
    statement TEXT NOT NULL, delivered_at INTEGER, refused TEXT, attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS xapi_statements_by_program ON xapi_statements (program_id, seq);
CREATE INDEX IF NOT EXISTS xapi_statements_pending ON xapi_statements (seq)
    WHERE delivered_at IS NULL AND refused IS NULL;
CREATE TABLE IF NOT EXISTS xapi_marks (source TEXT PRIMARY KEY, seq INTEGER NOT NULL) WITHOUT ROWID;
";

pub const POSTGRES_TABLES: &str = "
CREATE TABLE IF NOT EXISTS xapi_statements (
    seq BIGSERIAL PRIMARY KEY, id TEXT NOT NULL UNIQUE, program_id TEXT NOT NULL,
    statement TEXT NOT NULL, delivered_at BIGINT, refused TEXT, attempts BIGINT NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS xapi_statements_by_program ON xapi_statements (program_id, seq);
CREATE INDEX IF NOT EXISTS xapi_statements_pending ON xapi_statements (seq)
    WHERE delivered_at IS NULL AND refused IS NULL;
CREATE TABLE IF NOT EXISTS xapi_marks (source TEXT PRIMARY KEY, seq BIGINT NOT NULL);
";

/// Logs read per cohort and week documents loaded per fill step.
const LOGS_PER_STEP: i64 = 2_000;
const WEEKS_PER_STEP: i64 = 32;

const INSERT: &str = "INSERT INTO xapi_statements (id, program_id, statement) VALUES ($1, $2, $3)
     ON CONFLICT (id) DO NOTHING";
/// A voiding statement, queued only after the statement it voids.
const INSERT_VOIDING: &str = "INSERT INTO xapi_statements (id, program_id, statement)
     SELECT $1, $2, $3 WHERE EXISTS (SELECT 1 FROM xapi_statements WHERE id = $4)
     ON CONFLICT (id) DO NOTHING";
/// Any constant shared by every server process: the claim to send.
const DELIVERY_LOCK: i64 = 0x6d63_5f78_6170_6964;
const SET_MARK: &str = "INSERT INTO xapi_marks (source, seq) VALUES ($1, $2)
     ON CONFLICT (source) DO UPDATE SET seq = excluded.seq WHERE xapi_marks.seq < excluded.seq";

/// A queued statement on its way to the LRS.
#[derive(Debug, Clone)]
pub struct Queued {
    pub seq: i64,
    pub id: String,
    pub json: String,
}

/// How far delivery has come.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueCounts {
    pub pending: i64,
    pub delivered: i64,
    pub refused: i64,
}

pub struct Outbox<'a> {
    reports: &'a ReportStore,
    home: &'a str,
}

impl<'a> Outbox<'a> {
    /// `home`: the server's public address, under which learners' accounts and activities live.
    pub fn new(reports: &'a ReportStore, home: &'a str) -> Self {
        Self { reports, home }
    }

    /// Queues what is new since the last fill; returns how many logs, documents and ratings it
    /// read. With `rest`, it rests after each step as long as the step took, so catching up on a
    /// long history never takes more than half a core (or the SQLite writer) from syncs.
    pub fn fill(&self, rest: bool) -> R<usize> {
        let mut read = 0;
        loop {
            let began = std::time::Instant::now();
            let step = self.fill_logs()? + self.fill_weeks()? + self.fill_calibration()?;
            if step == 0 {
                return Ok(read);
            }
            read += step;
            if rest {
                std::thread::sleep(began.elapsed());
            }
        }
    }

    /// Forgets what was read from a document (after `admin repair` rewrote its history), so the
    /// next fill reads it again; statements already queued stay.
    pub fn forget_document(&self, doc_id: &str) -> R<()> {
        self.reports.sql().batch(&[("DELETE FROM xapi_marks WHERE source = $1", vec![t(doc_id)])])
    }

    /// Whether this process is the one that sends: several server processes may share one
    /// PostgreSQL database, and one sends at a time, so the LRS never receives a statement from
    /// two at once. The claim lives as long as this process's database session (a process that
    /// dies hands over at once); on SQLite there is one process.
    pub fn claim_delivery(&self) -> R<bool> {
        self.reports.sql().hold_lock(DELIVERY_LOCK)
    }

    /// Puts the statements the LRS refused back in the queue (after the LRS or the server was
    /// fixed); returns how many.
    pub fn retry_refused(&self) -> R<i64> {
        let count = self.counts()?.refused;
        self.reports.sql().batch(&[("UPDATE xapi_statements SET refused = NULL WHERE refused IS NOT NULL", vec![])])?;
        Ok(count)
    }

    fn queue(statements: &mut Vec<(&'static str, Vec<Val>)>, program_id: &str, statement: Statement) {
        let id = Val::Text(statement.id.to_string());
        match statement.voids {
            None => statements.push((INSERT, vec![id, t(program_id), Val::Text(statement.json)])),
            Some(voided) => statements.push((
                INSERT_VOIDING,
                vec![id, t(program_id), Val::Text(statement.json), Val::Text(voided.to_string())],
            )),
        }
    }

    fn mark(&self, source: &str) -> R<i64> {
        let rows = self.reports.sql().query("SELECT seq FROM xapi_marks WHERE source = $1", &[t(source)])?;
        rows.first().map_or(Ok(0), |row| row[0].int())
    }

    fn fill_logs(&self) -> R<usize> {
        let cohorts = self.reports.sql().query("SELECT id, program_id FROM cohorts ORDER BY id", &[])?;
        let mut read = 0;
        for cohort in &cohorts {
            let (cohort_id, program_id) = (cohort[0].text()?, cohort[1].text()?);
            let source = format!("logs:{cohort_id}");
            let rows = self.reports.sql().query(
                "SELECT seq, user_id, body FROM practice_logs WHERE cohort_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[t(cohort_id), Val::Int(self.mark(&source)?), Val::Int(LOGS_PER_STEP)],
            )?;
            let Some(last) = rows.last() else { continue };
            let scope = Scope { home: self.home, program_id, cohort_id };
            let mut statements = Vec::with_capacity(rows.len() + 1);
            for row in &rows {
                // The server wrote these bodies itself; one it cannot read is skipped, not fatal.
                let Ok(mut log) = serde_json::from_str::<WireLog>(row[2].text()?) else { continue };
                log.user_id = row[1].text()?.to_owned();
                for statement in statements::practice(&scope, &log) {
                    Self::queue(&mut statements, program_id, statement);
                }
            }
            statements.push((SET_MARK, vec![t(&source), Val::Int(last[0].int()?)]));
            self.reports.sql().batch(&statements)?;
            read += rows.len();
        }
        Ok(read)
    }

    fn fill_weeks(&self) -> R<usize> {
        let stale = self.reports.sql().query(
            "SELECT d.doc_id, d.last_seq FROM docs d LEFT JOIN xapi_marks m ON m.source = d.doc_id
             WHERE d.doc_id LIKE 'week:%' AND (m.seq IS NULL OR m.seq < d.last_seq) LIMIT $1",
            &[Val::Int(WEEKS_PER_STEP)],
        )?;
        if stale.is_empty() {
            return Ok(0);
        }
        let programs: HashMap<String, String> = self
            .reports
            .sql()
            .query("SELECT id, program_id FROM cohorts", &[])?
            .iter()
            .map(|row| Ok((row[0].text()?.to_owned(), row[1].text()?.to_owned())))
            .collect::<R<_>>()?;
        for row in &stale {
            let doc_id = row[0].text()?;
            let parsed = DocId::parse(doc_id).ok().and_then(|doc| match doc {
                DocId::Week { cohort_id, week } => Some((programs.get(&cohort_id)?.as_str(), cohort_id, week)),
                DocId::Cohort { .. } => None,
            });
            let Some((program_id, cohort_id, week)) = parsed else {
                // Nothing to record from it; marked so it is not looked at again until it changes.
                self.reports.sql().batch(&[(SET_MARK, vec![t(doc_id), row[1].clone()])])?;
                continue;
            };
            let (bytes, upto) = self.reports.storage().saved_document(doc_id)?;
            let mut statements = Vec::new();
            match guard::load(&bytes) {
                Ok(doc) => {
                    let scope = Scope { home: self.home, program_id, cohort_id: &cohort_id };
                    for statement in statements::week(&scope, week, &project_week(&doc)) {
                        Self::queue(&mut statements, program_id, statement);
                    }
                }
                // Not retried until it changes (the report logs the same document as not loading).
                Err(err) => tracing::warn!(doc = %doc_id, %err, "a week document does not load; no statements from it"),
            }
            // Read after the query, the document holds at least what `last_seq` counted (a repair
            // may leave `upto` below it; marking `upto` would read it again forever).
            statements.push((SET_MARK, vec![t(doc_id), Val::Int(upto.max(row[1].int()?))]));
            self.reports.sql().batch(&statements)?;
        }
        Ok(stale.len())
    }

    /// Ratings are replaced in place (the newest per learner and exemplar): each has a mark of
    /// the rating time last queued, and a newer rating is a new statement.
    fn fill_calibration(&self) -> R<usize> {
        let rows = self.reports.sql().query(
            "SELECT c.program_id, r.cohort_id, r.user_id, r.exemplar_id, r.scores, r.rated_at
             FROM calibration_ratings r JOIN cohorts c ON c.id = r.cohort_id
             LEFT JOIN xapi_marks m ON m.source = 'calibration:' || r.cohort_id || ':' || r.user_id || ':' || r.exemplar_id
             WHERE m.seq IS NULL OR m.seq < r.rated_at
             ORDER BY r.cohort_id, r.user_id, r.exemplar_id LIMIT $1",
            &[Val::Int(LOGS_PER_STEP)],
        )?;
        let mut packs = HashMap::new();
        let mut statements = Vec::with_capacity(rows.len());
        for row in &rows {
            let (program_id, cohort_id, user_id, exemplar_id) =
                (row[0].text()?, row[1].text()?, row[2].text()?, row[3].text()?);
            let rated_at = row[5].int()?;
            // Written by the server itself; scores it cannot read give no statement, and are
            // marked like the rest so they are not read again.
            if let Ok(scores) = serde_json::from_str::<Vec<u8>>(row[4].text()?) {
                if !packs.contains_key(program_id) {
                    packs.insert(program_id.to_owned(), self.reports.current_pack(program_id)?);
                }
                let exemplar = packs[program_id].exemplars.iter().find(|e| e.id == exemplar_id);
                let reference = exemplar.map(|e| &e.reference[..]);
                let scope = Scope { home: self.home, program_id, cohort_id };
                let statement = statements::calibration(&scope, user_id, exemplar_id, &scores, reference, rated_at);
                Self::queue(&mut statements, program_id, statement);
            }
            let source = format!("calibration:{cohort_id}:{user_id}:{exemplar_id}");
            statements.push((SET_MARK, vec![t(&source), Val::Int(rated_at)]));
        }
        self.reports.sql().batch(&statements)?;
        Ok(rows.len())
    }

    /// The oldest statements not yet delivered nor refused, in the order they were queued.
    pub fn pending(&self, limit: i64) -> R<Vec<Queued>> {
        let rows = self.reports.sql().query(
            "SELECT seq, id, statement FROM xapi_statements WHERE delivered_at IS NULL AND refused IS NULL
             ORDER BY seq LIMIT $1",
            &[Val::Int(limit)],
        )?;
        rows.iter()
            .map(|row| {
                Ok(Queued { seq: row[0].int()?, id: row[1].text()?.to_owned(), json: row[2].text()?.to_owned() })
            })
            .collect()
    }

    /// The LRS holds these now.
    pub fn delivered(&self, seqs: &[i64], at_ms: i64) -> R<()> {
        let statements: Vec<_> = seqs
            .iter()
            .map(|seq| {
                (
                    "UPDATE xapi_statements SET delivered_at = $1, last_error = NULL WHERE seq = $2",
                    vec![Val::Int(at_ms), Val::Int(*seq)],
                )
            })
            .collect();
        self.reports.sql().batch(&statements)
    }

    /// The LRS refused this statement for good (it is kept, with the reason, and not sent again).
    pub fn refused(&self, seq: i64, reason: &str) -> R<()> {
        self.reports.sql().batch(&[(
            "UPDATE xapi_statements SET refused = $1, attempts = attempts + 1 WHERE seq = $2",
            vec![t(reason), Val::Int(seq)],
        )])
    }

    /// A delivery attempt failed; the statements stay queued.
    pub fn failed(&self, seqs: &[i64], error: &str) -> R<()> {
        let statements: Vec<_> = seqs
            .iter()
            .map(|seq| {
                (
                    "UPDATE xapi_statements SET attempts = attempts + 1, last_error = $1 WHERE seq = $2",
                    vec![t(error), Val::Int(*seq)],
                )
            })
            .collect();
        self.reports.sql().batch(&statements)
    }

    pub fn counts(&self) -> R<QueueCounts> {
        let rows = self.reports.sql().query(
            "SELECT CASE WHEN refused IS NOT NULL THEN 'refused' WHEN delivered_at IS NOT NULL THEN 'delivered'
                    ELSE 'pending' END AS state, COUNT(*) FROM xapi_statements GROUP BY state",
            &[],
        )?;
        let mut counts = QueueCounts::default();
        for row in &rows {
            let n = row[1].int()?;
            match row[0].text()? {
                "refused" => counts.refused = n,
                "delivered" => counts.delivered = n,
                _ => counts.pending = n,
            }
        }
        Ok(counts)
    }

    /// Every statement queued for a program, in order (what `admin xapi-export` writes).
    pub fn program_statements(&self, program_id: &str) -> R<Vec<String>> {
        let rows = self
            .reports
            .sql()
            .query("SELECT statement FROM xapi_statements WHERE program_id = $1 ORDER BY seq", &[t(program_id)])?;
        rows.iter().map(|row| row[0].text().map(str::to_owned)).collect()
    }
}
