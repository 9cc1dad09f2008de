//! The cluster inventory (Meshery's MeshSync, embedded) and the live state of each
//! connection.
//!
//! Every replica runs one reconcile loop: it leases each context that is not ignored or
//! in maintenance (`cluster_leases`, renewed every third of the lease), and runs one
//! supervisor task per context it holds. A supervisor connects (a cheap authorized list
//! of namespaces), marks the connection `connected` or `disconnected`, discovers the
//! kinds to watch (the registry's kinds the cluster serves, plus its CRDs' kinds,
//! bounded), then lists and watches each (kube-runtime's watcher: pages, resumes, relists
//! after 410). Objects go to the database in batches; a relist removes what it did not
//! see (the `sweep` number). Nothing per object stays in memory. A failing watch or
//! probe turns the connection `disconnected` and the supervisor starts over when the
//! cluster answers again. Changes are announced on a local channel and to the other
//! replicas (`Topic::Clusters`), so every replica's streams follow every cluster.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, Notice, Topic};
use crate::fault::{Internal, OrInternal};
use crate::kubernetes::Kubernetes;
use crate::models::{ClusterKindCount, ClusterResource, ClusterResourceSummary, KeyValue};
use crate::policy::Targets;
use crate::registry::Registry;
use crate::store::{InventoryOp, LabelReq, ResourceQuery, ResourceRow, Store};

/// States a user chose; the inventory neither watches nor overwrites them.
pub const STOPPED: [&str; 2] = ["ignored", "maintenance"];
/// How long one probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// Most inventory changes written in one transaction.
const BATCH: usize = 500;

/// How the inventory behaves.
#[derive(Debug, Clone)]
pub struct Options {
    /// Whether clusters are watched at all (off: connections stay `registered`, the
    /// inventory empty; deploys still work).
    pub enabled: bool,
    /// How often a watched cluster is probed (and a disconnected one retried).
    pub probe: Duration,
    /// How long a replica's claim on a context lasts without renewal.
    pub lease: Duration,
    /// Most custom resource kinds (from CRDs) watched per cluster.
    pub max_crd_kinds: usize,
    /// Objects per list page.
    pub page_size: u32,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            enabled: true,
            probe: Duration::from_secs(10),
            lease: Duration::from_secs(15),
            max_crd_kinds: 64,
            page_size: 500,
        }
    }
}

/// What changed: a context's connection or inventory, or (after notices were lost)
/// possibly anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    One { owner: String, context_id: String },
    All,
}

/// What MeshSync (the inventory) saw happen to an object (`subscribeMeshSyncEvents`).
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectEvent {
    pub owner: String,
    pub context_id: String,
    /// ADDED, MODIFIED or DELETED.
    pub kind: &'static str,
    /// The object as the inventory keeps it; a deleted one as its id, kind and name.
    pub object: Value,
}

/// Object changes as they travel to the other replicas (`Topic::MeshSync`): the added
/// and modified objects by id (read back from the database), the deleted ones as their
/// stubs (their rows are gone).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct ObjectNotice {
    o: String,
    c: String,
    #[serde(default)]
    a: Vec<String>,
    #[serde(default)]
    m: Vec<String>,
    #[serde(default)]
    d: Vec<Value>,
    /// A request to the replica watching the context: list it again (`Inventory::resync`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    resync: bool,
}

/// Largest `Topic::MeshSync` key sent in one notice (PostgreSQL's NOTIFY takes < 8000 bytes).
const NOTICE_BYTES: usize = 7_000;

/// How an object came into a batch.
enum Seen {
    /// In a list (first or again): news only if the inventory did not hold it.
    Listed(String),
    /// From the watch: added, or modified if the inventory held it.
    Applied(String),
    Deleted(Value),
}

type Key = (String, String);

struct Running {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

struct Inner {
    store: Store,
    bus: Bus,
    kubernetes: Arc<Kubernetes>,
    registry: Arc<Registry>,
    targets: Targets,
    options: Options,
    running: Mutex<HashMap<Key, Running>>,
    poke: Notify,
    changes: broadcast::Sender<Changed>,
    /// Objects seen to change, here or (relayed) on another replica.
    objects: broadcast::Sender<Arc<ObjectEvent>>,
    stop: CancellationToken,
}

/// The inventory service; cheap to clone.
#[derive(Clone)]
pub struct Inventory(Arc<Inner>);

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn lease_key(owner: &str, context_id: &str) -> String {
    format!("{owner}\n{context_id}")
}

/// The inventory id of an object: stable for the same object of the same context.
pub fn resource_id(owner: &str, context_id: &str, uid: &str) -> String {
    let digest = ring::digest::digest(
        &ring::digest::SHA256,
        format!("resource\n{owner}\n{context_id}\n{uid}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

/// One kind a supervisor watches.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Watched {
    api_version: String,
    kind: String,
    group: String,
    version: String,
    plural: String,
    /// The registry model, or the CRD's group.
    model: String,
}

impl Watched {
    fn resource(&self) -> ApiResource {
        ApiResource {
            group: self.group.clone(),
            version: self.version.clone(),
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            plural: self.plural.clone(),
        }
    }
}

/// Why a supervisor stopped watching.
enum Stop {
    Cancelled,
    Disconnected(String),
    /// The cluster's CRDs changed: discover again.
    Rediscover,
    /// A batch could not be stored: what it held is lost, so list everything again
    /// after a pause (the cluster is fine; the state stays).
    Relist,
}

impl Inventory {
    /// Starts the reconcile loop (and follows the other replicas' notices).
    pub fn start(
        store: Store,
        bus: Bus,
        kubernetes: Arc<Kubernetes>,
        registry: Arc<Registry>,
        targets: Targets,
        options: Options,
    ) -> Inventory {
        let inner = Arc::new(Inner {
            store,
            bus,
            kubernetes,
            registry,
            targets,
            options,
            running: Mutex::new(HashMap::new()),
            poke: Notify::new(),
            changes: broadcast::channel(1024).0,
            objects: broadcast::channel(4096).0,
            stop: CancellationToken::new(),
        });
        let relay = inner.clone();
        inner.bus.on(Topic::MeshSync, move |notice| {
            let inner = relay.clone();
            async move {
                if let Notice::Changed { key } = notice {
                    inner.relay_objects(&key).await;
                }
            }
        });
        let follower = inner.clone();
        inner.bus.on(Topic::Clusters, move |notice| {
            let inner = follower.clone();
            async move {
                let changed = match notice {
                    Notice::Changed { key } => match key.split_once('\n') {
                        Some((owner, context_id)) => Changed::One {
                            owner: owner.to_string(),
                            context_id: context_id.to_string(),
                        },
                        None => Changed::All,
                    },
                    Notice::Resync => Changed::All,
                };
                let _ = inner.changes.send(changed);
                // A context added, deleted or set to another state elsewhere.
                inner.poke.notify_one();
            }
        });
        tokio::spawn(inner.clone().reconcile_loop());
        Inventory(inner)
    }

    /// Changes of any connection or inventory, local or from another replica.
    pub fn changes(&self) -> broadcast::Receiver<Changed> {
        self.0.changes.subscribe()
    }

    /// Cancelled when the server shuts down (live streams end then).
    pub fn stopping(&self) -> CancellationToken {
        self.0.stop.clone()
    }

    /// A context was added or its state set: reconcile now, here and on the other
    /// replicas.
    pub async fn context_changed(&self, owner: &str, context_id: &str) {
        self.0.poke.notify_one();
        self.0.announce(owner, context_id).await;
    }

    /// A context is being deleted: stops watching it here (waiting for its supervisor),
    /// then removes its inventory. Call after the context row is gone, so no replica
    /// starts watching it again.
    pub async fn forget(&self, owner: &str, context_id: &str) {
        let running = self
            .0
            .running
            .lock()
            .remove(&(owner.to_string(), context_id.to_string()));
        if let Some(r) = running {
            r.cancel.cancel();
            let _ = r.task.await;
        }
        if let Err(e) = self
            .0
            .store
            .drop_lease(&lease_key(owner, context_id), self.0.bus.replica())
            .await
        {
            tracing::warn!(error = %e, "could not drop an inventory lease");
        }
        match self.0.store.drop_inventory(owner, context_id, None).await {
            Ok(n) => tracing::debug!(context_id, objects = n, "inventory removed"),
            Err(e) => tracing::warn!(error = %e, "could not remove an inventory"),
        }
        self.context_changed(owner, context_id).await;
    }

    /// Stops every supervisor (at shutdown), giving their leases up.
    pub async fn shutdown(&self) {
        self.0.stop.cancel();
        let all: Vec<(Key, Running)> = self.0.running.lock().drain().collect();
        for ((owner, id), r) in all {
            r.cancel.cancel();
            let _ = r.task.await;
            let _ = self
                .0
                .store
                .drop_lease(&lease_key(&owner, &id), self.0.bus.replica())
                .await;
        }
    }

    /// A page of an owner's objects; `spec` and `status` keep those parts (and a
    /// ConfigMap's data).
    pub async fn resources(
        &self,
        query: &ResourceQuery,
        spec: bool,
        status: bool,
    ) -> Result<(Vec<ClusterResource>, i64), Internal> {
        let (docs, total) = self
            .0
            .store
            .resources(query)
            .await
            .or_internal("listing the inventory")?;
        let mut out = Vec::with_capacity(docs.len());
        for doc in docs {
            let mut r: ClusterResource =
                serde_json::from_str(&doc).or_internal("decoding an inventory object")?;
            if !spec {
                r.spec = None;
                r.data = None;
            }
            if !status {
                r.status = None;
            }
            out.push(r);
        }
        Ok((out, total))
    }

    /// One of an owner's objects, whole.
    pub async fn resource(
        &self,
        owner: &str,
        id: &str,
    ) -> Result<Option<ClusterResource>, Internal> {
        let doc = self
            .0
            .store
            .resource(owner, id)
            .await
            .or_internal("reading an inventory object")?;
        doc.map(|d| serde_json::from_str(&d))
            .transpose()
            .or_internal("decoding an inventory object")
    }

    /// Counts of an owner's objects (of these contexts and namespaces).
    pub async fn summary(
        &self,
        owner: &str,
        contexts: Option<&[String]>,
        namespaces: &[String],
    ) -> Result<ClusterResourceSummary, Internal> {
        let s = self
            .0
            .store
            .resource_summary(owner, contexts, namespaces)
            .await
            .or_internal("counting the inventory")?;
        Ok(ClusterResourceSummary {
            kinds: s
                .kinds
                .into_iter()
                .map(|(kind, model, count)| ClusterKindCount { kind, model, count })
                .collect(),
            namespaces: s.namespaces,
            labels: s
                .labels
                .into_iter()
                .map(|(key, value)| KeyValue { key, value })
                .collect(),
        })
    }

    /// One item after each change of the owner's connections or inventory (of these
    /// contexts), changes close together making one, until the server stops. `changes` must
    /// be subscribed before the subscriber reads the state it starts from.
    pub fn live(
        &self,
        changes: broadcast::Receiver<Changed>,
        owner: String,
        contexts: Option<Vec<String>>,
    ) -> futures_util::stream::BoxStream<'static, ()> {
        let stop = self.stopping();
        futures_util::stream::unfold(changes, move |mut changes| {
            let (stop, owner, contexts) = (stop.clone(), owner.clone(), contexts.clone());
            async move {
                loop {
                    let next = tokio::select! {
                        _ = stop.cancelled() => return None,
                        next = changes.recv() => next,
                    };
                    match next {
                        Ok(c) if concerns(&c, &owner, contexts.as_deref()) => break,
                        Ok(_) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => break,
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    }
                }
                tokio::time::sleep(COALESCE).await;
                while changes.try_recv().is_ok() {}
                Some(((), changes))
            }
        })
        .boxed()
    }

    /// Objects seen to change from now on, in every context of every owner (a lagging
    /// receiver loses the oldest).
    pub fn object_events(&self) -> broadcast::Receiver<Arc<ObjectEvent>> {
        self.0.objects.subscribe()
    }

    /// Whether the inventory runs at all (`Options::enabled`).
    pub fn enabled(&self) -> bool {
        self.0.options.enabled
    }

    /// Lists a context again from the start (Meshery's resync): its supervisor stops and
    /// the next reconcile starts a new one, whose lists sweep what is gone. With `clear`,
    /// what the inventory holds of it is dropped first. The replica that watches the
    /// context does the listing: asked here, another one is told (`Topic::MeshSync`).
    pub async fn resync(&self, owner: &str, context_id: &str, clear: bool) -> Result<(), Internal> {
        let here = self.0.restart(owner, context_id).await;
        if clear {
            self.0
                .store
                .drop_inventory(owner, context_id, None)
                .await
                .or_internal("clearing an inventory")?;
        }
        if !here && self.0.store.engine() == crate::store::Engine::Postgres {
            let notice = ObjectNotice {
                o: owner.to_string(),
                c: context_id.to_string(),
                resync: true,
                ..Default::default()
            };
            if let Ok(key) = serde_json::to_string(&notice) {
                self.0.bus.publish(Topic::MeshSync, &key).await;
            }
        }
        self.context_changed(owner, context_id).await;
        Ok(())
    }

    /// How many contexts this replica watches now.
    pub fn watching(&self) -> usize {
        self.0
            .running
            .lock()
            .values()
            .filter(|r| !r.task.is_finished())
            .count()
    }
}

impl Inner {
    async fn announce(&self, owner: &str, context_id: &str) {
        let _ = self.changes.send(Changed::One {
            owner: owner.to_string(),
            context_id: context_id.to_string(),
        });
        self.bus
            .publish(Topic::Clusters, &lease_key(owner, context_id))
            .await;
    }

    /// Stops this replica's supervisor of a context, if it runs one (the next reconcile
    /// starts a new one, which lists the cluster again); whether it did.
    async fn restart(&self, owner: &str, context_id: &str) -> bool {
        let running = self
            .running
            .lock()
            .remove(&(owner.to_string(), context_id.to_string()));
        match running {
            Some(r) => {
                r.cancel.cancel();
                let _ = r.task.await;
                true
            }
            None => false,
        }
    }

    /// Whether anyone may follow object events: a subscriber here, or (with PostgreSQL) on
    /// another replica.
    fn objects_followed(&self) -> bool {
        self.objects.receiver_count() > 0 || self.store.engine() == crate::store::Engine::Postgres
    }

    /// Sends a committed batch's object events to the subscribers here and to the other
    /// replicas. `held`: the ids the inventory held before the batch.
    async fn object_news(
        &self,
        owner: &str,
        context_id: &str,
        seen: Vec<Seen>,
        ops: &[InventoryOp],
        held: &std::collections::HashSet<String>,
    ) {
        let docs: HashMap<&str, &str> = ops
            .iter()
            .filter_map(|op| match op {
                InventoryOp::Upsert(row) => Some((row.id.as_str(), row.doc.as_str())),
                _ => None,
            })
            .collect();
        let mut notice = ObjectNotice {
            o: owner.to_string(),
            c: context_id.to_string(),
            ..Default::default()
        };
        let mut events = Vec::new();
        for item in seen {
            let (kind, id, object) = match item {
                Seen::Listed(id) if held.contains(&id) => continue,
                Seen::Listed(id) => ("ADDED", id, None),
                Seen::Applied(id) if held.contains(&id) => ("MODIFIED", id, None),
                Seen::Applied(id) => ("ADDED", id, None),
                Seen::Deleted(stub) => ("DELETED", String::new(), Some(stub)),
            };
            let object = match object {
                Some(stub) => {
                    notice.d.push(stub.clone());
                    stub
                }
                None => {
                    let Some(doc) = docs.get(id.as_str()) else {
                        continue;
                    };
                    if kind == "ADDED" {
                        notice.a.push(id);
                    } else {
                        notice.m.push(id);
                    }
                    serde_json::from_str(doc).unwrap_or(Value::Null)
                }
            };
            events.push(ObjectEvent {
                owner: owner.to_string(),
                context_id: context_id.to_string(),
                kind,
                object,
            });
        }
        for e in events {
            let _ = self.objects.send(Arc::new(e));
        }
        if self.store.engine() == crate::store::Engine::Postgres {
            for key in notice_keys(notice) {
                self.bus.publish(Topic::MeshSync, &key).await;
            }
        }
    }

    /// Another replica's object events, for the subscribers here.
    async fn relay_objects(&self, key: &str) {
        let Ok(notice) = serde_json::from_str::<ObjectNotice>(key) else {
            tracing::debug!("ignoring an object notice this version does not read");
            return;
        };
        if notice.resync {
            if self.restart(&notice.o, &notice.c).await {
                self.poke.notify_one();
            }
            return;
        }
        if self.objects.receiver_count() == 0 {
            return;
        }
        let ids: Vec<String> = notice.a.iter().chain(&notice.m).cloned().collect();
        let docs: HashMap<String, String> = match self.store.resources_by_id(&notice.o, &ids).await
        {
            Ok(rows) => rows.into_iter().collect(),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the objects another replica saw change");
                return;
            }
        };
        let send = |kind: &'static str, object: Value| {
            let _ = self.objects.send(Arc::new(ObjectEvent {
                owner: notice.o.clone(),
                context_id: notice.c.clone(),
                kind,
                object,
            }));
        };
        for (kind, list) in [("ADDED", &notice.a), ("MODIFIED", &notice.m)] {
            for id in list {
                // Gone again since: its deletion follows in a later notice.
                if let Some(doc) = docs.get(id) {
                    send(kind, serde_json::from_str(doc).unwrap_or(Value::Null));
                }
            }
        }
        for stub in notice.d {
            send("DELETED", stub);
        }
    }

    async fn reconcile_loop(self: Arc<Self>) {
        let mut tick = tokio::time::interval(self.options.lease / 3);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tick.tick() => {}
                _ = self.poke.notified() => {}
            }
            if let Err(e) = self.clone().reconcile().await {
                tracing::warn!(error = %e, "inventory: could not reconcile the watched contexts");
            }
        }
    }

    /// Leases the contexts to watch, starts their supervisors, stops the others.
    async fn reconcile(self: Arc<Self>) -> Result<(), crate::store::StoreError> {
        let wanted = if self.options.enabled {
            self.store.contexts_to_watch(&STOPPED).await?
        } else {
            Vec::new()
        };
        let now = now_ms();
        let ttl = i64::try_from(self.options.lease.as_millis()).unwrap_or(i64::MAX);
        let mut mine = BTreeSet::new();
        for (owner, id) in wanted {
            if self
                .store
                .take_lease(&lease_key(&owner, &id), self.bus.replica(), now, ttl)
                .await?
            {
                mine.insert((owner, id));
            }
        }
        if self.stop.is_cancelled() {
            return Ok(());
        }
        let mut released = Vec::new();
        {
            let mut running = self.running.lock();
            running.retain(|key, r| {
                let keep = mine.contains(key) && !r.task.is_finished();
                if !keep {
                    r.cancel.cancel();
                    released.push(key.clone());
                }
                keep
            });
            for key in mine {
                if running.contains_key(&key) {
                    continue;
                }
                let cancel = self.stop.child_token();
                let task = tokio::spawn(self.clone().supervise(
                    key.0.clone(),
                    key.1.clone(),
                    cancel.clone(),
                ));
                running.insert(key, Running { cancel, task });
            }
        }
        for (owner, id) in released {
            // Another replica may take it at once (it was stopped or ignored here).
            self.store
                .drop_lease(&lease_key(&owner, &id), self.bus.replica())
                .await?;
        }
        Ok(())
    }

    /// Sets the connection's state when it changed; announces it.
    async fn set_state(
        &self,
        owner: &str,
        context_id: &str,
        last: &mut Option<(String, String)>,
        status: &str,
        reason: &str,
        version: Option<&str>,
    ) {
        let now = (status.to_string(), reason.to_string());
        if last.as_ref() == Some(&now) && version.is_none() {
            return;
        }
        let at = crate::store::stamp(chrono::Utc::now());
        match self
            .store
            .set_connection_status(owner, context_id, status, reason, &at, version, &STOPPED)
            .await
        {
            Ok(changed) => {
                *last = Some(now);
                if changed {
                    tracing::info!(context_id, status, reason, "connection state");
                    self.announce(owner, context_id).await;
                }
            }
            Err(e) => tracing::warn!(error = %e, "could not store a connection state"),
        }
    }

    /// Watches one context until cancelled (or the context is gone).
    async fn supervise(
        self: Arc<Self>,
        owner: String,
        context_id: String,
        cancel: CancellationToken,
    ) {
        let mut last: Option<(String, String)> = None;
        loop {
            // Cancellable at any point (a delete waits for this task to end).
            let outcome = tokio::select! {
                _ = cancel.cancelled() => return,
                outcome = self.watch_once(&owner, &context_id, &cancel, &mut last) => outcome,
            };
            let wait = match outcome {
                Ok(Stop::Cancelled) => return,
                Ok(Stop::Rediscover) => Duration::ZERO,
                Ok(Stop::Relist) => self.options.probe.min(Duration::from_secs(1)),
                Ok(Stop::Disconnected(why)) => {
                    self.set_state(&owner, &context_id, &mut last, "disconnected", &why, None)
                        .await;
                    self.options.probe
                }
                Err(Gone) => return,
            };
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Connects, discovers and watches until something ends it.
    async fn watch_once(
        &self,
        owner: &str,
        context_id: &str,
        cancel: &CancellationToken,
        last: &mut Option<(String, String)>,
    ) -> Result<Stop, Gone> {
        let (context, credentials) = match self.kubernetes.access_owned(owner, context_id).await {
            Ok(found) => found,
            Err(crate::kubernetes::KubeError::NotFound(_)) => return Err(Gone),
            Err(e) => return Ok(Stop::Disconnected(e.to_string())),
        };
        let client = match crate::kube_client::client(
            &context.server,
            &credentials,
            "default",
            &self.targets,
        )
        .await
        {
            Ok(c) => c,
            Err(e) => return Ok(Stop::Disconnected(e.to_string())),
        };
        if let Err(why) = probe(&client).await {
            return Ok(Stop::Disconnected(why));
        }
        let version = match tokio::time::timeout(PROBE_TIMEOUT, client.apiserver_version()).await {
            Ok(Ok(info)) => Some(info.git_version),
            _ => None,
        };
        let (kinds, crds) = match self.discover(&client).await {
            Ok(k) => k,
            Err(why) => return Ok(Stop::Disconnected(why)),
        };
        let keep: Vec<(String, String)> = kinds
            .iter()
            .map(|k| (k.api_version.clone(), k.kind.clone()))
            .collect();
        if let Err(e) = self
            .store
            .drop_inventory(owner, context_id, Some(&keep))
            .await
        {
            tracing::warn!(error = %e, "could not remove kinds no longer watched");
        }
        self.set_state(owner, context_id, last, "connected", "", version.as_deref())
            .await;
        tracing::debug!(context_id, kinds = kinds.len(), "inventory: watching");
        self.watch(owner, context_id, &client, &kinds, &crds, cancel)
            .await
    }

    /// The kinds to watch: the registry's kinds this cluster serves (with list and
    /// watch), then the kinds of its CRDs, at most `max_crd_kinds`, by CRD name. Also
    /// every kind its CRDs define (to tell when they change).
    async fn discover(
        &self,
        client: &kube::Client,
    ) -> Result<(Vec<Watched>, BTreeSet<(String, String)>), String> {
        let mut wanted: HashMap<(String, String), String> = HashMap::new();
        for c in self.registry.components() {
            wanted
                .entry((c.api_version, c.kind))
                .or_insert(c.model.name);
        }
        wanted.insert(
            (
                "apiextensions.k8s.io/v1".into(),
                "CustomResourceDefinition".into(),
            ),
            "kubernetes".into(),
        );
        let versions: BTreeSet<String> = wanted.keys().map(|(v, _)| v.clone()).collect();
        let mut out = Vec::new();
        for api_version in versions {
            let listed = tokio::time::timeout(PROBE_TIMEOUT, async {
                if api_version.contains('/') {
                    client.list_api_group_resources(&api_version).await
                } else {
                    client.list_core_api_resources(&api_version).await
                }
            })
            .await
            .map_err(|_| format!("discovery of {api_version}: no answer within 5 s"))?;
            let list = match listed {
                Ok(l) => l,
                // The cluster does not serve this group version.
                Err(kube::Error::Api(s)) if s.code == 404 => continue,
                Err(e) => {
                    return Err(format!(
                        "discovery of {api_version}: {}",
                        crate::fault::chain(&e)
                    ));
                }
            };
            let (group, version) = api_version
                .split_once('/')
                .map_or((String::new(), api_version.clone()), |(g, v)| {
                    (g.to_string(), v.to_string())
                });
            for r in list.resources {
                let watchable =
                    r.verbs.iter().any(|v| v == "list") && r.verbs.iter().any(|v| v == "watch");
                if r.name.contains('/') || !watchable {
                    continue;
                }
                if let Some(model) = wanted.get(&(api_version.clone(), r.kind.clone())) {
                    out.push(Watched {
                        api_version: api_version.clone(),
                        kind: r.kind,
                        group: group.clone(),
                        version: version.clone(),
                        plural: r.name,
                        model: model.clone(),
                    });
                }
            }
        }
        let mut all_crds = BTreeSet::new();
        if out.iter().any(|w| w.kind == "CustomResourceDefinition") {
            let known: BTreeSet<(String, String)> = out
                .iter()
                .map(|w| (w.api_version.clone(), w.kind.clone()))
                .collect();
            let crds = crd_kinds(client, usize::MAX).await?;
            all_crds = crd_set(&crds);
            let extra: Vec<Watched> = crds
                .into_iter()
                .filter(|w| !known.contains(&(w.api_version.clone(), w.kind.clone())))
                .collect();
            if extra.len() > self.options.max_crd_kinds {
                tracing::warn!(
                    defined = extra.len(),
                    watched = self.options.max_crd_kinds,
                    "inventory: the cluster defines more custom kinds than --inventory-max-crd-kinds"
                );
            }
            out.extend(extra.into_iter().take(self.options.max_crd_kinds));
        }
        out.sort();
        Ok((out, all_crds))
    }

    /// Lists and watches `kinds`, writing what it sees, until cancelled, disconnected,
    /// or the cluster's CRDs change.
    async fn watch(
        &self,
        owner: &str,
        context_id: &str,
        client: &kube::Client,
        kinds: &[Watched],
        crds: &BTreeSet<(String, String)>,
        cancel: &CancellationToken,
    ) -> Result<Stop, Gone> {
        let config = watcher::Config::default().page_size(self.options.page_size);
        let streams = kinds.iter().enumerate().map(|(i, k)| {
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &k.resource());
            watcher(api, config.clone())
                .default_backoff()
                .map(move |item| (i, item))
                .boxed()
        });
        let mut all = futures_util::stream::select_all(streams);
        // The list each kind is in (its objects carry it), and whether its first list ended.
        let mut lists = vec![0i64; kinds.len()];
        let mut listed = vec![false; kinds.len()];
        let crd = kinds
            .iter()
            .position(|k| k.kind == "CustomResourceDefinition");
        let mut crds_changed = false;
        let mut probe_timer = tokio::time::interval(self.options.probe);
        probe_timer.tick().await;
        loop {
            let first = tokio::select! {
                _ = cancel.cancelled() => return Ok(Stop::Cancelled),
                _ = probe_timer.tick() => {
                    if let Err(why) = probe(client).await {
                        return Ok(Stop::Disconnected(why));
                    }
                    if crds_changed {
                        crds_changed = false;
                        match crd_kinds(client, usize::MAX).await {
                            Ok(now) if crd_set(&now) != *crds => return Ok(Stop::Rediscover),
                            Ok(_) => {}
                            Err(why) => return Ok(Stop::Disconnected(why)),
                        }
                    }
                    continue;
                }
                next = all.next() => match next {
                    Some(item) => item,
                    None => return Ok(Stop::Rediscover),
                },
            };
            let mut ops = Vec::new();
            let mut seen = Vec::new();
            let mut failure = None;
            let mut item = Some(first);
            while let Some((i, result)) = item.take() {
                let kind = &kinds[i];
                match result {
                    Ok(watcher::Event::Init) => lists[i] = next_list(),
                    Ok(event @ (watcher::Event::InitApply(_) | watcher::Event::Apply(_))) => {
                        let (o, from_list) = match event {
                            watcher::Event::InitApply(o) => (o, true),
                            watcher::Event::Apply(o) => (o, false),
                            _ => continue,
                        };
                        if listed[i] && Some(i) == crd {
                            crds_changed = true;
                        }
                        if lists[i] == 0 {
                            lists[i] = next_list();
                        }
                        if let Some(row) = row(owner, context_id, kind, o, lists[i]) {
                            seen.push(if from_list {
                                Seen::Listed(row.id.clone())
                            } else {
                                Seen::Applied(row.id.clone())
                            });
                            ops.push(InventoryOp::Upsert(row));
                        }
                    }
                    Ok(watcher::Event::Delete(o)) => {
                        if Some(i) == crd {
                            crds_changed = true;
                        }
                        if let Some(uid) = o.metadata.uid.as_deref() {
                            let id = resource_id(owner, context_id, uid);
                            seen.push(Seen::Deleted(json!({
                                "id": id, "apiVersion": kind.api_version, "kind": kind.kind,
                                "model": kind.model,
                                "metadata": {"name": o.metadata.name, "namespace": o.metadata.namespace, "uid": uid},
                                "cluster_id": context_id,
                                "connection_id": crate::kubernetes::connection_id(owner, context_id),
                            })));
                            ops.push(InventoryOp::Delete { id });
                        }
                    }
                    Ok(watcher::Event::InitDone) => {
                        listed[i] = true;
                        ops.push(InventoryOp::Sweep {
                            owner: owner.to_string(),
                            context_id: context_id.to_string(),
                            api_version: kind.api_version.clone(),
                            kind: kind.kind.clone(),
                            before: lists[i],
                        });
                    }
                    Err(e) => {
                        tracing::debug!(context_id, kind = %kind.kind, error = %e, "inventory: watch failed");
                        failure = Some(format!(
                            "watching {}: {}",
                            kind.plural,
                            crate::fault::chain(&e)
                        ));
                    }
                }
                if ops.len() < BATCH {
                    item = all.next().now_or_never().flatten();
                }
            }
            if !ops.is_empty() {
                // What the inventory held before tells added from modified (read only
                // when someone may follow object events).
                let held = if self.objects_followed() && !seen.is_empty() {
                    let ids: Vec<String> = ops
                        .iter()
                        .filter_map(|op| match op {
                            InventoryOp::Upsert(row) => Some(row.id.clone()),
                            _ => None,
                        })
                        .collect();
                    match self.store.resource_ids_held(owner, &ids).await {
                        Ok(held) => Some(held),
                        Err(e) => {
                            tracing::warn!(error = %e, "could not read which objects are new");
                            None
                        }
                    }
                } else {
                    None
                };
                match self.store.apply_inventory(owner, context_id, &ops).await {
                    Ok(true) => {
                        if let Some(held) = held {
                            self.object_news(owner, context_id, seen, &ops, &held).await;
                        }
                        self.announce(owner, context_id).await
                    }
                    Ok(false) => return Err(Gone),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not store inventory changes; listing again");
                        return Ok(Stop::Relist);
                    }
                }
            }
            if let Some(why) = failure {
                // The cluster may be gone (then start over once it answers), or only
                // this kind fails (its watcher backs off and retries).
                if let Err(probe_failed) = probe(client).await {
                    return Ok(Stop::Disconnected(probe_failed));
                }
                tracing::warn!(context_id, "inventory: {why}");
            }
        }
    }
}

/// The context no longer exists.
struct Gone;

/// A notice's parts, each key under `NOTICE_BYTES` (a stub alone larger is left out:
/// subscribers on other replicas miss that deletion, logged).
fn notice_keys(notice: ObjectNotice) -> Vec<String> {
    enum Item {
        A(String),
        M(String),
        D(Value),
    }
    let text = |n: &ObjectNotice| serde_json::to_string(n).unwrap_or_default();
    let base = ObjectNotice {
        o: notice.o.clone(),
        c: notice.c.clone(),
        ..Default::default()
    };
    let base_len = text(&base).len();
    let items = (notice.a.into_iter().map(Item::A))
        .chain(notice.m.into_iter().map(Item::M))
        .chain(notice.d.into_iter().map(Item::D));
    let mut out = Vec::new();
    let mut part = base.clone();
    let mut len = base_len;
    for item in items {
        // The item's JSON text and a comma.
        let n = 1 + match &item {
            Item::A(id) | Item::M(id) => Value::from(id.as_str()).to_string().len(),
            Item::D(stub) => stub.to_string().len(),
        };
        if base_len + n > NOTICE_BYTES {
            tracing::warn!("an object event too large to relay to the other replicas");
            continue;
        }
        if len + n > NOTICE_BYTES {
            out.push(text(&part));
            part = base.clone();
            len = base_len;
        }
        len += n;
        match item {
            Item::A(id) => part.a.push(id),
            Item::M(id) => part.m.push(id),
            Item::D(stub) => part.d.push(stub),
        }
    }
    if !(part.a.is_empty() && part.m.is_empty() && part.d.is_empty()) {
        out.push(text(&part));
    }
    out
}

/// Changes closer together than this make one live event.
const COALESCE: Duration = Duration::from_millis(250);

/// Whether a change concerns this subscriber.
fn concerns(change: &Changed, owner: &str, contexts: Option<&[String]>) -> bool {
    match change {
        Changed::All => true,
        Changed::One {
            owner: o,
            context_id,
        } => o == owner && contexts.is_none_or(|c| c.contains(context_id)),
    }
}

/// Reads a Kubernetes equality-based label selector: comma-separated `key=value`,
/// `key==value`, `key!=value`, `key` and `!key`.
pub fn parse_selector(text: &str) -> Result<Vec<LabelReq>, String> {
    let mut out = Vec::new();
    for term in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        let bad = || {
            format!(
                "label selector term {term:?}: use key=value, key==value, key!=value, key or !key (set-based terms are not supported)"
            )
        };
        let req = if let Some((k, v)) = term.split_once("!=") {
            LabelReq::NotEq(k.trim().into(), v.trim().into())
        } else if let Some((k, v)) = term.split_once("==").or_else(|| term.split_once('=')) {
            LabelReq::Eq(k.trim().into(), v.trim().into())
        } else if let Some(k) = term.strip_prefix('!') {
            LabelReq::NotExists(k.trim().into())
        } else {
            LabelReq::Exists(term.into())
        };
        let key = match &req {
            LabelReq::Eq(k, _)
            | LabelReq::NotEq(k, _)
            | LabelReq::Exists(k)
            | LabelReq::NotExists(k) => k,
        };
        let value_ok = match &req {
            LabelReq::Eq(_, v) | LabelReq::NotEq(_, v) => !v.contains([' ', '(', ')', '=', '!']),
            _ => true,
        };
        if key.is_empty() || key.contains([' ', '(', ')', '=', '!']) || !value_ok {
            return Err(bad());
        }
        out.push(req);
    }
    Ok(out)
}

/// Reads `order`: `<field> [asc|desc]`, any case; by name ascending by default.
pub fn parse_order(text: Option<&str>) -> Result<(&'static str, bool), String> {
    crate::store::parse_order(
        text,
        &[
            ("name", "name"),
            ("kind", "kind"),
            ("namespace", "namespace"),
            ("api_version", "api_version"),
            ("creation_timestamp", "created"),
        ],
        "name",
        |_| false,
    )
}

/// A number above every earlier one (time in µs, then +1 on collision).
fn next_list() -> i64 {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let now = chrono::Utc::now().timestamp_micros();
    let mut prev = LAST.load(std::sync::atomic::Ordering::Relaxed);
    loop {
        let next = now.max(prev + 1);
        match LAST.compare_exchange(
            prev,
            next,
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
        ) {
            Ok(_) => return next,
            Err(p) => prev = p,
        }
    }
}

/// Whether the cluster answers with these credentials: one namespace listed.
async fn probe(client: &kube::Client) -> Result<(), String> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    match tokio::time::timeout(
        PROBE_TIMEOUT,
        api.list_metadata(&ListParams::default().limit(1)),
    )
    .await
    {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(crate::fault::chain(&e)),
        Err(_) => Err("no answer within 5 s".into()),
    }
}

fn crd_set(kinds: &[Watched]) -> BTreeSet<(String, String)> {
    kinds
        .iter()
        .map(|w| (w.api_version.clone(), w.kind.clone()))
        .collect()
}

/// The kinds the cluster's CRDs define (their storage version), by CRD name.
async fn crd_kinds(client: &kube::Client, most: usize) -> Result<Vec<Watched>, String> {
    let resource = ApiResource {
        group: "apiextensions.k8s.io".into(),
        version: "v1".into(),
        api_version: "apiextensions.k8s.io/v1".into(),
        kind: "CustomResourceDefinition".into(),
        plural: "customresourcedefinitions".into(),
    };
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
    let list = tokio::time::timeout(PROBE_TIMEOUT, api.list(&ListParams::default()))
        .await
        .map_err(|_| "listing CRDs: no answer within 5 s".to_string())?
        .map_err(|e| format!("listing CRDs: {}", crate::fault::chain(&e)))?;
    let mut crds: Vec<(String, Watched)> = list
        .items
        .iter()
        .filter_map(|crd| {
            let spec = crd.data.get("spec")?;
            let group = spec.get("group")?.as_str()?.to_string();
            let names = spec.get("names")?;
            let versions = spec.get("versions")?.as_array()?;
            let version = versions
                .iter()
                .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
                .or_else(|| versions.first())?
                .get("name")?
                .as_str()?
                .to_string();
            Some((
                crd.metadata.name.clone().unwrap_or_default(),
                Watched {
                    api_version: format!("{group}/{version}"),
                    kind: names.get("kind")?.as_str()?.to_string(),
                    plural: names.get("plural")?.as_str()?.to_string(),
                    model: group.clone(),
                    group,
                    version,
                },
            ))
        })
        .collect();
    crds.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(crds.into_iter().map(|(_, w)| w).take(most).collect())
}

/// The stored form of an object: Meshery's MeshSync shape, without what must not be
/// kept (a Secret's data, managed fields, kubectl's copy of the last applied object).
fn row(
    owner: &str,
    context_id: &str,
    kind: &Watched,
    object: DynamicObject,
    list: i64,
) -> Option<ResourceRow> {
    let meta = object.metadata;
    let uid = meta.uid?;
    let name = meta.name.unwrap_or_default();
    let namespace = meta.namespace.unwrap_or_default();
    let labels: Vec<(String, String)> = meta.labels.unwrap_or_default().into_iter().collect();
    let annotations: Vec<(String, String)> = meta
        .annotations
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| k != "kubectl.kubernetes.io/last-applied-configuration")
        .collect();
    let pairs = |v: &[(String, String)]| -> Vec<Value> {
        v.iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect()
    };
    let created = meta
        .creation_timestamp
        .map(|t| t.0.to_string())
        .unwrap_or_default();
    let mut data = object.data;
    let secret = kind.kind == "Secret" && kind.group.is_empty();
    let fields = data.as_object_mut();
    let status = fields.as_ref().and_then(|f| f.get("status")).cloned();
    let config_data = if secret {
        None
    } else {
        fields.as_ref().and_then(|f| f.get("data")).cloned()
    };
    // `spec`, or else every other top-level field (a Role's rules, a Secret's type).
    let spec = match fields {
        Some(f) => match f.remove("spec") {
            Some(spec) => Some(spec),
            None => {
                for k in ["status", "data", "stringData", "binaryData"] {
                    f.remove(k);
                }
                (!f.is_empty()).then(|| Value::Object(f.clone()))
            }
        },
        None => None,
    };
    let id = resource_id(owner, context_id, &uid);
    let mut metadata = json!({
        "name": name, "uid": uid,
        "resourceVersion": meta.resource_version.unwrap_or_default(),
        "creationTimestamp": created,
        "labels": pairs(&labels), "annotations": pairs(&annotations),
    });
    if !namespace.is_empty() {
        metadata["namespace"] = json!(namespace);
    }
    if let Some(g) = meta.generation {
        metadata["generation"] = json!(g);
    }
    let mut doc = json!({
        "id": id, "apiVersion": kind.api_version, "kind": kind.kind, "model": kind.model,
        "metadata": metadata, "cluster_id": context_id,
        "connection_id": crate::kubernetes::connection_id(owner, context_id),
    });
    let text = |v: &Value| json!({"attribute": v.to_string()});
    if let Some(s) = &spec {
        doc["spec"] = text(s);
    }
    if let Some(s) = &status {
        doc["status"] = text(s);
    }
    if let Some(d) = &config_data {
        doc["data"] = json!(d.to_string());
    }
    Some(ResourceRow {
        id,
        owner: owner.to_string(),
        context_id: context_id.to_string(),
        api_version: kind.api_version.clone(),
        kind: kind.kind.clone(),
        model: kind.model.clone(),
        namespace,
        name,
        created,
        doc: doc.to_string(),
        labels,
        sweep: list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_notices_split_under_the_notify_limit_and_lose_nothing() {
        let notice = ObjectNotice {
            o: "owner".into(),
            c: "context".into(),
            a: (0..300)
                .map(|i| format!("added-{i:04}-{}", "x".repeat(20)))
                .collect(),
            m: (0..100).map(|i| format!("modified-{i:04}")).collect(),
            d: (0..40)
                .map(|i| json!({"id": format!("gone-{i}"), "kind": "Pod", "pad": "y".repeat(100)}))
                .chain([json!({"id": "huge", "pad": "z".repeat(NOTICE_BYTES)})])
                .collect(),
            resync: false,
        };
        let keys = notice_keys(notice.clone());
        assert!(keys.len() > 1, "{} keys", keys.len());
        let parts: Vec<ObjectNotice> = keys
            .iter()
            .map(|k| {
                assert!(k.len() <= NOTICE_BYTES, "{} bytes", k.len());
                serde_json::from_str(k).unwrap()
            })
            .collect();
        assert!(parts.iter().all(|p| p.o == "owner" && p.c == "context"));
        let a: Vec<String> = parts.iter().flat_map(|p| p.a.clone()).collect();
        let m: Vec<String> = parts.iter().flat_map(|p| p.m.clone()).collect();
        let d: Vec<Value> = parts.iter().flat_map(|p| p.d.clone()).collect();
        assert_eq!(a, notice.a);
        assert_eq!(m, notice.m);
        // Everything but the one stub too large for any notice.
        assert_eq!(d, notice.d[..40]);
        assert!(notice_keys(ObjectNotice::default()).is_empty());
    }

    fn watched(kind: &str, group: &str) -> Watched {
        Watched {
            api_version: if group.is_empty() {
                "v1".into()
            } else {
                format!("{group}/v1")
            },
            kind: kind.into(),
            group: group.into(),
            version: "v1".into(),
            plural: format!("{}s", kind.to_lowercase()),
            model: "kubernetes".into(),
        }
    }

    fn object(v: Value) -> DynamicObject {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn secrets_keep_no_data_and_no_object_keeps_the_last_applied_copy() {
        let secret = object(json!({
            "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "db", "namespace": "prod", "uid": "u1", "resourceVersion": "7",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"password\":\"aHVudGVyMg==\"}}", "team": "core"},
                "managedFields": [{"manager": "kubectl"}]},
            "data": {"password": "aHVudGVyMg=="}, "stringData": {"token": "t0ps3cret"}
        }));
        let r = row("alice", "ctx", &watched("Secret", ""), secret, 5).unwrap();
        assert!(!r.doc.contains("aHVudGVyMg"), "{}", r.doc);
        assert!(!r.doc.contains("t0ps3cret"), "{}", r.doc);
        assert!(!r.doc.contains("managedFields"), "{}", r.doc);
        let doc: Value = serde_json::from_str(&r.doc).unwrap();
        assert_eq!(
            doc["metadata"]["annotations"],
            json!([{"key": "team", "value": "core"}])
        );
        assert_eq!(doc["spec"]["attribute"], json!("{\"type\":\"Opaque\"}"));
        assert_eq!((r.namespace.as_str(), r.sweep), ("prod", 5));
    }

    #[test]
    fn config_maps_keep_their_data_and_workloads_their_spec_and_status() {
        let cm = object(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "web-config", "namespace": "default", "uid": "u2", "labels": {"app": "web"}},
            "data": {"greeting": "hello"}}));
        let r = row("alice", "ctx", &watched("ConfigMap", ""), cm, 1).unwrap();
        let doc: Value = serde_json::from_str(&r.doc).unwrap();
        assert_eq!(doc["data"], json!("{\"greeting\":\"hello\"}"));
        assert_eq!(r.labels, vec![("app".to_string(), "web".to_string())]);
        let deploy = object(json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "uid": "u3", "generation": 2},
            "spec": {"replicas": 3}, "status": {"readyReplicas": 1}}));
        let r = row("alice", "ctx", &watched("Deployment", "apps"), deploy, 1).unwrap();
        let doc: Value = serde_json::from_str(&r.doc).unwrap();
        assert_eq!(doc["spec"]["attribute"], json!("{\"replicas\":3}"));
        assert_eq!(doc["status"]["attribute"], json!("{\"readyReplicas\":1}"));
        assert_eq!(doc["metadata"]["generation"], json!(2));
        assert_eq!(doc["apiVersion"], json!("apps/v1"));
    }

    #[test]
    fn ids_are_stable_per_owner_context_and_uid() {
        let a = resource_id("alice", "c1", "u");
        assert_eq!(a, resource_id("alice", "c1", "u"));
        assert_ne!(a, resource_id("bob", "c1", "u"));
        assert_ne!(a, resource_id("alice", "c2", "u"));
        assert!(uuid::Uuid::parse_str(&a).is_ok());
    }

    #[test]
    fn selectors_and_orders_read_as_kubernetes_and_meshery_write_them() {
        assert_eq!(
            parse_selector("app=web, tier==front,env!=prod,canary,!legacy").unwrap(),
            vec![
                LabelReq::Eq("app".into(), "web".into()),
                LabelReq::Eq("tier".into(), "front".into()),
                LabelReq::NotEq("env".into(), "prod".into()),
                LabelReq::Exists("canary".into()),
                LabelReq::NotExists("legacy".into()),
            ]
        );
        assert!(
            parse_selector("env in (a,b)")
                .unwrap_err()
                .contains("set-based")
        );
        assert!(parse_selector("=x").is_err());
        assert_eq!(parse_order(None).unwrap(), ("name", false));
        assert_eq!(parse_order(Some(" Kind DESC ")).unwrap(), ("kind", true));
        assert_eq!(
            parse_order(Some("creation_timestamp")).unwrap(),
            ("created", false)
        );
        assert!(parse_order(Some("uid")).is_err());
        assert!(parse_order(Some("name sideways")).is_err());
    }

    #[test]
    fn list_numbers_only_grow() {
        let a = next_list();
        let b = next_list();
        assert!(b > a);
    }
}
