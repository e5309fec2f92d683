//! Which keymix protocol versions a session speaks with its peer (docs/PROTOCOL.md,
//! "Versions and the upgrade"): `min_version` and `max_version` from the config, and the
//! pin a completed version-2 exchange leaves in the state file.

use std::time::Instant;

use super::diagnosis::Unverified;
use super::Session;
use crate::counters::DropReason;
use crate::Version;

impl Session {
    /// Whether a message of `version` for this peer may be looked at at all. A version-1
    /// message for a peer that has spoken version 2 (or must) is a downgrade: counted as
    /// unverified, never believed, whatever it carries.
    pub(super) fn check_version(
        &mut self,
        now: Instant,
        version: Version,
    ) -> Result<(), DropReason> {
        if version > self.cfg.max_version {
            return Err(DropReason::UnsupportedVersion);
        }
        let floor = self.cfg.min_version.byte().max(self.state.pinned_version);
        if version.byte() < floor {
            self.observe_unverified(now, Unverified::Downgrade);
            return Err(DropReason::Downgrade);
        }
        Ok(())
    }

    pub(super) fn mac1_key_peer(&self, version: Version) -> [u8; 32] {
        self.mac1_keys_peer[usize::from(version.byte() - 1)]
    }

    pub(super) fn cookie_key_peer(&self, version: Version) -> [u8; 32] {
        self.cookie_keys_peer[usize::from(version.byte() - 1)]
    }
}
