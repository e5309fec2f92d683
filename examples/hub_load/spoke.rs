//! One emulated spoke: a keymix [`Endpoint`] with the hub as its one peer, and the data
//! plane's own per-peer state ([`Peer`]: a boringtun `Tunn` per epoch, the initiation
//! slots) driven the way `tunnel`'s driver drives it, minus the TUN device: user traffic is
//! ICMP echo requests made here, answered by the hub's kernel.
//!
//! Why the driver's pieces and not a leaner client: the figures must be what a real spoke
//! costs the hub, so the spoke speaks exactly Trident's protocol (epoch tags in the Tunn
//! indices, answering the hub's own initiations, confirming answered sessions).

mod datagrams;
mod echo;
mod keymix_events;

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use boringtun::noise::TunnResult;
use keymix::{Endpoint, EndpointConfig, KmeRequest, PeerConfig, PublicKey, Role, StaticSecret};
use tokio::net::UdpSocket;
use tunnel::handshake_rx::HandshakeLimits;
use tunnel::peer::Peer;
use tunnel::peer_keys::PeerKeys;
use tunnel::tunn_index::TunnIndexTable;

use crate::spoke_report::{Note, SpokeReport};

/// The hub is the spoke's only keymix peer.
const HUB: keymix::PeerId = 0;
/// As the driver: a responder whose new Tunn has no session after this starts a handshake.
const RESPONDER_HANDSHAKE_AFTER: Duration = Duration::from_secs(1);
/// ICMP identifiers: probes until the first reply, then the sampled pings.
pub const PROBE_IDENT: u16 = 1;
pub const PING_IDENT: u16 = 2;

/// What `run` hands a spoke: its identity and the plan's view of the hub.
pub struct SpokeSetup {
    pub id: usize,
    pub private: StaticSecret,
    pub psk: [u8; 32],
    pub src: SocketAddr,
    pub inner: Ipv4Addr,
    pub hub: SocketAddr,
    pub hub_public: PublicKey,
    pub hub_inner: Ipv4Addr,
    pub keymix: PeerConfig,
    pub local_sae: Option<String>,
    pub keepalive: Option<u16>,
}

pub struct Spoke {
    pub id: usize,
    pub socket: UdpSocket,
    hub: SocketAddr,
    hub_public: PublicKey,
    private: StaticSecret,
    public: PublicKey,
    pub endpoint: Endpoint,
    /// The hub, as the data plane keeps a peer (one element: the driver's calls take a slice).
    peers: Vec<Peer>,
    peer_keys: PeerKeys,
    indices: TunnIndexTable,
    limits: HandshakeLimits,
    keepalive: Option<u16>,
    inner: Ipv4Addr,
    hub_inner: Ipv4Addr,
    out: Vec<u8>,
    pub kme_requests: Vec<KmeRequest>,
    pub notes: Vec<Note>,
    pub data_up: bool,
    pub pinging: bool,
    seq: u16,
    outstanding: HashMap<u16, Instant>,
    pub report: SpokeReport,
}

/// A datagram to `to`; false (and counted) when the kernel refused it.
fn send(socket: &UdpSocket, report: &mut SpokeReport, payload: &[u8], to: SocketAddr) -> bool {
    match socket.try_send_to(payload, to) {
        Ok(_) => true,
        Err(_) => {
            report.send_errors += 1;
            false
        }
    }
}

impl Spoke {
    pub fn new(s: SpokeSetup, socket: UdpSocket) -> Result<Self, String> {
        let now = Instant::now();
        let public = PublicKey::from(&s.private);
        let mut config = EndpointConfig::new(s.private.clone());
        config.local_sae_id = s.local_sae;
        let mut endpoint = Endpoint::new(
            config,
            now,
            std::time::SystemTime::now(),
            Box::new(keymix::rng::OsRng),
        );
        let mut keymix = s.keymix;
        keymix.bootstrap_psk = Some(zeroize::Zeroizing::new(s.psk));
        let reject_after = keymix.reject_after;
        let qkd = keymix.qkd;
        endpoint
            .add_peer(keymix, now)
            .map_err(|e| format!("spoke {}: {e}", s.id))?;
        let peer = Peer::new(
            s.hub_public,
            Some(s.hub),
            Vec::new(),
            s.keepalive,
            reject_after,
            qkd,
        );
        Ok(Self {
            id: s.id,
            socket,
            hub: s.hub,
            hub_public: s.hub_public,
            limits: HandshakeLimits::new(&public, u64::MAX),
            private: s.private,
            public,
            endpoint,
            peer_keys: PeerKeys::of(std::slice::from_ref(&peer)),
            peers: vec![peer],
            indices: TunnIndexTable::new(),
            keepalive: s.keepalive,
            inner: s.inner,
            hub_inner: s.hub_inner,
            out: vec![0u8; 2048],
            kme_requests: Vec::new(),
            notes: Vec::new(),
            data_up: false,
            pinging: false,
            seq: 0,
            outstanding: HashMap::new(),
            report: SpokeReport {
                spoke: s.id,
                ..SpokeReport::default()
            },
        })
    }

    pub fn has_epoch(&self) -> bool {
        self.peers.first().is_some_and(|p| p.current.is_some())
    }

    /// As the driver's 250 ms tick: reject ages, stale slots, boringtun's timers.
    pub fn on_tick(&mut self) {
        let now = Instant::now();
        let Self {
            peers,
            indices,
            socket,
            report,
            out,
            hub,
            ..
        } = self;
        let Some(peer) = peers.first_mut() else {
            return;
        };
        for t in peer.expire_by_age(now) {
            indices.release(t.index);
        }
        let record = peer.last_initiation;
        for t in peer.slots.expire(now, record) {
            indices.release(t.index);
        }
        if let Some(g) = peer.current.as_mut().filter(|g| {
            g.primary.role == Role::Responder
                && !g.has_session()
                && now.saturating_duration_since(g.primary.installed) >= RESPONDER_HANDSHAKE_AFTER
        }) {
            if let TunnResult::WriteToNetwork(init) =
                g.primary.tunn.format_handshake_initiation(out, false)
            {
                send(socket, report, init, *hub);
            }
        }
        for t in peer.tunns_mut() {
            if let TunnResult::WriteToNetwork(d) = t.tunn.update_timers(out) {
                send(socket, report, d, *hub);
            }
        }
    }
}
