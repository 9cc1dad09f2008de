use crate::app::App;
use crate::error::ApiError;
use crate::generated::rest::*;
use crate::models::ClusterInventoryFrame;
use crate::server::Api;
use crate::session::Session;
use crate::store::ResourceQuery;

/// The clusters named by `clusterId` (repeated) and `clusterIds` (a JSON array, Meshery's
/// form, or comma-separated); `None` when neither names any: all of the user's.
fn clusters(repeated: &[String], listed: Option<&str>) -> Result<Option<Vec<String>>, ApiError> {
    let mut all = repeated.to_vec();
    if let Some(text) = listed.map(str::trim).filter(|t| !t.is_empty()) {
        match serde_json::from_str::<Vec<String>>(text) {
            Ok(ids) => all.extend(ids),
            // Not a JSON array: ids separated by commas (an id that is no cluster of the
            // user's matches nothing).
            Err(_) => all.extend(
                text.split(',')
                    .map(str::trim)
                    .filter(|id| !id.is_empty())
                    .map(str::to_string),
            ),
        }
    }
    Ok((!all.is_empty()).then_some(all))
}

impl App {
    /// What a live inventory event says now.
    async fn inventory_frame(
        &self,
        owner: &str,
        contexts: Option<&[String]>,
        namespaces: &[String],
    ) -> Result<ClusterInventoryFrame, ApiError> {
        Ok(ClusterInventoryFrame {
            connections: self.connections.of_contexts(owner, contexts).await?,
            summary: self.inventory.summary(owner, contexts, namespaces).await?,
        })
    }
}

impl MeshsyncApi for Api {
    async fn list_cluster_resources(
        &self,
        r: ListClusterResourcesRequest<Session>,
    ) -> Result<ListClusterResourcesResponse, ApiError> {
        let listing = crate::store::listing(
            r.page,
            r.pagesize.as_deref().or(r.page_size.as_deref()),
            None,
            None,
            None,
            None,
        )?;
        let mut labels_any = Vec::new();
        for l in &r.label {
            let (k, v) = l
                .split_once('=')
                .ok_or_else(|| ApiError::bad_request(format!("label {l:?} must be key=value")))?;
            labels_any.push((k.to_string(), v.to_string()));
        }
        let query = ResourceQuery {
            owner: r.session.owner(),
            contexts: clusters(&r.cluster_id, r.cluster_ids.as_deref())?,
            kinds: r.kind.clone(),
            namespaces: r.namespace.clone(),
            api_version: r.api_version.clone().filter(|v| !v.is_empty()),
            search: r.search.clone(),
            labels_any,
            selector: crate::inventory::parse_selector(r.label_selector.as_deref().unwrap_or(""))
                .map_err(ApiError::bad_request)?,
            order: crate::inventory::parse_order(r.order.as_deref())
                .map_err(ApiError::bad_request)?,
            page: listing.page,
            page_size: listing.page_size,
        };
        let (resources, total) = self
            .inventory
            .resources(&query, r.spec == Some(true), r.status == Some(true))
            .await?;
        Ok(ListClusterResourcesResponse::Ok(
            listing.page_of(resources, total),
        ))
    }

    async fn get_cluster_resources_summary(
        &self,
        r: GetClusterResourcesSummaryRequest<Session>,
    ) -> Result<GetClusterResourcesSummaryResponse, ApiError> {
        let contexts = clusters(&r.cluster_id, r.cluster_ids.as_deref())?;
        Ok(GetClusterResourcesSummaryResponse::Ok(
            self.inventory
                .summary(&r.session.owner(), contexts.as_deref(), &r.namespace)
                .await?,
        ))
    }

    async fn subscribe_cluster_resources(
        &self,
        r: SubscribeClusterResourcesRequest<Session>,
    ) -> Result<SubscribeClusterResourcesResponse, ApiError> {
        let owner = r.session.owner();
        let contexts = clusters(&r.cluster_id, None)?;
        let namespaces = r.namespace.clone();
        let app: App = (**self).clone();
        let watched = contexts.clone();
        let frames = crate::gql_clusters::follow(app, owner, watched, move |app, owner| {
            let (contexts, namespaces) = (contexts.clone(), namespaces.clone());
            Box::pin(async move {
                let frame = app
                    .inventory_frame(&owner, contexts.as_deref(), &namespaces)
                    .await?;
                serde_json::to_string(&frame)
                    .map_err(|e| ApiError::internal("encoding the inventory", e))
            })
        })
        .await?;
        Ok(SubscribeClusterResourcesResponse::Ok(
            super::until_session_ends(self, &r.session, super::frames_of(frames)),
        ))
    }

    async fn get_cluster_resource(
        &self,
        r: GetClusterResourceRequest<Session>,
    ) -> Result<GetClusterResourceResponse, ApiError> {
        match self
            .inventory
            .resource(&r.session.owner(), &r.resource_id)
            .await?
        {
            Some(found) => Ok(GetClusterResourceResponse::Ok(found)),
            None => Err(ApiError::not_found(format!(
                "no object {:?} in your clusters' inventory",
                r.resource_id
            ))),
        }
    }
}
