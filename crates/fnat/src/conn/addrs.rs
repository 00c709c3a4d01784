//! The addresses a connection shares with many others (its VIP, LIP and RIP), held once
//! per table and named in the connection by a 16-bit slot.
//!
//! A connection's four addresses in full would take 64 of its bytes. Only the client's
//! address is its own (and its LIP, under NAT, DR and TUN, is the client's too: no
//! slot, `LIP_IS_CIP`); the other three come from a small set (the configured VIPs,
//! local addresses and real servers, or a sync peer's), so the table keeps each of them
//! once, counted by the live connections that name it, and a connection fits one cache
//! line (see [`super::Conn`]). The slots are allocated with the table (three per
//! connection of its capacity, at most [`MAX_ADDR_SLOTS`]): interning allocates nothing.
//! A slot whose count falls to 0 keeps its address (the next connection to the same VIP
//! finds it) until every slot has been used once; then the unreferenced ones are
//! reclaimed together. More than 65,535 distinct addresses held by live connections at
//! once cannot be named: the new connection is refused
//! ([`super::ConnError::AddrsFull`]).

use super::{Addr, KeyHasher};

/// The most slots a table has (slot 0 unused: it marks an empty index entry), so a
/// slot fits the connection's 16 bits.
pub const MAX_ADDR_SLOTS: usize = 1 << 16;

/// One table's interned addresses (see the module documentation).
#[derive(Debug)]
pub struct Addrs {
    /// The address of each slot.
    addrs: Box<[Addr]>,
    /// Live connections naming each slot (a connection names a slot once per role).
    refs: Box<[u32]>,
    /// Linear-probing index from an address's hash to its slot (0: empty), twice as
    /// many entries as slots (load factor at most one half).
    index: Box<[u16]>,
    /// Slots never used yet start here.
    fresh: u32,
    /// Slots named by at least one live connection.
    held: u32,
    /// Slots reclaimed by the last sweep (capacity reserved: pushing never allocates).
    free: Vec<u16>,
    hasher: KeyHasher,
}

impl Addrs {
    /// An empty table for a connection table of `capacity`: enough slots for three
    /// distinct addresses per connection, a power of two from 1,024 to
    /// [`MAX_ADDR_SLOTS`]; `hasher` places addresses in the index.
    pub fn new(capacity: u32, hasher: KeyHasher) -> Addrs {
        let slots = (3 * capacity as usize + 1).next_power_of_two().clamp(1 << 10, MAX_ADDR_SLOTS);
        Addrs {
            addrs: vec![Addr::UNSPECIFIED; slots].into_boxed_slice(),
            refs: vec![0; slots].into_boxed_slice(),
            index: vec![0; 2 * slots].into_boxed_slice(),
            fresh: 1,
            held: 0,
            free: Vec::with_capacity(slots),
            hasher,
        }
    }

    /// Bytes the table holds.
    pub fn bytes(&self) -> usize {
        self.addrs.len() * (std::mem::size_of::<Addr>() + 4 + 2) + self.index.len() * 2
    }

    /// The address in `slot` (`::` for a slot the table never gave).
    #[inline(always)]
    pub fn get(&self, slot: u16) -> Addr {
        self.addrs.get(slot as usize).copied().unwrap_or(Addr::UNSPECIFIED)
    }

    /// Live connections naming `slot`.
    pub fn refs(&self, slot: u16) -> u32 {
        self.refs.get(slot as usize).copied().unwrap_or(0)
    }

    /// Distinct addresses named by live connections.
    #[inline]
    pub fn live(&self) -> usize {
        self.held as usize
    }

    /// Distinct addresses the table can name at once.
    #[inline]
    pub fn slots(&self) -> usize {
        self.refs.len() - 1
    }

    /// Whether a live connection names `a`.
    pub fn holds(&self, a: &Addr) -> bool {
        matches!(self.find(a), Ok(s) if self.refs[s as usize] > 0)
    }

    /// Where `a` is: its slot, or else the index entry it would take.
    fn find(&self, a: &Addr) -> Result<u16, usize> {
        let mask = self.index.len() - 1;
        let mut p = self.hasher.hash_addr(a) as usize & mask;
        loop {
            match self.index[p] {
                0 => return Err(p),
                s if self.addrs[s as usize] == *a => return Ok(s),
                _ => p = (p + 1) & mask,
            }
        }
    }

    /// The slot holding `a`, counted once more; `None` when every slot is held by live
    /// connections.
    pub fn intern(&mut self, a: Addr) -> Option<u16> {
        let mut at = match self.find(&a) {
            Ok(s) => {
                if self.refs[s as usize] == 0 {
                    self.held += 1;
                }
                self.refs[s as usize] += 1;
                return Some(s);
            }
            Err(at) => at,
        };
        let s = match self.take_slot() {
            Some(s) => s,
            None => {
                self.sweep();
                let s = self.take_slot()?;
                // The sweep rebuilt the index.
                at = self.find(&a).err()?;
                s
            }
        };
        self.index[at] = s;
        self.addrs[s as usize] = a;
        self.refs[s as usize] = 1;
        self.held += 1;
        Some(s)
    }

    fn take_slot(&mut self) -> Option<u16> {
        if let Some(s) = self.free.pop() {
            return Some(s);
        }
        if (self.fresh as usize) < self.refs.len() {
            self.fresh += 1;
            return Some((self.fresh - 1) as u16);
        }
        None
    }

    /// One live connection less names `slot`.
    #[inline]
    pub fn release(&mut self, slot: u16) {
        if let Some(r) = self.refs.get_mut(slot as usize) {
            debug_assert!(*r > 0, "slot {slot} released more often than interned");
            if *r == 1 {
                self.held -= 1;
            }
            *r = r.saturating_sub(1);
        }
    }

    /// Reclaims the slots no live connection names: the index is rebuilt from the
    /// others (every slot has been used once; a walk of the whole table).
    fn sweep(&mut self) {
        self.index.fill(0);
        self.free.clear();
        for s in 1..self.fresh as usize {
            if self.refs[s] == 0 {
                self.addrs[s] = Addr::UNSPECIFIED;
                self.free.push(s as u16);
                continue;
            }
            if let Err(at) = self.find(&self.addrs[s]) {
                self.index[at] = s as u16;
            }
        }
    }

    /// Forgets everything (every connection was freed).
    pub fn clear(&mut self) {
        self.index.fill(0);
        self.refs.fill(0);
        self.free.clear();
        self.fresh = 1;
        self.held = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(i: u32) -> Addr {
        Addr::v4(i.to_be_bytes())
    }

    #[test]
    fn an_address_has_one_slot_while_it_is_named() {
        let mut t = Addrs::new(10, KeyHasher::with_seed(3));
        let s = t.intern(a(1)).unwrap();
        assert_eq!(t.intern(a(1)), Some(s));
        assert_ne!(t.intern(a(2)), Some(s));
        assert!(t.holds(&a(1)) && t.holds(&a(2)) && !t.holds(&a(3)));
        assert_eq!((t.get(s), t.refs(s), t.live()), (a(1), 2, 2));
        t.release(s);
        t.release(s);
        assert_eq!((t.refs(s), t.live(), t.holds(&a(1))), (0, 1, false));
        // Unreferenced, it keeps its slot until a sweep needs it.
        assert_eq!(t.intern(a(1)), Some(s));
    }

    #[test]
    fn a_full_table_reclaims_what_no_connection_names_and_refuses_the_rest() {
        let mut t = Addrs::new(1 << 20, KeyHasher::with_seed(4));
        let n = MAX_ADDR_SLOTS as u32 - 1;
        let slots: Vec<u16> = (0..n).map(|i| t.intern(a(i)).unwrap()).collect();
        assert_eq!(t.intern(a(n)), None, "every slot is held");
        // Free every other address: the next new ones take their slots.
        for (i, &s) in slots.iter().enumerate().filter(|(i, _)| i % 2 == 0) {
            assert_eq!(t.get(s), a(i as u32));
            t.release(s);
        }
        let again = t.intern(a(n)).unwrap();
        assert!(slots.iter().step_by(2).any(|&s| s == again), "a reclaimed slot");
        assert_eq!(t.get(again), a(n));
        // Those still held are still found in their slots.
        for i in (1..n).step_by(2).take(100) {
            assert_eq!(t.intern(a(i)), Some(slots[i as usize]));
        }
        assert_eq!(t.live(), n as usize / 2 + 1);
        assert_eq!(t.live(), t.refs.iter().filter(|&&r| r > 0).count());
        assert_eq!(t.slots(), n as usize);
    }
}
