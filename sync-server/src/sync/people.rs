//! A person's devices and memberships, managed from any of her devices: `GET /v1/devices` lists
//! them, `POST /v1/devices/revoke` signs one out (a lost phone, or this one when its owner signs
//! out), `POST /v1/link-codes` gives a short-lived code to link another (redeemed at `POST
//! /v1/link`), `POST /v1/leave` ends her membership of the device's cohort.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use microcohort_core::sync::wire::{self, DeviceInfo, DeviceList, LinkCode, RevokeDevice};

use super::{authenticate, authenticate_member, cbor};
use crate::app::{AppState, blocking};
use crate::error::ApiError;

pub async fn list(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let device = authenticate(&state, &headers).await?;
    state.limits.check_device(&device.device_id)?;
    let user = device.user_id.clone();
    let records = blocking(&state, move |s| s.storage.devices(&user)).await?;
    let devices = records
        .into_iter()
        .map(|d| DeviceInfo {
            this_device: d.device_id == device.device_id,
            device_id: d.device_id,
            name: d.name,
            cohort_id: d.cohort_id,
            created_at: d.created_at,
            revoked_at: d.revoked_at,
        })
        .collect();
    Ok(cbor(wire::encode(&DeviceList { devices })))
}

pub async fn link_code(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let device = authenticate(&state, &headers).await?;
    state.limits.check_device(&device.device_id)?;
    let (code, expires_at) = blocking(&state, move |s| s.storage.create_link_code(&device)).await?;
    Ok(cbor(wire::encode(&LinkCode { code, expires_at })))
}

pub async fn leave(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let device = authenticate_member(&state, &headers).await?;
    state.limits.check_device(&device.device_id)?;
    let (cohort, user) = (device.cohort_id.clone(), device.user_id.clone());
    let left_on = blocking(&state, move |s| s.storage.remove_member(&cohort, &user, None)).await?;
    tracing::info!(user = %device.user_id, cohort = %device.cohort_id, %left_on, "member left");
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub async fn revoke(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let device = authenticate(&state, &headers).await?;
    state.limits.check_device(&device.device_id)?;
    let request: RevokeDevice = wire::decode(&body).map_err(ApiError::BadRequest)?;
    let user = device.user_id.clone();
    let target = request.device_id.clone();
    blocking(&state, move |s| s.storage.revoke_own_device(&user, &target)).await?;
    tracing::info!(user = %device.user_id, by = %device.device_id, revoked = %request.device_id, "device signed out");
    Ok(StatusCode::NO_CONTENT.into_response())
}
