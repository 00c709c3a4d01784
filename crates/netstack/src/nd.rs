//! IPv6 neighbour discovery (RFC 4861) on untagged Ethernet II frames: classify
//! neighbour solicitations and advertisements, answer a solicitation for an owned
//! address in place, and build solicitations and unsolicited advertisements.
//!
//! Frames start at the Ethernet header and have no VLAN tag. ND messages must follow
//! the IPv6 header directly (no extension headers; others are
//! [`PacketError::WrongProtocol`]), carry hop limit 255 (else
//! [`PacketError::BadHopLimit`]: a router forwarded them) and a correct ICMPv6
//! checksum. The validity rules of RFC 4861 7.1.1 and 7.1.2 are checked too.

use std::net::Ipv6Addr;

use wire::ethernet::{self, EtherType};
use wire::ipv6::HEADER_LEN as IPV6_HEADER_LEN;
use wire::{
    EthernetAddress, EthernetFrame, Icmpv6Message, Icmpv6Packet, IpProtocol, Ipv6Packet, Ipv6Repr, NdiscFlags,
    NdiscRepr,
};

use crate::error::{need, PacketError, Result};

/// Where the ICMPv6 message starts in an untagged frame without extension headers.
const ICMP_OFFSET: usize = ethernet::HEADER_LEN + IPV6_HEADER_LEN;

/// The length of every frame this module writes that carries a link-layer address
/// option: Ethernet 14 + IPv6 40 + NS/NA 24 + option 8.
pub const ND_FRAME_LEN: usize = ICMP_OFFSET + wire::icmpv6::NDISC_LEN + 8;

/// The all-nodes multicast address, destination of unsolicited advertisements.
pub const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// ND messages are sent, and must be received, with this hop limit.
pub const ND_HOP_LIMIT: u8 = 255;

/// The solicited-node multicast address of `addr` (`ff02::1:ffXX:XXXX`, RFC 4291),
/// where solicitations for it are sent.
pub fn solicited_node(addr: Ipv6Addr) -> Ipv6Addr {
    let o = addr.octets();
    Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff00 | o[13] as u16, u16::from_be_bytes([o[14], o[15]]))
}

fn is_solicited_node(addr: &Ipv6Addr) -> bool {
    let s = addr.segments();
    s[..6] == [0xff02, 0, 0, 0, 0, 1] && s[6] >> 8 == 0xff
}

/// Which neighbour discovery message arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdKind {
    /// A neighbour solicitation: who has `target`?
    Solicit,
    /// A neighbour advertisement: `target` is at `lladdr` (or at the frame's source).
    Advert {
        /// Router, solicited and override flags.
        flags: NdiscFlags,
    },
}

/// What a neighbour discovery frame says, for the caller to decide: answer it (a
/// solicitation for an address we own), learn from it, or pass it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NdInfo {
    /// Solicitation or advertisement.
    pub kind: NdKind,
    /// The Ethernet source.
    pub eth_src: EthernetAddress,
    /// The IPv6 source (`::` in duplicate address detection).
    pub src: Ipv6Addr,
    /// The IPv6 destination.
    pub dst: Ipv6Addr,
    /// The address asked about or advertised.
    pub target: Ipv6Addr,
    /// The source link-layer option of a solicitation, or the target link-layer option
    /// of an advertisement.
    pub lladdr: Option<EthernetAddress>,
}

impl NdInfo {
    /// Whether this is duplicate address detection (a solicitation from `::`): answer
    /// it if we own the target (to all nodes), but learn nothing from it.
    pub fn is_dad(&self) -> bool {
        self.kind == NdKind::Solicit && self.src.is_unspecified()
    }

    /// The binding this message teaches, if any: the solicitor's address and its source
    /// link-layer option, or the advertised target and its MAC (the option, else the
    /// Ethernet source).
    pub fn binding(&self) -> Option<(Ipv6Addr, EthernetAddress)> {
        match self.kind {
            NdKind::Solicit if self.src.is_unspecified() => None,
            NdKind::Solicit => self.lladdr.map(|m| (self.src, m)),
            NdKind::Advert { .. } => Some((self.target, self.lladdr.unwrap_or(self.eth_src))),
        }
    }

    /// Whether the binding may replace another link-layer address already known for
    /// its address: not for an advertisement without the override flag (RFC 4861
    /// §7.2.5: it confirms a known address at most), so such a forged one cannot move
    /// a neighbour.
    pub fn may_override(&self) -> bool {
        match self.kind {
            NdKind::Solicit => true,
            NdKind::Advert { flags } => flags.contains(NdiscFlags::OVERRIDE),
        }
    }
}

/// Reads a neighbour solicitation or advertisement. Errors: not IPv6 / not ICMPv6
/// right after the IPv6 header ([`PacketError::WrongProtocol`]), another ICMPv6 type
/// ([`PacketError::WrongMessage`]), hop limit not 255 ([`PacketError::BadHopLimit`]),
/// truncated, malformed options or bad checksum ([`PacketError::Wire`]), a multicast
/// source ([`PacketError::BadSender`]), and RFC 4861's other validity rules
/// ([`PacketError::Invalid`]: multicast target; a DAD solicitation not sent to a
/// solicited-node address or carrying a source link-layer option; a solicited
/// advertisement sent to a multicast address). `frame` may extend past the packet
/// (the IPv6 payload length says where it ends). Per packet: no allocation, no panic.
pub fn classify(frame: &[u8]) -> Result<NdInfo> {
    let eth = EthernetFrame::new_checked(frame)?;
    if eth.ethertype() != EtherType::IPV6 {
        return Err(PacketError::WrongProtocol);
    }
    let ip = Ipv6Packet::new_checked(eth.payload())?;
    if ip.next_header() != IpProtocol::ICMPV6 {
        return Err(PacketError::WrongProtocol);
    }
    let icmp = Icmpv6Packet::new_checked(ip.payload())?;
    let ty = icmp.msg_type();
    if ty != Icmpv6Message::NEIGHBOR_SOLICIT && ty != Icmpv6Message::NEIGHBOR_ADVERT {
        return Err(PacketError::WrongMessage);
    }
    if ip.hop_limit() != ND_HOP_LIMIT {
        return Err(PacketError::BadHopLimit(ip.hop_limit()));
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    if !icmp.verify_checksum(src, dst) {
        return Err(PacketError::Wire(wire::Error::Checksum));
    }
    if src.is_multicast() {
        return Err(PacketError::BadSender);
    }
    let (kind, target, lladdr) = match NdiscRepr::parse(&icmp)? {
        NdiscRepr::NeighborSolicit { target_addr, lladdr } => {
            if src.is_unspecified() && (!is_solicited_node(&dst) || lladdr.is_some()) {
                return Err(PacketError::Invalid);
            }
            (NdKind::Solicit, target_addr, lladdr)
        }
        NdiscRepr::NeighborAdvert { flags, target_addr, lladdr } => {
            if dst.is_multicast() && flags.solicited() {
                return Err(PacketError::Invalid);
            }
            (NdKind::Advert { flags }, target_addr, lladdr)
        }
    };
    if target.is_multicast() {
        return Err(PacketError::Invalid);
    }
    if lladdr.is_some_and(|m| m.is_multicast()) {
        return Err(PacketError::BadSender);
    }
    Ok(NdInfo { kind, eth_src: eth.src_addr(), src, dst, target, lladdr })
}

/// Writes Ethernet + IPv6 + the ND message `repr` into `out` and returns the length.
fn build(
    out: &mut [u8],
    eth_src: EthernetAddress,
    eth_dst: EthernetAddress,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    repr: &NdiscRepr,
) -> Result<usize> {
    let icmp_len = repr.buffer_len();
    let len = ICMP_OFFSET + icmp_len;
    need(out, len)?;
    let frame = &mut out[..len];
    let mut eth = EthernetFrame::new_checked(&mut *frame)?;
    eth.set_dst_addr(eth_dst);
    eth.set_src_addr(eth_src);
    eth.set_ethertype(EtherType::IPV6);
    let ip = Ipv6Repr {
        src_addr: src,
        dst_addr: dst,
        next_header: IpProtocol::ICMPV6,
        payload_len: icmp_len,
        hop_limit: ND_HOP_LIMIT,
    };
    ip.emit(&mut Ipv6Packet::new_unchecked(&mut frame[ethernet::HEADER_LEN..ICMP_OFFSET]));
    repr.emit(src, dst, &mut Icmpv6Packet::new_unchecked(&mut frame[ICMP_OFFSET..]))?;
    Ok(len)
}

/// Turns a neighbour solicitation for an address we own (the caller checked with
/// [`crate::AddrTable::owner`]) into the solicited advertisement, in place, and returns
/// the length of the frame to send ([`ND_FRAME_LEN`], 86 bytes).
///
/// The answer goes from the target address and `our_mac` to the solicitor (its source
/// link-layer option, else the Ethernet source), with flags solicited and override
/// (router clear) and the target link-layer option. A DAD solicitation (from `::`) is
/// answered to all nodes (`ff02::1`, `33:33:00:00:00:01`) with the solicited flag
/// clear, as RFC 4861 7.2.4 requires. Hop limit 255; checksum computed.
///
/// The advertisement may be longer than the solicitation (a DAD solicitation has no
/// option: 78 bytes), so `frame` may extend past the received packet, e.g. over the
/// mbuf's tailroom: it must hold 86 bytes. Errors: those of [`classify`],
/// [`PacketError::WrongMessage`] for an advertisement, and
/// [`PacketError::BufferTooSmall`]; on error the frame is unchanged. Per packet: no
/// allocation, no panic.
pub fn advert_in_place(frame: &mut [u8], our_mac: EthernetAddress) -> Result<usize> {
    let info = classify(frame)?;
    if info.kind != NdKind::Solicit {
        return Err(PacketError::WrongMessage);
    }
    need(frame, ND_FRAME_LEN)?;
    let (dst, eth_dst, flags) = if info.is_dad() {
        (ALL_NODES, EthernetAddress::from_ipv6_multicast(ALL_NODES), NdiscFlags::OVERRIDE)
    } else {
        (info.src, info.lladdr.unwrap_or(info.eth_src), NdiscFlags::SOLICITED | NdiscFlags::OVERRIDE)
    };
    let na = NdiscRepr::NeighborAdvert { flags, target_addr: info.target, lladdr: Some(our_mac) };
    build(frame, our_mac, eth_dst, info.target, dst, &na)
}

/// Builds a multicast neighbour solicitation for `target` from `src_ip` (an address of
/// the port, [`crate::AddrTable::source_for`]) to the target's solicited-node address
/// and its `33:33:ff..` MAC, with the source link-layer option (omitted if `src_ip` is
/// `::`, as DAD requires). Returns the length (86, or 78 without the option). Error:
/// `out` too short.
pub fn build_solicit(out: &mut [u8], src_mac: EthernetAddress, src_ip: Ipv6Addr, target: Ipv6Addr) -> Result<usize> {
    let dst = solicited_node(target);
    let lladdr = if src_ip.is_unspecified() { None } else { Some(src_mac) };
    let ns = NdiscRepr::NeighborSolicit { target_addr: target, lladdr };
    build(out, src_mac, EthernetAddress::from_ipv6_multicast(dst), src_ip, dst, &ns)
}

/// Builds a unicast neighbour solicitation to a neighbour whose MAC we believe we know
/// (`target_mac`), to confirm a stale entry (RFC 4861 7.3.3 probe). Returns the length
/// (86). Error: `out` too short.
pub fn build_unicast_solicit(
    out: &mut [u8],
    src_mac: EthernetAddress,
    src_ip: Ipv6Addr,
    target: Ipv6Addr,
    target_mac: EthernetAddress,
) -> Result<usize> {
    let ns = NdiscRepr::NeighborSolicit { target_addr: target, lladdr: Some(src_mac) };
    build(out, src_mac, target_mac, src_ip, target, &ns)
}

/// Builds an unsolicited neighbour advertisement that `ip` is at `mac`, to all nodes,
/// with the override flag (so caches replace the old MAC: the IPv6 counterpart of a
/// gratuitous ARP after failover) and the target link-layer option. Returns the
/// length (86). Error: `out` too short.
pub fn build_unsolicited_na(out: &mut [u8], mac: EthernetAddress, ip: Ipv6Addr) -> Result<usize> {
    let na = NdiscRepr::NeighborAdvert { flags: NdiscFlags::OVERRIDE, target_addr: ip, lladdr: Some(mac) };
    build(out, mac, EthernetAddress::from_ipv6_multicast(ALL_NODES), ip, ALL_NODES, &na)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::parse_icmpv6_frame;
    use wire::builder::PacketBuilder;

    const HOST_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc]);

    fn a(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    /// A neighbour solicitation from 2001:db8::1 for 2001:db8::5, as a host sends it.
    fn solicit(src: &str, dst: &str, lladdr: Option<EthernetAddress>) -> Vec<u8> {
        let dst = a(dst);
        PacketBuilder::eth(HOST_MAC, EthernetAddress::from_ipv6_multicast(dst))
            .ipv6(a(src), dst)
            .neighbour_solicit(a("2001:db8::5"), lladdr)
            .build()
    }

    #[test]
    fn solicited_node_addresses() {
        assert_eq!(solicited_node(a("2001:db8::abcd:1234:5678")), a("ff02::1:ff34:5678"));
        assert!(is_solicited_node(&a("ff02::1:ff00:5")));
        assert!(!is_solicited_node(&a("ff02::1")));
        assert!(!is_solicited_node(&a("ff02::1:fe00:5")));
    }

    #[test]
    fn classify_a_solicitation() {
        let f = solicit("2001:db8::1", "ff02::1:ff00:5", Some(HOST_MAC));
        let i = classify(&f).unwrap();
        assert_eq!(i.kind, NdKind::Solicit);
        assert_eq!((i.src, i.dst, i.target), (a("2001:db8::1"), a("ff02::1:ff00:5"), a("2001:db8::5")));
        assert_eq!((i.lladdr, i.eth_src), (Some(HOST_MAC), HOST_MAC));
        assert!(!i.is_dad());
        assert_eq!(i.binding(), Some((a("2001:db8::1"), HOST_MAC)));
    }

    #[test]
    fn advert_in_place_answers_the_solicitor() {
        let mut f = solicit("2001:db8::1", "ff02::1:ff00:5", Some(HOST_MAC));
        assert_eq!(f.len(), ND_FRAME_LEN);
        let n = advert_in_place(&mut f, OUR_MAC).unwrap();
        assert_eq!(n, ND_FRAME_LEN);
        let (eth, ip, icmp) = parse_icmpv6_frame(&f[..n]);
        assert_eq!((eth.source, eth.destination), (OUR_MAC.0, HOST_MAC.0));
        assert_eq!(ip.hop_limit, 255);
        assert_eq!((ip.source, ip.destination), (a("2001:db8::5").octets(), a("2001:db8::1").octets()));
        assert_eq!((icmp.type_u8(), icmp.code_u8()), (136, 0));
        assert_eq!(icmp.bytes5to8(), [0x60, 0, 0, 0], "solicited + override, not router");
        // Target, then the target link-layer option with our MAC.
        assert_eq!(&icmp.payload()[..16], &a("2001:db8::5").octets());
        assert_eq!(&icmp.payload()[16..], &[2, 1, 0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc]);
        // And it is itself a valid advertisement.
        let i = classify(&f).unwrap();
        assert_eq!(i.kind, NdKind::Advert { flags: NdiscFlags::SOLICITED | NdiscFlags::OVERRIDE });
        assert_eq!(i.binding(), Some((a("2001:db8::5"), OUR_MAC)));
        assert_eq!(advert_in_place(&mut f, OUR_MAC), Err(PacketError::WrongMessage));
    }

    #[test]
    fn unicast_probe_without_option_goes_to_the_ethernet_source() {
        let mut f = solicit("2001:db8::1", "2001:db8::5", None);
        assert_eq!(f.len(), ND_FRAME_LEN - 8);
        assert_eq!(classify(&f).unwrap().binding(), None, "nothing to learn without the option");
        assert!(matches!(advert_in_place(&mut f, OUR_MAC), Err(PacketError::BufferTooSmall { need: 86, have: 78 })));
        f.resize(128, 0xee); // the mbuf's tailroom
        let n = advert_in_place(&mut f, OUR_MAC).unwrap();
        let (eth, ip, icmp) = parse_icmpv6_frame(&f[..n]);
        assert_eq!(eth.destination, HOST_MAC.0);
        assert_eq!(ip.destination, a("2001:db8::1").octets());
        assert_eq!(icmp.type_u8(), 136);
    }

    #[test]
    fn dad_is_answered_to_all_nodes_unsolicited() {
        let mut f = solicit("::", "ff02::1:ff00:5", None);
        let i = classify(&f).unwrap();
        assert!(i.is_dad());
        assert_eq!(i.binding(), None);
        f.resize(ND_FRAME_LEN, 0);
        let n = advert_in_place(&mut f, OUR_MAC).unwrap();
        let (eth, ip, icmp) = parse_icmpv6_frame(&f[..n]);
        assert_eq!(eth.destination, [0x33, 0x33, 0, 0, 0, 1]);
        assert_eq!((ip.source, ip.destination), (a("2001:db8::5").octets(), ALL_NODES.octets()));
        assert_eq!(icmp.bytes5to8(), [0x20, 0, 0, 0], "override only: solicited must be clear to ff02::1");
        assert!(classify(&f).is_ok(), "a valid advertisement to a multicast address");
    }

    #[test]
    fn validity_rules() {
        // Hop limit: a forwarded solicitation is ignored.
        let mut f = solicit("2001:db8::1", "ff02::1:ff00:5", Some(HOST_MAC));
        f[ethernet::HEADER_LEN + 7] = 64;
        assert_eq!(classify(&f), Err(PacketError::BadHopLimit(64)));
        assert_eq!(advert_in_place(&mut f, OUR_MAC), Err(PacketError::BadHopLimit(64)));
        // Checksum.
        let mut f = solicit("2001:db8::1", "ff02::1:ff00:5", Some(HOST_MAC));
        f[ICMP_OFFSET + 8] ^= 1;
        assert_eq!(classify(&f), Err(PacketError::Wire(wire::Error::Checksum)));
        // DAD must go to a solicited-node address and carry no option.
        assert_eq!(classify(&solicit("::", "ff02::1", None)), Err(PacketError::Invalid));
        assert_eq!(classify(&solicit("::", "ff02::1:ff00:5", Some(HOST_MAC))), Err(PacketError::Invalid));
        // Multicast source, multicast target.
        assert_eq!(classify(&solicit("ff02::2", "ff02::1:ff00:5", None)), Err(PacketError::BadSender));
        let f = PacketBuilder::eth(HOST_MAC, OUR_MAC)
            .ipv6(a("2001:db8::1"), a("2001:db8::5"))
            .neighbour_solicit(a("ff02::1"), Some(HOST_MAC))
            .build();
        assert_eq!(classify(&f), Err(PacketError::Invalid));
        // A solicited advertisement to a multicast address.
        let f = PacketBuilder::eth(HOST_MAC, OUR_MAC)
            .ipv6(a("2001:db8::1"), ALL_NODES)
            .neighbour_advert(NdiscFlags::SOLICITED, a("2001:db8::1"), Some(HOST_MAC))
            .build();
        assert_eq!(classify(&f), Err(PacketError::Invalid));
        // Other ICMPv6, other protocols.
        let f = PacketBuilder::eth(HOST_MAC, OUR_MAC)
            .ipv6(a("2001:db8::1"), a("2001:db8::5"))
            .icmpv6_echo_request(1, 1)
            .build();
        assert_eq!(classify(&f), Err(PacketError::WrongMessage));
        let f = PacketBuilder::eth(HOST_MAC, OUR_MAC).ipv6(a("2001:db8::1"), a("2001:db8::5")).udp(1, 2).build();
        assert_eq!(classify(&f), Err(PacketError::WrongProtocol));
        let f =
            PacketBuilder::eth(HOST_MAC, OUR_MAC).ipv4([10, 0, 0, 1].into(), [10, 0, 0, 2].into()).udp(1, 2).build();
        assert_eq!(classify(&f), Err(PacketError::WrongProtocol));
        assert_eq!(classify(&f[..20]), Err(PacketError::WrongProtocol));
        let f = solicit("2001:db8::1", "ff02::1:ff00:5", Some(HOST_MAC));
        assert_eq!(classify(&f[..80]), Err(PacketError::Wire(wire::Error::Truncated)));
    }

    #[test]
    fn build_solicit_to_the_solicited_node_group() {
        let mut out = [0u8; 128];
        let n = build_solicit(&mut out, OUR_MAC, a("2001:db8::5"), a("2001:db8::1:2:3")).unwrap();
        assert_eq!(n, ND_FRAME_LEN);
        let (eth, ip, icmp) = parse_icmpv6_frame(&out[..n]);
        assert_eq!((eth.source, eth.destination), (OUR_MAC.0, [0x33, 0x33, 0xff, 0x02, 0x00, 0x03]));
        assert_eq!(ip.destination, a("ff02::1:ff02:3").octets());
        assert_eq!(ip.hop_limit, 255);
        assert_eq!(icmp.type_u8(), 135);
        assert_eq!(&icmp.payload()[16..], &[1, 1, 0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc], "source link-layer option");
        let i = classify(&out[..n]).unwrap();
        assert_eq!((i.kind, i.target, i.lladdr), (NdKind::Solicit, a("2001:db8::1:2:3"), Some(OUR_MAC)));

        // DAD form: from ::, no option.
        let n = build_solicit(&mut out, OUR_MAC, Ipv6Addr::UNSPECIFIED, a("2001:db8::9")).unwrap();
        assert_eq!(n, ND_FRAME_LEN - 8);
        assert!(classify(&out[..n]).unwrap().is_dad());
        assert!(matches!(
            build_solicit(&mut out[..85], OUR_MAC, a("2001:db8::5"), a("2001:db8::1")),
            Err(PacketError::BufferTooSmall { need: 86, have: 85 })
        ));
    }

    #[test]
    fn build_unicast_solicit_to_a_known_mac() {
        let mut out = [0u8; 86];
        let n = build_unicast_solicit(&mut out, OUR_MAC, a("2001:db8::5"), a("2001:db8::1"), HOST_MAC).unwrap();
        let (eth, ip, icmp) = parse_icmpv6_frame(&out[..n]);
        assert_eq!(eth.destination, HOST_MAC.0);
        assert_eq!(ip.destination, a("2001:db8::1").octets());
        assert_eq!(icmp.type_u8(), 135);
        assert!(classify(&out).is_ok());
    }

    #[test]
    fn unsolicited_na_for_failover() {
        let mut out = [0u8; 86];
        let n = build_unsolicited_na(&mut out, OUR_MAC, a("2001:db8::100")).unwrap();
        let (eth, ip, icmp) = parse_icmpv6_frame(&out[..n]);
        assert_eq!((eth.source, eth.destination), (OUR_MAC.0, [0x33, 0x33, 0, 0, 0, 1]));
        assert_eq!((ip.source, ip.destination, ip.hop_limit), (a("2001:db8::100").octets(), ALL_NODES.octets(), 255));
        assert_eq!((icmp.type_u8(), icmp.bytes5to8()), (136, [0x20, 0, 0, 0]));
        let i = classify(&out).unwrap();
        assert_eq!(i.binding(), Some((a("2001:db8::100"), OUR_MAC)));
    }
}
