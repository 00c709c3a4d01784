//! ICMP for IPv4 (RFC 792, RFC 1191 for "fragmentation needed").
//!
//! The view's buffer is the whole ICMP message (the IPv4 payload): the checksum
//! covers all of it. For error messages, [`Packet::inner`] is the quoted packet: the
//! offending IP header and at least the first 8 bytes of its payload.

use core::fmt;

use crate::checksum;
use crate::{get_u16, get_u32, put_u16, put_u32, Error, Result};

/// Byte ranges of the ICMPv4 header fields.
mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQNO: usize = 6;
    pub const POINTER: usize = 4;
    pub const MTU: usize = 6;
    pub const DATA: usize = 8;
}

/// Length of the header (type, code, checksum and the 4 type-specific bytes).
pub const HEADER_LEN: usize = field::DATA;
/// Byte offset of the checksum.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// An ICMPv4 message type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Message(pub u8);

impl Message {
    /// Echo reply.
    pub const ECHO_REPLY: Message = Message(0);
    /// Destination unreachable (codes in [`dst_unreachable`]).
    pub const DST_UNREACHABLE: Message = Message(3);
    /// Redirect.
    pub const REDIRECT: Message = Message(5);
    /// Echo request.
    pub const ECHO_REQUEST: Message = Message(8);
    /// Time exceeded (codes in [`time_exceeded`]).
    pub const TIME_EXCEEDED: Message = Message(11);
    /// Parameter problem (pointer in byte 4).
    pub const PARAM_PROBLEM: Message = Message(12);

    /// Whether this type is an error that quotes the offending packet.
    pub const fn is_error(self) -> bool {
        matches!(self.0, 3 | 4 | 5 | 11 | 12)
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            0 => f.write_str("EchoReply"),
            3 => f.write_str("DstUnreachable"),
            5 => f.write_str("Redirect"),
            8 => f.write_str("EchoRequest"),
            11 => f.write_str("TimeExceeded"),
            12 => f.write_str("ParamProblem"),
            n => write!(f, "Message({n})"),
        }
    }
}

/// Codes of [`Message::DST_UNREACHABLE`].
pub mod dst_unreachable {
    /// Network unreachable.
    pub const NET: u8 = 0;
    /// Host unreachable.
    pub const HOST: u8 = 1;
    /// Protocol unreachable.
    pub const PROTOCOL: u8 = 2;
    /// Port unreachable.
    pub const PORT: u8 = 3;
    /// Fragmentation needed and DF set (next-hop MTU in bytes 6-7, RFC 1191).
    pub const FRAG_NEEDED: u8 = 4;
    /// Source route failed.
    pub const SOURCE_ROUTE_FAILED: u8 = 5;
    /// Communication administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// Codes of [`Message::TIME_EXCEEDED`].
pub mod time_exceeded {
    /// TTL exceeded in transit.
    pub const TTL: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// A view of an ICMPv4 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors panic if it is shorter than 8 bytes.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after checking that the 8-byte header is present.
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the 8-byte header is present.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
            Err(Error::Truncated)
        } else {
            Ok(())
        }
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The message type.
    pub fn msg_type(&self) -> Message {
        Message(self.buffer.as_ref()[field::TYPE])
    }

    /// The message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum as stored.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The echo identifier (echo request/reply).
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// The echo sequence number (echo request/reply).
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// The next-hop MTU of a "fragmentation needed" error (0 from pre-RFC 1191 routers).
    pub fn next_hop_mtu(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::MTU)
    }

    /// The pointer of a parameter problem.
    pub fn pointer(&self) -> u8 {
        self.buffer.as_ref()[field::POINTER]
    }

    /// The 4 type-specific bytes after the checksum, as one word.
    pub fn rest_of_header(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// Everything after the 8-byte header (echo data, or the quoted packet).
    pub fn data(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), field::DATA, usize::MAX)
    }

    /// The quoted packet (IP header + at least 8 bytes of its payload) if this is an
    /// error message, `None` otherwise.
    pub fn inner(&self) -> Option<&[u8]> {
        if self.msg_type().is_error() {
            Some(self.data())
        } else {
            None
        }
    }

    /// Whether the checksum (over the whole buffer) is correct.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::ones_sum(self.buffer.as_ref(), 0)) == 0
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the message type.
    pub fn set_msg_type(&mut self, v: Message) {
        self.buffer.as_mut()[field::TYPE] = v.0;
    }

    /// Sets the message code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the stored checksum.
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::ECHO_SEQNO, v);
    }

    /// Sets the next-hop MTU (and clears the unused bytes 4-5).
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::ECHO_IDENT, 0);
        put_u16(self.buffer.as_mut(), field::MTU, v);
    }

    /// Sets the 4 type-specific bytes after the checksum.
    pub fn set_rest_of_header(&mut self, v: u32) {
        put_u32(self.buffer.as_mut(), field::ECHO_IDENT, v);
    }

    /// The data after the header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        crate::clamped_mut(self.buffer.as_mut(), field::DATA, usize::MAX)
    }

    /// Computes and stores the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
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

    // Echo request id 0x1234 seq 1, data "hi", checksum zeroed.
    static ECHO: [u8; 10] = [0x08, 0x00, 0x00, 0x00, 0x12, 0x34, 0x00, 0x01, b'h', b'i'];

    #[test]
    fn echo() {
        let mut b = ECHO;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum();
        // ~(0x0800 + 0x1234 + 0x0001 + 0x6869) = ~0x829e = 0x7d61
        assert_eq!(p.checksum(), 0x7d61);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), Message::ECHO_REQUEST);
        assert_eq!((p.msg_code(), p.echo_ident(), p.echo_seq_no()), (0, 0x1234, 1));
        assert_eq!(p.data(), b"hi");
        assert_eq!(p.inner(), None);
        assert!(p.verify_checksum());
        assert_eq!(Packet::new_checked(&b[..7]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn frag_needed_error() {
        // Dest unreachable / frag needed, MTU 1400, quoting a 20-byte IP header + 8 bytes.
        let mut b = [0u8; 36];
        b[0] = 3;
        b[1] = dst_unreachable::FRAG_NEEDED;
        b[8] = 0x45;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_next_hop_mtu(1400);
        p.fill_checksum();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), Message::DST_UNREACHABLE);
        assert_eq!(p.next_hop_mtu(), 1400);
        assert_eq!(p.rest_of_header(), 1400);
        assert_eq!(p.inner().unwrap().len(), 28);
        assert!(p.verify_checksum());
        assert_eq!(format!("{:?}", p.msg_type()), "DstUnreachable");
    }
}
