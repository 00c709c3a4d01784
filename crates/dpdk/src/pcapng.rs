//! pcapng through DPDK's own writer (`librte_pcapng`, what `dpdk-dumpcap` writes with):
//! [`copy`] formats a frame as an enhanced packet block in a fresh mbuf (with its port,
//! queue, direction and a TSC timestamp), on the thread that saw it; [`Writer`] writes
//! such copies to a file whose header names every DPDK port as an interface.

use std::ffi::CString;
use std::os::fd::IntoRawFd;
use std::ptr::NonNull;

use crate::{Burst, Error, Mbuf, Mempool, Result};

/// Which way a captured frame went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Received on the port.
    In,
    /// Sent on the port.
    Out,
}

/// A copy of `m` formatted for [`Writer::write`]: taken from `pool`, the frame whole,
/// recorded as seen on DPDK port `port_id`, `queue`, going `dir`, at TSC `tsc` (see
/// [`crate::tsc`]). `None` when the pool is empty.
#[inline]
pub fn copy(m: &Mbuf, port_id: u16, queue: u32, pool: &Mempool, dir: Direction, tsc: u64) -> Option<Mbuf> {
    let dir = match dir {
        Direction::In => dpdk_sys::RTE_PCAPNG_DIRECTION_IN,
        Direction::Out => dpdk_sys::RTE_PCAPNG_DIRECTION_OUT,
    };
    // SAFETY: `m` is a valid mbuf we only read, `pool` a live mempool; the returned mbuf
    // (if any) is a new one nobody else owns.
    let raw = unsafe { dpdk_sys::rte_pcapng_copy(port_id, queue, m.raw.as_ptr(), pool.as_ptr(), u32::MAX, tsc, dir) };
    // SAFETY: a fresh mbuf from rte_pcapng_copy, owned by the returned value alone.
    NonNull::new(raw).map(|r| unsafe { Mbuf::from_raw(r) })
}

/// A pcapng file being written by DPDK's writer; closed (with its file) on drop.
pub struct Writer {
    raw: NonNull<dpdk_sys::rte_pcapng_t>,
}

// SAFETY: the handle is owned by this value and used through `&mut self` only, so by one
// thread at a time; librte_pcapng keeps no thread-local state for it.
unsafe impl Send for Writer {}

impl Writer {
    /// Starts a pcapng file on `file` (taken over: closing the writer closes it): the
    /// section header naming `appname`, then one interface per DPDK port.
    pub fn new(file: std::fs::File, appname: &str) -> Result<Writer> {
        let app = CString::new(appname).map_err(|_| Error::invalid("rte_pcapng_fdopen", "NUL in the name"))?;
        let fd = file.into_raw_fd();
        // SAFETY: `fd` is an open file we own and hand over; the strings outlive the call
        // (the library copies them into the header it writes at once).
        let raw = unsafe {
            dpdk_sys::rte_pcapng_fdopen(fd, std::ptr::null(), std::ptr::null(), app.as_ptr(), std::ptr::null())
        };
        match NonNull::new(raw) {
            Some(raw) => Ok(Writer { raw }),
            None => {
                let e = Error::from_errno("rte_pcapng_fdopen");
                // SAFETY: the library did not take the descriptor; it is ours to close.
                unsafe { libc::close(fd) };
                Err(e)
            }
        }
    }

    /// Writes the copies in `b` (made by [`copy`]) and frees them; returns how many
    /// were written.
    pub fn write(&mut self, b: &mut Burst) -> Result<usize> {
        let n = b.len;
        if n == 0 {
            return Ok(0);
        }
        if !b.bufs[..n].iter().all(Option::is_some) {
            b.clear();
            return Err(Error::invalid("rte_pcapng_write_packets", "a burst with holes"));
        }
        // SAFETY: the first `n` slots hold valid mbufs (checked above), laid out as raw
        // mbuf pointers (`Option<Mbuf>` is a nullable pointer); the writer only reads them.
        let rc = unsafe { dpdk_sys::rte_pcapng_write_packets(self.raw.as_ptr(), b.raw_ptr(), n as u16) };
        b.clear();
        if rc < 0 {
            let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(libc::EIO);
            return Err(Error::from_code("rte_pcapng_write_packets", errno));
        }
        Ok(n)
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // SAFETY: opened by rte_pcapng_fdopen and closed once, here (this also closes
        // the file descriptor).
        unsafe { dpdk_sys::rte_pcapng_close(self.raw.as_ptr()) }
    }
}
