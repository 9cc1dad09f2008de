//! A remote provider: its capabilities, token verification (JWKS first, then the
//! provider's confirmation), login URLs, and every outbound call to it, each with
//! timeouts, a size limit and Meshery's headers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use jsonwebtoken::jwk::JwkSet;
use reqwest::Url;
use serde_json::{Value, json};
use tokio::sync::RwLock;

use crate::fault::{Internal, OrInternal};
use crate::jwt::{Claims, JwtError, KeySource, Policy, Verifier};
use crate::models::{ProviderCapabilities, User};
use crate::session::Session;

/// Largest body read from a provider's control endpoints (keys, capabilities, tokens).
const MAX_CONTROL_BODY: usize = 256 * 1024;
/// Bound on cached tokens; past it the least useful entries are evicted one by one
/// (S3-FIFO), so a flood of new tokens cannot flush every user's verification at once.
const CACHE_CAP: usize = 10_000;

/// What the verification cache keys a token by (and replicas name a revoked one by).
pub fn token_key(token: &str) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    key
}

pub struct Remote {
    pub base: Url,
    pub name: String,
    pub capabilities: RwLock<ProviderCapabilities>,
    http: reqwest::Client,
    verifier: Verifier<JwksSource>,
    /// A token -> its verification, trusted until the time it holds. Keyed by the token
    /// itself (the cache's hasher is keyed at random): a request costs one fast hash of
    /// it, not a SHA-256 (which only a verification and a revocation compute).
    cache: quick_cache::sync::Cache<Box<str>, Arc<Verified>>,
    /// How long a verified token is trusted before the provider is asked again
    /// (revocation); streams recheck their session as often.
    confirm_ttl: Duration,
    system_id: String,
    /// The provider's answers about a user (organizations, keys) by token and path,
    /// trusted as long as a confirmation: Meshery's UI asks on every page, and every
    /// workspace or environment request checks them.
    answers: quick_cache::sync::Cache<(Box<str>, Box<str>), Arc<Answer>, AnswerWeight>,
}

/// A provider's answer kept for a while (`None`: it does not serve the path).
struct Answer {
    doc: Option<serde_json::Value>,
    until: Instant,
    /// Bytes it stands for: token, path and the answer's body.
    weight: u64,
}

/// Bytes of provider answers kept at most (each is at most 1 MiB).
const ANSWERS_BYTES: u64 = 32 * 1024 * 1024;

#[derive(Clone)]
struct AnswerWeight;

impl quick_cache::Weighter<(Box<str>, Box<str>), Arc<Answer>> for AnswerWeight {
    fn weight(&self, _: &(Box<str>, Box<str>), answer: &Arc<Answer>) -> u64 {
        answer.weight
    }
}

/// A token the provider confirmed, and the session built from it.
struct Verified {
    claims: Claims,
    session: Session,
    until: Instant,
    /// [`token_key`] of the token: what revocations from other replicas name.
    key: [u8; 32],
}

/// A remote provider's user, from the token's claims.
pub fn user_of(provider: &str, claims: &Claims) -> User {
    let login = claims
        .preferred_username
        .clone()
        .unwrap_or_else(|| claims.sub.clone());
    User {
        id: claims.sub.clone(),
        user_id: login.clone(),
        user_name: login,
        first_name: claims.given_name.clone().unwrap_or_default(),
        last_name: claims.family_name.clone().unwrap_or_default(),
        email: claims.email.clone().unwrap_or_default(),
        avatar_url: claims.picture.clone().unwrap_or_default(),
        provider: provider.to_string(),
        role_names: claims.roles.clone(),
    }
}

pub struct JwksSource {
    http: reqwest::Client,
    url: Url,
}

impl KeySource for JwksSource {
    type Error = RemoteError;
    async fn fetch(&self) -> Result<JwkSet, RemoteError> {
        let response = self
            .http
            .get(self.url.clone())
            .send()
            .await
            .map_err(RemoteError::Unreachable)?;
        if !response.status().is_success() {
            return Err(RemoteError::Status {
                what: self.url.to_string(),
                status: response.status(),
            });
        }
        let body = read_capped(response, MAX_CONTROL_BODY).await?;
        serde_json::from_slice(&body).map_err(|source| RemoteError::Json {
            what: self.url.to_string(),
            source,
        })
    }
}

/// Why a body could not be read whole.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// More than the cap (the caller's fault or the upstream's, depending on the caller).
    #[error("response larger than {0} bytes")]
    TooLarge(usize),
    /// The connection failed while reading.
    #[error("{0}")]
    Io(reqwest::Error),
}

/// Why a call to a remote provider failed.
/// Why a remote provider's token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenRejected {
    #[error("the token is not valid for provider {provider}")]
    Invalid {
        provider: String,
        #[source]
        cause: JwtError,
    },
    #[error("the provider could not confirm the token")]
    Unconfirmed,
    #[error("the token was revoked or is no longer active")]
    Inactive,
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("provider URL {url:?}: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("{0}")]
    Unreachable(reqwest::Error),
    #[error("{what} answered {status}")]
    Status {
        what: String,
        status: reqwest::StatusCode,
    },
    #[error(transparent)]
    Read(#[from] ReadError),
    #[error("{what}: {source}")]
    Json {
        what: String,
        source: serde_json::Error,
    },
    #[error("{0}")]
    Capabilities(String),
    #[error("provider {base} did not answer its capabilities: {last}")]
    NoCapabilities { base: Url, last: Box<RemoteError> },
    #[error("refresh answered no token")]
    NoToken,
}

/// Reads a response body, refusing more than `cap` bytes.
pub async fn read_capped(
    mut response: reqwest::Response,
    cap: usize,
) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| ReadError::Io(e.without_url()))?
    {
        if out.len() + chunk.len() > cap {
            return Err(ReadError::TooLarge(cap));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// The outbound HTTP client: bounded connect and total time, no redirects, https with
/// the server's roots (built-in plus the operator's extra CAs).
pub fn http_client_builder(tls: &std::sync::Arc<rustls::ClientConfig>) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(15))
        .redirect(reqwest::redirect::Policy::none())
        .tls_backend_preconfigured(rustls::ClientConfig::clone(tls))
}

fn snake_to_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.push(c.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Capabilities documents come with camelCase keys (now) or snake_case (older
/// providers); missing parts take empty defaults.
pub fn parse_capabilities(doc: Value) -> Result<ProviderCapabilities, RemoteError> {
    let Value::Object(map) = doc else {
        return Err(RemoteError::Capabilities(
            "the capabilities document is not a JSON object".into(),
        ));
    };
    let mut out = json!({
        "providerType": "remote", "packageVersion": "", "packageUrl": "", "providerName": "",
        "providerDescription": [], "providerUrl": "", "extensions": {}, "capabilities": [],
        "restrictedAccess": {}, "redirects": {}
    });
    for (k, v) in map {
        let key = snake_to_camel(&k);
        let v = match (key.as_str(), v) {
            ("extensions", Value::Object(ext)) => Value::Object(
                ext.into_iter()
                    .map(|(k, v)| (snake_to_camel(&k), v))
                    .collect(),
            ),
            (_, v) => v,
        };
        out[key] = v;
    }
    let caps: ProviderCapabilities =
        serde_json::from_value(out).map_err(|source| RemoteError::Json {
            what: "capabilities".into(),
            source,
        })?;
    if caps.provider_name.trim().is_empty() {
        return Err(RemoteError::Capabilities(
            "the capabilities document has no providerName".into(),
        ));
    }
    Ok(caps)
}

/// How start-up retries a provider that does not answer yet: `attempts` tries, the
/// first `first_delay` apart, doubling; no wait after the last.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub attempts: u32,
    pub first_delay: Duration,
}

impl Default for Retry {
    /// 7 tries over 12.6 s (0.2 + 0.4 + ... + 6.4).
    fn default() -> Self {
        Retry {
            attempts: 7,
            first_delay: Duration::from_millis(200),
        }
    }
}

impl Remote {
    /// A kept answer of the provider to `path` for `token`, while it is fresh: `Some(None)`
    /// when the provider does not serve the path.
    pub fn kept_answer(&self, token: &str, path: &str) -> Option<Option<serde_json::Value>> {
        let answer = self.answers.get(&(token.into(), path.into()))?;
        (answer.until > Instant::now()).then(|| answer.doc.clone())
    }

    /// Keeps an answer of the provider (`size`: its body's bytes) for as long as a token
    /// confirmation; nothing without a token (it would be everyone's).
    pub fn keep_answer(
        &self,
        token: &str,
        path: &str,
        doc: Option<serde_json::Value>,
        size: usize,
    ) {
        if token.is_empty() {
            return;
        }
        let weight = (token.len() + path.len() + size + 64) as u64;
        self.answers.insert(
            (token.into(), path.into()),
            Arc::new(Answer {
                doc,
                until: Instant::now() + self.confirm_ttl,
                weight,
            }),
        );
    }

    /// Fetches the provider's capabilities, retrying with backoff.
    pub async fn connect(
        base: &str,
        system_id: &str,
        version: &str,
        policy: Policy,
        tls: &std::sync::Arc<rustls::ClientConfig>,
        retry: Retry,
    ) -> Result<Remote, RemoteError> {
        let bad_url = |reason: String| RemoteError::BadUrl {
            url: base.to_string(),
            reason,
        };
        let mut base = Url::parse(base.trim()).map_err(|e| bad_url(e.to_string()))?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(bad_url("must be http(s) with a host".into()));
        }
        if !base.path().ends_with('/') {
            base.set_path(&format!("{}/", base.path()));
        }
        let http = http_client_builder(tls)
            .build()
            .map_err(RemoteError::Client)?;
        let mut url = base
            .join(&format!("{version}/capabilities"))
            .map_err(|e| bad_url(e.to_string()))?;
        let keys = base.join("keys").map_err(|e| bad_url(e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("os", std::env::consts::OS)
            .append_pair("playground", "false");
        let mut delay = retry.first_delay;
        let mut last_error = None;
        for attempt in 1..=retry.attempts.max(1) {
            if attempt > 1 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            match Self::fetch_capabilities(&http, &url, None).await {
                Ok(caps) => {
                    let jwks = JwksSource {
                        http: http.clone(),
                        url: keys,
                    };
                    return Ok(Remote {
                        name: caps.provider_name.clone(),
                        capabilities: RwLock::new(caps),
                        confirm_ttl: policy.confirm_ttl,
                        verifier: Verifier::new(jwks, policy),
                        cache: quick_cache::sync::Cache::new(CACHE_CAP),
                        answers: quick_cache::sync::Cache::with_weighter(
                            CACHE_CAP,
                            ANSWERS_BYTES,
                            AnswerWeight,
                        ),
                        system_id: system_id.to_string(),
                        base,
                        http,
                    });
                }
                Err(e) => {
                    tracing::warn!(%url, attempt, error = %e, "provider capabilities not available yet");
                    last_error = Some(e);
                }
            }
        }
        Err(RemoteError::NoCapabilities {
            base,
            last: Box::new(last_error.unwrap_or(RemoteError::Capabilities("no attempt".into()))),
        })
    }

    async fn fetch_capabilities(
        http: &reqwest::Client,
        url: &Url,
        token: Option<&str>,
    ) -> Result<ProviderCapabilities, RemoteError> {
        let mut request = http.get(url.clone());
        if let Some(t) = token {
            request = request.bearer_auth(t);
        }
        let response = request.send().await.map_err(RemoteError::Unreachable)?;
        if !response.status().is_success() {
            return Err(RemoteError::Status {
                what: "capabilities".into(),
                status: response.status(),
            });
        }
        let body = read_capped(response, MAX_CONTROL_BODY).await?;
        let doc: Value = serde_json::from_slice(&body).map_err(|source| RemoteError::Json {
            what: "capabilities".into(),
            source,
        })?;
        parse_capabilities(doc)
    }

    /// Fetches the capabilities again with a user's token (providers may show signed-in
    /// users more); keeps the old document when that fails.
    pub async fn refresh_capabilities(&self, token: &str, version: &str) {
        let Ok(mut url) = self.base.join(&format!("{version}/capabilities")) else {
            return;
        };
        url.query_pairs_mut()
            .append_pair("os", std::env::consts::OS)
            .append_pair("playground", "false");
        match Self::fetch_capabilities(&self.http, &url, Some(token)).await {
            Ok(caps) if caps.provider_name == self.name => *self.capabilities.write().await = caps,
            Ok(_) => {
                tracing::warn!(provider = %self.name, "capabilities changed the provider's name; kept the old ones")
            }
            Err(e) => {
                tracing::warn!(provider = %self.name, error = %e, "capabilities refresh failed")
            }
        }
    }

    /// A request to the provider carrying Meshery's headers for `token`.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: Url,
        token: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, url)
            .header("authorization", format!("bearer {token}"))
            .header("x-api-key", token)
            .header("systemid", &self.system_id)
    }

    pub fn url(&self, path: &str) -> Result<Url, Internal> {
        self.base.join(path).or_internal("building a provider URL")
    }

    async fn post_token(&self, path: &str, token: &str) -> Result<Value, RemoteError> {
        let url = self.base.join(path).map_err(|e| RemoteError::BadUrl {
            url: path.to_string(),
            reason: e.to_string(),
        })?;
        let response = self
            .request(reqwest::Method::POST, url, token)
            .json(&json!({"token": token}))
            .send()
            .await
            .map_err(RemoteError::Unreachable)?;
        let status = response.status();
        let body = read_capped(response, MAX_CONTROL_BODY).await?;
        if !status.is_success() {
            return Err(RemoteError::Status {
                what: path.to_string(),
                status,
            });
        }
        if body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&body).map_err(|source| RemoteError::Json {
            what: path.to_string(),
            source,
        })
    }

    /// Verifies a token: the signature and claims locally, then the provider confirms it is
    /// still active (revocation). The result is cached for a minute at most.
    pub async fn authenticate(&self, token: &str) -> Result<Claims, TokenRejected> {
        Ok(self.verified(token).await?.claims.clone())
    }

    /// The session of a token's user, verified as `authenticate` does; a cached
    /// verification hands out the same session (one reference count, no copy).
    pub async fn session(&self, token: &str) -> Result<Session, TokenRejected> {
        Ok(self.verified(token).await?.session.clone())
    }

    async fn verified(&self, token: &str) -> Result<Arc<Verified>, TokenRejected> {
        if let Some(v) = self.cache.get(token)
            && Instant::now() < v.until
            // The provider confirmed the token until its expiry, not past it (the
            // verification's leeway is for clock skew, not for trusting an old answer).
            && v.claims.exp > chrono::Utc::now().timestamp()
        {
            return Ok(v);
        }
        let claims = self.verifier.verify(token).await.map_err(|e| {
            if let JwtError::Keys(cause) = &e {
                tracing::warn!(provider = %self.name, %cause, "JWKS fetch failed");
            }
            TokenRejected::Invalid {
                provider: self.name.clone(),
                cause: e,
            }
        })?;
        let active = match self.post_token("introspect", token).await {
            Ok(doc) => doc.get("active").and_then(Value::as_bool).unwrap_or(false),
            Err(cause) => {
                tracing::warn!(provider = %self.name, %cause, "introspection failed");
                return Err(TokenRejected::Unconfirmed);
            }
        };
        if !active {
            return Err(TokenRejected::Inactive);
        }
        let session = Session::remote(
            self.name.clone(),
            user_of(&self.name, &claims),
            token.to_string(),
            claims.exp,
        );
        let verified = Arc::new(Verified {
            claims,
            session,
            until: Instant::now() + self.confirm_ttl,
            key: token_key(token),
        });
        self.cache.insert(token.into(), verified.clone());
        Ok(verified)
    }

    /// Confirms a token as a request would (the cached verification while it is fresh,
    /// else the provider again): until when the confirmation holds.
    pub async fn confirmed_until(&self, token: &str) -> Result<Instant, TokenRejected> {
        Ok(self.verified(token).await?.until)
    }

    /// Until when the cached confirmation of a token holds, if one is cached.
    pub fn cached_until(&self, token: &str) -> Option<Instant> {
        self.cache.get(token).map(|v| v.until)
    }

    /// Exchanges a token for a new one (`POST /refresh`).
    pub async fn refresh(&self, token: &str) -> Result<String, RemoteError> {
        let doc = self.post_token("refresh", token).await?;
        doc.get("token")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or(RemoteError::NoToken)
    }

    /// Forgets a token's verification (it was revoked, here or on another replica, which
    /// names it by [`token_key`]): a scan of at most the cache's bound, on a logout only.
    pub fn forget(&self, key: &[u8; 32]) {
        self.cache.retain(|_, v| v.key != *key);
    }

    /// Forgets every verification (revocations may have been missed).
    pub fn forget_all(&self) {
        self.cache.clear();
    }

    /// Logs out at the provider and revokes the token; forgets it here first.
    pub async fn logout(&self, token: &str) {
        self.forget(&token_key(token));
        if let Ok(url) = self.base.join("logout") {
            let _ = self.request(reqwest::Method::GET, url, token).send().await;
        }
        if let Err(e) = self.post_token("revoke", token).await {
            tracing::warn!(provider = %self.name, error = %e, "revoke failed");
        }
    }

    /// Where the browser signs in: `<remote>/login?source=<b64url(callback)>&ref=...`.
    pub fn login_url(
        &self,
        callback: &str,
        reference: &str,
        version: &str,
    ) -> Result<Url, Internal> {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut url = self.url("login")?;
        url.query_pairs_mut()
            .append_pair("source", &b64.encode(callback))
            .append_pair(
                "provider_version",
                &self
                    .capabilities
                    .try_read()
                    .map(|c| c.package_version.clone())
                    .unwrap_or_default(),
            )
            .append_pair("meshery_version", version)
            .append_pair("ref", &b64.encode(reference));
        Ok(url)
    }
}
