//! Who does what in a week, computed on the device from roster and week alone: rotating roles,
//! review assignments, the feedback window and the cohort's size.

use crate::client::Client;
use crate::domain::review::{ReviewAssignment, assign_reviews_on};
use crate::domain::roles::{WeekRoles, WeeklyRole, roles_for_week};
use crate::domain::roster::SizeStatus;
use crate::error::Result;

use super::*;

impl Client {
    pub fn week_roles(&self, week: u32) -> Result<WeekRoles> {
        let program = self.program()?;
        Ok(roles_for_week(&program.enrollment.blueprint, &self.roster()?, week).with_expectations(&program.pack.roles))
    }

    pub fn my_role(&self, week: u32) -> Result<Option<WeeklyRole>> {
        let me = self.membership()?.user_id;
        Ok(self.week_roles(week)?.role_of(&me))
    }

    /// Who reviews whose work in a week, as of today: members who left are out of it.
    pub fn review_assignments(&self, week: u32) -> Result<Vec<ReviewAssignment>> {
        self.assignments_for(&self.week_roles(week)?)
    }

    /// The review assignments of a week whose roles the caller already has.
    pub(crate) fn assignments_for(&self, roles: &WeekRoles) -> Result<Vec<ReviewAssignment>> {
        let zone = self.program()?.enrollment.blueprint.cohort_time_zone;
        let today = self.now().with_timezone(&zone).date_naive();
        Ok(assign_reviews_on(roles, &self.roster()?, today))
    }

    pub fn feedback_window(&self, week: u32) -> Result<FeedbackWindow> {
        let closes_at = self.program()?.enrollment.blueprint.feedback_closes_at(week);
        Ok(FeedbackWindow { closes_at, open: closes_at.is_none_or(|close| self.now() <= close) })
    }

    /// The cohort's size against its configured range (facilitators see the warning).
    pub fn cohort_size_status(&self) -> Result<SizeStatus> {
        let program = self.program()?;
        let blueprint = &program.enrollment.blueprint;
        // A control arm has no peers, so no size to keep.
        if blueprint.control_arm {
            return Ok(SizeStatus::Ok);
        }
        let today = self.now().with_timezone(&blueprint.cohort_time_zone).date_naive();
        let learners = self.roster()?.learners_on(today) as u32;
        Ok(blueprint.cohort_size.check(learners)?)
    }

    // ---- reading projections --------------------------------------------------------------
}
