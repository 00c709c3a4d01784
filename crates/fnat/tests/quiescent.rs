//! `expire_quiescent` (DPVS's `--expire-quiescent`): whole frames in and out. A
//! connection whose real server is drained (weight 0) ends at its next packet: a TCP
//! segment is answered with an RST to its sender at the sender's own acknowledgment
//! number, a new SYN or a client's datagram goes to a server in scheduling; without
//! the option the connection runs on.

mod common;

use common::*;
use fnat::engine::Verdict;
use fnat::service::{ServiceConfig, ServiceTable};
use fnat::stats::{ConnEvent, DropReason};
use fnat::types::Proto;
use wire::builder::PacketBuilder;

/// VIP4:80 over RIP4 and RIP4_B (rr: the first connection goes to RIP4), and the UDP
/// VIP4:53 over RIP4_UDP and RIP4_B; `quiesce` sets the option on both.
fn services_with(quiesce: bool, rip4_weight: u32) -> Vec<ServiceConfig> {
    let mut s = services();
    s[0].real_servers = vec![rs(RIP4.into(), 8080), rs(RIP4_B.into(), 8080)];
    s[2].real_servers = vec![rs(RIP4_UDP.into(), 53), rs(RIP4_B.into(), 53)];
    s[0].real_servers[0].weight = rip4_weight;
    s[2].real_servers[0].weight = rip4_weight;
    s[0].expire_quiescent = quiesce;
    s[2].expire_quiescent = quiesce;
    s
}

/// Drains RIP4 (and RIP4_UDP) in a new generation.
fn drain(w: &mut World, quiesce: bool) {
    w.table = ServiceTable::build(&services_with(quiesce, 0), Some(&w.table)).unwrap();
}

fn open(w: &mut World) -> u16 {
    run(w, handshake4());
    1025
}

#[test]
fn a_drained_servers_connection_ends_with_an_rst_to_whoever_speaks_next() {
    let mut w = World::with_services(&config(1024), &services_with(true, 1));
    open(&mut w);
    drain(&mut w, true);
    let steps = vec![
        fwd(
            "client data on the drained server's connection: an RST back, at the client's ACK",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(b"GET /").build(),
            CIP4,
            PacketBuilder::ipv4(VIP4, CIP4).dont_frag().tcp(80, 40000).seq(5001).flags(RST).window(0).build(),
        ),
        check("the connection is gone", |w| {
            assert_eq!(w.engine.conns().len(), 0);
            assert_eq!(w.engine.stats().events(ConnEvent::QuiescentExpired), 1);
        }),
        pkt(
            "the client's new SYN goes to the server in scheduling",
            t4(CIP4, 40001, VIP4, 80).seq(2000).flags(SYN).build(),
            Expect::Fwd(RIP4_B.into()),
            None,
        ),
    ];
    run(&mut w, steps);
}

#[test]
fn the_server_speaking_first_gets_the_rst_and_an_rst_passes() {
    let mut w = World::with_services(&config(1024), &services_with(true, 1));
    open(&mut w);
    drain(&mut w, true);
    let steps = vec![fwd(
        "server data: an RST back to the server, at its ACK",
        t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1001).flags(PSHACK).payload(b"HTTP").build(),
        RIP4,
        PacketBuilder::ipv4(LIP4, RIP4).dont_frag().tcp(1025, 8080).seq(1001).flags(RST).window(0).build(),
    )];
    run(&mut w, steps);
    assert_eq!(w.engine.conns().len(), 0);

    let mut w = World::with_services(&config(1024), &services_with(true, 1));
    open(&mut w);
    drain(&mut w, true);
    let (v, _) = w.packet(&t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(RSTACK).build(), 0);
    assert!(matches!(v, Verdict::Forward { dst, .. } if dst == std::net::IpAddr::from(RIP4)), "{v:?}");
    assert_eq!(w.engine.stats().events(ConnEvent::QuiescentExpired), 0);
}

#[test]
fn without_the_option_a_drained_servers_connection_runs_on() {
    let mut w = World::with_services(&config(1024), &services_with(false, 1));
    open(&mut w);
    drain(&mut w, false);
    let (v, _) = w.packet(&t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(b"GET /").build(), 0);
    assert!(matches!(v, Verdict::Forward { dst, .. } if dst == std::net::IpAddr::from(RIP4)), "{v:?}");
}

#[test]
fn a_udp_flow_moves_without_losing_the_datagram() {
    let mut w = World::with_services(&config(1024), &services_with(true, 1));
    let q = |w: &mut World, sport: u16| {
        let p = PacketBuilder::ipv4(CIP4, VIP4).udp(sport, 53).payload(b"query").build();
        match w.packet(&p, 0).0 {
            Verdict::Forward { dst, .. } => dst,
            v => panic!("{v:?}"),
        }
    };
    assert_eq!(q(&mut w, 5353), std::net::IpAddr::from(RIP4_UDP));
    let lport = {
        let (list, _) = w.engine.list(0, 16, w.now);
        list.iter().find(|c| c.proto == Proto::Udp).expect("flow").local.port()
    };
    drain(&mut w, true);
    // The drained server speaks first: its datagram goes with the connection.
    let late = PacketBuilder::ipv4(RIP4_UDP, LIP4).udp(53, lport).payload(b"answer").build();
    assert!(matches!(w.packet(&late, 0).0, Verdict::Drop(DropReason::Quiescent)));
    assert_eq!(w.engine.conns().len(), 0);
    // The client's next datagram: to the server in scheduling, not lost.
    assert_eq!(q(&mut w, 5353), std::net::IpAddr::from(RIP4_B));
    // A flow to the drained server that the client speaks on first moves the same way.
    let mut w = World::with_services(&config(1024), &services_with(true, 1));
    assert_eq!(q(&mut w, 5354), std::net::IpAddr::from(RIP4_UDP));
    drain(&mut w, true);
    assert_eq!(q(&mut w, 5354), std::net::IpAddr::from(RIP4_B), "the same flow, now to the server in scheduling");
    assert_eq!(w.engine.stats().events(ConnEvent::QuiescentExpired), 1);
}
