//! The opt-in RNDL key log (docs/PROTOCOL.md, "Key log"): for each epoch, the secret an
//! attacker who broke each source would hold, and a fingerprint of PSK_n (never PSK_n).
//! It exists so auditors can show on a real capture that every source is needed.
//!
//! One line per epoch:
//! `trident-keylog-v1 epoch=N s_init=HEX s_resp=HEX init_index=N ss_x=HEX ss_k=HEX k_q=HEX psk_fp=HEX`
//! (`k_q=` is empty when QKD did not take part); an exchange in protocol version 2 writes
//! `trident-keylog-v2` and adds `k_init=HEX` after `init_index` (its hidden fields open with
//! it). Lines starting with `#` are comments.

use std::fmt::Write as _;

use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const LINE_PREFIX: &str = "trident-keylog-v1";
/// The line of an exchange in protocol version 2.
pub const LINE_PREFIX_V2: &str = "trident-keylog-v2";
/// Longest line accepted: bounds parsing of untrusted files.
const MAX_LINE: usize = 1024;

#[derive(Clone, Zeroize, ZeroizeOnDrop, PartialEq, Eq)]
pub struct KeyLogEntry {
    /// The keymix protocol version of the exchange (1 or 2).
    pub version: u8,
    pub epoch: u64,
    pub s_init: [u8; 32],
    pub s_resp: [u8; 32],
    pub init_index: u32,
    pub ss_x: [u8; 32],
    pub ss_k: [u8; 32],
    pub k_q: Vec<u8>,
    pub psk_fingerprint: [u8; 16],
    /// Version 2: the Init's hiding key K_init (the audit opens the hidden fields with it).
    pub k_init: Option<[u8; 32]>,
}

impl std::fmt::Debug for KeyLogEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLogEntry")
            .field("epoch", &self.epoch)
            .field("init_index", &self.init_index)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key log line {line}: {what}")]
pub struct KeyLogError {
    pub line: usize,
    pub what: String,
}

/// Lowercase hex of `b` appended to `out`; the temporary string is wiped too (`b` is secret).
fn push_hex(out: &mut String, b: &[u8]) {
    out.push_str(&Zeroizing::new(hex::encode(b)));
}

impl KeyLogEntry {
    /// The entry as one line (with newline). The returned string holds secrets.
    pub fn to_line(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(480));
        let prefix = match self.k_init {
            Some(_) => LINE_PREFIX_V2,
            None => LINE_PREFIX,
        };
        let _ = write!(s, "{prefix} epoch={} s_init=", self.epoch);
        push_hex(&mut s, &self.s_init);
        s.push_str(" s_resp=");
        push_hex(&mut s, &self.s_resp);
        let _ = write!(s, " init_index={}", self.init_index);
        if let Some(k) = &self.k_init {
            s.push_str(" k_init=");
            push_hex(&mut s, k);
        }
        s.push_str(" ss_x=");
        push_hex(&mut s, &self.ss_x);
        s.push_str(" ss_k=");
        push_hex(&mut s, &self.ss_k);
        s.push_str(" k_q=");
        push_hex(&mut s, &self.k_q);
        s.push_str(" psk_fp=");
        push_hex(&mut s, &self.psk_fingerprint);
        s.push('\n');
        s
    }

    /// Parses a whole key log. Blank lines and `#` comments are skipped.
    pub fn parse_file(text: &str) -> Result<Vec<KeyLogEntry>, KeyLogError> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.push(Self::parse_line(line).map_err(|what| KeyLogError { line: i + 1, what })?);
        }
        Ok(out)
    }

    fn parse_line(line: &str) -> Result<KeyLogEntry, String> {
        if line.len() > MAX_LINE {
            return Err("line too long".into());
        }
        let mut words = line.split_ascii_whitespace();
        let version = match words.next() {
            Some(LINE_PREFIX) => 1,
            Some(LINE_PREFIX_V2) => 2,
            _ => {
                return Err(format!(
                    "does not start with {LINE_PREFIX} or {LINE_PREFIX_V2}"
                ))
            }
        };
        let mut e = KeyLogEntry {
            version,
            epoch: 0,
            s_init: [0; 32],
            s_resp: [0; 32],
            init_index: 0,
            ss_x: [0; 32],
            ss_k: [0; 32],
            k_q: Vec::new(),
            psk_fingerprint: [0; 16],
            k_init: None,
        };
        let mut seen = 0u8;
        for w in words {
            let (k, v) = w
                .split_once('=')
                .ok_or_else(|| format!("{w:?} is not key=value"))?;
            let not_hex = || format!("{k}: not hex");
            let bytes = || hex::decode(v).map_err(|_| not_hex());
            // Straight into the field: no copy of the secret is left behind.
            let fixed = |dst: &mut [u8]| match hex::decode_to_slice(v, dst) {
                Ok(()) => Ok(()),
                Err(hex::FromHexError::InvalidStringLength)
                    if v.bytes().all(|c| c.is_ascii_hexdigit()) =>
                {
                    Err(format!(
                        "{k}: expected {} bytes, got {}",
                        dst.len(),
                        v.len() / 2
                    ))
                }
                Err(_) => Err(not_hex()),
            };
            let bit = match k {
                "epoch" => {
                    e.epoch = v.parse().map_err(|_| "epoch: not a number".to_string())?;
                    1
                }
                "s_init" => fixed(&mut e.s_init).map(|_| 2)?,
                "s_resp" => fixed(&mut e.s_resp).map(|_| 4)?,
                "init_index" => {
                    e.init_index = v
                        .parse()
                        .map_err(|_| "init_index: not a number".to_string())?;
                    8
                }
                "ss_x" => fixed(&mut e.ss_x).map(|_| 16)?,
                "ss_k" => fixed(&mut e.ss_k).map(|_| 32)?,
                "k_q" => {
                    e.k_q = bytes()?;
                    64
                }
                "psk_fp" => fixed(&mut e.psk_fingerprint).map(|_| 128)?,
                "k_init" if version == 2 => {
                    fixed(e.k_init.insert([0; 32]))?;
                    0
                }
                other => return Err(format!("unknown field {other:?}")),
            };
            seen |= bit;
        }
        if seen != 0xff || (version == 2) != e.k_init.is_some() {
            return Err("missing fields".into());
        }
        Ok(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> KeyLogEntry {
        KeyLogEntry {
            version: 1,
            epoch: 3,
            s_init: [1; 32],
            s_resp: [2; 32],
            init_index: 77,
            ss_x: [3; 32],
            ss_k: [4; 32],
            k_q: vec![5; 32],
            psk_fingerprint: [6; 16],
            k_init: None,
        }
    }

    #[test]
    fn lines_roundtrip() {
        let mut e = sample();
        let text = format!("# comment\n\n{}", e.to_line().as_str());
        assert_eq!(KeyLogEntry::parse_file(&text).unwrap(), vec![e.clone()]);
        e.k_q.clear();
        assert_eq!(
            KeyLogEntry::parse_file(&e.to_line()).unwrap(),
            vec![e.clone()]
        );
        e.version = 2;
        e.k_init = Some([9; 32]);
        let line = e.to_line();
        assert!(line.starts_with("trident-keylog-v2 epoch=3 "));
        assert!(line.contains(&format!(" init_index=77 k_init={} ss_x=", "09".repeat(32))));
        assert_eq!(KeyLogEntry::parse_file(&line).unwrap(), vec![e.clone()]);
        // k_init belongs to version 2 only, and version 2 needs it.
        let v1_with = line.replace("trident-keylog-v2", "trident-keylog-v1");
        assert!(KeyLogEntry::parse_file(&v1_with).is_err());
        e.k_init = None;
        let v2_without = e
            .to_line()
            .replace("trident-keylog-v1", "trident-keylog-v2");
        assert!(KeyLogEntry::parse_file(&v2_without).is_err());
    }

    #[test]
    fn line_format_is_lowercase_hex() {
        let mut e = sample();
        e.s_init[0] = 0xab;
        e.k_q = vec![0xcd, 0x0f];
        let line = e.to_line();
        let head = format!("trident-keylog-v1 epoch=3 s_init=ab{}", "01".repeat(31));
        assert!(line.starts_with(&head));
        assert!(line.contains(" init_index=77 ss_x="));
        assert!(line.contains(" k_q=cd0f psk_fp="));
        assert!(line.ends_with(&format!("psk_fp={}\n", "06".repeat(16))));
        // Uppercase is read too.
        let upper = line.replace("s_init=ab", "s_init=AB");
        assert_eq!(KeyLogEntry::parse_file(&upper).unwrap(), vec![e]);
    }

    #[test]
    fn hex_errors_are_errors_with_the_field_name() {
        let good = sample().to_line();
        let err = |from: &str, to: &str| {
            let text = good.replace(from, to);
            KeyLogEntry::parse_file(&text).unwrap_err().what
        };
        assert_eq!(err("ss_x=03", "ss_x=0"), "ss_x: not hex");
        assert_eq!(err("ss_x=03", "ss_x="), "ss_x: expected 32 bytes, got 31");
        assert_eq!(
            err("ss_x=03", "ss_x=0303"),
            "ss_x: expected 32 bytes, got 33"
        );
        // u8::from_str_radix alone would take a sign.
        assert_eq!(err("ss_x=03", "ss_x=+3"), "ss_x: not hex");
        assert_eq!(err("ss_x=03", "ss_x=\u{e9}"), "ss_x: not hex");
        assert_eq!(err("k_q=05", "k_q=5"), "k_q: not hex");
        assert_eq!(err("k_q=05", "k_q=0g"), "k_q: not hex");
        assert_eq!(err("k_q=05", "k_q=+5"), "k_q: not hex");
    }

    #[test]
    fn bad_lines_name_their_number() {
        let good = sample().to_line();
        for bad in [
            "nonsense",
            "trident-keylog-v1 epoch=1",
            &good.replace("ss_x=03", "ss_x=0"),
            &good.replace("epoch=3", "epoch=x"),
            &good.replace("psk_fp=", "psk_fp=zz"),
            &format!("{} extra=1", good.trim()),
        ] {
            let err = KeyLogEntry::parse_file(&format!("{}{bad}\n", good.as_str())).unwrap_err();
            assert_eq!(err.line, 2, "{bad}");
        }
    }
}
