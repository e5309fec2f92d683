//! Trident's data plane: a TUN device, one UDP socket, and per peer one boringtun
//! [`boringtun::noise::Tunn`] per PSK epoch, keyed by the keymix handshake that runs on the
//! same socket.
//!
//! # Packet flow
//! TUN -> cryptokey routing ([`allowed_ips`]) -> the peer's sending Tunn -> UDP, and back:
//! UDP -> demux by first byte (keymix `0x81..=0x84`, WireGuard `1..=4`) -> the Tunn named by
//! the packet's index -> source address checked against the peer's allowed IPs -> TUN.
//!
//! # Tunn indices and epochs
//! boringtun's `Tunn::new` takes a 24-bit index and uses `index << 8` as the base of its
//! session indices, so the upper 24 bits of any receiver index name the Tunn that owns the
//! session. We build every Tunn index as
//!
//! ```text
//! index (24 bits) = random (20 bits) << 4 | (epoch & 0xF)
//! ```
//!
//! * Handshake responses, cookie replies and data packets carry *our* index as receiver
//!   index: `receiver_idx >> 8` is looked up in a table of live Tunns ([`tunn_index`]).
//! * A handshake initiation carries the *initiator's* sender index, whose low 4 bits (after
//!   `>> 8`) are the initiator's epoch number mod 16. Both sides use this scheme, so the
//!   responder picks its Tunn of the same epoch. Trying Tunns one after the other would not
//!   work: Noise_IKpsk2 mixes the PSK only into the *response*, so any Tunn of the right
//!   peer would accept the initiation and answer with the wrong PSK.
//! * An initiation for an epoch we do not have yet (the peer finished the keymix exchange a
//!   round trip before us) is kept, one per peer, and replayed when that epoch's key lands.
//!
//! # Epoch switch
//! Each peer keeps the current epoch's Tunn and one previous one ([`peer`]). The keymix
//! initiator starts the WireGuard handshake of a new epoch at once; until the new Tunn has
//! a session, user traffic keeps going out through the previous one, and both keep
//! decrypting, so an epoch switch loses no packets. When a further epoch lands, the older
//! of the two that is not carrying traffic is dropped.
//!
//! # Fail closed
//! No Tunn exists before the first `EpochKey`; Tunns are dropped when keymix reports
//! `Expired` (and, as a backstop, when their key is older than the reject age), so no user
//! traffic passes without a fresh PSK. An all-zero PSK is refused.
//!
//! # QKD and the key log
//! keymix asks for QKD keys through `Event::KmeRequest`; [`qkd_bridge`] runs each request on
//! its own task against the configured key source (an ETSI 014 client) and feeds the answer
//! back through a channel, so a slow or dead KME never stalls the packet loop. The opt-in
//! [`keylog`] appends keymix's per-epoch audit line when an `EpochKey` carries one.

pub mod allowed_ips;
pub mod chain_store;
pub mod chain_writer;
pub mod control;
pub mod counters;
pub mod driver;
pub mod epoch_tunn;
pub mod epoch_tunns;
pub mod error;
pub mod external;
pub mod handshake_rx;
pub mod initiation;
pub mod initiation_slots;
pub mod inner_packet;
pub mod keylog;
mod keymix_io;
pub mod metrics;
pub mod netconfig;
pub mod packet_batch;
pub mod peer;
pub mod peer_keys;
pub mod preflight;
pub mod privileges;
pub mod process_control;
pub mod qkd_bridge;
pub mod reload;
pub mod rtnl;
pub mod sd_notify;
pub mod secret_file;
pub mod settings;
pub mod status;
pub mod trusted_file;
pub mod tunn_index;
pub mod udp_fragment;
pub mod udp_socket;
pub mod wire;

pub use driver::run;
pub use error::TunnelError;
pub use settings::{InterfaceAddress, PeerSettings, TunnelSettings};
pub use status::{InterfaceStatus, PeerReport, SourcesReport};
