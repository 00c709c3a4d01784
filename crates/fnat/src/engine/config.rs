//! What an [`Engine`](super::Engine) is built from: its sizes, timeouts, TOA switch,
//! local ports and local address sets.
//!
//! These types are read from rvsd's configuration file (serde, unknown keys refused)
//! and handed to [`Engine::new`](super::Engine::new); they live apart from the engine
//! so the per-packet path and the configuration surface can be read separately.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::sapool::PortRange;
use crate::service::ServiceKey;
use crate::tcp_state::Timeouts;
use crate::timer::WheelConfig;

/// A set of local addresses (DPVS `-P ... -z LIP`, keepalived `local_address_group`):
/// for one service, or the default for services without their own set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalAddrSet {
    /// The service using these addresses; `None` = every service without its own set.
    #[serde(default)]
    pub service: Option<ServiceKey>,
    /// The local addresses, used in turn (IPv4 and IPv6 may be mixed: a connection
    /// uses those of its real server's family).
    pub lips: Vec<IpAddr>,
}

fn default_capacity() -> u32 {
    1 << 20
}
fn default_true() -> bool {
    true
}
fn default_probes() -> u32 {
    crate::sapool::MAX_PORT_PROBES
}
fn default_max_services() -> usize {
    1024
}
fn default_max_rs() -> usize {
    16384
}
fn default_persist() -> usize {
    65536
}
fn default_workers() -> u32 {
    1
}

/// Everything an [`Engine`](super::Engine) is sized and tuned from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// This worker's id, `0..workers`.
    #[serde(default)]
    pub worker: u16,
    /// How many workers share the local ports (see [`PortOwnership`](crate::sapool::PortOwnership)).
    #[serde(default = "default_workers")]
    pub workers: u32,
    /// Connections this worker can hold (the pool is allocated at start-up, 98 B a slot
    /// all-in at a million, more for the features the services use: see
    /// [`crate::conn::table`], [`crate::conn::slots`]).
    #[serde(default = "default_capacity")]
    pub conn_capacity: u32,
    /// Idle timeouts per state.
    #[serde(default)]
    pub timeouts: Timeouts,
    /// Timer wheel geometry.
    #[serde(default)]
    pub wheel: WheelConfig,
    /// Insert the client's address as a TOA option (and clamp the MSS for it).
    #[serde(default = "default_true")]
    pub toa: bool,
    /// How many of a UDP connection's first datagrams carry the UOA option on services
    /// with `uoa` (DPVS's `uoa_max_trail`); 0 = none.
    #[serde(default = "default_uoa_max_trail")]
    pub uoa_max_trail: u8,
    /// The longest IP packet rvs may make by adding to a datagram (the UOA option, a
    /// UDP PROXY protocol header). rvsd: its smallest port MTU (a longer packet would be
    /// refused on its way out).
    #[serde(default = "default_grown_max_len")]
    pub grown_max_len: u16,
    /// Usable local ports.
    #[serde(default)]
    pub port_range: PortRange,
    /// Ports tried per new connection before refusing it (`no_local_port`), at most the
    /// whole owned range of the family's LIPs. The default,
    /// [`MAX_PORT_PROBES`](crate::sapool::MAX_PORT_PROBES), covers the whole range of
    /// a LIP (see [`crate::sapool`]).
    #[serde(default = "default_probes")]
    pub port_probes: u32,
    /// Connections this worker keeps in `SYN_RECV` at most; a new SYN beyond it evicts
    /// the oldest half-open connection (counted `syn_recv_evicted`). 0 = a quarter of
    /// `conn_capacity`, at least 1024 (see [`EngineConfig::syn_recv_limit`]).
    #[serde(default)]
    pub syn_recv_max: u32,
    /// Local address sets.
    #[serde(default)]
    pub local_addrs: Vec<LocalAddrSet>,
    /// Per-service counters allocated at start (indexed by the stable `SvcId`); they grow
    /// when a generation with larger ids is bound.
    #[serde(default = "default_max_services")]
    pub max_services: usize,
    /// Per-real-server counters allocated at start (indexed by the stable `RsId`); they
    /// grow when a generation with larger ids is bound.
    #[serde(default = "default_max_rs")]
    pub max_real_servers: usize,
    /// Persistence templates this worker can hold.
    #[serde(default = "default_persist")]
    pub persist_capacity: usize,
    /// A persistence template whose real server has weight 0 is dropped and its client
    /// scheduled afresh (LVS's `expire_quiescent_template`, DPVS's conf item of that name).
    /// Off, as there: a drained server keeps its persistent clients until their templates
    /// expire. A server the passive check holds out loses them either way.
    #[serde(default)]
    pub expire_quiescent_template: bool,
    /// Seed of the connection hash; random when absent (set it only for tests). It
    /// also fixes the SYN cookie secret, which is otherwise random per process.
    #[serde(default)]
    pub hash_seed: Option<u64>,
    /// The seed of the hash that gives a NAT connection its worker (by the client's
    /// address and port; see `engine::modes`). Every worker of a process must have the
    /// same one (and, with connection sync, every peer: rvsd derives it from the sync
    /// key); otherwise rvsd draws it at random at start
    /// ([`crate::hash::SeededFold::random_seed`]).
    #[serde(default)]
    pub owner_seed: u64,
    /// Offsets where the local ports of each LIP start
    /// ([`crate::sapool::SaPool::set_start`]): rvsd draws it at random per process, so a
    /// restarted rvsd does not reuse its predecessor's ports first (the real servers
    /// may hold them in TIME_WAIT).
    #[serde(default)]
    pub port_seed: u64,
    /// The SYN proxy's settings (rvsd's `[synproxy]`).
    #[serde(default)]
    pub synproxy: crate::synproxy::SynProxyConfig,
    /// Advice on the connection table's large allocations, given before they are
    /// touched (see [`MemAdvice`]); not configuration, so not serialised.
    #[serde(skip)]
    pub mem_advice: Option<MemAdvice>,
}

/// A hint about a large, long-lived allocation, given its address and length in bytes
/// before its pages are first touched: rvsd passes one that asks the kernel for
/// transparent huge pages (`dpdk::mem::advise_huge_pages`), so that a pool of millions
/// of connections costs few TLB entries. (fnat itself makes no system calls.) Not part
/// of what a configuration says: any two compare equal.
#[derive(Clone, Copy)]
pub struct MemAdvice(pub fn(addr: usize, len: usize) -> bool);

impl PartialEq for MemAdvice {
    fn eq(&self, _: &MemAdvice) -> bool {
        true
    }
}

impl Eq for MemAdvice {}

impl std::fmt::Debug for MemAdvice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MemAdvice")
    }
}

fn default_uoa_max_trail() -> u8 {
    3
}

fn default_grown_max_len() -> u16 {
    1500
}

impl EngineConfig {
    /// The `SYN_RECV` limit in force: `syn_recv_max`, or when it is 0 a quarter of the
    /// pool but not below 1024; never above the pool.
    pub fn syn_recv_limit(&self) -> u32 {
        let l = if self.syn_recv_max == 0 { (self.conn_capacity / 4).max(1024) } else { self.syn_recv_max };
        l.clamp(1, self.conn_capacity.max(1))
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            worker: 0,
            workers: default_workers(),
            conn_capacity: default_capacity(),
            timeouts: Timeouts::default(),
            wheel: WheelConfig::default(),
            toa: default_true(),
            uoa_max_trail: default_uoa_max_trail(),
            grown_max_len: default_grown_max_len(),
            port_range: PortRange::default(),
            port_probes: default_probes(),
            syn_recv_max: 0,
            local_addrs: Vec::new(),
            max_services: default_max_services(),
            max_real_servers: default_max_rs(),
            persist_capacity: default_persist(),
            expire_quiescent_template: false,
            hash_seed: None,
            owner_seed: 0,
            port_seed: 0,
            synproxy: crate::synproxy::SynProxyConfig::default(),
            mem_advice: None,
        }
    }
}
