//! Version 2's Init (docs/PROTOCOL.md, "Processing order (version 2)"): the pseudonym
//! names the peer and the chain key (one hash lookup); without a match only a bootstrap
//! without PSK remains, on the DH path. mac1 and the cookie come before any public-key
//! work; the sealed fields open under K_init, and only then is the peer's static key known.

use std::net::SocketAddr;
use std::time::Instant;

use boringtun::x25519::PublicKey;
use sha2::{Digest, Sha256};

use super::dispatch_v1::CookieCheck;
use super::Endpoint;
use crate::counters::DropReason;
use crate::event::PeerId;
use crate::frame::{Hidden, InitFrame, Named};
use crate::hide;
use crate::mac;
use crate::message_v2::{self, InitPlain, InitV2};
use crate::session::Slot;
use crate::Version;

impl Endpoint {
    pub(super) fn on_init_v2(
        &mut self,
        now: Instant,
        src: SocketAddr,
        datagram: &[u8],
    ) -> Result<Option<PeerId>, DropReason> {
        use message_v2::init;
        let wire = InitV2::parse(datagram).map_err(|_| DropReason::Malformed)?;
        let mac1_covered = datagram.get(..init::MAC1).ok_or(DropReason::Malformed)?;
        let named = self.tables.pseudonym(&wire.pseudonym);
        // 1. mac1: under the named chain key's K_mac1, or (DH path) our public mac1 key.
        match named {
            Some((peer, slot)) => {
                let prk = self
                    .sessions
                    .get(peer)
                    .and_then(Option::as_ref)
                    .and_then(|s| s.hide_prk(slot))
                    .ok_or(DropReason::BadMac1)?;
                if !mac::verify(&prk.mac1_key(), mac1_covered, &wire.mac1) {
                    return Err(DropReason::BadMac1);
                }
            }
            None => self.check_mac1(Version::V2, mac1_covered, &wire.mac1)?,
        }
        // 2. The cookie under load, before any public-key work.
        self.check_cookie(
            now,
            src,
            Version::V2,
            CookieCheck {
                covered: datagram.get(..init::MAC2).ok_or(DropReason::Malformed)?,
                mac1: &wire.mac1,
                mac2: &wire.mac2,
                sender_index: wire.sender_index,
            },
        )?;
        // 3. K_init: from the named chain key, or the DH with our static key.
        let (k_init, named) = match named {
            Some((peer, slot @ Slot::Chain(..))) => {
                let k = self
                    .sessions
                    .get(peer)
                    .and_then(Option::as_ref)
                    .and_then(|s| s.hide_prk(slot))
                    .map(|prk| prk.init_key(&wire.e_init))
                    .ok_or(DropReason::BadAuth)?;
                (k, Some((peer, slot)))
            }
            Some((peer, slot @ Slot::Boot(psk))) => {
                let s = self
                    .sessions
                    .get(peer)
                    .and_then(Option::as_ref)
                    .ok_or(DropReason::UnknownPeer)?;
                (
                    s.boot_init_key(&self.shared, psk, &wire.e_init)?,
                    Some((peer, slot)),
                )
            }
            None => {
                let dh = self
                    .shared
                    .static_secret
                    .diffie_hellman(&PublicKey::from(wire.e_init));
                if !dh.was_contributory() {
                    return Err(DropReason::BadKey);
                }
                let k = hide::boot_init_key(
                    &self.public_chain0_v2,
                    dh.as_bytes(),
                    &wire.e_init,
                    &self.shared.static_public,
                );
                (k, None)
            }
        };
        let hidden_keys = crate::hide::ExchangeKeys::new(&k_init);
        self.check_mac2_v2(
            now,
            src,
            &hidden_keys.mac1,
            datagram.get(..init::MAC2).ok_or(DropReason::Malformed)?,
            &wire.mac2,
        )?;
        // 4. Open the hidden fields; only now is the initiator's static key known.
        let aad = InitV2::aad(datagram);
        let plain = hide::open(&k_init, &wire.sealed[..], aad).ok_or(DropReason::BadAuth)?;
        let plain = InitPlain::decode(&plain).map_err(|_| DropReason::Malformed)?;
        let peer = self
            .tables
            .peer_by_static(&plain.s_init)
            .ok_or(DropReason::UnknownPeer)?;
        let named = match named {
            Some((p, _)) if p != peer => return Err(DropReason::UnknownPeer),
            Some((_, slot)) => Named::Slot(slot),
            None => Named::StaticOnlyBootstrap,
        };
        let authenticated = datagram.get(..init::MAC1).ok_or(DropReason::Malformed)?;
        let auth_covered = datagram.get(..init::AUTH).ok_or(DropReason::Malformed)?;
        let frame = InitFrame {
            version: Version::V2,
            init: plain.into_init(&wire),
            auth_covered,
            init_hash: Sha256::digest(authenticated).into(),
            hidden: Some(Hidden::new(k_init, named)),
        };
        self.deliver_init(now, src, peer, frame)
    }
}
