//! Operator conveniences of the command line (issue 11): shell completions, the version
//! with its git revision, interface-name checking for every command that takes one, where
//! the control sockets live and whether an interface runs.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::CommandFactory;
use clap_complete::Shell;
use tunnel::process_control::Liveness;
use tunnel::settings::CONTROL_DIR;

/// `trident --version`: the crate version plus `git rev-parse --short HEAD` when the build
/// had git (build.rs).
pub const VERSION: &str = env!("TRIDENT_VERSION");

/// Linux interface names: 1-15 bytes of A-Z a-z 0-9 _ . - and not `.` or `..`. Used as a
/// clap value parser, so `trident status ../../etc/passwd` never becomes a path.
pub fn interface_name(name: &str) -> Result<String, String> {
    let ok = (1..=15).contains(&name.len())
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if ok {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "{name:?} is not an interface name (1-15 characters of A-Z a-z 0-9 _ . -, not . or ..)"
        ))
    }
}

/// The control-socket directory: systemd's `RuntimeDirectory=` (`RUNTIME_DIRECTORY`, the
/// first entry when several are listed), else `/run/trident`.
pub fn control_dir() -> PathBuf {
    control_dir_in(std::env::var_os("RUNTIME_DIRECTORY"))
}

fn control_dir_in(runtime_directory: Option<std::ffi::OsString>) -> PathBuf {
    runtime_directory
        .and_then(|v| {
            v.to_string_lossy()
                .split(':')
                .map(str::trim)
                .find(|d| !d.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(CONTROL_DIR))
}

/// The control socket of a running interface, or the error an operator should see: "not
/// running", and after a crash (a socket file nobody listens on) that it crashed, not
/// "Connection refused".
pub fn running_socket(name: &str) -> Result<PathBuf> {
    let path = tunnel::control::socket_path(&control_dir(), name);
    match tunnel::process_control::probe(&path) {
        Liveness::Running => Ok(path),
        Liveness::Stale => bail!(
            "interface {name} is not running (its control socket {} is left from a process \
             that ended without cleaning up; the next `trident up` replaces it)",
            path.display()
        ),
        Liveness::Absent => bail!(
            "interface {name} is not running (no control socket {})",
            path.display()
        ),
    }
}

/// `trident completions SHELL`: the completion script on stdout.
pub fn completions(shell: Shell) -> Result<()> {
    let mut command = crate::Cli::command();
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command, "trident", &mut script);
    crate::output::print_bytes(&script)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_cannot_become_paths() {
        for bad in [
            "../../etc/passwd",
            "a/b",
            ".",
            "..",
            "",
            "sixteen-chars-xx",
            "tr A",
        ] {
            assert!(interface_name(bad).is_err(), "{bad:?} accepted");
        }
        for good in ["trA", "wg0", "site-a.1", "a_b", "..a"] {
            assert_eq!(interface_name(good).as_deref(), Ok(good));
        }
    }

    #[test]
    fn the_control_dir_follows_runtime_directory() {
        assert_eq!(control_dir_in(None), PathBuf::from(CONTROL_DIR));
        assert_eq!(
            control_dir_in(Some("/run/trident:/run/other".into())),
            PathBuf::from("/run/trident")
        );
        assert_eq!(
            control_dir_in(Some("/tmp/rt".into())),
            PathBuf::from("/tmp/rt")
        );
    }

    #[test]
    fn completions_and_man_page_render() {
        let mut command = crate::Cli::command();
        let mut out = Vec::new();
        clap_complete::generate(Shell::Bash, &mut command, "trident", &mut out);
        assert!(String::from_utf8_lossy(&out).contains("check"));
        let page = crate::man::page_1().unwrap();
        assert!(String::from_utf8_lossy(&page).contains(".TH trident"));
    }

    #[test]
    fn the_version_names_the_crate_version() {
        assert!(VERSION.starts_with(env!("CARGO_PKG_VERSION")), "{VERSION}");
    }
}
