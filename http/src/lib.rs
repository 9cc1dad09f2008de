//! HTTP plumbing shared by `meshery-server` and the reference provider (`meshery-provider`),
//! so neither keeps its own copy: the one accept loop ([`serve`], TLS from `meshery-tls`),
//! credentials in request headers ([`credentials`]), HTML escaping
//! ([`html`]), public URLs ([`public_url`]) and the site icon ([`favicon`]).

pub mod credentials;
pub mod html;
pub mod serve;

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// The icon browsers ask every page's origin for (a 404 there is a console error).
const FAVICON: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 32 32\">\
<path d=\"M16 2 28 9v14l-12 7L4 23V9z\" fill=\"#00b39f\"/>\
<path d=\"M16 9 22 12.5v7L16 23l-6-3.5v-7z\" fill=\"#fff\"/></svg>";

/// Serves [`FAVICON`]; route it at `/favicon.ico`.
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        FAVICON,
    )
        .into_response()
}

/// Why a `--public-url` was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublicUrlError {
    #[error("{0:?} is not an absolute URL such as https://meshery.example.com: {1}")]
    NotAbsolute(String, url::ParseError),
    #[error("{0:?} must be http(s) with a host")]
    NotHttp(String),
    #[error("{0:?} must not have a query or fragment")]
    QueryOrFragment(String),
}

/// A `--public-url` (of this server or of a provider): an absolute http(s) URL with a host
/// and no query or fragment, returned without a trailing slash so paths can be appended.
pub fn public_url(s: &str) -> Result<String, PublicUrlError> {
    let url = url::Url::parse(s.trim()).map_err(|e| PublicUrlError::NotAbsolute(s.into(), e))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(PublicUrlError::NotHttp(s.into()));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(PublicUrlError::QueryOrFragment(s.into()));
    }
    Ok(url.as_str().trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::public_url;

    #[test]
    fn public_urls_are_absolute_http_and_lose_the_trailing_slash() {
        assert_eq!(
            public_url("https://id.example.com/").unwrap(),
            "https://id.example.com"
        );
        assert_eq!(
            public_url("http://10.0.0.5:9081/meshery/").unwrap(),
            "http://10.0.0.5:9081/meshery"
        );
        for bad in [
            "id.example.com",
            "/meshery",
            "ftp://id.example.com",
            "https://id.example.com/?a=1",
            "https://id.example.com/#x",
        ] {
            assert!(public_url(bad).is_err(), "{bad}");
        }
    }
}
