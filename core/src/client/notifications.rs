//! The notification plan and the sync hint, read from the device's projections (see
//! `domain::notifications` for the rules). A device outside any cohort gets its practice and
//! critique reminders only.

use chrono::{DateTime, Days, Utc};

use super::{Client, with_reminder_context};
use crate::docs::news::{reviews_owed, week_news};
use crate::domain::DomainError;
use crate::domain::notifications::{
    Notification, NotificationContext, UnreadEntry, WeekActivity, is_cohort_kind, next_sync, plan_notifications, unread,
};
use crate::domain::roster::Roster;
use crate::domain::time::{local_day, resolve_wall_clock};
use crate::error::{Error, Result};
use crate::store::practice as logs;
use crate::store::{self, enrollment, notified};

impl Client {
    /// The local notifications to schedule now for the next `days` days: reminders and what
    /// happened in her cohort. Replace every pending notification with it after each sync, local
    /// change and time-zone change; a cohort notification keeps its time in later plans until it
    /// has fired, and is never handed out again after that.
    pub fn notification_plan(&self, days: u32) -> Result<Vec<Notification>> {
        if !(1..=super::MAX_REMINDER_DAYS).contains(&days) {
            let max = super::MAX_REMINDER_DAYS;
            return Err(DomainError::invalid("days", format!("{days} is outside 1..={max}")).into());
        }
        let plan = self.with_notification_context(days, |ctx| plan_notifications(ctx, days))?;
        let handed: Vec<(&str, DateTime<Utc>)> =
            plan.iter().filter(|n| is_cohort_kind(n.kind)).map(|n| (n.id.as_str(), n.fire_at)).collect();
        if !handed.is_empty() {
            let now = store::to_millis(self.now());
            self.store().write(|tx| notified::record(tx, &handed, now))?;
        }
        Ok(plan)
    }

    /// When the app should next wake up to sync in the background: before a feedback window
    /// closes, before a critique, else after a quiet period.
    pub fn next_sync_at(&self) -> Result<DateTime<Utc>> {
        self.with_notification_context(1, next_sync)
    }

    /// What happened in her cohort that concerns her and she has not seen on any of her devices
    /// (feedback on her work, replies to her, ratings of her feedback), newest first: the app's
    /// inbox and badge.
    pub fn unread(&self) -> Result<Vec<UnreadEntry>> {
        let membership = self.membership()?;
        let program = self.program()?;
        let profile = self.profile()?;
        let blueprint = &program.enrollment.blueprint;
        let current = blueprint.position_at(self.now(), profile.time_zone, profile.day_start).week;
        let last = current.unwrap_or(blueprint.weeks).min(blueprint.weeks);
        let mut weeks = Vec::new();
        for week in 0..=last {
            weeks.push((week, week_news(&membership.user_id, &self.week_rows(week)?)));
        }
        let roster = self.roster()?;
        let name_of = |user: &str| name_in(Some(&roster), user);
        let seen_until = self.store().read(notified::seen_until)?;
        Ok(unread(&weeks, seen_until, &name_of))
    }

    /// She has looked at everything up to now: nothing is unread, here and (after the next
    /// sync) on her other devices.
    pub fn mark_all_read(&self) -> Result<()> {
        let now = store::to_millis(self.now());
        self.store().write(|tx| notified::raise_seen_until(tx, now, false))?;
        self.notify(super::ClientEvent::DataChanged(super::DataChange::Program));
        Ok(())
    }

    fn with_notification_context<T>(&self, days: u32, f: impl FnOnce(&NotificationContext<'_>) -> T) -> Result<T> {
        let program = self.program()?;
        let profile = self.profile()?;
        let now = self.now();
        let blueprint = &program.enrollment.blueprint;
        let today = local_day(now, profile.time_zone, profile.day_start);
        let active = self.store().read(|conn| {
            logs::daily_activity(conn, &program.enrollment.program_id, today + Days::new(u64::from(days)))
        })?;
        let (handed_out, enrolled_at, seen_until) = self.store().read(|conn| {
            Ok((notified::handed_out(conn)?, enrollment::enrolled_at(conn)?, notified::seen_until(conn)?))
        })?;
        let (me, weeks, roster, messages) = match self.membership() {
            Ok(membership) => {
                let current = blueprint.position_at(now, profile.time_zone, profile.day_start).week;
                let weeks = current.map_or_else(Vec::new, |w| (w.saturating_sub(1)..=w).collect::<Vec<u32>>());
                let mut activity = Vec::with_capacity(weeks.len());
                for week in weeks {
                    activity.push(self.week_activity(&membership.user_id, week, &profile)?);
                }
                (membership.user_id, activity, Some(self.roster()?), self.messages()?)
            }
            Err(Error::NotInCohort) => (String::new(), Vec::new(), None, Vec::new()),
            Err(err) => return Err(err),
        };
        let name_of = |user: &str| name_in(roster.as_ref(), user);
        // What she has already seen on any of her devices is no news either.
        let events_since =
            DateTime::from_timestamp_millis(enrolled_at.unwrap_or(0).max(seen_until + 1)).unwrap_or_default();
        Ok(with_reminder_context(&program, &profile, now, &active, |reminders| {
            f(&NotificationContext {
                reminders,
                me: &me,
                weeks,
                name_of: &name_of,
                handed_out: &handed_out,
                events_since,
                messages,
            })
        }))
    }

    fn week_activity(&self, me: &str, week: u32, profile: &store::enrollment::Profile) -> Result<WeekActivity> {
        let blueprint = self.program()?.enrollment.blueprint.clone();
        let roles = self.week_roles(week)?;
        let i_review: Vec<String> = self
            .assignments_for(&roles)?
            .into_iter()
            .filter(|a| a.reviewers.iter().any(|r| r == me))
            .map(|a| a.practitioner)
            .collect();
        let rows = self.week_rows(week)?;

        let my_role = roles.role_of(me);
        let first_day = blueprint.date_of_day(blueprint.first_day_of_week(week));
        Ok(WeekActivity {
            week,
            happenings: week_news(me, &rows),
            reviews_owed: reviews_owed(me, &rows, &i_review),
            synthesis_written: !rows.synthesis.trim().is_empty(),
            my_role,
            rotation: roles.rotation,
            role_expectation: roles.expectations.iter().find(|(r, _)| Some(*r) == my_role).map(|(_, t)| t.clone()),
            feedback_closes_at: blueprint.feedback_closes_at(week),
            critique_starts_at: blueprint.critique_starts().find(|(w, _)| *w == week).map(|(_, at)| at),
            week_starts_at: resolve_wall_clock(first_day, profile.day_start.wall_time(), profile.time_zone),
        })
    }
}

/// A member's display name, for the words of a notification ("Someone" if she is not on it).
fn name_in(roster: Option<&Roster>, user: &str) -> String {
    roster.and_then(|r| r.member(user)).map_or_else(|| "Someone".to_owned(), |m| m.display_name.clone())
}
