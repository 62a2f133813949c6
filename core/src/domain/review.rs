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

use chrono::NaiveDate;

use super::roles::{WeekRoles, WeeklyRole};
use super::roster::Roster;

pub const REVIEWERS_PER_SUBMISSION: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewAssignment {
    pub practitioner: String,
    pub reviewers: Vec<String>,
}

/// Assignments for a week, from its roles.
pub fn assign_reviews(roles: &WeekRoles) -> Vec<ReviewAssignment> {
    assign_reviews_without(roles, &[])
}

/// Assignments for a week as of `day`: members who left the cohort by then (mid-week too) are
/// out of it, so the others take over their reviews and nobody owes a review of their work.
pub fn assign_reviews_on(roles: &WeekRoles, roster: &Roster, day: NaiveDate) -> Vec<ReviewAssignment> {
    let gone: Vec<&str> = roster
        .members()
        .iter()
        .filter(|m| m.left_on.is_some_and(|left| left <= day) || m.paused_on.is_some_and(|paused| paused <= day))
        .map(|m| m.user_id.as_str())
        .collect();
    assign_reviews_without(roles, &gone)
}

fn assign_reviews_without(roles: &WeekRoles, gone: &[&str]) -> Vec<ReviewAssignment> {
    // The facilitator reviews in a small cohort, whoever leads the week's critique.
    let facilitator = roles.roles.iter().find(|(_, r)| *r == WeeklyRole::Facilitator).map(|(id, _)| id.as_str());
    let here = |id: &&str| !gone.contains(id);
    let learners: Vec<&str> = roles
        .roles
        .iter()
        .filter(|(_, r)| *r != WeeklyRole::Facilitator)
        .map(|(id, _)| id.as_str())
        .filter(here)
        .collect();
    let (practitioners, reviewers) = if roles.rotation {
        let with = |role| roles.with_role(role).into_iter().filter(here).collect::<Vec<&str>>();
        let practitioners = with(WeeklyRole::Practitioner);
        let mut reviewers = with(WeeklyRole::Reviewer);
        // Members who left leave too few reviewers: this week's synthesizers review as well,
        // then the practitioners each other's work.
        for extra in [with(WeeklyRole::Synthesizer), practitioners.clone()] {
            if !gone.is_empty() && reviewers.len() < REVIEWERS_PER_SUBMISSION {
                reviewers.extend(extra);
            }
        }
        (practitioners, reviewers)
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
    use crate::domain::roster::{Member, MemberRole};
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
            paused_on: None,
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
    fn a_learner_leading_the_critique_does_not_stand_in_for_the_facilitator() {
        let mut blueprint = Blueprint::default_90_days(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), chrono_tz::UTC);
        let week = crate::domain::critique_week::CritiqueWeek { lead: Some("u00".into()), ..Default::default() };
        blueprint.critique_weeks.insert(2, week);
        let roles = roles_for_week(&blueprint, &roster(2, true), 2);
        assert_eq!(roles.critique_lead.as_deref(), Some("u00"));
        let assignments = assign_reviews(&roles);
        assert!(assignments.iter().all(|a| a.reviewers.iter().any(|r| r == "fac")), "{assignments:?}");
    }

    #[test]
    fn a_full_cohort_outside_rotation_reviews_in_pairs() {
        let blueprint = Blueprint::default_90_days(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), chrono_tz::UTC);
        let assignments = assign_reviews(&roles_for_week(&blueprint, &roster(12, true), 2));
        assert_eq!(assignments.len(), 12);
        assert!(assignments.iter().all(|a| a.reviewers.len() == 2 && !a.reviewers.iter().any(|r| r == "fac")));
    }

    proptest! {
        /// Whoever leaves mid-week, in or out of rotation: nobody reviews for them or owes a
        /// review of their work, and everyone else's work still gets two reviewers.
        #[test]
        fn who_leaves_mid_week_hands_their_reviews_to_the_others(
            learners in 3usize..=12,
            week in 1u32..=12,
            leaving in proptest::collection::btree_set(0usize..12, 1..4),
        ) {
            let blueprint = Blueprint::default_90_days(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), chrono_tz::UTC);
            let first = blueprint.date_of_day(blueprint.first_day_of_week(week));
            let mut members = roster(learners, true).members().to_vec();
            let gone: Vec<String> = leaving.iter().filter(|i| **i < learners).map(|i| format!("u{i:02}")).collect();
            for m in members.iter_mut().filter(|m| gone.contains(&m.user_id)) {
                m.left_on = Some(first + chrono::Days::new(2));
            }
            let roster = Roster::new(members);
            let roles = roles_for_week(&blueprint, &roster, week);
            let before = assign_reviews_on(&roles, &roster, first);
            prop_assert_eq!(&before, &assign_reviews(&roles), "nobody has left yet");
            let after = assign_reviews_on(&roles, &roster, first + chrono::Days::new(3));
            let left_in_cohort = learners - gone.len();
            // One learner left alone has only the facilitator to review her.
            let needed = if left_in_cohort == 1 { 1 } else { REVIEWERS_PER_SUBMISSION };
            for a in &after {
                prop_assert!(!gone.contains(&a.practitioner));
                prop_assert!(!a.reviewers.iter().any(|r| gone.contains(r)), "{:?}", a);
                prop_assert!(a.reviewers.len() >= needed, "{:?}", a);
            }
            let staying = roles.roles.iter().filter(|(id, r)| *r != WeeklyRole::Facilitator && !gone.contains(id));
            let practising = if roles.rotation {
                staying.filter(|(_, r)| *r == WeeklyRole::Practitioner).count()
            } else {
                staying.count()
            };
            prop_assert_eq!(after.len(), practising);
        }
    }
}
