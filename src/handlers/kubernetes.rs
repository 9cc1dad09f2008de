use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::response::{IntoResponse, Response};

use crate::app::{App, read_body};
use crate::error::{ApiError, codes};
use crate::events::NewEvent;
use crate::generated::graphql as g;
use crate::generated::rest::*;
use crate::gql_clusters as gc;
use crate::kubernetes::Choice;
use crate::models::{
    ConnectionStatus, ControllerState, ControllerStateError, ControllerStateName,
    ControllerStatusItem, ControllerStatusItemController, ControllerStatusItemStatus,
    EventSeverity, K8sContextError, K8sPing, KubeconfigUpload, OperationStatus,
    OperationStatusStatus, OperatorSwitchTargetStatus, SystemSync,
};
use crate::server::Api;
use crate::session::Session;

impl App {
    /// The kubeconfig of an upload: the body itself, or the `k8sfile` field of a form,
    /// with what the form chooses: `selectedContexts` (a JSON array of context ids) and
    /// `contexts` (Meshery's per-context options by id, of which `name` renames).
    async fn kubeconfig(&self, request: Request) -> Result<(String, Choice), ApiError> {
        let content_type = request
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        let bytes = match essence.as_str() {
            "multipart/form-data" => {
                let limit = self.config.body_limit;
                let (parts, body) = request.into_parts();
                let limited = axum::body::Body::new(http_body_util::Limited::new(body, limit));
                let mut form = Multipart::from_request(Request::from_parts(parts, limited), &())
                    .await
                    .map_err(|e| ApiError::bad_request(format!("form: {e}")))?;
                let (mut found, mut choice) = (None, Choice::default());
                while let Some(field) = form
                    .next_field()
                    .await
                    .map_err(|e| ApiError::bad_request(format!("form: {e}")))?
                {
                    let name = field.name().unwrap_or("").to_string();
                    let bad = |e: &dyn std::fmt::Display| {
                        ApiError::bad_request(format!("form field {name}: {e}"))
                    };
                    match name.as_str() {
                        "k8sfile" => found = Some(field.bytes().await.map_err(|e| bad(&e))?),
                        "selectedContexts" => {
                            let text = field.text().await.map_err(|e| bad(&e))?;
                            let ids: Vec<String> = serde_json::from_str(&text).map_err(|e| {
                                bad(&format!("a JSON array of context ids is expected ({e})"))
                            })?;
                            choice.selected = Some(ids);
                        }
                        "contexts" => {
                            let text = field.text().await.map_err(|e| bad(&e))?;
                            let options: HashMap<String, ContextOptions> =
                                serde_json::from_str(&text).map_err(|e| {
                                    bad(&format!(
                                        "a JSON object of options by context id is expected ({e})"
                                    ))
                                })?;
                            choice.names = options
                                .into_iter()
                                .filter_map(|(id, o)| o.name.map(|n| (id, n)))
                                .collect();
                        }
                        _ => {}
                    }
                }
                let text = found
                    .ok_or_else(|| ApiError::bad_request("the form has no field `k8sfile`"))?;
                return Ok((utf8(text.to_vec())?, choice));
            }
            "" | "text/plain" | "application/yaml" | "application/x-yaml" | "text/yaml"
            | "application/json" => read_body(self, request.into_body()).await?,
            other => {
                return Err(ApiError::new(
                    415,
                    codes::UNSUPPORTED_MEDIA_TYPE,
                    format!(
                        "content type {other:?}: send the kubeconfig as text/plain, application/yaml or a multipart form"
                    ),
                ));
            }
        };
        Ok((utf8(bytes.to_vec())?, Choice::default()))
    }
}

/// One context's options in Meshery's upload form; MeshSync's deployment mode is not
/// this server's to choose (it has no MeshSync), so only the name is taken.
#[derive(serde::Deserialize)]
struct ContextOptions {
    name: Option<String>,
}

fn utf8(bytes: Vec<u8>) -> Result<String, ApiError> {
    String::from_utf8(bytes).map_err(|_| ApiError::bad_request("the kubeconfig is not UTF-8 text"))
}

fn json(status: u16, body: &impl serde::Serialize) -> Response {
    let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    (status, axum::Json(body)).into_response()
}

/// The controllers' answers of `gql_clusters` (which GraphQL serves too) in REST's types.
fn controller_item(i: g::MesheryControllersStatusListItem) -> ControllerStatusItem {
    ControllerStatusItem {
        connection_id: i.connection_id,
        context_id: i.context_id,
        controller: match i.controller {
            g::MesheryController::Operator => ControllerStatusItemController::Operator,
            g::MesheryController::Meshsync => ControllerStatusItemController::Meshsync,
            g::MesheryController::Broker => ControllerStatusItemController::Broker,
        },
        status: match i.status {
            g::MesheryControllerStatus::Deployed => ControllerStatusItemStatus::Deployed,
            g::MesheryControllerStatus::Notdeployed => ControllerStatusItemStatus::Notdeployed,
            g::MesheryControllerStatus::Deploying => ControllerStatusItemStatus::Deploying,
            g::MesheryControllerStatus::Unkown => ControllerStatusItemStatus::Unkown,
        },
        version: i.version.unwrap_or_default(),
    }
}

fn controller_state(s: g::OperatorControllerStatus) -> ControllerState {
    ControllerState {
        name: if s.name == "MeshSync" {
            ControllerStateName::MeshSync
        } else {
            ControllerStateName::MesheryBroker
        },
        version: s.version,
        status: s.status,
        error: s.error.map(|e| ControllerStateError {
            code: e.code,
            description: e.description,
        }),
        context_id: s.context_id,
        connection_id: s.connection_id,
    }
}

fn processing() -> OperationStatus {
    OperationStatus {
        status: OperationStatusStatus::Processing,
    }
}

/// A context as GraphQL's `K8sContext` answers it, in both of Meshery's spellings.
fn context_json(c: &g::K8sContext) -> serde_json::Value {
    let t = |t: &g::Time| t.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    serde_json::json!({
        "id": c.id, "name": c.name, "server": c.server, "owner": c.owner,
        "createdBy": c.created_by, "created_by": c.created_by,
        "mesheryInstanceId": c.meshery_instance_id, "meshery_instance_id": c.meshery_instance_id,
        "kubernetesServerId": c.kubernetes_server_id, "kubernetes_server_id": c.kubernetes_server_id,
        "deploymentType": c.deployment_type, "deployment_type": c.deployment_type,
        "version": c.version,
        "connectionId": c.connection_id, "connection_id": c.connection_id,
        "createdAt": t(&c.created_at), "created_at": t(&c.created_at),
        "updatedAt": t(&c.updated_at), "updated_at": t(&c.updated_at),
    })
}

/// `{k8sContext: {total_count, contexts}}`: every context of the user.
async fn contexts_frame(app: &App, session: &Session) -> Result<String, ApiError> {
    let all = g::PageFilter {
        page: "0".into(),
        page_size: "all".into(),
        order: None,
        search: None,
        from: None,
        to: None,
        updated_after: None,
    };
    let page = gc::contexts_page(app, session, &all).await?;
    let frame = serde_json::json!({"k8sContext": {
        "total_count": page.total_count,
        "totalCount": page.total_count,
        "contexts": page.contexts.iter().map(context_json).collect::<Vec<_>>(),
    }});
    Ok(frame.to_string())
}

impl KubernetesApi for Api {
    async fn upload_kubeconfig(&self, session: Session, request: Request) -> Response {
        let result = async {
            let (text, choice) = self.kubeconfig(request).await?;
            let upload = self.kubernetes.upload(&session, &text, &choice).await?;
            let owner = session.owner();
            let mut answer = KubeconfigUpload {
                registered_contexts: Vec::new(),
                connected_contexts: Vec::new(),
                ignored_contexts: Vec::new(),
                errored_contexts: upload
                    .errored
                    .iter()
                    .map(|(name, e)| K8sContextError {
                        name: name.clone(),
                        error: e.to_string(),
                    })
                    .collect(),
            };
            let names: Vec<String> = upload.stored.iter().map(|(c, _)| c.name.clone()).collect();
            for (mut context, prior) in upload.stored {
                self.inventory.context_changed(&owner, &context.id).await;
                context.connection_id = Some(crate::kubernetes::connection_id(&owner, &context.id));
                // Sorted by what the user's connection was before the upload (read before
                // storing: the inventory may connect a new one at once): Meshery's clients
                // show new, already connected and ignored contexts apart.
                let connected = ConnectionStatus::Connected.to_string();
                let ignored = ConnectionStatus::Ignored.to_string();
                match prior {
                    Some(s) if s == connected => answer.connected_contexts.push(context),
                    Some(s) if s == ignored => answer.ignored_contexts.push(context),
                    _ => answer.registered_contexts.push(context),
                }
            }
            let mut event = NewEvent::new(
                "kubernetes",
                "upload_kubeconfig",
                EventSeverity::Success,
                format!(
                    "Kubeconfig uploaded with {} context(s): {}",
                    names.len(),
                    names.join(", ")
                ),
            )
            .meta("contexts", names.clone());
            if !upload.errored.is_empty() {
                let unusable: Vec<&str> = upload.errored.iter().map(|(n, _)| n.as_str()).collect();
                event = event.meta("unusable", unusable);
            }
            self.events.note(&session, event).await;
            Ok::<_, ApiError>(answer)
        };
        match result.await {
            // camelCase keys first at depth 1 (the contexts), then the envelope's: the
            // envelope's snake_case copies then carry the contexts' aliases too.
            Ok(answer) => rt::json_with_snake_aliases_at(200, &answer, &[1, 0])
                .unwrap_or_else(|e| ApiError::from_rejection(&e).into_response()),
            Err(e) => e.into_response(),
        }
    }

    async fn parse_kubeconfig(&self, session: Session, request: Request) -> Response {
        let result = async {
            let (text, _) = self.kubeconfig(request).await?;
            // The usable contexts, as an upload stores them (the upload names the others).
            let mut usable = Vec::new();
            let mut first_error = None;
            for (_, parsed) in crate::kubernetes::parse_each(&session.owner(), &text)? {
                match parsed {
                    Ok(p) => usable.push(p.context),
                    Err(e) => {
                        first_error.get_or_insert(e);
                    }
                }
            }
            match first_error {
                Some(e) if usable.is_empty() => Err(e.into()),
                _ => Ok::<_, ApiError>(usable),
            }
        };
        match result.await {
            Ok(contexts) => json(200, &contexts),
            Err(e) => e.into_response(),
        }
    }

    async fn list_k8s_contexts(
        &self,
        r: ListK8sContextsRequest<Session>,
    ) -> Result<ListK8sContextsResponse, ApiError> {
        let listing = listing_of!(r)?;
        let (contexts, total) = self.kubernetes.list(&r.session, &listing).await?;
        Ok(ListK8sContextsResponse::Ok(
            listing.page_of(contexts, total),
        ))
    }

    async fn get_k8s_context(
        &self,
        r: GetK8sContextRequest<Session>,
    ) -> Result<GetK8sContextResponse, ApiError> {
        Ok(GetK8sContextResponse::Ok(
            self.kubernetes.get(&r.session, &r.context_id).await?,
        ))
    }

    async fn delete_k8s_context(
        &self,
        r: DeleteK8sContextRequest<Session>,
    ) -> Result<DeleteK8sContextResponse, ApiError> {
        self.connections.remove(&r.session, &r.context_id).await?;
        let event = NewEvent::new(
            "kubernetes",
            "delete_context",
            EventSeverity::Informational,
            format!("Kubernetes context {} deleted", r.context_id),
        )
        .acted_upon(r.context_id.clone());
        self.events.note(&r.session, event).await;
        Ok(DeleteK8sContextResponse::NoContent)
    }

    async fn get_connection_operator_status(
        &self,
        r: GetConnectionOperatorStatusRequest<Session>,
    ) -> Result<GetConnectionOperatorStatusResponse, ApiError> {
        let item = gc::operator(self, &r.session.owner(), &r.connection_id).await?;
        Ok(GetConnectionOperatorStatusResponse::Ok(controller_item(
            item,
        )))
    }

    async fn get_connection_meshsync_status(
        &self,
        r: GetConnectionMeshsyncStatusRequest<Session>,
    ) -> Result<GetConnectionMeshsyncStatusResponse, ApiError> {
        let state = gc::meshsync(self, &r.session.owner(), &r.connection_id).await?;
        Ok(GetConnectionMeshsyncStatusResponse::Ok(controller_state(
            state,
        )))
    }

    async fn get_connection_nats_status(
        &self,
        r: GetConnectionNatsStatusRequest<Session>,
    ) -> Result<GetConnectionNatsStatusResponse, ApiError> {
        let state = gc::broker(self, &r.session.owner(), &r.connection_id).await?;
        Ok(GetConnectionNatsStatusResponse::Ok(controller_state(state)))
    }

    async fn resync_k8s_context(
        &self,
        r: ResyncK8sContextRequest<Session>,
    ) -> Result<ResyncK8sContextResponse, ApiError> {
        let clear = r
            .body
            .as_ref()
            .is_some_and(|b| b.clear_db == Some(true) || b.hard_reset == Some(true));
        gc::resync(self, &r.session.owner(), &r.context_id, clear).await?;
        Ok(ResyncK8sContextResponse::Ok(processing()))
    }

    async fn change_k8s_context_operator(
        &self,
        r: ChangeK8sContextOperatorRequest<Session>,
    ) -> Result<ChangeK8sContextOperatorResponse, ApiError> {
        let on = r.body.target_status != OperatorSwitchTargetStatus::Disabled;
        gc::change_operator(self, &r.session, &r.context_id, on).await?;
        Ok(ChangeK8sContextOperatorResponse::Ok(processing()))
    }

    async fn list_k8s_namespaces(
        &self,
        r: ListK8sNamespacesRequest<Session>,
    ) -> Result<ListK8sNamespacesResponse, ApiError> {
        let names = gc::namespaces(self, &r.session.owner(), Some(r.cluster_ids)).await?;
        Ok(ListK8sNamespacesResponse::Ok(
            names.into_iter().map(|n| n.namespace).collect(),
        ))
    }

    async fn stream_k8s_contexts(
        &self,
        r: StreamK8sContextsRequest<Session>,
    ) -> Result<StreamK8sContextsResponse, ApiError> {
        let app: App = (**self).clone();
        let session = r.session.clone();
        let values = gc::follow(app, r.session.owner(), None, move |app, _| {
            let session = session.clone();
            Box::pin(async move { contexts_frame(&app, &session).await })
        })
        .await?;
        Ok(StreamK8sContextsResponse::Ok(super::until_session_ends(
            self,
            &r.session,
            super::frames_of(values),
        )))
    }

    async fn subscribe_controllers_status(
        &self,
        r: SubscribeControllersStatusRequest<Session>,
    ) -> Result<SubscribeControllersStatusResponse, ApiError> {
        let app: App = (**self).clone();
        let owner = r.session.owner();
        // Ids of no connection of the user's are left out, as GraphQL's (and Meshery's)
        // subscription does: a UI may still hold one of a deleted connection.
        let wanted = gc::contexts(Some(r.connection_ids));
        let list = move |app: App, owner: String, wanted: Option<Vec<String>>| async move {
            let items = gc::controllers(&app, &owner, wanted.as_deref()).await?;
            let items: Vec<ControllerStatusItem> = items.into_iter().map(controller_item).collect();
            serde_json::to_string(&items).map_err(|e| ApiError::internal("encoding controllers", e))
        };
        let values = gc::follow(app, owner, None, move |app, owner| {
            Box::pin(list(app, owner, wanted.clone()))
        })
        .await?;
        Ok(SubscribeControllersStatusResponse::Ok(
            super::until_session_ends(self, &r.session, super::frames_of(values)),
        ))
    }

    async fn reset_cluster_inventory(
        &self,
        r: ResetClusterInventoryRequest<Session>,
    ) -> Result<ResetClusterInventoryResponse, ApiError> {
        let body = r.body.unwrap_or_default();
        let yes = |v: Option<String>| v.as_deref() == Some("true");
        let clear = yes(body.clear_db.map(|v| v.to_string()))
            || yes(body.hard_reset.map(|v| v.to_string()));
        let context = body.k8scontext_id.unwrap_or_default();
        gc::resync(self, &r.session.owner(), &context, clear).await?;
        Ok(ResetClusterInventoryResponse::Ok(processing()))
    }

    async fn ping_k8s_context(
        &self,
        r: PingK8sContextRequest<Session>,
    ) -> Result<PingK8sContextResponse, ApiError> {
        let (context, version) = self
            .kubernetes
            .ping(&r.session, &r.context_id, &self.config.targets)
            .await?;
        Ok(PingK8sContextResponse::Ok(K8sPing {
            context_id: context.id,
            name: context.name,
            server_version: version,
        }))
    }

    async fn get_system_sync(
        &self,
        r: GetSystemSyncRequest<Session>,
    ) -> Result<GetSystemSyncResponse, ApiError> {
        let listing = crate::store::Listing {
            order: ("name", false),
            ..Default::default()
        };
        let (contexts, _) = self.kubernetes.list(&r.session, &listing).await?;
        let prefs = self.prefs.get(&r.session).await?;
        Ok(GetSystemSyncResponse::Ok(SystemSync {
            k8s_config: contexts,
            mesh_adapters: prefs.mesh_adapters,
            load_test_prefs: prefs.load_test_prefs,
            anonymous_usage_stats: prefs.anonymous_usage_stats,
            anonymous_perf_results: prefs.anonymous_perf_results,
            users_extension_preferences: prefs.users_extension_preferences,
            selected_organization_id: prefs.selected_organization_id,
            selected_workspace_for_organizations: prefs.selected_workspace_for_organizations,
        }))
    }
}
