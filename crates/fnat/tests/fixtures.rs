//! Katran-style fixture tables for the FullNAT engine: each step is an input packet
//! built with wire's builder, the expected verdict and the expected output packet,
//! byte for byte, every output also judged by etherparse (checksums included).
//! Each table walks whole lifecycles in both directions, with the clock.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::*;
use fnat::conn::Addr;
use fnat::engine::config::{EngineConfig, LocalAddrSet};
use fnat::sapool::PortRange;
use fnat::service::ServiceTable as Table;
use fnat::stats::DropReason;
use fnat::tcp_state::TcpState;
use fnat::types::Proto;
use wire::builder::PacketBuilder;
use wire::EthernetAddress;

const S: u64 = 1000;
/// Slot width of the default timer wheel: expiry happens up to this late.
const RES: u64 = 32;

/// SYN, SYN-ACK, handshake ACK (TOA), data both ways, client closes first, TIME_WAIT
/// expiry frees the connection and its port.
#[test]
fn tcp_v4_lifecycle_client_closes() {
    let mut w = World::new(&config(1024));
    let toa = toa4(CIP4, 40000);
    let steps = vec![
        fwd(
            "client SYN opens a connection: CIP:cport->VIP:vport becomes LIP:lport->RIP:rport",
            t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).mss(1460).sack_permitted().build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1000).flags(SYN).mss(1460).sack_permitted().build(),
        ),
        state4("SYN_RECV after the SYN", 40000, TcpState::SynRecv),
        fwd(
            "server SYN-ACK goes back to the client, MSS lowered by the TOA length (8)",
            t4(RIP4, 8080, LIP4, 1025).seq(5000).ack(1001).flags(SYNACK).mss(1460).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5000).ack(1001).flags(SYNACK).mss(1452).build(),
        ),
        fwd(
            "handshake ACK carries the TOA option with CIP:cport",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1001).ack(5001).flags(ACK).option(&toa).build(),
        ),
        state4("ESTABLISHED after the handshake", 40000, TcpState::Established),
        fwd(
            "client data: no second TOA",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(b"GET / HTTP/1.0\r\n\r\n").build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1001).ack(5001).flags(PSHACK).payload(b"GET / HTTP/1.0\r\n\r\n").build(),
        ),
        fwd(
            "server data",
            t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1019).flags(PSHACK).payload(b"HTTP/1.0 200 OK\r\n\r\n").build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5001).ack(1019).flags(PSHACK).payload(b"HTTP/1.0 200 OK\r\n\r\n").build(),
        ),
        fwd(
            "client FIN",
            t4(CIP4, 40000, VIP4, 80).seq(1019).ack(5020).flags(FINACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1019).ack(5020).flags(FINACK).build(),
        ),
        state4("CLOSE_WAIT after the client's FIN", 40000, TcpState::CloseWait),
        fwd(
            "server ACKs the FIN",
            t4(RIP4, 8080, LIP4, 1025).seq(5020).ack(1020).flags(ACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5020).ack(1020).flags(ACK).build(),
        ),
        fwd(
            "server FIN",
            t4(RIP4, 8080, LIP4, 1025).seq(5020).ack(1020).flags(FINACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5020).ack(1020).flags(FINACK).build(),
        ),
        fwd(
            "client's last ACK",
            t4(CIP4, 40000, VIP4, 80).seq(1020).ack(5021).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1020).ack(5021).flags(ACK).build(),
        ),
        state4("TIME_WAIT after both FINs", 40000, TcpState::TimeWait),
        check("counters", |w| {
            let t = w.engine.stats().total;
            assert_eq!((t.conns, t.pkts_in, t.pkts_out, t.active, t.inactive), (1, 5, 4, 0, 1));
            assert_eq!(w.engine.sched().counts(fnat::service::RsId(0)), (0, 1));
        }),
        at("TIME_WAIT (120 s) not over yet", 120 * S - 1, 0),
        live(1),
        at("TIME_WAIT over: the connection is freed", 120 * S + RES, 1),
        live(0),
        check("gauges back to zero", |w| {
            let t = w.engine.stats().total;
            assert_eq!((t.active, t.inactive), (0, 0));
            assert_eq!(w.engine.sched().counts(fnat::service::RsId(0)), (0, 0));
            assert_eq!(w.engine.wheel().len(), 0);
        }),
        pkt(
            "the local port is free: a late reply to it finds no connection",
            t4(RIP4, 8080, LIP4, 1025).seq(5021).ack(1021).flags(ACK).build(),
            Expect::Drop(DropReason::ReplyNoConn),
            None,
        ),
        fwd(
            "the same client port opens a new connection (next local port)",
            t4(CIP4, 40000, VIP4, 80).seq(9000).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1026, RIP4, 8080).seq(9000).flags(SYN).build(),
        ),
    ];
    run(&mut w, steps);
}

/// The same over IPv6, with timestamps (TOA after them) and the server closing first.
#[test]
fn tcp_v6_lifecycle_server_closes() {
    let mut w = World::new(&config(1024));
    let (c, v, l, r) = (cip6(), vip6(), lip6(), rip6());
    let toa = toa6(c, 50000);
    let steps = vec![
        fwd(
            "client SYN",
            t6(c, 50000, v, 80).seq(1).flags(SYN).mss(1440).window_scale(7).build(),
            r,
            t6(l, 1025, r, 8080).seq(1).flags(SYN).mss(1440).window_scale(7).build(),
        ),
        fwd(
            "server SYN-ACK: MSS lowered by the IPv6 TOA length (20)",
            t6(r, 8080, l, 1025).seq(7).ack(2).flags(SYNACK).mss(1440).build(),
            c,
            t6(v, 80, c, 50000).seq(7).ack(2).flags(SYNACK).mss(1420).build(),
        ),
        fwd(
            "handshake ACK: TOA (20 bytes) after the timestamps",
            t6(c, 50000, v, 80).seq(2).ack(8).flags(ACK).option(&[1, 1]).timestamps(11, 22).build(),
            r,
            t6(l, 1025, r, 8080).seq(2).ack(8).flags(ACK).option(&[1, 1]).timestamps(11, 22).option(&toa).build(),
        ),
        fwd(
            "server closes first",
            t6(r, 8080, l, 1025).seq(8).ack(2).flags(FINACK).build(),
            c,
            t6(v, 80, c, 50000).seq(8).ack(2).flags(FINACK).build(),
        ),
        check("FIN_WAIT", move |w| {
            assert_eq!(state_of(w, Proto::Tcp, c.into(), 50000, v.into(), 80), Some(TcpState::FinWait))
        }),
        fwd(
            "client ACK + FIN",
            t6(c, 50000, v, 80).seq(2).ack(9).flags(FINACK).build(),
            r,
            t6(l, 1025, r, 8080).seq(2).ack(9).flags(FINACK).build(),
        ),
        check("TIME_WAIT", move |w| {
            assert_eq!(state_of(w, Proto::Tcp, c.into(), 50000, v.into(), 80), Some(TcpState::TimeWait))
        }),
        fwd(
            "server's last ACK",
            t6(r, 8080, l, 1025).seq(9).ack(3).flags(ACK).build(),
            c,
            t6(v, 80, c, 50000).seq(9).ack(3).flags(ACK).build(),
        ),
        at("TIME_WAIT over", 120 * S + RES, 1),
        live(0),
    ];
    run(&mut w, steps);
}

/// Established, then the server resets: CLOSE, freed after 10 s.
#[test]
fn tcp_rst_closes_quickly() {
    let mut w = World::new(&config(64));
    let steps = vec![
        fwd(
            "SYN",
            t4(CIP4, 40001, VIP4, 80).seq(1).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1).flags(SYN).build(),
        ),
        fwd(
            "SYN-ACK without MSS option: unchanged",
            t4(RIP4, 8080, LIP4, 1025).seq(100).ack(2).flags(SYNACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40001).seq(100).ack(2).flags(SYNACK).build(),
        ),
        fwd(
            "ACK with TOA",
            t4(CIP4, 40001, VIP4, 80).seq(2).ack(101).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(2).ack(101).flags(ACK).option(&toa4(CIP4, 40001)).build(),
        ),
        check("one active connection", |w| assert_eq!(w.engine.stats().total.active, 1)),
        at("time passes", 5 * S, 0),
        fwd(
            "server RST",
            t4(RIP4, 8080, LIP4, 1025).seq(101).flags(RST).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40001).seq(101).flags(RST).build(),
        ),
        state4("CLOSE", 40001, TcpState::Close),
        check("no longer active", |w| assert_eq!(w.engine.stats().total.active, 0)),
        at("CLOSE (10 s) not over", 15 * S - 1, 0),
        at("CLOSE over: freed (the ESTABLISHED timer was shortened)", 15 * S + RES, 1),
        live(0),
    ];
    run(&mut w, steps);
}

/// Both sides send FIN before seeing the other's.
#[test]
fn tcp_simultaneous_close() {
    let mut w = World::new(&config(64));
    let steps = vec![
        fwd("SYN", t4(CIP4, 40002, VIP4, 80).flags(SYN).build(), RIP4, t4(LIP4, 1025, RIP4, 8080).flags(SYN).build()),
        fwd(
            "SYN-ACK",
            t4(RIP4, 8080, LIP4, 1025).ack(1).flags(SYNACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40002).ack(1).flags(SYNACK).build(),
        ),
        fwd(
            "ACK",
            t4(CIP4, 40002, VIP4, 80).seq(1).ack(1).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1).ack(1).flags(ACK).option(&toa4(CIP4, 40002)).build(),
        ),
        fwd(
            "client FIN",
            t4(CIP4, 40002, VIP4, 80).seq(1).ack(1).flags(FINACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1).ack(1).flags(FINACK).build(),
        ),
        fwd(
            "server FIN crossing it",
            t4(RIP4, 8080, LIP4, 1025).seq(1).ack(1).flags(FINACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40002).seq(1).ack(1).flags(FINACK).build(),
        ),
        state4("TIME_WAIT", 40002, TcpState::TimeWait),
        fwd(
            "client ACK",
            t4(CIP4, 40002, VIP4, 80).seq(2).ack(2).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(2).ack(2).flags(ACK).build(),
        ),
        fwd(
            "server ACK",
            t4(RIP4, 8080, LIP4, 1025).seq(2).ack(2).flags(ACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40002).seq(2).ack(2).flags(ACK).build(),
        ),
        state4("still TIME_WAIT", 40002, TcpState::TimeWait),
        at("freed after TIME_WAIT", 120 * S + RES, 1),
    ];
    run(&mut w, steps);
}

/// A SYN the server never answers: freed after the SYN_RECV timeout; a retransmitted
/// SYN keeps the same connection.
#[test]
fn tcp_half_open_times_out() {
    let mut w = World::new(&config(64));
    let syn_in = || t4(CIP4, 40003, VIP4, 80).seq(77).flags(SYN).build();
    let syn_out = || t4(LIP4, 1025, RIP4, 8080).seq(77).flags(SYN).build();
    let steps = vec![
        fwd("SYN", syn_in(), RIP4, syn_out()),
        at("3 s later", 3 * S, 0),
        fwd("retransmitted SYN: same connection, same local port", syn_in(), RIP4, syn_out()),
        live(1),
        at("SYN_RECV (60 s) not over", 63 * S - 1, 0),
        at("half-open connection freed", 63 * S + RES, 1),
        check("counted inactive then freed", |w| {
            let t = w.engine.stats().total;
            assert_eq!((t.conns, t.inactive, t.active), (1, 0, 0));
        }),
    ];
    run(&mut w, steps);
}

/// UDP over IPv4 (in Ethernet frames, l3 = 14) and IPv6: both directions and expiry.
#[test]
fn udp_flows_and_expiry() {
    let mut w = World::new(&config(64));
    let m1 = EthernetAddress([2, 0, 0, 0, 0, 1]);
    let m2 = EthernetAddress([2, 0, 0, 0, 0, 2]);
    let eth = || PacketBuilder::eth(m1, m2);
    let (c6, v6, l6, r6) = (cip6(), vip6(), lip6(), rip6());
    let steps = vec![
        Step::Pkt {
            desc: "UDP query in an Ethernet frame opens a connection",
            input: eth().ipv4(CIP4, VIP4).udp(5000, 53).payload(b"query").build(),
            l3: 14,
            expect: Expect::Fwd(RIP4_UDP.into()),
            output: Some(eth().ipv4(LIP4, RIP4_UDP).udp(1025, 53).payload(b"query").build()),
        },
        Step::Pkt {
            desc: "UDP answer goes back",
            input: eth().ipv4(RIP4_UDP, LIP4).udp(53, 1025).payload(b"answer").build(),
            l3: 14,
            expect: Expect::Fwd(CIP4.into()),
            output: Some(eth().ipv4(VIP4, CIP4).udp(53, 5000).payload(b"answer").build()),
        },
        fwd(
            "UDP over IPv6",
            PacketBuilder::ipv6(c6, v6).udp(5001, 53).payload(b"q6").build(),
            r6,
            PacketBuilder::ipv6(l6, r6).udp(1025, 53).payload(b"q6").build(),
        ),
        fwd(
            "UDP over IPv6, answer",
            PacketBuilder::ipv6(r6, l6).udp(53, 1025).payload(b"a6").build(),
            c6,
            PacketBuilder::ipv6(v6, c6).udp(53, 5001).payload(b"a6").build(),
        ),
        fwd(
            "UDP/IPv4 without checksum stays without",
            PacketBuilder::ipv4(CIP4, VIP4).udp(5000, 53).no_checksum().payload(b"again").build(),
            RIP4_UDP,
            PacketBuilder::ipv4(LIP4, RIP4_UDP).udp(1025, 53).no_checksum().payload(b"again").build(),
        ),
        check("UDP connections are inactive", |w| {
            let t = w.engine.stats().total;
            assert_eq!((t.conns, t.active, t.inactive), (2, 0, 2));
            assert_eq!(state_of(w, Proto::Udp, CIP4.into(), 5000, VIP4.into(), 53), Some(TcpState::None));
        }),
        at("UDP timeout (300 s) not over", 300 * S - 1, 0),
        at("both UDP connections expire", 300 * S + RES, 2),
        live(0),
    ];
    run(&mut w, steps);
}

/// ICMP errors about known connections are translated to the other side.
#[test]
fn icmp_errors_about_known_connections() {
    let mut w = World::new(&config(64));
    let router4 = Ipv4Addr::new(10, 2, 0, 254);
    let router6: Ipv6Addr = "fd00:2::fe".parse().unwrap();
    let client_router = Ipv4Addr::new(198, 51, 100, 1);
    let (c6, v6, l6, r6) = (cip6(), vip6(), lip6(), rip6());
    // The packets as they were on each side of the balancer.
    let data_client = t4(CIP4, 40000, VIP4, 80).seq(1).ack(1).flags(PSHACK).payload(&[0x55; 64]).build();
    let data_server = t4(LIP4, 1025, RIP4, 8080).seq(1).ack(1).flags(PSHACK).payload(&[0x55; 64]).build();
    let resp_server = t4(RIP4, 8080, LIP4, 1025).seq(9).ack(2).flags(PSHACK).payload(b"r").build();
    let resp_client = t4(VIP4, 80, CIP4, 40000).seq(9).ack(2).flags(PSHACK).payload(b"r").build();
    let d6_client = t6(c6, 50000, v6, 80).seq(1).flags(SYN).build();
    let d6_server = t6(l6, 1025, r6, 8080).seq(1).flags(SYN).build();
    let steps = vec![
        fwd(
            "SYN v4",
            t4(CIP4, 40000, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).flags(SYN).build(),
        ),
        fwd("SYN v6", d6_client.clone(), r6, d6_server.clone()),
        fwd(
            "ICMP fragmentation needed from the server side goes to the client, quoting its own packet",
            PacketBuilder::ipv4(router4, LIP4).icmpv4_error(3, 4, &data_server).next_hop_mtu(1400).build(),
            CIP4,
            PacketBuilder::ipv4(VIP4, CIP4).icmpv4_error(3, 4, &data_client).next_hop_mtu(1400).build(),
        ),
        fwd(
            "the same with only the first 8 bytes of TCP quoted",
            PacketBuilder::ipv4(router4, LIP4).icmpv4_error(3, 4, &data_server[..28]).next_hop_mtu(1400).build(),
            CIP4,
            PacketBuilder::ipv4(VIP4, CIP4).icmpv4_error(3, 4, &data_client[..28]).next_hop_mtu(1400).build(),
        ),
        fwd(
            "ICMP host unreachable from the client side goes to the server",
            PacketBuilder::ipv4(client_router, VIP4).icmpv4_error(3, 1, &resp_client).build(),
            RIP4,
            PacketBuilder::ipv4(LIP4, RIP4).icmpv4_error(3, 1, &resp_server).build(),
        ),
        fwd(
            "ICMPv6 packet too big from the server side",
            PacketBuilder::ipv6(router6, l6).icmpv6_error(2, 0, 1280, &d6_server).build(),
            c6,
            PacketBuilder::ipv6(v6, c6).icmpv6_error(2, 0, 1280, &d6_client).build(),
        ),
        fwd(
            "ICMPv6 unreachable from the server side",
            PacketBuilder::ipv6(router6, l6).icmpv6_error(1, 3, 0, &d6_server).build(),
            c6,
            PacketBuilder::ipv6(v6, c6).icmpv6_error(1, 3, 0, &d6_client).build(),
        ),
        pkt(
            "an ICMP error about an unknown port of a LIP is dropped",
            PacketBuilder::ipv4(router4, LIP4)
                .icmpv4_error(3, 4, &t4(LIP4, 1999, RIP4, 8080).flags(SYN).build())
                .next_hop_mtu(1400)
                .build(),
            Expect::Drop(DropReason::IcmpNoConn),
            None,
        ),
        pkt(
            "an ICMP error about something else is not ours",
            PacketBuilder::ipv4(router4, Ipv4Addr::new(10, 9, 9, 9))
                .icmpv4_error(3, 1, &t4(Ipv4Addr::new(10, 9, 9, 9), 1, RIP4, 2).flags(SYN).build())
                .build(),
            Expect::NotMine,
            None,
        ),
        pkt(
            "an echo request is not ours either",
            PacketBuilder::ipv4(CIP4, VIP4).icmpv4_echo_request(1, 1).build(),
            Expect::NotMine,
            None,
        ),
    ];
    run(&mut w, steps);
}

/// ICMP errors about known connections that are not believed, whichever way they go:
/// a "fragmentation needed" below 576 or a "packet too big" below 1280 (a client could
/// otherwise lower the real server's path MTU towards the LIP every client shares), one
/// not addressed to the sender of the packet it quotes, and one with a wrong ICMP
/// checksum (ICMPv6's covers the addresses). Each is dropped untouched and counted;
/// the floors themselves pass.
#[test]
fn icmp_errors_that_are_not_believed() {
    let mut w = World::new(&config(64));
    let router4 = Ipv4Addr::new(10, 2, 0, 254);
    let router6: Ipv6Addr = "fd00:2::fe".parse().unwrap();
    let client_router = Ipv4Addr::new(198, 51, 100, 1);
    let client_router6: Ipv6Addr = "2001:db8:99::1".parse().unwrap();
    let (c6, v6, l6, r6) = (cip6(), vip6(), lip6(), rip6());
    // The server's reply as the client got it and as the server sent it; the client's
    // data as the server got it.
    let resp_client = t4(VIP4, 80, CIP4, 40000).seq(9).ack(2).flags(PSHACK).payload(&[7; 600]).build();
    let resp_server = t4(RIP4, 8080, LIP4, 1025).seq(9).ack(2).flags(PSHACK).payload(&[7; 600]).build();
    let data_server = t4(LIP4, 1025, RIP4, 8080).seq(1).ack(1).flags(PSHACK).payload(&[5; 600]).build();
    let resp6_client = t6(v6, 80, c6, 50000).seq(9).ack(2).flags(PSHACK).payload(&[7; 64]).build();
    let resp6_server = t6(r6, 8080, l6, 1025).seq(9).ack(2).flags(PSHACK).payload(&[7; 64]).build();
    let data6_server = t6(l6, 1025, r6, 8080).seq(1).ack(1).flags(PSHACK).payload(&[5; 64]).build();
    let frag_needed =
        |from, to, quote: &[u8], mtu| PacketBuilder::ipv4(from, to).icmpv4_error(3, 4, quote).next_hop_mtu(mtu).build();
    let too_big = |from, to, quote: &[u8], mtu| PacketBuilder::ipv6(from, to).icmpv6_error(2, 0, mtu, quote).build();
    let dropped = |desc, input, r| pkt(desc, input, Expect::Drop(r), None);
    // A wrong checksum: one bit of the quote flipped; ICMPv6: the message as built for
    // another destination, then sent to the right one (the pseudo-header differs).
    let mut damaged4 = PacketBuilder::ipv4(client_router, VIP4).icmpv4_error(3, 1, &resp_client).build();
    *damaged4.last_mut().unwrap() ^= 1;
    let mut damaged6 = PacketBuilder::ipv6(client_router6, l6).icmpv6_error(1, 3, 0, &resp6_client).build();
    damaged6[24..40].copy_from_slice(&v6.octets());
    let steps = vec![
        fwd(
            "SYN v4",
            t4(CIP4, 40000, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).flags(SYN).build(),
        ),
        fwd("SYN v6", t6(c6, 50000, v6, 80).flags(SYN).build(), r6, t6(l6, 1025, r6, 8080).flags(SYN).build()),
        dropped(
            "a client's fragmentation needed with MTU 68, towards the server",
            frag_needed(CIP4, VIP4, &resp_client[..28], 68),
            DropReason::IcmpMtuTooSmall,
        ),
        dropped(
            "575 from a router on the client's path",
            frag_needed(client_router, VIP4, &resp_client, 575),
            DropReason::IcmpMtuTooSmall,
        ),
        fwd(
            "576 goes on to the server",
            frag_needed(client_router, VIP4, &resp_client, 576),
            RIP4,
            frag_needed(LIP4, RIP4, &resp_server, 576),
        ),
        dropped(
            "towards the client, the same floor",
            frag_needed(router4, LIP4, &data_server, 552),
            DropReason::IcmpMtuTooSmall,
        ),
        dropped(
            "a packet too big of 1279 from the client's side",
            too_big(c6, v6, &resp6_client, 1279),
            DropReason::IcmpMtuTooSmall,
        ),
        dropped("and from the server's side", too_big(router6, l6, &data6_server, 1000), DropReason::IcmpMtuTooSmall),
        fwd("1280 goes on", too_big(client_router6, v6, &resp6_client, 1280), r6, too_big(l6, r6, &resp6_server, 1280)),
        dropped(
            "an error about the VIP's packet sent to the LIP",
            PacketBuilder::ipv4(client_router, LIP4).icmpv4_error(3, 1, &resp_client).build(),
            DropReason::IcmpMisaddressed,
        ),
        dropped(
            "an error about the LIP's packet sent to the VIP",
            PacketBuilder::ipv4(router4, VIP4).icmpv4_error(3, 1, &data_server).build(),
            DropReason::IcmpMisaddressed,
        ),
        dropped(
            "an ICMPv6 error about the LIP's packet sent to the client",
            PacketBuilder::ipv6(router6, c6).icmpv6_error(1, 3, 0, &data6_server).build(),
            DropReason::IcmpMisaddressed,
        ),
        dropped("a damaged ICMP error", damaged4, DropReason::IcmpErrorChecksum),
        dropped("an ICMPv6 error whose checksum is another destination's", damaged6, DropReason::IcmpErrorChecksum),
        check("each refusal counted by its reason", |w| {
            let s = w.engine.stats();
            assert_eq!(s.drops(DropReason::IcmpMtuTooSmall), 5);
            assert_eq!(s.drops(DropReason::IcmpMisaddressed), 3);
            assert_eq!(s.drops(DropReason::IcmpErrorChecksum), 2);
            assert_eq!((s.total.pkts_in, s.total.pkts_out), (4, 0));
        }),
    ];
    run(&mut w, steps);
}

/// What is refused without a connection, and what is not ours.
#[test]
fn refusals_and_strangers() {
    let mut w = World::new(&config(64));
    let steps = vec![
        pkt(
            "a TCP ACK without a connection is dropped",
            t4(CIP4, 41000, VIP4, 80).seq(5).ack(5).flags(ACK).build(),
            Expect::Drop(DropReason::NoConn),
            None,
        ),
        pkt(
            "a SYN-ACK towards a VIP without a connection is dropped",
            t4(CIP4, 41000, VIP4, 80).flags(SYNACK).build(),
            Expect::Drop(DropReason::NoConn),
            None,
        ),
        pkt(
            "a FIN without a connection is dropped",
            t4(CIP4, 41000, VIP4, 80).flags(FINACK).build(),
            Expect::Drop(DropReason::NoConn),
            None,
        ),
        pkt(
            "TCP to a VIP port without a service is not ours",
            t4(CIP4, 41000, VIP4, 8443).flags(SYN).build(),
            Expect::NotMine,
            None,
        ),
        pkt(
            "a fragment is dropped",
            PacketBuilder::ipv4(CIP4, VIP4).fragment(0, true).tcp(41000, 80).flags(SYN).payload(&[0; 16]).build(),
            Expect::Drop(DropReason::Fragment),
            None,
        ),
        pkt(
            "a truncated header is dropped",
            t4(CIP4, 41000, VIP4, 80).flags(SYN).build()[..30].to_vec(),
            Expect::Drop(DropReason::BadHeader),
            None,
        ),
        pkt(
            "IPv4-mapped addresses on IPv6 are refused",
            t6("::ffff:203.0.113.7".parse().unwrap(), 41000, vip6(), 80).flags(SYN).build(),
            Expect::Drop(DropReason::BadHeader),
            None,
        ),
        check("nothing was opened, the drops are counted", |w| {
            assert_eq!(w.engine.conns().len(), 0);
            let s = w.engine.stats();
            assert_eq!(s.drops(DropReason::NoConn), 3);
            assert_eq!(s.drops(DropReason::Fragment), 1);
            assert_eq!(s.drops(DropReason::BadHeader), 2);
        }),
    ];
    run(&mut w, steps);
}

/// A full pool (of established connections: nothing there is half-open or unproven to
/// give way) refuses new connections and leaves the existing ones working.
#[test]
fn pool_full_refuses_new_keeps_old() {
    let mut w = World::new(&config(2));
    let mut steps = vec![];
    for (cport, lport) in [(1, 1025), (2, 1026)] {
        steps.extend([
            fwd(
                "SYN",
                t4(CIP4, cport, VIP4, 80).flags(SYN).build(),
                RIP4,
                t4(LIP4, lport, RIP4, 8080).flags(SYN).build(),
            ),
            fwd(
                "SYN-ACK",
                t4(RIP4, 8080, LIP4, lport).seq(50).ack(1).flags(SYNACK).build(),
                CIP4,
                t4(VIP4, 80, CIP4, cport).seq(50).ack(1).flags(SYNACK).build(),
            ),
            pkt("ACK", t4(CIP4, cport, VIP4, 80).seq(1).ack(51).flags(ACK).build(), Expect::Fwd(RIP4.into()), None),
        ]);
    }
    steps.extend([
        pkt("third: pool full", t4(CIP4, 3, VIP4, 80).flags(SYN).build(), Expect::Drop(DropReason::PoolFull), None),
        fwd(
            "the first still works, both ways",
            t4(RIP4, 8080, LIP4, 1025).seq(51).ack(1).flags(ACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 1).seq(51).ack(1).flags(ACK).build(),
        ),
        pkt(
            "the second too",
            t4(CIP4, 2, VIP4, 80).seq(1).ack(51).flags(PSHACK).payload(b"hi").build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        check("refusal counted, scheduler untouched", |w| {
            assert_eq!(w.engine.stats().drops(DropReason::PoolFull), 1);
            assert_eq!(w.engine.sched().stats().scheduled, 2);
        }),
        at("the established ones expire", 900 * S + RES, 2),
        fwd(
            "room again",
            t4(CIP4, 3, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1027, RIP4, 8080).flags(SYN).build(),
        ),
    ]);
    run(&mut w, steps);
}

/// Four usable ports: each is used once per destination; the ninth connection is
/// refused; an expired connection gives its port back.
#[test]
fn local_port_exhaustion() {
    let mut cfg = config(64);
    cfg.port_range = PortRange { lo: 2000, hi: 2003 };
    let mut w = World::new(&cfg);
    let mut steps = vec![];
    for (i, p) in (2000..=2003).enumerate() {
        steps.push(fwd(
            "port towards RIP4",
            t4(CIP4, 100 + i as u16, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, p, RIP4, 8080).flags(SYN).build(),
        ));
    }
    for (i, p) in (2000..=2003).enumerate() {
        steps.push(fwd(
            "the same ports again towards another real server",
            t4(CIP4, 200 + i as u16, VIP4, 81).flags(SYN).build(),
            RIP4_B,
            t4(LIP4, p, RIP4_B, 8080).flags(SYN).build(),
        ));
    }
    steps.push(pkt(
        "no local port left towards RIP4",
        t4(CIP4, 300, VIP4, 80).flags(SYN).build(),
        Expect::Drop(DropReason::NoLocalPort),
        None,
    ));
    steps.push(check("refusal counted", |w| assert_eq!(w.engine.stats().drops(DropReason::NoLocalPort), 1)));
    // Keep one connection towards RIP4 alive past the others' expiry.
    steps.push(at("later", 30 * S, 0));
    steps.push(fwd(
        "keepalive on the first connection",
        t4(CIP4, 100, VIP4, 80).flags(SYN).build(),
        RIP4,
        t4(LIP4, 2000, RIP4, 8080).flags(SYN).build(),
    ));
    steps.push(at("the seven others expire", 60 * S + RES, 7));
    steps.push(fwd(
        "a freed port is found again (2000 is still taken)",
        t4(CIP4, 301, VIP4, 80).flags(SYN).build(),
        RIP4,
        t4(LIP4, 2001, RIP4, 8080).flags(SYN).build(),
    ));
    run(&mut w, steps);
}

/// With two workers, a reply to a port the other worker owns is handed over, and this
/// worker allocates only its own ports; a client-side ICMP error about a connection this
/// worker does not hold goes to every other worker (nothing in it says whose it is).
#[test]
fn replies_for_another_worker_are_redirected() {
    let cfg = EngineConfig { workers: 2, worker: 0, ..config(64) };
    let mut w = World::new(&cfg);
    w.engine.set_own_addrs([std::net::IpAddr::from(VIP4)]);
    let steps = vec![
        fwd(
            "worker 0 takes an even port",
            t4(CIP4, 7, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1026, RIP4, 8080).flags(SYN).build(),
        ),
        pkt(
            "a reply to odd port 1025 belongs to worker 1",
            t4(RIP4, 8080, LIP4, 1025).flags(SYNACK).build(),
            Expect::Redirect(1),
            None,
        ),
        pkt(
            "an ICMP error about worker 1's port too",
            PacketBuilder::ipv4(RIP4, LIP4).icmpv4_error(3, 3, &t4(LIP4, 1027, RIP4, 8080).flags(SYN).build()).build(),
            Expect::Redirect(1),
            None,
        ),
        pkt(
            "a reply to an even port without a connection is dropped here",
            t4(RIP4, 8080, LIP4, 1028).flags(SYNACK).build(),
            Expect::Drop(DropReason::ReplyNoConn),
            None,
        ),
        pkt(
            "a client's router's error about a connection this worker does not hold: any other's",
            PacketBuilder::ipv4(Ipv4Addr::new(203, 0, 113, 1), VIP4)
                .icmpv4_error(3, 4, &t4(VIP4, 80, CIP4, 8).flags(SYNACK).build())
                .next_hop_mtu(1400)
                .build(),
            Expect::Redirect(fnat::engine::EVERY_WORKER),
            None,
        ),
        pkt(
            "one about a connection it holds: translated here, towards the real server",
            PacketBuilder::ipv4(Ipv4Addr::new(203, 0, 113, 1), VIP4)
                .icmpv4_error(3, 4, &t4(VIP4, 80, CIP4, 7).flags(SYNACK).build())
                .next_hop_mtu(1400)
                .build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        check("ownership is a pure function of the port", |w| {
            let o = w.engine.pools().ownership();
            assert_eq!((o.owner(1025), o.owner(1026)), (1, 0));
        }),
    ];
    run(&mut w, steps);
}

/// A service with its own LIP set uses it; others use the default set; TOA off.
#[test]
fn per_service_local_addresses_and_toa_off() {
    let own = Ipv4Addr::new(10, 1, 0, 9);
    let mut cfg = config(64);
    cfg.toa = false;
    cfg.local_addrs.push(LocalAddrSet {
        service: Some(fnat::service::ServiceKey::new(Proto::Tcp, VIP4.into(), 81)),
        lips: vec![own.into()],
    });
    let mut w = World::new(&cfg);
    let steps = vec![
        fwd(
            "port 81 uses its own LIP",
            t4(CIP4, 9, VIP4, 81).flags(SYN).build(),
            RIP4_B,
            t4(own, 1025, RIP4_B, 8080).flags(SYN).build(),
        ),
        fwd(
            "port 80 the default one",
            t4(CIP4, 9, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).flags(SYN).build(),
        ),
        fwd(
            "TOA off: the MSS is left alone",
            t4(RIP4, 8080, LIP4, 1025).ack(1).flags(SYNACK).mss(1460).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 9).ack(1).flags(SYNACK).mss(1460).build(),
        ),
        fwd(
            "TOA off: no option on the handshake ACK",
            t4(CIP4, 9, VIP4, 80).seq(1).ack(1).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1).ack(1).flags(ACK).build(),
        ),
    ];
    run(&mut w, steps);
}

/// The control-side helpers: listing, expire by real server, flush.
#[test]
fn control_helpers() {
    let mut w = World::new(&config(64));
    for i in 0..10u16 {
        let (v, _) = w.packet(&t4(CIP4, 3000 + i, VIP4, 80 + (i % 2)).flags(SYN).build(), 0);
        assert!(matches!(v, fnat::engine::Verdict::Forward { .. }));
    }
    let (page, next) = w.engine.list(0, 4, 0);
    assert_eq!(page.len(), 4);
    let mut all = page;
    let mut cur = next;
    while let Some(c) = cur {
        let (p, n) = w.engine.list(c, 4, 0);
        all.extend(p);
        cur = n;
    }
    assert_eq!(all.len(), 10);
    assert_eq!(all[0].state_name(), "SYN_RECV");
    assert_eq!(all[0].expires_ms, 60_000);
    assert_eq!(all[0].client, "203.0.113.7:3000".parse().unwrap());
    assert_eq!(all[0].local, "10.1.0.1:1025".parse().unwrap());
    let rs_b = all.iter().find(|c| c.real.ip() == IpAddr::from(RIP4_B)).unwrap().rs;
    let mut freed = 0;
    let mut cur = Some(0);
    while let Some(c) = cur {
        let (f, n) = w.engine.expire_rs(fnat::service::RsId(rs_b), c, 3);
        freed += f;
        cur = n;
    }
    assert_eq!(freed, 5);
    assert_eq!(w.engine.conns().len(), 5);
    assert_eq!(w.engine.flush(), 5);
    assert_eq!(w.engine.conns().len(), 0);
    assert_eq!(w.engine.wheel().len(), 0);
    let t = w.engine.stats().total;
    assert_eq!((t.conns, t.active, t.inactive), (10, 0, 0));
    assert!(w.engine.stats_snapshot().drops.contains_key("pool_full"));
}

/// In a large pool with few connections, a listing page, a sync walk and an expiry
/// sweep look at a bounded window of slots each (the worker answers between bursts):
/// the pages may be empty, and paging on still finds every connection.
#[test]
fn sparse_pools_are_walked_in_bounded_windows() {
    use fnat::engine::listing::LIST_SCAN_SLOTS;
    let cap = 2 * LIST_SCAN_SLOTS + LIST_SCAN_SLOTS / 2;
    let mut w = World::new(&config(cap));
    for i in 0..3u16 {
        let (v, _) = w.packet(&t4(CIP4, 3000 + i, VIP4, 80).flags(SYN).build(), 0);
        assert!(matches!(v, fnat::engine::Verdict::Forward { .. }));
    }
    let mut pages = Vec::new();
    let mut cur = Some(0);
    while let Some(c) = cur {
        let (p, n) = w.engine.list(c, 10, 0);
        pages.push((p.len(), n));
        cur = n;
    }
    assert_eq!(pages, vec![(3, Some(LIST_SCAN_SLOTS)), (0, Some(2 * LIST_SCAN_SLOTS)), (0, None)]);
    assert_eq!(w.engine.list(0, 2, 0).1, Some(2), "a full page goes on from the next connection");
    let rs = w.engine.list(0, 1, 0).0[0].rs;
    let (freed, next) = w.engine.expire_rs(fnat::service::RsId(rs), 3, 1000);
    assert_eq!((freed, next), (0, Some(1003)));
}

/// The burst path gives the same verdicts and packets as one by one, including a
/// SYN and its handshake ACK in the same burst.
#[test]
fn burst_matches_single() {
    use fnat::buf::{PacketBuf, VecBuf};
    let mut inputs = vec![];
    for i in 0..40u16 {
        inputs.push(t4(CIP4, 6000 + i, VIP4, 80).seq(1).flags(SYN).build());
    }
    for i in 0..40u16 {
        inputs.push(t4(RIP4, 8080, LIP4, 1025 + i).seq(5).ack(2).flags(SYNACK).mss(1400).build());
        inputs.push(t4(CIP4, 6000 + i, VIP4, 80).seq(2).ack(6).flags(ACK).build());
    }
    inputs.push(t4(CIP4, 1, VIP4, 80).flags(ACK).build());
    let mut a = World::new(&config(256));
    let single: Vec<_> = inputs.iter().map(|p| a.packet(p, 0)).collect();
    let mut b = World::new(&config(256));
    let mut bufs: Vec<VecBuf> = inputs.iter().map(|p| VecBuf::new(p)).collect();
    let l3 = vec![0; bufs.len()];
    let mut out = vec![fnat::engine::Verdict::NotMine; bufs.len()];
    b.engine.process_burst(&b.table, &mut bufs, &l3, 0, &mut out);
    for (i, ((v, p), (bv, bb))) in single.iter().zip(out.iter().zip(&bufs)).enumerate() {
        assert_eq!(v, bv, "verdict {i}");
        assert_eq!(p.as_slice(), bb.data(), "packet {i}");
    }
    assert_eq!(b.engine.stats().total.active, 40);
}

/// The SYN_RECV limit (2 here): a third half-open connection evicts the oldest one,
/// whose local port is then reused; the established connection is never touched.
#[test]
fn syn_recv_limit_evicts_the_oldest() {
    use fnat::stats::ConnEvent;
    let mut cfg = config(64);
    cfg.syn_recv_max = 2;
    cfg.port_range = PortRange { lo: 2000, hi: 2002 };
    let mut w = World::new(&cfg);
    let toa = toa4(CIP4, 1);
    let steps = vec![
        fwd(
            "E: SYN",
            t4(CIP4, 1, VIP4, 80).seq(1).flags(SYN).build(),
            RIP4,
            t4(LIP4, 2000, RIP4, 8080).seq(1).flags(SYN).build(),
        ),
        fwd(
            "E: SYN-ACK",
            t4(RIP4, 8080, LIP4, 2000).seq(50).ack(2).flags(SYNACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 1).seq(50).ack(2).flags(SYNACK).build(),
        ),
        fwd(
            "E: handshake ACK with TOA: ESTABLISHED",
            t4(CIP4, 1, VIP4, 80).seq(2).ack(51).flags(ACK).build(),
            RIP4,
            t4(LIP4, 2000, RIP4, 8080).seq(2).ack(51).flags(ACK).option(&toa).build(),
        ),
        fwd(
            "S1: half-open",
            t4(CIP4, 2, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 2001, RIP4, 8080).flags(SYN).build(),
        ),
        at("a second later", S, 0),
        fwd(
            "S2: half-open",
            t4(CIP4, 3, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 2002, RIP4, 8080).flags(SYN).build(),
        ),
        check("two in SYN_RECV, at the limit", |w| assert_eq!(w.engine.syn_recv(), (2, 2))),
        fwd(
            "S3 evicts S1, the oldest, and reuses its port (2000 is E's)",
            t4(CIP4, 4, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 2001, RIP4, 8080).flags(SYN).build(),
        ),
        check("eviction counted; S1 gone, S2 and E still there", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::SynRecvEvicted), 1);
            assert_eq!(w.engine.syn_recv(), (2, 2));
            assert_eq!(state_of(w, Proto::Tcp, CIP4.into(), 2, VIP4.into(), 80), None);
            assert_eq!(state_of(w, Proto::Tcp, CIP4.into(), 3, VIP4.into(), 80), Some(TcpState::SynRecv));
            assert_eq!(state_of(w, Proto::Tcp, CIP4.into(), 1, VIP4.into(), 80), Some(TcpState::Established));
            let t = w.engine.stats().total;
            assert_eq!((t.conns, t.active, t.inactive), (4, 1, 2));
        }),
        live(3),
        pkt(
            "S1's handshake ACK finds no connection",
            t4(CIP4, 2, VIP4, 80).seq(1).ack(1).flags(ACK).build(),
            Expect::Drop(DropReason::NoConn),
            None,
        ),
        fwd(
            "E still forwards, both ways",
            t4(CIP4, 1, VIP4, 80).seq(2).ack(51).flags(PSHACK).payload(b"hi").build(),
            RIP4,
            t4(LIP4, 2000, RIP4, 8080).seq(2).ack(51).flags(PSHACK).payload(b"hi").build(),
        ),
        fwd(
            "E's reply",
            t4(RIP4, 8080, LIP4, 2000).seq(51).ack(4).flags(ACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 1).seq(51).ack(4).flags(ACK).build(),
        ),
        fwd(
            "S4 evicts S2, now the oldest, and reuses its port",
            t4(CIP4, 5, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 2002, RIP4, 8080).flags(SYN).build(),
        ),
        check("E never evicted", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::SynRecvEvicted), 2);
            assert_eq!(state_of(w, Proto::Tcp, CIP4.into(), 1, VIP4.into(), 80), Some(TcpState::Established));
            assert_eq!(w.engine.stats_snapshot().events["syn_recv_evicted"], 2);
        }),
        live(3),
        at("the half-open ones expire; E stays", 61 * S + RES, 2),
        check("the SYN_RECV list is empty", |w| assert_eq!(w.engine.syn_recv(), (0, 2))),
    ];
    run(&mut w, steps);
}

/// A service deleted and added again while its old connections hold local ports: its
/// LIP's cursor goes on where it stood (it belongs to the LIP, not the service), so new
/// connections take the free ports and nothing is refused until the range is really
/// used up.
#[test]
fn lip_cursor_survives_service_delete_and_readd() {
    use fnat::service::{ServiceKey, ServiceTable};
    let lip = Ipv4Addr::new(10, 1, 0, 9);
    let key = ServiceKey::new(Proto::Tcp, VIP4.into(), 80);
    let mut cfg = config(64);
    cfg.port_range = PortRange { lo: 2000, hi: 2007 };
    cfg.local_addrs.push(LocalAddrSet { service: Some(key), lips: vec![lip.into()] });
    let mut w = World::new(&cfg);
    let mut steps = vec![];
    for i in 0..5u16 {
        steps.push(fwd(
            "connections hold ports 2000..=2004",
            t4(CIP4, 100 + i, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(lip, 2000 + i, RIP4, 8080).flags(SYN).build(),
        ));
    }
    run(&mut w, steps);

    // rvsadm -D: the service goes, its LIP set empties (its connections stay).
    let all = services();
    let without: Vec<_> = all.iter().filter(|s| s.key() != key).cloned().collect();
    w.table = ServiceTable::build(&without, Some(&w.table)).unwrap();
    assert!(!w.engine.set_local_addrs(Some(key), &[]));
    w.engine.bind(&w.table);
    // rvsadm -A, then -P ... -z LIP: back, with the same LIP.
    w.table = ServiceTable::build(&all, Some(&w.table)).unwrap();
    w.engine.set_local_addrs(Some(key), &[lip.into()]);
    w.engine.bind(&w.table);

    let mut steps = vec![
        check("the LIP's cursor is where it stood", move |w| {
            assert_eq!(w.engine.pools().cursor(&Addr::from(IpAddr::from(lip))), Some(2005))
        }),
        live(5),
    ];
    for i in 0..3u16 {
        steps.push(fwd(
            "the re-added service continues at 2005",
            t4(CIP4, 200 + i, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(lip, 2005 + i, RIP4, 8080).flags(SYN).build(),
        ));
    }
    steps.push(pkt(
        "every port towards RIP4:8080 is held: the first refusal, after the whole range",
        t4(CIP4, 300, VIP4, 80).flags(SYN).build(),
        Expect::Drop(DropReason::NoLocalPort),
        None,
    ));
    steps.push(check("one refusal only", |w| assert_eq!(w.engine.stats().drops(DropReason::NoLocalPort), 1)));
    steps.push(fwd(
        "the same ports towards another real server are free",
        t4(CIP4, 301, VIP4, 81).flags(SYN).build(),
        RIP4_B,
        t4(LIP4, 2000, RIP4_B, 8080).flags(SYN).build(),
    ));
    run(&mut w, steps);
}

/// TIME_WAIT reuse (LVS conn_reuse_mode): a SYN on a tuple in TIME_WAIT or CLOSE
/// expires the old connection and is scheduled afresh (the other real server), through
/// the old connection's local port (so a server holding it in TIME_WAIT sees the same
/// client again), with TOA on its handshake ACK; in CLOSE_WAIT the old one goes on.
#[test]
fn time_wait_reuse_schedules_afresh_with_toa() {
    use fnat::stats::ConnEvent;
    let svcs = vec![svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 8080), rs(RIP4_B.into(), 8080)])];
    let mut w = World::with_services(&config(64), &svcs);
    let toa = toa4(CIP4, 40000);
    let steps = vec![
        fwd(
            "SYN",
            t4(CIP4, 40000, VIP4, 80).seq(1).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(1).flags(SYN).build(),
        ),
        fwd(
            "SYN-ACK",
            t4(RIP4, 8080, LIP4, 1025).seq(100).ack(2).flags(SYNACK).mss(1460).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(100).ack(2).flags(SYNACK).mss(1452).build(),
        ),
        fwd(
            "handshake ACK with TOA",
            t4(CIP4, 40000, VIP4, 80).seq(2).ack(101).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(2).ack(101).flags(ACK).option(&toa).build(),
        ),
        fwd(
            "client FIN",
            t4(CIP4, 40000, VIP4, 80).seq(2).ack(101).flags(FINACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(2).ack(101).flags(FINACK).build(),
        ),
        fwd(
            "server FIN",
            t4(RIP4, 8080, LIP4, 1025).seq(101).ack(3).flags(FINACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(101).ack(3).flags(FINACK).build(),
        ),
        fwd(
            "last ACK",
            t4(CIP4, 40000, VIP4, 80).seq(3).ack(102).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(3).ack(102).flags(ACK).build(),
        ),
        state4("TIME_WAIT", 40000, TcpState::TimeWait),
        fwd(
            "a new SYN from the same port: a fresh connection to the next real server, through the same local port",
            t4(CIP4, 40000, VIP4, 80).seq(9000).flags(SYN).mss(1460).build(),
            RIP4_B,
            t4(LIP4, 1025, RIP4_B, 8080).seq(9000).flags(SYN).mss(1460).build(),
        ),
        check("the old connection expired at once, reuse counted", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::ConnReused), 1);
            assert_eq!(w.engine.stats().events(ConnEvent::LocalPortKept), 1);
            assert_eq!(w.engine.pools().cursor(&Addr::from(IpAddr::from(LIP4))), Some(1026), "the cursor did not move");
            assert_eq!(w.engine.conns().len(), 1);
            let t = w.engine.stats().total;
            assert_eq!((t.conns, t.active, t.inactive), (2, 0, 1));
        }),
        state4("SYN_RECV", 40000, TcpState::SynRecv),
        pkt(
            "a late segment of the old connection finds nothing",
            t4(RIP4, 8080, LIP4, 1025).seq(102).ack(3).flags(ACK).build(),
            Expect::Drop(DropReason::ReplyNoConn),
            None,
        ),
        fwd(
            "the new SYN-ACK: MSS clamped for TOA",
            t4(RIP4_B, 8080, LIP4, 1025).seq(700).ack(9001).flags(SYNACK).mss(1460).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(700).ack(9001).flags(SYNACK).mss(1452).build(),
        ),
        fwd(
            "the new handshake ACK carries TOA",
            t4(CIP4, 40000, VIP4, 80).seq(9001).ack(701).flags(ACK).build(),
            RIP4_B,
            t4(LIP4, 1025, RIP4_B, 8080).seq(9001).ack(701).flags(ACK).option(&toa).build(),
        ),
        state4("ESTABLISHED", 40000, TcpState::Established),
        fwd(
            "the server resets: CLOSE",
            t4(RIP4_B, 8080, LIP4, 1025).seq(701).flags(RST).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(701).flags(RST).build(),
        ),
        state4("CLOSE", 40000, TcpState::Close),
        fwd(
            "a SYN in CLOSE is a new connection too",
            t4(CIP4, 40000, VIP4, 80).seq(20000).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(20000).flags(SYN).build(),
        ),
        check("second reuse, the port kept again", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::ConnReused), 2);
            assert_eq!(w.engine.stats().events(ConnEvent::LocalPortKept), 2);
        }),
        fwd(
            "SYN-ACK",
            t4(RIP4, 8080, LIP4, 1025).seq(5).ack(20001).flags(SYNACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5).ack(20001).flags(SYNACK).build(),
        ),
        fwd(
            "handshake ACK with TOA",
            t4(CIP4, 40000, VIP4, 80).seq(20001).ack(6).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(20001).ack(6).flags(ACK).option(&toa).build(),
        ),
        fwd(
            "client FIN: CLOSE_WAIT",
            t4(CIP4, 40000, VIP4, 80).seq(20001).ack(6).flags(FINACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(20001).ack(6).flags(FINACK).build(),
        ),
        state4("CLOSE_WAIT", 40000, TcpState::CloseWait),
        fwd(
            "a SYN in CLOSE_WAIT keeps the old mapping (as LVS)",
            t4(CIP4, 40000, VIP4, 80).seq(30000).flags(SYN).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(30000).flags(SYN).build(),
        ),
        check("no third reuse", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::ConnReused), 2);
            assert_eq!(w.engine.conns().len(), 1);
        }),
    ];
    run(&mut w, steps);
}

/// A reused client port's local port already taken towards the server its new
/// connection goes to: the cursor's next free port instead, nothing kept.
#[test]
fn time_wait_reuse_takes_the_cursors_port_when_its_own_is_busy() {
    use fnat::stats::ConnEvent;
    let svcs = vec![
        svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 8080), rs(RIP4_B.into(), 8080)]),
        svc(Proto::Tcp, VIP4.into(), 81, &[rs(RIP4_B.into(), 8080)]),
        svc(Proto::Tcp, VIP4.into(), 82, &[rs(RIP4.into(), 8080)]),
    ];
    let mut cfg = config(64);
    cfg.port_range = PortRange { lo: 1025, hi: 1027 };
    let mut w = World::with_services(&cfg, &svcs);
    let syn = |cport: u16, vport: u16| t4(CIP4, cport, VIP4, vport).seq(1).flags(SYN).build();
    let out = |lport: u16, rip: Ipv4Addr| t4(LIP4, lport, rip, 8080).seq(1).flags(SYN).build();
    let steps = vec![
        fwd("A to :80, its first server", syn(40000, 80), RIP4, out(1025, RIP4)),
        fwd("to :82, the same server", syn(40001, 82), RIP4, out(1026, RIP4)),
        fwd("again", syn(40002, 82), RIP4, out(1027, RIP4)),
        fwd("D to :81, the other server: round to 1025", syn(40003, 81), RIP4_B, out(1025, RIP4_B)),
        fwd(
            "A's server answers",
            t4(RIP4, 8080, LIP4, 1025).seq(100).ack(2).flags(SYNACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(100).ack(2).flags(SYNACK).build(),
        ),
        fwd(
            "A's ACK",
            t4(CIP4, 40000, VIP4, 80).seq(2).ack(101).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(2).ack(101).flags(ACK).option(&toa4(CIP4, 40000)).build(),
        ),
        fwd(
            "A's FIN",
            t4(CIP4, 40000, VIP4, 80).seq(2).ack(101).flags(FINACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(2).ack(101).flags(FINACK).build(),
        ),
        fwd(
            "the server's FIN",
            t4(RIP4, 8080, LIP4, 1025).seq(101).ack(3).flags(FINACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(101).ack(3).flags(FINACK).build(),
        ),
        fwd(
            "A's last ACK",
            t4(CIP4, 40000, VIP4, 80).seq(3).ack(102).flags(ACK).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(3).ack(102).flags(ACK).build(),
        ),
        state4("TIME_WAIT", 40000, TcpState::TimeWait),
        fwd(
            "A reuses its port: :80's other server, where D holds 1025: the cursor's 1026",
            syn(40000, 80),
            RIP4_B,
            out(1026, RIP4_B),
        ),
        check("reused, the port not kept", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::ConnReused), 1);
            assert_eq!(w.engine.stats().events(ConnEvent::LocalPortKept), 0);
        }),
    ];
    run(&mut w, steps);
}

/// No local port left towards a real server, every one held by a half-open
/// connection: a new SYN takes the port of the oldest one idle for a second or more
/// (evicted); a younger one is never taken, and an established one never.
#[test]
fn no_port_left_takes_an_idle_half_open_ones() {
    use fnat::stats::ConnEvent;
    let mut cfg = config(64);
    cfg.port_range = PortRange { lo: 2000, hi: 2001 };
    let mut w = World::new(&cfg);
    let steps = vec![
        fwd(
            "H1: half-open",
            t4(CIP4, 1, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 2000, RIP4, 8080).flags(SYN).build(),
        ),
        fwd(
            "H2: half-open",
            t4(CIP4, 2, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 2001, RIP4, 8080).flags(SYN).build(),
        ),
        pkt(
            "both just started: refused",
            t4(CIP4, 3, VIP4, 80).flags(SYN).build(),
            Expect::Drop(DropReason::NoLocalPort),
            None,
        ),
        at("a second later", S, 0),
        fwd(
            "H1, idle for a second, gives up its port",
            t4(CIP4, 4, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 2000, RIP4, 8080).flags(SYN).build(),
        ),
        check("H1 evicted", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::SynRecvEvicted), 1);
            assert_eq!(state_of(w, Proto::Tcp, CIP4.into(), 1, VIP4.into(), 80), None);
        }),
        fwd(
            "H2 completes its handshake",
            t4(RIP4, 8080, LIP4, 2001).ack(1).flags(SYNACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 2).ack(1).flags(SYNACK).build(),
        ),
        fwd(
            "H2 ESTABLISHED",
            t4(CIP4, 2, VIP4, 80).seq(1).ack(1).flags(ACK).build(),
            RIP4,
            t4(LIP4, 2001, RIP4, 8080).seq(1).ack(1).flags(ACK).option(&toa4(CIP4, 2)).build(),
        ),
        at("later still", 3 * S, 0),
        fwd(
            "the half-open H4 is taken, never the established H2",
            t4(CIP4, 5, VIP4, 80).flags(SYN).build(),
            RIP4,
            t4(LIP4, 2000, RIP4, 8080).flags(SYN).build(),
        ),
        pkt(
            "then nothing is left to take",
            t4(CIP4, 6, VIP4, 80).flags(SYN).build(),
            Expect::Drop(DropReason::NoLocalPort),
            None,
        ),
        check("two evictions, H2 intact", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::SynRecvEvicted), 2);
            assert_eq!(state_of(w, Proto::Tcp, CIP4.into(), 2, VIP4.into(), 80), Some(TcpState::Established));
        }),
    ];
    run(&mut w, steps);
}

/// An eviction inside one burst: the SYN that evicts a half-open connection takes its
/// slot; a packet of the evicted connection later in the same burst had looked that
/// slot up, and is looked up again instead of following the new connection's mapping.
#[test]
fn eviction_within_a_burst() {
    use fnat::buf::{PacketBuf, VecBuf};
    let mut cfg = config(64);
    cfg.syn_recv_max = 1;
    let mut w = World::new(&cfg);
    let (v, _) = w.packet(&t4(CIP4, 1, VIP4, 80).seq(1).flags(SYN).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }));
    let inputs = [t4(CIP4, 2, VIP4, 80).seq(1).flags(SYN).build(), t4(CIP4, 1, VIP4, 80).seq(1).flags(SYN).build()];
    let mut bufs: Vec<VecBuf> = inputs.iter().map(|p| VecBuf::new(p)).collect();
    let mut out = vec![fnat::engine::Verdict::NotMine; 2];
    w.engine.process_burst(&w.table, &mut bufs, &[0, 0], 0, &mut out);
    assert_eq!(bufs[0].data(), t4(LIP4, 1026, RIP4, 8080).seq(1).flags(SYN).build().as_slice(), "evicts the first");
    assert_eq!(
        bufs[1].data(),
        t4(LIP4, 1027, RIP4, 8080).seq(1).flags(SYN).build().as_slice(),
        "the evicted client's SYN again: a new connection, not the second's mapping"
    );
    assert_eq!(w.engine.conns().len(), 1);
}

/// Edge policy on new flows (see `fnat::edge`), in its order: the global deny set,
/// a service's deny list, its allow list, its rate limit, its per-source limit; a
/// freed connection releases its source's count; established connections are never
/// checked, so a rule added later spares them.
#[test]
fn edge_policy_refuses_new_flows_in_order() {
    use fnat::edge::RateLimit;
    use std::sync::Arc;
    let net = |s: &str| s.parse::<ipnet::IpNet>().unwrap();
    let other = Ipv4Addr::new(198, 51, 101, 5);
    let mut web = svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 8080)]);
    web.deny = vec![net("198.51.100.0/24")];
    web.source_limit = 1;
    let mut api = svc(Proto::Tcp, VIP4.into(), 81, &[rs(RIP4_B.into(), 8080)]);
    api.allow = vec![net("203.0.113.0/28")];
    api.rate_limit = Some(RateLimit { rate: 2, burst: 2 });
    let mut w = World::with_services(&config(64), &[web, api]);
    let global = [(IpAddr::from(Ipv4Addr::new(198, 18, 0, 0)), 15)];
    w.engine.set_deny_set(Arc::new(fnat::denyset::PrefixSet::build(global)));
    let syn = |src: Ipv4Addr, sport: u16, vport: u16| t4(src, sport, VIP4, vport).seq(1).flags(SYN).build();
    let steps = vec![
        pkt("global deny", syn(Ipv4Addr::new(198, 19, 2, 3), 1, 80), Expect::Drop(DropReason::Denied), None),
        pkt("service deny", syn(Ipv4Addr::new(198, 51, 100, 9), 1, 80), Expect::Drop(DropReason::Denied), None),
        pkt("first of CIP4", syn(CIP4, 1, 80), Expect::Fwd(RIP4.into()), None),
        pkt("second of CIP4: at its limit of 1", syn(CIP4, 2, 80), Expect::Drop(DropReason::SourceLimit), None),
        pkt("another source has its own count", syn(other, 1, 80), Expect::Fwd(RIP4.into()), None),
        check("counted: two sources tracked, refusals counted", |w| {
            assert_eq!(w.engine.edge().sources().len(), 2);
            assert_eq!(w.engine.stats().drops(DropReason::Denied), 2);
            assert_eq!(w.engine.stats().drops(DropReason::SourceLimit), 1);
        }),
        at("both half-open connections expire", 61 * S + RES, 2),
        check("their counts are released", |w| assert!(w.engine.edge().sources().is_empty())),
        pkt("CIP4 may open again", syn(CIP4, 3, 80), Expect::Fwd(RIP4.into()), None),
        pkt("not in the allow list", syn(other, 2, 81), Expect::Drop(DropReason::NotAllowed), None),
        pkt("rate: 1st of a burst of 2", syn(CIP4, 10, 81), Expect::Fwd(RIP4_B.into()), None),
        pkt("rate: 2nd", syn(CIP4, 11, 81), Expect::Fwd(RIP4_B.into()), None),
        pkt("rate: 3rd refused", syn(CIP4, 12, 81), Expect::Drop(DropReason::RateLimited), None),
        pkt(
            "a flow with a connection is never rate limited",
            t4(CIP4, 10, VIP4, 81).seq(2).ack(1).flags(ACK).build(),
            Expect::Fwd(RIP4_B.into()),
            None,
        ),
        at("half a second later", 62 * S + RES + 500, 0),
        pkt("one token back", syn(CIP4, 13, 81), Expect::Fwd(RIP4_B.into()), None),
        check("stats name the reasons", |w| {
            let d = &w.engine.stats_snapshot().drops;
            assert_eq!((d["denied"], d["not_allowed"], d["rate_limited"], d["source_limit"]), (2, 1, 1, 1));
        }),
        check("each service counts the new flows it refused", |w| {
            let refused = |id| w.engine.stats().service(id).map(|c| c.refused);
            assert_eq!((refused(0), refused(1), w.engine.stats().total.refused), (Some(3), Some(2), 5));
        }),
    ];
    run(&mut w, steps);
}

/// More services and real servers than the counters were first sized for (1,024 and
/// 16,384 by default), and ids that only grow: the counters grow with the generation,
/// so the last service and its servers count their connections like the first.
#[test]
fn counters_cover_every_service_and_real_server_id() {
    let cfg = config(1024);
    let (services, per) = (1500u16, 12u16);
    let svcs: Vec<_> = (0..services)
        .map(|i| {
            let servers: Vec<_> = (0..per).map(|r| rs(RIP4.into(), 20_000 + r)).collect();
            svc(Proto::Tcp, VIP4.into(), 10_000 + i, &servers)
        })
        .collect();
    assert!(usize::from(services) > cfg.max_services && usize::from(services * per) > cfg.max_real_servers);
    let mut w = World::with_services(&cfg, &svcs);
    let (v, _) = w.packet(&t4(CIP4, 40000, VIP4, 10_000 + services - 1).seq(1).flags(SYN).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
    let last = w.table.service(w.table.lookup(Proto::Tcp, VIP4.into(), 10_000 + services - 1).expect("service"));
    let stats = w.engine.stats();
    assert_eq!(stats.service(last.id.0).map(|c| c.conns), Some(1), "the last service counts");
    let rs_conns: u64 = last.dests.iter().filter_map(|d| stats.real_server(d.id.0)).map(|c| c.conns).sum();
    assert_eq!(rs_conns, 1, "and its real server");
}

/// The connections holding each LIP's ports (what `rvs_lip_connections` reports): one
/// per connection opened on it, none again once they are freed.
#[test]
fn lip_connections_are_counted_while_they_live() {
    let mut w = World::new(&config(1024));
    let lip =
        |w: &World| w.engine.pools().lip_conns().find(|(a, _)| *a == Addr::from(IpAddr::from(LIP4))).map(|(_, n)| n);
    for cport in [40000, 40001, 40002] {
        let (v, _) = w.packet(&t4(CIP4, cport, VIP4, 80).seq(1).flags(SYN).build(), 0);
        assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
    }
    assert_eq!(lip(&w), Some(3));
    w.now = 3600 * S;
    assert_eq!(w.expire(), 3);
    assert_eq!(lip(&w), Some(0));
}

/// A service's own timeout (`conn_timeout`, DPVS's `--conn-timeout`): its established TCP
/// connections and its UDP ones idle out after it; its other TCP states and the other
/// services keep the global timeouts; a change reaches live connections at their next
/// packet.
#[test]
fn service_conn_timeout() {
    let mut svcs = services();
    svcs[0].conn_timeout = 3600; // TCP VIP4:80
    svcs[2].conn_timeout = 5; // UDP VIP4:53
    let mut w = World::with_services(&config(64), &svcs);
    let udp4 = |cport: u16| PacketBuilder::ipv4(CIP4, VIP4).udp(cport, 53).payload(b"q").build();
    let steps = vec![
        pkt("SYN", t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).build(), Expect::Fwd(RIP4.into()), None),
        pkt(
            "SYN-ACK",
            t4(RIP4, 8080, LIP4, 1025).seq(5000).ack(1001).flags(SYNACK).build(),
            Expect::Fwd(CIP4.into()),
            None,
        ),
        pkt("ACK", t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(ACK).build(), Expect::Fwd(RIP4.into()), None),
        pkt(
            "data (the established fast path)",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(b"x").build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        state4("established", 40000, TcpState::Established),
        pkt(
            "a SYN left half-open",
            t4(CIP4, 40001, VIP4, 80).seq(9).flags(SYN).build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        pkt("UDP to the 5 s service", udp4(5000), Expect::Fwd(RIP4_UDP.into()), None),
        pkt(
            "UDP to the IPv6 service, which has none",
            PacketBuilder::ipv6(cip6(), vip6()).udp(5000, 53).payload(b"q").build(),
            Expect::Fwd(rip6().into()),
            None,
        ),
        at("the service's UDP connection lives 5 s", 5 * S - 1, 0),
        at("and no more", 5 * S + RES, 1),
        at("the half-open connection keeps SYN_RECV's 60 s", 60 * S + RES, 1),
        at("the other service's UDP connection keeps the global 300 s", 300 * S + RES, 1),
        at("the established connection outlives the global 900 s", 900 * S + RES, 0),
        live(1),
        at("until its service's 3600 s", 3600 * S + RES, 1),
        at("later", 4000 * S, 0),
        pkt("UDP again", udp4(5001), Expect::Fwd(RIP4_UDP.into()), None),
    ];
    run(&mut w, steps);
    svcs[2].conn_timeout = 600;
    w.table = Table::build(&svcs, Some(&w.table)).unwrap();
    let steps = vec![
        at("1 s on", 4001 * S, 0),
        pkt("a datagram after the change", udp4(5001), Expect::Fwd(RIP4_UDP.into()), None),
        at("the old 5 s are gone", 4006 * S + RES, 0),
        at("the new 600 s run from that datagram", 4601 * S + RES, 1),
    ];
    run(&mut w, steps);
}
