//! The cohort side of the [`Client`]: sharing practices, feedback, replies, ratings, the weekly
//! synthesis, roles and review assignments — all offline, in automerge documents persisted as
//! chunks and projected into SQLite after every local change and every merge.

use std::collections::HashMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::MutexGuard;

use automerge::transaction::CommitOptions;
use automerge::{AutoCommit, ChangeHash, ScalarValue};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Client;
use super::events::{ClientEvent, DataChange};
use super::intents::{self, Intent, to_intent_fields, to_scalar_fields};
use crate::docs::guard::{self, DocError};
use crate::docs::projection::{WeekRows, project_week};
use crate::docs::schema::{Container, SCHEMA_VERSION, field, key_author};
use crate::docs::{DocId, check_id, cohort, genesis, schema_version, week};
use crate::domain::DomainError;
use crate::domain::blueprint::Phase;
use crate::domain::review::{ReviewAssignment, assign_reviews};
use crate::domain::roles::{WeekRoles, WeeklyRole, roles_for_week};
use crate::domain::roster::{Roster, SizeStatus};
use crate::error::{Error, Result};
use crate::policy::{CheckedChange, ObjectIndex, Owner, Submitter, check_change, validate};
use crate::store::cohort::{self as cohort_store, Membership};
use crate::store::practice::{self as logs, PracticeStatus};
use crate::sync::limits::MAX_VALUE_CHARS;

/// After this many incremental chunks a document is compacted into one snapshot.
const COMPACT_AFTER_CHUNKS: u64 = 32;
pub const MAX_BODY_CHARS: usize = MAX_VALUE_CHARS;
pub const MAX_TITLE_CHARS: usize = 200;
/// The week's synthesis is a page, not a book: it also keeps every edit within the server's
/// bound on operations per change.
pub const MAX_SYNTHESIS_CHARS: usize = 20_000;

/// An entry of a week document: which week, and its `"<author>/<entry_id>"` key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EntryRef {
    pub week: u32,
    pub key: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkKind {
    Practice,
    /// The capstone micro-project (consolidation weeks only).
    Capstone,
    /// The public reflection (consolidation weeks only).
    Reflection,
}

impl WorkKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Practice => "practice",
            Self::Capstone => "capstone",
            Self::Reflection => "reflection",
        }
    }
}

/// Structured peer feedback on a submission.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedbackInput {
    pub body: String,
    /// A concrete suggestion, if the feedback makes one.
    pub suggestion: Option<String>,
    /// Indices of the prompt's rubric criteria the feedback addresses.
    pub criteria: Vec<u32>,
}

/// Whether a week's feedback threads are still open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FeedbackWindow {
    pub closes_at: Option<DateTime<Utc>>,
    pub open: bool,
}

/// What merging received changes did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiveReport {
    pub heads: Vec<ChangeHash>,
    /// Changes waiting for dependencies that have not arrived yet.
    pub waiting: bool,
    /// The document uses a newer schema: kept and synced, but not shown until the app updates.
    pub newer_schema: bool,
}

pub(super) struct OpenDoc {
    am: AutoCommit,
    /// What the store already holds of this document (empty for a genesis not yet stored).
    stored_heads: Vec<ChangeHash>,
    /// The validator's view of the document, kept between local changes, rebuilt after merges.
    index: Option<ObjectIndex>,
}

#[derive(Default)]
pub(super) struct OpenDocs {
    docs: HashMap<DocId, OpenDoc>,
}

impl OpenDocs {
    pub(super) fn clear(&mut self) {
        self.docs.clear();
    }
}

impl Client {
    /// Records who this device's user is and which cohort they belong to.
    /// Another person on a database that held someone's data starts with a new automerge actor
    /// (the old one is bound to that person on the server); joining through `join_server`
    /// never mixes two people (the server refuses), this keeps direct callers as safe.
    pub fn join_cohort(&self, cohort_id: &str, user_id: &str) -> Result<()> {
        check_id("cohort_id", cohort_id)?;
        check_id("user_id", user_id)?;
        self.store().write(|tx| {
            if cohort_store::membership(tx)?.is_some_and(|m| m.user_id != user_id) {
                cohort_store::new_device_actor(tx)?;
            }
            cohort_store::device_actor(tx)?;
            cohort_store::save_membership(tx, &Membership { cohort_id: cohort_id.into(), user_id: user_id.into() })
        })?;
        self.open_docs().docs.clear();
        self.notify(ClientEvent::DataChanged(DataChange::Program));
        Ok(())
    }

    pub(crate) fn membership(&self) -> Result<Membership> {
        self.store().read(cohort_store::membership)?.ok_or(Error::NotInCohort)
    }

    /// The user this device belongs to (the author part of every key it writes).
    pub fn my_user_id(&self) -> Result<String> {
        Ok(self.membership()?.user_id)
    }

    pub fn roster(&self) -> Result<Roster> {
        let m = self.membership()?;
        self.store().read(|conn| cohort_store::roster(conn, &m.cohort_id))
    }

    // ---- sharing and feedback -------------------------------------------------------------

    /// Shares a logged practice with the cohort as a submission in this week's document. The
    /// private reflection is not shared; `body` is what the learner chooses to show.
    pub fn share_practice(&self, log_id: Uuid, title: &str, body: &str) -> Result<EntryRef> {
        let log = self.store().read(|conn| logs::log(conn, log_id))?.ok_or(Error::UnknownPracticeLog(log_id))?;
        if log.status != PracticeStatus::Completed {
            return Err(DomainError::invalid("log_id", "only a completed practice can be shared").into());
        }
        self.share_work(WorkKind::Practice, title, body, Some(&log.prompt.prompt_id), &[])
    }

    /// Shares work with the cohort. Attachments are references (links, file ids), never bytes.
    pub fn share_work(
        &self,
        kind: WorkKind,
        title: &str,
        body: &str,
        prompt_id: Option<&str>,
        attachments: &[String],
    ) -> Result<EntryRef> {
        let title = checked_text("title", title, MAX_TITLE_CHARS)?;
        let body = checked_text("body", body, MAX_BODY_CHARS)?;
        let week = self.current_week()?;
        if kind != WorkKind::Practice
            && self.program()?.enrollment.blueprint.phase_of_week(week) != Phase::Consolidation
        {
            return Err(DomainError::invalid(
                "kind",
                format!("a {} is shared in the consolidation weeks", kind.as_str()),
            )
            .into());
        }
        let attachments = serde_json::to_string(attachments).map_err(|e| Error::Corrupt(e.to_string()))?;
        if attachments.chars().count() > MAX_VALUE_CHARS {
            return Err(DomainError::invalid(
                "attachments",
                format!("the references take more than {MAX_VALUE_CHARS} characters"),
            )
            .into());
        }
        let now = self.now().timestamp_millis();
        let fields = [
            (field::KIND, ScalarValue::from(kind.as_str())),
            (field::TITLE, title.into()),
            (field::BODY, body.into()),
            (field::PROMPT_ID, prompt_id.unwrap_or_default().into()),
            (field::ATTACHMENTS, attachments.into()),
            (field::CREATED_AT, ScalarValue::Int(now)),
            (field::RETRACTED, false.into()),
        ];
        self.add_entry(week, Container::Submissions, &fields)
    }

    /// Writes feedback on a submission. After the week's window closes it is still kept, flagged
    /// late.
    pub fn give_feedback(&self, submission: &EntryRef, input: &FeedbackInput) -> Result<EntryRef> {
        let body = checked_text("body", &input.body, MAX_BODY_CHARS)?;
        let suggestion = match input.suggestion.as_deref().map(str::trim) {
            Some(s) if !s.is_empty() => checked_text("suggestion", s, MAX_BODY_CHARS)?,
            _ => String::new(),
        };
        let me = self.membership()?.user_id;
        let rows = self.week_rows(submission.week)?;
        let target = rows.submissions.iter().find(|s| s.meta.key == submission.key).ok_or_else(|| {
            Error::UnknownEntry { what: "submission", week: submission.week, key: submission.key.clone() }
        })?;
        if target.meta.author == me {
            return Err(DomainError::invalid("submission", "give feedback on someone else's work").into());
        }
        // The criteria a reviewer may name: the capstone brief's for a capstone, else its prompt's.
        let program = self.program()?;
        let rubric = match (target.kind.as_str(), target.prompt_id.as_deref()) {
            ("capstone", _) => program.pack.capstone.as_ref().map_or(0, |c| c.rubric.len()),
            (_, Some(id)) => program.pack.prompts.iter().find(|p| p.id == id).map_or(0, |p| p.rubric.len()),
            (_, None) => 0,
        };
        if let Some(outside) = input.criteria.iter().find(|&&c| c as usize >= rubric) {
            let problem = match rubric {
                0 => format!("criterion {outside}: this submission's prompt has no rubric"),
                n => format!("criterion {outside} is not in the rubric (criteria 0 to {})", n - 1),
            };
            return Err(DomainError::invalid("criteria", problem).into());
        }
        let mut criteria = input.criteria.clone();
        criteria.sort_unstable();
        criteria.dedup();
        let criteria = serde_json::to_string(&criteria).map_err(|e| Error::Corrupt(e.to_string()))?;
        let fields = [
            (field::SUBMISSION, ScalarValue::from(submission.key.as_str())),
            (field::BODY, body.into()),
            (field::SUGGESTION, suggestion.into()),
            (field::CRITERIA, criteria.into()),
            (field::CREATED_AT, ScalarValue::Int(self.now().timestamp_millis())),
            (field::RETRACTED, false.into()),
        ];
        self.add_entry(submission.week, Container::Feedback, &fields)
    }

    /// Replies in a feedback thread, to the feedback itself or to an earlier reply.
    pub fn reply(&self, feedback: &EntryRef, parent: Option<&EntryRef>, body: &str) -> Result<EntryRef> {
        let body = checked_text("body", body, MAX_BODY_CHARS)?;
        let rows = self.week_rows(feedback.week)?;
        if !rows.feedback.iter().any(|f| f.meta.key == feedback.key) {
            return Err(Error::UnknownEntry { what: "feedback", week: feedback.week, key: feedback.key.clone() });
        }
        if let Some(parent) = parent
            && (parent.week != feedback.week
                || !rows.replies.iter().any(|r| r.meta.key == parent.key && r.feedback == feedback.key))
        {
            return Err(Error::UnknownEntry {
                what: "reply in this thread",
                week: parent.week,
                key: parent.key.clone(),
            });
        }
        let fields = [
            (field::FEEDBACK, ScalarValue::from(feedback.key.as_str())),
            (field::PARENT, parent.map(|p| p.key.as_str()).unwrap_or_default().into()),
            (field::BODY, body.into()),
            (field::CREATED_AT, ScalarValue::Int(self.now().timestamp_millis())),
            (field::RETRACTED, false.into()),
        ];
        self.add_entry(feedback.week, Container::Replies, &fields)
    }

    /// Rates how helpful feedback on one's own submission was (1–5). Rating again changes the
    /// score.
    pub fn rate_feedback(&self, feedback: &EntryRef, score: u8) -> Result<EntryRef> {
        if !(1..=5).contains(&score) {
            return Err(DomainError::invalid("score", format!("{score} is outside 1..=5")).into());
        }
        let me = self.membership()?.user_id;
        let rows = self.week_rows(feedback.week)?;
        let on = rows.feedback.iter().find(|f| f.meta.key == feedback.key).ok_or_else(|| Error::UnknownEntry {
            what: "feedback",
            week: feedback.week,
            key: feedback.key.clone(),
        })?;
        if key_author(&on.submission) != Some(me.as_str()) {
            return Err(DomainError::invalid("feedback", "only the author of the submission rates its feedback").into());
        }
        let now = ScalarValue::Int(self.now().timestamp_millis());
        if let Some(existing) = rows.ratings.iter().find(|r| r.meta.author == me && r.feedback == feedback.key) {
            let key = existing.meta.key.clone();
            let fields = [(field::SCORE, ScalarValue::Int(i64::from(score))), (field::EDITED_AT, now)];
            self.change_entry(feedback.week, Container::Ratings, &key, &fields)?;
            return Ok(EntryRef { week: feedback.week, key });
        }
        let fields = [
            (field::FEEDBACK, ScalarValue::from(feedback.key.as_str())),
            (field::SCORE, ScalarValue::Int(i64::from(score))),
            (field::CREATED_AT, now),
        ];
        self.add_entry(feedback.week, Container::Ratings, &fields)
    }

    /// Changes the text of one's own submission, feedback or reply.
    pub fn edit_entry(&self, entry: &EntryRef, body: &str) -> Result<()> {
        let body = checked_text("body", body, MAX_BODY_CHARS)?;
        let container = self.own_entry_container(entry)?;
        let fields = [
            (field::BODY, ScalarValue::from(body)),
            (field::EDITED_AT, ScalarValue::Int(self.now().timestamp_millis())),
        ];
        self.change_entry(entry.week, container, &entry.key, &fields)
    }

    /// Retracts one's own submission, feedback or reply. It stays visible as retracted.
    pub fn retract_entry(&self, entry: &EntryRef) -> Result<()> {
        let container = self.own_entry_container(entry)?;
        let fields = [
            (field::RETRACTED, ScalarValue::from(true)),
            (field::EDITED_AT, ScalarValue::Int(self.now().timestamp_millis())),
        ];
        self.change_entry(entry.week, container, &entry.key, &fields)
    }

    /// Co-writes the week's synthesis: deletes `delete` characters at `position` and inserts
    /// `insert` (positions count Unicode code points).
    pub fn edit_synthesis(&self, week: u32, position: usize, delete: usize, insert: &str) -> Result<()> {
        let inserted = insert.chars().count();
        if inserted > MAX_BODY_CHARS {
            return Err(DomainError::invalid("insert", format!("is longer than {MAX_BODY_CHARS} characters")).into());
        }
        let length = self.synthesis(week)?.chars().count();
        if length.saturating_sub(delete.min(length)) + inserted > MAX_SYNTHESIS_CHARS {
            return Err(DomainError::invalid(
                "insert",
                format!("the synthesis would be longer than {MAX_SYNTHESIS_CHARS} characters"),
            )
            .into());
        }
        self.apply_intent(&Intent::Synthesis { week, position, delete, insert: insert.to_owned() }).map(|_| ())
    }

    pub fn synthesis(&self, week: u32) -> Result<String> {
        Ok(self.week_rows(week)?.synthesis)
    }

    /// The facilitator records who attended a weekly critique.
    pub fn record_attendance(&self, week: u32, member: &str, present: bool) -> Result<()> {
        check_id("member", member)?;
        let at = self.now().timestamp_millis();
        self.apply_intent(&Intent::Attendance { week, member: member.to_owned(), present, at }).map(|_| ())
    }

    // ---- roles, assignments, windows ------------------------------------------------------

    pub fn week_roles(&self, week: u32) -> Result<WeekRoles> {
        let blueprint = self.program()?.enrollment.blueprint.clone();
        Ok(roles_for_week(&blueprint, &self.roster()?, week))
    }

    pub fn my_role(&self, week: u32) -> Result<Option<WeeklyRole>> {
        let me = self.membership()?.user_id;
        Ok(self.week_roles(week)?.role_of(&me))
    }

    pub fn review_assignments(&self, week: u32) -> Result<Vec<ReviewAssignment>> {
        Ok(assign_reviews(&self.week_roles(week)?))
    }

    pub fn feedback_window(&self, week: u32) -> Result<FeedbackWindow> {
        let closes_at = self.program()?.enrollment.blueprint.feedback_closes_at(week);
        Ok(FeedbackWindow { closes_at, open: closes_at.is_none_or(|close| self.now() <= close) })
    }

    /// The cohort's size against its configured range (facilitators see the warning).
    pub fn cohort_size_status(&self) -> Result<SizeStatus> {
        let program = self.program()?;
        let blueprint = &program.enrollment.blueprint;
        let today = self.now().with_timezone(&blueprint.cohort_time_zone).date_naive();
        let learners = self.roster()?.learners_on(today) as u32;
        Ok(blueprint.cohort_size.check(learners)?)
    }

    // ---- reading projections --------------------------------------------------------------

    /// A week's projected rows, as the UI reads them.
    pub fn week_rows(&self, week: u32) -> Result<WeekRows> {
        let doc = self.week_doc(week)?.to_string();
        self.store().read(|conn| cohort_store::week_rows(conn, &doc))
    }

    /// Keys of the week's feedback and replies written after its window closed.
    pub fn late_entries(&self, week: u32) -> Result<Vec<String>> {
        let doc = self.week_doc(week)?.to_string();
        self.store().read(|conn| cohort_store::late_keys(conn, &doc))
    }

    /// Re-projects every stored document from its saved chunks.
    pub fn rebuild_projections(&self) -> Result<()> {
        let ids = self.store().read(cohort_store::doc_ids)?;
        let mut open = self.open_docs();
        open.docs.clear();
        for id in &ids {
            let doc = DocId::parse(id)?;
            let (mut am, _) = self.load_doc(&doc)?;
            let heads = am.get_heads();
            self.persist(&doc, &mut am, &heads, None)?;
            open.docs.insert(doc, OpenDoc { am, stored_heads: heads, index: None });
        }
        drop(open);
        for id in ids {
            self.notify(ClientEvent::DataChanged(DataChange::Document(id)));
        }
        Ok(())
    }

    // ---- merging ----------------------------------------------------------------------------

    /// Merges changes received from the server (or, in tests, from peers). Malformed bytes are
    /// refused before anything is applied or written.
    pub fn receive_changes(&self, doc_id: &str, changes: &[Vec<u8>]) -> Result<ReceiveReport> {
        let doc = self.received_doc(doc_id)?;
        // Bounded like the server's own input: a change that would expand past the limits is
        // refused before automerge decodes it.
        let decoded = changes
            .iter()
            .map(|bytes| check_change(bytes).map(|c| c.change).map_err(|r| DocError::Malformed(r.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        // Applied to the open document in place. Changes still waiting for their dependencies
        // stay queued in it.
        self.take_received(doc_id, &doc, |entry, before| {
            guard::apply(&mut entry.am, decoded)?;
            let heads = entry.am.get_heads();
            if heads != before {
                self.persist(&doc, &mut entry.am, &entry.stored_heads, None)?;
                entry.stored_heads = heads;
            }
            Ok(())
        })
    }

    /// Takes the server's saved copy of a document (a whole document, for a device that lacks
    /// much of it) in one load: it becomes this device's copy when it holds everything the device
    /// has, and is merged into the device's copy otherwise.
    pub fn receive_snapshot(&self, doc_id: &str, bytes: &[u8]) -> Result<ReceiveReport> {
        let doc = self.received_doc(doc_id)?;
        let mut saved = guard::load(bytes)?;
        self.take_received(doc_id, &doc, |entry, before| {
            if before.iter().all(|h| saved.get_change_by_hash(h).is_some()) {
                self.persist_as(&doc, &mut saved, Stored::Saved(bytes), None)?;
                entry.am = saved;
            } else {
                guard::merge(&mut entry.am, &mut saved)?;
                self.persist(&doc, &mut entry.am, &entry.stored_heads, None)?;
            }
            entry.stored_heads = entry.am.get_heads();
            Ok(())
        })
    }

    /// This cohort's document `doc_id`, named by something received.
    fn received_doc(&self, doc_id: &str) -> Result<DocId> {
        let doc = DocId::parse(doc_id)?;
        if doc.cohort_id() != self.membership()?.cohort_id {
            return Err(DomainError::invalid("doc_id", format!("{doc_id} belongs to another cohort")).into());
        }
        Ok(doc)
    }

    /// Brings something received into the open document: `take` changes it and stores what it
    /// changed (given the heads before); then the report, and an event when the heads moved.
    fn take_received(
        &self,
        doc_id: &str,
        doc: &DocId,
        take: impl FnOnce(&mut OpenDoc, &[ChangeHash]) -> Result<()>,
    ) -> Result<ReceiveReport> {
        let (report, changed) = self.with_doc(doc, |entry| {
            let before = entry.am.get_heads();
            take(entry, &before)?;
            entry.index = None;
            let heads = entry.am.get_heads();
            let waiting = !entry.am.get_missing_deps(&[]).is_empty();
            let newer_schema = schema_version(&entry.am).is_some_and(|v| v > SCHEMA_VERSION);
            let changed = heads != before;
            Ok((ReceiveReport { heads, waiting, newer_schema }, changed))
        })?;
        if changed {
            self.notify(ClientEvent::DataChanged(DataChange::Document(doc_id.to_owned())));
        }
        Ok(report)
    }

    /// Changes of a document that a holder of `heads` lacks (all of them for no heads).
    pub fn changes_since(&self, doc_id: &str, heads: &[ChangeHash]) -> Result<Vec<Vec<u8>>> {
        let doc = DocId::parse(doc_id)?;
        self.with_doc(&doc, |entry| {
            Ok(entry.am.get_changes(heads).into_iter().map(|c| c.raw_bytes().to_vec()).collect())
        })
    }

    pub fn doc_heads(&self, doc_id: &str) -> Result<Vec<ChangeHash>> {
        let doc = DocId::parse(doc_id)?;
        self.with_doc(&doc, |entry| Ok(entry.am.get_heads()))
    }

    // ---- for the sync client ---------------------------------------------------------------

    #[cfg(feature = "sync-client")]
    /// The documents this device syncs: the cohort document and every week up to the current one
    /// (or the last, after the program), plus any other document it holds.
    pub(crate) fn synced_docs(&self) -> Result<Vec<DocId>> {
        let cohort_id = self.membership()?.cohort_id;
        let blueprint = self.program()?.enrollment.blueprint.clone();
        let today = self.today_date()?;
        let last_week = match blueprint.position_on(today).week {
            Some(week) => week,
            None if today > blueprint.end_date() => blueprint.weeks,
            None => 0,
        };
        let mut docs: Vec<DocId> = std::iter::once(DocId::cohort(&cohort_id))
            .chain((0..=last_week).map(|w| DocId::week(&cohort_id, w)))
            .collect();
        let stored = self.store().read(cohort_store::doc_ids)?;
        for id in stored {
            if let Ok(doc) = DocId::parse(&id)
                && doc.cohort_id() == cohort_id
                && !docs.contains(&doc)
            {
                docs.push(doc);
            }
        }
        Ok(docs)
    }

    #[cfg(feature = "sync-client")]
    /// The local changes a holder of `known` lacks, and the local heads. Heads the device does not
    /// have (the server moved on without it) count as nothing known: over-sending is safe.
    pub(crate) fn local_changes(&self, doc: &DocId, known: &[ChangeHash]) -> Result<(Vec<Vec<u8>>, Vec<ChangeHash>)> {
        self.with_doc(doc, |entry| {
            let known: Vec<ChangeHash> = if known.iter().all(|h| entry.am.get_change_by_hash(h).is_some()) {
                known.to_vec()
            } else {
                Vec::new()
            };
            let changes = entry.am.get_changes(&known).into_iter().map(|c| c.raw_bytes().to_vec()).collect();
            Ok((changes, entry.am.get_heads()))
        })
    }

    #[cfg(feature = "sync-client")]
    /// Whether the device's copy of a document holds a change.
    pub(crate) fn has_change(&self, doc: &DocId, hash: &[u8]) -> Result<bool> {
        let Ok(hash) = ChangeHash::try_from(hash) else { return Ok(false) };
        self.with_doc(doc, |entry| Ok(entry.am.get_change_by_hash(&hash).is_some()))
    }

    #[cfg(feature = "sync-client")]
    /// Drops this device's copy of a document (after the server refused its branch); the next
    /// sync fetches the server's copy.
    pub(crate) fn drop_local_doc(&self, doc: &DocId) -> Result<()> {
        let mut open = self.open_docs();
        open.docs.remove(doc);
        let id = doc.to_string();
        self.store().write(|tx| crate::store::sync_state::forget_doc(tx, &id))?;
        drop(open);
        self.notify(ClientEvent::DataChanged(DataChange::Document(id)));
        Ok(())
    }

    // ---- internals ------------------------------------------------------------------------

    /// Runs `f` on a document, loading it on first use. If `f` fails, the in-memory copy is
    /// dropped, so the next use reloads it from disk, which never saw the failed work. A panic
    /// inside automerge (a document holding history it cannot handle) is caught here, for every
    /// call on an open document, and becomes an error naming the document.
    fn with_doc<T>(&self, doc: &DocId, f: impl FnOnce(&mut OpenDoc) -> Result<T>) -> Result<T> {
        let mut open = self.open_docs();
        let result = catch_unwind(AssertUnwindSafe(|| self.opened(&mut open, doc).and_then(f))).unwrap_or_else(|_| {
            Err(DocError::Malformed(format!("document {doc} holds history this app cannot process")).into())
        });
        if result.is_err() {
            open.docs.remove(doc);
        }
        result
    }

    pub(super) fn open_docs(&self) -> MutexGuard<'_, OpenDocs> {
        self.docs.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn current_week(&self) -> Result<u32> {
        let today = self.today_date()?;
        let position = self.program()?.enrollment.blueprint.position_on(today);
        position.week.ok_or_else(|| {
            DomainError::invalid("week", format!("{today} is outside the program; there is no week to share in")).into()
        })
    }

    fn week_doc(&self, week: u32) -> Result<DocId> {
        let weeks = self.program()?.enrollment.blueprint.weeks;
        if week > weeks {
            return Err(DomainError::invalid("week", format!("{week} is outside weeks 0..={weeks}")).into());
        }
        Ok(DocId::week(&self.membership()?.cohort_id, week))
    }

    fn add_entry(&self, week: u32, container: Container, fields: &[week::Field<'_>]) -> Result<EntryRef> {
        let intent = Intent::AddEntry {
            week,
            container: container.name().to_owned(),
            entry_id: Uuid::now_v7().to_string(),
            fields: to_intent_fields(fields),
        };
        let key = self.apply_intent(&intent)?;
        Ok(EntryRef { week, key })
    }

    fn change_entry(&self, week: u32, container: Container, key: &str, fields: &[week::Field<'_>]) -> Result<()> {
        let intent = Intent::SetFields {
            week,
            container: container.name().to_owned(),
            key: key.to_owned(),
            fields: to_intent_fields(fields),
        };
        self.apply_intent(&intent).map(|_| ())
    }

    /// Carries out an intent as one local change (also how intents are replayed). Returns the
    /// key of the entry it wrote.
    pub(crate) fn apply_intent(&self, intent: &Intent) -> Result<String> {
        let me = self.membership()?.user_id;
        let doc = self.week_doc(intent.week())?;
        let unknown = |name: &str| Error::Corrupt(format!("intent names unknown container {name:?}"));
        self.local_change(&doc, intent, |am| match intent {
            Intent::AddEntry { container, entry_id, fields, .. } => {
                let container = intents::container(container).ok_or_else(|| unknown(container))?;
                let key = crate::docs::schema::entry_key(&me, entry_id);
                if week::entry(am, container, &key).is_some() {
                    // Replayed after the server already had it: nothing to add.
                    return Ok(key);
                }
                Ok(week::add_entry(am, container, &me, entry_id, &to_scalar_fields(fields))?)
            }
            Intent::SetFields { container, key, fields, .. } => {
                let container = intents::container(container).ok_or_else(|| unknown(container))?;
                week::set_fields(am, container, key, &to_scalar_fields(fields))?;
                Ok(key.clone())
            }
            Intent::Synthesis { position, delete, insert, .. } => {
                week::splice_synthesis(am, *position, *delete, insert)?;
                Ok(String::new())
            }
            Intent::Attendance { member, present, at, .. } => {
                let entry_id = format!("attendance-{member}");
                let key = crate::docs::schema::entry_key(&me, &entry_id);
                let at = ScalarValue::Int(*at);
                if week::entry(am, Container::Attendance, &key).is_some() {
                    let fields = [(field::PRESENT, ScalarValue::from(*present)), (field::EDITED_AT, at)];
                    week::set_fields(am, Container::Attendance, &key, &fields)?;
                } else {
                    let fields = [
                        (field::MEMBER, ScalarValue::from(member.as_str())),
                        (field::PRESENT, (*present).into()),
                        (field::CREATED_AT, at),
                    ];
                    week::add_entry(am, Container::Attendance, &me, &entry_id, &fields)?;
                }
                Ok(key)
            }
        })
    }

    /// Which container holds one's own submission, feedback or reply.
    fn own_entry_container(&self, entry: &EntryRef) -> Result<Container> {
        let me = self.membership()?.user_id;
        let rows = self.week_rows(entry.week)?;
        let found = [
            (Container::Submissions, rows.submissions.iter().any(|s| s.meta.key == entry.key)),
            (Container::Feedback, rows.feedback.iter().any(|f| f.meta.key == entry.key)),
            (Container::Replies, rows.replies.iter().any(|r| r.meta.key == entry.key)),
        ];
        let container = found
            .into_iter()
            .find_map(|(container, present)| present.then_some(container))
            .ok_or_else(|| Error::UnknownEntry { what: "entry", week: entry.week, key: entry.key.clone() })?;
        if key_author(&entry.key) != Some(me.as_str()) {
            return Err(Error::NotYourEntry(entry.key.clone()));
        }
        Ok(container)
    }

    /// Makes a local change: edit, commit, validate with the same rules as the server, then persist
    /// chunk and projection in one transaction. On any error the document is reloaded from disk,
    /// so nothing half-done survives.
    fn local_change<T>(
        &self,
        doc: &DocId,
        intent: &Intent,
        edit: impl FnOnce(&mut AutoCommit) -> Result<T>,
    ) -> Result<T> {
        let membership = self.membership()?;
        let roster = self.roster()?;
        let actor = self.store().write(cohort_store::device_actor)?;
        let roles = match doc {
            DocId::Week { week, .. } => Some(roles_for_week(&self.program()?.enrollment.blueprint, &roster, *week)),
            DocId::Cohort { .. } => None,
        };
        let submitter = Submitter {
            user_id: &membership.user_id,
            facilitator: roster.is_facilitator(&membership.user_id),
            may_edit_synthesis: roles.as_ref().is_some_and(|r| r.may_edit_synthesis(&membership.user_id)),
        };
        let now = self.now();
        // The edit is made on the open document itself (see `with_doc` for failures).
        let (value, changed) = self.with_doc(doc, |entry| {
            if let Some(found) = schema_version(&entry.am).filter(|v| *v > SCHEMA_VERSION) {
                return Err(DocError::SchemaTooNew { doc: doc.to_string(), found, supported: SCHEMA_VERSION }.into());
            }
            let mut index = match entry.index.take() {
                Some(index) => index,
                None => ObjectIndex::from_document(doc, &entry.am),
            };
            index.bind(actor.clone(), Owner::User(membership.user_id.clone()));
            entry.am.set_actor(actor);
            let value = edit(&mut entry.am)?;
            let Some(hash) = entry.am.commit_with(CommitOptions::default().with_time(now.timestamp())) else {
                entry.index = Some(index);
                return Ok((value, false));
            };
            let change =
                entry.am.get_change_by_hash(&hash).ok_or_else(|| Error::Corrupt("committed change vanished".into()))?;
            for created in validate(doc, &CheckedChange::own(change)?, submitter, &index, &index)? {
                index.add_entry(&created);
            }
            self.persist(doc, &mut entry.am, &entry.stored_heads, Some((intent, hash)))?;
            entry.stored_heads = entry.am.get_heads();
            entry.index = Some(index);
            Ok((value, true))
        })?;
        if changed {
            self.notify(ClientEvent::DataChanged(DataChange::Document(doc.to_string())));
        }
        Ok(value)
    }

    /// Appends the changes the store lacks (those after `stored_heads`) and re-projects the
    /// document, in one transaction; compacts into a snapshot when the chunks pile up.
    fn persist(
        &self,
        doc: &DocId,
        am: &mut AutoCommit,
        stored_heads: &[ChangeHash],
        intent: Option<(&Intent, ChangeHash)>,
    ) -> Result<()> {
        self.persist_as(doc, am, Stored::After(stored_heads), intent)
    }

    /// [`Self::persist`], or with `Stored::Saved` the whole stored copy replaced by a saved
    /// document (the server's snapshot).
    fn persist_as(
        &self,
        doc: &DocId,
        am: &mut AutoCommit,
        stored: Stored<'_>,
        intent: Option<(&Intent, ChangeHash)>,
    ) -> Result<()> {
        let mut chunk = Vec::new();
        if let Stored::After(stored_heads) = stored {
            for change in am.get_changes(stored_heads) {
                chunk.extend_from_slice(change.raw_bytes());
            }
        }
        let blueprint = self.program()?.enrollment.blueprint.clone();
        let doc_id = doc.to_string();
        let projection = match doc {
            _ if schema_version(am).is_some_and(|v| v > SCHEMA_VERSION) => Projection::None,
            DocId::Week { week, .. } => Projection::Week(*week, project_week(am), blueprint.feedback_closes_at(*week)),
            DocId::Cohort { cohort_id } => Projection::Roster(cohort_id.clone(), cohort::roster(am)),
        };
        let intent = intent
            .map(|(intent, hash)| serde_json::to_string(intent).map(|json| (json, hash)))
            .transpose()
            .map_err(|e| Error::Corrupt(e.to_string()))?;
        let now = self.now().timestamp_millis();
        self.store().write(|tx| {
            if let Some((json, hash)) = &intent {
                cohort_store::record_intent(tx, &doc_id, json, hash, now)?;
            }
            match stored {
                Stored::Saved(bytes) => cohort_store::compact(tx, &doc_id, bytes)?,
                Stored::After(_) => {
                    let chunks = cohort_store::append_chunk(tx, &doc_id, &chunk, false)?;
                    if chunks > COMPACT_AFTER_CHUNKS {
                        cohort_store::compact(tx, &doc_id, &am.save())?;
                    }
                }
            }
            match &projection {
                Projection::Week(week, rows, closes) => {
                    cohort_store::replace_week(tx, &doc_id, *week, rows, closes.map(|c| c.timestamp_millis()))
                }
                Projection::Roster(cohort_id, roster) => cohort_store::replace_roster(tx, cohort_id, roster),
                Projection::None => Ok(()),
            }
        })
    }

    /// The stored document, or a fresh genesis (with no stored heads) if none is stored yet.
    fn load_doc(&self, doc: &DocId) -> Result<(AutoCommit, Vec<ChangeHash>)> {
        match self.store().read(|conn| cohort_store::load_chunks(conn, &doc.to_string()))? {
            Some(bytes) => {
                let mut am = guard::load(&bytes)?;
                let heads = am.get_heads();
                Ok((am, heads))
            }
            None => Ok((genesis(doc), Vec::new())),
        }
    }

    fn opened<'a>(&self, open: &'a mut OpenDocs, doc: &DocId) -> Result<&'a mut OpenDoc> {
        if !open.docs.contains_key(doc) {
            let (am, stored_heads) = self.load_doc(doc)?;
            open.docs.insert(doc.clone(), OpenDoc { am, stored_heads, index: None });
        }
        open.docs.get_mut(doc).ok_or_else(|| Error::Corrupt("document cache".into()))
    }
}

/// What of a document the store already holds when it is persisted.
#[derive(Clone, Copy)]
enum Stored<'a> {
    /// Everything up to these heads: the changes after them are appended.
    After(&'a [ChangeHash]),
    /// Nothing worth keeping: these saved bytes (the whole document) replace the stored copy.
    Saved(&'a [u8]),
}

enum Projection {
    Week(u32, WeekRows, Option<DateTime<Utc>>),
    Roster(String, Roster),
    None,
}

fn checked_text(field: &str, text: &str, max_chars: usize) -> Result<String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(field, "is empty").into());
    }
    if trimmed.chars().count() > max_chars {
        return Err(DomainError::invalid(field, format!("is longer than {max_chars} characters")).into());
    }
    Ok(trimmed.to_owned())
}
