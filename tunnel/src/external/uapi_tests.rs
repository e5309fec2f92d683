//! The UAPI client against a fake WireGuard: a unix socket in a temp directory, served by a
//! thread that records each request and answers with a canned reply.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread;

use super::*;

/// Serves `replies.len()` connections: reads each request up to its empty line, sends the
/// reply, and reports the request text.
fn fake_wireguard(name: &str, replies: Vec<String>) -> (UapiClient, mpsc::Receiver<String>) {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("trident-uapi-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = UapiClient::socket_path(&dir, "wg0");
    let listener = UnixListener::bind(&path).unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for reply in replies {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap() == 0 || line == "\n" {
                    break;
                }
                request.push_str(&line);
            }
            (&stream).write_all(reply.as_bytes()).unwrap();
            tx.send(request).unwrap();
        }
    });
    (UapiClient::new(path), rx)
}

fn hex32(b: u8) -> String {
    hex::encode([b; 32])
}

#[test]
fn get_reads_public_key_and_peers_and_drops_secrets() {
    let private = [0x11u8; 32];
    let public = *PublicKey::from(&StaticSecret::from(private)).as_bytes();
    let answer = format!(
        "private_key={}\nlisten_port=51820\npublic_key={}\npreshared_key={}\n\
         protocol_version=1\nendpoint=192.0.2.2:51820\nlast_handshake_time_sec=1700000000\n\
         last_handshake_time_nsec=5\ntx_bytes=100\nrx_bytes=200\n\
         persistent_keepalive_interval=25\nallowed_ip=10.99.0.2/32\nallowed_ip=192.168.20.0/24\n\
         public_key={}\npreshared_key={}\nendpoint=[2001:db8::1]:51820\nallowed_ip=::/0\n\
         errno=0\n\n",
        hex::encode(private),
        hex32(2),
        hex32(9),
        hex32(3),
        hex32(0)
    );
    let (client, requests) = fake_wireguard("get", vec![answer]);
    let device = client.device().unwrap();
    assert_eq!(requests.recv().unwrap(), "get=1\n");
    assert_eq!(device.public_key, Some(public));
    assert_eq!(device.peers.len(), 2);
    let a = &device.peers[0];
    assert_eq!(a.public_key, [2; 32]);
    assert!(a.psk_set);
    assert_eq!(a.endpoint, Some("192.0.2.2:51820".parse().unwrap()));
    assert_eq!((a.tx_bytes, a.rx_bytes), (100, 200));
    assert_eq!(a.persistent_keepalive, Some(25));
    assert_eq!(
        a.allowed_ips,
        vec![
            ("10.99.0.2".parse().unwrap(), 32),
            ("192.168.20.0".parse().unwrap(), 24)
        ]
    );
    assert!(a.last_handshake.is_some());
    let b = &device.peers[1];
    assert!(!b.psk_set, "an all-zero PSK is no PSK");
    assert_eq!(b.endpoint, Some("[2001:db8::1]:51820".parse().unwrap()));
    assert_eq!(b.allowed_ips, vec![("::".parse().unwrap(), 0)]);
    assert!(b.last_handshake.is_none());
    // Nothing secret is in what the caller gets.
    let shown = format!("{device:?}");
    assert!(!shown.contains(&hex::encode(private)) && !shown.contains(&hex32(9)));
}

#[test]
fn set_psk_names_the_peer_updates_only_and_reads_errno() {
    let (client, requests) = fake_wireguard(
        "set",
        vec!["errno=0\n\n".to_owned(), "errno=2\n\n".to_owned()],
    );
    client.set_psk(&[4; 32], &[5; 32]).unwrap();
    assert_eq!(
        requests.recv().unwrap(),
        format!(
            "set=1\npublic_key={}\nupdate_only=true\npreshared_key={}\n",
            hex32(4),
            hex32(5)
        )
    );
    match client.set_psk(&[4; 32], &[6; 32]) {
        Err(WgError::Errno(2)) => {}
        other => panic!("expected errno 2, got {other:?}"),
    }
}

#[test]
fn recreate_removes_and_restores_the_peer_as_read() {
    let (client, requests) = fake_wireguard("recreate", vec!["errno=0\n\n".to_owned()]);
    let peer = PeerInfo {
        public_key: [7; 32],
        endpoint: Some("198.51.100.2:51820".parse().unwrap()),
        persistent_keepalive: Some(25),
        allowed_ips: vec![("192.168.20.0".parse().unwrap(), 24)],
        ..PeerInfo::default()
    };
    client.recreate_peer(&peer, &[8; 32]).unwrap();
    let k = hex32(7);
    assert_eq!(
        requests.recv().unwrap(),
        format!(
            "set=1\npublic_key={k}\nupdate_only=true\nremove=true\npublic_key={k}\n\
             preshared_key={}\nendpoint=198.51.100.2:51820\npersistent_keepalive_interval=25\n\
             replace_allowed_ips=true\nallowed_ip=192.168.20.0/24\n",
            hex32(8)
        )
    );
}

#[test]
fn malformed_answers_are_errors_not_panics() {
    for bad in [
        "",
        "errno=x\n",
        "errno=0\nprivate_key=zz\n",
        "errno=0\npublic_key=0102\n",
        "errno=0\nno equals sign\n",
        "errno=0\npublic_key=0000000000000000000000000000000000000000000000000000000000000000\nallowed_ip=10.0.0.0/33\n",
        "errno=0\npublic_key=0000000000000000000000000000000000000000000000000000000000000000\nrx_bytes=-1\n",
        "errno=0\npublic_key=é000000000000000000000000000000000000000000000000000000000000000\n",
    ] {
        assert!(parse_get(bad).is_err(), "{bad:?}");
    }
    assert!(matches!(parse_get("errno=19\n"), Err(WgError::Errno(19))));
}

#[test]
fn hex_round_trip() {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8 * 7);
    assert_eq!(unhex(&hex::encode(key)).unwrap(), key);
    assert_eq!(unhex(&hex::encode(key).to_uppercase()).unwrap(), key);
}
