//! Credentials and connections of kinds other than Kubernetes: sealed and masked
//! credentials, Meshery's registration steps against a fake Prometheus, listings merged
//! with Kubernetes contexts, cancellation, and per-user ownership.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::harness::TestServer;

const PROM_TOKEN: &str = "prom-token-that-must-stay-sealed";

/// A fake Prometheus: its build-info endpoint answers only the right bearer token and
/// remembers every Authorization header it saw.
async fn fake_prometheus() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/api/v1/status/buildinfo",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let record = record.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let ok = auth == format!("Bearer {PROM_TOKEN}");
                record.lock().unwrap().push(auth);
                if ok {
                    (
                        axum::http::StatusCode::OK,
                        axum::Json(json!({"status": "success", "data": {"version": "2.53.0"}})),
                    )
                } else {
                    (
                        axum::http::StatusCode::UNAUTHORIZED,
                        axum::Json(json!({"status": "error"})),
                    )
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// Sends `body` as JSON (or as text when it is a string) and returns status and JSON.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http.request(method, url);
    match body {
        Some(Value::String(text)) => {
            request = request
                .header("content-type", "text/plain;charset=UTF-8")
                .body(text)
        }
        Some(b) => request = request.json(&b),
        None => {}
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn registration(id: &str, url: &str, status: &str, token: &str) -> Value {
    json!({
        "id": id, "kind": "Prometheus", "name": "prometheus-local", "type": "telemetry",
        "subType": "metrics", "metadata": {"url": url, "name": "prometheus-local"},
        "credentialSecret": {"name": "prom-cred", "secret": token},
        "skipCredentialVerification": false, "status": status
    })
}

#[tokio::test]
async fn credentials_are_sealed_masked_when_listed_and_changed_in_place() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().to_path_buf();
    let server = TestServer::start_with(|c| c.home = path.clone()).await;
    let client = server.client();
    let http = server.http();
    let made = client
        .save_credential()
        .body(
            serde_json::from_value::<meshery::models::CredentialInput>(json!({
                "name": "grafana-key", "type": "grafana", "secret": {"secret": "g-key-1"}
            }))
            .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(uuid::Uuid::parse_str(&made.id).is_ok(), "{}", made.id);
    assert_eq!(made.secret["secret"], "********");
    // mesheryctl's body: snake_case, a client-made id, Go's zero NullTime.
    let mine = "5b6f1a2e-3c4d-4e5f-8a9b-0c1d2e3f4a5b";
    let ctl = json!({
        "id": mine, "name": "compat-cred", "user_id": "someone-else", "type": "token",
        "secret": {"key": "s3cr3t-value"}, "created_at": "2025-01-01T00:00:00Z",
        "updated_at": "2025-01-01T00:00:00Z", "deleted_at": {"Time": "0001-01-01T00:00:00Z", "Valid": false}
    });
    let url = server.url("/api/integrations/credentials");
    let (status, body) = call(&http, reqwest::Method::POST, url.clone(), Some(ctl.clone())).await;
    assert_eq!((status, body["id"].as_str()), (200, Some(mine)), "{body}");
    assert_ne!(body["user_id"], "someone-else", "{body}");
    let (status, body) = call(&http, reqwest::Method::POST, url.clone(), Some(ctl)).await;
    assert_eq!(status, 409, "{body}");

    // Listed: masked, with Meshery's snake_case keys beside the schema's.
    let (status, page) = call(
        &http,
        reqwest::Method::GET,
        format!("{url}?order=name%20asc"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(page["total_count"], 2, "{page}");
    let listed = page["credentials"].as_array().unwrap();
    assert_eq!(listed[0]["name"], "compat-cred");
    assert_eq!(listed[0]["secret"], json!({"key": "********"}));
    assert_eq!(listed[1]["secret"], json!({"secret": "********"}));
    for key in ["created_at", "user_id", "createdAt", "userId"] {
        assert!(listed[0].get(key).is_some(), "{key}: {}", listed[0]);
    }
    let text = page.to_string();
    assert!(
        !text.contains("s3cr3t-value") && !text.contains("g-key-1"),
        "{text}"
    );
    let found = client
        .list_credentials()
        .search("GRAF")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.total_count, 1);
    // Sealed at rest.
    let database = crate::harness::database_bytes(&server.app.config).await;
    for secret in ["s3cr3t-value", "g-key-1"] {
        assert!(
            !database
                .windows(secret.len())
                .any(|w| w == secret.as_bytes()),
            "{secret} is stored in clear"
        );
    }

    // Its owner reads it in clear (the UI reads a Grafana key from secret.secret).
    let one = client
        .get_credential()
        .credential_id(made.id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one.secret["secret"], "g-key-1");

    // A listing sent back keeps the secret; a new secret replaces it.
    let (status, body) = call(
        &http,
        reqwest::Method::PUT,
        url.clone(),
        Some(json!({"id": made.id, "name": "grafana-main", "type": "grafana", "secret": {"secret": "********"}})),
    )
    .await;
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("grafana-main")),
        "{body}"
    );
    let kept = client
        .get_credential()
        .credential_id(made.id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (kept.name.as_str(), &kept.secret["secret"]),
        ("grafana-main", &json!("g-key-1"))
    );
    let (status, _) = call(
        &http,
        reqwest::Method::PUT,
        url.clone(),
        Some(json!({"id": made.id, "name": "grafana-main", "type": "grafana", "secret": {"secret": "g-key-2"}})),
    )
    .await;
    assert_eq!(status, 200);
    let changed = client
        .get_credential()
        .credential_id(made.id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.secret["secret"], "g-key-2");

    // Bad input: clear 4xx.
    for (method, target, body, want) in [
        (
            reqwest::Method::POST,
            url.clone(),
            Some(json!({"type": "x"})),
            400,
        ),
        (
            reqwest::Method::POST,
            url.clone(),
            Some(json!({"name": "  ", "type": "x"})),
            400,
        ),
        (
            reqwest::Method::POST,
            url.clone(),
            Some(json!({"id": "nope", "name": "n", "type": "x"})),
            400,
        ),
        (
            reqwest::Method::PUT,
            url.clone(),
            Some(json!({"name": "n", "type": "x"})),
            400,
        ),
        (
            reqwest::Method::PUT,
            url.clone(),
            Some(json!({"id": uuid::Uuid::new_v4(), "name": "n", "type": "x"})),
            404,
        ),
        (reqwest::Method::DELETE, url.clone(), None, 400),
        (reqwest::Method::GET, format!("{url}/not-a-uuid"), None, 404),
        (
            reqwest::Method::GET,
            format!("{url}?order=secret"),
            None,
            400,
        ),
    ] {
        let (status, body) = call(&http, method.clone(), target.clone(), body).await;
        assert_eq!(status, want, "{method} {target}: {body}");
        assert!(body["code"].is_string(), "{body}");
    }

    // Deleted by query (the UI's credential_id, the schemas' credentialId) or by path.
    let (status, _) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{url}?credential_id={}", made.id),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, body) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{url}/{mine}"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["secret"]["key"].as_str()),
        (200, Some("********"))
    );
    let (status, _) = call(
        &http,
        reqwest::Method::DELETE,
        format!("{url}?credentialId={mine}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(
        client
            .list_credentials()
            .send()
            .await
            .unwrap()
            .into_inner()
            .total_count,
        0
    );
    server.finish().await;
}

#[tokio::test]
async fn a_prometheus_is_registered_checked_connected_and_listed_with_contexts() {
    let (prometheus, seen) = fake_prometheus().await;
    let (api, _) = crate::kubernetes::fake_api_server().await;
    let server = TestServer::start().await;
    let http = server.http();
    let register = server.url("/api/integrations/connections/register");
    let post = |body: Value| call(&http, reqwest::Method::POST, register.clone(), Some(body));

    // `initialize` needs the registry's definition of the kind; the catalogue has none.
    let (status, body) = post(json!({"kind": "prometheus", "status": "initialize"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("prometheusConnection"),
        "{body}"
    );

    // A wrong token fails the check, naming what Prometheus answered; nothing is stored.
    let id = uuid::Uuid::new_v4().to_string();
    let (status, body) = post(registration(&id, &prometheus, "register", "wrong")).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["error"].as_str().unwrap().contains("401"), "{body}");
    assert!(!body.to_string().contains("wrong\""), "{body}");
    let (status, _) = call(
        &http,
        reqwest::Method::GET,
        server.url(&format!("/api/integrations/connections/{id}")),
        None,
    )
    .await;
    assert_eq!(status, 404);

    // The UI's wizard: register, then connect with the same payload and id.
    let (status, body) = post(registration(&id, &prometheus, "register", PROM_TOKEN)).await;
    assert_eq!(
        (status, body["status"].as_str(), body["id"].as_str()),
        (200, Some("registered"), Some(id.as_str())),
        "{body}"
    );
    assert_eq!(body["credential"]["secret"]["secret"], "********");
    assert_eq!(body["credential"]["name"], "prom-cred");
    let (status, body) = post(registration(&id, &prometheus, "connect", PROM_TOKEN)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("connected")),
        "{body}"
    );
    assert_eq!(
        seen.lock().unwrap().as_slice(),
        ["Bearer wrong", &format!("Bearer {PROM_TOKEN}")],
        "checked once, when registered"
    );
    // Registering a connected one again is refused.
    let (status, _) = post(registration(&id, &prometheus, "register", PROM_TOKEN)).await;
    assert_eq!(status, 409);

    // With two Kubernetes contexts: one listing, merged in the asked order.
    let kubeconfig = crate::kubernetes::kubeconfig(&api, &crate::kubernetes::closed_port().await);
    let uploaded = http
        .post(server.url("/api/system/kubernetes"))
        .body(kubeconfig)
        .send()
        .await
        .unwrap();
    assert!(uploaded.status().is_success());
    let client = server.client();
    let all = client
        .list_connections()
        .order("name asc")
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = all.connections.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["alive", "dead", "prometheus-local"]);
    assert_eq!(all.total_count, 3);
    assert_eq!(all.status_summary.values().sum::<i64>(), 3);
    let second = client
        .list_connections()
        .order("name desc")
        .pagesize("1")
        .page(1)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (
            second.connections.len(),
            second.connections[0].name.as_str(),
            second.total_count
        ),
        (1, "dead", 3)
    );
    // The UI's dashboard query: JSON arrays, Prometheus and Grafana, snake_case keys.
    let (status, page) = call(
        &http,
        reqwest::Method::GET,
        server.url("/api/integrations/connections?page=0&pagesize=2&status=%5B%22connected%22%2C%22registered%22%5D&kind=%5B%22prometheus%22%2C%22grafana%22%5D"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    let found = &page["connections"];
    assert_eq!(found.as_array().map(Vec::len), Some(1), "{page}");
    assert_eq!(found[0]["kind"], "prometheus");
    assert_eq!(found[0]["metadata"]["url"], prometheus.as_str());
    assert_eq!(found[0]["credential_id"], id.as_str());
    assert_eq!(found[0]["sub_type"], "metrics");

    // Meshery's `filter` (`<key> <value>`) and `orgId` (one of the user's organizations).
    let names_of = |query: &'static str| {
        let (http, url) = (
            http.clone(),
            server.url(&format!(
                "/api/integrations/connections?order=name%20asc&{query}"
            )),
        );
        async move {
            let (status, page) = call(&http, reqwest::Method::GET, url, None).await;
            let names: Vec<String> = page["connections"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["name"].as_str().map(String::from))
                .collect();
            (status, names)
        }
    };
    assert_eq!(
        names_of("filter=sub_type%20metrics").await,
        (200, vec!["prometheus-local".to_string()])
    );
    assert_eq!(
        names_of("filter=sub_type%20orchestration").await.1,
        ["alive", "dead"]
    );
    assert_eq!(
        names_of("filter=type%20platform&kind=prometheus").await.1,
        Vec::<String>::new()
    );
    assert_eq!(
        names_of("filter=deleted_at%20Deleted").await,
        (200, Vec::new())
    );
    assert_eq!(names_of("filter=deleted_at%20Active").await.1.len(), 3);
    assert_eq!(names_of("filter=owner%20me").await.0, 400);
    let org = client
        .get_orgs()
        .send()
        .await
        .unwrap()
        .into_inner()
        .organizations[0]
        .id
        .clone();
    let (status, page) = call(
        &http,
        reqwest::Method::GET,
        server.url(&format!("/api/integrations/connections?orgId={org}")),
        None,
    )
    .await;
    assert_eq!(
        (status, page["total_count"].as_i64()),
        (200, Some(3)),
        "{page}"
    );
    assert_eq!(
        names_of("orgId=00000000-0000-0000-0000-000000000000")
            .await
            .0,
        404
    );

    // Its credential: the owner reads it; it cannot go while the connection uses it.
    let credential = client
        .get_credential()
        .credential_id(id.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(credential.secret["secret"], PROM_TOKEN);
    assert!(!credential.secret.contains_key("name"));
    let (status, body) = call(
        &http,
        reqwest::Method::DELETE,
        server.url(&format!("/api/integrations/credentials?credentialId={id}")),
        None,
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("prometheus-local"),
        "{body}"
    );

    // PUT: state, name and metadata change; kind does not.
    let connections = server.url(&format!("/api/integrations/connections/{id}"));
    let (status, body) = call(
        &http,
        reqwest::Method::PUT,
        connections.clone(),
        Some(json!({"status": "ignored", "name": "prom", "metadata": {"url": prometheus, "boards": 2}})),
    )
    .await;
    assert_eq!(
        (
            status,
            body["status"].as_str(),
            body["name"].as_str(),
            &body["metadata"]["boards"]
        ),
        (200, Some("ignored"), Some("prom"), &json!(2)),
        "{body}"
    );
    let (status, _) = call(
        &http,
        reqwest::Method::PUT,
        connections.clone(),
        Some(json!({"kind": "grafana"})),
    )
    .await;
    assert_eq!(status, 400);

    // Cancelling leaves a connected (here: ignored) one alone; a registered one goes,
    // with the credential its registration made.
    let cancel = |body: Value| call(&http, reqwest::Method::DELETE, register.clone(), Some(body));
    let (status, body) = cancel(Value::String(json!({"id": id}).to_string())).await;
    assert_eq!(
        (status, body["cancelled"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let other = uuid::Uuid::new_v4().to_string();
    let (status, _) = post(registration(&other, &prometheus, "register", PROM_TOKEN)).await;
    assert_eq!(status, 200);
    let (status, body) = cancel(Value::String(json!({"id": other}).to_string())).await;
    assert_eq!(
        (status, body["cancelled"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    for path in [
        format!("/api/integrations/connections/{other}"),
        format!("/api/integrations/credentials/{other}"),
    ] {
        let (status, _) = call(&http, reqwest::Method::GET, server.url(&path), None).await;
        assert_eq!(status, 404, "{path}");
    }
    let (status, body) = call(
        &http,
        reqwest::Method::DELETE,
        server.url(&format!(
            "/api/integrations/connections/register/{}",
            uuid::Uuid::new_v4()
        )),
        None,
    )
    .await;
    assert_eq!((status, body["cancelled"].as_bool()), (200, Some(false)));

    // Bad steps: clear 4xx.
    for (body, want) in [
        (
            json!({"status": "register", "kind": "kubernetes", "id": uuid::Uuid::new_v4()}),
            400,
        ),
        (
            json!({"status": "register", "id": uuid::Uuid::new_v4()}),
            400,
        ),
        (
            json!({"status": "register", "kind": "x", "id": "not-a-uuid"}),
            400,
        ),
        (
            json!({"status": "ignore", "kind": "x", "id": uuid::Uuid::new_v4()}),
            404,
        ),
        (json!({"status": "teleport", "kind": "x"}), 400),
        (
            json!({"status": "register", "kind": "x", "credentialId": uuid::Uuid::new_v4()}),
            400,
        ),
    ] {
        let (status, answer) = post(body.clone()).await;
        assert_eq!(status, want, "{body}: {answer}");
    }
    // Unchecked registration of a kind with no URL; then a direct POST of another.
    let (status, body) = post(json!({"status": "register", "kind": "github", "name": "gh", "skipCredentialVerification": true})).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("registered")),
        "{body}"
    );
    let made = client
        .create_connection()
        .body(
            serde_json::from_value::<meshery::models::ConnectionInput>(json!({
                "name": "grafana", "kind": "Grafana", "type": "telemetry", "subType": "dashboards",
                "status": "connected", "metadata": {"url": "http://grafana.invalid"},
                "credentialId": id
            }))
            .unwrap(),
        )
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (made.kind.as_str(), made.credential_id.as_deref()),
        ("grafana", Some(id.as_str()))
    );

    // DELETE removes the connection; its credential stays, and then may go.
    client
        .delete_connection()
        .connection_id(made.id.clone())
        .send()
        .await
        .unwrap();
    client
        .delete_connection()
        .connection_id(id.clone())
        .send()
        .await
        .unwrap();
    let (status, _) = call(&http, reqwest::Method::GET, connections, None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &http,
        reqwest::Method::DELETE,
        server.url(&format!("/api/integrations/credentials?credentialId={id}")),
        None,
    )
    .await;
    assert_eq!(status, 204);
    server.finish().await;
}

#[tokio::test]
async fn another_user_sees_changes_and_cancels_none_of_them() {
    let s = crate::auth::setup().await;
    let (prometheus, _) = fake_prometheus().await;
    let as_user = |user: &str| {
        let mut h = reqwest::header::HeaderMap::new();
        h.insert(
            "authorization",
            format!("Bearer {}", s.token(user)).parse().unwrap(),
        );
        h.insert("meshery-provider", "Reference".parse().unwrap());
        crate::harness::client_builder()
            .default_headers(h)
            .build()
            .unwrap()
    };
    let (alice, bob) = (as_user("alice"), as_user("bob"));
    let url = |p: &str| s.server.url(p);
    let id = uuid::Uuid::new_v4().to_string();
    let (status, _) = call(
        &alice,
        reqwest::Method::POST,
        url("/api/integrations/connections/register"),
        Some(registration(&id, &prometheus, "register", PROM_TOKEN)),
    )
    .await;
    assert_eq!(status, 200);
    // Bob has nothing, and reaches nothing of Alice's by its id.
    for path in [
        "/api/integrations/connections",
        "/api/integrations/credentials",
    ] {
        let (status, page) = call(&bob, reqwest::Method::GET, url(path), None).await;
        assert_eq!(
            (status, page["totalCount"].as_i64()),
            (200, Some(0)),
            "{path}: {page}"
        );
    }
    for (method, path, body) in [
        (
            reqwest::Method::GET,
            format!("/api/integrations/connections/{id}"),
            None,
        ),
        (
            reqwest::Method::PUT,
            format!("/api/integrations/connections/{id}"),
            Some(json!({"status": "ignored"})),
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/integrations/connections/{id}"),
            None,
        ),
        (
            reqwest::Method::GET,
            format!("/api/integrations/credentials/{id}"),
            None,
        ),
        (
            reqwest::Method::DELETE,
            format!("/api/integrations/credentials/{id}"),
            None,
        ),
        (
            reqwest::Method::PUT,
            "/api/integrations/credentials".into(),
            Some(json!({"id": id, "name": "mine", "type": "x", "secret": {"secret": "stolen"}})),
        ),
        (
            reqwest::Method::POST,
            "/api/integrations/connections/register".into(),
            Some(json!({"id": id, "status": "ignore"})),
        ),
    ] {
        let (status, body) = call(&bob, method.clone(), url(&path), body).await;
        assert!(
            status == 404 || status == 400,
            "{method} {path}: {status} {body}"
        );
    }
    let (status, body) = call(
        &bob,
        reqwest::Method::DELETE,
        url(&format!("/api/integrations/connections/register/{id}")),
        None,
    )
    .await;
    assert_eq!((status, body["cancelled"].as_bool()), (200, Some(false)));
    // Bob's own credential may take the same id: ids are per user.
    let (status, _) = call(
        &bob,
        reqwest::Method::POST,
        url("/api/integrations/credentials"),
        Some(json!({"id": id, "name": "bob's", "type": "token", "secret": {"token": "b"}})),
    )
    .await;
    assert_eq!(status, 200);
    // Alice's are unchanged.
    let (status, connection) = call(
        &alice,
        reqwest::Method::GET,
        url(&format!("/api/integrations/connections/{id}")),
        None,
    )
    .await;
    assert_eq!(
        (status, connection["status"].as_str()),
        (200, Some("registered"))
    );
    let (status, credential) = call(
        &alice,
        reqwest::Method::GET,
        url(&format!("/api/integrations/credentials/{id}")),
        None,
    )
    .await;
    assert_eq!(
        (
            status,
            credential["secret"]["secret"].as_str(),
            credential["name"].as_str()
        ),
        (200, Some(PROM_TOKEN), Some("prom-cred"))
    );
    s.finish().await;
}
