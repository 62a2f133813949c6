//! The notification plan: everything the person should be told, her own practice and her
//! cohort's week alike, as records an app schedules as local notifications and words in its own
//! language. Computed on the device from the projections after every local change and every
//! merge; the app replaces all pending notifications with the plan.
//!
//! - Reminders (today's practice, the critique) fire at their time and keep their id, so a new
//!   plan replaces them.
//! - Cohort notifications (feedback on her work, a reply to her, a rating of her feedback, the
//!   week's synthesis, her role, reviews due or overdue) fire when they become true: now, or at
//!   their time ahead. The first plan that hands one out fixes its time (the caller keeps it in
//!   `handed_out`); later plans repeat it with that time until it has fired, then never again.
//!   Events older than `events_since` (before this device joined, or more than a week ago) are
//!   history, not news.
//! - Quiet hours move a notification to their end (dropped if that is too late to matter); at most
//!   the weekly budget per program week and [`MAX_PENDING`] in all, kept in [`NotificationKind`]
//!   order (highest priority first), then by time.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::reminders::{
    MAX_PENDING, PlannedReminder, ReminderContext, ReminderDetails, ReminderKind, candidate_reminders,
};
use super::roles::WeeklyRole;
use super::time::local_day;

/// What a notification is about, in priority order: when the budget is short, earlier kinds win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum NotificationKind {
    CritiqueSoon,
    ReviewsDue,
    ReviewsOverdue,
    NoteFromFacilitator,
    Announcement,
    FeedbackOnMyWork,
    ReplyToMe,
    RatingOfMyFeedback,
    MyRole,
    SynthesisPublished,
    Practice,
}

/// The parameters an app words a notification with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "about", rename_all = "snake_case")]
pub enum NotificationDetails {
    Practice {
        prompt_title: String,
        minutes: u32,
    },
    CritiqueSoon {
        week: u32,
        starts_at: DateTime<Utc>,
        minutes: u32,
        /// Where the cohort meets, when a facilitator set a link for the week.
        #[serde(default)]
        link: Option<String>,
    },
    /// `owed` reviews of this week's work are still to give before `closes_at`.
    ReviewsDue {
        week: u32,
        owed: u32,
        closes_at: DateTime<Utc>,
    },
    ReviewsOverdue {
        week: u32,
        owed: u32,
        closed_at: DateTime<Utc>,
    },
    FeedbackOnMyWork {
        week: u32,
        from: String,
        submission_title: String,
    },
    ReplyToMe {
        week: u32,
        from: String,
    },
    RatingOfMyFeedback {
        week: u32,
        from: String,
        score: i64,
    },
    MyRole {
        week: u32,
        role: WeeklyRole,
        expectation: Option<String>,
    },
    SynthesisPublished {
        week: u32,
    },
    /// A private note from a facilitator (`excerpt`: its first 120 characters).
    NoteFromFacilitator {
        from: String,
        excerpt: String,
    },
    Announcement {
        from: String,
        excerpt: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    /// Stable for the thing it is about (an entry, a week, a day): the same on every device of
    /// the person and across plans, so an app replaces rather than repeats.
    pub id: String,
    pub kind: NotificationKind,
    pub fire_at: DateTime<Utc>,
    /// English defaults; an app in another language words it from `details`.
    pub title: String,
    pub body: String,
    pub details: NotificationDetails,
    /// What the app opens: a program week and, for an entry, its key.
    pub week: Option<u32>,
    pub entry: Option<String>,
}

/// Something in a cohort week that concerns her (read from the week's entries by `docs::news`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Happening {
    /// The entry's key: what the notification opens and what makes its id.
    pub key: String,
    pub author: String,
    /// Milliseconds since the epoch, as the entry records it.
    pub created_at: i64,
    pub what: HappeningKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HappeningKind {
    FeedbackOnMyWork {
        submission_title: String,
    },
    ReplyToMe {
        excerpt: String,
    },
    /// A rating of her feedback `feedback` (the entry the notification opens).
    RatingOfMyFeedback {
        feedback: String,
        score: i64,
    },
}

impl HappeningKind {
    pub fn notification_kind(&self) -> NotificationKind {
        match self {
            Self::FeedbackOnMyWork { .. } => NotificationKind::FeedbackOnMyWork,
            Self::ReplyToMe { .. } => NotificationKind::ReplyToMe,
            Self::RatingOfMyFeedback { .. } => NotificationKind::RatingOfMyFeedback,
        }
    }
}

/// A facilitator's announcement to the cohort, or private note to her.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `"<author>/<id>"`: what makes the notification's id.
    pub key: String,
    pub author: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub body: String,
    pub private: bool,
}

/// Something in her cohort she has not seen: newer than her unread mark.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnreadEntry {
    pub kind: NotificationKind,
    pub week: u32,
    /// The entry a tap opens (for a rating: the feedback rated).
    pub entry: String,
    pub from: String,
    pub created_at: DateTime<Utc>,
}

/// Her unread entries, newest first: what others did that concerns her after `seen_until` (ms).
pub fn unread(weeks: &[(u32, Vec<Happening>)], seen_until: i64, name_of: &dyn Fn(&str) -> String) -> Vec<UnreadEntry> {
    let mut out: Vec<UnreadEntry> = weeks
        .iter()
        .flat_map(|(week, happenings)| happenings.iter().map(move |h| (*week, h)))
        .filter(|(_, h)| h.created_at > seen_until)
        .map(|(week, h)| UnreadEntry {
            kind: h.what.notification_kind(),
            week,
            entry: match &h.what {
                HappeningKind::RatingOfMyFeedback { feedback, .. } => feedback.clone(),
                _ => h.key.clone(),
            },
            from: name_of(&h.author),
            created_at: DateTime::from_timestamp_millis(h.created_at).unwrap_or_default(),
        })
        .collect();
    out.sort_by(|a, b| (b.created_at, &b.entry).cmp(&(a.created_at, &a.entry)));
    out
}

/// One cohort week as the device sees it.
pub struct WeekActivity {
    pub week: u32,
    pub happenings: Vec<Happening>,
    /// Reviews of this week's submissions she is assigned and has not given.
    pub reviews_owed: u32,
    pub synthesis_written: bool,
    /// Her role this week, if she is on the week's roster.
    pub my_role: Option<WeeklyRole>,
    pub rotation: bool,
    pub role_expectation: Option<String>,
    pub feedback_closes_at: Option<DateTime<Utc>>,
    /// The synthesis is news once the week's critique has begun (it is written until then).
    pub critique_starts_at: Option<DateTime<Utc>>,
    pub week_starts_at: DateTime<Utc>,
}

pub struct NotificationContext<'a> {
    pub reminders: ReminderContext<'a>,
    pub me: &'a str,
    /// The weeks to look at (this one and the one before).
    pub weeks: Vec<WeekActivity>,
    /// A member's display name.
    pub name_of: &'a dyn Fn(&str) -> String,
    /// Cohort notifications handed out on this device before, with the time each was set to fire.
    pub handed_out: &'a HashMap<String, DateTime<Utc>>,
    /// Events created before this instant are not news.
    pub events_since: DateTime<Utc>,
    /// Facilitators' announcements and notes to her.
    pub messages: Vec<Message>,
}

/// How long before the feedback window closes owed reviews are brought up.
const REVIEWS_DUE_LEAD: Duration = Duration::hours(4);

pub fn plan_notifications(ctx: &NotificationContext<'_>, days: u32) -> Vec<Notification> {
    let now = ctx.reminders.now;
    let mut planned: Vec<Notification> =
        candidate_reminders(&ctx.reminders, days).into_iter().map(from_reminder).collect();
    for week in &ctx.weeks {
        planned.extend(reviews_owed(ctx, week));
        planned.extend(events(ctx, week));
    }
    planned.extend(messages(ctx));
    let planned = planned
        .into_iter()
        .filter_map(|n| after_quiet_hours(ctx, n))
        .filter_map(|n| at_the_time_handed_out(ctx, n))
        .filter(|n| n.fire_at >= now);
    budget(planned.collect(), ctx)
}

/// Whether a kind is a cohort notification (fixed once handed out) rather than a reminder.
pub fn is_cohort_kind(kind: NotificationKind) -> bool {
    !matches!(kind, NotificationKind::Practice | NotificationKind::CritiqueSoon)
}

/// A cohort notification handed out before keeps its time until it fires, then is gone.
fn at_the_time_handed_out(ctx: &NotificationContext<'_>, mut n: Notification) -> Option<Notification> {
    if !is_cohort_kind(n.kind) {
        return Some(n);
    }
    match ctx.handed_out.get(&n.id) {
        Some(at) if *at <= ctx.reminders.now => None,
        Some(at) => {
            n.fire_at = *at;
            Some(n)
        }
        None => Some(n),
    }
}

fn from_reminder(reminder: PlannedReminder) -> Notification {
    let (kind, week) = match &reminder.details {
        ReminderDetails::Practice { .. } => (NotificationKind::Practice, None),
        ReminderDetails::Critique { week, .. } => (NotificationKind::CritiqueSoon, Some(*week)),
    };
    let details = match reminder.details {
        ReminderDetails::Practice { prompt_title, minutes } => NotificationDetails::Practice { prompt_title, minutes },
        ReminderDetails::Critique { week, starts_at, minutes, link } => {
            NotificationDetails::CritiqueSoon { week, starts_at, minutes, link }
        }
    };
    debug_assert!(matches!(reminder.kind, ReminderKind::Practice | ReminderKind::Critique));
    Notification {
        id: reminder.id,
        kind,
        fire_at: reminder.fire_at,
        title: reminder.title,
        body: reminder.body,
        details,
        week,
        entry: None,
    }
}

/// Reviews she owes this week: due before the window closes, overdue once it has.
fn reviews_owed(ctx: &NotificationContext<'_>, w: &WeekActivity) -> Vec<Notification> {
    let (Some(closes_at), owed, week) = (w.feedback_closes_at, w.reviews_owed, w.week) else { return Vec::new() };
    if owed == 0 {
        return Vec::new();
    }
    let due_while_open = closes_at > ctx.reminders.now;
    let at_close = closes_at.with_timezone(&ctx.reminders.zone).format("%A %H:%M");
    let mut owed_notifications = vec![
        Notification {
            id: format!("reviews-due-week-{week}"),
            kind: NotificationKind::ReviewsDue,
            fire_at: (closes_at - REVIEWS_DUE_LEAD).max(ctx.reminders.now),
            title: format!("{owed} review(s) due"),
            body: format!("Give your feedback on this week's work before {at_close}."),
            details: NotificationDetails::ReviewsDue { week, owed, closes_at },
            week: Some(week),
            entry: None,
        },
        Notification {
            id: format!("reviews-overdue-week-{week}"),
            kind: NotificationKind::ReviewsOverdue,
            fire_at: closes_at.max(ctx.reminders.now),
            title: format!("{owed} review(s) overdue"),
            body: "The feedback window has closed; late feedback still helps and is marked late.".into(),
            details: NotificationDetails::ReviewsOverdue { week, owed, closed_at: closes_at },
            week: Some(week),
            entry: None,
        },
    ];
    if !due_while_open {
        owed_notifications.remove(0);
    }
    owed_notifications
}

/// What happened in a week that concerns her, newer than `events_since`, each once.
fn events(ctx: &NotificationContext<'_>, w: &WeekActivity) -> Vec<Notification> {
    let (week, now) = (w.week, ctx.reminders.now);
    let since = ctx.events_since.timestamp_millis().max((now - Duration::days(7)).timestamp_millis());
    let event = |id: String, kind, title: String, body: String, details, entry: Option<String>| Notification {
        id,
        kind,
        fire_at: now,
        title,
        body,
        details,
        week: Some(week),
        entry,
    };
    let mut out = Vec::new();
    for h in w.happenings.iter().filter(|h| h.created_at >= since) {
        let from = (ctx.name_of)(&h.author);
        out.push(match &h.what {
            HappeningKind::FeedbackOnMyWork { submission_title } => event(
                format!("feedback-{}", h.key),
                NotificationKind::FeedbackOnMyWork,
                format!("{from} gave you feedback"),
                format!("On \"{submission_title}\""),
                NotificationDetails::FeedbackOnMyWork { week, from, submission_title: submission_title.clone() },
                Some(h.key.clone()),
            ),
            HappeningKind::ReplyToMe { excerpt } => event(
                format!("reply-{}", h.key),
                NotificationKind::ReplyToMe,
                format!("{from} replied to you"),
                excerpt.clone(),
                NotificationDetails::ReplyToMe { week, from },
                Some(h.key.clone()),
            ),
            HappeningKind::RatingOfMyFeedback { feedback, score } => event(
                format!("rating-{}", h.key),
                NotificationKind::RatingOfMyFeedback,
                format!("{from} rated your feedback"),
                format!("{score} of 5"),
                NotificationDetails::RatingOfMyFeedback { week, from, score: *score },
                Some(feedback.clone()),
            ),
        });
    }
    if let Some(role) = w.my_role.filter(|_| w.rotation)
        && w.week_starts_at <= now
        && w.week_starts_at >= ctx.events_since
    {
        out.push(event(
            format!("role-week-{week}"),
            NotificationKind::MyRole,
            format!("Your role in week {week}: {}", role.slug()),
            w.role_expectation.clone().unwrap_or_default(),
            NotificationDetails::MyRole { week, role, expectation: w.role_expectation.clone() },
            None,
        ));
    }
    if w.synthesis_written
        && w.critique_starts_at.is_some_and(|start| start <= now)
        && w.my_role != Some(WeeklyRole::Synthesizer)
    {
        out.push(event(
            format!("synthesis-week-{week}"),
            NotificationKind::SynthesisPublished,
            format!("Week {week}'s synthesis is ready"),
            "What your cohort learned this week, in one page.".into(),
            NotificationDetails::SynthesisPublished { week },
            None,
        ));
    }
    out
}

/// Facilitators' announcements and notes to her newer than `events_since`, each once.
fn messages(ctx: &NotificationContext<'_>) -> Vec<Notification> {
    let now = ctx.reminders.now;
    let since = ctx.events_since.timestamp_millis().max((now - Duration::days(7)).timestamp_millis());
    ctx.messages
        .iter()
        .filter(|m| m.created_at >= since && m.author != ctx.me)
        .map(|m| {
            let from = (ctx.name_of)(&m.author);
            let excerpt: String = m.body.chars().take(120).collect();
            let (id, kind, title, details) = if m.private {
                let details = NotificationDetails::NoteFromFacilitator { from: from.clone(), excerpt: excerpt.clone() };
                (
                    format!("note-{}", m.key),
                    NotificationKind::NoteFromFacilitator,
                    format!("A note from {from}"),
                    details,
                )
            } else {
                let details = NotificationDetails::Announcement { from: from.clone(), excerpt: excerpt.clone() };
                (
                    format!("announcement-{}", m.key),
                    NotificationKind::Announcement,
                    format!("{from} to the cohort"),
                    details,
                )
            };
            Notification {
                id,
                kind,
                fire_at: now,
                title,
                body: excerpt,
                details,
                week: None,
                entry: Some(m.key.clone()),
            }
        })
        .collect()
}

/// The earliest useful sync: two hours before a feedback window closes (her reviews and her
/// peers' feedback get through in time), half an hour before a critique, else in four hours;
/// never sooner than in a quarter of an hour, and out of quiet hours.
pub fn next_sync(ctx: &NotificationContext<'_>) -> DateTime<Utc> {
    let r = &ctx.reminders;
    let soonest = r.now + Duration::minutes(15);
    let windows = ctx.weeks.iter().filter_map(|w| w.feedback_closes_at).map(|at| at - Duration::hours(2));
    let critiques = r.blueprint.critique_starts().map(|(_, at)| at - Duration::minutes(30));
    let at = windows
        .chain(critiques)
        .filter(|at| *at >= soonest)
        .chain(std::iter::once(r.now + Duration::hours(4)))
        .min()
        .unwrap_or(soonest);
    match r.preferences.quiet_hours {
        Some(quiet) if quiet.contains(at.with_timezone(&r.zone).time()) => quiet.end_after(at, r.zone),
        _ => at,
    }
}

/// Moves a notification out of quiet hours, or drops it when that is too late: a practice to
/// another day, a critique or review reminder past what it reminds of.
fn after_quiet_hours(ctx: &NotificationContext<'_>, mut n: Notification) -> Option<Notification> {
    let r = &ctx.reminders;
    let Some(quiet) = r.preferences.quiet_hours else { return Some(n) };
    if !quiet.contains(n.fire_at.with_timezone(&r.zone).time()) {
        return Some(n);
    }
    // Practice and critique reminders were already placed by the reminder rules.
    if matches!(n.kind, NotificationKind::Practice | NotificationKind::CritiqueSoon) {
        return Some(n);
    }
    let moved = quiet.end_after(n.fire_at, r.zone);
    if let NotificationDetails::ReviewsDue { closes_at, .. } = n.details
        && moved >= closes_at
    {
        return None;
    }
    n.fire_at = moved;
    Some(n)
}

/// The weekly budget per program week, by priority, and the pending limit, in firing order.
fn budget(mut planned: Vec<Notification>, ctx: &NotificationContext<'_>) -> Vec<Notification> {
    let r = &ctx.reminders;
    planned.sort_by(|a, b| (a.kind, a.fire_at, &a.id).cmp(&(b.kind, b.fire_at, &b.id)));
    let mut used: BTreeMap<Option<u32>, u32> = BTreeMap::new();
    planned.retain(|n| {
        let week = r.blueprint.position_on(local_day(n.fire_at, r.zone, r.day_start)).week;
        let count = used.entry(week).or_default();
        *count += 1;
        *count <= r.preferences.weekly_budget
    });
    planned.truncate(MAX_PENDING);
    planned.sort_by(|a, b| (a.fire_at, a.kind, &a.id).cmp(&(b.fire_at, b.kind, &b.id)));
    planned
}

#[cfg(test)]
#[path = "notifications_tests.rs"]
mod tests;
