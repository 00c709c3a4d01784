//! Owned packet buffers.

use std::ptr::NonNull;

use crate::hint::prefetch_addr;
use crate::mempool::Mempool;

/// One packet buffer, owned: dropping it returns it to its pool.
///
/// rvs configures ports so a frame fits one segment; the data accessors see the first
/// segment only ([`Mbuf::is_contiguous`] tells whether that is the whole packet).
/// `Option<Mbuf>` has the size of a pointer.
#[repr(transparent)]
pub struct Mbuf {
    pub(crate) raw: NonNull<dpdk_sys::rte_mbuf>,
}

// SAFETY: an mbuf is owned by exactly one Mbuf value; moving it to another thread moves
// the ownership, and mbuf pools are thread-safe for the free on drop.
unsafe impl Send for Mbuf {}

impl Mbuf {
    /// Takes a buffer from `pool`; `None` when the pool is empty.
    #[inline]
    pub fn alloc(pool: &Mempool) -> Option<Mbuf> {
        // SAFETY: the pool is valid; a non-null result is a fresh mbuf we now own.
        let p = unsafe { dpdk_sys::rvs_pktmbuf_alloc(pool.as_ptr()) };
        NonNull::new(p).map(|raw| Mbuf { raw })
    }

    /// A buffer from `pool` holding a copy of `bytes`; `None` if the pool is empty or
    /// `bytes` does not fit.
    pub fn from_slice(pool: &Mempool, bytes: &[u8]) -> Option<Mbuf> {
        let mut m = Mbuf::alloc(pool)?;
        m.append(bytes.len())?.copy_from_slice(bytes);
        Some(m)
    }

    /// Takes ownership of a raw mbuf pointer.
    ///
    /// # Safety
    /// `raw` must be a valid mbuf that nobody else owns or frees.
    #[inline]
    pub unsafe fn from_raw(raw: NonNull<dpdk_sys::rte_mbuf>) -> Mbuf {
        Mbuf { raw }
    }

    /// Gives up ownership, returning the raw pointer.
    #[inline]
    pub fn into_raw(self) -> NonNull<dpdk_sys::rte_mbuf> {
        let raw = self.raw;
        std::mem::forget(self);
        raw
    }

    #[inline]
    fn m(&self) -> &dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf for our whole life.
        unsafe { self.raw.as_ref() }
    }

    #[inline]
    fn m_mut(&mut self) -> &mut dpdk_sys::rte_mbuf {
        // SAFETY: we own a valid mbuf exclusively for our whole life.
        unsafe { self.raw.as_mut() }
    }

    /// Asks the CPU to start loading this mbuf's header (its first cache line), as
    /// DPDK's `rte_prefetch0(m)`: a burst's headers then arrive together instead of one
    /// miss after another as each frame is read. A hint only.
    #[inline]
    pub fn prefetch_header(&self) {
        prefetch_addr(self.raw.as_ptr() as *const u8);
    }

    /// Asks the CPU to start loading the first cache line of packet data (where the
    /// headers are), as `rte_prefetch0(rte_pktmbuf_mtod(m))`. Reads the header: best
    /// after [`Mbuf::prefetch_header`] had time to land. A hint only.
    #[inline]
    pub fn prefetch_data(&self) {
        let m = self.m();
        prefetch_addr((m.buf_addr as *const u8).wrapping_add(m.data_off as usize));
    }

    /// Bytes of packet data in the first segment.
    #[inline]
    pub fn len(&self) -> usize {
        self.m().data_len as usize
    }

    /// True when the buffer holds no data.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes of the whole packet, all segments.
    #[inline]
    pub fn pkt_len(&self) -> usize {
        self.m().pkt_len as usize
    }

    /// True when the packet is one segment, so [`Mbuf::data`] is all of it.
    #[inline]
    pub fn is_contiguous(&self) -> bool {
        self.m().nb_segs == 1
    }

    /// Free bytes before the data.
    #[inline]
    pub fn headroom(&self) -> usize {
        self.m().data_off as usize
    }

    /// Free bytes after the data in the (single) segment.
    #[inline]
    pub fn tailroom(&self) -> usize {
        let m = self.m();
        m.buf_len as usize - m.data_off as usize - m.data_len as usize
    }

    /// The packet bytes (first segment).
    #[inline]
    pub fn data(&self) -> &[u8] {
        let m = self.m();
        // SAFETY: buf_addr + data_off .. + data_len lies inside the buffer DPDK gave us,
        // and we own it; the slice borrows self.
        unsafe { std::slice::from_raw_parts((m.buf_addr as *const u8).add(m.data_off as usize), m.data_len as usize) }
    }

    /// The packet bytes, writable.
    #[inline]
    pub fn data_mut(&mut self) -> &mut [u8] {
        let m = self.m();
        let (addr, off, len) = (m.buf_addr as *mut u8, m.data_off as usize, m.data_len as usize);
        // SAFETY: as in `data`, and the &mut self borrow makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(addr.add(off), len) }
    }

    /// Grows the data at the end by `n` bytes and returns them; `None` (unchanged) if
    /// the tailroom is too small.
    #[inline]
    pub fn append(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.tailroom() || !self.is_contiguous() {
            return None;
        }
        let old = self.len();
        let m = self.m_mut();
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        Some(&mut self.data_mut()[old..])
    }

    /// Grows the data at the front by `n` bytes and returns them; `None` (unchanged) if
    /// the headroom is too small.
    #[inline]
    pub fn prepend(&mut self, n: usize) -> Option<&mut [u8]> {
        if n > self.headroom() {
            return None;
        }
        let m = self.m_mut();
        m.data_off -= n as u16;
        m.data_len += n as u16;
        m.pkt_len += n as u32;
        Some(&mut self.data_mut()[..n])
    }

    /// Removes `n` bytes from the front; false (unchanged) if there are fewer.
    #[inline]
    pub fn adj(&mut self, n: usize) -> bool {
        if n > self.len() {
            return false;
        }
        let m = self.m_mut();
        m.data_off += n as u16;
        m.data_len -= n as u16;
        m.pkt_len -= n as u32;
        true
    }

    /// Removes `n` bytes from the end; false (unchanged) if there are fewer.
    #[inline]
    pub fn trim(&mut self, n: usize) -> bool {
        if n > self.len() || !self.is_contiguous() {
            return false;
        }
        let m = self.m_mut();
        m.data_len -= n as u16;
        m.pkt_len -= n as u32;
        true
    }

    /// The port the packet arrived on.
    #[inline]
    pub fn port(&self) -> u16 {
        self.m().port
    }

    /// Sets the port field (used by drivers and capture to tag a packet).
    #[inline]
    pub fn set_port(&mut self, port: u16) {
        self.m_mut().port = port;
    }

    /// DPDK's packet type flags (RTE_PTYPE_*), as set by the driver.
    #[inline]
    pub fn packet_type(&self) -> u32 {
        // SAFETY: reading a plain u32 view of the packet-type union.
        unsafe { self.m().__bindgen_anon_1.packet_type }
    }

    /// Offload flags (RTE_MBUF_F_*).
    #[inline]
    pub fn ol_flags(&self) -> u64 {
        self.m().ol_flags
    }

    /// Sets the offload flags (RTE_MBUF_F_TX_* on transmit).
    #[inline]
    pub fn set_ol_flags(&mut self, flags: u64) {
        self.m_mut().ol_flags = flags;
    }

    /// Sets the header lengths the NIC needs for checksum offloads.
    #[inline]
    pub fn set_tx_lens(&mut self, l2: u8, l3: u16, l4: u8) {
        // SAFETY: writing the bitfield view of the tx_offload union.
        let t = unsafe { &mut self.m_mut().__bindgen_anon_3.__bindgen_anon_1 };
        t.set_l2_len(l2 as u64);
        t.set_l3_len(l3 as u64);
        t.set_l4_len(l4 as u64);
    }

    /// The RSS hash the NIC computed (valid when RTE_MBUF_F_RX_RSS_HASH is set).
    #[inline]
    pub fn rss_hash(&self) -> u32 {
        // SAFETY: reading a plain u32 view of the hash union.
        unsafe { self.m().__bindgen_anon_2.hash.rss }
    }

    /// A copy of this packet in a new buffer from `pool` (for a tap copy or capture).
    pub fn copy_to(&self, pool: &Mempool) -> Option<Mbuf> {
        Mbuf::from_slice(pool, self.data())
    }
}

impl Drop for Mbuf {
    #[inline]
    fn drop(&mut self) {
        // SAFETY: we own the mbuf; it is freed exactly once here.
        unsafe { dpdk_sys::rvs_pktmbuf_free(self.raw.as_ptr()) }
    }
}

impl std::fmt::Debug for Mbuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mbuf").field("len", &self.len()).field("port", &self.port()).finish()
    }
}
