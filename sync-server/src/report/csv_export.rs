//! CSV exports of a program report: one row per member, one row per cohort, the comparison with
//! an imported baseline (one row for the baseline, one per cohort), the comparison of the arms, or
//! prompt analytics (one row per prompt and pack version).

use microcohort_core::domain::arms::{Assignment, COHORT_ARM};
use microcohort_core::domain::statistics::Estimate;

use super::ProgramReport;
use crate::error::ApiError;

fn num(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.3}")).unwrap_or_default()
}

fn finish(writer: csv::Writer<Vec<u8>>) -> Result<String, ApiError> {
    let bytes = writer.into_inner().map_err(|e| ApiError::Internal(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Internal(e.to_string()))
}

fn internal(err: csv::Error) -> ApiError {
    ApiError::Internal(err.to_string())
}

pub fn members_csv(report: &ProgramReport) -> Result<String, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "cohort_id",
        "cohort",
        "arm",
        "assignment",
        "user_id",
        "name",
        "role",
        "left",
        "active_days_7",
        "active_days_14",
        "active_days_30",
        "streak",
        "feedback_given",
        "feedback_received",
        "mean_helpfulness_given",
        "suggestion_share",
        "criteria_share",
        "reviews_owed",
        "reviews_overdue",
        "role_this_week",
        "transfer_evidence",
        "late_arrivals",
        "critiques_attended",
        "critiques_recorded",
        "capstone_shared",
        "reflection_shared",
        "at_risk",
    ])
    .map_err(internal)?;
    for cohort in &report.cohorts {
        for m in &cohort.members {
            let risk: Vec<String> = m.at_risk.iter().map(|r| r.describe()).collect();
            let assignment = report
                .assignments
                .iter()
                .find(|a| a.cohort_id == cohort.cohort_id && a.user_id == m.user_id)
                .map_or(Assignment::Operator, |a| a.assignment);
            out.write_record([
                cohort.cohort_id.clone(),
                cohort.title.clone(),
                cohort.arm.as_str().to_owned(),
                assignment.describe(),
                m.user_id.clone(),
                m.display_name.clone(),
                m.role.as_str().to_owned(),
                m.left.to_string(),
                m.active_days_7.to_string(),
                m.active_days_14.to_string(),
                m.active_days_30.to_string(),
                m.streak.to_string(),
                m.feedback_given.to_string(),
                m.feedback_received.to_string(),
                num(m.mean_helpfulness_given),
                num(m.suggestion_share),
                num(m.criteria_share),
                m.reviews_owed.to_string(),
                m.reviews_overdue.to_string(),
                m.role_this_week.map(|r| format!("{r:?}")).unwrap_or_default(),
                m.transfer_evidence.to_string(),
                m.late_arrivals.to_string(),
                m.critiques_attended.to_string(),
                m.critiques_recorded.to_string(),
                m.capstone_shared.to_string(),
                m.reflection_shared.to_string(),
                risk.join("; "),
            ])
            .map_err(internal)?;
        }
    }
    finish(out)
}

pub fn cohorts_csv(report: &ProgramReport) -> Result<String, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "cohort_id",
        "cohort",
        "program_day",
        "learners",
        "enrolled_at_start",
        "engagement_7",
        "engagement_21",
        "engagement_60",
        "engagement_90",
        "mean_active_days_60",
        "uplift_vs_baseline",
        "feedback_given",
        "feedback_per_member_per_week",
        "mean_helpfulness",
        "suggestion_share",
        "criteria_share",
        "attendance_share",
        "capstone_share",
    ])
    .map_err(internal)?;
    for c in &report.cohorts {
        let engagement = |day: u32| num(c.engagement.iter().find(|e| e.day == day).and_then(|e| e.share));
        let uplift = report
            .baseline
            .as_ref()
            .and_then(|b| b.uplift.iter().find(|(id, _)| *id == c.cohort_id).and_then(|(_, u)| *u));
        out.write_record([
            c.cohort_id.clone(),
            c.title.clone(),
            c.program_day.to_string(),
            c.learners.to_string(),
            c.enrolled_at_start.to_string(),
            engagement(7),
            engagement(21),
            engagement(60),
            engagement(90),
            num(c.activity_60.map(|a| a.mean_active_days)),
            num(uplift),
            c.feedback.given.to_string(),
            num(c.feedback.per_member_per_week),
            num(c.feedback.mean_helpfulness),
            num(c.feedback.suggestion_share),
            num(c.feedback.criteria_share),
            num(c.attendance_share),
            num(c.capstone_share),
        ])
        .map_err(internal)?;
    }
    finish(out)
}

/// The comparison with the imported baseline, each figure with its 95 % interval: the baseline's
/// row, then each cohort's uplift against it; the conclusion in its own column. An empty file
/// (the header) when no baseline was imported.
pub fn baseline_csv(report: &ProgramReport) -> Result<String, ApiError> {
    let mut out = Comparison::new()?;
    let Some(b) = &report.imported_baseline else { return out.finish() };
    out.conclusion = b.conclusion.clone();
    for (day, share) in &b.engagement {
        out.row("baseline", b.learners, "engagement", *day, *share)?;
    }
    out.row("baseline", b.learners, "mean_active_days", 60, b.mean_active_days_60)?;
    for u in &b.uplift {
        out.row(&u.cohort_id, enrolled(report, &u.cohort_id), "uplift", u.days, u.uplift)?;
    }
    out.finish()
}

/// The arms side by side, each figure with its 95 % interval: each arm's engagement and 60-day
/// activity, then the cohort arm's and each cohort's uplift over the control arm. An empty file
/// (the header) when the program runs no control arm.
pub fn arms_csv(report: &ProgramReport) -> Result<String, ApiError> {
    let mut out = Comparison::new()?;
    let Some(arms) = &report.arms else { return out.finish() };
    out.conclusion = arms.conclusion.clone();
    for arm in &arms.arms {
        let group = format!("{} arm", arm.arm.as_str());
        for (day, share) in &arm.engagement {
            out.row(&group, arm.learners, "engagement", *day, *share)?;
        }
        out.row(&group, arm.learners, "mean_active_days", arms.program_day.min(60), arm.mean_active_days_60)?;
    }
    for u in &arms.uplift {
        let learners = if u.cohort_id == COHORT_ARM { arms.arms[0].learners } else { enrolled(report, &u.cohort_id) };
        out.row(&u.cohort_id, learners, "uplift_vs_control", u.days, u.uplift)?;
    }
    out.finish()
}

/// Prompt analytics, one row per prompt and pack version, most abandoned first.
pub fn prompts_csv(report: &ProgramReport) -> Result<String, ApiError> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record([
        "prompt_id",
        "pack_version",
        "title",
        "week",
        "day",
        "stated_minutes",
        "started",
        "completed",
        "abandoned",
        "abandoned_share",
        "median_minutes",
        "overrun",
        "transfer_share",
        "shared",
        "feedback",
        "mean_helpfulness",
    ])
    .map_err(internal)?;
    let opt = |n: Option<u32>| n.map(|n| n.to_string()).unwrap_or_default();
    for p in &report.prompts {
        out.write_record([
            p.prompt_id.clone(),
            p.pack_version.to_string(),
            p.title.clone(),
            opt(p.week),
            opt(p.day),
            opt(p.stated_minutes),
            p.started.to_string(),
            p.completed.to_string(),
            p.abandoned.to_string(),
            num(p.abandoned_share),
            num(p.median_minutes),
            num(p.overrun),
            num(p.transfer_share),
            p.shared.to_string(),
            p.feedback.to_string(),
            num(p.mean_helpfulness),
        ])
        .map_err(internal)?;
    }
    finish(out)
}

fn enrolled(report: &ProgramReport, cohort_id: &str) -> u32 {
    report.cohorts.iter().find(|c| c.cohort_id == cohort_id).map_or(0, |c| c.enrolled_at_start)
}

/// A comparison's rows: one figure each, with its interval and the comparison's conclusion.
struct Comparison {
    out: csv::Writer<Vec<u8>>,
    conclusion: String,
}

impl Comparison {
    fn new() -> Result<Self, ApiError> {
        let mut out = csv::Writer::from_writer(Vec::new());
        out.write_record(["group", "learners", "figure", "days", "value", "low_95", "high_95", "conclusion"])
            .map_err(internal)?;
        Ok(Self { out, conclusion: String::new() })
    }

    fn row(
        &mut self,
        group: &str,
        learners: u32,
        figure: &str,
        days: u32,
        e: Option<Estimate>,
    ) -> Result<(), ApiError> {
        let (value, low, high) = (num(e.map(|e| e.value)), num(e.map(|e| e.low)), num(e.map(|e| e.high)));
        let fields = [group, &learners.to_string(), figure, &days.to_string(), &value, &low, &high, &self.conclusion];
        self.out.write_record(fields).map_err(internal)
    }

    fn finish(self) -> Result<String, ApiError> {
        finish(self.out)
    }
}
