//! What keymix asks of the data plane after every input: datagrams to send, epochs to
//! install or expire, KME requests, chain states to persist. Events go first, so a chain
//! state is on disk before the datagram that commits the peer to it leaves.

use keymix::{Destination, Event};

use super::{Driver, Io};
use crate::chain_store::ChainStore;
use crate::counters::TunnelDrop;
use crate::keymix_io;

impl Driver {
    /// Sends keymix's datagrams and acts on its events, and notes keymix's next deadline;
    /// call after every keymix input (the packet loop sleeps until that deadline).
    pub(super) fn drain_keymix(&mut self, io: &Io, out: &mut [u8]) {
        loop {
            let mut progressed = false;
            // Events first: a chain state must be on disk before the datagram that commits
            // the peer to it (Resp, Confirm, Init) leaves.
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                self.on_keymix_event(io, event, out);
            }
            while let Some(t) = self.endpoint.poll_transmit() {
                progressed = true;
                let to = match t.destination {
                    Destination::Addr(a) => Some(a),
                    Destination::Peer(id) => self.peers.get(id).and_then(|p| p.endpoint),
                };
                let sent = match to {
                    Some(to) => io.send_keymix(&t.payload, to, &mut self.counters),
                    None => {
                        self.counters.count(TunnelDrop::NoEndpoint);
                        false
                    }
                };
                if let (false, Destination::Peer(id)) = (sent, t.destination) {
                    // It never left: keymix makes its next try a fresh Init, not a copy of
                    // one the peer never saw (an old timestamp it may refuse as a replay).
                    self.endpoint.transmit_failed(id, &t.payload);
                }
            }
            if !progressed {
                break;
            }
        }
        self.keymix_deadline = self.endpoint.poll_timeout();
    }

    fn on_keymix_event(&mut self, io: &Io, event: Event, out: &mut [u8]) {
        match event {
            Event::EpochKey { peer, key } => {
                keymix_io::record_epoch(
                    self.keylog.as_mut(),
                    self.metrics.as_deref(),
                    &self.endpoint,
                    peer,
                    &key,
                );
                self.install_epoch(io, peer, &key, out);
            }
            Event::Expired { peer, epoch } => self.expire_epoch(peer, epoch),
            Event::KmeRequest(request) => self.qkd.submit(request),
            Event::PersistState { peer, state } => {
                if !ChainStore::persist(self.chain_store.as_ref(), peer, &state) {
                    self.counters.count(TunnelDrop::StateWriteFailed);
                }
            }
        }
    }
}
