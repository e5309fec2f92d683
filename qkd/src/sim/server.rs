//! The SAE-facing HTTPS server: mutual TLS, HTTP/1.1 via hyper, the caller identified by the
//! CN of its client certificate, then handed to [`super::api`].

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::accept::{accept_bounded, tls_accept, AnonymousSlot};
use super::api;
use super::identity::peer_identity;
use super::state::KmeState;
use crate::body::read_limited;

/// Key request and Key IDs bodies are small (128 UUIDs is ~6 KiB).
const MAX_REQUEST_BODY: usize = 64 * 1024;
pub(super) const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Lifetime cap of one connection, so idle keep-alive clients cannot pile up.
pub(super) const CONNECTION_TIMEOUT: Duration = Duration::from_secs(120);
pub(super) const MAX_CONNECTIONS: usize = 256;

/// Serve the ETSI 014 API until `shutdown` flips; open connections are dropped with it.
pub async fn serve_api(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<KmeState>,
    shutdown: watch::Receiver<bool>,
) {
    accept_bounded(
        listener,
        MAX_CONNECTIONS,
        "SAE API",
        shutdown,
        |tcp, from, slot| serve_connection(tcp, from, slot, acceptor.clone(), state.clone()),
    )
    .await;
}

async fn serve_connection(
    tcp: TcpStream,
    from: SocketAddr,
    slot: AnonymousSlot,
    acceptor: TlsAcceptor,
    state: Arc<KmeState>,
) {
    let Some(tls) = tls_accept(&acceptor, tcp, from, slot, "SAE API").await else {
        return;
    };
    let caller: Option<Arc<str>> =
        peer_identity(tls.get_ref().1.peer_certificates()).map(Arc::from);
    tracing::debug!(%from, ?caller, "SAE connected");
    let service = service_fn(move |request| {
        let state = state.clone();
        let caller = caller.clone();
        async move { Ok::<_, Infallible>(respond(&state, caller.as_deref(), request).await) }
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(TokioIo::new(tls), service);
    match tokio::time::timeout(CONNECTION_TIMEOUT, connection).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::debug!(%from, error = %e, "connection ended with an error"),
        Err(_) => tracing::debug!(%from, "connection closed after its lifetime cap"),
    }
}

async fn respond(
    state: &KmeState,
    caller: Option<&str>,
    request: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match read_limited(body, MAX_REQUEST_BODY).await {
        Ok(body) => body,
        Err(e) => {
            tracing::info!(error = %e, "request body refused");
            let error = crate::model::Error::message(format!("request body: {e}"));
            let json = serde_json::to_vec(&error).unwrap_or_default();
            return build(400, Some(Bytes::from(json)));
        }
    };
    let answer = api::handle(
        state,
        caller,
        parts.method.as_str(),
        parts.uri.path(),
        parts.uri.query(),
        &body,
    )
    .await;
    tracing::debug!(method = %parts.method, path = parts.uri.path(), status = answer.status, "answered");
    // The body may hold keys: let the Bytes own the wiping buffer so it is zeroed when hyper
    // is done with it.
    build(answer.status, answer.body.map(Bytes::from_owner))
}

pub(super) fn build(status: u16, body: Option<Bytes>) -> Response<Full<Bytes>> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let has_body = body.is_some();
    // hyper derives Content-Length from the full body.
    let mut response = Response::new(Full::new(body.unwrap_or_default()));
    *response.status_mut() = status;
    if has_body {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    }
    response
}
