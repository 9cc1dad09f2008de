//! `meshery-server`: serves Meshery's REST and GraphQL APIs.

use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use meshery::server::{self, Config};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// A Meshery-compatible management-plane server.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// Port to listen on.
    #[arg(long, env = "PORT", default_value_t = 9081)]
    port: u16,
    /// Address to bind; 0.0.0.0 serves every interface.
    #[arg(long, env = "MESHERY_BIND", default_value = "127.0.0.1")]
    bind: IpAddr,
    /// Data directory: the SQLite database (unless --database-url names another) and the
    /// kubeconfig sealing key (unless --secret-key-file names one).
    #[arg(long, env = "MESHERY_HOME")]
    home: Option<PathBuf>,
    /// The database: sqlite://<file> or postgres://user:password@host:port/db (several
    /// replicas share one PostgreSQL database). Default: sqlite://<home>/meshery.db.
    #[arg(long, env = "MESHERY_DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// The 32-byte key (raw, hex or base64) that seals stored kubeconfig credentials.
    /// Replicas on one database need the same one (a Kubernetes Secret). Default:
    /// <home>/secret.key, made at first start.
    #[arg(long, env = "MESHERY_SECRET_KEY_FILE")]
    secret_key_file: Option<PathBuf>,
    /// Enforce one provider by name (skips the chooser).
    #[arg(long, env = "PROVIDER")]
    provider: Option<String>,
    /// Release channel reported by /api/system/version.
    #[arg(long, env = "MESHERY_RELEASE_CHANNEL", default_value = "stable")]
    release_channel: String,
    /// Newest release known to the operator (no network lookup is made).
    #[arg(long, env = "MESHERY_LATEST_VERSION")]
    latest_version: Option<String>,
    /// Largest accepted request body, in bytes.
    #[arg(long, env = "MESHERY_BODY_LIMIT", default_value_t = 1 << 20)]
    body_limit: usize,
    /// Remote providers' base URLs, comma-separated.
    #[arg(long, env = "PROVIDER_BASE_URLS", value_delimiter = ',')]
    provider_base_urls: Vec<String>,
    /// Required issuer (`iss`) of remote providers' tokens.
    #[arg(long, env = "MESHERY_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Required audience (`aud`) of remote providers' tokens.
    #[arg(long, env = "MESHERY_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Least seconds between JWKS fetches caused by unknown key ids.
    #[arg(long, env = "MESHERY_JWKS_REFETCH_SECS", default_value_t = 30)]
    jwks_refetch_secs: u64,
    /// Seconds a provider's confirmation that a token is active is trusted: a token
    /// revoked at the provider stops working, and the streams opened with it end, within
    /// this time (logout through this server ends them at once). Shorter asks the
    /// provider more often.
    #[arg(long, env = "MESHERY_TOKEN_RECHECK_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    token_recheck_secs: u64,
    /// This server's URL as browsers reach it, for login callbacks (default: the request's Host).
    #[arg(long, env = "MESHERY_PUBLIC_URL", value_parser = meshery_http::public_url)]
    public_url: Option<String>,
    /// Longest load test, in seconds.
    #[arg(long, env = "MESHERY_PERF_MAX_SECS", default_value_t = 600)]
    perf_max_secs: u64,
    /// Most connections of one load test.
    #[arg(long, env = "MESHERY_PERF_MAX_CONNECTIONS", default_value_t = 256)]
    perf_max_connections: usize,
    /// Highest requested rate of one load test.
    #[arg(long, env = "MESHERY_PERF_MAX_QPS", default_value_t = 100_000.0)]
    perf_max_qps: f64,
    /// Load tests one user may run at once.
    #[arg(long, env = "MESHERY_PERF_MAX_RUNS", default_value_t = 2)]
    perf_max_runs: usize,
    /// Networks load tests may target although the policy refuses them (CIDR, comma-separated).
    /// Refused at start if any entry is not a network or address.
    #[arg(long, env = "MESHERY_PERF_ALLOW", value_delimiter = ',', value_parser = meshery::policy::parse_network)]
    perf_allow: Vec<ipnet::IpNet>,
    /// Load tests running at once on this server, all users together.
    #[arg(long, env = "MESHERY_PERF_MAX_RUNS_TOTAL", default_value_t = 8)]
    perf_max_runs_total: usize,
    /// Extra CA certificates (PEM file) trusted for outbound https (providers, design imports).
    #[arg(long, env = "MESHERY_CA_FILE")]
    ca_file: Option<std::path::PathBuf>,
    /// Open connections at most (WebSockets included); more wait until one closes.
    #[arg(long, env = "MESHERY_MAX_CONNECTIONS", default_value_t = 4096)]
    max_connections: usize,
    /// Seconds a client has to send a request's head once the connection is ready for it;
    /// idle HTTP/1 keep-alive connections are closed after it too.
    #[arg(long, env = "MESHERY_HEADER_TIMEOUT_SECS", default_value_t = 10)]
    header_timeout_secs: u64,
    /// Seconds a connection may sit with no request and no traffic (HTTP/1 and HTTP/2;
    /// WebSockets excepted) before it is closed.
    #[arg(long, env = "MESHERY_IDLE_TIMEOUT_SECS", default_value_t = 120)]
    idle_timeout_secs: u64,
    /// GraphQL subscriptions one user may hold open at once, over all their WebSockets.
    #[arg(long, env = "MESHERY_MAX_SUBSCRIPTIONS", default_value_t = 64)]
    max_subscriptions_per_user: usize,
    /// Seconds a GraphQL WebSocket has to send `connection_init` before it is closed (4408).
    #[arg(
        long,
        env = "MESHERY_GRAPHQL_WS_INIT_TIMEOUT_SECS",
        default_value_t = 10
    )]
    graphql_ws_init_timeout_secs: u64,
    /// Seconds between pings on a GraphQL WebSocket; one that sends nothing back for two
    /// of them is closed.
    #[arg(long, env = "MESHERY_GRAPHQL_WS_KEEPALIVE_SECS", default_value_t = 30)]
    graphql_ws_keepalive_secs: u64,
    /// Largest GraphQL query complexity (each field selected counts 1).
    #[arg(long, env = "MESHERY_GRAPHQL_MAX_COMPLEXITY", default_value_t = 1000)]
    graphql_max_complexity: usize,
    /// Most aliased fields in one GraphQL document.
    #[arg(long, env = "MESHERY_GRAPHQL_MAX_ALIASES", default_value_t = 30)]
    graphql_max_aliases: usize,
    /// Deepest GraphQL selection nesting.
    #[arg(long, env = "MESHERY_GRAPHQL_MAX_DEPTH", default_value_t = 32)]
    graphql_max_depth: usize,
    /// Days an event is kept (0: no age limit).
    #[arg(long, env = "MESHERY_EVENTS_MAX_AGE_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(0..=36_500))]
    events_max_age_days: u64,
    /// Events kept per user, the newest (0: no limit).
    #[arg(long, env = "MESHERY_EVENTS_MAX_PER_USER", default_value_t = 10_000)]
    events_max_per_user: u64,
    /// Days a load-test result is kept (0: no age limit).
    #[arg(long, env = "MESHERY_RESULTS_MAX_AGE_DAYS", default_value_t = 365, value_parser = clap::value_parser!(u64).range(0..=36_500))]
    results_max_age_days: u64,
    /// Load-test results kept per user, the newest (0: no limit).
    #[arg(long, env = "MESHERY_RESULTS_MAX_PER_USER", default_value_t = 1_000)]
    results_max_per_user: u64,
    /// Seconds between the passes that remove events and results past those limits (the
    /// first runs at start).
    #[arg(long, env = "MESHERY_RETENTION_INTERVAL_SECS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    retention_interval_secs: u64,
    /// Seconds between checks that a watched cluster still answers (a disconnected one
    /// is retried as often).
    #[arg(long, env = "MESHERY_CLUSTER_PROBE_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    cluster_probe_secs: u64,
    /// Seconds a replica's claim to watch a cluster lasts unrenewed (another replica
    /// takes the cluster over after it).
    #[arg(long, env = "MESHERY_CLUSTER_LEASE_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(3..=3600))]
    cluster_lease_secs: u64,
    /// Watch the users' clusters (the inventory and connection states); `false` leaves
    /// connections `registered` and the inventory empty (deploys still work).
    #[arg(long, env = "MESHERY_INVENTORY", default_value_t = true, action = clap::ArgAction::Set)]
    inventory: bool,
    /// Most custom resource kinds (from CRDs) the inventory watches per cluster.
    #[arg(long, env = "MESHERY_INVENTORY_MAX_CRD_KINDS", default_value_t = 64)]
    inventory_max_crd_kinds: usize,
    /// Longest wait of a deploy with `verify` for its workloads to be ready, in seconds.
    #[arg(long, env = "MESHERY_DEPLOY_VERIFY_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..=3600))]
    deploy_verify_secs: u64,
    /// Without a command the server runs.
    #[command(subcommand)]
    command: Option<Tool>,
}

#[derive(clap::Subcommand, Debug)]
enum Tool {
    /// Database tools.
    Db {
        #[command(subcommand)]
        action: DbAction,
    },
}

#[derive(clap::Subcommand, Debug)]
enum DbAction {
    /// Copies everything from one database into a new, empty one: SQLite to PostgreSQL
    /// (moving to several replicas) or back. Both are migrated to this version first;
    /// a target that holds any data is refused. Stop the servers using the source first.
    Copy {
        /// The source: sqlite://<file> or postgres://...
        #[arg(long)]
        from: String,
        /// The target: sqlite://<file> (made when missing) or postgres://... (an empty database)
        #[arg(long)]
        to: String,
    },
}

/// `meshery-server db copy`: what was copied, or why not.
async fn db_copy(from: &str, to: &str, ca_file: Option<&std::path::Path>) -> ExitCode {
    use meshery::store::{Engine, Store, copy, redact};
    if let Ok(Engine::Sqlite) = Engine::of(from) {
        let path = from
            .trim_start_matches("sqlite://")
            .split('?')
            .next()
            .unwrap_or_default();
        let decoded = percent_encoding::percent_decode_str(path).decode_utf8_lossy();
        if !std::path::Path::new(decoded.as_ref()).exists() {
            eprintln!("meshery-server: db copy: the source {from} does not exist");
            return ExitCode::FAILURE;
        }
    }
    let open = |url: &str| {
        let url = url.to_string();
        async move {
            Store::open(&url, ca_file)
                .await
                .map_err(|e| format!("{}: {e}", redact(&url)))
        }
    };
    let (source, target) = match (open(from).await, open(to).await) {
        (Ok(s), Ok(t)) => (s, t),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("meshery-server: db copy: {e}");
            return ExitCode::FAILURE;
        }
    };
    let copied = copy(&source, &target).await;
    source.close().await;
    target.close().await;
    match copied {
        Ok(tables) => {
            let total: u64 = tables.iter().map(|(_, n)| n).sum();
            for (table, n) in tables {
                println!("{table:>16}  {n}");
            }
            println!(
                "copied {total} rows from {} to {}",
                redact(from),
                redact(to)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("meshery-server: db copy: {e}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    // The filter sits behind a reload handle: an administrator can change the level while
    // the server runs (`PUT /api/system/events/config`).
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (filter, reload) = tracing_subscriber::reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout())),
        )
        .init();
    meshery::logging::install(move |directive| {
        reload
            .reload(EnvFilter::new(directive))
            .map_err(|e| e.to_string())
    });
    let args = Args::parse();
    if let Some(Tool::Db {
        action: DbAction::Copy { from, to },
    }) = &args.command
    {
        return db_copy(from, to, args.ca_file.as_deref()).await;
    }
    let Some(home) = args
        .home
        .or_else(|| std::env::home_dir().map(|h| h.join(".meshery")))
    else {
        eprintln!("meshery-server: no home directory; pass --home or set MESHERY_HOME");
        return ExitCode::FAILURE;
    };
    let extra_ca_pem = match &args.ca_file {
        None => None,
        Some(path) => match std::fs::read(path) {
            Ok(pem) => Some(pem),
            Err(e) => {
                eprintln!("meshery-server: --ca-file {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        },
    };
    let config = Config {
        bind: args.bind,
        port: args.port,
        home,
        provider: args.provider,
        release_channel: args.release_channel,
        latest_version: args.latest_version,
        body_limit: args.body_limit,
        provider_base_urls: args.provider_base_urls,
        provider_retry: Default::default(),
        jwt_issuer: args.jwt_issuer,
        jwt_audience: args.jwt_audience,
        jwks_refetch_interval: std::time::Duration::from_secs(args.jwks_refetch_secs),
        token_recheck: std::time::Duration::from_secs(args.token_recheck_secs),
        public_url: args.public_url,
        perf: meshery::perf::Limits {
            max_duration: std::time::Duration::from_secs(args.perf_max_secs),
            max_connections: args.perf_max_connections,
            max_qps: args.perf_max_qps,
            max_runs_per_user: args.perf_max_runs,
            max_runs_total: args.perf_max_runs_total,
        },
        conn: meshery::serve::ConnLimits {
            max_connections: args.max_connections,
            header_timeout: std::time::Duration::from_secs(args.header_timeout_secs),
            idle_timeout: std::time::Duration::from_secs(args.idle_timeout_secs),
            ..Default::default()
        },
        graphql: meshery::gql::Limits {
            max_complexity: args.graphql_max_complexity,
            max_aliases: args.graphql_max_aliases,
            max_depth: args.graphql_max_depth,
            max_subscriptions_per_user: args.max_subscriptions_per_user,
            ws_init_timeout: std::time::Duration::from_secs(args.graphql_ws_init_timeout_secs),
            ws_keepalive: std::time::Duration::from_secs(args.graphql_ws_keepalive_secs.max(1)),
        },
        targets: meshery::policy::Targets {
            allow: args.perf_allow,
            ..Default::default()
        },
        extra_ca_pem,
        ca_file: args.ca_file,
        database_url: args.database_url,
        secret_key_file: args.secret_key_file,
        retention: meshery::retention::Limits {
            events_max_age: days(args.events_max_age_days),
            events_max_per_user: (args.events_max_per_user > 0).then_some(args.events_max_per_user),
            results_max_age: days(args.results_max_age_days),
            results_max_per_user: (args.results_max_per_user > 0)
                .then_some(args.results_max_per_user),
            interval: std::time::Duration::from_secs(args.retention_interval_secs),
        },
        deploy_verify_timeout: std::time::Duration::from_secs(args.deploy_verify_secs),
        inventory: meshery::inventory::Options {
            enabled: args.inventory,
            probe: std::time::Duration::from_secs(args.cluster_probe_secs),
            lease: std::time::Duration::from_secs(args.cluster_lease_secs),
            max_crd_kinds: args.inventory_max_crd_kinds,
            ..Default::default()
        },
    };
    let running = match server::start(config.clone()).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("meshery-server: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!(
        addr = %running.addr,
        home = %config.home.display(),
        database = %running.app.store.engine().name(),
        "listening on http://{} (bind 0.0.0.0 with --bind to serve other machines)",
        running.addr
    );
    shutdown_signal().await;
    tracing::info!("shutting down");
    match running.stop().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("meshery-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// A limit of `n` days; 0 is none.
fn days(n: u64) -> Option<std::time::Duration> {
    (n > 0).then(|| std::time::Duration::from_secs(n.saturating_mul(24 * 3600)))
}
