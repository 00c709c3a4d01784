//! Whole-frame fixtures for the client's address on UDP FullNAT services:
//! - DPVS's UOA: the first three datagrams of a connection reach the server with the
//!   client's address (in the IPv4 header's options, or in a protocol-248 shim
//!   header), the rest and the replies as usual; the option decoded with `wire::uoa`.
//! - The PROXY protocol, version 2: a header (DGRAM) before every datagram's payload.
//!
//! Each output is judged by etherparse where it can read it.

mod world;

use wire::uoa::{find_uoa, OppPacket};
use world::*;

fn service(mode: fnat::uoa::UoaMode) -> ServiceTable {
    let mut c = udp(svc(VIP.into(), 53, &[rs(RIP.into(), 5353)]));
    c.uoa = Some(mode);
    ServiceTable::build(&[c], None).unwrap()
}

fn query(sport: u16, body: &[u8]) -> Vec<u8> {
    PacketBuilder::eth(CLIENT, US0).ipv4(CIP, VIP).ttl(64).udp(sport, 53).payload(body).build()
}

/// The UDP datagram of a frame out of dpdk1, with the option the IP layer carried.
fn carried(f: &[u8]) -> (Option<std::net::SocketAddr>, Vec<u8>) {
    let ip = &f[ETH_LEN..];
    let hlen = usize::from(ip[0] & 0x0f) * 4;
    match ip[9] {
        17 => (find_uoa(&ip[20..hlen]).unwrap().map(|u| u.src), ip[hlen..].to_vec()),
        248 => {
            let opp = OppPacket::new_checked(&ip[hlen..]).unwrap();
            (opp.uoa().unwrap().map(|u| u.src), opp.payload().to_vec())
        }
        p => panic!("protocol {p}"),
    }
}

#[test]
fn the_first_three_datagrams_carry_the_client() {
    for mode in [fnat::uoa::UoaMode::Ipo, fnat::uoa::UoaMode::Opp] {
        let mut w = World::new(1);
        w.table = service(mode);
        let client = std::net::SocketAddr::new(CIP.into(), 5000);
        let mut sport = 0;
        for i in 0..5u8 {
            let body = [b'q', i];
            run(
                &mut w,
                vec![step(
                    "a datagram of one flow",
                    0,
                    query(5000, &body),
                    Expect::Out(vec![check(Sink::Tx(1), move |f| {
                        let (uoa, udp) = carried(f);
                        let want = (i < 3).then_some(client);
                        assert_eq!(uoa, want, "{mode}: datagram {i}");
                        let u = wire::UdpPacket::new_checked(&udp[..]).unwrap();
                        assert_eq!((u.dst_port(), u.payload()), (5353, &body[..]), "{mode}: the datagram itself");
                        if mode == fnat::uoa::UoaMode::Ipo || uoa.is_none() {
                            // etherparse reads IPv4 options; not protocol 248.
                            let s = judge_eth(f);
                            assert_eq!((s.src, s.dst), (LIP.into(), RIP.into()));
                        }
                    })]),
                )],
            );
            sport = judge_or_opp_sport(&w.io.out[0].1);
        }
        // The reply is translated as usual (no option back).
        let reply = PacketBuilder::eth(SERVER, US1).ipv4(RIP, LIP).ttl(64).udp(5353, sport).payload(b"answer").build();
        run(
            &mut w,
            vec![step(
                "the server's answer",
                1,
                reply,
                Expect::Out(vec![judged_exact(
                    Sink::Tx(0),
                    PacketBuilder::eth(US0, CLIENT).ipv4(VIP, CIP).ttl(63).udp(53, 5000).payload(b"answer").build(),
                )]),
            )],
        );
        let ev = w.engine.stats_snapshot().events;
        assert_eq!(ev.get("uoa_inserted"), Some(&3), "{mode}");
    }
}

/// A datagram too long to take the option (within the smallest port MTU, dpdk1's 1400)
/// goes without it; the next one carries it.
#[test]
fn no_room_defers_to_the_next_datagram() {
    let mut w = World::new(1);
    w.table = service(fnat::uoa::UoaMode::Opp);
    let big = vec![0u8; 1390 - 28];
    w.frame(0, &query(5001, &big));
    assert_eq!(w.io.out.len(), 1, "forwarded: {:?}", w.drops());
    assert_eq!(carried(&w.io.out[0].1).0, None, "1390 + 12 bytes would not pass dpdk1");
    w.io.out.clear();
    w.frame(0, &query(5001, b"small"));
    assert_eq!(carried(&w.io.out[0].1).0, Some(std::net::SocketAddr::new(CIP.into(), 5001)));
    let ev = w.engine.stats_snapshot().events;
    assert_eq!((ev.get("uoa_no_room"), ev.get("uoa_inserted")), (Some(&1), Some(&1)));
}

fn judge_or_opp_sport(f: &[u8]) -> u16 {
    let (_, udp) = carried(f);
    wire::UdpPacket::new_checked(&udp[..]).unwrap().src_port()
}

fn judged_exact(sink: Sink, f: Vec<u8>) -> (Sink, Want) {
    judge_eth(&f);
    exact(sink, f)
}

/// PROXY protocol v2 on a UDP service: every datagram to the server starts with the
/// header naming the client and the VIP; the answers come back as they are.
#[test]
fn every_datagram_takes_the_proxy_v2_header() {
    let mut w = World::new(1);
    let mut c = udp(svc(VIP.into(), 53, &[rs(RIP.into(), 5353)]));
    c.proxy_protocol = Some(fnat::service::ProxyProtocol::V2);
    w.table = ServiceTable::build(&[c], None).unwrap();
    let want = wire::ProxyHeader::Proxy(wire::ProxyRepr {
        src: std::net::SocketAddr::new(CIP.into(), 5000),
        dst: std::net::SocketAddr::new(VIP.into(), 53),
        proto: wire::ProxyTransport::Datagram,
    });
    for i in 0..4u8 {
        let body = [b'q', i];
        run(
            &mut w,
            vec![step(
                "a datagram to the service",
                0,
                query(5000, &body),
                Expect::Out(vec![check(Sink::Tx(1), move |f| {
                    let s = judge_eth(f);
                    assert_eq!((s.src, s.dst, s.dport), (LIP.into(), RIP.into(), 5353));
                    let (h, n) = wire::proxy::parse(&s.payload).expect("a PROXY v2 header");
                    assert_eq!((h, n), (want, 28));
                    assert_eq!(&s.payload[n..], &body[..], "then the datagram");
                })]),
            )],
        );
    }
    // Too long to take the header within the smallest MTU: dropped, counted.
    run(
        &mut w,
        vec![step("too long for the header", 0, query(5000, &vec![0u8; 1390 - 28]), Expect::Drop("proxy_no_room"))],
    );
}
