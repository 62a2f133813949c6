//! Review assignment: who gives feedback on whose work this week. Deterministic, so every device
//! agrees without asking anyone.
//!
//! Guarantees (tested by property tests):
//! - every practitioner gets at least 2 reviewers (1 only when the cohort has a single member and a
//!   facilitator), never themselves;
//! - learners' review loads differ by at most 1;
//! - with fewer than 3 active learners, the facilitator reviews every submission.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::roles::{WeekRoles, WeeklyRole};

pub const REVIEWERS_PER_SUBMISSION: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewAssignment {
    pub practitioner: String,
    pub reviewers: Vec<String>,
}

/// Assignments for a week, from its roles.
pub fn assign_reviews(roles: &WeekRoles) -> Vec<ReviewAssignment> {
    let facilitator = roles.critique_lead.as_deref();
    let learners: Vec<&str> =
        roles.roles.iter().filter(|(_, r)| *r != WeeklyRole::Facilitator).map(|(id, _)| id.as_str()).collect();
    let (practitioners, reviewers) = if roles.rotation {
        (roles.with_role(WeeklyRole::Practitioner), roles.with_role(WeeklyRole::Reviewer))
    } else {
        (learners.clone(), learners.clone())
    };
    let small = learners.len() < 3;
    assign(&practitioners, &reviewers, if small { facilitator } else { None }, facilitator, roles.week)
}

/// Balanced assignment of `practitioners` to `reviewers`.
/// `always` is added to every submission (the facilitator of a small cohort); `fallback` fills a
/// submission that the pool cannot give two distinct reviewers.
fn assign(
    practitioners: &[&str],
    reviewers: &[&str],
    always: Option<&str>,
    fallback: Option<&str>,
    week: u32,
) -> Vec<ReviewAssignment> {
    let mut load: BTreeMap<&str, usize> = reviewers.iter().map(|r| (*r, 0)).collect();
    // Rotate the tie-break order each week so the same people are not always first.
    let rotation = if reviewers.is_empty() { 0 } else { week as usize % reviewers.len() };
    let order: Vec<&str> = reviewers.iter().cycle().skip(rotation).take(reviewers.len()).copied().collect();

    let mut out: Vec<ReviewAssignment> = Vec::with_capacity(practitioners.len());
    for &practitioner in practitioners {
        let mut chosen: Vec<String> = Vec::new();
        for _ in 0..REVIEWERS_PER_SUBMISSION {
            let pick = order
                .iter()
                .filter(|r| **r != practitioner && !chosen.iter().any(|c| c == *r))
                .min_by_key(|r| load[**r]);
            if let Some(reviewer) = pick {
                *load.entry(reviewer).or_default() += 1;
                chosen.push((*reviewer).to_owned());
            }
        }
        out.push(ReviewAssignment { practitioner: practitioner.to_owned(), reviewers: chosen });
    }
    rebalance(&mut out, &mut load);
    for assignment in &mut out {
        for extra in [always, fallback].into_iter().flatten() {
            let enough = assignment.reviewers.len() >= REVIEWERS_PER_SUBMISSION;
            let is_always = Some(extra) == always;
            if (is_always || !enough)
                && extra != assignment.practitioner
                && !assignment.reviewers.iter().any(|r| r == extra)
            {
                assignment.reviewers.push(extra.to_owned());
            }
        }
    }
    out
}

/// Greedy picks can leave a spread of 2 when the least-loaded reviewer was the practitioner
/// themselves; move single reviews from the busiest to the idlest until loads differ by ≤ 1.
fn rebalance(out: &mut [ReviewAssignment], load: &mut BTreeMap<&str, usize>) {
    loop {
        let (Some((&busiest, &max)), Some((&idlest, &min))) =
            (load.iter().max_by_key(|(_, l)| **l), load.iter().min_by_key(|(_, l)| **l))
        else {
            return;
        };
        if max <= min + 1 {
            return;
        }
        let movable = out.iter_mut().find(|a| {
            a.practitioner != idlest
                && a.reviewers.iter().any(|r| r == busiest)
                && !a.reviewers.iter().any(|r| r == idlest)
        });
        let Some(assignment) = movable else { return };
        for reviewer in &mut assignment.reviewers {
            if reviewer == busiest {
                *reviewer = idlest.to_owned();
            }
        }
        *load.entry(busiest).or_default() -= 1;
        *load.entry(idlest).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::blueprint::Blueprint;
    use crate::domain::roles::roles_for_week;
    use crate::domain::roster::{Member, MemberRole, Roster};
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn roster(learners: usize, facilitator: bool) -> Roster {
        let join = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let member = |id: String, role| Member {
            user_id: id,
            display_name: String::new(),
            role,
            time_zone: "UTC".into(),
            day_start: Default::default(),
            joined_on: join,
            left_on: None,
        };
        let mut members: Vec<Member> = (0..learners).map(|i| member(format!("u{i:02}"), MemberRole::Learner)).collect();
        if facilitator {
            members.push(member("fac".into(), MemberRole::Facilitator));
        }
        Roster::new(members)
    }

    fn check(
        assignments: &[ReviewAssignment],
        facilitator: Option<&str>,
        learners: usize,
    ) -> Result<(), TestCaseError> {
        let mut load: BTreeMap<&str, usize> = BTreeMap::new();
        for a in assignments {
            prop_assert!(!a.reviewers.contains(&a.practitioner), "self-review in {a:?}");
            let mut unique = a.reviewers.clone();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), a.reviewers.len());
            let needed = if learners == 1 { 1 } else { REVIEWERS_PER_SUBMISSION };
            prop_assert!(a.reviewers.len() >= needed, "too few reviewers in {:?}", a);
            for r in &a.reviewers {
                if Some(r.as_str()) != facilitator {
                    *load.entry(r.as_str()).or_default() += 1;
                }
            }
        }
        if let (Some(max), Some(min)) = (load.values().max(), load.values().min()) {
            prop_assert!(max - min <= 1, "unbalanced loads {load:?}");
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn every_week_of_every_cohort_size_is_balanced(learners in 1usize..=20, week in 1u32..=12) {
            let blueprint = Blueprint::default_90_days(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), chrono_tz::UTC);
            let roles = roles_for_week(&blueprint, &roster(learners, true), week);
            let assignments = assign_reviews(&roles);
            check(&assignments, Some("fac"), learners)?;
            let practitioners = if roles.rotation { roles.with_role(WeeklyRole::Practitioner).len() } else { learners };
            prop_assert_eq!(assignments.len(), practitioners);
            if learners < 3 {
                prop_assert!(assignments.iter().all(|a| a.reviewers.iter().any(|r| r == "fac")));
            }
        }
    }

    #[test]
    fn a_full_cohort_outside_rotation_reviews_in_pairs() {
        let blueprint = Blueprint::default_90_days(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), chrono_tz::UTC);
        let assignments = assign_reviews(&roles_for_week(&blueprint, &roster(12, true), 2));
        assert_eq!(assignments.len(), 12);
        assert!(assignments.iter().all(|a| a.reviewers.len() == 2 && !a.reviewers.iter().any(|r| r == "fac")));
    }
}
