//! Translation of ICMP errors about FullNAT connections.
//!
//! An ICMP error quotes the packet that caused it: its IP header and at least the first
//! 8 bytes of its transport header (RFC 792; ICMPv6 quotes as much as fits in 1280
//! bytes, RFC 4443). When a router between the balancer and a real server reports a
//! problem with LIP:lport -> RIP:rport (unreachable, "fragmentation needed" / "packet
//! too big", time exceeded), the client must receive it as a problem with its own
//! CIP:cport -> VIP:vport, or path-MTU discovery and error reporting break. The same
//! holds the other way for errors about VIP -> CIP packets coming from the client side.
//!
//! [`icmp_error`] reads such an error and the quoted packet's tuple (for the
//! connection lookup: note that the quoted packet is one the balancer *sent*, so its
//! tuple is the reverse of the direction the error travels). [`rewrite_icmp_error`]
//! translates the outer addresses, the quoted IP header (addresses and, for IPv4, its
//! header checksum) and the quoted ports, then fixes the ICMP checksum (which covers
//! the quoted bytes, and for ICMPv6 the outer pseudo-header) and the outer IPv4
//! header checksum, all incrementally.
//!
//! The quoted transport checksum belongs to a segment that is usually truncated, so it
//! cannot be verified; it is still updated incrementally (addresses and ports only
//! change the pseudo-header and header words) whenever its two bytes are wholly in the
//! quote: always for UDP (bytes 6-7), for TCP when at least 18 bytes are quoted. A
//! quoted UDP/IPv4 checksum of 0 stays 0.
//!
//! Handled messages: ICMPv4 destination unreachable (including fragmentation needed),
//! time exceeded and parameter problem; ICMPv6 destination unreachable, packet too
//! big, time exceeded and parameter problem. The quoted packet must be TCP, UDP or an
//! ICMP echo (a SNAT rule's ping: its identifier stands for the ports, as in
//! [`crate::translate::Tuple`]; `traceroute -I`'s time-exceeded errors) and not a
//! non-first fragment (which has no ports).
//!
//! Before the engine acts on an error about a known connection (passes it on, or takes
//! it as a real server's word for the passive health check) it vets it with
//! [`IcmpError::checksum_ok`], [`IcmpError::to_quoted_sender`] and
//! [`IcmpError::mtu_too_small`]: a damaged message, one not addressed to the sender of
//! the packet it quotes, and a path MTU below what the family guarantees
//! ([`MIN_PMTU_V4`], [`MIN_PMTU_V6`]) are dropped, each counted by its own reason.

use std::net::IpAddr;

use wire::checksum::Delta;
use wire::{icmpv4, icmpv6, IpProtocol, IpVersion, Ipv4Packet, Ipv6Packet, TcpFlags};

use crate::buf::PacketBuf;
use crate::translate::{echo_ends, patch_l4, write_ip_addrs, Rewrite, TranslateError, Tuple};
use crate::types::Proto;

/// The smallest next-hop MTU of an ICMPv4 "fragmentation needed" rvs passes on, either
/// way: 576, the datagram RFC 791 says every host must accept (Linux's own floor,
/// `min_pmtu`, is 552). A smaller one lowers the path MTU a host keeps for the error's
/// source for about ten minutes (Linux: `mtu_expires`), and towards a real server that
/// source is a LIP shared by every client using it: one client could slow them all.
/// Towards a client the same floor holds, so that rvs never passes on what it does not
/// believe; a NAT64 client hears of an IPv4 path no narrower than that either (the
/// error is dropped before it is translated).
pub const MIN_PMTU_V4: u32 = 576;

/// The smallest MTU of an ICMPv6 "packet too big" rvs passes on, either way: 1280, the
/// link MTU RFC 8200 says IPv6 never goes below, so a smaller one is a lie (RFC 8201
/// has a host ignore it; what an older one does with it is not worth the risk). It is
/// also the MTU a NAT64 client is told at least ([`crate::nat64::icmp4_to_icmp6`]).
pub const MIN_PMTU_V6: u32 = 1280;

/// New outer addresses of an ICMP error (e.g. VIP -> CIP for an error from the real
/// server's side delivered to the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct AddrRewrite {
    /// New source address.
    pub src: IpAddr,
    /// New destination address.
    pub dst: IpAddr,
}

/// What [`icmp_error`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IcmpError {
    /// Outer source (the router or host reporting).
    pub src: IpAddr,
    /// Outer destination.
    pub dst: IpAddr,
    /// ICMP or ICMPv6 type.
    pub icmp_type: u8,
    /// ICMP or ICMPv6 code.
    pub icmp_code: u8,
    /// The MTU of an ICMPv4 "fragmentation needed" or an ICMPv6 "packet too big".
    pub mtu: Option<u32>,
    /// Offset of the ICMP header from the start of the data.
    pub icmp: usize,
    /// Length of the ICMP message.
    pub icmp_len: usize,
    /// Offset of the quoted IP header from the start of the data.
    pub inner_l3: usize,
    /// The quoted packet's tuple. `l4` is the offset of its transport header from the
    /// start of the data and `l4_len` the number of its bytes quoted; `tcp_flags` are
    /// empty unless the quote reaches them (byte 13).
    pub inner: Tuple,
}

impl IcmpError {
    /// Whether the error is addressed to the source of the packet it quotes, as every
    /// ICMP error is (RFC 792, RFC 4443: it goes back to the packet's sender). One that
    /// is not was forged or mangled on the way: nothing it says is about what that
    /// sender sent.
    #[inline]
    pub fn to_quoted_sender(&self) -> bool {
        self.dst == self.inner.src
    }

    /// Whether the ICMP checksum of the error `data` holds (as [`icmp_error`] read it)
    /// is right: over the ICMP message for ICMPv4, with the IPv6 pseudo-header for
    /// ICMPv6. Reads the whole message (off the per-packet path: errors only).
    pub fn checksum_ok(&self, data: &[u8]) -> bool {
        let Some(m) = data.get(self.icmp..self.icmp + self.icmp_len) else { return false };
        match (self.src, self.dst) {
            (IpAddr::V4(_), IpAddr::V4(_)) => icmpv4::Packet::new_checked(m).is_ok_and(|p| p.verify_checksum()),
            (IpAddr::V6(s), IpAddr::V6(d)) => icmpv6::Packet::new_checked(m).is_ok_and(|p| p.verify_checksum(s, d)),
            _ => false,
        }
    }

    /// Whether the error announces a path MTU below what its family guarantees
    /// ([`MIN_PMTU_V4`], [`MIN_PMTU_V6`]): not to be believed, nor passed on.
    #[inline]
    pub fn mtu_too_small(&self) -> bool {
        let floor = if self.src.is_ipv4() { MIN_PMTU_V4 } else { MIN_PMTU_V6 };
        self.mtu.is_some_and(|m| m < floor)
    }
}

/// Reads the ICMP or ICMPv6 error whose outer IP header is at `l3`, and the tuple of
/// the packet it quotes. Its checksum is not verified here ([`IcmpError::checksum_ok`]).
///
/// Errors: `NotIcmpError` for other ICMP messages and other protocols, `Fragment` if the
/// outer packet is a fragment or the quoted one a non-first fragment,
/// `UnsupportedProtocol` if the quoted packet is neither TCP, UDP nor an ICMP echo
/// request or reply, `Truncated` if fewer than 8 bytes of its transport header are
/// quoted, `Malformed` for impossible headers (including an IPv6 packet quoted in
/// ICMPv4 or the reverse).
pub fn icmp_error(data: &[u8], l3: usize) -> Result<IcmpError, TranslateError> {
    let ip = data.get(l3..).ok_or(TranslateError::Truncated)?;
    let (v4, src, dst, icmp_rel, icmp_len) = match IpVersion::of(ip) {
        Some(IpVersion::V4) => {
            let p = Ipv4Packet::new_checked(ip)?;
            if p.is_fragment() {
                return Err(TranslateError::Fragment);
            }
            if p.protocol() != IpProtocol::ICMP {
                return Err(TranslateError::NotIcmpError);
            }
            let hl = p.header_len();
            (true, IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()), hl, p.total_len() as usize - hl)
        }
        Some(IpVersion::V6) => {
            let p = Ipv6Packet::new_checked(ip)?;
            let ul = p.upper_layer()?;
            if ul.is_fragment() {
                return Err(TranslateError::Fragment);
            }
            if ul.protocol != IpProtocol::ICMPV6 {
                return Err(TranslateError::NotIcmpError);
            }
            let end = wire::ipv6::HEADER_LEN + p.payload_len() as usize;
            (false, IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()), ul.offset, end - ul.offset)
        }
        None => return Err(TranslateError::Malformed),
    };
    let icmp = ip.get(icmp_rel..icmp_rel + icmp_len).ok_or(TranslateError::Truncated)?;
    let (icmp_type, icmp_code, mtu) = if v4 {
        let m = icmpv4::Packet::new_checked(icmp)?;
        let t = m.msg_type();
        if t != icmpv4::Message::DST_UNREACHABLE
            && t != icmpv4::Message::TIME_EXCEEDED
            && t != icmpv4::Message::PARAM_PROBLEM
        {
            return Err(TranslateError::NotIcmpError);
        }
        let frag_needed = t == icmpv4::Message::DST_UNREACHABLE && m.msg_code() == icmpv4::dst_unreachable::FRAG_NEEDED;
        (t.0, m.msg_code(), frag_needed.then(|| m.next_hop_mtu() as u32))
    } else {
        let m = icmpv6::Packet::new_checked(icmp)?;
        let t = m.msg_type();
        if !t.is_error() || t.0 > icmpv6::Message::PARAM_PROBLEM.0 || t.0 == 0 {
            return Err(TranslateError::NotIcmpError);
        }
        let mtu = (t == icmpv6::Message::PKT_TOO_BIG).then(|| m.mtu());
        (t.0, m.msg_code(), mtu)
    };
    // Both ICMP headers are 8 bytes, which `new_checked` established.
    let quoted = icmp.get(wire::icmpv4::HEADER_LEN..).unwrap_or(&[]);
    let inner_rel = icmp_rel + wire::icmpv4::HEADER_LEN;
    let (proto, isrc, idst, il4_rel) = if v4 {
        let q = Ipv4Packet::new_checked_header(quoted)?;
        if q.frag_offset() != 0 {
            return Err(TranslateError::Fragment);
        }
        (q.protocol(), IpAddr::V4(q.src_addr()), IpAddr::V4(q.dst_addr()), q.header_len())
    } else {
        let q = Ipv6Packet::new_checked_header(quoted)?;
        let ul = q.upper_layer()?;
        if ul.fragment.is_some_and(|f| f.offset != 0) {
            return Err(TranslateError::Fragment);
        }
        (ul.protocol, IpAddr::V6(q.src_addr()), IpAddr::V6(q.dst_addr()), ul.offset)
    };
    let unsupported = TranslateError::UnsupportedProtocol(proto.0);
    let proto = Proto::from_number_in(proto.0, !v4).ok_or(unsupported)?;
    let l4 = quoted.get(il4_rel..).ok_or(TranslateError::Truncated)?;
    if l4.len() < wire::udp::HEADER_LEN {
        return Err(TranslateError::Truncated);
    }
    let (sport, dport, tcp_flags) = match (proto, l4.get(13)) {
        (Proto::Icmp, _) => echo_ends(l4)?.ok_or(unsupported)?,
        (Proto::Tcp, Some(&f)) => (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]), TcpFlags(f)),
        _ => (u16::from_be_bytes([l4[0], l4[1]]), u16::from_be_bytes([l4[2], l4[3]]), TcpFlags::empty()),
    };
    let inner =
        Tuple { proto, src: isrc, sport, dst: idst, dport, tcp_flags, l4: l3 + inner_rel + il4_rel, l4_len: l4.len() };
    Ok(IcmpError {
        src,
        dst,
        icmp_type,
        icmp_code,
        mtu,
        icmp: l3 + icmp_rel,
        icmp_len,
        inner_l3: l3 + inner_rel,
        inner,
    })
}

/// Translates the ICMP error at `l3`: the outer addresses become `outer`, the quoted
/// packet's addresses and ports become `inner` (see the module documentation for what
/// is updated). Both must be of the packet's address family (`FamilyMismatch`). The
/// packet is untouched on error.
pub fn rewrite_icmp_error<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    outer: &AddrRewrite,
    inner: &Rewrite,
) -> Result<(), TranslateError> {
    let e = icmp_error(buf.data(), l3)?;
    rewrite_icmp_error_parsed(buf.data_mut(), l3, &e, outer, inner)
}

/// [`rewrite_icmp_error`] for an error the caller already read with [`icmp_error`]
/// (and has not changed since).
pub fn rewrite_icmp_error_parsed(
    data: &mut [u8],
    l3: usize,
    e: &IcmpError,
    outer: &AddrRewrite,
    inner: &Rewrite,
) -> Result<(), TranslateError> {
    let v4 = e.src.is_ipv4();
    if [outer.src, outer.dst, inner.src, inner.dst].iter().any(|a| a.is_ipv4() != v4) {
        return Err(TranslateError::FamilyMismatch);
    }
    let t = &e.inner;
    let end = e.icmp + e.icmp_len;
    if e.icmp_len < wire::icmpv4::HEADER_LEN || data.len() < end || t.l4 + wire::udp::HEADER_LEN > end {
        return Err(TranslateError::Truncated);
    }
    // Every field changed inside the ICMP message sits at an even offset from its start
    // (the quote starts at 8, IP headers and extension headers are multiples of 4), so
    // plain 16-bit word updates apply to the ICMP checksum.
    let mut icmp_delta = Delta::new();

    // The quoted IP header: addresses, and its own checksum for IPv4.
    let mut addrs = Delta::new();
    addrs.replace_addr(t.src, inner.src);
    addrs.replace_addr(t.dst, inner.dst);
    icmp_delta.merge(addrs);
    let old_ip_csum = quoted_ipv4_checksum(data, e.inner_l3, v4);
    write_ip_addrs(data, e.inner_l3, inner.src, inner.dst, addrs)?;
    if let Some(old) = old_ip_csum {
        let new = quoted_ipv4_checksum(data, e.inner_l3, v4).unwrap_or(old);
        icmp_delta.replace16(old, new);
    }

    // The quoted transport header: ports (an echo's identifier), and its checksum if
    // quoted. The ICMP checksum follows the bytes actually written: the first 8 (ports,
    // UDP's checksum; an echo's checksum and identifier) and TCP's checksum (16-17).
    let seg = &mut data[t.l4..end];
    let read16 = |s: &[u8], at: usize| s.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]));
    let mut head = [0u8; wire::udp::HEADER_LEN];
    head.copy_from_slice(&seg[..wire::udp::HEADER_LEN]);
    let tcp_csum = |s: &[u8]| if t.proto == Proto::Tcp { read16(s, wire::tcp::CHECKSUM_OFFSET) } else { None };
    let old_tcp_csum = tcp_csum(seg);
    let mut l4 = addrs;
    l4.replace16(t.sport, inner.sport);
    l4.replace16(t.dport, inner.dport);
    patch_l4(seg, t.proto, v4, inner.sport, inner.dport, l4)?;
    icmp_delta.replace_at(0, &head, &seg[..wire::udp::HEADER_LEN]);
    if let (Some(old), Some(new)) = (old_tcp_csum, tcp_csum(seg)) {
        icmp_delta.replace16(old, new);
    }

    // The outer header; for ICMPv6 its addresses are in the checksum's pseudo-header.
    let mut outer_addrs = Delta::new();
    outer_addrs.replace_addr(e.src, outer.src);
    outer_addrs.replace_addr(e.dst, outer.dst);
    if !v4 {
        icmp_delta.merge(outer_addrs);
    }
    let field = &mut data[e.icmp + 2..e.icmp + 4];
    let old = u16::from_be_bytes([field[0], field[1]]);
    field.copy_from_slice(&icmp_delta.apply(old).to_be_bytes());
    write_ip_addrs(data, l3, outer.src, outer.dst, outer_addrs)
}

/// The quoted IPv4 header's checksum (None for IPv6).
fn quoted_ipv4_checksum(data: &[u8], at: usize, v4: bool) -> Option<u16> {
    if !v4 {
        return None;
    }
    let b = data.get(at + 10..at + 12)?;
    Some(u16::from_be_bytes([b[0], b[1]]))
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use wire::builder::PacketBuilder;
    use wire::icmpv4::dst_unreachable;
    use wire::{EthernetAddress, TcpPacket};

    use super::*;
    use crate::buf::VecBuf;
    use crate::translate::testutil::check;

    const CIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const LIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 9);
    const ROUTER: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 1);

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// The segment the balancer sent to the real server, and the one the client sent.
    fn pair_v4(payload: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let seg = |s, sp, d, dp| {
            PacketBuilder::ipv4(s, d)
                .dont_frag()
                .tcp(sp, dp)
                .flags(TcpFlags::ACK | TcpFlags::PSH)
                .seq(1000)
                .ack(2000)
                .payload(payload)
                .build()
        };
        (seg(LIP, 5001, RIP, 8080), seg(CIP, 40000, VIP, 80))
    }

    fn to_client() -> (AddrRewrite, Rewrite) {
        (
            AddrRewrite { src: VIP.into(), dst: CIP.into() },
            Rewrite { src: CIP.into(), sport: 40000, dst: VIP.into(), dport: 80 },
        )
    }

    #[test]
    fn frag_needed_from_the_server_side_with_minimal_quote() {
        let (sent, client_view) = pair_v4(&[0x77; 1400]);
        let m = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let err = PacketBuilder::eth(m, m)
            .ipv4(ROUTER, LIP)
            .icmpv4_error(3, dst_unreachable::FRAG_NEEDED, &sent[..28])
            .next_hop_mtu(1400)
            .build();
        let e = icmp_error(&err, 14).unwrap();
        assert_eq!((e.src, e.dst, e.icmp_type, e.mtu), (ROUTER.into(), LIP.into(), 3, Some(1400)));
        assert_eq!((e.inner.src, e.inner.sport, e.inner.dst, e.inner.dport), (LIP.into(), 5001, RIP.into(), 8080));
        assert_eq!((e.inner.proto, e.inner.tcp_flags, e.inner.l4_len), (Proto::Tcp, TcpFlags::empty(), 8));
        let (o, i) = to_client();
        let mut buf = VecBuf::new(&err);
        rewrite_icmp_error(&mut buf, 14, &o, &i).unwrap();
        let out = buf.to_vec();
        let seen = check(&out[14..]);
        assert_eq!((seen.src, seen.dst), (VIP.into(), CIP.into()));
        // The quote is now the client's own packet, as far as it goes.
        assert_eq!(seen.icmp_payload, &client_view[..28]);
        assert!(Ipv4Packet::new_checked_header(&seen.icmp_payload[..]).unwrap().verify_checksum());
    }

    #[test]
    fn whole_quote_gets_a_valid_inner_tcp_checksum() {
        let (sent, client_view) = pair_v4(b"hello");
        let err = PacketBuilder::ipv4(ROUTER, LIP).icmpv4_error(11, 0, &sent).build();
        let e = icmp_error(&err, 0).unwrap();
        assert_eq!(e.inner.tcp_flags, TcpFlags::ACK | TcpFlags::PSH);
        assert_eq!(e.mtu, None);
        let (o, i) = to_client();
        let mut buf = VecBuf::new(&err);
        rewrite_icmp_error(&mut buf, 0, &o, &i).unwrap();
        let seen = check(&buf.to_vec());
        assert_eq!(seen.icmp_payload, client_view);
        // Inner checksums verify on their own too.
        let q = Ipv4Packet::new_checked(&seen.icmp_payload[..]).unwrap();
        assert!(TcpPacket::new_checked(q.payload()).unwrap().verify_checksum(CIP.into(), VIP.into()));
    }

    #[test]
    fn udp_quote_with_and_without_checksum() {
        for no_csum in [false, true] {
            let b = |s, sp, d, dp| {
                let u = PacketBuilder::ipv4(s, d).udp(sp, dp).payload(b"dns?");
                if no_csum { u.no_checksum() } else { u }.build()
            };
            let (sent, client_view) = (b(LIP, 5001, RIP, 53), b(CIP, 40000, VIP, 53));
            let err = PacketBuilder::ipv4(RIP, LIP).icmpv4_error(3, dst_unreachable::PORT, &sent).build();
            let rw = Rewrite { src: CIP.into(), sport: 40000, dst: VIP.into(), dport: 53 };
            let mut buf = VecBuf::new(&err);
            rewrite_icmp_error(&mut buf, 0, &AddrRewrite { src: VIP.into(), dst: CIP.into() }, &rw).unwrap();
            let seen = check(&buf.to_vec());
            assert_eq!(seen.icmp_payload, client_view, "no_csum {no_csum}");
        }
    }

    #[test]
    fn client_side_error_towards_the_server() {
        // A router on the client's path reports a VIP -> CIP packet; it goes on to the
        // real server as a report about RIP -> LIP.
        let sent = PacketBuilder::ipv4(VIP, CIP).tcp(80, 40000).flags(TcpFlags::ACK).payload(&[1; 64]).build();
        let server_view = PacketBuilder::ipv4(RIP, LIP).tcp(8080, 5001).flags(TcpFlags::ACK).payload(&[1; 64]).build();
        let err = PacketBuilder::ipv4(Ipv4Addr::new(198, 51, 100, 1), VIP)
            .icmpv4_error(3, dst_unreachable::HOST, &sent[..48])
            .build();
        let mut buf = VecBuf::new(&err);
        let o = AddrRewrite { src: LIP.into(), dst: RIP.into() };
        let i = Rewrite { src: RIP.into(), sport: 8080, dst: LIP.into(), dport: 5001 };
        rewrite_icmp_error(&mut buf, 0, &o, &i).unwrap();
        let seen = check(&buf.to_vec());
        assert_eq!((seen.src, seen.dst), (LIP.into(), RIP.into()));
        assert_eq!(seen.icmp_payload, &server_view[..48]);
    }

    #[test]
    fn icmpv6_packet_too_big_and_time_exceeded() {
        let (c, v, l, r, router) = (v6("2001:db8::c"), v6("2001:db8::80"), v6("fd00::5"), v6("fd00::9"), v6("fd00::1"));
        let sent = PacketBuilder::ipv6(l, r).tcp(5001, 8080).flags(TcpFlags::ACK).payload(&[9; 1300]).build();
        let client_view = PacketBuilder::ipv6(c, v).tcp(40000, 443).flags(TcpFlags::ACK).payload(&[9; 1300]).build();
        let o = AddrRewrite { src: v.into(), dst: c.into() };
        let i = Rewrite { src: c.into(), sport: 40000, dst: v.into(), dport: 443 };
        // Packet too big quoting 1232 bytes; time exceeded quoting the whole packet.
        for (ty, param, quote) in [(2u8, 1280u32, &sent[..1232]), (3, 0, &sent[..])] {
            let err = PacketBuilder::ipv6(router, l).icmpv6_error(ty, 0, param, quote).build();
            let e = icmp_error(&err, 0).unwrap();
            assert_eq!(e.mtu, (ty == 2).then_some(1280));
            assert_eq!((e.inner.sport, e.inner.dport), (5001, 8080));
            let mut buf = VecBuf::new(&err);
            rewrite_icmp_error(&mut buf, 0, &o, &i).unwrap();
            let seen = check(&buf.to_vec());
            assert_eq!((seen.src, seen.dst), (v.into(), c.into()));
            assert_eq!(seen.icmp_payload, &client_view[..quote.len()]);
        }
        // UDP quoted behind an extension header.
        let u = |s, sp, d, dp| {
            PacketBuilder::ipv6(s, d).ipv6_ext(IpProtocol::DSTOPTS, &[]).udp(sp, dp).payload(b"q").build()
        };
        let (sent, client_view) = (u(l, 5001, r, 53), u(c, 40000, v, 53));
        let err = PacketBuilder::ipv6(r, l).icmpv6_error(1, 4, 0, &sent).build();
        let mut buf = VecBuf::new(&err);
        let i = Rewrite { src: c.into(), sport: 40000, dst: v.into(), dport: 53 };
        rewrite_icmp_error(&mut buf, 0, &o, &i).unwrap();
        assert_eq!(check(&buf.to_vec()).icmp_payload, client_view);
    }

    /// A quoted echo carries one identifier where TCP and UDP carry two ports: only it
    /// is written, and the ICMP checksum follows what was written, even when the
    /// rewrite's other port is not what the quote's tuple says (a request's is 0).
    #[test]
    fn echo_quote_checksum_follows_the_identifier_written() {
        let router = Ipv4Addr::new(198, 51, 100, 9);
        let sent = PacketBuilder::ipv4(LIP, CIP).ttl(1).icmpv4_echo_request(1025, 4).payload(b"trace").build();
        let mine = PacketBuilder::ipv4(RIP, CIP).ttl(1).icmpv4_echo_request(77, 4).payload(b"trace").build();
        let err = PacketBuilder::ipv4(router, LIP).icmpv4_error(11, 0, &sent).build();
        let e = icmp_error(&err, 0).unwrap();
        assert_eq!((e.inner.proto, e.inner.sport, e.inner.dport), (Proto::Icmp, 1025, 0));
        let o = AddrRewrite { src: router.into(), dst: RIP.into() };
        for other in [0, 5353] {
            let i = Rewrite { src: RIP.into(), sport: 77, dst: CIP.into(), dport: other };
            let mut buf = VecBuf::new(&err);
            rewrite_icmp_error(&mut buf, 0, &o, &i).unwrap();
            let want = PacketBuilder::ipv4(router, RIP).icmpv4_error(11, 0, &mine).build();
            assert_eq!(buf.to_vec(), want, "other port {other}");
            check(&buf.to_vec());
        }
    }

    #[test]
    fn refusals_leave_the_packet_alone() {
        let (sent, _) = pair_v4(b"x");
        let (o, i) = to_client();
        let cases: Vec<(Vec<u8>, TranslateError)> = vec![
            (PacketBuilder::ipv4(ROUTER, LIP).icmpv4_echo_request(1, 2).build(), TranslateError::NotIcmpError),
            (PacketBuilder::ipv4(ROUTER, LIP).tcp(1, 2).build(), TranslateError::NotIcmpError),
            (PacketBuilder::ipv4(ROUTER, LIP).icmpv4_error(3, 1, &sent[..27]).build(), TranslateError::Truncated),
            (
                PacketBuilder::ipv4(ROUTER, LIP)
                    .icmpv4_error(3, 1, &PacketBuilder::ipv4(LIP, RIP).icmpv4_error(3, 3, &[0; 28]).build())
                    .build(),
                // (An error about an error: only echo is ICMP a connection has.)
                TranslateError::UnsupportedProtocol(1),
            ),
            (
                PacketBuilder::ipv4(ROUTER, LIP)
                    .icmpv4_error(3, 1, &PacketBuilder::ipv4(LIP, RIP).fragment(8, false).tcp(1, 2).build())
                    .build(),
                TranslateError::Fragment,
            ),
            (
                PacketBuilder::ipv4(ROUTER, LIP).fragment(0, true).icmpv4_error(3, 1, &sent).build(),
                TranslateError::Fragment,
            ),
            (PacketBuilder::ipv6(v6("::1"), v6("::2")).icmpv6_echo_request(1, 1).build(), TranslateError::NotIcmpError),
            (PacketBuilder::ipv6(v6("::1"), v6("::2")).icmpv6_error(1, 0, 0, &sent).build(), TranslateError::Malformed),
        ];
        for (pkt, want) in cases {
            let mut buf = VecBuf::new(&pkt);
            assert_eq!(rewrite_icmp_error(&mut buf, 0, &o, &i), Err(want));
            assert_eq!(buf.to_vec(), pkt);
        }
        // Family mismatch.
        let err = PacketBuilder::ipv4(ROUTER, LIP).icmpv4_error(11, 0, &sent).build();
        let mut buf = VecBuf::new(&err);
        let bad = AddrRewrite { src: v6("::1").into(), dst: CIP.into() };
        assert_eq!(rewrite_icmp_error(&mut buf, 0, &bad, &i), Err(TranslateError::FamilyMismatch));
        assert_eq!(buf.to_vec(), err);
    }
}
