//! What the server believes of a practice log a device uploads. A device writes every field of
//! its logs, so a figure built on them is only as good as these rules (README, operators):
//!
//! 1. Its day matches its start: `local_date` is the date of `started_at` in the log's own time
//!    zone, or the day before when the practice started within the longest day-start offset (6 h)
//!    after midnight.
//! 2. Its day lies in the program and not ahead of the server: not before the program's first
//!    day (orientation) and not after the server's UTC date + 1 (every zone's today).
//! 3. A correction voids only an existing log of the same person.
//! 4. Practice recorded offline arrives within the back-fill window (14 days by default,
//!    `serve --backfill-days`): a log whose day is older is kept but marked a late arrival,
//!    shown in reports and left out of every figure.
//!
//! Rules 1–3 refuse the log alone (the rest of the sync stands) with a reason the device keeps.

use chrono::{DateTime, Days, Duration, NaiveDate};
use microcohort_core::domain::time::DayStart;
use microcohort_core::sync::wire::{RefusedLog, WireLog};

/// The back-fill window; `None` accepts any age (the demo replays past weeks in seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogRules {
    pub backfill_days: Option<u32>,
}

impl Default for LogRules {
    fn default() -> Self {
        Self { backfill_days: Some(14) }
    }
}

/// What happens to one uploaded log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogVerdict {
    Keep { late_arrival: bool },
    Refuse(RefusedLog),
}

/// Rules 1, 2 and 4 (rule 3 needs the stored logs: [`refuse_correction`]).
pub fn judge(log: &WireLog, program_start: NaiveDate, server_today: NaiveDate, rules: &LogRules) -> LogVerdict {
    let refuse = |reason: &str, detail: String| {
        LogVerdict::Refuse(RefusedLog { id: log.id.clone(), reason: reason.into(), detail })
    };
    let (Ok(day), Ok(zone), Some(started)) = (
        log.local_date.parse::<NaiveDate>(),
        log.time_zone.parse::<chrono_tz::Tz>(),
        DateTime::from_timestamp_millis(log.started_at),
    ) else {
        return refuse("malformed", "local_date, time_zone or started_at cannot be read".into());
    };
    let wall = started.with_timezone(&zone).naive_local();
    let latest = wall.date();
    let earliest = (wall - Duration::minutes(i64::from(DayStart::MAX_MINUTES))).date();
    if day < earliest || day > latest {
        return refuse("date_mismatch", format!("a practice started at {wall} ({}) is not on {day}", log.time_zone));
    }
    if day < program_start {
        return refuse("before_program", format!("{day} is before the program's first day, {program_start}"));
    }
    let tomorrow = server_today + Days::new(1);
    if day > tomorrow {
        return refuse("in_the_future", format!("{day} is after {tomorrow}, the latest day anywhere now"));
    }
    let late_arrival = rules.backfill_days.is_some_and(|days| day < server_today - Days::new(u64::from(days)));
    LogVerdict::Keep { late_arrival }
}

/// Rule 3: `owner` is the user of the log `corrects` names (`None`: no such log).
pub fn refuse_correction(log: &WireLog, user_id: &str, owner: Option<&str>) -> Option<RefusedLog> {
    let corrected = log.corrects.as_deref()?;
    let detail = match owner {
        Some(owner) if owner == user_id => return None,
        Some(_) => format!("log {corrected} is someone else's; only its author corrects it"),
        None => format!("there is no log {corrected} to correct"),
    };
    Some(RefusedLog { id: log.id.clone(), reason: "correction_not_allowed".into(), detail })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn log(local_date: &str, started: DateTime<Utc>, zone: &str) -> WireLog {
        WireLog {
            id: "l1".into(),
            user_id: String::new(),
            program_id: "p".into(),
            pack_id: "pack".into(),
            pack_version: 1,
            prompt_id: "x".into(),
            started_at: started.timestamp_millis(),
            time_zone: zone.into(),
            local_date: local_date.into(),
            status: "completed".into(),
            duration_secs: Some(600),
            transfer_kind: None,
            corrects: None,
            recorded_at: started.timestamp_millis(),
            sealed: None,
            late_arrival: false,
        }
    }

    fn date(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn reason(verdict: LogVerdict) -> String {
        match verdict {
            LogVerdict::Refuse(refused) => refused.reason,
            keep => panic!("kept: {keep:?}"),
        }
    }

    const START: &str = "2026-03-01";
    const TODAY: &str = "2026-04-20";

    #[test]
    fn a_day_matches_its_start_in_the_logs_own_zone_within_the_day_start_offset() {
        let rules = LogRules::default();
        let judge = |l: &WireLog| judge(l, date(START), date(TODAY), &rules);
        // 23:30 UTC on the 14th is 01:30 on the 15th in Berlin: the 15th, or the 14th for a late owl.
        let started = Utc.with_ymd_and_hms(2026, 4, 14, 23, 30, 0).unwrap();
        assert_eq!(judge(&log("2026-04-15", started, "Europe/Berlin")), LogVerdict::Keep { late_arrival: false });
        assert_eq!(judge(&log("2026-04-14", started, "Europe/Berlin")), LogVerdict::Keep { late_arrival: false });
        assert_eq!(reason(judge(&log("2026-04-13", started, "Europe/Berlin"))), "date_mismatch");
        assert_eq!(reason(judge(&log("2026-04-16", started, "Europe/Berlin"))), "date_mismatch");
        // At noon there is no day-start offset that reaches back a day.
        let noon = Utc.with_ymd_and_hms(2026, 4, 14, 12, 0, 0).unwrap();
        assert_eq!(reason(judge(&log("2026-04-13", noon, "UTC"))), "date_mismatch");
    }

    #[test]
    fn a_day_lies_in_the_program_and_not_ahead_of_every_zone() {
        let rules = LogRules::default();
        let judge = |l: &WireLog| judge(l, date(START), date(TODAY), &rules);
        let before = Utc.with_ymd_and_hms(2026, 2, 28, 12, 0, 0).unwrap();
        assert_eq!(reason(judge(&log("2026-02-28", before, "UTC"))), "before_program");
        // Kiritimati is 14 h ahead: its tomorrow is fine, the day after is not.
        let kiritimati = Utc.with_ymd_and_hms(2026, 4, 20, 12, 0, 0).unwrap();
        assert!(matches!(judge(&log("2026-04-21", kiritimati, "Pacific/Kiritimati")), LogVerdict::Keep { .. }));
        let later = Utc.with_ymd_and_hms(2026, 4, 22, 12, 0, 0).unwrap();
        assert_eq!(reason(judge(&log("2026-04-22", later, "UTC"))), "in_the_future");
    }

    #[test]
    fn practice_older_than_the_backfill_window_is_kept_as_a_late_arrival() {
        let at = |d: u32| Utc.with_ymd_and_hms(2026, 4, d, 9, 0, 0).unwrap();
        let default = LogRules::default();
        assert_eq!(
            judge(&log("2026-04-06", at(6), "UTC"), date(START), date(TODAY), &default),
            LogVerdict::Keep { late_arrival: false }
        );
        assert_eq!(
            judge(&log("2026-04-05", at(5), "UTC"), date(START), date(TODAY), &default),
            LogVerdict::Keep { late_arrival: true }
        );
        let unbounded = LogRules { backfill_days: None };
        assert_eq!(
            judge(&log("2026-04-05", at(5), "UTC"), date(START), date(TODAY), &unbounded),
            LogVerdict::Keep { late_arrival: false }
        );
    }

    #[test]
    fn a_correction_voids_only_an_existing_log_of_the_same_person() {
        let mut correction = log("2026-04-14", Utc.with_ymd_and_hms(2026, 4, 14, 9, 0, 0).unwrap(), "UTC");
        assert_eq!(refuse_correction(&correction, "ada", None), None, "not a correction");
        correction.corrects = Some("old".into());
        assert_eq!(refuse_correction(&correction, "ada", Some("ada")), None);
        assert_eq!(refuse_correction(&correction, "fay", Some("ada")).unwrap().reason, "correction_not_allowed");
        assert!(refuse_correction(&correction, "ada", None).unwrap().detail.contains("no log old"));
    }
}
