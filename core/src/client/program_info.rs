//! What the program screens read: the schedule, the next critique, the capstone brief and the
//! prompt library. All of it comes from the enrolled blueprint and prompt pack on the device.

use chrono::NaiveDate;
use chrono_tz::Tz;

use super::{Client, PromptView, prompt_view};
use crate::domain::blueprint::Blueprint;
use crate::domain::practice::log_days;
use crate::domain::prompt_pack::Capstone;
use crate::domain::schedule::{self, CritiqueSlot, LibraryFilter, WeekSchedule};
use crate::error::Result;
use crate::store::practice as logs;

/// The program's calendar.
#[derive(Debug, Clone, PartialEq)]
pub struct ProgramSchedule {
    pub program_id: String,
    pub title: String,
    pub start_date: NaiveDate,
    pub end_date: NaiveDate,
    /// The zone the critiques' wall-clock times are set in.
    pub cohort_time_zone: Tz,
    /// The daily practice's stated length.
    pub practice_minutes_min: u32,
    pub practice_minutes_max: u32,
    pub weeks: Vec<WeekSchedule>,
}

impl Client {
    pub fn schedule(&self) -> Result<ProgramSchedule> {
        let program = self.program()?;
        let b: &Blueprint = &program.enrollment.blueprint;
        Ok(ProgramSchedule {
            program_id: program.enrollment.program_id.clone(),
            title: program.enrollment.program_title.clone(),
            start_date: b.start_date,
            end_date: b.end_date(),
            cohort_time_zone: b.cohort_time_zone,
            practice_minutes_min: b.practice_minutes.min,
            practice_minutes_max: b.practice_minutes.max,
            weeks: schedule::weeks(b),
        })
    }

    /// The critique under way now, else the next one; none once the last has ended.
    pub fn next_critique(&self) -> Result<Option<CritiqueSlot>> {
        Ok(schedule::next_critique(&self.program()?.enrollment.blueprint, self.now()))
    }

    /// How a facilitator changed `week`'s critique (moved, a link, a member leading), if they did.
    pub fn critique_week(&self, week: u32) -> Result<Option<crate::domain::critique_week::CritiqueWeek>> {
        Ok(self.program()?.enrollment.blueprint.critique_weeks.get(&week).cloned())
    }

    /// The capstone's brief and rubric, when the program's pack has a capstone.
    pub fn capstone_brief(&self) -> Result<Option<Capstone>> {
        Ok(self.program()?.pack.capstone.clone())
    }

    /// The enrolled pack's prompts matching `filter`, in program order. `completed`: practised at
    /// least once so far in the program. Any of them can be practised with `start_practice`.
    pub fn library(&self, filter: &LibraryFilter) -> Result<Vec<PromptView>> {
        let program = self.program()?;
        let (from, to) = log_days(&program.enrollment.blueprint);
        let done = self.store().read(|conn| logs::completed_prompts(conn, &program.enrollment.program_id, from, to))?;
        Ok(schedule::library(&program.pack, filter).into_iter().map(|p| prompt_view(&program.pack, p, &done)).collect())
    }
}
