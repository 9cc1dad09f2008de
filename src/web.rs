//! Pages outside the API: the web UI (one document, `web/app.html`, served at each of its
//! paths), provider chooser, login hand-off, reference docs, and the fallback (MeshKit 404
//! under `/api`).

use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get};

use axum::http::request::Parts;
use axum::http::{HeaderValue, header};

use crate::app::{App, BUILD};
use crate::auth;
use crate::error::ApiError;
use crate::providers::{LOCAL, Provider};

/// The offline GraphQL playground.
pub const PLAYGROUND: &str = include_str!("web/playground.html");
/// The web UI: plain HTML, CSS and script, no build step and nothing fetched from elsewhere.
const APP: &str = include_str!("web/app.html");
/// The UI's own pages; the script renders the one in `location.pathname`.
pub const APP_PAGES: [&str; 8] = [
    "/",
    "/performance",
    "/designs",
    "/clusters",
    "/workspaces",
    "/environments",
    "/events",
    "/token",
];
use crate::generated::{COMPAT_HTML, GRAPHQL_HTML, REST_HTML};

/// Every route outside the generated API router. None is under `/api`: API routes exist
/// only in schema/openapi.yaml (a contract test checks this list).
pub fn pages() -> Vec<(&'static str, MethodRouter<App>)> {
    let mut pages: Vec<(&'static str, MethodRouter<App>)> =
        APP_PAGES.iter().map(|p| (*p, get(app))).collect();
    pages.extend([
        ("/provider", get(chooser)),
        ("/user/login", get(login)),
        ("/user/logout", get(logout)),
        ("/docs", get(docs_index)),
        ("/docs/rest", get(|| async { Html(REST_HTML) })),
        ("/docs/graphql", get(|| async { Html(GRAPHQL_HTML) })),
        ("/docs/compat", get(|| async { Html(COMPAT_HTML) })),
        ("/favicon.ico", get(meshery_http::favicon)),
    ]);
    pages
}

/// The UI's policy: its own inline script and style run by hash and nothing else does, so
/// text that ever slips into the page as markup cannot run; avatars may be remote.
static APP_CSP: std::sync::LazyLock<HeaderValue> = std::sync::LazyLock::new(|| {
    let script = inline_hash(APP, "<script>", "</script>");
    let style = inline_hash(APP, "<style>", "</style>");
    let policy = format!(
        "default-src 'self'; script-src {script}; style-src {style}; \
         img-src 'self' data: blob: https: http:; connect-src 'self'; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'self'; object-src 'none'"
    );
    HeaderValue::from_str(&policy)
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'none'"))
});

/// `'sha256-…'` of the first inline element between `open` and `close` in `doc`, or
/// `'none'` when there is none.
fn inline_hash(doc: &str, open: &str, close: &str) -> String {
    use base64::Engine;
    let Some(body) = doc
        .split_once(open)
        .and_then(|(_, rest)| rest.split_once(close))
        .map(|(body, _)| body)
    else {
        return "'none'".into();
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    )
}

/// The UI document, with a policy that keeps it to this origin (see [`APP_CSP`]).
async fn app() -> Response {
    let mut response = Html(APP).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, APP_CSP.clone());
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn routes(app: App) -> Router {
    pages()
        .into_iter()
        .fold(Router::new(), |router, (path, page)| {
            router.route(path, page)
        })
        .fallback(fallback)
        .with_state(app)
}

use meshery_http::html::escape;

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}\
         a{{color:#00608f}}li{{margin:.4em 0}}</style></head><body><h1>{title}</h1>{body}</body></html>"
    ))
}

async fn chooser(State(app): State<App>) -> Html<String> {
    let items: String = app
        .providers
        .list()
        .await
        .values()
        .map(|p| {
            let q: String = form_urlencoded::Serializer::new(String::new())
                .append_pair("provider", &p.provider_name)
                .finish();
            format!(
                "<li><a href=\"/api/provider?{}\">{}</a> — {}</li>",
                escape(&q),
                escape(&p.provider_name),
                escape(&p.provider_description.join("; "))
            )
        })
        .collect();
    page("Choose a provider", &format!("<ul>{items}</ul>"))
}

/// Sends the browser to its provider's sign-in page (Local needs none: straight to `/`).
async fn login(State(app): State<App>, parts: Parts) -> Response {
    let named = auth::named_provider(&parts);
    let provider = named.as_deref().and_then(|n| app.providers.get(n));
    let remote = match provider {
        Some(Provider::Remote(remote)) => remote,
        Some(Provider::Local) => return Redirect::to("/").into_response(),
        None if named.is_none() && app.providers.get(LOCAL).is_some() => {
            return Redirect::to("/").into_response();
        }
        None => return Redirect::to("/provider").into_response(),
    };
    let origin = match &app.config.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let host = parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .unwrap_or("localhost:9081");
            format!("http://{host}")
        }
    };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("provider", &remote.name)
        .finish();
    let callback = format!("{origin}/api/user/token?{query}");
    let reference = form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "ref")
        .map(|(_, v)| v.into_owned())
        .filter(|r| r.starts_with('/') && !r.starts_with("//"))
        .unwrap_or_else(|| "/".into());
    match remote.login_url(&callback, &reference, BUILD) {
        Ok(url) => Redirect::to(url.as_str()).into_response(),
        Err(e) => crate::error::ApiError::from(e).into_response(),
    }
}

/// Ends the session: the provider logs out and revokes the token, the cookies go.
/// It stays a GET (mesheryctl and Meshery's UI call it so), but a browser request started
/// by another site is refused: a link elsewhere must not revoke the user's token.
async fn logout(State(app): State<App>, parts: Parts) -> Response {
    let site = parts
        .headers
        .get("sec-fetch-site")
        .and_then(|v| v.to_str().ok());
    if matches!(site, Some("cross-site" | "same-site")) {
        let mut response = page(
            "Not signed out",
            "<p>Another site asked to sign you out; nothing was changed. \
             Sign out from the <a href=\"/\">Meshery UI</a>'s account menu.</p>",
        )
        .into_response();
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    if let Some(name) = auth::named_provider(&parts)
        && let Some(Provider::Remote(remote)) = app.providers.get(&name)
        && let Some(token) = auth::token(&parts.headers)
    {
        app.providers.logout(&remote, &token).await;
    }
    let mut response = Redirect::to("/provider").into_response();
    for name in ["token", "session_cookie", "meshery-provider"] {
        let cleared = crate::cookies::cookie(&app.config, name, "") + "; Max-Age=0";
        if let Ok(v) = HeaderValue::from_str(&cleared) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

async fn docs_index() -> Html<String> {
    page(
        "Meshery API reference",
        "<ul><li><a href=\"/docs/rest\">REST API reference</a></li>\
         <li><a href=\"/docs/graphql\">GraphQL API reference</a></li>\
         <li><a href=\"/docs/compat\">Compatibility with Meshery's clients</a></li>\
         <li><a href=\"/api/system/openapi.yaml\">OpenAPI document</a></li>\
         <li><a href=\"/api/system/graphql/playground\">GraphQL playground</a></li></ul>",
    )
}

async fn fallback(OriginalUri(uri): OriginalUri) -> Response {
    if uri.path() == "/api" || uri.path().starts_with("/api/") {
        return ApiError::not_found(format!("no API operation at {}", uri.path()))
            .remedy("See /docs/rest for the operations this server offers.")
            .into_response();
    }
    (
        StatusCode::NOT_FOUND,
        page(
            "Not found",
            "<p>No page here. <a href=\"/\">Start page</a>.</p>",
        ),
    )
        .into_response()
}
