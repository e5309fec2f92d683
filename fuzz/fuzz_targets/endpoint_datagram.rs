//! A keymix `Endpoint` with one peer, fed a sequence of arbitrary datagrams, clock steps and
//! KME answers (honest, failing or malformed), with every output polled.
//!
//! Random bytes almost never pass mac1 or the auth tag, so the harness can fix them up: it
//! knows both static keys and what the endpoint sent, and may force the type byte
//! (0x81..=0x84), the version, the binding to the endpoint's state (an Init's static key;
//! the receiver index of a Resp, Confirm or cookie reply), the auth tag (under the first
//! chain key) and mac1. That takes the fuzzer past the cheap filters into the session logic,
//! which a peer gone bad, or an attacker holding the static keys, can reach.
//!
//! Checked on every step, besides "no panic":
//! - every datagram is counted exactly once, under the reason it was dropped for;
//! - everything the endpoint sends parses as a keymix message, and goes to the peer or,
//!   for a cookie reply, back to the datagram's source;
//! - no EpochKey is ever emitted: a key confirmation needs secrets the input cannot know,
//!   so a key here would mean authentication was bypassed.
//!
//! Input: `[flags, kme_mode, record*]`, record = `[ctl, dt, len_lo, len_hi, payload..len]`.
#![no_main]

use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use keymix::mac::{self, TAG_LEN};
use keymix::message::{
    self, Confirm, CookieReply, Init, Resp, CONFIRM_LEN, RESP_LEN, TYPE_CONFIRM, TYPE_COOKIE,
    TYPE_INIT, TYPE_RESP,
};
use keymix::qkd::{InMemoryKme, QkdError, QkdKey};
use keymix::rng::SeededRng;
use keymix::schedule;
use keymix::{
    Destination, Endpoint, EndpointConfig, Event, KmeRequestKind, PeerConfig, PeerId, PublicKey,
    QkdPolicy, StaticSecret,
};
use libfuzzer_sys::fuzz_target;

const SECRET_1: [u8; 32] = [0x31; 32];
const SECRET_2: [u8; 32] = [0x52; 32];
const SAE_US: &str = "SAE_US";
const SAE_PEER: &str = "SAE_PEER";
const BOOTSTRAP_PSK: [u8; 32] = [7; 32];

// `flags` bits.
const F_QKD_MASK: u8 = 0b11;
const F_SWAP_KEYS: u8 = 1 << 2;
const F_START: u8 = 1 << 3;
const F_UNDER_LOAD: u8 = 1 << 4;
const F_BOOTSTRAP: u8 = 1 << 5;
const F_KEYLOG: u8 = 1 << 6;

// `ctl` bits of a record.
const C_TYPE_MASK: u8 = 0b11;
const C_FORCE_TYPE: u8 = 1 << 2;
const C_FIX_HEADER: u8 = 1 << 3;
const C_BIND: u8 = 1 << 4;
const C_FIX_AUTH: u8 = 1 << 5;
const C_FIX_MAC1: u8 = 1 << 6;
const C_OTHER_SRC: u8 = 1 << 7;

/// Offset of `s_init` in an Init: header, sender index, epoch, timestamp.
const S_INIT_OFFSET: usize = 4 + 4 + 8 + 8;
/// Offset of the receiver index: after the sender index in a Resp, after the header in a
/// Confirm or a cookie reply.
const RESP_RECEIVER_OFFSET: usize = 8;
const RECEIVER_OFFSET: usize = 4;

/// How the harness answers KME requests.
#[derive(Clone, Copy, PartialEq, Eq)]
enum KmeMode {
    Honest,
    Failing,
    ShortKey,
    NoKeys,
    WrongIds,
    /// Never answer: the endpoint's own KME timeout must fire.
    Silent,
}

impl KmeMode {
    fn from_byte(b: u8) -> Self {
        match b % 8 {
            1 => Self::Failing,
            2 => Self::ShortKey,
            3 => Self::NoKeys,
            4 => Self::WrongIds,
            5 => Self::Silent,
            _ => Self::Honest,
        }
    }
}

struct Harness {
    ep: Endpoint,
    peer: PeerId,
    kme: InMemoryKme,
    kme_mode: KmeMode,
    now: Instant,
    our_public: [u8; 32],
    peer_public: [u8; 32],
    ss_static: [u8; 32],
    bootstrap: Option<[u8; 32]>,
    fed: u64,
    /// Sender indices of the last Init and Resp the endpoint sent, for C_BIND.
    last_init_index: u32,
    last_resp_index: u32,
}

impl Harness {
    fn new(flags: u8, kme_mode: u8) -> Self {
        let (ours, theirs) = if flags & F_SWAP_KEYS == 0 {
            (SECRET_1, SECRET_2)
        } else {
            (SECRET_2, SECRET_1)
        };
        let ours = StaticSecret::from(ours);
        let theirs = StaticSecret::from(theirs);
        let our_public = *PublicKey::from(&ours).as_bytes();
        let peer_public = PublicKey::from(&theirs);
        let ss_static = ours.diffie_hellman(&peer_public).to_bytes();
        let now = Instant::now();
        // A fixed wall clock and seeded randomness: a crashing input must crash again. The
        // seed differs from the seed-corpus generator's, so no recorded Resp or Confirm can
        // ever complete an exchange here (see the EpochKey check).
        let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let mut cfg = EndpointConfig::new(ours);
        cfg.keylog = flags & F_KEYLOG != 0;
        cfg.local_sae_id = Some(SAE_US.to_owned());
        let mut ep = Endpoint::new(cfg, now, wall, Box::new(SeededRng::new([9; 32])));
        let bootstrap = (flags & F_BOOTSTRAP != 0).then_some(BOOTSTRAP_PSK);
        let mut pc = PeerConfig::new(peer_public);
        pc.qkd = match flags & F_QKD_MASK {
            0 => QkdPolicy::Off,
            1 => QkdPolicy::Preferred,
            _ => QkdPolicy::Required,
        };
        pc.peer_sae_id = Some(SAE_PEER.to_owned());
        pc.bootstrap_psk = bootstrap.map(Into::into);
        // Fixed, valid keys: a failure here is a harness bug, not a finding.
        let peer = ep
            .add_peer(pc, now)
            .expect("the harness's peer config is valid");
        if flags & F_UNDER_LOAD != 0 {
            ep.set_under_load(Some(true));
        }
        let (kme, peer_kme) = InMemoryKme::pair_seeded(SAE_US, SAE_PEER, [3; 32]);
        // Keys the peer (as master) already drew, so that an Init naming
        // 00000000-0000-4000-8000-000000000001 or ...002 finds them at our KME.
        let _ = peer_kme.enc_keys_now(SAE_US, 2, 256);
        Harness {
            ep,
            peer,
            kme,
            kme_mode: KmeMode::from_byte(kme_mode),
            now,
            our_public,
            peer_public: *peer_public.as_bytes(),
            ss_static,
            bootstrap,
            fed: 0,
            last_init_index: 0,
            last_resp_index: 0,
        }
    }

    fn answer_kme(&self, kind: &KmeRequestKind) -> Option<Result<Vec<QkdKey>, QkdError>> {
        let honest = || match kind {
            KmeRequestKind::EncKeys {
                slave_sae_id,
                number,
                size_bits,
            } => self.kme.enc_keys_now(slave_sae_id, *number, *size_bits),
            KmeRequestKind::DecKeys {
                master_sae_id,
                key_ids,
            } => self.kme.dec_keys_now(master_sae_id, key_ids),
        };
        Some(match self.kme_mode {
            KmeMode::Honest => honest(),
            KmeMode::Failing => Err(QkdError::Unavailable("fuzz".into())),
            KmeMode::ShortKey => honest().map(|mut keys| {
                for k in &mut keys {
                    let half = k.key.len() / 2;
                    k.key.truncate(half);
                }
                keys
            }),
            KmeMode::NoKeys => Ok(Vec::new()),
            KmeMode::WrongIds => honest().map(|mut keys| {
                for k in &mut keys {
                    k.key_id.push('x');
                }
                keys
            }),
            KmeMode::Silent => return None,
        })
    }

    /// Polls every output until the endpoint is quiet, answering KME requests on the way.
    /// `src` is the source of the datagram being answered, if any.
    fn drain(&mut self, src: Option<SocketAddr>) {
        loop {
            let mut progressed = false;
            while let Some(t) = self.ep.poll_transmit() {
                progressed = true;
                match t.destination {
                    Destination::Peer(p) => assert_eq!(p, self.peer),
                    Destination::Addr(a) => {
                        assert_eq!(Some(a), src, "reply to an address nobody wrote from");
                        assert_eq!(t.payload.first(), Some(&TYPE_COOKIE));
                    }
                }
                self.note_sent(&t.payload);
            }
            while let Some(ev) = self.ep.poll_event() {
                progressed = true;
                match ev {
                    Event::KmeRequest(req) => {
                        assert_eq!(req.peer, self.peer);
                        if let Some(result) = self.answer_kme(&req.kind) {
                            self.ep.handle_kme_result(self.now, req.id, result);
                        }
                    }
                    Event::EpochKey { .. } => panic!("epoch key from unauthenticated input"),
                    Event::Expired { .. } | Event::PersistState { .. } => {}
                }
            }
            if !progressed {
                break;
            }
        }
        let _ = self.ep.poll_timeout();
        let _ = self.ep.peer_status(self.peer, self.now);
    }

    fn auth_keys(&self, we_initiate: bool) -> schedule::AuthKeys {
        let chain = schedule::chain0(self.bootstrap.as_ref());
        let (s_init, s_resp) = if we_initiate {
            (&self.our_public, &self.peer_public)
        } else {
            (&self.peer_public, &self.our_public)
        };
        schedule::auth_keys(
            &chain,
            &self.ss_static,
            self.bootstrap.as_ref(),
            s_init,
            s_resp,
        )
    }

    /// Applies the fix-ups `ctl` asks for, in wire order: header, s_init, auth, mac1.
    fn fix_up(&self, ctl: u8, d: &mut [u8]) {
        if d.is_empty() {
            return;
        }
        if ctl & C_FORCE_TYPE != 0 {
            d[0] = TYPE_INIT + (ctl & C_TYPE_MASK);
        }
        if ctl & C_FIX_HEADER != 0 && d.len() >= 4 {
            d[1] = message::VERSION;
            d[3] = 0;
        }
        let ty = d[0];
        if ctl & C_BIND != 0 {
            let (at, bytes) = match ty {
                TYPE_INIT => (S_INIT_OFFSET, &self.peer_public[..]),
                TYPE_RESP => (
                    RESP_RECEIVER_OFFSET,
                    &self.last_init_index.to_le_bytes()[..],
                ),
                TYPE_CONFIRM => (RECEIVER_OFFSET, &self.last_resp_index.to_le_bytes()[..]),
                _ => (RECEIVER_OFFSET, &self.last_init_index.to_le_bytes()[..]),
            };
            if let Some(field) = d.get_mut(at..at + bytes.len()) {
                field.copy_from_slice(bytes);
            }
        }
        if ctl & C_FIX_AUTH != 0 {
            let at = match ty {
                TYPE_INIT if d.len() >= 3 * TAG_LEN => {
                    Some((Init::auth_offset(d), self.auth_keys(false).i2r))
                }
                TYPE_RESP if d.len() == RESP_LEN => {
                    Some((Resp::AUTH_OFFSET, self.auth_keys(true).r2i))
                }
                _ => None,
            };
            if let Some((off, key)) = at {
                let tag = mac::tag(&key, &d[..off]);
                d[off..off + TAG_LEN].copy_from_slice(&tag);
            }
        }
        if ctl & C_FIX_MAC1 != 0 {
            let off = match ty {
                TYPE_INIT if d.len() >= 2 * TAG_LEN => Some(Init::mac1_offset(d)),
                TYPE_RESP if d.len() == RESP_LEN => Some(Resp::MAC1_OFFSET),
                TYPE_CONFIRM if d.len() == CONFIRM_LEN => Some(Confirm::MAC1_OFFSET),
                _ => None,
            };
            if let Some(off) = off {
                let tag = mac::tag(&schedule::mac1_key(&self.our_public), &d[..off]);
                d[off..off + TAG_LEN].copy_from_slice(&tag);
            }
        }
    }

    fn feed(&mut self, src: SocketAddr, datagram: &[u8]) {
        let before = self.ep.counters().clone();
        let r = self.ep.handle_datagram(self.now, src, datagram);
        self.fed += 1;
        let after = self.ep.counters();
        assert_eq!(after.accepted + after.dropped_total(), self.fed);
        match r {
            Ok(peer) => {
                assert!(peer.is_none() || peer == Some(self.peer));
                assert_eq!(after.accepted, before.accepted + 1);
            }
            Err(reason) => assert_eq!(after.get(reason), before.get(reason) + 1),
        }
        self.drain(Some(src));
    }

    /// Everything the endpoint sends must be one of its own well-formed messages; remember
    /// the indices C_BIND needs.
    fn note_sent(&mut self, payload: &[u8]) {
        match payload.first() {
            Some(&TYPE_INIT) => {
                let m = Init::parse(payload).expect("endpoint sent a malformed Init");
                self.last_init_index = m.sender_index;
            }
            Some(&TYPE_RESP) => {
                let m = Resp::parse(payload).expect("endpoint sent a malformed Resp");
                self.last_resp_index = m.sender_index;
            }
            Some(&TYPE_CONFIRM) => {
                Confirm::parse(payload).expect("endpoint sent a malformed Confirm");
            }
            Some(&TYPE_COOKIE) => {
                CookieReply::parse(payload).expect("endpoint sent a malformed cookie reply");
            }
            _ => panic!("endpoint sent a non-keymix datagram: {payload:02x?}"),
        }
    }

    fn advance(&mut self, steps: u8) {
        self.now += Duration::from_millis(50) * u32::from(steps);
        self.ep.handle_timeout(self.now);
        self.drain(None);
    }
}

fuzz_target!(|data: &[u8]| {
    let &[flags, kme_mode, ref records @ ..] = data else {
        return;
    };
    let mut h = Harness::new(flags, kme_mode);
    if flags & F_START != 0 {
        h.advance(0);
    }
    let src_a: SocketAddr = "192.0.2.1:51820".parse().expect("literal address");
    let src_b: SocketAddr = "[2001:db8::2]:4500".parse().expect("literal address");
    let mut rest: &[u8] = records;
    while let &[ctl, dt, lo, hi, ref tail @ ..] = rest {
        let len = usize::from(u16::from_le_bytes([lo, hi])).min(tail.len());
        let (payload, next) = tail.split_at(len);
        rest = next;
        if dt != 0 {
            h.advance(dt);
        }
        let mut d = payload.to_vec();
        h.fix_up(ctl, &mut d);
        let src = if ctl & C_OTHER_SRC != 0 { src_b } else { src_a };
        h.feed(src, &d);
    }
});
