//! SKIP's certificate mode on rustls: TLS 1.3 only, TLS_AES_256_GCM_SHA384 only (the
//! draft's required suite), the KP's certificate verified against one configured CA (never
//! the system roots), and a client certificate when the KP asks for one.

use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ServerConfig};

use crate::tls::{load_certs, load_key, load_roots, TlsFiles, TlsSetupError};

fn provider() -> Arc<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites = vec![rustls::crypto::ring::cipher_suite::TLS13_AES_256_GCM_SHA384];
    Arc::new(provider)
}

const TLS13_ONLY: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

fn rustls_err(e: impl std::fmt::Display) -> TlsSetupError {
    TlsSetupError::Rustls(e.to_string())
}

/// The encryptor's side: trust `ca_file`; present `identity` (certificate, key) if given.
pub fn client_config(
    ca_file: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = provider();
    let verifier =
        WebPkiServerVerifier::builder_with_provider(load_roots(ca_file)?, provider.clone())
            .build()
            .map_err(rustls_err)?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(TLS13_ONLY)
        .map_err(rustls_err)?
        .with_webpki_verifier(verifier);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(rustls_err)?,
        None => builder.with_no_client_auth(),
    };
    Ok(Arc::new(config))
}

/// The simulated KP's side: its certificate; client certificates under `files.ca_file`,
/// demanded or only verified when offered.
pub fn server_config(
    files: &TlsFiles,
    require_client_cert: bool,
) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = provider();
    let mut verifier =
        WebPkiClientVerifier::builder_with_provider(load_roots(&files.ca_file)?, provider.clone());
    if !require_client_cert {
        verifier = verifier.allow_unauthenticated();
    }
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(TLS13_ONLY)
        .map_err(rustls_err)?
        .with_client_cert_verifier(verifier.build().map_err(rustls_err)?)
        .with_single_cert(load_certs(&files.cert_file)?, load_key(&files.key_file)?)
        .map_err(rustls_err)?;
    Ok(Arc::new(config))
}
