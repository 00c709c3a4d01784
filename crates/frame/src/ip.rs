//! The few facts the frame logic needs of an IP packet behind an untagged Ethernet
//! header, read and changed through `wire`'s checked views (no raw offsets here).

use std::net::IpAddr;

use wire::{checksum, EthernetAddress, EthernetFrame, IpProtocol, IpVersion, Ipv4Packet, Ipv6Packet};

use crate::ETH_LEN;

/// An IP packet's addresses, protocol and length, from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct L3 {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// The protocol after the IP header (IPv6: after the extension headers).
    pub proto: IpProtocol,
    /// The IP packet's own length (IPv4 total length; IPv6 40 + payload length).
    pub len: usize,
}

/// The IP header after the Ethernet header, if it is a whole, well-formed one.
pub fn parse(frame: &[u8]) -> Option<L3> {
    let l3 = frame.get(ETH_LEN..)?;
    match IpVersion::of(l3)? {
        IpVersion::V4 => {
            let p = Ipv4Packet::new_checked(l3).ok()?;
            Some(L3 {
                src: p.src_addr().into(),
                dst: p.dst_addr().into(),
                proto: p.protocol(),
                len: p.total_len() as usize,
            })
        }
        IpVersion::V6 => {
            let p = Ipv6Packet::new_checked(l3).ok()?;
            let proto = p.upper_layer().map_or(p.next_header(), |u| u.protocol);
            Some(L3 {
                src: p.src_addr().into(),
                dst: p.dst_addr().into(),
                proto,
                len: wire::ipv6::HEADER_LEN + p.payload_len() as usize,
            })
        }
    }
}

/// Whether the IPv4 header after the Ethernet header has a right checksum: `nic` is
/// the NIC's verdict, trusted when it gave one; otherwise the header (20 to 60 bytes)
/// is summed here. Anything that is not a whole IPv4 packet (truncated, or a length
/// that runs past the frame) passes: the core refuses it as `bad_header`.
#[inline]
pub fn header_checksum_ok(frame: &[u8], nic: fnat::buf::Checked) -> bool {
    match nic {
        fnat::buf::Checked::Good => return true,
        fnat::buf::Checked::Bad => return false,
        fnat::buf::Checked::Unknown => {}
    }
    let Some(l3) = frame.get(ETH_LEN..) else { return true };
    // A header without options, nearly every frame: its 20 bytes summed in place (the
    // same test as `new_checked` below: a total length from 20 to what is there).
    if let Some(h) = l3.get(..wire::ipv4::HEADER_LEN) {
        let total = u16::from_be_bytes([h[2], h[3]]) as usize;
        if h[0] == 0x45 && (wire::ipv4::HEADER_LEN..=l3.len()).contains(&total) {
            return checksum::fold(checksum::ones_sum(h, 0)) == 0;
        }
    }
    if IpVersion::of(l3) != Some(IpVersion::V4) {
        return true;
    }
    Ipv4Packet::new_checked(l3).map_or(true, |p| p.verify_checksum())
}

/// Whether the ICMP (IPv4) or ICMPv6 message of the frame, whose IP facts are `l3`,
/// has a right checksum; true for other protocols and for what cannot be read (others
/// judge it). Local delivery only: it reads the whole message.
pub fn icmp_checksum_ok(frame: &[u8], l3: &L3) -> bool {
    let Some(ip) = frame.get(ETH_LEN..) else { return true };
    match (l3.proto, l3.src, l3.dst) {
        (IpProtocol::ICMP, IpAddr::V4(_), IpAddr::V4(_)) => {
            let Ok(p) = Ipv4Packet::new_checked(ip) else { return true };
            wire::Icmpv4Packet::new_checked(p.payload()).map_or(true, |m| m.verify_checksum())
        }
        (IpProtocol::ICMPV6, IpAddr::V6(s), IpAddr::V6(d)) => {
            let Ok(p) = Ipv6Packet::new_checked(ip) else { return true };
            let Ok(ul) = p.upper_layer() else { return true };
            let end = wire::ipv6::HEADER_LEN + p.payload_len() as usize;
            let Some(Ok(m)) = ip.get(ul.offset..end).map(wire::Icmpv6Packet::new_checked) else { return true };
            m.verify_checksum(s, d)
        }
        _ => true,
    }
}

/// The source address of a bare IP packet (or the start of one, as quoted in an ICMP
/// error).
pub fn source(l3: &[u8]) -> Option<IpAddr> {
    match IpVersion::of(l3)? {
        IpVersion::V4 => Ipv4Packet::new_checked_header(l3).ok().map(|p| p.src_addr().into()),
        IpVersion::V6 => Ipv6Packet::new_checked_header(l3).ok().map(|p| p.src_addr().into()),
    }
}

/// The TTL / hop limit of the IP header after the Ethernet header.
#[inline]
pub fn ttl(frame: &[u8]) -> Option<u8> {
    let l3 = frame.get(ETH_LEN..)?;
    match IpVersion::of(l3)? {
        IpVersion::V4 => Ipv4Packet::new_checked_header(l3).ok().map(|p| p.ttl()),
        IpVersion::V6 => Ipv6Packet::new_checked_header(l3).ok().map(|p| p.hop_limit()),
    }
}

/// Decrements the TTL / hop limit (the IPv4 header checksum updated incrementally);
/// false, with the frame unchanged, when it would reach zero or the header is not there.
/// Inlined for the common IPv4 header without options; the rest out of line.
#[inline]
pub fn decrement_ttl(frame: &mut [u8]) -> bool {
    // IPv4 without options, nearly every frame, read in place once (the checks are
    // those of `new_checked_header` below: a total length not below the header's).
    if let Some(h) = frame.get_mut(ETH_LEN..ETH_LEN + wire::ipv4::HEADER_LEN) {
        if h[0] == 0x45 && u16::from_be_bytes([h[2], h[3]]) >= wire::ipv4::HEADER_LEN as u16 {
            let (ttl, proto) = (h[8], h[9]);
            if ttl <= 1 {
                return false;
            }
            h[8] = ttl - 1;
            let c = u16::from_be_bytes([h[10], h[11]]);
            let c = checksum::update16(c, u16::from_be_bytes([ttl, proto]), u16::from_be_bytes([ttl - 1, proto]));
            h[10..12].copy_from_slice(&c.to_be_bytes());
            return true;
        }
    }
    decrement_ttl_other(frame)
}

/// [`decrement_ttl`] of the other frames: IPv4 with options, IPv6, anything else.
#[inline(never)]
fn decrement_ttl_other(frame: &mut [u8]) -> bool {
    let Some(l3) = frame.get_mut(ETH_LEN..) else { return false };
    match IpVersion::of(l3) {
        Some(IpVersion::V4) => {
            let Ok(mut p) = Ipv4Packet::new_checked_header(l3) else { return false };
            let ttl = p.ttl();
            if ttl <= 1 {
                return false;
            }
            let proto = p.protocol().0;
            let old = u16::from_be_bytes([ttl, proto]);
            let new = u16::from_be_bytes([ttl - 1, proto]);
            p.set_ttl(ttl - 1);
            let c = checksum::update16(p.checksum(), old, new);
            p.set_checksum(c);
            true
        }
        Some(IpVersion::V6) => {
            let Ok(mut p) = Ipv6Packet::new_checked_header(l3) else { return false };
            let hl = p.hop_limit();
            if hl <= 1 {
                return false;
            }
            p.set_hop_limit(hl - 1);
            true
        }
        None => false,
    }
}

/// Bytes of an ICMP error's quote beyond the IP header: the transport ports and, for
/// TCP, the sequence number (RFC 792's "first 64 bits"; all Linux needs to find the
/// socket).
pub const QUOTE_L4: usize = 8;
/// Room for a rebuilt quote: the largest IPv4 header, or an IPv6 header with a few
/// extension headers, plus [`QUOTE_L4`].
pub const QUOTE_MAX: usize = 128;

/// Writes into `out` the start of the IP packet `l3` (its header and [`QUOTE_L4`] bytes)
/// as it was before FullNAT translated it: addresses and ports from `key`, the IPv4
/// header checksum refreshed. Returns the quote's length, or `None` if `l3` is not a
/// whole TCP/UDP header of the key's family.
pub fn quote_as_arrived(l3: &[u8], key: &fnat::conn::ConnKey, out: &mut [u8; QUOTE_MAX]) -> Option<usize> {
    let (src, dst) = (key.src.ip(), key.dst.ip());
    let l4 = match (IpVersion::of(l3)?, src, dst) {
        (IpVersion::V4, IpAddr::V4(s), IpAddr::V4(d)) => {
            let p = Ipv4Packet::new_checked_header(l3).ok()?;
            let hl = p.header_len();
            let n = hl + QUOTE_L4;
            out.get_mut(..n)?.copy_from_slice(l3.get(..n)?);
            let mut q = Ipv4Packet::new_checked_header(&mut out[..n]).ok()?;
            q.set_src_addr(s);
            q.set_dst_addr(d);
            q.fill_checksum();
            hl
        }
        (IpVersion::V6, IpAddr::V6(s), IpAddr::V6(d)) => {
            let p = Ipv6Packet::new_checked_header(l3).ok()?;
            let off = p.upper_layer().ok()?.offset;
            let n = off + QUOTE_L4;
            out.get_mut(..n)?.copy_from_slice(l3.get(..n)?);
            let mut q = Ipv6Packet::new_checked_header(&mut out[..n]).ok()?;
            q.set_src_addr(s);
            q.set_dst_addr(d);
            off
        }
        _ => return None,
    };
    // TCP and UDP both start with the two ports.
    let mut ports = wire::UdpPacket::new_unchecked(&mut out[l4..l4 + QUOTE_L4]);
    ports.set_src_port(key.sport);
    ports.set_dst_port(key.dport);
    Some(l4 + QUOTE_L4)
}

/// Addresses an Ethernet frame from `src` to `dst`; false if it is shorter than the header.
pub fn set_macs(frame: &mut [u8], src: EthernetAddress, dst: EthernetAddress) -> bool {
    match EthernetFrame::new_checked(frame) {
        Ok(mut f) => {
            f.set_src_addr(src);
            f.set_dst_addr(dst);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wire::builder::PacketBuilder;
    use wire::TcpFlags;

    fn mac(b: u8) -> EthernetAddress {
        EthernetAddress([2, 0, 0, 0, 0, b])
    }

    #[test]
    fn ttl_decrement_keeps_the_checksum_valid() {
        let mut f = PacketBuilder::eth(mac(1), mac(2))
            .ipv4("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
            .ttl(5)
            .tcp(1000, 80)
            .flags(TcpFlags::SYN)
            .build();
        assert!(decrement_ttl(&mut f));
        let ip = etherparse::Ipv4HeaderSlice::from_slice(&f[ETH_LEN..]).unwrap();
        assert_eq!(ip.ttl(), 4);
        assert_eq!(ip.header_checksum(), ip.to_header().calc_header_checksum());
        let mut f1 = PacketBuilder::eth(mac(1), mac(2))
            .ipv4("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
            .ttl(1)
            .tcp(1000, 80)
            .build();
        let before = f1.clone();
        assert!(!decrement_ttl(&mut f1), "TTL 1 cannot be forwarded");
        assert_eq!(f1, before);
    }

    #[test]
    fn hop_limit_and_header_facts() {
        let mut f = PacketBuilder::eth(mac(1), mac(2))
            .ipv6("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
            .ttl(2)
            .udp(1, 2)
            .payload(b"x")
            .build();
        assert!(decrement_ttl(&mut f));
        assert!(!decrement_ttl(&mut f));
        let l3 = parse(&f).unwrap();
        assert_eq!(l3.len, 40 + 8 + 1);
        assert_eq!(l3.dst, "2001:db8::2".parse::<IpAddr>().unwrap());
        assert_eq!(l3.proto, IpProtocol::UDP);
    }

    /// The header checksum, with and without options, and what is not judged here.
    #[test]
    fn header_checksums_are_judged() {
        use fnat::buf::Checked;
        let f = PacketBuilder::eth(mac(1), mac(2))
            .ipv4("192.0.2.1".parse().unwrap(), "192.0.2.2".parse().unwrap())
            .tcp(1000, 80)
            .payload(b"data")
            .build();
        assert!(header_checksum_ok(&f, Checked::Unknown));
        let mut bad = f.clone();
        bad[ETH_LEN + 11] ^= 1;
        assert!(!header_checksum_ok(&bad, Checked::Unknown));
        assert!(header_checksum_ok(&bad, Checked::Good), "the NIC's verdict is trusted");
        assert!(!header_checksum_ok(&f, Checked::Bad));
        // Four NOP option bytes: IHL 6, the checksum recomputed over 24 bytes.
        let mut opt = f[..ETH_LEN + 20].to_vec();
        opt.extend_from_slice(&[1, 1, 1, 1]);
        opt.extend_from_slice(&f[ETH_LEN + 20..]);
        opt[ETH_LEN] = 0x46;
        let total = u16::from_be_bytes([opt[ETH_LEN + 2], opt[ETH_LEN + 3]]) + 4;
        opt[ETH_LEN + 2..ETH_LEN + 4].copy_from_slice(&total.to_be_bytes());
        opt[ETH_LEN + 10..ETH_LEN + 12].fill(0);
        let c = checksum::checksum(&opt[ETH_LEN..ETH_LEN + 24]);
        opt[ETH_LEN + 10..ETH_LEN + 12].copy_from_slice(&c.to_be_bytes());
        assert!(header_checksum_ok(&opt, Checked::Unknown));
        opt[ETH_LEN + 22] = 0;
        assert!(!header_checksum_ok(&opt, Checked::Unknown), "an option byte changed");
        // A length past the frame is the core's to refuse, whatever the checksum.
        let mut long = bad.clone();
        long[ETH_LEN + 2] = 0x10;
        assert!(header_checksum_ok(&long, Checked::Unknown));
    }

    #[test]
    fn garbage_is_refused_without_panic() {
        for junk in [&[][..], &[0u8; 13][..], &[0x45u8; 20][..], &[0u8; 60][..], &[0x45u8; 80][..]] {
            assert!(parse(junk).is_none());
            let mut j = junk.to_vec();
            let _ = decrement_ttl(&mut j);
            let _ = set_macs(&mut j, mac(1), mac(2));
        }
    }
}
