//! Arms of a program: the cohort arm (peers, feedback, roles) and a control arm (the same prompts,
//! reminders and practice loop, alone). Enrolment assigns a learner to an arm by a seeded draw or
//! by the operator's choice, and the comparison of the arms reads the same day windows as every
//! cohort's figures ([`super::cohort_metrics`]).
//!
//! The draw is reproducible by anyone holding the recorded seed: learners are drawn in permuted
//! blocks of four (two to each arm), so the arms stay balanced however many enrol. Block `b` is
//! shuffled with ChaCha8 seeded by `seed` (rand's `seed_from_u64`) on stream `b`: for position
//! `i` from 3 down to 1, swap it with position `next_u64() % (i + 1)`. Draw `n` is position
//! `n % 4` of block `n / 4`.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::baseline::{CohortActivity, CohortUplift, active_in, conclusion, uplift_against};
use super::cohort_metrics::{ACTIVITY_DAYS, ENGAGEMENT_DAYS, engaged_on};
use super::statistics::{BOOTSTRAP_SEED, Estimate, mean_estimate, wilson};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arm {
    /// A cohort of peers: feedback, roles, critiques.
    #[default]
    Cohort,
    /// The practice loop alone: no peers, no feedback, no roles.
    Control,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cohort => "cohort",
            Self::Control => "control",
        }
    }

    pub fn parse(text: &str) -> Result<Self, DomainError> {
        match text {
            "cohort" => Ok(Self::Cohort),
            "control" => Ok(Self::Control),
            _ => Err(DomainError::invalid("arm", format!("{text:?} is not an arm: cohort or control"))),
        }
    }
}

/// How a learner came to be in her arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Assignment {
    /// Draw `draw` (0-based, in enrolment order) of the program's randomisation from `seed`.
    Random { seed: u64, draw: u64 },
    /// The operator chose the arm (or the cohort).
    Operator,
}

impl Assignment {
    /// As exports show it: `random seed=42 draw=7`, `operator`.
    pub fn describe(&self) -> String {
        match self {
            Self::Random { seed, draw } => format!("random seed={seed} draw={draw}"),
            Self::Operator => "operator".to_owned(),
        }
    }
}

const BLOCK: [Arm; 4] = [Arm::Cohort, Arm::Cohort, Arm::Control, Arm::Control];

/// The arm of draw `draw` from `seed` (see the module's documentation).
pub fn draw(seed: u64, draw: u64) -> Arm {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(draw / BLOCK.len() as u64);
    let mut block = BLOCK;
    for i in (1..block.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        block.swap(i, j);
    }
    block[(draw % BLOCK.len() as u64) as usize]
}

/// One arm's figures: its learners enrolled at the start, pooled over its cohorts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmFigures {
    pub arm: Arm,
    pub cohorts: Vec<String>,
    pub learners: u32,
    /// Engagement at days 7, 21, 60 and 90 reached so far, with Wilson 95 % intervals.
    pub engagement: Vec<(u32, Option<Estimate>)>,
    /// Engagement on every program day reached (the retention curve).
    pub retention: Vec<f64>,
    /// Active days in days 1–60 (so far) per learner, with a bootstrap interval.
    pub mean_active_days_60: Option<Estimate>,
}

/// The program's arms side by side, and the cohort arm's (and each cohort's) uplift over the
/// control arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmComparison {
    /// The program day reached (the cohort zone's).
    pub program_day: u32,
    pub arms: Vec<ArmFigures>,
    /// `cohort arm` first, then each cohort: 60-day activity ÷ the control arm's − 1.
    pub uplift: Vec<CohortUplift>,
    pub conclusion: String,
}

/// A cohort of the program with its arm and its learners enrolled at the start.
pub struct ArmCohort<'a> {
    pub arm: Arm,
    pub activity: CohortActivity<'a>,
}

/// The name the cohort arm as a whole goes by in an uplift.
pub const COHORT_ARM: &str = "cohort arm";

/// Compares the arms; `None` when the program has no control arm.
pub fn compare_arms(cohorts: &[ArmCohort<'_>]) -> Option<ArmComparison> {
    let program_day = cohorts.iter().map(|c| c.activity.program_day).max().unwrap_or(0);
    let pooled = |arm: Arm| -> Vec<Vec<bool>> {
        cohorts.iter().filter(|c| c.arm == arm).flat_map(|c| c.activity.active_days.iter().cloned()).collect()
    };
    let control = pooled(Arm::Control);
    if !cohorts.iter().any(|c| c.arm == Arm::Control) {
        return None;
    }
    let figures = |arm: Arm, days: &[Vec<bool>]| ArmFigures {
        arm,
        cohorts: cohorts.iter().filter(|c| c.arm == arm).map(|c| c.activity.cohort_id.to_owned()).collect(),
        learners: days.len() as u32,
        engagement: ENGAGEMENT_DAYS
            .iter()
            .filter(|&&day| day <= program_day)
            .map(|&day| (day, wilson(days.iter().filter(|d| engaged_on(d, day)).count() as u32, days.len() as u32)))
            .collect(),
        retention: (1..=program_day)
            .filter(|_| !days.is_empty())
            .map(|day| days.iter().filter(|d| engaged_on(d, day)).count() as f64 / days.len() as f64)
            .collect(),
        mean_active_days_60: mean_estimate(&active_in(days, program_day.min(ACTIVITY_DAYS)), BOOTSTRAP_SEED),
    };
    let cohort_arm = pooled(Arm::Cohort);
    let mut groups = vec![CohortActivity { cohort_id: COHORT_ARM, program_day, active_days: &cohort_arm }];
    groups.extend(cohorts.iter().filter(|c| c.arm == Arm::Cohort).map(|c| CohortActivity { ..c.activity }));
    let uplift = uplift_against(&control, program_day, &groups);
    Some(ArmComparison {
        program_day,
        arms: vec![figures(Arm::Cohort, &cohort_arm), figures(Arm::Control, &control)],
        // The arm as a whole decides; single cohorts are read alongside it.
        conclusion: conclusion("the control arm", control.len(), &groups[..1], &uplift[..1]),
        uplift,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_balanced_in_every_block_and_reproduced_by_the_seed() {
        let arms: Vec<Arm> = (0..40).map(|n| draw(42, n)).collect();
        for block in arms.chunks(4) {
            assert_eq!(block.iter().filter(|a| **a == Arm::Control).count(), 2, "{block:?}");
        }
        assert_eq!(arms, (0..40).map(|n| draw(42, n)).collect::<Vec<_>>());
        let other: Vec<Arm> = (0..40).map(|n| draw(43, n)).collect();
        assert_ne!(arms, other, "another seed, another order");
        // Not one fixed pattern: the blocks differ.
        assert!(arms.chunks(4).any(|b| b != &arms[..4]), "{arms:?}");
    }

    #[test]
    fn arms_parse_and_a_wrong_one_names_the_field() {
        assert_eq!(Arm::parse("control").unwrap(), Arm::Control);
        assert!(Arm::parse("webinar").unwrap_err().to_string().contains("arm"));
        assert_eq!(Assignment::Random { seed: 7, draw: 3 }.describe(), "random seed=7 draw=3");
    }

    fn learner(active_every: usize, days: usize) -> Vec<bool> {
        (0..=days).map(|d| d > 0 && d % active_every == 0).collect()
    }

    #[test]
    fn the_arms_compare_with_intervals_and_a_clear_uplift_says_so() {
        let c1: Vec<Vec<bool>> = (0..12).map(|i| learner(1 + i % 2, 90)).collect();
        let c2: Vec<Vec<bool>> = (0..11).map(|i| learner(1 + i % 3, 90)).collect();
        let control: Vec<Vec<bool>> = (0..20).map(|i| learner(4 + i % 5, 90)).collect();
        let activity = |id, days| CohortActivity { cohort_id: id, program_day: 90, active_days: days };
        let cohorts = [
            ArmCohort { arm: Arm::Cohort, activity: activity("c1", &c1) },
            ArmCohort { arm: Arm::Cohort, activity: activity("c2", &c2) },
            ArmCohort { arm: Arm::Control, activity: activity("k", &control) },
        ];
        let compared = compare_arms(&cohorts).unwrap();
        assert_eq!(compared.arms[0].learners, 23);
        assert_eq!(compared.arms[1].learners, 20);
        assert_eq!(compared.arms[0].engagement.len(), 4);
        assert_eq!(compared.arms[1].retention.len(), 90);
        let arm_uplift = &compared.uplift[0];
        assert_eq!((arm_uplift.cohort_id.as_str(), arm_uplift.days), (COHORT_ARM, 60));
        let e = arm_uplift.uplift.unwrap();
        assert!(e.low > 0.0 && e.low <= e.value && e.value <= e.high, "{e:?}");
        assert_eq!(compared.uplift.len(), 3);
        assert!(compared.conclusion.contains("more active than the control arm"), "{}", compared.conclusion);

        let few = compare_arms(&[
            ArmCohort { arm: Arm::Cohort, activity: activity("c1", &c1) },
            ArmCohort { arm: Arm::Control, activity: activity("k", &control[..4]) },
        ])
        .unwrap();
        assert!(few.conclusion.starts_with("Too few learners"), "{}", few.conclusion);
        assert!(compare_arms(&cohorts[..2]).is_none(), "no control arm, no comparison");
    }
}
