//! The TOML config of `trident up`: wg-quick's names plus `[keymix]` and `[qkd]`. Unknown
//! keys are errors. Every error is one line naming the file, the line, the key and what is
//! wrong (`main` prints it and exits with 2). Relative paths are relative to the config
//! file's directory. Every file it names is read under the file policy of
//! config/files.rs, and `load` reports every problem it finds, one line each.
//!
//! QKD: a `[qkd]` table (ETSI 014: kme_url, sae_id, ca_file, cert_file, key_file,
//! timeout_secs; or `protocol = "skip"`: kp_url, local_system_id, tls, ... in
//! config/qkd_skip.rs) makes `[keymix] qkd` default to "preferred"; "preferred" or
//! "required" without it is an error, and every `[[peer]]` then needs its `sae_id` (SKIP:
//! `remote_system_id`). The table becomes the client the tunnel uses as its QKD key source.
//!
//! Authentication: `[interface] state_dir` (default `$STATE_DIRECTORY/NAME` under systemd,
//! else `/var/lib/trident/NAME`) keeps each peer's keymix chain across restarts; a
//! `[[peer]] bootstrap_psk_file` lets that peer re-bootstrap after losing its state. The
//! older `[keymix] bootstrap_psk_file` still applies to every peer without its own, with a
//! warning when several peers share it.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tunnel::TunnelSettings;

mod allowed_ips;
mod build;
mod file;
mod files;
mod machine;
mod parse;
mod qkd;
mod qkd_skip;
mod render;
mod source;
mod validate;
mod wgquick;
mod wireguard;
use build::Problems;
pub use qkd_skip::KpCheck;
use source::Source;

const DEFAULT_MTU: u16 = 1420;
/// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
const MAX_NAME_LEN: usize = 15;
/// Default bound of one ETSI 014 call (connect, TLS, request, answer) when
/// `[qkd] timeout_secs` is not given.
const DEFAULT_KME_TIMEOUT_SECS: u64 = 5;
/// keymix waits this much longer than the client's own timeout, so the client's error (the
/// useful one, e.g. "connection refused") is what reaches `last_kme_error`.
const KME_TIMEOUT_MARGIN: Duration = Duration::from_secs(2);
/// Environment variable that switches the key log on (overrides `[keymix] keylog_file`).
pub const KEYLOG_ENV: &str = "TRIDENT_KEYLOG";
/// systemd's `StateDirectory=` sets this (colon-separated when several are listed).
const STATE_DIRECTORY_ENV: &str = "STATE_DIRECTORY";
/// Without systemd: `/var/lib/trident/NAME`.
const DEFAULT_STATE_ROOT: &str = "/var/lib/trident";
/// Upper bounds of the epoch schedule: a day per epoch, two days before a PSK is refused.
/// Larger values are typos, and once overflowed `Instant` (a panic).
const MAX_EPOCH_SECS: u64 = 86_400;
const MAX_REJECT_AFTER_SECS: u64 = 2 * 86_400;

/// A loaded config and what the operator should be warned about at start.
pub struct Loaded {
    pub settings: TunnelSettings,
    pub warnings: Vec<String>,
    /// SKIP: the Key Provider's capabilities check, run by `check` and `up` (it needs the
    /// network, which `load` never touches).
    pub kp_check: Option<KpCheck>,
    /// The config as `trident showconf` shows it (config/render.rs).
    pub shown: String,
    /// With [`load_for_start`]: an interface of this name runs now (`check` warns, `up`
    /// refuses). Always false from [`load`].
    pub running: bool,
    /// The `[qkd]` table as rendered (empty without one): the key source is built at
    /// start, so `up` refuses a reload that changes it.
    pub qkd_table: String,
}

/// The state directory when the config names none.
pub fn default_state_dir(name: &str) -> PathBuf {
    default_state_dir_in(std::env::var_os(STATE_DIRECTORY_ENV), name)
}

fn default_state_dir_in(state_directory: Option<std::ffi::OsString>, name: &str) -> PathBuf {
    let systemd = state_directory.and_then(|v| {
        let v = v.to_string_lossy().into_owned();
        v.split(':')
            .map(str::trim)
            .find(|d| !d.is_empty())
            .map(PathBuf::from)
    });
    systemd
        .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_ROOT))
        .join(name)
}

/// A config error: printed as one line, exit code 2.
#[derive(Debug)]
pub struct ConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub key: Option<String>,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config error in {}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", key `{key}`")?;
        }
        write!(f, ": {}", self.message.replace('\n', " "))
    }
}

impl std::error::Error for ConfigError {}

/// Every problem of a config, one [`ConfigError`] each, in the order of their lines
/// (never empty), and the warnings found on the way. Printed one per line; exit code 2.
#[derive(Debug)]
pub struct ConfigErrors {
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<String>,
}

impl ConfigErrors {
    pub fn new(mut errors: Vec<ConfigError>, warnings: Vec<String>) -> Self {
        // In file order; errors without a line (the file as a whole) first.
        errors.sort_by_key(|e| e.line);
        Self { errors, warnings }
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(e: ConfigError) -> Self {
        Self::new(vec![e], Vec::new())
    }
}

/// Reads and checks a config file. Every problem is reported, not only the first: bad keys
/// are set aside and the rest checked on (config/parse.rs, config/build.rs).
pub fn load(path: &Path) -> Result<Loaded, ConfigErrors> {
    load_with(path, false)
}

/// [`load`], plus what `up` would run into on this machine (config/machine.rs): for
/// `trident check` and `trident up`, not for a reload of a running interface.
pub fn load_for_start(path: &Path) -> Result<Loaded, ConfigErrors> {
    load_with(path, true)
}

fn load_with(path: &Path, machine: bool) -> Result<Loaded, ConfigErrors> {
    let text = files::read_config(path)?;
    let src = Source {
        file: path,
        text: &text,
    };
    let (parsed, errors) = parse::parse_all(&src);
    let mut problems = Problems {
        errors,
        warnings: Vec::new(),
    };
    let loaded = parsed.and_then(|(file, checked_text)| {
        let src = Source {
            file: path,
            text: &checked_text,
        };
        build::build(&src, file, &mut problems, machine)
    });
    if !problems.errors.is_empty() {
        return Err(ConfigErrors::new(problems.errors, problems.warnings));
    }
    let mut loaded = loaded;
    if let Some(l) = loaded.as_mut() {
        l.warnings = problems.warnings;
    }
    loaded.ok_or_else(|| {
        ConfigErrors::from(ConfigError {
            file: path.to_owned(),
            line: None,
            key: None,
            message: "could not be checked".to_owned(),
        })
    })
}

#[cfg(test)]
mod tests;
