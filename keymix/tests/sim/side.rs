//! One honest side of the simulated world: its endpoint and what its driver keeps (the
//! state file, the learned peer endpoint), and the bookkeeping the invariants judge it by.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Instant;

use keymix::rng::SeededRng;
use keymix::{ChainState, Endpoint, EndpointConfig, PeerId, PublicKey, StaticSecret};

use super::kme::KmeMode;
use super::world::{addr, name, LastCommit, World, SAE};

pub struct Side {
    pub ep: Endpoint,
    pub peer: PeerId,
    pub public: [u8; 32],
    /// Where the driver sends Destination::Peer datagrams (configured or learned).
    pub peer_addr: Option<SocketAddr>,
    /// The state file: the last PersistState, as a driver writes it.
    pub saved: Option<ChainState>,
    /// Offset of this side's wall clock from true time, in seconds; the driver hands the
    /// endpoint a fresh reading with every input, so a step takes effect at once.
    pub wall_offset: i64,
    pub incarnation: u64,
    /// Our own count of this incarnation's drops, to check the endpoint counted each one.
    pub drops: BTreeMap<&'static str, u64>,
    pub accepted_count: u64,
    /// Hashes of datagrams accepted since this side last lost its state: replays.
    pub accepted: BTreeSet<[u8; 32]>,
    /// The chain descends from an exchange with a rogue the policy let in.
    pub tainted: bool,
    /// Why this side holds no chain (when it holds none): what the policy then accepts.
    pub no_chain: NoChain,
    /// The bootstrap PSK this side's config holds, and the one before it while the
    /// endpoint reports a rotation (both accepted).
    pub psk: Option<[u8; 32]>,
    pub prev_psk: Option<Option<[u8; 32]>>,
    /// Datagrams delivered to this side since it last lost its state (any verdict).
    pub delivered: BTreeSet<[u8; 32]>,
    /// A rogue's datagram was accepted as authenticated (the policy let it in) since
    /// this side last lost its chain: the operator resets it once the attack stops.
    pub rogue_entered: bool,
    /// Highest chain epoch since the last allowed decrease.
    pub floor: u64,
    pub kme_mode: KmeMode,
    pub last_commit: Option<LastCommit>,
    pub reset_asked_since: Option<Instant>,
    /// The status reason the operator last acted on for this side: a human does not run
    /// the same reset again for the same, unchanged message.
    pub last_acted_reason: Option<String>,
    pub no_endpoint_drops: u64,
}

/// How a side came to hold no chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoChain {
    /// Never had one, or lost it with its state file (a fault): the policy lets a
    /// bootstrap by the static keys in when no bootstrap PSK is configured.
    Start,
    /// An operator reset. Only one the operator acknowledged as static-only lets a
    /// static-key-only bootstrap in; any other needs the bootstrap PSK.
    Reset { static_only: bool },
}

impl Side {
    pub fn has_chain(&self) -> bool {
        self.saved.as_ref().is_some_and(|s| s.epoch != 0)
    }

    /// The bootstrap PSKs this side accepts now (the configured one, and the previous one
    /// during a rotation).
    pub fn accepted_psks(&self) -> Vec<Option<[u8; 32]>> {
        let rotating = self
            .ep
            .peer_status(self.peer, std::time::Instant::now())
            .psk_rotation;
        let mut v = vec![self.psk];
        if let (true, Some(prev)) = (rotating, self.prev_psk) {
            v.push(prev);
        }
        v
    }

    /// Whether a bootstrap by the static keys alone is what the policy accepts now.
    pub fn static_only_allowed(&self) -> bool {
        !self.has_chain()
            && self.no_chain != NoChain::Reset { static_only: false }
            && self.accepted_psks().contains(&None)
    }
}

impl World {
    pub fn make_side(
        &mut self,
        x: usize,
        state: Option<ChainState>,
        inc: u64,
        offset: i64,
    ) -> Side {
        let secret = StaticSecret::from(self.cfg.secrets[x]);
        let public = *PublicKey::from(&secret).as_bytes();
        let mut ec = EndpointConfig::new(secret);
        ec.keylog = true;
        ec.local_sae_id = Some(SAE[x].to_owned());
        let rng_seed = self.rng.bytes32();
        let mut ep = Endpoint::new(
            ec,
            self.now,
            self.wall(x, offset),
            Box::new(SeededRng::new(rng_seed)),
        );
        let saved = state.clone();
        let pc = self.peer_config(x, state);
        let peer = match ep.add_peer(pc, self.now) {
            Ok(p) => p,
            Err(e) => panic!("add_peer refused our own state file: {e}"),
        };
        Side {
            ep,
            peer,
            public,
            peer_addr: self.cfg.endpoint_known[x].then(|| addr(1 - x)),
            saved,
            wall_offset: offset,
            incarnation: inc,
            drops: BTreeMap::new(),
            accepted_count: 0,
            accepted: BTreeSet::new(),
            tainted: false,
            no_chain: NoChain::Start,
            psk: self.cfg.bootstrap_psk,
            prev_psk: None,
            delivered: BTreeSet::new(),
            rogue_entered: false,
            floor: 0,
            kme_mode: KmeMode::Healthy,
            last_commit: None,
            reset_asked_since: None,
            last_acted_reason: None,
            no_endpoint_drops: 0,
        }
    }

    /// Restarts side `x` (a new process): with its state file or without (lost). The
    /// learned peer endpoint and pending KME requests die with the old process.
    pub fn restart(&mut self, x: usize, keep_state: bool) {
        let old = &self.sides[x];
        let (inc, offset) = (old.incarnation + 1, old.wall_offset);
        let state = if keep_state { old.saved.clone() } else { None };
        let (accepted, delivered, tainted, rogue_entered, floor, mode) = (
            old.accepted.clone(),
            old.delivered.clone(),
            old.tainted,
            old.rogue_entered,
            old.floor,
            old.kme_mode.clone(),
        );
        let no_chain = old.no_chain;
        // The old process's Inits die with it.
        for (h, _) in std::mem::take(&mut self.sent_inits[x]) {
            self.superseded.insert(h);
        }
        self.note(|| format!("restart {} keep_state={keep_state}", name(x)));
        let mut side = self.make_side(x, state, inc, offset);
        side.kme_mode = mode;
        if keep_state {
            side.accepted = accepted;
            side.delivered = delivered;
            side.no_chain = no_chain;
            side.tainted = tainted;
            side.rogue_entered = rogue_entered;
            side.floor = floor;
        } else {
            self.monitor.lineage_break();
        }
        self.sides[x] = side;
        self.pending_kme.retain(|p| p.side != x);
    }
}
