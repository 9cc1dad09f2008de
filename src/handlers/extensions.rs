use axum::extract::Request;
use axum::response::Response;

use crate::extensions::proxy;
use crate::generated::rest::*;
use crate::server::Api;
use crate::session::Session;

impl ExtensionsApi for Api {
    async fn get_extension(&self, session: Session, request: Request) -> Response {
        proxy(self, session, request).await
    }

    async fn post_extension(&self, session: Session, request: Request) -> Response {
        proxy(self, session, request).await
    }

    async fn put_extension(&self, session: Session, request: Request) -> Response {
        proxy(self, session, request).await
    }

    async fn patch_extension(&self, session: Session, request: Request) -> Response {
        proxy(self, session, request).await
    }

    async fn delete_extension(&self, session: Session, request: Request) -> Response {
        proxy(self, session, request).await
    }
}
