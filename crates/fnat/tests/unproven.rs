//! Unproven connections (engine `tables`, "Unproven connections"): where nothing from
//! the server passes (DR, TUN) or proves the client (UDP), a forger's SYN then ACK, or
//! one datagram, from a made-up source used to hold a pool slot for the whole timeout
//! (900 s, 300 s), and a full pool refused every new connection (`pool_full`). Now a
//! new connection evicts the oldest connection whose client has sent fewer than
//! `PROVEN_AFTER` packets; one that has sent that many is never evicted. Whole frames in.

mod common;

use std::net::Ipv4Addr;

use common::*;
use fnat::engine::PROVEN_AFTER;
use fnat::sapool::PortRange;
use fnat::stats::{ConnEvent, DropReason};
use fnat::tcp_state::TcpState;
use fnat::types::{FwdMode, Millis, Proto};
use wire::builder::PacketBuilder;

/// The pool of these tests.
const POOL: u32 = 64;

/// A made-up source of the forger's (11.0.0.0/16, none of them the client's).
fn forged(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(11, 0, (i / 250) as u8, (i % 250 + 1) as u8)
}

/// A DR service VIP4:80 → RIP4:80 on a pool of [`POOL`].
fn dr_world() -> World {
    let mut dr = svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 80)]);
    dr.real_servers[0].fwd = FwdMode::Dr;
    World::with_services(&config(POOL), &[dr])
}

/// A DR client packet from `src:sport` with `flags`, forwarded unchanged to RIP4.
fn dr_packet(desc: &'static str, src: Ipv4Addr, sport: u16, seq: u32, flags: wire::TcpFlags) -> Step {
    let f = t4(src, sport, VIP4, 80).seq(seq).ack(5001).flags(flags).build();
    fwd(desc, f.clone(), RIP4, f)
}

/// A blind forger's handshake from `src`: SYN, then an ACK of a number it made up.
fn forged_handshake(src: Ipv4Addr) -> [Step; 2] {
    [
        pkt("forged SYN", t4(src, 4000, VIP4, 80).seq(1).flags(SYN).build(), Expect::Fwd(RIP4.into()), None),
        dr_packet("forged ACK", src, 4000, 2, ACK),
    ]
}

#[test]
fn dr_forged_handshakes_cannot_fill_the_pool_or_evict_a_proven_connection() {
    let mut w = dr_world();
    let mut steps = vec![
        pkt("busy client: SYN", t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).build(), Expect::Fwd(RIP4.into()), None),
        dr_packet("busy client: ACK", CIP4, 40000, 1001, ACK),
        check("unproven after two packets", |w| assert_eq!(w.engine.unproven(), 1)),
    ];
    for _ in 2..PROVEN_AFTER {
        steps.push(dr_packet("busy client: an ACK", CIP4, 40000, 1001, ACK));
    }
    steps.extend([
        check("proven after PROVEN_AFTER packets", |w| assert_eq!(w.engine.unproven(), 0)),
        pkt(
            "quiet client: SYN",
            t4(CIP4, 40001, VIP4, 80).seq(1000).flags(SYN).build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        dr_packet("quiet client: ACK", CIP4, 40001, 1001, ACK),
        dr_packet("quiet client: a request", CIP4, 40001, 1001, PSHACK),
    ]);
    // The forger fills the rest of the pool, each connection ESTABLISHED (900 s).
    for i in 0..POOL - 2 {
        steps.extend(forged_handshake(forged(i)));
    }
    steps.extend([
        live(POOL),
        check("every forged connection established and unproven", |w| {
            assert_eq!(w.engine.unproven(), POOL - 1);
            assert_eq!(state_of(w, Proto::Tcp, forged(7).into(), 4000, VIP4.into(), 80), Some(TcpState::Established));
        }),
    ]);
    // Twice as many again, 32 every two seconds: each takes the place of the oldest
    // unproven connection idle for a second.
    for i in POOL..3 * POOL {
        if i % 32 == 0 {
            steps.push(at("two seconds later", Millis::from(i / 32) * 2_000, 0));
        }
        steps.extend(forged_handshake(forged(i)));
    }
    steps.extend([
        at("two seconds later", 14_000, 0),
        live(POOL),
        check("the oldest unproven went first, counted; nothing refused", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::UnprovenEvicted), 2 * POOL as u64);
            assert_eq!(w.engine.stats().drops(DropReason::PoolFull), 0);
            assert_eq!(w.engine.stats_snapshot().events["unproven_evicted"], 2 * POOL as u64);
            assert_eq!(state_of(w, Proto::Tcp, CIP4.into(), 40001, VIP4.into(), 80), None);
        }),
        dr_packet("the busy client's connection still forwards", CIP4, 40000, 1001, PSHACK),
        pkt(
            "the quiet client's was evicted: its next segment finds none",
            t4(CIP4, 40001, VIP4, 80).seq(1006).ack(5001).flags(PSHACK).build(),
            Expect::Drop(DropReason::NoConn),
            None,
        ),
        pkt(
            "a real client's new connection still opens",
            t4(CIP4, 40002, VIP4, 80).seq(1000).flags(SYN).build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        state4("as SYN_RECV", 40002, TcpState::SynRecv),
        at("800 s later the new SYN_RECV one has expired", 800_000, 1),
        state4("the busy one lives (900 s from its last packet)", 40000, TcpState::Established),
    ]);
    run(&mut w, steps);
}

#[test]
fn a_dr_connection_waits_as_half_open_then_as_unproven() {
    use fnat::stats::TableGauges;
    let gauges = |half_open, unproven| {
        move |w: &World| assert_eq!(w.engine.table_gauges(), TableGauges { half_open, unproven, synced: 0 })
    };
    let syn = |sport| t4(CIP4, sport, VIP4, 80).seq(1000).flags(SYN).build();
    let mut w = dr_world();
    let mut steps = vec![
        pkt("SYN", syn(40000), Expect::Fwd(RIP4.into()), None),
        check("half-open, not yet on the unproven list", gauges(1, 0)),
        dr_packet("ACK", CIP4, 40000, 1001, ACK),
        check("past SYN_RECV: unproven", gauges(0, 1)),
        pkt("another client's SYN", syn(40001), Expect::Fwd(RIP4.into()), None),
        check("one of each", gauges(1, 1)),
    ];
    // Its client proves itself while the connection is still half-open (SYNs again).
    for _ in 1..PROVEN_AFTER {
        steps.push(pkt("the SYN again", syn(40001), Expect::Fwd(RIP4.into()), None));
    }
    steps.extend([
        state4("still SYN_RECV", 40001, TcpState::SynRecv),
        dr_packet("its ACK", CIP4, 40001, 1001, ACK),
        check("proven: it never joins the unproven list", gauges(0, 1)),
    ]);
    run(&mut w, steps);
}

/// A pool full of forged half-open DR connections (SYNs alone, each within the
/// `SYN_RECV` limit) still gives way to a new flow of another service once they are
/// idle: they are unproven though on the half-open list.
#[test]
fn idle_forged_half_open_dr_connections_give_way_in_a_full_pool() {
    let mut dr = svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 80)]);
    dr.real_servers[0].fwd = FwdMode::Dr;
    let udp = svc(Proto::Udp, VIP4.into(), 53, &[rs(RIP4_UDP.into(), 53)]);
    let mut w = World::with_services(&config(POOL), &[dr, udp]);
    let mut steps: Vec<Step> = (0..POOL)
        .map(|i| {
            pkt("forged SYN", t4(forged(i), 4000, VIP4, 80).seq(1).flags(SYN).build(), Expect::Fwd(RIP4.into()), None)
        })
        .collect();
    steps.extend([
        live(POOL),
        check("all half-open", |w| assert_eq!(w.engine.syn_recv().0, POOL)),
        pkt("a DNS query at once: none idle yet", datagram(CIP4, 5000), Expect::Drop(DropReason::PoolFull), None),
        at("two seconds later", 2_000, 0),
        pkt("a DNS query", datagram(CIP4, 5000), Expect::Fwd(RIP4_UDP.into()), None),
        check("the oldest forged one gave way", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::UnprovenEvicted), 1);
            assert_eq!(state_of(w, Proto::Tcp, forged(0).into(), 4000, VIP4.into(), 80), None);
        }),
    ]);
    run(&mut w, steps);
}

/// A UDP datagram from `src:sport` to VIP4:53.
fn datagram(src: Ipv4Addr, sport: u16) -> Vec<u8> {
    PacketBuilder::ipv4(src, VIP4).udp(sport, 53).payload(b"q").build()
}

#[test]
fn forged_udp_flows_cannot_fill_the_pool_or_the_local_ports() {
    let mut cfg = config(POOL);
    // Four local ports towards the server: the forger takes them all first.
    cfg.port_range = PortRange { lo: 2000, hi: 2003 };
    let mut w = World::new(&cfg);
    let to_server = Expect::Fwd(RIP4_UDP.into());
    let mut steps = vec![];
    for _ in 0..PROVEN_AFTER {
        steps.push(pkt("a client's flow of many datagrams", datagram(CIP4, 5000), to_server, None));
    }
    steps.push(check("proven", |w| assert_eq!(w.engine.unproven(), 0)));
    for i in 0..3 {
        steps.push(pkt("a forged datagram", datagram(forged(i), 6000), to_server, None));
    }
    steps.extend([
        check("every local port taken", |w| assert_eq!(w.engine.unproven(), 3)),
        at("two seconds later", 2_000, 0),
        pkt("a new flow takes the oldest idle forged flow's port", datagram(CIP4, 5001), to_server, None),
        check("counted", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::UnprovenEvicted), 1);
            assert_eq!(w.engine.stats().drops(DropReason::NoLocalPort), 0);
            assert_eq!(state_of(w, Proto::Udp, forged(0).into(), 6000, VIP4.into(), 53), None);
        }),
        pkt("the proven flow goes on", datagram(CIP4, 5000), to_server, None),
        check("nor was it the one evicted", |w| {
            assert_eq!(state_of(w, Proto::Udp, CIP4.into(), 5000, VIP4.into(), 53), Some(TcpState::None));
        }),
    ]);
    run(&mut w, steps);
}

#[test]
fn forged_udp_flows_give_way_to_new_ones_when_the_pool_is_full() {
    let mut w = World::new(&config(POOL));
    let to_server = Expect::Fwd(RIP4_UDP.into());
    let mut steps = vec![];
    for _ in 0..PROVEN_AFTER {
        steps.push(pkt("a client's flow of many datagrams", datagram(CIP4, 5000), to_server, None));
    }
    for i in 0..3 * POOL {
        if i % 32 == 0 {
            steps.push(at("two seconds later", Millis::from(i / 32) * 2_000, 0));
        }
        steps.push(pkt("a forged datagram", datagram(forged(i), 6000), to_server, None));
    }
    steps.extend([
        at("two seconds later", 14_000, 0),
        live(POOL),
        check("the oldest forged flows gave way, nothing refused", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::UnprovenEvicted), 2 * POOL as u64 + 1);
            assert_eq!(w.engine.stats().drops(DropReason::PoolFull), 0);
            assert_eq!(w.engine.unproven(), POOL - 1);
        }),
        pkt("a real client's new flow", datagram(CIP4, 5001), to_server, None),
        pkt("the proven flow goes on", datagram(CIP4, 5000), to_server, None),
        check("both there", |w| {
            assert!(state_of(w, Proto::Udp, CIP4.into(), 5000, VIP4.into(), 53).is_some());
            assert!(state_of(w, Proto::Udp, CIP4.into(), 5001, VIP4.into(), 53).is_some());
        }),
    ]);
    run(&mut w, steps);
}

/// A server that answers a forged source, and goes on sending to it, does not keep the
/// flow from giving way: only its client's packets count as activity for that (the
/// server's packets of an unproven flow are sent wherever the forger chose), and they
/// do keep it.
#[test]
fn a_forged_flow_its_server_keeps_sending_to_still_gives_way() {
    let mut w = World::new(&config(POOL));
    let to_server = Expect::Fwd(RIP4_UDP.into());
    run(&mut w, (0..POOL).map(|i| pkt("a forged datagram", datagram(forged(i), 6000), to_server, None)).collect());
    // The server streams to every forged source, a datagram each every 250 ms.
    let replies: Vec<(Ipv4Addr, Vec<u8>)> = w
        .engine
        .conns()
        .iter()
        .map(|(_, c)| {
            let (std::net::IpAddr::V4(cip), std::net::IpAddr::V4(lip)) = (c.cip().ip(), c.lip().ip()) else {
                unreachable!("IPv4 flows")
            };
            (cip, PacketBuilder::ipv4(RIP4_UDP, lip).udp(53, c.lport()).payload(b"stream").build())
        })
        .collect();
    let mut steps = vec![];
    for t in 1..=8 {
        steps.push(at("250 ms later", t * 250, 0));
        for (cip, r) in &replies {
            steps.push(pkt("the server's datagram to the forged source", r.clone(), Expect::Fwd((*cip).into()), None));
        }
        if t % 2 == 0 {
            // The oldest flow's client sends too (fewer than PROVEN_AFTER datagrams).
            steps.push(pkt("its client's own datagram", datagram(forged(0), 6000), to_server, None));
        }
    }
    steps.extend([
        pkt("a new client's flow in the full pool", datagram(CIP4, 5000), to_server, None),
        check("the oldest flow whose client is silent gave way, its server sending to it still", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::UnprovenEvicted), 1);
            assert_eq!(w.engine.unproven(), POOL, "the oldest is still unproven");
            assert!(state_of(w, Proto::Udp, forged(0).into(), 6000, VIP4.into(), 53).is_some(), "its client sends");
            assert_eq!(state_of(w, Proto::Udp, forged(1).into(), 6000, VIP4.into(), 53), None);
        }),
    ]);
    run(&mut w, steps);
}

/// A flood towards a service no server would take (its one server drained) evicts
/// nothing: it is refused before room is made in the full pool, and the room is still
/// there for a flow a server takes.
#[test]
fn a_flow_no_server_would_take_evicts_nothing() {
    let mut dr = svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 80)]);
    dr.real_servers[0].fwd = FwdMode::Dr;
    let mut drained = svc(Proto::Tcp, VIP4.into(), 81, &[rs(RIP4.into(), 81)]);
    drained.real_servers[0].fwd = FwdMode::Dr;
    drained.real_servers[0].weight = 0;
    // Persistent, but ending a drained server's connections: no template reaches it.
    let mut quiescent = drained.clone();
    quiescent.vport = 82;
    quiescent.real_servers[0].port = 82;
    quiescent.persistence = Some(fnat::persist::PersistConfig::default());
    quiescent.expire_quiescent = true;
    let mut w = World::with_services(&config(POOL), &[dr, drained, quiescent]);
    let mut steps = vec![];
    for i in 0..POOL {
        steps.extend(forged_handshake(forged(i)));
    }
    steps.extend([live(POOL), at("two seconds later: every one idle", 2_000, 0)]);
    for i in 0..16 {
        let syn = t4(forged(POOL + i), 4000, VIP4, 81 + (i % 2) as u16).seq(1).flags(SYN).build();
        steps.push(pkt("a SYN to a drained service", syn, Expect::Drop(DropReason::NoRealServer), None));
    }
    steps.extend([
        live(POOL),
        check("nothing evicted for them", |w| assert_eq!(w.engine.stats().events(ConnEvent::UnprovenEvicted), 0)),
        pkt(
            "a SYN to the live service takes an idle one's place",
            t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        check("one evicted", |w| assert_eq!(w.engine.stats().events(ConnEvent::UnprovenEvicted), 1)),
    ]);
    run(&mut w, steps);
}

/// A flow active within the last second is not evicted (a live flow's, or one this very
/// burst opened): a full pool of them refuses the new flow until one has been idle for
/// a second.
#[test]
fn only_a_connection_idle_for_a_second_gives_way() {
    let mut w = World::new(&config(POOL));
    let to_server = Expect::Fwd(RIP4_UDP.into());
    let mut steps = vec![];
    for i in 0..POOL {
        steps.push(pkt("a forged datagram", datagram(forged(i), 6000), to_server, None));
    }
    steps.extend([
        at("half a second later", 500, 0),
        pkt(
            "the pool is full of flows active just now",
            datagram(CIP4, 5000),
            Expect::Drop(DropReason::PoolFull),
            None,
        ),
        check("none evicted", |w| assert_eq!(w.engine.stats().events(ConnEvent::UnprovenEvicted), 0)),
        pkt("the oldest is active again", datagram(forged(0), 6000), to_server, None),
        at("a second and a half", 1_500, 0),
        pkt("now the oldest idle one gives way", datagram(CIP4, 5000), to_server, None),
        check("the eight the refusal looked at went to the back: the ninth gave way", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::UnprovenEvicted), 1);
            for i in 0..8 {
                assert!(state_of(w, Proto::Udp, forged(i).into(), 6000, VIP4.into(), 53).is_some());
            }
            assert!(state_of(w, Proto::Udp, forged(8).into(), 6000, VIP4.into(), 53).is_none());
        }),
    ]);
    run(&mut w, steps);
}

/// A packet of a burst that frees a connection whose slot an earlier packet's verdict
/// names (here a client's SYN reusing its TIME_WAIT connection, whose final ACK came
/// just before it): that verdict names no connection any more, so that the dataplane
/// caches no next hop of it in the new connection that took the slot.
#[test]
fn a_verdict_forgets_a_connection_a_later_packet_of_its_burst_freed() {
    use fnat::buf::VecBuf;
    use fnat::conn::ConnRef;
    use fnat::engine::Verdict;
    let mut w = World::new(&config(POOL));
    let mut steps = handshake4();
    steps.extend([
        pkt(
            "client FIN",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(FINACK).build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        pkt(
            "server FIN",
            t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1002).flags(FINACK).build(),
            Expect::Fwd(CIP4.into()),
            None,
        ),
        state4("TIME_WAIT", 40000, TcpState::TimeWait),
    ]);
    run(&mut w, steps);
    let old = w.engine.conns().lookup(&fnat::conn::ConnKey::new(Proto::Tcp, CIP4.into(), 40000, VIP4.into(), 80));
    let old = old.expect("the connection").conn;
    let frames = [
        t4(CIP4, 40000, VIP4, 80).seq(1002).ack(5002).flags(ACK).build(),
        t4(CIP4, 40000, VIP4, 80).seq(9000).flags(SYN).build(),
    ];
    let mut bufs: Vec<VecBuf> = frames.iter().map(|f| VecBuf::new(f)).collect();
    let mut out = [Verdict::NotMine; 2];
    w.engine.process_burst(&w.table, &mut bufs, &[0, 0], 1_000, &mut out);
    let conn_of = |v: &Verdict| match v {
        Verdict::Forward { conn, .. } => *conn,
        other => panic!("forwarded: {other:?}"),
    };
    assert_eq!(w.engine.stats().events(ConnEvent::ConnReused), 1, "the SYN reused the connection");
    assert_eq!(conn_of(&out[1]), old, "the new connection took the freed slot");
    assert_eq!(conn_of(&out[0]), ConnRef::from_index(u32::MAX), "the final ACK's verdict forgot it");
}
