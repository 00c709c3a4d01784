//! An intrusive first-in-first-out list of connection slots, oldest first.
//!
//! The engine keeps its half-open (`SYN_RECV`) connections on one, so that when a new
//! SYN would take the worker over its `SYN_RECV` limit the oldest can be evicted in
//! O(1) (see [`crate::engine`]). The links live beside the connection pool, indexed
//! like it (8 bytes per slot, allocated at construction): pushing, removing any entry
//! and popping the oldest are O(1) and allocate nothing.

const NIL: u32 = u32::MAX;
/// `prev` of a slot that is not on the list.
const OFF: u32 = u32::MAX - 1;

/// A doubly linked FIFO of slot indices `0..capacity` (see the module documentation).
#[derive(Debug, Clone)]
pub struct ConnFifo {
    next: Vec<u32>,
    /// `OFF` = not listed; `NIL` = the head; else the previous (older) entry.
    prev: Vec<u32>,
    head: u32,
    tail: u32,
    len: u32,
}

impl ConnFifo {
    /// An empty list for slots `0..capacity`.
    pub fn new(capacity: u32) -> ConnFifo {
        ConnFifo {
            next: vec![NIL; capacity as usize],
            prev: vec![OFF; capacity as usize],
            head: NIL,
            tail: NIL,
            len: 0,
        }
    }

    /// Its memory in bytes (the links of every slot).
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.next) + std::mem::size_of_val(&*self.prev)
    }

    /// Entries listed.
    #[inline]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether nothing is listed.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether slot `idx` is listed.
    #[inline]
    pub fn contains(&self, idx: u32) -> bool {
        self.prev.get(idx as usize).is_some_and(|p| *p != OFF)
    }

    /// Appends `idx` as the newest entry (nothing happens if it is listed already).
    #[inline]
    pub fn push_back(&mut self, idx: u32) {
        if idx as usize >= self.prev.len() || self.contains(idx) {
            return;
        }
        self.prev[idx as usize] = self.tail;
        self.next[idx as usize] = NIL;
        if self.tail == NIL {
            self.head = idx;
        } else {
            self.next[self.tail as usize] = idx;
        }
        self.tail = idx;
        self.len += 1;
    }

    /// Takes `idx` off the list (nothing happens if it is not listed).
    #[inline]
    pub fn remove(&mut self, idx: u32) {
        if !self.contains(idx) {
            return;
        }
        let (p, n) = (self.prev[idx as usize], self.next[idx as usize]);
        if p == NIL {
            self.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.prev[n as usize] = p;
        }
        self.prev[idx as usize] = OFF;
        self.next[idx as usize] = NIL;
        self.len -= 1;
    }

    /// The oldest entry.
    #[inline]
    pub fn front(&self) -> Option<u32> {
        (self.head != NIL).then_some(self.head)
    }

    /// The entry listed after `idx` (the next younger one), if any.
    #[inline]
    pub fn after(&self, idx: u32) -> Option<u32> {
        if !self.contains(idx) {
            return None;
        }
        let n = self.next[idx as usize];
        (n != NIL).then_some(n)
    }

    /// Empties the list (when the connection table is cleared).
    pub fn clear(&mut self) {
        self.next.iter_mut().for_each(|x| *x = NIL);
        self.prev.iter_mut().for_each(|x| *x = OFF);
        self.head = NIL;
        self.tail = NIL;
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(f: &ConnFifo) -> Vec<u32> {
        let mut out = vec![];
        let mut cur = f.front();
        while let Some(i) = cur {
            out.push(i);
            cur = f.after(i);
        }
        out
    }

    #[test]
    fn fifo_order_remove_anywhere() {
        let mut f = ConnFifo::new(8);
        for i in [3, 1, 7, 0] {
            f.push_back(i);
        }
        f.push_back(1);
        assert_eq!(items(&f), vec![3, 1, 7, 0]);
        assert_eq!(f.len(), 4);
        f.remove(7);
        f.remove(7);
        assert_eq!(items(&f), vec![3, 1, 0]);
        f.remove(3);
        assert_eq!(f.front(), Some(1));
        f.remove(0);
        f.push_back(5);
        assert_eq!(items(&f), vec![1, 5]);
        f.remove(1);
        f.remove(5);
        assert!(f.is_empty() && f.front().is_none());
        f.push_back(2);
        f.push_back(99);
        assert_eq!(items(&f), vec![2]);
        f.clear();
        assert!(!f.contains(2) && f.is_empty());
    }
}
