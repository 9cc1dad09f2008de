//! Designs through the generated clients: import of real manifests, checks on save,
//! download back, listings, clone and delete, isolation, URL import policy, GraphQL.

use base64::Engine;
use cynic::{MutationBuilder, QueryBuilder};
use futures_util::StreamExt;
use meshery::models::{Pattern, PatternImport, PatternInput, PatternVisibility, PatternsDelete};
use meshery_client::rest::types::DownloadPatternFormat;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::harness::TestServer;

/// A real multi-document manifest: a Deployment and a Service sharing a name, a ConfigMap.
const MANIFEST: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
  labels: {app: web}
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: nginx:1.27
          ports:
            - containerPort: 80
          envFrom:
            - configMapRef: {name: web-config}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: shop
spec:
  selector: {app: web}
  ports:
    - name: http
      port: 80
      targetPort: 80
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: web-config
  namespace: shop
data:
  GREETING: hello
  MODE: production
"#;

fn docs(text: &str) -> Vec<Value> {
    yaml_serde::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap())
        .filter(|v| !v.is_null())
        .collect()
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

pub fn design(name: &str, components: Value) -> String {
    yaml_serde::to_string(&json!({"name": name, "components": components})).unwrap()
}

fn input(value: Value) -> PatternInput {
    serde_json::from_value(value).unwrap()
}

pub fn config_map(name: &str) -> Value {
    json!({"name": name, "kind": "ConfigMap", "apiVersion": "v1", "metadata": {"name": name}, "data": {"a": "b"}})
}

async fn text(
    response: meshery_client::rest::ResponseValue<meshery_client::rest::ByteStream>,
) -> String {
    let mut stream = response.into_inner_stream();
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.unwrap());
    }
    String::from_utf8(out).unwrap()
}

async fn status_of(server: &TestServer, body: Value) -> (u16, Value) {
    let response = server
        .http()
        .post(server.url("/api/pattern"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn list(server: &TestServer, query: &str) -> Value {
    let response = server
        .http()
        .get(server.url(&format!("/api/pattern?{query}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{query}");
    response.json().await.unwrap()
}

fn names(page: &Value) -> Vec<String> {
    page["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_manifest_imports_validates_and_downloads_back() {
    let server = TestServer::start().await;
    let client = server.client();
    let import = PatternImport {
        file: Some(serde_json::Value::from(b64(MANIFEST))),
        file_name: Some("shop.yaml".parse().unwrap()),
        url: None,
        name: None,
    };
    let pattern = client
        .import_pattern()
        .body(import.clone())
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0);
    assert_eq!(pattern.name, "shop");
    assert_eq!(pattern.components_count, 3);
    assert_eq!(pattern.visibility, PatternVisibility::Private);

    // One component per resource, unique names, each a registered kind.
    let file: Value = yaml_serde::from_str(&pattern.pattern_file).unwrap();
    let components = file["components"].as_array().unwrap();
    let component_names: Vec<&str> = components
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(component_names, ["web", "web-service", "web-config"]);
    let registry = client
        .list_components()
        .pagesize("all")
        .trim(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    for c in components {
        assert!(
            registry
                .components
                .iter()
                .any(|r| r.kind == c["kind"] && r.api_version == c["apiVersion"])
        );
    }

    // The manifest form is the original, document for document.
    let manifest = text(
        client
            .download_pattern()
            .pattern_id(pattern.id.clone())
            .format(DownloadPatternFormat::Manifest)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(docs(&manifest), docs(MANIFEST));
    // The design form is the stored file, and saving it again passes the same checks.
    let file_again = text(
        client
            .download_pattern()
            .pattern_id(pattern.id.clone())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(file_again, pattern.pattern_file);
    let resaved = client
        .save_pattern()
        .body(input(
            json!({"id": pattern.id, "patternFile": file_again, "visibility": "public"}),
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resaved.status(), 200);
    let resaved = resaved.into_inner().remove(0);
    assert_eq!(
        (resaved.id.as_str(), resaved.visibility),
        (pattern.id.as_str(), PatternVisibility::Public)
    );
    assert_eq!(resaved.created_at, pattern.created_at);

    // A JSON List imports the same way; an import that is not YAML names the line.
    let list = json!({"kind": "List", "apiVersion": "v1", "items": docs(MANIFEST)});
    let from_json = client
        .import_pattern()
        .body(PatternImport {
            file: Some(serde_json::Value::from(b64(&list.to_string()))),
            file_name: None,
            url: None,
            name: Some("from-json".parse().unwrap()),
        })
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0);
    assert_eq!(
        (from_json.name.as_str(), from_json.components_count),
        ("from-json", 3)
    );
    let broken = client
        .import_pattern()
        .body(PatternImport {
            file: Some(serde_json::Value::from(b64("kind: Pod\nmetadata: [\n"))),
            file_name: None,
            url: None,
            name: None,
        })
        .send()
        .await;
    match broken {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => {
            assert_eq!(e.status(), 400);
            assert!(e.error.contains("line"), "{}", e.error);
        }
        other => panic!("{other:?}"),
    }

    // Saving and importing record events.
    let events = client
        .list_events()
        .category(vec!["pattern".to_string()])
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    let actions: Vec<&str> = events.events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["import", "save", "import"]);
    server.finish().await;
}

#[tokio::test]
async fn invalid_designs_are_refused_with_the_place_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let deployment = json!({"name": "api", "kind": "Deployment", "apiVersion": "apps/v1", "metadata": {"name": "api"},
        "spec": {"replicas": -1, "template": {"spec": {"containers": [{"name": "api"}]}}}});
    let cases = [
        ("name: x\ncomponents: [\n".to_string(), "line 3"),
        (
            design("dupes", json!([config_map("a"), config_map("a")])),
            "components[1] (a): the name \"a\" is already used by components[0]",
        ),
        (
            design(
                "unknown",
                json!([{"name": "f", "kind": "Frobnicator", "apiVersion": "v1", "metadata": {"name": "f"}}]),
            ),
            "components[0] (f): kind Frobnicator is not registered",
        ),
        (
            design(
                "wrong-api",
                json!([{"name": "d", "kind": "Deployment", "apiVersion": "v1", "metadata": {"name": "d"}}]),
            ),
            "not registered for apiVersion v1 (registered: apps/v1)",
        ),
        (
            design("schema", json!([deployment])),
            "components[0] (api) at /spec/replicas",
        ),
        (
            design("schema", json!([deployment])),
            "components[0] (api) at /spec/template/spec/containers/0",
        ),
        (
            design(
                "no-meta",
                json!([{"name": "c", "kind": "ConfigMap", "apiVersion": "v1"}]),
            ),
            "components[0] (c): `metadata` must be a mapping with `name`",
        ),
        (
            "components: []\n".to_string(),
            "`name` must be a non-empty string",
        ),
        ("- a\n- b\n".to_string(), "must be a mapping"),
    ];
    for (file, expected) in cases {
        let (status, error) = status_of(&server, json!({"patternFile": file})).await;
        assert_eq!(status, 400, "{expected}");
        let message = error["error"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{message:?} does not mention {expected:?}"
        );
    }
    for body in [
        json!({}),
        json!({"patternFile": ""}),
        json!({"patternFile": design("v", json!([])), "visibility": "secret"}),
    ] {
        assert_eq!(status_of(&server, body).await.0, 400);
    }
    let (status, _) = status_of(
        &server,
        json!({"id": "no-such", "patternFile": design("x", json!([]))}),
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(list(&server, "pagesize=all").await["totalCount"], 0);
    server.finish().await;
}

#[tokio::test]
async fn designs_are_listed_paged_searched_cloned_and_deleted() {
    let server = TestServer::start().await;
    let client = server.client();
    let mut made: Vec<Pattern> = Vec::new();
    for (i, name) in ["alpha", "bravo", "charlie", "delta", "echo_1", "echo%2"]
        .iter()
        .enumerate()
    {
        let visibility = if i % 2 == 0 { "private" } else { "public" };
        let saved = client
            .save_pattern().body(input(json!({"patternFile": design(name, json!([config_map("cm")])), "visibility": visibility}))).send()
            .await
            .unwrap();
        assert_eq!(saved.status(), 201);
        made.push(saved.into_inner().remove(0));
    }
    let first = list(&server, "page=0&pagesize=4").await;
    assert_eq!(
        (
            first["totalCount"].clone(),
            first["total_count"].clone(),
            first["page_size"].clone()
        ),
        (json!(6), json!(6), json!(4))
    );
    assert_eq!(names(&first), ["echo%2", "echo_1", "delta", "charlie"]);
    assert_eq!(
        names(&list(&server, "page=1&pageSize=4").await),
        ["bravo", "alpha"]
    );
    assert!(names(&list(&server, "page=2&pagesize=4").await).is_empty());
    assert_eq!(
        names(&list(&server, "pagesize=all&order=name%20asc").await),
        ["alpha", "bravo", "charlie", "delta", "echo%2", "echo_1"]
    );
    assert_eq!(
        names(&list(&server, "search=o_&pagesize=all").await),
        ["echo_1"]
    );
    assert_eq!(
        names(&list(&server, "search=O%25&pagesize=all").await),
        ["echo%2"]
    );
    let public = list(&server, "visibility=%5B%22public%22%5D&pagesize=all").await;
    assert_eq!(names(&public), ["echo%2", "delta", "bravo"]);
    assert_eq!(public["totalCount"], 3);
    let both = list(&server, "visibility=public&visibility=private&pagesize=all").await;
    assert_eq!(both["totalCount"], 6);
    for query in ["visibility=secret", "pagesize=0", "order=size"] {
        let response = server
            .http()
            .get(server.url(&format!("/api/pattern?{query}")))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{query}");
    }

    // Clone, get, delete one and several.
    let copy = client
        .clone_pattern()
        .pattern_id(made[1].id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(copy.name, "bravo (copy)");
    assert_ne!(copy.id, made[1].id);
    assert_eq!(copy.pattern_file, made[1].pattern_file);
    assert_eq!(copy.visibility, PatternVisibility::Private);
    assert_eq!(
        client
            .get_pattern()
            .pattern_id(copy.id.clone())
            .send()
            .await
            .unwrap()
            .into_inner(),
        copy
    );
    client
        .delete_pattern()
        .pattern_id(copy.id.clone())
        .send()
        .await
        .unwrap();
    let gone = client
        .get_pattern()
        .pattern_id(copy.id.clone())
        .send()
        .await;
    assert!(
        matches!(gone, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );
    let gone = client
        .delete_pattern()
        .pattern_id(copy.id.clone())
        .send()
        .await;
    assert!(
        matches!(gone, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );
    let deleted = client
        .delete_patterns().body(serde_json::from_value::<PatternsDelete>(json!({"patterns": [{"id": made[0].id, "name": "alpha"}, {"id": made[2].id}, {"id": "nope"}]})).unwrap()).send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(deleted.changed, 2);
    assert_eq!(list(&server, "pagesize=all").await["totalCount"], 4);
    server.finish().await;
}

#[tokio::test]
async fn private_designs_stay_private_and_public_ones_can_be_cloned() {
    let s = crate::auth::setup().await;
    let (alice, bob) = (s.client_as("alice"), s.client_as("bob"));
    let secret = alice
        .save_pattern()
        .body(input(
            json!({"patternFile": design("secret", json!([config_map("cm")]))}),
        ))
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0);
    let shared = alice
        .save_pattern().body(input(json!({"patternFile": design("shared", json!([config_map("cm")])), "visibility": "published"}))).send()
        .await
        .unwrap()
        .into_inner().remove(0);
    let not_found = |r: Result<(), meshery_client::rest::Error<meshery::models::MeshKitError>>| matches!(r, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404);
    assert!(not_found(
        bob.get_pattern()
            .pattern_id(secret.id.clone())
            .send()
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        bob.download_pattern()
            .pattern_id(secret.id.clone())
            .send()
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        bob.clone_pattern()
            .pattern_id(secret.id.clone())
            .send()
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        bob.delete_pattern()
            .pattern_id(secret.id.clone())
            .send()
            .await
            .map(|_| ())
    ));
    assert!(not_found(
        bob.delete_pattern()
            .pattern_id(shared.id.clone())
            .send()
            .await
            .map(|_| ())
    ));
    let steal = input(json!({"id": shared.id, "patternFile": design("mine now", json!([]))}));
    assert!(not_found(
        bob.save_pattern()
            .body(steal.clone())
            .send()
            .await
            .map(|_| ())
    ));
    let none = bob
        .delete_patterns()
        .body(
            serde_json::from_value::<PatternsDelete>(
                json!({"patterns": [{"id": secret.id}, {"id": shared.id}]}),
            )
            .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.changed, 0);

    // A published design can be read and cloned; the copy is Bob's and private.
    assert_eq!(
        bob.get_pattern()
            .pattern_id(shared.id.clone())
            .send()
            .await
            .unwrap()
            .into_inner()
            .name,
        "shared"
    );
    let copy = bob
        .clone_pattern()
        .pattern_id(shared.id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(copy.visibility, PatternVisibility::Private);
    assert_ne!(copy.user_id, shared.user_id);
    let bobs = bob
        .list_patterns()
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        bobs.patterns
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        [copy.id.as_str()]
    );
    let alices = alice
        .list_patterns()
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alices.total_count, 2);
    assert_eq!(
        alice
            .get_pattern()
            .pattern_id(shared.id.clone())
            .send()
            .await
            .unwrap()
            .into_inner()
            .name,
        "shared"
    );
    s.server.finish().await;
}

#[tokio::test]
async fn url_imports_fetch_under_the_target_policy() {
    let server = TestServer::start().await;
    let client = server.client();
    let files = axum::Router::new()
        .route("/shop.yaml", axum::routing::get(|| async { MANIFEST }))
        .route(
            "/missing.yaml",
            axum::routing::get(|| async { (axum::http::StatusCode::NOT_FOUND, "no") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, files).await.unwrap() });
    let by_url = |url: String| PatternImport {
        file: None,
        file_name: None,
        url: Some(url.parse().unwrap()),
        name: None,
    };

    let pattern = client
        .import_pattern()
        .body(by_url(format!("{base}/shop.yaml")))
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0);
    assert_eq!(
        (pattern.name.as_str(), pattern.components_count),
        ("shop", 3)
    );
    let status = |r: Result<
        meshery_client::rest::ResponseValue<Vec<Pattern>>,
        meshery_client::rest::Error<meshery::models::MeshKitError>,
    >| match r {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => e.status().as_u16(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        status(
            client
                .import_pattern()
                .body(by_url(format!("{base}/missing.yaml")))
                .send()
                .await
        ),
        502
    );
    assert_eq!(
        status(
            client
                .import_pattern()
                .body(by_url("http://169.254.169.254/latest/meta-data".into()))
                .send()
                .await
        ),
        403
    );
    assert_eq!(
        status(
            client
                .import_pattern()
                .body(by_url("file:///etc/passwd".into()))
                .send()
                .await
        ),
        400
    );
    let both = PatternImport {
        file: Some(serde_json::Value::from(b64(MANIFEST))),
        file_name: None,
        url: Some(format!("{base}/shop.yaml").parse().unwrap()),
        name: None,
    };
    assert_eq!(
        status(client.import_pattern().body(both.clone()).send().await),
        400
    );
    let neither = PatternImport {
        file: None,
        file_name: None,
        url: None,
        name: None,
    };
    assert_eq!(
        status(client.import_pattern().body(neither.clone()).send().await),
        400
    );
    assert_eq!(list(&server, "pagesize=all").await["totalCount"], 1);
    server.finish().await;
}

#[tokio::test]
async fn graphql_saves_fetches_and_streams_designs() {
    use cynic::SubscriptionBuilder;
    use futures_util::SinkExt;
    use meshery_client::graphql as gc;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    let server = TestServer::start().await;
    let post = |body: Value| {
        let http = server.http();
        let url = server.url("/api/system/graphql/query");
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
    let selector = gc::SelectorVariables {
        selector: gc::PageFilter {
            page: "0".into(),
            page_size: "10".into(),
            ..Default::default()
        },
    };

    // Live page first: it starts with the empty page, then follows a save.
    let mut request = format!("ws://{}/api/system/graphql/query", server.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let send = |v: Value| Message::Text(v.to_string().into());
    ws.send(send(json!({"type": "connection_init", "payload": {}})))
        .await
        .unwrap();
    let operation = serde_json::to_value(gc::SubscribeConfiguration::build(
        gc::ConfigurationVariables {
            pattern_selector: selector.selector.clone(),
        },
    ))
    .unwrap();
    let mut pages = Vec::new();
    let mut saved = None;
    while pages.len() < 2 {
        let message = tokio::time::timeout(std::time::Duration::from_secs(10), ws.next())
            .await
            .expect("subscription stalled");
        let Some(Ok(Message::Text(text))) = message else {
            continue;
        };
        let msg: Value = serde_json::from_str(&text).unwrap();
        match msg["type"].as_str() {
            Some("connection_ack") => ws
                .send(send(
                    json!({"id": "1", "type": "subscribe", "payload": operation}),
                ))
                .await
                .unwrap(),
            Some("next") => {
                let data: gc::SubscribeConfiguration =
                    serde_json::from_value(msg["payload"]["data"].clone()).unwrap();
                pages.push(
                    data.subscribe_configuration
                        .patterns
                        .expect("patternSelector given, patterns sent"),
                );
                if saved.is_none() {
                    let mutation = gc::SavePattern::build(gc::SavePatternVariables {
                        input: gc::PatternInput {
                            pattern_file: design("via-graphql", json!([config_map("cm")])),
                            visibility: Some("public".into()),
                            ..Default::default()
                        },
                    });
                    let answer = post(serde_json::to_value(mutation).unwrap()).await;
                    let data: gc::SavePattern =
                        serde_json::from_value(answer["data"].clone()).unwrap();
                    saved = Some(data.save_pattern);
                }
            }
            Some("ping") | Some("pong") => {}
            other => panic!("unexpected {other:?}: {msg}"),
        }
    }
    let saved = saved.unwrap();
    assert_eq!(
        (
            saved.name.as_str(),
            saved.visibility.as_str(),
            saved.components_count
        ),
        ("via-graphql", "public", 1)
    );
    assert_eq!(pages[0].total_count, 0);
    assert_eq!(
        pages[1]
            .patterns
            .iter()
            .map(|p| p.id.as_str())
            .collect::<Vec<_>>(),
        [saved.id.as_str()]
    );

    let fetched = post(serde_json::to_value(gc::FetchPatterns::build(selector)).unwrap()).await;
    let fetched: gc::FetchPatterns = serde_json::from_value(fetched["data"].clone()).unwrap();
    assert_eq!(fetched.fetch_patterns.patterns, pages[1].patterns);

    // The same checks as REST: an invalid design is an error, not a save.
    let bad = gc::SavePattern::build(gc::SavePatternVariables {
        input: gc::PatternInput {
            pattern_file: design("bad", json!([config_map("x"), config_map("x")])),
            ..Default::default()
        },
    });
    let answer = post(serde_json::to_value(bad).unwrap()).await;
    assert!(
        answer["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{answer}"
    );
    assert_eq!(
        answer["errors"][0]["extensions"]["code"],
        "meshery-server-1001"
    );
    server.finish().await;
}

/// An https server (self-signed certificate for 127.0.0.1) serving the manifest: its
/// handle (dropping it stops the server), URL and certificate as PEM.
async fn https_manifest_server() -> (meshery::serve::Served, String, String) {
    let router = axum::Router::new().fallback(|| async { MANIFEST });
    let (served, pem) = crate::harness::serve_https(router, &[b"http/1.1"]).await;
    let url = format!("https://{}/shop.yaml", served.addr);
    (served, url, pem)
}

#[tokio::test]
async fn https_imports_verify_the_certificate_against_the_trusted_roots() {
    let (_served, url, pem) = https_manifest_server().await;
    let import = PatternImport {
        file: None,
        file_name: None,
        url: Some(url.parse().unwrap()),
        name: None,
    };

    // Not in the built-in roots: refused, and the answer says it is the certificate.
    let server = TestServer::start().await;
    match server
        .client()
        .import_pattern()
        .body(import.clone())
        .send()
        .await
    {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => {
            assert_eq!(e.status(), 502);
            assert!(
                e.error.to_lowercase().contains("certificate"),
                "{}",
                e.error
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(list(&server, "pagesize=all").await["totalCount"], 0);
    server.finish().await;

    // With the operator's extra CA (`--ca-file`), the same import works.
    let server = TestServer::start_with(|c| c.extra_ca_pem = Some(pem.into_bytes())).await;
    let pattern = server
        .client()
        .import_pattern()
        .body(import.clone())
        .send()
        .await
        .unwrap()
        .into_inner()
        .remove(0);
    assert_eq!(
        (pattern.name.as_str(), pattern.components_count),
        ("shop", 3)
    );
    server.finish().await;
}

/// The forms Meshery's clients save designs in: the design object (Meshery's component
/// format included), the legacy `pattern_data` wrapper with the file's bytes, base64 or
/// text, a URL, Kubernetes manifests; a list in the answer; stored or not as each form
/// says; and the downloads by source type.
#[tokio::test]
async fn meshery_clients_save_designs_in_their_forms() {
    let server = TestServer::start().await;
    let http = server.http();
    let post = |body: Value| {
        http.post(server.url("/api/pattern"))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body.to_string())
            .send()
    };
    // Meshery's UI: the design object, in Meshery's component format.
    let meshery_design = json!({
        "name": "from-the-ui", "schemaVersion": "designs.meshery.io/v1beta1", "version": "0.0.1",
        "components": [{
            "id": "00000000-0000-0000-0000-000000000001", "displayName": "ui-config",
            "component": {"kind": "ConfigMap", "version": "v1"},
            "model": {"name": "kubernetes"},
            "configuration": {"data": {"greeting": "hello"}}
        }],
        "relationships": []
    });
    let saved = post(json!({"name": "from-the-ui", "designFile": meshery_design}))
        .await
        .unwrap();
    assert_eq!(saved.status(), 201);
    let saved: Value = saved.json().await.unwrap();
    assert_eq!(saved[0]["componentsCount"], 1, "{saved}");
    let id = saved[0]["id"].as_str().unwrap().to_string();
    // Its manifests: the component as a Kubernetes resource.
    let manifests = http
        .get(server.url(&format!("/api/pattern/download/{id}/Kubernetes%20Manifest")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let resource: Value = yaml_serde::from_str(&manifests).unwrap();
    assert_eq!(
        (
            resource["kind"].as_str(),
            resource["metadata"]["name"].as_str(),
            resource["data"]["greeting"].as_str()
        ),
        (Some("ConfigMap"), Some("ui-config"), Some("hello")),
        "{manifests}"
    );
    let same = http
        .get(server.url(&format!(
            "/api/pattern/download/{id}?export=kubernetes-manifest"
        )))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(same, manifests);
    let as_design = http
        .get(server.url(&format!("/api/pattern/download/{id}/Design")))
        .send()
        .await
        .unwrap();
    assert_eq!(as_design.status(), 200);
    let helm = http
        .get(server.url(&format!("/api/pattern/download/{id}/Helm%20Chart")))
        .send()
        .await
        .unwrap();
    assert_eq!(helm.status(), 404);
    // Meshery's exports: a Helm chart of the manifests, an OCI image of the design.
    let download = |query: &'static str| {
        let request = http.get(server.url(&format!("/api/pattern/download/{id}?{query}")));
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 200, "{query}");
            let header = |name: &str| r.headers()[name].to_str().unwrap().to_string();
            let (kind, disposition) = (header("content-type"), header("content-disposition"));
            (kind, disposition, r.bytes().await.unwrap().to_vec())
        }
    };
    let (kind, disposition, chart) = download("export=helm-chart").await;
    assert_eq!(kind, "application/x-gzip");
    assert!(disposition.ends_with(".tgz\""), "{disposition}");
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&chart[..]), &mut unpacked)
        .unwrap();
    let mut entries = tar::Archive::new(&unpacked[..]);
    let mut templates = String::new();
    for entry in entries.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().ends_with("templates/manifest.yaml") {
            std::io::Read::read_to_string(&mut entry, &mut templates).unwrap();
        }
    }
    assert_eq!(templates, manifests, "no braces to escape here");
    assert_eq!(
        download("export=Helm%20Chart&oci=true").await.2,
        chart,
        "export wins"
    );
    let (kind, disposition, image) = download("oci=true").await;
    assert_eq!(kind, "application/tar");
    assert!(disposition.ends_with(".tar\""), "{disposition}");
    // Meshery's import reads it back: so does ours.
    let reimported: Value = http
        .post(server.url("/api/pattern/import"))
        .json(&json!({
            "file": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &image),
            "fileName": "from-the-ui.tar",
            "name": "round trip"
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(reimported[0]["name"], "round trip", "{reimported}");
    assert_eq!(reimported[0]["componentsCount"], 1);

    // mesheryctl's legacy wrapper: stored only with save: true; the file as base64 or bytes.
    let file = design("legacy", json!([config_map("cm")]));
    let as_bytes: Vec<u8> = file.clone().into_bytes();
    let before = list(&server, "pagesize=all").await["totalCount"]
        .as_i64()
        .unwrap();
    for (body, stored) in [
        (
            json!({"pattern_data": {"name": "legacy-b64", "pattern_file": b64(&file)}, "save": true}),
            true,
        ),
        (
            json!({"patternData": {"name": "legacy-bytes", "patternFile": as_bytes}, "save": true}),
            true,
        ),
        (
            json!({"pattern_data": {"name": "not-saved", "pattern_file": file}}),
            false,
        ),
        (json!({"K8sManifest": MANIFEST}), false),
    ] {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), if stored { 201 } else { 200 }, "{body}");
        let answer: Value = r.json().await.unwrap();
        assert_eq!(answer.as_array().map(Vec::len), Some(1), "{answer}");
        assert_eq!(
            answer[0]["id"].as_str().is_some_and(|i| !i.is_empty()),
            stored,
            "{answer}"
        );
        assert!(
            answer[0]["patternFile"]
                .as_str()
                .unwrap()
                .contains("components"),
            "{answer}"
        );
    }
    assert_eq!(
        list(&server, "pagesize=all").await["totalCount"]
            .as_i64()
            .unwrap(),
        before + 2
    );
    // Exactly one source, and a file that is no design says so.
    for (body, says) in [
        (
            json!({"patternFile": file, "url": "http://127.0.0.1:9/x"}),
            "exactly one",
        ),
        (json!({"save": true}), "exactly one"),
        (json!({"patternFile": "just words"}), "must be a mapping"),
    ] {
        let r = post(body.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{body}");
        let e: Value = r.json().await.unwrap();
        assert!(e["error"].as_str().unwrap().contains(says), "{e}");
    }
    // The source types mesheryctl offers for import.
    let types: Value = http
        .get(server.url("/api/pattern/types"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(types[0]["designType"], "Design");
    server.finish().await;
}

#[tokio::test]
async fn graphql_catalog_lists_published_designs_and_configuration_takes_meshery_selectors() {
    let server = TestServer::start().await;
    let save =
        "mutation ($input: PatternInput!) { savePattern(input: $input) { id owner user_id } }";
    let mut ids = Vec::new();
    for (name, visibility) in [("mine", "private"), ("shared", "published")] {
        let saved = server
            .graphql(
                save,
                json!({"input": {
                    "patternFile": design(name, json!([config_map(name)])), "visibility": visibility}}),
            )
            .await;
        assert_eq!(
            saved["data"]["savePattern"]["owner"], saved["data"]["savePattern"]["user_id"],
            "{saved}"
        );
        ids.push(saved["data"]["savePattern"]["id"].clone());
    }

    // The catalog: the published design only, with Meshery's numbers for page and pagesize.
    let catalog = server.graphql("query ($s: CatalogSelector!) { fetchPatternCatalogContent(selector: $s) { id name visibility pattern_file } }", json!({"s": {"search": "", "order": "", "page": 0, "pagesize": 0}})).await;
    let listed = catalog["data"]["fetchPatternCatalogContent"]
        .as_array()
        .unwrap_or_else(|| panic!("{catalog}"));
    assert_eq!(listed.len(), 1, "{catalog}");
    assert_eq!(
        (&listed[0]["id"], &listed[0]["visibility"]),
        (&ids[1], &json!("published"))
    );
    let bad = server
        .graphql(
            "query ($s: CatalogSelector!) { fetchPatternCatalogContent(selector: $s) { id } }",
            json!({"s": {"search": "", "order": "", "page": true, "pagesize": 0}}),
        )
        .await;
    assert!(
        bad["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("page must be a string or a number")),
        "{bad}"
    );

    // subscribeConfiguration: each page answers its selector; none at all is refused.
    let mut filters_only = crate::perf::Subscription::open(
        &server,
        json!({"query": "subscription { subscribeConfiguration(filterSelector: {page: \"0\", pageSize: \"5\"}) { patterns { total_count } filters { page_size total_count filters { id } } } }"}),
    )
    .await;
    let first = filters_only.next().await.unwrap();
    assert_eq!(
        first["subscribeConfiguration"],
        json!({"patterns": null, "filters": {"page_size": 5, "total_count": 0, "filters": []}})
    );
    let mut both = crate::perf::Subscription::open(
        &server,
        json!({"query": "subscription { subscribeConfiguration(patternSelector: {page: \"0\", pageSize: \"10\"}, applicationSelector: {page: \"0\", pageSize: \"10\"}) { patterns { total_count patterns { id canSupport type { Valid } } } applications { total_count } } }"}),
    )
    .await;
    let first = both.next().await.unwrap();
    assert_eq!(
        first["subscribeConfiguration"]["patterns"]["total_count"],
        2
    );
    assert_eq!(
        first["subscribeConfiguration"]["applications"]["total_count"],
        0
    );
    assert_eq!(
        first["subscribeConfiguration"]["patterns"]["patterns"][0]["canSupport"],
        true
    );
    let mut none = crate::perf::Subscription::open(
        &server,
        json!({"query": "subscription { subscribeConfiguration { patterns { total_count } } }"}),
    )
    .await;
    let refused = none.message().await;
    assert!(
        refused.to_string().contains("give patternSelector"),
        "{refused}"
    );

    // The registry's summary: components per model, as the registry lists them.
    let summary = server.graphql("{ getMeshModelSummary(selector: {type: \"components\"}) { components { name count } relationships { name } } }", json!({})).await;
    let components = summary["data"]["getMeshModelSummary"]["components"]
        .as_array()
        .unwrap_or_else(|| panic!("{summary}"));
    let kubernetes = components
        .iter()
        .find(|c| c["name"] == "kubernetes")
        .unwrap_or_else(|| panic!("{summary}"));
    let registered = server
        .client()
        .list_model_components()
        .model("kubernetes")
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner()
        .total_count;
    assert_eq!(kubernetes["count"], registered);
    assert!(summary["data"]["getMeshModelSummary"]["relationships"].is_null());
}
