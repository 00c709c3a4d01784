//! Shared helpers of the fnat integration tests: a small world (engine + services +
//! clock), a fixture runner, packet builders and checks of the fixture tables, and an
//! independent packet judge (etherparse).

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use fnat::buf::{PacketBuf, VecBuf};
use fnat::conn::{Addr, ConnKey};
use fnat::engine::config::{EngineConfig, LocalAddrSet};
use fnat::engine::{Engine, Verdict};
use fnat::sched::SchedKind;
use fnat::service::{RealServerConfig, ServiceConfig, ServiceTable};
use fnat::stats::DropReason;
use fnat::tcp_state::TcpState;
use fnat::types::{Millis, Proto};
use wire::builder::{PacketBuilder, TcpBuilder};
use wire::TcpFlags;

/// Writes each table's packets as fuzz seeds when `RVS_FUZZ_SEEDS` is set (`fuzz/seeds.sh`).
#[path = "../../../../fuzz/src/seeds.rs"]
mod fuzz_seeds;

pub const CIP4: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
pub const VIP4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
pub const LIP4: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
pub const RIP4: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
pub const RIP4_B: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 3);
pub const RIP4_UDP: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 2);

pub fn cip6() -> Ipv6Addr {
    "2001:db8:c::7".parse().unwrap()
}
pub fn vip6() -> Ipv6Addr {
    "2001:db8:f::1".parse().unwrap()
}
pub fn lip6() -> Ipv6Addr {
    "fd00:1::1".parse().unwrap()
}
pub fn rip6() -> Ipv6Addr {
    "fd00:2::1".parse().unwrap()
}

/// TCP flags: SYN.
pub const SYN: TcpFlags = TcpFlags::SYN;
/// TCP flags: ACK.
pub const ACK: TcpFlags = TcpFlags::ACK;
/// TCP flags: RST.
pub const RST: TcpFlags = TcpFlags::RST;
/// TCP flags: SYN and ACK.
pub const SYNACK: TcpFlags = TcpFlags(0x12);
/// TCP flags: FIN and ACK.
pub const FINACK: TcpFlags = TcpFlags(0x11);
/// TCP flags: PSH and ACK.
pub const PSHACK: TcpFlags = TcpFlags(0x18);
/// TCP flags: RST and ACK.
pub const RSTACK: TcpFlags = TcpFlags(0x14);

/// A TCP segment over IPv4 (no IP options, the builder's defaults), to finish.
pub fn t4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> TcpBuilder {
    PacketBuilder::ipv4(src, dst).tcp(sport, dport)
}

/// A TCP segment over IPv6 (no extension headers), to finish.
pub fn t6(src: Ipv6Addr, sport: u16, dst: Ipv6Addr, dport: u16) -> TcpBuilder {
    PacketBuilder::ipv6(src, dst).tcp(sport, dport)
}

/// The IPv4 TOA option (kind 254, length 8) the engine inserts: client port, address.
pub fn toa4(ip: Ipv4Addr, port: u16) -> Vec<u8> {
    let mut o = vec![254, 8];
    o.extend_from_slice(&port.to_be_bytes());
    o.extend_from_slice(&ip.octets());
    o
}

/// The IPv6 TOA option (kind 254, length 20): client port, address.
pub fn toa6(ip: Ipv6Addr, port: u16) -> Vec<u8> {
    let mut o = vec![254, 20];
    o.extend_from_slice(&port.to_be_bytes());
    o.extend_from_slice(&ip.octets());
    o
}

/// The state of the connection whose inbound key is given.
pub fn state_of(w: &World, proto: Proto, c: IpAddr, cport: u16, v: IpAddr, vport: u16) -> Option<TcpState> {
    let k = ConnKey::new(proto, Addr::from(c), cport, Addr::from(v), vport);
    w.engine.conns().lookup(&k).map(|h| w.engine.conns().get(h.conn).state())
}

/// A check step: exactly `n` connections live.
pub fn live(n: u32) -> Step {
    check("live connections", move |w| assert_eq!(w.engine.conns().len(), n))
}

/// A check step: the TCP connection CIP4:`cport` -> VIP4:80 exists and is in state `s`.
pub fn state4(desc: &'static str, cport: u16, s: TcpState) -> Step {
    check(desc, move |w| assert_eq!(state_of(w, Proto::Tcp, CIP4.into(), cport, VIP4.into(), 80), Some(s)))
}

/// A real server entry.
pub fn rs(addr: IpAddr, port: u16) -> RealServerConfig {
    RealServerConfig { addr, port, weight: 1, upper: 0, lower: 0, fwd: Default::default() }
}

/// A round-robin service.
pub fn svc(proto: Proto, vip: IpAddr, vport: u16, servers: &[RealServerConfig]) -> ServiceConfig {
    let mut c = ServiceConfig::new(proto, vip, vport);
    c.sched = SchedKind::Rr;
    c.real_servers = servers.to_vec();
    c
}

/// The standard services: TCP VIP4:80 -> RIP4:8080, TCP VIP4:81 -> RIP4_B:8080,
/// UDP VIP4:53 -> RIP4_UDP:53, TCP [VIP6]:80 -> [RIP6]:8080, UDP [VIP6]:53 -> [RIP6]:53.
pub fn services() -> Vec<ServiceConfig> {
    vec![
        svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 8080)]),
        svc(Proto::Tcp, VIP4.into(), 81, &[rs(RIP4_B.into(), 8080)]),
        svc(Proto::Udp, VIP4.into(), 53, &[rs(RIP4_UDP.into(), 53)]),
        svc(Proto::Tcp, vip6().into(), 80, &[rs(rip6().into(), 8080)]),
        svc(Proto::Udp, vip6().into(), 53, &[rs(rip6().into(), 53)]),
    ]
}

/// The standard engine configuration: one worker, LIP4 and LIP6 as the default set,
/// a fixed hash seed.
pub fn config(capacity: u32) -> EngineConfig {
    EngineConfig {
        conn_capacity: capacity,
        local_addrs: vec![LocalAddrSet { service: None, lips: vec![LIP4.into(), lip6().into()] }],
        hash_seed: Some(42),
        ..EngineConfig::default()
    }
}

/// An engine, its services and its clock.
pub struct World {
    pub engine: Engine,
    pub table: ServiceTable,
    pub now: Millis,
}

impl World {
    pub fn new(cfg: &EngineConfig) -> World {
        World::with_services(cfg, &services())
    }

    pub fn with_services(cfg: &EngineConfig, svcs: &[ServiceConfig]) -> World {
        let table = ServiceTable::build(svcs, None).expect("services");
        let engine = Engine::new(cfg, 0).expect("engine");
        World { engine, table, now: 0 }
    }

    /// Runs one packet (IP header at `l3`), returning the verdict and the packet.
    pub fn packet(&mut self, input: &[u8], l3: usize) -> (Verdict, Vec<u8>) {
        let mut b = VecBuf::new(input);
        let v = self.engine.process(&self.table, &mut b, l3, self.now);
        (v, b.data().to_vec())
    }

    /// Expires everything due at the current time; returns how many were freed.
    pub fn expire(&mut self) -> u32 {
        let mut freed = 0;
        loop {
            let r = self.engine.expire(self.now, 1 << 20);
            freed += r.freed;
            if !r.more {
                return freed;
            }
        }
    }
}

/// What a fixture expects of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Forwarded towards this address.
    Fwd(IpAddr),
    /// Dropped for this reason.
    Drop(DropReason),
    /// Handed back to the dataplane.
    NotMine,
    /// Handed to another worker.
    Redirect(u16),
}

impl Expect {
    fn matches(&self, v: &Verdict) -> bool {
        match (self, v) {
            (Expect::Fwd(a), Verdict::Forward { dst, .. }) => a == dst,
            (Expect::Drop(a), Verdict::Drop(b)) => a == b,
            (Expect::NotMine, Verdict::NotMine) => true,
            (Expect::Redirect(a), Verdict::Redirect { owner }) => a == owner,
            _ => false,
        }
    }
}

/// One step of a fixture table.
pub enum Step {
    /// A packet, its expected verdict and (for `Fwd`) the expected output packet.
    Pkt { desc: &'static str, input: Vec<u8>, l3: usize, expect: Expect, output: Option<Vec<u8>> },
    /// Set the clock (absolute ms) and expire what is due: exactly `freed` connections.
    At { desc: &'static str, now: Millis, freed: u32 },
    /// A free-form check of the world.
    Check { desc: &'static str, f: Box<dyn Fn(&World)> },
}

/// A packet step with the IP header at offset 0.
pub fn pkt(desc: &'static str, input: Vec<u8>, expect: Expect, output: Option<Vec<u8>>) -> Step {
    Step::Pkt { desc, input, l3: 0, expect, output }
}

/// A packet step that must be forwarded to `dst` as exactly `output`.
pub fn fwd(desc: &'static str, input: Vec<u8>, dst: impl Into<IpAddr>, output: Vec<u8>) -> Step {
    pkt(desc, input, Expect::Fwd(dst.into()), Some(output))
}

/// A clock step.
pub fn at(desc: &'static str, now: Millis, freed: u32) -> Step {
    Step::At { desc, now, freed }
}

/// A check step.
pub fn check(desc: &'static str, f: impl Fn(&World) + 'static) -> Step {
    Step::Check { desc, f: Box::new(f) }
}

/// Runs a fixture table against `w`, panicking with the step's description on the
/// first mismatch.
pub fn run(w: &mut World, steps: Vec<Step>) {
    let mut seeds = fuzz_seeds::Table::default();
    for (i, s) in steps.into_iter().enumerate() {
        match s {
            Step::Pkt { desc, input, l3, expect, output } => {
                seeds.packet(&input, l3);
                let (v, out) = w.packet(&input, l3);
                assert!(expect.matches(&v), "step {i} ({desc}): expected {expect:?}, got {v:?}");
                match &output {
                    Some(want) => {
                        judge(&out[l3..]);
                        assert_eq!(
                            hex(&out),
                            hex(want),
                            "step {i} ({desc}): output packet differs (got, then expected)"
                        );
                    }
                    None => {
                        if !matches!(expect, Expect::Fwd(_)) {
                            assert_eq!(out, input, "step {i} ({desc}): a packet not forwarded must stay untouched");
                        }
                    }
                }
            }
            Step::At { desc, now, freed } => {
                seeds.advance(now.saturating_sub(w.now));
                assert!(now >= w.now, "step {i} ({desc}): the clock goes forward");
                w.now = now;
                let got = w.expire();
                assert_eq!(got, freed, "step {i} ({desc}): connections freed at {now} ms");
            }
            Step::Check { desc, f } => {
                let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(w)));
                if let Err(e) = r {
                    panic!("step {i} ({desc}): check failed: {:?}", e.downcast_ref::<String>());
                }
            }
        }
    }
}

pub use fnat::judge::judge;

fn hex(b: &[u8]) -> String {
    b.chunks(16)
        .map(|c| c.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A handshake CIP4:40000 → VIP4:80 → RIP4:8080 (from LIP4:1025, the first local port):
/// the client's first sequence number 1000, the server's 5000; it ends ESTABLISHED.
pub fn handshake4() -> Vec<Step> {
    vec![
        fwd(
            "SYN",
            t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1000).flags(SYN).build(),
        ),
        fwd(
            "SYN-ACK",
            t4(RIP4, 8080, LIP4, 1025).seq(5000).ack(1001).flags(SYNACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5000).ack(1001).flags(SYNACK).build(),
        ),
        pkt("ACK", t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(ACK).build(), Expect::Fwd(RIP4.into()), None),
        state4("established", 40000, TcpState::Established),
    ]
}
