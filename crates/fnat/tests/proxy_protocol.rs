//! The PROXY protocol through the engine (`fnat::proxy_proto`), as fixture tables like
//! `fixtures.rs`: whole packets in, the exact packets out (every one judged by
//! etherparse, checksums included). The header goes before the client's first data
//! (never into the handshake's ACK), with no TOA; client sequence numbers are shifted
//! up by its length for the rest of the connection, server acknowledgments and SACK
//! blocks back down; a retransmitted first segment carries the header again.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use fnat::buf::{PacketBuf, VecBuf};
use fnat::engine::Verdict;
use fnat::frag::FragEvent;
use fnat::service::{ProxyProtocol, ServiceConfig};
use fnat::stats::{ConnEvent, DropReason};
use fnat::synproxy::SynProxyMode;
use fnat::tcp_state::TcpState;
use fnat::types::{FwdMode, Proto};
use wire::builder::PacketBuilder;
use wire::Ipv4Packet;

const S: u64 = 1000;
const RES: u64 = 32;

/// The version 2 header for 203.0.113.7:40000 → 192.0.2.1:80 (28 bytes).
const V2_CIP4: [u8; 28] = [
    0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
    0x21, // version 2, PROXY
    0x11, // INET, STREAM
    0x00, 0x0c, // 12 bytes of addresses
    203, 0, 113, 7, // client
    192, 0, 2, 1, // VIP
    0x9c, 0x40, // 40000
    0x00, 0x50, // 80
];

/// The version 1 line for the same connection (43 bytes: odd, so the payload after
/// it changes 16-bit alignment).
const V1_CIP4: &[u8] = b"PROXY TCP4 203.0.113.7 192.0.2.1 40000 80\r\n";

/// The version 1 line for [2001:db8:c::7]:50000 → [2001:db8:f::1]:80 (49 bytes).
const V1_CIP6: &[u8] = b"PROXY TCP6 2001:db8:c::7 2001:db8:f::1 50000 80\r\n";

/// The version 2 header for [2001:db8:c::7]:50000 → [2001:db8:f::1]:80 (52 bytes).
fn v2_cip6() -> Vec<u8> {
    let mut h = vec![0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x21, 0x00, 0x24];
    h.extend_from_slice(&cip6().octets());
    h.extend_from_slice(&vip6().octets());
    h.extend_from_slice(&[0xc3, 0x50, 0x00, 0x50]);
    h
}

fn pp(mut c: ServiceConfig, v: ProxyProtocol) -> ServiceConfig {
    c.proxy_protocol = Some(v);
    c
}

/// TCP VIP4:80 → RIP4:8080 and [VIP6]:80 → [RIP6]:8080 with the PROXY protocol `v`,
/// and TCP VIP4:81 → RIP4_B:8080 without.
fn world(v: ProxyProtocol) -> World {
    World::with_services(
        &config(64),
        &[
            pp(svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 8080)]), v),
            svc(Proto::Tcp, VIP4.into(), 81, &[rs(RIP4_B.into(), 8080)]),
            pp(svc(Proto::Tcp, vip6().into(), 80, &[rs(rip6().into(), 8080)]), v),
        ],
    )
}

/// `[a, b].concat()`.
fn cat(a: &[u8], b: &[u8]) -> Vec<u8> {
    [a, b].concat()
}

/// A SACK option (kind 5) with the blocks given, after two NOPs.
fn sack(blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut o = vec![1, 1, 5, (2 + 8 * blocks.len()) as u8];
    for (l, r) in blocks {
        o.extend_from_slice(&l.to_be_bytes());
        o.extend_from_slice(&r.to_be_bytes());
    }
    o
}

const GET: &[u8] = b"GET / HTTP/1.0\r\n\r\n"; // 18 bytes

/// Version 2 over IPv4, a whole connection: the header on the first data segment and
/// on its retransmission, every later sequence number shifted by 28, every
/// acknowledgment and SACK block shifted back; no TOA (TOA is on in this engine);
/// then TIME_WAIT reuse: a new connection from the same port gets its own header at
/// its own first byte.
#[test]
fn v2_ipv4_connection_lifecycle() {
    let mut w = world(ProxyProtocol::V2);
    let steps = vec![
        fwd(
            "client SYN: unchanged (its ISN + 1 is where the header will go)",
            t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).mss(1460).sack_permitted().build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1000).flags(SYN).mss(1460).sack_permitted().build(),
        ),
        fwd(
            "server SYN-ACK: MSS lowered by the header's 28 bytes (not TOA's 8), acknowledgment kept",
            t4(RIP4, 8080, LIP4, 1025).seq(5000).ack(1001).flags(SYNACK).mss(1460).sack_permitted().build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5000).ack(1001).flags(SYNACK).mss(1432).sack_permitted().build(),
        ),
        fwd(
            "handshake ACK: no TOA, no header (a pure ACK is never retransmitted)",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1001).ack(5001).flags(ACK).build(),
        ),
        state4("ESTABLISHED", 40000, TcpState::Established),
        fwd(
            "first data: the header in front of it, at the client's first byte",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(GET).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1001).ack(5001).flags(PSHACK).payload(&cat(&V2_CIP4, GET)).build(),
        ),
        fwd(
            "the server acknowledges header and data: the client sees its data acknowledged",
            t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1001 + 28 + 18).flags(ACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5001).ack(1019).flags(ACK).build(),
        ),
        fwd(
            "second data: sequence number + 28",
            t4(CIP4, 40000, VIP4, 80).seq(1019).ack(5001).flags(PSHACK).payload(b"more").build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1047).ack(5001).flags(PSHACK).payload(b"more").build(),
        ),
        fwd(
            "third data: + 28",
            t4(CIP4, 40000, VIP4, 80).seq(1023).ack(5001).flags(PSHACK).payload(b"abcdefgh").build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1051).ack(5001).flags(PSHACK).payload(b"abcdefgh").build(),
        ),
        fwd(
            "the server lost the second: duplicate ACK with a SACK block, both shifted back",
            t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1047).flags(ACK).option(&sack(&[(1051, 1059)])).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5001).ack(1019).flags(ACK).option(&sack(&[(1023, 1031)])).build(),
        ),
        fwd(
            "the first data segment retransmitted: the header again, at the same place",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(GET).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1001).ack(5001).flags(PSHACK).payload(&cat(&V2_CIP4, GET)).build(),
        ),
        fwd(
            "the second retransmitted: + 28",
            t4(CIP4, 40000, VIP4, 80).seq(1019).ack(5001).flags(PSHACK).payload(b"more").build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1047).ack(5001).flags(PSHACK).payload(b"more").build(),
        ),
        fwd(
            "server data acknowledging everything: acknowledgment − 28, its sequence number untouched",
            t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1059).flags(PSHACK).payload(b"HTTP/1.0 200 OK\r\n\r\n").build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5001).ack(1031).flags(PSHACK).payload(b"HTTP/1.0 200 OK\r\n\r\n").build(),
        ),
        fwd(
            "client FIN: + 28",
            t4(CIP4, 40000, VIP4, 80).seq(1031).ack(5020).flags(FINACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1059).ack(5020).flags(FINACK).build(),
        ),
        fwd(
            "server FIN: acknowledgment − 28",
            t4(RIP4, 8080, LIP4, 1025).seq(5020).ack(1060).flags(FINACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5020).ack(1032).flags(FINACK).build(),
        ),
        fwd(
            "client's last ACK: + 28",
            t4(CIP4, 40000, VIP4, 80).seq(1032).ack(5021).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1060).ack(5021).flags(ACK).build(),
        ),
        state4("TIME_WAIT", 40000, TcpState::TimeWait),
        check("nothing dropped, nothing inserted as TOA", |w| {
            for r in [DropReason::ProxyNoRoom, DropReason::ToaNoRoom, DropReason::BadHeader] {
                assert_eq!(w.engine.stats().drops(r), 0, "{r:?}");
            }
        }),
        fwd(
            "TIME_WAIT reuse: a new SYN from the same port, a new ISN, through the same local port",
            t4(CIP4, 40000, VIP4, 80).seq(70000).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(70000).flags(SYN).build(),
        ),
        check("reused", |w| assert_eq!(w.engine.stats().events(ConnEvent::ConnReused), 1)),
        fwd(
            "its SYN-ACK",
            t4(RIP4, 8080, LIP4, 1025).seq(900).ack(70001).flags(SYNACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(900).ack(70001).flags(SYNACK).build(),
        ),
        fwd(
            "its first data, without a handshake ACK before it: the header at the new first byte",
            t4(CIP4, 40000, VIP4, 80).seq(70001).ack(901).flags(PSHACK).payload(b"x").build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(70001).ack(901).flags(PSHACK).payload(&cat(&V2_CIP4, b"x")).build(),
        ),
        fwd(
            "its acknowledgment shifted back by the new connection's numbers",
            t4(RIP4, 8080, LIP4, 1025).seq(901).ack(70030).flags(ACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(901).ack(70002).flags(ACK).build(),
        ),
        fwd(
            "a service without the option, meanwhile: TOA as usual, nothing shifted",
            t4(CIP4, 40001, VIP4, 81).seq(1).flags(SYN).build(),
            RIP4_B,
            t4(LIP4, 1026, RIP4_B, 8080).seq(1).flags(SYN).build(),
        ),
        fwd(
            "its SYN-ACK: TOA's MSS clamp",
            t4(RIP4_B, 8080, LIP4, 1026).seq(7).ack(2).flags(SYNACK).mss(1460).build(),
            CIP4,
            t4(VIP4, 81, CIP4, 40001).seq(7).ack(2).flags(SYNACK).mss(1452).build(),
        ),
        fwd(
            "its handshake ACK takes the TOA",
            t4(CIP4, 40001, VIP4, 81).seq(2).ack(8).flags(ACK).build(),
            RIP4_B,
            t4(LIP4, 1026, RIP4_B, 8080).seq(2).ack(8).flags(ACK).option(&toa4(CIP4, 40001)).build(),
        ),
        fwd(
            "its data: unchanged",
            t4(CIP4, 40001, VIP4, 81).seq(2).ack(8).flags(PSHACK).payload(GET).build(),
            RIP4_B,
            t4(LIP4, 1026, RIP4_B, 8080).seq(2).ack(8).flags(PSHACK).payload(GET).build(),
        ),
    ];
    run(&mut w, steps);
}

/// Version 1 over IPv4 and IPv6: the literal lines (of odd length), the MSS lowered by
/// them, the shift by their length.
#[test]
fn v1_literal_lines_ipv4_and_ipv6() {
    let mut w = world(ProxyProtocol::V1);
    let (c, v, l, r) = (cip6(), vip6(), lip6(), rip6());
    let (n4, n6) = (V1_CIP4.len() as u32, V1_CIP6.len() as u32);
    assert_eq!((n4, n6), (43, 49));
    let steps = vec![
        fwd(
            "SYN v4",
            t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).mss(1460).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1000).flags(SYN).mss(1460).build(),
        ),
        fwd(
            "SYN-ACK v4: MSS − 43",
            t4(RIP4, 8080, LIP4, 1025).seq(5000).ack(1001).flags(SYNACK).mss(1460).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5000).ack(1001).flags(SYNACK).mss(1417).build(),
        ),
        fwd(
            "data v4: the line, then the data (odd: its alignment changes)",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(b"hello world!").build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080)
                .seq(1001)
                .ack(5001)
                .flags(PSHACK)
                .payload(&cat(V1_CIP4, b"hello world!"))
                .build(),
        ),
        fwd(
            "server ACK v4: − 43",
            t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1001 + n4 + 12).flags(ACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5001).ack(1013).flags(ACK).build(),
        ),
        fwd(
            "more data v4: + 43",
            t4(CIP4, 40000, VIP4, 80).seq(1013).ack(5001).flags(PSHACK).payload(b"odd").build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1013 + n4).ack(5001).flags(PSHACK).payload(b"odd").build(),
        ),
        fwd(
            "SYN v6, with timestamps",
            t6(c, 50000, v, 80).seq(u32::MAX - 4).flags(SYN).mss(1440).timestamps(1, 0).build(),
            r,
            t6(l, 1025, r, 8080).seq(u32::MAX - 4).flags(SYN).mss(1440).timestamps(1, 0).build(),
        ),
        fwd(
            "SYN-ACK v6: MSS − 49",
            t6(r, 8080, l, 1025).seq(77).ack(u32::MAX - 3).flags(SYNACK).mss(1440).timestamps(9, 1).build(),
            c,
            t6(v, 80, c, 50000).seq(77).ack(u32::MAX - 3).flags(SYNACK).mss(1391).timestamps(9, 1).build(),
        ),
        fwd(
            "data v6 across the sequence wrap: the line, then the data",
            t6(c, 50000, v, 80).seq(u32::MAX - 3).ack(78).flags(PSHACK).timestamps(2, 9).payload(&[0xa5; 301]).build(),
            r,
            t6(l, 1025, r, 8080)
                .seq(u32::MAX - 3)
                .ack(78)
                .flags(PSHACK)
                .timestamps(2, 9)
                .payload(&cat(V1_CIP6, &[0xa5; 301]))
                .build(),
        ),
        fwd(
            "server ACK v6: − 49, across the wrap",
            t6(r, 8080, l, 1025).seq(78).ack((u32::MAX - 3).wrapping_add(n6 + 301)).flags(ACK).build(),
            c,
            t6(v, 80, c, 50000).seq(78).ack((u32::MAX - 3).wrapping_add(301)).flags(ACK).build(),
        ),
        fwd(
            "client FIN v6: + 49",
            t6(c, 50000, v, 80).seq(297).ack(78).flags(FINACK).build(),
            r,
            t6(l, 1025, r, 8080).seq(297 + n6).ack(78).flags(FINACK).build(),
        ),
    ];
    run(&mut w, steps);
}

/// Version 2 over IPv6 (52 bytes), and a later segment that overtakes a lost first
/// one: shifted before the header ever went out, its SACK block shifted back, the
/// server's acknowledgment of nothing kept.
#[test]
fn v2_ipv6_and_a_first_segment_overtaken() {
    let mut w = world(ProxyProtocol::V2);
    let (c, v, l, r) = (cip6(), vip6(), lip6(), rip6());
    let h = v2_cip6();
    assert_eq!(h.len(), 52);
    let steps = vec![
        fwd("SYN", t6(c, 50000, v, 80).seq(10).flags(SYN).build(), r, t6(l, 1025, r, 8080).seq(10).flags(SYN).build()),
        fwd(
            "SYN-ACK without MSS: unchanged",
            t6(r, 8080, l, 1025).seq(500).ack(11).flags(SYNACK).build(),
            c,
            t6(v, 80, c, 50000).seq(500).ack(11).flags(SYNACK).build(),
        ),
        fwd(
            "the second segment arrives first: + 52",
            t6(c, 50000, v, 80).seq(16).ack(501).flags(PSHACK).payload(b"world").build(),
            r,
            t6(l, 1025, r, 8080).seq(68).ack(501).flags(PSHACK).payload(b"world").build(),
        ),
        fwd(
            "the server acknowledges nothing yet (11, kept) and SACKs it (− 52)",
            t6(r, 8080, l, 1025).seq(501).ack(11).flags(ACK).option(&sack(&[(68, 73)])).build(),
            c,
            t6(v, 80, c, 50000).seq(501).ack(11).flags(ACK).option(&sack(&[(16, 21)])).build(),
        ),
        fwd(
            "a pure ACK at the first byte before the header went out: kept",
            t6(c, 50000, v, 80).seq(11).ack(501).flags(ACK).build(),
            r,
            t6(l, 1025, r, 8080).seq(11).ack(501).flags(ACK).build(),
        ),
        fwd(
            "the first segment, retransmitted: the header",
            t6(c, 50000, v, 80).seq(11).ack(501).flags(PSHACK).payload(b"hello").build(),
            r,
            t6(l, 1025, r, 8080).seq(11).ack(501).flags(PSHACK).payload(&cat(&h, b"hello")).build(),
        ),
        fwd(
            "all acknowledged: − 52",
            t6(r, 8080, l, 1025).seq(501).ack(73).flags(ACK).build(),
            c,
            t6(v, 80, c, 50000).seq(501).ack(21).flags(ACK).build(),
        ),
        fwd(
            "an acknowledgment of part of the header only acknowledges none of the data",
            t6(r, 8080, l, 1025).seq(501).ack(40).flags(ACK).build(),
            c,
            t6(v, 80, c, 50000).seq(501).ack(11).flags(ACK).build(),
        ),
        fwd(
            "a pure ACK at the first byte once the header went out: + 52",
            t6(c, 50000, v, 80).seq(11).ack(501).flags(ACK).build(),
            r,
            t6(l, 1025, r, 8080).seq(63).ack(501).flags(ACK).build(),
        ),
        fwd(
            "the client resets: + 52 (the server wants its reset at the next byte it expects)",
            t6(c, 50000, v, 80).seq(21).flags(RST).build(),
            r,
            t6(l, 1025, r, 8080).seq(73).flags(RST).build(),
        ),
        check("the reset, at the acknowledgment as the client saw it (21), closes it here", move |w| {
            assert_eq!(state_of(w, Proto::Tcp, c.into(), 50000, v.into(), 80), Some(TcpState::Close));
        }),
    ];
    run(&mut w, steps);
}

/// No room for the header: the segment is dropped untouched and counted, not sent
/// without it; the retransmission, with room, goes with the header.
#[test]
fn no_room_drops_and_the_retransmission_carries_the_header() {
    let mut w = world(ProxyProtocol::V2);
    for (p, want) in [
        (t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).build(), RIP4),
        (t4(RIP4, 8080, LIP4, 1025).seq(5000).ack(1001).flags(SYNACK).build(), CIP4),
    ] {
        assert!(matches!(w.packet(&p, 0).0, Verdict::Forward { dst, .. } if dst == IpAddr::from(want)));
    }
    let first = t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(GET).build();
    let mut b = VecBuf::with_room(&first, 10, 10);
    let v = w.engine.process(&w.table, &mut b, 0, w.now);
    assert_eq!(v, Verdict::Drop(DropReason::ProxyNoRoom));
    assert_eq!(b.data(), &first[..], "a dropped packet is untouched");
    assert_eq!(w.engine.stats().drops(DropReason::ProxyNoRoom), 1);
    // Too long for IPv4 once the header is in: dropped the same way.
    let huge = t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(&vec![7; 65535 - 40 - 27]).build();
    assert_eq!(w.packet(&huge, 0).0, Verdict::Drop(DropReason::ProxyNoRoom));
    assert_eq!(w.engine.stats().drops(DropReason::ProxyNoRoom), 2);
    let steps = vec![
        fwd(
            "a later segment meanwhile: + 28",
            t4(CIP4, 40000, VIP4, 80).seq(1019).ack(5001).flags(PSHACK).payload(b"more").build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1047).ack(5001).flags(PSHACK).payload(b"more").build(),
        ),
        fwd(
            "the retransmission, with room: the header",
            first.clone(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1001).ack(5001).flags(PSHACK).payload(&cat(&V2_CIP4, GET)).build(),
        ),
    ];
    run(&mut w, steps);
}

/// The first fragment of the segment due to carry the header is dropped (and
/// counted); the segment sent whole carries it.
#[test]
fn a_fragmented_first_segment_is_dropped() {
    let mut w = world(ProxyProtocol::V1);
    for p in [
        t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).build(),
        t4(RIP4, 8080, LIP4, 1025).seq(5000).ack(1001).flags(SYNACK).build(),
    ] {
        assert!(matches!(w.packet(&p, 0).0, Verdict::Forward { .. }));
    }
    let data = [0x42u8; 120];
    let whole =
        PacketBuilder::ipv4(CIP4, VIP4).ident(7).tcp(40000, 80).seq(1001).ack(5001).flags(PSHACK).payload(&data);
    let whole = whole.build();
    // Its first fragment: the IP header, the TCP header and 44 bytes of data (64, a
    // multiple of 8).
    let mut frag = whole[..20 + 64].to_vec();
    let mut q = Ipv4Packet::new_unchecked(&mut frag[..]);
    q.set_total_len(84);
    q.set_more_frags(true);
    q.fill_checksum();
    assert_eq!(w.packet(&frag, 0).0, Verdict::Drop(DropReason::Fragment));
    assert_eq!(w.engine.frags().counts().get(FragEvent::ProxySkipped), 1);
    let steps = vec![fwd(
        "the whole segment: the header",
        whole,
        RIP4,
        PacketBuilder::ipv4(LIP4, RIP4)
            .ident(7)
            .tcp(1025, 8080)
            .seq(1001)
            .ack(5001)
            .flags(PSHACK)
            .payload(&cat(V1_CIP4, &data))
            .build(),
    )];
    run(&mut w, steps);
}

/// An ICMP error from the server's side quoting a shifted segment reaches the client
/// quoting the segment as the client sent it.
#[test]
fn icmp_errors_quote_the_clients_numbers() {
    let mut w = world(ProxyProtocol::V2);
    let router = Ipv4Addr::new(10, 2, 0, 254);
    let quoted_server = t4(LIP4, 1025, RIP4, 8080).seq(1047).ack(5001).flags(PSHACK).payload(&[9; 64]).build();
    let quoted_client = t4(CIP4, 40000, VIP4, 80).seq(1019).ack(5001).flags(PSHACK).payload(&[9; 64]).build();
    let steps = vec![
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
        fwd(
            "first data",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(GET).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1001).ack(5001).flags(PSHACK).payload(&cat(&V2_CIP4, GET)).build(),
        ),
        fwd(
            "fragmentation needed about the second segment: its sequence number − 28 in the quote",
            PacketBuilder::ipv4(router, LIP4).icmpv4_error(3, 4, &quoted_server).next_hop_mtu(1400).build(),
            CIP4,
            PacketBuilder::ipv4(VIP4, CIP4).icmpv4_error(3, 4, &quoted_client).next_hop_mtu(1400).build(),
        ),
        fwd(
            "the same quoting 8 bytes of TCP only",
            PacketBuilder::ipv4(router, LIP4).icmpv4_error(3, 4, &quoted_server[..28]).next_hop_mtu(1400).build(),
            CIP4,
            PacketBuilder::ipv4(VIP4, CIP4).icmpv4_error(3, 4, &quoted_client[..28]).next_hop_mtu(1400).build(),
        ),
    ];
    run(&mut w, steps);
}

/// NAT64 (an IPv6 VIP, an IPv4 real server): an ICMPv4 "fragmentation needed" about a
/// shifted segment reaches the client as a "packet too big" quoting the segment as the
/// client sent it, its sequence number shifted back by the header's length.
#[test]
fn nat64_icmp_errors_quote_the_clients_numbers() {
    let (c6, v6) = (cip6(), vip6());
    let nat64 = pp(svc(Proto::Tcp, v6.into(), 80, &[rs(RIP4.into(), 8080)]), ProxyProtocol::V1);
    let mut w = World::with_services(&config(64), &[nat64]);
    let router = Ipv4Addr::new(10, 2, 0, 254);
    let next = 1001 + GET.len() as u32;
    let quoted_server =
        t4(LIP4, 1025, RIP4, 8080).seq(next + V1_CIP6.len() as u32).ack(5001).flags(PSHACK).payload(&[9; 64]).build();
    let quoted_client = t6(c6, 50000, v6, 80).seq(next).ack(5001).flags(PSHACK).payload(&[9; 64]).build();
    let steps = vec![
        pkt("SYN", t6(c6, 50000, v6, 80).seq(1000).flags(SYN).build(), Expect::Fwd(RIP4.into()), None),
        pkt(
            "SYN-ACK",
            t4(RIP4, 8080, LIP4, 1025).seq(5000).ack(1001).flags(SYNACK).build(),
            Expect::Fwd(c6.into()),
            None,
        ),
        fwd(
            "first data: the header, in IPv4",
            t6(c6, 50000, v6, 80).seq(1001).ack(5001).flags(PSHACK).payload(GET).build(),
            RIP4,
            PacketBuilder::ipv4(LIP4, RIP4)
                .dont_frag()
                .tcp(1025, 8080)
                .seq(1001)
                .ack(5001)
                .flags(PSHACK)
                .payload(&cat(V1_CIP6, GET))
                .build(),
        ),
        fwd(
            "fragmentation needed about the next segment: packet too big, its sequence number − 49 in the quote",
            PacketBuilder::ipv4(router, LIP4).icmpv4_error(3, 4, &quoted_server).next_hop_mtu(1400).build(),
            c6,
            PacketBuilder::ipv6(v6, c6).icmpv6_error(2, 0, 1420, &quoted_client).build(),
        ),
    ];
    run(&mut w, steps);
}

/// NAT real servers take the header too (the client's address is kept in the IP
/// header, the header says it as well); the SYN proxy is never used for such a
/// service, even when the global mode is on.
#[test]
fn nat_servers_and_no_syn_proxy() {
    let mut cfg = config(64);
    cfg.synproxy.mode = SynProxyMode::On;
    let nat = fnat::service::RealServerConfig { fwd: FwdMode::Nat, ..rs(RIP4.into(), 8080) };
    let mut w = World::with_services(
        &cfg,
        &[
            pp(svc(Proto::Tcp, VIP4.into(), 80, &[nat]), ProxyProtocol::V2),
            svc(Proto::Tcp, VIP4.into(), 81, &[rs(RIP4_B.into(), 8080)]),
        ],
    );
    let steps = vec![
        pkt(
            "a service without the option, global mode on: the proxy answers the SYN",
            t4(CIP4, 40001, VIP4, 81).seq(1).flags(SYN).build(),
            Expect::Fwd(CIP4.into()),
            None,
        ),
        fwd(
            "the PROXY protocol service: the SYN goes to the server",
            t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).build(),
            RIP4,
            t4(CIP4, 40000, RIP4, 8080).seq(1000).flags(SYN).build(),
        ),
        fwd(
            "SYN-ACK",
            t4(RIP4, 8080, CIP4, 40000).seq(5000).ack(1001).flags(SYNACK).mss(1400).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5000).ack(1001).flags(SYNACK).mss(1372).build(),
        ),
        fwd(
            "first data: the header",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(GET).build(),
            RIP4,
            t4(CIP4, 40000, RIP4, 8080).seq(1001).ack(5001).flags(PSHACK).payload(&cat(&V2_CIP4, GET)).build(),
        ),
        fwd(
            "the server's ACK: − 28",
            t4(RIP4, 8080, CIP4, 40000).seq(5001).ack(1047).flags(ACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5001).ack(1019).flags(ACK).build(),
        ),
        at("idle: the connection expires", 900 * S + RES, 1),
        live(0),
    ];
    run(&mut w, steps);
}
