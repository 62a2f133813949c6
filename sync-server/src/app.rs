//! The router: handlers plus the cross-cutting layers (body limit, timeout, compression, tracing,
//! metrics, limits per client address).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::SizeAbove;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::ApiError;
use crate::limits::RateLimits;
use crate::listener::client_address;
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
    pub limits: RateLimits,
    /// With a proxy in front: the header it appends the client's address to.
    pub client_address_header: Option<HeaderName>,
    /// The server itself serves HTTPS: cookies are `Secure`.
    pub serves_https: bool,
}

impl AppState {
    pub fn new(
        storage: Arc<dyn Storage>,
        reports: Arc<ReportStore>,
        limits: RateLimits,
        client_address_header: Option<HeaderName>,
        serves_https: bool,
    ) -> Arc<Self> {
        let metrics = Metrics::new();
        if let Ok((docs, changes)) = storage.counts() {
            metrics.documents.set(docs as i64);
            metrics.changes.set(changes as i64);
        }
        Arc::new(Self { storage, reports, metrics, limits, client_address_header, serves_https })
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

impl AppState {
    /// Whether the browser reached us over HTTPS: served here, or (with a proxy configured) the
    /// proxy says so.
    pub fn over_https(&self, headers: &axum::http::HeaderMap) -> bool {
        self.serves_https
            || (self.client_address_header.is_some()
                && headers
                    .get("x-forwarded-proto")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|proto| proto.eq_ignore_ascii_case("https")))
    }
}

/// The API, the dashboard and `/metrics`.
pub fn router(state: Arc<AppState>) -> Router {
    with_layers(api_routes().route("/metrics", get(metrics)), state)
}

/// The API and the dashboard, for a server that serves `/metrics` on an address of its own.
pub fn router_without_metrics(state: Arc<AppState>) -> Router {
    with_layers(api_routes(), state)
}

/// `/metrics` alone, for its own listen address.
pub fn metrics_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .layer(middleware::from_fn(crate::response_headers::add))
        .with_state(state)
}

fn api_routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/v1/join", post(sync::join))
        .route("/v1/sync", post(sync::sync))
        .route("/v1/sync/memberships", post(sync::sync_memberships))
        .route("/v1/memberships", get(sync::memberships))
        .route("/v1/devices", get(sync::people::list))
        .route("/v1/devices/revoke", post(sync::people::revoke))
        .route("/v1/link-codes", post(sync::people::link_code))
        .route("/v1/link", post(sync::link))
        .route("/v1/leave", post(sync::people::leave))
        .route(microcohort_core::sync::wire::CRITIQUE_WEEKS_PATH, post(sync::facilitators::change_week))
        .route(microcohort_core::sync::wire::FACILITATOR_ACTIONS_PATH, post(sync::facilitators::act))
        .route("/v1/dashboard-links", post(web::app_sign_in_link))
        .route("/v1/programs/{program_id}/report", get(web::report_json))
        .route("/v1/programs/{program_id}/report.csv", get(web::report_csv))
        .route("/dashboard", get(web::sign_in_page))
        .route("/dashboard/sign-out", post(web::sign_out))
        .route("/dashboard/link/{code}", get(web::confirm_link).post(web::redeem_link))
        .route("/dashboard/programs/{program_id}", get(web::dashboard_page))
}

fn with_layers(routes: Router<Arc<AppState>>, state: Arc<AppState>) -> Router {
    routes
        .layer(middleware::from_fn_with_state(state.clone(), guard_addresses))
        .layer(middleware::from_fn_with_state(state.clone(), count_requests))
        // Responses of a kilobyte or more, gzip-compressed for clients that ask (devices do).
        .layer(CompressionLayer::new().compress_when(SizeAbove::new(1024)))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, REQUEST_TIMEOUT))
        .layer(TraceLayer::new_for_http())
        .layer(middleware::from_fn(crate::response_headers::add))
        .with_state(state)
}

/// Alive and able to read its database: 503 with the reason otherwise (a load balancer takes
/// the process out of rotation).
async fn healthz(State(state): State<Arc<AppState>>) -> Response {
    match blocking(&state, |state| state.storage.ping()).await {
        Ok(_) => "ok".into_response(),
        Err(err) => (StatusCode::SERVICE_UNAVAILABLE, format!("the database does not answer: {err}")).into_response(),
    }
}

/// Counters only: scraping never touches the database (the gauges are kept by the sync path and
/// the background tasks).
async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        state.metrics.render(),
    )
        .into_response()
}

/// Where a request presents a secret for the server to look up.
fn takes_a_secret(path: &str) -> bool {
    path == "/v1/join" || path == "/v1/link" || path.starts_with("/dashboard/link/")
}

/// Per client address: refuses one that failed authentication too often, limits attempts with
/// secrets, and counts failures.
async fn guard_addresses(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let address = client_address(&request, state.client_address_header.as_ref());
    let secret = takes_a_secret(request.uri().path());
    let allowed = state
        .limits
        .check_not_blocked(address)
        .and_then(|()| if secret { state.limits.check_secret_attempt(address) } else { Ok(()) });
    if let Err(refused) = allowed {
        return refused.into_response();
    }
    let response = next.run(request).await;
    let failed = match response.status() {
        StatusCode::UNAUTHORIZED => true,
        StatusCode::FORBIDDEN | StatusCode::NOT_FOUND => secret,
        _ => false,
    };
    if failed {
        state.limits.record_failure(address);
    }
    response
}

async fn count_requests(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let path = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let response = next.run(request).await;
    state.metrics.requests.get_or_create(&RequestLabels { path, status: response.status().as_u16() }).inc();
    response
}
