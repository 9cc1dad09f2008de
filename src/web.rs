//! Pages outside the API: landing, provider chooser, login hand-off, reference docs, and
//! the fallback (MeshKit 404 under `/api`).

use axum::Router;
use axum::extract::{OriginalUri, State};
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{MethodRouter, get};

use crate::error::ApiError;
use crate::server::App;

/// The offline GraphQL playground.
pub const PLAYGROUND: &str = include_str!("web/playground.html");
const REST_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/rest-api.html"));
const GRAPHQL_HTML: &str = include_str!(concat!(env!("OUT_DIR"), "/graphql-api.html"));

/// Every route outside the generated API router. None is under `/api`: API routes exist
/// only in schema/openapi.yaml (a contract test checks this list).
pub fn pages() -> Vec<(&'static str, MethodRouter<App>)> {
    vec![
        ("/", get(index)),
        ("/provider", get(chooser)),
        ("/user/login", get(login)),
        ("/docs", get(docs_index)),
        ("/docs/rest", get(|| async { Html(REST_HTML) })),
        ("/docs/graphql", get(|| async { Html(GRAPHQL_HTML) })),
    ]
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

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>{title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:40em;margin:2em auto;padding:0 1em}}\
         a{{color:#00608f}}li{{margin:.4em 0}}</style></head><body><h1>{title}</h1>{body}</body></html>"
    ))
}

async fn index(State(app): State<App>) -> Html<String> {
    let v = app.version();
    page(
        "Meshery",
        &format!(
            "<p>meshery-rs {} ({}).</p><ul>\
             <li><a href=\"/provider\">Choose a provider</a></li>\
             <li><a href=\"/docs\">API reference</a></li>\
             <li><a href=\"/api/system/graphql/playground\">GraphQL playground</a></li></ul>",
            escape(&v.build),
            escape(&v.release_channel)
        ),
    )
}

async fn chooser(State(app): State<App>) -> Html<String> {
    let items: String = app
        .providers
        .list()
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

/// The Local provider needs no sign-in: straight to the start page.
async fn login() -> Redirect {
    Redirect::to("/")
}

async fn docs_index() -> Html<String> {
    page(
        "Meshery API reference",
        "<ul><li><a href=\"/docs/rest\">REST API reference</a></li>\
         <li><a href=\"/docs/graphql\">GraphQL API reference</a></li>\
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
