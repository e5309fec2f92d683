//! Cryptokey routing: which peer owns an inner IP address (longest prefix wins).

use std::net::IpAddr;

use ip_network::IpNetwork;
use ip_network_table::IpNetworkTable;
use keymix::PeerId;

#[derive(Default)]
pub struct AllowedIps {
    table: IpNetworkTable<PeerId>,
}

impl AllowedIps {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn insert(&mut self, net: IpNetwork, peer: PeerId) {
        self.table.insert(net, peer);
    }

    /// The peer that packets to (or from) `ip` belong to.
    pub fn lookup(&self, ip: IpAddr) -> Option<PeerId> {
        self.table.longest_match(ip).map(|(_, peer)| *peer)
    }
}
