//! Load tests through the generated client against a small target on port 0.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use meshery::models::{PerfFrame, PerfFrameStatus, PerfResult, PerfResultStatus};
use serde_json::{Value, json};

use crate::harness::TestServer;

/// A target: `/ok` answers at once; `/stall` stalls 200 ms once, on its 50th request.
pub async fn target() -> (String, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let stall_hits = hits.clone();
    let app = axum::Router::new()
        .route("/ok", axum::routing::get(|| async { "ok" }))
        .route(
            "/stall",
            axum::routing::get(move || {
                let hits = stall_hits.clone();
                async move {
                    if hits.fetch_add(1, Ordering::SeqCst) == 49 {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    "ok"
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, hits)
}

/// Reads SSE frames until the stream ends; each with the time it arrived.
pub async fn frames(
    stream: impl futures_util::Stream<Item = Result<bytes::Bytes, reqwest::Error>> + Unpin,
) -> Vec<(Instant, PerfFrame)> {
    let mut frames = Box::pin(meshery_client::sse::json_frames::<PerfFrame, _, _, _>(
        stream,
    ));
    let mut out = Vec::new();
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(60), frames.next())
        .await
        .expect("frames stalled")
    {
        out.push((Instant::now(), frame.expect("a perf frame")));
    }
    out
}

fn percentiles(r: &PerfResult) -> Vec<f64> {
    r.runner_results
        .duration_histogram
        .percentiles
        .iter()
        .map(|p| p.value)
        .collect()
}

#[tokio::test]
async fn a_fixed_rate_test_keeps_its_rate_streams_progress_and_is_stored() {
    let server = TestServer::start().await;
    let (base, _) = target().await;
    let client = server.client();
    let url = format!("{base}/ok");
    let started = Instant::now();
    let response = client
        .run_perf_test()
        .c(4)
        .load_generator("fortio")
        .name("steady")
        .qps(200.0)
        .t("2s")
        .url(url.clone())
        .send()
        .await
        .unwrap();
    let frames = frames(response.into_inner_stream()).await;
    let (last_at, last) = frames.last().unwrap().clone();
    assert_eq!(last.status, PerfFrameStatus::Success, "{:?}", last.message);
    // Progress arrived while the test ran, not only at the end.
    let progress: Vec<_> = frames
        .iter()
        .filter(|(_, f)| f.message.contains("requests"))
        .collect();
    assert!(!progress.is_empty(), "no progress frames: {frames:?}");
    assert!(
        progress[0].0 < last_at - Duration::from_millis(500),
        "progress came only at the end"
    );
    assert!(progress[0].0 - started < Duration::from_millis(1900));

    let result = last.result.unwrap();
    let rr = &result.runner_results;
    assert_eq!(rr.requested_qps, "200");
    assert_eq!(rr.num_threads, 4);
    assert_eq!(rr.load_generator, "fortio");
    assert!(
        (rr.actual_qps - 200.0).abs() <= 10.0,
        "actual qps {}",
        rr.actual_qps
    );
    let ok = rr.ret_codes.get("200").copied().unwrap_or(0);
    assert!(
        (380..=420).contains(&ok),
        "{ok} requests for 2 s at 200 qps"
    );
    assert_eq!(rr.duration_histogram.count, ok);
    assert!(rr.errors_by_kind.is_empty(), "{:?}", rr.errors_by_kind);
    let p = percentiles(&result);
    assert_eq!(p.len(), 5);
    assert!(
        p.windows(2).all(|w| w[0] <= w[1]),
        "percentiles not ordered: {p:?}"
    );
    assert!(p[0] > 0.0);
    // SMP latencies are the same numbers in milliseconds.
    assert!((result.smp.latencies_ms.p50 - p[0] * 1000.0).abs() < 0.01 + p[0] * 10.0);
    assert!(result.smp.latencies_ms.min <= result.smp.latencies_ms.p50);
    assert!(result.smp.latencies_ms.p99 <= result.smp.latencies_ms.max);

    // Stored and listed.
    let stored = client
        .get_perf_result()
        .result_id(result.id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stored.runner_results.ret_codes, rr.ret_codes);
    assert_eq!(stored.status, PerfResultStatus::Completed);
    let page = client
        .list_perf_results()
        .search("stead")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_count, 1);
    assert_eq!(page.results[0].id, result.id);
    let raw: Value = server
        .http()
        .get(server.url("/api/perf/profile/result"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["total_count"], 1, "legacy spelling");
    server.finish().await;
}

#[tokio::test]
async fn a_stall_shows_in_the_fixed_rate_p99() {
    let server = TestServer::start().await;
    let (base, hits) = target().await;
    let url = format!("{base}/stall");
    let response = server
        .client()
        .run_perf_test()
        .c(2)
        .dur("s")
        .qps(100.0)
        .t("2")
        .url(url.clone())
        .send()
        .await
        .unwrap();
    let frames = frames(response.into_inner_stream()).await;
    let result = frames.last().unwrap().1.result.clone().unwrap();
    assert!(hits.load(Ordering::SeqCst) >= 50, "the stall was reached");
    let p99 = result.runner_results.duration_histogram.percentiles[3].value;
    let service_p99 = result
        .runner_results
        .service_time_histogram
        .as_ref()
        .unwrap()
        .percentiles[3]
        .value;
    // Measured from the intended send time, the requests queued behind the stall are late.
    assert!(p99 >= 0.1, "fixed-rate p99 {p99} s hides the 200 ms stall");
    // Measured from the actual send (a closed-loop view), the stall is one sample in ~200.
    assert!(service_p99 < 0.05, "service-time p99 {service_p99} s");
    assert!(result.runner_results.duration_histogram.max >= 0.2);
    server.finish().await;
}

#[tokio::test]
async fn bad_input_is_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let (base, _) = target().await;
    let http = server.http();
    let ok = format!("{base}/ok");
    let cases = [
        (format!("/api/perf/profile?url={ok}&t=-1"), 400),
        (format!("/api/perf/profile?url={ok}&t=2&dur=d"), 400),
        (
            format!("/api/perf/profile?url={ok}&loadGenerator=jmeter"),
            400,
        ),
        ("/api/perf/profile?url=not%20a%20url".to_string(), 400),
        (
            "/api/perf/profile?url=http://169.254.169.254/latest/meta-data".to_string(),
            403,
        ),
        (format!("/api/perf/profile?url={ok}&c=100000"), 400),
        (format!("/api/perf/profile?url={ok}&c=0"), 400),
        (format!("/api/perf/profile?url={ok}&qps=-5"), 400),
        (format!("/api/perf/profile?url={ok}&headers=not-json"), 400),
        (format!("/api/perf/profile?url={ok}&t=99h"), 400),
        ("/api/perf/profile/result?pagesize=0".to_string(), 400),
        (
            "/api/perf/profile/result?order=password%20asc".to_string(),
            400,
        ),
        ("/api/perf/profile/result?from=yesterday".to_string(), 400),
    ];
    for (path, status) in cases {
        let r = http.get(server.url(&path)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "{path}");
        let body: Value = r.json().await.unwrap();
        assert!(
            body["code"]
                .as_str()
                .unwrap()
                .starts_with("meshery-server-"),
            "{path}: {body}"
        );
    }
    for smp in [
        "clients: [",
        "name: x\nclients: []",
        "clients:\n  - endpoint_urls: [a, b]",
        "clients:\n  - bogus_field: 1",
    ] {
        match server
            .client()
            .run_perf_test_smp()
            .body(smp.to_string())
            .send()
            .await
        {
            Err(meshery_client::rest::Error::ErrorResponse(e)) => {
                assert_eq!(e.status(), 400, "{smp}")
            }
            Ok(r) => panic!("{smp}: accepted ({})", r.status()),
            Err(e) => panic!("{smp}: {e}"),
        }
    }
    let page = server
        .client()
        .list_perf_results()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_count, 0);
    server.finish().await;
}

#[tokio::test]
async fn an_smp_document_runs_and_runs_can_be_cancelled_and_are_limited() {
    let server = TestServer::start_with(|c| c.perf.max_runs_per_user = 1).await;
    let (base, _) = target().await;
    let smp = format!(
        "name: smp-run\nduration: 30s\nclients:\n  - connections: 1\n    rps: 20\n    load_generator: wrk2\n    endpoint_urls: [\"{base}/ok\"]\n"
    );
    let response = server
        .client()
        .run_perf_test_smp()
        .body(smp.clone())
        .send()
        .await
        .unwrap();
    let reading = tokio::spawn(frames(response.into_inner_stream()));
    // One run at a time for this user: the second is refused. The first is registered
    // before its answer's head is sent, so no wait is needed.
    match server.client().run_perf_test_smp().body(smp).send().await {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => assert_eq!(e.status(), 429),
        other => panic!("expected 429, got {:?}", other.map(|r| r.status())),
    }
    let runs = server
        .client()
        .list_perf_runs()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].name, "smp-run");
    server
        .client()
        .cancel_perf_run()
        .run_id(runs[0].run_id.clone())
        .send()
        .await
        .unwrap();
    let frames = tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .unwrap()
        .unwrap();
    let result = frames.last().unwrap().1.result.clone().unwrap();
    assert_eq!(result.status, PerfResultStatus::Cancelled);
    assert_eq!(result.runner_results.load_generator, "wrk2");
    assert!(
        result.runner_results.actual_duration < 10_000_000_000,
        "cancelled well before 30 s"
    );
    assert!(
        server
            .client()
            .list_perf_runs()
            .send()
            .await
            .unwrap()
            .into_inner()
            .is_empty()
    );
    let unknown = server
        .client()
        .cancel_perf_run()
        .run_id("no-such-run")
        .send()
        .await;
    assert!(
        matches!(unknown, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );
    server.finish().await;
}

#[tokio::test]
async fn a_run_in_progress_at_shutdown_is_stored_as_cancelled() {
    let home = tempfile::tempdir().unwrap();
    let (base, _) = target().await;
    let mut config = meshery::server::Config::new(home.path().to_path_buf());
    config.port = 0;
    crate::harness::use_test_database(&mut config).await;
    let running = meshery::server::start(config.clone()).await.unwrap();
    let client = meshery_client::rest::Client::new_with_client(
        &format!("http://{}", running.addr),
        crate::harness::client_builder().build().unwrap(),
    );
    let url = format!("{base}/ok");
    let response = client
        .run_perf_test()
        .name("interrupted")
        .qps(50.0)
        .t("60s")
        .url(url.clone())
        .send()
        .await
        .unwrap();
    let mut stream = response.into_inner_stream();
    let _first = stream.next().await;
    running.stop().await.unwrap();
    let again = meshery::server::start(config).await.unwrap();
    let client = meshery_client::rest::Client::new_with_client(
        &format!("http://{}", again.addr),
        crate::harness::client_builder().build().unwrap(),
    );
    let page = client
        .list_perf_results()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_count, 1);
    assert_eq!(page.results[0].name, "interrupted");
    assert_eq!(page.results[0].status, PerfResultStatus::Cancelled);
    again.stop().await.unwrap();
}

#[tokio::test]
async fn profiles_are_saved_run_listed_and_deleted() {
    let server = TestServer::start().await;
    let (base, _) = target().await;
    let client = server.client();
    let input = |name: &str| meshery::models::PerformanceProfileInput {
        id: None,
        name: name.parse().unwrap(),
        endpoints: vec![format!("{base}/ok")],
        load_generators: vec!["Fortio".into()],
        service_mesh: Some("istio".into()),
        concurrent_request: Some(2),
        qps: Some(50),
        duration: Some("1s".into()),
        request_headers: Some(json!({"x-test": "1"})),
        request_cookies: None,
        request_body: None,
        content_type: None,
        metadata: Default::default(),
        schedule: None,
        user_id: None,
    };
    let saved = client
        .save_perf_profile()
        .body(input("first"))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(saved.load_generators, vec!["fortio"]);
    assert_eq!(saved.total_results, 0);
    assert_eq!(saved.last_run, None);
    let second = client
        .save_perf_profile()
        .body(input("second"))
        .send()
        .await
        .unwrap()
        .into_inner();

    // Update in place.
    let mut update = input("first, renamed");
    update.id = Some(saved.id.clone());
    let renamed = client
        .save_perf_profile()
        .body(update.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(renamed.id, saved.id);
    assert_eq!(renamed.created_at, saved.created_at);
    assert_eq!(renamed.name, "first, renamed");

    // Run it: the result belongs to the profile.
    let frames = frames(
        client
            .run_perf_profile()
            .profile_id(saved.id.clone())
            .send()
            .await
            .unwrap()
            .into_inner_stream(),
    )
    .await;
    let result = frames.last().unwrap().1.result.clone().unwrap();
    assert_eq!(result.performance_profile, saved.id);
    assert_eq!(result.runner_results.num_threads, 2);
    let profile = client
        .get_perf_profile()
        .profile_id(saved.id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(profile.total_results, 1);
    assert!(profile.last_run.is_some());
    let of_profile = client
        .list_perf_profile_results()
        .profile_id(saved.id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(of_profile.total_count, 1);
    let of_second = client
        .list_perf_profile_results()
        .profile_id(second.id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(of_second.total_count, 0);
    let all = client
        .list_all_perf_results()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.total_count, 1);

    // Listing: order, search, paging edges.
    let by_name = client
        .list_perf_profiles()
        .order("name asc")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        by_name
            .profiles
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["first, renamed", "second"]
    );
    let page1 = client
        .list_perf_profiles()
        .order("name asc")
        .page(1)
        .pagesize("1")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            page1.total_count,
            page1.profiles.len(),
            page1.profiles[0].name.as_str()
        ),
        (2, 1, "second")
    );
    let beyond = client
        .list_perf_profiles()
        .page(5)
        .pagesize("1")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(beyond.profiles.is_empty());
    let all_pages = client
        .list_perf_profiles()
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all_pages.profiles.len(), 2);
    let searched = client
        .list_perf_profiles()
        .search("renamed")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(searched.total_count, 1);
    let pct = client
        .list_perf_profiles()
        .search("%")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(pct.total_count, 0, "search is literal, not a LIKE pattern");

    // Bad profiles are refused and nothing changes.
    for (mutate, why) in [
        (
            Box::new(|p: &mut meshery::models::PerformanceProfileInput| p.endpoints = vec![])
                as Box<dyn Fn(&mut _)>,
            "no endpoint",
        ),
        (
            Box::new(|p: &mut meshery::models::PerformanceProfileInput| {
                p.endpoints = vec!["ftp://x/".into()]
            }),
            "scheme",
        ),
        (
            Box::new(|p: &mut meshery::models::PerformanceProfileInput| {
                p.load_generators = vec!["jmeter".into()]
            }),
            "generator",
        ),
        (
            Box::new(|p: &mut meshery::models::PerformanceProfileInput| {
                p.duration = Some("soon".into())
            }),
            "duration",
        ),
        (
            Box::new(|p: &mut meshery::models::PerformanceProfileInput| {
                p.concurrent_request = Some(0)
            }),
            "connections",
        ),
        (
            Box::new(|p: &mut meshery::models::PerformanceProfileInput| p.id = Some("nope".into())),
            "unknown id",
        ),
    ] {
        let mut p = input("bad");
        mutate(&mut p);
        match client.save_perf_profile().body(p.clone()).send().await {
            Err(meshery_client::rest::Error::ErrorResponse(e)) => {
                assert!(e.status() == 400 || e.status() == 404, "{why}")
            }
            other => panic!("{why}: {:?}", other.map(|r| r.status())),
        }
    }
    let still = client
        .list_perf_profiles()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.total_count, 2);

    // Delete; the result stays.
    client
        .delete_perf_profile()
        .profile_id(second.id.clone())
        .send()
        .await
        .unwrap();
    assert!(
        matches!(client.get_perf_profile().profile_id(second.id.clone()).send().await, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );
    assert!(
        matches!(client.delete_perf_profile().profile_id(second.id.clone()).send().await, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );
    server.finish().await;
}

#[tokio::test]
async fn another_user_cannot_see_or_touch_a_profile_or_result() {
    let s = crate::auth::setup().await;
    let (base, _) = target().await;
    let (alice, bob) = (s.client_as("alice"), s.client_as("bob"));
    let input = meshery::models::PerformanceProfileInput {
        id: None,
        name: "alice's".parse().unwrap(),
        endpoints: vec![format!("{base}/ok")],
        load_generators: vec![],
        service_mesh: None,
        concurrent_request: None,
        qps: Some(20),
        duration: Some("1s".into()),
        request_headers: None,
        request_cookies: None,
        request_body: None,
        content_type: None,
        metadata: Default::default(),
        schedule: None,
        user_id: None,
    };
    let profile = alice
        .save_perf_profile()
        .body(input.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    let result = frames(
        alice
            .run_perf_profile()
            .profile_id(profile.id.clone())
            .send()
            .await
            .unwrap()
            .into_inner_stream(),
    )
    .await
    .last()
    .unwrap()
    .1
    .result
    .clone()
    .unwrap();
    let not_found = |r: Result<_, meshery_client::rest::Error<meshery::models::MeshKitError>>| matches!(r, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404);
    assert!(not_found(
        bob.get_perf_profile()
            .profile_id(profile.id.clone())
            .send()
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        bob.run_perf_profile()
            .profile_id(profile.id.clone())
            .send()
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        bob.delete_perf_profile()
            .profile_id(profile.id.clone())
            .send()
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        bob.get_perf_result()
            .result_id(result.id.clone())
            .send()
            .await
            .map(|_| ())
    ));
    let mut steal = input.clone();
    steal.id = Some(profile.id.clone());
    assert!(not_found(
        bob.save_perf_profile()
            .body(steal.clone())
            .send()
            .await
            .map(|_| ())
    ));
    assert_eq!(
        bob.list_perf_profiles()
            .send()
            .await
            .unwrap()
            .into_inner()
            .total_count,
        0
    );
    assert_eq!(
        bob.list_perf_results()
            .send()
            .await
            .unwrap()
            .into_inner()
            .total_count,
        0
    );
    assert_eq!(
        alice
            .get_perf_profile()
            .profile_id(profile.id.clone())
            .send()
            .await
            .unwrap()
            .into_inner()
            .name,
        "alice's"
    );
    s.server.finish().await;
    s.provider.stop().await;
}

/// A graphql-transport-ws subscription: init, subscribe, then `next` payloads.
pub(crate) struct Subscription(
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
);

impl Subscription {
    pub(crate) async fn open(server: &TestServer, operation: Value) -> Subscription {
        use futures_util::SinkExt;
        use tokio_tungstenite::tungstenite::Message;
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let mut request = format!("ws://{}/api/system/graphql/query", server.addr)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "sec-websocket-protocol",
            "graphql-transport-ws".parse().unwrap(),
        );
        let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        ws.send(Message::Text(
            serde_json::json!({"type": "connection_init"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        let ack = ws.next().await.unwrap().unwrap();
        assert!(ack.to_text().unwrap().contains("connection_ack"));
        ws.send(Message::Text(
            serde_json::json!({"id": "1", "type": "subscribe", "payload": operation})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
        Subscription(ws)
    }

    /// The next message other than a ping or pong, whole.
    pub(crate) async fn message(&mut self) -> Value {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(15), self.0.next())
                .await
                .expect("subscription stalled")
                .expect("socket open");
            let msg: Value = serde_json::from_str(message.unwrap().to_text().unwrap()).unwrap();
            if !matches!(msg["type"].as_str(), Some("ping" | "pong")) {
                return msg;
            }
        }
    }

    /// The next `data` of the subscription (None when it completes).
    pub(crate) async fn next(&mut self) -> Option<Value> {
        loop {
            let message = tokio::time::timeout(Duration::from_secs(15), self.0.next())
                .await
                .expect("subscription stalled")?;
            let msg: Value = serde_json::from_str(message.unwrap().to_text().unwrap()).unwrap();
            match msg["type"].as_str() {
                Some("next") => {
                    assert!(msg["payload"]["errors"].is_null(), "{msg}");
                    return Some(msg["payload"]["data"].clone());
                }
                Some("complete") => return None,
                Some("ping" | "pong") => continue,
                other => panic!("unexpected {other:?}: {msg}"),
            }
        }
    }
}

#[tokio::test]
async fn graphql_profiles_runs_progress_and_results() {
    use cynic::http::ReqwestExt;
    use cynic::{MutationBuilder, QueryBuilder, SubscriptionBuilder};
    use meshery_client::graphql::*;
    let server = TestServer::start().await;
    let (base, _) = target().await;
    let http = server.http();
    let gql = server.url("/api/system/graphql/query");
    let input = PerfProfileInput {
        name: "via graphql".into(),
        endpoints: vec![format!("{base}/ok")],
        qps: Some(40),
        duration: Some("1s".into()),
        request_headers: Some(Map(json!({"x-run": "graphql"}))),
        ..Default::default()
    };
    let saved = http
        .post(&gql)
        .run_graphql(SavePerformanceProfile::build(SaveProfileVariables {
            input,
        }))
        .await
        .unwrap();
    let profile = saved.data.unwrap().save_performance_profile;
    assert_eq!(profile.load_generators, vec!["meshery"]);
    // Meshery's types: a whole rate, the headers as JSON text.
    assert_eq!(profile.qps, 40);
    assert_eq!(
        serde_json::from_str::<Value>(&profile.request_headers).unwrap(),
        json!({"x-run": "graphql"})
    );
    let selector = PageFilter {
        page: "0".into(),
        page_size: "10".into(),
        ..Default::default()
    };
    let listed = http
        .post(&gql)
        .run_graphql(GetPerformanceProfiles::build(SelectorVariables {
            selector: selector.clone(),
        }))
        .await
        .unwrap();
    assert_eq!(listed.data.unwrap().get_performance_profiles.total_count, 1);

    // Results of the profile, live: the empty page first.
    let vars = ProfileResultsVariables {
        selector: selector.clone(),
        profile_id: profile.id.clone(),
    };
    let mut results = Subscription::open(
        &server,
        serde_json::to_value(SubscribePerfResults::build(vars.clone())).unwrap(),
    )
    .await;
    assert_eq!(
        results.next().await.unwrap()["subscribePerfResults"]["total_count"],
        0
    );

    // Start a run, follow its progress to the end.
    let run = http
        .post(&gql)
        .run_graphql(RunPerformanceProfile::build(RunProfileVariables {
            input: RunPerfProfileInput {
                profile_id: profile.id.clone(),
            },
        }))
        .await
        .unwrap()
        .data
        .unwrap()
        .run_performance_profile;
    let progress_op = SubscribePerfRunProgress::build(RunIdVariables {
        run_id: run.run_id.clone(),
    });
    let mut progress =
        Subscription::open(&server, serde_json::to_value(progress_op).unwrap()).await;
    let mut last = None;
    while let Some(data) = progress.next().await {
        last = Some(data["subscribePerfRunProgress"].clone());
    }
    let last = last.expect("frames");
    assert_eq!(last["status"], "success", "{last}");
    let result_id = last["result"]["id"].as_str().unwrap().to_string();
    assert_eq!(last["result"]["runner_results"]["RequestedQPS"], "40");

    // The results subscription shows the new result.
    let page = results.next().await.unwrap();
    assert_eq!(page["subscribePerfResults"]["total_count"], 1);
    assert_eq!(
        page["subscribePerfResults"]["results"][0]["id"],
        result_id.as_str()
    );

    let fetched = http
        .post(&gql)
        .run_graphql(FetchResults::build(vars))
        .await
        .unwrap()
        .data
        .unwrap()
        .fetch_results;
    assert_eq!(fetched.results[0].performance_profile, profile.id);
    let one = http
        .post(&gql)
        .run_graphql(GetPerfResult::build(IdVariables {
            id: cynic::Id::new(&result_id),
        }))
        .await
        .unwrap()
        .data
        .unwrap()
        .get_perf_result
        .unwrap();
    assert_eq!(
        one.smp.0["latencies_ms"]["p50"].as_f64().map(|v| v > 0.0),
        Some(true)
    );
    let none = http
        .post(&gql)
        .run_graphql(GetPerfResult::build(IdVariables {
            id: cynic::Id::new("missing"),
        }))
        .await
        .unwrap();
    assert_eq!(none.data.unwrap().get_perf_result, None);

    // A bad selector is a GraphQL error.
    let bad = PageFilter {
        page: "-1".into(),
        ..selector
    };
    let refused = http
        .post(&gql)
        .run_graphql(GetPerformanceProfiles::build(SelectorVariables {
            selector: bad,
        }))
        .await
        .unwrap();
    assert!(
        refused
            .errors
            .is_some_and(|e| e[0].message.contains("page"))
    );
    server.finish().await;
}

#[tokio::test]
async fn h2c_targets_are_loaded_over_http2() {
    let h2 = Arc::new(AtomicU64::new(0));
    let seen = h2.clone();
    let app = axum::Router::new().route(
        "/h2",
        axum::routing::get(move |request: axum::extract::Request| {
            let seen = seen.clone();
            async move {
                if request.version() == axum::http::Version::HTTP_2 {
                    seen.fetch_add(1, Ordering::SeqCst);
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let server = TestServer::start().await;
    let url = format!("http://{addr}/h2");
    let response = server
        .client()
        .run_perf_test()
        .c(2)
        .http2(true)
        .qps(50.0)
        .t("1s")
        .url(url.clone())
        .send()
        .await
        .unwrap();
    let result = frames(response.into_inner_stream())
        .await
        .last()
        .unwrap()
        .1
        .result
        .clone()
        .unwrap();
    let ok = result
        .runner_results
        .ret_codes
        .get("200")
        .copied()
        .unwrap_or(0);
    assert!(ok >= 40, "{:?}", result.runner_results);
    assert_eq!(
        h2.load(Ordering::SeqCst) as i64,
        ok,
        "every request went over HTTP/2"
    );
    server.finish().await;
}

/// An https target with a self-signed certificate for 127.0.0.1, speaking HTTP/1.1 and
/// HTTP/2 (ALPN); counts the HTTP/2 requests. Dropping the handle stops it.
async fn tls_target() -> (meshery::serve::Served, Arc<AtomicU64>) {
    let h2 = Arc::new(AtomicU64::new(0));
    let seen = h2.clone();
    let router = axum::Router::new().fallback(move |request: axum::extract::Request| {
        if request.version() == axum::http::Version::HTTP_2 {
            seen.fetch_add(1, Ordering::SeqCst);
        }
        async { "ok" }
    });
    let (served, _) = crate::harness::serve_https(router, &[b"h2", b"http/1.1"]).await;
    (served, h2)
}

#[tokio::test]
async fn https_targets_over_http1_and_http2() {
    let (target, h2) = tls_target().await;
    let addr = target.addr;
    let server = TestServer::start().await;
    let url = format!("https://{addr}/");
    {
        let server = &server;
        let url = &url;
        let run = |http2: bool, insecure: bool| async move {
            let mut path = format!("/api/perf/profile?url={url}&t=1s&qps=40&c=2");
            if http2 {
                path.push_str("&http2=true");
            }
            if insecure {
                path.push_str("&insecure=true");
            }
            let response = server.http().get(server.url(&path)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{path}");
            frames(response.bytes_stream())
                .await
                .last()
                .unwrap()
                .1
                .result
                .clone()
                .unwrap()
        };
        // HTTP/1.1 over TLS, certificate not checked.
        let r = run(false, true).await;
        let ok = r.runner_results.ret_codes.get("200").copied().unwrap_or(0);
        assert!(ok >= 30, "{:?}", r.runner_results);
        assert_eq!(h2.load(Ordering::SeqCst), 0);
        // HTTP/2 by ALPN.
        let r = run(true, true).await;
        let ok2 = r.runner_results.ret_codes.get("200").copied().unwrap_or(0);
        assert!(ok2 >= 30, "{:?}", r.runner_results);
        assert_eq!(h2.load(Ordering::SeqCst) as i64, ok2);
        // Checked against the built-in roots, a self-signed certificate fails every request.
        let r = run(false, false).await;
        assert!(
            r.runner_results.ret_codes.is_empty(),
            "{:?}",
            r.runner_results.ret_codes
        );
        assert!(
            r.runner_results
                .errors_by_kind
                .keys()
                .any(|k| k.starts_with("tls")),
            "{:?}",
            r.runner_results.errors_by_kind
        );
    }
    server.finish().await;
}

#[tokio::test]
async fn a_run_survives_its_client_and_honours_the_request_timeout() {
    let server = TestServer::start().await;
    let (base, hits) = target().await;
    // /stall holds its 50th request for 200 ms; a 50 ms timeout turns that into an error.
    let path = format!(
        "/api/perf/profile?url={base}/stall&t=1s&qps=100&c=1&timeout=50ms&name=walked-away"
    );
    let response = server.http().get(server.url(&path)).send().await.unwrap();
    assert_eq!(response.status(), 200);
    // The client reads nothing and goes away.
    drop(response);
    let deadline = Instant::now() + Duration::from_secs(10);
    let page = loop {
        let page = server
            .client()
            .list_perf_results()
            .send()
            .await
            .unwrap()
            .into_inner();
        if page.total_count == 1 || Instant::now() > deadline {
            break page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(page.total_count, 1, "the run was lost with its client");
    let r = &page.results[0].runner_results;
    assert_eq!(page.results[0].status, PerfResultStatus::Completed);
    assert!(hits.load(Ordering::SeqCst) >= 50);
    assert_eq!(
        r.errors_by_kind.get("timeout"),
        Some(&1),
        "{:?}",
        r.errors_by_kind
    );
    let bad = server
        .http()
        .get(server.url(&format!("/api/perf/profile?url={base}/ok&timeout=1h")))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    server.finish().await;
}

/// Profiles as Meshery's clients send and read them: mesheryctl's snake_case keys, headers
/// as JSON text or lines (answered as JSON text), a whole-number rate, Meshery's paths
/// (`/api/performance/*`, PUT by id), delete answering 200 with the profile.
#[tokio::test]
async fn profiles_take_meshery_keys_types_and_paths() {
    let server = TestServer::start().await;
    let http = server.http();
    let made: Value = http
        .post(server.url("/api/user/performance/profiles"))
        .json(&json!({
            "name": "snake", "endpoints": ["https://example.com/"], "load_generators": ["fortio"],
            "concurrent_request": 3, "qps": 7, "duration": "1s", "service_mesh": "None",
            "request_headers": "x-a: 1\nx-b: two", "request_cookies": "", "request_body": "",
            "content_type": "", "userId": "ignored", "schedule": "weekly"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(made["concurrentRequest"], 3, "{made}");
    assert_eq!(made["qps"], 7);
    assert_eq!(made["requestHeaders"], r#"{"x-a":"1","x-b":"two"}"#);
    assert_eq!(made["schedule"], "weekly");
    assert_ne!(made["userId"], "ignored");
    let id = made["id"].as_str().unwrap().to_string();
    let at = server.url(&format!("/api/performance/profiles/{id}"));
    // Meshery's PUT by id, headers as JSON text.
    let put: Value = http
        .put(&at)
        .json(
            &json!({"name": "renamed", "endpoints": ["http://127.0.0.1:9/"], "duration": "2s",
                      "loadGenerators": ["fortio"], "requestHeaders": "{\"x-c\": \"3\"}"}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (put["id"].as_str(), put["name"].as_str()),
        (Some(id.as_str()), Some("renamed"))
    );
    assert_eq!(put["requestHeaders"], r#"{"x-c":"3"}"#);
    let listed: Value = http
        .get(server.url("/api/performance/profiles?order=updatedAt%20desc&from=&to="))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["totalCount"], 1, "{listed}");
    for (bad, why) in [
        (
            json!({"name": "x", "endpoints": ["http://a/"], "qps": 1.5}),
            "qps",
        ),
        (
            json!({"name": "x", "endpoints": ["http://a/"], "requestHeaders": "no colon"}),
            "requestHeaders",
        ),
        (json!({"name": "x", "endpoints": ["ftp://a/"]}), "endpoint"),
    ] {
        let r = http
            .post(server.url("/api/performance/profiles"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        assert!(r.text().await.unwrap().contains(why), "{bad}");
    }
    let wrong_id = http
        .put(&at)
        .json(&json!({"id": "another", "name": "x", "endpoints": ["http://a/"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_id.status(), 400);
    let deleted = http.delete(&at).send().await.unwrap();
    assert_eq!(deleted.status(), 200);
    let deleted: Value = deleted.json().await.unwrap();
    assert_eq!(deleted["name"], "renamed");
    assert_eq!(http.get(&at).send().await.unwrap().status(), 404);
    server.finish().await;
}
