//! The KME-to-KME key link: the master's KME pushes the keys it just handed to its SAE to the
//! slave's KME, over a mutually authenticated TLS connection of its own (link CA, CN = KME
//! ID), never over the SAE API.
//!
//! One push per connection: a frame of a 4-byte big-endian length and a JSON [`LinkPush`],
//! answered by one [`LinkAck`] frame. Frames are capped at [`MAX_FRAME`].

#![allow(non_snake_case)] // Wire names follow the ETSI 014 spelling.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_rustls::{TlsAcceptor, TlsConnector};
use zeroize::Zeroizing;

use super::accept::{accept_bounded, tls_accept, AnonymousSlot};
use super::identity::peer_identity;
use super::state::KmeState;
use crate::model::KeyMaterial;

/// Largest frame: a full request of the largest keys is 512 KiB before base64.
pub const MAX_FRAME: usize = 1024 * 1024;
/// Bound for a whole push, handshake included: the SAE is waiting for its answer meanwhile.
const PUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// More than this many simultaneous link connections is not a peer KME.
const MAX_LINK_CONNECTIONS: usize = 16;

/// Keys the master's KME delivered to `master_SAE_ID`, for `slave_SAE_ID`.
#[derive(Serialize, Deserialize)]
pub struct LinkPush {
    pub master_SAE_ID: String,
    pub slave_SAE_ID: String,
    pub keys: Vec<LinkKey>,
}

#[derive(Serialize, Deserialize)]
pub struct LinkKey {
    pub key_ID: String,
    pub key: KeyMaterial,
}

#[derive(Serialize, Deserialize)]
struct LinkAck {
    accepted: bool,
    #[serde(default)]
    message: String,
}

/// The pushing side.
pub struct LinkClient {
    connector: TlsConnector,
    peer: SocketAddr,
    peer_kme_id: String,
}

impl LinkClient {
    pub fn new(connector: TlsConnector, peer: SocketAddr, peer_kme_id: String) -> Self {
        Self {
            connector,
            peer,
            peer_kme_id,
        }
    }

    /// Deliver `push` to the peer KME; Ok once the peer has stored the keys.
    pub async fn push(&self, push: &LinkPush) -> Result<(), String> {
        tokio::time::timeout(PUSH_TIMEOUT, self.push_inner(push))
            .await
            .unwrap_or_else(|_| Err(format!("no answer within {PUSH_TIMEOUT:?}")))
    }

    async fn push_inner(&self, push: &LinkPush) -> Result<(), String> {
        let frame = Zeroizing::new(serde_json::to_vec(push).map_err(|e| e.to_string())?);
        let tcp = TcpStream::connect(self.peer)
            .await
            .map_err(|e| format!("connect {}: {e}", self.peer))?;
        let _ = tcp.set_nodelay(true);
        let mut tls = self
            .connector
            .connect(ServerName::IpAddress(self.peer.ip().into()), tcp)
            .await
            .map_err(|e| format!("TLS with {}: {e}", self.peer))?;
        let who = peer_identity(tls.get_ref().1.peer_certificates());
        if who.as_deref() != Some(self.peer_kme_id.as_str()) {
            return Err(format!(
                "link peer is {who:?}, expected {:?}",
                self.peer_kme_id
            ));
        }
        write_frame(&mut tls, &frame).await?;
        let answer = read_frame(&mut tls).await?;
        let ack: LinkAck =
            serde_json::from_slice(&answer).map_err(|e| format!("bad link answer: {e}"))?;
        let _ = tls.shutdown().await;
        if ack.accepted {
            Ok(())
        } else {
            Err(format!("peer KME refused the keys: {}", ack.message))
        }
    }
}

async fn write_frame<S: AsyncWrite + Unpin>(stream: &mut S, payload: &[u8]) -> Result<(), String> {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&n| n as usize <= MAX_FRAME)
        .ok_or("link frame too large")?;
    stream
        .write_all(&len.to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(payload).await.map_err(|e| e.to_string())?;
    stream.flush().await.map_err(|e| e.to_string())
}

async fn read_frame<S: AsyncRead + Unpin>(stream: &mut S) -> Result<Zeroizing<Vec<u8>>, String> {
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .await
        .map_err(|e| format!("link read: {e}"))?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(format!("link frame of {len} bytes exceeds {MAX_FRAME}"));
    }
    let mut buf = Zeroizing::new(vec![0u8; len]);
    stream
        .read_exact(&mut buf)
        .await
        .map_err(|e| format!("link read: {e}"))?;
    Ok(buf)
}

/// Accept pushes from the peer KME until `shutdown` flips.
pub async fn serve_link(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    state: Arc<KmeState>,
    shutdown: watch::Receiver<bool>,
) {
    accept_bounded(
        listener,
        MAX_LINK_CONNECTIONS,
        "KME link",
        shutdown,
        |tcp, from, slot| serve_one(tcp, from, slot, acceptor.clone(), state.clone()),
    )
    .await;
}

async fn serve_one(
    tcp: TcpStream,
    from: SocketAddr,
    slot: AnonymousSlot,
    acceptor: TlsAcceptor,
    state: Arc<KmeState>,
) {
    let Some(mut tls) = tls_accept(&acceptor, tcp, from, slot, "KME link").await else {
        return;
    };
    let result = tokio::time::timeout(PUSH_TIMEOUT, async {
        let who = peer_identity(tls.get_ref().1.peer_certificates());
        if who.as_deref() != Some(state.config.peer_kme_id.as_str()) {
            return Err(format!("link client {who:?} is not the peer KME"));
        }
        let frame = read_frame(&mut tls).await?;
        let ack = match accept_push(&state, &frame) {
            Ok(count) => {
                tracing::debug!(%from, keys = count, "keys received over the link");
                LinkAck {
                    accepted: true,
                    message: String::new(),
                }
            }
            Err(message) => {
                tracing::warn!(%from, %message, "refused keys from the peer KME");
                LinkAck {
                    accepted: false,
                    message,
                }
            }
        };
        let answer = serde_json::to_vec(&ack).map_err(|e| e.to_string())?;
        write_frame(&mut tls, &answer).await?;
        let _ = tls.shutdown().await;
        Ok(())
    })
    .await
    .unwrap_or_else(|_| Err("timed out".into()));
    if let Err(e) = result {
        tracing::warn!(%from, error = %e, "link connection failed");
    }
}

/// Check and store one push; returns the number of keys stored.
fn accept_push(state: &KmeState, frame: &[u8]) -> Result<usize, String> {
    let push: LinkPush = serde_json::from_slice(frame).map_err(|e| {
        format!(
            "malformed push ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    let config = &state.config;
    if push.master_SAE_ID != config.peer_sae_id || push.slave_SAE_ID != config.sae_id {
        return Err(format!(
            "keys for {} -> {}, but this link serves {} -> {}",
            push.master_SAE_ID, push.slave_SAE_ID, config.peer_sae_id, config.sae_id
        ));
    }
    if push.keys.is_empty() || push.keys.len() > config.max_key_per_request as usize {
        return Err(format!("{} keys in one push", push.keys.len()));
    }
    let mut bits: u64 = 0;
    for key in &push.keys {
        let size = key.key.len().saturating_mul(8);
        if key.key_ID.is_empty()
            || key.key_ID.len() > 64
            || !key.key_ID.chars().all(|c| c.is_ascii_graphic())
            || size < config.min_key_size as usize
            || size > config.max_key_size as usize
        {
            return Err("a key has a bad ID or size".into());
        }
        bits = bits.saturating_add(size as u64);
    }
    let count = push.keys.len();
    let batch = push.keys.into_iter().map(|k| (k.key_ID, k.key.0)).collect();
    state.store().insert_batch(
        &push.master_SAE_ID,
        &push.slave_SAE_ID,
        batch,
        std::time::Instant::now(),
    )?;
    state.peer_drew(bits);
    Ok(count)
}
