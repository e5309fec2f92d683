//! Requests from the control socket: `trident status`, and an operator's `trident reset`
//! of one peer's keymix chain (the next exchange is a bootstrap).

use std::time::Instant;

use super::{Driver, Io};
use crate::chain_writer::Held;
use crate::control::ControlRequest;
use crate::keymix_io;

impl Driver {
    /// A control-socket request: the status, or an operator's `trident reset` of one peer.
    pub(super) fn on_control(&mut self, io: &Io, request: ControlRequest, out: &mut [u8]) {
        let (peer, static_only, reply) = match request {
            ControlRequest::Status(reply) => {
                let _ = reply.send(self.status(Instant::now()));
                return;
            }
            ControlRequest::Reset {
                peer,
                static_only,
                reply,
            } => (peer, static_only, reply),
        };
        let id = self.peer_keys.get(&peer);
        let answer =
            keymix_io::operator_reset(&mut self.endpoint, &self.name, id, &peer, static_only);
        if id.is_some() {
            self.drain_keymix(io, out);
        }
        // Once the reset chain is on disk (it waits for the states handed out before it).
        if let Some(item) = self.chain_writer.pass(Held::Reply(reply, answer)) {
            self.act_on(io, item, out);
        }
    }
}
