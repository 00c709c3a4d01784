//! One-packet scheduling (ipvsadm `-o/--ops`, keepalived `ops`) on a UDP service: each
//! datagram is scheduled on its own and no connection stays, so one sender's datagrams
//! spread over the servers; a server's reply finds no connection.

mod common;

use std::net::IpAddr;

use common::*;
use fnat::engine::Verdict;
use fnat::service::{ServiceConfig, ServiceTable};
use fnat::stats::DropReason;
use fnat::types::Proto;
use wire::builder::PacketBuilder;

/// UDP VIP4:514 (syslog) over RIP4_UDP and RIP4_B, round robin; `ops` as given.
fn world(ops: bool) -> World {
    let mut s = svc(Proto::Udp, VIP4.into(), 514, &[rs(RIP4_UDP.into(), 514), rs(RIP4_B.into(), 514)]);
    s.ops = ops;
    World::with_services(&config(1024), &[s])
}

fn send(w: &mut World) -> IpAddr {
    let p = PacketBuilder::ipv4(CIP4, VIP4).udp(40000, 514).payload(b"<13>hello").build();
    match w.packet(&p, 0).0 {
        Verdict::Forward { dst, .. } => dst,
        v => panic!("{v:?}"),
    }
}

#[test]
fn one_senders_datagrams_spread_and_no_connection_stays() {
    let mut w = world(true);
    let to: Vec<IpAddr> = (0..4).map(|_| send(&mut w)).collect();
    let (a, b) = (IpAddr::from(RIP4_UDP), IpAddr::from(RIP4_B));
    assert_eq!(to, [a, b, a, b]);
    assert_eq!(w.engine.conns().len(), 0, "no connection kept");
    assert_eq!(w.engine.stats().snapshot().total.conns, 4, "each datagram counted as a connection, as LVS");
    // The datagram itself is translated as any FullNAT one.
    let p = PacketBuilder::ipv4(CIP4, VIP4).udp(40000, 514).payload(b"<13>hello").build();
    let mut b = fnat::buf::VecBuf::new(&p);
    let v = w.engine.process(&w.table, &mut b, 0, w.now);
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    fnat::judge::judge(fnat::buf::PacketBuf::data(&b));
    // A server's answer finds no connection.
    let reply = PacketBuilder::ipv4(RIP4_UDP, LIP4).udp(514, 1025).payload(b"ack").build();
    assert!(matches!(w.packet(&reply, 0).0, Verdict::Drop(DropReason::ReplyNoConn)));
    // Without ops the flow keeps its server.
    let mut w = world(false);
    let to: Vec<IpAddr> = (0..4).map(|_| send(&mut w)).collect();
    assert!(to.iter().all(|d| *d == to[0]), "{to:?}");
    assert_eq!(w.engine.conns().len(), 1);
}

#[test]
fn ops_is_for_udp_services() {
    let mut s = ServiceConfig::new(Proto::Tcp, VIP4.into(), 80);
    s.ops = true;
    let e = ServiceTable::build(&[s], None).unwrap_err().to_string();
    assert_eq!(
        e,
        "tcp 192.0.2.1:80: one-packet scheduling (ops) is for UDP services (a TCP connection needs its state)"
    );
}
