//! One table from API errors to the wire: HTTP status, RFC 6749-style JSON body,
//! and (for the gRPC front) a status code. Every HTTP front answers from it: the
//! API in `api/` and dev mode's stand-in IdP. An inactive token is never an error.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::metrics::Outcome;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No or wrong caller credentials.
    InvalidClient,
    /// Authenticated, but without the permission this endpoint needs.
    Forbidden(&'static str),
    /// Malformed request: missing token, wrong content type, oversized body.
    InvalidRequest(String),
    /// A dependency (the revocation store, an IdP) cannot take the request now.
    Unavailable(String),
    /// The answer asked for (`Accept`) cannot be given.
    NotAcceptable(&'static str),
    NotFound,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidClient => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::NotAcceptable(_) => StatusCode::NOT_ACCEPTABLE,
            ApiError::NotFound => StatusCode::NOT_FOUND,
        }
    }

    /// The RFC 6749 §5.2 style `error` code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidClient => "invalid_client",
            ApiError::Forbidden(_) => "insufficient_scope",
            ApiError::InvalidRequest(_) | ApiError::NotAcceptable(_) => "invalid_request",
            ApiError::Unavailable(_) => "temporarily_unavailable",
            ApiError::NotFound => "not_found",
        }
    }

    pub fn description(&self) -> String {
        match self {
            ApiError::InvalidClient => "caller authentication failed".into(),
            ApiError::Forbidden(p) => format!("the caller lacks the {p:?} permission"),
            ApiError::InvalidRequest(d) | ApiError::Unavailable(d) => d.clone(),
            ApiError::NotAcceptable(d) => (*d).to_owned(),
            ApiError::NotFound => "no such endpoint or resource".into(),
        }
    }

    /// The gRPC half of the table.
    pub fn to_status(&self) -> tonic::Status {
        let message = self.description();
        match self {
            ApiError::InvalidClient => tonic::Status::unauthenticated(message),
            ApiError::Forbidden(_) => tonic::Status::permission_denied(message),
            ApiError::InvalidRequest(_) | ApiError::NotAcceptable(_) => {
                tonic::Status::invalid_argument(message)
            }
            ApiError::Unavailable(_) => tonic::Status::unavailable(message),
            ApiError::NotFound => tonic::Status::not_found(message),
        }
    }

    pub fn outcome(&self) -> Outcome {
        match self {
            ApiError::InvalidClient => Outcome::InvalidClient,
            ApiError::Forbidden(_) => Outcome::Forbidden,
            ApiError::InvalidRequest(_) | ApiError::NotAcceptable(_) | ApiError::NotFound => {
                Outcome::BadRequest
            }
            ApiError::Unavailable(_) => Outcome::Unavailable,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body =
            serde_json::json!({"error": self.code(), "error_description": self.description()});
        let mut response = (self.status(), axum::Json(body)).into_response();
        if self == ApiError::InvalidClient {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"tokend\", Bearer realm=\"tokend\""),
            );
        }
        response
    }
}

impl Outcome {
    /// The outcome an HTTP answer stands for (routes whose errors are `ApiError`s).
    pub fn from_status(status: StatusCode) -> Outcome {
        match status.as_u16() {
            200..=299 => Outcome::Ok,
            401 => Outcome::InvalidClient,
            403 => Outcome::Forbidden,
            503 => Outcome::Unavailable,
            _ => Outcome::BadRequest,
        }
    }
}

impl From<crate::callers::Refusal> for ApiError {
    fn from(refusal: crate::callers::Refusal) -> ApiError {
        match refusal {
            crate::callers::Refusal::InvalidClient => ApiError::InvalidClient,
            crate::callers::Refusal::Forbidden(name) => ApiError::Forbidden(name),
        }
    }
}
