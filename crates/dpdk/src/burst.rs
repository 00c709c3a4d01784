//! Fixed-size arrays of owned mbufs: what rx_burst fills and tx_burst drains, without
//! allocating per packet.

use crate::mbuf::Mbuf;

/// The burst size rvs polls and transmits with.
pub const BURST_SIZE: usize = 32;

/// Up to [`BURST_SIZE`] owned mbufs. Dropping it frees what it still holds.
pub struct Burst {
    pub(crate) bufs: [Option<Mbuf>; BURST_SIZE],
    pub(crate) len: usize,
}

impl Default for Burst {
    fn default() -> Self {
        Burst::new()
    }
}

impl Burst {
    /// An empty burst.
    pub fn new() -> Burst {
        Burst { bufs: std::array::from_fn(|_| None), len: 0 }
    }

    /// Mbufs held.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds nothing.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when no more fit.
    #[inline]
    pub fn is_full(&self) -> bool {
        self.len == BURST_SIZE
    }

    /// Adds an mbuf; gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) -> Result<(), Mbuf> {
        if self.len == BURST_SIZE {
            return Err(m);
        }
        self.bufs[self.len] = Some(m);
        self.len += 1;
        Ok(())
    }

    /// The held mbufs.
    #[inline]
    pub fn as_mut_slice(&mut self) -> &mut [Option<Mbuf>] {
        &mut self.bufs[..self.len]
    }

    /// Prefetches the header of the mbuf at `i`, if one is held there (see
    /// [`Mbuf::prefetch_header`]).
    #[inline]
    pub fn prefetch_header(&self, i: usize) {
        if let Some(Some(m)) = self.bufs[..self.len].get(i) {
            m.prefetch_header();
        }
    }

    /// Prefetches the data of the mbuf at `i`, if one is held there (see
    /// [`Mbuf::prefetch_data`]).
    #[inline]
    pub fn prefetch_data(&self, i: usize) {
        if let Some(Some(m)) = self.bufs[..self.len].get(i) {
            m.prefetch_data();
        }
    }

    /// Takes every mbuf out, in order, leaving the burst empty.
    #[inline]
    pub fn drain(&mut self) -> impl Iterator<Item = Mbuf> + '_ {
        let n = std::mem::replace(&mut self.len, 0);
        self.bufs[..n].iter_mut().filter_map(Option::take)
    }

    /// Takes the mbuf at `i` out, leaving its slot empty (`None` if already taken or
    /// past the end). With [`Burst::forget_taken`], lets a caller hand each mbuf to code
    /// that needs `&mut` access to whatever holds the burst, without moving the burst.
    #[inline]
    pub fn take(&mut self, i: usize) -> Option<Mbuf> {
        if i < self.len {
            self.bufs[i].take()
        } else {
            None
        }
    }

    /// Marks the burst empty after every mbuf was [`Burst::take`]n; any left are freed.
    #[inline]
    pub fn forget_taken(&mut self) {
        for slot in &mut self.bufs[..self.len] {
            drop(slot.take());
        }
        self.len = 0;
    }

    /// Keeps the first `n` mbufs and frees the rest.
    #[inline]
    pub fn truncate(&mut self, n: usize) {
        if n < self.len {
            for slot in &mut self.bufs[n..self.len] {
                drop(slot.take());
            }
            self.len = n;
        }
    }

    /// Frees everything held.
    #[inline]
    pub fn clear(&mut self) {
        self.drain().for_each(drop);
    }

    /// The raw pointer array for an FFI call that fills or drains it.
    #[inline]
    pub(crate) fn raw_ptr(&mut self) -> *mut *mut dpdk_sys::rte_mbuf {
        // Option<Mbuf> is a nullable pointer (Mbuf is repr(transparent) over NonNull).
        self.bufs.as_mut_ptr() as *mut *mut dpdk_sys::rte_mbuf
    }

    /// Drops the first `sent` entries' ownership (the callee took them) and moves the
    /// rest to the front.
    #[inline]
    pub(crate) fn consumed_front(&mut self, sent: usize) {
        for slot in &mut self.bufs[..sent] {
            if let Some(m) = slot.take() {
                // The callee owns these now: forget without freeing.
                let _ = m.into_raw();
            }
        }
        self.bufs[..self.len].rotate_left(sent);
        self.len -= sent;
    }
}

/// A per-queue transmit buffer: packets are pushed one by one and sent in bursts.
/// Packets the NIC does not take at flush time are freed and counted as dropped.
pub struct TxBuffer {
    port: u16,
    queue: u16,
    burst: Burst,
    /// Packets the NIC accepted.
    pub sent: u64,
    /// Packets freed because the NIC queue was full.
    pub dropped: u64,
}

impl TxBuffer {
    /// A buffer for `queue` of `port`. The queue must be set up (see [`crate::Port`]) and
    /// used by this buffer's thread only.
    pub fn new(port: u16, queue: u16) -> TxBuffer {
        TxBuffer { port, queue, burst: Burst::new(), sent: 0, dropped: 0 }
    }

    /// The port this buffer sends on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The queue it sends on.
    pub fn queue(&self) -> u16 {
        self.queue
    }

    /// Packets waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.burst.len()
    }

    /// Queues `m`; sends the buffer first if it is full.
    #[inline]
    pub fn push(&mut self, m: Mbuf) {
        if self.burst.is_full() {
            self.flush();
        }
        // Cannot fail: the burst was just flushed if it was full.
        if let Err(m) = self.burst.push(m) {
            drop(m);
            self.dropped += 1;
        }
    }

    /// Sends everything queued; returns how many packets the NIC took.
    #[inline]
    pub fn flush(&mut self) -> usize {
        if self.burst.is_empty() {
            return 0;
        }
        let n = self.burst.len();
        // SAFETY: the pointer array holds `n` valid owned mbufs; tx_burst takes ownership
        // of the first `sent` of them. The queue is this buffer's alone.
        let sent =
            unsafe { dpdk_sys::rvs_eth_tx_burst(self.port, self.queue, self.burst.raw_ptr(), n as u16) } as usize;
        self.burst.consumed_front(sent);
        self.sent += sent as u64;
        let left = self.burst.len();
        self.dropped += left as u64;
        self.burst.clear();
        sent
    }
}

impl TxBuffer {
    /// Calls the driver's transmit with nothing queued. Bonds in 802.3ad mode send
    /// their LACPDUs from inside transmit calls, so an idle port must still be polled
    /// (DPDK asks for at least every 100 ms).
    #[inline]
    pub fn poll(&mut self) {
        if self.burst.is_empty() {
            // SAFETY: a zero-length burst; the driver reads no pointer.
            unsafe { dpdk_sys::rvs_eth_tx_burst(self.port, self.queue, self.burst.raw_ptr(), 0) };
        } else {
            self.flush();
        }
    }
}

impl Drop for TxBuffer {
    fn drop(&mut self) {
        self.burst.clear();
    }
}
