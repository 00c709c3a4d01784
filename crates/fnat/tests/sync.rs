//! Connection sync between two engines (two boxes): what one announces, when, and how
//! the other installs it so that it forwards the connection's next packets exactly as
//! the first would have; and what it refuses.

mod common;

use common::*;
use fnat::engine::sync::{Installed, SyncRefusal, SyncSettings};
use fnat::engine::Verdict;
use fnat::stats::{ConnEvent, DropReason};
use fnat::tcp_state::TcpState;
use fnat::types::Proto;
use wire::builder::PacketBuilder;
use wire::sync::RecordRepr;

const GRACE_MS: u32 = 10_000;

fn synced_world(max_synced: u32) -> World {
    let mut w = World::new(&config(64));
    w.engine.set_sync(Some(SyncSettings { announce: true, grace_ms: GRACE_MS, max_synced }));
    w
}

fn announced(w: &mut World) -> Vec<RecordRepr> {
    let mut out = Vec::new();
    w.engine.take_sync(|r| {
        out.push(r);
        true
    });
    out
}

/// The client's handshake through `w` (no SYN proxy): SYN, the server's SYN-ACK, the
/// client's ACK (with the TOA to the server).
fn handshake(w: &mut World, cport: u16) {
    let (v, _) = w.packet(&t4(CIP4, cport, VIP4, 80).seq(1000).flags(SYN).mss(1460).build(), 0);
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    let lport = lport_of(w, cport);
    let (v, _) = w.packet(&t4(RIP4, 8080, LIP4, lport).seq(5000).ack(1001).flags(SYNACK).mss(1460).build(), 0);
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    let (v, _) = w.packet(&t4(CIP4, cport, VIP4, 80).seq(1001).ack(5001).flags(ACK).build(), 0);
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
}

fn install(w: &mut World, r: &RecordRepr) -> Result<Installed, SyncRefusal> {
    w.engine.install_synced(&w.table, r, w.now)
}

fn lport_of(w: &World, cport: u16) -> u16 {
    let (list, _) = w.engine.list(0, 64, w.now);
    list.iter().find(|c| c.client.port() == cport).expect("connection").local.port()
}

#[test]
fn an_established_connection_moves_to_the_peer_and_forwards_the_same_there() {
    let (mut a, mut b) = (synced_world(1000), synced_world(1000));
    // Half-open: not announced (a SYN flood stays on the box it hits).
    let (v, _) = a.packet(&t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).mss(1460).build(), 0);
    assert!(matches!(v, Verdict::Forward { .. }));
    assert!(announced(&mut a).is_empty(), "a half-open connection is not announced");
    let lport = lport_of(&a, 40000);
    a.packet(&t4(RIP4, 8080, LIP4, lport).seq(5000).ack(1001).flags(SYNACK).mss(1460).build(), 0);
    a.packet(&t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(ACK).build(), 0);
    let recs = announced(&mut a);
    assert_eq!(recs.len(), 1, "announced once established: {recs:?}");
    let r = recs[0];
    assert_eq!((r.proto, r.state, r.toa_done), (6, TcpState::Established as u8, true));
    assert_eq!((r.local.0, r.local.1, r.real.1), (LIP4.into(), lport, 8080));
    assert!(r.timeout_ms > 0 && r.timeout_ms <= 900_000);

    // The peer installs it.
    assert_eq!(install(&mut b, &r), Ok(Installed::New));
    assert_eq!(b.engine.synced_live(), 1);
    assert_eq!(b.engine.stats().events(ConnEvent::SyncInstalled), 1);
    let (listed, _) = b.engine.list(0, 8, b.now);
    assert!(listed[0].synced && listed[0].state == TcpState::Established);
    // Nothing changed and no refresh is due: not announced again.
    assert!(announced(&mut a).is_empty());

    // A state change is announced and updates the peer's copy.
    a.packet(&t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(FINACK).build(), 0);
    let recs = announced(&mut a);
    assert_eq!(recs.len(), 1);
    assert_ne!(recs[0].state, TcpState::Established as u8);
    assert_eq!(install(&mut b, &recs[0]), Ok(Installed::Updated));
    assert_eq!(b.engine.list(0, 8, b.now).0[0].state as u8, recs[0].state);
    assert_eq!(b.engine.synced_live(), 1);

    // Both forward the next packets byte for byte alike (the server's answer, its
    // FIN).
    let reply =
        t4(RIP4, 8080, LIP4, lport).seq(5001).ack(1002).flags(PSHACK).payload(b"HTTP/1.0 200 OK\r\n\r\n").build();
    let fin = t4(RIP4, 8080, LIP4, lport).seq(5020).ack(1002).flags(FINACK).build();
    for p in [&reply, &fin] {
        let (va, oa) = a.packet(p, 0);
        let (vb, ob) = b.packet(p, 0);
        assert!(matches!(vb, Verdict::Forward { .. }), "{vb:?}");
        assert_eq!(oa, ob, "the same translation on both boxes (no second TOA)");
        let to = |v: Verdict| match v {
            Verdict::Forward { dst, dir, .. } => Some((dst, dir)),
            _ => None,
        };
        assert_eq!(to(va), to(vb));
    }
    // Forwarding it made the copy b's own: no longer synced, out of the share, and
    // what a says of it now (its FIN's state change) changes nothing here.
    assert_eq!(b.engine.stats().events(ConnEvent::SyncAdopted), 1);
    assert_eq!(b.engine.synced_live(), 0);
    let (listed, _) = b.engine.list(0, 8, b.now);
    assert!(!listed[0].synced);
    let recs = announced(&mut a);
    assert_eq!(recs.len(), 1, "a announces the server's FIN");
    assert_eq!(install(&mut b, &recs[0]), Err(SyncRefusal::Clash));
    let mut elsewhere = recs[0];
    elsewhere.local.1 = lport.wrapping_add(7);
    assert_eq!(install(&mut b, &elsewhere), Err(SyncRefusal::Clash), "nor can a record replace it");

    // It expires by itself.
    b.now += 3_600_000;
    b.expire();
    assert_eq!((b.engine.conns().len(), b.engine.synced_live()), (0, 0));
}

#[test]
fn a_busy_connection_is_announced_again_when_its_timer_comes_due() {
    let mut a = synced_world(1000);
    handshake(&mut a, 40001);
    assert_eq!(announced(&mut a).len(), 1);
    let data = t4(CIP4, 40001, VIP4, 80).seq(1001).ack(5001).flags(ACK).payload(b"x").build();
    // Packets alone announce nothing more.
    for _ in 0..5 {
        a.now += 1_000;
        a.packet(&data, 0);
    }
    assert!(announced(&mut a).is_empty(), "no per-packet announcements");
    // Its timer (set at the handshake) comes due while it is still busy: refreshed, with
    // the time it has left.
    a.now += 60_000;
    a.packet(&data, 0);
    a.expire();
    let recs = announced(&mut a);
    assert_eq!(recs.len(), 1, "refreshed when its timer came due");
    assert!(recs[0].timeout_ms > 800_000, "{}", recs[0].timeout_ms);
    // The peer's copy outlives the original by the grace.
    let mut b = synced_world(1000);
    install(&mut b, &recs[0]).unwrap();
    b.now += u64::from(recs[0].timeout_ms) + u64::from(GRACE_MS) - 1;
    b.expire();
    assert_eq!(b.engine.conns().len(), 1, "alive within the grace");
    b.now += 1_000; // (the wheel's granularity)
    b.expire();
    assert_eq!(b.engine.conns().len(), 0, "gone after it");
    // Off: nothing is announced.
    a.engine.set_sync(None);
    a.now += 1_000;
    a.packet(&t4(CIP4, 40001, VIP4, 80).seq(1002).ack(5001).flags(FINACK).build(), 0);
    assert!(announced(&mut a).is_empty());
}

#[test]
fn a_udp_connection_is_announced_when_it_opens() {
    let mut a = synced_world(1000);
    let dns = PacketBuilder::ipv4(CIP4, VIP4).udp(5353, 53).payload(b"q").build();
    let (v, _) = a.packet(&dns, 0);
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    let recs = announced(&mut a);
    assert_eq!((recs.len(), recs[0].proto, recs[0].state), (1, 17, 0));
    let mut b = synced_world(1000);
    assert_eq!(install(&mut b, &recs[0]), Ok(Installed::New));
    let (va, oa) = a.packet(&dns, 0);
    let (vb, ob) = b.packet(&dns, 0);
    assert!(matches!((va, vb), (Verdict::Forward { .. }, Verdict::Forward { .. })));
    assert_eq!(oa, ob);
}

/// A flow whose client proves itself is announced again, and its copies are proven
/// with it: after a takeover, a long-lived flow does not give way first when the pool
/// fills (a copy of a flow still unproven is unproven, as the original).
#[test]
fn a_proven_flow_is_announced_again_and_its_copies_are_proven_too() {
    let (mut a, mut b, mut c) = (synced_world(1000), synced_world(1000), synced_world(1000));
    let dns = PacketBuilder::ipv4(CIP4, VIP4).udp(5353, 53).payload(b"q").build();
    a.packet(&dns, 0);
    let recs = announced(&mut a);
    assert_eq!(recs.iter().map(|r| r.proven).collect::<Vec<_>>(), [false]);
    assert_eq!(install(&mut b, &recs[0]), Ok(Installed::New));
    assert_eq!(b.engine.table_gauges().unproven, 1, "the copy of an unproven flow");
    assert_eq!(b.engine.table_gauges().synced, 1);
    let mut sent = 1;
    while a.engine.unproven() > 0 && sent < 20 {
        a.packet(&dns, 0);
        sent += 1;
        if a.engine.unproven() > 0 {
            assert!(announced(&mut a).is_empty(), "nothing announced per packet");
        }
    }
    assert_eq!(sent, 8, "proven at its client's eighth packet");
    let recs = announced(&mut a);
    assert_eq!(recs.iter().map(|r| r.proven).collect::<Vec<_>>(), [true]);
    assert_eq!(install(&mut b, &recs[0]), Ok(Installed::Updated));
    assert_eq!(b.engine.table_gauges().unproven, 0, "the copy proven with it");
    assert_eq!(install(&mut c, &recs[0]), Ok(Installed::New));
    assert_eq!(c.engine.table_gauges(), fnat::stats::TableGauges { half_open: 0, unproven: 0, synced: 1 });
}

#[test]
fn a_full_outbox_loses_records_and_counts_them() {
    let mut a = synced_world(1000);
    for i in 0..3 {
        handshake(&mut a, 41000 + i);
    }
    let mut taken = 0;
    a.engine.take_sync(|_| {
        taken += 1;
        taken <= 1
    });
    assert_eq!(taken, 2, "the queue refused the second: the rest are not offered");
    assert_eq!(a.engine.stats().events(ConnEvent::SyncLost), 2);
    assert_eq!(a.engine.stats().events(ConnEvent::SyncQueued), 3);
}

#[test]
fn refusals_leave_the_table_alone() {
    let mut a = synced_world(1000);
    handshake(&mut a, 40002);
    let good = announced(&mut a)[0];
    let mut b = synced_world(1);
    let refused = |b: &mut World, r: RecordRepr| install(b, &r);

    let mut r = good;
    r.virt.1 = 8443;
    assert_eq!(refused(&mut b, r), Err(SyncRefusal::NoService), "no such service here");
    let mut r = good;
    r.real.0 = RIP4_B.into();
    assert_eq!(refused(&mut b, r), Err(SyncRefusal::NoService), "no such real server in the service");
    let mut r = good;
    r.fwd = 4;
    assert_eq!(refused(&mut b, r), Err(SyncRefusal::Field), "SNAT is not synced");
    let mut r = good;
    r.state = TcpState::SynRecv as u8;
    assert_eq!(refused(&mut b, r), Err(SyncRefusal::Field), "half-open is not synced");
    let mut r = good;
    r.state = 200;
    assert_eq!(refused(&mut b, r), Err(SyncRefusal::Field));
    let mut r = good;
    r.proto = 17;
    assert_eq!(refused(&mut b, r), Err(SyncRefusal::Field), "UDP has no TCP state");
    r.state = TcpState::None as u8;
    assert_eq!(refused(&mut b, r), Err(SyncRefusal::NoService), "no UDP service on that port");
    assert_eq!(b.engine.conns().len(), 0);

    // The share (1 here) bounds what peers can install.
    assert_eq!(refused(&mut b, good), Ok(Installed::New));
    let mut other = good;
    other.client.1 += 1;
    other.local.1 += 1;
    assert_eq!(refused(&mut b, other), Err(SyncRefusal::Full));
    assert_eq!(b.engine.stats().events(ConnEvent::SyncRefusedFull), 1);

    // An older synced copy in the way (the peer reused the client's port towards another
    // local port) gives way to the newer record.
    let mut reused = good;
    reused.local.1 = good.local.1.wrapping_add(7);
    assert_eq!(refused(&mut b, reused), Ok(Installed::New));
    assert_eq!(b.engine.synced_live(), 1);
    assert_eq!(b.engine.list(0, 8, b.now).0[0].local.port(), reused.local.1);

    // A connection of this box is never replaced by a peer's.
    let mut c = synced_world(1000);
    handshake(&mut c, 40002);
    let lport = lport_of(&c, 40002);
    let mut clash = good;
    clash.local.1 = lport;
    assert_eq!(install(&mut c, &clash), Err(SyncRefusal::Clash));
    let mut half = good;
    half.client.1 = 40999; // another client, on the box's own local port: still a clash
    half.local.1 = lport;
    assert_eq!(install(&mut c, &half), Err(SyncRefusal::Clash));
    assert_eq!(c.engine.conns().len(), 1);
    assert!(!c.engine.list(0, 8, c.now).0[0].synced);
    assert_eq!(Proto::from_number(good.proto), Some(Proto::Tcp));
}

#[test]
fn a_walk_announces_the_whole_table_in_slices() {
    let mut a = synced_world(1000);
    for i in 0..10 {
        handshake(&mut a, 42000 + i);
    }
    // A half-open one is left out.
    a.packet(&t4(CIP4, 42999, VIP4, 80).seq(1000).flags(SYN).mss(1460).build(), 0);
    assert_eq!(announced(&mut a).len(), 10);
    let (mut cursor, mut walked, mut turns) = (Some(0), 0, 0);
    while let Some(c) = cursor {
        cursor = a.engine.sync_walk(c, 4, a.now);
        walked += announced(&mut a).len();
        turns += 1;
    }
    assert_eq!((walked, turns), (10, 3), "10 established connections, 4 a turn (the half-open one skipped)");
    let mut b = synced_world(1000);
    let mut recs = Vec::new();
    a.engine.sync_walk(0, 100, a.now);
    recs.extend(announced(&mut a));
    for r in &recs {
        assert_eq!(install(&mut b, r), Ok(Installed::New));
    }
    assert_eq!(b.engine.synced_live(), 10);
}

/// A peer cannot fill the connection table's address slots (which hold each distinct
/// VIP, LIP and RIP once) with made-up local addresses: past half of them, records with
/// yet another foreign local address are refused, and this box's own clients are still
/// served.
#[test]
fn a_peer_inventing_local_addresses_cannot_take_the_tables_address_slots() {
    let mut a = synced_world(1000);
    handshake(&mut a, 40002);
    let good = announced(&mut a)[0];
    let mut b = World::new(&config(40_000));
    b.engine.set_sync(Some(SyncSettings { announce: true, grace_ms: GRACE_MS, max_synced: 40_000 }));
    let slots = b.engine.conns().addrs().slots();
    assert_eq!(slots, 65_535);
    let forged = |i: u32| {
        let mut r = good;
        r.local.0 = std::net::Ipv4Addr::from(0x0a80_0000 + i).into();
        r.client.1 = 1024 + (i % 60_000) as u16;
        r.client.0 = std::net::Ipv4Addr::from(0xc633_6400 + i / 60_000).into();
        r
    };
    let mut installed = 0;
    let mut i = 0;
    while install(&mut b, &forged(i)) == Ok(Installed::New) {
        installed += 1;
        i += 1;
    }
    assert_eq!(install(&mut b, &forged(i)), Err(SyncRefusal::Full));
    // The VIP and the RIP took two slots; the foreign LIPs the rest of the half.
    assert_eq!(installed, slots / 2 - 2);
    assert_eq!(b.engine.conns().addrs().live(), slots / 2);
    // A foreign LIP already held takes no new slot: still fine.
    let mut again = forged(0);
    again.client.1 = 999;
    again.local.1 = again.local.1.wrapping_add(1);
    assert_eq!(install(&mut b, &again), Ok(Installed::New));
    // This box's own clients still get connections.
    let (v, _) = b.packet(&t4(CIP4, 40_100, VIP4, 80).seq(1000).flags(SYN).mss(1460).build(), 0);
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    assert_eq!(b.engine.stats().drops(DropReason::AddrsFull), 0);
    assert_eq!(b.engine.conns().len() as usize, installed + 2);
}

/// A connection of a fwmark service is installed on the peer only where the same rule
/// marks it: the record carries the client and virtual address, not the mark.
#[test]
fn a_fwmark_connection_installs_where_the_same_rule_marks_it() {
    use fnat::fwmark::FwmarkRule;
    use fnat::service::{RealServerConfig, ServiceConfig, ServiceKey, ServiceTable};
    let marked = |rules: bool| {
        let mut w = synced_world(1000);
        let mut c = ServiceConfig::with_key(ServiceKey::of_fwmark(7, false));
        c.real_servers = vec![RealServerConfig {
            addr: RIP4.into(),
            port: 8080,
            weight: 1,
            upper: 0,
            lower: 0,
            fwd: Default::default(),
        }];
        let rule = FwmarkRule::from_match(7, &format!("proto=tcp,dst-range={VIP4}:80")).unwrap();
        let table = ServiceTable::build(&[c], None).unwrap();
        // A rule marks flows to the box's own addresses only.
        w.engine.set_own_addrs([std::net::IpAddr::from(VIP4)]);
        w.table = match rules {
            true => table.with_fwmark_rules(&[rule]).unwrap(),
            false => table,
        };
        w
    };
    let (mut a, mut b, mut c) = (marked(true), marked(true), marked(false));
    handshake(&mut a, 40000);
    let recs = announced(&mut a);
    assert_eq!(recs.len(), 1, "the fwmark service's connection is announced: {recs:?}");
    assert_eq!(install(&mut b, &recs[0]), Ok(Installed::New));
    assert_eq!(install(&mut c, &recs[0]), Err(SyncRefusal::NoService), "no rule, no mark, no service");
}

/// What a peer (holding the key) can no longer make a record say: a NAT or DR
/// connection answered at another address than its client's, a server of port 0 (each
/// flow at its own destination port) reached at another port, and window scales a shift
/// cannot take (the proxy's handshake keeps them at 14 at most: a record of 200 is
/// forwarded as 14, and never overflows the shift).
#[test]
fn a_peers_record_cannot_aim_a_server_elsewhere_nor_overflow_the_window_scale() {
    use fnat::fwmark::FwmarkRule;
    use fnat::service::{RealServerConfig, ServiceConfig, ServiceKey, ServiceTable};
    let mut a = synced_world(1000);
    handshake(&mut a, 40002);
    let good = announced(&mut a)[0];
    let mut b = synced_world(1000);
    let mut nat = good;
    nat.fwd = 1;
    assert_eq!(install(&mut b, &nat), Err(SyncRefusal::Field), "NAT answered at a LIP, not the client");
    nat.local = nat.client;
    assert_eq!(install(&mut b, &nat), Err(SyncRefusal::NoService), "at the client: no NAT server here, though");

    // A fwmark service over ports 80-90 whose server has port 0: each flow keeps its port.
    let port0 = || {
        let mut w = synced_world(1000);
        let mut c = ServiceConfig::with_key(ServiceKey::of_fwmark(7, false));
        c.real_servers = vec![RealServerConfig {
            addr: RIP4.into(),
            port: 0,
            weight: 1,
            upper: 0,
            lower: 0,
            fwd: Default::default(),
        }];
        let rule = FwmarkRule::from_match(7, &format!("proto=tcp,dst-range={VIP4}:80-90")).unwrap();
        w.engine.set_own_addrs([std::net::IpAddr::from(VIP4)]);
        w.table = ServiceTable::build(&[c], None).unwrap().with_fwmark_rules(&[rule]).unwrap();
        w
    };
    let (mut a, mut b) = (port0(), port0());
    a.packet(&t4(CIP4, 40000, VIP4, 80).seq(1000).flags(SYN).mss(1460).build(), 0);
    let lport = lport_of(&a, 40000);
    a.packet(&t4(RIP4, 80, LIP4, lport).seq(5000).ack(1001).flags(SYNACK).mss(1460).build(), 0);
    a.packet(&t4(CIP4, 40000, VIP4, 80).seq(1001).ack(5001).flags(ACK).build(), 0);
    let rec = announced(&mut a)[0];
    assert_eq!((rec.virt.1, rec.real.1), (80, 80));
    let mut ssh = rec;
    (ssh.real.1, ssh.client.1) = (22, 40001);
    assert_eq!(install(&mut b, &ssh), Err(SyncRefusal::NoService), "port 0 is the flow's own, never 22");
    assert_eq!(install(&mut b, &rec), Ok(Installed::New));

    // Window scales beyond 14.
    let mut b = synced_world(1000);
    let mut proxied = good;
    proxied.synproxy = Some(wire::sync::SynProxyFields { delta: 0, ts: 0, ws_client: 200, ws_server: 200, bits: 1 });
    assert_eq!(install(&mut b, &proxied), Ok(Installed::New));
    let lport = good.local.1;
    let data = t4(CIP4, 40002, VIP4, 80).seq(1001).ack(5001).window(1000).flags(PSHACK).payload(b"GET /").build();
    let reply = t4(RIP4, 8080, LIP4, lport).seq(5001).ack(1006).window(1000).flags(ACK).build();
    for p in [&data, &reply] {
        let (v, _) = b.packet(p, 0);
        assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    }
}

/// A peer's record carrying the SYN proxy's or the PROXY protocol's state installs on a
/// box none of whose services uses either (their per-slot state is allocated then), and
/// its connection forwards.
#[test]
fn a_record_with_state_no_service_here_uses_installs_and_forwards() {
    let mut a = synced_world(1000);
    handshake(&mut a, 40002);
    let good = announced(&mut a)[0];
    let off = || {
        let mut cfg = config(64);
        cfg.synproxy.mode = fnat::synproxy::SynProxyMode::Off;
        let mut w = World::new(&cfg);
        w.engine.set_sync(Some(SyncSettings { announce: true, grace_ms: GRACE_MS, max_synced: 1000 }));
        w.engine.bind(&w.table);
        w
    };
    let lport = good.local.1;
    let data = t4(CIP4, 40002, VIP4, 80).seq(1001).ack(5001).flags(PSHACK).payload(b"GET /").build();
    let reply = t4(RIP4, 8080, LIP4, lport).seq(5001).ack(1006).flags(ACK).build();
    let mut proxied = good;
    proxied.synproxy = Some(wire::sync::SynProxyFields { delta: 7, ts: 0, ws_client: 0xff, ws_server: 0xff, bits: 1 });
    let mut pp = good;
    pp.proxy = Some(wire::sync::ProxyFields { first: 1001, len: 28, bits: 0x04 | 0x02 | 0x01 });
    for (rec, grows) in [(proxied, 24.0), (pp, 8.0)] {
        let mut b = off();
        let before = b.engine.bytes_per_slot();
        assert_eq!(install(&mut b, &rec), Ok(Installed::New));
        assert!((b.engine.bytes_per_slot() - before - grows).abs() < 0.01, "{grows} bytes a slot allocated");
        for p in [&data, &reply] {
            let (v, _) = b.packet(p, 0);
            assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
        }
    }
}

/// Under NAT the server answers the client itself: a connection's local address is its
/// client's, which takes none of the table's address slots (there are at most 65,535),
/// so made-up NAT clients cannot use them up; they are held to `max_synced`.
#[test]
fn a_peer_inventing_nat_clients_cannot_take_the_tables_address_slots() {
    use fnat::service::{RealServerConfig, ServiceConfig, ServiceTable};
    use fnat::types::FwdMode;
    let mut b = World::new(&config(80_000));
    b.engine.set_sync(Some(SyncSettings { announce: true, grace_ms: GRACE_MS, max_synced: 70_000 }));
    let mut c = ServiceConfig::new(Proto::Tcp, VIP4.into(), 80);
    c.real_servers =
        vec![RealServerConfig { addr: RIP4.into(), port: 8080, weight: 1, upper: 0, lower: 0, fwd: FwdMode::Nat }];
    b.table = ServiceTable::build(&[c], None).unwrap();
    let forged = |i: u32| {
        let client = (std::net::IpAddr::from(std::net::Ipv4Addr::from(0xc633_0000 + i)), 40000);
        RecordRepr {
            proto: 6,
            fwd: 1,
            state: TcpState::Established as u8,
            client,
            virt: (VIP4.into(), 80),
            local: client,
            real: (RIP4.into(), 8080),
            timeout_ms: 60_000,
            toa_done: false,
            synack_seen: true,
            proven: true,
            synproxy: None,
            proxy: None,
        }
    };
    let mut i = 0;
    while install(&mut b, &forged(i)) == Ok(Installed::New) {
        i += 1;
    }
    assert_eq!(install(&mut b, &forged(i)), Err(SyncRefusal::Full));
    assert_eq!(i, 70_000, "more made-up clients than there are address slots, up to max_synced");
    assert_eq!(b.engine.conns().addrs().live(), 2, "the VIP and the RIP took a slot each, the clients none");
}

/// A copy still ESTABLISHED, whose first packet here takes the established path, is
/// adopted all the same.
#[test]
fn a_copy_is_adopted_by_its_first_packet_on_the_established_path() {
    let mut a = synced_world(1000);
    handshake(&mut a, 40002);
    let r = announced(&mut a)[0];
    let mut b = synced_world(1000);
    assert_eq!(install(&mut b, &r), Ok(Installed::New));
    let lport = r.local.1;
    let reply = t4(RIP4, 8080, LIP4, lport).seq(5001).ack(1001).flags(PSHACK).payload(b"data").build();
    let (v, _) = b.packet(&reply, 0);
    assert!(matches!(v, Verdict::Forward { .. }), "{v:?}");
    assert_eq!((b.engine.synced_live(), b.engine.stats().events(ConnEvent::SyncAdopted)), (0, 1));
    assert!(!b.engine.list(0, 8, b.now).0[0].synced);
}
