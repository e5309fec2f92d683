//! Several secret files of one directory replaced at once: a group commit. Each file is
//! replaced atomically as by [`super::write_atomic`]; what is shared is the waiting for the
//! disk. A hub persists a chain state three times per peer and epoch (the Init's replay
//! record, the new chain, the confirmed WireGuard initiation), and one sync of a file and
//! its directory takes milliseconds: a thousand peers cannot each have their own.

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use super::{check_write_dir, io_err, parent_dir, temp_path, SecretFileError};

/// Replaces each `(path, bytes)` of `files`, all in directory `dir`. Every temp file is
/// written before the first is synced, so the file system commits them together (on ext4
/// the first fsync commits the journal transaction holding all of them and the others find
/// nothing left to do), then each is renamed over its file and the directory is synced
/// once. One result per file, in order; a failed file leaves its old content.
pub fn write_atomic_batch<B: AsRef<[u8]>>(
    dir: &Path,
    files: &[(PathBuf, B)],
) -> Vec<Result<(), SecretFileError>> {
    if let Err(e) = check_write_dir(dir) {
        let why = e.to_string();
        return files
            .iter()
            .map(|(path, _)| Err(io_err("write", path)(io::Error::other(why.clone()))))
            .collect();
    }
    let mut staged: Vec<Result<(PathBuf, File), SecretFileError>> = files
        .iter()
        .map(|(path, bytes)| stage(dir, path, bytes.as_ref()))
        .collect();
    for s in &mut staged {
        if let Ok((tmp, file)) = s {
            if let Err(e) = file.sync_all() {
                let _ = std::fs::remove_file(&*tmp);
                *s = Err(io_err("write", tmp)(e));
            }
        }
    }
    let mut results: Vec<Result<(), SecretFileError>> = staged
        .into_iter()
        .zip(files)
        .map(|(s, (path, _))| {
            let (tmp, _file) = s?;
            std::fs::rename(&tmp, path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                io_err("rename a temp file over", path)(e)
            })
        })
        .collect();
    if results.iter().any(Result::is_ok) {
        // The renames are durable only once the directory entries are on disk.
        if let Err(e) = File::open(dir).and_then(|d| d.sync_all()) {
            for r in results.iter_mut().filter(|r| r.is_ok()) {
                *r = Err(io_err("sync directory", dir)(io::Error::new(
                    e.kind(),
                    e.to_string(),
                )));
            }
        }
    }
    results
}

/// Creates the temp file beside `path` (O_EXCL, no symlink, 0600) and writes `bytes`.
fn stage(dir: &Path, path: &Path, bytes: &[u8]) -> Result<(PathBuf, File), SecretFileError> {
    if parent_dir(path) != dir {
        return Err(io_err("write", path)(io::Error::other(format!(
            "not in the batch's directory {}",
            dir.display()
        ))));
    }
    let mut suffix = [0u8; 8];
    getrandom::fill(&mut suffix).map_err(|e| {
        io_err("get randomness for a temp name beside", path)(io::Error::other(e.to_string()))
    })?;
    let tmp = temp_path(path, u64::from_le_bytes(suffix));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(io_err("create", &tmp))?;
    if let Err(e) = file.write_all(bytes) {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err("write", &tmp)(e));
    }
    Ok((tmp, file))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;

    #[test]
    fn replaces_every_file_and_a_failed_one_leaves_the_rest() {
        let dir = std::env::temp_dir().join(format!("trident-batch-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        let name = |i: usize| dir.join(format!("peer-{i}.chain"));
        let first: Vec<(PathBuf, Vec<u8>)> = (0..5).map(|i| (name(i), vec![i as u8; 8])).collect();
        assert!(write_atomic_batch(&dir, &first).iter().all(Result::is_ok));
        // A directory where file 2 should go: its rename fails, the others are replaced.
        std::fs::remove_file(name(2)).unwrap();
        std::fs::create_dir(name(2)).unwrap();
        let second: Vec<(PathBuf, Vec<u8>)> =
            (0..5).map(|i| (name(i), vec![0x10 + i as u8; 9])).collect();
        let results = write_atomic_batch(&dir, &second);
        for (i, r) in results.iter().enumerate() {
            assert_eq!(r.is_ok(), i != 2, "file {i}: {r:?}");
        }
        for i in [0, 1, 3, 4] {
            let back = crate::secret_file::read(&name(i), 64).unwrap().unwrap();
            assert_eq!(back.as_slice(), &[0x10 + i as u8; 9]);
            let mode = std::fs::metadata(name(i)).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // No temp file is left behind, and a file outside the directory is refused.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let elsewhere = [(std::env::temp_dir().join("x.chain"), vec![1u8])];
        assert!(write_atomic_batch(&dir, &elsewhere)[0].is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
