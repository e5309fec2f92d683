//! WireGuard-style cookies (docs/PROTOCOL.md, "Cookie reply"): under load a responder does no
//! per-initiation work for a source address until that address proves it can receive
//! datagrams there, by echoing a cookie in mac2. No state is kept per source address.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use chacha20poly1305::aead::{AeadInOut, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::mac::TAG_LEN;
use crate::message::{CookieReply, COOKIE_LEN, COOKIE_NONCE_LEN};
use crate::rng::SecureRng;

/// The cookie secret is replaced this often, so an address's cookie stops working soon.
pub const SECRET_LIFETIME: Duration = Duration::from_secs(120);

/// The responder side: a rotating secret and the PRF from source address to cookie.
pub struct CookieJar {
    secret: Zeroizing<[u8; 32]>,
    created: Instant,
}

impl CookieJar {
    pub fn new(rng: &mut dyn SecureRng, now: Instant) -> Self {
        let mut secret = Zeroizing::new([0u8; 32]);
        rng.fill(secret.as_mut());
        Self {
            secret,
            created: now,
        }
    }

    fn rotate_if_old(&mut self, rng: &mut dyn SecureRng, now: Instant) {
        if now.saturating_duration_since(self.created) >= SECRET_LIFETIME {
            rng.fill(self.secret.as_mut());
            self.created = now;
        }
    }

    /// cookie = HMAC-SHA256(secret, ip || port).
    pub fn cookie_for(
        &mut self,
        rng: &mut dyn SecureRng,
        now: Instant,
        src: SocketAddr,
    ) -> Zeroizing<[u8; COOKIE_LEN]> {
        self.rotate_if_old(rng, now);
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = match <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(self.secret.as_ref()) {
            Ok(m) => m,
            Err(_) => return Zeroizing::new([0u8; COOKIE_LEN]),
        };
        match src {
            SocketAddr::V4(a) => mac.update(&a.ip().octets()),
            SocketAddr::V6(a) => mac.update(&a.ip().octets()),
        }
        mac.update(&src.port().to_be_bytes());
        let mut out = Zeroizing::new([0u8; COOKIE_LEN]);
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }
}

/// Encrypts `cookie` for the initiator; the AAD binds it to the mac1 of the message that
/// triggered it, so a cookie reply cannot be replayed against another initiation.
pub fn seal(
    rng: &mut dyn SecureRng,
    key: &[u8; 32],
    receiver_index: u32,
    trigger_mac1: &[u8; TAG_LEN],
    cookie: &[u8; COOKIE_LEN],
) -> CookieReply {
    let mut nonce = [0u8; COOKIE_NONCE_LEN];
    rng.fill(&mut nonce);
    let mut sealed = [0u8; COOKIE_LEN + TAG_LEN];
    sealed[..COOKIE_LEN].copy_from_slice(cookie);
    let cipher = XChaCha20Poly1305::new(key.into());
    let (body, tag_out) = sealed.split_at_mut(COOKIE_LEN);
    if let Ok(tag) = cipher.encrypt_inout_detached(&XNonce::from(nonce), trigger_mac1, body.into())
    {
        tag_out.copy_from_slice(&tag);
    }
    CookieReply {
        receiver_index,
        nonce,
        sealed_cookie: sealed,
    }
}

/// Decrypts a cookie reply; `None` if it was not made for our message.
pub fn open(
    key: &[u8; 32],
    reply: &CookieReply,
    our_mac1: &[u8; TAG_LEN],
) -> Option<Zeroizing<[u8; COOKIE_LEN]>> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let mut cookie = Zeroizing::new([0u8; COOKIE_LEN]);
    cookie.copy_from_slice(&reply.sealed_cookie[..COOKIE_LEN]);
    let tag = <&[u8; TAG_LEN]>::try_from(&reply.sealed_cookie[COOKIE_LEN..]).ok()?;
    cipher
        .decrypt_inout_detached(
            &XNonce::from(reply.nonce),
            our_mac1,
            cookie.as_mut_slice().into(),
            tag.into(),
        )
        .ok()?;
    Some(cookie)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeededRng;

    #[test]
    fn cookie_depends_on_address_and_rotates() {
        let mut rng = SeededRng::new([1; 32]);
        let t0 = Instant::now();
        let mut jar = CookieJar::new(&mut rng, t0);
        let a: SocketAddr = "192.0.2.1:1000".parse().unwrap();
        let b: SocketAddr = "192.0.2.1:1001".parse().unwrap();
        let ca = *jar.cookie_for(&mut rng, t0, a);
        assert_eq!(ca, *jar.cookie_for(&mut rng, t0, a));
        assert_ne!(ca, *jar.cookie_for(&mut rng, t0, b));
        assert_ne!(ca, *jar.cookie_for(&mut rng, t0 + SECRET_LIFETIME, a));
    }

    #[test]
    fn sealed_cookie_opens_only_with_the_right_mac1() {
        let mut rng = SeededRng::new([2; 32]);
        let key = [3u8; 32];
        let cookie = [4u8; COOKIE_LEN];
        let reply = seal(&mut rng, &key, 9, &[5; 16], &cookie);
        assert_eq!(*open(&key, &reply, &[5; 16]).unwrap(), cookie);
        assert!(open(&key, &reply, &[6; 16]).is_none());
        assert!(open(&[0; 32], &reply, &[5; 16]).is_none());
    }
}
