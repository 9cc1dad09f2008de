//! GraphQL fields over the user's clusters, as Meshery's UI asks for them: contexts, the
//! controllers Meshery runs in each cluster (operator, MeshSync, broker), namespaces,
//! resync, describe, telemetry, add-ons and mesh planes. Here the controllers are the
//! server's own inventory, so their state is read from the connections and the
//! inventory, never invented.

use std::collections::BTreeMap;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::stream::{BoxStream, StreamExt};
use serde_json::Value;

use crate::app::App;
use crate::error::ApiError;
use crate::generated::graphql as g;
use crate::inventory::STOPPED;
use crate::kubernetes::{connection_id, context_of_connection};
use crate::session::Session;
use crate::store::{ConnectionRow, ResourceQuery};

/// Most objects one of these fields reads from the inventory (a bound on its cost).
const MAX_OBJECTS: i64 = 5_000;

/// The owner's connections (contexts with their states), by name.
pub(crate) async fn rows(app: &App, owner: &str) -> Result<Vec<ConnectionRow>, ApiError> {
    Ok(app.kubernetes.states(owner).await?)
}

/// The row of one of the owner's Kubernetes connections, by connection id.
pub(crate) async fn row_of_connection(
    app: &App,
    owner: &str,
    connection: &str,
) -> Result<ConnectionRow, ApiError> {
    let missing = || ApiError::not_found(format!("no Kubernetes connection {connection:?}"));
    let context = context_of_connection(owner, connection).ok_or_else(missing)?;
    rows(app, owner)
        .await?
        .into_iter()
        .find(|r| r.id == context)
        .ok_or_else(missing)
}

/// A context id (`k8scontextID`), checked to be one of the owner's.
async fn row_of_context(app: &App, owner: &str, context: &str) -> Result<ConnectionRow, ApiError> {
    rows(app, owner)
        .await?
        .into_iter()
        .find(|r| r.id == context)
        .ok_or_else(|| ApiError::not_found(format!("no Kubernetes context {context:?}")))
}

/// Ids naming contexts (`k8sClusterIDs`, `k8scontextIDs`: the UI sends cluster ids, which
/// are context ids here); none or an empty list means all of the owner's.
pub(crate) fn contexts(ids: Option<Vec<String>>) -> Option<Vec<String>> {
    ids.filter(|c| !c.is_empty())
}

/// The contexts of the named connections (`None`: all the owner's); an id that is not
/// one of the owner's Kubernetes connections is refused.
pub(crate) async fn contexts_of_connections(
    app: &App,
    owner: &str,
    ids: Option<Vec<String>>,
) -> Result<Option<Vec<String>>, ApiError> {
    let Some(ids) = contexts(ids) else {
        return Ok(None);
    };
    let known: Vec<String> = rows(app, owner).await?.into_iter().map(|r| r.id).collect();
    ids.iter()
        .map(|id| {
            context_of_connection(owner, id)
                .filter(|c| known.contains(c))
                .ok_or_else(|| ApiError::not_found(format!("no Kubernetes connection {id:?}")))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The state of a connection's embedded controllers: they run while its inventory does.
fn state(app: &App, row: &ConnectionRow) -> g::MesheryControllerStatus {
    use g::MesheryControllerStatus as S;
    if !app.inventory.enabled() || STOPPED.contains(&row.status.as_str()) {
        return S::Notdeployed;
    }
    match row.status.as_str() {
        "connected" => S::Deployed,
        // Uploaded or set in use again: the inventory is reaching the cluster.
        "registered" => S::Deploying,
        // The cluster does not answer: what runs there cannot be known.
        _ => S::Unkown,
    }
}

/// The operator itself is the server: running unless the connection is not in use.
fn operator_state(app: &App, row: &ConnectionRow) -> g::MesheryControllerStatus {
    use g::MesheryControllerStatus as S;
    match state(app, row) {
        S::Notdeployed => S::Notdeployed,
        _ => S::Deployed,
    }
}

fn item(
    app: &App,
    owner: &str,
    row: &ConnectionRow,
    controller: g::MesheryController,
) -> g::MesheryControllersStatusListItem {
    let status = match controller {
        g::MesheryController::Operator => operator_state(app, row),
        _ => state(app, row),
    };
    g::MesheryControllersStatusListItem {
        connection_id: connection_id(owner, &row.id),
        context_id: row.id.clone(),
        controller,
        status,
        version: Some(app.version().build),
    }
}

/// Every controller of the named connections (all the owner's when none are named;
/// unknown ids are left out, as Meshery's tracker does).
pub(crate) async fn controllers(
    app: &App,
    owner: &str,
    connections: Option<&[String]>,
) -> Result<Vec<g::MesheryControllersStatusListItem>, ApiError> {
    let mut out = Vec::new();
    for row in rows(app, owner).await? {
        let id = connection_id(owner, &row.id);
        if connections.is_some_and(|c| !c.contains(&id)) {
            continue;
        }
        for c in [
            g::MesheryController::Operator,
            g::MesheryController::Meshsync,
            g::MesheryController::Broker,
        ] {
            out.push(item(app, owner, &row, c));
        }
    }
    Ok(out)
}

pub(crate) async fn operator(
    app: &App,
    owner: &str,
    connection: &str,
) -> Result<g::MesheryControllersStatusListItem, ApiError> {
    let row = row_of_connection(app, owner, connection).await?;
    Ok(item(app, owner, &row, g::MesheryController::Operator))
}

/// MeshSync's or the broker's status in Meshery's words (the UI tests the text).
fn controller_status(
    app: &App,
    owner: &str,
    row: &ConnectionRow,
    broker: bool,
) -> g::OperatorControllerStatus {
    use g::MesheryControllerStatus as S;
    let s = state(app, row);
    let text = match (s, broker) {
        (S::Deployed, false) => "Running",
        (S::Deployed, true) => "Connected",
        (S::Deploying, false) => "Deploying",
        (S::Deploying, true) => "Disconnected",
        (S::Notdeployed, _) => "Not Deployed",
        (S::Unkown, _) => "Unknown",
    };
    let error = (s == S::Unkown && !row.status_reason.is_empty()).then(|| g::Error {
        code: String::new(),
        description: row.status_reason.clone(),
    });
    g::OperatorControllerStatus {
        name: if broker { "MesheryBroker" } else { "MeshSync" }.to_string(),
        version: app.version().build,
        status: text.to_string(),
        error,
        context_id: row.id.clone(),
        connection_id: connection_id(owner, &row.id),
    }
}

pub(crate) async fn meshsync(
    app: &App,
    owner: &str,
    connection: &str,
) -> Result<g::OperatorControllerStatus, ApiError> {
    let row = row_of_connection(app, owner, connection).await?;
    Ok(controller_status(app, owner, &row, false))
}

pub(crate) async fn broker(
    app: &App,
    owner: &str,
    connection: &str,
) -> Result<g::OperatorControllerStatus, ApiError> {
    let row = row_of_connection(app, owner, connection).await?;
    Ok(controller_status(app, owner, &row, true))
}

/// `deployMeshsync` and `connectToNats` (Meshery's older fields): what the controller
/// does now, as a `Status`.
pub(crate) async fn context_status(
    app: &App,
    owner: &str,
    context: &str,
    broker: bool,
) -> Result<g::Status, ApiError> {
    use g::MesheryControllerStatus as S;
    let row = row_of_context(app, owner, context).await?;
    Ok(match (state(app, &row), broker) {
        (S::Deployed, true) => g::Status::Connected,
        (S::Deployed, false) => g::Status::Enabled,
        (S::Deploying, false) => g::Status::Processing,
        (S::Notdeployed, _) | (S::Deploying, true) => g::Status::Disabled,
        (S::Unkown, _) => g::Status::Unknown,
    })
}

/// Meshery's `OperatorStatus` of a context (`listenToOperatorState`).
pub(crate) async fn operator_of_context(
    app: &App,
    owner: &str,
    context: &str,
) -> Result<g::OperatorStatusPerK8sContext, ApiError> {
    let row = row_of_context(app, owner, context).await?;
    let status = match operator_state(app, &row) {
        g::MesheryControllerStatus::Deployed => g::Status::Enabled,
        _ => g::Status::Disabled,
    };
    Ok(g::OperatorStatusPerK8sContext {
        context_id: row.id.clone(),
        operator_status: g::OperatorStatus {
            status,
            version: app.version().build,
            controllers: vec![
                controller_status(app, owner, &row, false),
                controller_status(app, owner, &row, true),
            ],
            error: None,
            context_id: row.id.clone(),
        },
    })
}

/// MeshSync's status of a context (`listenToMeshSyncEvents`).
pub(crate) async fn meshsync_of_context(
    app: &App,
    owner: &str,
    context: &str,
) -> Result<g::OperatorControllerStatusPerK8sContext, ApiError> {
    let row = row_of_context(app, owner, context).await?;
    Ok(g::OperatorControllerStatusPerK8sContext {
        context_id: row.id.clone(),
        operator_controller_status: controller_status(app, owner, &row, false),
    })
}

/// Switches a context's embedded operator: its connection is used again (connected once
/// the inventory reaches the cluster) or put in maintenance (the inventory stops).
pub(crate) async fn change_operator(
    app: &App,
    session: &Session,
    context: &str,
    on: bool,
) -> Result<(), ApiError> {
    let owner = session.owner();
    row_of_context(app, &owner, context).await?;
    let update = crate::models::ConnectionUpdate {
        status: Some(if on {
            crate::models::ConnectionStatus::Connected
        } else {
            crate::models::ConnectionStatus::Maintenance
        }),
        ..Default::default()
    };
    app.update_connection_noted(session, &connection_id(&owner, context), &update)
        .await?;
    Ok(())
}

/// A page of the user's contexts as Meshery's `K8sContextsPage`.
pub(crate) async fn contexts_page(
    app: &App,
    session: &Session,
    selector: &g::PageFilter,
) -> Result<g::K8sContextsPage, ApiError> {
    let listing = crate::gql_perf::page_filter(selector)?;
    let (contexts, total) = app.kubernetes.list(session, &listing).await?;
    let owner = session.owner();
    let versions: BTreeMap<String, String> = rows(app, &owner)
        .await?
        .into_iter()
        .map(|r| (r.id, r.server_version))
        .collect();
    Ok(g::K8sContextsPage {
        total_count: crate::gql_perf::int(total),
        contexts: contexts
            .into_iter()
            .map(|c| g::K8sContext {
                connection_id: connection_id(&owner, &c.id),
                version: versions.get(&c.id).cloned().unwrap_or_default(),
                name: c.name,
                server: c.server,
                owner: owner.clone(),
                created_by: owner.clone(),
                meshery_instance_id: app.instance_id.clone(),
                kubernetes_server_id: c.id.clone(),
                deployment_type: "out_of_cluster".to_string(),
                created_at: g::Time(c.created_at),
                updated_at: g::Time(c.updated_at),
                id: c.id,
            })
            .collect(),
    })
}

/// The namespaces the inventory holds objects of.
pub(crate) async fn namespaces(
    app: &App,
    owner: &str,
    ids: Option<Vec<String>>,
) -> Result<Vec<g::NameSpace>, ApiError> {
    let summary = app
        .inventory
        .summary(owner, contexts(ids).as_deref(), &[])
        .await?;
    let mut names = summary.namespaces;
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .filter(|n| !n.is_empty())
        .map(|namespace| g::NameSpace { namespace })
        .collect())
}

/// Meshery's resync: list the context (every one of the user's when `context` is empty)
/// again, after dropping what the inventory holds of it when `clear`.
pub(crate) async fn resync(
    app: &App,
    owner: &str,
    context: &str,
    clear: bool,
) -> Result<(), ApiError> {
    let targets: Vec<String> = if context.trim().is_empty() {
        rows(app, owner).await?.into_iter().map(|r| r.id).collect()
    } else {
        vec![row_of_context(app, owner, context).await?.id]
    };
    for id in targets {
        app.inventory.resync(owner, &id, clear).await?;
    }
    Ok(())
}

/// An inventory object as JSON, for reading its parts by name.
async fn objects(app: &App, query: ResourceQuery) -> Result<Vec<Value>, ApiError> {
    let (found, _) = app.inventory.resources(&query, true, true).await?;
    found
        .into_iter()
        .map(|r| serde_json::to_value(r).map_err(|e| ApiError::internal("encoding an object", e)))
        .collect()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

/// A part kept as JSON text (`spec`, `status`), parsed.
fn part(v: &Value, name: &str) -> Value {
    v.pointer(&format!("/{name}/attribute"))
        .and_then(Value::as_str)
        .and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

fn pairs(v: &Value, name: &str) -> serde_json::Map<String, Value> {
    v.pointer(&format!("/metadata/{name}"))
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|kv| {
                    (
                        text(kv, "/key").to_string(),
                        Value::from(text(kv, "/value")),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn query(owner: &str, contexts: Option<Vec<String>>, kind: &str) -> ResourceQuery {
    ResourceQuery {
        owner: owner.to_string(),
        contexts,
        kinds: vec![kind.to_string()],
        order: ("name", false),
        page_size: Some(MAX_OBJECTS),
        ..Default::default()
    }
}

/// An object of the user's clusters as YAML (Kubernetes' shape), found by kind, name
/// and namespace.
pub(crate) async fn describe(
    app: &App,
    owner: &str,
    name: &str,
    kind: &str,
    namespace: &str,
) -> Result<g::KctlDescribeDetails, ApiError> {
    let mut q = query(owner, None, kind);
    q.search = Some(name.to_string());
    if !namespace.is_empty() {
        q.namespaces = vec![namespace.to_string()];
    }
    let found = objects(app, q)
        .await?
        .into_iter()
        .find(|o| {
            text(o, "/metadata/name") == name
                && (namespace.is_empty() || text(o, "/metadata/namespace") == namespace)
        })
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "the inventory has no {kind} {name:?} in namespace {namespace:?}"
            ))
        })?;
    let mut metadata = serde_json::Map::new();
    for key in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = found.pointer(&format!("/metadata/{key}")) {
            metadata.insert(key.into(), v.clone());
        }
    }
    metadata.insert("labels".into(), Value::Object(pairs(&found, "labels")));
    metadata.insert(
        "annotations".into(),
        Value::Object(pairs(&found, "annotations")),
    );
    let mut object = serde_json::Map::new();
    object.insert(
        "apiVersion".into(),
        Value::from(text(&found, "/apiVersion")),
    );
    object.insert("kind".into(), Value::from(text(&found, "/kind")));
    object.insert("metadata".into(), Value::Object(metadata));
    for p in ["spec", "status"] {
        let v = part(&found, p);
        if !v.is_null() {
            object.insert(p.into(), v);
        }
    }
    let yaml = yaml_serde::to_string(&Value::Object(object))
        .map_err(|e| ApiError::internal("writing an object as YAML", e))?;
    Ok(g::KctlDescribeDetails {
        describe: Some(yaml),
        ctxid: Some(text(&found, "/cluster_id").to_string()),
    })
}

/// Services whose name contains `word`.
async fn services(
    app: &App,
    owner: &str,
    contexts: Option<Vec<String>>,
    word: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut q = query(owner, contexts, "Service");
    q.search = Some(word.to_string());
    objects(app, q).await
}

pub(crate) async fn telemetry(
    app: &App,
    owner: &str,
    ids: Option<Vec<String>>,
) -> Result<Vec<Option<g::TelemetryComp>>, ApiError> {
    let ids = contexts(ids);
    let mut out = Vec::new();
    for name in ["grafana", "prometheus"] {
        for s in services(app, owner, ids.clone(), name).await? {
            out.push(Some(g::TelemetryComp {
                name: name.to_string(),
                spec: part(&s, "spec").to_string(),
                status: match part(&s, "status") {
                    Value::Null => "{}".to_string(),
                    v => v.to_string(),
                },
            }));
        }
    }
    Ok(out)
}

/// Meshes by the namespace their control plane runs in, and their sidecar's container name.
const MESHES: [(g::MeshType, &str, &str, &str); 9] = [
    (g::MeshType::Istio, "istio", "istio-system", "istio-proxy"),
    (g::MeshType::Linkerd, "linkerd", "linkerd", "linkerd-proxy"),
    (g::MeshType::Consul, "consul", "consul", "consul-dataplane"),
    (g::MeshType::Kuma, "kuma", "kuma-system", "kuma-sidecar"),
    (g::MeshType::TraefikMesh, "traefik-mesh", "traefik-mesh", ""),
    (g::MeshType::OpenServiceMesh, "osm", "osm-system", "envoy"),
    (
        g::MeshType::NginxServiceMesh,
        "nginx-service-mesh",
        "nginx-mesh",
        "nginx-mesh-sidecar",
    ),
    (g::MeshType::AppMesh, "app-mesh", "appmesh-system", "envoy"),
    (
        g::MeshType::NetworkServiceMesh,
        "network-service-mesh",
        "nsm-system",
        "",
    ),
];

fn wanted(filter: &Option<g::ServiceMeshFilter>, mesh: g::MeshType) -> bool {
    match filter.as_ref().and_then(|f| f.r#type) {
        None | Some(g::MeshType::AllMesh) => true,
        Some(t) => t == mesh,
    }
}

fn filter_contexts(filter: &Option<g::ServiceMeshFilter>) -> Option<Vec<String>> {
    contexts(filter.as_ref().and_then(|f| f.k8s_cluster_i_ds.clone()))
}

const ADDONS: [&str; 6] = [
    "grafana",
    "prometheus",
    "jaeger",
    "kiali",
    "zipkin",
    "tracing",
];

pub(crate) async fn addons(
    app: &App,
    owner: &str,
    filter: Option<g::ServiceMeshFilter>,
) -> Result<Vec<g::AddonList>, ApiError> {
    let ids = filter_contexts(&filter);
    let mut out = Vec::new();
    for name in ADDONS {
        for s in services(app, owner, ids.clone(), name).await? {
            if text(&s, "/metadata/name") != name {
                continue;
            }
            let namespace = text(&s, "/metadata/namespace");
            let mesh = MESHES.iter().find(|m| m.2 == namespace);
            if let Some(m) = mesh
                && !wanted(&filter, m.0)
            {
                continue;
            }
            let port = part(&s, "spec")
                .pointer("/ports/0/port")
                .and_then(Value::as_i64);
            out.push(g::AddonList {
                name: name.to_string(),
                owner: mesh.map_or(namespace, |m| m.1).to_string(),
                endpoint: Some(match port {
                    Some(p) => format!("{name}.{namespace}:{p}"),
                    None => format!("{name}.{namespace}"),
                }),
            });
        }
    }
    Ok(out)
}

/// The tag of an image reference, or empty.
fn tag(image: &str) -> &str {
    let last = image.rsplit('/').next().unwrap_or(image);
    last.split_once(':').map_or("", |(_, t)| t)
}

fn container(pod: &Value, c: &Value) -> g::Container {
    let name = text(c, "/name");
    let status = part(pod, "status");
    let st = status
        .pointer("/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|all| all.iter().find(|s| text(s, "/name") == name));
    let field = |s: &Value, p: &str| s.pointer(p).cloned().map(g::Any);
    g::Container {
        control_plane_member_name: String::new(),
        container_name: name.to_string(),
        image: text(c, "/image").to_string(),
        status: st.map(|s| g::ContainerStatus {
            container_status_name: name.to_string(),
            image: text(s, "/image").to_string(),
            state: field(s, "/state"),
            last_state: field(s, "/lastState"),
            ready: s
                .pointer("/ready")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            restart_count: field(s, "/restartCount"),
            started: s
                .pointer("/started")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            image_id: field(s, "/imageID"),
            container_id: field(s, "/containerID"),
        }),
        ports: c.pointer("/ports").and_then(Value::as_array).map(|ports| {
            ports
                .iter()
                .map(|p| {
                    Some(g::ContainerPort {
                        name: p
                            .pointer("/name")
                            .and_then(Value::as_str)
                            .map(str::to_string),
                        container_port: p
                            .pointer("/containerPort")
                            .and_then(Value::as_i64)
                            .and_then(|n| i32::try_from(n).ok())
                            .unwrap_or(0),
                        protocol: match text(p, "/protocol") {
                            "" => "TCP".to_string(),
                            other => other.to_string(),
                        },
                    })
                })
                .collect()
        }),
        resources: c.pointer("/resources").cloned().map(g::Any),
    }
}

fn containers(pod: &Value) -> Vec<Value> {
    part(pod, "spec")
        .pointer("/containers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

/// Control planes (Pods in a mesh's namespace) and data planes (sidecars), per mesh.
pub(crate) async fn planes(
    app: &App,
    owner: &str,
    filter: Option<g::ServiceMeshFilter>,
) -> Result<(Vec<g::ControlPlane>, Vec<g::DataPlane>), ApiError> {
    let pods = objects(app, query(owner, filter_contexts(&filter), "Pod")).await?;
    let mut control = Vec::new();
    let mut data = Vec::new();
    for (mesh, name, namespace, sidecar) in MESHES {
        if !wanted(&filter, mesh) {
            continue;
        }
        let members: Vec<g::ControlPlaneMember> = pods
            .iter()
            .filter(|p| text(p, "/metadata/namespace") == namespace)
            .map(|p| {
                let first = containers(p).into_iter().next().unwrap_or(Value::Null);
                let labels = pairs(p, "labels");
                let component = ["app", "app.kubernetes.io/name", "component"]
                    .iter()
                    .find_map(|k| labels.get(*k).and_then(Value::as_str))
                    .unwrap_or_else(|| text(&first, "/name"));
                g::ControlPlaneMember {
                    name: text(p, "/metadata/name").to_string(),
                    component: component.to_string(),
                    version: tag(text(&first, "/image")).to_string(),
                    namespace: namespace.to_string(),
                    data_planes: None,
                }
            })
            .collect();
        if !members.is_empty() {
            control.push(g::ControlPlane {
                name: name.to_string(),
                members,
            });
        }
        if sidecar.is_empty() {
            continue;
        }
        let proxies: Vec<g::Container> = pods
            .iter()
            .flat_map(|p| {
                containers(p)
                    .into_iter()
                    .filter(|c| text(c, "/name") == sidecar)
                    .map(|c| container(p, &c))
                    .collect::<Vec<_>>()
            })
            .collect();
        if !proxies.is_empty() {
            data.push(g::DataPlane {
                name: name.to_string(),
                proxies,
            });
        }
    }
    Ok((control, data))
}

/// A value now, then again after each change of the owner's connections or inventory
/// (of these contexts), sent only when it differs from the last one sent. An error of the
/// first value fails the call; later ones are items of the stream.
pub(crate) async fn follow<T, F>(
    app: App,
    owner: String,
    contexts: Option<Vec<String>>,
    value: F,
) -> Result<BoxStream<'static, Result<Arc<T>, ApiError>>, ApiError>
where
    T: PartialEq + Clone + Send + Sync + 'static,
    F: Fn(App, String) -> BoxFuture<'static, Result<T, ApiError>> + Send + Sync + 'static,
{
    // Subscribed before the first value is read: no change falls in between.
    let changes = app.inventory.changes();
    let first = value(app.clone(), owner.clone()).await?;
    let ticks = app.inventory.live(changes, owner.clone(), contexts);
    let next = ticks
        .then(move |()| value(app.clone(), owner.clone()))
        .scan(first.clone(), |last, now| {
            let out = match now {
                Ok(now) if now != *last => {
                    *last = now.clone();
                    Some(Ok(Arc::new(now)))
                }
                Ok(_) => None,
                Err(e) => Some(Err(e)),
            };
            std::future::ready(Some(out))
        })
        .filter_map(std::future::ready);
    Ok(
        futures_util::stream::once(std::future::ready(Ok(Arc::new(first))))
            .chain(next)
            .boxed(),
    )
}
