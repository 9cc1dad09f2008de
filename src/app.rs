//! The application's state: its configuration and the services every handler, resolver and
//! page shares. Built once at start; knows nothing of routes (see `server`).

use std::net::IpAddr;
use std::ops::Deref;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::ApiError;
use crate::models::{SystemVersion, User};
use crate::prefs::Prefs;
use crate::providers::Providers;
use crate::store::Store;

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
    /// How long a provider's confirmation of a token is trusted; a revocation at the
    /// provider ends requests and streams within it.
    pub token_recheck: std::time::Duration,
    /// This server's URL as browsers reach it (login callbacks); else the request's Host.
    pub public_url: Option<String>,
    /// Limits of load tests.
    pub perf: crate::perf::Limits,
    /// Which addresses users' URLs may reach (load tests, imports, cluster pings).
    pub targets: crate::policy::Targets,
    /// Extra CA certificates (PEM) outbound https calls trust besides the built-in roots.
    pub extra_ca_pem: Option<Vec<u8>>,
    /// The file `extra_ca_pem` was read from (the database driver takes a path).
    pub ca_file: Option<PathBuf>,
    /// `sqlite://...` or `postgres://...`; `None`: `<home>/meshery.db`.
    pub database_url: Option<String>,
    /// The key that seals kubeconfig credentials; `None`: `<home>/secret.key`, made at
    /// first start. Replicas on one database must share it.
    pub secret_key_file: Option<PathBuf>,
    /// Limits on inbound connections.
    pub conn: crate::serve::ConnLimits,
    /// Limits on GraphQL documents and subscriptions.
    pub graphql: crate::gql_limits::Limits,
    /// How long events and load-test results are kept.
    pub retention: crate::retention::Limits,
    pub inventory: crate::inventory::Options,
    /// Longest wait of a deploy with `verify` for its workloads to be ready.
    pub deploy_verify_timeout: std::time::Duration,
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
            token_recheck: std::time::Duration::from_secs(60),
            public_url: None,
            perf: crate::perf::Limits::default(),
            targets: crate::policy::Targets::default(),
            extra_ca_pem: None,
            ca_file: None,
            database_url: None,
            secret_key_file: None,
            conn: crate::serve::ConnLimits::default(),
            graphql: crate::gql_limits::Limits::default(),
            retention: crate::retention::Limits::default(),
            inventory: crate::inventory::Options::default(),
            deploy_verify_timeout: std::time::Duration::from_secs(120),
        }
    }
}

pub struct AppState {
    pub config: Config,
    pub store: Store,
    /// Change notices between replicas on one database.
    pub bus: crate::bus::Bus,
    pub providers: Providers,
    pub prefs: Prefs,
    pub perf: Arc<crate::perf::Perf>,
    pub events: crate::events::Events,
    pub registry: Arc<crate::registry::Registry>,
    pub designs: Arc<crate::designs::Designs>,
    pub kubernetes: Arc<crate::kubernetes::Kubernetes>,
    /// Deploys designs to clusters.
    pub deployer: crate::deploy::Deployer,
    pub inventory: crate::inventory::Inventory,
    pub connections: crate::connections::Connections,
    pub credentials: Arc<crate::credentials::Credentials>,
    /// Workspaces and environments.
    pub tenancy: crate::tenancy::Tenancy,
    /// Applies the retention limits in the background.
    pub retention: Arc<crate::retention::Retention>,
    /// TLS of outbound https calls (providers, imports).
    pub outbound_tls: Arc<rustls::ClientConfig>,
    pub instance_id: String,
    /// `/api/system/version`, computed once.
    version: SystemVersion,
    /// Request-body validators from openapi.yaml.
    pub bodies: crate::validate::BodySchemas,
    /// The Local provider's organization, read once (Meshery's UI asks on every page).
    pub local_org: tokio::sync::OnceCell<crate::orgs::LocalOrg>,
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

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("outbound TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("database: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Internal(#[from] crate::fault::Internal),
    #[error(transparent)]
    Providers(#[from] crate::providers::ProvidersError),
    #[error("registry: {0}")]
    Registry(#[from] crate::registry::LoadError),
    #[error("kubeconfig sealing key: {0}")]
    SecretKey(#[from] crate::sealing::SecretKeyError),
    #[error(transparent)]
    Spec(#[from] crate::validate::SpecError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// The build this binary is, as `/api/system/version` reports it.
pub const BUILD: &str = concat!("v", env!("CARGO_PKG_VERSION"));

impl App {
    pub async fn new(config: Config) -> Result<App, StartError> {
        crate::tls::install_crypto();
        let outbound_tls = Arc::new(crate::tls::outbound_config(config.extra_ca_pem.as_deref())?);
        let database_url = match &config.database_url {
            Some(url) => url.clone(),
            None => {
                std::fs::create_dir_all(&config.home).map_err(|e| {
                    crate::store::StoreError::Home(config.home.display().to_string(), e)
                })?;
                crate::store::default_url(&config.home)
            }
        };
        let store = Store::open(&database_url, config.ca_file.as_deref()).await?;
        let instance_id = store.instance_id().await?;
        let policy = crate::jwt::Policy {
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            refetch_interval: config.jwks_refetch_interval,
            confirm_ttl: config.token_recheck,
            ..Default::default()
        };
        let bus = crate::bus::Bus::start(store.clone()).await?;
        // Every replica logs at the level an administrator set on any of them.
        bus.on(crate::bus::Topic::LogLevel, |notice| async move {
            if let crate::bus::Notice::Changed { key } = notice
                && let Err(e) = crate::logging::set(&key)
            {
                tracing::warn!("log level from another replica: {e}");
            }
        });
        let providers = Providers::connect(
            config.provider.as_deref(),
            BUILD,
            &config.provider_base_urls,
            &instance_id,
            policy,
            &outbound_tls,
            config.provider_retry,
            bus.clone(),
        )
        .await?;
        let events =
            crate::events::Events::new(store.clone(), instance_id.clone(), bus.clone()).await?;
        let registry = Arc::new(crate::registry::Registry::load(store.clone(), bus.clone()).await?);
        registry.follow();
        let kubernetes = Arc::new(
            crate::kubernetes::Kubernetes::open(
                store.clone(),
                &config.home,
                config.secret_key_file.as_deref(),
            )
            .await?,
        );
        let inventory = crate::inventory::Inventory::start(
            store.clone(),
            bus.clone(),
            kubernetes.clone(),
            registry.clone(),
            config.targets.clone(),
            config.inventory.clone(),
        );
        let credentials = Arc::new(crate::credentials::Credentials::new(
            store.clone(),
            kubernetes.sealer(),
        ));
        Ok(App(Arc::new(AppState {
            connections: crate::connections::Connections::new(
                store.clone(),
                kubernetes.clone(),
                inventory.clone(),
                credentials.clone(),
            ),
            credentials,
            tenancy: crate::tenancy::Tenancy::new(store.clone()),
            inventory,
            prefs: Prefs::new(store.clone(), events.clone(), bus.clone()),
            perf: crate::perf::Perf::new(
                store.clone(),
                config.perf.clone(),
                config.targets.clone(),
                events.clone(),
                bus.clone(),
            ),
            designs: Arc::new(crate::designs::Designs::new(
                store.clone(),
                events.clone(),
                bus.clone(),
            )),
            deployer: crate::deploy::Deployer::new(
                kubernetes.clone(),
                config.targets.clone(),
                events.clone(),
                config.deploy_verify_timeout,
            ),
            retention: crate::retention::Retention::start(store.clone(), config.retention.clone()),
            events,
            bus,
            registry,
            kubernetes,
            outbound_tls,
            bodies: crate::validate::BodySchemas::load(crate::generated::OPENAPI_YAML)?,
            local_org: tokio::sync::OnceCell::new(),
            version: version_of(&config),
            config,
            store,
            providers,
            instance_id,
        })))
    }

    /// Ends what would keep graceful shutdown waiting: live event streams end, runs in
    /// progress are cancelled and store what they measured.
    pub async fn wind_down(&self) {
        self.retention.stop();
        self.inventory.shutdown().await;
        self.events.close();
        self.bus.close();
        self.perf.shutdown().await;
    }

    pub fn local_user(&self) -> User {
        crate::providers::local_user(&self.instance_id)
    }

    /// What `/api/system/version` answers (fixed for the life of the process).
    pub fn version(&self) -> SystemVersion {
        self.version.clone()
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

fn version_of(config: &Config) -> SystemVersion {
    let latest = config
        .latest_version
        .clone()
        .unwrap_or_else(|| BUILD.to_string());
    SystemVersion {
        outdated: newer(&latest, BUILD),
        build: BUILD.to_string(),
        latest,
        commitsha: env!("MESHERY_COMMIT_SHA").to_string(),
        release_channel: config.release_channel.clone(),
    }
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
