//! TLS for every client and server of the workspace (server, reference provider, CLI,
//! tests), so there is one way to build each: rustls with the ring provider and the
//! Mozilla roots built in (no system store, works offline), plus extra CAs from PEM;
//! `insecure` skips certificate checks for load-test targets with self-signed
//! certificates (signatures are still checked). No axum, so the CLI can use it.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

pub use rustls;
pub use tokio_rustls::TlsAcceptor;

/// Why a TLS configuration could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{what}: not PEM certificates: {source}")]
    Pem {
        what: &'static str,
        source: rustls::pki_types::pem::Error,
    },
    #[error("{what}: {source}")]
    Certificate {
        what: &'static str,
        source: rustls::Error,
    },
    #[error("TLS key: {0}")]
    Key(rustls::pki_types::pem::Error),
    #[error("TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Makes ring the process's rustls provider, so HTTP clients built anywhere in the server
/// (reqwest is built without a provider of its own) find one. Idempotent.
pub fn install_crypto() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// The roots outbound https calls trust: the built-in Mozilla roots plus the operator's
/// extra CA certificates (PEM, `--ca-file`), e.g. a company CA in front of a provider.
pub fn roots(extra_pem: Option<&[u8]>) -> Result<rustls::RootCertStore, TlsError> {
    let mut roots =
        rustls::RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(pem) = extra_pem {
        add_pem(&mut roots, pem, "extra CA file")?;
    }
    Ok(roots)
}

/// Adds every certificate of a PEM document to `roots`; `what` names it in errors.
pub fn add_pem(
    roots: &mut rustls::RootCertStore,
    pem: &[u8],
    what: &'static str,
) -> Result<(), TlsError> {
    for cert in CertificateDer::pem_slice_iter(pem) {
        let cert = cert.map_err(|source| TlsError::Pem { what, source })?;
        roots
            .add(cert)
            .map_err(|source| TlsError::Certificate { what, source })?;
    }
    Ok(())
}

/// What a client trusts.
pub enum Trust<'a> {
    /// The built-in Mozilla roots plus extra CA certificates (PEM), if any.
    Builtin { extra_pem: Option<&'a [u8]> },
    /// Only these CA certificates (PEM), e.g. a kubeconfig's cluster CA, as kubectl does;
    /// `what` names them in errors.
    Only { pem: &'a [u8], what: &'static str },
    /// Any certificate (`insecure`); handshake signatures are still checked.
    AnyCertificate,
}

/// A client certificate and its key (both PEM), for servers that ask for one.
pub struct Identity<'a> {
    pub cert_chain_pem: &'a [u8],
    pub key_pem: &'a [u8],
}

/// The one way a client TLS configuration is built: what it trusts, whether it shows a
/// certificate, and the ALPN protocols it offers (none: the server picks HTTP/1.1).
pub fn client(
    trust: Trust<'_>,
    identity: Option<Identity<'_>>,
    alpn: &[&[u8]],
) -> Result<ClientConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let builder = match trust {
        Trust::AnyCertificate => builder
            .dangerous()
            .with_custom_certificate_verifier(any_certificate(provider)),
        Trust::Builtin { extra_pem } => builder.with_root_certificates(roots(extra_pem)?),
        Trust::Only { pem, what } => {
            let mut roots = rustls::RootCertStore::empty();
            add_pem(&mut roots, pem, what)?;
            builder.with_root_certificates(roots)
        }
    };
    let mut config = match identity {
        Some(id) => {
            let certs = CertificateDer::pem_slice_iter(id.cert_chain_pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|source| TlsError::Pem {
                    what: "client certificate",
                    source,
                })?;
            let key = PrivateKeyDer::from_pem_slice(id.key_pem).map_err(TlsError::Key)?;
            builder.with_client_auth_cert(certs, key)?
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// The TLS configuration of HTTP clients that call known services (the server's calls to
/// providers and imports, the CLI's to servers and providers): built-in roots plus the
/// extra CAs, HTTP/1.1.
pub fn outbound_config(extra_pem: Option<&[u8]>) -> Result<ClientConfig, TlsError> {
    client(Trust::Builtin { extra_pem }, None, &[b"http/1.1"])
}

/// A verifier that accepts any certificate (`insecure`, `insecure-skip-tls-verify`).
pub fn any_certificate(
    provider: Arc<CryptoProvider>,
) -> Arc<dyn rustls::client::danger::ServerCertVerifier> {
    Arc::new(AnyCertificate(provider))
}

/// A load-test client offering `h2` or `http/1.1` by ALPN; `insecure` trusts any
/// certificate (self-signed targets).
pub fn client_config(http2: bool, insecure: bool) -> Result<Arc<ClientConfig>, TlsError> {
    let trust = if insecure {
        Trust::AnyCertificate
    } else {
        Trust::Builtin { extra_pem: None }
    };
    let alpn: &[u8] = if http2 { b"h2" } else { b"http/1.1" };
    client(trust, None, &[alpn]).map(Arc::new)
}

/// A server configuration for a certificate chain and private key (both PEM), offering
/// the `alpn` protocols.
pub fn server_config(
    cert_chain_pem: &[u8],
    key_pem: &[u8],
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, TlsError> {
    let certs = CertificateDer::pem_slice_iter(cert_chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|source| TlsError::Pem {
            what: "TLS certificate",
            source,
        })?;
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(TlsError::Key)?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

/// An acceptor for a certificate chain and private key (both PEM), speaking HTTP/1.1.
pub fn acceptor(cert_chain_pem: &[u8], key_pem: &[u8]) -> Result<TlsAcceptor, TlsError> {
    let config = server_config(cert_chain_pem, key_pem, &[b"http/1.1"])?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_roots_must_be_pem_certificates() {
        let builtin = roots(None).unwrap().len();
        assert!(builtin > 50, "the Mozilla roots are built in");
        let err = roots(Some(
            b"-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n",
        ))
        .unwrap_err();
        assert!(err.to_string().starts_with("extra CA file:"), "{err}");
    }

    #[test]
    fn a_key_without_a_certificate_is_refused() {
        let Err(err) = acceptor(b"", b"") else {
            panic!("an empty identity was accepted");
        };
        assert!(
            matches!(err, TlsError::Key(_) | TlsError::Config(_)),
            "{err}"
        );
    }
}
