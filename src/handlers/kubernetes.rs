use axum::extract::{FromRequest, Multipart, Request};
use axum::response::{IntoResponse, Response};

use crate::app::{App, read_body};
use crate::error::{ApiError, codes};
use crate::events::NewEvent;
use crate::generated::rest::*;
use crate::models::{EventSeverity, K8sPing, SystemSync};
use crate::server::Api;
use crate::session::Session;

impl App {
    /// The kubeconfig of an upload: the body itself, or the `k8sfile` field of a form.
    async fn kubeconfig(&self, request: Request) -> Result<String, ApiError> {
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
                let mut found = None;
                while let Some(field) = form
                    .next_field()
                    .await
                    .map_err(|e| ApiError::bad_request(format!("form: {e}")))?
                {
                    if field.name() == Some("k8sfile") {
                        found = Some(field.bytes().await.map_err(|e| {
                            ApiError::bad_request(format!("form field k8sfile: {e}"))
                        })?);
                        break;
                    }
                }
                found.ok_or_else(|| ApiError::bad_request("the form has no field `k8sfile`"))?
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
        String::from_utf8(bytes.to_vec())
            .map_err(|_| ApiError::bad_request("the kubeconfig is not UTF-8 text"))
    }
}

fn json(status: u16, body: &impl serde::Serialize) -> Response {
    let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
    (status, axum::Json(body)).into_response()
}

impl KubernetesApi for Api {
    async fn upload_kubeconfig(&self, session: Session, request: Request) -> Response {
        let result = async {
            let text = self.kubeconfig(request).await?;
            let contexts = self.kubernetes.upload(&session, &text).await?;
            for c in &contexts {
                self.inventory
                    .context_changed(&session.owner(), &c.id)
                    .await;
            }
            let names: Vec<&str> = contexts.iter().map(|c| c.name.as_str()).collect();
            let event = NewEvent::new(
                "kubernetes",
                "upload_kubeconfig",
                EventSeverity::Success,
                format!(
                    "Kubeconfig uploaded with {} context(s): {}",
                    contexts.len(),
                    names.join(", ")
                ),
            )
            .meta("contexts", names);
            self.events.note(&session, event).await;
            Ok::<_, ApiError>(contexts)
        };
        match result.await {
            Ok(contexts) => json(201, &contexts),
            Err(e) => e.into_response(),
        }
    }

    async fn parse_kubeconfig(&self, session: Session, request: Request) -> Response {
        let result = async {
            let text = self.kubeconfig(request).await?;
            let parsed = crate::kubernetes::parse(&session.owner(), &text)?;
            Ok::<_, ApiError>(parsed.into_iter().map(|p| p.context).collect::<Vec<_>>())
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
