//! Hardening: outbound connections go only where the target policy looked, and the
//! server's limits hold while other clients keep being served.

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
        .into_inner();
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
    let response = server
        .client()
        .run_perf_test()
        .c(1)
        .qps(20.0)
        .t("1s")
        .url(url("/ok"))
        .send()
        .await
        .unwrap();
    let mut stream = response.into_inner_stream();
    let mut text = String::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert!(text.contains("\"success\""), "{text}");
    assert_eq!(resolver.asked.load(Ordering::SeqCst), 1);
    server.finish().await;

    // Cluster ping.
    let resolver = fresh_resolver();
    let r = resolver.clone();
    let server = TestServer::start_with(move |c| c.targets.resolver = r).await;
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
        .into_inner();
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
    use meshery::refprovider::{self, Account, ProviderConfig};
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
    let mut stream = response.into_inner_stream();
    let mut text = String::new();
    while let Some(chunk) = futures_util::StreamExt::next(&mut stream).await {
        text.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    let took = started.elapsed();
    let last = text
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .next_back()
        .expect("frames");
    let frame: meshery::models::PerfFrame = serde_json::from_str(last.trim()).unwrap();
    (frame.result.expect("a result"), took)
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
