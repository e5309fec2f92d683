//! One SKIP request: TCP, TLS in the configured mode, one HTTP/1.1 GET, the answer body read
//! with a size cap into a buffer that is wiped on drop. A fresh connection per request, as
//! the ETSI 014 client does: keymix asks once per epoch, and no state survives a failure.

use std::pin::Pin;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::header::{ACCEPT, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use openssl::ssl::{Ssl, SslContext};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use crate::body::{read_limited, BodyError};
use keymix::qkd::QkdError;

/// SKIP answers are a few hundred bytes; a capabilities list of 1024 long IDs fits easily.
pub const MAX_BODY: usize = 512 * 1024;

/// A TLS stream of either library.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

/// How to wrap a TCP connection in TLS.
pub enum Connector {
    /// Certificate mode (rustls).
    Certificate {
        connector: TlsConnector,
        server_name: ServerName<'static>,
    },
    /// PSK mode (OpenSSL); `sni` is the host name, when the URL has one.
    Psk {
        context: SslContext,
        sni: Option<String>,
    },
}

impl Connector {
    async fn wrap(&self, tcp: TcpStream) -> Result<Box<dyn Stream>, QkdError> {
        match self {
            Connector::Certificate {
                connector,
                server_name,
            } => {
                let tls = connector
                    .connect(server_name.clone(), tcp)
                    .await
                    .map_err(|e| transport("TLS handshake", &e))?;
                Ok(Box::new(tls))
            }
            Connector::Psk { context, sni } => {
                let mut ssl = Ssl::new(context).map_err(|e| transport("TLS setup", &e))?;
                if let Some(host) = sni {
                    ssl.set_hostname(host)
                        .map_err(|e| transport("TLS setup", &e))?;
                }
                let mut tls = SslStream::new(ssl, tcp).map_err(|e| transport("TLS setup", &e))?;
                Pin::new(&mut tls)
                    .connect()
                    .await
                    .map_err(|e| transport("TLS handshake (PSK)", &e))?;
                Ok(Box::new(tls))
            }
        }
    }
}

/// `GET path` at `host:port` with `Host: authority`; the status and the capped body.
pub async fn get(
    connector: &Connector,
    host: &str,
    port: u16,
    authority: &str,
    path: &str,
) -> Result<(StatusCode, Zeroizing<Vec<u8>>), QkdError> {
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| transport("connect", &e))?;
    // Requests are single small writes; waiting for Nagle only adds latency.
    let _ = tcp.set_nodelay(true);
    let stream = connector.wrap(tcp).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| transport("HTTP handshake", &e))?;
    let request = Request::get(path)
        .header(HOST, authority)
        .header(ACCEPT, "application/json")
        .body(Empty::<Bytes>::new())
        .map_err(|e| QkdError::Transport(format!("cannot build request: {e}")))?;
    let exchange = async move {
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport("request", &e))?;
        let status = response.status();
        let body = read_limited(response.into_body(), MAX_BODY)
            .await
            .map_err(|e| match e {
                BodyError::TooLarge(_) => QkdError::Malformed(format!("answer {e}")),
                BodyError::Read(_) => transport("answer", &e),
            })?;
        Ok::<_, QkdError>((status, body))
    };
    tokio::pin!(exchange);
    // The connection future drives the socket and must be polled while we wait; when it
    // ends first, the answer may still be complete in the body buffer.
    let conn_result = tokio::select! {
        result = &mut exchange => return result,
        conn_result = conn => conn_result,
    };
    match (exchange.await, conn_result) {
        (Ok(answer), _) => Ok(answer),
        (Err(_), Err(conn_err)) => Err(transport("connection", &conn_err)),
        (Err(e), Ok(())) => Err(e),
    }
}

/// Errors hide the cause (a TLS alert, an OS error) in their source chain.
fn transport(stage: &str, e: &dyn std::error::Error) -> QkdError {
    let mut text = format!("{stage}: {e}");
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    QkdError::Transport(text)
}
