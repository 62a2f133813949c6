//! CSV exports of a program report: one row per member, one row per cohort, or the comparison
//! with an imported baseline (one row for the baseline, one per cohort).

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
            out.write_record([
                cohort.cohort_id.clone(),
                cohort.title.clone(),
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
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(["group", "learners", "figure", "days", "value", "low_95", "high_95", "conclusion"])
        .map_err(internal)?;
    let Some(b) = &report.imported_baseline else { return finish(out) };
    let estimate = |e: Option<Estimate>| (num(e.map(|e| e.value)), num(e.map(|e| e.low)), num(e.map(|e| e.high)));
    let mut row = |group: &str, learners: String, figure: String, days: String, e: Option<Estimate>| {
        let (value, low, high) = estimate(e);
        out.write_record([group.to_owned(), learners, figure, days, value, low, high, b.conclusion.clone()])
    };
    for (day, share) in &b.engagement {
        row("baseline", b.learners.to_string(), "engagement".into(), day.to_string(), *share).map_err(internal)?;
    }
    row("baseline", b.learners.to_string(), "mean_active_days".into(), "60".into(), b.mean_active_days_60)
        .map_err(internal)?;
    for u in &b.uplift {
        let learners = report
            .cohorts
            .iter()
            .find(|c| c.cohort_id == u.cohort_id)
            .map_or_else(String::new, |c| c.enrolled_at_start.to_string());
        row(&u.cohort_id, learners, "uplift".into(), u.days.to_string(), u.uplift).map_err(internal)?;
    }
    finish(out)
}
