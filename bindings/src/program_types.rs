//! Records of the program screens: schedule, critiques, capstone brief, library filter.

use microcohort_core::ProgramSchedule as CoreSchedule;
use microcohort_core::domain::blueprint::Phase;
use microcohort_core::domain::prompt_pack::Capstone;
use microcohort_core::domain::schedule::{CritiqueSlot, LibraryFilter, WeekSchedule};

use crate::types::{LocalDate, Timestamp};

/// The program's calendar: every week from the orientation (week 0) to the last.
#[derive(uniffi::Record)]
pub struct ProgramSchedule {
    pub program_id: String,
    pub title: String,
    pub start_date: LocalDate,
    pub end_date: LocalDate,
    /// The IANA zone the critiques' wall-clock times are set in.
    pub cohort_time_zone: String,
    pub practice_minutes_min: u32,
    pub practice_minutes_max: u32,
    pub weeks: Vec<WeekSchedule>,
}

impl From<CoreSchedule> for ProgramSchedule {
    fn from(s: CoreSchedule) -> Self {
        Self {
            program_id: s.program_id,
            title: s.title,
            start_date: s.start_date,
            end_date: s.end_date,
            cohort_time_zone: s.cohort_time_zone.name().to_owned(),
            practice_minutes_min: s.practice_minutes_min,
            practice_minutes_max: s.practice_minutes_max,
            weeks: s.weeks,
        }
    }
}

#[uniffi::remote(Record)]
pub struct WeekSchedule {
    pub week: u32,
    pub phase: Phase,
    pub first_date: LocalDate,
    pub last_date: LocalDate,
    /// None in week 0, which has no critique.
    pub critique: Option<CritiqueSlot>,
    /// When the week's feedback threads close; none in week 0.
    pub feedback_closes_at: Option<Timestamp>,
}

#[uniffi::remote(Record)]
pub struct CritiqueSlot {
    pub week: u32,
    pub starts_at: Timestamp,
    pub minutes: u32,
}

/// The capstone's brief and the rubric its feedback is scored against.
#[uniffi::remote(Record)]
pub struct Capstone {
    pub title: String,
    pub body: String,
    pub rubric: Vec<String>,
}

/// What to list from the library; every part is optional.
#[uniffi::remote(Record)]
pub struct LibraryFilter {
    pub week: Option<u32>,
    /// A tag, in any case.
    pub tag: Option<String>,
    /// Words that must all appear in the title, the body or a tag (any case).
    pub text: Option<String>,
}
