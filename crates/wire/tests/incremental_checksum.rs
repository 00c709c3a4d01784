//! Incremental checksum updates (RFC 1624) equal a full recomputation, for random
//! packets and random rewrites of addresses and ports (IPv4 and IPv6, TCP and UDP).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use proptest::prelude::*;
use wire::builder::PacketBuilder;
use wire::checksum;
use wire::{IpProtocol, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};

#[derive(Debug, Clone)]
struct Case {
    v6: bool,
    tcp: bool,
    udp_zero: bool,
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
    new_src: IpAddr,
    new_dst: IpAddr,
    new_sport: u16,
    new_dport: u16,
}

fn addr(v6: bool, b: [u8; 16]) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::from(b))
    } else {
        IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    }
}

fn case() -> impl Strategy<Value = Case> {
    (
        (any::<bool>(), any::<bool>(), any::<bool>()),
        (any::<[u8; 16]>(), any::<[u8; 16]>(), any::<[u8; 16]>(), any::<[u8; 16]>()),
        (any::<u16>(), any::<u16>(), any::<u16>(), any::<u16>()),
        proptest::collection::vec(any::<u8>(), 0..200),
    )
        .prop_map(|((v6, tcp, udp_zero), (s, d, ns, nd), (sp, dp, nsp, ndp), payload)| Case {
            v6,
            tcp,
            udp_zero: udp_zero && !v6 && !tcp,
            src: addr(v6, s),
            dst: addr(v6, d),
            sport: sp,
            dport: dp,
            payload,
            new_src: addr(v6, ns),
            new_dst: addr(v6, nd),
            new_sport: nsp,
            new_dport: ndp,
        })
}

fn build(c: &Case) -> Vec<u8> {
    let ip = match (c.src, c.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => PacketBuilder::ipv4(s, d),
        (IpAddr::V6(s), IpAddr::V6(d)) => PacketBuilder::ipv6(s, d),
        _ => unreachable!(),
    };
    if c.tcp {
        ip.tcp(c.sport, c.dport).seq(7).mss(1460).payload(&c.payload).build()
    } else {
        let u = ip.udp(c.sport, c.dport).payload(&c.payload);
        if c.udp_zero { u.no_checksum() } else { u }.build()
    }
}

/// Rewrites addresses and ports, updating every checksum incrementally.
fn rewrite_incrementally(pkt: &mut [u8], c: &Case) {
    let l4_off = if c.v6 { 40 } else { 20 };
    // IP header: addresses, and the IPv4 header checksum.
    match (c.new_src, c.new_dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = Ipv4Packet::new_unchecked(&mut pkt[..]);
            let (os, od) = (ip.src_addr(), ip.dst_addr());
            let mut csum = ip.checksum();
            csum = checksum::update32(csum, u32::from(os), u32::from(s));
            csum = checksum::update_bytes(csum, &od.octets(), &d.octets());
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
            ip.set_checksum(csum);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ip = Ipv6Packet::new_unchecked(&mut pkt[..]);
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
        }
        _ => unreachable!(),
    }
    let seg = &mut pkt[l4_off..];
    let (old_sport, old_dport) = (u16::from_be_bytes([seg[0], seg[1]]), u16::from_be_bytes([seg[2], seg[3]]));
    let csum_at = if c.tcp { 16 } else { 6 };
    let old = u16::from_be_bytes([seg[csum_at], seg[csum_at + 1]]);
    if !c.tcp && old == 0 && !c.v6 {
        // UDP over IPv4 without checksum: stays without.
    } else {
        let mut csum = checksum::update_addr(old, c.src, c.new_src);
        csum = checksum::update_addr(csum, c.dst, c.new_dst);
        csum = checksum::update16(csum, old_sport, c.new_sport);
        csum = checksum::update16(csum, old_dport, c.new_dport);
        if !c.tcp {
            csum = checksum::udp_nonzero(csum);
        }
        seg[csum_at..csum_at + 2].copy_from_slice(&csum.to_be_bytes());
    }
    seg[0..2].copy_from_slice(&c.new_sport.to_be_bytes());
    seg[2..4].copy_from_slice(&c.new_dport.to_be_bytes());
}

/// The same rewrite, with every checksum recomputed from scratch.
fn rewrite_fully(pkt: &mut [u8], c: &Case) {
    let l4_off = if c.v6 { 40 } else { 20 };
    match (c.new_src, c.new_dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut ip = Ipv4Packet::new_unchecked(&mut pkt[..]);
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
            ip.fill_checksum();
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut ip = Ipv6Packet::new_unchecked(&mut pkt[..]);
            ip.set_src_addr(s);
            ip.set_dst_addr(d);
        }
        _ => unreachable!(),
    }
    let seg = &mut pkt[l4_off..];
    if c.tcp {
        let mut t = TcpPacket::new_unchecked(seg);
        t.set_src_port(c.new_sport);
        t.set_dst_port(c.new_dport);
        t.fill_checksum(c.new_src, c.new_dst);
    } else {
        let mut u = UdpPacket::new_unchecked(seg);
        u.set_src_port(c.new_sport);
        u.set_dst_port(c.new_dport);
        if !c.udp_zero {
            u.fill_checksum(c.new_src, c.new_dst);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn incremental_equals_full(c in case()) {
        let orig = build(&c);
        let mut inc = orig.clone();
        rewrite_incrementally(&mut inc, &c);
        let mut full = orig.clone();
        rewrite_fully(&mut full, &c);
        prop_assert_eq!(&inc, &full);
        // And the result verifies with our own views.
        let l4_off = if c.v6 { 40 } else { 20 };
        if !c.v6 {
            prop_assert!(Ipv4Packet::new_checked(&inc[..]).unwrap().verify_checksum());
        }
        let ok = if c.tcp {
            TcpPacket::new_checked(&inc[l4_off..]).unwrap().verify_checksum(c.new_src, c.new_dst)
        } else {
            UdpPacket::new_checked(&inc[l4_off..]).unwrap().verify_checksum(c.new_src, c.new_dst)
        };
        prop_assert!(ok);
    }

    #[test]
    fn update16_and_update32_match_recomputation(
        mut data in proptest::collection::vec(any::<u8>(), 8..64),
        at in any::<prop::sample::Index>(),
        new16: u16,
        new32: u32,
    ) {
        if data.len() % 2 == 1 { data.pop(); }
        let c0 = checksum::checksum(&data);
        let i = at.index(data.len() / 2 - 1) * 2;
        let mut d = data.clone();
        let old16 = u16::from_be_bytes([d[i], d[i + 1]]);
        d[i..i + 2].copy_from_slice(&new16.to_be_bytes());
        // Equal as one's-complement values (0x0000 and 0xffff are both zero).
        let a = checksum::update16(c0, old16, new16);
        let b = checksum::checksum(&d);
        prop_assert!(a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0), "{a:#x} {b:#x}");
        if i + 4 <= data.len() {
            let mut d = data.clone();
            let old32 = u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
            d[i..i + 4].copy_from_slice(&new32.to_be_bytes());
            let a = checksum::update32(c0, old32, new32);
            let b = checksum::checksum(&d);
            prop_assert!(a == b || (a == 0 && b == 0xffff) || (a == 0xffff && b == 0), "{a:#x} {b:#x}");
        }
    }
}

#[test]
fn ipv6_pseudo_header_change_only() {
    // The pseudo-header is all that changes for an IPv6 rewrite: check the L4 checksum
    // directly against the pseudo-header sums.
    let (a, b): (Ipv6Addr, Ipv6Addr) = ("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap());
    let pkt = PacketBuilder::ipv6(a, b).udp(1, 2).payload(b"hello").build();
    let ip = Ipv6Packet::new_checked(&pkt[..]).unwrap();
    let ul = ip.upper_layer().unwrap();
    assert_eq!(ul.protocol, IpProtocol::UDP);
    let u = UdpPacket::new_checked(&pkt[ul.offset..]).unwrap();
    let c: Ipv6Addr = "fd00::99".parse().unwrap();
    let updated = checksum::update_bytes(u.checksum(), &a.octets(), &c.octets());
    assert_eq!(checksum::udp_nonzero(updated), u.compute_checksum(c.into(), b.into()));
}
