//! Building and sending our Init, in the version chosen for it (docs/PROTOCOL.md,
//! "Messages", "Version 2: wire privacy", "Versions and the upgrade").

use std::time::Instant;

use boringtun::x25519::{PublicKey, StaticSecret};
use ml_kem::array::Array;
use ml_kem::{DecapsulationKey, KeyExport, MlKem768};
use zeroize::Zeroizing;

use super::hiding::OwnHiding;
use super::initiator::{Initiation, SentInit};
use super::retransmit::Retransmit;
use super::Session;
use crate::event::Destination;
use crate::hide::{self, ExchangeKeys};
use crate::mac;
use crate::message::{self, Init, MLKEM_EK_LEN};
use crate::message_v2::{self, InitPlain};
use crate::schedule::{self, Secret32};
use crate::shared::Shared;
use crate::sources::SourceMask;
use crate::Version;

/// Version 2: what hides our Init and the exchange's keys derived from it.
pub(super) struct OwnExchangeKeys {
    pub k_init: Secret32,
    pub keys: ExchangeKeys,
}

impl Session {
    /// The version our next attempt starts with: the highest we may speak with the peer.
    pub(super) fn init_version(&self) -> Version {
        self.cfg.max_version.min(Version::LATEST)
    }

    /// Whether an unanswered version-2 Init may be replaced by a version-1 one: only while
    /// the peer has never spoken version 2 and version 1 is allowed.
    pub(super) fn may_fall_back_to_v1(&self) -> bool {
        self.cfg.min_version == Version::V1 && self.state.pinned_version < Version::V2.byte()
    }

    /// Sends an Init for the next epoch, keyed with our chain; a bootstrap (epoch 1, C_0)
    /// without one, or when `bootstrap` asks for it over the chain we hold.
    pub(super) fn send_init(
        &mut self,
        sh: &mut Shared,
        now: Instant,
        qkd: Option<(Vec<String>, Zeroizing<Vec<u8>>)>,
        bootstrap: bool,
        version: Version,
    ) {
        let bootstrap = bootstrap || !self.state.has_chain();
        let epoch = if bootstrap { 1 } else { self.state.epoch + 1 };
        let psk = self.psks.for_init();
        let chain = if bootstrap {
            self.psks.get(psk).chain0(version).clone()
        } else {
            Zeroizing::new(self.state.chain)
        };
        let s_init = sh.static_public;
        let auth = schedule::auth_keys_with(
            version.labels(),
            &chain,
            &self.ss_static,
            self.bootstrap_psk(psk),
            &s_init,
            &self.peer_public,
        );
        let mut e_bytes = Zeroizing::new([0u8; 32]);
        sh.rng.fill(e_bytes.as_mut());
        let e_secret = StaticSecret::from(*e_bytes);
        let e_init = *PublicKey::from(&e_secret).as_bytes();
        let mut seed = Zeroizing::new(Array::from([0u8; 64]));
        sh.rng.fill(seed.as_mut_slice());
        let dk = DecapsulationKey::<MlKem768>::from_seed(*seed);
        let mut ek = Box::new([0u8; MLKEM_EK_LEN]);
        ek.copy_from_slice(&dk.encapsulation_key().to_bytes());
        let (key_ids, k_q, proposed) = match qkd {
            Some((ids, key)) => (ids, key, SourceMask::ALL),
            None => (Vec::new(), Zeroizing::new(Vec::new()), SourceMask::BASE),
        };
        // Strictly above the last Init we sent, even if the wall clock went back: the
        // peer's replay check must never reject our next Init. Persisted before sending.
        let timestamp = sh.timestamp(now).max(self.state.last_init_sent_ts + 1);
        self.state.last_init_sent_ts = timestamp;
        self.persist(sh);
        let mut init = Init {
            proposed,
            sender_index: sh.next_index(),
            epoch,
            timestamp,
            s_init,
            e_init,
            ek,
            key_ids,
            auth: [0; 16],
            mac1: [0; 16],
            mac2: [0; 16],
        };
        let (bytes, hidden) = match version {
            Version::V1 => (self.init_v1(&mut init, &auth.i2r), None),
            Version::V2 => {
                let h = self.own_hiding(sh, bootstrap, &chain, psk, &e_secret, timestamp);
                let bytes = init_v2(&mut init, &auth.i2r, &h);
                let keys = ExchangeKeys::new(&h.k_init);
                let own = OwnExchangeKeys {
                    k_init: h.k_init,
                    keys,
                };
                (bytes, Some(Box::new(own)))
            }
        };
        tracing::debug!(peer = %self.short, epoch, sources = %proposed, bootstrap, %version, "sending keymix init");
        sh.send(Destination::Peer(self.id), bytes.clone());
        self.initiating = Some(Initiation::Sent(Box::new(SentInit {
            version,
            hidden,
            chain,
            bootstrap,
            psk,
            psk_switched: false,
            version_switched: false,
            fallback: false,
            unsent: false,
            auth,
            init,
            bytes,
            e_secret,
            dk,
            k_q,
            cookie: None,
            started: now,
            keyed_at: now,
            retransmit: Retransmit::new(now),
        })));
    }

    fn init_v1(&self, init: &mut Init, auth_key: &[u8; 32]) -> Vec<u8> {
        let mut bytes = init.to_bytes();
        let off = Init::auth_offset(&bytes);
        init.auth = mac::tag(auth_key, &bytes[..off]);
        bytes[off..off + 16].copy_from_slice(&init.auth);
        let off = Init::mac1_offset(&bytes);
        init.mac1 = mac::tag(&self.mac1_key_peer(Version::V1), &bytes[..off]);
        bytes[off..off + 16].copy_from_slice(&init.mac1);
        bytes
    }
}

/// A version-2 Init: the pseudonym, the clear fields, the sealed plaintext, then auth,
/// mac1 and mac2.
fn init_v2(init: &mut Init, auth_key: &[u8; 32], h: &OwnHiding) -> Vec<u8> {
    let mut b = Vec::with_capacity(message_v2::INIT_LEN);
    b.extend_from_slice(&[message::TYPE_INIT, message_v2::VERSION, 0, 0]);
    b.extend_from_slice(&h.pseudonym);
    b.extend_from_slice(&init.sender_index.to_le_bytes());
    b.extend_from_slice(&init.e_init);
    b.extend_from_slice(&init.ek[..]);
    let plain = InitPlain {
        s_init: init.s_init,
        epoch: init.epoch,
        timestamp: init.timestamp,
        proposed: init.proposed,
        key_ids: init.key_ids.clone(),
    }
    .encode();
    let sealed = hide::seal(&h.k_init, &plain, &b);
    b.extend_from_slice(&sealed);
    init.auth = mac::tag(auth_key, &b);
    b.extend_from_slice(&init.auth);
    init.mac1 = mac::tag(&h.mac1_key, &b);
    b.extend_from_slice(&init.mac1);
    // Without a cookie, mac2 is a tag under the exchange's K_mac1x: it differs in every
    // Init (a constant would link them) and the responder still checks every byte.
    init.mac2 = mac::tag(&ExchangeKeys::new(&h.k_init).mac1, &b);
    b.extend_from_slice(&init.mac2);
    debug_assert_eq!(b.len(), message_v2::INIT_LEN);
    b
}
