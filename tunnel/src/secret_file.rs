//! Files that hold secrets (key log, state file) and the private runtime directory.
//!
//! Every path here may sit in a directory someone else can write to (`/tmp`, a shared
//! `/var/tmp`), so nothing is trusted by name: files are opened with `O_NOFOLLOW` and then
//! checked through the descriptor (`fstat`), new files are created `O_EXCL` with mode 0600,
//! and an existing file is used only if it is a regular file owned by our effective uid that
//! no group or other user can touch. A refusal names the path and the reason; an OS error is
//! kept as the `source` only, so an error chain prints it once.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{
    DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _, PermissionsExt as _,
};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

/// Mode bits that let the group or other users read, write or search.
const GROUP_OTHER: u32 = 0o077;
pub(crate) const OTHER_WRITE: u32 = 0o002;
pub(crate) const STICKY: u32 = 0o1000;

#[derive(Debug, thiserror::Error)]
pub enum SecretFileError {
    #[error("refusing {path}: {reason}")]
    Refused { path: PathBuf, reason: Refusal },
    #[error("cannot {op} {path}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Why an existing path is not used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("it is a symbolic link")]
    Symlink,
    #[error("not a regular file")]
    NotRegularFile,
    #[error("not a directory")]
    NotDirectory,
    #[error("owned by uid {owner}, not by us (uid {ours})")]
    ForeignOwner { owner: u32, ours: u32 },
    #[error("mode {mode:04o} gives the group or others access (want 0600)")]
    GroupOrOtherAccess { mode: u32 },
    #[error("it has {links} hard links")]
    HardLinked { links: u64 },
    #[error("directory mode {mode:04o} lets others write without the sticky bit")]
    DirectoryWritableByOthers { mode: u32 },
    #[error("larger than {max_len} bytes")]
    TooLarge { max_len: usize },
    #[error("it changed size while being read")]
    Changed,
    /// The policy for files a config names (crate::trusted_file): who may own them.
    #[error("owned by {owner}, mode {mode:04o}: only {allowed} may own it")]
    UntrustedOwner {
        owner: String,
        mode: u32,
        /// "root", or "root or uid 1000 (alice), who runs trident".
        allowed: String,
    },
    #[error("mode {mode:04o} (owner {owner}) lets the group or other users write it")]
    WritableByOthers { owner: String, mode: u32 },
    #[error("mode {mode:04o} (owner {owner}) lets every user read this secret: chmod o-rwx (0600, or 0640 for a service group)")]
    ReadableByOthers { owner: String, mode: u32 },
    /// A directory on the way to the file is not trustworthy: whoever controls it can
    /// replace the file.
    #[error("its directory {dir}: {reason}")]
    InDirectory { dir: PathBuf, reason: Box<Refusal> },
}

pub(crate) fn refused(path: &Path, reason: Refusal) -> SecretFileError {
    SecretFileError::Refused {
        path: path.to_owned(),
        reason,
    }
}

pub(crate) fn io_err<'a>(
    op: &'static str,
    path: &'a Path,
) -> impl FnOnce(io::Error) -> SecretFileError + 'a {
    move |source| {
        // ELOOP from O_NOFOLLOW: the last component is a symlink; say so instead of the
        // kernel's "too many levels of symbolic links".
        if source.raw_os_error() == Some(nix::libc::ELOOP) {
            return refused(path, Refusal::Symlink);
        }
        SecretFileError::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }
}

/// An existing file we may not open (no CAP_DAC_OVERRIDE after the privilege drop, or
/// `fs.protected_regular`) is refused for the reason that matters: whose it is.
fn explain_denied(path: &Path, source: io::Error, op: &'static str) -> SecretFileError {
    let denied = matches!(
        source.raw_os_error(),
        Some(nix::libc::EACCES | nix::libc::EPERM)
    );
    if denied {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            let ours = euid();
            if meta.file_type().is_symlink() {
                return refused(path, Refusal::Symlink);
            }
            if meta.uid() != ours {
                return refused(
                    path,
                    Refusal::ForeignOwner {
                        owner: meta.uid(),
                        ours,
                    },
                );
            }
        }
    }
    io_err(op, path)(source)
}

pub(crate) fn euid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// `O_NONBLOCK` so that opening a FIFO planted under our name cannot hang start-up; it has no
/// effect on the regular files we accept.
pub(crate) fn nofollow_flags() -> i32 {
    nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC | nix::libc::O_NONBLOCK
}

/// The checks for an existing secret file, made on the open descriptor.
fn check_owned_private(path: &Path, file: &File) -> Result<std::fs::Metadata, SecretFileError> {
    let meta = file.metadata().map_err(io_err("stat", path))?;
    if !meta.file_type().is_file() {
        return Err(refused(path, Refusal::NotRegularFile));
    }
    let ours = euid();
    if meta.uid() != ours {
        return Err(refused(
            path,
            Refusal::ForeignOwner {
                owner: meta.uid(),
                ours,
            },
        ));
    }
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_OTHER != 0 {
        return Err(refused(path, Refusal::GroupOrOtherAccess { mode }));
    }
    // A second name for the file may be a link someone else planted to make us write into
    // (or read from) a file of ours elsewhere.
    if meta.nlink() != 1 {
        return Err(refused(
            path,
            Refusal::HardLinked {
                links: meta.nlink(),
            },
        ));
    }
    Ok(meta)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// A directory we write a secret into must not let others swap names under us.
fn check_write_dir(dir: &Path) -> Result<(), SecretFileError> {
    let meta = std::fs::symlink_metadata(dir).map_err(io_err("stat directory", dir))?;
    if meta.file_type().is_symlink() {
        return Err(refused(dir, Refusal::Symlink));
    }
    if !meta.is_dir() {
        return Err(refused(dir, Refusal::NotDirectory));
    }
    let mode = meta.mode() & 0o7777;
    if mode & OTHER_WRITE != 0 && mode & STICKY == 0 {
        return Err(refused(dir, Refusal::DirectoryWritableByOthers { mode }));
    }
    Ok(())
}

#[path = "secret_file_batch.rs"]
mod batch;
pub use batch::write_atomic_batch;

/// Replaces `path` with `bytes` atomically: a reader sees the old or the new content, never
/// a part, and a crash leaves at most a stray temp file (mode 0600) beside it.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| SecretFileError::Io {
        op: "get randomness for a temp name beside",
        path: path.to_owned(),
        source: io::Error::other(e.to_string()),
    })?;
    write_atomic_with_suffix(path, bytes, u64::from_le_bytes(suffix))
}

fn temp_path(path: &Path, suffix: u64) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{name}.{suffix:016x}.tmp"))
}

fn write_atomic_with_suffix(path: &Path, bytes: &[u8], suffix: u64) -> Result<(), SecretFileError> {
    let dir = parent_dir(path);
    check_write_dir(dir)?;
    let tmp = temp_path(path, suffix);
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    let written = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err("write", &tmp))
        .and_then(|()| {
            std::fs::rename(&tmp, path).map_err(io_err("rename a temp file over", path))
        });
    if let Err(e) = written {
        // Best effort: the temp file is ours (we created it O_EXCL) and holds the secret.
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    // The rename is durable only once the directory entry is on disk.
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("sync directory", dir))
}

/// Creates `path` with `bytes`, mode 0600 whatever the umask, never replacing an existing
/// file or following a symbolic link (`trident genkey FILE`, `trident pair`).
pub fn create_new(path: &Path, bytes: &[u8]) -> Result<(), SecretFileError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(io_err("create", path))?;
    // The mode given to open is masked by the umask; 0600 masked can only lose bits, and a
    // key the owner cannot read is no use, so set it on the descriptor.
    file.set_permissions(Permissions::from_mode(0o600))
        .map_err(io_err("set mode 0600 on", path))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(io_err("write", path))
}

/// Reads a secret file of at most `max_len` bytes; `Ok(None)` if it does not exist.
pub fn read(path: &Path, max_len: usize) -> Result<Option<Zeroizing<Vec<u8>>>, SecretFileError> {
    let file = match OpenOptions::new()
        .read(true)
        .custom_flags(nofollow_flags())
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(explain_denied(path, e, "open")),
    };
    let meta = check_owned_private(path, &file)?;
    let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
    if len > max_len {
        return Err(refused(path, Refusal::TooLarge { max_len }));
    }
    // One allocation, never grown, so no unzeroed copy of the secret is left behind by a
    // reallocation; one spare byte tells "grew while reading" from "exactly this size".
    let mut buf = Zeroizing::new(vec![0u8; len.saturating_add(1)]);
    let mut filled = 0;
    let mut reader = &file;
    while let Some(rest) = buf.get_mut(filled..).filter(|r| !r.is_empty()) {
        match reader.read(rest) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err("read", path)(e)),
        }
    }
    if filled > len {
        let reason = if filled > max_len {
            Refusal::TooLarge { max_len }
        } else {
            Refusal::Changed
        };
        return Err(refused(path, reason));
    }
    buf.truncate(filled);
    Ok(Some(buf))
}

/// Opens the append-only key log: created `O_EXCL` with mode 0600 if missing, otherwise
/// used only if it passes the checks of an existing secret file.
pub fn open_append(path: &Path) -> Result<File, SecretFileError> {
    // Create-or-open races with someone deleting or creating the file between the two
    // attempts; a few rounds settle it, and a persistent race is an error, not a loop.
    for _ in 0..3 {
        match OpenOptions::new()
            .append(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(path)
        {
            Ok(f) => return Ok(f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io_err("create", path)(e)),
        }
        match OpenOptions::new()
            .append(true)
            .custom_flags(nofollow_flags())
            .open(path)
        {
            Ok(f) => {
                check_owned_private(path, &f)?;
                return Ok(f);
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(explain_denied(path, e, "open")),
        }
    }
    Err(SecretFileError::Io {
        op: "open (it kept appearing and disappearing)",
        path: path.to_owned(),
        source: io::Error::from(io::ErrorKind::NotFound),
    })
}

/// Creates `path` (and missing parents) with mode 0700, or checks that an existing one is a
/// real directory owned by us and tightens its mode to 0700.
pub fn ensure_private_dir(path: &Path) -> Result<(), SecretFileError> {
    match DirBuilder::new().recursive(true).mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) => return Err(io_err("create directory", path)(e)),
    }
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // With O_DIRECTORY, a symlink fails as ENOTDIR: tell the two apart for the message.
            Some(nix::libc::ENOTDIR) => match std::fs::symlink_metadata(path) {
                Ok(m) if m.file_type().is_symlink() => refused(path, Refusal::Symlink),
                _ => refused(path, Refusal::NotDirectory),
            },
            _ => io_err("open directory", path)(e),
        })?;
    let meta = dir.metadata().map_err(io_err("stat directory", path))?;
    let ours = euid();
    if meta.uid() != ours {
        return Err(refused(
            path,
            Refusal::ForeignOwner {
                owner: meta.uid(),
                ours,
            },
        ));
    }
    if meta.mode() & 0o7777 != 0o700 {
        // fchmod on the descriptor we checked, not on a name that could be swapped.
        dir.set_permissions(Permissions::from_mode(0o700))
            .map_err(io_err("set mode 0700 on", path))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "secret_file_tests.rs"]
mod tests;
