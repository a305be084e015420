//! The API's error type: every failure becomes a JSON body naming the problem, with internals
//! logged rather than sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No route under `/api` matches the request.
    #[error("no API endpoint at {0}")]
    NotFound(String),
}

/// The JSON body of every error answer: `{"error": {"code": "...", "message": "..."}}`.
#[derive(Debug, Serialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Serialize)]
struct ErrorDetail {
    /// Stable, machine-readable code.
    code: &'static str,
    /// Human-readable explanation.
    message: String,
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let body = ErrorBody { error: ErrorDetail { code, message: self.to_string() } };
        (status, Json(body)).into_response()
    }
}
