//! Builder output is accepted by an independent parser (etherparse 0.16), with the
//! fields we asked for and correct checksums; and our own views read it back the same.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use common::{etherparse_check, L4};
use proptest::prelude::*;
use wire::builder::{IpBuilder, PacketBuilder};
use wire::icmpv4::{self, dst_unreachable};
use wire::icmpv6;
use wire::{EthernetAddress, EthernetFrame, IpProtocol, Ipv4Packet, Ipv6Packet, TcpFlags, TcpPacket, UdpPacket};

const M1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const M2: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

#[derive(Debug, Clone)]
struct Start {
    v6: bool,
    ethernet: bool,
    vlans: Vec<u16>,
    src: IpAddr,
    dst: IpAddr,
    ttl: u8,
}

impl Start {
    fn ip(&self) -> IpBuilder {
        let mut b = match (self.ethernet, self.src, self.dst) {
            (true, IpAddr::V4(s), IpAddr::V4(d)) => {
                let mut e = PacketBuilder::eth(M1, M2);
                for &v in &self.vlans {
                    e = e.vlan(v);
                }
                e.ipv4(s, d)
            }
            (true, IpAddr::V6(s), IpAddr::V6(d)) => {
                let mut e = PacketBuilder::eth(M1, M2);
                for &v in &self.vlans {
                    e = e.vlan(v);
                }
                e.ipv6(s, d)
            }
            (false, IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s, d),
            (false, IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s, d),
            _ => unreachable!(),
        };
        b = b.ttl(self.ttl);
        b
    }
}

fn start() -> impl Strategy<Value = Start> {
    (
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(0u16..4096, 0..=2),
        any::<[u8; 16]>(),
        any::<[u8; 16]>(),
        any::<u8>(),
    )
        .prop_map(|(v6, ethernet, vlans, s, d, ttl)| {
            let (src, dst) = if v6 {
                (IpAddr::V6(Ipv6Addr::from(s)), IpAddr::V6(Ipv6Addr::from(d)))
            } else {
                (IpAddr::V4(Ipv4Addr::new(s[0], s[1], s[2], s[3])), IpAddr::V4(Ipv4Addr::new(d[0], d[1], d[2], d[3])))
            };
            Start { v6, ethernet, vlans: if ethernet { vlans } else { vec![] }, src, dst, ttl }
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn tcp_is_accepted(
        st in start(),
        sport: u16, dport: u16, seq: u32, ack: u32, flags: u8, window: u16,
        mss in proptest::option::of(any::<u16>()),
        ts in proptest::option::of(any::<(u32, u32)>()),
        payload in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut t = st.ip().tcp(sport, dport).seq(seq).ack(ack).flags(TcpFlags(flags)).window(window);
        if let Some(m) = mss { t = t.mss(m); }
        if let Some((a, b)) = ts { t = t.timestamps(a, b); }
        let pkt = t.payload(&payload).build();
        let seen = etherparse_check(&pkt, st.ethernet);
        prop_assert_eq!(&seen.vlan_ids, &st.vlans);
        prop_assert_eq!((seen.src, seen.dst, seen.ttl), (st.src, st.dst, st.ttl));
        match seen.l4 {
            L4::Tcp { sport: s, dport: d, seq: q, ack: a, syn, ack_flag, payload: p, .. } => {
                prop_assert_eq!((s, d, q, a), (sport, dport, seq, ack));
                prop_assert_eq!(syn, flags & 0x02 != 0);
                prop_assert_eq!(ack_flag, flags & 0x10 != 0);
                prop_assert_eq!(p, payload.clone());
            }
            other => prop_assert!(false, "not TCP: {:?}", other),
        }
        // Our own views agree.
        let l3 = if st.ethernet { 14 + 4 * st.vlans.len() } else { 0 };
        let (seg, s, d) = if st.v6 {
            let ip = Ipv6Packet::new_checked(&pkt[l3..]).unwrap();
            let ul = ip.upper_layer().unwrap();
            prop_assert_eq!(ul.protocol, IpProtocol::TCP);
            (&pkt[l3 + ul.offset..], IpAddr::from(ip.src_addr()), IpAddr::from(ip.dst_addr()))
        } else {
            let ip = Ipv4Packet::new_checked(&pkt[l3..]).unwrap();
            prop_assert!(ip.verify_checksum());
            let (hl, tl) = (ip.header_len(), ip.total_len() as usize);
            (&pkt[l3 + hl..l3 + tl], IpAddr::from(ip.src_addr()), IpAddr::from(ip.dst_addr()))
        };
        let tcp = TcpPacket::new_checked(seg).unwrap();
        prop_assert!(tcp.verify_checksum(s, d));
        prop_assert_eq!(tcp.mss(), mss);
        prop_assert_eq!(tcp.payload(), &payload[..]);
    }

    #[test]
    fn udp_is_accepted(
        st in start(), sport: u16, dport: u16, no_csum: bool,
        payload in proptest::collection::vec(any::<u8>(), 0..100),
    ) {
        let mut u = st.ip().udp(sport, dport).payload(&payload);
        let no_csum = no_csum && !st.v6;
        if no_csum { u = u.no_checksum(); }
        let pkt = u.build();
        let seen = etherparse_check(&pkt, st.ethernet);
        prop_assert_eq!((seen.src, seen.dst), (st.src, st.dst));
        match seen.l4 {
            L4::Udp { sport: s, dport: d, checksum, payload: p } => {
                prop_assert_eq!((s, d), (sport, dport));
                prop_assert_eq!(checksum == 0, no_csum);
                prop_assert_eq!(p, payload.clone());
            }
            other => prop_assert!(false, "not UDP: {:?}", other),
        }
        let l3 = if st.ethernet { 14 + 4 * st.vlans.len() } else { 0 };
        let off = if st.v6 { 40 } else { 20 };
        let udp = UdpPacket::new_checked(&pkt[l3 + off..]).unwrap();
        prop_assert!(udp.verify_checksum(st.src, st.dst));
    }

    #[test]
    fn icmp_echo_is_accepted(st in start(), id: u16, seq: u16, data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let b = st.ip();
        let pkt = if st.v6 { b.icmpv6_echo_request(id, seq) } else { b.icmpv4_echo_request(id, seq) }
            .payload(&data)
            .build();
        let seen = etherparse_check(&pkt, st.ethernet);
        let want_rest = [(id >> 8) as u8, id as u8, (seq >> 8) as u8, seq as u8];
        match seen.l4 {
            L4::Icmpv4 { ty, rest, payload, .. } => {
                prop_assert!(!st.v6);
                prop_assert_eq!((ty, rest, payload), (8, want_rest, data.clone()));
            }
            L4::Icmpv6 { ty, rest, payload, .. } => {
                prop_assert!(st.v6);
                prop_assert_eq!((ty, rest, payload), (128, want_rest, data.clone()));
            }
            other => prop_assert!(false, "not ICMP: {:?}", other),
        }
    }
}

#[test]
fn icmpv4_frag_needed_quoting_tcp() {
    let inner = PacketBuilder::ipv4(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 9))
        .dont_frag()
        .tcp(80, 40000)
        .flags(TcpFlags::ACK)
        .payload(&[0x55; 1400])
        .build();
    let pkt = PacketBuilder::eth(M1, M2)
        .ipv4(Ipv4Addr::new(192, 0, 2, 1), Ipv4Addr::new(10, 0, 0, 2))
        .icmpv4_error(icmpv4::Message::DST_UNREACHABLE.0, dst_unreachable::FRAG_NEEDED, &inner[..28])
        .next_hop_mtu(1280)
        .build();
    let seen = etherparse_check(&pkt, true);
    let L4::Icmpv4 { ty, code, rest, payload } = seen.l4 else { panic!("{:?}", seen.l4) };
    assert_eq!((ty, code, rest), (3, 4, [0, 0, 0x05, 0x00]));
    assert_eq!(payload, &inner[..28]);
    let f = EthernetFrame::new_checked(&pkt[..]).unwrap();
    let ip = Ipv4Packet::new_checked(f.payload()).unwrap();
    let icmp = wire::Icmpv4Packet::new_checked(ip.payload()).unwrap();
    assert!(icmp.verify_checksum());
    assert_eq!(icmp.next_hop_mtu(), 1280);
    let q = Ipv4Packet::new_checked_header(icmp.inner().unwrap()).unwrap();
    assert_eq!(q.total_len() as usize, inner.len());
    assert_eq!(q.payload().len(), 8);
}

#[test]
fn icmpv6_packet_too_big_quoting_udp() {
    let (a, b): (Ipv6Addr, Ipv6Addr) = ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
    let inner = PacketBuilder::ipv6(b, a).udp(53, 5353).payload(&[1; 1500]).build();
    let pkt = PacketBuilder::ipv6("2001:db8:ffff::1".parse().unwrap(), b)
        .icmpv6_error(icmpv6::Message::PKT_TOO_BIG.0, 0, 1280, &inner[..1232])
        .build();
    let seen = etherparse_check(&pkt, false);
    let L4::Icmpv6 { ty, rest, payload, .. } = seen.l4 else { panic!("{:?}", seen.l4) };
    assert_eq!((ty, rest), (2, 1280u32.to_be_bytes()));
    assert_eq!(payload.len(), 1232);
}

#[test]
fn neighbour_discovery_is_accepted() {
    let (src, dst): (Ipv6Addr, Ipv6Addr) = ("fe80::1".parse().unwrap(), "ff02::1:ff00:2".parse().unwrap());
    let ns = PacketBuilder::eth(M1, EthernetAddress::from_ipv6_multicast(dst))
        .ipv6(src, dst)
        .neighbour_solicit("fe80::2".parse().unwrap(), Some(M1))
        .build();
    let seen = etherparse_check(&ns, true);
    assert_eq!(seen.ttl, 255);
    let L4::Icmpv6 { ty, .. } = seen.l4 else { panic!() };
    assert_eq!(ty, 135);
    let na = PacketBuilder::ipv6("fe80::2".parse().unwrap(), src)
        .neighbour_advert(wire::NdiscFlags::SOLICITED, "fe80::2".parse().unwrap(), Some(M2))
        .build();
    let L4::Icmpv6 { ty, rest, .. } = etherparse_check(&na, false).l4 else { panic!() };
    assert_eq!((ty, rest), (136, [0x40, 0, 0, 0]));
}

#[test]
fn ipv4_options_and_fragments_are_accepted() {
    let pkt = PacketBuilder::ipv4(Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8))
        .ipv4_options(&[1, 1, 1])
        .udp(1, 2)
        .payload(b"abc")
        .build();
    let seen = etherparse_check(&pkt, false);
    assert!(matches!(seen.l4, L4::Udp { .. }));
    assert_eq!(Ipv4Packet::new_checked(&pkt[..]).unwrap().header_len(), 24);

    let frag = PacketBuilder::ipv4(Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8))
        .fragment(0, true)
        .udp(1, 2)
        .payload(&[0; 16])
        .build();
    assert!(etherparse_check(&frag, false).fragmented);
    assert!(Ipv4Packet::new_checked(&frag[..]).unwrap().is_fragment());

    let frag6 = PacketBuilder::ipv6("::1".parse().unwrap(), "::2".parse().unwrap())
        .ipv6_ext(IpProtocol::DSTOPTS, &[1, 4, 0, 0, 0, 0])
        .ipv6_fragment(8, false, 99)
        .udp(1, 2)
        .build();
    assert!(etherparse_check(&frag6, false).fragmented);
}

#[test]
fn qinq_and_padding_are_accepted() {
    let pkt = PacketBuilder::eth(M1, M2)
        .qinq(100)
        .vlan(200)
        .pad_to(80)
        .ipv4(Ipv4Addr::new(1, 2, 3, 4), Ipv4Addr::new(5, 6, 7, 8))
        .udp(1, 2)
        .build();
    assert_eq!(pkt.len(), 80);
    let seen = etherparse_check(&pkt, true);
    assert_eq!(seen.vlan_ids, [100, 200]);
    let L4::Udp { payload, .. } = seen.l4 else { panic!() };
    assert!(payload.is_empty(), "padding is not payload");
}

#[test]
fn mac_serde() {
    let m: EthernetAddress = serde_json::from_str("\"02:00:00:00:00:01\"").unwrap();
    assert_eq!(m, M1);
    assert_eq!(serde_json::to_string(&M2).unwrap(), "\"02:00:00:00:00:02\"");
    assert!(serde_json::from_str::<EthernetAddress>("\"nope\"").is_err());
}
