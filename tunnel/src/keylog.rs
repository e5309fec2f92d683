//! The opt-in RNDL key log (docs/PROTOCOL.md, "Key log"): one line per epoch with the
//! per-source secrets, for `trident audit`. It holds secrets, so it is created owner-only
//! and is only ever appended to; the line format belongs to keymix.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use keymix::keylog::KeyLogEntry;

use crate::error::TunnelError;

pub struct KeyLog {
    path: PathBuf,
    file: File,
}

impl KeyLog {
    /// Opens (creating with mode 0600) `path` for appending. Opening at start-up rather than
    /// at the first epoch makes a bad path fail `up` at once instead of minutes later.
    pub fn open(path: &Path) -> Result<Self, TunnelError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| TunnelError::KeyLog {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one epoch's line. A failed write loses that epoch for the audit but must not
    /// stop the tunnel, so it is logged (never the line itself) and otherwise ignored.
    pub fn append(&mut self, entry: &KeyLogEntry) {
        let line = entry.to_line();
        let result = self
            .file
            .write_all(line.as_bytes())
            .and_then(|()| self.file.flush());
        if let Err(e) = result {
            tracing::error!(path = %self.path.display(), epoch = entry.epoch, "key log write failed: {e}");
        }
    }
}
