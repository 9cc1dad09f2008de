//! The application: shared state, the generated router's hooks, the non-API routes, and
//! serving with graceful shutdown.

use std::net::{IpAddr, SocketAddr};
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::trace::TraceLayer;

use crate::auth::{self, Caller, Session};
use crate::error::ApiError;
use crate::generated::rest::{self, Hooks, Operation, Rejection};
use crate::models::{SystemVersion, User};
use crate::prefs::Prefs;
use crate::providers::Providers;
use crate::store::Store;
use crate::{gql, web};

/// Everything the server is started with.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: IpAddr,
    /// 0 picks a free port (tests).
    pub port: u16,
    pub home: PathBuf,
    /// `PROVIDER`: enforce one provider.
    pub provider: Option<String>,
    pub release_channel: String,
    /// The newest release the operator knows of; the server makes no network call for it.
    pub latest_version: Option<String>,
    /// Largest request body, in bytes.
    pub body_limit: usize,
    /// `PROVIDER_BASE_URLS`: the remote providers.
    pub provider_base_urls: Vec<String>,
    /// How start-up retries providers that do not answer yet.
    pub provider_retry: crate::remote::Retry,
    /// Required `iss` of remote providers' tokens, when set.
    pub jwt_issuer: Option<String>,
    /// Required `aud` of remote providers' tokens, when set.
    pub jwt_audience: Option<String>,
    /// The least time between JWKS fetches caused by unknown key ids.
    pub jwks_refetch_interval: std::time::Duration,
    /// This server's URL as browsers reach it (login callbacks); else the request's Host.
    pub public_url: Option<String>,
    /// Limits of load tests.
    pub perf: crate::perf::Limits,
    /// Which addresses users' URLs may reach (load tests, imports, cluster pings).
    pub targets: crate::policy::Targets,
    /// Extra CA certificates (PEM) outbound https calls trust besides the built-in roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// Limits on inbound connections.
    pub conn: crate::serve::ConnLimits,
    /// Limits on GraphQL documents and subscriptions.
    pub graphql: crate::gql::Limits,
}

impl Config {
    /// Whether browsers reach this server over https, so cookies must be `Secure`.
    pub fn https(&self) -> bool {
        self.public_url
            .as_deref()
            .is_some_and(|u| u.starts_with("https://"))
    }

    pub fn new(home: PathBuf) -> Self {
        Config {
            bind: IpAddr::from([127, 0, 0, 1]),
            port: 9081,
            home,
            provider: None,
            release_channel: "stable".into(),
            latest_version: None,
            body_limit: 1 << 20,
            provider_base_urls: Vec::new(),
            provider_retry: crate::remote::Retry::default(),
            jwt_issuer: None,
            jwt_audience: None,
            jwks_refetch_interval: std::time::Duration::from_secs(30),
            public_url: None,
            perf: crate::perf::Limits::default(),
            targets: crate::policy::Targets::default(),
            extra_ca_pem: None,
            conn: crate::serve::ConnLimits::default(),
            graphql: crate::gql::Limits::default(),
        }
    }
}

pub struct AppState {
    pub config: Config,
    pub store: Store,
    pub providers: Providers,
    pub prefs: Prefs,
    pub perf: Arc<crate::perf::Perf>,
    pub events: crate::events::Events,
    pub registry: Arc<crate::registry::Registry>,
    pub designs: Arc<crate::designs::Designs>,
    pub kubernetes: Arc<crate::kubernetes::Kubernetes>,
    /// TLS of outbound https calls (providers, imports).
    pub outbound_tls: Arc<rustls::ClientConfig>,
    pub instance_id: String,
    pub schema: gql::Schema,
    /// Request-body validators from openapi.yaml.
    pub bodies: crate::validate::BodySchemas,
}

/// The state handlers share; cheap to clone.
#[derive(Clone)]
pub struct App(Arc<AppState>);

impl Deref for App {
    type Target = AppState;
    fn deref(&self) -> &AppState {
        &self.0
    }
}

/// The build this binary is, as `/api/system/version` reports it.
pub const BUILD: &str = concat!("v", env!("CARGO_PKG_VERSION"));

impl App {
    pub async fn new(config: Config) -> Result<App, String> {
        crate::tls::install_crypto();
        let outbound_tls = Arc::new(crate::tls::outbound_config(config.extra_ca_pem.as_deref())?);
        let store = Store::open(&config.home).await.map_err(|e| e.to_string())?;
        let instance_id = store.instance_id().await.map_err(|e| e.to_string())?;
        let policy = crate::jwt::Policy {
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            refetch_interval: config.jwks_refetch_interval,
            ..Default::default()
        };
        let providers = Providers::connect(
            config.provider.as_deref(),
            BUILD,
            &config.provider_base_urls,
            &instance_id,
            policy,
            &outbound_tls,
            config.provider_retry,
        )
        .await?;
        let events = crate::events::Events::new(store.clone(), instance_id.clone());
        let registry = Arc::new(crate::registry::Registry::load(store.clone()).await?);
        let kubernetes = Arc::new(crate::kubernetes::Kubernetes::open(
            store.clone(),
            &config.home,
        )?);
        Ok(App(Arc::new(AppState {
            prefs: Prefs::new(store.clone(), events.clone()),
            perf: Arc::new(crate::perf::Perf::new(
                store.clone(),
                config.perf.clone(),
                config.targets.clone(),
                events.clone(),
            )),
            designs: Arc::new(crate::designs::Designs::new(store.clone(), events.clone())),
            events,
            registry,
            kubernetes,
            outbound_tls,
            schema: gql::schema(&config.graphql),
            bodies: crate::validate::BodySchemas::load(crate::generated::OPENAPI_YAML)?,
            config,
            store,
            providers,
            instance_id,
        })))
    }

    /// Ends what would keep graceful shutdown waiting: live event streams end, runs in
    /// progress are cancelled and store what they measured.
    pub async fn wind_down(&self) {
        self.events.close();
        self.perf.shutdown().await;
    }

    pub fn local_user(&self) -> User {
        auth::local_user(&self.instance_id)
    }

    pub fn version(&self) -> SystemVersion {
        let latest = self
            .config
            .latest_version
            .clone()
            .unwrap_or_else(|| BUILD.to_string());
        SystemVersion {
            outdated: newer(&latest, BUILD),
            build: BUILD.to_string(),
            latest,
            commitsha: env!("MESHERY_COMMIT_SHA").to_string(),
            release_channel: self.config.release_channel.clone(),
        }
    }
}

/// Reads a whole request body up to the configured limit (413 beyond it), for the
/// handlers that read bodies themselves (GraphQL, the extensions proxy).
pub async fn read_body(app: &App, body: axum::body::Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = app.config.body_limit;
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            413,
            crate::error::codes::TOO_LARGE,
            format!("request body larger than {limit} bytes"),
        )
    })
}

/// A `--public-url` of this server: an absolute http(s) URL, without its trailing slash.
pub fn parse_public_url(s: &str) -> Result<String, String> {
    meshery_http::public_url(s).map_err(|e| e.to_string())
}

/// Whether version `a` is newer than `b` (`v1.2.3` style; unparsable parts count as 0).
fn newer(a: &str, b: &str) -> bool {
    let parse = |v: &str| -> Vec<u64> {
        v.trim_start_matches('v')
            .split(['.', '-'])
            .take(3)
            .map(|p| p.parse().unwrap_or(0))
            .collect()
    };
    parse(a) > parse(b)
}

impl Hooks for App {
    type Session = Session;
    type Caller = Caller;

    async fn authenticate(
        &self,
        _op: &'static Operation,
        parts: &mut Parts,
    ) -> Result<Session, Response> {
        auth::authenticate(self, parts)
            .await
            .map_err(IntoResponse::into_response)
    }

    async fn identify(
        &self,
        _op: &'static Operation,
        parts: &mut Parts,
    ) -> Result<Caller, Response> {
        Ok(auth::identify(self, parts))
    }

    fn reject(&self, op: Option<&'static Operation>, rejection: Rejection) -> Response {
        tracing::debug!(op = op.map(|o| o.id), %rejection, "request rejected");
        ApiError::from_rejection(&rejection).into_response()
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
            .map_err(|reason| Rejection::InvalidBody { reason })
    }
}

/// Every route: the generated API router plus pages, docs and the fallback.
pub fn router(app: App) -> Router {
    rest::router(app.clone())
        .merge(web::routes(app.clone()))
        .layer(axum::middleware::from_fn_with_state(
            app,
            gql::upgrade_layer,
        ))
        .layer(CatchPanicLayer::custom(
            |_panic: Box<dyn std::any::Any + Send>| {
                ApiError::internal("handling the request", "a handler panicked").into_response()
            },
        ))
        // The span names the path only: queries can carry tokens (the login callback).
        .layer(TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path())
        }))
}

/// A running server.
pub struct Running {
    pub addr: SocketAddr,
    pub app: App,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops accepting, finishes open requests, closes the database.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.shutdown.send(());
        self.app.wind_down().await;
        self.task
            .await
            .map_err(|e| std::io::Error::other(format!("the server task failed: {e}")))?;
        self.app.store.close().await;
        Ok(())
    }
}

/// Binds and starts serving in the background.
pub async fn start(config: Config) -> Result<Running, String> {
    let addr = SocketAddr::new(config.bind, config.port);
    let app = App::new(config).await?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let (shutdown, signal) = tokio::sync::oneshot::channel::<()>();
    let service = router(app.clone());
    let limits = app.config.conn;
    let task = tokio::spawn(crate::serve::serve(
        listener,
        service,
        limits,
        None,
        async move {
            let _ = signal.await;
        },
    ));
    Ok(Running {
        addr,
        app,
        shutdown,
        task,
    })
}
