//! `POST /v1/join`, `POST /v1/sync` and `POST /v1/sync/memberships`: CBOR in, CBOR out. A sync
//! request is decoded and checked (`microcohort_core::sync::request`) on a blocking thread before
//! the storage is asked for anything.
//!
//! A device token is a person's device: it speaks for each of her memberships that has not ended.
//! A request names the membership it is about (its `cohort_id`, or the [`COHORT_HEADER`]);
//! without one, it is about the cohort the device joined through.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use microcohort_core::sync::limits::MAX_MEMBERSHIPS_PER_REQUEST;
use microcohort_core::sync::wire::{
    self, COHORT_HEADER, JoinRequest, JoinResponse, LinkRequest, MembershipAnswer, MembershipAnswers, MembershipList,
    MembershipSyncs, SyncRequest,
};

use crate::app::{AppState, blocking};
use crate::auth;
use crate::error::ApiError;
use crate::metrics::ReasonLabels;
use crate::storage::people as storage_people;
use crate::storage::{Device, Storage};

pub mod facilitators;
pub mod people;

fn cbor(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/cbor")], bytes).into_response()
}

/// Redeems an invite. With a device token that works (a device of the person, joining another
/// of her cohorts) the membership is added to that device, which keeps its token; a revoked
/// device's token is ignored and the invite makes it a new device.
pub async fn join(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let request: JoinRequest = wire::decode(&body).map_err(ApiError::BadRequest)?;
    let signed_in = match bearer_token(&headers) {
        Some(_) => authenticate(&state, &headers).await.ok(),
        None => None,
    };
    let (code, name, expected) = (request.invite_code, request.device_name, request.expected_user);
    let response = match signed_in {
        Some(device) => {
            let code_hash = auth::hash_invite(&code);
            blocking(&state, move |s| {
                let request = storage_people::JoinRequest {
                    expected_user: Some(&device.user_id),
                    existing_device: Some(&device.device_id),
                    ..storage_people::JoinRequest::new(&code_hash, &name, &[], "")
                };
                s.storage.join(&request)
            })
            .await?
        }
        None => new_device(&state, code, name, expected, |storage, request| storage.join(request)).await?,
    };
    tracing::info!(user = %response.user_id, cohort = %response.cohort_id, role = %response.role, "device joined");
    Ok(cbor(wire::encode(&response)))
}

/// `GET /v1/memberships`: the person's memberships that have not ended, with their programs.
pub async fn memberships(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let device = authenticate(&state, &headers).await?;
    state.limits.check_device(&device.device_id)?;
    let memberships = blocking(&state, move |s| s.storage.memberships(&device.user_id)).await?;
    Ok(cbor(wire::encode(&MembershipList { memberships })))
}

/// `POST /v1/link`: a new device of a person redeems the code another of hers showed.
pub async fn link(State(state): State<Arc<AppState>>, body: Bytes) -> Result<Response, ApiError> {
    let request: LinkRequest = wire::decode(&body).map_err(ApiError::BadRequest)?;
    let (code, name, expected) = (request.link_code, request.device_name, request.expected_user);
    let response = new_device(&state, code, name, expected, |storage, request| storage.link(request)).await?;
    tracing::info!(user = %response.user_id, device = %response.device_id, "device linked");
    Ok(cbor(wire::encode(&response)))
}

/// Trades a code (an invite or a link code) for a new device's token, made here and stored hashed.
async fn new_device(
    state: &Arc<AppState>,
    code: String,
    device_name: String,
    expected_user: Option<String>,
    redeem: fn(&dyn Storage, &storage_people::JoinRequest<'_>) -> Result<JoinResponse, ApiError>,
) -> Result<JoinResponse, ApiError> {
    let token = auth::new_token();
    let (code_hash, token_hash) = (auth::hash_invite(&code), auth::hash_secret(&token));
    blocking(state, move |s| {
        let request = storage_people::JoinRequest {
            expected_user: expected_user.as_deref(),
            ..storage_people::JoinRequest::new(&code_hash, &device_name, &token_hash, &token)
        };
        redeem(s.storage.as_ref(), &request)
    })
    .await
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    auth::bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
}

/// The device behind a bearer token, or 401: as a member of the cohort it joined through, or of
/// another of its person's cohorts when that membership ended.
pub async fn authenticate(state: &Arc<AppState>, headers: &HeaderMap) -> Result<Device, ApiError> {
    let hash = token_hash(headers)?;
    blocking(state, move |s| device_of(s, &hash)).await
}

/// The device a token hash belongs to, on a blocking thread; 401 for none.
fn device_of(s: &AppState, token_hash: &[u8]) -> Result<Device, ApiError> {
    s.storage.authenticate(token_hash)?.ok_or(ApiError::Unauthorized)
}

fn token_hash(headers: &HeaderMap) -> Result<Vec<u8>, ApiError> {
    Ok(auth::hash_secret(bearer_token(headers).ok_or(ApiError::Unauthorized)?))
}

/// [`authenticate`] and the device's request rate, for a handler already on a blocking thread:
/// a sync makes one trip there, not two (the hand-offs cost more than the lookup under load).
fn authenticated_within_rate(s: &AppState, token_hash: &[u8]) -> Result<Device, ApiError> {
    let device = device_of(s, token_hash)?;
    s.limits.check_device(&device.device_id)?;
    Ok(device)
}

/// The device as a member of the cohort the request names in [`COHORT_HEADER`] (if any).
pub async fn authenticate_member(state: &Arc<AppState>, headers: &HeaderMap) -> Result<Device, ApiError> {
    let device = authenticate(state, headers).await?;
    match headers.get(COHORT_HEADER).and_then(|v| v.to_str().ok()) {
        Some(cohort) if cohort != device.cohort_id => {
            let cohort = cohort.to_owned();
            blocking(state, move |s| as_member(s.storage.as_ref(), &device, &cohort)).await
        }
        _ => Ok(device),
    }
}

/// The device speaking for its person's membership of `cohort_id`, or 403 naming the cohort.
fn as_member(storage: &dyn Storage, device: &Device, cohort_id: &str) -> Result<Device, ApiError> {
    if cohort_id == device.cohort_id {
        return Ok(device.clone());
    }
    storage.device_in_cohort(device, cohort_id)?.ok_or_else(|| {
        ApiError::Forbidden(format!("{} is not (or no longer) a member of cohort {cohort_id}", device.user_id))
    })
}

pub async fn sync(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let started = Instant::now();
    let token = token_hash(&headers)?;
    let (response, stats) = blocking(&state, move |s| {
        let device = authenticated_within_rate(s, &token)?;
        let request: SyncRequest = wire::decode(&body).map_err(ApiError::BadRequest)?;
        let device = match &request.cohort_id {
            Some(cohort) => as_member(s.storage.as_ref(), &device, cohort)?,
            None => device,
        };
        s.storage.sync_request(&device, request)
    })
    .await?;
    record(&state, &stats, started);
    Ok(cbor(wire::encode(&response)))
}

/// One round trip for several memberships: each request is answered (or refused) as it would be
/// alone at `/v1/sync`, in order, so one ended membership never stops the others.
pub async fn sync_memberships(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let token = token_hash(&headers)?;
    let answers = blocking(&state, move |s| {
        let device = authenticated_within_rate(s, &token)?;
        let batch: MembershipSyncs = wire::decode(&body).map_err(ApiError::BadRequest)?;
        if batch.requests.len() > MAX_MEMBERSHIPS_PER_REQUEST {
            return Err(ApiError::TooLarge(format!(
                "{} memberships in one request; at most {MAX_MEMBERSHIPS_PER_REQUEST} (too_large)",
                batch.requests.len()
            )));
        }
        let mut answers = Vec::with_capacity(batch.requests.len());
        for request in batch.requests {
            let cohort_id = request.cohort_id.clone().ok_or_else(|| {
                ApiError::BadRequest("each request of /v1/sync/memberships names its cohort_id".into())
            })?;
            let answered = as_member(s.storage.as_ref(), &device, &cohort_id)
                .and_then(|member| s.storage.sync_request(&member, request));
            answers.push(match answered {
                Ok((response, stats)) => {
                    record(s, &stats, started);
                    MembershipAnswer { cohort_id, response: Some(response), refused: None }
                }
                Err(ApiError::Internal(detail)) => return Err(ApiError::Internal(detail)),
                Err(err) => MembershipAnswer {
                    cohort_id,
                    response: None,
                    refused: Some((err.status().as_u16(), err.to_string())),
                },
            });
        }
        Ok(MembershipAnswers { answers })
    })
    .await?;
    Ok(cbor(wire::encode(&answers)))
}

/// A round trip's metrics.
fn record(state: &AppState, stats: &crate::storage::SyncStats, started: Instant) {
    for reason in &stats.rejected {
        state.metrics.rejected_changes.get_or_create(&ReasonLabels { reason: reason.as_str().into() }).inc();
    }
    if stats.changes_stored > 0 {
        state.metrics.changes.inc_by(stats.changes_stored as i64);
    }
    if stats.documents_created > 0 {
        state.metrics.documents.inc_by(stats.documents_created as i64);
    }
    state.metrics.sync_seconds.observe(started.elapsed().as_secs_f64());
}
