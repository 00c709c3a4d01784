//! FullNAT rewriting of TCP and UDP packets (and of ICMP echo, for SNAT) over IPv4 and
//! IPv6.
//!
//! [`tuple()`] reads what the connection table needs (protocol, addresses, ports, TCP
//! flags, where the transport header is) and refuses what FullNAT cannot translate:
//! fragments (a distinct error, so the caller can count or reassemble them), other
//! protocols and ICMP messages other than echo, malformed packets. [`rewrite`] then
//! replaces both addresses and both ports in place (an echo's identifier stands for
//! its ports, see [`Tuple`]).
//!
//! Checksums are only ever updated incrementally (RFC 1624): the IPv4 header checksum
//! for the addresses, the TCP/UDP checksum for the pseudo-header addresses and the
//! ports. The payload is never read, so the cost does not depend on the packet size, and
//! a checksum that was wrong on arrival stays wrong (the end host still detects the
//! corruption). Checksums are not verified here. A UDP/IPv4 checksum of 0 ("none")
//! stays 0; a UDP checksum that comes out as 0 is sent as 0xffff. The TTL / hop limit
//! is not decremented here: routing does that.

use std::net::IpAddr;

use thiserror::Error;
use wire::checksum::{self, Delta};
use wire::{IpVersion, Ipv4Packet, Ipv6Packet, TcpFlags, TcpPacket, UdpPacket};

use crate::buf::{NoRoom, PacketBuf};
use crate::types::Proto;

/// Why a packet cannot be translated. The packet is left untouched in every case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum TranslateError {
    /// A header is cut short.
    #[error("truncated packet")]
    Truncated,
    /// A header holds impossible values (bad version, lengths, extension headers).
    #[error("malformed packet")]
    Malformed,
    /// The packet is an IP fragment; FullNAT needs the transport header of every
    /// packet.
    #[error("IP fragment")]
    Fragment,
    /// The transport protocol is not TCP or UDP (the number is given).
    #[error("unsupported IP protocol {0}")]
    UnsupportedProtocol(u8),
    /// The new addresses are not of the packet's address family.
    #[error("address family mismatch")]
    FamilyMismatch,
    /// The TCP header has no space left for the option (60 bytes at most).
    #[error("no TCP option space left")]
    NoOptionSpace,
    /// The packet would exceed the IP length limit (65535).
    #[error("packet too long")]
    TooLong,
    /// The buffer has no headroom or tailroom for the bytes to insert.
    #[error("no room in the packet buffer")]
    NoRoom,
    /// The packet is not an ICMP error message that quotes a TCP/UDP packet.
    #[error("not a translatable ICMP error")]
    NotIcmpError,
    /// A UDP/IPv4 datagram without a checksum, which IPv6 requires (NAT64).
    #[error("UDP datagram without a checksum")]
    NoChecksum,
}

impl From<wire::Error> for TranslateError {
    fn from(e: wire::Error) -> Self {
        match e {
            wire::Error::Truncated => TranslateError::Truncated,
            _ => TranslateError::Malformed,
        }
    }
}

impl From<NoRoom> for TranslateError {
    fn from(_: NoRoom) -> Self {
        TranslateError::NoRoom
    }
}

/// The new addresses and ports of a packet: what FullNAT writes (e.g. LIP:lport ->
/// RIP:rport on the way in, VIP:vport -> CIP:cport on the way out).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Rewrite {
    /// New source address.
    pub src: IpAddr,
    /// New source port.
    pub sport: u16,
    /// New destination address.
    pub dst: IpAddr,
    /// New destination port.
    pub dport: u16,
}

/// What [`tuple()`] reads from a TCP or UDP packet, or an ICMP echo message.
///
/// An echo's identifier stands for its ports, so that a reply's key is its request's
/// turned round, as a TCP or UDP reply's is: a request reads as `sport` = identifier,
/// `dport` = 0, with the flags of a SYN (it opens a flow); a reply as `sport` = 0,
/// `dport` = identifier, without flags. Rewriting a request writes the new `sport`
/// into its identifier, a reply the new `dport`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Tuple {
    /// TCP, UDP or ICMP echo.
    pub proto: Proto,
    /// Source address.
    pub src: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination address.
    pub dst: IpAddr,
    /// Destination port.
    pub dport: u16,
    /// The TCP flags (empty for UDP; SYN for an echo request, see above).
    pub tcp_flags: TcpFlags,
    /// Offset of the transport header from the start of the data.
    pub l4: usize,
    /// Length of the transport segment (header and payload) as the IP header gives it.
    pub l4_len: usize,
}

/// Reads the tuple of the TCP or UDP packet whose IP header is at `l3` in `data`.
///
/// Refuses fragments (`Fragment`; an IPv6 "atomic fragment", offset 0 without more
/// fragments, is a whole packet and accepted), protocols other than TCP and UDP, and
/// packets whose IP, TCP or UDP header is cut short or malformed. Bytes after the IP
/// packet (Ethernet padding) are ignored. Checksums are not verified.
#[inline(always)]
pub fn tuple(data: &[u8], l3: usize) -> Result<Tuple, TranslateError> {
    let ip = data.get(l3..).ok_or(TranslateError::Truncated)?;
    let (proto, src, dst, l4_rel, l4_len) = match IpVersion::of(ip) {
        Some(IpVersion::V4) => {
            let p = Ipv4Packet::new_checked(ip)?;
            if p.is_fragment() {
                return Err(TranslateError::Fragment);
            }
            let hl = p.header_len();
            (p.protocol(), IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr()), hl, p.total_len() as usize - hl)
        }
        Some(IpVersion::V6) => {
            let p = Ipv6Packet::new_checked(ip)?;
            let ul = p.upper_layer()?;
            if ul.is_fragment() {
                return Err(TranslateError::Fragment);
            }
            let end = wire::ipv6::HEADER_LEN + p.payload_len() as usize;
            (ul.protocol, IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr()), ul.offset, end - ul.offset)
        }
        None => {
            return Err(if ip.is_empty() { TranslateError::Truncated } else { TranslateError::Malformed });
        }
    };
    let unsupported = TranslateError::UnsupportedProtocol(proto.0);
    let proto = Proto::from_number_in(proto.0, src.is_ipv6()).ok_or(unsupported)?;
    let seg = ip.get(l4_rel..l4_rel + l4_len).ok_or(TranslateError::Truncated)?;
    let (sport, dport, tcp_flags) = match proto {
        Proto::Tcp => {
            let t = TcpPacket::new_checked(seg)?;
            (t.src_port(), t.dst_port(), t.flags())
        }
        Proto::Udp => {
            let u = UdpPacket::new_checked(seg)?;
            (u.src_port(), u.dst_port(), TcpFlags::empty())
        }
        Proto::Icmp => echo_ends(seg)?.ok_or(unsupported)?,
    };
    Ok(Tuple { proto, src, sport, dst, dport, tcp_flags, l4: l3 + l4_rel, l4_len })
}

/// The type byte of an ICMP echo request, over IPv4 and IPv6 (`Tuple`'s ends depend on
/// it).
fn is_echo_request(ty: u8) -> bool {
    ty == wire::Icmpv4Message::ECHO_REQUEST.0 || ty == wire::Icmpv6Message::ECHO_REQUEST.0
}

/// The ends of an ICMP or ICMPv6 message as [`Tuple`] gives them for an echo request or
/// reply; `None` for another message (the type numbers of the two families do not
/// overlap for these four).
pub(crate) fn echo_ends(seg: &[u8]) -> Result<Option<(u16, u16, TcpFlags)>, TranslateError> {
    let Some(h) = seg.get(..wire::icmpv4::HEADER_LEN) else { return Err(TranslateError::Truncated) };
    let id = u16::from_be_bytes([h[4], h[5]]);
    let reply = h[0] == wire::Icmpv4Message::ECHO_REPLY.0 || h[0] == wire::Icmpv6Message::ECHO_REPLY.0;
    Ok(match is_echo_request(h[0]) {
        true => Some((id, 0, TcpFlags::SYN)),
        false if reply => Some((0, id, TcpFlags::empty())),
        false => None,
    })
}

/// Writes an echo message's new identifier (the new `sport` of a request, the new
/// `dport` of a reply, see [`Tuple`]) and updates its checksum by `delta` (ICMPv6's
/// covers a pseudo-header, whose addresses `delta` holds with the ports' change) or, over
/// IPv4 (no pseudo-header), by the identifier's change alone.
fn patch_echo(seg: &mut [u8], ipv4: bool, sport: u16, dport: u16, delta: Delta) -> Result<(), TranslateError> {
    let Some(h) = seg.get_mut(..wire::icmpv4::HEADER_LEN) else { return Err(TranslateError::Truncated) };
    let id = if is_echo_request(h[0]) { sport } else { dport };
    let old = u16::from_be_bytes([h[4], h[5]]);
    let delta = match ipv4 {
        true => {
            let mut d = Delta::new();
            d.replace16(old, id);
            d
        }
        false => delta,
    };
    let c = delta.apply(u16::from_be_bytes([h[2], h[3]]));
    h[2..4].copy_from_slice(&c.to_be_bytes());
    h[4..6].copy_from_slice(&id.to_be_bytes());
    Ok(())
}

/// Replaces the addresses and ports of the TCP or UDP packet at `l3` with those of
/// `rw`, updating the checksums incrementally (see the module documentation).
/// `rw` must be of the packet's address family (`FamilyMismatch` otherwise). The
/// packet is untouched on error.
pub fn rewrite<B: PacketBuf>(buf: &mut B, l3: usize, rw: &Rewrite) -> Result<(), TranslateError> {
    let t = tuple(buf.data(), l3)?;
    rewrite_parsed(buf.data_mut(), l3, &t, rw)
}

/// [`rewrite`] for a packet whose tuple the caller already read with [`tuple()`] (and
/// has not changed since), to avoid parsing twice on the fast path.
pub fn rewrite_parsed(data: &mut [u8], l3: usize, t: &Tuple, rw: &Rewrite) -> Result<(), TranslateError> {
    if let (IpAddr::V4(_), IpAddr::V4(ns), IpAddr::V4(nd)) = (t.src, rw.src, rw.dst) {
        let new = V4Ends { src: ns.octets(), sport: rw.sport, dst: nd.octets(), dport: rw.dport };
        return rewrite_v4(data, l3, t.l4, t.proto, &new);
    }
    if rw.src.is_ipv4() != t.src.is_ipv4() || rw.dst.is_ipv4() != t.src.is_ipv4() {
        return Err(TranslateError::FamilyMismatch);
    }
    let mut addrs = Delta::new();
    addrs.replace_addr(t.src, rw.src);
    addrs.replace_addr(t.dst, rw.dst);
    write_ip_addrs(data, l3, rw.src, rw.dst, addrs)?;

    let mut l4 = addrs;
    l4.replace16(t.sport, rw.sport);
    l4.replace16(t.dport, rw.dport);
    let seg = data.get_mut(t.l4..t.l4 + t.l4_len).ok_or(TranslateError::Truncated)?;
    patch_l4(seg, t.proto, t.src.is_ipv4(), rw.sport, rw.dport, l4)
}

/// The addresses and ports of an IPv4 TCP or UDP packet, as the established path
/// reads them and [`rewrite_v4`] writes them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct V4Ends {
    pub src: [u8; 4],
    pub sport: u16,
    pub dst: [u8; 4],
    pub dport: u16,
}

/// Rewrites the IPv4 packet at `l3`, whose TCP or UDP header is at `l4`, to the ends
/// `new`, in one pass: the old addresses and ports are read as they are overwritten,
/// and both checksums follow from one delta. Of [`rewrite_parsed`] for the established
/// flow's common case, and of the engine's established IPv4 path.
#[inline]
pub(crate) fn rewrite_v4(
    data: &mut [u8],
    l3: usize,
    l4: usize,
    proto: Proto,
    new: &V4Ends,
) -> Result<(), TranslateError> {
    let (csum_at, end) = match proto {
        Proto::Tcp => (wire::tcp::CHECKSUM_OFFSET, wire::tcp::CHECKSUM_OFFSET + 2),
        Proto::Udp => (wire::udp::CHECKSUM_OFFSET, wire::udp::CHECKSUM_OFFSET + 2),
        Proto::Icmp => (wire::icmpv4::CHECKSUM_OFFSET, wire::icmpv4::HEADER_LEN),
    };
    // Both ranges were checked by the parse; a caller that changed the buffer since
    // gets `Truncated`, the packet untouched.
    if data.len() < l3 + wire::ipv4::HEADER_LEN || data.len() < l4 + end || l4 < l3 + wire::ipv4::HEADER_LEN {
        return Err(TranslateError::Truncated);
    }
    // One's-complement sums do not depend on byte order (RFC 1071 §2(B)): the words
    // and both checksum fields are taken in the machine's order, with no byte swaps.
    let swap = |w: &mut [u8], new: [u8; 4], d: &mut Delta| {
        let old = u32::from_ne_bytes([w[0], w[1], w[2], w[3]]);
        d.replace32(old, u32::from_ne_bytes(new));
        w[..4].copy_from_slice(&new);
    };
    let mut addrs = Delta::new();
    let ip = &mut data[l3..l3 + wire::ipv4::HEADER_LEN];
    swap(&mut ip[12..16], new.src, &mut addrs);
    swap(&mut ip[16..20], new.dst, &mut addrs);
    let c = addrs.apply(u16::from_ne_bytes([ip[10], ip[11]]));
    ip[10..12].copy_from_slice(&c.to_ne_bytes());
    if proto == Proto::Icmp {
        return patch_echo(&mut data[l4..l4 + end], true, new.sport, new.dport, Delta::new());
    }
    let mut sum = addrs;
    let seg = &mut data[l4..l4 + csum_at + 2];
    let (sport, dport) = (new.sport.to_be_bytes(), new.dport.to_be_bytes());
    swap(&mut seg[..4], [sport[0], sport[1], dport[0], dport[1]], &mut sum);
    let was = u16::from_ne_bytes([seg[csum_at], seg[csum_at + 1]]);
    let now = match proto {
        Proto::Udp if was == 0 => 0,
        // 0 and 0xffff read the same in either order.
        Proto::Udp => checksum::udp_nonzero(sum.apply(was)),
        _ => sum.apply(was),
    };
    seg[csum_at..csum_at + 2].copy_from_slice(&now.to_ne_bytes());
    Ok(())
}

/// Writes new IP addresses at `l3` (IPv4 or IPv6 by the version nibble), applying
/// `delta` (the addresses' change) to the IPv4 header checksum.
/// Sets the length field of the IP header `ip` (IPv4 total length, IPv6 payload length)
/// from `old` to `new` after bytes were inserted behind it, the IPv4 header checksum
/// updated incrementally.
pub(crate) fn set_ip_len(ip: &mut [u8], v4: bool, old: u16, new: u16) {
    if v4 {
        let mut p = Ipv4Packet::new_unchecked(ip);
        let mut d = Delta::new();
        d.replace16(old, new);
        let c = d.apply(p.checksum());
        p.set_total_len(new);
        p.set_checksum(c);
    } else {
        Ipv6Packet::new_unchecked(ip).set_payload_len(new);
    }
}

pub(crate) fn write_ip_addrs(
    data: &mut [u8],
    l3: usize,
    src: IpAddr,
    dst: IpAddr,
    delta: Delta,
) -> Result<(), TranslateError> {
    let ip = data.get_mut(l3..).ok_or(TranslateError::Truncated)?;
    match (IpVersion::of(ip), src, dst) {
        (Some(IpVersion::V4), IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut p = Ipv4Packet::new_checked_header(ip)?;
            let c = delta.apply(p.checksum());
            p.set_src_addr(s);
            p.set_dst_addr(d);
            p.set_checksum(c);
        }
        (Some(IpVersion::V6), IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut p = Ipv6Packet::new_checked_header(ip)?;
            p.set_src_addr(s);
            p.set_dst_addr(d);
        }
        (None, _, _) => return Err(TranslateError::Malformed),
        _ => return Err(TranslateError::FamilyMismatch),
    }
    Ok(())
}

/// Writes new ports into a TCP or UDP header (at least its first 8 bytes in `seg`)
/// and applies `delta` to its checksum if the checksum field is in `seg`. A UDP/IPv4
/// checksum of 0 stays 0; a UDP checksum coming out as 0 is written as 0xffff.
pub(crate) fn patch_l4(
    seg: &mut [u8],
    proto: Proto,
    ipv4: bool,
    sport: u16,
    dport: u16,
    delta: Delta,
) -> Result<(), TranslateError> {
    let csum_at = match proto {
        Proto::Tcp => wire::tcp::CHECKSUM_OFFSET,
        Proto::Udp => wire::udp::CHECKSUM_OFFSET,
        Proto::Icmp => return patch_echo(seg, ipv4, sport, dport, delta),
    };
    if seg.len() < wire::udp::HEADER_LEN {
        return Err(TranslateError::Truncated);
    }
    if let Some(field) = seg.get_mut(csum_at..csum_at + 2) {
        let old = u16::from_be_bytes([field[0], field[1]]);
        let new = match proto {
            Proto::Udp if ipv4 && old == 0 => 0,
            Proto::Udp => checksum::udp_nonzero(delta.apply(old)),
            _ => delta.apply(old),
        };
        field.copy_from_slice(&new.to_be_bytes());
    }
    seg[0..2].copy_from_slice(&sport.to_be_bytes());
    seg[2..4].copy_from_slice(&dport.to_be_bytes());
    Ok(())
}

/// Test helpers shared by the translation modules' tests: an independent check of a
/// packet with etherparse, checksums included.
#[cfg(test)]
pub(crate) mod testutil {
    pub use crate::judge::judge as check;
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;
    use wire::builder::PacketBuilder;
    use wire::{EthernetAddress, IpProtocol};

    use super::testutil::check;
    use super::*;
    use crate::buf::VecBuf;

    const CIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);
    const LIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 9);

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn inbound_v4() -> Rewrite {
        Rewrite { src: LIP.into(), sport: 5001, dst: RIP.into(), dport: 8080 }
    }

    #[test]
    fn tcp_v4_in_ethernet_with_padding() {
        let m = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let frame =
            PacketBuilder::eth(m, m).pad_to(60).ipv4(CIP, VIP).tcp(40000, 80).flags(TcpFlags::ACK).ack(5).build();
        let t = tuple(&frame, 14).unwrap();
        assert_eq!(
            t,
            Tuple {
                proto: Proto::Tcp,
                src: CIP.into(),
                sport: 40000,
                dst: VIP.into(),
                dport: 80,
                tcp_flags: TcpFlags::ACK,
                l4: 34,
                l4_len: 20,
            }
        );
        let mut buf = VecBuf::new(&frame);
        rewrite(&mut buf, 14, &inbound_v4()).unwrap();
        let out = buf.to_vec();
        assert_eq!(out.len(), 60, "padding kept, nothing moved");
        let seen = check(&out[14..54]);
        assert_eq!((seen.src, seen.sport, seen.dst, seen.dport), (LIP.into(), 5001, RIP.into(), 8080));
        assert_eq!(&out[..14], &frame[..14]);
    }

    #[test]
    fn udp_v4_zero_checksum_stays_zero() {
        let pkt = PacketBuilder::ipv4(CIP, VIP).udp(5353, 53).no_checksum().payload(b"query").build();
        let mut buf = VecBuf::new(&pkt);
        rewrite(&mut buf, 0, &inbound_v4()).unwrap();
        let out = buf.to_vec();
        assert_eq!(UdpPacket::new_checked(&out[20..]).unwrap().checksum(), 0);
        let seen = check(&out);
        assert_eq!((seen.sport, seen.dport, seen.payload.as_slice()), (5001, 8080, &b"query"[..]));
    }

    #[test]
    fn tcp_and_udp_v6_with_extension_header() {
        let (c, v, l, r) = (v6("2001:db8:c::1"), v6("2001:db8:f::80"), v6("fd00:1::5"), v6("fd00:2::9"));
        let rw = Rewrite { src: l.into(), sport: 6000, dst: r.into(), dport: 8443 };
        for pkt in [
            PacketBuilder::ipv6(c, v).tcp(1234, 443).flags(TcpFlags::SYN).mss(1440).payload(b"x").build(),
            PacketBuilder::ipv6(c, v).ipv6_ext(IpProtocol::DSTOPTS, &[]).udp(1234, 443).payload(b"yz").build(),
        ] {
            let t = tuple(&pkt, 0).unwrap();
            assert_eq!((t.src, t.sport, t.dst, t.dport), (c.into(), 1234, v.into(), 443));
            let mut buf = VecBuf::new(&pkt);
            rewrite(&mut buf, 0, &rw).unwrap();
            let seen = check(&buf.to_vec());
            assert_eq!((seen.src, seen.sport, seen.dst, seen.dport), (l.into(), 6000, r.into(), 8443));
        }
    }

    /// ICMP echo: the identifier stands for the ports (a request's source, a reply's
    /// destination), and rewriting writes it with a right checksum, over IPv4 (no
    /// pseudo-header) and IPv6 (ICMPv6's pseudo-header follows the addresses).
    #[test]
    fn echo_identifiers_are_the_ports() {
        let req = PacketBuilder::ipv4(RIP, CIP).icmpv4_echo_request(77, 3).payload(b"ping").build();
        let t = tuple(&req, 0).unwrap();
        assert_eq!((t.proto, t.sport, t.dport, t.tcp_flags.opens()), (Proto::Icmp, 77, 0, true));
        let out = Rewrite { src: LIP.into(), sport: 1025, dst: CIP.into(), dport: 0 };
        let mut buf = VecBuf::new(&req);
        rewrite(&mut buf, 0, &out).unwrap();
        assert_eq!(buf.to_vec(), PacketBuilder::ipv4(LIP, CIP).icmpv4_echo_request(1025, 3).payload(b"ping").build());
        let rep = PacketBuilder::ipv4(CIP, LIP).icmpv4_echo_reply(1025, 3).build();
        let t = tuple(&rep, 0).unwrap();
        assert_eq!((t.sport, t.dport, t.tcp_flags.opens()), (0, 1025, false));
        let back = Rewrite { src: CIP.into(), sport: 0, dst: RIP.into(), dport: 77 };
        let mut buf = VecBuf::new(&rep);
        rewrite(&mut buf, 0, &back).unwrap();
        assert_eq!(buf.to_vec(), PacketBuilder::ipv4(CIP, RIP).icmpv4_echo_reply(77, 3).build());

        let (a, b, w) = (v6("fd00::1"), v6("2001:db8::7"), v6("2001:db8::3"));
        let req6 = PacketBuilder::ipv6(a, b).icmpv6_echo_request(9, 1).payload(b"x").build();
        assert_eq!(tuple(&req6, 0).map(|t| (t.sport, t.dport)), Ok((9, 0)));
        let mut buf = VecBuf::new(&req6);
        rewrite(&mut buf, 0, &Rewrite { src: w.into(), sport: 2000, dst: b.into(), dport: 0 }).unwrap();
        assert_eq!(buf.to_vec(), PacketBuilder::ipv6(w, b).icmpv6_echo_request(2000, 1).payload(b"x").build());
        let na = PacketBuilder::ipv6(a, b).neighbour_solicit(b, None).build();
        assert_eq!(tuple(&na, 0), Err(TranslateError::UnsupportedProtocol(58)), "ICMPv6 other than echo");
    }

    #[test]
    fn refusals_leave_the_packet_alone() {
        let frag = PacketBuilder::ipv4(CIP, VIP).fragment(0, true).tcp(1, 2).payload(&[0; 8]).build();
        assert_eq!(tuple(&frag, 0), Err(TranslateError::Fragment));
        let later = PacketBuilder::ipv4(CIP, VIP).fragment(1480, false).protocol(IpProtocol::TCP).payload(&[0; 8]);
        assert_eq!(tuple(&later.build(), 0), Err(TranslateError::Fragment));
        let frag6 = PacketBuilder::ipv6(v6("::1"), v6("::2")).ipv6_fragment(0, true, 1).udp(1, 2).build();
        assert_eq!(tuple(&frag6, 0), Err(TranslateError::Fragment));
        let atomic6 = PacketBuilder::ipv6(v6("::1"), v6("::2")).ipv6_fragment(0, false, 1).udp(1, 2).build();
        assert!(tuple(&atomic6, 0).is_ok());
        let icmp = PacketBuilder::ipv4(CIP, VIP).icmpv4_error(3, 3, &[0; 28]).build();
        assert_eq!(tuple(&icmp, 0), Err(TranslateError::UnsupportedProtocol(1)), "ICMP other than echo");
        let echo = PacketBuilder::ipv4(CIP, VIP).icmpv4_echo_request(1, 1).build();
        assert_eq!(tuple(&echo[..20 + 7], 0), Err(TranslateError::Truncated));
        let tcp = PacketBuilder::ipv4(CIP, VIP).tcp(1, 2).build();
        assert_eq!(tuple(&tcp[..39], 0), Err(TranslateError::Truncated));
        assert_eq!(tuple(&tcp, 41), Err(TranslateError::Truncated));
        assert_eq!(tuple(&[0x55; 40], 0), Err(TranslateError::Malformed));

        let mut buf = VecBuf::new(&tcp);
        let bad = Rewrite { src: v6("::1").into(), sport: 1, dst: RIP.into(), dport: 2 };
        assert_eq!(rewrite(&mut buf, 0, &bad), Err(TranslateError::FamilyMismatch));
        let mut buf6 = VecBuf::new(&atomic6);
        assert_eq!(rewrite(&mut buf6, 0, &inbound_v4()), Err(TranslateError::FamilyMismatch));
        assert_eq!(buf.to_vec(), tcp);
        assert_eq!(buf6.to_vec(), atomic6);
    }

    #[test]
    fn wrong_checksum_stays_wrong() {
        // A corrupted segment must not be "repaired" by the rewrite.
        let pkt = PacketBuilder::ipv4(CIP, VIP).tcp(1, 2).payload(b"abc").checksum(0x1234).build();
        let mut buf = VecBuf::new(&pkt);
        rewrite(&mut buf, 0, &inbound_v4()).unwrap();
        let out = buf.to_vec();
        let tcp = TcpPacket::new_checked(&out[20..]).unwrap();
        assert!(!tcp.verify_checksum(LIP.into(), RIP.into()));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_rewrites_verify(
            is_v6: bool, is_tcp: bool,
            a: [u8; 16], b: [u8; 16], c: [u8; 16], d: [u8; 16],
            p: (u16, u16, u16, u16),
            payload in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let ip = |x: [u8; 16]| -> IpAddr {
                if is_v6 { Ipv6Addr::from(x).into() } else { Ipv4Addr::new(x[0], x[1], x[2], x[3]).into() }
            };
            let start = match (ip(a), ip(b)) {
                (IpAddr::V4(s), IpAddr::V4(t)) => PacketBuilder::ipv4(s, t),
                (IpAddr::V6(s), IpAddr::V6(t)) => PacketBuilder::ipv6(s, t),
                _ => unreachable!(),
            };
            let pkt = if is_tcp {
                start.tcp(p.0, p.1).payload(&payload).build()
            } else {
                start.udp(p.0, p.1).payload(&payload).build()
            };
            let rw = Rewrite { src: ip(c), sport: p.2, dst: ip(d), dport: p.3 };
            let mut buf = VecBuf::new(&pkt);
            rewrite(&mut buf, 0, &rw).unwrap();
            let out = buf.to_vec();
            let seen = check(&out);
            prop_assert_eq!((seen.src, seen.sport, seen.dst, seen.dport), (rw.src, rw.sport, rw.dst, rw.dport));
            prop_assert_eq!(seen.payload, payload);
            // And back again gives the original bytes.
            let back = Rewrite { src: ip(a), sport: p.0, dst: ip(b), dport: p.1 };
            rewrite(&mut buf, 0, &back).unwrap();
            let again = buf.to_vec();
            check(&again);
            prop_assert_eq!(&again[..], &pkt[..]);
        }
    }
}
