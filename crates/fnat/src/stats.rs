//! Per-worker counters: per service, per real server, per worker, and drops by reason.
//!
//! A worker owns its counters outright: plain `u64` adds, no atomics, no sharing on the
//! hot path. The control plane asks each worker for a [`StatsSnapshot`] (serialisable)
//! and adds them up with [`StatsSnapshot::sum`].
//!
//! Per-service counters are indexed by the service's index in the service table and
//! per-real-server counters by `RsId`, both sized from the configured maxima; an index
//! beyond them is simply not counted per service/server (the worker totals still are).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

crate::counter_set! {
    /// Why the core dropped a packet (or refused a new connection). The dataplane's own
    /// reasons (routing, neighbours, transmit, local delivery) are declared beside the
    /// dataplane's frame logic; the two sets never share a name.
    pub enum DropReason in Drops {
        NoRealServer = "no_real_server": "The scheduler found no available real server.",
        PoolFull = "pool_full": "The connection pool is full: the new connection was refused.",
        AddrsFull = "addrs_full": "The worker's connection table already names 65,535 distinct VIPs, local addresses and real servers in live connections (it holds each once): the new connection, with yet another, was refused.",
        PersistFull = "persist_full": "The service is persistent and the persistence table is full (for a peer's synced record: half full, the other half being this box's own clients').",
        NoLocalPort = "no_local_port": "No free local port towards that real server (all probes in use).",
        NoLocalAddr = "no_local_addr": "The service has no local address of the real server's family.",
        BadHeader = "bad_header": "A truncated or malformed IP, TCP, UDP or ICMP header.",
        Fragment = "fragment": "An IP fragment that cannot be forwarded: a first fragment too short for its TCP/UDP header, of another protocol, of a TCP segment that has no connection, is a SYN or is part of the SYN proxy's handshake, must carry a PROXY protocol header, or towards no service or local port (see fnat::frag).",
        FragmentNoFirst = "fragment_no_first": "A later IP fragment (offset > 0) whose first fragment was not seen by this worker in the last 2 s (reordered, dropped, or its entry found no room): rvs forwards fragments by the first one's connection and does not reassemble.",
        ToaNoRoom = "toa_no_room": "No room to insert the TOA option (the packet was still forwarded without it).",
        NoConn = "no_conn": "A TCP packet other than a SYN for a service, without a connection.",
        ReplyNoConn = "reply_no_conn": "A packet to a local address and port with no connection (a stray reply).",
        IcmpNoConn = "icmp_no_conn": "An ICMP error about no known connection.",
        IcmpErrorChecksum = "icmp_error_checksum": "An ICMP or ICMPv6 error about a known connection with a wrong ICMP checksum: neither passed on nor taken as a real server's word (dest_check).",
        IcmpMisaddressed = "icmp_misaddressed": "An ICMP or ICMPv6 error about a known connection not addressed to the source of the packet it quotes (an error goes back to the sender of the packet that caused it): forged or mangled, neither passed on nor taken as a real server's word (dest_check).",
        IcmpMtuTooSmall = "icmp_mtu_too_small": "An ICMP fragmentation needed announcing an MTU below 576, or an ICMPv6 packet too big below 1280 (IPv6's minimum link MTU), about a known connection, from either side: not passed on (from a client, it would lower the path MTU the real server keeps towards a LIP all clients share, for minutes).",
        SynproxyBadAck = "synproxy_bad_ack": "While the SYN proxy is on: a client ACK without a connection and without a valid SYN cookie (no reply is sent).",
        SynproxyEarly = "synproxy_early": "A client segment of a proxied connection before the real server's SYN-ACK, beyond the one held (the client retransmits it), or a client RST then at a number not of the client's stream (a blind forger's).",
        SynproxyBadSynAck = "synproxy_bad_synack": "A real server's packet on a proxied connection that does not fit its handshake (wrong acknowledgment, or a SYN-ACK repeated too often). Before the server's SYN-ACK, one carrying an acknowledgment is answered with a reset to the server at that acknowledgment (RFC 793; it ends a TIME_WAIT the server still held for an earlier connection on the same addresses and ports), and the SYN goes again on the client's next retransmission.",
        SynproxyAckStorm = "synproxy_ack_storm": "An identical pure ACK from a real server beyond the ack-storm threshold on a proxied connection.",
        MartianSource = "martian_source": "A new flow from a source no client can have (0/8, 127/8, multicast, 240/4 and broadcast, ::, ::1, ff00::/8): refused before scheduling.",
        Land = "land": "A new flow whose source is its destination or another of rvs's own addresses (a land attack): refused before scheduling.",
        BadL4Checksum = "bad_l4_checksum": "A SYN or first UDP datagram with a wrong TCP/UDP checksum (the NIC's verdict where it gives one, otherwise checked in software): refused before scheduling.",
        BadIpOptions = "bad_ip_options": "From a client: IPv4 options with a length of 0 or 1 or running past the header, or a source route (LSRR/SSRR).",
        BadTcpOptions = "bad_tcp_options": "From a client: TCP options with a length of 0 or 1 or running past the header.",
        Ipv6Rh0 = "ipv6_rh0": "From a client: an IPv6 type 0 routing header (deprecated by RFC 5095).",
        Denied = "denied": "A new flow from a source in the global deny set or the service's deny list (blacklist).",
        NotAllowed = "not_allowed": "A new flow from a source outside the service's allow list (whitelist).",
        RateLimited = "rate_limited": "A new flow beyond the service's new-connection rate limit (this worker's token bucket was empty).",
        SourceLimit = "source_limit": "A new flow from a source that already holds the service's per-source connection limit.",
        NatClash = "nat_clash": "A new NAT, DR or TUN connection whose server-side key (real server, client address or tunnel source, client port) another connection already holds: the same client port towards the same real server through another VIP or port, while that connection is not finished.",
        Nat64 = "nat64": "A packet of a NAT64 connection that cannot be translated (IPv6 extension headers, IPv4 options, a UDP/IPv4 datagram without a checksum, a fragment, no room in the buffer), or an ICMP error about one that RFC 7915 does not translate or that comes from the client's side.",
        TunnelNoRoom = "tunnel_no_room": "A packet for a tunnelled (TUN) real server that could not take the outer header (no headroom in the buffer, or longer than 65535 bytes).",
        ProxyNoRoom = "proxy_no_room": "A client's first data segment that could not take the PROXY protocol header (no headroom or tailroom in the buffer, or it would pass 65535 bytes): dropped rather than sent without it; the client retransmits it and the retransmission is tried again. For UDP: a datagram that would pass the smallest port MTU with the header, or a fragment.",
        ClientToa = "client_toa": "A client's own TOA option (kind 254), overwritten with NOPs before rvs adds its own (the option was dropped, the segment forwarded).",
        Quiescent = "quiescent": "A real server's UDP datagram on a connection that ended because its server is quiescent (weight 0, a service with expire_quiescent): dropped with the connection.",
    }
}

crate::counter_set! {
    /// What the core did to its tables to keep them from being exhausted (not drops:
    /// the packet that caused it went on).
    pub enum ConnEvent in ConnEvents {
        SynRecvEvicted = "syn_recv_evicted": "A half-open (SYN_RECV) connection was evicted, oldest first, to make room for a new SYN (the worker's SYN_RECV limit, or its local port was the only one left towards that real server).",
        UnprovenEvicted = "unproven_evicted": "An unproven connection (DR/TUN TCP or UDP, its client had sent fewer than 8 packets) was evicted, oldest first, to make room for a new connection in a full pool (or its local port was the only one left towards that real server).",
        SourceUntracked = "source_untracked": "A connection of a service with a per-source limit was opened without being counted: the worker's source table had no room (fail open).",
        UoaInserted = "uoa_inserted": "A UDP datagram to a real server carried the client's address (UOA; the first few of each connection on services with uoa).",
        UoaNoRoom = "uoa_no_room": "A UDP datagram went without its UOA option: no room (IPv4 options full, over 1500 bytes, an IPv6 extension header); the connection's next datagram carries it.",
        SnatOpened = "snat_opened": "A host behind rvs opened a connection to the outside through a SNAT rule (its source became a WAN address and port).",
        SyncQueued = "sync_queued": "A connection was announced to the peers (connection sync: established, a state change, its client proven, or a refresh).",
        SyncLost = "sync_lost": "A connection's announcement was lost: the worker's outbox or the sync thread's queue was full (the next change or refresh announces it again).",
        SyncInstalled = "sync_installed": "A connection a peer announced was installed in this worker (marked synced).",
        SyncUpdated = "sync_updated": "A synced connection's state and expiry were updated from a peer's announcement.",
        SyncAdopted = "sync_adopted": "A synced connection this box forwarded a packet of: its own from then on (no peer's record changes it, it no longer counts in max_synced).",
        SyncRefused = "sync_refused": "A peer's connection was not installed: no such service or real server here, a field rvs does not sync, or a connection of this box holds its addresses and ports.",
        SyncRefusedFull = "sync_refused_full": "A peer's connection was not installed: the worker holds its share of synced connections (rvsd.toml sync.max_synced) or its table is full.",
        ConnReused = "conn_reused": "A SYN met a TIME_WAIT or CLOSE connection of the same client address and port (or, under NAT, DR or TUN, a new connection met one on the server side): the old connection was expired and the SYN scheduled afresh (LVS conn_reuse_mode).",
        DestDown = "dest_down": "A connection of a service with dest-check failed on its real server's side (an RST answered the SYN, or it expired half open with no SYN-ACK seen; UDP: the server answered its first datagram with ICMP port unreachable): reported to the control thread, which takes the server out after down_retry of them (passive check).",
        DestUp = "dest_up": "A real server the passive check let back in completed a handshake (UDP: answered a connection): reported to the control thread (each halves the server's next time out).",
        DestReportLost = "dest_report_lost": "A passive-check report was lost: the worker's outbox or its queue to the control thread was full (a failing server's next connection reports again).",
        QuiescentExpired = "quiescent_expired": "A connection of a service with expire_quiescent ended at its packet: its real server has weight 0 (drained, inhibited by a checker, or held out by the passive check). A TCP segment was answered with an RST to its sender, a new SYN or a client's datagram scheduled afresh.",
        LocalPortKept = "local_port_kept": "A client that reused its port got, towards the real server picked, the local address and port its previous connection held (the server, likely still holding that connection in TIME_WAIT, sees the same ports and the same client's timestamps again and accepts the SYN).",
        RstUnmatched = "rst_unmatched": "A client's RST (on a SNAT connection, the outside host's) carried neither the sequence number the other side acknowledged last nor the end of the sender's last in-stream segment (a forged or stale one; on a DR or TUN connection, whose acknowledgments do not pass: it stood farther than 1 MiB from that end): forwarded for the other side to judge (RFC 5961), the connection kept here.",
        FinUnmatched = "fin_unmatched": "A client's FIN (on a SNAT connection, the outside host's) carried neither number a closing segment must (forged; on a DR or TUN connection: it stood farther than 1 MiB from the end of the client's stream): forwarded, the connection's state kept here.",
    }
}

/// How much of a worker's connection table the connections that give way first hold
/// (gauges): what a flood of made-up clients can fill, and what an operator watches to
/// see one (OPERATIONS.md, "Tables one source cannot exhaust").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableGauges {
    /// Half-open (`SYN_RECV`) connections: the oldest is evicted past `syn_recv_max`.
    pub half_open: u32,
    /// Unproven connections past `SYN_RECV` (DR or TUN TCP, UDP: their client has sent
    /// fewer than 8 packets): the oldest idle one is evicted when the pool is full.
    pub unproven: u32,
    /// Copies of the peers' connections (connection sync), at most `max_synced`.
    pub synced: u32,
}

/// The counters of one scope (worker, service or real server), as ipvsadm shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Counters {
    /// Connections created (ipvsadm `Conns`).
    pub conns: u64,
    /// Live connections in ESTABLISHED (ipvsadm `ActiveConn`; a gauge).
    pub active: u64,
    /// Live connections in any other state, and UDP (ipvsadm `InActConn`; a gauge).
    pub inactive: u64,
    /// Packets client → real server.
    pub pkts_in: u64,
    /// Packets real server → client.
    pub pkts_out: u64,
    /// Bytes client → real server (IP packet lengths as received).
    pub bytes_in: u64,
    /// Bytes real server → client.
    pub bytes_out: u64,
    /// New flows refused (services only): an input check (martian, land, checksum,
    /// options), the deny or allow list, the rate or per-source limit, no available
    /// real server, no local port or address, a full table. The reasons, for the whole
    /// box, are the drop counters (`rvsip stats`).
    #[serde(default)]
    pub refused: u64,
    /// Persistence templates pointing here, expired ones not yet reclaimed included (a
    /// second at most; real servers only: ipvsadm's `PersistConn`; a gauge filled in by
    /// [`crate::engine::Engine::stats_snapshot`]).
    #[serde(default)]
    pub persist: u64,
}

impl Counters {
    /// Adds `o` into `self` (gauges included).
    pub fn add(&mut self, o: &Counters) {
        self.conns += o.conns;
        self.active += o.active;
        self.inactive += o.inactive;
        self.pkts_in += o.pkts_in;
        self.pkts_out += o.pkts_out;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
        self.refused += o.refused;
        self.persist += o.persist;
    }

    /// Zeroes the rate counters, keeping the gauges (`ipvsadm -Z`).
    pub fn zero(&mut self) {
        *self = Counters { active: self.active, inactive: self.inactive, persist: self.persist, ..Counters::default() };
    }
}

/// What each connection-count change updates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gauge {
    /// A new, inactive connection.
    NewInactive,
    /// Inactive → active.
    Activated,
    /// Active → inactive.
    Deactivated,
    /// An inactive connection freed.
    FreedInactive,
    /// An active connection freed.
    FreedActive,
    /// A connection installed from a peer's sync message, active or not (a gauge only:
    /// the peer counted it as new).
    Synced {
        /// Whether it is active (established).
        active: bool,
    },
}

/// One worker's counters.
#[derive(Debug, Clone)]
pub struct Stats {
    /// Worker totals.
    pub total: Counters,
    svc: Vec<Counters>,
    rs: Vec<Counters>,
    drops: Drops,
    events: ConnEvents,
}

impl Stats {
    /// Counters for up to `max_services` services and `max_rs` real servers.
    pub fn new(max_services: usize, max_rs: usize) -> Stats {
        Stats {
            total: Counters::default(),
            svc: vec![Counters::default(); max_services],
            rs: vec![Counters::default(); max_rs],
            drops: Drops::default(),
            events: ConnEvents::default(),
        }
    }

    /// Counts a drop.
    #[inline]
    pub fn drop(&mut self, r: DropReason) {
        self.drops.inc(r);
    }

    /// Drops counted for a reason.
    pub fn drops(&self, r: DropReason) -> u64 {
        self.drops.get(r)
    }

    /// Counts a table event.
    #[inline]
    pub fn event(&mut self, e: ConnEvent) {
        self.events.inc(e);
    }

    /// Table events counted of a kind.
    pub fn events(&self, e: ConnEvent) -> u64 {
        self.events.get(e)
    }

    /// Grows the per-service and per-real-server counters to cover ids below `services`
    /// and `real_servers` (never shrinks). Called when a worker binds a new generation of
    /// services, not per packet.
    pub fn cover(&mut self, services: usize, real_servers: usize) {
        if self.svc.len() < services {
            self.svc.resize(services, Counters::default());
        }
        if self.rs.len() < real_servers {
            self.rs.resize(real_servers, Counters::default());
        }
    }

    /// A service's counters (`None` for an id no bound generation had).
    pub fn service(&self, svc: u32) -> Option<&Counters> {
        self.svc.get(svc as usize)
    }

    /// A real server's counters (`None` for an id no bound generation had).
    pub fn real_server(&self, rs: u32) -> Option<&Counters> {
        self.rs.get(rs as usize)
    }

    #[inline]
    fn each(&mut self, svc: u32, rs: u32, mut f: impl FnMut(&mut Counters)) {
        f(&mut self.total);
        if let Some(c) = self.svc.get_mut(svc as usize) {
            f(c);
        }
        if let Some(c) = self.rs.get_mut(rs as usize) {
            f(c);
        }
    }

    /// Counts a new flow to service `svc` refused (its reason is counted as a drop).
    #[inline]
    pub fn refused(&mut self, svc: u32) {
        self.total.refused += 1;
        if let Some(c) = self.svc.get_mut(svc as usize) {
            c.refused += 1;
        }
    }

    /// Counts a packet client → real server of `bytes` bytes.
    #[inline]
    pub fn packet_in(&mut self, svc: u32, rs: u32, bytes: u64) {
        self.each(svc, rs, |c| {
            c.pkts_in += 1;
            c.bytes_in += bytes;
        });
    }

    /// Counts a packet real server → client of `bytes` bytes.
    #[inline]
    pub fn packet_out(&mut self, svc: u32, rs: u32, bytes: u64) {
        self.each(svc, rs, |c| {
            c.pkts_out += 1;
            c.bytes_out += bytes;
        });
    }

    /// Updates connection counts and gauges.
    #[inline]
    pub fn gauge(&mut self, svc: u32, rs: u32, g: Gauge) {
        self.each(svc, rs, |c| match g {
            Gauge::NewInactive => {
                c.conns += 1;
                c.inactive += 1;
            }
            Gauge::Activated => {
                c.inactive = c.inactive.saturating_sub(1);
                c.active += 1;
            }
            Gauge::Deactivated => {
                c.active = c.active.saturating_sub(1);
                c.inactive += 1;
            }
            Gauge::FreedInactive => c.inactive = c.inactive.saturating_sub(1),
            Gauge::FreedActive => c.active = c.active.saturating_sub(1),
            Gauge::Synced { active: true } => c.active += 1,
            Gauge::Synced { active: false } => c.inactive += 1,
        });
    }

    /// Zeroes the rate counters and drops, keeping the gauges (`ipvsadm -Z`).
    pub fn zero(&mut self) {
        self.total.zero();
        self.svc.iter_mut().for_each(Counters::zero);
        self.rs.iter_mut().for_each(Counters::zero);
        self.drops.zero();
        self.events.zero();
    }

    /// Zeroes one service's rate counters and its real servers' (`ipvsadm -Z -t`),
    /// keeping their gauges; the totals and drops are left alone.
    pub fn zero_service(&mut self, svc: u32, rs: impl IntoIterator<Item = u32>) {
        if let Some(c) = self.svc.get_mut(svc as usize) {
            c.zero();
        }
        for r in rs {
            if let Some(c) = self.rs.get_mut(r as usize) {
                c.zero();
            }
        }
    }

    /// Resets the gauges (after the connection table is flushed).
    pub fn reset_gauges(&mut self) {
        for c in std::iter::once(&mut self.total).chain(self.svc.iter_mut()).chain(self.rs.iter_mut()) {
            c.active = 0;
            c.inactive = 0;
        }
    }

    /// A serialisable copy (control path; allocates).
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            total: self.total,
            services: self.svc.clone(),
            real_servers: self.rs.clone(),
            drops: DropReason::ALL.iter().map(|r| (r.name().to_string(), self.drops.get(*r))).collect(),
            events: ConnEvent::ALL.iter().map(|e| (e.name().to_string(), self.events.get(*e))).collect(),
            synproxy: BTreeMap::new(),
        }
    }
}

/// A worker's (or the sum of all workers') counters, for the control plane.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct StatsSnapshot {
    /// Totals.
    pub total: Counters,
    /// Per service index.
    pub services: Vec<Counters>,
    /// Per real server id.
    pub real_servers: Vec<Counters>,
    /// Drops by reason name.
    pub drops: BTreeMap<String, u64>,
    /// SYN proxy events ([`crate::synproxy::SynProxyEvent`]) by name, non-zero only.
    #[serde(default)]
    pub synproxy: BTreeMap<String, u64>,
    /// Table events ([`ConnEvent`]) by name.
    #[serde(default)]
    pub events: BTreeMap<String, u64>,
}

impl StatsSnapshot {
    /// Adds `o` into `self` (vectors grow to the longer of the two).
    pub fn add(&mut self, o: &StatsSnapshot) {
        self.total.add(&o.total);
        for (dst, src) in [(&mut self.services, &o.services), (&mut self.real_servers, &o.real_servers)] {
            if dst.len() < src.len() {
                dst.resize(src.len(), Counters::default());
            }
            for (d, s) in dst.iter_mut().zip(src) {
                d.add(s);
            }
        }
        for (k, v) in &o.drops {
            *self.drops.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.synproxy {
            *self.synproxy.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &o.events {
            *self.events.entry(k.clone()).or_default() += v;
        }
    }

    /// The sum of several workers' snapshots.
    pub fn sum<'a>(it: impl IntoIterator<Item = &'a StatsSnapshot>) -> StatsSnapshot {
        let mut s = StatsSnapshot::default();
        for x in it {
            s.add(x);
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_round_trip() {
        let mut seen = std::collections::HashSet::new();
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(*r as usize, i);
            assert!(seen.insert(r.name()));
            assert_eq!(DropReason::from_name(r.name()), Some(*r));
        }
    }

    #[test]
    fn counts_and_sums() {
        let mut a = Stats::new(2, 4);
        a.gauge(1, 3, Gauge::NewInactive);
        a.gauge(1, 3, Gauge::Activated);
        a.packet_in(1, 3, 60);
        a.packet_out(1, 9, 1500); // rs beyond max: totals and service only
        a.drop(DropReason::PoolFull);
        assert_eq!(a.total.active, 1);
        assert_eq!(a.service(1).unwrap().bytes_out, 1500);
        assert_eq!(a.real_server(3).unwrap().pkts_in, 1);
        let mut b = Stats::new(3, 1);
        b.drop(DropReason::PoolFull);
        b.gauge(2, 0, Gauge::NewInactive);
        let s = StatsSnapshot::sum([&a.snapshot(), &b.snapshot()]);
        assert_eq!(s.total.conns, 2);
        assert_eq!(s.services.len(), 3);
        assert_eq!(s.drops["pool_full"], 2);
        a.zero();
        assert_eq!(a.total.pkts_in, 0);
        assert_eq!(a.total.active, 1);
        a.gauge(1, 3, Gauge::FreedActive);
        assert_eq!(a.total.active, 0);
    }
}
