//! LVS tunnel mode's encapsulation: the client's packet, unchanged, inside an outer IP
//! header to the real server (IPIP, RFC 2003, for IPv4; IPv6-in-IPv6, RFC 2473, for
//! IPv6), as IPVS's `ip_vs_tunnel_xmit` sends it.
//!
//! The outer header copies the inner's TOS / traffic class and, for IPv4, its
//! identification and DF bit (so path MTU discovery works end to end); its TTL / hop
//! limit starts at [`OUTER_TTL`] (routing takes one off, as for any forwarded packet).
//! The outer header is written in the buffer's headroom (the Ethernet header moves
//! back), so the inner packet is not copied.

use std::net::IpAddr;

use wire::{IpProtocol, IpVersion, Ipv4Packet, Ipv6Packet};

use crate::buf::PacketBuf;
use crate::translate::TranslateError;

/// The outer header's TTL / hop limit before routing.
pub const OUTER_TTL: u8 = 64;

/// The bytes an outer header adds for a packet of this family.
#[inline]
pub fn overhead(v4: bool) -> usize {
    if v4 {
        wire::ipv4::HEADER_LEN
    } else {
        wire::ipv6::HEADER_LEN
    }
}

/// Puts the IP packet at `l3` inside an outer header `src → dst` (of its family). The
/// packet is unchanged on error.
pub fn encapsulate<B: PacketBuf>(buf: &mut B, l3: usize, src: IpAddr, dst: IpAddr) -> Result<(), TranslateError> {
    let inner = buf.data().get(l3..).ok_or(TranslateError::Truncated)?;
    match (IpVersion::of(inner), src, dst) {
        (Some(IpVersion::V4), IpAddr::V4(s), IpAddr::V4(d)) => {
            let p = Ipv4Packet::new_checked_header(inner)?;
            let (len, tos, ident, df) = (p.total_len(), p.dscp() << 2 | p.ecn(), p.ident(), p.dont_frag());
            let total = len.checked_add(wire::ipv4::HEADER_LEN as u16).ok_or(TranslateError::TooLong)?;
            buf.insert_gap(l3, wire::ipv4::HEADER_LEN)?;
            let out = &mut buf.data_mut()[l3..l3 + wire::ipv4::HEADER_LEN];
            out.fill(0);
            let mut o = Ipv4Packet::new_unchecked(out);
            o.set_version(4);
            o.set_header_len(wire::ipv4::HEADER_LEN);
            o.set_dscp(tos >> 2);
            o.set_ecn(tos & 3);
            o.set_total_len(total);
            o.set_ident(ident);
            o.set_dont_frag(df);
            o.set_ttl(OUTER_TTL);
            o.set_protocol(IpProtocol::IPIP);
            o.set_src_addr(s);
            o.set_dst_addr(d);
            o.fill_checksum();
            Ok(())
        }
        (Some(IpVersion::V6), IpAddr::V6(s), IpAddr::V6(d)) => {
            let p = Ipv6Packet::new_checked_header(inner)?;
            let len = (p.payload_len() as usize + wire::ipv6::HEADER_LEN) as u16;
            let tc = p.traffic_class();
            if p.payload_len() as usize + wire::ipv6::HEADER_LEN > u16::MAX as usize {
                return Err(TranslateError::TooLong);
            }
            buf.insert_gap(l3, wire::ipv6::HEADER_LEN)?;
            let out = &mut buf.data_mut()[l3..l3 + wire::ipv6::HEADER_LEN];
            out.fill(0);
            let mut o = Ipv6Packet::new_unchecked(out);
            o.set_version_tc_flow(tc, 0);
            o.set_payload_len(len);
            o.set_next_header(IpProtocol::IPV6);
            o.set_hop_limit(OUTER_TTL);
            o.set_src_addr(s);
            o.set_dst_addr(d);
            Ok(())
        }
        (None, ..) => Err(TranslateError::Malformed),
        _ => Err(TranslateError::FamilyMismatch),
    }
}

/// Where the packet rvs encapsulated starts inside `l3` (the outer header), if `l3` is
/// one: the inner packet's offset. What the dataplane quotes in an ICMP error about it,
/// and the MTU it reports, must be the inner's.
#[inline]
pub fn inner_offset(l3: &[u8]) -> Option<usize> {
    match IpVersion::of(l3)? {
        IpVersion::V4 => {
            let p = Ipv4Packet::new_checked_header(l3).ok()?;
            (p.protocol() == IpProtocol::IPIP).then(|| p.header_len())
        }
        IpVersion::V6 => {
            let p = Ipv6Packet::new_checked_header(l3).ok()?;
            (p.next_header() == IpProtocol::IPV6).then_some(wire::ipv6::HEADER_LEN)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buf::VecBuf;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn ipip_outer_header_literal() {
        // 20-byte IPv4 header (TOS 0x10, id 0x1234, DF, TTL 63, UDP) and 4 bytes of UDP.
        let inner: [u8; 24] = [
            0x45, 0x10, 0x00, 0x18, 0x12, 0x34, 0x40, 0x00, 0x3f, 0x11, 0x00, 0x00, 198, 51, 100, 7, 192, 0, 2, 1, 1,
            2, 3, 4,
        ];
        let mut b = VecBuf::with_room(&inner, 64, 0);
        let (src, dst) = (Ipv4Addr::new(10, 1, 0, 1), Ipv4Addr::new(10, 2, 0, 1));
        encapsulate(&mut b, 0, src.into(), dst.into()).unwrap();
        let d = b.data();
        assert_eq!(d.len(), 44);
        assert_eq!(
            &d[..20],
            &[0x45, 0x10, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 64, 4, 0x14, 0x86, 10, 1, 0, 1, 10, 2, 0, 1]
        );
        assert_eq!(&d[20..], &inner, "the inner packet is unchanged");
        assert!(Ipv4Packet::new_checked(d).unwrap().verify_checksum());
        assert_eq!(inner_offset(d), Some(20));
        assert_eq!(inner_offset(&inner), None);
    }

    #[test]
    fn ip6ip6_outer_header() {
        let mut inner = vec![0x60, 0x20, 0, 0, 0, 4, 17, 63];
        inner.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        inner.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        inner.extend_from_slice(&[1, 2, 3, 4]);
        let mut b = VecBuf::with_room(&inner, 64, 0);
        let (src, dst): (Ipv6Addr, Ipv6Addr) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        encapsulate(&mut b, 0, src.into(), dst.into()).unwrap();
        let d = b.data();
        assert_eq!(&d[..8], &[0x60, 0x20, 0, 0, 0, 44, 41, 64], "TC 0x02 kept, payload 44, next header 41");
        assert_eq!(&d[8..24], &src.octets());
        assert_eq!(&d[24..40], &dst.octets());
        assert_eq!(&d[40..], &inner[..]);
        assert_eq!(inner_offset(d), Some(40));
    }

    #[test]
    fn refusals_leave_the_packet_alone() {
        let inner = [0x45u8, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2];
        let mut no_room = VecBuf::with_room(&inner, 0, 0);
        let v4 = IpAddr::from(Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(encapsulate(&mut no_room, 0, v4, v4), Err(TranslateError::NoRoom));
        assert_eq!(no_room.data(), &inner);
        let mut b = VecBuf::with_room(&inner, 64, 0);
        let v6 = IpAddr::from(Ipv6Addr::LOCALHOST);
        assert_eq!(encapsulate(&mut b, 0, v6, v6), Err(TranslateError::FamilyMismatch));
        assert_eq!(encapsulate(&mut b, 0, v4, v4).map(|_| b.len()), Ok(40));
        let mut junk = VecBuf::with_room(&[0x10, 0, 0], 64, 0);
        assert!(encapsulate(&mut junk, 0, v4, v4).is_err());
    }
}
