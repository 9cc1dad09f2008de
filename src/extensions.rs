//! `/api/extensions/*`: a reverse proxy to the session's remote provider. The upstream URL
//! is built segment by segment on the provider's base URL, so it can only ever reach the
//! provider's origin (Meshery joins strings, so `/api/extensions@other.host/x` sends the
//! user's token elsewhere). Hop-by-hop headers are dropped both ways, the client's
//! credentials are replaced by the session's, bodies and time are bounded.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use reqwest::Url;

use crate::app::App;
use crate::cookies::{cookie, token_cookie_value};
use crate::error::{ApiError, codes};
use crate::remote::Remote;
use crate::session::Session;

pub const PREFIX: &str = "/api/extensions/";
/// Largest answer passed back from a provider.
const MAX_RESPONSE: usize = 64 << 20;
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
];
/// Request headers never forwarded: the session's credentials replace them.
const CLIENT_ONLY: &[&str] = &[
    "host",
    "authorization",
    "cookie",
    "x-api-key",
    "systemid",
    "meshery-provider",
    "content-length",
];

/// The provider path of a proxied request, as decoded segments; refuses anything that
/// could climb out of the provider's base path or be read as another authority.
pub fn safe_segments(raw: &str) -> Result<Vec<String>, ApiError> {
    let bad = |why: &str| {
        ApiError::bad_request(format!("extension path refused: {why}"))
            .remedy("Use a plain path below the provider, such as /api/extensions/api/hello.")
    };
    let mut out = Vec::new();
    let parts: Vec<&str> = raw.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        let decoded = percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .map_err(|_| bad("a segment is not UTF-8"))?;
        let last = i + 1 == parts.len();
        if decoded.is_empty() && !(last && i > 0) {
            return Err(bad("empty segment"));
        }
        if decoded == "." || decoded == ".." {
            return Err(bad("dot segment"));
        }
        if decoded.contains(['/', '\\', '\0']) || decoded.chars().any(char::is_control) {
            return Err(bad("encoded separator or control character"));
        }
        out.push(decoded.into_owned());
    }
    Ok(out)
}

/// `base` + segments: each segment is percent-encoded into the path, never parsed.
pub fn join(base: &Url, segments: &[String], query: Option<&str>) -> Result<Url, ApiError> {
    let mut url = base.clone();
    {
        let mut path = url.path_segments_mut().map_err(|_| {
            ApiError::internal("joining the extension path", "base URL cannot be a base")
        })?;
        path.pop_if_empty();
        path.extend(segments);
    }
    url.set_query(query);
    url.set_fragment(None);
    Ok(url)
}

/// Headers named by a `Connection` header are hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn filtered(headers: &HeaderMap, also_drop: &[&str]) -> HeaderMap {
    let listed = connection_listed(headers);
    let mut out = HeaderMap::new();
    for (name, value) in headers {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n) || also_drop.contains(&n) || listed.iter().any(|l| l == n) {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// A provider call that failed in transport: 504 on a timeout, else 502.
pub(crate) fn upstream_error(e: &reqwest::Error, remote: &Remote) -> ApiError {
    if e.is_timeout() {
        ApiError::new(
            504,
            codes::GATEWAY_TIMEOUT,
            format!("provider {} did not answer in time", remote.name),
        )
    } else {
        tracing::warn!(provider = %remote.name, error = %e, "extension call failed");
        ApiError::new(
            502,
            codes::BAD_GATEWAY,
            format!("provider {} could not be reached", remote.name),
        )
        .cause("the provider is down or refused the connection")
    }
}

pub async fn proxy(app: &App, session: Session, request: Request) -> Response {
    match forward(app, session, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn forward(app: &App, session: Session, request: Request) -> Result<Response, ApiError> {
    let Some(crate::providers::Provider::Remote(remote)) = app.providers.get(&session.provider)
    else {
        return Err(ApiError::not_found(format!(
            "provider {} has no extensions",
            session.provider
        ))
        .remedy("Sign in with a remote provider to use its extensions."));
    };
    let token = session.token.clone().unwrap_or_default();
    let (parts, body) = request.into_parts();
    // The raw (still percent-encoded) path, so encoded separators are seen and refused.
    let raw = parts.uri.path().strip_prefix(PREFIX).unwrap_or("");
    let url = join(&remote.base, &safe_segments(raw)?, parts.uri.query())?;
    let bytes = crate::app::read_body(app, body).await?;
    let headers = filtered(&parts.headers, CLIENT_ONLY);
    let method = parts.method.clone();
    let send = |token: String| {
        remote
            .request(method.clone(), url.clone(), &token)
            .headers(headers.clone())
            .body(bytes.clone())
            .send()
    };
    let mut upstream = send(token.clone())
        .await
        .map_err(|e| upstream_error(&e, &remote))?;
    let mut renewed = None;
    if upstream.status() == reqwest::StatusCode::UNAUTHORIZED {
        // Meshery's contract: refresh once and retry.
        if let Ok(fresh) = remote.refresh(&token).await {
            upstream = send(fresh.clone())
                .await
                .map_err(|e| upstream_error(&e, &remote))?;
            renewed = Some(fresh);
        }
    }
    let status = upstream.status();
    let mut out_headers = filtered(upstream.headers(), &["set-cookie", "content-length"]);
    out_headers.insert(header::VIA, HeaderValue::from_static("1.1 meshery"));
    if let Some(fresh) = renewed {
        let expiry = chrono::Utc::now().timestamp() + 3600;
        if let Ok(v) = HeaderValue::from_str(&cookie(
            &app.config,
            "token",
            &token_cookie_value(&fresh, expiry),
        )) {
            out_headers.append(header::SET_COOKIE, v);
        }
    }
    let mut seen = 0usize;
    let stream = upstream.bytes_stream().map(move |chunk| {
        let chunk = chunk.map_err(std::io::Error::other)?;
        seen += chunk.len();
        if seen > MAX_RESPONSE {
            return Err(std::io::Error::other("provider answer too large"));
        }
        Ok(chunk)
    });
    let mut response = Response::new(Body::from_stream(stream));
    *response.status_mut() = status;
    *response.headers_mut() = out_headers;
    Ok(response)
}
