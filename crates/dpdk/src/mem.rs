//! Memory advice for the large tables the workers keep outside DPDK's heap.

/// Asks the kernel to back `[addr, addr + len)` with transparent huge pages
/// (`madvise(MADV_HUGEPAGE)`; the system's THP mode `madvise`, Debian's default, honours
/// it): a connection pool of millions of entries then costs a few hundred TLB entries
/// instead of tens of thousands. Given before the pages are first touched, so that they
/// are faulted in as huge pages. Returns whether the kernel took the advice (a kernel
/// without THP refuses it; nothing else changes).
pub fn advise_huge_pages(addr: usize, len: usize) -> bool {
    const PAGE: usize = 4096;
    // madvise wants a page-aligned start: the whole pages inside the range.
    let start = addr.div_ceil(PAGE) * PAGE;
    let end = (addr + len) / PAGE * PAGE;
    if end <= start {
        return false;
    }
    // SAFETY: MADV_HUGEPAGE changes only how the kernel backs the pages of a mapping,
    // never their contents or their protection; the range lies inside an allocation
    // the caller owns (and madvise fails harmlessly on anything unmapped).
    unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advice_on_a_fresh_allocation_is_taken_or_refused_cleanly() {
        let v: Vec<u8> = Vec::with_capacity(8 << 20);
        // Taken where THP exists (this machine's mode is `madvise`); either way the
        // memory is untouched and usable.
        let thp = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled")
            .is_ok_and(|m| !m.contains("[never]"));
        assert_eq!(advise_huge_pages(v.as_ptr() as usize, v.capacity()), thp);
        assert!(!advise_huge_pages(v.as_ptr() as usize, 100), "less than a page");
        let mut v = v;
        v.resize(8 << 20, 7);
        assert!(v.iter().all(|&b| b == 7));
    }
}
