//! Everything a sync request is checked for before the server's storage is touched: its bounds
//! ([`super::limits`]), its documents, every change's bytes (decoded once, here, so the server
//! does it outside its storage lock) and its practice logs' fields. Each problem is typed and
//! names what was wrong; the server answers 413 for a bound and 400 (403, 404) for the rest.

use std::collections::HashSet;

use serde_bytes::ByteBuf;

use super::limits::{
    MAX_CALIBRATION_PER_REQUEST, MAX_CHANGES_PER_REQUEST, MAX_DOCS_PER_REQUEST, MAX_KNOWN_HEADS, MAX_LOGS_PER_REQUEST,
    MAX_REQUEST_CHANGE_BYTES,
};
use super::wire::{SyncRequest, WireCalibration, WireLog, WireProfile, WireStory};
use crate::docs::DocId;
use crate::domain::blueprint::MAX_WEEKS;
use crate::domain::practice::MAX_DURATION_SECS;
use crate::domain::time::DayStart;
use crate::policy::{CheckedChange, RejectReason, check_change};
use crate::private_text::{MAX_SEALED_BYTES, check_format};

/// One document of a checked request.
pub struct CheckedDoc {
    pub doc: DocId,
    pub id: String,
    pub changes: Vec<CheckedChange>,
    pub known: Vec<ByteBuf>,
}

/// A sync request checked as far as it can be without the server's storage.
pub struct CheckedRequest {
    pub docs: Vec<CheckedDoc>,
    pub practice_logs: Vec<WireLog>,
    pub prompts_since: u32,
    pub logs_since: u64,
    pub accepts_snapshots: bool,
    pub profile: Option<WireProfile>,
    /// Her unread mark from this device (ms; the server keeps it at most a day ahead of its clock).
    pub seen_until: Option<i64>,
    pub history_after: Option<u64>,
    pub notes_after: Option<u64>,
    pub stories: Vec<WireStory>,
    pub calibration: Vec<WireCalibration>,
}

impl CheckedRequest {
    /// Whether the request has changes or logs to store (a profile is stored on its own).
    pub fn writes(&self) -> bool {
        !self.practice_logs.is_empty()
            || !self.stories.is_empty()
            || !self.calibration.is_empty()
            || self.docs.iter().any(|d| !d.changes.is_empty())
    }
}

/// What is wrong with a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestProblem {
    /// Past one of the bounds.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    Malformed(String),
    /// A document of another cohort.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
}

/// Longest id, name or zone a practice log may carry.
const MAX_LOG_FIELD_CHARS: usize = 200;

fn too_large(what: String) -> RequestProblem {
    RequestProblem::TooLarge(format!("{what} (too_large)"))
}

/// Checks a request from a device of `cohort_id`.
pub fn check_request(cohort_id: &str, request: SyncRequest) -> Result<CheckedRequest, RequestProblem> {
    if request.docs.len() > MAX_DOCS_PER_REQUEST {
        return Err(too_large(format!(
            "{} documents in one request; at most {MAX_DOCS_PER_REQUEST}",
            request.docs.len()
        )));
    }
    if request.practice_logs.len() > MAX_LOGS_PER_REQUEST {
        return Err(too_large(format!(
            "{} practice logs in one request; at most {MAX_LOGS_PER_REQUEST}",
            request.practice_logs.len()
        )));
    }
    let changes: usize = request.docs.iter().map(|d| d.changes.len()).sum();
    if changes > MAX_CHANGES_PER_REQUEST {
        return Err(too_large(format!("{changes} changes in one request; at most {MAX_CHANGES_PER_REQUEST}")));
    }
    let bytes: usize = request.docs.iter().flat_map(|d| &d.changes).map(|c| c.len()).sum();
    if bytes > MAX_REQUEST_CHANGE_BYTES {
        return Err(too_large(format!("{bytes} bytes of changes in one request; at most {MAX_REQUEST_CHANGE_BYTES}")));
    }
    let mut seen = HashSet::new();
    let mut docs = Vec::with_capacity(request.docs.len());
    for push in request.docs {
        let doc = DocId::parse(&push.doc_id).map_err(|e| RequestProblem::Malformed(e.to_string()))?;
        let id = doc.to_string();
        if !seen.insert(id.clone()) {
            return Err(RequestProblem::Malformed(format!("{id} appears twice in one request")));
        }
        if doc.cohort_id() != cohort_id {
            return Err(RequestProblem::Forbidden(format!("{id} is another cohort's document")));
        }
        if let DocId::Week { week, .. } = doc
            && week > MAX_WEEKS
        {
            return Err(RequestProblem::NotFound(format!("{id}: no program has a week {week}")));
        }
        if push.known_server_heads.len() > MAX_KNOWN_HEADS {
            return Err(too_large(format!(
                "{id}: {} known heads; at most {MAX_KNOWN_HEADS}",
                push.known_server_heads.len()
            )));
        }
        if push.known_server_heads.iter().any(|h| h.len() != 32) {
            return Err(RequestProblem::Malformed(format!("{id}: a known head is not a 32-byte change hash")));
        }
        let mut changes = Vec::with_capacity(push.changes.len());
        for (n, bytes) in push.changes.iter().enumerate() {
            let checked = check_change(bytes).map_err(|r| {
                let message = format!("{id}: change {n}: {} ({})", r.detail, r.reason.as_str());
                match r.reason {
                    RejectReason::TooLarge => RequestProblem::TooLarge(message),
                    _ => RequestProblem::Malformed(message),
                }
            })?;
            changes.push(checked);
        }
        docs.push(CheckedDoc { doc, id, changes, known: push.known_server_heads });
    }
    for log in &request.practice_logs {
        check_log(log)?;
    }
    if request.stories.len() > MAX_LOGS_PER_REQUEST {
        return Err(too_large(format!(
            "{} transfer stories in one request; at most {MAX_LOGS_PER_REQUEST}",
            request.stories.len()
        )));
    }
    for story in &request.stories {
        let id: String = story.log_id.chars().take(40).collect();
        if uuid::Uuid::parse_str(&story.log_id).is_err() {
            return Err(RequestProblem::Malformed(format!("transfer story {id}: log_id: not a UUID")));
        }
        if let Err(err) = crate::domain::practice::check_transfer(&story.evidence) {
            return Err(RequestProblem::Malformed(format!("transfer story {id}: {err}")));
        }
    }
    if request.calibration.len() > MAX_CALIBRATION_PER_REQUEST {
        return Err(too_large(format!(
            "{} calibration ratings in one request; at most {MAX_CALIBRATION_PER_REQUEST}",
            request.calibration.len()
        )));
    }
    for rating in &request.calibration {
        let id: String = rating.exemplar_id.chars().take(40).collect();
        if rating.exemplar_id.chars().count() > 80 || rating.scores.len() > 8 {
            return Err(RequestProblem::Malformed(format!("calibration {id}: exemplar_id or scores too long")));
        }
    }
    if let Some(profile) = &request.profile {
        check_profile(profile)?;
    }
    Ok(CheckedRequest {
        docs,
        practice_logs: request.practice_logs,
        prompts_since: request.prompts_since,
        logs_since: request.logs_since,
        accepts_snapshots: request.accepts_snapshots,
        profile: request.profile,
        seen_until: request.seen_until,
        history_after: request.history_after,
        notes_after: request.notes_after,
        stories: request.stories,
        calibration: request.calibration,
    })
}

/// A profile the server can compute days with: a real zone, a day start within range, reminder
/// settings the app itself would accept.
fn check_profile(profile: &WireProfile) -> Result<(), RequestProblem> {
    let bad = |field: &str, problem: String| Err(RequestProblem::Malformed(format!("profile: {field}: {problem}")));
    if profile.time_zone.chars().count() > MAX_LOG_FIELD_CHARS || profile.time_zone.parse::<chrono_tz::Tz>().is_err() {
        return bad(
            "time_zone",
            format!("{:?} is not an IANA zone", profile.time_zone.chars().take(40).collect::<String>()),
        );
    }
    if let Err(err) = DayStart::from_minutes(i64::from(profile.day_start_minutes)) {
        return bad("day_start_minutes", err.to_string());
    }
    if let Err(err) = profile.reminders.validate() {
        return bad("reminders", err.to_string());
    }
    Ok(())
}

/// A practice log's own fields (its program and day are checked against the cohort's program
/// with the storage).
fn check_log(log: &WireLog) -> Result<(), RequestProblem> {
    let bad = |field: &str, problem: &str| {
        let id: String = log.id.chars().take(40).collect();
        Err(RequestProblem::Malformed(format!("practice log {id}: {field}: {problem}")))
    };
    if uuid::Uuid::parse_str(&log.id).is_err() {
        return bad("id", "not a UUID");
    }
    let long = |text: &str| text.chars().count() > MAX_LOG_FIELD_CHARS;
    for (field, text) in [
        ("program_id", &log.program_id),
        ("pack_id", &log.pack_id),
        ("prompt_id", &log.prompt_id),
        ("time_zone", &log.time_zone),
    ] {
        if long(text) {
            return bad(field, "too long");
        }
    }
    if !matches!(log.status.as_str(), "completed" | "abandoned") {
        return bad("status", "must be completed or abandoned");
    }
    if log.duration_secs.is_some_and(|d| d == 0 || d > MAX_DURATION_SECS) {
        return bad("duration_secs", "outside 1 s..=4 h");
    }
    if log.local_date.parse::<chrono::NaiveDate>().is_err() {
        return bad("local_date", "not a YYYY-MM-DD date");
    }
    if log.time_zone.parse::<chrono_tz::Tz>().is_err() {
        return bad("time_zone", "not an IANA zone");
    }
    if log.transfer_kind.as_deref().is_some_and(|k| !matches!(k, "applied_at_work" | "portfolio")) {
        return bad("transfer_kind", "must be applied_at_work or portfolio");
    }
    if log.corrects.as_deref().is_some_and(|c| uuid::Uuid::parse_str(c).is_err()) {
        return bad("corrects", "not a UUID");
    }
    if let Some(sealed) = &log.sealed {
        if sealed.len() > MAX_SEALED_BYTES {
            let id: String = log.id.chars().take(40).collect();
            return Err(too_large(format!(
                "practice log {id}: sealed private text of {} bytes; at most {MAX_SEALED_BYTES}",
                sealed.len()
            )));
        }
        if let Err(err) = check_format(sealed) {
            return bad("sealed", &err.to_string());
        }
    }
    Ok(())
}
