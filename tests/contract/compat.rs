//! The compatibility corpus (tests/compat/, see its README): every call Meshery's UI and
//! mesheryctl make, replayed against a real server as those clients send it (raw HTTP with
//! their cookies, not our generated client: the point is their bytes, not ours), checking
//! the status they accept and every value they read. Entries marked `xfail` must fail, so
//! the mark goes when the server catches up.

use std::collections::{BTreeMap, HashMap};

use base64::Engine;
use serde_json::{Value, json};

use crate::harness::TestServer;

/// One call of a client, read from its corpus file.
#[derive(Debug)]
struct Entry {
    file: String,
    id: String,
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Value>,
    /// A body that is not JSON, and its content type (none when the client sets none).
    body_text: Option<(String, Option<String>)>,
    multipart: Vec<(String, String)>,
    status: Vec<u16>,
    reads: Vec<(String, String)>,
    returns: Option<String>,
    xfail: Option<String>,
    /// Why the call is replayed as a remote provider's user (ours, like `xfail`): what
    /// it reaches exists only at a remote provider (its teams, its saved views).
    remote: Option<String>,
}

fn strings(v: &Value) -> Vec<(String, String)> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let s = match v {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    (k.clone(), s)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn load() -> Vec<Entry> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yaml") && (n.starts_with("mesheryctl") || n.starts_with("ui")))
        .collect();
    files.sort();
    let mut entries = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(format!("{dir}/{file}")).unwrap();
        let doc: Value = yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
        for call in doc["calls"]
            .as_array()
            .unwrap_or_else(|| panic!("{file}: no calls"))
        {
            let s = |k: &str| call.get(k).and_then(Value::as_str).map(String::from);
            let id = s("id").unwrap_or_else(|| panic!("{file}: an entry without id"));
            let status = match call.get("status") {
                Some(Value::Array(codes)) => codes
                    .iter()
                    .filter_map(Value::as_u64)
                    .map(|c| c as u16)
                    .collect(),
                Some(Value::Number(n)) => vec![n.as_u64().unwrap_or(0) as u16],
                _ => vec![200],
            };
            entries.push(Entry {
                file: file.clone(),
                method: s("method").unwrap_or_else(|| "GET".into()).to_uppercase(),
                path: s("path").unwrap_or_else(|| panic!("{file}: {id}: no path")),
                query: strings(&call["query"]),
                headers: strings(&call["headers"]),
                body: call.get("body").filter(|b| !b.is_null()).cloned(),
                body_text: s("bodyText").map(|t| (t, s("contentType"))),
                multipart: strings(&call["multipart"]),
                status,
                reads: strings(&call["reads"]),
                returns: s("returns"),
                xfail: s("xfail"),
                remote: s("remote"),
                id,
            });
        }
    }
    entries
}

/// One GraphQL operation of Meshery's UI (`tests/compat/graphql-ui.yaml`): its document
/// and variables as the UI sends them, and what it reads from `data`.
#[derive(Debug)]
struct GqlEntry {
    id: String,
    /// `query`, `mutation` or `subscription`.
    operation: String,
    document: String,
    variables: Value,
    reads: Vec<(String, String)>,
    xfail: Option<String>,
    /// `empty: {at, why}`: the list at `at` must be empty (the server keeps none of what
    /// it lists, for the reason given), so the reads inside it are not checked.
    empty: Option<String>,
    /// `refused: {code, why}`: the server deliberately answers this with an error of that
    /// code (what the UI shows as a failure), for the reason given.
    refused: Option<String>,
}

const GRAPHQL_FILE: &str = "graphql-ui.yaml";

fn load_graphql() -> Vec<GqlEntry> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/compat/graphql-ui.yaml");
    let text = std::fs::read_to_string(path).unwrap();
    let doc: Value = yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{GRAPHQL_FILE}: {e}"));
    doc["calls"]
        .as_array()
        .unwrap_or_else(|| panic!("{GRAPHQL_FILE}: no calls"))
        .iter()
        .map(|call| {
            let s = |k: &str| call.get(k).and_then(Value::as_str).map(String::from);
            let id = s("id").unwrap_or_else(|| panic!("{GRAPHQL_FILE}: an entry without id"));
            GqlEntry {
                operation: s("operation").unwrap_or_else(|| panic!("{id}: no operation")),
                document: s("document").unwrap_or_else(|| panic!("{id}: no document")),
                variables: call.get("variables").cloned().unwrap_or(json!({})),
                reads: strings(&call["reads"]),
                xfail: s("xfail"),
                empty: call["empty"].get("at").and_then(Value::as_str).map(|at| {
                    assert!(
                        call["empty"]["why"].as_str().is_some_and(|w| !w.is_empty()),
                        "{id}: empty needs a why"
                    );
                    at.to_string()
                }),
                refused: call["refused"]
                    .get("code")
                    .and_then(Value::as_str)
                    .map(|code| {
                        assert!(
                            call["refused"]["why"]
                                .as_str()
                                .is_some_and(|w| !w.is_empty()),
                            "{id}: refused needs a why"
                        );
                        code.to_string()
                    }),
                id,
            }
        })
        .collect()
}

/// The next JSON text message within `wait`, `None` when none came.
async fn within(ws: &mut crate::harness::Ws, wait: std::time::Duration) -> Option<Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => return serde_json::from_str(&t).ok(),
            Ok(Some(Ok(Message::Close(_)))) | Ok(None) | Ok(Some(Err(_))) | Err(_) => return None,
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The `data` of a subscription's first message, as the UI's client (`graphql-ws`, the
/// `graphql-transport-ws` subprotocol, cookie session) gets it. A subscription that only
/// reports what happens next (events) is given something to report: an event.
async fn first_data(
    server: &TestServer,
    cookie: &str,
    e: &GqlEntry,
    variables: &Value,
    subprotocol: &str,
) -> Result<Value, String> {
    use crate::harness::{ws_open, ws_send};
    // The legacy protocol (subscriptions-transport-ws, Meshery's older UI) says start and
    // data where the current one says subscribe and next.
    let legacy = subprotocol == "graphql-ws";
    let (mut ws, protocol) =
        ws_open(server.addr, subprotocol, &[("cookie", cookie.to_string())]).await;
    if protocol != subprotocol {
        return Err(format!("the server answered subprotocol {protocol:?}"));
    }
    ws_send(&mut ws, json!({"type": "connection_init", "payload": {}})).await;
    let ack = within(&mut ws, std::time::Duration::from_secs(5)).await;
    if ack.as_ref().and_then(|a| a["type"].as_str()) != Some("connection_ack") {
        return Err(format!("no connection_ack: {ack:?}"));
    }
    ws_send(
        &mut ws,
        json!({"id": "1", "type": if legacy { "start" } else { "subscribe" },
               "payload": {"query": e.document, "variables": variables}}),
    )
    .await;
    let mut poked = false;
    loop {
        let Some(message) = within(&mut ws, std::time::Duration::from_secs(2)).await else {
            if poked {
                return Err("no message".into());
            }
            poked = true;
            server
                .client()
                .create_event()
                .body(crate::harness::event_input("compat replay"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            continue;
        };
        match message["type"].as_str() {
            Some("next" | "data") if message["payload"]["errors"].is_null() => {
                return Ok(message["payload"]["data"].clone());
            }
            Some("next" | "data") => return Err(messages(&message["payload"]["errors"])),
            Some("error") => return Err(messages(&message["payload"])),
            Some("ping") => ws_send(&mut ws, json!({"type": "pong"})).await,
            Some("ka") if legacy => {}
            _ => return Err(format!("unexpected {}", short(&message))),
        }
    }
}

/// The messages of a GraphQL error list, one after the other.
fn messages(errors: &Value) -> String {
    let all: Vec<&str> = errors
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["message"].as_str())
        .collect();
    if all.is_empty() {
        format!("errors: {}", short(errors))
    } else {
        all.join("; ")
    }
}

/// Sends one of the UI's GraphQL operations as the UI does and checks what it reads.
async fn replay_graphql(server: &TestServer, values: &Values, e: &GqlEntry) -> Result<(), String> {
    let variables = values.fill_json(&e.variables);
    let cookie = format!("meshery-provider=Local; token={}", values.0["token"]);
    let data = if e.operation == "subscription" {
        // Over both WebSocket protocols Meshery's UIs have used: their answers must agree in
        // what the UI reads.
        let legacy = first_data(server, &cookie, e, &variables, "graphql-ws")
            .await
            .map_err(|why| format!("over graphql-ws: {why}"))?;
        let legacy_problems = check_reads(&legacy, &e.reads);
        if !legacy_problems.is_empty() && e.empty.is_none() {
            return Err(format!("over graphql-ws: {}", legacy_problems.join("; ")));
        }
        first_data(server, &cookie, e, &variables, "graphql-transport-ws").await?
    } else {
        let response = server
            .http()
            .post(server.url("/api/system/graphql/query"))
            .header("cookie", &cookie)
            .json(&json!({"query": e.document, "variables": variables}))
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = response.json().await.map_err(|e| e.to_string())?;
        if let Some(code) = &e.refused {
            return if body["errors"][0]["extensions"]["code"] == code.as_str() {
                Ok(())
            } else {
                Err(format!("expected a refusal {code}, got {}", short(&body)))
            };
        }
        if !body["errors"].is_null() {
            return Err(messages(&body["errors"]));
        }
        body["data"].clone()
    };
    let reads: Vec<(String, String)> = match &e.empty {
        None => e.reads.clone(),
        Some(at) => {
            if data.pointer(at).and_then(Value::as_array).map(Vec::len) != Some(0) {
                return Err(format!(
                    "{at}: expected an empty list, got {}",
                    short(&data)
                ));
            }
            let inside = format!("{at}/");
            e.reads
                .iter()
                .filter(|(p, _)| !p.starts_with(&inside))
                .cloned()
                .collect()
        }
    };
    let problems = check_reads(&data, &reads);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

/// Values for the corpus's `{placeholders}`, made on the server before the replay.
struct Fixtures {
    values: HashMap<String, String>,
    /// The values that differ for the entries replayed as the reference provider's user
    /// (`remote`): their token, organization, workspace, a team and a view of it.
    remote: HashMap<String, String>,
    /// The cluster the corpus's Kubernetes calls reach (the test API server).
    cluster: crate::kube_api::KubeApi,
}

async fn json(request: reqwest::RequestBuilder) -> Value {
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    assert!(status.is_success(), "fixture: {status}: {body}");
    body
}

impl Fixtures {
    async fn make(server: &TestServer) -> Fixtures {
        let http = server.http();
        let mut fixtures = Fixtures {
            values: HashMap::new(),
            remote: HashMap::new(),
            cluster: crate::kube_api::KubeApi::start(Some("compat-token")).await,
        };
        let token = json(http.get(server.url("/api/token"))).await;
        fixtures.set("token", token["token"].as_str());
        fixtures.design(server).await;
        // A load target on loopback, and a profile of it with one result (a one-second run).
        let (target, _) = crate::perf::target().await;
        fixtures.set("targetUrl", Some(&format!("{target}/ok")));
        fixtures.profile(server).await;
        let profile_id = fixtures.values["profileId"].clone();
        let run = http
            .get(server.url(&format!("/api/user/performance/profiles/{profile_id}/run")))
            .send()
            .await
            .unwrap()
            .bytes_stream();
        let frames = crate::perf::frames(run).await;
        let result = frames
            .last()
            .and_then(|f| f.1.result.clone())
            .expect("a result");
        fixtures.set("resultId", Some(&result.id));
        fixtures.set("resultName", Some(&result.name));
        fixtures.event(server).await;
        fixtures.credential(server).await;
        // A Prometheus that answers its build info (connection registration reaches it).
        let prometheus = axum::Router::new().route(
            "/api/v1/status/buildinfo",
            axum::routing::get(|| async { axum::Json(json!({"status": "success"})) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, prometheus).await.unwrap() });
        fixtures.set("prometheusUrl", Some(&url));
        fixtures.cluster(server).await;
        fixtures.tenancy(server).await;

        // The built-in registry's first model, component, category and registrant.
        let get = |path: &str| json(http.get(server.url(path)));
        let first = |v: &Value, list: &str, key: &str| v[list][0][key].as_str().map(String::from);
        let models = get("/api/meshmodels/models?search=kubernetes").await;
        fixtures.set("modelName", first(&models, "models", "name").as_deref());
        fixtures.set("modelId", first(&models, "models", "id").as_deref());
        fixtures.set(
            "modelVersion",
            first(&models, "models", "version").as_deref(),
        );
        let components = get("/api/meshmodels/components?search=Deployment").await;
        fixtures.set(
            "componentName",
            first(&components, "components", "kind").as_deref(),
        );
        let categories = get("/api/meshmodels/categories").await;
        fixtures.set(
            "categoryName",
            first(&categories, "categories", "name").as_deref(),
        );
        let registrants = get("/api/meshmodels/registrants").await;
        fixtures.set(
            "registrantName",
            first(&registrants, "registrants", "hostname").as_deref(),
        );
        let relationships = get("/api/meshmodels/relationships").await;
        fixtures.set(
            "relationshipId",
            first(&relationships, "relationships", "id").as_deref(),
        );
        let user = get("/api/user").await;
        fixtures.set("userId", user["id"].as_str());
        fixtures.model_archive(server).await;
        fixtures
    }

    /// A registered model of the compat's own, its archive as Meshery exports it (base64,
    /// and served on loopback), and its id.
    async fn model_archive(&mut self, server: &TestServer) {
        let http = server.http();
        self.registered_model(server).await;
        let id = self.values["registeredModelId"].clone();
        let archive = http
            .get(server.url(&format!("/api/meshmodels/export?id={id}&file_type=tar")))
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
            .to_vec();
        self.set(
            "modelArchiveBase64",
            Some(&base64::engine::general_purpose::STANDARD.encode(&archive)),
        );
        let app = axum::Router::new().route(
            "/model.tar.gz",
            axum::routing::get(move || async move { archive }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/model.tar.gz", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        self.set("modelArchiveUrl", Some(&url));
    }

    /// The compat's own model, registered (again, if an entry deleted it).
    async fn registered_model(&mut self, server: &TestServer) {
        let made = server
            .http()
            .post(server.url("/api/meshmodels/register"))
            .json(&crate::registry::sample_model("compat-mesh"))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(made.status().as_u16(), 201 | 409),
            "{}",
            made.status()
        );
        self.set("registeredModelId", Some("compat-mesh@v1.0.0"));
    }

    fn set(&mut self, name: &str, value: Option<&str>) {
        self.values
            .insert(name.to_string(), value.unwrap_or_default().to_string());
    }

    /// A design: the sample app imported, then read back.
    async fn design(&mut self, server: &TestServer) {
        let http = server.http();
        let manifest = include_str!("../support/sample-app.yaml");
        let imported = json(http.post(server.url("/api/pattern/import")).json(&json!({
            "file": base64::engine::general_purpose::STANDARD.encode(manifest),
            "fileName": "sample-app.yaml",
            "name": "compat-design",
        })))
        .await;
        // A list holding the design, as Meshery answers.
        let id = imported[0]["id"]
            .as_str()
            .expect("imported design id")
            .to_string();
        let design = json(http.get(server.url(&format!("/api/pattern/{id}")))).await;
        let text = design["patternFile"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        // The catalog (published designs) holds one.
        json(http.post(server.url("/api/pattern")).json(&json!({
            "name": "compat-catalog",
            "patternFile": text,
            "visibility": "published",
        })))
        .await;
        self.set("patternId", Some(&id));
        self.set("patternName", Some("compat-design"));
        self.set(
            "designYamlBase64",
            Some(&base64::engine::general_purpose::STANDARD.encode(&text)),
        );
        // The same design served over http, for imports by URL.
        let served = text.clone();
        let app = axum::Router::new().route(
            "/design.yaml",
            axum::routing::get(move || async move { served }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/design.yaml", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        self.set("designUrl", Some(&url));
        self.set("designYaml", Some(&text));
    }

    async fn profile(&mut self, server: &TestServer) {
        let profile = json(
            server
                .http()
                .post(server.url("/api/user/performance/profiles"))
                .json(&json!({
                    "name": "compat-profile",
                    "endpoints": [self.values["targetUrl"]],
                    "loadGenerators": ["fortio"],
                    "concurrentRequest": 1,
                    "qps": 20,
                    "duration": "1s",
                })),
        )
        .await;
        self.set("profileId", profile["id"].as_str());
        self.set("profileName", profile["name"].as_str());
    }

    async fn event(&mut self, server: &TestServer) {
        let event = json(
            server
                .http()
                .post(server.url("/api/system/events"))
                .json(&json!({
                    "category": "ui",
                    "action": "compat",
                    "severity": "informational",
                    "description": "the compat corpus",
                })),
        )
        .await;
        self.set("eventId", event["id"].as_str());
    }

    /// A credential of the user's.
    async fn credential(&mut self, server: &TestServer) {
        let credential = json(
            server
                .http()
                .post(server.url("/api/integrations/credentials"))
                .json(&json!({
                    "name": "compat-credential",
                    "type": "token",
                    "secret": {"secret": "compat-secret"},
                })),
        )
        .await;
        self.set("credentialId", credential["id"].as_str());
        let orgs = json(server.http().get(server.url("/api/identity/orgs"))).await;
        self.set("orgId", orgs["organizations"][0]["id"].as_str());
    }

    /// A cluster: a kubeconfig whose context becomes a connection.
    async fn cluster(&mut self, server: &TestServer) {
        // A mesh for the UI's dashboard queries: Istio's control plane with its add-ons,
        // and a workload with its sidecar.
        self.cluster.seed(&[
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "istiod-5d8c9", "namespace": "istio-system", "labels": {"app": "istiod"}},
                   "spec": {"containers": [{"name": "discovery", "image": "docker.io/istio/pilot:1.22.0"}]},
                   "status": {"phase": "Running"}}),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "grafana", "namespace": "istio-system"},
                   "spec": {"ports": [{"port": 3000}], "clusterIP": "10.0.0.30"}}),
            json!({"apiVersion": "v1", "kind": "Service",
                   "metadata": {"name": "prometheus", "namespace": "istio-system"},
                   "spec": {"ports": [{"port": 9090}], "clusterIP": "10.0.0.90"}}),
            json!({"apiVersion": "v1", "kind": "Pod",
                   "metadata": {"name": "productpage-v1", "namespace": "default", "labels": {"app": "productpage"}},
                   "spec": {"containers": [
                       {"name": "productpage", "image": "docker.io/istio/examples-bookinfo-productpage-v1:1.18.0"},
                       {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0",
                        "ports": [{"name": "http-envoy-prom", "containerPort": 15090, "protocol": "TCP"}],
                        "resources": {"limits": {"cpu": "2"}}}]},
                   "status": {"phase": "Running", "containerStatuses": [
                       {"name": "istio-proxy", "image": "docker.io/istio/proxyv2:1.22.0", "ready": true,
                        "restartCount": 0, "started": true, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}}),
        ]);
        let http = server.http();
        let kubeconfig = self.cluster.kubeconfig("compat-cluster");
        let uploaded = json(
            http.post(server.url("/api/system/kubernetes"))
                .header("content-type", "application/yaml")
                .body(kubeconfig.clone()),
        )
        .await;
        self.set("kubeconfigYaml", Some(&kubeconfig));
        self.set(
            "contextId",
            uploaded["registeredContexts"][0]["id"].as_str(),
        );
        let connections = json(http.get(server.url("/api/integrations/connections"))).await;
        self.set("connectionId", connections["connections"][0]["id"].as_str());
        self.set(
            "connectionName",
            connections["connections"][0]["name"].as_str(),
        );
        self.set(
            "clusterId",
            connections["connections"][0]["metadata"]["kubernetes_server_id"].as_str(),
        );
    }

    /// A workspace and an environment of the user's organization (named as mesheryctl's
    /// entries name theirs), the cluster's connection in the environment and the design
    /// in the workspace; teams and views are a remote provider's, so theirs are ids of none.
    async fn tenancy(&mut self, server: &TestServer) {
        let http = server.http();
        let org = self.values["orgId"].clone();
        let workspace = json(
            http.post(server.url("/api/workspaces"))
                .json(&json!({"name": "compat-ws", "organizationId": org})),
        )
        .await;
        let workspace_id = workspace["id"].as_str().unwrap_or_default().to_string();
        let environment =
            json(http.post(server.url("/api/environments")).json(
                &json!({"name": "compat-env", "organizationId": org, "description": "compat"}),
            ))
            .await;
        let environment_id = environment["id"].as_str().unwrap_or_default().to_string();
        for path in [
            format!("/api/workspaces/{workspace_id}/environments/{environment_id}"),
            format!(
                "/api/workspaces/{workspace_id}/designs/{}",
                self.values["patternId"]
            ),
            format!(
                "/api/environments/{environment_id}/connections/{}",
                self.values["connectionId"]
            ),
        ] {
            json(http.post(server.url(&path))).await;
        }
        self.set("workspaceId", Some(&workspace_id));
        self.set("environmentId", Some(&environment_id));
        self.set("teamId", Some(&uuid::Uuid::new_v4().to_string()));
        self.set("viewId", Some(&uuid::Uuid::new_v4().to_string()));
    }

    /// Before a call that deletes, or imports a model: the fixtures it names, made anew (an
    /// earlier call may have deleted them), or out of the way.
    async fn renew(&mut self, server: &TestServer, e: &Entry) {
        let text = format!("{} {:?} {:?}", e.path, e.body, e.query);
        if text.contains("{registeredModelId}") {
            self.registered_model(server).await;
        }
        if text.contains("{modelArchive") {
            // An import registers the archive's model: it must not be there yet.
            let id = &self.values["registeredModelId"];
            server
                .http()
                .delete(server.url(&format!("/api/meshmodels/models/{id}")))
                .send()
                .await
                .unwrap();
        }
        if text.contains("{patternId}") {
            self.design(server).await;
        }
        if text.contains("{profileId}") {
            self.profile(server).await;
        }
        if text.contains("{eventId}") {
            self.event(server).await;
        }
        if text.contains("{credentialId}") {
            self.credential(server).await;
        }
        if text.contains("{connectionId}") || text.contains("{contextId}") {
            self.cluster(server).await;
        }
        if text.contains("{workspaceId}") || text.contains("{environmentId}") {
            // Its members too: an earlier call may have deleted them.
            self.design(server).await;
            self.cluster(server).await;
            self.tenancy(server).await;
        }
    }

    /// The values a GraphQL operation's placeholders take (the UI's as Local).
    fn values_for_graphql(&self) -> Values {
        Values(self.values.clone())
    }

    /// The values an entry's placeholders take: the remote user's where it has its own.
    fn values_for(&self, e: &Entry) -> Values {
        let mut values = self.values.clone();
        if e.remote.is_some() {
            values.extend(self.remote.clone());
        }
        Values(values)
    }

    /// The reference provider's user (alice) with a workspace of her own organization,
    /// a team and a saved view of it (the provider's), both members of the workspace so
    /// that a removal has something to end.
    async fn remote_tenancy(&mut self, server: &TestServer) {
        let http = server.http();
        let cookie = format!("meshery-provider=Reference; token={}", self.remote["token"]);
        let get = |path: String| json(http.get(server.url(&path)).header("cookie", &cookie));
        let orgs = get("/api/identity/orgs".into()).await;
        let org = orgs["organizations"][0]["id"].as_str().unwrap().to_string();
        let workspace = json(
            http.post(server.url("/api/workspaces"))
                .header("cookie", &cookie)
                .json(&json!({"name": "compat-remote-ws", "organizationId": org})),
        )
        .await;
        let workspace = workspace["id"].as_str().unwrap().to_string();
        let teams = get(format!("/api/identity/orgs/{org}/teams")).await;
        let team = teams["teams"][0]["id"].as_str().unwrap().to_string();
        let views = get(format!(
            "/api/workspaces/{workspace}/views?filter=%7B%22assigned%22%3Afalse%7D"
        ))
        .await;
        let view = views["views"][0]["id"].as_str().unwrap().to_string();
        for path in [
            format!("/api/workspaces/{workspace}/teams/{team}"),
            format!("/api/workspaces/{workspace}/views/{view}"),
        ] {
            json(http.post(server.url(&path)).header("cookie", &cookie)).await;
        }
        for (k, v) in [
            ("orgId", org),
            ("workspaceId", workspace),
            ("teamId", team),
            ("viewId", view),
        ] {
            self.remote.insert(k.into(), v);
        }
    }
}

/// The values of an entry's placeholders.
struct Values(HashMap<String, String>);

impl Values {
    /// Fills `{name}` placeholders; an unknown one stays as it is (the call then fails).
    fn fill(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (k, v) in &self.0 {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    fn fill_json(&self, v: &Value) -> Value {
        match v {
            Value::String(s) => Value::String(self.fill(s)),
            Value::Array(a) => Value::Array(a.iter().map(|v| self.fill_json(v)).collect()),
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| (self.fill(k), self.fill_json(v)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
}

/// The values at a pointer with `*` for every element or member, and how many branches
/// ended before the pointer did (a member missing from some element).
fn lookup<'a>(v: &'a Value, pointer: &str) -> (Vec<&'a Value>, usize) {
    let mut here = vec![v];
    let mut missing = 0;
    for raw in pointer.split('/').skip(1) {
        let key = raw.replace("~1", "/").replace("~0", "~");
        let mut next = Vec::new();
        for v in here {
            let before = next.len();
            match (v, key.as_str()) {
                (Value::Array(a), "*") => next.extend(a.iter()),
                (Value::Object(m), "*") => next.extend(m.values()),
                (Value::Array(a), i) => next.extend(i.parse::<usize>().ok().and_then(|i| a.get(i))),
                (Value::Object(m), k) => next.extend(m.get(k)),
                _ => {}
            }
            if next.len() == before && key != "*" {
                missing += 1;
            }
        }
        here = next;
    }
    (here, missing)
}

fn has_type(v: &Value, ty: &str) -> bool {
    match ty {
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        _ => true,
    }
}

/// What the client reads that is not there, or not of its type.
fn check_reads(body: &Value, reads: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (pointer, ty) in reads {
        let (ty, optional) = match ty.strip_suffix('?') {
            Some(t) => (t, true),
            None => (ty.as_str(), false),
        };
        let (found, missing) = lookup(body, pointer);
        if found.is_empty() || missing > 0 {
            if !optional {
                problems.push(if found.is_empty() {
                    format!("{pointer}: missing")
                } else {
                    format!(
                        "{pointer}: missing in {missing} of {}",
                        found.len() + missing
                    )
                });
            }
            if found.is_empty() {
                continue;
            }
        }
        for v in found {
            if v.is_null() && optional {
                continue;
            }
            if !has_type(v, ty) {
                problems.push(format!("{pointer}: {v} is not {ty}", v = short(v)));
                break;
            }
        }
    }
    problems
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 60 {
        format!("{}…", &s[..s.floor_char_boundary(60)])
    } else {
        s
    }
}

/// Replays one entry: `Ok` when the client would get what it reads.
async fn replay(server: &TestServer, fixtures: &Values, e: &Entry) -> Result<(), String> {
    let url = server.url(&fixtures.fill(&e.path));
    let provider = if e.remote.is_some() {
        "Reference"
    } else {
        "Local"
    };
    let method = reqwest::Method::from_bytes(e.method.as_bytes()).map_err(|e| e.to_string())?;
    let mut request = server
        .http()
        .request(method, url)
        // As Meshery's clients authenticate: the UI's cookies, mesheryctl's the same two.
        .header(
            "cookie",
            format!("meshery-provider={provider}; token={}", fixtures.0["token"]),
        );
    let query: Vec<(String, String)> = e
        .query
        .iter()
        .map(|(k, v)| (k.clone(), fixtures.fill(v)))
        .collect();
    if !query.is_empty() {
        request = request.query(&query);
    }
    for (k, v) in &e.headers {
        request = request.header(k.as_str(), fixtures.fill(v));
    }
    if let Some(body) = &e.body {
        request = request.json(&fixtures.fill_json(body));
    } else if let Some((text, content_type)) = &e.body_text {
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type.as_str());
        }
        request = request.body(fixtures.fill(text));
    } else if !e.multipart.is_empty() {
        let boundary = "compat-corpus-boundary-7d1e";
        let mut body = String::new();
        for (name, value) in &e.multipart {
            body.push_str(&format!(
                "--{boundary}\r\ncontent-disposition: form-data; name=\"{name}\"; filename=\"{name}\"\r\n\r\n{}\r\n",
                fixtures.fill(value)
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        request = request
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    if !e.status.contains(&status) {
        let body = response.text().await.unwrap_or_default();
        return Err(format!(
            "status {status}, the client takes {:?}: {}",
            e.status,
            &body[..body.floor_char_boundary(200)]
        ));
    }
    match e.returns.as_deref() {
        Some("sse") => {
            return if content_type.starts_with("text/event-stream") {
                Ok(()) // the stream itself is not read: it does not end
            } else {
                Err(format!("not an event stream: {content_type}"))
            };
        }
        Some("redirect") => {
            return if (300..400).contains(&status) && response.headers().contains_key("location") {
                Ok(())
            } else {
                Err(format!("not a redirect: {status}"))
            };
        }
        _ => {}
    }
    let bytes = response.bytes().await.map_err(|e| e.to_string())?;
    match e.returns.as_deref() {
        // One document or a stream of them (manifests).
        Some("yaml") => {
            use serde::Deserialize;
            let mut documents = 0;
            for document in yaml_serde::Deserializer::from_slice(&bytes) {
                Value::deserialize(document).map_err(|err| format!("not YAML: {err}"))?;
                documents += 1;
            }
            if documents == 0 {
                Err("an empty YAML answer".into())
            } else {
                Ok(())
            }
        }
        Some("text") if bytes.is_empty() => Err("empty answer".into()),
        Some("text") => Ok(()),
        Some("empty") => Ok(()),
        _ if e.reads.is_empty() => Ok(()),
        _ => {
            let body: Value = serde_json::from_slice(&bytes).map_err(|err| {
                format!(
                    "not JSON ({err}): {}",
                    String::from_utf8_lossy(&bytes[..bytes.len().min(120)])
                )
            })?;
            let problems = check_reads(&body, &e.reads);
            if problems.is_empty() {
                Ok(())
            } else {
                Err(problems.join("; "))
            }
        }
    }
}

#[tokio::test]
async fn meshery_clients_calls_get_what_they_read() {
    let entries = load();
    assert!(!entries.is_empty(), "no corpus under tests/compat");
    // A server with the reference provider too: a few calls need a remote provider's user.
    let setup = crate::auth::setup().await;
    let server = &setup.server;
    let mut fixtures = Fixtures::make(server).await;
    fixtures.remote.insert("token".into(), setup.token("alice"));
    fixtures.remote_tenancy(server).await;
    // Deletions last, so that no call finds its fixture gone.
    let (mut order, deletes): (Vec<&Entry>, Vec<&Entry>) = entries
        .iter()
        .partition(|e| e.method != "DELETE" && !e.path.ends_with("/delete"));
    // (made anew before each: see `renew`)
    order.extend(deletes);
    let mut unexpected = Vec::new();
    // COMPAT_SHOW=1 prints why each expected failure fails (while fixing one).
    let show = std::env::var_os("COMPAT_SHOW").is_some();
    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    // The UI's GraphQL operations first: the REST deletions below remove fixtures.
    let graphql = load_graphql();
    assert!(
        !graphql.is_empty(),
        "no GraphQL operations in {GRAPHQL_FILE}"
    );
    for e in &graphql {
        let outcome = replay_graphql(server, &fixtures.values_for_graphql(), e).await;
        let t = tally.entry(GRAPHQL_FILE).or_default();
        match (&outcome, &e.xfail) {
            (Ok(()), None) => t.0 += 1,
            (Err(why), Some(_)) => {
                t.1 += 1;
                if show {
                    println!("xfail {GRAPHQL_FILE}: {} ({}): {why}", e.id, e.operation);
                }
            }
            (Err(why), None) => {
                unexpected.push(format!("{GRAPHQL_FILE}: {} ({}): {why}", e.id, e.operation))
            }
            (Ok(()), Some(_)) => unexpected.push(format!(
                "{GRAPHQL_FILE}: {} ({}) passes now: remove its xfail",
                e.id, e.operation
            )),
        }
    }
    let destructive = |e: &Entry| e.method == "DELETE" || e.path.ends_with("/delete");
    let imports_model = |e: &Entry| format!("{:?}", e.body).contains("{modelArchive");
    for e in order {
        if destructive(e) || imports_model(e) {
            if e.remote.is_some() {
                fixtures.remote_tenancy(server).await;
            } else {
                fixtures.renew(server, e).await;
            }
        }
        let outcome = replay(server, &fixtures.values_for(e), e).await;
        let t = tally.entry(e.file.as_str()).or_default();
        match (&outcome, &e.xfail) {
            (Ok(()), None) => t.0 += 1,
            (Err(why), Some(_)) => {
                t.1 += 1;
                if show {
                    println!(
                        "xfail {}: {} ({} {}): {why}",
                        e.file, e.id, e.method, e.path
                    );
                }
            }
            (Err(why), None) => unexpected.push(format!(
                "{}: {} ({} {}): {why}",
                e.file, e.id, e.method, e.path
            )),
            (Ok(()), Some(_)) => unexpected.push(format!(
                "{}: {} ({} {}) passes now: remove its xfail",
                e.file, e.id, e.method, e.path
            )),
        }
    }
    for (file, (pass, xfail)) in &tally {
        println!("compat: {file}: {pass} pass, {xfail} expected to fail");
    }
    assert!(
        unexpected.is_empty(),
        "{} corpus entries:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
    // The coverage table is served with the reference docs.
    let page = server
        .http()
        .get(server.url("/docs/compat"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("Meshery router operations") && page.contains("mesheryctl calls"),
        "{page}"
    );
    setup.finish().await;
}

#[test]
fn reads_find_missing_and_mistyped_values() {
    let body = json!({"page": 0, "patterns": [{"id": "a", "n": 1}, {"id": 2}], "m": {"x": {"y": true}}, "z": null});
    let reads = |r: &[(&str, &str)]| {
        check_reads(
            &body,
            &r.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect::<Vec<_>>(),
        )
    };
    assert!(
        reads(&[
            ("/page", "integer"),
            ("/m/*/y", "boolean"),
            ("/z", "string?"),
            ("/q", "any?")
        ])
        .is_empty()
    );
    assert_eq!(
        reads(&[("/patterns/*/id", "string")]),
        vec!["/patterns/*/id: 2 is not string"]
    );
    assert_eq!(
        reads(&[("/total_count", "integer")]),
        vec!["/total_count: missing"]
    );
    assert_eq!(
        reads(&[("/patterns/*/n", "integer")]),
        vec!["/patterns/*/n: missing in 1 of 2"]
    );
    assert!(reads(&[("/patterns/*/n", "integer?")]).is_empty());
    assert_eq!(
        reads(&[("/page", "string")]),
        vec!["/page: 0 is not string"]
    );
}

/// A type as written, ignoring nothing: `[String!]!` is List(NonNull(String)), non-null.
fn type_text(ty: &async_graphql::parser::types::Type) -> String {
    ty.to_string()
}

/// Whether a client written against `theirs` is served by `ours`: the same named type
/// at the same list depth; as an argument, ours nullable wherever theirs is (`input`);
/// as a result, ours non-null wherever theirs is.
fn serves(
    ours: &async_graphql::parser::types::Type,
    theirs: &async_graphql::parser::types::Type,
    input: bool,
) -> bool {
    use async_graphql::parser::types::BaseType;
    let nullability = if input {
        !theirs.nullable || ours.nullable
    } else {
        theirs.nullable || !ours.nullable
    };
    nullability
        && match (&ours.base, &theirs.base) {
            (BaseType::Named(a), BaseType::Named(b)) => a == b,
            (BaseType::List(a), BaseType::List(b)) => serves(a, b, input),
            _ => false,
        }
}

#[test]
fn every_root_field_of_mesherys_graphql_schema_is_served_with_its_arguments() {
    use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};
    let roots = |text: &str| {
        let doc = async_graphql::parser::parse_schema(text).unwrap();
        let mut out = std::collections::BTreeMap::new();
        for def in doc.definitions {
            if let TypeSystemDefinition::Type(t) = def
                && let TypeKind::Object(o) = &t.node.kind
                && ["Query", "Mutation", "Subscription"].contains(&t.node.name.node.as_str())
            {
                for f in &o.fields {
                    out.insert(
                        (t.node.name.node.to_string(), f.node.name.node.to_string()),
                        f.node.clone(),
                    );
                }
            }
        }
        out
    };
    let theirs = roots(include_str!("../compat/graphql-roots.graphql"));
    let ours = roots(include_str!("../../schema/schema.graphql"));
    assert_eq!(theirs.len(), 38, "Meshery's 37 roots and subscribeEvents");
    let mut problems = Vec::new();
    for ((root, name), field) in &theirs {
        let Some(mine) = ours.get(&(root.clone(), name.clone())) else {
            problems.push(format!("{root}.{name}: not served"));
            continue;
        };
        if !serves(&mine.ty.node, &field.ty.node, false) {
            problems.push(format!(
                "{root}.{name}: answers {} where Meshery answers {}",
                type_text(&mine.ty.node),
                type_text(&field.ty.node)
            ));
        }
        for arg in &field.arguments {
            let arg = &arg.node;
            match mine
                .arguments
                .iter()
                .find(|a| a.node.name.node == arg.name.node)
            {
                None => problems.push(format!(
                    "{root}.{name}({}): no such argument",
                    arg.name.node
                )),
                Some(a) if !serves(&a.node.ty.node, &arg.ty.node, true) => problems.push(format!(
                    "{root}.{name}({}): takes {} where Meshery takes {}",
                    arg.name.node,
                    type_text(&a.node.ty.node),
                    type_text(&arg.ty.node)
                )),
                Some(_) => {}
            }
        }
        for a in &mine.arguments {
            let a = &a.node;
            if !a.ty.node.nullable
                && !field
                    .arguments
                    .iter()
                    .any(|t| t.node.name.node == a.name.node)
            {
                problems.push(format!(
                    "{root}.{name}({}): required here, unknown to Meshery's clients",
                    a.name.node
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
