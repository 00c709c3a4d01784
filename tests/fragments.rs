//! IP fragments through a real rvsd (issue 12, scope 6). rvsd runs on two DPDK pcap
//! ports (`rvs_e2e::pcap_rvsd`, as in `drops.rs`): dpdk0 reads crafted client frames
//! from a capture file, at start; what dpdk1 sends is written to another file, read
//! back here after rvsd stops.
//! A UDP datagram to a UDP service, cut into three IPv4 fragments, must leave as three
//! fragments that reassemble (here) into a datagram from LIP:lport to RIP:53 whose UDP
//! checksum etherparse finds right; the same over IPv6; a later fragment whose first
//! never came is dropped as `fragment_no_first`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use rvs_e2e::pcap_rvsd::{assert_counted, PcapRvsd, Spec, CLIENT, M0, M1, SERVER};
use wire::builder::PacketBuilder;
use wire::{IpProtocol, Ipv4Packet, Ipv6Packet};

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const CIP: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 7);
const LIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 1);
const RS: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);
const ETH: usize = 14;

fn v6(s: &str) -> Ipv6Addr {
    s.parse().unwrap()
}

/// Cuts the IPv4 packet of an Ethernet frame into fragment frames of `chunk` bytes.
fn split_v4(frame: &[u8], chunk: usize) -> Vec<Vec<u8>> {
    let (eth, pkt) = frame.split_at(ETH);
    let p = Ipv4Packet::new_checked(pkt).unwrap();
    let hl = p.header_len();
    let payload = &pkt[hl..p.total_len() as usize];
    let n = payload.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &payload[i * chunk..((i + 1) * chunk).min(payload.len())];
            let mut f = eth.to_vec();
            f.extend_from_slice(&pkt[..hl]);
            f.extend_from_slice(part);
            let mut q = Ipv4Packet::new_unchecked(&mut f[ETH..]);
            q.set_total_len((hl + part.len()) as u16);
            q.set_frag_offset((i * chunk) as u16);
            q.set_more_frags(i + 1 < n);
            q.fill_checksum();
            f
        })
        .collect()
}

/// Cuts the IPv6 packet of an Ethernet frame (no extension headers) into fragment
/// frames of `chunk` bytes with identification `ident`.
fn split_v6(frame: &[u8], chunk: usize, ident: u32) -> Vec<Vec<u8>> {
    let (eth, pkt) = frame.split_at(ETH);
    let p = Ipv6Packet::new_checked(pkt).unwrap();
    let next = p.next_header();
    let payload = p.payload();
    let n = payload.len().div_ceil(chunk);
    (0..n)
        .map(|i| {
            let part = &payload[i * chunk..((i + 1) * chunk).min(payload.len())];
            let mut f = eth.to_vec();
            f.extend_from_slice(&pkt[..40]);
            f.extend_from_slice(&[next.0, 0]);
            f.extend_from_slice(&(((i * chunk) as u16) | u16::from(i + 1 < n)).to_be_bytes());
            f.extend_from_slice(&ident.to_be_bytes());
            f.extend_from_slice(part);
            let mut q = Ipv6Packet::new_unchecked(&mut f[ETH..]);
            q.set_next_header(IpProtocol::FRAGMENT);
            q.set_payload_len((8 + part.len()) as u16);
            f
        })
        .collect()
}

/// The IPv4 fragments (bare IP) among `frames`, reassembled, if complete.
fn reassemble_v4(frames: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut fs: Vec<&[u8]> = frames
        .iter()
        .filter(|f| f.len() > ETH + 20 && f[12..14] == [0x08, 0x00])
        .map(|f| &f[ETH..])
        .filter(|p| Ipv4Packet::new_checked(*p).is_ok_and(|q| q.is_fragment()))
        .collect();
    fs.sort_by_key(|p| Ipv4Packet::new_checked(*p).unwrap().frag_offset());
    let hl = Ipv4Packet::new_checked(*fs.first()?).unwrap().header_len();
    let mut out = fs[0][..hl].to_vec();
    let mut last = false;
    for p in fs {
        let q = Ipv4Packet::new_checked(p).unwrap();
        if q.frag_offset() as usize != out.len() - hl {
            return None;
        }
        out.extend_from_slice(q.payload());
        last = !q.more_frags();
    }
    if !last {
        return None;
    }
    let len = out.len() as u16;
    let mut q = Ipv4Packet::new_unchecked(&mut out[..]);
    q.set_total_len(len);
    q.set_frag_offset(0);
    q.set_more_frags(false);
    q.fill_checksum();
    Some(out)
}

/// The IPv6 fragments (as [`split_v6`] makes them) among `frames`, reassembled.
fn reassemble_v6(frames: &[Vec<u8>]) -> Option<Vec<u8>> {
    let mut fs: Vec<&[u8]> = frames
        .iter()
        .filter(|f| f.len() > ETH + 48 && f[12..14] == [0x86, 0xdd] && f[ETH + 6] == IpProtocol::FRAGMENT.0)
        .map(|f| &f[ETH..])
        .collect();
    let off = |p: &[u8]| u16::from_be_bytes([p[42], p[43]]);
    fs.sort_by_key(|p| off(p) & 0xfff8);
    let first = *fs.first()?;
    let mut out = first[..40].to_vec();
    let mut last = false;
    for p in &fs {
        if (off(p) & 0xfff8) as usize != out.len() - 40 {
            return None;
        }
        out.extend_from_slice(&p[48..40 + Ipv6Packet::new_checked(*p).unwrap().payload_len() as usize]);
        last = off(p) & 1 == 0;
    }
    if !last {
        return None;
    }
    let len = (out.len() - 40) as u16;
    let mut q = Ipv6Packet::new_unchecked(&mut out[..]);
    q.set_next_header(IpProtocol(first[40]));
    q.set_payload_len(len);
    Some(out)
}

/// Addresses, ports, payload of a whole UDP datagram, its checksum verified by etherparse.
fn judge_udp(ip: &[u8]) -> (IpAddr, u16, IpAddr, u16, Vec<u8>) {
    let sp = etherparse::SlicedPacket::from_ip(ip).expect("etherparse");
    let Some(etherparse::TransportSlice::Udp(u)) = sp.transport else { panic!("not UDP: {ip:02x?}") };
    let h = u.to_header();
    let (src, dst, want) = match sp.net.expect("IP") {
        etherparse::NetSlice::Ipv4(p) => {
            let (s, d) = (p.header().source(), p.header().destination());
            (IpAddr::from(s), IpAddr::from(d), h.calc_checksum_ipv4_raw(s, d, u.payload()).unwrap())
        }
        etherparse::NetSlice::Ipv6(p) => {
            let (s, d) = (p.header().source(), p.header().destination());
            (IpAddr::from(s), IpAddr::from(d), h.calc_checksum_ipv6_raw(s, d, u.payload()).unwrap())
        }
    };
    assert_eq!(h.checksum, want, "UDP checksum of the reassembled datagram");
    (src, h.source_port, dst, h.destination_port, u.payload().to_vec())
}

/// The configuration past the ports and their addresses: UDP services on :53 of the
/// IPv4 and the IPv6 VIP.
const CONFIG: &str = r#"
[[neigh]]
dev = "fr1"
addr = "10.2.0.1"
mac = "02:00:00:00:00:51"

[[neigh]]
dev = "fr1"
addr = "fd00::2"
mac = "02:00:00:00:00:51"

[[service]]
proto = "udp"
vip = "192.0.2.1"
port = 53
scheduler = "rr"
laddrs = ["10.1.0.1"]
real_server = [{ addr = "10.2.0.1", port = 53 }]

[[service]]
proto = "udp"
vip = "2001:db8:f::1"
port = 53
scheduler = "rr"
laddrs = ["fd00::1"]
real_server = [{ addr = "fd00::2", port = 53 }]

"#;

#[test]
fn fragmented_udp_datagrams_leave_as_fragments_of_the_translated_datagram() {
    let data4: Vec<u8> = (0..1000u32).map(|i| (i * 13 + 1) as u8).collect();
    let data6: Vec<u8> = (0..900u32).map(|i| (i * 7 + 5) as u8).collect();
    let d4 = PacketBuilder::eth(CLIENT, M0).ipv4(CIP, VIP).ident(0x4242).udp(5353, 53).payload(&data4).build();
    let d6 =
        PacketBuilder::eth(CLIENT, M0).ipv6(v6("2001:db8:c::7"), v6("2001:db8:f::1")).udp(5454, 53).payload(&data6);
    let mut in0 = split_v4(&d4, 400);
    assert_eq!(in0.len(), 3);
    in0.extend(split_v6(&d6.build(), 304, 0x0600_0001));
    // A later fragment whose first never comes.
    let orphan = PacketBuilder::eth(CLIENT, M0).ipv4(CIP, VIP).ident(0x4343).udp(5353, 53).payload(&data4).build();
    in0.push(split_v4(&orphan, 400)[1].clone());
    let mut rvsd = PcapRvsd::start(&Spec { tag: "fr", in0: &in0, in1: &[], mtu1: None, config: CONFIG });
    let want = [("pkts_in", 6u64), ("conns", 2), ("fragment_no_first", 1)];
    let deadline = Instant::now() + Duration::from_secs(30);
    let got = rvsd.wait_for(&["pkts_in", "conns"], &want, deadline);
    // The fragment cache's events, in the summary rvsd logs on SIGUSR1.
    rvsd.signal("USR1");
    let mut summary = String::new();
    while Instant::now() < deadline + Duration::from_secs(5) {
        if let Some(line) = rvsd.log().lines().find(|l| l.contains("rvsd: stats")) {
            summary = line.to_string();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    rvsd.stop();
    assert_counted(&want, &got);
    for e in ["\"frag_forwarded\":6", "\"frag_first_recorded\":2", "\"frag_no_first\":1"] {
        assert!(summary.contains(e), "{e} in the SIGUSR1 summary: {summary}");
    }

    let out = rvsd.sent1();
    for f in &out {
        assert_eq!((&f[0..6], &f[6..12]), (&SERVER.0[..], &M1.0[..]), "to the server's MAC from dpdk1's");
    }
    let ip4: Vec<Vec<u8>> = out.iter().filter(|f| f[12..14] == [0x08, 0x00]).cloned().collect();
    assert_eq!(ip4.len(), 3, "three IPv4 fragments out of dpdk1 ({} frames in all)", out.len());
    for f in &ip4 {
        let p = Ipv4Packet::new_checked(&f[ETH..]).unwrap();
        assert!(p.verify_checksum(), "IPv4 header checksum of each fragment");
        assert_eq!((p.src_addr(), p.dst_addr(), p.ident(), p.ttl()), (LIP, RS, 0x4242, 63));
    }
    let whole = reassemble_v4(&ip4).expect("the IPv4 fragments reassemble");
    let (src, sport, dst, dport, payload) = judge_udp(&whole);
    assert_eq!((src, dst, dport), (LIP.into(), RS.into(), 53));
    assert_ne!(sport, 5353, "the source port is a local port");
    assert_eq!(payload, data4);

    let whole6 = reassemble_v6(&out).expect("the IPv6 fragments reassemble");
    let (src, _, dst, dport, payload) = judge_udp(&whole6);
    assert_eq!((src, dst, dport), (v6("fd00::1").into(), v6("fd00::2").into(), 53));
    assert_eq!(payload, data6);
}
