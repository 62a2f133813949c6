//! Cohort metrics, exactly as architecture §5 defines them: one implementation, fed by the facilitator's
//! device (from its projections) and by the server (from its report tables).
//!
//! Choices where the definitions are silent (documented in the README's facilitator section):
//! - a member's windows end on *their* local today (current zone and day start, from the roster,
//!   computed with the same `local_day` as her phone); the cohort's program day is the cohort zone's;
//! - after the program's last day every window ends on that day, so a finished cohort keeps its
//!   final figures;
//! - "no active day in the last 7 days" flags a member only once they have been in the program
//!   for 7 days, so nobody is at risk on day 1;
//! - reviews owed are counted for the current and the previous program week; one is overdue
//!   once that week's feedback window has closed;
//! - "enrolled at program start" means joined by the first day of week 1: orientation is when
//!   people join.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Days, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::arms::Arm;
use super::blueprint::Blueprint;
use super::metrics::{DayActivity, learner_metrics};
use super::review::assign_reviews_on;
use super::roles::{WeeklyRole, roles_for_week};
use super::roster::{MemberRole, Roster, SizeStatus};
use super::time::{local_day, parse_time_zone};

/// The program days at which engagement is reported.
pub const ENGAGEMENT_DAYS: [u32; 4] = [7, 21, 60, 90];
/// The last program day counted by "60-day activity".
pub const ACTIVITY_DAYS: u32 = 60;

/// A member's practice, by learner-local day.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberActivity {
    pub user_id: String,
    pub days: Vec<DayActivity>,
    /// Completed practices tagged "applied at work" or "added to portfolio".
    pub transfer_evidence: u32,
    /// Logs that arrived after the back-fill window for their day: shown, never counted.
    #[serde(default)]
    pub late_arrivals: u32,
}

/// A submission shared for critique (retracted ones left out by the feeder).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmissionFact {
    pub week: u32,
    pub key: String,
    pub author: String,
    /// "practice", "capstone" or "reflection".
    #[serde(default)]
    pub kind: String,
    /// The prompt it answers, and the practice log it shares (a shared practice).
    #[serde(default)]
    pub prompt_id: Option<String>,
    #[serde(default)]
    pub practice_log: Option<String>,
}

/// One piece of feedback (retracted ones left out by the feeder).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackFact {
    pub week: u32,
    pub author: String,
    pub submission_author: String,
    /// The submission's key.
    #[serde(default)]
    pub submission: String,
    pub has_suggestion: bool,
    /// Rubric criteria of the submission's prompt the feedback addresses, and how many there are
    /// (0 when the submission has no prompt with a rubric).
    pub criteria_addressed: u32,
    pub rubric_size: u32,
    /// The helpfulness rating (1–5) the submission's author gave, if any.
    pub helpfulness: Option<u8>,
}

/// A practice log as relayed to facilitators (no reflection): the input of [`activity_from_logs`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFact {
    pub id: String,
    pub user_id: String,
    pub local_date: NaiveDate,
    pub completed: bool,
    pub duration_secs: u64,
    pub transfer: bool,
    /// The log this one voids (a correction), if any.
    pub corrects: Option<String>,
    /// Arrived after the back-fill window for its day (set by the server).
    #[serde(default)]
    pub late_arrival: bool,
    /// The prompt practised and its pack's version (for prompt analytics).
    #[serde(default)]
    pub prompt_id: String,
    #[serde(default)]
    pub pack_version: u32,
}

/// The logs every figure counts: no late arrival, and no log its author corrected (the
/// correction counts instead; only her own correction voids a log).
pub fn counted_logs(logs: &[LogFact]) -> Vec<&LogFact> {
    let timely: Vec<&LogFact> = logs.iter().filter(|l| !l.late_arrival).collect();
    let owner: HashMap<&str, &str> = timely.iter().map(|l| (l.id.as_str(), l.user_id.as_str())).collect();
    let voided: HashSet<&str> = timely
        .iter()
        .filter_map(|l| l.corrects.as_deref().filter(|c| owner.get(c) == Some(&l.user_id.as_str())))
        .collect();
    timely.into_iter().filter(|l| !voided.contains(l.id.as_str())).collect()
}

/// Active days and transfer evidence per member from their logs. A corrected log counts only
/// through its correction, and only its author's correction voids it; a late arrival counts in
/// nothing but `late_arrivals`.
pub fn activity_from_logs(logs: &[LogFact]) -> Vec<MemberActivity> {
    let counted = counted_logs(logs);
    let mut by_user: BTreeMap<&str, (BTreeMap<NaiveDate, DayActivity>, u32, u32)> = BTreeMap::new();
    for log in logs.iter().filter(|l| l.late_arrival) {
        by_user.entry(log.user_id.as_str()).or_default().2 += 1;
    }
    for log in counted.into_iter().filter(|l| l.completed) {
        let (days, transfers, _) = by_user.entry(log.user_id.as_str()).or_default();
        let day = days.entry(log.local_date).or_insert(DayActivity { date: log.local_date, practices: 0, seconds: 0 });
        day.practices += 1;
        day.seconds += log.duration_secs;
        *transfers += u32::from(log.transfer);
    }
    by_user
        .into_iter()
        .map(|(user, (days, transfers, late))| MemberActivity {
            user_id: user.to_owned(),
            days: days.into_values().collect(),
            transfer_evidence: transfers,
            late_arrivals: late,
        })
        .collect()
}

/// How many of a rubric's criteria a feedback's addressed indices name (each once).
pub fn criteria_addressed(indices: &[u32], rubric_size: u32) -> u32 {
    indices.iter().filter(|&&i| i < rubric_size).collect::<HashSet<_>>().len() as u32
}

/// Whether a member was at a week's critique, as a facilitator recorded it last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttendanceFact {
    pub week: u32,
    pub member: String,
    pub present: bool,
}

/// Everything the metrics read about one cohort.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortFacts {
    pub cohort_id: String,
    pub title: String,
    pub blueprint: Blueprint,
    pub roster: Roster,
    pub activity: Vec<MemberActivity>,
    pub submissions: Vec<SubmissionFact>,
    pub feedback: Vec<FeedbackFact>,
    /// Critique attendance, where a facilitator recorded it.
    #[serde(default)]
    pub attendance: Vec<AttendanceFact>,
    /// A control arm's learners practise alone: no roles, no size to keep.
    #[serde(default)]
    pub arm: Arm,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum RiskReason {
    NoActiveDayIn7Days,
    /// Active days in the last 7 are fewer than half of the 7 before.
    Slipping {
        last_7: u32,
        previous_7: u32,
    },
    ReviewsOverdue {
        count: u32,
    },
}

impl RiskReason {
    /// In words a facilitator reads on a phone.
    pub fn describe(&self) -> String {
        match self {
            Self::NoActiveDayIn7Days => "no practice in the last 7 days".into(),
            Self::Slipping { last_7, previous_7 } => {
                format!("slipping: {last_7} active days this week against {previous_7} the week before")
            }
            Self::ReviewsOverdue { count } => format!("{count} overdue review(s)"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberReport {
    pub user_id: String,
    pub display_name: String,
    pub role: MemberRole,
    /// Left the cohort on or before the reference date.
    pub left: bool,
    pub reference_date: NaiveDate,
    pub active_days_7: u32,
    pub active_days_14: u32,
    pub active_days_30: u32,
    pub streak: u32,
    pub feedback_given: u32,
    pub feedback_received: u32,
    pub mean_helpfulness_given: Option<f64>,
    pub suggestion_share: Option<f64>,
    pub criteria_share: Option<f64>,
    pub reviews_owed: u32,
    pub reviews_overdue: u32,
    pub role_this_week: Option<WeeklyRole>,
    pub transfer_evidence: u32,
    /// Practice logs that arrived after the back-fill window: not in any figure.
    pub late_arrivals: u32,
    pub at_risk: Vec<RiskReason>,
    /// Program days (1-based) with at least one completed practice, for the heatmap.
    pub active_program_days: Vec<u32>,
    /// Critiques a facilitator recorded her at, of those recorded for her.
    pub critiques_attended: u32,
    pub critiques_recorded: u32,
    /// She shared her capstone, and a public reflection (the consolidation weeks' work).
    pub capstone_shared: bool,
    pub reflection_shared: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Engagement {
    pub day: u32,
    /// `None` until the cohort reaches that program day or when nobody was enrolled at the start.
    pub share: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Activity60 {
    /// Mean active days per member enrolled at the start, over program days 1–60 (so far).
    pub mean_active_days: f64,
    /// False while the cohort has not reached day 60: the figure covers fewer days.
    pub complete: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackSummary {
    pub given: u32,
    /// Feedback given per learner per program week begun.
    pub per_member_per_week: Option<f64>,
    pub mean_helpfulness: Option<f64>,
    pub suggestion_share: Option<f64>,
    pub criteria_share: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortReport {
    pub cohort_id: String,
    pub title: String,
    #[serde(default)]
    pub arm: Arm,
    pub start_date: NaiveDate,
    /// The cohort zone's program day, clamped to the program (0 before it starts).
    pub program_day: u32,
    pub total_days: u32,
    pub week: Option<u32>,
    pub size_status: Option<SizeStatus>,
    pub learners: u32,
    pub enrolled_at_start: u32,
    pub members: Vec<MemberReport>,
    pub engagement: Vec<Engagement>,
    /// Engagement for every program day reached: the share of members enrolled at the start
    /// active in days d−6..d (clipped to day 1).
    pub retention: Vec<f64>,
    pub activity_60: Option<Activity60>,
    pub feedback: FeedbackSummary,
    /// Of the learners' critique attendance records, the share present (`None`: none recorded).
    pub attendance_share: Option<f64>,
    /// The share of the learners in the cohort now who shared their capstone.
    pub capstone_share: Option<f64>,
}

/// Active days in program days `first..=last` of one learner's days (index = program day).
pub fn active_between(days: &[bool], first: u32, last: u32) -> u32 {
    days.get(first as usize..=last as usize).map_or(0, |window| window.iter().filter(|a| **a).count() as u32)
}

/// Engaged on program day `day`: active at least once in the 7 days up to it.
pub fn engaged_on(days: &[bool], day: u32) -> bool {
    active_between(days, day.saturating_sub(6).max(1), day) > 0
}

fn share(part: u32, whole: u32) -> Option<f64> {
    (whole > 0).then(|| f64::from(part) / f64::from(whole))
}

fn mean(values: impl IntoIterator<Item = u32>) -> Option<f64> {
    let (sum, count) = values.into_iter().fold((0u64, 0u32), |(s, c), v| (s + u64::from(v), c + 1));
    (count > 0).then(|| sum as f64 / f64::from(count))
}

/// Feedback quality over a set of feedback.
fn quality<'a>(items: impl Iterator<Item = &'a FeedbackFact> + Clone) -> (Option<f64>, Option<f64>, Option<f64>) {
    let count = items.clone().count() as u32;
    let helpfulness = mean(items.clone().filter_map(|f| f.helpfulness.map(u32::from)));
    let suggestions = share(items.clone().filter(|f| f.has_suggestion).count() as u32, count);
    let (addressed, rubric) = items
        .filter(|f| f.rubric_size > 0)
        .fold((0, 0), |(a, r), f| (a + f.criteria_addressed.min(f.rubric_size), r + f.rubric_size));
    (helpfulness, suggestions, share(addressed, rubric))
}

/// Per member, which program days (index 1..=total) had a practice: window checks stay O(window).
fn active_by_program_day(facts: &CohortFacts) -> HashMap<&str, Vec<bool>> {
    let blueprint = &facts.blueprint;
    facts
        .activity
        .iter()
        .map(|a| {
            let mut days = vec![false; blueprint.total_days() as usize + 1];
            for d in a.days.iter().filter(|d| d.practices > 0) {
                if let Ok(day) = usize::try_from(blueprint.position_on(d.date).program_day)
                    && (1..days.len()).contains(&day)
                {
                    days[day] = true;
                }
            }
            (a.user_id.as_str(), days)
        })
        .collect()
}

/// "Enrolled at program start": learners who joined by the first day of week 1, so people who
/// join during orientation (as the program intends) count.
fn enrolled_at_start(facts: &CohortFacts) -> Vec<&str> {
    let enrolment_closes = facts.blueprint.date_of_day(facts.blueprint.first_day_of_week(1));
    facts
        .roster
        .members()
        .iter()
        .filter(|m| m.role == MemberRole::Learner && m.joined_on <= enrolment_closes)
        .map(|m| m.user_id.as_str())
        .collect()
}

/// Per learner enrolled at the start, the program days she was active (index 1..=total): what
/// a comparison against a baseline resamples, from the same facts as [`cohort_report`].
pub fn enrolled_active_days(facts: &CohortFacts) -> Vec<Vec<bool>> {
    let active = active_by_program_day(facts);
    let none = vec![false; facts.blueprint.total_days() as usize + 1];
    enrolled_at_start(facts).into_iter().map(|u| active.get(u).unwrap_or(&none).clone()).collect()
}

/// Computes the cohort's report at `now`.
pub fn cohort_report(facts: &CohortFacts, now: DateTime<Utc>) -> CohortReport {
    let blueprint = &facts.blueprint;
    let end = blueprint.end_date();
    let total_days = blueprint.total_days();
    let cohort_today = now.with_timezone(&blueprint.cohort_time_zone).date_naive().min(end);
    let position = blueprint.position_on(cohort_today);
    let program_day = u32::try_from(position.program_day.max(0)).unwrap_or(0).min(total_days);

    let activity: HashMap<&str, &MemberActivity> = facts.activity.iter().map(|a| (a.user_id.as_str(), a)).collect();
    let active_by_day = active_by_program_day(facts);
    let enrolled = enrolled_at_start(facts);
    let no_days = Vec::new();
    let days_of = |user: &str| active_by_day.get(user).unwrap_or(&no_days);
    let engagement_on = |day: u32| -> Option<f64> {
        let active = enrolled.iter().filter(|u| engaged_on(days_of(u), day)).count();
        share(active as u32, enrolled.len() as u32)
    };

    let retention: Vec<f64> = (1..=program_day).filter_map(engagement_on).collect();
    let engagement = ENGAGEMENT_DAYS
        .iter()
        .filter(|&&day| day <= blueprint.total_days())
        .map(|&day| Engagement { day, share: if day <= program_day { engagement_on(day) } else { None } })
        .collect();
    let activity_60 = (program_day > 0 && !enrolled.is_empty()).then(|| {
        let last = program_day.min(ACTIVITY_DAYS);
        let total: u32 = enrolled.iter().map(|u| active_between(days_of(u), 1, last)).sum();
        Activity60 {
            mean_active_days: f64::from(total) / enrolled.len() as f64,
            complete: program_day >= ACTIVITY_DAYS,
        }
    });

    let reviews = reviews_owed(facts, now, position.week);
    let shared = |user: &str, kind: &str| facts.submissions.iter().any(|s| s.author == user && s.kind == kind);
    let attended = |user: &str| -> (u32, u32) {
        let records = facts.attendance.iter().filter(|a| a.member == user);
        (records.clone().filter(|a| a.present).count() as u32, records.count() as u32)
    };
    let peers = facts.arm == Arm::Cohort;
    let this_week = position.week.filter(|_| peers).map(|week| roles_for_week(blueprint, &facts.roster, week));
    let members: Vec<MemberReport> = facts
        .roster
        .members()
        .iter()
        .map(|member| {
            let zone = parse_time_zone(&member.time_zone).unwrap_or(blueprint.cohort_time_zone);
            let reference = local_day(now, zone, member.day_start).min(end);
            let days: &[DayActivity] = activity.get(member.user_id.as_str()).map_or(&[], |a| &a.days);
            let metrics = learner_metrics(days, reference);
            let given = facts.feedback.iter().filter(|f| f.author == member.user_id);
            let received = facts.feedback.iter().filter(|f| f.submission_author == member.user_id).count();
            let (helpfulness, suggestions, criteria) = quality(given.clone());
            let (owed, overdue) = reviews.get(member.user_id.as_str()).copied().unwrap_or_default();
            let left = member.left_on.is_some_and(|left| left <= reference);
            let active_program_days: Vec<u32> = active_by_day
                .get(member.user_id.as_str())
                .map(|days| (1..=total_days).filter(|d| days[*d as usize]).collect())
                .unwrap_or_default();
            let in_program_since = member.joined_on.max(blueprint.start_date);
            let at_risk = if member.role == MemberRole::Learner && !left {
                risk(days, reference, in_program_since, overdue)
            } else {
                Vec::new()
            };
            MemberReport {
                user_id: member.user_id.clone(),
                display_name: member.display_name.clone(),
                role: member.role,
                left,
                reference_date: reference,
                active_days_7: metrics.active_days_7,
                active_days_14: metrics.active_days_14,
                active_days_30: metrics.active_days_30,
                streak: metrics.streak,
                feedback_given: given.count() as u32,
                feedback_received: received as u32,
                mean_helpfulness_given: helpfulness,
                suggestion_share: suggestions,
                criteria_share: criteria,
                reviews_owed: owed,
                reviews_overdue: overdue,
                role_this_week: this_week.as_ref().and_then(|roles| roles.role_of(&member.user_id)),
                transfer_evidence: activity.get(member.user_id.as_str()).map_or(0, |a| a.transfer_evidence),
                late_arrivals: activity.get(member.user_id.as_str()).map_or(0, |a| a.late_arrivals),
                at_risk,
                active_program_days,
                critiques_attended: attended(&member.user_id).0,
                critiques_recorded: attended(&member.user_id).1,
                capstone_shared: shared(&member.user_id, "capstone"),
                reflection_shared: shared(&member.user_id, "reflection"),
            }
        })
        .collect();

    let learners = position.week.map_or(enrolled.len(), |week| facts.roster.learners_in_week(blueprint, week).len());
    let weeks_begun = position.week.map_or(0, |week| week + 1);
    let (mean_helpfulness, suggestion_share, criteria_share) = quality(facts.feedback.iter());
    let given = facts.feedback.len() as u32;
    let learner_ids: HashSet<&str> =
        facts.roster.members().iter().filter(|m| m.role == MemberRole::Learner).map(|m| m.user_id.as_str()).collect();
    let learner_records = facts.attendance.iter().filter(|a| learner_ids.contains(a.member.as_str()));
    let attendance_share =
        share(learner_records.clone().filter(|a| a.present).count() as u32, learner_records.count() as u32);
    let current: Vec<&MemberReport> = members.iter().filter(|m| m.role == MemberRole::Learner && !m.left).collect();
    let capstone_share = share(current.iter().filter(|m| m.capstone_shared).count() as u32, current.len() as u32);
    CohortReport {
        cohort_id: facts.cohort_id.clone(),
        title: facts.title.clone(),
        arm: facts.arm,
        start_date: blueprint.start_date,
        program_day,
        total_days,
        week: position.week,
        size_status: peers.then(|| blueprint.cohort_size.check(learners as u32).ok()).flatten(),
        learners: learners as u32,
        enrolled_at_start: enrolled.len() as u32,
        members,
        engagement,
        retention,
        activity_60,
        feedback: FeedbackSummary {
            given,
            per_member_per_week: share(given, learners as u32 * weeks_begun),
            mean_helpfulness,
            suggestion_share,
            criteria_share,
        },
        attendance_share,
        capstone_share,
    }
}

/// The at-risk reasons for a learner whose windows end on `reference`.
fn risk(days: &[DayActivity], reference: NaiveDate, in_program_since: NaiveDate, overdue: u32) -> Vec<RiskReason> {
    let count = |from: NaiveDate, to: NaiveDate| {
        days.iter()
            .filter(|d| d.practices > 0 && (from..=to).contains(&d.date))
            .map(|d| d.date)
            .collect::<HashSet<_>>()
            .len() as u32
    };
    let back = |n: u64| reference.checked_sub_days(Days::new(n)).unwrap_or(NaiveDate::MIN);
    let last_7 = count(back(6), reference);
    let previous_7 = count(back(13), back(7));
    let mut reasons = Vec::new();
    if last_7 == 0 && in_program_since <= back(6) {
        reasons.push(RiskReason::NoActiveDayIn7Days);
    } else if last_7 * 2 < previous_7 {
        reasons.push(RiskReason::Slipping { last_7, previous_7 });
    }
    if overdue > 0 {
        reasons.push(RiskReason::ReviewsOverdue { count: overdue });
    }
    reasons
}

/// `(owed, overdue)` per reviewer: assigned reviews of submissions shared in the current or the
/// previous week that the reviewer has not given feedback on.
fn reviews_owed(facts: &CohortFacts, now: DateTime<Utc>, week: Option<u32>) -> HashMap<&str, (u32, u32)> {
    let mut owed: HashMap<&str, (u32, u32)> = HashMap::new();
    let Some(week) = week else { return owed };
    let given: HashSet<(u32, &str, &str)> =
        facts.feedback.iter().map(|f| (f.week, f.author.as_str(), f.submission_author.as_str())).collect();
    let shared: BTreeMap<u32, HashSet<&str>> = facts.submissions.iter().fold(BTreeMap::new(), |mut acc, s| {
        acc.entry(s.week).or_insert_with(HashSet::new).insert(s.author.as_str());
        acc
    });
    for w in week.saturating_sub(1).max(1)..=week {
        let Some(practitioners) = shared.get(&w) else { continue };
        let closed = facts.blueprint.feedback_closes_at(w).is_some_and(|close| close <= now);
        let today = now.with_timezone(&facts.blueprint.cohort_time_zone).date_naive();
        for assignment in assign_reviews_on(&roles_for_week(&facts.blueprint, &facts.roster, w), &facts.roster, today) {
            if !practitioners.contains(assignment.practitioner.as_str()) {
                continue;
            }
            for reviewer in &assignment.reviewers {
                if given.contains(&(w, reviewer.as_str(), assignment.practitioner.as_str())) {
                    continue;
                }
                let Some(member) = facts.roster.member(reviewer) else { continue };
                let entry = owed.entry(member.user_id.as_str()).or_default();
                entry.0 += 1;
                entry.1 += u32::from(closed);
            }
        }
    }
    owed
}

#[cfg(test)]
#[path = "cohort_metrics_tests.rs"]
mod tests;
