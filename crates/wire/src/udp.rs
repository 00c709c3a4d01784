//! UDP datagrams (RFC 768).
//!
//! The view's buffer starts at the UDP header; the datagram ends at the UDP length
//! field (bytes after it are ignored). Over IPv4 a checksum of 0 means "no checksum";
//! over IPv6 the checksum is mandatory (RFC 8200), so 0 never verifies there.

use std::net::IpAddr;

use crate::checksum;
use crate::ip::IpProtocol;
use crate::{get_u16, put_u16, Error, Result};

/// Byte ranges of the UDP header fields.
mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const LENGTH: usize = 4;
    pub const CHECKSUM: usize = 6;
}

/// Length of the header.
pub const HEADER_LEN: usize = 8;
/// Byte offset of the source port.
pub const SRC_PORT_OFFSET: usize = field::SRC_PORT;
/// Byte offset of the destination port.
pub const DST_PORT_OFFSET: usize = field::DST_PORT;
/// Byte offset of the checksum.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// A view of a UDP datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors panic if it is shorter than 8 bytes.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the header is present, the length field is at least 8 and the
    /// whole datagram is present.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = self.len() as usize;
        if l < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < l {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The source port.
    pub fn src_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::SRC_PORT)
    }

    /// The destination port.
    pub fn dst_port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::DST_PORT)
    }

    /// The length field (header + payload).
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LENGTH)
    }

    /// Whether the payload is empty (length field 8 or less).
    pub fn is_empty(&self) -> bool {
        self.len() as usize <= HEADER_LEN
    }

    /// The checksum as stored (0: none, over IPv4).
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The payload, up to the length field (clamped to the buffer).
    pub fn payload(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), HEADER_LEN, self.len() as usize)
    }

    /// The datagram as the length field delimits it (clamped to the buffer).
    fn datagram(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), 0, self.len() as usize)
    }

    /// The checksum to transmit between `src` and `dst` (the stored field taken as
    /// zero, a computed 0 given as 0xffff).
    pub fn compute_checksum(&self, src: IpAddr, dst: IpAddr) -> u16 {
        let d = self.datagram();
        let ph = checksum::pseudo_header(src, dst, IpProtocol::UDP.0, d.len() as u32);
        let sum = checksum::ones_sum(d, ph);
        let stored = if d.len() >= HEADER_LEN { self.checksum() } else { 0 };
        checksum::udp_nonzero(checksum::fold(checksum::combine(sum, (!stored) as u32)))
    }

    /// Whether the checksum is correct; a zero checksum over IPv4 means "none" and is
    /// accepted, over IPv6 it is refused.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        if self.checksum() == 0 {
            return src.is_ipv4();
        }
        let d = self.datagram();
        let ph = checksum::pseudo_header(src, dst, IpProtocol::UDP.0, d.len() as u32);
        checksum::fold(checksum::ones_sum(d, ph)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::SRC_PORT, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::DST_PORT, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::LENGTH, v);
    }

    /// Sets the stored checksum.
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// The payload, mutable (clamped as [`Packet::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = self.len() as usize;
        crate::clamped_mut(self.buffer.as_mut(), HEADER_LEN, l)
    }

    /// Computes and stores the checksum for a datagram between `src` and `dst`.
    pub fn fill_checksum(&mut self, src: IpAddr, dst: IpAddr) {
        self.set_checksum(0);
        let c = self.compute_checksum(src, dst);
        self.set_checksum(c);
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

    // 12345 -> 53, length 12, checksum 0 (none), payload "abcd", then 2 bytes of padding.
    static DGRAM: [u8; 14] = [0x30, 0x39, 0x00, 0x35, 0x00, 0x0c, 0x00, 0x00, b'a', b'b', b'c', b'd', 0, 0];

    #[test]
    fn read_fields() {
        let p = Packet::new_checked(&DGRAM[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port(), p.len()), (12345, 53, 12));
        assert_eq!(p.payload(), b"abcd");
        assert!(!p.is_empty());
        assert!(p.verify_checksum(SRC, DST), "zero means none over IPv4");
        let v6: IpAddr = Ipv6Addr::LOCALHOST.into();
        assert!(!p.verify_checksum(v6, v6), "zero is invalid over IPv6");
    }

    #[test]
    fn checks() {
        assert_eq!(Packet::new_checked(&DGRAM[..7]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&DGRAM[..11]).unwrap_err(), Error::Truncated);
        let mut b = DGRAM;
        b[5] = 7;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
    }

    #[test]
    fn fill_and_verify() {
        let mut b = DGRAM;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(SRC, DST);
        assert_ne!(p.checksum(), 0);
        assert!(p.verify_checksum(SRC, DST));
        p.payload_mut()[0] = b'z';
        assert!(!p.verify_checksum(SRC, DST));
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_len(8);
        p.fill_checksum(SRC, DST);
        assert!(p.payload().is_empty() && p.verify_checksum(SRC, DST));
    }

    #[test]
    fn computed_zero_is_sent_as_ffff() {
        // Find a port making the sum come out as 0 and check the 0xffff substitution.
        let mut b = [0u8; 8];
        let mut found = false;
        for port in 0..=u16::MAX {
            let mut p = Packet::new_unchecked(&mut b[..]);
            p.set_len(8);
            p.set_src_port(port);
            p.fill_checksum(SRC, DST);
            if p.checksum() == 0xffff {
                assert!(p.verify_checksum(SRC, DST));
                found = true;
                break;
            }
        }
        assert!(found);
    }
}
