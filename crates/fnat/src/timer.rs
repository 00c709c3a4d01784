//! A per-worker hashed timing wheel for connection expiry, lazy by design.
//!
//! Every packet pushes its connection's expiry (`Conn::expires`, a plain store); the
//! wheel is not touched then. An entry is filed in the slot of the expiry it had when
//! filed; when that slot comes due the owner checks the connection: if its `expires`
//! moved later it is re-filed (once per idle period at most), otherwise it is freed.
//! The wheel only has to be told when an expiry moves *earlier* than where the entry
//! is filed (a state change to a shorter timeout, e.g. ESTABLISHED → CLOSE), which is
//! a handful of times per connection: [`TimerWheel::reschedule`] is O(1) thanks to
//! doubly linked slot lists.
//!
//! Storage: two `u32` links per connection slot (8 B), indexed like the connection
//! pool, plus one `u32` head per wheel slot. No allocation after construction.
//!
//! Work is bounded: [`TimerWheel::pop_due`] takes a budget of steps (one per slot
//! advanced and one per entry handed out), so a worker that fell behind catches up
//! over several loop iterations instead of stalling.

use serde::{Deserialize, Serialize};

use crate::types::Millis;

const NIL: u32 = u32::MAX;
const HEAD: u32 = 1 << 31;

/// The wheel's geometry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WheelConfig {
    /// Width of one slot in milliseconds: expiry happens up to this late.
    pub resolution_ms: u32,
    /// Number of slots (rounded up to a power of two). `slots × resolution` is the
    /// horizon: an entry further away is re-filed once per turn of the wheel.
    pub slots: u32,
}

impl Default for WheelConfig {
    /// 32 ms × 32768 slots: a 1048 s horizon, above the 900 s ESTABLISHED timeout,
    /// with 128 KiB of slot heads.
    fn default() -> Self {
        WheelConfig { resolution_ms: 32, slots: 1 << 15 }
    }
}

/// A hashed timing wheel of connection slot indices (see the module documentation).
#[derive(Debug)]
pub struct TimerWheel {
    /// Slot list heads; the extra last head is the batch being drained.
    heads: Vec<u32>,
    next: Vec<u32>,
    /// `NIL` = not filed; `HEAD | slot` = first of that slot's list; else the previous.
    prev: Vec<u32>,
    res: u64,
    mask: u64,
    /// The next tick whose slot is to be detached.
    cursor: u64,
    filed: u32,
}

impl TimerWheel {
    /// Its memory in bytes (the slot heads and every entry's links).
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.heads) + std::mem::size_of_val(&*self.next) + std::mem::size_of_val(&*self.prev)
    }

    /// A wheel for entries `0..capacity`, starting at time `now`.
    pub fn new(capacity: u32, cfg: WheelConfig, now: Millis) -> TimerWheel {
        let slots = cfg.slots.clamp(2, 1 << 24).next_power_of_two();
        let res = cfg.resolution_ms.max(1) as u64;
        TimerWheel {
            heads: vec![NIL; slots as usize + 1],
            next: vec![NIL; capacity as usize],
            prev: vec![NIL; capacity as usize],
            res,
            mask: slots as u64 - 1,
            cursor: now / res + 1,
            filed: 0,
        }
    }

    #[inline]
    fn batch(&self) -> usize {
        self.heads.len() - 1
    }

    /// Entries currently filed (including those waiting in the batch being drained).
    #[inline]
    pub fn len(&self) -> u32 {
        self.filed
    }

    /// Whether nothing is filed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.filed == 0
    }

    /// Whether entry `idx` is filed.
    #[inline]
    pub fn is_scheduled(&self, idx: u32) -> bool {
        self.prev[idx as usize] != NIL
    }

    /// Files `idx` to come due at time `at` (rounded up to the slot width; an `at` in
    /// the past comes due at the next slot). `idx` must not be filed already.
    #[inline]
    pub fn schedule(&mut self, idx: u32, at: Millis) {
        debug_assert!(!self.is_scheduled(idx), "entry {idx} filed twice");
        let tick = at.div_ceil(self.res).max(self.cursor);
        let slot = (tick & self.mask) as usize;
        self.push(slot, idx);
    }

    #[inline]
    fn push(&mut self, slot: usize, idx: u32) {
        let old = self.heads[slot];
        self.next[idx as usize] = old;
        self.prev[idx as usize] = HEAD | slot as u32;
        if old != NIL {
            self.prev[old as usize] = idx;
        }
        self.heads[slot] = idx;
        self.filed += 1;
    }

    /// Removes `idx` from the wheel if it is filed.
    #[inline]
    pub fn cancel(&mut self, idx: u32) {
        let p = self.prev[idx as usize];
        if p == NIL {
            return;
        }
        let n = self.next[idx as usize];
        if p & HEAD != 0 {
            self.heads[(p & !HEAD) as usize] = n;
        } else {
            self.next[p as usize] = n;
        }
        if n != NIL {
            self.prev[n as usize] = p;
        }
        self.prev[idx as usize] = NIL;
        self.next[idx as usize] = NIL;
        self.filed -= 1;
    }

    /// Moves `idx` to come due at `at` (files it if it was not).
    #[inline]
    pub fn reschedule(&mut self, idx: u32, at: Millis) {
        self.cancel(idx);
        self.schedule(idx, at);
    }

    /// Hands out the next entry whose slot is due at `now`, removed from the wheel,
    /// or `None` when nothing more is due or `budget` is spent. Each slot advanced and
    /// each entry handed out costs one unit. The caller checks the entry's real expiry
    /// and [`schedule`](Self::schedule)s it again if it moved later.
    pub fn pop_due(&mut self, now: Millis, budget: &mut u32) -> Option<u32> {
        let batch = self.batch();
        loop {
            if *budget == 0 {
                return None;
            }
            let h = self.heads[batch];
            if h != NIL {
                *budget -= 1;
                self.cancel(h);
                return Some(h);
            }
            let now_tick = now / self.res;
            if self.cursor > now_tick {
                return None;
            }
            if self.filed == 0 {
                self.cursor = now_tick + 1;
                return None;
            }
            *budget -= 1;
            let slot = (self.cursor & self.mask) as usize;
            let first = self.heads[slot];
            if first != NIL {
                self.heads[slot] = NIL;
                self.heads[batch] = first;
                self.prev[first as usize] = HEAD | batch as u32;
            }
            self.cursor += 1;
        }
    }

    /// Forgets every entry (when the connection table is cleared).
    pub fn clear(&mut self) {
        self.heads.iter_mut().for_each(|h| *h = NIL);
        self.next.iter_mut().for_each(|h| *h = NIL);
        self.prev.iter_mut().for_each(|h| *h = NIL);
        self.filed = 0;
    }

    /// Bytes of per-entry link storage (8 per connection slot).
    pub fn bytes_per_entry(&self) -> usize {
        8
    }

    /// The slot width in milliseconds.
    pub fn resolution_ms(&self) -> u64 {
        self.res
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(w: &mut TimerWheel, now: Millis) -> Vec<u32> {
        let mut out = vec![];
        let mut b = u32::MAX;
        while let Some(i) = w.pop_due(now, &mut b) {
            out.push(i);
        }
        out.sort();
        out
    }

    /// Pops what is due, re-files entries whose deadline is later (the lazy rule) and
    /// returns those that really expired.
    fn run(w: &mut TimerWheel, now: Millis, deadline: &[Millis]) -> Vec<u32> {
        let mut out = vec![];
        let mut b = u32::MAX;
        while let Some(i) = w.pop_due(now, &mut b) {
            if deadline[i as usize] > now {
                w.schedule(i, deadline[i as usize]);
            } else {
                out.push(i);
            }
        }
        out.sort();
        out
    }

    #[test]
    fn due_in_order_never_early_never_much_late() {
        let cfg = WheelConfig { resolution_ms: 10, slots: 64 };
        let deadline = [0, 1_105, 1_200, 1_000 + 640 * 3 + 5];
        let mut w = TimerWheel::new(4, cfg, 1000);
        for i in 1..4 {
            w.schedule(i, deadline[i as usize]);
        }
        let mut fired = [0; 4];
        let mut now = 1000;
        while now < 4_000 {
            now += 1;
            for i in run(&mut w, now, &deadline) {
                assert!(now >= deadline[i as usize]);
                assert!(now < deadline[i as usize] + 10, "late: {i} at {now}");
                fired[i as usize] += 1;
            }
        }
        assert_eq!(fired, [0, 1, 1, 1]);
        assert!(w.is_empty());
    }

    #[test]
    fn cancel_and_reschedule_earlier() {
        let mut w = TimerWheel::new(4, WheelConfig::default(), 0);
        w.schedule(0, 900_000);
        w.schedule(1, 900_000);
        w.schedule(2, 900_000);
        w.cancel(1);
        w.cancel(1);
        assert_eq!(w.len(), 2);
        w.reschedule(2, 10_000);
        assert_eq!(drain(&mut w, 10_031), vec![2]);
        assert_eq!(drain(&mut w, 900_032), vec![0]);
        assert!(!w.is_scheduled(0));
    }

    #[test]
    fn budget_bounds_work_and_resumes() {
        let cfg = WheelConfig { resolution_ms: 1, slots: 1024 };
        let mut w = TimerWheel::new(100, cfg, 0);
        for i in 0..100 {
            w.schedule(i, 5);
        }
        let mut got = 0;
        let mut calls = 0;
        while got < 100 {
            let mut b = 8;
            while w.pop_due(10, &mut b).is_some() {
                got += 1;
            }
            calls += 1;
            assert!(calls < 100);
        }
        assert!(calls >= 12);
        assert!(w.is_empty());
    }

    #[test]
    fn cancel_while_in_batch() {
        let cfg = WheelConfig { resolution_ms: 1, slots: 16 };
        let mut w = TimerWheel::new(3, cfg, 0);
        w.schedule(0, 2);
        w.schedule(1, 2);
        let mut b = 10;
        let first = w.pop_due(3, &mut b).unwrap();
        let other = 1 - first;
        w.cancel(other);
        assert_eq!(w.pop_due(3, &mut b), None);
        assert!(w.is_empty());
    }
}
