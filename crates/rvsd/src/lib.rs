//! rvsd, the rvs dataplane daemon: DPDK ports, per-core FullNAT workers, the network
//! layer (ARP/ND/ICMP/routes), and the control thread.

pub mod config;
pub mod pktbuf;
