//! The cross-platform WireGuard configuration protocol ("UAPI") of userspace
//! implementations (wireguard-go, boringtun-cli): a unix socket
//! `/var/run/wireguard/NAME.sock`, one `get=1` or `set=1` operation per connection,
//! `key=value` lines ending with an empty line, and `errno=N` as the answer.
//!
//! Only what Trident needs: read the device (to check its key and find peers), set one
//! peer's `preshared_key` with `update_only=true` (so a peer the operator removed is never
//! re-created), and re-create one peer with exactly the settings read back (fail closed).
//! The answer to `get` carries the interface's private key and every PSK: they are parsed
//! into zeroizing buffers and dropped at once (the private key only to derive the public
//! key), never kept or logged.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use keymix::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use super::{DeviceInfo, PeerInfo, WgError};

/// Where wireguard-go and boringtun-cli put their sockets.
pub const SOCKET_DIR: &str = "/var/run/wireguard";
/// An answer larger than this is refused (a device with thousands of peers stays below).
const MAX_ANSWER: u64 = 4 << 20;
/// A stuck implementation must not stall keymix for long.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

pub struct UapiClient {
    path: PathBuf,
}

impl UapiClient {
    pub fn new(path: PathBuf) -> Self {
        Self { path }
    }

    pub fn socket_path(dir: &Path, interface: &str) -> PathBuf {
        dir.join(format!("{interface}.sock"))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn connect(&self) -> Result<UnixStream, WgError> {
        let io = |e| WgError::Io(format!("{}: {e}", self.path.display()));
        let stream = UnixStream::connect(&self.path).map_err(io)?;
        stream.set_read_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        stream.set_write_timeout(Some(IO_TIMEOUT)).map_err(io)?;
        Ok(stream)
    }

    /// The name of the program serving the socket (`/proc/PID/comm` of its peer
    /// credentials), e.g. "wireguard-go"; None when it cannot be seen (other PID namespace).
    pub fn implementation(&self) -> Option<String> {
        let stream = self.connect().ok()?;
        let cred =
            nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
                .ok()?;
        let comm = std::fs::read_to_string(format!("/proc/{}/comm", cred.pid())).ok()?;
        let comm = comm.trim();
        (!comm.is_empty()).then(|| comm.to_owned())
    }

    /// `get=1`: the device's public key and peers (PSKs and private key dropped).
    pub fn device(&self) -> Result<DeviceInfo, WgError> {
        let mut stream = self.connect()?;
        stream
            .write_all(b"get=1\n\n")
            .map_err(|e| WgError::Io(e.to_string()))?;
        let answer = read_answer(&mut stream)?;
        parse_get(&answer)
    }

    /// `set=1` for one peer: its PSK only; `update_only` so a removed peer stays removed.
    pub fn set_psk(&self, peer: &[u8; 32], psk: &[u8; 32]) -> Result<(), WgError> {
        let mut req = Zeroizing::new(String::with_capacity(256));
        req.push_str("set=1\npublic_key=");
        req.push_str(&hex::encode(peer));
        req.push_str("\nupdate_only=true\npreshared_key=");
        push_hex(&mut req, psk);
        req.push_str("\n\n");
        self.set(&req)
    }

    /// Removes the peer and adds it back in the same operation with the settings read from
    /// the device and `psk`: WireGuard drops the peer's sessions, so traffic under the old
    /// PSK stops now instead of at REJECT_AFTER (180 s) after its last handshake.
    pub fn recreate_peer(&self, peer: &PeerInfo, psk: &[u8; 32]) -> Result<(), WgError> {
        self.set(&recreate_request(peer, psk))
    }

    fn set(&self, request: &str) -> Result<(), WgError> {
        let mut stream = self.connect()?;
        stream
            .write_all(request.as_bytes())
            .map_err(|e| WgError::Io(e.to_string()))?;
        let answer = read_answer(&mut stream)?;
        match errno_of(&answer)? {
            0 => Ok(()),
            n => Err(WgError::Errno(n)),
        }
    }
}

fn recreate_request(peer: &PeerInfo, psk: &[u8; 32]) -> Zeroizing<String> {
    let key = hex::encode(peer.public_key);
    let mut req = Zeroizing::new(String::with_capacity(512));
    req.push_str("set=1\n");
    req.push_str(&format!(
        "public_key={key}\nupdate_only=true\nremove=true\n"
    ));
    req.push_str(&format!("public_key={key}\npreshared_key="));
    push_hex(&mut req, psk);
    req.push('\n');
    if let Some(e) = peer.endpoint {
        req.push_str(&format!("endpoint={e}\n"));
    }
    if let Some(k) = peer.persistent_keepalive {
        req.push_str(&format!("persistent_keepalive_interval={k}\n"));
    }
    req.push_str("replace_allowed_ips=true\n");
    for (ip, prefix) in &peer.allowed_ips {
        req.push_str(&format!("allowed_ip={ip}/{prefix}\n"));
    }
    req.push('\n');
    req
}

/// Reads up to the empty line that ends an answer (or EOF), bounded by [`MAX_ANSWER`].
fn read_answer(stream: &mut UnixStream) -> Result<Zeroizing<String>, WgError> {
    let mut reader = BufReader::new(stream.take(MAX_ANSWER));
    let mut answer = Zeroizing::new(String::new());
    loop {
        let mut line = Zeroizing::new(String::new());
        let n = reader
            .read_line(&mut line)
            .map_err(|e| WgError::Io(e.to_string()))?;
        if n == 0 {
            if answer.len() as u64 >= MAX_ANSWER - 1 {
                return Err(WgError::Protocol("answer too large".into()));
            }
            break;
        }
        if line.as_str() == "\n" {
            break;
        }
        answer.push_str(&line);
    }
    Ok(answer)
}

fn errno_of(answer: &str) -> Result<i64, WgError> {
    answer
        .lines()
        .find_map(|l| l.strip_prefix("errno="))
        .ok_or_else(|| WgError::Protocol("answer without errno".into()))?
        .trim()
        .parse()
        .map_err(|_| WgError::Protocol("unreadable errno".into()))
}

/// Parses a `get=1` answer. Unknown keys are skipped (newer implementations add some).
pub fn parse_get(answer: &str) -> Result<DeviceInfo, WgError> {
    let errno = errno_of(answer)?;
    if errno != 0 {
        return Err(WgError::Errno(errno));
    }
    let mut device = DeviceInfo::default();
    let mut peer: Option<PeerInfo> = None;
    let mut hs_sec: Option<u64> = None;
    for line in answer.lines() {
        let Some((key, value)) = line.split_once('=') else {
            return Err(WgError::Protocol(format!(
                "line without '=' ({} bytes)",
                line.len()
            )));
        };
        match (key, peer.as_mut()) {
            ("private_key", None) => {
                let secret = Zeroizing::new(unhex(value)?);
                let secret = StaticSecret::from(*secret);
                device.public_key = Some(*PublicKey::from(&secret).as_bytes());
            }
            ("public_key", _) => {
                if let Some(p) = peer.take() {
                    device.peers.push(with_handshake(p, hs_sec.take()));
                }
                peer = Some(PeerInfo {
                    public_key: unhex(value)?,
                    ..PeerInfo::default()
                });
            }
            ("preshared_key", Some(p)) => {
                let psk = Zeroizing::new(unhex(value)?);
                p.psk_set = psk.iter().any(|b| *b != 0);
            }
            ("endpoint", Some(p)) => p.endpoint = Some(parse_endpoint(value)?),
            ("persistent_keepalive_interval", Some(p)) => {
                p.persistent_keepalive = Some(number(value)?).filter(|k| *k > 0);
            }
            ("allowed_ip", Some(p)) => p.allowed_ips.push(parse_allowed_ip(value)?),
            ("rx_bytes", Some(p)) => p.rx_bytes = number(value)?,
            ("tx_bytes", Some(p)) => p.tx_bytes = number(value)?,
            ("last_handshake_time_sec", Some(_)) => hs_sec = Some(number(value)?),
            _ => {}
        }
    }
    if let Some(p) = peer.take() {
        device.peers.push(with_handshake(p, hs_sec));
    }
    Ok(device)
}

fn with_handshake(mut p: PeerInfo, sec: Option<u64>) -> PeerInfo {
    p.last_handshake = sec
        .filter(|s| *s > 0)
        .and_then(|s| SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs(s)));
    p
}

fn number<T: std::str::FromStr>(value: &str) -> Result<T, WgError> {
    value
        .parse()
        .map_err(|_| WgError::Protocol(format!("not a number: {value:?}")))
}

/// `1.2.3.4:51820` or `[2001:db8::1]:51820`.
fn parse_endpoint(value: &str) -> Result<SocketAddr, WgError> {
    value
        .parse()
        .map_err(|_| WgError::Protocol(format!("bad endpoint {value:?}")))
}

fn parse_allowed_ip(value: &str) -> Result<(IpAddr, u8), WgError> {
    let bad = || WgError::Protocol(format!("bad allowed_ip {value:?}"));
    let (ip, prefix) = value.split_once('/').ok_or_else(bad)?;
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let prefix: u8 = prefix.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(bad());
    }
    Ok((ip, prefix))
}

/// Appends a secret key as lowercase hex, with no copy outside `s` and a zeroizing buffer.
fn push_hex(s: &mut String, key: &[u8; 32]) {
    let mut digits = Zeroizing::new([0u8; 64]);
    // Cannot fail (the buffer is twice the key); if it did, nothing is appended and the
    // empty value is refused by WireGuard (errno), never sent as an all-zero key.
    if hex::encode_to_slice(key, digits.as_mut_slice()).is_ok() {
        s.extend(digits.iter().map(|&d| char::from(d)));
    }
}

/// A 32-byte key in hex (either case), as UAPI sends keys.
fn unhex(value: &str) -> Result<[u8; 32], WgError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(value, &mut out).map_err(|_| WgError::Protocol("bad hex key".into()))?;
    Ok(out)
}

#[cfg(test)]
#[path = "uapi_tests.rs"]
mod tests;
