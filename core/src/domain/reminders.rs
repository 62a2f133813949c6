//! The reminder plan: the local notifications the app should schedule now. The app replaces all
//! pending notifications with this plan whenever it opens or the learner logs a practice, so the
//! plan never has to be "updated" in place.
//!
//! Rules:
//! - one practice reminder per learner-local day at the learner's wall-clock practice time (07:30
//!   stays 07:30 across DST), none for a day already practised, none outside the program;
//! - one reminder before each weekly critique (the critique's wall clock is the cohort's zone);
//! - a reminder in quiet hours moves to the end of the quiet hours — a practice reminder only if
//!   that is still the same day, a critique reminder only if that is still before the critique;
//! - at most `weekly_budget` reminders per program week, critique reminders first;
//! - at most [`MAX_PENDING`] in all (iOS keeps 64 pending local notifications).

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Duration, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::blueprint::Blueprint;
use super::time::{DayStart, local_day, resolve_wall_clock};

/// iOS keeps at most 64 pending local notifications per app.
pub const MAX_PENDING: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// Local wall-clock start, inclusive.
    pub start: NaiveTime,
    /// Local wall-clock end, exclusive; earlier than `start` when the quiet hours span midnight.
    pub end: NaiveTime,
}

impl QuietHours {
    pub(crate) fn contains(&self, time: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }

    /// The instant quiet hours end, for an instant inside them.
    pub(crate) fn end_after(&self, at: DateTime<Utc>, zone: Tz) -> DateTime<Utc> {
        let local = at.with_timezone(&zone).naive_local();
        let date = if self.start > self.end && local.time() >= self.start {
            local.date().succ_opt().unwrap_or(local.date())
        } else {
            local.date()
        };
        resolve_wall_clock(date, self.end, zone)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReminderPreferences {
    pub practice_time: NaiveTime,
    pub practice_reminders: bool,
    pub critique_reminders: bool,
    /// How long before the critique its reminder fires.
    pub critique_lead_minutes: u32,
    pub quiet_hours: Option<QuietHours>,
    /// At most this many reminders per program week.
    pub weekly_budget: u32,
}

impl Default for ReminderPreferences {
    fn default() -> Self {
        Self {
            practice_time: NaiveTime::from_hms_opt(7, 30, 0).unwrap_or_default(),
            practice_reminders: true,
            critique_reminders: true,
            critique_lead_minutes: 60,
            quiet_hours: Some(QuietHours {
                start: NaiveTime::from_hms_opt(22, 0, 0).unwrap_or_default(),
                end: NaiveTime::from_hms_opt(7, 0, 0).unwrap_or_default(),
            }),
            weekly_budget: 8,
        }
    }
}

impl ReminderPreferences {
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.critique_lead_minutes > 24 * 60 {
            return Err(DomainError::invalid("critique_lead_minutes", "must be at most 24 hours"));
        }
        if self.weekly_budget > 7 * 4 {
            return Err(DomainError::invalid(
                "weekly_budget",
                format!("{} is more than 28 a week", self.weekly_budget),
            ));
        }
        if let Some(quiet) = self.quiet_hours
            && quiet.start == quiet.end
        {
            return Err(DomainError::invalid("quiet_hours", "start and end are the same time"));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReminderKind {
    Critique,
    Practice,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedReminder {
    /// Stable per day or week, so the app can replace a pending notification with the same id.
    pub id: String,
    pub kind: ReminderKind,
    pub fire_at: DateTime<Utc>,
    /// The learner-local day the reminder belongs to.
    pub local_date: NaiveDate,
    /// English defaults; an app in another language words it from `details`.
    pub title: String,
    pub body: String,
    pub details: ReminderDetails,
}

/// What a reminder is about, with what an app needs to word it in its own language.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "about", rename_all = "snake_case")]
pub enum ReminderDetails {
    /// The day's practice: its prompt and stated length.
    Practice { prompt_title: String, minutes: u32 },
    /// A weekly critique: which week, when it starts, how long it lasts, where the cohort meets
    /// (when a facilitator set a link).
    Critique { week: u32, starts_at: DateTime<Utc>, minutes: u32, link: Option<String> },
}

/// Everything the plan depends on; the caller reads it from the store.
pub struct ReminderContext<'a> {
    pub now: DateTime<Utc>,
    pub zone: Tz,
    pub day_start: DayStart,
    pub blueprint: &'a Blueprint,
    pub preferences: &'a ReminderPreferences,
    /// Learner-local days that already have a completed practice.
    pub practised: &'a HashSet<NaiveDate>,
    /// Today's prompt title and minutes for a learner-local day, if any.
    pub prompt_on: &'a dyn Fn(NaiveDate) -> Option<(String, u32)>,
}

/// Plans the reminders for the learner-local days `today..today + days`.
pub fn plan_reminders(ctx: &ReminderContext<'_>, days: u32) -> Vec<PlannedReminder> {
    apply_budget(candidate_reminders(ctx, days), ctx)
}

/// Every reminder the preferences ask for in those days, before the weekly budget and the
/// pending limit (the notification plan budgets them together with the cohort's notifications).
pub(crate) fn candidate_reminders(ctx: &ReminderContext<'_>, days: u32) -> Vec<PlannedReminder> {
    let today = local_day(ctx.now, ctx.zone, ctx.day_start);
    let last = today + Duration::days(i64::from(days.max(1)) - 1);
    let in_program = |date: NaiveDate| ctx.blueprint.start_date <= date && date <= ctx.blueprint.end_date();
    let wanted = |date: NaiveDate| today <= date && date <= last && in_program(date);
    let mut planned = Vec::new();

    if ctx.preferences.practice_reminders {
        // The practice time's calendar date and its learner day differ when the day-start offset
        // is later than the practice time, so look one calendar day either side.
        let mut date = today.pred_opt().unwrap_or(today);
        while date <= last.succ_opt().unwrap_or(last) {
            if let Some(reminder) = practice_reminder(ctx, date)
                && wanted(reminder.local_date)
            {
                planned.push(reminder);
            }
            date = date.succ_opt().unwrap_or(NaiveDate::MAX);
        }
    }
    if ctx.preferences.critique_reminders {
        for (week, starts_at) in ctx.blueprint.critique_starts() {
            if let Some(reminder) = critique_reminder(ctx, week, starts_at)
                && wanted(reminder.local_date)
            {
                planned.push(reminder);
            }
        }
    }
    planned
}

fn practice_reminder(ctx: &ReminderContext<'_>, date: NaiveDate) -> Option<PlannedReminder> {
    let mut fire_at = resolve_wall_clock(date, ctx.preferences.practice_time, ctx.zone);
    let local_date = local_day(fire_at, ctx.zone, ctx.day_start);
    if let Some(quiet) = ctx.preferences.quiet_hours
        && quiet.contains(fire_at.with_timezone(&ctx.zone).time())
    {
        fire_at = quiet.end_after(fire_at, ctx.zone);
        if local_day(fire_at, ctx.zone, ctx.day_start) != local_date {
            return None;
        }
    }
    if fire_at <= ctx.now || ctx.practised.contains(&local_date) {
        return None;
    }
    let (prompt_title, minutes) = (ctx.prompt_on)(local_date)?;
    Some(PlannedReminder {
        id: format!("practice-{local_date}"),
        kind: ReminderKind::Practice,
        fire_at,
        local_date,
        title: "Time for today's practice".to_owned(),
        body: format!("{prompt_title} — {minutes} minutes"),
        details: ReminderDetails::Practice { prompt_title, minutes },
    })
}

fn critique_reminder(ctx: &ReminderContext<'_>, week: u32, starts_at: DateTime<Utc>) -> Option<PlannedReminder> {
    let lead = i64::from(ctx.preferences.critique_lead_minutes);
    let mut fire_at = starts_at - Duration::minutes(lead);
    if let Some(quiet) = ctx.preferences.quiet_hours
        && quiet.contains(fire_at.with_timezone(&ctx.zone).time())
    {
        fire_at = quiet.end_after(fire_at, ctx.zone);
        if fire_at >= starts_at {
            return None;
        }
    }
    if fire_at <= ctx.now {
        return None;
    }
    let local_start = starts_at.with_timezone(&ctx.zone);
    Some(PlannedReminder {
        id: format!("critique-week-{week}"),
        kind: ReminderKind::Critique,
        fire_at,
        local_date: local_day(fire_at, ctx.zone, ctx.day_start),
        title: format!("Week {week} critique at {}", local_start.format("%H:%M")),
        body: format!(
            "Your cohort's {}-minute critique starts {} your time. Bring this week's practice.",
            ctx.blueprint.critique.minutes,
            local_start.format("%A %H:%M")
        ),
        details: ReminderDetails::Critique {
            week,
            starts_at,
            minutes: ctx.blueprint.critique.minutes,
            link: ctx.blueprint.critique_link(week).map(str::to_owned),
        },
    })
}

/// Keeps at most the weekly budget per program week (critique reminders first, then the earliest
/// practice reminders) and at most [`MAX_PENDING`] overall, in firing order.
fn apply_budget(mut planned: Vec<PlannedReminder>, ctx: &ReminderContext<'_>) -> Vec<PlannedReminder> {
    planned.sort_by_key(|reminder| (reminder.kind, reminder.fire_at));
    let mut used: BTreeMap<Option<u32>, u32> = BTreeMap::new();
    planned.retain(|reminder| {
        let week = ctx.blueprint.position_on(reminder.local_date).week;
        let count = used.entry(week).or_default();
        *count += 1;
        *count <= ctx.preferences.weekly_budget
    });
    planned.sort_by_key(|reminder| reminder.fire_at);
    planned.truncate(MAX_PENDING);
    planned
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Timelike, Weekday};

    fn date(m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, m, d).unwrap()
    }

    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    struct Fixture {
        blueprint: Blueprint,
        preferences: ReminderPreferences,
        practised: HashSet<NaiveDate>,
        zone: Tz,
        day_start: DayStart,
    }

    impl Fixture {
        fn new() -> Self {
            // Program starts Monday 2 March 2026 in Berlin; DST begins there on 29 March.
            let mut blueprint = Blueprint::default_90_days(date(3, 2), chrono_tz::Europe::Berlin);
            blueprint.critique.weekday = Weekday::Wed;
            Self {
                blueprint,
                preferences: ReminderPreferences { quiet_hours: None, ..Default::default() },
                practised: HashSet::new(),
                zone: chrono_tz::Europe::Berlin,
                day_start: DayStart::default(),
            }
        }

        fn plan(&self, now: &str, days: u32) -> Vec<PlannedReminder> {
            let prompt_on = |_: NaiveDate| Some(("Listen for the need".to_owned(), 12));
            let ctx = ReminderContext {
                now: now.parse().unwrap(),
                zone: self.zone,
                day_start: self.day_start,
                blueprint: &self.blueprint,
                preferences: &self.preferences,
                practised: &self.practised,
                prompt_on: &prompt_on,
            };
            plan_reminders(&ctx, days)
        }
    }

    fn practice_days(plan: &[PlannedReminder]) -> Vec<NaiveDate> {
        plan.iter().filter(|r| r.kind == ReminderKind::Practice).map(|r| r.local_date).collect()
    }

    #[test]
    fn practice_reminders_keep_their_wall_clock_across_dst() {
        let f = Fixture::new();
        let plan = f.plan("2026-03-27T12:00:00Z", 4);
        let practice: Vec<_> = plan.iter().filter(|r| r.kind == ReminderKind::Practice).collect();
        // The 27th's 07:30 has passed; the 28th, 29th (DST starts) and 30th remain.
        assert_eq!(practice_days(&plan), vec![date(3, 28), date(3, 29), date(3, 30)]);
        for r in &practice {
            assert_eq!(r.fire_at.with_timezone(&f.zone).time(), hm(7, 30));
        }
        assert_eq!(practice[0].fire_at.hour(), 6); // CET = UTC+1
        assert_eq!(practice[1].fire_at.hour(), 5); // CEST = UTC+2
    }

    #[test]
    fn every_reminder_carries_what_an_app_needs_to_word_it() {
        let f = Fixture::new();
        let plan = f.plan("2026-03-09T12:00:00Z", 7);
        let practice = plan.iter().find(|r| r.kind == ReminderKind::Practice).expect("a practice reminder");
        assert_eq!(
            practice.details,
            ReminderDetails::Practice { prompt_title: "Listen for the need".into(), minutes: 12 }
        );
        let critique = plan.iter().find(|r| r.kind == ReminderKind::Critique).expect("a critique reminder");
        let ReminderDetails::Critique { week, starts_at, minutes, .. } = critique.details else {
            panic!("critique details: {:?}", critique.details)
        };
        let expected = f.blueprint.critique_starts().find(|(w, _)| *w == week).expect("that week's critique").1;
        assert_eq!((starts_at, minutes), (expected, f.blueprint.critique.minutes));
        assert!(critique.fire_at < starts_at);
    }

    #[test]
    fn no_reminder_for_a_day_already_practised_or_outside_the_program() {
        let mut f = Fixture::new();
        f.practised.insert(date(3, 3));
        let plan = f.plan("2026-03-01T12:00:00Z", 4);
        // The 1st is before the start; the 3rd is done.
        assert_eq!(practice_days(&plan), vec![date(3, 2), date(3, 4)]);
        let end = f.blueprint.end_date();
        let late = f.plan(&format!("{}T00:00:00Z", end.pred_opt().unwrap()), 10);
        assert!(late.iter().all(|r| r.local_date <= end));
        assert_eq!(practice_days(&late), vec![end.pred_opt().unwrap(), end]);
    }

    #[test]
    fn quiet_hours_move_practice_to_their_end_the_same_day_or_drop_it() {
        let mut f = Fixture::new();
        f.preferences.practice_time = hm(6, 30);
        f.preferences.quiet_hours = Some(QuietHours { start: hm(22, 0), end: hm(7, 15) });
        let plan = f.plan("2026-03-09T12:00:00Z", 2);
        let practice: Vec<_> = plan.iter().filter(|r| r.kind == ReminderKind::Practice).collect();
        assert!(practice.iter().all(|r| r.fire_at.with_timezone(&f.zone).time() == hm(7, 15)));
        // Quiet hours reaching into the next day drop the reminder rather than move it there.
        f.preferences.practice_time = hm(23, 0);
        f.preferences.quiet_hours = Some(QuietHours { start: hm(22, 0), end: hm(7, 0) });
        assert!(practice_days(&f.plan("2026-03-09T12:00:00Z", 2)).is_empty());
    }

    #[test]
    fn critique_reminder_fires_before_the_critique() {
        let f = Fixture::new();
        // Week 1 = days 7..13 = 8..14 March; the Wednesday is the 11th at 17:00 Berlin.
        let plan = f.plan("2026-03-10T12:00:00Z", 3);
        let critique: Vec<_> = plan.iter().filter(|r| r.kind == ReminderKind::Critique).collect();
        assert_eq!(critique.len(), 1);
        assert_eq!(critique[0].id, "critique-week-1");
        assert_eq!(critique[0].fire_at.with_timezone(&f.zone).naive_local(), date(3, 11).and_time(hm(16, 0)));
    }

    #[test]
    fn weekly_budget_keeps_the_critique_and_the_earliest_practices() {
        let mut f = Fixture::new();
        f.preferences.weekly_budget = 3;
        // Week 1 is 8..=14 March.
        let plan = f.plan("2026-03-08T00:00:00Z", 7);
        assert_eq!(plan.len(), 3);
        assert!(plan.iter().any(|r| r.kind == ReminderKind::Critique));
        assert_eq!(practice_days(&plan), vec![date(3, 8), date(3, 9)]);
    }

    #[test]
    fn never_more_than_sixty_four_pending() {
        let mut f = Fixture::new();
        f.preferences.weekly_budget = 28;
        f.preferences.critique_lead_minutes = 0;
        let plan = f.plan("2026-03-01T00:00:00Z", 120);
        assert_eq!(plan.len(), MAX_PENDING);
        assert!(plan.windows(2).all(|w| w[0].fire_at <= w[1].fire_at));
    }

    #[test]
    fn preferences_are_validated() {
        let mut prefs = ReminderPreferences::default();
        prefs.validate().unwrap();
        prefs.quiet_hours = Some(QuietHours { start: hm(7, 0), end: hm(7, 0) });
        assert!(prefs.validate().unwrap_err().to_string().contains("quiet_hours"));
    }
}
