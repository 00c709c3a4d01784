//! The rvs load-balancing core: everything that decides where a packet goes and how it
//! is rewritten, with no DPDK underneath, so it runs the same on a DPDK mbuf in `rvsd`
//! and on a `Vec<u8>` in tests and benchmarks.

pub mod types;

// Policy: which real server a new connection goes to.
pub mod persist;
pub mod sched;
pub mod service;

// Flow: connections, local ports, state, timers, rewriting.
pub mod buf;
pub mod conn;
pub mod counter;
pub mod denyset;
pub mod destcheck;
pub mod edge;
pub mod engine;
pub mod frag;
pub mod fwmark;
pub mod hash;
pub mod icmp_err;
#[cfg(feature = "judge")]
pub mod judge;
pub mod nat64;
pub mod proxy_proto;
pub mod sanity;
pub mod sapool;
pub mod snat;
pub mod stats;
pub mod synproxy;
pub mod tcp_state;
pub mod timer;
pub mod toa;
pub mod translate;
pub mod tunnel;
pub mod uoa;
