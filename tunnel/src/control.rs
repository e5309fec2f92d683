//! The control socket `/run/trident/NAME.sock`: one connection, one request line, one JSON
//! answer, closed. The client writes `status\n` (or nothing: older clients) and gets the
//! [`InterfaceStatus`], or `reset <base64 peer public key> [static-only]\n`, `reload\n`
//! (re-read the config, [`crate::reload`]), `down\n` (shut down as on SIGTERM) or
//! `showconf\n` (the running config; [`crate::process_control`]) and gets a
//! [`ControlReply`]. Older servers answer the newer requests with an error reply.
//! A unix socket in the file system (not abstract), so `trident status` finds interfaces
//! of every network namespace on the machine.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use nix::sys::stat::{umask, Mode};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};

use crate::error::TunnelError;
use crate::process_control;
use crate::reload::{ReloadRequest, ReloadTrigger};
use crate::secret_file;
use crate::status::InterfaceStatus;

/// Longest request line read from a client; anything longer is refused.
const MAX_REQUEST: usize = 256;
/// Longest answer a client reads.
const MAX_ANSWER: u64 = 16 << 20;
/// How long the server waits for a request line. A client that writes nothing (an older
/// `trident status`) gets the status when this runs out.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);

/// A request from a control connection to the driver, which owns the state.
pub enum ControlRequest {
    Status(oneshot::Sender<InterfaceStatus>),
    /// `trident reset`: forget the keymix chain with the peer of this static public key;
    /// `static_only` is the operator's acknowledgement that, without a bootstrap PSK, the
    /// next first contact rests on the static keys alone.
    Reset {
        peer: [u8; 32],
        static_only: bool,
        reply: oneshot::Sender<ControlReply>,
    },
}

/// The answer to a request other than `status`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ControlReply {
    pub ok: bool,
    pub message: String,
}

impl ControlReply {
    pub fn ok(message: impl Into<String>) -> Self {
        Self {
            ok: true,
            message: message.into(),
        }
    }

    pub fn error(message: impl Into<String>) -> Self {
        Self {
            ok: false,
            message: message.into(),
        }
    }
}

/// A parsed request line.
#[derive(Debug, PartialEq, Eq)]
enum Command {
    Status,
    Reset([u8; 32], bool),
    Reload,
    Down,
    ShowConf,
}

fn parse_request(line: &[u8]) -> Result<Command, String> {
    let line = std::str::from_utf8(line).map_err(|_| "request is not UTF-8".to_owned())?;
    let mut words = line.split_ascii_whitespace();
    let parsed = match (words.next(), words.next(), words.next()) {
        (None | Some("status"), None, None) => Ok(Command::Status),
        (Some("reload"), None, None) => Ok(Command::Reload),
        (Some("down"), None, None) => Ok(Command::Down),
        (Some("showconf"), None, None) => Ok(Command::ShowConf),
        (Some("reset"), Some(key), flag @ (None | Some("static-only"))) => {
            base64::engine::general_purpose::STANDARD
                .decode(key)
                .ok()
                .and_then(|k| <[u8; 32]>::try_from(k.as_slice()).ok())
                .map(|k| Command::Reset(k, flag.is_some()))
                .ok_or_else(|| format!("{key:?} is not a base64 32-byte public key"))
        }
        _ => Err(
            "unknown request (expected `status`, `reset <public key> [static-only]`, `reload`, `down` or `showconf`)"
                .to_owned(),
        ),
    };
    if words.next().is_some() {
        return Err("unknown request: trailing words".to_owned());
    }
    parsed
}

/// Reads the request line: up to a newline, EOF, [`MAX_REQUEST`] bytes or the timeout.
async fn read_request(stream: &mut UnixStream) -> Vec<u8> {
    let mut line = Vec::new();
    let mut buf = [0u8; MAX_REQUEST];
    let read = async {
        while line.len() <= MAX_REQUEST {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    line.extend_from_slice(buf.get(..n).unwrap_or_default());
                    if line.contains(&b'\n') {
                        break;
                    }
                }
            }
        }
    };
    let _ = tokio::time::timeout(REQUEST_TIMEOUT, read).await;
    if let Some(end) = line.iter().position(|b| *b == b'\n') {
        line.truncate(end);
    }
    line
}

pub fn socket_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.sock"))
}

/// The control socket's file; removed when dropped.
pub struct ControlSocket {
    path: PathBuf,
}

impl ControlSocket {
    /// Binds `dir/NAME.sock`, replacing a stale file but never a live interface's socket.
    pub fn bind(dir: &Path, name: &str) -> Result<(Self, UnixListener), TunnelError> {
        let path = socket_path(dir, name);
        let err = |source| TunnelError::Control {
            path: path.clone(),
            source,
        };
        // Status shows public keys and traffic counters only, but keep it to root: the
        // directory is 0700 and ours, so nobody else can reach or replace the socket.
        secret_file::ensure_private_dir(dir).map_err(TunnelError::ControlDir)?;
        if path.symlink_metadata().is_ok() {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(TunnelError::AlreadyRunning(name.to_owned()));
            }
            std::fs::remove_file(&path).map_err(err)?;
        }
        // The socket file is born 0600 (bind applies the umask); a chmod after bind would
        // leave a window with the default mode.
        let previous = umask(Mode::from_bits_truncate(0o177));
        let bound = UnixListener::bind(&path);
        umask(previous);
        let listener = bound.map_err(err)?;
        Ok((Self { path }, listener))
    }

    /// Serves control requests until the driver goes away.
    pub fn serve(
        listener: UnixListener,
        requests: mpsc::Sender<ControlRequest>,
    ) -> tokio::task::JoinHandle<()> {
        Self::serve_with_reload(listener, requests, None)
    }

    /// [`Self::serve`]; `reload` requests go to `reload` (`None`: refused, restart instead).
    pub fn serve_with_reload(
        listener: UnixListener,
        requests: mpsc::Sender<ControlRequest>,
        reload: Option<ReloadTrigger>,
    ) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut backoff = Backoff::default();
            loop {
                let mut stream = match listener.accept().await {
                    Ok((stream, _)) => {
                        backoff.reset();
                        stream
                    }
                    Err(e) => {
                        // EMFILE and the like persist; retrying at once would spin a core.
                        let delay = backoff.next_delay();
                        tracing::warn!("control socket accept failed, retrying in {delay:?}: {e}");
                        tokio::time::sleep(delay).await;
                        continue;
                    }
                };
                let line = read_request(&mut stream).await;
                let answer = match parse_request(&line) {
                    Ok(Command::Status) => {
                        let (tx, rx) = oneshot::channel();
                        if requests.send(ControlRequest::Status(tx)).await.is_err() {
                            return;
                        }
                        let Ok(status) = rx.await else { return };
                        serde_json::to_vec(&status)
                    }
                    Ok(Command::Reset(peer, static_only)) => {
                        let (reply, rx) = oneshot::channel();
                        if requests
                            .send(ControlRequest::Reset {
                                peer,
                                static_only,
                                reply,
                            })
                            .await
                            .is_err()
                        {
                            return;
                        }
                        let Ok(answer) = rx.await else { return };
                        serde_json::to_vec(&answer)
                    }
                    Ok(Command::Reload) => serde_json::to_vec(&ask_reload(reload.as_ref()).await),
                    Ok(Command::Down) => serde_json::to_vec(&process_control::answer_down()),
                    Ok(Command::ShowConf) => {
                        serde_json::to_vec(&process_control::answer_showconf())
                    }
                    Err(e) => serde_json::to_vec(&ControlReply::error(e)),
                };
                let Ok(mut json) = answer else { continue };
                json.push(b'\n');
                let _ = tokio::time::timeout(Duration::from_secs(2), stream.write_all(&json)).await;
            }
        })
    }
}

/// Asks the reload task and waits for its verdict.
async fn ask_reload(reload: Option<&ReloadTrigger>) -> ControlReply {
    let Some(reload) = reload else {
        return ControlReply::error(
            "this interface cannot reload (external WireGuard data plane): restart it",
        );
    };
    let (reply, rx) = oneshot::channel();
    if reload
        .send(ReloadRequest { reply: Some(reply) })
        .await
        .is_err()
    {
        return ControlReply::error("the reload task has ended");
    }
    let answer = rx
        .await
        .unwrap_or_else(|_| ControlReply::error("the reload task has ended"));
    // `showconf` shows the reloaded config only once it runs.
    process_control::reload_finished(answer.ok);
    answer
}

/// Delay after consecutive accept errors: 100 ms, doubling up to 1 s, reset by a success.
#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
}

impl Backoff {
    const FIRST: Duration = Duration::from_millis(100);
    const MAX: Duration = Duration::from_secs(1);

    fn next_delay(&mut self) -> Duration {
        let delay = Self::FIRST
            .saturating_mul(1u32 << self.failures.min(4))
            .min(Self::MAX);
        self.failures = self.failures.saturating_add(1);
        delay
    }

    fn reset(&mut self) {
        self.failures = 0;
    }
}

impl Drop for ControlSocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sends one request line and reads the whole answer (blocking; for the CLI), with the
/// server's pid when the kernel tells it (SO_PEERCRED).
pub(crate) fn request(path: &Path, line: &str) -> Result<(Vec<u8>, Option<i32>), TunnelError> {
    let err = |source| TunnelError::Control {
        path: path.to_owned(),
        source,
    };
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(err)?;
    let pid = nix::sys::socket::getsockopt(&stream, nix::sys::socket::sockopt::PeerCredentials)
        .ok()
        .map(|c| c.pid())
        .filter(|pid| *pid > 0);
    // A reset waits for the driver to persist the emptied chain: allow more than a status.
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(err)?;
    stream.write_all(line.as_bytes()).map_err(err)?;
    stream.shutdown(std::net::Shutdown::Write).map_err(err)?;
    let mut buf = Vec::new();
    // Bounded like every read: a status of a few hundred peers is well under this.
    (&mut stream)
        .take(MAX_ANSWER)
        .read_to_end(&mut buf)
        .map_err(err)?;
    Ok((buf, pid))
}

/// A [`ControlReply`] from the bytes a server sent.
pub(crate) fn parse_reply(path: &Path, buf: &[u8]) -> Result<ControlReply, TunnelError> {
    serde_json::from_slice(buf).map_err(|source| TunnelError::BadStatus {
        path: path.to_owned(),
        source,
    })
}

/// Reads one status from a control socket (blocking; for the CLI).
pub fn query_status(path: &Path) -> Result<InterfaceStatus, TunnelError> {
    let (buf, _) = request(path, "status\n")?;
    serde_json::from_slice(&buf).map_err(|source| TunnelError::BadStatus {
        path: path.to_owned(),
        source,
    })
}

/// Asks a running interface to forget its keymix chain with `peer` (`trident reset`, with
/// `--static-only` when `static_only`).
pub fn request_reset(
    path: &Path,
    peer: &[u8; 32],
    static_only: bool,
) -> Result<ControlReply, TunnelError> {
    let key = base64::engine::general_purpose::STANDARD.encode(peer);
    let flag = if static_only { " static-only" } else { "" };
    let (buf, _) = request(path, &format!("reset {key}{flag}\n"))?;
    parse_reply(path, &buf)
}

/// Asks a running interface to re-read its config (`trident reload`).
pub fn request_reload(path: &Path) -> Result<ControlReply, TunnelError> {
    let (buf, _) = request(path, "reload\n")?;
    parse_reply(path, &buf)
}

/// The control sockets present in `dir` (interface names).
pub fn list_interfaces(dir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            name.strip_suffix(".sock").map(str::to_owned)
        })
        .collect();
    names.sort();
    names
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt as _;

    use super::*;

    #[test]
    fn request_lines_parse_and_junk_is_refused() {
        assert_eq!(parse_request(b""), Ok(Command::Status));
        assert_eq!(parse_request(b"status"), Ok(Command::Status));
        let key = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
        assert_eq!(
            parse_request(format!("reset {key}").as_bytes()),
            Ok(Command::Reset([7; 32], false))
        );
        assert_eq!(
            parse_request(format!("reset {key} static-only").as_bytes()),
            Ok(Command::Reset([7; 32], true))
        );
        assert!(parse_request(format!("reset {key} maybe").as_bytes()).is_err());
        assert!(parse_request(format!("reset {key} static-only x").as_bytes()).is_err());
        assert!(parse_request(b"reset AAAA").is_err());
        assert!(parse_request(b"reset").is_err());
        assert_eq!(parse_request(b"reload"), Ok(Command::Reload));
        assert!(parse_request(b"reload now").is_err());
        assert!(parse_request(b"shutdown").is_err());
        assert_eq!(parse_request(b"down"), Ok(Command::Down));
        assert_eq!(parse_request(b"showconf"), Ok(Command::ShowConf));
        assert!(parse_request(b"down now").is_err());
        assert!(parse_request(&[0xff, 0xfe]).is_err());
    }

    /// A status client (new, old or silent) and a reset client against a fake driver.
    #[tokio::test]
    async fn status_and_reset_round_trip() {
        let dir = std::env::temp_dir().join(format!("trident-ctl-rt-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (control, listener) = ControlSocket::bind(&dir, "t1").unwrap();
        let (tx, mut rx) = mpsc::channel(4);
        let server = ControlSocket::serve(listener, tx);
        let driver = tokio::spawn(async move {
            while let Some(req) = rx.recv().await {
                match req {
                    ControlRequest::Status(reply) => {
                        let _ = reply.send(InterfaceStatus {
                            interface: "t1".into(),
                            public_key: String::new(),
                            listen_port: 1,
                            peers: Vec::new(),
                            dropped: Default::default(),
                            dropped_total: 0,
                            keylog: None,
                            data_plane: "built-in".into(),
                            wireguard: None,
                            qkd_protocol: None,
                        });
                    }
                    ControlRequest::Reset { peer, reply, .. } => {
                        let _ = reply.send(if peer == [7; 32] {
                            ControlReply::ok("reset")
                        } else {
                            ControlReply::error("unknown peer")
                        });
                    }
                }
            }
        });
        let path = socket_path(&dir, "t1");
        let p = path.clone();
        let (status, ok, unknown, silent) = tokio::task::spawn_blocking(move || {
            let status = query_status(&p).unwrap();
            let ok = request_reset(&p, &[7; 32], false).unwrap();
            let unknown = request_reset(&p, &[8; 32], true).unwrap();
            // An old client: connects, writes nothing, reads.
            let mut s = std::os::unix::net::UnixStream::connect(&p).unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).unwrap();
            let silent: InterfaceStatus = serde_json::from_slice(&buf).unwrap();
            (status, ok, unknown, silent)
        })
        .await
        .unwrap();
        assert_eq!(status.interface, "t1");
        assert_eq!(silent.interface, "t1");
        assert!(ok.ok);
        assert!(!unknown.ok);
        server.abort();
        driver.abort();
        drop(control);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn backoff_grows_to_one_second_and_resets() {
        let mut b = Backoff::default();
        let delays: Vec<_> = (0..7).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(100));
    }

    #[tokio::test]
    async fn bind_makes_a_private_dir_and_a_0600_socket() {
        let dir = std::env::temp_dir().join(format!("trident-control-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let run = dir.join("run");
        let (control, _listener) = ControlSocket::bind(&run, "t0").unwrap();
        let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().mode() & 0o7777;
        assert_eq!(mode(&run), 0o700);
        assert_eq!(mode(&socket_path(&run, "t0")), 0o600);
        // The umask is restored for everything else the process creates.
        let probe = umask(Mode::from_bits_truncate(0o022));
        umask(probe);
        assert_ne!(probe.bits(), 0o177);
        drop(control);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
