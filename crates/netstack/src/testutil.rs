//! Test helpers: parse what the code under test wrote with an independent parser
//! (etherparse) and check every checksum on the way.

use etherparse::{
    Ethernet2Header, Icmpv4Header, Icmpv4Slice, Icmpv6Slice, Ipv4Header, Ipv6Header, LinkSlice, NetSlice, SlicedPacket,
    TransportSlice,
};

fn slice(data: &[u8], ethernet: bool) -> (Option<Ethernet2Header>, SlicedPacket<'_>) {
    let p = if ethernet { SlicedPacket::from_ethernet(data) } else { SlicedPacket::from_ip(data) };
    let p = p.unwrap_or_else(|e| panic!("etherparse rejects the packet: {e:?}"));
    let eth = match &p.link {
        Some(LinkSlice::Ethernet2(e)) => Some(e.to_header()),
        _ => None,
    };
    assert_eq!(eth.is_some(), ethernet);
    (eth, p)
}

/// An ICMPv4 packet (in an Ethernet frame, possibly VLAN-tagged, or bare), with its IP
/// header checksum and ICMP checksum verified.
pub(crate) fn parse_icmpv4(data: &[u8], ethernet: bool) -> (Option<Ethernet2Header>, Ipv4Header, Icmpv4Slice<'_>) {
    let (eth, p) = slice(data, ethernet);
    let Some(NetSlice::Ipv4(ip)) = &p.net else { panic!("not IPv4: {:?}", p.net) };
    let ip = ip.header().to_header();
    assert_eq!(ip.header_checksum, ip.calc_header_checksum(), "IPv4 header checksum");
    let Some(TransportSlice::Icmpv4(icmp)) = p.transport else { panic!("not ICMPv4: {:?}", p.transport) };
    let want = Icmpv4Header::with_checksum(icmp.icmp_type(), icmp.payload());
    assert_eq!(icmp.checksum(), want.checksum, "ICMPv4 checksum");
    assert_eq!(&want.to_bytes()[..4], &icmp.slice()[..4]);
    (eth, ip, icmp)
}

/// An ICMPv6 packet (in an Ethernet frame or bare), with its checksum verified.
pub(crate) fn parse_icmpv6(data: &[u8], ethernet: bool) -> (Option<Ethernet2Header>, Ipv6Header, Icmpv6Slice<'_>) {
    let (eth, p) = slice(data, ethernet);
    let Some(NetSlice::Ipv6(ip)) = &p.net else { panic!("not IPv6: {:?}", p.net) };
    let ip = ip.header().to_header();
    let Some(TransportSlice::Icmpv6(icmp)) = p.transport else { panic!("not ICMPv6: {:?}", p.transport) };
    assert!(icmp.is_checksum_valid(ip.source, ip.destination), "ICMPv6 checksum");
    (eth, ip, icmp)
}

/// [`parse_icmpv6`] of an Ethernet frame.
pub(crate) fn parse_icmpv6_frame(data: &[u8]) -> (Ethernet2Header, Ipv6Header, Icmpv6Slice<'_>) {
    let (eth, ip, icmp) = parse_icmpv6(data, true);
    (eth.expect("Ethernet"), ip, icmp)
}
