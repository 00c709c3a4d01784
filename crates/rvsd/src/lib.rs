//! rvsd, the rvs dataplane daemon: DPDK ports, per-core FullNAT workers, the network
//! layer (ARP/ND/ICMP/routes), and the control thread.

pub mod capture;
pub mod cli;
pub mod clock;
pub mod config;
pub mod control;
pub mod dataplane;
pub mod dpvs_conf;
pub mod hostcheck;
pub mod metrics;
pub mod pktbuf;
pub mod preflight;
pub mod server;
pub mod shared;
pub mod state;
pub mod steering;
pub mod sync;
pub mod twin;
pub mod worker;
