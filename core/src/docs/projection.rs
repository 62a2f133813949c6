//! Reading documents into plain rows. The UI and metrics read these rows (stored in SQLite by
//! `store::cohort`), never the documents, so a cold start never waits for a document to load.
//! Projection is a pure function of the document: every replica with the same heads gets the same
//! rows.

use std::collections::HashMap;

use automerge::{AutoCommit, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value, ValueRef};
use serde::{Deserialize, Serialize};

use super::schema::{Container, field, key_author};
use super::week::synthesis;

/// Common to every entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryMeta {
    pub key: String,
    pub author: String,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub retracted: bool,
    /// Why a facilitator hid it (shown to its author and the facilitators only; see
    /// [`super::moderated`]). Never set in the stored projection.
    #[serde(default)]
    pub hidden: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionRow {
    pub meta: EntryMeta,
    /// "practice", "capstone" or "reflection".
    pub kind: String,
    pub title: String,
    pub body: String,
    pub prompt_id: Option<String>,
    /// Attachment references (links, file ids; never the attachment itself).
    pub attachments: Vec<String>,
    /// The practice log this submission shares (a practice shared by its author).
    pub practice_log: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeedbackRow {
    pub meta: EntryMeta,
    pub submission: String,
    pub body: String,
    pub suggestion: Option<String>,
    /// Indices of the rubric criteria the feedback addresses.
    pub criteria: Vec<u32>,
    /// A capstone review's score (1–5) per capstone rubric criterion, in order; empty for other
    /// feedback, and for a list a device could not have written (a score outside 1–5).
    #[serde(default)]
    pub scores: Vec<u32>,
    /// The facilitator who endorsed it as a model of good feedback.
    #[serde(default)]
    pub endorsed_by: Option<String>,
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

/// An entry's scalar fields, read in one pass over the entry map (far cheaper than one lookup
/// per field on a busy week).
struct Fields(HashMap<String, ScalarValue>);

impl Fields {
    fn text(&self, name: &str) -> Option<String> {
        self.0.get(name).and_then(|v| v.as_str().map(str::to_owned))
    }

    fn optional_text(&self, name: &str) -> Option<String> {
        self.text(name).filter(|t| !t.is_empty())
    }

    fn int(&self, name: &str) -> Option<i64> {
        match self.0.get(name)? {
            ScalarValue::Int(n) | ScalarValue::Timestamp(n) => Some(*n),
            ScalarValue::Uint(n) => i64::try_from(*n).ok(),
            _ => None,
        }
    }

    fn flag(&self, name: &str) -> bool {
        matches!(self.0.get(name), Some(ScalarValue::Boolean(true)))
    }

    fn meta(&self, key: &str) -> EntryMeta {
        EntryMeta {
            key: key.to_owned(),
            author: key_author(key).unwrap_or_default().to_owned(),
            created_at: self.int(field::CREATED_AT).unwrap_or(0),
            edited_at: self.int(field::EDITED_AT),
            retracted: self.flag(field::RETRACTED),
            hidden: None,
        }
    }
}

impl Reader<'_> {
    /// `(key, fields)` of every well-formed entry in a container, in key order.
    fn entries(&self, container: Container) -> Vec<(String, Fields)> {
        let Ok(Some((_, parent))) = self.am.get(ROOT, container.name()) else {
            return Vec::new();
        };
        let objects: Vec<(String, ObjId)> = self
            .am
            .map_range(&parent, ..)
            .filter(|item| key_author(&item.key).is_some())
            .filter(|item| matches!(item.value, ValueRef::Object(ObjType::Map)))
            .map(|item| (item.key.to_string(), item.id()))
            .collect();
        objects
            .into_iter()
            .map(|(key, entry)| {
                let fields = self
                    .am
                    .map_range(&entry, ..)
                    .filter_map(|f| match f.value.into_value() {
                        Value::Scalar(value) => Some((f.key.to_string(), value.into_owned())),
                        Value::Object(_) => None,
                    })
                    .collect();
                (key, Fields(fields))
            })
            .collect()
    }
}

pub fn project_week(am: &AutoCommit) -> WeekRows {
    let r = Reader { am };
    let submissions: Vec<SubmissionRow> = r
        .entries(Container::Submissions)
        .into_iter()
        .map(|(key, e)| SubmissionRow {
            meta: e.meta(&key),
            kind: e.text(field::KIND).unwrap_or_else(|| "practice".into()),
            title: e.text(field::TITLE).unwrap_or_default(),
            body: e.text(field::BODY).unwrap_or_default(),
            prompt_id: e.optional_text(field::PROMPT_ID),
            attachments: json_list(e.text(field::ATTACHMENTS)),
            practice_log: e.optional_text(field::PRACTICE_LOG),
        })
        .collect();
    let feedback: Vec<FeedbackRow> = r
        .entries(Container::Feedback)
        .into_iter()
        .map(|(key, e)| FeedbackRow {
            meta: e.meta(&key),
            submission: e.text(field::SUBMISSION).unwrap_or_default(),
            body: e.text(field::BODY).unwrap_or_default(),
            suggestion: e.optional_text(field::SUGGESTION),
            criteria: json_list(e.text(field::CRITERIA)),
            scores: Some(json_list::<u32>(e.text(field::SCORES)))
                .filter(|scores| scores.iter().all(|s| (1..=5).contains(s)))
                .unwrap_or_default(),
            endorsed_by: None,
        })
        .collect();
    let replies = r
        .entries(Container::Replies)
        .into_iter()
        .map(|(key, e)| ReplyRow {
            meta: e.meta(&key),
            feedback: e.text(field::FEEDBACK).unwrap_or_default(),
            parent: e.optional_text(field::PARENT),
            body: e.text(field::BODY).unwrap_or_default(),
        })
        .collect();

    let submission_author: HashMap<&str, &str> =
        submissions.iter().map(|s| (s.meta.key.as_str(), s.meta.author.as_str())).collect();
    let feedback_submission: HashMap<&str, &str> =
        feedback.iter().map(|f| (f.meta.key.as_str(), f.submission.as_str())).collect();
    let mut ratings: Vec<RatingRow> = r
        .entries(Container::Ratings)
        .into_iter()
        .map(|(key, e)| {
            let meta = e.meta(&key);
            let on = e.text(field::FEEDBACK).unwrap_or_default();
            let score = e.int(field::SCORE).unwrap_or(0);
            let recipient = feedback_submission.get(on.as_str()).and_then(|s| submission_author.get(s));
            let counted = recipient == Some(&meta.author.as_str()) && (1..=5).contains(&score);
            RatingRow { meta, feedback: on, score, counted }
        })
        .collect();
    // One rating counts per author and feedback, the newest; repeats are kept but not counted.
    let mut newest: HashMap<(String, String), (i64, String)> = HashMap::new();
    for rating in ratings.iter().filter(|r| r.counted) {
        let stamp = (rating.meta.edited_at.unwrap_or(rating.meta.created_at), rating.meta.key.clone());
        let slot = newest.entry((rating.meta.author.clone(), rating.feedback.clone())).or_insert_with(|| stamp.clone());
        if stamp > *slot {
            *slot = stamp;
        }
    }
    for rating in &mut ratings {
        let current = newest.get(&(rating.meta.author.clone(), rating.feedback.clone()));
        rating.counted = rating.counted && current.is_some_and(|(_, key)| *key == rating.meta.key);
    }
    let attendance = r
        .entries(Container::Attendance)
        .into_iter()
        .map(|(key, e)| AttendanceRow {
            meta: e.meta(&key),
            member: e.text(field::MEMBER).unwrap_or_default(),
            present: e.flag(field::PRESENT),
        })
        .collect();
    let agenda = r
        .entries(Container::Agenda)
        .into_iter()
        .map(|(key, e)| AgendaRow {
            meta: e.meta(&key),
            submission: e.text(field::SUBMISSION).unwrap_or_default(),
            position: e.int(field::POSITION).unwrap_or(0),
            note: e.text(field::NOTE).unwrap_or_default(),
        })
        .collect();
    WeekRows { submissions, feedback, replies, ratings, attendance, agenda, synthesis: synthesis(am) }
}

/// A list the document keeps as a JSON string; one a device could not have written reads as empty.
fn json_list<T: serde::de::DeserializeOwned>(text: Option<String>) -> Vec<T> {
    text.and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default()
}
