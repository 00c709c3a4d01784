//! The HAProxy PROXY protocol on TCP services: the client's address as the first bytes
//! of the stream, for real servers without the TOA module (nginx `listen ...
//! proxy_protocol`, HAProxy `accept-proxy`).
//!
//! A service with `proxy_protocol = v1|v2` ([`crate::service::ProxyProtocol`]) gets,
//! on each of its connections (FullNAT or NAT), a header built by [`wire::proxy`]:
//! `src` = CIP:cport, `dst` = VIP:vport, transport stream, command PROXY (version 1:
//! `PROXY TCP4 CIP VIP CPORT VPORT\r\n`, at most 104 bytes; version 2: 28 bytes for
//! IPv4, 52 for IPv6, no TLV).
//!
//! # Where it goes (as DPVS)
//! DPVS (`tcp_in_add_proxy_proto`, `src/ipvs/ip_vs_proto_tcp.c`, and
//! `proxy_proto_insert`, `src/ipvs/ip_vs_proxy_proto.c`) inserts the header as payload
//! at the start of the client's **first segment that carries data** (sequence number =
//! client ISN + 1), never into the handshake's pure ACK: a pure ACK is not
//! retransmitted, so a header in a lost one would leave the server a hole in the
//! stream it can never fill. The segment grows into the mbuf's headroom (the headers
//! move, the payload does not). From then on DPVS adds the header's length to its
//! per-connection sequence delta: client → server sequence numbers `+len`, server →
//! client acknowledgments and SACK blocks `−len`. rvs does the same, with three
//! differences, each written down where it is done:
//! - **A retransmitted first segment carries the header again**, at the same sequence
//!   number (DPVS only tags a segment whose number matches before its delta grew, so a
//!   retransmission of a first segment lost after the balancer goes out shifted and
//!   without a header, and the server waits for bytes that never come). The server
//!   reads the repeated header bytes as a duplicate and drops them, as any duplicate.
//! - **The mapping is by position, not by time**: a client sequence number after the
//!   first data byte is shifted even before the header went out (a later segment that
//!   overtook a lost first one lands where the header will be followed by it), and a
//!   server acknowledgment or SACK edge is shifted back only past the first data byte,
//!   and never below it (a SYN-ACK's, or an acknowledgment of part of the header, is
//!   left or clamped). See [`to_server`] and [`to_client`].
//! - **No standalone segment.** When the grown segment would not fit the path, DPVS
//!   sends the header in a packet of its own; the engine emits no packets of its own,
//!   so rvs lowers the MSS the server's SYN-ACK offers by the header's length instead
//!   (as for TOA), and the first segment always has room on the wire. A buffer without
//!   the head- or tailroom, or a packet that would pass 65535 bytes, is dropped
//!   (`proxy_no_room`) rather than sent without the header (the server would read the
//!   client's first bytes as a malformed header); the client retransmits it.
//!
//! A connection that carries a PROXY header gets no TOA option (the header already says
//! who the client is). A first fragment of the segment that must carry the header is
//! dropped (`fragment`, counted `frag_proxy_dropped`): bytes cannot be inserted into a
//! fragment. TCP Fast Open data on the SYN is forwarded as is, without a header: keep
//! Fast Open off on the real servers of such a service (nginx has it off unless
//! `fastopen=` is set). Only the client's first byte of data brings the header, so a
//! server-speaks-first protocol (SMTP, MySQL, SSH) cannot be served this way (the
//! server waits for a header that comes only after it spoke), as with DPVS.
//!
//! # Cost
//! Per worker: one 8-byte `Side` record per connection slot, allocated once a service
//! has the PROXY protocol ([`crate::conn::slots`]).
//! Per packet of a connection without the option: the flag test the engine makes
//! anyway. Per packet with it: a sequence or acknowledgment add and, on server
//! segments, an option walk for SACK blocks. Once per connection (and per
//! retransmission of the first segment): the header is written (version 1 formats
//! text) and the buffer opened; a header of odd length (only version 1 can be) also
//! sums the segment's payload once, its bytes changing 16-bit alignment.

use std::net::SocketAddr;

use wire::checksum::{fold_sum, ones_sum, Delta};
use wire::proxy::{ProxyRepr, ProxyTransport, MAX_LEN_V1};
use wire::tcp::kind;
use wire::{IpVersion, Ipv4Packet, Ipv6Packet, TcpFlags, TcpPacket};

use crate::buf::{NoRoom, PacketBuf};
use crate::service::ProxyProtocol;
use crate::translate::{set_ip_len, TranslateError, Tuple};

/// A header as sent (at most [`MAX_LEN_V1`] bytes: a version 2 header is shorter).
#[derive(Debug, Clone, Copy)]
pub struct Header {
    bytes: [u8; MAX_LEN_V1],
    len: usize,
}

impl Header {
    /// The header for a connection from `client` to `service` (the VIP and port).
    /// Both addresses should be of one family (a service's always are; mixed ones are
    /// sent as IPv6, mapped).
    pub fn new(version: ProxyProtocol, client: SocketAddr, service: SocketAddr) -> Header {
        let r = ProxyRepr { src: client, dst: service, proto: ProxyTransport::Stream };
        let mut bytes = [0u8; MAX_LEN_V1];
        // Neither can fail: the buffer holds the longest line, and the transport is a
        // stream (which version 1 can say).
        let len = match version {
            ProxyProtocol::V1 => r.emit_v1(&mut bytes),
            ProxyProtocol::V2 => r.emit_v2(&mut bytes),
        }
        .unwrap_or(0);
        Header { bytes, len }
    }

    /// The version 2 header for a UDP datagram from `client` to `service` (DPVS puts
    /// one in each datagram).
    pub fn datagram(client: SocketAddr, service: SocketAddr) -> Header {
        let r = ProxyRepr { src: client, dst: service, proto: ProxyTransport::Datagram };
        let mut bytes = [0u8; MAX_LEN_V1];
        let len = r.emit_v2(&mut bytes).unwrap_or(0);
        Header { bytes, len }
    }

    /// The header's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Its length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it is empty (never, for a header [`Header::new`] built).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// Puts `header` before the payload of the UDP datagram whose IP header is at `l3` and
/// UDP header at `l4`, unless the IP packet would grow past `max_len` bytes: the UDP,
/// IPv4 total or IPv6 payload lengths grow, the IPv4 header checksum and the UDP
/// checksum are computed again (an IPv4 datagram without one stays without). Nothing is
/// changed on error.
pub fn insert_datagram<B: PacketBuf>(
    buf: &mut B,
    l3: usize,
    l4: usize,
    header: &[u8],
    max_len: usize,
) -> Result<(), NoRoom> {
    let n = header.len();
    let d = buf.data();
    let v4 = d.get(l3).is_some_and(|b| b >> 4 == 4);
    let udp_len = d.get(l4 + 4..l4 + 6).map(|b| usize::from(u16::from_be_bytes([b[0], b[1]]))).ok_or(NoRoom)?;
    if udp_len < 8 || d.len() < l4 + udp_len || (l4 - l3) + udp_len + n > max_len || udp_len + n > 0xffff {
        return Err(NoRoom);
    }
    buf.insert_gap(l4 + 8, n)?;
    let d = buf.data_mut();
    d[l4 + 8..l4 + 8 + n].copy_from_slice(header);
    let old_udp_len = udp_len as u16;
    let udp_len = (udp_len + n) as u16;
    d[l4 + 4..l4 + 6].copy_from_slice(&udp_len.to_be_bytes());
    let had_sum = d[l4 + 6..l4 + 8] != [0, 0];
    // What stands before the UDP header in the IP length (the IPv6 header does not).
    let before = (l4 - l3 - if v4 { 0 } else { 40 }) as u16;
    set_ip_len(&mut d[l3..], v4, before + old_udp_len, before + udp_len);
    let (src, dst) = if v4 {
        let ip = Ipv4Packet::new_unchecked(&d[l3..]);
        (std::net::IpAddr::V4(ip.src_addr()), std::net::IpAddr::V4(ip.dst_addr()))
    } else {
        let ip = Ipv6Packet::new_unchecked(&d[l3..]);
        (std::net::IpAddr::V6(ip.src_addr()), std::net::IpAddr::V6(ip.dst_addr()))
    };
    if had_sum || !v4 {
        d[l4 + 6..l4 + 8].copy_from_slice(&[0, 0]);
        let seg = &d[l4..l4 + usize::from(udp_len)];
        let sum = wire::checksum::pseudo_header(src, dst, 17, u32::from(udp_len));
        let c = match wire::checksum::fold(ones_sum(seg, sum)) {
            0 => 0xffff,
            c => c,
        };
        d[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
    }
    Ok(())
}

/// Bits of [`Side::bits`].
pub(crate) mod bits {
    /// The client's SYN was seen: [`super::Side::first`] is known.
    pub const READY: u8 = 0x01;
    /// The header went out at least once.
    pub const SENT: u8 = 0x02;
    /// Version 2 (else version 1).
    pub const V2: u8 = 0x04;
}

/// The PROXY protocol state of one connection slot (meaningful while the connection
/// carries [`crate::conn::ConnFlags::PROXY_PROTO`]; reset when the slot is freed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Side {
    /// The client's ISN + 1: the sequence number of its first data byte, where the
    /// header goes.
    pub first: u32,
    /// The header's length.
    pub len: u8,
    /// [`bits`].
    pub bits: u8,
}

impl Side {
    /// The record of a new connection, whose header is `len` bytes long.
    pub fn new(version: ProxyProtocol, len: usize) -> Side {
        let v = match version {
            ProxyProtocol::V1 => 0,
            ProxyProtocol::V2 => bits::V2,
        };
        Side { first: 0, len: len as u8, bits: v }
    }

    /// The version the connection's header is in.
    pub fn version(&self) -> ProxyProtocol {
        if self.bits & bits::V2 != 0 {
            ProxyProtocol::V2
        } else {
            ProxyProtocol::V1
        }
    }
}

/// What a client segment needs, from [`to_server`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientStep {
    /// Nothing: before the first data byte (the SYN, a keepalive before any data), or
    /// a segment without data at the first byte before any header went out.
    Keep,
    /// Its sequence number moves up by the header's length.
    Shift,
    /// It starts at the first data byte with data: the header goes in front of the
    /// data, and the sequence number stays.
    Insert,
}

/// Where a client segment starting at `seq` goes in the server's numbering, the first
/// data byte being `first`: after it, shifted by the header's length; at it with data
/// (and not a reset), the header is inserted before the data; at it without data, as
/// the sequence number the client will send its data at (shifted once the header went
/// out, `sent`, else kept: the server still waits for byte `first`); before it, kept.
pub fn to_server(seq: u32, first: u32, data: bool, rst: bool, sent: bool) -> ClientStep {
    match (seq.wrapping_sub(first) as i32).signum() {
        1 => ClientStep::Shift,
        0 if data && !rst => ClientStep::Insert,
        0 if sent => ClientStep::Shift,
        _ => ClientStep::Keep,
    }
}

/// A server acknowledgment or SACK edge `v`, from the server's numbering back to the
/// client's: past the first data byte by `d`, it moves down by `min(d, len)` (an
/// acknowledgment of part of the header only acknowledges none of the client's data);
/// at or before it, it is kept (the SYN-ACK's acknowledgment, and any before the
/// header arrived).
#[inline]
pub fn to_client(v: u32, first: u32, len: u32) -> u32 {
    let d = v.wrapping_sub(first) as i32;
    if d <= 0 {
        v
    } else {
        v.wrapping_sub((d as u32).min(len))
    }
}

/// Inserts `hdr` at the start of the payload of the TCP segment whose IP header is at
/// `l3` (`t` is its tuple; translated or not, the changes being incremental). The IPv4
/// total length or IPv6 payload length, and the TCP and IPv4 header checksums, are
/// updated incrementally (a bad checksum stays bad). For a header of odd length the
/// payload moves to the other 16-bit alignment: its sum is taken once and swapped.
///
/// Refuses, leaving the packet untouched: a malformed segment (as
/// [`TcpPacket::new_checked`]), an IP packet that would pass 65535 bytes (`TooLong`),
/// and a buffer without the headroom or tailroom (`NoRoom`). Bytes after the IP
/// packet (Ethernet padding) stay after it.
pub fn insert_header<B: PacketBuf>(buf: &mut B, l3: usize, t: &Tuple, hdr: &[u8]) -> Result<(), TranslateError> {
    let n = hdr.len();
    let data = buf.data();
    let seg = data.get(t.l4..t.l4 + t.l4_len).ok_or(TranslateError::Truncated)?;
    let tcp = TcpPacket::new_checked(seg)?;
    let hl = tcp.header_len();
    let old_csum = tcp.checksum();
    let ip = data.get(l3..).ok_or(TranslateError::Truncated)?;
    let v4 = IpVersion::of(ip) == Some(IpVersion::V4);
    let ip_len =
        if v4 { Ipv4Packet::new_checked(ip)?.total_len() } else { Ipv6Packet::new_checked(ip)?.payload_len() } as usize;
    if ip_len + n > u16::MAX as usize {
        return Err(TranslateError::TooLong);
    }
    // An odd header puts every payload byte at the other half of its 16-bit word: the
    // payload's sum becomes its byte-swap (RFC 1071).
    let odd_sum = (n % 2 == 1).then(|| fold_sum(ones_sum(&seg[hl..], 0)));

    buf.insert_gap(t.l4 + hl, n)?;

    let data = buf.data_mut();
    let seg = &mut data[t.l4..t.l4 + t.l4_len + n];
    seg[hl..hl + n].copy_from_slice(hdr);
    let mut d = Delta::new();
    d.replace32(t.l4_len as u32, (t.l4_len + n) as u32); // pseudo-header length
    d.replace_at(hl, &[], hdr);
    if let Some(s) = odd_sum {
        d.replace16(s, s.swap_bytes());
    }
    TcpPacket::new_unchecked(&mut *seg).set_checksum(d.apply(old_csum));

    set_ip_len(&mut data[l3..], v4, ip_len as u16, (ip_len + n) as u16);
    Ok(())
}

/// Adds `by` to the sequence number of the TCP segment `seg`, updating its checksum.
pub fn shift_seq(seg: &mut [u8], by: u32) -> Result<(), TranslateError> {
    let mut t = TcpPacket::new_checked(seg)?;
    let old = t.seq_number();
    let new = old.wrapping_add(by);
    t.set_seq_number(new);
    let mut d = Delta::new();
    d.replace32(old, new);
    let c = d.apply(t.checksum());
    t.set_checksum(c);
    Ok(())
}

/// Maps the acknowledgment number (when the ACK flag is set) and the SACK block edges
/// of the server's TCP segment `seg` with [`to_client`], updating its checksum. A
/// malformed option list is mapped up to the fault.
pub fn shift_back(seg: &mut [u8], first: u32, len: u32) -> Result<(), TranslateError> {
    let mut t = TcpPacket::new_checked(&mut *seg)?;
    let mut d = Delta::new();
    if t.flags().contains(TcpFlags::ACK) {
        let a = t.ack_number();
        let n = to_client(a, first, len);
        if n != a {
            t.set_ack_number(n);
            d.replace32(a, n);
        }
    }
    let hl = t.header_len().min(seg.len());
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
        let Some(&l) = seg.get(at + 1) else { break };
        let l = l as usize;
        if l < 2 || at + l > hl {
            break;
        }
        if k == kind::SACK && (l - 2).is_multiple_of(8) {
            for e in (at + 2..at + l).step_by(4) {
                let old = [seg[e], seg[e + 1], seg[e + 2], seg[e + 3]];
                let v = u32::from_be_bytes(old);
                let n = to_client(v, first, len);
                if n != v {
                    let new = n.to_be_bytes();
                    seg[e..e + 4].copy_from_slice(&new);
                    d.replace_at(e, &old, &new);
                }
            }
        }
        at += l;
    }
    let c = d.apply(u16::from_be_bytes([seg[16], seg[17]]));
    seg[16..18].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {

    /// A UDP datagram takes the v2 header (DGRAM) before its payload; the lengths and
    /// both checksums are right again (judged by etherparse), IPv4 and IPv6; an IPv4
    /// datagram without a checksum stays without; no room leaves it alone.
    #[test]
    fn datagrams_take_the_v2_header() {
        use wire::builder::PacketBuilder;
        let client: SocketAddr = "198.51.100.7:5000".parse().unwrap();
        let svc: SocketAddr = "192.0.2.1:53".parse().unwrap();
        let hdr = Header::datagram(client, svc);
        assert_eq!(hdr.len(), 28);
        assert_eq!(hdr.as_bytes()[13], 0x12, "IPv4 over DGRAM");
        for (what, p, l4) in [
            ("IPv4", PacketBuilder::ipv4(LIP, RIP).udp(1029, 53).payload(b"query").build(), 20),
            (
                "IPv4, no checksum",
                PacketBuilder::ipv4(LIP, RIP).udp(1029, 53).payload(b"query").no_checksum().build(),
                20,
            ),
            (
                "IPv6",
                PacketBuilder::ipv6("fd00::1".parse().unwrap(), "fd00:2::1".parse().unwrap())
                    .udp(1029, 53)
                    .payload(b"query")
                    .build(),
                40,
            ),
        ] {
            let mut b = VecBuf::new(&p);
            insert_datagram(&mut b, 0, l4, hdr.as_bytes(), 1500).unwrap();
            let out = b.to_vec();
            assert_eq!(out.len(), p.len() + 28, "{what}");
            let seen = crate::judge::judge(&out);
            assert_eq!(seen.payload.len(), 28 + 5, "{what}");
            assert_eq!(&seen.payload[..28], hdr.as_bytes(), "{what}: the header first");
            assert_eq!(&seen.payload[28..], b"query", "{what}: then the datagram's own bytes");
            let parsed = wire::proxy::parse(&seen.payload).unwrap();
            let want = ProxyRepr { src: client, dst: svc, proto: ProxyTransport::Datagram };
            assert_eq!(parsed, (wire::ProxyHeader::Proxy(want), 28), "{what}");
            if what.contains("no checksum") {
                assert_eq!(&out[26..28], &[0, 0], "still without a checksum");
            }
            let mut b = VecBuf::new(&p);
            assert_eq!(insert_datagram(&mut b, 0, l4, hdr.as_bytes(), p.len() + 27), Err(NoRoom), "{what}");
            assert_eq!(b.to_vec(), p, "{what}: untouched");
        }
    }

    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;
    use wire::builder::PacketBuilder;

    use super::*;
    use crate::buf::VecBuf;
    use crate::translate::testutil::check;
    use crate::translate::tuple;

    const LIP: Ipv4Addr = Ipv4Addr::new(10, 1, 0, 5);
    const RIP: Ipv4Addr = Ipv4Addr::new(10, 2, 0, 9);

    fn sa(ip: &str, port: u16) -> SocketAddr {
        SocketAddr::new(ip.parse::<IpAddr>().unwrap(), port)
    }

    #[test]
    fn headers_are_as_on_the_wire() {
        let h = Header::new(ProxyProtocol::V1, sa("198.18.0.2", 40000), sa("198.18.0.100", 80));
        assert_eq!(h.as_bytes(), b"PROXY TCP4 198.18.0.2 198.18.0.100 40000 80\r\n");
        let h = Header::new(ProxyProtocol::V2, sa("198.18.0.2", 40000), sa("198.18.0.100", 80));
        assert_eq!(h.len(), 28);
        assert_eq!(&h.as_bytes()[..16], b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c");
        let h = Header::new(ProxyProtocol::V2, sa("2001:db8::c", 1), sa("2001:db8::1", 443));
        assert_eq!((h.len(), h.as_bytes()[13]), (52, 0x21));
        assert!(!h.is_empty());
    }

    #[test]
    fn client_steps() {
        use ClientStep::*;
        let f = 1000;
        assert_eq!(to_server(999, f, false, false, false), Keep, "SYN / keepalive before the data");
        assert_eq!(to_server(1000, f, false, false, false), Keep, "handshake ACK");
        assert_eq!(to_server(1000, f, true, false, false), Insert);
        assert_eq!(to_server(1000, f, true, false, true), Insert, "a retransmitted first segment");
        assert_eq!(to_server(1000, f, false, false, true), Shift, "an ACK after the header went out");
        assert_eq!(to_server(1000, f, true, true, false), Keep, "a reset carries no header");
        assert_eq!(to_server(1000, f, true, true, true), Shift);
        assert_eq!(to_server(1001, f, false, false, false), Shift);
        assert_eq!(to_server(f.wrapping_add(0x7fff_ffff), f, true, false, true), Shift);
        // Around the wrap.
        assert_eq!(to_server(3, u32::MAX - 2, true, false, false), Shift);
        assert_eq!(to_server(u32::MAX, 2, true, false, true), Keep);
    }

    #[test]
    fn acknowledgments_back() {
        assert_eq!(to_client(1000, 1000, 28), 1000, "the SYN-ACK's");
        assert_eq!(to_client(990, 1000, 28), 990);
        assert_eq!(to_client(1010, 1000, 28), 1000, "part of the header: none of the data");
        assert_eq!(to_client(1028, 1000, 28), 1000);
        assert_eq!(to_client(1029, 1000, 28), 1001);
        assert_eq!(to_client(5, u32::MAX - 9, 28), u32::MAX - 9, "wrapped, within the header");
        assert_eq!(to_client(40, u32::MAX - 9, 28), 12);
    }

    fn ack_v4(payload: &[u8]) -> Vec<u8> {
        PacketBuilder::ipv4(LIP, RIP).tcp(5001, 80).flags(TcpFlags(0x18)).seq(100).ack(200).payload(payload).build()
    }

    fn insert(pkt: &[u8], hdr: &[u8]) -> Result<Vec<u8>, TranslateError> {
        let mut buf = VecBuf::new(pkt);
        let t = tuple(pkt, 0).unwrap();
        insert_header(&mut buf, 0, &t, hdr)?;
        Ok(buf.to_vec())
    }

    #[test]
    fn inserts_odd_and_even_headers() {
        for body in [&b"GET / HTTP/1.0\r\n\r\n"[..], b"x", b"", &[0xa5; 999]] {
            for hdr in [&b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n"[..], b"PROXY TCP4 1.2.3.4 5.6.7.8 10 2\r\n", b"z"] {
                let out = insert(&ack_v4(body), hdr).unwrap();
                let seen = check(&out);
                assert_eq!(seen.payload, [hdr, body].concat(), "{} + {}", hdr.len(), body.len());
            }
        }
        // IPv6 with a timestamp option.
        let (a, b): (Ipv6Addr, Ipv6Addr) = ("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap());
        let pkt = PacketBuilder::ipv6(a, b).tcp(1, 2).flags(TcpFlags::ACK).timestamps(3, 4).payload(b"abc").build();
        let h = Header::new(ProxyProtocol::V2, sa("2001:db8::c", 1), sa("2001:db8::1", 443));
        let out = insert(&pkt, h.as_bytes()).unwrap();
        assert_eq!(check(&out).payload, [h.as_bytes(), b"abc"].concat());
    }

    #[test]
    fn a_bad_checksum_stays_bad() {
        let mut pkt = ack_v4(b"hello world");
        pkt[36] ^= 0x5a; // the TCP checksum
        for hdr in [&b"odd"[..], b"even"] {
            let out = insert(&pkt, hdr).unwrap();
            let seg = &out[20..];
            let sum = wire::checksum::pseudo_header(LIP.into(), RIP.into(), 6, seg.len() as u32);
            assert_ne!(wire::checksum::fold(ones_sum(seg, sum)), 0, "{hdr:?}");
        }
    }

    #[test]
    fn refusals_leave_the_packet_alone() {
        let pkt = ack_v4(&[7; 100]);
        let mut buf = VecBuf::with_room(&pkt, 4, 4);
        let t = tuple(&pkt, 0).unwrap();
        assert_eq!(insert_header(&mut buf, 0, &t, &[1; 28]), Err(TranslateError::NoRoom));
        assert_eq!(buf.to_vec(), pkt);
        let big = ack_v4(&vec![0; 65535 - 40 - 10]);
        assert_eq!(insert(&big, &[1; 11]), Err(TranslateError::TooLong));
        assert!(insert(&big, &[1; 10]).is_ok());
    }

    #[test]
    fn shifts_keep_checksums() {
        let sack = [5u8, 18, 0, 0, 3, 0xf0, 0, 0, 4, 0, 0, 0, 4, 8, 0, 0, 4, 16];
        let pkt = PacketBuilder::ipv4(RIP, LIP)
            .tcp(80, 5001)
            .flags(TcpFlags::ACK)
            .seq(7)
            .ack(1000 + 28 + 5)
            .option(&[1, 1])
            .option(&sack)
            .build();
        let mut v = pkt.clone();
        shift_back(&mut v[20..], 1000, 28).unwrap();
        check(&v);
        let t = TcpPacket::new_checked(&v[20..]).unwrap();
        assert_eq!(t.ack_number(), 1005);
        let got: Vec<u8> = t.options()[2..20].to_vec();
        // 0x3f0 = 1008 (within the header: 1000), 0x400 = 1024 (1000), 0x408 = 1032
        // (1004), 0x410 = 1040 (1012).
        assert_eq!(got, [5, 18, 0, 0, 3, 0xe8, 0, 0, 3, 0xe8, 0, 0, 3, 0xec, 0, 0, 3, 0xf4]);
        let mut v = ack_v4(b"q");
        shift_seq(&mut v[20..], 28).unwrap();
        check(&v);
        assert_eq!(TcpPacket::new_checked(&v[20..]).unwrap().seq_number(), 128);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn random_inserts_stay_valid(
            is_v6: bool,
            payload in proptest::collection::vec(any::<u8>(), 0..300),
            hdr in proptest::collection::vec(any::<u8>(), 1..108),
            headroom in 0usize..120, tailroom in 0usize..120,
        ) {
            let b = if is_v6 {
                PacketBuilder::ipv6("fd00::1".parse().unwrap(), "fd00::2".parse().unwrap())
            } else {
                PacketBuilder::ipv4(LIP, RIP)
            };
            let pkt = b.tcp(1, 2).flags(TcpFlags::ACK).timestamps(1, 2).payload(&payload).build();
            let mut buf = VecBuf::with_room(&pkt, headroom, tailroom);
            let t = tuple(&pkt, 0).unwrap();
            match insert_header(&mut buf, 0, &t, &hdr) {
                Ok(()) => {
                    let out = buf.to_vec();
                    prop_assert_eq!(check(&out).payload, [&hdr[..], &payload].concat());
                }
                Err(e) => {
                    prop_assert_eq!(e, TranslateError::NoRoom);
                    prop_assert_eq!(buf.to_vec(), pkt);
                }
            }
        }

        #[test]
        fn random_sack_shifts_stay_valid(edges in proptest::collection::vec(any::<u32>(), 0..8), ack: u32, first: u32) {
            let n = edges.len() / 2 * 2;
            let mut t = PacketBuilder::ipv4(RIP, LIP).tcp(80, 1).flags(TcpFlags::ACK).ack(ack);
            if n > 0 {
                let mut o = vec![kind::SACK, (2 + 4 * n) as u8];
                for e in &edges[..n] {
                    o.extend_from_slice(&e.to_be_bytes());
                }
                t = t.option(&[1, 1]).option(&o);
            }
            let mut v = t.build();
            shift_back(&mut v[20..], first, 52).unwrap();
            check(&v);
            let p = TcpPacket::new_checked(&v[20..]).unwrap();
            prop_assert_eq!(p.ack_number(), to_client(ack, first, 52));
            for (i, e) in edges[..n].iter().enumerate() {
                let at = 4 + 4 * i;
                let got = u32::from_be_bytes(p.options()[at..at + 4].try_into().unwrap());
                prop_assert_eq!(got, to_client(*e, first, 52));
            }
        }
    }
}
