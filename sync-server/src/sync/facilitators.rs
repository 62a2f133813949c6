//! What facilitators of the cohort named in `x-microcohort-cohort` do through the server; each
//! is checked against the program and the roster and written by the server's actor.
//!
//! - `POST /v1/critique-weeks` moves one week's critique, sets its meeting link or names the
//!   member leading it, and answers with the week as it became.
//! - `POST /v1/facilitator-actions` hides or shows an entry, endorses feedback, announces
//!   something, writes a private note to one member, or marks a learner who stopped practising
//!   (and back).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use microcohort_core::domain::critique_week::CritiqueWeekChange;
use microcohort_core::domain::facilitation::FacilitatorAction;
use microcohort_core::sync::wire;

use super::{authenticate_member, cbor};
use crate::app::{AppState, blocking};
use crate::error::ApiError;
use crate::storage::Device;

/// The device as a facilitator of the cohort the request names, or 403 saying what only
/// facilitators may do.
async fn facilitator(state: &Arc<AppState>, headers: &HeaderMap, doing: &str) -> Result<Device, ApiError> {
    let device = authenticate_member(state, headers).await?;
    state.limits.check_device(&device.device_id)?;
    if device.role != "facilitator" {
        return Err(ApiError::Forbidden(format!("only facilitators of {} {doing}", device.cohort_id)));
    }
    Ok(device)
}

pub async fn change_week(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let device = facilitator(&state, &headers, "change its critique weeks").await?;
    let change: CritiqueWeekChange = wire::decode(&body).map_err(ApiError::BadRequest)?;
    let cohort = device.cohort_id.clone();
    let week = change.week;
    let changed = blocking(&state, move |s| s.storage.change_critique_week(&cohort, &change)).await?;
    tracing::info!(cohort = %device.cohort_id, by = %device.user_id, week, revision = changed.revision, "critique week changed");
    Ok(cbor(wire::encode(&changed)))
}

/// `POST /v1/facilitator-actions`: a facilitator of the named cohort hides or shows an entry,
/// endorses feedback, announces something to the cohort or writes a private note to a member.
pub async fn act(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let device = facilitator(&state, &headers, "act on it").await?;
    let action: FacilitatorAction = wire::decode(&body).map_err(ApiError::BadRequest)?;
    let (cohort, by) = (device.cohort_id.clone(), device.user_id.clone());
    // The kind only: a note's or announcement's words are not the operator's to read in logs.
    let logged = action.kind();
    blocking(&state, move |s| s.storage.facilitate(&cohort, &by, &action)).await?;
    tracing::info!(cohort = %device.cohort_id, by = %device.user_id, action = %logged, "facilitator action");
    Ok(StatusCode::NO_CONTENT.into_response())
}
