//! `trident reset NAME PEER`: the operator's explicit re-bootstrap of one peer. The running
//! interface forgets its keymix chain with that peer (logged at warn level), so the peer's
//! next bootstrap (C_0) exchange is accepted. Needed when the peer lost its state file and
//! the two share no bootstrap PSK: otherwise the side still holding the chain refuses the
//! bootstrap as `chain mismatch`, because a static key alone must not reset a chain.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use keymix::PublicKey;
use tunnel::chain_store::ChainStore;
use tunnel::control::{request_reset, socket_path};

use crate::keys::decode_key;

pub fn reset(name: &str, peer: &str, config: Option<&Path>) -> Result<()> {
    let Some(peer_key) = decode_key(peer) else {
        bail!("{peer:?} is not a base64 32-byte public key (as `trident status` prints it)");
    };
    let path = socket_path(&crate::cli_extra::control_dir(), name);
    if std::os::unix::net::UnixStream::connect(&path).is_err() {
        bail!(
            "interface {name} is not running (no control socket {}). The offline equivalent \
             of a reset is deleting the peer's chain file in the interface's state_dir: {}",
            path.display(),
            offline_hint(name, &peer_key, config)
        );
    }
    let reply = request_reset(&path, &peer_key).with_context(|| format!("interface {name}"))?;
    if !reply.ok {
        bail!("{}", reply.message);
    }
    println!("{}", reply.message);
    Ok(())
}

/// Names the file `trident up` would load for this peer, exactly when the config is given.
fn offline_hint(name: &str, peer: &[u8; 32], config: Option<&Path>) -> String {
    let Some(config) = config else {
        return format!(
            "peer-<hash>.chain in {} (default; pass --config FILE to have the exact file named)",
            crate::config::default_state_dir(name).display()
        );
    };
    match chain_file(config, peer) {
        Ok(file) => file.display().to_string(),
        Err(e) => format!("(cannot name it from {}: {e:#})", config.display()),
    }
}

fn chain_file(config: &Path, peer: &[u8; 32]) -> Result<PathBuf> {
    let loaded = crate::config::load(config)?;
    let settings = loaded.settings;
    let dir = settings
        .state_dir
        .context("the config has no state directory")?;
    if !dir.is_dir() {
        bail!("{} does not exist: no chain was ever saved", dir.display());
    }
    let store = ChainStore::open(&dir).context("opening the state directory")?;
    let local = PublicKey::from(&settings.private_key);
    if !settings
        .peers
        .iter()
        .any(|p| p.keymix.public_key.as_bytes() == peer)
    {
        bail!("the config has no such peer");
    }
    Ok(store.path(local.as_bytes(), peer))
}
