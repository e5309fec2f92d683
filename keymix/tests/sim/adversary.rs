//! The seeded adversary: per step it delivers, drops, delays, reorders, duplicates or
//! replays datagrams, injects forgeries (mutated or random bytes with a valid mac1, and
//! Inits from rogue endpoints that hold a stolen static key, with or without the
//! bootstrap PSK), restarts a side with or without its state file, bends a KME and jumps
//! a wall clock. How often it does what is itself drawn from the seed (a profile).

use std::collections::VecDeque;
use std::time::Duration;

use keymix::message::{Confirm, Init, Resp, TYPE_CONFIRM, TYPE_INIT, TYPE_RESP};
use keymix::message_v2;
use keymix::qkd::{QkdError, QkdKey};
use keymix::rng::SeededRng;
use keymix::Version;
use keymix::{Endpoint, EndpointConfig, KmeRequestKind, QkdPolicy, StaticSecret};

use super::kme::KmeMode;
use super::prng::Prng;
use super::world::{addr, name, Origin, Packet, World, A, B, ROGUE_ADDR};

/// An endpoint run by the adversary with the stolen static key of `impersonates`.
pub struct Rogue {
    pub ep: Endpoint,
    pub impersonates: usize,
    /// The bootstrap PSK the adversary stole along with the static key (the one in force
    /// when the rogue started), if any.
    pub psk: Option<[u8; 32]>,
    pub outbox: VecDeque<Vec<u8>>,
    fake_key_id: u64,
}

impl Rogue {
    pub fn new(w: &mut World, impersonates: usize, has_psk: bool) -> Self {
        let secret = StaticSecret::from(w.cfg.secrets[impersonates]);
        let mut ec = EndpointConfig::new(secret);
        ec.local_sae_id = Some("ROGUE".into());
        let rng = SeededRng::new(w.rng.bytes32());
        let mut ep = Endpoint::new(ec, w.now, w.wall(impersonates, 0), Box::new(rng));
        let mut pc = w.peer_config(impersonates, None);
        if !has_psk {
            pc.bootstrap_psk = None;
        }
        let psk = pc.bootstrap_psk.as_ref().map(|p| **p);
        pc.endpoint_known = true;
        if pc.qkd != QkdPolicy::Off {
            pc.qkd = QkdPolicy::Preferred;
        }
        if let Err(e) = ep.add_peer(pc, w.now) {
            panic!("rogue: {e}");
        }
        Self {
            ep,
            impersonates,
            psk,
            outbox: VecDeque::new(),
            fake_key_id: 1,
        }
    }

    /// The rogue has no QKD link: it guesses key IDs the real KME hands out.
    pub fn fake_kme(&mut self, kind: &KmeRequestKind) -> Result<Vec<QkdKey>, QkdError> {
        match kind {
            KmeRequestKind::EncKeys { .. } => {
                self.fake_key_id += 1;
                Ok(vec![QkdKey {
                    key_id: format!("00000000-0000-4000-8000-{:012x}", self.fake_key_id),
                    key: zeroize::Zeroizing::new(vec![0x42; 32]),
                }])
            }
            KmeRequestKind::DecKeys { .. } => Err(QkdError::Unauthorized),
        }
    }
}

/// How often (per mille of steps) the adversary does each thing; drawn per seed.
#[derive(Clone, Debug)]
pub struct Profile {
    pub tick: u64,
    pub deliver_oldest: u64,
    pub deliver_random: u64,
    pub drop: u64,
    pub duplicate: u64,
    pub delay: u64,
    pub replay: u64,
    pub forge: u64,
    pub rogue: u64,
    pub restart: u64,
    pub kme: u64,
    pub clock: u64,
}

impl Profile {
    pub fn draw(r: &mut Prng) -> Self {
        let mut pick = |opts: &[u64]| opts[r.index(opts.len())];
        Profile {
            tick: pick(&[200, 300, 400]),
            deliver_oldest: pick(&[200, 400]),
            deliver_random: pick(&[0, 50, 200]),
            drop: pick(&[0, 20, 80, 250]),
            duplicate: pick(&[0, 20]),
            delay: pick(&[0, 30]),
            replay: pick(&[0, 15, 50]),
            forge: pick(&[0, 15, 50]),
            rogue: pick(&[0, 0, 10, 30]),
            restart: pick(&[0, 3, 8]),
            kme: pick(&[0, 10, 30]),
            clock: pick(&[0, 3]),
        }
    }

    fn total(&self) -> u64 {
        self.tick
            + self.deliver_oldest
            + self.deliver_random
            + self.drop
            + self.duplicate
            + self.delay
            + self.replay
            + self.forge
            + self.rogue
            + self.restart
            + self.kme
            + self.clock
    }
}

/// Recomputes mac1 of a keymix message for `receiver` (anyone can: the key derives from
/// the receiver's public key). Cookie replies have no mac1.
pub fn fix_mac1(bytes: &mut [u8], receiver_public: &[u8; 32]) {
    if bytes.get(1) == Some(&2) {
        // Version 2: only an Init on the DH path has a mac1 anyone can make; a
        // chain-keyed one's, and a Resp's or Confirm's, need keys the adversary lacks.
        if bytes.first() == Some(&TYPE_INIT) && bytes.len() == message_v2::INIT_LEN {
            let key = keymix::schedule::mac1_key_with(Version::V2.labels(), receiver_public);
            let off = message_v2::init::MAC1;
            let tag = keymix::mac::tag(&key, &bytes[..off]);
            bytes[off..off + 16].copy_from_slice(&tag);
        }
        return;
    }
    let key = keymix::schedule::mac1_key(receiver_public);
    let off = match bytes.first() {
        Some(&TYPE_INIT) => Init::mac1_offset(bytes),
        Some(&TYPE_RESP) if bytes.len() == keymix::message::RESP_LEN => Resp::MAC1_OFFSET,
        Some(&TYPE_CONFIRM) if bytes.len() == keymix::message::CONFIRM_LEN => Confirm::MAC1_OFFSET,
        _ => return,
    };
    let tag = keymix::mac::tag(&key, &bytes[..off]);
    bytes[off..off + 16].copy_from_slice(&tag);
}

impl World {
    /// One adversarial step.
    pub fn adversary_step(&mut self, p: &Profile) {
        let mut roll = self.rng.below(p.total().max(1));
        let mut take = |w: u64| {
            if roll < w {
                true
            } else {
                roll -= w;
                false
            }
        };
        if take(p.tick) {
            let cap = self.now + Duration::from_millis(self.rng.range(10, 3000));
            let t = self.next_deadline().map_or(cap, |d| d.min(cap));
            self.advance_to(t);
        } else if take(p.deliver_oldest) {
            self.deliver_eligible(false);
        } else if take(p.deliver_random) {
            self.deliver_eligible(true);
        } else if take(p.drop) {
            if !self.in_flight.is_empty() {
                let i = self.rng.index(self.in_flight.len());
                self.in_flight.remove(i);
                self.note(|| "drop one datagram".into());
            }
        } else if take(p.duplicate) {
            if !self.in_flight.is_empty() {
                let i = self.rng.index(self.in_flight.len());
                let copy = self.in_flight[i].clone();
                self.deliver(&copy);
            }
        } else if take(p.delay) {
            if !self.in_flight.is_empty() {
                let i = self.rng.index(self.in_flight.len());
                let d = Duration::from_millis(self.rng.range(500, 20_000));
                self.in_flight[i].not_before = self.now + d;
            }
        } else if take(p.replay) {
            self.replay();
        } else if take(p.forge) {
            self.forge();
        } else if take(p.rogue) {
            self.rogue_inject();
        } else if take(p.restart) {
            let x = self.rng.index(2);
            let keep = self.rng.chance(600);
            self.restart(x, keep);
        } else if take(p.kme) {
            let x = self.rng.index(2);
            let mode = match self.rng.below(6) {
                0 => KmeMode::Fail(QkdError::Unavailable("key pool empty".into())),
                1 => KmeMode::Fail(QkdError::Transport("connection refused".into())),
                2 => KmeMode::Stall(None),
                3 => KmeMode::Stall(Some(Duration::from_millis(self.rng.range(100, 15_000)))),
                4 => KmeMode::Mismatch,
                _ => KmeMode::Healthy,
            };
            self.note(|| format!("KME of {} now {mode:?}", name(x)));
            self.sides[x].kme_mode = mode;
        } else {
            // A wall-clock step (NTP), seen by the side's next input. Kept within +-290 s
            // of true time so that two clocks stay within the 600 s bootstrap window.
            let x = self.rng.index(2);
            let off = self.rng.range(0, 580) as i64 - 290;
            self.note(|| format!("wall clock of {} now {off:+} s", name(x)));
            self.sides[x].wall_offset = off;
            self.set_clock(x);
        }
    }

    /// Delivers the oldest (or a random) datagram the adversary is not holding back.
    pub fn deliver_eligible(&mut self, random: bool) {
        let now = self.now;
        let eligible: Vec<usize> = (0..self.in_flight.len())
            .filter(|&i| self.in_flight[i].not_before <= now)
            .collect();
        if eligible.is_empty() {
            return;
        }
        let i = if random {
            eligible[self.rng.index(eligible.len())]
        } else {
            eligible[0]
        };
        if let Some(p) = self.in_flight.remove(i) {
            self.deliver(&p);
        }
    }

    /// Any datagram seen so far, to its destination or to the other side.
    fn replay(&mut self) {
        if self.history.is_empty() {
            return;
        }
        let mut p = self.history[self.rng.index(self.history.len())].clone();
        if self.rng.chance(200) {
            p.dst = if p.dst == addr(A) { addr(B) } else { addr(A) };
        }
        self.note(|| "replay".into());
        self.deliver(&p);
    }

    /// A recorded datagram with bytes changed (or random bytes of a valid length), with
    /// a valid mac1 for its receiver, from a spoofed or the adversary's own address.
    fn forge(&mut self) {
        let y = self.rng.index(2);
        let mut bytes = match self.history.iter().rev().find(|p| p.dst == addr(y)) {
            Some(p) if self.rng.chance(800) => p.payload.clone(),
            _ => {
                let len = [
                    keymix::message::INIT_FIXED_LEN + 48,
                    keymix::message::RESP_LEN,
                    keymix::message::CONFIRM_LEN,
                    keymix::message::COOKIE_REPLY_LEN,
                    message_v2::INIT_LEN,
                    message_v2::RESP_LEN,
                    message_v2::CONFIRM_LEN,
                ][self.rng.index(7)];
                let mut b = vec![0u8; len];
                self.rng.fill(&mut b);
                // Random bytes of a version-2 length speak version 2.
                b[1] = if len > 1400 || len == message_v2::CONFIRM_LEN {
                    2
                } else {
                    1
                };
                b
            }
        };
        if bytes.len() < 24 {
            return;
        }
        let version = if bytes[1] == 2 { 2 } else { 1 };
        let ty = [TYPE_INIT, TYPE_RESP, TYPE_CONFIRM, 0x84][self.rng.index(4)];
        if bytes[0] != ty && self.rng.chance(300) {
            bytes[0] = ty;
        }
        // Now and then the other version's number: a downgrade (or an upgrade) attempt.
        bytes[1] = if self.rng.chance(100) {
            3 - version
        } else {
            version
        };
        bytes[2] = if bytes[1] == 2 { 0 } else { bytes[2] };
        bytes[3] = 0;
        let body = bytes.len().saturating_sub(48).max(5);
        for _ in 0..self.rng.range(1, 4) {
            let i = 4 + self.rng.index(body - 4);
            bytes[i] ^= (self.rng.below(255) + 1) as u8;
        }
        if bytes[0] == TYPE_INIT && bytes[1] == 1 && bytes.len() > 56 && self.rng.chance(500) {
            // A fresh timestamp and the real peer as sender: gets as far as the auth tag.
            let ts = self.wall(y, 0).duration_since(std::time::UNIX_EPOCH);
            let ts = ts.map_or(0, |d| d.as_nanos() as u64);
            bytes[16..24].copy_from_slice(&ts.to_le_bytes());
            let peer = self.sides[1 - y].public;
            bytes[24..56].copy_from_slice(&peer);
        }
        if self.history.iter().any(|p| p.payload[..] == bytes[..]) {
            // The changes cancelled out: that would be a delivery, not a forgery.
            bytes[4] ^= 0x01;
        }
        let public = self.sides[y].public;
        fix_mac1(&mut bytes, &public);
        let src = if self.rng.chance(500) {
            addr(1 - y)
        } else {
            ROGUE_ADDR.parse().unwrap_or(addr(1 - y))
        };
        let p = Packet {
            src,
            dst: addr(y),
            payload: bytes,
            origin: Origin::Forged,
            not_before: self.now,
        };
        self.deliver(&p);
    }

    /// Starts a rogue on first use, then delivers one of its datagrams to its victim,
    /// spoofing the impersonated side's address.
    fn rogue_inject(&mut self) {
        let imp = self.rng.index(2);
        if !self.rogues.iter().any(|r| r.impersonates == imp) {
            let has_psk = self.cfg.bootstrap_psk.is_some() && self.rng.chance(300);
            let rogue = Rogue::new(self, imp, has_psk);
            self.note(|| format!("rogue with {}'s static key, psk={has_psk}", name(imp)));
            self.rogues.push(rogue);
            let i = self.rogues.len() - 1;
            self.rogues[i].ep.handle_timeout(self.now);
            self.drain_rogue(i);
        }
        let Some(i) = self.rogues.iter().position(|r| r.impersonates == imp) else {
            return;
        };
        let Some(payload) = self.rogues[i].outbox.pop_front() else {
            return;
        };
        let p = Packet {
            src: addr(imp),
            dst: addr(1 - imp),
            payload,
            origin: Origin::Rogue { impersonates: imp },
            not_before: self.now,
        };
        let r = self.deliver(&p);
        if let Some(Ok(_)) = r {
            // The victim's answer goes to the impersonated side's address: the on-path
            // adversary feeds it to the rogue (send_from does), and the rogue continues.
            self.note(|| format!("rogue as {} got in", name(imp)));
        }
    }
}
