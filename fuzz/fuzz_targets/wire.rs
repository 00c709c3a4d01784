//! Every checked view of `wire` over the same bytes, and the chain a frame takes
//! (Ethernet, 802.1Q, ARP, IPv4, IPv6 and its extension headers, TCP with its options,
//! UDP, ICMPv4, ICMPv6/ND and the quoted packet of an ICMP error), and the connection
//! sync message (a UDP payload from a peer): constructors, accessors, `Repr::parse`,
//! option iterators, checksums. A checked view must never panic on its accessors; a TCP
//! option read must emit to the same bytes' meaning; a sync message that parses must
//! emit to the same bytes.
#![no_main]

use std::net::IpAddr;

use libfuzzer_sys::fuzz_target;
use wire::icmpv6::NdiscOptions;
use wire::tcp::TcpOptions;
use wire::{
    checksum, ipv6, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr, Icmpv4Packet, Icmpv6Packet, IpProtocol,
    Ipv4Packet, Ipv4Repr, Ipv6Packet, Ipv6Repr, NdiscRepr, TcpPacket, UdpPacket, VlanPacket,
};

fn tcp_options(data: &[u8]) {
    let mut it = TcpOptions::new(data);
    for o in it.by_ref() {
        let mut buf = [0u8; 300];
        if let Ok(n) = o.emit(&mut buf) {
            assert_eq!(n, o.buffer_len());
            let again = TcpOptions::new(&buf[..n]).next();
            assert_eq!(again, Some(o), "an option read must emit to itself");
        }
    }
    let _ = it.is_malformed();
}

fn tcp(d: &[u8], addrs: Option<(IpAddr, IpAddr)>) {
    let Ok(t) = TcpPacket::new_checked(d) else { return };
    let _ = (t.src_port(), t.dst_port(), t.seq_number(), t.ack_number(), t.header_len(), t.flags());
    let _ = (t.window_len(), t.checksum(), t.urgent_at(), t.mss(), t.find_option(2, 4), t.payload().len());
    let _ = format!("{:?} {}", t.flags(), t.flags());
    tcp_options(t.options());
    t.options_iter().for_each(drop);
    if let Some((s, d)) = addrs {
        let _ = (t.compute_checksum(s, d), t.verify_checksum(s, d));
    }
    let mut copy = d.to_vec();
    if let Ok(mut m) = TcpPacket::new_checked(&mut copy[..]) {
        let _ = m.rewrite_mss(1400);
    }
}

fn udp(d: &[u8], addrs: Option<(IpAddr, IpAddr)>) {
    let Ok(u) = UdpPacket::new_checked(d) else { return };
    let _ = (u.src_port(), u.dst_port(), u.len(), u.is_empty(), u.checksum(), u.payload().len());
    if let Some((s, d)) = addrs {
        let _ = (u.compute_checksum(s, d), u.verify_checksum(s, d));
    }
}

fn icmpv4(d: &[u8], depth: u32) {
    let Ok(p) = Icmpv4Packet::new_checked(d) else { return };
    let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident(), p.echo_seq_no(), p.next_hop_mtu());
    let _ = (p.pointer(), p.rest_of_header(), p.data().len(), p.verify_checksum(), format!("{:?}", p.msg_type()));
    if let Some(inner) = p.inner() {
        if depth < 2 {
            ip(inner, depth + 1);
        }
    }
}

fn icmpv6(d: &[u8], addrs: Option<(IpAddr, IpAddr)>, depth: u32) {
    let Ok(p) = Icmpv6Packet::new_checked(d) else { return };
    let _ = (p.msg_type(), p.msg_code(), p.checksum(), p.echo_ident(), p.echo_seq_no(), p.mtu(), p.pointer());
    let _ = (p.ndisc_flags(), p.target_addr(), p.data().len(), format!("{:?} {:?}", p.msg_type(), p.ndisc_flags()));
    let mut opts = p.ndisc_options();
    opts.by_ref().for_each(drop);
    let _ = opts.is_malformed();
    let _ = NdiscRepr::parse(&p);
    if let Some((IpAddr::V6(s), IpAddr::V6(d))) = addrs {
        let _ = (p.compute_checksum(s, d), p.verify_checksum(s, d));
    }
    if let Some(inner) = p.inner() {
        if depth < 2 {
            ip(inner, depth + 1);
        }
    }
}

fn upper(proto: IpProtocol, d: &[u8], addrs: Option<(IpAddr, IpAddr)>, depth: u32) {
    match proto {
        IpProtocol::TCP => tcp(d, addrs),
        IpProtocol::UDP => udp(d, addrs),
        IpProtocol::ICMP => icmpv4(d, depth),
        IpProtocol::ICMPV6 => icmpv6(d, addrs, depth),
        _ => {}
    }
}

fn ipv4(d: &[u8], depth: u32) {
    if let Ok(h) = Ipv4Packet::new_checked_header(d) {
        let _ = (h.version(), h.header_len(), h.total_len(), h.options().len(), h.header().len());
    }
    let Ok(p) = Ipv4Packet::new_checked(d) else { return };
    let _ = (p.version(), p.header_len(), p.dscp(), p.ecn(), p.total_len(), p.ident(), p.dont_frag());
    let _ = (p.more_frags(), p.frag_offset(), p.is_fragment(), p.ttl(), p.protocol(), p.checksum());
    let _ = (p.src_addr(), p.dst_addr(), p.options().len(), p.header().len(), p.verify_checksum());
    let _ = Ipv4Repr::parse(&p);
    let addrs = Some((IpAddr::V4(p.src_addr()), IpAddr::V4(p.dst_addr())));
    upper(p.protocol(), p.payload(), addrs, depth);
}

fn ipv6(d: &[u8], depth: u32) {
    if let Ok(h) = Ipv6Packet::new_checked_header(d) {
        let _ = (h.version(), h.payload_len(), h.next_header(), h.upper_layer());
    }
    let Ok(p) = Ipv6Packet::new_checked(d) else { return };
    let _ = (p.version(), p.traffic_class(), p.flow_label(), p.payload_len(), p.hop_limit());
    let _ = Ipv6Repr::parse(&p);
    let addrs = Some((IpAddr::V6(p.src_addr()), IpAddr::V6(p.dst_addr())));
    if let Ok(ul) = p.upper_layer() {
        let _ = (ul.is_fragment(), ul.has_fragment_header(), ul.fragment.map(|f| f.is_fragment()));
        assert!(ul.offset >= 40 && ul.offset <= d.len(), "upper layer outside the packet: {ul:?}");
        if !ul.is_fragment() || ul.fragment.is_some_and(|f| f.offset == 0) {
            upper(ul.protocol, &d[ul.offset..], addrs, depth);
        }
    }
}

fn ip(d: &[u8], depth: u32) {
    match d.first().map(|b| b >> 4) {
        Some(4) => ipv4(d, depth),
        Some(6) => ipv6(d, depth),
        _ => {}
    }
}

fn arp(d: &[u8]) {
    let Ok(a) = ArpPacket::new_checked(d) else { return };
    let _ = (a.hardware_type(), a.protocol_type(), a.hardware_len(), a.protocol_len(), a.operation());
    let _ = (a.source_hardware_addr(), a.source_protocol_addr(), a.target_hardware_addr(), a.target_protocol_addr());
    let _ = ArpRepr::parse(&a);
}

fn ethernet(d: &[u8]) {
    let Ok(f) = EthernetFrame::new_checked(d) else { return };
    let _ = (f.dst_addr(), f.src_addr(), format!("{} {:?}", f.ethertype(), f.ethertype()));
    let _ = EthernetRepr::parse(&f);
    let mut ethertype = f.ethertype();
    let mut payload = f.payload();
    // At most two tags (QinQ).
    for _ in 0..2 {
        if !ethertype.is_vlan() {
            break;
        }
        let Ok(v) = VlanPacket::new_checked(payload) else { return };
        let _ = (v.tci(), v.pcp(), v.dei(), v.vlan_id());
        ethertype = v.ethertype();
        assert_eq!(v.payload().len() + 4, payload.len());
        payload = &payload[4..];
    }
    match ethertype {
        EtherType::ARP => arp(payload),
        EtherType::IPV4 | EtherType::IPV6 => ip(payload, 0),
        _ => {}
    }
}

/// A sync message: what parses (header and every record) emits to the same bytes.
fn sync_message(d: &[u8]) {
    use wire::sync::{HeaderRepr, Message, RecordRepr, HEADER_LEN, RECORD_LEN};
    let Ok(m) = Message::new_checked(d) else { return };
    let h = HeaderRepr::parse(&m);
    let mut out = d.to_vec();
    h.emit(m.count() as usize, &mut out).expect("a parsed header emits");
    assert_eq!(&out[..HEADER_LEN], &d[..HEADER_LEN], "header round trip");
    let _ = (m.signed().len(), m.tag().len());
    for (i, r) in m.records().enumerate() {
        let Ok(r) = r else { continue };
        let mut b = [0u8; RECORD_LEN];
        r.emit(&mut b).expect("a parsed record emits");
        assert_eq!(RecordRepr::parse(&b), Ok(r), "record {i} round trip");
    }
}

fuzz_target!(|data: &[u8]| {
    sync_message(data);
    // The frame as received.
    ethernet(data);
    // Every view on the raw bytes too (the decoders are used at other offsets).
    arp(data);
    ip(data, 0);
    ipv4(data, 0);
    ipv6(data, 0);
    tcp(data, None);
    udp(data, None);
    icmpv4(data, 2);
    icmpv6(data, None, 2);
    tcp_options(data);
    let mut nd = NdiscOptions::new(data);
    nd.by_ref().for_each(drop);
    let _ = nd.is_malformed();
    if let Some((&first, rest)) = data.split_first() {
        let _ = ipv6::walk_ext_headers(IpProtocol(first), rest, 40);
    }
    // Checksums: the incremental update agrees with a full recomputation.
    if data.len() >= 8 {
        let (old, new) = (u16::from_be_bytes([data[0], data[1]]), u16::from_be_bytes([data[2], data[3]]));
        let mut buf = data.to_vec();
        buf[4..6].copy_from_slice(&[0, 0]);
        buf[6..8].copy_from_slice(&old.to_be_bytes());
        let with_old = checksum::checksum(&buf);
        buf[6..8].copy_from_slice(&new.to_be_bytes());
        let with_new = checksum::checksum(&buf);
        let updated = checksum::update16(with_old, old, new);
        // RFC 1624: equal modulo the two representations of zero.
        assert!(
            updated == with_new || (updated == 0xffff && with_new == 0) || (updated == 0 && with_new == 0xffff),
            "update16({with_old:#06x}, {old:#06x}, {new:#06x}) = {updated:#06x}, full = {with_new:#06x}"
        );
    }
});
