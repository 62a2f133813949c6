//! VTIMEZONE components built from the tz database that chrono-tz compiles in.
//!
//! Every offset change in the covered range becomes one STANDARD or DAYLIGHT observance with an
//! explicit DTSTART (no RRULE), which any RFC 5545 reader understands and which stays exact even
//! for zones whose rules changed over the years.

use chrono::{DateTime, Duration, FixedOffset, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::{OffsetComponents, OffsetName, Tz};

/// One VTIMEZONE block (CRLF line endings) describing `zone` between two UTC date-times.
pub fn vtimezone(zone: Tz, from: NaiveDateTime, until: NaiveDateTime) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push_str("\r\n");
    };
    line("BEGIN:VTIMEZONE".into());
    line(format!("TZID:{}", zone.name()));

    let start = Utc.from_utc_datetime(&from);
    let initial = observance(zone, start);
    write_observance(&mut line, &initial, &initial, start);
    let mut current = initial;
    for at in transitions(zone, start, Utc.from_utc_datetime(&until)) {
        let next = observance(zone, at);
        write_observance(&mut line, &current, &next, at);
        current = next;
    }
    line("END:VTIMEZONE".into());
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Observance {
    offset: FixedOffset,
    daylight: bool,
    name: String,
}

fn observance(zone: Tz, at: DateTime<Utc>) -> Observance {
    let offset = zone.offset_from_utc_datetime(&at.naive_utc());
    Observance {
        offset: offset.fix(),
        daylight: !offset.dst_offset().is_zero(),
        name: offset.abbreviation().unwrap_or_default().to_owned(),
    }
}

/// The instants (to the minute) at which the zone's offset or name changes.
fn transitions(zone: Tz, from: DateTime<Utc>, until: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    // No zone changes offset twice within six hours, so sampling every six hours finds every
    // change; a binary search then pins it to the second.
    let step = Duration::hours(6);
    let mut found = Vec::new();
    let mut before = from;
    let mut seen = observance(zone, from);
    while before < until {
        let after = before + step;
        let now = observance(zone, after);
        if now != seen {
            // Offsets change on whole seconds: search seconds, not fractions of them.
            let (mut lo, mut hi) = (before.timestamp(), after.timestamp());
            while hi - lo > 1 {
                let mid = lo + (hi - lo) / 2;
                let at = DateTime::from_timestamp(mid, 0).unwrap_or(before);
                if observance(zone, at) == seen { lo = mid } else { hi = mid }
            }
            let hi = DateTime::from_timestamp(hi, 0).unwrap_or(after);
            found.push(hi);
            seen = now;
        }
        before = after;
    }
    found
}

fn write_observance(line: &mut impl FnMut(String), from: &Observance, to: &Observance, at: DateTime<Utc>) {
    let kind = if to.daylight { "DAYLIGHT" } else { "STANDARD" };
    // DTSTART is the local time of the change, read on the clock in force before it.
    let local = at.with_timezone(&from.offset).naive_local();
    line(format!("BEGIN:{kind}"));
    line(format!("DTSTART:{}", local.format("%Y%m%dT%H%M%S")));
    line(format!("TZOFFSETFROM:{}", offset_text(from.offset)));
    line(format!("TZOFFSETTO:{}", offset_text(to.offset)));
    if !to.name.is_empty() {
        line(format!("TZNAME:{}", to.name));
    }
    line(format!("END:{kind}"));
}

fn offset_text(offset: FixedOffset) -> String {
    let secs = offset.local_minus_utc();
    let sign = if secs < 0 { '-' } else { '+' };
    let secs = secs.unsigned_abs();
    let (hours, minutes, rest) = (secs / 3600, secs % 3600 / 60, secs % 60);
    if rest == 0 { format!("{sign}{hours:02}{minutes:02}") } else { format!("{sign}{hours:02}{minutes:02}{rest:02}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(y0: i32, y1: i32) -> (NaiveDateTime, NaiveDateTime) {
        let at = |y| chrono::NaiveDate::from_ymd_opt(y, 1, 1).unwrap().and_hms_opt(0, 0, 0).unwrap();
        (at(y0), at(y1))
    }

    #[test]
    fn berlin_2026_has_both_changes_at_the_right_local_times() {
        let (from, until) = range(2026, 2027);
        let text = vtimezone(chrono_tz::Europe::Berlin, from, until);
        assert!(
            text.contains(
                "BEGIN:DAYLIGHT\r\nDTSTART:20260329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "BEGIN:STANDARD\r\nDTSTART:20261025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET"
            ),
            "{text}"
        );
    }

    #[test]
    fn zones_without_dst_and_odd_offsets() {
        let (from, until) = range(2026, 2027);
        let tokyo = vtimezone(chrono_tz::Asia::Tokyo, from, until);
        assert_eq!(tokyo.matches("BEGIN:STANDARD").count(), 1);
        assert!(tokyo.contains("TZOFFSETTO:+0900"));
        let kathmandu = vtimezone(chrono_tz::Asia::Kathmandu, from, until);
        assert!(kathmandu.contains("TZOFFSETTO:+0545"));
        // Lord Howe shifts by half an hour.
        let lord_howe = vtimezone(chrono_tz::Australia::Lord_Howe, from, until);
        assert!(lord_howe.contains("TZOFFSETFROM:+1100\r\nTZOFFSETTO:+1030"), "{lord_howe}");
    }
}
