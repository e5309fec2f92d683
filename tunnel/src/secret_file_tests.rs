use std::fs::{self, Permissions};
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

const NOBODY: u32 = 65534;

/// A fresh directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "trident-secret-file-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir(&p).unwrap();
        fs::set_permissions(&p, Permissions::from_mode(0o700)).unwrap();
        Self(p)
    }
    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn mode_of(p: &Path) -> u32 {
    fs::symlink_metadata(p).unwrap().mode() & 0o7777
}

fn write_with_mode(p: &Path, bytes: &[u8], mode: u32) {
    fs::write(p, bytes).unwrap();
    fs::set_permissions(p, Permissions::from_mode(mode)).unwrap();
}

fn refusal(r: Result<impl std::fmt::Debug, SecretFileError>) -> Refusal {
    match r {
        Err(SecretFileError::Refused { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Foreign ownership can only be set up as root; elsewhere those cases are skipped.
fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn write_atomic_then_read_round_trips_with_mode_0600() {
    let d = TempDir::new();
    let p = d.join("state");
    write_atomic(&p, b"first").unwrap();
    write_atomic(&p, b"second secret").unwrap();
    assert_eq!(mode_of(&p), 0o600);
    assert_eq!(read(&p, 64).unwrap().unwrap().as_slice(), b"second secret");
    // No temp file is left behind.
    assert_eq!(fs::read_dir(&d.0).unwrap().count(), 1);
}

#[test]
fn read_missing_is_none() {
    let d = TempDir::new();
    assert!(read(&d.join("absent"), 64).unwrap().is_none());
}

#[test]
fn read_refuses_symlink() {
    let d = TempDir::new();
    write_with_mode(&d.join("real"), b"x", 0o600);
    std::os::unix::fs::symlink(d.join("real"), d.join("link")).unwrap();
    assert_eq!(refusal(read(&d.join("link"), 64)), Refusal::Symlink);
}

#[test]
fn read_refuses_mode_0644() {
    let d = TempDir::new();
    let p = d.join("state");
    write_with_mode(&p, b"x", 0o644);
    assert_eq!(
        refusal(read(&p, 64)),
        Refusal::GroupOrOtherAccess { mode: 0o644 }
    );
}

#[test]
fn read_refuses_foreign_owner() {
    if !is_root() {
        return;
    }
    let d = TempDir::new();
    let p = d.join("state");
    write_with_mode(&p, b"x", 0o600);
    std::os::unix::fs::chown(&p, Some(NOBODY), None).unwrap();
    assert_eq!(
        refusal(read(&p, 64)),
        Refusal::ForeignOwner {
            owner: NOBODY,
            ours: 0
        }
    );
}

#[test]
fn read_refuses_too_large_and_accepts_exact_size() {
    let d = TempDir::new();
    let p = d.join("state");
    write_with_mode(&p, &[7u8; 33], 0o600);
    assert_eq!(refusal(read(&p, 32)), Refusal::TooLarge { max_len: 32 });
    assert_eq!(read(&p, 33).unwrap().unwrap().len(), 33);
}

#[test]
fn read_refuses_a_fifo_without_blocking() {
    let d = TempDir::new();
    let p = d.join("fifo");
    nix::unistd::mkfifo(&p, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    assert_eq!(refusal(read(&p, 64)), Refusal::NotRegularFile);
}

#[test]
fn write_atomic_refuses_an_existing_temp_path() {
    let d = TempDir::new();
    let p = d.join("state");
    let tmp = temp_path(&p, 42);
    write_with_mode(&tmp, b"planted", 0o644);
    match write_atomic_with_suffix(&p, b"secret", 42) {
        Err(SecretFileError::Io { source, .. }) => {
            assert_eq!(source.kind(), io::ErrorKind::AlreadyExists)
        }
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    assert_eq!(fs::read(&tmp).unwrap(), b"planted");
    assert!(!p.exists());
}

#[test]
fn write_atomic_refuses_a_symlinked_temp_path() {
    let d = TempDir::new();
    let p = d.join("state");
    std::os::unix::fs::symlink(d.join("elsewhere"), temp_path(&p, 7)).unwrap();
    assert!(write_atomic_with_suffix(&p, b"secret", 7).is_err());
    assert!(!d.join("elsewhere").exists());
}

#[test]
fn write_atomic_checks_the_directory() {
    let d = TempDir::new();
    let open = d.join("open");
    fs::create_dir(&open).unwrap();
    fs::set_permissions(&open, Permissions::from_mode(0o777)).unwrap();
    assert_eq!(
        refusal(write_atomic(&open.join("state"), b"s")),
        Refusal::DirectoryWritableByOthers { mode: 0o777 }
    );
    // Sticky (like /tmp): others cannot rename or delete our entries.
    fs::set_permissions(&open, Permissions::from_mode(0o1777)).unwrap();
    write_atomic(&open.join("state"), b"s").unwrap();

    std::os::unix::fs::symlink(&open, d.join("dirlink")).unwrap();
    assert_eq!(
        refusal(write_atomic(&d.join("dirlink").join("state"), b"s")),
        Refusal::Symlink
    );
}

#[test]
fn open_append_creates_0600_and_appends() {
    let d = TempDir::new();
    let p = d.join("keylog");
    open_append(&p).unwrap().write_all(b"a\n").unwrap();
    open_append(&p).unwrap().write_all(b"b\n").unwrap();
    assert_eq!(mode_of(&p), 0o600);
    assert_eq!(fs::read(&p).unwrap(), b"a\nb\n");
}

#[test]
fn open_append_refuses_foreign_0644_file_in_world_writable_dir() {
    if !is_root() {
        return;
    }
    // The reported attack: someone pre-creates the key log in a shared directory.
    let d = TempDir::new();
    fs::set_permissions(&d.0, Permissions::from_mode(0o1777)).unwrap();
    let p = d.join("trident.keylog");
    write_with_mode(&p, b"", 0o644);
    std::os::unix::fs::chown(&p, Some(NOBODY), None).unwrap();
    let err = open_append(&p).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "refusing {}: owned by uid 65534, not by us (uid 0)",
            p.display()
        )
    );
    assert_eq!(fs::read(&p).unwrap(), b"");
}

/// After the privilege drop root has no CAP_DAC_OVERRIDE, so opening someone else's 0644
/// file fails with EACCES before any fstat: the refusal must still say whose file it is.
#[test]
fn without_dac_override_a_foreign_file_is_refused_by_owner() {
    if !is_root() {
        return;
    }
    let d = TempDir::new();
    let p = d.join("trident.keylog");
    write_with_mode(&p, b"", 0o644);
    std::os::unix::fs::chown(&p, Some(NOBODY), None).unwrap();
    // Capabilities are per thread: drop it on a thread of our own only.
    let (append, read_back) = std::thread::spawn(move || {
        for cap in [
            caps::Capability::CAP_DAC_OVERRIDE,
            caps::Capability::CAP_DAC_READ_SEARCH,
            caps::Capability::CAP_FOWNER,
        ] {
            caps::drop(None, caps::CapSet::Effective, cap).unwrap();
        }
        (open_append(&p).map(|_| ()), read(&p, 64).map(|_| ()))
    })
    .join()
    .unwrap();
    let foreign = Refusal::ForeignOwner {
        owner: NOBODY,
        ours: 0,
    };
    assert_eq!(refusal(append), foreign);
    assert_eq!(refusal(read_back), foreign);
}

#[test]
fn open_append_refuses_symlink_mode_and_hard_link() {
    let d = TempDir::new();
    let target = d.join("target");
    write_with_mode(&target, b"", 0o600);
    std::os::unix::fs::symlink(&target, d.join("link")).unwrap();
    assert_eq!(refusal(open_append(&d.join("link"))), Refusal::Symlink);

    fs::hard_link(&target, d.join("hard")).unwrap();
    assert_eq!(
        refusal(open_append(&d.join("hard"))),
        Refusal::HardLinked { links: 2 }
    );

    let loose = d.join("loose");
    write_with_mode(&loose, b"", 0o640);
    assert_eq!(
        refusal(open_append(&loose)),
        Refusal::GroupOrOtherAccess { mode: 0o640 }
    );
    assert_eq!(fs::read(&target).unwrap(), b"");
}

#[test]
fn ensure_private_dir_creates_and_tightens() {
    let d = TempDir::new();
    let nested = d.join("a/b/run");
    ensure_private_dir(&nested).unwrap();
    assert_eq!(mode_of(&nested), 0o700);

    let loose = d.join("loose");
    fs::create_dir(&loose).unwrap();
    fs::set_permissions(&loose, Permissions::from_mode(0o777)).unwrap();
    ensure_private_dir(&loose).unwrap();
    assert_eq!(mode_of(&loose), 0o700);
}

#[test]
fn ensure_private_dir_refuses_symlink_file_and_foreign_owner() {
    let d = TempDir::new();
    let real = d.join("real");
    fs::create_dir(&real).unwrap();
    std::os::unix::fs::symlink(&real, d.join("link")).unwrap();
    assert_eq!(
        refusal(ensure_private_dir(&d.join("link"))),
        Refusal::Symlink
    );

    write_with_mode(&d.join("file"), b"", 0o600);
    assert!(ensure_private_dir(&d.join("file")).is_err());

    if is_root() {
        let foreign = d.join("foreign");
        fs::create_dir(&foreign).unwrap();
        fs::set_permissions(&foreign, Permissions::from_mode(0o777)).unwrap();
        std::os::unix::fs::chown(&foreign, Some(NOBODY), None).unwrap();
        assert_eq!(
            refusal(ensure_private_dir(&foreign)),
            Refusal::ForeignOwner {
                owner: NOBODY,
                ours: 0
            }
        );
        assert_eq!(mode_of(&foreign), 0o777);
    }
}

#[test]
fn io_errors_do_not_repeat_the_os_text() {
    let d = TempDir::new();
    let err = open_append(&d.join("missing-dir/keylog")).unwrap_err();
    let top = err.to_string();
    let source = std::error::Error::source(&err).unwrap().to_string();
    assert!(!top.contains(&source), "{top:?} repeats {source:?}");
    assert!(top.contains("missing-dir/keylog"), "{top:?}");
}
