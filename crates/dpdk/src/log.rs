//! DPDK's own log lines (`EAL: ...`, PMD messages) through the process's `tracing`
//! subscriber, so that they share its format (`--log-format json`), its level filter and
//! its destination instead of arriving on stderr as plain text between JSON lines.

use std::ffi::c_void;
use std::sync::Once;

use dpdk_sys as sys;

/// Hands DPDK's log stream to `tracing` (target `dpdk`), from now on, for the life of
/// the process. Call before [`crate::Eal::init`] to catch the EAL's own lines. Calling it
/// again does nothing.
pub fn to_tracing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let funcs = sys::cookie_io_functions_t { read: None, write: Some(write), seek: None, close: None };
        // SAFETY: fopencookie copies `funcs` and keeps the cookie pointer (null: `write`
        // does not read it); the mode string is a NUL-terminated literal.
        let stream = unsafe { sys::fopencookie(std::ptr::null_mut(), c"w".as_ptr(), funcs) };
        if stream.is_null() {
            tracing::warn!("DPDK's log stays on stderr: fopencookie failed");
            return;
        }
        // SAFETY: `stream` is a valid FILE* that lives for the rest of the process (it is
        // never closed); line buffering makes each DPDK message one `write` call.
        unsafe {
            sys::setvbuf(stream, std::ptr::null_mut(), sys::_IOLBF as i32, 4096);
            sys::rte_openlog_stream(stream);
        }
    });
}

/// The stream's write function: one DPDK message (a line, or several) per call.
unsafe extern "C" fn write(_cookie: *mut c_void, buf: *const std::ffi::c_char, size: usize) -> sys::__ssize_t {
    if buf.is_null() {
        return 0;
    }
    // SAFETY: stdio passes `size` readable bytes at `buf` for the duration of the call.
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), size) };
    // SAFETY: a plain getter of the current message's level (a per-thread variable).
    let level = unsafe { sys::rte_log_cur_msg_loglevel() };
    // Never unwind into C: a panicking subscriber loses the line, not the process.
    let _ = std::panic::catch_unwind(|| {
        for line in String::from_utf8_lossy(bytes).lines().filter(|l| !l.trim().is_empty()) {
            match level {
                ..=4 => tracing::error!(target: "dpdk", "{line}"),
                5 => tracing::warn!(target: "dpdk", "{line}"),
                6 | 7 => tracing::info!(target: "dpdk", "{line}"),
                _ => tracing::debug!(target: "dpdk", "{line}"),
            }
        }
    });
    size as sys::__ssize_t
}
