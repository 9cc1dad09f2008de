//! Connections and the cluster inventory against the test API server: a context becomes a
//! connection that follows its cluster, the inventory follows deploys (and relists after
//! a 410), a user can stop using a cluster, and everything goes with the connection.

use crate::kubernetes::Stored;
use std::future::Future;
use std::time::Duration;

use futures_util::StreamExt;
use meshery::models::{
    ClusterInventoryFrame, ClusterResource, Connection, ConnectionStatus as CS, PatternDeployInput,
};
use serde_json::{Value, json};

use crate::harness::TestServer;
use crate::kube_api::KubeApi;

/// Polls `check` until it answers `Some`, for at most `within`.
async fn until<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {within:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connection(client: &meshery_client::rest::Client, id: &str) -> Connection {
    client
        .get_connection()
        .connection_id(id)
        .send()
        .await
        .unwrap()
        .into_inner()
}

async fn resources(client: &meshery_client::rest::Client, kind: &str) -> Vec<ClusterResource> {
    client
        .list_cluster_resources()
        .kind(vec![kind.parse().unwrap()])
        .spec(true)
        .pagesize("all")
        .send()
        .await
        .unwrap()
        .into_inner()
        .resources
}

fn replicas(r: &ClusterResource) -> i64 {
    let spec: Value = serde_json::from_str(&r.spec.as_ref().unwrap().attribute).unwrap();
    spec["replicas"].as_i64().unwrap()
}

fn deploy_body(file: &str) -> PatternDeployInput {
    serde_json::from_value(json!({ "patternFile": file })).unwrap()
}

fn status_of(e: &meshery_client::rest::Error<meshery::models::MeshKitError>) -> u16 {
    match e {
        meshery_client::rest::Error::ErrorResponse(r) => r.status().as_u16(),
        other => panic!("not an error answer: {other:?}"),
    }
}

#[tokio::test]
async fn a_context_is_a_connection_whose_inventory_follows_its_cluster() {
    let mut api = KubeApi::start(Some("inventory-token")).await;
    let server = TestServer::start_with(|c| {
        c.inventory.probe = Duration::from_millis(500);
        c.inventory.lease = Duration::from_secs(3);
    })
    .await;
    let client = server.client();
    let context = client
        .upload_kubeconfig()
        .body(api.kubeconfig("lab"))
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts()
        .remove(0);

    // The context is a kubernetes connection, connected once its cluster answers.
    let page = client.list_connections().send().await.unwrap().into_inner();
    assert_eq!(page.total_count, 1);
    let id = page.connections[0].id.clone();
    assert_eq!(
        (
            page.connections[0].kind.as_str(),
            page.connections[0].name.as_str()
        ),
        ("kubernetes", "lab")
    );
    assert_eq!(
        page.connections[0].metadata["kubernetes_server_id"],
        context.id.as_str()
    );
    let connected = until(Duration::from_secs(10), "connected", || async {
        let c = connection(&client, &id).await;
        (c.status == CS::Connected).then_some(c)
    })
    .await;
    assert_eq!(connected.metadata["version"], "v1.32.0-meshery-test");
    assert!(!connected.metadata.contains_key("reason"));

    // The live stream starts with the state now.
    let response = client.subscribe_cluster_resources().send().await.unwrap();
    let mut live = Box::pin(
        meshery_client::sse::json_frames::<ClusterInventoryFrame, _, _, _>(
            response.into_inner_stream(),
        )
        .map(|f| f.unwrap()),
    );
    let first = live.next().await.unwrap();
    assert_eq!(first.connections.len(), 1);

    // The inventory holds the cluster's namespaces, then the deployed design.
    let namespaces = until(Duration::from_secs(10), "namespaces listed", || async {
        let n = resources(&client, "Namespace").await;
        (n.len() == 2).then_some(n)
    })
    .await;
    assert_eq!(namespaces[0].metadata.name, "default");
    let design = crate::deploy::design_of_sample(&client).await;
    let deployed = client
        .deploy_pattern()
        .body(deploy_body(&design))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(deployed.succeeded, "{deployed:?}");
    // All three of the design's objects (each arrives on its own kind's watch).
    until(
        Duration::from_secs(10),
        "the design in the inventory",
        || async {
            let page = client
                .list_cluster_resources()
                .label_selector("app=web")
                .send()
                .await
                .unwrap()
                .into_inner();
            (page.total_count == 3).then_some(())
        },
    )
    .await;
    let web = resources(&client, "Deployment").await.remove(0);
    assert_eq!(
        (
            web.metadata.name.as_str(),
            web.metadata.namespace.as_deref(),
            replicas(&web)
        ),
        ("web", Some("default"), 2)
    );
    assert_eq!(
        (web.cluster_id.as_str(), web.connection_id.as_str()),
        (context.id.as_str(), id.as_str())
    );
    assert_eq!(web.model, "kubernetes");
    assert!(
        web.metadata
            .labels
            .iter()
            .any(|l| l.key == "app" && l.value == "web")
    );

    // Filters, order and pages.
    let web_labelled = client
        .list_cluster_resources()
        .label_selector("app=web")
        .order("kind desc")
        .send()
        .await
        .unwrap()
        .into_inner();
    let kinds: Vec<&str> = web_labelled
        .resources
        .iter()
        .map(|r| r.kind.as_str())
        .collect();
    assert_eq!(kinds, ["Service", "Deployment", "ConfigMap"]);
    assert!(
        web_labelled
            .resources
            .iter()
            .all(|r| r.spec.is_none() && r.status.is_none())
    );
    let not_web = client
        .list_cluster_resources()
        .label_selector("!app")
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        not_web.total_count, 2,
        "only the namespaces have no app label"
    );
    let in_default = client
        .list_cluster_resources()
        .namespace(vec!["default".parse().unwrap()])
        .cluster_ids(format!("[\"{}\"]", context.id))
        .pagesize("2")
        .page(1)
        .send()
        .await
        .unwrap()
        .into_inner();
    // Three objects in default and the Namespace object default itself.
    assert_eq!((in_default.total_count, in_default.resources.len()), (4, 2));
    let searched = client
        .list_cluster_resources()
        .search("CONFIG")
        .spec(true)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(searched.total_count, 1);
    assert_eq!(
        searched.resources[0].data.as_deref(),
        Some("{\"greeting\":\"hello\"}")
    );
    let elsewhere = client
        .list_cluster_resources()
        .cluster_id(vec!["someone-elses".parse().unwrap()])
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(elsewhere.total_count, 0);
    let comma_separated = client
        .list_cluster_resources()
        .cluster_ids(format!("other, {}", context.id))
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(comma_separated.total_count, 5);
    let too_many = (0..33)
        .map(|i| format!("clusterId=c{i}"))
        .collect::<Vec<_>>()
        .join("&");
    let refused = server
        .http()
        .get(server.url(&format!("/api/system/meshsync/resources?{too_many}")))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400, "33 clusterId values");
    for (name, value) in [("labelSelector", "env in (a,b)"), ("order", "uid")] {
        let refused = server
            .http()
            .get(server.url(&format!(
                "/api/system/meshsync/resources?{name}={}",
                urlencode(value)
            )))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.status(), 400, "{name}={value}");
    }

    let summary = client
        .get_cluster_resources_summary()
        .send()
        .await
        .unwrap()
        .into_inner();
    let counts: Vec<(&str, i64)> = summary
        .kinds
        .iter()
        .map(|k| (k.kind.as_str(), k.count))
        .collect();
    assert_eq!(
        counts,
        [
            ("ConfigMap", 1),
            ("Deployment", 1),
            ("Namespace", 2),
            ("Service", 1)
        ]
    );
    assert_eq!(summary.namespaces, ["default", "kube-system"]);
    assert!(
        summary
            .labels
            .iter()
            .any(|l| l.key == "app" && l.value == "web")
    );

    let whole = client
        .get_cluster_resource()
        .resource_id(&web.id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(replicas(&whole), 2);
    let missing = client
        .get_cluster_resource()
        .resource_id("00000000-0000-8000-8000-000000000000")
        .send()
        .await;
    assert_eq!(status_of(&missing.unwrap_err()), 404);

    // The same counts through GraphQL: a query, and a subscription that follows them.
    let variables = meshery_client::graphql::ClusterResourcesVariables {
        k8scontext_ids: Some(vec![context.id.clone()]),
        namespace: Some("default".into()),
    };
    let query = {
        use cynic::QueryBuilder;
        meshery_client::graphql::GetClusterResources::build(variables.clone())
    };
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
    let counted: meshery_client::graphql::GetClusterResources =
        serde_json::from_value(answer["data"].clone()).unwrap();
    let gql_counts: Vec<(String, i32)> = counted
        .get_cluster_resources
        .resources
        .iter()
        .map(|k| (k.kind.clone(), k.count))
        .collect();
    assert_eq!(
        gql_counts,
        [
            ("ConfigMap".to_string(), 1),
            ("Deployment".to_string(), 1),
            ("Namespace".to_string(), 1),
            ("Service".to_string(), 1)
        ]
    );
    let subscription = {
        use cynic::SubscriptionBuilder;
        meshery_client::graphql::SubscribeClusterResources::build(variables)
    };
    let mut ws = crate::harness::ws_open(server.addr, "graphql-transport-ws", &[])
        .await
        .0;
    crate::harness::ws_send(&mut ws, json!({"type": "connection_init"})).await;
    assert_eq!(
        crate::harness::ws_next(&mut ws).await["type"],
        "connection_ack"
    );
    crate::harness::ws_send(
        &mut ws,
        json!({"id": "1", "type": "subscribe", "payload": subscription}),
    )
    .await;
    let now = crate::harness::ws_next(&mut ws).await;
    assert_eq!(
        now["payload"]["data"]["subscribeClusterResources"]["resources"][1],
        json!({"kind": "Deployment", "model": "kubernetes", "count": 1}),
        "{now}"
    );

    // A redeploy with a new replica count reaches the inventory, and the live stream.
    let scaled = design.replace("replicas: 2", "replicas: 3");
    client
        .deploy_pattern()
        .body(deploy_body(&scaled))
        .send()
        .await
        .unwrap();
    until(
        Duration::from_secs(10),
        "3 replicas in the inventory",
        || async {
            let d = resources(&client, "Deployment").await;
            (d.len() == 1 && replicas(&d[0]) == 3).then_some(())
        },
    )
    .await;
    let frame = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let f = live.next().await.unwrap();
            if f.summary.kinds.iter().any(|k| k.kind == "Deployment") {
                return f;
            }
        }
    })
    .await
    .expect("a live frame with the deployment");
    assert_eq!(frame.connections[0].status, CS::Connected);
    // The removal of the config map below reaches the GraphQL subscription.
    let mut ws = Some(ws);

    // A watch that must list again (410 after a compaction) drops what it missed.
    assert!(api.remove_unwatched("", "configmaps", "default", "web-config"));
    api.end_watches();
    until(
        Duration::from_secs(10),
        "the removed config map gone after the relist",
        || async {
            resources(&client, "ConfigMap")
                .await
                .is_empty()
                .then_some(())
        },
    )
    .await;
    assert!(
        api.requests()
            .iter()
            .any(|r| r.starts_with("GET /api/v1/configmaps?") && !r.contains("watch=true")),
        "no relist"
    );
    let mut ws = ws.take().unwrap();
    let fewer = loop {
        let next = crate::harness::ws_next(&mut ws).await;
        let kinds = next["payload"]["data"]["subscribeClusterResources"]["resources"].clone();
        if !kinds.to_string().contains("ConfigMap") {
            break kinds;
        }
    };
    assert_eq!(fewer[0]["kind"], "Deployment", "{fewer}");
    drop(ws);

    // The cluster goes away: disconnected, saying why; back: connected.
    api.pause().await;
    let down = until(Duration::from_secs(10), "disconnected", || async {
        let c = connection(&client, &id).await;
        (c.status == CS::Disconnected).then_some(c)
    })
    .await;
    assert!(
        down.metadata
            .get("reason")
            .and_then(|r| r.as_str())
            .is_some_and(|r| !r.is_empty()),
        "{down:?}"
    );
    assert!(
        !down.metadata["reason"]
            .as_str()
            .unwrap_or_default()
            .contains("inventory-token")
    );
    // Nothing is deployed to a disconnected cluster unless named.
    let refused = client
        .deploy_pattern()
        .body(deploy_body(&scaled))
        .send()
        .await;
    assert_eq!(status_of(&refused.unwrap_err()), 409);
    api.resume().await;
    until(Duration::from_secs(15), "connected again", || async {
        (connection(&client, &id).await.status == CS::Connected).then_some(())
    })
    .await;

    // Maintenance: not watched, not deployed to, inventory kept as last seen.
    let set = |status: &str| {
        let body: meshery::models::ConnectionUpdate =
            serde_json::from_value(json!({"status": status, "name": "lab", "kind": "kubernetes"}))
                .unwrap();
        client
            .update_connection()
            .connection_id(&id)
            .body(body)
            .send()
    };
    let paused = set("maintenance").await.unwrap().into_inner();
    assert_eq!(paused.status, CS::Maintenance);
    until(Duration::from_secs(5), "not watched", || async {
        (server.app.inventory.watching() == 0).then_some(())
    })
    .await;
    let refused = client
        .deploy_pattern()
        .contexts(vec![context.id.parse().unwrap()])
        .body(deploy_body(&scaled))
        .send()
        .await;
    assert_eq!(status_of(&refused.unwrap_err()), 409);
    assert_eq!(resources(&client, "Deployment").await.len(), 1);
    // A state the server sets changes nothing (a client sending the connection back);
    // another field than the state is refused.
    for (body, status) in [
        (json!({"status": "disconnected"}), 200),
        (json!({"status": "connected", "name": "other"}), 400),
    ] {
        let answer = server
            .http()
            .put(server.url(&format!("/api/integrations/connections/{id}")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), status, "{body}");
    }
    assert_eq!(connection(&client, &id).await.status, CS::Maintenance);
    let resumed = set("connected").await.unwrap().into_inner();
    assert_eq!(resumed.status, CS::Registered);
    until(
        Duration::from_secs(10),
        "connected after maintenance",
        || async { (connection(&client, &id).await.status == CS::Connected).then_some(()) },
    )
    .await;
    let page = client
        .list_connections()
        .status(vec![CS::Connected])
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(page.total_count, 1);
    assert_eq!(page.status_summary.get("connected"), Some(&1));
    let none = client
        .list_connections()
        .kind(vec!["prometheus".parse().unwrap()])
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(none.total_count, 0);

    // Undeploy empties the inventory of the design.
    client
        .undeploy_pattern()
        .body(deploy_body(&design))
        .send()
        .await
        .unwrap();
    until(
        Duration::from_secs(10),
        "the design gone from the inventory",
        || async {
            let left = client
                .list_cluster_resources()
                .label_selector("app=web")
                .send()
                .await
                .unwrap()
                .into_inner()
                .total_count;
            (left == 0).then_some(())
        },
    )
    .await;

    // Deleting the connection takes the context, its inventory and its watch.
    client
        .delete_connection()
        .connection_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        status_of(
            &client
                .get_connection()
                .connection_id(&id)
                .send()
                .await
                .unwrap_err()
        ),
        404
    );
    assert_eq!(
        client
            .list_cluster_resources()
            .send()
            .await
            .unwrap()
            .into_inner()
            .total_count,
        0
    );
    assert_eq!(
        client
            .list_k8s_contexts()
            .send()
            .await
            .unwrap()
            .into_inner()
            .total_count,
        0
    );
    assert_eq!(server.app.inventory.watching(), 0);
    server.finish().await;
    api.stop().await;
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn connections_and_inventories_are_their_owners_alone() {
    let api = KubeApi::start(None).await;
    let s = crate::auth::setup().await;
    let (alice, bob) = (s.client_as("alice"), s.client_as("bob"));
    alice
        .upload_kubeconfig()
        .body(api.kubeconfig("alices"))
        .send()
        .await
        .unwrap();
    let id = alice
        .list_connections()
        .send()
        .await
        .unwrap()
        .into_inner()
        .connections[0]
        .id
        .clone();
    let namespace = until(Duration::from_secs(10), "alice's inventory", || async {
        resources(&alice, "Namespace").await.into_iter().next()
    })
    .await;

    assert_eq!(
        bob.list_connections()
            .send()
            .await
            .unwrap()
            .into_inner()
            .total_count,
        0
    );
    assert_eq!(
        status_of(
            &bob.get_connection()
                .connection_id(&id)
                .send()
                .await
                .unwrap_err()
        ),
        404
    );
    assert_eq!(
        status_of(
            &bob.delete_connection()
                .connection_id(&id)
                .send()
                .await
                .unwrap_err()
        ),
        404
    );
    let body: meshery::models::ConnectionUpdate =
        serde_json::from_value(json!({"status": "ignored"})).unwrap();
    assert_eq!(
        status_of(
            &bob.update_connection()
                .connection_id(&id)
                .body(body)
                .send()
                .await
                .unwrap_err()
        ),
        404
    );
    assert_eq!(resources(&bob, "Namespace").await.len(), 0);
    assert_eq!(
        status_of(
            &bob.get_cluster_resource()
                .resource_id(&namespace.id)
                .send()
                .await
                .unwrap_err()
        ),
        404
    );
    let bobs_summary = bob
        .get_cluster_resources_summary()
        .send()
        .await
        .unwrap()
        .into_inner();
    assert!(bobs_summary.kinds.is_empty() && bobs_summary.namespaces.is_empty());
    // Still alice's, untouched.
    assert_eq!(
        alice
            .get_connection()
            .connection_id(&id)
            .send()
            .await
            .unwrap()
            .into_inner()
            .name,
        "alices"
    );
    s.finish().await;
    api.stop().await;
}

/// Meshery's connection shape and PUT body: camelCase with the page's legacy keys, the
/// whole connection accepted back, what cannot change refused with the reason.
#[tokio::test]
async fn connections_take_meshery_payloads() {
    let server = crate::harness::TestServer::start().await;
    let http = server.http();
    let (api, _) = crate::kubernetes::fake_api_server().await;
    let kubeconfig = crate::kubernetes::kubeconfig(&api, &crate::kubernetes::closed_port().await);
    http.post(server.url("/api/system/kubernetes"))
        .header("content-type", "application/yaml")
        .body(kubeconfig)
        .send()
        .await
        .unwrap();
    let page: Value = http
        .get(server.url("/api/integrations/connections?kind=%5B%22kubernetes%22%5D&type=platform"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["totalCount"], 2, "{page}");
    assert_eq!(page["statusSummary"], page["status_summary"]);
    let c = page["connections"][0].clone();
    for key in ["userId", "createdAt", "updatedAt", "url", "description"] {
        assert!(c[key].is_string(), "{key}: {c}");
    }
    let url = server.url(&format!(
        "/api/integrations/connections/{}",
        c["id"].as_str().unwrap()
    ));
    let put = |body: Value| http.put(&url).json(&body).send();
    // The whole connection back (what the UI holds), with Meshery's deployment-mode flag.
    let mut whole = c.clone();
    whole["metadata"]["meshsync_deployment_mode"] = json!("operator");
    // (Its state may have moved on meanwhile: a state only the server sets changes nothing.)
    let same = put(whole).await.unwrap();
    assert_eq!(same.status(), 200);
    let same: Value = same.json().await.unwrap();
    assert_ne!(same["status"], "maintenance");
    let stopped: Value = put(json!({"status": "maintenance"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stopped["status"], "maintenance");
    for (bad, says) in [
        (
            json!({"status": "connected", "credentialSecret": {"token": "x"}}),
            "kubeconfig",
        ),
        (json!({"id": "another"}), "cannot be changed"),
        (json!({"name": "renamed"}), "cannot be changed"),
    ] {
        let refused = put(bad.clone()).await.unwrap();
        assert_eq!(refused.status(), 400, "{bad}");
        let error: Value = refused.json().await.unwrap();
        assert!(error["error"].as_str().unwrap().contains(says), "{error}");
    }
    let after: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        after["status"], "maintenance",
        "nothing changed by the refused ones"
    );
    server.finish().await;
}

/// A server whose inventory probes and renews its leases often (tests wait less).
async fn quick_server() -> TestServer {
    TestServer::start_with(|c| {
        c.inventory.probe = Duration::from_millis(500);
        c.inventory.lease = Duration::from_secs(3);
    })
    .await
}

/// A test API server holding `objects`, a `quick_server`, and the cluster's context
/// uploaded as "lab": (cluster, server, context, its connection's id).
async fn lab(
    token: &str,
    objects: &[Value],
) -> (KubeApi, TestServer, meshery::models::K8sContext, String) {
    let api = KubeApi::start(Some(token)).await;
    api.seed(objects);
    let server = quick_server().await;
    let client = server.client();
    let context = client
        .upload_kubeconfig()
        .body(api.kubeconfig("lab"))
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts()
        .remove(0);
    let page = client.list_connections().send().await.unwrap().into_inner();
    let id = page.connections[0].id.clone();
    (api, server, context, id)
}

const CONTROLLERS: &str = "query ($id: String!) {
  operator: getOperatorStatus(connectionID: $id) { controller status connectionID contextId }
  meshsync: getMeshsyncStatus(connectionID: $id) { name status contextID }
  broker: getNatsStatus(connectionID: $id) { name status }
}";

#[tokio::test]
async fn graphql_reports_the_embedded_controllers_and_switches_the_operator() {
    let (_api, server, context, id) = lab(
        "controllers-token",
        &[json!({"apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "grafana", "namespace": "monitoring"},
            "spec": {"ports": [{"port": 3000}]}})],
    )
    .await;
    let client = server.client();
    let namespaces =
        "query ($ids: [String!]) { getAvailableNamespaces(k8sClusterIDs: $ids) { namespace } }";
    until(Duration::from_secs(10), "namespaces listed", || async {
        let got = server
            .graphql(namespaces, json!({"ids": [context.id]}))
            .await;
        let names = got["data"]["getAvailableNamespaces"].to_string();
        names.contains("\"monitoring\"").then_some(())
    })
    .await;

    // Connected: MeshSync runs and the broker carries its objects, as the UI tests them.
    let status = server.graphql(CONTROLLERS, json!({"id": id})).await;
    assert_eq!(
        status["data"],
        json!({
            "operator": {"controller": "OPERATOR", "status": "DEPLOYED", "connectionID": id, "contextId": context.id},
            "meshsync": {"name": "MeshSync", "status": "Running", "contextID": context.id},
            "broker": {"name": "MesheryBroker", "status": "Connected"},
        }),
        "{status}"
    );
    let unknown = server
        .graphql(CONTROLLERS, json!({"id": uuid::Uuid::new_v4().to_string()}))
        .await;
    assert!(
        unknown["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no Kubernetes connection")),
        "{unknown}"
    );

    // MeshSync's events of the connection: a ConfigMap deployed, changed, undeployed.
    let mut events = crate::perf::Subscription::open(
        &server,
        json!({"query": "subscription ($ids: [String!]) { subscribeMeshSyncEvents(connectionIDs: $ids) { type object contextId connectionID } }",
               "variables": {"ids": [id]}}),
    )
    .await;
    let mut deletions = crate::perf::Subscription::open(
        &server,
        json!({"query": "subscription { subscribeMeshSyncEvents(eventTypes: [DELETED]) { type object } }"}),
    )
    .await;
    let deploy = |data: &str| {
        let mut cm = crate::patterns::config_map("watched");
        cm["data"] = json!({"v": data});
        deploy_body(&crate::patterns::design("watched", json!([cm])))
    };
    // The next event about the ConfigMap (the deploy also touches its namespace).
    async fn about(events: &mut crate::perf::Subscription) -> Value {
        loop {
            let e = events.next().await.expect("an event")["subscribeMeshSyncEvents"].clone();
            if e["object"]["kind"] == "ConfigMap" {
                return e;
            }
        }
    }
    client
        .deploy_pattern()
        .body(deploy("1"))
        .send()
        .await
        .unwrap();
    let added = about(&mut events).await;
    assert_eq!(
        (
            &added["type"],
            &added["object"]["metadata"]["name"],
            &added["connectionID"],
            &added["contextId"]
        ),
        (
            &json!("ADDED"),
            &json!("watched"),
            &json!(id),
            &json!(context.id)
        ),
        "{added}"
    );
    client
        .deploy_pattern()
        .body(deploy("2"))
        .send()
        .await
        .unwrap();
    let modified = about(&mut events).await;
    assert_eq!(modified["type"], "MODIFIED", "{modified}");
    assert_eq!(modified["object"]["id"], added["object"]["id"]);
    client
        .undeploy_pattern()
        .body(deploy("2"))
        .send()
        .await
        .unwrap();
    let deleted = about(&mut events).await;
    assert_eq!(deleted["type"], "DELETED", "{deleted}");
    assert_eq!(deleted["object"]["id"], added["object"]["id"]);
    // A subscriber of deletions only heard nothing before it.
    let only = about(&mut deletions).await;
    assert_eq!(
        (&only["type"], &only["object"]["id"]),
        (&json!("DELETED"), &added["object"]["id"])
    );
    let mut stranger = crate::perf::Subscription::open(
        &server,
        json!({"query": "subscription { subscribeMeshSyncEvents(connectionIDs: [\"not-a-connection\"]) { type } }"}),
    )
    .await;
    let refused = stranger.message().await;
    assert!(
        refused.to_string().contains("no Kubernetes connection"),
        "{refused}"
    );

    // Telemetry from the inventory: the Service, its spec as JSON text.
    let telemetry = server
        .graphql(
            "{ fetchTelemetryComponents { name spec status } }",
            json!({}),
        )
        .await;
    let comps = telemetry["data"]["fetchTelemetryComponents"]
        .as_array()
        .unwrap();
    assert_eq!(comps.len(), 1, "{telemetry}");
    assert_eq!(comps[0]["name"], "grafana");
    let spec: Value = serde_json::from_str(comps[0]["spec"].as_str().unwrap()).unwrap();
    assert_eq!(spec["ports"][0]["port"], 3000);

    // Switching the operator off puts the connection in maintenance: nothing runs.
    let switch = "mutation ($input: OperatorStatusInput) { changeOperatorStatus(input: $input) }";
    let off = server
        .graphql(
            switch,
            json!({"input": {"targetStatus": "DISABLED", "contextID": context.id}}),
        )
        .await;
    assert_eq!(off["data"]["changeOperatorStatus"], "PROCESSING", "{off}");
    assert_eq!(connection(&client, &id).await.status, CS::Maintenance);
    let status = server.graphql(CONTROLLERS, json!({"id": id})).await;
    assert_eq!(status["data"]["operator"]["status"], "NOTDEPLOYED");
    assert_eq!(status["data"]["meshsync"]["status"], "Not Deployed");

    // On again, with the UI's DEPLOYED: connected once the inventory reaches the cluster.
    let on = server
        .graphql(
            switch,
            json!({"input": {"targetStatus": "DEPLOYED", "contextID": context.id}}),
        )
        .await;
    assert_eq!(on["data"]["changeOperatorStatus"], "PROCESSING", "{on}");
    until(
        Duration::from_secs(10),
        "MeshSync running again",
        || async {
            let status = server.graphql(CONTROLLERS, json!({"id": id})).await;
            (status["data"]["meshsync"]["status"] == "Running").then_some(())
        },
    )
    .await;

    // A resync that clears the inventory lists the cluster again.
    let resync = server.graphql("query ($ctx: String!) { resyncCluster(selector: {clearDB: \"true\", ReSync: \"true\", hardReset: \"false\"}, k8scontextID: $ctx) }",
        json!({"ctx": context.id}),
    )
    .await;
    assert_eq!(resync["data"]["resyncCluster"], "PROCESSING", "{resync}");
    until(Duration::from_secs(10), "listed again", || async {
        let got = server
            .graphql(namespaces, json!({"ids": [context.id]}))
            .await;
        got["data"]["getAvailableNamespaces"]
            .to_string()
            .contains("\"monitoring\"")
            .then_some(())
    })
    .await;

    // Adapters are Meshery's separate services: a clear refusal.
    let adapter = server.graphql("mutation { changeAdapterStatus(input: {targetStatus: ENABLED, targetPort: \"10000\", adapter: \"meshery-istio\"}) }",
        json!({}),
    )
    .await;
    assert_eq!(
        adapter["errors"][0]["extensions"]["code"], "meshery-server-1016",
        "{adapter}"
    );
}

#[tokio::test]
async fn graphql_follows_contexts_and_controllers_live_and_describes_objects() {
    let api = KubeApi::start(Some("live-token")).await;
    api.seed(&[json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": "team-a", "labels": {"tier": "web"}},
        "data": {"mode": "fast"}})]);
    let other = KubeApi::start(Some("live-token-2")).await;
    let server = quick_server().await;
    let client = server.client();

    // The contexts page: empty, then the uploaded context, with its connection.
    let mut contexts = crate::perf::Subscription::open(
        &server,
        json!({"query": "subscription { k8sContext: subscribeK8sContext(selector: {page: \"\", pageSize: \"10\"}) { totalCount: total_count contexts { id name connectionId kubernetes_server_id deploymentType } } }"}),
    )
    .await;
    let first = contexts.next().await.unwrap();
    assert_eq!(first["k8sContext"]["totalCount"], 0, "{first}");
    let context = client
        .upload_kubeconfig()
        .body(api.kubeconfig("lab"))
        .send()
        .await
        .unwrap()
        .into_inner()
        .contexts()
        .remove(0);
    let page = contexts.next().await.unwrap();
    let listed = &page["k8sContext"]["contexts"][0];
    let connections = client.list_connections().send().await.unwrap().into_inner();
    let id = connections.connections[0].id.clone();
    assert_eq!(page["k8sContext"]["totalCount"], 1, "{page}");
    assert_eq!(
        (
            &listed["id"],
            &listed["name"],
            &listed["connectionId"],
            &listed["kubernetes_server_id"],
            &listed["deploymentType"]
        ),
        (
            &json!(context.id),
            &json!("lab"),
            &json!(id),
            &json!(context.id),
            &json!("out_of_cluster")
        )
    );

    // The controllers: the whole list first, then only what changed.
    let mut controllers = crate::perf::Subscription::open(
        &server,
        json!({"query": "subscription ($ids: [String!]) { subscribeMesheryControllersStatus(connectionIDs: $ids) { connectionID controller status } }",
               "variables": {"ids": [id]}}),
    )
    .await;
    let all = controllers.next().await.unwrap()["subscribeMesheryControllersStatus"].clone();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["controller"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["OPERATOR", "MESHSYNC", "BROKER"], "{all}");
    // Until it connects MeshSync is deploying; then MeshSync and the broker change, not the operator.
    let mut meshsync = all[1]["status"].clone();
    while meshsync != "DEPLOYED" {
        let changed =
            controllers.next().await.unwrap()["subscribeMesheryControllersStatus"].clone();
        let items = changed.as_array().unwrap();
        assert!(
            items
                .iter()
                .all(|i| i["controller"] != "OPERATOR" && i["connectionID"] == id.as_str()),
            "{changed}"
        );
        if let Some(m) = items.iter().find(|i| i["controller"] == "MESHSYNC") {
            meshsync = m["status"].clone();
        }
    }

    // A second context appears on the contexts page.
    client
        .upload_kubeconfig()
        .body(other.kubeconfig("staging"))
        .send()
        .await
        .unwrap();
    let page = contexts.next().await.unwrap();
    assert_eq!(page["k8sContext"]["totalCount"], 2, "{page}");

    // An object of the inventory, described as YAML.
    let describe = "query ($ns: String!) { getKubectlDescribe(name: \"settings\", kind: \"ConfigMap\", namespace: $ns) { describe ctxid } }";
    let described = until(Duration::from_secs(10), "the ConfigMap listed", || async {
        let got = server.graphql(describe, json!({"ns": "team-a"})).await;
        got["data"]["getKubectlDescribe"]["describe"]
            .as_str()
            .map(str::to_string)
            .zip(Some(got))
    })
    .await;
    let yaml: Value = yaml_serde::from_str(&described.0).unwrap();
    assert_eq!(
        (
            &yaml["kind"],
            &yaml["metadata"]["name"],
            &yaml["metadata"]["labels"]["tier"]
        ),
        (&json!("ConfigMap"), &json!("settings"), &json!("web"))
    );
    assert_eq!(
        described.1["data"]["getKubectlDescribe"]["ctxid"],
        context.id.as_str()
    );
    let missing = server.graphql(describe, json!({"ns": "team-b"})).await;
    assert!(
        missing["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("no ConfigMap \"settings\"")),
        "{missing}"
    );
}

#[tokio::test]
async fn rest_reports_and_switches_the_controllers_as_mesherys_newest_ui_asks() {
    use meshery::models::{ControllerStatusItem, ControllerStatusItemStatus as St};
    let (_api, server, context, id) = lab(
        "rest-controllers",
        &[json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "team-x"}, "data": {}})],
    )
    .await;
    let client = server.client();

    // The controllers' stream: every frame the whole list, until MeshSync runs.
    let response = client
        .subscribe_controllers_status()
        .connection_ids(vec![id.parse().unwrap()])
        .send()
        .await
        .unwrap();
    let mut live = Box::pin(
        meshery_client::sse::json_frames::<Vec<ControllerStatusItem>, _, _, _>(
            response.into_inner_stream(),
        )
        .map(|f| f.unwrap()),
    );
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("a frame")
            .unwrap();
        assert_eq!(frame.len(), 3, "{frame:?}");
        assert!(
            frame
                .iter()
                .all(|i| i.connection_id == id && i.context_id == context.id)
        );
        if frame.iter().all(|i| i.status == St::Deployed) {
            break;
        }
    }
    let operator = client
        .get_connection_operator_status()
        .connection_id(&id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(operator.status, St::Deployed);
    let meshsync = client
        .get_connection_meshsync_status()
        .connection_id(&id)
        .send()
        .await
        .unwrap()
        .into_inner();
    let nats = client
        .get_connection_nats_status()
        .connection_id(&id)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (meshsync.status.as_str(), nats.status.as_str()),
        ("Running", "Connected")
    );
    let unknown = client
        .get_connection_meshsync_status()
        .connection_id(uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&unknown), 404);
    let namespaces = until(Duration::from_secs(10), "team-x listed", || async {
        let names = client
            .list_k8s_namespaces()
            .cluster_ids(vec![context.id.parse().unwrap()])
            .send()
            .await
            .unwrap()
            .into_inner();
        names.contains(&"team-x".to_string()).then_some(names)
    })
    .await;
    let mut sorted = namespaces.clone();
    sorted.sort();
    assert_eq!(namespaces, sorted);

    // The operator off: the stream says so, and the connection is in maintenance.
    let off: meshery::models::OperatorSwitch =
        serde_json::from_value(json!({"targetStatus": "DISABLED"})).unwrap();
    let started = client
        .change_k8s_context_operator()
        .context_id(&context.id)
        .body(off)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(started.status.to_string(), "PROCESSING");
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("a frame")
            .unwrap();
        if frame.iter().all(|i| i.status == St::Notdeployed) {
            break;
        }
    }
    assert_eq!(connection(&client, &id).await.status, CS::Maintenance);

    // Resync and reset answer PROCESSING; an unknown context is 404.
    let resync: meshery::models::ResyncInput =
        serde_json::from_value(json!({"reSync": true, "clearDb": true})).unwrap();
    let done = client
        .resync_k8s_context()
        .context_id(&context.id)
        .body(resync.clone())
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.status.to_string(), "PROCESSING");
    let missing = client
        .resync_k8s_context()
        .context_id("0000000000000000")
        .body(resync)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_of(&missing), 404);
    let reset: meshery::models::DatabaseResetInput =
        serde_json::from_value(json!({"k8scontextID": context.id, "clearDB": "true"})).unwrap();
    let done = client
        .reset_cluster_inventory()
        .body(reset)
        .send()
        .await
        .unwrap()
        .into_inner();
    assert_eq!(done.status.to_string(), "PROCESSING");

    // The contexts' stream: every context, in both of Meshery's spellings.
    let response = client.stream_k8s_contexts().send().await.unwrap();
    let mut contexts = Box::pin(
        meshery_client::sse::json_frames::<Value, _, _, _>(response.into_inner_stream())
            .map(|f| f.unwrap()),
    );
    let frame = contexts.next().await.unwrap();
    assert_eq!(frame["k8sContext"]["total_count"], 1, "{frame}");
    let listed = &frame["k8sContext"]["contexts"][0];
    assert_eq!(
        (
            &listed["connectionId"],
            &listed["connection_id"],
            &listed["kubernetesServerId"]
        ),
        (&json!(id), &json!(id), &json!(context.id))
    );
}
