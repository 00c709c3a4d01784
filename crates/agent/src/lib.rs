//! rvs-agent: keepalived's job for rvsd.
//!
//! * [`keepalived`] reads keepalived.conf (with DPVS's extensions) into typed, validated
//!   configuration;
//! * [`vrrp`] speaks VRRP v2 (RFC 3768) and v3 (RFC 5798 / RFC 9568): packets, the state
//!   machine as a pure function of events and time, and Linux socket I/O;
//! * [`bfd`] runs keepalived's `bfd_instance` sessions (RFC 5880 / 5881) that VRRP
//!   instances track;
//! * [`check`] runs real-server health checks (TCP, HTTP GET, misc scripts) on one async
//!   runtime and reports up/down transitions;
//! * [`dataplane`] is the trait through which the agent drives rvsd (VIPs, gratuitous ARP,
//!   services, weights): [`dataplane::RvsdDataplane`] over rvsd's control socket, an
//!   in-memory fake for tests, `ip addr` for VRRP without rvsd;
//! * [`agent`] runs it all on one tokio runtime; [`reload`] finds what a re-read
//!   configuration changes (SIGHUP), so that only that is applied;
//! * [`script`] runs the scripts keepalived.conf names, each as its user;
//! * [`status`] answers `rvs-agent status` on a socket of the agent's own;
//! * [`metrics`] serves Prometheus metrics over HTTP (`--metrics-listen`);
//! * [`cli`] is the command line (rvs's options and keepalived's).
//!
//! # Deployment with rvsd
//! ```text
//!  clients ── dpdk0 (rvsd: VIPs, answers ARP)        dpdk1 (rvsd: LIPs) ── real servers
//!               │ twin dpdk0.kni: kernel address = dpdk0's        │
//!               │ VRRP adverts in and out (multicast)             │
//!  rvs-agent ───┘  VIPs, announcements, services: rvsd's control socket
//!       └── health checks: the Linux stack of its namespace, over the management interface
//! ```
//! * VRRP runs on the kernel twin (`interface dpdk0.kni`): give the twin the port's own
//!   address in the kernel (`ip addr add 198.18.0.1/24 dev dpdk0.kni`), which becomes the
//!   adverts' source and the tie-breaking primary address. Multicast reaches the twin and
//!   what the agent sends there leaves the port. The VIPs go into rvsd (`AddrAdd` on the
//!   port: `dpdk_interface`, else the twin's name without `.kni`), never on the twin. The
//!   twin lives and dies with rvsd: meanwhile the instance is in FAULT (see
//!   [`vrrp::instance`]).
//! * Health checks need a route from the agent's namespace to the real servers that does
//!   not go through rvsd: a management interface. rvs-agent does not use rvsd's twin of
//!   the server-side port for them, by choice: checks then keep working (and keep their
//!   verdicts) while rvsd restarts, no kni_host route or twin address has to be kept in
//!   step with rvsd's configuration, and the data path is not the judge of the real
//!   servers. (A twin can carry them: an address on `dpdk1.kni` plus `rvsip route add
//!   ADDR/32 dev dpdk1 scope kni_host`, but a dataplane restart then marks every real server
//!   down.) With a management interface on the servers' segment, set
//!   `net.ipv4.conf.all.arp_ignore=1` in the agent's namespace: rvsd hands ARP requests for
//!   addresses it does not own up to the twins, and the kernel must not answer those for
//!   the management address on a twin.
//! * Connections already open on the old master survive a failover only with rvsd's
//!   connection sync (`[sync]`, roles from `lvs_sync_daemon`: docs/HA.md); new ones go to
//!   the new master once its gratuitous ARP has been seen.

pub mod agent;
pub mod bfd;
pub mod check;
pub mod cli;
pub mod dataplane;
pub mod keepalived;
pub mod metrics;
pub mod random;
pub mod reload;
pub mod script;
pub mod status;
pub mod vrrp;
