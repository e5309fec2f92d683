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

/// File magic and format version.
const MAGIC: &[u8; 16] = b"trident-chain-v1";
/// Encoded length: magic, two public keys, epoch, chain, flags, previous chain,
/// tentative epoch and chain, the two Init timestamps, checksum.
pub const ENCODED_LEN: usize = 16 + 32 + 32 + 8 + 32 + 1 + 32 + 8 + 32 + 8 + 8 + 32;
const FLAG_PREV: u8 = 1;
const FLAG_TENTATIVE: u8 = 2;

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
    /// The highest timestamp of an authenticated Init from this peer: an Init at or below
    /// it is a replay, also after a restart.
    pub highest_init_ts: u64,
    /// The timestamp of our last Init to this peer: the next one is higher even if the
    /// wall clock went back, so the peer never mistakes it for a replay.
    pub last_init_sent_ts: u64,
}

impl std::fmt::Debug for ChainState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainState")
            .field("epoch", &self.epoch)
            .field("chain", &"<redacted>")
            .field("tentative_epoch", &self.tentative.as_ref().map(|t| t.epoch))
            .field("highest_init_ts", &self.highest_init_ts)
            .field("last_init_sent_ts", &self.last_init_sent_ts)
            .finish()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChainStateError {
    #[error("chain state has {0} bytes, expected {ENCODED_LEN}")]
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
        }
    }

    pub fn has_chain(&self) -> bool {
        self.epoch != 0
    }

    /// Fixed-length encoding, integers big-endian, with a SHA-256 checksum against
    /// truncation and bit rot (the file's secrecy comes from its mode, not from this).
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
        let sum: [u8; 32] = Sha256::digest(&out[..]).into();
        out.extend_from_slice(&sum);
        out
    }

    /// Parses a state file and checks that it belongs to this pair of static keys.
    pub fn from_bytes(
        bytes: &[u8],
        local_public: &[u8; 32],
        peer_public: &[u8; 32],
    ) -> Result<Self, ChainStateError> {
        if bytes.len() != ENCODED_LEN {
            return Err(ChainStateError::Length(bytes.len()));
        }
        let mut r = Reader { bytes, pos: 0 };
        if r.take::<16>() != *MAGIC {
            return Err(ChainStateError::Magic);
        }
        let body_len = ENCODED_LEN - 32;
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
