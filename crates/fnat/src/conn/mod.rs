//! Connections: one worker's table of FullNAT connections.
//!
//! A connection joins a client's flow `(proto, CIP:cport → VIP:vport)` to the flow the
//! balancer opened towards a real server `(proto, LIP:lport → RIP:rport)`. The table
//! ([`ConnTable`]) finds it in O(1) from either side's packets, in a pool preallocated at
//! start-up (see [`table`] for the layout and its cost per connection).
//!
//! The ten-tuple of a connection is its two four-tuples, the protocol and the owning
//! worker, which is constant per table (each worker owns its table outright).

pub mod key;
pub mod table;

pub use key::{Addr, ConnKey, KeyHasher};
pub use table::{ConnError, ConnRef, ConnTable, Hit, NewConn, BURST};

use crate::tcp_state::TcpState;
use crate::types::{Millis, Proto};

/// Per-connection flag bits (see [`ConnFlags`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ConnFlags(pub u8);

impl ConnFlags {
    /// The slot holds a live connection.
    pub const LIVE: u8 = 0x01;
    /// Counted as active (ESTABLISHED) in the scheduler and the counters.
    pub const ACTIVE: u8 = 0x02;
    /// The real server's SYN-ACK went through: the next client ACK completes the
    /// handshake (and carries the TOA).
    pub const SYNACK_SEEN: u8 = 0x04;
    /// The TOA option was inserted (once per connection).
    pub const TOA_DONE: u8 = 0x08;

    /// Whether every bit of `bits` is set.
    #[inline]
    pub fn has(self, bits: u8) -> bool {
        self.0 & bits == bits
    }

    /// Sets `bits`.
    #[inline]
    pub fn set(&mut self, bits: u8) {
        self.0 |= bits;
    }

    /// Clears `bits`.
    #[inline]
    pub fn clear(&mut self, bits: u8) {
        self.0 &= !bits;
    }
}

/// One FullNAT connection, as stored in the pool (104 bytes with IPv6-capable
/// addresses). The key fields are read-only once inserted (they index the table);
/// the rest is updated in place by the worker.
#[derive(Debug, Clone)]
pub struct Conn {
    cip: Addr,
    vip: Addr,
    lip: Addr,
    rip: Addr,
    cport: u16,
    vport: u16,
    lport: u16,
    rport: u16,
    /// Chain links: `next[0]` in the inbound key's bucket chain, `next[1]` in the
    /// outbound key's; `next[0]` doubles as the free-list link of an empty slot.
    next: [u32; 2],
    /// When the connection expires if no packet refreshes it (worker clock).
    pub expires: Millis,
    /// The service's index in the service table generation that created it.
    pub svc: u32,
    /// The real server's stable id.
    pub rs: u32,
    /// A next-hop cache slot for the dataplane (route + neighbour); opaque here,
    /// `u32::MAX` until the dataplane fills it.
    pub nexthop: u32,
    proto: Proto,
    /// TCP state (stays `None` for UDP).
    pub state: TcpState,
    /// Flag bits.
    pub flags: ConnFlags,
}

impl Conn {
    const EMPTY: Conn = Conn {
        cip: Addr::UNSPECIFIED,
        vip: Addr::UNSPECIFIED,
        lip: Addr::UNSPECIFIED,
        rip: Addr::UNSPECIFIED,
        cport: 0,
        vport: 0,
        lport: 0,
        rport: 0,
        next: [table::NIL; 2],
        expires: 0,
        svc: 0,
        rs: 0,
        nexthop: u32::MAX,
        proto: Proto::Tcp,
        state: TcpState::None,
        flags: ConnFlags(0),
    };

    /// Transport protocol.
    #[inline]
    pub fn proto(&self) -> Proto {
        self.proto
    }
    /// Client address.
    #[inline]
    pub fn cip(&self) -> Addr {
        self.cip
    }
    /// Client port.
    #[inline]
    pub fn cport(&self) -> u16 {
        self.cport
    }
    /// Virtual (service) address.
    #[inline]
    pub fn vip(&self) -> Addr {
        self.vip
    }
    /// Virtual port.
    #[inline]
    pub fn vport(&self) -> u16 {
        self.vport
    }
    /// Local address the balancer uses towards the real server.
    #[inline]
    pub fn lip(&self) -> Addr {
        self.lip
    }
    /// Local port.
    #[inline]
    pub fn lport(&self) -> u16 {
        self.lport
    }
    /// Real server address.
    #[inline]
    pub fn rip(&self) -> Addr {
        self.rip
    }
    /// Real server port.
    #[inline]
    pub fn rport(&self) -> u16 {
        self.rport
    }
    /// Whether the slot holds a live connection.
    #[inline]
    pub fn is_live(&self) -> bool {
        self.flags.has(ConnFlags::LIVE)
    }
    /// The key client packets arrive with: `(proto, CIP:cport → VIP:vport)`.
    #[inline]
    pub fn inbound_key(&self) -> ConnKey {
        ConnKey::new(self.proto, self.cip, self.cport, self.vip, self.vport)
    }
    /// The key real-server replies arrive with: `(proto, RIP:rport → LIP:lport)`.
    #[inline]
    pub fn outbound_key(&self) -> ConnKey {
        ConnKey::new(self.proto, self.rip, self.rport, self.lip, self.lport)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conn_is_compact() {
        assert!(std::mem::size_of::<Conn>() <= 104, "Conn is {} bytes", std::mem::size_of::<Conn>());
    }
}
