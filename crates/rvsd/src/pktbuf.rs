//! The core's buffer trait over DPDK mbufs: the load-balancing core rewrites packets in
//! place in the mbuf, growing into its headroom for TOA without copying the payload.

use dpdk::Mbuf;
use fnat::buf::{NoRoom, PacketBuf};

/// An mbuf slot of a burst seen as a [`PacketBuf`], so a whole burst can go through
/// the core at once (`Engine::process_burst`). An empty slot is an empty packet.
#[derive(Default)]
pub struct MbufSlot(pub Option<Mbuf>);

impl PacketBuf for MbufSlot {
    #[inline]
    fn data(&self) -> &[u8] {
        self.0.as_ref().map_or(&[], |m| m.data())
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
    fn truncate(&mut self, len: usize) {
        if let Some(m) = &mut self.0 {
            let extra = m.len().saturating_sub(len);
            m.trim(extra);
        }
    }

    #[inline]
    fn grow_back(&mut self, len: usize) -> Result<(), NoRoom> {
        self.0.as_mut().and_then(|m| m.append(len)).map(drop).ok_or(NoRoom)
    }
}
