//! The state directory: one file per peer holding keymix's persisted chain
//! ([`keymix::ChainState`]), so a restarted gateway continues the chain instead of falling
//! back to C_0 (docs/PROTOCOL.md, "Persisted state"). Files are written atomically with
//! mode 0600 through [`crate::secret_file`]; a missing, corrupt or foreign file is one
//! clear log line and a fresh bootstrap, never a crash.

use std::path::{Path, PathBuf};

use keymix::ChainState;
use sha2::{Digest, Sha256};

use crate::secret_file::{self, SecretFileError};

pub struct ChainStore {
    dir: PathBuf,
}

impl ChainStore {
    /// Opens (creating, mode 0700) the state directory.
    pub fn open(dir: &Path) -> Result<Self, SecretFileError> {
        secret_file::ensure_private_dir(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
        })
    }

    /// `peer-<first 16 bytes of SHA-256(local || peer), hex>.chain`: keyed by both static
    /// keys, so a new private key never picks up the old key's chains.
    pub fn path(&self, local: &[u8; 32], peer: &[u8; 32]) -> PathBuf {
        let mut h = Sha256::new();
        h.update(local);
        h.update(peer);
        let digest = h.finalize();
        let name: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("peer-{name}.chain"))
    }

    /// The saved chain for this pair of keys, or None (with a log line saying why).
    pub fn load(&self, local: &[u8; 32], peer: &[u8; 32]) -> Option<ChainState> {
        let path = self.path(local, peer);
        let bytes = match secret_file::read(&path, keymix::chain_state::ENCODED_LEN) {
            Ok(Some(b)) => b,
            Ok(None) => {
                tracing::info!(path = %path.display(), "no saved chain for this peer: first contact");
                return None;
            }
            Err(e) => {
                tracing::error!(error = %display_chain(&e), "saved chain unusable: fresh bootstrap");
                return None;
            }
        };
        match ChainState::from_bytes(&bytes, local, peer) {
            Ok(s) => {
                tracing::info!(path = %path.display(), epoch = s.epoch, "continuing the saved chain");
                Some(s)
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "saved chain unusable: fresh bootstrap");
                None
            }
        }
    }

    /// Saves `state` if there is a store; a failure is logged loudly and returned as false
    /// (not fatal: the running tunnel keeps its keys; after a restart the stale file shows
    /// up as a chain mismatch, never as a weaker key).
    pub fn persist(store: Option<&Self>, peer: usize, state: &ChainState) -> bool {
        let Some(store) = store else {
            return true;
        };
        match store.save(state) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!(peer, error = %display_chain(&e), "could not save the keymix chain");
                false
            }
        }
    }

    pub fn save(&self, state: &ChainState) -> Result<(), SecretFileError> {
        let path = self.path(&state.local_public, &state.peer_public);
        secret_file::write_atomic(&path, &state.to_bytes())
    }
}

/// An error with its sources, on one line.
fn display_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn save_load_round_trip_and_foreign_file_is_ignored() {
        let dir = std::env::temp_dir().join(format!("trident-chain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ChainStore::open(&dir).unwrap();
        let mut s = ChainState::empty([1; 32], [2; 32]);
        assert!(store.load(&[1; 32], &[2; 32]).is_none());
        s.epoch = 5;
        s.chain = [9; 32];
        store.save(&s).unwrap();
        let back = store.load(&[1; 32], &[2; 32]).unwrap();
        assert_eq!((back.epoch, back.chain), (5, [9; 32]));
        // A corrupt file is a fresh start, not a crash.
        let path = store.path(&[1; 32], &[2; 32]);
        std::fs::write(&path, b"garbage").unwrap();
        assert!(store.load(&[1; 32], &[2; 32]).is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
