//! The facilitator's cohort dashboard, computed offline from the device's projections and the
//! practice logs relayed to it.

use crate::docs::DocId;
use crate::docs::report_facts::{week_attendance, week_facts};
use crate::domain::cohort_metrics::{CohortFacts, CohortReport, activity_from_logs, cohort_report};
use crate::error::{Error, Result};
use crate::store::cohort::MembershipRow;
use crate::store::{cohort as cohort_store, dashboard};

use super::Client;

impl Client {
    /// Every member's figures and the cohort's engagement and feedback quality, as of now.
    /// Only the cohort's facilitators receive the members' practice logs, so only they get it.
    /// The selected membership's cohort (see `facilitator_overview` for all of hers).
    pub fn cohort_dashboard(&self) -> Result<CohortReport> {
        let selected = self.membership()?;
        self.cohort_dashboard_of(&self.membership_row(&selected.cohort_id)?)
    }

    pub(super) fn cohort_dashboard_of(&self, membership: &MembershipRow) -> Result<CohortReport> {
        let roster = self.store().read(|conn| cohort_store::roster(conn, &membership.cohort_id))?;
        if !roster.is_facilitator(&membership.user_id) {
            return Err(Error::FacilitatorOnly);
        }
        let program = self.program_of(membership)?;
        let blueprint = program.enrollment.blueprint.clone();
        let (logs, weeks) = self.store().read(|conn| {
            let logs = dashboard::cohort_log_facts(conn, &membership.cohort_id)?;
            let weeks = (0..=blueprint.weeks)
                .map(|week| {
                    Ok((week, cohort_store::week_rows(conn, &DocId::week(&membership.cohort_id, week).to_string())?))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((logs, weeks))
        })?;
        let (mut submissions, mut feedback, mut attendance) = (Vec::new(), Vec::new(), Vec::new());
        for (week, rows) in &weeks {
            let (s, f) = week_facts(*week, rows, &program.pack);
            submissions.extend(s);
            feedback.extend(f);
            attendance.extend(week_attendance(*week, rows));
        }
        let facts = CohortFacts {
            cohort_id: membership.cohort_id.clone(),
            title: program.enrollment.program_title.clone(),
            blueprint,
            roster,
            activity: activity_from_logs(&logs),
            submissions,
            feedback,
            attendance,
            // Only a cohort has a facilitator, so a dashboard is always a cohort's.
            arm: Default::default(),
        };
        Ok(cohort_report(&facts, self.now()))
    }
}
