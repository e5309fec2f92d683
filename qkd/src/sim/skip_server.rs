//! The simulated KP's SKIP listeners: certificate mode (rustls, TLS 1.3 with
//! TLS_AES_256_GCM_SHA384; a client certificate, when the config demands one or the client
//! offers one, must be the served SAE's) and PSK mode (OpenSSL: TLS 1.3 external PSK or
//! TLS 1.2 DHE-PSK with the configured identity). Both serve [`super::skip_api`] over
//! HTTP/1.1 with the same limits as the ETSI 014 listener.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use openssl::ssl::{Ssl, SslContext};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_openssl::SslStream;
use tokio_rustls::TlsAcceptor;

use super::accept::{accept_bounded, tls_accept, AnonymousSlot, HANDSHAKE_TIMEOUT};
use super::identity::peer_identity;
use super::server::{build, CONNECTION_TIMEOUT, HEADER_READ_TIMEOUT, MAX_CONNECTIONS};
use super::skip_api;
use super::state::KmeState;

/// Serve SKIP in certificate mode until `shutdown` flips.
pub async fn serve_certificate(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<KmeState>,
    shutdown: watch::Receiver<bool>,
) {
    accept_bounded(
        listener,
        MAX_CONNECTIONS,
        "SKIP API (certificate)",
        shutdown,
        move |tcp, from, slot| {
            let (acceptor, state) = (acceptor.clone(), state.clone());
            async move {
                let what = "SKIP API (certificate)";
                let Some(tls) = tls_accept(&acceptor, tcp, from, slot, what).await else {
                    return;
                };
                if let Some(certs) = tls.get_ref().1.peer_certificates() {
                    let who = peer_identity(Some(certs));
                    if who.as_deref() != Some(state.config.sae_id.as_str()) {
                        tracing::info!(%from, ?who, "SKIP client certificate of another SAE");
                        return;
                    }
                }
                serve_http(tls, state, from).await;
            }
        },
    )
    .await;
}

/// Serve SKIP in PSK mode until `shutdown` flips.
pub async fn serve_psk(
    listener: TcpListener,
    context: SslContext,
    state: Arc<KmeState>,
    shutdown: watch::Receiver<bool>,
) {
    let context = Arc::new(context);
    accept_bounded(
        listener,
        MAX_CONNECTIONS,
        "SKIP API (PSK)",
        shutdown,
        move |tcp, from, slot| {
            let (context, state) = (context.clone(), state.clone());
            async move {
                if let Some(tls) = psk_accept(&context, tcp, from, slot).await {
                    serve_http(tls, state, from).await;
                }
            }
        },
    )
    .await;
}

/// The server side of a PSK handshake within [`HANDSHAKE_TIMEOUT`].
async fn psk_accept(
    context: &SslContext,
    tcp: TcpStream,
    from: SocketAddr,
    slot: AnonymousSlot,
) -> Option<SslStream<TcpStream>> {
    let _ = tcp.set_nodelay(true);
    let mut tls = Ssl::new(context)
        .and_then(|ssl| SslStream::new(ssl, tcp))
        .map_err(|e| tracing::warn!(%from, error = %e, "TLS setup failed"))
        .ok()?;
    let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, Pin::new(&mut tls).accept()).await;
    drop(slot);
    match result {
        Ok(Ok(())) => Some(tls),
        Ok(Err(e)) => {
            tracing::info!(%from, error = %e, "SKIP PSK handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(%from, "SKIP PSK handshake timed out");
            None
        }
    }
}

async fn serve_http<S>(stream: S, state: Arc<KmeState>, from: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let state = state.clone();
        async move {
            // SKIP is GET only: a request body is never read.
            let uri = request.uri();
            let answer =
                skip_api::handle(&state, request.method().as_str(), uri.path(), uri.query()).await;
            tracing::debug!(method = %request.method(), path = uri.path(), status = answer.status, "SKIP answered");
            Ok::<_, Infallible>(build(answer.status, answer.body.map(Bytes::from_owner)))
        }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service);
    match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%from, error = %e, "SKIP connection ended with an error"),
        Err(_) => tracing::debug!(%from, "SKIP connection closed after its lifetime cap"),
    }
}

/// The TLS side of both SKIP listeners, built from the config before anything listens, so
/// a bad file stops `run` at once.
pub struct SkipTlsContexts {
    pub certificate: Option<TlsAcceptor>,
    pub psk: Option<SslContext>,
}

impl SkipTlsContexts {
    pub fn load(config: &super::config::KmeConfig) -> Result<Self, super::error::SimError> {
        use super::error::SimError;
        let certificate = match config.skip_listen {
            None => None,
            Some(_) => {
                let files = crate::tls::TlsFiles {
                    ca_file: config.ca_file.clone(),
                    cert_file: config.cert_file.clone(),
                    key_file: config.key_file.clone(),
                };
                let require = config.skip_require_client_cert.unwrap_or(true);
                Some(TlsAcceptor::from(crate::skip::cert::server_config(
                    &files, require,
                )?))
            }
        };
        let psk = match (
            config.skip_psk_listen,
            &config.skip_psk_identity_file,
            &config.skip_psk_file,
        ) {
            (Some(_), Some(id_file), Some(psk_file)) => {
                let identity = crate::tls::read_bounded(id_file)?;
                let key = crate::tls::read_bounded(psk_file)?;
                let material =
                    crate::skip::PskMaterial::from_files(&identity, &key).map_err(|reason| {
                        SimError::Config {
                            path: psk_file.clone(),
                            reason,
                        }
                    })?;
                let context = crate::skip::psk::server_context(&material)
                    .map_err(|e| SimError::Setup(format!("SKIP PSK TLS setup: {e}")))?;
                Some(context)
            }
            _ => None,
        };
        Ok(Self { certificate, psk })
    }
}
