//! rustls configuration shared by the ETSI 014 client and the KME simulator: PEM loading and
//! mutually authenticated TLS 1.2/1.3 with the `ring` provider, trusting only one CA file.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use zeroize::Zeroizing;

/// PEM files of certificates and keys are small; anything larger is not what we expect.
const MAX_PEM_FILE: u64 = 256 * 1024;

/// Why the TLS material could not be loaded or assembled.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is larger than {MAX_PEM_FILE} bytes")]
    TooLarge { path: PathBuf },
    #[error("{path}: {reason}")]
    Pem { path: PathBuf, reason: String },
    #[error("TLS configuration rejected: {0}")]
    Rustls(String),
}

/// The paths of one party's TLS identity and the CA it trusts.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// rustls speaks nothing older than TLS 1.2, so listing both is "TLS 1.2 or higher".
const VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

pub(crate) fn read_bounded(path: &Path) -> Result<Zeroizing<Vec<u8>>, TlsSetupError> {
    use std::io::Read as _;
    let io_err = |source| TlsSetupError::Io {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io_err)?;
    let mut buf = Zeroizing::new(Vec::new());
    file.take(MAX_PEM_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(io_err)?;
    if buf.len() as u64 > MAX_PEM_FILE {
        return Err(TlsSetupError::TooLarge {
            path: path.to_owned(),
        });
    }
    Ok(buf)
}

/// All certificates of a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let pem = read_bounded(path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::Pem {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::Pem {
            path: path.to_owned(),
            reason: "no CERTIFICATE found".into(),
        });
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsSetupError> {
    let pem = read_bounded(path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| TlsSetupError::Pem {
        path: path.to_owned(),
        // The PEM error text names the section kind only, never key bytes.
        reason: e.to_string(),
    })
}

/// A root store holding only the certificates of `ca_file`: no system roots, ever.
pub fn load_roots(ca_file: &Path) -> Result<Arc<RootCertStore>, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(ca_file)? {
        roots.add(cert).map_err(|e| TlsSetupError::Pem {
            path: ca_file.to_owned(),
            reason: format!("not a usable CA certificate: {e}"),
        })?;
    }
    Ok(Arc::new(roots))
}

fn rustls_err(e: impl std::fmt::Display) -> TlsSetupError {
    TlsSetupError::Rustls(e.to_string())
}

/// Client side of mutual TLS: present `cert_file`/`key_file`, accept only servers under `ca_file`.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let provider = provider();
    let roots = load_roots(&files.ca_file)?;
    let verifier = WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(rustls_err)?;
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(rustls_err)?
        .with_webpki_verifier(verifier)
        .with_client_auth_cert(load_certs(&files.cert_file)?, load_key(&files.key_file)?)
        .map_err(rustls_err)?;
    Ok(Arc::new(config))
}

/// Server side of mutual TLS: a client certificate under `ca_file` is mandatory.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TlsSetupError> {
    let provider = provider();
    let roots = load_roots(&files.ca_file)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider.clone())
        .build()
        .map_err(rustls_err)?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(VERSIONS)
        .map_err(rustls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(&files.cert_file)?, load_key(&files.key_file)?)
        .map_err(rustls_err)?;
    Ok(Arc::new(config))
}
