//! The sync protocol's messages. CBOR (ciborium) carries change bytes as byte strings, without
//! base64. Path `/v1/...`: a breaking change gets a new path, the old one keeps working.

use serde::{Deserialize, Serialize};

use crate::domain::arms::Arm;
use serde_bytes::ByteBuf;

/// `POST /v1/join`: trade an invite code for a device token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinRequest {
    pub invite_code: String,
    pub device_name: String,
    /// The person whose data the device already holds: the server refuses an invite for anyone
    /// else (409) rather than mix two people on one device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_user: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinResponse {
    pub device_id: String,
    /// Shown once; the server keeps only its hash.
    pub device_token: String,
    pub user_id: String,
    pub cohort_id: String,
    pub role: String,
    pub program: ProgramInfo,
    /// The code made a new person (not a new device of an existing one): her first device makes
    /// the key her private text is sealed with.
    #[serde(default)]
    pub new_person: bool,
    /// The cohort's arm: in a control arm the app runs the practice loop alone (no peers, no
    /// feedback, no roles). Older servers say nothing: the cohort arm.
    #[serde(default)]
    pub arm: Arm,
}

impl JoinResponse {
    /// A device that joined with its own token (another membership of its person) keeps that
    /// token: the server sends none.
    pub fn keeps_token(&self) -> bool {
        self.device_token.is_empty()
    }
}

/// `POST /v1/link-codes` (bearer token): a short-lived code for linking another of the person's
/// devices; the device that asked shows it (with its key, as a QR payload) to the new one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCode {
    pub code: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// `POST /v1/link`: a new device redeems a link code (answered with a [`JoinResponse`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRequest {
    pub link_code: String,
    pub device_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_user: Option<String>,
}

/// What a device needs to run a program offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramInfo {
    pub program_id: String,
    pub title: String,
    /// The blueprint as JSON (`domain::blueprint::Blueprint`).
    pub blueprint_json: String,
    pub pack: PackFile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackFile {
    pub pack_id: String,
    pub version: u32,
    pub file_name: String,
    pub toml: String,
}

/// `GET /v1/devices`: the signed-in person's devices, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    pub device_id: String,
    /// The name the device gave when it joined ("Ada's Pixel").
    pub name: String,
    pub cohort_id: String,
    /// Milliseconds since the epoch.
    pub created_at: i64,
    pub revoked_at: Option<i64>,
    /// The device that asked.
    pub this_device: bool,
}

/// `POST /v1/devices/revoke`: sign out one of the person's devices (this one included).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokeDevice {
    pub device_id: String,
}

/// `POST /v1/dashboard-links` (a facilitator's device token): a one-time sign-in link to the web
/// dashboard, for the app to open in a browser.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DashboardLink {
    /// Under the server's URL: `/dashboard/link/<code>`.
    pub path: String,
    /// Milliseconds since the epoch.
    pub expires_at: i64,
}

/// `GET /v1/memberships`: the signed-in person's memberships that have not ended, each with
/// what a device needs to run its program offline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipList {
    pub memberships: Vec<MembershipInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipInfo {
    pub cohort_id: String,
    pub role: String,
    pub program: ProgramInfo,
    #[serde(default)]
    pub arm: Arm,
}

/// The header that names which of the person's memberships a request is about (`/v1/sync`,
/// `/v1/leave`, `/v1/dashboard-links`); without it, the cohort the device joined through.
pub const COHORT_HEADER: &str = "x-microcohort-cohort";

/// Where a facilitator changes one week's critique: a CBOR
/// [`crate::domain::critique_week::CritiqueWeekChange`] in, the week as it became out.
pub const CRITIQUE_WEEKS_PATH: &str = "/v1/critique-weeks";

/// Where a facilitator acts on the cohort: a CBOR
/// [`crate::domain::facilitation::FacilitatorAction`] in, 204 out.
pub const FACILITATOR_ACTIONS_PATH: &str = "/v1/facilitator-actions";

/// `POST /v1/sync/memberships`: one round trip for several of the person's memberships; each
/// request names its cohort and is checked and answered as if it came alone to `/v1/sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipSyncs {
    pub requests: Vec<SyncRequest>,
}

/// The answers, in the order of the requests: a response, or why that membership was refused
/// (left, removed; the others are answered all the same).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipAnswers {
    pub answers: Vec<MembershipAnswer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipAnswer {
    pub cohort_id: String,
    pub response: Option<SyncResponse>,
    /// HTTP status and message as `/v1/sync` would have answered.
    pub refused: Option<(u16, String)>,
}

/// `POST /v1/sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRequest {
    pub device_id: String,
    /// Which of the person's memberships this is about; required in a [`MembershipSyncs`],
    /// otherwise the cohort the device joined through.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cohort_id: Option<String>,
    pub docs: Vec<DocPush>,
    pub practice_logs: Vec<WireLog>,
    /// The newest pack version the device has; the server answers with a newer one if any.
    pub prompts_since: u32,
    /// The server's practice-log sequence the device has seen (facilitators' devices).
    pub logs_since: u64,
    /// The device takes a document's saved form (`DocPull::snapshot`) when it lacks much of it.
    /// Devices that do not say so always receive changes.
    #[serde(default)]
    pub accepts_snapshots: bool,
    /// The person's profile as changed on this device, when the server may not have it yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<WireProfile>,
    /// Until when (ms) she looked at her cohort's news on this device, when the server may not
    /// have it yet; the server keeps the latest of all her devices'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_until: Option<i64>,
    /// A device that joined for a person asks for her practice history (her own logs, as the
    /// server sequences them, after this point) until it has all of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_after: Option<u64>,
    /// The last private note to her in this cohort the device holds (0: none); the server
    /// answers with later ones. A device that does not ask gets none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes_after: Option<u64>,
    /// Transfer stories she chose to share with the program team, each about one of her logs
    /// (stored before or in this request). Never the private reflection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stories: Vec<WireStory>,
    /// Her ratings of the program pack's calibration exemplars the server may not have yet.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration: Vec<WireCalibration>,
}

/// Her rating of a calibration exemplar (the program pack's), one score 1..=5 per criterion of its
/// prompt's rubric; the newest (`rated_at`, ms) wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireCalibration {
    pub exemplar_id: String,
    pub scores: Vec<u8>,
    pub rated_at: i64,
}

/// A transfer story: how a learner applied a practice at work, shared with the program team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireStory {
    /// The practice log it is about (hers).
    pub log_id: String,
    pub evidence: crate::domain::practice::TransferEvidence,
}

/// A person's profile: the same on all her devices (the newest change wins), and what every
/// device and the server compute her days with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireProfile {
    /// IANA zone name.
    pub time_zone: String,
    /// 0..=360.
    pub day_start_minutes: u16,
    pub reminders: crate::domain::reminders::ReminderPreferences,
    /// When it changed on a device, ms since the epoch (0: never changed on a device).
    pub changed_at: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocPush {
    pub doc_id: String,
    /// The heads the server acknowledged last time (empty the first time).
    pub known_server_heads: Vec<ByteBuf>,
    /// Changes made since those heads.
    pub changes: Vec<ByteBuf>,
    pub client_heads: Vec<ByteBuf>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncResponse {
    pub docs: Vec<DocPull>,
    pub practice_logs_acked: Vec<String>,
    /// Logs of the request the server refused (the rest of the sync stands); the device stops
    /// sending them.
    #[serde(default)]
    pub practice_logs_refused: Vec<RefusedLog>,
    /// Cohort members' practice logs for a facilitator (never the private reflection).
    pub practice_logs: Vec<WireLog>,
    pub logs_watermark: u64,
    pub prompts: Option<PackFile>,
    /// Milliseconds since the epoch, so a device can notice its clock is wrong.
    pub server_time: i64,
    /// The person's profile as the server holds it (newest change of any of her devices).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<WireProfile>,
    /// Until when she has looked at her cohort's news, on any of her devices (0: never).
    #[serde(default)]
    pub seen_until: i64,
    /// Her own practice logs, for a device that asked (`history_after`), a page at a time.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<WireLog>,
    /// Where `history` ends: the next request asks after it; `None` when the history is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub history_next: Option<u64>,
    /// Private notes to her from the cohort's facilitators after `notes_after`, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<WireNote>,
    /// Stories of the request the server keeps (or kept before), by log id; and those it
    /// refused (`unknown_log`, `not_yours`, `other_program`), which the device stops sending.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stories_acked: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stories_refused: Vec<RefusedLog>,
    /// Calibration ratings the server keeps, as `(exemplar, rated_at)`; and those it refused
    /// (`unknown_exemplar`, `scores`: not one 1..=5 per criterion, `control_arm`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration_acked: Vec<(String, i64)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calibration_refused: Vec<RefusedLog>,
}

/// A facilitator's private note to one member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireNote {
    /// The cohort's number for it: the device asks after the last it holds.
    pub seq: u64,
    pub id: String,
    /// The facilitator's user id.
    pub from: String,
    pub body: String,
    /// Milliseconds since the epoch, the server's clock.
    pub created_at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocPull {
    pub doc_id: String,
    pub status: DocStatus,
    /// What the device lacks (a page of it when `more`).
    pub changes: Vec<ByteBuf>,
    /// The heads the device holds once it applied `changes`: the server's, or the last change of
    /// the page.
    pub server_heads: Vec<ByteBuf>,
    /// The response ran out of room: ask again for the rest.
    #[serde(default)]
    pub more: bool,
    /// For a device that lacks much of the document: the document as the server last saved it
    /// (compressed), to load before `changes`, which follow it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<ByteBuf>,
    /// Feedback and replies of this week the server first stored after its feedback window
    /// closed (a server fact: the author's `created_at` has no say). Sent with a closed week
    /// whose changes moved in this round trip.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub late_entries: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum DocStatus {
    Ok,
    /// The server lacks a dependency of what was sent: resend from an older point.
    NeedFrom,
    /// Nothing of this document was stored; the device drops its branch and refetches.
    Rejected {
        reason: String,
        detail: String,
    },
}

/// A practice log on the wire. Its private text (reflection, transfer note and link) leaves the
/// device only sealed for the person's own devices (`crate::private_text`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireLog {
    pub id: String,
    /// Filled in by the server (the authenticated user); ignored from devices.
    pub user_id: String,
    pub program_id: String,
    pub pack_id: String,
    pub pack_version: u32,
    pub prompt_id: String,
    pub started_at: i64,
    pub time_zone: String,
    pub local_date: String,
    pub status: String,
    pub duration_secs: Option<u32>,
    pub transfer_kind: Option<String>,
    pub corrects: Option<String>,
    pub recorded_at: i64,
    /// The private text, sealed with the person's key; relayed to her own devices only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sealed: Option<ByteBuf>,
    /// Set by the server (ignored from devices): the log arrived after the back-fill window for
    /// its day, and no figure counts it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub late_arrival: bool,
}

/// A practice log the server did not keep, and why (`reason` is a stable code:
/// `date_mismatch`, `before_program`, `in_the_future`, `correction_not_allowed`, `malformed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedLog {
    pub id: String,
    pub reason: String,
    pub detail: String,
}

/// Encodes a message as CBOR.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail for these plain types.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

/// Decodes a CBOR message; the error names what was wrong.
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, String> {
    ciborium::from_reader(bytes).map_err(|err| format!("malformed CBOR: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip_and_garbage_is_named() {
        let request = SyncRequest {
            device_id: "d1".into(),
            docs: vec![DocPush {
                doc_id: "week:c:1".into(),
                changes: vec![ByteBuf::from(vec![1, 2, 3])],
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = encode(&request);
        assert_eq!(decode::<SyncRequest>(&bytes).unwrap(), request);
        assert!(decode::<SyncRequest>(&bytes[..bytes.len() - 2]).unwrap_err().contains("malformed CBOR"));
        assert!(decode::<SyncRequest>(b"\xff\x00garbage").is_err());
    }
}
