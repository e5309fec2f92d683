//! Every file a config names is read (or, for the TLS files the qkd crate reads, checked)
//! under the file policy of `tunnel::trusted_file`: a regular file of bounded size, owned
//! by root or the user running trident, not writable by others, and a secret not readable
//! by them, in directories nobody else controls. A refusal is a config error at the key
//! that names the file (exit 2), with the file's owner and mode.

use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::Spanned;
use tunnel::secret_file::SecretFileError;
use tunnel::trusted_file::{self, Trust};
use zeroize::Zeroizing;

use super::source::Source;
use super::ConfigError;
use crate::keys::decode_key;

/// A config is a few KiB; a megabyte is a mistake, not a config.
const MAX_CONFIG: usize = 1 << 20;
/// A key or PSK file is one base64 line (44 characters); room for comments or whitespace.
const MAX_KEY_FILE: usize = 4096;
/// The qkd crate's own bound for PEM files.
pub(super) const MAX_PEM_FILE: usize = 256 * 1024;

fn describe(e: SecretFileError) -> String {
    // The whole chain: an OS error is the source of SecretFileError::Io.
    format!("{:#}", anyhow::Error::from(e))
}

/// The config file itself: whoever can write it can make `up` run commands (hooks) as the
/// user running trident, so it falls under the policy too.
pub(super) fn read_config(path: &Path) -> Result<String, ConfigError> {
    let error = |message: String| ConfigError {
        file: path.to_owned(),
        line: None,
        key: None,
        message,
    };
    let bytes = match trusted_file::read(path, Trust::Public, MAX_CONFIG) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(error("cannot read: no such file".to_owned())),
        Err(e @ SecretFileError::Refused { .. }) => {
            return Err(error(format!(
                "{}; whoever can change a config can run commands as trident's user through \
                 its hooks",
                describe(e)
            )))
        }
        Err(e) => return Err(error(describe(e))),
    };
    String::from_utf8(bytes.to_vec()).map_err(|_| error("not UTF-8 text".to_owned()))
}

/// A base64 32-byte key or PSK file, as `trident genkey`/`genpsk` (or wg) write them.
pub(super) fn read_key_file(
    src: &Source,
    path: &Spanned<PathBuf>,
    key: &str,
) -> Result<Zeroizing<[u8; 32]>, ConfigError> {
    let file = src.resolve(path.get_ref());
    let err = |m: String| src.error(Some(path.span()), key, m);
    let bytes = match trusted_file::read(&file, Trust::Secret, MAX_KEY_FILE) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Err(err(format!("{} does not exist", file.display()))),
        Err(e) => return Err(err(describe(e))),
    };
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(decode_key)
        .ok_or_else(|| {
            err(format!(
                "{} does not hold a base64 32-byte key",
                file.display()
            ))
        })
}

/// A secret file of at most `max_len` bytes read whole (SKIP's PSK files).
pub(super) fn read_secret(
    src: &Source,
    path: &Spanned<PathBuf>,
    key: &str,
    max_len: usize,
) -> Result<Zeroizing<Vec<u8>>, ConfigError> {
    let file = src.resolve(path.get_ref());
    let err = |m: String| src.error(Some(path.span()), key, m);
    match trusted_file::read(&file, Trust::Secret, max_len) {
        Ok(Some(bytes)) => Ok(bytes),
        Ok(None) => Err(err(format!("{} does not exist", file.display()))),
        Err(e) => Err(err(describe(e))),
    }
}

/// The TLS files of a `[qkd]` table, checked before the qkd crate reads them: CA and
/// certificate as public files, the key as a secret. A missing file is left to the
/// reader, whose error names it.
pub(super) fn check_tls_files(
    src: &Source,
    files: &[(PathBuf, Range<usize>, &str)],
) -> Result<(), ConfigError> {
    for (path, span, key) in files {
        let trust = if key.ends_with("key_file") {
            Trust::Secret
        } else {
            Trust::Public
        };
        trusted_file::check(path, trust, MAX_PEM_FILE)
            .map_err(|e| src.error(Some(span.clone()), key, describe(e)))?;
    }
    Ok(())
}
