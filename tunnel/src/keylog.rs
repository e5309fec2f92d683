//! The opt-in RNDL key log (docs/PROTOCOL.md, "Key log"): one line per epoch with the
//! per-source secrets, for `trident audit`. It holds secrets, so it is created owner-only
//! and is only ever appended to; the line format belongs to keymix.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use keymix::keylog::KeyLogEntry;

use crate::error::TunnelError;
use crate::secret_file;

pub struct KeyLog {
    path: PathBuf,
    file: File,
}

impl KeyLog {
    /// Opens `path` for appending: created `O_EXCL` with mode 0600, or an existing file only
    /// if it is ours and private ([`secret_file::open_append`]), so a file someone planted in
    /// a shared directory never receives secrets. Opening at start-up rather than at the
    /// first epoch makes a bad path fail `up` at once instead of minutes later.
    pub fn open(path: &Path) -> Result<Self, TunnelError> {
        let file = secret_file::open_append(path).map_err(TunnelError::KeyLog)?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Notes which protocol delivered the QKD keys of the epochs that follow (a comment
    /// line, `# qkd_protocol=skip`), so `trident audit` can name it.
    pub fn note_qkd_protocol(&mut self, protocol: &str) {
        let line = format!("# qkd_protocol={protocol}\n");
        if let Err(e) = self.file.write_all(line.as_bytes()) {
            tracing::error!(path = %self.path.display(), "key log write failed: {e}");
        }
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
