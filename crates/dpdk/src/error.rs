//! Errors from DPDK calls, carrying the operation and rte_errno's text.

use std::ffi::CStr;

/// A failed DPDK call: what was attempted, the error number and DPDK's sentence for it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{op}: {msg} (errno {errno})")]
pub struct Error {
    /// The operation that failed, e.g. `rte_eth_dev_configure(port 0)`.
    pub op: String,
    /// The (positive) error number.
    pub errno: i32,
    /// `rte_strerror(errno)`.
    pub msg: String,
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// An error for `op` from a negative return code or a positive errno.
    pub fn from_code(op: impl Into<String>, code: i32) -> Error {
        let errno = code.abs();
        Error { op: op.into(), errno, msg: strerror(errno) }
    }

    /// An error for `op` from the calling thread's `rte_errno`.
    pub fn from_errno(op: impl Into<String>) -> Error {
        // SAFETY: reads a per-thread integer; always valid to call.
        let errno = unsafe { dpdk_sys::rvs_rte_errno() };
        Error::from_code(op, errno)
    }

    /// An error of our own (bad argument) that did not come from DPDK.
    pub fn invalid(op: impl Into<String>, msg: impl Into<String>) -> Error {
        Error { op: op.into(), errno: libc::EINVAL, msg: msg.into() }
    }
}

/// DPDK's text for an error number (it knows both libc's and its own).
pub fn strerror(errno: i32) -> String {
    // SAFETY: rte_strerror returns a pointer to a static or thread-local NUL-terminated
    // string that stays valid until the next call on this thread; we copy it at once.
    unsafe {
        let p = dpdk_sys::rte_strerror(errno);
        if p.is_null() {
            return format!("error {errno}");
        }
        CStr::from_ptr(p).to_string_lossy().into_owned()
    }
}

/// Turns a DPDK return code (negative errno on failure) into a Result.
pub(crate) fn check(op: impl FnOnce() -> String, rc: i32) -> Result<i32> {
    if rc < 0 {
        Err(Error::from_code(op(), rc))
    } else {
        Ok(rc)
    }
}
