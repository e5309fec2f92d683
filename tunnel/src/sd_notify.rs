//! systemd readiness (`Type=notify`): one `READY=1` datagram to `$NOTIFY_SOCKET` once the
//! device, its addresses and routes, the UDP socket and keymix are set up. A few lines of
//! the protocol (sd_notify(3)) rather than a dependency: a path or an abstract (`@`) Unix
//! datagram socket. Without `NOTIFY_SOCKET` (not under systemd) it does nothing.

use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Tells systemd the interface is up; failures are logged, never fatal (the tunnel works
/// either way, and systemd reports the missing notification itself).
pub fn ready(status: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let message = format!("READY=1\nSTATUS={}", status.replace('\n', " "));
    if let Err(e) = send(&target.to_string_lossy(), message.as_bytes()) {
        tracing::warn!("could not notify systemd of readiness: {e}");
    }
}

fn send(target: &str, message: &[u8]) -> std::io::Result<()> {
    let addr = match target.strip_prefix('@') {
        Some(name) => {
            use std::os::linux::net::SocketAddrExt;
            SocketAddr::from_abstract_name(name.as_bytes())?
        }
        None => SocketAddr::from_pathname(target)?,
    };
    let socket = UnixDatagram::unbound()?;
    socket.send_to_addr(message, &addr)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reaches_a_path_socket() {
        let dir = std::env::temp_dir().join(format!("trident-notify-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let listener = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), b"READY=1\nSTATUS=up").unwrap();
        let mut buf = [0u8; 64];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=up");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ready_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("trident-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let listener = UnixDatagram::bind_addr(&addr).unwrap();
        send(&format!("@{name}"), b"READY=1").unwrap();
        let mut buf = [0u8; 16];
        let n = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }
}
