//! What `trident check` and `trident up` learn about the machine before anything is set up,
//! without side effects: whether the device name is taken, whether the state directory can
//! be one, whether the WireGuard interface of the external data plane is there with the
//! right key and peers. `up` would refuse each of these later, half-way through its setup
//! and with a less direct message; asking first lets `check` report them.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use keymix::PublicKey;

use crate::external::{uapi, WireGuard};
use crate::settings::TunnelSettings;

/// Whether a network device of this name exists in this network namespace.
pub fn device_exists(name: &str) -> bool {
    nix::net::if_::if_nametoindex(name).is_ok()
}

/// Why `dir` cannot be the state directory (`ChainStore::open` would refuse it), if it
/// cannot: a file or a symbolic link where the directory should be, a directory of another
/// user, or a file where a missing directory would have to be created.
pub fn state_dir_problem(dir: &Path) -> Option<String> {
    let ours = nix::unistd::geteuid().as_raw();
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Some(format!(
            "{} is a symbolic link; the state directory must be a real directory",
            dir.display()
        )),
        Ok(m) if !m.is_dir() => Some(format!(
            "{} exists and is not a directory (the keymix chains are kept in it)",
            dir.display()
        )),
        Ok(m) if m.uid() != ours => Some(format!(
            "{} is owned by uid {}, not by uid {ours} who runs trident",
            dir.display(),
            m.uid()
        )),
        Ok(_) => None,
        // Missing: `up` creates it; whatever exists above it must be a directory.
        Err(_) => dir
            .ancestors()
            .skip(1)
            .find(|a| a.symlink_metadata().is_ok())
            .filter(|a| !a.is_dir())
            .map(|a| {
                format!(
                    "{} cannot be created: {} is not a directory",
                    dir.display(),
                    a.display()
                )
            }),
    }
}

/// The external data plane: the WireGuard interface must exist (UAPI socket or kernel
/// device), hold Trident's key pair and have every configured peer (read-only calls).
pub fn external_wireguard(settings: &TunnelSettings) -> Result<(), String> {
    let Some(wg_name) = &settings.wireguard else {
        return Ok(());
    };
    let mut wg = WireGuard::open(wg_name, Path::new(uapi::SOCKET_DIR))
        .map_err(|e| format!("{e}: create it first (e.g. `wg-quick up {wg_name}`)"))?;
    let device = wg
        .device()
        .map_err(|e| format!("WireGuard interface {wg_name}: {e}"))?;
    let own = PublicKey::from(&settings.private_key);
    crate::external::driver::check_device(&device, wg_name, own.as_bytes(), settings)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_exists_and_a_made_up_name_does_not() {
        assert!(device_exists("lo"));
        assert!(!device_exists("trd-no-such0"));
    }

    #[test]
    fn a_file_is_no_state_dir() {
        let dir = std::env::temp_dir().join(format!("trident-preflight-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(state_dir_problem(&dir), None);
        assert_eq!(state_dir_problem(&dir.join("new/deeper")), None);
        let file = dir.join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(state_dir_problem(&file)
            .unwrap()
            .contains("not a directory"));
        assert!(state_dir_problem(&file.join("sub"))
            .unwrap()
            .contains("cannot be created"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
