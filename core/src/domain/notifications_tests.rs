use std::collections::{HashMap, HashSet};

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::*;
use crate::domain::blueprint::Blueprint;
use crate::domain::reminders::{QuietHours, ReminderPreferences};
use crate::domain::time::DayStart;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

struct Fixture {
    blueprint: Blueprint,
    preferences: ReminderPreferences,
    handed_out: HashMap<String, DateTime<Utc>>,
    since: DateTime<Utc>,
    messages: Vec<Message>,
}

impl Fixture {
    fn new() -> Self {
        // Starts Monday 2 March 2026 in Berlin (week 0 has 6 days): week 1 is 8-14 March, its critique Thursday the
        // 12th at 17:00 CET, its feedback window closing Saturday the 14th at 17:00 (16:00 UTC).
        let start = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap();
        Self {
            blueprint: Blueprint::default_90_days(start, chrono_tz::Europe::Berlin),
            preferences: ReminderPreferences { quiet_hours: None, practice_reminders: false, ..Default::default() },
            handed_out: HashMap::new(),
            since: at("2026-03-01T00:00:00Z"),
            messages: Vec::new(),
        }
    }

    fn week(&self, week: u32, happenings: Vec<Happening>, owed: u32) -> WeekActivity {
        WeekActivity {
            week,
            happenings,
            reviews_owed: owed,
            synthesis_written: false,
            my_role: Some(WeeklyRole::PractiseAndReview),
            rotation: false,
            role_expectation: None,
            feedback_closes_at: self.blueprint.feedback_closes_at(week),
            critique_starts_at: self.blueprint.critique_starts().find(|(w, _)| *w == week).map(|(_, t)| t),
            week_starts_at: at("2026-03-07T23:00:00Z"),
        }
    }

    fn plan(&self, now: &str, weeks: Vec<WeekActivity>) -> Vec<Notification> {
        let practised = HashSet::new();
        let prompt_on = |_: NaiveDate| Some(("Listen".to_owned(), 12));
        let name_of = |user: &str| format!("name of {user}");
        let ctx = NotificationContext {
            reminders: ReminderContext {
                now: at(now),
                zone: chrono_tz::Europe::Berlin,
                day_start: DayStart::default(),
                blueprint: &self.blueprint,
                preferences: &self.preferences,
                practised: &practised,
                prompt_on: &prompt_on,
            },
            me: "ana",
            weeks,
            name_of: &name_of,
            handed_out: &self.handed_out,
            events_since: self.since,
            messages: self.messages.clone(),
        };
        plan_notifications(&ctx, 7)
    }
}

fn feedback(key: &str, by: &str, created: &str) -> Happening {
    Happening {
        key: key.into(),
        author: by.into(),
        created_at: at(created).timestamp_millis(),
        what: HappeningKind::FeedbackOnMyWork { submission_title: "Listening first".into() },
    }
}

#[test]
fn feedback_on_her_work_is_told_now_once_and_only_when_it_is_news() {
    let mut f = Fixture::new();
    let now = "2026-03-10T09:00:00Z";
    let fresh = feedback("ben~1", "ben", "2026-03-10T08:00:00Z");
    let plan = f.plan(now, vec![f.week(1, vec![fresh.clone()], 0)]);
    let told: Vec<_> = plan.iter().filter(|n| n.kind == NotificationKind::FeedbackOnMyWork).collect();
    assert_eq!(told.len(), 1, "{plan:?}");
    assert_eq!(told[0].id, "feedback-ben~1");
    assert_eq!(told[0].fire_at, at(now));
    assert_eq!((told[0].week, told[0].entry.as_deref()), (Some(1), Some("ben~1")));
    assert_eq!(
        told[0].details,
        NotificationDetails::FeedbackOnMyWork {
            week: 1,
            from: "name of ben".into(),
            submission_title: "Listening first".into()
        }
    );

    // Handed out at 09:00: not in a plan after that.
    f.handed_out.insert("feedback-ben~1".into(), at(now));
    assert!(!f.plan(now, vec![f.week(1, vec![fresh.clone()], 0)]).iter().any(|n| n.id == "feedback-ben~1"));
    // Handed out for a later time (after quiet hours): repeated with that time until then.
    f.handed_out.insert("feedback-ben~1".into(), at("2026-03-10T10:00:00Z"));
    let again = f.plan(now, vec![f.week(1, vec![fresh.clone()], 0)]);
    assert_eq!(again.iter().find(|n| n.id == "feedback-ben~1").unwrap().fire_at, at("2026-03-10T10:00:00Z"));
    // From before this device joined, or more than a week old: history, not news.
    f.handed_out.clear();
    f.since = at("2026-03-10T08:30:00Z");
    assert!(!f.plan(now, vec![f.week(1, vec![fresh], 0)]).iter().any(|n| n.kind == NotificationKind::FeedbackOnMyWork));
    f.since = at("2026-03-01T00:00:00Z");
    let old = feedback("ben~0", "ben", "2026-03-02T08:00:00Z");
    assert!(!f.plan(now, vec![f.week(1, vec![old], 0)]).iter().any(|n| n.kind == NotificationKind::FeedbackOnMyWork));
}

#[test]
fn owed_reviews_are_due_before_the_window_closes_and_overdue_when_it_has() {
    let f = Fixture::new();
    let closes = f.blueprint.feedback_closes_at(1).unwrap();
    assert_eq!(closes, at("2026-03-14T16:00:00Z"));
    let plan = f.plan("2026-03-13T09:00:00Z", vec![f.week(1, vec![], 2)]);
    let due = plan.iter().find(|n| n.kind == NotificationKind::ReviewsDue).expect("due");
    assert_eq!(due.fire_at, at("2026-03-14T12:00:00Z"), "four hours before the close");
    assert_eq!(due.details, NotificationDetails::ReviewsDue { week: 1, owed: 2, closes_at: closes });
    let overdue = plan.iter().find(|n| n.kind == NotificationKind::ReviewsOverdue).expect("overdue");
    assert_eq!(overdue.fire_at, closes);
    assert!(f.plan("2026-03-13T09:00:00Z", vec![f.week(1, vec![], 0)]).iter().all(
        |n| n.week != Some(1) || !matches!(n.kind, NotificationKind::ReviewsDue | NotificationKind::ReviewsOverdue)
    ));
    // Later than four hours before the close: due at once.
    let late = f.plan("2026-03-14T14:00:00Z", vec![f.week(1, vec![], 1)]);
    assert_eq!(
        late.iter().find(|n| n.kind == NotificationKind::ReviewsDue).unwrap().fire_at,
        at("2026-03-14T14:00:00Z")
    );
}

#[test]
fn quiet_hours_hold_news_until_morning_and_drop_a_reminder_that_would_come_too_late() {
    let mut f = Fixture::new();
    f.preferences.quiet_hours = Some(QuietHours {
        start: NaiveTime::from_hms_opt(22, 0, 0).unwrap(),
        end: NaiveTime::from_hms_opt(7, 0, 0).unwrap(),
    });
    // 23:30 in Berlin: the feedback waits for 07:00.
    let night = "2026-03-10T22:30:00Z";
    let plan = f.plan(night, vec![f.week(1, vec![feedback("ben~1", "ben", night)], 0)]);
    let told = plan.iter().find(|n| n.kind == NotificationKind::FeedbackOnMyWork).unwrap();
    assert_eq!(told.fire_at, at("2026-03-11T06:00:00Z"));
    // A window closing at 03:00 Berlin: its due reminder (23:00) would move past the close.
    f.blueprint.critique.time = NaiveTime::from_hms_opt(3, 0, 0).unwrap();
    let plan = f.plan("2026-03-13T12:00:00Z", vec![f.week(1, vec![], 1)]);
    assert!(!plan.iter().any(|n| n.kind == NotificationKind::ReviewsDue), "{plan:?}");
}

#[test]
fn the_weekly_budget_keeps_the_most_important_kinds() {
    let mut f = Fixture::new();
    f.preferences.practice_reminders = true;
    f.preferences.weekly_budget = 4;
    let now = "2026-03-10T05:00:00Z";
    let news = vec![feedback("ben~1", "ben", now), feedback("cy~1", "cy", now)];
    let plan = f.plan(now, vec![f.week(1, news, 1)]);
    let in_week_1: Vec<&Notification> = plan.iter().filter(|n| n.fire_at < at("2026-03-14T23:00:00Z")).collect();
    let kinds: Vec<NotificationKind> = in_week_1.iter().map(|n| n.kind).collect();
    assert_eq!(kinds.len(), 4, "{in_week_1:#?}");
    for kind in [NotificationKind::CritiqueSoon, NotificationKind::ReviewsDue, NotificationKind::ReviewsOverdue] {
        assert!(kinds.contains(&kind), "{kind:?} in {kinds:?}");
    }
    assert!(in_week_1.iter().any(|n| n.id == "feedback-ben~1") && !kinds.contains(&NotificationKind::Practice));
    assert!(plan.iter().any(|n| n.kind == NotificationKind::Practice), "next week's practice has its own budget");
    assert!(plan.windows(2).all(|pair| pair[0].fire_at <= pair[1].fire_at), "in firing order");
}

#[test]
fn her_role_is_told_in_rotation_weeks_and_the_synthesis_once_the_critique_began() {
    let f = Fixture::new();
    let mut week = f.week(5, vec![], 0);
    week.rotation = true;
    week.my_role = Some(WeeklyRole::Reviewer);
    week.role_expectation = Some("Review two peers".into());
    week.week_starts_at = at("2026-04-05T22:00:00Z");
    week.synthesis_written = true;
    let critique = week.critique_starts_at.unwrap();
    let before = f.plan("2026-04-06T08:00:00Z", vec![week]);
    let role = before.iter().find(|n| n.kind == NotificationKind::MyRole).expect("her role");
    assert_eq!(
        role.details,
        NotificationDetails::MyRole {
            week: 5,
            role: WeeklyRole::Reviewer,
            expectation: Some("Review two peers".into())
        }
    );
    assert!(!before.iter().any(|n| n.kind == NotificationKind::SynthesisPublished), "still being written");
    let mut week = f.week(5, vec![], 0);
    week.synthesis_written = true;
    let after = f.plan(&(critique + chrono::Duration::minutes(5)).to_rfc3339(), vec![week]);
    assert!(after.iter().any(|n| n.id == "synthesis-week-5"));
}

#[test]
fn the_next_sync_comes_before_a_window_closes_or_a_critique_else_after_four_hours() {
    let f = Fixture::new();
    let practised = HashSet::new();
    let prompt_on = |_: NaiveDate| None;
    let name_of = |_: &str| String::new();
    let hint = |now: &str, weeks: Vec<WeekActivity>| {
        next_sync(&NotificationContext {
            reminders: ReminderContext {
                now: at(now),
                zone: chrono_tz::Europe::Berlin,
                day_start: DayStart::default(),
                blueprint: &f.blueprint,
                preferences: &f.preferences,
                practised: &practised,
                prompt_on: &prompt_on,
            },
            me: "ana",
            weeks,
            name_of: &name_of,
            handed_out: &f.handed_out,
            events_since: f.since,
            messages: Vec::new(),
        })
    };
    // Thursday 12 March 15:00 UTC: the critique at 16:00 UTC is next, half an hour before it.
    assert_eq!(hint("2026-03-12T15:00:00Z", vec![f.week(1, vec![], 0)]), at("2026-03-12T15:30:00Z"));
    // Saturday 11:00 UTC: the window closes at 16:00, so two hours before.
    assert_eq!(hint("2026-03-14T11:00:00Z", vec![f.week(1, vec![], 0)]), at("2026-03-14T14:00:00Z"));
    // Monday morning, nothing close: four hours.
    assert_eq!(hint("2026-03-09T08:00:00Z", vec![f.week(1, vec![], 0)]), at("2026-03-09T12:00:00Z"));
}

#[test]
fn a_facilitators_note_and_announcement_are_told_once_each_but_not_her_own_or_old_ones() {
    let mut f = Fixture::new();
    let message = |key: &str, author: &str, created: &str, private| Message {
        key: key.into(),
        author: author.into(),
        created_at: at(created).timestamp_millis(),
        body: "We meet on Friday this week".into(),
        private,
    };
    f.messages = vec![
        message("fay/n1", "fay", "2026-03-09T09:00:00Z", true),
        message("fay/a1", "fay", "2026-03-09T10:00:00Z", false),
        message("ana/a2", "ana", "2026-03-09T10:00:00Z", false),
        message("fay/old", "fay", "2026-02-20T10:00:00Z", false),
    ];
    let plan = f.plan("2026-03-09T12:00:00Z", vec![]);
    let told: Vec<(&str, NotificationKind)> = plan
        .iter()
        .filter(|n| matches!(n.kind, NotificationKind::NoteFromFacilitator | NotificationKind::Announcement))
        .map(|n| (n.id.as_str(), n.kind))
        .collect();
    assert_eq!(
        told,
        [
            ("note-fay/n1", NotificationKind::NoteFromFacilitator),
            ("announcement-fay/a1", NotificationKind::Announcement)
        ]
    );
    let note = plan.iter().find(|n| n.kind == NotificationKind::NoteFromFacilitator).unwrap();
    assert!(matches!(&note.details, NotificationDetails::NoteFromFacilitator { from, .. } if from == "name of fay"));
    assert_eq!(note.entry.as_deref(), Some("fay/n1"));
}
