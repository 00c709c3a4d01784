//! The SYN proxy's packet work: reading the options of a handshake segment, writing
//! a header-only segment in place of the packet in the buffer (SYN-ACK to the client,
//! SYN and ACK to the real server, RST to the client), and the per-packet sequence,
//! SACK, timestamp and window translation of a proxied connection.
//!
//! Crafted segments get a fresh IP header (IPv4: 20 bytes, DF, TTL 64; IPv6: 40 bytes,
//! hop limit 64, no extension header) and full checksums (a handshake segment is at
//! most 100 bytes). Translation updates checksums incrementally, like
//! [`crate::translate`].

use std::net::IpAddr;

use wire::checksum::Delta;
use wire::tcp::kind;
use wire::tcp::TcpOptions;
use wire::{TcpFlags, TcpOption, TcpPacket};

use crate::buf::PacketBuf;
use crate::translate::TranslateError;

/// The options of a TCP segment the SYN proxy cares about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Opts {
    /// MSS.
    pub mss: Option<u16>,
    /// Window scale shift.
    pub wscale: Option<u8>,
    /// SACK permitted.
    pub sack_perm: bool,
    /// Timestamps (value, echo reply).
    pub ts: Option<(u32, u32)>,
}

impl Opts {
    /// Reads the options of a TCP header (a malformed list is read up to the fault).
    pub fn parse(options: &[u8]) -> Opts {
        let mut o = Opts::default();
        for opt in TcpOptions::new(options) {
            match opt {
                TcpOption::Mss(v) => o.mss = Some(v),
                TcpOption::WindowScale(v) => o.wscale = Some(v),
                TcpOption::SackPermitted => o.sack_perm = true,
                TcpOption::Timestamps(a, b) => o.ts = Some((a, b)),
                _ => {}
            }
        }
        o
    }
}

/// What a TCP segment holds, read once.
#[derive(Debug, Clone, Copy)]
pub struct Seg {
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window field.
    pub window: u16,
    /// Payload length.
    pub payload: usize,
    /// Options.
    pub opts: Opts,
}

/// Reads the segment at `l4..l4 + len` of `data`.
pub fn read(data: &[u8], l4: usize, len: usize) -> Result<Seg, TranslateError> {
    let seg = data.get(l4..l4 + len).ok_or(TranslateError::Truncated)?;
    let t = TcpPacket::new_checked(seg)?;
    Ok(Seg {
        seq: t.seq_number(),
        ack: t.ack_number(),
        flags: t.flags(),
        window: t.window_len(),
        payload: len - t.header_len(),
        opts: Opts::parse(t.options()),
    })
}

/// A TCP option list being written (at most 40 bytes).
#[derive(Debug, Clone, Copy)]
pub struct OptBuf {
    b: [u8; 40],
    n: usize,
}

impl Default for OptBuf {
    fn default() -> Self {
        OptBuf { b: [0; 40], n: 0 }
    }
}

impl OptBuf {
    /// Appends raw bytes (ignored beyond 40 bytes: callers write at most 40).
    pub fn push(&mut self, raw: &[u8]) {
        let end = (self.n + raw.len()).min(40);
        let k = end - self.n;
        self.b[self.n..end].copy_from_slice(&raw[..k]);
        self.n = end;
    }

    /// Appends an option.
    pub fn opt(&mut self, o: TcpOption<'_>) {
        let mut tmp = [0u8; 40];
        if let Ok(k) = o.emit(&mut tmp) {
            self.push(&tmp[..k]);
        }
    }

    /// The options written, padded with NOPs to a multiple of 4 bytes.
    pub fn padded(&mut self) -> &[u8] {
        while !self.n.is_multiple_of(4) && self.n < 40 {
            self.b[self.n] = kind::NOP;
            self.n += 1;
        }
        &self.b[..self.n]
    }

    /// The handshake options Linux writes, in Linux's order: MSS, then SACK-permitted
    /// and timestamps (with NOPs to align), then window scale.
    pub fn handshake(mss: u16, sack: bool, ts: Option<(u32, u32)>, wscale: Option<u8>) -> OptBuf {
        let mut o = OptBuf::default();
        o.opt(TcpOption::Mss(mss));
        match (sack, ts) {
            (true, Some((a, b))) => {
                o.opt(TcpOption::SackPermitted);
                o.opt(TcpOption::Timestamps(a, b));
            }
            (false, Some((a, b))) => {
                o.push(&[kind::NOP, kind::NOP]);
                o.opt(TcpOption::Timestamps(a, b));
            }
            (true, None) => {
                o.push(&[kind::NOP, kind::NOP]);
                o.opt(TcpOption::SackPermitted);
            }
            (false, None) => {}
        }
        if let Some(w) = wscale {
            o.push(&[kind::NOP]);
            o.opt(TcpOption::WindowScale(w));
        }
        o
    }
}

/// A header-only TCP segment to write in place of a packet.
#[derive(Debug, Clone, Copy)]
pub struct Craft<'a> {
    /// Source address (of the packet's family).
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub sport: u16,
    /// Destination port.
    pub dport: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number.
    pub ack: u32,
    /// Flags.
    pub flags: TcpFlags,
    /// Window field.
    pub window: u16,
    /// Options, a multiple of 4 bytes, at most 40.
    pub opts: &'a [u8],
}

/// Replaces the IP packet at `l3` in `buf` with the segment `c` (the bytes before `l3`,
/// e.g. an Ethernet header, stay). Fails without change if the buffer cannot grow to
/// the new length or the addresses are of mixed families.
pub fn craft<B: PacketBuf>(buf: &mut B, l3: usize, c: &Craft<'_>) -> Result<(), TranslateError> {
    let v4 = match (c.src, c.dst) {
        (IpAddr::V4(_), IpAddr::V4(_)) => true,
        (IpAddr::V6(_), IpAddr::V6(_)) => false,
        _ => return Err(TranslateError::FamilyMismatch),
    };
    let iphl = if v4 { 20 } else { 40 };
    let tcp_len = 20 + c.opts.len();
    let need = l3 + iphl + tcp_len;
    let cur = buf.len();
    if need > cur {
        buf.grow_back(need - cur)?;
    } else {
        buf.truncate(need);
    }
    let data = &mut buf.data_mut()[l3..need];
    match (c.src, c.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let h = &mut data[..20];
            h.copy_from_slice(&[0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
            h[2..4].copy_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            h[12..16].copy_from_slice(&s.octets());
            h[16..20].copy_from_slice(&d.octets());
            let sum = wire::checksum::checksum(h);
            h[10..12].copy_from_slice(&sum.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let h = &mut data[..40];
            h[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, 6, 64]);
            h[4..6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
            h[8..24].copy_from_slice(&s.octets());
            h[24..40].copy_from_slice(&d.octets());
        }
        _ => unreachable!("families checked above"),
    }
    let seg = &mut data[iphl..];
    seg[..20].fill(0);
    seg[20..].copy_from_slice(c.opts);
    let mut t = TcpPacket::new_unchecked(seg);
    t.set_src_port(c.sport);
    t.set_dst_port(c.dport);
    t.set_seq_number(c.seq);
    t.set_ack_number(c.ack);
    t.set_header_len(tcp_len);
    t.set_flags(c.flags);
    t.set_window_len(c.window);
    t.fill_checksum(c.src, c.dst);
    Ok(())
}

/// How a proxied connection's segments are translated (see [`translate`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    /// Server ISN − the cookie: subtracted from server sequence numbers, added to client
    /// acknowledgments and SACK blocks.
    pub seq: u32,
    /// Server TSval − the proxy's TSval, when timestamps are on.
    pub ts: Option<u32>,
    /// The client's window scale when the server scales nothing (client windows are
    /// then shifted up for it), else `None`.
    pub win_up: Option<u8>,
    /// (server shift, client-side shift) when they differ: server windows are
    /// converted from one to the other.
    pub win_conv: Option<(u8, u8)>,
}

/// Translates the TCP segment `seg` (already address-translated) of a proxied
/// connection: `to_server` for client → server (acknowledgment, SACK blocks and
/// timestamp echo into the server's numbering, window for a server without scaling),
/// else server → client (sequence number and timestamp value into the proxy's
/// numbering, window into the scale the client was told). The checksum is updated
/// incrementally.
pub fn translate(seg: &mut [u8], to_server: bool, s: &Shift) -> Result<(), TranslateError> {
    let mut t = TcpPacket::new_checked(&mut *seg)?;
    let mut d = Delta::new();
    let flags = t.flags();
    if to_server {
        if flags.contains(TcpFlags::ACK) {
            let a = t.ack_number();
            let n = a.wrapping_add(s.seq);
            t.set_ack_number(n);
            d.replace32(a, n);
        }
        if let Some(ws) = s.win_up {
            let w = t.window_len();
            let n = ((u32::from(w)) << ws).min(0xffff) as u16;
            t.set_window_len(n);
            d.replace16(w, n);
        }
    } else {
        let q = t.seq_number();
        let n = q.wrapping_sub(s.seq);
        t.set_seq_number(n);
        d.replace32(q, n);
        if let Some((from, to)) = s.win_conv {
            let w = t.window_len();
            let n = ((u64::from(w) << from) >> to).min(0xffff) as u16;
            t.set_window_len(n);
            d.replace16(w, n);
        }
    }
    let hl = t.header_len();
    let csum = t.checksum();
    // Options: SACK blocks (client → server) and timestamps.
    let mut at = 20;
    while at < hl {
        let k = seg[at];
        if k == kind::END {
            break;
        }
        if k == kind::NOP {
            at += 1;
            continue;
        }
        // A kind without its length byte ends the walk as a bad length does: the
        // numbers above are rewritten already, and the checksum below must follow them.
        let Some(&len) = seg.get(at + 1) else { break };
        let len = len as usize;
        if len < 2 || at + len > hl {
            break;
        }
        match k {
            kind::SACK if to_server && (len - 2).is_multiple_of(8) => {
                for e in (at + 2..at + len).step_by(4) {
                    shift32(seg, e, s.seq, true, &mut d);
                }
            }
            kind::TIMESTAMPS if len == 10 => {
                if let Some(ts) = s.ts {
                    if to_server {
                        shift32(seg, at + 6, ts, true, &mut d);
                    } else {
                        shift32(seg, at + 2, ts, false, &mut d);
                    }
                }
            }
            _ => {}
        }
        at += len;
    }
    seg[16..18].copy_from_slice(&d.apply(csum).to_be_bytes());
    Ok(())
}

/// Adds (or subtracts) `by` to the 32-bit word at `at`, recording the change.
fn shift32(seg: &mut [u8], at: usize, by: u32, add: bool, d: &mut Delta) {
    let old = [seg[at], seg[at + 1], seg[at + 2], seg[at + 3]];
    let v = u32::from_be_bytes(old);
    let n = if add { v.wrapping_add(by) } else { v.wrapping_sub(by) };
    let new = n.to_be_bytes();
    seg[at..at + 4].copy_from_slice(&new);
    d.replace_at(at, &old, &new);
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use wire::builder::PacketBuilder;

    use super::*;
    use crate::buf::VecBuf;
    use crate::translate::testutil::check;

    #[test]
    fn crafted_segments_are_valid() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        // A long input (payload) shrinks; a short one grows.
        for input in [
            PacketBuilder::ipv4(a, b).tcp(1, 2).payload(&[7; 300]).build(),
            PacketBuilder::ipv4(a, b).tcp(1, 2).build(),
        ] {
            let mut buf = VecBuf::new(&input);
            let mut o = OptBuf::handshake(1460, true, Some((5, 6)), Some(7));
            let c = Craft {
                src: b.into(),
                dst: a.into(),
                sport: 2,
                dport: 1,
                seq: 9,
                ack: 10,
                flags: TcpFlags(0x12),
                window: 65535,
                opts: o.padded(),
            };
            craft(&mut buf, 0, &c).unwrap();
            let seen = check(&buf.to_vec());
            assert_eq!(seen.tcp_options.len(), 20);
            assert!(seen.payload.is_empty());
        }
    }

    #[test]
    fn translation_round_trip_keeps_checksums() {
        let a = Ipv4Addr::new(10, 0, 0, 1);
        let b = Ipv4Addr::new(10, 0, 0, 2);
        let sack = [5u8, 18, 0, 0, 0, 100, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0];
        let p = PacketBuilder::ipv4(a, b)
            .tcp(1, 2)
            .flags(TcpFlags::ACK)
            .seq(1)
            .ack(1000)
            .option(&[1, 1])
            .timestamps(5, 6)
            .option(&[1, 1])
            .option(&sack)
            .payload(b"x")
            .build();
        let mut v = p.clone();
        let s = Shift { seq: 0x1000_0000, ts: Some(77), win_up: None, win_conv: None };
        translate(&mut v[20..], true, &s).unwrap();
        let seen = check(&v);
        let t = TcpPacket::new_checked(&v[20..]).unwrap();
        assert_eq!(t.ack_number(), 1000 + 0x1000_0000);
        let o: Vec<_> = t.options_iter().collect();
        assert!(o.contains(&TcpOption::Timestamps(5, 6 + 77)));
        assert_eq!(seen.payload, b"x");
        let sk = o.iter().find_map(|x| if let TcpOption::Sack(d) = x { Some(*d) } else { None }).unwrap();
        assert_eq!(u32::from_be_bytes([sk[0], sk[1], sk[2], sk[3]]), 100 + 0x1000_0000);
    }

    /// A server's segment whose options end with a kind and no length byte (nothing
    /// checks a server's options before): its numbers are rewritten and its checksum
    /// follows them, where the walk used to stop before the checksum was written.
    #[test]
    fn an_option_without_its_length_still_leaves_a_valid_checksum() {
        let (a, b) = (Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(10, 0, 0, 1));
        let p = PacketBuilder::ipv4(a, b).tcp(2, 1).flags(TcpFlags::ACK).seq(5000).ack(7).option(&[1, 1, 1, 8]).build();
        let mut v = p.clone();
        let s = Shift { seq: 1000, ts: None, win_up: None, win_conv: None };
        translate(&mut v[20..], false, &s).unwrap();
        check(&v);
        assert_eq!(TcpPacket::new_checked(&v[20..]).unwrap().seq_number(), 4000);
    }
}
