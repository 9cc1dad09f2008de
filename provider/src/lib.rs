//! `meshery-provider`: a small, real identity provider speaking Meshery's remote-provider
//! contract. It signs EdDSA JWTs (kid, exp, nbf, iss, aud, sub), serves its JWKS, rotates
//! keys on request, introspects, refreshes and revokes tokens, and offers a few extension
//! endpoints that the server's `/api/extensions/` proxy reaches. Tests run it as a real
//! server; anyone writing a provider can read it as the contract in code.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use axum::Router;
use axum::extract::{Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{any, get, post};
use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Deserialize;
use serde_json::{Value, json};

/// A user who can sign in.
#[derive(Debug, Clone)]
pub struct Account {
    pub username: String,
    pub password: String,
    pub given_name: String,
    pub family_name: String,
    pub email: String,
    /// The `roles` claim of the user's tokens (`admin` lets a user change what every
    /// user shares, such as the model registry).
    pub roles: Vec<String>,
}

/// What went wrong in the provider.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("{0:?}: expected user:password[:Full Name[:email[:role+role]]]")]
    BadAccount(String),
    #[error("no randomness for a signing key: {0}")]
    Randomness(getrandom::Error),
    #[error("signing: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
    #[error("no signing key")]
    NoKey,
    #[error("no user {0}")]
    UnknownUser(String),
    #[error(transparent)]
    Tls(#[from] meshery_tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

impl Account {
    /// Parses `user:password[:Given Family[:email[:role+role]]]`; without roles the user
    /// has the one role `user`.
    pub fn parse(spec: &str) -> Result<Account, ProviderError> {
        let mut parts = spec.splitn(5, ':');
        let username = parts.next().unwrap_or("").trim().to_string();
        let password = parts.next().unwrap_or("").to_string();
        if username.is_empty() || password.is_empty() {
            return Err(ProviderError::BadAccount(spec.to_string()));
        }
        let name = parts.next().unwrap_or("").trim().to_string();
        let (given, family) = name.split_once(' ').unwrap_or((name.as_str(), ""));
        let email = parts
            .next()
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .unwrap_or_else(|| format!("{username}@example.com"));
        let mut roles: Vec<String> = parts
            .next()
            .unwrap_or("")
            .split('+')
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
        if roles.is_empty() {
            roles.push("user".into());
        }
        Ok(Account {
            given_name: if given.is_empty() {
                username.clone()
            } else {
                given.to_string()
            },
            family_name: family.to_string(),
            username,
            password,
            email,
            roles,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ProviderConfig {
    pub name: String,
    pub accounts: Vec<Account>,
    /// `iss` of issued tokens; defaults to the provider's own URL.
    pub issuer: Option<String>,
    pub audience: String,
    pub token_ttl: std::time::Duration,
    /// Serve https with this identity instead of plain http.
    pub tls: Option<TlsIdentity>,
    /// The address browsers reach this provider at (device verification links, default
    /// `iss`), when it is not the bound one: behind a proxy, or bound to 0.0.0.0.
    pub public_url: Option<String>,
    /// The bearer credential of administrative calls (`POST /keys/rotate`); without one
    /// they are refused.
    pub admin_token: Option<String>,
}

/// A server certificate chain and its private key, both PEM.
#[derive(Debug, Clone)]
pub struct TlsIdentity {
    pub cert_chain_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

impl TlsIdentity {
    fn acceptor(&self) -> Result<meshery_tls::TlsAcceptor, ProviderError> {
        Ok(meshery_tls::acceptor(&self.cert_chain_pem, &self.key_pem)?)
    }
}

impl Default for ProviderConfig {
    fn default() -> Self {
        ProviderConfig {
            name: "Reference".into(),
            accounts: Vec::new(),
            issuer: None,
            audience: "meshery".into(),
            token_ttl: std::time::Duration::from_secs(3600),
            tls: None,
            public_url: None,
            admin_token: None,
        }
    }
}

struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

fn new_key() -> Result<SigningKey, ProviderError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(ProviderError::Randomness)?;
    // PKCS#8 v1 of an Ed25519 seed: a fixed 16-byte ASN.1 prefix, then the seed.
    let mut der = vec![
        0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04,
        0x20,
    ];
    der.extend_from_slice(&seed);
    let encoding = EncodingKey::from_ed_der(&der);
    let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA)?;
    let kid = uuid::Uuid::new_v4().simple().to_string();
    jwk.common.key_id = Some(kid.clone());
    Ok(SigningKey { kid, encoding, jwk })
}

pub struct ProviderState {
    config: ProviderConfig,
    issuer: String,
    /// Where this provider is reached (device sign-in links).
    base_url: String,
    /// The newest key signs; older ones stay published so their tokens still verify.
    keys: Mutex<Vec<SigningKey>>,
    /// Revoked token ids, with when they stop mattering (expiry plus the refresh grace).
    revoked: Mutex<HashMap<String, i64>>,
    /// Sign-in sessions: id to (user, when the session ends).
    sessions: Mutex<HashMap<String, (String, i64)>>,
    /// Pending device authorizations (headless sign-in), by device code.
    devices: Mutex<HashMap<String, DeviceGrant>>,
    /// How many times `/keys` was fetched (tests bound JWKS amplification with it).
    pub key_fetches: AtomicU64,
    pub introspections: AtomicU64,
    /// How many times organizations or keys were asked for (tests check the server keeps
    /// the answers).
    pub identity_requests: AtomicU64,
    /// Seconds added to the wall clock (tests move time forward instead of sleeping).
    clock_skew: std::sync::atomic::AtomicI64,
}

#[derive(Clone)]
pub struct RefProvider(Arc<ProviderState>);

impl std::ops::Deref for RefProvider {
    type Target = ProviderState;
    fn deref(&self) -> &ProviderState {
        &self.0
    }
}

impl ProviderState {
    /// This provider's clock: the wall clock plus what tests moved it forward.
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.clock_skew.load(Ordering::Relaxed)
    }

    /// Moves this provider's clock forward: tokens expire, and sessions and revocations
    /// are forgotten, as if `secs` had passed. For tests, which must not sleep.
    pub fn advance_clock(&self, secs: i64) {
        self.clock_skew.fetch_add(secs, Ordering::Relaxed);
    }
}

impl RefProvider {
    pub fn new(config: ProviderConfig, base_url: &str) -> Result<RefProvider, ProviderError> {
        let issuer = config
            .issuer
            .clone()
            .unwrap_or_else(|| base_url.trim_end_matches('/').to_string());
        Ok(RefProvider(Arc::new(ProviderState {
            config,
            issuer,
            base_url: base_url.trim_end_matches('/').to_string(),
            keys: Mutex::new(vec![new_key()?]),
            revoked: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            devices: Mutex::new(HashMap::new()),
            key_fetches: AtomicU64::new(0),
            introspections: AtomicU64::new(0),
            identity_requests: AtomicU64::new(0),
            clock_skew: Default::default(),
        })))
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The kid that signs new tokens.
    pub fn current_kid(&self) -> String {
        self.keys
            .lock()
            .last()
            .map(|k| k.kid.clone())
            .unwrap_or_default()
    }

    /// Adds a new signing key; the old ones stay in the JWKS.
    pub fn rotate(&self) -> Result<String, ProviderError> {
        let key = new_key()?;
        let kid = key.kid.clone();
        self.keys.lock().push(key);
        Ok(kid)
    }

    pub fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self.keys.lock().iter().map(|k| k.jwk.clone()).collect(),
        }
    }

    /// Signs arbitrary claims with the current key (tests forge bad tokens with it).
    pub fn sign(&self, claims: &Value) -> Result<String, ProviderError> {
        let keys = self.keys.lock();
        let key = keys.last().ok_or(ProviderError::NoKey)?;
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(key.kid.clone());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// The standard claims of a token for `account`.
    pub fn claims_for(&self, account: &Account) -> Value {
        let now = self.now();
        json!({
            "iss": self.issuer,
            "aud": self.config.audience,
            "sub": format!("user-{}", account.username),
            "preferred_username": account.username,
            "given_name": account.given_name,
            "family_name": account.family_name,
            "email": account.email,
            "roles": account.roles,
            "iat": now,
            "nbf": now,
            "exp": now + self.config.token_ttl.as_secs() as i64,
            "jti": uuid::Uuid::new_v4().to_string(),
        })
    }

    pub fn account(&self, username: &str) -> Option<&Account> {
        self.config.accounts.iter().find(|a| a.username == username)
    }

    /// A fresh token for a known user.
    pub fn issue(&self, username: &str) -> Result<String, ProviderError> {
        let account = self
            .account(username)
            .ok_or_else(|| ProviderError::UnknownUser(username.to_string()))?;
        self.sign(&self.claims_for(account))
    }

    /// The claims of a token this provider signed and did not revoke (expiry checked
    /// unless `allow_expired`).
    fn check(&self, token: &str, allow_expired: bool) -> Option<Value> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let kid = header.kid?;
        let jwk = self.keys.lock().iter().find(|k| k.kid == kid)?.jwk.clone();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?;
        let mut validation = jsonwebtoken::Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[&self.config.audience]);
        validation.set_issuer(&[&self.issuer]);
        // Expiry is checked here, on this provider's clock (see `advance_clock`).
        validation.validate_exp = false;
        let claims: Value = jsonwebtoken::decode(token, &decoding, &validation)
            .ok()?
            .claims;
        // The provider is strict about its own tokens (no leeway; `exp` is the first second
        // a token is no longer good, per RFC 7519); relying parties allow
        // clock skew. An expired token is only good for a refresh, and only for a while.
        let exp = claims["exp"].as_i64().unwrap_or(0);
        let now = self.now();
        if (!allow_expired && exp <= now) || exp + self.grace() < now {
            return None;
        }
        let jti = claims["jti"].as_str().unwrap_or_default().to_string();
        let revoked = self.revoked.lock().contains_key(&jti);
        (!revoked).then_some(claims)
    }

    /// How long after expiry a token may still be refreshed: one token lifetime.
    fn grace(&self) -> i64 {
        self.config.token_ttl.as_secs() as i64
    }

    pub fn revoke(&self, token: &str) -> bool {
        match self.check(token, true) {
            Some(claims) => {
                if let Some(jti) = claims["jti"].as_str() {
                    let mut r = self.revoked.lock();
                    // Past its expiry and grace a token fails on its own: forget those.
                    let now = self.now();
                    r.retain(|_, until| *until >= now);
                    let until = claims["exp"].as_i64().unwrap_or(now) + self.grace();
                    r.insert(jti.to_string(), until);
                }
                true
            }
            None => false,
        }
    }

    /// Starts a sign-in session for `username`; ended ones are forgotten.
    fn open_session(&self, username: &str) -> String {
        let id = uuid::Uuid::new_v4().to_string();
        let now = self.now();
        let mut s = self.sessions.lock();
        s.retain(|_, (_, until)| *until >= now);
        s.insert(id.clone(), (username.to_string(), now + self.grace()));
        drop(s);
        id
    }

    /// Revocations and sessions held now (both shrink as entries expire).
    pub fn held(&self) -> (usize, usize) {
        (self.revoked.lock().len(), self.sessions.lock().len())
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route("/{version}/capabilities", get(capabilities))
            .route("/login", get(login_form).post(login_submit))
            .route("/device/code", post(device_code))
            .route("/device", get(device_form).post(device_submit))
            .route("/device/token", post(device_token))
            .route("/keys", get(keys))
            .route("/favicon.ico", get(meshery_http::favicon))
            .route("/keys/rotate", post(rotate))
            .route("/introspect", post(introspect))
            .route("/refresh", post(refresh))
            .route("/revoke", post(revoke))
            .route("/logout", get(logout).post(logout))
            .route("/api/hello", get(hello))
            .route("/api/identity/orgs", get(organizations))
            .route("/api/identity/orgs/{org}/users/keys", get(user_keys))
            .route("/api/identity/orgs/{org}/teams", get(teams))
            .route("/api/content/views", get(views))
            .route("/api/echo/{*rest}", any(echo))
            .route("/api/echo", any(echo))
            .with_state(self.clone())
    }
}

async fn capabilities(State(p): State<RefProvider>, Path(version): Path<String>) -> Response {
    // Snake keys on purpose: older providers answer so, and the server accepts both.
    axum::Json(json!({
        "provider_type": "remote",
        "package_version": version,
        "package_url": "",
        "provider_name": p.config.name,
        "provider_description": ["Reference remote provider", "Sign in with a user name and password"],
        "provider_url": p.issuer,
        "extensions": {"navigator": [{"title": "Hello", "href": {"uri": "/hello"}, "component": "/api/hello"}]},
        "capabilities": [
            {"feature": "sync-prefs", "endpoint": "/api/user/prefs"},
            {"feature": "users-identity", "endpoint": "/api/identity/users"}
        ],
        "restricted_access": {"isMesheryUiRestricted": false},
        "redirects": {}
    }))
    .into_response()
}

#[derive(Deserialize)]
struct LoginQuery {
    source: Option<String>,
    #[serde(rename = "ref")]
    reference: Option<String>,
}

async fn login_form(State(p): State<RefProvider>, Query(q): Query<LoginQuery>) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to {name}</title></head>\
         <body><h1>Sign in to {name}</h1><form method=\"post\" action=\"/login\">\
         <input type=\"hidden\" name=\"source\" value=\"{source}\"><input type=\"hidden\" name=\"ref\" value=\"{reference}\">\
         <p><label>User name <input id=\"username\" name=\"username\" autocomplete=\"username\" required></label></p>\
         <p><label>Password <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><button id=\"signin\" type=\"submit\">Sign in</button></p></form></body></html>",
        name = meshery_http::html::escape(&p.config.name),
        source = meshery_http::html::escape(q.source.as_deref().unwrap_or("")),
        reference = meshery_http::html::escape(q.reference.as_deref().unwrap_or("")),
    ))
}

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    source: String,
    #[serde(rename = "ref", default)]
    reference: String,
}

/// Constant-time enough for a reference provider: compares every byte.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn login_submit(
    State(p): State<RefProvider>,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let Some(account) = p
        .account(&form.username)
        .filter(|a| same(&a.password, &form.password))
    else {
        return (StatusCode::UNAUTHORIZED, Html("<p>Wrong user name or password. <a href=\"javascript:history.back()\">Back</a></p>")).into_response();
    };
    let callback = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(form.source.trim_end_matches('='))
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| url::Url::parse(&s).ok())
        .filter(|u| u.scheme() == "http" || u.scheme() == "https");
    let Some(mut callback) = callback else {
        return (
            StatusCode::BAD_REQUEST,
            "source must be base64url of an http(s) URL",
        )
            .into_response();
    };
    let token = match p.sign(&p.claims_for(account)) {
        Ok(t) => t,
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    let session = p.open_session(&account.username);
    {
        let mut q = callback.query_pairs_mut();
        q.append_pair("token", &token)
            .append_pair("session_cookie", &session);
        if !form.reference.is_empty() {
            q.append_pair("ref", &form.reference);
        }
    }
    Redirect::to(callback.as_str()).into_response()
}

/// A device authorization (RFC 8628): a CLI without a browser shows `user_code`, the user
/// approves it at `/device` on any machine, the CLI polls `/device/token`.
struct DeviceGrant {
    user_code: String,
    expires: i64,
    approved: Option<String>,
    last_poll: i64,
}

const DEVICE_TTL_SECS: i64 = 600;
const DEVICE_INTERVAL_SECS: i64 = 1;
const DEVICE_MAX_PENDING: usize = 1000;

/// Eight letters a person can read back without ambiguity (no vowels, no 0/O, 1/I).
fn user_code() -> String {
    const ALPHABET: &[u8] = b"BCDFGHJKLMNPQRSTVWXZ";
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let code: String = bytes[..8]
        .iter()
        .map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char)
        .collect();
    format!("{}-{}", &code[..4], &code[4..])
}

fn normalize_code(code: &str) -> String {
    let letters: String = code
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if letters.len() == 8 {
        format!("{}-{}", &letters[..4], &letters[4..])
    } else {
        letters
    }
}

fn device_error(status: StatusCode, error: &str, description: &str) -> Response {
    (
        status,
        axum::Json(json!({"error": error, "error_description": description})),
    )
        .into_response()
}

async fn device_code(State(p): State<RefProvider>) -> Response {
    let mut devices = p.devices.lock();
    let t = p.now();
    devices.retain(|_, g| g.expires > t);
    if devices.len() >= DEVICE_MAX_PENDING {
        return device_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "slow_down",
            "too many pending sign-ins; try again later",
        );
    }
    let device_code = uuid::Uuid::new_v4().simple().to_string();
    let code = user_code();
    devices.insert(
        device_code.clone(),
        DeviceGrant {
            user_code: code.clone(),
            expires: t + DEVICE_TTL_SECS,
            approved: None,
            last_poll: 0,
        },
    );
    let base = &p.base_url;
    axum::Json(json!({
        "device_code": device_code,
        "user_code": code,
        "verification_uri": format!("{base}/device"),
        "verification_uri_complete": format!("{base}/device?user_code={code}"),
        "expires_in": DEVICE_TTL_SECS,
        "interval": DEVICE_INTERVAL_SECS,
    }))
    .into_response()
}

#[derive(Deserialize)]
struct DeviceQuery {
    user_code: Option<String>,
}

async fn device_form(State(p): State<RefProvider>, Query(q): Query<DeviceQuery>) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in a device to {name}</title></head>\
         <body><h1>Sign in a device to {name}</h1><p>Enter the code your terminal shows.</p><form method=\"post\" action=\"/device\">\
         <p><label>Code <input id=\"user_code\" name=\"user_code\" value=\"{code}\" autocomplete=\"off\" required></label></p>\
         <p><label>User name <input id=\"username\" name=\"username\" autocomplete=\"username\" required></label></p>\
         <p><label>Password <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label></p>\
         <p><button id=\"signin\" type=\"submit\">Sign in</button></p></form></body></html>",
        name = meshery_http::html::escape(&p.config.name),
        code = meshery_http::html::escape(q.user_code.as_deref().unwrap_or("")),
    ))
}

#[derive(Deserialize)]
struct DeviceForm {
    user_code: String,
    username: String,
    password: String,
}

async fn device_submit(
    State(p): State<RefProvider>,
    axum::Form(form): axum::Form<DeviceForm>,
) -> Response {
    let Some(account) = p
        .account(&form.username)
        .filter(|a| same(&a.password, &form.password))
    else {
        return (
            StatusCode::UNAUTHORIZED,
            Html("<p>Wrong user name or password. <a href=\"/device\">Try again</a></p>"),
        )
            .into_response();
    };
    let code = normalize_code(&form.user_code);
    let t = p.now();
    let approved = p
        .devices
        .lock()
        .values_mut()
        .find(|g| g.user_code == code && g.expires > t && g.approved.is_none())
        .map(|g| g.approved = Some(account.username.clone()))
        .is_some();
    if approved {
        Html("<p id=\"done\">Signed in. Return to your terminal.</p>").into_response()
    } else {
        (
            StatusCode::BAD_REQUEST,
            Html("<p>Unknown or expired code. <a href=\"/device\">Try again</a></p>"),
        )
            .into_response()
    }
}

#[derive(Deserialize)]
struct DeviceTokenBody {
    device_code: String,
}

/// Polled by the CLI: `authorization_pending` until approved, then the token (once).
async fn device_token(
    State(p): State<RefProvider>,
    axum::Form(body): axum::Form<DeviceTokenBody>,
) -> Response {
    let t = p.now();
    let approved = {
        let mut devices = p.devices.lock();
        let Some(grant) = devices.get_mut(&body.device_code) else {
            return device_error(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "unknown device code",
            );
        };
        if grant.expires <= t {
            devices.remove(&body.device_code);
            return device_error(
                StatusCode::BAD_REQUEST,
                "expired_token",
                "the code expired; start again",
            );
        }
        match grant.approved.clone() {
            Some(user) => {
                devices.remove(&body.device_code);
                user
            }
            None => {
                let early = t - grant.last_poll < DEVICE_INTERVAL_SECS;
                grant.last_poll = t;
                return if early {
                    device_error(StatusCode::BAD_REQUEST, "slow_down", "poll less often")
                } else {
                    device_error(
                        StatusCode::BAD_REQUEST,
                        "authorization_pending",
                        "not approved yet",
                    )
                };
            }
        }
    };
    match p.issue(&approved) {
        Ok(token) => axum::Json(json!({"token": token, "token_type": "bearer"})).into_response(),
        Err(e) => device_error(StatusCode::BAD_REQUEST, "access_denied", &e.to_string()),
    }
}

async fn keys(State(p): State<RefProvider>) -> axum::Json<JwkSet> {
    p.key_fetches.fetch_add(1, Ordering::Relaxed);
    axum::Json(p.jwks())
}

async fn rotate(State(p): State<RefProvider>, headers: HeaderMap) -> Response {
    match (
        &p.config.admin_token,
        meshery_http::credentials::bearer(&headers),
    ) {
        (Some(admin), Some(given)) if same(admin, given) => {}
        (None, _) => {
            return (
                StatusCode::FORBIDDEN,
                axum::Json(json!({"error": "key rotation over HTTP is off; start the provider with --admin-token"})),
            )
                .into_response();
        }
        _ => {
            return (
                StatusCode::UNAUTHORIZED,
                axum::Json(json!({"error": "send the admin token as a bearer credential"})),
            )
                .into_response();
        }
    }
    match p.rotate() {
        Ok(kid) => axum::Json(json!({"kid": kid})).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

async fn introspect(
    State(p): State<RefProvider>,
    axum::Json(body): axum::Json<TokenBody>,
) -> axum::Json<Value> {
    p.introspections.fetch_add(1, Ordering::Relaxed);
    axum::Json(match p.check(&body.token, false) {
        Some(claims) => {
            json!({"active": true, "sub": claims["sub"], "exp": claims["exp"], "username": claims["preferred_username"]})
        }
        None => json!({"active": false}),
    })
}

async fn refresh(
    State(p): State<RefProvider>,
    axum::Json(body): axum::Json<TokenBody>,
) -> Response {
    // An expired but otherwise valid, unrevoked token may be refreshed.
    let Some(claims) = p.check(&body.token, true) else {
        return (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": "token cannot be refreshed"})),
        )
            .into_response();
    };
    let username = claims["preferred_username"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    p.revoke(&body.token);
    match p.issue(&username) {
        Ok(token) => axum::Json(json!({"token": token})).into_response(),
        Err(e) => (
            StatusCode::UNAUTHORIZED,
            axum::Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn revoke(
    State(p): State<RefProvider>,
    axum::Json(body): axum::Json<TokenBody>,
) -> StatusCode {
    if p.revoke(&body.token) {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    }
}

async fn logout(State(p): State<RefProvider>, headers: HeaderMap) -> StatusCode {
    if let Some(session) = meshery_http::credentials::cookie(&headers, "session_cookie") {
        p.sessions.lock().remove(&session);
    }
    StatusCode::OK
}

/// The caller's claims from `Authorization: bearer`, or 401.
fn caller(p: &RefProvider, headers: &HeaderMap) -> Result<Value, Box<Response>> {
    meshery_http::credentials::bearer(headers)
        .and_then(|t| p.check(t, false))
        .ok_or_else(|| {
            Box::new(
                (
                    StatusCode::UNAUTHORIZED,
                    axum::Json(json!({"error": "invalid token"})),
                )
                    .into_response(),
            )
        })
}

async fn hello(State(p): State<RefProvider>, headers: HeaderMap) -> Response {
    match caller(&p, &headers) {
        Ok(claims) => axum::Json(json!({"message": format!("hello {}", claims["preferred_username"].as_str().unwrap_or(""))})).into_response(),
        Err(r) => *r,
    }
}

/// The organizations a user is in: their own, and the shared "Reference" one (ids stable,
/// from the names).
fn orgs_of(claims: &Value) -> Vec<Value> {
    let user = claims["preferred_username"].as_str().unwrap_or("");
    let org = |name: String, owner: &str| {
        json!({"id": org_id(&name), "name": name, "description": "", "country": "", "region": "",
               "owner": owner, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
    };
    vec![
        org(format!("{user}'s team"), user),
        org("Reference".into(), "admin"),
    ]
}

fn org_id(name: &str) -> String {
    uuid::Uuid::new_v5(
        &uuid::Uuid::NAMESPACE_URL,
        format!("reference-provider/org/{name}").as_bytes(),
    )
    .to_string()
}

/// The teams of one of the caller's organizations (snake_case, as older providers
/// answer): "admins" and "everyone" in the shared one, the user's crew in their own.
async fn teams(
    State(p): State<RefProvider>,
    axum::extract::Path(org): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    p.identity_requests.fetch_add(1, Ordering::Relaxed);
    let claims = match caller(&p, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let Some(found) = orgs_of(&claims)
        .into_iter()
        .find(|o| o["id"] == org.as_str())
    else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such organization"})),
        )
            .into_response();
    };
    let names: Vec<String> = if org == org_id("Reference") {
        vec!["admins".into(), "everyone".into()]
    } else {
        vec![format!("{}'s crew", found["owner"].as_str().unwrap_or(""))]
    };
    let teams: Vec<Value> = names
        .iter()
        .map(|name| {
            json!({"id": org_id(&format!("{org}/team/{name}")), "name": name, "description": "",
                   "owner": found["owner"], "created_at": "2026-01-01T00:00:00Z",
                   "updated_at": "2026-01-01T00:00:00Z"})
        })
        .collect();
    axum::Json(
        json!({"page": 0, "page_size": teams.len(), "total_count": teams.len(), "teams": teams}),
    )
    .into_response()
}

/// The saved views of the caller's organizations (snake_case): each organization has an
/// "overview" and a "workloads" view. Meshery's UI saves views at its provider; this one
/// only lists them, enough for workspaces to take them as members.
async fn views(State(p): State<RefProvider>, headers: HeaderMap) -> Response {
    p.identity_requests.fetch_add(1, Ordering::Relaxed);
    let claims = match caller(&p, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let views: Vec<Value> = orgs_of(&claims)
        .iter()
        .flat_map(|org| {
            let id = org["id"].as_str().unwrap_or_default().to_string();
            ["overview", "workloads"].map(|name| {
                json!({"id": org_id(&format!("{id}/view/{name}")), "name": name,
                       "visibility": "public", "filters": {}, "metadata": {},
                       "user_id": org["owner"], "org_id": id,
                       "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
            })
        })
        .collect();
    axum::Json(
        json!({"page": 0, "page_size": views.len(), "total_count": views.len(), "views": views}),
    )
    .into_response()
}

/// Meshery's keys (ids and functions of its keychain) that the server checks: those that
/// only look, and those that change something.
const VIEW_KEYS: &[(&str, &str)] = &[
    ("bc9379e8-dc18-4655-b53c-c641271c4ba3", "View Workspace"),
    ("e3656bbc-fba2-483d-9996-34f8614cd21b", "View Environment"),
    ("b35c9ce0-e787-4de6-8560-631007b0b947", "View Connections"),
    ("3798736d-1f5d-41b3-876f-f3f01453dd15", "View Designs"),
    ("10a03036-53a0-40b3-9f69-6daab852e434", "Details of design"),
    ("64de96b7-60db-4aab-b311-afc64066b2c4", "Download a design"),
    ("0c757cc7-4038-4d9b-9b60-fa8d9fc9d27e", "View Results"),
    (
        "6593ac26-820b-4e87-be32-64ee740ea204",
        "View performance profiles",
    ),
    (
        "fdc485dc-f68b-405c-9e54-7b9a7254c282",
        "View cloud native infrastructure",
    ),
];
const CHANGE_KEYS: &[(&str, &str)] = &[
    ("14bd933e-83b7-464d-9a4d-d8c8eb9682ab", "Create new design"),
    ("cc040d21-3160-4a96-8efa-833487a234cd", "Import Design"),
    ("595b921a-ea1e-4611-83f0-503db0eeb94d", "Deploy Design"),
    ("16b11ffa-7b92-4666-a0ff-191df9cd18b2", "Undeploy Design"),
    ("94a12f80-3c45-4a1f-afb2-a68b909d0d7f", "Clone Design"),
    ("f024fcf7-3c3d-4521-b83e-6d659353ca0e", "Delete a design"),
    ("06de2b07-b4f4-4701-b87f-d92ebb66ba42", "Run test"),
    (
        "b2861578-c573-45fe-a95e-0356d56e1d1b",
        "Add performace profile",
    ),
    (
        "33aa5c47-a8aa-4ad5-9950-7c17042c001d",
        "Edit performance test",
    ),
    (
        "84aa9d3c-3d4b-4587-947d-ae17b2dcd5f5",
        "Delete performance test",
    ),
    ("fce15b20-78ac-42af-b79c-b8f19bdb0802", "Add cluster"),
    (
        "14ac9622-3170-4580-8403-ed7a584f90ef",
        "Change connection state",
    ),
    (
        "61afb8c2-cda6-4175-aad9-74ff87fed323",
        "Delete a connection",
    ),
    ("eb42ac41-a883-465e-843c-d64e962a3a0e", "Create Workspace"),
    ("4112230f-5d1e-4d30-9790-942ad5c1dc50", "Edit Workspace"),
    ("09eb0507-2f14-4bc4-92c5-9e26a4efbd5e", "Delete Workspace"),
    (
        "f421fc20-c14a-4282-b526-776c6cacfd99",
        "Assign environment to workspace",
    ),
    (
        "d0657715-80fb-4b00-af27-b78bb0fa56df",
        "Remove environment from workspace",
    ),
    (
        "6ab4263b-0bb3-492e-9878-6936a5b6312f",
        "Assign team to workspace",
    ),
    (
        "c4ed82f5-783d-4451-9b34-44f50cae71df",
        "Remove team from workspace",
    ),
    (
        "64a1bad5-30f1-431a-aea0-8073d14a0262",
        "Assign Designs to Workspaces",
    ),
    (
        "076515f1-f696-4211-ae27-58d5463a229e",
        "Remove Designs from Workspaces",
    ),
    ("a97b7f3b-3349-4a86-b917-2ce0b64a540b", "Create Environment"),
    ("145ab6ed-b4b6-4e34-ada5-78dada250f89", "Edit Environment"),
    ("70747966-dfad-4523-93ce-bd7421258955", "Delete Environment"),
    (
        "52cbe0b8-9aa7-4605-8eed-aa37e595adbb",
        "Assign connections to environment",
    ),
    (
        "65648682-e47f-43d7-a5ad-dc042803f951",
        "Remove connections from environments",
    ),
];

/// Meshery's organizations page (snake_case, as older providers answer).
async fn organizations(State(p): State<RefProvider>, headers: HeaderMap) -> Response {
    p.identity_requests.fetch_add(1, Ordering::Relaxed);
    match caller(&p, &headers) {
        Ok(claims) => {
            let orgs = orgs_of(&claims);
            axum::Json(json!({"page": 0, "page_size": orgs.len(), "total_count": orgs.len(), "organizations": orgs})).into_response()
        }
        Err(r) => *r,
    }
}

/// The keys a user holds in one of their organizations: in their own, every key the
/// server checks; in "Reference", administrators hold those too, other users may only
/// look (ids are Meshery's).
async fn user_keys(
    State(p): State<RefProvider>,
    axum::extract::Path(org): axum::extract::Path<String>,
    headers: HeaderMap,
) -> Response {
    p.identity_requests.fetch_add(1, Ordering::Relaxed);
    let claims = match caller(&p, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    if !orgs_of(&claims).iter().any(|o| o["id"] == org.as_str()) {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "no such organization"})),
        )
            .into_response();
    }
    let admin = claims["roles"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r == "admin"));
    let changes = admin || org != org_id("Reference");
    let keys: Vec<Value> = VIEW_KEYS
        .iter()
        .chain(CHANGE_KEYS.iter().filter(|_| changes))
        .map(|(id, function)| {
            json!({"id": id, "owner": org, "function": function, "category": "Workspace",
                   "subcategory": "Workspace Management", "description": function,
                   "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
        })
        .collect();
    axum::Json(json!({"page": 0, "page_size": keys.len(), "total_count": keys.len(), "keys": keys}))
        .into_response()
}

/// Echoes what arrived, so proxy tests can see the path, query, headers and body.
async fn echo(
    State(p): State<RefProvider>,
    method: axum::http::Method,
    uri: axum::http::Uri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let claims = match caller(&p, &headers) {
        Ok(c) => c,
        Err(r) => return *r,
    };
    let seen: serde_json::Map<String, Value> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                Value::String(v.to_str().unwrap_or("").to_string()),
            )
        })
        .collect();
    let mut response = axum::Json(json!({
        "method": method.as_str(),
        "path": uri.path(),
        "query": query,
        "headers": seen,
        "body": String::from_utf8_lossy(&body),
        "sub": claims["sub"],
    }))
    .into_response();
    // Headers a proxy must not pass through.
    response.headers_mut().insert(
        "connection",
        "x-provider-private"
            .parse()
            .unwrap_or(axum::http::HeaderValue::from_static("close")),
    );
    response.headers_mut().insert(
        "x-provider-private",
        axum::http::HeaderValue::from_static("1"),
    );
    response.headers_mut().insert(
        "x-provider-public",
        axum::http::HeaderValue::from_static("1"),
    );
    response
}

/// A running reference provider.
pub struct Running {
    pub addr: SocketAddr,
    pub url: String,
    pub provider: RefProvider,
    served: meshery_http::serve::Served,
}

impl Running {
    /// Stops accepting and lets open requests finish.
    pub async fn stop(self) {
        if let Err(e) = self.served.stop().await {
            tracing::warn!(error = %e, "the provider's server task failed");
        }
    }
}

pub async fn start(config: ProviderConfig, addr: SocketAddr) -> Result<Running, ProviderError> {
    let listen = |source| ProviderError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
    let tls = config.tls.as_ref().map(TlsIdentity::acceptor).transpose()?;
    let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    let public = config.public_url.clone().unwrap_or_else(|| url.clone());
    let provider = RefProvider::new(config, &public)?;
    // Handshakes run per connection (meshery_http::serve): a stalled client blocks nobody.
    let served = meshery_http::serve::spawn(
        listener,
        provider.router(),
        meshery_http::serve::ConnLimits::default(),
        tls,
    )
    .map_err(listen)?;
    Ok(Running {
        addr,
        url,
        provider,
        served,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_carry_roles() {
        let plain = Account::parse("alice:pw:Alice Liddell").unwrap();
        assert_eq!(plain.roles, ["user"]);
        assert_eq!(plain.email, "alice@example.com");
        let admin = Account::parse("root:pw:Root User::admin+user").unwrap();
        assert_eq!(admin.roles, ["admin", "user"]);
        assert_eq!(admin.email, "root@example.com");
        assert_eq!(admin.family_name, "User");
        let p = RefProvider::new(
            ProviderConfig {
                accounts: vec![admin.clone()],
                ..Default::default()
            },
            "http://p",
        )
        .unwrap();
        assert_eq!(p.claims_for(&admin)["roles"], json!(["admin", "user"]));
        assert!(Account::parse("nopassword").is_err());
    }
}
