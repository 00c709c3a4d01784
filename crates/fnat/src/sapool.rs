//! Local addresses (LIPs) and local ports: which worker owns a port, and how a worker
//! picks `(LIP, lport)` for a new connection.
//!
//! # Ownership ([`PortOwnership`])
//! A reply from a real server arrives at `LIP:lport`; it must reach the worker holding
//! the connection. Ownership is a pure function of the port, so any worker (and the
//! NIC) can tell without a table:
//! - `slots = n` when the worker count `n` is a power of two, else
//!   `next_power_of_two(n) × 16`;
//! - `owner(lport) = (lport & (slots − 1)) % n`.
//!
//! A NIC flow rule per slot matches `dst_port & (slots − 1) == slot` and steers it to
//! the owner's queue ([`PortOwnership::flow_rules`]). With a power-of-two `n` that is
//! one rule per worker and a perfect split; otherwise each worker owns
//! `⌊slots/n⌋` or `⌈slots/n⌉` slots, an imbalance of at most ~6 % (at `n = 2^k − 1`).
//!
//! # Allocation ([`SaPool`])
//! Each worker walks, per LIP, a cursor over the ports it owns within the configured
//! range, and takes the first port whose *outbound key* `(proto, RIP:rport, LIP:lport)`
//! is not in its connection table. So one port is reused towards different real
//! servers and capacity is `#LIPs × usable ports × #(RIP:rport)` as in DPVS. A
//! service's LIPs are used in turn (round robin, per address family).
//!
//! **A cursor belongs to its LIP**, not to a service or a LIP set: it lives in the pool
//! as long as the worker does and every set holding that address shares it. A service
//! deleted and added again, a LIP removed from a set and added back, or a new
//! generation of the service table all continue from where the LIP's cursor stood, so
//! the ports its older connections still hold (just behind the cursor) are not probed
//! first. (Cursors used to belong to the set: a service re-added with its LIPs started
//! at the bottom of the range again and was refused while its old connections held
//! those ports.)
//!
//! **Probing covers the whole range before refusing.** An allocation probes up to
//! `min(max_probes, ports per LIP × LIPs of the family)` ports; with the default
//! `max_probes` of [`MAX_PORT_PROBES`] (65,536) that is the whole owned range of
//! every LIP of the family (one LIP: at most 64,511 ports), so a refusal ("no local
//! port") means every port towards that `RIP:rport` is really taken. The bound per
//! packet is therefore 65,536 probes (one table lookup each, about 1–3 ms in the worst
//! case). To keep one exhausted destination from costing that on every SYN, a failed
//! full sweep is remembered ([`SaPool::alloc`]'s *dry* marks, [`DRY_MARKS`] of them):
//! later allocations for the same set, family and `RIP:rport` are refused at once
//! until a connection towards that `RIP:rport` is freed ([`SaPool::released`]).
//!
//! **A port known free is taken without a probe.** The pool keeps, per LIP and port,
//! the number of live connections holding it and, while no more than two have held it
//! at once since it was last free, a one-byte print of each one's destination
//! ([`dest_print`] of proto, `RIP:rport`; [`SaPool::opened`], [`SaPool::closed`]; four
//! bytes per port the worker owns: 256 KiB per LIP with one worker, a quarter of it
//! each with four). A port nobody holds, or whose holders'
//! prints all differ from the new connection's destination's, cannot carry its
//! outbound key, so the table lookup (a cache miss per new connection with a large
//! table) is skipped; only a port that one to two holders may share the destination
//! with (a print alike: the same server, or 1 in 256 by chance), or that more than two
//! held, is probed. On a cursor's first sweep, when a port's connections have ended,
//! and when long-lived connections hold the ports towards other servers, that is
//! almost every allocation. A LIP whose cursor is made while a connection lives on its
//! address without a cursor (a NAT client's, a peer's synced LIP; as far as a count of
//! those addresses in 65,536 hash slots can tell) cannot know its holders: its ports
//! are always probed.
//!
//! Otherwise a port is free towards a destination exactly when the table lacks that
//! outbound key. The sequential cursor keeps probes short:
//! connections tend to end in the order they started, so the ports just ahead of the
//! cursor are the oldest and most likely free.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::conn::{Addr, ConnKey};
use crate::types::Proto;

/// Why a port-ownership or pool configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SaPoolError {
    /// The worker count must be 1..=4096.
    #[error("worker count must be 1..=4096, got {0}")]
    BadWorkers(u32),
    /// The worker id is not below the worker count.
    #[error("worker {worker} out of range for {workers} workers")]
    BadWorker {
        /// The worker id given.
        worker: u16,
        /// The worker count.
        workers: u16,
    },
    /// The port range is empty or starts at 0.
    #[error("bad local port range {lo}..={hi}")]
    BadRange {
        /// First port.
        lo: u16,
        /// Last port.
        hi: u16,
    },
    /// The worker owns no port in the range.
    #[error("worker {0} owns no local port in the configured range")]
    NoPorts(u16),
}

/// Which worker owns each local port (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortOwnership {
    workers: u16,
    slots: u32,
}

impl PortOwnership {
    /// The ownership function for `workers` workers.
    pub fn new(workers: u32) -> Result<PortOwnership, SaPoolError> {
        if workers == 0 || workers > 4096 {
            return Err(SaPoolError::BadWorkers(workers));
        }
        let slots = if workers.is_power_of_two() { workers } else { workers.next_power_of_two() * 16 };
        Ok(PortOwnership { workers: workers as u16, slots })
    }

    /// Number of workers.
    #[inline]
    pub fn workers(&self) -> u16 {
        self.workers
    }

    /// Number of port slots (a power of two).
    #[inline]
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// The mask a flow rule applies to the destination port (`slots − 1`).
    #[inline]
    pub fn mask(&self) -> u16 {
        (self.slots - 1) as u16
    }

    /// The worker owning local port `lport`.
    #[inline]
    pub fn owner(&self, lport: u16) -> u16 {
        ((lport as u32 & (self.slots - 1)) % self.workers as u32) as u16
    }

    /// The `(value, mask)` pairs of `worker`'s slots: a reply belongs to it when
    /// `dst_port & mask == value` for one of them. One pair when the worker count is
    /// a power of two; `slots / n` (about 16..32) otherwise.
    pub fn flow_rules(&self, worker: u16) -> Vec<(u16, u16)> {
        (0..self.slots).filter(|s| s % self.workers as u32 == worker as u32).map(|s| (s as u16, self.mask())).collect()
    }
}

/// The usable local port range (inclusive), default `1025..=65535`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// First usable port.
    pub lo: u16,
    /// Last usable port.
    pub hi: u16,
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange { lo: 1025, hi: 65535 }
    }
}

/// Why no `(LIP, lport)` could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AllocError {
    /// The service's LIP set has no address of the real server's family.
    #[error("no local address of the real server's family")]
    NoLip,
    /// Every probe found its port in use.
    #[error("no free local port")]
    NoPort,
}

/// The most ports one allocation probes (the default `max_probes`): the whole owned
/// range of a LIP (at most 64,511 ports) fits.
pub const MAX_PORT_PROBES: u32 = 1 << 16;

/// How many exhausted destinations ([`SaPool::alloc`]) are remembered at once.
pub const DRY_MARKS: usize = 8;

/// A byte summarising a destination `(proto, RIP:rport)`, the outbound key less the
/// LIP and port: two connections on one `LIP:port` whose destinations' prints differ
/// cannot share an outbound key.
#[inline]
pub fn dest_print(proto: Proto, rip: &Addr, rport: u16) -> u8 {
    let a = u128::from_ne_bytes(rip.0);
    let x = (a as u64) ^ ((a >> 64) as u64) ^ (u64::from(rport) << 48) ^ ((proto as u64) << 40);
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

/// Who holds one port of a LIP: how many live connections (`n`, sticky at 255: that
/// many or more, or not known) and, while no more than two have held it at once since
/// it was last free (`!many`), each one's [`dest_print`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    n: u8,
    many: bool,
    prints: [u8; 2],
}

impl Held {
    /// Nothing known: the port is always probed.
    const UNKNOWN: Held = Held { n: u8::MAX, many: true, prints: [0; 2] };

    #[inline]
    fn open(&mut self, print: u8) {
        if self.n == u8::MAX {
            return;
        }
        if !self.many && self.n < 2 {
            self.prints[self.n as usize] = print;
        } else {
            self.many = true;
        }
        self.n += 1;
    }

    #[inline]
    fn close(&mut self, print: u8) {
        if self.n == u8::MAX {
            return;
        }
        debug_assert!(self.n > 0, "a port freed more often than taken");
        self.n = self.n.saturating_sub(1);
        if self.many {
            self.many = self.n > 0;
        } else if self.prints[0] == print {
            self.prints[0] = self.prints[1];
        } else {
            debug_assert_eq!(self.prints[1], print, "a port freed by a connection it did not hold");
        }
    }

    /// Whether no holder can be a connection towards a destination of this print.
    #[inline]
    fn free_towards(self, print: u8) -> bool {
        self.n == 0 || (!self.many && !self.prints[..usize::from(self.n)].contains(&print))
    }
}

/// Slots of [`SaPool`]'s count of stray connections' addresses.
const STRAY_SLOTS: usize = 1 << 16;

/// An address's slot in that count.
#[inline]
fn stray_slot(a: &Addr) -> usize {
    let x = u128::from_ne_bytes(a.0);
    (((x as u64) ^ ((x >> 64) as u64)).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 48) as usize
}

/// One LIP's [`Held`] per port the worker owns, in the order of `SaPool::ports` (see
/// [`SaPool::opened`]).
#[derive(Clone)]
struct Holders(Box<[Held]>);

impl Holders {
    fn new(h: Held, ports: usize) -> Holders {
        Holders(vec![h; ports].into_boxed_slice())
    }
}

/// `SaPool::slot`'s mark of a port the worker does not own.
const NOT_OWNED: u16 = u16::MAX;

impl std::fmt::Debug for Holders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Holders({} ports held)", self.0.iter().filter(|h| h.n != 0).count())
    }
}

#[derive(Debug, Clone, Default)]
struct LipRing {
    lips: Vec<Addr>,
    /// Per LIP: its cursor's index in `SaPool::cursors`.
    cur: Vec<u32>,
    rr: u32,
}

/// A destination a full sweep found without a free port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Dry {
    set: u32,
    rip: Addr,
    rport: u16,
}

/// One worker's local address sets and port cursors.
#[derive(Debug, Clone)]
pub struct SaPool {
    own: PortOwnership,
    worker: u16,
    ports: Vec<u16>,
    /// Per port number: its place in `ports`, or [`NOT_OWNED`].
    slot: Box<[u16]>,
    /// Per LIP set: IPv4 ring, IPv6 ring.
    sets: Vec<[LipRing; 2]>,
    /// One cursor per LIP ever used (position in `ports`), shared by every set.
    cursors: Vec<(Addr, u32)>,
    /// Per LIP (as `cursors`): the connections holding one of its ports.
    conns: Vec<u64>,
    /// Per LIP (as `cursors`), per port: who holds `LIP:port` on their server side.
    held: Vec<Holders>,
    /// The live connections opened on an address without a cursor (a NAT connection's
    /// client, a synced connection of a peer's LIP), counted per [`stray_slot`] of the
    /// address (sticky at 255): a cursor made for an address whose slot is not 0 may
    /// have such holders it cannot know, so its ports are all [`Held::UNKNOWN`].
    strays: Box<[u8]>,
    max_probes: u32,
    dry: [Option<Dry>; DRY_MARKS],
    dry_len: u8,
    /// Every LIP of every set, sorted: [`SaPool::is_lip`] (asked per reply without a
    /// connection and per new flow) is a binary search however many LIPs and WAN
    /// addresses there are.
    all: Vec<Addr>,
    /// Where a new LIP's cursor starts, as an offset into the ports ([`SaPool::set_start`]).
    start: u64,
}

impl SaPool {
    /// A pool for `worker` under `own`, over the ports of `range` the worker owns,
    /// trying at most `max_probes` ports per allocation.
    pub fn new(own: PortOwnership, worker: u16, range: PortRange, max_probes: u32) -> Result<SaPool, SaPoolError> {
        if worker >= own.workers() {
            return Err(SaPoolError::BadWorker { worker, workers: own.workers() });
        }
        if range.lo == 0 || range.lo > range.hi {
            return Err(SaPoolError::BadRange { lo: range.lo, hi: range.hi });
        }
        let ports: Vec<u16> = (range.lo..=range.hi).filter(|p| own.owner(*p) == worker).collect();
        let mut slot = vec![NOT_OWNED; 1 << 16].into_boxed_slice();
        for (i, p) in ports.iter().enumerate() {
            // (At most 65,535 ports: a place is below NOT_OWNED.)
            slot[usize::from(*p)] = i as u16;
        }
        if ports.is_empty() {
            return Err(SaPoolError::NoPorts(worker));
        }
        Ok(SaPool {
            own,
            worker,
            ports,
            slot,
            sets: Vec::new(),
            cursors: Vec::new(),
            conns: Vec::new(),
            held: Vec::new(),
            strays: vec![0; STRAY_SLOTS].into_boxed_slice(),
            max_probes: max_probes.max(1),
            dry: [None; DRY_MARKS],
            dry_len: 0,
            all: Vec::new(),
            start: 0,
        })
    }

    /// Offsets where the cursors of LIPs added from now on start by `seed` (modulo the
    /// ports): rvsd gives a random seed per process, so that a restarted rvsd does not
    /// first reuse the very ports whose connections its predecessor left in the real
    /// servers' TIME_WAIT. 0 (the default): the first LIP starts at the first port.
    pub fn set_start(&mut self, seed: u64) {
        self.start = seed;
    }

    /// Adds a LIP set (one per service, or shared) and returns its index for
    /// [`alloc`](Self::alloc). Control path (allocates).
    pub fn add_set(&mut self, lips: &[Addr]) -> usize {
        let rings = self.rings(lips);
        self.sets.push(rings);
        self.index();
        self.sets.len() - 1
    }

    /// Rebuilds the sorted index of every set's LIPs (control path).
    fn index(&mut self) {
        self.all = self.sets.iter().flat_map(|s| s.iter().flat_map(|r| r.lips.iter().copied())).collect();
        self.all.sort_unstable();
        self.all.dedup();
    }

    /// The rings of a set of these addresses: each LIP keeps its cursor if it has
    /// one; a new LIP gets one spread over the ports from its place in its family, so
    /// a set's new LIPs do not probe in lockstep (the first starts at the first port).
    fn rings(&mut self, lips: &[Addr]) -> [LipRing; 2] {
        let mut rings: [LipRing; 2] = Default::default();
        for l in lips {
            let r = &mut rings[usize::from(!l.is_v4())];
            if !r.lips.contains(l) {
                r.lips.push(*l);
            }
        }
        let np = self.ports.len() as u64;
        for r in &mut rings {
            let n = r.lips.len() as u64;
            for (i, l) in r.lips.iter().enumerate() {
                let c = match self.cursor_of(l) {
                    Some(c) => c,
                    None => {
                        self.cursors.push((*l, ((i as u64 * np / n + self.start % np) % np) as u32));
                        self.conns.push(0);
                        let h = if self.strays[stray_slot(l)] != 0 { Held::UNKNOWN } else { Held::default() };
                        self.held.push(Holders::new(h, self.ports.len()));
                        self.cursors.len() - 1
                    }
                };
                r.cur.push(c as u32);
            }
        }
        // New addresses may free a destination marked dry.
        self.dry = [None; DRY_MARKS];
        self.dry_len = 0;
        rings
    }

    /// Replaces the addresses of set `set`. Every LIP keeps its cursor (cursors belong
    /// to the LIP, see the module documentation). Control path (may allocate).
    pub fn set_lips(&mut self, set: usize, lips: &[Addr]) {
        let rings = self.rings(lips);
        self.sets[set] = rings;
        self.index();
    }

    /// Number of LIP sets.
    pub fn set_count(&self) -> usize {
        self.sets.len()
    }

    /// The addresses of set `set` (IPv4 first).
    pub fn lips(&self, set: usize) -> impl Iterator<Item = Addr> + '_ {
        self.sets[set].iter().flat_map(|r| r.lips.iter().copied())
    }

    /// Whether `a` is a LIP of any set (the classification of replies; a binary search).
    #[inline]
    pub fn is_lip(&self, a: &Addr) -> bool {
        self.all.binary_search(a).is_ok()
    }

    /// The ownership function in force.
    pub fn ownership(&self) -> PortOwnership {
        self.own
    }

    /// This pool's worker.
    pub fn worker(&self) -> u16 {
        self.worker
    }

    /// Ports this worker owns per LIP.
    pub fn ports_per_lip(&self) -> usize {
        self.ports.len()
    }

    /// Whether set `set` holds `lip` (a short scan of its family's addresses).
    #[inline]
    pub fn set_has(&self, set: usize, lip: &Addr) -> bool {
        self.sets.get(set).is_some_and(|r| r[usize::from(!lip.is_v4())].lips.contains(lip))
    }

    /// Whether `lip:lport` may be handed out from set `set` by this worker: `lip` is one
    /// of the set's and `lport` one of the worker's ports in the range (whether it is
    /// free towards a destination is for [`known_free`](Self::known_free) or the
    /// connection table to say).
    #[inline]
    pub fn can_take(&self, set: usize, lip: &Addr, lport: u16) -> bool {
        self.set_has(set, lip) && self.slot[usize::from(lport)] != NOT_OWNED
    }

    /// Where `lip`'s cursor stands: the port it probes next (diagnostics, tests).
    pub fn cursor(&self, lip: &Addr) -> Option<u16> {
        self.cursor_of(lip).map(|i| self.ports[self.cursors[i].1 as usize])
    }

    /// Picks `(LIP, lport)` from set `set` for real server `rip:rport`: LIPs of its
    /// family in turn, each from its cursor, taking the first port known free towards
    /// `proto`, `rip:rport` (see the module documentation) or for which
    /// `in_use(lip, port)` is false (the caller checks its outbound key). Probes at
    /// most `min(max_probes, ports per LIP × LIPs)` ports, i.e. the whole owned range
    /// with the default bound; a refusal after a full sweep marks the destination dry
    /// and later calls for it are refused without probing until
    /// [`released`](Self::released) says a connection towards it was freed. No
    /// allocation.
    #[inline]
    pub fn alloc(
        &mut self,
        set: usize,
        proto: Proto,
        rip: Addr,
        rport: u16,
        mut in_use: impl FnMut(Addr, u16) -> bool,
    ) -> Result<(Addr, u16), AllocError> {
        let fam = usize::from(!rip.is_v4());
        let n = self.sets.get(set).map_or(0, |r| r[fam].lips.len() as u32);
        if n == 0 {
            return Err(AllocError::NoLip);
        }
        if self.is_dry(set, rip, rport) {
            return Err(AllocError::NoPort);
        }
        let print = dest_print(proto, &rip, rport);
        let ring = &mut self.sets[set][fam];
        let np = self.ports.len() as u32;
        let whole = np.saturating_mul(n);
        let tries = self.max_probes.min(whole);
        for _ in 0..tries {
            let li = ring.rr as usize;
            ring.rr = if ring.rr + 1 >= n { 0 } else { ring.rr + 1 };
            let cur = ring.cur[li] as usize;
            let c = &mut self.cursors[cur].1;
            let at = *c as usize;
            *c = if *c + 1 >= np { 0 } else { *c + 1 };
            let (lip, port) = (ring.lips[li], self.ports[at]);
            if self.held[cur].0[at].free_towards(print) || !in_use(lip, port) {
                return Ok((lip, port));
            }
        }
        if tries == whole {
            self.mark_dry(set, rip, rport);
        }
        Err(AllocError::NoPort)
    }

    /// Whether `rip:rport` is marked dry for set `set` (a full sweep found no port).
    #[inline]
    pub fn is_dry(&self, set: usize, rip: Addr, rport: u16) -> bool {
        self.dry_len > 0 && self.dry.contains(&Some(Dry { set: set as u32, rip, rport }))
    }

    /// Marks `rip:rport` dry for set `set` again (after a freed port towards it was
    /// taken at once, so it is as full as before). Nothing happens when every mark is
    /// in use.
    #[inline]
    pub fn mark_dry(&mut self, set: usize, rip: Addr, rport: u16) {
        let mark = Some(Dry { set: set as u32, rip, rport });
        if self.dry.contains(&mark) {
            return;
        }
        if let Some(slot) = self.dry.iter_mut().find(|d| d.is_none()) {
            *slot = mark;
            self.dry_len += 1;
        }
    }

    /// A connection was opened whose outbound key (the real server's reply) is `out`:
    /// its destination `out.dst:out.dport` is a LIP's port when `local` (FullNAT, SNAT;
    /// counted per LIP, [`SaPool::lip_conns`]), else the client's own address and port
    /// (NAT, DR, TUN), which matter only if they are a LIP's. Every connection is told,
    /// so that [`alloc`](Self::alloc) knows a port no connection holds, or whose
    /// holders go to other destinations, free without asking the table. A scan of the
    /// LIPs, per connection, never per packet.
    #[inline]
    pub fn opened(&mut self, out: &ConnKey, local: bool) {
        match self.cursor_of(&out.dst) {
            Some(i) => {
                if let Some(h) = self.held_mut(i, out.dport) {
                    h.open(dest_print(out.proto, &out.src, out.sport));
                }
                if local {
                    self.conns[i] += 1;
                }
            }
            None => {
                let s = &mut self.strays[stray_slot(&out.dst)];
                *s = s.saturating_add(1);
            }
        }
    }

    /// A connection [`opened`](Self::opened) with these arguments was freed.
    #[inline]
    pub fn closed(&mut self, out: &ConnKey, local: bool) {
        match self.cursor_of(&out.dst) {
            // (A stray whose address has a cursor since: that cursor was made unknown,
            // and its count here stays, which only keeps later cursors unknown.)
            Some(i) => {
                if let Some(h) = self.held_mut(i, out.dport) {
                    h.close(dest_print(out.proto, &out.src, out.sport));
                }
                if local {
                    self.conns[i] = self.conns[i].saturating_sub(1);
                }
            }
            None => {
                let s = &mut self.strays[stray_slot(&out.dst)];
                if *s != u8::MAX {
                    *s = s.saturating_sub(1);
                }
            }
        }
    }

    /// Whether the pool knows, without the table, that no connection has the
    /// outbound key `out` (its LIP port is held by no connection towards that
    /// destination).
    #[inline]
    pub fn known_free(&self, out: &ConnKey) -> bool {
        self.cursor_of(&out.dst)
            .and_then(|i| self.held(i, out.dport))
            .is_some_and(|h| h.free_towards(dest_print(out.proto, &out.src, out.sport)))
    }

    /// The index of `lip`'s cursor (and of its entries in `conns` and `held`): a scan
    /// of the LIPs.
    #[inline]
    fn cursor_of(&self, lip: &Addr) -> Option<usize> {
        self.cursors.iter().position(|(a, _)| a == lip)
    }

    /// Who holds port `lport` of the LIP of cursor `i`; `None` for a port this worker
    /// does not own (nothing is kept for it: the worker never hands it out).
    #[inline]
    fn held(&self, i: usize, lport: u16) -> Option<Held> {
        let at = self.slot[usize::from(lport)];
        (at != NOT_OWNED).then(|| self.held[i].0[usize::from(at)])
    }

    #[inline]
    fn held_mut(&mut self, i: usize, lport: u16) -> Option<&mut Held> {
        let at = self.slot[usize::from(lport)];
        (at != NOT_OWNED).then(|| &mut self.held[i].0[usize::from(at)])
    }

    /// How many live connections hold `lip:lport` (255: that many or more, or not
    /// known); `None` when `lip` has no cursor or the worker does not own `lport`
    /// (diagnostics, tests).
    pub fn holders(&self, lip: &Addr, lport: u16) -> Option<u8> {
        self.cursor_of(lip).and_then(|i| self.held(i, lport)).map(|h| h.n)
    }

    /// Per LIP this worker ever used: the connections holding one of its ports (a port
    /// serves one connection per real server).
    pub fn lip_conns(&self) -> impl Iterator<Item = (Addr, u64)> + '_ {
        self.cursors.iter().zip(&self.conns).map(|((a, _), n)| (*a, *n))
    }

    /// A connection towards `rip:rport` was freed: its destination is no longer dry.
    /// O(1) (nothing to do unless some destination is marked).
    #[inline]
    pub fn released(&mut self, rip: Addr, rport: u16) {
        if self.dry_len == 0 {
            return;
        }
        for d in &mut self.dry {
            if d.is_some_and(|d| d.rip == rip && d.rport == rport) {
                *d = None;
                self.dry_len -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ownership_partitions_every_port() {
        for n in 1..=17u32 {
            let o = PortOwnership::new(n).unwrap();
            assert!(o.slots().is_power_of_two());
            let mut count = vec![0u32; n as usize];
            let rules: Vec<Vec<(u16, u16)>> = (0..n as u16).map(|w| o.flow_rules(w)).collect();
            for p in 0..=u16::MAX {
                let w = o.owner(p);
                count[w as usize] += 1;
                // Exactly the owner's flow rules match (periodic: check the low ports).
                if p >= 2048 {
                    continue;
                }
                let matching: Vec<u16> =
                    (0..n as u16).filter(|w| rules[*w as usize].iter().any(|(v, m)| p & m == *v)).collect();
                assert_eq!(matching, vec![w]);
            }
            let (min, max) = (count.iter().min().unwrap(), count.iter().max().unwrap());
            let imbalance = (*max as f64 - *min as f64) / *min as f64;
            assert!(imbalance <= 0.0667, "n={n}: {imbalance}");
            if n.is_power_of_two() {
                assert_eq!(o.flow_rules(0).len(), 1);
                assert_eq!(min, max);
            }
        }
        assert!(PortOwnership::new(0).is_err());
        assert!(PortOwnership::new(5000).is_err());
    }

    fn r6() -> Addr {
        Addr::v6([0xfd, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])
    }

    #[test]
    fn alloc_round_robins_lips_and_owns_its_ports() {
        let o = PortOwnership::new(3).unwrap();
        let mut p = SaPool::new(o, 1, PortRange::default(), 16).unwrap();
        let l1 = Addr::v4([10, 0, 0, 1]);
        let l2 = Addr::v4([10, 0, 0, 2]);
        let l6 = Addr::v6([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let s = p.add_set(&[l1, l2, l6]);
        assert!(p.is_lip(&l2) && p.is_lip(&l6) && !p.is_lip(&Addr::v4([1, 1, 1, 1])));
        assert!(p.set_has(s, &l6) && !p.set_has(s, &Addr::v4([1, 1, 1, 1])));
        let a = p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, _| false).unwrap();
        let b = p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, _| false).unwrap();
        assert_ne!(a.0, b.0);
        assert_eq!(o.owner(a.1), 1);
        assert_eq!(p.alloc(s, Proto::Tcp, r6(), 80, |_, _| false).unwrap().0, l6);
        let s2 = p.add_set(&[l1]);
        assert_eq!(p.alloc(s2, Proto::Tcp, r6(), 80, |_, _| false), Err(AllocError::NoLip));
        assert_eq!(p.alloc(99, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, _| false), Err(AllocError::NoLip));
    }

    /// Ten ports, four probes at most per call: a refusal only after a full sweep,
    /// remembered until a connection towards the destination is freed.
    #[test]
    fn exhaustion_then_reuse() {
        let o = PortOwnership::new(1).unwrap();
        let range = PortRange { lo: 2000, hi: 2009 };
        let mut p = SaPool::new(o, 0, range, MAX_PORT_PROBES).unwrap();
        let l = Addr::v4([10, 0, 0, 1]);
        let s = p.add_set(&[l]);
        let mut used = HashSet::new();
        for _ in 0..10 {
            let (_, port) = p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, pt| used.contains(&pt)).unwrap();
            assert!((2000..=2009).contains(&port));
            assert!(used.insert(port));
            p.opened(&out(Addr::v4([10, 2, 0, 1]), l, port), true);
        }
        let mut probes = 0;
        assert_eq!(
            p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, pt| {
                probes += 1;
                used.contains(&pt)
            }),
            Err(AllocError::NoPort)
        );
        assert_eq!(probes, 10, "the whole range is probed before refusing");
        // Dry: refused without probing, for this destination only.
        used.remove(&2007);
        p.closed(&out(Addr::v4([10, 2, 0, 1]), l, 2007), true);
        assert_eq!(
            p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, _| panic!("probed a dry destination")),
            Err(AllocError::NoPort)
        );
        assert!(p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 81, |_, pt| used.contains(&pt)).is_ok());
        p.released(Addr::v4([10, 2, 0, 1]), 80);
        assert_eq!(p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, pt| used.contains(&pt)), Ok((l, 2007)));
    }

    /// A probe bound below the range: a refusal is not a full sweep and marks nothing;
    /// the cursor goes on, so the next calls find the lone free port.
    #[test]
    fn bounded_probes_continue_where_they_left_off() {
        let o = PortOwnership::new(1).unwrap();
        let mut p = SaPool::new(o, 0, PortRange { lo: 2000, hi: 2009 }, 4).unwrap();
        let l = Addr::v4([10, 0, 0, 1]);
        let s = p.add_set(&[l]);
        let used: HashSet<u16> = (2000..=2009).filter(|x| *x != 2009).collect();
        for pt in &used {
            p.opened(&out(Addr::v4([10, 2, 0, 1]), l, *pt), true);
        }
        assert_eq!(
            p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, pt| used.contains(&pt)),
            Err(AllocError::NoPort)
        );
        assert_eq!(
            p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, pt| used.contains(&pt)),
            Err(AllocError::NoPort)
        );
        assert_eq!(p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, pt| used.contains(&pt)), Ok((l, 2009)));
    }

    /// Cursors belong to the LIP: emptying a set and filling it again, or a second
    /// set with the same LIP, continues where the LIP stood.
    #[test]
    fn cursors_survive_set_changes() {
        let o = PortOwnership::new(1).unwrap();
        let mut p = SaPool::new(o, 0, PortRange { lo: 3000, hi: 3099 }, MAX_PORT_PROBES).unwrap();
        let l = Addr::v4([10, 0, 0, 1]);
        let s = p.add_set(&[l]);
        for want in 3000..3040 {
            assert_eq!(p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, _| false), Ok((l, want)));
        }
        assert_eq!(p.cursor(&l), Some(3040));
        p.set_lips(s, &[]);
        assert_eq!(p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, _| false), Err(AllocError::NoLip));
        p.set_lips(s, &[l]);
        assert_eq!(p.alloc(s, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, _| false), Ok((l, 3040)));
        let s2 = p.add_set(&[l]);
        assert_eq!(p.alloc(s2, Proto::Tcp, Addr::v4([10, 2, 0, 1]), 80, |_, _| false), Ok((l, 3041)));
        // A new LIP beside it starts spread over the range.
        let l2 = Addr::v4([10, 0, 0, 2]);
        p.set_lips(s, &[l, l2]);
        assert_eq!(p.cursor(&l), Some(3042));
        assert_eq!(p.cursor(&l2), Some(3050));
    }

    /// The outbound key of a connection towards `rs:80` on `lip:lport`.
    fn out(rs: Addr, lip: Addr, lport: u16) -> ConnKey {
        ConnKey::new(Proto::Tcp, rs, 80, lip, lport)
    }

    /// A port no connection holds, or whose holders (up to two) all go to other
    /// destinations, is taken without asking the table; one held towards the same
    /// destination, or by more than two at once, is probed. A NAT connection on a LIP's
    /// address holds its port too, without counting as the LIP's connection.
    #[test]
    fn ports_known_free_skip_the_probe() {
        let o = PortOwnership::new(1).unwrap();
        let mut p = SaPool::new(o, 0, PortRange { lo: 2000, hi: 2001 }, MAX_PORT_PROBES).unwrap();
        let l = Addr::v4([10, 0, 0, 1]);
        let s = p.add_set(&[l]);
        let [a, b, c, d] = [1, 2, 3, 4].map(|i| Addr::v4([10, 2, 0, i]));
        let prints = [a, b, c, d].map(|r| dest_print(Proto::Tcp, &r, 80));
        assert!((1..4).all(|i| !prints[..i].contains(&prints[i])), "distinct prints: {prints:?}");
        assert_ne!(dest_print(Proto::Udp, &a, 80), prints[0]);
        let never = |_: Addr, _: u16| -> bool { panic!("probed a port known free") };
        assert_eq!(p.alloc(s, Proto::Tcp, a, 80, never), Ok((l, 2000)));
        p.opened(&out(a, l, 2000), true);
        p.opened(&out(b, l, 2001), false);
        assert_eq!((p.holders(&l, 2000), p.holders(&l, 2001)), (Some(1), Some(1)));
        assert_eq!(p.lip_conns().collect::<Vec<_>>(), vec![(l, 1)]);
        // 2001 is held towards b only.
        assert_eq!(p.alloc(s, Proto::Tcp, a, 80, never), Ok((l, 2001)));
        p.opened(&out(a, l, 2001), true);
        // Both ports held towards a: probed (and found taken), a full sweep.
        let mut probed = Vec::new();
        let got = p.alloc(s, Proto::Tcp, a, 80, |_, pt| {
            probed.push(pt);
            true
        });
        assert_eq!((got, probed), (Err(AllocError::NoPort), vec![2000, 2001]));
        assert!(p.known_free(&out(c, l, 2000)) && p.known_free(&out(c, l, 2001)));
        assert!(!p.known_free(&out(b, l, 2001)) && p.known_free(&out(b, l, 2000)));
        // A third holder: nothing is known of 2001 until it is free again.
        p.opened(&out(c, l, 2001), true);
        assert!(!p.known_free(&out(d, l, 2001)));
        p.closed(&out(c, l, 2001), true);
        p.closed(&out(b, l, 2001), false);
        assert!(!p.known_free(&out(d, l, 2001)), "holders unknown until the port is free");
        p.closed(&out(a, l, 2001), true);
        assert!(p.known_free(&out(a, l, 2001)) && p.holders(&l, 2001) == Some(0));
        // Two holders, one leaves: the other's destination is still known.
        p.opened(&out(b, l, 2001), true);
        p.opened(&out(c, l, 2001), true);
        p.closed(&out(b, l, 2001), true);
        assert!(p.known_free(&out(b, l, 2001)) && !p.known_free(&out(c, l, 2001)));
        p.closed(&out(c, l, 2001), true);
        assert_eq!(p.lip_conns().collect::<Vec<_>>(), vec![(l, 1)]);
        assert_eq!(p.holders(&Addr::v4([10, 0, 0, 9]), 2000), None);
        assert!(!p.known_free(&out(a, Addr::v4([10, 0, 0, 9]), 2000)));
        // The count is sticky at 255.
        for _ in 0..300 {
            p.opened(&out(a, l, 2001), true);
        }
        p.closed(&out(a, l, 2001), true);
        assert_eq!(p.holders(&l, 2001), Some(u8::MAX));
        assert!(!p.known_free(&out(b, l, 2001)));
    }

    /// A LIP added while a connection lives on its address without a cursor (a NAT
    /// client's, a peer's synced LIP) cannot know who holds its ports: every port of
    /// it is probed. One added once such connections of other addresses, or of its own,
    /// have ended knows.
    #[test]
    fn a_lip_added_over_strays_probes_every_port() {
        let o = PortOwnership::new(1).unwrap();
        let mut p = SaPool::new(o, 0, PortRange { lo: 2000, hi: 2003 }, MAX_PORT_PROBES).unwrap();
        let [l1, l2, l3, l4] = [1, 2, 3, 4].map(|i| Addr::v4([10, 0, 0, i]));
        assert!(stray_slot(&l2) != stray_slot(&l3) && stray_slot(&l2) != stray_slot(&l4));
        let rs = Addr::v4([10, 2, 0, 1]);
        let s = p.add_set(&[l1]);
        p.opened(&out(rs, l2, 2000), true);
        p.opened(&out(rs, l4, 2000), false);
        p.closed(&out(rs, l4, 2000), false);
        p.set_lips(s, &[l1, l2, l3, l4]);
        assert_eq!(p.holders(&l1, 2000), Some(0), "a cursor made before keeps exact counts");
        assert_eq!(p.holders(&l3, 2000), Some(0), "no stray on its address");
        assert_eq!(p.holders(&l4, 2000), Some(0), "its stray has ended");
        assert_eq!(p.holders(&l2, 2000), Some(u8::MAX));
        p.closed(&out(rs, l2, 2000), true);
        assert_eq!(p.holders(&l2, 2000), Some(u8::MAX), "unknown for good");
        p.set_lips(s, &[l2]);
        assert_eq!(p.cursor(&l2), Some(2001));
        let mut probed = Vec::new();
        let got = p.alloc(s, Proto::Tcp, rs, 80, |_, pt| {
            probed.push(pt);
            pt == 2001
        });
        assert_eq!((got, probed), (Ok((l2, 2002)), vec![2001, 2002]), "unheld ports probed all the same");
    }

    /// With several workers, a LIP keeps holders for its worker's own ports only (the
    /// only ones it hands out).
    #[test]
    fn holders_cover_the_workers_own_ports() {
        let o = PortOwnership::new(4).unwrap();
        let mut p = SaPool::new(o, 2, PortRange::default(), MAX_PORT_PROBES).unwrap();
        let l = Addr::v4([10, 0, 0, 1]);
        let s = p.add_set(&[l]);
        let rs = Addr::v4([10, 2, 0, 1]);
        let (lip, port) = p.alloc(s, Proto::Tcp, rs, 80, |_, _| panic!("probed a port nobody holds")).unwrap();
        assert_eq!((lip, o.owner(port)), (l, 2));
        p.opened(&out(rs, l, port), true);
        assert_eq!(p.holders(&l, port), Some(1));
        assert!(!p.known_free(&out(rs, l, port)));
        let other = (1024..=u16::MAX).find(|q| o.owner(*q) != 2).unwrap();
        p.opened(&out(rs, l, other), true);
        assert_eq!(p.holders(&l, other), None);
        assert!(!p.known_free(&out(rs, l, other)));
        p.closed(&out(rs, l, other), true);
        p.closed(&out(rs, l, port), true);
        assert_eq!(p.lip_conns().collect::<Vec<_>>(), vec![(l, 0)]);
        assert_eq!(p.holders(&l, port), Some(0));
    }

    #[test]
    fn bad_configs() {
        let o = PortOwnership::new(2).unwrap();
        assert!(SaPool::new(o, 2, PortRange::default(), 1).is_err());
        assert!(SaPool::new(o, 0, PortRange { lo: 0, hi: 10 }, 1).is_err());
        assert!(SaPool::new(o, 1, PortRange { lo: 10, hi: 10 }, 1).is_err());
    }
}
