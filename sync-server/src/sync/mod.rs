//! `POST /v1/join` and `POST /v1/sync`: CBOR in, CBOR out. A sync request is decoded and checked
//! (`microcohort_core::sync::request`) on a blocking thread before the storage is asked for
//! anything.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use microcohort_core::sync::wire::{self, JoinRequest, JoinResponse, LinkRequest, SyncRequest};

use crate::app::{AppState, blocking};
use crate::auth;
use crate::error::ApiError;
use crate::metrics::ReasonLabels;
use crate::storage::people as storage_people;
use crate::storage::{Device, Storage};

pub mod people;

fn cbor(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/cbor")], bytes).into_response()
}

pub async fn join(State(state): State<Arc<AppState>>, body: Bytes) -> Result<Response, ApiError> {
    let request: JoinRequest = wire::decode(&body).map_err(ApiError::BadRequest)?;
    let (code, name, expected) = (request.invite_code, request.device_name, request.expected_user);
    let response = new_device(&state, code, name, expected, |storage, request| storage.join(request)).await?;
    tracing::info!(user = %response.user_id, cohort = %response.cohort_id, role = %response.role, "device joined");
    Ok(cbor(wire::encode(&response)))
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

/// The device behind a bearer token, or 401.
pub async fn authenticate(state: &Arc<AppState>, headers: &HeaderMap) -> Result<Device, ApiError> {
    let token =
        auth::bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())).ok_or(ApiError::Unauthorized)?;
    let hash = auth::hash_secret(token);
    blocking(state, move |s| s.storage.authenticate(&hash)).await?.ok_or(ApiError::Unauthorized)
}

pub async fn sync(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let started = Instant::now();
    let device = authenticate(&state, &headers).await?;
    state.limits.check_device(&device.device_id)?;
    let (response, stats) = blocking(&state, move |s| {
        let request: SyncRequest = wire::decode(&body).map_err(ApiError::BadRequest)?;
        s.storage.sync_request(&device, request)
    })
    .await?;
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
    Ok(cbor(wire::encode(&response)))
}
