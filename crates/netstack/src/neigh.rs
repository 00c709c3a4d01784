//! Neighbours: the MAC address and port of each next hop, and the packets waiting for
//! one to be resolved.
//!
//! [`NeighTable`] maps a next-hop IP to its MAC. Workers call [`NeighTable::lookup`] per
//! packet (FullNAT caches the answer in the connection); the control thread fills the
//! table from ARP and neighbour discovery ([`NeighTable::learn`]), from configuration
//! ([`NeighTable::insert_static`]), and ages it ([`NeighTable::expire`]).
//!
//! [`Pending`] holds the packets that found no neighbour, per next hop, in bounded
//! queues preallocated at construction, and tells the caller when to send (or resend)
//! the ARP request / neighbour solicitation and when to give up.
//!
//! Entries are keyed by the IP address alone: an IPv6 link-local next hop (`fe80::1`)
//! that exists on two ports at once is one entry (the last learned). Load balancers
//! rarely see that; keying by (port, address) is the fix if they do.

use core::fmt;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};
use wire::EthernetAddress;

use crate::PortId;

/// How a neighbour entry came to be and how fresh it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeighState {
    /// Configured by the operator: never overwritten by learning, never aged.
    Static,
    /// Learned recently (within the reachable time).
    Reachable,
    /// Learned a while ago; still used, but removed if not confirmed again.
    Stale,
}

impl fmt::Display for NeighState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NeighState::Static => "static",
            NeighState::Reachable => "reachable",
            NeighState::Stale => "stale",
        })
    }
}

/// A neighbour: where frames for a next hop go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NeighEntry {
    /// The neighbour's MAC address.
    pub mac: EthernetAddress,
    /// The port it was learned on (or configured for).
    pub port: PortId,
    /// Static, reachable or stale.
    pub state: NeighState,
    /// When it was configured or last confirmed, in milliseconds of the caller's clock.
    pub updated: u64,
}

/// What [`NeighTable::learn`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Learned {
    /// A new entry.
    Added,
    /// An existing learned entry got a new MAC or port (e.g. after a failover).
    Changed,
    /// An existing learned entry was confirmed unchanged; it is reachable again.
    Refreshed,
    /// A static entry exists; learning does not touch it.
    KeptStatic,
    /// The table holds its maximum of learned entries; nothing was added.
    Full,
}

/// What [`NeighTable::expire`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Expired {
    /// Reachable entries that became stale.
    pub staled: usize,
    /// Stale entries removed.
    pub removed: usize,
}

/// The neighbour table (see the module documentation). `Clone + Send + Sync`.
///
/// Keys are learned from the network, so the map keeps the standard seeded hasher
/// rather than the fast one the configured tables use.
#[derive(Debug, Clone)]
pub struct NeighTable {
    map: HashMap<IpAddr, NeighEntry>,
    max_learned: usize,
    learned: usize,
}

impl NeighTable {
    /// An empty table that holds at most `max_learned` learned entries (static ones
    /// are not counted), with room for them reserved now.
    pub fn new(max_learned: usize) -> NeighTable {
        NeighTable { map: HashMap::with_capacity(max_learned), max_learned, learned: 0 }
    }

    /// Adds or replaces a static entry (operator configuration) and returns the entry
    /// it replaced.
    pub fn insert_static(&mut self, ip: IpAddr, mac: EthernetAddress, port: PortId, now: u64) -> Option<NeighEntry> {
        let e = NeighEntry { mac, port, state: NeighState::Static, updated: now };
        let old = self.map.insert(ip, e);
        if old.is_some_and(|o| o.state != NeighState::Static) {
            self.learned -= 1;
        }
        old
    }

    /// Records that `ip` is at `mac` on `port`, as seen in an ARP packet or a neighbour
    /// advertisement / solicitation. Static entries are kept as they are.
    pub fn learn(&mut self, ip: IpAddr, mac: EthernetAddress, port: PortId, now: u64) -> Learned {
        if let Some(e) = self.map.get_mut(&ip) {
            if e.state == NeighState::Static {
                return Learned::KeptStatic;
            }
            let changed = e.mac != mac || e.port != port;
            *e = NeighEntry { mac, port, state: NeighState::Reachable, updated: now };
            return if changed { Learned::Changed } else { Learned::Refreshed };
        }
        if self.learned >= self.max_learned {
            return Learned::Full;
        }
        self.map.insert(ip, NeighEntry { mac, port, state: NeighState::Reachable, updated: now });
        self.learned += 1;
        Learned::Added
    }

    /// The neighbour for a next hop. Per packet: one hash probe. Stale entries are
    /// returned too (they are still the best knowledge).
    #[inline]
    pub fn lookup(&self, ip: IpAddr) -> Option<&NeighEntry> {
        self.map.get(&ip)
    }

    /// Removes an entry, static or learned, and returns it.
    pub fn delete(&mut self, ip: IpAddr) -> Option<NeighEntry> {
        let old = self.map.remove(&ip);
        if old.is_some_and(|o| o.state != NeighState::Static) {
            self.learned -= 1;
        }
        old
    }

    /// Ages the learned entries at time `now` (ms): a reachable entry not confirmed for
    /// `reachable_ms` becomes stale, and a stale one not confirmed for twice that is
    /// removed. Static entries never age.
    pub fn expire(&mut self, now: u64, reachable_ms: u64) -> Expired {
        let mut out = Expired::default();
        self.map.retain(|_, e| {
            let age = now.saturating_sub(e.updated);
            match e.state {
                NeighState::Static => true,
                NeighState::Reachable if age >= reachable_ms => {
                    e.state = NeighState::Stale;
                    out.staled += 1;
                    true
                }
                NeighState::Reachable => true,
                NeighState::Stale if age >= reachable_ms.saturating_mul(2) => {
                    out.removed += 1;
                    false
                }
                NeighState::Stale => true,
            }
        });
        self.learned -= out.removed;
        out
    }

    /// Every entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (IpAddr, &NeighEntry)> {
        self.map.iter().map(|(ip, e)| (*ip, e))
    }

    /// The number of entries, static and learned.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the table is empty.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

/// How long to wait for an answer before asking again, in ms.
pub const RETRY_INTERVAL_MS: u64 = 1000;

/// How many requests to send before giving up on a next hop.
pub const MAX_TRIES: u8 = 3;

/// One next hop being resolved.
#[derive(Debug)]
struct Slot<T> {
    /// `None` when the slot is free.
    next_hop: Option<IpAddr>,
    port: PortId,
    queue: VecDeque<T>,
    /// Requests sent so far.
    tries: u8,
    /// When the next request (or the give-up) is due, in ms.
    next_due: u64,
}

/// What [`Pending::due_retries`] asks the caller to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Due<T> {
    /// Send an ARP request (IPv4) or neighbour solicitation (IPv6) for `next_hop` out of
    /// `port`; `attempt` counts from 1 to [`MAX_TRIES`].
    Request {
        /// The port to send it from.
        port: PortId,
        /// The address to resolve.
        next_hop: IpAddr,
        /// Which attempt this is.
        attempt: u8,
    },
    /// Resolution of `next_hop` failed: this packet waited for it and is handed back to
    /// be freed and counted. One item per packet.
    GaveUp {
        /// The address that did not resolve.
        next_hop: IpAddr,
        /// The packet that waited.
        packet: T,
    },
}

/// Packets waiting for a next hop to be resolved (see the module documentation),
/// generic over the packet type (an mbuf in the dataplane, anything in tests).
///
/// All memory is reserved by [`Pending::new`]: `max_next_hops` slots, each with a queue
/// of `max_per_hop` packets, so pushing never allocates. Slots are found by a linear
/// scan: keep `max_next_hops` small (tens to a few hundred), as the number of next hops
/// being resolved at one time is.
#[derive(Debug)]
pub struct Pending<T> {
    slots: Vec<Slot<T>>,
    max_per_hop: usize,
    active: usize,
}

impl<T> Pending<T> {
    /// Room for `max_next_hops` unresolved next hops with up to `max_per_hop` packets
    /// each, allocated now.
    pub fn new(max_next_hops: usize, max_per_hop: usize) -> Pending<T> {
        let slots = (0..max_next_hops)
            .map(|_| Slot {
                next_hop: None,
                port: PortId(0),
                queue: VecDeque::with_capacity(max_per_hop),
                tries: 0,
                next_due: 0,
            })
            .collect();
        Pending { slots, max_per_hop, active: 0 }
    }

    /// Queues `packet` until `next_hop` (on `port`) is resolved. A next hop not yet
    /// waiting gets a slot whose first request is due at once (see
    /// [`Pending::due_retries`]). Gives the packet back if the next hop's queue is full
    /// or every slot is in use: the caller drops and counts it. No allocation.
    pub fn push(&mut self, port: PortId, next_hop: IpAddr, packet: T) -> Result<(), T> {
        if let Some(s) = self.slots.iter_mut().find(|s| s.next_hop == Some(next_hop)) {
            if s.queue.len() >= self.max_per_hop {
                return Err(packet);
            }
            s.queue.push_back(packet);
            return Ok(());
        }
        if self.max_per_hop == 0 {
            return Err(packet);
        }
        let Some(s) = self.slots.iter_mut().find(|s| s.next_hop.is_none()) else {
            return Err(packet);
        };
        s.next_hop = Some(next_hop);
        s.port = port;
        s.tries = 0;
        s.next_due = 0;
        s.queue.push_back(packet);
        self.active += 1;
        Ok(())
    }

    /// The first next hop with waiting packets for which `resolved` says yes (e.g. its
    /// neighbour has just been learned), so the caller can [`Pending::take`] it.
    pub fn find_waiting(&self, mut resolved: impl FnMut(IpAddr) -> bool) -> Option<IpAddr> {
        self.slots.iter().filter_map(|s| s.next_hop).find(|&h| resolved(h))
    }

    /// Whether packets wait for `next_hop`.
    pub fn is_waiting(&self, next_hop: IpAddr) -> bool {
        self.slots.iter().any(|s| s.next_hop == Some(next_hop))
    }

    /// The packets that waited for `next_hop`, in arrival order, now that it is known;
    /// frees its slot. Packets left in the iterator when it is dropped are dropped too.
    pub fn take(&mut self, next_hop: IpAddr) -> impl Iterator<Item = T> + '_ {
        let active = &mut self.active;
        self.slots
            .iter_mut()
            .find(|s| s.next_hop == Some(next_hop))
            .map(|s| {
                s.next_hop = None;
                *active -= 1;
                s.queue.drain(..)
            })
            .into_iter()
            .flatten()
    }

    /// What is due at time `now` (ms): a [`Due::Request`] for each next hop whose first
    /// request was never sent or whose last one went unanswered for
    /// [`RETRY_INTERVAL_MS`]; and, for a next hop whose [`MAX_TRIES`] requests all went
    /// unanswered, a [`Due::GaveUp`] per queued packet, after which its slot is free.
    /// Whatever the caller does not consume stays due for the next call. No allocation.
    pub fn due_retries(&mut self, now: u64) -> DueRetries<'_, T> {
        DueRetries { pending: self, now, idx: 0 }
    }

    /// The number of next hops being resolved.
    pub fn next_hops(&self) -> usize {
        self.active
    }

    /// The number of packets waiting, over all next hops.
    pub fn queued(&self) -> usize {
        self.slots.iter().map(|s| s.queue.len()).sum()
    }
}

/// The iterator of [`Pending::due_retries`].
#[derive(Debug)]
pub struct DueRetries<'a, T> {
    pending: &'a mut Pending<T>,
    now: u64,
    idx: usize,
}

impl<T> Iterator for DueRetries<'_, T> {
    type Item = Due<T>;

    fn next(&mut self) -> Option<Due<T>> {
        while let Some(slot) = self.pending.slots.get_mut(self.idx) {
            let Some(next_hop) = slot.next_hop else {
                self.idx += 1;
                continue;
            };
            if self.now < slot.next_due {
                self.idx += 1;
                continue;
            }
            if slot.tries >= MAX_TRIES {
                if let Some(packet) = slot.queue.pop_front() {
                    return Some(Due::GaveUp { next_hop, packet });
                }
                slot.next_hop = None;
                self.pending.active -= 1;
                self.idx += 1;
                continue;
            }
            slot.tries += 1;
            slot.next_due = self.now.saturating_add(RETRY_INTERVAL_MS);
            self.idx += 1;
            return Some(Due::Request { port: slot.port, next_hop, attempt: slot.tries });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const MAC1: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
    const MAC2: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    #[test]
    fn static_entries_win_over_learning() {
        let mut t = NeighTable::new(8);
        assert_eq!(t.insert_static(ip("10.0.0.1"), MAC1, PortId(0), 0), None);
        assert_eq!(t.learn(ip("10.0.0.1"), MAC2, PortId(1), 5), Learned::KeptStatic);
        let e = t.lookup(ip("10.0.0.1")).unwrap();
        assert_eq!((e.mac, e.port, e.state), (MAC1, PortId(0), NeighState::Static));
        // Static entries do not age.
        assert_eq!(t.expire(1_000_000, 30_000), Expired::default());
        assert!(t.lookup(ip("10.0.0.1")).is_some());
        // A static entry replaces a learned one.
        assert_eq!(t.learn(ip("fe80::1"), MAC2, PortId(1), 0), Learned::Added);
        let old = t.insert_static(ip("fe80::1"), MAC1, PortId(1), 1).unwrap();
        assert_eq!(old.state, NeighState::Reachable);
        assert_eq!(t.delete(ip("10.0.0.1")).unwrap().mac, MAC1);
        assert!(t.lookup(ip("10.0.0.1")).is_none());
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn learning_adds_refreshes_and_changes() {
        let mut t = NeighTable::new(8);
        assert_eq!(t.learn(ip("10.0.0.2"), MAC1, PortId(0), 100), Learned::Added);
        assert_eq!(t.learn(ip("10.0.0.2"), MAC1, PortId(0), 200), Learned::Refreshed);
        assert_eq!(t.lookup(ip("10.0.0.2")).unwrap().updated, 200);
        assert_eq!(t.learn(ip("10.0.0.2"), MAC2, PortId(0), 300), Learned::Changed, "failover moved the MAC");
        assert_eq!(t.lookup(ip("10.0.0.2")).unwrap().mac, MAC2);
        assert_eq!(t.iter().count(), 1);
    }

    #[test]
    fn expiry_stales_then_removes() {
        let mut t = NeighTable::new(8);
        t.learn(ip("10.0.0.2"), MAC1, PortId(0), 0);
        t.learn(ip("10.0.0.3"), MAC1, PortId(0), 20_000);
        assert_eq!(t.expire(29_999, 30_000), Expired { staled: 0, removed: 0 });
        assert_eq!(t.expire(30_000, 30_000), Expired { staled: 1, removed: 0 });
        assert_eq!(t.lookup(ip("10.0.0.2")).unwrap().state, NeighState::Stale, "stale is still usable");
        // Confirmation makes it reachable again.
        t.learn(ip("10.0.0.2"), MAC1, PortId(0), 40_000);
        assert_eq!(t.lookup(ip("10.0.0.2")).unwrap().state, NeighState::Reachable);
        assert_eq!(t.expire(60_000, 30_000), Expired { staled: 1, removed: 0 });
        assert_eq!(t.expire(100_000, 30_000), Expired { staled: 1, removed: 1 });
        assert!(t.lookup(ip("10.0.0.3")).is_none());
        assert_eq!(t.expire(200_000, 30_000), Expired { staled: 0, removed: 1 });
        assert!(t.is_empty());
    }

    #[test]
    fn learned_entries_are_bounded() {
        let mut t = NeighTable::new(2);
        t.insert_static(ip("10.0.0.100"), MAC1, PortId(0), 0);
        assert_eq!(t.learn(ip("10.0.0.1"), MAC1, PortId(0), 0), Learned::Added);
        assert_eq!(t.learn(ip("10.0.0.2"), MAC1, PortId(0), 0), Learned::Added);
        assert_eq!(t.learn(ip("10.0.0.3"), MAC1, PortId(0), 0), Learned::Full);
        assert_eq!(t.learn(ip("10.0.0.2"), MAC2, PortId(0), 1), Learned::Changed, "updates still work");
        t.delete(ip("10.0.0.1"));
        assert_eq!(t.learn(ip("10.0.0.3"), MAC1, PortId(0), 0), Learned::Added);
        assert_eq!(t.len(), 3);
    }

    #[test]
    fn pending_bounds() {
        let mut p: Pending<u32> = Pending::new(2, 3);
        for i in 0..3 {
            p.push(PortId(0), ip("10.0.0.1"), i).unwrap();
        }
        assert_eq!(p.push(PortId(0), ip("10.0.0.1"), 3), Err(3), "per-hop queue full");
        p.push(PortId(1), ip("10.0.0.2"), 10).unwrap();
        assert_eq!(p.push(PortId(0), ip("10.0.0.3"), 20), Err(20), "no free slot");
        assert_eq!((p.next_hops(), p.queued()), (2, 4));
        assert!(p.is_waiting(ip("10.0.0.1")) && !p.is_waiting(ip("10.0.0.3")));

        assert_eq!(p.take(ip("10.0.0.1")).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(p.take(ip("10.0.0.1")).count(), 0, "already taken");
        assert_eq!(p.take(ip("10.9.9.9")).count(), 0);
        // The freed slot is reused, with its preallocated queue.
        p.push(PortId(0), ip("10.0.0.3"), 20).unwrap();
        assert_eq!((p.next_hops(), p.queued()), (2, 2));

        let mut none: Pending<u32> = Pending::new(4, 0);
        assert_eq!(none.push(PortId(0), ip("10.0.0.1"), 1), Err(1));
        assert_eq!(none.next_hops(), 0);
    }

    #[test]
    fn pending_retries_then_gives_up() {
        let mut p: Pending<&'static str> = Pending::new(4, 4);
        p.push(PortId(1), ip("10.0.0.1"), "a").unwrap();
        p.push(PortId(1), ip("10.0.0.1"), "b").unwrap();
        let req = |attempt| Due::Request { port: PortId(1), next_hop: ip("10.0.0.1"), attempt };

        // First request at once, then one a second, three in all.
        assert_eq!(p.due_retries(5_000).collect::<Vec<_>>(), vec![req(1)]);
        assert_eq!(p.due_retries(5_999).count(), 0);
        p.push(PortId(1), ip("2001:db8::1"), "c").unwrap();
        let due: Vec<_> = p.due_retries(6_000).collect();
        assert_eq!(due.len(), 2);
        assert!(due.contains(&req(2)));
        assert!(due.contains(&Due::Request { port: PortId(1), next_hop: ip("2001:db8::1"), attempt: 1 }));
        let v6 = |attempt| Due::Request { port: PortId(1), next_hop: ip("2001:db8::1"), attempt };
        assert_eq!(p.due_retries(7_000).collect::<Vec<_>>(), vec![req(3), v6(2)]);

        // After the third request goes unanswered for a second: give up, hand back.
        let due: Vec<_> = p.due_retries(8_000).collect();
        assert!(due.contains(&v6(3)));
        let due: Vec<_> = due.into_iter().filter(|d| matches!(d, Due::GaveUp { .. })).collect();
        assert_eq!(
            due,
            vec![
                Due::GaveUp { next_hop: ip("10.0.0.1"), packet: "a" },
                Due::GaveUp { next_hop: ip("10.0.0.1"), packet: "b" }
            ]
        );
        assert!(!p.is_waiting(ip("10.0.0.1")));
        assert_eq!((p.next_hops(), p.queued()), (1, 1));
        // A new packet for it starts over.
        p.push(PortId(1), ip("10.0.0.1"), "d").unwrap();
        assert!(p.due_retries(8_001).any(|d| d == req(1)));
    }

    #[test]
    fn unconsumed_due_items_stay_due() {
        let mut p: Pending<u8> = Pending::new(2, 2);
        p.push(PortId(0), ip("10.0.0.1"), 1).unwrap();
        p.push(PortId(0), ip("10.0.0.1"), 2).unwrap();
        for t in [0, 1000, 2000] {
            assert_eq!(p.due_retries(t).count(), 1);
        }
        // Take only the first give-up; the second packet is handed back next time.
        assert_eq!(p.due_retries(3000).next(), Some(Due::GaveUp { next_hop: ip("10.0.0.1"), packet: 1 }));
        assert_eq!(p.due_retries(3000).collect::<Vec<_>>(), vec![Due::GaveUp { next_hop: ip("10.0.0.1"), packet: 2 }]);
        assert_eq!(p.next_hops(), 0);
    }

    #[test]
    fn shareable() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<NeighTable>();
        fn assert_send<T: Send>() {}
        assert_send::<Pending<Vec<u8>>>();
    }
}
