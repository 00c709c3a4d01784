//! Per-connection-slot state of a feature few services use (the SYN proxy, the PROXY
//! protocol, UOA), indexed like the connection pool but allocated for the whole pool
//! only once something needs it: a box whose services use none of them pays none of
//! their bytes per connection.
//!
//! The engine allocates an array where a service-table generation is bound (a
//! generation with a service of the feature) or where a peer's record carrying the
//! feature's state is installed, never while a packet is handled; a connection is
//! marked with the feature (a [`super::ConnFlags`] bit) only once its array exists, and
//! its slot is read only for connections so marked. Once allocated, an array stays.
//!
//! Where the services of the configuration rvsd starts with need a feature, its array
//! is allocated before any traffic (the first generation is bound at start). A
//! generation that brings the first service of a feature at run time costs the worker
//! the writing of the whole array, once: for the SYN proxy's 24 bytes a slot, 27 MB and
//! 10.8 ms for 1.125 million slots (`cargo bench -p fnat --bench conn`, "binding the
//! first SYN proxy service"), in which its receive queue fills. (A box started with no
//! TCP service, its services added later by rvsadm or the agent, has no traffic of
//! them to lose then.)

use std::ops::{Index, IndexMut};

/// One feature's state for every connection slot, allocated on demand (see the module
/// documentation).
#[derive(Debug)]
pub struct SlotArray<T> {
    slots: Vec<T>,
    capacity: u32,
}

impl<T: Clone + Default> SlotArray<T> {
    /// An array for slots `0..capacity`, not allocated yet.
    pub fn new(capacity: u32) -> SlotArray<T> {
        SlotArray { slots: Vec::new(), capacity }
    }

    /// Allocates every slot (each the default) unless it is allocated already.
    pub fn allocate(&mut self) {
        if self.slots.is_empty() {
            self.slots = vec![T::default(); self.capacity as usize];
        }
    }

    /// Its memory in bytes (0 until allocated).
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    /// Slot `idx`, if allocated.
    #[inline]
    pub fn get_mut(&mut self, idx: usize) -> Option<&mut T> {
        self.slots.get_mut(idx)
    }
}

impl<T> Index<usize> for SlotArray<T> {
    type Output = T;

    /// Slot `idx` of an allocated array (a connection marked with the feature).
    #[inline]
    fn index(&self, idx: usize) -> &T {
        &self.slots[idx]
    }
}

impl<T> IndexMut<usize> for SlotArray<T> {
    #[inline]
    fn index_mut(&mut self, idx: usize) -> &mut T {
        &mut self.slots[idx]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_until_allocated_then_every_slot() {
        let mut a: SlotArray<u64> = SlotArray::new(1000);
        assert_eq!(a.bytes(), 0);
        assert!(a.get_mut(0).is_none());
        a.allocate();
        a[999] = 7;
        a.allocate();
        assert_eq!((a[999], a.bytes()), (7, 8000));
    }
}
