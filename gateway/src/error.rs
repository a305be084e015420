//! The API's error type: every failure becomes a JSON body naming the problem, with internals
//! logged rather than sent to the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use protocol::tangle::{DecodeError, InsufficientWork};
use serde::Serialize;

use crate::store::StoreError;

/// An error answered to an API client.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No route under `/api` matches the request.
    #[error("no API endpoint at {0}")]
    NotFound(String),
    #[error("no message with id {0}")]
    MessageNotFound(String),
    #[error("{what} must be 64 hex digits, got {got:?}")]
    BadHex { what: &'static str, got: String },
    #[error("invalid query: {0}")]
    BadQuery(String),
    #[error("request body is larger than the node's cap of {limit} bytes")]
    BodyTooLarge { limit: usize },
    #[error("request body could not be read: {0}")]
    BodyUnreadable(String),
    #[error("expected content type application/octet-stream (an encoded message), got {0:?}")]
    UnsupportedMediaType(String),
    #[error("malformed batch: {0}")]
    BadBatch(String),
    #[error("{0}")]
    Truncated(DecodeError),
    #[error("{0}")]
    PayloadTooLarge(DecodeError),
    #[error("malformed message: {0}")]
    Malformed(DecodeError),
    #[error("{0}")]
    InsufficientWork(InsufficientWork),
    #[error("too many requests from this client; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("the node's store is full; it cannot accept messages until space is freed")]
    StoreFull,
    #[error("the node is shutting down")]
    Unavailable,
    /// Details are logged, never sent.
    #[error("internal error")]
    Internal(String),
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
    /// The HTTP status and the stable code clients can branch on.
    pub fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            Self::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            Self::MessageNotFound(_) => (StatusCode::NOT_FOUND, "message_not_found"),
            Self::BadHex { .. } => (StatusCode::BAD_REQUEST, "bad_hex"),
            Self::BadQuery(_) => (StatusCode::BAD_REQUEST, "bad_query"),
            Self::BodyTooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            Self::BodyUnreadable(_) => (StatusCode::BAD_REQUEST, "body_unreadable"),
            Self::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            Self::BadBatch(_) => (StatusCode::BAD_REQUEST, "malformed_batch"),
            Self::Truncated(_) => (StatusCode::BAD_REQUEST, "truncated"),
            Self::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            Self::Malformed(_) => (StatusCode::BAD_REQUEST, "malformed"),
            Self::InsufficientWork(_) => (StatusCode::UNPROCESSABLE_ENTITY, "insufficient_work"),
            Self::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            Self::StoreFull => (StatusCode::INSUFFICIENT_STORAGE, "store_full"),
            Self::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Self::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<DecodeError> for ApiError {
    fn from(err: DecodeError) -> Self {
        match err {
            DecodeError::Truncated { .. } => Self::Truncated(err),
            DecodeError::PayloadTooLarge { .. } => Self::PayloadTooLarge(err),
            _ => Self::Malformed(err),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Full => Self::StoreFull,
            StoreError::Closed => Self::Unavailable,
            StoreError::Open { .. } | StoreError::Internal(_) => Self::Internal(err.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if let Self::Internal(detail) = &self {
            tracing::error!(%detail, "internal error answered with 500");
        }
        let retry_after = match &self {
            Self::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            Self::Unavailable => Some(1),
            _ => None,
        };
        let body = ErrorBody { error: ErrorDetail { code, message: self.to_string() } };
        let mut response = (status, Json(body)).into_response();
        if let Some(secs) = retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
