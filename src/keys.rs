//! `genkey`, `pubkey`, `genpsk`: base64 keys on stdin/stdout, byte-compatible with `wg`.
//! `genkey FILE` and `genpsk FILE` create FILE with mode 0600 whatever the umask (never
//! replacing one); a key printed into a file other users can read (`genkey > a.key` under
//! umask 022) gets a warning, as wg gives one.

use std::io::{BufRead, IsTerminal as _, Read, Write};
use std::os::fd::AsFd as _;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

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

/// A secret key to FILE (created 0600) or to stdout (warned about when other users can
/// read where it goes).
fn emit_secret(bytes: &[u8; 32], out: Option<&Path>) -> Result<()> {
    let Some(path) = out else {
        if let Some(warning) = stdout_warning() {
            eprintln!("trident: WARNING: {warning}");
        }
        return print_key(bytes);
    };
    // `up` refuses a key in a directory others control; better to know now.
    tunnel::trusted_file::check_parent_dirs(path)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("not writing a key to {}", path.display()))?;
    let line = Zeroizing::new(format!("{}\n", B64.encode(bytes)));
    tunnel::secret_file::create_new(path, line.as_bytes())
        .map_err(anyhow::Error::from)
        .with_context(|| {
            format!(
                "writing {} (an existing file is never replaced)",
                path.display()
            )
        })
}

/// Why stdout is a bad place for a secret: a regular file that other users can read.
fn stdout_warning() -> Option<String> {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        return None;
    }
    let meta = std::fs::File::from(stdout.as_fd().try_clone_to_owned().ok()?)
        .metadata()
        .ok()?;
    let mode = meta.mode() & 0o7777;
    if !meta.is_file() || mode & 0o007 == 0 {
        return None;
    }
    let name = std::fs::read_link("/proc/self/fd/1")
        .map_or_else(|_| "stdout".to_owned(), |p| p.display().to_string());
    Some(format!(
        "writing a secret key to {name} (mode {mode:04o}), which every user can read: \
         chmod 600 it, and next time `umask 077` first or give the file name (created 0600)"
    ))
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

/// A new private key, clamped like `wg genkey`, so it is the canonical form of the scalar.
pub fn new_private_key() -> Result<Zeroizing<[u8; 32]>> {
    let mut key = random_32()?;
    key[0] &= 248;
    key[31] = (key[31] & 127) | 64;
    Ok(key)
}

/// A new random PSK.
pub fn new_psk() -> Result<Zeroizing<[u8; 32]>> {
    random_32()
}

/// A key or PSK as the one line its file holds.
pub fn key_line(key: &[u8; 32]) -> Zeroizing<String> {
    Zeroizing::new(format!("{}\n", B64.encode(key)))
}

pub fn genkey(out: Option<&Path>) -> Result<()> {
    emit_secret(&*new_private_key()?, out)
}

pub fn genpsk(out: Option<&Path>) -> Result<()> {
    emit_secret(&*new_psk()?, out)
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
