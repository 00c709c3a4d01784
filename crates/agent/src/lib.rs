//! rvs-agent: keepalived's job for rvsd.
//!
//! * [`keepalived`] reads keepalived.conf (with DPVS's extensions) into typed, validated
//!   configuration;
//! * [`vrrp`] speaks VRRP v2 (RFC 3768) and v3 (RFC 5798 / RFC 9568): packets, the state
//!   machine as a pure function of events and time, and Linux socket I/O;
//! * [`check`] runs real-server health checks (TCP, HTTP GET, misc scripts) on one async
//!   runtime and reports up/down transitions;
//! * [`dataplane`] is the trait through which the agent drives rvsd (VIPs, gratuitous ARP,
//!   services, weights), with an in-memory fake for tests;
//! * [`agent`] runs it all on one tokio runtime.

pub mod agent;
pub mod check;
pub mod dataplane;
pub mod keepalived;
pub mod vrrp;
