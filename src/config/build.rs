//! From the parsed file to [`TunnelSettings`]: every value checked, every problem kept (one
//! line each) and the checking carried on past it, so `trident check` lists them all. A
//! value that is wrong is replaced by its default for the checks that follow, which then
//! never report a consequence of an error already reported.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use keymix::{PeerConfig, PublicKey, QkdPolicy, StaticSecret, Version};
use toml::Spanned;
use tunnel::settings::{Hooks, RouteTable};
use tunnel::{PeerSettings, TunnelSettings};

use super::file::{ConfigFile, InterfaceSection, KeymixSection};
use super::files::read_key_file;
use super::machine;
use super::qkd::{peer_qkd_id, qkd_client};
use super::render::Effective;
use super::source::Source;
use super::{
    default_state_dir, validate, wireguard, ConfigError, Loaded, DEFAULT_KME_TIMEOUT_SECS,
    DEFAULT_MTU, KEYLOG_ENV, KME_TIMEOUT_MARGIN, MAX_EPOCH_SECS, MAX_NAME_LEN,
    MAX_REJECT_AFTER_SECS,
};

/// The errors and warnings found so far.
#[derive(Default)]
pub(super) struct Problems {
    pub(super) errors: Vec<ConfigError>,
    pub(super) warnings: Vec<String>,
}

impl Problems {
    /// The value, or None with its error kept.
    pub(super) fn take<T>(&mut self, result: Result<T, ConfigError>) -> Option<T> {
        result.map_err(|e| self.errors.push(e)).ok()
    }
}

fn interface_name(src: &Source, interface: &InterfaceSection, p: &mut Problems) -> String {
    let name = interface.name.get_ref().clone();
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !valid {
        p.errors.push(src.error(
            Some(interface.name.span()),
            "interface.name",
            format!("{name:?} is not a valid interface name (1-{MAX_NAME_LEN} characters of A-Z a-z 0-9 _ . -)"),
        ));
    }
    name
}

/// min_version and max_version: each a version this release speaks, min <= max; the
/// defaults (1 and the latest) stand in for bad values.
fn versions(src: &Source, keymix: &KeymixSection, p: &mut Problems) -> (Version, Version) {
    let mut one = |v: &Option<Spanned<u8>>, key: &str, default: Version| match v {
        None => default,
        Some(v) => Version::from_byte(*v.get_ref()).unwrap_or_else(|| {
            p.errors.push(src.error(
                Some(v.span()),
                key,
                format!(
                    "keymix protocol version {} is not spoken by this release (1 or {})",
                    v.get_ref(),
                    Version::LATEST.byte()
                ),
            ));
            default
        }),
    };
    let min = one(&keymix.min_version, "keymix.min_version", Version::V1);
    let max = one(&keymix.max_version, "keymix.max_version", Version::LATEST);
    if min > max {
        let span = keymix.min_version.as_ref().map(Spanned::span);
        p.errors.push(src.error(
            span,
            "keymix.min_version",
            format!("is {min}, above max_version ({max}): no version would be left"),
        ));
        return (Version::V1, Version::LATEST);
    }
    (min, max)
}

/// epoch_secs and reject_after_secs, each checked; the defaults stand in for bad values.
fn schedule(src: &Source, keymix: &KeymixSection, p: &mut Problems) -> (u64, u64) {
    let mut epoch_secs = *keymix.epoch_secs.get_ref();
    let mut reject_after_secs = *keymix.reject_after_secs.get_ref();
    if !(1..=MAX_EPOCH_SECS).contains(&epoch_secs) {
        p.errors.push(src.error(
            Some(keymix.epoch_secs.span()),
            "keymix.epoch_secs",
            format!("must be between 1 and {MAX_EPOCH_SECS}"),
        ));
        epoch_secs = *super::file::default_epoch_secs().get_ref();
    }
    if reject_after_secs > MAX_REJECT_AFTER_SECS {
        p.errors.push(src.error(
            Some(keymix.reject_after_secs.span()),
            "keymix.reject_after_secs",
            format!("must be at most {MAX_REJECT_AFTER_SECS}"),
        ));
        reject_after_secs = MAX_REJECT_AFTER_SECS;
    } else if reject_after_secs <= epoch_secs {
        p.errors.push(src.error(
            Some(keymix.reject_after_secs.span()),
            "keymix.reject_after_secs",
            format!("must be greater than epoch_secs ({epoch_secs}), or every PSK expires before the next one"),
        ));
        reject_after_secs = epoch_secs.saturating_add(1);
    }
    (epoch_secs, reject_after_secs)
}

fn metrics_listen(
    src: &Source,
    interface: &InterfaceSection,
    p: &mut Problems,
) -> Option<SocketAddr> {
    let m = interface.metrics_listen.as_ref()?;
    let Ok(addr) = m.get_ref().trim().parse::<SocketAddr>() else {
        p.errors.push(src.error(
            Some(m.span()),
            "interface.metrics_listen",
            format!("{:?} is not IP:PORT (e.g. \"127.0.0.1:9586\")", m.get_ref()),
        ));
        return None;
    };
    if addr.ip().is_unspecified() {
        p.warnings.push(validate::warning(
            src,
            Some(m.span()),
            "interface.metrics_listen",
            format!(
                "{addr} listens on every address, the WAN included: anyone who reaches it sees \
                 the peers' keys, endpoints and traffic; use 127.0.0.1 or a management address"
            ),
        ));
    }
    Some(addr)
}

/// Builds the settings of a parsed config; None when an error left nothing to build.
/// With `machine`, also what `up` would run into on this machine (config/machine.rs).
pub(super) fn build(
    src: &Source,
    file: ConfigFile,
    p: &mut Problems,
    machine: bool,
) -> Option<Loaded> {
    let ConfigFile {
        interface,
        keymix,
        qkd,
        peers,
    } = file;
    let name = interface_name(src, &interface, p);
    let private_key = p
        .take(read_key_file(
            src,
            &interface.private_key_file,
            "interface.private_key_file",
        ))
        .map(|k| StaticSecret::from(*k));
    let own_public = private_key.as_ref().map(PublicKey::from);
    let mtu = match &interface.mtu {
        None => DEFAULT_MTU,
        Some(m) if (576..=65_535).contains(m.get_ref()) => *m.get_ref(),
        Some(m) => {
            p.errors.push(src.error(
                Some(m.span()),
                "interface.mtu",
                "must be between 576 and 65535",
            ));
            DEFAULT_MTU
        }
    };
    let listen_address = interface.listen_address.as_ref().and_then(|a| {
        let parsed = a.get_ref().trim().parse::<IpAddr>();
        if parsed.is_err() {
            p.errors.push(src.error(
                Some(a.span()),
                "interface.listen_address",
                format!(
                    "{:?} is not an IP address (e.g. the site's virtual address \"192.0.2.10\")",
                    a.get_ref()
                ),
            ));
        }
        parsed.ok()
    });
    let (epoch_secs, reject_after_secs) = schedule(src, &keymix, p);
    let (min_version, max_version) = versions(src, &keymix, p);
    let bootstrap_psk = keymix
        .bootstrap_psk_file
        .as_ref()
        .and_then(|f| p.take(read_key_file(src, f, "keymix.bootstrap_psk_file")));
    let policy = match &keymix.qkd {
        Some(q) => q.get_ref().0,
        None if qkd.is_some() => QkdPolicy::Preferred,
        None => QkdPolicy::Off,
    };
    // The peers' SKIP remote IDs, for the Key Provider's capabilities check.
    let remote_ids: Vec<_> = peers
        .iter()
        .filter_map(|p| p.remote_system_id.as_ref())
        .map(|r| (r.get_ref().clone(), Some(r.span())))
        .collect();
    let qkd_setup = match (&qkd, policy) {
        (_, QkdPolicy::Off) => None,
        (Some(q), _) => p.take(qkd_client(src, q, &remote_ids)),
        (None, _) => {
            p.errors.push(src.error(
                keymix.qkd.as_ref().map(Spanned::span),
                "keymix.qkd",
                format!("qkd = \"{policy}\" needs a [qkd] table (kme_url, sae_id, ca_file, cert_file, key_file; or protocol = \"skip\" with kp_url, local_system_id, ...)"),
            ));
            None
        }
    };
    let protocol = qkd.as_ref().and_then(|q| p.take(q.protocol(src)));
    let kme_timeout = qkd
        .as_ref()
        .and_then(|q| q.timeout_secs.as_ref())
        .map_or(DEFAULT_KME_TIMEOUT_SECS, |t| *t.get_ref());
    let keylog_file = match std::env::var_os(KEYLOG_ENV).filter(|v| !v.is_empty()) {
        Some(env) => Some(PathBuf::from(env)),
        None => keymix
            .keylog_file
            .as_ref()
            .map(|f| src.resolve(f.get_ref())),
    };
    let state_dir = match &interface.state_dir {
        Some(d) => src.resolve(d.get_ref()),
        None => default_state_dir(&name),
    };
    let external = wireguard::external_interface(src, &interface, &peers, &mut p.errors);
    let spans = machine::Spans {
        name: interface.name.span(),
        state_dir: interface.state_dir.as_ref().map(Spanned::span),
        wireguard: interface.wireguard.as_ref().map(Spanned::span),
    };
    let running = machine
        && machine::check(
            src,
            &name,
            &state_dir,
            interface.wireguard.is_some(),
            &spans,
            p,
        );
    let metrics_listen = metrics_listen(src, &interface, p);

    let mut sharing_interface_psk = 0usize;
    let mut seen = HashSet::new();
    let mut peer_settings = Vec::with_capacity(peers.len());
    let mut peer_failed = false;
    for peer in peers {
        let errors_before = p.errors.len();
        let public_key = peer.public_key.get_ref().0 .0;
        let key_error =
            |message: &str| src.error(Some(peer.public_key.span()), "peer.public_key", message);
        if own_public == Some(public_key) {
            p.errors
                .push(key_error("is this interface's own public key"));
        } else if private_key
            .as_ref()
            .is_some_and(|k| !k.diffie_hellman(&public_key).was_contributory())
        {
            // A low-order point makes the static-static X25519 all zero: a key anyone computes.
            p.errors.push(key_error(
                "is a low-order point (X25519 with it gives an all-zero secret)",
            ));
        }
        if !seen.insert(*public_key.as_bytes()) {
            p.errors
                .push(key_error("appears in more than one [[peer]]"));
        }
        let endpoint = peer
            .endpoint
            .as_ref()
            .and_then(|e| p.take(validate::resolve_endpoint(src, e, "peer.endpoint")));
        let classic = wireguard::classic_peer(src, &peer, &mut p.warnings);
        let classic = p.take(classic);
        let bootstrap = match &peer.bootstrap_psk_file {
            Some(f) => p.take(read_key_file(src, f, "peer.bootstrap_psk_file")),
            None => {
                sharing_interface_psk += usize::from(bootstrap_psk.is_some());
                bootstrap_psk.clone()
            }
        };
        let is_classic = classic.as_ref().is_some_and(Option::is_some);
        // The SAE ID (ETSI 014) or the remote system ID (SKIP): the ID keymix hands the
        // key source as "the other side".
        let peer_sae_id = p.take(peer_qkd_id(src, protocol, policy, is_classic, &peer));
        if p.errors.len() > errors_before {
            peer_failed = true;
            continue;
        }
        let (Some(classic), Some(peer_sae_id)) = (classic, peer_sae_id) else {
            continue;
        };
        let mut keymix_config = PeerConfig::new(public_key);
        keymix_config.epoch = Duration::from_secs(epoch_secs);
        keymix_config.reject_after = Duration::from_secs(reject_after_secs);
        keymix_config.qkd = policy;
        keymix_config.bootstrap_psk = bootstrap;
        keymix_config.kme_timeout = Duration::from_secs(kme_timeout) + KME_TIMEOUT_MARGIN;
        keymix_config.peer_sae_id = peer_sae_id;
        keymix_config.min_version = min_version;
        keymix_config.max_version = max_version;
        peer_settings.push(PeerSettings {
            endpoint,
            allowed_ips: peer.allowed_ips.into_iter().map(|a| a.0 .0).collect(),
            // 0 means off, as in wg.
            persistent_keepalive: peer.persistent_keepalive.filter(|k| *k > 0),
            keymix: keymix_config,
            classic,
        });
    }
    if sharing_interface_psk > 1 {
        p.warnings.push(format!(
            "[keymix] bootstrap_psk_file is shared by {sharing_interface_psk} peers: A-B \
             authentication rests on a secret every other site also holds. Give each \
             [[peer]] its own bootstrap_psk_file (`trident genpsk`)."
        ));
    }
    // The whole-config checks read the file's own tree, so they run whatever failed above.
    let table = interface.table.map_or(RouteTable::Auto, |t| t.0);
    let addresses: Vec<_> = interface.address.into_iter().map(|a| a.0).collect();
    validate::check_whole(
        src,
        &validate::Whole {
            external: external.is_some() || interface.wireguard.is_some(),
            table,
            addresses: &addresses,
            private_key: private_key.as_ref(),
            policy,
            peers: if peer_failed {
                None
            } else {
                Some(&peer_settings)
            },
        },
        p,
    );
    if peer_failed {
        return None;
    }
    let private_key = private_key?;
    let effective = Effective {
        mtu,
        state_dir: &state_dir,
        epoch_secs,
        reject_after_secs,
        versions: (min_version, max_version),
        policy,
        keylog_file: keylog_file.as_deref(),
    };
    if let Some(setup) = &qkd_setup {
        tracing::debug!(protocol = ?setup.protocol, "QKD key source configured");
    }
    let shown = super::render::render(src, &effective, external.is_some());
    let settings = TunnelSettings {
        name,
        private_key,
        listen_port: interface.listen_port,
        listen_address,
        addresses,
        mtu,
        peers: peer_settings,
        local_sae_id: qkd_setup.as_ref().map(|s| s.local_id.clone()),
        qkd_source: qkd_setup.as_ref().map(|s| s.source.clone()),
        keylog_file,
        control_dir: crate::cli_extra::control_dir(),
        state_dir: Some(state_dir),
        wireguard: external,
        metrics_listen,
        table,
        fwmark: interface.fwmark.and_then(|f| f.0),
        hooks: Hooks {
            pre_up: interface.pre_up.0,
            post_up: interface.post_up.0,
            pre_down: interface.pre_down.0,
            post_down: interface.post_down.0,
        },
        on_up: None,
    };
    if machine && !running && settings.wireguard.is_some() {
        machine::check_external(src, &settings, &spans, p);
    }
    Some(Loaded {
        settings,
        // `load` hands over every warning, also those of the checks after this one.
        warnings: Vec::new(),
        kp_check: qkd_setup.and_then(|s| s.kp_check),
        shown,
        running,
        qkd_table: super::render::qkd_table(src),
    })
}
