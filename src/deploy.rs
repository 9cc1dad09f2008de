//! Deploying designs to clusters: each component becomes its Kubernetes resource and is
//! applied with server-side apply (field manager `meshery`) in a safe order, CRDs and
//! namespaces first; undeploy deletes in the reverse order. The outcome is reported per
//! component and context, with the API server's reason mapped to the design's field.

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Map, Value};

use crate::designs::Checked;
use crate::events::{Events, NewEvent};
use crate::fault::Internal;
use crate::inventory::STOPPED;
use crate::kubernetes::{KubeError, Kubernetes};
use crate::models::{
    DeployOutcome, DeployOutcomeStatus as Status, EventSeverity, PatternDeployResult,
    PatternDeployResultAction as Action,
};
use crate::policy::Targets;
use crate::session::Session;

/// The field manager of everything this server applies.
pub const FIELD_MANAGER: &str = "meshery";
/// Longest wait for one API call.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What to do with a design.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    pub undeploy: bool,
    pub dry_run: bool,
    pub skip_crd: bool,
    /// Wait for workloads to be ready (deploys that store something only).
    pub verify: bool,
}

/// Why nothing was attempted.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("no Kubernetes context to deploy to: upload a kubeconfig first")]
    NoContexts,
    #[error("none of your clusters can be used now: {0}")]
    NoneConnected(String),
    #[error("context {name:?} is set to {state}; set its connection to connected to use it")]
    Stopped { name: String, state: String },
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Internal(#[from] Internal),
}

pub struct Deployer {
    kubernetes: Arc<Kubernetes>,
    targets: Targets,
    events: Events,
    verify_timeout: Duration,
}

/// A workload whose readiness `verify` waits for: its place in the results, where it is.
struct Pending {
    result: usize,
    client: kube::Client,
    namespace: String,
}

/// Whether a workload's status shows its applied generation ready; else what it lacks.
fn readiness(kind: &str, object: &Value) -> Result<(), String> {
    let num = |v: &Value| v.as_i64().unwrap_or(0);
    let generation = num(&object["metadata"]["generation"]);
    let status = &object["status"];
    let observed = num(&status["observedGeneration"]);
    if observed < generation {
        return Err(format!(
            "generation {generation} not yet observed by its controller"
        ));
    }
    let want = object["spec"]["replicas"].as_i64().unwrap_or(1);
    let (ready, updated, total, noun) = match kind {
        "Deployment" => (
            num(&status["availableReplicas"]),
            num(&status["updatedReplicas"]),
            want,
            "replicas available",
        ),
        "StatefulSet" => (
            num(&status["readyReplicas"]),
            num(&status["updatedReplicas"]),
            want,
            "replicas ready",
        ),
        "DaemonSet" => {
            let desired = num(&status["desiredNumberScheduled"]);
            (
                num(&status["numberAvailable"]),
                num(&status["updatedNumberScheduled"]),
                desired,
                "pods available",
            )
        }
        _ => return Ok(()),
    };
    if ready >= total && updated >= total {
        Ok(())
    } else {
        Err(format!("{ready} of {total} {noun}, {updated} updated"))
    }
}

/// Kinds `verify` waits for.
fn is_workload(kind: &str) -> bool {
    matches!(kind, "Deployment" | "StatefulSet" | "DaemonSet")
}

/// The order components are applied in: definitions and namespaces before what uses
/// them, configuration before workloads.
fn rank(kind: &str) -> u8 {
    match kind {
        "CustomResourceDefinition" => 0,
        "Namespace" => 1,
        "ServiceAccount"
        | "ConfigMap"
        | "Secret"
        | "PersistentVolumeClaim"
        | "ClusterRole"
        | "Role" => 2,
        "ClusterRoleBinding" | "RoleBinding" => 3,
        _ => 4,
    }
}

fn text<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or("")
}

/// An object without what the server changes on every write, to tell "unchanged".
fn comparable(object: &Value) -> Value {
    let mut o = object.clone();
    if let Some(map) = o.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in ["resourceVersion", "managedFields", "generation"] {
            meta.remove(k);
        }
    }
    o
}

impl Deployer {
    pub fn new(
        kubernetes: Arc<Kubernetes>,
        targets: Targets,
        events: Events,
        verify_timeout: Duration,
    ) -> Deployer {
        Deployer {
            kubernetes,
            targets,
            events,
            verify_timeout,
        }
    }

    /// Waits (until the verify timeout) for every pending workload to be ready; those
    /// that are not become `failed` with what they lack.
    async fn verify(&self, results: &mut [DeployOutcome], pending: Vec<Pending>) {
        let deadline = tokio::time::Instant::now() + self.verify_timeout;
        let mut waiting = pending;
        loop {
            let mut still = Vec::new();
            for p in waiting {
                let outcome = &mut results[p.result];
                let resource = kube::api::ApiResource {
                    group: "apps".into(),
                    version: "v1".into(),
                    api_version: "apps/v1".into(),
                    kind: outcome.kind.clone(),
                    plural: format!("{}s", outcome.kind.to_lowercase()),
                };
                let api: Api<DynamicObject> =
                    Api::namespaced_with(p.client.clone(), &p.namespace, &resource);
                let lacking =
                    match tokio::time::timeout(CALL_TIMEOUT, api.get_opt(&outcome.name)).await {
                        Ok(Ok(Some(o))) => serde_json::to_value(&o)
                            .map_err(|e| e.to_string())
                            .and_then(|v| readiness(&outcome.kind, &v)),
                        Ok(Ok(None)) => Err("it no longer exists".into()),
                        Ok(Err(e)) => Err(crate::fault::chain(&e)),
                        Err(_) => Err("the API server did not answer in time".into()),
                    };
                match lacking {
                    Ok(()) => outcome.ready = Some(true),
                    Err(why) => {
                        outcome.message = Some(why);
                        still.push(p);
                    }
                }
            }
            if still.is_empty() {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                for p in still {
                    let outcome = &mut results[p.result];
                    outcome.status = Status::Failed;
                    outcome.ready = Some(false);
                    outcome.message = Some(format!(
                        "applied, but not ready within {} s: {}",
                        self.verify_timeout.as_secs(),
                        outcome.message.take().unwrap_or_default()
                    ));
                }
                return;
            }
            waiting = still;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Deploys or undeploys `design` on the user's `contexts` (all of them when empty).
    pub async fn run(
        &self,
        session: &Session,
        design: &Checked,
        pattern_id: Option<String>,
        contexts: &[String],
        options: Options,
    ) -> Result<PatternDeployResult, DeployError> {
        let states = self.kubernetes.states(&session.owner()).await?;
        let ids: Vec<String> = if contexts.is_empty() {
            // Every connected context (or not yet checked); not those a user stopped or
            // whose cluster does not answer.
            if states.is_empty() {
                return Err(DeployError::NoContexts);
            }
            let usable: Vec<String> = states
                .iter()
                .filter(|s| !STOPPED.contains(&s.status.as_str()) && s.status != "disconnected")
                .map(|s| s.id.clone())
                .collect();
            if usable.is_empty() {
                let why: Vec<String> = states
                    .iter()
                    .map(|s| {
                        let name = serde_json::from_str::<crate::models::K8sContext>(&s.doc)
                            .map(|c| c.name)
                            .unwrap_or_else(|_| s.id.clone());
                        format!("{name} is {}", s.status)
                    })
                    .collect();
                return Err(DeployError::NoneConnected(why.join(", ")));
            }
            usable
        } else {
            for id in contexts {
                if let Some(s) = states.iter().find(|s| &s.id == id)
                    && STOPPED.contains(&s.status.as_str())
                {
                    let name = serde_json::from_str::<crate::models::K8sContext>(&s.doc)
                        .map(|c| c.name)
                        .unwrap_or_else(|_| id.clone());
                    return Err(DeployError::Stopped {
                        name,
                        state: s.status.clone(),
                    });
                }
            }
            contexts.to_vec()
        };
        // Every named context must be the user's before anything is touched.
        let mut targets = Vec::new();
        for id in &ids {
            targets.push(self.kubernetes.access(session, id).await?);
        }
        let mut order: Vec<usize> = (0..design.components.len()).collect();
        order.sort_by_key(|&i| rank(text(&design.components[i], "kind")));
        if options.undeploy {
            order.reverse();
        }
        let mut results = Vec::new();
        let mut pending = Vec::new();
        for (context, credentials) in &targets {
            let namespace = if context.namespace.is_empty() {
                "default"
            } else {
                &context.namespace
            };
            let client =
                crate::kube_client::client(&context.server, credentials, namespace, &self.targets)
                    .await;
            for &i in &order {
                let component = &design.components[i];
                let mut outcome = DeployOutcome {
                    component: text(component, "name").to_string(),
                    kind: text(component, "kind").to_string(),
                    api_version: text(component, "apiVersion").to_string(),
                    name: component
                        .get("metadata")
                        .and_then(|m| m.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    namespace: None,
                    context_id: context.id.clone(),
                    context_name: context.name.clone(),
                    status: Status::Failed,
                    message: None,
                    field: None,
                    ready: None,
                };
                if options.skip_crd && outcome.kind == "CustomResourceDefinition" {
                    outcome.status = Status::Skipped;
                    results.push(outcome);
                    continue;
                }
                match &client {
                    Err(e) => {
                        outcome.message = Some(format!("the cluster cannot be reached: {e}"));
                    }
                    Ok(client) => {
                        self.one(client, namespace, i, component, options, &mut outcome)
                            .await;
                        if options.verify
                            && !options.dry_run
                            && !options.undeploy
                            && outcome.api_version == "apps/v1"
                            && is_workload(&outcome.kind)
                            && matches!(outcome.status, Status::Applied | Status::Unchanged)
                        {
                            pending.push(Pending {
                                result: results.len(),
                                client: client.clone(),
                                namespace: outcome
                                    .namespace
                                    .clone()
                                    .unwrap_or_else(|| namespace.to_string()),
                            });
                        }
                    }
                }
                results.push(outcome);
            }
        }
        if !pending.is_empty() {
            self.verify(&mut results, pending).await;
        }
        let succeeded = results.iter().all(|r| !matches!(r.status, Status::Failed));
        let result = PatternDeployResult {
            action: if options.undeploy {
                Action::Undeploy
            } else {
                Action::Deploy
            },
            dry_run: options.dry_run,
            succeeded,
            pattern_id: pattern_id.clone(),
            results,
        };
        if !options.dry_run {
            self.record(session, design, pattern_id, &result).await;
        }
        Ok(result)
    }

    /// Applies or deletes one component on one cluster, filling in `outcome`.
    async fn one(
        &self,
        client: &kube::Client,
        default_namespace: &str,
        index: usize,
        component: &Map<String, Value>,
        options: Options,
        outcome: &mut DeployOutcome,
    ) {
        let (group, version) = match outcome.api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), outcome.api_version.clone()),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, &outcome.kind);
        let found =
            tokio::time::timeout(CALL_TIMEOUT, kube::discovery::pinned_kind(client, &gvk)).await;
        let (resource, caps) = match found {
            Err(_) => {
                outcome.message = Some("the API server did not answer discovery in time".into());
                return;
            }
            Ok(Err(e)) => {
                outcome.message = Some(match &e {
                    kube::Error::Api(s) if s.code == 404 => format!(
                        "the cluster does not serve {} {}",
                        outcome.api_version, outcome.kind
                    ),
                    other => crate::fault::chain(other),
                });
                return;
            }
            Ok(Ok(found)) => found,
        };
        let mut manifest = crate::designs::resource(component);
        let namespaced = caps.scope == kube::discovery::Scope::Namespaced;
        let api: Api<DynamicObject> = if namespaced {
            let ns = manifest
                .get("metadata")
                .and_then(|m| m.get("namespace"))
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
                .unwrap_or(default_namespace)
                .to_string();
            manifest["metadata"]["namespace"] = Value::String(ns.clone());
            outcome.namespace = Some(ns.clone());
            Api::namespaced_with(client.clone(), &ns, &resource)
        } else {
            Api::all_with(client.clone(), &resource)
        };
        let name = outcome.name.clone();
        if options.undeploy {
            let mut params = DeleteParams::background();
            if options.dry_run {
                params = params.dry_run();
            }
            match tokio::time::timeout(CALL_TIMEOUT, api.delete(&name, &params)).await {
                Err(_) => outcome.message = Some("the API server did not answer in time".into()),
                Ok(Ok(_)) => outcome.status = Status::Deleted,
                Ok(Err(kube::Error::Api(s))) if s.code == 404 => outcome.status = Status::Absent,
                Ok(Err(e)) => failed(outcome, index, &e),
            }
            return;
        }
        let before = match tokio::time::timeout(CALL_TIMEOUT, api.get_opt(&name)).await {
            Err(_) => {
                outcome.message = Some("the API server did not answer in time".into());
                return;
            }
            Ok(Err(e)) => return failed(outcome, index, &e),
            Ok(Ok(before)) => before,
        };
        let mut params = PatchParams::apply(FIELD_MANAGER);
        if options.dry_run {
            params = params.dry_run();
        }
        match tokio::time::timeout(
            CALL_TIMEOUT,
            api.patch(&name, &params, &Patch::Apply(&manifest)),
        )
        .await
        {
            Err(_) => outcome.message = Some("the API server did not answer in time".into()),
            Ok(Err(e)) => failed(outcome, index, &e),
            Ok(Ok(after)) => {
                let same = before.is_some_and(|b| {
                    serde_json::to_value(&b).ok().map(|b| comparable(&b))
                        == serde_json::to_value(&after).ok().map(|a| comparable(&a))
                });
                outcome.status = if same {
                    Status::Unchanged
                } else {
                    Status::Applied
                };
            }
        }
    }

    async fn record(
        &self,
        session: &Session,
        design: &Checked,
        pattern_id: Option<String>,
        result: &PatternDeployResult,
    ) {
        let count = |s: Status| result.results.iter().filter(|r| r.status == s).count();
        let verb = match result.action {
            Action::Deploy => "Deployed",
            Action::Undeploy => "Undeployed",
        };
        let contexts: std::collections::BTreeSet<&str> = result
            .results
            .iter()
            .map(|r| r.context_name.as_str())
            .collect();
        let failed = count(Status::Failed);
        let description = format!(
            "{verb} design {:?} on {}: {} applied, {} unchanged, {} deleted, {} failed",
            design.name,
            contexts.into_iter().collect::<Vec<_>>().join(", "),
            count(Status::Applied),
            count(Status::Unchanged),
            count(Status::Deleted),
            failed
        );
        let severity = if failed == 0 {
            EventSeverity::Success
        } else {
            EventSeverity::Error
        };
        let action = match result.action {
            Action::Deploy => "deploy",
            Action::Undeploy => "undeploy",
        };
        let mut event = NewEvent::new("pattern", action, severity, description);
        if let Some(id) = pattern_id {
            event = event.acted_upon(id);
        }
        self.events.note(session, event).await;
    }
}

/// The API server's refusal: its message, and the design field its first cause names.
fn failed(outcome: &mut DeployOutcome, index: usize, e: &kube::Error) {
    match e {
        kube::Error::Api(status) => {
            outcome.message = Some(status.message.clone());
            let field = status
                .details
                .as_ref()
                .and_then(|d| d.causes.iter().find(|c| !c.field.is_empty()))
                .map(|c| c.field.trim_start_matches('.').to_string());
            outcome.field = field.map(|f| format!("components[{index}].{f}"));
        }
        other => outcome.message = Some(crate::fault::chain(other)),
    }
}
