//! What a tunnel driver does with an endpoint's outputs, as the contract says: drain
//! events before transmits (persist each PersistState before anything queued after it),
//! answer KME requests, route datagrams to the peer's current endpoint. Each output is
//! checked against the invariants as it comes out.

use keymix::{AuthBasis, Destination, Event, KmeRequestKind, Role};

use super::world::{name, World};

/// What made a side produce its outputs: a KME request is judged by it (invariant 3).
#[derive(Clone, Copy, Debug)]
pub enum Cause {
    Timer,
    Kme,
    Operator,
    Datagram {
        /// From the honest peer (or a rogue the policy lets in) and not a replay.
        legit: bool,
        replay: bool,
    },
}

impl World {
    pub fn drain(&mut self, x: usize, cause: Cause) {
        loop {
            let mut progressed = false;
            while let Some(ev) = self.sides[x].ep.poll_event() {
                progressed = true;
                self.on_event(x, ev, cause);
            }
            while let Some(t) = self.sides[x].ep.poll_transmit() {
                progressed = true;
                let dst = match t.destination {
                    Destination::Peer(_) => self.sides[x].peer_addr,
                    Destination::Addr(a) => Some(a),
                };
                self.send_from(x, dst, t.payload);
            }
            if !progressed {
                break;
            }
        }
        // A rogue responder derives the PSK only when the victim's Confirm reaches it,
        // which is after the victim's commit event: judge commits once all is routed.
        for (x, epoch, psk, prev, auth, exchange) in std::mem::take(&mut self.pending_commits) {
            self.check_commit(x, epoch, psk, prev, auth, exchange);
        }
    }

    fn on_event(&mut self, x: usize, ev: Event, cause: Cause) {
        match ev {
            Event::PersistState { state, .. } => {
                self.note(|| format!("{} persist {state:?}", name(x)));
                if let Cause::Datagram { replay: true, .. } = cause {
                    self.fail(format!(
                        "invariant 3: a replayed datagram changed {}'s state",
                        name(x)
                    ));
                }
                self.check_epoch_floor(x, state.epoch, cause);
                self.sides[x].saved = Some(*state);
            }
            Event::EpochKey { key, .. } => {
                let auth = self.sides[x]
                    .ep
                    .peer_status(self.sides[x].peer, self.now)
                    .auth;
                let prev = self.sides[x].saved.as_ref().and_then(|s| s.prev_chain);
                let psk = *key.psk;
                self.note(|| {
                    format!(
                        "{} COMMIT epoch {} {:?} {:?} {}",
                        name(x),
                        key.epoch,
                        key.role,
                        auth,
                        key.sources
                    )
                });
                if key.role == Role::Initiator {
                    self.exchanges += 1;
                }
                // The side will never send its Inits for this epoch or older again.
                for (h, e) in &self.sent_inits[x] {
                    if *e <= key.epoch {
                        self.superseded.insert(*h);
                    }
                }
                let exchange_id = key
                    .keylog
                    .as_ref()
                    .map(|k| (k.epoch, k.s_init, k.init_index));
                self.pending_commits
                    .push((x, key.epoch, psk, prev, auth, exchange_id));
                self.sides[x].last_commit = Some(super::world::LastCommit {
                    epoch: key.epoch,
                    psk,
                    at: self.now,
                });
            }
            Event::Expired { epoch, .. } => {
                self.note(|| format!("{} expired epoch {epoch}", name(x)));
            }
            Event::KmeRequest(req) => {
                if let KmeRequestKind::DecKeys { .. } = req.kind {
                    let legit = matches!(cause, Cause::Datagram { legit: true, .. });
                    if !legit {
                        self.fail(format!(
                            "invariant 3: {} asked its KME for keys after {cause:?}",
                            name(x)
                        ));
                    }
                }
                self.on_kme_request(x, req.id, req.kind);
            }
        }
    }

    /// Invariant 4: the chain epoch only goes back by an operator reset, a restart
    /// without state (handled by the world) or an accepted bootstrap (to epoch 1: with a
    /// bootstrap PSK, or while this side holds no chain).
    fn check_epoch_floor(&mut self, x: usize, epoch: u64, cause: Cause) {
        let floor = self.sides[x].floor;
        if epoch >= floor {
            self.sides[x].floor = epoch;
            return;
        }
        let ok = match cause {
            Cause::Operator => epoch == 0,
            _ => epoch == 1 && self.cfg.bootstrap_psk.is_some(),
        };
        if ok {
            self.sides[x].floor = epoch;
            if epoch == 0 {
                self.sides[x].tainted = false;
                self.sides[x].rogue_entered = false;
            }
        } else {
            self.fail(format!(
                "invariant 4: {}'s chain epoch went back from {floor} to {epoch} ({cause:?})",
                name(x)
            ));
        }
    }

    /// Invariant 2 needs what authenticated the commit.
    fn check_commit(
        &mut self,
        x: usize,
        epoch: u64,
        psk: [u8; 32],
        prev: Option<[u8; 32]>,
        auth: Option<AuthBasis>,
        exchange: Option<(u64, [u8; 32], u32)>,
    ) {
        let rogue_known = self.monitor.rogue_psks.contains(&psk);
        if rogue_known {
            // Judged by what the victim accepted before this commit (its chain has moved).
            let accepted = self.sides[x].accepted_psks();
            let rogue_psk = self
                .rogues
                .iter()
                .any(|r| r.impersonates != x && r.psk.is_some() && accepted.contains(&r.psk));
            let static_ok = self.sides[x].no_chain
                != super::world::NoChain::Reset { static_only: false }
                && accepted.contains(&None);
            let entitled = self.sides[x].tainted
                || (auth == Some(AuthBasis::StaticOnly) && static_ok)
                || (auth == Some(AuthBasis::BootstrapPsk) && rogue_psk);
            if !entitled {
                self.fail(format!(
                    "invariant 2: {} committed epoch {epoch} with a PSK the adversary \
                     derived (auth {auth:?}, adversary holds an accepted bootstrap PSK: \
                     {rogue_psk}, static-only allowed: {static_ok})",
                    name(x)
                ));
            }
            self.sides[x].tainted = true;
            self.monitor.hijacks += 1;
            return;
        }
        self.sides[x].tainted = false;
        if let Some(why) = self.monitor.record_commit(x, epoch, psk, prev, exchange) {
            self.fail(why);
        }
    }

    /// A rogue endpoint's outputs: datagrams wait in its outbox for the adversary; the
    /// PSKs it derives are what invariant 2 compares against; its KME is fake.
    pub fn drain_rogue(&mut self, i: usize) {
        let now = self.now;
        loop {
            let mut progressed = false;
            while let Some(ev) = self.rogues[i].ep.poll_event() {
                progressed = true;
                match ev {
                    Event::EpochKey { key, .. } => {
                        self.monitor.rogue_psks.insert(*key.psk);
                    }
                    Event::KmeRequest(req) => {
                        let r = self.rogues[i].fake_kme(&req.kind);
                        self.rogues[i].ep.handle_kme_result(now, req.id, r);
                    }
                    Event::PersistState { .. } | Event::Expired { .. } => {}
                }
            }
            while let Some(t) = self.rogues[i].ep.poll_transmit() {
                progressed = true;
                let r = &mut self.rogues[i];
                if r.outbox.len() >= 8 {
                    r.outbox.pop_front();
                }
                r.outbox.push_back(t.payload);
            }
            if !progressed {
                break;
            }
        }
    }

    /// The on-path adversary hands the rogue impersonating `receiver` what was sent to it.
    pub fn feed_rogue(&mut self, receiver: usize, p: &super::world::Packet) {
        for i in 0..self.rogues.len() {
            if !self.quiet && self.rogues[i].impersonates == receiver {
                let now = self.now;
                let _ = self.rogues[i].ep.handle_datagram(now, p.src, &p.payload);
                self.drain_rogue(i);
            }
        }
    }
}
