//! Connection keys and the keyed hash that places them in the table.
//!
//! Addresses are stored as 16 bytes whatever the family (IPv4 as the IPv4-mapped IPv6
//! address `::ffff:a.b.c.d`), so one key type and one table serve both families and a
//! key compares as a few machine words. IPv4-mapped addresses never appear on the wire
//! (RFC 4291 §2.5.5.2); the engine drops IPv6 packets carrying them so they cannot alias
//! an IPv4 connection.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::types::Proto;

/// The first 12 bytes of an IPv4-mapped IPv6 address (`::ffff:0:0/96`).
const V4_MAPPED: [u8; 12] = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

/// An IPv4 or IPv6 address in 16 bytes (IPv4 as `::ffff:a.b.c.d`): compact, `Copy`, and
/// compared/hashed as two words, which is what the connection table needs per packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Addr(pub [u8; 16]);

impl Addr {
    /// The all-zero address (`::`), used for empty slots.
    pub const UNSPECIFIED: Addr = Addr([0; 16]);

    /// An IPv4 address, stored IPv4-mapped.
    #[inline]
    pub fn v4(a: [u8; 4]) -> Addr {
        let mut b = [0u8; 16];
        b[..12].copy_from_slice(&V4_MAPPED);
        b[12..].copy_from_slice(&a);
        Addr(b)
    }

    /// An IPv6 address.
    #[inline]
    pub fn v6(a: [u8; 16]) -> Addr {
        Addr(a)
    }

    /// Whether this holds an IPv4 address (the IPv4-mapped prefix).
    #[inline]
    pub fn is_v4(&self) -> bool {
        // Compared as bytes, not as a byte-swapped `u128`: a few instructions fewer on
        // every packet's four address reads.
        self.0[..12] == V4_MAPPED
    }

    /// The four IPv4 bytes, if this is an IPv4 address.
    #[inline]
    pub fn as_v4(&self) -> Option<[u8; 4]> {
        match self.is_v4() {
            true => Some([self.0[12], self.0[13], self.0[14], self.0[15]]),
            false => None,
        }
    }

    /// The standard-library form (IPv4 for mapped addresses).
    #[inline]
    pub fn ip(&self) -> IpAddr {
        match self.as_v4() {
            Some(a) => IpAddr::V4(Ipv4Addr::from(a)),
            None => IpAddr::V6(Ipv6Addr::from(self.0)),
        }
    }

    #[inline]
    fn words(&self) -> (u64, u64) {
        let mut hi = [0u8; 8];
        let mut lo = [0u8; 8];
        hi.copy_from_slice(&self.0[..8]);
        lo.copy_from_slice(&self.0[8..]);
        (u64::from_ne_bytes(hi), u64::from_ne_bytes(lo))
    }
}

impl From<IpAddr> for Addr {
    #[inline]
    fn from(ip: IpAddr) -> Addr {
        match ip {
            IpAddr::V4(a) => Addr::v4(a.octets()),
            IpAddr::V6(a) => Addr::v6(a.octets()),
        }
    }
}

impl From<Ipv4Addr> for Addr {
    #[inline]
    fn from(ip: Ipv4Addr) -> Addr {
        Addr::v4(ip.octets())
    }
}

impl From<Ipv6Addr> for Addr {
    #[inline]
    fn from(ip: Ipv6Addr) -> Addr {
        Addr::v6(ip.octets())
    }
}

impl From<Addr> for IpAddr {
    #[inline]
    fn from(a: Addr) -> IpAddr {
        a.ip()
    }
}

impl std::fmt::Display for Addr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.ip().fmt(f)
    }
}

/// The four-tuple plus protocol of a packet as seen on the wire: `(proto, src:sport,
/// dst:dport)`. A connection is indexed under two of these: inbound
/// `(proto, CIP:cport, VIP:vport)` and outbound `(proto, RIP:rport, LIP:lport)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ConnKey {
    /// Transport protocol.
    pub proto: Proto,
    /// Source address of the packet.
    pub src: Addr,
    /// Source port.
    pub sport: u16,
    /// Destination address of the packet.
    pub dst: Addr,
    /// Destination port.
    pub dport: u16,
}

impl ConnKey {
    /// A key from its parts.
    #[inline]
    pub fn new(proto: Proto, src: Addr, sport: u16, dst: Addr, dport: u16) -> ConnKey {
        ConnKey { proto, src, sport, dst, dport }
    }
}

/// The keyed hash of the connection table: a folded 64×64→128-bit multiply over the key
/// words (wyhash-style), three multiplies per key. The 256-bit seed is drawn at start-up
/// so remote clients cannot aim many keys at one bucket; SipHash would cost ~4× more per
/// packet for a strength the seeded multiply-fold does not need here.
#[derive(Debug, Clone, Copy)]
pub struct KeyHasher {
    seed: [u64; 4],
}

impl KeyHasher {
    /// A hasher with a random seed (from the standard library's per-process randomness).
    pub fn random() -> KeyHasher {
        let rs = RandomState::new();
        let mut seed = [0u64; 4];
        for (i, s) in seed.iter_mut().enumerate() {
            let mut h = rs.build_hasher();
            h.write_usize(i);
            *s = h.finish();
        }
        KeyHasher { seed }
    }

    /// A hasher with a fixed seed, for reproducible tests and benchmarks.
    pub fn with_seed(seed: u64) -> KeyHasher {
        let mut s = seed;
        let mut next = || {
            // splitmix64
            s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        KeyHasher { seed: [next(), next(), next(), next()] }
    }

    /// The 64-bit hash of a key.
    #[inline]
    pub fn hash(&self, k: &ConnKey) -> u64 {
        let (s0, s1) = k.src.words();
        let (d0, d1) = k.dst.words();
        let ports = (k.sport as u64) | ((k.dport as u64) << 16) | ((k.proto as u64) << 32);
        let a = fold(s0 ^ self.seed[0], s1 ^ self.seed[1]);
        let b = fold(d0 ^ self.seed[2], d1 ^ self.seed[3]);
        fold(a ^ ports ^ self.seed[1], b ^ 0x9e37_79b9_7f4a_7c15)
    }

    /// The 64-bit hash of one address (the table's shared addresses, see
    /// [`super::addrs`]).
    #[inline]
    pub fn hash_addr(&self, a: &Addr) -> u64 {
        let (w0, w1) = a.words();
        fold(w0 ^ self.seed[2], w1 ^ self.seed[3])
    }
}

#[inline(always)]
fn fold(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addr_round_trips_both_families() {
        let v4: IpAddr = "10.1.2.3".parse().unwrap();
        let v6: IpAddr = "2001:db8::7".parse().unwrap();
        assert_eq!(Addr::from(v4).ip(), v4);
        assert!(Addr::from(v4).is_v4());
        assert_eq!(Addr::from(v6).ip(), v6);
        assert!(!Addr::from(v6).is_v4());
        assert_eq!(Addr::from(v4).to_string(), "10.1.2.3");
    }

    #[test]
    fn hash_depends_on_every_field_and_seed() {
        let h = KeyHasher::with_seed(1);
        let k = ConnKey::new(Proto::Tcp, Addr::v4([1, 2, 3, 4]), 1000, Addr::v4([5, 6, 7, 8]), 80);
        let base = h.hash(&k);
        let mut variants = vec![k; 5];
        variants[0].proto = Proto::Udp;
        variants[1].src = Addr::v4([1, 2, 3, 5]);
        variants[2].sport = 1001;
        variants[3].dst = Addr::v4([5, 6, 7, 9]);
        variants[4].dport = 81;
        for v in variants {
            assert_ne!(h.hash(&v), base);
        }
        assert_ne!(KeyHasher::with_seed(2).hash(&k), base);
        assert_eq!(KeyHasher::with_seed(1).hash(&k), base);
    }
}
