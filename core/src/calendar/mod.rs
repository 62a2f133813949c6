//! iCalendar (RFC 5545) export of a learner's program: the daily practice and the weekly critique
//! as recurring events with alarms. Pure: the caller passes the stamp time and the sequence.
//!
//! Events use `DTSTART;TZID=<IANA zone>` with a wall-clock time, so 07:30 stays 07:30 across DST.
//! A week whose critique a facilitator changed (moved, a meeting link, a member leading) gets its
//! own instance (`RECURRENCE-ID` of the regular slot) with that week's revision added to SEQUENCE.
//! The `icalendar` crate does not emit VTIMEZONE, which RFC 5545 requires for every TZID used;
//! [`vtimezone`] builds them from the tz database and they are spliced in before the events.

mod vtimezone;

use chrono::{DateTime, Duration, NaiveDateTime, NaiveTime, Utc};
use chrono_tz::Tz;
use icalendar::{Alarm, Calendar, CalendarDateTime, Component, EventLike, Property, Trigger};

use crate::domain::blueprint::Blueprint;

pub use vtimezone::vtimezone;

/// What the calendar shows. [`CalendarInput::fingerprint`] changes exactly when an exported event
/// would change, which is when the caller bumps `sequence`.
#[derive(Debug, Clone)]
pub struct CalendarInput<'a> {
    pub program_id: &'a str,
    pub program_title: &'a str,
    pub blueprint: &'a Blueprint,
    pub learner_zone: Tz,
    pub practice_time: NaiveTime,
    pub practice_minutes: u32,
    /// Minutes before the event that its alarm fires (0 = at the start).
    pub practice_alarm_minutes: u32,
    pub critique_alarm_minutes: u32,
    pub sequence: u32,
    pub stamp: DateTime<Utc>,
}

impl CalendarInput<'_> {
    /// Everything that shapes the events, except the sequence and stamp themselves.
    pub fn fingerprint(&self) -> String {
        let b = self.blueprint;
        format!(
            "{}|{}|{}|{}|{}|{}|{}|{}|{}|{:?}|{}|{}|{}|{}",
            self.program_title,
            b.start_date,
            b.total_days(),
            b.weeks,
            b.cohort_time_zone.name(),
            b.critique.time,
            b.critique.minutes,
            self.learner_zone.name(),
            self.practice_time,
            b.critique.weekday,
            self.practice_minutes,
            self.practice_alarm_minutes,
            self.critique_alarm_minutes,
            serde_json::to_string(&b.critique_weeks).unwrap_or_default(),
        )
    }
}

/// The program calendar as an `.ics` text (CRLF line endings).
pub fn program_calendar(input: &CalendarInput<'_>) -> String {
    let b = input.blueprint;
    let practice_uid = format!("practice-{}@microcohort", input.program_id);
    let critique_uid = format!("critique-{}@microcohort", input.program_id);

    let practice_start = NaiveDateTime::new(b.start_date, input.practice_time);
    let practice = icalendar::Event::new()
        .uid(&practice_uid)
        .summary(&format!("Daily practice · {}", input.program_title))
        .description("Today's 10–15 minute micro-practice. Open Microcohort to see the prompt and log it.")
        .starts(zoned(practice_start, input.learner_zone))
        .ends(zoned(practice_start + Duration::minutes(i64::from(input.practice_minutes)), input.learner_zone))
        .add_property("RRULE", format!("FREQ=DAILY;COUNT={}", b.total_days()))
        .sequence(input.sequence)
        .timestamp(input.stamp)
        .alarm(alarm(&practice_uid, "Time for today's practice", input.practice_alarm_minutes, input.stamp))
        .done();

    // `Calendar::new` would add a PRODID of its own: RFC 5545 allows exactly one.
    let mut calendar = Calendar::empty();
    calendar
        .append_property(("VERSION", "2.0"))
        .append_property(("PRODID", "-//Microcohort//Program calendar//EN"))
        .append_property(("CALSCALE", "GREGORIAN"))
        .append_property(("METHOD", "PUBLISH"))
        .name(input.program_title);
    calendar.push(practice);

    let mut zones = vec![input.learner_zone];
    if let Some(first) = b.regular_critique_start(1) {
        let critique = |start: NaiveDateTime, sequence: u32| {
            icalendar::Event::new()
                .uid(&critique_uid)
                .summary(&format!("Weekly cohort critique · {}", input.program_title))
                .description("The cohort's weekly critique. Bring this week's practice.")
                .starts(zoned(start, b.cohort_time_zone))
                .ends(zoned(start + Duration::minutes(i64::from(b.critique.minutes)), b.cohort_time_zone))
                .sequence(sequence)
                .timestamp(input.stamp)
                .alarm(alarm(&critique_uid, "Weekly critique coming up", input.critique_alarm_minutes, input.stamp))
                .done()
        };
        let mut weekly = critique(first, input.sequence);
        weekly.add_property("RRULE", format!("FREQ=WEEKLY;COUNT={}", b.weeks));
        calendar.push(weekly);
        for (week, changed) in b.critique_weeks.range(1..=b.weeks) {
            let (Some(regular), Some(start)) = (b.regular_critique_start(*week), b.critique_local_start(*week)) else {
                continue;
            };
            let mut instance = critique(start, input.sequence.saturating_add(changed.revision));
            let recurrence = Property::new("RECURRENCE-ID", regular.format("%Y%m%dT%H%M%S").to_string())
                .add_parameter("TZID", b.cohort_time_zone.name())
                .done();
            instance.append_property(recurrence);
            if let Some(link) = &changed.link {
                instance.location(link).url(link);
            }
            calendar.push(instance);
        }
        zones.push(b.cohort_time_zone);
    }
    zones.dedup_by_key(|zone| zone.name());

    // Cover the whole program with a year's margin either side for calendar apps that expand early.
    let from = NaiveDateTime::new(b.start_date, NaiveTime::MIN) - Duration::days(366);
    let until = NaiveDateTime::new(b.end_date(), NaiveTime::MIN) + Duration::days(366);
    let timezones: String = zones.iter().map(|zone| vtimezone(*zone, from, until)).collect();

    let text = calendar.done().to_string();
    match text.find("BEGIN:VEVENT") {
        Some(at) => format!("{}{timezones}{}", &text[..at], &text[at..]),
        None => text,
    }
}

fn zoned(date_time: NaiveDateTime, zone: Tz) -> CalendarDateTime {
    CalendarDateTime::WithTimezone { date_time, tzid: zone.name().to_owned() }
}

/// A display alarm. UID and DTSTAMP are set explicitly: the crate would otherwise write a random
/// UID and the wall-clock time into every export, and an unchanged calendar must export identically.
fn alarm(event_uid: &str, text: &str, minutes_before: u32, stamp: DateTime<Utc>) -> Alarm {
    Alarm::display(text, Trigger::before_start(Duration::minutes(i64::from(minutes_before))))
        .uid(&format!("{event_uid}-alarm"))
        .timestamp(stamp)
        .done()
}
