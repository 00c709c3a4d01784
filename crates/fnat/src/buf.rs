//! The packet buffer the core works on.
//!
//! The translation code needs a contiguous view of the packet and, for TOA, a way to
//! make room inside it. [`PacketBuf`] is that much and no more, so it maps directly
//! onto a single-segment DPDK mbuf (data offset, headroom, tailroom:
//! `rte_pktmbuf_prepend` / `rte_pktmbuf_append`) and onto [`VecBuf`] in tests.

use thiserror::Error;

/// The buffer has neither the headroom nor the tailroom to insert the bytes asked for
/// (or the insertion point is past the end of the data). The data is left unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
#[error("no room in the packet buffer")]
pub struct NoRoom;

/// What the NIC already found of a received packet's checksums, when it checked them
/// (DPDK's `RTE_MBUF_F_RX_*_CKSUM_*` flags). `Unknown` means "not checked": the core
/// then checks in software where it must ([`crate::sanity`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Checked {
    /// Not checked by the NIC (or the driver does not say).
    #[default]
    Unknown,
    /// The NIC found it correct.
    Good,
    /// The NIC found it wrong.
    Bad,
}

/// The receive-side checksum verdicts of a packet: the IPv4 header's and the
/// transport's (TCP/UDP).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct RxChecksums {
    /// The IPv4 header checksum.
    pub ip: Checked,
    /// The TCP or UDP checksum.
    pub l4: Checked,
}

impl RxChecksums {
    /// Nothing known: everything is checked in software.
    pub const UNKNOWN: RxChecksums = RxChecksums { ip: Checked::Unknown, l4: Checked::Unknown };
}

/// A contiguous packet buffer with room before and after the data.
///
/// Implementors provide access to the data and two primitives that grow it at either
/// end; [`PacketBuf::insert_gap`] is built on them.
pub trait PacketBuf {
    /// The packet bytes.
    fn data(&self) -> &[u8];

    /// The packet bytes, mutable.
    fn data_mut(&mut self) -> &mut [u8];

    /// How many bytes the data can grow by at the front.
    fn headroom(&self) -> usize;

    /// How many bytes the data can grow by at the back.
    fn tailroom(&self) -> usize;

    /// Moves the start of the data `len` bytes back into the headroom (the new bytes'
    /// content is unspecified). Fails without change if the headroom is too small.
    fn grow_front(&mut self, len: usize) -> Result<(), NoRoom>;

    /// Extends the data by `len` bytes into the tailroom (the new bytes' content is
    /// unspecified). Fails without change if the tailroom is too small.
    fn grow_back(&mut self, len: usize) -> Result<(), NoRoom>;

    /// Shortens the data to its first `len` bytes (nothing happens if it is not longer).
    fn truncate(&mut self, len: usize);

    /// Drops the first `len` bytes of the data (they go back to the headroom). Fails
    /// without change if the data is shorter.
    fn shrink_front(&mut self, len: usize) -> Result<(), NoRoom>;

    /// What the NIC found of the checksums on receive (nothing, by default: buffers
    /// that do not come from a NIC, and drivers that do not check, answer
    /// [`RxChecksums::UNKNOWN`]).
    fn rx_checksums(&self) -> RxChecksums {
        RxChecksums::UNKNOWN
    }

    /// The port (index) the packet arrived on, where the buffer knows it (an mbuf
    /// does; a test buffer when told: [`VecBuf::set_in_port`]). SNAT's `iif` match
    /// reads it.
    fn in_port(&self) -> Option<u16> {
        None
    }

    /// A hint that `r` will be read soon: the platform's prefetch where it has one
    /// (rvsd's mbufs: DPDK's `rte_prefetch0`), nothing by default. The core stays free
    /// of the platform's `unsafe`; the buffers that come from it bring its hint. The
    /// connection lookup asks it for the buckets of a burst's keys
    /// ([`ConnTable::lookup_burst`](crate::conn::ConnTable::lookup_burst)).
    #[inline(always)]
    fn prefetch<T>(_r: &T)
    where
        Self: Sized,
    {
    }

    /// The length of the data.
    fn len(&self) -> usize {
        self.data().len()
    }

    /// Whether the data is empty.
    fn is_empty(&self) -> bool {
        self.data().is_empty()
    }

    /// Makes `len` new bytes at `offset` (from the start of the data), moving the
    /// shorter side: the bytes before `offset` move toward the headroom (the data start
    /// moves back) or the bytes after it move into the tailroom. If the shorter side
    /// has no room, the other side is tried. Offsets below `offset` are unchanged
    /// either way; bytes at or after it move `len` further. The new bytes' content is
    /// unspecified. Fails without change ([`NoRoom`]) if neither side has room or
    /// `offset` is past the end.
    fn insert_gap(&mut self, offset: usize, len: usize) -> Result<(), NoRoom> {
        let total = self.len();
        if offset > total {
            return Err(NoRoom);
        }
        if len == 0 {
            return Ok(());
        }
        let front_first = offset <= total - offset;
        let use_front = if front_first { self.headroom() >= len } else { self.tailroom() < len };
        if use_front {
            self.grow_front(len)?;
            self.data_mut().copy_within(len..len + offset, 0);
        } else {
            self.grow_back(len)?;
            self.data_mut().copy_within(offset..total, offset + len);
        }
        Ok(())
    }

    /// Removes the `len` bytes at `offset` by moving the bytes before them forward (the
    /// data start moves on by `len`): offsets below `offset` keep naming the same
    /// bytes. Fails without change if the range runs past the end.
    fn remove_gap(&mut self, offset: usize, len: usize) -> Result<(), NoRoom> {
        if offset.checked_add(len).is_none_or(|end| end > self.len()) {
            return Err(NoRoom);
        }
        self.data_mut().copy_within(..offset, len);
        self.shrink_front(len)
    }
}

/// A `Vec<u8>`-backed [`PacketBuf`] with headroom and tailroom, like an mbuf: for
/// tests, benchmarks and tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VecBuf {
    storage: Vec<u8>,
    start: usize,
    end: usize,
    port: Option<u16>,
}

impl VecBuf {
    /// The default headroom (DPDK's `RTE_PKTMBUF_HEADROOM`).
    pub const DEFAULT_HEADROOM: usize = 128;
    /// The default tailroom.
    pub const DEFAULT_TAILROOM: usize = 128;

    /// A buffer holding a copy of `data` with the default headroom and tailroom.
    pub fn new(data: &[u8]) -> VecBuf {
        Self::with_room(data, Self::DEFAULT_HEADROOM, Self::DEFAULT_TAILROOM)
    }

    /// A buffer holding a copy of `data` with the given headroom and tailroom.
    pub fn with_room(data: &[u8], headroom: usize, tailroom: usize) -> VecBuf {
        let mut storage = vec![0u8; headroom + data.len() + tailroom];
        storage[headroom..headroom + data.len()].copy_from_slice(data);
        VecBuf { storage, start: headroom, end: headroom + data.len(), port: None }
    }

    /// Says which port the packet arrived on ([`PacketBuf::in_port`]).
    pub fn set_in_port(&mut self, port: u16) {
        self.port = Some(port);
    }

    /// A copy of the data.
    pub fn to_vec(&self) -> Vec<u8> {
        self.data().to_vec()
    }

    /// Where the data starts in the storage (to see which side an insertion moved).
    pub fn data_offset(&self) -> usize {
        self.start
    }
}

impl PacketBuf for VecBuf {
    fn in_port(&self) -> Option<u16> {
        self.port
    }

    fn data(&self) -> &[u8] {
        &self.storage[self.start..self.end]
    }

    fn data_mut(&mut self) -> &mut [u8] {
        &mut self.storage[self.start..self.end]
    }

    fn headroom(&self) -> usize {
        self.start
    }

    fn tailroom(&self) -> usize {
        self.storage.len() - self.end
    }

    fn truncate(&mut self, len: usize) {
        self.end = self.end.min(self.start + len);
    }

    fn grow_front(&mut self, len: usize) -> Result<(), NoRoom> {
        if len > self.start {
            return Err(NoRoom);
        }
        self.start -= len;
        Ok(())
    }

    fn shrink_front(&mut self, len: usize) -> Result<(), NoRoom> {
        if len > self.end - self.start {
            return Err(NoRoom);
        }
        self.start += len;
        Ok(())
    }

    fn grow_back(&mut self, len: usize) -> Result<(), NoRoom> {
        if len > self.tailroom() {
            return Err(NoRoom);
        }
        self.end += len;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filled(buf: &VecBuf, at: usize, len: usize) -> Vec<u8> {
        // The data with the gap's bytes replaced by 0xee, to compare deterministically.
        let mut v = buf.to_vec();
        v[at..at + len].fill(0xee);
        v
    }

    #[test]
    fn gap_near_the_front_moves_the_front() {
        let mut b = VecBuf::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        b.insert_gap(2, 3).unwrap();
        assert_eq!(filled(&b, 2, 3), [1, 2, 0xee, 0xee, 0xee, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(b.data_offset(), VecBuf::DEFAULT_HEADROOM - 3);
        assert_eq!(b.headroom(), 125);
        assert_eq!(b.tailroom(), 128);
    }

    #[test]
    fn gap_near_the_back_moves_the_back() {
        let mut b = VecBuf::new(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        b.insert_gap(8, 2).unwrap();
        assert_eq!(filled(&b, 8, 2), [1, 2, 3, 4, 5, 6, 7, 8, 0xee, 0xee, 9, 10]);
        assert_eq!(b.data_offset(), VecBuf::DEFAULT_HEADROOM);
        assert_eq!(b.tailroom(), 126);
        // At the very end: nothing moves, the data grows.
        b.insert_gap(12, 1).unwrap();
        assert_eq!(b.len(), 13);
    }

    #[test]
    fn falls_back_to_the_other_side() {
        let mut b = VecBuf::with_room(&[1, 2, 3, 4], 0, 8);
        b.insert_gap(1, 2).unwrap();
        assert_eq!(filled(&b, 1, 2), [1, 0xee, 0xee, 2, 3, 4]);
        let mut b = VecBuf::with_room(&[1, 2, 3, 4], 8, 0);
        b.insert_gap(3, 2).unwrap();
        assert_eq!(filled(&b, 3, 2), [1, 2, 3, 0xee, 0xee, 4]);
    }

    #[test]
    fn no_room_leaves_the_data_alone() {
        let mut b = VecBuf::with_room(&[1, 2, 3, 4], 1, 1);
        assert_eq!(b.insert_gap(2, 2), Err(NoRoom));
        assert_eq!(b.insert_gap(5, 1), Err(NoRoom));
        assert_eq!(b.to_vec(), [1, 2, 3, 4]);
        assert_eq!((b.headroom(), b.tailroom()), (1, 1));
        assert_eq!(b.insert_gap(4, 0), Ok(()));
        assert!(!b.is_empty());
    }
}
