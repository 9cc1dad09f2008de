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
}

/// Why nothing was attempted.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error("no Kubernetes context to deploy to: upload a kubeconfig first")]
    NoContexts,
    #[error(transparent)]
    Kube(#[from] KubeError),
    #[error(transparent)]
    Internal(#[from] Internal),
}

pub struct Deployer {
    kubernetes: Arc<Kubernetes>,
    targets: Targets,
    events: Events,
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
    pub fn new(kubernetes: Arc<Kubernetes>, targets: Targets, events: Events) -> Deployer {
        Deployer {
            kubernetes,
            targets,
            events,
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
        let ids: Vec<String> = if contexts.is_empty() {
            let listing = crate::store::listing(None, Some("all"), None, None, None, None)
                .map_err(|e| Internal::new("listing contexts", e))?;
            let (all, _) = self.kubernetes.list(session, &listing).await?;
            all.into_iter().map(|c| c.id).collect()
        } else {
            contexts.to_vec()
        };
        if ids.is_empty() {
            return Err(DeployError::NoContexts);
        }
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
                    }
                }
                results.push(outcome);
            }
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
