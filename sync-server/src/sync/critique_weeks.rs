//! `POST /v1/critique-weeks`: a facilitator of the cohort named in `x-microcohort-cohort` moves
//! one week's critique, sets its meeting link or names the member leading it. The change is
//! checked against the program and the roster, written into the cohort document by the server's
//! actor and answered with the week as it became.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use microcohort_core::domain::critique_week::CritiqueWeekChange;
use microcohort_core::sync::wire;

use super::{authenticate_member, cbor};
use crate::app::{AppState, blocking};
use crate::error::ApiError;

pub async fn change(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let device = authenticate_member(&state, &headers).await?;
    state.limits.check_device(&device.device_id)?;
    if device.role != "facilitator" {
        return Err(ApiError::Forbidden(format!(
            "only facilitators of {} change its critique weeks",
            device.cohort_id
        )));
    }
    let change: CritiqueWeekChange = wire::decode(&body).map_err(ApiError::BadRequest)?;
    let cohort = device.cohort_id.clone();
    let week = change.week;
    let changed = blocking(&state, move |s| s.storage.change_critique_week(&cohort, &change)).await?;
    tracing::info!(cohort = %device.cohort_id, by = %device.user_id, week, revision = changed.revision, "critique week changed");
    Ok(cbor(wire::encode(&changed)))
}
