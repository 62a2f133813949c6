//! Weekly roles. Every device computes the same roles from the roster and the week alone.
//!
//! In rotation weeks (5–8 by default) each learner holds one role besides their daily practice:
//! practitioner (shares work for critique), reviewer (gives feedback on assigned practitioners'
//! work) or synthesizer (co-writes the week's synthesis). Learners are split into three groups by
//! roster position and the groups' roles rotate each week, so over any 3 consecutive rotation weeks
//! with an unchanged roster every learner holds each role exactly once. Outside rotation weeks
//! everyone practises and reviews, and the facilitator leads the critique.

use serde::{Deserialize, Serialize};

use super::blueprint::{Blueprint, Phase};
use super::roster::Roster;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum WeeklyRole {
    Practitioner,
    Reviewer,
    Synthesizer,
    /// Outside rotation weeks: practise, share and review.
    PractiseAndReview,
    Facilitator,
}

impl WeeklyRole {
    /// Every role, in the order a week's expectations are listed.
    pub const ALL: [WeeklyRole; 5] = [
        WeeklyRole::Practitioner,
        WeeklyRole::Reviewer,
        WeeklyRole::Synthesizer,
        WeeklyRole::PractiseAndReview,
        WeeklyRole::Facilitator,
    ];

    /// The role's name in a prompt pack file.
    pub fn slug(self) -> &'static str {
        match self {
            WeeklyRole::Practitioner => "practitioner",
            WeeklyRole::Reviewer => "reviewer",
            WeeklyRole::Synthesizer => "synthesizer",
            WeeklyRole::PractiseAndReview => "practise-and-review",
            WeeklyRole::Facilitator => "facilitator",
        }
    }

    pub fn from_slug(slug: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.slug() == slug)
    }
}

/// What a prompt pack says a role is expected to do: in the listed weeks, or (none listed) in
/// every week the role exists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleExpectation {
    pub role: WeeklyRole,
    pub weeks: Vec<u32>,
    pub text: String,
}

/// The pack's expectation of `role` in `week`: the week's own text before the general one.
pub fn expectation_for(expectations: &[RoleExpectation], role: WeeklyRole, week: u32) -> Option<&str> {
    let of_role = || expectations.iter().filter(move |e| e.role == role);
    of_role()
        .find(|e| e.weeks.contains(&week))
        .or_else(|| of_role().find(|e| e.weeks.is_empty()))
        .map(|e| e.text.as_str())
}

const ROTATION: [WeeklyRole; 3] = [WeeklyRole::Practitioner, WeeklyRole::Reviewer, WeeklyRole::Synthesizer];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeekRoles {
    pub week: u32,
    pub rotation: bool,
    /// Every active learner and facilitator with their role, in roster order.
    pub roles: Vec<(String, WeeklyRole)>,
    /// Who leads the weekly critique: the member a facilitator named for the week (while in the
    /// cohort), else the first facilitator, if the cohort has one.
    pub critique_lead: Option<String>,
    /// What each role held this week is expected to do, from the prompt pack (roles the pack
    /// says nothing about are left out).
    #[serde(default)]
    pub expectations: Vec<(WeeklyRole, String)>,
}

impl WeekRoles {
    pub fn role_of(&self, user_id: &str) -> Option<WeeklyRole> {
        self.roles.iter().find(|(id, _)| id == user_id).map(|(_, role)| *role)
    }

    pub fn with_role(&self, role: WeeklyRole) -> Vec<&str> {
        self.roles.iter().filter(|(_, r)| *r == role).map(|(id, _)| id.as_str()).collect()
    }

    /// Adds the pack's expectations of the roles someone holds this week.
    pub fn with_expectations(mut self, pack: &[RoleExpectation]) -> Self {
        self.expectations = WeeklyRole::ALL
            .into_iter()
            .filter(|role| self.roles.iter().any(|(_, held)| held == role))
            .filter_map(|role| expectation_for(pack, role, self.week).map(|text| (role, text.to_owned())))
            .collect();
        self
    }

    /// May this user edit the week's shared synthesis?
    pub fn may_edit_synthesis(&self, user_id: &str) -> bool {
        matches!(self.role_of(user_id), Some(WeeklyRole::Synthesizer | WeeklyRole::Facilitator))
            || (!self.rotation && self.role_of(user_id).is_some())
    }
}

pub fn roles_for_week(blueprint: &Blueprint, roster: &Roster, week: u32) -> WeekRoles {
    let learners = roster.learners_in_week(blueprint, week);
    let rotation = blueprint.phase_of_week(week) == Phase::RoleRotation && learners.len() >= 3;
    let first_rotation_week = blueprint.last_practice_week + 1;
    let turn = week.saturating_sub(first_rotation_week) as usize;
    let mut roles: Vec<(String, WeeklyRole)> = learners
        .iter()
        .enumerate()
        .map(|(position, member)| {
            let role = if rotation { ROTATION[(position % 3 + turn) % 3] } else { WeeklyRole::PractiseAndReview };
            (member.user_id.clone(), role)
        })
        .collect();
    roles.extend(roster.facilitators().map(|f| (f.user_id.clone(), WeeklyRole::Facilitator)));
    WeekRoles { week, rotation, roles, critique_lead: critique_lead(blueprint, roster, week), expectations: Vec::new() }
}

fn critique_lead(blueprint: &Blueprint, roster: &Roster, week: u32) -> Option<String> {
    let named = blueprint.critique_weeks.get(&week).and_then(|w| w.lead.as_deref());
    named
        .filter(|lead| roster.member(lead).is_some_and(|m| m.left_on.is_none()))
        .map(str::to_owned)
        .or_else(|| roster.facilitators().next().map(|f| f.user_id.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::roster::{Member, MemberRole};
    use chrono::NaiveDate;
    use proptest::prelude::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
    }

    fn member(id: String, role: MemberRole) -> Member {
        Member {
            user_id: id,
            display_name: String::new(),
            role,
            time_zone: "UTC".into(),
            day_start: Default::default(),
            joined_on: d(1),
            left_on: None,
            paused_on: None,
        }
    }

    fn roster(learners: usize) -> Roster {
        let mut members: Vec<Member> = (0..learners).map(|i| member(format!("u{i:02}"), MemberRole::Learner)).collect();
        members.push(member("fac".into(), MemberRole::Facilitator));
        Roster::new(members)
    }

    fn blueprint() -> Blueprint {
        Blueprint::default_90_days(d(2), chrono_tz::UTC)
    }

    #[test]
    fn outside_rotation_everyone_practises_and_reviews_and_the_facilitator_leads() {
        let roles = roles_for_week(&blueprint(), &roster(11), 3);
        assert!(!roles.rotation);
        assert_eq!(roles.with_role(WeeklyRole::PractiseAndReview).len(), 11);
        assert_eq!(roles.critique_lead.as_deref(), Some("fac"));
        assert_eq!(roles.role_of("fac"), Some(WeeklyRole::Facilitator));
    }

    proptest! {
        #[test]
        fn three_consecutive_rotation_weeks_give_everyone_every_role_once(learners in 3usize..=20, start in 5u32..=6) {
            let b = blueprint();
            let r = roster(learners);
            for user in r.members().iter().filter(|m| m.role == MemberRole::Learner) {
                let mut held: Vec<WeeklyRole> = (start..start + 3)
                    .map(|week| roles_for_week(&b, &r, week).role_of(&user.user_id).unwrap())
                    .collect();
                held.sort();
                prop_assert_eq!(held, ROTATION.to_vec());
            }
            // Every role is held by someone each week.
            for week in 5..=8 {
                let roles = roles_for_week(&b, &r, week);
                for role in ROTATION {
                    prop_assert!(!roles.with_role(role).is_empty());
                }
            }
        }
    }

    #[test]
    fn a_member_joining_or_leaving_mid_rotation_still_gets_a_full_assignment() {
        let b = blueprint();
        let mut members: Vec<Member> = (0..10).map(|i| member(format!("u{i:02}"), MemberRole::Learner)).collect();
        members[3].left_on = Some(b.date_of_day(b.first_day_of_week(6)));
        let mut late = member("zz-late".into(), MemberRole::Learner);
        late.joined_on = b.date_of_day(b.first_day_of_week(6));
        members.push(late);
        let r = Roster::new(members);
        for week in 5..=8 {
            let roles = roles_for_week(&b, &r, week);
            assert_eq!(roles.roles.len(), 10, "week {week}: 10 learners, no facilitator in this roster");
            for role in ROTATION {
                assert!(!roles.with_role(role).is_empty(), "week {week} lacks {role:?}");
            }
        }
        assert!(roles_for_week(&b, &r, 5).role_of("u03").is_some());
        assert_eq!(roles_for_week(&b, &r, 6).role_of("u03"), None);
        assert!(roles_for_week(&b, &r, 6).role_of("zz-late").is_some());
    }

    #[test]
    fn tiny_cohorts_do_not_rotate() {
        let roles = roles_for_week(&blueprint(), &roster(2), 6);
        assert!(!roles.rotation);
        assert_eq!(roles.with_role(WeeklyRole::PractiseAndReview).len(), 2);
    }

    #[test]
    fn a_week_gets_the_expectations_of_the_roles_held_in_it_its_own_text_first() {
        let expect =
            |role, weeks: &[u32], text: &str| RoleExpectation { role, weeks: weeks.to_vec(), text: text.into() };
        let pack = [
            expect(WeeklyRole::Reviewer, &[], "Review two peers"),
            expect(WeeklyRole::Reviewer, &[8], "Review two capstone plans"),
            expect(WeeklyRole::Facilitator, &[], "Lead the critique"),
            expect(WeeklyRole::PractiseAndReview, &[], "Practise daily"),
        ];
        let week6 = roles_for_week(&blueprint(), &roster(9), 6).with_expectations(&pack);
        assert_eq!(
            week6.expectations,
            vec![
                (WeeklyRole::Reviewer, "Review two peers".into()),
                (WeeklyRole::Facilitator, "Lead the critique".into())
            ],
            "practitioners and synthesizers have no text in this pack; nobody practises-and-reviews in rotation"
        );
        let week8 = roles_for_week(&blueprint(), &roster(9), 8).with_expectations(&pack);
        assert_eq!(week8.expectations[0], (WeeklyRole::Reviewer, "Review two capstone plans".into()));
        let week2 = roles_for_week(&blueprint(), &roster(9), 2).with_expectations(&pack);
        assert_eq!(week2.expectations[0], (WeeklyRole::PractiseAndReview, "Practise daily".into()));
        for role in WeeklyRole::ALL {
            assert_eq!(WeeklyRole::from_slug(role.slug()), Some(role));
        }
    }
}
