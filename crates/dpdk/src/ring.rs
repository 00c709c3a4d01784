//! Rings of mbufs between lcores (`rte_ring`).

use std::ffi::CString;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::burst::{Burst, BURST_SIZE};
use crate::error::{Error, Result};

/// Who may enqueue and dequeue concurrently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingSync {
    /// One producer, one consumer: the cheapest; the per-worker redirect rings.
    SpSc,
    /// Many producers, many consumers.
    MpMc,
}

const RING_F_SP_ENQ: u32 = 1;
const RING_F_SC_DEQ: u32 = 2;

/// A ring carrying owned mbufs. Producer and consumer handles are taken from it; for a
/// single-producer/single-consumer ring each can be taken once, so the discipline is
/// enforced by construction.
pub struct MbufRing {
    raw: NonNull<dpdk_sys::rte_ring>,
    sync: RingSync,
    producer_taken: AtomicBool,
    consumer_taken: AtomicBool,
}

// SAFETY: rte_ring is designed for concurrent use by its producer(s) and consumer(s);
// the single-producer/consumer rule is enforced by handing out one handle each.
unsafe impl Send for MbufRing {}
// SAFETY: as above.
unsafe impl Sync for MbufRing {}

/// The enqueue side of a ring.
pub struct RingProducer {
    ring: Arc<MbufRing>,
}

/// The dequeue side of a ring.
pub struct RingConsumer {
    ring: Arc<MbufRing>,
}

impl MbufRing {
    /// Creates a ring of `count` slots (a power of two; one slot stays unused).
    pub fn new(name: &str, count: u32, sync: RingSync) -> Result<Arc<MbufRing>> {
        let op = || format!("rte_ring_create({name}, {count})");
        let c = CString::new(name).map_err(|_| Error::invalid(op(), "name contains NUL"))?;
        let flags = match sync {
            RingSync::SpSc => RING_F_SP_ENQ | RING_F_SC_DEQ,
            RingSync::MpMc => 0,
        };
        // SAFETY: valid C string and plain arguments.
        let p = unsafe { dpdk_sys::rte_ring_create(c.as_ptr(), count, -1, flags) };
        let raw = NonNull::new(p).ok_or_else(|| Error::from_errno(op()))?;
        Ok(Arc::new(MbufRing {
            raw,
            sync,
            producer_taken: AtomicBool::new(false),
            consumer_taken: AtomicBool::new(false),
        }))
    }

    /// The producer handle; `None` if this single-producer ring's was taken already.
    pub fn producer(self: &Arc<Self>) -> Option<RingProducer> {
        if self.sync == RingSync::SpSc && self.producer_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(RingProducer { ring: Arc::clone(self) })
    }

    /// The consumer handle; `None` if this single-consumer ring's was taken already.
    pub fn consumer(self: &Arc<Self>) -> Option<RingConsumer> {
        if self.sync == RingSync::SpSc && self.consumer_taken.swap(true, Ordering::AcqRel) {
            return None;
        }
        Some(RingConsumer { ring: Arc::clone(self) })
    }

    /// Entries in the ring.
    pub fn count(&self) -> u32 {
        // SAFETY: valid ring.
        unsafe { dpdk_sys::rvs_ring_count(self.raw.as_ptr()) }
    }

    /// Free slots.
    pub fn free_count(&self) -> u32 {
        // SAFETY: valid ring.
        unsafe { dpdk_sys::rvs_ring_free_count(self.raw.as_ptr()) }
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_ring {
        self.raw.as_ptr()
    }
}

impl RingProducer {
    /// Moves as many mbufs as fit from the front of `burst` into the ring; the rest
    /// stay in `burst`. Returns how many moved.
    #[inline]
    pub fn enqueue_burst(&mut self, burst: &mut Burst) -> usize {
        let n = burst.len();
        if n == 0 {
            return 0;
        }
        // SAFETY: `n` valid owned mbuf pointers; the ring takes ownership of the first
        // `sent`. This handle is the ring's only producer (or the ring is multi-producer).
        let sent =
            unsafe { dpdk_sys::rvs_ring_enqueue_burst(self.ring.as_ptr(), burst.raw_ptr() as *const *mut _, n as u32) }
                as usize;
        burst.consumed_front(sent);
        sent
    }
}

impl RingConsumer {
    /// Takes up to the burst's free room from the ring; returns how many arrived.
    #[inline]
    pub fn dequeue_burst(&mut self, burst: &mut Burst) -> usize {
        let len = burst.len;
        let room = BURST_SIZE - len;
        if room == 0 {
            return 0;
        }
        // SAFETY: `room` empty slots from `len`; the ring hands us ownership of what it
        // writes there. This handle is the ring's only consumer (or the ring is multi-consumer).
        let n = unsafe {
            dpdk_sys::rvs_ring_dequeue_burst(self.ring.as_ptr(), burst.raw_ptr().add(len) as *mut *mut _, room as u32)
        } as usize;
        burst.len += n;
        n
    }
}

impl Drop for MbufRing {
    fn drop(&mut self) {
        // No handle exists any more (each holds an Arc), so nobody else touches the ring:
        // free the mbufs still queued, then the ring.
        let mut b = Burst::new();
        loop {
            // SAFETY: the ring is valid and unused by anyone else; we take ownership of
            // what it hands out and free it.
            let n = unsafe {
                dpdk_sys::rvs_ring_dequeue_burst(self.raw.as_ptr(), b.raw_ptr() as *mut *mut _, BURST_SIZE as u32)
            } as usize;
            if n == 0 {
                break;
            }
            b.len = n;
            b.clear();
        }
        // SAFETY: the ring is empty and unused; freed once.
        unsafe { dpdk_sys::rte_ring_free(self.raw.as_ptr()) }
    }
}
