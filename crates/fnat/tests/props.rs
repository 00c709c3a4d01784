//! Property tests: random open/close/expire sequences never leak pool entries, keys,
//! timers, counts or local ports.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use fnat::conn::{Addr, ConnKey, ConnRef};
use fnat::engine::synproxy::NO_CONN;
use fnat::engine::Verdict;
use fnat::sapool::PortRange;
use fnat::service::RsId;
use fnat::types::Proto;
use proptest::prelude::*;
use wire::builder::PacketBuilder;
use wire::TcpFlags;

const CAP: u32 = 12;
const PORTS: u16 = 5;

#[derive(Debug, Clone)]
enum Op {
    /// A client SYN (or UDP datagram) to service 0 (VIP4:80), 1 (VIP4:81) or UDP.
    Open { client: u16, svc: u8 },
    /// A TCP packet of an existing (or not) flow, from either side.
    Tcp { client: u16, svc: u8, server: bool, flags: u8 },
    /// Time passes; then expiry runs with a small budget.
    Advance { ms: u64, budget: u32 },
    /// Control: flush everything.
    Flush,
    /// Control: expire every connection of a real server.
    ExpireRs { rs: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..24u16, 0..3u8).prop_map(|(client, svc)| Op::Open { client, svc }),
        6 => (0..24u16, 0..2u8, any::<bool>(), prop::sample::select(vec![0x12u8, 0x10, 0x11, 0x04, 0x14, 0x18, 0x02]))
            .prop_map(|(client, svc, server, flags)| Op::Tcp { client, svc, server, flags }),
        3 => (0..200_000u64, 1..64u32).prop_map(|(ms, budget)| Op::Advance { ms, budget }),
        1 => Just(Op::Flush),
        1 => (0..3u32).prop_map(|rs| Op::ExpireRs { rs }),
    ]
}

fn vport(svc: u8) -> u16 {
    [80, 81, 53][svc as usize]
}

fn rip(svc: u8) -> Ipv4Addr {
    [RIP4, RIP4_B, RIP4_UDP][svc as usize]
}

fn apply(w: &mut World, op: &Op) {
    match *op {
        Op::Open { client, svc } => {
            let p = if svc == 2 {
                PacketBuilder::ipv4(CIP4, VIP4).udp(10_000 + client, 53).payload(b"q").build()
            } else {
                PacketBuilder::ipv4(CIP4, VIP4).tcp(10_000 + client, vport(svc)).flags(TcpFlags::SYN).build()
            };
            w.packet(&p, 0);
        }
        Op::Tcp { client, svc, server, flags } => {
            let k = ConnKey::new(Proto::Tcp, Addr::from(CIP4), 10_000 + client, Addr::from(VIP4), vport(svc));
            let p = if server {
                let lport = w.engine.conns().lookup(&k).map_or(2000, |h| w.engine.conns().get(h.conn).lport());
                PacketBuilder::ipv4(rip(svc), LIP4).tcp(8080, lport).flags(TcpFlags(flags)).build()
            } else {
                PacketBuilder::ipv4(CIP4, VIP4).tcp(10_000 + client, vport(svc)).flags(TcpFlags(flags)).build()
            };
            let (v, out) = w.packet(&p, 0);
            if let Verdict::Forward { .. } = v {
                judge(&out);
            }
        }
        Op::Advance { ms, budget } => {
            w.now += ms;
            w.engine.expire(w.now, budget);
        }
        Op::Flush => {
            w.engine.flush();
        }
        Op::ExpireRs { rs } => {
            let mut cur = Some(0);
            while let Some(c) = cur {
                cur = w.engine.expire_rs(RsId(rs), c, 5).1;
            }
        }
    }
}

/// What must hold after every step.
fn invariants(w: &World) {
    let n = w.engine.conns().len();
    assert_eq!(w.engine.conns().free(), CAP - n);
    assert_eq!(w.engine.conns().chain_stats().0, 2 * n as usize, "two keys per live connection");
    assert_eq!(w.engine.wheel().len(), n, "one timer per live connection");
    let t = w.engine.stats().total;
    assert_eq!(t.active + t.inactive, n as u64, "gauges match the table");
    let sched: u32 = (0..3).map(|i| w.engine.sched().counts(RsId(i))).map(|(a, b)| a + b).sum();
    assert_eq!(sched, n, "scheduler counts match the table");
    for (r, c) in w.engine.conns().iter() {
        assert_eq!(w.engine.conns().lookup(&c.inbound_key()).map(|h| h.conn), Some(r));
        assert_eq!(w.engine.conns().lookup(&c.outbound_key()).map(|h| h.conn), Some(r));
        assert!(w.engine.wheel().is_scheduled(r.index()));
        assert!((2000..2000 + PORTS).contains(&c.lport()));
    }
    // The pool's holder count of every local port is exact (a port it thinks unheld
    // is taken without asking the table).
    for p in 2000..2000 + PORTS {
        let held = w.engine.conns().iter().filter(|(_, c)| c.lip() == Addr::from(LIP4) && c.lport() == p).count();
        assert_eq!(w.engine.pools().holders(&Addr::from(LIP4), p), Some(held as u8), "holders of port {p}");
        for proto in [Proto::Tcp, Proto::Udp] {
            for rip in [RIP4, RIP4_B, RIP4_UDP] {
                for rport in [8080, 53] {
                    let out = ConnKey::new(proto, Addr::from(rip), rport, Addr::from(LIP4), p);
                    assert!(!w.engine.pools().known_free(&out) || !w.engine.conns().contains(&out), "{out:?}");
                }
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn pool_never_leaks(ops in prop::collection::vec(op(), 1..120)) {
        let mut cfg = config(CAP);
        cfg.port_range = PortRange { lo: 2000, hi: 2000 + PORTS - 1 };
        cfg.port_probes = 4;
        let mut w = World::new(&cfg);
        for o in &ops {
            apply(&mut w, o);
            invariants(&w);
        }
        // Everything expires eventually.
        w.now += 1_000_000;
        w.expire();
        invariants(&w);
        prop_assert_eq!(w.engine.conns().len(), 0);
        prop_assert_eq!(w.engine.conns().free(), CAP);
        prop_assert_eq!(w.engine.conns().chain_stats(), (0, 0));
        prop_assert!(w.engine.wheel().is_empty());
        // Every local port is reusable: PORTS connections towards one real server.
        let mut ports = std::collections::BTreeSet::new();
        for c in 0..PORTS {
            let p = PacketBuilder::ipv4(CIP4, VIP4).tcp(20_000 + c, 80).flags(TcpFlags::SYN).build();
            let (v, _) = w.packet(&p, 0);
            let Verdict::Forward { conn, .. } = v else { panic!("port {c} not reusable: {v:?}") };
            ports.insert(w.engine.conns().get(conn).lport());
        }
        prop_assert_eq!(ports.len(), PORTS as usize);
    }
}

/// A segment of one of the property's flows, from either side, with the options a
/// client or a server may send (or forge); a datagram for the UDP services.
#[derive(Debug, Clone)]
struct Segment {
    client: u16,
    /// `common::services()`: 0 and 1 TCP (VIP4:80, VIP4:81), 2 UDP (VIP4:53), 3 TCP
    /// ([VIP6]:80), 4 UDP ([VIP6]:53).
    svc: u8,
    server: bool,
    flags: u8,
    /// 0: none, 1: timestamps, 2: a client's own TOA, 3: a malformed option.
    opts: u8,
    /// IPv4 only: 0: none, 1: four NOPs, 2: a loose source route (refused).
    ip_opts: u8,
    payload: usize,
    /// Sequence and acknowledgment numbers, from a few values so that they meet (what
    /// a connection records of them: `Conn::closing_matches`).
    seq: u32,
    ack: u32,
}

fn segment() -> impl Strategy<Value = Segment> {
    let flags = prop::sample::select(vec![0x12u8, 0x10, 0x10, 0x18, 0x18, 0x30, 0x11, 0x04, 0x14, 0x02, 0x00]);
    let ip_opts = prop::sample::select(vec![0u8, 0, 0, 0, 1, 2]);
    let numbers = || prop::sample::select(vec![1000u32, 1000, 1001, 1020, 2000, 0x8000_0000]);
    (0..12u16, 0..5u8, any::<bool>(), flags, 0..4u8, ip_opts, 0..40usize, numbers(), numbers()).prop_map(
        |(client, svc, server, flags, opts, ip_opts, payload, seq, ack)| Segment {
            client,
            svc,
            server,
            flags,
            opts,
            ip_opts,
            payload,
            seq,
            ack,
        },
    )
}

fn build(w: &World, s: &Segment) -> Vec<u8> {
    let proto = if s.svc == 2 || s.svc == 4 { Proto::Udp } else { Proto::Tcp };
    let v6 = s.svc >= 3;
    let (cip, vip, lip, rip): (IpAddr, IpAddr, IpAddr, IpAddr) = match v6 {
        true => (cip6().into(), vip6().into(), lip6().into(), rip6().into()),
        false => (CIP4.into(), VIP4.into(), LIP4.into(), rip(s.svc).into()),
    };
    let (vport, rport) = match s.svc {
        0 | 3 => (80, 8080),
        1 => (81, 8080),
        _ => (53, 53),
    };
    let (cport, k) = (10_000 + s.client, ConnKey::new(proto, cip.into(), 10_000 + s.client, vip.into(), vport));
    let lport = w.engine.conns().lookup(&k).map_or(2000, |h| w.engine.conns().get(h.conn).lport());
    let ip = |src: IpAddr, dst: IpAddr| {
        let b = match (src, dst) {
            (IpAddr::V4(a), IpAddr::V4(b)) => PacketBuilder::ipv4(a, b),
            (IpAddr::V6(a), IpAddr::V6(b)) => PacketBuilder::ipv6(a, b),
            _ => unreachable!("one family per flow"),
        };
        match (v6, s.ip_opts) {
            (false, 1) => b.ipv4_options(&[1, 1, 1, 1]),
            (false, 2) => b.ipv4_options(&[131, 3, 4, 0]),
            _ => b,
        }
    };
    let ((src, sport), (dst, dport)) = match s.server {
        true => ((rip, rport), (lip, lport)),
        false => ((cip, cport), (vip, vport)),
    };
    let payload = vec![0x5a; s.payload];
    if proto == Proto::Udp {
        return ip(src, dst).udp(sport, dport).payload(&payload).build();
    }
    let mut t = ip(src, dst).tcp(sport, dport);
    t = match s.opts {
        1 => t.timestamps(7, 8),
        2 => t.option(&toa4(Ipv4Addr::new(198, 51, 100, 9), 4242)),
        3 => t.option(&[8, 1, 0, 0]),
        _ => t,
    };
    t.seq(s.seq).ack(s.ack).flags(TcpFlags(s.flags)).payload(&payload).build()
}

/// What a verdict of `Verdict::Forward` names as its connection.
fn forwarded_to(v: &Verdict) -> Option<ConnRef> {
    match v {
        Verdict::Forward { conn, .. } => Some(*conn),
        _ => None,
    }
}

/// The slots that hold a connection.
fn live_slots(w: &World) -> Vec<ConnRef> {
    w.engine.conns().iter().map(|(r, _)| r).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// The established path (`engine/established.rs`) gives every packet the same
    /// verdict and bytes as the general path, and leaves the same counters and
    /// connections, whatever the family, flags, options and order of segments and
    /// datagrams (the IPv4 UDP service with UOA in half the cases).
    #[test]
    fn fast_path_matches_the_general_path(
        segs in prop::collection::vec(segment(), 1..150),
        burst in 1..8usize,
        uoa: bool,
    ) {
        let mut cfg = config(64);
        cfg.port_range = PortRange { lo: 2000, hi: 2000 + PORTS - 1 };
        let mut svcs = services();
        if uoa {
            svcs[2].uoa = Some(fnat::uoa::UoaMode::Opp);
        }
        let mut fast = World::with_services(&cfg, &svcs);
        let mut general = World::with_services(&cfg, &svcs);
        general.engine.set_fast_path(false);
        for (i, chunk) in segs.chunks(burst).enumerate() {
            // One burst of the fast world against the general world one by one.
            let pkts: Vec<Vec<u8>> = chunk.iter().map(|s| build(&fast, s)).collect();
            let mut bufs: Vec<fnat::buf::VecBuf> = pkts.iter().map(|p| fnat::buf::VecBuf::new(p)).collect();
            let mut out = vec![Verdict::NotMine; bufs.len()];
            fast.engine.process_burst(&fast.table, &mut bufs, &vec![0; pkts.len()], fast.now, &mut out);
            // A verdict of a burst names no connection when a later packet of the burst
            // freed its slot (`Engine::forget_freed`); one by one, it names it. What
            // each packet of the general world freed: a connection in a slot that is
            // free after it, or that holds the connection it opened.
            let mut general_out = Vec::new();
            let mut freed = Vec::new();
            for (j, p) in pkts.iter().enumerate() {
                let (live, opened) = (live_slots(&general), general.engine.stats().snapshot().total.conns);
                let (v, bytes) = general.packet(p, 0);
                let opened = general.engine.stats().snapshot().total.conns > opened;
                let now_live = live_slots(&general);
                freed.push(live.into_iter().filter(|r| !now_live.contains(r) || (opened && forwarded_to(&v) == Some(*r))).collect::<Vec<_>>());
                general_out.push(v);
                prop_assert_eq!(fnat::buf::PacketBuf::data(&bufs[j]), &bytes[..], "bytes of segment {} of burst {}", j, i);
            }
            for (j, mut v) in general_out.into_iter().enumerate() {
                if let Verdict::Forward { conn, .. } = &mut v {
                    if freed[j + 1..].iter().any(|f| f.contains(conn)) {
                        *conn = ConnRef::from_index(NO_CONN);
                    }
                }
                prop_assert_eq!(out[j], v, "verdict of segment {} of burst {}: {:?}", j, i, &chunk[j]);
            }
            fast.now += 10;
            general.now += 10;
        }
        prop_assert_eq!(fast.engine.stats().snapshot(), general.engine.stats().snapshot());
        // What a connection is, not how the table chains it (a burst links its new
        // connections' outbound keys in another order).
        let conns = |w: &World| {
            w.engine
                .conns()
                .iter()
                .map(|(r, c)| {
                    (r, c.inbound_key(), c.outbound_key(), c.state(), c.flags(), c.expires(w.now), c.rs(), c.inner_ack(), c.outer_next())
                })
                .collect::<Vec<_>>()
        };
        prop_assert_eq!(conns(&fast), conns(&general));
    }
}
