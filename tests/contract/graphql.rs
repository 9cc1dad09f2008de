use std::collections::BTreeMap;

use cynic::http::ReqwestExt;
use cynic::{MutationBuilder, QueryBuilder, SubscriptionBuilder};
use futures_util::{SinkExt, StreamExt};
use meshery_client::graphql::*;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{TestServer, event_input, ws_next, ws_open, ws_send};

/// SDL reduced to a canonical map: types by name, fields/arguments/values sorted.
fn canonical(sdl: &str) -> BTreeMap<String, String> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let doc = async_graphql::parser::parse_schema(sdl).expect("SDL parses");
    let mut out = BTreeMap::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let t = t.node;
        let body = match t.kind {
            TypeKind::Object(o) => {
                let mut fields: Vec<String> = o
                    .fields
                    .iter()
                    .map(|f| {
                        let mut args: Vec<String> = f
                            .node
                            .arguments
                            .iter()
                            .map(|a| {
                                let d = a
                                    .node
                                    .default_value
                                    .as_ref()
                                    .map(|d| format!(" = {}", d.node))
                                    .unwrap_or_default();
                                format!("{}: {}{d}", a.node.name.node, a.node.ty.node)
                            })
                            .collect();
                        args.sort();
                        format!(
                            "{}({}): {}",
                            f.node.name.node,
                            args.join(", "),
                            f.node.ty.node
                        )
                    })
                    .collect();
                fields.sort();
                format!("type {{{}}}", fields.join("; "))
            }
            TypeKind::InputObject(o) => {
                let mut fields: Vec<String> = o
                    .fields
                    .iter()
                    .map(|f| format!("{}: {}", f.node.name.node, f.node.ty.node))
                    .collect();
                fields.sort();
                format!("input {{{}}}", fields.join("; "))
            }
            TypeKind::Enum(e) => {
                let mut values: Vec<String> = e
                    .values
                    .iter()
                    .map(|v| v.node.value.node.to_string())
                    .collect();
                values.sort();
                format!("enum {{{}}}", values.join(" "))
            }
            TypeKind::Scalar => "scalar".into(),
            other => panic!("extend canonical() for {other:?}"),
        };
        out.insert(t.name.node.to_string(), body);
    }
    out
}

#[tokio::test]
async fn printed_sdl_equals_the_schema_file() {
    let home = tempfile::tempdir().unwrap();
    let app = meshery::server::App::new(meshery::server::Config::new(home.path().to_path_buf()))
        .await
        .unwrap();
    let printed = meshery::gql::Graphql::new(app.clone()).sdl();
    assert_eq!(
        canonical(&printed),
        canonical(include_str!("../../schema/schema.graphql"))
    );
    app.store.close().await;
}

#[test]
fn canonical_sdl_notices_a_changed_field() {
    let file = include_str!("../../schema/schema.graphql");
    let changed = file.replace("releaseChannel: String!", "releaseChannel: String");
    assert_ne!(canonical(file), canonical(&changed));
}

fn query_url(server: &TestServer) -> String {
    server.url("/api/system/graphql/query")
}

#[tokio::test]
async fn queries_and_mutations_through_cynic() {
    let server = TestServer::start().await;
    let http = server.http();
    let overview = http
        .post(query_url(&server))
        .run_graphql(Overview::build(()))
        .await
        .unwrap();
    assert!(overview.errors.is_none(), "{:?}", overview.errors);
    let data = overview.data.unwrap();
    assert_eq!(
        data.version.build,
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(data.user.provider, "Local");
    assert_eq!(data.providers.len(), 1);
    assert_eq!(data.providers[0].kind, ProviderType::Local);
    assert!(data.user_prefs.anonymous_usage_stats);

    let input = UserPrefsInput {
        anonymous_perf_results: Some(false),
        dashboard_preferences: Some(Map(json!({"layout": ["a", "b"]}))),
        ..Default::default()
    };
    let updated = http
        .post(server.url("/api/graphql/query"))
        .run_graphql(UpdateUserPrefs::build(UpdateUserPrefsVariables { input }))
        .await
        .unwrap();
    let prefs = updated.data.expect("data").update_user_prefs;
    assert!(!prefs.anonymous_perf_results);
    assert_eq!(prefs.dashboard_preferences.0, json!({"layout": ["a", "b"]}));
    assert!(prefs.updated_at.is_some());
    // The REST view is the same store.
    let rest = server
        .client()
        .get_user_prefs()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(!rest.anonymous_perf_results);
    assert_eq!(
        Value::Object(rest.dashboard_preferences),
        json!({"layout": ["a", "b"]})
    );

    // A non-object Map is refused with a GraphQL error, and nothing changes.
    let bad = UserPrefsInput {
        dashboard_preferences: Some(Map(json!([1, 2]))),
        ..Default::default()
    };
    let refused = http
        .post(query_url(&server))
        .run_graphql(UpdateUserPrefs::build(UpdateUserPrefsVariables {
            input: bad,
        }))
        .await
        .unwrap();
    assert!(
        refused
            .errors
            .is_some_and(|e| e[0].message.contains("must be a JSON object"))
    );
    server.finish().await;
}

#[tokio::test]
async fn graphql_over_get_through_the_generated_rest_client() {
    let server = TestServer::start().await;
    let client = server.client();
    let r = client
        .get_graphql_query()
        .query("{ version { build } }")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        r.data.unwrap()["version"]["build"],
        format!("v{}", env!("CARGO_PKG_VERSION"))
    );
    let alias = client
        .get_graphql_query_alias()
        .operation_name("V")
        .query("query V { version { releaseChannel } }")
        .variables("{}")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alias.data.unwrap()["version"]["releaseChannel"], "stable");

    // Mutations are refused over GET.
    let m =
        "mutation { updateUserPrefs(input: {anonymousUsageStats: false}) { anonymousUsageStats } }";
    match client.get_graphql_query().query(m).send().await {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => assert_eq!(e.status(), 405),
        other => panic!("expected 405, got {other:?}"),
    }
    assert!(
        client
            .get_user_prefs()
            .send()
            .await
            .unwrap()
            .into_inner()
            .anonymous_usage_stats
    );

    // Bad requests: MeshKit 4xx.
    let http = server.http();
    let not_json = http
        .post(query_url(&server))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
    let body: Value = not_json.json().await.unwrap();
    assert_eq!(body["code"], "meshery-server-1001");
    let wrong_type = http
        .post(query_url(&server))
        .json(&json!({"query": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), 400);
    let no_ct = http
        .post(query_url(&server))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_ct.status(), 415);
    let not_acceptable = http
        .post(query_url(&server))
        .header("accept", "text/html")
        .json(&json!({"query": "{ version { build } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_acceptable.status(), 406);
    server.finish().await;
}

/// Runs `subscription { subscribeUserPrefs }` over a WebSocket speaking `protocol`, changes
/// the prefs through REST, and returns the `anonymousUsageStats` values received.
async fn subscribe_and_change(server: &TestServer, protocol: &str) -> Vec<bool> {
    let url = format!("ws://{}/api/system/graphql/query", server.addr);
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    let (mut ws, response) = tokio_tungstenite::connect_async(request).await.unwrap();
    assert_eq!(response.headers()["sec-websocket-protocol"], protocol);
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "connection_init", "payload": {}})))
        .await
        .unwrap();
    let operation = serde_json::to_value(SubscribeUserPrefs::build(())).unwrap();
    let start = if protocol == "graphql-ws" {
        "start"
    } else {
        "subscribe"
    };
    let data = if protocol == "graphql-ws" {
        "data"
    } else {
        "next"
    };
    let mut seen = Vec::new();
    let mut changed = false;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while seen.len() < 2 {
        let message = tokio::time::timeout_at(deadline, ws.next())
            .await
            .expect("subscription timed out");
        let Some(Ok(Message::Text(text))) = message else {
            continue;
        };
        let msg: Value = serde_json::from_str(&text).unwrap();
        match msg["type"].as_str() {
            Some("connection_ack") => {
                ws.send(send(
                    json!({"id": "1", "type": start, "payload": operation}),
                ))
                .await
                .unwrap();
            }
            Some(t) if t == data => {
                let prefs: SubscribeUserPrefs =
                    serde_json::from_value(msg["payload"]["data"].clone()).unwrap();
                seen.push(prefs.subscribe_user_prefs.anonymous_usage_stats);
                if !changed {
                    changed = true;
                    let update = meshery::models::UserPrefsUpdate {
                        anonymous_usage_stats: Some(!seen[0]),
                        ..Default::default()
                    };
                    server
                        .client()
                        .update_user_prefs()
                        .body(update.clone())
                        .send()
                        .await
                        .unwrap();
                }
            }
            Some("ka") | Some("ping") | Some("pong") => {}
            other => panic!("unexpected {other:?}: {msg}"),
        }
    }
    let _ = ws.close(None).await;
    seen
}

#[tokio::test]
async fn subscriptions_deliver_over_both_websocket_subprotocols() {
    let server = TestServer::start().await;
    // Current value first (the default, true), then the change.
    assert_eq!(
        subscribe_and_change(&server, "graphql-transport-ws").await,
        vec![true, false]
    );
    assert_eq!(
        subscribe_and_change(&server, "graphql-ws").await,
        vec![false, true]
    );
    server.finish().await;
}

/// Every description in the SDL, by place (`Type`, `Type.field`, `Type.field(arg)`),
/// `None` where the SDL has none.
fn sdl_descriptions(sdl: &str) -> BTreeMap<String, Option<String>> {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let doc = async_graphql::parser::parse_schema(sdl).expect("SDL parses");
    let text = |d: &Option<async_graphql::parser::Positioned<String>>| {
        d.as_ref().map(|d| d.node.trim().to_string())
    };
    let mut out = BTreeMap::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(t) = def else {
            continue;
        };
        let t = t.node;
        let name = t.name.node.to_string();
        out.insert(name.clone(), text(&t.description));
        match t.kind {
            TypeKind::Object(o) => {
                for f in o.fields {
                    let place = format!("{name}.{}", f.node.name.node);
                    for a in &f.node.arguments {
                        out.insert(
                            format!("{place}({})", a.node.name.node),
                            text(&a.node.description),
                        );
                    }
                    out.insert(place, text(&f.node.description));
                }
            }
            TypeKind::InputObject(o) => {
                for f in o.fields {
                    out.insert(
                        format!("{name}.{}", f.node.name.node),
                        text(&f.node.description),
                    );
                }
            }
            TypeKind::Enum(e) => {
                for v in e.values {
                    out.insert(
                        format!("{name}.{}", v.node.value.node),
                        text(&v.node.description),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

#[tokio::test]
async fn served_introspection_carries_the_sdl_descriptions_and_null_where_none() {
    let server = TestServer::start().await;
    let query = "{ __schema { types { name description \
        fields { name description args { name description } } \
        inputFields { name description } enumValues { name description } } } }";
    let answer: Value = server
        .http()
        .post(server.url("/api/system/graphql/query"))
        .json(&json!({ "query": query }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let described = |v: &Value| -> Option<String> { v["description"].as_str().map(str::to_string) };
    let mut served = BTreeMap::new();
    let expected = sdl_descriptions(include_str!("../../schema/schema.graphql"));
    for t in answer["data"]["__schema"]["types"]
        .as_array()
        .expect("types")
    {
        let name = t["name"].as_str().unwrap().to_string();
        if !expected.contains_key(&name) {
            continue; // built-in scalars and introspection types
        }
        served.insert(name.clone(), described(t));
        for f in t["fields"].as_array().into_iter().flatten() {
            let place = format!("{name}.{}", f["name"].as_str().unwrap());
            for a in f["args"].as_array().into_iter().flatten() {
                served.insert(
                    format!("{place}({})", a["name"].as_str().unwrap()),
                    described(a),
                );
            }
            served.insert(place, described(f));
        }
        for list in ["inputFields", "enumValues"] {
            for f in t[list].as_array().into_iter().flatten() {
                served.insert(
                    format!("{name}.{}", f["name"].as_str().unwrap()),
                    described(f),
                );
            }
        }
    }
    // Some places have no description, and those must be null, not "".
    assert!(expected.values().any(Option::is_none));
    assert!(
        served.values().all(|d| d.as_deref() != Some("")),
        "empty descriptions served"
    );
    assert_eq!(served, expected);
    server.finish().await;
}

#[tokio::test]
async fn websocket_protocol_rules_of_graphql_transport_ws() {
    let server = TestServer::start().await;
    let events = json!({"query": "subscription { subscribeEvents { description } }"});

    // A subscription before the handshake: 4401 Unauthorized.
    let mut ws = ws_open(server.addr, "graphql-transport-ws", &[]).await.0;
    ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": events}),
    )
    .await;
    assert_eq!(ws_next(&mut ws).await, json!({"close": 4401}));

    // Ping is answered; a second connection_init closes with 4429.
    let mut ws = ws_open(server.addr, "graphql-transport-ws", &[]).await.0;
    ws_send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(ws_next(&mut ws).await["type"], "connection_ack");
    ws_send(&mut ws, json!({"type": "ping"})).await;
    assert_eq!(ws_next(&mut ws).await, json!({"type": "pong"}));
    ws_send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(ws_next(&mut ws).await, json!({"close": 4429}));

    // Two identical bad subscriptions (one shared execution): each gets the errors under
    // its own id, then complete.
    let mut ws = ws_open(server.addr, "graphql-transport-ws", &[]).await.0;
    ws_send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(ws_next(&mut ws).await["type"], "connection_ack");
    let bad = json!({"query": "subscription { subscribeEvents { nope } }"});
    for id in ["a", "b"] {
        ws_send(
            &mut ws,
            json!({"id": id, "type": "subscribe", "payload": bad}),
        )
        .await;
    }
    let mut seen = BTreeMap::new();
    while seen
        .values()
        .filter(|v: &&Vec<String>| v.last().is_some_and(|t| t == "complete"))
        .count()
        < 2
    {
        let m = ws_next(&mut ws).await;
        let id = m["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{m}"))
            .to_string();
        if m["type"] == "next" {
            let text = m["payload"]["errors"][0]["message"].as_str().unwrap_or("");
            assert!(text.contains("nope"), "{m}");
        }
        seen.entry(id)
            .or_insert_with(Vec::new)
            .push(m["type"].as_str().unwrap().to_string());
    }
    assert_eq!(seen["a"], ["next", "complete"]);
    assert_eq!(seen["b"], ["next", "complete"]);

    // The alias limit holds over the socket too (30 by default).
    let aliased: String = (0..31)
        .map(|i| format!("a{i}: subscribeEvents {{ id }} "))
        .collect();
    ws_send(
        &mut ws,
        json!({"id": "many", "type": "subscribe", "payload": {"query": format!("subscription {{ {aliased}}}")}}),
    )
    .await;
    let refused = ws_next(&mut ws).await;
    assert_eq!(refused["id"], "many", "{refused}");
    assert!(refused.to_string().contains("31 aliases"), "{refused}");
    assert_eq!(ws_next(&mut ws).await["type"], "complete");

    // A live subscription: an event reaches it under its id; the client's complete is
    // confirmed, and a duplicate id of a live subscription closes with 4409.
    ws_send(
        &mut ws,
        json!({"id": "live", "type": "subscribe", "payload": events}),
    )
    .await;
    let client = server.client();
    let live = loop {
        client
            .create_event()
            .body(event_input("over the socket"))
            .send()
            .await
            .unwrap();
        // The subscription is live once the server has read it; until then events pass.
        match tokio::time::timeout(std::time::Duration::from_millis(200), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => break serde_json::from_str::<Value>(&t).unwrap(),
            Ok(other) => panic!("{other:?}"),
            Err(_) => continue,
        }
    };
    assert_eq!(live["type"], "next", "{live}");
    assert_eq!(live["id"], "live");
    assert_eq!(
        live["payload"]["data"]["subscribeEvents"]["description"],
        "over the socket"
    );
    ws_send(
        &mut ws,
        json!({"id": "live", "type": "subscribe", "payload": events}),
    )
    .await;
    loop {
        let m = ws_next(&mut ws).await;
        if m.get("close").is_some() {
            assert_eq!(m, json!({"close": 4409}));
            break;
        }
        assert_eq!(m["id"], "live", "only the live subscription's events: {m}");
    }
    server.finish().await;
}

/// An operation that passed validation runs with fast validation next time; another
/// operation of the same document, or the same one with variables, is still fully checked.
#[tokio::test]
async fn validation_is_skipped_only_for_the_operation_that_passed_it() {
    let server = TestServer::start().await;
    let post = |body: Value| {
        let http = server.http();
        let url = query_url(&server);
        async move {
            http.post(url)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    // async-graphql validates the whole document, so both operations must be valid.
    let doc = "query A { version { build } } \
               query B($id: ID!) { getPerfResult(id: $id) { id } version { build } }";
    for round in 0..3 {
        let a = post(json!({"query": doc, "operationName": "A"})).await;
        assert!(
            a["data"]["version"]["build"].is_string(),
            "round {round}: {a}"
        );
        let missing = post(json!({"query": doc, "operationName": "B"})).await;
        assert!(
            missing["errors"][0]["message"]
                .as_str()
                .unwrap_or("")
                .contains("b"),
            "round {round}: B needs its variable: {missing}"
        );
        let typed = post(
            json!({"query": doc, "operationName": "B", "variables": {"id": {"not": "an id"}}}),
        )
        .await;
        assert!(
            typed["errors"].is_array(),
            "round {round}: a bad variable: {typed}"
        );
        let fine =
            post(json!({"query": doc, "operationName": "B", "variables": {"id": "none-such"}}))
                .await;
        assert!(
            fine["data"]["version"]["build"].is_string(),
            "round {round}: {fine}"
        );
    }
    // The same through GET, where the document is parsed once for the mutation check too.
    for _ in 0..2 {
        let got: Value = server
            .http()
            .get(format!(
                "{}?query=%7Bversion%7Bbuild%7D%7D",
                query_url(&server)
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(got["data"]["version"]["build"].is_string(), "{got}");
    }
    server.finish().await;
}

/// A socket that never sends `connection_init` is closed with 4408; one that stops
/// answering pings is closed; one that answers them stays; the subprotocol answered is
/// the one spoken (the client's first we know).
#[tokio::test]
async fn websockets_are_closed_without_init_or_pongs_and_speak_the_protocol_they_answer() {
    // The first ping comes after the init timeout, so the silent socket sees only its close.
    let wait = std::time::Duration::from_millis(400);
    let server = TestServer::start_with(move |c| {
        c.graphql.ws_init_timeout = wait * 3 / 4;
        c.graphql.ws_keepalive = wait;
    })
    .await;

    let mut silent = ws_open(server.addr, "graphql-transport-ws", &[]).await.0;
    assert_eq!(ws_next(&mut silent).await, json!({"close": 4408}));

    // Not reading means not answering pings (the client pongs as it reads).
    let mut deaf = ws_open(server.addr, "graphql-transport-ws", &[]).await.0;
    ws_send(&mut deaf, json!({"type": "connection_init"})).await;
    tokio::time::sleep(wait * 4).await;
    assert_eq!(ws_next(&mut deaf).await["type"], "connection_ack");
    // Reading now answers the queued pings into a closed socket, which may reset before
    // the close frame is read: either way the server ended it.
    let end = ws_next(&mut deaf).await;
    assert!(
        end == json!({"close": 1001}) || end == json!({"close": null}),
        "{end}"
    );

    // Reading for four intervals: pings arrive and are answered; the socket stays.
    let mut alive = ws_open(server.addr, "graphql-transport-ws", &[]).await.0;
    ws_send(&mut alive, json!({"type": "connection_init"})).await;
    let deadline = tokio::time::Instant::now() + wait * 4;
    let mut pings = 0;
    loop {
        match tokio::time::timeout_at(deadline, alive.next()).await {
            Err(_) => break,
            Ok(Some(Ok(Message::Ping(_)))) => pings += 1,
            Ok(Some(Ok(Message::Text(t)))) => assert!(t.contains("connection_ack"), "{t}"),
            Ok(other) => panic!("the socket ended: {other:?}"),
        }
    }
    assert!(pings >= 2, "{pings} pings in four intervals");
    ws_send(&mut alive, json!({"type": "ping"})).await;
    assert_eq!(ws_next(&mut alive).await, json!({"type": "pong"}));

    // Offered legacy first: answered and spoken as legacy.
    let (mut legacy, answered) =
        ws_open(server.addr, "graphql-ws, graphql-transport-ws", &[]).await;
    assert_eq!(answered, "graphql-ws");
    ws_send(&mut legacy, json!({"type": "connection_init"})).await;
    assert_eq!(ws_next(&mut legacy).await["type"], "connection_ack");
    ws_send(
        &mut legacy,
        json!({"id": "1", "type": "start", "payload": {"query": "{ version { build } }"}}),
    )
    .await;
    let data = ws_next(&mut legacy).await;
    assert_eq!(data["type"], "data", "{data}");
    assert!(
        data["payload"]["data"]["version"]["build"].is_string(),
        "{data}"
    );
    assert_eq!(ws_next(&mut legacy).await["type"], "complete");
    server.finish().await;
}
