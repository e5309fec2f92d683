//! `trident check CONFIG.toml`: the whole validation of `trident up` without its side
//! effects (no device, no socket, no file written), like `nginx -t`. Exit 0 when the config
//! would start, 2 with one line per problem when it would not. Warnings go to stderr and do
//! not change the exit code.

use std::path::Path;

use anyhow::Result;

pub fn check(config_path: &Path) -> Result<()> {
    // `load` reads the key and TLS files and resolves endpoint names; it creates nothing.
    let loaded = crate::config::load(config_path)?;
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
