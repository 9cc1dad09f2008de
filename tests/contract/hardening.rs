//! Hardening: outbound connections go only where the target policy looked, and the
//! server's limits hold while other clients keep being served.

use crate::kubernetes::Stored;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use meshery::models::PatternImport;
use meshery::policy::{Lookup, Resolver};

use crate::harness::TestServer;

/// Answers `first` the first time and `then` every later time: a rebinding name.
struct Rebinding {
    first: SocketAddr,
    then: SocketAddr,
    asked: AtomicUsize,
}

impl Resolver for Rebinding {
    fn lookup(&self, _name: &str, port: u16) -> Lookup {
        let n = self.asked.fetch_add(1, Ordering::SeqCst);
        let ip = if n == 0 {
            self.first.ip()
        } else {
            self.then.ip()
        };
        Box::pin(std::future::ready(Ok(vec![SocketAddr::new(ip, port)])))
    }
}

/// A server at `ip:port` (port 0 picks one) answering every path with `body`; counts hits.
async fn counting_server(
    ip: &str,
    port: u16,
    body: &'static str,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move |uri: axum::http::Uri| {
        let counted = counted.clone();
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            if uri.path() == "/version" {
                axum::Json(serde_json::json!({"major": "1", "minor": "31", "gitVersion": body, "platform": "linux/amd64"}))
                    .into_response()
            } else {
                body.into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind((ip, port)).await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (addr, hits)
}

use axum::response::IntoResponse;

const GOOD: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: checked\ndata:\n  a: b\n";
const EVIL: &str = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rebound\ndata:\n  a: b\n";

#[tokio::test]
async fn every_outbound_connection_goes_to_the_checked_address() {
    // The name first points at the checked server, then at another one on the same port.
    let (checked, good_hits) = counting_server("127.0.0.1", 0, GOOD).await;
    let (other, evil_hits) = counting_server("127.0.0.2", checked.port(), EVIL).await;
    let fresh_resolver = || {
        Arc::new(Rebinding {
            first: checked,
            then: other,
            asked: AtomicUsize::new(0),
        })
    };
    let url = |path: &str| format!("http://rebind.test:{}{path}", checked.port());

    // Design import by URL: the port in the URL used to defeat the pinning.
    let resolver = fresh_resolver();
    let r = resolver.clone();
    let server = TestServer::start_with(move |c| c.targets.resolver = r).await;
    let design = server
        .client()
        .import_pattern()
        .body(PatternImport {
            file: None,
            file_name: None,
            url: Some(url("/app.yaml").parse().unwrap()),
            name: None,
        })
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0);
    assert!(
        design.pattern_file.contains("name: checked"),
        "{}",
        design.pattern_file
    );
    assert_eq!(
        resolver.asked.load(Ordering::SeqCst),
        1,
        "the name was resolved again"
    );
    server.finish().await;

    // Load test.
    let resolver = fresh_resolver();
    let r = resolver.clone();
    let server = TestServer::start_with(move |c| c.targets.resolver = r).await;
    let (result, _) = run_to_end(&server, url("/ok"), "1s", 20.0, 1).await;
    assert!(!result.runner_results.ret_codes.is_empty());
    assert_eq!(resolver.asked.load(Ordering::SeqCst), 1);
    server.finish().await;

    // Cluster ping (the inventory off: it would resolve the name for a client of its own).
    let resolver = fresh_resolver();
    let r = resolver.clone();
    let server = TestServer::start_with(move |c| {
        c.targets.resolver = r;
        c.inventory.enabled = false;
    })
    .await;
    let kubeconfig = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters:\n  - name: k\n    cluster:\n      server: {}\nusers:\n  - name: u\n    user:\n      token: t\ncontexts:\n  - name: c\n    context: {{cluster: k, user: u}}\n",
        url("")
    );
    let stored = server
        .client()
        .upload_kubeconfig()
        .body(kubeconfig)
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts();
    let ping = server
        .client()
        .ping_k8s_context()
        .context_id(stored[0].id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ping.server_version.git_version, GOOD);
    assert_eq!(resolver.asked.load(Ordering::SeqCst), 1);
    server.finish().await;

    assert!(good_hits.load(Ordering::SeqCst) >= 3);
    assert_eq!(
        evil_hits.load(Ordering::SeqCst),
        0,
        "a connection went to the rebound address"
    );
}

/// Every `Set-Cookie` of a response, whole.
fn cookies(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn cookies_are_secure_when_browsers_reach_the_server_over_https() {
    use meshery_provider::{self as refprovider, Account, ProviderConfig};
    let provider = refprovider::start(
        ProviderConfig {
            accounts: vec![Account::parse("alice:alice-pw").unwrap()],
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    for public_url in [None, Some("https://meshery.example.com")] {
        let url = provider.url.clone();
        let server = TestServer::start_with(move |c| {
            c.provider_base_urls = vec![url];
            c.public_url = public_url.map(str::to_string);
        })
        .await;
        let http = server.http();
        let token = provider.provider.issue("alice").unwrap();
        let chosen = http
            .get(server.url("/api/provider?provider=Reference"))
            .send()
            .await
            .unwrap();
        let login = http
            .get(server.url(&format!(
                "/api/user/token?provider=Reference&token={token}&session_cookie=s1"
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(login.status(), 302);
        let logout = http
            .get(server.url("/user/logout"))
            .header(
                "cookie",
                format!("meshery-provider=Reference; token={token}"),
            )
            .send()
            .await
            .unwrap();
        let all: Vec<String> = [cookies(&chosen), cookies(&login), cookies(&logout)].concat();
        // provider choice, token + provider + session at login, three cleared at logout
        assert_eq!(all.len(), 7, "{all:?}");
        for cookie in &all {
            assert!(cookie.contains("HttpOnly"), "{cookie}");
            assert_eq!(
                cookie.contains("; Secure"),
                public_url.is_some(),
                "{cookie}"
            );
        }
        server.finish().await;
    }
    provider.stop().await;
}

#[test]
fn an_invalid_allowed_network_stops_the_server_from_starting() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_meshery-server"))
        .args(["--port", "0", "--perf-allow", "10.0.0.0/8,169.254.0.0/33"])
        .env(
            "MESHERY_HOME",
            std::env::temp_dir().join("meshery-never-started"),
        )
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("169.254.0.0/33"), "{stderr}");
}

/// Runs a load test through the generated client to its last frame; the result and the
/// time the stream took.
async fn run_to_end(
    server: &TestServer,
    url: String,
    t: &str,
    qps: f64,
    c: i64,
) -> (meshery::models::PerfResult, std::time::Duration) {
    let started = std::time::Instant::now();
    let response = server
        .client()
        .run_perf_test()
        .c(c)
        .qps(qps)
        .t(t)
        .url(url)
        .send()
        .await
        .unwrap();
    let frames: Vec<meshery::models::PerfFrame> = futures_util::StreamExt::collect::<Vec<_>>(
        meshery_client::sse::json_frames(response.into_inner_stream()),
    )
    .await
    .into_iter()
    .map(|f| f.expect("a perf frame"))
    .collect();
    let took = started.elapsed();
    let last = frames.into_iter().next_back().expect("frames");
    (last.result.expect("a result"), took)
}

#[tokio::test]
async fn a_fixed_rate_run_ends_at_its_duration_against_a_slow_or_stalled_target() {
    use std::time::Duration;
    // Slow: each connection gets an answer every 44 ms, about 90 requests/s over four.
    let slow = axum::Router::new().fallback(|| async {
        tokio::time::sleep(Duration::from_millis(44)).await;
        "slow"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, slow).await.unwrap() });
    // Stalled: reads requests and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stalled_url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });

    let server = TestServer::start().await;
    let (result, took) = run_to_end(&server, slow_url, "3s", 200.0, 4).await;
    let rr = &result.runner_results;
    eprintln!(
        "slow target: 3 s run took {took:?}, {:.1} qps, unsent {:?}, late {:?}",
        rr.actual_qps, rr.unsent, rr.sent_late
    );
    assert!(took <= Duration::from_secs(4), "a 3 s run took {took:?}");
    assert!(
        rr.actual_qps < 120.0 && rr.actual_qps > 50.0,
        "actual qps {}",
        rr.actual_qps
    );
    let unsent = rr.unsent.unwrap();
    let sent: i64 = rr.ret_codes.values().sum();
    // 600 were due; what was not answered in time was not sent, and says so.
    assert!(sent < 400 && unsent > 200, "sent {sent}, unsent {unsent}");
    assert!((590..=610).contains(&(sent + unsent + rr.errors_by_kind.values().sum::<i64>())));
    assert!(rr.sent_late.unwrap() > 0);

    let (result, took) = run_to_end(&server, stalled_url, "3s", 200.0, 4).await;
    let rr = &result.runner_results;
    eprintln!(
        "stalled target: 3 s run took {took:?}, errors {:?}",
        rr.errors_by_kind
    );
    assert!(
        took <= Duration::from_secs(4),
        "a 3 s run against a stalled target took {took:?}"
    );
    assert!(rr.ret_codes.is_empty());
    assert_eq!(
        rr.errors_by_kind.get(meshery::perf::loadgen::UNANSWERED),
        Some(&4)
    );
    assert!(rr.unsent.unwrap() >= 590);
    server.finish().await;
}

#[tokio::test]
async fn unavailable_providers_are_retried_together_and_start_up_fails_without_a_last_wait() {
    use std::time::{Duration, Instant};
    // Two providers that answer 503 to everything; each remembers when it was asked.
    let mut urls = Vec::new();
    let mut asked = Vec::new();
    for _ in 0..2 {
        let times = Arc::new(std::sync::Mutex::new(Vec::<Instant>::new()));
        let record = times.clone();
        let app = axum::Router::new().fallback(move || {
            let record = record.clone();
            async move {
                record.lock().unwrap().push(Instant::now());
                axum::http::StatusCode::SERVICE_UNAVAILABLE
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        urls.push(format!("http://{}", listener.local_addr().unwrap()));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        asked.push(times);
    }
    let home = tempfile::tempdir().unwrap();
    let mut config = meshery::server::Config::new(home.path().to_path_buf());
    config.provider_base_urls = urls;
    crate::harness::use_test_database(&mut config).await;
    config.provider_retry = meshery::remote::Retry {
        attempts: 4,
        first_delay: Duration::from_millis(100),
    };
    let started = Instant::now();
    let failed = meshery::server::App::new(config)
        .await
        .err()
        .expect("start-up fails");
    let took = started.elapsed();
    assert!(
        matches!(
            &failed,
            meshery::server::StartError::Providers(meshery::providers::ProvidersError::Remote(
                meshery::remote::RemoteError::NoCapabilities { .. }
            ))
        ),
        "{failed:?}"
    );
    assert!(
        failed
            .to_string()
            .contains("did not answer its capabilities"),
        "{failed}"
    );
    let (a, b) = (asked[0].lock().unwrap(), asked[1].lock().unwrap());
    assert_eq!((a.len(), b.len()), (4, 4));
    // Both providers at once: each try reaches both before the next try reaches either.
    for i in 0..3 {
        assert!(
            a[i].max(b[i]) < a[i + 1].min(b[i + 1]),
            "try {i} was not made to both providers together"
        );
    }
    // Waits of 100, 200, 400 ms between the four tries (a sleep never ends early) ...
    for (i, wait) in [100, 200, 400].into_iter().enumerate() {
        let gap = a[i + 1] - a[i];
        assert!(gap >= Duration::from_millis(wait), "wait {i} was {gap:?}");
    }
    // ... and none after the last: start-up fails before the next wait (800 ms) would end.
    let after_last = started + took - *a.last().unwrap();
    assert!(
        after_last < Duration::from_millis(800),
        "waited {after_last:?} after the last try"
    );
}

/// Reads from a raw connection until it closes, for at most `limit`; whether it closed.
async fn closes_within(stream: &mut tokio::net::TcpStream, limit: std::time::Duration) -> bool {
    use tokio::io::AsyncReadExt;
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

#[tokio::test]
async fn slow_headers_are_cut_off_while_other_clients_are_served() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start_with(|c| {
        c.conn.header_timeout = Duration::from_secs(1);
    })
    .await;
    // 500 clients send half a request and stall.
    let started = Instant::now();
    let mut stalled = Vec::new();
    for _ in 0..500 {
        let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"GET /api/system/version HTTP/1.1\r\nhost: x\r\nx-slow: ")
            .await
            .unwrap();
        stalled.push(s);
    }
    // Another client is answered at once.
    let asked = Instant::now();
    let answer = server.client().get_system_version().send().await.unwrap();
    assert!(!answer.build.is_empty());
    let answered = asked.elapsed();
    assert!(
        answered < Duration::from_secs(1),
        "answered in {answered:?}"
    );
    // Every stalled connection is closed once its head is late.
    for s in &mut stalled {
        assert!(
            closes_within(s, Duration::from_secs(3)).await,
            "a slow client was kept"
        );
    }
    let refused = started.elapsed();
    eprintln!(
        "500 slow-header clients: another answered in {answered:?}, all closed after {refused:?}"
    );
    assert!(refused < Duration::from_secs(4));
    server.finish().await;
}

#[tokio::test]
async fn connections_are_capped_and_idle_ones_closed() {
    use std::time::Duration;
    let server = TestServer::start_with(|c| {
        c.conn.max_connections = 20;
        c.conn.idle_timeout = Duration::from_millis(800);
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..20 {
        let s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        open.push(s);
    }
    server.until_open_connections(20).await;
    // The 21st waits: the server takes no more connections.
    let mut extra = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    {
        use tokio::io::AsyncWriteExt;
        extra
            .write_all(b"GET /api/system/version HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
    }
    let mut head = [0u8; 15];
    let early = tokio::time::timeout(
        Duration::from_millis(400),
        tokio::io::AsyncReadExt::read_exact(&mut extra, &mut head),
    )
    .await;
    assert!(early.is_err(), "a connection past the cap was served");
    // A slot frees when one connection closes; then the waiting one is served.
    drop(open.pop());
    tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_exact(&mut extra, &mut head),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(&head, b"HTTP/1.1 200 OK");
    // Idle connections, and idle keep-alive after an answer, are closed.
    let mut kept = tokio::net::TcpStream::connect(server.addr).await;
    if let Ok(s) = &mut kept {
        assert!(
            closes_within(s, Duration::from_secs(3)).await,
            "an idle connection was kept"
        );
    }
    for s in &mut open {
        assert!(closes_within(s, Duration::from_secs(3)).await);
    }
    server.finish().await;
}

#[tokio::test]
async fn a_quiet_stream_outlives_the_head_and_idle_timeouts() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = TestServer::start_with(|c| {
        c.conn.header_timeout = Duration::from_millis(400);
        c.conn.idle_timeout = Duration::from_millis(400);
    })
    .await;
    let mut s = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    s.write_all(
        b"GET /api/system/events/subscribe HTTP/1.1\r\nhost: x\r\naccept: text/event-stream\r\n\r\n",
    )
    .await
    .unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let has = |seen: &[u8], what: &[u8]| seen.windows(what.len()).any(|w| w == what);
    while !has(&seen, b"\r\n\r\n") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap();
        assert!(n > 0, "the stream closed before its head");
        seen.extend_from_slice(&buf[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"));
    // Quiet for several times either timeout: an open stream is a request in flight,
    // neither a late head nor an idle connection.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let input: meshery::models::EventInput = serde_json::from_value(serde_json::json!({
        "category": "test", "action": "quiet", "severity": "informational",
        "description": "after-the-quiet"
    }))
    .unwrap();
    server
        .client()
        .create_event()
        .body(input)
        .send()
        .await
        .unwrap();
    while !has(&seen, b"after-the-quiet") {
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("the event within 5 s")
            .unwrap();
        assert!(n > 0, "the quiet stream was closed");
        seen.extend_from_slice(&buf[..n]);
    }
    server.finish().await;
}

#[tokio::test]
async fn graphql_complexity_aliases_batches_and_subscriptions_are_limited() {
    use futures_util::{SinkExt, StreamExt};
    use serde_json::{Value, json};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let server = TestServer::start_with(|c| {
        c.graphql.max_complexity = 6;
        c.graphql.max_aliases = 2;
        c.graphql.max_subscriptions_per_user = 2;
    })
    .await;
    let post = |body: Value| {
        server
            .http()
            .post(server.url("/api/system/graphql/query"))
            .json(&body)
            .send()
    };
    let errors = |v: &Value| v["errors"][0]["message"].as_str().unwrap_or("").to_string();
    // Twice each: the second time the document comes from the parsed-document cache, and
    // every limit still holds.
    for round in 0..2 {
        let ok: Value = post(json!({"query": "{ version { build latest } }"}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ok["errors"], Value::Null, "round {round}: {ok}");
        assert!(
            ok["data"]["version"]["build"].is_string(),
            "round {round}: {ok}"
        );
        let complex: Value = post(json!({"query": "{ version { build latest outdated commitsha releaseChannel } user { id userId } }"}))
            .await.unwrap().json().await.unwrap();
        assert!(
            errors(&complex).contains("complex"),
            "round {round}: {complex}"
        );
        let aliased: Value = post(
            json!({"query": "{ a: version { build } b: version { build } c: version { build } }"}),
        )
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        assert!(
            errors(&aliased).contains("aliases"),
            "round {round}: {aliased}"
        );
    }
    let batch =
        post(json!([{"query": "{ version { build } }"}, {"query": "{ version { build } }"}]))
            .await
            .unwrap();
    assert_eq!(batch.status(), 400, "batches are not taken");

    // Subscriptions: two open at once per user; a third is refused, others keep working.
    let url = format!("ws://{}/api/system/graphql/query", server.addr);
    let mut request = url.into_client_request().unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "connection_init", "payload": {}})))
        .await
        .unwrap();
    let subscription = json!({"query": "subscription { subscribeEvents { id } }"});
    let ack = loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .unwrap();
        if let Some(Ok(Message::Text(t))) = m {
            break serde_json::from_str::<Value>(&t).unwrap();
        }
    };
    assert_eq!(ack["type"], "connection_ack");
    for id in ["1", "2", "3"] {
        ws.send(send(
            json!({"id": id, "type": "subscribe", "payload": subscription}),
        ))
        .await
        .unwrap();
    }
    let refused = loop {
        let m = tokio::time::timeout(std::time::Duration::from_secs(5), ws.next())
            .await
            .unwrap();
        if let Some(Ok(Message::Text(t))) = m {
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "next" || v["type"] == "error" {
                break v;
            }
        }
    };
    assert_eq!(refused["id"], "3", "{refused}");
    assert!(
        refused.to_string().contains("subscriptions open"),
        "{refused}"
    );
    // Meanwhile the server answers other requests.
    assert!(
        !server
            .client()
            .get_system_version()
            .send()
            .await
            .unwrap()
            .build
            .is_empty()
    );
    let _ = ws.close(None).await;
    server.finish().await;
}

#[tokio::test]
async fn concurrent_load_tests_are_capped_server_wide() {
    let server = TestServer::start_with(|c| c.perf.max_runs_total = 1).await;
    let (target, _) = counting_server("127.0.0.1", 0, "ok").await;
    let url = format!("http://{target}/");
    let first = server
        .client()
        .run_perf_test()
        .c(1)
        .qps(10.0)
        .t("30s")
        .url(url.clone())
        .send()
        .await
        .unwrap();
    let second = server
        .client()
        .run_perf_test()
        .c(1)
        .qps(10.0)
        .t("1s")
        .url(url)
        .send()
        .await;
    match second {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => {
            assert_eq!(e.status(), 429);
            assert!(e.error.contains("on this server"), "{}", e.error);
        }
        Err(other) => panic!("{other:?}"),
        Ok(_) => panic!("a second run started past the server-wide limit"),
    }
    drop(first);
    server.finish().await;
}

#[tokio::test]
async fn the_reference_provider_guards_rotation_handshakes_per_connection_and_forgets() {
    use meshery_provider::{self as refprovider, Account, ProviderConfig, TlsIdentity};
    use std::time::{Duration, Instant};
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_pem = crate::harness::pem("CERTIFICATE", certified.cert.der());
    let provider = refprovider::start(
        ProviderConfig {
            accounts: vec![Account::parse("alice:alice-pw").unwrap()],
            tls: Some(TlsIdentity {
                cert_chain_pem: cert_pem.clone(),
                key_pem: crate::harness::pem("PRIVATE KEY", &certified.signing_key.serialize_der()),
            }),
            admin_token: Some("the-admin-token".into()),
            token_ttl: Duration::from_secs(1),
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    meshery::tls::install_crypto();
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(meshery::tls::outbound_config(Some(&cert_pem)).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Clients that connect and never start their handshake hold up nobody.
    let mut stalled = Vec::new();
    for _ in 0..3 {
        stalled.push(tokio::net::TcpStream::connect(provider.addr).await.unwrap());
    }
    let asked = Instant::now();
    let keys = http
        .get(format!("{}/keys", provider.url))
        .send()
        .await
        .unwrap();
    assert_eq!(keys.status(), 200);
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "waited {:?}",
        asked.elapsed()
    );

    // Rotation takes the admin credential, and only that.
    let rotate = |token: Option<&str>| {
        let mut r = http.post(format!("{}/keys/rotate", provider.url));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send()
    };
    let kid = provider.provider.current_kid();
    assert_eq!(rotate(None).await.unwrap().status(), 401);
    assert_eq!(rotate(Some("guess")).await.unwrap().status(), 401);
    let user_token = provider.provider.issue("alice").unwrap();
    assert_eq!(rotate(Some(&user_token)).await.unwrap().status(), 401);
    assert_eq!(provider.provider.current_kid(), kid);
    assert_eq!(rotate(Some("the-admin-token")).await.unwrap().status(), 200);
    assert_ne!(provider.provider.current_kid(), kid);

    // Revocations and sessions are forgotten once they cannot matter (ttl 1 s + 1 s grace).
    let login = || {
        let body = form_urlencoded::Serializer::new(String::new())
            .append_pair("username", "alice")
            .append_pair("password", "alice-pw")
            .append_pair("source", "aHR0cDovLzEyNy4wLjAuMTo5L2Ni")
            .append_pair("ref", "")
            .finish();
        http.post(format!("{}/login", provider.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
    };
    assert!(provider.provider.revoke(&user_token));
    assert_eq!(login().await.unwrap().status(), 303);
    assert_eq!(provider.provider.held(), (1, 1));
    provider.provider.advance_clock(3);
    let fresh = provider.provider.issue("alice").unwrap();
    assert!(provider.provider.revoke(&fresh));
    assert_eq!(login().await.unwrap().status(), 303);
    assert_eq!(
        provider.provider.held(),
        (1, 1),
        "expired entries were kept"
    );
    // The forgotten revocation does not come back to life: the token is past refreshing.
    let refreshed = http
        .post(format!("{}/refresh", provider.url))
        .json(&serde_json::json!({"token": user_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 401);
    drop(stalled);
    provider.stop().await;
}

#[tokio::test]
async fn parameters_are_held_to_their_schema_and_the_server_takes_what_it_declares() {
    let server = TestServer::start().await;
    let get = |path: &str| server.http().get(server.url(path)).send();
    let body = |r: reqwest::Response| async move { (r.status().as_u16(), r.text().await.unwrap()) };
    // Declared patterns are enforced by the router, with the parameter named.
    for path in [
        "/api/pattern?pagesize=010",
        "/api/pattern?pageSize=10001",
        "/api/pattern?order=name%20asc%20extra",
        "/api/pattern?order=colour",
        "/api/registry/categories?sort=kind",
        "/api/perf/profile?url=ftp://x/&t=1s",
        "/api/perf/profile?url=http://127.0.0.1:9/&loadGenerator=ab",
    ] {
        let (status, text) = body(get(path).await.unwrap()).await;
        assert_eq!(status, 400, "{path}: {text}");
        assert!(text.contains("must"), "{path}: {text}");
    }
    // What the patterns allow, the server takes.
    for path in [
        "/api/pattern?pagesize=ALL&order=%20Name%20DESC%20",
        "/api/pattern?pageSize=&order=",
        "/api/registry/categories?sort=Count",
        "/api/registry/components?sort=apiVersion",
        "/api/system/graphql/query?query=%7Bversion%7Bbuild%7D%7D&variables=&extensions=",
    ] {
        let (status, text) = body(get(path).await.unwrap()).await;
        assert_eq!(status, 200, "{path}: {text}");
    }
    // Bodies are held to their schema before they are typed: an explicit null where the
    // schema has no `nullable` is refused, with the place named.
    use base64::Engine;
    let file = base64::engine::general_purpose::STANDARD.encode(GOOD);
    let imported = server
        .http()
        .post(server.url("/api/pattern/import"))
        .json(&serde_json::json!({"file": file, "name": null}))
        .send()
        .await
        .unwrap();
    let (status, text) = body(imported).await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("/name"), "{text}");
    let imported = server
        .http()
        .post(server.url("/api/pattern/import"))
        .json(&serde_json::json!({"file": file, "name": "named"}))
        .send()
        .await
        .unwrap();
    assert_eq!(imported.status(), 200);
    // Explicit nulls where the schema says nullable mean "absent".
    let prefs = server
        .http()
        .post(server.url("/api/user/prefs"))
        .json(&serde_json::json!({"anonymousPerfResults": null, "anonymousUsageStats": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(prefs.status(), 200);
    server.finish().await;
}
