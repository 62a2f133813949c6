//! The device's person: one database holds one person's data. Deleting it ("delete my data on
//! this device", signing out) removes everything listed in `store::person`; the next person to
//! join starts with a new automerge actor, since the old one is bound to the previous person on
//! the server.

use super::{Client, ClientEvent, DataChange};
use crate::error::Result;
use crate::store::person;

/// What this device recorded and has not sent yet: the app shows it before deleting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnsentWork {
    /// Practice logs, transfer stories she shared and calibration ratings not yet on the server.
    pub practice_logs: u64,
    pub cohort_entries: u64,
}

impl Client {
    /// Deletes everything of this device's person from it: practice history and reflections,
    /// cohort copies, settings and the sign-in (the prompt library stays). What was not synced
    /// is gone; [`Client::unsent_work`] tells the app what that would be. The device's token is
    /// forgotten here, not revoked: `sign_out` does both.
    pub fn delete_my_data(&self) -> Result<()> {
        self.secrets().forget()?;
        self.store().write(person::forget_person)?;
        self.open_docs().clear();
        self.forget_program();
        self.notify(ClientEvent::DataChanged(DataChange::Program));
        self.notify(ClientEvent::SyncStatusChanged);
        Ok(())
    }

    /// Drops what the device holds of a cohort she left (see `leave_cohort`); with her last
    /// membership, the link to the server goes too. Her other memberships stay.
    #[cfg(feature = "sync-client")]
    pub(crate) fn forget_cohort(&self, cohort_id: &str) -> Result<()> {
        self.store().write(|tx| {
            if !crate::store::cohort::forget_membership(tx, cohort_id)? {
                crate::store::sync_state::forget_link(tx)?;
            }
            Ok(())
        })?;
        self.forget_program();
        self.open_docs().clear();
        self.notify(ClientEvent::DataChanged(DataChange::Program));
        self.notify(ClientEvent::SyncStatusChanged);
        Ok(())
    }

    pub fn unsent_work(&self) -> Result<UnsentWork> {
        let (practice_logs, cohort_entries) = self.store().read(person::unsent)?;
        Ok(UnsentWork { practice_logs, cohort_entries })
    }

    /// The person whose data this database holds, if any.
    #[cfg(feature = "sync-client")]
    pub(crate) fn current_person(&self) -> Result<Option<String>> {
        self.store().read(crate::store::cohort::person)
    }
}
