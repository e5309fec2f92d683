//! Vector files of several consecutive exchanges between the same two endpoints: a chain
//! grown by real exchanges, optionally a re-bootstrap by the preferred initiator restarted
//! without its state file, and optionally the responder's state file after each Resp and
//! each Confirm. Each exchange's lines carry the prefix `exchange<j>.` (j from 1); the
//! static values come once, unprefixed. No chain key is written: verify.rs derives C_{n-1}
//! of each exchange from its own recomputation of the one before.

use std::fmt::Write as _;

use keymix::message::Init;
use keymix::{schedule, ChainState};

use super::gen::{Logged, Pair, Scenario};
use super::render::{completed, exchange, header, line, mac1_keys, statics};

/// What a multi-exchange file covers (the header's pins come from the scenario).
pub struct Plan {
    /// Exchanges of the chain, epochs 1 to `epochs`.
    pub epochs: usize,
    /// Then restart the preferred initiator without its state file: it bootstraps (epoch
    /// 1 keyed with C_0) over the responder's chain.
    pub rebootstrap: bool,
    /// Pin the responder's state file after each Resp and after each Confirm.
    pub responder_states: bool,
}

/// The state file `res_is_a`'s side wrote last before it sent `resp`, and the first one it
/// wrote after the initiator sent `confirm`.
fn responder_files(pair: &Pair, res_is_a: bool, resp: &[u8], confirm: &[u8]) -> [Vec<u8>; 2] {
    let sent = |from_a: bool, p: &[u8]| {
        pair.log
            .iter()
            .position(|l| matches!(l, Logged::Sent(f, q) if *f == from_a && q == p))
            .expect("sent")
    };
    let files = |range: &mut dyn Iterator<Item = &Logged>| {
        range
            .filter_map(|l| match l {
                Logged::Persisted(f, b) if *f == res_is_a => Some(b.clone()),
                _ => None,
            })
            .collect::<Vec<_>>()
    };
    let at_resp = sent(res_is_a, resp);
    let at_confirm = sent(!res_is_a, confirm);
    let before = files(&mut pair.log[..at_resp].iter());
    let after = files(&mut pair.log[at_confirm..].iter());
    [
        before.last().expect("a file before the Resp").clone(),
        after.first().expect("a file after the Confirm").clone(),
    ]
}

pub fn render_chain(sc: Scenario, plan: Plan) -> String {
    let mut pair = Pair::new(sc.clone());
    pair.run_until_keys(plan.epochs, plan.epochs);
    let mut total = plan.epochs;
    if plan.rebootstrap {
        let preferred_a = pair.preferred_is_a();
        pair.restart_preferred_as(false);
        let (a, b) = if preferred_a {
            (1, plan.epochs + 1)
        } else {
            (plan.epochs + 1, 1)
        };
        pair.run_until_keys(a, b);
        total += 1;
    }
    let found = completed(&pair.recorded);
    assert_eq!(found.len(), total, "one exchange per epoch key");
    let first = Init::parse(&found[0].inits[0]).unwrap();
    let (ini, res) = pair.roles(&first.s_init);
    let res_is_a = res.public == pair.a.public;

    let mut out = String::new();
    header(&mut out, sc.title, sc.pins);
    statics(&mut out, &sc, ini, res);
    mac1_keys(&mut out, ini, res);
    let c0 = schedule::chain0(sc.bootstrap_psk.as_ref());
    let mut prev: Option<(u64, [u8; 32])> = None;
    for (j, f) in found.iter().enumerate() {
        let j = j + 1;
        let init = Init::parse(&f.inits[0]).unwrap();
        assert_eq!(init.s_init, ini.public, "the same initiator throughout");
        let n = init.epoch;
        let (c_prev, keyed) = match prev {
            None if n == 1 => (*c0, "C_0 (a bootstrap)".to_string()),
            Some(_) if n == 1 => (
                *c0,
                format!(
                    "C_0 (the initiator restarted without its state file): a bootstrap over \
                     the responder's chain of exchange {}",
                    j - 1
                ),
            ),
            Some((m, c)) if m + 1 == n => (c, format!("C_{m}, the chain of exchange {}", j - 1)),
            _ => panic!("exchange {j}: epoch {n} does not follow {prev:?}"),
        };
        let _ = writeln!(out, "# exchange {j}: epoch {n}, keyed with {keyed}");
        let chain = exchange(&mut out, &format!("exchange{j}."), &pair, f, &c_prev);
        if plan.responder_states {
            let [tentative, committed] = responder_files(&pair, res_is_a, &f.resp, &f.confirm);
            let parse = |b: &[u8]| ChainState::from_bytes(b, &res.public, &ini.public).unwrap();
            let t = parse(&tentative);
            assert_eq!(
                (
                    t.tentative.as_ref().map(|t| (t.epoch, t.chain)),
                    t.highest_init_ts
                ),
                (Some((n, chain)), init.timestamp),
                "the responder's file behind its Resp"
            );
            let c = parse(&committed);
            assert!(c.epoch == n && c.chain == chain && c.tentative.is_none());
            line(
                &mut out,
                &format!("exchange{j}.responder_state_after_resp"),
                &tentative,
            );
            line(
                &mut out,
                &format!("exchange{j}.responder_state_after_confirm"),
                &committed,
            );
        }
        prev = Some((n, chain));
    }
    out
}
