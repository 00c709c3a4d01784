//! Input checks before scheduling: what a client's packet must pass before it may take
//! a connection, a local port and a real server's attention, and what every later
//! client packet must pass before it reaches a real server. Written once, here; the
//! engine calls [`admit`] on its new-connection path and [`inbound`] for every packet
//! from a client. Each refusal is a [`DropReason`] of its own.
//!
//! | check | when | reason |
//! |---|---|---|
//! | source is [`martian`] | new flow | `martian_source` |
//! | source is the destination or another own address | new flow | `land` |
//! | TCP/UDP checksum (the NIC's verdict, else software) | new flow | `bad_l4_checksum` |
//! | IPv4 options malformed or source-routing ([`ip_layer`]) | every client packet | `bad_ip_options` |
//! | IPv6 type 0 routing header ([`ip_layer`]) | every client packet | `ipv6_rh0` |
//! | TCP options malformed | every client segment | `bad_tcp_options` |
//! | a client's own TOA option (kind 254) | every client segment | `client_toa` (overwritten with NOPs, forwarded) |
//!
//! The IPv4 header checksum is checked before the core, for every frame, by the
//! dataplane (`frame`'s `bad_ip_checksum`); TTL / hop limit 1 likewise (`ttl_exceeded`).
//!
//! # Cost
//! A packet of an established connection pays a comparison for IP options (IPv4 header
//! longer than 20 bytes, IPv6 next header not TCP/UDP), and for a TCP segment with
//! options one walk over them (three steps for the usual NOP, NOP, timestamps), the
//! walk that finds a client's TOA. The software TCP/UDP checksum, which reads the
//! whole packet, is paid only by packets that would open a connection (a SYN, a UDP
//! datagram without a connection), and not at all when the NIC has checked it.

use std::net::IpAddr;

use wire::tcp::{kind, TcpOptions};
use wire::{
    Icmpv4Packet, Icmpv6Packet, IpProtocol, IpVersion, Ipv4Packet, Ipv6Packet, TcpOption, TcpPacket, UdpPacket,
};

use crate::buf::{Checked, PacketBuf};
use crate::stats::DropReason;
use crate::toa::TOA_KIND;
use crate::translate::Tuple;
use crate::types::Proto;

/// IPv4 option: loose source and record route.
const IPOPT_LSRR: u8 = 131;
/// IPv4 option: strict source and record route.
const IPOPT_SSRR: u8 = 137;
/// IPv6 routing header type 0 (RFC 5095 deprecates it).
const RH_TYPE0: u8 = 0;

/// Whether `src` can never be a client's address: unspecified and "this network"
/// (0.0.0.0/8), loopback, multicast, the reserved 240.0.0.0/4 with the limited
/// broadcast 255.255.255.255; `::`, `::1` and ff00::/8. Link-local sources are not
/// martian here: a client on the port's own link may use one.
#[inline]
pub fn martian(src: IpAddr) -> bool {
    match src {
        IpAddr::V4(a) => {
            let o = a.octets()[0];
            o == 0 || a.is_loopback() || a.is_multicast() || o >= 240
        }
        IpAddr::V6(a) => a.is_unspecified() || a.is_loopback() || a.is_multicast(),
    }
}

/// The IP layer of a client's packet at `l3`: IPv4 options well formed and without a
/// source route (only looked at when the header has options); no IPv6 type 0 routing
/// header (only looked for when an extension header follows the fixed header).
/// Packets the caller could not parse are not judged here.
#[inline]
pub fn ip_layer(data: &[u8], l3: usize) -> Result<(), DropReason> {
    let Some(ip) = data.get(l3..) else { return Ok(()) };
    match IpVersion::of(ip) {
        Some(IpVersion::V4) => {
            let Ok(p) = Ipv4Packet::new_checked_header(ip) else { return Ok(()) };
            if p.header_len() > wire::ipv4::HEADER_LEN && !ipv4_options_ok(p.options()) {
                return Err(DropReason::BadIpOptions);
            }
            Ok(())
        }
        Some(IpVersion::V6) => {
            let Ok(p) = Ipv6Packet::new_checked_header(ip) else { return Ok(()) };
            if p.next_header().is_ipv6_extension() && has_rh0(p.next_header(), p.payload()) {
                return Err(DropReason::Ipv6Rh0);
            }
            Ok(())
        }
        None => Ok(()),
    }
}

/// IPv4 options (RFC 791): end of list and no-operation are one byte; every other
/// option has a length byte of at least 2 that stays within the options. Source
/// routes are refused as well.
fn ipv4_options_ok(opts: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&k) = opts.get(i) {
        match k {
            0 => return true,
            1 => i += 1,
            IPOPT_LSRR | IPOPT_SSRR => return false,
            _ => match opts.get(i + 1) {
                Some(&len) if len >= 2 && i + len as usize <= opts.len() => i += len as usize,
                _ => return false,
            },
        }
    }
    true
}

/// Whether the IPv6 extension headers starting with `first` in `data` (the payload)
/// include a routing header of type 0. Stops at the upper layer, at a non-first
/// fragment, after [`wire::ipv6::MAX_EXT_HEADERS`] headers or where the data ends.
fn has_rh0(first: IpProtocol, data: &[u8]) -> bool {
    let (mut proto, mut off) = (first, 0usize);
    for _ in 0..=wire::ipv6::MAX_EXT_HEADERS {
        if !proto.is_ipv6_extension() {
            return false;
        }
        let Some(h) = data.get(off..off + 4) else { return false };
        if proto == IpProtocol::ROUTING && h[2] == RH_TYPE0 {
            return true;
        }
        let len = match proto {
            IpProtocol::FRAGMENT => {
                if u16::from_be_bytes([h[2], h[3]]) & 0xfff8 != 0 {
                    return false;
                }
                wire::ipv6::FRAGMENT_HEADER_LEN
            }
            IpProtocol::AH => (h[1] as usize + 2) * 4,
            _ => (h[1] as usize + 1) * 8,
        };
        proto = IpProtocol(h[0]);
        off += len;
    }
    false
}

/// What a walk over a client segment's TCP options found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Options {
    /// Well formed, no TOA.
    Clean,
    /// Well formed, with at least one option of the TOA kind.
    Toa,
}

/// Walks TCP options (up to an end-of-list option): malformed ones refused.
#[inline]
fn walk_tcp_options(opts: &[u8]) -> Result<Options, DropReason> {
    let mut it = TcpOptions::new(opts);
    let mut toa = false;
    for o in it.by_ref() {
        if let TcpOption::Unknown { kind: TOA_KIND, .. } = o {
            toa = true;
        }
    }
    if it.is_malformed() {
        return Err(DropReason::BadTcpOptions);
    }
    Ok(if toa { Options::Toa } else { Options::Clean })
}

/// Overwrites every TOA-kind option of the TCP segment `seg` with NOPs, updating its
/// checksum incrementally. The options must be well formed (walked first).
fn strip_toa(seg: &mut [u8]) {
    let hl = TcpPacket::new_unchecked(&seg[..]).header_len().min(seg.len());
    let mut d = wire::checksum::Delta::new();
    let mut at = wire::tcp::HEADER_LEN;
    while at < hl {
        let k = seg[at];
        if k == kind::END {
            break;
        }
        if k == kind::NOP {
            at += 1;
            continue;
        }
        let len = (seg.get(at + 1).copied().unwrap_or(0) as usize).clamp(2, hl - at);
        if k == TOA_KIND {
            let mut old = [0u8; wire::tcp::MAX_HEADER_LEN];
            old[..len].copy_from_slice(&seg[at..at + len]);
            seg[at..at + len].fill(kind::NOP);
            d.replace_at(at, &old[..len], &seg[at..at + len]);
        }
        at += len;
    }
    let mut tcp = TcpPacket::new_unchecked(seg);
    let c = d.apply(tcp.checksum());
    tcp.set_checksum(c);
}

/// The checks every packet from a client (towards a service) passes before it is
/// translated, the first of a flow included: [`ip_layer`], then for TCP the options
/// (malformed: `bad_tcp_options`), and any TOA-kind option the client put in is
/// overwritten with NOPs in place, so the only TOA a real server sees is the one rvs
/// adds. Returns whether one was overwritten (the caller counts `client_toa`).
#[inline]
pub fn inbound(data: &mut [u8], l3: usize, t: &Tuple) -> Result<bool, DropReason> {
    ip_layer(data, l3)?;
    if t.proto != Proto::Tcp {
        return Ok(false);
    }
    let Some(seg) = data.get_mut(t.l4..t.l4 + t.l4_len) else { return Ok(false) };
    inbound_tcp_options(seg)
}

/// [`inbound`]'s TCP part, for the TCP segment `seg` (header and payload): malformed
/// options are refused, a client's TOA overwritten. Returns whether one was.
#[inline]
pub fn inbound_tcp_options(seg: &mut [u8]) -> Result<bool, DropReason> {
    let Ok(tcp) = TcpPacket::new_checked(&seg[..]) else { return Ok(false) };
    if tcp.header_len() == wire::tcp::HEADER_LEN {
        return Ok(false);
    }
    match walk_tcp_options(tcp.options())? {
        Options::Clean => Ok(false),
        Options::Toa => {
            strip_toa(seg);
            Ok(true)
        }
    }
}

/// The checks of a packet that would open a connection (a SYN, a UDP datagram without
/// one) whose tuple is `t`, before the scheduler sees it: the source is not
/// [`martian`]; it is not the destination nor one of `own` addresses (`land`); the
/// IP layer and TCP options pass [`inbound`]'s checks; the TCP/UDP checksum is right
/// (the NIC's verdict from [`PacketBuf::rx_checksums`] where it gave one, otherwise
/// computed here). Nothing is changed.
#[inline(never)]
pub fn admit<B: PacketBuf>(buf: &B, l3: usize, t: &Tuple, own: impl Fn(IpAddr) -> bool) -> Result<(), DropReason> {
    if martian(t.src) {
        return Err(DropReason::MartianSource);
    }
    if t.src == t.dst || own(t.src) {
        return Err(DropReason::Land);
    }
    let data = buf.data();
    ip_layer(data, l3)?;
    let Some(seg) = data.get(t.l4..t.l4 + t.l4_len) else { return Err(DropReason::BadHeader) };
    // A UDP or echo first fragment holds part of its datagram: its checksum can be
    // checked only after reassembly, which rvs leaves to the far end (see `crate::frag`).
    let ok = crate::frag::partial(data.get(l3..).unwrap_or(&[]), seg, t)
        || match buf.rx_checksums().l4 {
            Checked::Good => true,
            Checked::Bad => false,
            Checked::Unknown => l4_checksum_ok(seg, t),
        };
    if !ok {
        return Err(DropReason::BadL4Checksum);
    }
    if t.proto == Proto::Tcp {
        if let Ok(tcp) = TcpPacket::new_checked(seg) {
            walk_tcp_options(tcp.options())?;
        }
    }
    Ok(())
}

/// Whether the TCP, UDP or ICMP checksum of the segment `seg` of tuple `t` is right,
/// computed in software.
fn l4_checksum_ok(seg: &[u8], t: &Tuple) -> bool {
    match t.proto {
        Proto::Tcp => TcpPacket::new_checked(seg).is_ok_and(|p| p.verify_checksum(t.src, t.dst)),
        Proto::Udp => UdpPacket::new_checked(seg).is_ok_and(|p| p.verify_checksum(t.src, t.dst)),
        Proto::Icmp => match (t.src, t.dst) {
            (IpAddr::V6(s), IpAddr::V6(d)) => Icmpv6Packet::new_checked(seg).is_ok_and(|p| p.verify_checksum(s, d)),
            _ => Icmpv4Packet::new_checked(seg).is_ok_and(|p| p.verify_checksum()),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use wire::builder::PacketBuilder;
    use wire::TcpFlags;

    use super::*;
    use crate::buf::{RxChecksums, VecBuf};
    use crate::translate::testutil::check;
    use crate::translate::tuple;

    const CIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
    const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn admit_pkt(p: &[u8]) -> Result<(), DropReason> {
        let t = tuple(p, 0).unwrap();
        admit(&VecBuf::new(p), 0, &t, |a| a == IpAddr::from(Ipv4Addr::new(198, 51, 100, 1)))
    }

    /// A buffer whose NIC gave a verdict.
    struct Nic(VecBuf, RxChecksums);
    impl PacketBuf for Nic {
        fn data(&self) -> &[u8] {
            self.0.data()
        }
        fn data_mut(&mut self) -> &mut [u8] {
            self.0.data_mut()
        }
        fn headroom(&self) -> usize {
            0
        }
        fn tailroom(&self) -> usize {
            0
        }
        fn grow_front(&mut self, _: usize) -> Result<(), crate::buf::NoRoom> {
            Err(crate::buf::NoRoom)
        }
        fn shrink_front(&mut self, _: usize) -> Result<(), crate::buf::NoRoom> {
            Err(crate::buf::NoRoom)
        }
        fn grow_back(&mut self, _: usize) -> Result<(), crate::buf::NoRoom> {
            Err(crate::buf::NoRoom)
        }
        fn truncate(&mut self, _: usize) {}
        fn rx_checksums(&self) -> RxChecksums {
            self.1
        }
    }

    #[test]
    fn martians() {
        for a in ["0.0.0.0", "0.1.2.3", "127.0.0.1", "224.0.0.1", "239.1.1.1", "240.0.0.1", "255.255.255.255"] {
            assert!(martian(a.parse().unwrap()), "{a}");
        }
        for a in ["::", "::1", "ff02::1", "ff0e::5"] {
            assert!(martian(a.parse().unwrap()), "{a}");
        }
        for a in ["1.2.3.4", "169.254.1.1", "198.51.100.7", "2001:db8::1", "fe80::1"] {
            assert!(!martian(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn new_flows_are_judged() {
        let syn = |src: Ipv4Addr, dst: Ipv4Addr| PacketBuilder::ipv4(src, dst).tcp(1000, 80).flags(TcpFlags::SYN);
        assert_eq!(admit_pkt(&syn(CIP, VIP).mss(1460).build()), Ok(()));
        assert_eq!(admit_pkt(&syn(Ipv4Addr::BROADCAST, VIP).build()), Err(DropReason::MartianSource));
        assert_eq!(admit_pkt(&syn(VIP, VIP).build()), Err(DropReason::Land));
        assert_eq!(admit_pkt(&syn(Ipv4Addr::new(198, 51, 100, 1), VIP).build()), Err(DropReason::Land));
        assert_eq!(admit_pkt(&syn(CIP, VIP).checksum(0x1234).build()), Err(DropReason::BadL4Checksum));
        assert_eq!(admit_pkt(&syn(CIP, VIP).option(&[3, 0]).build()), Err(DropReason::BadTcpOptions));
        assert_eq!(admit_pkt(&syn(CIP, VIP).option(&[2, 1]).build()), Err(DropReason::BadTcpOptions));
        assert_eq!(admit_pkt(&syn(CIP, VIP).option(&[8, 255]).build()), Err(DropReason::BadTcpOptions));
        let ipo = |o: &[u8]| PacketBuilder::ipv4(CIP, VIP).ipv4_options(o).tcp(1, 80).flags(TcpFlags::SYN).build();
        assert_eq!(admit_pkt(&ipo(&[1, 1, 1, 1])), Ok(()));
        assert_eq!(admit_pkt(&ipo(&[7, 7, 4, 0, 0, 0, 0])), Ok(()), "record route, well formed");
        assert_eq!(admit_pkt(&ipo(&[7, 0])), Err(DropReason::BadIpOptions));
        assert_eq!(admit_pkt(&ipo(&[7, 255])), Err(DropReason::BadIpOptions));
        assert_eq!(admit_pkt(&ipo(&[131, 7, 4, 1, 2, 3, 4])), Err(DropReason::BadIpOptions), "LSRR");
        let mut udp = PacketBuilder::ipv4(CIP, VIP).udp(5, 53).payload(b"q").build();
        udp[20 + wire::udp::CHECKSUM_OFFSET] ^= 0x5a;
        assert_eq!(admit_pkt(&udp), Err(DropReason::BadL4Checksum));
        assert_eq!(admit_pkt(&PacketBuilder::ipv4(CIP, VIP).udp(5, 53).no_checksum().build()), Ok(()));
        let u6 = |src: &str| PacketBuilder::ipv6(v6(src), v6("2001:db8::80")).udp(5, 53).payload(b"q").build();
        assert_eq!(admit_pkt(&u6("2001:db8::7")), Ok(()));
        for m in ["::", "::1", "ff02::1"] {
            assert_eq!(admit_pkt(&u6(m)), Err(DropReason::MartianSource), "{m}");
        }
        let rh = |ty: u8| {
            PacketBuilder::ipv6(v6("2001:db8::7"), v6("2001:db8::80"))
                .ipv6_ext(IpProtocol::DSTOPTS, &[])
                .ipv6_ext(IpProtocol::ROUTING, &[ty, 0])
                .tcp(1, 80)
                .flags(TcpFlags::SYN)
                .build()
        };
        assert_eq!(admit_pkt(&rh(0)), Err(DropReason::Ipv6Rh0));
        assert_eq!(admit_pkt(&rh(2)), Ok(()), "type 2 (mobility) is not RH0");
    }

    #[test]
    fn the_nic_verdict_is_taken() {
        let bad = PacketBuilder::ipv4(CIP, VIP).tcp(1, 80).flags(TcpFlags::SYN).checksum(1).build();
        let t = tuple(&bad, 0).unwrap();
        let good = RxChecksums { ip: Checked::Good, l4: Checked::Good };
        assert_eq!(admit(&Nic(VecBuf::new(&bad), good), 0, &t, |_| false), Ok(()), "trusted, not recomputed");
        let fine = PacketBuilder::ipv4(CIP, VIP).tcp(1, 80).flags(TcpFlags::SYN).build();
        let nic_bad = RxChecksums { ip: Checked::Good, l4: Checked::Bad };
        assert_eq!(admit(&Nic(VecBuf::new(&fine), nic_bad), 0, &t, |_| false), Err(DropReason::BadL4Checksum));
    }

    #[test]
    fn client_toa_becomes_nops_and_the_checksum_stays_right() {
        let fake = [254, 8, 0, 80, 1, 2, 3, 4];
        for pkt in [
            PacketBuilder::ipv4(CIP, VIP).tcp(1, 80).flags(TcpFlags::ACK).option(&[1]).option(&fake).payload(b"x"),
            PacketBuilder::ipv4(CIP, VIP).tcp(1, 80).flags(TcpFlags::SYN).option(&fake).option(&[254, 3, 9]).mss(1400),
        ]
        .map(|b| b.build())
        {
            let mut p = pkt.clone();
            let t = tuple(&p, 0).unwrap();
            assert_eq!(inbound(&mut p, 0, &t), Ok(true));
            let seen = check(&p);
            assert!(!seen.tcp_options.contains(&254), "{:?}", seen.tcp_options);
            assert_eq!(p.len(), pkt.len(), "nothing moves");
            assert_eq!(crate::toa::find_toa(&p, 0), None);
            // Nothing left to strip the second time.
            assert_eq!(inbound(&mut p, 0, &t), Ok(false));
        }
        let mut odd = PacketBuilder::ipv4(CIP, VIP).tcp(1, 80).flags(TcpFlags::ACK).option(&[1]).option(&[254, 3, 7]);
        odd = odd.payload(b"abc");
        let mut p = odd.build();
        let t = tuple(&p, 0).unwrap();
        assert_eq!(inbound(&mut p, 0, &t), Ok(true));
        assert_eq!(&check(&p).tcp_options, &[1, 1, 1, 1]);
        let mut bad = PacketBuilder::ipv4(CIP, VIP).tcp(1, 80).flags(TcpFlags::ACK).option(&[254, 0]).build();
        let t = tuple(&bad, 0).unwrap();
        assert_eq!(inbound(&mut bad, 0, &t), Err(DropReason::BadTcpOptions));
        let mut plain = PacketBuilder::ipv4(CIP, VIP).udp(1, 53).payload(b"q").build();
        let t = tuple(&plain, 0).unwrap();
        assert_eq!(inbound(&mut plain, 0, &t), Ok(false));
    }
}
