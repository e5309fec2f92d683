//! What keymix asks of the data plane after every input: datagrams to send, epochs to
//! install or expire, KME requests, chain states to persist. A chain state must be on disk
//! before anything keymix handed out after it is acted on (the datagram that commits the
//! peer to it, the epoch key that uses it): the states go to the chain writer, which
//! holds that output back until they are durable ([`crate::chain_writer`]).

use keymix::{Destination, Event, Transmit};

use super::{Driver, Io};
use crate::chain_writer::{Held, Written};
use crate::counters::TunnelDrop;
use crate::keymix_io;

impl Driver {
    /// Sends keymix's datagrams and acts on its events (or holds them behind chain states
    /// not yet on disk), and notes keymix's next deadline; call after every keymix input
    /// (the packet loop sleeps until that deadline).
    pub(super) fn drain_keymix(&mut self, io: &Io, out: &mut [u8]) {
        loop {
            let mut progressed = false;
            // Events first: the states among them hold back what follows them.
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                if let Event::PersistState { peer, state } = event {
                    self.chain_writer.persist(peer, state);
                } else if let Some(Held::Event(e)) = self.chain_writer.pass(Held::Event(event)) {
                    self.on_keymix_event(io, e, out);
                }
            }
            while let Some(t) = self.endpoint.poll_transmit() {
                progressed = true;
                if let Some(Held::Transmit(t)) = self.chain_writer.pass(Held::Transmit(t)) {
                    self.send_keymix(io, t);
                }
            }
            if !progressed {
                break;
            }
        }
        self.chain_writer.flush();
        self.keymix_deadline = self.endpoint.poll_timeout();
    }

    /// A batch of chain states is on disk: what waited for it goes now, in keymix's order.
    pub(super) fn on_chains_written(&mut self, io: &Io, written: &Written, out: &mut [u8]) {
        for (peer, error) in &written.failed {
            tracing::error!(peer, %error, "could not save the keymix chain");
            self.counters.count(TunnelDrop::StateWriteFailed);
        }
        for item in self.chain_writer.written(written) {
            self.act_on(io, item, out);
        }
        // A send that failed asked keymix for a fresh Init; the deadline may have moved.
        self.drain_keymix(io, out);
    }

    /// Output the chain writer let through (now or once the states before it were durable).
    pub(super) fn act_on(&mut self, io: &Io, item: Held, out: &mut [u8]) {
        match item {
            Held::Event(e) => self.on_keymix_event(io, e, out),
            Held::Transmit(t) => self.send_keymix(io, t),
            Held::Reply(reply, answer) => {
                let _ = reply.send(answer);
            }
        }
    }

    fn send_keymix(&mut self, io: &Io, t: Transmit) {
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
            // It never left: keymix makes its next try a fresh Init, not a copy of one the
            // peer never saw (an old timestamp it may refuse as a replay).
            self.endpoint.transmit_failed(id, &t.payload);
        }
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
            // Taken by drain_keymix before it gets here.
            Event::PersistState { peer, state } => self.chain_writer.persist(peer, state),
        }
    }
}
