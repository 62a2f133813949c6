//! Program reports for facilitators and program leads: every cohort's figures (computed by the
//! core's cohort metrics, the same function the facilitator's device runs), 60-day activity
//! against a named baseline cohort, and facilitator load. JSON for tools, CSV for spreadsheets.

pub mod csv_export;
pub mod postgres_sql;
pub mod sqlite_sql;
pub mod store;

use chrono::{DateTime, Utc};
use microcohort_core::domain::arms::{Arm, ArmCohort, ArmComparison, Assignment, compare_arms};
use microcohort_core::domain::baseline::{BaselineComparison, CohortActivity, compare};
use microcohort_core::domain::calibration::{Agreement, agreement};
use microcohort_core::domain::cohort_metrics::{CohortReport, cohort_report, enrolled_active_days};
use microcohort_core::domain::prompt_analytics::{PromptRow, prompt_analytics};
use microcohort_core::domain::roster::MemberRole;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use store::ProgramFacts;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgramReport {
    pub program_id: String,
    pub title: String,
    pub generated_at: DateTime<Utc>,
    pub cohorts: Vec<CohortReport>,
    /// The cohort every uplift is stated against, when one was named.
    pub baseline: Option<Baseline>,
    /// The program's imported baseline (`admin import-baseline`): its figures with 95 %
    /// intervals, each cohort's uplift against it, and what that allows one to conclude.
    pub imported_baseline: Option<BaselineComparison>,
    /// The cohort arm against the control arm, when the program runs one: each arm's figures
    /// with 95 % intervals, the uplift, and what that allows one to conclude.
    pub arms: Option<ArmComparison>,
    /// How each learner the program placed came to be in her arm (others: the operator's cohort).
    pub assignments: Vec<AssignmentRow>,
    /// Per prompt and pack version, over the cohorts in the report: most abandoned first.
    pub prompts: Vec<PromptRow>,
    /// Transfer stories learners shared with the program team, newest first, each with the
    /// prompt it came from (never the private reflection).
    pub stories: Vec<StoryRow>,
    /// Each learner's and each cohort's agreement with the reference ratings of the pack's
    /// calibration exemplars (learners who rated none are left out).
    pub calibration: CalibrationReport,
    pub facilitator_load: FacilitatorLoad,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CalibrationReport {
    pub members: Vec<MemberCalibration>,
    pub cohorts: Vec<CohortCalibration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberCalibration {
    pub cohort_id: String,
    pub user_id: String,
    pub display_name: String,
    pub agreement: Agreement,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortCalibration {
    pub cohort_id: String,
    /// Over every rating of the cohort's learners.
    pub agreement: Agreement,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoryRow {
    pub cohort_id: String,
    pub user_id: String,
    pub display_name: String,
    pub prompt_id: String,
    /// The prompt's title in the program's current pack.
    pub prompt_title: String,
    pub local_date: String,
    pub kind: String,
    pub note: String,
    pub link: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentRow {
    pub cohort_id: String,
    pub user_id: String,
    pub assignment: Assignment,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub cohort_id: String,
    pub title: String,
    pub mean_active_days_60: Option<f64>,
    /// Per cohort: 60-day activity ÷ the baseline's − 1 (`None` without figures on either side).
    pub uplift: Vec<(String, Option<f64>)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FacilitatorLoad {
    /// Learners enrolled in the program (not left) per active facilitator.
    pub learners_per_facilitator: Option<f64>,
    pub learners: u32,
    pub facilitators: Vec<FacilitatorRow>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FacilitatorRow {
    pub user_id: String,
    pub display_name: String,
    pub cohorts: u32,
    pub learners: u32,
}

/// 60-day activity against a baseline: ratio − 1.
pub fn uplift(activity: Option<f64>, baseline: Option<f64>) -> Option<f64> {
    match (activity, baseline) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b - 1.0),
        _ => None,
    }
}

/// Builds the report at `now`; `baseline` names one of the program's cohorts.
pub fn program_report(
    facts: &ProgramFacts,
    baseline: Option<&str>,
    now: DateTime<Utc>,
) -> Result<ProgramReport, ApiError> {
    let cohorts: Vec<CohortReport> = facts.cohorts.iter().map(|cohort| cohort_report(cohort, now)).collect();
    let activity = |c: &CohortReport| c.activity_60.map(|a| a.mean_active_days);
    let baseline = baseline
        .map(|id| {
            let base = cohorts
                .iter()
                .find(|c| c.cohort_id == id)
                .ok_or_else(|| ApiError::BadRequest(format!("baseline: no cohort {id:?} in this program")))?;
            Ok::<_, ApiError>(Baseline {
                cohort_id: base.cohort_id.clone(),
                title: base.title.clone(),
                mean_active_days_60: activity(base),
                uplift: cohorts.iter().map(|c| (c.cohort_id.clone(), uplift(activity(c), activity(base)))).collect(),
            })
        })
        .transpose()?;

    let learners_in = |cohort_id: &str| {
        cohorts.iter().find(|c| c.cohort_id == cohort_id).map_or(0, |c| {
            c.members
                .iter()
                .filter(|m| m.role == microcohort_core::domain::roster::MemberRole::Learner && !m.left)
                .count() as u32
        })
    };
    let rows: Vec<FacilitatorRow> = facts
        .facilitators
        .iter()
        .map(|(user_id, name, their)| FacilitatorRow {
            user_id: user_id.clone(),
            display_name: name.clone(),
            cohorts: their.len() as u32,
            learners: their.iter().map(|c| learners_in(c)).sum(),
        })
        .collect();
    // A control arm has no facilitators: its learners are not anyone's load.
    let learners: u32 = cohorts.iter().filter(|c| c.arm == Arm::Cohort).map(|c| learners_in(&c.cohort_id)).sum();
    let days: Vec<Vec<Vec<bool>>> = facts.cohorts.iter().map(enrolled_active_days).collect();
    let activity = |arm: Option<Arm>| -> Vec<CohortActivity<'_>> {
        cohorts
            .iter()
            .zip(&days)
            .filter(|(c, _)| arm.is_none_or(|arm| c.arm == arm))
            .map(|(c, days)| CohortActivity { cohort_id: &c.cohort_id, program_day: c.program_day, active_days: days })
            .collect()
    };
    // The baseline is compared with the cohorts: a control arm is a baseline of its own.
    let imported_baseline =
        (!facts.baseline.is_empty()).then(|| compare(&facts.baseline, &activity(Some(Arm::Cohort))));
    let arm_of = |id: &str| cohorts.iter().find(|c| c.cohort_id == id).map_or(Arm::Cohort, |c| c.arm);
    let arms = compare_arms(
        &activity(None).into_iter().map(|a| ArmCohort { arm: arm_of(a.cohort_id), activity: a }).collect::<Vec<_>>(),
    );
    let assignments = facts
        .assignments
        .iter()
        .map(|(cohort_id, user_id, assignment)| AssignmentRow {
            cohort_id: cohort_id.clone(),
            user_id: user_id.clone(),
            assignment: *assignment,
        })
        .collect();
    let stories = facts
        .stories
        .iter()
        .map(|s| StoryRow {
            display_name: cohorts
                .iter()
                .find(|c| c.cohort_id == s.cohort_id)
                .and_then(|c| c.members.iter().find(|m| m.user_id == s.user_id))
                .map(|m| m.display_name.clone())
                .unwrap_or_default(),
            prompt_title: facts.pack.prompt(&s.prompt_id).map(|p| p.title.clone()).unwrap_or_default(),
            cohort_id: s.cohort_id.clone(),
            user_id: s.user_id.clone(),
            prompt_id: s.prompt_id.clone(),
            local_date: s.local_date.clone(),
            kind: s.kind.clone(),
            note: s.note.clone(),
            link: s.link.clone(),
        })
        .collect();
    let calibration = calibration_report(facts, &cohorts);
    Ok(ProgramReport {
        program_id: facts.program_id.clone(),
        title: facts.title.clone(),
        generated_at: now,
        facilitator_load: FacilitatorLoad {
            learners_per_facilitator: (!rows.is_empty()).then(|| f64::from(learners) / rows.len() as f64),
            learners,
            facilitators: rows,
        },
        cohorts,
        baseline,
        imported_baseline,
        arms,
        assignments,
        stories,
        calibration,
        prompts: prompt_analytics(
            &facts.pack,
            &facts.logs,
            &facts.cohorts.iter().flat_map(|c| c.submissions.iter().cloned()).collect::<Vec<_>>(),
            &facts.cohorts.iter().flat_map(|c| c.feedback.iter().cloned()).collect::<Vec<_>>(),
        ),
    })
}

/// Agreement per learner and per cohort (its learners), against the references of the program's
/// current pack.
fn calibration_report(facts: &ProgramFacts, cohorts: &[CohortReport]) -> CalibrationReport {
    let reference = |exemplar: &str| facts.pack.exemplars.iter().find(|e| e.id == exemplar).map(|e| &e.reference);
    let learner = |cohort_id: &str, user_id: &str| {
        let cohort = cohorts.iter().find(|c| c.cohort_id == cohort_id)?;
        cohort.members.iter().find(|m| m.user_id == user_id && m.role == MemberRole::Learner)
    };
    let ratings: Vec<_> = facts.calibration.iter().filter(|(c, u, _, _)| learner(c, u).is_some()).collect();
    let pairs = |keep: &dyn Fn(&str, &str) -> bool| -> Agreement {
        let kept = ratings.iter().filter(|(c, u, _, _)| keep(c, u));
        agreement(kept.filter_map(|(_, _, exemplar, scores)| reference(exemplar).map(|r| (&scores[..], &r[..]))))
    };
    let mut members: Vec<MemberCalibration> = Vec::new();
    for (cohort_id, user_id, _, _) in ratings.iter().copied() {
        if members.iter().any(|m| m.cohort_id == *cohort_id && m.user_id == *user_id) {
            continue;
        }
        let display_name = learner(cohort_id, user_id).map(|m| m.display_name.clone()).unwrap_or_default();
        let agreement = pairs(&|c, u| c == cohort_id && u == user_id);
        members.push(MemberCalibration {
            cohort_id: cohort_id.clone(),
            user_id: user_id.clone(),
            display_name,
            agreement,
        });
    }
    // The ratings come ordered by cohort.
    let mut ids: Vec<&String> = ratings.iter().map(|(c, _, _, _)| c).collect();
    ids.dedup();
    let cohorts = ids
        .into_iter()
        .map(|id| CohortCalibration { cohort_id: id.clone(), agreement: pairs(&|c, _| c == id) })
        .collect();
    CalibrationReport { members, cohorts }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uplift_is_the_ratio_minus_one_and_needs_a_nonzero_baseline() {
        assert_eq!(uplift(Some(30.0), Some(20.0)), Some(0.5));
        assert_eq!(uplift(Some(10.0), Some(20.0)), Some(-0.5));
        assert_eq!(uplift(Some(10.0), Some(0.0)), None);
        assert_eq!(uplift(None, Some(20.0)), None);
    }
}
