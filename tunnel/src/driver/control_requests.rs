//! Requests from the control socket: `trident status`, and an operator's `trident reset`
//! of one peer's keymix chain (the next exchange is a bootstrap).

use std::time::Instant;

use base64::Engine;

use super::{Driver, Io};
use crate::control::{ControlReply, ControlRequest};

impl Driver {
    /// A control-socket request: the status, or an operator's `trident reset` of one peer.
    pub(super) fn on_control(&mut self, io: &Io, request: ControlRequest, out: &mut [u8]) {
        let (peer, reply) = match request {
            ControlRequest::Status(reply) => {
                let _ = reply.send(self.status(Instant::now()));
                return;
            }
            ControlRequest::Reset { peer, reply } => (peer, reply),
        };
        let key = base64::engine::general_purpose::STANDARD.encode(peer);
        let answer = match self
            .peers
            .iter()
            .position(|p| *p.public_key.as_bytes() == peer)
        {
            Some(id) => {
                tracing::warn!(interface = %self.name, peer = %key, "operator reset: keymix chain with this peer forgotten; next exchange is a bootstrap (C_0)");
                self.endpoint.reset_peer(id, Instant::now());
                self.drain_keymix(io, out);
                ControlReply::ok(format!(
                    "{}: chain with peer {key} reset; a bootstrap exchange starts now",
                    self.name
                ))
            }
            None => ControlReply::error(format!("interface {} has no peer {key}", self.name)),
        };
        let _ = reply.send(answer);
    }
}
