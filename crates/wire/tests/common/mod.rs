//! An independent reading of packets with etherparse 0.16, checksums verified.

#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use etherparse::{LinkSlice, NetSlice, SlicedPacket, TransportSlice, VlanSlice};

/// What etherparse saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub vlan_ids: Vec<u16>,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
    pub fragmented: bool,
    pub l4: L4,
}

/// The transport layer etherparse saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum L4 {
    Tcp { sport: u16, dport: u16, seq: u32, ack: u32, syn: bool, ack_flag: bool, options: Vec<u8>, payload: Vec<u8> },
    Udp { sport: u16, dport: u16, checksum: u16, payload: Vec<u8> },
    Icmpv4 { ty: u8, code: u8, rest: [u8; 4], payload: Vec<u8> },
    Icmpv6 { ty: u8, code: u8, rest: [u8; 4], payload: Vec<u8> },
    None,
}

/// Parses `data` (an Ethernet frame if `ethernet`, else a bare IP packet) with
/// etherparse, asserting that every checksum present is correct.
pub fn etherparse_check(data: &[u8], ethernet: bool) -> Seen {
    let sp = if ethernet { SlicedPacket::from_ethernet(data) } else { SlicedPacket::from_ip(data) }
        .unwrap_or_else(|e| panic!("etherparse refused the packet: {e:?}\n{data:02x?}"));
    if ethernet {
        assert!(matches!(sp.link, Some(LinkSlice::Ethernet2(_))));
    }
    let vlan_ids = match &sp.vlan {
        None => vec![],
        Some(VlanSlice::SingleVlan(v)) => vec![v.vlan_identifier().value()],
        Some(VlanSlice::DoubleVlan(v)) => {
            vec![v.outer().vlan_identifier().value(), v.inner().vlan_identifier().value()]
        }
    };
    let (src, dst, ttl, fragmented, s4, d4, s6, d6) = match sp.net.as_ref().expect("no IP layer") {
        NetSlice::Ipv4(v4) => {
            let h = v4.header();
            let hdr = h.to_header();
            assert_eq!(hdr.calc_header_checksum(), h.header_checksum(), "IPv4 header checksum");
            let (s, d) = (h.source(), h.destination());
            (
                IpAddr::V4(Ipv4Addr::from(s)),
                IpAddr::V4(Ipv4Addr::from(d)),
                h.ttl(),
                v4.is_payload_fragmented(),
                s,
                d,
                [0; 16],
                [0; 16],
            )
        }
        NetSlice::Ipv6(v6) => {
            let h = v6.header();
            let (s, d) = (h.source(), h.destination());
            (
                IpAddr::V6(Ipv6Addr::from(s)),
                IpAddr::V6(Ipv6Addr::from(d)),
                h.hop_limit(),
                v6.is_payload_fragmented(),
                [0; 4],
                [0; 4],
                s,
                d,
            )
        }
    };
    let v4 = src.is_ipv4();
    let l4 = match &sp.transport {
        None => L4::None,
        Some(TransportSlice::Tcp(t)) => {
            let c = if v4 { t.calc_checksum_ipv4(s4, d4) } else { t.calc_checksum_ipv6(s6, d6) }.unwrap();
            assert_eq!(c, t.checksum(), "TCP checksum");
            L4::Tcp {
                sport: t.source_port(),
                dport: t.destination_port(),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
                syn: t.syn(),
                ack_flag: t.ack(),
                options: t.options().to_vec(),
                payload: t.payload().to_vec(),
            }
        }
        Some(TransportSlice::Udp(u)) => {
            let h = u.to_header();
            if !(v4 && h.checksum == 0) {
                let c = if v4 {
                    h.calc_checksum_ipv4_raw(s4, d4, u.payload())
                } else {
                    h.calc_checksum_ipv6_raw(s6, d6, u.payload())
                }
                .unwrap();
                assert_eq!(c, h.checksum, "UDP checksum");
            }
            L4::Udp {
                sport: h.source_port,
                dport: h.destination_port,
                checksum: h.checksum,
                payload: u.payload().to_vec(),
            }
        }
        Some(TransportSlice::Icmpv4(i)) => {
            let h = i.header();
            assert_eq!(h.icmp_type.calc_checksum(i.payload()), h.checksum, "ICMPv4 checksum");
            L4::Icmpv4 { ty: i.type_u8(), code: i.code_u8(), rest: i.bytes5to8(), payload: i.payload().to_vec() }
        }
        Some(TransportSlice::Icmpv6(i)) => {
            assert!(i.is_checksum_valid(s6, d6), "ICMPv6 checksum");
            L4::Icmpv6 { ty: i.type_u8(), code: i.code_u8(), rest: i.bytes5to8(), payload: i.payload().to_vec() }
        }
    };
    Seen { vlan_ids, src, dst, ttl, fragmented, l4 }
}
