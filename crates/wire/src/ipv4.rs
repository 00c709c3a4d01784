//! IPv4 headers (RFC 791), options kept in place.
//!
//! The view's buffer starts at the IPv4 header and may extend past `total_len` (Ethernet
//! padding of short frames): [`Packet::payload`] ends at `total_len`, not at the end of
//! the buffer. A packet quoted inside an ICMP error is usually cut short; view it with
//! [`Packet::new_checked_header`], which only requires the header to be present.

use std::net::Ipv4Addr;

use crate::checksum;
use crate::ip::IpProtocol;
use crate::{get_u16, put_u16, Error, Result};

/// Byte ranges of the IPv4 header fields.
mod field {
    use core::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const DSCP_ECN: usize = 1;
    pub const LENGTH: usize = 2;
    pub const IDENT: usize = 4;
    pub const FLG_OFF: usize = 6;
    pub const TTL: usize = 8;
    pub const PROTOCOL: usize = 9;
    pub const CHECKSUM: usize = 10;
    pub const SRC_ADDR: Range<usize> = 12..16;
    pub const DST_ADDR: Range<usize> = 16..20;
}

/// Byte range of the checksum field, for callers that patch it directly.
pub const CHECKSUM_RANGE: core::ops::Range<usize> = 10..12;
/// Byte range of the source address.
pub const SRC_ADDR_RANGE: core::ops::Range<usize> = field::SRC_ADDR;
/// Byte range of the destination address.
pub const DST_ADDR_RANGE: core::ops::Range<usize> = field::DST_ADDR;

/// Length of the header without options.
pub const HEADER_LEN: usize = 20;
/// Longest possible header (IHL 15).
pub const MAX_HEADER_LEN: usize = 60;

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;
const OFFSET_MASK: u16 = 0x1fff;

/// A view of an IPv4 packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; fixed-field accessors panic if it is shorter
    /// than 20 bytes.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`]: version 4, IHL at least 5, the
    /// header and `total_len` bytes present, `total_len` at least the header length.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Wraps a buffer after checking only the header (version, IHL, header present,
    /// `total_len` not below the header length): for a packet quoted in an ICMP error,
    /// whose tail is missing. The payload is then whatever is present, up to
    /// `total_len`.
    pub fn new_checked_header(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_header()?;
        Ok(p)
    }

    /// Checks the header alone (see [`Packet::new_checked_header`]).
    pub fn check_header(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if data[field::VER_IHL] >> 4 != 4 {
            return Err(Error::Malformed);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if data.len() < hl {
            return Err(Error::Truncated);
        }
        if (self.total_len() as usize) < hl {
            return Err(Error::Malformed);
        }
        Ok(())
    }

    /// Checks the header and that the whole packet (`total_len`) is present.
    pub fn check_len(&self) -> Result<()> {
        self.check_header()?;
        if self.buffer.as_ref().len() < self.total_len() as usize {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The version nibble (4 once checked).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// The header length in bytes (IHL x 4), options included.
    pub fn header_len(&self) -> usize {
        (self.buffer.as_ref()[field::VER_IHL] & 0x0f) as usize * 4
    }

    /// The differentiated services code point.
    pub fn dscp(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] >> 2
    }

    /// The explicit congestion notification bits.
    pub fn ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN] & 0x03
    }

    /// The total length of the packet (header + payload).
    pub fn total_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// The identification field.
    pub fn ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::IDENT)
    }

    /// The "don't fragment" flag.
    pub fn dont_frag(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_DF != 0
    }

    /// The "more fragments" flag.
    pub fn more_frags(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & FLAG_MF != 0
    }

    /// The fragment offset, in bytes (the field counts 8-byte units).
    pub fn frag_offset(&self) -> u16 {
        (get_u16(self.buffer.as_ref(), field::FLG_OFF) & OFFSET_MASK) << 3
    }

    /// Whether this packet is a fragment (first or later) of a larger datagram.
    pub fn is_fragment(&self) -> bool {
        get_u16(self.buffer.as_ref(), field::FLG_OFF) & (FLAG_MF | OFFSET_MASK) != 0
    }

    /// The time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// The protocol of the payload.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// The header checksum as stored.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The raw options (bytes 20 to the header length; clamped to the buffer).
    pub fn options(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), HEADER_LEN, self.header_len())
    }

    /// The header, options included (clamped to the buffer).
    pub fn header(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), 0, self.header_len())
    }

    /// The payload: from the header length to `total_len` (clamped to the buffer), so
    /// Ethernet padding is excluded.
    pub fn payload(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), self.header_len(), self.total_len() as usize)
    }

    /// Whether the header checksum is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::ones_sum(self.header(), 0)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the version nibble.
    pub fn set_version(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0x0f) | (v << 4);
    }

    /// Sets the header length in bytes (rounded down to a multiple of 4, at most 60).
    pub fn set_header_len(&mut self, len: usize) {
        let ihl = (len.min(MAX_HEADER_LEN) / 4) as u8;
        let b = &mut self.buffer.as_mut()[field::VER_IHL];
        *b = (*b & 0xf0) | ihl;
    }

    /// Sets the DSCP (6 bits).
    pub fn set_dscp(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0x03) | (v << 2);
    }

    /// Sets the ECN bits (2 bits).
    pub fn set_ecn(&mut self, v: u8) {
        let b = &mut self.buffer.as_mut()[field::DSCP_ECN];
        *b = (*b & 0xfc) | (v & 0x03);
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::IDENT, v);
    }

    fn set_flg_off(&mut self, mask: u16, v: u16) {
        let old = get_u16(self.buffer.as_ref(), field::FLG_OFF);
        put_u16(self.buffer.as_mut(), field::FLG_OFF, (old & !mask) | (v & mask));
    }

    /// Clears the flags and the fragment offset.
    pub fn clear_flags(&mut self) {
        self.set_flg_off(0xffff, 0);
    }

    /// Sets or clears "don't fragment".
    pub fn set_dont_frag(&mut self, v: bool) {
        self.set_flg_off(FLAG_DF, if v { FLAG_DF } else { 0 });
    }

    /// Sets or clears "more fragments".
    pub fn set_more_frags(&mut self, v: bool) {
        self.set_flg_off(FLAG_MF, if v { FLAG_MF } else { 0 });
    }

    /// Sets the fragment offset, in bytes (rounded down to a multiple of 8).
    pub fn set_frag_offset(&mut self, bytes: u16) {
        self.set_flg_off(OFFSET_MASK, bytes >> 3);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = v.0;
    }

    /// Sets the stored header checksum.
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the source address (the checksum is not updated).
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address (the checksum is not updated).
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Recomputes the header checksum over the header (20 bytes + options).
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.header());
        self.set_checksum(c);
    }

    /// The options, mutable (clamped to the buffer).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        crate::clamped_mut(self.buffer.as_mut(), HEADER_LEN, hl)
    }

    /// The payload, mutable (clamped as [`Packet::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (hl, tl) = (self.header_len(), self.total_len() as usize);
        crate::clamped_mut(self.buffer.as_mut(), hl, tl)
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An IPv4 header without options, in structured form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Protocol of the payload.
    pub protocol: IpProtocol,
    /// Payload length (total length minus the 20-byte header).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// Identification.
    pub ident: u16,
    /// "Don't fragment".
    pub dont_frag: bool,
}

impl Ipv4Repr {
    /// Reads a checked packet, verifying the header checksum (`Error::Checksum`) and
    /// refusing fragments (`Error::Unsupported`). Options are skipped.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<Ipv4Repr> {
        p.check_len()?;
        if !p.verify_checksum() {
            return Err(Error::Checksum);
        }
        if p.is_fragment() {
            return Err(Error::Unsupported);
        }
        Ok(Ipv4Repr {
            src_addr: p.src_addr(),
            dst_addr: p.dst_addr(),
            protocol: p.protocol(),
            payload_len: p.total_len() as usize - p.header_len(),
            ttl: p.ttl(),
            ident: p.ident(),
            dont_frag: p.dont_frag(),
        })
    }

    /// The header length [`Ipv4Repr::emit`] writes (20).
    pub const fn buffer_len(&self) -> usize {
        HEADER_LEN
    }

    /// Writes a 20-byte header with a correct checksum into a buffer of at least 20
    /// bytes. The total length saturates at 65535.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.buffer.as_mut()[field::VER_IHL] = 0x45;
        p.buffer.as_mut()[field::DSCP_ECN] = 0;
        p.set_total_len((HEADER_LEN + self.payload_len).min(u16::MAX as usize) as u16);
        p.set_ident(self.ident);
        p.clear_flags();
        p.set_dont_frag(self.dont_frag);
        p.set_ttl(self.ttl);
        p.set_protocol(self.protocol);
        p.set_src_addr(self.src_addr);
        p.set_dst_addr(self.dst_addr);
        p.fill_checksum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // 192.168.0.1 -> 192.168.0.199, UDP, total 0x73, DF, TTL 64, csum 0xb861,
    // followed by 2 bytes of Ethernet padding beyond total_len in the truncated copy.
    static HEADER: [u8; 20] = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
        0x00, 0xc7,
    ];

    fn packet_bytes() -> Vec<u8> {
        let mut v = HEADER.to_vec();
        v.resize(0x73, 0xab);
        v.extend_from_slice(&[0, 0]); // padding
        v
    }

    #[test]
    fn read_fields() {
        let b = packet_bytes();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.version(), 4);
        assert_eq!(p.header_len(), 20);
        assert_eq!(p.total_len(), 0x73);
        assert!(p.dont_frag() && !p.more_frags() && !p.is_fragment());
        assert_eq!(p.frag_offset(), 0);
        assert_eq!(p.ttl(), 64);
        assert_eq!(p.protocol(), IpProtocol::UDP);
        assert_eq!(p.checksum(), 0xb861);
        assert_eq!(p.src_addr(), Ipv4Addr::new(192, 168, 0, 1));
        assert_eq!(p.dst_addr(), Ipv4Addr::new(192, 168, 0, 199));
        assert_eq!(p.payload().len(), 0x73 - 20, "padding excluded");
        assert!(p.options().is_empty());
        assert!(p.verify_checksum());
        let r = Ipv4Repr::parse(&p).unwrap();
        assert_eq!(r.payload_len, 0x73 - 20);
    }

    #[test]
    fn checks() {
        let b = packet_bytes();
        assert_eq!(Packet::new_checked(&b[..19]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&b[..0x72]).unwrap_err(), Error::Truncated);
        // The header alone is fine for a quoted packet.
        let q = Packet::new_checked_header(&b[..28]).unwrap();
        assert_eq!(q.payload().len(), 8);
        let mut bad = b.clone();
        bad[0] = 0x65;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
        bad[0] = 0x44;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
        bad[0] = 0x4f; // 60-byte header in a 28-byte buffer
        assert_eq!(Packet::new_checked(&bad[..28]).unwrap_err(), Error::Truncated);
        let mut bad = b.clone();
        bad[2] = 0;
        bad[3] = 19;
        assert_eq!(Packet::new_checked(&bad[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn fragments() {
        let mut b = packet_bytes();
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_more_frags(true);
        assert!(p.is_fragment() && p.dont_frag());
        p.set_more_frags(false);
        p.set_frag_offset(1480);
        assert_eq!(p.frag_offset(), 1480);
        assert!(p.is_fragment());
        p.fill_checksum();
        assert_eq!(Ipv4Repr::parse(&p).unwrap_err(), Error::Unsupported);
    }

    #[test]
    fn options_and_setters() {
        // IHL 6: one 4-byte option (NOP NOP NOP EOL).
        let mut b = [0u8; 24 + 4];
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_version(4);
        p.set_header_len(24);
        p.set_total_len(28);
        p.set_ttl(1);
        p.set_protocol(IpProtocol::ICMP);
        p.set_src_addr(Ipv4Addr::new(10, 0, 0, 1));
        p.set_dst_addr(Ipv4Addr::new(10, 0, 0, 2));
        p.set_dscp(46);
        p.set_ecn(1);
        p.options_mut().copy_from_slice(&[1, 1, 1, 0]);
        p.payload_mut().copy_from_slice(&[8, 0, 0, 0]);
        p.fill_checksum();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.dscp(), p.ecn()), (46, 1));
        assert_eq!(p.options(), &[1, 1, 1, 0]);
        assert_eq!(p.payload(), &[8, 0, 0, 0]);
        assert!(p.verify_checksum());
    }

    #[test]
    fn repr_emit() {
        let r = Ipv4Repr {
            src_addr: Ipv4Addr::new(192, 168, 0, 1),
            dst_addr: Ipv4Addr::new(192, 168, 0, 199),
            protocol: IpProtocol::UDP,
            payload_len: 0x73 - 20,
            ttl: 64,
            ident: 0,
            dont_frag: true,
        };
        let mut b = [0u8; 20];
        r.emit(&mut Packet::new_unchecked(&mut b[..]));
        assert_eq!(b, HEADER);
    }
}
