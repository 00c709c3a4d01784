//! A client's RST (or FIN) moves a connection's state here only with the sequence number
//! the real server acknowledged last (RFC 5961's exact match): a blind attacker who knows
//! a connection's addresses and ports but not its sequence numbers used to close it here
//! with one RST of any number (CLOSE, then gone in seconds) or one FIN (CLOSE_WAIT, gone
//! in a minute). Whole frames in and out.

mod common;

use common::*;
use fnat::conn::{ConnKey, BLIND_WINDOW};
use fnat::stats::ConnEvent;
use fnat::tcp_state::TcpState;
use fnat::types::{FwdMode, Proto};
use wire::TcpFlags;

/// A connection CIP4:40000 → VIP4:80 → RIP4:8080 that exchanged a request and its
/// acknowledgment: the server acknowledged up to client sequence 1006.
fn talking() -> Vec<Step> {
    let mut steps = handshake4();
    steps.extend([
        pkt(
            "request",
            t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(b"GET /").build(),
            Expect::Fwd(RIP4.into()),
            None,
        ),
        fwd(
            "the server's ACK of it (the established path)",
            t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1006).flags(ACK).build(),
            CIP4,
            t4(VIP4, 80, CIP4, 40000).seq(5001).ack(1006).flags(ACK).build(),
        ),
        check("the server's acknowledgment is recorded", |w| assert_eq!(inner_ack(w), Some(1006))),
    ]);
    steps
}

fn inner_ack(w: &World) -> Option<u32> {
    let k = ConnKey::new(Proto::Tcp, CIP4.into(), 40000, VIP4.into(), 80);
    w.engine.conns().lookup(&k).map(|h| w.engine.conns().get(h.conn).inner_ack())
}

#[test]
fn a_forged_rst_is_forwarded_and_the_connection_kept() {
    let mut w = World::new(&config(1024));
    let mut steps = talking();
    for (desc, seq, flags) in [("a forged RST", 0x9e37_79b9, RST), ("a forged RST|ACK near the window", 1005, RSTACK)] {
        steps.push(fwd(
            desc,
            t4(CIP4, 40000, VIP4, 80).seq(seq).ack(5001).flags(flags).build(),
            RIP4,
            t4(LIP4, 1025, RIP4, 8080).seq(seq).ack(5001).flags(flags).build(),
        ));
        steps.push(state4("still established: the server judges it", 40000, TcpState::Established));
    }
    steps.push(check("counted", |w| assert_eq!(w.engine.stats().events(ConnEvent::RstUnmatched), 2)));
    // An idle minute later (CLOSE's 10 s would have ended it), the connection is there.
    steps.push(at("idle for a minute", 60_000, 0));
    steps.push(fwd(
        "the client's next request goes through",
        t4(CIP4, 40000, VIP4, 80).seq(1006).ack(5001).flags(PSHACK).payload(b"GET /2").build(),
        RIP4,
        t4(LIP4, 1025, RIP4, 8080).seq(1006).ack(5001).flags(PSHACK).payload(b"GET /2").build(),
    ));
    run(&mut w, steps);
}

#[test]
fn a_forged_fin_is_forwarded_and_the_clients_own_fin_counts() {
    let mut w = World::new(&config(1024));
    let mut steps = talking();
    steps.push(fwd(
        "a forged FIN",
        t4(CIP4, 40000, VIP4, 80).seq(0x0bad_f1a0).ack(5001).flags(FINACK).build(),
        RIP4,
        t4(LIP4, 1025, RIP4, 8080).seq(0x0bad_f1a0).ack(5001).flags(FINACK).build(),
    ));
    steps.push(state4("still established", 40000, TcpState::Established));
    steps.push(check("counted", |w| assert_eq!(w.engine.stats().events(ConnEvent::FinUnmatched), 1)));
    steps.push(fwd(
        "the client's FIN, at the number the server acknowledged",
        t4(CIP4, 40000, VIP4, 80).seq(1006).ack(5001).flags(FINACK).build(),
        RIP4,
        t4(LIP4, 1025, RIP4, 8080).seq(1006).ack(5001).flags(FINACK).build(),
    ));
    steps.push(state4("closing", 40000, TcpState::CloseWait));
    run(&mut w, steps);
}

#[test]
fn the_clients_own_rst_ends_it() {
    let mut w = World::new(&config(1024));
    let mut steps = talking();
    steps.push(fwd(
        "the client's RST, at the number the server acknowledged",
        t4(CIP4, 40000, VIP4, 80).seq(1006).flags(RST).build(),
        RIP4,
        t4(LIP4, 1025, RIP4, 8080).seq(1006).flags(RST).build(),
    ));
    steps.push(state4("closed", 40000, TcpState::Close));
    steps.push(check("nothing unmatched", |w| assert_eq!(w.engine.stats().events(ConnEvent::RstUnmatched), 0)));
    steps.push(at("gone after CLOSE's timeout", 11_000, 1));
    run(&mut w, steps);
}

/// A client that aborts before the server acknowledged its last data sends its RST at
/// the end of that data: it ends the connection here too. A forged segment cannot set up
/// that number: it does not continue the client's stream.
#[test]
fn an_rst_after_unacknowledged_data_counts_and_a_forged_segment_sets_up_nothing() {
    let mut w = World::new(&config(1024));
    let mut steps = talking();
    steps.push(fwd(
        "an older acknowledgment, overtaken on the way, does not move the record back",
        t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1001).flags(ACK).build(),
        CIP4,
        t4(VIP4, 80, CIP4, 40000).seq(5001).ack(1001).flags(ACK).build(),
    ));
    steps.push(check("still 1006", |w| assert_eq!(inner_ack(w), Some(1006))));
    steps.push(pkt(
        "a forged segment somewhere in the window",
        t4(CIP4, 40000, VIP4, 80).seq(1_234_567).ack(5001).flags(PSHACK).payload(b"evil").build(),
        Expect::Fwd(RIP4.into()),
        None,
    ));
    steps.push(pkt(
        "and an RST right after it",
        t4(CIP4, 40000, VIP4, 80).seq(1_234_571).flags(RST).build(),
        Expect::Fwd(RIP4.into()),
        None,
    ));
    steps.push(state4("not taken", 40000, TcpState::Established));
    steps.push(pkt(
        "the client's next request, not yet acknowledged",
        t4(CIP4, 40000, VIP4, 80).seq(1006).ack(5001).flags(PSHACK).payload(b"GET /2").build(),
        Expect::Fwd(RIP4.into()),
        None,
    ));
    steps.push(pkt(
        "the client aborts: its RST at the end of that request",
        t4(CIP4, 40000, VIP4, 80).seq(1012).flags(RST).build(),
        Expect::Fwd(RIP4.into()),
        None,
    ));
    steps.push(state4("closed", 40000, TcpState::Close));
    steps.push(check("one unmatched (the forged one)", |w| {
        assert_eq!(w.engine.stats().events(ConnEvent::RstUnmatched), 1)
    }));
    run(&mut w, steps);
}

/// A forged SYN on an established connection sets up nothing either (a SYN starts the
/// client's numbers afresh only on a connection that is not established).
#[test]
fn a_forged_syn_then_rst_leaves_an_established_connection() {
    let mut w = World::new(&config(1024));
    let mut steps = talking();
    steps.push(pkt(
        "a forged SYN",
        t4(CIP4, 40000, VIP4, 80).seq(0x5eed_0000).flags(SYN).build(),
        Expect::Fwd(RIP4.into()),
        None,
    ));
    steps.push(pkt(
        "and an RST right after it",
        t4(CIP4, 40000, VIP4, 80).seq(0x5eed_0001).flags(RSTACK).build(),
        Expect::Fwd(RIP4.into()),
        None,
    ));
    steps.push(state4("still established", 40000, TcpState::Established));
    steps.push(check("outer numbers unmoved", |w| {
        let k = ConnKey::new(Proto::Tcp, CIP4.into(), 40000, VIP4.into(), 80);
        let h = w.engine.conns().lookup(&k).expect("the connection");
        assert_eq!(w.engine.conns().get(h.conn).outer_next(), 1006);
    }));
    run(&mut w, steps);
}

/// A half-closed connection (the client's FIN passed; the server still sends) is not
/// restarted by a forged SYN: before, the SYN moved it to SYN_RECV and set the client's
/// numbers afresh, a FIN with the next number then matched (TIME_WAIT), and any SYN after
/// reused the connection, for another server, cutting the old one's transfer.
#[test]
fn a_forged_syn_fin_syn_leaves_a_half_closed_connection() {
    let mut w = World::new(&config(1024));
    let mut steps = talking();
    steps.push(pkt(
        "the client's FIN",
        t4(CIP4, 40000, VIP4, 80).seq(1006).ack(5001).flags(FINACK).build(),
        Expect::Fwd(RIP4.into()),
        None,
    ));
    steps.push(pkt(
        "the server's ACK of it",
        t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1007).flags(ACK).build(),
        Expect::Fwd(CIP4.into()),
        None,
    ));
    steps.push(state4("half closed", 40000, TcpState::CloseWait));
    for (desc, seq, flags) in [("a forged SYN", 0x5eed_0000, SYN), ("a FIN after it", 0x5eed_0001, FINACK)] {
        steps.push(pkt(desc, t4(CIP4, 40000, VIP4, 80).seq(seq).flags(flags).build(), Expect::Fwd(RIP4.into()), None));
    }
    steps.push(state4("still half closed", 40000, TcpState::CloseWait));
    steps.push(pkt(
        "another SYN: the same connection's, no new one",
        t4(CIP4, 40000, VIP4, 80).seq(0x5eed_0000).flags(SYN).build(),
        Expect::Fwd(RIP4.into()),
        None,
    ));
    steps.push(fwd(
        "the server's data still reaches the client",
        t4(RIP4, 8080, LIP4, 1025).seq(5001).ack(1007).flags(PSHACK).payload(b"body").build(),
        CIP4,
        t4(VIP4, 80, CIP4, 40000).seq(5001).ack(1007).flags(PSHACK).payload(b"body").build(),
    ));
    steps.push(check("no connection reused", |w| assert_eq!(w.engine.stats().events(ConnEvent::ConnReused), 0)));
    run(&mut w, steps);
}

/// The same on DR, where the client's FIN makes FIN_WAIT while the server streams its
/// answer to the client directly.
#[test]
fn dr_a_forged_syn_fin_syn_leaves_a_half_closed_connection() {
    let (mut w, mut steps) = dr_talking();
    steps.extend([
        client_flags("the client's FIN", 1006, FINACK),
        state4("half closed", 40000, TcpState::FinWait),
        client_flags("a forged SYN", 0x5eed_0000, SYN),
        client_flags("a FIN after it", 0x5eed_0001, FINACK),
        state4("still half closed", 40000, TcpState::FinWait),
        client_flags("another SYN", 0x5eed_0000, SYN),
        check("no connection reused", |w| assert_eq!(w.engine.stats().events(ConnEvent::ConnReused), 0)),
        check("the client's numbers unmoved", |w| assert_eq!(outer_next(w), 1007)),
    ]);
    run(&mut w, steps);
}

/// A DR connection (the server answers the client directly): SYN, ACK and a request
/// from CIP4:40000, the client's stream seen here ending at 1006.
fn dr_talking() -> (World, Vec<Step>) {
    let mut dr = svc(Proto::Tcp, VIP4.into(), 80, &[rs(RIP4.into(), 80)]);
    dr.real_servers[0].fwd = FwdMode::Dr;
    let w = World::with_services(&config(1024), &[dr]);
    let steps = vec![
        pkt("SYN", t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).build(), Expect::Fwd(RIP4.into()), None),
        pkt("ACK", t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(ACK).build(), Expect::Fwd(RIP4.into()), None),
        state4("established", 40000, TcpState::Established),
        client_sends("request", 1001, b"GET /"),
        check("nothing acknowledged here, the client's stream followed", |w| {
            assert_eq!(inner_ack(w), Some(0));
            assert_eq!(outer_next(w), 1006);
        }),
    ];
    (w, steps)
}

/// The client's segment of `payload` at `seq`, passed to the DR server unchanged.
fn client_sends(desc: &'static str, seq: u32, payload: &[u8]) -> Step {
    let f = t4(CIP4, 40000, VIP4, 80).seq(seq).ack(5001).flags(PSHACK).payload(payload).build();
    fwd(desc, f.clone(), RIP4, f)
}

/// The client's packet with `flags` at `seq` (no payload), passed to the DR server
/// unchanged.
fn client_flags(desc: &'static str, seq: u32, flags: TcpFlags) -> Step {
    let f = t4(CIP4, 40000, VIP4, 80).seq(seq).ack(5001).flags(flags).build();
    fwd(desc, f.clone(), RIP4, f)
}

fn outer_next(w: &World) -> u32 {
    let k = ConnKey::new(Proto::Tcp, CIP4.into(), 40000, VIP4.into(), 80);
    w.engine.conns().lookup(&k).map_or(0, |h| w.engine.conns().get(h.conn).outer_next())
}

/// Where the server's replies do not pass (DR, TUN) nothing is acknowledged here, and
/// any client RST used to close the connection (IPVS's input-only table): a blind
/// forger who knew the addresses and ports ended it with one packet. Now the RST or FIN
/// must stand within `BLIND_WINDOW` of the end of the client's stream seen here.
#[test]
fn dr_a_forged_rst_or_fin_far_from_the_clients_stream_keeps_the_connection() {
    let (mut w, mut steps) = dr_talking();
    let far = 1006u32.wrapping_add(1 << 31);
    steps.extend([
        client_flags("a forged RST", far, RST),
        client_flags("a forged RST|ACK just outside the window", 1006 + BLIND_WINDOW + 1, RSTACK),
        client_flags("a forged FIN", far, FINACK),
        state4("still established: the server judges them", 40000, TcpState::Established),
        check("counted", |w| {
            assert_eq!(w.engine.stats().events(ConnEvent::RstUnmatched), 2);
            assert_eq!(w.engine.stats().events(ConnEvent::FinUnmatched), 1);
        }),
        client_sends("a forged segment outside the window", far, b"evil"),
        check("sets up nothing", |w| assert_eq!(outer_next(w), 1006)),
        // An idle minute later (CLOSE's 10 s would have ended it), the connection is there.
        at("idle for a minute", 60_000, 0),
        client_sends("the client's next request goes through", 1006, b"GET /2"),
        client_flags("the client's own FIN, after it", 1012, FINACK),
        state4("closing", 40000, TcpState::FinWait),
    ]);
    run(&mut w, steps);
}

/// A client segment lost before rvs (the client retransmits it; the server has the rest)
/// leaves no gap in what is followed here: the client's FIN after it still counts.
#[test]
fn dr_a_segment_lost_before_rvs_strands_nothing() {
    let (mut w, mut steps) = dr_talking();
    steps.extend([
        client_sends("1006..1012 was lost on the way; 1012..1018 arrives", 1012, b"GET /3"),
        check("followed past the gap", |w| assert_eq!(outer_next(w), 1018)),
        client_sends("the lost one, retransmitted", 1006, b"GET /2"),
        check("never backwards", |w| assert_eq!(outer_next(w), 1018)),
        client_flags("the client's FIN", 1018, FINACK),
        state4("closing", 40000, TcpState::FinWait),
        check("nothing unmatched", |w| assert_eq!(w.engine.stats().events(ConnEvent::FinUnmatched), 0)),
    ]);
    run(&mut w, steps);
}

/// A client whose socket is gone answers a server segment with an RST at the number that
/// segment acknowledged, behind what passed here when the server had not yet received
/// it all: it still ends the connection.
#[test]
fn dr_the_clients_rst_behind_its_stream_ends_it() {
    let (mut w, mut steps) = dr_talking();
    steps.extend([
        client_sends("more data", 1006, b"GET /2"),
        client_flags("the client's RST, at the server's older acknowledgment", 1006, RST),
        state4("closed", 40000, TcpState::Close),
        check("nothing unmatched", |w| assert_eq!(w.engine.stats().events(ConnEvent::RstUnmatched), 0)),
        at("gone after CLOSE's timeout", 11_000, 1),
    ]);
    run(&mut w, steps);
}
