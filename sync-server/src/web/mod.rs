//! Program reports over HTTP (JSON and CSV) and the mobile-first web dashboard for facilitators
//! and program leads.
//!
//! Who gets in: a facilitator with their device token (as a bearer token, or pasted once into the
//! sign-in form), or a program lead through a one-time link printed by `admin dashboard-link`.
//! The browser then holds a session cookie (HttpOnly, SameSite=Strict, 12 hours).

mod charts;
mod pages;

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use microcohort_core::sync::wire::{self, DashboardLink};
use serde::Deserialize;

use crate::app::{AppState, blocking};
use crate::auth;
use crate::error::ApiError;
use crate::report::store::{SESSION_HOURS, Viewer};
use crate::report::{ProgramReport, csv_export, program_report};

const COOKIE: &str = "microcohort_session";

#[derive(Debug, Deserialize)]
pub struct ReportQuery {
    /// The cohort 60-day activity uplift is stated against.
    baseline: Option<String>,
    /// CSV only: `members` (default) or `cohorts`.
    rows: Option<String>,
    /// The instant the figures are computed for (RFC 3339; default now): each member's windows
    /// end on her day at that instant, e.g. to read the report as it stood at the end of a week.
    at: Option<String>,
}

impl ReportQuery {
    fn instant(&self) -> Result<chrono::DateTime<chrono::Utc>, ApiError> {
        match self.at.as_deref() {
            None => Ok(chrono::Utc::now()),
            Some(text) => chrono::DateTime::parse_from_rfc3339(text.trim()).map(|at| at.to_utc()).map_err(|_| {
                ApiError::BadRequest(format!("at: {text:?} is not an RFC 3339 instant like 2026-03-09T20:00:00Z"))
            }),
        }
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
}

/// The cohort a request names (`COHORT_HEADER`): a facilitator of several cohorts picks one.
fn named_cohort(headers: &HeaderMap) -> Option<String> {
    headers.get(microcohort_core::sync::wire::COHORT_HEADER).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

/// The viewer behind a facilitator's device token (as a member of `cohort`, when named), and
/// that device.
fn facilitator_viewer(state: &AppState, token: &str, cohort: Option<&str>) -> Result<(Viewer, String), ApiError> {
    let mut device = state.storage.authenticate(&auth::hash_secret(token))?.ok_or(ApiError::Unauthorized)?;
    if let Some(cohort) = cohort.filter(|c| *c != device.cohort_id) {
        device = state
            .storage
            .device_in_cohort(&device, cohort)?
            .ok_or_else(|| ApiError::Forbidden(format!("you are not a member of cohort {cohort}")))?;
    }
    if device.role != "facilitator" {
        return Err(ApiError::Forbidden("program reports are for facilitators and program leads".into()));
    }
    let viewer =
        Viewer { program_id: state.reports.program_of_cohort(&device.cohort_id)?, facilitator: Some(device.user_id) };
    Ok((viewer, device.device_id))
}

/// The viewer behind a request: a bearer device token or a session cookie.
async fn viewer(state: &Arc<AppState>, headers: &HeaderMap) -> Result<Viewer, ApiError> {
    let bearer = auth::bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())).map(str::to_owned);
    let cookie = session_cookie(headers).map(str::to_owned);
    let cohort = named_cohort(headers);
    blocking(state, move |state| match (bearer, cookie) {
        (Some(token), _) => facilitator_viewer(state, &token, cohort.as_deref()).map(|(viewer, _)| viewer),
        (None, Some(session)) => state.reports.session(&session)?.ok_or(ApiError::Unauthorized),
        (None, None) => Err(ApiError::Unauthorized),
    })
    .await
}

/// Refreshes the report tables and builds the report the viewer may see.
async fn build_report(
    state: &Arc<AppState>,
    viewer: Viewer,
    program_id: String,
    query: &ReportQuery,
) -> Result<ProgramReport, ApiError> {
    if viewer.program_id != program_id {
        return Err(ApiError::Forbidden(format!("you are not signed in to program {program_id:?}")));
    }
    let (baseline, at) = (query.baseline.clone(), query.instant()?);
    blocking(state, move |state| {
        state.reports.refresh_for_report()?;
        let facts = state.reports.program_facts(&viewer)?;
        program_report(&facts, baseline.as_deref(), at)
    })
    .await
}

pub async fn report_json(
    State(state): State<Arc<AppState>>,
    Path(program_id): Path<String>,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let viewer = viewer(&state, &headers).await?;
    let report = build_report(&state, viewer, program_id, &query).await?;
    Ok(axum::Json(report).into_response())
}

pub async fn report_csv(
    State(state): State<Arc<AppState>>,
    Path(program_id): Path<String>,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let viewer = viewer(&state, &headers).await?;
    let report = build_report(&state, viewer, program_id.clone(), &query).await?;
    let (body, name) = match query.rows.as_deref() {
        None | Some("members") => (csv_export::members_csv(&report)?, "members"),
        Some("cohorts") => (csv_export::cohorts_csv(&report)?, "cohorts"),
        Some("baseline") => (csv_export::baseline_csv(&report)?, "baseline"),
        Some("arms") => (csv_export::arms_csv(&report)?, "arms"),
        Some("prompts") => (csv_export::prompts_csv(&report)?, "prompts"),
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "rows: {other:?} is not \"members\", \"cohorts\", \"baseline\", \"arms\" or \"prompts\""
            )));
        }
    };
    let disposition = format!("attachment; filename=\"{program_id}-{name}.csv\"");
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

fn signed_in(session: &str, program_id: &str, secure: bool) -> Response {
    let secure = if secure { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={session}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", SESSION_HOURS * 3600);
    let mut response = Redirect::to(&format!("/dashboard/programs/{program_id}")).into_response();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

/// The sign-in page, or straight to the dashboard with a valid session.
pub async fn sign_in_page(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    match viewer(&state, &headers).await {
        Ok(viewer) => Redirect::to(&format!("/dashboard/programs/{}", viewer.program_id)).into_response(),
        Err(_) => Html(pages::sign_in(None)).into_response(),
    }
}

/// `POST /v1/dashboard-links` (a facilitator's device token): a one-time link that opens the web
/// dashboard in a browser as that facilitator, for a few minutes. The token never leaves the app.
pub async fn app_sign_in_link(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = auth::bearer(headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()))
        .map(str::to_owned)
        .ok_or(ApiError::Unauthorized)?;
    let cohort = named_cohort(&headers);
    let (code, expires_at) = blocking(&state, move |state| {
        let (viewer, device_id) = facilitator_viewer(state, &token, cohort.as_deref())?;
        state.reports.create_facilitator_link(&viewer, &device_id)
    })
    .await?;
    let link = DashboardLink { path: format!("/dashboard/link/{code}"), expires_at };
    Ok(([(header::CONTENT_TYPE, "application/cbor")], wire::encode(&link)).into_response())
}

/// `GET /dashboard/link/{code}`: the confirmation page; the link stays unspent.
pub async fn confirm_link(Path(code): Path<String>) -> Response {
    // The code goes back into the form's address: only a code's own characters may.
    if code.is_empty() || !code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        let page = pages::sign_in(Some("This sign-in link is wrong; ask for a new one."));
        return (StatusCode::NOT_FOUND, Html(page)).into_response();
    }
    Html(pages::confirm_sign_in(&code)).into_response()
}

/// `POST /dashboard/link/{code}`: spends the link and signs the browser in.
pub async fn redeem_link(State(state): State<Arc<AppState>>, Path(code): Path<String>, headers: HeaderMap) -> Response {
    let secure = state.over_https(&headers);
    match blocking(&state, move |state| state.reports.redeem_sign_in_link(&code)).await {
        Ok((session, viewer)) => signed_in(&session, &viewer.program_id, secure),
        Err(err) => (
            err.status(),
            Html(pages::sign_in(Some("This sign-in link was already used or is wrong; ask for a new one."))),
        )
            .into_response(),
    }
}

pub async fn dashboard_page(
    State(state): State<Arc<AppState>>,
    Path(program_id): Path<String>,
    Query(query): Query<ReportQuery>,
    headers: HeaderMap,
) -> Response {
    let viewer = match viewer(&state, &headers).await {
        Ok(viewer) => viewer,
        Err(_) => return Redirect::to("/dashboard").into_response(),
    };
    match build_report(&state, viewer, program_id, &query).await {
        Ok(report) => Html(pages::dashboard(&report)).into_response(),
        Err(err) => (err.status(), Html(pages::problem(&err.to_string()))).into_response(),
    }
}

/// `POST /dashboard/sign-out`: ends the session on the server, then forgets the cookie.
pub async fn sign_out(State(state): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(session) = session_cookie(&headers).map(str::to_owned)
        && let Err(err) = blocking(&state, move |state| state.reports.end_session(&session)).await
    {
        return (err.status(), Html(pages::problem(&err.to_string()))).into_response();
    }
    let mut response = Redirect::to("/dashboard").into_response();
    let expired = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&expired) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    *response.status_mut() = StatusCode::SEE_OTHER;
    response
}
