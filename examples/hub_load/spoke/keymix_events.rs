//! The spoke's keymix side: timers, KME answers and keymix datagrams go into its
//! `Endpoint`; committed epochs become Tunns the way the driver installs them.

use std::net::SocketAddr;
use std::time::Instant;

use boringtun::noise::TunnResult;
use keymix::qkd::{QkdError, QkdKey};
use keymix::{Destination, EpochKey, Event, KmeRequestId, Role};
use tunnel::epoch_tunn::EpochTunn;
use tunnel::handshake_rx::{self, Responder};
use tunnel::tunn_index::epoch_tag;

use super::{send, Spoke, HUB};
use crate::spoke_report::Note;

impl Spoke {
    fn wall_clock(&mut self) {
        self.endpoint
            .set_wall_clock(Instant::now(), std::time::SystemTime::now());
    }

    pub fn on_keymix_timer(&mut self) {
        self.wall_clock();
        self.endpoint.handle_timeout(Instant::now());
        self.drain_keymix();
    }

    /// A keymix datagram from the hub (a cookie reply counts: the hub is under load).
    pub(super) fn on_keymix_datagram(&mut self, datagram: &[u8], src: SocketAddr) {
        if datagram.first() == Some(&keymix::message::TYPE_COOKIE) {
            self.report.keymix_cookies += 1;
        }
        self.wall_clock();
        let _ = self.endpoint.handle_datagram(Instant::now(), src, datagram);
        self.drain_keymix();
    }

    pub fn on_kme_result(&mut self, id: KmeRequestId, result: Result<Vec<QkdKey>, QkdError>) {
        if let Err(e) = &result {
            self.report.kme_errors += 1;
            *self
                .report
                .kme_error_kinds
                .entry(error_kind(e))
                .or_default() += 1;
        }
        self.wall_clock();
        self.endpoint.handle_kme_result(Instant::now(), id, result);
        self.drain_keymix();
    }

    /// As the driver's `drain_keymix`: events first, then datagrams, until both are empty.
    pub fn drain_keymix(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(event) = self.endpoint.poll_event() {
                progressed = true;
                match event {
                    Event::EpochKey { key, .. } => self.install(&key),
                    Event::Expired { epoch, .. } => {
                        if let Some(peer) = self.peers.first_mut() {
                            for t in peer.expire(epoch) {
                                self.indices.release(t.index);
                            }
                        }
                    }
                    Event::KmeRequest(r) => {
                        self.report.kme_requests += 1;
                        self.kme_requests.push(r);
                    }
                    // The spokes keep their chains in memory.
                    Event::PersistState { .. } => {}
                }
            }
            while let Some(t) = self.endpoint.poll_transmit() {
                progressed = true;
                let to = match t.destination {
                    Destination::Addr(a) => a,
                    Destination::Peer(_) => self.hub,
                };
                let sent = send(&self.socket, &mut self.report, &t.payload, to);
                if let (false, Destination::Peer(id)) = (sent, t.destination) {
                    self.endpoint.transmit_failed(id, &t.payload);
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// As the driver's `install_epoch`: a Tunn keyed with the epoch's PSK becomes current.
    fn install(&mut self, key: &EpochKey) {
        let now = Instant::now();
        self.report.epochs += 1;
        if self.pinging {
            self.report.epochs_while_pinging += 1;
        }
        self.notes.push(Note::Epoch {
            spoke: self.id,
            at: now,
        });
        let Ok(index) = self.indices.allocate(HUB, key.epoch) else {
            return;
        };
        let Ok(tunn) = EpochTunn::new(
            key,
            index,
            &self.private,
            self.hub_public,
            self.keepalive,
            self.limits.for_tunns(),
        ) else {
            self.indices.release(index);
            return;
        };
        let Self {
            peers,
            indices,
            socket,
            report,
            out,
            private,
            public,
            limits,
            hub,
            ..
        } = self;
        let Some(peer) = peers.first_mut() else {
            return;
        };
        for dropped in peer.install(tunn) {
            indices.release(dropped.index);
        }
        if key.role == Role::Initiator {
            if let Some(current) = peer.current.as_mut() {
                if let TunnResult::WriteToNetwork(init) =
                    current.primary.tunn.format_handshake_initiation(out, false)
                {
                    send(socket, report, init, *hub);
                }
            }
        }
        let mut responder = Responder {
            private,
            public,
            indices,
            rate_limiter: limits.for_tunns(),
        };
        let _ = handshake_rx::on_key_landed(
            peer,
            HUB,
            &mut responder,
            epoch_tag(key.epoch),
            out,
            &mut |d, to| {
                send(socket, report, d, to);
            },
        );
    }
}

/// An error's message with every word that holds a digit (key IDs, counts, addresses)
/// blanked, so alike errors group under one kind.
fn error_kind(e: &QkdError) -> String {
    e.to_string()
        .split_whitespace()
        .map(|w| {
            if w.contains(|c: char| c.is_ascii_digit()) {
                "#"
            } else {
                w
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
