//! Remote providers end to end: the reference provider as a real server, the token
//! matrix, JWKS amplification, rotation, the browser login flow, GraphQL with the same
//! token, per-user data, logout.

use std::time::Duration;

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use meshery_provider::{self as refprovider, Account, ProviderConfig};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{TestServer, Ws, event_input, ws_next, ws_open, ws_send};

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub struct Setup {
    pub provider: refprovider::Running,
    pub server: TestServer,
}

pub async fn setup() -> Setup {
    setup_with_refetch(Duration::from_millis(300)).await
}

/// As [`setup`], with the server's JWKS refetch interval set.
async fn setup_with_refetch(refetch: Duration) -> Setup {
    setup_with(move |c| c.jwks_refetch_interval = refetch).await
}

/// As [`setup`], with more of the server's configuration set.
pub async fn setup_with(configure: impl FnOnce(&mut meshery::app::Config) + Send) -> Setup {
    let config = ProviderConfig {
        accounts: vec![
            Account::parse("alice:alice-pw:Alice Liddell").unwrap(),
            Account::parse("bob:bob-pw:Bob Builder").unwrap(),
            Account::parse("root:root-pw:Root Admin::admin").unwrap(),
        ],
        ..Default::default()
    };
    let provider = refprovider::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    let url = provider.url.clone();
    let server = TestServer::start_with(move |c| {
        c.provider_base_urls = vec![url.clone()];
        c.jwt_issuer = Some(url);
        c.jwt_audience = Some("meshery".into());
        c.jwks_refetch_interval = Duration::from_millis(300);
        configure(c);
    })
    .await;
    Setup { provider, server }
}

impl Setup {
    /// The generated client as a user of the reference provider (bearer token and
    /// provider header on every request).
    pub fn client_as(&self, user: &str) -> meshery_client::rest::Client {
        self.client_with(&self.token(user))
    }

    /// The generated client with this bearer token for the reference provider.
    pub fn client_with(&self, token: &str) -> meshery_client::rest::Client {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert("authorization", format!("Bearer {token}").parse().unwrap());
        h.insert("meshery-provider", "Reference".parse().unwrap());
        let http = crate::harness::client_builder()
            .default_headers(h)
            .build()
            .unwrap();
        meshery_client::rest::Client::new_with_client(&self.server.base, http)
    }

    pub async fn finish(self) {
        self.server.finish().await;
        self.provider.stop().await;
    }

    pub fn token(&self, user: &str) -> String {
        self.provider.provider.issue(user).unwrap()
    }

    /// GET /api/user with a bearer token and the provider header; the status.
    async fn user_status(&self, token: &str) -> u16 {
        self.server
            .http()
            .get(self.server.url("/api/user"))
            .bearer_auth(token)
            .header("meshery-provider", "Reference")
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }
}

fn claims_with(setup: &Setup, changes: Value) -> Value {
    let p = &setup.provider.provider;
    let mut claims = p.claims_for(p.account("alice").unwrap());
    for (k, v) in changes.as_object().unwrap() {
        claims[k] = v.clone();
    }
    claims
}

#[tokio::test]
async fn remote_provider_is_listed_with_its_capabilities() {
    let s = setup().await;
    let providers = s
        .server
        .client()
        .list_providers()
        .send()
        .await
        .unwrap()
        .into_inner();
    let remote = providers.get("Reference").expect("listed");
    assert_eq!(remote.provider_type, meshery::models::ProviderType::Remote);
    assert_eq!(remote.provider_url, s.provider.url);
    assert!(providers.contains_key("Local"));
    // The provider answers snake_case keys; the server serves camelCase.
    let caps = s
        .server
        .client()
        .get_provider_capabilities()
        .provider("reference")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(caps.provider_name, "Reference");
    assert!(
        caps.capabilities
            .iter()
            .any(|c| c.feature == "users-identity")
    );
    assert_eq!(caps.extensions.navigator.len(), 1);
    s.finish().await;
}

#[tokio::test]
async fn a_bearer_token_reaches_the_user_and_none_gets_401() {
    let s = setup().await;
    let token = s.token("alice");
    let user: meshery::models::User = s
        .server
        .http()
        .get(s.server.url("/api/user"))
        .bearer_auth(&token)
        .header("meshery-provider", "Reference")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user.user_id, "alice");
    assert_eq!(user.first_name, "Alice");
    assert_eq!(user.provider, "Reference");
    // With one remote provider, a bearer token alone selects it (MCP-style clients).
    let alone = s
        .server
        .http()
        .get(s.server.url("/api/user"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(alone.status(), 200);
    // auth.json for a remote provider carries its token.
    let auth: Value = s
        .server
        .http()
        .get(s.server.url("/api/token"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        auth,
        json!({"meshery-provider": "Reference", "token": token})
    );
    // No token for the remote provider: 401 with the MeshKit body and WWW-Authenticate.
    let none = s
        .server
        .http()
        .get(s.server.url("/api/user"))
        .header("meshery-provider", "Reference")
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 401);
    assert!(none.headers().contains_key("www-authenticate"));
    let body: Value = none.json().await.unwrap();
    assert_eq!(body["code"], "meshery-server-1002");
    s.finish().await;
}

#[tokio::test]
async fn the_token_matrix_is_rejected() {
    let s = setup().await;
    let p = &s.provider.provider;
    let now = chrono::Utc::now().timestamp();
    let valid = s.token("alice");
    assert_eq!(s.user_status(&valid).await, 200, "the valid token works");

    let parts: Vec<&str> = valid.split('.').collect();
    let kid = p.current_kid();
    // alg none: header says none, no signature.
    let none_header = B64.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    let alg_none = format!("{none_header}.{}.", parts[1]);
    // HS256 signed with the provider's public key as the HMAC secret.
    let jwks = p.jwks();
    let public_x = match &jwks.keys[0].algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(k) => B64.decode(&k.x).unwrap(),
        other => panic!("unexpected key {other:?}"),
    };
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs_header,
        &claims_with(&s, json!({})),
        &jsonwebtoken::EncodingKey::from_secret(&public_x),
    )
    .unwrap();
    // A payload changed after signing.
    let mut payload: Value = serde_json::from_slice(&B64.decode(parts[1]).unwrap()).unwrap();
    payload["sub"] = json!("user-bob");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        B64.encode(payload.to_string()),
        parts[2]
    );
    // Signed by a key the provider never published.
    let stranger =
        refprovider::RefProvider::new(ProviderConfig::default(), &s.provider.url).unwrap();
    let unknown_kid = stranger.sign(&claims_with(&s, json!({}))).unwrap();
    // Revoked at the provider before first use.
    let revoked = s.token("alice");
    assert!(p.revoke(&revoked));

    let cases: Vec<(&str, String)> = vec![
        ("garbage", "not-a-jwt".into()),
        ("alg none", alg_none),
        ("HS256 with the public key", hs256),
        (
            "expired",
            p.sign(&claims_with(
                &s,
                json!({"exp": now - 3600, "nbf": now - 7200}),
            ))
            .unwrap(),
        ),
        (
            "nbf in the future",
            p.sign(&claims_with(&s, json!({"nbf": now + 3600})))
                .unwrap(),
        ),
        (
            "wrong iss",
            p.sign(&claims_with(&s, json!({"iss": "http://evil.example"})))
                .unwrap(),
        ),
        (
            "wrong aud",
            p.sign(&claims_with(&s, json!({"aud": "someone-else"})))
                .unwrap(),
        ),
        ("no sub", {
            let mut c = claims_with(&s, json!({}));
            c.as_object_mut().unwrap().remove("sub");
            p.sign(&c).unwrap()
        }),
        ("unknown kid", unknown_kid),
        ("tampered payload", tampered),
        ("revoked", revoked),
    ];
    for (name, token) in cases {
        assert_eq!(s.user_status(&token).await, 401, "{name}");
    }
    s.finish().await;
}

#[tokio::test]
async fn random_unknown_kids_cannot_flood_the_provider() {
    let s = setup().await;
    assert_eq!(s.user_status(&s.token("alice")).await, 200);
    let before = s
        .provider
        .provider
        .key_fetches
        .load(std::sync::atomic::Ordering::Relaxed);
    let claims = B64.encode(claims_with(&s, json!({})).to_string());
    let started = std::time::Instant::now();
    for _ in 0..1000 {
        let header = B64
            .encode(json!({"alg": "EdDSA", "kid": uuid::Uuid::new_v4().to_string()}).to_string());
        let token = format!("{header}.{claims}.{}", B64.encode([7u8; 64]));
        assert_eq!(s.user_status(&token).await, 401);
    }
    let fetches = s
        .provider
        .provider
        .key_fetches
        .load(std::sync::atomic::Ordering::Relaxed)
        - before;
    // One fetch per refetch interval (300 ms) at most.
    let bound = 1 + started.elapsed().as_millis() as u64 / 300;
    assert!(
        fetches <= bound,
        "{fetches} JWKS fetches for 1000 bad tokens (bound {bound})"
    );
    assert!(fetches <= 10, "{fetches} JWKS fetches is not a handful");
    s.finish().await;
}

#[tokio::test]
async fn rotated_keys_are_picked_up() {
    // No refetch interval: an unknown kid refetches at once, so the test need not wait
    // out the interval (the amplification test above holds the interval itself).
    let s = setup_with_refetch(Duration::ZERO).await;
    let old = s.token("alice");
    assert_eq!(s.user_status(&old).await, 200);
    let new_kid = s.provider.provider.rotate().unwrap();
    let new = s.token("bob");
    let header: Value =
        serde_json::from_slice(&B64.decode(new.split('.').next().unwrap()).unwrap()).unwrap();
    assert_eq!(header["kid"], new_kid);
    assert_eq!(s.user_status(&new).await, 200);
    assert_eq!(
        s.user_status(&old).await,
        200,
        "the old key is still published"
    );
    s.finish().await;
}

/// The value of a `Set-Cookie` named `name` in a response.
fn set_cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

#[tokio::test]
async fn browser_flow_chooser_login_callback_cookie() {
    let s = setup().await;
    let http = s.server.http();
    let chooser = http
        .get(s.server.url("/provider"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(chooser.contains("/api/provider?provider=Reference"));
    let chosen = http
        .get(s.server.url("/api/provider?provider=Reference"))
        .send()
        .await
        .unwrap();
    let provider_cookie = set_cookie(&chosen, "meshery-provider").unwrap();
    assert_eq!(provider_cookie, "Reference");
    assert_eq!(chosen.headers()["location"], "/user/login");

    // /user/login sends the browser to the provider with a base64url callback.
    let login = http
        .get(s.server.url("/user/login?ref=/docs"))
        .header("cookie", "meshery-provider=Reference")
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let to = reqwest::Url::parse(login.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        to.as_str()
            .starts_with(&format!("{}/login?", s.provider.url))
    );
    let q: std::collections::HashMap<String, String> = to.query_pairs().into_owned().collect();
    let callback = String::from_utf8(B64.decode(&q["source"]).unwrap()).unwrap();
    assert_eq!(
        callback,
        format!("{}/api/user/token?provider=Reference", s.server.base)
    );
    assert_eq!(B64.decode(&q["ref"]).unwrap(), b"/docs");

    // The person signs in at the provider (a wrong password first).
    let submit = |password: &str| {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("username", "alice")
            .append_pair("password", password)
            .append_pair("source", &q["source"])
            .append_pair("ref", &q["ref"])
            .finish();
        http.post(format!("{}/login", s.provider.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    let wrong = submit("nope").await.unwrap();
    assert_eq!(wrong.status(), 401);
    let signed_in = submit("alice-pw").await.unwrap();
    assert_eq!(signed_in.status(), 303);
    let back = signed_in.headers()["location"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(back.starts_with(&callback), "{back}");

    // The callback verifies the token, sets the cookies and returns to ref.
    let done = http.get(&back).send().await.unwrap();
    assert_eq!(done.status(), 302);
    assert_eq!(done.headers()["location"], "/docs");
    let token_cookie = set_cookie(&done, "token").unwrap();
    assert!(set_cookie(&done, "session_cookie").is_some());
    let doc: Value = serde_json::from_slice(
        &base64::engine::general_purpose::STANDARD_NO_PAD
            .decode(&token_cookie)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(doc["token_type"], "bearer");
    let cookie = format!("meshery-provider=Reference; token={token_cookie}");
    let user: Value = http
        .get(s.server.url("/api/user"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["userId"], "alice");

    // A forged callback sets nothing; an off-site ref goes to /.
    let forged = http
        .get(
            s.server
                .url("/api/user/token?provider=Reference&token=forged.token.here"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);
    assert!(forged.headers().get("set-cookie").is_none());
    let good = s.token("alice");
    for evil in [
        "//evil.example/x",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let r = http
            .get(s.server.url(&format!(
                "/api/user/token?provider=Reference&token={good}&ref={}",
                B64.encode(evil)
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(r.headers()["location"], "/", "{evil}");
    }

    // A sign-out another site starts (a link, a redirect, an image) changes nothing.
    let csrf = http
        .get(s.server.url("/user/logout"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_eq!(csrf.status(), 403);
    assert!(csrf.headers().get("set-cookie").is_none());
    let still = http
        .get(s.server.url("/api/user"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(still.status(), 200);

    // Logout revokes at the provider: the same cookie no longer works.
    let out = http
        .get(s.server.url("/user/logout"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(out.headers()["location"], "/provider");
    assert_eq!(set_cookie(&out, "token").as_deref(), Some(""));
    let after = http
        .get(s.server.url("/api/user"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 401);
    s.finish().await;
}

#[tokio::test]
async fn graphql_queries_and_subscriptions_use_the_same_token() {
    let s = setup().await;
    let token = s.token("bob");
    let query = json!({"query": "{ user { userId provider } }"});
    let url = s.server.url("/api/system/graphql/query");
    let anon = s
        .server
        .http()
        .post(&url)
        .header("meshery-provider", "Reference")
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let authed: Value = s
        .server
        .http()
        .post(&url)
        .bearer_auth(&token)
        .json(&query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        authed["data"]["user"],
        json!({"userId": "bob", "provider": "Reference"})
    );

    // WebSocket: the token in connection_init (browsers cannot set headers).
    let ws_url = format!("ws://{}/api/system/graphql/query", s.server.addr);
    let connect = |payload: Value| {
        let ws_url = ws_url.clone();
        async move {
            let mut request = ws_url.into_client_request().unwrap();
            request.headers_mut().insert(
                "sec-websocket-protocol",
                "graphql-transport-ws".parse().unwrap(),
            );
            request
                .headers_mut()
                .insert("cookie", "meshery-provider=Reference".parse().unwrap());
            let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
            ws.send(Message::Text(
                json!({"type": "connection_init", "payload": payload})
                    .to_string()
                    .into(),
            ))
            .await
            .unwrap();
            ws
        }
    };
    let mut ws = connect(json!({"Authorization": format!("Bearer {token}")})).await;
    let ack = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
    let sub = json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { subscribeUserPrefs { anonymousUsageStats } }"}});
    ws.send(Message::Text(sub.to_string().into()))
        .await
        .unwrap();
    let first = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let first: Value = serde_json::from_str(first.to_text().unwrap()).unwrap();
    assert_eq!(first["type"], "next");
    assert_eq!(
        first["payload"]["data"]["subscribeUserPrefs"]["anonymousUsageStats"],
        true
    );

    // Without a valid token the server closes the connection instead of acking.
    let mut bad = connect(json!({"Authorization": "Bearer nope"})).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), bad.next())
        .await
        .unwrap();
    match answer {
        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {}
        Some(Ok(m)) => assert!(
            !m.to_text().unwrap_or("").contains("connection_ack"),
            "acked a bad token: {m:?}"
        ),
    }
    s.finish().await;
}

#[tokio::test]
async fn each_user_sees_only_their_own_prefs() {
    let s = setup().await;
    let http = s.server.http();
    let prefs = |token: Option<String>| {
        let http = http.clone();
        let url = s.server.url("/api/user/prefs");
        async move {
            let mut r = http.get(url);
            if let Some(t) = token {
                r = r.bearer_auth(t).header("meshery-provider", "Reference");
            }
            r.send().await.unwrap().json::<Value>().await.unwrap()
        }
    };
    let alice = s.token("alice");
    let bob = s.token("bob");
    let set = http
        .post(s.server.url("/api/user/prefs"))
        .bearer_auth(&alice)
        .header("meshery-provider", "Reference")
        .json(&json!({"anonymousUsageStats": false, "usersExtensionPreferences": {"secret": "alice"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(set.status(), 200);
    let set_body: Value = set.json().await.unwrap();
    assert_eq!(
        set_body["usersExtensionPreferences"]["secret"], "alice",
        "{set_body}"
    );
    let alices = prefs(Some(alice)).await;
    assert_eq!(
        alices["usersExtensionPreferences"]["secret"], "alice",
        "{alices}"
    );
    let bobs = prefs(Some(bob)).await;
    assert_eq!(bobs["anonymousUsageStats"], true);
    assert!(bobs["usersExtensionPreferences"].get("secret").is_none());
    // The Local user is someone else again, and still needs no token.
    let local = prefs(None).await;
    assert!(local["usersExtensionPreferences"].get("secret").is_none());
    s.finish().await;
}

#[tokio::test]
async fn a_remote_provider_over_https_with_the_operators_ca() {
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_pem = crate::harness::pem("CERTIFICATE", certified.cert.der());
    let config = ProviderConfig {
        accounts: vec![Account::parse("alice:alice-pw:Alice Liddell").unwrap()],
        tls: Some(refprovider::TlsIdentity {
            cert_chain_pem: cert_pem.clone(),
            key_pem: crate::harness::pem("PRIVATE KEY", &certified.signing_key.serialize_der()),
        }),
        ..Default::default()
    };
    let provider = refprovider::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    assert!(provider.url.starts_with("https://"), "{}", provider.url);
    let url = provider.url.clone();
    // Capabilities, JWKS and introspection all go over https, trusting the given CA.
    let server = TestServer::start_with(move |c| {
        c.provider_base_urls = vec![url.clone()];
        c.jwt_issuer = Some(url);
        c.extra_ca_pem = Some(cert_pem);
    })
    .await;
    let providers: Value = server
        .http()
        .get(server.url("/api/providers"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(providers["Reference"]["providerUrl"], provider.url.as_str());
    let token = provider.provider.issue("alice").unwrap();
    let user: Value = server
        .http()
        .get(server.url("/api/user"))
        .bearer_auth(&token)
        .header("meshery-provider", "Reference")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(user["userName"], "alice", "{user}");
    assert!(
        provider
            .provider
            .key_fetches
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1
    );
    server.finish().await;
    provider.stop().await;
}

#[tokio::test]
async fn a_public_url_names_the_provider_in_device_links_and_the_issuer() {
    let config = ProviderConfig {
        accounts: vec![Account::parse("alice:alice-pw").unwrap()],
        public_url: Some("https://id.example.com/meshery".into()),
        ..Default::default()
    };
    let provider = refprovider::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    // Bound locally, but every link a user follows on another device is the public one.
    assert!(
        provider.url.starts_with("http://127.0.0.1:"),
        "{}",
        provider.url
    );
    let grant: Value = crate::harness::client_builder()
        .build()
        .unwrap()
        .post(format!("{}/device/code", provider.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("client_id=mesheryctl")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = grant["user_code"].as_str().unwrap();
    assert_eq!(
        grant["verification_uri"],
        "https://id.example.com/meshery/device"
    );
    assert_eq!(
        grant["verification_uri_complete"],
        format!("https://id.example.com/meshery/device?user_code={code}").as_str()
    );
    let token = provider.provider.issue("alice").unwrap();
    let payload: Value =
        serde_json::from_slice(&B64.decode(token.split('.').nth(1).unwrap()).unwrap()).unwrap();
    assert_eq!(payload["iss"], "https://id.example.com/meshery");
    provider.stop().await;
}

/// Subscribers with the same subscription share its execution; users never share one.
#[tokio::test]
async fn identical_subscriptions_of_two_users_each_get_only_their_own_events() {
    let s = setup().await;
    let open = |user: &str| {
        let headers = [
            ("authorization", format!("Bearer {}", s.token(user))),
            ("meshery-provider", "Reference".to_string()),
        ];
        async move {
            let (mut ws, _) = ws_open(s.server.addr, "graphql-transport-ws", &headers).await;
            ws_send(&mut ws, json!({"type": "connection_init"})).await;
            assert_eq!(ws_next(&mut ws).await["type"], "connection_ack");
            let query = "subscription { subscribeEvents { description } }";
            ws_send(
                &mut ws,
                json!({"id": "1", "type": "subscribe", "payload": {"query": query}}),
            )
            .await;
            ws
        }
    };
    let mut alice = vec![
        open("alice").await,
        open("alice").await,
        open("alice").await,
    ];
    let mut bob = open("bob").await;
    let post = |user: &str, text: String| {
        let client = s.client_as(user);
        async move {
            client
                .create_event()
                .body(event_input(&text))
                .send()
                .await
                .unwrap();
        }
    };
    // The next description a socket receives within `wait`.
    async fn next_description(ws: &mut Ws, wait: Duration) -> Option<String> {
        loop {
            match tokio::time::timeout(wait, ws.next()).await {
                Err(_) => return None,
                Ok(Some(Ok(Message::Text(t)))) => {
                    let m: Value = serde_json::from_str(&t).unwrap();
                    assert_eq!(m["type"], "next", "{m}");
                    let d = &m["payload"]["data"]["subscribeEvents"]["description"];
                    return Some(d.as_str().unwrap().to_string());
                }
                Ok(Some(Ok(_))) => continue,
                Ok(other) => panic!("socket ended: {other:?}"),
            }
        }
    }
    // Subscriptions are live once the server has read them: post until each socket has
    // seen one of its user's warm-up events.
    let mut warm = 0;
    let mut ready = [false; 4];
    while ready.iter().any(|r| !r) {
        assert!(warm < 50, "subscriptions not live: {ready:?}");
        warm += 1;
        post("alice", format!("warm-alice-{warm}")).await;
        post("bob", format!("warm-bob-{warm}")).await;
        for (i, ws) in alice
            .iter_mut()
            .chain(std::iter::once(&mut bob))
            .enumerate()
        {
            while let Some(d) = next_description(ws, Duration::from_millis(100)).await {
                let mine = if i < 3 { "warm-alice-" } else { "warm-bob-" };
                assert!(d.starts_with(mine), "socket {i} got {d}");
                ready[i] = true;
            }
        }
    }
    post("alice", "for alice".into()).await;
    post("bob", "for bob".into()).await;
    for ws in alice.iter_mut() {
        assert_eq!(
            next_description(ws, Duration::from_secs(5))
                .await
                .as_deref(),
            Some("for alice")
        );
    }
    assert_eq!(
        next_description(&mut bob, Duration::from_secs(5))
            .await
            .as_deref(),
        Some("for bob")
    );
    // Two of alice's sockets leave; the third still gets her events.
    alice.truncate(1);
    post("alice", "still there".into()).await;
    assert_eq!(
        next_description(&mut alice[0], Duration::from_secs(5))
            .await
            .as_deref(),
        Some("still there")
    );
    s.finish().await;
}
