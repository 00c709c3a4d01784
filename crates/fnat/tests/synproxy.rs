//! Fixture tables for the SYN proxy: exact input and output packets (built with wire's
//! builder, judged by etherparse), the engine's verdicts and counters, over IPv4 and
//! IPv6, with and without timestamps.

mod common;

use std::net::{IpAddr, Ipv4Addr};

use common::*;
use fnat::engine::config::EngineConfig;
use fnat::service::{ServiceConfig, ServiceTable};
use fnat::stats::DropReason;
use fnat::synproxy::cookie::{CookieData, CookieKey};
use fnat::synproxy::{SynProxyConfig, SynProxyEvent, SynProxyMode};
use fnat::tcp_state::TcpState;
use fnat::types::Proto;
use wire::builder::{PacketBuilder, TcpBuilder};

/// The cookie key of an engine built with `hash_seed: Some(42)`.
const KEY: CookieKey = CookieKey::new(42, !42);

/// What the proxy writes: a fresh IPv4 header with DF.
fn c4(src: Ipv4Addr, sport: u16, dst: Ipv4Addr, dport: u16) -> TcpBuilder {
    PacketBuilder::ipv4(src, dst).dont_frag().tcp(sport, dport)
}

/// The legs of the proxied IPv4 connection CIP4:`cport` -> VIP4:80, LIP4:`lport` ->
/// RIP4:8080, as TCP segments to finish.
#[derive(Clone, Copy)]
struct Conn4 {
    cport: u16,
    lport: u16,
}

impl Conn4 {
    /// Client to VIP.
    fn c2v(self) -> TcpBuilder {
        t4(CIP4, self.cport, VIP4, 80)
    }

    /// VIP to client, translated from the server's.
    fn v2c(self) -> TcpBuilder {
        t4(VIP4, 80, CIP4, self.cport)
    }

    /// VIP to client, written by the proxy.
    fn v2c_df(self) -> TcpBuilder {
        c4(VIP4, 80, CIP4, self.cport)
    }

    /// LIP to real server, translated from the client's.
    fn l2r(self) -> TcpBuilder {
        t4(LIP4, self.lport, RIP4, 8080)
    }

    /// LIP to real server, written by the proxy.
    fn l2r_df(self) -> TcpBuilder {
        c4(LIP4, self.lport, RIP4, 8080)
    }

    /// Real server to LIP.
    fn r2l(self) -> TcpBuilder {
        t4(RIP4, 8080, LIP4, self.lport)
    }
}

fn mss(v: u16) -> Vec<u8> {
    let b = v.to_be_bytes();
    vec![2, 4, b[0], b[1]]
}

fn ts(val: u32, ecr: u32) -> Vec<u8> {
    let mut o = vec![8, 10];
    o.extend_from_slice(&val.to_be_bytes());
    o.extend_from_slice(&ecr.to_be_bytes());
    o
}

fn sack(blocks: &[(u32, u32)]) -> Vec<u8> {
    let mut o = vec![1, 1, 5, (2 + 8 * blocks.len()) as u8];
    for (l, r) in blocks {
        o.extend_from_slice(&l.to_be_bytes());
        o.extend_from_slice(&r.to_be_bytes());
    }
    o
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

/// The standard services with the SYN proxy set to `mode` on every TCP one.
fn services_with(mode: Option<SynProxyMode>) -> Vec<ServiceConfig> {
    let mut s = services();
    for c in &mut s {
        if c.proto == Proto::Tcp {
            c.synproxy = mode;
        }
    }
    s
}

fn world(mode: Option<SynProxyMode>) -> World {
    World::with_services(&config(1024), &services_with(mode))
}

fn event(w: &World, e: SynProxyEvent) -> u64 {
    w.engine.synproxy().counts().get(e)
}

fn events(desc: &'static str, want: &'static [(SynProxyEvent, u64)]) -> Step {
    check(desc, move |w| {
        for (e, n) in want {
            assert_eq!(event(w, *e), *n, "{e}");
        }
    })
}

/// SYN → SYN-ACK with a cookie (no state); ACK → SYN to the server; early client data
/// held; server SYN-ACK → the held data with TOA; data both ways translated, windows
/// converted (server scale 9, client told 7), SACK blocks from the client shifted.
#[test]
fn v4_handshake_held_data_and_translation() {
    let mut w = world(Some(SynProxyMode::On));
    let d = CookieData::from_syn(true, Some(1460), Some(7), true);
    let cookie = KEY.make(CIP4.into(), 40000, VIP4.into(), 80, 1000, 0, d);
    let get = b"GET / HTTP/1.0\r\n\r\n";
    let resp = b"HTTP/1.0 200 OK\r\n\r\n";
    let delta = 5000u32.wrapping_sub(cookie);
    let toa = toa4(CIP4, 40000);
    let k = Conn4 { cport: 40000, lport: 1025 };
    let options = cat(&[&mss(1460), &[1, 1, 4, 2], &[1, 3, 3, 7]]);
    // Sent on the valid ACK and again on the client's retransmission.
    let syn_to_server = k.l2r_df().seq(1000).flags(SYN).window(64256).option(&options).build();
    // Sent before the server answered: held, then retransmitted.
    let request = k.c2v().seq(1001).ack(cookie.wrapping_add(1)).flags(PSHACK).window(502).payload(get).build();
    // The server's data as the client gets it, and as an ICMP error quotes it.
    let response = k.v2c().seq(cookie.wrapping_add(1)).ack(1019).flags(PSHACK).window(400).payload(resp).build();
    let steps = vec![
        fwd(
            "client SYN is answered with a SYN-ACK carrying the cookie: MSS 1460 - TOA, SACK, wscale 7",
            k.c2v().seq(1000).flags(SYN).mss(1460).sack_permitted().window_scale(7).build(),
            CIP4,
            k.v2c_df()
                .seq(cookie)
                .ack(1001)
                .flags(SYNACK)
                .option(&cat(&[&mss(1452), &[1, 1, 4, 2], &[1, 3, 3, 7]]))
                .build(),
        ),
        live(0),
        events("one cookie", &[(SynProxyEvent::CookieSent, 1)]),
        fwd(
            "the client's ACK proves the cookie: the connection opens and the ACK becomes the SYN to the server",
            k.c2v().seq(1001).ack(cookie.wrapping_add(1)).flags(ACK).window(502).build(),
            RIP4,
            syn_to_server.clone(),
        ),
        live(1),
        state4("SYN_RECV while waiting for the server", 40000, TcpState::SynRecv),
        pkt(
            "the client's request before the server answered is held",
            request.clone(),
            Expect::Drop(DropReason::SynproxyEarly),
            None,
        ),
        fwd(
            "the client retransmits before the server answered: the SYN goes to the server again",
            request,
            RIP4,
            syn_to_server,
        ),
        check("held, not dropped", |w| {
            assert_eq!(w.engine.stats().drops(DropReason::SynproxyEarly), 0);
        }),
        pkt(
            "a later segment of the same flight is dropped (the client sends it again)",
            k.c2v().seq(1019).ack(cookie.wrapping_add(1)).flags(PSHACK).payload(b"x").build(),
            Expect::Drop(DropReason::SynproxyEarly),
            None,
        ),
        fwd(
            "the server's SYN-ACK: the held request goes to the server with the TOA, acknowledging the server's ISN",
            k.r2l().seq(5000).ack(1001).flags(SYNACK).mss(1460).sack_permitted().window_scale(9).build(),
            RIP4,
            k.l2r().seq(1001).ack(5001).flags(PSHACK).window(502).option(&toa).payload(get).build(),
        ),
        state4("ESTABLISHED", 40000, TcpState::Established),
        fwd(
            "server data: sequence number into the cookie's numbering, window from scale 9 to 7",
            k.r2l().seq(5001).ack(1019).flags(PSHACK).window(100).payload(resp).build(),
            CIP4,
            response.clone(),
        ),
        fwd(
            "ICMP fragmentation needed from the client side: the quoted sequence number into the server's",
            PacketBuilder::ipv4(Ipv4Addr::new(203, 0, 113, 254), VIP4)
                .icmpv4_error(3, 4, &response)
                .next_hop_mtu(1400)
                .build(),
            RIP4,
            PacketBuilder::ipv4(LIP4, RIP4)
                .icmpv4_error(3, 4, &k.r2l().seq(5001).ack(1019).flags(PSHACK).window(400).payload(resp).build())
                .next_hop_mtu(1400)
                .build(),
        ),
        fwd(
            "client ACK with SACK blocks: acknowledgment and blocks into the server's numbering",
            k.c2v()
                .seq(1019)
                .ack(cookie.wrapping_add(20))
                .flags(ACK)
                .option(&sack(&[(cookie.wrapping_add(100), cookie.wrapping_add(200))]))
                .build(),
            RIP4,
            k.l2r().seq(1019).ack(5020).flags(ACK).option(&sack(&[(5100, 5200)])).build(),
        ),
        fwd(
            "server FIN",
            k.r2l().seq(5020).ack(1019).flags(FINACK).window(100).build(),
            CIP4,
            k.v2c().seq(5020u32.wrapping_sub(delta)).ack(1019).flags(FINACK).window(400).build(),
        ),
        events(
            "counters",
            &[
                (SynProxyEvent::CookieSent, 1),
                (SynProxyEvent::AckValid, 1),
                (SynProxyEvent::ServerSynAck, 1),
                (SynProxyEvent::EarlyHeld, 1),
                (SynProxyEvent::SynResent, 1),
                (SynProxyEvent::EarlyDropped, 1),
            ],
        ),
    ];
    run(&mut w, steps);
}

/// Timestamps: the SYN-ACK answers them; the SYN to the server carries the client's;
/// the bare ACK to the server (no early data) carries both sides' and the TOA; the
/// timestamp values of the server are shifted into the proxy's clock and the client's
/// echoes back.
#[test]
fn v4_timestamps_and_bare_ack() {
    let mut w = world(Some(SynProxyMode::On));
    w.now = 5000;
    let d = CookieData::from_syn(true, Some(1400), Some(8), true);
    let cookie = KEY.make(CIP4.into(), 41000, VIP4.into(), 80, 7, 0, d);
    let toa = toa4(CIP4, 41000);
    let tsd = 777_777u32 - 5000;
    let k = Conn4 { cport: 41000, lport: 1025 };
    // The ACK the proxy sends the server for its SYN-ACK with timestamp value `tsval`.
    let ack_to_server = |tsval: u32| {
        k.l2r_df().seq(8).ack(9001).flags(ACK).window(200).option(&cat(&[&[1, 1], &ts(112, tsval), &toa])).build()
    };
    let steps = vec![
        fwd(
            "SYN with timestamps: the SYN-ACK carries MSS, SACK, timestamps (our clock, the client's echoed), wscale",
            k.c2v().seq(7).flags(SYN).mss(1400).sack_permitted().timestamps(111, 0).window_scale(8).build(),
            CIP4,
            k.v2c_df()
                .seq(cookie)
                .ack(8)
                .flags(SYNACK)
                .option(&cat(&[&mss(1452), &[4, 2], &ts(5000, 111), &[1, 3, 3, 7]]))
                .build(),
        ),
        fwd(
            "the ACK becomes a SYN with the client's MSS (rounded to 1300), wscale 8, SACK and timestamp",
            k.c2v()
                .seq(8)
                .ack(cookie.wrapping_add(1))
                .flags(ACK)
                .window(200)
                .option(&[1, 1])
                .timestamps(112, 5000)
                .build(),
            RIP4,
            k.l2r_df()
                .seq(7)
                .flags(SYN)
                .window(51200)
                .option(&cat(&[&mss(1300), &[4, 2], &ts(112, 0), &[1, 3, 3, 8]]))
                .build(),
        ),
        fwd(
            "the server's SYN-ACK becomes the ACK: timestamps (client's, server's) and the TOA",
            k.r2l()
                .seq(9000)
                .ack(8)
                .flags(SYNACK)
                .mss(1460)
                .sack_permitted()
                .timestamps(777_777, 112)
                .window_scale(7)
                .build(),
            RIP4,
            ack_to_server(777_777),
        ),
        fwd(
            "server data: sequence and timestamp value shifted; same window scale, window unchanged",
            k.r2l()
                .seq(9001)
                .ack(8)
                .flags(PSHACK)
                .window(300)
                .option(&[1, 1])
                .timestamps(777_800, 113)
                .payload(b"hello")
                .build(),
            CIP4,
            k.v2c()
                .seq(cookie.wrapping_add(1))
                .ack(8)
                .flags(PSHACK)
                .window(300)
                .option(&[1, 1])
                .timestamps(777_800 - tsd, 113)
                .payload(b"hello")
                .build(),
        ),
        fwd(
            "client ACK: acknowledgment and timestamp echo shifted back",
            k.c2v()
                .seq(8)
                .ack(cookie.wrapping_add(6))
                .flags(ACK)
                .window(200)
                .option(&[1, 1])
                .timestamps(114, 777_800 - tsd)
                .build(),
            RIP4,
            k.l2r().seq(8).ack(9006).flags(ACK).window(200).option(&[1, 1]).timestamps(114, 777_800).build(),
        ),
        fwd(
            "a retransmitted server SYN-ACK is answered with the ACK again",
            k.r2l().seq(9000).ack(8).flags(SYNACK).mss(1460).timestamps(777_900, 112).build(),
            RIP4,
            ack_to_server(777_900),
        ),
        pkt(
            "a SYN-ACK with another ISN is dropped",
            k.r2l().seq(1234).ack(8).flags(SYNACK).build(),
            Expect::Drop(DropReason::SynproxyBadSynAck),
            None,
        ),
        events("counters", &[(SynProxyEvent::SynAckRetrans, 1), (SynProxyEvent::SynAckDropped, 1)]),
    ];
    run(&mut w, steps);
}

/// The real server answers the proxy's SYN with the ACK of a TIME_WAIT it still holds
/// for an earlier connection on the same addresses and ports (NAT mode: the client's
/// port used before through another VIP port): the proxy resets it, as a client's TCP
/// in SYN-SENT would (RFC 793), and the client's next retransmission sends the SYN
/// again, which the server then accepts.
#[test]
fn a_server_time_wait_answering_the_syn_is_reset() {
    let mut w = world(Some(SynProxyMode::On));
    let d = CookieData::from_syn(true, None, None, false);
    let cookie = KEY.make(CIP4.into(), 44000, VIP4.into(), 80, 300, 0, d);
    let k = Conn4 { cport: 44000, lport: 1025 };
    let ack = || k.c2v().seq(301).ack(cookie.wrapping_add(1)).flags(ACK).window(1000);
    let syn_to_server = k.l2r_df().seq(300).flags(SYN).window(1000).option(&mss(536)).build();
    let steps = vec![
        fwd(
            "SYN answered with the cookie",
            k.c2v().seq(300).flags(SYN).build(),
            CIP4,
            k.v2c_df().seq(cookie).ack(301).flags(SYNACK).option(&mss(1452)).build(),
        ),
        fwd("valid ACK: the SYN to the server", ack().build(), RIP4, syn_to_server.clone()),
        fwd(
            "the server's TIME_WAIT acknowledges its old connection: reset at that number",
            k.r2l().seq(777_000).ack(123_456).flags(ACK).window(500).build(),
            RIP4,
            k.l2r_df().seq(123_456).flags(RST).window(0).build(),
        ),
        state4("still waiting for the server", 44000, TcpState::SynRecv),
        fwd("the client retransmits: the SYN again", ack().build(), RIP4, syn_to_server),
        fwd(
            "a SYN-ACK acknowledging something else is reset the same way",
            k.r2l().seq(5000).ack(999).flags(SYNACK).build(),
            RIP4,
            k.l2r_df().seq(999).flags(RST).window(0).build(),
        ),
        pkt(
            "the server's SYN-ACK to our SYN completes the handshake",
            k.r2l().seq(5000).ack(301).flags(SYNACK).mss(1460).build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        state4("ESTABLISHED", 44000, TcpState::Established),
        events(
            "counters",
            &[(SynProxyEvent::SynAckDropped, 2), (SynProxyEvent::SynResent, 1), (SynProxyEvent::ServerSynAck, 1)],
        ),
        check("both counted as drops of the server's segment", |w| {
            assert_eq!(w.engine.stats().drops(DropReason::SynproxyBadSynAck), 2);
        }),
    ];
    run(&mut w, steps);
}

/// The guards: invalid and stale cookies dropped without a reply, a retransmitted SYN
/// answered with the same cookie, a server's RST turned into the client's, an ack
/// storm cut.
#[test]
fn v4_guards() {
    let mut w = world(Some(SynProxyMode::On));
    let d = CookieData::from_syn(true, None, None, false);
    let cookie = KEY.make(CIP4.into(), 42000, VIP4.into(), 80, 100, 0, d);
    let k = Conn4 { cport: 42000, lport: 1025 };
    let syn = k.c2v().seq(100).flags(SYN).build();
    let synack = k.v2c_df().seq(cookie).ack(101).flags(SYNACK).option(&mss(1452)).build();
    // The client's ACK to the cookie, as often as it comes.
    let ack = || k.c2v().seq(101).ack(cookie.wrapping_add(1)).flags(ACK);
    let syn_to_server = k.l2r_df().seq(100).flags(SYN).window(1000).option(&mss(536)).build();
    let mut steps = vec![
        pkt(
            "an ACK with no valid cookie is dropped, no reply",
            k.c2v().seq(101).ack(12345).flags(ACK).build(),
            Expect::Drop(DropReason::SynproxyBadAck),
            None,
        ),
        fwd("SYN without options: MSS only", syn.clone(), CIP4, synack.clone()),
        fwd(
            "valid ACK: SYN to the server with the default MSS, no other option",
            ack().window(1000).build(),
            RIP4,
            syn_to_server.clone(),
        ),
        fwd(
            "the client repeats its ACK, the server silent: the SYN again (1)",
            ack().window(1000).build(),
            RIP4,
            syn_to_server,
        ),
    ];
    for desc in ["(2)", "(3)"] {
        steps.push(pkt(desc, ack().build(), Expect::Fwd(RIP4.into()), None));
    }
    steps.extend([
        pkt("three times at most: then dropped", ack().build(), Expect::Drop(DropReason::SynproxyEarly), None),
        fwd("the client's SYN again (our SYN-ACK lost, say): the same SYN-ACK", syn, CIP4, synack),
        fwd(
            "the server refuses: RST to the client at the sequence number it expects",
            k.r2l().seq(0).ack(101).flags(RSTACK).window(0).build(),
            CIP4,
            k.v2c_df().seq(cookie.wrapping_add(1)).ack(101).flags(RSTACK).window(0).build(),
        ),
        state4("closed", 42000, TcpState::Close),
        at("a stale cookie (3 minutes later) is refused", 180_000, 1),
        pkt("stale ACK", ack().build(), Expect::Drop(DropReason::SynproxyBadAck), None),
        events(
            "counters",
            &[
                (SynProxyEvent::AckInvalid, 2),
                (SynProxyEvent::SynRetrans, 1),
                (SynProxyEvent::ServerRst, 1),
                (SynProxyEvent::CookieSent, 1),
                (SynProxyEvent::SynResent, 3),
                (SynProxyEvent::EarlyDropped, 1),
            ],
        ),
    ]);
    // Ack storm on an established connection: 10 identical pure ACKs from the server
    // pass, the rest are dropped.
    let d2 = CookieData::from_syn(true, None, None, false);
    let c2 = KEY.make(CIP4.into(), 43000, VIP4.into(), 80, 500, 3, d2);
    let k2 = Conn4 { cport: 43000, lport: 1026 };
    let dup = k2.r2l().seq(71).ack(501).flags(ACK).build();
    steps.extend([
        fwd(
            "SYN",
            k2.c2v().seq(500).flags(SYN).build(),
            CIP4,
            k2.v2c_df().seq(c2).ack(501).flags(SYNACK).option(&mss(1452)).build(),
        ),
        pkt("ACK", k2.c2v().seq(501).ack(c2.wrapping_add(1)).flags(ACK).build(), Expect::Fwd(RIP4.into()), None),
        pkt("server SYN-ACK", k2.r2l().seq(70).ack(501).flags(SYNACK).build(), Expect::Fwd(RIP4.into()), None),
    ]);
    for _ in 0..10 {
        steps.push(pkt("server dup ACK", dup.clone(), Expect::Fwd(CIP4.into()), None));
    }
    steps.extend([
        pkt("one too many", dup, Expect::Drop(DropReason::SynproxyAckStorm), None),
        pkt(
            "a new acknowledgment passes",
            k2.r2l().seq(71).ack(502).flags(ACK).build(),
            Expect::Fwd(CIP4.into()),
            None,
        ),
    ]);
    run(&mut w, steps);
}

/// IPv6: the same handshake with the IPv6 MSS table and TOA.
#[test]
fn v6_handshake() {
    let mut w = world(Some(SynProxyMode::On));
    let (c, v, l, r) = (cip6(), vip6(), lip6(), rip6());
    let d = CookieData::from_syn(false, Some(1440), Some(7), true);
    let cookie = KEY.make(c.into(), 50000, v.into(), 80, 1, 0, d);
    let toa = toa6(c, 50000);
    let steps = vec![
        fwd(
            "SYN → SYN-ACK: MSS 1440 - 20 (IPv6 TOA)",
            t6(c, 50000, v, 80).seq(1).flags(SYN).mss(1440).sack_permitted().window_scale(7).build(),
            c,
            t6(v, 80, c, 50000)
                .seq(cookie)
                .ack(2)
                .flags(SYNACK)
                .option(&cat(&[&mss(1420), &[1, 1, 4, 2], &[1, 3, 3, 7]]))
                .build(),
        ),
        fwd(
            "ACK → SYN to the server",
            t6(c, 50000, v, 80).seq(2).ack(cookie.wrapping_add(1)).flags(ACK).window(512).build(),
            r,
            t6(l, 1025, r, 8080)
                .seq(1)
                .flags(SYN)
                .window(65535)
                .option(&cat(&[&mss(1440), &[1, 1, 4, 2], &[1, 3, 3, 7]]))
                .build(),
        ),
        fwd(
            "server SYN-ACK → ACK with the IPv6 TOA",
            t6(r, 8080, l, 1025).seq(100).ack(2).flags(SYNACK).mss(1440).sack_permitted().window_scale(7).build(),
            r,
            t6(l, 1025, r, 8080).seq(2).ack(101).flags(ACK).window(512).option(&toa).build(),
        ),
        fwd(
            "server data",
            t6(r, 8080, l, 1025).seq(101).ack(2).flags(PSHACK).window(9).payload(b"abc").build(),
            c,
            t6(v, 80, c, 50000).seq(cookie.wrapping_add(1)).ack(2).flags(PSHACK).window(9).payload(b"abc").build(),
        ),
        fwd(
            "client data",
            t6(c, 50000, v, 80).seq(2).ack(cookie.wrapping_add(4)).flags(PSHACK).window(512).payload(b"def").build(),
            r,
            t6(l, 1025, r, 8080).seq(2).ack(104).flags(PSHACK).window(512).payload(b"def").build(),
        ),
    ];
    run(&mut w, steps);
}

/// Modes: off never answers; the default (auto) answers only once the worker's SYN
/// rate crosses the threshold, and an ACK to a cookie is honoured while auto is off.
#[test]
fn modes_and_auto() {
    let cfg = EngineConfig {
        synproxy: SynProxyConfig {
            syn_rate_on: 3,
            syn_rate_off: 1,
            hold_ms: 1000,
            interval_ms: 1000,
            ..SynProxyConfig::default()
        },
        ..config(1024)
    };
    let mut w = World::with_services(&cfg, &services_with(None));
    let syn = |port: u16| t4(CIP4, port, VIP4, 80).seq(9).flags(SYN).build();
    let steps = vec![
        pkt("auto, calm: the SYN opens a connection", syn(1), Expect::Fwd(RIP4.into()), None),
        pkt("second", syn(2), Expect::Fwd(RIP4.into()), None),
        pkt("third SYN within the second: auto turns on, cookie", syn(3), Expect::Fwd(CIP4.into()), None),
        live(2),
        events("auto on", &[(SynProxyEvent::AutoOn, 1), (SynProxyEvent::CookieSent, 1)]),
        pkt(
            "while on, a bare ACK without a cookie is refused as a bad cookie",
            t4(CIP4, 9, VIP4, 80).seq(1).ack(1).flags(ACK).build(),
            Expect::Drop(DropReason::SynproxyBadAck),
            None,
        ),
    ];
    run(&mut w, steps);
    // Calm for more than the hold time: off again at the next SYN.
    w.now = 5000;
    let (v, _) = w.packet(&syn(4), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { dst, .. } if dst == IpAddr::from(RIP4)));
    assert_eq!(event(&w, SynProxyEvent::AutoOff), 1);
    let (v, _) = w.packet(&t4(CIP4, 9, VIP4, 80).seq(1).ack(1).flags(ACK).build(), 0);
    assert_eq!(v, fnat::engine::Verdict::Drop(DropReason::NoConn), "auto off: no_conn as before");

    // Off: never answered, even in a flood.
    let mut w = world(Some(SynProxyMode::Off));
    for p in 1..50 {
        let (v, _) = w.packet(&syn(p), 0);
        assert!(matches!(v, fnat::engine::Verdict::Forward { dst, .. } if dst == IpAddr::from(RIP4)));
    }
    assert_eq!(event(&w, SynProxyEvent::CookieSent), 0);

    // A new generation turns it on (the proxy's per-slot state, never needed so far,
    // is allocated then): the cookie's ACK opens its connection.
    let mut cfg = config(1024);
    cfg.synproxy.mode = SynProxyMode::Off;
    let mut w = World::with_services(&cfg, &services_with(None));
    w.engine.bind(&w.table);
    let before = w.engine.bytes_per_slot();
    w.table = fnat::service::ServiceTable::build(&services_with(Some(SynProxyMode::On)), Some(&w.table)).unwrap();
    let (v, synack) = w.packet(&syn(100), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { dst, .. } if dst == IpAddr::from(CIP4)), "cookie: {v:?}");
    assert!(w.engine.bytes_per_slot() - before > 23.9, "allocated with the generation");
    let cookie = u32::from_be_bytes(synack[24..28].try_into().unwrap());
    let ack = t4(CIP4, 100, VIP4, 80).seq(10).ack(cookie.wrapping_add(1)).flags(ACK).build();
    let (v, _) = w.packet(&ack, 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { dst, .. } if dst == IpAddr::from(RIP4)), "{v:?}");
    assert_eq!(event(&w, SynProxyEvent::AckValid), 1);
}

/// A SYN proxy setting on a UDP service is refused, naming the service.
#[test]
fn synproxy_is_for_tcp_services() {
    let mut s = services();
    let udp = s.iter_mut().find(|c| c.proto == Proto::Udp).expect("a UDP service");
    udp.synproxy = Some(SynProxyMode::On);
    let e = ServiceTable::build(&s, None).unwrap_err();
    assert_eq!(e.to_string(), "udp 192.0.2.1:53: the SYN proxy (synproxy) is for TCP services");
}

/// A client reusing its port while the proxy answers SYNs: the connection the cookie
/// opens goes to the server through the local port the client's previous connection
/// held, not the cursor's next (a server holding the old one in TIME_WAIT sees the same
/// client's ports and timestamps again, and accepts the SYN).
#[test]
fn a_proxied_port_reuse_keeps_the_local_port() {
    use fnat::stats::ConnEvent;
    let mut w = world(Some(SynProxyMode::Off));
    let sport = |out: &[u8]| u16::from_be_bytes([out[20], out[21]]);
    let send = |w: &mut World, b: TcpBuilder, to: Ipv4Addr| {
        let (v, out) = w.packet(&b.build(), 0);
        assert!(
            matches!(v, fnat::engine::Verdict::Forward { dst, .. } if dst == IpAddr::from(to)),
            "{v:?}, not forwarded to {to}"
        );
        assert_eq!(out[0], 0x45, "a 20-byte IPv4 header");
        out
    };
    // A plain connection through LIP4:1025, closed by both sides: TIME_WAIT.
    assert_eq!(sport(&send(&mut w, t4(CIP4, 40000, VIP4, 80).seq(1).flags(SYN), RIP4)), 1025);
    send(&mut w, t4(RIP4, 8080, LIP4, 1025).seq(100).ack(2).flags(SYNACK), CIP4);
    send(&mut w, t4(CIP4, 40000, VIP4, 80).seq(2).ack(101).flags(ACK), RIP4);
    send(&mut w, t4(CIP4, 40000, VIP4, 80).seq(2).ack(101).flags(FINACK), RIP4);
    send(&mut w, t4(RIP4, 8080, LIP4, 1025).seq(101).ack(3).flags(FINACK), CIP4);
    send(&mut w, t4(CIP4, 40000, VIP4, 80).seq(3).ack(102).flags(ACK), RIP4);
    // Another client takes the cursor's next port.
    assert_eq!(sport(&send(&mut w, t4(CIP4, 40001, VIP4, 80).seq(1).flags(SYN), RIP4)), 1026);
    // The service turns the SYN proxy on; the first client reuses its port.
    w.table = ServiceTable::build(&services_with(Some(SynProxyMode::On)), Some(&w.table)).unwrap();
    let synack = send(&mut w, t4(CIP4, 40000, VIP4, 80).seq(9000).flags(SYN), CIP4);
    assert_eq!(w.engine.stats().events(ConnEvent::ConnReused), 1, "the TIME_WAIT connection gave way");
    let cookie = u32::from_be_bytes([synack[24], synack[25], synack[26], synack[27]]);
    let syn = send(&mut w, t4(CIP4, 40000, VIP4, 80).seq(9001).ack(cookie.wrapping_add(1)).flags(ACK), RIP4);
    assert_eq!(sport(&syn), 1025, "the SYN to the server leaves from the port the client's last connection held");
    assert_eq!(w.engine.stats().events(ConnEvent::LocalPortKept), 1);
    // A client that did not reuse a port: the cursor's next.
    let other = send(&mut w, t4(CIP4, 40002, VIP4, 80).seq(5).flags(SYN), CIP4);
    let cookie = u32::from_be_bytes([other[24], other[25], other[26], other[27]]);
    let syn = send(&mut w, t4(CIP4, 40002, VIP4, 80).seq(6).ack(cookie.wrapping_add(1)).flags(ACK), RIP4);
    assert_eq!(sport(&syn), 1027);
    assert_eq!(w.engine.stats().events(ConnEvent::LocalPortKept), 1);
}

/// The service's connection rate limit with the SYN proxy: a flood of spoofed SYNs (each
/// answered with a cookie, no state) spends none of it, so a real client's cookie ACK
/// still opens its connection; the ACKs are what the limit counts (a burst of 2 here:
/// the third client's ACK is refused, `rate_limited`).
#[test]
fn spoofed_syns_spend_no_rate_the_cookie_acks_do() {
    let mut services = services_with(Some(SynProxyMode::On));
    for c in services.iter_mut().filter(|c| c.proto == Proto::Tcp) {
        c.rate_limit = Some(fnat::edge::RateLimit { rate: 2, burst: 2 });
    }
    let mut w = World::with_services(&config(1024), &services);
    let d = CookieData::from_syn(true, None, None, false);
    let mut steps = Vec::new();
    for i in 0..50u16 {
        let spoofed = Conn4 { cport: 20000 + i, lport: 0 };
        steps.push(pkt(
            "a spoofed SYN: a cookie",
            spoofed.c2v().seq(7).flags(SYN).build(),
            Expect::Fwd(CIP4.into()),
            None,
        ));
    }
    for (i, cport) in [42000u16, 42001, 42002].into_iter().enumerate() {
        let cookie = KEY.make(CIP4.into(), cport, VIP4.into(), 80, 100, 0, d);
        let k = Conn4 { cport, lport: 1025 };
        steps.push(pkt("the client's SYN", k.c2v().seq(100).flags(SYN).build(), Expect::Fwd(CIP4.into()), None));
        let ack = k.c2v().seq(101).ack(cookie.wrapping_add(1)).flags(ACK).build();
        let want = if i < 2 { Expect::Fwd(RIP4.into()) } else { Expect::Drop(DropReason::RateLimited) };
        steps.push(pkt("its cookie ACK", ack, want, None));
    }
    steps.push(check("counted", |w| {
        assert_eq!(w.engine.stats().drops(DropReason::RateLimited), 1, "only the third ACK");
        assert_eq!(event(w, SynProxyEvent::CookieSent), 53);
    }));
    run(&mut w, steps);
}

/// A client RST before the server's SYN-ACK resets the server only at a number of the
/// client's stream: a blind forger's, far from it, is dropped and the handshake goes on.
#[test]
fn a_forged_client_rst_does_not_end_the_handshake() {
    let mut w = world(Some(SynProxyMode::On));
    let d = CookieData::from_syn(true, None, None, false);
    let cookie = KEY.make(CIP4.into(), 42000, VIP4.into(), 80, 100, 0, d);
    let k = Conn4 { cport: 42000, lport: 1025 };
    let steps = vec![
        pkt("SYN", k.c2v().seq(100).flags(SYN).build(), Expect::Fwd(CIP4.into()), None),
        pkt(
            "the cookie ACK",
            k.c2v().seq(101).ack(cookie.wrapping_add(1)).flags(ACK).build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        pkt(
            "a forged RST far from the client's numbers",
            k.c2v().seq(0x8000_0000).flags(RST).build(),
            Expect::Drop(DropReason::SynproxyEarly),
            None,
        ),
        state4("the handshake goes on", 42000, TcpState::SynRecv),
        pkt("the client's own RST", k.c2v().seq(101).flags(RST).build(), Expect::Fwd(RIP4.into()), None),
    ];
    run(&mut w, steps);
}

/// A valid cookie ACK whose buffer has no room for the SYN's options (the end of a
/// full buffer) is dropped and leaves nothing behind: no connection (which would wait
/// for a server never asked, holding its local port); the client's next ACK to the
/// cookie opens the connection as usual.
#[test]
fn a_cookie_ack_without_room_for_the_syn_leaves_no_connection() {
    let mut w = world(Some(SynProxyMode::On));
    let d = CookieData::from_syn(true, None, None, false);
    let cookie = KEY.make(CIP4.into(), 42500, VIP4.into(), 80, 100, 0, d);
    // (The local port pool hands out the next port: 1026.)
    let k = Conn4 { cport: 42500, lport: 1026 };
    let ack = k.c2v().seq(101).ack(cookie.wrapping_add(1)).flags(ACK).window(1000).build();
    let mut full = fnat::buf::VecBuf::with_room(&ack, fnat::buf::VecBuf::DEFAULT_HEADROOM, 0);
    let v = w.engine.process(&w.table, &mut full, 0, w.now);
    assert_eq!(v, fnat::engine::Verdict::Drop(DropReason::BadHeader));
    assert_eq!(w.engine.conns().len(), 0, "the connection opened for it is gone");
    let syn_to_server = k.l2r_df().seq(100).flags(SYN).window(1000).option(&mss(536)).build();
    run(&mut w, vec![fwd("the client's next ACK: the SYN to the server", ack, RIP4, syn_to_server), live(1)]);
}

/// A stash slot reused by a later connection's early segment before the first one's
/// server answered: the first's held segment is lost and counted (`early_lost`); its
/// handshake still completes (the client retransmits the data), the later one's
/// segment goes with its own.
#[test]
fn a_held_segment_whose_stash_slot_was_reused_is_counted_lost() {
    let synproxy = SynProxyConfig { mode: SynProxyMode::On, stash_slots: 1, ..SynProxyConfig::default() };
    let mut w = World::with_services(&EngineConfig { synproxy, ..config(1024) }, &services_with(None));
    let d = CookieData::from_syn(true, None, None, false);
    let (a, b) = (Conn4 { cport: 42600, lport: 1025 }, Conn4 { cport: 42601, lport: 1026 });
    let cookie = |k: Conn4| KEY.make(CIP4.into(), k.cport, VIP4.into(), 80, 100, 0, d);
    let ack = |k: Conn4| k.c2v().seq(101).ack(cookie(k).wrapping_add(1)).flags(ACK).window(1000).build();
    let data =
        |k: Conn4| k.c2v().seq(101).ack(cookie(k).wrapping_add(1)).flags(PSHACK).window(1000).payload(b"GET /").build();
    let synack = |k: Conn4| k.r2l().seq(5000).ack(101).flags(SYNACK).mss(1460).build();
    let held = || Expect::Drop(DropReason::SynproxyEarly);
    let to_rs = || Expect::Fwd(RIP4.into());
    let steps = vec![
        pkt("A's cookie ACK opens it", ack(a), to_rs(), None),
        pkt("A's early request is held", data(a), held(), None),
        pkt("B's cookie ACK opens it", ack(b), to_rs(), None),
        pkt("B's early request takes the only stash slot", data(b), held(), None),
        fwd(
            "A's server answers: its request is gone, the bare ACK completes the handshake",
            synack(a),
            RIP4,
            a.l2r_df().seq(101).ack(5001).flags(ACK).window(1000).option(&toa4(CIP4, a.cport)).build(),
        ),
        events("A's request lost, B's still held", &[(SynProxyEvent::EarlyLost, 1), (SynProxyEvent::EarlyHeld, 0)]),
        pkt("B's server answers: its request goes with the handshake", synack(b), to_rs(), None),
        events("B's request held and sent", &[(SynProxyEvent::EarlyLost, 1), (SynProxyEvent::EarlyHeld, 1)]),
    ];
    run(&mut w, steps);
}
