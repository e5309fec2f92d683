//! `trident down NAME` and `trident showconf NAME`: the day-two commands of wg-quick's
//! `down` and wg's `showconf`, over the interface's control socket.
//!
//! `down` asks the running `trident up` to shut down exactly as on SIGTERM (pre_down, the
//! routes, the device, post_down; tunnel::process_control) and waits until its process
//! has exited, so when `down` returns the interface and its hooks are done.
//! `showconf` prints the config the interface runs: the file it was started with (or last
//! reloaded successfully), re-rendered with its defaults, secrets as file paths.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use tunnel::process_control::{request_down, request_showconf};

/// Long enough for pre_down and post_down hooks; `up` itself needs well under a second.
const DOWN_WAIT: Duration = Duration::from_secs(30);

pub fn down(name: &str) -> Result<()> {
    let path = crate::cli_extra::running_socket(name)?;
    let (reply, gone) =
        request_down(&path, DOWN_WAIT).with_context(|| format!("interface {name}"))?;
    if !reply.ok {
        bail!("interface {name}: {}", reply.message);
    }
    if !gone {
        bail!(
            "interface {name} was asked to shut down but still runs after {} s (a slow \
             pre_down/post_down hook?); see its log",
            DOWN_WAIT.as_secs()
        );
    }
    crate::output::print(&format!("interface {name}: down\n"))
}

pub fn showconf(name: &str) -> Result<()> {
    let path = crate::cli_extra::running_socket(name)?;
    let reply = request_showconf(&path).with_context(|| format!("interface {name}"))?;
    if !reply.ok {
        bail!("interface {name}: {}", reply.message);
    }
    crate::output::print(&reply.message)
}
