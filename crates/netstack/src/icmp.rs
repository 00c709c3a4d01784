//! ICMP the dataplane answers or originates itself: echo replies for its own
//! addresses ("the VIP pings"), and errors about packets it cannot forward (TTL
//! exceeded, fragmentation needed / packet too big, unreachable).
//!
//! [`echo_reply_in_place`] turns a received echo request around in its own buffer,
//! updating checksums incrementally (RFC 1624): its cost does not depend on the size of
//! the ping. [`build_error_v4`] and [`build_error_v6`] write a new IP packet (no
//! Ethernet header: the caller routes it, then prepends Ethernet) quoting the offending
//! packet, or refuse with [`PacketError::Suppressed`] where the RFCs forbid an error.

use std::net::{Ipv4Addr, Ipv6Addr};

use wire::checksum;
use wire::icmpv4::{self, dst_unreachable as un4, time_exceeded as te4};
use wire::icmpv6::{self, dst_unreachable as un6, time_exceeded as te6};
use wire::ipv4::HEADER_LEN as IPV4_HEADER_LEN;
use wire::ipv6::{walk_ext_headers, HEADER_LEN as IPV6_HEADER_LEN};
use wire::{
    ethernet, Icmpv4Message, Icmpv4Packet, Icmpv6Message, Icmpv6Packet, IpProtocol, IpVersion, Ipv4Packet, Ipv4Repr,
    Ipv6Packet, Ipv6Repr,
};

use crate::error::{PacketError, Result, Suppressed};

/// The TTL / hop limit of the packets this module writes.
pub const TTL: u8 = 64;

/// The longest ICMPv4 error written, IP header included (RFC 1812 4.3.2.3: at most 576
/// bytes; Linux quotes up to 548 bytes of the offending packet likewise).
pub const MAX_ERROR_LEN_V4: usize = 576;

/// The longest ICMPv6 error written, IPv6 header included (RFC 4443 2.4(c): as much of
/// the offending packet as fits in the minimum IPv6 MTU).
pub const MAX_ERROR_LEN_V6: usize = 1280;

/// DSCP of the ICMPv4 errors written: CS6 (internetwork control, as Linux marks them).
const ERROR_DSCP: u8 = 48;

/// The length of the ICMP header before the quoted packet (the same for both families).
const ICMP_HEADER_LEN: usize = icmpv4::HEADER_LEN;
const _: () = assert!(icmpv6::HEADER_LEN == ICMP_HEADER_LEN);

/// Turns an ICMPv4 or ICMPv6 echo request to one of our addresses into the echo
/// reply, in place: IP source and destination swapped, TTL / hop limit [`TTL`], type
/// echo reply, MACs swapped. Checksums are updated incrementally (the ICMPv6
/// pseudo-header sum does not change when source and destination swap), so a request
/// with a bad ICMP checksum gets a reply with a bad checksum, which its sender drops.
///
/// `l3_offset` is where the IP header starts in `frame` (14 untagged, 18 with one VLAN
/// tag); the Ethernet addresses are the first 12 bytes. The caller has checked that the
/// destination is ours ([`crate::AddrTable::owner`]); this function checks the rest.
///
/// Errors (the frame is then unchanged): not IPv4/IPv6, or not ICMP right after the IP
/// header (IPv4 options or IPv6 extension headers are [`wire::Error::Unsupported`]:
/// pass such pings to the kernel twin); a fragment ([`wire::Error::Unsupported`]); not
/// an echo request ([`PacketError::WrongMessage`]); a multicast, broadcast,
/// unspecified or loopback source ([`PacketError::BadSender`]); a multicast or
/// broadcast destination ([`PacketError::Invalid`]); a bad IPv4 header checksum or
/// truncated packet ([`PacketError::Wire`]). Per packet: no allocation, no panic.
pub fn echo_reply_in_place(frame: &mut [u8], l3_offset: usize) -> Result<()> {
    if l3_offset < ethernet::HEADER_LEN {
        return Err(wire::Error::Malformed.into());
    }
    let l3 = frame.get_mut(l3_offset..).ok_or(wire::Error::Truncated)?;
    match IpVersion::of(l3) {
        Some(IpVersion::V4) => echo_v4(l3)?,
        Some(IpVersion::V6) => echo_v6(l3)?,
        None => return Err(PacketError::WrongProtocol),
    }
    if let Some((dst, src)) = frame.get_mut(..12).map(|m| m.split_at_mut(6)) {
        dst.swap_with_slice(src);
    }
    Ok(())
}

fn bad_v4_source(a: Ipv4Addr) -> bool {
    a.is_unspecified() || a.is_loopback() || a.is_multicast() || a.octets()[0] >= 240
}

fn bad_v6_source(a: Ipv6Addr) -> bool {
    a.is_unspecified() || a.is_loopback() || a.is_multicast()
}

fn echo_v4(ip: &mut [u8]) -> Result<()> {
    let mut p = Ipv4Packet::new_checked(ip)?;
    if !p.verify_checksum() {
        return Err(wire::Error::Checksum.into());
    }
    if p.protocol() != IpProtocol::ICMP {
        return Err(PacketError::WrongProtocol);
    }
    if p.header_len() != IPV4_HEADER_LEN || p.is_fragment() {
        return Err(wire::Error::Unsupported.into());
    }
    let (src, dst) = (p.src_addr(), p.dst_addr());
    if bad_v4_source(src) {
        return Err(PacketError::BadSender);
    }
    if dst.is_multicast() || dst.is_broadcast() || dst.is_unspecified() {
        return Err(PacketError::Invalid);
    }
    let code = {
        let icmp = Icmpv4Packet::new_checked(p.payload())?;
        if icmp.msg_type() != Icmpv4Message::ECHO_REQUEST {
            return Err(PacketError::WrongMessage);
        }
        icmp.msg_code()
    };
    // Checked: now change. Swapping the addresses leaves the header sum as it is; the
    // TTL shares a 16-bit word with the protocol.
    let proto = p.protocol().0;
    let old_word = u16::from_be_bytes([p.ttl(), proto]);
    p.set_src_addr(dst);
    p.set_dst_addr(src);
    p.set_ttl(TTL);
    let c = checksum::update16(p.checksum(), old_word, u16::from_be_bytes([TTL, proto]));
    p.set_checksum(c);
    let mut icmp = Icmpv4Packet::new_checked(p.payload_mut())?;
    icmp.set_msg_type(Icmpv4Message::ECHO_REPLY);
    let c = checksum::update16(
        icmp.checksum(),
        u16::from_be_bytes([Icmpv4Message::ECHO_REQUEST.0, code]),
        u16::from_be_bytes([Icmpv4Message::ECHO_REPLY.0, code]),
    );
    icmp.set_checksum(c);
    Ok(())
}

fn echo_v6(ip: &mut [u8]) -> Result<()> {
    let mut p = Ipv6Packet::new_checked(ip)?;
    if p.next_header() != IpProtocol::ICMPV6 {
        return if p.next_header().is_ipv6_extension() {
            Err(wire::Error::Unsupported.into())
        } else {
            Err(PacketError::WrongProtocol)
        };
    }
    let (src, dst) = (p.src_addr(), p.dst_addr());
    if bad_v6_source(src) {
        return Err(PacketError::BadSender);
    }
    if dst.is_multicast() || dst.is_unspecified() {
        return Err(PacketError::Invalid);
    }
    let code = {
        let icmp = Icmpv6Packet::new_checked(p.payload())?;
        if icmp.msg_type() != Icmpv6Message::ECHO_REQUEST {
            return Err(PacketError::WrongMessage);
        }
        icmp.msg_code()
    };
    p.set_src_addr(dst);
    p.set_dst_addr(src);
    p.set_hop_limit(TTL);
    let mut icmp = Icmpv6Packet::new_checked(p.payload_mut())?;
    icmp.set_msg_type(Icmpv6Message::ECHO_REPLY);
    let c = checksum::update16(
        icmp.checksum(),
        u16::from_be_bytes([Icmpv6Message::ECHO_REQUEST.0, code]),
        u16::from_be_bytes([Icmpv6Message::ECHO_REPLY.0, code]),
    );
    icmp.set_checksum(c);
    Ok(())
}

/// An ICMPv4 error the dataplane sends about a packet it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4ErrorKind {
    /// Destination unreachable, network (no route).
    NetUnreachable,
    /// Destination unreachable, host (the neighbour did not resolve).
    HostUnreachable,
    /// Destination unreachable, protocol.
    ProtocolUnreachable,
    /// Destination unreachable, port (no virtual service on that port).
    PortUnreachable,
    /// Destination unreachable, fragmentation needed and DF set, with the next-hop MTU
    /// (RFC 1191): path MTU discovery depends on it.
    FragNeeded {
        /// The MTU of the link the packet did not fit.
        mtu: u16,
    },
    /// Destination unreachable, communication administratively prohibited.
    AdminProhibited,
    /// Time exceeded: the TTL reached zero in transit.
    TimeExceeded,
    /// Time exceeded: fragment reassembly timed out.
    ReassemblyTimeExceeded,
    /// Parameter problem at byte `pointer` of the offending packet.
    ParamProblem {
        /// Offset of the bad byte.
        pointer: u8,
    },
}

impl Icmpv4ErrorKind {
    /// Type, code and the 4 bytes after the checksum.
    fn encode(self) -> (Icmpv4Message, u8, u32) {
        use Icmpv4ErrorKind::*;
        let un = Icmpv4Message::DST_UNREACHABLE;
        match self {
            NetUnreachable => (un, un4::NET, 0),
            HostUnreachable => (un, un4::HOST, 0),
            ProtocolUnreachable => (un, un4::PROTOCOL, 0),
            PortUnreachable => (un, un4::PORT, 0),
            FragNeeded { mtu } => (un, un4::FRAG_NEEDED, mtu as u32),
            AdminProhibited => (un, un4::ADMIN_PROHIBITED, 0),
            TimeExceeded => (Icmpv4Message::TIME_EXCEEDED, te4::TTL, 0),
            ReassemblyTimeExceeded => (Icmpv4Message::TIME_EXCEEDED, te4::REASSEMBLY, 0),
            ParamProblem { pointer } => (Icmpv4Message::PARAM_PROBLEM, 0, (pointer as u32) << 24),
        }
    }
}

/// An ICMPv6 error the dataplane sends about a packet it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv6ErrorKind {
    /// Destination unreachable, no route.
    NoRoute,
    /// Destination unreachable, administratively prohibited.
    AdminProhibited,
    /// Destination unreachable, address unreachable (the neighbour did not resolve).
    AddrUnreachable,
    /// Destination unreachable, port unreachable.
    PortUnreachable,
    /// Packet too big, with the MTU of the next link: IPv6 routers never fragment, so
    /// path MTU discovery depends on it.
    PacketTooBig {
        /// The MTU of the link the packet did not fit.
        mtu: u32,
    },
    /// Time exceeded: the hop limit reached zero in transit.
    TimeExceeded,
    /// Time exceeded: fragment reassembly timed out.
    ReassemblyTimeExceeded,
    /// Parameter problem (`code` 0 erroneous header field, 1 unrecognised next header,
    /// 2 unrecognised option) at byte `pointer` of the offending packet.
    ParamProblem {
        /// The parameter problem code.
        code: u8,
        /// Offset of the bad byte.
        pointer: u32,
    },
}

impl Icmpv6ErrorKind {
    /// Type, code and the 32-bit parameter.
    fn encode(self) -> (Icmpv6Message, u8, u32) {
        use Icmpv6ErrorKind::*;
        let un = Icmpv6Message::DST_UNREACHABLE;
        match self {
            NoRoute => (un, un6::NO_ROUTE, 0),
            AdminProhibited => (un, un6::ADMIN_PROHIBITED, 0),
            AddrUnreachable => (un, un6::ADDR_UNREACHABLE, 0),
            PortUnreachable => (un, un6::PORT, 0),
            PacketTooBig { mtu } => (Icmpv6Message::PKT_TOO_BIG, 0, mtu),
            TimeExceeded => (Icmpv6Message::TIME_EXCEEDED, te6::HOP_LIMIT, 0),
            ReassemblyTimeExceeded => (Icmpv6Message::TIME_EXCEEDED, te6::REASSEMBLY, 0),
            ParamProblem { code, pointer } => (Icmpv6Message::PARAM_PROBLEM, code, pointer),
        }
    }

    /// RFC 4443 2.4(e.3): the errors allowed about a packet sent to a multicast
    /// address (so that path MTU discovery works for multicast).
    fn allowed_for_multicast(self) -> bool {
        matches!(self, Icmpv6ErrorKind::PacketTooBig { .. } | Icmpv6ErrorKind::ParamProblem { code: 2, .. })
    }
}

/// How many bytes of an `avail`-byte offending packet to quote into `out`, given the
/// total cap `max_len`, the headers `headers` written before the quote, and the least
/// worth sending, `min_quote`.
fn quote_len(out: &[u8], max_len: usize, headers: usize, avail: usize, min_quote: usize) -> Result<usize> {
    let room = out.len().min(max_len).saturating_sub(headers);
    let quote = avail.min(room);
    let least = avail.min(min_quote);
    if quote < least {
        return Err(PacketError::BufferTooSmall { need: headers + least, have: out.len() });
    }
    Ok(quote)
}

/// Writes an ICMPv4 error of `kind` from our address `src` about `offending` (the
/// received IP packet, from its IP header on) into `out` and returns its length. The
/// result is an IPv4 packet (TTL [`TTL`], DSCP CS6, DF set) to the offending packet's
/// source, quoting as much of the offending packet as fits in [`MAX_ERROR_LEN_V4`]
/// bytes and in `out` (at least its IP header and 8 bytes, RFC 792), without its
/// Ethernet padding. No Ethernet header: the caller routes the packet and prepends one.
///
/// [`PacketError::Suppressed`] where RFC 1122 3.2.2 forbids an error: the offending
/// packet is an ICMP error (or of an unknown ICMP type, or too short to tell), a
/// non-first fragment, from a
/// source that is not one host (zero, loopback, multicast, broadcast, class E), or to a
/// multicast or broadcast address. The caller must not ask either about a packet that
/// arrived as a link-layer broadcast or multicast. Other errors: the offending IP
/// header is unreadable ([`PacketError::Wire`]), `out` is too small. Per packet: no
/// allocation, no panic.
pub fn build_error_v4(out: &mut [u8], src: Ipv4Addr, offending: &[u8], kind: Icmpv4ErrorKind) -> Result<usize> {
    let p = Ipv4Packet::new_checked_header(offending)?;
    if p.frag_offset() != 0 {
        return Err(PacketError::Suppressed(Suppressed::NonFirstFragment));
    }
    let (osrc, odst) = (p.src_addr(), p.dst_addr());
    if bad_v4_source(osrc) {
        return Err(PacketError::Suppressed(Suppressed::SourceNotHost));
    }
    if odst.is_multicast() || odst.is_broadcast() {
        return Err(PacketError::Suppressed(Suppressed::MulticastDestination));
    }
    if p.protocol() == IpProtocol::ICMP {
        // Linux's rule: errors and types it does not know (above 18) are not answered.
        match p.payload().first() {
            Some(&t) if !Icmpv4Message(t).is_error() && t <= 18 => {}
            _ => return Err(PacketError::Suppressed(Suppressed::IcmpError)),
        }
    }
    let avail = offending.len().min(p.total_len() as usize);
    let headers = IPV4_HEADER_LEN + ICMP_HEADER_LEN;
    let quote = quote_len(out, MAX_ERROR_LEN_V4, headers, avail, p.header_len() + 8)?;
    let len = headers + quote;
    let pkt = out.get_mut(..len).ok_or(wire::Error::Truncated)?;
    let (ip_hdr, icmp_buf) = pkt.split_at_mut(IPV4_HEADER_LEN);
    let repr = Ipv4Repr {
        src_addr: src,
        dst_addr: osrc,
        protocol: IpProtocol::ICMP,
        payload_len: ICMP_HEADER_LEN + quote,
        ttl: TTL,
        ident: 0,
        dont_frag: true,
    };
    let mut ip = Ipv4Packet::new_unchecked(ip_hdr);
    repr.emit(&mut ip);
    ip.set_dscp(ERROR_DSCP);
    ip.fill_checksum();
    let (ty, code, rest) = kind.encode();
    let mut icmp = Icmpv4Packet::new_checked(icmp_buf)?;
    icmp.set_msg_type(ty);
    icmp.set_msg_code(code);
    icmp.set_rest_of_header(rest);
    icmp.data_mut().copy_from_slice(offending.get(..quote).ok_or(wire::Error::Truncated)?);
    icmp.fill_checksum();
    Ok(len)
}

/// Writes an ICMPv6 error of `kind` from our address `src` about `offending` (the
/// received IPv6 packet, from its header on) into `out` and returns its length. The
/// result is an IPv6 packet (hop limit [`TTL`]) to the offending packet's source,
/// quoting as much of the offending packet as fits in [`MAX_ERROR_LEN_V6`] bytes and in
/// `out` (at least 48 bytes), without its Ethernet padding. No Ethernet header: the
/// caller routes the packet and prepends one.
///
/// [`PacketError::Suppressed`] where RFC 4443 2.4(e) forbids an error: the offending
/// packet is an ICMPv6 error or redirect, a non-first fragment, from a source that is
/// not one host (unspecified, loopback, multicast), or to a multicast address (except
/// packet too big and parameter problem code 2). Other errors: the offending header or
/// extension-header chain is unreadable ([`PacketError::Wire`]), `out` is too small.
/// Per packet: no allocation, no panic.
pub fn build_error_v6(out: &mut [u8], src: Ipv6Addr, offending: &[u8], kind: Icmpv6ErrorKind) -> Result<usize> {
    let p = Ipv6Packet::new_checked_header(offending)?;
    let (osrc, odst) = (p.src_addr(), p.dst_addr());
    if bad_v6_source(osrc) {
        return Err(PacketError::Suppressed(Suppressed::SourceNotHost));
    }
    if odst.is_multicast() && !kind.allowed_for_multicast() {
        return Err(PacketError::Suppressed(Suppressed::MulticastDestination));
    }
    let ul = walk_ext_headers(p.next_header(), p.payload(), IPV6_HEADER_LEN)?;
    if ul.fragment.is_some_and(|f| f.offset != 0) {
        return Err(PacketError::Suppressed(Suppressed::NonFirstFragment));
    }
    if ul.protocol == IpProtocol::ICMPV6 {
        match offending.get(ul.offset) {
            Some(&t) if !Icmpv6Message(t).is_error() && Icmpv6Message(t) != Icmpv6Message::REDIRECT => {}
            _ => return Err(PacketError::Suppressed(Suppressed::IcmpError)),
        }
    }
    let avail = offending.len().min(IPV6_HEADER_LEN + p.payload_len() as usize);
    let headers = IPV6_HEADER_LEN + ICMP_HEADER_LEN;
    let quote = quote_len(out, MAX_ERROR_LEN_V6, headers, avail, IPV6_HEADER_LEN + 8)?;
    let len = headers + quote;
    let pkt = out.get_mut(..len).ok_or(wire::Error::Truncated)?;
    let (ip_hdr, icmp_buf) = pkt.split_at_mut(IPV6_HEADER_LEN);
    let repr = Ipv6Repr {
        src_addr: src,
        dst_addr: osrc,
        next_header: IpProtocol::ICMPV6,
        payload_len: ICMP_HEADER_LEN + quote,
        hop_limit: TTL,
    };
    repr.emit(&mut Ipv6Packet::new_unchecked(ip_hdr));
    let (ty, code, param) = kind.encode();
    let mut icmp = Icmpv6Packet::new_checked(icmp_buf)?;
    icmp.set_msg_type(ty);
    icmp.set_msg_code(code);
    icmp.set_param(param);
    icmp.data_mut().copy_from_slice(offending.get(..quote).ok_or(wire::Error::Truncated)?);
    icmp.fill_checksum(src, osrc);
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{parse_icmpv4, parse_icmpv6};
    use wire::builder::PacketBuilder;
    use wire::{EthernetAddress, TcpFlags};

    const CLIENT_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc]);

    fn v4(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// `ping -c1 -s 5 192.168.10.100` from 10.1.1.1, as captured: Ethernet, IPv4 (TTL
    /// 63, id 0x1c46, DF), ICMP echo request id 0x0d0c seq 1, 5 data bytes, Ethernet
    /// padding to 60 bytes. Checksums computed by hand.
    #[rustfmt::skip]
    const PING: [u8; 60] = [
        0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x00,
        0x45, 0x00, 0x00, 0x21, 0x1c, 0x46, 0x40, 0x00, 0x3f, 0x01, 0x00, 0x00,
        10, 1, 1, 1, 192, 168, 10, 100,
        0x08, 0x00, 0x00, 0x00, 0x0d, 0x0c, 0x00, 0x01, b'h', b'e', b'l', b'l', b'o',
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    fn ping() -> [u8; 60] {
        let mut f = PING;
        let ip = &mut f[14..34];
        let c = checksum::checksum(ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        let c = checksum::checksum(&f[34..47]);
        f[36..38].copy_from_slice(&c.to_be_bytes());
        f
    }

    #[test]
    fn echo_reply_v4_literal() {
        let mut f = ping();
        echo_reply_in_place(&mut f, 14).unwrap();
        assert_eq!((&f[0..6], &f[6..12]), (&CLIENT_MAC.0[..], &OUR_MAC.0[..]));
        let (eth, ip, icmp) = parse_icmpv4(&f, true);
        assert_eq!((eth.unwrap().destination, ip.time_to_live), (CLIENT_MAC.0, TTL));
        assert_eq!((ip.source, ip.destination), ([192, 168, 10, 100], [10, 1, 1, 1]));
        assert_eq!((ip.identification, ip.dont_fragment), (0x1c46, true));
        assert_eq!((icmp.type_u8(), icmp.code_u8(), icmp.bytes5to8()), (0, 0, [0x0d, 0x0c, 0, 1]));
        assert_eq!(icmp.payload(), b"hello");
        assert_eq!(&f[47..], &[0u8; 13], "padding untouched");
        // An echo reply is not answered again.
        assert_eq!(echo_reply_in_place(&mut f, 14), Err(PacketError::WrongMessage));
    }

    #[test]
    fn echo_reply_v4_builder_vlan_and_big() {
        let payload: Vec<u8> = (0..1400).map(|i| i as u8).collect();
        let mut f = PacketBuilder::eth(CLIENT_MAC, OUR_MAC)
            .vlan(42)
            .ipv4(v4("10.1.1.1"), v4("192.168.10.100"))
            .ttl(1)
            .icmpv4_echo_request(7, 9)
            .payload(&payload)
            .build();
        echo_reply_in_place(&mut f, 18).unwrap();
        assert_eq!(&f[12..14], &[0x81, 0x00], "the tag stays");
        let (_, ip, icmp) = parse_icmpv4(&f, true);
        assert_eq!((ip.source, ip.destination, ip.time_to_live), ([192, 168, 10, 100], [10, 1, 1, 1], 64));
        assert_eq!((icmp.type_u8(), icmp.payload()), (0, &payload[..]));
    }

    #[test]
    fn echo_reply_v6() {
        let mut f = PacketBuilder::eth(CLIENT_MAC, OUR_MAC)
            .ipv6(v6("2001:db8:1::1"), v6("2001:db8::100"))
            .hop_limit(60)
            .icmpv6_echo_request(0x1234, 3)
            .payload(b"abcdefgh")
            .build();
        echo_reply_in_place(&mut f, 14).unwrap();
        let (eth, ip, icmp) = parse_icmpv6(&f, true);
        assert_eq!((eth.unwrap().source, ip.hop_limit), (OUR_MAC.0, 64));
        assert_eq!((ip.source, ip.destination), (v6("2001:db8::100").octets(), v6("2001:db8:1::1").octets()));
        assert_eq!((icmp.type_u8(), icmp.bytes5to8(), icmp.payload()), (129, [0x12, 0x34, 0, 3], &b"abcdefgh"[..]));
        assert_eq!(echo_reply_in_place(&mut f, 14), Err(PacketError::WrongMessage));
    }

    #[test]
    fn echo_refusals_leave_the_frame_alone() {
        let cases: Vec<(Vec<u8>, PacketError)> = vec![
            (
                PacketBuilder::eth(CLIENT_MAC, OUR_MAC).ipv4(v4("10.1.1.1"), v4("10.0.0.5")).udp(1, 2).build(),
                PacketError::WrongProtocol,
            ),
            (
                PacketBuilder::eth(CLIENT_MAC, OUR_MAC)
                    .ipv4(v4("224.0.0.1"), v4("10.0.0.5"))
                    .icmpv4_echo_request(1, 1)
                    .build(),
                PacketError::BadSender,
            ),
            (
                PacketBuilder::eth(CLIENT_MAC, OUR_MAC)
                    .ipv4(v4("10.1.1.1"), v4("255.255.255.255"))
                    .icmpv4_echo_request(1, 1)
                    .build(),
                PacketError::Invalid,
            ),
            (
                PacketBuilder::eth(CLIENT_MAC, OUR_MAC)
                    .ipv4(v4("10.1.1.1"), v4("10.0.0.5"))
                    .fragment(0, true)
                    .icmpv4_echo_request(1, 1)
                    .build(),
                PacketError::Wire(wire::Error::Unsupported),
            ),
            (
                PacketBuilder::eth(CLIENT_MAC, OUR_MAC)
                    .ipv4(v4("10.1.1.1"), v4("10.0.0.5"))
                    .ipv4_options(&[7, 7, 4, 0, 0, 0, 0, 0])
                    .icmpv4_echo_request(1, 1)
                    .build(),
                PacketError::Wire(wire::Error::Unsupported),
            ),
            (
                PacketBuilder::eth(CLIENT_MAC, OUR_MAC)
                    .ipv6(v6("::"), v6("2001:db8::5"))
                    .icmpv6_echo_request(1, 1)
                    .build(),
                PacketError::BadSender,
            ),
            (
                PacketBuilder::eth(CLIENT_MAC, OUR_MAC)
                    .ipv6(v6("2001:db8::1"), v6("2001:db8::5"))
                    .ipv6_ext(IpProtocol::DSTOPTS, &[0, 0, 1, 4, 0, 0, 0, 0])
                    .icmpv6_echo_request(1, 1)
                    .build(),
                PacketError::Wire(wire::Error::Unsupported),
            ),
        ];
        for (i, (frame, err)) in cases.into_iter().enumerate() {
            let mut f = frame.clone();
            assert_eq!(echo_reply_in_place(&mut f, 14), Err(err), "case {i}");
            assert_eq!(f, frame, "case {i}");
        }
        let mut f = ping();
        f[14 + 10] ^= 0xff;
        assert_eq!(echo_reply_in_place(&mut f, 14), Err(PacketError::Wire(wire::Error::Checksum)));
        let mut f = ping();
        assert_eq!(echo_reply_in_place(&mut f, 0), Err(PacketError::Wire(wire::Error::Malformed)));
        assert_eq!(echo_reply_in_place(&mut f, 61), Err(PacketError::Wire(wire::Error::Truncated)));
        assert_eq!(echo_reply_in_place(&mut f[..40], 14), Err(PacketError::Wire(wire::Error::Truncated)));
        assert_eq!(echo_reply_in_place(&mut f, 15), Err(PacketError::WrongProtocol));
    }

    /// A TCP SYN from a client, as it would be forwarded (offending packet).
    fn syn_v4(ttl: u8, payload: &[u8]) -> Vec<u8> {
        PacketBuilder::ipv4(v4("10.1.1.1"), v4("10.2.2.2"))
            .ttl(ttl)
            .tcp(40000, 80)
            .flags(TcpFlags::SYN)
            .payload(payload)
            .build()
    }

    #[test]
    fn time_exceeded_v4_quotes_header_and_data() {
        let offending = syn_v4(1, b"0123456789");
        let mut out = [0u8; 1500];
        let n = build_error_v4(&mut out, v4("10.0.0.5"), &offending, Icmpv4ErrorKind::TimeExceeded).unwrap();
        assert_eq!(n, 28 + offending.len());
        let (_, ip, icmp) = parse_icmpv4(&out[..n], false);
        assert_eq!((ip.source, ip.destination, ip.time_to_live), ([10, 0, 0, 5], [10, 1, 1, 1], 64));
        assert_eq!(ip.protocol, etherparse::IpNumber::ICMP);
        assert_eq!((icmp.type_u8(), icmp.code_u8()), (11, 0));
        assert_eq!(icmp.payload(), &offending[..]);
        assert_eq!(out[1], 0xc0, "DSCP CS6");
    }

    #[test]
    fn frag_needed_v4_caps_at_576_and_drops_padding() {
        let mut offending = syn_v4(64, &[0xab; 1400]);
        offending.extend_from_slice(&[0xee; 6]); // padding past total_len
        let mut out = [0u8; 2000];
        let n =
            build_error_v4(&mut out, v4("10.0.0.5"), &offending, Icmpv4ErrorKind::FragNeeded { mtu: 1400 }).unwrap();
        assert_eq!(n, MAX_ERROR_LEN_V4);
        let (_, _, icmp) = parse_icmpv4(&out[..n], false);
        assert_eq!((icmp.type_u8(), icmp.code_u8(), icmp.bytes5to8()), (3, 4, [0, 0, 0x05, 0x78]));
        assert_eq!(icmp.payload(), &offending[..548]);

        // A small packet with padding: the padding is not quoted.
        let mut small = syn_v4(64, b"");
        let real = small.len();
        small.extend_from_slice(&[0xee; 6]);
        let n = build_error_v4(&mut out, v4("10.0.0.5"), &small, Icmpv4ErrorKind::PortUnreachable).unwrap();
        assert_eq!(n, 28 + real);
        let (_, _, icmp) = parse_icmpv4(&out[..n], false);
        assert_eq!((icmp.type_u8(), icmp.code_u8()), (3, 3));

        // A small output buffer still gets header + 8 bytes, or an error.
        let n = build_error_v4(&mut out[..56], v4("10.0.0.5"), &offending, Icmpv4ErrorKind::HostUnreachable).unwrap();
        assert_eq!(n, 56);
        parse_icmpv4(&out[..n], false);
        assert_eq!(
            build_error_v4(&mut out[..55], v4("10.0.0.5"), &offending, Icmpv4ErrorKind::HostUnreachable),
            Err(PacketError::BufferTooSmall { need: 56, have: 55 })
        );
    }

    #[test]
    fn param_problem_v4_pointer() {
        let offending = syn_v4(64, b"");
        let mut out = [0u8; 600];
        let n =
            build_error_v4(&mut out, v4("10.0.0.5"), &offending, Icmpv4ErrorKind::ParamProblem { pointer: 9 }).unwrap();
        let (_, _, icmp) = parse_icmpv4(&out[..n], false);
        assert_eq!((icmp.type_u8(), icmp.bytes5to8()), (12, [9, 0, 0, 0]));
    }

    #[test]
    fn v4_suppressions() {
        let mut out = [0u8; 600];
        let k = Icmpv4ErrorKind::TimeExceeded;
        let s = |e| Err(PacketError::Suppressed(e));
        let src = v4("10.0.0.5");
        // An ICMP error about an ICMP error.
        let inner = syn_v4(1, b"");
        let err = PacketBuilder::ipv4(v4("10.1.1.1"), v4("10.2.2.2")).icmpv4_error(3, 3, &inner).build();
        assert_eq!(build_error_v4(&mut out, src, &err, k), s(Suppressed::IcmpError));
        // But an echo request is fine.
        let echo = PacketBuilder::ipv4(v4("10.1.1.1"), v4("10.2.2.2")).icmpv4_echo_request(1, 1).build();
        assert!(build_error_v4(&mut out, src, &echo, k).is_ok());
        // A non-first fragment; the first one is fine.
        let frag = PacketBuilder::ipv4(v4("10.1.1.1"), v4("10.2.2.2")).fragment(1480, false).udp(1, 2).build();
        assert_eq!(build_error_v4(&mut out, src, &frag, k), s(Suppressed::NonFirstFragment));
        let first = PacketBuilder::ipv4(v4("10.1.1.1"), v4("10.2.2.2")).fragment(0, true).udp(1, 2).build();
        assert!(build_error_v4(&mut out, src, &first, k).is_ok());
        // Sources that are not one host; multicast and broadcast destinations.
        for bad in ["0.0.0.0", "127.0.0.1", "224.0.0.5", "255.255.255.255", "240.0.0.1"] {
            let p = PacketBuilder::ipv4(v4(bad), v4("10.2.2.2")).udp(1, 2).build();
            assert_eq!(build_error_v4(&mut out, src, &p, k), s(Suppressed::SourceNotHost), "{bad}");
        }
        for bad in ["224.0.0.5", "255.255.255.255"] {
            let p = PacketBuilder::ipv4(v4("10.1.1.1"), v4(bad)).udp(1, 2).build();
            assert_eq!(build_error_v4(&mut out, src, &p, k), s(Suppressed::MulticastDestination), "{bad}");
        }
        // Garbage is reported, not suppressed.
        assert_eq!(build_error_v4(&mut out, src, &[0x45, 0, 0], k), Err(PacketError::Wire(wire::Error::Truncated)));
        assert_eq!(build_error_v4(&mut out, src, &[0x65; 40], k), Err(PacketError::Wire(wire::Error::Malformed)));
    }

    fn udp_v6(dst: &str, payload: &[u8]) -> Vec<u8> {
        PacketBuilder::ipv6(v6("2001:db8:1::1"), v6(dst)).hop_limit(1).udp(5353, 53).payload(payload).build()
    }

    #[test]
    fn v6_errors_quote_up_to_1280() {
        let src = v6("2001:db8::5");
        let mut out = [0u8; 2000];
        let small = udp_v6("2001:db8:2::2", b"query");
        let n = build_error_v6(&mut out, src, &small, Icmpv6ErrorKind::TimeExceeded).unwrap();
        assert_eq!(n, 48 + small.len());
        let (_, ip, icmp) = parse_icmpv6(&out[..n], false);
        assert_eq!((ip.source, ip.destination, ip.hop_limit), (src.octets(), v6("2001:db8:1::1").octets(), 64));
        assert_eq!((icmp.type_u8(), icmp.code_u8(), icmp.payload()), (3, 0, &small[..]));

        let big = udp_v6("2001:db8:2::2", &[0x5a; 1452]);
        let n = build_error_v6(&mut out, src, &big, Icmpv6ErrorKind::PacketTooBig { mtu: 1400 }).unwrap();
        assert_eq!(n, MAX_ERROR_LEN_V6);
        let (_, _, icmp) = parse_icmpv6(&out[..n], false);
        assert_eq!((icmp.type_u8(), icmp.bytes5to8()), (2, 1400u32.to_be_bytes()));
        assert_eq!(icmp.payload(), &big[..1232]);

        let n = build_error_v6(&mut out, src, &small, Icmpv6ErrorKind::PortUnreachable).unwrap();
        let (_, _, icmp) = parse_icmpv6(&out[..n], false);
        assert_eq!((icmp.type_u8(), icmp.code_u8()), (1, 4));
        let n = build_error_v6(&mut out, src, &small, Icmpv6ErrorKind::ParamProblem { code: 1, pointer: 6 }).unwrap();
        let (_, _, icmp) = parse_icmpv6(&out[..n], false);
        assert_eq!((icmp.type_u8(), icmp.code_u8(), icmp.bytes5to8()), (4, 1, [0, 0, 0, 6]));
        assert!(matches!(
            build_error_v6(&mut out[..95], src, &big, Icmpv6ErrorKind::NoRoute),
            Err(PacketError::BufferTooSmall { need: 96, have: 95 })
        ));
    }

    #[test]
    fn v6_suppressions() {
        let src = v6("2001:db8::5");
        let mut out = [0u8; 1500];
        let k = Icmpv6ErrorKind::TimeExceeded;
        let s = |e| Err(PacketError::Suppressed(e));
        // Errors about errors and redirects; echo requests are fine.
        let inner = udp_v6("2001:db8:2::2", b"");
        let err = PacketBuilder::ipv6(v6("2001:db8:1::1"), v6("2001:db8:2::2")).icmpv6_error(1, 4, 0, &inner).build();
        assert_eq!(build_error_v6(&mut out, src, &err, k), s(Suppressed::IcmpError));
        let redirect =
            PacketBuilder::ipv6(v6("fe80::1"), v6("2001:db8:2::2")).icmpv6_error(137, 0, 0, &[0; 32]).build();
        assert_eq!(build_error_v6(&mut out, src, &redirect, k), s(Suppressed::IcmpError));
        let echo = PacketBuilder::ipv6(v6("2001:db8:1::1"), v6("2001:db8:2::2")).icmpv6_echo_request(1, 1).build();
        assert!(build_error_v6(&mut out, src, &echo, k).is_ok());
        // An ICMPv6 error behind an extension header is still an error.
        let hidden = PacketBuilder::ipv6(v6("2001:db8:1::1"), v6("2001:db8:2::2"))
            .ipv6_ext(IpProtocol::DSTOPTS, &[0, 0, 1, 4, 0, 0, 0, 0])
            .icmpv6_error(3, 0, 0, &inner)
            .build();
        assert_eq!(build_error_v6(&mut out, src, &hidden, k), s(Suppressed::IcmpError));
        // Fragments: the first is fine, later ones are not.
        let later = PacketBuilder::ipv6(v6("2001:db8:1::1"), v6("2001:db8:2::2"))
            .ipv6_fragment(1448, false, 7)
            .udp(1, 2)
            .build();
        assert_eq!(build_error_v6(&mut out, src, &later, k), s(Suppressed::NonFirstFragment));
        let first =
            PacketBuilder::ipv6(v6("2001:db8:1::1"), v6("2001:db8:2::2")).ipv6_fragment(0, true, 7).udp(1, 2).build();
        assert!(build_error_v6(&mut out, src, &first, k).is_ok());
        // Sources; multicast destinations except packet too big.
        for bad in ["::", "::1", "ff02::1"] {
            let p = PacketBuilder::ipv6(v6(bad), v6("2001:db8:2::2")).udp(1, 2).build();
            assert_eq!(build_error_v6(&mut out, src, &p, k), s(Suppressed::SourceNotHost), "{bad}");
        }
        let mc = udp_v6("ff0e::1", &[0; 100]);
        assert_eq!(build_error_v6(&mut out, src, &mc, k), s(Suppressed::MulticastDestination));
        assert!(build_error_v6(&mut out, src, &mc, Icmpv6ErrorKind::PacketTooBig { mtu: 1280 }).is_ok());
        assert!(build_error_v6(&mut out, src, &mc, Icmpv6ErrorKind::ParamProblem { code: 2, pointer: 42 }).is_ok());
        // Garbage is reported.
        let mut bad_chain = udp_v6("2001:db8:2::2", b"");
        bad_chain[6] = 0; // hop-by-hop header that is really a UDP header, longer than the packet
        bad_chain[41] = 200;
        assert_eq!(build_error_v6(&mut out, src, &bad_chain, k), Err(PacketError::Wire(wire::Error::Truncated)));
        assert_eq!(build_error_v6(&mut out, src, &[0x60; 39], k), Err(PacketError::Wire(wire::Error::Truncated)));
    }
}
