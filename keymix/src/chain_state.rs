//! What survives a restart for one peer (docs/PROTOCOL.md, "Persisted state"): the
//! committed epoch and its chain key, the previous chain key, the responder's unconfirmed
//! exchange, and the Init timestamps in both directions. Without it a restarted gateway could only fall
//! back to C_0, whose tag rests on the static keys alone; with it the chain continues.
//!
//! keymix does no I/O: it hands a [`ChainState`] to the driver in
//! [`crate::Event::PersistState`], and the driver must make it durable before it acts on
//! any later event or sends any datagram queued with it.

use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// File magic and format version written today.
const MAGIC: &[u8; 16] = b"trident-chain-v2";
/// The first format (no WireGuard record, no flags beyond bit 1), still read.
const MAGIC_V1: &[u8; 16] = b"trident-chain-v1";
/// Encoded length of format 2: magic, two public keys, epoch, chain, flags, previous
/// chain, tentative epoch and chain, the two Init timestamps, the WireGuard initiation
/// record, the pinned protocol version, the tie floor, checksum.
pub const ENCODED_LEN: usize = 16 + 32 + 32 + 8 + 32 + 1 + 32 + 8 + 32 + 8 + 8 + 12 + 1 + 8 + 32;
/// Encoded length of format 1 (read only).
pub const ENCODED_LEN_V1: usize = 16 + 32 + 32 + 8 + 32 + 1 + 32 + 8 + 32 + 8 + 8 + 32;
const FLAG_PREV: u8 = 1;
const FLAG_TENTATIVE: u8 = 2;
const FLAG_STATIC_ONLY_RESET: u8 = 4;

/// An exchange we answered as responder whose Confirm has not arrived yet.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Tentative {
    pub epoch: u64,
    pub chain: [u8; 32],
}

/// The per-peer chain as persisted. `epoch == 0` means "no chain": the next exchange is a
/// bootstrap (C_0).
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ChainState {
    pub local_public: [u8; 32],
    pub peer_public: [u8; 32],
    pub epoch: u64,
    pub chain: [u8; 32],
    pub prev_chain: Option<[u8; 32]>,
    pub tentative: Option<Tentative>,
    /// The replay floor for Inits from this peer: an Init at or below it is a replay, also
    /// after a restart. It is the highest timestamp of an accepted Init, raised at a
    /// commit to the timestamp of any authenticated Init of the peer's that lost a tie.
    pub highest_init_ts: u64,
    /// The timestamp of our last Init to this peer: the next one is higher even if the
    /// wall clock went back, so the peer never mistakes it for a replay.
    pub last_init_sent_ts: u64,
    /// TAI64N of the newest WireGuard handshake initiation from this peer whose session
    /// the peer confirmed (a data packet under it decrypted, which needs the epoch's
    /// PSK); all zero for none. The data plane refuses initiations at or below it.
    pub wireguard_initiation: [u8; 12],
    /// The operator acknowledged that the next first contact with this peer rests on the
    /// static keys alone (`trident reset --static-only`); cleared once a chain-keyed epoch
    /// completes.
    pub static_only_reset: bool,
    /// The keymix protocol version this peer has spoken (0: none recorded, i.e. version 1
    /// only); a later version, once spoken, is never given up for an earlier one.
    pub pinned_version: u8,
    /// The highest timestamp of an authenticated Init of the peer's that lost a tie here
    /// since our last commit (0: none). Not part of the replay floor yet (its
    /// retransmission must still pass while ours goes unanswered) but never accepted keyed
    /// with another chain; folded into the replay floor at the next commit. Persisted so
    /// that a restart between the tie and the commit does not forget it.
    pub tie_floor: u64,
}

impl std::fmt::Debug for ChainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainState")
            .field("epoch", &self.epoch)
            .field("chain", &"<redacted>")
            .field("tentative_epoch", &self.tentative.as_ref().map(|t| t.epoch))
            .field("highest_init_ts", &self.highest_init_ts)
            .field("last_init_sent_ts", &self.last_init_sent_ts)
            .field("static_only_reset", &self.static_only_reset)
            .field("pinned_version", &self.pinned_version)
            .field("tie_floor", &self.tie_floor)
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainStateError {
    #[error(
        "chain state has {0} bytes, expected {ENCODED_LEN} (or {ENCODED_LEN_V1} for format 1)"
    )]
    Length(usize),
    #[error("chain state has an unknown format (bad magic)")]
    Magic,
    #[error("chain state is corrupt (checksum mismatch)")]
    Checksum,
    #[error("chain state belongs to another pair of static keys")]
    Foreign,
}

impl ChainState {
    /// No chain yet.
    pub fn empty(local_public: [u8; 32], peer_public: [u8; 32]) -> Self {
        Self {
            local_public,
            peer_public,
            epoch: 0,
            chain: [0; 32],
            prev_chain: None,
            tentative: None,
            highest_init_ts: 0,
            last_init_sent_ts: 0,
            wireguard_initiation: [0; 12],
            static_only_reset: false,
            pinned_version: 0,
            tie_floor: 0,
        }
    }

    pub fn has_chain(&self) -> bool {
        self.epoch != 0
    }

    /// An operator reset: forgets the chain (epoch, C_m, C_{m-1}, tentative) and keeps the
    /// replay records in both directions (keymix and WireGuard), so no recorded message
    /// passes after the reset either. `static_only` records the operator's acknowledgement
    /// that the next first contact rests on the static keys alone. The pinned protocol
    /// version goes with the chain: the operator decides anew.
    pub fn forget_chain(&mut self, static_only: bool) {
        self.fold_tie_floor();
        self.pinned_version = 0;
        self.epoch = 0;
        self.chain.zeroize();
        self.prev_chain = None;
        self.tentative = None;
        self.static_only_reset = static_only;
    }

    /// At a commit or a reset: an Init of the peer's that lost a tie is obsolete, below
    /// the replay floor from now on.
    pub fn fold_tie_floor(&mut self) {
        self.highest_init_ts = self.highest_init_ts.max(self.tie_floor);
        self.tie_floor = 0;
    }

    /// Fixed-length encoding (format 2), integers big-endian, with a SHA-256 checksum
    /// against truncation and bit rot (the file's secrecy comes from its mode, not from
    /// this).
    pub fn to_bytes(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let mut out = zeroize::Zeroizing::new(Vec::with_capacity(ENCODED_LEN));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&self.local_public);
        out.extend_from_slice(&self.peer_public);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.chain);
        let mut flags = 0;
        if self.prev_chain.is_some() {
            flags |= FLAG_PREV;
        }
        if self.tentative.is_some() {
            flags |= FLAG_TENTATIVE;
        }
        if self.static_only_reset {
            flags |= FLAG_STATIC_ONLY_RESET;
        }
        out.push(flags);
        out.extend_from_slice(self.prev_chain.as_ref().unwrap_or(&[0; 32]));
        let (t_epoch, t_chain) = self
            .tentative
            .as_ref()
            .map_or((0, [0; 32]), |t| (t.epoch, t.chain));
        out.extend_from_slice(&t_epoch.to_be_bytes());
        out.extend_from_slice(&t_chain);
        out.extend_from_slice(&self.highest_init_ts.to_be_bytes());
        out.extend_from_slice(&self.last_init_sent_ts.to_be_bytes());
        out.extend_from_slice(&self.wireguard_initiation);
        out.push(self.pinned_version);
        out.extend_from_slice(&self.tie_floor.to_be_bytes());
        let sum: [u8; 32] = Sha256::digest(&out[..]).into();
        out.extend_from_slice(&sum);
        out
    }

    /// Parses a state file (format 2, or format 1 from an earlier release) and checks
    /// that it belongs to this pair of static keys.
    pub fn from_bytes(
        bytes: &[u8],
        local_public: &[u8; 32],
        peer_public: &[u8; 32],
    ) -> Result<Self, ChainStateError> {
        let v1 = match bytes.len() {
            ENCODED_LEN => false,
            ENCODED_LEN_V1 => true,
            n => return Err(ChainStateError::Length(n)),
        };
        let mut r = Reader { bytes, pos: 0 };
        let magic = r.take::<16>();
        if magic != *(if v1 { MAGIC_V1 } else { MAGIC }) {
            return Err(ChainStateError::Magic);
        }
        let body_len = bytes.len() - 32;
        let sum: [u8; 32] = Sha256::digest(bytes.get(..body_len).unwrap_or(&[])).into();
        let stored = bytes.get(body_len..).unwrap_or(&[]);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(&sum[..], stored)) {
            return Err(ChainStateError::Checksum);
        }
        let local = r.take::<32>();
        let peer = r.take::<32>();
        if &local != local_public || &peer != peer_public {
            return Err(ChainStateError::Foreign);
        }
        let epoch = u64::from_be_bytes(r.take::<8>());
        let chain = r.take::<32>();
        let flags = r.take::<1>()[0];
        let prev = r.take::<32>();
        let t_epoch = u64::from_be_bytes(r.take::<8>());
        let t_chain = r.take::<32>();
        let highest_init_ts = u64::from_be_bytes(r.take::<8>());
        let last_init_sent_ts = u64::from_be_bytes(r.take::<8>());
        let (wireguard_initiation, pinned_version, tie_floor) = if v1 {
            ([0; 12], 0, 0)
        } else {
            (
                r.take::<12>(),
                r.take::<1>()[0],
                u64::from_be_bytes(r.take::<8>()),
            )
        };
        Ok(Self {
            local_public: local,
            peer_public: peer,
            epoch,
            chain,
            prev_chain: (flags & FLAG_PREV != 0).then_some(prev),
            tentative: (flags & FLAG_TENTATIVE != 0).then_some(Tentative {
                epoch: t_epoch,
                chain: t_chain,
            }),
            highest_init_ts,
            last_init_sent_ts,
            wireguard_initiation,
            static_only_reset: !v1 && flags & FLAG_STATIC_ONLY_RESET != 0,
            pinned_version,
            tie_floor,
        })
    }
}

/// Reads fixed-size fields from a buffer whose total length was checked up front.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let mut out = [0u8; N];
        if let Some(s) = self.bytes.get(self.pos..self.pos + N) {
            out.copy_from_slice(s);
        }
        self.pos += N;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ChainState {
        let mut s = ChainState::empty([1; 32], [2; 32]);
        s.epoch = 7;
        s.chain = [3; 32];
        s.prev_chain = Some([4; 32]);
        s.tentative = Some(Tentative {
            epoch: 8,
            chain: [5; 32],
        });
        s.highest_init_ts = 1_700_000_000_000_000_000;
        s.last_init_sent_ts = 1_700_000_000_000_000_001;
        s.wireguard_initiation = [0x40, 0, 0, 0, 0x69, 0x8a, 0, 0, 0, 0, 0, 7];
        s.static_only_reset = true;
        s.pinned_version = 2;
        s.tie_floor = 1_700_000_000_000_000_002;
        s
    }

    #[test]
    fn round_trip() {
        let s = sample();
        let b = s.to_bytes();
        assert_eq!(b.len(), ENCODED_LEN);
        let r = ChainState::from_bytes(&b, &[1; 32], &[2; 32]).unwrap();
        assert_eq!(r.epoch, 7);
        assert_eq!(r.chain, [3; 32]);
        assert_eq!(r.prev_chain, Some([4; 32]));
        assert_eq!(
            r.tentative.as_ref().map(|t| (t.epoch, t.chain)),
            Some((8, [5; 32]))
        );
        assert_eq!(r.highest_init_ts, s.highest_init_ts);
        assert_eq!(r.last_init_sent_ts, s.last_init_sent_ts);
        assert_eq!(r.wireguard_initiation, s.wireguard_initiation);
        assert!(r.static_only_reset);
        assert_eq!(r.pinned_version, 2);
        assert_eq!(r.tie_floor, s.tie_floor);
    }

    /// A format-1 file from an earlier release (241 bytes) is still read: no WireGuard
    /// record, no acknowledgement, no pinned version.
    #[test]
    fn reads_format_1() {
        let s = sample();
        let v2 = s.to_bytes();
        let mut v1 = Vec::with_capacity(ENCODED_LEN_V1);
        v1.extend_from_slice(MAGIC_V1);
        v1.extend_from_slice(&v2[16..120]);
        v1.push(v2[120] & (FLAG_PREV | FLAG_TENTATIVE));
        v1.extend_from_slice(&v2[121..209]);
        let sum: [u8; 32] = Sha256::digest(&v1).into();
        v1.extend_from_slice(&sum);
        assert_eq!(v1.len(), ENCODED_LEN_V1);
        let r = ChainState::from_bytes(&v1, &[1; 32], &[2; 32]).unwrap();
        assert_eq!(
            (r.epoch, r.chain, r.prev_chain),
            (7, [3; 32], Some([4; 32]))
        );
        assert_eq!(r.highest_init_ts, s.highest_init_ts);
        assert_eq!(r.wireguard_initiation, [0; 12]);
        assert!(!r.static_only_reset);
        assert_eq!(r.pinned_version, 0);
        assert_eq!(r.tie_floor, 0);
        // A v1 magic on a v2-sized file (or the reverse) is refused.
        let mut bad = v2.to_vec();
        bad[..16].copy_from_slice(MAGIC_V1);
        assert_eq!(
            ChainState::from_bytes(&bad, &[1; 32], &[2; 32]).err(),
            Some(ChainStateError::Magic)
        );
    }

    #[test]
    fn forget_chain_keeps_the_replay_records() {
        let mut s = sample();
        s.forget_chain(false);
        assert_eq!((s.epoch, s.chain, s.prev_chain), (0, [0; 32], None));
        assert!(s.tentative.is_none() && !s.static_only_reset);
        // The tie floor (above the replay floor in the sample) is folded into it.
        assert_eq!(s.highest_init_ts, 1_700_000_000_000_000_002);
        assert_eq!(s.tie_floor, 0);
        assert_eq!(s.last_init_sent_ts, 1_700_000_000_000_000_001);
        assert_ne!(s.wireguard_initiation, [0; 12]);
        s.forget_chain(true);
        assert!(s.static_only_reset);
    }

    #[test]
    fn rejects_corrupt_truncated_and_foreign() {
        let b = sample().to_bytes();
        assert_eq!(
            ChainState::from_bytes(&b[..100], &[1; 32], &[2; 32]).err(),
            Some(ChainStateError::Length(100))
        );
        let mut bad = b.to_vec();
        bad[90] ^= 1;
        assert_eq!(
            ChainState::from_bytes(&bad, &[1; 32], &[2; 32]).err(),
            Some(ChainStateError::Checksum)
        );
        let mut bad = b.to_vec();
        bad[0] = b'x';
        assert_eq!(
            ChainState::from_bytes(&bad, &[1; 32], &[2; 32]).err(),
            Some(ChainStateError::Magic)
        );
        assert_eq!(
            ChainState::from_bytes(&b, &[2; 32], &[1; 32]).err(),
            Some(ChainStateError::Foreign)
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let d = format!("{:?}", sample());
        assert!(!d.contains("3, 3"));
    }
}
