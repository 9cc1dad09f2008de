use crate::connections::Filter;
use crate::error::ApiError;
use crate::generated::rest::*;
use crate::server::Api;
use crate::session::Session;

/// `order` of connections: `<field> [asc|desc]`; newest first by default.
fn order(text: Option<&str>) -> Result<(&'static str, bool), ApiError> {
    crate::store::parse_order(
        text,
        &[
            ("created_at", "created_at"),
            ("updated_at", "created_at"),
            ("name", "name"),
            ("status", "status"),
        ],
        "created_at",
        |column| column == "created_at",
    )
    .map_err(ApiError::bad_request)
}

impl ConnectionsApi for Api {
    async fn list_connections(
        &self,
        r: ListConnectionsRequest<Session>,
    ) -> Result<ListConnectionsResponse, ApiError> {
        let listing = crate::store::listing(
            r.page,
            r.pagesize.as_deref().or(r.page_size.as_deref()),
            None,
            None,
            None,
            None,
        )?;
        let filter = Filter {
            statuses: r.status.clone(),
            kinds: r.kind.clone(),
            types: r.r#type.clone(),
            search: r.search.clone().or(r.name.clone()),
            order: order(r.order.as_deref())?,
            page: listing.page,
            page_size: listing.page_size,
        };
        let (connections, total, counts) = self.connections.list(&r.session, &filter).await?;
        let mut page: crate::models::ConnectionPage = listing.page_of(connections, total);
        page.status_summary = counts;
        Ok(ListConnectionsResponse::Ok(page))
    }

    async fn get_connection(
        &self,
        r: GetConnectionRequest<Session>,
    ) -> Result<GetConnectionResponse, ApiError> {
        Ok(GetConnectionResponse::Ok(
            self.connections.get(&r.session, &r.connection_id).await?,
        ))
    }

    async fn update_connection(
        &self,
        r: UpdateConnectionRequest<Session>,
    ) -> Result<UpdateConnectionResponse, ApiError> {
        let connection = self
            .connections
            .update(&r.session, &r.connection_id, &r.body)
            .await?;
        let event = crate::events::NewEvent::new(
            "connection",
            "update",
            crate::models::EventSeverity::Informational,
            format!(
                "Connection {} is now {}",
                connection.name, connection.status
            ),
        )
        .acted_upon(connection.id.clone());
        self.events.note(&r.session, event).await;
        Ok(UpdateConnectionResponse::Ok(connection))
    }

    async fn delete_connection(
        &self,
        r: DeleteConnectionRequest<Session>,
    ) -> Result<DeleteConnectionResponse, ApiError> {
        let connection = self.connections.get(&r.session, &r.connection_id).await?;
        self.connections
            .delete(&r.session, &r.connection_id)
            .await?;
        let event = crate::events::NewEvent::new(
            "connection",
            "delete",
            crate::models::EventSeverity::Informational,
            format!("Connection {} deleted", connection.name),
        )
        .acted_upon(connection.id);
        self.events.note(&r.session, event).await;
        Ok(DeleteConnectionResponse::NoContent)
    }
}
