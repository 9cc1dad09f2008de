use std::collections::HashMap;

use axum::extract::{FromRequest, Multipart, Request};
use axum::response::{IntoResponse, Response};

use crate::app::{App, read_body};
use crate::error::{ApiError, codes};
use crate::events::NewEvent;
use crate::generated::rest::*;
use crate::kubernetes::Choice;
use crate::models::{
    ConnectionStatus, EventSeverity, K8sContextError, K8sPing, KubeconfigUpload, SystemSync,
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
