//! The server a command talks to (context, overrides, token file) and the clients for it:
//! the generated REST client (progenitor) and GraphQL operations (cynic), both carrying
//! the credentials as Meshery's cookies and as a bearer header.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use meshery_models::AuthFile;
use reqwest::header::{AUTHORIZATION, COOKIE, HeaderMap, HeaderValue};

use crate::config::{self, Config};
use crate::failure::{self, Class, Failure, Outcome};

/// Where and as whom: resolved once per command.
pub struct Target {
    pub config: Config,
    pub context: String,
    pub endpoint: String,
    /// The token file of the context.
    pub auth_path: PathBuf,
    /// Its content, when there is one.
    pub auth: Option<AuthFile>,
}

/// Global overrides of the config file.
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub context: Option<String>,
    pub server: Option<String>,
}

/// A server URL: http(s) with a host, no trailing slash.
pub fn endpoint(url: &str) -> Outcome {
    let trimmed = url.trim().trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("http://")
        .or_else(|| trimmed.strip_prefix("https://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(trimmed.to_string()),
        _ => Err(failure::usage(format!(
            "{url:?} is not an http or https URL with a host"
        ))),
    }
}

impl Target {
    pub fn resolve(o: &Overrides) -> Outcome<Target> {
        let config_path =
            config::path(o.config.clone()).map_err(|e| failure::config(e.to_string()))?;
        let config = config::load(&config_path).map_err(|e| failure::config(e.to_string()))?;
        let context = o
            .context
            .clone()
            .unwrap_or_else(|| config.current_context.clone());
        let Some(ctx) = config.contexts.get(&context) else {
            let names: Vec<&str> = config.contexts.keys().map(String::as_str).collect();
            return Err(Failure::new(
                Class::NotFound,
                format!(
                    "no context {context:?} in {}; there are: {} (mesheryctl system context create)",
                    config_path.display(),
                    if names.is_empty() {
                        "none".into()
                    } else {
                        names.join(", ")
                    }
                ),
            ));
        };
        let endpoint = endpoint(o.server.as_deref().unwrap_or(&ctx.endpoint))?;
        let auth_path = config::auth_path(&config_path, &config, ctx);
        let auth = read_auth(&auth_path)?;
        Ok(Target {
            config,
            context,
            endpoint,
            auth_path,
            auth,
        })
    }

    /// The REST client with the stored credentials.
    pub fn client(&self) -> Outcome<meshery_client::rest::Client> {
        let http = http(self.auth.as_ref())?;
        Ok(meshery_client::rest::Client::new_with_client(
            &self.endpoint,
            http,
        ))
    }

    pub fn fail(&self, e: meshery_client::rest::Error<meshery_models::MeshKitError>) -> Failure {
        failure::api(e, &self.endpoint)
    }
}

/// Reads a token file; a missing one is `None`.
pub fn read_auth(path: &Path) -> Outcome<Option<AuthFile>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            failure::config(format!(
                "{} is not a token file ({{\"meshery-provider\": ..., \"token\": ...}}): {e}",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(failure::config(format!("{}: {e}", path.display()))),
    }
}

/// Writes a token file atomically, readable by the user only.
pub fn write_auth(path: &Path, auth: &AuthFile) -> Outcome<()> {
    let text = serde_json::to_vec_pretty(auth).map_err(|e| failure::config(e.to_string()))?;
    config::write_atomic(path, &text).map_err(|e| failure::config(e.to_string()))
}

/// rustls with the built-in roots and `MESHERY_CA_FILE`, for https servers and providers.
pub fn tls() -> Outcome<meshery_tls::rustls::ClientConfig> {
    let extra = match std::env::var_os("MESHERY_CA_FILE") {
        Some(file) => Some(std::fs::read(&file).map_err(|e| {
            failure::config(format!(
                "MESHERY_CA_FILE {}: {e}",
                Path::new(&file).display()
            ))
        })?),
        None => None,
    };
    meshery_tls::outbound_config(extra.as_deref())
        .map_err(|e| failure::config(format!("MESHERY_CA_FILE: {e}")))
}

/// An HTTP client: bounded connect and read times, no redirects (Meshery answers a bad
/// session with one), credentials when given.
pub fn http(auth: Option<&AuthFile>) -> Outcome<reqwest::Client> {
    let mut headers = HeaderMap::new();
    if let Some(auth) = auth {
        let mut cookie = format!("meshery-provider={}", auth.meshery_provider);
        if !auth.token.is_empty() {
            cookie.push_str(&format!("; token={}", auth.token));
            let bearer =
                HeaderValue::from_str(&format!("Bearer {}", auth.token)).map_err(|_| {
                    failure::config("the token file's token is not a valid header value")
                })?;
            headers.insert(AUTHORIZATION, bearer);
        }
        let mut cookie = HeaderValue::from_str(&cookie).map_err(|_| {
            failure::config("the token file's provider or token has invalid characters")
        })?;
        cookie.set_sensitive(true);
        headers.insert(COOKIE, cookie);
    }
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls()?)
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(10))
        // Streams (load tests, events) send a frame or keepalive well within this.
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("mesheryctl/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| failure::config(format!("building the HTTP client: {e}")))
}

/// The claims of a JWT, read without verifying (the server verifies; this is for display).
pub fn claims(token: &str) -> Option<serde_json::Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// "in 59m", "expired 3m ago"
pub fn expiry(token: &str) -> Option<(i64, String)> {
    let exp = claims(token)?.get("exp")?.as_i64()?;
    let now = chrono::Utc::now().timestamp();
    let human = |secs: i64| {
        if secs >= 3600 {
            format!("{}h{}m", secs / 3600, secs % 3600 / 60)
        } else if secs >= 60 {
            format!("{}m", secs / 60)
        } else {
            format!("{secs}s")
        }
    };
    let when = chrono::DateTime::from_timestamp(exp, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    Some(if exp > now {
        (exp, format!("{when} (in {})", human(exp - now)))
    } else {
        (exp, format!("{when} (expired {} ago)", human(now - exp)))
    })
}
