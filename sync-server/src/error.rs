//! Errors that become HTTP responses: a handler's `?` picks the right status code.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing, wrong, expired or revoked device token")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// The request contradicts what is stored (another person's invite on this device, …).
    #[error("{0}")]
    Conflict(String),
    /// Past one of the bounds on what a request may carry or store.
    #[error("{0}")]
    TooLarge(String),
    #[error("too many requests; retry in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("internal error")]
    Internal(String),
}

impl ApiError {
    /// The whole story, for logs and the command line (an internal error's response says less).
    pub fn detail(&self) -> String {
        match self {
            Self::Internal(detail) => detail.clone(),
            other => other.to_string(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<microcohort_core::sync::request::RequestProblem> for ApiError {
    fn from(problem: microcohort_core::sync::request::RequestProblem) -> Self {
        use microcohort_core::sync::request::RequestProblem;
        match problem {
            RequestProblem::TooLarge(what) => Self::TooLarge(what),
            RequestProblem::Malformed(what) => Self::BadRequest(what),
            RequestProblem::Forbidden(what) => Self::Forbidden(what),
            RequestProblem::NotFound(what) => Self::NotFound(what),
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(err: rusqlite::Error) -> Self {
        Self::Internal(err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "request failed");
        }
        let mut response = (self.status(), self.to_string()).into_response();
        if let Self::TooManyRequests { retry_after_secs } = self
            && let Ok(value) = HeaderValue::from_str(&retry_after_secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        response
    }
}
