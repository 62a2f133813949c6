//! A facilitator changes one week's critique from the phone: moves it (a holiday week), sets
//! its meeting link, or names the member who leads it. The server checks and writes it into the
//! cohort document; the next sync brings it to every device, whose reminders, calendar and
//! feedback windows follow.

use super::client::decoded;
use super::devices::post_signed_in;
use super::wire::{self, CRITIQUE_WEEKS_PATH};
use crate::client::Client;
use crate::domain::critique_week::{self, CritiqueWeek, CritiqueWeekChange};
use crate::error::{Error, Result};

impl Client {
    /// Changes a week's critique in the selected cohort (facilitators only), then syncs so this
    /// device shows it at once. Checked here first with the server's own rules, so a wrong
    /// time, lead or link is a typed error even offline; the server checks again.
    pub fn change_critique_week(&self, change: &CritiqueWeekChange) -> Result<CritiqueWeek> {
        let link = self.server_link()?;
        let membership = self.membership()?;
        let roster = self.roster()?;
        if !roster.is_facilitator(&membership.user_id) {
            return Err(Error::FacilitatorOnly);
        }
        critique_week::check_change(&self.program()?.enrollment.blueprint, &roster, change)?;
        let answer = post_signed_in(&link, CRITIQUE_WEEKS_PATH, &membership.cohort_id, wire::encode(change))?;
        let changed: CritiqueWeek = decoded(&answer)?;
        self.sync_now()?;
        Ok(changed)
    }
}
