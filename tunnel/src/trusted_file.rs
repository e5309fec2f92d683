//! The policy for files a config names and `trident up` runs on (issue 21), as wg-quick
//! and sshd's StrictModes have it: whoever can write the config can make `up` run any
//! `pre_up` hook as its user, and whoever can write a key, PSK or CA file chooses the
//! keys, so these files are used only when
//!
//! * the file is a regular file (not a device: `/dev/zero` as a key would read forever;
//!   not a FIFO, which would block), of bounded size;
//! * it is owned by root or by the effective uid running trident (the service user);
//! * no group or other user can write it, and a secret (key, PSK) is not readable by other
//!   users (group read stays allowed, for `root:trident 0640` with `User=trident`);
//! * every directory on its path, as written and after symbolic links are resolved, is
//!   owned by root or us and not writable by the group or others unless sticky (`/tmp`),
//!   and every symbolic link on the way is owned by root or us, since whoever controls a
//!   directory or link on the way can put another file in its place.
//!
//! The file is checked on the descriptor it is then read from (`fstat`), opened with
//! `O_NOFOLLOW` on its resolved path, so the checked file is the read one. A refusal names
//! the path, its owner and its mode ([`Refusal`], shared with [`crate::secret_file`]).

use std::fs::{File, Metadata, OpenOptions};
use std::io::{self, Read as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::secret_file::{euid, io_err, nofollow_flags, refused, Refusal, SecretFileError, STICKY};

/// Group or other write.
const GROUP_OTHER_WRITE: u32 = 0o022;
/// Any access by other users.
const OTHER_ANY: u32 = 0o007;

/// What a file holds, which decides who may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trust {
    /// Read by trident, not secret: the config, a CA or certificate.
    Public,
    /// A private key or PSK: also not readable by other users.
    Secret,
}

/// "uid 65534 (nobody)", or just the uid when it has no name.
fn user_label(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("uid {uid} ({})", user.name),
        _ => format!("uid {uid}"),
    }
}

fn trusted_owner(uid: u32) -> bool {
    uid == 0 || uid == euid()
}

fn untrusted_owner(meta: &Metadata) -> Refusal {
    let allowed = match euid() {
        0 => "root".to_owned(),
        ours => format!("root or {}, who runs trident", user_label(ours)),
    };
    Refusal::UntrustedOwner {
        owner: user_label(meta.uid()),
        mode: meta.mode() & 0o7777,
        allowed,
    }
}

/// A directory on the way, or the symbolic link that led to it.
fn check_dir(dir: &Path, file: &Path) -> Result<(), SecretFileError> {
    let in_dir = |reason| {
        refused(
            file,
            Refusal::InDirectory {
                dir: dir.to_owned(),
                reason: Box::new(reason),
            },
        )
    };
    let link = std::fs::symlink_metadata(dir).map_err(io_err("stat directory", dir))?;
    if link.file_type().is_symlink() && !trusted_owner(link.uid()) {
        return Err(in_dir(untrusted_owner(&link)));
    }
    let meta = std::fs::metadata(dir).map_err(io_err("stat directory", dir))?;
    if !meta.is_dir() {
        return Err(in_dir(Refusal::NotDirectory));
    }
    if !trusted_owner(meta.uid()) {
        return Err(in_dir(untrusted_owner(&meta)));
    }
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_OTHER_WRITE != 0 && mode & STICKY == 0 {
        return Err(in_dir(Refusal::DirectoryWritableByOthers { mode }));
    }
    Ok(())
}

/// Every directory above `path` (lexically, so a symbolic link on the way is seen).
fn check_dirs_of(path: &Path, file: &Path) -> Result<(), SecretFileError> {
    let mut dirs: Vec<&Path> = path.ancestors().skip(1).collect();
    // From the root down, so the refusal names the outermost directory at fault.
    dirs.reverse();
    for dir in dirs.into_iter().filter(|d| !d.as_os_str().is_empty()) {
        check_dir(dir, file)?;
    }
    Ok(())
}

/// The checks of the file itself, on its open descriptor.
fn check_file(
    path: &Path,
    file: &File,
    trust: Trust,
    max_len: usize,
) -> Result<u64, SecretFileError> {
    let meta = file.metadata().map_err(io_err("stat", path))?;
    if !meta.file_type().is_file() {
        return Err(refused(path, Refusal::NotRegularFile));
    }
    if !trusted_owner(meta.uid()) {
        return Err(refused(path, untrusted_owner(&meta)));
    }
    let mode = meta.mode() & 0o7777;
    let owner = || user_label(meta.uid());
    if mode & GROUP_OTHER_WRITE != 0 {
        return Err(refused(
            path,
            Refusal::WritableByOthers {
                owner: owner(),
                mode,
            },
        ));
    }
    if trust == Trust::Secret && mode & OTHER_ANY != 0 {
        return Err(refused(
            path,
            Refusal::ReadableByOthers {
                owner: owner(),
                mode,
            },
        ));
    }
    if meta.len() > u64::try_from(max_len).unwrap_or(u64::MAX) {
        return Err(refused(path, Refusal::TooLarge { max_len }));
    }
    Ok(meta.len())
}

/// Opens `path` under the policy; `Ok(None)` when it does not exist.
fn open(path: &Path, trust: Trust, max_len: usize) -> Result<Option<File>, SecretFileError> {
    let absolute = std::path::absolute(path).map_err(io_err("resolve", path))?;
    let real = match std::fs::canonicalize(&absolute) {
        Ok(real) => real,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("resolve", path)(e)),
    };
    check_dirs_of(&absolute, path)?;
    let link = std::fs::symlink_metadata(&absolute).map_err(io_err("stat", path))?;
    if link.file_type().is_symlink() && !trusted_owner(link.uid()) {
        return Err(refused(path, untrusted_owner(&link)));
    }
    if real != absolute {
        check_dirs_of(&real, path)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(nofollow_flags())
        .open(&real)
        .map_err(io_err("open", path))?;
    check_file(path, &file, trust, max_len)?;
    Ok(Some(file))
}

/// Reads a file a config names, at most `max_len` bytes, under the policy; `Ok(None)` when
/// it does not exist.
pub fn read(
    path: &Path,
    trust: Trust,
    max_len: usize,
) -> Result<Option<Zeroizing<Vec<u8>>>, SecretFileError> {
    let Some(file) = open(path, trust, max_len)? else {
        return Ok(None);
    };
    let mut buf = Zeroizing::new(Vec::with_capacity(max_len.min(64 * 1024)));
    // `take` bounds the read even if the file grows after the size check.
    let limit = u64::try_from(max_len).unwrap_or(u64::MAX).saturating_add(1);
    file.take(limit)
        .read_to_end(&mut buf)
        .map_err(io_err("read", path))?;
    if buf.len() > max_len {
        return Err(refused(path, Refusal::TooLarge { max_len }));
    }
    Ok(Some(buf))
}

/// Checks a file that another component reads itself (TLS files: the qkd crate reads them
/// with its own bound) without reading it; `Ok(false)` when it does not exist.
pub fn check(path: &Path, trust: Trust, max_len: usize) -> Result<bool, SecretFileError> {
    Ok(open(path, trust, max_len)?.is_some())
}

/// The directories a file would be created in must pass the same directory checks (for
/// `trident genkey FILE` and `trident pair`): `path`'s parent and everything above it.
pub fn check_parent_dirs(path: &Path) -> Result<(), SecretFileError> {
    let absolute: PathBuf = std::path::absolute(path).map_err(io_err("resolve", path))?;
    check_dirs_of(&absolute, path)
}

#[cfg(test)]
#[path = "trusted_file_tests.rs"]
mod tests;
