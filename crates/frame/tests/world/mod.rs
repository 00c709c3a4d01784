//! The fixture tables' world: two ports, their addresses, routes and neighbours, the
//! services, an engine and a node, and a recorder of everything the node sends (see
//! `fixtures.rs` for the topology), with the table runner and frame helpers.

#![allow(dead_code, unused_imports)]

pub use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use fnat::buf::{PacketBuf, VecBuf};
pub use fnat::engine::config::{EngineConfig, LocalAddrSet};
pub use fnat::engine::Engine;
pub use fnat::sched::SchedKind;
pub use fnat::service::{RealServerConfig, ServiceConfig, ServiceTable};
pub use fnat::stats::DropReason;
pub use fnat::types::{FwdMode, Proto};
pub use frame::{Io, Net, NetCounter, NetDrop, Node, Port, TwinBudget, TwinClass, Vlan, ETH_LEN};
pub use ipnet::IpNet;
pub use netstack::{AddrFlags, AddrTable, NeighTable, PortId, Route, RouteTable};
pub use wire::builder::PacketBuilder;
pub use wire::{ArpOperation, ArpRepr, EtherType, EthernetAddress, IpProtocol, NdiscFlags, TcpFlags};

/// Writes each table's frames as fuzz seeds when `RVS_FUZZ_SEEDS` is set (`fuzz/seeds.sh`).
#[path = "../../../../fuzz/src/seeds.rs"]
mod fuzz_seeds;

pub const US0: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x10]);
pub const US1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x11]);
pub const CLIENT: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0xc1]);
pub const SERVER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x51]);
pub const STRANGER: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 0x99]);

pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const IF0: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const KNI: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
pub const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
pub const LIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
pub const RIP: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
pub const RIP_UNRESOLVED: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 9);

pub fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}
pub fn vip6() -> Ipv6Addr {
    v6("2001:db8:f::1")
}
pub fn if6() -> Ipv6Addr {
    v6("2001:db8:c::1")
}
pub fn cip6() -> Ipv6Addr {
    v6("2001:db8:c::7")
}
pub fn lip6() -> Ipv6Addr {
    v6("fd00::1")
}
pub fn rip6() -> Ipv6Addr {
    v6("fd00::2")
}

/// Where a frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sink {
    Tx(usize),
    Twin(usize),
    /// Up to the twin, on the control protocols' queue.
    TwinControl(usize),
    Redirect(u16, usize),
}

/// The worker's side, recording everything.
#[derive(Default)]
pub struct Rec {
    pub out: Vec<(Sink, Vec<u8>)>,
    pub seen: Vec<(IpAddr, EthernetAddress, usize)>,
    pub asked: Vec<(IpAddr, usize)>,
    /// The frames are other workers' (`Io::handed_over`).
    pub handed_over: bool,
    pub pool_empty: bool,
}

impl Io<VecBuf> for Rec {
    fn alloc(&mut self) -> Option<VecBuf> {
        (!self.pool_empty).then(|| VecBuf::with_room(&[], 128, 2048))
    }
    fn copy(&mut self, b: &VecBuf) -> Option<VecBuf> {
        (!self.pool_empty).then(|| VecBuf::new(b.data()))
    }
    fn transmit(&mut self, port: usize, b: VecBuf) {
        self.out.push((Sink::Tx(port), b.to_vec()));
    }
    fn up_to_twin(&mut self, port: usize, b: VecBuf, class: TwinClass) {
        let sink = match class.is_control() {
            true => Sink::TwinControl(port),
            false => Sink::Twin(port),
        };
        self.out.push((sink, b.to_vec()));
    }
    fn redirect(&mut self, owner: u16, port: usize, b: VecBuf) {
        self.out.push((Sink::Redirect(owner, port), b.to_vec()));
    }
    fn seen_neighbour(&mut self, ip: IpAddr, mac: EthernetAddress, port: usize) {
        self.seen.push((ip, mac, port));
    }
    fn asking_neighbour(&mut self, ip: IpAddr, port: usize) {
        self.asked.push((ip, port));
    }
    fn handed_over(&self) -> bool {
        self.handed_over
    }
}

/// The configuration generation, an engine, a node and the recorder.
pub struct World {
    pub ports: Vec<Port>,
    pub addrs: AddrTable,
    pub routes: RouteTable,
    pub neighs: NeighTable,
    pub table: ServiceTable,
    pub engine: Engine,
    pub node: Node<VecBuf>,
    pub io: Rec,
    pub now: u64,
}

pub fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub fn rs(addr: IpAddr, port: u16) -> RealServerConfig {
    RealServerConfig { addr, port, weight: 1, upper: 0, lower: 0, fwd: Default::default() }
}

pub fn rs_mode(addr: IpAddr, port: u16, fwd: FwdMode) -> RealServerConfig {
    RealServerConfig { fwd, ..rs(addr, port) }
}

pub fn udp(mut c: ServiceConfig) -> ServiceConfig {
    c.proto = Proto::Udp;
    c
}

pub fn svc(vip: IpAddr, vport: u16, servers: &[RealServerConfig]) -> ServiceConfig {
    let mut c = ServiceConfig::new(Proto::Tcp, vip, vport);
    c.sched = SchedKind::Rr;
    c.real_servers = servers.to_vec();
    c
}

impl World {
    pub fn new(workers: u32) -> World {
        let ports = vec![
            Port::physical("dpdk0", US0, 1500, true),
            Port::physical("dpdk1", US1, 1400, false),
            // VLAN 100 on dpdk0: its own addresses, routes and neighbours, tagged frames.
            Port { vlan: Some(Vlan { parent: 0, id: 100 }), ..Port::physical("dpdk0.100", US0, 1500, true) },
        ];
        let mut addrs = AddrTable::new();
        let p0 = PortId(0);
        let p1 = PortId(1);
        for (p, a, f) in [
            (p0, "192.0.2.1/32", AddrFlags::VIP),
            (p0, "2001:db8:f::1/128", AddrFlags::VIP),
            (p0, "198.51.100.1/24", AddrFlags::NONE),
            (p0, "198.51.100.2/24", AddrFlags::NONE),
            (p0, "2001:db8:c::1/64", AddrFlags::NONE),
            (p1, "10.1.0.1/8", AddrFlags::SAPOOL),
            (p1, "fd00::1/64", AddrFlags::SAPOOL),
            (PortId(2), "198.51.101.1/24", AddrFlags::NONE),
        ] {
            addrs.add(p, net(a), f).unwrap();
        }
        let mut routes = RouteTable::new();
        for r in addrs.connected_routes() {
            routes.add(r).unwrap();
        }
        routes.add(Route::kni_host(net("198.51.100.2/32"), p0)).unwrap();
        let mut neighs = NeighTable::new(64);
        neighs.insert_static(CIP.into(), CLIENT, p0, 0);
        neighs.insert_static(cip6().into(), CLIENT, p0, 0);
        neighs.insert_static(RIP.into(), SERVER, p1, 0);
        neighs.insert_static(rip6().into(), SERVER, p1, 0);
        let table = ServiceTable::build(
            &[
                svc(VIP.into(), 80, &[rs(RIP.into(), 8080)]),
                svc(vip6().into(), 80, &[rs(rip6().into(), 8080)]),
                svc(VIP.into(), 81, &[rs(RIP_UNRESOLVED.into(), 8080)]),
                svc(VIP.into(), 82, &[rs_mode(RIP.into(), 8080, FwdMode::Nat)]),
                svc(vip6().into(), 82, &[rs_mode(rip6().into(), 8080, FwdMode::Nat)]),
                svc(VIP.into(), 83, &[rs_mode(RIP.into(), 0, FwdMode::Dr)]),
                svc(vip6().into(), 83, &[rs_mode(rip6().into(), 0, FwdMode::Dr)]),
                udp(svc(VIP.into(), 53, &[rs_mode(RIP.into(), 5353, FwdMode::Nat)])),
                udp(svc(VIP.into(), 54, &[rs_mode(RIP.into(), 0, FwdMode::Dr)])),
                svc(VIP.into(), 84, &[rs_mode(RIP.into(), 0, FwdMode::Tunnel)]),
                svc(vip6().into(), 84, &[rs_mode(rip6().into(), 0, FwdMode::Tunnel)]),
                svc(vip6().into(), 85, &[rs(RIP.into(), 8080)]),
            ],
            None,
        )
        .unwrap();
        let cfg = EngineConfig {
            workers,
            conn_capacity: 64,
            local_addrs: vec![LocalAddrSet { service: None, lips: vec![LIP.into(), lip6().into()] }],
            hash_seed: Some(7),
            // The smallest port MTU, as rvsd sets it.
            grown_max_len: 1400,
            ..EngineConfig::default()
        };
        let mut engine = Engine::new(&cfg, 0).unwrap();
        engine.set_own_addrs(addrs.iter().map(|e| e.ip()));
        World { ports, addrs, routes, neighs, table, engine, node: Node::new(), io: Rec::default(), now: 0 }
    }

    /// The node's periodic duties at `t` ms.
    pub fn housekeeping(&mut self, t: u64) {
        let net = Net { ports: &self.ports, addrs: &self.addrs, routes: &self.routes, neighs: &self.neighs };
        self.node.housekeeping(&net, t, &mut self.io);
    }

    /// Sends what waited for neighbours the table now knows.
    pub fn release_resolved(&mut self) {
        let net = Net { ports: &self.ports, addrs: &self.addrs, routes: &self.routes, neighs: &self.neighs };
        self.node.release_resolved(&net, &mut self.io);
    }

    /// One frame in, through the node, the core and the node again.
    pub fn frame(&mut self, port: usize, input: &[u8]) {
        let net = Net { ports: &self.ports, addrs: &self.addrs, routes: &self.routes, neighs: &self.neighs };
        let mut port = port;
        let Some(mut b) = self.node.receive(&net, &mut port, VecBuf::new(input), &mut self.io) else { return };
        let v = self.engine.process(&self.table, &mut b, ETH_LEN, self.now);
        self.node.after_core(&net, port, b, v, &mut self.engine, &mut self.io);
        self.node.tend_hops(&mut self.engine);
    }

    pub fn drops(&self) -> Vec<(String, u64)> {
        let core = self.engine.stats_snapshot().drops.into_iter().filter(|(_, n)| *n > 0);
        let net = self.node.counters.drops.nonzero().map(|(r, n)| (r.name().to_string(), n));
        core.chain(net).collect()
    }
}

/// What must become of a frame.
pub enum Expect {
    /// These frames come out, in this order, and nothing is dropped.
    Out(Vec<(Sink, Want)>),
    /// Dropped for this reason (by name: the core's or the dataplane's), nothing out.
    Drop(&'static str),
    /// Queued for a neighbour: nothing out yet except the resolution request.
    Queued,
}

/// A check of an output frame's content.
pub type FrameCheck = Box<dyn Fn(&[u8])>;

/// An expected output frame: exact bytes, or a check of its content.
pub enum Want {
    Exact(Vec<u8>),
    Check(FrameCheck),
}

pub fn exact(sink: Sink, f: Vec<u8>) -> (Sink, Want) {
    (sink, Want::Exact(f))
}

pub fn check(sink: Sink, f: impl Fn(&[u8]) + 'static) -> (Sink, Want) {
    (sink, Want::Check(Box::new(f)))
}

/// A step of a table.
pub struct Step {
    pub desc: &'static str,
    pub port: usize,
    pub input: Vec<u8>,
    pub expect: Expect,
}

pub fn step(desc: &'static str, port: usize, input: Vec<u8>, expect: Expect) -> Step {
    Step { desc, port, input, expect }
}

pub fn hex(b: &[u8]) -> String {
    b.chunks(16)
        .map(|c| c.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Judges an Ethernet frame carrying IP with etherparse (checksums included).
pub fn judge_eth(f: &[u8]) -> fnat::judge::Seen {
    fnat::judge::judge(&f[ETH_LEN..])
}

pub fn run(w: &mut World, steps: Vec<Step>) {
    let mut seeds = fuzz_seeds::Table::default();
    for (i, s) in steps.into_iter().enumerate() {
        seeds.frame(s.port, &s.input);
        let before = w.drops();
        w.io.out.clear();
        w.frame(s.port, &s.input);
        let after = w.drops();
        let new_drops: Vec<(String, u64)> = after
            .iter()
            .map(|(k, v)| (k.clone(), v - before.iter().find(|(b, _)| b == k).map_or(0, |(_, n)| *n)))
            .filter(|(_, n)| *n > 0)
            .collect();
        let desc = s.desc;
        match s.expect {
            Expect::Out(want) => {
                assert!(new_drops.is_empty(), "step {i} ({desc}): unexpected drops {new_drops:?}");
                let got: Vec<Sink> = w.io.out.iter().map(|(k, _)| *k).collect();
                let sinks: Vec<Sink> = want.iter().map(|(k, _)| *k).collect();
                assert_eq!(got, sinks, "step {i} ({desc}): frames went elsewhere");
                for ((_, g), (_, wnt)) in w.io.out.iter().zip(want) {
                    match wnt {
                        Want::Exact(e) => {
                            assert_eq!(hex(g), hex(&e), "step {i} ({desc}): output differs (got, then expected)")
                        }
                        Want::Check(f) => f(g),
                    }
                }
            }
            Expect::Drop(reason) => {
                assert_eq!(new_drops, vec![(reason.to_string(), 1)], "step {i} ({desc}): drop reason");
                assert!(w.io.out.is_empty(), "step {i} ({desc}): a dropped frame sent {:?}", w.io.out);
            }
            Expect::Queued => {
                assert!(new_drops.is_empty(), "step {i} ({desc}): unexpected drops {new_drops:?}");
                assert!(w.io.out.is_empty(), "step {i} ({desc}): nothing leaves before resolution");
            }
        }
    }
}

pub fn arp(op: ArpOperation, smac: EthernetAddress, sip: Ipv4Addr, tmac: EthernetAddress, tip: Ipv4Addr) -> ArpRepr {
    ArpRepr {
        operation: op,
        source_hardware_addr: smac,
        source_protocol_addr: sip,
        target_hardware_addr: tmac,
        target_protocol_addr: tip,
    }
}

pub fn arp_frame(src: EthernetAddress, dst: EthernetAddress, r: ArpRepr) -> Vec<u8> {
    PacketBuilder::eth(src, dst).arp(r).build()
}

pub fn syn4(sport: u16, vport: u16) -> Vec<u8> {
    PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).tcp(sport, vport).seq(100).flags(TcpFlags::SYN).mss(1460).build()
}

pub fn toa4(ip: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut o = vec![254, 8];
    o.extend_from_slice(&port.to_be_bytes());
    o.extend_from_slice(&ip.octets());
    o
}

pub fn toa6(ip: Ipv6Addr, port: u16) -> Vec<u8> {
    let mut o = vec![254, 20];
    o.extend_from_slice(&port.to_be_bytes());
    o.extend_from_slice(&ip.octets());
    o
}

pub const SYN: TcpFlags = TcpFlags::SYN;
pub const ACK: TcpFlags = TcpFlags::ACK;
pub const SYNACK: TcpFlags = TcpFlags(0x12);
