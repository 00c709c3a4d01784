//! NAT64 for FullNAT (DPVS's NAT64, RFC 7915's header translation): an IPv6 client's
//! packet to an IPv6 VIP leaves as an IPv4 packet from a LIP to an IPv4 real server, and
//! the server's IPv4 reply goes back to the client as IPv6.
//!
//! Only what FullNAT carries is translated: an IPv6 packet without extension headers,
//! or an IPv4 packet without options, that is not a fragment, with a TCP or UDP payload
//! (the caller read its [`Tuple`]). Per RFC 7915:
//! - IPv6 → IPv4 (section 5.1): TOS = traffic class, identification 0, DF set, TTL =
//!   hop limit, protocol = next header; the header checksum computed.
//! - IPv4 → IPv6 (section 4.1): traffic class = TOS, flow label 0, hop limit = TTL,
//!   next header = protocol; the IPv4 options, if any, are refused here (not dropped
//!   silently: the caller counts them).
//! - The TCP/UDP checksum is updated incrementally: the pseudo-header's length and
//!   protocol are the same number in both families, so only the addresses (and the
//!   ports) change its sum. A UDP/IPv4 checksum of 0 ("none") cannot go to IPv6, where
//!   it is mandatory: such a datagram is refused (`NoChecksum`... counted by the caller).
//!
//! The header shrinks by 20 bytes one way and grows by 20 the other: the Ethernet header
//! before `l3` moves (the buffer's headroom), the payload stays where it is. When `l3`
//! leaves room for it, the EtherType just before `l3` is rewritten too (rvs's frames are
//! untagged Ethernet).
//!
//! ICMP errors from the IPv4 side about a packet rvs translated become ICMPv6 errors to
//! the client ([`icmp4_to_icmp6`], RFC 7915 section 4.2): unreachable, time exceeded and
//! "fragmentation needed" (as "packet too big", its MTU 20 bytes larger, so path MTU
//! discovery works across the translation), the quoted packet translated back to what
//! the client sent.

use wire::checksum::Delta;
use wire::{EtherType, IpProtocol, IpVersion, Ipv4Packet, Ipv6Packet};

use crate::buf::PacketBuf;
use crate::translate::{patch_l4, Rewrite, TranslateError, Tuple};
use crate::types::Proto;

/// How much larger an IPv6 header is than an IPv4 header without options.
pub const GROWTH: usize = wire::ipv6::HEADER_LEN - wire::ipv4::HEADER_LEN;

/// Translates the IPv6 packet at `l3` (tuple `t`) into IPv4 with `rw`'s (IPv4)
/// addresses and ports. Unchanged on error.
pub fn v6_to_v4<B: PacketBuf>(buf: &mut B, l3: usize, t: &Tuple, rw: &Rewrite) -> Result<(), TranslateError> {
    let (std::net::IpAddr::V4(src), std::net::IpAddr::V4(dst)) = (rw.src, rw.dst) else {
        return Err(TranslateError::FamilyMismatch);
    };
    let ip = buf.data().get(l3..).ok_or(TranslateError::Truncated)?;
    if IpVersion::of(ip) != Some(IpVersion::V6) {
        return Err(TranslateError::FamilyMismatch);
    }
    let p = Ipv6Packet::new_checked(ip)?;
    if t.l4 != l3 + wire::ipv6::HEADER_LEN {
        // Extension headers: not translated (RFC 7915 would drop most of them anyway).
        return Err(TranslateError::Malformed);
    }
    let (tc, hops, next) = (p.traffic_class(), p.hop_limit(), p.next_header());
    let total = t.l4_len + wire::ipv4::HEADER_LEN;
    let total = u16::try_from(total).map_err(|_| TranslateError::TooLong)?;
    patch_transport(buf, t, rw, true)?;
    // The first 20 bytes of the IPv6 header go; the rest becomes the IPv4 header.
    buf.remove_gap(l3, GROWTH)?;
    let out = &mut buf.data_mut()[l3..l3 + wire::ipv4::HEADER_LEN];
    out.fill(0);
    let mut o = Ipv4Packet::new_unchecked(out);
    o.set_version(4);
    o.set_header_len(wire::ipv4::HEADER_LEN);
    o.set_dscp(tc >> 2);
    o.set_ecn(tc & 3);
    o.set_total_len(total);
    o.set_dont_frag(true);
    o.set_ttl(hops);
    o.set_protocol(next);
    o.set_src_addr(src);
    o.set_dst_addr(dst);
    o.fill_checksum();
    set_ethertype(buf, l3, EtherType::IPV4);
    Ok(())
}

/// Translates the IPv4 packet at `l3` (tuple `t`) into IPv6 with `rw`'s (IPv6)
/// addresses and ports. Unchanged on error.
pub fn v4_to_v6<B: PacketBuf>(buf: &mut B, l3: usize, t: &Tuple, rw: &Rewrite) -> Result<(), TranslateError> {
    let (std::net::IpAddr::V6(src), std::net::IpAddr::V6(dst)) = (rw.src, rw.dst) else {
        return Err(TranslateError::FamilyMismatch);
    };
    let ip = buf.data().get(l3..).ok_or(TranslateError::Truncated)?;
    if IpVersion::of(ip) != Some(IpVersion::V4) {
        return Err(TranslateError::FamilyMismatch);
    }
    let p = Ipv4Packet::new_checked(ip)?;
    if p.header_len() != wire::ipv4::HEADER_LEN {
        return Err(TranslateError::Malformed);
    }
    let (tos, ttl, proto) = (p.dscp() << 2 | p.ecn(), p.ttl(), p.protocol());
    if t.proto == Proto::Udp && udp_checksum(buf.data(), t) == Some(0) {
        return Err(TranslateError::NoChecksum);
    }
    let payload = u16::try_from(t.l4_len).map_err(|_| TranslateError::TooLong)?;
    if buf.headroom() < GROWTH {
        return Err(TranslateError::NoRoom);
    }
    patch_transport(buf, t, rw, false)?;
    // 20 more bytes before the (old) header: together they become the IPv6 header.
    buf.grow_front(GROWTH)?;
    buf.data_mut().copy_within(GROWTH..GROWTH + l3, 0);
    let out = &mut buf.data_mut()[l3..l3 + wire::ipv6::HEADER_LEN];
    out.fill(0);
    let mut o = Ipv6Packet::new_unchecked(out);
    o.set_version_tc_flow(tos, 0);
    o.set_payload_len(payload);
    o.set_next_header(proto);
    o.set_hop_limit(ttl);
    o.set_src_addr(src);
    o.set_dst_addr(dst);
    set_ethertype(buf, l3, EtherType::IPV6);
    Ok(())
}

/// Patches the transport header at `t.l4` for `rw`'s addresses and ports: the ports,
/// and the checksum for the new ends (its pseudo-header's addresses change family);
/// `ipv4` as [`patch_l4`]'s.
fn patch_transport<B: PacketBuf>(buf: &mut B, t: &Tuple, rw: &Rewrite, ipv4: bool) -> Result<(), TranslateError> {
    let mut l4 = Delta::new();
    l4.replace_addr(t.src, rw.src);
    l4.replace_addr(t.dst, rw.dst);
    l4.replace16(t.sport, rw.sport);
    l4.replace16(t.dport, rw.dport);
    let seg = buf.data_mut().get_mut(t.l4..t.l4 + t.l4_len).ok_or(TranslateError::Truncated)?;
    patch_l4(seg, t.proto, ipv4, rw.sport, rw.dport, l4)
}

/// The largest ICMPv6 error rvs sends (IPv6's minimum MTU, RFC 4443).
const ICMP6_MAX: usize = 1280;

/// The ICMPv6 type and code RFC 7915 (section 4.2) gives an ICMPv4 error, and whether
/// it carries an MTU; `None` for the errors it drops (or that rvs does not translate:
/// parameter problems).
fn icmp_map(ty: u8, code: u8) -> Option<(u8, u8)> {
    match (ty, code) {
        (3, 0 | 1 | 5..=8 | 11 | 12) => Some((1, 0)),
        (3, 3) => Some((1, 4)),
        (3, 4) => Some((2, 0)),
        (3, 9 | 10 | 13 | 15) => Some((1, 1)),
        (11, c @ (0 | 1)) => Some((3, c)),
        _ => None,
    }
}

/// Turns the ICMPv4 error `e` at `l3` (about a packet rvs translated to IPv4) into an
/// ICMPv6 error `outer.0 → outer.1`, its quote made IPv6 with `inner`'s addresses and
/// ports (the packet as the client sent it). The message is cut to fit IPv6's minimum
/// MTU. `NotIcmpError` for an error RFC 7915 does not translate; unchanged on error.
pub fn icmp4_to_icmp6<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    e: &crate::icmp_err::IcmpError,
    outer: (std::net::Ipv6Addr, std::net::Ipv6Addr),
    inner: &Rewrite,
) -> Result<(), TranslateError> {
    let (std::net::IpAddr::V6(isrc), std::net::IpAddr::V6(idst)) = (inner.src, inner.dst) else {
        return Err(TranslateError::FamilyMismatch);
    };
    let (ty, code) = icmp_map(e.icmp_type, e.icmp_code).ok_or(TranslateError::NotIcmpError)?;
    let data = buf.data();
    let end = e.icmp + e.icmp_len;
    let t = &e.inner;
    let q = Ipv4Packet::new_checked_header(data.get(e.inner_l3..end).ok_or(TranslateError::Truncated)?)?;
    let (tos, ttl, proto, qlen) = (q.dscp() << 2 | q.ecn(), q.ttl(), q.protocol(), q.total_len() as usize);
    let qpayload = qlen.saturating_sub(q.header_len());
    let l4 = data.get(t.l4..end).ok_or(TranslateError::Truncated)?;

    // The message, built aside: ICMPv6 header, quoted IPv6 header, quoted transport bytes.
    let mut msg = [0u8; ICMP6_MAX - wire::ipv6::HEADER_LEN];
    let l4_room = msg.len() - wire::icmpv6::HEADER_LEN - wire::ipv6::HEADER_LEN;
    let l4_len = l4.len().min(l4_room);
    let len = wire::icmpv6::HEADER_LEN + wire::ipv6::HEADER_LEN + l4_len;
    msg[0] = ty;
    msg[1] = code;
    if ty == 2 {
        // Never below IPv6's minimum, which is all a client would believe (the engine
        // drops an IPv4 report below `MIN_PMTU_V4` before it gets here).
        let mtu = e.mtu.unwrap_or(0).saturating_add(GROWTH as u32).max(crate::icmp_err::MIN_PMTU_V6);
        msg[4..8].copy_from_slice(&mtu.to_be_bytes());
    }
    {
        let qh = &mut msg[wire::icmpv6::HEADER_LEN..wire::icmpv6::HEADER_LEN + wire::ipv6::HEADER_LEN];
        let mut h = Ipv6Packet::new_unchecked(qh);
        h.set_version_tc_flow(tos, 0);
        h.set_payload_len(qpayload as u16);
        h.set_next_header(proto);
        h.set_hop_limit(ttl);
        h.set_src_addr(isrc);
        h.set_dst_addr(idst);
    }
    let at = wire::icmpv6::HEADER_LEN + wire::ipv6::HEADER_LEN;
    msg[at..at + l4_len].copy_from_slice(&l4[..l4_len]);
    let mut d = Delta::new();
    d.replace_addr(t.src, inner.src);
    d.replace_addr(t.dst, inner.dst);
    d.replace16(t.sport, inner.sport);
    d.replace16(t.dport, inner.dport);
    patch_l4(&mut msg[at..at + l4_len], t.proto, false, inner.sport, inner.dport, d)?;
    {
        let mut m = wire::Icmpv6Packet::new_unchecked(&mut msg[..len]);
        m.fill_checksum(outer.0, outer.1);
    }

    // The new packet replaces the old one (the Ethernet header moves as needed).
    let old = end - l3;
    let new = wire::ipv6::HEADER_LEN + len;
    buf.truncate(end);
    if new > old {
        buf.insert_gap(l3, new - old)?;
    } else {
        buf.remove_gap(l3, old - new)?;
    }
    let out = &mut buf.data_mut()[l3..l3 + new];
    out.fill(0);
    let mut o = Ipv6Packet::new_unchecked(&mut out[..wire::ipv6::HEADER_LEN]);
    o.set_version_tc_flow(0, 0);
    o.set_payload_len(len as u16);
    o.set_next_header(IpProtocol::ICMPV6);
    o.set_hop_limit(crate::tunnel::OUTER_TTL);
    o.set_src_addr(outer.0);
    o.set_dst_addr(outer.1);
    out[wire::ipv6::HEADER_LEN..].copy_from_slice(&msg[..len]);
    set_ethertype(buf, l3, EtherType::IPV6);
    Ok(())
}

/// The UDP checksum field of the datagram `t` describes.
fn udp_checksum(data: &[u8], t: &Tuple) -> Option<u16> {
    let at = t.l4 + wire::udp::CHECKSUM_OFFSET;
    data.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

/// Rewrites the EtherType just before `l3`, when there is room for one.
fn set_ethertype<B: PacketBuf>(buf: &mut B, l3: usize, t: EtherType) {
    if let Some(b) = l3.checked_sub(2).and_then(|at| buf.data_mut().get_mut(at..l3)) {
        b.copy_from_slice(&t.0.to_be_bytes());
    }
}

/// The IP protocol number a translated header carries for `p`.
#[inline]
pub fn protocol(p: Proto) -> IpProtocol {
    IpProtocol(p.number())
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use wire::builder::PacketBuilder;
    use wire::{EthernetAddress, TcpFlags};

    use super::*;
    use crate::buf::VecBuf;
    use crate::translate::{testutil::check, tuple};

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const LIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 9);

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    #[test]
    fn tcp_v6_to_v4_and_back_in_ethernet() {
        let (cip, vip) = (v6("2001:db8:c::7"), v6("2001:db8:f::1"));
        let frame = PacketBuilder::eth(MAC, MAC)
            .ipv6(cip, vip)
            .hop_limit(61)
            .tcp(40000, 80)
            .seq(7)
            .flags(TcpFlags::SYN)
            .mss(1440)
            .payload(b"hello")
            .build();
        let mut b = VecBuf::with_room(&frame, 64, 64);
        let t = tuple(b.data(), 14).unwrap();
        let rw = Rewrite { src: LIP.into(), sport: 5001, dst: RIP.into(), dport: 8080 };
        v6_to_v4(&mut b, 14, &t, &rw).unwrap();
        let want = PacketBuilder::eth(MAC, MAC)
            .ipv4(LIP, RIP)
            .ttl(61)
            .dont_frag()
            .tcp(5001, 8080)
            .seq(7)
            .flags(TcpFlags::SYN)
            .mss(1440)
            .payload(b"hello")
            .build();
        assert_eq!(b.to_vec(), want, "exactly the IPv4 packet RFC 7915 makes");
        let seen = check(&b.data()[14..]);
        assert_eq!((seen.src, seen.dport), (IpAddr::from(LIP), 8080));

        // The reply: IPv4 from the server back to the IPv6 client.
        let reply = PacketBuilder::eth(MAC, MAC)
            .ipv4(RIP, LIP)
            .ttl(63)
            .tcp(8080, 5001)
            .seq(900)
            .ack(13)
            .flags(TcpFlags(0x12))
            .payload(b"world")
            .build();
        let mut b = VecBuf::with_room(&reply, 64, 64);
        let t = tuple(b.data(), 14).unwrap();
        let rw = Rewrite { src: vip.into(), sport: 80, dst: cip.into(), dport: 40000 };
        v4_to_v6(&mut b, 14, &t, &rw).unwrap();
        let want = PacketBuilder::eth(MAC, MAC)
            .ipv6(vip, cip)
            .hop_limit(63)
            .tcp(80, 40000)
            .seq(900)
            .ack(13)
            .flags(TcpFlags(0x12))
            .payload(b"world")
            .build();
        assert_eq!(b.to_vec(), want);
        check(&b.data()[14..]);
    }

    #[test]
    fn fragmentation_needed_becomes_packet_too_big_for_the_client() {
        let (cip, vip) = (v6("2001:db8:c::7"), v6("2001:db8:f::1"));
        // What rvs sent the server (translated), and the router's error about it.
        let sent = PacketBuilder::ipv4(LIP, RIP)
            .ttl(63)
            .dont_frag()
            .tcp(5001, 8080)
            .seq(7)
            .ack(1)
            .flags(TcpFlags::ACK)
            .payload(&[9; 64])
            .build();
        let router = Ipv4Addr::new(10, 2, 0, 254);
        let err =
            PacketBuilder::eth(MAC, MAC).ipv4(router, LIP).icmpv4_error(3, 4, &sent[..28]).next_hop_mtu(1400).build();
        let mut b = VecBuf::with_room(&err, 128, 0);
        let e = crate::icmp_err::icmp_error(b.data(), 14).unwrap();
        let inner = Rewrite { src: cip.into(), sport: 40000, dst: vip.into(), dport: 80 };
        icmp4_to_icmp6(&mut b, 14, &e, (vip, cip), &inner).unwrap();
        let f = b.data();
        assert_eq!(&f[12..14], &[0x86, 0xdd], "an IPv6 frame now");
        let seen = check(&f[14..]);
        assert_eq!((seen.src, seen.dst), (IpAddr::from(vip), IpAddr::from(cip)));
        let icmp = &f[14 + 40..];
        assert_eq!((icmp[0], icmp[1]), (2, 0), "packet too big");
        assert_eq!(u32::from_be_bytes(icmp[4..8].try_into().unwrap()), 1420, "the IPv4 MTU plus the header difference");
        let q = &icmp[8..];
        let qh = Ipv6Packet::new_checked_header(q).unwrap();
        assert_eq!((qh.src_addr(), qh.dst_addr(), qh.hop_limit()), (cip, vip, 63), "the client's packet, quoted");
        assert_eq!(qh.payload_len(), 20 + 64);
        assert_eq!(&q[40..44], &[40000u16.to_be_bytes(), 80u16.to_be_bytes()].concat()[..], "its ports");
        // An error RFC 7915 does not translate is refused, the packet unchanged.
        let redirect = PacketBuilder::eth(MAC, MAC).ipv4(router, LIP).icmpv4_error(12, 0, &sent[..28]).build();
        let mut b = VecBuf::with_room(&redirect, 128, 0);
        if let Ok(e) = crate::icmp_err::icmp_error(b.data(), 14) {
            assert_eq!(icmp4_to_icmp6(&mut b, 14, &e, (vip, cip), &inner), Err(TranslateError::NotIcmpError));
            assert_eq!(b.data(), &redirect[..]);
        }
    }

    #[test]
    fn udp_both_ways_and_refusals() {
        let (cip, vip) = (v6("2001:db8:c::7"), v6("2001:db8:f::1"));
        let dgram = PacketBuilder::ipv6(cip, vip).udp(5000, 53).payload(b"query").build();
        let mut b = VecBuf::with_room(&dgram, 64, 0);
        let t = tuple(b.data(), 0).unwrap();
        let rw4 = Rewrite { src: LIP.into(), sport: 5001, dst: RIP.into(), dport: 53 };
        v6_to_v4(&mut b, 0, &t, &rw4).unwrap();
        assert_eq!(check(b.data()).payload, b"query");

        // An IPv4 datagram without a checksum cannot become IPv6.
        let none = PacketBuilder::ipv4(RIP, LIP).udp(53, 5001).no_checksum().payload(b"x").build();
        let mut b = VecBuf::with_room(&none, 64, 0);
        let t = tuple(b.data(), 0).unwrap();
        let rw6 = Rewrite { src: vip.into(), sport: 53, dst: cip.into(), dport: 5000 };
        assert_eq!(v4_to_v6(&mut b, 0, &t, &rw6), Err(TranslateError::NoChecksum));
        assert_eq!(b.data(), &none[..], "unchanged");

        // No headroom: refused, unchanged.
        let with = PacketBuilder::ipv4(RIP, LIP).udp(53, 5001).payload(b"x").build();
        let mut b = VecBuf::with_room(&with, 0, 0);
        let t = tuple(b.data(), 0).unwrap();
        assert_eq!(v4_to_v6(&mut b, 0, &t, &rw6), Err(TranslateError::NoRoom));
        assert_eq!(b.data(), &with[..]);

        // Options are not carried over.
        let opts = PacketBuilder::ipv4(RIP, LIP).ipv4_options(&[1, 1, 1, 0]).udp(53, 5001).payload(b"x").build();
        let mut b = VecBuf::with_room(&opts, 64, 0);
        let t = tuple(b.data(), 0).unwrap();
        assert_eq!(v4_to_v6(&mut b, 0, &t, &rw6), Err(TranslateError::Malformed));

        // Wrong families.
        let mut b = VecBuf::with_room(&with, 64, 0);
        let t = tuple(b.data(), 0).unwrap();
        assert_eq!(v6_to_v4(&mut b, 0, &t, &rw4), Err(TranslateError::FamilyMismatch));
        assert_eq!(v4_to_v6(&mut b, 0, &t, &rw4), Err(TranslateError::FamilyMismatch));
    }
}
