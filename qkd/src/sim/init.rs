//! `kme-sim init`: a directory with everything two simulated KMEs and their SAEs need.
//!
//! Two CAs are made. `ca.pem` signs the KMEs' HTTPS server certificates and the SAEs' client
//! certificates (CN = SAE ID, which is how a KME tells SAEs apart); its key `ca.key` is kept
//! so more SAE certificates can be issued later ([`issue_sae_cert`]). `link-ca.pem` signs only
//! the two KMEs' link certificates (CN = KME ID); its key is discarded, so nothing issued
//! later can join the key link.
//!
//! SKIP: each KME also serves SKIP next to its ETSI 014 port ([`SKIP_PORT_OFFSET`],
//! [`SKIP_PSK_PORT_OFFSET`]); the PSK of its PSK mode is `SAE.skip-psk` (hex) with the
//! identity in `SAE.skip-psk-id` (the SAE ID), both 0600, for the encryptor to use too.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use zeroize::Zeroizing;

use super::config::{check_id, KmeConfig};
use super::error::SimError;

pub const DEFAULT_LISTEN_A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8443);
pub const DEFAULT_LISTEN_B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8444);
pub const DEFAULT_LINK_A: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8445);
pub const DEFAULT_LINK_B: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8446);

/// Where a KME serves SKIP, relative to its ETSI 014 port: +100 in certificate mode, +200
/// in PSK mode (8543/8643 and 8544/8644 with the defaults).
pub const SKIP_PORT_OFFSET: u16 = 100;
pub const SKIP_PSK_PORT_OFFSET: u16 = 200;

pub const KME_A_ID: &str = "KME_A";
pub const KME_B_ID: &str = "KME_B";

const CA_CN: &str = "Trident KME simulator SAE CA";
const LINK_CA_CN: &str = "Trident KME simulator link CA";
/// File stems `init` uses itself; an SAE ID must not collide with them.
const RESERVED_STEMS: &[&str] = &[
    "ca",
    "link-ca",
    "kme-a",
    "kme-b",
    "kme-a-link",
    "kme-b-link",
];

/// What `init` wrote (all paths inside the setup directory).
#[derive(Debug, Clone)]
pub struct InitOutput {
    pub config_a: PathBuf,
    pub config_b: PathBuf,
    pub ca_file: PathBuf,
    pub sae_a: SaeFiles,
    pub sae_b: SaeFiles,
}

/// An SAE's client certificate and key.
#[derive(Debug, Clone)]
pub struct SaeFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Create the setup in `dir` (made if missing): CAs, certificates and `kme-a.toml` /
/// `kme-b.toml`. KME A serves `sae_a` on `listen_a` and links on `link_a`; KME B likewise.
/// Refuses to overwrite any existing file.
pub fn init(
    dir: &Path,
    sae_a: &str,
    sae_b: &str,
    listen_a: SocketAddr,
    listen_b: SocketAddr,
    link_a: SocketAddr,
    link_b: SocketAddr,
) -> Result<InitOutput, SimError> {
    for sae in [sae_a, sae_b] {
        check_sae_id(sae)?;
    }
    if sae_a == sae_b {
        return Err(SimError::Setup("the two SAE IDs must differ".into()));
    }
    let mut planned: Vec<PathBuf> = [
        "ca.pem",
        "ca.key",
        "link-ca.pem",
        "kme-a.pem",
        "kme-a.key",
        "kme-b.pem",
        "kme-b.key",
        "kme-a-link.pem",
        "kme-a-link.key",
        "kme-b-link.pem",
        "kme-b-link.key",
        "kme-a.toml",
        "kme-b.toml",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    for sae in [sae_a, sae_b] {
        for ext in ["pem", "key", "skip-psk", "skip-psk-id"] {
            planned.push(dir.join(format!("{sae}.{ext}")));
        }
    }
    if let Some(existing) = planned.iter().find(|p| p.exists()) {
        return Err(SimError::Setup(format!(
            "{} already exists; remove the old setup or choose another directory",
            existing.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| SimError::io(dir, e))?;

    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params(CA_CN).self_signed(&ca_key)?;
    write_file(&dir.join("ca.pem"), ca_cert.pem().as_bytes(), false)?;
    write_file(
        &dir.join("ca.key"),
        Zeroizing::new(ca_key.serialize_pem()).as_bytes(),
        true,
    )?;
    let ca = Issuer::new(ca_params(CA_CN), ca_key);

    let link_ca_key = KeyPair::generate()?;
    let link_ca_cert = ca_params(LINK_CA_CN).self_signed(&link_ca_key)?;
    write_file(
        &dir.join("link-ca.pem"),
        link_ca_cert.pem().as_bytes(),
        false,
    )?;
    let link_ca = Issuer::new(ca_params(LINK_CA_CN), link_ca_key);

    let server = [ExtendedKeyUsagePurpose::ServerAuth];
    let both = [
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    for (stem, kme_id, listen, link) in [
        ("kme-a", KME_A_ID, listen_a, link_a),
        ("kme-b", KME_B_ID, listen_b, link_b),
    ] {
        let (cert, key) = leaf(kme_id, &host_sans(listen.ip())?, &server, &ca)?;
        write_pair(dir, stem, &cert, &key)?;
        // The link certificate is a server certificate when the peer pushes to us and a
        // client certificate when we push to the peer.
        let (cert, key) = leaf(kme_id, &host_sans(link.ip())?, &both, &link_ca)?;
        write_pair(dir, &format!("{stem}-link"), &cert, &key)?;
    }
    let sae_a_files = issue_with(dir, sae_a, &ca)?;
    let sae_b_files = issue_with(dir, sae_b, &ca)?;
    for sae in [sae_a, sae_b] {
        write_skip_psk(dir, sae)?;
    }
    // No SKIP listener where the ETSI port is 0 (bound later by the caller) or too high.
    let skip_addr = |listen: SocketAddr, offset: u16| {
        (listen.port() != 0)
            .then(|| listen.port().checked_add(offset))
            .flatten()
            .map(|port| SocketAddr::new(listen.ip(), port))
    };

    let config_for = |a_side: bool| {
        let (me, kme_id, peer_kme_id, sae, peer_sae, listen, link, peer_link) = if a_side {
            (
                "kme-a", KME_A_ID, KME_B_ID, sae_a, sae_b, listen_a, link_a, link_b,
            )
        } else {
            (
                "kme-b", KME_B_ID, KME_A_ID, sae_b, sae_a, listen_b, link_b, link_a,
            )
        };
        KmeConfig {
            kme_id: kme_id.into(),
            sae_id: sae.into(),
            peer_kme_id: peer_kme_id.into(),
            peer_sae_id: peer_sae.into(),
            listen,
            link_listen: link,
            peer_link,
            ca_file: "ca.pem".into(),
            cert_file: format!("{me}.pem").into(),
            key_file: format!("{me}.key").into(),
            link_ca_file: "link-ca.pem".into(),
            link_cert_file: format!("{me}-link.pem").into(),
            link_key_file: format!("{me}-link.key").into(),
            key_size: 256,
            min_key_size: 64,
            max_key_size: 1024,
            max_key_per_request: 128,
            max_key_count: 1000,
            initial_key_count: None,
            key_rate_bps: 2560.0,
            qber: None,
            key_ttl_secs: None,
            skip_listen: skip_addr(listen, SKIP_PORT_OFFSET),
            skip_require_client_cert: None,
            skip_psk_listen: skip_addr(listen, SKIP_PSK_PORT_OFFSET),
            skip_psk_identity_file: Some(format!("{sae}.skip-psk-id").into()),
            skip_psk_file: Some(format!("{sae}.skip-psk").into()),
        }
    };
    let config_a = dir.join("kme-a.toml");
    let config_b = dir.join("kme-b.toml");
    write_config(&config_a, &config_for(true))?;
    write_config(&config_b, &config_for(false))?;
    tracing::info!(dir = %dir.display(), sae_a, sae_b, "KME simulator setup written");
    Ok(InitOutput {
        config_a,
        config_b,
        ca_file: dir.join("ca.pem"),
        sae_a: sae_a_files,
        sae_b: sae_b_files,
    })
}

/// Issue `DIR/<sae_id>.pem` and `.key` under the setup's SAE CA (e.g. a third SAE, which the
/// KMEs will authenticate but refuse to serve).
pub fn issue_sae_cert(dir: &Path, sae_id: &str) -> Result<SaeFiles, SimError> {
    check_sae_id(sae_id)?;
    for ext in ["pem", "key"] {
        let path = dir.join(format!("{sae_id}.{ext}"));
        if path.exists() {
            return Err(SimError::Setup(format!(
                "{} already exists",
                path.display()
            )));
        }
    }
    let key_path = dir.join("ca.key");
    let ca_key_pem = read_small(&key_path)?;
    let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|e| SimError::Config {
        path: key_path,
        reason: e.to_string(),
    })?;
    // The issuer is rebuilt from the same parameters as the CA certificate: the subject name
    // and the key identifier (derived from the key) are all a child certificate refers to.
    issue_with(dir, sae_id, &Issuer::new(ca_params(CA_CN), ca_key))
}

fn issue_with(dir: &Path, sae_id: &str, ca: &Issuer<'_, KeyPair>) -> Result<SaeFiles, SimError> {
    let (cert, key) = leaf(sae_id, &[], &[ExtendedKeyUsagePurpose::ClientAuth], ca)?;
    write_pair(dir, sae_id, &cert, &key)?;
    Ok(SaeFiles {
        cert_file: dir.join(format!("{sae_id}.pem")),
        key_file: dir.join(format!("{sae_id}.key")),
    })
}

fn check_sae_id(sae: &str) -> Result<(), SimError> {
    check_id(sae).map_err(|e| SimError::Setup(format!("SAE ID: {e}")))?;
    let lower = sae.to_ascii_lowercase();
    if RESERVED_STEMS.contains(&lower.as_str())
        || sae.eq_ignore_ascii_case(KME_A_ID)
        || sae.eq_ignore_ascii_case(KME_B_ID)
    {
        return Err(SimError::Setup(format!(
            "SAE ID {sae:?} is reserved by the simulator"
        )));
    }
    Ok(())
}

/// Not-before one year back (clock skew between hosts), not-after ten years on.
fn set_validity(params: &mut CertificateParams) {
    const SECS_PER_YEAR: u64 = 31_556_952;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let year = i32::try_from(1970 + now / SECS_PER_YEAR).unwrap_or(2026);
    params.not_before = rcgen::date_time_ymd(year - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(year + 10, 1, 1);
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    set_validity(&mut params);
    params
}

/// The names a server certificate is valid for: its own IP (when specific) plus loopback.
fn host_sans(ip: IpAddr) -> Result<Vec<SanType>, SimError> {
    let mut sans = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
    ];
    if !ip.is_unspecified() && ip != IpAddr::V4(Ipv4Addr::LOCALHOST) {
        sans.push(SanType::IpAddress(ip));
    }
    Ok(sans)
}

fn leaf(
    cn: &str,
    sans: &[SanType],
    ekus: &[ExtendedKeyUsagePurpose],
    issuer: &Issuer<'_, KeyPair>,
) -> Result<(String, Zeroizing<String>), SimError> {
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    params.distinguished_name = dn;
    params.subject_alt_names = sans.to_vec();
    params.extended_key_usages = ekus.to_vec();
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), Zeroizing::new(key.serialize_pem())))
}

/// A random 256-bit PSK (hex) and its identity (the SAE ID) for the KP's PSK mode.
fn write_skip_psk(dir: &Path, sae: &str) -> Result<(), SimError> {
    let mut psk = Zeroizing::new([0u8; 32]);
    getrandom::fill(psk.as_mut_slice())
        .map_err(|e| SimError::Setup(format!("random number generator: {e}")))?;
    let mut text = Zeroizing::new(hex::encode(psk.as_slice()));
    text.push('\n');
    write_file(&dir.join(format!("{sae}.skip-psk")), text.as_bytes(), true)?;
    write_file(
        &dir.join(format!("{sae}.skip-psk-id")),
        format!("{sae}\n").as_bytes(),
        true,
    )
}

fn write_pair(dir: &Path, stem: &str, cert: &str, key: &str) -> Result<(), SimError> {
    write_file(&dir.join(format!("{stem}.pem")), cert.as_bytes(), false)?;
    write_file(&dir.join(format!("{stem}.key")), key.as_bytes(), true)
}

fn write_config(path: &Path, config: &KmeConfig) -> Result<(), SimError> {
    let mut text = toml::to_string_pretty(config).map_err(|e| SimError::Config {
        path: path.to_owned(),
        reason: e.to_string(),
    })?;
    text.push_str(
        "\n# Quantum bit error rate, re-read at run time (SIGHUP or file change): the key rate\n\
         # is scaled by 1 - 2 h(qber) and drops to zero above ~0.11 (an eavesdropper).\n\
         # qber = 0.02\n",
    );
    write_file(path, text.as_bytes(), false)
}

/// Create `path` (never overwrite); private keys get mode 0600 from the start.
fn write_file(path: &Path, contents: &[u8], private: bool) -> Result<(), SimError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut file = options.open(path).map_err(|e| SimError::io(path, e))?;
    file.write_all(contents).map_err(|e| SimError::io(path, e))
}

fn read_small(path: &Path) -> Result<Zeroizing<String>, SimError> {
    use std::io::Read as _;
    const MAX: u64 = 64 * 1024;
    let file = std::fs::File::open(path).map_err(|e| SimError::io(path, e))?;
    let mut text = Zeroizing::new(String::new());
    file.take(MAX + 1)
        .read_to_string(&mut text)
        .map_err(|e| SimError::io(path, e))?;
    if text.len() as u64 > MAX {
        return Err(SimError::Setup(format!("{} is too large", path.display())));
    }
    Ok(text)
}
