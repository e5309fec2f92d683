//! `trident reset NAME PEER [--static-only]`: the operator's explicit re-bootstrap of one
//! peer. The interface forgets its keymix chain with that peer (logged at warn level) and
//! keeps the replay records, so the next bootstrap (C_0) exchange is accepted and no
//! recorded message passes. Without a bootstrap PSK for the peer that bootstrap would rest
//! on the static keys alone, so it is refused unless the operator says `--static-only`.
//! With the interface stopped, `--config FILE` applies the same reset to its state file.

use std::path::Path;

use anyhow::{bail, Context, Result};
use keymix::PublicKey;
use tunnel::chain_store::ChainStore;
use tunnel::control::{request_reset, socket_path};

use crate::keys::decode_key;

pub fn reset(name: &str, peer: &str, config: Option<&Path>, static_only: bool) -> Result<()> {
    let Some(peer_key) = decode_key(peer) else {
        bail!("{peer:?} is not a base64 32-byte public key (as `trident status` prints it)");
    };
    let path = socket_path(&crate::cli_extra::control_dir(), name);
    if std::os::unix::net::UnixStream::connect(&path).is_err() {
        let Some(config) = config else {
            bail!(
                "interface {name} is not running (no control socket {}). To reset its state \
                 file while it is stopped, add --config FILE (the interface's config)",
                path.display()
            );
        };
        return reset_offline(config, &peer_key, static_only);
    }
    let reply = request_reset(&path, &peer_key, static_only)
        .with_context(|| format!("interface {name}"))?;
    if !reply.ok {
        bail!("{}", reply.message);
    }
    println!("{}", reply.message);
    Ok(())
}

/// The reset of a stopped interface: the peer's chain file rewritten without its chain.
fn reset_offline(config: &Path, peer: &[u8; 32], static_only: bool) -> Result<()> {
    let loaded = crate::config::load(config)?;
    let settings = loaded.settings;
    let dir = settings
        .state_dir
        .context("the config has no state directory")?;
    let Some(p) = settings
        .peers
        .iter()
        .find(|p| p.keymix.public_key.as_bytes() == peer)
    else {
        bail!("{} has no such peer", config.display());
    };
    let psk_configured = p.keymix.bootstrap_psk.is_some();
    let store = ChainStore::open(&dir).context("opening the state directory")?;
    let local = PublicKey::from(&settings.private_key);
    let (file, basis) = store
        .reset_offline(local.as_bytes(), peer, psk_configured, static_only)
        .map_err(anyhow::Error::msg)?;
    println!(
        "{}: chain with the peer forgotten (replay records kept); the next first contact rests \
         on {} ({basis:?})",
        file.display(),
        if psk_configured {
            "the bootstrap PSK"
        } else {
            "the static keys alone, as acknowledged"
        }
    );
    Ok(())
}
