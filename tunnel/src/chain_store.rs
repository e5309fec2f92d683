//! The state directory: one file per peer holding keymix's persisted chain
//! ([`keymix::ChainState`]), so a restarted gateway continues the chain instead of falling
//! back to C_0 (docs/PROTOCOL.md, "Persisted state"). Files are written atomically with
//! mode 0600 through [`crate::secret_file`]; a missing, corrupt or foreign file is one
//! clear log line and a fresh bootstrap, never a crash.

use std::path::{Path, PathBuf};

use keymix::ChainState;
use sha2::{Digest, Sha256};

use crate::secret_file::{self, Refusal, SecretFileError};

#[derive(Clone)]
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

    /// The saved chain for this pair of keys, or `None` when there is none (first
    /// contact). A file whose content is unusable (truncated, corrupt, another format or
    /// another pair of keys) is moved aside to `<name>.unreadable-<unix seconds>` with an
    /// error in the log, never overwritten, and the peer starts without a chain. A file
    /// that cannot be read at all (permissions, owner, I/O) is an error: the peer is not
    /// started over it, so the chain in it is never silently replaced.
    pub fn load(&self, local: &[u8; 32], peer: &[u8; 32]) -> Result<Option<ChainState>, String> {
        let path = self.path(local, peer);
        let bytes = match secret_file::read(&path, keymix::chain_state::ENCODED_LEN) {
            Ok(Some(b)) => b,
            Ok(None) => {
                tracing::info!(path = %path.display(), "no saved chain for this peer: first contact");
                return Ok(None);
            }
            Err(SecretFileError::Refused {
                reason: Refusal::TooLarge { .. },
                ..
            }) => return self.set_aside(&path, "larger than any chain state"),
            Err(e) => {
                return Err(format!(
                    "cannot read the saved keymix chain: {} (fix the file's owner or mode, \
                     or move it away for a fresh bootstrap)",
                    display_chain(&e)
                ))
            }
        };
        match ChainState::from_bytes(&bytes, local, peer) {
            Ok(s) => {
                tracing::info!(path = %path.display(), epoch = s.epoch, "continuing the saved chain");
                Ok(Some(s))
            }
            Err(e) => self.set_aside(&path, &e.to_string()),
        }
    }

    /// Moves an unusable state file aside (kept for the operator) and starts without one.
    fn set_aside(&self, path: &Path, why: &str) -> Result<Option<ChainState>, String> {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut aside = path.as_os_str().to_owned();
        aside.push(format!(".unreadable-{secs}"));
        let aside = PathBuf::from(aside);
        std::fs::rename(path, &aside).map_err(|e| {
            format!(
                "the saved keymix chain {} is unusable ({why}) and could not be moved aside: {e}",
                path.display()
            )
        })?;
        tracing::error!(
            path = %path.display(),
            kept = %aside.display(),
            "saved keymix chain unusable ({why}): kept aside, this peer starts without a chain \
             (a bootstrap)"
        );
        Ok(None)
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

    /// `trident reset` of a stopped interface: forgets the saved chain with `peer` and keeps
    /// its replay records (unlike deleting the file, after which a recorded Init or
    /// initiation would pass again), on the same terms as a running interface's reset.
    /// Returns the file and what the reset rests on.
    pub fn reset_offline(
        &self,
        local: &[u8; 32],
        peer: &[u8; 32],
        psk_configured: bool,
        static_only: bool,
    ) -> Result<(PathBuf, keymix::ResetBasis), String> {
        let basis = keymix::reset_basis(psk_configured, static_only).map_err(|e| e.to_string())?;
        let path = self.path(local, peer);
        let mut state = self
            .load(local, peer)?
            .unwrap_or_else(|| ChainState::empty(*local, *peer));
        state.forget_chain(basis == keymix::ResetBasis::StaticOnlyAcknowledged);
        self.save(&state)
            .map_err(|e| format!("cannot write {}: {}", path.display(), display_chain(&e)))?;
        tracing::warn!(path = %path.display(), ?basis, "offline reset: chain forgotten, replay records kept");
        Ok((path, basis))
    }

    /// Saves several peers' states with one wait for the disk
    /// ([`secret_file::write_atomic_batch`]); one result per state, in order.
    pub fn save_batch(&self, states: &[&ChainState]) -> Vec<Result<(), SecretFileError>> {
        let files: Vec<_> = states
            .iter()
            .map(|s| (self.path(&s.local_public, &s.peer_public), s.to_bytes()))
            .collect();
        secret_file::write_atomic_batch(&self.dir, &files)
    }

    pub fn save(&self, state: &ChainState) -> Result<(), SecretFileError> {
        let path = self.path(&state.local_public, &state.peer_public);
        secret_file::write_atomic(&path, &state.to_bytes())
    }
}

/// An error with its sources, on one line.
pub(crate) fn display_chain(e: &dyn std::error::Error) -> String {
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
    fn save_load_round_trip_and_unusable_file_is_kept_aside() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("trident-chain-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = ChainStore::open(&dir).unwrap();
        let mut s = ChainState::empty([1; 32], [2; 32]);
        assert!(store.load(&[1; 32], &[2; 32]).unwrap().is_none());
        s.epoch = 5;
        s.chain = [9; 32];
        store.save(&s).unwrap();
        let back = store.load(&[1; 32], &[2; 32]).unwrap().unwrap();
        assert_eq!((back.epoch, back.chain), (5, [9; 32]));
        // A corrupt file is a fresh start, not a crash, and it is kept aside: the next save
        // writes a new file without destroying the old one.
        let path = store.path(&[1; 32], &[2; 32]);
        std::fs::write(&path, b"garbage").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(store.load(&[1; 32], &[2; 32]).unwrap().is_none());
        assert!(!path.exists());
        let kept: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".unreadable-"))
            .collect();
        assert_eq!(kept.len(), 1);
        assert_eq!(std::fs::read(kept[0].path()).unwrap(), b"garbage");
        // A file the store may not read (group-readable) is an error, not a bootstrap.
        store.save(&s).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let err = store.load(&[1; 32], &[2; 32]).unwrap_err();
        assert!(err.contains("cannot read the saved keymix chain"), "{err}");
        assert!(path.exists(), "left in place");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
