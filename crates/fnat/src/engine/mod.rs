//! One worker's FullNAT engine: classify a packet, find or create its connection,
//! translate it, and say where it goes.
//!
//! An [`Engine`] owns everything a worker needs outright (connection table, scheduler
//! state, local-port pools, timer wheel, counters), so the per-packet path takes no
//! lock, makes no syscall and allocates nothing: all memory is sized from
//! [`EngineConfig`] at start-up. The service table is an immutable generation passed
//! in by reference; a new generation is adopted by [`Engine::bind`] (the only place,
//! besides the control helpers and the installation of a peer's record, that
//! allocates: among others the per-slot state of the SYN proxy, the PROXY protocol and
//! UOA, the first time a service needs it, [`crate::conn::slots`]).
//!
//! # A packet's way through [`Engine::process`]
//! - TCP/UDP: the tuple is looked up in the connection table, which answers for both
//!   directions at once.
//!   - Hit from the client (inbound): rewritten `LIP:lport → RIP:rport`; on the
//!     handshake-completing ACK (the first client ACK after the server's SYN-ACK) the
//!     TOA option with `CIP:cport` is inserted, once per connection. A service with the
//!     PROXY protocol gets no TOA: its header goes before the client's first data
//!     instead, and sequence numbers are shifted by its length from then on (see
//!     [`crate::proxy_proto`]).
//!   - Hit from the real server (outbound): rewritten `VIP:vport → CIP:cport`; on the
//!     SYN-ACK, with TOA on, the MSS option is lowered by the TOA length so the
//!     client's segments still fit once TOA is added. (Both TOA steps are decided and
//!     done in [`crate::toa`].)
//!   - Miss towards a service: a UDP packet, or a TCP SYN (SYN without ACK, RST or
//!     FIN), opens a connection: scheduler pick, local address and port from the
//!     service's LIP set, insert, translate. **Any other TCP packet without a
//!     connection is dropped** (`no_conn`): the balancer cannot make up a connection
//!     mid-stream (there is no real server that knows it); the client's stack times
//!     out or resets. This is also what a client sees for connections that lived on
//!     another balancer before a failover (no connection sync).
//!   - Miss towards a local address: [`Verdict::Redirect`] if another worker owns the
//!     port ([`PortOwnership`]), otherwise dropped (`reply_no_conn`).
//!   - Anything else: [`Verdict::NotMine`] (ARP/ICMP/kernel: the dataplane's business).
//! - ICMP/ICMPv6 errors quoting a packet of a known connection are translated to the
//!   other side (see [`crate::icmp_err`]); other ICMP is [`Verdict::NotMine`].
//! - Every packet of a connection pushes its expiry (`now + timeout(state)`); the
//!   timer wheel frees it when that passes ([`Engine::expire`]).
//!
//! # Where the rest lives
//! This file holds the engine and its per-packet path. Around it:
//! - [`config`]: what an engine is built from ([`EngineConfig`], [`config::LocalAddrSet`]).
//! - [`housekeeping`]: expiry, a removed server's connections, flush (control and
//!   timer paths, not per packet).
//! - [`listing`]: connections as the control plane lists them ([`listing::ConnInfo`],
//!   [`Engine::list`]).

pub mod config;
pub mod destcheck;
mod established;
mod family;
mod fragments;
pub mod housekeeping;
pub mod listing;
pub mod modes;
mod proxy;
mod quiescent;
pub mod slot_state;
mod snat;
pub mod sync;
pub mod synproxy;
mod tables;
pub use slot_state::{SlotFeatures, SlotProvisioner, SlotState};
pub use tables::PROVEN_AFTER;

use std::net::IpAddr;

use thiserror::Error;
use wire::TcpFlags;

use self::config::EngineConfig;
use self::established::V4L4;
use crate::buf::PacketBuf;
use crate::conn::{
    Addr, ConnError, ConnFlags, ConnKey, ConnLists, ConnRef, ConnTable, ConnView, Hit, KeyHasher, NewConn, SlotArray,
    Staged, BURST,
};
use crate::edge::Edge;
use crate::icmp_err::{icmp_error, rewrite_icmp_error_parsed, AddrRewrite};
use crate::sanity;
use crate::sapool::{PortOwnership, SaPool, SaPoolError};
use crate::sched::{SchedError, SchedState};
use crate::service::{RsId, ServiceKey, ServiceTable, SvcIdx};
use crate::stats::{ConnEvent, DropReason, Gauge, Stats, StatsSnapshot};
use crate::synproxy::cookie::CookieKey;
use crate::tcp_state::{Direction, TcpState, Timeouts};
use crate::timer::TimerWheel;
use crate::toa;
use crate::translate::{rewrite_parsed, tuple, Rewrite, TranslateError, Tuple};
use crate::types::{FwdMode, Millis, Proto};

/// Why an engine could not be built.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EngineError {
    /// Bad connection capacity.
    #[error(transparent)]
    Conn(#[from] ConnError),
    /// Bad worker count, worker id or port range.
    #[error(transparent)]
    Ports(#[from] SaPoolError),
}

/// A packet of a burst as parsed: by the established path's parse, by the general
/// one, or refused.
#[derive(Clone, Copy)]
enum Parsed {
    V4L4(V4L4),
    Tuple(Tuple),
    Bad(TranslateError),
}

/// What to do with a packet after [`Engine::process`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Translated in place: send it towards `dst` (the real server for
    /// [`Direction::Input`], the client for [`Direction::Output`]).
    Forward {
        /// The next-hop target: always the connection's RIP going in and its CIP going
        /// out, so that the dataplane may cache the route per connection and direction
        /// ([`Engine::hop`]).
        dst: IpAddr,
        /// Which way it goes.
        dir: Direction,
        /// Its connection (the dataplane caches a next hop in it).
        conn: ConnRef,
    },
    /// Dropped, for this reason (already counted).
    Drop(DropReason),
    /// Neither a service's packet nor a reply to a local address: ARP, ICMP to the
    /// box, routing protocols, the kernel twin... (untouched).
    NotMine,
    /// A reply to a local port another worker owns: hand it over (untouched).
    Redirect {
        /// The owning worker ([`EVERY_WORKER`]: unknown, each other worker may hold it).
        owner: u16,
    },
}

/// How many slots freed while one packet is handled [`Engine`] remembers by name
/// (beyond them, every earlier verdict of the burst forgets its connection).
const FREED_KEPT: usize = 4;

/// [`Verdict::Redirect`]'s owner when the connection may be any other worker's: an ICMP
/// error about a client's connection arrives on the worker the NIC picks by the error's
/// own addresses (a router's to the VIP), not by the connection's, and nothing in it
/// names the worker that holds the connection (a LIP's local port does, on the server
/// side). The dataplane hands a copy to every other worker, once: a copy no worker
/// holds the connection for is dropped where it lands.
pub const EVERY_WORKER: u16 = u16::MAX;

const NO_SET: u32 = u32::MAX;

/// Whom a LIP set of the pools serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SetFor {
    /// A service's own local addresses (`Some`), or the default set (`None`).
    Service(Option<ServiceKey>),
    /// A SNAT rule's WAN addresses (see [`snat`]).
    Snat,
}

/// One worker's FullNAT state (see the module documentation).
#[derive(Debug)]
pub struct Engine {
    worker: u16,
    timeouts: Timeouts,
    toa: bool,
    conns: ConnTable,
    wheel: TimerWheel,
    sched: SchedState,
    pools: SaPool,
    stats: Stats,
    /// Per LIP set of the pools: whom it serves.
    set_keys: Vec<SetFor>,
    default_set: u32,
    /// The generation bound and, per `SvcIdx` of it, the LIP set index.
    generation: Option<u64>,
    svc_set: Vec<u32>,
    /// Per `RsId`: its service's `SvcId` (for per-service counters; ids are never
    /// reused, so entries of removed servers stay right).
    rs_svc: Vec<u32>,
    /// Per `RsId`: its service's own timeout for established connections in ms
    /// (`conn_timeout`, DPVS's `--conn-timeout`), 0 = the global timeouts; set where a
    /// generation is bound, so a change applies to live connections at their next packet.
    rs_timeout: Vec<u32>,
    /// Per `RsId` of a TUN real server: its tunnel's source (the service's first LIP of
    /// its family), `UNSPECIFIED` if it has none; set where a generation is bound.
    tunnel_src: Vec<Addr>,
    /// Half-open (`SYN_RECV`) connections and unproven ones, each list oldest first
    /// (see [`tables`]), and the half-open ones' limit.
    lists: ConnLists,
    syn_recv_max: u32,
    /// A connection was freed since the burst group's lookups (by an eviction or a
    /// reuse): the group's remaining hits are looked up again.
    freed_mid_burst: bool,
    /// The slots freed while the current packet of a burst was handled (the first
    /// [`FREED_KEPT`]; `freed_n` counts them all): the verdicts of the burst's earlier
    /// packets that name one forget it, or the dataplane would cache their next hop in
    /// the connection that takes the slot next (see [`Engine::process_burst`]).
    freed_slots: [u32; FREED_KEPT],
    freed_n: u32,
    /// rvs's own addresses, sorted (a new flow from one is a land attack).
    own: Vec<Addr>,
    /// The SYN proxy (see [`synproxy`]).
    synproxy: crate::synproxy::SynProxy,
    /// Per connection slot: the PROXY protocol state, read only for connections with
    /// [`ConnFlags::PROXY_PROTO`] (see [`proxy`]); allocated once a service has it.
    pp: SlotArray<crate::proxy_proto::Side>,
    /// Per connection slot: how many more datagrams carry the UOA option and how, read
    /// only for connections with [`ConnFlags::UOA`] (see [`crate::uoa`]); allocated once
    /// a service has it.
    uoa: SlotArray<(u8, crate::uoa::UoaMode)>,
    /// How many datagrams of a connection carry it ([`EngineConfig::uoa_max_trail`]).
    uoa_max_trail: u8,
    /// The seed of the NAT connections' worker hash ([`EngineConfig::owner_seed`]).
    owner_seed: u64,
    /// The longest packet an added option or header may make
    /// ([`EngineConfig::grown_max_len`]).
    grown_max_len: u16,
    /// Edge policy: the global deny set, rate buckets, per-source counts (see
    /// [`crate::edge`]).
    edge: Edge,
    /// Where later fragments of recent datagrams go (see [`crate::frag`]).
    frags: crate::frag::FragTable,
    /// The local ports of connections their clients reused ([`crate::conn::reuse`]).
    port_memo: crate::conn::reuse::PortMemo,
    /// The packet being processed is a first fragment (no TOA, no checksum check).
    in_fragment: bool,
    /// 0: established IPv4 TCP and UDP packets take [`established`]'s path; else why
    /// not always: [`established::GATE_OFF`] (off, to compare it with the general path
    /// in tests), [`established::GATE_QUIESCE`] (a service has `expire_quiescent`: the
    /// packet's server is looked at first).
    gate: u8,
    /// Per `SvcIdx` of the bound generation: which worker the service's connections
    /// live on, when the client decides it (NAT; persistence; see [`modes`]).
    svc_client_owned: Vec<modes::ClientOwner>,
    /// The NAT real servers' addresses, sorted: a reply from one without a connection
    /// goes to the worker its destination (the client) hashes to.
    nat_rips: Vec<Addr>,
    /// The SNAT rules in force (see [`crate::snat`]) and, per rule, its LIP set.
    snat: std::sync::Arc<crate::snat::SnatTable>,
    snat_sets: Vec<u32>,
    /// Connection sync, when on (see [`sync`]): its settings, the records announced
    /// since the worker last took them, and how many synced connections live here.
    sync: Option<sync::SyncSettings>,
    sync_out: Vec<wire::sync::RecordRepr>,
    synced_live: u32,
    /// The passive check (see [`destcheck`]): whether any service of the bound
    /// generation has it, what is watched per `RsId`, and the reports not yet taken.
    dest_watching: bool,
    dest_stamp_due: bool,
    /// `expire_quiescent` (see [`quiescent`]): whether any service of the bound
    /// generation has it, and per `RsId` whether its connections end.
    quiesce_watching: bool,
    rs_quiescent: Vec<bool>,
    rs_watch: Vec<destcheck::RsWatch>,
    dest_out: Vec<destcheck::DestReport>,
}

/// The drop that counts a connection the table refused.
fn refused(e: ConnError) -> DropReason {
    match e {
        ConnError::AddrsFull => DropReason::AddrsFull,
        ConnError::PoolFull | ConnError::BadCapacity(_) => DropReason::PoolFull,
    }
}

/// The 32-bit word at `at` in `data` (a TCP sequence or acknowledgment number), if the
/// buffer holds it.
#[inline]
fn tcp_word(data: &[u8], at: usize) -> Option<u32> {
    data.get(at..at + 4).map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]]))
}

/// What a forwarded TCP segment tells its connection about the sequence numbers an
/// outer host's RST or FIN must carry (`Conn::closing_matches`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SeqNote {
    /// Nothing (UDP, an inner host's segment without ACK, a header cut short).
    Nothing,
    /// An inner host's segment (a real server's; a SNAT connection's host behind rvs):
    /// its acknowledgment number, in the outer host's space, and whether it is a SYN.
    InnerAck(u32, bool),
    /// An outer host's segment (a client's; a SNAT connection's host outside), before
    /// any translation: its sequence number, how many it takes (payload, SYN, FIN) and
    /// whether it opens (a SYN without ACK).
    OuterSegment(u32, u32, bool),
}

/// The side of connection `c` a forged segment can come from: the client (Input), or,
/// on a SNAT connection, the host outside (Output).
#[inline]
fn outer_side(c: &crate::conn::Conn) -> Direction {
    match c.fwd() {
        FwdMode::Snat => Direction::Output,
        _ => Direction::Input,
    }
}

impl SeqNote {
    /// The note of the segment from the `outer` side or the inner one whose transport
    /// header is at `l4` of `data`, `l4_len` long with it.
    #[inline]
    fn of(data: &[u8], outer: bool, proto: Proto, flags: TcpFlags, l4: usize, l4_len: usize) -> SeqNote {
        if proto != Proto::Tcp {
            return SeqNote::Nothing;
        }
        match outer {
            false if flags.contains(TcpFlags::ACK) => {
                let syn = flags.contains(TcpFlags::SYN);
                tcp_word(data, l4 + 8).map_or(SeqNote::Nothing, |a| SeqNote::InnerAck(a, syn))
            }
            false => SeqNote::Nothing,
            true => match (tcp_word(data, l4 + 4), data.get(l4 + 12)) {
                (Some(seq), Some(off)) => {
                    let payload = l4_len.saturating_sub(usize::from(off >> 4) * 4) as u32;
                    let ctl = u32::from(flags.contains(TcpFlags::SYN)) + u32::from(flags.contains(TcpFlags::FIN));
                    let opens = flags.contains(TcpFlags::SYN) && !flags.contains(TcpFlags::ACK);
                    SeqNote::OuterSegment(seq, payload.wrapping_add(ctl), opens)
                }
                _ => SeqNote::Nothing,
            },
        }
    }

    /// Records it on `c`.
    #[inline]
    fn apply(self, c: &mut crate::conn::Conn) {
        match self {
            SeqNote::Nothing => {}
            SeqNote::InnerAck(ack, syn) => c.saw_inner_ack(ack, syn),
            SeqNote::OuterSegment(seq, len, opens) => c.saw_outer_segment(seq, len, opens),
        }
    }
}

/// The rewrite of a packet of connection `c` going `dir`: to LIP:lport → RIP:rport
/// inbound, VIP:vport → CIP:cport outbound.
#[inline]
fn rewrite_of(c: ConnView, dir: Direction) -> Rewrite {
    match dir {
        Direction::Input => Rewrite { src: c.lip().ip(), sport: c.lport(), dst: c.rip().ip(), dport: c.rport() },
        Direction::Output => Rewrite { src: c.vip().ip(), sport: c.vport(), dst: c.cip().ip(), dport: c.cport() },
    }
}

#[inline]
fn ip_key(proto: Proto, src: IpAddr, sport: u16, dst: IpAddr, dport: u16) -> ConnKey {
    ConnKey::new(proto, Addr::from(src), sport, Addr::from(dst), dport)
}

impl Engine {
    /// Builds a worker's engine, allocating all its memory now.
    pub fn new(cfg: &EngineConfig, now: Millis) -> Result<Engine, EngineError> {
        let hasher = cfg.hash_seed.map_or_else(KeyHasher::random, KeyHasher::with_seed);
        let conns = ConnTable::with_advice(cfg.conn_capacity, hasher, cfg.mem_advice)?;
        let own = PortOwnership::new(cfg.workers)?;
        let mut pools = SaPool::new(own, cfg.worker, cfg.port_range, cfg.port_probes)?;
        pools.set_start(cfg.port_seed);
        let mut set_keys = Vec::with_capacity(cfg.local_addrs.len());
        let mut default_set = NO_SET;
        for s in &cfg.local_addrs {
            let lips: Vec<Addr> = s.lips.iter().map(|a| Addr::from(*a)).collect();
            let i = pools.add_set(&lips);
            if s.service.is_none() && default_set == NO_SET {
                default_set = i as u32;
            }
            set_keys.push(SetFor::Service(s.service));
        }
        Ok(Engine {
            worker: cfg.worker,
            timeouts: cfg.timeouts,
            toa: cfg.toa,
            wheel: TimerWheel::new(cfg.conn_capacity, cfg.wheel, now),
            conns,
            sched: SchedState::with_workers(cfg.persist_capacity, cfg.workers)
                .expiring_quiescent_templates(cfg.expire_quiescent_template),
            pools,
            stats: Stats::new(cfg.max_services, cfg.max_real_servers),
            set_keys,
            default_set,
            generation: None,
            svc_set: Vec::with_capacity(cfg.max_services),
            rs_svc: vec![u32::MAX; cfg.max_real_servers],
            rs_timeout: vec![0; cfg.max_real_servers],
            tunnel_src: vec![Addr::UNSPECIFIED; cfg.max_real_servers],
            lists: ConnLists::new(cfg.conn_capacity),
            syn_recv_max: cfg.syn_recv_limit(),
            freed_mid_burst: false,
            freed_slots: [0; FREED_KEPT],
            freed_n: 0,
            own: Vec::new(),
            frags: crate::frag::FragTable::new(hasher),
            port_memo: crate::conn::reuse::PortMemo::new(hasher),
            in_fragment: false,
            gate: 0,
            svc_client_owned: Vec::with_capacity(cfg.max_services),
            nat_rips: Vec::new(),
            snat: Default::default(),
            snat_sets: Vec::new(),
            sync: None,
            sync_out: Vec::new(),
            synced_live: 0,
            dest_watching: false,
            dest_stamp_due: false,
            quiesce_watching: false,
            rs_quiescent: Vec::new(),
            rs_watch: Vec::new(),
            dest_out: Vec::new(),
            pp: SlotArray::new(cfg.conn_capacity),
            uoa: SlotArray::new(cfg.conn_capacity),
            uoa_max_trail: cfg.uoa_max_trail,
            owner_seed: cfg.owner_seed,
            grown_max_len: cfg.grown_max_len,
            synproxy: crate::synproxy::SynProxy::new(
                &cfg.synproxy,
                cfg.conn_capacity,
                cfg.hash_seed.map_or_else(CookieKey::process, |s| CookieKey::new(s, !s)),
            ),
            edge: Edge::new(
                cfg.workers,
                cfg.max_services,
                (cfg.conn_capacity as usize).saturating_mul(2).min(crate::edge::SOURCE_SLOTS),
                cfg.hash_seed.unwrap_or_else(|| {
                    use std::hash::BuildHasher;
                    std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64)
                }),
            ),
        })
    }

    /// Adopts a service-table generation (a no-op if already bound): the scheduler
    /// rebinds and each service finds its LIP set. Call it at the top of the worker
    /// loop; [`process`](Self::process) does it too if needed.
    pub fn bind(&mut self, table: &ServiceTable) {
        if self.generation == Some(table.generation()) {
            return;
        }
        self.sched.rebind(table);
        self.edge.rebind(table.services().len());
        // Ids only grow (they are never reused): counters and the server-to-service map
        // follow them, here where a generation is bound, never on the packet path.
        let (svc_ids, rs_ids) = table.id_bounds();
        self.stats.cover(svc_ids as usize, rs_ids as usize);
        if self.rs_svc.len() < rs_ids as usize {
            self.rs_svc.resize(rs_ids as usize, u32::MAX);
        }
        if self.tunnel_src.len() < rs_ids as usize {
            self.tunnel_src.resize(rs_ids as usize, Addr::UNSPECIFIED);
        }
        // A server no longer in any service keeps what it had: its connections run out
        // as they were.
        if self.rs_timeout.len() < rs_ids as usize {
            self.rs_timeout.resize(rs_ids as usize, 0);
        }
        self.svc_set.clear();
        self.svc_client_owned.clear();
        self.nat_rips.clear();
        for s in table.services() {
            let own = self.set_keys.iter().position(|k| *k == SetFor::Service(Some(s.key)));
            self.svc_set.push(own.map_or(self.default_set, |i| i as u32));
            self.svc_client_owned.push(modes::ClientOwner::of(s));
            self.nat_rips.extend(s.dests.iter().filter(|d| d.fwd == FwdMode::Nat).map(|d| Addr::from(d.addr)));
            for d in &s.dests {
                if let Some(x) = self.rs_svc.get_mut(d.id.0 as usize) {
                    *x = s.id.0;
                }
                if let Some(x) = self.rs_timeout.get_mut(d.id.0 as usize) {
                    *x = s.config.conn_timeout_ms();
                }
            }
        }
        for (i, s) in table.services().iter().enumerate() {
            for d in s.dests.iter().filter(|d| d.fwd == FwdMode::Tunnel) {
                let src = self.tunnel_source(SvcIdx(i as u32), Addr::from(d.addr)).unwrap_or(Addr::UNSPECIFIED);
                if let Some(x) = self.tunnel_src.get_mut(d.id.0 as usize) {
                    *x = src;
                }
            }
        }
        self.nat_rips.sort_unstable();
        self.nat_rips.dedup();
        self.allocate_slot_state(table);
        self.bind_dest_check(table);
        self.bind_quiescent(table);
        self.generation = Some(table.generation());
    }

    /// Allocates the per-slot state of the features generation `table`'s services use
    /// ([`SlotFeatures::of`]; see [`crate::conn::slots`]) that it has not adopted
    /// already.
    fn allocate_slot_state(&mut self, table: &ServiceTable) {
        let f = SlotFeatures::of(table, self.synproxy.cfg.mode);
        if f.synproxy {
            self.synproxy.side.allocate();
        }
        if f.proxy_protocol {
            self.pp.allocate();
        }
        if f.uoa {
            self.uoa.allocate();
        }
    }

    /// Takes per-slot arrays built off the worker for a generation about to be bound
    /// (see [`slot_state`]): those of features it has no array of yet. What it already
    /// had (a peer's record brought it) is returned, to be dropped elsewhere.
    pub fn adopt_slot_state(&mut self, built: SlotState) -> SlotState {
        SlotState {
            synproxy: built.synproxy.and_then(|v| self.synproxy.side.adopt(v)),
            pp: built.pp.and_then(|v| self.pp.adopt(v)),
            uoa: built.uoa.and_then(|v| self.uoa.adopt(v)),
        }
    }

    /// The connection table (read-only: lookups, iteration, sizes).
    pub fn conns(&self) -> &ConnTable {
        &self.conns
    }

    /// The dataplane's next-hop cache slot for `conn`'s packets going `dir`
    /// ([`crate::conn::NO_HOP`] when it has none, or for the SYN proxy's stateless
    /// SYN-ACKs, which have no connection). See [`crate::conn::Conn::hop`].
    #[inline]
    pub fn hop(&self, conn: ConnRef, dir: Direction) -> u16 {
        match conn.index() < self.conns.capacity() {
            true => self.conns.get(conn).hop(dir),
            false => crate::conn::NO_HOP,
        }
    }

    /// Stores the dataplane's next-hop cache slot for `conn`'s packets going `dir`
    /// (nothing for a verdict without a connection).
    #[inline]
    pub fn set_hop(&mut self, conn: ConnRef, dir: Direction, hop: u16) {
        if conn.index() < self.conns.capacity() {
            self.conns.get_mut(conn).set_hop(dir, hop);
        }
    }

    /// How `conn` is forwarded (`None` for a verdict without a connection: the SYN
    /// proxy's SYN-ACKs).
    #[inline]
    pub fn fwd(&self, conn: ConnRef) -> Option<crate::types::FwdMode> {
        (conn.index() < self.conns.capacity()).then(|| self.conns.get(conn).fwd())
    }

    /// Forgets the next-hop cache slots of at most `budget` connection slots from
    /// `from` on (see [`ConnTable::forget_hops`]): where to go on, `None` when done.
    pub fn forget_hops(&mut self, from: u32, budget: u32) -> Option<u32> {
        self.conns.forget_hops(from, budget)
    }

    /// The key a forwarded packet of `conn` arrived with, before translation: what an
    /// ICMP error about it must quote so that its sender recognises its own packet.
    pub fn arrival_key(&self, conn: ConnRef, dir: Direction) -> ConnKey {
        if conn.index() >= self.conns.capacity() {
            // The SYN proxy's SYN-ACK answers for no connection (`synproxy::NO_CONN`).
            return ConnKey::new(Proto::Tcp, Addr::UNSPECIFIED, 0, Addr::UNSPECIFIED, 0);
        }
        let c = self.conns.get(conn);
        match dir {
            Direction::Input => c.inbound_key(),
            Direction::Output => c.outbound_key(),
        }
    }

    /// Sends every packet through the general path (`false`), or lets established
    /// IPv4 TCP and UDP packets take the short one (`true`, the default): for tests
    /// that compare the two.
    #[doc(hidden)]
    pub fn set_fast_path(&mut self, on: bool) {
        self.gate = match on {
            true => self.gate & !established::GATE_OFF,
            false => self.gate | established::GATE_OFF,
        };
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// A serialisable copy of the counters.
    pub fn stats_snapshot(&self) -> StatsSnapshot {
        let mut s = self.stats.snapshot();
        for (c, &n) in s.real_servers.iter_mut().zip(self.sched.templates().counts()) {
            c.persist = u64::from(n);
        }
        s.synproxy = self.synproxy.counts().nonzero().map(|(e, n)| (e.name().to_string(), n)).collect();
        s.events
            .extend(crate::frag::FragEvent::ALL.iter().map(|e| (e.name().to_string(), self.frags.counts().get(*e))));
        s
    }

    /// Replaces the global deny set (control path; the set was built elsewhere). It
    /// applies from the next new flow.
    pub fn set_deny_set(&mut self, set: std::sync::Arc<crate::denyset::PrefixSet>) {
        self.edge.set_deny(set);
    }

    /// The edge policy's state (global deny set, source table).
    pub fn edge(&self) -> &Edge {
        &self.edge
    }

    /// The SYN proxy's state and counters.
    pub fn synproxy(&self) -> &crate::synproxy::SynProxy {
        &self.synproxy
    }

    /// Zeroes the rate counters (`ipvsadm -Z`).
    pub fn zero_stats(&mut self) {
        self.stats.zero();
        self.synproxy.zero_counts();
        self.frags.zero_counts();
    }

    /// Zeroes the counters of service `key` (exactly that key) and of its real servers
    /// in `table` (`ipvsadm -Z -t VIP:PORT`); false when `table` has no such service.
    /// Control path.
    pub fn zero_service(&mut self, table: &ServiceTable, key: &ServiceKey) -> bool {
        let Some(s) = table.services().iter().find(|s| s.key == *key) else { return false };
        self.stats.zero_service(s.id.0, s.dests.iter().map(|d| d.id.0));
        true
    }

    /// The scheduler state (counts per real server, persistence).
    pub fn sched(&self) -> &SchedState {
        &self.sched
    }

    /// The local address and port pools.
    pub fn pools(&self) -> &SaPool {
        &self.pools
    }

    /// The timer wheel (diagnostics).
    pub fn wheel(&self) -> &TimerWheel {
        &self.wheel
    }

    /// rvs's own addresses (every address the dataplane owns): a new flow from one of
    /// them, like one from its own destination or from a LIP, is refused as `land`.
    /// Control path (allocates); call it when the owned addresses change.
    pub fn set_own_addrs(&mut self, addrs: impl IntoIterator<Item = IpAddr>) {
        self.own = addrs.into_iter().map(Addr::from).collect();
        self.own.sort_unstable();
        self.own.dedup();
    }

    /// Whether a fwmark rule may mark a new flow to `dst`: only to an address of a port
    /// that is no local address, so no rule takes a flow passing through rvs (a NAT
    /// server's reply to its client, a host's traffic routed by rvs) or a stray reply
    /// to a LIP, whatever its range.
    #[inline]
    fn markable(&self, dst: &Addr) -> bool {
        self.own.binary_search(dst).is_ok() && !self.pools.is_lip(dst)
    }

    /// Whether `a` is one of rvs's own addresses (owned or a LIP).
    #[inline]
    fn is_own(&self, a: IpAddr) -> bool {
        let a = Addr::from(a);
        self.own.binary_search(&a).is_ok() || self.pools.is_lip(&a)
    }

    /// New timeouts; they apply from each connection's next packet (as in IPVS).
    pub fn set_timeouts(&mut self, t: Timeouts) {
        self.timeouts = t;
    }

    /// Sets the addresses of the LIP set for `service` (or the default set), creating
    /// the set if it is new (a service added at run time). Existing connections keep
    /// their local address. Returns true if a set was created: call [`Engine::bind`]
    /// again so services find it. Control path (may allocate).
    pub fn set_local_addrs(&mut self, service: Option<ServiceKey>, lips: &[IpAddr]) -> bool {
        let lips: Vec<Addr> = lips.iter().map(|a| Addr::from(*a)).collect();
        if let Some(i) = self.set_keys.iter().position(|k| *k == SetFor::Service(service)) {
            self.pools.set_lips(i, &lips);
            // TUN's tunnel sources are found again at the next bind.
            self.generation = None;
            return false;
        }
        let i = self.pools.add_set(&lips);
        debug_assert_eq!(i, self.set_keys.len());
        self.set_keys.push(SetFor::Service(service));
        if service.is_none() && self.default_set == NO_SET {
            self.default_set = i as u32;
        }
        // Services must be mapped to sets again.
        self.generation = None;
        true
    }

    /// The service id of real server `rs` (`u32::MAX` if beyond the configured maximum).
    #[inline]
    fn svc_of(&self, rs: u32) -> u32 {
        self.rs_svc.get(rs as usize).copied().unwrap_or(u32::MAX)
    }

    #[inline]
    fn timeout(&self, proto: Proto, state: TcpState) -> Millis {
        match proto {
            Proto::Tcp => self.timeouts.tcp(state),
            Proto::Udp => self.timeouts.udp_ms(),
            Proto::Icmp => self.timeouts.icmp_ms(),
        }
    }

    /// The timeout of a connection to real server `rs` in `state`: its service's
    /// `conn_timeout` for an established TCP connection or any UDP one (as DPVS's
    /// per-service timeout), the global timeouts otherwise.
    #[inline]
    fn timeout_of(&self, rs: u32, proto: Proto, state: TcpState) -> Millis {
        if proto == Proto::Udp || state == TcpState::Established {
            match self.rs_timeout.get(rs as usize) {
                Some(&t) if t != 0 => return Millis::from(t),
                _ => {}
            }
        }
        self.timeout(proto, state)
    }

    /// Translates one packet whose IP header is at `l3` in `buf` (see the module
    /// documentation). The packet is modified only for [`Verdict::Forward`].
    pub fn process<B: PacketBuf>(&mut self, table: &ServiceTable, buf: &mut B, l3: usize, now: Millis) -> Verdict {
        self.bind(table);
        if let Some(p) = V4L4::parse(buf.data(), l3) {
            let k = p.key();
            let hit = self.conns.lookup(&k);
            let mut v = Verdict::NotMine;
            self.dispatch_v4(table, buf, l3, now, &p, &k, hit, &mut v);
            self.conns.settle();
            return v;
        }
        let mut v = Verdict::NotMine;
        match Self::parse(buf.data(), l3) {
            Ok((t, k)) => {
                let hit = self.conns.lookup(&k);
                self.dispatch(table, buf, l3, now, &t, &k, hit, &mut v)
            }
            Err(TranslateError::Fragment) => v = self.fragment(table, buf, l3, now),
            Err(e) => v = self.unparsed(buf, l3, e),
        }
        self.conns.settle();
        v
    }

    /// [`process`](Self::process) over a burst: `out[i]` is the verdict of `bufs[i]`,
    /// whose IP header is at `l3[i]`, for `i` below the shortest of the three slices.
    /// The connection lookups of each group of [`BURST`] packets are made together
    /// (see [`ConnTable::lookup_burst`]), so their cache misses overlap. A verdict
    /// names a connection only if it is still the packet's when the burst is done: one
    /// a later packet freed (an eviction, a reuse) is forgotten (`synproxy::NO_CONN`).
    pub fn process_burst<B: PacketBuf>(
        &mut self,
        table: &ServiceTable,
        bufs: &mut [B],
        l3: &[usize],
        now: Millis,
        out: &mut [Verdict],
    ) {
        self.bind(table);
        let n = bufs.len().min(l3.len()).min(out.len());
        let dummy = ConnKey::new(Proto::Tcp, Addr::UNSPECIFIED, 0, Addr::UNSPECIFIED, 0);
        let mut start = 0;
        while start < n {
            let m = (n - start).min(BURST);
            let mut parsed = [Parsed::Bad(TranslateError::Truncated); BURST];
            let mut keys = [dummy; BURST];
            for i in 0..m {
                let (data, off) = (bufs[start + i].data(), l3[start + i]);
                // The key is made from the headers in hand, not read back from `parsed`.
                parsed[i] = match V4L4::parse(data, off) {
                    Some(p) => {
                        keys[i] = p.key();
                        Parsed::V4L4(p)
                    }
                    None => match tuple(data, off) {
                        Ok(t) => match Self::key(&t) {
                            Some(k) => {
                                keys[i] = k;
                                Parsed::Tuple(t)
                            }
                            None => Parsed::Bad(TranslateError::Malformed),
                        },
                        Err(e) => Parsed::Bad(e),
                    },
                };
            }
            let mut staged = [Staged::default(); BURST];
            self.conns.lookup_burst(&keys[..m], &mut staged[..m], B::prefetch);
            self.freed_mid_burst = false;
            self.freed_n = 0;
            for i in 0..m {
                // Walked early (it overlaps better), but never from a node staged before
                // a connection was freed: that chain may now run into the free list.
                let found = if self.freed_mid_burst { None } else { self.conns.find(staged[i], &keys[i]) };
                let (buf, off) = (&mut bufs[start + i], l3[start + i]);
                let slot = &mut out[start + i];
                // A miss is looked up again: an earlier packet of this burst may have
                // opened the connection; every key is, once an earlier packet freed one
                // (its slot may hold another connection now).
                let hit = match (&parsed[i], self.freed_mid_burst) {
                    (Parsed::Bad(_), _) => None,
                    (_, false) => found.or_else(|| self.conns.lookup(&keys[i])),
                    (_, true) => self.conns.lookup(&keys[i]),
                };
                match &parsed[i] {
                    Parsed::V4L4(p) => self.dispatch_v4(table, buf, off, now, p, &keys[i], hit, slot),
                    Parsed::Tuple(t) => self.dispatch(table, buf, off, now, t, &keys[i], hit, slot),
                    Parsed::Bad(TranslateError::Fragment) => *slot = self.fragment(table, buf, off, now),
                    Parsed::Bad(e) => *slot = self.unparsed(buf, off, *e),
                }
                if self.freed_n != 0 {
                    self.forget_freed(&mut out[..start + i]);
                }
            }
            self.conns.settle();
            start += m;
        }
    }

    /// A packet of a burst freed connections (an eviction, a reuse): the verdicts of
    /// the packets before it that name a freed slot name no connection any more (the
    /// slot may hold another connection already), so that no next hop is cached in it
    /// for them (they are routed one by one).
    #[cold]
    #[inline(never)]
    fn forget_freed(&mut self, earlier: &mut [Verdict]) {
        let kept = &self.freed_slots[..(self.freed_n as usize).min(FREED_KEPT)];
        let all = self.freed_n as usize > FREED_KEPT;
        for v in earlier {
            if let Verdict::Forward { conn, .. } = v {
                if all || kept.contains(&conn.index()) {
                    *conn = ConnRef::from_index(synproxy::NO_CONN);
                }
            }
        }
        self.freed_n = 0;
    }

    #[inline]
    fn parse(data: &[u8], l3: usize) -> Result<(Tuple, ConnKey), TranslateError> {
        let t = tuple(data, l3)?;
        let k = Self::key(&t).ok_or(TranslateError::Malformed)?;
        Ok((t, k))
    }

    /// The connection key of a packet; `None` for an IPv6 packet with IPv4-mapped
    /// addresses (they would alias IPv4 keys).
    #[inline]
    fn key(t: &Tuple) -> Option<ConnKey> {
        let k = ip_key(t.proto, t.src, t.sport, t.dst, t.dport);
        if t.src.is_ipv6() && (k.src.is_v4() || k.dst.is_v4()) {
            return None;
        }
        Some(k)
    }

    /// [`dispatch`](Self::dispatch) of an IPv4 TCP segment or UDP datagram: the
    /// established path first, the general one if it declines. The verdict goes
    /// straight to `out` (see [`established`]).
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn dispatch_v4<B: PacketBuf>(
        &mut self,
        table: &ServiceTable,
        buf: &mut B,
        l3: usize,
        now: Millis,
        p: &V4L4,
        k: &ConnKey,
        hit: Option<Hit>,
        out: &mut Verdict,
    ) {
        if !hit.is_some_and(|h| self.forward_established(buf, l3, now, p, h, out)) {
            *out = self.general(table, buf, l3, now, &p.tuple(l3), k, hit);
        }
    }

    /// A packet the general parse read: the established path when its connection
    /// needs nothing but the rewrite (see [`established`]), else the general one; the
    /// verdict in `out`.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn dispatch<B: PacketBuf>(
        &mut self,
        table: &ServiceTable,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        k: &ConnKey,
        hit: Option<Hit>,
        out: &mut Verdict,
    ) {
        if !hit.is_some_and(|h| self.forward_established_tuple(buf, l3, now, t, h, out)) {
            *out = self.general(table, buf, l3, now, t, k, hit);
        }
    }

    /// The general path: a connection's packet forwarded (or its TIME_WAIT reused by
    /// a new SYN), anything else a miss.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn general<B: PacketBuf>(
        &mut self,
        table: &ServiceTable,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        k: &ConnKey,
        hit: Option<Hit>,
    ) -> Verdict {
        match hit {
            Some(h) if self.quiesce_watching && self.quiescent(self.conns.get(h.conn).rs) => {
                match self.expire_quiescent(buf, l3, t, h) {
                    quiescent::Quiesced::Done(v) => v,
                    quiescent::Quiesced::Reschedule => self.miss(table, buf, l3, now, t, k),
                    quiescent::Quiesced::AsUsual => self.forward(buf, l3, now, t, h),
                }
            }
            Some(h) if !self.reuse(t, h) => self.forward(buf, l3, now, t, h),
            _ => self.miss(table, buf, l3, now, t, k),
        }
    }

    /// A packet [`tuple`] refused: ICMP goes to the error path, other protocols are
    /// not ours, the rest is dropped.
    #[cold]
    fn unparsed<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, e: TranslateError) -> Verdict {
        match e {
            TranslateError::UnsupportedProtocol(1 | 58) => self.icmp(buf, l3),
            TranslateError::UnsupportedProtocol(_) => Verdict::NotMine,
            TranslateError::Fragment => self.drop(DropReason::Fragment),
            _ => self.drop(DropReason::BadHeader),
        }
    }

    #[inline]
    fn drop(&mut self, r: DropReason) -> Verdict {
        self.stats.drop(r);
        Verdict::Drop(r)
    }

    /// Drops a new flow to service `svc_id`, counted as refused by the service too.
    #[cold]
    fn refuse(&mut self, svc_id: u32, r: DropReason) -> Verdict {
        self.stats.refused(svc_id);
        self.drop(r)
    }

    /// Updates state, activity accounting and expiry of a connection after a packet
    /// in `dir` with `flags`.
    #[inline]
    fn touch(&mut self, r: ConnRef, dir: Direction, flags: TcpFlags, now: Millis) {
        let c = self.conns.get(r);
        if c.synced() {
            self.adopt(r);
        }
        let c = self.conns.get(r);
        let (proto, old, fwd, rs) = (c.proto(), c.state, c.fwd(), c.rs);
        if c.unproven() && dir == Direction::Input {
            self.unproven_packet(r, now);
        }
        let mut state = old;
        if proto == Proto::Tcp {
            state = match fwd.replies_through() {
                true => old.next(dir, flags.bits()),
                false => old.next_input_only(flags.bits()),
            };
        }
        let exp = now + self.timeout_of(rs, proto, state);
        self.move_to(r, old, state, exp, now);
        if state != old && self.sync.is_some() {
            self.sync_note(r, now);
        }
        if state != old && self.dest_watching {
            self.dest_state_changed(r, dir, old, state);
        }
    }

    /// A synced copy this box forwards a packet of (the peer that announced it failed
    /// over, or gave the flow up): this box's own from then on, so that no record of a
    /// peer (stale, or a key holder's lie) changes, moves or replaces a connection this
    /// box carries, and it no longer takes a place of `max_synced`.
    #[cold]
    #[inline(never)]
    pub(super) fn adopt(&mut self, r: ConnRef) {
        self.conns.get_mut(r).clear_synced();
        self.synced_live = self.synced_live.saturating_sub(1);
        self.stats.event(ConnEvent::SyncAdopted);
    }

    /// Moves connection `r` from state `old` to `state` (the SYN_RECV queue, the active
    /// flag, the scheduler's and the counters' gauges follow) and sets its expiry.
    fn move_to(&mut self, r: ConnRef, old: TcpState, state: TcpState, exp: Millis, now: Millis) {
        let c = self.conns.get(r);
        let (rs, old_exp) = (c.rs, c.expires(now));
        if state != old {
            self.syn_recv_moved(r, old, state);
            let was = old.is_active();
            if was != state.is_active() {
                let svc = self.svc_of(rs);
                let c = self.conns.get_mut(r);
                if was {
                    c.flags.clear(ConnFlags::ACTIVE);
                    self.sched.conn_deactivated(RsId(rs));
                    self.stats.gauge(svc, rs, Gauge::Deactivated);
                } else {
                    c.flags.set(ConnFlags::ACTIVE);
                    self.sched.conn_activated(RsId(rs));
                    self.stats.gauge(svc, rs, Gauge::Activated);
                }
            }
        }
        self.conns.get_mut(r).state = state;
        self.set_expiry(r, old_exp, exp);
    }

    /// Gives connection `r`, which expires at `old_exp`, the expiry `exp` (the timer
    /// wheel is told only when it comes sooner: a later expiry is found when the old
    /// one fires).
    #[inline]
    fn set_expiry(&mut self, r: ConnRef, old_exp: Millis, exp: Millis) {
        if exp < old_exp {
            self.wheel.reschedule(r.index(), exp);
        }
        self.conns.get_mut(r).set_expires(exp);
    }

    fn forward<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, now: Millis, t: &Tuple, h: Hit) -> Verdict {
        if h.dir == Direction::Input {
            // Client packets: IP and TCP options checked, a client's own TOA removed.
            if let Some(v) = self.client_checked(sanity::inbound(buf.data_mut(), l3, t)) {
                return v;
            }
        }
        let c = self.conns.get(h.conn);
        let proxied = c.flags().has(ConnFlags::SYNPROXY);
        let pp = c.flags().has(ConnFlags::PROXY_PROTO);
        if proxied {
            if let Some(v) = self.synproxy_handshake(buf, l3, now, t, h) {
                return v;
            }
        }
        // An outer host's RST or FIN moves the state only if it carries a number the
        // connection expects (see `Conn::closing_matches`); it is forwarded either way.
        // The outer host's segment is noted before any translation.
        let mut state_flags = t.tcp_flags;
        let closing = TcpFlags::RST.bits() | TcpFlags::FIN.bits();
        let outer = h.dir == outer_side(&self.conns.get(h.conn));
        let outer_note = match outer {
            true => SeqNote::of(buf.data(), true, t.proto, t.tcp_flags, t.l4, t.l4_len),
            false => SeqNote::Nothing,
        };
        if let (SeqNote::OuterSegment(seq, ..), true) = (outer_note, t.tcp_flags.bits() & closing != 0) {
            if !self.conns.get(h.conn).closing_matches(seq) {
                // Nothing of it moves the state (its ACK would take SYN_RECV to
                // ESTABLISHED).
                state_flags = TcpFlags(state_flags.bits() & !(closing | TcpFlags::ACK.bits()));
                self.stats.event(match t.tcp_flags.contains(TcpFlags::RST) {
                    true => ConnEvent::RstUnmatched,
                    false => ConnEvent::FinUnmatched,
                });
            }
        }
        let c = self.conns.get(h.conn);
        let fwd = c.fwd();
        if fwd.keeps_packet() {
            // The client's segment noted (a first fragment's length is not its
            // segment's: its end is not known).
            if !self.in_fragment {
                outer_note.apply(self.conns.get_mut(h.conn));
            }
            return self.forward_unchanged(buf, l3, now, t, h, state_flags);
        }
        let c_nat64 = c.cip().is_v4() != c.rip().is_v4();
        let rw = rewrite_of(c, h.dir);
        let rs = c.rs;
        let bytes = (t.l4 - l3 + t.l4_len) as u64;
        // The PROXY protocol step comes first (its changes to the checksums are
        // incremental, like the rewrite's), so that a packet it drops is untouched.
        let mut grown = *t;
        if pp && t.proto == Proto::Tcp {
            match self.proxy_translate(buf, l3, t, h) {
                Ok(n) => grown.l4_len += n,
                Err(r) => return self.drop(r),
            }
        }
        let t = &grown;
        let t = &match c_nat64 {
            // NAT64: the header changes family (see `crate::nat64`).
            true => match self.translate_family(buf, l3, t, &rw, h.dir) {
                Ok(moved) => moved,
                Err(r) => return self.drop(r),
            },
            false => {
                if rewrite_parsed(buf.data_mut(), l3, t, &rw).is_err() {
                    return self.drop(DropReason::BadHeader);
                }
                *t
            }
        };
        if proxied {
            self.synproxy_translate(buf.data_mut(), t, h.conn, h.dir);
        }
        let f = t.tcp_flags;
        // TOA only where the server would otherwise not see the client (FullNAT), and
        // not where a PROXY protocol header tells it.
        let toa = self.toa && fwd == FwdMode::FullNat && !pp;
        if self.in_fragment {
            // No TOA in a fragment (see `crate::frag`).
            if toa {
                self.fragment_skips_toa(h);
            }
        } else if toa::on_forward(buf, l3, toa, h.dir, f, self.conns.get_mut(h.conn)).is_err() {
            self.stats.drop(DropReason::ToaNoRoom);
        }
        if h.dir == Direction::Input && t.proto == Proto::Udp {
            let flags = self.conns.get(h.conn).flags();
            if flags.has(ConnFlags::UOA) && !self.in_fragment {
                self.uoa_mark(buf, l3, h.conn);
            }
            if pp {
                if let Err(r) = self.proxy_datagram(buf, l3, t, h.conn) {
                    return self.drop(r);
                }
            }
        }
        let note = match outer {
            false => SeqNote::of(buf.data(), false, t.proto, t.tcp_flags, t.l4, t.l4_len),
            // A first fragment's length is not its segment's: its end is not known.
            true if self.in_fragment => SeqNote::Nothing,
            true => outer_note,
        };
        note.apply(self.conns.get_mut(h.conn));
        if self.dest_watching
            && t.proto == Proto::Udp
            && h.dir == Direction::Output
            && !self.conns.get(h.conn).flags().has(ConnFlags::SYNACK_SEEN)
        {
            self.udp_answered(h.conn);
        }
        self.count_packet(rs, h.dir, bytes);
        self.touch(h.conn, h.dir, state_flags, now);
        Verdict::Forward { dst: rw.dst, dir: h.dir, conn: h.conn }
    }

    /// A forwarded packet of `bytes` bytes going `dir`, of real server `rs`, counted.
    #[inline]
    fn count_packet(&mut self, rs: u32, dir: Direction, bytes: u64) {
        let svc = self.svc_of(rs);
        match dir {
            Direction::Input => self.stats.packet_in(svc, rs, bytes),
            Direction::Output => self.stats.packet_out(svc, rs, bytes),
        }
    }

    /// The verdict of the input checks of a client's packet (`sanity::inbound`): a
    /// client's TOA they overwrote is counted; a packet they refuse is dropped (the
    /// verdict returned).
    #[inline]
    fn client_checked(&mut self, checks: Result<bool, DropReason>) -> Option<Verdict> {
        match checks {
            Ok(false) => None,
            Ok(true) => {
                self.stats.drop(DropReason::ClientToa);
                None
            }
            Err(r) => Some(self.drop(r)),
        }
    }

    fn miss<B: PacketBuf>(
        &mut self,
        table: &ServiceTable,
        buf: &mut B,
        l3: usize,
        now: Millis,
        t: &Tuple,
        k: &ConnKey,
    ) -> Verdict {
        if t.proto == Proto::Icmp {
            return self.echo_miss(buf, l3, now, t, k);
        }
        if let Some(svc) = table.classify(t.proto, (t.src, t.sport), (t.dst, t.dport), || self.markable(&k.dst)) {
            if let Some(owner) = self.client_owner(svc, &k.src, t.sport) {
                return Verdict::Redirect { owner };
            }
            if t.proto == Proto::Tcp && !t.tcp_flags.opens() {
                if let Some(v) = self.synproxy_ack(table, svc, buf, l3, now, t, k) {
                    return v;
                }
                return self.drop(DropReason::NoConn);
            }
            let s = table.service(svc);
            // Input checks before scheduling (martian, land, checksum, options).
            if let Err(r) = sanity::admit(&*buf, l3, t, |a| self.is_own(a)) {
                return self.refuse(s.id.0, r);
            }
            // Edge policy: global and service deny and allow lists; then, unless the SYN
            // proxy answers with a cookie (a flood of spoofed SYNs must not spend the
            // rate that real clients' cookie ACKs need), the rate and per-source limits.
            if let Err(r) = self.edge.screen(&s.policy, t.src) {
                return self.refuse(s.id.0, r);
            }
            if t.proto == Proto::Tcp {
                if let Some(v) = self.synproxy_syn(table, svc, buf, l3, now, t) {
                    return v;
                }
            }
            if let Err(r) = self.edge.take(svc.0 as usize, s.id.0, &s.policy, t.src, now) {
                return self.refuse(s.id.0, r);
            }
            return match self.open(table, svc, now, t, k) {
                Ok(r) if s.config.ops => self.one_packet(buf, l3, now, t, r),
                Ok(r) => self.forward(buf, l3, now, t, Hit { conn: r, dir: Direction::Input }),
                Err(reason) => self.refuse(s.id.0, reason),
            };
        }
        if self.pools.is_lip(&k.dst) {
            let owner = self.pools.ownership().owner(t.dport);
            if owner != self.worker {
                return Verdict::Redirect { owner };
            }
            return self.drop(DropReason::ReplyNoConn);
        }
        if let Some(owner) = self.nat_reply_owner(k) {
            return Verdict::Redirect { owner };
        }
        if !self.snat.is_empty() {
            if let Some(v) = self.snat_new_flow(buf, l3, now, t, k) {
                return v;
            }
        }
        Verdict::NotMine
    }

    /// Opens a connection for the first packet `t` of a flow to service `svc`.
    #[inline(never)]
    fn open(
        &mut self,
        table: &ServiceTable,
        svc: SvcIdx,
        now: Millis,
        t: &Tuple,
        k: &ConnKey,
    ) -> Result<ConnRef, DropReason> {
        let s = table.service(svc);
        // Asked again for connections the SYN proxy opens on a cookie ACK.
        self.edge.source_room(s.id.0, &s.policy, t.src)?;
        let counted = s.policy.source_limit > 0;
        if !s.may_schedule {
            // No server would take it: nothing is evicted for it (below).
            return Err(DropReason::NoRealServer);
        }
        if t.proto == Proto::Tcp {
            self.syn_recv_room();
        }
        if !self.pool_room(now) {
            // Refused before the scheduler moves a cursor or records persistence.
            return Err(DropReason::PoolFull);
        }
        let pick = self.sched.schedule(table, svc, (t.src, t.sport), t.dst, now).map_err(|e| match e {
            SchedError::NoDest => DropReason::NoRealServer,
            SchedError::PersistFull => DropReason::PersistFull,
        })?;
        let rport = if pick.port == 0 { t.dport } else { pick.port };
        let rip = Addr::from(pick.addr);
        let (lip, lport) = match pick.fwd {
            FwdMode::FullNat => self.local_addr(svc, t.proto, rip, rport, k, now)?,
            // Refused for real servers (`ServiceError::SnatServer`).
            FwdMode::Snat => return Err(DropReason::NoRealServer),
            FwdMode::Nat | FwdMode::Dr => self.server_side_key(t.proto, rip, rport, k.src, t.sport)?,
            FwdMode::Tunnel => {
                if self.tunnel_src.get(pick.id.0 as usize).is_none_or(|a| *a == Addr::UNSPECIFIED) {
                    return Err(DropReason::NoLocalAddr);
                }
                self.server_side_key(t.proto, rip, rport, k.src, t.sport)?
            }
        };
        let svc_id = table.service(svc).id.0;
        let expires = now + self.timeout_of(pick.id.0, t.proto, TcpState::SynRecv);
        let r = self
            .conns
            .insert(NewConn {
                proto: t.proto,
                cip: k.src,
                cport: t.sport,
                vip: k.dst,
                vport: t.dport,
                lip,
                lport,
                rip,
                rport,
                rs: pick.id.0,
                state: TcpState::None,
                expires,
                fwd: pick.fwd,
            })
            .map_err(refused)?;
        self.pools.opened(&ConnKey::new(t.proto, rip, rport, lip, lport), pick.fwd.uses_local_addr());
        self.maybe_unproven(r, t.proto, pick.fwd, now);
        self.sched.conn_new(pick.id);
        if counted {
            if self.edge.opened(svc_id, &k.src) {
                self.conns.get_mut(r).flags.set(ConnFlags::SRC_COUNTED);
            } else {
                self.stats.event(ConnEvent::SourceUntracked);
            }
        }
        if let Some(x) = self.rs_svc.get_mut(pick.id.0 as usize) {
            *x = svc_id;
        }
        match (table.service(svc).config.proxy_protocol, t.proto) {
            (Some(v), Proto::Tcp) => self.proxy_open(r, v),
            // UDP: a version 2 header in each datagram ([`Engine::proxy_datagram`]).
            (Some(_), _) => self.conns.get_mut(r).flags.set(ConnFlags::PROXY_PROTO),
            (None, _) => {}
        }
        if let Some(mode) = table.service(svc).config.uoa {
            if t.proto == Proto::Udp && pick.fwd == FwdMode::FullNat && self.uoa_max_trail > 0 {
                self.uoa[r.index() as usize] = (self.uoa_max_trail, mode);
                self.conns.get_mut(r).flags.set(ConnFlags::UOA);
            }
        }
        self.stats.gauge(svc_id, pick.id.0, Gauge::NewInactive);
        self.wheel.schedule(r.index(), expires);
        if t.proto == Proto::Udp && self.sync.is_some() && !table.service(svc).config.ops {
            self.sync_note(r, now);
        }
        Ok(r)
    }

    /// One-packet scheduling (`ops`): the datagram goes by connection `r`, just opened,
    /// which is freed at once (its local port too); the verdict names no connection.
    #[cold]
    fn one_packet<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, now: Millis, t: &Tuple, r: ConnRef) -> Verdict {
        let v = self.forward(buf, l3, now, t, Hit { conn: r, dir: Direction::Input });
        self.free(r);
        match v {
            Verdict::Forward { dst, dir, .. } => {
                Verdict::Forward { dst, dir, conn: ConnRef::from_index(synproxy::NO_CONN) }
            }
            other => other,
        }
    }

    /// A translated datagram of connection `r` to its server, which still owes the UOA
    /// option: it carries it when it can (see [`crate::uoa`]).
    #[cold]
    fn uoa_mark<B: PacketBuf>(&mut self, buf: &mut B, l3: usize, r: ConnRef) {
        let (left, mode) = self.uoa[r.index() as usize];
        let c = self.conns.get(r);
        let client = std::net::SocketAddr::new(c.cip().ip(), c.cport());
        if crate::uoa::insert(buf, l3, mode, client, usize::from(self.grown_max_len)).is_err() {
            return self.stats.event(ConnEvent::UoaNoRoom);
        }
        self.stats.event(ConnEvent::UoaInserted);
        self.uoa[r.index() as usize].0 = left - 1;
        if left <= 1 {
            self.conns.get_mut(r).flags.clear(ConnFlags::UOA);
        }
    }

    /// An ICMP or ICMPv6 error (see [`crate::icmp_err`]): translated to the other side
    /// of the connection whose packet it quotes, once vetted ([`icmp_refusal`]).
    #[cold]
    fn icmp<B: PacketBuf>(&mut self, buf: &mut B, l3: usize) -> Verdict {
        let e = match icmp_error(buf.data(), l3) {
            Ok(e) => e,
            Err(TranslateError::Fragment) => return self.drop(DropReason::Fragment),
            Err(TranslateError::NotIcmpError) | Err(TranslateError::UnsupportedProtocol(_)) => return Verdict::NotMine,
            Err(_) => return Verdict::NotMine,
        };
        let q = &e.inner;
        // The quoted packet is one the balancer sent: its reverse is a connection key.
        let key = ip_key(q.proto, q.dst, q.dport, q.src, q.sport);
        let Some(h) = self.conns.lookup(&key) else {
            if self.pools.is_lip(&key.dst) {
                let owner = self.pools.ownership().owner(q.sport);
                if owner != self.worker {
                    return Verdict::Redirect { owner };
                }
                // About a ping without a mapping: the box's own, as in `echo_miss`.
                if q.proto != Proto::Icmp {
                    return self.drop(DropReason::IcmpNoConn);
                }
            } else if q.proto != Proto::Icmp
                && self.pools.ownership().workers() > 1
                && self.own.binary_search(&key.dst).is_ok()
            {
                // About a packet from a VIP to a client: whose connection, only the
                // worker holding it knows. Vetted first: junk costs no copies.
                if let Some(r) = icmp_refusal(buf.data(), &e) {
                    return self.drop(r);
                }
                return Verdict::Redirect { owner: EVERY_WORKER };
            }
            return Verdict::NotMine;
        };
        // Vetted before anything is done with it, the passive health check included.
        if let Some(r) = icmp_refusal(buf.data(), &e) {
            return self.drop(r);
        }
        if self.dest_watching && h.dir == Direction::Output && q.proto == Proto::Udp {
            self.udp_refused(&e, h.conn);
        }
        let c = self.conns.get(h.conn);
        let fwd = c.fwd();
        if c.cip().is_v4() != c.rip().is_v4() {
            let pp = c.flags().has(ConnFlags::PROXY_PROTO);
            return self.icmp_nat64(buf, l3, &e, h, pp);
        }
        if fwd.keeps_packet() {
            // About a DR or TUN server's reply (it went to the client directly): the
            // server's business, sent to it as the connection's packets are, as IPVS does.
            return match h.dir {
                Direction::Input => self.deliver_unchanged(buf, l3, h.conn),
                Direction::Output => Verdict::NotMine,
            };
        }
        // The error travels the way a packet with the quoted packet's reverse would:
        // from the real server's side (key = outbound) on to the client, or the other
        // way round. Under NAT the reporter's address stays (only FullNAT hides the
        // client side from the server).
        let (outer, inner, dst, dir) = match h.dir {
            Direction::Output => (
                // SNAT: the reporter (a router on the way out) stays, as NAT's does inbound.
                AddrRewrite { src: if fwd == FwdMode::Snat { e.src } else { c.vip().ip() }, dst: c.cip().ip() },
                Rewrite { src: c.cip().ip(), sport: c.cport(), dst: c.vip().ip(), dport: c.vport() },
                c.cip().ip(),
                Direction::Output,
            ),
            Direction::Input => (
                AddrRewrite { src: if fwd == FwdMode::Nat { e.src } else { c.lip().ip() }, dst: c.rip().ip() },
                Rewrite { src: c.rip().ip(), sport: c.rport(), dst: c.lip().ip(), dport: c.lport() },
                c.rip().ip(),
                Direction::Input,
            ),
        };
        let rs = c.rs;
        let proxied = c.flags().has(ConnFlags::SYNPROXY);
        let pp = c.flags().has(ConnFlags::PROXY_PROTO);
        let svc = self.svc_of(rs);
        if rewrite_icmp_error_parsed(buf.data_mut(), l3, &e, &outer, &inner).is_err() {
            return self.drop(DropReason::BadHeader);
        }
        if proxied {
            self.synproxy_icmp(buf.data_mut(), &e, h.conn, dir);
        }
        if pp {
            self.proxy_icmp(buf.data_mut(), &e, h.conn, dir);
        }
        let bytes = buf.data().len().saturating_sub(l3) as u64;
        match dir {
            Direction::Input => self.stats.packet_in(svc, rs, bytes),
            Direction::Output => self.stats.packet_out(svc, rs, bytes),
        }
        Verdict::Forward { dst, dir, conn: h.conn }
    }
}

/// Why the ICMP error `e` about a known connection, in `data`, is not to be acted on,
/// if it is not: a wrong checksum, not addressed to the quoted packet's sender (a
/// forgery needs no more than the connection's addresses and ports otherwise), or an
/// MTU below its family's floor (see [`crate::icmp_err::MIN_PMTU_V4`]), whichever way
/// it travels.
fn icmp_refusal(data: &[u8], e: &crate::icmp_err::IcmpError) -> Option<DropReason> {
    if !e.checksum_ok(data) {
        Some(DropReason::IcmpErrorChecksum)
    } else if !e.to_quoted_sender() {
        Some(DropReason::IcmpMisaddressed)
    } else if e.mtu_too_small() {
        Some(DropReason::IcmpMtuTooSmall)
    } else {
        None
    }
}
