use std::fs::{self, Permissions};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

const NOBODY: u32 = 65534;

/// A fresh 0700 directory under the system temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let p = std::env::temp_dir().join(format!(
            "trident-trusted-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir(&p).unwrap();
        fs::set_permissions(&p, Permissions::from_mode(0o700)).unwrap();
        Self(p)
    }
    fn file(&self, name: &str, bytes: &[u8], mode: u32) -> PathBuf {
        let p = self.0.join(name);
        fs::write(&p, bytes).unwrap();
        fs::set_permissions(&p, Permissions::from_mode(mode)).unwrap();
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn refusal<T: std::fmt::Debug>(r: Result<T, SecretFileError>) -> Refusal {
    match r {
        Err(SecretFileError::Refused { reason, .. }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[test]
fn private_and_public_files_are_read() {
    let d = TempDir::new();
    let key = d.file("a.key", b"secret\n", 0o600);
    let group = d.file("g.key", b"secret\n", 0o640);
    let conf = d.file("a.toml", b"[interface]\n", 0o644);
    assert_eq!(
        read(&key, Trust::Secret, 64).unwrap().unwrap().as_slice(),
        b"secret\n"
    );
    assert!(read(&group, Trust::Secret, 64).unwrap().is_some());
    assert!(read(&conf, Trust::Public, 64).unwrap().is_some());
    assert!(check(&conf, Trust::Public, 64).unwrap());
    assert!(read(&d.0.join("absent"), Trust::Secret, 64)
        .unwrap()
        .is_none());
}

#[test]
fn secrets_readable_by_others_and_files_writable_by_others_are_refused() {
    let d = TempDir::new();
    let key = d.file("a.key", b"k", 0o644);
    assert!(matches!(
        refusal(read(&key, Trust::Secret, 64)),
        Refusal::ReadableByOthers { mode: 0o644, .. }
    ));
    for mode in [0o666, 0o620, 0o602] {
        let conf = d.file("a.toml", b"x", mode);
        assert!(
            matches!(
                refusal(read(&conf, Trust::Public, 64)),
                Refusal::WritableByOthers { .. }
            ),
            "mode {mode:o}"
        );
    }
    let message = read(&key, Trust::Secret, 64).unwrap_err().to_string();
    assert!(
        message.contains("a.key") && message.contains("0644"),
        "{message}"
    );
}

#[test]
fn devices_and_large_files_are_refused_without_reading_them() {
    let start = std::time::Instant::now();
    assert_eq!(
        refusal(read(Path::new("/dev/zero"), Trust::Secret, 64)),
        Refusal::NotRegularFile
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(1));
    let d = TempDir::new();
    let big = d.file("big", &[b'a'; 65], 0o600);
    assert_eq!(
        refusal(read(&big, Trust::Secret, 64)),
        Refusal::TooLarge { max_len: 64 }
    );
}

#[test]
fn a_directory_others_can_write_is_refused_unless_sticky() {
    let d = TempDir::new();
    let sub = d.0.join("open");
    fs::create_dir(&sub).unwrap();
    let key = sub.join("a.key");
    fs::write(&key, b"k").unwrap();
    fs::set_permissions(&key, Permissions::from_mode(0o600)).unwrap();
    fs::set_permissions(&sub, Permissions::from_mode(0o777)).unwrap();
    match refusal(read(&key, Trust::Secret, 64)) {
        Refusal::InDirectory { dir, reason } => {
            assert_eq!(dir, sub);
            assert_eq!(*reason, Refusal::DirectoryWritableByOthers { mode: 0o777 });
        }
        other => panic!("{other:?}"),
    }
    fs::set_permissions(&sub, Permissions::from_mode(0o1777)).unwrap();
    assert!(read(&key, Trust::Secret, 64).unwrap().is_some());
}

#[test]
fn a_symlink_is_followed_but_its_target_directory_is_checked() {
    let d = TempDir::new();
    let open = d.0.join("open");
    fs::create_dir(&open).unwrap();
    let key = open.join("a.key");
    fs::write(&key, b"k").unwrap();
    fs::set_permissions(&key, Permissions::from_mode(0o600)).unwrap();
    let link = d.0.join("link.key");
    std::os::unix::fs::symlink(&key, &link).unwrap();
    assert!(read(&link, Trust::Secret, 64).unwrap().is_some());
    fs::set_permissions(&open, Permissions::from_mode(0o777)).unwrap();
    assert!(matches!(
        refusal(read(&link, Trust::Secret, 64)),
        Refusal::InDirectory { .. }
    ));
}

#[test]
fn files_and_directories_of_another_user_are_refused() {
    if !is_root() {
        return;
    }
    let d = TempDir::new();
    let conf = d.file("a.toml", b"x", 0o644);
    std::os::unix::fs::chown(&conf, Some(NOBODY), None).unwrap();
    let r = refusal(read(&conf, Trust::Public, 64));
    assert!(
        matches!(&r, Refusal::UntrustedOwner { owner, mode: 0o644, .. } if owner.starts_with("uid 65534")),
        "{r:?}"
    );
    std::os::unix::fs::chown(&conf, Some(0), None).unwrap();
    std::os::unix::fs::chown(&d.0, Some(NOBODY), None).unwrap();
    assert!(matches!(
        refusal(read(&conf, Trust::Public, 64)),
        Refusal::InDirectory { .. }
    ));
    // A symbolic link another user owns chooses the file: refused too.
    std::os::unix::fs::chown(&d.0, Some(0), None).unwrap();
    let link = d.0.join("link.toml");
    std::os::unix::fs::symlink(&conf, &link).unwrap();
    std::os::unix::fs::lchown(&link, Some(NOBODY), None).unwrap();
    assert!(matches!(
        refusal(read(&link, Trust::Public, 64)),
        Refusal::UntrustedOwner { .. }
    ));
}

#[test]
fn create_new_makes_0600_files_and_never_replaces() {
    use std::os::unix::fs::MetadataExt as _;
    let d = TempDir::new();
    let p = d.0.join("new.key");
    // Whatever the umask (typically 022 here), the file is 0600.
    crate::secret_file::create_new(&p, b"k\n").unwrap();
    assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    assert!(crate::secret_file::create_new(&p, b"other").is_err());
    assert_eq!(fs::read(&p).unwrap(), b"k\n");
    assert!(check_parent_dirs(&p).is_ok());
}
