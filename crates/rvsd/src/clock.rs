//! Milliseconds of a monotonic clock read from the TSC: the time every worker's timers
//! and the control thread's neighbour ageing run on (no syscall per read).

/// A TSC-based millisecond clock started at creation. It is `Copy`: every thread gets
/// a copy with the same zero, so all agree on the time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    start: u64,
    cycles_per_ms: u64,
}

impl Default for Clock {
    fn default() -> Self {
        Clock::new()
    }
}

impl Clock {
    /// A clock whose zero is now (needs the EAL for the TSC frequency).
    pub fn new() -> Clock {
        let hz = dpdk::tsc_hz().max(1000);
        Clock { start: dpdk::tsc(), cycles_per_ms: hz / 1000 }
    }

    /// Milliseconds since the clock's zero.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        dpdk::tsc().wrapping_sub(self.start) / self.cycles_per_ms
    }
}
