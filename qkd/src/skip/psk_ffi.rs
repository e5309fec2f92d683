//! The few OpenSSL calls for TLS 1.3 external PSKs that the `openssl` crate does not wrap.
//!
//! OpenSSL's TLS 1.3 PSK API is session based: the client's "use session" callback and the
//! server's "find session" callback each hand OpenSSL an `SSL_SESSION` holding the PSK as
//! its master key, the cipher suite (whose hash the PSK binds to) and the version. The
//! older PSK callback, which the crate does wrap, works in TLS 1.3 only with SHA-256 suites,
//! while SKIP requires TLS_AES_256_GCM_SHA384. So this file declares the functions (all in
//! libssl since 1.1.1, which openssl-sys already links) and implements the two callbacks.
//!
//! Ownership, per OpenSSL's documentation and source: a session returned through `*sess`
//! belongs to OpenSSL from then on; the client's identity pointer is copied at once. The
//! PSK material itself lives in the `SSL_CTX`'s ex-data, which outlives every `SSL` made
//! from that context. The callbacks never unwind into C (nothing in them can panic, and a
//! panic would be caught and turned into a failed handshake).

#![allow(unsafe_code)] // FFI: the only unsafe code of this crate, kept in this file.

use std::os::raw::{c_int, c_long, c_uchar};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::OnceLock;

use foreign_types::ForeignTypeRef as _;
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::ssl::{SslContext, SslContextBuilder, SslContextRef};
use openssl_sys::{EVP_MD, SSL, SSL_CIPHER, SSL_CTX, SSL_SESSION};

use super::psk::PskMaterial;

type UseSessionCb = unsafe extern "C" fn(
    *mut SSL,
    *const EVP_MD,
    *mut *const c_uchar,
    *mut usize,
    *mut *mut SSL_SESSION,
) -> c_int;
type FindSessionCb =
    unsafe extern "C" fn(*mut SSL, *const c_uchar, usize, *mut *mut SSL_SESSION) -> c_int;

extern "C" {
    fn SSL_CTX_set_psk_use_session_callback(ctx: *mut SSL_CTX, cb: Option<UseSessionCb>);
    fn SSL_CTX_set_psk_find_session_callback(ctx: *mut SSL_CTX, cb: Option<FindSessionCb>);
    fn SSL_SESSION_new() -> *mut SSL_SESSION;
    fn SSL_SESSION_set1_master_key(s: *mut SSL_SESSION, key: *const c_uchar, len: usize) -> c_int;
    fn SSL_SESSION_set_cipher(s: *mut SSL_SESSION, cipher: *const SSL_CIPHER) -> c_int;
    fn SSL_SESSION_set_protocol_version(s: *mut SSL_SESSION, version: c_int) -> c_int;
    fn SSL_CIPHER_find(ssl: *mut SSL, ptr: *const c_uchar) -> *const SSL_CIPHER;
}

/// TLS_AES_256_GCM_SHA384 (RFC 8446 B.4): the suite SKIP requires, and the hash the PSK
/// binder uses.
const TLS_AES_256_GCM_SHA384: [c_uchar; 2] = [0x13, 0x02];
const TLS1_3_VERSION: c_int = 0x0304;
/// `SSL_CTRL_SET_DH_AUTO` (ssl.h): let OpenSSL pick DH parameters matching the security
/// level (RFC 7919 groups), for the DHE-PSK suites of TLS 1.2.
const SSL_CTRL_SET_DH_AUTO: c_int = 118;

/// Where each PSK context keeps its material.
fn index() -> Result<Index<SslContext, PskMaterial>, ErrorStack> {
    static INDEX: OnceLock<Index<SslContext, PskMaterial>> = OnceLock::new();
    if let Some(index) = INDEX.get() {
        return Ok(*index);
    }
    let index = SslContext::new_ex_index::<PskMaterial>()?;
    Ok(*INDEX.get_or_init(|| index))
}

/// Stores `material` in the context for the callbacks below.
pub(super) fn attach(
    builder: &mut SslContextBuilder,
    material: PskMaterial,
) -> Result<(), ErrorStack> {
    builder.set_ex_data(index()?, material);
    Ok(())
}

/// Client side: offer the context's PSK in every TLS 1.3 handshake.
pub(super) fn set_use_session_callback(builder: &mut SslContextBuilder) {
    // SAFETY: the builder owns a valid SSL_CTX; the callback has the documented signature.
    unsafe { SSL_CTX_set_psk_use_session_callback(builder.as_ptr(), Some(use_session)) }
}

/// Server side: accept the context's PSK identity in TLS 1.3 handshakes.
pub(super) fn set_find_session_callback(builder: &mut SslContextBuilder) {
    // SAFETY: as above.
    unsafe { SSL_CTX_set_psk_find_session_callback(builder.as_ptr(), Some(find_session)) }
}

/// Server side: DH parameters chosen by OpenSSL, for TLS 1.2 DHE-PSK.
pub(super) fn set_dh_auto(builder: &mut SslContextBuilder) -> Result<(), ErrorStack> {
    // SAFETY: SSL_CTX_ctrl with SET_DH_AUTO takes a long flag and no pointer argument.
    let ok = unsafe {
        openssl_sys::SSL_CTX_ctrl(
            builder.as_ptr(),
            SSL_CTRL_SET_DH_AUTO,
            1 as c_long,
            ptr::null_mut(),
        )
    };
    if ok == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// The PSK material of the context `ssl` was made from.
///
/// SAFETY: `ssl` must be a live SSL handed to a callback by OpenSSL.
unsafe fn material<'a>(ssl: *mut SSL) -> Option<&'a PskMaterial> {
    let ctx = openssl_sys::SSL_get_SSL_CTX(ssl);
    if ctx.is_null() {
        return None;
    }
    // The context outlives the connection's handshake, in which the callbacks run.
    SslContextRef::from_ptr(ctx).ex_data(index().ok()?)
}

/// A TLS 1.3 session whose master key is the PSK, for the SHA-384 suite; null on failure.
///
/// SAFETY: `ssl` must be a live SSL handed to a callback by OpenSSL.
unsafe fn psk_session(ssl: *mut SSL, key: &[u8]) -> *mut SSL_SESSION {
    let cipher = SSL_CIPHER_find(ssl, TLS_AES_256_GCM_SHA384.as_ptr());
    if cipher.is_null() {
        return ptr::null_mut();
    }
    let session = SSL_SESSION_new();
    if session.is_null() {
        return ptr::null_mut();
    }
    let ok = SSL_SESSION_set1_master_key(session, key.as_ptr(), key.len()) == 1
        && SSL_SESSION_set_cipher(session, cipher) == 1
        && SSL_SESSION_set_protocol_version(session, TLS1_3_VERSION) == 1;
    if ok {
        session
    } else {
        // SSL_SESSION_free cleanses the master key.
        openssl_sys::SSL_SESSION_free(session);
        ptr::null_mut()
    }
}

unsafe extern "C" fn use_session(
    ssl: *mut SSL,
    _md: *const EVP_MD,
    id: *mut *const c_uchar,
    idlen: *mut usize,
    sess: *mut *mut SSL_SESSION,
) -> c_int {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: OpenSSL passes a live SSL and valid out-pointers.
        unsafe {
            let Some(m) = material(ssl) else { return 0 };
            let session = psk_session(ssl, &m.key);
            if session.is_null() {
                return 0;
            }
            // Copied by OpenSSL before this callback's caller returns.
            *id = m.identity.as_ptr();
            *idlen = m.identity.len();
            *sess = session;
            1
        }
    }));
    result.unwrap_or(0)
}

unsafe extern "C" fn find_session(
    ssl: *mut SSL,
    identity: *const c_uchar,
    identity_len: usize,
    sess: *mut *mut SSL_SESSION,
) -> c_int {
    let result = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: OpenSSL passes a live SSL, `identity_len` readable bytes at `identity`
        // and a valid out-pointer.
        unsafe {
            *sess = ptr::null_mut();
            let Some(m) = material(ssl) else { return 0 };
            if identity.is_null() {
                return 1; // no PSK: the handshake fails for want of a certificate
            }
            let offered = std::slice::from_raw_parts(identity, identity_len);
            if offered != m.identity.as_slice() {
                // An unknown identity is "no PSK found", not an internal error.
                return 1;
            }
            let session = psk_session(ssl, &m.key);
            if session.is_null() {
                return 0;
            }
            *sess = session;
            1
        }
    }));
    result.unwrap_or(0)
}
