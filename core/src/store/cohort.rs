//! Device storage for cohort documents (chunks) and their projections.

use automerge::ActorId;
use rusqlite::{Connection, OptionalExtension, Transaction, params};

use std::collections::BTreeMap;

use super::parse_date;
use super::prompts::{from_json, json as to_json};
use crate::docs::cohort::CohortRows;
use crate::docs::projection::{
    AgendaRow, AttendanceRow, EntryMeta, FeedbackRow, RatingRow, ReplyRow, SubmissionRow, WeekRows,
};
use crate::domain::arms::Arm;
use crate::domain::critique_week::CritiqueWeek;
use crate::domain::roster::{Member, MemberRole, Roster};
use crate::domain::time::DayStart;
use crate::error::{Error, Result};

/// This device's automerge actor, created on first use.
pub fn device_actor(tx: &Transaction<'_>) -> Result<ActorId> {
    let stored: Option<Vec<u8>> = tx.query_row("SELECT actor FROM device WHERE id = 1", [], |r| r.get(0)).optional()?;
    if let Some(bytes) = stored {
        return Ok(ActorId::from(bytes));
    }
    let actor = ActorId::random();
    tx.execute("INSERT INTO device (id, actor) VALUES (1, ?1)", [actor.to_bytes()])?;
    Ok(actor)
}

/// A new actor for this device (another person uses it now).
pub fn new_device_actor(tx: &Transaction<'_>) -> Result<ActorId> {
    tx.execute("DELETE FROM device", [])?;
    device_actor(tx)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    pub cohort_id: String,
    pub user_id: String,
}

/// A membership as the device keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRow {
    pub cohort_id: String,
    pub user_id: String,
    /// `None` for a cohort joined without a program on this device.
    pub program_id: Option<String>,
    /// `learner` or `facilitator`, as the server said when the device joined ('' before).
    pub role: String,
    pub logs_watermark: u64,
    pub selected: bool,
    pub arm: Arm,
}

/// The selected membership (the screens' cohort).
pub fn membership(conn: &Connection) -> Result<Option<Membership>> {
    Ok(conn
        .prepare_cached(
            "SELECT m.cohort_id, m.user_id FROM memberships m JOIN selection s ON s.cohort_id = m.cohort_id",
        )?
        .query_row([], |r| Ok(Membership { cohort_id: r.get(0)?, user_id: r.get(1)? }))
        .optional()?)
}

/// Every membership on this device, the selected one first, then by cohort.
pub fn memberships(conn: &Connection) -> Result<Vec<MembershipRow>> {
    let mut stmt = conn.prepare_cached(
        "SELECT m.cohort_id, m.user_id, m.program_id, m.role, m.logs_watermark,
                m.cohort_id IS (SELECT cohort_id FROM selection) AS selected, m.arm
         FROM memberships m ORDER BY selected DESC, m.cohort_id",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok(MembershipRow {
            cohort_id: r.get(0)?,
            user_id: r.get(1)?,
            program_id: r.get(2)?,
            role: r.get(3)?,
            logs_watermark: r.get::<_, i64>(4)?.max(0) as u64,
            selected: r.get(5)?,
            arm: Arm::parse(&r.get::<_, String>(6)?).unwrap_or_default(),
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The person whose data this database holds, if it holds anyone's.
pub fn person(conn: &Connection) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT user_id FROM memberships LIMIT 1", [], |r| r.get(0)).optional()?)
}

/// Records a membership of the selected program (if any) and selects it.
pub fn save_membership(tx: &Transaction<'_>, m: &Membership, role: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO memberships (cohort_id, user_id, program_id, role)
         VALUES (?1, ?2, (SELECT program_id FROM selection), ?3)
         ON CONFLICT (cohort_id) DO UPDATE SET user_id = ?2,
             program_id = COALESCE((SELECT program_id FROM selection), program_id),
             role = CASE WHEN ?3 = '' THEN role ELSE ?3 END",
        params![m.cohort_id, m.user_id, role],
    )?;
    select_membership(tx, &m.cohort_id).map(|_| ())
}

/// Records a membership of `program_id` without selecting it (another membership of the person,
/// set up in the background).
pub fn add_membership(tx: &Transaction<'_>, m: &Membership, program_id: &str, role: &str, arm: Arm) -> Result<()> {
    tx.execute(
        "INSERT INTO memberships (cohort_id, user_id, program_id, role, arm) VALUES (?1, ?2, ?3, ?4, ?5)
         ON CONFLICT (cohort_id) DO UPDATE SET program_id = ?3, role = ?4, arm = ?5",
        params![m.cohort_id, m.user_id, program_id, role, arm.as_str()],
    )?;
    tx.execute(
        "INSERT OR IGNORE INTO selection (id, program_id, cohort_id) VALUES (1, ?1, ?2)",
        params![program_id, m.cohort_id],
    )?;
    Ok(())
}

/// Records the arm the server said a membership is in.
pub fn set_arm(tx: &Transaction<'_>, cohort_id: &str, arm: Arm) -> Result<()> {
    tx.execute("UPDATE memberships SET arm = ?1 WHERE cohort_id = ?2", params![arm.as_str(), cohort_id])?;
    Ok(())
}

/// A membership's arm (the cohort arm when the device was not told).
pub fn arm(conn: &Connection, cohort_id: &str) -> Result<Arm> {
    let text: Option<String> =
        conn.query_row("SELECT arm FROM memberships WHERE cohort_id = ?1", [cohort_id], |r| r.get(0)).optional()?;
    Ok(text.and_then(|t| Arm::parse(&t).ok()).unwrap_or_default())
}

/// Selects a membership for the screens, and its program; `false` when there is no such membership.
pub fn select_membership(tx: &Transaction<'_>, cohort_id: &str) -> Result<bool> {
    let program: Option<Option<String>> = tx
        .query_row("SELECT program_id FROM memberships WHERE cohort_id = ?1", [cohort_id], |r| r.get(0))
        .optional()?;
    let Some(program) = program else { return Ok(false) };
    tx.execute(
        "INSERT INTO selection (id, program_id, cohort_id) VALUES (1, ?1, ?2)
         ON CONFLICT (id) DO UPDATE SET program_id = COALESCE(?1, program_id), cohort_id = ?2",
        params![program, cohort_id],
    )?;
    Ok(true)
}

/// Removes a membership and what the device holds of its cohort (documents, their projections,
/// relayed logs, pending entries); another membership is selected if there is one. Returns
/// whether any membership is left.
pub fn forget_membership(tx: &Transaction<'_>, cohort_id: &str) -> Result<bool> {
    let cohort_doc = format!("cohort:{cohort_id}");
    let week_prefix = format!("week:{cohort_id}:");
    for table in DOC_TABLES {
        tx.execute(
            &format!("DELETE FROM {table} WHERE doc_id = ?1 OR substr(doc_id, 1, length(?2)) = ?2"),
            params![cohort_doc, week_prefix],
        )?;
    }
    for table in COHORT_TABLES {
        tx.execute(&format!("DELETE FROM {table} WHERE cohort_id = ?1"), [cohort_id])?;
    }
    tx.execute("DELETE FROM memberships WHERE cohort_id = ?1", [cohort_id])?;
    let next: Option<String> =
        tx.query_row("SELECT cohort_id FROM memberships ORDER BY cohort_id LIMIT 1", [], |r| r.get(0)).optional()?;
    match &next {
        Some(next) => {
            select_membership(tx, next)?;
        }
        None => {
            tx.execute("UPDATE selection SET cohort_id = NULL", [])?;
        }
    }
    Ok(next.is_some())
}

/// Tables keyed by cohort id: the cohort document's projection, the notes and relayed logs the
/// sync brought of it.
const COHORT_TABLES: [&str; 6] =
    ["roster", "critique_weeks", "moderation", "announcements", "facilitator_notes", "cohort_practice_logs"];

/// Tables keyed by document id (a cohort's documents, their projections and sync state).
pub const DOC_TABLES: [&str; 13] = [
    "doc_chunks",
    "submissions",
    "feedback",
    "replies",
    "ratings",
    "attendance",
    "agenda",
    "synthesis",
    "doc_sync",
    "doc_intents",
    "replay_needed",
    "failed_intents",
    "late_entries",
];

// ---- document chunks ----------------------------------------------------------------------

/// The document's saved bytes: its chunks concatenated in order (automerge loads that as one).
pub fn load_chunks(conn: &Connection, doc_id: &str) -> Result<Option<Vec<u8>>> {
    let mut stmt = conn.prepare_cached("SELECT bytes FROM doc_chunks WHERE doc_id = ?1 ORDER BY seq")?;
    let mut rows = stmt.query([doc_id])?;
    let mut out: Option<Vec<u8>> = None;
    while let Some(row) = rows.next()? {
        let bytes: Vec<u8> = row.get(0)?;
        out.get_or_insert_with(Vec::new).extend_from_slice(&bytes);
    }
    Ok(out)
}

/// Appends a chunk; returns how many chunks the document now has.
pub fn append_chunk(tx: &Transaction<'_>, doc_id: &str, bytes: &[u8], snapshot: bool) -> Result<u64> {
    if bytes.is_empty() {
        return chunk_count(tx, doc_id);
    }
    tx.prepare_cached(
        "INSERT INTO doc_chunks (doc_id, seq, snapshot, bytes)
         VALUES (?1, COALESCE((SELECT MAX(seq) + 1 FROM doc_chunks WHERE doc_id = ?1), 0), ?2, ?3)",
    )?
    .execute(params![doc_id, snapshot, bytes])?;
    chunk_count(tx, doc_id)
}

pub fn chunk_count(conn: &Connection, doc_id: &str) -> Result<u64> {
    let n: i64 =
        conn.prepare_cached("SELECT COUNT(*) FROM doc_chunks WHERE doc_id = ?1")?.query_row([doc_id], |r| r.get(0))?;
    Ok(n.max(0) as u64)
}

/// Replaces every chunk of a document with one snapshot, in the caller's transaction: a crash
/// leaves either the old chunks or the new snapshot, never neither.
pub fn compact(tx: &Transaction<'_>, doc_id: &str, snapshot: &[u8]) -> Result<()> {
    let next: i64 =
        tx.query_row("SELECT COALESCE(MAX(seq) + 1, 0) FROM doc_chunks WHERE doc_id = ?1", [doc_id], |r| r.get(0))?;
    tx.execute("DELETE FROM doc_chunks WHERE doc_id = ?1", [doc_id])?;
    tx.execute(
        "INSERT INTO doc_chunks (doc_id, seq, snapshot, bytes) VALUES (?1, ?2, 1, ?3)",
        params![doc_id, next, snapshot],
    )?;
    Ok(())
}

/// Projects every stored cohort document again, in the caller's transaction: for a schema step
/// that projects more of them (what was written before the step would otherwise wait for the
/// document's next change). A copy that does not load is left to be fetched again.
pub fn reproject_cohort_docs(tx: &Transaction<'_>) -> Result<()> {
    for doc_id in doc_ids(tx)? {
        let Some(cohort_id) = doc_id.strip_prefix("cohort:") else { continue };
        let Some(bytes) = load_chunks(tx, &doc_id)? else { continue };
        let Ok(am) = crate::docs::guard::load(&bytes) else { continue };
        replace_cohort(tx, cohort_id, &crate::docs::cohort::project_cohort(&am))?;
    }
    Ok(())
}

pub fn doc_ids(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt = conn.prepare("SELECT DISTINCT doc_id FROM doc_chunks ORDER BY doc_id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// A projected list as its column keeps it (JSON).
fn json<T: serde::Serialize>(list: &[T]) -> String {
    serde_json::to_string(list).unwrap_or_else(|_| "[]".into())
}

/// A projected list read back; the projection wrote it, so anything else reads as empty.
fn list<T: serde::de::DeserializeOwned>(text: String) -> Vec<T> {
    serde_json::from_str(&text).unwrap_or_default()
}

// ---- projections --------------------------------------------------------------------------

const WEEK_TABLES: [&str; 7] = ["submissions", "feedback", "replies", "ratings", "attendance", "agenda", "synthesis"];

/// Replaces a week document's projected rows. (The rows' `late` column is no longer written:
/// lateness is the server's fact, kept in `late_entries`.)
pub fn replace_week(tx: &Transaction<'_>, doc_id: &str, week: u32, rows: &WeekRows) -> Result<()> {
    for table in WEEK_TABLES {
        tx.prepare_cached(&format!("DELETE FROM {table} WHERE doc_id = ?1"))?.execute([doc_id])?;
    }
    for s in &rows.submissions {
        let m = &s.meta;
        tx.prepare_cached(
            "INSERT INTO submissions (doc_id, week, key, author, kind, title, body, prompt_id, attachments, created_at, edited_at, retracted, late, practice_log)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )?
        .execute(params![doc_id, week, m.key, m.author, s.kind, s.title, s.body, s.prompt_id, json(&s.attachments), m.created_at, m.edited_at, m.retracted, false, s.practice_log])?;
    }
    for f in &rows.feedback {
        let m = &f.meta;
        tx.prepare_cached(
            "INSERT INTO feedback (doc_id, week, key, author, submission, body, suggestion, criteria, created_at, edited_at, retracted, late, scores)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![doc_id, week, m.key, m.author, f.submission, f.body, f.suggestion, json(&f.criteria), m.created_at, m.edited_at, m.retracted, false, json(&f.scores)])?;
    }
    for r in &rows.replies {
        let m = &r.meta;
        tx.prepare_cached(
            "INSERT INTO replies (doc_id, week, key, author, feedback, parent, body, created_at, edited_at, retracted, late)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        )?
        .execute(params![doc_id, week, m.key, m.author, r.feedback, r.parent, r.body, m.created_at, m.edited_at, m.retracted, false])?;
    }
    for r in &rows.ratings {
        let m = &r.meta;
        tx.prepare_cached(
            "INSERT INTO ratings (doc_id, week, key, author, feedback, score, counted, created_at, edited_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            doc_id,
            week,
            m.key,
            m.author,
            r.feedback,
            r.score,
            r.counted,
            m.created_at,
            m.edited_at
        ])?;
    }
    for a in &rows.attendance {
        let m = &a.meta;
        tx.prepare_cached(
            "INSERT INTO attendance (doc_id, week, key, author, member, present, created_at, edited_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?
        .execute(params![doc_id, week, m.key, m.author, a.member, a.present, m.created_at, m.edited_at])?;
    }
    for a in &rows.agenda {
        let m = &a.meta;
        tx.prepare_cached(
            "INSERT INTO agenda (doc_id, week, key, author, submission, position, note, created_at, edited_at, retracted)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?
        .execute(params![
            doc_id,
            week,
            m.key,
            m.author,
            a.submission,
            a.position,
            a.note,
            m.created_at,
            m.edited_at,
            m.retracted
        ])?;
    }
    tx.prepare_cached("INSERT INTO synthesis (doc_id, week, text) VALUES (?1, ?2, ?3)")?.execute(params![
        doc_id,
        week,
        rows.synthesis
    ])?;
    Ok(())
}

pub fn replace_roster(tx: &Transaction<'_>, cohort_id: &str, roster: &Roster) -> Result<()> {
    tx.execute("DELETE FROM roster WHERE cohort_id = ?1", [cohort_id])?;
    for m in roster.members() {
        tx.prepare_cached(
            "INSERT INTO roster (cohort_id, user_id, display_name, role, time_zone, day_start_minutes, joined_on, left_on,
                 paused_on)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            cohort_id,
            m.user_id,
            m.display_name,
            m.role.as_str(),
            m.time_zone,
            m.day_start.minutes(),
            m.joined_on.to_string(),
            m.left_on.map(|d| d.to_string()),
            m.paused_on.map(|d| d.to_string())
        ])?;
    }
    Ok(())
}

/// Replaces a cohort document's projection.
pub fn replace_cohort(tx: &Transaction<'_>, cohort_id: &str, rows: &CohortRows) -> Result<()> {
    replace_roster(tx, cohort_id, &rows.roster)?;
    replace_critique_weeks(tx, cohort_id, &rows.critique_weeks)?;
    super::facilitation::replace(tx, cohort_id, &rows.moderation, &rows.announcements)
}

fn replace_critique_weeks(tx: &Transaction<'_>, cohort_id: &str, weeks: &BTreeMap<u32, CritiqueWeek>) -> Result<()> {
    tx.execute("DELETE FROM critique_weeks WHERE cohort_id = ?1", [cohort_id])?;
    for (week, changed) in weeks {
        tx.prepare_cached("INSERT INTO critique_weeks (cohort_id, week, changed) VALUES (?1, ?2, ?3)")?
            .execute(params![cohort_id, week, to_json(changed)?])?;
    }
    Ok(())
}

/// The cohort's changed critique weeks as last projected from its document.
pub fn critique_weeks(conn: &Connection, cohort_id: &str) -> Result<BTreeMap<u32, CritiqueWeek>> {
    let mut stmt = conn.prepare_cached("SELECT week, changed FROM critique_weeks WHERE cohort_id = ?1")?;
    let rows = stmt.query_map([cohort_id], |r| Ok((r.get::<_, u32>(0)?, r.get::<_, String>(1)?)))?;
    let mut weeks = BTreeMap::new();
    for row in rows {
        let (week, changed) = row?;
        weeks.insert(week, from_json(&changed)?);
    }
    Ok(weeks)
}

/// The cohort's roster as last projected from its document.
pub fn roster(conn: &Connection, cohort_id: &str) -> Result<Roster> {
    let mut stmt = conn.prepare_cached(
        "SELECT user_id, display_name, role, time_zone, day_start_minutes, joined_on, left_on, paused_on
         FROM roster WHERE cohort_id = ?1",
    )?;
    let rows = stmt.query_map([cohort_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, String>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
        ))
    })?;
    let mut members = Vec::new();
    for row in rows {
        let (user_id, display_name, role, time_zone, day_start, joined_on, left_on, paused_on) = row?;
        members.push(Member {
            user_id,
            display_name,
            role: MemberRole::parse(&role).ok_or_else(|| Error::Corrupt(format!("role {role:?}")))?,
            time_zone,
            day_start: DayStart::from_minutes(day_start).map_err(|e| Error::Corrupt(e.to_string()))?,
            joined_on: parse_date(&joined_on)?,
            left_on: left_on.as_deref().map(parse_date).transpose()?,
            paused_on: paused_on.as_deref().map(parse_date).transpose()?,
        });
    }
    Ok(Roster::new(members))
}

/// Every projected row of a week document, as stored (for the UI, and for tests that compare
/// stored projections with a rebuild).
pub fn week_rows(conn: &Connection, doc_id: &str) -> Result<WeekRows> {
    let meta = |r: &rusqlite::Row<'_>,
                key: usize,
                author: usize,
                created: usize,
                edited: Option<usize>,
                retracted: Option<usize>|
     -> rusqlite::Result<EntryMeta> {
        Ok(EntryMeta {
            key: r.get(key)?,
            author: r.get(author)?,
            created_at: r.get(created)?,
            edited_at: match edited {
                Some(i) => r.get(i)?,
                None => None,
            },
            retracted: match retracted {
                Some(i) => r.get(i)?,
                None => false,
            },
            hidden: None,
        })
    };
    let query = |sql: &str| conn.prepare_cached(sql);
    let submissions = query("SELECT key, author, kind, title, body, prompt_id, attachments, created_at, edited_at, retracted, practice_log FROM submissions WHERE doc_id = ?1 ORDER BY key")?
        .query_map([doc_id], |r| {
            Ok(SubmissionRow { meta: meta(r, 0, 1, 7, Some(8), Some(9))?, kind: r.get(2)?, title: r.get(3)?, body: r.get(4)?, prompt_id: r.get(5)?, attachments: list(r.get(6)?), practice_log: r.get(10)? })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let feedback = query("SELECT key, author, submission, body, suggestion, criteria, created_at, edited_at, retracted, scores FROM feedback WHERE doc_id = ?1 ORDER BY key")?
        .query_map([doc_id], |r| {
            Ok(FeedbackRow { meta: meta(r, 0, 1, 6, Some(7), Some(8))?, submission: r.get(2)?, body: r.get(3)?, suggestion: r.get(4)?, criteria: list(r.get(5)?), scores: list(r.get(9)?), endorsed_by: None })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let replies = query("SELECT key, author, feedback, parent, body, created_at, edited_at, retracted FROM replies WHERE doc_id = ?1 ORDER BY key")?
        .query_map([doc_id], |r| Ok(ReplyRow { meta: meta(r, 0, 1, 5, Some(6), Some(7))?, feedback: r.get(2)?, parent: r.get(3)?, body: r.get(4)? }))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let ratings = query("SELECT key, author, feedback, score, counted, created_at, edited_at FROM ratings WHERE doc_id = ?1 ORDER BY key")?
        .query_map([doc_id], |r| Ok(RatingRow { meta: meta(r, 0, 1, 5, Some(6), None)?, feedback: r.get(2)?, score: r.get(3)?, counted: r.get(4)? }))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let attendance = query(
        "SELECT key, author, member, present, created_at, edited_at FROM attendance WHERE doc_id = ?1 ORDER BY key",
    )?
    .query_map([doc_id], |r| {
        Ok(AttendanceRow { meta: meta(r, 0, 1, 4, Some(5), None)?, member: r.get(2)?, present: r.get(3)? })
    })?
    .collect::<rusqlite::Result<Vec<_>>>()?;
    let agenda =
        query("SELECT key, author, submission, position, note, created_at, edited_at, retracted FROM agenda WHERE doc_id = ?1 ORDER BY key")?
            .query_map([doc_id], |r| {
                Ok(AgendaRow {
                    meta: meta(r, 0, 1, 5, Some(6), Some(7))?,
                    submission: r.get(2)?,
                    position: r.get(3)?,
                    note: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
    let synthesis: String = query("SELECT text FROM synthesis WHERE doc_id = ?1")?
        .query_row([doc_id], |r| r.get(0))
        .optional()?
        .unwrap_or_default();
    Ok(WeekRows { submissions, feedback, replies, ratings, attendance, agenda, synthesis })
}

/// The week's entries the server says it first stored after the feedback window closed.
pub fn late_keys(conn: &Connection, doc_id: &str) -> Result<Vec<String>> {
    let mut stmt = conn.prepare_cached("SELECT key FROM late_entries WHERE doc_id = ?1 ORDER BY key")?;
    let rows = stmt.query_map([doc_id], |r| r.get(0))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Records what the server said arrived late (it never takes it back).
pub fn save_late_keys(tx: &Transaction<'_>, doc_id: &str, keys: &[String]) -> Result<()> {
    for key in keys {
        tx.prepare_cached("INSERT OR IGNORE INTO late_entries (doc_id, key) VALUES (?1, ?2)")?
            .execute([doc_id, key])?;
    }
    Ok(())
}

// ---- intents ------------------------------------------------------------------------------

pub fn record_intent(
    tx: &Transaction<'_>,
    doc_id: &str,
    json: &str,
    hash: &automerge::ChangeHash,
    now: i64,
) -> Result<()> {
    tx.prepare_cached("INSERT INTO doc_intents (doc_id, intent, change_hash, created_at) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![doc_id, json, hash.0.as_slice(), now])?;
    Ok(())
}

/// The newest intent sequence number (0 when none).
pub fn intent_watermark(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM doc_intents", [], |r| r.get(0))?)
}

/// Forgets intents the server has accepted (those recorded up to `watermark`).
pub fn settle_intents(tx: &Transaction<'_>, doc_id: &str, watermark: i64) -> Result<()> {
    tx.prepare_cached("DELETE FROM doc_intents WHERE doc_id = ?1 AND seq <= ?2")?
        .execute(params![doc_id, watermark])?;
    Ok(())
}

/// A document's pending intents `(seq, JSON, change hash)`, oldest first.
pub fn pending_intents(conn: &Connection, doc_id: &str) -> Result<Vec<(i64, String, Vec<u8>)>> {
    let mut stmt =
        conn.prepare_cached("SELECT seq, intent, change_hash FROM doc_intents WHERE doc_id = ?1 ORDER BY seq")?;
    let rows = stmt.query_map([doc_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Drops an intent after its replay recorded a new one.
pub fn remove_intent(tx: &Transaction<'_>, seq: i64) -> Result<()> {
    tx.execute("DELETE FROM doc_intents WHERE seq = ?1", [seq])?;
    Ok(())
}

/// Moves an intent that could not be replayed to the failed list, with the reason.
pub fn fail_intent(tx: &Transaction<'_>, seq: i64, doc_id: &str, json: &str, reason: &str, now: i64) -> Result<()> {
    tx.execute("DELETE FROM doc_intents WHERE seq = ?1", [seq])?;
    tx.execute(
        "INSERT INTO failed_intents (doc_id, intent, reason, failed_at) VALUES (?1, ?2, ?3, ?4)",
        params![doc_id, json, reason, now],
    )?;
    Ok(())
}

/// `(doc_id, intent JSON, reason)` of intents that could not be replayed, oldest first.
pub fn failed_intents(conn: &Connection) -> Result<Vec<(String, String, String)>> {
    let mut stmt = conn.prepare_cached("SELECT doc_id, intent, reason FROM failed_intents ORDER BY seq")?;
    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}
