use std::collections::BTreeMap;

use axum::extract::Request;
use axum::response::Response;

use crate::auth::{Caller, Session};
use crate::error::ApiError;
use crate::generated::rest::*;
use crate::models::HealthStatus;
use crate::server::App;
use crate::{gql, web};

impl SystemApi for App {
    async fn get_system_version(
        &self,
        _: GetSystemVersionRequest<Caller>,
    ) -> GetSystemVersionResponse {
        GetSystemVersionResponse::Ok(self.version())
    }

    async fn get_open_api_spec(&self, _: GetOpenApiSpecRequest<Caller>) -> GetOpenApiSpecResponse {
        GetOpenApiSpecResponse::Ok(crate::generated::OPENAPI_YAML.to_string())
    }

    async fn get_liveness(&self, _: GetLivenessRequest<Caller>) -> GetLivenessResponse {
        GetLivenessResponse::Ok(HealthStatus {
            status: "live".into(),
            checks: BTreeMap::new(),
        })
    }

    async fn get_readiness(&self, _: GetReadinessRequest<Caller>) -> GetReadinessResponse {
        match self.store.ping().await {
            Ok(()) => GetReadinessResponse::Ok(HealthStatus {
                status: "ready".into(),
                checks: BTreeMap::from([("database".to_string(), "ok".to_string())]),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "readiness: database does not answer");
                ApiError::unavailable("the database does not answer")
                    .cause("the database file is locked, missing or corrupt")
                    .to()
            }
        }
    }

    async fn get_graphql_query(&self, session: Session, request: Request) -> Response {
        gql::http(self, session, request).await
    }

    async fn post_graphql_query(&self, session: Session, request: Request) -> Response {
        gql::http(self, session, request).await
    }

    async fn get_graphql_query_alias(&self, session: Session, request: Request) -> Response {
        gql::http(self, session, request).await
    }

    async fn post_graphql_query_alias(&self, session: Session, request: Request) -> Response {
        gql::http(self, session, request).await
    }

    async fn get_graphql_playground(
        &self,
        _: GetGraphqlPlaygroundRequest<Caller>,
    ) -> GetGraphqlPlaygroundResponse {
        GetGraphqlPlaygroundResponse::Ok(web::PLAYGROUND.to_string())
    }
}
