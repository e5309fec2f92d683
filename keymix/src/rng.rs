//! Randomness is an input of the sans-IO core: production uses the OS, tests and the
//! known-answer vectors use a seeded generator so every message is reproducible.

/// A source of cryptographically secure random bytes.
pub trait SecureRng: Send {
    fn fill(&mut self, buf: &mut [u8]);
}

/// The operating system's CSPRNG (getrandom).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRng;

impl SecureRng for OsRng {
    fn fill(&mut self, buf: &mut [u8]) {
        // Without OS randomness no key may be made at all; continuing with a partial or
        // predictable buffer would be worse than stopping.
        if let Err(e) = getrandom::fill(buf) {
            panic!("the operating system's random number generator failed: {e}");
        }
    }
}

/// A deterministic generator (SHA-256 in counter mode over a seed), for tests and the
/// known-answer vectors only. Never use it for real keys.
#[derive(Clone)]
pub struct SeededRng {
    seed: [u8; 32],
    counter: u64,
}

impl SeededRng {
    pub fn new(seed: [u8; 32]) -> Self {
        Self { seed, counter: 0 }
    }
}

impl SecureRng for SeededRng {
    fn fill(&mut self, buf: &mut [u8]) {
        use sha2::{Digest, Sha256};
        for chunk in buf.chunks_mut(32) {
            let block = Sha256::new()
                .chain_update(self.seed)
                .chain_update(self.counter.to_le_bytes())
                .finalize();
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }
}
