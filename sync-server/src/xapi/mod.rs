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
    /// The LRS; without one, statements are queued (and exported) but not sent.
    pub lrs: Option<LrsConfig>,
    /// How often new records are queued and the queue is sent.
    pub interval: Duration,
}

impl XapiConfig {
    /// Checks the addresses an operator gave, naming the one that is wrong.
    pub fn checked(home: String, lrs: Option<LrsConfig>, interval: Duration) -> Result<Self, String> {
        let web_address = |what: &str, text: &str| match reqwest::Url::parse(text) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Ok(()),
            _ => Err(format!("{what} {text:?} is not an http(s) address")),
        };
        web_address("--xapi-home-page", &home)?;
        if let Some(lrs) = &lrs {
            web_address("--xapi-endpoint", &lrs.endpoint)?;
        }
        Ok(Self { home: home.trim_end_matches('/').to_owned(), lrs, interval })
    }
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

/// The home page used when the operator names none: a reserved name that is never anyone's.
pub const DEFAULT_HOME: &str = "https://microcohort.invalid";
