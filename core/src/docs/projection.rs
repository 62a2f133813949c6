//! Reading documents into plain rows. The UI and metrics read these rows (stored in SQLite by
//! `store::cohort`), never the documents, so a cold start never waits for a document to load.
//! Projection is a pure function of the document: every replica with the same heads gets the same
//! rows.

use std::collections::HashMap;

use automerge::{AutoCommit, ObjId, ROOT, ReadDoc, ScalarValue};
use serde::{Deserialize, Serialize};

use super::schema::{Container, field, key_author};
use super::week::{scalar, synthesis};

/// Common to every entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    pub key: String,
    pub author: String,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub retracted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionRow {
    pub meta: EntryMeta,
    /// "practice", "capstone" or "reflection".
    pub kind: String,
    pub title: String,
    pub body: String,
    pub prompt_id: Option<String>,
    /// JSON list of attachment references (never the attachment itself).
    pub attachments: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackRow {
    pub meta: EntryMeta,
    pub submission: String,
    pub body: String,
    pub suggestion: Option<String>,
    /// JSON list of addressed rubric criteria (indices into the prompt's rubric).
    pub criteria: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyRow {
    pub meta: EntryMeta,
    pub feedback: String,
    /// The reply this one answers; `None` for a reply to the feedback itself.
    pub parent: Option<String>,
    pub body: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RatingRow {
    pub meta: EntryMeta,
    pub feedback: String,
    pub score: i64,
    /// Only a rating by the author of the submission the feedback is on counts; anything else
    /// (including a rating whose feedback has not arrived yet) is kept but not counted.
    pub counted: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceRow {
    pub meta: EntryMeta,
    pub member: String,
    pub present: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgendaRow {
    pub meta: EntryMeta,
    pub submission: String,
    pub position: i64,
    pub note: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekRows {
    pub submissions: Vec<SubmissionRow>,
    pub feedback: Vec<FeedbackRow>,
    pub replies: Vec<ReplyRow>,
    pub ratings: Vec<RatingRow>,
    pub attendance: Vec<AttendanceRow>,
    pub agenda: Vec<AgendaRow>,
    pub synthesis: String,
}

struct Reader<'a> {
    am: &'a AutoCommit,
}

impl Reader<'_> {
    /// `(key, entry object)` of every well-formed entry in a container, in key order.
    fn entries(&self, container: Container) -> Vec<(String, ObjId)> {
        let Ok(Some((_, parent))) = self.am.get(ROOT, container.name()) else {
            return Vec::new();
        };
        let keys: Vec<String> = self.am.map_range(&parent, ..).map(|item| item.key.to_string()).collect();
        keys.into_iter()
            .filter(|key| key_author(key).is_some())
            .filter_map(|key| match self.am.get(&parent, key.as_str()) {
                Ok(Some((value, id))) if value.is_object() => Some((key, id)),
                _ => None,
            })
            .collect()
    }

    fn text(&self, entry: &ObjId, name: &str) -> Option<String> {
        scalar(self.am, entry, name).and_then(|v| v.as_str().map(str::to_owned))
    }

    fn int(&self, entry: &ObjId, name: &str) -> Option<i64> {
        match scalar(self.am, entry, name)? {
            ScalarValue::Int(n) | ScalarValue::Timestamp(n) => Some(n),
            ScalarValue::Uint(n) => i64::try_from(n).ok(),
            _ => None,
        }
    }

    fn flag(&self, entry: &ObjId, name: &str) -> bool {
        matches!(scalar(self.am, entry, name), Some(ScalarValue::Boolean(true)))
    }

    fn meta(&self, key: &str, entry: &ObjId) -> EntryMeta {
        EntryMeta {
            key: key.to_owned(),
            author: key_author(key).unwrap_or_default().to_owned(),
            created_at: self.int(entry, field::CREATED_AT).unwrap_or(0),
            edited_at: self.int(entry, field::EDITED_AT),
            retracted: self.flag(entry, field::RETRACTED),
        }
    }

    fn optional_text(&self, entry: &ObjId, name: &str) -> Option<String> {
        self.text(entry, name).filter(|t| !t.is_empty())
    }
}

pub fn project_week(am: &AutoCommit) -> WeekRows {
    let r = Reader { am };
    let submissions: Vec<SubmissionRow> = r
        .entries(Container::Submissions)
        .into_iter()
        .map(|(key, e)| SubmissionRow {
            meta: r.meta(&key, &e),
            kind: r.text(&e, field::KIND).unwrap_or_else(|| "practice".into()),
            title: r.text(&e, field::TITLE).unwrap_or_default(),
            body: r.text(&e, field::BODY).unwrap_or_default(),
            prompt_id: r.optional_text(&e, field::PROMPT_ID),
            attachments: r.text(&e, field::ATTACHMENTS).unwrap_or_else(|| "[]".into()),
        })
        .collect();
    let feedback: Vec<FeedbackRow> = r
        .entries(Container::Feedback)
        .into_iter()
        .map(|(key, e)| FeedbackRow {
            meta: r.meta(&key, &e),
            submission: r.text(&e, field::SUBMISSION).unwrap_or_default(),
            body: r.text(&e, field::BODY).unwrap_or_default(),
            suggestion: r.optional_text(&e, field::SUGGESTION),
            criteria: r.text(&e, field::CRITERIA).unwrap_or_else(|| "[]".into()),
        })
        .collect();
    let replies = r
        .entries(Container::Replies)
        .into_iter()
        .map(|(key, e)| ReplyRow {
            meta: r.meta(&key, &e),
            feedback: r.text(&e, field::FEEDBACK).unwrap_or_default(),
            parent: r.optional_text(&e, field::PARENT),
            body: r.text(&e, field::BODY).unwrap_or_default(),
        })
        .collect();

    let submission_author: HashMap<&str, &str> =
        submissions.iter().map(|s| (s.meta.key.as_str(), s.meta.author.as_str())).collect();
    let feedback_submission: HashMap<&str, &str> =
        feedback.iter().map(|f| (f.meta.key.as_str(), f.submission.as_str())).collect();
    let ratings = r
        .entries(Container::Ratings)
        .into_iter()
        .map(|(key, e)| {
            let meta = r.meta(&key, &e);
            let on = r.text(&e, field::FEEDBACK).unwrap_or_default();
            let score = r.int(&e, field::SCORE).unwrap_or(0);
            let recipient = feedback_submission.get(on.as_str()).and_then(|s| submission_author.get(s));
            let counted = recipient == Some(&meta.author.as_str()) && (1..=5).contains(&score);
            RatingRow { meta, feedback: on, score, counted }
        })
        .collect();
    let attendance = r
        .entries(Container::Attendance)
        .into_iter()
        .map(|(key, e)| AttendanceRow {
            meta: r.meta(&key, &e),
            member: r.text(&e, field::MEMBER).unwrap_or_default(),
            present: r.flag(&e, field::PRESENT),
        })
        .collect();
    let agenda = r
        .entries(Container::Agenda)
        .into_iter()
        .map(|(key, e)| AgendaRow {
            meta: r.meta(&key, &e),
            submission: r.text(&e, field::SUBMISSION).unwrap_or_default(),
            position: r.int(&e, field::POSITION).unwrap_or(0),
            note: r.text(&e, field::NOTE).unwrap_or_default(),
        })
        .collect();
    WeekRows { submissions, feedback, replies, ratings, attendance, agenda, synthesis: synthesis(am) }
}
