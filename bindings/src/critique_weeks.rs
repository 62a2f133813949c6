//! A week's critique as a facilitator changed it: moved, a meeting link, a member leading.

use chrono::NaiveDateTime;
use microcohort_core::domain::critique_week::{CritiqueWeek, CritiqueWeekChange};

use crate::client::{Client, on_runtime};
use crate::error::Result;

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
}
