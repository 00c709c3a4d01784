//! ICMP for IPv6 (RFC 4443) and neighbour discovery (RFC 4861).
//!
//! The view's buffer is the whole ICMPv6 message (the upper-layer payload of the IPv6
//! packet): the checksum covers all of it plus the IPv6 pseudo-header. For error
//! messages, [`Packet::inner`] is the quoted packet (as much of the offending packet as
//! fits in the minimum MTU).

use core::fmt;
use core::ops;
use std::net::Ipv6Addr;

use crate::checksum;
use crate::ip::IpProtocol;
use crate::{get_u16, get_u32, put_u16, put_u32, Error, EthernetAddress, Result};

/// Byte ranges of the ICMPv6 fields.
mod field {
    use core::ops::Range;
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQNO: usize = 6;
    pub const PARAM: usize = 4;
    pub const NDISC_FLAGS: usize = 4;
    pub const DATA: usize = 8;
    pub const TARGET: Range<usize> = 8..24;
    pub const NDISC_OPTIONS: usize = 24;
}

/// Length of the common header (type, code, checksum, 4 type-specific bytes).
pub const HEADER_LEN: usize = field::DATA;
/// Length of a neighbour solicitation or advertisement without options.
pub const NDISC_LEN: usize = field::NDISC_OPTIONS;
/// Byte offset of the checksum.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;

/// An ICMPv6 message type.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Message(pub u8);

impl Message {
    /// Destination unreachable (codes in [`dst_unreachable`]).
    pub const DST_UNREACHABLE: Message = Message(1);
    /// Packet too big (MTU in bytes 4-7).
    pub const PKT_TOO_BIG: Message = Message(2);
    /// Time exceeded (codes in [`time_exceeded`]).
    pub const TIME_EXCEEDED: Message = Message(3);
    /// Parameter problem (pointer in bytes 4-7).
    pub const PARAM_PROBLEM: Message = Message(4);
    /// Echo request.
    pub const ECHO_REQUEST: Message = Message(128);
    /// Echo reply.
    pub const ECHO_REPLY: Message = Message(129);
    /// Router solicitation.
    pub const ROUTER_SOLICIT: Message = Message(133);
    /// Router advertisement.
    pub const ROUTER_ADVERT: Message = Message(134);
    /// Neighbour solicitation.
    pub const NEIGHBOR_SOLICIT: Message = Message(135);
    /// Neighbour advertisement.
    pub const NEIGHBOR_ADVERT: Message = Message(136);
    /// Redirect.
    pub const REDIRECT: Message = Message(137);

    /// Whether this is an error message (types below 128), which quotes the packet.
    pub const fn is_error(self) -> bool {
        self.0 < 128
    }

    /// The minimum message length for this type: 24 for neighbour solicitations and
    /// advertisements (the target address), 8 otherwise.
    pub const fn min_len(self) -> usize {
        match self.0 {
            135 | 136 => NDISC_LEN,
            _ => HEADER_LEN,
        }
    }
}

impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            1 => "DstUnreachable",
            2 => "PktTooBig",
            3 => "TimeExceeded",
            4 => "ParamProblem",
            128 => "EchoRequest",
            129 => "EchoReply",
            133 => "RouterSolicit",
            134 => "RouterAdvert",
            135 => "NeighborSolicit",
            136 => "NeighborAdvert",
            137 => "Redirect",
            n => return write!(f, "Message({n})"),
        };
        f.write_str(name)
    }
}

/// Codes of [`Message::DST_UNREACHABLE`].
pub mod dst_unreachable {
    /// No route to destination.
    pub const NO_ROUTE: u8 = 0;
    /// Communication administratively prohibited.
    pub const ADMIN_PROHIBITED: u8 = 1;
    /// Beyond scope of source address.
    pub const BEYOND_SCOPE: u8 = 2;
    /// Address unreachable.
    pub const ADDR_UNREACHABLE: u8 = 3;
    /// Port unreachable.
    pub const PORT: u8 = 4;
}

/// Codes of [`Message::TIME_EXCEEDED`].
pub mod time_exceeded {
    /// Hop limit exceeded in transit.
    pub const HOP_LIMIT: u8 = 0;
    /// Fragment reassembly time exceeded.
    pub const REASSEMBLY: u8 = 1;
}

/// The flags of a neighbour advertisement (byte 4).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct NdiscFlags(pub u8);

impl NdiscFlags {
    /// The sender is a router.
    pub const ROUTER: NdiscFlags = NdiscFlags(0x80);
    /// Sent in response to a solicitation.
    pub const SOLICITED: NdiscFlags = NdiscFlags(0x40);
    /// Override an existing cache entry.
    pub const OVERRIDE: NdiscFlags = NdiscFlags(0x20);

    /// No flag set.
    pub const fn empty() -> NdiscFlags {
        NdiscFlags(0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: NdiscFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether the router flag is set.
    pub const fn router(self) -> bool {
        self.contains(Self::ROUTER)
    }

    /// Whether the solicited flag is set.
    pub const fn solicited(self) -> bool {
        self.contains(Self::SOLICITED)
    }

    /// Whether the override flag is set.
    pub const fn override_(self) -> bool {
        self.contains(Self::OVERRIDE)
    }
}

impl ops::BitOr for NdiscFlags {
    type Output = NdiscFlags;
    fn bitor(self, rhs: NdiscFlags) -> NdiscFlags {
        NdiscFlags(self.0 | rhs.0)
    }
}

impl fmt::Debug for NdiscFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            if self.router() { "R" } else { "-" },
            if self.solicited() { "S" } else { "-" },
            if self.override_() { "O" } else { "-" }
        )
    }
}

/// Neighbour discovery option types.
pub mod ndisc_option {
    /// Source link-layer address.
    pub const SOURCE_LL_ADDR: u8 = 1;
    /// Target link-layer address.
    pub const TARGET_LL_ADDR: u8 = 2;
    /// Prefix information.
    pub const PREFIX_INFO: u8 = 3;
    /// Redirected header.
    pub const REDIRECTED_HEADER: u8 = 4;
    /// MTU.
    pub const MTU: u8 = 5;
}

/// One neighbour discovery option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdiscOption<'a> {
    /// Source link-layer address (Ethernet form: length 1).
    SourceLinkLayerAddr(EthernetAddress),
    /// Target link-layer address (Ethernet form: length 1).
    TargetLinkLayerAddr(EthernetAddress),
    /// Any other option, or a link-layer address of another length.
    Unknown {
        /// The option type.
        kind: u8,
        /// The bytes after type and length.
        data: &'a [u8],
    },
}

/// An iterator over neighbour discovery options. It stops without yielding on a
/// malformed option (length 0, or running past the end; RFC 4861 says to drop such a
/// packet), which [`NdiscOptions::is_malformed`] then reports.
#[derive(Debug, Clone)]
pub struct NdiscOptions<'a> {
    data: &'a [u8],
    pos: usize,
    malformed: bool,
}

impl<'a> NdiscOptions<'a> {
    /// Iterates over raw option bytes.
    pub fn new(data: &'a [u8]) -> NdiscOptions<'a> {
        NdiscOptions { data, pos: 0, malformed: false }
    }

    /// Whether the iteration stopped on a malformed option.
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }
}

impl<'a> Iterator for NdiscOptions<'a> {
    type Item = NdiscOption<'a>;

    fn next(&mut self) -> Option<NdiscOption<'a>> {
        let rest = self.data.get(self.pos..)?;
        if rest.is_empty() {
            return None;
        }
        let len = rest.get(1).map_or(0, |&l| l as usize * 8);
        let Some(opt) = (if len == 0 { None } else { rest.get(..len) }) else {
            self.malformed = true;
            self.pos = self.data.len();
            return None;
        };
        self.pos += len;
        let (kind, data) = (opt[0], &opt[2..]);
        Some(match (kind, EthernetAddress::from_bytes(data)) {
            (ndisc_option::SOURCE_LL_ADDR, Some(a)) if len == 8 => NdiscOption::SourceLinkLayerAddr(a),
            (ndisc_option::TARGET_LL_ADDR, Some(a)) if len == 8 => NdiscOption::TargetLinkLayerAddr(a),
            _ => NdiscOption::Unknown { kind, data },
        })
    }
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it; accessors panic if it is too short.
    pub const fn new_unchecked(buffer: T) -> Packet<T> {
        Packet { buffer }
    }

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the buffer holds the header the message type needs
    /// ([`Message::min_len`]): after this, every accessor is safe for the type the
    /// message has.
    pub fn check_len(&self) -> Result<()> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN || data.len() < self.msg_type().min_len() {
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
        Message(self.buffer.as_ref().first().copied().unwrap_or(0))
    }

    /// The message code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// The checksum as stored.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The echo identifier.
    pub fn echo_ident(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }

    /// The echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::ECHO_SEQNO)
    }

    /// The MTU of a packet-too-big message.
    pub fn mtu(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::PARAM)
    }

    /// The pointer of a parameter problem message.
    pub fn pointer(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::PARAM)
    }

    /// The flags of a neighbour advertisement.
    pub fn ndisc_flags(&self) -> NdiscFlags {
        NdiscFlags(self.buffer.as_ref()[field::NDISC_FLAGS] & 0xe0)
    }

    /// The target address of a neighbour solicitation or advertisement (the
    /// unspecified address if the buffer is too short for one).
    pub fn target_addr(&self) -> Ipv6Addr {
        match self.buffer.as_ref().get(field::TARGET) {
            Some(b) => {
                let mut a = [0u8; 16];
                a.copy_from_slice(b);
                Ipv6Addr::from(a)
            }
            None => Ipv6Addr::UNSPECIFIED,
        }
    }

    /// The neighbour discovery options (after the target address).
    pub fn ndisc_options(&self) -> NdiscOptions<'_> {
        NdiscOptions::new(crate::clamped(self.buffer.as_ref(), field::NDISC_OPTIONS, usize::MAX))
    }

    /// Everything after the 8-byte header (echo data, the quoted packet...).
    pub fn data(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), field::DATA, usize::MAX)
    }

    /// The quoted packet if this is an error message, `None` otherwise.
    pub fn inner(&self) -> Option<&[u8]> {
        if self.msg_type().is_error() {
            Some(self.data())
        } else {
            None
        }
    }

    /// The checksum the message should carry from `src` to `dst` (the stored field
    /// taken as zero).
    pub fn compute_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> u16 {
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6.0, data.len() as u32);
        let sum = checksum::ones_sum(data, ph);
        checksum::fold(checksum::combine(sum, (!self.checksum()) as u32))
    }

    /// Whether the checksum is correct for a message from `src` to `dst`.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header_v6(src, dst, IpProtocol::ICMPV6.0, data.len() as u32);
        checksum::fold(checksum::ones_sum(data, ph)) == 0
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

    /// Sets the 32-bit parameter (MTU of packet-too-big, pointer of parameter problem;
    /// 0 for the other errors).
    pub fn set_param(&mut self, v: u32) {
        put_u32(self.buffer.as_mut(), field::PARAM, v);
    }

    /// Sets the neighbour advertisement flags (and clears the reserved bits).
    pub fn set_ndisc_flags(&mut self, f: NdiscFlags) {
        put_u32(self.buffer.as_mut(), field::NDISC_FLAGS, ((f.0 & 0xe0) as u32) << 24);
    }

    /// Sets the target address of a neighbour solicitation or advertisement.
    pub fn set_target_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::TARGET].copy_from_slice(&a.octets());
    }

    /// The data after the header, mutable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        crate::clamped_mut(self.buffer.as_mut(), field::DATA, usize::MAX)
    }

    /// Computes and stores the checksum for a message from `src` to `dst`.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
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

/// A neighbour solicitation or advertisement in structured form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NdiscRepr {
    /// Who has `target_addr`? (type 135)
    NeighborSolicit {
        /// The address being resolved.
        target_addr: Ipv6Addr,
        /// The sender's MAC (source link-layer address option), absent in duplicate
        /// address detection.
        lladdr: Option<EthernetAddress>,
    },
    /// `target_addr` is at `lladdr` (type 136).
    NeighborAdvert {
        /// Router, solicited and override flags.
        flags: NdiscFlags,
        /// The address advertised.
        target_addr: Ipv6Addr,
        /// The target's MAC (target link-layer address option).
        lladdr: Option<EthernetAddress>,
    },
}

impl NdiscRepr {
    /// Reads a neighbour solicitation or advertisement: `Unsupported` for other types,
    /// `Malformed` for a non-zero code or malformed options. The checksum is not
    /// checked here (it needs the IPv6 addresses: use [`Packet::verify_checksum`]).
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Result<NdiscRepr> {
        p.check_len()?;
        let ty = p.msg_type();
        if ty != Message::NEIGHBOR_SOLICIT && ty != Message::NEIGHBOR_ADVERT {
            return Err(Error::Unsupported);
        }
        if p.msg_code() != 0 {
            return Err(Error::Malformed);
        }
        let mut opts = p.ndisc_options();
        let mut lladdr = None;
        for o in opts.by_ref() {
            match (ty, o) {
                (Message::NEIGHBOR_SOLICIT, NdiscOption::SourceLinkLayerAddr(a))
                | (Message::NEIGHBOR_ADVERT, NdiscOption::TargetLinkLayerAddr(a)) => lladdr = Some(a),
                _ => {}
            }
        }
        if opts.is_malformed() {
            return Err(Error::Malformed);
        }
        let target_addr = p.target_addr();
        Ok(if ty == Message::NEIGHBOR_SOLICIT {
            NdiscRepr::NeighborSolicit { target_addr, lladdr }
        } else {
            NdiscRepr::NeighborAdvert { flags: p.ndisc_flags(), target_addr, lladdr }
        })
    }

    /// The message length [`NdiscRepr::emit`] writes: 24, plus 8 with a link-layer
    /// address option.
    pub const fn buffer_len(&self) -> usize {
        let ll = match self {
            NdiscRepr::NeighborSolicit { lladdr, .. } | NdiscRepr::NeighborAdvert { lladdr, .. } => lladdr,
        };
        NDISC_LEN + if ll.is_some() { 8 } else { 0 }
    }

    /// Writes the message into a buffer of exactly [`NdiscRepr::buffer_len`] bytes and
    /// fills the checksum for `src` -> `dst`. `Truncated` if the buffer is too short.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, src: Ipv6Addr, dst: Ipv6Addr, p: &mut Packet<T>) -> Result<()> {
        if p.buffer.as_ref().len() < self.buffer_len() {
            return Err(Error::Truncated);
        }
        p.set_msg_code(0);
        let (target, ll, opt_kind) = match *self {
            NdiscRepr::NeighborSolicit { target_addr, lladdr } => {
                p.set_msg_type(Message::NEIGHBOR_SOLICIT);
                p.set_param(0);
                (target_addr, lladdr, ndisc_option::SOURCE_LL_ADDR)
            }
            NdiscRepr::NeighborAdvert { flags, target_addr, lladdr } => {
                p.set_msg_type(Message::NEIGHBOR_ADVERT);
                p.set_ndisc_flags(flags);
                (target_addr, lladdr, ndisc_option::TARGET_LL_ADDR)
            }
        };
        p.set_target_addr(target);
        if let Some(a) = ll {
            let o = &mut p.buffer.as_mut()[NDISC_LEN..NDISC_LEN + 8];
            o[0] = opt_kind;
            o[1] = 1;
            o[2..].copy_from_slice(&a.0);
        }
        p.fill_checksum(src, dst);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> Ipv6Addr {
        s.parse().unwrap()
    }

    // A neighbour solicitation for fe80::2 from fe80::1 (MAC 02:00:00:00:00:01) to the
    // solicited-node address ff02::1:ff00:2; checksum filled in the test.
    static NS: [u8; 32] = [
        135, 0, 0, 0, 0, 0, 0, 0, // type, code, checksum, reserved
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, // target
        1, 1, 0x02, 0, 0, 0, 0, 0x01, // source link-layer address
    ];

    #[test]
    fn neighbour_solicit_parse_emit() {
        let (src, dst) = (addr("fe80::1"), addr("ff02::1:ff00:2"));
        let want = NdiscRepr::NeighborSolicit {
            target_addr: addr("fe80::2"),
            lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 1])),
        };
        let mut b = NS;
        Packet::new_unchecked(&mut b[..]).fill_checksum(src, dst);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum(src, dst));
        assert_eq!(NdiscRepr::parse(&p).unwrap(), want);
        let mut out = [0u8; 32];
        want.emit(src, dst, &mut Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out, b);
        assert_eq!(want.buffer_len(), 32);
        assert_eq!(Packet::new_checked(&b[..23]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn neighbour_advert_roundtrip() {
        let (src, dst) = (addr("fe80::2"), addr("fe80::1"));
        let na = NdiscRepr::NeighborAdvert {
            flags: NdiscFlags::SOLICITED | NdiscFlags::OVERRIDE,
            target_addr: addr("fe80::2"),
            lladdr: Some(EthernetAddress([2, 0, 0, 0, 0, 2])),
        };
        let mut out = [0u8; 32];
        na.emit(src, dst, &mut Packet::new_unchecked(&mut out[..])).unwrap();
        assert_eq!(out[4], 0x60);
        assert_eq!(out[24..26], [2, 1]);
        let p = Packet::new_checked(&out[..]).unwrap();
        assert!(p.verify_checksum(src, dst));
        assert_eq!(NdiscRepr::parse(&p).unwrap(), na);
        assert_eq!(format!("{:?}", p.ndisc_flags()), "-SO");
        let mut short = [0u8; 24];
        assert_eq!(na.emit(src, dst, &mut Packet::new_unchecked(&mut short[..])), Err(Error::Truncated));
    }

    #[test]
    fn malformed_ndisc_options() {
        let mut b = NS;
        b[25] = 0; // option length 0
        assert_eq!(NdiscRepr::parse(&Packet::new_checked(&b[..]).unwrap()), Err(Error::Malformed));
        b[25] = 2; // runs past the end
        assert_eq!(NdiscRepr::parse(&Packet::new_checked(&b[..]).unwrap()), Err(Error::Malformed));
        let mut b = NS;
        b[1] = 1;
        assert_eq!(NdiscRepr::parse(&Packet::new_checked(&b[..]).unwrap()), Err(Error::Malformed));
        // Duplicate address detection: no option at all.
        let p = Packet::new_checked(&NS[..24]).unwrap();
        assert_eq!(
            NdiscRepr::parse(&p).unwrap(),
            NdiscRepr::NeighborSolicit { target_addr: addr("fe80::2"), lladdr: None }
        );
    }

    #[test]
    fn errors_and_echo() {
        // Packet too big, MTU 1280, quoting 48 bytes.
        let mut b = [0u8; 56];
        b[0] = 2;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_param(1280);
        let (src, dst) = (addr("2001:db8::1"), addr("2001:db8::2"));
        p.fill_checksum(src, dst);
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), Message::PKT_TOO_BIG);
        assert_eq!(p.mtu(), 1280);
        assert_eq!(p.inner().unwrap().len(), 48);
        assert!(p.verify_checksum(src, dst));

        let mut e = [128u8, 0, 0, 0, 0, 7, 0, 9, b'x'];
        let mut p = Packet::new_unchecked(&mut e[..]);
        p.fill_checksum(src, dst);
        let p = Packet::new_checked(&e[..]).unwrap();
        assert_eq!((p.echo_ident(), p.echo_seq_no()), (7, 9));
        assert_eq!(p.inner(), None);
        assert!(p.verify_checksum(src, dst));
        assert_eq!(format!("{:?}", p.msg_type()), "EchoRequest");
    }
}
