//! Cohort membership: who is in the cohort in a given program week, and how big a cohort may be.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::DomainError;
use super::blueprint::Blueprint;
use super::time::DayStart;

/// No cohort may exceed this, whatever the program configures: peer feedback stops being
/// "micro" long before.
pub const HARD_MAX_COHORT: u32 = 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum MemberRole {
    Learner,
    Facilitator,
}

impl MemberRole {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Learner => "learner",
            Self::Facilitator => "facilitator",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "learner" => Some(Self::Learner),
            "facilitator" => Some(Self::Facilitator),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub user_id: String,
    pub display_name: String,
    pub role: MemberRole,
    /// Her current zone and day start, from her profile: where her days begin and end, on every
    /// device and on the server.
    pub time_zone: String,
    #[serde(default)]
    pub day_start: DayStart,
    pub joined_on: NaiveDate,
    pub left_on: Option<NaiveDate>,
    /// The day a facilitator marked her as having stopped practising: still a member, but out
    /// of review assignments from that day until a facilitator marks her back.
    #[serde(default)]
    pub paused_on: Option<NaiveDate>,
}

/// The cohort roster in join order (then by id), which keeps role rotation stable when someone
/// joins late: late joiners go to the end.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roster {
    members: Vec<Member>,
}

impl Roster {
    pub fn new(mut members: Vec<Member>) -> Self {
        members.sort_by(|a, b| (a.joined_on, &a.user_id).cmp(&(b.joined_on, &b.user_id)));
        members.dedup_by(|a, b| a.user_id == b.user_id);
        Self { members }
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn member(&self, user_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.user_id == user_id)
    }

    /// Learners taking part in `week`: joined before the week began and not left by then.
    /// Someone joining mid-week takes part from the next week on.
    pub fn learners_in_week(&self, blueprint: &Blueprint, week: u32) -> Vec<&Member> {
        let first = blueprint.date_of_day(blueprint.first_day_of_week(week));
        self.members
            .iter()
            .filter(|m| m.role == MemberRole::Learner)
            .filter(|m| m.joined_on <= first && m.left_on.is_none_or(|left| left > first))
            .collect()
    }

    /// Learners in the cohort on `day`: joined by then (mid-week too) and not left. What its size is.
    pub fn learners_on(&self, day: NaiveDate) -> usize {
        self.members
            .iter()
            .filter(|m| m.role == MemberRole::Learner && m.joined_on <= day && m.left_on.is_none_or(|left| left > day))
            .count()
    }

    pub fn facilitators(&self) -> impl Iterator<Item = &Member> {
        self.members.iter().filter(|m| m.role == MemberRole::Facilitator && m.left_on.is_none())
    }

    pub fn is_facilitator(&self, user_id: &str) -> bool {
        self.facilitators().any(|m| m.user_id == user_id)
    }
}

/// The configured cohort size range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CohortSize {
    pub min: u32,
    pub max: u32,
}

impl Default for CohortSize {
    fn default() -> Self {
        Self { min: 10, max: 12 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SizeStatus {
    Ok,
    /// Allowed, but facilitators are warned: below the minimum, peer feedback thins out.
    BelowMinimum {
        learners: u32,
        min: u32,
    },
}

impl CohortSize {
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.min < 1 || self.min > self.max || self.max > HARD_MAX_COHORT {
            return Err(DomainError::invalid(
                "cohort_size",
                format!("{}..={} must satisfy 1 ≤ min ≤ max ≤ {HARD_MAX_COHORT}", self.min, self.max),
            ));
        }
        Ok(())
    }

    /// Checks a number of learners against the range: above the maximum is an error.
    pub fn check(&self, learners: u32) -> Result<SizeStatus, DomainError> {
        if learners > self.max {
            return Err(DomainError::CohortFull { learners, max: self.max });
        }
        Ok(if learners < self.min { SizeStatus::BelowMinimum { learners, min: self.min } } else { SizeStatus::Ok })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 3, day).unwrap()
    }

    pub(crate) fn learner(id: &str, joined: u32) -> Member {
        Member {
            user_id: id.into(),
            display_name: id.to_uppercase(),
            role: MemberRole::Learner,
            time_zone: "Europe/Berlin".into(),
            day_start: DayStart::default(),
            joined_on: d(joined),
            left_on: None,
            paused_on: None,
        }
    }

    #[test]
    fn late_joiners_and_leavers_take_part_from_and_until_week_boundaries() {
        let blueprint = Blueprint::default_90_days(d(2), chrono_tz::Europe::Berlin);
        let mut leaver = learner("c", 1);
        leaver.left_on = Some(d(16)); // week 2 runs 15–21 March; left after it began
        let roster = Roster::new(vec![learner("b", 1), learner("a", 1), learner("late", 10), leaver]);
        let ids =
            |week| roster.learners_in_week(&blueprint, week).iter().map(|m| m.user_id.clone()).collect::<Vec<_>>();
        assert_eq!(ids(1), vec!["a", "b", "c"]); // week 1 starts 8 March
        assert_eq!(ids(2), vec!["a", "b", "c", "late"]);
        assert_eq!(ids(3), vec!["a", "b", "late"]);
        // The cohort's size counts who is in it that day, a mid-week joiner included.
        assert_eq!(roster.learners_on(d(10)), 4);
        assert_eq!(roster.learners_on(d(9)), 3);
        assert_eq!(roster.learners_on(d(16)), 3, "c left on the 16th");
    }

    #[test]
    fn cohort_size_is_enforced_with_a_warning_below_the_minimum() {
        let size = CohortSize::default();
        assert_eq!(size.check(11).unwrap(), SizeStatus::Ok);
        assert_eq!(size.check(8).unwrap(), SizeStatus::BelowMinimum { learners: 8, min: 10 });
        let err = size.check(40).unwrap_err();
        assert!(err.to_string().contains("40") && err.to_string().contains("12"), "{err}");
        assert!(CohortSize { min: 10, max: 40 }.validate().is_err());
    }
}
