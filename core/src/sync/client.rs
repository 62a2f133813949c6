//! The device's sync client: one CBOR round trip to `/v1/sync` carrying every document's new
//! changes, new practice logs and the pack version; retried with exponential backoff and jitter.
//!
//! Safe to kill at any point: acknowledged heads advance only after the server's changes are
//! stored, outbox rows go only after the server acknowledged them, and everything sent again is
//! deduplicated (changes by hash, logs by id).

use std::collections::HashSet;
use std::sync::OnceLock;
use std::time::Duration;

use automerge::ChangeHash;
use rand::Rng;
use serde_bytes::ByteBuf;

use super::limits::{
    MAX_CHANGES_PER_REQUEST, MAX_LOGS_PER_REQUEST, MAX_MEMBERSHIPS_PER_REQUEST, MAX_REQUEST_CHANGE_BYTES,
};
use super::person;
use super::wire::{
    self, DocPush, DocStatus, JoinRequest, JoinResponse, MembershipAnswers, MembershipList, MembershipSyncs,
    ProgramInfo, SyncRequest, SyncResponse, WireLog,
};
use crate::client::intents::Intent;
use crate::client::{Client, ClientEvent, DataChange, Enrollment};
use crate::docs::DocId;
use crate::domain::blueprint::Blueprint;
use crate::error::{Error, Result};
use crate::private_text::{PersonKey, PrivateText};
use crate::store::cohort as cohort_store;
use crate::store::enrollment;
use crate::store::facilitation;
use crate::store::notified;
use crate::store::practice::{self as logs, PracticeStatus};
use crate::store::sync_state;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Round trips within one sync: an older starting point (`need_from`), a refused branch, replayed
/// intents, or a long upload or catch-up that takes several requests (each within the server's
/// bounds) continue in the next one.
const MAX_ROUNDS: usize = 32;

/// The core's own small runtime: the apps never need one of their own.
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("microcohort-sync")
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("cannot start the sync runtime: {err}"))
    })
}

/// Runs blocking client work (a sync, a join) on the core's runtime and returns a handle to await:
/// how the FFI's async functions reach the network without a runtime of their own. The work may
/// block: it runs on the runtime's blocking pool, never on its worker.
pub fn spawn_on_runtime<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> tokio::task::JoinHandle<T> {
    runtime().spawn_blocking(work)
}

pub(super) fn http() -> &'static reqwest::Client {
    static HTTP: OnceLock<reqwest::Client> = OnceLock::new();
    HTTP.get_or_init(|| {
        // rustls with the ring provider: no OpenSSL, nothing that needs a C toolchain beyond ring.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new())
    })
}

/// POSTs a CBOR body and decodes the CBOR answer, mapping failures to errors a user understands.
pub(super) fn post<T: for<'de> serde::Deserialize<'de>>(
    url: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> Result<(T, usize)> {
    let bytes = call(http().post(url).header("content-type", "application/cbor").body(body), token)?;
    Ok((decoded(&bytes)?, bytes.len()))
}

/// A CBOR answer the server sent, or an error naming what was wrong with it.
pub(super) fn decoded<T: for<'de> serde::Deserialize<'de>>(bytes: &[u8]) -> Result<T> {
    wire::decode(bytes).map_err(|message| Error::Server { status: 200, message })
}

/// Sends a request and returns the body of a successful answer.
pub(super) fn call(mut request: reqwest::RequestBuilder, token: Option<&str>) -> Result<Vec<u8>> {
    runtime().block_on(async {
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|err| transport_error(&err))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|err| transport_error(&err))?;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            return Err(Error::Unauthorized);
        }
        if !status.is_success() {
            let body: String = String::from_utf8_lossy(&bytes).trim().chars().take(300).collect();
            return Err(Error::Server { status: status.as_u16(), message: refusal_text(status, body) });
        }
        Ok(bytes.to_vec())
    })
}

/// What the server's refusal means for a person: its own words, or the meaning of a bare status.
fn refusal_text(status: reqwest::StatusCode, body: String) -> String {
    if !body.is_empty() {
        return body;
    }
    match status.as_u16() {
        404 | 405 => "nothing answers at this address; check the server address (is it a Microcohort sync server?)",
        403 => "this device is not allowed to do that",
        413 => "the request is larger than the server accepts",
        429 => "the server is busy; try again later",
        500..=599 => "the server had a problem; try again later",
        _ => "the server could not take this request",
    }
    .into()
}

/// A server address where no sync server answers is a wrong address, not a refusal.
pub(super) fn wrong_address(err: Error) -> Error {
    match err {
        Error::Server { status: 404 | 405, message } => {
            crate::domain::DomainError::invalid("server_url", message).into()
        }
        other => other,
    }
}

/// Why a request got no answer: a secure connection that could not be made (its own case, not
/// retried), an address the HTTP client cannot use, or no connection at all (offline, retried).
fn transport_error(err: &reqwest::Error) -> Error {
    if let Some(tls) = tls_cause(err) {
        return Error::Tls(tls);
    }
    if err.is_builder() {
        return crate::domain::DomainError::invalid("server_url", err.to_string()).into();
    }
    Error::Network(if err.is_timeout() {
        "the server did not answer in time".into()
    } else if err.is_connect() {
        "no connection to the server (offline?)".into()
    } else {
        "the connection to the server broke off".into()
    })
}

/// The TLS failure somewhere in the error's chain, in rustls's words.
fn tls_cause(err: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut next = Some(err);
    while let Some(err) = next {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls.to_string());
        }
        // An I/O error's `source` skips the error it wraps, which is where rustls puts its own.
        if let Some(inner) = err.downcast_ref::<std::io::Error>().and_then(std::io::Error::get_ref)
            && let Some(tls) = tls_cause(inner)
        {
            return Some(tls);
        }
        next = err.source();
    }
    None
}

/// The program's blueprint as the device keeps it, for all its cohorts: each cohort's changed
/// critique weeks come from that cohort's document.
fn blueprint_of(program: &ProgramInfo) -> Result<Blueprint> {
    let blueprint: Blueprint = serde_json::from_str(&program.blueprint_json)
        .map_err(|err| Error::Server { status: 200, message: format!("unreadable program blueprint: {err}") })?;
    Ok(Blueprint { critique_weeks: Default::default(), control_arm: false, ..blueprint })
}

/// What joining did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOutcome {
    pub user_id: String,
    pub cohort_id: String,
    pub role: String,
}

/// What one sync did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncOutcome {
    pub rounds: usize,
    pub changes_sent: usize,
    pub changes_received: usize,
    /// Documents received as a saved copy (a device far behind) rather than change by change.
    pub snapshots_received: usize,
    pub bytes_received: usize,
    pub logs_acked: usize,
    /// Practice logs the server refused (see `Client::refused_practice_logs`).
    pub logs_refused: usize,
    pub cohort_logs_received: usize,
    /// The person's own practice logs recorded on her other devices, received by a new device.
    pub history_logs_received: usize,
    /// Documents whose local branch the server refused, with its reason.
    pub rejected: Vec<(String, String)>,
    /// Memberships the server no longer syncs (she left or was removed elsewhere), with its
    /// words; the others synced all the same.
    pub memberships_refused: Vec<(String, String)>,
}

/// Room left in one request for the server's bounds, shared by every membership it carries.
struct Room {
    changes: usize,
    bytes: usize,
    logs: usize,
    /// Practice logs already placed (each goes with one membership of its program).
    logs_taken: HashSet<String>,
    /// Programs whose stories and calibration ratings already go in a request of this round.
    programs_taken: HashSet<String>,
}

impl Default for Room {
    fn default() -> Self {
        Self {
            changes: MAX_CHANGES_PER_REQUEST,
            bytes: MAX_REQUEST_CHANGE_BYTES,
            logs: MAX_LOGS_PER_REQUEST,
            logs_taken: HashSet::new(),
            programs_taken: HashSet::new(),
        }
    }
}

/// What the next round trip of a sync must do.
#[derive(Debug, Default)]
struct RoundTrip {
    /// Documents to send from the start (`need_from`, or a refused branch being refetched).
    resend: Vec<DocId>,
    /// Intents were replayed: new local changes to send.
    replayed: bool,
    /// The server has more for a document than one response held.
    more: bool,
}

/// A log's private text sealed for the person's other devices (nothing when there is none).
fn sealed_private_text(key: &PersonKey, log: &logs::PracticeLog) -> Option<ByteBuf> {
    let text = PrivateText {
        reflection: log.reflection.clone(),
        transfer_note: log.transfer.as_ref().map(|t| t.note.clone()).filter(|n| !n.is_empty()),
        transfer_link: log.transfer.as_ref().and_then(|t| t.link.clone()),
    };
    (!text.is_empty()).then(|| ByteBuf::from(key.seal(&log.id.to_string(), &text)))
}

/// An intent the device could not replay, kept for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailedIntent {
    pub doc_id: String,
    pub description: String,
    pub reason: String,
}

/// For the UI: when sync last worked and what is waiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStatus {
    pub linked: bool,
    pub last_success_ms: Option<i64>,
    pub last_attempt_ms: Option<i64>,
    pub pending_practice_logs: u64,
    /// The last failure, in words for the user; `None` after a success.
    pub last_error: Option<String>,
    /// The server this device syncs with (`None` before joining).
    pub server_url: Option<String>,
}

impl Client {
    /// Joins a cohort on a server with an invite code: links the device, imports the program's
    /// prompt pack and enrolls the learner in `time_zone`. A device signed in to that server
    /// adds the membership (the invite must be for its person) and selects it.
    pub fn join_server(
        &self,
        server_url: &str,
        invite_code: &str,
        device_name: &str,
        time_zone: &str,
    ) -> Result<JoinOutcome> {
        let url = &super::server_address(server_url)?;
        crate::domain::time::parse_time_zone(time_zone)?;
        let body = wire::encode(&JoinRequest {
            invite_code: invite_code.trim().into(),
            device_name: device_name.into(),
            expected_user: self.current_person()?,
        });
        // A device already signed in to this server joins another of its person's cohorts with
        // its own token: the server adds the membership to it.
        let signed_in = match self.server_link() {
            Ok(link) if link.server_url == *url => Some(link.device_token),
            Ok(_) | Err(Error::NotLinked) => None,
            Err(err) => return Err(err),
        };
        let (joined, _): (JoinResponse, usize) =
            post(&format!("{url}/v1/join"), signed_in.as_deref(), body).map_err(wrong_address)?;
        let key = joined.new_person.then(PersonKey::generate);
        self.finish_join(url, joined, time_zone, key)
    }

    /// Sets the device up for the person the server just joined it for: her program, her
    /// membership, the link and, when this device brings it, her private-text key.
    pub(super) fn finish_join(
        &self,
        url: &str,
        joined: JoinResponse,
        time_zone: &str,
        key: Option<PersonKey>,
    ) -> Result<JoinOutcome> {
        let program = &joined.program;
        self.import_prompt_pack(&program.pack.file_name, &program.pack.toml)?;
        let blueprint = blueprint_of(program)?;
        self.enroll(Enrollment {
            program_id: program.program_id.clone(),
            program_title: program.title.clone(),
            pack_id: program.pack.pack_id.clone(),
            blueprint,
            learner_time_zone: time_zone.into(),
        })?;
        self.join_cohort_as(&joined.cohort_id, &joined.user_id, &joined.role)?;
        self.store().write(|tx| cohort_store::set_arm(tx, &joined.cohort_id, joined.arm))?;
        self.forget_program();
        if !joined.keeps_token() {
            let token = self.secrets().keep_token(&joined.device_token)?;
            self.store().write(|tx| {
                if let Some(key) = &key {
                    self.secrets().keep_key(tx, key)?;
                }
                sync_state::save_link(tx, url, &joined.device_id, &token)
            })?;
        }
        self.notify(ClientEvent::SyncStatusChanged);
        // A person who already existed brings her other memberships; the join stands even if
        // they cannot be fetched now (`refresh_memberships` later).
        if !joined.new_person
            && let Err(err) = self.refresh_memberships()
        {
            tracing::warn!(%err, "the person's other memberships could not be fetched");
        }
        Ok(JoinOutcome { user_id: joined.user_id, cohort_id: joined.cohort_id, role: joined.role })
    }

    /// Sets up, on this device, each of the person's memberships the server has and this device
    /// lacks (another cohort she joined from another device, a new device's first minutes): its
    /// program and prompt pack; the next sync brings its documents. The selection stays.
    /// Returns how many were added.
    pub fn refresh_memberships(&self) -> Result<usize> {
        let link = self.server_link()?;
        let bytes = call(http().get(format!("{}/v1/memberships", link.server_url)), Some(&link.device_token))?;
        let list: MembershipList = decoded(&bytes)?;
        let Some(user_id) = self.current_person()? else { return Ok(0) };
        let held = self.store().read(cohort_store::memberships)?;
        let mut added = 0;
        for membership in list.memberships {
            if held.iter().any(|m| m.cohort_id == membership.cohort_id) {
                continue;
            }
            let program = &membership.program;
            self.import_prompt_pack(&program.pack.file_name, &program.pack.toml)?;
            let enrollment = enrollment::StoredEnrollment {
                program_id: program.program_id.clone(),
                program_title: program.title.clone(),
                pack_id: program.pack.pack_id.clone(),
                blueprint: blueprint_of(program)?,
            };
            enrollment.blueprint.validate()?;
            let now = self.now().timestamp_millis();
            self.store().write(|tx| {
                enrollment::add_enrollment(tx, &enrollment, now)?;
                let m = cohort_store::Membership { cohort_id: membership.cohort_id.clone(), user_id: user_id.clone() };
                cohort_store::add_membership(tx, &m, &program.program_id, &membership.role, membership.arm)
            })?;
            added += 1;
        }
        if added > 0 {
            self.notify(ClientEvent::DataChanged(DataChange::Program));
        }
        Ok(added)
    }

    /// The link to the server with this device's token, wherever the token is kept.
    pub(crate) fn server_link(&self) -> Result<sync_state::ServerLink> {
        let mut link = self.store().read(sync_state::link)?.ok_or(Error::NotLinked)?;
        link.device_token = self.secrets().token(&link.device_token)?;
        Ok(link)
    }

    pub fn sync_status(&self) -> Result<SyncStatus> {
        let link = self.store().read(sync_state::link)?;
        let pending = self.store().read(sync_state::pending_log_ids)?.len() as u64;
        Ok(match link {
            None => SyncStatus {
                linked: false,
                last_success_ms: None,
                last_attempt_ms: None,
                pending_practice_logs: pending,
                last_error: None,
                server_url: None,
            },
            Some(l) => SyncStatus {
                linked: true,
                last_success_ms: l.last_success,
                last_attempt_ms: l.last_attempt,
                pending_practice_logs: pending,
                last_error: l.last_error,
                server_url: Some(l.server_url),
            },
        })
    }

    /// Syncs now, retrying failures that may pass (network, server busy) with exponential
    /// backoff and jitter, `attempts` times at most.
    pub fn sync_with_retry(&self, attempts: u32) -> Result<SyncOutcome> {
        let mut delay = Duration::from_millis(200);
        let mut attempt = 1;
        loop {
            match self.sync_now() {
                Err(Error::Network(_) | Error::Server { status: 429 | 500..=599, .. }) if attempt < attempts => {
                    let jitter = rand::rng().random_range(0..=delay.as_millis() as u64 / 2);
                    std::thread::sleep(delay + Duration::from_millis(jitter));
                    delay = (delay * 2).min(Duration::from_secs(30));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// One sync: normally a single round trip.
    pub fn sync_now(&self) -> Result<SyncOutcome> {
        let link = self.server_link()?;
        let result = self.sync_rounds(&link);
        let now = self.now().timestamp_millis();
        let recorded = match &result {
            Ok(outcome) if outcome.rejected.is_empty() => Ok(()),
            Ok(outcome) => Err(format!(
                "the server refused changes to {}; your entries were re-applied to the cohort's copy (any that could not be are listed as failed)",
                outcome.rejected.iter().map(|(doc, reason)| format!("{doc} ({reason})")).collect::<Vec<_>>().join(", ")
            )),
            Err(err) => Err(err.to_string()),
        };
        self.store()
            .write(|tx| sync_state::record_attempt(tx, now, recorded.as_ref().map(|_| ()).map_err(String::as_str)))?;
        self.notify(ClientEvent::SyncStatusChanged);
        result
    }

    fn sync_rounds(&self, link: &sync_state::ServerLink) -> Result<SyncOutcome> {
        let mut outcome = SyncOutcome::default();
        let mut resend_all: Vec<DocId> = Vec::new();
        for round in 1..=MAX_ROUNDS {
            outcome.rounds = round;
            let intent_watermark = self.store().read(cohort_store::intent_watermark)?;
            // The selected membership first: it carries the person's own parts.
            let mut memberships = self.store().read(cohort_store::memberships)?;
            if memberships.is_empty() {
                return Err(Error::NotInCohort);
            }
            let left_over = memberships.len() > MAX_MEMBERSHIPS_PER_REQUEST;
            memberships.truncate(MAX_MEMBERSHIPS_PER_REQUEST);
            let mut room = Room::default();
            let mut requests = Vec::with_capacity(memberships.len());
            let mut more_to_send = left_over;
            for (index, membership) in memberships.iter().enumerate() {
                let (request, more) =
                    self.build_request(link, membership, index == 0, &resend_all, &mut room, &mut outcome)?;
                outcome.changes_sent += request.docs.iter().map(|d| d.changes.len()).sum::<usize>();
                more_to_send |= more;
                requests.push(request);
            }
            let answers = self.round_trip(link, &requests, &mut outcome)?;
            let mut next = RoundTrip::default();
            for (index, (request, answer)) in requests.iter().zip(&answers).enumerate() {
                let cohort_id = request.cohort_id.as_deref().unwrap_or_default();
                let response = match answer {
                    Ok(response) => response,
                    Err(refusal) => {
                        tracing::warn!(cohort = %cohort_id, %refusal, "the server refused this membership's sync");
                        outcome.memberships_refused.push((cohort_id.to_owned(), refusal.clone()));
                        continue;
                    }
                };
                if index == 0 {
                    self.settle_profile(request.profile.as_ref(), response.profile.as_ref())?;
                    self.store()
                        .write(|tx| notified::settle_seen_until(tx, request.seen_until, response.seen_until))?;
                    if request.history_after.is_some() {
                        next.more |= self.restore_history(&response.history, response.history_next, &mut outcome)?;
                    }
                }
                if !response.notes.is_empty() {
                    self.store().write(|tx| facilitation::store_notes(tx, cohort_id, &response.notes))?;
                    self.notify(ClientEvent::DataChanged(DataChange::Program));
                }
                let round_trip = self.apply_response(response, cohort_id, &mut outcome, intent_watermark)?;
                next.resend.extend(round_trip.resend);
                next.replayed |= round_trip.replayed;
                next.more |= round_trip.more;
            }
            resend_all = next.resend;
            // Replayed intents are new local changes; the rest of an upload or of a catch-up
            // comes in the next request.
            if resend_all.is_empty() && !next.replayed && !next.more && !more_to_send {
                break;
            }
        }
        Ok(outcome)
    }

    /// Sends one request per membership in one round trip: `/v1/sync` for one (as every server
    /// understands), `/v1/sync/memberships` for several. A membership the server refuses is
    /// answered with its words; a refused sign-in fails the whole sync.
    fn round_trip(
        &self,
        link: &sync_state::ServerLink,
        requests: &[SyncRequest],
        outcome: &mut SyncOutcome,
    ) -> Result<Vec<std::result::Result<SyncResponse, String>>> {
        if let [request] = requests {
            let (response, bytes): (SyncResponse, usize) =
                post(&format!("{}/v1/sync", link.server_url), Some(&link.device_token), wire::encode(request))?;
            outcome.bytes_received += bytes;
            return Ok(vec![Ok(response)]);
        }
        let batch = MembershipSyncs { requests: requests.to_vec() };
        let (answers, bytes): (MembershipAnswers, usize) =
            post(&format!("{}/v1/sync/memberships", link.server_url), Some(&link.device_token), wire::encode(&batch))?;
        outcome.bytes_received += bytes;
        if answers.answers.len() != requests.len() {
            return Err(Error::Server {
                status: 200,
                message: "the server answered another number of memberships".into(),
            });
        }
        Ok(answers
            .answers
            .into_iter()
            .map(|answer| match (answer.response, answer.refused) {
                (Some(response), _) => Ok(response),
                (None, Some((status, message))) => Err(format!("{message} ({status})")),
                (None, None) => Err("no answer".into()),
            })
            .collect())
    }

    /// The next request, within the server's bounds: `(request, whether changes were left for the
    /// next one)`. A document whose copy on this device cannot be read is dropped and fetched
    /// again from the server; its user's unsent work is replayed on top.
    fn build_request(
        &self,
        link: &sync_state::ServerLink,
        membership: &cohort_store::MembershipRow,
        with_person: bool,
        resend_all: &[DocId],
        room: &mut Room,
        outcome: &mut SyncOutcome,
    ) -> Result<(SyncRequest, bool)> {
        let program = self.program_of(membership)?;
        let mut docs = Vec::new();
        let mut more_to_send = false;
        for doc in self.synced_docs(membership, &program.enrollment.blueprint)? {
            let id = doc.to_string();
            let known = if resend_all.contains(&doc) {
                Vec::new()
            } else {
                self.store().read(|c| sync_state::server_heads(c, &id))?
            };
            let (changes, heads) = match self.local_changes(&doc, &known) {
                // Only the server writes a control arm's documents.
                Ok((_, heads)) if program.enrollment.blueprint.control_arm => (Vec::new(), heads),
                Ok(local) => local,
                Err(Error::Document(err)) => {
                    tracing::warn!(doc = %id, %err, "this device's copy cannot be read; fetching the cohort's");
                    outcome.rejected.push((id.clone(), format!("unreadable on this device: {err}")));
                    self.drop_local_doc(&doc)?;
                    (Vec::new(), Vec::new())
                }
                Err(other) => return Err(other),
            };
            // A prefix of a document's changes (they come in causal order) is a valid upload;
            // the server's heads then cover it, and the rest goes next time.
            let mut sent = Vec::new();
            for change in changes {
                if sent.len() == room.changes || change.len() > room.bytes {
                    more_to_send = true;
                    break;
                }
                room.bytes -= change.len();
                sent.push(ByteBuf::from(change));
            }
            room.changes -= sent.len();
            docs.push(DocPush {
                doc_id: id,
                known_server_heads: known.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect(),
                changes: sent,
                client_heads: heads.iter().map(|h| ByteBuf::from(h.0.to_vec())).collect(),
            });
        }
        let program_id = program.enrollment.program_id.clone();
        let mut logs_full = false;
        let practice_logs = self.store().read(|conn| {
            let key = self.secrets().key(conn)?;
            let mut out = Vec::new();
            for id in sync_state::pending_log_ids(conn)? {
                if room.logs_taken.contains(&id) {
                    continue;
                }
                // The rest go in the next request.
                if room.logs == 0 {
                    logs_full = true;
                    break;
                }
                let Ok(uuid) = id.parse() else { continue };
                // A log goes with a membership of its program; logs of a device-only program
                // stay on the device.
                if let Some(log) = logs::log(conn, uuid)?.filter(|l| l.program_id == program_id) {
                    room.logs -= 1;
                    room.logs_taken.insert(id.clone());
                    let sealed = key.as_ref().and_then(|key| sealed_private_text(key, &log));
                    out.push(WireLog {
                        sealed,
                        id: log.id.to_string(),
                        user_id: String::new(),
                        program_id: log.program_id,
                        pack_id: log.prompt.pack_id,
                        pack_version: log.prompt.pack_version,
                        prompt_id: log.prompt.prompt_id,
                        started_at: log.started_at.timestamp_millis(),
                        time_zone: log.time_zone,
                        local_date: log.local_date.to_string(),
                        status: match log.status {
                            PracticeStatus::Completed => "completed".into(),
                            PracticeStatus::Abandoned => "abandoned".into(),
                        },
                        duration_secs: log.duration_secs,
                        transfer_kind: log.transfer.map(|t| t.kind.as_str().to_owned()),
                        corrects: log.corrects.map(|c| c.to_string()),
                        recorded_at: log.recorded_at.timestamp_millis(),
                        late_arrival: false,
                    });
                }
            }
            Ok(out)
        })?;
        let more_to_send = more_to_send || logs_full;
        // The person's own parts go with one membership only (each read on its own: a store
        // guard held across a second read would deadlock).
        let (mut profile, mut seen_until, mut history_after) = (None, None, None);
        if with_person {
            profile = self.store().read(enrollment::unsynced_profile)?;
            seen_until = self.store().read(notified::unsynced_seen_until)?;
            history_after = link.history_after;
        }
        let profile = profile.map(|(p, changed_at)| person::to_wire(&p, changed_at));
        let notes_after = self.store().read(|conn| facilitation::notes_watermark(conn, &membership.cohort_id))?;
        // A person's stories and ratings in a program go with one of her memberships of it.
        let (mut stories, mut calibration) = (Vec::new(), Vec::new());
        if room.programs_taken.insert(program.enrollment.program_id.clone()) {
            let sending: HashSet<&str> = practice_logs.iter().map(|l| l.id.as_str()).collect();
            stories = self.store().read(|conn| {
                crate::store::stories::pending(conn, &program.enrollment.program_id, &|id| sending.contains(id))
            })?;
            calibration =
                self.store().read(|conn| crate::store::calibration::unsent(conn, &program.enrollment.program_id))?;
        }
        let request = SyncRequest {
            device_id: link.device_id.clone(),
            cohort_id: Some(membership.cohort_id.clone()),
            docs,
            practice_logs,
            prompts_since: program.pack.version,
            logs_since: membership.logs_watermark,
            accepts_snapshots: true,
            profile,
            seen_until,
            history_after,
            notes_after: Some(notes_after),
            stories,
            calibration,
        };
        Ok((request, more_to_send))
    }

    /// Applies a response: what the next round trip must do.
    fn apply_response(
        &self,
        response: &SyncResponse,
        cohort_id: &str,
        outcome: &mut SyncOutcome,
        intent_watermark: i64,
    ) -> Result<RoundTrip> {
        let mut next = RoundTrip::default();
        for pull in &response.docs {
            let doc = DocId::parse(&pull.doc_id)?;
            match &pull.status {
                DocStatus::Ok => {
                    let changes: Vec<Vec<u8>> = pull.changes.iter().map(|c| c.to_vec()).collect();
                    outcome.changes_received += changes.len();
                    // A device far behind gets the document's saved form first, in one load.
                    let snapshot = pull.snapshot.as_ref().map(|saved| {
                        outcome.snapshots_received += 1;
                        self.receive_snapshot(&pull.doc_id, saved)
                    });
                    let received = match snapshot {
                        Some(Err(err)) => Err(err),
                        _ => self.receive_changes(&pull.doc_id, &changes),
                    };
                    if let Err(err) = received {
                        // One document that will not merge must not stop the others.
                        tracing::warn!(doc = %pull.doc_id, %err, "server changes could not be merged");
                        outcome.rejected.push((pull.doc_id.clone(), format!("merge failed: {err}")));
                        continue;
                    }
                    if !pull.late_entries.is_empty() {
                        self.store().write(|tx| cohort_store::save_late_keys(tx, &pull.doc_id, &pull.late_entries))?;
                    }
                    // The rest of a long catch-up comes in the next round trip.
                    next.more |= pull.more;
                    if self.store().read(|conn| sync_state::needs_replay(conn, &pull.doc_id))? {
                        // Intents are replayed on the whole of the server's copy.
                        if !pull.more {
                            self.replay_intents(&doc)?;
                            self.store().write(|tx| sync_state::replay_done(tx, &pull.doc_id))?;
                            next.replayed = true;
                        }
                    } else {
                        // Everything recorded before this request was sent and accepted.
                        self.store().write(|tx| cohort_store::settle_intents(tx, &pull.doc_id, intent_watermark))?;
                    }
                    let heads = pull
                        .server_heads
                        .iter()
                        .map(|h| ChangeHash::try_from(h.as_slice()))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|_| Error::Server { status: 200, message: "malformed server heads".into() })?;
                    // Advanced only now that the server's changes are stored.
                    self.store().write(|tx| sync_state::save_server_heads(tx, &pull.doc_id, &heads))?;
                }
                DocStatus::NeedFrom => next.resend.push(doc),
                DocStatus::Rejected { reason, detail } => {
                    tracing::warn!(doc = %pull.doc_id, %reason, %detail, "server refused this device's changes");
                    outcome.rejected.push((pull.doc_id.clone(), reason.clone()));
                    self.drop_local_doc(&doc)?;
                    next.resend.push(doc);
                }
            }
        }
        outcome.logs_acked += response.practice_logs_acked.len();
        outcome.logs_refused += response.practice_logs_refused.len();
        outcome.cohort_logs_received += response.practice_logs.len();
        for refused in &response.practice_logs_refused {
            tracing::warn!(log = %refused.id, reason = %refused.reason, detail = %refused.detail, "server refused a practice log");
        }
        let now = self.now().timestamp_millis();
        let program_id = self
            .store()
            .read(cohort_store::memberships)?
            .into_iter()
            .find(|m| m.cohort_id == cohort_id)
            .and_then(|m| m.program_id)
            .unwrap_or_default();
        self.store().write(|tx| {
            sync_state::ack_logs(tx, &response.practice_logs_acked)?;
            crate::store::calibration::answered(
                tx,
                &program_id,
                &response.calibration_acked,
                &response.calibration_refused,
            )?;
            crate::store::stories::answered(tx, &response.stories_acked, &response.stories_refused)?;
            sync_state::refuse_logs(tx, &response.practice_logs_refused, now)?;
            sync_state::store_cohort_logs(tx, cohort_id, &response.practice_logs, response.logs_watermark)
        })?;
        if !response.practice_logs.is_empty() {
            self.notify(ClientEvent::DataChanged(DataChange::CohortPracticeLogs));
        }
        if let Some(pack) = &response.prompts {
            self.import_prompt_pack(&pack.file_name, &pack.toml)?;
        }
        Ok(next)
    }

    /// Re-applies a document's pending intents on top of the server's copy. One that no longer
    /// applies is kept in the failed list with the reason, never dropped.
    fn replay_intents(&self, doc: &DocId) -> Result<()> {
        let id = doc.to_string();
        // Bound first: a store lock held by the loop expression would deadlock the replay.
        let pending = self.store().read(|conn| cohort_store::pending_intents(conn, &id))?;
        for (seq, json, hash) in pending {
            // Already on the server (an earlier response was lost): nothing to replay.
            if self.has_change(doc, &hash)? {
                self.store().write(|tx| cohort_store::remove_intent(tx, seq))?;
                continue;
            }
            let outcome = serde_json::from_str::<Intent>(&json)
                .map_err(|e| Error::Corrupt(e.to_string()))
                .and_then(|intent| self.apply_intent(&intent));
            let now = self.now().timestamp_millis();
            match outcome {
                Ok(_) => self.store().write(|tx| cohort_store::remove_intent(tx, seq))?,
                Err(err) => {
                    tracing::warn!(doc = %id, %err, "an intent could not be replayed");
                    self.store().write(|tx| cohort_store::fail_intent(tx, seq, &id, &json, &err.to_string(), now))?
                }
            }
        }
        Ok(())
    }

    /// Intents that could not be replayed after the server refused their document, for the app
    /// to show ("your synthesis edit in week 5 could not be saved: …").
    pub fn failed_intents(&self) -> Result<Vec<FailedIntent>> {
        let rows = self.store().read(cohort_store::failed_intents)?;
        Ok(rows
            .into_iter()
            .map(|(doc_id, json, reason)| FailedIntent {
                description: serde_json::from_str::<Intent>(&json)
                    .map(|i| i.describe())
                    .unwrap_or_else(|_| json.clone()),
                doc_id,
                reason,
            })
            .collect())
    }

    /// Practice logs the server refused, newest first, with its reason: they stay on this device
    /// (and in her own figures here) but never reach her cohort or the reports.
    pub fn refused_practice_logs(&self) -> Result<Vec<super::wire::RefusedLog>> {
        self.store().read(sync_state::refused_logs)
    }

    /// Relayed practice logs of the selected membership's cohort (facilitator devices):
    /// `(id, user, local date, status)`.
    pub fn cohort_practice_logs(&self) -> Result<Vec<(String, String, String, String)>> {
        let cohort_id = self.membership()?.cohort_id;
        self.store().read(|conn| sync_state::cohort_logs(conn, &cohort_id))
    }
}
