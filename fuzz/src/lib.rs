//! Shared pieces of the fuzz targets: the `frame` target's world (the topology of
//! `crates/frame/tests/fixtures.rs` plus the services and addresses of
//! `crates/fnat/tests/fixtures.rs`) and its input format.
//!
//! # The `frame` input format
//!
//! A sequence of records, each `h, len_hi, len_lo, frame[len]` (a record whose length
//! runs past the end takes what is left). The header byte `h`:
//!
//! - bits 0-1: the receiving port (0 `dpdk0` client side, 1 `dpdk1` server side, 2
//!   `dpdk2` with forward2kni); 3: `dpdk0`, after the services switch between their two
//!   generations (10.2.0.3:8443 of VIP:443, whose service has `expire_quiescent`, drained
//!   or not), so that live connections meet a server drained under them;
//! - bit 2: the mbuf pool is empty while this frame is handled;
//! - bit 3: before the frame, the neighbours the node reported so far are learned into
//!   the table (as the control thread does) and what waited for them is released;
//! - bits 4-7 (`k`): before the frame, the clock moves `2^(k+5)` ms (not at all for 0)
//!   and the periodic duties run (connection expiry, neighbour retries and expiry).
//!
//! A record of length 0 only moves the clock. The seed corpus is written in this format
//! by the frame and fnat fixture tables (`RVS_FUZZ_SEEDS`, see `fuzz/seeds.sh`).

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

use fnat::buf::{PacketBuf, VecBuf};
use fnat::denyset::PrefixSet;
use fnat::edge::RateLimit;
use fnat::engine::config::{EngineConfig, LocalAddrSet};
use fnat::engine::Engine;
use fnat::persist::PersistConfig;
use fnat::sapool::PortRange;
use fnat::sched::maglev::MH_MIN_TABLE_SIZE;
use fnat::sched::SchedKind;
use fnat::service::{RealServerConfig, ServiceConfig, ServiceTable};
use fnat::synproxy::SynProxyMode;
use fnat::timer::WheelConfig;
use fnat::types::Proto;
use frame::{Io, Net, Node, Port, ETH_LEN};
use ipnet::IpNet;
use netstack::{AddrFlags, AddrTable, NeighTable, PortId, Route, RouteTable};
use wire::EthernetAddress;

const US0: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x10]);
const US1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x11]);
const US2: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x12]);
const CLIENT: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xc1]);
const SERVER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x51]);

/// One input record of the `frame` target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// The header byte.
    pub h: u8,
    /// The frame (may be empty).
    pub frame: &'a [u8],
}

/// Splits a `frame` input into records.
pub fn records(mut data: &[u8]) -> impl Iterator<Item = Record<'_>> {
    std::iter::from_fn(move || {
        let (&h, rest) = data.split_first()?;
        let len = match rest {
            [a, b, ..] => usize::from(u16::from_be_bytes([*a, *b])),
            _ => 0,
        };
        let rest = rest.get(2..).unwrap_or(&[]);
        let n = len.min(rest.len());
        let (frame, tail) = rest.split_at(n);
        data = tail;
        Some(Record { h, frame })
    })
}

/// Encodes records (for seeds and tests).
pub fn encode(recs: &[Record<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in recs {
        out.push(r.h);
        out.extend_from_slice(&(r.frame.len().min(usize::from(u16::MAX)) as u16).to_be_bytes());
        out.extend_from_slice(&r.frame[..r.frame.len().min(usize::from(u16::MAX))]);
    }
    out
}

/// The worker's side: counts what comes out, keeps the neighbours seen.
#[derive(Default)]
pub struct Sink {
    /// Frames out (sent, handed up, redirected).
    pub out: usize,
    /// Bytes out.
    pub bytes: usize,
    /// Neighbour bindings reported, not yet learned.
    pub seen: Vec<(IpAddr, EthernetAddress, usize)>,
    /// The mbuf pool is empty.
    pub pool_empty: bool,
}

impl Io<VecBuf> for Sink {
    fn alloc(&mut self) -> Option<VecBuf> {
        (!self.pool_empty).then(|| VecBuf::with_room(&[], 128, 2048))
    }
    fn copy(&mut self, b: &VecBuf) -> Option<VecBuf> {
        (!self.pool_empty).then(|| VecBuf::new(b.data()))
    }
    fn transmit(&mut self, _port: usize, b: VecBuf) {
        self.out += 1;
        self.bytes += b.data().len();
    }
    fn up_to_twin(&mut self, _port: usize, b: VecBuf, _class: frame::TwinClass) {
        self.out += 1;
        self.bytes += b.data().len();
    }
    fn redirect(&mut self, _owner: u16, _port: usize, b: VecBuf) {
        self.out += 1;
        self.bytes += b.data().len();
    }
    fn seen_neighbour(&mut self, ip: IpAddr, mac: EthernetAddress, port: usize) {
        if self.seen.len() < 64 {
            self.seen.push((ip, mac, port));
        }
    }
    fn asking_neighbour(&mut self, _ip: IpAddr, _port: usize) {}
    fn handed_over(&self) -> bool {
        false
    }
}

/// A configuration generation, one worker's engine (worker 0 of 2, so replies for the
/// other worker's ports are redirected), its node and the sink.
pub struct World {
    ports: Vec<Port>,
    addrs: AddrTable,
    routes: RouteTable,
    neighs: NeighTable,
    table: &'static ServiceTable,
    engine: Engine,
    node: Node<VecBuf>,
    io: Sink,
    now: u64,
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn rs(addr: &str, port: u16) -> RealServerConfig {
    RealServerConfig { addr: ip(addr), port, weight: 1, upper: 0, lower: 0, fwd: Default::default() }
}

fn svc(proto: Proto, vip: &str, vport: u16, sched: SchedKind, servers: &[RealServerConfig]) -> ServiceConfig {
    let mut c = ServiceConfig::new(proto, ip(vip), vport);
    c.sched = sched;
    c.real_servers = servers.to_vec();
    c
}

/// The services, built once: a table is immutable (workers share one), and building the
/// schedulers' tables per input would dominate the run.
fn services() -> &'static ServiceTable {
    static TABLE: OnceLock<ServiceTable> = OnceLock::new();
    TABLE.get_or_init(|| build_services(false, None))
}

/// The services' other generation: 10.2.0.3:8443 of VIP:443 drained (weight 0), the
/// ids those of [`services`].
fn drained() -> &'static ServiceTable {
    static TABLE: OnceLock<ServiceTable> = OnceLock::new();
    TABLE.get_or_init(|| build_services(true, Some(services())))
}

fn build_services(drain: bool, prev: Option<&ServiceTable>) -> ServiceTable {
    {
        let mut https = svc(
            Proto::Tcp,
            "192.0.2.1",
            443,
            SchedKind::Mh,
            &[rs("10.2.0.1", 8443), rs("10.2.0.3", 8443), rs("10.2.0.9", 8443)],
        );
        https.persistence = Some(PersistConfig { timeout_s: 300, netmask_v4: 24, netmask_v6: 64 });
        https.expire_quiescent = true;
        if drain {
            https.real_servers[1].weight = 0;
        }
        https.mh_table_size = Some(MH_MIN_TABLE_SIZE);
        https.deny = vec![net("198.51.100.128/25")];
        let mut web = svc(Proto::Tcp, "192.0.2.1", 80, SchedKind::Rr, &[rs("10.2.0.1", 8080)]);
        web.synproxy = Some(SynProxyMode::On);
        let mut web6 = svc(Proto::Tcp, "2001:db8:f::1", 80, SchedKind::Rr, &[rs("fd00::2", 8080)]);
        web6.source_limit = 4;
        web6.allow = vec![net("2001:db8:c::/64")];
        web6.dest_check = Some(Default::default());
        let mut ch =
            svc(Proto::Tcp, "192.0.2.1", 81, SchedKind::Conhash, &[rs("10.2.0.9", 8080), rs("10.2.0.3", 8080)]);
        ch.dest_check = Some(fnat::destcheck::DestCheck { up_confirm: 3, ..Default::default() });
        // The passive check let one server back in: its handshakes are reported (UP).
        let marks = [((ch.key(), "10.2.0.3:8080".parse().unwrap()), fnat::destcheck::DestMark::Reopened)].into();
        let mut dns = svc(Proto::Udp, "192.0.2.1", 53, SchedKind::Rr, &[rs("10.2.0.2", 53)]);
        dns.rate_limit = Some(RateLimit { rate: 10, burst: 5 });
        ServiceTable::build_marked(
            &[
                web,
                web6,
                ch,
                dns,
                svc(Proto::Udp, "2001:db8:f::1", 53, SchedKind::Rr, &[rs("fd00:2::1", 53)]),
                https,
                svc(Proto::Udp, "192.0.2.1", 0, SchedKind::Wlc, &[rs("10.2.0.1", 0), rs("10.2.0.2", 0)]),
                svc(Proto::Tcp, "2001:db8:f::1", 443, SchedKind::Sh, &[rs("fd00::2", 443), rs("fd00:2::1", 443)]),
            ],
            prev,
            &marks,
        )
        .unwrap()
    }
}

/// SNAT rules: the servers' side (10.2/16, fd00:2::/64) leaves by dpdk0 from WAN
/// addresses there; TCP ones only for ports 1-1024 outside; pings (ICMP echo) too.
fn snat(routes: &RouteTable) -> std::sync::Arc<fnat::snat::SnatTable> {
    use fnat::snat::{SnatRule, SnatTable};
    let rule = |name: &str, src: &str, dst: Option<&str>, wan: &str| SnatRule {
        name: name.into(),
        proto: None,
        src: Some(src.parse().unwrap()),
        dst: dst.map(|d| d.parse().unwrap()),
        iif: None,
        oif: Some(0),
        wan: vec![ip(wan)],
    };
    let echo = |name: &str, src: &str, wan: &str| SnatRule {
        proto: Some(fnat::types::Proto::Icmp),
        ..rule(name, src, None, wan)
    };
    let rules = vec![
        rule("low", "10.2.0.0/16", Some("0.0.0.0:1-1024"), "198.51.100.3"),
        rule("v6", "fd00:2::/64", None, "2001:db8:c::3"),
        echo("ping", "10.2.0.0/16", "198.51.100.3"),
        echo("ping6", "fd00:2::/64", "2001:db8:c::3"),
    ];
    let routes: Vec<_> =
        routes.iter().map(|r| (r.prefix, (r.scope != netstack::Scope::KniHost).then_some(r.dev.0))).collect();
    std::sync::Arc::new(SnatTable::new(rules, routes))
}

/// The global deny set, built once (its IPv4 bitmaps are megabytes; workers share one).
fn deny_set() -> Arc<PrefixSet> {
    static SET: OnceLock<Arc<PrefixSet>> = OnceLock::new();
    Arc::clone(
        SET.get_or_init(|| Arc::new(PrefixSet::build([(ip("203.0.113.128"), 25), (ip("2001:db8:c::dead"), 128)]))),
    )
}

impl Default for World {
    fn default() -> Self {
        World::new()
    }
}

impl World {
    /// The topology:
    /// - `dpdk0` (client side, MTU 1500, twin): VIPs 192.0.2.1 and 2001:db8:f::1,
    ///   198.51.100.1/24, 198.51.100.2/24 (kni_host), 2001:db8:c::1/64; clients
    ///   198.51.100.7, 2001:db8:c::7 and 203.0.113.7 (connected /24) resolved; default
    ///   routes via unresolved 198.51.100.254 and 2001:db8:c::fe.
    /// - `dpdk1` (server side, MTU 1400, no twin): LIPs 10.1.0.1/8, fd00::1/64,
    ///   fd00:1::1/64; servers 10.2.0.1-3, fd00::2, fd00:2::1 resolved, 10.2.0.9 not.
    /// - `dpdk2` (MTU 9000, twin, forward2kni): 172.16.0.1/24, nobody resolved.
    /// - services: TCP VIP:80 rr -> 10.2.0.1:8080 with the SYN proxy on (and v6 ->
    ///   [fd00::2]:8080, 4 connections per source, clients of 2001:db8:c::/64 only); TCP VIP:81
    ///   -> 10.2.0.9:8080; UDP VIP:53 -> 10.2.0.2:53 rate-limited (and v6 ->
    ///   [fd00:2::1]:53); TCP VIP:443 mh with persistence and expire_quiescent over three servers, denying
    ///   198.51.100.128/25; UDP VIP:0 wlc; TCP [VIP6]:443 sh; every other service with the
    ///   SYN proxy in its default (automatic) mode.
    /// - the global deny set: 203.0.113.128/25 and 2001:db8:c::dead.
    pub fn new() -> World {
        let port = |name: &str, mac, mtu, twin, forward2kni| Port {
            name: name.into(),
            mac,
            mtu,
            forward2kni,
            twin,
            vlan: None,
        };
        let ports = vec![
            port("dpdk0", US0, 1500, true, false),
            port("dpdk1", US1, 1400, false, false),
            port("dpdk2", US2, 9000, true, true),
            // VLAN 100 on dpdk0, with addresses of its own.
            Port { vlan: Some(frame::Vlan { parent: 0, id: 100 }), ..port("dpdk0.100", US0, 1500, true, false) },
        ];
        let (p0, p1, p2, p3) = (PortId(0), PortId(1), PortId(2), PortId(3));
        let mut addrs = AddrTable::new();
        for (p, a, f) in [
            (p0, "192.0.2.1/32", AddrFlags::VIP),
            (p0, "2001:db8:f::1/128", AddrFlags::VIP),
            (p0, "198.51.100.1/24", AddrFlags::NONE),
            (p0, "198.51.100.2/24", AddrFlags::NONE),
            (p0, "2001:db8:c::1/64", AddrFlags::NONE),
            // SNAT's WAN addresses.
            (p0, "198.51.100.3/24", AddrFlags::SAPOOL),
            (p0, "2001:db8:c::3/64", AddrFlags::SAPOOL),
            (p1, "10.1.0.1/8", AddrFlags::SAPOOL),
            (p1, "fd00::1/64", AddrFlags::SAPOOL),
            (p1, "fd00:1::1/64", AddrFlags::SAPOOL),
            (p2, "172.16.0.1/24", AddrFlags::NONE),
            (p3, "198.51.101.1/24", AddrFlags::NONE),
        ] {
            addrs.add(p, net(a), f).unwrap();
        }
        let mut routes = RouteTable::new();
        for r in addrs.connected_routes() {
            routes.add(r).unwrap();
        }
        routes.add(Route::kni_host(net("198.51.100.2/32"), p0)).unwrap();
        routes.add(Route::connected(net("203.0.113.0/24"), p0, None)).unwrap();
        routes.add(Route::connected(net("fd00:2::/64"), p1, None)).unwrap();
        routes.add(Route::via(net("0.0.0.0/0"), ip("198.51.100.254"), p0)).unwrap();
        routes.add(Route::via(net("::/0"), ip("2001:db8:c::fe"), p0)).unwrap();
        let mut neighs = NeighTable::new(64);
        for (a, mac, p) in [
            ("198.51.100.7", CLIENT, p0),
            ("2001:db8:c::7", CLIENT, p0),
            ("203.0.113.7", CLIENT, p0),
            ("10.2.0.1", SERVER, p1),
            ("10.2.0.2", SERVER, p1),
            ("10.2.0.3", SERVER, p1),
            ("fd00::2", SERVER, p1),
            ("fd00:2::1", SERVER, p1),
        ] {
            neighs.insert_static(ip(a), mac, p, 0);
        }
        let table = services();
        let cfg = EngineConfig {
            workers: 2,
            conn_capacity: 64,
            local_addrs: vec![LocalAddrSet {
                service: None,
                lips: vec![ip("10.1.0.1"), ip("fd00::1"), ip("fd00:1::1")],
            }],
            hash_seed: Some(7),
            // Small everything: a fresh world per input stays cheap, and the limits (a
            // full table, no free port, the wheel's horizon) are within reach.
            wheel: WheelConfig { resolution_ms: 32, slots: 1024 },
            port_range: PortRange { lo: 1025, hi: 1056 },
            max_services: 16,
            max_real_servers: 64,
            persist_capacity: 64,
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(&cfg, 0).unwrap();
        engine.set_own_addrs(addrs.iter().map(|e| e.ip()));
        engine.set_deny_set(deny_set());
        engine.set_snat(snat(&routes));
        World { ports, addrs, routes, neighs, table, engine, node: Node::new(), io: Sink::default(), now: 0 }
    }

    /// Runs one record.
    pub fn record(&mut self, r: Record<'_>) {
        let k = r.h >> 4;
        if k > 0 {
            self.advance(1u64 << (k + 5));
        }
        if r.h & 0x08 != 0 {
            self.learn();
        }
        let mut port = usize::from(r.h & 0x03);
        if port == 3 {
            port = 0;
            self.table = match std::ptr::eq(self.table, services()) {
                true => drained(),
                false => services(),
            };
            self.engine.bind(self.table);
        }
        if !r.frame.is_empty() {
            self.io.pool_empty = r.h & 0x04 != 0;
            self.frame(port, r.frame);
            self.io.pool_empty = false;
        }
    }

    /// Runs a whole input.
    pub fn run(&mut self, data: &[u8]) {
        for r in records(data) {
            self.record(r);
        }
    }

    /// One frame in, through the node, the core and the node again.
    fn frame(&mut self, port: usize, input: &[u8]) {
        let net = Net { ports: &self.ports, addrs: &self.addrs, routes: &self.routes, neighs: &self.neighs };
        let mut port = port;
        let Some(mut b) = self.node.receive(&net, &mut port, VecBuf::new(input), &mut self.io) else { return };
        let v = self.engine.process(self.table, &mut b, ETH_LEN, self.now);
        self.node.after_core(&net, port, b, v, &mut self.engine, &mut self.io);
        self.node.tend_hops(&mut self.engine);
        // The passive check's reports go to a control thread that takes them all.
        self.engine.take_dest_reports(|_| true);
    }

    /// The clock moves; expiry and retries run as a worker's loop would.
    fn advance(&mut self, ms: u64) {
        self.now += ms;
        while self.engine.expire(self.now, 1 << 16).more {}
        self.engine.expire_persistence(self.now);
        // The control thread's duty: the probes it would send are not needed here.
        let mut probes = Vec::new();
        self.neighs.expire(self.now, &mut probes);
        let net = Net { ports: &self.ports, addrs: &self.addrs, routes: &self.routes, neighs: &self.neighs };
        self.node.housekeeping(&net, self.now, &mut self.io);
    }

    /// The control thread learns the reported neighbours; waiting packets leave.
    fn learn(&mut self) {
        for (ip, mac, port) in std::mem::take(&mut self.io.seen) {
            self.neighs.learn(ip, mac, PortId(port as _), self.now);
        }
        let net = Net { ports: &self.ports, addrs: &self.addrs, routes: &self.routes, neighs: &self.neighs };
        self.node.release_resolved(&net, &mut self.io);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let recs = [Record { h: 1, frame: &[1, 2, 3] }, Record { h: 0x30, frame: &[] }];
        assert_eq!(records(&encode(&recs)).collect::<Vec<_>>(), recs);
        // A length past the end takes what is left; a lone header byte is a record.
        assert_eq!(records(&[5, 0, 9, 1]).collect::<Vec<_>>(), [Record { h: 5, frame: &[1] }]);
        assert_eq!(records(&[5]).collect::<Vec<_>>(), [Record { h: 5, frame: &[] }]);
    }

    #[test]
    fn world_runs() {
        World::new().run(&[0, 0, 3, 1, 2, 3]);
    }

    /// Port 3 switches the services' generation: a connection whose server the switch
    /// drains ends at its next segment (`expire_quiescent`), which the fuzzer can reach.
    #[test]
    fn the_switch_drains_a_live_connections_server() {
        use std::net::Ipv4Addr;
        use wire::builder::PacketBuilder;
        let seg = |c: Ipv4Addr, flags: u8| {
            let ip = PacketBuilder::eth(CLIENT, US0).ipv4(c, Ipv4Addr::new(192, 0, 2, 1));
            ip.tcp(40000, 443).seq(1000).ack(1).flags(wire::TcpFlags(flags)).build()
        };
        // A client whose connection goes to 10.2.0.3 (mh: fixed per client).
        let on_3 = (1..120u8).map(|n| Ipv4Addr::new(203, 0, 113, n)).find(|&c| {
            let mut w = World::new();
            w.record(Record { h: 0, frame: &seg(c, 0x02) });
            w.engine.list(0, 4, w.now).0.first().is_some_and(|i| i.real.ip() == ip("10.2.0.3"))
        });
        let c = on_3.expect("a client of 10.2.0.3");
        let mut w = World::new();
        w.record(Record { h: 0, frame: &seg(c, 0x02) });
        assert_eq!(w.engine.conns().len(), 1);
        w.record(Record { h: 3, frame: &seg(c, 0x10) });
        assert!(std::ptr::eq(w.table, drained()));
        assert_eq!(w.engine.stats().events(fnat::stats::ConnEvent::QuiescentExpired), 1);
        assert_eq!(w.engine.conns().len(), 0, "ended at its next segment");
        w.record(Record { h: 3, frame: &[] });
        assert!(std::ptr::eq(w.table, services()), "and back");
    }
}
