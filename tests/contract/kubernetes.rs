//! Kubernetes contexts through the generated client: upload (raw and multipart), parse
//! only, list without credentials, ping a fake API server and a closed port, delete.

use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use crate::harness::TestServer;

/// The contexts an upload stored, whatever their connection's state.
pub trait Stored {
    fn contexts(self) -> Vec<meshery::models::K8sContext>;
}

impl Stored for meshery::models::KubeconfigUpload {
    fn contexts(self) -> Vec<meshery::models::K8sContext> {
        let mut all = self.registered_contexts;
        all.extend(self.connected_contexts);
        all.extend(self.ignored_contexts);
        all
    }
}

pub const TOKEN: &str = "s3cr3t-token-that-must-not-leak";

pub fn kubeconfig(alive: &str, dead: &str) -> String {
    format!(
        r#"apiVersion: v1
kind: Config
current-context: alive
clusters:
  - name: alive-cluster
    cluster:
      server: {alive}
  - name: dead-cluster
    cluster:
      server: {dead}
      insecure-skip-tls-verify: true
users:
  - name: admin
    user:
      token: {TOKEN}
  - name: basic
    user:
      username: kube
      password: hunter2-password
contexts:
  - name: alive
    context: {{cluster: alive-cluster, user: admin, namespace: shop}}
  - name: dead
    context: {{cluster: dead-cluster, user: basic}}
"#
    )
}

/// A fake API server: `/version` answers a version and remembers the Authorization header.
pub async fn fake_api_server() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/version",
        axum::routing::get(move |headers: axum::http::HeaderMap| {
            let record = record.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                record.lock().unwrap().push(auth);
                axum::Json(json!({"major": "1", "minor": "31", "gitVersion": "v1.31.2", "platform": "linux/amd64"}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

/// A port nothing listens on.
pub async fn closed_port() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    url
}

#[tokio::test]
async fn a_kubeconfig_is_uploaded_listed_pinged_and_deleted() {
    let home = tempfile::tempdir().unwrap();
    let path = home.path().to_path_buf();
    let server = TestServer::start_with(|c| c.home = path.clone()).await;
    let client = server.client();
    let (alive, seen) = fake_api_server().await;
    let config = kubeconfig(&alive, &closed_port().await);

    // Parse only: nothing stored.
    let parsed = client
        .parse_kubeconfig()
        .body(config.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(parsed.len(), 2);
    assert_eq!(
        client
            .get_system_sync()
            .send()
            .await
            .unwrap()
            .into_inner()
            .k8s_config
            .len(),
        0
    );

    let stored = client
        .upload_kubeconfig()
        .body(config.clone())
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts();
    let names: Vec<&str> = stored.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["alive", "dead"]);
    let (live, dead) = (&stored[0], &stored[1]);
    assert!(live.is_current && !dead.is_current);
    assert_eq!(
        (live.namespace.as_str(), dead.namespace.as_str()),
        ("shop", "default")
    );
    assert_eq!(live.auth.to_string(), "token");
    assert_eq!(dead.auth.to_string(), "basic");
    assert!(dead.insecure_skip_tls_verify);
    assert_eq!(
        parsed.iter().map(|c| &c.id).collect::<Vec<_>>(),
        stored.iter().map(|c| &c.id).collect::<Vec<_>>()
    );

    // Uploading again updates, does not duplicate; a multipart form (Meshery's clients) works.
    let boundary = "XyZboundary";
    let form = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"k8sfile\"; filename=\"config\"\r\nContent-Type: application/octet-stream\r\n\r\n{config}\r\n--{boundary}--\r\n"
    );
    let response = server
        .http()
        .post(server.url("/api/system/kubernetes"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(form)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let again: Value = response.json().await.unwrap();
    let listed = |key: &str| again[key].as_array().cloned().unwrap_or_default();
    let mut names: Vec<String> = ["registeredContexts", "connectedContexts"]
        .into_iter()
        .flat_map(listed)
        .map(|c| c["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    assert_eq!(names, ["alive", "dead"], "{again}");
    assert_eq!(listed("ignoredContexts").len(), 0);
    assert_eq!(listed("erroredContexts").len(), 0);
    // Meshery's older UIs read the snake_case spelling, a context's connection_id too.
    for key in ["registered", "connected", "ignored", "errored"] {
        assert_eq!(
            again[format!("{key}_contexts")],
            again[format!("{key}Contexts")]
        );
    }
    let first = ["registeredContexts", "connectedContexts"]
        .into_iter()
        .flat_map(listed)
        .next()
        .unwrap();
    assert_eq!(first["connection_id"], first["connectionId"]);
    let connection: Value = server
        .http()
        .get(server.url(&format!(
            "/api/integrations/connections/{}",
            first["connectionId"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(connection["name"], first["name"]);
    assert_eq!(connection["kind"], "kubernetes");

    // Meshery's wizard imports the contexts it selected (ids as discovery gave them),
    // under the names it chose.
    let selected = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"selectedContexts\"\r\n\r\n[\"{id}\"]\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"contexts\"\r\n\r\n{{\"{id}\": {{\"name\": \"staging\", \"meshsyncDeploymentMode\": \"operator\"}}}}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"k8sfile\"; filename=\"config\"\r\n\r\n{config}\r\n--{boundary}--\r\n",
        id = dead.id
    );
    let post_form = |form: String| {
        server
            .http()
            .post(server.url("/api/system/kubernetes"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(form)
            .send()
    };
    let only: Value = post_form(selected).await.unwrap().json().await.unwrap();
    let imported: Vec<&Value> = ["registeredContexts", "connectedContexts"]
        .iter()
        .flat_map(|k| only[*k].as_array().unwrap())
        .collect();
    assert_eq!(imported.len(), 1, "{only}");
    assert_eq!(imported[0]["name"], "staging");
    assert_eq!(imported[0]["server"], json!(dead.server));
    // Renamed, it is a context of its own beside the two uploaded before.
    assert_ne!(imported[0]["id"], json!(dead.id));
    let total = server
        .http()
        .get(server.url("/api/system/kubernetes/contexts"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["totalCount"]
        .clone();
    assert_eq!(total, 3);
    let deleted = server
        .http()
        .delete(server.url(&format!(
            "/api/system/kubernetes/contexts/{}",
            imported[0]["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert!(deleted.status().is_success());
    for (selection, expected) in [
        ("[\"nope\"]", "none of the selected"),
        ("nope", "JSON array"),
    ] {
        let form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"selectedContexts\"\r\n\r\n{selection}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"k8sfile\"\r\n\r\n{config}\r\n--{boundary}--\r\n"
        );
        let response = post_form(form).await.unwrap();
        assert_eq!(response.status(), 400);
        let error: Value = response.json().await.unwrap();
        assert!(
            error["error"].as_str().unwrap().contains(expected),
            "{error}"
        );
    }

    // Listed and synced without any credential; not even the database holds them in clear.
    let listing = server
        .http()
        .get(server.url("/api/system/kubernetes/contexts?pagesize=all"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let page: Value = serde_json::from_str(&listing).unwrap();
    assert_eq!(
        (page["totalCount"].clone(), page["total_count"].clone()),
        (json!(2), json!(2))
    );
    let sync = server
        .http()
        .get(server.url("/api/system/sync"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let one = server
        .http()
        .get(server.url(&format!("/api/system/kubernetes/contexts/{}", live.id)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for text in [&listing, &sync, &one] {
        assert!(!text.contains(TOKEN) && !text.contains("hunter2"), "{text}");
    }
    let database = crate::harness::database_bytes(&server.app.config).await;
    assert!(
        database.windows(5).any(|w| w == b"alive"),
        "the dump holds the stored contexts"
    );
    let needle = TOKEN.as_bytes();
    assert!(
        !database.windows(needle.len()).any(|w| w == needle),
        "the token is stored in clear"
    );

    // Ping: the live context reaches the fake server with its token; the other is unreachable.
    let ping = client
        .ping_k8s_context()
        .context_id(live.id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ping.server_version.git_version, "v1.31.2");
    assert_eq!(ping.name, "alive");
    assert_eq!(seen.lock().unwrap().as_slice(), [format!("Bearer {TOKEN}")]);
    match client
        .ping_k8s_context()
        .context_id(dead.id.as_str())
        .send()
        .await
    {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => {
            assert_eq!(e.status(), 502);
            assert!(
                e.error.contains("unreachable") && e.error.contains("connect"),
                "{}",
                e.error
            );
        }
        other => panic!("{other:?}"),
    }
    match client.ping_k8s_context().context_id("nope").send().await {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => assert_eq!(e.status(), 404),
        other => panic!("{other:?}"),
    }

    // Each upload is an event (three above), and so is the renamed context's deletion.
    let events = server
        .http()
        .get(server.url("/api/system/events?category=kubernetes"))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(events["totalCount"], 4, "{events}");

    // Delete one; it is gone from the listing and cannot be pinged.
    client
        .delete_k8s_context()
        .context_id(dead.id.clone())
        .send()
        .await
        .unwrap();
    assert!(
        matches!(client.get_k8s_context().context_id(dead.id.clone()).send().await, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );
    assert!(
        matches!(client.delete_k8s_context().context_id(dead.id.clone()).send().await, Err(meshery_client::rest::Error::ErrorResponse(e)) if e.status() == 404)
    );
    let sync = client.get_system_sync().send().await.unwrap().into_inner();
    assert_eq!(
        sync.k8s_config
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["alive"]
    );
    server.finish().await;

    // After a restart the key still opens the stored credentials.
    let server = TestServer::start_with(|c| c.home = path.clone()).await;
    let ping = server
        .client()
        .ping_k8s_context()
        .context_id(live.id.as_str())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ping.server_version.minor, "31");
    server.finish().await;
}

#[tokio::test]
async fn bad_kubeconfigs_are_refused_and_nothing_is_stored() {
    let server = TestServer::start().await;
    let post = |body: String, content_type: &str| {
        let request = server
            .http()
            .post(server.url("/api/system/kubernetes"))
            .header("content-type", content_type.to_string())
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }
    };
    // One context only: a kubeconfig with a usable context besides imports that one
    // (see a_kubeconfig_with_an_unusable_context_imports_the_others).
    let good = kubeconfig("http://127.0.0.1:1", "https://127.0.0.1:2").replace(
        "  - name: dead\n    context: {cluster: dead-cluster, user: basic}\n",
        "",
    );
    assert!(!good.contains("name: dead\n"));
    let cases = [
        ("clusters: [\n".to_string(), "line"),
        (
            "apiVersion: v1\nkind: Config\ncontexts: []\n".to_string(),
            "no contexts",
        ),
        (
            good.replace("cluster: alive-cluster", "cluster: missing"),
            "no cluster \"missing\"",
        ),
        (
            good.replace("user: admin,", "user: ghost,"),
            "no user \"ghost\"",
        ),
        (
            good.replace(
                "token: s3cr3t-token-that-must-not-leak",
                "client-key: /home/me/.kube/key.pem",
            ),
            "names a file",
        ),
        (
            good.replace(
                "token: s3cr3t-token-that-must-not-leak",
                "exec: {command: aws}",
            ),
            "signs in with a command",
        ),
        (
            good.replace("server: http://127.0.0.1:1", "server: ftp://x"),
            "not http or https",
        ),
        (good.replace("kind: Config", "kind: Pod"), "must be Config"),
    ];
    for (body, expected) in cases {
        let (status, error) = post(body, "application/yaml").await;
        assert_eq!(status, 400, "{expected}");
        let message = error["error"].as_str().unwrap();
        assert!(
            message.contains(expected),
            "{message:?} does not mention {expected:?}"
        );
    }
    assert_eq!(post(good.clone(), "image/png").await.0, 415);
    let form =
        "--b\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx\r\n--b--\r\n".to_string();
    let (status, error) = post(form, "multipart/form-data; boundary=b").await;
    assert_eq!(status, 400);
    assert!(error["error"].as_str().unwrap().contains("k8sfile"));
    let sync: Value = server
        .http()
        .get(server.url("/api/system/sync"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sync["k8sConfig"], json!([]));
    server.finish().await;
}

#[tokio::test]
async fn another_user_cannot_see_ping_or_delete_a_context() {
    let s = crate::auth::setup().await;
    let (alice, bob) = (s.client_as("alice"), s.client_as("bob"));
    let (alive, _) = fake_api_server().await;
    let stored = alice
        .upload_kubeconfig()
        .body(kubeconfig(&alive, &alive))
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts();
    let id = &stored[0].id;
    let status = |r: Result<(), meshery_client::rest::Error<meshery::models::MeshKitError>>| match r
    {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => e.status().as_u16(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        status(
            bob.get_k8s_context()
                .context_id(id)
                .send()
                .await
                .map(|_| ())
        ),
        404
    );
    assert_eq!(
        status(
            bob.ping_k8s_context()
                .context_id(id.as_str())
                .send()
                .await
                .map(|_| ())
        ),
        404
    );
    assert_eq!(
        status(
            bob.delete_k8s_context()
                .context_id(id)
                .send()
                .await
                .map(|_| ())
        ),
        404
    );
    assert!(
        bob.get_system_sync()
            .send()
            .await
            .unwrap()
            .into_inner()
            .k8s_config
            .is_empty()
    );
    // The same kubeconfig uploaded by Bob is Bob's own contexts, with other ids.
    let bobs = bob
        .upload_kubeconfig()
        .body(kubeconfig(&alive, &alive))
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts();
    assert_ne!(&bobs[0].id, id);
    assert_eq!(
        alice
            .get_system_sync()
            .send()
            .await
            .unwrap()
            .into_inner()
            .k8s_config
            .len(),
        2
    );
    s.server.finish().await;
}

#[tokio::test]
async fn contexts_are_paged_searched_and_ordered() {
    let server = TestServer::start().await;
    let client = server.client();
    let mut config = String::from(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"http://127.0.0.1:1\"}}]\nusers: [{name: u, user: {token: t}}]\ncontexts:\n",
    );
    for name in ["prod-eu", "prod-us", "staging", "dev"] {
        config.push_str(&format!(
            "  - {{name: {name}, context: {{cluster: c, user: u}}}}\n"
        ));
    }
    client
        .upload_kubeconfig()
        .body(config)
        .send()
        .await
        .unwrap();
    let page = |page: i64,
                size: &'static str,
                search: Option<&'static str>,
                order: Option<&'static str>| {
        let client = &client;
        async move {
            let mut request = client.list_k8s_contexts().page(page).pagesize(size);
            if let Some(order) = order {
                request = request.order(order);
            }
            if let Some(search) = search {
                request = request.search(search);
            }
            request.send().await.unwrap().into_inner()
        }
    };
    let names = |p: &meshery::models::K8sContextPage| {
        p.contexts
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    let by_name = page(0, "3", None, Some("name asc")).await;
    assert_eq!((by_name.total_count, by_name.page_size), (4, 3));
    assert_eq!(names(&by_name), ["dev", "prod-eu", "prod-us"]);
    assert_eq!(
        names(&page(1, "3", None, Some("name asc")).await),
        ["staging"]
    );
    assert!(page(2, "3", None, None).await.contexts.is_empty());
    assert_eq!(page(0, "all", None, None).await.contexts.len(), 4);
    assert_eq!(
        names(&page(0, "all", Some("prod"), Some("name desc")).await),
        ["prod-us", "prod-eu"]
    );
    let bad = server
        .http()
        .get(server.url("/api/system/kubernetes/contexts?order=server"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    server.finish().await;
}

#[tokio::test]
async fn a_cluster_is_reached_over_its_own_ca_with_its_token_and_missed_while_away() {
    use crate::kube_api::KubeApi;
    let mut api = KubeApi::start(Some("cluster-token")).await;
    let server = TestServer::start().await;
    let client = server.client();
    let stored = client
        .upload_kubeconfig()
        .body(api.kubeconfig("test-cluster"))
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts();
    let id = stored[0].id.clone();
    let ping = |id: String| {
        let client = server.client();
        async move {
            client
                .ping_k8s_context()
                .context_id(id.as_str())
                .send()
                .await
        }
    };
    let version = ping(id.clone()).await.unwrap().into_inner().server_version;
    assert_eq!(version.git_version, "v1.32.0-meshery-test");
    assert_eq!(version.platform.as_deref(), Some("linux/amd64"));
    // The API server saw the request over TLS verified by the kubeconfig's CA (it serves
    // nothing else) and with the context's token (it refuses anything else).
    assert!(api.requests().iter().any(|r| r.starts_with("GET /version")));

    api.pause().await;
    match ping(id.clone()).await {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => {
            assert_eq!(e.status(), 502);
            assert!(
                e.error.contains("test-cluster") && e.error.contains("unreachable"),
                "{}",
                e.error
            );
            assert!(!e.error.contains("cluster-token"), "{}", e.error);
        }
        other => panic!("{other:?}"),
    }
    api.resume().await;
    let again = ping(id.clone()).await.unwrap().into_inner();
    assert_eq!(again.server_version.major, "1");

    // Another token is refused by the cluster, and said so without showing the token.
    let wrong = api
        .kubeconfig("wrong")
        .replace("cluster-token", "not-the-token");
    let stored = client
        .upload_kubeconfig()
        .body(wrong)
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts();
    match ping(stored[0].id.clone()).await {
        Err(meshery_client::rest::Error::ErrorResponse(e)) => {
            assert_eq!(e.status(), 502);
            assert!(
                e.error.contains("Unauthorized") || e.error.contains("401"),
                "{}",
                e.error
            );
            assert!(!e.error.contains("not-the-token"), "{}", e.error);
        }
        other => panic!("{other:?}"),
    }
    server.finish().await;
    api.stop().await;
}

#[tokio::test]
async fn a_kubeconfig_with_an_unusable_context_imports_the_others() {
    let server = TestServer::start().await;
    let config = kubeconfig("http://127.0.0.1:1", "https://127.0.0.1:2")
        .replace(&format!("token: {TOKEN}"), "exec: {command: aws}");
    let upload = server
        .client()
        .upload_kubeconfig()
        .body(config.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(upload.errored_contexts.len(), 1);
    assert_eq!(upload.errored_contexts[0].name, "alive");
    assert!(
        upload.errored_contexts[0]
            .error
            .contains("signs in with a command"),
        "{}",
        upload.errored_contexts[0].error
    );
    let stored: Vec<String> = upload.contexts().into_iter().map(|c| c.name).collect();
    assert_eq!(stored, ["dead"]);
    let listed = server
        .client()
        .list_k8s_contexts()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.total_count, 1);
    // Reading only (the wizard's discovery) answers what an upload would store.
    let parse: Value = server
        .http()
        .post(server.url("/api/system/kubernetes/contexts"))
        .header("content-type", "application/yaml")
        .body(config)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = parse
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["dead"]);
    server.finish().await;
}
