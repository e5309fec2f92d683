//! Per-peer data-plane state: where the peer is, which inner addresses it owns, its Tunns of
//! the current and the previous PSK epoch ([`EpochTunns`]), and the WireGuard initiations
//! not yet believed ([`InitiationSlots`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ip_network::IpNetwork;
use keymix::{PublicKey, QkdPolicy};

use crate::epoch_tunn::EpochTunn;
use crate::epoch_tunns::EpochTunns;
use crate::initiation::Tai64n;
use crate::initiation_slots::InitiationSlots;
use crate::tunn_index::epoch_tag;

pub struct Peer {
    pub public_key: PublicKey,
    pub endpoint: Option<SocketAddr>,
    /// The endpoint in the config (`endpoint` roams): a reload changes it only when this
    /// differs from the reloaded config.
    pub configured_endpoint: Option<SocketAddr>,
    pub allowed_ips: Vec<IpNetwork>,
    pub persistent_keepalive: Option<u16>,
    pub reject_after: Duration,
    /// Only for status: keymix enforces the policy.
    pub qkd_policy: QkdPolicy,
    /// The newest epoch's Tunns.
    pub current: Option<EpochTunns>,
    /// The epoch that carried traffic before `current` got a session.
    pub previous: Option<EpochTunns>,
    /// Initiations answered or parked but not yet confirmed by the peer.
    pub slots: InitiationSlots,
    /// TAI64N of the newest handshake initiation whose session the peer confirmed, over all
    /// epochs (persisted with the keymix chain): boringtun's own check lives in each Tunn
    /// and a fresh Tunn starts from zero, so this one is the replay protection.
    pub last_initiation: Option<Tai64n>,
    /// Bytes of Tunns already dropped, so status counters never go backwards.
    pub retired_tx: u64,
    pub retired_rx: u64,
    /// Data packets sent and received over the peer's whole life (metrics).
    pub tx_packets: u64,
    pub rx_packets: u64,
    /// A plain WireGuard peer (`keymix = "off"`): one Tunn for life, any initiation.
    pub classic: bool,
    /// Removed by a reload: no Tunns, no routes, never matched again (its id stays taken so
    /// the other peers keep theirs).
    pub removed: bool,
}

impl Peer {
    pub fn new(
        public_key: PublicKey,
        endpoint: Option<SocketAddr>,
        allowed_ips: Vec<IpNetwork>,
        persistent_keepalive: Option<u16>,
        reject_after: Duration,
        qkd_policy: QkdPolicy,
    ) -> Self {
        Self {
            public_key,
            endpoint,
            configured_endpoint: endpoint,
            allowed_ips,
            persistent_keepalive,
            reject_after,
            qkd_policy,
            current: None,
            previous: None,
            slots: InitiationSlots::default(),
            last_initiation: None,
            retired_tx: 0,
            retired_rx: 0,
            tx_packets: 0,
            rx_packets: 0,
            classic: false,
            removed: false,
        }
    }

    /// Installs a new epoch's primary Tunn. Returns the Tunns that are dropped (their
    /// indices must be released). Of the old epochs we keep the newest that has a session,
    /// because that one carries traffic until the new epoch has its own.
    pub fn install(&mut self, new: EpochTunn) -> Vec<EpochTunn> {
        let old_current = self.current.take();
        let old_previous = self.previous.take();
        let keep_current = old_current.as_ref().is_some_and(EpochTunns::has_session)
            || old_previous.as_ref().is_none_or(|t| !t.has_session());
        let (keep, drop) = if keep_current {
            (old_current, old_previous)
        } else {
            (old_previous, old_current)
        };
        self.previous = keep;
        self.current = Some(EpochTunns::new(new, self.reject_after));
        self.retire(drop.into_iter().collect())
    }

    /// Drops every Tunn of `epoch` or older (keymix said that key is past its reject age).
    pub fn expire(&mut self, epoch: u64) -> Vec<EpochTunn> {
        let mut dropped = Vec::new();
        if self.previous.as_ref().is_some_and(|t| t.epoch() <= epoch) {
            dropped.extend(self.previous.take());
        }
        if self.current.as_ref().is_some_and(|t| t.epoch() <= epoch) {
            dropped.extend(self.current.take());
        }
        self.retire(dropped)
    }

    /// Drops Tunns whose PSK is older than the reject age, whatever keymix says.
    pub fn expire_by_age(&mut self, now: Instant) -> Vec<EpochTunn> {
        let mut dropped = Vec::new();
        if self.previous.as_ref().is_some_and(|t| t.is_past(now)) {
            dropped.extend(self.previous.take());
        }
        if self.current.as_ref().is_some_and(|t| t.is_past(now)) {
            dropped.extend(self.current.take());
        }
        self.retire(dropped)
    }

    /// A reload's reject age: new epochs get it, live ones only if it is longer.
    pub fn set_reject_after(&mut self, reject_after: Duration) {
        self.reject_after = reject_after;
        for g in self.current.iter_mut().chain(self.previous.iter_mut()) {
            g.extend_reject_after(reject_after);
        }
    }

    fn retire(&mut self, groups: Vec<EpochTunns>) -> Vec<EpochTunn> {
        let tunns: Vec<EpochTunn> = groups
            .into_iter()
            .flat_map(EpochTunns::into_tunns)
            .collect();
        for t in &tunns {
            self.retire_traffic(t);
        }
        tunns
    }

    pub fn retire_traffic(&mut self, t: &EpochTunn) {
        let (tx, rx) = t.traffic();
        self.retired_tx = self.retired_tx.saturating_add(tx);
        self.retired_rx = self.retired_rx.saturating_add(rx);
    }

    /// The Tunn to encrypt user traffic with: of the newest epoch with a session, the Tunn
    /// whose session is newest; without any session the newest primary (boringtun queues
    /// the packet and starts a handshake). `None` means fail closed: no live PSK.
    pub fn sending_tunn(&mut self) -> Option<&mut EpochTunn> {
        let current_ready = self.current.as_ref().is_some_and(EpochTunns::has_session);
        let previous_ready = self.previous.as_ref().is_some_and(EpochTunns::has_session);
        if !current_ready && previous_ready {
            return self.previous.as_mut().map(EpochTunns::sending);
        }
        if let Some(c) = self.current.as_mut() {
            return Some(c.sending());
        }
        self.previous.as_mut().map(EpochTunns::sending)
    }

    /// The Tunn with Tunn index `index`: of an epoch, or answering an initiation.
    pub fn tunn_by_index(&mut self, index: u32) -> Option<&mut EpochTunn> {
        if let Some(t) = self.current.as_mut().and_then(|g| g.by_index(index)) {
            return Some(t);
        }
        if let Some(t) = self.previous.as_mut().and_then(|g| g.by_index(index)) {
            return Some(t);
        }
        self.slots.by_index(index)
    }

    /// The epoch (its primary Tunn) whose number matches the epoch tag of a peer's
    /// handshake initiation.
    pub fn epoch_by_tag(&mut self, tag: u32) -> Option<&mut EpochTunns> {
        // A stock WireGuard peer's indices are random: they carry no epoch.
        if self.classic {
            return self.current.as_mut();
        }
        if self
            .current
            .as_ref()
            .is_some_and(|t| epoch_tag(t.epoch()) == tag)
        {
            return self.current.as_mut();
        }
        self.previous
            .as_mut()
            .filter(|t| epoch_tag(t.epoch()) == tag)
    }

    /// The peer confirmed the initiation answered by Tunn `index`: that Tunn joins its
    /// epoch and the initiation becomes the replay record. Returns the record's TAI64N (to
    /// persist) and the Tunns dropped (indices to release); `None` if `index` answered
    /// nothing pending.
    pub fn confirm(&mut self, index: u32) -> Option<(Tai64n, Vec<EpochTunn>)> {
        let (tunn, timestamp, _src) = self.slots.take_answered(index)?;
        let mut dropped = Vec::new();
        let epoch = tunn.epoch;
        let group = [self.current.as_mut(), self.previous.as_mut()]
            .into_iter()
            .flatten()
            .find(|g| g.epoch() == epoch);
        match group {
            Some(g) => dropped.extend(g.add_answered(tunn)),
            // Its epoch is gone meanwhile: nothing to join.
            None => dropped.push(tunn),
        }
        for t in &dropped {
            self.retire_traffic(t);
        }
        if self.last_initiation.is_none_or(|last| timestamp > last) {
            self.last_initiation = Some(timestamp);
        }
        // Initiations at or below the new record can no longer be genuine.
        dropped.extend(self.slots.expire(Instant::now(), self.last_initiation));
        Some((timestamp, dropped))
    }

    /// Whether an initiation stamped `timestamp` is newer than every one whose session
    /// the peer confirmed (any epoch); anything else is a replay and must change nothing.
    pub fn initiation_is_fresh(&self, timestamp: Tai64n) -> bool {
        self.last_initiation.is_none_or(|last| timestamp > last)
    }

    /// The Tunns of the live epochs (not the unconfirmed answerers).
    pub fn tunns_mut(&mut self) -> impl Iterator<Item = &mut EpochTunn> {
        self.current
            .iter_mut()
            .chain(self.previous.iter_mut())
            .flat_map(EpochTunns::tunns_mut)
    }

    pub fn tunns(&self) -> impl Iterator<Item = &EpochTunn> {
        self.current
            .iter()
            .chain(self.previous.iter())
            .flat_map(EpochTunns::tunns)
    }

    /// The peer's public key, short (first 8 base64 characters), to name it in logs.
    pub fn short(&self) -> String {
        use base64::Engine;
        let mut s = base64::engine::general_purpose::STANDARD.encode(self.public_key.as_bytes());
        s.truncate(8);
        s
    }

    /// The live epochs' numbers, newest first.
    pub fn epochs(&self) -> Vec<u64> {
        self.current
            .iter()
            .chain(self.previous.iter())
            .map(EpochTunns::epoch)
            .collect()
    }

    /// (tx, rx) bytes over the peer's whole life.
    pub fn traffic(&self) -> (u64, u64) {
        self.tunns()
            .fold((self.retired_tx, self.retired_rx), |(tx, rx), t| {
                let (ttx, trx) = t.traffic();
                (tx.saturating_add(ttx), rx.saturating_add(trx))
            })
    }

    /// Most recent WireGuard handshake over the live Tunns.
    pub fn last_handshake(&self) -> Option<Duration> {
        self.tunns().filter_map(|t| t.last_handshake()).min()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use boringtun::noise::rate_limiter::RateLimiter;
    use keymix::{EpochKey, Role, SourceMask, StaticSecret};
    use zeroize::Zeroizing;

    use super::*;

    fn tunn(epoch: u64, psk: u8) -> EpochTunn {
        let own = StaticSecret::from([7u8; 32]);
        let peer = PublicKey::from(&StaticSecret::from([9u8; 32]));
        let key = EpochKey {
            epoch,
            psk: Zeroizing::new([psk; 32]),
            sources: SourceMask::BASE,
            qkd_key_ids: Vec::new(),
            established: Instant::now(),
            role: Role::Initiator,
            keylog: None,
        };
        let limiter = Arc::new(RateLimiter::new(&PublicKey::from(&own), 10));
        EpochTunn::new(&key, epoch as u32, &own, peer, None, limiter)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn peer() -> Peer {
        let pk = PublicKey::from(&StaticSecret::from([9u8; 32]));
        Peer::new(
            pk,
            None,
            Vec::new(),
            None,
            Duration::from_secs(180),
            QkdPolicy::Off,
        )
    }

    #[test]
    fn keeps_current_and_one_previous() {
        let mut p = peer();
        assert!(
            p.sending_tunn().is_none(),
            "fail closed before the first epoch"
        );
        assert!(p.install(tunn(1, 1)).is_empty());
        assert!(p.install(tunn(2, 2)).is_empty());
        let dropped: Vec<u64> = p.install(tunn(3, 3)).iter().map(|t| t.epoch).collect();
        assert_eq!(dropped, vec![1]);
        assert_eq!(p.epochs(), vec![3, 2]);
        // No session anywhere: the newest Tunn queues and starts its handshake.
        assert_eq!(p.sending_tunn().map(|t| t.epoch), Some(3));
        assert_eq!(p.epoch_by_tag(epoch_tag(2)).map(|t| t.epoch()), Some(2));
        assert_eq!(p.expire(3).len(), 2);
        assert!(p.sending_tunn().is_none(), "fail closed after expiry");
    }

    #[test]
    fn refuses_zero_psk() {
        let own = StaticSecret::from([7u8; 32]);
        let key = EpochKey {
            epoch: 1,
            psk: Zeroizing::new([0; 32]),
            sources: SourceMask::BASE,
            qkd_key_ids: Vec::new(),
            established: Instant::now(),
            role: Role::Responder,
            keylog: None,
        };
        let limiter = Arc::new(RateLimiter::new(&PublicKey::from(&own), 10));
        let peer = PublicKey::from(&StaticSecret::from([9u8; 32]));
        assert!(EpochTunn::new(&key, 1, &own, peer, None, limiter).is_err());
    }
}
