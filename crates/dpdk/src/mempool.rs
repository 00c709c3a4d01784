//! Packet buffer pools.

use std::ffi::CString;
use std::ptr::NonNull;

use crate::error::{Error, Result};

/// A pool of packet buffers (`rte_pktmbuf_pool_create`). Freed on drop only when every
/// buffer is back; otherwise it is left allocated (logged), since outstanding [`crate::Mbuf`]s
/// still point into it.
pub struct Mempool {
    raw: NonNull<dpdk_sys::rte_mempool>,
    size: u32,
}

// SAFETY: a DPDK mempool is a thread-safe object (lock-free ring + per-lcore caches).
unsafe impl Send for Mempool {}
// SAFETY: as above; all operations through &Mempool are thread-safe in DPDK.
unsafe impl Sync for Mempool {}

impl Mempool {
    /// Creates a pool of `n` buffers of `data_room` bytes (headroom included; DPDK's
    /// default is 2176), with a per-lcore cache of `cache` buffers, on NUMA `socket`
    /// (-1 for any).
    pub fn new(name: &str, n: u32, cache: u32, data_room: u16, socket: i32) -> Result<Mempool> {
        let op = || format!("rte_pktmbuf_pool_create({name}, n={n})");
        let c = CString::new(name).map_err(|_| Error::invalid(op(), "name contains NUL"))?;
        // SAFETY: valid C string; other arguments are plain integers.
        let p = unsafe { dpdk_sys::rte_pktmbuf_pool_create(c.as_ptr(), n, cache, 0, data_room, socket) };
        let raw = NonNull::new(p).ok_or_else(|| Error::from_errno(op()))?;
        Ok(Mempool { raw, size: n })
    }

    /// Buffers the pool was created with.
    pub fn size(&self) -> u32 {
        self.size
    }

    /// Buffers currently free (in the ring and the lcore caches).
    pub fn avail(&self) -> u32 {
        // SAFETY: the pool is valid for self's life.
        unsafe { dpdk_sys::rvs_mempool_avail_count(self.raw.as_ptr()) }
    }

    /// Buffers currently handed out.
    pub fn in_use(&self) -> u32 {
        self.size - self.avail()
    }

    pub(crate) fn as_ptr(&self) -> *mut dpdk_sys::rte_mempool {
        self.raw.as_ptr()
    }
}

impl Drop for Mempool {
    fn drop(&mut self) {
        if self.in_use() != 0 {
            tracing::warn!(in_use = self.in_use(), "mempool dropped with buffers outstanding; left allocated");
            return;
        }
        // SAFETY: no buffer of this pool is outstanding, and no port uses it any more
        // (ports are stopped before pools go out of scope).
        unsafe { dpdk_sys::rte_mempool_free(self.raw.as_ptr()) }
    }
}
