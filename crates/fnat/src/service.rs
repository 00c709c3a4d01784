//! Virtual services and their real servers.
//!
//! Two layers:
//! - the configuration the operator writes ([`ServiceConfig`], [`RealServerConfig`]),
//!   serde types the control protocol carries;
//! - [`ServiceTable`], an immutable generation the control thread builds from a whole
//!   configuration ([`ServiceTable::build`]) after validating all of it, with the
//!   schedulers' static tables (wrr steps, sh/dh buckets, Maglev lookup table)
//!   computed once. Workers only read it; per-worker mutable state (counters, cursors,
//!   persistence) lives in [`crate::sched::SchedState`].
//!
//! # Identities
//! - [`SvcIdx`] is a position in one generation: fast, but only valid with the table
//!   that returned it.
//! - [`SvcId`] and [`RsId`] are stable: the same service key (proto, VIP, vport), and
//!   the same real server (service key, RIP, rport), keep their id across generations
//!   built with `prev`, so connections and per-worker counters that hold an id survive
//!   a reconfiguration.
//! - **Ids are never reused.** Each generation carries the next free id (a `u32`
//!   counter, handed on through `prev`); a server removed and added back gets a new
//!   id. A worker may still hold connections to a removed server: it keeps that id's
//!   counters until the count drops to 0, then drops them, and no new server can ever
//!   be confused with it. (Four billion additions before exhaustion, which
//!   [`ServiceTable::build`] reports as [`ServiceError::IdsExhausted`].)
//!
//! # Lookup
//! Services are keyed by (protocol, VIP, vport); vport 0 means "every port of the
//! VIP" (ipvsadm's persistent port-0 service). [`ServiceTable::lookup`] tries the exact
//! port first, then port 0.
//!
//! A firewall-mark service (ipvsadm `-f MARK`, keepalived `virtual_server fwmark`)
//! has no address of its own: its key is the mark and a family (`vip` the unspecified
//! address of that family, `vport` 0, `proto` TCP as ipvsadm sets it, unused), and it
//! takes the TCP and UDP flows the table's [`crate::fwmark`] rules mark, before any
//! VIP:port service ([`ServiceTable::classify`]). Its real servers' port 0 keeps the
//! client's destination port, as on an all-ports service; another port sends every
//! flow there (NAT, FullNAT). Past the [`SvcIdx`] (schedulers, persistence over all its
//! ports and addresses, identities) it is a service like any other.

use std::collections::HashMap;

use crate::hash::Fold;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use ipnet::IpNet;

use crate::destcheck::{DestCheck, DestMark};
use crate::edge::{RateLimit, ServicePolicy};
use crate::fwmark::{FwmarkRule, FwmarkTable};
use crate::persist::PersistConfig;
use crate::sched::maglev::{self, MH_DEFAULT_TABLE_SIZE, MH_MAX_TABLE_SIZE, MH_MIN_TABLE_SIZE};
use crate::sched::{SchedKind, StaticTable};
use crate::synproxy::SynProxyMode;
use crate::tcp_state::MAX_TIMEOUT_S;
use crate::types::{FwdMode, Proto};
use crate::uoa::UoaMode;

/// The largest weight a real server may have. ipvsadm accepts up to `i32::MAX`; no
/// deployment needs ratios beyond 65535:1, and this bound keeps the schedulers'
/// cross-multiplied comparisons inside `u64`.
pub const MAX_WEIGHT: u32 = 65_535;

/// ipvsadm's default weight for a real server added without `-w`.
pub const DEFAULT_WEIGHT: u32 = 1;

/// What identifies a virtual service: protocol, virtual address and port (0 = all
/// ports), or a firewall mark and a family (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceKey {
    /// TCP or UDP (TCP on a fwmark service, which takes both).
    pub proto: Proto,
    /// The virtual address clients connect to (on a fwmark service, the unspecified
    /// address of its family).
    pub vip: IpAddr,
    /// The virtual port; 0 = every port of the VIP (and on a fwmark service).
    pub vport: u16,
    /// The firewall mark of a fwmark service; 0 on a VIP:port service.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
}

impl ServiceKey {
    /// The key of the VIP:port service `proto vip:vport`.
    pub const fn new(proto: Proto, vip: IpAddr, vport: u16) -> ServiceKey {
        ServiceKey { proto, vip, vport, fwmark: 0 }
    }

    /// The key of the firewall-mark service `mark` of the family of `v6`.
    pub const fn of_fwmark(mark: u32, v6: bool) -> ServiceKey {
        let vip = match v6 {
            true => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            false => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        };
        ServiceKey { proto: Proto::Tcp, vip, vport: 0, fwmark: mark }
    }

    /// Whether this is a firewall-mark service.
    pub const fn is_fwmark(&self) -> bool {
        self.fwmark != 0
    }
}

impl fmt::Display for ServiceKey {
    /// `tcp 10.0.0.1:80`, `udp [2001:db8::1]:53`, `fwmark 1`, `fwmark 1 IPv6`: how
    /// errors name a service.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.fwmark, self.vip) {
            (0, _) => write!(f, "{} {}", self.proto.name(), SocketAddr::new(self.vip, self.vport)),
            (m, IpAddr::V4(_)) => write!(f, "fwmark {m}"),
            (m, IpAddr::V6(_)) => write!(f, "fwmark {m} IPv6"),
        }
    }
}

/// Position of a service in one [`ServiceTable`] generation; only valid with the table
/// that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SvcIdx(pub u32);

/// Stable identity of a service across generations (same [`ServiceKey`], same id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct SvcId(pub u32);

/// Stable identity of a real server of a service across generations; never reused
/// (see the module documentation). Connections store it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RsId(pub u32);

/// One real server of a service, as configured (ipvsadm `-a -r addr:port -w -x -y`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RealServerConfig {
    /// The real server's address; same family as the VIP.
    pub addr: IpAddr,
    /// The real server's port. 0 on a service with a port means "the service's port";
    /// on an all-ports service (vport 0) it must be 0: the client's port is kept.
    pub port: u16,
    /// Relative share of new connections, 0..=[`MAX_WEIGHT`]. 0 drains the server
    /// (inhibit / quiesce): no new connection, existing ones continue.
    #[serde(default = "default_weight")]
    pub weight: u32,
    /// Upper connection threshold (`-x`): at this many connections (active +
    /// inactive) the server is overloaded and gets no new ones. 0 = no limit.
    #[serde(default)]
    pub upper: u32,
    /// Lower connection threshold (`-y`): an overloaded server takes new connections
    /// again once below it. 0 = below 3/4 of `upper` (IPVS's rule).
    #[serde(default)]
    pub lower: u32,
    /// How its connections are forwarded (`-b|-m|-g`); FullNAT when not given.
    #[serde(default)]
    pub fwd: FwdMode,
}

fn default_weight() -> u32 {
    DEFAULT_WEIGHT
}

fn yes() -> bool {
    true
}

/// One virtual service, as configured (ipvsadm `-A -t|-u vip:port -s sched -p`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// TCP or UDP (TCP on a fwmark service).
    pub proto: Proto,
    /// The virtual address (on a fwmark service, the unspecified address of its family).
    pub vip: IpAddr,
    /// The virtual port; 0 = every port of the VIP (and on a fwmark service).
    pub vport: u16,
    /// The firewall mark of a fwmark service (ipvsadm `-f`), 0 otherwise; see the
    /// module documentation.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
    /// The scheduler for new connections (default wlc, as ipvsadm).
    #[serde(default)]
    pub sched: SchedKind,
    /// Client persistence (`-p`), off when absent.
    #[serde(default)]
    pub persistence: Option<PersistConfig>,
    /// The real servers, in order (the order matters to rr, wrr, sh, dh ties).
    #[serde(default)]
    pub real_servers: Vec<RealServerConfig>,
    /// Maglev lookup-table size for the mh scheduler: a prime between
    /// [`MH_MIN_TABLE_SIZE`] and [`MH_MAX_TABLE_SIZE`], at least the number of real
    /// servers (aim for 100 times more). Default [`MH_DEFAULT_TABLE_SIZE`]. Ignored by
    /// other schedulers.
    #[serde(default)]
    pub mh_table_size: Option<u32>,
    /// sh and mh: hash the client's port as well as its address (IPVS `sh-port` /
    /// `mh-port`). Ignored by other schedulers.
    #[serde(default)]
    pub hash_port: bool,
    /// sh, dh and mh: when the hashed server is drained or overloaded, pick another
    /// one deterministically instead of refusing (IPVS `sh-fallback` / `mh-fallback`).
    /// On by default.
    #[serde(default = "yes")]
    pub hash_fallback: bool,
    /// The SYN proxy for this service (`ipvsadm -j`); unset = the global default
    /// (`[synproxy] mode`, itself auto unless configured). See [`crate::synproxy`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub synproxy: Option<SynProxyMode>,
    /// Sources refused (DPVS's blacklist, `rvsadm --add-blklst`); see [`crate::edge`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<IpNet>,
    /// When not empty, the only sources admitted (DPVS's whitelist, `--add-whtlst`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<IpNet>,
    /// New connections per second admitted, over all workers (`rvsadm --conn-rate N[:BURST]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// Live connections per source address, per worker (`rvsadm --source-limit K`); 0 = none.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub source_limit: u32,
    /// The HAProxy PROXY protocol header sent to the real servers at the start of each
    /// connection (`rvsadm --proxy-protocol v1|v2`, keepalived `proxy_protocol`); off
    /// when absent. TCP only; see [`crate::proxy_proto`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy_protocol: Option<ProxyProtocol>,
    /// DPVS's UOA: the client's address in the first datagrams of each connection
    /// (`ipo` or `opp`), for FullNAT real servers with DPVS's `uoa` module; off when
    /// absent. UDP only; see [`crate::uoa`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uoa: Option<UoaMode>,
    /// The idle timeout of this service's established TCP connections and of all its
    /// UDP ones, in seconds, instead of the global timeouts (DPVS's `ipvsadm
    /// --conn-timeout`, keepalived `establish_timeout`): long for database or websocket
    /// services, short for a DNS one. 0 = the global timeouts. A change applies to live
    /// connections from their next packet.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub conn_timeout: u32,
    /// DPVS's passive health check (`ipvsadm --dest-check`): real servers that refuse
    /// or ignore the SYNs forwarded to them are taken out for a while; off when
    /// absent. TCP, with the replies through rvs; see [`crate::destcheck`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dest_check: Option<DestCheck>,
    /// DPVS's `--expire-quiescent` (keepalived `expire_quiescent_conn`): a connection
    /// whose real server has weight 0 ends at its next packet (an RST to a TCP sender)
    /// rather than running on; see [`crate::engine`]'s `quiescent`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expire_quiescent: bool,
    /// ipvsadm's one-packet scheduling (`-o/--ops`, keepalived `ops`), UDP only: each
    /// datagram is scheduled on its own and no connection is kept, so a few heavy
    /// senders of one-way traffic (syslog, metrics) spread over the servers; a server's
    /// reply finds no connection (dropped, `reply_no_conn`), as under DPVS.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ops: bool,
}

/// Which PROXY protocol header a service's connections carry to the real servers
/// (DPVS's `proxy_protocol`; its `v1-insecure`/`v2-insecure`, which pass on a header the
/// client sent, are not offered).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProxyProtocol {
    /// Version 1: one text line (`PROXY TCP4 CIP VIP CPORT VPORT\r\n`, at most 104 bytes).
    V1,
    /// Version 2: binary, 28 bytes (IPv4) or 52 (IPv6).
    V2,
}

impl ProxyProtocol {
    /// The name used in configuration files and listings (`v1`, `v2`).
    pub fn name(self) -> &'static str {
        match self {
            ProxyProtocol::V1 => "v1",
            ProxyProtocol::V2 => "v2",
        }
    }

    /// The version with this name (`v1`, `v2`).
    pub fn from_name(s: &str) -> Option<ProxyProtocol> {
        match s {
            "v1" => Some(ProxyProtocol::V1),
            "v2" => Some(ProxyProtocol::V2),
            _ => None,
        }
    }
}

impl fmt::Display for ProxyProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl ServiceConfig {
    /// A service with the default scheduler (wlc), no persistence and no real server.
    pub fn new(proto: Proto, vip: IpAddr, vport: u16) -> Self {
        ServiceConfig {
            proto,
            vip,
            vport,
            fwmark: 0,
            sched: SchedKind::default(),
            persistence: None,
            real_servers: Vec::new(),
            mh_table_size: None,
            hash_port: false,
            hash_fallback: true,
            synproxy: None,
            deny: Vec::new(),
            allow: Vec::new(),
            rate_limit: None,
            source_limit: 0,
            proxy_protocol: None,
            uoa: None,
            conn_timeout: 0,
            dest_check: None,
            expire_quiescent: false,
            ops: false,
        }
    }

    /// A service with the key `key` (VIP:port or fwmark), otherwise as [`new`](Self::new).
    pub fn with_key(key: ServiceKey) -> Self {
        ServiceConfig { fwmark: key.fwmark, ..ServiceConfig::new(key.proto, key.vip, key.vport) }
    }

    /// [`conn_timeout`](Self::conn_timeout) in milliseconds (0 = the global timeouts).
    pub fn conn_timeout_ms(&self) -> u32 {
        self.conn_timeout.min(MAX_TIMEOUT_S) * 1000
    }

    /// The key the service is found by.
    pub fn key(&self) -> ServiceKey {
        ServiceKey { proto: self.proto, vip: self.vip, vport: self.vport, fwmark: self.fwmark }
    }

    /// The SYN proxy setting the engine goes by: the service's own, except that the
    /// proxy is never used, whatever the global mode, by a service with the PROXY
    /// protocol (both would shift sequence numbers), with a DR or TUN real server (its
    /// SYN-ACK bypasses rvs) or with IPv4 servers behind an IPv6 VIP (NAT64). Validation
    /// allows only `off` or unset on such services.
    pub fn synproxy_setting(&self) -> Option<SynProxyMode> {
        let never = self.proxy_protocol.is_some()
            || self.real_servers.iter().any(|rs| !rs.fwd.replies_through() || rs.addr.is_ipv4() != self.vip.is_ipv4());
        match never {
            true => Some(SynProxyMode::Off),
            false => self.synproxy,
        }
    }
}

/// A real server in a built generation: its stable id and its effective settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    /// Stable identity (see the module documentation).
    pub id: RsId,
    /// Real server address.
    pub addr: IpAddr,
    /// Real server port, with "0 = the service's port" already resolved; 0 only on an
    /// all-ports service, where it means "the client's destination port".
    pub port: u16,
    /// Weight (0 = drained, or taken out by the passive check: see `mark`).
    pub weight: u32,
    /// What the passive check made of it ([`DestMark::Inhibited`]: weight 0 here
    /// whatever its configured weight).
    pub mark: DestMark,
    /// Upper connection threshold (0 = none), for the whole balancer.
    pub upper: u32,
    /// Lower connection threshold (0 = 3/4 of `upper`).
    pub lower: u32,
    /// How its connections are forwarded.
    pub fwd: FwdMode,
}

/// A service in a built generation.
#[derive(Debug, Clone)]
pub struct Service {
    /// Stable identity.
    pub id: SvcId,
    /// Protocol, VIP, vport.
    pub key: ServiceKey,
    /// The configuration it was built from.
    pub config: ServiceConfig,
    /// The real servers, in configuration order.
    pub dests: Vec<Dest>,
    /// The scheduler's static table for this generation: shared with the previous
    /// generation's when neither the service nor its servers' weights changed (a Maglev
    /// table is 256 KiB and about a millisecond to build; a change elsewhere, a weight
    /// set by a health check, builds only that service's again).
    pub(crate) table: Arc<StaticTable>,
    /// Its edge policy: deny and allow sets and limits, built once per generation.
    pub policy: ServicePolicy,
    /// The SYN proxy setting the engine goes by ([`ServiceConfig::synproxy_setting`]).
    pub synproxy: Option<SynProxyMode>,
    /// Whether a new connection could be scheduled at all: a real server of weight
    /// above 0, or, on a persistent service, one a client's template may still send it
    /// to (a drained one the passive check does not hold out, unless the service has
    /// `expire_quiescent`). Checked before anything
    /// is evicted to make room for a connection: a flood towards a service no server
    /// would take evicts nothing.
    pub may_schedule: bool,
}

/// Why a configuration was refused. Every variant names the service and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceError {
    /// Two services with the same protocol, VIP and port.
    #[error("{svc}: service defined twice")]
    DuplicateService {
        /// The service.
        svc: ServiceKey,
    },
    /// Two real servers with the same address and port in one service.
    #[error("{svc}: real server {rs} listed twice")]
    DuplicateRealServer {
        /// The service.
        svc: ServiceKey,
        /// The real server (after resolving port 0 to the service's port).
        rs: SocketAddr,
    },
    /// A real server of the other address family than the VIP.
    #[error("{svc}: real server {rs} is not of the VIP's address family (NAT64, an IPv6 VIP with IPv4 servers, is FullNAT only)")]
    FamilyMismatch {
        /// The service.
        svc: ServiceKey,
        /// The real server.
        rs: SocketAddr,
    },
    /// A service of another protocol than TCP and UDP (ICMP echo is only SNAT's).
    #[error("{svc}: a service is TCP or UDP (ICMP echo goes through SNAT rules only)")]
    NotTcpOrUdp {
        /// The service.
        svc: ServiceKey,
    },
    /// A VIP that is unspecified, multicast or broadcast.
    #[error("{svc}: the virtual address must be a unicast address")]
    BadVip {
        /// The service.
        svc: ServiceKey,
    },
    /// A fwmark service with an address, a port or a protocol of its own.
    #[error("{svc}: a fwmark service has no address or port of its own and takes TCP and UDP (give the unspecified address of its family, port 0 and tcp)")]
    FwmarkShape {
        /// The service.
        svc: ServiceKey,
    },
    /// A per-protocol option on a fwmark service, whose flows may be TCP or UDP.
    #[error("{svc}: {what} is for one protocol, and a fwmark service takes TCP and UDP; use a VIP:port service")]
    FwmarkPerProtocol {
        /// The service.
        svc: ServiceKey,
        /// The option.
        what: &'static str,
    },
    /// A fwmark rule that is wrong alone or in its list.
    #[error(transparent)]
    Fwmark(#[from] crate::fwmark::FwmarkError),
    /// A SYN proxy setting on a service that is not TCP.
    #[error("{svc}: the SYN proxy (synproxy) is for TCP services")]
    SynProxyNotTcp {
        /// The service.
        svc: ServiceKey,
    },
    /// A real-server address that is unspecified, multicast or broadcast.
    #[error("{svc}: real server {rs}: the address must be a unicast address")]
    BadRealServerAddr {
        /// The service.
        svc: ServiceKey,
        /// The real server.
        rs: SocketAddr,
    },
    /// A weight above [`MAX_WEIGHT`].
    #[error("{svc}: real server {rs}: weight {weight} is above the maximum {MAX_WEIGHT}")]
    BadWeight {
        /// The service.
        svc: ServiceKey,
        /// The real server.
        rs: SocketAddr,
        /// The weight given.
        weight: u32,
    },
    /// A lower threshold above a (non-zero) upper threshold.
    #[error("{svc}: real server {rs}: lower threshold {lower} is above the upper threshold {upper}")]
    BadThresholds {
        /// The service.
        svc: ServiceKey,
        /// The real server.
        rs: SocketAddr,
        /// Upper threshold given.
        upper: u32,
        /// Lower threshold given.
        lower: u32,
    },
    /// A real server with a port on an all-ports service.
    #[error("{svc}: an all-ports service keeps the client's port, so real server {rs} must have port 0")]
    PortOnAllPortsService {
        /// The service.
        svc: ServiceKey,
        /// The real server.
        rs: SocketAddr,
    },
    /// A persistence netmask longer than the address.
    #[error("{svc}: persistence netmask /{prefix} is longer than an IPv{family} address")]
    BadNetmask {
        /// The service.
        svc: ServiceKey,
        /// The prefix length given.
        prefix: u8,
        /// 4 or 6.
        family: u8,
    },
    /// A persistence timeout of 0.
    #[error("{svc}: persistence timeout must be at least 1 s")]
    BadPersistTimeout {
        /// The service.
        svc: ServiceKey,
    },
    /// An unusable Maglev table size.
    #[error("{svc}: mh table size {size}: {reason}")]
    BadMhTableSize {
        /// The service.
        svc: ServiceKey,
        /// The size given.
        size: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A rate limit of 0 new connections per second.
    #[error("{svc}: a rate limit must be at least 1 new connection per second")]
    BadRateLimit {
        /// The service.
        svc: ServiceKey,
    },
    /// A connection timeout beyond what a connection's expiry can hold.
    #[error("{svc}: conn_timeout {secs} s is above the maximum {MAX_TIMEOUT_S} s")]
    BadConnTimeout {
        /// The service.
        svc: ServiceKey,
        /// The timeout given.
        secs: u32,
    },
    /// A real server in SNAT mode: SNAT is a rule of its own ([`crate::snat`]), whose
    /// "real servers" are WAN addresses, not a service's way to its servers.
    #[error("{svc}: real server {rs}: SNAT is not a real server's mode; write a SNAT rule ([[snat]] in rvsd.toml)")]
    SnatServer {
        /// The service.
        svc: ServiceKey,
        /// The real server.
        rs: SocketAddr,
    },
    /// A DR or TUN real server with a port other than the service's: those modes send
    /// the packet unchanged, so they cannot change the port.
    #[error("{svc}: real server {rs}: {} keeps the service's port; give port 0 or {vport}", .fwd.described())]
    PortChange {
        /// The service.
        svc: ServiceKey,
        /// The real server.
        rs: SocketAddr,
        /// Its mode.
        fwd: FwdMode,
        /// The service's port.
        vport: u16,
    },
    /// A SYN proxy on a service with a real server whose replies do not pass rvs (DR,
    /// TUN): the proxy translates sequence numbers both ways.
    #[error("{svc}: the SYN proxy needs the replies through rvs, but real server {rs} is {}", .fwd.described())]
    SynProxyNeedsReplies {
        /// The service.
        svc: ServiceKey,
        /// The real server.
        rs: SocketAddr,
        /// Its mode.
        fwd: FwdMode,
    },
    /// The SYN proxy asked for on a NAT64 service: the proxy's own SYN to the server
    /// would have to be built in the other family.
    #[error(
        "{svc}: the SYN proxy does not work across families (NAT64) here, and real server {rs} is IPv4; set synproxy \
         off (a NAT64 service with no synproxy setting never uses the SYN proxy)"
    )]
    SynProxyNat64 {
        /// The service.
        svc: ServiceKey,
        /// The IPv4 real server.
        rs: SocketAddr,
    },
    /// A PROXY protocol header of a version that has no form for the service's
    /// protocol (version 1 speaks of TCP only; UDP takes version 2, one header per
    /// datagram).
    #[error("{svc}: PROXY protocol {version} speaks of TCP only: UDP services take v2 (a header in each datagram)")]
    ProxyProtocolNotTcp {
        /// The service.
        svc: ServiceKey,
        /// The version asked for.
        version: ProxyProtocol,
    },
    /// A PROXY protocol header together with the SYN proxy.
    #[error(
        "{svc}: PROXY protocol {version} cannot be combined with the SYN proxy (synproxy {mode}): both shift the \
         connection's sequence numbers and rvs does not stack the two; set synproxy off (a service with the PROXY \
         protocol and no synproxy setting never uses the SYN proxy)"
    )]
    ProxyProtocolWithSynProxy {
        /// The service.
        svc: ServiceKey,
        /// The version asked for.
        version: ProxyProtocol,
        /// The SYN proxy setting given.
        mode: SynProxyMode,
    },
    /// A PROXY protocol header on a service with a real server whose replies do not
    /// pass rvs (DR, TUN).
    #[error(
        "{svc}: PROXY protocol {version} needs the replies through rvs (their acknowledgments are shifted back by the \
         header's length), but real server {rs} is {}", .fwd.described()
    )]
    ProxyProtocolNeedsReplies {
        /// The service.
        svc: ServiceKey,
        /// The version asked for.
        version: ProxyProtocol,
        /// The real server.
        rs: SocketAddr,
        /// Its mode.
        fwd: FwdMode,
    },
    /// One-packet scheduling on a service that is not UDP.
    #[error("{svc}: one-packet scheduling (ops) is for UDP services (a TCP connection needs its state)")]
    OpsNotUdp {
        /// The service.
        svc: ServiceKey,
    },
    /// A passive check on a one-packet-scheduling service.
    #[error("{svc}: dest-check watches connections, and one-packet scheduling (-o) frees each after its datagram")]
    DestCheckOps {
        /// The service.
        svc: ServiceKey,
    },
    /// A passive check on a service with a real server whose replies do not pass rvs.
    #[error(
        "{svc}: dest-check needs the replies through rvs (a server's answers tell it from one that is down), but \
         real server {rs} is {}", .fwd.described()
    )]
    DestCheckNeedsReplies {
        /// The service.
        svc: ServiceKey,
        /// The real server.
        rs: SocketAddr,
        /// Its mode.
        fwd: FwdMode,
    },
    /// UOA on a service that is not UDP.
    #[error("{svc}: UOA ({mode}) is for UDP services (TCP has the TOA)")]
    UoaNotUdp {
        /// The service.
        svc: ServiceKey,
        /// The mode asked for.
        mode: UoaMode,
    },
    /// UOA and a PROXY protocol header on one service.
    #[error("{svc}: UOA ({mode}) and PROXY protocol {version} both tell the client's address; give one")]
    UoaWithProxyProtocol {
        /// The service.
        svc: ServiceKey,
        /// The UOA mode.
        mode: UoaMode,
        /// The PROXY protocol version.
        version: ProxyProtocol,
    },
    /// UOA towards a server that is not FullNAT, or `ipo` towards an IPv6 server.
    #[error("{svc}: UOA ({mode}) cannot reach real server {rs}: {why}")]
    UoaServer {
        /// The service.
        svc: ServiceKey,
        /// The mode asked for.
        mode: UoaMode,
        /// The real server.
        rs: SocketAddr,
        /// Why.
        why: &'static str,
    },
    /// The `u32` id space ran out (ids are never reused).
    #[error("no real-server or service identity left (ids are never reused); restart the dataplane")]
    IdsExhausted,
}

/// The passive check's marks, by service and real server (address and resolved port):
/// what rvsd's control thread hands [`ServiceTable::build_marked`].
pub type DestMarks = std::collections::BTreeMap<(ServiceKey, SocketAddr), DestMark>;

/// Process-wide generation numbers, so two tables never share one.
static NEXT_GENERATION: AtomicU64 = AtomicU64::new(1);

/// One immutable generation of every service, built and validated on the control
/// thread, read by the workers.
#[derive(Debug)]
pub struct ServiceTable {
    generation: u64,
    services: Vec<Service>,
    by_key: HashMap<ServiceKey, SvcIdx, Fold>,
    by_rs: HashMap<RsId, (SvcIdx, u32), Fold>,
    /// The rules that mark new flows for fwmark services, in order.
    fwmark: FwmarkTable,
    next_svc_id: u32,
    next_rs_id: u32,
}

impl Default for ServiceTable {
    fn default() -> Self {
        ServiceTable::empty()
    }
}

impl ServiceTable {
    /// A generation with no service (what workers run before the first configuration).
    pub fn empty() -> Self {
        ServiceTable {
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
            services: Vec::new(),
            by_key: HashMap::default(),
            by_rs: HashMap::default(),
            fwmark: FwmarkTable::default(),
            next_svc_id: 0,
            next_rs_id: 0,
        }
    }

    /// Validate `configs` as a whole and build the generation. With `prev`, services
    /// and real servers that were already there keep their ids, and new ones get ids
    /// never used before. Nothing is built if anything is wrong; the error names the
    /// service and the problem.
    pub fn build(configs: &[ServiceConfig], prev: Option<&ServiceTable>) -> Result<ServiceTable, ServiceError> {
        ServiceTable::build_marked(configs, prev, &DestMarks::new())
    }

    /// [`build`](Self::build), with the passive check's marks: a real server marked
    /// [`DestMark::Inhibited`] gets weight 0 in this generation. Marks of servers not in
    /// `configs`, or of services without `dest_check`, are ignored.
    pub fn build_marked(
        configs: &[ServiceConfig],
        prev: Option<&ServiceTable>,
        marks: &DestMarks,
    ) -> Result<ServiceTable, ServiceError> {
        ServiceTable::build_with(configs, prev, marks, true)
    }

    /// [`build`](Self::build)'s checks without its schedulers' tables (the Maglev tables
    /// of mh services above all): what a configuration check needs, at a fraction of the
    /// cost with many services.
    pub fn check(configs: &[ServiceConfig]) -> Result<(), ServiceError> {
        ServiceTable::build_with(configs, None, &DestMarks::new(), false).map(drop)
    }

    /// [`build_marked`](Self::build_marked); without `tables`, every service's static
    /// table is left empty (a table only to look at, never to schedule with).
    fn build_with(
        configs: &[ServiceConfig],
        prev: Option<&ServiceTable>,
        marks: &DestMarks,
        tables: bool,
    ) -> Result<ServiceTable, ServiceError> {
        let mut next_svc_id = prev.map_or(0, |p| p.next_svc_id);
        let mut next_rs_id = prev.map_or(0, |p| p.next_rs_id);
        let mut prev_rs: HashMap<(ServiceKey, SocketAddr), RsId> = HashMap::new();
        if let Some(p) = prev {
            for s in &p.services {
                for d in &s.dests {
                    prev_rs.insert((s.key, SocketAddr::new(d.addr, d.port)), d.id);
                }
            }
        }

        let mut services = Vec::with_capacity(configs.len());
        let mut by_key = HashMap::with_capacity_and_hasher(configs.len(), Fold::default());
        let mut by_rs = HashMap::default();
        for cfg in configs {
            let key = cfg.key();
            validate_service(cfg)?;
            let idx = SvcIdx(services.len() as u32);
            if by_key.insert(key, idx).is_some() {
                return Err(ServiceError::DuplicateService { svc: key });
            }
            let id = match prev.and_then(|p| p.by_key.get(&key).map(|&i| p.service(i).id)) {
                Some(id) => id,
                None => take_id(&mut next_svc_id).map(SvcId)?,
            };
            let mut dests: Vec<Dest> = Vec::with_capacity(cfg.real_servers.len());
            for rs in &cfg.real_servers {
                let dest = validate_dest(cfg, rs)?;
                let sock = SocketAddr::new(rs.addr, dest.port);
                if dests.iter().any(|d| d.addr == dest.addr && d.port == dest.port) {
                    return Err(ServiceError::DuplicateRealServer { svc: key, rs: sock });
                }
                let id = match prev_rs.get(&(key, sock)) {
                    Some(&id) => id,
                    None => take_id(&mut next_rs_id).map(RsId)?,
                };
                by_rs.insert(id, (idx, dests.len() as u32));
                let mark = match cfg.dest_check {
                    Some(_) => marks.get(&(key, sock)).copied().unwrap_or_default(),
                    None => DestMark::Normal,
                };
                let weight = if mark == DestMark::Inhibited { 0 } else { dest.weight };
                dests.push(Dest { id, weight, mark, ..dest });
            }
            let size = cfg.mh_table_size.unwrap_or(MH_DEFAULT_TABLE_SIZE);
            if cfg.sched == SchedKind::Mh {
                validate_mh_size(key, size, dests.len())?;
            }
            let same =
                |p: &&Service| p.config == *cfg && p.dests.iter().map(|d| d.weight).eq(dests.iter().map(|d| d.weight));
            let table = match prev.and_then(|p| p.by_key.get(&key).map(|&i| p.service(i))).filter(same) {
                Some(p) => Arc::clone(&p.table),
                None if tables => Arc::new(StaticTable::build(cfg, &dests, size)),
                None => Arc::new(StaticTable::None),
            };
            let policy = ServicePolicy::build(&cfg.deny, &cfg.allow, cfg.rate_limit, cfg.source_limit);
            let synproxy = cfg.synproxy_setting();
            // A template may send its client to a drained server, unless the service ends
            // a drained server's connections (then the scheduler takes no template to it).
            let kept = cfg.persistence.is_some() && !cfg.expire_quiescent;
            let may_schedule = dests.iter().any(|d| d.weight > 0 || (kept && d.mark != DestMark::Inhibited));
            services.push(Service { id, key, config: cfg.clone(), dests, table, policy, synproxy, may_schedule });
        }
        Ok(ServiceTable {
            generation: NEXT_GENERATION.fetch_add(1, Ordering::Relaxed),
            services,
            by_key,
            by_rs,
            fwmark: FwmarkTable::default(),
            next_svc_id,
            next_rs_id,
        })
    }

    /// One past the largest service id and real-server id ever given out (ids are never
    /// reused): what per-id arrays (counters) must cover.
    pub fn id_bounds(&self) -> (u32, u32) {
        (self.next_svc_id, self.next_rs_id)
    }

    /// This generation's number, unique in the process; workers compare it to know
    /// whether they must rebind.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// This generation with the rules that mark new flows for fwmark services (see
    /// [`crate::fwmark`]), checked as a whole. Rules whose mark has no service are
    /// kept: they mark nothing until the service is added.
    pub fn with_fwmark_rules(mut self, rules: &[FwmarkRule]) -> Result<ServiceTable, ServiceError> {
        self.fwmark = FwmarkTable::new(rules)?;
        Ok(self)
    }

    /// The rules that mark new flows, in order.
    pub fn fwmark_rules(&self) -> &[FwmarkRule] {
        self.fwmark.rules()
    }

    /// The service a new flow `proto src:sport -> dst:dport` belongs to: the fwmark
    /// service of the first rule that marks it, if that mark has a service of the
    /// flow's family and `markable` (the engine says no for its own local addresses,
    /// whose stray replies no rule may turn into connections); otherwise
    /// [`lookup`](Self::lookup). No allocation.
    #[inline]
    pub fn classify(
        &self,
        proto: Proto,
        (src, sport): (IpAddr, u16),
        (dst, dport): (IpAddr, u16),
        markable: impl FnOnce() -> bool,
    ) -> Option<SvcIdx> {
        if !self.fwmark.is_empty() {
            if let Some(mark) = self.fwmark.mark_of(proto, (src, sport), (dst, dport)) {
                let svc = self.by_key.get(&ServiceKey::of_fwmark(mark, dst.is_ipv6()));
                if let Some(&i) = svc.filter(|_| markable()) {
                    return Some(i);
                }
            }
        }
        self.lookup(proto, dst, dport)
    }

    /// The service with key `key` (VIP:port or fwmark), exactly.
    pub fn find(&self, key: &ServiceKey) -> Option<SvcIdx> {
        self.by_key.get(key).copied()
    }

    /// The VIP:port service a new flow to `vip:vport` belongs to: the exact port
    /// first, then the all-ports service (vport 0); fwmark services are
    /// [`classify`](Self::classify)'s. No allocation.
    pub fn lookup(&self, proto: Proto, vip: IpAddr, vport: u16) -> Option<SvcIdx> {
        let exact = ServiceKey::new(proto, vip, vport);
        if let Some(&i) = self.by_key.get(&exact) {
            return Some(i);
        }
        if vport == 0 {
            return None;
        }
        self.by_key.get(&ServiceKey::new(proto, vip, 0)).copied()
    }

    /// The service at `idx`. Panics if `idx` did not come from this table; use
    /// [`ServiceTable::get`] where that can happen.
    pub fn service(&self, idx: SvcIdx) -> &Service {
        &self.services[idx.0 as usize]
    }

    /// The service at `idx`, if `idx` is valid in this table.
    pub fn get(&self, idx: SvcIdx) -> Option<&Service> {
        self.services.get(idx.0 as usize)
    }

    /// Every service, in configuration order (position = [`SvcIdx`]).
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// Number of services.
    pub fn len(&self) -> usize {
        self.services.len()
    }

    /// Whether there is no service.
    pub fn is_empty(&self) -> bool {
        self.services.is_empty()
    }

    /// Where the real server `rs` sits in this generation (its service and position),
    /// if it is still configured.
    pub fn locate(&self, rs: RsId) -> Option<(SvcIdx, usize)> {
        self.by_rs.get(&rs).map(|&(s, d)| (s, d as usize))
    }

    /// The real server `rs` in this generation, if it is still configured.
    pub fn dest(&self, rs: RsId) -> Option<&Dest> {
        let (s, d) = self.locate(rs)?;
        self.services.get(s.0 as usize)?.dests.get(d)
    }
}

fn take_id(next: &mut u32) -> Result<u32, ServiceError> {
    let id = *next;
    *next = next.checked_add(1).ok_or(ServiceError::IdsExhausted)?;
    Ok(id)
}

fn is_unicast(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast()),
    }
}

fn validate_service(cfg: &ServiceConfig) -> Result<(), ServiceError> {
    let svc = cfg.key();
    if cfg.proto == Proto::Icmp {
        return Err(ServiceError::NotTcpOrUdp { svc });
    }
    if cfg.fwmark != 0 {
        if !cfg.vip.is_unspecified() || cfg.vport != 0 || cfg.proto != Proto::Tcp {
            return Err(ServiceError::FwmarkShape { svc });
        }
        let what = match () {
            _ if cfg.ops => Some("one-packet scheduling (ops)"),
            _ if cfg.uoa.is_some() => Some("UOA"),
            _ if cfg.proxy_protocol.is_some() => Some("the PROXY protocol"),
            _ => None,
        };
        if let Some(what) = what {
            return Err(ServiceError::FwmarkPerProtocol { svc, what });
        }
    } else if !is_unicast(cfg.vip) {
        return Err(ServiceError::BadVip { svc });
    }
    if cfg.synproxy.is_some() && cfg.proto != Proto::Tcp {
        return Err(ServiceError::SynProxyNotTcp { svc });
    }
    if cfg.ops && cfg.proto != Proto::Udp {
        return Err(ServiceError::OpsNotUdp { svc });
    }
    if cfg.ops && cfg.dest_check.is_some() {
        return Err(ServiceError::DestCheckOps { svc });
    }
    if let Some(mode) = cfg.uoa.filter(|_| cfg.proto != Proto::Udp) {
        return Err(ServiceError::UoaNotUdp { svc, mode });
    }
    if let Some(version) = cfg.proxy_protocol {
        if cfg.proto != Proto::Tcp && version != ProxyProtocol::V2 {
            return Err(ServiceError::ProxyProtocolNotTcp { svc, version });
        }
        if let Some(mode) = cfg.uoa {
            return Err(ServiceError::UoaWithProxyProtocol { svc, mode, version });
        }
        if let Some(mode @ (SynProxyMode::On | SynProxyMode::Auto)) = cfg.synproxy {
            return Err(ServiceError::ProxyProtocolWithSynProxy { svc, version, mode });
        }
    }
    if cfg.rate_limit.is_some_and(|r| r.rate == 0) {
        return Err(ServiceError::BadRateLimit { svc });
    }
    if cfg.conn_timeout > MAX_TIMEOUT_S {
        return Err(ServiceError::BadConnTimeout { svc, secs: cfg.conn_timeout });
    }
    if let Some(p) = &cfg.persistence {
        if p.timeout_s == 0 {
            return Err(ServiceError::BadPersistTimeout { svc });
        }
        if p.netmask_v4 > 32 {
            return Err(ServiceError::BadNetmask { svc, prefix: p.netmask_v4, family: 4 });
        }
        if p.netmask_v6 > 128 {
            return Err(ServiceError::BadNetmask { svc, prefix: p.netmask_v6, family: 6 });
        }
    }
    Ok(())
}

/// Check one real server and resolve its port; the id is filled in by the caller.
fn validate_dest(cfg: &ServiceConfig, rs: &RealServerConfig) -> Result<Dest, ServiceError> {
    let svc = cfg.key();
    let port = if rs.port == 0 { cfg.vport } else { rs.port };
    let sock = SocketAddr::new(rs.addr, port);
    if cfg.vport == 0 && rs.port != 0 && cfg.fwmark == 0 {
        return Err(ServiceError::PortOnAllPortsService { svc, rs: sock });
    }
    if rs.fwd == FwdMode::Snat {
        return Err(ServiceError::SnatServer { svc, rs: sock });
    }
    // NAT64: an IPv6 VIP may have IPv4 real servers, under FullNAT (as DPVS offers).
    let nat64 = cfg.vip.is_ipv6() && rs.addr.is_ipv4() && rs.fwd == FwdMode::FullNat;
    if rs.addr.is_ipv4() != cfg.vip.is_ipv4() && !nat64 {
        return Err(ServiceError::FamilyMismatch { svc, rs: sock });
    }
    if !is_unicast(rs.addr) {
        return Err(ServiceError::BadRealServerAddr { svc, rs: sock });
    }
    if rs.weight > MAX_WEIGHT {
        return Err(ServiceError::BadWeight { svc, rs: sock, weight: rs.weight });
    }
    if rs.upper != 0 && rs.lower > rs.upper {
        return Err(ServiceError::BadThresholds { svc, rs: sock, upper: rs.upper, lower: rs.lower });
    }
    if rs.fwd.keeps_packet() && port != cfg.vport {
        return Err(ServiceError::PortChange { svc, rs: sock, fwd: rs.fwd, vport: cfg.vport });
    }
    let proxied = matches!(cfg.synproxy, Some(SynProxyMode::On | SynProxyMode::Auto));
    if proxied && !rs.fwd.replies_through() {
        return Err(ServiceError::SynProxyNeedsReplies { svc, rs: sock, fwd: rs.fwd });
    }
    if proxied && nat64 {
        return Err(ServiceError::SynProxyNat64 { svc, rs: sock });
    }
    if cfg.dest_check.is_some() && !rs.fwd.replies_through() {
        return Err(ServiceError::DestCheckNeedsReplies { svc, rs: sock, fwd: rs.fwd });
    }
    if let Some(version) = cfg.proxy_protocol.filter(|_| !rs.fwd.replies_through()) {
        return Err(ServiceError::ProxyProtocolNeedsReplies { svc, version, rs: sock, fwd: rs.fwd });
    }
    if let Some(mode) = cfg.uoa {
        let why = match (rs.fwd, mode) {
            (FwdMode::FullNat, UoaMode::Ipo) if rs.addr.is_ipv6() => Some("ipo is IPv4 only (use opp)"),
            (FwdMode::FullNat, _) => None,
            _ => Some("it is not FullNAT (the other modes keep the client's address)"),
        };
        if let Some(why) = why {
            return Err(ServiceError::UoaServer { svc, mode, rs: sock, why });
        }
    }
    Ok(Dest {
        id: RsId(0),
        addr: rs.addr,
        port,
        weight: rs.weight,
        mark: DestMark::Normal,
        upper: rs.upper,
        lower: rs.lower,
        fwd: rs.fwd,
    })
}

fn validate_mh_size(svc: ServiceKey, size: u32, dests: usize) -> Result<(), ServiceError> {
    let reason = if !(MH_MIN_TABLE_SIZE..=MH_MAX_TABLE_SIZE).contains(&size) {
        Some("out of range (251..=1048573)")
    } else if !maglev::is_prime(size) {
        Some("not a prime")
    } else if dests > size as usize {
        Some("smaller than the number of real servers")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(ServiceError::BadMhTableSize { svc, size, reason }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn rs(addr: &str, port: u16, weight: u32) -> RealServerConfig {
        RealServerConfig { addr: ip(addr), port, weight, upper: 0, lower: 0, fwd: Default::default() }
    }

    fn svc(vip: &str, vport: u16, servers: &[RealServerConfig]) -> ServiceConfig {
        let mut c = ServiceConfig::new(Proto::Tcp, ip(vip), vport);
        c.real_servers = servers.to_vec();
        c
    }

    fn err(configs: &[ServiceConfig]) -> String {
        ServiceTable::build(configs, None).unwrap_err().to_string()
    }

    #[test]
    fn lookup_exact_then_all_ports() {
        let t = ServiceTable::build(
            &[svc("10.0.0.1", 80, &[rs("10.1.0.1", 8080, 1)]), svc("10.0.0.1", 0, &[rs("10.1.0.2", 0, 1)])],
            None,
        )
        .unwrap();
        assert_eq!(t.lookup(Proto::Tcp, ip("10.0.0.1"), 80), Some(SvcIdx(0)));
        assert_eq!(t.lookup(Proto::Tcp, ip("10.0.0.1"), 443), Some(SvcIdx(1)));
        assert_eq!(t.lookup(Proto::Udp, ip("10.0.0.1"), 80), None);
        assert_eq!(t.lookup(Proto::Tcp, ip("10.0.0.2"), 80), None);
        assert_eq!(t.service(SvcIdx(1)).dests[0].port, 0);
    }

    #[test]
    fn real_server_port_zero_means_service_port() {
        let t = ServiceTable::build(&[svc("10.0.0.1", 80, &[rs("10.1.0.1", 0, 1)])], None).unwrap();
        assert_eq!(t.service(SvcIdx(0)).dests[0].port, 80);
        // ... so 10.1.0.1:0 and 10.1.0.1:80 are the same server.
        let e = err(&[svc("10.0.0.1", 80, &[rs("10.1.0.1", 0, 1), rs("10.1.0.1", 80, 1)])]);
        assert_eq!(e, "tcp 10.0.0.1:80: real server 10.1.0.1:80 listed twice");
    }

    #[test]
    fn dr_keeps_the_port_and_refuses_the_syn_proxy() {
        let dr = |port| RealServerConfig { fwd: FwdMode::Dr, ..rs("10.1.0.1", port, 1) };
        assert_eq!(
            err(&[svc("10.0.0.1", 80, &[dr(8080)])]),
            "tcp 10.0.0.1:80: real server 10.1.0.1:8080: direct routing (-g, lb_kind DR) keeps the service's port; give port 0 or 80"
        );
        let t = ServiceTable::build(&[svc("10.0.0.1", 80, &[dr(0)]), svc("10.0.0.1", 0, &[dr(0)])], None).unwrap();
        assert_eq!(t.service(SvcIdx(0)).dests[0].fwd, FwdMode::Dr);
        let mut proxied = svc("10.0.0.1", 80, &[dr(80)]);
        proxied.synproxy = Some(SynProxyMode::On);
        assert_eq!(
            err(&[proxied.clone()]),
            "tcp 10.0.0.1:80: the SYN proxy needs the replies through rvs, but real server 10.1.0.1:80 is direct routing (-g, lb_kind DR)"
        );
        proxied.real_servers[0].fwd = FwdMode::Nat;
        assert!(ServiceTable::build(&[proxied], None).is_ok(), "NAT replies pass rvs: the SYN proxy works");
    }

    #[test]
    fn dest_check_needs_replies_and_connections_and_its_marks_hold_servers_out() {
        let mut c = svc("10.0.0.1", 80, &[rs("10.1.0.1", 80, 3), rs("10.1.0.2", 80, 2)]);
        c.dest_check = Some(DestCheck::default());
        let mut dr = c.clone();
        dr.real_servers[1].fwd = FwdMode::Dr;
        assert_eq!(
            err(&[dr]),
            "tcp 10.0.0.1:80: dest-check needs the replies through rvs (a server's answers tell it from one that is down), \
             but real server 10.1.0.2:80 is direct routing (-g, lb_kind DR)"
        );
        let mut udp = c.clone();
        udp.proto = Proto::Udp;
        assert!(ServiceTable::build(&[udp.clone()], None).is_ok(), "UDP services take it too");
        udp.ops = true;
        assert_eq!(
            err(&[udp]),
            "udp 10.0.0.1:80: dest-check watches connections, and one-packet scheduling (-o) frees each after its datagram"
        );
        let key = c.key();
        let marks: DestMarks = [
            ((key, "10.1.0.1:80".parse().unwrap()), DestMark::Inhibited),
            ((key, "10.1.0.2:80".parse().unwrap()), DestMark::Reopened),
        ]
        .into();
        let t = ServiceTable::build_marked(&[c.clone()], None, &marks).unwrap();
        let d = &t.service(SvcIdx(0)).dests;
        assert_eq!((d[0].weight, d[0].mark), (0, DestMark::Inhibited), "held out, whatever its weight");
        assert_eq!((d[1].weight, d[1].mark), (2, DestMark::Reopened));
        assert_eq!(t.service(SvcIdx(0)).config.real_servers[0].weight, 3, "the configuration keeps it");
        // Without the check, marks mean nothing.
        c.dest_check = None;
        let t = ServiceTable::build_marked(&[c], None, &marks).unwrap();
        assert!(t.service(SvcIdx(0)).dests.iter().all(|d| d.mark == DestMark::Normal && d.weight > 0));
    }

    #[test]
    fn validation_errors_name_service_and_problem() {
        let a = svc("10.0.0.1", 80, &[rs("10.1.0.1", 80, 1)]);
        assert_eq!(err(&[a.clone(), a.clone()]), "tcp 10.0.0.1:80: service defined twice");
        assert_eq!(
            err(&[svc("10.0.0.1", 80, &[rs("2001:db8::1", 80, 1)])]),
            "tcp 10.0.0.1:80: real server [2001:db8::1]:80 is not of the VIP's address family (NAT64, an IPv6 VIP with IPv4 servers, is FullNAT only)"
        );
        assert_eq!(
            err(&[svc("10.0.0.1", 80, &[rs("10.1.0.1", 80, 70_000)])]),
            "tcp 10.0.0.1:80: real server 10.1.0.1:80: weight 70000 is above the maximum 65535"
        );
        let mut bad_thr = rs("10.1.0.1", 80, 1);
        bad_thr.upper = 10;
        bad_thr.lower = 11;
        assert_eq!(
            err(&[svc("10.0.0.1", 80, &[bad_thr])]),
            "tcp 10.0.0.1:80: real server 10.1.0.1:80: lower threshold 11 is above the upper threshold 10"
        );
        let mut p = svc("2001:db8::1", 443, &[]);
        p.persistence = Some(PersistConfig { netmask_v6: 129, ..PersistConfig::default() });
        assert_eq!(err(&[p]), "tcp [2001:db8::1]:443: persistence netmask /129 is longer than an IPv6 address");
        let mut p = svc("10.0.0.1", 80, &[]);
        p.persistence = Some(PersistConfig { netmask_v4: 33, ..PersistConfig::default() });
        assert!(err(&[p]).contains("/33 is longer than an IPv4 address"));
        let mut p = svc("10.0.0.1", 80, &[]);
        p.persistence = Some(PersistConfig { timeout_s: 0, ..PersistConfig::default() });
        assert!(err(&[p]).contains("timeout must be at least 1 s"));
        assert!(err(&[svc("10.0.0.1", 0, &[rs("10.1.0.1", 80, 1)])]).contains("must have port 0"));
        assert!(err(&[svc("0.0.0.0", 80, &[])]).contains("unicast"));
        assert!(err(&[svc("10.0.0.1", 80, &[rs("224.0.0.1", 80, 1)])]).contains("unicast"));
        let mut m = svc("10.0.0.1", 80, &[]);
        m.sched = SchedKind::Mh;
        m.mh_table_size = Some(65536);
        assert_eq!(err(&[m.clone()]), "tcp 10.0.0.1:80: mh table size 65536: not a prime");
        m.mh_table_size = Some(7);
        assert!(err(&[m]).contains("out of range"));
    }

    #[test]
    fn proxy_protocol_is_tcp_only_without_the_syn_proxy_and_needs_the_replies() {
        let mut p = svc("10.0.0.1", 80, &[rs("10.1.0.1", 80, 1)]);
        p.proxy_protocol = Some(ProxyProtocol::V2);
        assert!(ServiceTable::build(&[p.clone()], None).is_ok());
        assert_eq!(p.synproxy_setting(), Some(SynProxyMode::Off), "never proxied, whatever the global mode");
        let mut u = p.clone();
        u.proto = Proto::Udp;
        assert!(ServiceTable::build(&[u.clone()], None).is_ok(), "UDP takes v2");
        u.proxy_protocol = Some(ProxyProtocol::V1);
        assert_eq!(
            err(&[u.clone()]),
            "udp 10.0.0.1:80: PROXY protocol v1 speaks of TCP only: UDP services take v2 (a header in each datagram)"
        );
        u.proxy_protocol = Some(ProxyProtocol::V2);
        u.uoa = Some(UoaMode::Opp);
        assert_eq!(
            err(&[u]),
            "udp 10.0.0.1:80: UOA (opp) and PROXY protocol v2 both tell the client's address; give one"
        );
        for mode in [SynProxyMode::On, SynProxyMode::Auto] {
            let mut s = p.clone();
            s.synproxy = Some(mode);
            assert_eq!(
                err(&[s]),
                format!(
                    "tcp 10.0.0.1:80: PROXY protocol v2 cannot be combined with the SYN proxy (synproxy {mode}): both \
                     shift the connection's sequence numbers and rvs does not stack the two; set synproxy off (a \
                     service with the PROXY protocol and no synproxy setting never uses the SYN proxy)"
                )
            );
        }
        let mut off = p.clone();
        off.synproxy = Some(SynProxyMode::Off);
        assert!(ServiceTable::build(&[off], None).is_ok());
        for fwd in [FwdMode::Dr, FwdMode::Tunnel] {
            let mut d = p.clone();
            d.real_servers.push(RealServerConfig { fwd, ..rs("10.1.0.2", 0, 1) });
            assert_eq!(
                err(&[d]),
                format!(
                    "tcp 10.0.0.1:80: PROXY protocol v2 needs the replies through rvs (their acknowledgments are \
                     shifted back by the header's length), but real server 10.1.0.2:80 is {}",
                    fwd.described()
                )
            );
        }
        let mut n = p.clone();
        n.proxy_protocol = Some(ProxyProtocol::V1);
        n.real_servers[0].fwd = FwdMode::Nat;
        assert!(ServiceTable::build(&[n], None).is_ok(), "NAT replies pass rvs");
    }

    /// The SYN proxy's own SYN-ACK and SYN only work where the server's replies pass rvs
    /// in the client's family: DR, TUN and NAT64 services never use it, even when the
    /// global mode would (auto under a SYN flood), and refuse it when asked for.
    #[test]
    fn syn_proxy_only_where_replies_pass_in_the_clients_family() {
        let fnat = svc("10.0.0.1", 80, &[rs("10.1.0.1", 80, 1)]);
        assert_eq!(ServiceTable::build(std::slice::from_ref(&fnat), None).unwrap().services[0].synproxy, None);
        let nat64 = svc("2001:db8::1", 80, &[rs("10.1.0.1", 80, 1)]);
        let mut cases = vec![(nat64, "the SYN proxy does not work across families (NAT64) here".to_string())];
        for fwd in [FwdMode::Dr, FwdMode::Tunnel] {
            let mut d = fnat.clone();
            d.real_servers.push(RealServerConfig { fwd, ..rs("10.1.0.2", 0, 1) });
            cases.push((
                d,
                format!(
                    "the SYN proxy needs the replies through rvs, but real server 10.1.0.2:80 is {}",
                    fwd.described()
                ),
            ));
        }
        for (c, refusal) in cases {
            let t = ServiceTable::build(std::slice::from_ref(&c), None).unwrap();
            assert_eq!(t.services[0].synproxy, Some(SynProxyMode::Off), "{refusal}");
            for mode in [SynProxyMode::On, SynProxyMode::Auto] {
                let asked = ServiceConfig { synproxy: Some(mode), ..c.clone() };
                assert!(err(&[asked]).contains(&refusal), "{refusal}");
            }
            let off = ServiceConfig { synproxy: Some(SynProxyMode::Off), ..c };
            assert!(ServiceTable::build(&[off], None).is_ok(), "an explicit off is fine");
        }
    }

    #[test]
    fn proxy_protocol_serde_names() {
        let mut p = svc("10.0.0.1", 80, &[]);
        let j = serde_json::to_value(&p).unwrap();
        assert!(j.get("proxy_protocol").is_none(), "absent when off: {j}");
        p.proxy_protocol = Some(ProxyProtocol::V1);
        let j = serde_json::to_value(&p).unwrap();
        assert_eq!(j["proxy_protocol"], "v1");
        let back: ServiceConfig = serde_json::from_value(j).unwrap();
        assert_eq!(back, p);
        for v in [ProxyProtocol::V1, ProxyProtocol::V2] {
            assert_eq!(ProxyProtocol::from_name(v.name()), Some(v));
            assert_eq!(serde_json::to_string(&v).unwrap(), format!("\"{v}\""));
        }
        assert_eq!(ProxyProtocol::from_name("v3"), None);
    }

    #[test]
    fn ids_are_stable_and_never_reused() {
        let a = svc("10.0.0.1", 80, &[rs("10.1.0.1", 80, 1), rs("10.1.0.2", 80, 1)]);
        let b = svc("10.0.0.2", 80, &[rs("10.1.0.1", 80, 1)]);
        let g1 = ServiceTable::build(&[a.clone(), b.clone()], None).unwrap();
        let id = |t: &ServiceTable, s: usize, d: usize| t.services()[s].dests[d].id;
        // Same RIP:port under two services: two identities.
        assert_ne!(id(&g1, 0, 0), id(&g1, 1, 0));

        // Reorder services, drop 10.1.0.1 from a, add 10.1.0.3.
        let a2 = svc("10.0.0.1", 80, &[rs("10.1.0.2", 80, 5), rs("10.1.0.3", 80, 1)]);
        let g2 = ServiceTable::build(&[b.clone(), a2], Some(&g1)).unwrap();
        assert_eq!(g2.services()[1].id, g1.services()[0].id);
        assert_eq!(id(&g2, 1, 0), id(&g1, 0, 1), "weight change keeps the id");
        assert_eq!(id(&g2, 0, 0), id(&g1, 1, 0));
        let new = id(&g2, 1, 1);
        assert!(new.0 > id(&g1, 0, 0).0 && new.0 > id(&g1, 1, 0).0);
        assert!(g2.dest(id(&g1, 0, 0)).is_none());

        // Add 10.1.0.1 back: a fresh id, not the old one.
        let g3 = ServiceTable::build(&[a, b], Some(&g2)).unwrap();
        assert_ne!(id(&g3, 0, 0), id(&g1, 0, 0));
        assert_eq!(id(&g3, 0, 1), id(&g1, 0, 1));
        assert_ne!(g3.generation(), g2.generation());
        assert_eq!(g3.locate(id(&g3, 1, 0)), Some((SvcIdx(1), 0)));
    }

    /// A new generation shares the static tables of the services that did not change
    /// (service and weights alike), and builds the others': one health check's weight
    /// builds one Maglev table, not every service's. A passive-check mark (weight 0)
    /// counts as a change. `check` says what `build` says, with no table built.
    #[test]
    fn unchanged_services_share_their_static_tables() {
        let mh = |vip: &str, w: u32| {
            let mut c = svc(vip, 80, &[rs("10.1.0.1", 80, w), rs("10.1.0.2", 80, 1)]);
            c.sched = SchedKind::Mh;
            c.dest_check = Some(Default::default());
            c
        };
        let g1 = ServiceTable::build(&[mh("10.0.0.1", 1), mh("10.0.0.2", 1)], None).unwrap();
        let shared =
            |a: &ServiceTable, b: &ServiceTable, i: usize| Arc::ptr_eq(&a.services()[i].table, &b.services()[i].table);
        let g2 = ServiceTable::build(&[mh("10.0.0.1", 1), mh("10.0.0.2", 3)], Some(&g1)).unwrap();
        assert!(shared(&g1, &g2, 0), "unchanged: shared");
        assert!(!shared(&g1, &g2, 1), "a weight changed: built again");
        assert!(matches!(*g2.services()[1].table, StaticTable::Mh(_)));
        let sock: SocketAddr = "10.1.0.2:80".parse().unwrap();
        let marks: DestMarks = [((g2.services()[0].key, sock), DestMark::Inhibited)].into_iter().collect();
        let g3 = ServiceTable::build_marked(&[mh("10.0.0.1", 1), mh("10.0.0.2", 3)], Some(&g2), &marks).unwrap();
        assert!(!shared(&g2, &g3, 0), "a server held out: built again");
        assert!(shared(&g2, &g3, 1));
        // The check: the same answers, no table.
        assert!(ServiceTable::check(&[mh("10.0.0.1", 1)]).is_ok());
        let twice = [mh("10.0.0.1", 1), mh("10.0.0.1", 2)];
        assert_eq!(ServiceTable::check(&twice).unwrap_err(), ServiceTable::build(&twice, None).unwrap_err());
    }
}
