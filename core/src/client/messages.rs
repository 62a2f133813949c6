//! What facilitators said: announcements to the cohort (from its document) and private notes to
//! her (brought by the sync), as the screens and the notification plan read them.

use chrono::{DateTime, Utc};

use super::Client;
use crate::domain::notifications::Message;
use crate::error::Result;
use crate::store::facilitation;

/// A facilitator's message as a screen shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortMessage {
    /// Stable on every device: `"<author>/<id>"`.
    pub key: String,
    pub from_user: String,
    /// The facilitator's display name.
    pub from: String,
    pub body: String,
    pub created_at: DateTime<Utc>,
    /// A note to her alone (else an announcement to the cohort).
    pub private: bool,
}

impl Client {
    /// The selected cohort's announcements, newest first.
    pub fn announcements(&self) -> Result<Vec<CohortMessage>> {
        self.shown(self.messages()?.into_iter().filter(|m| !m.private).collect())
    }

    /// Her private notes from the selected cohort's facilitators, newest first.
    pub fn notes_to_me(&self) -> Result<Vec<CohortMessage>> {
        self.shown(self.messages()?.into_iter().filter(|m| m.private).collect())
    }

    /// Announcements and notes of the selected cohort, newest first (for the notification plan).
    pub(crate) fn messages(&self) -> Result<Vec<Message>> {
        let cohort = self.membership()?.cohort_id;
        let announcements = self.store().read(|conn| facilitation::announcements(conn, &cohort))?;
        let notes = self.store().read(|conn| facilitation::notes(conn, &cohort))?;
        let mut messages: Vec<Message> = announcements
            .into_iter()
            .map(|a| Message { key: a.key, author: a.author, created_at: a.created_at, body: a.body, private: false })
            .chain(notes.into_iter().map(|n| Message {
                key: crate::docs::schema::entry_key(&n.from, &n.id),
                author: n.from,
                created_at: n.created_at,
                body: n.body,
                private: true,
            }))
            .collect();
        messages.sort_by(|a, b| (b.created_at, &b.key).cmp(&(a.created_at, &a.key)));
        Ok(messages)
    }

    fn shown(&self, messages: Vec<Message>) -> Result<Vec<CohortMessage>> {
        let roster = self.roster()?;
        Ok(messages
            .into_iter()
            .map(|m| CohortMessage {
                from: roster.member(&m.author).map_or_else(|| "A facilitator".to_owned(), |f| f.display_name.clone()),
                from_user: m.author,
                body: m.body,
                created_at: DateTime::from_timestamp_millis(m.created_at).unwrap_or_default(),
                private: m.private,
                key: m.key,
            })
            .collect())
    }
}
