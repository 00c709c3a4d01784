//! Intrusive first-in-first-out lists of connection slots, oldest first, sharing one
//! pair of links per slot.
//!
//! The engine keeps its half-open (`SYN_RECV`) connections on one list, so that when
//! a new SYN would take the worker over its `SYN_RECV` limit the oldest can be evicted
//! in O(1), and its unproven connections on another, evicted oldest first when the
//! pool is full (see `engine::tables`). A connection waits on one of them at a time
//! (half-open first, then unproven), so both lists thread through the same links,
//! which live beside the connection pool, indexed like it (8 bytes per slot, allocated
//! at construction): pushing, moving, removing any entry and popping the oldest are
//! O(1) and allocate nothing.

/// The null link.
const NIL: u32 = u32::MAX;
/// `prev` of a slot that is on no list.
const OFF: u32 = u32::MAX;
/// The low bits of `prev`: the previous (older) entry, or [`FIRST`].
const INDEX: u32 = (1 << 30) - 1;
/// `prev & INDEX` of a list's oldest entry (never a slot: slots are below
/// [`super::table::MAX_CAPACITY`]).
const FIRST: u32 = INDEX;
/// The bit of `prev` naming the list a slot is on.
const LIST_SHIFT: u32 = 30;

/// One of the lists a [`ConnLists`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum List {
    /// Connections in `SYN_RECV`.
    HalfOpen = 0,
    /// Connections no client has proven yet, past `SYN_RECV`.
    Unproven = 1,
}

/// The two lists' ends and lengths.
#[derive(Debug, Clone, Copy)]
struct Ends {
    head: u32,
    tail: u32,
    len: u32,
}

const EMPTY: Ends = Ends { head: NIL, tail: NIL, len: 0 };

/// Two doubly linked FIFOs of slot indices `0..capacity`, a slot on one of them at
/// most (see the module documentation).
#[derive(Debug, Clone)]
pub struct ConnLists {
    next: Vec<u32>,
    /// `OFF` = not listed; else the list (bit 30) and the previous entry or `FIRST`.
    prev: Vec<u32>,
    ends: [Ends; 2],
}

impl ConnLists {
    /// Empty lists for slots `0..capacity`.
    pub fn new(capacity: u32) -> ConnLists {
        ConnLists { next: vec![NIL; capacity as usize], prev: vec![OFF; capacity as usize], ends: [EMPTY; 2] }
    }

    /// Their memory in bytes (the links of every slot).
    pub fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.next) + std::mem::size_of_val(&*self.prev)
    }

    /// Entries on `list`.
    #[inline]
    pub fn len(&self, list: List) -> u32 {
        self.ends[list as usize].len
    }

    /// The list slot `idx` is on, if any.
    #[inline]
    pub fn list_of(&self, idx: u32) -> Option<List> {
        match self.prev.get(idx as usize) {
            None | Some(&OFF) => None,
            Some(p) if p >> LIST_SHIFT == 0 => Some(List::HalfOpen),
            Some(_) => Some(List::Unproven),
        }
    }

    /// Appends `idx` to `list` as its newest entry, taking it off the other list if it
    /// is there (nothing happens if it is on `list` already).
    #[inline]
    pub fn push_back(&mut self, list: List, idx: u32) {
        match self.list_of(idx) {
            Some(l) if l == list => return,
            Some(_) => self.remove(idx),
            None if idx as usize >= self.prev.len() => return,
            None => {}
        }
        let e = &mut self.ends[list as usize];
        let tag = (list as u32) << LIST_SHIFT;
        self.prev[idx as usize] = tag | if e.tail == NIL { FIRST } else { e.tail };
        self.next[idx as usize] = NIL;
        if e.tail == NIL {
            e.head = idx;
        } else {
            self.next[e.tail as usize] = idx;
        }
        e.tail = idx;
        e.len += 1;
    }

    /// Takes `idx` off the list it is on (nothing happens if it is on none).
    #[inline]
    pub fn remove(&mut self, idx: u32) {
        let Some(list) = self.list_of(idx) else { return };
        let word = self.prev[idx as usize];
        let p = word & INDEX;
        let n = self.next[idx as usize];
        let e = &mut self.ends[list as usize];
        if p == FIRST {
            e.head = n;
        } else {
            self.next[p as usize] = n;
        }
        if n == NIL {
            e.tail = if p == FIRST { NIL } else { p };
        } else {
            // The next entry takes this one's previous, with its own (the same) list.
            self.prev[n as usize] = word;
        }
        self.prev[idx as usize] = OFF;
        self.next[idx as usize] = NIL;
        e.len -= 1;
    }

    /// The oldest entry of `list`.
    #[inline]
    pub fn front(&self, list: List) -> Option<u32> {
        let h = self.ends[list as usize].head;
        (h != NIL).then_some(h)
    }

    /// The entry listed after `idx` on its list (the next younger one), if any.
    #[inline]
    pub fn after(&self, idx: u32) -> Option<u32> {
        self.list_of(idx)?;
        let n = self.next[idx as usize];
        (n != NIL).then_some(n)
    }

    /// Empties both lists (when the connection table is cleared).
    pub fn clear(&mut self) {
        self.next.iter_mut().for_each(|x| *x = NIL);
        self.prev.iter_mut().for_each(|x| *x = OFF);
        self.ends = [EMPTY; 2];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(f: &ConnLists, list: List) -> Vec<u32> {
        let mut out = vec![];
        let mut cur = f.front(list);
        while let Some(i) = cur {
            out.push(i);
            cur = f.after(i);
        }
        out
    }

    #[test]
    fn fifo_order_remove_anywhere() {
        use List::HalfOpen as H;
        let mut f = ConnLists::new(8);
        for i in [3, 1, 7, 0] {
            f.push_back(H, i);
        }
        f.push_back(H, 1);
        assert_eq!(items(&f, H), vec![3, 1, 7, 0]);
        assert_eq!(f.len(H), 4);
        f.remove(7);
        f.remove(7);
        assert_eq!(items(&f, H), vec![3, 1, 0]);
        f.remove(3);
        assert_eq!(f.front(H), Some(1));
        f.remove(0);
        f.push_back(H, 5);
        assert_eq!(items(&f, H), vec![1, 5]);
        f.remove(1);
        f.remove(5);
        assert!(f.len(H) == 0 && f.front(H).is_none());
        f.push_back(H, 2);
        f.push_back(H, 99);
        assert_eq!(items(&f, H), vec![2]);
        f.clear();
        assert!(f.list_of(2).is_none() && f.len(H) == 0);
    }

    #[test]
    fn two_lists_share_the_links_a_slot_on_one_at_a_time() {
        use List::{HalfOpen as H, Unproven as U};
        let mut f = ConnLists::new(8);
        for i in 0..4 {
            f.push_back(H, i);
        }
        for i in 4..8 {
            f.push_back(U, i);
        }
        assert_eq!((items(&f, H), items(&f, U)), (vec![0, 1, 2, 3], vec![4, 5, 6, 7]));
        // A half-open connection past SYN_RECV moves to the back of the other list.
        f.push_back(U, 1);
        f.push_back(U, 0);
        assert_eq!((items(&f, H), items(&f, U)), (vec![2, 3], vec![4, 5, 6, 7, 1, 0]));
        assert_eq!((f.len(H), f.len(U)), (2, 6));
        assert_eq!((f.list_of(0), f.list_of(2)), (Some(U), Some(H)));
        // Removing the oldest, the newest and one in the middle of each keeps both whole.
        for i in [4, 0, 7, 3] {
            f.remove(i);
        }
        assert_eq!((items(&f, H), items(&f, U)), (vec![2], vec![5, 6, 1]));
        f.push_back(H, 6);
        f.push_back(H, 5);
        assert_eq!((items(&f, H), items(&f, U)), (vec![2, 6, 5], vec![1]));
        f.remove(1);
        assert_eq!((f.front(U), f.len(U)), (None, 0));
        f.push_back(U, 3);
        assert_eq!((items(&f, H), items(&f, U)), (vec![2, 6, 5], vec![3]));
    }
}
