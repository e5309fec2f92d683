//! What `trident check` and `trident up` find out about the machine (tunnel::preflight, no
//! side effects), reported like any other problem of the config, at the key's line: the
//! interface already running, a device of the same name, a state directory that cannot be
//! one, the external WireGuard interface missing or without Trident's key or peers. `up`
//! asks first, so a second `up` of a running interface says so instead of failing on a
//! port after its `pre_up` hooks ran. A reload (the interface runs, of course) skips it.

use std::ops::Range;
use std::path::Path;

use tunnel::control::socket_path;
use tunnel::process_control::{probe, Liveness};
use tunnel::TunnelSettings;

use super::build::Problems;
use super::source::Source;
use super::validate::warning;

/// Where the machine checks point their errors.
pub(super) struct Spans {
    pub(super) name: Range<usize>,
    pub(super) state_dir: Option<Range<usize>>,
    pub(super) wireguard: Option<Range<usize>>,
}

/// The checks that need only the names; true when an interface of this name runs now.
pub(super) fn check(
    src: &Source,
    name: &str,
    state_dir: &Path,
    external: bool,
    spans: &Spans,
    p: &mut Problems,
) -> bool {
    let running = probe(&socket_path(&crate::cli_extra::control_dir(), name)) == Liveness::Running;
    if running {
        p.warnings.push(warning(
            src,
            Some(spans.name.clone()),
            "interface.name",
            format!(
                "interface {name} is running: `trident up` would refuse to start it again; \
                 `trident reload {name}` applies this config (a restart-only change needs \
                 `trident down {name}` and `trident up`)"
            ),
        ));
    } else if !external && tunnel::preflight::device_exists(name) {
        // A running interface owns its device; anything else of that name is in the way.
        p.errors.push(src.error(
            Some(spans.name.clone()),
            "interface.name",
            format!(
                "a network device named {name} already exists (`ip link show {name}`): \
                 choose another name"
            ),
        ));
    }
    if let Some(problem) = tunnel::preflight::state_dir_problem(state_dir) {
        p.errors
            .push(src.error(spans.state_dir.clone(), "interface.state_dir", problem));
    }
    running
}

/// The external data plane's WireGuard interface: there, with our key and every peer.
pub(super) fn check_external(
    src: &Source,
    settings: &TunnelSettings,
    spans: &Spans,
    p: &mut Problems,
) {
    if let Err(problem) = tunnel::preflight::external_wireguard(settings) {
        p.errors
            .push(src.error(spans.wireguard.clone(), "interface.wireguard", problem));
    }
}
