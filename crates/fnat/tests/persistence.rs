//! Persistence templates as ipvsadm shows them: counted per real server
//! (`-L --persistent-conn`'s PersistConn) and listed as connections in state `NONE`
//! (`-L -c --persistent-conn`), until they expire and are reclaimed.

mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::*;
use fnat::engine::Verdict;
use fnat::persist::PersistConfig;
use fnat::service::ServiceTable;
use fnat::tcp_state::TcpState;
use fnat::types::Proto;
use wire::builder::PacketBuilder;

/// UDP VIP4:53 over RIP4_UDP and RIP4_B, round robin, persistent for 60 s per /24.
fn world() -> World {
    let mut s = svc(Proto::Udp, VIP4.into(), 53, &[rs(RIP4_UDP.into(), 53), rs(RIP4_B.into(), 53)]);
    s.persistence = Some(PersistConfig { timeout_s: 60, netmask_v4: 24, netmask_v6: 128 });
    let mut cfg = config(1024);
    cfg.persist_capacity = 64;
    World::with_services(&cfg, &[s])
}

fn query(w: &mut World, client: Ipv4Addr, port: u16) -> IpAddr {
    let p = PacketBuilder::ipv4(client, VIP4).udp(port, 53).payload(b"q").build();
    match w.packet(&p, 0).0 {
        Verdict::Forward { dst, .. } => dst,
        v => panic!("{v:?}"),
    }
}

/// The template count of each of the service's two servers.
fn counts(w: &World) -> [u64; 2] {
    let snap = w.engine.stats_snapshot();
    let d = &w.table.services()[0].dests;
    [0, 1].map(|i| snap.real_servers.get(d[i].id.0 as usize).map_or(0, |c| c.persist))
}

#[test]
fn templates_are_counted_per_server_and_listed_until_they_expire() {
    let mut w = world();
    w.engine.bind(&w.table);
    let (a, b) = (Ipv4Addr::new(198, 51, 100, 7), Ipv4Addr::new(203, 0, 113, 9));
    let first = query(&mut w, a, 1000);
    // Another client of the same /24, another port: the same server, the same template.
    assert_eq!(query(&mut w, Ipv4Addr::new(198, 51, 100, 200), 1001), first);
    let second = query(&mut w, b, 1000);
    assert_ne!(first, second, "rr gave the other /24 the other server");
    assert_eq!(w.engine.conns().len(), 3);
    assert_eq!(counts(&w), [1, 1], "one template per /24, on its server");

    w.now = 10_000;
    let mut listed = w.engine.list_templates(&w.table, 0, 100, w.now).0;
    listed.sort_by_key(|t| t.client);
    let want = |client: Ipv4Addr, real: IpAddr| {
        (SocketAddr::new(client.into(), 0), SocketAddr::new(VIP4.into(), 53), SocketAddr::new(real, 53))
    };
    let got: Vec<_> = listed.iter().map(|t| (t.client, t.virt, t.real)).collect();
    assert_eq!(got, [want(Ipv4Addr::new(198, 51, 100, 0), first), want(Ipv4Addr::new(203, 0, 113, 0), second)]);
    for t in &listed {
        assert!(t.template && t.proto == Proto::Udp && t.state == TcpState::None, "{t:?}");
        assert_eq!((t.state_name(), t.expires_ms, t.local.ip()), ("NONE", 50_000, IpAddr::from(Ipv4Addr::UNSPECIFIED)));
    }
    // Pages of one: each template once.
    let (p1, next) = w.engine.list_templates(&w.table, 0, 1, w.now);
    let (p2, end) = w.engine.list_templates(&w.table, next.expect("a second page"), 1, w.now);
    assert_eq!((p1.len(), p2.len(), end), (1, 1, None));
    assert_ne!(p1[0].client, p2[0].client);

    // A template whose server is gone is not listed (it will not be used).
    let mut gone = w.table.services()[0].config.clone();
    gone.real_servers.retain(|r| r.addr != second);
    let without = ServiceTable::build(&[gone], Some(&w.table)).unwrap();
    assert_eq!(w.engine.list_templates(&without, 0, 100, w.now).0.len(), 1);

    // Expired (60 s after its last use), then reclaimed: no longer listed or counted.
    w.now = 61_000;
    assert!(w.engine.list_templates(&w.table, 0, 100, w.now).0.is_empty());
    assert_eq!(w.engine.expire_persistence(w.now), 2);
    assert_eq!(counts(&w), [0, 0]);
}
