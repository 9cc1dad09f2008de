use std::collections::BTreeMap;

use axum::extract::Request;
use axum::response::Response;

use crate::auth::Caller;
use crate::error::ApiError;
use crate::generated::rest::*;
use crate::models::HealthStatus;
use crate::server::Api;
use crate::session::Session;
use crate::web;

impl SystemApi for Api {
    async fn get_system_version(
        &self,
        _: GetSystemVersionRequest<Caller>,
    ) -> Result<GetSystemVersionResponse, ApiError> {
        Ok(GetSystemVersionResponse::Ok(self.version()))
    }

    async fn get_open_api_spec(
        &self,
        _: GetOpenApiSpecRequest<Caller>,
    ) -> Result<GetOpenApiSpecResponse, ApiError> {
        Ok(GetOpenApiSpecResponse::Ok(
            crate::generated::OPENAPI_YAML.to_string(),
        ))
    }

    async fn get_liveness(
        &self,
        _: GetLivenessRequest<Caller>,
    ) -> Result<GetLivenessResponse, ApiError> {
        Ok(GetLivenessResponse::Ok(HealthStatus {
            status: "live".into(),
            checks: BTreeMap::new(),
        }))
    }

    async fn get_readiness(
        &self,
        _: GetReadinessRequest<Caller>,
    ) -> Result<GetReadinessResponse, ApiError> {
        self.store.ping().await.map_err(|e| {
            tracing::warn!(error = %e, "readiness: database does not answer");
            ApiError::unavailable("the database does not answer")
                .cause("the database is down, unreachable, locked or corrupt")
        })?;
        // Without its notice connection a replica's live streams miss other replicas'
        // changes: out of the load balancer until it is back.
        if !self.bus.listening() {
            return Err(ApiError::unavailable("not hearing other replicas' changes")
                .cause("the database notice connection is down; reconnecting"));
        }
        let engine = self.store.engine();
        let notices = match engine {
            crate::store::Engine::Postgres => "listening",
            crate::store::Engine::Sqlite => "single server",
        };
        Ok(GetReadinessResponse::Ok(HealthStatus {
            status: "ready".into(),
            checks: BTreeMap::from([
                ("database".to_string(), engine.name().to_string()),
                ("notices".to_string(), notices.to_string()),
            ]),
        }))
    }

    async fn get_graphql_query(&self, session: Session, request: Request) -> Response {
        self.graphql.http(session, request).await
    }

    async fn post_graphql_query(&self, session: Session, request: Request) -> Response {
        self.graphql.http(session, request).await
    }

    async fn get_graphql_query_alias(&self, session: Session, request: Request) -> Response {
        self.graphql.http(session, request).await
    }

    async fn post_graphql_query_alias(&self, session: Session, request: Request) -> Response {
        self.graphql.http(session, request).await
    }

    async fn get_graphql_playground(
        &self,
        _: GetGraphqlPlaygroundRequest<Caller>,
    ) -> Result<GetGraphqlPlaygroundResponse, ApiError> {
        Ok(GetGraphqlPlaygroundResponse::Ok(
            web::PLAYGROUND.to_string(),
        ))
    }
}
