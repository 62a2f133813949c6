//! The program blueprint: how a 90-day program is laid out in days, weeks and phases.
//!
//! Program day 1 is the start date. Days 1..=orientation_days are week 0 (orientation); then come
//! `weeks` weeks of 7 days. With the defaults (6 orientation days, 12 weeks) the program is exactly
//! 90 days: weeks 1–4 practice + weekly critique, 5–8 role rotation, 9–12 consolidation + capstone.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::critique_week::CritiqueWeek;
use super::roster::CohortSize;
use super::time::{DayStart, local_day, resolve_wall_clock};

/// The longest program: a year of weeks.
pub const MAX_WEEKS: u32 = 52;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blueprint {
    /// Program day 1, a calendar date in the cohort's zone.
    pub start_date: NaiveDate,
    pub cohort_time_zone: Tz,
    pub orientation_days: u32,
    pub weeks: u32,
    /// Last week of the practice + critique phase (default 4).
    pub last_practice_week: u32,
    /// Last week of the role-rotation phase (default 8); consolidation runs from the week after.
    pub last_rotation_week: u32,
    pub practice_minutes: MinutesRange,
    pub critique: CritiqueSchedule,
    /// How long after a week's critique starts its feedback threads stay open (late entries are
    /// kept and flagged, never dropped).
    #[serde(default = "default_feedback_window_hours")]
    pub feedback_window_hours: u32,
    #[serde(default)]
    pub cohort_size: CohortSize,
    /// Weeks whose critique a facilitator changed (moved, a meeting link, a member leading), as
    /// the cohort document holds them: the program's blueprint has none, a cohort's its own.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub critique_weeks: BTreeMap<u32, CritiqueWeek>,
    /// A control arm's cohort: the same prompts and practice loop, alone — no critiques (and
    /// no peers, roles or feedback). Set for a cohort, never in a program's blueprint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub control_arm: bool,
}

fn default_feedback_window_hours() -> u32 {
    48
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct MinutesRange {
    pub min: u32,
    pub max: u32,
}

/// The weekly cohort critique: a wall-clock time in the cohort's zone, held once in every program
/// week from week 1 on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CritiqueSchedule {
    pub weekday: Weekday,
    pub time: NaiveTime,
    pub minutes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Phase {
    BeforeStart,
    Orientation,
    Practice,
    RoleRotation,
    Consolidation,
    Finished,
}

/// Where a local date falls in the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramPosition {
    pub date: NaiveDate,
    /// 1-based; ≤ 0 before the start, > total days after the end.
    pub program_day: i64,
    /// Program week (0 = orientation); `None` outside the program.
    pub week: Option<u32>,
    /// Day within the week, 1-based; `None` outside the program.
    pub day_of_week: Option<u32>,
    pub phase: Phase,
}

impl Blueprint {
    /// The default 90-day blueprint starting on `start_date`: critique on Thursdays at 17:00 for
    /// 30 minutes, practices of 10–15 minutes.
    pub fn default_90_days(start_date: NaiveDate, cohort_time_zone: Tz) -> Self {
        Self {
            start_date,
            cohort_time_zone,
            orientation_days: 6,
            weeks: 12,
            last_practice_week: 4,
            last_rotation_week: 8,
            practice_minutes: MinutesRange { min: 10, max: 15 },
            critique: CritiqueSchedule {
                weekday: Weekday::Thu,
                time: NaiveTime::from_hms_opt(17, 0, 0).unwrap_or_default(),
                minutes: 30,
            },
            feedback_window_hours: default_feedback_window_hours(),
            cohort_size: CohortSize::default(),
            critique_weeks: BTreeMap::new(),
            control_arm: false,
        }
    }

    pub fn validate(&self) -> Result<(), DomainError> {
        if !(1..=MAX_WEEKS).contains(&self.weeks) {
            return Err(DomainError::invalid("weeks", format!("{} is outside 1..={MAX_WEEKS}", self.weeks)));
        }
        // Orientation is week 0, and a week holds at most 7 days (prompts are placed on days 1..=7).
        if self.orientation_days > 7 {
            return Err(DomainError::invalid(
                "orientation_days",
                format!("{} is more than one week", self.orientation_days),
            ));
        }
        if !(1..=self.weeks).contains(&self.last_practice_week) {
            return Err(DomainError::invalid(
                "last_practice_week",
                format!("{} must be within weeks 1..={}", self.last_practice_week, self.weeks),
            ));
        }
        if !(self.last_practice_week..=self.weeks).contains(&self.last_rotation_week) {
            return Err(DomainError::invalid(
                "last_rotation_week",
                format!(
                    "{} must be between the last practice week ({}) and the last week ({})",
                    self.last_rotation_week, self.last_practice_week, self.weeks
                ),
            ));
        }
        let MinutesRange { min, max } = self.practice_minutes;
        if min == 0 || min > max || max > 60 {
            return Err(DomainError::invalid(
                "practice_minutes",
                format!("{min}–{max} must satisfy 1 ≤ min ≤ max ≤ 60"),
            ));
        }
        if !(1..=24 * 14).contains(&self.feedback_window_hours) {
            return Err(DomainError::invalid(
                "feedback_window_hours",
                format!("{} is outside 1..=336 (two weeks)", self.feedback_window_hours),
            ));
        }
        self.cohort_size.validate()?;
        if !(10..=180).contains(&self.critique.minutes) {
            return Err(DomainError::invalid(
                "critique.minutes",
                format!("{} is outside 10..=180", self.critique.minutes),
            ));
        }
        Ok(())
    }

    pub fn total_days(&self) -> u32 {
        self.orientation_days + 7 * self.weeks
    }

    /// The calendar date of a program day (1-based).
    pub fn date_of_day(&self, program_day: u32) -> NaiveDate {
        self.start_date + Days::new(u64::from(program_day.saturating_sub(1)))
    }

    pub fn end_date(&self) -> NaiveDate {
        self.date_of_day(self.total_days())
    }

    /// The first program day of a week (week 0 = orientation).
    pub fn first_day_of_week(&self, week: u32) -> u32 {
        if week == 0 { 1 } else { self.orientation_days + 7 * (week - 1) + 1 }
    }

    pub fn days_in_week(&self, week: u32) -> u32 {
        if week == 0 { self.orientation_days } else { 7 }
    }

    pub fn phase_of_week(&self, week: u32) -> Phase {
        match week {
            0 => Phase::Orientation,
            w if w <= self.last_practice_week => Phase::Practice,
            w if w <= self.last_rotation_week => Phase::RoleRotation,
            w if w <= self.weeks => Phase::Consolidation,
            _ => Phase::Finished,
        }
    }

    /// Where a learner-local date falls in the program.
    pub fn position_on(&self, date: NaiveDate) -> ProgramPosition {
        let program_day = (date - self.start_date).num_days() + 1;
        let (week, day_of_week, phase) = if program_day < 1 {
            (None, None, Phase::BeforeStart)
        } else if program_day > i64::from(self.total_days()) {
            (None, None, Phase::Finished)
        } else if program_day <= i64::from(self.orientation_days) {
            (Some(0), Some(program_day as u32), Phase::Orientation)
        } else {
            let after_orientation = program_day as u32 - self.orientation_days - 1;
            let week = after_orientation / 7 + 1;
            (Some(week), Some(after_orientation % 7 + 1), self.phase_of_week(week))
        };
        ProgramPosition { date, program_day, week, day_of_week, phase }
    }

    /// Where an instant falls in the program for a learner in `zone` with their day-start offset.
    pub fn position_at(&self, instant: DateTime<Utc>, zone: Tz, day_start: DayStart) -> ProgramPosition {
        self.position_on(local_day(instant, zone, day_start))
    }

    /// The local start of the weekly critique in `week` (1..=weeks) as the program schedules it:
    /// the day of that week falling on the critique weekday (every 7-day week holds each weekday
    /// exactly once), at the critique time.
    pub fn regular_critique_start(&self, week: u32) -> Option<NaiveDateTime> {
        if week == 0 || week > self.weeks || self.control_arm {
            return None;
        }
        let first = self.date_of_day(self.first_day_of_week(week));
        let ahead = (7 + self.critique.weekday.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
        Some(NaiveDateTime::new(first + Days::new(u64::from(ahead)), self.critique.time))
    }

    /// The local start of `week`'s critique in the cohort's zone: where a facilitator moved it,
    /// or its regular slot.
    pub fn critique_local_start(&self, week: u32) -> Option<NaiveDateTime> {
        let regular = self.regular_critique_start(week)?;
        Some(self.critique_weeks.get(&week).and_then(|w| w.moved_to).unwrap_or(regular))
    }

    /// The date of `week`'s critique (moved or regular).
    pub fn critique_date(&self, week: u32) -> Option<NaiveDate> {
        self.critique_local_start(week).map(|start| start.date())
    }

    /// When the feedback threads of `week` close: the critique start plus the window. Week 0 has
    /// no critique and its threads never close.
    pub fn feedback_closes_at(&self, week: u32) -> Option<DateTime<Utc>> {
        // Wall-clock hours in the cohort's zone: 48 h after a 17:00 critique is 17:00 two days
        // later, also across a DST change.
        let close = self.critique_local_start(week)? + chrono::Duration::hours(i64::from(self.feedback_window_hours));
        Some(resolve_wall_clock(close.date(), close.time(), self.cohort_time_zone))
    }

    /// The start instant of every weekly critique, in week order (moved ones where they moved).
    pub fn critique_starts(&self) -> impl Iterator<Item = (u32, DateTime<Utc>)> + '_ {
        (1..=self.weeks).filter_map(move |week| {
            let start = self.critique_local_start(week)?;
            Some((week, resolve_wall_clock(start.date(), start.time(), self.cohort_time_zone)))
        })
    }

    /// The meeting link of `week`'s critique, if a facilitator set one.
    pub fn critique_link(&self, week: u32) -> Option<&str> {
        self.critique_weeks.get(&week).and_then(|w| w.link.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn blueprint() -> Blueprint {
        Blueprint::default_90_days(date(2026, 1, 5), chrono_tz::Europe::Berlin)
    }

    #[test]
    fn default_program_is_ninety_days_in_thirteen_weeks() {
        let b = blueprint();
        b.validate().unwrap();
        assert_eq!(b.total_days(), 90);
        assert_eq!(b.end_date(), date(2026, 4, 4));
        let first = b.position_on(date(2026, 1, 5));
        assert_eq!(
            (first.program_day, first.week, first.day_of_week, first.phase),
            (1, Some(0), Some(1), Phase::Orientation)
        );
        let week1 = b.position_on(date(2026, 1, 11));
        assert_eq!(
            (week1.program_day, week1.week, week1.day_of_week, week1.phase),
            (7, Some(1), Some(1), Phase::Practice)
        );
        assert_eq!(b.position_on(date(2026, 2, 8)).phase, Phase::RoleRotation); // day 35 = week 5 day 1
        assert_eq!(b.position_on(date(2026, 3, 8)).phase, Phase::Consolidation); // day 63 = week 9 day 1
        let last = b.position_on(date(2026, 4, 4));
        assert_eq!((last.program_day, last.week, last.day_of_week), (90, Some(12), Some(7)));
        assert_eq!(b.position_on(date(2026, 4, 5)).phase, Phase::Finished);
        assert_eq!(b.position_on(date(2026, 1, 4)).phase, Phase::BeforeStart);
    }

    #[test]
    fn phase_boundaries_are_configurable() {
        let mut b = blueprint();
        b.last_practice_week = 2;
        b.last_rotation_week = 10;
        b.validate().unwrap();
        assert_eq!(b.phase_of_week(3), Phase::RoleRotation);
        assert_eq!(b.phase_of_week(11), Phase::Consolidation);
        b.last_rotation_week = 1;
        assert!(b.validate().unwrap_err().to_string().contains("last_rotation_week"));
    }

    #[test]
    fn critique_falls_on_its_weekday_in_every_week() {
        let b = blueprint();
        let starts: Vec<_> = b.critique_starts().collect();
        assert_eq!(starts.len(), 12);
        for (week, at) in starts {
            let local = at.with_timezone(&b.cohort_time_zone);
            assert_eq!(local.weekday(), Weekday::Thu);
            assert_eq!(local.time(), NaiveTime::from_hms_opt(17, 0, 0).unwrap(), "week {week}");
            assert_eq!(b.position_on(local.date_naive()).week, Some(week));
        }
    }

    #[test]
    fn the_feedback_window_closes_at_the_same_wall_clock_time_across_dst() {
        // Berlin changes to summer time on 29 March 2026; week 12 of a program starting
        // 2 January has its Thursday critique on 26 March.
        let b = Blueprint::default_90_days(date(2026, 1, 2), chrono_tz::Europe::Berlin);
        let week = (1..=12).find(|w| b.critique_date(*w) == Some(date(2026, 3, 26))).unwrap();
        b.feedback_closes_at(week).unwrap();
        let mut long = b.clone();
        long.feedback_window_hours = 72; // Thursday 17:00 + 72 h = Sunday 17:00, after the change
        let close = long.feedback_closes_at(week).unwrap().with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!(close.naive_local(), date(2026, 3, 29).and_hms_opt(17, 0, 0).unwrap());
    }

    #[test]
    fn position_follows_the_learner_zone() {
        let b = blueprint();
        // 23:30 UTC on 10 January is still the 10th in New York but the 11th in Tokyo.
        let at: DateTime<Utc> = "2026-01-10T23:30:00Z".parse().unwrap();
        let ny = b.position_at(at, chrono_tz::America::New_York, DayStart::default());
        let tokyo = b.position_at(at, chrono_tz::Asia::Tokyo, DayStart::default());
        assert_eq!(ny.program_day, 6);
        assert_eq!(tokyo.program_day, 7);
    }
}
