//! Issue 17: what a user may do to what every user shares, long-lived streams that end
//! with their session, and retention of stored data.

use std::time::Duration;

use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};

use crate::auth::{Setup, setup, setup_with};
use crate::harness::{Ws, event_input, ws_next, ws_open, ws_send};

/// A model definition to register.
fn model(name: &str) -> meshery::models::ModelDefinition {
    serde_json::from_value(json!({
        "name": name, "version": "v1.0.0",
        "components": [{"kind": "Widget", "apiVersion": "widgets.io/v1"}]
    }))
    .unwrap()
}

#[tokio::test]
async fn only_administrators_register_models() {
    let s = setup().await;
    let alice = s.client_as("alice");
    let refused = alice
        .register_model()
        .body(model("alice-mesh"))
        .send()
        .await;
    let Err(meshery_client::rest::Error::ErrorResponse(e)) = refused else {
        panic!("a non-admin registration was not refused: {refused:?}");
    };
    assert_eq!(e.status(), 403);
    assert_eq!(e.code, "meshery-server-1014");
    assert!(e.error.contains("only administrators"), "{}", e.error);
    // Nothing was registered, for anyone.
    let root = s.client_as("root");
    assert!(root.get_model().model("alice-mesh").send().await.is_err());

    let registered = crate::registry::registered(
        root.register_model()
            .body(model("root-mesh"))
            .send()
            .await
            .unwrap()
            .into_inner(),
    );
    assert_eq!(registered.id, "root-mesh@v1.0.0");
    // Every user sees what the administrator registered.
    let seen = alice
        .get_model()
        .model("root-mesh")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(seen.models[0].registrant.name, "root");
    // The Local user of the same server is the installation's administrator.
    let local: Value = s
        .server
        .http()
        .post(s.server.url("/api/registry/register"))
        .json(&model("local-mesh"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(local["id"], "local-mesh@v1.0.0", "{local}");
    s.finish().await;
}

type Frames = std::pin::Pin<Box<dyn Stream<Item = meshery_client::sse::Frame> + Send>>;

/// A token of `user` from the reference provider that expires `secs` from now on its
/// clock, and that expiry (seconds since 1970).
fn short_token(s: &Setup, user: &str, secs: i64) -> (String, i64) {
    let p = &s.provider.provider;
    let mut claims = p.claims_for(p.account(user).unwrap());
    let exp = p.now() + secs;
    claims["exp"] = json!(exp);
    (p.sign(&claims).unwrap(), exp)
}

/// Opens the event stream with `token` (resuming after `last` if given).
async fn open_events(s: &Setup, token: &str, last: Option<&str>) -> Frames {
    let client = s.client_with(token);
    let mut request = client.subscribe_events();
    if let Some(last) = last {
        request = request.last_event_id(last);
    }
    let response = request.send().await.unwrap();
    Box::pin(meshery_client::sse::frames(response.into_inner_stream()).map(|f| f.unwrap()))
}

/// The next frame within `within`, or `None` when the stream closed.
async fn next_frame(frames: &mut Frames, within: Duration) -> Option<meshery_client::sse::Frame> {
    tokio::time::timeout(within, frames.next())
        .await
        .expect("no frame and no end in time")
}

/// A GraphQL WebSocket (graphql-transport-ws) signed in with `token` at
/// `connection_init`, subscribed to the user's events.
async fn open_subscription(s: &Setup, token: &str) -> Ws {
    let (mut ws, _) = ws_open(
        s.server.addr,
        "graphql-transport-ws",
        &[("meshery-provider", "Reference".into())],
    )
    .await;
    ws_send(
        &mut ws,
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}}),
    )
    .await;
    assert_eq!(ws_next(&mut ws).await["type"], "connection_ack");
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": {"query": "subscription { subscribeEvents { description } }"}}),
    )
    .await;
    // Nothing acknowledges a subscription: post probes until one arrives, so the server
    // has surely subscribed before the test goes on.
    let client = s.client_with(token);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        client
            .create_event()
            .body(event_input("probe"))
            .send()
            .await
            .unwrap();
        match tokio::time::timeout(Duration::from_millis(200), ws.next()).await {
            Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) => {
                let m: Value = serde_json::from_str(&t).unwrap();
                assert_eq!(m["type"], "next", "{m}");
                break;
            }
            Ok(other) => panic!("the subscription answered {other:?}"),
            Err(_) => assert!(tokio::time::Instant::now() < deadline, "no probe arrived"),
        }
    }
    // Later probes may still be on their way: a marker event ends them.
    client
        .create_event()
        .body(event_input("subscribed"))
        .send()
        .await
        .unwrap();
    loop {
        let m = ws_next(&mut ws).await;
        if m["payload"]["data"]["subscribeEvents"]["description"] == "subscribed" {
            break;
        }
    }
    ws
}

/// The close frame that ends `ws` within `within` (other messages skipped): code and reason.
async fn ws_closed(ws: &mut Ws, within: Duration) -> (Option<u16>, String) {
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("the socket was not closed in time");
        match m {
            Some(Ok(Message::Close(frame))) => {
                return match frame {
                    Some(f) => (Some(u16::from(f.code)), f.reason.to_string()),
                    None => (None, String::new()),
                };
            }
            Some(Ok(_)) => continue,
            None | Some(Err(_)) => return (None, String::new()),
        }
    }
}

/// The MeshKit error of a `session-ended` frame, checked to be one.
fn ended(frame: Option<meshery_client::sse::Frame>) -> Value {
    let frame = frame.expect("a last frame before the stream closed");
    assert_eq!(
        frame.event.as_deref(),
        Some(meshery_client::sse::SESSION_ENDED),
        "{frame:?}"
    );
    let error: Value = serde_json::from_str(&frame.data).unwrap();
    assert_eq!(error["code"], "meshery-server-1002", "{error}");
    error
}

/// Milliseconds from now until Unix time `exp` (negative once it passed).
fn ms_until(exp: i64) -> i64 {
    exp * 1000 - chrono::Utc::now().timestamp_millis()
}

#[tokio::test]
async fn streams_end_when_their_token_expires_and_resume_with_a_fresh_one() {
    let s = setup().await;
    // Long enough to open both streams on a busy machine; the test waits it out.
    let (token, exp) = short_token(&s, "alice", 6);
    let mut ws = open_subscription(&s, &token).await;
    let mut sse = open_events(&s, &token, None).await;
    // Both streams are live before expiry.
    let alice = s.client_with(&token);
    let posted = alice
        .create_event()
        .body(event_input("before expiry"))
        .send()
        .await
        .unwrap()
        .into_inner();
    let first = next_frame(&mut sse, Duration::from_secs(2)).await.unwrap();
    assert_eq!(first.event, None);
    assert!(first.data.contains("before expiry"), "{first:?}");
    let next = ws_next(&mut ws).await;
    assert_eq!(
        next["payload"]["data"]["subscribeEvents"]["description"],
        "before expiry"
    );
    assert_eq!(s.server.app.providers.watched_sessions(), 1);

    // At expiry both end within a second: SSE with a last frame saying why, WebSocket
    // with 4403.
    let last = next_frame(&mut sse, Duration::from_secs(10)).await;
    let late = -ms_until(exp);
    assert!(
        (-50..1000).contains(&late),
        "SSE ended {late} ms after expiry"
    );
    let error = ended(last);
    assert!(
        error["error"].as_str().unwrap().contains("expired"),
        "{error}"
    );
    assert!(next_frame(&mut sse, Duration::from_secs(1)).await.is_none());
    let (code, reason) = ws_closed(&mut ws, Duration::from_secs(2)).await;
    let late = -ms_until(exp);
    assert!(late < 1000, "WebSocket closed {late} ms after expiry");
    assert_eq!(code, Some(4403));
    assert!(reason.contains("expired"), "{reason}");

    // The expired token opens nothing any more.
    let refused = s.client_with(&token).subscribe_events().send().await;
    assert!(
        matches!(&refused, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 401),
        "the expired token was not refused"
    );
    // With a fresh token the stream resumes after the last event it was sent.
    let fresh = s.token("alice");
    s.client_with(&fresh)
        .create_event()
        .body(event_input("while away"))
        .send()
        .await
        .unwrap();
    let mut resumed = open_events(&s, &fresh, first.id.as_deref()).await;
    let missed = next_frame(&mut resumed, Duration::from_secs(2))
        .await
        .unwrap();
    assert!(missed.data.contains("while away"), "{missed:?}");
    assert!(!missed.data.contains(&posted.id));
    drop(resumed);
    // No watcher outlives its streams.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while s.server.app.providers.watched_sessions() != 0 {
        assert!(std::time::Instant::now() < deadline, "a watcher is left");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.finish().await;
}

#[tokio::test]
async fn logout_on_another_client_ends_the_streams_of_that_token_only() {
    let s = setup().await;
    let token = s.token("alice");
    let other = s.token("alice");
    let mut ws = open_subscription(&s, &token).await;
    let mut sse = open_events(&s, &token, None).await;
    let mut kept = open_events(&s, &other, None).await;
    // Wait until the streams are registered with the server before logging out.
    let alice = s.client_with(&other);
    alice
        .create_event()
        .body(event_input("hello"))
        .send()
        .await
        .unwrap();
    for frames in [&mut sse, &mut kept] {
        let f = next_frame(frames, Duration::from_secs(2)).await.unwrap();
        assert!(f.data.contains("hello"), "{f:?}");
    }
    assert_eq!(ws_next(&mut ws).await["type"], "next");

    // Another client with the same token (the CLI, another tab) signs out.
    let started = std::time::Instant::now();
    let out = s
        .server
        .http()
        .get(s.server.url("/user/logout"))
        .bearer_auth(&token)
        .header("meshery-provider", "Reference")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303, "{out:?}");
    let error = ended(next_frame(&mut sse, Duration::from_secs(2)).await);
    assert!(
        error["error"].as_str().unwrap().contains("revoked"),
        "{error}"
    );
    let (code, reason) = ws_closed(&mut ws, Duration::from_secs(2)).await;
    assert_eq!(code, Some(4403));
    assert!(reason.contains("revoked"), "{reason}");
    // Pushed, not found by the next confirmation a minute later.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The user's stream with another token goes on.
    alice
        .create_event()
        .body(event_input("still here"))
        .send()
        .await
        .unwrap();
    let f = next_frame(&mut kept, Duration::from_secs(2)).await.unwrap();
    assert!(f.data.contains("still here"), "{f:?}");
    s.finish().await;
}

#[tokio::test]
async fn a_revocation_at_the_provider_ends_streams_within_the_recheck_interval() {
    let s = setup_with(|c| c.token_recheck = Duration::from_secs(1)).await;
    let token = s.token("bob");
    let mut ws = open_subscription(&s, &token).await;
    let mut sse = open_events(&s, &token, None).await;
    let bob = s.client_with(&token);
    bob.create_event()
        .body(event_input("hi"))
        .send()
        .await
        .unwrap();
    assert!(next_frame(&mut sse, Duration::from_secs(2)).await.is_some());
    assert_eq!(ws_next(&mut ws).await["type"], "next");
    // Nobody logs out through this server: the provider revokes the token itself.
    let revoked_at = std::time::Instant::now();
    assert!(s.provider.provider.revoke(&token));
    let error = ended(next_frame(&mut sse, Duration::from_secs(3)).await);
    assert!(
        error["error"].as_str().unwrap().contains("revoked"),
        "{error}"
    );
    assert_eq!(
        ws_closed(&mut ws, Duration::from_secs(3)).await.0,
        Some(4403)
    );
    // Within the interval (1 s), the provider's answer and the test's own latency.
    assert!(
        revoked_at.elapsed() < Duration::from_secs(3),
        "{:?}",
        revoked_at.elapsed()
    );
    s.finish().await;
}

/// Runs a 100 ms load test named `name` as `client`'s user, to its end.
async fn load_test(s: &Setup, client: &meshery_client::rest::Client, name: &str) {
    let response = client
        .run_perf_test()
        .name(name)
        .t("100ms")
        .qps(50.0)
        .url(s.server.url("/healthz/live"))
        .send()
        .await
        .unwrap();
    let frames = crate::perf::frames(response.into_inner_stream()).await;
    let last = &frames.last().unwrap().1;
    assert!(last.result.is_some(), "{name}: {:?}", last.message);
}

/// A user's event descriptions and result names, oldest first.
async fn kept(client: &meshery_client::rest::Client) -> (Vec<String>, Vec<String>) {
    let events = client
        .list_events()
        .order("created_at asc")
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    let results = client
        .list_perf_results()
        .order("created_at asc")
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    (
        events
            .events
            .iter()
            .map(|e| e.description.to_string())
            .collect(),
        results.results.iter().map(|r| r.name.clone()).collect(),
    )
}

fn names(prefix: &str, range: std::ops::Range<usize>) -> Vec<String> {
    range.map(|i| format!("{prefix}{i}")).collect()
}

#[tokio::test]
async fn retention_removes_the_oldest_past_each_users_limits_and_everything_past_the_age() {
    let s = setup_with(|c| {
        c.retention.events_max_per_user = Some(5);
        c.retention.results_max_per_user = Some(2);
        c.retention.events_max_age = Some(Duration::from_secs(3600));
        c.retention.results_max_age = Some(Duration::from_secs(7200));
    })
    .await;
    let (alice, bob) = (s.client_as("alice"), s.client_as("bob"));
    // Bob's data is the oldest in the database, and within his limits.
    for name in names("b", 0..3) {
        bob.create_event()
            .body(event_input(&name))
            .send()
            .await
            .unwrap();
    }
    load_test(&s, &bob, "bob-run").await;
    for name in names("a", 0..10) {
        alice
            .create_event()
            .body(event_input(&name))
            .send()
            .await
            .unwrap();
    }
    for name in names("alice-run-", 0..3) {
        load_test(&s, &alice, &name).await;
    }

    let pruned = s
        .server
        .app
        .retention
        .apply(chrono::Utc::now())
        .await
        .unwrap();
    // Load tests record events too: count what is left rather than what went.
    let (alice_events, alice_results) = kept(&alice).await;
    assert_eq!(alice_events.len(), 5, "{alice_events:?}");
    assert!(
        !alice_events.iter().any(|e| names("a", 0..5).contains(e)),
        "{alice_events:?}"
    );
    assert_eq!(alice_results, names("alice-run-", 1..3));
    let (bob_events, bob_results) = kept(&bob).await;
    assert_eq!(bob_events[..3], names("b", 0..3), "{bob_events:?}");
    assert_eq!(
        bob_events.len(),
        4,
        "three and his load test's: {bob_events:?}"
    );
    assert_eq!(bob_results, ["bob-run"]);
    assert_eq!(pruned.results, 1);
    assert!(pruned.events >= 5, "{pruned:?}");
    // A second pass finds nothing more.
    let again = s
        .server
        .app
        .retention
        .apply(chrono::Utc::now())
        .await
        .unwrap();
    assert_eq!(again, Default::default());

    // Past the age limits: as of an hour and a bit from now every event made so far is
    // too old, results (two hours) not yet; a later event stays.
    let cut = chrono::Utc::now();
    tokio::time::sleep(Duration::from_millis(20)).await;
    alice
        .create_event()
        .body(event_input("late"))
        .send()
        .await
        .unwrap();
    let later = cut + chrono::Duration::seconds(3600);
    let pruned = s.server.app.retention.apply(later).await.unwrap();
    assert_eq!(pruned.results, 0);
    let (alice_events, alice_results) = kept(&alice).await;
    assert_eq!(alice_events, ["late"]);
    assert_eq!(alice_results.len(), 2);
    assert_eq!(kept(&bob).await.0, Vec::<String>::new());
    let pruned = s
        .server
        .app
        .retention
        .apply(cut + chrono::Duration::seconds(7200))
        .await
        .unwrap();
    assert_eq!(pruned.results, 3);
    assert_eq!(kept(&alice).await.1, Vec::<String>::new());
    assert_eq!(kept(&bob).await.1, Vec::<String>::new());
    s.finish().await;
}
