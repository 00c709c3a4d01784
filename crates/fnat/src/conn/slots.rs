//! Per-connection-slot state of a feature few services use (the SYN proxy, the PROXY
//! protocol, UOA), indexed like the connection pool but allocated for the whole pool
//! only once something needs it: a box whose services use none of them pays none of
//! their bytes per connection.
//!
//! An array is allocated where a service-table generation with a service of the
//! feature is bound, or where a peer's record carrying the feature's state is
//! installed, never while a packet is handled; a connection is marked with the feature
//! (a [`super::ConnFlags`] bit) only once its array exists, and its slot is read only
//! for connections so marked. Once allocated, an array stays.
//!
//! Where the services of the configuration rvsd starts with need a feature, the worker
//! allocates its array before any traffic (the first generation is bound at start). A
//! generation that brings the first service of a feature at run time has its arrays
//! built by the control thread and handed over with it
//! ([`crate::engine::slot_state`]): writing the SYN proxy's (24 bytes a slot, 27 MB for
//! 1.125 million slots) takes ~15 ms, which the worker would spend with its receive
//! queue filling (`cargo bench -p fnat --bench conn`, "the first SYN proxy service").
//! Only a peer's record bringing a feature this box's services do not use makes the
//! worker allocate an array itself.

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

    /// Takes `built` (every slot, built off the worker: [`crate::engine::slot_state`])
    /// as its slots unless it is allocated already; what it did not take is returned,
    /// for the caller to drop where it likes.
    pub fn adopt(&mut self, built: Vec<T>) -> Option<Vec<T>> {
        if self.slots.is_empty() && built.len() == self.capacity as usize {
            self.slots = built;
            return None;
        }
        Some(built)
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
        assert_eq!(a.adopt(vec![1; 1000]).map(|v| v.len()), Some(1000), "allocated already: handed back");
        assert_eq!(a[999], 7);
    }

    #[test]
    fn adopts_an_array_of_every_slot_built_elsewhere() {
        let mut a: SlotArray<u64> = SlotArray::new(1000);
        assert!(a.adopt(vec![0; 999]).is_some(), "not every slot");
        assert_eq!(a.bytes(), 0);
        let built = vec![0; 1000];
        let at = built.as_ptr();
        assert!(a.adopt(built).is_none());
        a.allocate();
        assert_eq!((a.bytes(), a.slots.as_ptr()), (8000, at), "the array adopted, not a new one");
    }
}
