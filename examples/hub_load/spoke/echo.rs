//! The user traffic: echo requests through the tunnel, as a host behind the spoke would
//! send them, and the accounting of their replies (the spoke is up at its first reply).

use std::time::Instant;

use boringtun::noise::TunnResult;
use tunnel::peer::Peer;

use super::{send, Spoke, PING_IDENT};
use crate::icmp;
use crate::spoke_report::{Note, SpokeReport};

impl Spoke {
    /// An echo reply from the hub: the first one marks the spoke up; a sampled ping's
    /// reply is matched to its request for the loss and RTT figures.
    pub(super) fn on_echo_reply(&mut self, ident: u16, seq: u16) {
        let now = Instant::now();
        if !self.data_up {
            self.data_up = true;
            self.notes.push(Note::Data {
                spoke: self.id,
                at: now,
            });
        }
        if ident == PING_IDENT {
            if let Some(sent) = self.outstanding.remove(&seq) {
                self.report.pings_received += 1;
                let rtt = now.saturating_duration_since(sent).as_secs_f64() * 1000.0;
                self.report.max_rtt_ms = self.report.max_rtt_ms.max(rtt);
            }
        }
    }

    /// Sends one echo request through the tunnel, as a host behind the spoke would.
    pub fn send_echo(&mut self, ident: u16) {
        self.seq = self.seq.wrapping_add(1);
        let packet = icmp::echo_request(self.inner, self.hub_inner, ident, self.seq);
        if ident == PING_IDENT {
            self.report.pings_sent += 1;
            self.outstanding.insert(self.seq, Instant::now());
        }
        let Self {
            peers,
            socket,
            report,
            out,
            hub,
            ..
        } = self;
        let Some(tunn) = peers.first_mut().and_then(Peer::sending_tunn) else {
            return;
        };
        if let TunnResult::WriteToNetwork(datagram) = tunn.tunn.encapsulate(&packet, out) {
            send(socket, report, datagram, *hub);
        }
    }

    /// The pings still unanswered are lost (call after the grace period).
    pub fn finish(&mut self) -> SpokeReport {
        self.report.pings_lost = self.outstanding.len() as u64;
        self.report.clone()
    }
}
