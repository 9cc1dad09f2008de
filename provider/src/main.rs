//! `meshery-provider`: a reference remote provider (identity, JWKS, extensions).

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use clap::Parser;
use meshery_provider::{self as refprovider, Account, ProviderConfig};

/// A small identity provider that speaks Meshery's remote-provider contract.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[arg(long, env = "PORT", default_value_t = 9876)]
    port: u16,
    #[arg(long, env = "MESHERY_PROVIDER_BIND", default_value = "127.0.0.1")]
    bind: IpAddr,
    /// The provider's name, as Meshery lists it.
    #[arg(long, env = "MESHERY_PROVIDER_NAME", default_value = "Reference")]
    name: String,
    /// Users, comma-separated `user:password[:Full Name[:email[:role+role]]]`; tokens carry
    /// the roles as `roles` (default `user`; `admin` may register models).
    #[arg(long, env = "MESHERY_PROVIDER_USERS", value_delimiter = ',')]
    users: Vec<String>,
    /// Audience (`aud`) of issued tokens.
    #[arg(long, env = "MESHERY_PROVIDER_AUDIENCE", default_value = "meshery")]
    audience: String,
    /// Token lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    token_ttl: u64,
    /// Serve https with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "MESHERY_PROVIDER_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "MESHERY_PROVIDER_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// The address other devices reach this provider at (device sign-in links, token
    /// issuer), e.g. https://id.example.com; defaults to the bound address.
    #[arg(long, env = "MESHERY_PROVIDER_PUBLIC_URL", value_parser = meshery_http::public_url)]
    public_url: Option<String>,
    /// Bearer credential for administrative calls (POST /keys/rotate); without it
    /// they are refused. Prefer the environment variable: arguments show in `ps`.
    #[arg(long, env = "MESHERY_PROVIDER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let args = Args::parse();
    let accounts: Result<Vec<Account>, _> = args.users.iter().map(|u| Account::parse(u)).collect();
    let accounts = match accounts {
        Ok(a) if !a.is_empty() => a,
        Ok(_) => {
            eprintln!(
                "meshery-provider: no users; pass --users alice:secret or MESHERY_PROVIDER_USERS"
            );
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("meshery-provider: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => match (std::fs::read(cert), std::fs::read(key)) {
            (Ok(cert_chain_pem), Ok(key_pem)) => Some(refprovider::TlsIdentity {
                cert_chain_pem,
                key_pem,
            }),
            (Err(e), _) | (_, Err(e)) => {
                eprintln!("meshery-provider: reading the TLS files: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => None,
    };
    let config = ProviderConfig {
        tls,
        name: args.name,
        accounts,
        audience: args.audience,
        token_ttl: std::time::Duration::from_secs(args.token_ttl),
        public_url: args.public_url,
        admin_token: args.admin_token.filter(|t| !t.is_empty()),
        ..Default::default()
    };
    let running = match refprovider::start(config, SocketAddr::new(args.bind, args.port)).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("meshery-provider: {e}");
            return ExitCode::FAILURE;
        }
    };
    tracing::info!("reference provider at {}", running.url);
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("meshery-provider: {e}");
                    return ExitCode::FAILURE;
                }
            };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = tokio::signal::ctrl_c().await;
    running.stop().await;
    ExitCode::SUCCESS
}
