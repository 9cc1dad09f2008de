//! A Kubernetes client for one stored context: kube's `Client` over this server's own
//! connection stack instead of kube's. Connections go only to the addresses the target
//! policy checked (a resolver that answers nothing else, so a name cannot be re-pointed
//! after the check), TLS is meshery-tls with the kubeconfig's CA (replacing the built-in
//! roots, as kubectl does) and client certificate, the token or basic credentials ride in
//! kube's auth layer, and connect, read and write have timeouts. Credentials never leave
//! the server: they are read here from the sealed store and sent only to that API server.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::connect::dns::Name;
use kube::client::ConfigExt;
use serde::{Deserialize, Serialize};

use crate::policy::{Target, TargetError, Targets};

/// The credentials of a context: never listed, stored only encrypted.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Credentials {
    pub ca: Option<Vec<u8>>,
    pub insecure: bool,
    pub token: Option<String>,
    pub client_cert: Option<Vec<u8>>,
    pub client_key: Option<Vec<u8>>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// Longest wait for a TCP connection and TLS handshake.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence on a connection: longer than a watch's server-side timeout (kube asks
/// for 290 s), so only a dead connection trips it.
pub const READ_TIMEOUT: Duration = Duration::from_secs(300);
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Why no client could be made for a context.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Target(#[from] TargetError),
    #[error("TLS: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("server URL {0:?}: {1}")]
    Url(String, String),
    #[error("credentials: {0}")]
    Auth(kube::Error),
}

/// A resolver that answers only the checked name, with the checked addresses.
#[derive(Clone)]
struct Checked(Arc<Target>);

impl tower::Service<Name> for Checked {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Self::Response, Self::Error>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        std::future::ready(if name.as_str().eq_ignore_ascii_case(&self.0.name) {
            Ok(self.0.addrs.clone().into_iter())
        } else {
            Err(std::io::Error::other(format!(
                "{} is not the cluster address that was checked",
                name.as_str()
            )))
        })
    }
}

/// A client for the API server at `server` (the context's URL), in `namespace` by default.
/// The name is resolved and checked against `targets` now; every connection goes to
/// those addresses.
pub async fn client(
    server: &str,
    credentials: &Credentials,
    namespace: &str,
    targets: &Targets,
) -> Result<kube::Client, ClientError> {
    let target = targets.resolve(server).await?;
    let mut http = HttpConnector::new_with_resolver(Checked(Arc::new(target)));
    http.enforce_http(false);
    http.set_connect_timeout(Some(CONNECT_TIMEOUT));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(credentials)?)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    let mut connector = hyper_timeout::TimeoutConnector::new(https);
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_read_timeout(Some(READ_TIMEOUT));
    connector.set_write_timeout(Some(WRITE_TIMEOUT));
    let http_client =
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector);
    let url: hyper::http::Uri = server.parse().map_err(|e: hyper::http::uri::InvalidUri| {
        ClientError::Url(server.into(), e.to_string())
    })?;
    let mut config = kube::Config::new(url);
    config.default_namespace = namespace.to_string();
    config.auth_info.token = credentials.token.clone().map(Into::into);
    config.auth_info.username = credentials.username.clone();
    config.auth_info.password = credentials.password.clone().map(Into::into);
    let service = tower::ServiceBuilder::new()
        .layer(config.base_uri_layer())
        .option_layer(config.auth_layer().map_err(ClientError::Auth)?)
        // The auth layer's token refresh fails with a boxed error: box the client's too.
        .map_err(tower::BoxError::from)
        .service(http_client);
    Ok(kube::Client::new(service, namespace))
}

/// TLS as the kubeconfig says: its CA (else the built-in roots) or no verification, and
/// its client certificate.
pub fn tls_config(c: &Credentials) -> Result<rustls::ClientConfig, crate::tls::TlsError> {
    use crate::tls::{Identity, Trust};
    let trust = match (&c.ca, c.insecure) {
        (_, true) => Trust::AnyCertificate,
        // The kubeconfig's CA replaces the built-in roots, as kubectl does.
        (Some(pem), false) => Trust::Only {
            pem,
            what: "certificate-authority-data",
        },
        (None, false) => Trust::Builtin { extra_pem: None },
    };
    let identity = match (&c.client_cert, &c.client_key) {
        (Some(cert), Some(key)) => Some(Identity {
            cert_chain_pem: cert,
            key_pem: key,
        }),
        _ => None,
    };
    // No ALPN here: the HTTPS connector offers what it speaks (it refuses a preset list).
    crate::tls::client(trust, identity, &[])
}
