//! `/api/extensions/*` against the reference provider: forwarding, header hygiene, refresh
//! on 401, limits, and path tricks that must never reach another host.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::auth::setup;

/// A listener that counts every connection it gets: the "other host".
async fn decoy() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    (addr, hits)
}

/// Sends a request line exactly as written (no client-side path normalisation).
async fn raw_status(addr: std::net::SocketAddr, path: &str, token: &str) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nmeshery-provider: Reference\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    std::str::from_utf8(&head[9..12]).unwrap().parse().unwrap()
}

#[tokio::test]
async fn requests_reach_the_provider_with_the_sessions_credentials() {
    let s = setup().await;
    let token = s.provider.provider.issue("alice").unwrap();
    let http = s.server.http();
    let hello = http
        .get(s.server.url("/api/extensions/api/hello"))
        .bearer_auth(&token)
        .header("meshery-provider", "Reference")
        .send()
        .await
        .unwrap();
    assert_eq!(hello.status(), 200);
    assert_eq!(hello.headers()["via"], "1.1 meshery");
    assert_eq!(
        hello.json::<Value>().await.unwrap(),
        json!({"message": "hello alice"})
    );

    // The token cookie is how the UI calls; the client's own credentials never pass.
    let cookie_token = meshery_token_cookie(&token);
    let echoed = http
        .post(s.server.url("/api/extensions/api/echo/a%20b/c?q=1&r=a%2Fb"))
        .header(
            "cookie",
            format!("meshery-provider=Reference; token={cookie_token}; other=secret"),
        )
        .header("x-custom", "kept")
        .header("x-hop", "dropped")
        .header("connection", "x-hop")
        .header("x-api-key", "client-made-up")
        .header("content-type", "text/plain")
        .body("payload")
        .send()
        .await
        .unwrap();
    assert_eq!(echoed.status(), 200);
    // Upstream hop-by-hop headers (named in its Connection header) are dropped too.
    assert!(echoed.headers().get("x-provider-private").is_none());
    assert_eq!(echoed.headers()["x-provider-public"], "1");
    let e: Value = echoed.json().await.unwrap();
    assert_eq!(e["method"], "POST");
    assert_eq!(e["path"], "/api/echo/a%20b/c");
    assert_eq!(e["query"], "q=1&r=a%2Fb");
    assert_eq!(e["body"], "payload");
    assert_eq!(e["sub"], "user-alice");
    let h = &e["headers"];
    assert_eq!(h["authorization"], format!("bearer {token}"));
    assert_eq!(h["x-api-key"], token);
    assert_eq!(h["systemid"], s.server.app.instance_id);
    assert_eq!(h["x-custom"], "kept");
    assert_eq!(h["content-type"], "text/plain");
    assert!(
        h.get("cookie").is_none(),
        "the client's cookies leaked: {h}"
    );
    assert!(h.get("x-hop").is_none());
    assert!(h.get("meshery-provider").is_none());

    // Without a session: 401; the Local provider has no extensions: 404.
    let anon = http
        .get(s.server.url("/api/extensions/api/hello"))
        .header("meshery-provider", "Reference")
        .send()
        .await
        .unwrap();
    assert_eq!(anon.status(), 401);
    let local = http
        .get(s.server.url("/api/extensions/api/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(local.status(), 404);
    s.server.finish().await;
    s.provider.stop().await;
}

fn meshery_token_cookie(token: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .encode(json!({"access_token": token, "token_type": "bearer"}).to_string())
}

#[tokio::test]
async fn path_tricks_never_reach_another_host() {
    let s = setup().await;
    let token = s.provider.provider.issue("alice").unwrap();
    let (decoy_addr, hits) = decoy().await;
    let refused = [
        "/api/extensions/../api/user".to_string(),
        "/api/extensions/api/../../keys".to_string(),
        "/api/extensions/%2e%2e/%2e%2e/x".to_string(),
        "/api/extensions/api%2fhello".to_string(),
        "/api/extensions/api%5c..%5cx".to_string(),
        "/api/extensions/api\\..\\x".to_string(),
        "/api/extensions//x".to_string(),
        format!("/api/extensions//{decoy_addr}/x"),
        "/api/extensions/api/%00".to_string(),
    ];
    for path in &refused {
        let status = raw_status(s.server.addr, path, &token).await;
        assert!(status == 400 || status == 404, "{path}: {status}");
    }
    // Authority-looking paths stay paths on the provider (which answers 404).
    for path in [
        format!("/api/extensions@{decoy_addr}/x"),
        format!("/api/extensions/@{decoy_addr}/x"),
        format!("/api/extensions/http:%2f%2f{decoy_addr}/x"),
        format!("/api/extensions/{decoy_addr}/x"),
    ] {
        let status = raw_status(s.server.addr, &path, &token).await;
        assert!(status == 404 || status == 400, "{path}: {status}");
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        0,
        "a request reached the other host"
    );
    s.server.finish().await;
    s.provider.stop().await;
}

#[tokio::test]
async fn a_401_upstream_is_refreshed_once_and_retried() {
    let s = setup().await;
    let p = &s.provider.provider;
    // A token that expires in 2 s: the server confirms it and caches it; once the
    // provider's clock has passed its expiry the provider refuses it, and the proxy
    // refreshes once and retries.
    let mut claims = p.claims_for(p.account("bob").unwrap());
    claims["exp"] = json!(chrono::Utc::now().timestamp() + 2);
    let short = p.sign(&claims).unwrap();
    let call = || {
        s.server
            .http()
            .get(s.server.url("/api/extensions/api/hello"))
            .bearer_auth(&short)
            .header("meshery-provider", "Reference")
            .send()
    };
    assert_eq!(call().await.unwrap().status(), 200);
    p.advance_clock(3);
    let r = call().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("token=")),
        "the refreshed token is handed to the client"
    );
    assert_eq!(r.json::<Value>().await.unwrap()["message"], "hello bob");
    s.server.finish().await;
    s.provider.stop().await;
}

#[tokio::test]
async fn bodies_are_bounded_and_a_dead_provider_is_a_502() {
    let s = setup().await;
    let token = s.provider.provider.issue("alice").unwrap();
    let big = s
        .server
        .http()
        .post(s.server.url("/api/extensions/api/echo"))
        .bearer_auth(&token)
        .header("meshery-provider", "Reference")
        .body(vec![b'x'; 2 << 20])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    // Confirm the session first (cached), then stop the provider.
    let hello = s.server.url("/api/extensions/api/hello");
    let ok = s
        .server
        .http()
        .get(&hello)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    s.provider.stop().await;
    let dead = s
        .server
        .http()
        .get(&hello)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(dead.status(), 502);
    let body: Value = dead.json().await.unwrap();
    assert_eq!(body["code"], "meshery-server-1009");
    s.server.finish().await;
}
