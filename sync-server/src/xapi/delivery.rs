//! Sends the queue to the LRS, oldest first, in batches. A batch the LRS stored is marked
//! delivered; one it refuses is sent again statement by statement, so one bad statement is set
//! aside (kept, with the LRS's reason) and never holds up the rest. While the LRS cannot be
//! reached, statements stay queued and the task waits longer each time, up to five minutes.
//!
//! A statement sent again (the server stopped between the LRS storing it and the mark) has the
//! same id and bytes, and the LRS keeps its one copy.

use std::sync::Arc;
use std::time::Duration;

use super::outbox::{Outbox, Queued};
use super::statements::XAPI_VERSION;
use super::{LrsConfig, XapiConfig};
use crate::app::{AppState, blocking};
use crate::error::ApiError;
use crate::metrics::StateLabels;
use crate::storage::documents::now_ms;

/// Statements per request (Ralph and most LRSs take far more; this keeps a request small).
const BATCH: i64 = 200;
const LONGEST_WAIT: Duration = Duration::from_secs(300);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the LRS said to one request.
enum Answer {
    Stored,
    /// About the statements themselves (400, 409, 413, 422): sending them again will not help.
    Refused(String),
    /// Not reachable, not authorised, or failing: try again later.
    Unavailable(String),
}

struct Lrs {
    http: reqwest::Client,
    statements_url: String,
    config: LrsConfig,
}

impl Lrs {
    fn new(config: &LrsConfig) -> Self {
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A redirect would turn the POST into a GET that answers 200 without storing anything.
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let statements_url = format!("{}/statements", config.endpoint.trim_end_matches('/'));
        Self { http, statements_url, config: config.clone() }
    }

    async fn send(&self, batch: &[Queued]) -> Answer {
        // The stored bytes, unchanged: a resend is the same statement.
        let body = format!("[{}]", batch.iter().map(|q| q.json.as_str()).collect::<Vec<_>>().join(","));
        let mut request = self
            .http
            .post(&self.statements_url)
            .header("X-Experience-API-Version", XAPI_VERSION)
            .header("Content-Type", "application/json")
            .body(body);
        if let Some(user) = &self.config.username {
            request = request.basic_auth(user, self.config.password.as_deref());
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Answer::Unavailable(format!("{}: {err}", self.statements_url)),
        };
        let status = response.status();
        if status.is_success() {
            return Answer::Stored;
        }
        if status.is_redirection() {
            let to = response.headers().get("location").and_then(|l| l.to_str().ok()).unwrap_or("?").to_owned();
            return Answer::Unavailable(format!("{status}: the LRS redirects to {to}; set --xapi-endpoint to it"));
        }
        let text = response.text().await.unwrap_or_default();
        let reason = format!("{status}: {}", text.chars().take(300).collect::<String>());
        match status.as_u16() {
            400 | 409 | 413 | 422 => Answer::Refused(reason),
            _ => Answer::Unavailable(reason),
        }
    }
}

/// Fills the queue and sends it, every `interval`, for as long as the server runs.
pub async fn run(state: Arc<AppState>, config: XapiConfig) {
    let lrs = Lrs::new(&config.lrs);
    let mut wait = config.interval;
    loop {
        if let Err(err) = with_outbox(&state, &config.home, |outbox| outbox.fill(true)).await {
            tracing::warn!(error = %err, "queuing xAPI statements failed");
        }
        match with_outbox(&state, &config.home, |outbox| outbox.claim_delivery()).await {
            // Another server process sends now.
            Ok(false) => wait = config.interval,
            Ok(true) => match deliver(&state, &config.home, &lrs).await {
                Ok(sent) => {
                    if sent > 0 {
                        tracing::info!(statements = sent, "xAPI statements delivered");
                    }
                    wait = config.interval;
                }
                Err(err) => {
                    wait = (wait * 2).min(LONGEST_WAIT.max(config.interval));
                    tracing::warn!(error = %err, retry_in_secs = wait.as_secs(), "the LRS did not take statements; they stay queued");
                }
            },
            Err(err) => tracing::warn!(error = %err, "the xAPI queue could not be read"),
        }
        count(&state, &config.home).await;
        tokio::time::sleep(wait).await;
    }
}

/// Runs queue work off the async workers.
async fn with_outbox<T: Send + 'static>(
    state: &Arc<AppState>,
    home: &str,
    work: impl FnOnce(&Outbox) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, String> {
    let home = home.to_owned();
    blocking(state, move |state| work(&Outbox::new(&state.reports, &home))).await.map_err(|e| e.detail())
}

async fn count(state: &Arc<AppState>, home: &str) {
    if let Ok(counts) = with_outbox(state, home, |outbox| outbox.counts()).await {
        for (name, n) in [("pending", counts.pending), ("delivered", counts.delivered), ("refused", counts.refused)] {
            state.metrics.xapi_statements.get_or_create(&StateLabels { state: name.into() }).set(n);
        }
    }
}

/// Sends everything pending; how many were delivered, or why the LRS could not be reached.
async fn deliver(state: &Arc<AppState>, home: &str, lrs: &Lrs) -> Result<usize, String> {
    let mut sent = 0;
    loop {
        let batch = with_outbox(state, home, |outbox| outbox.pending(BATCH)).await?;
        if batch.is_empty() {
            return Ok(sent);
        }
        let seqs: Vec<i64> = batch.iter().map(|q| q.seq).collect();
        match lrs.send(&batch).await {
            Answer::Stored => {
                with_outbox(state, home, move |outbox| outbox.delivered(&seqs, now_ms())).await?;
                sent += batch.len();
            }
            Answer::Unavailable(why) => {
                let error = why.clone();
                with_outbox(state, home, move |outbox| outbox.failed(&seqs, &error)).await?;
                return Err(why);
            }
            // One by one, to find the statements it refuses.
            Answer::Refused(batch_reason) => {
                let mut refused = Vec::new();
                for queued in &batch {
                    let seq = queued.seq;
                    match lrs.send(std::slice::from_ref(queued)).await {
                        Answer::Stored => {
                            with_outbox(state, home, move |outbox| outbox.delivered(&[seq], now_ms())).await?;
                            sent += 1;
                        }
                        Answer::Refused(why) => refused.push((queued.id.clone(), seq, why)),
                        Answer::Unavailable(why) => {
                            let error = why.clone();
                            with_outbox(state, home, move |outbox| outbox.failed(&[seq], &error)).await?;
                            return Err(why);
                        }
                    }
                }
                // Every one refused: the LRS (or a proxy before it) refuses everything, not these
                // statements; they wait until it is fixed.
                if batch.len() > 1 && refused.len() == batch.len() {
                    let why = format!("the LRS refuses every statement: {batch_reason}");
                    let error = why.clone();
                    with_outbox(state, home, move |outbox| outbox.failed(&seqs, &error)).await?;
                    return Err(why);
                }
                for (id, seq, why) in refused {
                    tracing::warn!(statement = %id, reason = %why, "the LRS refused a statement; it is set aside");
                    with_outbox(state, home, move |outbox| outbox.refused(seq, &why)).await?;
                }
            }
        }
    }
}
