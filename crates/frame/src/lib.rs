//! The dataplane's per-frame decisions, without DPDK.
//!
//! A worker in `rvsd` does I/O only: it receives bursts, hands each frame to a [`Node`]
//! and carries out what the node asks through the [`Io`] trait (transmit on a port,
//! hand up to the kernel twin, hand over to another worker, allocate a buffer for an
//! answer). Everything the node decides (ARP and ND answers, local delivery and echo,
//! TTL / hop limit, MTU errors, route and neighbour choice, packets waiting for a
//! neighbour, kernel twin hand-off and forward2kni copies, redirect of the core's
//! verdicts) is made here over the core's [`fnat::buf::PacketBuf`] and `wire` views,
//! so the same code runs on DPDK mbufs and on `Vec`s in the fixture tables.
//!
//! Every drop is counted under one [`NetDrop`] reason; the core counts its own
//! ([`fnat::stats::DropReason`]); the two sets never share a name.

pub mod bucket;
pub mod counters;
pub mod hops;
pub mod io;
pub mod ip;
pub mod node;
pub mod port;
pub mod twin;

pub use counters::{NetCounter, NetCounters, NetDrop};
pub use hops::HopCache;
pub use io::Io;
pub use node::{Net, Node};
pub use port::{Port, Vlan};
pub use twin::{TwinBudget, TwinClass};

/// Length of the untagged Ethernet header every frame starts with.
pub const ETH_LEN: usize = wire::ethernet::HEADER_LEN;
