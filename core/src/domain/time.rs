//! The time model (architecture §3): learner-local days in IANA zones, a day-start offset, wall-clock
//! schedules that keep their local time across DST. Never 86 400 s arithmetic: DST days have 23 or 25
//! hours.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::DomainError;

/// Parses an IANA zone name ("Europe/Berlin"); anything else is a typed error naming the input.
pub fn parse_time_zone(name: &str) -> Result<Tz, DomainError> {
    name.trim().parse::<Tz>().map_err(|_| DomainError::InvalidTimeZone { name: name.to_owned() })
}

/// How far past midnight a learner's day starts. 3 h lets a 01:00 practice count for the evening
/// before. Kept between 0 and 6 hours: beyond that "the day" stops meaning what a learner thinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DayStart {
    minutes: u16,
}

impl DayStart {
    pub const MAX_MINUTES: u16 = 6 * 60;

    pub fn from_minutes(minutes: i64) -> Result<Self, DomainError> {
        if !(0..=i64::from(Self::MAX_MINUTES)).contains(&minutes) {
            return Err(DomainError::invalid(
                "day_start_offset_minutes",
                format!("{minutes} is outside 0..={} (0 to 6 hours)", Self::MAX_MINUTES),
            ));
        }
        Ok(Self { minutes: minutes as u16 })
    }

    pub fn minutes(self) -> u16 {
        self.minutes
    }

    /// The wall-clock time her day begins: midnight moved by the offset.
    pub fn wall_time(self) -> NaiveTime {
        NaiveTime::MIN + Duration::minutes(i64::from(self.minutes))
    }
}

/// The learner-local day an instant belongs to: the wall clock in `zone`, moved back by the
/// day-start offset. Wall-clock arithmetic, so 02:59 with a 3 h offset is "yesterday" on DST days too.
pub fn local_day(instant: DateTime<Utc>, zone: Tz, day_start: DayStart) -> NaiveDate {
    let wall = instant.with_timezone(&zone).naive_local();
    (wall - Duration::minutes(i64::from(day_start.minutes))).date()
}

/// The instant a wall-clock time on a date happens in a zone.
/// - In a DST gap (02:30 on a spring-forward night) it is moved forward to the first valid minute,
///   which is what phones do with alarms.
/// - In a DST overlap (01:30 on a fall-back night) the first occurrence is used.
pub fn resolve_wall_clock(date: NaiveDate, time: NaiveTime, zone: Tz) -> DateTime<Utc> {
    let mut wall = NaiveDateTime::new(date, time);
    // Gaps are at most a few hours long (the largest on record is 24 h, Samoa 2011); step in minutes
    // and give up after two days, which no zone needs.
    for _ in 0..(2 * 24 * 60) {
        match zone.from_local_datetime(&wall) {
            LocalResult::Single(at) => return at.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => wall += Duration::minutes(1),
        }
    }
    // Unreachable for real zones; fall back to reading the wall clock as UTC rather than panic.
    Utc.from_utc_datetime(&NaiveDateTime::new(date, time))
}

/// A wall-clock time of day ("07:30"), parsed strictly.
pub fn parse_wall_time(field: &str, text: &str) -> Result<NaiveTime, DomainError> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M")
        .map_err(|_| DomainError::invalid(field, format!("{text:?} is not a time of day like \"07:30\"")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn invalid_zone_is_named() {
        let err = parse_time_zone("Mars/Olympus_Mons").unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus_Mons"));
        assert_eq!(parse_time_zone("Europe/Berlin").unwrap(), chrono_tz::Europe::Berlin);
    }

    #[test]
    fn day_start_offset_moves_late_night_to_the_previous_day() {
        let tz = chrono_tz::Europe::Berlin;
        // 01:00 Berlin on 10 March = 00:00 UTC.
        let at = utc("2026-03-10T00:00:00Z");
        assert_eq!(local_day(at, tz, DayStart::default()), NaiveDate::from_ymd_opt(2026, 3, 10).unwrap());
        let three_hours = DayStart::from_minutes(180).unwrap();
        assert_eq!(local_day(at, tz, three_hours), NaiveDate::from_ymd_opt(2026, 3, 9).unwrap());
        assert!(DayStart::from_minutes(-1).is_err());
        assert!(DayStart::from_minutes(7 * 60).is_err());
    }

    #[test]
    fn day_start_offset_counts_wall_clock_hours_on_dst_nights() {
        let tz = chrono_tz::Europe::Berlin;
        let three_hours = DayStart::from_minutes(180).unwrap();
        // Spring forward 29 March 2026 02:00 -> 03:00. 03:00 CEST (01:00 UTC) starts the new day...
        assert_eq!(
            local_day(utc("2026-03-29T01:00:00Z"), tz, three_hours),
            NaiveDate::from_ymd_opt(2026, 3, 29).unwrap()
        );
        // ...and one minute earlier (01:59 CET = 00:59 UTC) is still the 28th.
        assert_eq!(
            local_day(utc("2026-03-29T00:59:00Z"), tz, three_hours),
            NaiveDate::from_ymd_opt(2026, 3, 28).unwrap()
        );
    }

    #[test]
    fn wall_clock_resolution_handles_gaps_and_overlaps() {
        let tz = chrono_tz::America::New_York;
        let spring = NaiveDate::from_ymd_opt(2026, 3, 8).unwrap();
        let t0230 = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        // 02:30 does not exist; the first valid minute is 03:00 EDT = 07:00 UTC.
        assert_eq!(resolve_wall_clock(spring, t0230, tz), utc("2026-03-08T07:00:00Z"));
        let fall = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap();
        let t0130 = NaiveTime::from_hms_opt(1, 30, 0).unwrap();
        // 01:30 happens twice; the first is 01:30 EDT = 05:30 UTC.
        assert_eq!(resolve_wall_clock(fall, t0130, tz), utc("2026-11-01T05:30:00Z"));
        // 07:30 stays 07:30 local on both sides of the change.
        let t0730 = NaiveTime::from_hms_opt(7, 30, 0).unwrap();
        assert_eq!(resolve_wall_clock(spring.pred_opt().unwrap(), t0730, tz), utc("2026-03-07T12:30:00Z"));
        assert_eq!(resolve_wall_clock(spring, t0730, tz), utc("2026-03-08T11:30:00Z"));
    }

    #[test]
    fn wall_time_parsing_is_strict() {
        assert!(parse_wall_time("practice_time", "7:30").is_ok());
        let err = parse_wall_time("practice_time", "25:00").unwrap_err();
        assert!(err.to_string().contains("practice_time"));
    }
}
