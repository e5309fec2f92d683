//! Version 1's Init, and the Resp, Confirm and cookie reply of either version: parse, the
//! checks that need only our own keys (mac1, the cookie under load), then the peer's
//! session, found by a hash lookup.

use std::net::SocketAddr;
use std::time::Instant;

use sha2::{Digest, Sha256};

use super::Endpoint;
use crate::cookie;
use crate::counters::DropReason;
use crate::event::{Destination, PeerId};
use crate::frame::InitFrame;
use crate::mac;
use crate::message::{Confirm, CookieReply, Init, Resp};
use crate::message_v2::{self, ConfirmV2, RespV2};
use crate::Version;

impl Endpoint {
    pub(super) fn check_mac1(
        &self,
        version: Version,
        covered: &[u8],
        tag: &[u8; 16],
    ) -> Result<(), DropReason> {
        let key = &self.mac1_keys[usize::from(version.byte() - 1)];
        if mac::verify(key, covered, tag) {
            Ok(())
        } else {
            Err(DropReason::BadMac1)
        }
    }

    /// Under load (or, in version 1, whenever mac2 is set) an Init must carry a valid
    /// cookie for its source; else a cookie reply goes back and the Init is dropped. No
    /// state is kept per source.
    /// Version 2 without load: mac2 is the tag under the exchange's K_mac1x, or (an
    /// initiator that still holds our cookie) the cookie's.
    pub(super) fn check_mac2_v2(
        &mut self,
        now: Instant,
        src: SocketAddr,
        k_mac1x: &[u8; 32],
        covered: &[u8],
        mac2: &[u8; 16],
    ) -> Result<(), DropReason> {
        if self.cookie_checked || mac::verify(k_mac1x, covered, mac2) {
            return Ok(());
        }
        let c = self.cookies.cookie_for(self.shared.rng.as_mut(), now, src);
        if mac::verify(&c, covered, mac2) {
            Ok(())
        } else {
            Err(DropReason::BadMac2)
        }
    }

    pub(super) fn check_cookie(
        &mut self,
        now: Instant,
        src: SocketAddr,
        version: Version,
        msg: CookieCheck<'_>,
    ) -> Result<(), DropReason> {
        let under_load = self.load.record_and_check(now);
        // Version 2's mac2 is never zero; without load it is checked later, once the
        // exchange key it may be made with is known (`check_mac2_v2`).
        let checked = under_load || (version == Version::V1 && msg.mac2 != &[0u8; 16]);
        if !checked {
            return Ok(());
        }
        let c = self.cookies.cookie_for(self.shared.rng.as_mut(), now, src);
        if mac::verify(&c, msg.covered, msg.mac2) {
            self.cookie_checked = true;
            return Ok(());
        }
        let key = &self.cookie_keys[usize::from(version.byte() - 1)];
        let reply = cookie::seal(
            self.shared.rng.as_mut(),
            key,
            msg.sender_index,
            msg.mac1,
            &c,
        );
        let bytes = match version {
            Version::V1 => reply.to_bytes(),
            Version::V2 => message_v2::cookie_reply_bytes(&reply),
        };
        self.shared.send(Destination::Addr(src), bytes);
        Err(if under_load {
            DropReason::CookieSent
        } else {
            DropReason::BadMac2
        })
    }

    pub(super) fn on_init_v1(
        &mut self,
        now: Instant,
        src: SocketAddr,
        datagram: &[u8],
    ) -> Result<Option<PeerId>, DropReason> {
        let init = Init::parse(datagram).map_err(|_| DropReason::Malformed)?;
        self.check_mac1(
            Version::V1,
            &datagram[..Init::mac1_offset(datagram)],
            &init.mac1,
        )?;
        self.check_cookie(
            now,
            src,
            Version::V1,
            CookieCheck {
                covered: &datagram[..Init::mac2_offset(datagram)],
                mac1: &init.mac1,
                mac2: &init.mac2,
                sender_index: init.sender_index,
            },
        )?;
        let peer = self
            .tables
            .peer_by_static(&init.s_init)
            .ok_or(DropReason::UnknownPeer)?;
        let auth_off = Init::auth_offset(datagram);
        let authenticated = datagram.get(..auth_off + 16).ok_or(DropReason::Malformed)?;
        let frame = InitFrame {
            version: Version::V1,
            init_hash: Sha256::digest(authenticated).into(),
            auth_covered: &datagram[..auth_off],
            init,
            hidden: None,
        };
        self.deliver_init(now, src, peer, frame)
    }

    /// Hands an Init to its peer's session. An accepted Init answers at its source but does
    /// not move a known endpoint: until its timestamp is recorded it can be replayed from
    /// anywhere. It teaches an address only to a side that has none (a hub without the
    /// spoke's endpoint).
    pub(super) fn deliver_init(
        &mut self,
        now: Instant,
        src: SocketAddr,
        peer: PeerId,
        frame: InitFrame<'_>,
    ) -> Result<Option<PeerId>, DropReason> {
        let session = self
            .sessions
            .get_mut(peer)
            .and_then(Option::as_mut)
            .ok_or(DropReason::UnknownPeer)?;
        self.touched = Some(peer);
        let learn = !session.is_reachable();
        session.handle_init(&mut self.shared, now, src, frame)?;
        Ok(learn.then_some(peer))
    }

    pub(super) fn on_resp(
        &mut self,
        now: Instant,
        version: Version,
        datagram: &[u8],
    ) -> Result<Option<PeerId>, DropReason> {
        let receiver_index = match version {
            Version::V1 => {
                let resp = Resp::parse(datagram).map_err(|_| DropReason::Malformed)?;
                self.check_mac1(version, &datagram[..Resp::MAC1_OFFSET], &resp.mac1)?;
                resp.receiver_index
            }
            // Its mac1 is under the exchange's key: the session checks it.
            Version::V2 => {
                RespV2::parse(datagram)
                    .map_err(|_| DropReason::Malformed)?
                    .receiver_index
            }
        };
        let hash: [u8; 32] = Sha256::digest(datagram).into();
        let peer = self.session_for_index(receiver_index)?;
        if let Some(s) = self.sessions.get_mut(peer).and_then(Option::as_mut) {
            s.handle_resp(&mut self.shared, now, version, datagram, &hash)?;
        }
        Ok(Some(peer))
    }

    pub(super) fn on_confirm(
        &mut self,
        now: Instant,
        version: Version,
        datagram: &[u8],
    ) -> Result<Option<PeerId>, DropReason> {
        let receiver_index = match version {
            Version::V1 => {
                let c = Confirm::parse(datagram).map_err(|_| DropReason::Malformed)?;
                self.check_mac1(version, &datagram[..Confirm::MAC1_OFFSET], &c.mac1)?;
                c.receiver_index
            }
            Version::V2 => {
                ConfirmV2::parse(datagram)
                    .map_err(|_| DropReason::Malformed)?
                    .receiver_index
            }
        };
        let peer = self.session_for_index(receiver_index)?;
        if let Some(s) = self.sessions.get_mut(peer).and_then(Option::as_mut) {
            s.handle_confirm(&mut self.shared, now, version, datagram)?;
        }
        Ok(Some(peer))
    }

    pub(super) fn on_cookie(
        &mut self,
        version: Version,
        datagram: &[u8],
    ) -> Result<Option<PeerId>, DropReason> {
        let reply = match version {
            Version::V1 => CookieReply::parse(datagram),
            Version::V2 => message_v2::parse_cookie_reply(datagram),
        }
        .map_err(|_| DropReason::Malformed)?;
        let peer = self.session_for_index(reply.receiver_index)?;
        let opened = self
            .sessions
            .get_mut(peer)
            .and_then(Option::as_mut)
            .is_some_and(|s| s.handle_cookie(version, &reply));
        if opened {
            Ok(None)
        } else {
            Err(DropReason::BadMac2)
        }
    }

    /// The peer whose live exchange has this index (marked as touched).
    fn session_for_index(&mut self, index: u32) -> Result<PeerId, DropReason> {
        let peer = self
            .tables
            .peer_by_index(index)
            .ok_or(DropReason::UnknownIndex)?;
        self.touched = Some(peer);
        Ok(peer)
    }
}

/// What the cookie check of an Init looks at.
pub(super) struct CookieCheck<'a> {
    pub covered: &'a [u8],
    pub mac1: &'a [u8; 16],
    pub mac2: &'a [u8; 16],
    pub sender_index: u32,
}
