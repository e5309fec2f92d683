//! `trident check CONFIG.toml`: the whole validation of `trident up` without its side
//! effects (no device, no socket, no file written), like `nginx -t`. Exit 0 when the config
//! would start, 2 with one line per problem when it would not. Warnings go to stderr and do
//! not change the exit code. With a SKIP key source it asks the Key Provider for its
//! capabilities (the only network call), as `up` does before starting.

use std::path::Path;

use anyhow::{Context, Result};

pub fn check(config_path: &Path) -> Result<()> {
    // `load` reads the key and TLS files and resolves endpoint names; it creates nothing.
    let mut loaded = crate::config::load(config_path)?;
    // SKIP: ask the Key Provider whether it knows every peer's KP (the one network call
    // `check` makes; an unreachable KP is a warning, a mismatch an error).
    if let Some(kp_check) = &loaded.kp_check {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the tokio runtime")?;
        let warnings = runtime.block_on(kp_check.run())?;
        loaded.warnings.extend(warnings);
    }
    for warning in &loaded.warnings {
        eprintln!("trident: WARNING: {warning}");
    }
    let settings = &loaded.settings;
    println!(
        "{}: ok (interface {}, UDP port {}, {} peer{}{})",
        config_path.display(),
        settings.name,
        settings.listen_port,
        settings.peers.len(),
        if settings.peers.len() == 1 { "" } else { "s" },
        match loaded.warnings.len() {
            0 => String::new(),
            n => format!(", {n} warning{}", if n == 1 { "" } else { "s" }),
        }
    );
    Ok(())
}
