//! The network layer of the rvs dataplane (`rvsd`), without DPDK: which addresses the
//! dataplane owns, where packets go (longest-prefix-match routes), which MAC a next hop
//! has (neighbours, and packets waiting for resolution), and the small responders a
//! router needs (ARP, IPv6 neighbour discovery, ICMP echo and ICMP errors).
//!
//! Packet parsing comes from the [`wire`] crate; this crate decides what to do with the
//! packets and writes the answers.
//!
//! # Who calls what
//!
//! **Workers** (one per lcore, per packet; nothing here allocates, panics, locks or
//! makes a syscall on these paths):
//! * [`AddrTable::owner`]: is the destination one of ours (a VIP, a LIP, a port
//!   address)? Then it is for the dataplane (FullNAT, or a responder below).
//! * [`RouteTable::lookup`] and [`Route::next_hop`]: where does a packet go, and which
//!   neighbour must we resolve? [`Scope::KniHost`] routes send it to the kernel twin.
//! * [`NeighTable::lookup`]: the MAC of that next hop. On a miss, the packet waits in
//!   [`Pending::push`] (or is dropped and counted if the queue is full).
//! * The in-place responders, which turn a received frame into its answer in the same
//!   buffer: [`arp::reply_in_place`], [`nd::advert_in_place`],
//!   [`icmp::echo_reply_in_place`]; and the classifiers in front of them,
//!   [`arp::classify`] and [`nd::classify`], whose results also feed neighbour learning.
//! * [`icmp::build_error_v4`] / [`icmp::build_error_v6`] for the dataplane's own ICMP
//!   errors (TTL exceeded, fragmentation needed, packet too big, unreachable).
//!
//! **The control thread** (main lcore; may allocate):
//! * builds [`AddrTable`] and [`RouteTable`] from configuration and `rvsip` commands,
//!   adding [`AddrTable::connected_routes`]; both are `Clone + Send + Sync`, rebuilt
//!   (cloned and changed) and published to workers as an immutable snapshot;
//! * learns neighbours ([`NeighTable::learn`]) from ARP/ND seen by the workers, ages
//!   them ([`NeighTable::expire`]) and flushes the packets that waited
//!   ([`Pending::take`]);
//! * sends resolution requests ([`arp::build_request`], [`nd::build_solicit`]) when
//!   [`Pending::due_retries`] says so, and gratuitous ARP / unsolicited NA
//!   ([`arp::build_gratuitous`], [`nd::build_unsolicited_na`]) when a VIP moves here.
//!
//! # Frames
//! The ARP and ND functions take untagged Ethernet II frames (no VLAN tag yet; a tagged
//! frame is reported as the wrong protocol). [`icmp::echo_reply_in_place`] takes the
//! offset of the IP header, so it works on tagged frames too.

pub mod addr;
pub mod arp;
pub mod error;
mod hash;
pub mod icmp;
pub mod nd;
pub mod neigh;
pub mod route;
pub mod stamp;
#[cfg(test)]
mod testutil;

use core::fmt;
use std::net::IpAddr;

pub use addr::{AddrEntry, AddrError, AddrFlags, AddrTable};
pub use error::{PacketError, Suppressed};
pub use neigh::{
    admit, Due, DueRetries, Expired, HopOrigin, Learned, NeighEntry, NeighProbe, NeighState, NeighTable, NeighTimers,
    Pending, Refusal, Solicited,
};
pub use route::{Route, RouteError, RouteTable, Scope};
pub use stamp::Stamp;

/// A dataplane port (`dpdk0`, `dpdk1`, ... in DPDK's port order). A newtype so that a
/// port number is never confused with an L4 port or a queue number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PortId(pub u16);

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "port {}", self.0)
    }
}

/// An address family, for per-family questions such as "the IPv6 source address of
/// port 1" ([`AddrTable::primary`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Family {
    /// The family of an address.
    pub const fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "inet",
            Family::V6 => "inet6",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::de::value::{Error as DeError, StrDeserializer, U16Deserializer};
    use serde::Deserialize;

    #[test]
    fn port_id_display_and_serde() {
        assert_eq!(PortId(3).to_string(), "port 3");
        // Transparent: a port is a bare number in configuration and control messages.
        assert_eq!(PortId::deserialize(U16Deserializer::<DeError>::new(7)), Ok(PortId(7)));
        assert_eq!(Family::deserialize(StrDeserializer::<DeError>::new("v6")), Ok(Family::V6));
        assert_eq!(Family::of(&"::1".parse().unwrap()), Family::V6);
        assert_eq!(Family::V4.to_string(), "inet");
    }
}
