//! A person's memberships on one device: a learner in two programs, a facilitator of several
//! cohorts. One is selected at a time; every screen call is about the selected membership (and
//! its program), and sync covers all of them. The facilitator's overview reads every cohort she
//! facilitates.

use std::sync::Arc;

use super::{Client, ClientEvent, DataChange, Program};
use crate::domain::DomainError;
use crate::domain::arms::Arm;
use crate::domain::cohort_metrics::CohortReport;
use crate::error::{Error, Result};
use crate::store::cohort::{self as cohort_store, MembershipRow};
use crate::store::{enrollment, prompts};

/// One of the person's memberships, as a cohort switcher shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipView {
    pub cohort_id: String,
    pub program_id: Option<String>,
    pub program_title: Option<String>,
    /// `learner` or `facilitator` (`None` when the device was not told).
    pub role: Option<String>,
    /// The membership screen calls are about now.
    pub selected: bool,
    /// In a control arm the app runs the practice loop alone (no cohort screens).
    pub arm: Arm,
}

impl Client {
    /// Every membership on this device, the selected one first.
    pub fn memberships(&self) -> Result<Vec<MembershipView>> {
        let rows = self.store().read(cohort_store::memberships)?;
        rows.into_iter()
            .map(|row| {
                let title = match &row.program_id {
                    Some(program) => {
                        self.store().read(|c| enrollment::enrollment_of(c, program))?.map(|e| e.program_title)
                    }
                    None => None,
                };
                Ok(MembershipView {
                    program_title: title,
                    role: Some(row.role).filter(|r| !r.is_empty()),
                    arm: row.arm,
                    cohort_id: row.cohort_id,
                    program_id: row.program_id,
                    selected: row.selected,
                })
            })
            .collect()
    }

    /// Selects the membership every screen call is about (a cohort switcher): its cohort, its
    /// program, its dashboard.
    pub fn select_membership(&self, cohort_id: &str) -> Result<()> {
        if !self.store().write(|tx| cohort_store::select_membership(tx, cohort_id))? {
            return Err(
                DomainError::invalid("cohort_id", format!("this device holds no membership of {cohort_id}")).into()
            );
        }
        self.forget_program();
        self.notify(ClientEvent::DataChanged(DataChange::Program));
        Ok(())
    }

    /// The dashboard of every cohort this person facilitates, in cohort order (the selected one
    /// too): what a facilitator of several cohorts reviews on the go.
    pub fn facilitator_overview(&self) -> Result<Vec<CohortReport>> {
        let memberships = self.store().read(cohort_store::memberships)?;
        let mut reports = Vec::new();
        for row in memberships {
            match self.cohort_dashboard_of(&row) {
                Ok(report) => reports.push(report),
                Err(Error::FacilitatorOnly | Error::NotEnrolled) => {}
                Err(other) => return Err(other),
            }
        }
        reports.sort_by(|a, b| a.cohort_id.cmp(&b.cohort_id));
        Ok(reports)
    }

    /// A membership by its cohort.
    pub(crate) fn membership_row(&self, cohort_id: &str) -> Result<MembershipRow> {
        self.store()
            .read(cohort_store::memberships)?
            .into_iter()
            .find(|m| m.cohort_id == cohort_id)
            .ok_or(Error::NotInCohort)
    }

    /// The program of a membership (not necessarily the selected one), its blueprint carrying
    /// that cohort's critique weeks.
    pub(crate) fn program_of(&self, membership: &MembershipRow) -> Result<Arc<Program>> {
        let program_id = membership.program_id.as_deref().ok_or(Error::NotEnrolled)?;
        let selected = self.store().read(cohort_store::membership)?;
        if selected.is_some_and(|m| m.cohort_id == membership.cohort_id) {
            return self.program();
        }
        self.store().read(|conn| {
            let mut enrollment = enrollment::enrollment_of(conn, program_id)?.ok_or(Error::NotEnrolled)?;
            enrollment.blueprint.critique_weeks = cohort_store::critique_weeks(conn, &membership.cohort_id)?;
            enrollment.blueprint.control_arm = membership.arm == crate::domain::arms::Arm::Control;
            let pack = prompts::latest(conn, &enrollment.pack_id)?;
            Ok(Arc::new(Program { enrollment, pack }))
        })
    }
}
