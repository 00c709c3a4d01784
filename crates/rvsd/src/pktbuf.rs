//! The core's buffer trait over DPDK mbufs: the load-balancing core rewrites packets in
//! place in the mbuf, growing into its headroom for TOA without copying the payload.

use dpdk::sys::{
    RTE_MBUF_F_RX_IP_CKSUM_BAD, RTE_MBUF_F_RX_IP_CKSUM_GOOD, RTE_MBUF_F_RX_IP_CKSUM_MASK, RTE_MBUF_F_RX_L4_CKSUM_BAD,
    RTE_MBUF_F_RX_L4_CKSUM_GOOD, RTE_MBUF_F_RX_L4_CKSUM_MASK,
};
use dpdk::Mbuf;
use fnat::buf::{Checked, NoRoom, PacketBuf, RxChecksums};

/// The NIC's verdict in `ol_flags` under `mask`: good, bad, or unknown (not checked,
/// or DPDK's "NONE": the checksum is not in the packet as received).
#[inline]
fn verdict(flags: u64, mask: u32, good: u32, bad: u32) -> Checked {
    let v = flags & mask as u64;
    if v == good as u64 {
        Checked::Good
    } else if v == bad as u64 {
        Checked::Bad
    } else {
        Checked::Unknown
    }
}

/// An mbuf slot of a burst seen as a [`PacketBuf`], so a whole burst can go through
/// the core at once (`Engine::process_burst`). An empty slot is an empty packet.
#[derive(Default)]
pub struct MbufSlot(pub Option<Mbuf>);

impl PacketBuf for MbufSlot {
    /// The worker sets it on every IP frame (a VLAN's frame: the sub-interface).
    #[inline]
    fn in_port(&self) -> Option<u16> {
        self.0.as_ref().map(|m| m.port())
    }

    #[inline]
    fn data(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], |m| m.data())
    }

    #[inline(always)]
    fn prefetch<T>(r: &T) {
        dpdk::prefetch(r);
    }

    #[inline]
    fn data_mut(&mut self) -> &mut [u8] {
        match &mut self.0 {
            Some(m) => m.data_mut(),
            None => &mut [],
        }
    }

    #[inline]
    fn headroom(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.headroom())
    }

    #[inline]
    fn tailroom(&self) -> usize {
        self.0.as_ref().map_or(0, |m| m.tailroom())
    }

    #[inline]
    fn grow_front(&mut self, len: usize) -> Result<(), NoRoom> {
        self.0.as_mut().and_then(|m| m.prepend(len)).map(drop).ok_or(NoRoom)
    }

    #[inline]
    fn shrink_front(&mut self, len: usize) -> Result<(), NoRoom> {
        match self.0.as_mut().is_some_and(|m| m.adj(len)) {
            true => Ok(()),
            false => Err(NoRoom),
        }
    }

    #[inline]
    fn truncate(&mut self, len: usize) {
        if let Some(m) = &mut self.0 {
            let extra = m.len().saturating_sub(len);
            m.trim(extra);
        }
    }

    /// DPDK's receive checksum flags, where the driver sets them (the port's receive
    /// checksum offload); drivers that do not check leave them "unknown".
    #[inline]
    fn rx_checksums(&self) -> RxChecksums {
        let Some(m) = &self.0 else { return RxChecksums::UNKNOWN };
        let f = m.ol_flags();
        RxChecksums {
            ip: verdict(f, RTE_MBUF_F_RX_IP_CKSUM_MASK, RTE_MBUF_F_RX_IP_CKSUM_GOOD, RTE_MBUF_F_RX_IP_CKSUM_BAD),
            l4: verdict(f, RTE_MBUF_F_RX_L4_CKSUM_MASK, RTE_MBUF_F_RX_L4_CKSUM_GOOD, RTE_MBUF_F_RX_L4_CKSUM_BAD),
        }
    }

    #[inline]
    fn grow_back(&mut self, len: usize) -> Result<(), NoRoom> {
        self.0.as_mut().and_then(|m| m.append(len)).map(drop).ok_or(NoRoom)
    }
}
