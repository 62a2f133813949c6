//! Learning records for the organisation's LRS: what learners did, as xAPI 2.0 statements.
//!
//! - [`statements`]: the mapping (verbs, activity ids, statement ids derived from ours); pure.
//! - [`outbox`]: the persistent queue beside the report tables, filled off the sync path.
//! - [`delivery`]: the background task that fills the queue and sends it to the LRS, retrying
//!   with backoff while the LRS is away; sync never waits for it.

pub mod delivery;
pub mod export;
pub mod outbox;
pub mod statements;

use std::time::Duration;

/// Where statements go and how they name things.
#[derive(Debug, Clone)]
pub struct XapiConfig {
    /// The server's public address: learners' accounts and activity ids live under it.
    pub home: String,
    pub lrs: LrsConfig,
    /// How often new records are queued and the queue is sent.
    pub interval: Duration,
}

/// An LRS's xAPI endpoint (the address `statements` is under) and its HTTP Basic credentials.
#[derive(Clone)]
pub struct LrsConfig {
    pub endpoint: String,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for LrsConfig {
    /// Never prints the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LrsConfig").field("endpoint", &self.endpoint).field("username", &self.username).finish()
    }
}

/// An operator's address for `flag`, checked: an http(s) URL with a host, without a trailing `/`.
pub fn web_address(flag: &str, text: &str) -> Result<String, String> {
    match reqwest::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            Ok(text.trim_end_matches('/').to_owned())
        }
        _ => Err(format!("{flag} {text:?} is not an http(s) address")),
    }
}

/// The home page statements are made with: it is written into every statement queued, so it
/// must be the operator's own choice, never a default.
pub fn home_page(given: Option<&str>) -> Result<String, String> {
    let given = given.ok_or(
        "learning records need --xapi-home-page (MICROCOHORT_XAPI_HOME_PAGE): the server's public address, \
         under which statements name learners and activities",
    )?;
    web_address("--xapi-home-page", given)
}
