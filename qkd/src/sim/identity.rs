//! Who is on the other end of a mutually authenticated TLS connection: the subject CN of the
//! certificate that rustls already verified against our CA.

use rustls::pki_types::CertificateDer;
use x509_cert::der::Decode as _;
use x509_cert::Certificate;

/// Longest identity we accept; SAE and KME IDs are short.
const MAX_IDENTITY_LEN: usize = 64;

/// The subject CN of the peer's end-entity certificate, if it has a usable one.
pub fn peer_identity(certs: Option<&[CertificateDer<'_>]>) -> Option<String> {
    let leaf = certs?.first()?;
    let cert = Certificate::from_der(leaf.as_ref()).ok()?;
    let cn = cert.tbs_certificate().subject().common_name().ok()??;
    let cn = cn.value();
    let usable =
        !cn.is_empty() && cn.len() <= MAX_IDENTITY_LEN && cn.chars().all(|c| c.is_ascii_graphic());
    usable.then(|| cn.into_owned())
}
