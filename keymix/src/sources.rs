//! Which key sources went into an epoch. The mask is part of the transcript and of every
//! confirmation tag, so a man in the middle cannot silently strip a source.

use std::fmt;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SourceMask(u8);

impl SourceMask {
    pub const X25519: SourceMask = SourceMask(0b001);
    pub const MLKEM: SourceMask = SourceMask(0b010);
    pub const QKD: SourceMask = SourceMask(0b100);
    /// X25519 and ML-KEM-768 are never optional.
    pub const BASE: SourceMask = SourceMask(0b011);
    pub const ALL: SourceMask = SourceMask(0b111);

    pub const fn bits(self) -> u8 {
        self.0
    }

    /// A mask as it may appear on the wire: both mandatory sources set, no unknown bits.
    pub fn from_wire(bits: u8) -> Option<Self> {
        let m = SourceMask(bits);
        (bits & !Self::ALL.0 == 0 && m.contains(Self::BASE)).then_some(m)
    }

    pub const fn contains(self, other: SourceMask) -> bool {
        self.0 & other.0 == other.0
    }

    pub const fn has_qkd(self) -> bool {
        self.contains(Self::QKD)
    }

    pub const fn with(self, other: SourceMask) -> Self {
        SourceMask(self.0 | other.0)
    }

    pub const fn without(self, other: SourceMask) -> Self {
        SourceMask(self.0 & !other.0)
    }

    /// Source names in a fixed order, as status and the audit print them.
    pub fn names(self) -> Vec<&'static str> {
        [
            (Self::X25519, "x25519"),
            (Self::MLKEM, "mlkem"),
            (Self::QKD, "qkd"),
        ]
        .into_iter()
        .filter(|(m, _)| self.contains(*m))
        .map(|(_, n)| n)
        .collect()
    }
}

impl fmt::Debug for SourceMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.names().join("+"))
    }
}

impl fmt::Display for SourceMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_masks_need_both_mandatory_sources() {
        assert_eq!(SourceMask::from_wire(0b011), Some(SourceMask::BASE));
        assert_eq!(SourceMask::from_wire(0b111), Some(SourceMask::ALL));
        assert_eq!(SourceMask::from_wire(0b101), None);
        assert_eq!(SourceMask::from_wire(0b110), None);
        assert_eq!(SourceMask::from_wire(0b1011), None);
        assert_eq!(SourceMask::ALL.names(), ["x25519", "mlkem", "qkd"]);
    }
}
