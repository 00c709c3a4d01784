//! IP fragments through the engine (the fragment cache of `fnat::frag`): whole
//! datagrams are built with wire's builder, cut into fragments here, sent through the
//! engine, and the output fragments are compared byte for byte with the translated
//! datagram cut the same way. The real proof: the output fragments are reassembled
//! here and etherparse checks the whole datagram's TCP/UDP checksum with the new
//! addresses and ports.

mod common;

use std::net::IpAddr;

use common::*;
use fnat::buf::VecBuf;
use fnat::engine::Verdict;
use fnat::frag::{FragEvent, FRAG_TIMEOUT_MS};
use fnat::stats::DropReason;
use wire::builder::PacketBuilder;
use wire::{IpProtocol, Ipv4Packet, Ipv6Packet, TcpFlags};

/// Cuts the IPv4 packet `pkt` (no Ethernet) into fragments of `chunk` payload bytes
/// (a multiple of 8), keeping its identification.
fn split_v4(pkt: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let p = Ipv4Packet::new_checked(pkt).unwrap();
    let hl = p.header_len();
    let payload = &pkt[hl..p.total_len() as usize];
    let n = payload.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &payload[i * chunk..((i + 1) * chunk).min(payload.len())];
            let mut f = pkt[..hl].to_vec();
            f.extend_from_slice(part);
            let mut q = Ipv4Packet::new_unchecked(&mut f[..]);
            q.set_total_len((hl + part.len()) as u16);
            q.set_frag_offset((i * chunk) as u16);
            q.set_more_frags(i + 1 < n);
            q.fill_checksum();
            f
        })
        .collect()
}

/// Puts IPv4 fragments back together (any order).
fn reassemble_v4(frags: &[Vec<u8>]) -> Vec<u8> {
    let mut fs: Vec<&Vec<u8>> = frags.iter().collect();
    fs.sort_by_key(|f| Ipv4Packet::new_checked(&f[..]).unwrap().frag_offset());
    let hl = Ipv4Packet::new_checked(&fs[0][..]).unwrap().header_len();
    let mut out = fs[0][..hl].to_vec();
    for f in fs {
        let p = Ipv4Packet::new_checked(&f[..]).unwrap();
        assert_eq!(p.frag_offset() as usize, out.len() - hl, "contiguous fragments");
        out.extend_from_slice(p.payload());
    }
    let len = out.len() as u16;
    let mut q = Ipv4Packet::new_unchecked(&mut out[..]);
    q.set_total_len(len);
    q.set_frag_offset(0);
    q.set_more_frags(false);
    q.fill_checksum();
    out
}

/// Cuts the IPv6 packet `pkt` (fixed header, then the upper layer) into fragments of
/// `chunk` bytes (a multiple of 8) with a fragment header of identification `ident`.
fn split_v6(pkt: &[u8], chunk: usize, ident: u32) -> Vec<Vec<u8>> {
    let p = Ipv6Packet::new_checked(pkt).unwrap();
    let next = p.next_header();
    let payload = p.payload();
    let n = payload.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &payload[i * chunk..((i + 1) * chunk).min(payload.len())];
            let mut f = pkt[..40].to_vec();
            let off = ((i * chunk) as u16) | u16::from(i + 1 < n);
            f.extend_from_slice(&[next.0, 0]);
            f.extend_from_slice(&off.to_be_bytes());
            f.extend_from_slice(&ident.to_be_bytes());
            f.extend_from_slice(part);
            let mut q = Ipv6Packet::new_unchecked(&mut f[..]);
            q.set_next_header(IpProtocol::FRAGMENT);
            q.set_payload_len((8 + part.len()) as u16);
            f
        })
        .collect()
}

/// Puts IPv6 fragments (as [`split_v6`] makes them) back together.
fn reassemble_v6(frags: &[Vec<u8>]) -> Vec<u8> {
    let off = |f: &Vec<u8>| u16::from_be_bytes([f[42], f[43]]) & 0xfff8;
    let mut fs: Vec<&Vec<u8>> = frags.iter().collect();
    fs.sort_by_key(|f| off(f));
    let mut out = fs[0][..40].to_vec();
    for f in &fs {
        assert_eq!(f[40], fs[0][40], "same next header");
        assert_eq!(off(f) as usize, out.len() - 40, "contiguous fragments");
        out.extend_from_slice(&f[48..]);
    }
    let len = (out.len() - 40) as u16;
    let mut q = Ipv6Packet::new_unchecked(&mut out[..]);
    q.set_next_header(IpProtocol(fs[0][40]));
    q.set_payload_len(len);
    out
}

/// Sends each fragment, expecting each to be forwarded to `dst` as the matching
/// `want` fragment, byte for byte; returns the outputs.
fn forward_all(w: &mut World, desc: &str, input: &[Vec<u8>], dst: impl Into<IpAddr>, want: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let dst = dst.into();
    assert_eq!(input.len(), want.len());
    let mut outs = Vec::new();
    for (i, (f, x)) in input.iter().zip(want).enumerate() {
        let (v, out) = w.packet(f, 0);
        assert!(
            matches!(v, Verdict::Forward { dst: d, .. } if d == dst),
            "{desc}: fragment {i}: expected a forward to {dst}, got {v:?}"
        );
        assert_eq!(&out, x, "{desc}: fragment {i}: output differs");
        outs.push(out);
    }
    outs
}

fn dropped(w: &mut World, desc: &str, input: &[u8], r: DropReason) {
    let (v, out) = w.packet(input, 0);
    assert_eq!(v, Verdict::Drop(r), "{desc}");
    assert_eq!(out, input, "{desc}: a dropped packet stays untouched");
}

fn event(w: &World, e: FragEvent) -> u64 {
    w.engine.frags().counts().get(e)
}

fn payload(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i * 7 + 3) as u8).collect()
}

#[test]
fn udp_v4_datagram_both_ways() {
    let mut w = World::new(&config(64));
    let data = payload(100);
    // Client -> VIP:53, three fragments (48 + 48 + 12 bytes of UDP).
    let q = PacketBuilder::ipv4(CIP4, VIP4).ident(0x1234).udp(5000, 53).payload(&data).build();
    let q_out = PacketBuilder::ipv4(LIP4, RIP4_UDP).ident(0x1234).udp(1025, 53).payload(&data).build();
    let outs = forward_all(&mut w, "client datagram", &split_v4(&q, 48), RIP4_UDP, &split_v4(&q_out, 48));
    assert_eq!(outs.len(), 3);
    let seen = judge(&reassemble_v4(&outs));
    assert_eq!((seen.src, seen.sport, seen.dst, seen.dport), (LIP4.into(), 1025, RIP4_UDP.into(), 53));
    assert_eq!(seen.payload, data);
    assert_eq!(w.engine.conns().len(), 1, "the first fragment opened the connection");

    // The server's answer, fragmented on its side: back to the client.
    let answer = payload(200);
    let a = PacketBuilder::ipv4(RIP4_UDP, LIP4).ident(0x0042).udp(53, 1025).payload(&answer).build();
    let a_out = PacketBuilder::ipv4(VIP4, CIP4).ident(0x0042).udp(53, 5000).payload(&answer).build();
    let outs = forward_all(&mut w, "server datagram", &split_v4(&a, 64), CIP4, &split_v4(&a_out, 64));
    assert_eq!(outs.len(), 4);
    let seen = judge(&reassemble_v4(&outs));
    assert_eq!((seen.src, seen.sport, seen.dst, seen.dport), (VIP4.into(), 53, CIP4.into(), 5000));
    assert_eq!(seen.payload, answer);

    // A second datagram on the same connection, a zero UDP checksum: stays zero.
    let z = PacketBuilder::ipv4(CIP4, VIP4).ident(0x1235).udp(5000, 53).no_checksum().payload(&data).build();
    let z_out = PacketBuilder::ipv4(LIP4, RIP4_UDP).ident(0x1235).udp(1025, 53).no_checksum().payload(&data).build();
    forward_all(&mut w, "no checksum", &split_v4(&z, 56), RIP4_UDP, &split_v4(&z_out, 56));

    let t = w.engine.stats().total;
    assert_eq!((t.conns, t.pkts_in, t.pkts_out), (1, 5, 4));
    assert_eq!(event(&w, FragEvent::Forwarded), 9);
    assert_eq!(event(&w, FragEvent::FirstRecorded), 3);
    assert_eq!(w.engine.frags().live(w.now), 0, "every last fragment freed its entry");
    let snap = w.engine.stats_snapshot();
    assert_eq!(snap.events["frag_forwarded"], 9);
}

#[test]
fn udp_v4_out_of_order_late_and_expired() {
    let mut w = World::new(&config(64));
    let data = payload(100);
    let q = PacketBuilder::ipv4(CIP4, VIP4).ident(7).udp(5000, 53).payload(&data).build();
    let q_out = PacketBuilder::ipv4(LIP4, RIP4_UDP).ident(7).udp(1025, 53).payload(&data).build();
    let (fs, want) = (split_v4(&q, 48), split_v4(&q_out, 48));
    dropped(&mut w, "a later fragment before its first", &fs[1], DropReason::FragmentNoFirst);
    assert_eq!(w.engine.conns().len(), 0, "a later fragment opens nothing");
    forward_all(
        &mut w,
        "then the first and the last",
        &[fs[0].clone(), fs[2].clone()],
        RIP4_UDP,
        &[want[0].clone(), want[2].clone()],
    );
    dropped(&mut w, "the middle one after the last freed the entry", &fs[1], DropReason::FragmentNoFirst);

    // Expiry: the first at 10 s, the rest 2 s later.
    w.now = 10_000;
    let q = PacketBuilder::ipv4(CIP4, VIP4).ident(8).udp(5000, 53).payload(&data).build();
    let q_out = PacketBuilder::ipv4(LIP4, RIP4_UDP).ident(8).udp(1025, 53).payload(&data).build();
    let (fs, want) = (split_v4(&q, 48), split_v4(&q_out, 48));
    forward_all(&mut w, "first", &fs[..1], RIP4_UDP, &want[..1]);
    w.now += FRAG_TIMEOUT_MS - 1;
    forward_all(&mut w, "second, just in time", &fs[1..2], RIP4_UDP, &want[1..2]);
    w.now += 1;
    dropped(&mut w, "the last, too late", &fs[2], DropReason::FragmentNoFirst);
    assert_eq!(event(&w, FragEvent::Expired), 1);
    assert_eq!(event(&w, FragEvent::NoFirst), 3);
    assert_eq!(w.engine.stats().drops(DropReason::FragmentNoFirst), 3);

    // A first fragment too short for its UDP header, and one of another protocol.
    let tiny = PacketBuilder::ipv4(CIP4, VIP4).fragment(0, true).protocol(IpProtocol::UDP).payload(&[0; 4]).build();
    dropped(&mut w, "tiny first fragment", &tiny, DropReason::Fragment);
    let gre = PacketBuilder::ipv4(CIP4, VIP4).fragment(0, true).protocol(IpProtocol(47)).payload(&[0; 16]).build();
    dropped(&mut w, "a fragment of another protocol", &gre, DropReason::Fragment);
    // A first fragment towards no service is not handed on (as before).
    let other = PacketBuilder::ipv4(CIP4, VIP4).ident(9).udp(5000, 54).payload(&data).build();
    dropped(&mut w, "no service", &split_v4(&other, 48)[0], DropReason::Fragment);
}

#[test]
fn tcp_v4_segment_on_an_established_connection() {
    let mut w = World::new(&config(64));
    let t4 = |s, sp, d, dp, id| PacketBuilder::ipv4(s, d).ident(id).tcp(sp, dp);
    let data = payload(120);
    // A fragmented SYN opens nothing.
    let syn = t4(CIP4, 40000, VIP4, 80, 1).seq(1000).flags(TcpFlags::SYN).payload(&data).build();
    dropped(&mut w, "fragmented SYN", &split_v4(&syn, 64)[0], DropReason::Fragment);
    for p in [
        t4(CIP4, 40000, VIP4, 80, 0).seq(1000).flags(TcpFlags::SYN).build(),
        t4(RIP4, 8080, LIP4, 1025, 0).seq(5000).ack(1001).flags(TcpFlags(0x12)).build(),
    ] {
        assert!(matches!(w.packet(&p, 0).0, Verdict::Forward { .. }), "handshake");
    }
    // The handshake ACK, fragmented (never seen in practice): forwarded without TOA.
    let ack = t4(CIP4, 40000, VIP4, 80, 2).seq(1001).ack(5001).flags(TcpFlags::ACK).payload(&data).build();
    let ack_out = t4(LIP4, 1025, RIP4, 8080, 2).seq(1001).ack(5001).flags(TcpFlags::ACK).payload(&data).build();
    let outs = forward_all(&mut w, "handshake ACK with data", &split_v4(&ack, 64), RIP4, &split_v4(&ack_out, 64));
    let seen = judge(&reassemble_v4(&outs));
    assert_eq!((seen.sport, seen.dport, seen.payload.clone()), (1025, 8080, data.clone()));
    assert_eq!(event(&w, FragEvent::ToaSkipped), 1);
    // Server data back, fragmented.
    let d = t4(RIP4, 8080, LIP4, 1025, 3).seq(5001).ack(1121).flags(TcpFlags(0x18)).payload(&data).build();
    let d_out = t4(VIP4, 80, CIP4, 40000, 3).seq(5001).ack(1121).flags(TcpFlags(0x18)).payload(&data).build();
    let outs = forward_all(&mut w, "server data", &split_v4(&d, 32), CIP4, &split_v4(&d_out, 32));
    let seen = judge(&reassemble_v4(&outs));
    assert_eq!((seen.src, seen.sport, seen.dst, seen.dport), (VIP4.into(), 80, CIP4.into(), 40000));
}

#[test]
fn udp_v6_datagram_both_ways() {
    let mut w = World::new(&config(64));
    let (c6, v6, l6, r6) = (cip6(), vip6(), lip6(), rip6());
    let data = payload(150);
    let q = PacketBuilder::ipv6(c6, v6).udp(5001, 53).payload(&data).build();
    let q_out = PacketBuilder::ipv6(l6, r6).udp(1025, 53).payload(&data).build();
    let outs = forward_all(&mut w, "client datagram", &split_v6(&q, 64, 0xabcd), r6, &split_v6(&q_out, 64, 0xabcd));
    assert_eq!(outs.len(), 3);
    let seen = judge(&reassemble_v6(&outs));
    assert_eq!((seen.src, seen.sport, seen.dst, seen.dport), (l6.into(), 1025, r6.into(), 53));
    assert_eq!(seen.payload, data);

    let a = PacketBuilder::ipv6(r6, l6).udp(53, 1025).payload(&data).build();
    let a_out = PacketBuilder::ipv6(v6, c6).udp(53, 5001).payload(&data).build();
    let outs = forward_all(&mut w, "server datagram", &split_v6(&a, 80, 1), c6, &split_v6(&a_out, 80, 1));
    let seen = judge(&reassemble_v6(&outs));
    assert_eq!((seen.src, seen.sport, seen.dst, seen.dport), (v6.into(), 53, c6.into(), 5001));

    // Out of order: a later fragment first is dropped.
    let fs = split_v6(&q, 64, 0xabce);
    dropped(&mut w, "later before first", &fs[2], DropReason::FragmentNoFirst);
    assert_eq!(event(&w, FragEvent::Forwarded), 5);
}

/// The burst path gives the same verdicts and bytes as the single-packet path.
#[test]
fn burst_matches_single() {
    let data = payload(100);
    let mut inputs = Vec::new();
    for (i, port) in [(1u16, 5000u16), (2, 5001), (3, 5000)] {
        let q = PacketBuilder::ipv4(CIP4, VIP4).ident(i).udp(port, 53).payload(&data).build();
        inputs.extend(split_v4(&q, 48));
    }
    inputs.swap(4, 5); // one datagram's last fragment before its middle one
    let mut single = World::new(&config(64));
    let want: Vec<(Verdict, Vec<u8>)> = inputs.iter().map(|p| single.packet(p, 0)).collect();
    let mut w = World::new(&config(64));
    let mut bufs: Vec<VecBuf> = inputs.iter().map(|p| VecBuf::new(p)).collect();
    let l3 = vec![0; bufs.len()];
    let mut out = vec![Verdict::NotMine; bufs.len()];
    w.engine.process_burst(&w.table, &mut bufs, &l3, 0, &mut out);
    for (i, (b, v)) in bufs.iter().zip(&out).enumerate() {
        assert_eq!((*v, b.to_vec()), want[i], "packet {i}");
    }
    assert_eq!(w.engine.stats().drops(DropReason::FragmentNoFirst), 1);
}

/// With two workers, a fragmented reply to a port the other worker owns is handed over
/// whole: the first fragment by its port, the later ones by the recorded redirect.
#[test]
fn reply_fragments_for_another_worker_are_redirected() {
    let cfg = fnat::engine::config::EngineConfig { workers: 2, worker: 0, ..config(64) };
    let mut w = World::new(&cfg);
    let a = PacketBuilder::ipv4(RIP4_UDP, LIP4).ident(5).udp(53, 1025).payload(&payload(100)).build();
    let fs = split_v4(&a, 48);
    for (i, f) in fs.iter().enumerate() {
        let (v, out) = w.packet(f, 0);
        assert_eq!(v, Verdict::Redirect { owner: 1 }, "fragment {i}");
        assert_eq!(&out, f, "fragment {i}: untouched");
    }
    dropped(&mut w, "the last one freed the entry", &fs[1], DropReason::FragmentNoFirst);
}

/// Inserts a hop-by-hop options header (PadN) before the fragment header of an IPv6
/// fragment as [`split_v6`] makes it.
fn with_hop_by_hop(f: &[u8]) -> Vec<u8> {
    let mut out = f[..40].to_vec();
    out.extend_from_slice(&[IpProtocol::FRAGMENT.0, 0, 1, 4, 0, 0, 0, 0]);
    out.extend_from_slice(&f[40..]);
    let mut q = Ipv6Packet::new_unchecked(&mut out[..]);
    let len = q.payload_len() + 8;
    q.set_payload_len(len);
    q.set_next_header(IpProtocol::HOPOPTS);
    out
}

/// IPv6 fragments behind another extension header keep it; only the addresses change.
#[test]
fn udp_v6_fragments_keep_their_extension_headers() {
    let mut w = World::new(&config(64));
    let (c6, v6, l6, r6) = (cip6(), vip6(), lip6(), rip6());
    let data = payload(150);
    let q = PacketBuilder::ipv6(c6, v6).udp(5001, 53).payload(&data).build();
    let q_out = PacketBuilder::ipv6(l6, r6).udp(1025, 53).payload(&data).build();
    let input: Vec<Vec<u8>> = split_v6(&q, 64, 9).iter().map(|f| with_hop_by_hop(f)).collect();
    let want: Vec<Vec<u8>> = split_v6(&q_out, 64, 9).iter().map(|f| with_hop_by_hop(f)).collect();
    let outs = forward_all(&mut w, "behind a hop-by-hop header", &input, r6, &want);
    // Without the hop-by-hop header again, they reassemble into a valid datagram.
    let plain: Vec<Vec<u8>> = outs
        .iter()
        .map(|f| {
            let mut g = f[..40].to_vec();
            g.extend_from_slice(&f[48..]);
            let mut q = Ipv6Packet::new_unchecked(&mut g[..]);
            let len = q.payload_len() - 8;
            q.set_payload_len(len);
            q.set_next_header(IpProtocol::FRAGMENT);
            g
        })
        .collect();
    let seen = judge(&reassemble_v6(&plain));
    assert_eq!((seen.src, seen.sport, seen.dst, seen.dport, seen.payload), (l6.into(), 1025, r6.into(), 53, data));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Mangled fragments (any byte of a valid fragment changed, cut anywhere) never
    /// panic the engine, on their own or after their datagram's first fragment.
    #[test]
    fn mangled_fragments_never_panic(
        v6 in proptest::bool::ANY,
        which in 0usize..3,
        at in 0usize..200,
        byte in proptest::num::u8::ANY,
        cut in 0usize..200,
    ) {
        let mut w = World::new(&config(64));
        let data = payload(100);
        let fs = if v6 {
            split_v6(&PacketBuilder::ipv6(cip6(), vip6()).udp(5001, 53).payload(&data).build(), 48, 3)
        } else {
            split_v4(&PacketBuilder::ipv4(CIP4, VIP4).ident(3).udp(5000, 53).payload(&data).build(), 48)
        };
        let _ = w.packet(&fs[0], 0);
        let mut f = fs[which].clone();
        if let Some(b) = f.get_mut(at) {
            *b = byte;
        }
        f.truncate(cut.max(1));
        let _ = w.packet(&f, 0);
        let _ = w.packet(&fs[2], 0);
    }
}
