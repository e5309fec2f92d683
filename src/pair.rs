//! `trident pair SITE_A SITE_B --out DIR`: both ends of a site-to-site link in one go, ready
//! for `trident up`: DIR/SITE_A/ and DIR/SITE_B/ each hold that gateway's config, its
//! private key and the bootstrap PSK the two share (named after the peer), all 0600 in 0700
//! directories; with `--qkd` also the KME simulator pair in DIR/kme (`trident kme-sim
//! init`), each site's share of it in DIR/SITE/kme and the `[qkd]` tables pointing there,
//! so that each site's directory is all its gateway needs (copied into /etc/trident, the
//! config is where `trident@.service` looks and every relative path still holds). Keys
//! come from the same code as `genkey` and `genpsk`; nothing existing is ever replaced
//! (everything is checked before the first file is written).

use std::fs::DirBuilder;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use keymix::{PublicKey, StaticSecret};
use tunnel::settings::parse_allowed_ip;
use tunnel::InterfaceAddress;

use crate::cli_extra::interface_name;
use crate::keys::{key_line, new_private_key, new_psk};

#[derive(Args)]
pub struct PairArgs {
    /// Site A's name: its interface name and the name of its directory and files.
    #[arg(value_parser = interface_name)]
    site_a: String,
    /// Site B's name.
    #[arg(value_parser = interface_name)]
    site_b: String,
    /// Where to write DIR/SITE_A/ and DIR/SITE_B/ (created 0700 if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// How B reaches A: HOST or HOST:PORT (IPv6 in brackets); the port defaults to
    /// --port-a. Without it A has no fixed address: B waits for A to connect (A behind NAT).
    #[arg(long, value_name = "HOST[:PORT]")]
    endpoint_a: Option<String>,
    /// How A reaches B (as --endpoint-a). At least one of the two is needed.
    #[arg(long, value_name = "HOST[:PORT]")]
    endpoint_b: Option<String>,
    /// A's UDP listen port.
    #[arg(long, default_value_t = 51820)]
    port_a: u16,
    /// B's UDP listen port.
    #[arg(long, default_value_t = 51820)]
    port_b: u16,
    /// A's tunnel address.
    #[arg(long, default_value = "10.99.0.1/24")]
    address_a: InterfaceAddress,
    /// B's tunnel address.
    #[arg(long, default_value = "10.99.0.2/24")]
    address_b: InterfaceAddress,
    /// A prefix behind A (its LAN) that B routes through the tunnel; repeat for more.
    #[arg(long, value_name = "PREFIX")]
    lan_a: Vec<String>,
    /// A prefix behind B that A routes through the tunnel; repeat for more.
    #[arg(long, value_name = "PREFIX")]
    lan_b: Vec<String>,
    /// Also write the KME simulator pair (DIR/kme, as `trident kme-sim init`), each site's
    /// share of it in DIR/SITE/kme (run there with `trident kme-sim run kme/kme-a.toml`,
    /// `kme-b.toml` on B) and `[qkd]` tables.
    #[arg(long)]
    qkd: bool,
    /// With --qkd: where KME A accepts the simulated key link from KME B. The default is
    /// loopback (both KMEs on one host); with the KMEs on the two gateways, A's address.
    #[arg(long, value_name = "IP:PORT", default_value_t = qkd::sim::DEFAULT_LINK_A)]
    kme_link_a: SocketAddr,
    /// With --qkd: where KME B accepts the key link from KME A.
    #[arg(long, value_name = "IP:PORT", default_value_t = qkd::sim::DEFAULT_LINK_B)]
    kme_link_b: SocketAddr,
}

/// One side as its config needs it.
struct Side<'a> {
    name: &'a str,
    port: u16,
    address: InterfaceAddress,
    /// How the other side reaches this one.
    endpoint: Option<String>,
    lan: Vec<String>,
    key: zeroize::Zeroizing<[u8; 32]>,
    kme_url: String,
}

impl Side<'_> {
    fn public(&self) -> String {
        let public = PublicKey::from(&StaticSecret::from(*self.key));
        crate::keys::key_line(public.as_bytes()).trim().to_owned()
    }

    fn host_prefix(&self) -> String {
        let len = if self.address.ip.is_ipv4() { 32 } else { 128 };
        format!("{}/{len}", self.address.ip)
    }
}

/// HOST, HOST:PORT, IP, [IPv6]:PORT or a bare IPv6 address, as the `endpoint` value.
fn endpoint(value: &str, port: u16) -> Result<String> {
    let value = value.trim();
    if value.parse::<SocketAddr>().is_ok() {
        return Ok(value.to_owned());
    }
    if let Ok(ip) = value.trim_matches(['[', ']']).parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, port).to_string());
    }
    match value.rsplit_once(':') {
        Some((host, p))
            if !host.is_empty() && !host.contains(':') && p.parse::<u16>().is_ok_and(|p| p > 0) =>
        {
            Ok(value.to_owned())
        }
        None if !value.is_empty() && !value.contains(['/', ' ']) => Ok(format!("{value}:{port}")),
        _ => bail!("{value:?} is not HOST, HOST:PORT or [IPv6]:PORT"),
    }
}

fn prefixes(list: &[String], what: &str) -> Result<Vec<String>> {
    list.iter()
        .map(|p| {
            let net = parse_allowed_ip(p).map_err(|e| anyhow::anyhow!("{what}: {e}"))?;
            let written: InterfaceAddress = p.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            if written.ip != net.network_address() {
                bail!("{what} {p}: host bits set (the network is {net})");
            }
            Ok(net.to_string())
        })
        .collect()
}

fn toml_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| format!("{i:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

fn config(me: &Side, peer: &Side, qkd: bool) -> String {
    let mut allowed = vec![peer.host_prefix()];
    allowed.extend(peer.lan.iter().cloned());
    let mut text = format!(
        "# {me}'s end of the link {me} <-> {peer} (written by `trident pair`).\n\
         # Copy this directory to {me}'s gateway (e.g. to /etc/trident/, keeping the modes),\n\
         # then: trident check {me}.toml && trident up {me}.toml\n\
         [interface]\nname = \"{me}\"\nprivate_key_file = \"{me}.key\"\nlisten_port = {port}\n\
         address = [\"{address}\"]\n",
        me = me.name,
        peer = peer.name,
        port = me.port,
        address = me.address,
    );
    if qkd {
        text.push_str(&format!(
            "\n[qkd]\nkme_url = \"{url}\"\nsae_id = \"{me}\"\nca_file = \"kme/ca.pem\"\n\
             cert_file = \"kme/{me}.pem\"\nkey_file = \"kme/{me}.key\"\n",
            url = me.kme_url,
            me = me.name
        ));
    }
    text.push_str(&format!(
        "\n[[peer]]\npublic_key = \"{key}\"\n",
        key = peer.public()
    ));
    match &peer.endpoint {
        Some(e) => text.push_str(&format!("endpoint = \"{e}\"\n")),
        None => text.push_str(&format!("# no endpoint: {} connects to us\n", peer.name)),
    }
    text.push_str(&format!(
        "allowed_ips = {}\npersistent_keepalive = 25\nbootstrap_psk_file = \"{}.psk\"\n",
        toml_list(&allowed),
        peer.name
    ));
    if qkd {
        text.push_str(&format!("sae_id = \"{}\"\n", peer.name));
    }
    text
}

fn private_dir(dir: &Path) -> Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    tunnel::trusted_file::check_parent_dirs(&dir.join("x"))
        .map_err(anyhow::Error::from)
        .with_context(|| format!("not writing keys into {}", dir.display()))
}

/// Copies what one gateway needs of the simulator setup in `kme` into `share`: its SAE
/// certificate, the CA of the KME's certificate, and its KME's config, certificates and SKIP
/// PSK. The other site's keys and the CA's key stay behind.
fn kme_share(kme: &Path, share: &Path, sae: &str, stem: &str) -> Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    private_dir(share)?;
    let names = [
        "ca.pem".to_owned(),
        "link-ca.pem".to_owned(),
        format!("{stem}.toml"),
        format!("{stem}.pem"),
        format!("{stem}.key"),
        format!("{stem}-link.pem"),
        format!("{stem}-link.key"),
        format!("{sae}.pem"),
        format!("{sae}.key"),
        format!("{sae}.skip-psk"),
        format!("{sae}.skip-psk-id"),
    ];
    for name in names {
        let (from, to) = (kme.join(&name), share.join(&name));
        let copy = || -> std::io::Result<()> {
            let bytes = zeroize::Zeroizing::new(std::fs::read(&from)?);
            // Created with the source's mode (0600 for keys), so a key is never readable
            // by others, not even between open and chmod.
            let mode = std::fs::metadata(&from)?.permissions().mode() & 0o644;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(&to)?;
            file.write_all(&bytes)?;
            file.sync_all()
        };
        copy().with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    }
    Ok(())
}

pub fn run(args: &PairArgs) -> Result<()> {
    if args.site_a == args.site_b {
        bail!("the two sites need different names");
    }
    if args.endpoint_a.is_none() && args.endpoint_b.is_none() {
        bail!(
            "give --endpoint-a HOST[:PORT] and/or --endpoint-b HOST[:PORT]: how the sites \
             reach each other (a side without one must be able to reach the other)"
        );
    }
    if args.address_a.ip == args.address_b.ip {
        bail!("--address-a and --address-b must differ");
    }
    let side = |name, port, address, reach: &Option<String>, lan, kme: SocketAddr| {
        Ok::<_, anyhow::Error>(Side {
            name,
            port,
            address,
            endpoint: reach.as_deref().map(|e| endpoint(e, port)).transpose()?,
            lan,
            key: new_private_key()?,
            kme_url: format!("https://{kme}"),
        })
    };
    let a = side(
        args.site_a.as_str(),
        args.port_a,
        args.address_a,
        &args.endpoint_a,
        prefixes(&args.lan_a, "--lan-a")?,
        qkd::sim::DEFAULT_LISTEN_A,
    )?;
    let b = side(
        args.site_b.as_str(),
        args.port_b,
        args.address_b,
        &args.endpoint_b,
        prefixes(&args.lan_b, "--lan-b")?,
        qkd::sim::DEFAULT_LISTEN_B,
    )?;
    let psk = new_psk()?;
    let dir_a = args.out.join(a.name);
    let dir_b = args.out.join(b.name);
    let files = [
        (
            dir_a.join(format!("{}.toml", a.name)),
            config(&a, &b, args.qkd),
        ),
        (
            dir_a.join(format!("{}.key", a.name)),
            key_line(&a.key).to_string(),
        ),
        (
            dir_a.join(format!("{}.psk", b.name)),
            key_line(&psk).to_string(),
        ),
        (
            dir_b.join(format!("{}.toml", b.name)),
            config(&b, &a, args.qkd),
        ),
        (
            dir_b.join(format!("{}.key", b.name)),
            key_line(&b.key).to_string(),
        ),
        (
            dir_b.join(format!("{}.psk", a.name)),
            key_line(&psk).to_string(),
        ),
    ];
    let shares = [(&a, &dir_a, "kme-a"), (&b, &dir_b, "kme-b")];
    let existing = files.iter().map(|(p, _)| p.clone());
    let share_dirs = shares.iter().map(|(_, dir, _)| dir.join("kme"));
    let share_dirs = share_dirs.filter(|_| args.qkd);
    if let Some(existing) = existing
        .chain(share_dirs)
        .find(|p| p.symlink_metadata().is_ok())
    {
        bail!("{} already exists; nothing written", existing.display());
    }
    for dir in [&args.out, &dir_a, &dir_b] {
        private_dir(dir)?;
    }
    if args.qkd {
        let kme = args.out.join("kme");
        // Private before `init` fills it, whatever the umask (it holds the SAE keys).
        private_dir(&kme)?;
        qkd::sim::init(
            &kme,
            a.name,
            b.name,
            qkd::sim::DEFAULT_LISTEN_A,
            qkd::sim::DEFAULT_LISTEN_B,
            args.kme_link_a,
            args.kme_link_b,
        )
        .with_context(|| format!("kme-sim init {}", kme.display()))?;
        for (me, dir, stem) in shares {
            kme_share(&kme, &dir.join("kme"), me.name, stem)?;
        }
    }
    for (path, text) in &files {
        tunnel::secret_file::create_new(path, text.as_bytes())
            .map_err(anyhow::Error::from)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let mut summary = String::new();
    for (me, dir) in [(&a, &dir_a), (&b, &dir_b)] {
        summary.push_str(&format!(
            "{}: {} (public key {}, UDP port {}, address {})\n",
            me.name,
            dir.display(),
            me.public(),
            me.port,
            me.address
        ));
    }
    if args.qkd {
        summary.push_str(&format!(
            "KME simulators: {da}/kme/kme-a.toml on {a}'s gateway, {db}/kme/kme-b.toml on {b}'s \
             (`trident kme-sim run /etc/trident/kme/kme-a.toml` once copied; each serves its \
             gateway on loopback); {all} holds both, as `trident kme-sim init` writes them\n",
            a = a.name,
            b = b.name,
            da = dir_a.display(),
            db = dir_b.display(),
            all = args.out.join("kme").display()
        ));
    }
    summary.push_str("next: copy each directory to its gateway, `trident check`, `trident up`\n");
    crate::output::print(&summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_get_the_listen_port_when_they_have_none() {
        assert_eq!(endpoint("192.0.2.2", 51820).unwrap(), "192.0.2.2:51820");
        assert_eq!(endpoint("192.0.2.2:4500", 51820).unwrap(), "192.0.2.2:4500");
        assert_eq!(endpoint("2001:db8::2", 1).unwrap(), "[2001:db8::2]:1");
        assert_eq!(endpoint("[2001:db8::2]:7", 1).unwrap(), "[2001:db8::2]:7");
        assert_eq!(endpoint("gw.example", 5).unwrap(), "gw.example:5");
        assert_eq!(endpoint("gw.example:6", 5).unwrap(), "gw.example:6");
        assert!(endpoint("gw.example:0", 5).is_err());
        assert!(endpoint("", 5).is_err());
    }

    fn args(out: &Path, qkd: bool) -> PairArgs {
        PairArgs {
            site_a: "site-a".into(),
            site_b: "site-b".into(),
            out: out.to_owned(),
            endpoint_a: Some("192.0.2.2".into()),
            endpoint_b: None,
            port_a: 51820,
            port_b: 51821,
            address_a: "10.99.0.1/24".parse().unwrap(),
            address_b: "10.99.0.2/24".parse().unwrap(),
            lan_a: vec!["192.168.10.0/24".into()],
            lan_b: vec!["192.168.20.0/24".into()],
            qkd,
            kme_link_a: qkd::sim::DEFAULT_LINK_A,
            kme_link_b: qkd::sim::DEFAULT_LINK_B,
        }
    }

    /// The two configs load as `trident up` loads them: matching keys, PSK and files.
    #[test]
    fn both_configs_load_and_match() {
        use std::os::unix::fs::MetadataExt as _;
        for qkd in [false, true] {
            let out =
                std::env::temp_dir().join(format!("trident-pair-{qkd}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&out);
            run(&args(&out, qkd)).unwrap();
            let a = crate::config::load(&out.join("site-a/site-a.toml")).unwrap();
            let b = crate::config::load(&out.join("site-b/site-b.toml")).unwrap();
            let (a, b) = (a.settings, b.settings);
            assert_eq!(
                a.peers[0].keymix.public_key,
                PublicKey::from(&b.private_key)
            );
            assert_eq!(
                b.peers[0].keymix.public_key,
                PublicKey::from(&a.private_key)
            );
            assert_eq!(
                a.peers[0].keymix.bootstrap_psk.as_deref(),
                b.peers[0].keymix.bootstrap_psk.as_deref()
            );
            assert_eq!(b.peers[0].endpoint, "192.0.2.2:51820".parse().ok());
            assert_eq!(a.peers[0].endpoint, None);
            assert_eq!(a.listen_port, 51820);
            assert_eq!(b.listen_port, 51821);
            assert_eq!(a.qkd_source.is_some(), qkd);
            if qkd {
                // Each site's directory is all its gateway needs, and no more.
                for (site, stem, other, other_stem) in [
                    ("site-a", "kme-a", "site-b", "kme-b"),
                    ("site-b", "kme-b", "site-a", "kme-a"),
                ] {
                    let share = out.join(site).join("kme");
                    let kme =
                        qkd::sim::KmeConfig::load(&share.join(format!("{stem}.toml"))).unwrap();
                    for file in [&kme.cert_file, &kme.link_key_file, &kme.link_ca_file] {
                        assert!(file.starts_with(&share) && file.is_file(), "{file:?}");
                    }
                    for absent in [other, other_stem, "ca"] {
                        assert!(!share.join(format!("{absent}.key")).exists(), "{absent}");
                    }
                    let mode = std::fs::metadata(share.join(format!("{site}.key"))).unwrap();
                    assert_eq!(mode.mode() & 0o077, 0);
                }
            }
            let key = std::fs::metadata(out.join("site-a/site-a.key")).unwrap();
            assert_eq!(key.mode() & 0o777, 0o600);
            // A second run replaces nothing.
            assert!(run(&args(&out, qkd)).is_err());
            let _ = std::fs::remove_dir_all(&out);
        }
    }

    #[test]
    fn lan_prefixes_with_host_bits_are_refused() {
        assert!(prefixes(&["192.168.10.0/24".into()], "--lan-a").is_ok());
        assert!(prefixes(&["192.168.10.5/24".into()], "--lan-a").is_err());
        assert!(prefixes(&["nonsense".into()], "--lan-a").is_err());
    }
}
