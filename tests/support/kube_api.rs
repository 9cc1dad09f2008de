//! A Kubernetes API server for tests, never shipped: what the server and `kubectl` use of
//! one, kept in memory. Discovery (`/version`, `/api`, `/apis`, group versions), create,
//! get, list, update, merge patch and delete of namespaced and cluster-scoped kinds,
//! CustomResourceDefinitions that add kinds, server-side apply (field managers, owned
//! fields in `managedFields`, 409 conflicts unless forced, fields an applier dropped are
//! removed), `dryRun=All`, lists with a `resourceVersion`, watches from one (410 Gone
//! once history was compacted past it), label and field selectors, bearer-token auth, and
//! `Status` error bodies with causes. `tests/kube_api.rs` checks it against the real
//! `kubectl`.
//!
//! Simplifications, on purpose: lists are atomic in field ownership (Kubernetes merges
//! some by key), strategic merge patches are taken as JSON merge patches, and validation
//! covers what the tests' manifests can get wrong (names, Deployment replicas, selector
//! and containers, Service ports, ConfigMap data).

// Handlers answer a `Response` as their error: the natural shape for a test server.
#![allow(dead_code, clippy::result_large_err)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use parking_lot::Mutex;
use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

/// How many changes a watch can resume from; older resource versions get 410.
const HISTORY: usize = 10_000;

/// A kind the server serves.
#[derive(Debug, Clone)]
struct Kind {
    group: String,
    version: String,
    plural: String,
    singular: String,
    kind: String,
    namespaced: bool,
    short: Vec<String>,
}

impl Kind {
    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
    /// `deployments.apps`, as Kubernetes names a resource in messages.
    fn qualified(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }
}

fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
) -> Kind {
    Kind {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short: short.iter().map(|s| s.to_string()).collect(),
    }
}

/// group, plural, namespace ("" when cluster-scoped), name.
type Key = (String, String, String, String);

#[derive(Debug, Clone)]
struct Change {
    rv: u64,
    kind: &'static str,
    group: String,
    plural: String,
    object: Value,
}

struct Db {
    rv: u64,
    kinds: Vec<Kind>,
    objects: BTreeMap<Key, Value>,
    history: VecDeque<Change>,
    /// Watches from a resource version below this get 410 Gone.
    oldest: u64,
}

struct Inner {
    db: Mutex<Db>,
    changes: broadcast::Sender<Change>,
    token: Option<String>,
    /// Requests seen, by method and path (tests assert what a client did).
    requests: Mutex<Vec<String>>,
    /// Set while paused: open watches end.
    closing: tokio::sync::watch::Sender<bool>,
    /// Bumped to end the open watches (as their timeout would).
    kick: tokio::sync::watch::Sender<u64>,
    /// When set, workloads report themselves ready this long after each write (a
    /// controller and kubelets at work); unset, they never do.
    controller: Mutex<Option<std::time::Duration>>,
}

/// A running test API server (https, with a CA of its own).
pub struct KubeApi {
    inner: Arc<Inner>,
    pub url: String,
    pub addr: std::net::SocketAddr,
    /// The CA that signed the server's certificate (PEM), as a kubeconfig carries it.
    pub ca_pem: String,
    tls: meshery::tls::TlsAcceptor,
    served: Option<meshery::serve::Served>,
}

impl KubeApi {
    /// Starts on a free port of 127.0.0.1; requests must carry `token` as a bearer
    /// credential when one is given.
    pub async fn start(token: Option<&str>) -> KubeApi {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (ca_pem, tls) = certificates();
        let inner = Self::fresh(token);
        let served = Self::spawn(listener, inner.clone(), tls.clone());
        KubeApi {
            inner,
            url: format!("https://{addr}"),
            addr,
            ca_pem,
            tls,
            served: Some(served),
        }
    }

    fn fresh(token: Option<&str>) -> Arc<Inner> {
        let kinds = vec![
            builtin("", "v1", "namespaces", "Namespace", false, &["ns"]),
            builtin("", "v1", "configmaps", "ConfigMap", true, &["cm"]),
            builtin("", "v1", "services", "Service", true, &["svc"]),
            builtin("", "v1", "secrets", "Secret", true, &[]),
            builtin("", "v1", "serviceaccounts", "ServiceAccount", true, &["sa"]),
            builtin("", "v1", "pods", "Pod", true, &["po"]),
            builtin("apps", "v1", "deployments", "Deployment", true, &["deploy"]),
            builtin("apps", "v1", "statefulsets", "StatefulSet", true, &["sts"]),
            builtin("apps", "v1", "daemonsets", "DaemonSet", true, &["ds"]),
            builtin(
                "apiextensions.k8s.io",
                "v1",
                "customresourcedefinitions",
                "CustomResourceDefinition",
                false,
                &["crd", "crds"],
            ),
        ];
        let mut db = Db {
            rv: 0,
            kinds,
            objects: BTreeMap::new(),
            history: VecDeque::new(),
            oldest: 0,
        };
        for ns in ["default", "kube-system"] {
            let object = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}});
            db.rv += 1;
            let stored = stamp_new(object, db.rv);
            db.objects.insert(
                (String::new(), "namespaces".into(), String::new(), ns.into()),
                stored,
            );
        }
        Arc::new(Inner {
            db: Mutex::new(db),
            changes: broadcast::channel(4096).0,
            token: token.map(str::to_string),
            requests: Mutex::new(Vec::new()),
            closing: tokio::sync::watch::channel(false).0,
            kick: tokio::sync::watch::channel(0).0,
            controller: Mutex::new(None),
        })
    }

    fn spawn(
        listener: tokio::net::TcpListener,
        inner: Arc<Inner>,
        tls: meshery::tls::TlsAcceptor,
    ) -> meshery::serve::Served {
        inner.closing.send_replace(false);
        let app = axum::Router::new().fallback(handle).with_state(inner);
        meshery::serve::spawn(listener, app, Default::default(), Some(tls)).unwrap()
    }

    /// Stops serving, as an API server that went away: open watches end and connections
    /// are refused; the data is kept for `resume`.
    pub async fn pause(&mut self) {
        self.inner.closing.send_replace(true);
        if let Some(served) = self.served.take() {
            let _ = served.stop().await;
        }
    }

    /// Serves the same data on the same address again.
    pub async fn resume(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.served = Some(Self::spawn(listener, self.inner.clone(), self.tls.clone()));
    }

    pub async fn stop(mut self) {
        self.pause().await;
    }

    /// A kubeconfig with one context, `name`, for this server.
    pub fn kubeconfig(&self, name: &str) -> String {
        // A token even when none is checked: kubectl asks for a password without one.
        let token = self.inner.token.as_deref().unwrap_or("anonymous");
        let user = format!("{{name: {name}, user: {{token: {token}}}}}");
        let ca = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &self.ca_pem);
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: {name}\n\
             clusters: [{{name: {name}, cluster: {{server: \"{}\", certificate-authority-data: {ca}}}}}]\n\
             users: [{user}]\n\
             contexts: [{{name: {name}, context: {{cluster: {name}, user: {name}, namespace: default}}}}]\n",
            self.url
        )
    }

    /// Forgets the change history: a watch from any resource version before now gets
    /// 410 Gone, as after an etcd compaction.
    pub fn compact(&self) {
        let mut db = self.inner.db.lock();
        db.history.clear();
        db.oldest = db.rv;
    }

    /// Workloads (Deployments, StatefulSets, DaemonSets) written from now on report all
    /// their replicas ready `after` the write, as a cluster's controllers would; `None`:
    /// they stay unready (no controller runs).
    pub fn run_controller(&self, after: Option<std::time::Duration>) {
        *self.inner.controller.lock() = after;
    }

    /// Adds `n` ConfigMaps to a namespace (made if missing) at once, as if they had been
    /// there all along (no watch event): a cluster to list.
    pub fn seed_config_maps(&self, namespace: &str, n: usize) {
        let mut db = self.inner.db.lock();
        let ns_key = (
            String::new(),
            "namespaces".to_string(),
            String::new(),
            namespace.to_string(),
        );
        if !db.objects.contains_key(&ns_key) {
            db.rv += 1;
            let ns = stamp_new(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}, "status": {"phase": "Active"}}),
                db.rv,
            );
            db.objects.insert(ns_key, ns);
        }
        for i in 0..n {
            db.rv += 1;
            let name = format!("seed-{i:06}");
            let object = stamp_new(
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": name, "namespace": namespace, "labels": {"seed": "true", "batch": (i / 1000).to_string()}},
                       "data": {"index": i.to_string(), "payload": "x".repeat(64)}}),
                db.rv,
            );
            db.objects.insert(
                (
                    String::new(),
                    "configmaps".to_string(),
                    namespace.to_string(),
                    name,
                ),
                object,
            );
        }
        // Nothing earlier can be resumed: a watcher lists.
        db.history.clear();
        db.oldest = db.rv;
    }

    /// Adds objects of served kinds at once, as if they had been there all along (no watch
    /// event), with the namespaces they name. Panics on a kind the server does not serve.
    pub fn seed(&self, objects: &[Value]) {
        let mut db = self.inner.db.lock();
        for object in objects {
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let kind_name = object["kind"].as_str().unwrap_or_default();
            let kind = db
                .kinds
                .iter()
                .find(|k| k.api_version() == api_version && k.kind == kind_name)
                .unwrap_or_else(|| panic!("no kind {api_version} {kind_name}"))
                .clone();
            let namespace = object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let ns_key = (
                String::new(),
                "namespaces".to_string(),
                String::new(),
                namespace.clone(),
            );
            if kind.namespaced && !db.objects.contains_key(&ns_key) {
                db.rv += 1;
                let ns = stamp_new(
                    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}, "status": {"phase": "Active"}}),
                    db.rv,
                );
                db.objects.insert(ns_key, ns);
            }
            db.rv += 1;
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let stamped = stamp_new(object.clone(), db.rv);
            db.objects.insert(
                (kind.group.clone(), kind.plural.clone(), namespace, name),
                stamped,
            );
        }
        db.history.clear();
        db.oldest = db.rv;
    }

    /// Ends every open watch, as when their time is up; clients watch again from the
    /// resource version they saw (after `compact`, they get 410 and must list again).
    pub fn end_watches(&self) {
        self.inner.kick.send_modify(|n| *n += 1);
    }

    /// Removes an object without telling watchers (a change a client can only learn by
    /// listing again), and forgets the history, as an etcd compaction after it would.
    pub fn remove_unwatched(&self, group: &str, plural: &str, namespace: &str, name: &str) -> bool {
        let key = (
            group.to_string(),
            plural.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        let mut db = self.inner.db.lock();
        let removed = db.objects.remove(&key).is_some();
        db.rv += 1;
        db.history.clear();
        db.oldest = db.rv;
        removed
    }

    /// The requests seen so far (`METHOD /path?query`).
    pub fn requests(&self) -> Vec<String> {
        self.inner.requests.lock().clone()
    }

    /// An object as stored, if it exists (`group` "" for the core group).
    pub fn object(&self, group: &str, plural: &str, namespace: &str, name: &str) -> Option<Value> {
        let key = (
            group.to_string(),
            plural.to_string(),
            namespace.to_string(),
            name.to_string(),
        );
        self.inner.db.lock().objects.get(&key).cloned()
    }

    /// How many objects of a resource are stored, in every namespace.
    pub fn count(&self, group: &str, plural: &str) -> usize {
        self.inner
            .db
            .lock()
            .objects
            .keys()
            .filter(|k| k.0 == group && k.1 == plural)
            .count()
    }
}

/// A CA and a certificate it signed for 127.0.0.1: the CA's PEM and the server's TLS.
fn certificates() -> (String, meshery::tls::TlsAcceptor) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "test kubernetes CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let config = meshery::tls::server_config(
        leaf.pem().as_bytes(),
        key.serialize_pem().as_bytes(),
        &[b"h2", b"http/1.1"],
    )
    .unwrap();
    (
        ca_cert.pem(),
        meshery::tls::TlsAcceptor::from(Arc::new(config)),
    )
}

/// A `Status` error body.
fn status(code: u16, reason: &str, message: String, details: Value) -> Response {
    let mut body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    if !details.is_null() {
        body["details"] = details;
    }
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        axum::Json(body),
    )
        .into_response()
}

fn not_found(kind: &Kind, name: &str) -> Response {
    status(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", kind.qualified()),
        json!({"name": name, "group": kind.group, "kind": kind.plural}),
    )
}

/// 422 Invalid with one cause per bad field.
fn invalid(kind: &Kind, name: &str, causes: Vec<(String, String, String)>) -> Response {
    let text: Vec<String> = causes
        .iter()
        .map(|(_, field, message)| format!("{field}: {message}"))
        .collect();
    status(
        422,
        "Invalid",
        format!(
            "{}.{} \"{name}\" is invalid: {}",
            kind.kind,
            if kind.group.is_empty() {
                "core"
            } else {
                &kind.group
            },
            text.join(", ")
        ),
        json!({
            "name": name, "group": kind.group, "kind": kind.kind,
            "causes": causes.iter().map(|(reason, field, message)| json!({"reason": reason, "message": message, "field": field})).collect::<Vec<_>>(),
        }),
    )
}

/// What a request addresses.
enum Target {
    Root,
    Groups,
    /// `/api/v1`, `/apis/{g}/{v}`.
    GroupVersion(String, String),
    Collection {
        kind: Kind,
        namespace: Option<String>,
    },
    Object {
        kind: Kind,
        namespace: Option<String>,
        name: String,
    },
}

fn parse_target(db: &Db, path: &str) -> Result<Target, Response> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, version, rest) = match segments.as_slice() {
        ["api"] => return Ok(Target::Root),
        ["apis"] => return Ok(Target::Groups),
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => {
            return Err(status(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
                Value::Null,
            ));
        }
    };
    let find = |plural: &str| {
        db.kinds
            .iter()
            .find(|k| k.group == group && k.version == version && k.plural == plural)
            .cloned()
            .ok_or_else(|| {
                status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource".into(),
                    Value::Null,
                )
            })
    };
    Ok(match rest {
        [] => {
            if !db
                .kinds
                .iter()
                .any(|k| k.group == group && k.version == version)
            {
                return Err(status(
                    404,
                    "NotFound",
                    "the server could not find the requested resource".into(),
                    Value::Null,
                ));
            }
            Target::GroupVersion(group.into(), version.into())
        }
        ["namespaces", ns, plural] => {
            let kind = find(plural)?;
            Target::Collection {
                kind,
                namespace: Some(ns.to_string()),
            }
        }
        ["namespaces", ns, plural, name] => {
            let kind = find(plural)?;
            Target::Object {
                kind,
                namespace: Some(ns.to_string()),
                name: name.to_string(),
            }
        }
        [plural] => Target::Collection {
            kind: find(plural)?,
            namespace: None,
        },
        [plural, name] => Target::Object {
            kind: find(plural)?,
            namespace: None,
            name: name.to_string(),
        },
        _ => {
            return Err(status(
                404,
                "NotFound",
                "the server could not find the requested resource".into(),
                Value::Null,
            ));
        }
    })
}

fn query(request: &Request) -> BTreeMap<String, String> {
    form_urlencoded::parse(request.uri().query().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

async fn handle(State(inner): State<Arc<Inner>>, request: Request) -> Response {
    let line = format!(
        "{} {}",
        request.method(),
        request
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("")
    );
    inner.requests.lock().push(line);
    if let Some(token) = &inner.token {
        let given = meshery_http::credentials::bearer(request.headers());
        if given != Some(token.as_str()) {
            return status(401, "Unauthorized", "Unauthorized".into(), Value::Null);
        }
    }
    let path = request.uri().path().to_string();
    if path == "/version" {
        return axum::Json(json!({
            "major": "1", "minor": "32", "gitVersion": "v1.32.0-meshery-test",
            "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
            "buildDate": "2026-01-01T00:00:00Z", "goVersion": "go1.23", "compiler": "gc",
            "platform": "linux/amd64"
        }))
        .into_response();
    }
    if path == "/openapi/v3" || path.starts_with("/openapi/v3/") {
        return openapi_v3(&inner, &path);
    }
    if path.starts_with("/openapi/") {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Value::Null,
        );
    }
    let q = query(&request);
    let method = request.method().clone();
    let headers = request.headers().clone();
    let body = match axum::body::to_bytes(request.into_body(), 8 << 20).await {
        Ok(b) => b,
        Err(_) => {
            return status(
                413,
                "RequestEntityTooLarge",
                "request body too large".into(),
                Value::Null,
            );
        }
    };
    let target = {
        let db = inner.db.lock();
        match parse_target(&db, &path) {
            Ok(t) => t,
            Err(r) => return r,
        }
    };
    match (method, target) {
        (Method::GET, Target::Root) => axum::Json(json!({
            "kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]
        }))
        .into_response(),
        (Method::GET, Target::Groups) => groups(&inner),
        (Method::GET, Target::GroupVersion(g, v)) => resources(&inner, &g, &v),
        (Method::GET, Target::Collection { kind, namespace }) => {
            if q.get("watch").is_some_and(|w| w == "true" || w == "1") {
                watch(&inner, kind, namespace, &q)
            } else {
                list(&inner, &kind, namespace.as_deref(), &q)
            }
        }
        (Method::GET, Target::Object { kind, namespace, name }) => {
            let key = key_of(&kind, namespace.as_deref(), &name);
            match inner.db.lock().objects.get(&key) {
                Some(o) => axum::Json(o.clone()).into_response(),
                None => not_found(&kind, &name),
            }
        }
        (Method::POST, Target::Collection { kind, namespace }) => {
            let object = match decode(&headers, &body) {
                Ok(o) => o,
                Err(r) => return r,
            };
            write(&inner, &kind, namespace.as_deref(), None, Write::Create(object), &q)
        }
        (Method::PUT, Target::Object { kind, namespace, name }) => {
            let object = match decode(&headers, &body) {
                Ok(o) => o,
                Err(r) => return r,
            };
            write(&inner, &kind, namespace.as_deref(), Some(&name), Write::Replace(object), &q)
        }
        (Method::PATCH, Target::Object { kind, namespace, name }) => {
            let content_type = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_string();
            let patch = match decode(&headers, &body) {
                Ok(o) => o,
                Err(r) => return r,
            };
            let op = match content_type.as_str() {
                "application/apply-patch+yaml" | "application/apply-patch+json" => Write::Apply(patch),
                "application/merge-patch+json" | "application/strategic-merge-patch+json" => Write::Merge(patch),
                other => {
                    return status(415, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/apply-patch+yaml, application/merge-patch+json (got {other:?})"), Value::Null);
                }
            };
            write(&inner, &kind, namespace.as_deref(), Some(&name), op, &q)
        }
        (Method::DELETE, Target::Object { kind, namespace, name }) => {
            delete(&inner, &kind, namespace.as_deref(), &name, &q)
        }
        _ => status(405, "MethodNotAllowed", "the server does not allow this method on the requested resource".into(), Value::Null),
    }
}

fn groups(inner: &Inner) -> Response {
    let db = inner.db.lock();
    let mut seen = BTreeMap::<String, Vec<String>>::new();
    for k in db.kinds.iter().filter(|k| !k.group.is_empty()) {
        let versions = seen.entry(k.group.clone()).or_default();
        if !versions.contains(&k.version) {
            versions.push(k.version.clone());
        }
    }
    let groups: Vec<Value> = seen
        .into_iter()
        .map(|(name, versions)| {
            let vs: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{name}/{v}"), "version": v}))
                .collect();
            json!({"name": name, "versions": vs, "preferredVersion": vs[0].clone()})
        })
        .collect();
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
        .into_response()
}

/// OpenAPI v3 discovery: the index of group versions, and for each one its object paths
/// without schemas. kubectl reads it to learn that the server validates fields itself
/// (the `fieldValidation` parameter of a kind's PATCH), and then validates nothing locally.
fn openapi_v3(inner: &Inner, path: &str) -> Response {
    let db = inner.db.lock();
    let mut versions: Vec<(String, String)> = db
        .kinds
        .iter()
        .map(|k| (k.group.clone(), k.version.clone()))
        .collect();
    versions.sort();
    versions.dedup();
    let prefix = |g: &str, v: &str| {
        if g.is_empty() {
            format!("api/{v}")
        } else {
            format!("apis/{g}/{v}")
        }
    };
    if path == "/openapi/v3" {
        let paths: Map<String, Value> = versions
            .iter()
            .map(|(g, v)| {
                let p = prefix(g, v);
                (p.clone(), json!({"serverRelativeURL": format!("/openapi/v3/{p}?hash={}", db.kinds.len())}))
            })
            .collect();
        return axum::Json(json!({"paths": paths})).into_response();
    }
    let wanted = path.trim_start_matches("/openapi/v3/");
    let Some((group, version)) = versions.iter().find(|(g, v)| prefix(g, v) == wanted) else {
        return status(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
            Value::Null,
        );
    };
    let mut paths = Map::new();
    for k in db
        .kinds
        .iter()
        .filter(|k| &k.group == group && &k.version == version)
    {
        let object = if k.namespaced {
            format!(
                "/{}/namespaces/{{namespace}}/{}/{{name}}",
                prefix(group, version),
                k.plural
            )
        } else {
            format!("/{}/{}/{{name}}", prefix(group, version), k.plural)
        };
        let gvk = json!({"group": k.group, "version": k.version, "kind": k.kind});
        let parameters = json!([
            {"name": "dryRun", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldManager", "in": "query", "schema": {"type": "string"}},
            {"name": "fieldValidation", "in": "query", "schema": {"type": "string"}},
            {"name": "force", "in": "query", "schema": {"type": "boolean"}}
        ]);
        paths.insert(
            object,
            json!({"patch": {"x-kubernetes-action": "patch", "x-kubernetes-group-version-kind": gvk,
                             "parameters": parameters, "responses": {"200": {"description": "OK"}}}}),
        );
    }
    axum::Json(json!({
        "openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths, "components": {"schemas": {}}
    }))
    .into_response()
}

fn resources(inner: &Inner, group: &str, version: &str) -> Response {
    let db = inner.db.lock();
    let resources: Vec<Value> = db
        .kinds
        .iter()
        .filter(|k| k.group == group && k.version == version)
        .map(|k| {
            json!({
                "name": k.plural, "singularName": k.singular, "namespaced": k.namespaced,
                "kind": k.kind, "shortNames": k.short,
                "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"],
            })
        })
        .collect();
    let gv = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    axum::Json(json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": resources}))
        .into_response()
}

fn key_of(kind: &Kind, namespace: Option<&str>, name: &str) -> Key {
    let ns = if kind.namespaced {
        namespace.unwrap_or("default")
    } else {
        ""
    };
    (
        kind.group.clone(),
        kind.plural.clone(),
        ns.to_string(),
        name.to_string(),
    )
}

/// A JSON or YAML body.
fn decode(headers: &HeaderMap, body: &Bytes) -> Result<Value, Response> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let parsed: Result<Value, String> = if content_type.contains("yaml") {
        yaml_serde::from_slice(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice(body).map_err(|e| e.to_string())
    };
    match parsed {
        Ok(v @ Value::Object(_)) => Ok(v),
        Ok(_) => Err(status(
            400,
            "BadRequest",
            "the body must be an object".into(),
            Value::Null,
        )),
        Err(e) => Err(status(
            400,
            "BadRequest",
            format!("error decoding the body: {e}"),
            Value::Null,
        )),
    }
}

/// Selectors of a list or watch: label `a=b`, `a!=b`, `a`, `!a`, `a in (x,y)`,
/// `a notin (x)`; fields `metadata.name` and `metadata.namespace` with `=`/`==`/`!=`.
struct Selector {
    labels: Vec<(String, String, Vec<String>)>,
    fields: Vec<(String, bool, String)>,
}

impl Selector {
    fn parse(q: &BTreeMap<String, String>) -> Result<Selector, Response> {
        let mut labels = Vec::new();
        if let Some(s) = q.get("labelSelector").filter(|s| !s.is_empty()) {
            for term in split_terms(s) {
                let term = term.trim();
                let parsed = if let Some((k, rest)) = term.split_once(" notin ") {
                    (k.trim().to_string(), "notin".to_string(), set_values(rest))
                } else if let Some((k, rest)) = term.split_once(" in ") {
                    (k.trim().to_string(), "in".to_string(), set_values(rest))
                } else if let Some((k, v)) = term.split_once("!=") {
                    (
                        k.trim().to_string(),
                        "!=".to_string(),
                        vec![v.trim().to_string()],
                    )
                } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('='))
                {
                    (
                        k.trim().to_string(),
                        "=".to_string(),
                        vec![v.trim().to_string()],
                    )
                } else if let Some(k) = term.strip_prefix('!') {
                    (k.trim().to_string(), "!".to_string(), vec![])
                } else {
                    (term.to_string(), "exists".to_string(), vec![])
                };
                if parsed.0.is_empty() {
                    return Err(status(
                        400,
                        "BadRequest",
                        format!("unable to parse requirement: {term:?}"),
                        Value::Null,
                    ));
                }
                labels.push(parsed);
            }
        }
        let mut fields = Vec::new();
        if let Some(s) = q.get("fieldSelector").filter(|s| !s.is_empty()) {
            for term in s.split(',') {
                let (field, equal, value) = if let Some((f, v)) = term.split_once("!=") {
                    (f, false, v)
                } else if let Some((f, v)) = term.split_once("==").or_else(|| term.split_once('='))
                {
                    (f, true, v)
                } else {
                    return Err(status(
                        400,
                        "BadRequest",
                        format!("invalid field selector {term:?}"),
                        Value::Null,
                    ));
                };
                if !matches!(field.trim(), "metadata.name" | "metadata.namespace") {
                    return Err(status(
                        400,
                        "BadRequest",
                        format!("field label not supported: {}", field.trim()),
                        Value::Null,
                    ));
                }
                fields.push((field.trim().to_string(), equal, value.trim().to_string()));
            }
        }
        Ok(Selector { labels, fields })
    }

    fn matches(&self, object: &Value) -> bool {
        let labels = object["metadata"]["labels"].as_object();
        let label = |k: &str| labels.and_then(|l| l.get(k)).and_then(Value::as_str);
        self.labels.iter().all(|(k, op, values)| match op.as_str() {
            "=" => label(k) == Some(values[0].as_str()),
            "!=" => label(k) != Some(values[0].as_str()),
            "exists" => label(k).is_some(),
            "!" => label(k).is_none(),
            "in" => label(k).is_some_and(|v| values.iter().any(|x| x == v)),
            "notin" => !label(k).is_some_and(|v| values.iter().any(|x| x == v)),
            _ => false,
        }) && self.fields.iter().all(|(field, equal, value)| {
            let actual = match field.as_str() {
                "metadata.name" => object["metadata"]["name"].as_str().unwrap_or(""),
                _ => object["metadata"]["namespace"].as_str().unwrap_or(""),
            };
            (actual == value) == *equal
        })
    }
}

/// Terms of a label selector: commas outside parentheses.
fn split_terms(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0;
    let mut current = String::new();
    for c in s.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    out.push(current);
    out
}

fn set_values(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn in_scope(kind: &Kind, namespace: Option<&str>, key: &Key) -> bool {
    key.0 == kind.group && key.1 == kind.plural && namespace.is_none_or(|ns| key.2 == ns)
}

fn list(
    inner: &Inner,
    kind: &Kind,
    namespace: Option<&str>,
    q: &BTreeMap<String, String>,
) -> Response {
    let selector = match Selector::parse(q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let db = inner.db.lock();
    let items: Vec<Value> = db
        .objects
        .iter()
        .filter(|(k, o)| in_scope(kind, namespace, k) && selector.matches(o))
        .map(|(_, o)| {
            // Items of a list carry no kind and apiVersion, as Kubernetes sends them.
            let mut o = o.clone();
            if let Some(map) = o.as_object_mut() {
                map.remove("kind");
                map.remove("apiVersion");
            }
            o
        })
        .collect();
    axum::Json(json!({
        "kind": format!("{}List", kind.kind), "apiVersion": kind.api_version(),
        "metadata": {"resourceVersion": db.rv.to_string()},
        "items": items,
    }))
    .into_response()
}

fn watch(
    inner: &Arc<Inner>,
    kind: Kind,
    namespace: Option<String>,
    q: &BTreeMap<String, String>,
) -> Response {
    let selector = match Selector::parse(q) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let from: Option<u64> = q
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .map(|v| v.parse().unwrap_or(0));
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(std::time::Duration::from_secs);
    // Subscribed under the lock, so no change falls between the backlog and the live feed.
    let (backlog, mut live, gone) = {
        let db = inner.db.lock();
        let live = inner.changes.subscribe();
        let matching = |c: &Change| c.group == kind.group && c.plural == kind.plural;
        match from {
            Some(rv) if rv < db.oldest => (Vec::new(), live, Some(rv)),
            Some(rv) => (
                db.history
                    .iter()
                    .filter(|c| c.rv > rv && matching(c))
                    .cloned()
                    .collect::<Vec<_>>(),
                live,
                None,
            ),
            None => (
                db.objects
                    .iter()
                    .filter(|(k, _)| in_scope(&kind, namespace.as_deref(), k))
                    .map(|(_, o)| Change {
                        rv: db.rv,
                        kind: "ADDED",
                        group: kind.group.clone(),
                        plural: kind.plural.clone(),
                        object: o.clone(),
                    })
                    .collect(),
                live,
                None,
            ),
        }
    };
    let mut last = backlog.last().map(|c| c.rv).or(from).unwrap_or(0);
    let mut closing = inner.closing.subscribe();
    let mut kick = inner.kick.subscribe();
    kick.borrow_and_update();
    let ns = namespace.clone();
    let keep = move |c: &Change| {
        c.group == kind.group
            && c.plural == kind.plural
            && ns
                .as_deref()
                .is_none_or(|ns| c.object["metadata"]["namespace"].as_str() == Some(ns))
            && selector.matches(&c.object)
    };
    let stream = async_stream_lines(move |tx| async move {
        if let Some(rv) = gone {
            let error = json!({"type": "ERROR", "object": {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": format!("too old resource version: {rv}"), "reason": "Expired", "code": 410
            }});
            let _ = tx.send(error).await;
            return;
        }
        for c in backlog.iter().filter(|c| keep(c)) {
            if tx
                .send(json!({"type": c.kind, "object": c.object}))
                .await
                .is_err()
            {
                return;
            }
        }
        let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
        let far = tokio::time::Instant::now() + std::time::Duration::from_secs(86_400);
        loop {
            let next = tokio::select! {
                n = live.recv() => n,
                _ = tokio::time::sleep_until(deadline.unwrap_or(far)) => return,
                _ = closing.wait_for(|c| *c) => return,
                _ = kick.changed() => return,
            };
            match next {
                Ok(c) if c.rv > last => {
                    last = c.rv;
                    if keep(&c)
                        && tx
                            .send(json!({"type": c.kind, "object": c.object}))
                            .await
                            .is_err()
                    {
                        return;
                    }
                }
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    let _ = tx
                        .send(json!({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": "watch fell behind", "reason": "Expired", "code": 410}}))
                        .await;
                    return;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    let mut response = Response::new(Body::from_stream(stream));
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
    response
}

/// One JSON document per line, from what a task sends.
fn async_stream_lines<F, Fut>(
    f: F,
) -> impl futures_util::Stream<Item = Result<Bytes, std::convert::Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Value>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx).map(|v| {
        let mut line = serde_json::to_vec(&v).unwrap_or_default();
        line.push(b'\n');
        Ok(Bytes::from(line))
    })
}

enum Write {
    Create(Value),
    Replace(Value),
    Merge(Value),
    Apply(Value),
}

/// Metadata the server owns; a client's value is ignored.
const SERVER_METADATA: &[&str] = &[
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "managedFields",
    "deletionTimestamp",
    "selfLink",
];

fn stamp_new(mut object: Value, rv: u64) -> Value {
    let meta = &mut object["metadata"];
    meta["uid"] = json!(uuid::Uuid::new_v4().to_string());
    meta["resourceVersion"] = json!(rv.to_string());
    meta["generation"] = json!(1);
    meta["creationTimestamp"] =
        json!(chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    object
}

fn write(
    inner: &Arc<Inner>,
    kind: &Kind,
    namespace: Option<&str>,
    name: Option<&str>,
    op: Write,
    q: &BTreeMap<String, String>,
) -> Response {
    let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
    let force = q.get("force").is_some_and(|f| f == "true");
    let manager = q.get("fieldManager").cloned();
    let mut db = inner.db.lock();
    // The name and namespace the object will have.
    let body = match &op {
        Write::Create(b) | Write::Replace(b) | Write::Merge(b) | Write::Apply(b) => b.clone(),
    };
    let name = match name {
        Some(n) => n.to_string(),
        None => body["metadata"]["name"].as_str().unwrap_or("").to_string(),
    };
    if let Some(given) = body["metadata"]["name"].as_str()
        && given != name
    {
        return status(
            400,
            "BadRequest",
            format!("the name of the object ({given}) does not match the name on the URL ({name})"),
            Value::Null,
        );
    }
    let ns = if kind.namespaced {
        Some(
            namespace
                .or(body["metadata"]["namespace"].as_str())
                .unwrap_or("default")
                .to_string(),
        )
    } else {
        None
    };
    if let (Some(ns), Some(given)) = (&ns, body["metadata"]["namespace"].as_str())
        && given != ns
    {
        return status(
            400,
            "BadRequest",
            "the namespace of the provided object does not match the namespace sent on the request"
                .into(),
            Value::Null,
        );
    }
    if let Some(ns) = &ns {
        let key = (
            String::new(),
            "namespaces".to_string(),
            String::new(),
            ns.clone(),
        );
        if !db.objects.contains_key(&key) {
            return status(
                404,
                "NotFound",
                format!("namespaces \"{ns}\" not found"),
                json!({"name": ns, "kind": "namespaces"}),
            );
        }
    }
    if let Some(v) = body["apiVersion"].as_str()
        && v != kind.api_version()
    {
        return status(
            400,
            "BadRequest",
            format!(
                "apiVersion {v:?} does not match the URL's {}",
                kind.api_version()
            ),
            Value::Null,
        );
    }
    if let Some(k) = body["kind"].as_str()
        && k != kind.kind
    {
        return status(
            400,
            "BadRequest",
            format!("kind {k:?} does not match the URL's {}", kind.kind),
            Value::Null,
        );
    }
    let key = key_of(kind, ns.as_deref(), &name);
    let current = db.objects.get(&key).cloned();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (mut next, created) = match (op, &current) {
        (Write::Create(_), Some(_)) => {
            return status(
                409,
                "AlreadyExists",
                format!("{} \"{name}\" already exists", kind.qualified()),
                json!({"name": name, "group": kind.group, "kind": kind.plural}),
            );
        }
        (Write::Create(object), None) => {
            let manager = manager.unwrap_or_else(|| "unknown".into());
            let mut object = clean(object);
            set_update_owner(&mut object, None, &manager, &now);
            (object, true)
        }
        (Write::Replace(_) | Write::Merge(_), None) => return not_found(kind, &name),
        (Write::Replace(object), Some(current)) => {
            if let Some(rv) = object["metadata"]["resourceVersion"].as_str()
                && Some(rv) != current["metadata"]["resourceVersion"].as_str()
            {
                return status(
                    409,
                    "Conflict",
                    format!(
                        "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                        kind.qualified()
                    ),
                    json!({"name": name, "group": kind.group, "kind": kind.plural}),
                );
            }
            let manager = manager.unwrap_or_else(|| "unknown".into());
            let mut object = clean(object);
            carry_server_metadata(&mut object, current);
            set_update_owner(&mut object, Some(current), &manager, &now);
            (object, false)
        }
        (Write::Merge(patch), Some(current)) => {
            let manager = manager.unwrap_or_else(|| "unknown".into());
            let mut object = current.clone();
            merge_patch(&mut object, &clean(patch));
            set_update_owner(&mut object, Some(current), &manager, &now);
            (object, false)
        }
        (Write::Apply(config), current) => {
            let Some(manager) = manager else {
                return status(
                    400,
                    "BadRequest",
                    "PATCH with an apply patch needs a fieldManager".into(),
                    Value::Null,
                );
            };
            let mut config = clean(config);
            config["apiVersion"] = json!(kind.api_version());
            config["kind"] = json!(kind.kind);
            match apply(current.as_ref(), config, &manager, force, &now) {
                Ok(object) => (object, current.is_none()),
                Err(conflicts) => {
                    let causes: Vec<Value> = conflicts
                        .iter()
                        .map(|(m, f)| json!({"reason": "FieldManagerConflict", "message": format!("conflict with \"{m}\""), "field": f}))
                        .collect();
                    let listed: Vec<String> = conflicts
                        .iter()
                        .map(|(m, f)| format!("conflict with \"{m}\": {f}"))
                        .collect();
                    let message = if conflicts.len() == 1 {
                        format!("Apply failed with 1 conflict: {}", listed[0])
                    } else {
                        format!(
                            "Apply failed with {} conflicts: {}",
                            conflicts.len(),
                            listed.join("\n")
                        )
                    };
                    return status(409, "Conflict", message, json!({"causes": causes}));
                }
            }
        }
    };
    next["apiVersion"] = json!(kind.api_version());
    next["kind"] = json!(kind.kind);
    next["metadata"]["name"] = json!(name);
    match &ns {
        Some(ns) => next["metadata"]["namespace"] = json!(ns),
        None => {
            if let Some(m) = next["metadata"].as_object_mut() {
                m.remove("namespace");
            }
        }
    }
    let causes = validate(kind, &name, &next);
    if !causes.is_empty() {
        return invalid(kind, &name, causes);
    }
    if let Some(current) = &current
        && without_server_metadata(current) == without_server_metadata(&next)
        && managed(current) == managed(&next)
    {
        // Nothing changed: no new resource version, no watch event.
        return axum::Json(current.clone()).into_response();
    }
    let rv = db.rv + 1;
    if created {
        next = stamp_new(next, rv);
    } else if let Some(current) = &current {
        carry_server_metadata(&mut next, current);
        let generation = current["metadata"]["generation"].as_i64().unwrap_or(1);
        next["metadata"]["generation"] = json!(if current["spec"] != next["spec"] {
            generation + 1
        } else {
            generation
        });
        next["metadata"]["resourceVersion"] = json!(rv.to_string());
    }
    if dry_run {
        return (
            if created {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            },
            axum::Json(next),
        )
            .into_response();
    }
    db.rv = rv;
    if kind.group == "apiextensions.k8s.io" && kind.plural == "customresourcedefinitions" {
        register_crd(&mut db, &next);
    }
    db.objects.insert(key.clone(), next.clone());
    record(
        &mut db,
        &inner.changes,
        if created { "ADDED" } else { "MODIFIED" },
        kind,
        next.clone(),
    );
    if let Some(after) = *inner.controller.lock()
        && kind.group == "apps"
    {
        tokio::spawn(become_ready(inner.clone(), kind.clone(), key, after));
    }
    (
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        axum::Json(next),
    )
        .into_response()
}

/// What a controller does after `after`: the workload's status says every replica of
/// its current generation is ready.
async fn become_ready(inner: Arc<Inner>, kind: Kind, key: Key, after: std::time::Duration) {
    tokio::time::sleep(after).await;
    let mut db = inner.db.lock();
    let Some(mut object) = db.objects.get(&key).cloned() else {
        return;
    };
    let generation = object["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = object["spec"]["replicas"].as_i64().unwrap_or(1);
    object["status"] = match kind.kind.as_str() {
        "Deployment" => json!({"observedGeneration": generation, "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas}),
        "StatefulSet" => json!({"observedGeneration": generation, "replicas": replicas,
            "readyReplicas": replicas, "updatedReplicas": replicas, "currentReplicas": replicas}),
        "DaemonSet" => json!({"observedGeneration": generation, "desiredNumberScheduled": 1,
            "numberAvailable": 1, "numberReady": 1, "updatedNumberScheduled": 1}),
        _ => return,
    };
    db.rv += 1;
    object["metadata"]["resourceVersion"] = json!(db.rv.to_string());
    db.objects.insert(key, object.clone());
    record(&mut db, &inner.changes, "MODIFIED", &kind, object);
}

fn record(
    db: &mut Db,
    changes: &broadcast::Sender<Change>,
    what: &'static str,
    kind: &Kind,
    object: Value,
) {
    let change = Change {
        rv: db.rv,
        kind: what,
        group: kind.group.clone(),
        plural: kind.plural.clone(),
        object,
    };
    db.history.push_back(change.clone());
    while db.history.len() > HISTORY {
        if let Some(old) = db.history.pop_front() {
            db.oldest = old.rv;
        }
    }
    let _ = changes.send(change);
}

fn delete(
    inner: &Inner,
    kind: &Kind,
    namespace: Option<&str>,
    name: &str,
    q: &BTreeMap<String, String>,
) -> Response {
    let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
    let mut db = inner.db.lock();
    let key = key_of(kind, namespace, name);
    let Some(object) = db.objects.get(&key).cloned() else {
        return not_found(kind, name);
    };
    if dry_run {
        return axum::Json(object).into_response();
    }
    let mut gone = vec![(kind.clone(), key)];
    if kind.group.is_empty() && kind.plural == "namespaces" {
        // A namespace takes what is in it along.
        for (k, _) in db.objects.iter() {
            if k.2 == name
                && let Some(kind) = db.kinds.iter().find(|x| x.group == k.0 && x.plural == k.1)
            {
                gone.push((kind.clone(), k.clone()));
            }
        }
    }
    if kind.group == "apiextensions.k8s.io" && kind.plural == "customresourcedefinitions" {
        let group = object["spec"]["group"].as_str().unwrap_or("").to_string();
        let plural = object["spec"]["names"]["plural"]
            .as_str()
            .unwrap_or("")
            .to_string();
        for (k, _) in db.objects.iter() {
            if k.0 == group
                && k.1 == plural
                && let Some(kind) = db.kinds.iter().find(|x| x.group == k.0 && x.plural == k.1)
            {
                gone.push((kind.clone(), k.clone()));
            }
        }
        db.kinds
            .retain(|k| !(k.group == group && k.plural == plural));
    }
    // Contents first, the container last, as a watcher would see them go.
    for (kind, key) in gone.into_iter().rev() {
        if let Some(mut o) = db.objects.remove(&key) {
            db.rv += 1;
            o["metadata"]["resourceVersion"] = json!(db.rv.to_string());
            record(&mut db, &inner.changes, "DELETED", &kind, o);
        }
    }
    axum::Json(object).into_response()
}

fn register_crd(db: &mut Db, crd: &Value) {
    let spec = &crd["spec"];
    let group = spec["group"].as_str().unwrap_or("").to_string();
    let names = &spec["names"];
    let plural = names["plural"].as_str().unwrap_or("").to_string();
    let kind = names["kind"].as_str().unwrap_or("").to_string();
    let singular = names["singular"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| kind.to_lowercase());
    let short: Vec<String> = names["shortNames"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let namespaced = spec["scope"].as_str() != Some("Cluster");
    db.kinds
        .retain(|k| !(k.group == group && k.plural == plural));
    for v in spec["versions"].as_array().into_iter().flatten() {
        if v["served"].as_bool() == Some(false) {
            continue;
        }
        db.kinds.push(Kind {
            group: group.clone(),
            version: v["name"].as_str().unwrap_or("v1").to_string(),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            short: short.clone(),
        });
    }
}

/// A client's object without what the server owns (and without status).
fn clean(mut object: Value) -> Value {
    if let Some(meta) = object["metadata"].as_object_mut() {
        for k in SERVER_METADATA {
            meta.remove(*k);
        }
    } else {
        object["metadata"] = json!({});
    }
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    object
}

fn carry_server_metadata(next: &mut Value, current: &Value) {
    for k in ["uid", "creationTimestamp", "generation", "resourceVersion"] {
        next["metadata"][k] = current["metadata"][k].clone();
    }
    if next.get("status").is_none() && current.get("status").is_some() {
        next["status"] = current["status"].clone();
    }
}

fn without_server_metadata(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(meta) = o["metadata"].as_object_mut() {
        for k in SERVER_METADATA {
            meta.remove(*k);
        }
    }
    o
}

fn managed(object: &Value) -> Vec<(String, String, Value)> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or("").to_string(),
                e["operation"].as_str().unwrap_or("").to_string(),
                e["fieldsV1"].clone(),
            )
        })
        .collect()
}

/// RFC 7386.
fn merge_patch(target: &mut Value, patch: &Value) {
    match patch {
        Value::Object(p) => {
            if !target.is_object() {
                *target = Value::Object(Map::new());
            }
            let Some(t) = target.as_object_mut() else {
                return;
            };
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

// Field ownership. A field is a path of map keys to a leaf (a scalar, a list, or an empty
// map); lists are atomic.

type Path = Vec<String>;

/// The fields an object sets that a client may own (not apiVersion, kind, name,
/// namespace, server metadata or status).
fn leaves(object: &Value) -> BTreeSet<Path> {
    fn walk(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        match v {
            Value::Object(m) if !m.is_empty() => {
                for (k, v) in m {
                    path.push(k.clone());
                    walk(v, path, out);
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        }
    }
    let mut out = BTreeSet::new();
    let Some(map) = object.as_object() else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" | "status" => {}
            "metadata" => {
                for (mk, mv) in v.as_object().into_iter().flatten() {
                    if matches!(mk.as_str(), "name" | "namespace")
                        || SERVER_METADATA.contains(&mk.as_str())
                    {
                        continue;
                    }
                    walk(mv, &mut vec!["metadata".into(), mk.clone()], &mut out);
                }
            }
            _ => walk(v, &mut vec![k.clone()], &mut out),
        }
    }
    out
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |v, k| v.get(k))
}

fn set(v: &mut Value, path: &[String], value: Value) {
    let mut at = v;
    for k in &path[..path.len() - 1] {
        if !at.get(k).is_some_and(Value::is_object) {
            at[k] = json!({});
        }
        at = &mut at[k];
    }
    at[&path[path.len() - 1]] = value;
}

/// Removes a field, and the maps it leaves empty.
fn remove(v: &mut Value, path: &[String]) {
    if path.is_empty() {
        return;
    }
    if path.len() == 1 {
        if let Some(m) = v.as_object_mut() {
            m.remove(&path[0]);
        }
        return;
    }
    if let Some(child) = v.get_mut(&path[0]) {
        remove(child, &path[1..]);
        if child.as_object().is_some_and(Map::is_empty)
            && let Some(m) = v.as_object_mut()
        {
            m.remove(&path[0]);
        }
    }
}

/// `.spec.replicas`, as Kubernetes names a field in conflicts.
fn dotted(path: &Path) -> String {
    path.iter().map(|k| format!(".{k}")).collect()
}

fn to_fields_v1(set: &BTreeSet<Path>) -> Value {
    let mut root = json!({});
    for path in set {
        let mut at = &mut root;
        for k in path {
            let key = format!("f:{k}");
            if at.get(&key).is_none() {
                at[&key] = json!({});
            }
            at = &mut at[&key];
        }
    }
    root
}

fn from_fields_v1(v: &Value) -> BTreeSet<Path> {
    fn walk(v: &Value, path: &mut Path, out: &mut BTreeSet<Path>) {
        let children: Vec<(&String, &Value)> = v
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| k.starts_with("f:"))
            .collect();
        if children.is_empty() {
            if !path.is_empty() {
                out.insert(path.clone());
            }
            return;
        }
        for (k, child) in children {
            path.push(k[2..].to_string());
            walk(child, path, out);
            path.pop();
        }
    }
    let mut out = BTreeSet::new();
    walk(v, &mut Vec::new(), &mut out);
    out
}

/// The managers' field sets: (manager, operation) -> fields.
fn owners(object: &Value) -> Vec<(String, String, BTreeSet<Path>)> {
    object["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["manager"].as_str().unwrap_or("").to_string(),
                e["operation"].as_str().unwrap_or("").to_string(),
                from_fields_v1(&e["fieldsV1"]),
            )
        })
        .collect()
}

fn set_owners(
    object: &mut Value,
    owners: Vec<(String, String, BTreeSet<Path>)>,
    apply_version: &str,
    now: &str,
) {
    let entries: Vec<Value> = owners
        .into_iter()
        .filter(|(_, _, fields)| !fields.is_empty())
        .map(|(manager, operation, fields)| {
            json!({"manager": manager, "operation": operation, "apiVersion": apply_version,
                   "time": now, "fieldsType": "FieldsV1", "fieldsV1": to_fields_v1(&fields)})
        })
        .collect();
    object["metadata"]["managedFields"] = Value::Array(entries);
}

/// Two fields overlap when one is the other or lies inside it.
fn overlaps(a: &Path, b: &Path) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// An update (create, replace, merge patch): `manager` takes the fields whose value it
/// changed; nobody else keeps them.
fn set_update_owner(next: &mut Value, current: Option<&Value>, manager: &str, now: &str) {
    let mut list = current.map(owners).unwrap_or_default();
    let changed: BTreeSet<Path> = leaves(next)
        .into_iter()
        .filter(|p| current.is_none_or(|c| get(c, p) != get(next, p)))
        .collect();
    let present = leaves(next);
    for (_, _, fields) in &mut list {
        fields.retain(|f| present.contains(f) && !changed.iter().any(|c| overlaps(c, f)));
    }
    match list
        .iter_mut()
        .find(|(m, op, _)| m == manager && op == "Update")
    {
        Some((_, _, fields)) => fields.extend(changed),
        None => list.push((manager.to_string(), "Update".into(), changed)),
    }
    let version = next["apiVersion"].as_str().unwrap_or("v1").to_string();
    set_owners(next, list, &version, now);
}

/// Server-side apply of `config` by `manager`: the conflicts (manager, field), or the
/// object after the apply.
fn apply(
    current: Option<&Value>,
    config: Value,
    manager: &str,
    force: bool,
    now: &str,
) -> Result<Value, Vec<(String, String)>> {
    let applied = leaves(&config);
    let Some(current) = current else {
        let mut object = config;
        let version = object["apiVersion"].as_str().unwrap_or("v1").to_string();
        set_owners(
            &mut object,
            vec![(manager.to_string(), "Apply".into(), applied)],
            &version,
            now,
        );
        return Ok(object);
    };
    let mut list = owners(current);
    // Another manager's field the apply would give another value: a conflict. The same
    // value is no conflict; the field is then shared.
    let differs = |f: &Path| {
        applied
            .iter()
            .filter(|a| overlaps(a, f))
            .any(|a| get(current, f) != get(&config, f) || get(current, a) != get(&config, a))
    };
    let mut conflicts = Vec::new();
    for (m, op, fields) in &list {
        if m == manager && op == "Apply" {
            continue;
        }
        for f in fields.iter().filter(|f| differs(f)) {
            conflicts.push((m.clone(), dotted(f)));
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort();
        conflicts.dedup();
        return Err(conflicts);
    }
    let mut object = current.clone();
    // Fields this manager applied before and applies no more go, unless someone else
    // owns them too.
    let before: BTreeSet<Path> = list
        .iter()
        .find(|(m, op, _)| m == manager && op == "Apply")
        .map(|(_, _, f)| f.clone())
        .unwrap_or_default();
    for dropped in before.difference(&applied) {
        let shared = list.iter().any(|(m, op, f)| {
            !(m == manager && op == "Apply") && f.iter().any(|x| overlaps(x, dropped))
        });
        if !shared {
            remove(&mut object, dropped);
        }
    }
    for path in &applied {
        if let Some(v) = get(&config, path) {
            set(&mut object, path, v.clone());
        }
    }
    // Forced: the applier takes the conflicting fields over.
    let taken: BTreeSet<Path> = list
        .iter()
        .filter(|(m, op, _)| !(m == manager && op == "Apply"))
        .flat_map(|(_, _, fields)| fields.iter().filter(|f| differs(f)).cloned())
        .collect();
    for (m, op, fields) in &mut list {
        if !(m == manager && op == "Apply") {
            fields.retain(|f| !taken.contains(f));
        }
    }
    match list
        .iter_mut()
        .find(|(m, op, _)| m == manager && op == "Apply")
    {
        Some((_, _, fields)) => *fields = applied,
        None => list.push((manager.to_string(), "Apply".into(), applied)),
    }
    let version = object["apiVersion"].as_str().unwrap_or("v1").to_string();
    set_owners(&mut object, list, &version, now);
    Ok(object)
}

/// DNS-1123 subdomain.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name.as_bytes()[name.len() - 1].is_ascii_alphanumeric()
}

/// (reason, field, message) of each invalid field.
fn validate(kind: &Kind, name: &str, object: &Value) -> Vec<(String, String, String)> {
    let mut causes = Vec::new();
    let mut bad = |reason: &str, field: &str, message: String| {
        causes.push((reason.to_string(), field.to_string(), message))
    };
    if !valid_name(name) {
        bad(
            "FieldValueInvalid",
            "metadata.name",
            format!(
                "Invalid value: {name:?}: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        );
    }
    for (what, value) in object["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if !value.is_string() {
            bad(
                "FieldValueInvalid",
                &format!("metadata.labels[{what}]"),
                "must be a string".into(),
            );
        }
    }
    match (kind.group.as_str(), kind.kind.as_str()) {
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet") => {
            let spec = &object["spec"];
            if kind.kind != "DaemonSet" {
                match &spec["replicas"] {
                    Value::Null => {}
                    Value::Number(n) if n.as_i64().is_some_and(|r| r >= 0) => {}
                    Value::Number(_) => bad(
                        "FieldValueInvalid",
                        "spec.replicas",
                        format!(
                            "Invalid value: {}: must be greater than or equal to 0",
                            spec["replicas"]
                        ),
                    ),
                    other => bad(
                        "FieldValueInvalid",
                        "spec.replicas",
                        format!("Invalid value: {other}: must be an integer"),
                    ),
                }
            }
            let selector = spec["selector"]["matchLabels"].as_object();
            match selector {
                None => bad(
                    "FieldValueRequired",
                    "spec.selector",
                    "Required value".into(),
                ),
                Some(sel) => {
                    let labels = spec["template"]["metadata"]["labels"].as_object();
                    let matches = sel
                        .iter()
                        .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v));
                    if !matches {
                        bad(
                            "FieldValueInvalid",
                            "spec.template.metadata.labels",
                            "Invalid value: `selector` does not match template `labels`".into(),
                        );
                    }
                }
            }
            let containers = spec["template"]["spec"]["containers"].as_array();
            match containers {
                Some(c) if !c.is_empty() => {
                    for (i, c) in c.iter().enumerate() {
                        if c["name"].as_str().is_none_or(str::is_empty) {
                            bad(
                                "FieldValueRequired",
                                &format!("spec.template.spec.containers[{i}].name"),
                                "Required value".into(),
                            );
                        }
                        if c["image"].as_str().is_none_or(str::is_empty) {
                            bad(
                                "FieldValueRequired",
                                &format!("spec.template.spec.containers[{i}].image"),
                                "Required value".into(),
                            );
                        }
                    }
                }
                _ => bad(
                    "FieldValueRequired",
                    "spec.template.spec.containers",
                    "Required value".into(),
                ),
            }
        }
        ("", "Service") => {
            for (i, p) in object["spec"]["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .enumerate()
            {
                if !p["port"].as_i64().is_some_and(|n| (1..=65535).contains(&n)) {
                    bad(
                        "FieldValueInvalid",
                        &format!("spec.ports[{i}].port"),
                        format!(
                            "Invalid value: {}: must be between 1 and 65535, inclusive",
                            p["port"]
                        ),
                    );
                }
            }
        }
        ("", "ConfigMap") => {
            for (k, v) in object["data"].as_object().into_iter().flatten() {
                if !v.is_string() {
                    bad(
                        "FieldValueInvalid",
                        &format!("data[{k}]"),
                        "Invalid value: must be a string".into(),
                    );
                }
            }
        }
        _ => {}
    }
    causes
}
