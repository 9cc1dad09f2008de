//! The one auth guard: reads credentials and the provider from a request, and turns them
//! into a typed [`Session`] (secured operations) or [`Caller`] (public ones). REST,
//! GraphQL over HTTP and GraphQL over WebSocket all call it.

use base64::Engine;
use hyper::http::HeaderMap;
use hyper::http::request::Parts;

use crate::providers::{Provider, Providers, UnknownProvider, local_user};
use crate::remote::TokenRejected;
pub use crate::session::Session;

/// Who calls a public operation: maybe nobody in particular.
#[derive(Clone)]
pub struct Caller {
    /// The provider the request named or defaults to, or why it named none we offer.
    pub provider: Result<String, UnknownProvider>,
    pub token: Option<String>,
}

pub use meshery_http::credentials::cookie;

/// Why a request to a secured operation has no session.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error(transparent)]
    UnknownProvider(#[from] UnknownProvider),
    #[error("provider {0} needs a token")]
    NoToken(String),
    #[error("provider {0} is not available")]
    Unavailable(String),
    #[error(transparent)]
    Rejected(#[from] TokenRejected),
}

/// The credential of a request: `Authorization: Bearer`, else the `token` cookie, which
/// holds a raw JWT or base64 of an OAuth2 token JSON (Meshery's cookie format).
pub fn token(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = meshery_http::credentials::bearer(headers) {
        return Some(token.to_string());
    }
    let raw = cookie(headers, "token").filter(|t| !t.is_empty())?;
    Some(decode_token_cookie(&raw).unwrap_or(raw))
}

/// The access token inside a base64 OAuth2 token document, if the cookie is one.
fn decode_token_cookie(raw: &str) -> Option<String> {
    let trimmed = raw.trim_end_matches('=');
    let bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(trimmed))
        .ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    doc.get("access_token")?.as_str().map(str::to_string)
}

/// The provider a request names: cookie or header `meshery-provider`, then `?provider=`.
pub fn named_provider(parts: &Parts) -> Option<String> {
    cookie(&parts.headers, "meshery-provider")
        .or_else(|| {
            parts
                .headers
                .get("meshery-provider")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        })
        .or_else(|| {
            form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
                .find(|(k, _)| k == "provider")
                .map(|(_, v)| v.into_owned())
        })
        .filter(|s| !s.trim().is_empty())
}

/// The guard for secured operations.
pub async fn authenticate(providers: &Providers, parts: &Parts) -> Result<Session, AuthError> {
    verify(
        providers,
        named_provider(parts).as_deref(),
        token(&parts.headers),
    )
    .await
}

/// The core of the guard, shared by REST, GraphQL over HTTP and GraphQL over WebSocket
/// (where the token may come in `connection_init`).
pub async fn verify(
    providers: &Providers,
    named: Option<&str>,
    token: Option<String>,
) -> Result<Session, AuthError> {
    // Naming an unknown provider leaves the request without valid credentials (401).
    let provider = providers.select(named, token.is_some())?;
    match providers.get(&provider) {
        Some(Provider::Local) => Ok(match token {
            // The common case shares one session built at start.
            None => providers.local_session().clone(),
            Some(_) => Session::new(provider, local_user(providers.system_id()), token, false),
        }),
        Some(Provider::Remote(remote)) => {
            let Some(token) = token else {
                return Err(AuthError::NoToken(provider));
            };
            // The session is cached with the verification (same token, same session).
            Ok(remote.session(&token).await?)
        }
        None => Err(AuthError::Unavailable(provider)),
    }
}

/// The guard for public operations: never fails; an unknown provider is kept as an error
/// for the handlers that need a provider.
pub fn identify(providers: &Providers, parts: &Parts) -> Caller {
    let token = token(&parts.headers);
    Caller {
        provider: providers.select(named_provider(parts).as_deref(), token.is_some()),
        token,
    }
}
