//! DPVS's UOA ("UDP option of address"): how a FullNAT balancer tells a real server the
//! address of a UDP client whose datagrams it forwards from a local address.
//!
//! Read from iqiyi/dpvs v1.10.2, commit `4582d20dc6cc16ab123c3b72e245e3ec9a47965b`
//! (2025-06-23): `include/uoa.h` (the structures), `src/ipvs/ip_vs_proto_udp.c`
//! (`insert_ipopt_uoa`, `insert_opp_uoa`, `send_standalone_uoa`: what the balancer
//! writes) and `kmod/uoa/uoa.c` (`uoa_parse_ipopt`, `uoa_opp_rcv`: what the real
//! server's kernel module accepts). DPVS inserts the address into the first few
//! datagrams of a connection (3 by default) in one of two modes.
//!
//! # The UOA option (`struct ipopt_uoa`), [`UoaOption`] / [`UoaRepr`]
//!
//! An option in IPv4-option format (kind, length, data), all fields in network byte
//! order, 8 bytes for an IPv4 client (`IPOLEN_UOA_IPV4`) and 20 for an IPv6 one
//! (`IPOLEN_UOA_IPV6`):
//!
//! ```text
//!  0      op_code  IPOPT_UOA = 31 (31 | IPOPT_CONTROL, and IPOPT_CONTROL is 0: class 0,
//!                  not copied into fragments)
//!  1      op_len   8 or 20: the whole option; it also tells the address family
//!  2..4   op_port  the client's source port
//!  4..8   op_addr  the client's IPv4 address          (op_len 8)
//!  4..20  op_addr  the client's IPv6 address          (op_len 20)
//! ```
//!
//! # IP option mode (`UOA_M_IPO`, `uoa_mode ipo`): IPv4 only
//!
//! The 8-byte option goes into the IPv4 header's options, after any existing ones:
//! the header length grows by 2 words and the total length by 8; the protocol stays
//! UDP. With no other option:
//!
//! ```text
//!  0..20  IPv4 header, IHL 7, protocol 17
//!  20     0x1f  31 IPOPT_UOA
//!  21     0x08  op_len
//!  22..24 client port
//!  24..28 client IPv4 address
//!  28     UDP header
//! ```
//!
//! # Option protocol mode (`UOA_M_OPP`, the default): IPv4, IPv6 and NAT64
//!
//! A shim header (`struct opphdr`) between the IP header and the UDP header, announced
//! by IP protocol / IPv6 next header [`IPPROTO_OPT`] (248), because many switches drop
//! or rate-limit IPv4 packets with options. [`OppPacket`] / [`OppRepr`]:
//!
//! ```text
//!  0      version (high nibble) | reserved (low nibble, must be 0):
//!         0x10 (OPPHDR_IPV4) for an IPv4 client, 0x20 (OPPHDR_IPV6) for an IPv6 one
//!         (in C a bitfield pair: `version:4, rsvd0:4` on big-endian hosts)
//!  1      protocol: the next header, IPPROTO_UDP (17)
//!  2..4   length: of this header and its options, not of the payload: 4 + 8 = 12 for
//!         an IPv4 client, 4 + 20 = 24 for an IPv6 one
//!  4..    options in IPv4-option format; DPVS writes exactly one, the UOA option
//!  length UDP header
//! ```
//!
//! The version follows the client's address family, not the outer IP header's: with
//! NAT64 an IPv6 client's datagram reaches an IPv4 real server as IPv4 protocol 248
//! carrying version 2 and a 20-byte option. The outer IPv4 total length or IPv6 payload
//! length includes the shim. The UDP checksum is the ordinary one (pseudo-header with
//! protocol 17 and the UDP length); DPVS sends 0 (none) over IPv4 when the shim is
//! present and computes it over IPv6.
//!
//! When there is no room in the datagram (MTU, IPv4 option space, IPv6 extension
//! headers), DPVS sends a separate empty UDP datagram (UDP length 8) from the same
//! local address and port to the real server, carrying the option in the same mode.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::ip::IpProtocol;
use crate::{get_u16, put_u16, Error, Result};

/// Byte offsets of the UOA option fields (`struct ipopt_uoa`).
mod opt_field {
    use core::ops::Range;
    pub const OP_CODE: usize = 0;
    pub const OP_LEN: usize = 1;
    pub const OP_PORT: usize = 2;
    pub const OP_ADDR4: Range<usize> = 4..8;
    pub const OP_ADDR6: Range<usize> = 4..20;
}

/// Byte offsets of the option protocol header fields (`struct opphdr`).
mod opp_field {
    pub const VER_RSVD: usize = 0;
    pub const PROTOCOL: usize = 1;
    pub const LENGTH: usize = 2;
}

/// The option kind of the UOA option (`IPOPT_UOA`, 31 in the control class, not
/// copied into fragments).
pub const IPOPT_UOA: u8 = 31;
/// The IPv4 option "end of option list"; nothing after it is read.
pub const IPOPT_END: u8 = 0;
/// The IPv4 option "no operation" (one byte of padding).
pub const IPOPT_NOOP: u8 = 1;
/// Length of the fixed part of the UOA option (code, length, port).
pub const UOA_FIXED_LEN: usize = 4;
/// Length of a UOA option carrying an IPv4 address (`IPOLEN_UOA_IPV4`).
pub const IPOLEN_UOA_IPV4: usize = 8;
/// Length of a UOA option carrying an IPv6 address (`IPOLEN_UOA_IPV6`).
pub const IPOLEN_UOA_IPV6: usize = 20;
/// The IP protocol / IPv6 next header announcing the option protocol header
/// (`IPPROTO_OPT`, 248, from the experimental/unassigned range; fixed in DPVS).
pub const IPPROTO_OPT: IpProtocol = IpProtocol(248);
/// Length of the fixed option protocol header (version, protocol, length).
pub const OPP_HEADER_LEN: usize = 4;
/// Option protocol version for an IPv4 client address (`OPPHDR_IPV4`).
pub const OPPHDR_IPV4: u8 = 1;
/// Option protocol version for an IPv6 client address (`OPPHDR_IPV6`).
pub const OPPHDR_IPV6: u8 = 2;

/// A view of a UOA option (`struct ipopt_uoa`), starting at its code byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UoaOption<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UoaOption<T> {
    /// Wraps a buffer without checking it; accessors of the fixed fields panic if it is
    /// shorter than [`UOA_FIXED_LEN`].
    pub const fn new_unchecked(buffer: T) -> UoaOption<T> {
        UoaOption { buffer }
    }

    /// Wraps a buffer after [`UoaOption::check_len`].
    pub fn new_checked(buffer: T) -> Result<UoaOption<T>> {
        let o = Self::new_unchecked(buffer);
        o.check_len()?;
        Ok(o)
    }

    /// Checks that the fixed part is present, that the length is 8 or 20 (the only two
    /// DPVS writes, and the only two the kernel module's lookup accepts) and that the
    /// whole option is present. The code is left to [`UoaRepr::parse`].
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < UOA_FIXED_LEN {
            return Err(Error::Truncated);
        }
        let l = self.len() as usize;
        if l != IPOLEN_UOA_IPV4 && l != IPOLEN_UOA_IPV6 {
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

    /// The option code ([`IPOPT_UOA`] for a UOA option).
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[opt_field::OP_CODE]
    }

    /// The option length (8 for an IPv4 address, 20 for an IPv6 one).
    pub fn len(&self) -> u8 {
        self.buffer.as_ref()[opt_field::OP_LEN]
    }

    /// Whether the option carries no address (length 4 or less; never after
    /// [`UoaOption::new_checked`]).
    pub fn is_empty(&self) -> bool {
        self.len() as usize <= UOA_FIXED_LEN
    }

    /// The client's source port.
    pub fn port(&self) -> u16 {
        get_u16(self.buffer.as_ref(), opt_field::OP_PORT)
    }

    /// The client's address, IPv4 or IPv6 as the length says; `None` if the length is
    /// neither 8 nor 20 or the buffer is too short (never after
    /// [`UoaOption::new_checked`], unless a setter changed the length).
    pub fn addr(&self) -> Option<IpAddr> {
        let data = self.buffer.as_ref();
        match self.len() as usize {
            IPOLEN_UOA_IPV4 => {
                let o: [u8; 4] = data.get(opt_field::OP_ADDR4)?.try_into().ok()?;
                Some(Ipv4Addr::from(o).into())
            }
            IPOLEN_UOA_IPV6 => {
                let o: [u8; 16] = data.get(opt_field::OP_ADDR6)?.try_into().ok()?;
                Some(Ipv6Addr::from(o).into())
            }
            _ => None,
        }
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UoaOption<T> {
    /// Sets the option code.
    pub fn set_code(&mut self, v: u8) {
        self.buffer.as_mut()[opt_field::OP_CODE] = v;
    }

    /// Sets the option length.
    pub fn set_len(&mut self, v: u8) {
        self.buffer.as_mut()[opt_field::OP_LEN] = v;
    }

    /// Sets the client's port.
    pub fn set_port(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), opt_field::OP_PORT, v);
    }

    /// Writes the client's address (4 or 16 bytes at offset 4) and the matching length
    /// (8 or 20); panics if the buffer is shorter than that length.
    pub fn set_addr(&mut self, a: IpAddr) {
        let data = self.buffer.as_mut();
        match a {
            IpAddr::V4(a) => {
                data[opt_field::OP_ADDR4].copy_from_slice(&a.octets());
                data[opt_field::OP_LEN] = IPOLEN_UOA_IPV4 as u8;
            }
            IpAddr::V6(a) => {
                data[opt_field::OP_ADDR6].copy_from_slice(&a.octets());
                data[opt_field::OP_LEN] = IPOLEN_UOA_IPV6 as u8;
            }
        }
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for UoaOption<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// A UOA option in structured form: the client's address and source port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UoaRepr {
    /// The client's address and source port. IPv6 flow information and scope are not
    /// carried.
    pub src: SocketAddr,
}

impl UoaRepr {
    /// Reads a checked option, refusing any code but [`IPOPT_UOA`]
    /// (`Error::Unsupported`).
    pub fn parse<T: AsRef<[u8]>>(o: &UoaOption<T>) -> Result<UoaRepr> {
        o.check_len()?;
        if o.code() != IPOPT_UOA {
            return Err(Error::Unsupported);
        }
        let addr = o.addr().ok_or(Error::Malformed)?;
        Ok(UoaRepr { src: SocketAddr::new(addr, o.port()) })
    }

    /// The length [`UoaRepr::emit`] writes: 8 for an IPv4 client, 20 for an IPv6 one.
    pub const fn buffer_len(&self) -> usize {
        match self.src {
            SocketAddr::V4(_) => IPOLEN_UOA_IPV4,
            SocketAddr::V6(_) => IPOLEN_UOA_IPV6,
        }
    }

    /// Writes the option at the start of `buf` and returns its length;
    /// `Error::Truncated` if `buf` is shorter than [`UoaRepr::buffer_len`] (then
    /// nothing is written).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::Truncated)?;
        let mut o = UoaOption::new_unchecked(out);
        o.set_code(IPOPT_UOA);
        o.set_port(self.src.port());
        o.set_addr(self.src.ip());
        Ok(len)
    }
}

/// Finds the first UOA option in an area of IPv4-format options (an IPv4 header's
/// options, or an option protocol header's), as the kernel module does: `IPOPT_END`
/// ends the walk, `IPOPT_NOOP` is one byte, every other option has a length of at least
/// 2 that must fit. `Ok(None)` if there is no UOA option; `Error::Malformed` for an
/// option whose length is wrong, including a UOA option of a length other than 8 or 20.
pub fn find_uoa(options: &[u8]) -> Result<Option<UoaRepr>> {
    let mut rest = options;
    loop {
        match rest {
            [] | [IPOPT_END, ..] => return Ok(None),
            [IPOPT_NOOP, tail @ ..] => rest = tail,
            [kind, len, ..] => {
                let len = *len as usize;
                if len < 2 {
                    return Err(Error::Malformed);
                }
                let (opt, tail) = rest.split_at_checked(len).ok_or(Error::Malformed)?;
                if *kind == IPOPT_UOA {
                    let o = UoaOption::new_checked(opt).map_err(|_| Error::Malformed)?;
                    return UoaRepr::parse(&o).map(Some);
                }
                rest = tail;
            }
            [_] => return Err(Error::Malformed),
        }
    }
}

/// A view of an option protocol header (`struct opphdr`) and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OppPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> OppPacket<T> {
    /// Wraps a buffer without checking it; accessors of the fixed fields panic if it is
    /// shorter than [`OPP_HEADER_LEN`].
    pub const fn new_unchecked(buffer: T) -> OppPacket<T> {
        OppPacket { buffer }
    }

    /// Wraps a buffer after [`OppPacket::check_len`].
    pub fn new_checked(buffer: T) -> Result<OppPacket<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the fixed header is present, that the length field is at least 4,
    /// and that the header and its options are present (the payload is not checked).
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < OPP_HEADER_LEN {
            return Err(Error::Truncated);
        }
        let l = self.header_len();
        if l < OPP_HEADER_LEN {
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

    /// The version (high nibble of byte 0): the client address family,
    /// [`OPPHDR_IPV4`] or [`OPPHDR_IPV6`].
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[opp_field::VER_RSVD] >> 4
    }

    /// The reserved bits (low nibble of byte 0), zero when well-formed.
    pub fn reserved(&self) -> u8 {
        self.buffer.as_ref()[opp_field::VER_RSVD] & 0x0f
    }

    /// The protocol of what follows the header and its options (UDP).
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol(self.buffer.as_ref()[opp_field::PROTOCOL])
    }

    /// The length field: the header and its options, in bytes.
    pub fn len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), opp_field::LENGTH)
    }

    /// Whether the header has no options (length field 4 or less).
    pub fn is_empty(&self) -> bool {
        self.header_len() <= OPP_HEADER_LEN
    }

    /// The length field as a `usize`: where the payload (the UDP header) starts.
    pub fn header_len(&self) -> usize {
        self.len() as usize
    }

    /// The options (clamped to the buffer).
    pub fn options(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), OPP_HEADER_LEN, self.header_len())
    }

    /// The first UOA option among the options, as [`find_uoa`].
    pub fn uoa(&self) -> Result<Option<UoaRepr>> {
        find_uoa(self.options())
    }

    /// What follows the header and its options: the UDP datagram (clamped to the
    /// buffer).
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        crate::clamped(data, self.header_len(), data.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> OppPacket<T> {
    /// Sets the version nibble (masked to 4 bits) and clears the reserved bits.
    pub fn set_version(&mut self, v: u8) {
        self.buffer.as_mut()[opp_field::VER_RSVD] = (v & 0x0f) << 4;
    }

    /// Sets the protocol of what follows.
    pub fn set_protocol(&mut self, v: IpProtocol) {
        self.buffer.as_mut()[opp_field::PROTOCOL] = v.0;
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), opp_field::LENGTH, v);
    }

    /// The options, mutable (clamped as [`OppPacket::options`]).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let l = self.header_len();
        crate::clamped_mut(self.buffer.as_mut(), OPP_HEADER_LEN, l)
    }

    /// The payload, mutable (clamped as [`OppPacket::payload`]).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let l = self.header_len();
        let data = self.buffer.as_mut();
        let end = data.len();
        crate::clamped_mut(data, l, end)
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for OppPacket<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// An option protocol header as DPVS writes it: the next protocol and one UOA option,
/// the version following the option's address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OppRepr {
    /// The protocol of what follows (UDP).
    pub protocol: IpProtocol,
    /// The client's address and port.
    pub uoa: UoaRepr,
}

impl OppRepr {
    /// Reads a checked header. `Error::Unsupported` for a version other than 1 or 2;
    /// `Error::Malformed` for reserved bits set, malformed options, no UOA option, or a
    /// UOA address of another family than the version says.
    pub fn parse<T: AsRef<[u8]>>(p: &OppPacket<T>) -> Result<OppRepr> {
        p.check_len()?;
        let v6 = match p.version() {
            OPPHDR_IPV4 => false,
            OPPHDR_IPV6 => true,
            _ => return Err(Error::Unsupported),
        };
        if p.reserved() != 0 {
            return Err(Error::Malformed);
        }
        let uoa = p.uoa()?.ok_or(Error::Malformed)?;
        if uoa.src.is_ipv6() != v6 {
            return Err(Error::Malformed);
        }
        Ok(OppRepr { protocol: p.protocol(), uoa })
    }

    /// The version this header carries: [`OPPHDR_IPV4`] or [`OPPHDR_IPV6`], after the
    /// client's address family.
    pub const fn version(&self) -> u8 {
        match self.uoa.src {
            SocketAddr::V4(_) => OPPHDR_IPV4,
            SocketAddr::V6(_) => OPPHDR_IPV6,
        }
    }

    /// The length [`OppRepr::emit`] writes, which is also the header's length field:
    /// 12 for an IPv4 client, 24 for an IPv6 one.
    pub const fn buffer_len(&self) -> usize {
        OPP_HEADER_LEN + self.uoa.buffer_len()
    }

    /// Writes the header and its UOA option at the start of `buf` (not the payload) and
    /// returns the length; `Error::Truncated` if `buf` is shorter than
    /// [`OppRepr::buffer_len`] (then nothing is written).
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        let out = buf.get_mut(..len).ok_or(Error::Truncated)?;
        let (head, opt) = out.split_at_mut(OPP_HEADER_LEN);
        self.uoa.emit(opt)?;
        let mut p = OppPacket::new_unchecked(head);
        p.set_version(self.version());
        p.set_protocol(self.protocol);
        p.set_len(len as u16);
        Ok(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // The option DPVS writes for client 192.168.1.10:5353 (`IPOLEN_UOA_IPV4`).
    static UOA4: [u8; 8] = [0x1f, 0x08, 0x14, 0xe9, 192, 168, 1, 10];

    // The option for client [2001:db8::10]:40000 (`IPOLEN_UOA_IPV6`).
    static UOA6: [u8; 20] = [
        0x1f, 0x14, 0x9c, 0x40, // IPOPT_UOA, 20, port 40000
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // 2001:db8::10
    ];

    // An option protocol header for an IPv4 client, then a UDP header 1122 -> 3344
    // with 8 bytes of payload (the layout of DPVS's kmod/uoa/example/opp.c).
    static OPP4: [u8; 28] = [
        0x10, 0x11, 0x00, 0x0c, // version 1, UDP, length 12
        0x1f, 0x08, 0x14, 0xe9, 192, 168, 1, 10, // UOA 192.168.1.10:5353
        0x04, 0x62, 0x0d, 0x10, 0x00, 0x10, 0x00, 0x00, // UDP 1122 -> 3344, length 16
        1, 2, 3, 4, 5, 6, 7, 8,
    ];

    // An option protocol header for an IPv6 client.
    static OPP6: [u8; 24] = [
        0x20, 0x11, 0x00, 0x18, // version 2, UDP, length 24
        0x1f, 0x14, 0x9c, 0x40, // IPOPT_UOA, 20, port 40000
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, // 2001:db8::10
    ];

    fn uoa4() -> UoaRepr {
        UoaRepr { src: "192.168.1.10:5353".parse().unwrap() }
    }

    fn uoa6() -> UoaRepr {
        UoaRepr { src: "[2001:db8::10]:40000".parse().unwrap() }
    }

    #[test]
    fn uoa_option_fields() {
        let o = UoaOption::new_checked(&UOA4[..]).unwrap();
        assert_eq!((o.code(), o.len(), o.port(), o.is_empty()), (IPOPT_UOA, 8, 5353, false));
        assert_eq!(o.addr(), Some(IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10))));
        assert_eq!(UoaRepr::parse(&o), Ok(uoa4()));
        let o = UoaOption::new_checked(&UOA6[..]).unwrap();
        assert_eq!((o.len(), o.port()), (20, 40000));
        assert_eq!(UoaRepr::parse(&o), Ok(uoa6()));
    }

    #[test]
    fn uoa_emit() {
        let mut buf = [0xffu8; 24];
        assert_eq!(uoa4().emit(&mut buf), Ok(8));
        assert_eq!(buf[..8], UOA4);
        assert_eq!(uoa6().emit(&mut buf), Ok(20));
        assert_eq!(buf[..20], UOA6);
        for r in [uoa4(), uoa6()] {
            let mut buf = [0u8; 24];
            for n in 0..r.buffer_len() {
                assert_eq!(r.emit(&mut buf[..n]), Err(Error::Truncated));
            }
            assert_eq!(buf, [0; 24], "nothing written when too small");
        }
    }

    #[test]
    fn uoa_checks() {
        for full in [&UOA4[..], &UOA6[..]] {
            for n in 0..full.len() {
                assert_eq!(UoaOption::new_checked(&full[..n]).unwrap_err(), Error::Truncated, "{n}");
            }
        }
        for bad_len in [0, 2, 4, 7, 9, 16, 19, 21, 255] {
            let mut b = [0u8; 32];
            b[..20].copy_from_slice(&UOA6);
            b[1] = bad_len;
            assert_eq!(UoaOption::new_checked(&b[..]).unwrap_err(), Error::Malformed, "{bad_len}");
        }
        let mut b = UOA4;
        b[0] = 0x9f; // a copied option of the same number: not UOA
        assert_eq!(UoaRepr::parse(&UoaOption::new_checked(&b[..]).unwrap()), Err(Error::Unsupported));
        // A setter making the length disagree with the buffer: no panic, no address.
        let mut b = UOA4;
        let mut o = UoaOption::new_checked(&mut b[..]).unwrap();
        o.set_len(20);
        assert_eq!(o.addr(), None);
        o.set_len(3);
        assert_eq!(o.addr(), None);
    }

    #[test]
    fn ipv4_header_options() {
        // DPVS's IP option mode: the UOA option as the IPv4 header's only option.
        assert_eq!(find_uoa(&UOA4), Ok(Some(uoa4())));
        // After other options and padding.
        let opts = [IPOPT_NOOP, 0x44, 4, 5, 0, IPOPT_NOOP, 0x1f, 8, 0x14, 0xe9, 192, 168, 1, 10];
        assert_eq!(find_uoa(&opts), Ok(Some(uoa4())));
        // End of list before it, or no UOA at all.
        assert_eq!(find_uoa(&[IPOPT_END, 0x1f, 8, 0x14, 0xe9, 192, 168, 1, 10]), Ok(None));
        assert_eq!(find_uoa(&[IPOPT_NOOP, IPOPT_NOOP, 0x44, 4, 5, 0]), Ok(None));
        assert_eq!(find_uoa(&[]), Ok(None));
        // Malformed lengths.
        for bad in [&[0x44][..], &[0x44, 1, 0], &[0x44, 5, 0, 0], &[0x1f, 8, 0, 0], &[0x1f, 6, 0, 0, 0, 0]] {
            assert_eq!(find_uoa(bad), Err(Error::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn opp_fields() {
        let p = OppPacket::new_checked(&OPP4[..]).unwrap();
        assert_eq!((p.version(), p.reserved(), p.protocol(), p.len()), (1, 0, IpProtocol::UDP, 12));
        assert_eq!((p.header_len(), p.is_empty()), (12, false));
        assert_eq!(p.options(), UOA4);
        assert_eq!(p.payload(), &OPP4[12..]);
        assert_eq!(p.uoa(), Ok(Some(uoa4())));
        let udp = crate::udp::Packet::new_checked(p.payload()).unwrap();
        assert_eq!((udp.src_port(), udp.dst_port(), udp.payload()), (1122, 3344, &[1, 2, 3, 4, 5, 6, 7, 8][..]));
        let p = OppPacket::new_checked(&OPP6[..]).unwrap();
        assert_eq!((p.version(), p.header_len(), p.payload()), (2, 24, &[][..]));
    }

    #[test]
    fn opp_parse_emit() {
        let r4 = OppRepr { protocol: IpProtocol::UDP, uoa: uoa4() };
        let r6 = OppRepr { protocol: IpProtocol::UDP, uoa: uoa6() };
        assert_eq!(OppRepr::parse(&OppPacket::new_checked(&OPP4[..]).unwrap()), Ok(r4));
        assert_eq!(OppRepr::parse(&OppPacket::new_checked(&OPP6[..]).unwrap()), Ok(r6));
        assert_eq!((r4.version(), r4.buffer_len(), r6.version(), r6.buffer_len()), (1, 12, 2, 24));
        let mut buf = [0xffu8; 32];
        assert_eq!(r4.emit(&mut buf), Ok(12));
        assert_eq!(buf[..12], OPP4[..12]);
        assert_eq!(r6.emit(&mut buf), Ok(24));
        assert_eq!(buf[..24], OPP6);
        for r in [r4, r6] {
            let mut buf = [0u8; 32];
            for n in 0..r.buffer_len() {
                assert_eq!(r.emit(&mut buf[..n]), Err(Error::Truncated));
            }
            assert_eq!(buf, [0; 32], "nothing written when too small");
        }
    }

    #[test]
    fn opp_checks() {
        for full in [&OPP4[..12], &OPP6[..]] {
            for n in 0..full.len() {
                assert_eq!(OppPacket::new_checked(&full[..n]).unwrap_err(), Error::Truncated, "{n}");
            }
        }
        let parse = |b: &[u8]| OppRepr::parse(&OppPacket::new_checked(b)?);
        let mut b = OPP4;
        b[3] = 3;
        assert_eq!(parse(&b), Err(Error::Malformed), "length below 4");
        let mut b = OPP4;
        b[0] = 0x30;
        assert_eq!(parse(&b), Err(Error::Unsupported), "version 3");
        b[0] = 0x11;
        assert_eq!(parse(&b), Err(Error::Malformed), "reserved bits");
        b[0] = 0x20;
        assert_eq!(parse(&b), Err(Error::Malformed), "version 2 with an IPv4 address");
        let mut b = OPP6;
        b[0] = 0x10;
        assert_eq!(parse(&b), Err(Error::Malformed), "version 1 with an IPv6 address");
        // No UOA option: only a header, or padding.
        assert_eq!(parse(&[0x10, 0x11, 0x00, 0x04]), Err(Error::Malformed));
        assert_eq!(parse(&[0x10, 0x11, 0x00, 0x08, 1, 1, 1, 0]), Err(Error::Malformed));
        // Padding before the UOA option is fine.
        let mut b = vec![0x10, 0x11, 0x00, 0x10, 1, 1, 1, 1];
        b.extend_from_slice(&UOA4);
        assert_eq!(parse(&b), Ok(OppRepr { protocol: IpProtocol::UDP, uoa: uoa4() }));
        // The option overrunning the header length.
        let mut b = OPP4;
        b[3] = 11;
        assert_eq!(parse(&b), Err(Error::Malformed));
    }

    #[test]
    fn opp_setters() {
        let mut b = [0u8; 16];
        let mut p = OppPacket::new_unchecked(&mut b[..]);
        p.set_version(OPPHDR_IPV6);
        p.set_protocol(IpProtocol::UDP);
        p.set_len(8);
        p.options_mut().copy_from_slice(&[1, 1, 1, 1]);
        p.payload_mut().fill(0xaa);
        assert_eq!(b, [0x20, 17, 0, 8, 1, 1, 1, 1, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa]);
        let mut p = OppPacket::new_checked(&mut b[..]).unwrap();
        p.set_len(u16::MAX);
        assert_eq!((p.options().len(), p.payload().len(), p.options_mut().len()), (12, 0, 12));
    }

    fn socket_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(Ipv4Addr::from(a).into(), p)),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(Ipv6Addr::from(a).into(), p)),
        ]
    }

    proptest! {
        #[test]
        fn roundtrips(src in socket_addr(), protocol: u8) {
            let uoa = UoaRepr { src };
            let mut buf = [0u8; 32];
            let n = uoa.emit(&mut buf).unwrap();
            prop_assert_eq!(UoaRepr::parse(&UoaOption::new_checked(&buf[..n]).unwrap()), Ok(uoa));
            prop_assert_eq!(find_uoa(&buf[..n]), Ok(Some(uoa)));
            let r = OppRepr { protocol: IpProtocol(protocol), uoa };
            let n = r.emit(&mut buf).unwrap();
            prop_assert_eq!(OppRepr::parse(&OppPacket::new_checked(&buf[..n]).unwrap()), Ok(r));
        }

        #[test]
        fn arbitrary_bytes_never_panic(d in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = find_uoa(&d);
            if let Ok(o) = UoaOption::new_checked(&d[..]) {
                let _ = (o.code(), o.len(), o.port(), o.addr(), UoaRepr::parse(&o));
            }
            if let Ok(p) = OppPacket::new_checked(&d[..]) {
                let _ = (p.version(), p.reserved(), p.protocol(), p.options().len(), p.payload().len(), p.uoa());
                let _ = OppRepr::parse(&p);
            }
        }
    }
}
