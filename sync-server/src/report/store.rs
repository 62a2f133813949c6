//! The report tables: facts derived from practice logs and week documents, kept beside the sync
//! tables and brought up to date off the sync path (in the background and before a report), so a
//! report never loads a document and the sync path never waits for a report.
//!
//! The rules are written once here over [`Sql`]; SQLite and PostgreSQL only run the statements.
//! Statements use `$1, $2, …` in order, which both databases bind positionally.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chrono::NaiveDate;
use microcohort_core::docs::DocId;
use microcohort_core::docs::guard;
use microcohort_core::docs::projection::project_week;
use microcohort_core::docs::report_facts::{week_attendance, week_facts};
use microcohort_core::domain::arms::{Arm, Assignment};
use microcohort_core::domain::baseline::BaselineLearner;
use microcohort_core::domain::blueprint::Blueprint;
use microcohort_core::domain::cohort_metrics::{
    AttendanceFact, CohortFacts, FeedbackFact, LogFact, SubmissionFact, activity_from_logs,
};
use microcohort_core::domain::prompt_pack::{PromptPack, parse_pack};
use microcohort_core::domain::roster::{Member, MemberRole, Roster};
use microcohort_core::sync::wire::WireLog;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::storage::Storage;
use crate::storage::documents::{self, now_ms};
use crate::storage::primitives::{MemberRecord, StoryRecord};

type R<T> = Result<T, ApiError>;

/// Bumped when what the report tables derive from the stored data changes (2: late arrivals,
/// corrections by their author only, feedback on existing submissions only; 3: critique
/// attendance; 4: the kind of each submission; 5: each log's prompt and pack version, each
/// submission's prompt and log, each feedback's submission, for prompt analytics): on open, tables of an older version are dropped
/// and the background refresh rebuilds them.
pub const FACTS_VERSION: i64 = 5;
pub const FACTS_VERSION_TABLE: &str =
    "CREATE TABLE IF NOT EXISTS report_facts_version (id INTEGER PRIMARY KEY, version BIGINT NOT NULL);";
pub const DROP_FACTS: &str =
    "DROP TABLE IF EXISTS report_logs; DROP TABLE IF EXISTS report_log_marks; DROP TABLE IF EXISTS report_weeks;";
pub const SET_FACTS_VERSION: &str = "INSERT INTO report_facts_version (id, version) VALUES (1, $1)
     ON CONFLICT (id) DO UPDATE SET version = excluded.version";

/// A bound parameter or a returned column.
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Text(String),
    Int(i64),
    Bytes(Vec<u8>),
    Null,
}

impl Val {
    pub(crate) fn text(&self) -> R<&str> {
        match self {
            Self::Text(t) => Ok(t),
            other => Err(ApiError::Internal(format!("expected text, found {other:?}"))),
        }
    }
    fn opt_text(&self) -> Option<&str> {
        if let Self::Text(t) = self { Some(t) } else { None }
    }
    pub(crate) fn int(&self) -> R<i64> {
        match self {
            Self::Int(n) => Ok(*n),
            other => Err(ApiError::Internal(format!("expected an integer, found {other:?}"))),
        }
    }
}

pub(crate) fn t(s: &str) -> Val {
    Val::Text(s.to_owned())
}

/// What each database provides: statements, and batches run in one transaction.
pub trait Sql: Send + Sync + 'static {
    fn query(&self, sql: &str, args: &[Val]) -> R<Vec<Vec<Val>>>;
    /// Runs every statement in one transaction; all or nothing.
    fn batch(&self, statements: &[(&str, Vec<Val>)]) -> R<()>;
    /// Takes (or keeps) a lock named `key` for as long as this connection lives, if no other
    /// process holds it. The embedded database has one server process, so it always may.
    fn hold_lock(&self, _key: i64) -> R<bool> {
        Ok(true)
    }
}

/// Who may read which report: a program lead (signed in through a link printed by `admin`) reads
/// every cohort of the program, a facilitator the cohorts they facilitate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub program_id: String,
    /// `None` for a program lead.
    pub facilitator: Option<String>,
}

/// A program and the facts of its cohorts.
pub struct ProgramFacts {
    pub program_id: String,
    pub title: String,
    pub cohorts: Vec<CohortFacts>,
    /// Facilitators by user id: display name and the cohorts they facilitate.
    pub facilitators: Vec<(String, String, Vec<String>)>,
    /// The program's imported baseline (empty when none was imported).
    pub baseline: Vec<BaselineLearner>,
    /// `(cohort, user, how she was assigned to its arm)` for learners the program placed.
    pub assignments: Vec<(String, String, Assignment)>,
    /// The practice logs of every cohort in the report, and the program's current prompt pack
    /// (for prompt analytics).
    pub logs: Vec<LogFact>,
    pub pack: Arc<PromptPack>,
    /// Transfer stories learners of those cohorts shared with the program team, newest first.
    pub stories: Vec<StoryRecord>,
    /// `(cohort, user, exemplar, scores)`: learners' newest calibration ratings.
    pub calibration: Vec<(String, String, String, Vec<u8>)>,
}

/// Work done per refresh step, so one refresh never holds a write transaction for long.
const BATCH: i64 = 2_000;
const WEEK_DOCS_PER_STEP: i64 = 64;
/// Steps a report request may spend catching the tables up before it answers; the background
/// refresh does the rest.
const STEPS_BEFORE_A_REPORT: usize = 16;
/// How long a dashboard session lasts.
pub const SESSION_HOURS: i64 = 12;
/// How long a printed sign-in link stays redeemable.
pub const LINK_HOURS: i64 = 24;
/// How long a sign-in link a facilitator's app asked for stays redeemable.
pub const APP_LINK_MINUTES: i64 = 5;

pub struct ReportStore {
    db: Box<dyn Sql>,
    /// Where week documents are read from (the sync storage, beside these tables).
    storage: Arc<dyn Storage>,
    /// One refresh at a time: many report requests at once never repeat each other's work.
    refreshing: Mutex<()>,
    /// Prompt packs parsed once per program and pack version (a week's facts need its rubric).
    packs: Mutex<HashMap<(String, i64), Arc<PromptPack>>>,
}

impl ReportStore {
    pub fn new(db: Box<dyn Sql>, storage: Arc<dyn Storage>) -> Self {
        Self { db, storage, refreshing: Mutex::new(()), packs: Mutex::default() }
    }

    /// The database the report tables live in (the xAPI queue lives there too).
    pub fn sql(&self) -> &dyn Sql {
        self.db.as_ref()
    }

    /// The sync storage the week documents are read from.
    pub fn storage(&self) -> &dyn Storage {
        self.storage.as_ref()
    }

    /// A program's current prompt pack, parsed once.
    pub fn current_pack(&self, program_id: &str) -> R<Arc<PromptPack>> {
        self.program_pack(program_id)
    }

    /// Brings the report tables up to date; returns how many logs and documents it read.
    pub fn refresh(&self) -> R<usize> {
        self.refresh_steps(usize::MAX, false)
    }

    /// The background refresh: as [`Self::refresh`], resting after each step as long as it took,
    /// so catching up after a busy minute never takes more than half a core from syncs.
    pub fn refresh_gently(&self) -> R<usize> {
        self.refresh_steps(usize::MAX, true)
    }

    /// Catches the tables up before a report, within a bounded amount of work.
    pub fn refresh_for_report(&self) -> R<usize> {
        self.refresh_steps(STEPS_BEFORE_A_REPORT, false)
    }

    /// A caller that finds a refresh running waits for it, then catches up what came after.
    fn refresh_steps(&self, steps: usize, rest: bool) -> R<usize> {
        let _one_at_a_time = self.refreshing.lock().unwrap_or_else(|p| p.into_inner());
        let mut done = 0;
        for _ in 0..steps {
            let began = std::time::Instant::now();
            let step = self.refresh_logs()? + self.refresh_weeks()?;
            if step == 0 {
                break;
            }
            done += step;
            if rest {
                std::thread::sleep(began.elapsed());
            }
        }
        Ok(done)
    }

    /// Drops a week's facts, so the next refresh reads the document again (after a repair).
    pub fn forget_week(&self, doc_id: &str) -> R<()> {
        self.db.batch(&[("DELETE FROM report_weeks WHERE doc_id = $1", vec![t(doc_id)])])
    }

    /// New practice logs, per cohort after the last sequence number read (a cohort's sequence
    /// grows in commit order in both databases).
    fn refresh_logs(&self) -> R<usize> {
        let cohorts = self.db.query(
            "SELECT c.id, COALESCE(m.seq, 0) FROM cohorts c LEFT JOIN report_log_marks m ON m.cohort_id = c.id",
            &[],
        )?;
        let mut read = 0;
        for cohort in &cohorts {
            let (cohort_id, after) = (cohort[0].text()?, cohort[1].int()?);
            let rows = self.db.query(
                "SELECT seq, user_id, body FROM practice_logs WHERE cohort_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[t(cohort_id), Val::Int(after), Val::Int(BATCH)],
            )?;
            let Some(last) = rows.last() else { continue };
            let last_seq = last[0].int()?;
            let mut statements = Vec::with_capacity(rows.len() + 1);
            for row in &rows {
                // The server wrote these bodies itself; one it cannot read is skipped, not fatal.
                let Ok(log) = serde_json::from_str::<WireLog>(row[2].text()?) else { continue };
                statements.push((
                    "INSERT INTO report_logs (id, cohort_id, user_id, local_date, completed, secs, transfer, corrects,
                         late_arrival, prompt_id, pack_version)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (cohort_id, id) DO NOTHING",
                    vec![
                        t(&log.id),
                        t(cohort_id),
                        row[1].clone(),
                        t(&log.local_date),
                        Val::Int(i64::from(log.status == "completed")),
                        Val::Int(i64::from(log.duration_secs.unwrap_or(0))),
                        Val::Int(i64::from(log.transfer_kind.is_some())),
                        log.corrects.as_deref().map_or(Val::Null, t),
                        Val::Int(i64::from(log.late_arrival)),
                        t(&log.prompt_id),
                        Val::Int(i64::from(log.pack_version)),
                    ],
                ));
            }
            statements.push((
                "INSERT INTO report_log_marks (cohort_id, seq) VALUES ($1, $2)
                 ON CONFLICT (cohort_id) DO UPDATE SET seq = excluded.seq WHERE report_log_marks.seq < excluded.seq",
                vec![t(cohort_id), Val::Int(last_seq)],
            ));
            self.db.batch(&statements)?;
            read += rows.len();
        }
        Ok(read)
    }

    fn refresh_weeks(&self) -> R<usize> {
        let stale = self.db.query(
            "SELECT d.doc_id FROM docs d LEFT JOIN report_weeks w ON w.doc_id = d.doc_id
             WHERE d.doc_id LIKE 'week:%' AND (w.upto_seq IS NULL OR w.upto_seq < d.last_seq) LIMIT $1",
            &[Val::Int(WEEK_DOCS_PER_STEP)],
        )?;
        let mut packs: HashMap<String, Arc<PromptPack>> = HashMap::new();
        let mut statements = Vec::with_capacity(stale.len());
        for row in &stale {
            let doc_id = row[0].text()?;
            let Ok(DocId::Week { cohort_id, week }) = DocId::parse(doc_id) else { continue };
            if !packs.contains_key(&cohort_id) {
                packs.insert(cohort_id.clone(), self.cohort_pack(&cohort_id)?);
            }
            let (bytes, upto) = self.storage.saved_document(doc_id)?;
            let facts = match guard::load(&bytes) {
                Ok(doc) => {
                    let rows = project_week(&doc);
                    let (submissions, feedback) = week_facts(week, &rows, &packs[&cohort_id]);
                    WeekFacts { submissions, feedback, attendance: week_attendance(week, &rows) }
                }
                // A document the server cannot read yields no facts; it is not retried until it changes.
                Err(err) => {
                    tracing::warn!(doc = %doc_id, %err, "a week document does not load; its facts are left out of reports until `admin repair`");
                    WeekFacts::default()
                }
            };
            let facts = serde_json::to_string(&facts).map_err(|e| ApiError::Internal(e.to_string()))?;
            statements.push((
                "INSERT INTO report_weeks (doc_id, cohort_id, upto_seq, facts) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (doc_id) DO UPDATE SET upto_seq = excluded.upto_seq, facts = excluded.facts
                 WHERE report_weeks.upto_seq < excluded.upto_seq",
                vec![t(doc_id), t(&cohort_id), Val::Int(upto), Val::Text(facts)],
            ));
        }
        self.db.batch(&statements)?;
        Ok(stale.len())
    }

    fn cohort_pack(&self, cohort_id: &str) -> R<Arc<PromptPack>> {
        let rows = self.db.query(
            "SELECT p.id, p.pack_version FROM programs p JOIN cohorts c ON c.program_id = p.id WHERE c.id = $1",
            &[t(cohort_id)],
        )?;
        let row = rows.first().ok_or_else(|| ApiError::NotFound(format!("no cohort {cohort_id}")))?;
        self.pack((row[0].text()?.to_owned(), row[1].int()?))
    }

    /// A program's current prompt pack.
    fn program_pack(&self, program_id: &str) -> R<Arc<PromptPack>> {
        let rows = self.db.query("SELECT pack_version FROM programs WHERE id = $1", &[t(program_id)])?;
        let row = rows.first().ok_or_else(|| ApiError::NotFound(format!("no program {program_id}")))?;
        self.pack((program_id.to_owned(), row[0].int()?))
    }

    /// The pack of `(program, version)`, parsed once.
    fn pack(&self, key: (String, i64)) -> R<Arc<PromptPack>> {
        if let Some(pack) = self.packs.lock().unwrap_or_else(|p| p.into_inner()).get(&key) {
            return Ok(pack.clone());
        }
        let rows = self.db.query("SELECT pack_file, pack_toml FROM programs WHERE id = $1", &[t(&key.0)])?;
        let row = rows.first().ok_or_else(|| ApiError::NotFound(format!("no program {}", key.0)))?;
        let pack = parse_pack(row[0].text()?, row[1].text()?).map_err(|e| ApiError::Internal(e.to_string()))?;
        let pack = Arc::new(pack);
        self.packs.lock().unwrap_or_else(|p| p.into_inner()).insert(key, pack.clone());
        Ok(pack)
    }

    /// The facts of every cohort of a program the viewer may read.
    pub fn program_facts(&self, viewer: &Viewer) -> R<ProgramFacts> {
        let program_id = viewer.program_id.as_str();
        let programs = self.db.query("SELECT title, blueprint FROM programs WHERE id = $1", &[t(program_id)])?;
        let program = programs.first().ok_or_else(|| ApiError::NotFound(format!("no program {program_id}")))?;
        let title = program[0].text()?.to_owned();
        let blueprint: Blueprint =
            serde_json::from_str(program[1].text()?).map_err(|e| ApiError::Internal(e.to_string()))?;

        let cohorts = self.db.query(
            "SELECT id, title, critique_weeks, arm FROM cohorts WHERE program_id = $1 ORDER BY id",
            &[t(program_id)],
        )?;
        let members = self.db.query(
            "SELECT m.cohort_id, m.user_id, m.display_name, m.role, m.time_zone, m.joined_on, m.left_on,
                    m.day_start_minutes, m.paused_on
             FROM members m JOIN cohorts c ON c.id = m.cohort_id WHERE c.program_id = $1",
            &[t(program_id)],
        )?;
        let logs = self.db.query(
            "SELECT l.cohort_id, l.id, l.user_id, l.local_date, l.completed, l.secs, l.transfer, l.corrects,
                    l.late_arrival, l.prompt_id, l.pack_version
             FROM report_logs l JOIN cohorts c ON c.id = l.cohort_id WHERE c.program_id = $1",
            &[t(program_id)],
        )?;
        let weeks = self.db.query(
            "SELECT w.cohort_id, w.facts FROM report_weeks w JOIN cohorts c ON c.id = w.cohort_id WHERE c.program_id = $1",
            &[t(program_id)],
        )?;

        let mut rosters: HashMap<&str, Vec<Member>> = HashMap::new();
        let mut facilitators: HashMap<String, (String, Vec<String>)> = HashMap::new();
        for row in &members {
            let record = MemberRecord {
                user_id: row[1].text()?.to_owned(),
                display_name: row[2].text()?.to_owned(),
                role: row[3].text()?.to_owned(),
                time_zone: row[4].text()?.to_owned(),
                day_start_minutes: row[7].int()?,
                joined_on: row[5].text()?.to_owned(),
                left_on: row[6].opt_text().map(str::to_owned),
                paused_on: row[8].opt_text().map(str::to_owned),
            };
            // A row the server cannot read leaves the report, not the whole report.
            let Ok(member) = documents::member(record) else { continue };
            if member.role == MemberRole::Facilitator && member.left_on.is_none() {
                let entry = facilitators.entry(member.user_id.clone()).or_insert((member.display_name.clone(), vec![]));
                entry.1.push(row[0].text()?.to_owned());
            }
            rosters.entry(row[0].text()?).or_default().push(member);
        }
        let mut log_facts: HashMap<&str, Vec<LogFact>> = HashMap::new();
        for row in &logs {
            let Ok(local_date) = row[3].text()?.parse::<NaiveDate>() else { continue };
            log_facts.entry(row[0].text()?).or_default().push(LogFact {
                id: row[1].text()?.to_owned(),
                user_id: row[2].text()?.to_owned(),
                local_date,
                completed: row[4].int()? != 0,
                duration_secs: row[5].int()?.max(0) as u64,
                transfer: row[6].int()? != 0,
                corrects: row[7].opt_text().map(str::to_owned),
                late_arrival: row[8].int()? != 0,
                prompt_id: row[9].text()?.to_owned(),
                pack_version: u32::try_from(row[10].int()?).unwrap_or(0),
            });
        }
        let mut week_facts: HashMap<&str, WeekFacts> = HashMap::new();
        for row in &weeks {
            let facts: WeekFacts =
                serde_json::from_str(row[1].text()?).map_err(|e| ApiError::Internal(e.to_string()))?;
            let entry = week_facts.entry(row[0].text()?).or_default();
            entry.submissions.extend(facts.submissions);
            entry.feedback.extend(facts.feedback);
            entry.attendance.extend(facts.attendance);
        }

        let visible = |cohort_id: &str| match &viewer.facilitator {
            None => true,
            Some(user) => facilitators.get(user).is_some_and(|(_, cohorts)| cohorts.iter().any(|c| c == cohort_id)),
        };
        let mut out = Vec::new();
        for row in &cohorts {
            let cohort_id = row[0].text()?;
            if !visible(cohort_id) {
                continue;
            }
            let weeks = week_facts.remove(cohort_id).unwrap_or_default();
            let cohort_logs = log_facts.remove(cohort_id).unwrap_or_default();
            // Each cohort runs the program's blueprint with its own changed critique weeks.
            let mut blueprint = blueprint.clone();
            blueprint.critique_weeks =
                serde_json::from_str(row[2].text()?).map_err(|e| ApiError::Internal(e.to_string()))?;
            let arm = Arm::parse(row[3].text()?).map_err(|e| ApiError::Internal(e.to_string()))?;
            blueprint.control_arm = arm == Arm::Control;
            let facts = CohortFacts {
                cohort_id: cohort_id.to_owned(),
                title: row[1].text()?.to_owned(),
                blueprint,
                roster: Roster::new(rosters.remove(cohort_id).unwrap_or_default()),
                activity: activity_from_logs(&cohort_logs),
                submissions: weeks.submissions,
                feedback: weeks.feedback,
                attendance: weeks.attendance,
                arm,
            };
            out.push((facts, cohort_logs));
        }
        let mut facilitators: Vec<(String, String, Vec<String>)> =
            facilitators.into_iter().map(|(id, (name, cohorts))| (id, name, cohorts)).collect();
        facilitators.sort();
        let mut baseline = Vec::new();
        let rows = self.db.query(
            "SELECT learner, start_date, active_dates FROM baselines WHERE program_id = $1 ORDER BY learner",
            &[t(program_id)],
        )?;
        for row in &rows {
            let bad = |e: String| ApiError::Internal(format!("stored baseline of {program_id}: {e}"));
            baseline.push(BaselineLearner {
                learner: row[0].text()?.to_owned(),
                start_date: row[1].text()?.parse().map_err(|e: chrono::ParseError| bad(e.to_string()))?,
                active_dates: serde_json::from_str(row[2].text()?).map_err(|e| bad(e.to_string()))?,
            });
        }
        let mut assignments = Vec::new();
        let rows = self.db.query(
            "SELECT i.cohort_id, i.user_id, i.assignment FROM invites i JOIN cohorts c ON c.id = i.cohort_id
             WHERE c.program_id = $1 AND i.assignment IS NOT NULL AND i.user_id IS NOT NULL",
            &[t(program_id)],
        )?;
        for row in &rows {
            // Only the cohorts the viewer may read.
            if !out.iter().any(|(cohort, _)| cohort.cohort_id == row[0].text().unwrap_or_default()) {
                continue;
            }
            // Written by the server itself; one it cannot read shows as no recorded assignment.
            let Ok(assignment) = serde_json::from_str(row[2].text()?) else { continue };
            assignments.push((row[0].text()?.to_owned(), row[1].text()?.to_owned(), assignment));
        }
        let mut calibration = Vec::new();
        let rows = self.db.query(
            "SELECT r.cohort_id, r.user_id, r.exemplar_id, r.scores FROM calibration_ratings r
             JOIN cohorts c ON c.id = r.cohort_id WHERE c.program_id = $1 ORDER BY r.cohort_id, r.user_id, r.exemplar_id",
            &[t(program_id)],
        )?;
        for row in &rows {
            if !out.iter().any(|(cohort, _)| cohort.cohort_id == row[0].text().unwrap_or_default()) {
                continue;
            }
            // Written by the server itself; a row it cannot read is left out.
            let Ok(scores) = serde_json::from_str(row[3].text()?) else { continue };
            calibration.push((row[0].text()?.to_owned(), row[1].text()?.to_owned(), row[2].text()?.to_owned(), scores));
        }
        let logs = out.iter_mut().flat_map(|c| std::mem::take(&mut c.1)).collect();
        let mut stories = Vec::new();
        let rows = self.db.query(
            "SELECT s.cohort_id, s.user_id, s.log_id, s.prompt_id, s.local_date, s.kind, s.note, s.link, s.shared_at
             FROM transfer_stories s JOIN cohorts c ON c.id = s.cohort_id WHERE c.program_id = $1
             ORDER BY s.shared_at DESC, s.log_id",
            &[t(program_id)],
        )?;
        for row in &rows {
            if !out.iter().any(|(cohort, _)| cohort.cohort_id == row[0].text().unwrap_or_default()) {
                continue;
            }
            stories.push(StoryRecord {
                cohort_id: row[0].text()?.to_owned(),
                user_id: row[1].text()?.to_owned(),
                log_id: row[2].text()?.to_owned(),
                prompt_id: row[3].text()?.to_owned(),
                local_date: row[4].text()?.to_owned(),
                kind: row[5].text()?.to_owned(),
                note: row[6].text()?.to_owned(),
                link: row[7].opt_text().map(str::to_owned),
                shared_at: row[8].int()?,
            });
        }
        let cohorts = out.into_iter().map(|(facts, _)| facts).collect();
        Ok(ProgramFacts {
            program_id: program_id.to_owned(),
            title,
            cohorts,
            facilitators,
            baseline,
            assignments,
            logs,
            pack: self.program_pack(program_id)?,
            stories,
            calibration,
        })
    }

    // ---- dashboard sign-in ----------------------------------------------------------------

    /// A one-time sign-in code for a program lead (printed by `admin dashboard-link`).
    pub fn create_sign_in_link(&self, program_id: &str) -> R<String> {
        if self.db.query("SELECT 1 FROM programs WHERE id = $1", &[t(program_id)])?.is_empty() {
            return Err(ApiError::NotFound(format!("no program {program_id}")));
        }
        let code = crate::auth::new_token();
        self.db.batch(&[(
            "INSERT INTO dashboard_links (code_hash, program_id, created_at) VALUES ($1, $2, $3)",
            vec![Val::Bytes(crate::auth::hash_secret(&code)), t(program_id), Val::Int(now_ms())],
        )])?;
        Ok(code)
    }

    /// A one-time sign-in code a facilitator's app asks for, to open the web dashboard in a
    /// browser as that facilitator; it lasts [`APP_LINK_MINUTES`], and the session it opens
    /// lasts no longer than `device_id` stays signed in.
    pub fn create_facilitator_link(&self, viewer: &Viewer, device_id: &str) -> R<(String, i64)> {
        let code = crate::auth::new_token();
        let expires_at = now_ms() + APP_LINK_MINUTES * 60_000;
        self.db.batch(&[(
            "INSERT INTO dashboard_links (code_hash, program_id, created_at, facilitator, expires_at, device_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
            vec![
                Val::Bytes(crate::auth::hash_secret(&code)),
                t(&viewer.program_id),
                Val::Int(now_ms()),
                viewer.facilitator.as_deref().map_or(Val::Null, t),
                Val::Int(expires_at),
                t(device_id),
            ],
        )])?;
        Ok((code, expires_at))
    }

    /// Redeems a sign-in code once: returns a new session token for its viewer.
    pub fn redeem_sign_in_link(&self, code: &str) -> R<(String, Viewer)> {
        let hash = crate::auth::hash_secret(code);
        let now = now_ms();
        let rows = self.db.query(
            "UPDATE dashboard_links SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL
                 AND COALESCE(expires_at, created_at + $3) > $1
             RETURNING program_id, facilitator, device_id",
            &[Val::Int(now), Val::Bytes(hash), Val::Int(LINK_HOURS * 3_600_000)],
        )?;
        let row = rows.first().ok_or(ApiError::Unauthorized)?;
        let viewer =
            Viewer { program_id: row[0].text()?.to_owned(), facilitator: row[1].opt_text().map(str::to_owned) };
        Ok((self.create_session(&viewer, row[2].opt_text())?, viewer))
    }

    /// A new session for `viewer`; one made from a device ends when that device is signed out,
    /// revoked or leaves the cohort.
    pub fn create_session(&self, viewer: &Viewer, device_id: Option<&str>) -> R<String> {
        let token = crate::auth::new_token();
        let now = now_ms();
        self.db.batch(&[
            ("DELETE FROM dashboard_sessions WHERE expires_at < $1", vec![Val::Int(now)]),
            (
                "INSERT INTO dashboard_sessions (token_hash, program_id, facilitator, expires_at, device_id)
                 VALUES ($1, $2, $3, $4, $5)",
                vec![
                    Val::Bytes(crate::auth::hash_secret(&token)),
                    t(&viewer.program_id),
                    viewer.facilitator.as_deref().map_or(Val::Null, t),
                    Val::Int(now + SESSION_HOURS * 3_600_000),
                    device_id.map_or(Val::Null, t),
                ],
            ),
        ])?;
        Ok(token)
    }

    /// The viewer of a live session: not expired, not signed out, and its device (if a device
    /// made it) still signed in and in the cohort.
    pub fn session(&self, token: &str) -> R<Option<Viewer>> {
        let rows = self.db.query(
            "SELECT s.program_id, s.facilitator FROM dashboard_sessions s
             WHERE s.token_hash = $1 AND s.expires_at > $2
               AND (s.device_id IS NULL OR EXISTS (
                   SELECT 1 FROM devices d JOIN members m ON m.cohort_id = d.cohort_id AND m.user_id = d.user_id
                   WHERE d.id = s.device_id AND d.revoked_at IS NULL AND m.left_on IS NULL))",
            &[Val::Bytes(crate::auth::hash_secret(token)), Val::Int(now_ms())],
        )?;
        rows.first()
            .map(|row| {
                Ok(Viewer { program_id: row[0].text()?.to_owned(), facilitator: row[1].opt_text().map(str::to_owned) })
            })
            .transpose()
    }

    /// Signs a session out on the server: its cookie opens nothing any more.
    pub fn end_session(&self, token: &str) -> R<()> {
        self.db.batch(&[(
            "DELETE FROM dashboard_sessions WHERE token_hash = $1",
            vec![Val::Bytes(crate::auth::hash_secret(token))],
        )])
    }

    /// The program a facilitator's cohort belongs to.
    pub fn program_of_cohort(&self, cohort_id: &str) -> R<String> {
        let rows = self.db.query("SELECT program_id FROM cohorts WHERE id = $1", &[t(cohort_id)])?;
        Ok(rows.first().ok_or_else(|| ApiError::NotFound(format!("no cohort {cohort_id}")))?[0].text()?.to_owned())
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct WeekFacts {
    submissions: Vec<SubmissionFact>,
    feedback: Vec<FeedbackFact>,
    #[serde(default)]
    attendance: Vec<AttendanceFact>,
}

#[cfg(test)]
#[path = "store_tests.rs"]
mod tests;
