//! The config as `trident showconf` prints it: the file the interface runs, re-rendered in
//! a fixed order with every default it runs on filled in (mtu, state_dir, the epoch
//! schedule, the QKD policy, a key log set by TRIDENT_KEYLOG) and every file as an
//! absolute path. Secrets appear only as those paths: a config never holds key material.
//!
//! The key lists here are also the reference of trident.toml(5): a test checks them
//! against the serde structs of config/file.rs and against the man page.

use std::path::Path;

use keymix::QkdPolicy;
use toml::{Table, Value};

use super::source::Source;

pub(super) const INTERFACE_KEYS: &[&str] = &[
    "name",
    "private_key_file",
    "listen_port",
    "listen_address",
    "address",
    "mtu",
    "state_dir",
    "wireguard",
    "metrics_listen",
    "table",
    "fwmark",
    "pre_up",
    "post_up",
    "pre_down",
    "post_down",
];
pub(super) const KEYMIX_KEYS: &[&str] = &[
    "epoch_secs",
    "reject_after_secs",
    "qkd",
    "bootstrap_psk_file",
    "keylog_file",
    "min_version",
    "max_version",
];
pub(super) const QKD_KEYS: &[&str] = &[
    "protocol",
    "kme_url",
    "sae_id",
    "kp_url",
    "local_system_id",
    "tls",
    "tls_version",
    "ca_file",
    "cert_file",
    "key_file",
    "psk_identity_file",
    "psk_file",
    "timeout_secs",
];
pub(super) const PEER_KEYS: &[&str] = &[
    "public_key",
    "endpoint",
    "allowed_ips",
    "persistent_keepalive",
    "sae_id",
    "remote_system_id",
    "bootstrap_psk_file",
    "keymix",
    "preshared_key_file",
];

/// The values the interface runs on where the file may leave them out.
pub(super) struct Effective<'a> {
    pub(super) mtu: u16,
    pub(super) state_dir: &'a Path,
    pub(super) epoch_secs: u64,
    pub(super) reject_after_secs: u64,
    /// (min_version, max_version).
    pub(super) versions: (keymix::Version, keymix::Version),
    pub(super) policy: QkdPolicy,
    pub(super) keylog_file: Option<&'a Path>,
}

fn path_value(src: &Source, value: &Value) -> Option<Value> {
    let resolved = src.resolve(Path::new(value.as_str()?));
    let absolute = std::path::absolute(&resolved).unwrap_or(resolved);
    Some(Value::String(absolute.display().to_string()))
}

/// Every `*_file` key and `state_dir` as an absolute path.
fn absolute_paths(src: &Source, table: &mut Table) {
    for (key, value) in table.iter_mut() {
        if key.ends_with("_file") || key == "state_dir" {
            if let Some(path) = path_value(src, value) {
                *value = path;
            }
        }
    }
}

fn section(out: &mut String, header: &str, table: &Table, keys: &[&str]) {
    out.push_str(header);
    out.push('\n');
    for key in keys {
        if let Some(value) = table.get(*key) {
            out.push_str(&format!("{key} = {value}\n"));
        }
    }
}

fn path_string(path: &Path) -> Value {
    Value::String(path.display().to_string())
}

/// The running config as TOML; the file's own text if it cannot be re-rendered.
pub(super) fn render(src: &Source, effective: &Effective, external: bool) -> String {
    let Ok(mut doc) = toml::from_str::<Table>(src.text) else {
        return src.text.to_owned();
    };
    let mut interface = take_table(&mut doc, "interface");
    absolute_paths(src, &mut interface);
    let state_dir =
        std::path::absolute(effective.state_dir).unwrap_or_else(|_| effective.state_dir.to_owned());
    interface.insert("state_dir".into(), path_string(&state_dir));
    if !external {
        interface.insert("mtu".into(), Value::Integer(i64::from(effective.mtu)));
    }
    let mut keymix = take_table(&mut doc, "keymix");
    absolute_paths(src, &mut keymix);
    let secs = |s: u64| Value::Integer(i64::try_from(s).unwrap_or(i64::MAX));
    keymix.insert("epoch_secs".into(), secs(effective.epoch_secs));
    keymix.insert(
        "reject_after_secs".into(),
        secs(effective.reject_after_secs),
    );
    keymix.insert("qkd".into(), Value::String(effective.policy.to_string()));
    let version = |v: keymix::Version| Value::Integer(i64::from(v.byte()));
    keymix.insert("min_version".into(), version(effective.versions.0));
    keymix.insert("max_version".into(), version(effective.versions.1));
    if let Some(keylog) = effective.keylog_file {
        keymix.insert("keylog_file".into(), path_string(keylog));
    }
    let mut out = String::new();
    section(&mut out, "[interface]", &interface, INTERFACE_KEYS);
    out.push('\n');
    section(&mut out, "[keymix]", &keymix, KEYMIX_KEYS);
    let qkd = qkd_section(src, doc.remove("qkd"));
    if !qkd.is_empty() {
        out.push('\n');
        out.push_str(&qkd);
    }
    if let Some(Value::Array(peers)) = doc.remove("peer") {
        for peer in peers {
            let Value::Table(mut peer) = peer else {
                continue;
            };
            absolute_paths(src, &mut peer);
            out.push('\n');
            section(&mut out, "[[peer]]", &peer, PEER_KEYS);
        }
    }
    out
}

/// The `[qkd]` table as rendered; empty without one. A reload compares it with the running
/// one: the key source is built at start, so a change needs a restart.
pub(super) fn qkd_table(src: &Source) -> String {
    let qkd = toml::from_str::<Table>(src.text)
        .ok()
        .and_then(|mut doc| doc.remove("qkd"));
    qkd_section(src, qkd)
}

fn qkd_section(src: &Source, qkd: Option<Value>) -> String {
    let mut out = String::new();
    if let Some(Value::Table(mut qkd)) = qkd {
        absolute_paths(src, &mut qkd);
        section(&mut out, "[qkd]", &qkd, QKD_KEYS);
    }
    out
}

fn take_table(doc: &mut Table, name: &str) -> Table {
    match doc.remove(name) {
        Some(Value::Table(t)) => t,
        _ => Table::new(),
    }
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
