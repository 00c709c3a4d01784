//! The connection table: a preallocated slab of [`Conn`]s indexed by a chained hash.
//!
//! Layout, chosen for memory per connection and cache misses per packet:
//! - `conns: Vec<Conn>`: the pool, `capacity` entries allocated (and touched) at
//!   start-up; empty slots form a free list of `u32` indices through `next[0]`.
//! - `buckets: Vec<u32>`: an array of chain heads, [`BUCKETS_PER_CONN`] × `capacity`
//!   of them (no rounding to a power of two: a key's bucket is its 32-bit hash scaled
//!   to the array's length by a multiply and a shift), shared by both keys of every
//!   connection (load factor 0.5 keys per bucket with the pool full).
//!   A chain element is a *node* `conn_index << 1 | side`, side 0 = inbound key, 1 =
//!   outbound key; the links are intrusive (`Conn::next[side]`), so a connection costs
//!   no allocation and no extra node.
//! - One lookup serves both directions: the side of the matching node says whether the
//!   packet came from the client (inbound) or the real server (outbound).
//!
//! - `addrs: Addrs`: the VIPs, LIPs and RIPs, each held once and named by a 16-bit slot
//!   in the connections that use it, so a connection is one cache line.
//!
//! Memory: `size_of::<Conn>()` (64 B) + 16 B of buckets per connection (the timer
//! wheel adds 8 B, see [`crate::timer`]): 88 B all-in, plus the shared addresses'
//! slots (26 B each, three per connection of the capacity rounded up to a power of two,
//! at most 65,536: 1.7 MB, under 2 B per connection in a table of a million).
//!
//! Time: a hit costs one hash (three multiplies), one bucket load and on average
//! ~1.12..1.25 connection loads. [`ConnTable::lookup_burst`] first hashes a whole burst
//! (the platform's hint prefetching each bucket), loads all its bucket heads and
//! touches the cache line of every first node (and prefetches the second where the
//! first is another key's) before any packet is handled, so the cache misses of a burst overlap
//! instead of queueing (group prefetching without `unsafe`); [`ConnTable::find`] then
//! finishes each key's lookup in its packet's turn. An insert links the inbound key at
//! once (its bucket was just loaded by the lookup that missed) and leaves the outbound
//! key, whose bucket is a cold line, on a short waiting list that lookups also search,
//! until [`ConnTable::settle`] links a whole burst's worth together, their misses
//! overlapping.

use std::hint::black_box;

use thiserror::Error;

use super::{Addr, Addrs, Conn, ConnFlags, ConnKey, ConnView, KeyHasher};
use crate::engine::config::MemAdvice;
use crate::tcp_state::{Direction, TcpState};
use crate::types::{FwdMode, Millis, Proto};

/// The null link.
pub(crate) const NIL: u32 = u32::MAX;

/// Keys handled per group by [`ConnTable::lookup_burst`] (a typical rx burst).
pub const BURST: usize = 32;

/// The largest supported capacity (node numbers must fit in 31 bits).
pub const MAX_CAPACITY: u32 = (1 << 30) - 1;

/// A key's lookup between [`ConnTable::lookup_burst`] and [`ConnTable::find`]: the node
/// its chain is to be walked from (its line already requested).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Staged(u32);

impl Default for Staged {
    /// Nothing to walk.
    fn default() -> Staged {
        Staged(NIL)
    }
}

/// Buckets per connection of capacity. Each connection has two keys, so 4 leaves a
/// key's chain holding another key about 1 time in 4 with the pool full, fewer below:
/// a hit reads that other connection's line first only that often (2 per connection:
/// 1 in 2, and 5–10 ns more per packet at a million connections), for 8 bytes more per
/// connection.
pub const BUCKETS_PER_CONN: u64 = 4;

/// A handle on a live connection in one worker's table (its slot index). It stays
/// valid until the connection is freed; the slot may then be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnRef(u32);

impl ConnRef {
    /// The slot index.
    #[inline]
    pub fn index(self) -> u32 {
        self.0
    }

    /// A handle from a slot index (e.g. one handed back by the timer wheel).
    #[inline]
    pub fn from_index(i: u32) -> ConnRef {
        ConnRef(i)
    }
}

/// A successful lookup: which connection, and from which side the key came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hit {
    /// The connection.
    pub conn: ConnRef,
    /// `Input` when the key is the inbound (client) key, `Output` for the outbound one.
    pub dir: Direction,
}

/// What a new connection is made of (everything but the table's own links).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewConn {
    /// Transport protocol.
    pub proto: Proto,
    /// Client address and port.
    pub cip: Addr,
    /// Client port.
    pub cport: u16,
    /// Virtual address.
    pub vip: Addr,
    /// Virtual port.
    pub vport: u16,
    /// Local address.
    pub lip: Addr,
    /// Local port.
    pub lport: u16,
    /// Real server address.
    pub rip: Addr,
    /// Real server port.
    pub rport: u16,
    /// Real server id.
    pub rs: u32,
    /// Initial state.
    pub state: TcpState,
    /// Initial expiry.
    pub expires: Millis,
    /// How it is forwarded (NAT and DR connections have `lip:lport = cip:cport`).
    pub fwd: FwdMode,
}

/// Why the table refused something.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ConnError {
    /// Every slot of the pool holds a live connection.
    #[error("connection pool full")]
    PoolFull,
    /// Every slot of the table's shared addresses is named by a live connection (65,535
    /// distinct VIPs, LIPs and RIPs at once, see [`Addrs`]).
    #[error("no slot for another distinct VIP, LIP or RIP")]
    AddrsFull,
    /// The requested capacity is 0 or above [`MAX_CAPACITY`].
    #[error("connection table capacity must be 1..={MAX_CAPACITY}, got {0}")]
    BadCapacity(u64),
}

/// One worker's connection table (see the module documentation).
#[derive(Debug)]
pub struct ConnTable {
    conns: Vec<Conn>,
    /// The VIPs, LIPs and RIPs the connections name by slot.
    addrs: Addrs,
    buckets: Vec<u32>,
    nbuckets: u64,
    hasher: KeyHasher,
    free_head: u32,
    len: u32,
    /// Connections inserted since the last [`settle`](ConnTable::settle) whose
    /// outbound key is not linked into its chain yet, with that key's bucket.
    pending: [(u32, u32); BURST],
    pending_len: u32,
}

/// A vector of `n` elements `fill(0..n)`, its memory given to `advice` before the
/// elements are written.
fn advised<T>(n: usize, advice: Option<MemAdvice>, fill: impl FnMut(usize) -> T) -> Vec<T> {
    let mut v = Vec::with_capacity(n);
    if let Some(MemAdvice(advise)) = advice {
        advise(v.as_ptr() as usize, n * std::mem::size_of::<T>());
    }
    v.extend((0..n).map(fill));
    v
}

impl ConnTable {
    /// A table of `capacity` connections, all memory allocated and touched now.
    pub fn new(capacity: u32, hasher: KeyHasher) -> Result<ConnTable, ConnError> {
        Self::with_advice(capacity, hasher, None)
    }

    /// [`new`](Self::new), giving `advice` the pool's and the buckets' memory before
    /// they are first touched (see [`MemAdvice`]).
    pub fn with_advice(capacity: u32, hasher: KeyHasher, advice: Option<MemAdvice>) -> Result<ConnTable, ConnError> {
        if capacity == 0 || capacity > MAX_CAPACITY {
            return Err(ConnError::BadCapacity(capacity as u64));
        }
        let nb = (BUCKETS_PER_CONN * capacity as u64).max(16);
        let conns = advised(capacity as usize, advice, |i| Conn {
            next: [if i + 1 < capacity as usize { i as u32 + 1 } else { NIL }, NIL],
            ..Conn::EMPTY
        });
        Ok(ConnTable {
            conns,
            addrs: Addrs::new(capacity, hasher),
            buckets: advised(nb as usize, advice, |_| NIL),
            nbuckets: nb,
            hasher,
            free_head: 0,
            len: 0,
            pending: [(NIL, 0); BURST],
            pending_len: 0,
        })
    }

    /// How many connections the pool holds at most.
    #[inline]
    pub fn capacity(&self) -> u32 {
        self.conns.len() as u32
    }

    /// Live connections.
    #[inline]
    pub fn len(&self) -> u32 {
        self.len
    }

    /// Whether no connection is live.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Free slots.
    #[inline]
    pub fn free(&self) -> u32 {
        self.capacity() - self.len
    }

    /// Number of hash buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets.len()
    }

    /// Memory of the pool, the buckets and the shared addresses divided by the
    /// capacity, in bytes.
    pub fn bytes_per_conn(&self) -> f64 {
        (std::mem::size_of::<Conn>() * self.conns.len() + 4 * self.buckets.len() + self.addrs.bytes()) as f64
            / self.conns.len() as f64
    }

    #[inline]
    fn bucket(&self, k: &ConnKey) -> usize {
        // The hash's low 32 bits scaled to [0, nbuckets) (Lemire's multiply-shift
        // range reduction: as fast as a mask, any length).
        ((u64::from(self.hasher.hash(k) as u32) * self.nbuckets) >> 32) as usize
    }

    #[inline]
    fn matches(&self, c: &Conn, side: u32, k: &ConnKey) -> bool {
        let a = &self.addrs;
        if side == 0 {
            c.cport == k.sport && c.vport == k.dport && c.proto == k.proto && c.cip == k.src && a.get(c.vip) == k.dst
        } else {
            c.rport == k.sport
                && c.lport == k.dport
                && c.proto == k.proto
                && a.get(c.rip) == k.src
                && c.lip_or_cip(a) == k.dst
        }
    }

    #[inline]
    fn walk(&self, mut node: u32, k: &ConnKey) -> Option<Hit> {
        while node != NIL {
            let idx = node >> 1;
            let side = node & 1;
            let c = &self.conns[idx as usize];
            if self.matches(c, side, k) {
                return Some(Self::hit(idx, side));
            }
            node = c.next[side as usize];
        }
        None
    }

    /// Finds the connection a packet with this key belongs to, from either side.
    #[inline]
    pub fn lookup(&self, k: &ConnKey) -> Option<Hit> {
        let b = self.bucket(k);
        self.walk(self.buckets[b], k).or_else(|| self.lookup_pending(b, k))
    }

    /// A key missing from its chain may be the outbound key of a connection inserted
    /// since the last [`settle`](Self::settle).
    #[inline]
    fn lookup_pending(&self, bucket: usize, k: &ConnKey) -> Option<Hit> {
        if self.pending_len == 0 {
            return None;
        }
        self.pending[..self.pending_len as usize]
            .iter()
            .find(|&&(idx, b)| b as usize == bucket && self.matches(&self.conns[idx as usize], 1, k))
            .map(|&(idx, _)| Self::hit(idx, 1))
    }

    /// Whether some connection has this key (on either side).
    #[inline]
    pub fn contains(&self, k: &ConnKey) -> bool {
        self.lookup(k).is_some()
    }

    /// The first step of a burst's lookups: for each key, the node its chain is to be
    /// walked from, in `out[i]` (for `i` up to the shorter of the two slices), ready
    /// for [`find`](Self::find) as each packet's turn comes. Works in groups of
    /// [`BURST`], in stages whose loads are independent across the group, so their
    /// cache misses overlap instead of queueing: all hashes, each key's bucket
    /// prefetched as it is hashed; all bucket heads; a touch of the cache line of every
    /// first node; then a look at each first node's ports, and where they are not the
    /// key's (another key heads the bucket: about 1 time in 4 with the pool full), its successor is the
    /// node to walk from, prefetched. The full comparison is left to `find`, made
    /// when the packet needs the connection's line anyway.
    ///
    /// `prefetch` is the platform's cache hint
    /// ([`PacketBuf::prefetch`](crate::buf::PacketBuf::prefetch)): unlike a touch load,
    /// a prefetch does not hold up the instructions behind it while its line comes.
    /// The first connections are touched all the same: prefetches issued in a row
    /// behind a burst's outstanding loads were not all honoured on the development
    /// machine (1 million connections: 61 ns per established packet this way, 67–69 with
    /// the successors touched too, 79–87 with everything prefetched).
    pub fn lookup_burst(&self, keys: &[ConnKey], out: &mut [Staged], prefetch: impl Fn(&u32)) {
        let n = keys.len().min(out.len());
        for (kc, oc) in keys[..n].chunks(BURST).zip(out[..n].chunks_mut(BURST)) {
            for (o, k) in oc.iter_mut().zip(kc) {
                let b = self.bucket(k);
                prefetch(&self.buckets[b]);
                o.0 = b as u32;
            }
            for o in oc.iter_mut() {
                o.0 = self.buckets[o.0 as usize];
            }
            let mut acc = 0u32;
            for o in oc.iter() {
                acc ^= self.touch(o.0);
            }
            for (o, k) in oc.iter_mut().zip(kc) {
                if let Some(c) = self.conns.get((o.0 >> 1) as usize) {
                    let side = o.0 & 1;
                    let ports = if side == 0 { (c.cport, c.vport) } else { (c.rport, c.lport) };
                    if ports != (k.sport, k.dport) {
                        o.0 = c.next[side as usize];
                        if let Some(n) = self.conns.get((o.0 >> 1) as usize) {
                            prefetch(&n.expires);
                        }
                    }
                }
            }
            black_box(acc);
        }
    }

    /// The second step: the connection of `k` if the chain from where
    /// [`lookup_burst`](Self::lookup_burst) left it holds it; `None` may still be a key
    /// [`lookup`](Self::lookup) finds: one inserted since the last
    /// [`settle`](Self::settle) (its outbound key waits outside the chains) or since
    /// the staging. A caller that removed a connection since asks `lookup` for every
    /// key (the slot may hold another connection now).
    #[inline]
    pub fn find(&self, s: Staged, k: &ConnKey) -> Option<Hit> {
        self.walk(s.0, k)
    }

    /// Reads a word of `node`'s connection, its one cache line (a software prefetch
    /// without `unsafe`).
    #[inline(always)]
    fn touch(&self, node: u32) -> u32 {
        match self.conns.get((node >> 1) as usize) {
            Some(c) => c.expires,
            None => 0,
        }
    }

    #[inline(always)]
    fn hit(idx: u32, side: u32) -> Hit {
        Hit { conn: ConnRef(idx), dir: if side == 0 { Direction::Input } else { Direction::Output } }
    }

    /// Inserts a connection under both its keys. The caller guarantees neither key is
    /// present (the engine knows it from its inbound miss and its local port's
    /// allocation; checked in debug builds). Refused with [`ConnError::PoolFull`] when
    /// no slot is free; live connections are untouched then.
    ///
    /// The outbound key is found by every lookup at once, but linked into its chain
    /// only by the next [`settle`](Self::settle) (or when [`BURST`] are waiting): its
    /// bucket is a cache miss with a large table, and the links of a burst's new
    /// connections made together overlap their misses instead of stalling each one.
    pub fn insert(&mut self, n: NewConn) -> Result<ConnRef, ConnError> {
        let idx = self.free_head;
        if idx == NIL {
            return Err(ConnError::PoolFull);
        }
        if self.pending_len as usize == BURST {
            self.settle();
        }
        let kin = ConnKey::new(n.proto, n.cip, n.cport, n.vip, n.vport);
        let kout = ConnKey::new(n.proto, n.rip, n.rport, n.lip, n.lport);
        debug_assert!(!self.contains(&kin), "inbound key already present");
        debug_assert!(!self.contains(&kout), "outbound key already present");
        let bin = self.bucket(&kin);
        let bout = self.bucket(&kout);
        let (vip, lip, rip) = self.intern3(n.vip, (n.lip != n.cip).then_some(n.lip), n.rip)?;
        let c = &mut self.conns[idx as usize];
        self.free_head = c.next[0];
        *c = Conn {
            cip: n.cip,
            cport: n.cport,
            vport: n.vport,
            lport: n.lport,
            rport: n.rport,
            vip,
            lip,
            rip,
            hops: [super::NO_HOP; 2],
            next: [self.buckets[bin], NIL],
            expires: 0,
            rs: n.rs,
            inner_ack: 0,
            outer_next: 0,
            proto: n.proto,
            state: n.state,
            flags: ConnFlags(ConnFlags::LIVE),
            fwd: n.fwd as u8,
            client: 0,
        };
        c.set_expires(n.expires);
        self.buckets[bin] = idx << 1;
        self.pending[self.pending_len as usize] = (idx, bout as u32);
        self.pending_len += 1;
        self.len += 1;
        Ok(ConnRef(idx))
    }

    /// Links the outbound keys of the connections inserted since the last call into
    /// their chains (see [`insert`](Self::insert)); the engine calls it after each
    /// burst. Lookups are right either way; this only keeps the waiting list short.
    #[inline]
    pub fn settle(&mut self) {
        for &(idx, b) in &self.pending[..self.pending_len as usize] {
            // (After the inbound links: a key's bucket may be the other key's.)
            self.conns[idx as usize].next[1] = self.buckets[b as usize];
            self.buckets[b as usize] = (idx << 1) | 1;
        }
        self.pending_len = 0;
    }

    fn unlink(&mut self, bucket: usize, node: u32) {
        let side = (node & 1) as usize;
        let after = self.conns[(node >> 1) as usize].next[side];
        let mut cur = self.buckets[bucket];
        if cur == node {
            self.buckets[bucket] = after;
            return;
        }
        while cur != NIL {
            let c = &mut self.conns[(cur >> 1) as usize];
            let nx = c.next[(cur & 1) as usize];
            if nx == node {
                c.next[(cur & 1) as usize] = after;
                return;
            }
            cur = nx;
        }
        debug_assert!(false, "node {node} not in its chain");
    }

    /// Frees a live connection: unlinks both keys and returns the slot to the pool
    /// (the caller reads what it needs for its bookkeeping first, through
    /// [`get`](Self::get)). Freeing a slot that is not live does nothing and returns
    /// `false`.
    pub fn remove(&mut self, r: ConnRef) -> bool {
        let Some(c) = self.conns.get(r.0 as usize) else { return false };
        if !c.is_live() {
            return false;
        }
        let v = ConnView::new(c, &self.addrs);
        let (kin, kout) = (v.inbound_key(), v.outbound_key());
        let (bin, bout) = (self.bucket(&kin), self.bucket(&kout));
        self.unlink(bin, r.0 << 1);
        let waiting = self.pending[..self.pending_len as usize].iter().position(|&(idx, _)| idx == r.0);
        match waiting {
            Some(i) => {
                self.pending_len -= 1;
                self.pending[i] = self.pending[self.pending_len as usize];
            }
            None => self.unlink(bout, (r.0 << 1) | 1),
        }
        let c = &mut self.conns[r.0 as usize];
        c.flags = ConnFlags(0);
        c.next = [self.free_head, NIL];
        for a in [c.vip, c.lip, c.rip] {
            // (Slot 0: the client's own address, never interned.)
            if a != super::LIP_IS_CIP {
                self.addrs.release(a);
            }
        }
        self.free_head = r.0;
        self.len -= 1;
        true
    }

    /// The slots of a new connection's VIP, LIP and RIP, each counted; none taken
    /// when one cannot be. A LIP of `None` is the client's own address (NAT, DR, TUN:
    /// `lip:lport = cip:cport`): [`LIP_IS_CIP`](super::LIP_IS_CIP), no slot, so that
    /// the clients of those modes are not limited by the slots' number.
    fn intern3(&mut self, vip: Addr, lip: Option<Addr>, rip: Addr) -> Result<(u16, u16, u16), ConnError> {
        let mut got = [super::LIP_IS_CIP; 3];
        for (i, a) in [Some(vip), lip, Some(rip)].into_iter().enumerate() {
            let Some(a) = a else { continue };
            match self.addrs.intern(a) {
                Some(s) => got[i] = s,
                None => {
                    for &s in got[..i].iter().filter(|s| **s != super::LIP_IS_CIP) {
                        self.addrs.release(s);
                    }
                    return Err(ConnError::AddrsFull);
                }
            }
        }
        Ok((got[0], got[1], got[2]))
    }

    /// The connection behind a handle (a freed slot reads as not live).
    #[inline]
    pub fn get(&self, r: ConnRef) -> ConnView<'_> {
        ConnView::new(&self.conns[r.0 as usize], &self.addrs)
    }

    /// The table's shared addresses (diagnostics, tests).
    pub fn addrs(&self) -> &Addrs {
        &self.addrs
    }

    /// The connection behind a handle, to update state, expiry, flags, next hop.
    #[inline]
    pub fn get_mut(&mut self, r: ConnRef) -> &mut Conn {
        &mut self.conns[r.0 as usize]
    }

    /// The first live connection at slot index `from` or later (control path: a walk
    /// of the whole slab, as `flush` makes; the worker's bounded walks use
    /// [`next_live_in`](Self::next_live_in)).
    pub fn next_live(&self, from: u32) -> Option<ConnRef> {
        self.next_live_in(from, u32::MAX)
    }

    /// The first live connection at a slot index in `from..end`: a walk of at most
    /// `end - from` slots, however few connections the pool holds beyond.
    pub fn next_live_in(&self, from: u32, end: u32) -> Option<ConnRef> {
        let end = (end as usize).min(self.conns.len());
        self.conns.get(from as usize..end)?.iter().position(Conn::is_live).map(|p| ConnRef(from + p as u32))
    }

    /// Where a bounded walk that stopped before slot `from` goes on: the next live slot
    /// among the `window` slots from `from`, else the slot after them while the pool
    /// goes on, else `None` (the end).
    pub fn resume(&self, from: u32, window: u32) -> Option<u32> {
        let end = from.saturating_add(window);
        match self.next_live_in(from, end) {
            Some(r) => Some(r.index()),
            None => (end < self.capacity()).then_some(end),
        }
    }

    /// Every live connection, in slot order (control path).
    pub fn iter(&self) -> impl Iterator<Item = (ConnRef, ConnView<'_>)> + '_ {
        self.conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.is_live())
            .map(|(i, c)| (ConnRef(i as u32), ConnView::new(c, &self.addrs)))
    }

    /// Forgets the next-hop cache slots ([`Conn::hop`]) of at most `budget` slots from
    /// slot `from` on, live or not: the dataplane's cache was rebuilt (the routes
    /// changed) and the old slots may name other next hops now. Returns where to go on,
    /// `None` once the whole pool is done (a sequential walk: a few nanoseconds a slot).
    pub fn forget_hops(&mut self, from: u32, budget: u32) -> Option<u32> {
        let end = (from as usize).saturating_add(budget as usize).min(self.conns.len());
        for c in self.conns.get_mut(from as usize..end)? {
            c.hops = [super::NO_HOP; 2];
        }
        (end < self.conns.len()).then_some(end as u32)
    }

    /// Frees everything at once (the caller resets its timer wheel and counters too).
    pub fn clear(&mut self) {
        self.pending_len = 0;
        self.buckets.iter_mut().for_each(|b| *b = NIL);
        let cap = self.conns.len();
        for (i, c) in self.conns.iter_mut().enumerate() {
            c.flags = ConnFlags(0);
            c.next = [if i + 1 < cap { i as u32 + 1 } else { NIL }, NIL];
        }
        self.addrs.clear();
        self.free_head = 0;
        self.len = 0;
    }

    /// Number of nodes in every chain and the longest (diagnostics, tests; outbound keys
    /// waiting for [`settle`](Self::settle) count as nodes, not in the longest).
    pub fn chain_stats(&self) -> (usize, usize) {
        let mut nodes = 0;
        let mut longest = 0;
        for &b in &self.buckets {
            let mut n = 0;
            let mut cur = b;
            while cur != NIL {
                n += 1;
                cur = self.conns[(cur >> 1) as usize].next[(cur & 1) as usize];
            }
            nodes += n;
            longest = longest.max(n);
        }
        (nodes + self.pending_len as usize, longest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::addrs::MAX_ADDR_SLOTS;

    /// The advice sees the pool and the buckets, whole; the table it builds is the
    /// one `new` builds (every slot free, in order).
    #[test]
    fn advice_sees_the_pool_and_the_buckets() {
        use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
        static SEEN: AtomicUsize = AtomicUsize::new(0);
        fn advise(_addr: usize, len: usize) -> bool {
            SEEN.fetch_add(len, Relaxed);
            true
        }
        let mut t = ConnTable::with_advice(1000, KeyHasher::with_seed(1), Some(MemAdvice(advise))).unwrap();
        assert_eq!(SEEN.load(Relaxed), 1000 * std::mem::size_of::<Conn>() + 4000 * 4);
        assert_eq!(t.free(), 1000);
        for i in 0..1000 {
            assert_eq!(t.insert(nc(i)).map(|r| r.index()), Ok(i));
        }
        assert_eq!(t.insert(nc(1000)), Err(ConnError::PoolFull));
    }

    fn nc(i: u32) -> NewConn {
        let b = i.to_be_bytes();
        NewConn {
            proto: Proto::Tcp,
            cip: Addr::v4([10, b[1], b[2], b[3]]),
            cport: 1024 + (i % 50000) as u16,
            vip: Addr::v4([192, 0, 2, 1]),
            vport: 80,
            lip: Addr::v4([172, 16, 0, 1]),
            lport: (i % 60000) as u16 + 1025,
            rip: Addr::v4([172, 16, 1, (i % 7) as u8]),
            rport: 8080,
            rs: i % 7,
            state: TcpState::SynRecv,
            expires: 0,
            fwd: FwdMode::FullNat,
        }
    }

    /// A connection with addresses of its own: VIP, LIP and RIP `3i`, `3i + 1`, `3i + 2`.
    fn apart(i: u32) -> NewConn {
        let a = |x: u32| Addr::v4(x.to_be_bytes());
        NewConn { cip: a(i | 0x0a00_0000), vip: a(3 * i), lip: a(3 * i + 1), rip: a(3 * i + 2), ..nc(0) }
    }

    #[test]
    fn shared_addresses_are_counted_released_and_refused_beyond_the_slots() {
        let mut t = ConnTable::new(30_000, KeyHasher::with_seed(5)).unwrap();
        let first = t.insert(apart(0)).unwrap();
        let same = t.insert(NewConn { cport: 7, lport: 7, ..apart(0) }).unwrap();
        assert_eq!(t.addrs().live(), 3, "two connections, three distinct addresses");
        assert_eq!(
            (t.get(same).vip(), t.get(same).lip(), t.get(same).rip()),
            (apart(0).vip, apart(0).lip, apart(0).rip)
        );
        assert!(t.remove(same));
        assert_eq!(t.addrs().live(), 3, "still named by the first");
        let n = (MAX_ADDR_SLOTS as u32 - 1) / 3;
        for i in 1..n {
            t.insert(apart(i)).unwrap();
        }
        assert_eq!(t.addrs().live(), 3 * n as usize);
        assert_eq!(t.insert(apart(n)), Err(ConnError::AddrsFull));
        assert_eq!((t.len(), t.addrs().live()), (n, 3 * n as usize), "nothing taken by the refusal");
        assert_eq!(t.lookup(&key_in(&apart(n))), None);
        // Once the first is freed, its slots serve another's addresses.
        assert!(t.remove(first));
        let r = t.insert(apart(n)).unwrap();
        assert_eq!(t.lookup(&key_out(&apart(n))).map(|h| h.conn), Some(r));
        assert_eq!(t.get(r).outbound_key(), key_out(&apart(n)));
        assert_eq!(t.lookup(&key_in(&apart(0))), None);
        assert_eq!(t.lookup(&key_in(&apart(1))).map(|h| t.get(h.conn).vip()), Some(apart(1).vip));
    }

    /// NAT, DR and TUN connections name their client's address as their LIP: it takes
    /// no shared slot, so more distinct clients than there are slots fit (a forger
    /// with 65,536 made-up sources used to lock every new client of those modes out).
    #[test]
    fn a_lip_that_is_the_client_takes_no_slot() {
        let mut t = ConnTable::new(100_000, KeyHasher::with_seed(3)).unwrap();
        let dr = |i: u32| {
            let cip = Addr::v4((0x0b00_0000 | i).to_be_bytes());
            NewConn {
                cip,
                lip: cip,
                cport: 4000,
                lport: 4000,
                rip: Addr::v4([172, 16, 1, 1]),
                fwd: FwdMode::Dr,
                ..nc(0)
            }
        };
        let n = MAX_ADDR_SLOTS as u32 + 1000;
        let refs: Vec<ConnRef> = (0..n).map(|i| t.insert(dr(i)).expect("room")).collect();
        assert_eq!(t.addrs().live(), 2, "the VIP and the RIP");
        for i in [0, 77, n - 1] {
            let r = t.lookup(&key_out(&dr(i))).map(|h| h.conn);
            assert_eq!(r, Some(refs[i as usize]));
            assert_eq!(t.get(refs[i as usize]).lip(), dr(i).cip);
            assert_eq!(t.get(refs[i as usize]).outbound_key(), key_out(&dr(i)));
        }
        for r in refs {
            assert!(t.remove(r));
        }
        assert_eq!((t.len(), t.addrs().live()), (0, 0), "nothing left counted");
    }

    fn key_in(n: &NewConn) -> ConnKey {
        ConnKey::new(n.proto, n.cip, n.cport, n.vip, n.vport)
    }

    fn key_out(n: &NewConn) -> ConnKey {
        ConnKey::new(n.proto, n.rip, n.rport, n.lip, n.lport)
    }

    #[test]
    fn insert_lookup_both_sides_remove() {
        let mut t = ConnTable::new(100, KeyHasher::with_seed(7)).unwrap();
        let refs: Vec<_> = (0..100).map(|i| t.insert(nc(i)).unwrap()).collect();
        assert_eq!(t.len(), 100);
        assert_eq!(t.insert(nc(1000)), Err(ConnError::PoolFull));
        for (i, r) in refs.iter().enumerate() {
            let n = nc(i as u32);
            assert_eq!(t.lookup(&key_in(&n)), Some(Hit { conn: *r, dir: Direction::Input }));
            assert_eq!(t.lookup(&key_out(&n)), Some(Hit { conn: *r, dir: Direction::Output }));
            assert_eq!(t.get(*r).inbound_key(), key_in(&n));
        }
        assert_eq!(t.chain_stats().0, 200);
        for r in refs.iter().step_by(2) {
            assert!(t.remove(*r));
            assert!(!t.remove(*r));
        }
        assert_eq!(t.len(), 50);
        for (i, r) in refs.iter().enumerate() {
            let n = nc(i as u32);
            assert_eq!(t.lookup(&key_in(&n)).is_some(), i % 2 == 1);
            assert_eq!(t.lookup(&key_out(&n)).map(|h| h.conn), (i % 2 == 1).then_some(*r));
        }
        assert_eq!(t.chain_stats().0, 100);
        t.clear();
        assert_eq!(t.free(), 100);
        assert_eq!(t.chain_stats().0, 0);
        assert!(t.next_live(0).is_none());
    }

    #[test]
    fn burst_matches_single_lookups() {
        let mut t = ConnTable::new(1000, KeyHasher::with_seed(3)).unwrap();
        for i in 0..700 {
            t.insert(nc(i)).unwrap();
        }
        let keys: Vec<ConnKey> = (0..1000)
            .map(|i| {
                let n = nc(i);
                if i % 2 == 0 {
                    key_in(&n)
                } else {
                    key_out(&n)
                }
            })
            .collect();
        let found = burst(&t, &keys);
        for (k, o) in keys.iter().zip(&found) {
            assert_eq!(*o, t.lookup(k));
        }
        assert_eq!(found.iter().filter(|o| o.is_some()).count(), 700);
    }

    /// [`ConnTable::lookup_burst`] then [`ConnTable::find`] for each key, and
    /// [`ConnTable::lookup`] where `find` has nothing (the engine's way): each `find`
    /// that answered is checked against `lookup`, and a `find` that did not may only be
    /// a key waiting for the settle.
    fn burst(t: &ConnTable, keys: &[ConnKey]) -> Vec<Option<Hit>> {
        let mut staged = vec![Staged::default(); keys.len()];
        t.lookup_burst(keys, &mut staged, |_| {});
        keys.iter()
            .zip(&staged)
            .map(|(k, s)| match t.find(*s, k) {
                Some(h) => {
                    assert_eq!(Some(h), t.lookup(k), "find and lookup disagree on {k:?}");
                    Some(h)
                }
                None => {
                    let b = t.bucket(k);
                    assert_eq!(t.walk(t.buckets[b], k), None, "find missed {k:?}, in its chain");
                    t.lookup_pending(b, k)
                }
            })
            .collect()
    }

    /// Keys whose ports are the same (the burst's first look compares ports only) in a
    /// table small enough that they share buckets, some linked, one waiting for the
    /// settle, one absent: the burst finds what single lookups find, under many seeds.
    #[test]
    fn burst_matches_single_lookups_with_shared_ports_and_buckets() {
        for seed in 0..64 {
            let mut t = ConnTable::new(6, KeyHasher::with_seed(seed)).unwrap();
            let conns: Vec<NewConn> = (0..6)
                .map(|i| NewConn { cip: Addr::v4([10, 0, 0, i as u8]), cport: 5000, lport: 6000, ..nc(i) })
                .collect();
            for c in &conns[..4] {
                t.insert(*c).unwrap();
            }
            t.settle();
            t.insert(conns[4]).unwrap();
            let keys: Vec<ConnKey> = conns.iter().flat_map(|c| [key_in(c), key_out(c)]).collect();
            let found = burst(&t, &keys);
            for (k, o) in keys.iter().zip(&found) {
                assert_eq!(*o, t.lookup(k), "seed {seed}, key {k:?}");
            }
            assert_eq!(found.iter().filter(|o| o.is_some()).count(), 10, "seed {seed}");
        }
    }

    #[test]
    fn same_bucket_for_both_keys_is_fine() {
        // A tiny table forces collisions of inbound and outbound keys.
        let mut t = ConnTable::new(1, KeyHasher::with_seed(1)).unwrap();
        assert_eq!(t.bucket_count(), 16);
        let r = t.insert(nc(5)).unwrap();
        assert!(t.remove(r));
        let r = t.insert(nc(6)).unwrap();
        assert_eq!(t.lookup(&key_out(&nc(6))).unwrap().conn, r);
        assert!(t.bytes_per_conn() > 100.0);
    }

    /// Outbound keys inserted since the last settle are found by every kind of lookup,
    /// removable, and chained by the settle; more than a burst settles by itself.
    #[test]
    fn unsettled_outbound_keys_are_found() {
        let mut t = ConnTable::new(100, KeyHasher::with_seed(5)).unwrap();
        let refs: Vec<_> = (0..3).map(|i| t.insert(nc(i)).unwrap()).collect();
        assert_eq!(t.pending_len, 3);
        let keys: Vec<ConnKey> = (0..4).map(|i| key_out(&nc(i))).collect();
        let out = burst(&t, &keys);
        for (i, r) in refs.iter().enumerate() {
            let want = Some(Hit { conn: *r, dir: Direction::Output });
            assert_eq!((t.lookup(&keys[i]), out[i]), (want, want));
        }
        assert_eq!((t.lookup(&keys[3]), out[3]), (None, None));
        assert_eq!(t.chain_stats().0, 6);
        assert!(t.remove(refs[1]));
        assert_eq!((t.pending_len, t.lookup(&keys[1])), (2, None));
        t.settle();
        assert_eq!(t.pending_len, 0);
        assert_eq!(t.lookup(&keys[2]).map(|h| h.conn), Some(refs[2]));
        assert_eq!(t.chain_stats().0, 4);
        for i in 10..10 + BURST as u32 + 5 {
            t.insert(nc(i)).unwrap();
        }
        assert_eq!(t.pending_len, 5);
        assert!((10..10 + BURST as u32 + 5).all(|i| t.contains(&key_out(&nc(i)))));
        assert!(t.remove(refs[2]), "a settled connection unlinks from its chain");
        assert_eq!(t.chain_stats().0, 2 * (1 + BURST + 5));
    }

    #[test]
    fn next_live_pages() {
        let mut t = ConnTable::new(10, KeyHasher::with_seed(1)).unwrap();
        let a = t.insert(nc(1)).unwrap();
        let b = t.insert(nc(2)).unwrap();
        t.remove(a);
        assert_eq!(t.next_live(0), Some(b));
        assert_eq!(t.next_live(b.index() + 1), None);
        assert_eq!((t.next_live_in(0, b.index()), t.next_live_in(0, b.index() + 1)), (None, Some(b)));
        assert_eq!((t.next_live_in(b.index(), 99), t.next_live_in(99, 100)), (Some(b), None));
        assert_eq!(b.index(), 1);
        assert_eq!(
            (t.resume(0, 1), t.resume(0, 10), t.resume(2, 3), t.resume(2, 8)),
            (Some(1), Some(1), Some(5), None)
        );
        assert_eq!(t.iter().count(), 1);
    }
}
