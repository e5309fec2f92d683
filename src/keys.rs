//! `genkey`, `pubkey`, `genpsk`: base64 keys on stdin/stdout, byte-compatible with `wg`.

use std::io::{BufRead, Read, Write};

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

/// Longest line `pubkey` reads: a 44-character key plus generous trailing whitespace.
const MAX_KEY_LINE: u64 = 256;

/// One line of at most [`MAX_KEY_LINE`] bytes holding exactly a key, as `wg pubkey`
/// accepts it: no leading whitespace, trailing whitespace allowed. Never reads past it.
fn read_key_line(input: &mut impl BufRead) -> Result<Zeroizing<[u8; 32]>> {
    let mut line = Zeroizing::new(Vec::new());
    input
        .take(MAX_KEY_LINE)
        .read_until(b'\n', &mut line)
        .context("reading the private key from stdin")?;
    if line.len() as u64 >= MAX_KEY_LINE && line.last() != Some(&b'\n') {
        bail!("pubkey: input line too long for a key");
    }
    let text = std::str::from_utf8(&line).ok();
    let key = text
        .filter(|t| !t.starts_with(|c: char| c.is_ascii_whitespace()))
        .map(str::trim_end)
        .filter(|t| t.len() == 44)
        .and_then(decode_key);
    key.ok_or_else(|| anyhow::anyhow!("pubkey: key is not the correct length or format"))
}

pub fn pubkey() -> Result<()> {
    let private = read_key_line(&mut std::io::stdin().lock())?;
    let secret = StaticSecret::from(*private);
    print_key(PublicKey::from(&secret).as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "YE1pzMgAo3J5DClDVMaZv0l7hLjxjpnG2aHDBCeVjXc=";

    fn read(input: &[u8]) -> Result<Zeroizing<[u8; 32]>> {
        read_key_line(&mut std::io::Cursor::new(input))
    }

    #[test]
    fn pubkey_reads_one_line_like_wg() {
        assert!(read(KEY.as_bytes()).is_ok());
        assert!(read(format!("{KEY}\n").as_bytes()).is_ok());
        assert!(read(format!("{KEY} \t\r\n").as_bytes()).is_ok());
        // What follows the first line is never read.
        assert!(read(format!("{KEY}\n{}", "x".repeat(1 << 20)).as_bytes()).is_ok());
        assert!(
            read(format!(" {KEY}\n").as_bytes()).is_err(),
            "leading space"
        );
        assert!(read(format!("{KEY}x\n").as_bytes()).is_err());
        assert!(read(b"").is_err());
    }

    #[test]
    fn pubkey_stops_reading_a_long_line() {
        let mut input = std::io::Cursor::new(vec![b'A'; 100 << 20]);
        assert!(read_key_line(&mut input).is_err());
        assert!(
            input.position() <= MAX_KEY_LINE,
            "read {}",
            input.position()
        );
    }
}
