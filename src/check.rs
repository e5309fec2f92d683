//! `trident check CONFIG.toml`: the whole validation of `trident up` without its side
//! effects (no device, no socket, no file written), like `nginx -t`. Exit 0 when the config
//! would start, 2 with one line per problem when it would not: every problem, not only the
//! first. Warnings go to stderr and do not change the exit code. Besides the file it asks
//! the machine what `up` would run into (config/machine.rs), and with a SKIP key source
//! the Key Provider for its capabilities (the only network call), as `up` does.

use std::path::Path;

use anyhow::{Context, Result};

use crate::config::ConfigErrors;

pub fn check(config_path: &Path) -> Result<()> {
    // `load` reads the key and TLS files and resolves endpoint names; it creates nothing.
    let mut loaded = crate::config::load_for_start(config_path)?;
    // SKIP: ask the Key Provider whether it knows every peer's KP (an unreachable KP is a
    // warning, a mismatch an error).
    if let Some(kp_check) = &loaded.kp_check {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        match runtime.block_on(kp_check.run()) {
            Ok(warnings) => loaded.warnings.extend(warnings),
            Err(e) => return Err(ConfigErrors::new(vec![e], loaded.warnings).into()),
        }
    }
    for warning in &loaded.warnings {
        eprintln!("trident: WARNING: {warning}");
    }
    let settings = &loaded.settings;
    crate::output::print(&format!(
        "{}: ok (interface {}, UDP port {}, {} peer{}{}{})\n",
        config_path.display(),
        settings.name,
        settings.listen_port,
        settings.peers.len(),
        if settings.peers.len() == 1 { "" } else { "s" },
        if loaded.running { ", running" } else { "" },
        match loaded.warnings.len() {
            0 => String::new(),
            n => format!(", {n} warning{}", if n == 1 { "" } else { "s" }),
        }
    ))
}
