//! Events through the generated clients: recorded on changes, listed with filters and
//! pages, marked read, deleted, streamed (SSE and GraphQL), and kept per user.

use std::time::Duration;

use cynic::{QueryBuilder, SubscriptionBuilder};
use futures_util::{SinkExt, Stream, StreamExt};
use meshery::models::{
    Event, EventIds, EventInput, EventSeverity, EventStatus, EventStatusUpdate, EventsStatusUpdate,
};
use meshery_client::graphql::SubscribeEvents;
use meshery_client::rest::Client;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::TestServer;

/// The events of an SSE stream, decoded (comments and keepalives skipped).
type Events = std::pin::Pin<
    Box<dyn Stream<Item = Result<Event, meshery_client::sse::SseError<reqwest::Error>>> + Send>,
>;

/// The next event of the stream, within 10 s.
async fn next_event(events: &mut Events) -> Event {
    tokio::time::timeout(Duration::from_secs(10), events.next())
        .await
        .expect("no event within 10 s")
        .expect("stream ended")
        .expect("an event")
}

async fn sse(client: &Client) -> Events {
    Box::pin(meshery_client::sse::json_frames(
        client
            .subscribe_events()
            .send()
            .await
            .unwrap()
            .into_inner_stream(),
    ))
}

fn input(category: &str, action: &str, severity: EventSeverity, description: &str) -> EventInput {
    EventInput {
        category: category.parse().unwrap(),
        action: action.parse().unwrap(),
        severity,
        description: description.parse().unwrap(),
        metadata: Default::default(),
        acted_upon: None,
    }
}

/// `GET /api/system/events` with the query pairs given (raw, to test legacy spellings).
async fn list_raw(server: &TestServer, http: &reqwest::Client, query: &str) -> (u16, Value) {
    let response = http
        .get(server.url(&format!("/api/system/events?{query}")))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

fn ids(page: &Value) -> Vec<String> {
    page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn changes_are_recorded_streamed_listed_filtered_and_paged() {
    let server = TestServer::start().await;
    let client = server.client();
    let http = server.http();
    let mut stream = sse(&client).await;

    // A server-side change records an event, delivered live.
    let update = meshery::models::UserPrefsUpdate {
        anonymous_usage_stats: Some(false),
        ..Default::default()
    };
    client
        .update_user_prefs()
        .body(update.clone())
        .send()
        .await
        .unwrap();
    let live = next_event(&mut stream).await;
    assert_eq!(
        (live.category.as_str(), live.action.as_str()),
        ("user", "update_preferences")
    );
    assert_eq!(live.status, EventStatus::Unread);
    assert_eq!(live.user_id, client.get_user().send().await.unwrap().id);

    // Client events: stored, returned with 201, and streamed too.
    let severities = [
        EventSeverity::Error,
        EventSeverity::Warning,
        EventSeverity::Informational,
    ];
    let mut created = Vec::new();
    for i in 0..12 {
        let category = if i % 2 == 0 { "ui" } else { "cli" };
        let description = format!("event {i:02}{}", if i == 7 { " 100%_done" } else { "" });
        let event = client
            .create_event()
            .body(input(category, "click", severities[i % 3], &description))
            .send()
            .await
            .unwrap()
            .into_inner();
        assert_eq!(next_event(&mut stream).await, event);
        created.push(event);
    }

    // Bad input: 400 MeshKit error, nothing stored.
    let (_, before) = list_raw(&server, &http, "pagesize=all").await;
    let bad_bodies = [
        json!({"category": "", "action": "a", "severity": "error", "description": "x"}),
        json!({"category": "a<b>", "action": "a", "severity": "error", "description": "x"}),
        json!({"category": "a", "action": "a", "severity": "loud", "description": "x"}),
        json!({"category": "a", "action": "a", "severity": "error"}),
        json!({"category": "a", "action": "a", "severity": "error", "description": "x", "metadata": {"blob": "x".repeat(70_000)}}),
        json!({"category": "a", "action": "a", "severity": "error", "description": "x", "metadata": [1]}),
    ];
    for body in bad_bodies {
        let response = http
            .post(server.url("/api/system/events"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["code"].is_string(), "{error}");
    }
    for query in [
        "pagesize=0",
        "pagesize=abc",
        "page=-1",
        "order=color",
        "status=seen",
        "severity=loud",
    ] {
        assert_eq!(list_raw(&server, &http, query).await.0, 400, "{query}");
    }
    let (_, after) = list_raw(&server, &http, "pagesize=all").await;
    assert_eq!(after["totalCount"], before["totalCount"]);
    assert_eq!(after["totalCount"], 13);

    // Pages: newest first, legacy keys, last page, empty page, all.
    let page = |page: i64, size: &str| {
        let client = &client;
        let size = size.to_string();
        async move {
            client
                .list_events()
                .page(page)
                .pagesize(size.clone())
                .send()
                .await
                .unwrap()
                .into_inner()
        }
    };
    let first = page(0, "5").await;
    assert_eq!((first.page, first.page_size, first.total_count), (0, 5, 13));
    assert_eq!(first.events[0].id, created[11].id);
    let last = page(2, "5").await;
    assert_eq!(last.events.len(), 3);
    assert_eq!(last.events[2].id, live.id);
    assert!(page(3, "5").await.events.is_empty());
    let all = page(0, "all").await;
    assert_eq!((all.events.len(), all.page_size), (13, 13));
    let (_, legacy) = list_raw(&server, &http, "page=1&pageSize=4").await;
    assert_eq!(
        (legacy["page_size"].clone(), legacy["total_count"].clone()),
        (json!(4), json!(13))
    );
    assert_eq!(ids(&legacy).len(), 4);

    // Filters and search (literal: % and _ are not wildcards), order by description.
    let (_, ui) = list_raw(&server, &http, "category=ui&pagesize=all").await;
    assert_eq!(ui["totalCount"], 6);
    let (_, two) = list_raw(&server, &http, "category=ui&category=user&pagesize=all").await;
    assert_eq!(two["totalCount"], 7);
    let (_, errors) = list_raw(&server, &http, "severity=error&pagesize=all").await;
    assert_eq!(errors["totalCount"], 4);
    let (_, warn_ui) = list_raw(&server, &http, "severity=warning&category=ui&pagesize=all").await;
    assert_eq!(warn_ui["totalCount"], 2);
    let (_, literal) = list_raw(&server, &http, "search=100%25_&pagesize=all").await;
    assert_eq!(ids(&literal), vec![created[7].id.clone()]);
    let (_, none) = list_raw(&server, &http, "search=_&pagesize=all").await;
    assert_eq!(ids(&none), vec![created[7].id.clone()]);
    let (_, by_name) = list_raw(&server, &http, "order=name%20asc&pagesize=3").await;
    let names: Vec<_> = by_name["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["description"].as_str().unwrap().to_string())
        .collect();
    let mut sorted: Vec<_> = all.events.iter().map(|e| e.description.clone()).collect();
    sorted.sort();
    assert_eq!(names, sorted[..3]);

    // Read and unread, one and in bulk.
    let read = client
        .update_event_status()
        .event_id(created[0].id.clone())
        .body(EventStatusUpdate {
            status: EventStatus::Read,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(read.status, EventStatus::Read);
    assert!(read.updated_at >= created[0].updated_at);
    let bulk = client
        .update_events_status()
        .body(EventsStatusUpdate {
            ids: vec![
                created[1].id.clone(),
                created[2].id.clone(),
                "no-such-id".into(),
            ],
            status: EventStatus::Read,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bulk.changed, 2);
    let (_, unread) = list_raw(&server, &http, "status=unread&pagesize=all").await;
    assert_eq!(unread["totalCount"], 10);
    let (_, read) = list_raw(&server, &http, "status=read&pagesize=all").await;
    assert_eq!(read["totalCount"], 3);
    // Unread by severity, over all events (not the page): the notification badge.
    let (_, one) = list_raw(&server, &http, "pagesize=1&category=cli").await;
    let counts = json!([
        {"severity": "error", "count": 3},
        {"severity": "informational", "count": 4},
        {"severity": "warning", "count": 3},
    ]);
    assert_eq!(one["countBySeverityLevel"], counts);
    assert_eq!(one["count_by_severity_level"], counts);
    let missing = client
        .update_event_status()
        .event_id("no-such-id")
        .body(EventStatusUpdate {
            status: EventStatus::Read,
        })
        .send()
        .await;
    assert!(
        matches!(missing, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );

    // Delete one, then in bulk.
    client
        .delete_event()
        .event_id(created[3].id.clone())
        .send()
        .await
        .unwrap();
    let again = client
        .delete_event()
        .event_id(created[3].id.clone())
        .send()
        .await;
    assert!(
        matches!(again, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );
    let deleted = client
        .delete_events()
        .body(EventIds {
            ids: vec![
                created[4].id.clone(),
                created[5].id.clone(),
                created[3].id.clone(),
            ],
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.changed, 2);
    assert_eq!(page(0, "all").await.total_count, 10);
    server.finish().await;
}

#[tokio::test]
async fn each_user_sees_and_touches_only_their_own_events() {
    let s = crate::auth::setup().await;
    let (alice, alice_token) = (s.client_as("alice"), s.token("alice"));
    let bob = s.client_as("bob");
    let mut bob_stream = sse(&bob).await;

    // Signing in records an event for the user who signed in.
    let callback = crate::harness::client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!(
            "{}/api/user/token?provider=Reference&token={alice_token}",
            s.server.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(callback.status(), 302);

    let secret = alice
        .create_event()
        .body(input(
            "ui",
            "note",
            EventSeverity::Informational,
            "alice only",
        ))
        .send()
        .await
        .unwrap()
        .into_inner();
    let listed = alice
        .list_events()
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .events
            .iter()
            .any(|e| e.category == "authentication" && e.action == "login")
    );
    assert!(listed.events.iter().any(|e| e.id == secret.id));

    let bobs = bob
        .list_events()
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(bobs.total_count, 0);
    let not_found = bob
        .update_event_status()
        .event_id(secret.id.clone())
        .body(EventStatusUpdate {
            status: EventStatus::Read,
        })
        .send()
        .await;
    assert!(
        matches!(not_found, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );
    let not_found = bob.delete_event().event_id(secret.id.clone()).send().await;
    assert!(
        matches!(not_found, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );
    let none = bob
        .delete_events()
        .body(EventIds {
            ids: vec![secret.id.clone()],
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.changed, 0);
    let none = bob
        .update_events_status()
        .body(EventsStatusUpdate {
            ids: vec![secret.id.clone()],
            status: EventStatus::Read,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.changed, 0);

    // Bob's stream carries his event and none of Alice's (hers were recorded first).
    let his = bob
        .create_event()
        .body(input("ui", "note", EventSeverity::Debug, "bob's"))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_event(&mut bob_stream).await.id, his.id);
    let still = alice
        .list_events()
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(still.total_count, listed.total_count);
    assert!(still.events.iter().all(|e| e.status == EventStatus::Unread));
    s.server.finish().await;
}

#[tokio::test]
async fn graphql_subscription_delivers_events_and_perf_runs_record_one() {
    let server = TestServer::start().await;
    let client = server.client();
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
    let operation = serde_json::to_value(SubscribeEvents::build(())).unwrap();

    // The subscription has no first item, so the test keeps making events until one
    // arrives: it asserts delivery, and that what arrives is one of ours.
    let mut made = Vec::new();
    let delivered = loop {
        assert!(made.len() < 50, "no event arrived over the subscription");
        let message = tokio::time::timeout(Duration::from_millis(200), ws.next()).await;
        match message {
            Err(_) => {
                if !made.is_empty() {
                    let e = client
                        .create_event()
                        .body(input("ui", "ping", EventSeverity::Debug, "ping"))
                        .send()
                        .await
                        .unwrap()
                        .into_inner();
                    made.push(e.id);
                }
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                let msg: Value = serde_json::from_str(&text).unwrap();
                match msg["type"].as_str() {
                    Some("connection_ack") => {
                        ws.send(send(
                            json!({"id": "1", "type": "subscribe", "payload": operation}),
                        ))
                        .await
                        .unwrap();
                        let e = client
                            .create_event()
                            .body(input("ui", "ping", EventSeverity::Debug, "ping"))
                            .send()
                            .await
                            .unwrap()
                            .into_inner();
                        made.push(e.id);
                    }
                    Some("next") => {
                        let data: SubscribeEvents =
                            serde_json::from_value(msg["payload"]["data"].clone()).unwrap();
                        break data.subscribe_events;
                    }
                    Some("ping") | Some("pong") => {}
                    other => panic!("unexpected {other:?}: {msg}"),
                }
            }
            Ok(other) => panic!("socket: {other:?}"),
        }
    };
    assert!(made.contains(&delivered.id));
    assert_eq!(delivered.category, "ui");
    assert_eq!(delivered.status, "unread");

    // A finished load test records a performance event; it arrives on the subscription.
    let target = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target_url = format!("http://{}/", target.local_addr().unwrap());
    tokio::spawn(async move {
        axum::serve(
            target,
            axum::Router::new().route("/", axum::routing::get(|| async { "ok" })),
        )
        .await
        .unwrap()
    });
    let run = client
        .run_perf_test()
        .c(1)
        .name("gql-events")
        .qps(20.0)
        .t("1s")
        .url(target_url.as_str())
        .send()
        .await
        .unwrap()
        .into_inner_stream();
    run.for_each(|_| async {}).await;
    let perf = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("no perf event within 10 s");
        let Some(Ok(Message::Text(text))) = message else {
            continue;
        };
        let msg: Value = serde_json::from_str(&text).unwrap();
        if msg["type"] == "next" {
            let data: SubscribeEvents =
                serde_json::from_value(msg["payload"]["data"].clone()).unwrap();
            if data.subscribe_events.category == "performance" {
                break data.subscribe_events;
            }
        }
    };
    assert_eq!(
        (perf.action.as_str(), perf.severity.as_str()),
        ("run", "success")
    );
    assert!(
        perf.description.contains("gql-events"),
        "{}",
        perf.description
    );

    // The same events through the query.
    let query =
        meshery_client::graphql::GetEvents::build(meshery_client::graphql::SelectorVariables {
            selector: meshery_client::graphql::PageFilter {
                page: "0".into(),
                page_size: "all".into(),
                ..Default::default()
            },
        });
    let answer: Value = server
        .http()
        .post(server.url("/api/system/graphql/query"))
        .json(&query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let page: meshery_client::graphql::GetEvents =
        serde_json::from_value(answer["data"].clone()).unwrap();
    assert_eq!(page.get_events.total_count as usize, made.len() + 1);
    assert_eq!(page.get_events.events[0].id, perf.id);
    server.finish().await;
}

/// An SSE stream of the generated client with its frames' ids; resumes after `after`.
pub async fn sse_frames(
    client: &Client,
    after: Option<&str>,
) -> std::pin::Pin<Box<dyn Stream<Item = meshery_client::sse::Frame> + Send>> {
    let mut request = client.subscribe_events();
    if let Some(after) = after {
        request = request.last_event_id(after);
    }
    let body = request.send().await.unwrap().into_inner_stream();
    Box::pin(meshery_client::sse::frames(body).map(|f| f.expect("a frame")))
}

/// The next frame's (id, event description), within 10 s.
pub async fn next_frame(
    frames: &mut std::pin::Pin<Box<dyn Stream<Item = meshery_client::sse::Frame> + Send>>,
) -> (i64, String) {
    let frame = tokio::time::timeout(Duration::from_secs(10), frames.next())
        .await
        .expect("no frame within 10 s")
        .expect("stream ended");
    let event: Event = serde_json::from_str(&frame.data).unwrap();
    let id = frame.id.expect("every frame has an id").parse().unwrap();
    (id, event.description)
}

#[tokio::test]
async fn a_stream_resumes_after_last_event_id_with_exactly_the_missed_events() {
    let s = crate::auth::setup().await;
    let server = &s.server;
    let client = s.client_as("alice");
    let other = s.client_as("bob");
    let mut live = sse_frames(&client, None).await;
    for n in 1..=3 {
        client
            .create_event()
            .body(crate::harness::event_input(&format!("e{n}")))
            .send()
            .await
            .unwrap();
    }
    let seen: Vec<(i64, String)> = [
        next_frame(&mut live).await,
        next_frame(&mut live).await,
        next_frame(&mut live).await,
    ]
    .into();
    assert_eq!(
        seen.iter().map(|s| s.1.as_str()).collect::<Vec<_>>(),
        ["e1", "e2", "e3"]
    );
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "{seen:?}");
    drop(live);

    // While away: two more of ours and one of another user's.
    for n in 4..=5 {
        client
            .create_event()
            .body(crate::harness::event_input(&format!("e{n}")))
            .send()
            .await
            .unwrap();
    }
    other
        .create_event()
        .body(crate::harness::event_input("bob's"))
        .send()
        .await
        .unwrap();
    let after = seen[0].0.to_string();
    let mut resumed = sse_frames(&client, Some(&after)).await;
    let mut got = Vec::new();
    for _ in 0..4 {
        got.push(next_frame(&mut resumed).await.1);
    }
    assert_eq!(got, ["e2", "e3", "e4", "e5"]);
    // Then live ones, and nothing twice.
    client
        .create_event()
        .body(crate::harness::event_input("e6"))
        .send()
        .await
        .unwrap();
    assert_eq!(next_frame(&mut resumed).await.1, "e6");

    // An id that is not a number is a 400.
    let response = server
        .http()
        .get(server.url("/api/system/events/subscribe"))
        .header("last-event-id", "abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert!(body.to_string().contains("Last-Event-ID"), "{body}");
    // One after the newest event (another deployment's) resumes from now: no replay, and
    // the next event is not held back until its number passes the id.
    let mut from_now = sse_frames(&client, Some("99999999")).await;
    client
        .create_event()
        .body(crate::harness::event_input("e7"))
        .send()
        .await
        .unwrap();
    assert_eq!(next_frame(&mut from_now).await.1, "e7");
    s.finish().await;
}

/// Meshery's other event paths: bulk delete at its path, the categories and actions of the
/// user's events, `sort` apart from `order`, and the server's log level (administrators
/// change it; its answer carries Meshery's legacy keys too).
#[tokio::test]
async fn meshery_event_paths_types_bulk_delete_and_log_level() {
    let s = crate::auth::setup().await;
    let alice = s.client_as("alice");
    let bob = s.client_as("bob");
    let mut ids = Vec::new();
    for (category, action) in [("ui", "ping"), ("cli", "apply"), ("ui", "apply")] {
        let e = alice
            .create_event()
            .body(input(category, action, EventSeverity::Informational, "x"))
            .send()
            .await
            .unwrap()
            .into_inner();
        ids.push(e.id);
    }
    bob.create_event()
        .body(input("bobs", "own", EventSeverity::Informational, "y"))
        .send()
        .await
        .unwrap();
    let types = alice.list_event_types().send().await.unwrap().into_inner();
    assert_eq!(types.category, vec!["cli", "ui"]);
    assert_eq!(types.action, vec!["apply", "ping"]);

    // Oldest first with Meshery's UI parameters.
    let oldest = alice
        .list_events()
        .sort("created_at")
        .order("asc")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(oldest.events[0].id, ids[0]);

    // Bulk delete at Meshery's path: only one's own events go.
    let bobs = bob.list_events().send().await.unwrap().into_inner().events[0]
        .id
        .clone();
    let deleted = alice
        .delete_events_bulk()
        .body(meshery::models::EventIds {
            ids: vec![ids[0].clone(), ids[1].clone(), bobs.clone()],
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.changed, 2);
    assert_eq!(
        bob.list_events()
            .send()
            .await
            .unwrap()
            .into_inner()
            .total_count,
        1
    );
    let types = alice.list_event_types().send().await.unwrap().into_inner();
    assert_eq!(
        (types.category, types.action),
        (vec!["ui".into()], vec!["apply".into()])
    );

    // The log level: anyone reads it, an administrator sets it, others get 403.
    let level = alice
        .get_event_log_level()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(level.available_levels.len(), 7);
    let root = s.client_as("root");
    let set = root
        .set_event_log_level()
        .body(meshery::models::EventLogLevelInput {
            event_log_level: meshery::models::LogLevel::Debug,
        })
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(set.event_log_level, meshery::models::LogLevel::Debug);
    let refused = alice
        .set_event_log_level()
        .body(meshery::models::EventLogLevelInput {
            event_log_level: meshery::models::LogLevel::Trace,
        })
        .send()
        .await;
    let Err(meshery_client::rest::Error::ErrorResponse(e)) = refused else {
        panic!("a non-admin set the log level: {refused:?}");
    };
    assert_eq!(
        (e.status().as_u16(), e.code.as_str()),
        (403, "meshery-server-1014")
    );
    // Meshery's legacy spelling, as older UIs send it, and its answer's legacy keys.
    let http = s.server.http();
    let answer: Value = http
        .put(s.server.url("/api/system/events/config"))
        .json(&json!({"event_log_level": "info"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["eventLogLevel"], "info", "{answer}");
    assert_eq!(answer["event_log_level"], "info", "{answer}");
    assert_eq!(answer["available_levels"].as_array().map(Vec::len), Some(7));
    let bad = http
        .put(s.server.url("/api/system/events/config"))
        .json(&json!({"eventLogLevel": "loud"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    s.finish().await;
}
