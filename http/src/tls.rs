//! Serving https: a TLS identity (certificate chain and key, PEM) as an acceptor for
//! [`crate::serve::serve`]. rustls with the ring provider, no C build.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Why a TLS identity could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("TLS certificate: {0}")]
    Certificate(rustls::pki_types::pem::Error),
    #[error("TLS key: {0}")]
    Key(rustls::pki_types::pem::Error),
    #[error("TLS identity: {0}")]
    Identity(rustls::Error),
}

/// An acceptor for the certificate chain and private key (both PEM), speaking HTTP/1.1.
pub fn acceptor(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
) -> Result<tokio_rustls::TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(TlsError::Certificate)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(TlsError::Key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(TlsError::Identity)?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(TlsError::Identity)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}
