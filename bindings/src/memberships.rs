//! The person's memberships on one device: list them, select the one the screens are about,
//! fetch ones joined elsewhere, and the facilitator's dashboards of every cohort she runs.

use microcohort_core::MembershipView;
use microcohort_core::domain::arms::Arm;
use microcohort_core::domain::cohort_metrics::CohortReport;

use crate::client::{Client, on_runtime};
use crate::error::Result;

#[uniffi::remote(Record)]
pub struct MembershipView {
    pub cohort_id: String,
    pub program_id: Option<String>,
    pub program_title: Option<String>,
    /// `learner` or `facilitator`; none when the device was not told.
    pub role: Option<String>,
    /// The membership every screen call is about now.
    pub selected: bool,
    /// `Control`: the practice loop alone; the app shows no cohort screens (sharing and
    /// feedback are refused with `Rejected(ControlArm)`).
    pub arm: Arm,
}

#[uniffi::export]
impl Client {
    /// Every membership on this device, the selected one first.
    pub async fn memberships(&self) -> Result<Vec<MembershipView>> {
        self.run(move |core| core.memberships()).await
    }

    /// Selects the membership every screen call is about (a cohort switcher).
    /// `InvalidInput(cohort_id)` for a cohort this device holds no membership of.
    pub async fn select_membership(&self, cohort_id: String) -> Result<()> {
        self.run(move |core| core.select_membership(&cohort_id)).await
    }

    /// Sets up the person's memberships made on another device (the selection stays); returns
    /// how many were added. The next sync brings their documents.
    pub async fn refresh_memberships(&self) -> Result<u32> {
        let core = self.core.clone();
        on_runtime(move || core.refresh_memberships()).await.map(|n| u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The dashboard of every cohort she facilitates, offline, in cohort order.
    pub async fn facilitator_overview(&self) -> Result<Vec<CohortReport>> {
        self.run(move |core| core.facilitator_overview()).await
    }
}
