//! keymix protocol versions (docs/PROTOCOL.md, "Versions and the upgrade"). Version 2 hides
//! the site, epoch, clock and QKD key IDs on the wire; version 1 is kept for peers that have
//! not upgraded. A version selects the labels of the key schedule.

use crate::labels::{self, Labels};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Version {
    V1 = 1,
    V2 = 2,
}

impl Version {
    pub const LATEST: Self = Self::V2;

    pub fn labels(self) -> &'static Labels {
        match self {
            Self::V1 => &labels::V1,
            Self::V2 => &labels::V2,
        }
    }

    pub fn byte(self) -> u8 {
        self as u8
    }

    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::V1),
            2 => Some(Self::V2),
            _ => None,
        }
    }
}

impl std::fmt::Display for Version {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.byte())
    }
}
