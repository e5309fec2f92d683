//! Which sources the modelled attacker has broken, as an operator names them.

use super::AuditError;

/// The sources whose secrets the modelled attacker holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Broken {
    pub x25519: bool,
    pub mlkem: bool,
    pub qkd: bool,
}

const ALL: Broken = Broken {
    x25519: true,
    mlkem: true,
    qkd: true,
};

impl Broken {
    /// Parses a list of source names separated by `,` or `+`, case-insensitive: the names
    /// `trident status` prints (`x25519`, `ml-kem-768`, `qkd`), the short `mlkem`, or
    /// `all`; or `none` alone (the attacker holds no source secret). Empty is an error, so
    /// a forgotten argument never silently means "nothing broken".
    pub fn parse(list: &str) -> Result<Self, AuditError> {
        let words: Vec<String> = list
            .split([',', '+'])
            .map(|w| w.trim().to_ascii_lowercase())
            .filter(|w| !w.is_empty())
            .collect();
        if words.is_empty() {
            return Err(AuditError::UnknownSource(list.to_owned()));
        }
        if words.iter().any(|w| w == "none") {
            return if words.len() == 1 {
                Ok(Broken::default())
            } else {
                Err(AuditError::UnknownSource(list.to_owned()))
            };
        }
        let mut b = Broken::default();
        for word in words {
            match word.as_str() {
                "x25519" => b.x25519 = true,
                "ml-kem-768" | "mlkem" | "ml-kem" => b.mlkem = true,
                "qkd" => b.qkd = true,
                "all" => b = ALL,
                _ => return Err(AuditError::UnknownSource(word)),
            }
        }
        Ok(b)
    }

    /// The broken sources, named as the epochs' sources are in the audit's output.
    pub fn names(&self) -> Vec<&'static str> {
        [
            (self.x25519, "x25519"),
            (self.mlkem, "mlkem"),
            (self.qkd, "qkd"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }
}
