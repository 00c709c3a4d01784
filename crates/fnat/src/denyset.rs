//! A set of source prefixes checked on every new connection: the global deny set (up to
//! a million prefixes, DPVS's blacklist at scale) and a service's deny and allow lists.
//! Built once per change by the control plane; a lookup is one 2-bit read (plus one
//! hash probe when the address's /24 is split) for IPv4 and one hash probe per
//! distinct prefix length for IPv6, with no allocation.
//!
//! IPv4 keeps one array of 2 bits per /24 block (2^24 blocks, 4 MiB): none, covered
//! whole, or covered in part, whose last octet is a 256-bit map in a hash table. So a
//! prefix of any length costs one state per /24 it covers (a /8 is 65,536 states, a
//! word fill), and an address is decided by one cache line unless its /24 is split.
//! A set of at most [`SMALL`] IPv4 prefixes (a service's list) skips the array and is
//! scanned instead: a few compares, no 4 MiB per service.

use std::collections::{HashMap, HashSet};

use crate::hash::Fold;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// /24 blocks of the IPv4 space.
const BLOCKS: usize = 1 << 24;

/// Up to this many IPv4 prefixes are kept in a list and scanned (a service's lists).
pub const SMALL: usize = 16;

/// Block states (2 bits each): nothing, covered whole, covered in part.
const PART: u64 = 1;
const FULL: u64 = 2;

/// An immutable set of IPv4 and IPv6 prefixes.
#[derive(Clone, Default)]
pub struct PrefixSet {
    /// 2 bits per /24 block ([`FULL`], [`PART`] or 0); empty for a small set.
    blocks: Vec<u64>,
    /// A small set's IPv4 prefixes as (masked address, mask).
    small: Vec<(u32, u32)>,
    /// The last octets covered in each partly covered block.
    octets: HashMap<u32, [u64; 4], Fold>,
    /// IPv6: per distinct prefix length (longest first), the masked prefixes.
    v6: Vec<(u8, HashSet<u128, Fold>)>,
    len: usize,
}

impl std::fmt::Debug for PrefixSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixSet").field("prefixes", &self.len).finish()
    }
}

/// The state of /24 block `b` (0 when the array is empty).
#[inline]
fn state(blocks: &[u64], b: usize) -> u64 {
    blocks.get(b / 32).map_or(0, |w| (w >> ((b % 32) * 2)) & 3)
}

/// Marks blocks `from..to` covered whole.
fn set_full(blocks: &mut [u64], from: usize, to: usize) {
    let mut b = from;
    while b < to {
        if b.is_multiple_of(32) && to - b >= 32 {
            blocks[b / 32] = 0xaaaa_aaaa_aaaa_aaaa;
            b += 32;
        } else {
            let sh = (b % 32) * 2;
            blocks[b / 32] = (blocks[b / 32] & !(3 << sh)) | (FULL << sh);
            b += 1;
        }
    }
}

#[inline]
fn bit(map: &[u64], i: usize) -> bool {
    map.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// Sets bits `from..to` of `map`.
fn set_range(map: &mut [u64], from: usize, to: usize) {
    let mut i = from;
    while i < to {
        if i.is_multiple_of(64) && to - i >= 64 {
            map[i / 64] = u64::MAX;
            i += 64;
        } else {
            map[i / 64] |= 1 << (i % 64);
            i += 1;
        }
    }
}

fn mask_v6(a: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        a & (u128::MAX << (128 - u32::from(len)))
    }
}

impl PrefixSet {
    /// The set of `prefixes` (address, length); host bits are ignored. A length past
    /// the family's is clamped to it.
    pub fn build(prefixes: impl IntoIterator<Item = (IpAddr, u8)>) -> PrefixSet {
        let mut s = PrefixSet::default();
        let mut v6: HashMap<u8, HashSet<u128, Fold>> = HashMap::new();
        for (addr, len) in prefixes {
            s.len += 1;
            match addr {
                IpAddr::V4(a) => {
                    let len = len.min(32);
                    let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
                    if s.blocks.is_empty() && s.small.len() < SMALL {
                        s.small.push((u32::from(a) & mask, mask));
                    } else {
                        if s.blocks.is_empty() {
                            s.blocks = vec![0; BLOCKS / 32];
                            for (p, m) in std::mem::take(&mut s.small) {
                                s.add_v4(p, m.count_ones() as u8);
                            }
                        }
                        s.add_v4(u32::from(a), len);
                    }
                }
                IpAddr::V6(a) => {
                    let len = len.min(128);
                    v6.entry(len).or_default().insert(mask_v6(u128::from(a), len));
                }
            }
        }
        s.v6 = v6.into_iter().collect();
        s.v6.sort_by_key(|e| std::cmp::Reverse(e.0));
        s
    }

    fn add_v4(&mut self, a: u32, len: u8) {
        let a = if len == 0 { 0 } else { a & (u32::MAX << (32 - u32::from(len))) };
        let block = (a >> 8) as usize;
        if len <= 24 {
            set_full(&mut self.blocks, block, block + (1usize << (24 - len)));
            return;
        }
        match state(&self.blocks, block) {
            FULL => return,
            PART => {}
            _ => self.blocks[block / 32] |= PART << ((block % 32) * 2),
        }
        let last = (a & 0xff) as usize;
        let map = self.octets.entry(block as u32).or_insert([0; 4]);
        set_range(map, last, last + (1usize << (32 - len)));
    }

    /// How many prefixes it was built from.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it was built from none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether `addr` lies in one of the prefixes.
    #[inline]
    pub fn contains(&self, addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(a) => self.contains_v4(a),
            IpAddr::V6(a) => self.contains_v6(a),
        }
    }

    /// Whether the IPv4 address lies in one of the prefixes.
    #[inline]
    pub fn contains_v4(&self, a: Ipv4Addr) -> bool {
        let a = u32::from(a);
        if self.blocks.is_empty() {
            return self.small.iter().any(|&(p, m)| a & m == p);
        }
        let block = (a >> 8) as usize;
        match state(&self.blocks, block) {
            FULL => true,
            PART => self.octets.get(&(block as u32)).is_some_and(|m| bit(m, (a & 0xff) as usize)),
            _ => false,
        }
    }

    /// Whether the IPv6 address lies in one of the prefixes.
    #[inline]
    pub fn contains_v6(&self, a: Ipv6Addr) -> bool {
        let a = u128::from(a);
        self.v6.iter().any(|(len, set)| set.contains(&mask_v6(a, *len)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> (IpAddr, u8) {
        let (a, l) = s.split_once('/').unwrap();
        (a.parse().unwrap(), l.parse().unwrap())
    }

    fn has(s: &PrefixSet, a: &str) -> bool {
        s.contains(a.parse().unwrap())
    }

    #[test]
    fn prefixes_of_every_length_decide_membership() {
        let s = PrefixSet::build(
            [
                "10.0.0.0/8",
                "192.0.2.128/25",
                "198.51.100.7/32",
                "203.0.113.0/24",
                "2001:db8::/32",
                "2001:db8:1::5/128",
                "::ffff:0:0/96",
            ]
            .map(p),
        );
        assert_eq!(s.len(), 7);
        for yes in [
            "10.0.0.1",
            "10.255.255.255",
            "192.0.2.128",
            "192.0.2.255",
            "198.51.100.7",
            "203.0.113.99",
            "2001:db8:ffff::1",
            "2001:db8:1::5",
        ] {
            assert!(has(&s, yes), "{yes}");
        }
        for no in [
            "11.0.0.0",
            "9.255.255.255",
            "192.0.2.127",
            "198.51.100.6",
            "198.51.100.8",
            "203.0.114.0",
            "2001:db9::1",
            "::1",
        ] {
            assert!(!has(&s, no), "{no}");
        }
    }

    #[test]
    fn a_longer_prefix_inside_a_whole_block_changes_nothing_and_host_bits_are_ignored() {
        let s = PrefixSet::build(["10.1.2.0/24", "10.1.2.77/32", "172.16.5.9/16"].map(p));
        assert!(has(&s, "10.1.2.1"));
        assert!(has(&s, "172.16.200.1"), "host bits of 172.16.5.9/16 are ignored");
        assert!(!has(&s, "172.17.0.0"));
        let empty = PrefixSet::build([]);
        assert!(empty.is_empty() && !has(&empty, "10.0.0.1") && !has(&empty, "::1"));
        let all = PrefixSet::build(["0.0.0.0/0"].map(p));
        assert!(has(&all, "255.255.255.255") && !has(&all, "::1"));
    }

    #[test]
    fn agrees_with_a_linear_scan() {
        // Deterministic pseudo-random prefixes and probes.
        let mut x = 0x1234_5678_9abc_def0u64;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        // A small set (scanned), one just past SMALL (moved to the array) and a big one.
        for n in [5, SMALL, SMALL + 1, 2000] {
            let prefixes: Vec<(u32, u8)> = (0..n).map(|_| (next() as u32, 8 + (next() % 25) as u8)).collect();
            let s = PrefixSet::build(prefixes.iter().map(|&(a, l)| (IpAddr::V4(Ipv4Addr::from(a)), l)));
            assert_eq!(s.len(), n);
            for i in 0..20_000 {
                // Half the probes near a prefix, so small sets are hit too.
                let a = match i % 2 {
                    0 => next() as u32,
                    _ => prefixes[i % n].0 ^ (next() as u32 & 0x1ff),
                };
                let scan = prefixes.iter().any(|&(p, l)| {
                    let m = u32::MAX << (32 - u32::from(l));
                    a & m == p & m
                });
                assert_eq!(s.contains_v4(Ipv4Addr::from(a)), scan, "n={n} {}", Ipv4Addr::from(a));
            }
        }
    }
}
