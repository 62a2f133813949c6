//! One week's critique as a facilitator changed it: moved (a holiday week), given a meeting
//! link, or led by a member of the cohort. The server checks a change with [`check_change`]
//! and writes it into the cohort document; every device reads it back into its blueprint
//! ([`super::blueprint::Blueprint::critique_weeks`]), so reminders, the calendar, feedback
//! windows and lateness follow on every device and on the server alike.

use chrono::offset::{LocalResult, TimeZone};
use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::blueprint::Blueprint;
use super::roster::Roster;

/// The longest meeting link kept.
pub const MAX_LINK_CHARS: usize = 500;
/// How far a week's critique may move from its regular slot: it stays that week's critique
/// (a holiday week moves by a few days), and its feedback window stays near the week's work.
pub const MAX_MOVE_DAYS: i64 = 7;

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CritiqueWeek {
    /// When the critique starts instead, as a wall-clock time in the cohort's zone; `None` keeps
    /// the program's weekly slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moved_to: Option<NaiveDateTime>,
    /// Where the cohort meets (a video call address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// The member leading this week's critique instead of the facilitator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<String>,
    /// Rises with every change of the week: the calendar's SEQUENCE for its event.
    pub revision: u32,
}

/// What a facilitator asks to change; `None` keeps a field as it is, an empty link or lead
/// removes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CritiqueWeekChange {
    pub week: u32,
    #[serde(default)]
    pub moved_to: Option<NaiveDateTime>,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub lead: Option<String>,
}

/// Checks a change against the program and the roster and returns the week as it becomes.
/// Errors name the field: a week outside the program, a time the clocks skip in the cohort's
/// zone, a date outside the program, a link that is not a web address, a lead who is not an
/// active member of the cohort.
pub fn check_change(
    blueprint: &Blueprint,
    roster: &Roster,
    change: &CritiqueWeekChange,
) -> Result<CritiqueWeek, DomainError> {
    let week = change.week;
    if !(1..=blueprint.weeks).contains(&week) {
        return Err(DomainError::invalid(
            "week",
            format!("week {week} has no critique (weeks 1..={} do)", blueprint.weeks),
        ));
    }
    let mut next = blueprint.critique_weeks.get(&week).cloned().unwrap_or_default();
    if let Some(local) = change.moved_to {
        // No fractions of a second: the document keeps whole seconds, and every reader must agree.
        let local = local.with_nanosecond(0).unwrap_or(local);
        starts_at(blueprint, local)?;
        let regular = blueprint.regular_critique_start(week);
        if let Some(regular) = regular
            && (local - regular).num_days().abs() > MAX_MOVE_DAYS
        {
            return Err(DomainError::invalid(
                "moved_to",
                format!("{local} is more than {MAX_MOVE_DAYS} days from week {week}'s critique ({regular})"),
            ));
        }
        next.moved_to = Some(local).filter(|at| Some(*at) != regular);
    }
    if let Some(link) = &change.link {
        next.link = checked_link(link)?;
    }
    if let Some(lead) = &change.lead {
        next.lead = match lead.trim() {
            "" => None,
            lead => match roster.member(lead) {
                Some(member) if member.left_on.is_none() => Some(lead.to_owned()),
                Some(_) => return Err(DomainError::invalid("lead", format!("{lead} has left the cohort"))),
                None => return Err(DomainError::invalid("lead", format!("{lead} is not a member of this cohort"))),
            },
        };
    }
    next.revision = next.revision.saturating_add(1);
    Ok(next)
}

/// The instant a moved critique starts: a wall-clock time that exists in the cohort's zone, on a
/// day of the program.
pub fn starts_at(blueprint: &Blueprint, local: NaiveDateTime) -> Result<DateTime<Utc>, DomainError> {
    let (first, last) = (blueprint.start_date, blueprint.end_date());
    if local.date() < first || local.date() > last {
        return Err(DomainError::invalid(
            "moved_to",
            format!("{} is outside the program ({first} to {last})", local.date()),
        ));
    }
    match blueprint.cohort_time_zone.from_local_datetime(&local) {
        LocalResult::Single(at) => Ok(at.with_timezone(&Utc)),
        // The first of the two: the earlier meeting is the one people read.
        LocalResult::Ambiguous(first, _) => Ok(first.with_timezone(&Utc)),
        LocalResult::None => Err(DomainError::invalid(
            "moved_to",
            format!("{local} does not exist in {}: the clocks skip it", blueprint.cohort_time_zone.name()),
        )),
    }
}

fn checked_link(link: &str) -> Result<Option<String>, DomainError> {
    let link = link.trim();
    if link.is_empty() {
        return Ok(None);
    }
    let web = link.starts_with("https://") || link.starts_with("http://");
    if !web || link.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::invalid("link", format!("{link:?} is not a web address (https://…)")));
    }
    if link.chars().count() > MAX_LINK_CHARS {
        return Err(DomainError::invalid("link", format!("longer than {MAX_LINK_CHARS} characters")));
    }
    Ok(Some(link.to_owned()))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::domain::roster::{Member, MemberRole};
    use crate::domain::time::DayStart;

    fn blueprint() -> Blueprint {
        // Berlin moves to summer time on Sunday 29 March 2026 at 02:00.
        Blueprint::default_90_days(NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(), chrono_tz::Europe::Berlin)
    }

    fn roster() -> Roster {
        let member = |id: &str, role, left_on| Member {
            user_id: id.into(),
            display_name: id.into(),
            role,
            time_zone: "Europe/Berlin".into(),
            day_start: DayStart::default(),
            joined_on: NaiveDate::from_ymd_opt(2026, 1, 2).unwrap(),
            left_on,
            paused_on: None,
        };
        Roster::new(vec![
            member("fac", MemberRole::Facilitator, None),
            member("ana", MemberRole::Learner, None),
            member("gone", MemberRole::Learner, NaiveDate::from_ymd_opt(2026, 1, 20)),
        ])
    }

    fn at(text: &str) -> NaiveDateTime {
        text.parse().unwrap()
    }

    #[test]
    fn a_moved_week_moves_its_start_its_window_and_nothing_else() {
        let mut b = blueprint();
        let regular_close = b.feedback_closes_at(3).unwrap();
        let change = CritiqueWeekChange { week: 3, moved_to: Some(at("2026-01-26T09:30:00")), ..Default::default() };
        let week = check_change(&b, &roster(), &change).unwrap();
        assert_eq!(week.revision, 1);
        b.critique_weeks.insert(3, week);
        let starts: Vec<_> = b.critique_starts().collect();
        let third = starts.iter().find(|(w, _)| *w == 3).unwrap().1;
        assert_eq!(third, "2026-01-26T08:30:00Z".parse::<DateTime<Utc>>().unwrap());
        assert_eq!(b.critique_date(3), NaiveDate::from_ymd_opt(2026, 1, 26));
        assert!(b.feedback_closes_at(3).unwrap() > regular_close);
        assert_eq!(b.critique_date(4), blueprint().critique_date(4));
        assert_eq!(b.regular_critique_start(3), blueprint().regular_critique_start(3));
    }

    #[test]
    fn a_time_the_clocks_skip_or_a_day_after_the_program_is_refused() {
        let b = blueprint();
        let gap = CritiqueWeekChange { week: 12, moved_to: Some(at("2026-03-29T02:30:00")), ..Default::default() };
        let err = check_change(&b, &roster(), &gap).unwrap_err().to_string();
        assert!(err.contains("moved_to") && err.contains("skip"), "{err}");
        let late = CritiqueWeekChange { week: 12, moved_to: Some(at("2026-04-02T17:00:00")), ..Default::default() };
        let err = check_change(&b, &roster(), &late).unwrap_err().to_string();
        assert!(err.contains("outside the program"), "{err}");
        let far = CritiqueWeekChange { week: 3, moved_to: Some(at("2026-02-20T17:00:00")), ..Default::default() };
        let err = check_change(&b, &roster(), &far).unwrap_err().to_string();
        assert!(err.contains("more than 7 days"), "{err}");
        let none = CritiqueWeekChange { week: 13, ..Default::default() };
        assert!(check_change(&b, &roster(), &none).unwrap_err().to_string().contains("week 13"));
    }

    #[test]
    fn the_lead_must_be_an_active_member_and_the_link_a_web_address() {
        let b = blueprint();
        let change = |lead: &str, link: &str| CritiqueWeekChange {
            week: 2,
            lead: Some(lead.into()),
            link: Some(link.into()),
            ..Default::default()
        };
        let week = check_change(&b, &roster(), &change("ana", "https://meet.example/abc")).unwrap();
        assert_eq!((week.lead.as_deref(), week.link.as_deref()), (Some("ana"), Some("https://meet.example/abc")));
        for (lead, link, field) in [
            ("zed", "https://x.example", "lead"),
            ("gone", "https://x.example", "lead"),
            ("ana", "javascript:alert(1)", "link"),
            ("ana", "https://a b", "link"),
        ] {
            let err = check_change(&b, &roster(), &change(lead, link)).unwrap_err().to_string();
            assert!(err.contains(field), "{lead} {link}: {err}");
        }
        let cleared = check_change(&b, &roster(), &change("", "")).unwrap();
        assert_eq!((cleared.lead, cleared.link), (None, None));
    }

    #[test]
    fn each_change_raises_the_revision() {
        let mut b = blueprint();
        let change = CritiqueWeekChange { week: 5, link: Some("https://m.example/1".into()), ..Default::default() };
        let first = check_change(&b, &roster(), &change).unwrap();
        b.critique_weeks.insert(5, first);
        let second = check_change(&b, &roster(), &change).unwrap();
        assert_eq!(second.revision, 2);
    }
}
