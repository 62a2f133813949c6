//! The user's pending intents: every local change to a cohort document is also recorded as what
//! the user meant ("add this feedback", "retract that reply"), in the same transaction. If the
//! server refuses a document's branch, the device drops the branch, refetches the server's copy
//! and replays the intents on top of it — the user's words are never lost. An intent that can no
//! longer be applied (a role changed meanwhile) is kept as a failed intent for the app to show.

use automerge::ScalarValue;
use serde::{Deserialize, Serialize};

use crate::docs::schema::Container;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Intent {
    AddEntry { week: u32, container: String, entry_id: String, fields: Vec<(String, IntentValue)> },
    SetFields { week: u32, container: String, key: String, fields: Vec<(String, IntentValue)> },
    Synthesis { week: u32, position: usize, delete: usize, insert: String },
    Attendance { week: u32, member: String, present: bool, at: i64 },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IntentValue {
    Text(String),
    Int(i64),
    Bool(bool),
}

impl Intent {
    pub fn week(&self) -> u32 {
        match self {
            Self::AddEntry { week, .. }
            | Self::SetFields { week, .. }
            | Self::Synthesis { week, .. }
            | Self::Attendance { week, .. } => *week,
        }
    }

    /// A short description for the user ("feedback in week 5").
    pub fn describe(&self) -> String {
        let what = match self {
            Self::AddEntry { container, .. } => format!("new {}", singular(container)),
            Self::SetFields { container, .. } => format!("change to a {}", singular(container)),
            Self::Synthesis { .. } => "synthesis edit".to_owned(),
            Self::Attendance { .. } => "attendance record".to_owned(),
        };
        format!("{what} in week {}", self.week())
    }
}

fn singular(container: &str) -> &str {
    match container {
        "submissions" => "submission",
        "replies" => "reply",
        "ratings" => "rating",
        "feedback" => "feedback",
        other => other,
    }
}

pub fn to_intent_fields(fields: &[(&str, ScalarValue)]) -> Vec<(String, IntentValue)> {
    fields
        .iter()
        .filter_map(|(name, value)| {
            let value = match value {
                ScalarValue::Str(s) => IntentValue::Text(s.to_string()),
                ScalarValue::Int(n) => IntentValue::Int(*n),
                ScalarValue::Boolean(b) => IntentValue::Bool(*b),
                _ => return None,
            };
            Some(((*name).to_owned(), value))
        })
        .collect()
}

pub fn to_scalar_fields(fields: &[(String, IntentValue)]) -> Vec<(&str, ScalarValue)> {
    fields
        .iter()
        .map(|(name, value)| {
            let scalar = match value {
                IntentValue::Text(s) => ScalarValue::from(s.as_str()),
                IntentValue::Int(n) => ScalarValue::Int(*n),
                IntentValue::Bool(b) => ScalarValue::Boolean(*b),
            };
            (name.as_str(), scalar)
        })
        .collect()
}

pub fn container(name: &str) -> Option<Container> {
    Container::from_name(name)
}
