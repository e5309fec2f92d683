//! State files in a vector (docs/PROTOCOL.md, "Persisted state", format 2) read by the
//! layout with spec::State, and each field compared with what this check recomputed of the
//! exchanges: the chain keys, the tentative exchange and both Init timestamps.

use super::spec::*;
use super::verify::Vector;
use super::verify_exchange::{Outcome, Statics};

/// The initiator's file before (`state_before`, read from disk after a restart) and after
/// (`state_after`, its commit) the exchange of a one-exchange file.
pub fn initiator(v: &mut Vector, st: &Statics, out: &Outcome) {
    let pair = (st.s_i, st.s_r);
    let (n, ts) = (out.n, out.ts);
    if let Some(before) = v.input("state_before") {
        let st = State::parse(&before, &v.name);
        assert_eq!(
            (st.epoch, st.chain),
            (n - 1, out.c_prev),
            "{}: state_before",
            v.name
        );
        assert_eq!(
            st.keys, pair,
            "{}: the restarted side is the initiator",
            v.name
        );
        assert!(st.last_init_sent_ts < ts);
    }
    if let Some(after) = v.input("state_after") {
        let st = State::parse(&after, &v.name);
        assert_eq!(
            (st.epoch, st.chain, st.prev),
            (n, out.c_n, Some(out.c_prev)),
            "{}",
            v.name
        );
        assert_eq!(
            (st.keys, st.tentative, st.last_init_sent_ts),
            (pair, None, ts)
        );
        // Nothing of this exchange touches the other records.
        assert_eq!(
            (
                st.static_only_reset,
                st.wireguard_initiation,
                st.pinned_version,
                st.tie_floor
            ),
            (false, [0; 12], 0, 0),
            "{}",
            v.name
        );
        if let Some(before) = v.input("state_before") {
            let b = State::parse(&before, &v.name);
            assert_eq!(st.highest_init_ts, b.highest_init_ts, "{}", v.name);
        }
    }
}

/// The committed part of a file after the exchanges in `done` (the last one committed):
/// epoch m, C_m and C_{m-1}, which is the chain key epoch m was keyed with, absent when
/// epoch m was a bootstrap (keyed with C_0). Empty (epoch 0) before the first exchange.
fn committed(done: &[Outcome]) -> (u64, [u8; 32], Option<[u8; 32]>) {
    match done.last() {
        None => (0, [0; 32], None),
        Some(x) => (x.n, x.c_n, (x.n > 1).then_some(x.c_prev)),
    }
}

/// The responder's files of exchange `out` (after the exchanges `done` of the same file):
/// `responder_state_after_resp`, written before its Resp left, and
/// `responder_state_after_confirm`, written when the Confirm committed the exchange. Both
/// are rebuilt byte for byte; returns how many the file has.
pub fn responder(v: &mut Vector, st: &Statics, done: &[Outcome], out: &Outcome) -> usize {
    let mut count = 0;
    // The responder's replay floor is the timestamp of the Init it accepted last; each
    // accepted Init is above the one before (a re-bootstrap too: the floor is kept).
    if let Some(prev) = done.last() {
        assert!(out.ts > prev.ts, "{}: Init timestamps rise", v.name);
    }
    let (epoch, chain, prev) = committed(done);
    let base = State {
        keys: (st.s_r, st.s_i),
        epoch,
        chain,
        prev,
        tentative: Some((out.n, out.c_n)),
        highest_init_ts: out.ts,
        // Every Init of the file is the initiator's (verify_exchange checks S_i): the
        // responder never sent one to this peer.
        last_init_sent_ts: 0,
        static_only_reset: false,
        wireguard_initiation: [0; 12],
        pinned_version: 0,
        tie_floor: 0,
    };
    if let Some(file) = v.input("responder_state_after_resp") {
        let name = format!("{}: {}responder_state_after_resp", v.name, v.prefix);
        assert_eq!(State::parse(&file, &name), base, "{name}");
        v.check("responder_state_after_resp", &base.encode());
        count += 1;
    }
    if let Some(file) = v.input("responder_state_after_confirm") {
        let name = format!("{}: {}responder_state_after_confirm", v.name, v.prefix);
        let (epoch, chain, prev) = committed(std::slice::from_ref(out));
        let after = State {
            epoch,
            chain,
            prev,
            tentative: None,
            ..base
        };
        assert_eq!(State::parse(&file, &name), after, "{name}");
        v.check("responder_state_after_confirm", &after.encode());
        count += 1;
    }
    count
}
