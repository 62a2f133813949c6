//! The router: handlers plus the cross-cutting layers (body limit, timeout, tracing, metrics).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::metrics::{Metrics, RequestLabels};
use crate::report::store::ReportStore;
use crate::storage::Storage;
use crate::sync;
use crate::web;

/// Largest request body accepted (a week of offline work is far smaller); larger gets 413.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

pub struct AppState {
    pub storage: Arc<dyn Storage>,
    /// Report tables and dashboard sign-in, beside the sync tables.
    pub reports: Arc<ReportStore>,
    pub metrics: Metrics,
    pub limiter: RateLimiter,
}

impl AppState {
    pub fn new(storage: Arc<dyn Storage>, reports: Arc<ReportStore>, limiter: RateLimiter) -> Arc<Self> {
        let metrics = Metrics::new();
        if let Ok((docs, changes)) = storage.counts() {
            metrics.documents.set(docs as i64);
            metrics.changes.set(changes as i64);
        }
        Arc::new(Self { storage, reports, metrics, limiter })
    }
}

/// Runs blocking storage work off the async worker threads.
pub async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    f: impl FnOnce(&AppState) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let state = state.clone();
    tokio::task::spawn_blocking(move || f(&state)).await.map_err(|e| ApiError::Internal(e.to_string()))?
}

pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/metrics", get(metrics))
        .route("/v1/join", post(sync::join))
        .route("/v1/sync", post(sync::sync))
        .route("/v1/programs/{program_id}/report", get(web::report_json))
        .route("/v1/programs/{program_id}/report.csv", get(web::report_csv))
        .route("/dashboard", get(web::sign_in_page))
        .route("/dashboard/sign-in", post(web::sign_in))
        .route("/dashboard/sign-out", get(web::sign_out))
        .route("/dashboard/link/{code}", get(web::redeem_link))
        .route("/dashboard/programs/{program_id}", get(web::dashboard_page))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    if let Ok((docs, _)) = state.storage.counts() {
        state.metrics.documents.set(docs as i64);
    }
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

async fn count_requests(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let path = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let response = next.run(request).await;
    state.metrics.requests.get_or_create(&RequestLabels { path, status: response.status().as_u16() }).inc();
    response
}

/// A token bucket per device: `burst` requests at once, refilled at `per_second`.
pub struct RateLimiter {
    burst: f64,
    per_second: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(burst: u32, per_second: u32) -> Self {
        Self { burst: f64::from(burst), per_second: f64::from(per_second.max(1)), buckets: Mutex::default() }
    }

    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let (tokens, last) = buckets.entry(key.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.burst);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / self.per_second).ceil().max(1.0) as u64;
            Err(ApiError::TooManyRequests { retry_after_secs: wait })
        }
    }
}
