//! Hashing for the tables the workers consult per packet or per connection: a
//! multiply-fold over the key's integers, a few nanoseconds where the standard
//! library's SipHash takes tens. [`Fold`] for keys the operator chose (services, real
//! server ids, prefixes); [`SeededFold`], seeded per table from the process's
//! randomness, for keys a client chooses (persistence templates), so no one can aim
//! collisions at a table whose seed they do not know.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// A multiply-fold hasher for integer keys.
#[derive(Default, Clone, Copy)]
pub struct FoldHasher(u64);

impl Hasher for FoldHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u8(&mut self, v: u8) {
        self.write_u64(u64::from(v));
    }

    fn write_u16(&mut self, v: u16) {
        self.write_u64(u64::from(v));
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        let m = u128::from(self.0 ^ v) * 0x9e37_79b9_7f4a_7c15u128;
        self.0 = (m as u64) ^ ((m >> 64) as u64);
    }

    fn write_u128(&mut self, v: u128) {
        self.write_u64(v as u64);
        self.write_u64((v >> 64) as u64);
    }

    fn write_usize(&mut self, v: usize) {
        self.write_u64(v as u64);
    }
}

/// [`FoldHasher`] from zero: for keys the operator chose.
pub type Fold = BuildHasherDefault<FoldHasher>;

/// [`FoldHasher`] from a random seed: for keys a client chooses.
#[derive(Debug, Clone, Copy)]
pub struct SeededFold(u64);

impl SeededFold {
    /// A seed from the process's randomness (a new one per table).
    pub fn random() -> SeededFold {
        SeededFold(RandomState::new().hash_one(0x5eed_u64))
    }

    /// From a given seed: where several tables (workers) must agree.
    pub fn with_seed(seed: u64) -> SeededFold {
        SeededFold(seed)
    }

    /// A random seed for [`SeededFold::with_seed`].
    pub fn random_seed() -> u64 {
        SeededFold::random().0
    }
}

impl Default for SeededFold {
    fn default() -> Self {
        SeededFold::random()
    }
}

impl BuildHasher for SeededFold {
    type Hasher = FoldHasher;
    fn build_hasher(&self) -> FoldHasher {
        FoldHasher(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::hash::Hash;

    fn hash(b: &impl BuildHasher, k: &impl Hash) -> u64 {
        b.hash_one(k)
    }

    #[test]
    fn seeds_differ_and_keys_spread() {
        let (a, b) = (SeededFold::random(), SeededFold::random());
        assert_ne!(hash(&a, &42u32), hash(&b, &42u32), "two tables, two seeds");
        let f = Fold::default();
        let mut seen: Vec<u64> = (0u32..1000).map(|i| hash(&f, &i) & 1023).collect();
        seen.sort_unstable();
        seen.dedup();
        assert!(seen.len() > 550, "1000 keys over 1024 buckets: {} distinct", seen.len());
    }
}
