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
    pub const ADMIN_ONLY: &str = "meshery-server-1014";
    /// The provider does not grant the user a key the operation needs.
    pub const MISSING_KEY: &str = "meshery-server-1015";
    /// Something Meshery does that this server deliberately does not (adapters).
    pub const NOT_SUPPORTED: &str = "meshery-server-1016";
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

    /// 403 unless the session's user is an administrator (the Local user, or the `admin`
    /// role in a remote token); `what` says what only they may do and `why` why.
    pub fn unless_admin(
        session: &crate::session::Session,
        what: &str,
        why: &str,
    ) -> Result<(), Self> {
        if session.is_admin() {
            return Ok(());
        }
        Err(Self::new(
            403,
            codes::ADMIN_ONLY,
            format!(
                "only administrators may {what}: {} has no {:?} role",
                session.user.user_name,
                crate::session::ADMIN_ROLE
            ),
        )
        .cause(why.to_string())
        .remedy("Ask an administrator to do it, or to give you the admin role at your provider."))
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

impl From<crate::fault::Internal> for ApiError {
    fn from(e: crate::fault::Internal) -> Self {
        ApiError::internal(e.doing, e.cause)
    }
}

impl From<crate::designs::DesignError> for ApiError {
    fn from(e: crate::designs::DesignError) -> Self {
        use crate::designs::DesignError::*;
        match e {
            Invalid(_) => ApiError::bad_request(e.to_string()).remedy(
                "Fix the named fields; kinds and their schemas are listed at /api/registry/components.",
            ),
            Unreadable(_) | BadFilter(_) => ApiError::bad_request(e.to_string()),
            NotYours(_) | NotReadable(_) => ApiError::not_found(e.to_string()),
            Internal(i) => i.into(),
        }
    }
}

impl From<crate::events::EventError> for ApiError {
    fn from(e: crate::events::EventError) -> Self {
        match e {
            crate::events::EventError::Invalid(m) => ApiError::bad_request(m),
            crate::events::EventError::Internal(i) => i.into(),
        }
    }
}

impl From<crate::kubernetes::KubeError> for ApiError {
    fn from(e: crate::kubernetes::KubeError) -> Self {
        use crate::kubernetes::KubeError::*;
        match e {
            BadKubeconfig(m) => ApiError::bad_request(m)
                .remedy("Upload a kubeconfig as `kubectl config view --raw` prints it."),
            NotFound(_) => ApiError::not_found(e.to_string()),
            Unreachable { .. } => ApiError::new(502, codes::BAD_GATEWAY, e.to_string()).remedy(
                "Check that the API server is running and reachable from the Meshery server.",
            ),
            Target(t) => t.into(),
            Internal(i) => i.into(),
        }
    }
}

impl From<crate::connections::ConnectionError> for ApiError {
    fn from(e: crate::connections::ConnectionError) -> Self {
        use crate::connections::ConnectionError::*;
        match e {
            NotFound(_) => ApiError::not_found(e.to_string()),
            Invalid(m) => ApiError::bad_request(m),
            Conflict(m) => ApiError::new(409, codes::CONFLICT, m),
            Credential(c) => c.into(),
            Internal(i) => i.into(),
        }
    }
}

impl From<crate::credentials::CredentialError> for ApiError {
    fn from(e: crate::credentials::CredentialError) -> Self {
        use crate::credentials::CredentialError::*;
        match e {
            NotFound(_) => ApiError::not_found(e.to_string()),
            Invalid(m) => ApiError::bad_request(m),
            Exists(_) => ApiError::new(409, codes::CONFLICT, e.to_string())
                .remedy("Leave `id` out for a new one, or change it with PUT."),
            InUse { .. } => ApiError::new(409, codes::CONFLICT, e.to_string())
                .remedy("Delete those connections, or give them another credential, first."),
            Internal(i) => i.into(),
        }
    }
}

impl From<crate::deploy::DeployError> for ApiError {
    fn from(e: crate::deploy::DeployError) -> Self {
        use crate::deploy::DeployError::*;
        match e {
            NoContexts => ApiError::bad_request(e.to_string())
                .remedy("Upload a kubeconfig: POST /api/system/kubernetes, or the UI's Settings."),
            NoneConnected(_) | Stopped { .. } => ApiError::new(409, codes::CONFLICT, e.to_string())
                .remedy("See /api/integrations/connections for each cluster's state and why."),
            Kube(k) => k.into(),
            Internal(i) => i.into(),
        }
    }
}

impl From<crate::perf::PerfError> for ApiError {
    fn from(e: crate::perf::PerfError) -> Self {
        use crate::perf::PerfError::*;
        match e {
            Invalid(m) => ApiError::bad_request(m).remedy("See the perf operations in /docs/rest."),
            ShuttingDown => ApiError::unavailable(e.to_string()),
            TooManyOfYours { .. } => ApiError::new(429, codes::TOO_MANY_RUNS, e.to_string())
                .remedy(
                    "Wait for one to finish, or cancel one with DELETE /api/perf/runs/{runId}.",
                ),
            TooManyOnServer { .. } => ApiError::new(429, codes::TOO_MANY_RUNS, e.to_string())
                .remedy(
                    "Try again when one has finished (the operator sets --perf-max-runs-total).",
                ),
            NoResult(_) | NoProfile(_) => ApiError::not_found(e.to_string()),
            Target(t) => t.into(),
            Internal(i) => i.into(),
        }
    }
}

impl From<crate::registry::RegistryError> for ApiError {
    fn from(e: crate::registry::RegistryError) -> Self {
        use crate::registry::RegistryError::*;
        match e {
            Invalid(m) => {
                ApiError::bad_request(m).remedy("See the registry operations in /docs/rest.")
            }
            Exists(_) => ApiError::new(409, codes::CONFLICT, e.to_string())
                .remedy("Register it with a new version."),
            BuiltIn(_) | InUse { .. } => ApiError::new(409, codes::CONFLICT, e.to_string()),
            NoModel { .. } => ApiError::not_found(e.to_string()),
            Internal(i) => i.into(),
        }
    }
}

impl From<crate::providers::UnknownProvider> for ApiError {
    fn from(e: crate::providers::UnknownProvider) -> Self {
        let mut err = ApiError::new(400, codes::UNKNOWN_PROVIDER, e.to_string());
        if let Some(only) = &e.only {
            err = err.cause(format!("this server only offers {only}"));
        }
        err.remedy("List the providers with GET /api/providers and choose one of them.")
    }
}

impl From<crate::remote::TokenRejected> for ApiError {
    fn from(e: crate::remote::TokenRejected) -> Self {
        use crate::remote::TokenRejected::*;
        let err = ApiError::unauthorized(e.to_string());
        match e {
            Invalid {
                cause: crate::jwt::JwtError::Keys(_),
                ..
            } => err.cause("the provider's keys could not be fetched"),
            Invalid { cause, .. } => err.cause(cause.to_string()),
            Unconfirmed => err.cause("the provider did not answer its introspection endpoint"),
            Inactive => err,
        }
    }
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(e: crate::auth::AuthError) -> Self {
        use crate::auth::AuthError::*;
        match e {
            // Naming a provider we do not offer leaves the request without credentials.
            UnknownProvider(u) => ApiError {
                status: 401,
                ..u.into()
            },
            NoToken(_) => ApiError::unauthorized(e.to_string())
                .cause("the request has no Authorization header and no token cookie"),
            Unavailable(_) => ApiError::unauthorized(e.to_string()),
            Rejected(r) => r.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::OrInternal;

    #[test]
    fn an_internal_failure_answers_500_without_its_cause() {
        let failed: Result<(), _> =
            Err::<(), _>("disk full at /var/lib/secret").or_internal("saving a design");
        let e = ApiError::from(crate::designs::DesignError::from(failed.unwrap_err()));
        assert_eq!((e.status, e.code), (500, codes::INTERNAL));
        assert_eq!(e.message, "saving a design failed");
        let body = serde_json::to_string(&e.body()).unwrap();
        assert!(!body.contains("disk full"), "{body}");
    }

    #[test]
    fn an_unknown_provider_is_400_for_public_operations_and_401_behind_the_guard() {
        let unknown = crate::providers::UnknownProvider {
            name: "Nope".into(),
            only: Some("Meshery".into()),
        };
        let public = ApiError::from(unknown.clone());
        assert_eq!((public.status, public.code), (400, codes::UNKNOWN_PROVIDER));
        assert_eq!(public.probable_cause, ["this server only offers Meshery"]);
        let guarded = ApiError::from(crate::auth::AuthError::from(unknown));
        assert_eq!(
            (guarded.status, guarded.code),
            (401, codes::UNKNOWN_PROVIDER)
        );
        assert_eq!(guarded.message, public.message);
    }

    #[test]
    fn domain_errors_keep_their_status() {
        use crate::perf::PerfError;
        let cases = [
            (
                ApiError::from(PerfError::TooManyOfYours {
                    running: 2,
                    limit: 2,
                }),
                429,
            ),
            (ApiError::from(PerfError::NoProfile("p".into())), 404),
            (ApiError::from(PerfError::ShuttingDown), 503),
            (
                ApiError::from(crate::registry::RegistryError::Exists("m@1".into())),
                409,
            ),
            (
                ApiError::from(crate::kubernetes::KubeError::Unreachable {
                    context: "c".into(),
                    why: "refused".into(),
                }),
                502,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(e.status, status, "{e}");
            assert!(
                !e.remediation.is_empty() || status == 404 || status == 503,
                "{e}"
            );
        }
    }
}
