//! Transfer stories: a learner shares how she applied a practice at work with the program team
//! (not only her cohort). The story is the log's transfer evidence; the private reflection never
//! goes with it. It waits on the device until the next sync, like everything else.

use uuid::Uuid;

use super::Client;
use crate::domain::DomainError;
use crate::error::{Error, Result};
use crate::store::practice::{self as logs, PracticeStatus};
use crate::store::stories::{self, StoryState};

impl Client {
    /// Shares the transfer evidence of one of her completed practices with the program team
    /// (sent with the next sync). Sharing it again changes nothing.
    pub fn share_transfer_story(&self, log_id: Uuid) -> Result<StoryState> {
        let log = self.store().read(|conn| logs::log(conn, log_id))?.ok_or(Error::UnknownPracticeLog(log_id))?;
        if log.status != PracticeStatus::Completed {
            return Err(DomainError::invalid("log_id", "only a completed practice has a transfer story").into());
        }
        let evidence = log
            .transfer
            .ok_or_else(|| DomainError::invalid("log_id", "this practice has no transfer evidence to share"))?;
        let id = log_id.to_string();
        self.store().write(|tx| stories::add(tx, &id, &log.program_id, &evidence))?;
        self.transfer_story(log_id).map(|state| state.unwrap_or(StoryState::Pending))
    }

    /// Where her story about a practice is (`None`: not shared).
    pub fn transfer_story(&self, log_id: Uuid) -> Result<Option<StoryState>> {
        self.store().read(|conn| stories::state(conn, &log_id.to_string()))
    }
}
