//! What a facilitator does through the server (a week's critique moved, given a link or a member
//! to lead it; an entry hidden or endorsed; an announcement; a private note; a learner who stopped
//! practising taken out of review assignments) and what members read of it.

use chrono::NaiveDateTime;
use microcohort_core::domain::critique_week::{CritiqueWeek, CritiqueWeekChange};
use microcohort_core::{CohortMessage, EntryRef};

use crate::client::{Client, on_runtime};
use crate::error::Result;
use crate::types::Timestamp;

/// A wall-clock time in the cohort's zone, ISO without a zone ("2026-03-12T18:30:00"; seconds
/// may be left out).
pub type LocalDateTime = NaiveDateTime;
uniffi::custom_type!(LocalDateTime, String, {
    remote,
    lower: |at| at.format("%Y-%m-%dT%H:%M:%S").to_string(),
    try_lift: |text| Ok(NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| NaiveDateTime::parse_from_str(&text, "%Y-%m-%dT%H:%M"))?),
});

#[uniffi::remote(Record)]
pub struct CritiqueWeek {
    /// Where the critique moved (cohort's wall clock); none keeps the weekly slot.
    pub moved_to: Option<LocalDateTime>,
    pub link: Option<String>,
    /// The member leading it instead of the facilitator.
    pub lead: Option<String>,
    /// Rises with every change.
    pub revision: u32,
}

/// What to change; a field left out stays as it is, an empty link or lead removes it.
#[uniffi::remote(Record)]
pub struct CritiqueWeekChange {
    pub week: u32,
    pub moved_to: Option<LocalDateTime>,
    pub link: Option<String>,
    pub lead: Option<String>,
}

#[uniffi::export]
impl Client {
    /// A facilitator changes a week's critique through the server, then syncs. A learner gets
    /// `FacilitatorOnly`; a time the clocks skip, a day outside the program, a lead outside the
    /// cohort or a link that is not a web address get `InvalidInput` naming the field.
    pub async fn change_critique_week(&self, change: CritiqueWeekChange) -> Result<CritiqueWeek> {
        let core = self.core.clone();
        on_runtime(move || core.change_critique_week(&change)).await
    }

    /// How a facilitator changed a week's critique, if they did (offline).
    pub async fn critique_week(&self, week: u32) -> Result<Option<CritiqueWeek>> {
        self.run(move |core| core.critique_week(week)).await
    }

    /// A facilitator hides a submission, feedback or reply on every device (its author sees it
    /// was hidden and why). `UnknownEntry` for an entry the week does not hold.
    pub async fn hide_entry(&self, entry: EntryRef, reason: String) -> Result<()> {
        let core = self.core.clone();
        on_runtime(move || core.hide_entry(&entry, &reason)).await
    }

    /// A facilitator shows a hidden entry again.
    pub async fn show_entry(&self, entry: EntryRef) -> Result<()> {
        let core = self.core.clone();
        on_runtime(move || core.show_entry(&entry)).await
    }

    /// A facilitator endorses a piece of feedback as a model of good feedback.
    pub async fn endorse_feedback(&self, feedback: EntryRef) -> Result<()> {
        let core = self.core.clone();
        on_runtime(move || core.endorse_feedback(&feedback)).await
    }

    /// A facilitator announces something to the cohort; returns its key.
    pub async fn announce(&self, body: String) -> Result<String> {
        let core = self.core.clone();
        on_runtime(move || core.announce(&body)).await
    }

    /// A facilitator's private note to one member (her user id): only her devices receive it.
    pub async fn send_note(&self, member: String, body: String) -> Result<()> {
        let core = self.core.clone();
        on_runtime(move || core.send_note(&member, &body)).await
    }

    /// A facilitator marks a learner (her user id) as having stopped practising: her review
    /// assignments go to the others from today, on every device.
    pub async fn pause_member(&self, member: String) -> Result<()> {
        let core = self.core.clone();
        on_runtime(move || core.pause_member(&member)).await
    }

    /// A facilitator marks a paused learner back.
    pub async fn resume_member(&self, member: String) -> Result<()> {
        let core = self.core.clone();
        on_runtime(move || core.resume_member(&member)).await
    }

    /// The cohort's announcements, newest first (offline).
    pub async fn announcements(&self) -> Result<Vec<CohortMessage>> {
        self.run(move |core| core.announcements()).await
    }

    /// Her private notes from the cohort's facilitators, newest first (offline).
    pub async fn notes_to_me(&self) -> Result<Vec<CohortMessage>> {
        self.run(move |core| core.notes_to_me()).await
    }
}

/// A facilitator's announcement or private note.
#[uniffi::remote(Record)]
pub struct CohortMessage {
    pub key: String,
    pub from_user: String,
    pub from: String,
    pub body: String,
    pub created_at: Timestamp,
    /// A note to her alone (else an announcement to the cohort).
    pub private: bool,
}
