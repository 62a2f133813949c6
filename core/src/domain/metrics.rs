//! Learner metrics, exactly as architecture §5 defines them. Windows are learner-local days, inclusive,
//! ending on the reference date.

use chrono::{Days, NaiveDate};
use serde::{Deserialize, Serialize};

/// One learner-local day with at least one completed practice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DayActivity {
    pub date: NaiveDate,
    pub practices: u32,
    pub seconds: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LearnerMetrics {
    pub reference_date: NaiveDate,
    /// Consecutive active days ending on the reference date, or on the day before if the reference
    /// date has no practice yet.
    pub streak: u32,
    pub practised_today: bool,
    pub active_days_7: u32,
    pub active_days_14: u32,
    pub active_days_30: u32,
    pub minutes_7: u32,
    pub minutes_30: u32,
    pub minutes_total: u32,
    pub practices_total: u32,
}

/// Computes the metrics from active days in any order. Days after the reference date (logged while
/// the device clock was wrong, say) are ignored.
pub fn learner_metrics(days: &[DayActivity], reference: NaiveDate) -> LearnerMetrics {
    let mut sorted: Vec<&DayActivity> = days.iter().filter(|d| d.date <= reference && d.practices > 0).collect();
    sorted.sort_unstable_by_key(|d| std::cmp::Reverse(d.date));
    sorted.dedup_by_key(|d| d.date);

    let window_start = |len: u64| reference.checked_sub_days(Days::new(len - 1)).unwrap_or(NaiveDate::MIN);
    let in_window = |len: u64| {
        let start = window_start(len);
        sorted.iter().take_while(move |d| d.date >= start)
    };
    let minutes = |seconds: u64| u32::try_from(seconds / 60).unwrap_or(u32::MAX);

    let practised_today = sorted.first().is_some_and(|d| d.date == reference);
    LearnerMetrics {
        reference_date: reference,
        streak: streak(sorted.iter().map(|d| d.date), reference),
        practised_today,
        active_days_7: in_window(7).count() as u32,
        active_days_14: in_window(14).count() as u32,
        active_days_30: in_window(30).count() as u32,
        minutes_7: minutes(in_window(7).map(|d| d.seconds).sum()),
        minutes_30: minutes(in_window(30).map(|d| d.seconds).sum()),
        minutes_total: minutes(sorted.iter().map(|d| d.seconds).sum()),
        practices_total: sorted.iter().map(|d| d.practices).sum(),
    }
}

/// The streak over distinct active dates given newest first, all on or before `reference`.
pub fn streak(dates_newest_first: impl IntoIterator<Item = NaiveDate>, reference: NaiveDate) -> u32 {
    let mut dates = dates_newest_first.into_iter().peekable();
    let mut expected = match dates.peek() {
        Some(&first) if first == reference => reference,
        Some(&first) if Some(first) == reference.pred_opt() => first,
        _ => return 0,
    };
    let mut count = 0;
    for date in dates {
        if date != expected {
            break;
        }
        count += 1;
        match expected.pred_opt() {
            Some(previous) => expected = previous,
            None => break,
        }
    }
    count
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
    }

    fn active(dates: &[u32]) -> Vec<DayActivity> {
        dates.iter().map(|&day| DayActivity { date: d(day), practices: 1, seconds: 600 }).collect()
    }

    #[test]
    fn streak_ends_today_or_yesterday() {
        assert_eq!(learner_metrics(&active(&[8, 9, 10]), d(10)).streak, 3);
        // Today not practised yet: the streak from yesterday still counts.
        assert_eq!(learner_metrics(&active(&[8, 9]), d(10)).streak, 2);
        // Missed yesterday and today: broken.
        assert_eq!(learner_metrics(&active(&[7, 8]), d(10)).streak, 0);
        assert_eq!(learner_metrics(&active(&[1, 2, 4, 5]), d(5)).streak, 2);
        assert_eq!(learner_metrics(&[], d(5)).streak, 0);
    }

    #[test]
    fn windows_are_inclusive_and_end_on_the_reference_date() {
        // Active on the 1st..=20th; reference the 20th: the 7-day window is 14..=20.
        let days: Vec<u32> = (1..=20).collect();
        let m = learner_metrics(&active(&days), d(20));
        assert_eq!((m.active_days_7, m.active_days_14, m.active_days_30), (7, 14, 20));
        assert_eq!((m.minutes_7, m.minutes_30, m.minutes_total, m.practices_total), (70, 200, 200, 20));
        // A day exactly 7 days back (the 13th) is outside the 7-day window.
        let edge = learner_metrics(&active(&[13, 14]), d(20));
        assert_eq!(edge.active_days_7, 1);
    }

    #[test]
    fn future_days_from_a_wrong_clock_are_ignored() {
        let m = learner_metrics(&active(&[9, 10, 25]), d(10));
        assert_eq!((m.streak, m.active_days_7, m.practices_total), (2, 2, 2));
        assert!(m.practised_today);
    }

    #[test]
    fn several_practices_on_one_day_make_one_active_day() {
        let days = [DayActivity { date: d(10), practices: 3, seconds: 1800 }];
        let m = learner_metrics(&days, d(10));
        assert_eq!((m.active_days_7, m.practices_total, m.minutes_7), (1, 3, 30));
    }
}
