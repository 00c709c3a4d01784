//! A token bucket refilled from the worker loop's clock: the node's limits on what it
//! sends or hands on per second (ICMP errors, copies to other workers, frames to the
//! kernel twins), without reading a clock per frame.

/// A bucket of `per_sec` tokens a second, holding at most a burst's worth, counted in
/// thousandths of a token (a millisecond earns `per_sec` of them). `per_sec` 0: no
/// limit.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    milli: u64,
    last: u64,
    per_sec: u64,
    cap: u64,
}

impl Bucket {
    /// A full bucket of `burst` tokens earning `per_sec` a second.
    pub const fn new(per_sec: u64, burst: u64) -> Bucket {
        Bucket { milli: burst * 1000, last: 0, per_sec, cap: burst * 1000 }
    }

    /// Adds the tokens earned since the last refill (`now` in ms).
    #[inline]
    pub fn refill(&mut self, now: u64) {
        let earned = now.saturating_sub(self.last).saturating_mul(self.per_sec);
        self.milli = self.milli.saturating_add(earned).min(self.cap);
        self.last = now;
    }

    /// Takes one token if there is one (always, without a limit).
    #[inline]
    pub fn take(&mut self) -> bool {
        if self.per_sec == 0 {
            return true;
        }
        let ok = self.milli >= 1000;
        if ok {
            self.milli -= 1000;
        }
        ok
    }
}
