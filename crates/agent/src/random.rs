//! Random numbers where nothing needs them to be secret or reproducible (DNS query ids,
//! ping tokens, BFD discriminators, source ports and jitter, checker warm-up): the std
//! hasher's per-process random keys, without a `rand` dependency.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

/// A random number (a counter keeps two calls apart).
pub fn u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

/// A random fraction in `0..1`.
pub fn fraction() -> f64 {
    (u64() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    #[test]
    fn calls_differ_and_fractions_stay_below_one() {
        assert_ne!(super::u64(), super::u64());
        assert!((0..1000).map(|_| super::fraction()).all(|f| (0.0..1.0).contains(&f)));
    }
}
