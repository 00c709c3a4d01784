//! The passive check's reports (`dest_check`, DPVS's `--dest-check`): whole frames in,
//! the worker's DOWN and UP reports out. Only the real server's refusal (an RST to the
//! SYN) or its silence to the SYN proxy's own SYN is a failure; what a client does is
//! never one.

mod common;

use common::*;
use fnat::destcheck::DestMark;
use fnat::engine::destcheck::DestReport;
use fnat::engine::Verdict;
use fnat::service::{DestMarks, RsId, ServiceTable};
use fnat::stats::{ConnEvent, DropReason};
use fnat::types::Proto;
use std::net::{Ipv4Addr, SocketAddr};
use wire::builder::PacketBuilder;

const S: u64 = 1000;

/// The standard services, TCP VIP4:80 (`RsId(0)`) with the check given.
fn world(check: Option<&str>) -> World {
    let mut svcs = services();
    svcs[0].dest_check = check.map(|c| c.parse().unwrap());
    started(World::with_services(&config(1024), &svcs))
}

/// `w` as a worker runs it: the generation bound, then the first turn of its loop (the
/// servers admitted to scheduling at 0).
fn started(mut w: World) -> World {
    w.engine.bind(&w.table);
    w.expire();
    w
}

fn reports(w: &mut World) -> Vec<DestReport> {
    let mut out = Vec::new();
    w.engine.take_dest_reports(|r| {
        out.push(r);
        true
    });
    out
}

const DOWN: DestReport = DestReport { rs: RsId(0), up: false };
const UP: DestReport = DestReport { rs: RsId(0), up: true };

fn syn(w: &mut World, cport: u16) {
    let (v, _) = w.packet(&t4(CIP4, cport, VIP4, 80).seq(1000).flags(SYN).mss(1460).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
}

/// The local port the connection of client port `cport` took.
fn lport(w: &World, cport: u16) -> u16 {
    let (list, _) = w.engine.list(0, 1024, w.now);
    list.iter().find(|c| c.client.port() == cport).expect("connection").local.port()
}

fn from_server(w: &mut World, cport: u16, flags: wire::TcpFlags) {
    let lp = lport(w, cport);
    let (v, _) = w.packet(&t4(RIP4, 8080, LIP4, lp).seq(5000).ack(1001).flags(flags).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
}

fn handshake(w: &mut World, cport: u16) {
    syn(w, cport);
    from_server(w, cport, SYNACK);
    let (v, _) = w.packet(&t4(CIP4, cport, VIP4, 80).seq(1001).ack(5001).flags(ACK).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
}

#[test]
fn a_server_refusing_the_syn_is_reported_down_at_once() {
    let mut w = world(Some("default"));
    syn(&mut w, 40000);
    assert!(reports(&mut w).is_empty(), "a SYN alone says nothing");
    from_server(&mut w, 40000, RSTACK);
    assert_eq!(reports(&mut w), [DOWN]);
    assert_eq!(w.engine.stats().events(ConnEvent::DestDown), 1);
    // The same on a service without the check: nothing.
    let mut w = world(None);
    syn(&mut w, 40000);
    from_server(&mut w, 40000, RSTACK);
    assert!(reports(&mut w).is_empty());
}

/// A proxied connection to VIP4:80 from client port `cport` up to rvs's own SYN to the
/// server (the client proved its address with the cookie).
fn proxied_syn(w: &mut World, cport: u16) {
    use fnat::synproxy::cookie::{CookieData, CookieKey};
    let d = CookieData::from_syn(true, None, None, false);
    let cookie = CookieKey::new(42, !42).make(CIP4.into(), cport, VIP4.into(), 80, 300, 0, d);
    let (v, _) = w.packet(&t4(CIP4, cport, VIP4, 80).seq(300).flags(SYN).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "cookie SYN-ACK: {v:?}");
    let (v, _) = w.packet(&t4(CIP4, cport, VIP4, 80).seq(301).ack(cookie.wrapping_add(1)).flags(ACK).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "SYN to the server: {v:?}");
}

fn proxied_world(check: &str) -> World {
    let mut svcs = services();
    svcs[0].dest_check = Some(check.parse().unwrap());
    svcs[0].synproxy = Some(fnat::synproxy::SynProxyMode::On);
    started(World::with_services(&config(1024), &svcs))
}

#[test]
fn silence_counts_for_the_syn_proxys_own_syn_only() {
    // A client's SYN the server leaves unanswered: the client may have written one it
    // drops without a word (a TCP-MD5 option, say): not counted.
    let mut w = world(Some("default"));
    syn(&mut w, 40000);
    w.now = 61 * S;
    assert_eq!(w.expire(), 1);
    assert!(reports(&mut w).is_empty());
    // The SYN proxy's own SYN unanswered: the server's silence.
    let mut w = proxied_world("default");
    proxied_syn(&mut w, 40000);
    w.now = 59 * S;
    w.expire();
    assert!(reports(&mut w).is_empty(), "not before SYN_RECV's timeout");
    w.now = 61 * S;
    assert_eq!(w.expire(), 1);
    assert_eq!(reports(&mut w), [DOWN]);
    // Refused: at once (an RST that acknowledges the proxy's SYN; a forged one, not
    // acknowledging it, says nothing); answered: UP once let back in.
    proxied_syn(&mut w, 40001);
    let lp = lport(&w, 40001);
    for (ack, counted) in [(1001, false), (301, true)] {
        let (v, _) = w.packet(&t4(RIP4, 8080, LIP4, lp).seq(5000).ack(ack).flags(RSTACK).build(), 0);
        assert_eq!(matches!(v, fnat::engine::Verdict::Forward { .. }), counted, "{v:?}");
        assert_eq!(reports(&mut w), if counted { vec![DOWN] } else { vec![] });
    }
    let mut svcs = services();
    svcs[0].dest_check = Some("default".parse().unwrap());
    svcs[0].synproxy = Some(fnat::synproxy::SynProxyMode::On);
    let marks: DestMarks = [((svcs[0].key(), SocketAddr::new(RIP4.into(), 8080)), DestMark::Reopened)].into();
    w.table = ServiceTable::build_marked(&svcs, Some(&w.table), &marks).unwrap();
    proxied_syn(&mut w, 40002);
    let lp = lport(&w, 40002);
    let (v, _) = w.packet(&t4(RIP4, 8080, LIP4, lp).seq(5000).ack(301).flags(SYNACK).mss(1460).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
    assert_eq!(reports(&mut w), [UP]);
}

#[test]
fn a_connection_from_before_the_server_was_taken_out_does_not_count_after() {
    let mut w = proxied_world("default");
    proxied_syn(&mut w, 40000);
    // Taken out (some other failure) and let back in 30 s later.
    w.table = marked(DestMark::Inhibited, &w.table);
    w.engine.bind(&w.table);
    w.now = 30 * S;
    w.expire();
    w.table = marked(DestMark::Reopened, &w.table);
    w.engine.bind(&w.table);
    w.now = 31 * S;
    w.expire();
    // The old half-open connection expires after the reopening: not a new failure.
    w.now = 61 * S;
    assert_eq!(w.expire(), 1);
    assert!(reports(&mut w).is_empty(), "{:?}", reports(&mut w));
}

#[test]
fn nat_servers_are_watched_the_same() {
    let mut svcs = services();
    svcs[0].dest_check = Some("default".parse().unwrap());
    svcs[0].real_servers[0].fwd = fnat::types::FwdMode::Nat;
    let mut w = started(World::with_services(&config(1024), &svcs));
    syn(&mut w, 40000);
    // NAT: the server answers the client itself (through rvs).
    let (v, _) = w.packet(&t4(RIP4, 8080, CIP4, 40000).seq(5000).ack(1001).flags(RSTACK).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
    assert_eq!(reports(&mut w), [DOWN]);
    syn(&mut w, 40001);
    let (v, _) = w.packet(&t4(RIP4, 8080, CIP4, 40001).seq(5000).ack(1001).flags(SYNACK).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
    w.now = 600 * S;
    w.expire();
    assert!(reports(&mut w).is_empty(), "answered, then abandoned by the client");
}

#[test]
fn what_a_client_does_is_never_the_servers_failure() {
    let mut w = world(Some("default"));
    // The server answered; the client went away (a spoofed SYN, a scanner).
    syn(&mut w, 40001);
    from_server(&mut w, 40001, SYNACK);
    // The client gave up with an RST before the server answered.
    syn(&mut w, 40002);
    let (v, _) = w.packet(&t4(CIP4, 40002, VIP4, 80).seq(1001).flags(RST).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
    from_server(&mut w, 40002, SYNACK);
    // A whole connection, closed by the server with an RST after the handshake.
    handshake(&mut w, 40003);
    from_server(&mut w, 40003, RSTACK);
    w.now = 600 * S;
    w.expire();
    assert!(reports(&mut w).is_empty(), "{:?}", reports(&mut w));
    assert_eq!(w.engine.conns().len(), 0);
}

/// The table with real server RIP4:8080 of VIP4:80 marked `m`, built on `prev`.
fn marked(m: DestMark, prev: &ServiceTable) -> ServiceTable {
    let svcs: Vec<_> = prev.services().iter().map(|s| s.config.clone()).collect();
    let mut marks = DestMarks::new();
    marks.insert((svcs[0].key(), SocketAddr::new(RIP4.into(), 8080)), m);
    ServiceTable::build_marked(&svcs, Some(prev), &marks).unwrap()
}

#[test]
fn a_reopened_server_reports_up_confirm_handshakes_once_per_reopening() {
    let mut w = world(Some("1,2,3s,5-60s"));
    let t = marked(DestMark::Inhibited, &w.table);
    assert_eq!(t.services()[0].dests[0].weight, 0);
    w.table = t;
    let (v, _) = w.packet(&t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).mss(1460).build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Drop(_)), "taken out: no server to schedule ({v:?})");
    w.table = marked(DestMark::Reopened, &w.table);
    for cport in 40001..40004 {
        handshake(&mut w, cport);
    }
    assert_eq!(reports(&mut w), [UP, UP], "up_confirm = 2");
    // Another generation, still reopened: no new allowance.
    w.table = marked(DestMark::Reopened, &w.table);
    handshake(&mut w, 40004);
    assert!(reports(&mut w).is_empty());
    // Taken out and let back in again: two more.
    w.table = marked(DestMark::Inhibited, &w.table);
    w.engine.bind(&w.table);
    w.table = marked(DestMark::Reopened, &w.table);
    for cport in 40005..40008 {
        handshake(&mut w, cport);
    }
    assert_eq!(reports(&mut w), [UP, UP]);
    // Failures of a server in scheduling are reported; the UDP service has no check.
    syn(&mut w, 40010);
    from_server(&mut w, 40010, RSTACK);
    assert_eq!(reports(&mut w), [DOWN]);
    assert_eq!(w.table.services()[2].key.proto, Proto::Udp);
}

#[test]
fn a_full_outbox_counts_what_it_loses() {
    let mut w = world(Some("default"));
    for cport in 0..80u16 {
        syn(&mut w, 41000 + cport);
        from_server(&mut w, 41000 + cport, RSTACK);
    }
    assert_eq!(reports(&mut w).len(), 64);
    assert_eq!(w.engine.stats().events(ConnEvent::DestReportLost), 16);
    syn(&mut w, 42000);
    from_server(&mut w, 42000, RSTACK);
    w.engine.take_dest_reports(|_| false);
    assert_eq!(w.engine.stats().events(ConnEvent::DestReportLost), 17, "the queue to the control thread was full");
}

/// The standard services with the check on UDP VIP4:53 (→ RIP4_UDP:53) instead, and
/// that server's id.
fn udp_world(check: &str) -> (World, RsId) {
    let mut svcs = services();
    svcs[2].dest_check = Some(check.parse().unwrap());
    let w = started(World::with_services(&config(1024), &svcs));
    let rs = w.table.services()[2].dests[0].id;
    (w, rs)
}

/// A client datagram to VIP4:53 from `cport`, forwarded; the local port it went from.
fn query(w: &mut World, cport: u16) -> u16 {
    let (v, out) = w.packet(&PacketBuilder::ipv4(CIP4, VIP4).udp(cport, 53).payload(b"q").build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
    u16::from_be_bytes([out[20], out[21]])
}

/// The server's answer to the datagram that left from `lport`.
fn answer(w: &mut World, lport: u16) {
    let (v, _) = w.packet(&PacketBuilder::ipv4(RIP4_UDP, LIP4).udp(53, lport).payload(b"a").build(), 0);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "{v:?}");
}

/// An ICMP error `(type, code)` from `src` about the datagram rvs sent from `lport`.
fn icmp_about(w: &mut World, src: Ipv4Addr, (ty, code): (u8, u8), lport: u16) -> fnat::engine::Verdict {
    let quoted = PacketBuilder::ipv4(LIP4, RIP4_UDP).udp(lport, 53).payload(b"q").build();
    w.packet(&PacketBuilder::ipv4(src, LIP4).icmpv4_error(ty, code, &quoted).build(), 0).0
}

/// UDP (DPVS's dest-check on UDP services): the server's own "port unreachable" is a
/// refusal, reported DOWN (and the error still goes on to the client); a router's, or
/// another kind of error, is not the server's word; a datagram left unanswered (which a
/// client can make a healthy server do) never counts.
#[test]
fn udp_a_server_answering_port_unreachable_is_reported_down() {
    let (mut w, rs) = udp_world("default");
    let lp = query(&mut w, 40000);
    let router = Ipv4Addr::new(10, 9, 9, 9);
    for (src, kind) in [(router, (3, 3)), (RIP4_UDP, (3, 1)), (RIP4_UDP, (11, 0))] {
        icmp_about(&mut w, src, kind, lp);
        assert!(reports(&mut w).is_empty(), "{src} {kind:?}");
    }
    // To another address than the datagram's source: not about what rvs sent.
    let quoted = PacketBuilder::ipv4(LIP4, RIP4_UDP).udp(lp, 53).payload(b"q").build();
    w.packet(&PacketBuilder::ipv4(RIP4_UDP, VIP4).icmpv4_error(3, 3, &quoted).build(), 0);
    assert!(reports(&mut w).is_empty(), "to another destination");
    let v = icmp_about(&mut w, RIP4_UDP, (3, 3), lp);
    assert!(matches!(v, fnat::engine::Verdict::Forward { .. }), "passed on to the client: {v:?}");
    assert_eq!(reports(&mut w), [DestReport { rs, up: false }]);
    // On a connection the server answered: not taken as proof (a forger's best target).
    let lp = query(&mut w, 40002);
    answer(&mut w, lp);
    icmp_about(&mut w, RIP4_UDP, (3, 3), lp);
    assert!(reports(&mut w).is_empty(), "after an answer");
    // Unanswered datagrams expiring: nothing.
    query(&mut w, 40001);
    w.now = 3600 * S;
    assert!(w.expire() >= 1);
    assert!(reports(&mut w).is_empty());
    // Without the check: nothing.
    let mut w = world(None);
    let lp = query(&mut w, 40000);
    icmp_about(&mut w, RIP4_UDP, (3, 3), lp);
    assert!(reports(&mut w).is_empty());
}

/// A "port unreachable" that is not the server's own word is no DOWN, and is not
/// passed on either: one with a wrong ICMP checksum (damaged, or made up by a sender
/// that did not bother), and one addressed elsewhere than the datagram's source. The
/// same error, whole and rightly addressed, is a DOWN.
#[test]
fn udp_a_damaged_or_misaddressed_port_unreachable_is_no_down() {
    let (mut w, rs) = udp_world("default");
    let lp = query(&mut w, 40000);
    let quoted = PacketBuilder::ipv4(LIP4, RIP4_UDP).udp(lp, 53).payload(b"q").build();
    let whole = PacketBuilder::ipv4(RIP4_UDP, LIP4).icmpv4_error(3, 3, &quoted).build();
    let mut damaged = whole.clone();
    // The quoted payload's byte: the ICMP checksum no longer holds.
    *damaged.last_mut().unwrap() ^= 0x20;
    let v = w.packet(&damaged, 0).0;
    assert!(reports(&mut w).is_empty(), "a damaged error");
    assert_eq!(v, Verdict::Drop(DropReason::IcmpErrorChecksum));
    let elsewhere = PacketBuilder::ipv4(RIP4_UDP, VIP4).icmpv4_error(3, 3, &quoted).build();
    let v = w.packet(&elsewhere, 0).0;
    assert!(reports(&mut w).is_empty(), "to another destination");
    assert_eq!(v, Verdict::Drop(DropReason::IcmpMisaddressed));
    assert!(matches!(w.packet(&whole, 0).0, Verdict::Forward { .. }));
    assert_eq!(reports(&mut w), [DestReport { rs, up: false }]);
}

/// A UDP server let back in reports UP on its first answers, one per connection, at
/// most `up_confirm` (DPVS's one-way → normal).
#[test]
fn udp_a_reopened_server_reports_up_on_its_first_answers() {
    let (mut w, rs) = udp_world("1,2,3s,5-60s");
    let svcs: Vec<_> = w.table.services().iter().map(|s| s.config.clone()).collect();
    let mark = |m: DestMark, prev: &ServiceTable| {
        let mut marks = DestMarks::new();
        marks.insert((svcs[2].key(), SocketAddr::new(RIP4_UDP.into(), 53)), m);
        ServiceTable::build_marked(&svcs, Some(prev), &marks).unwrap()
    };
    w.table = mark(DestMark::Inhibited, &w.table);
    w.engine.bind(&w.table);
    w.table = mark(DestMark::Reopened, &w.table);
    let lp = query(&mut w, 40000);
    answer(&mut w, lp);
    answer(&mut w, lp);
    assert_eq!(reports(&mut w), [DestReport { rs, up: true }], "one per connection");
    for cport in 40001..40004 {
        let lp = query(&mut w, cport);
        answer(&mut w, lp);
    }
    assert_eq!(reports(&mut w), [DestReport { rs, up: true }], "up_confirm = 2");
}
