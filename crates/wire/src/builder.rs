//! A fluent builder of valid packets, for tests and tools (feature `builder`).
//!
//! It allocates and panics on nonsense (e.g. ICMPv6 over IPv4, more than 40 bytes of
//! options): never use it on the fast path. Lengths and checksums come out right
//! unless asked otherwise ([`UdpBuilder::no_checksum`], [`TcpBuilder::checksum`]).
//!
//! Stages follow the layers: [`PacketBuilder::eth`] gives an [`EthBuilder`] (VLAN tags,
//! padding, ARP), whose `ipv4`/`ipv6` give an [`IpBuilder`] (TTL, flags, options,
//! IPv6 extension headers), whose `tcp`/`udp`/ICMP methods give the last stage with
//! its own fields, a payload and `build()`. [`PacketBuilder::ipv4`] and
//! [`PacketBuilder::ipv6`] start without Ethernet and build a bare IP packet.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use wire::builder::PacketBuilder;
//! use wire::{EthernetAddress, EthernetFrame, TcpFlags};
//!
//! let mac1 = EthernetAddress([2, 0, 0, 0, 0, 1]);
//! let mac2 = EthernetAddress([2, 0, 0, 0, 0, 2]);
//! let frame = PacketBuilder::eth(mac1, mac2)
//!     .vlan(10)
//!     .ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
//!     .ttl(64)
//!     .dont_frag()
//!     .tcp(40000, 80)
//!     .seq(1)
//!     .ack(2)
//!     .flags(TcpFlags::SYN)
//!     .window(65535)
//!     .mss(1460)
//!     .payload(b"hello")
//!     .build();
//! assert_eq!(frame.len(), 14 + 4 + 20 + 24 + 5);
//! let eth = EthernetFrame::new_checked(&frame[..]).unwrap();
//! assert_eq!(eth.src_addr(), mac1);
//!
//! // A bare IPv6 UDP packet.
//! let ip = PacketBuilder::ipv6("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
//!     .udp(5353, 53)
//!     .payload(b"q")
//!     .build();
//! assert_eq!(ip.len(), 40 + 8 + 1);
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::arp::{self, ArpRepr};
use crate::ethernet::{self, EtherType};
use crate::icmpv4;
use crate::icmpv6::{self, NdiscFlags, NdiscRepr};
use crate::ip::IpProtocol;
use crate::ipv4;
use crate::ipv6;
use crate::tcp::{self, TcpFlags, TcpOption};
use crate::udp;
use crate::EthernetAddress;

/// Where packets start: with Ethernet ([`PacketBuilder::eth`]) or bare IP.
#[derive(Debug, Clone, Copy)]
pub struct PacketBuilder;

impl PacketBuilder {
    /// An Ethernet frame from `src` to `dst`.
    pub fn eth(src: EthernetAddress, dst: EthernetAddress) -> EthBuilder {
        EthBuilder { src, dst, tags: Vec::new(), pad_to: 0 }
    }

    /// A bare IPv4 packet (no Ethernet header).
    pub fn ipv4(src: Ipv4Addr, dst: Ipv4Addr) -> IpBuilder {
        IpBuilder::new(None, IpHeader::v4(src, dst))
    }

    /// A bare IPv6 packet (no Ethernet header).
    pub fn ipv6(src: Ipv6Addr, dst: Ipv6Addr) -> IpBuilder {
        IpBuilder::new(None, IpHeader::v6(src, dst))
    }
}

/// The Ethernet stage.
#[derive(Debug, Clone)]
pub struct EthBuilder {
    src: EthernetAddress,
    dst: EthernetAddress,
    tags: Vec<(EtherType, u16)>,
    pad_to: usize,
}

impl EthBuilder {
    /// Adds an 802.1Q tag with VLAN id `id` (tags appear in the order added).
    pub fn vlan(mut self, id: u16) -> Self {
        self.tags.push((EtherType::VLAN, id));
        self
    }

    /// Adds an 802.1ad (QinQ outer) tag with VLAN id `id`.
    pub fn qinq(mut self, id: u16) -> Self {
        self.tags.push((EtherType::QINQ, id));
        self
    }

    /// Pads the frame with zeros to at least `len` bytes (e.g. 60, the Ethernet
    /// minimum without FCS), as a NIC would deliver a short frame.
    pub fn pad_to(mut self, len: usize) -> Self {
        self.pad_to = len;
        self
    }

    /// Continues with an IPv4 header.
    pub fn ipv4(self, src: Ipv4Addr, dst: Ipv4Addr) -> IpBuilder {
        IpBuilder::new(Some(self), IpHeader::v4(src, dst))
    }

    /// Continues with an IPv6 header.
    pub fn ipv6(self, src: Ipv6Addr, dst: Ipv6Addr) -> IpBuilder {
        IpBuilder::new(Some(self), IpHeader::v6(src, dst))
    }

    /// Finishes with an ARP packet.
    pub fn arp(self, repr: ArpRepr) -> RawBuilder {
        let mut b = vec![0u8; arp::PACKET_LEN];
        repr.emit(&mut arp::Packet::new_unchecked(&mut b[..]));
        RawBuilder { lower: Lower::Eth(self, EtherType::ARP), data: b }
    }

    /// Finishes with an arbitrary EtherType; add bytes with [`RawBuilder::payload`].
    pub fn ethertype(self, t: EtherType) -> RawBuilder {
        RawBuilder { lower: Lower::Eth(self, t), data: Vec::new() }
    }

    /// Wraps `l3` (an IP packet or ARP, of EtherType `t`) in this header.
    fn wrap(&self, t: EtherType, l3: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; ethernet::HEADER_LEN];
        {
            let mut f = ethernet::Frame::new_unchecked(&mut out[..]);
            f.set_src_addr(self.src);
            f.set_dst_addr(self.dst);
            f.set_ethertype(self.tags.first().map_or(t, |&(tpid, _)| tpid));
        }
        for (i, &(_, id)) in self.tags.iter().enumerate() {
            let next = self.tags.get(i + 1).map_or(t, |&(tpid, _)| tpid);
            let mut tag = [0u8; 4];
            let mut v = crate::vlan::Packet::new_unchecked(&mut tag[..]);
            v.set_vlan_id(id);
            v.set_ethertype(next);
            out.extend_from_slice(&tag);
        }
        out.extend_from_slice(l3);
        if out.len() < self.pad_to {
            out.resize(self.pad_to, 0);
        }
        out
    }
}

/// The IP header being built.
#[derive(Debug, Clone)]
enum IpHeader {
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        ttl: u8,
        ident: u16,
        dont_frag: bool,
        more_frags: bool,
        frag_offset: u16,
        dscp: u8,
        options: Vec<u8>,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        traffic_class: u8,
        /// Extension headers: (type, bytes with the next-header byte left 0).
        ext: Vec<(IpProtocol, Vec<u8>)>,
    },
}

impl IpHeader {
    fn v4(src: Ipv4Addr, dst: Ipv4Addr) -> IpHeader {
        IpHeader::V4 {
            src,
            dst,
            ttl: 64,
            ident: 0,
            dont_frag: false,
            more_frags: false,
            frag_offset: 0,
            dscp: 0,
            options: Vec::new(),
        }
    }

    fn v6(src: Ipv6Addr, dst: Ipv6Addr) -> IpHeader {
        IpHeader::V6 { src, dst, hop_limit: 64, traffic_class: 0, ext: Vec::new() }
    }

    fn addrs(&self) -> (IpAddr, IpAddr) {
        match self {
            IpHeader::V4 { src, dst, .. } => ((*src).into(), (*dst).into()),
            IpHeader::V6 { src, dst, .. } => ((*src).into(), (*dst).into()),
        }
    }

    /// The IP packet around `payload` of protocol `proto`.
    fn wrap(&self, proto: IpProtocol, payload: &[u8]) -> Vec<u8> {
        match self {
            IpHeader::V4 { src, dst, ttl, ident, dont_frag, more_frags, frag_offset, dscp, options } => {
                let hl = ipv4::HEADER_LEN + options.len();
                let mut out = vec![0u8; hl];
                out.extend_from_slice(payload);
                let total = u16::try_from(out.len()).expect("IPv4 packet longer than 65535 bytes");
                let mut p = ipv4::Packet::new_unchecked(&mut out[..]);
                p.set_version(4);
                p.set_header_len(hl);
                p.set_dscp(*dscp);
                p.set_total_len(total);
                p.set_ident(*ident);
                p.set_dont_frag(*dont_frag);
                p.set_more_frags(*more_frags);
                p.set_frag_offset(*frag_offset);
                p.set_ttl(*ttl);
                p.set_protocol(proto);
                p.set_src_addr(*src);
                p.set_dst_addr(*dst);
                p.options_mut().copy_from_slice(options);
                p.fill_checksum();
                out
            }
            IpHeader::V6 { src, dst, hop_limit, traffic_class, ext } => {
                let mut out = vec![0u8; ipv6::HEADER_LEN];
                for (i, (_, bytes)) in ext.iter().enumerate() {
                    let next = ext.get(i + 1).map_or(proto, |(k, _)| *k);
                    let start = out.len();
                    out.extend_from_slice(bytes);
                    out[start] = next.0;
                }
                out.extend_from_slice(payload);
                let plen = u16::try_from(out.len() - ipv6::HEADER_LEN).expect("IPv6 payload longer than 65535 bytes");
                let first = ext.first().map_or(proto, |(k, _)| *k);
                let mut p = ipv6::Packet::new_unchecked(&mut out[..]);
                p.set_version_tc_flow(*traffic_class, 0);
                p.set_payload_len(plen);
                p.set_next_header(first);
                p.set_hop_limit(*hop_limit);
                p.set_src_addr(*src);
                p.set_dst_addr(*dst);
                out
            }
        }
    }
}

/// The IP stage.
#[derive(Debug, Clone)]
pub struct IpBuilder {
    eth: Option<EthBuilder>,
    ip: IpHeader,
}

impl IpBuilder {
    fn new(eth: Option<EthBuilder>, ip: IpHeader) -> IpBuilder {
        IpBuilder { eth, ip }
    }

    /// Sets the TTL (IPv4) or hop limit (IPv6); 64 by default.
    pub fn ttl(mut self, v: u8) -> Self {
        match &mut self.ip {
            IpHeader::V4 { ttl, .. } => *ttl = v,
            IpHeader::V6 { hop_limit, .. } => *hop_limit = v,
        }
        self
    }

    /// Same as [`IpBuilder::ttl`].
    pub fn hop_limit(self, v: u8) -> Self {
        self.ttl(v)
    }

    /// Sets the DSCP (IPv4) or traffic class (IPv6).
    pub fn dscp(mut self, v: u8) -> Self {
        match &mut self.ip {
            IpHeader::V4 { dscp, .. } => *dscp = v,
            IpHeader::V6 { traffic_class, .. } => *traffic_class = v << 2,
        }
        self
    }

    /// Sets the IPv4 identification. Panics for IPv6.
    pub fn ident(mut self, v: u16) -> Self {
        match &mut self.ip {
            IpHeader::V4 { ident, .. } => *ident = v,
            IpHeader::V6 { .. } => panic!("ident() is for IPv4; use ipv6_fragment()"),
        }
        self
    }

    /// Sets IPv4 "don't fragment". Panics for IPv6.
    pub fn dont_frag(mut self) -> Self {
        match &mut self.ip {
            IpHeader::V4 { dont_frag, .. } => *dont_frag = true,
            IpHeader::V6 { .. } => panic!("dont_frag() is for IPv4"),
        }
        self
    }

    /// Makes an IPv4 fragment: "more fragments" and the offset in bytes (a multiple
    /// of 8). Panics for IPv6 (use [`IpBuilder::ipv6_fragment`]).
    pub fn fragment(mut self, offset: u16, more: bool) -> Self {
        match &mut self.ip {
            IpHeader::V4 { more_frags, frag_offset, .. } => {
                *more_frags = more;
                *frag_offset = offset;
            }
            IpHeader::V6 { .. } => panic!("fragment() is for IPv4; use ipv6_fragment()"),
        }
        self
    }

    /// Adds raw IPv4 options, zero-padded to a multiple of 4 (at most 40 bytes in all).
    /// Panics for IPv6 or when too long.
    pub fn ipv4_options(mut self, raw: &[u8]) -> Self {
        match &mut self.ip {
            IpHeader::V4 { options, .. } => {
                options.extend_from_slice(raw);
                while options.len() % 4 != 0 {
                    options.push(0);
                }
                assert!(options.len() <= 40, "IPv4 options longer than 40 bytes");
            }
            IpHeader::V6 { .. } => panic!("ipv4_options() is for IPv4"),
        }
        self
    }

    /// Adds an IPv6 extension header of type `kind` (hop-by-hop, routing, destination
    /// options or AH) whose bytes after the next-header and length bytes are `body`,
    /// padded with zeros to the header's length unit (8 bytes, AH: 4). Panics for IPv4
    /// or other kinds.
    pub fn ipv6_ext(mut self, kind: IpProtocol, body: &[u8]) -> Self {
        let IpHeader::V6 { ext, .. } = &mut self.ip else {
            panic!("ipv6_ext() is for IPv6");
        };
        let mut bytes = vec![0u8, 0];
        bytes.extend_from_slice(body);
        let (unit, bias) = match kind {
            IpProtocol::HOPOPTS | IpProtocol::ROUTING | IpProtocol::DSTOPTS => (8, 1),
            IpProtocol::AH => (4, 2),
            k => panic!("ipv6_ext() does not build {k:?} headers"),
        };
        while bytes.len() % unit != 0 || bytes.len() < 8 {
            bytes.push(0);
        }
        bytes[1] = u8::try_from(bytes.len() / unit - bias).expect("extension header too long");
        ext.push((kind, bytes));
        self
    }

    /// Adds an IPv6 fragment header (offset in bytes, a multiple of 8). Panics for IPv4.
    pub fn ipv6_fragment(mut self, offset: u16, more: bool, ident: u32) -> Self {
        let IpHeader::V6 { ext, .. } = &mut self.ip else {
            panic!("ipv6_fragment() is for IPv6; use fragment()");
        };
        let mut bytes = vec![0u8; ipv6::FRAGMENT_HEADER_LEN];
        bytes[2..4].copy_from_slice(&((offset & 0xfff8) | more as u16).to_be_bytes());
        bytes[4..8].copy_from_slice(&ident.to_be_bytes());
        ext.push((IpProtocol::FRAGMENT, bytes));
        self
    }

    /// Continues with a TCP header.
    pub fn tcp(self, sport: u16, dport: u16) -> TcpBuilder {
        TcpBuilder {
            ip: self,
            sport,
            dport,
            seq: 0,
            ack: 0,
            flags: TcpFlags::empty(),
            window: 65535,
            urgent: 0,
            options: Vec::new(),
            payload: Vec::new(),
            checksum: None,
        }
    }

    /// Continues with a UDP header.
    pub fn udp(self, sport: u16, dport: u16) -> UdpBuilder {
        UdpBuilder { ip: self, sport, dport, payload: Vec::new(), no_checksum: false }
    }

    fn icmp(self, v6: bool, ty: u8, code: u8, rest: u32, data: &[u8]) -> IcmpBuilder {
        IcmpBuilder { ip: self, v6, ty, code, rest, data: data.to_vec() }
    }

    /// Continues with an ICMPv4 echo request.
    pub fn icmpv4_echo_request(self, id: u16, seq: u16) -> IcmpBuilder {
        self.icmp(false, icmpv4::Message::ECHO_REQUEST.0, 0, (id as u32) << 16 | seq as u32, &[])
    }

    /// Continues with an ICMPv4 echo reply.
    pub fn icmpv4_echo_reply(self, id: u16, seq: u16) -> IcmpBuilder {
        self.icmp(false, icmpv4::Message::ECHO_REPLY.0, 0, (id as u32) << 16 | seq as u32, &[])
    }

    /// Continues with an ICMPv4 error of `ty`/`code` quoting `inner` (pass the
    /// offending IP header and at least 8 bytes after it). For "fragmentation needed"
    /// set the MTU with [`IcmpBuilder::next_hop_mtu`].
    pub fn icmpv4_error(self, ty: u8, code: u8, inner: &[u8]) -> IcmpBuilder {
        self.icmp(false, ty, code, 0, inner)
    }

    /// Continues with an ICMPv6 echo request.
    pub fn icmpv6_echo_request(self, id: u16, seq: u16) -> IcmpBuilder {
        self.icmp(true, icmpv6::Message::ECHO_REQUEST.0, 0, (id as u32) << 16 | seq as u32, &[])
    }

    /// Continues with an ICMPv6 echo reply.
    pub fn icmpv6_echo_reply(self, id: u16, seq: u16) -> IcmpBuilder {
        self.icmp(true, icmpv6::Message::ECHO_REPLY.0, 0, (id as u32) << 16 | seq as u32, &[])
    }

    /// Continues with an ICMPv6 error of `ty`/`code` (packet too big: the MTU in
    /// `mtu_or_pointer`; parameter problem: the pointer; otherwise 0) quoting `inner`.
    pub fn icmpv6_error(self, ty: u8, code: u8, mtu_or_pointer: u32, inner: &[u8]) -> IcmpBuilder {
        self.icmp(true, ty, code, mtu_or_pointer, inner)
    }

    fn ndisc(self, repr: NdiscRepr) -> IcmpBuilder {
        let (src, dst) = match self.ip {
            IpHeader::V6 { src, dst, .. } => (src, dst),
            IpHeader::V4 { .. } => panic!("neighbour discovery is IPv6"),
        };
        let mut b = vec![0u8; repr.buffer_len()];
        repr.emit(src, dst, &mut icmpv6::Packet::new_unchecked(&mut b[..])).expect("sized above");
        let rest = u32::from_be_bytes([b[4], b[5], b[6], b[7]]);
        self.ttl(255).icmp(true, b[0], 0, rest, &b[icmpv6::HEADER_LEN..])
    }

    /// Continues with a neighbour solicitation for `target` (hop limit 255), with the
    /// source link-layer address option if `lladdr` is given.
    pub fn neighbour_solicit(self, target: Ipv6Addr, lladdr: Option<EthernetAddress>) -> IcmpBuilder {
        self.ndisc(NdiscRepr::NeighborSolicit { target_addr: target, lladdr })
    }

    /// Continues with a neighbour advertisement (hop limit 255), with the target
    /// link-layer address option if `lladdr` is given.
    pub fn neighbour_advert(self, flags: NdiscFlags, target: Ipv6Addr, lladdr: Option<EthernetAddress>) -> IcmpBuilder {
        self.ndisc(NdiscRepr::NeighborAdvert { flags, target_addr: target, lladdr })
    }

    /// Continues with an arbitrary protocol; add bytes with [`RawBuilder::payload`].
    pub fn protocol(self, p: IpProtocol) -> RawBuilder {
        RawBuilder { lower: Lower::Ip(self, p), data: Vec::new() }
    }

    /// Wraps the upper-layer bytes into IP (and Ethernet if any).
    fn finish(&self, proto: IpProtocol, l4: &[u8]) -> Vec<u8> {
        let ip = self.ip.wrap(proto, l4);
        match &self.eth {
            Some(e) => {
                let t = match self.ip {
                    IpHeader::V4 { .. } => EtherType::IPV4,
                    IpHeader::V6 { .. } => EtherType::IPV6,
                };
                e.wrap(t, &ip)
            }
            None => ip,
        }
    }
}

/// The TCP stage.
#[derive(Debug, Clone)]
pub struct TcpBuilder {
    ip: IpBuilder,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: TcpFlags,
    window: u16,
    urgent: u16,
    options: Vec<u8>,
    payload: Vec<u8>,
    checksum: Option<u16>,
}

impl TcpBuilder {
    /// Sets the sequence number.
    pub fn seq(mut self, v: u32) -> Self {
        self.seq = v;
        self
    }

    /// Sets the acknowledgment number (set the ACK flag separately).
    pub fn ack(mut self, v: u32) -> Self {
        self.ack = v;
        self
    }

    /// Sets the flags.
    pub fn flags(mut self, f: TcpFlags) -> Self {
        self.flags = f;
        self
    }

    /// Sets the window (65535 by default).
    pub fn window(mut self, v: u16) -> Self {
        self.window = v;
        self
    }

    /// Sets the urgent pointer.
    pub fn urgent(mut self, v: u16) -> Self {
        self.urgent = v;
        self
    }

    fn push_option(mut self, o: TcpOption<'_>) -> Self {
        let mut b = [0u8; 40];
        let n = o.emit(&mut b).expect("TCP option longer than 40 bytes");
        self.options.extend_from_slice(&b[..n]);
        self
    }

    /// Adds an MSS option.
    pub fn mss(self, v: u16) -> Self {
        self.push_option(TcpOption::Mss(v))
    }

    /// Adds a window scale option.
    pub fn window_scale(self, v: u8) -> Self {
        self.push_option(TcpOption::WindowScale(v))
    }

    /// Adds a SACK-permitted option.
    pub fn sack_permitted(self) -> Self {
        self.push_option(TcpOption::SackPermitted)
    }

    /// Adds a timestamps option.
    pub fn timestamps(self, val: u32, ecr: u32) -> Self {
        self.push_option(TcpOption::Timestamps(val, ecr))
    }

    /// Adds raw option bytes as they are (kind, length, data...).
    pub fn option(mut self, raw: &[u8]) -> Self {
        self.options.extend_from_slice(raw);
        self
    }

    /// Appends payload bytes.
    pub fn payload(mut self, data: &[u8]) -> Self {
        self.payload.extend_from_slice(data);
        self
    }

    /// Stores this checksum instead of the correct one (to test refusal).
    pub fn checksum(mut self, v: u16) -> Self {
        self.checksum = Some(v);
        self
    }

    /// The segment alone (header, options zero-padded to a multiple of 4, payload).
    pub fn build_segment(&self) -> Vec<u8> {
        let mut opts = self.options.clone();
        while !opts.len().is_multiple_of(4) {
            opts.push(0);
        }
        assert!(opts.len() <= 40, "TCP options longer than 40 bytes");
        let hl = tcp::HEADER_LEN + opts.len();
        let mut b = vec![0u8; hl];
        b.extend_from_slice(&self.payload);
        let mut p = tcp::Packet::new_unchecked(&mut b[..]);
        p.set_src_port(self.sport);
        p.set_dst_port(self.dport);
        p.set_seq_number(self.seq);
        p.set_ack_number(self.ack);
        p.set_header_len(hl);
        p.set_flags(self.flags);
        p.set_window_len(self.window);
        p.set_urgent_at(self.urgent);
        p.options_mut().copy_from_slice(&opts);
        let (src, dst) = self.ip.ip.addrs();
        p.fill_checksum(src, dst);
        if let Some(c) = self.checksum {
            p.set_checksum(c);
        }
        b
    }

    /// The whole packet.
    pub fn build(self) -> Vec<u8> {
        self.ip.finish(IpProtocol::TCP, &self.build_segment())
    }
}

/// The UDP stage.
#[derive(Debug, Clone)]
pub struct UdpBuilder {
    ip: IpBuilder,
    sport: u16,
    dport: u16,
    payload: Vec<u8>,
    no_checksum: bool,
}

impl UdpBuilder {
    /// Appends payload bytes.
    pub fn payload(mut self, data: &[u8]) -> Self {
        self.payload.extend_from_slice(data);
        self
    }

    /// Sends checksum 0 ("none"; only meaningful over IPv4).
    pub fn no_checksum(mut self) -> Self {
        self.no_checksum = true;
        self
    }

    /// The datagram alone.
    pub fn build_datagram(&self) -> Vec<u8> {
        let mut b = vec![0u8; udp::HEADER_LEN];
        b.extend_from_slice(&self.payload);
        let len = u16::try_from(b.len()).expect("UDP datagram longer than 65535 bytes");
        let mut p = udp::Packet::new_unchecked(&mut b[..]);
        p.set_src_port(self.sport);
        p.set_dst_port(self.dport);
        p.set_len(len);
        if !self.no_checksum {
            let (src, dst) = self.ip.ip.addrs();
            p.fill_checksum(src, dst);
        }
        b
    }

    /// The whole packet.
    pub fn build(self) -> Vec<u8> {
        self.ip.finish(IpProtocol::UDP, &self.build_datagram())
    }
}

/// The ICMPv4 / ICMPv6 stage.
#[derive(Debug, Clone)]
pub struct IcmpBuilder {
    ip: IpBuilder,
    v6: bool,
    ty: u8,
    code: u8,
    rest: u32,
    data: Vec<u8>,
}

impl IcmpBuilder {
    /// Appends bytes after the 8-byte header (echo data, or more of the quoted packet).
    pub fn payload(mut self, data: &[u8]) -> Self {
        self.data.extend_from_slice(data);
        self
    }

    /// Sets the 4 type-specific bytes after the checksum.
    pub fn rest_of_header(mut self, v: u32) -> Self {
        self.rest = v;
        self
    }

    /// Sets the next-hop MTU of an ICMPv4 "fragmentation needed" (bytes 6-7), or the
    /// MTU of an ICMPv6 "packet too big".
    pub fn next_hop_mtu(mut self, mtu: u16) -> Self {
        self.rest = mtu as u32;
        self
    }

    /// The ICMP message alone.
    pub fn build_message(&self) -> Vec<u8> {
        let mut b = vec![self.ty, self.code, 0, 0];
        b.extend_from_slice(&self.rest.to_be_bytes());
        b.extend_from_slice(&self.data);
        match (self.v6, &self.ip.ip) {
            (false, IpHeader::V4 { .. }) => {
                icmpv4::Packet::new_unchecked(&mut b[..]).fill_checksum();
            }
            (true, IpHeader::V6 { src, dst, .. }) => {
                icmpv6::Packet::new_unchecked(&mut b[..]).fill_checksum(*src, *dst);
            }
            (false, _) => panic!("ICMPv4 needs IPv4"),
            (true, _) => panic!("ICMPv6 needs IPv6"),
        }
        b
    }

    /// The whole packet.
    pub fn build(self) -> Vec<u8> {
        let proto = if self.v6 { IpProtocol::ICMPV6 } else { IpProtocol::ICMP };
        self.ip.finish(proto, &self.build_message())
    }
}

/// What a [`RawBuilder`] sits on.
#[derive(Debug, Clone)]
enum Lower {
    Eth(EthBuilder, EtherType),
    Ip(IpBuilder, IpProtocol),
}

/// The last stage for ARP and arbitrary EtherTypes or IP protocols.
#[derive(Debug, Clone)]
pub struct RawBuilder {
    lower: Lower,
    data: Vec<u8>,
}

impl RawBuilder {
    /// Appends bytes.
    pub fn payload(mut self, data: &[u8]) -> Self {
        self.data.extend_from_slice(data);
        self
    }

    /// The whole packet.
    pub fn build(self) -> Vec<u8> {
        match &self.lower {
            Lower::Eth(e, t) => e.wrap(*t, &self.data),
            Lower::Ip(ip, p) => ip.finish(*p, &self.data),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ArpOperation, EthernetFrame, Icmpv6Packet, Ipv4Packet, Ipv6Packet, TcpPacket, UdpPacket};

    const M1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const M2: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    #[test]
    fn tcp_over_vlan_ipv4() {
        let f = PacketBuilder::eth(M1, M2)
            .vlan(10)
            .ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
            .dont_frag()
            .tcp(1, 2)
            .flags(TcpFlags::SYN)
            .mss(1460)
            .window_scale(7)
            .build();
        let e = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(e.ethertype(), EtherType::VLAN);
        let v = crate::VlanPacket::new_checked(e.payload()).unwrap();
        assert_eq!((v.vlan_id(), v.ethertype()), (10, EtherType::IPV4));
        let ip = Ipv4Packet::new_checked(v.payload()).unwrap();
        assert!(ip.verify_checksum() && ip.dont_frag());
        let t = TcpPacket::new_checked(ip.payload()).unwrap();
        assert_eq!(t.header_len(), 28);
        assert_eq!(t.mss(), Some(1460));
        assert!(t.verify_checksum(ip.src_addr().into(), ip.dst_addr().into()));
    }

    #[test]
    fn padding_and_udp_no_checksum() {
        let f = PacketBuilder::eth(M1, M2)
            .pad_to(60)
            .ipv4(Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2))
            .udp(1, 2)
            .no_checksum()
            .build();
        assert_eq!(f.len(), 60);
        let ip = Ipv4Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.payload().len(), 8);
        assert_eq!(UdpPacket::new_checked(ip.payload()).unwrap().checksum(), 0);
    }

    #[test]
    fn ipv6_with_extensions() {
        let p = PacketBuilder::ipv6("2001:db8::1".parse().unwrap(), "2001:db8::2".parse().unwrap())
            .ipv6_ext(IpProtocol::HOPOPTS, &[])
            .ipv6_fragment(0, true, 7)
            .udp(1, 2)
            .payload(b"x")
            .build();
        let ip = Ipv6Packet::new_checked(&p[..]).unwrap();
        let ul = ip.upper_layer().unwrap();
        assert_eq!((ul.protocol, ul.offset), (IpProtocol::UDP, 56));
        assert!(ul.is_fragment());
        let u = UdpPacket::new_checked(&p[ul.offset..]).unwrap();
        assert!(u.verify_checksum(ip.src_addr().into(), ip.dst_addr().into()));
    }

    #[test]
    fn arp_and_ndisc() {
        let repr = ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: M1,
            source_protocol_addr: Ipv4Addr::new(10, 0, 0, 1),
            target_hardware_addr: EthernetAddress::UNSPECIFIED,
            target_protocol_addr: Ipv4Addr::new(10, 0, 0, 2),
        };
        let f = PacketBuilder::eth(M1, EthernetAddress::BROADCAST).arp(repr).build();
        assert_eq!(f.len(), 42);
        assert_eq!(ArpRepr::parse(&crate::ArpPacket::new_checked(&f[14..]).unwrap()).unwrap(), repr);

        let (src, dst): (Ipv6Addr, Ipv6Addr) = ("fe80::1".parse().unwrap(), "ff02::1:ff00:2".parse().unwrap());
        let f = PacketBuilder::eth(M1, EthernetAddress::from_ipv6_multicast(dst))
            .ipv6(src, dst)
            .neighbour_solicit("fe80::2".parse().unwrap(), Some(M1))
            .build();
        let ip = Ipv6Packet::new_checked(&f[14..]).unwrap();
        assert_eq!(ip.hop_limit(), 255);
        let icmp = Icmpv6Packet::new_checked(ip.payload()).unwrap();
        assert!(icmp.verify_checksum(src, dst));
        assert_eq!(
            NdiscRepr::parse(&icmp).unwrap(),
            NdiscRepr::NeighborSolicit { target_addr: "fe80::2".parse().unwrap(), lladdr: Some(M1) }
        );
    }
}
