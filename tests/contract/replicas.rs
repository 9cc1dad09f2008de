//! Several servers on one database: what they must agree on (the instance id, the key
//! that seals kubeconfig credentials) and what each sees of the others' writes. On
//! SQLite the servers share one file; under `cargo xtask test` the suite runs again on
//! PostgreSQL.

use crate::harness::TestServer;
use crate::kubernetes::Stored;
use crate::kubernetes::{TOKEN, closed_port, fake_api_server, kubeconfig};

fn key_file(dir: &std::path::Path, name: &str, contents: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[tokio::test]
async fn the_suite_runs_on_the_engine_it_was_given() {
    let server = TestServer::start().await;
    let expected = if crate::harness::test_database().is_some() {
        meshery::store::Engine::Postgres
    } else {
        meshery::store::Engine::Sqlite
    };
    assert_eq!(server.app.store.engine(), expected);
    server.client().get_system_version().send().await.unwrap();
    server.finish().await;
}

#[tokio::test]
async fn replicas_share_the_instance_id_the_data_and_the_sealing_key() {
    let keys = tempfile::tempdir().unwrap();
    // The same key as hex on one replica and raw bytes on the other (a mounted Secret).
    let raw: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37)).collect();
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    let hex_file = key_file(keys.path(), "hex.key", format!("{hex}\n").as_bytes());
    let raw_file = key_file(keys.path(), "raw.key", &raw);
    let a = TestServer::start_with(|c| c.secret_key_file = Some(hex_file.clone())).await;
    let shared = a.database_url();
    let b = TestServer::start_with(|c| {
        c.secret_key_file = Some(raw_file.clone());
        c.database_url = Some(shared.clone());
    })
    .await;
    assert_ne!(a.app.config.home, b.app.config.home);

    // One instance id: the Local user is the instance on both.
    let user_a = a.client().get_user().send().await.unwrap().into_inner();
    let user_b = b.client().get_user().send().await.unwrap().into_inner();
    assert_eq!(user_a.id, user_b.id);
    assert_eq!(a.app.instance_id, b.app.instance_id);

    // A context uploaded through A is listed by B, and B opens its credentials.
    let (alive, seen) = fake_api_server().await;
    let uploaded = a
        .client()
        .upload_kubeconfig()
        .body(kubeconfig(&alive, &closed_port().await))
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts();
    let live = uploaded.iter().find(|c| c.name == "alive").unwrap();
    let listed = b
        .client()
        .list_k8s_contexts()
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_count, 2);
    let ping = b
        .client()
        .ping_k8s_context()
        .context_id(live.id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ping.name, "alive");
    assert_eq!(seen.lock().unwrap().as_slice(), [format!("Bearer {TOKEN}")]);
    b.finish().await;
    a.finish().await;
}

#[tokio::test]
async fn a_replica_with_another_sealing_key_or_a_bad_key_file_does_not_start() {
    let keys = tempfile::tempdir().unwrap();
    let first = key_file(keys.path(), "first.key", &[7u8; 32]);
    let other = key_file(keys.path(), "other.key", &[8u8; 32]);
    let short = key_file(keys.path(), "short.key", b"0123456789abcdef\n");
    let a = TestServer::start_with(|c| c.secret_key_file = Some(first.clone())).await;
    let start = |key: std::path::PathBuf| {
        let url = a.database_url();
        async move {
            let home = tempfile::tempdir().unwrap();
            let mut config = meshery::server::Config::new(home.path().to_path_buf());
            config.database_url = Some(url);
            config.secret_key_file = Some(key);
            match meshery::server::App::new(config).await {
                Ok(app) => {
                    app.store.close().await;
                    None
                }
                Err(e) => Some(e.to_string()),
            }
        }
    };
    let mismatch = start(other).await.expect("another key is refused");
    assert!(mismatch.contains("--secret-key-file"), "{mismatch}");
    let bad = start(short.clone()).await.expect("a short key is refused");
    assert!(
        bad.contains(&short.display().to_string()) && bad.contains("32-byte"),
        "{bad}"
    );
    let missing = start(keys.path().join("absent.key"))
        .await
        .expect("a missing key file is refused, not made");
    assert!(missing.contains("absent.key"), "{missing}");
    assert!(!keys.path().join("absent.key").exists());
    // The right key still starts.
    assert_eq!(start(first).await, None);
    a.client().get_system_version().send().await.unwrap();
    a.finish().await;
}

#[tokio::test]
#[ignore = "PostgreSQL only (SQLite serves one process): cargo xtask contract-pg"]
async fn replicas_that_start_together_on_a_new_database_migrate_once() {
    use sqlx::{Connection, Row};
    assert!(
        crate::harness::test_database().is_some(),
        "run with MESHERY_TEST_DATABASE_URL (cargo xtask contract-pg)"
    );
    let home = tempfile::tempdir().unwrap();
    let mut config = meshery::server::Config::new(home.path().to_path_buf());
    crate::harness::use_test_database(&mut config).await;
    config.secret_key_file = Some(key_file(home.path(), "shared.key", &[5u8; 32]));
    let url = config.database_url.clone().unwrap();
    let starts = (0..3).map(|i| {
        let mut config = config.clone();
        config.home = home.path().join(format!("replica-{i}"));
        async move { meshery::server::App::new(config).await }
    });
    let apps: Vec<_> = futures_util::future::join_all(starts)
        .await
        .into_iter()
        .map(|r| r.expect("every replica starts"))
        .collect();
    assert!(apps.iter().all(|a| a.instance_id == apps[0].instance_id));
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT version) AS d, MAX(version) AS m FROM _sqlx_migrations",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let (applied, distinct, newest): (i64, i64, i64) = (row.get("n"), row.get("d"), row.get("m"));
    // Versions 1..=newest, each applied once.
    assert_eq!((distinct, newest), (applied, applied));
    let instances: i64 = sqlx::query("SELECT COUNT(*) AS n FROM instance")
        .fetch_one(&mut conn)
        .await
        .unwrap()
        .get("n");
    assert_eq!(instances, 1, "one instance id");
    for app in apps {
        app.store.close().await;
    }
}

/// Two servers on one database with one sealing key (a deployment of two replicas).
async fn two_replicas(keys: &std::path::Path) -> (TestServer, TestServer) {
    let key = key_file(keys, "shared.key", &[9u8; 32]);
    let a = TestServer::start_with(|c| c.secret_key_file = Some(key.clone())).await;
    let url = a.database_url();
    let b = TestServer::start_with(|c| {
        c.secret_key_file = Some(key.clone());
        c.database_url = Some(url.clone());
    })
    .await;
    (a, b)
}

#[tokio::test]
#[ignore = "PostgreSQL only (live updates between replicas): cargo xtask contract-pg"]
async fn an_event_on_one_replica_reaches_the_other_replicas_subscribers_and_resumes_there() {
    use crate::events::{next_frame, sse_frames};
    use crate::harness::{event_input, ws_next, ws_open, ws_send};
    use serde_json::json;
    let keys = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(keys.path()).await;
    assert!(a.app.bus.listening() && b.app.bus.listening());

    // On B: an SSE stream and a GraphQL subscription. The event is posted to A.
    let mut sse_b = sse_frames(&b.client(), None).await;
    let mut ws = ws_open(b.addr, "graphql-transport-ws", &[]).await.0;
    ws_send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(ws_next(&mut ws).await["type"], "connection_ack");
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe",
               "payload": {"query": "subscription { subscribeEvents { description } }"}}),
    )
    .await;
    // The subscription is in place once it carries an event of B's own: warm-ups until
    // one arrives (graphql-transport-ws has no "subscribed" message).
    for n in 0.. {
        assert!(n < 30, "the GraphQL subscription never started");
        b.client()
            .create_event()
            .body(event_input(&format!("warm-up {n}")))
            .send()
            .await
            .unwrap();
        use futures_util::StreamExt;
        if let Ok(Some(Ok(_))) =
            tokio::time::timeout(std::time::Duration::from_millis(300), ws.next()).await
        {
            break;
        }
    }
    let posted = std::time::Instant::now();
    a.client()
        .create_event()
        .body(event_input("from A"))
        .send()
        .await
        .unwrap();
    let (first_id, over_sse) = loop {
        let (id, text) = next_frame(&mut sse_b).await;
        if text == "from A" {
            break (id, posted.elapsed());
        }
        assert!(text.starts_with("warm-up"), "{text}");
    };
    loop {
        let message = ws_next(&mut ws).await;
        let text = &message["payload"]["data"]["subscribeEvents"]["description"];
        if text == "from A" {
            break;
        }
        assert!(
            text.as_str().is_some_and(|t| t.starts_with("warm-up")),
            "{message}"
        );
    }
    assert!(
        over_sse < std::time::Duration::from_secs(1),
        "B's subscriber waited {over_sse:?}"
    );

    // B's client goes away; events land on both replicas; it resumes on A.
    drop(sse_b);
    for (server, text) in [(&b, "1 on B"), (&a, "2 on A"), (&b, "3 on B")] {
        server
            .client()
            .create_event()
            .body(event_input(text))
            .send()
            .await
            .unwrap();
    }
    let mut resumed = sse_frames(&a.client(), Some(&first_id.to_string())).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(next_frame(&mut resumed).await);
    }
    assert_eq!(
        got.iter().map(|g| g.1.as_str()).collect::<Vec<_>>(),
        ["1 on B", "2 on A", "3 on B"]
    );
    assert!(got.iter().all(|g| g.0 > first_id));
    a.client()
        .create_event()
        .body(event_input("live on A"))
        .send()
        .await
        .unwrap();
    assert_eq!(next_frame(&mut resumed).await.1, "live on A");
    b.finish().await;
    a.finish().await;
}

/// Subscribes on a GraphQL WebSocket of `server` (Local user); the first message.
async fn subscribed(server: &TestServer, query: &str) -> (crate::harness::Ws, serde_json::Value) {
    use crate::harness::{ws_next, ws_open, ws_send};
    use serde_json::json;
    let mut ws = ws_open(server.addr, "graphql-transport-ws", &[]).await.0;
    ws_send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(ws_next(&mut ws).await["type"], "connection_ack");
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": query}}),
    )
    .await;
    let first = ws_next(&mut ws).await;
    (ws, first)
}

#[tokio::test]
#[ignore = "PostgreSQL only (live updates between replicas): cargo xtask contract-pg"]
async fn designs_prefs_and_registrations_made_on_one_replica_reach_the_other() {
    use crate::harness::ws_next;
    use serde_json::json;
    let keys = tempfile::tempdir().unwrap();
    let (a, b) = two_replicas(keys.path()).await;

    // Designs: B's live listing shows a design saved through A.
    let (mut designs_b, first) = subscribed(
        &b,
        r#"subscription { subscribeConfiguration(selector: {page: "0", pageSize: "10"}) { patterns { totalCount patterns { name } } } }"#,
    )
    .await;
    let page =
        |m: &serde_json::Value| m["payload"]["data"]["subscribeConfiguration"]["patterns"].clone();
    assert_eq!(page(&first)["totalCount"], 0, "{first}");
    let saved = a
        .http()
        .post(a.url("/api/pattern"))
        .json(&json!({"patternFile": crate::patterns::design("shared", json!([crate::patterns::config_map("cm")]))}))
        .send()
        .await
        .unwrap();
    assert!(saved.status().is_success(), "{}", saved.status());
    let next = ws_next(&mut designs_b).await;
    assert_eq!(page(&next)["totalCount"], 1, "{next}");
    assert_eq!(page(&next)["patterns"][0]["name"], "shared");

    // Preferences: B's subscriber hears A's update; concurrent updates on both replicas
    // keep each other's keys (one transaction per update, locked per user).
    let (mut prefs_b, first) = subscribed(
        &b,
        "subscription { subscribeUserPrefs { anonymousUsageStats usersExtensionPreferences } }",
    )
    .await;
    assert_eq!(
        first["payload"]["data"]["subscribeUserPrefs"]["anonymousUsageStats"],
        true
    );
    let update = |server: &TestServer, body: serde_json::Value| {
        let request = server
            .http()
            .post(server.url("/api/user/prefs"))
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            assert!(response.status().is_success(), "{}", response.status());
        }
    };
    update(&a, json!({"anonymousUsageStats": false})).await;
    let next = ws_next(&mut prefs_b).await;
    assert_eq!(
        next["payload"]["data"]["subscribeUserPrefs"]["anonymousUsageStats"], false,
        "{next}"
    );
    let writes = (0..10).map(|i| {
        let server = if i % 2 == 0 { &a } else { &b };
        update(
            server,
            json!({"usersExtensionPreferences": {format!("key{i}"): i}}),
        )
    });
    futures_util::future::join_all(writes).await;
    let prefs: serde_json::Value = b
        .http()
        .get(b.url("/api/user/prefs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let keys = prefs["usersExtensionPreferences"].as_object().unwrap();
    assert_eq!(keys.len(), 10, "{prefs}");

    // Registry: a model registered through A is known to B without a restart.
    let definition = json!({
        "name": "replica-mesh", "version": "v1.0.0", "category": "Cloud Native Network",
        "components": [{"kind": "Widget", "apiVersion": "replica.io/v1"}]
    });
    let registered = a
        .http()
        .post(a.url("/api/registry/register"))
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success(), "{}", registered.status());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let status = b
            .http()
            .get(b.url("/api/registry/models/replica-mesh"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B still answers {status}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Registering it again through B is refused (the database has it).
    let again = b
        .http()
        .post(b.url("/api/registry/register"))
        .json(&definition)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);
    b.finish().await;
    a.finish().await;
}

#[tokio::test]
#[ignore = "PostgreSQL only (live updates between replicas): cargo xtask contract-pg"]
async fn a_logout_on_one_replica_ends_the_token_on_the_other_at_once() {
    use meshery_provider::{Account, ProviderConfig};
    let provider = meshery_provider::start(
        ProviderConfig {
            accounts: vec![Account::parse("alice:alice-pw:Alice Liddell").unwrap()],
            ..Default::default()
        },
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "shared.key", &[3u8; 32]);
    let url = provider.url.clone();
    let a = TestServer::start_with(|c| {
        c.provider_base_urls = vec![url.clone()];
        c.secret_key_file = Some(key.clone());
    })
    .await;
    let database = a.database_url();
    let b = TestServer::start_with(|c| {
        c.provider_base_urls = vec![url.clone()];
        c.secret_key_file = Some(key.clone());
        c.database_url = Some(database.clone());
    })
    .await;
    let token = provider.provider.issue("alice").unwrap();
    let cookie = format!("meshery-provider=Reference; token={token}");
    let user = |server: &TestServer| {
        let request = server
            .http()
            .get(server.url("/api/user"))
            .header("cookie", cookie.clone());
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // B has verified the token and caches that for up to a minute.
    assert_eq!((user(&a).await, user(&b).await), (200, 200));
    // Alice's streams on B, on the token she signs out with on A.
    use futures_util::StreamExt;
    let response = b
        .http()
        .get(b.url("/api/system/events/subscribe"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut sse = Box::pin(meshery_client::sse::frames(response.bytes_stream()));
    let (mut ws, _) = crate::harness::ws_open(
        b.addr,
        "graphql-transport-ws",
        &[("cookie", cookie.clone())],
    )
    .await;
    crate::harness::ws_send(&mut ws, serde_json::json!({"type": "connection_init"})).await;
    assert_eq!(
        crate::harness::ws_next(&mut ws).await["type"],
        "connection_ack"
    );
    // The stream is registered once its first event arrives.
    let posted = a
        .http()
        .post(a.url("/api/system/events"))
        .header("cookie", cookie.clone())
        .json(&crate::harness::event_input("before logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    let first = tokio::time::timeout(std::time::Duration::from_secs(2), sse.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(first.data.contains("before logout"), "{first:?}");
    let out = a
        .http()
        .get(a.url("/user/logout"))
        .header("cookie", cookie.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303, "{:?}", out.headers());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let status = user(&b).await;
        if status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "B still accepts the token ({status})"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // B's streams on that token ended too: the SSE one with a frame saying why.
    let last = tokio::time::timeout(std::time::Duration::from_secs(1), sse.next())
        .await
        .expect("B's event stream did not end within a second")
        .unwrap()
        .unwrap();
    assert_eq!(
        last.event.as_deref(),
        Some(meshery_client::sse::SESSION_ENDED)
    );
    assert!(last.data.contains("revoked"), "{last:?}");
    assert_eq!(
        crate::harness::ws_next(&mut ws).await,
        serde_json::json!({"close": 4403})
    );
    b.finish().await;
    a.finish().await;
    provider.stop().await;
}

#[tokio::test]
#[ignore = "PostgreSQL only (live updates between replicas): cargo xtask contract-pg"]
async fn a_load_test_on_one_replica_is_listed_followed_limited_and_cancelled_from_the_other() {
    use crate::harness::ws_next;
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "shared.key", &[4u8; 32]);
    let a = TestServer::start_with(|c| {
        c.secret_key_file = Some(key.clone());
        c.perf.max_runs_per_user = 1;
    })
    .await;
    let url = a.database_url();
    let b = TestServer::start_with(|c| {
        c.secret_key_file = Some(key.clone());
        c.database_url = Some(url.clone());
        c.perf.max_runs_per_user = 1;
    })
    .await;
    let (target, _) = crate::perf::target().await;
    let run = |server: &TestServer| {
        server
            .http()
            .get(server.url("/api/perf/profile"))
            .query(&[
                ("name", "replicated"),
                ("url", &format!("{target}/ok")),
                ("t", "30s"),
                ("qps", "20"),
                ("c", "1"),
            ])
            .send()
    };
    // A runs it; its client reads the frames.
    let started = run(&a).await.unwrap();
    assert_eq!(started.status(), 200);
    let on_a = tokio::spawn(crate::perf::frames(started.bytes_stream()));

    // B lists it, refuses the user's second run (the limit holds across replicas).
    let runs = b
        .client()
        .list_perf_runs()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].name, "replicated");
    let run_id = runs[0].run_id.clone();
    assert_eq!(run(&b).await.unwrap().status(), 429);

    // B follows it over GraphQL and sees progress frames from A.
    let (mut follow, first) = subscribed(
        &b,
        &format!(
            r#"subscription {{ subscribePerfRunProgress(runID: "{run_id}") {{ status message runId }} }}"#
        ),
    )
    .await;
    let frame = |m: &serde_json::Value| m["payload"]["data"]["subscribePerfRunProgress"].clone();
    assert_eq!(frame(&first)["status"], "info", "{first}");
    assert_eq!(frame(&first)["runId"], run_id.as_str());

    // B cancels it: A's run stops and stores its result; both streams end with it.
    b.client()
        .cancel_perf_run()
        .run_id(run_id.clone())
        .send()
        .await
        .unwrap();
    let last_on_b = loop {
        let message = ws_next(&mut follow).await;
        if message["type"] == "complete" {
            panic!("the stream completed without a last frame");
        }
        let f = frame(&message);
        if f["status"] != "info" {
            break f;
        }
    };
    assert_eq!(last_on_b["status"], "success", "{last_on_b}");
    assert!(
        last_on_b["message"]
            .as_str()
            .unwrap()
            .starts_with("cancelled after"),
        "{last_on_b}"
    );
    assert_eq!(ws_next(&mut follow).await["type"], "complete");
    let frames_a = tokio::time::timeout(std::time::Duration::from_secs(10), on_a)
        .await
        .expect("A's stream ended")
        .unwrap();
    let last_on_a = &frames_a.last().unwrap().1;
    assert_eq!(last_on_a.message, last_on_b["message"].as_str().unwrap());
    // Over: no longer listed, and the user may run again (on B this time).
    assert!(
        b.client()
            .list_perf_runs()
            .send()
            .await
            .unwrap()
            .into_inner()
            .is_empty()
    );
    let again = run(&b).await.unwrap();
    assert_eq!(again.status(), 200);
    drop(again);
    b.finish().await;
    a.finish().await;
}

#[tokio::test]
#[ignore = "PostgreSQL only (SQLite serves one process; two inventories writing one file contend): cargo xtask contract-pg"]
async fn one_replica_watches_a_cluster_and_another_takes_over_when_it_stops() {
    assert!(
        crate::harness::test_database().is_some(),
        "run with MESHERY_TEST_DATABASE_URL (cargo xtask contract-pg)"
    );
    use futures_util::StreamExt;
    use std::time::Duration;
    let api = crate::kube_api::KubeApi::start(None).await;
    let keys = tempfile::tempdir().unwrap();
    let key = key_file(keys.path(), "shared.key", &[9u8; 32]);
    let tune = |c: &mut meshery::server::Config| {
        c.inventory.probe = Duration::from_millis(500);
        // Renewed every 3.3 s: slack for a loaded CI machine (a renewal late past expiry
        // lets the other replica take the cluster while this one still watches). A stopped
        // replica gives its lease up at once, so the takeover below does not wait for it.
        c.inventory.lease = Duration::from_secs(10);
    };
    let a = TestServer::start_with(|c| {
        tune(c);
        c.secret_key_file = Some(key.clone());
    })
    .await;
    let shared = a.database_url();
    let b = TestServer::start_with(|c| {
        tune(c);
        c.secret_key_file = Some(key.clone());
        c.database_url = Some(shared.clone());
    })
    .await;
    a.client()
        .upload_kubeconfig()
        .body(api.kubeconfig("shared"))
        .send()
        .await
        .unwrap();
    let watching = || a.app.inventory.watching() + b.app.inventory.watching();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while watching() == 0 {
        assert!(tokio::time::Instant::now() < deadline, "nobody watches");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // One watcher only, through several lease renewals.
    for _ in 0..30 {
        assert_eq!(watching(), 1, "both replicas watch the cluster");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (holder, other) = if a.app.inventory.watching() == 1 {
        (a, b)
    } else {
        (b, a)
    };
    // Either replica answers for the context the other one stored (and the holder's
    // audit then has a response to check whichever replica won the lease).
    let page = holder
        .client()
        .list_connections()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        page.connections
            .iter()
            .map(|c| c.kind.as_str())
            .collect::<Vec<_>>(),
        ["kubernetes"]
    );
    let stream = other
        .client()
        .subscribe_cluster_resources()
        .send()
        .await
        .unwrap();
    let mut live = Box::pin(
        meshery_client::sse::json_frames::<meshery::models::ClusterInventoryFrame, _, _, _>(
            stream.into_inner_stream(),
        )
        .map(|f| f.unwrap()),
    );
    live.next().await.unwrap();
    // MeshSync's object events on the replica that does not watch: relayed by the holder.
    let mut objects = crate::harness::ws_open(other.addr, "graphql-transport-ws", &[])
        .await
        .0;
    crate::harness::ws_send(&mut objects, serde_json::json!({"type": "connection_init"})).await;
    assert_eq!(
        crate::harness::ws_next(&mut objects).await["type"],
        "connection_ack"
    );
    crate::harness::ws_send(
        &mut objects,
        serde_json::json!({"id": "1", "type": "subscribe", "payload": {
            "query": "subscription { subscribeMeshSyncEvents { type object } }"}}),
    )
    .await;
    use base64::Engine;
    let pattern = other
        .client()
        .import_pattern()
        .body(meshery::models::PatternImport {
            file: Some(serde_json::Value::from(
                base64::engine::general_purpose::STANDARD
                    .encode(include_str!("../support/sample-app.yaml")),
            )),
            file_name: Some("sample-app.yaml".parse().unwrap()),
            url: None,
            name: Some("sample".parse().unwrap()),
        })
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0);
    let body = || -> meshery::models::PatternDeployInput {
        serde_json::from_value(serde_json::json!({ "patternId": pattern.id })).unwrap()
    };
    let deployed = other
        .client()
        .deploy_pattern()
        .body(body())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(deployed.succeeded, "{deployed:?}");
    let has_deployment = |f: &meshery::models::ClusterInventoryFrame| {
        f.summary.kinds.iter().any(|k| k.kind == "Deployment")
    };
    if other.app.store.engine() == meshery::store::Engine::Postgres {
        // The holder saw it; the other replica's stream hears it through the notices.
        tokio::time::timeout(Duration::from_secs(10), async {
            while !has_deployment(&live.next().await.unwrap()) {}
        })
        .await
        .expect("the holder's inventory in the other replica's live stream");
        let added = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let m = crate::harness::ws_next(&mut objects).await;
                let e = &m["payload"]["data"]["subscribeMeshSyncEvents"];
                if e["object"]["kind"] == "Deployment" {
                    return e.clone();
                }
            }
        })
        .await
        .expect("the holder's object event on the other replica");
        assert_eq!(added["type"], "ADDED", "{added}");
        assert!(added["object"]["spec"]["attribute"].is_string(), "{added}");
        // A reset asked of the replica that does not watch: it drops the inventory, and
        // the holder lists the cluster again, so the Deployment comes back.
        let reset: meshery::models::DatabaseResetInput =
            serde_json::from_value(serde_json::json!({"clearDB": "true"})).unwrap();
        other
            .client()
            .reset_cluster_inventory()
            .body(reset)
            .send()
            .await
            .unwrap();
        let deployments = || async {
            other
                .client()
                .list_cluster_resources()
                .kind(vec!["Deployment".parse().unwrap()])
                .send()
                .await
                .unwrap()
                .into_inner()
                .total_count
        };
        tokio::time::timeout(Duration::from_secs(20), async {
            while deployments().await == 0 {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await
        .expect("the holder listed the cluster again after the reset");
    }
    holder.finish().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while other.app.inventory.watching() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no replica took the cluster over"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The new watcher lists the cluster again, then follows the undeploy.
    other
        .client()
        .undeploy_pattern()
        .body(body())
        .send()
        .await
        .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let frame = live.next().await.unwrap();
            if !has_deployment(&frame) && frame.summary.kinds.iter().any(|k| k.kind == "Namespace")
            {
                return frame;
            }
        }
    })
    .await
    .expect("the undeploy in the live stream after the takeover");
    assert_eq!(
        seen.connections[0].status,
        meshery::models::ConnectionStatus::Connected
    );
    drop(live);
    other.finish().await;
    api.stop().await;
}
