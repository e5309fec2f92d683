//! SKIP's pre-shared-key mode on OpenSSL: TLS 1.3 with an external PSK and
//! TLS_AES_256_GCM_SHA384 (the draft's required suite), or TLS 1.2 DHE-PSK
//! (TLS_DHE_PSK_WITH_AES_256_CBC_SHA384 / _SHA) for Key Providers that only do that.
//!
//! Why OpenSSL here and rustls everywhere else: rustls has no external-PSK support. OpenSSL
//! is the one maintained TLS library reachable from Rust that does both TLS 1.3 external
//! PSKs and TLS 1.2 DHE-PSK, and it comes from the distribution's libssl (security updates
//! through the OS). It is used for this mode alone, and only from this crate: keymix and the
//! tunnel never see it. Both modes keep a Diffie-Hellman exchange under the PSK (psk_dhe_ke,
//! DHE-PSK), so a PSK leaked later does not open recorded sessions.

use openssl::error::ErrorStack;
use openssl::ssl::{
    SslContext, SslContextBuilder, SslMethod, SslOptions, SslSessionCacheMode, SslVerifyMode,
    SslVersion,
};
use zeroize::Zeroizing;

use super::psk_ffi;

/// The TLS 1.2 suites of the draft's PSK mode, strongest first.
const TLS12_PSK_CIPHERS: &str = "DHE-PSK-AES256-CBC-SHA384:DHE-PSK-AES256-CBC-SHA";
const TLS13_SUITE: &str = "TLS_AES_256_GCM_SHA384";
/// Bounds of a PSK identity (RFC 4279 allows 2^16 - 1; KPs use short names) and key. 64
/// bytes is OpenSSL's limit for a TLS 1.3 session master key in older 3.x releases.
pub const MAX_PSK_IDENTITY_LEN: usize = 128;
pub const MIN_PSK_LEN: usize = 16;
pub const MAX_PSK_LEN: usize = 64;

/// Which TLS version the PSK mode speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PskTlsVersion {
    /// TLS 1.3, external PSK with (EC)DHE, TLS_AES_256_GCM_SHA384.
    Tls13,
    /// TLS 1.2, DHE-PSK with AES-256-CBC.
    Tls12,
}

/// A PSK identity and key; the key is wiped on drop and never printed.
pub struct PskMaterial {
    pub identity: Vec<u8>,
    pub key: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for PskMaterial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PskMaterial")
            .field("identity", &String::from_utf8_lossy(&self.identity))
            .field("key", &format_args!("<{} bytes redacted>", self.key.len()))
            .finish()
    }
}

impl PskMaterial {
    /// Checks the bounds: a printable identity of 1..=128 bytes, a key of 16..=64 bytes.
    pub fn new(identity: Vec<u8>, key: Zeroizing<Vec<u8>>) -> Result<Self, String> {
        if identity.is_empty()
            || identity.len() > MAX_PSK_IDENTITY_LEN
            || !identity.iter().all(u8::is_ascii_graphic)
        {
            return Err(format!(
                "PSK identity must be 1 to {MAX_PSK_IDENTITY_LEN} printable ASCII characters"
            ));
        }
        if !(MIN_PSK_LEN..=MAX_PSK_LEN).contains(&key.len()) {
            return Err(format!(
                "PSK must be {MIN_PSK_LEN} to {MAX_PSK_LEN} bytes, not {}",
                key.len()
            ));
        }
        Ok(Self { identity, key })
    }

    /// From the contents of an identity file (text) and a PSK file (hex), surrounding
    /// whitespace ignored: the form `openssl s_server -psk` and most KPs use.
    pub fn from_files(identity: &[u8], key_hex: &[u8]) -> Result<Self, String> {
        let identity = identity.trim_ascii().to_vec();
        let hex_text = key_hex.trim_ascii();
        if !hex_text.len().is_multiple_of(2) {
            return Err("PSK file does not hold hex (odd number of digits)".into());
        }
        let mut key = Zeroizing::new(vec![0u8; hex_text.len() / 2]);
        hex::decode_to_slice(hex_text, &mut key)
            .map_err(|_| "PSK file does not hold hex".to_owned())?;
        Self::new(identity, key)
    }

    fn copy(&self) -> Self {
        Self {
            identity: self.identity.clone(),
            key: self.key.clone(),
        }
    }
}

fn base(method: SslMethod) -> Result<SslContextBuilder, ErrorStack> {
    let mut b = SslContext::builder(method)?;
    // No tickets, no cache: every connection authenticates with the PSK itself.
    b.set_options(SslOptions::NO_TICKET);
    b.set_session_cache_mode(SslSessionCacheMode::OFF);
    Ok(b)
}

/// The client context for `version`.
pub fn client_context(
    material: &PskMaterial,
    version: PskTlsVersion,
) -> Result<SslContext, ErrorStack> {
    let mut b = base(SslMethod::tls_client())?;
    // No certificate is ever accepted: the trust store is empty, so a server that ignores
    // the PSK and sends a certificate instead fails verification.
    b.set_verify(SslVerifyMode::PEER);
    match version {
        PskTlsVersion::Tls13 => {
            b.set_min_proto_version(Some(SslVersion::TLS1_3))?;
            b.set_max_proto_version(Some(SslVersion::TLS1_3))?;
            b.set_ciphersuites(TLS13_SUITE)?;
            psk_ffi::set_use_session_callback(&mut b);
        }
        PskTlsVersion::Tls12 => {
            b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
            b.set_max_proto_version(Some(SslVersion::TLS1_2))?;
            b.set_cipher_list(TLS12_PSK_CIPHERS)?;
            let m = material.copy();
            b.set_psk_client_callback(move |_ssl, _hint, identity_out, psk_out| {
                write_psk(&m, identity_out, psk_out, true)
            });
        }
    }
    psk_ffi::attach(&mut b, material.copy())?;
    Ok(b.build())
}

/// The server context (the simulator's KP): TLS 1.3 with the PSK, or TLS 1.2 DHE-PSK,
/// whichever the client offers; no certificate.
pub fn server_context(material: &PskMaterial) -> Result<SslContext, ErrorStack> {
    let mut b = base(SslMethod::tls_server())?;
    b.set_min_proto_version(Some(SslVersion::TLS1_2))?;
    b.set_max_proto_version(Some(SslVersion::TLS1_3))?;
    b.set_ciphersuites(TLS13_SUITE)?;
    b.set_cipher_list(TLS12_PSK_CIPHERS)?;
    psk_ffi::set_dh_auto(&mut b)?;
    psk_ffi::set_find_session_callback(&mut b);
    let m = material.copy();
    b.set_psk_server_callback(move |_ssl, identity, psk_out| {
        if identity != Some(m.identity.as_slice()) {
            return Ok(0); // unknown identity: the handshake fails
        }
        write_psk(&m, &mut [], psk_out, false)
    });
    psk_ffi::attach(&mut b, material.copy())?;
    Ok(b.build())
}

/// Fills OpenSSL's buffers for the TLS 1.2 callbacks; returns the PSK length (0: none).
fn write_psk(
    m: &PskMaterial,
    identity_out: &mut [u8],
    psk_out: &mut [u8],
    with_identity: bool,
) -> Result<usize, ErrorStack> {
    if with_identity {
        // NUL-terminated, as OpenSSL reads it.
        let Some(dst) = identity_out.get_mut(..m.identity.len() + 1) else {
            return Ok(0);
        };
        let (text, nul) = dst.split_at_mut(m.identity.len());
        text.copy_from_slice(&m.identity);
        nul.fill(0);
    }
    let Some(dst) = psk_out.get_mut(..m.key.len()) else {
        return Ok(0);
    };
    dst.copy_from_slice(&m.key);
    Ok(m.key.len())
}
