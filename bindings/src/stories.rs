//! Transfer stories a learner shares with the program team (sent with the next sync).

use microcohort_core::store::stories::StoryState;

use crate::client::{Client, parse_id};
use crate::error::Result;

#[uniffi::remote(Enum)]
pub enum StoryState {
    /// Goes with the next sync.
    Pending,
    /// The program team has it.
    Shared,
    /// The server refused it (`unknown_log`, `not_yours`).
    Refused(String),
}

#[uniffi::export]
impl Client {
    /// Shares the transfer evidence of one of her completed practices with the program team;
    /// the private reflection never goes with it. `InvalidInput(log_id)` for a practice without
    /// transfer evidence.
    pub async fn share_transfer_story(&self, log_id: String) -> Result<StoryState> {
        let log_id = parse_id("log_id", &log_id)?;
        self.run(move |core| core.share_transfer_story(log_id)).await
    }

    /// Where her story about a practice is; none when she has not shared one.
    pub async fn transfer_story(&self, log_id: String) -> Result<Option<StoryState>> {
        let log_id = parse_id("log_id", &log_id)?;
        self.run(move |core| core.transfer_story(log_id)).await
    }
}
