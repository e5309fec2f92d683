//! `genkey`, `pubkey`, `genpsk`: base64 keys on stdin/stdout, byte-compatible with `wg`.

use std::io::{Read, Write};

use anyhow::{bail, Context, Result};
use base64::Engine;
use keymix::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

fn random_32() -> Result<Zeroizing<[u8; 32]>> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    getrandom::fill(bytes.as_mut_slice())
        .map_err(|e| anyhow::anyhow!("reading the OS random number generator: {e}"))?;
    Ok(bytes)
}

fn print_key(bytes: &[u8; 32]) -> Result<()> {
    let line = Zeroizing::new(format!("{}\n", B64.encode(bytes)));
    std::io::stdout()
        .write_all(line.as_bytes())
        .context("writing to stdout")
}

/// Decodes a base64 32-byte key as `wg` writes it (surrounding whitespace ignored).
pub fn decode_key(text: &str) -> Option<Zeroizing<[u8; 32]>> {
    let decoded = Zeroizing::new(B64.decode(text.trim()).ok()?);
    let mut key = Zeroizing::new([0u8; 32]);
    if decoded.len() != key.len() {
        return None;
    }
    key.copy_from_slice(&decoded);
    Some(key)
}

pub fn genkey() -> Result<()> {
    let mut key = random_32()?;
    // Clamped like `wg genkey`, so the printed key is the canonical form of the scalar.
    key[0] &= 248;
    key[31] = (key[31] & 127) | 64;
    print_key(&key)
}

pub fn genpsk() -> Result<()> {
    print_key(&*random_32()?)
}

pub fn pubkey() -> Result<()> {
    let mut input = Zeroizing::new(String::new());
    std::io::stdin()
        .read_to_string(&mut input)
        .context("reading the private key from stdin")?;
    let Some(private) = decode_key(&input) else {
        bail!("pubkey: key is not the correct length or format");
    };
    let secret = StaticSecret::from(*private);
    print_key(PublicKey::from(&secret).as_bytes())
}
