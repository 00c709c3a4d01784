//! IPv6 headers (RFC 8200) and a bounded walk over extension headers.
//!
//! The view's buffer starts at the IPv6 header and may extend past the payload
//! (Ethernet padding). [`Packet::upper_layer`] steps over hop-by-hop, routing,
//! destination options, fragment and AH headers to find the transport protocol and
//! its offset; it stops after [`MAX_EXT_HEADERS`] headers and never reads outside the
//! payload, whatever the bytes say. Jumbograms (payload length 0 with a jumbo option)
//! are not supported: their payload is seen as empty.

use std::net::Ipv6Addr;

use crate::ip::IpProtocol;
use crate::{get_u16, get_u32, put_u16, put_u32, Error, Result};

/// Byte ranges of the IPv6 header fields.
mod field {
    use core::ops::Range;
    pub const VER_TC_FLOW: usize = 0;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC_ADDR: Range<usize> = 8..24;
    pub const DST_ADDR: Range<usize> = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Byte range of the source address.
pub const SRC_ADDR_RANGE: core::ops::Range<usize> = field::SRC_ADDR;
/// Byte range of the destination address.
pub const DST_ADDR_RANGE: core::ops::Range<usize> = field::DST_ADDR;
/// Byte offset of the payload length field.
pub const PAYLOAD_LEN_OFFSET: usize = field::PAYLOAD_LEN;
/// The walk gives up (`Error::Malformed`) after this many extension headers.
pub const MAX_EXT_HEADERS: usize = 8;
/// Length of a fragment extension header.
pub const FRAGMENT_HEADER_LEN: usize = 8;

/// What a fragment extension header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fragment {
    /// Offset of this fragment's data in the original payload, in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification of the original packet.
    pub ident: u32,
}

impl Fragment {
    /// Whether this is a real fragment rather than an "atomic fragment" (offset 0 and
    /// no more fragments, RFC 6946), which holds the whole packet.
    pub const fn is_fragment(&self) -> bool {
        self.offset != 0 || self.more
    }
}

/// The result of walking the extension headers: where the transport header is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpperLayer {
    /// The protocol after the last extension header (TCP, UDP, ICMPv6, ESP, none...).
    /// For a non-first fragment this is the protocol of the original packet, but the
    /// bytes at `offset` are the middle of its data, not a header.
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header, if one was present.
    pub fragment: Option<Fragment>,
}

impl UpperLayer {
    /// Whether a fragment header was present.
    pub const fn has_fragment_header(&self) -> bool {
        self.fragment.is_some()
    }

    /// Whether the packet is a real fragment (see [`Fragment::is_fragment`]).
    pub fn is_fragment(&self) -> bool {
        self.fragment.is_some_and(|f| f.is_fragment())
    }
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; fixed-field accessors panic if it is shorter
    /// than 40 bytes.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`]: version 6, the fixed header and
    /// `payload_len` bytes of payload present.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Wraps a buffer after checking only the fixed header: for a packet quoted in an
    /// ICMPv6 error. The payload is then whatever is present, up to `payload_len`.
    pub fn new_checked_header(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_header()?;
        Ok(p)
    }

    /// Checks the fixed header alone (see [`Packet::new_checked_header`]).
    pub fn check_header(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if data[field::VER_TC_FLOW] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    /// Checks the header and that the whole payload is present.
    pub fn check_len(&self) -> Result<()> {
        self.check_header()?;
        if self.buffer.as_ref().len() < HEADER_LEN + self.payload_len() as usize {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version nibble (6 once checked).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_TC_FLOW] >> 4
    }

    /// The traffic class.
    pub fn traffic_class(&self) -> u8 {
        (get_u32(self.buffer.as_ref(), field::VER_TC_FLOW) >> 20) as u8
    }

    /// The flow label (20 bits).
    pub fn flow_label(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::VER_TC_FLOW) & 0x000f_ffff
    }

    /// The payload length (everything after the fixed header, extension headers
    /// included).
    pub fn payload_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }

    /// The next header field of the fixed header.
    pub fn next_header(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::NEXT_HEADER])
    }

    /// The hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::SRC_ADDR]);
        Ipv6Addr::from(a)
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::DST_ADDR]);
        Ipv6Addr::from(a)
    }

    /// The payload after the fixed header, up to `payload_len` (clamped to the buffer).
    pub fn payload(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), HEADER_LEN, HEADER_LEN + self.payload_len() as usize)
    }

    /// Walks the extension headers (see [`walk_ext_headers`]) over the payload.
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        walk_ext_headers(self.next_header(), self.payload(), HEADER_LEN)
    }
}

/// Steps over IPv6 extension headers.
///
/// `first` is the next header value of the fixed header, `data` the bytes after the
/// fixed header (the payload, possibly cut short), and `base` the offset of `data`
/// within the packet, added to the returned offset. Hop-by-hop, routing and
/// destination options headers are `(len + 1) * 8` bytes, AH `(len + 2) * 4`, fragment
/// 8. A fragment header with a non-zero offset ends the walk (what follows is data).
///
/// Errors: `Truncated` if an extension header runs past `data`, `Malformed` after
/// [`MAX_EXT_HEADERS`] headers. Never panics and never reads outside `data`.
pub fn walk_ext_headers(first: IpProtocol, data: &[u8], base: usize) -> Result<UpperLayer> {
    let mut proto = first;
    let mut off = 0usize;
    let mut fragment: Option<Fragment> = None;
    for _ in 0..=MAX_EXT_HEADERS {
        if !proto.is_ipv6_extension() {
            return Ok(UpperLayer { protocol: proto, offset: base + off, fragment });
        }
        let hdr = data.get(off..off.saturating_add(2)).ok_or(Error::Truncated)?;
        let (next, len_field) = (IpProtocol(hdr[0]), hdr[1] as usize);
        let len = match proto {
            IpProtocol::FRAGMENT => FRAGMENT_HEADER_LEN,
            IpProtocol::AH => (len_field + 2) * 4,
            _ => (len_field + 1) * 8,
        };
        let body = data.get(off..off.saturating_add(len)).ok_or(Error::Truncated)?;
        off += len;
        if proto == IpProtocol::FRAGMENT {
            if fragment.is_some() {
                // Two fragment headers in one packet cannot be right.
                return Err(Error::Malformed);
            }
            let fo = get_u16(body, 2);
            let f = Fragment { offset: fo & 0xfff8, more: fo & 1 != 0, ident: get_u32(body, 4) };
            fragment = Some(f);
            if f.offset != 0 {
                return Ok(UpperLayer { protocol: next, offset: base + off, fragment });
            }
        }
        proto = next;
    }
    Err(Error::Malformed)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, the traffic class and the flow label in one go.
    pub fn set_version_tc_flow(&mut self, traffic_class: u8, flow_label: u32) {
        let v = (6u32 << 28) | ((traffic_class as u32) << 20) | (flow_label & 0x000f_ffff);
        put_u32(self.buffer.as_mut(), field::VER_TC_FLOW, v);
    }

    /// Sets the payload length.
    pub fn set_payload_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, v);
    }

    /// Sets the next header of the fixed header.
    pub fn set_next_header(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::NEXT_HEADER] = v.0;
    }

    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v;
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// The payload, mutable (clamped as [`Packet::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = HEADER_LEN + self.payload_len() as usize;
        crate::clamped_mut(self.buffer.as_mut(), HEADER_LEN, end)
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The fixed IPv6 header in structured form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv6Repr {
    /// Source address.
    pub src_addr: Ipv6Addr,
    /// Destination address.
    pub dst_addr: Ipv6Addr,
    /// Next header of the fixed header.
    pub next_header: IpProtocol,
    /// Payload length (extension headers included).
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Ipv6Repr {
    /// Reads the fixed header of a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Ipv6Repr> {
        p.check_len()?;
        Ok(Ipv6Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: p.payload_len() as usize,
            hop_limit: p.hop_limit(),
        })
    }

    /// The header length [`Ipv6Repr::emit`] writes (40).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes the fixed header (traffic class and flow label 0) into a buffer of at
    /// least 40 bytes. The payload length saturates at 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_version_tc_flow(0, 0);
        p.set_payload_len(self.payload_len.min(u16::MAX as usize) as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2001:db8::1 -> 2001:db8::2, hop limit 64, with the given next header and payload.
    fn packet(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![
            0x60,
            0x00,
            0x00,
            0x00, // version, tc, flow
            0x00,
            payload.len() as u8,
            next,
            64,
            0x20,
            0x01,
            0x0d,
            0xb8,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            1,
            0x20,
            0x01,
            0x0d,
            0xb8,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            0,
            2,
        ];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn read_fields() {
        let mut b = packet(6, &[0u8; 20]);
        b.extend_from_slice(&[0xee; 6]); // Ethernet padding
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 6);
        assert_eq!((p.traffic_class(), p.flow_label()), (0, 0));
        assert_eq!(p.payload_len(), 20);
        assert_eq!(p.next_header(), IpProtocol::TCP);
        assert_eq!(p.hop_limit(), 64);
        assert_eq!(p.src_addr(), "2001:db8::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst_addr(), "2001:db8::2".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.payload().len(), 20);
        let ul = p.upper_layer().unwrap();
        assert_eq!(ul, UpperLayer { protocol: IpProtocol::TCP, offset: 40, fragment: None });
        let r = Ipv6Repr::parse(&p).unwrap();
        let mut out = [0u8; 40];
        r.emit(&mut Packet::new_unchecked(&mut out[..]));
        assert_eq!(&out[..], &b[..40]);
    }

    #[test]
    fn checks() {
        let b = packet(17, &[0u8; 8]);
        assert_eq!(Packet::new_checked(&b[..39]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&b[..47]).unwrap_err(), Error::Truncated);
        assert!(Packet::new_checked_header(&b[..44]).is_ok());
        let mut bad = b.clone();
        bad[0] = 0x40;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn walk_hop_by_hop_dstopts_to_udp() {
        let payload = [
            60, 0, 1, 4, 0, 0, 0, 0, // hop-by-hop: next dstopts, 8 bytes, PadN
            17, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // dstopts: next UDP, 16 bytes
            0x30, 0x39, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00, // UDP
        ];
        let b = packet(0, &payload);
        let ul = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!(ul.protocol, IpProtocol::UDP);
        assert_eq!(ul.offset, 40 + 24);
        assert!(!ul.has_fragment_header());
    }

    #[test]
    fn walk_fragments() {
        // First fragment: offset 0, M=1, ident 0x01020304, then TCP.
        let first = packet(44, &[6, 0, 0x00, 0x01, 1, 2, 3, 4, 0, 0]);
        let ul = Packet::new_checked(&first[..]).unwrap().upper_layer().unwrap();
        assert_eq!(ul.protocol, IpProtocol::TCP);
        assert_eq!(ul.offset, 48);
        assert_eq!(ul.fragment, Some(Fragment { offset: 0, more: true, ident: 0x0102_0304 }));
        assert!(ul.is_fragment());
        // Later fragment: offset 1448, last; the walk stops at the fragment header.
        let later = packet(44, &[6, 0, 0x05, 0xa8, 1, 2, 3, 4, 0xde, 0xad]);
        let ul = Packet::new_checked(&later[..]).unwrap().upper_layer().unwrap();
        assert_eq!((ul.protocol, ul.offset), (IpProtocol::TCP, 48));
        assert_eq!(ul.fragment.unwrap().offset, 1448);
        assert!(!ul.fragment.unwrap().more);
        // Atomic fragment: header present but not a fragment.
        let atomic = packet(44, &[17, 0, 0, 0, 0, 0, 0, 1]);
        let ul = Packet::new_checked(&atomic[..]).unwrap().upper_layer().unwrap();
        assert!(ul.has_fragment_header() && !ul.is_fragment());
    }

    #[test]
    fn walk_ah_and_garbage() {
        // AH with payload len 1 -> (1 + 2) * 4 = 12 bytes, then ICMPv6.
        let ah = packet(51, &[58, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 128, 0, 0, 0]);
        let ul = Packet::new_checked(&ah[..]).unwrap().upper_layer().unwrap();
        assert_eq!((ul.protocol, ul.offset), (IpProtocol::ICMPV6, 52));
        // Hop-by-hop claiming 16 bytes in an 8-byte payload.
        let short = packet(0, &[6, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(Packet::new_checked(&short[..]).unwrap().upper_layer(), Err(Error::Truncated));
        // Empty payload with an extension header announced.
        let empty = packet(43, &[]);
        assert_eq!(Packet::new_checked(&empty[..]).unwrap().upper_layer(), Err(Error::Truncated));
        // A chain of nine hop-by-hop headers is refused.
        let mut chain = Vec::new();
        for _ in 0..9 {
            chain.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0]);
        }
        let long = packet(0, &chain);
        assert_eq!(Packet::new_checked(&long[..]).unwrap().upper_layer(), Err(Error::Malformed));
        // Two fragment headers are refused.
        let two = packet(44, &[44, 0, 0, 1, 0, 0, 0, 1, 6, 0, 0, 1, 0, 0, 0, 1]);
        assert_eq!(Packet::new_checked(&two[..]).unwrap().upper_layer(), Err(Error::Malformed));
    }

    #[test]
    fn setters() {
        let mut b = packet(6, &[0u8; 4]);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version_tc_flow(0xb8, 0x12345);
        p.set_hop_limit(1);
        p.set_next_header(IpProtocol::UDP);
        p.set_payload_len(2);
        p.payload_mut().copy_from_slice(&[7, 7]);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.traffic_class(), p.flow_label(), p.hop_limit()), (0xb8, 0x12345, 1));
        assert_eq!(p.payload(), &[7, 7]);
    }
}
