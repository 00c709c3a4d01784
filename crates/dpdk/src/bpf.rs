//! Packet filters in tcpdump's language, compiled as `dpdk-dumpcap` compiles them:
//! libpcap's `pcap_compile` over a dead Ethernet handle (`pcap_open_dead(DLT_EN10MB)`),
//! so every expression tcpdump accepts is accepted here with the same meaning. Frames
//! are judged by libpcap's own classic BPF interpreter (`bpf_filter`), which allocates
//! nothing and takes no lock.
//!
//! DPDK 22.11's eBPF route (`rte_bpf_convert` + `rte_bpf_load`, what `dpdk-dumpcap`
//! uses) is not taken: on Debian 12's DPDK the converted programs get `jset` wrong
//! (`tcp[tcpflags] & tcp-syn != 0` never matches, interpreted or JIT-compiled) and the
//! JIT crashes on some programs (`tcp[13] & 2 != 0`); the binding test
//! `bpf_filter_tcpdump_syntax_on_literal_frames` holds the expressions that showed it.

use std::ffi::{CStr, CString};
use std::ptr::NonNull;

use crate::Mbuf;

/// A filter expression libpcap refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("capture filter {expr:?}: libpcap: {msg}")]
pub struct FilterError {
    /// The expression.
    pub expr: String,
    /// libpcap's message (`pcap_geterr`).
    pub msg: String,
}

/// A compiled filter over Ethernet frames; freed on drop.
pub struct Filter {
    prog: dpdk_sys::bpf_program,
    expr: String,
}

// SAFETY: the compiled program is owned by this value and never written after
// `pcap_compile`; `bpf_filter` only reads it (and the frame), so it may be sent to and
// run from any thread.
unsafe impl Send for Filter {}
// SAFETY: as above: `matches` takes `&self` and never writes to the program.
unsafe impl Sync for Filter {}

impl std::fmt::Debug for Filter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Filter").field("expr", &self.expr).field("insns", &self.prog.bf_len).finish()
    }
}

/// Owns a `pcap_t` from `pcap_open_dead`; closed on drop.
struct DeadPcap(NonNull<dpdk_sys::pcap_t>);

impl Drop for DeadPcap {
    fn drop(&mut self) {
        // SAFETY: the handle came from pcap_open_dead and is closed once, here.
        unsafe { dpdk_sys::pcap_close(self.0.as_ptr()) }
    }
}

impl Filter {
    /// Compiles `expr` (tcpdump's filter language, optimised as tcpdump does; empty
    /// matches everything) for Ethernet frames of up to `snaplen` bytes. Needs no EAL.
    pub fn new(expr: &str, snaplen: u32) -> Result<Filter, FilterError> {
        let refuse = |msg: String| FilterError { expr: expr.to_owned(), msg };
        let cexpr = CString::new(expr).map_err(|_| refuse("the expression contains a NUL byte".into()))?;
        // SAFETY: plain constructor; returns NULL only when out of memory.
        let raw = unsafe { dpdk_sys::pcap_open_dead(dpdk_sys::DLT_EN10MB as i32, snaplen.min(i32::MAX as u32) as i32) };
        let pcap = DeadPcap(NonNull::new(raw).ok_or_else(|| refuse("pcap_open_dead: out of memory".into()))?);
        let mut prog = dpdk_sys::bpf_program::default();
        // SAFETY: `pcap` is a live handle, `prog` a writable program struct and `cexpr` a
        // NUL-terminated string that outlives the call.
        let rc = unsafe {
            dpdk_sys::pcap_compile(pcap.0.as_ptr(), &mut prog, cexpr.as_ptr(), 1, dpdk_sys::PCAP_NETMASK_UNKNOWN)
        };
        if rc != 0 {
            // SAFETY: pcap_geterr returns the handle's NUL-terminated message buffer,
            // valid while the handle lives (it does until the end of this function).
            let msg = unsafe { CStr::from_ptr(dpdk_sys::pcap_geterr(pcap.0.as_ptr())) }.to_string_lossy().into_owned();
            return Err(refuse(msg));
        }
        if prog.bf_insns.is_null() || prog.bf_len == 0 {
            return Err(refuse("pcap_compile produced no program".into()));
        }
        Ok(Filter { prog, expr: expr.to_owned() })
    }

    /// The expression it was compiled from.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// Whether an Ethernet frame matches, given its first `bytes` and its length on
    /// the wire (`wire_len`, at least `bytes.len()`): loads past `bytes` fail the match,
    /// as in libpcap.
    #[inline]
    pub fn matches_bytes(&self, bytes: &[u8], wire_len: usize) -> bool {
        let buflen = bytes.len().min(u32::MAX as usize) as u32;
        let wirelen = wire_len.max(bytes.len()).min(u32::MAX as usize) as u32;
        // SAFETY: `prog` is the program pcap_compile produced (validated by it); the
        // interpreter reads at most `buflen` bytes of `bytes`, which are that long.
        unsafe { dpdk_sys::bpf_filter(self.prog.bf_insns, bytes.as_ptr(), wirelen, buflen) != 0 }
    }

    /// Whether the frame in `m` matches (judged over its first segment, the whole
    /// frame for the single-segment mbufs rvs receives and sends).
    #[inline]
    pub fn matches(&self, m: &Mbuf) -> bool {
        self.matches_bytes(m.data(), m.pkt_len())
    }
}

impl Drop for Filter {
    fn drop(&mut self) {
        // SAFETY: `prog` was filled by pcap_compile and is freed once, here.
        unsafe { dpdk_sys::pcap_freecode(&mut self.prog) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An IPv4 TCP frame 10.0.0.1:40000 -> 10.0.0.2:`dport` with `flags`.
    fn tcp4(dport: u16, flags: u8) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1, 0x08, 0x00];
        f.extend_from_slice(&[0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        f.extend_from_slice(&[0x9c, 0x40, (dport >> 8) as u8, dport as u8, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags]);
        f.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
        f
    }

    #[test]
    fn libpcap_syntax_on_literal_frames() {
        let syn80 = tcp4(80, 0x02);
        let ack80 = tcp4(80, 0x10);
        let f = Filter::new("tcp[tcpflags] & tcp-syn != 0 and dst port 80", 65535).expect("compiles");
        assert!(f.matches_bytes(&syn80, syn80.len()));
        assert!(!f.matches_bytes(&ack80, ack80.len()));
        // Truncated: the flags byte is past what the filter may read.
        assert!(!f.matches_bytes(&syn80[..40], syn80.len()));
        let any = Filter::new("", 65535).expect("empty matches all");
        assert!(any.matches_bytes(&ack80, ack80.len()));
        let e = Filter::new("tcp port eighty", 65535).expect_err("refused");
        assert!(e.msg.contains("eighty"), "libpcap's message: {e}");
        assert!(Filter::new("tcp and", 65535).is_err());
    }
}
