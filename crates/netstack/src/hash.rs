//! A fast, non-cryptographic hasher for the per-packet tables.
//!
//! The standard `RandomState` (SipHash-1-3) costs tens of nanoseconds per lookup, and a
//! route lookup may probe one map per prefix length. The keys of the tables that use
//! this hasher are addresses configured by the operator (routes, owned addresses), so
//! flooding resistance is not needed there. Tables keyed by addresses learned from the
//! network ([`crate::NeighTable`]) start the same hasher from a random seed per table
//! ([`SeededBuild`]), so no one can aim collisions at a table whose seed they do not
//! know, without SipHash's cost on the per-connection path.
//!
//! Words are mixed FxHash-style and the result is finalised with the 64-bit MurmurHash3
//! mixer, so that masked prefixes (whose low bits are all zero) still spread over the
//! low bits the hash table indexes with.

use core::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::collections::hash_map::RandomState;

/// The build-hasher of the per-packet maps.
pub(crate) type FastBuild = BuildHasherDefault<FastHasher>;

/// A HashMap with [`FastHasher`].
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, FastBuild>;

/// [`FastHasher`] from a random seed drawn once per table (clones keep it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct SeededBuild(u64);

impl SeededBuild {
    /// A seed from the process's randomness.
    pub(crate) fn random() -> SeededBuild {
        SeededBuild(RandomState::new().hash_one(0x5eed_u64))
    }
}

impl BuildHasher for SeededBuild {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher { h: self.0 }
    }
}

const K: u64 = 0x517c_c1b7_2722_0a95;

/// FxHash-style word mixing with a MurmurHash3 finaliser.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct FastHasher {
    h: u64,
}

impl FastHasher {
    #[inline]
    fn add(&mut self, w: u64) {
        self.h = (self.h.rotate_left(5) ^ w).wrapping_mul(K);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(i as u64);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.add(i as u64);
        self.add((i >> 64) as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        // MurmurHash3 fmix64.
        let mut h = self.h;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^= h >> 33;
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::hash::{BuildHasher, Hash};

    fn hash<T: Hash>(v: T) -> u64 {
        FastBuild::default().hash_one(v)
    }

    #[test]
    fn masked_prefixes_spread_over_low_bits() {
        // /24 prefixes 10.0.0.0, 10.0.1.0, ...: low 8 bits zero. Their hashes must not
        // collide in the low bits a table indexes with.
        let mut buckets = std::collections::HashSet::new();
        for i in 0u32..256 {
            buckets.insert(hash(0x0a00_0000u32 | (i << 8)) & 0x3ff);
        }
        assert!(buckets.len() > 200, "{} distinct buckets of 256", buckets.len());
    }

    #[test]
    fn byte_writes_are_deterministic_and_length_aware() {
        let mut a = FastHasher::default();
        a.write(&[1, 2, 3]);
        let mut b = FastHasher::default();
        b.write(&[1, 2, 3, 0]);
        assert_ne!(a.finish(), b.finish());
        assert_eq!(hash([1u8; 20]), hash([1u8; 20]));
    }
}
