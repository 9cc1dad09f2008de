//! The one auth guard: reads credentials and the provider from a request, and turns them
//! into a typed [`Session`] (secured operations) or [`Caller`] (public ones). REST,
//! GraphQL over HTTP and GraphQL over WebSocket all call it.

use axum::http::HeaderMap;
use axum::http::request::Parts;
use base64::Engine;

use crate::error::ApiError;
use crate::models::User;
use crate::providers::{LOCAL, Provider};
use crate::server::App;

/// Who calls a secured operation.
#[derive(Debug, Clone)]
pub struct Session {
    pub provider: String,
    pub user: User,
    /// The credential the request carried, if any (the Local provider needs none).
    pub token: Option<String>,
}

/// Who calls a public operation: maybe nobody in particular.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The provider the request named or defaults to; `None` when it named an unknown one.
    pub provider: Result<String, ApiError>,
    pub token: Option<String>,
}

/// A cookie's value, from every `Cookie` header.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"').to_string())
}

/// The credential of a request: `Authorization: Bearer`, else the `token` cookie, which
/// holds a raw JWT or base64 of an OAuth2 token JSON (Meshery's cookie format).
pub fn token(headers: &HeaderMap) -> Option<String> {
    if let Some(value) = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        && let Some((scheme, token)) = value.trim().split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
        && !token.trim().is_empty()
    {
        return Some(token.trim().to_string());
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
pub async fn authenticate(app: &App, parts: &Parts) -> Result<Session, ApiError> {
    // Naming an unknown provider leaves the request without valid credentials.
    let provider = app
        .providers
        .select(named_provider(parts).as_deref())
        .map_err(|mut e| {
            e.status = 401;
            e
        })?;
    let token = token(&parts.headers);
    match app.providers.get(&provider) {
        Some(Provider::Local) => Ok(Session {
            user: app.local_user(),
            provider,
            token,
        }),
        None => Err(ApiError::unauthorized(format!(
            "provider {provider} is not available"
        ))),
    }
}

/// The guard for public operations: never fails; an unknown provider is kept as an error
/// for the handlers that need a provider.
pub fn identify(app: &App, parts: &Parts) -> Caller {
    Caller {
        provider: app.providers.select(named_provider(parts).as_deref()),
        token: token(&parts.headers),
    }
}

/// The single user of the Local provider; its id is this installation's id.
pub fn local_user(instance_id: &str) -> User {
    User {
        id: instance_id.to_string(),
        user_id: "meshery".into(),
        user_name: "meshery".into(),
        first_name: "Meshery".into(),
        last_name: "User".into(),
        email: String::new(),
        avatar_url: String::new(),
        provider: LOCAL.into(),
        role_names: vec!["admin".into()],
    }
}
