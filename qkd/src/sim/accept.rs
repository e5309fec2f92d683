//! The accept loop both KME listeners share (SAE API and KME link): a bounded number of
//! connections in flight, a pause instead of a spin when accept fails, and a clean stop.
//!
//! Both listeners demand a client certificate, so a connection is anonymous only until its
//! TLS handshake completes. Anonymous connections are what an outsider can hold open for
//! free, so they are bounded twice: each gets [`HANDSHAKE_TIMEOUT`] to finish the
//! handshake, and one source may have at most [`MAX_ANONYMOUS_PER_SOURCE`] of them at a
//! time. An outsider then holds a few slots for a few seconds, never all of them.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Time from accept to a completed mutual-TLS handshake; a peer on the same continent
/// needs a few round trips, far less than this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Connections one source may have open before their handshake completes.
pub const MAX_ANONYMOUS_PER_SOURCE: usize = 4;

type Counts = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// One source's claim on an anonymous slot, released when dropped (at the end of the
/// handshake, or with the connection).
pub struct AnonymousSlot {
    counts: Counts,
    source: IpAddr,
}

impl AnonymousSlot {
    fn claim(counts: &Counts, from: IpAddr) -> Option<Self> {
        let source = source_key(from);
        let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(source).or_insert(0);
        if *n >= MAX_ANONYMOUS_PER_SOURCE {
            return None;
        }
        *n += 1;
        Some(Self {
            counts: counts.clone(),
            source,
        })
    }
}

impl Drop for AnonymousSlot {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.source) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.source);
            }
        }
    }
}

/// The unit one party controls: an IPv4 address, or an IPv6 /64 (a host usually has a
/// whole /64 to pick source addresses from).
fn source_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
        v4 => v4,
    }
}

/// Accepts on `listener` until `shutdown` flips, running `serve` for each connection with at
/// most `max` in flight and at most [`MAX_ANONYMOUS_PER_SOURCE`] anonymous ones per source;
/// `serve` gets the connection's [`AnonymousSlot`] to hand to [`tls_accept`]. Connections
/// still open are dropped with the loop.
pub async fn accept_bounded<F, Fut>(
    listener: TcpListener,
    max: usize,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    mut serve: F,
) where
    F: FnMut(TcpStream, SocketAddr, AnonymousSlot) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    let counts = Counts::default();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((tcp, from)) => {
                    if conns.len() >= max {
                        tracing::warn!(%from, what, "connection limit reached; dropping a connection");
                        continue;
                    }
                    let Some(slot) = AnonymousSlot::claim(&counts, from.ip()) else {
                        tracing::warn!(%from, what, "too many connections without a TLS handshake from this source; dropping one");
                        continue;
                    };
                    conns.spawn(serve(tcp, from, slot));
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, what, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
}

/// The server side of the mutual-TLS handshake within [`HANDSHAKE_TIMEOUT`]; the source's
/// anonymous slot is given back once the client has proved its certificate.
pub async fn tls_accept(
    acceptor: &TlsAcceptor,
    tcp: TcpStream,
    from: SocketAddr,
    slot: AnonymousSlot,
    what: &'static str,
) -> Option<TlsStream<TcpStream>> {
    let _ = tcp.set_nodelay(true);
    let result = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await;
    drop(slot);
    match result {
        Ok(Ok(tls)) => Some(tls),
        Ok(Err(e)) => {
            tracing::info!(%from, what, error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::info!(%from, what, "TLS handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_counted_per_source_and_released_on_drop() {
        let counts = Counts::default();
        let a: IpAddr = [192, 0, 2, 1].into();
        let b: IpAddr = [192, 0, 2, 2].into();
        let held: Vec<_> = (0..MAX_ANONYMOUS_PER_SOURCE)
            .map(|_| AnonymousSlot::claim(&counts, a).unwrap())
            .collect();
        assert!(AnonymousSlot::claim(&counts, a).is_none());
        assert!(AnonymousSlot::claim(&counts, b).is_some());
        drop(held);
        assert!(AnonymousSlot::claim(&counts, a).is_some());
        assert!(counts.lock().unwrap().is_empty());
    }

    #[test]
    fn ipv6_sources_count_per_64_and_mapped_ipv4_as_ipv4() {
        let one: IpAddr = "2001:db8::1".parse().unwrap();
        let other: IpAddr = "2001:db8::ffff:1".parse().unwrap();
        assert_eq!(source_key(one), source_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        assert_eq!(source_key(mapped), IpAddr::from([192, 0, 2, 1]));
    }
}
