//! What the endpoint hands a peer's session for one incoming Init, whatever its version:
//! the Init's fields (version 2's opened), the bytes its tags cover, and version 2's hiding
//! keys with the candidate its pseudonym named. The state machine works on this alone.

use crate::hide::ExchangeKeys;
use crate::message::Init;
use crate::schedule::Secret32;
use crate::session::Slot;
use crate::Version;

pub(crate) struct InitFrame<'a> {
    pub version: Version,
    /// The Init's fields; for version 2 the sealed ones as opened.
    pub init: Init,
    /// The bytes the auth tag covers.
    pub auth_covered: &'a [u8],
    /// SHA-256 of the bytes through the auth tag: a retransmission of one Init shares it
    /// (mac2 may differ), a different Init does not.
    pub init_hash: [u8; 32],
    /// Version 2 only.
    pub hidden: Option<Hidden>,
}

/// A version-2 Init's hiding key and what derives from it, and which candidate keyed it.
pub(crate) struct Hidden {
    pub k_init: Secret32,
    pub keys: ExchangeKeys,
    pub named: Named,
}

/// Which candidate chain key a version-2 Init can be keyed with: the one its pseudonym
/// named, or, on the DH path (no pseudonym matched), only a bootstrap without a PSK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Named {
    Slot(Slot),
    StaticOnlyBootstrap,
}

impl Hidden {
    pub fn new(k_init: Secret32, named: Named) -> Self {
        let keys = ExchangeKeys::new(&k_init);
        Self {
            k_init,
            keys,
            named,
        }
    }
}
