//! TCP headers (RFC 9293) and options.
//!
//! The view's buffer is the whole segment: header, options and payload, exactly the IP
//! payload (slice off any Ethernet padding first, e.g. with `Ipv4Packet::payload`),
//! because the checksum covers all of it.

use core::fmt;
use core::ops;
use std::net::IpAddr;

use crate::checksum;
use crate::ip::IpProtocol;
use crate::{get_u16, get_u32, put_u16, put_u32, Error, Result};

/// Byte ranges of the TCP header fields.
mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ_NUM: usize = 4;
    pub const ACK_NUM: usize = 8;
    pub const DATA_OFF: usize = 12;
    pub const FLAGS: usize = 13;
    pub const WIN_SIZE: usize = 14;
    pub const CHECKSUM: usize = 16;
    pub const URGENT: usize = 18;
}

/// Length of the header without options.
pub const HEADER_LEN: usize = 20;
/// Longest possible header (data offset 15).
pub const MAX_HEADER_LEN: usize = 60;
/// Byte offset of the source port.
pub const SRC_PORT_OFFSET: usize = field::SRC_PORT;
/// Byte offset of the destination port.
pub const DST_PORT_OFFSET: usize = field::DST_PORT;
/// Byte offset of the checksum.
pub const CHECKSUM_OFFSET: usize = field::CHECKSUM;
/// Byte offset of the data offset nibble (the high 4 bits of this byte).
pub const DATA_OFF_OFFSET: usize = field::DATA_OFF;

/// Option kinds.
pub mod kind {
    /// End of option list.
    pub const END: u8 = 0;
    /// No operation (padding).
    pub const NOP: u8 = 1;
    /// Maximum segment size.
    pub const MSS: u8 = 2;
    /// Window scale.
    pub const WINDOW_SCALE: u8 = 3;
    /// SACK permitted.
    pub const SACK_PERMITTED: u8 = 4;
    /// SACK blocks.
    pub const SACK: u8 = 5;
    /// Timestamps.
    pub const TIMESTAMPS: u8 = 8;
}

/// The eight TCP flag bits (byte 13 of the header), as a bit set.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from the sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronise sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// The acknowledgment number is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// The urgent pointer is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN echo.
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion window reduced.
    pub const CWR: TcpFlags = TcpFlags(0x80);

    /// No flag set.
    pub const fn empty() -> TcpFlags {
        TcpFlags(0)
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every flag of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// Whether any flag of `other` is set in `self`.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// Whether no flag is set.
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Whether SYN is set.
    pub const fn syn(self) -> bool {
        self.contains(Self::SYN)
    }

    /// Whether these are a connection's opening flags: SYN without ACK, RST or FIN
    /// (what may open a connection, or reuse one in `TIME_WAIT`).
    pub const fn opens(self) -> bool {
        self.syn() && !self.intersects(TcpFlags(Self::ACK.0 | Self::RST.0 | Self::FIN.0))
    }

    /// Whether ACK is set.
    pub const fn ack(self) -> bool {
        self.contains(Self::ACK)
    }

    /// Whether FIN is set.
    pub const fn fin(self) -> bool {
        self.contains(Self::FIN)
    }

    /// Whether RST is set.
    pub const fn rst(self) -> bool {
        self.contains(Self::RST)
    }
}

impl ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | rhs.0)
    }
}

impl ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        self.0 |= rhs.0;
    }
}

impl ops::BitAnd for TcpFlags {
    type Output = TcpFlags;
    fn bitand(self, rhs: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & rhs.0)
    }
}

impl ops::Not for TcpFlags {
    type Output = TcpFlags;
    fn not(self) -> TcpFlags {
        TcpFlags(!self.0)
    }
}

impl fmt::Debug for TcpFlags {
    /// Lists the set flags, e.g. `SYN|ACK`, or `-` when none is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
        if self.0 == 0 {
            return f.write_str("-");
        }
        let mut first = true;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str("|")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

impl fmt::Display for TcpFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// One TCP option.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpOption<'a> {
    /// End of the option list (kind 0); nothing after it is read.
    EndOfList,
    /// Padding (kind 1).
    NoOp,
    /// Maximum segment size (kind 2, length 4).
    Mss(u16),
    /// Window scale shift (kind 3, length 3).
    WindowScale(u8),
    /// SACK permitted (kind 4, length 2).
    SackPermitted,
    /// SACK blocks, raw (kind 5): pairs of 32-bit left and right edges.
    Sack(&'a [u8]),
    /// Timestamp value and echo reply (kind 8, length 10).
    Timestamps(u32, u32),
    /// Any other option, or a known kind with an unexpected length.
    Unknown {
        /// The option kind.
        kind: u8,
        /// The bytes after kind and length.
        data: &'a [u8],
    },
}

impl TcpOption<'_> {
    /// The number of bytes [`TcpOption::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        match self {
            TcpOption::EndOfList | TcpOption::NoOp => 1,
            TcpOption::Mss(_) => 4,
            TcpOption::WindowScale(_) => 3,
            TcpOption::SackPermitted => 2,
            TcpOption::Sack(d) | TcpOption::Unknown { data: d, .. } => 2 + d.len(),
            TcpOption::Timestamps(..) => 10,
        }
    }

    /// Writes the option at the start of `buf` and returns its length; `Truncated` if
    /// `buf` is too short, `Malformed` if raw data would not fit the length byte.
    pub fn emit(&self, buf: &mut [u8]) -> Result<usize> {
        let len = self.buffer_len();
        if len > u8::MAX as usize {
            return Err(Error::Malformed);
        }
        let out = buf.get_mut(..len).ok_or(Error::Truncated)?;
        match *self {
            TcpOption::EndOfList => out[0] = kind::END,
            TcpOption::NoOp => out[0] = kind::NOP,
            TcpOption::Mss(v) => {
                out[..2].copy_from_slice(&[kind::MSS, 4]);
                put_u16(out, 2, v);
            }
            TcpOption::WindowScale(v) => out.copy_from_slice(&[kind::WINDOW_SCALE, 3, v]),
            TcpOption::SackPermitted => out.copy_from_slice(&[kind::SACK_PERMITTED, 2]),
            TcpOption::Sack(d) => {
                out[..2].copy_from_slice(&[kind::SACK, len as u8]);
                out[2..].copy_from_slice(d);
            }
            TcpOption::Timestamps(a, b) => {
                out[..2].copy_from_slice(&[kind::TIMESTAMPS, 10]);
                put_u32(out, 2, a);
                put_u32(out, 6, b);
            }
            TcpOption::Unknown { kind, data } => {
                out[..2].copy_from_slice(&[kind, len as u8]);
                out[2..].copy_from_slice(data);
            }
        }
        Ok(len)
    }
}

/// An iterator over the options of a header. It yields [`TcpOption::EndOfList`] once
/// and stops there, and stops without yielding when an option is malformed (a length
/// below 2 or running past the options); [`TcpOptions::is_malformed`] tells which.
#[derive(Debug, Clone)]
pub struct TcpOptions<'a> {
    data: &'a [u8],
    pos: usize,
    done: bool,
    malformed: bool,
}

impl<'a> TcpOptions<'a> {
    /// Iterates over raw option bytes (e.g. `Packet::options`).
    pub fn new(data: &'a [u8]) -> TcpOptions<'a> {
        TcpOptions { data, pos: 0, done: false, malformed: false }
    }

    /// Whether the iteration stopped on a malformed option.
    pub fn is_malformed(&self) -> bool {
        self.malformed
    }

    /// The next option as (offset in the options, kind, bytes after kind and length).
    fn next_raw(&mut self) -> Option<(usize, u8, &'a [u8])> {
        if self.done {
            return None;
        }
        let start = self.pos;
        let Some(&k) = self.data.get(start) else {
            self.done = true;
            return None;
        };
        match k {
            kind::END => {
                self.done = true;
                Some((start, k, &[]))
            }
            kind::NOP => {
                self.pos += 1;
                Some((start, k, &[]))
            }
            _ => {
                let len = self.data.get(start + 1).map(|&l| l as usize);
                match len.and_then(|l| if l >= 2 { self.data.get(start..start + l) } else { None }) {
                    Some(opt) => {
                        self.pos += opt.len();
                        Some((start, k, &opt[2..]))
                    }
                    None => {
                        self.done = true;
                        self.malformed = true;
                        None
                    }
                }
            }
        }
    }
}

impl<'a> Iterator for TcpOptions<'a> {
    type Item = TcpOption<'a>;

    fn next(&mut self) -> Option<TcpOption<'a>> {
        let (_, k, d) = self.next_raw()?;
        Some(match (k, d.len()) {
            (kind::END, _) => TcpOption::EndOfList,
            (kind::NOP, _) => TcpOption::NoOp,
            (kind::MSS, 2) => TcpOption::Mss(get_u16(d, 0)),
            (kind::WINDOW_SCALE, 1) => TcpOption::WindowScale(d[0]),
            (kind::SACK_PERMITTED, 0) => TcpOption::SackPermitted,
            (kind::SACK, _) => TcpOption::Sack(d),
            (kind::TIMESTAMPS, 8) => TcpOption::Timestamps(get_u32(d, 0), get_u32(d, 4)),
            (kind, _) => TcpOption::Unknown { kind, data: d },
        })
    }
}

/// A view of a TCP segment.
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

    /// Wraps a buffer after [`Packet::check_len`].
    pub fn new_checked(buffer: T) -> Result<Packet<T>> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks that the fixed header is present, the data offset is at least 5 and the
    /// whole header (options included) is present.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < hl {
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

    /// The sequence number.
    pub fn seq_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::SEQ_NUM)
    }

    /// The acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        get_u32(self.buffer.as_ref(), field::ACK_NUM)
    }

    /// The header length in bytes (data offset x 4), options included.
    pub fn header_len(&self) -> usize {
        (self.buffer.as_ref()[field::DATA_OFF] >> 4) as usize * 4
    }

    /// The flags.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// The receive window (unscaled).
    pub fn window_len(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::WIN_SIZE)
    }

    /// The checksum as stored.
    pub fn checksum(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::CHECKSUM)
    }

    /// The urgent pointer.
    pub fn urgent_at(&self) -> u16 {
        get_u16(self.buffer.as_ref(), field::URGENT)
    }

    /// The raw options (bytes 20 to the header length; clamped to the buffer).
    pub fn options(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), HEADER_LEN, self.header_len())
    }

    /// Iterates over the options.
    pub fn options_iter(&self) -> TcpOptions<'_> {
        TcpOptions::new(self.options())
    }

    /// The MSS option's value, if there is one.
    pub fn mss(&self) -> Option<u16> {
        self.options_iter().find_map(|o| match o {
            TcpOption::Mss(v) => Some(v),
            _ => None,
        })
    }

    /// Offset from the start of the segment of the first option of `kind` with total
    /// length `len`, if present.
    pub fn find_option(&self, kind: u8, len: usize) -> Option<usize> {
        let mut it = self.options_iter();
        while let Some((off, k, d)) = it.next_raw() {
            if k == kind && d.len() + 2 == len {
                return Some(HEADER_LEN + off);
            }
        }
        None
    }

    /// The payload after the header (clamped to the buffer).
    pub fn payload(&self) -> &[u8] {
        crate::clamped(self.buffer.as_ref(), self.header_len(), usize::MAX)
    }

    /// The checksum the segment should carry between `src` and `dst` (computed with
    /// the checksum field taken as zero).
    pub fn compute_checksum(&self, src: IpAddr, dst: IpAddr) -> u16 {
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, IpProtocol::TCP.0, data.len() as u32);
        let stored = self.checksum();
        let sum = checksum::ones_sum(data, ph);
        // Remove the stored checksum word from the sum instead of copying the data.
        checksum::fold(checksum::combine(sum, (!stored) as u32))
    }

    /// Whether the checksum is correct for a segment between `src` and `dst`.
    pub fn verify_checksum(&self, src: IpAddr, dst: IpAddr) -> bool {
        let data = self.buffer.as_ref();
        let ph = checksum::pseudo_header(src, dst, IpProtocol::TCP.0, data.len() as u32);
        checksum::fold(checksum::ones_sum(data, ph)) == 0
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

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        put_u32(self.buffer.as_mut(), field::SEQ_NUM, v);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, v: u32) {
        put_u32(self.buffer.as_mut(), field::ACK_NUM, v);
    }

    /// Sets the header length in bytes (rounded down to a multiple of 4, at most 60),
    /// keeping the reserved bits.
    pub fn set_header_len(&mut self, len: usize) {
        let off = (len.min(MAX_HEADER_LEN) / 4) as u8;
        let b = &mut self.buffer.as_mut()[field::DATA_OFF];
        *b = (*b & 0x0f) | (off << 4);
    }

    /// Sets the flags.
    pub fn set_flags(&mut self, f: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = f.0;
    }

    /// Sets the window.
    pub fn set_window_len(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::WIN_SIZE, v);
    }

    /// Sets the stored checksum.
    pub fn set_checksum(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::CHECKSUM, v);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_at(&mut self, v: u16) {
        put_u16(self.buffer.as_mut(), field::URGENT, v);
    }

    /// The options, mutable (clamped to the buffer).
    pub fn options_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        crate::clamped_mut(self.buffer.as_mut(), HEADER_LEN, hl)
    }

    /// The payload, mutable (clamped to the buffer).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let hl = self.header_len();
        crate::clamped_mut(self.buffer.as_mut(), hl, usize::MAX)
    }

    /// Replaces the value of an existing MSS option (kind 2, length 4) and returns the
    /// old value, or `None` (and changes nothing) if there is none. The checksum is not
    /// touched: the caller updates it, e.g. `checksum::update16(c, old, new)` (the MSS
    /// value sits at an even offset of the segment).
    pub fn rewrite_mss(&mut self, new: u16) -> Option<u16> {
        let at = self.find_option(kind::MSS, 4)? + 2;
        let data = self.buffer.as_mut();
        let slot = data.get_mut(at..at + 2)?;
        let old = u16::from_be_bytes([slot[0], slot[1]]);
        slot.copy_from_slice(&new.to_be_bytes());
        Some(old)
    }

    /// Computes and stores the checksum for a segment between `src` and `dst`.
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
    use std::net::Ipv4Addr;

    const SRC: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 10));
    const DST: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 168, 1, 20));

    /// A SYN 54321 -> 80, seq 0x01020304, data offset 10 with MSS 1460, SACK permitted,
    /// timestamps, NOP, window scale 7; checksum filled by the test.
    static SYN: [u8; 40] = [
        0xd4, 0x31, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x00, 0x00,
        0x00, 0x00, // fixed header
        0x02, 0x04, 0x05, 0xb4, // MSS 1460
        0x04, 0x02, // SACK permitted
        0x08, 0x0a, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, // TS 1, 0
        0x01, // NOP
        0x03, 0x03, 0x07, // WS 7
    ];

    #[test]
    fn opening_flags() {
        let f = |bits: u8| TcpFlags(bits).opens();
        assert!(f(0x02) && f(0x02 | 0x08) && f(0x02 | 0x40 | 0x80), "SYN, SYN+PSH, SYN with ECN");
        assert!(!f(0x12) && !f(0x06) && !f(0x03) && !f(0x10) && !f(0), "SYN-ACK, SYN+RST, SYN+FIN, ACK, none");
    }

    #[test]
    fn read_fields_and_options() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (54321, 80));
        assert_eq!((p.seq_number(), p.ack_number()), (0x0102_0304, 0));
        assert_eq!(p.header_len(), 40);
        assert_eq!(p.flags(), TcpFlags::SYN);
        assert!(p.flags().syn() && !p.flags().ack());
        assert_eq!(p.window_len(), 64240);
        assert!(p.payload().is_empty());
        let opts: Vec<_> = p.options_iter().collect();
        assert_eq!(
            opts,
            [
                TcpOption::Mss(1460),
                TcpOption::SackPermitted,
                TcpOption::Timestamps(1, 0),
                TcpOption::NoOp,
                TcpOption::WindowScale(7),
            ]
        );
        assert_eq!(p.mss(), Some(1460));
        assert_eq!(p.find_option(kind::MSS, 4), Some(20));
    }

    #[test]
    fn checksum_fill_verify() {
        let mut b = SYN;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        assert!(!p.verify_checksum(DST, DST));
        let c = p.checksum();
        assert_eq!(p.compute_checksum(SRC, DST), c, "compute ignores the stored value");
    }

    #[test]
    fn rewrite_mss_with_incremental_checksum() {
        let mut b = SYN;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(SRC, DST);
        let old = p.rewrite_mss(1400).unwrap();
        assert_eq!(old, 1460);
        let c = checksum::update16(p.checksum(), old, 1400);
        p.set_checksum(c);
        assert!(p.verify_checksum(SRC, DST));
        assert_eq!(p.mss(), Some(1400));
        // No MSS option: nothing changes.
        let mut plain = [0u8; 20];
        plain[12] = 0x50;
        assert_eq!(Packet::new_unchecked(&mut plain[..]).rewrite_mss(1), None);
    }

    #[test]
    fn malformed_options_stop_cleanly() {
        // (options, what the iterator yields, whether it reports them malformed)
        let cases: [(&[u8], &[TcpOption], bool); 5] = [
            (&[0x02, 0x00, 0x05, 0xb4], &[], true),                      // length 0
            (&[0x01, 0x02, 0x01, 0x05], &[TcpOption::NoOp], true),       // length 1
            (&[0x02, 0x08, 0x05, 0xb4], &[], true),                      // runs past the end
            (&[0x01, 0x02], &[TcpOption::NoOp], true),                   // length byte missing
            (&[0x00, 0x02, 0x04, 0x05], &[TcpOption::EndOfList], false), // nothing after EOL
        ];
        for (raw, want, malformed) in cases {
            let mut it = TcpOptions::new(raw);
            let got: Vec<_> = it.by_ref().collect();
            assert_eq!(got, want, "{raw:?}");
            assert_eq!(it.is_malformed(), malformed, "{raw:?}");
        }
        // Known kinds with odd lengths are Unknown.
        let odd = [0x02, 0x03, 0x05, 0x03, 0x04, 0x00, 0x00];
        let got: Vec<_> = TcpOptions::new(&odd).collect();
        assert_eq!(got, [TcpOption::Unknown { kind: 2, data: &[5] }, TcpOption::Unknown { kind: 3, data: &[0, 0] }]);
    }

    #[test]
    fn option_emit_roundtrip() {
        let opts = [
            TcpOption::Mss(1460),
            TcpOption::WindowScale(7),
            TcpOption::SackPermitted,
            TcpOption::Sack(&[0, 0, 0, 1, 0, 0, 0, 2]),
            TcpOption::Timestamps(7, 9),
            TcpOption::NoOp,
            TcpOption::Unknown { kind: 254, data: &[1, 2, 3, 4, 5, 6] },
            TcpOption::EndOfList,
        ];
        let mut buf = [0u8; 64];
        let mut n = 0;
        for o in &opts {
            n += o.emit(&mut buf[n..]).unwrap();
        }
        let back: Vec<_> = TcpOptions::new(&buf[..n]).collect();
        assert_eq!(back, opts);
        assert_eq!(TcpOption::Mss(1).emit(&mut [0u8; 3]), Err(Error::Truncated));
    }

    #[test]
    fn checks_and_setters() {
        assert_eq!(Packet::new_checked(&SYN[..19]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&SYN[..39]).unwrap_err(), Error::Truncated);
        let mut b = SYN;
        b[12] = 0x40;
        assert_eq!(Packet::new_checked(&b[..]).unwrap_err(), Error::Malformed);
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.set_header_len(24);
        p.set_src_port(1);
        p.set_dst_port(2);
        p.set_seq_number(3);
        p.set_ack_number(4);
        p.set_flags(TcpFlags::SYN | TcpFlags::ACK);
        p.set_window_len(5);
        p.set_urgent_at(6);
        p.payload_mut()[0] = 0x99;
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(
            (p.src_port(), p.dst_port(), p.seq_number(), p.ack_number(), p.window_len(), p.urgent_at()),
            (1, 2, 3, 4, 5, 6)
        );
        assert_eq!(p.options(), &[0x02, 0x04, 0x05, 0xb4]);
        assert_eq!(p.payload()[0], 0x99);
        assert_eq!(format!("{:?}", p.flags()), "SYN|ACK");
        assert_eq!(format!("{:?}", TcpFlags::empty()), "-");
    }
}
