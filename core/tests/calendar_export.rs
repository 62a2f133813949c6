//! The calendar export, read back with independent parsers: `ical` for the structure and `rrule`
//! to expand the recurrences the way a calendar app would.

mod support;

use std::collections::BTreeSet;
use std::io::BufReader;

use chrono::{Datelike, NaiveTime, Weekday};
use ical::parser::ical::component::{IcalCalendar, IcalEvent};
use ical::property::Property;
use microcohort_core::domain::reminders::ReminderPreferences;
use rrule::RRuleSet;
use support::{date, learner};

fn parse(text: &str) -> IcalCalendar {
    let mut calendars = ical::IcalParser::new(BufReader::new(text.as_bytes()));
    let calendar = calendars.next().expect("one calendar").expect("valid iCalendar");
    assert!(calendars.next().is_none());
    calendar
}

fn property<'a>(properties: &'a [Property], name: &str) -> &'a Property {
    properties.iter().find(|p| p.name == name).unwrap_or_else(|| panic!("missing {name}"))
}

fn value(properties: &[Property], name: &str) -> String {
    property(properties, name).value.clone().unwrap_or_default()
}

fn tzid(p: &Property) -> String {
    let params = p.params.as_ref().expect("parameters");
    params.iter().find(|(k, _)| k == "TZID").map(|(_, v)| v[0].clone()).expect("TZID")
}

fn event<'a>(calendar: &'a IcalCalendar, uid_prefix: &str) -> &'a IcalEvent {
    calendar.events.iter().find(|e| value(&e.properties, "UID").starts_with(uid_prefix)).expect("event")
}

/// Expands an event's recurrence like a calendar app, in its own zone.
fn occurrences(event: &IcalEvent) -> Vec<chrono::DateTime<chrono_tz::Tz>> {
    let start = property(&event.properties, "DTSTART");
    let zone: chrono_tz::Tz = tzid(start).parse().unwrap();
    let rule = format!(
        "DTSTART;TZID={}:{}\nRRULE:{}",
        tzid(start),
        start.value.as_ref().unwrap(),
        value(&event.properties, "RRULE")
    );
    let set: RRuleSet = rule.parse().expect("valid recurrence");
    let result = set.all(1000);
    assert!(!result.limited);
    result.dates.iter().map(|d| d.with_timezone(&zone)).collect()
}

#[test]
fn daily_practice_and_weekly_critique_keep_their_wall_clock_across_dst() {
    let (client, _) = learner("2026-03-01T12:00:00Z");
    let text = client.calendar().unwrap();
    assert!(text.contains("\r\n"), "RFC 5545 lines end in CRLF");
    let calendar = parse(&text);
    assert_eq!(calendar.events.len(), 2);

    let practice = occurrences(event(&calendar, "practice-"));
    assert_eq!(practice.len(), 90);
    assert_eq!(practice[0].date_naive(), date(2026, 3, 2));
    assert_eq!(practice[89].date_naive(), date(2026, 5, 30));
    // Berlin changes to summer time on 29 March: 07:30 stays 07:30 while UTC moves an hour.
    assert!(practice.iter().all(|o| o.time() == NaiveTime::from_hms_opt(7, 30, 0).unwrap()));
    let offsets: BTreeSet<i32> = practice.iter().map(|o| o.offset().fix().local_minus_utc()).collect();
    assert_eq!(offsets, BTreeSet::from([3600, 7200]));

    let critique = occurrences(event(&calendar, "critique-"));
    assert_eq!(critique.len(), 12);
    assert!(
        critique.iter().all(|o| o.weekday() == Weekday::Thu && o.time() == NaiveTime::from_hms_opt(17, 0, 0).unwrap())
    );
    // Week 1 is 8–14 March; its Thursday is the 12th.
    assert_eq!(critique[0].date_naive(), date(2026, 3, 12));
}

use chrono::Offset;

/// Seconds of an RFC 5545 duration such as "-PT3600S", "P0D" or "-P1DT2H".
fn duration_secs(text: &str) -> i64 {
    let (sign, rest) = match text.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, text.strip_prefix('+').unwrap_or(text)),
    };
    let rest = rest.strip_prefix('P').expect("duration starts with P");
    let (mut total, mut number) = (0i64, String::new());
    for c in rest.chars() {
        match c {
            '0'..='9' => number.push(c),
            'T' => {}
            unit => {
                let n: i64 = number.parse().expect("number before unit");
                number.clear();
                total += n * match unit {
                    'W' => 7 * 86_400,
                    'D' => 86_400,
                    'H' => 3_600,
                    'M' => 60,
                    'S' => 1,
                    other => panic!("unit {other}"),
                };
            }
        }
    }
    sign * total
}

#[test]
fn every_tzid_has_a_vtimezone_and_every_event_an_alarm() {
    let (client, _) = learner("2026-03-01T12:00:00Z");
    // A learner in New York in a cohort scheduled in Berlin: two zones.
    client.set_time_zone("America/New_York").unwrap();
    let calendar = parse(&client.calendar().unwrap());
    let used: BTreeSet<String> = calendar
        .events
        .iter()
        .flat_map(|e| e.properties.iter().filter(|p| p.name == "DTSTART" || p.name == "DTEND").map(tzid))
        .collect();
    assert_eq!(used, BTreeSet::from(["America/New_York".to_owned(), "Europe/Berlin".to_owned()]));
    let defined: BTreeSet<String> = calendar.timezones.iter().map(|tz| value(&tz.properties, "TZID")).collect();
    assert_eq!(defined, used);
    for zone in &calendar.timezones {
        assert!(zone.transitions.len() >= 2, "standard and daylight observances");
    }
    let trigger = |uid: &str| value(&event(&calendar, uid).alarms[0].properties, "TRIGGER");
    for event in &calendar.events {
        assert_eq!(event.alarms.len(), 1);
        assert_eq!(value(&event.alarms[0].properties, "ACTION"), "DISPLAY");
    }
    // The practice alarm fires at the start; the critique's an hour before (the default lead).
    assert_eq!(duration_secs(&trigger("practice-")), 0);
    assert_eq!(duration_secs(&trigger("critique-")), -3600);
    let new_york = occurrences(event(&calendar, "practice-"));
    assert!(new_york.iter().all(|o| o.time() == NaiveTime::from_hms_opt(7, 30, 0).unwrap()));
}

#[test]
fn uids_are_stable_and_sequence_goes_up_only_when_the_schedule_changes() {
    let (client, clock) = learner("2026-03-01T12:00:00Z");
    let first = parse(&client.calendar().unwrap());
    clock.advance(chrono::Duration::hours(5));
    let again = parse(&client.calendar().unwrap());
    let summary = |c: &IcalCalendar| -> Vec<(String, String)> {
        c.events.iter().map(|e| (value(&e.properties, "UID"), value(&e.properties, "SEQUENCE"))).collect()
    };
    assert_eq!(summary(&first), summary(&again));
    assert!(summary(&first).iter().all(|(_, seq)| seq == "0"));

    let prefs = ReminderPreferences { practice_time: NaiveTime::from_hms_opt(8, 15, 0).unwrap(), ..Default::default() };
    client.set_reminder_preferences(prefs).unwrap();
    let moved = parse(&client.calendar().unwrap());
    let moved_summary = summary(&moved);
    assert_eq!(
        moved_summary.iter().map(|(uid, _)| uid).collect::<Vec<_>>(),
        summary(&first).iter().map(|(uid, _)| uid).collect::<Vec<_>>()
    );
    assert!(moved_summary.iter().all(|(_, seq)| seq == "1"));
    let practice = occurrences(event(&moved, "practice-"));
    assert!(practice.iter().all(|o| o.time() == NaiveTime::from_hms_opt(8, 15, 0).unwrap()));
}

/// RFC 5545's cardinalities: each required property once, the "at most once" ones never twice.
#[test]
fn the_calendar_has_the_structure_rfc_5545_requires() {
    let (client, _) = learner("2026-03-01T12:00:00Z");
    let text = client.calendar().unwrap();
    assert!(text.starts_with("BEGIN:VCALENDAR\r\n") && text.ends_with("END:VCALENDAR\r\n"));
    let calendar = parse(&text);
    let count = |properties: &[Property], name: &str| properties.iter().filter(|p| p.name == name).count();
    let exactly_once = |properties: &[Property], names: &[&str], what: &str| {
        for name in names {
            assert_eq!(count(properties, name), 1, "{what}: {name} must appear once");
        }
    };
    let at_most_once = |properties: &[Property], names: &[&str], what: &str| {
        for name in names {
            assert!(count(properties, name) <= 1, "{what}: {name} appears more than once");
        }
    };
    exactly_once(&calendar.properties, &["PRODID", "VERSION"], "VCALENDAR");
    at_most_once(&calendar.properties, &["CALSCALE", "METHOD"], "VCALENDAR");
    assert!(!calendar.events.is_empty());
    for event in &calendar.events {
        exactly_once(&event.properties, &["UID", "DTSTAMP", "DTSTART"], "VEVENT");
        at_most_once(&event.properties, &["DTEND", "SEQUENCE", "SUMMARY", "DESCRIPTION", "RRULE"], "VEVENT");
        for alarm in &event.alarms {
            exactly_once(&alarm.properties, &["ACTION", "TRIGGER"], "VALARM");
        }
    }
    for zone in &calendar.timezones {
        exactly_once(&zone.properties, &["TZID"], "VTIMEZONE");
    }
}
