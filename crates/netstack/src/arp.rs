//! ARP (RFC 826) on untagged Ethernet II frames: classify what arrived, answer a
//! request for an owned address in place, and build requests and gratuitous ARP.
//!
//! Frames start at the Ethernet header and have no VLAN tag (a tagged frame is
//! [`PacketError::WrongProtocol`]); Ethernet padding after the 28-byte ARP packet is
//! ignored. Built frames are padded to [`MIN_FRAME_LEN`] (60 bytes, the Ethernet
//! minimum without the FCS).

use std::net::Ipv4Addr;

use wire::ethernet::{self, EtherType};
use wire::{arp, ArpOperation, ArpPacket, ArpRepr, EthernetAddress, EthernetFrame};

use crate::error::{need, PacketError, Result};

/// The shortest Ethernet frame without FCS; built frames are padded to it.
pub const MIN_FRAME_LEN: usize = 60;

/// Where the ARP packet starts in an untagged frame.
const ARP_OFFSET: usize = ethernet::HEADER_LEN;

/// What an ARP packet says, for the caller to decide: answer it (a request for an
/// address we own), learn from it (the sender's binding), or pass it on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpInfo {
    /// Request, reply or another operation.
    pub op: ArpOperation,
    /// The sender's MAC (the binding to learn, with `sender_ip`).
    pub sender_mac: EthernetAddress,
    /// The sender's IPv4 address (`0.0.0.0` in an address probe, RFC 5227).
    pub sender_ip: Ipv4Addr,
    /// The target MAC (zero, or anything, in a request).
    pub target_mac: EthernetAddress,
    /// The address asked about (request) or answered to (reply).
    pub target_ip: Ipv4Addr,
    /// Sender and target IP are the same (and not `0.0.0.0`): an announcement such as
    /// the one a VRRP master sends when it takes over an address.
    pub gratuitous: bool,
}

impl ArpInfo {
    /// Whether this is an address probe (RFC 5227: a request from `0.0.0.0`): answer it
    /// if we own the target, but learn nothing from it.
    pub fn is_probe(&self) -> bool {
        self.op == ArpOperation::Request && self.sender_ip.is_unspecified()
    }
}

/// Reads an ARP frame. Errors: not ARP ([`PacketError::WrongProtocol`]), too short or
/// not Ethernet/IPv4 ARP ([`PacketError::Wire`]), a sender that cannot be answered or
/// learned (multicast or zero MAC; multicast, broadcast or loopback IP:
/// [`PacketError::BadSender`]). Per packet: no allocation, no panic.
pub fn classify(frame: &[u8]) -> Result<ArpInfo> {
    let eth = EthernetFrame::new_checked(frame)?;
    if eth.ethertype() != EtherType::ARP {
        return Err(PacketError::WrongProtocol);
    }
    let r = ArpRepr::parse(&ArpPacket::new_checked(eth.payload())?)?;
    let (smac, sip) = (r.source_hardware_addr, r.source_protocol_addr);
    if smac.is_multicast() || smac == EthernetAddress::UNSPECIFIED {
        return Err(PacketError::BadSender);
    }
    if sip.is_multicast() || sip.is_broadcast() || sip.is_loopback() {
        return Err(PacketError::BadSender);
    }
    Ok(ArpInfo {
        op: r.operation,
        sender_mac: smac,
        sender_ip: sip,
        target_mac: r.target_hardware_addr,
        target_ip: r.target_protocol_addr,
        gratuitous: sip == r.target_protocol_addr && !sip.is_unspecified(),
    })
}

/// Turns an ARP request into the reply for its target address, in place: operation
/// reply, our MAC and the target address as sender, the requester as target; Ethernet
/// from us to the requester. The caller has checked that we own the target address
/// ([`crate::AddrTable::owner`]). The frame keeps its length (the NIC pads a short
/// frame on transmit). A probe (sender `0.0.0.0`) is answered the way Linux does: to
/// the prober's MAC, target IP `0.0.0.0`.
///
/// Errors: those of [`classify`], [`PacketError::WrongMessage`] if it is not a
/// request, and [`PacketError::Invalid`] if the target is no unicast address (no
/// host owns one; answering would send a reply no peer may learn). On error the frame
/// is unchanged. Per packet: no allocation, no panic.
pub fn reply_in_place(frame: &mut [u8], our_mac: EthernetAddress) -> Result<()> {
    let info = classify(frame)?;
    if info.op != ArpOperation::Request {
        return Err(PacketError::WrongMessage);
    }
    let t = info.target_ip;
    if t.is_multicast() || t.is_broadcast() || t.is_loopback() || t.is_unspecified() {
        return Err(PacketError::Invalid);
    }
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        source_hardware_addr: our_mac,
        source_protocol_addr: info.target_ip,
        target_hardware_addr: info.sender_mac,
        target_protocol_addr: info.sender_ip,
    };
    let body = frame.get_mut(ARP_OFFSET..).ok_or(wire::Error::Truncated)?;
    reply.emit(&mut ArpPacket::new_checked(body)?);
    let mut eth = EthernetFrame::new_checked(frame)?;
    eth.set_dst_addr(info.sender_mac);
    eth.set_src_addr(our_mac);
    Ok(())
}

/// Writes a padded ARP frame from `eth_src` to `eth_dst` carrying `repr`.
fn build(out: &mut [u8], eth_src: EthernetAddress, eth_dst: EthernetAddress, repr: &ArpRepr) -> Result<usize> {
    need(out, MIN_FRAME_LEN)?;
    let frame = &mut out[..MIN_FRAME_LEN];
    frame.fill(0);
    let mut eth = EthernetFrame::new_checked(&mut *frame)?;
    eth.set_dst_addr(eth_dst);
    eth.set_src_addr(eth_src);
    eth.set_ethertype(EtherType::ARP);
    repr.emit(&mut ArpPacket::new_checked(&mut frame[ARP_OFFSET..ARP_OFFSET + arp::PACKET_LEN])?);
    Ok(MIN_FRAME_LEN)
}

/// Builds a broadcast "who has `target_ip`? tell `src_ip`" request into `out` and
/// returns its length (60). `src_ip` is the port's address on the target's subnet
/// ([`crate::AddrTable::source_for`]). Error: `out` shorter than 60 bytes.
pub fn build_request(out: &mut [u8], src_mac: EthernetAddress, src_ip: Ipv4Addr, target_ip: Ipv4Addr) -> Result<usize> {
    let repr = ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: src_mac,
        source_protocol_addr: src_ip,
        target_hardware_addr: EthernetAddress::UNSPECIFIED,
        target_protocol_addr: target_ip,
    };
    build(out, src_mac, EthernetAddress::BROADCAST, &repr)
}

/// Builds a unicast request to a neighbour whose MAC we believe we know (`target_mac`),
/// to confirm a stale entry without bothering the whole segment, as Linux does. Returns
/// the length (60). Error: `out` shorter than 60 bytes.
pub fn build_unicast_request(
    out: &mut [u8],
    src_mac: EthernetAddress,
    src_ip: Ipv4Addr,
    target_ip: Ipv4Addr,
    target_mac: EthernetAddress,
) -> Result<usize> {
    let repr = ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: src_mac,
        source_protocol_addr: src_ip,
        target_hardware_addr: EthernetAddress::UNSPECIFIED,
        target_protocol_addr: target_ip,
    };
    build(out, src_mac, target_mac, &repr)
}

/// Builds a gratuitous ARP announcing that `ip` is at `mac`, in the request form
/// keepalived sends on failover (broadcast; sender and target IP both `ip`; target
/// MAC broadcast), so that switches and hosts update their tables. Returns the length
/// (60). Error: `out` shorter than 60 bytes.
pub fn build_gratuitous(out: &mut [u8], mac: EthernetAddress, ip: Ipv4Addr) -> Result<usize> {
    let repr = ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: ip,
        target_hardware_addr: EthernetAddress::BROADCAST,
        target_protocol_addr: ip,
    };
    build(out, mac, EthernetAddress::BROADCAST, &repr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::{EtherType as EpEtherType, Ethernet2Header};
    use wire::builder::PacketBuilder;

    const CLIENT_MAC: EthernetAddress = EthernetAddress([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]);
    const OUR_MAC: EthernetAddress = EthernetAddress([0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc]);

    /// "Who has 10.0.0.5? Tell 10.0.0.1", broadcast, padded to 60 bytes as it arrives.
    #[rustfmt::skip]
    const REQUEST: [u8; 60] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 1,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 10, 0, 0, 5,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    /// The reply we must send: 10.0.0.5 is at 02:00:00:aa:bb:cc.
    #[rustfmt::skip]
    const REPLY: [u8; 60] = [
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc, 0x08, 0x06,
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02,
        0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc, 10, 0, 0, 5,
        0x52, 0x54, 0x00, 0x12, 0x34, 0x56, 10, 0, 0, 1,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ];

    fn eth_header(frame: &[u8]) -> Ethernet2Header {
        Ethernet2Header::from_slice(frame).unwrap().0
    }

    #[test]
    fn classify_a_request() {
        let i = classify(&REQUEST).unwrap();
        assert_eq!(i.op, ArpOperation::Request);
        assert_eq!((i.sender_mac, i.sender_ip), (CLIENT_MAC, Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(i.target_ip, Ipv4Addr::new(10, 0, 0, 5));
        assert!(!i.gratuitous && !i.is_probe());
        // Unpadded (as a kernel tap delivers it) is fine too.
        assert_eq!(classify(&REQUEST[..42]).unwrap(), i);
        assert_eq!(classify(&REQUEST[..41]), Err(PacketError::Wire(wire::Error::Truncated)));
    }

    #[test]
    fn reply_in_place_matches_the_literal_reply() {
        let mut f = REQUEST;
        reply_in_place(&mut f, OUR_MAC).unwrap();
        assert_eq!(f, REPLY);
        let eth = eth_header(&f);
        assert_eq!(eth.ether_type, EpEtherType::ARP);
        assert_eq!((eth.source, eth.destination), (OUR_MAC.0, CLIENT_MAC.0));
        let i = classify(&f).unwrap();
        assert_eq!((i.op, i.sender_ip, i.sender_mac), (ArpOperation::Reply, Ipv4Addr::new(10, 0, 0, 5), OUR_MAC));
        // A reply is not answered.
        assert_eq!(reply_in_place(&mut f, OUR_MAC), Err(PacketError::WrongMessage));
        assert_eq!(f, REPLY, "unchanged on error");
    }

    #[test]
    fn reply_to_a_builder_made_request() {
        let req = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: CLIENT_MAC,
            source_protocol_addr: Ipv4Addr::new(192, 168, 1, 9),
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: Ipv4Addr::new(192, 168, 1, 1),
        };
        let mut f = PacketBuilder::eth(CLIENT_MAC, EthernetAddress::BROADCAST).arp(req).build();
        assert_eq!(f.len(), 42);
        reply_in_place(&mut f, OUR_MAC).unwrap();
        let eth = eth_header(&f);
        assert_eq!((eth.source, eth.destination, eth.ether_type), (OUR_MAC.0, CLIENT_MAC.0, EpEtherType::ARP));
        let i = classify(&f).unwrap();
        assert_eq!(i.target_ip, Ipv4Addr::new(192, 168, 1, 9));
        assert_eq!(i.target_mac, CLIENT_MAC);
    }

    #[test]
    fn probes_are_answered_like_linux() {
        let mut f = REQUEST;
        f[28..32].copy_from_slice(&[0, 0, 0, 0]);
        let i = classify(&f).unwrap();
        assert!(i.is_probe() && !i.gratuitous);
        reply_in_place(&mut f, OUR_MAC).unwrap();
        assert_eq!(&f[0..6], &CLIENT_MAC.0);
        assert_eq!(&f[38..42], &[0, 0, 0, 0]);
    }

    #[test]
    fn refusals() {
        let mut f = REQUEST;
        f[12..14].copy_from_slice(&[0x08, 0x00]);
        assert_eq!(classify(&f), Err(PacketError::WrongProtocol));
        let mut f = REQUEST;
        f[12..14].copy_from_slice(&[0x81, 0x00]);
        assert_eq!(classify(&f), Err(PacketError::WrongProtocol), "VLAN tags are not handled");
        let mut f = REQUEST;
        f[19] = 16;
        assert_eq!(classify(&f), Err(PacketError::Wire(wire::Error::Unsupported)));
        let mut f = REQUEST;
        f[22] = 0x01; // multicast sender MAC
        assert_eq!(classify(&f), Err(PacketError::BadSender));
        let mut f = REQUEST;
        f[28..32].copy_from_slice(&[255, 255, 255, 255]);
        assert_eq!(classify(&f), Err(PacketError::BadSender));
        let mut f = REQUEST;
        f[28..32].copy_from_slice(&[224, 0, 0, 1]);
        assert_eq!(reply_in_place(&mut f, OUR_MAC), Err(PacketError::BadSender));
        for target in [[127, 0, 0, 5], [224, 0, 0, 1], [255, 255, 255, 255], [0, 0, 0, 0]] {
            let mut f = REQUEST;
            f[38..42].copy_from_slice(&target);
            let before = f;
            assert_eq!(reply_in_place(&mut f, OUR_MAC), Err(PacketError::Invalid), "target {target:?}");
            assert_eq!(f, before, "unchanged");
        }
        assert_eq!(classify(&[]), Err(PacketError::Wire(wire::Error::Truncated)));
    }

    #[test]
    fn build_request_is_a_padded_broadcast() {
        let mut out = [0xeeu8; 64];
        let n = build_request(&mut out, OUR_MAC, Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 1)).unwrap();
        assert_eq!(n, 60);
        #[rustfmt::skip]
        let want: [u8; 60] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc, 0x08, 0x06,
            0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01,
            0x02, 0x00, 0x00, 0xaa, 0xbb, 0xcc, 10, 0, 0, 5,
            0, 0, 0, 0, 0, 0, 10, 0, 0, 1,
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(out[..60], want);
        assert_eq!(out[60..], [0xee; 4], "nothing written past the frame");
        let eth = eth_header(&out);
        assert_eq!((eth.destination, eth.ether_type), ([0xff; 6], EpEtherType::ARP));
        assert_eq!(
            build_request(&mut out[..59], OUR_MAC, Ipv4Addr::new(10, 0, 0, 5), Ipv4Addr::new(10, 0, 0, 1)),
            Err(PacketError::BufferTooSmall { need: 60, have: 59 })
        );
    }

    #[test]
    fn unicast_request_goes_to_the_known_mac() {
        let mut out = [0u8; 60];
        let n = build_unicast_request(
            &mut out,
            OUR_MAC,
            Ipv4Addr::new(10, 0, 0, 5),
            Ipv4Addr::new(10, 0, 0, 1),
            CLIENT_MAC,
        )
        .unwrap();
        assert_eq!(n, 60);
        assert_eq!(eth_header(&out).destination, CLIENT_MAC.0);
        let i = classify(&out).unwrap();
        assert_eq!(
            (i.op, i.target_ip, i.target_mac),
            (ArpOperation::Request, Ipv4Addr::new(10, 0, 0, 1), EthernetAddress::UNSPECIFIED)
        );
    }

    #[test]
    fn gratuitous_arp_like_keepalived() {
        let vip = Ipv4Addr::new(192, 168, 10, 100);
        let mut out = [0u8; 60];
        assert_eq!(build_gratuitous(&mut out, OUR_MAC, vip).unwrap(), 60);
        let eth = eth_header(&out);
        assert_eq!((eth.source, eth.destination, eth.ether_type), (OUR_MAC.0, [0xff; 6], EpEtherType::ARP));
        let i = classify(&out).unwrap();
        assert!(i.gratuitous);
        assert_eq!(i.op, ArpOperation::Request);
        assert_eq!(
            (i.sender_ip, i.target_ip, i.sender_mac, i.target_mac),
            (vip, vip, OUR_MAC, EthernetAddress::BROADCAST)
        );
        assert_eq!(out[42..], [0u8; 18]);
        assert!(build_gratuitous(&mut [0u8; 10], OUR_MAC, vip).is_err());
    }
}
