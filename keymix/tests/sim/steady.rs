//! After the quiet phase's agreement, a calm stretch: every datagram delivered, nobody
//! restarts, the operator does nothing, the KMEs answer at once, and both sides' clocks are
//! past what the peer recorded of them. On such a link every exchange must commit on time:
//! the replacement of an unanswered Init that waited for the next retransmission (E2 in
//! SIMULATION.md) let keys expire on a healthy link, which the liveness bound (an exchange
//! lifetime after the attack) could not see.

use std::time::{Duration, Instant};

use keymix::Version;

use super::world::{World, A, B};

/// The latest a calm exchange may commit after the last one: the overdue side's start
/// (9/8 of an epoch, +10% jitter), then 3 s for each replacement an unanswered Init needs
/// here (the other PSK while either side rotates; version 1 while one side speaks only
/// version 1; both: the other PSK again after the version), and a margin of 1 s.
pub fn calm_rekey_bound(w: &World) -> Duration {
    let rotating = [A, B].iter().any(|&x| w.status(x).psk_rotation);
    let speaks_v2 = w.cfg.versions.map(|(_, max)| max == Version::V2);
    let versions_differ = speaks_v2[A] != speaks_v2[B];
    let replacements =
        u32::from(rotating) + u32::from(versions_differ) + u32::from(rotating && versions_differ);
    w.cfg.epoch * 5 / 4 + Duration::from_secs(3) * replacements + Duration::from_secs(1)
}

/// Runs three epochs after the agreement; fails if the sides go longer than
/// [`calm_rekey_bound`] without agreeing on a new epoch.
pub fn calm_phase(w: &mut World) -> Result<(), String> {
    // A side whose Inits the peer refuses as replays until its clock catches up (see
    // `clock_debt`) is not calm: only the other side can start an exchange, and that one
    // can lose its ties.
    if super::run::clock_debt(w) > Duration::ZERO {
        return Ok(());
    }
    w.note(|| "--- calm: every exchange on time ---".into());
    let end = w.now + w.cfg.epoch * 3;
    let bound = calm_rekey_bound(w);
    let mut last = w.now;
    loop {
        w.step += 1;
        w.deliver_all()?;
        if let Some(at) = agreed_after(w, last) {
            last = at;
        }
        if w.now > last + bound {
            return Err(format!(
                "liveness: no new epoch {bound:?} after the last on a calm link (epoch {:?})",
                w.cfg.epoch
            ));
        }
        if w.now >= end {
            return Ok(());
        }
        let t = w.next_deadline().map_or(end, |d| d.min(end));
        let t = t.min(last + bound + Duration::from_millis(1));
        w.advance_to(t.max(w.now + Duration::from_millis(1)));
        if let Some(f) = w.monitor.failure.take() {
            return Err(f);
        }
    }
}

/// When the later side committed the epoch both now agree on, if both did after `t`.
fn agreed_after(w: &World, t: Instant) -> Option<Instant> {
    let [a, b] = w.agreed_commit_times()?;
    (a > t && b > t).then(|| a.max(b))
}
