//! A baseline from outside: per-learner activity of an earlier program (self-paced, webinars),
//! imported so a report can state the cohorts' uplift against it. Figures come from the same
//! day-window functions as every cohort's ([`super::cohort_metrics`]).
//!
//! The file is CSV with a header naming exactly these columns, in any order:
//! `learner` (an id, unique), `start_date` (YYYY-MM-DD, the learner's program day 1) and
//! `active_dates` (the days she was active, YYYY-MM-DD separated by `;`, none for an empty field).

use std::collections::{BTreeSet, HashSet};

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::cohort_metrics::{ACTIVITY_DAYS, ENGAGEMENT_DAYS, active_between, engaged_on};
use super::statistics::{BOOTSTRAP_SEED, Estimate, mean_estimate, uplift_estimate, wilson};

pub const COLUMNS: [&str; 3] = ["learner", "start_date", "active_dates"];
/// The most learners one baseline holds.
pub const MAX_LEARNERS: usize = 100_000;
/// Fewer learners than this in a group and the report says nothing can be concluded.
pub const MIN_GROUP: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineLearner {
    pub learner: String,
    pub start_date: NaiveDate,
    pub active_dates: Vec<NaiveDate>,
}

impl BaselineLearner {
    /// Whether she was active on each program day (index 1..=`days`; index 0 unused).
    pub fn active_days(&self, days: u32) -> Vec<bool> {
        let mut active = vec![false; days as usize + 1];
        for date in &self.active_dates {
            let day = (*date - self.start_date).num_days() + 1;
            if let Ok(day) = usize::try_from(day)
                && (1..active.len()).contains(&day)
            {
                active[day] = true;
            }
        }
        active
    }
}

/// What is wrong with a baseline file: the line (1 = the header) and the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: field `{field}`: {problem}")]
pub struct BaselineProblem {
    pub line: u64,
    pub field: String,
    pub problem: String,
}

fn problem(line: u64, field: &str, problem: impl Into<String>) -> BaselineProblem {
    BaselineProblem { line, field: field.to_owned(), problem: problem.into() }
}

/// Reads a baseline from a CSV file's header and records (each with its line number).
pub fn from_records(
    header: &[String],
    records: &[(u64, Vec<String>)],
) -> Result<Vec<BaselineLearner>, BaselineProblem> {
    for (index, name) in header.iter().enumerate() {
        let name = name.trim();
        if !COLUMNS.contains(&name) {
            return Err(problem(1, name, format!("unknown column (the columns are {})", COLUMNS.join(", "))));
        }
        if header[..index].iter().any(|earlier| earlier.trim() == name) {
            return Err(problem(1, name, "column named twice"));
        }
    }
    let column = |name: &str| header.iter().position(|h| h.trim() == name);
    let (Some(learner_at), Some(start_at), Some(dates_at)) =
        (column("learner"), column("start_date"), column("active_dates"))
    else {
        let missing = COLUMNS.iter().find(|c| column(c).is_none()).copied().unwrap_or_default();
        return Err(problem(1, missing, "missing column"));
    };
    if records.is_empty() {
        return Err(problem(1, "learner", "the file holds no learners"));
    }
    if records.len() > MAX_LEARNERS {
        return Err(problem(1, "learner", format!("more than {MAX_LEARNERS} learners")));
    }
    let mut seen = HashSet::new();
    let mut learners = Vec::with_capacity(records.len());
    for (line, fields) in records {
        let line = *line;
        if fields.len() != header.len() {
            return Err(problem(
                line,
                "learner",
                format!("{} fields where the header has {}", fields.len(), header.len()),
            ));
        }
        let learner = fields[learner_at].trim().to_owned();
        if learner.is_empty() || learner.chars().count() > 128 {
            return Err(problem(line, "learner", "must be 1–128 characters"));
        }
        if !seen.insert(learner.clone()) {
            return Err(problem(line, "learner", format!("{learner:?} appears twice")));
        }
        let date = |field: &str, text: &str| {
            NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
                .map_err(|_| problem(line, field, format!("{text:?} is not a date like 2025-09-01")))
        };
        let start_date = date("start_date", &fields[start_at])?;
        let mut active: BTreeSet<NaiveDate> = BTreeSet::new();
        for text in fields[dates_at].split(';').filter(|t| !t.trim().is_empty()) {
            let day = date("active_dates", text)?;
            if day < start_date {
                return Err(problem(line, "active_dates", format!("{day} is before the learner's start {start_date}")));
            }
            active.insert(day);
        }
        learners.push(BaselineLearner { learner, start_date, active_dates: active.into_iter().collect() });
    }
    Ok(learners)
}

/// A baseline's figures with their intervals, and each cohort's uplift against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineComparison {
    pub learners: u32,
    /// Engagement at days 7, 21, 60 and 90: the share active in the 7 days up to that day.
    pub engagement: Vec<(u32, Option<Estimate>)>,
    /// Active days in days 1–60 per learner.
    pub mean_active_days_60: Option<Estimate>,
    /// Per cohort: its 60-day activity ÷ the baseline's − 1, over the days the cohort has had
    /// (both sides counted over the same program days).
    pub uplift: Vec<CohortUplift>,
    /// What the numbers allow one to say, in plain words.
    pub conclusion: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortUplift {
    pub cohort_id: String,
    /// The program days both sides are counted over (1 to this; at most 60).
    pub days: u32,
    pub uplift: Option<Estimate>,
}

/// A cohort as the comparison needs it: its learners enrolled at the start, each with the
/// program days she was active, and how far the cohort has come.
pub struct CohortActivity<'a> {
    pub cohort_id: &'a str,
    pub program_day: u32,
    pub active_days: &'a [Vec<bool>],
}

pub fn compare(baseline: &[BaselineLearner], cohorts: &[CohortActivity<'_>]) -> BaselineComparison {
    let days: Vec<Vec<bool>> = baseline.iter().map(|l| l.active_days(ENGAGEMENT_DAYS[3].max(ACTIVITY_DAYS))).collect();
    let engagement = ENGAGEMENT_DAYS
        .iter()
        .map(|&day| (day, wilson(days.iter().filter(|d| engaged_on(d, day)).count() as u32, days.len() as u32)))
        .collect();
    let uplift = uplift_against(&days, ACTIVITY_DAYS, cohorts);
    BaselineComparison {
        learners: baseline.len() as u32,
        engagement,
        mean_active_days_60: mean_estimate(&active_in(&days, ACTIVITY_DAYS), BOOTSTRAP_SEED),
        conclusion: conclusion("the baseline", baseline.len(), cohorts, &uplift),
        uplift,
    }
}

/// Each learner's active days in program days 1..=`last`.
pub(super) fn active_in(days: &[Vec<bool>], last: u32) -> Vec<f64> {
    days.iter().map(|d| f64::from(active_between(d, 1, last))).collect()
}

/// Each group's 60-day activity against a reference group's, both counted over the program days
/// the group (and the reference, up to `reference_day`) has had.
pub(super) fn uplift_against(
    reference: &[Vec<bool>],
    reference_day: u32,
    groups: &[CohortActivity<'_>],
) -> Vec<CohortUplift> {
    groups
        .iter()
        .map(|c| {
            let last = c.program_day.min(reference_day).min(ACTIVITY_DAYS);
            let estimate = (last > 0)
                .then(|| uplift_estimate(&active_in(c.active_days, last), &active_in(reference, last), BOOTSTRAP_SEED))
                .flatten();
            CohortUplift { cohort_id: c.cohort_id.to_owned(), days: last, uplift: estimate }
        })
        .collect()
}

/// What the uplifts against `reference` ("the baseline", "the control arm") allow one to say.
pub(super) fn conclusion(
    reference: &str,
    reference_size: usize,
    groups: &[CohortActivity<'_>],
    uplift: &[CohortUplift],
) -> String {
    let small: Vec<&str> = groups.iter().filter(|c| c.active_days.len() < MIN_GROUP).map(|c| c.cohort_id).collect();
    if reference_size < MIN_GROUP || !small.is_empty() {
        return format!(
            "Too few learners to conclude anything (fewer than {MIN_GROUP} in {}): read the figures as anecdotes.",
            if reference_size < MIN_GROUP { reference.to_owned() } else { small.join(", ") }
        );
    }
    let words: Vec<String> = uplift
        .iter()
        .map(|u| {
            let Some(e) = u.uplift else { return format!("{}: no figure yet", u.cohort_id) };
            let figures = format!(
                "{:+.0} %, 95 % interval {:+.0} to {:+.0} %, days 1–{}",
                e.value * 100.0,
                e.low * 100.0,
                e.high * 100.0,
                u.days
            );
            if e.low > 0.0 {
                format!("{} was more active than {reference} ({figures})", u.cohort_id)
            } else if e.high < 0.0 {
                format!("{} was less active than {reference} ({figures})", u.cohort_id)
            } else {
                format!("{}: no difference from {reference} beyond chance ({figures})", u.cohort_id)
            }
        })
        .collect();
    format!("{}.", words.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(lines: &[&str]) -> (Vec<String>, Vec<(u64, Vec<String>)>) {
        let split = |l: &str| l.split(',').map(str::to_owned).collect::<Vec<_>>();
        let header = split(lines[0]);
        let rows = lines[1..].iter().enumerate().map(|(i, l)| (i as u64 + 2, split(l))).collect();
        (header, rows)
    }

    #[test]
    fn a_baseline_reads_in_any_column_order_and_bad_lines_name_their_field() {
        let (header, rows) =
            records(&["start_date,learner,active_dates", "2025-09-01,p1,2025-09-01;2025-09-03", "2025-09-01,p2,"]);
        let learners = from_records(&header, &rows).unwrap();
        assert_eq!(learners[0].active_dates.len(), 2);
        assert!(learners[1].active_dates.is_empty());
        let days = learners[0].active_days(90);
        assert!(days[1] && days[3] && !days[2]);

        for (lines, line, field) in [
            (&["learner,start_date,active_dates,team", "p1,2025-09-01,,x"][..], 1, "team"),
            (&["learner,start_date", "p1,2025-09-01"][..], 1, "active_dates"),
            (&["learner,start_date,active_dates", "p1,2025-09-01,", "p1,2025-09-02,"][..], 3, "learner"),
            (&["learner,start_date,active_dates", "p1,01/09/2025,"][..], 2, "start_date"),
            (&["learner,start_date,active_dates", "p1,2025-09-01,2025-08-31"][..], 2, "active_dates"),
            (&["learner,start_date,active_dates", "p1,2025-09-01,2025-13-01"][..], 2, "active_dates"),
        ] {
            let (header, rows) = records(lines);
            let err = from_records(&header, &rows).unwrap_err();
            assert_eq!((err.line, err.field.as_str()), (line, field), "{err}");
        }
    }

    #[test]
    fn too_few_learners_say_so_and_a_clear_uplift_says_which_way() {
        let start = NaiveDate::from_ymd_opt(2025, 9, 1).unwrap();
        let learner = |i: usize, active: u32| BaselineLearner {
            learner: format!("p{i}"),
            start_date: start,
            active_dates: (0..active).map(|d| start + chrono::Days::new(u64::from(d) * 2)).collect(),
        };
        let baseline: Vec<BaselineLearner> = (0..30).map(|i| learner(i, 10 + (i % 5) as u32)).collect();
        let cohort_days: Vec<Vec<bool>> = (0..12).map(|i| learner(i, 25 + (i % 4) as u32).active_days(90)).collect();
        let cohorts = [CohortActivity { cohort_id: "c1", program_day: 90, active_days: &cohort_days }];
        let compared = compare(&baseline, &cohorts);
        let uplift = compared.uplift[0].uplift.unwrap();
        assert!(uplift.low > 0.0, "{uplift:?}");
        assert!(compared.conclusion.contains("more active"), "{}", compared.conclusion);
        assert_eq!(compared.engagement.len(), 4);

        let few = compare(&baseline[..5], &cohorts);
        assert!(few.conclusion.starts_with("Too few learners"), "{}", few.conclusion);
    }
}
