//! CPU cache hints (DPDK's `rte_prefetch0`), for code that knows which lines it will read
//! next: a burst's mbufs, a lookup's buckets.

/// Starts loading the cache line holding `r` into every cache level, so that a read a
/// little later finds it there instead of waiting for memory. A hint only: it changes
/// nothing a program can observe, and is a no-op where the target has no such
/// instruction.
#[inline(always)]
pub fn prefetch<T>(r: &T) {
    prefetch_addr(r as *const T as *const u8);
}

/// [`prefetch`] of any address (it need not be valid: a prefetch never faults).
#[inline(always)]
pub(crate) fn prefetch_addr(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` never faults and changes no state a program can observe,
    // whatever the address; SSE, which it needs, is part of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p as *const i8)
    };
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
