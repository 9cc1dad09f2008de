//! The composition root: the generated router over [`Api`] (the state and the GraphQL
//! schema, built here where the routes are), the pages, the layers in front, and serving
//! with graceful shutdown.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;

use axum::Router;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use tower::layer::layer_fn;
use tower_http::trace::TraceLayer;

pub use crate::app::{App, BUILD, Config, StartError};
use crate::auth::{self, Caller};
use crate::error::ApiError;
use crate::generated::rest::{self, Hooks, Operation, Rejection};
use crate::gql::Graphql;
use crate::models::MeshKitError;
use crate::session::Session;
use crate::web;

/// What the generated router calls: the shared state plus GraphQL (whose schema holds the
/// state, so it cannot live inside it), behind one `Arc`: the router clones its state for
/// every request, and one reference count is cheaper than one per field.
#[derive(Clone)]
pub struct Api(Arc<ApiParts>);

pub struct ApiParts {
    pub app: App,
    pub graphql: Graphql,
}

impl Api {
    pub fn new(app: App) -> Api {
        let graphql = Graphql::new(app.clone());
        Api(Arc::new(ApiParts { app, graphql }))
    }
}

impl Deref for Api {
    type Target = ApiParts;
    fn deref(&self) -> &ApiParts {
        &self.0
    }
}

impl Deref for ApiParts {
    type Target = App;
    fn deref(&self) -> &App {
        &self.app
    }
}

impl Hooks for Api {
    type Session = Session;
    type Caller = Caller;
    type Error = ApiError;

    async fn authenticate(
        &self,
        op: &'static Operation,
        parts: &mut Parts,
    ) -> Result<Session, Response> {
        let session = auth::authenticate(&self.providers, parts)
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        if let Some(key) = op.key {
            self.check_key(&session, key)
                .await
                .map_err(IntoResponse::into_response)?;
        }
        Ok(session)
    }

    async fn identify(
        &self,
        _op: &'static Operation,
        parts: &mut Parts,
    ) -> Result<Caller, Response> {
        Ok(auth::identify(&self.providers, parts))
    }

    fn reject(&self, op: Option<&'static Operation>, rejection: Rejection) -> Response {
        tracing::debug!(op = op.map(|o| o.id), %rejection, "request rejected");
        ApiError::from_rejection(&rejection).into_response()
    }

    fn error_body(&self, op: &'static Operation, error: ApiError) -> (u16, MeshKitError) {
        tracing::debug!(
            op = op.id,
            status = error.status,
            code = error.code,
            "operation failed"
        );
        (error.status, error.body())
    }

    fn body_limit(&self, _op: &'static Operation) -> usize {
        self.config.body_limit
    }

    fn check_body(
        &self,
        op: &'static Operation,
        body: &serde_json::Value,
    ) -> Result<(), Rejection> {
        self.bodies
            .check(op.id, body)
            .map_err(|problems| Rejection::InvalidBody {
                reason: problems.to_string(),
            })
    }
}

/// Every route: the generated API router plus pages, docs and the fallback.
pub fn router(app: App) -> Router {
    let api = Api::new(app.clone());
    let graphql = api.graphql.clone();
    let routes = rest::router(api).merge(web::routes(app));
    // The layers wrap each route as one stack: each `Router::layer` call would nest one
    // more boxed service, cloned and called through a boxed future on every request.
    let upgrades = crate::gql_ws::UpgradesLayer(graphql);
    let panics = layer_fn(CatchPanics);
    // Request spans are debug spans, so the trace layer is there only when debug is on
    // for this module (RUST_LOG=debug): even with its span disabled, TraceLayer reads the
    // clock four times per request (about 2% of a small request's CPU). The span names the
    // path only: queries can carry tokens (the login callback). Server errors are logged
    // with their method and path by `LogServerErrors` at any level.
    if tracing::enabled!(tracing::Level::DEBUG) {
        let trace = TraceLayer::new_for_http()
            .make_span_with(|request: &axum::extract::Request| {
                tracing::debug_span!("request", method = %request.method(), path = %request.uri().path())
            })
            .on_failure(());
        routes.layer(
            tower::ServiceBuilder::new()
                .layer(layer_fn(LogServerErrors))
                .layer(trace)
                .layer(panics)
                .layer(upgrades),
        )
    } else {
        routes.layer(
            tower::ServiceBuilder::new()
                .layer(layer_fn(LogServerErrors))
                .layer(panics)
                .layer(upgrades),
        )
    }
}

fn panicked() -> Response {
    ApiError::internal("handling the request", "a handler panicked").into_response()
}

/// Answers a panicking handler with a MeshKit 500 and keeps the connection. Ours rather
/// than tower-http's `CatchPanic`, which boxes every response body again.
#[derive(Clone)]
struct CatchPanics<S>(S);

type Caught<F> = futures_util::future::Either<
    futures_util::future::Map<
        futures_util::future::CatchUnwind<std::panic::AssertUnwindSafe<F>>,
        fn(
            Result<Result<Response, std::convert::Infallible>, Box<dyn std::any::Any + Send>>,
        ) -> Result<Response, std::convert::Infallible>,
    >,
    std::future::Ready<Result<Response, std::convert::Infallible>>,
>;

impl<S> tower::Service<axum::extract::Request> for CatchPanics<S>
where
    S: tower::Service<
            axum::extract::Request,
            Response = Response,
            Error = std::convert::Infallible,
        >,
{
    type Response = Response;
    type Error = std::convert::Infallible;
    type Future = Caught<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        use futures_util::FutureExt;
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| inner.call(request))) {
            Ok(future) => futures_util::future::Either::Left(
                std::panic::AssertUnwindSafe(future)
                    .catch_unwind()
                    .map(|r| r.unwrap_or_else(|_| Ok(panicked()))),
            ),
            Err(_) => futures_util::future::Either::Right(std::future::ready(Ok(panicked()))),
        }
    }
}

/// Logs each 5xx answer with its method and path (not the query: it can carry tokens),
/// keeping only the method and the URI (shared bytes) while the request runs.
#[derive(Clone)]
struct LogServerErrors<S>(S);

impl<S, B> tower::Service<axum::extract::Request> for LogServerErrors<S>
where
    S: tower::Service<axum::extract::Request, Response = axum::http::Response<B>>,
{
    type Response = axum::http::Response<B>;
    type Error = S::Error;
    type Future = Logged<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: axum::extract::Request) -> Self::Future {
        Logged {
            method: request.method().clone(),
            uri: request.uri().clone(),
            inner: self.0.call(request),
        }
    }
}

pin_project_lite::pin_project! {
    /// The answer of a request, logged when it is a server error.
    struct Logged<F> {
        #[pin]
        inner: F,
        method: axum::http::Method,
        uri: axum::http::Uri,
    }
}

impl<F, B, E> std::future::Future for Logged<F>
where
    F: std::future::Future<Output = Result<axum::http::Response<B>, E>>,
{
    type Output = Result<axum::http::Response<B>, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.inner.poll(cx));
        if let Ok(response) = &answer
            && response.status().is_server_error()
        {
            tracing::error!(
                method = %this.method,
                path = %this.uri.path(),
                status = response.status().as_u16(),
                "request failed"
            );
        }
        std::task::Poll::Ready(answer)
    }
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    served: crate::serve::Served,
}

impl Running {
    /// Stops accepting, finishes open requests, closes the database.
    pub async fn stop(self) -> std::io::Result<()> {
        let stopped = self.served.stop();
        self.app.wind_down().await;
        stopped
            .await
            .map_err(|e| std::io::Error::other(format!("the server task failed: {e}")))?;
        self.app.store.close().await;
        Ok(())
    }
}

/// Binds and starts serving in the background.
pub async fn start(config: Config) -> Result<Running, StartError> {
    let addr = SocketAddr::new(config.bind, config.port);
    let app = App::new(config).await?;
    let listen = |source| StartError::Listen { addr, source };
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(listen)?;
    let served = crate::serve::spawn(listener, router(app.clone()), app.config.conn, None)
        .map_err(listen)?;
    Ok(Running {
        addr: served.addr,
        app,
        served,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use tower::ServiceExt;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_meshkit_500_and_others_still_work() {
        async fn boom() -> &'static str {
            panic!("handler bug")
        }
        let app = axum::Router::new()
            .route("/boom", get(boom))
            .route("/fine", get(|| async { "ok" }))
            .layer(tower::layer::layer_fn(super::CatchPanics));
        let request = Request::get("/boom").body(Body::empty()).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 4096)
            .await
            .unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(body["code"].is_string(), "a MeshKit body: {body}");
        assert!(
            !body.to_string().contains("handler bug"),
            "no internal cause: {body}"
        );
        let request = Request::get("/fine").body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn server_errors_are_logged_with_method_and_path_but_not_the_query() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let app = axum::Router::new()
            .route("/boom", get(|| async { StatusCode::BAD_GATEWAY }))
            .route("/fine", get(|| async { "ok" }))
            .layer(tower::layer::layer_fn(super::LogServerErrors));
        for uri in ["/boom?token=secret", "/fine"] {
            let request = Request::get(uri).body(Body::empty()).unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(log.contains("request failed"), "{log}");
        assert!(log.contains("method=GET"), "{log}");
        assert!(log.contains("path=/boom"), "{log}");
        assert!(log.contains("status=502"), "{log}");
        assert!(!log.contains("secret"), "{log}");
        assert!(!log.contains("/fine"), "{log}");
    }
}
