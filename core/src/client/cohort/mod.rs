//! The cohort side of the [`Client`], all offline, in automerge documents persisted as chunks and
//! projected into SQLite after every local change and every merge. This module holds the
//! membership, the entry writes every action goes through and intents replayed after a refusal;
//! `sharing` (submissions), `feedback` (feedback, replies, ratings, edits, synthesis, attendance),
//! `agenda` (the critique's agenda), `roles` (roles, review assignments, windows, size), `merging` (the server's changes in, the
//! device's out) and `local_docs` (documents open on the device) the rest.

use std::collections::HashMap;

use automerge::{AutoCommit, ChangeHash, ScalarValue};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::Client;
use super::events::{ClientEvent, DataChange};
use super::intents::{self, Intent, to_intent_fields, to_scalar_fields};
use crate::docs::projection::WeekRows;
use crate::docs::schema::{Container, field, key_author};
use crate::docs::{DocId, check_id, week};
use crate::domain::DomainError;
use crate::domain::roster::Roster;
use crate::error::{Error, Result};
use crate::policy::ObjectIndex;
use crate::store::cohort::{self as cohort_store, Membership};
use crate::store::facilitation;
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

/// Whether feedback or a reply arrived after its week's window closed — the server's fact (when
/// it first stored the entry), never the author's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lateness {
    OnTime,
    Late,
    /// This person's own entry the server has not stored yet: it decides when it does.
    Pending,
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

mod agenda;
mod feedback;
mod local_docs;
mod merging;
mod roles;
mod sharing;

impl Client {
    /// Records who this device's user is and which cohort they belong to.
    /// Another person on a database that held someone's data starts with a new automerge actor
    /// (the old one is bound to that person on the server); joining through `join_server`
    /// never mixes two people (the server refuses), this keeps direct callers as safe.
    /// The membership joins the person's others on this device (of the selected program) and
    /// becomes the selected one.
    pub fn join_cohort(&self, cohort_id: &str, user_id: &str) -> Result<()> {
        self.join_cohort_as(cohort_id, user_id, "")
    }

    /// [`Client::join_cohort`] with the role the server gave (`''`: unknown).
    pub(crate) fn join_cohort_as(&self, cohort_id: &str, user_id: &str, role: &str) -> Result<()> {
        check_id("cohort_id", cohort_id)?;
        check_id("user_id", user_id)?;
        self.store().write(|tx| {
            if cohort_store::person(tx)?.is_some_and(|person| person != user_id) {
                cohort_store::new_device_actor(tx)?;
            }
            cohort_store::device_actor(tx)?;
            let membership = Membership { cohort_id: cohort_id.into(), user_id: user_id.into() };
            cohort_store::save_membership(tx, &membership, role)
        })?;
        self.open_docs().docs.clear();
        self.forget_program();
        self.notify(ClientEvent::DataChanged(DataChange::Program));
        Ok(())
    }

    /// The selected membership: the cohort every screen call is about.
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

    /// A week's rows as this member sees them: what facilitators hid left out (marked for its
    /// author and the facilitators), endorsements marked.
    pub fn week_rows(&self, week: u32) -> Result<WeekRows> {
        let membership = self.membership()?;
        let doc = self.week_doc(week)?.to_string();
        let rows = self.store().read(|conn| cohort_store::week_rows(conn, &doc))?;
        let moderation =
            self.store().read(|conn| facilitation::moderation_of_week(conn, &membership.cohort_id, week))?;
        let facilitator = !moderation.is_empty() && self.roster()?.is_facilitator(&membership.user_id);
        Ok(crate::docs::moderated::moderated(rows, &moderation, &membership.user_id, facilitator))
    }

    /// Keys of the week's feedback and replies the server first stored after its window closed.
    pub fn late_entries(&self, week: u32) -> Result<Vec<String>> {
        let doc = self.week_doc(week)?.to_string();
        self.store().read(|conn| cohort_store::late_keys(conn, &doc))
    }

    /// Each of the week's feedback and replies with its [`Lateness`], as far as this device
    /// knows (the server tells with the sync that moves the week).
    pub fn entry_lateness(&self, week: u32) -> Result<Vec<(String, Lateness)>> {
        let doc = self.week_doc(week)?.to_string();
        let me = self.membership()?.user_id;
        let rows = self.week_rows(week)?;
        let (late, pending) = self.store().read(|conn| {
            let late: std::collections::HashSet<String> = cohort_store::late_keys(conn, &doc)?.into_iter().collect();
            let mut pending = std::collections::HashSet::new();
            for (_, json, _) in cohort_store::pending_intents(conn, &doc)? {
                if let Ok(Intent::AddEntry { container, entry_id, .. }) = serde_json::from_str::<Intent>(&json)
                    && matches!(container.as_str(), "feedback" | "replies")
                {
                    pending.insert(crate::docs::schema::entry_key(&me, &entry_id));
                }
            }
            Ok((late, pending))
        })?;
        let keys = rows.feedback.iter().map(|f| &f.meta.key).chain(rows.replies.iter().map(|r| &r.meta.key));
        Ok(keys
            .map(|key| {
                let lateness = if late.contains(key) {
                    Lateness::Late
                } else if pending.contains(key) {
                    Lateness::Pending
                } else {
                    Lateness::OnTime
                };
                (key.clone(), lateness)
            })
            .collect())
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
        self.add_entry_with_id(week, container, Uuid::now_v7().to_string(), fields)
    }

    /// Adds an entry under a chosen id; an entry already there under it is kept as it is.
    fn add_entry_with_id(
        &self,
        week: u32,
        container: Container,
        entry_id: String,
        fields: &[week::Field<'_>],
    ) -> Result<EntryRef> {
        let intent = Intent::AddEntry {
            week,
            container: container.name().to_owned(),
            entry_id,
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
        if self.program()?.enrollment.blueprint.control_arm {
            return Err(Error::ControlArm);
        }
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
    Week(u32, WeekRows),
    /// The cohort document: roster, changed critique weeks, moderation, announcements.
    Cohort(String, Box<crate::docs::cohort::CohortRows>),
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
