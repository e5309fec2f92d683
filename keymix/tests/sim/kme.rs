//! The KME as the adversary may bend it: healthy (answers at once), failing (503,
//! transport error), stalled (answers late or never) or lying (mismatched key bytes).

use std::time::{Duration, Instant};

use keymix::qkd::{QkdError, QkdKey};
use keymix::{KmeRequestId, KmeRequestKind};

use super::driver::Cause;
use super::world::{name, World};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KmeMode {
    Healthy,
    Fail(QkdError),
    /// Answer after this long; None: never (the endpoint's own timeout fires).
    Stall(Option<Duration>),
    /// Hand out other key bytes than the peer's KME: key confirmation must fail.
    Mismatch,
}

pub struct PendingKme {
    pub side: usize,
    pub id: KmeRequestId,
    pub kind: KmeRequestKind,
    pub due: Option<Instant>,
    pub mismatch: bool,
}

impl World {
    /// The driver's handling of one KME request of side `x`, under its current mode.
    pub fn on_kme_request(&mut self, x: usize, id: KmeRequestId, kind: KmeRequestKind) {
        let mode = self.sides[x].kme_mode.clone();
        self.note(|| format!("{} KME request {kind:?} mode {mode:?}", name(x)));
        match mode {
            KmeMode::Healthy => {
                let r = self.kme_answer(x, &kind, false);
                self.sides[x].ep.handle_kme_result(self.now, id, r);
            }
            KmeMode::Mismatch => {
                let r = self.kme_answer(x, &kind, true);
                self.sides[x].ep.handle_kme_result(self.now, id, r);
            }
            KmeMode::Fail(e) => self.sides[x].ep.handle_kme_result(self.now, id, Err(e)),
            KmeMode::Stall(late) => self.pending_kme.push(PendingKme {
                side: x,
                id,
                kind,
                due: late.map(|d| self.now + d),
                mismatch: false,
            }),
        }
    }

    fn kme_answer(
        &self,
        x: usize,
        kind: &KmeRequestKind,
        mismatch: bool,
    ) -> Result<Vec<QkdKey>, QkdError> {
        let kme = &self.kmes[x];
        let r = match kind {
            KmeRequestKind::EncKeys {
                slave_sae_id,
                number,
                size_bits,
            } => kme.enc_keys_now(slave_sae_id, *number, *size_bits),
            KmeRequestKind::DecKeys {
                master_sae_id,
                key_ids,
            } => kme.dec_keys_now(master_sae_id, key_ids),
        };
        r.map(|mut keys| {
            if mismatch {
                for k in &mut keys {
                    if let Some(b) = k.key.first_mut() {
                        *b ^= 0x80;
                    }
                }
            }
            keys
        })
    }

    /// Answers every stalled request whose time has come.
    pub fn answer_due_kme(&mut self) {
        let now = self.now;
        let mut i = 0;
        while i < self.pending_kme.len() {
            if self.pending_kme[i].due.is_some_and(|d| d <= now) {
                let p = self.pending_kme.remove(i);
                let r = self.kme_answer(p.side, &p.kind, p.mismatch);
                self.note(|| format!("{} late KME answer ok={}", name(p.side), r.is_ok()));
                self.sides[p.side].ep.handle_kme_result(now, p.id, r);
                self.drain(p.side, Cause::Kme);
            } else {
                i += 1;
            }
        }
    }

    /// The adversary stops: every KME is healthy again and answers what it held back.
    pub fn heal_kmes(&mut self) {
        for s in &mut self.sides {
            s.kme_mode = KmeMode::Healthy;
        }
        let now = self.now;
        for p in &mut self.pending_kme {
            p.due = Some(now);
        }
        self.answer_due_kme();
    }
}
