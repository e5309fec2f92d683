//! The e2e tests' thief: sends WireGuard handshake initiations made with a peer's real
//! static private key (all an initiation needs) from an address of its own, and counts what
//! comes back. Not part of Trident; built with the tests (`cargo build --all-targets`).
//!
//! ```text
//! forge_initiations KEY_FILE PEER_PUBLIC_KEY TO FROM RATE SECS [AHEAD_SECS]
//! ```
//! KEY_FILE holds the stolen private key (base64, as `trident genkey` writes it); PEER is
//! the victim's public key; TO its UDP address; FROM the local address to bind; RATE the
//! initiations per second, for SECS seconds; AHEAD_SECS (default 0) is added to every
//! timestamp (e.g. 50 years). Each initiation has a fresh ephemeral key and a random sender
//! index, so its epoch tag is random too. Prints one JSON line: what was sent and received.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine;
use keymix::{PublicKey, StaticSecret};
use tunnel::handshake_rx::tai64n;
use tunnel::initiation;

fn key32(b64: &str) -> Result<[u8; 32], String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("not base64: {e}"))?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| "not 32 bytes".to_owned())
}

fn random32() -> Result<[u8; 32], String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| e.to_string())?;
    Ok(b)
}

fn run(args: &[String]) -> Result<String, String> {
    let [key_file, peer, to, from, rate, secs, rest @ ..] = args else {
        return Err("usage: forge_initiations KEY_FILE PEER TO FROM RATE SECS [AHEAD_SECS]".into());
    };
    let key = std::fs::read_to_string(key_file).map_err(|e| format!("{key_file}: {e}"))?;
    let thief = StaticSecret::from(key32(&key)?);
    let victim = PublicKey::from(key32(peer)?);
    let to: SocketAddr = to.parse().map_err(|e| format!("TO: {e}"))?;
    let from: SocketAddr = from.parse().map_err(|e| format!("FROM: {e}"))?;
    let rate: u32 = rate.parse().map_err(|e| format!("RATE: {e}"))?;
    let secs: u64 = secs.parse().map_err(|e| format!("SECS: {e}"))?;
    let ahead: u64 = rest
        .first()
        .map_or(Ok(0), |a| a.parse())
        .map_err(|e| format!("AHEAD: {e}"))?;
    let socket = UdpSocket::bind(from).map_err(|e| format!("bind {from}: {e}"))?;
    socket
        .set_read_timeout(Some(Duration::from_millis(1)))
        .map_err(|e| e.to_string())?;
    let interval = Duration::from_secs(1) / rate.max(1);
    let end = Instant::now() + Duration::from_secs(secs);
    let (mut sent, mut responses, mut cookies, mut data, mut other) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut next = Instant::now();
    let mut buf = [0u8; 2048];
    while Instant::now() < end {
        if Instant::now() >= next {
            let index = u32::from_le_bytes(random32()?[..4].try_into().unwrap_or_default());
            let ephemeral = StaticSecret::from(random32()?);
            let stamp = tai64n(SystemTime::now() + Duration::from_secs(ahead));
            let init = initiation::seal(&thief, &victim, index, &ephemeral, stamp)
                .ok_or("could not seal an initiation")?;
            socket
                .send_to(&init, to)
                .map_err(|e| format!("send: {e}"))?;
            sent += 1;
            next += interval;
        }
        if let Ok((n, _)) = socket.recv_from(&mut buf) {
            match buf.get(..n).and_then(|d| d.first()) {
                Some(2) if n == 92 => responses += 1,
                Some(3) if n == 64 => cookies += 1,
                Some(4) => data += 1,
                _ => other += 1,
            }
        }
    }
    Ok(format!(
        "{{\"sent\": {sent}, \"responses\": {responses}, \"cookies\": {cookies}, \"data\": {data}, \"other\": {other}}}"
    ))
}

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("forge_initiations: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
