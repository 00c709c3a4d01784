//! The Internet checksum (RFC 1071) and its incremental update (RFC 1624).
//!
//! A checksum is computed in two steps: [`ones_sum`] accumulates a 32-bit partial
//! one's-complement sum over any number of pieces (the pseudo-header from
//! [`pseudo_header`], then the segment), and [`fold`] turns the sum into the 16-bit value
//! written into the packet. A receiver checks by summing everything including the
//! checksum field: `fold(sum) == 0`.
//!
//! A load balancer rewrites addresses and ports but never the payload, so it updates
//! checksums incrementally with [`update16`], [`update32`] and [`update_bytes`] (RFC 1624
//! eqn. 3, `HC' = ~(~HC + ~m + m')`): the cost does not depend on the packet size.
//!
//! UDP reserves a transmitted checksum of 0 for "no checksum" (over IPv4; over IPv6 a
//! checksum is mandatory), so a computed 0 is sent as `0xffff`: see [`udp_nonzero`].

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Adds `data` to the running one's-complement sum `initial` and returns the new
/// partial sum (not yet folded to 16 bits). The data is taken as big-endian 16-bit
/// words; an odd final byte is padded with a zero byte, so when a checksum is computed
/// over several pieces, only the last one may have an odd length.
///
/// Works on 8-byte chunks with end-around carry, which is equivalent to the 16-bit sum
/// after folding and several times faster.
#[inline]
pub fn ones_sum(data: &[u8], initial: u32) -> u32 {
    let mut acc: u64 = initial as u64;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        let v = u64::from_be_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        let (s, carry) = acc.overflowing_add(v);
        acc = s + carry as u64;
    }
    let mut rest = chunks.remainder();
    if rest.len() >= 4 {
        let v = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as u64;
        let (s, carry) = acc.overflowing_add(v);
        acc = s + carry as u64;
        rest = &rest[4..];
    }
    if rest.len() >= 2 {
        let v = u16::from_be_bytes([rest[0], rest[1]]) as u64;
        let (s, carry) = acc.overflowing_add(v);
        acc = s + carry as u64;
        rest = &rest[2..];
    }
    if let Some(&b) = rest.first() {
        let v = (b as u64) << 8;
        let (s, carry) = acc.overflowing_add(v);
        acc = s + carry as u64;
    }
    // 64 -> 32 bits with end-around carry (twice: the first fold may carry once more).
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc = (acc & 0xffff_ffff) + (acc >> 32);
    acc as u32
}

/// Adds two partial sums with end-around carry, so that partial sums of separate
/// pieces (each of even length) can be combined in any order.
#[inline]
pub fn combine(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    s + carry as u32
}

/// Folds a partial sum to 16 bits without complementing it: the one's-complement sum
/// of the data (`0` only if all the data was zero).
#[inline]
pub fn fold_sum(sum: u32) -> u16 {
    // Two folds always suffice for 32 bits (the first leaves at most 0x1fffe), and a
    // fold of a 16-bit value changes nothing: no loop, no branch on the data.
    let s = (sum & 0xffff) + (sum >> 16);
    let s = (s & 0xffff) + (s >> 16);
    s as u16
}

/// Folds a partial sum to 16 bits and complements it: the value to write into the
/// checksum field (or, when the field was included in the sum, `0` if it verifies).
#[inline]
pub fn fold(sum: u32) -> u16 {
    !fold_sum(sum)
}

/// The complete checksum of `data` alone (e.g. an IPv4 header or an ICMPv4 message,
/// with its checksum field zeroed).
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    fold(ones_sum(data, 0))
}

/// The partial sum of the IPv4 pseudo-header (RFC 793/768): source, destination, zero,
/// protocol and the upper-layer length.
#[inline]
pub fn pseudo_header_v4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, len: u16) -> u32 {
    let s = src.octets();
    let d = dst.octets();
    u16::from_be_bytes([s[0], s[1]]) as u32
        + u16::from_be_bytes([s[2], s[3]]) as u32
        + u16::from_be_bytes([d[0], d[1]]) as u32
        + u16::from_be_bytes([d[2], d[3]]) as u32
        + proto as u32
        + len as u32
}

/// The partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1): source,
/// destination, the 32-bit upper-layer length and the next header value.
#[inline]
pub fn pseudo_header_v6(src: Ipv6Addr, dst: Ipv6Addr, proto: u8, len: u32) -> u32 {
    let s = ones_sum(&src.octets(), 0);
    let d = ones_sum(&dst.octets(), 0);
    let rest = (len >> 16) + (len & 0xffff) + proto as u32;
    combine(combine(s, d), rest)
}

/// The pseudo-header sum for either family. Both addresses should be of the same
/// family; mixed families give a meaningless (but defined, non-panicking) sum.
#[inline]
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> u32 {
    fn addr_sum(a: IpAddr) -> u32 {
        match a {
            IpAddr::V4(a) => ones_sum(&a.octets(), 0),
            IpAddr::V6(a) => ones_sum(&a.octets(), 0),
        }
    }
    let rest = (len >> 16) + (len & 0xffff) + proto as u32;
    combine(combine(addr_sum(src), addr_sum(dst)), rest)
}

/// RFC 1624 eqn. 3: the checksum after one 16-bit word of the covered data changed
/// from `old` to `new`.
#[inline]
pub fn update16(csum: u16, old: u16, new: u16) -> u16 {
    fold((!csum) as u32 + (!old) as u32 + new as u32)
}

/// The checksum after an aligned 32-bit word (e.g. an IPv4 address or a TCP sequence
/// number) changed from `old` to `new`.
#[inline]
pub fn update32(csum: u16, old: u32, new: u32) -> u16 {
    fold((!csum) as u32 + (!(old >> 16) & 0xffff) + (!old & 0xffff) + (new >> 16) + (new & 0xffff))
}

/// The checksum after the bytes `old` of the covered data were replaced by `new`
/// (e.g. a 4- or 16-byte address). Both slices must start at an even offset within the
/// covered data; they normally have the same even length (a different length means
/// bytes were added or removed, which is also handled, as long as the rest of the data
/// stays at the same 16-bit alignment).
#[inline]
pub fn update_bytes(csum: u16, old: &[u8], new: &[u8]) -> u16 {
    let old_sum = fold_sum(ones_sum(old, 0));
    let new_sum = ones_sum(new, 0);
    fold(combine((!csum) as u32 + (!old_sum) as u32, new_sum))
}

/// The checksum after the IP address `old` changed to `new` (both of the same family).
#[inline]
pub fn update_addr(csum: u16, old: IpAddr, new: IpAddr) -> u16 {
    match (old, new) {
        (IpAddr::V4(o), IpAddr::V4(n)) => update32(csum, u32::from(o), u32::from(n)),
        (IpAddr::V6(o), IpAddr::V6(n)) => update_bytes(csum, &o.octets(), &n.octets()),
        (IpAddr::V4(o), IpAddr::V6(n)) => update_bytes(csum, &o.octets(), &n.octets()),
        (IpAddr::V6(o), IpAddr::V4(n)) => update_bytes(csum, &o.octets(), &n.octets()),
    }
}

/// An accumulated change to checksummed data, to apply to one or more checksums at
/// once (RFC 1624 eqn. 3 over several words). A rewrite of addresses changes the IPv4
/// header checksum and the TCP/UDP checksum (through the pseudo-header) by the same
/// amount: accumulate it once, apply it twice. Words and checksums may be read in
/// either byte order, the same for all of them (RFC 1071 §2(B)): the fast path reads
/// them in the machine's own, without byte swaps.
///
/// ```
/// use wire::checksum::{checksum, Delta};
/// let mut data = [0x45u8, 0x00, 0x12, 0x34, 0xab, 0xcd];
/// let before = checksum(&data);
/// let mut d = Delta::new();
/// d.replace_at(3, &data[3..5], &[0x99, 0x98]); // odd offsets are fine
/// data[3..5].copy_from_slice(&[0x99, 0x98]);
/// assert_eq!(d.apply(before), checksum(&data));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delta(u32);

impl Delta {
    /// No change.
    pub const fn new() -> Delta {
        Delta(0)
    }

    /// A 16-bit word at an even offset changed from `old` to `new`.
    #[inline]
    pub fn replace16(&mut self, old: u16, new: u16) {
        self.0 = combine(self.0, (!old) as u32 + new as u32);
    }

    /// A 32-bit word at an even offset changed from `old` to `new` (also right for
    /// the IPv6 pseudo-header's 32-bit length, and for the IPv4 one's 16-bit length
    /// widened to 32 bits).
    #[inline]
    pub fn replace32(&mut self, old: u32, new: u32) {
        // `!old + new` with its carry folded back is `new - old` in one's complement
        // over 32 bits, hence over 16 (0xffff divides 0xffff_ffff).
        self.0 = combine(self.0, combine(!old, new));
    }

    /// An IP address (4 or 16 bytes at an even offset, or in a pseudo-header) changed.
    #[inline]
    pub fn replace_addr(&mut self, old: IpAddr, new: IpAddr) {
        match (old, new) {
            (IpAddr::V4(o), IpAddr::V4(n)) => self.replace32(u32::from(o), u32::from(n)),
            (o, n) => {
                let (ob, nb) = (addr_octets(o), addr_octets(n));
                self.replace_at(0, &ob.0[..ob.1], &nb.0[..nb.1]);
            }
        }
    }

    /// The bytes `old` at `offset` (from the start of the checksummed data; only its
    /// parity matters) were replaced by `new`. Lengths may differ by an even number of
    /// bytes (bytes inserted or removed, the data after them keeping its alignment).
    #[inline]
    pub fn replace_at(&mut self, offset: usize, old: &[u8], new: &[u8]) {
        let (mut o, mut n) = (fold_sum(ones_sum(old, 0)), fold_sum(ones_sum(new, 0)));
        if offset % 2 == 1 {
            // RFC 1071 byte-order independence: data at an odd offset sums byte-swapped.
            o = o.swap_bytes();
            n = n.swap_bytes();
        }
        self.replace16(o, n);
    }

    /// Adds another delta to this one.
    #[inline]
    pub fn merge(&mut self, other: Delta) {
        self.0 = combine(self.0, other.0);
    }

    /// The checksum `csum` updated by this change.
    #[inline]
    pub fn apply(self, csum: u16) -> u16 {
        fold(combine((!csum) as u32, self.0))
    }
}

fn addr_octets(a: IpAddr) -> ([u8; 16], usize) {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(a) => {
            b[..4].copy_from_slice(&a.octets());
            (b, 4)
        }
        IpAddr::V6(a) => (a.octets(), 16),
    }
}

/// The value to transmit for a computed UDP checksum: a computed `0` is sent as
/// `0xffff`, because a transmitted `0` means "no checksum" (RFC 768).
#[inline]
pub const fn udp_nonzero(csum: u16) -> u16 {
    if csum == 0 {
        0xffff
    } else {
        csum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The straightforward RFC 1071 sum, 16 bits at a time, to check the fast one.
    fn slow_sum(data: &[u8]) -> u16 {
        let mut s: u32 = 0;
        for c in data.chunks(2) {
            let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { (c[0] as u16) << 8 };
            s += w as u32;
            s = (s & 0xffff) + (s >> 16);
        }
        s as u16
    }

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to ddf2.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(fold_sum(ones_sum(&d, 0)), 0xddf2);
        assert_eq!(checksum(&d), !0xddf2);
    }

    #[test]
    fn ipv4_header_checksum() {
        // A real IPv4 header (checksum 0xb861 in place) verifies to 0.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8,
            0x00, 0xc7,
        ];
        assert_eq!(checksum(&h), 0);
        let mut z = h;
        z[10] = 0;
        z[11] = 0;
        assert_eq!(checksum(&z), 0xb861);
    }

    #[test]
    fn fast_sum_matches_slow_for_all_lengths_and_carries() {
        let mut data = [0u8; 67];
        for (i, b) in data.iter_mut().enumerate() {
            *b = 0xff - (i as u8 % 7);
        }
        for len in 0..data.len() {
            for init in [0u32, 1, 0xffff, 0xffff_ffff] {
                let fast = fold_sum(ones_sum(&data[..len], init));
                let slow = fold_sum(combine(slow_sum(&data[..len]) as u32, init));
                assert_eq!(fast, slow, "len {len} init {init:#x}");
            }
        }
    }

    #[test]
    fn incremental_updates_match_recomputation() {
        let mut data = [0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0, 0, 0x11, 0x22];
        let c0 = checksum(&data);
        // 16-bit word at 2.
        let mut d = data;
        d[2..4].copy_from_slice(&[0xff, 0xff]);
        assert_eq!(update16(c0, 0x5678, 0xffff), checksum(&d));
        // 32-bit word at 4.
        let mut d = data;
        d[4..8].copy_from_slice(&[0, 0, 0, 1]);
        assert_eq!(update32(c0, 0x9abc_def0, 1), checksum(&d));
        // bytes at 0.
        data[0..4].copy_from_slice(&[10, 0, 0, 1]);
        assert_eq!(update_bytes(c0, &[0x12, 0x34, 0x56, 0x78], &[10, 0, 0, 1]), checksum(&data));
    }

    #[test]
    fn pseudo_headers_agree() {
        let s4: Ipv4Addr = "10.0.0.1".parse().unwrap();
        let d4: Ipv4Addr = "192.168.1.2".parse().unwrap();
        assert_eq!(fold_sum(pseudo_header_v4(s4, d4, 6, 40)), fold_sum(pseudo_header(s4.into(), d4.into(), 6, 40)));
        let s6: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let d6: Ipv6Addr = "fe80::ffff:1".parse().unwrap();
        assert_eq!(
            fold_sum(pseudo_header_v6(s6, d6, 17, 70000)),
            fold_sum(pseudo_header(s6.into(), d6.into(), 17, 70000))
        );
        // Explicit RFC 8200 layout.
        let mut ph = [0u8; 40];
        ph[..16].copy_from_slice(&s6.octets());
        ph[16..32].copy_from_slice(&d6.octets());
        ph[32..36].copy_from_slice(&70000u32.to_be_bytes());
        ph[39] = 17;
        assert_eq!(fold_sum(ones_sum(&ph, 0)), fold_sum(pseudo_header_v6(s6, d6, 17, 70000)));
    }

    #[test]
    fn delta_at_any_offset_and_length() {
        let data: Vec<u8> = (0..64u8).map(|i| i.wrapping_mul(37).wrapping_add(11)).collect();
        let c0 = checksum(&data);
        for at in 0..20 {
            for len in 1..12 {
                let new: Vec<u8> = (0..len as u8).map(|i| 0xf0 ^ i).collect();
                let mut d = data.clone();
                d[at..at + len].copy_from_slice(&new);
                let mut delta = Delta::new();
                delta.replace_at(at, &data[at..at + len], &new);
                let (a, b) = (delta.apply(c0), checksum(&d));
                assert!(a == b || (a == 0 && b == 0xffff), "at {at} len {len}: {a:#x} vs {b:#x}");
            }
        }
    }

    #[test]
    fn delta_with_inserted_bytes() {
        // Insert 8 bytes at an odd offset (the data after keeps its parity).
        let data: Vec<u8> = (0..40u8).map(|i| i.wrapping_mul(91)).collect();
        let c0 = checksum(&data);
        let at = 13;
        let ins = [1u8, 2, 3, 4, 5, 6, 7, 8];
        let mut d = data[..at].to_vec();
        d.extend_from_slice(&ins);
        d.extend_from_slice(&data[at..]);
        let mut delta = Delta::new();
        // Old region: [at, at + 2); new region: [at, at + 10) (the inserted bytes and
        // the two old bytes that moved).
        delta.replace_at(at, &data[at..at + 2], &d[at..at + 10]);
        assert_eq!(delta.apply(c0), checksum(&d));
        // The same through separate words: merge is additive.
        let mut a = Delta::new();
        a.replace16(0x1234, 0x5678);
        let mut b = Delta::new();
        b.replace32(0x0000_1234, 0x0000_5678);
        a.merge(Delta::new());
        assert_eq!(a.apply(0x1111), b.apply(0x1111));
    }

    proptest::proptest! {
        /// A 32-bit word replaced at any even offset: the delta's checksum is the
        /// recomputed one (up to ones' complement's two zeros).
        #[test]
        fn replace32_matches_a_full_sum(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 4..64),
            at in 0usize..30,
            new in proptest::prelude::any::<u32>(),
        ) {
            let at = (at * 2).min(data.len() - 4) & !1;
            let old = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
            let mut changed = data.clone();
            changed[at..at + 4].copy_from_slice(&new.to_be_bytes());
            let mut d = Delta::new();
            d.replace32(old, new);
            let (got, want) = (d.apply(checksum(&data)), checksum(&changed));
            proptest::prop_assert!(got == want || (got ^ want == 0xffff && got & want == 0), "{got:#x} vs {want:#x}");
            // Words and checksum read little-endian instead: the same checksum, swapped.
            let le = |w: &[u8]| u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            let mut e = Delta::new();
            e.replace32(le(&data[at..]), le(&changed[at..]));
            let got = e.apply(checksum(&data).swap_bytes()).swap_bytes();
            proptest::prop_assert!(got == want || (got ^ want == 0xffff && got & want == 0), "{got:#x} vs {want:#x}");
        }
    }

    #[test]
    fn udp_zero_is_sent_as_ffff() {
        assert_eq!(udp_nonzero(0), 0xffff);
        assert_eq!(udp_nonzero(0x1234), 0x1234);
    }
}
