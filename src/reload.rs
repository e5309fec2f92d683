//! `trident reload NAME`: the running interface re-reads its own config file (the one `up`
//! was started with, like SIGHUP) and applies peer changes in place; a change that needs
//! a restart is refused and the running config stays (tunnel::reload).

use anyhow::{bail, Context, Result};
use tunnel::control::request_reload;

pub fn reload(name: &str) -> Result<()> {
    let path = crate::cli_extra::running_socket(name)?;
    let reply = request_reload(&path).with_context(|| format!("interface {name}"))?;
    if !reply.ok {
        bail!("{}", reply.message);
    }
    crate::output::print(&format!("{}\n", reply.message))
}
