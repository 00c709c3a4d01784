//! TOA: the client's address in a TCP option, so real servers can see it under FullNAT.
//!
//! FullNAT replaces the client's address with a local address (LIP), so a real server
//! sees only the load balancer. DPVS (after Alibaba's LVS FullNAT) carries the client
//! address in TCP option kind 254, which a kernel module on the real server (`toa`)
//! reads back for `getpeername()`:
//!
//! | form | bytes |
//! |---|---|
//! | IPv4 client | kind 254, length 8, port (2, network order), address (4) |
//! | IPv6 client | kind 254, length 20, port (2, network order), address (16) |
//!
//! [`insert_toa`] adds the option to a client-to-server segment (DPVS does it on the
//! handshake's final ACK or the first data segment). The TCP header grows at the end of
//! its options, via [`PacketBuf::insert_gap`], so the payload is never copied by this
//! code (the buffer moves the shorter side). Growing the segments means the real
//! server's MSS must shrink by as much: [`clamp_mss`] lowers the MSS option of the
//! server's SYN-ACK.
//!
//! When either happens is decided here too, by `on_forward`, which the engine calls
//! for every translated packet of a connection: the server's SYN-ACK is marked on the
//! connection and has its MSS clamped; the client's first ACK after it (the one that
//! completes the handshake) carries the TOA, once per connection.

use std::net::IpAddr;

use wire::checksum::Delta;
use wire::tcp::{kind, TcpOptions};
use wire::{IpVersion, Ipv4Packet, Ipv6Packet, TcpFlags, TcpOption, TcpPacket};

use crate::buf::PacketBuf;
use crate::conn::{Conn, ConnFlags};
use crate::tcp_state::Direction;
use crate::translate::{set_ip_len, tuple, TranslateError, Tuple};
use crate::types::Proto;

/// The TCP option kind of TOA.
pub const TOA_KIND: u8 = 254;
/// Length of the TOA option for an IPv4 client.
pub const TOA_LEN_V4: usize = 8;
/// Length of the TOA option for an IPv6 client.
pub const TOA_LEN_V6: usize = 20;
/// [`clamp_mss`] never lowers an MSS below this (nor raises one that is already lower):
/// the IPv4 default MSS (RFC 9293).
pub const MIN_MSS: u16 = 536;

/// The length of the TOA option for this client address.
pub const fn toa_len(client: IpAddr) -> usize {
    match client {
        IpAddr::V4(_) => TOA_LEN_V4,
        IpAddr::V6(_) => TOA_LEN_V6,
    }
}

/// The option bytes (the first `toa_len(client)` of the array).
fn encode(client: IpAddr, cport: u16) -> ([u8; TOA_LEN_V6], usize) {
    let mut o = [0u8; TOA_LEN_V6];
    let len = toa_len(client);
    o[0] = TOA_KIND;
    o[1] = len as u8;
    o[2..4].copy_from_slice(&cport.to_be_bytes());
    match client {
        IpAddr::V4(a) => o[4..8].copy_from_slice(&a.octets()),
        IpAddr::V6(a) => o[4..20].copy_from_slice(&a.octets()),
    }
    (o, len)
}

/// The client address and port of a TOA option in the TCP segment of the packet at
/// `l3`, if there is one (what the real server's module reads).
pub fn find_toa(data: &[u8], l3: usize) -> Option<(IpAddr, u16)> {
    let t = tuple(data, l3).ok()?;
    let tcp = TcpPacket::new_checked(data.get(t.l4..t.l4 + t.l4_len)?).ok()?;
    let found = tcp.options_iter().find_map(|o| match o {
        TcpOption::Unknown { kind: TOA_KIND, data } if data.len() == 6 || data.len() == 18 => Some(data),
        _ => None,
    });
    let d = found?;
    let port = u16::from_be_bytes([d[0], d[1]]);
    let addr = match d.len() {
        6 => IpAddr::from([d[2], d[3], d[4], d[5]]),
        _ => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&d[2..18]);
            IpAddr::from(a)
        }
    };
    Some((addr, port))
}

/// Offset (from the start of the options) of an end-of-list option, if the options
/// parse cleanly up to one.
fn end_of_list(options: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut it = TcpOptions::new(options);
    for o in it.by_ref() {
        if o == TcpOption::EndOfList {
            return Some(at);
        }
        at += o.buffer_len();
    }
    None
}

/// Reads the TCP tuple at `l3`, refusing UDP.
fn tcp_tuple(data: &[u8], l3: usize) -> Result<Tuple, TranslateError> {
    let t = tuple(data, l3)?;
    if t.proto != Proto::Tcp {
        return Err(TranslateError::UnsupportedProtocol(t.proto.number()));
    }
    Ok(t)
}

/// Adds a TOA option carrying `client`:`cport` to the TCP segment whose IP header is at
/// `l3`, and returns the number of bytes the packet grew by.
///
/// The option goes after the existing options (before an end-of-list option if there
/// is one); the data offset, the IPv4 total length or IPv6 payload length, and the
/// TCP and IPv4 header checksums are updated incrementally. If the segment already
/// carries a TOA option of the same length (a client trying to pass off another
/// address), it is overwritten in place instead and 0 is returned.
///
/// Refuses, leaving the packet untouched: UDP (`UnsupportedProtocol`), fragments and
/// malformed packets (as [`tuple()`]), a TCP header that would exceed 60 bytes
/// (`NoOptionSpace`), an IP packet that would exceed 65535 bytes (`TooLong`), and a
/// buffer without the headroom or tailroom (`NoRoom`). Bytes after the IP packet
/// (Ethernet padding) move with the tail and stay after it.
pub fn insert_toa<B: PacketBuf>(buf: &mut B, l3: usize, client: IpAddr, cport: u16) -> Result<usize, TranslateError> {
    let t = tcp_tuple(buf.data(), l3)?;
    let (opt, len) = encode(client, cport);

    // Everything needed is read first, so that a refusal changes nothing.
    let seg = buf.data().get(t.l4..t.l4 + t.l4_len).ok_or(TranslateError::Truncated)?;
    let tcp = TcpPacket::new_checked(seg)?;
    let hl = tcp.header_len();
    if let Some(at) = tcp.find_option(TOA_KIND, len) {
        let seg = &mut buf.data_mut()[t.l4..t.l4 + t.l4_len];
        let mut old = [0u8; TOA_LEN_V6];
        old[..len].copy_from_slice(&seg[at..at + len]);
        seg[at..at + len].copy_from_slice(&opt[..len]);
        let mut d = Delta::new();
        d.replace_at(at, &old[..len], &opt[..len]);
        let mut tcp = TcpPacket::new_unchecked(seg);
        tcp.set_checksum(d.apply(tcp.checksum()));
        return Ok(0);
    }
    if hl + len > wire::tcp::MAX_HEADER_LEN {
        return Err(TranslateError::NoOptionSpace);
    }
    let ip = &buf.data()[l3..];
    let v4 = IpVersion::of(ip) == Some(IpVersion::V4);
    let ip_len =
        if v4 { Ipv4Packet::new_unchecked(ip).total_len() } else { Ipv6Packet::new_unchecked(ip).payload_len() }
            as usize;
    if ip_len + len > u16::MAX as usize {
        return Err(TranslateError::TooLong);
    }
    let at = end_of_list(tcp.options()).map_or(hl, |o| wire::tcp::HEADER_LEN + o);
    let mut old = [0u8; wire::tcp::MAX_HEADER_LEN];
    let old_len = hl - at;
    old[..old_len].copy_from_slice(&seg[at..hl]);
    let old_off_word = u16::from_be_bytes([seg[12], seg[13]]);
    let old_csum = tcp.checksum();

    buf.insert_gap(t.l4 + hl, len)?;

    let data = buf.data_mut();
    let seg = &mut data[t.l4..t.l4 + t.l4_len + len];
    seg[at..at + len].copy_from_slice(&opt[..len]);
    seg[at + len..hl + len].fill(0); // the end-of-list option and its padding, if any
    let mut tcp = TcpPacket::new_unchecked(&mut *seg);
    tcp.set_header_len(hl + len);
    let new_off_word = u16::from_be_bytes([seg[12], seg[13]]);
    let mut d = Delta::new();
    d.replace_at(at, &old[..old_len], &seg[at..hl + len]);
    d.replace16(old_off_word, new_off_word);
    d.replace32(t.l4_len as u32, (t.l4_len + len) as u32); // pseudo-header length
    TcpPacket::new_unchecked(&mut *seg).set_checksum(d.apply(old_csum));

    set_ip_len(&mut data[l3..], v4, ip_len as u16, (ip_len + len) as u16);
    Ok(len)
}

/// Lowers the MSS option of the TCP segment at `l3` by `reduce_by` (typically the TOA
/// length, in the real server's SYN-ACK, so that the client's segments still fit the
/// path once TOA is added) and returns the new MSS, or `None` if the segment has no
/// MSS option (nothing changes). The MSS never goes below [`MIN_MSS`] (an MSS already
/// below it is left as is). The TCP checksum is updated incrementally.
pub fn clamp_mss<B: PacketBuf>(buf: &mut B, l3: usize, reduce_by: u16) -> Result<Option<u16>, TranslateError> {
    let t = tcp_tuple(buf.data(), l3)?;
    let seg = buf.data_mut().get_mut(t.l4..t.l4 + t.l4_len).ok_or(TranslateError::Truncated)?;
    let mut tcp = TcpPacket::new_checked(seg)?;
    let Some(at) = tcp.find_option(kind::MSS, 4) else {
        return Ok(None);
    };
    let Some(old) = tcp.mss() else {
        return Ok(None);
    };
    let new = old.saturating_sub(reduce_by).max(old.min(MIN_MSS));
    if new == old {
        return Ok(Some(old));
    }
    tcp.rewrite_mss(new);
    let mut d = Delta::new();
    d.replace_at(at + 2, &old.to_be_bytes(), &new.to_be_bytes());
    let c = d.apply(tcp.checksum());
    tcp.set_checksum(c);
    Ok(Some(new))
}

/// The TOA step for a packet of connection `conn`, already translated, whose IP header
/// is at `l3` in `buf`, going `dir` with TCP flags `flags`; `on` is the engine's TOA
/// switch. Only TCP connections are concerned; for them:
///
/// - A SYN-ACK from the real server ([`Direction::Output`]) marks the connection
///   ([`ConnFlags::SYNACK_SEEN`]) and, with TOA on, has its MSS option lowered by the
///   client's TOA length ([`clamp_mss`]; a SYN-ACK without an MSS option keeps its
///   default MSS).
/// - With TOA on, the client's first ACK ([`Direction::Input`], without SYN or RST)
///   after that SYN-ACK gets the client's address and port ([`insert_toa`]); the
///   connection is marked ([`ConnFlags::TOA_DONE`]) so it happens once, even if the
///   option did not fit.
///
/// Returns the error of [`insert_toa`] if the option was due but could not be added:
/// the packet goes on without it, and the caller counts `toa_no_room`.
#[inline]
pub(crate) fn on_forward<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    on: bool,
    dir: Direction,
    flags: TcpFlags,
    conn: &mut Conn,
) -> Result<(), TranslateError> {
    if conn.proto() != Proto::Tcp {
        return Ok(());
    }
    match dir {
        Direction::Input => {
            if on
                && flags.contains(TcpFlags::ACK)
                && !flags.contains(TcpFlags::SYN)
                && !flags.contains(TcpFlags::RST)
                && conn.flags.has(ConnFlags::SYNACK_SEEN)
                && !conn.flags.has(ConnFlags::TOA_DONE)
            {
                conn.flags.set(ConnFlags::TOA_DONE);
                insert_toa(buf, l3, conn.cip().ip(), conn.cport())?;
            }
        }
        Direction::Output => {
            if flags.contains(TcpFlags::SYN) && flags.contains(TcpFlags::ACK) {
                conn.flags.set(ConnFlags::SYNACK_SEEN);
                if on {
                    // A SYN-ACK without an MSS option keeps its (default) MSS.
                    let _ = clamp_mss(buf, l3, toa_len(conn.cip().ip()) as u16);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;
    use wire::builder::{PacketBuilder, TcpBuilder};
    use wire::{EthernetAddress, TcpFlags};

    use super::*;
    use crate::buf::VecBuf;
    use crate::translate::testutil::check;

    const CIP: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 7);
    const LIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 9);

    fn v6(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    fn ack_v4() -> TcpBuilder {
        PacketBuilder::ipv4(LIP, RIP).tcp(5001, 80).flags(TcpFlags::ACK).seq(100).ack(200)
    }

    #[test]
    fn v4_toa_on_a_data_segment() {
        let body = [&b"GET / HTTP/1.1\r\n"[..], &[b'a'; 200], b"\r\n\r\n"].concat();
        let pkt = ack_v4().timestamps(1, 2).payload(&body).build();
        let mut buf = VecBuf::new(&pkt);
        assert_eq!(insert_toa(&mut buf, 0, CIP.into(), 40000), Ok(8));
        let out = buf.to_vec();
        assert_eq!(out.len(), pkt.len() + 8);
        let seen = check(&out);
        assert_eq!(seen.payload, body);
        // The builder padded the 10-byte timestamps option with EOL: TOA goes before it.
        assert_eq!(&seen.tcp_options[10..], &[254, 8, 0x9c, 0x40, 203, 0, 113, 7, 0, 0]);
        assert_eq!(find_toa(&out, 0), Some((CIP.into(), 40000)));
        assert_eq!(buf.data_offset(), VecBuf::DEFAULT_HEADROOM - 8, "the headers moved, not the payload");
    }

    #[test]
    fn v6_toa_in_ethernet_frame_with_big_payload() {
        let (c, l, r) = (v6("2001:db8::c"), v6("fd00::1"), v6("fd00::2"));
        let m = EthernetAddress([2, 0, 0, 0, 0, 1]);
        let frame = PacketBuilder::eth(m, m)
            .vlan(7)
            .ipv6(l, r)
            .tcp(5001, 80)
            .flags(TcpFlags::ACK | TcpFlags::PSH)
            .payload(&[0xab; 1000])
            .build();
        let mut buf = VecBuf::new(&frame);
        assert_eq!(insert_toa(&mut buf, 18, c.into(), 443), Ok(20));
        let out = buf.to_vec();
        assert_eq!(&out[..18], &frame[..18]);
        let seen = check(&out[18..]);
        assert_eq!(seen.tcp_options, [&[254u8, 20, 1, 0xbb][..], &c.octets()].concat());
        assert_eq!(seen.payload, [0xab; 1000]);
        assert_eq!(find_toa(&out, 18), Some((c.into(), 443)));
        // An IPv6 client's TOA in an IPv4 packet (NAT64-style) is the 20-byte form.
        let mut buf = VecBuf::new(&ack_v4().build());
        assert_eq!(insert_toa(&mut buf, 0, c.into(), 1), Ok(20));
        check(&buf.to_vec());
    }

    #[test]
    fn toa_goes_before_end_of_list() {
        // MSS, then EOL at option offset 4 (odd overall alignment tested below).
        let pkt = ack_v4().option(&[2, 4, 5, 0xb4, 0, 0, 0, 0]).payload(b"x").build();
        let mut buf = VecBuf::new(&pkt);
        assert_eq!(insert_toa(&mut buf, 0, CIP.into(), 1), Ok(8));
        let out = buf.to_vec();
        let seen = check(&out);
        assert_eq!(seen.tcp_options, [2, 4, 5, 0xb4, 254, 8, 0, 1, 203, 0, 113, 7, 0, 0, 0, 0]);
        assert_eq!(find_toa(&out, 0), Some((CIP.into(), 1)));
        // NOP then EOL: the option lands at an odd offset.
        let pkt = ack_v4().option(&[1, 0, 0, 0]).build();
        let mut buf = VecBuf::new(&pkt);
        assert_eq!(insert_toa(&mut buf, 0, CIP.into(), 2), Ok(8));
        let seen = check(&buf.to_vec());
        assert_eq!(seen.tcp_options, [1, 254, 8, 0, 2, 203, 0, 113, 7, 0, 0, 0]);
    }

    #[test]
    fn spoofed_toa_is_overwritten() {
        let fake = [254, 8, 0, 80, 1, 2, 3, 4];
        let pkt = ack_v4().option(&[1]).option(&fake).option(&[1, 1, 1]).payload(b"y").build();
        let mut buf = VecBuf::new(&pkt);
        assert_eq!(insert_toa(&mut buf, 0, CIP.into(), 9), Ok(0));
        let out = buf.to_vec();
        assert_eq!(out.len(), pkt.len());
        check(&out);
        assert_eq!(find_toa(&out, 0), Some((CIP.into(), 9)));
    }

    #[test]
    fn refusals_leave_the_packet_alone() {
        // 36 bytes of options: no room for 8 more.
        let full = ack_v4().option(&[1; 36]).build();
        let mut buf = VecBuf::new(&full);
        assert_eq!(insert_toa(&mut buf, 0, CIP.into(), 1), Err(TranslateError::NoOptionSpace));
        assert_eq!(buf.to_vec(), full);
        // 32 bytes of options fit an IPv4 TOA exactly, not an IPv6 one.
        let fits = ack_v4().option(&[1; 32]).build();
        let mut buf = VecBuf::new(&fits);
        assert_eq!(insert_toa(&mut buf, 0, v6("::1").into(), 1), Err(TranslateError::NoOptionSpace));
        assert_eq!(insert_toa(&mut buf, 0, CIP.into(), 1), Ok(8));
        check(&buf.to_vec());
        // No room in the buffer.
        let pkt = ack_v4().payload(&[0; 100]).build();
        let mut buf = VecBuf::with_room(&pkt, 4, 4);
        assert_eq!(insert_toa(&mut buf, 0, CIP.into(), 1), Err(TranslateError::NoRoom));
        assert_eq!(buf.to_vec(), pkt);
        // UDP.
        let udp = PacketBuilder::ipv4(LIP, RIP).udp(1, 2).build();
        let mut buf = VecBuf::new(&udp);
        assert_eq!(insert_toa(&mut buf, 0, CIP.into(), 1), Err(TranslateError::UnsupportedProtocol(17)));
        assert_eq!(clamp_mss(&mut buf, 0, 8), Err(TranslateError::UnsupportedProtocol(17)));
        // Too long for IPv4.
        let big = ack_v4().payload(&vec![0; 65535 - 40]).build();
        let mut buf = VecBuf::new(&big);
        assert_eq!(insert_toa(&mut buf, 0, CIP.into(), 1), Err(TranslateError::TooLong));
    }

    #[test]
    fn clamp_mss_in_syn_ack() {
        let syn_ack = PacketBuilder::ipv4(RIP, LIP)
            .tcp(80, 5001)
            .flags(TcpFlags::SYN | TcpFlags::ACK)
            .option(&[1]) // puts the MSS value at an odd offset
            .mss(1460)
            .sack_permitted()
            .build();
        let mut buf = VecBuf::new(&syn_ack);
        assert_eq!(clamp_mss(&mut buf, 0, TOA_LEN_V4 as u16), Ok(Some(1452)));
        let out = buf.to_vec();
        check(&out);
        assert_eq!(TcpPacket::new_checked(&out[20..]).unwrap().mss(), Some(1452));
        // Floors.
        let small = PacketBuilder::ipv4(RIP, LIP).tcp(80, 1).mss(540).build();
        let mut buf = VecBuf::new(&small);
        assert_eq!(clamp_mss(&mut buf, 0, 20), Ok(Some(536)));
        check(&buf.to_vec());
        let tiny = PacketBuilder::ipv4(RIP, LIP).tcp(80, 1).mss(100).build();
        let mut buf = VecBuf::new(&tiny);
        assert_eq!(clamp_mss(&mut buf, 0, 20), Ok(Some(100)));
        assert_eq!(buf.to_vec(), tiny);
        // No MSS option.
        let none = PacketBuilder::ipv6(v6("::1"), v6("::2")).tcp(80, 1).build();
        let mut buf = VecBuf::new(&none);
        assert_eq!(clamp_mss(&mut buf, 0, 20), Ok(None));
    }

    /// A connection CIP:40000 → VIP:80 via LIP:5001 → RIP:80, in a table of its own.
    fn table_with_conn(proto: Proto) -> (crate::conn::ConnTable, crate::conn::ConnRef) {
        use crate::conn::{ConnTable, KeyHasher, NewConn};
        let mut t = ConnTable::new(4, KeyHasher::with_seed(1)).unwrap();
        let r = t
            .insert(NewConn {
                proto,
                cip: CIP.into(),
                cport: 40000,
                vip: Ipv4Addr::new(192, 0, 2, 10).into(),
                vport: 80,
                lip: LIP.into(),
                lport: 5001,
                rip: RIP.into(),
                rport: 80,
                rs: 0,
                state: crate::tcp_state::TcpState::None,
                expires: 1000,
                fwd: Default::default(),
            })
            .unwrap();
        (t, r)
    }

    #[test]
    fn on_forward_clamps_the_syn_ack_then_tags_the_first_ack_once() {
        let (mut t, r) = table_with_conn(Proto::Tcp);
        let syn_ack =
            PacketBuilder::ipv4(Ipv4Addr::new(192, 0, 2, 10), CIP).tcp(80, 40000).flags(TcpFlags::SYN | TcpFlags::ACK);
        // Before the SYN-ACK, an ACK carries nothing.
        let mut buf = VecBuf::new(&ack_v4().build());
        assert_eq!(on_forward(&mut buf, 0, true, Direction::Input, TcpFlags::ACK, t.get_mut(r)), Ok(()));
        assert_eq!(find_toa(&buf.to_vec(), 0), None);
        // The SYN-ACK: marked, MSS lowered by the IPv4 TOA length.
        let mut buf = VecBuf::new(&syn_ack.mss(1460).build());
        let f = TcpFlags::SYN | TcpFlags::ACK;
        assert_eq!(on_forward(&mut buf, 0, true, Direction::Output, f, t.get_mut(r)), Ok(()));
        assert_eq!(TcpPacket::new_checked(&buf.to_vec()[20..]).unwrap().mss(), Some(1452));
        assert!(t.get(r).flags().has(ConnFlags::SYNACK_SEEN));
        // The handshake's ACK gets the TOA; the next one does not.
        for (n, want) in [(0, Some((CIP.into(), 40000))), (1, None)] {
            let mut buf = VecBuf::new(&ack_v4().build());
            assert_eq!(on_forward(&mut buf, 0, true, Direction::Input, TcpFlags::ACK, t.get_mut(r)), Ok(()));
            assert_eq!(find_toa(&buf.to_vec(), 0), want, "ack {n}");
        }
        assert!(t.get(r).flags().has(ConnFlags::TOA_DONE));
    }

    #[test]
    fn on_forward_with_toa_off_or_udp_leaves_packets_alone() {
        let (mut t, r) = table_with_conn(Proto::Tcp);
        let syn_ack =
            PacketBuilder::ipv4(RIP, LIP).tcp(80, 5001).flags(TcpFlags::SYN | TcpFlags::ACK).mss(1460).build();
        let mut buf = VecBuf::new(&syn_ack);
        let f = TcpFlags::SYN | TcpFlags::ACK;
        assert_eq!(on_forward(&mut buf, 0, false, Direction::Output, f, t.get_mut(r)), Ok(()));
        assert_eq!(buf.to_vec(), syn_ack, "no clamp with TOA off");
        assert!(t.get(r).flags().has(ConnFlags::SYNACK_SEEN), "the SYN-ACK is still marked");
        let ack = ack_v4().build();
        let mut buf = VecBuf::new(&ack);
        assert_eq!(on_forward(&mut buf, 0, false, Direction::Input, TcpFlags::ACK, t.get_mut(r)), Ok(()));
        assert_eq!(buf.to_vec(), ack);
        let (mut t, r) = table_with_conn(Proto::Udp);
        let udp = PacketBuilder::ipv4(LIP, RIP).udp(5001, 80).build();
        let mut buf = VecBuf::new(&udp);
        assert_eq!(on_forward(&mut buf, 0, true, Direction::Input, TcpFlags::empty(), t.get_mut(r)), Ok(()));
        assert_eq!(buf.to_vec(), udp);
    }

    #[test]
    fn on_forward_reports_a_toa_that_does_not_fit() {
        let (mut t, r) = table_with_conn(Proto::Tcp);
        t.get_mut(r).flags.set(ConnFlags::SYNACK_SEEN);
        let full = ack_v4().option(&[1; 36]).build();
        let mut buf = VecBuf::new(&full);
        let got = on_forward(&mut buf, 0, true, Direction::Input, TcpFlags::ACK, t.get_mut(r));
        assert_eq!(got, Err(TranslateError::NoOptionSpace));
        assert_eq!(buf.to_vec(), full);
        assert!(t.get(r).flags().has(ConnFlags::TOA_DONE), "tried once, not again");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_segments_stay_valid(
            is_v6: bool, client_v6: bool,
            opts in proptest::collection::vec(0u8..4, 0..5),
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            headroom in 0usize..40, tailroom in 0usize..40,
            cport: u16,
        ) {
            let b = if is_v6 {
                PacketBuilder::ipv6(v6("fd00::1"), v6("fd00::2"))
            } else {
                PacketBuilder::ipv4(LIP, RIP)
            };
            let mut t = b.tcp(1, 2).flags(TcpFlags::ACK);
            for o in opts {
                t = match o {
                    0 => t.option(&[1]),
                    1 => t.mss(1400),
                    2 => t.timestamps(7, 8),
                    _ => t.sack_permitted(),
                };
            }
            let pkt = t.payload(&payload).build();
            let client: IpAddr = if client_v6 { v6("2001:db8::99").into() } else { CIP.into() };
            let mut buf = VecBuf::with_room(&pkt, headroom, tailroom);
            match insert_toa(&mut buf, 0, client, cport) {
                Ok(n) => {
                    prop_assert_eq!(n, toa_len(client));
                    let out = buf.to_vec();
                    let seen = check(&out);
                    prop_assert_eq!(seen.payload, payload);
                    prop_assert_eq!(find_toa(&out, 0), Some((client, cport)));
                }
                Err(e) => {
                    prop_assert!(matches!(e, TranslateError::NoRoom | TranslateError::NoOptionSpace), "{:?}", e);
                    prop_assert_eq!(buf.to_vec(), pkt);
                }
            }
        }
    }
}
