//! Simultaneous initiation: both sides sent an Init and the peer's authenticated here.
//! Exactly one of the two may go on, and both sides must pick the same one from what each
//! can see, or each answers the other, drops its own and both Resps hit an unknown index
//! (with identical timers, for ever: the campaign's seeds 1010476 and 1013106).

use std::time::Instant;

use super::candidates::ChainChoice;
use super::initiator::Initiation;
use super::Session;
use crate::message::Init;

impl Session {
    /// Whether our initiation stands (the peer's Init is dropped; the peer answers ours)
    /// rather than the peer's. Only a young initiation of ours can win: one the peer has
    /// not answered for the longest retransmission interval evidently does not reach it.
    pub(super) fn wins_tie(
        &self,
        now: Instant,
        ours: &Initiation,
        theirs: &Init,
        keyed: ChainChoice,
    ) -> bool {
        if !self.reachable || !ours.is_young(now) {
            return false;
        }
        let has_chain = self.state.has_chain();
        let ours_c0 = ours.keyed_with_c0(has_chain);
        // Ours is keyed with C_m, or with C_0 while we hold no chain.
        let ours_current = ours_c0 != has_chain;
        match keyed {
            // Keyed as ours: the static keys decide, the same way on both sides.
            ChainChoice::Current if ours_current => {
                ours.epoch() == theirs.epoch && self.preferred_initiator
            }
            // Ours is a fallback bootstrap, theirs is keyed with our chain: ours stands
            // while young, and the peer yields to it (the arm below). Had the peer's
            // chain worked for us, it may not for the peer: we fell back because ours
            // went unanswered.
            ChainChoice::Current => true,
            // Two bootstraps over chains (both sides fell back): the static keys decide.
            ChainChoice::Bootstrap if ours_c0 => self.preferred_initiator,
            // A bootstrap against our chain-keyed Init: the peer cannot use our chain (it
            // lost its state or fell back), so we answer (and the peer, if it can check
            // ours, keeps its own by the arm above).
            ChainChoice::Bootstrap => false,
            // Keyed with a chain the peer reached past ours: ours is stale.
            ChainChoice::Tentative | ChainChoice::Previous => false,
        }
    }
}
