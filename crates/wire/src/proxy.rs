//! The HAProxy PROXY protocol header, versions 1 (text) and 2 (binary).
//!
//! A FullNAT balancer replaces the client's address with a local one, so a real server
//! that wants to know who it is talking to needs the client's address some other way.
//! The PROXY protocol prepends it to the stream (or to a datagram) once, before any
//! application byte: `src` is the client, `dst` the address the client connected to
//! (the virtual service). Specification: <https://www.haproxy.org/download/2.8/doc/proxy-protocol.txt>.
//!
//! Version 1 is one line of US-ASCII, at most [`MAX_LEN_V1`] bytes with its CRLF:
//!
//! ```text
//! PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n
//! PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n
//! PROXY UNKNOWN\r\n                  (anything may follow UNKNOWN up to the CRLF)
//! ```
//!
//! Version 2 is binary, 16 bytes and then [`Packet::addr_len`] bytes (all multi-byte
//! fields in network byte order); [`Packet`] is a view of it:
//!
//! ```text
//!  0..12  signature 0d 0a 0d 0a 00 0d 0a 51 55 49 54 0a ("\r\n\r\n\0\r\nQUIT\n")
//!  12     version (high nibble, 2) | command (low nibble: 0 LOCAL, 1 PROXY)
//!  13     family (high nibble: 0 UNSPEC, 1 INET, 2 INET6, 3 UNIX)
//!         | transport (low nibble: 0 UNSPEC, 1 STREAM, 2 DGRAM)
//!  14..16 length of what follows (addresses and TLVs)
//!  INET:  16..20 src addr, 20..24 dst addr, 24..26 src port, 26..28 dst port (len >= 12)
//!  INET6: 16..32 src addr, 32..48 dst addr, 48..50 src port, 50..52 dst port (len >= 36)
//!  then type-length-value extensions up to 16 + length (skipped here)
//! ```
//!
//! [`ProxyRepr`] emits either version into a caller's slice ([`ProxyRepr::emit_v1`],
//! [`ProxyRepr::emit_v2`], with [`ProxyRepr::len_v1`] / [`ProxyRepr::len_v2`] to reserve
//! room first) and [`parse`] reads either, strictly: anything the specification does not
//! allow is `Error::Malformed`, a header that is not complete yet is `Error::Truncated`.
//! Nothing here allocates or panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use crate::{get_u16, put_u16, Error, Result};

/// Byte ranges of the version 2 header fields.
mod field {
    use core::ops::Range;
    pub const SIGNATURE: Range<usize> = 0..12;
    pub const VER_CMD: usize = 12;
    pub const FAM: usize = 13;
    pub const LEN: usize = 14;
    // TCP/UDP over IPv4.
    pub const SRC_ADDR4: Range<usize> = 16..20;
    pub const DST_ADDR4: Range<usize> = 20..24;
    pub const SRC_PORT4: usize = 24;
    pub const DST_PORT4: usize = 26;
    // TCP/UDP over IPv6.
    pub const SRC_ADDR6: Range<usize> = 16..32;
    pub const DST_ADDR6: Range<usize> = 32..48;
    pub const SRC_PORT6: usize = 48;
    pub const DST_PORT6: usize = 50;
}

/// The 12 bytes every version 2 header starts with (they contain a NUL, and read as
/// "QUIT" to protocols that might see them by mistake).
pub const SIGNATURE_V2: [u8; 12] = *b"\r\n\r\n\0\r\nQUIT\n";
/// Length of the fixed part of a version 2 header (signature, version/command,
/// family/transport, length).
pub const HEADER_LEN_V2: usize = 16;
/// Length of the version 2 address block for TCP/UDP over IPv4 (two addresses, two
/// ports).
pub const ADDR_LEN_INET: usize = 12;
/// Length of the version 2 address block for TCP/UDP over IPv6.
pub const ADDR_LEN_INET6: usize = 36;
/// Length of the version 2 address block for UNIX sockets (two 108-byte paths).
pub const ADDR_LEN_UNIX: usize = 216;
/// What a version 1 line starts with.
pub const PREFIX_V1: &[u8; 6] = b"PROXY ";
/// The longest version 1 line, CRLF included ("PROXY UNKNOWN" with two full IPv6
/// addresses and ports); a line with no CRLF in this many bytes is invalid.
pub const MAX_LEN_V1: usize = 107;
/// The only version a version 2 header may carry (high nibble of byte 12).
pub const VERSION_2: u8 = 2;

/// Version 2 commands (low nibble of byte 12).
pub mod command {
    /// The proxy opened the connection for itself (e.g. a health check): the receiver
    /// uses the real endpoints and ignores any address.
    pub const LOCAL: u8 = 0;
    /// The connection is relayed on behalf of the addresses in the header.
    pub const PROXY: u8 = 1;
}

/// Version 2 address families (high nibble of byte 13).
pub mod family {
    /// Unknown or unsupported family: the receiver ignores the addresses.
    pub const UNSPEC: u8 = 0;
    /// IPv4: two 4-byte addresses then two ports.
    pub const INET: u8 = 1;
    /// IPv6: two 16-byte addresses then two ports.
    pub const INET6: u8 = 2;
    /// UNIX sockets: two 108-byte paths.
    pub const UNIX: u8 = 3;
}

/// Version 2 transport protocols (low nibble of byte 13).
pub mod transport {
    /// Unknown or unsupported transport: the receiver ignores the addresses.
    pub const UNSPEC: u8 = 0;
    /// `SOCK_STREAM` (TCP).
    pub const STREAM: u8 = 1;
    /// `SOCK_DGRAM` (UDP).
    pub const DGRAM: u8 = 2;
}

/// The transport of the proxied connection. Version 2 carries it; version 1 only knows
/// TCP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyTransport {
    /// A stream (TCP).
    Stream,
    /// Datagrams (UDP).
    Datagram,
}

impl ProxyTransport {
    /// The version 2 transport nibble ([`transport::STREAM`] or [`transport::DGRAM`]).
    pub const fn nibble(self) -> u8 {
        match self {
            ProxyTransport::Stream => transport::STREAM,
            ProxyTransport::Datagram => transport::DGRAM,
        }
    }
}

/// Which version a header is, as told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyVersion {
    /// The text line starting with `PROXY `.
    V1,
    /// The binary header starting with [`SIGNATURE_V2`].
    V2,
}

/// A view of a version 2 header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors of the fixed fields panic if it
    /// is shorter than [`HEADER_LEN_V2`].
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the fixed part is present and starts with the signature, and that
    /// the whole header (16 + length field) is present. The version, command and
    /// family are left to [`parse`], so that a view can look at any of them.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN_V2 {
            return Err(Error::Truncated);
        }
        if data[field::SIGNATURE] != SIGNATURE_V2 {
            return Err(Error::Malformed);
        }
        if data.len() < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }

    /// Gives the buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The 12 signature bytes as received.
    pub fn signature(&self) -> &[u8] {
        &self.buffer.as_ref()[field::SIGNATURE]
    }

    /// The protocol version (high nibble of byte 12; 2 is the only valid one).
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_CMD] >> 4
    }

    /// The command (low nibble of byte 12): [`command::LOCAL`] or [`command::PROXY`].
    pub fn command(&self) -> u8 {
        self.buffer.as_ref()[field::VER_CMD] & 0x0f
    }

    /// The address family (high nibble of byte 13), one of [`family`].
    pub fn family(&self) -> u8 {
        self.buffer.as_ref()[field::FAM] >> 4
    }

    /// The transport (low nibble of byte 13), one of [`transport`].
    pub fn transport(&self) -> u8 {
        self.buffer.as_ref()[field::FAM] & 0x0f
    }

    /// The length field: bytes of addresses and TLVs after the fixed 16.
    pub fn addr_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::LEN)
    }

    /// The whole header's length, 16 + the length field: where the payload starts.
    pub fn header_len(&self) -> usize {
        HEADER_LEN_V2 + self.addr_len() as usize
    }

    /// The length of the address block the family and transport call for (12, 36 or
    /// 216), or `None` for an unspecified or unknown combination.
    pub fn addr_block_len(&self) -> Option<usize> {
        match (self.family(), self.transport()) {
            (family::INET, transport::STREAM | transport::DGRAM) => Some(ADDR_LEN_INET),
            (family::INET6, transport::STREAM | transport::DGRAM) => Some(ADDR_LEN_INET6),
            (family::UNIX, transport::STREAM | transport::DGRAM) => Some(ADDR_LEN_UNIX),
            _ => None,
        }
    }

    /// The source (client) address and port, for TCP/UDP over IPv4 or IPv6 when the
    /// header holds the whole address block; `None` otherwise.
    pub fn src_addr(&self) -> Option<SocketAddr> {
        self.socket_addr(true)
    }

    /// The destination (virtual service) address and port, as [`Packet::src_addr`].
    pub fn dst_addr(&self) -> Option<SocketAddr> {
        self.socket_addr(false)
    }

    fn socket_addr(&self, src: bool) -> Option<SocketAddr> {
        let block = self.addr_block_len()?;
        let end = HEADER_LEN_V2 + block;
        if self.header_len() < end {
            return None;
        }
        let data = self.buffer.as_ref().get(..end)?;
        match self.family() {
            family::INET => {
                let (a, p) =
                    if src { (field::SRC_ADDR4, field::SRC_PORT4) } else { (field::DST_ADDR4, field::DST_PORT4) };
                let octets: [u8; 4] = data.get(a)?.try_into().ok()?;
                Some(SocketAddr::new(Ipv4Addr::from(octets).into(), get_u16(data, p)))
            }
            family::INET6 => {
                let (a, p) =
                    if src { (field::SRC_ADDR6, field::SRC_PORT6) } else { (field::DST_ADDR6, field::DST_PORT6) };
                let octets: [u8; 16] = data.get(a)?.try_into().ok()?;
                Some(SocketAddr::new(Ipv6Addr::from(octets).into(), get_u16(data, p)))
            }
            _ => None,
        }
    }

    /// The bytes after the fixed 16 up to the length field (clamped to the buffer):
    /// addresses, then TLVs.
    pub fn addr_block(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), HEADER_LEN_V2, self.header_len())
    }

    /// The TLV extensions after the address block (clamped to the buffer); empty when
    /// the family and transport are not known, since then the block's end is unknown.
    pub fn tlvs(&self) -> &[u8] {
        match self.addr_block_len() {
            Some(n) => crate::clamped(self.buffer.as_ref(), HEADER_LEN_V2 + n, self.header_len()),
            None => &[],
        }
    }

    /// What follows the header (clamped to the buffer).
    pub fn payload(&self) -> &[u8] {
        let data = self.buffer.as_ref();
        crate::clamped(data, self.header_len(), data.len())
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Writes the 12 signature bytes.
    pub fn set_signature(&mut self) {
        self.buffer.as_mut()[field::SIGNATURE].copy_from_slice(&SIGNATURE_V2);
    }

    /// Sets the version and command nibbles (each masked to 4 bits).
    pub fn set_version_command(&mut self, version: u8, command: u8) {
        self.buffer.as_mut()[field::VER_CMD] = ((version & 0x0f) << 4) | (command & 0x0f);
    }

    /// Sets the family and transport nibbles (each masked to 4 bits).
    pub fn set_family_transport(&mut self, family: u8, transport: u8) {
        self.buffer.as_mut()[field::FAM] = ((family & 0x0f) << 4) | (transport & 0x0f);
    }

    /// Sets the length field.
    pub fn set_addr_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::LEN, v);
    }

    /// Writes an IPv4 address block (bytes 16..28); panics if the buffer is shorter.
    pub fn set_inet_addrs(&mut self, src: SocketAddrV4, dst: SocketAddrV4) {
        let data = self.buffer.as_mut();
        data[field::SRC_ADDR4].copy_from_slice(&src.ip().octets());
        data[field::DST_ADDR4].copy_from_slice(&dst.ip().octets());
        put_u16(data, field::SRC_PORT4, src.port());
        put_u16(data, field::DST_PORT4, dst.port());
    }

    /// Writes an IPv6 address block (bytes 16..52); panics if the buffer is shorter.
    /// Flow information and scope are not carried.
    pub fn set_inet6_addrs(&mut self, src: SocketAddrV6, dst: SocketAddrV6) {
        let data = self.buffer.as_mut();
        data[field::SRC_ADDR6].copy_from_slice(&src.ip().octets());
        data[field::DST_ADDR6].copy_from_slice(&dst.ip().octets());
        put_u16(data, field::SRC_PORT6, src.port());
        put_u16(data, field::DST_PORT6, dst.port());
    }
}

impl<T: AsRef<[u8]>> AsRef<[u8]> for Packet<T> {
    fn as_ref(&self) -> &[u8] {
        self.buffer.as_ref()
    }
}

/// The addresses of a proxied connection: who connected (`src`), to what (`dst`), over
/// which transport.
///
/// When `src` and `dst` are of different families the IPv4 one is sent as an
/// IPv4-mapped IPv6 address (`::ffff:a.b.c.d`), as HAProxy does, so such a header
/// parses back as two IPv6 addresses. IPv6 flow information and scope are not carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProxyRepr {
    /// The client's address and port.
    pub src: SocketAddr,
    /// The address and port the client connected to (the virtual service).
    pub dst: SocketAddr,
    /// Stream (TCP) or datagram (UDP); version 1 can only say TCP.
    pub proto: ProxyTransport,
}

/// What a header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProxyHeader {
    /// A relayed connection with its original endpoints (v1 `TCP4`/`TCP6`, v2 `PROXY`
    /// over INET or INET6 with a stream or datagram transport).
    Proxy(ProxyRepr),
    /// A version 2 `LOCAL` command: the proxy's own connection (e.g. a health check);
    /// the receiver uses the real endpoints.
    Local,
    /// A version 1 `UNKNOWN` line, or a version 2 `PROXY` command whose family or
    /// transport is unspecified or not an IP one (UNIX): the receiver uses the real
    /// endpoints, as the specification allows.
    Unknown,
}

/// The two addresses as they go on the wire: both IPv4, or both IPv6.
enum Addrs {
    V4(SocketAddrV4, SocketAddrV4),
    V6(SocketAddrV6, SocketAddrV6),
}

fn to_v6(a: SocketAddr) -> SocketAddrV6 {
    match a {
        SocketAddr::V4(a) => SocketAddrV6::new(a.ip().to_ipv6_mapped(), a.port(), 0, 0),
        SocketAddr::V6(a) => SocketAddrV6::new(*a.ip(), a.port(), 0, 0),
    }
}

impl ProxyRepr {
    fn addrs(&self) -> Addrs {
        match (self.src, self.dst) {
            (SocketAddr::V4(s), SocketAddr::V4(d)) => Addrs::V4(s, d),
            (s, d) => Addrs::V6(to_v6(s), to_v6(d)),
        }
    }

    /// The length of the version 1 line [`ProxyRepr::emit_v1`] writes, CRLF included
    /// (at most 104; computed for `TCP4`/`TCP6` even when the transport is datagram,
    /// which version 1 cannot express).
    pub fn len_v1(&self) -> usize {
        let mut c = Counter(0);
        // Counting cannot fail.
        let _ = self.write_v1(&mut c);
        c.0
    }

    /// The length of the version 2 header [`ProxyRepr::emit_v2`] writes: 28 for IPv4,
    /// 52 for IPv6.
    pub fn len_v2(&self) -> usize {
        match self.addrs() {
            Addrs::V4(..) => HEADER_LEN_V2 + ADDR_LEN_INET,
            Addrs::V6(..) => HEADER_LEN_V2 + ADDR_LEN_INET6,
        }
    }

    /// Writes the version 1 line (`PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\r\n`) at the
    /// start of `buf` and returns its length. IPv6 addresses are written in the RFC
    /// 5952 canonical form, in hexadecimal only (no dotted IPv4 tail).
    ///
    /// `Error::Unsupported` for a datagram transport (version 1 only has TCP);
    /// `Error::Truncated` if `buf` is shorter than [`ProxyRepr::len_v1`] (then what
    /// was written is garbage).
    pub fn emit_v1(&self, buf: &mut [u8]) -> Result<usize> {
        if self.proto != ProxyTransport::Stream {
            return Err(Error::Unsupported);
        }
        let mut w = SliceWriter { buf, at: 0 };
        self.write_v1(&mut w)?;
        Ok(w.at)
    }

    fn write_v1<S: Sink>(&self, s: &mut S) -> Result<()> {
        s.put(PREFIX_V1)?;
        let (sport, dport) = match self.addrs() {
            Addrs::V4(a, b) => {
                s.put(b"TCP4 ")?;
                put_ipv4(s, *a.ip())?;
                s.put(b" ")?;
                put_ipv4(s, *b.ip())?;
                (a.port(), b.port())
            }
            Addrs::V6(a, b) => {
                s.put(b"TCP6 ")?;
                put_ipv6(s, *a.ip())?;
                s.put(b" ")?;
                put_ipv6(s, *b.ip())?;
                (a.port(), b.port())
            }
        };
        s.put(b" ")?;
        put_dec(s, sport)?;
        s.put(b" ")?;
        put_dec(s, dport)?;
        s.put(b"\r\n")
    }

    /// Writes the version 2 header (signature, version 2, command `PROXY`, family and
    /// transport `0x11` TCP4, `0x12` UDP4, `0x21` TCP6 or `0x22` UDP6, length,
    /// addresses, ports; no TLV) at the start of `buf` and returns its length.
    /// `Error::Truncated` if `buf` is shorter than [`ProxyRepr::len_v2`] (then nothing
    /// is written).
    pub fn emit_v2(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.len_v2();
        let out = buf.get_mut(..len).ok_or(Error::Truncated)?;
        let mut p = Packet::new_unchecked(out);
        p.set_signature();
        p.set_version_command(VERSION_2, command::PROXY);
        match self.addrs() {
            Addrs::V4(s, d) => {
                p.set_family_transport(family::INET, self.proto.nibble());
                p.set_addr_len(ADDR_LEN_INET as u16);
                p.set_inet_addrs(s, d);
            }
            Addrs::V6(s, d) => {
                p.set_family_transport(family::INET6, self.proto.nibble());
                p.set_addr_len(ADDR_LEN_INET6 as u16);
                p.set_inet6_addrs(s, d);
            }
        }
        Ok(len)
    }
}

/// Which version `buf` starts with. `Error::Truncated` if it is a strict prefix of
/// either start (e.g. empty, or `PROX`), so more bytes may tell; `Error::Malformed` if
/// it can be neither.
pub fn detect(buf: &[u8]) -> Result<ProxyVersion> {
    if buf.starts_with(&SIGNATURE_V2) {
        Ok(ProxyVersion::V2)
    } else if buf.starts_with(PREFIX_V1) {
        Ok(ProxyVersion::V1)
    } else if SIGNATURE_V2.starts_with(buf) || PREFIX_V1.starts_with(buf) {
        Err(Error::Truncated)
    } else {
        Err(Error::Malformed)
    }
}

/// Reads a version 1 or 2 header at the start of `buf`, returning what it announces
/// and its length (where the payload starts).
///
/// Strict: a wrong signature, version or command, a family or transport nibble the
/// specification does not define, an address block shorter than its family needs,
/// TLVs that overrun the header, a version 1 line without CRLF within 107 bytes, a
/// bare LF, a token other than `TCP4`/`TCP6`/`UNKNOWN`, an address of the wrong
/// family, a number with a leading zero or out of range, or a missing or extra field
/// is `Error::Malformed`. A header not complete yet (any strict prefix of a valid one)
/// is `Error::Truncated`. IPv6 addresses in a version 1 line are read as `inet_pton`
/// would (so a dotted IPv4 tail is accepted).
pub fn parse(buf: &[u8]) -> Result<(ProxyHeader, usize)> {
    match detect(buf)? {
        ProxyVersion::V1 => parse_v1(buf),
        ProxyVersion::V2 => parse_v2(buf),
    }
}

fn parse_v2(buf: &[u8]) -> Result<(ProxyHeader, usize)> {
    let p = Packet::new_checked(buf)?;
    if p.version() != VERSION_2 {
        return Err(Error::Malformed);
    }
    let len = p.header_len();
    match p.command() {
        command::LOCAL => return Ok((ProxyHeader::Local, len)),
        command::PROXY => {}
        _ => return Err(Error::Malformed),
    }
    if p.family() > family::UNIX || p.transport() > transport::DGRAM {
        return Err(Error::Malformed);
    }
    let proto = match p.transport() {
        transport::STREAM => ProxyTransport::Stream,
        transport::DGRAM => ProxyTransport::Datagram,
        _ => return Ok((ProxyHeader::Unknown, len)),
    };
    let need = match p.family() {
        family::INET => ADDR_LEN_INET,
        family::INET6 => ADDR_LEN_INET6,
        family::UNIX => ADDR_LEN_UNIX,
        _ => return Ok((ProxyHeader::Unknown, len)),
    };
    if (p.addr_len() as usize) < need {
        return Err(Error::Malformed);
    }
    check_tlvs(p.tlvs())?;
    match (p.src_addr(), p.dst_addr()) {
        (Some(src), Some(dst)) => Ok((ProxyHeader::Proxy(ProxyRepr { src, dst, proto }), len)),
        // UNIX: valid, but not an address this crate represents.
        _ => Ok((ProxyHeader::Unknown, len)),
    }
}

/// Checks that `tlvs` is a sequence of whole TLVs (type, 16-bit length, value).
fn check_tlvs(mut tlvs: &[u8]) -> Result<()> {
    while !tlvs.is_empty() {
        let (&[_, hi, lo], rest) = tlvs.split_first_chunk::<3>().ok_or(Error::Malformed)?;
        let n = u16::from_be_bytes([hi, lo]) as usize;
        tlvs = rest.get(n..).ok_or(Error::Malformed)?;
    }
    Ok(())
}

fn parse_v1(buf: &[u8]) -> Result<(ProxyHeader, usize)> {
    let window = buf.get(..MAX_LEN_V1).unwrap_or(buf);
    let Some(lf) = window.iter().position(|&b| b == b'\n') else {
        return Err(if buf.len() >= MAX_LEN_V1 { Error::Malformed } else { Error::Truncated });
    };
    let line = match lf.checked_sub(1).and_then(|cr| window.get(..=cr)) {
        Some([line @ .., b'\r']) => line,
        _ => return Err(Error::Malformed),
    };
    let header_len = lf + 1;
    let rest = line.strip_prefix(PREFIX_V1.as_slice()).ok_or(Error::Malformed)?;
    let mut tokens = rest.split(|&b| b == b' ');
    let v6 = match tokens.next() {
        // Anything may follow UNKNOWN (after one space) up to the CRLF.
        Some(b"UNKNOWN") => return Ok((ProxyHeader::Unknown, header_len)),
        Some(b"TCP4") => false,
        Some(b"TCP6") => true,
        _ => return Err(Error::Malformed),
    };
    let (Some(src), Some(dst), Some(sport), Some(dport), None) =
        (tokens.next(), tokens.next(), tokens.next(), tokens.next(), tokens.next())
    else {
        return Err(Error::Malformed);
    };
    let (src, dst): (IpAddr, IpAddr) = if v6 {
        (parse_ipv6(src)?.into(), parse_ipv6(dst)?.into())
    } else {
        (parse_ipv4(src)?.into(), parse_ipv4(dst)?.into())
    };
    let sport = parse_dec(sport, u16::MAX as u32)? as u16;
    let dport = parse_dec(dport, u16::MAX as u32)? as u16;
    let repr =
        ProxyRepr { src: SocketAddr::new(src, sport), dst: SocketAddr::new(dst, dport), proto: ProxyTransport::Stream };
    Ok((ProxyHeader::Proxy(repr), header_len))
}

/// A decimal number of 1 to 5 digits, without a leading zero (unless it is "0"), at
/// most `max`.
fn parse_dec(tok: &[u8], max: u32) -> Result<u32> {
    if tok.is_empty() || tok.len() > 5 || (tok.len() > 1 && tok[0] == b'0') {
        return Err(Error::Malformed);
    }
    let mut v = 0u32;
    for &c in tok {
        if !c.is_ascii_digit() {
            return Err(Error::Malformed);
        }
        v = v * 10 + u32::from(c - b'0');
    }
    if v > max {
        return Err(Error::Malformed);
    }
    Ok(v)
}

/// Exactly four decimal octets separated by single dots.
fn parse_ipv4(tok: &[u8]) -> Result<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = tok.split(|&b| b == b'.');
    for o in octets.iter_mut() {
        *o = parse_dec(parts.next().ok_or(Error::Malformed)?, 255)? as u8;
    }
    if parts.next().is_some() {
        return Err(Error::Malformed);
    }
    Ok(Ipv4Addr::from(octets))
}

fn parse_ipv6(tok: &[u8]) -> Result<Ipv6Addr> {
    core::str::from_utf8(tok).ok().and_then(|s| s.parse().ok()).ok_or(Error::Malformed)
}

/// Where the version 1 writer puts bytes: a slice, or a counter for [`ProxyRepr::len_v1`].
trait Sink {
    fn put(&mut self, bytes: &[u8]) -> Result<()>;
}

struct Counter(usize);

impl Sink for Counter {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.0 += bytes.len();
        Ok(())
    }
}

struct SliceWriter<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Sink for SliceWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        let end = self.at + bytes.len();
        self.buf.get_mut(self.at..end).ok_or(Error::Truncated)?.copy_from_slice(bytes);
        self.at = end;
        Ok(())
    }
}

fn put_dec<S: Sink>(s: &mut S, mut v: u16) -> Result<()> {
    let mut digits = [0u8; 5];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    s.put(&digits[i..])
}

fn put_hex<S: Sink>(s: &mut S, v: u16) -> Result<()> {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let digits = [
        HEX[(v >> 12) as usize],
        HEX[((v >> 8) & 0xf) as usize],
        HEX[((v >> 4) & 0xf) as usize],
        HEX[(v & 0xf) as usize],
    ];
    let skip = (v.leading_zeros() / 4).min(3) as usize;
    s.put(&digits[skip..])
}

fn put_ipv4<S: Sink>(s: &mut S, a: Ipv4Addr) -> Result<()> {
    for (i, o) in a.octets().into_iter().enumerate() {
        if i > 0 {
            s.put(b".")?;
        }
        put_dec(s, o.into())?;
    }
    Ok(())
}

/// RFC 5952: lower-case hexadecimal groups without leading zeros, the longest run of
/// two or more zero groups (the first of equal runs) written as `::`.
fn put_ipv6<S: Sink>(s: &mut S, a: Ipv6Addr) -> Result<()> {
    let segs = a.segments();
    let (mut best_at, mut best_len) = (segs.len(), 0);
    let mut run_at = 0;
    for (i, &g) in segs.iter().enumerate() {
        if g != 0 {
            run_at = i + 1;
        } else if i + 1 - run_at > best_len {
            (best_at, best_len) = (run_at, i + 1 - run_at);
        }
    }
    if best_len < 2 {
        best_at = segs.len();
    }
    let put_groups = |s: &mut S, groups: &[u16]| -> Result<()> {
        for (i, &g) in groups.iter().enumerate() {
            if i > 0 {
                s.put(b":")?;
            }
            put_hex(s, g)?;
        }
        Ok(())
    };
    if best_at == segs.len() {
        return put_groups(s, &segs);
    }
    let (head, tail) = segs.split_at(best_at);
    put_groups(s, head)?;
    s.put(b"::")?;
    put_groups(s, tail.get(best_len..).unwrap_or(&[]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn v4(a: [u8; 4], p: u16) -> SocketAddr {
        SocketAddr::new(Ipv4Addr::from(a).into(), p)
    }

    fn v6(s: &str, p: u16) -> SocketAddr {
        SocketAddr::new(s.parse::<Ipv6Addr>().unwrap().into(), p)
    }

    fn tcp4() -> ProxyRepr {
        ProxyRepr { src: v4([1, 2, 3, 4], 1000), dst: v4([5, 6, 7, 8], 80), proto: ProxyTransport::Stream }
    }

    fn tcp6() -> ProxyRepr {
        ProxyRepr { src: v6("2001:db8::1", 56324), dst: v6("2001:db8::2:0:0:1", 443), proto: ProxyTransport::Stream }
    }

    static V1_TCP4: &[u8] = b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\r\n";
    static V1_TCP6: &[u8] = b"PROXY TCP6 2001:db8::1 2001:db8::2:0:0:1 56324 443\r\n";

    static V2_TCP4: [u8; 28] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, 0x11, 0x00, 0x0c, // v2 PROXY, TCP over IPv4, 12 bytes
        1, 2, 3, 4, 5, 6, 7, 8, // src, dst
        0x03, 0xe8, 0x00, 0x50, // 1000, 80
    ];

    static V2_UDP4: [u8; 28] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, 0x12, 0x00, 0x0c, // v2 PROXY, UDP over IPv4, 12 bytes
        10, 0, 0, 1, 192, 168, 1, 1, // src, dst
        0x30, 0x39, 0x00, 0x35, // 12345, 53
    ];

    static V2_TCP6: [u8; 52] = [
        0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, // signature
        0x21, 0x21, 0x00, 0x24, // v2 PROXY, TCP over IPv6, 36 bytes
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, // 2001:db8::1
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 1, // 2001:db8::2:0:0:1
        0xdc, 0x04, 0x01, 0xbb, // 56324, 443
    ];

    fn udp4() -> ProxyRepr {
        ProxyRepr { src: v4([10, 0, 0, 1], 12345), dst: v4([192, 168, 1, 1], 53), proto: ProxyTransport::Datagram }
    }

    #[test]
    fn emit_v1_literal() {
        let mut buf = [0u8; MAX_LEN_V1];
        let n = tcp4().emit_v1(&mut buf).unwrap();
        assert_eq!(&buf[..n], V1_TCP4);
        assert_eq!(tcp4().len_v1(), n);
        let n = tcp6().emit_v1(&mut buf).unwrap();
        assert_eq!(&buf[..n], V1_TCP6);
        assert_eq!(tcp6().len_v1(), n);
    }

    #[test]
    fn emit_v2_literal() {
        let mut buf = [0xffu8; 64];
        for (r, bytes) in [(tcp4(), &V2_TCP4[..]), (udp4(), &V2_UDP4[..]), (tcp6(), &V2_TCP6[..])] {
            let n = r.emit_v2(&mut buf).unwrap();
            assert_eq!(&buf[..n], bytes);
            assert_eq!(r.len_v2(), n);
        }
        let udp6 = ProxyRepr { proto: ProxyTransport::Datagram, ..tcp6() };
        let n = udp6.emit_v2(&mut buf).unwrap();
        assert_eq!(buf[13], 0x22);
        assert_eq!(parse(&buf[..n]), Ok((ProxyHeader::Proxy(udp6), 52)));
    }

    #[test]
    fn parse_literals() {
        assert_eq!(parse(V1_TCP4), Ok((ProxyHeader::Proxy(tcp4()), V1_TCP4.len())));
        assert_eq!(parse(V1_TCP6), Ok((ProxyHeader::Proxy(tcp6()), V1_TCP6.len())));
        assert_eq!(parse(&V2_TCP4), Ok((ProxyHeader::Proxy(tcp4()), 28)));
        assert_eq!(parse(&V2_UDP4), Ok((ProxyHeader::Proxy(udp4()), 28)));
        assert_eq!(parse(&V2_TCP6), Ok((ProxyHeader::Proxy(tcp6()), 52)));
        assert_eq!(detect(V1_TCP4), Ok(ProxyVersion::V1));
        assert_eq!(detect(&V2_TCP4), Ok(ProxyVersion::V2));
    }

    #[test]
    fn payload_follows_header() {
        let mut b = V1_TCP4.to_vec();
        b.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(parse(&b), Ok((ProxyHeader::Proxy(tcp4()), V1_TCP4.len())));
        let mut b = V2_TCP4.to_vec();
        b.extend_from_slice(b"hello");
        assert_eq!(parse(&b), Ok((ProxyHeader::Proxy(tcp4()), 28)));
        assert_eq!(Packet::new_checked(&b[..]).unwrap().payload(), b"hello");
    }

    #[test]
    fn view_fields() {
        let p = Packet::new_checked(&V2_TCP6[..]).unwrap();
        assert_eq!(p.signature(), SIGNATURE_V2);
        assert_eq!((p.version(), p.command(), p.family(), p.transport()), (2, 1, 2, 1));
        assert_eq!((p.addr_len(), p.header_len(), p.addr_block_len()), (36, 52, Some(36)));
        assert_eq!(p.src_addr(), Some(tcp6().src));
        assert_eq!(p.dst_addr(), Some(tcp6().dst));
        assert_eq!((p.addr_block().len(), p.tlvs(), p.payload()), (36, &[][..], &[][..]));
    }

    #[test]
    fn truncations_are_errors() {
        let all: [&[u8]; 5] = [V1_TCP4, V1_TCP6, &V2_TCP4, &V2_UDP4, &V2_TCP6];
        for full in all {
            for n in 0..full.len() {
                assert_eq!(parse(&full[..n]), Err(Error::Truncated), "{n} of {full:?}");
            }
        }
        assert_eq!(parse(b"PROXY UNKNOWN\r"), Err(Error::Truncated));
    }

    #[test]
    fn small_output_buffers_are_errors() {
        let mut buf = [0u8; 64];
        for r in [tcp4(), tcp6(), udp4()] {
            for n in 0..r.len_v2() {
                assert_eq!(r.emit_v2(&mut buf[..n]), Err(Error::Truncated));
            }
            assert_eq!(buf, [0; 64], "nothing written when too small");
        }
        let mut buf = [0u8; MAX_LEN_V1];
        for r in [tcp4(), tcp6()] {
            for n in 0..r.len_v1() {
                assert_eq!(r.emit_v1(&mut buf[..n]), Err(Error::Truncated));
            }
        }
        assert_eq!(udp4().emit_v1(&mut buf), Err(Error::Unsupported));
    }

    #[test]
    fn local_and_unknown() {
        assert_eq!(parse(b"PROXY UNKNOWN\r\n"), Ok((ProxyHeader::Unknown, 15)));
        assert_eq!(parse(b"PROXY UNKNOWN ffff::1 ffff::2 1 2\r\nxy"), Ok((ProxyHeader::Unknown, 35)));
        // LOCAL, UNSPEC, no address.
        let mut local = V2_TCP4[..16].to_vec();
        local[12] = 0x20;
        local[13] = 0x00;
        local[15] = 0;
        assert_eq!(parse(&local), Ok((ProxyHeader::Local, 16)));
        // LOCAL keeps whatever the length says, ignoring the family.
        let mut b = V2_TCP4;
        b[12] = 0x20;
        assert_eq!(parse(&b), Ok((ProxyHeader::Local, 28)));
        // PROXY with UNSPEC, or UNIX: fall back to the real endpoints.
        let mut b = V2_TCP4;
        b[13] = 0x00;
        assert_eq!(parse(&b), Ok((ProxyHeader::Unknown, 28)));
        b[13] = 0x10;
        assert_eq!(parse(&b), Ok((ProxyHeader::Unknown, 28)));
        let mut unix = V2_TCP4[..16].to_vec();
        unix[13] = 0x31;
        unix[14..16].copy_from_slice(&216u16.to_be_bytes());
        unix.resize(16 + 216, b'x');
        assert_eq!(parse(&unix), Ok((ProxyHeader::Unknown, 232)));
    }

    #[test]
    fn tlvs_are_skipped() {
        let mut b = V2_TCP4.to_vec();
        b[15] = 12 + 3 + 2 + 3;
        b.extend_from_slice(&[0x01, 0x00, 0x02, b'h', b'2']); // ALPN "h2"
        b.extend_from_slice(&[0x04, 0x00, 0x00]); // NOOP, empty
        b.extend_from_slice(b"payload");
        assert_eq!(parse(&b), Ok((ProxyHeader::Proxy(tcp4()), 28 + 8)));
        assert_eq!(Packet::new_checked(&b[..]).unwrap().tlvs().len(), 8);
        // A TLV overrunning the header, or a partial TLV header.
        let mut bad = b.clone();
        bad[30] = 9;
        assert_eq!(parse(&bad), Err(Error::Malformed));
        let mut bad = b.clone();
        bad[15] = 12 + 2;
        assert_eq!(parse(&bad), Err(Error::Malformed));
    }

    #[test]
    fn malformed_v2() {
        let cases: [(usize, u8); 9] = [
            (0, 0x0c),  // signature
            (11, 0x0b), // signature
            (12, 0x11), // version 1
            (12, 0x31), // version 3
            (12, 0x22), // command 2
            (13, 0x41), // family 4
            (13, 0x13), // transport 3
            (15, 11),   // IPv4 block too short
            (15, 0),    // no address at all
        ];
        for (at, v) in cases {
            let mut b = V2_TCP4;
            b[at] = v;
            assert_eq!(parse(&b), Err(Error::Malformed), "byte {at} = {v:#x}");
        }
        let mut b = V2_TCP6;
        b[15] = 35;
        assert_eq!(parse(&b[..51]), Err(Error::Malformed));
        // A length beyond the buffer: the rest has not arrived.
        let mut b = V2_TCP4;
        b[15] = 13;
        assert_eq!(parse(&b), Err(Error::Truncated));
    }

    #[test]
    fn malformed_v1() {
        let bad: [&[u8]; 27] = [
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 80\r\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1000\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 80 \r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 80 9\r\n",
            b"PROXY TCP4  1.2.3.4 5.6.7.8 1000 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 01000 80\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 65536\r\n",
            b"PROXY TCP4 1.2.3.4 5.6.7.8 1000 +80\r\n",
            b"PROXY TCP4 1.2.3.04 5.6.7.8 1000 80\r\n",
            b"PROXY TCP4 1.2.3.256 5.6.7.8 1000 80\r\n",
            b"PROXY TCP4 1.2.3 5.6.7.8 1000 80\r\n",
            b"PROXY TCP4 1.2.3.4.5 5.6.7.8 1000 80\r\n",
            b"PROXY TCP4 1.2.3. 5.6.7.8 1000 80\r\n",
            b"PROXY TCP4 ::1 5.6.7.8 1000 80\r\n",
            b"PROXY TCP6 1.2.3.4 ::1 1000 80\r\n",
            b"PROXY TCP6 ::1 ::g 1000 80\r\n",
            b"PROXY TCP6 ::1 fe80::1%eth0 1000 80\r\n",
            b"PROXY tcp4 1.2.3.4 5.6.7.8 1000 80\r\n",
            b"PROXY UDP4 1.2.3.4 5.6.7.8 1000 80\r\n",
            b"PROXY UNKNOWNX\r\n",
            b"PROXY \r\n",
            b"PROXY\r\n",
            b"PROXYTCP4 1.2.3.4 5.6.7.8 1000 80\r\n",
            b"proxy TCP4 1.2.3.4 5.6.7.8 1000 80\r\n",
            b"GET / HTTP/1.1\r\n",
            b"\r\n\r\n\x00\r\nQUIX\n\x21\x11\x00\x00",
        ];
        for b in bad {
            assert_eq!(parse(b), Err(Error::Malformed), "{}", String::from_utf8_lossy(b));
        }
        // No CRLF within 107 bytes.
        let long = [b"PROXY UNKNOWN ".as_slice(), &[b'f'; 100]].concat();
        assert_eq!(parse(&long[..106]), Err(Error::Truncated));
        assert_eq!(parse(&long), Err(Error::Malformed));
        // The longest valid line is exactly 107 bytes.
        let max = [b"PROXY UNKNOWN ".as_slice(), &[b'f'; 91], b"\r\n"].concat();
        assert_eq!(max.len(), MAX_LEN_V1);
        assert_eq!(parse(&max), Ok((ProxyHeader::Unknown, MAX_LEN_V1)));
        // Bounds: 0 and 65535, 0.0.0.0 and 255.255.255.255.
        let edge = b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n";
        let r = ProxyRepr { src: v4([0; 4], 0), dst: v4([255; 4], 65535), proto: ProxyTransport::Stream };
        assert_eq!(parse(edge), Ok((ProxyHeader::Proxy(r), edge.len())));
    }

    #[test]
    fn mixed_families_are_mapped() {
        let r = ProxyRepr { src: v4([1, 2, 3, 4], 1), dst: v6("2001:db8::1", 2), proto: ProxyTransport::Stream };
        let mut buf = [0u8; MAX_LEN_V1];
        let n = r.emit_v1(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"PROXY TCP6 ::ffff:102:304 2001:db8::1 1 2\r\n");
        let mapped = ProxyRepr { src: v6("::ffff:1.2.3.4", 1), ..r };
        assert_eq!(parse(&buf[..n]), Ok((ProxyHeader::Proxy(mapped), n)));
        let n = r.emit_v2(&mut buf).unwrap();
        assert_eq!((n, buf[13]), (52, 0x21));
        assert_eq!(parse(&buf[..n]), Ok((ProxyHeader::Proxy(mapped), n)));
    }

    #[test]
    fn ipv6_canonical_text() {
        let cases = [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),
            ("2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),
            ("2001:DB8:AAAA:bbbb:cccc:dddd:eeee:0001", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:1"),
            ("0:0:1:0:0:0:0:0", "0:0:1::"),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
        ];
        for (input, want) in cases {
            let mut w = SliceWriter { buf: &mut [0u8; 40], at: 0 };
            put_ipv6(&mut w, input.parse().unwrap()).unwrap();
            let n = w.at;
            assert_eq!(&w.buf[..n], want.as_bytes(), "{input}");
        }
    }

    fn socket_addr() -> impl Strategy<Value = SocketAddr> {
        prop_oneof![
            (any::<[u8; 4]>(), any::<u16>()).prop_map(|(a, p)| v4(a, p)),
            (any::<[u8; 16]>(), any::<u16>()).prop_map(|(a, p)| SocketAddr::new(Ipv6Addr::from(a).into(), p)),
            // Runs of zero groups, to exercise `::`.
            (any::<[bool; 8]>(), any::<u16>()).prop_map(|(z, p)| {
                let g: [u16; 8] = core::array::from_fn(|i| if z[i] { 0 } else { i as u16 + 1 });
                SocketAddr::new(Ipv6Addr::from(g).into(), p)
            }),
        ]
    }

    proptest! {
        #[test]
        fn roundtrips(src in socket_addr(), dst in socket_addr(), dgram: bool) {
            let proto = if dgram { ProxyTransport::Datagram } else { ProxyTransport::Stream };
            let r = ProxyRepr { src, dst, proto };
            let same = src.is_ipv4() == dst.is_ipv4();
            let mut buf = [0u8; 128];
            let n = r.emit_v2(&mut buf).unwrap();
            prop_assert_eq!(n, r.len_v2());
            let (h, len) = parse(&buf[..n]).unwrap();
            prop_assert_eq!(len, n);
            if same {
                prop_assert_eq!(h, ProxyHeader::Proxy(r));
            }
            let r = ProxyRepr { proto: ProxyTransport::Stream, ..r };
            let n = r.emit_v1(&mut buf).unwrap();
            prop_assert_eq!(n, r.len_v1());
            prop_assert!(n <= 104);
            let (h, len) = parse(&buf[..n]).unwrap();
            prop_assert_eq!(len, n);
            if same {
                prop_assert_eq!(h, ProxyHeader::Proxy(r));
            }
        }

        #[test]
        fn ipv6_text_matches_std(a: [u8; 16]) {
            let a = Ipv6Addr::from(a);
            let std = a.to_string();
            // std writes some addresses with a dotted IPv4 tail; the spec wants hex.
            if !std.contains('.') {
                let mut w = SliceWriter { buf: &mut [0u8; 40], at: 0 };
                put_ipv6(&mut w, a).unwrap();
                let n = w.at;
                prop_assert_eq!(&w.buf[..n], std.as_bytes());
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(d in proptest::collection::vec(any::<u8>(), 0..128), v2: bool) {
            let start: &[u8] = if v2 { &SIGNATURE_V2 } else { PREFIX_V1 };
            let d = [start, &d].concat();
            let _ = parse(&d);
            if let Ok(p) = Packet::new_checked(&d[..]) {
                let _ = (p.version(), p.command(), p.family(), p.transport(), p.header_len(), p.addr_block_len());
                let _ = (p.src_addr(), p.dst_addr(), p.addr_block().len(), p.tlvs().len(), p.payload().len());
            }
        }

        #[test]
        fn mutated_headers_never_panic(
            which in 0usize..5,
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
        ) {
            let all: [&[u8]; 5] = [V1_TCP4, V1_TCP6, &V2_TCP4, &V2_UDP4, &V2_TCP6];
            let mut d = all[which].to_vec();
            for (at, v) in edits {
                let i = at.index(d.len());
                d[i] = v;
            }
            let _ = parse(&d);
        }
    }
}
