//! The one error type at the HTTP boundary, answered as a MeshKit error body. Internal
//! causes go to the log; the client gets a stable code and a remediation.

use std::fmt;

use axum::response::{IntoResponse, Response};

use crate::generated::rest::Rejection;
use crate::models::{MeshKitError, Severity};

/// Error codes, stable across releases (MeshKit style).
pub mod codes {
    pub const BAD_REQUEST: &str = "meshery-server-1001";
    pub const UNAUTHORIZED: &str = "meshery-server-1002";
    pub const NOT_FOUND: &str = "meshery-server-1003";
    pub const METHOD_NOT_ALLOWED: &str = "meshery-server-1004";
    pub const TOO_LARGE: &str = "meshery-server-1005";
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "meshery-server-1006";
    pub const UNKNOWN_PROVIDER: &str = "meshery-server-1007";
    pub const NOT_ACCEPTABLE: &str = "meshery-server-1008";
    pub const BAD_GATEWAY: &str = "meshery-server-1009";
    pub const GATEWAY_TIMEOUT: &str = "meshery-server-1010";
    pub const FORBIDDEN_TARGET: &str = "meshery-server-1011";
    pub const TOO_MANY_RUNS: &str = "meshery-server-1012";
    pub const CONFLICT: &str = "meshery-server-1013";
    pub const INTERNAL: &str = "meshery-server-1099";
    pub const UNAVAILABLE: &str = "meshery-server-1098";
}

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: u16,
    pub code: &'static str,
    pub message: String,
    pub probable_cause: Vec<String>,
    pub remediation: Vec<String>,
}

impl ApiError {
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            probable_cause: Vec::new(),
            remediation: Vec::new(),
        }
    }

    pub fn cause(mut self, cause: impl Into<String>) -> Self {
        self.probable_cause.push(cause.into());
        self
    }

    pub fn remedy(mut self, remedy: impl Into<String>) -> Self {
        self.remediation.push(remedy.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, codes::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(401, codes::UNAUTHORIZED, message)
            .remedy("Sign in again: `mesheryctl system login`, or the UI's provider page.")
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, codes::NOT_FOUND, message)
    }

    /// A server-side failure: the cause is logged, the client sees a generic message.
    pub fn internal(context: &str, cause: impl fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::new(500, codes::INTERNAL, format!("{context} failed"))
            .cause("an internal error; the server log has the details")
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(503, codes::UNAVAILABLE, message)
    }

    pub fn body(&self) -> MeshKitError {
        MeshKitError {
            code: self.code.to_string(),
            error: self.message.clone(),
            long_description: vec![self.message.clone()],
            probable_cause: self.probable_cause.clone(),
            severity: if self.status >= 500 {
                Severity::Error
            } else {
                Severity::Warning
            },
            suggested_remediation: self.remediation.clone(),
        }
    }

    pub fn from_rejection(rejection: &Rejection) -> Self {
        let status = rejection.status();
        let code = match status {
            413 => codes::TOO_LARGE,
            415 => codes::UNSUPPORTED_MEDIA_TYPE,
            405 => codes::METHOD_NOT_ALLOWED,
            500 => codes::INTERNAL,
            _ => codes::BAD_REQUEST,
        };
        if status >= 500 {
            return ApiError::internal("building the response", rejection);
        }
        ApiError::new(status, code, rejection.to_string())
            .remedy("Check the request against the API reference at /docs/rest.")
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = axum::http::StatusCode::from_u16(self.status)
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let mut response = (status, axum::Json(self.body())).into_response();
        if self.status == 401 {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer realm=\"meshery\""),
            );
        }
        response
    }
}

// Domain errors at the boundary: each maps to its status, code and remedy here, so the
// domain modules need not know HTTP.

impl From<crate::store::ListingError> for ApiError {
    fn from(e: crate::store::ListingError) -> Self {
        ApiError::bad_request(e.to_string())
    }
}

impl From<crate::prefs::PrefsError> for ApiError {
    fn from(e: crate::prefs::PrefsError) -> Self {
        use crate::prefs::PrefsError::*;
        match e {
            Read(cause) => ApiError::internal("reading preferences", cause),
            Decode(cause) => ApiError::internal("decoding stored preferences", cause),
            Encode(cause) => ApiError::internal("encoding preferences", cause),
            Save(cause) => ApiError::internal("saving preferences", cause),
        }
    }
}

impl From<crate::policy::TargetError> for ApiError {
    fn from(e: crate::policy::TargetError) -> Self {
        match e {
            crate::policy::TargetError::Bad { .. } => ApiError::bad_request(e.to_string()),
            crate::policy::TargetError::Refused { .. } => {
                ApiError::new(403, codes::FORBIDDEN_TARGET, e.to_string()).remedy(
                    "Point the test at the service itself, or have the operator allow that network (--perf-allow).",
                )
            }
        }
    }
}
