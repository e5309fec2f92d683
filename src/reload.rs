//! `trident reload NAME`: the running interface re-reads its own config file (the one `up`
//! was started with, like SIGHUP) and applies peer changes in place; a change that needs
//! a restart is refused and the running config stays (tunnel::reload).

use anyhow::{bail, Context, Result};
use tunnel::control::{request_reload, socket_path};

pub fn reload(name: &str) -> Result<()> {
    let path = socket_path(&crate::cli_extra::control_dir(), name);
    if std::os::unix::net::UnixStream::connect(&path).is_err() {
        bail!(
            "interface {name} is not running (no control socket {})",
            path.display()
        );
    }
    let reply = request_reload(&path).with_context(|| format!("interface {name}"))?;
    if !reply.ok {
        bail!("{}", reply.message);
    }
    println!("{}", reply.message);
    Ok(())
}
