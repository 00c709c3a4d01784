//! [`HopCache`]: one worker's resolved next hops (outgoing port, next-hop address and
//! its MAC), shared by the connections whose packets take them. A connection keeps the
//! slot of its next hop per direction ([`fnat::conn::Conn::hop`]), so that its
//! established packets leave without a route lookup or a neighbour lookup: the design's
//! "route + neighbour (cached in the connection)".
//!
//! What keeps a slot true:
//! - **Routes.** A slot holds the next hop the routes gave when it was filled. When the
//!   route table changes (its [`netstack::Stamp`]), the cache empties and no slot is
//!   used until every connection has forgotten its slots (a walk of the connection pool,
//!   [`Node::tend_hops`](crate::Node::tend_hops), a slice per loop): a slot a connection
//!   kept from before could otherwise name another next hop by then. Meanwhile packets
//!   are routed as if there were no cache.
//! - **Neighbours.** When the neighbour table changes, each slot asks it again for its
//!   next hop's MAC on its next use, and serves nothing while the neighbour is unknown.
//! - **Ports.** A slot names the port by index; the port's MAC, MTU and VLAN are read at
//!   each send. Ports go away only with the routes through them.
//! - **Destinations.** A connection's packets going one way always have the same
//!   destination (its RIP in, its CIP out: [`fnat::engine::Verdict::Forward`]), so the
//!   same route.

use std::collections::HashMap;
use std::net::IpAddr;

use fnat::conn::NO_HOP;
use fnat::hash::SeededFold;
use netstack::{NeighTable, RouteTable, Stamp};
use wire::EthernetAddress;

/// Slots: as many as a connection's 16-bit field can name ([`NO_HOP`] names none). A
/// worker that meets more next hops than this routes the rest packet by packet.
pub const MAX_HOPS: usize = NO_HOP as usize;
/// Slots made room for up front (more are added as next hops are met, to `MAX_HOPS`).
const INITIAL_HOPS: usize = 1024;
/// Entries of the memo of recently handed-out slots ([`HopCache::insert`]).
const RECENT: usize = 64;
/// Connection slots whose next-hop slots are forgotten per worker loop after a route
/// change (a sequential write: a 1 million connection pool takes 16 loops).
pub const FORGET_PER_LOOP: u32 = 65_536;

/// One resolved next hop.
#[derive(Debug, Clone, Copy)]
struct Hop {
    ip: IpAddr,
    mac: EthernetAddress,
    port: u16,
    /// The neighbour table's state `mac` was read from.
    neighs: Stamp,
}

/// A next hop as a connection's packets use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Via {
    /// The port (index into [`crate::Net::ports`]).
    pub port: usize,
    /// The next-hop address.
    pub ip: IpAddr,
    /// Its MAC.
    pub mac: EthernetAddress,
}

/// One worker's next hops (see the module documentation).
#[derive(Debug)]
pub struct HopCache {
    hops: Vec<Hop>,
    index: HashMap<(u16, IpAddr), u16, SeededFold>,
    /// The route table the slots were resolved with.
    routes: Stamp,
    /// The neighbour table now (slots read with another one ask again).
    neighs: Stamp,
    /// Slots handed out lately, by the last byte of their address: a new connection's
    /// next hop (a gateway, one of a few real servers) is mostly found here, without
    /// hashing (a memo: a key may have been evicted by another with the same byte).
    recent: [Option<((u16, IpAddr), u16)>; RECENT],
    /// Some connection may hold a slot (a route change must then make them forget).
    handed_out: bool,
    /// Where the walk making connections forget their slots stands; no slot is used or
    /// handed out while it runs.
    forgetting: Option<u32>,
}

impl Default for HopCache {
    fn default() -> Self {
        HopCache::new()
    }
}

impl HopCache {
    /// An empty cache.
    pub fn new() -> HopCache {
        HopCache {
            hops: Vec::with_capacity(INITIAL_HOPS),
            index: HashMap::with_capacity_and_hasher(INITIAL_HOPS, SeededFold::random()),
            routes: Stamp::default(),
            neighs: Stamp::default(),
            recent: [None; RECENT],
            handed_out: false,
            forgetting: None,
        }
    }

    /// Follows the tables a packet is about to be routed with: new routes empty the
    /// cache (and start the walk if slots were handed out); new neighbours make each
    /// slot check its MAC on its next use. Two comparisons when nothing changed.
    #[inline]
    pub fn follow(&mut self, routes: &RouteTable, neighs: &NeighTable) {
        if routes.stamp() != self.routes {
            self.routes = routes.stamp();
            self.hops.clear();
            self.index.clear();
            self.recent = [None; RECENT];
            if std::mem::take(&mut self.handed_out) {
                self.forgetting = Some(0);
            }
        }
        self.neighs = neighs.stamp();
    }

    /// The next hop in `slot` (a connection's), if it can be used as it is.
    #[inline]
    pub fn get(&mut self, slot: u16, neighs: &NeighTable) -> Option<Via> {
        if self.forgetting.is_some() {
            return None;
        }
        let h = self.hops.get_mut(slot as usize)?;
        if h.neighs != self.neighs {
            h.mac = neighs.lookup(h.ip)?.mac;
            h.neighs = self.neighs;
        }
        Some(Via { port: h.port as usize, ip: h.ip, mac: h.mac })
    }

    /// Keeps a next hop just resolved; returns the slot for the connection to keep
    /// ([`NO_HOP`] when the cache is full or forgetting).
    pub fn insert(&mut self, via: Via) -> u16 {
        if self.forgetting.is_some() {
            return NO_HOP;
        }
        let key = (via.port as u16, via.ip);
        let memo = recent_index(via.ip);
        let known = match self.recent[memo] {
            Some((k, s)) if k == key => Some(s),
            _ => self.index.get(&key).copied(),
        };
        let slot = match known {
            Some(s) => s,
            None if self.hops.len() < MAX_HOPS => {
                let s = self.hops.len() as u16;
                self.hops.push(Hop { ip: via.ip, mac: via.mac, port: key.0, neighs: self.neighs });
                self.index.insert(key, s);
                s
            }
            None => return NO_HOP,
        };
        let h = &mut self.hops[slot as usize];
        (h.mac, h.neighs) = (via.mac, self.neighs);
        self.recent[memo] = Some((key, slot));
        self.handed_out = true;
        slot
    }

    /// Where the walk making connections forget their slots stands (`None`: no walk).
    pub fn forgetting(&self) -> Option<u32> {
        self.forgetting
    }

    /// The walk went on to `next` (`None`: every connection has forgotten; slots are
    /// used again).
    pub fn forgot_up_to(&mut self, next: Option<u32>) {
        self.forgetting = next;
    }

    /// Next hops held.
    pub fn len(&self) -> usize {
        self.hops.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.hops.is_empty()
    }
}

/// Where `ip` sits in the memo of recent slots: its last byte.
#[inline]
fn recent_index(ip: IpAddr) -> usize {
    let last = match ip {
        IpAddr::V4(a) => a.octets()[3],
        IpAddr::V6(a) => a.octets()[15],
    };
    usize::from(last) % RECENT
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use netstack::{PortId, Route};

    use super::*;

    fn via(i: u32) -> Via {
        Via { port: 1, ip: IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i)), mac: EthernetAddress([2, 0, 0, 0, 0, 1]) }
    }

    #[test]
    fn one_slot_per_next_hop_until_full() {
        let mut c = HopCache::new();
        let (a, b) = (c.insert(via(1)), c.insert(via(2)));
        assert_ne!(a, b);
        assert_eq!(c.insert(via(1)), a, "found again (in the memo)");
        assert_eq!(c.insert(via(1 + RECENT as u32)), c.len() as u16 - 1, "another key, same memo entry");
        assert_eq!(c.insert(via(1)), a, "found again (in the index)");
        for i in 3..=MAX_HOPS as u32 {
            assert_ne!(c.insert(via(i)), NO_HOP);
        }
        assert_eq!(c.len(), MAX_HOPS);
        assert_eq!(c.insert(via(0)), NO_HOP, "full: routed packet by packet");
        assert_eq!(c.insert(via(2)), b, "known hops are still handed out");
    }

    #[test]
    fn new_routes_empty_the_cache_and_start_a_walk_only_if_slots_were_handed_out() {
        let neighs = NeighTable::new(8);
        let mut routes = RouteTable::new();
        routes.add(Route::connected("10.0.0.0/8".parse().unwrap(), PortId(1), None)).unwrap();
        let mut c = HopCache::new();
        c.follow(&routes, &neighs);
        assert_eq!(c.forgetting(), None, "nothing handed out yet: no walk");
        let s = c.insert(via(1));
        routes.add(Route::connected("10.1.0.0/16".parse().unwrap(), PortId(1), None)).unwrap();
        c.follow(&routes, &neighs);
        assert!(c.is_empty());
        assert_eq!(c.forgetting(), Some(0), "connections must forget their slots");
        assert_eq!(c.get(s, &neighs), None, "no slot is used meanwhile");
        assert_eq!(c.insert(via(1)), NO_HOP, "nor handed out");
        c.forgot_up_to(None);
        assert_eq!(c.insert(via(1)), 0);
        let same = routes.clone();
        c.follow(&same, &neighs);
        assert_eq!(c.len(), 1, "a clone is the same contents: kept");
    }
}
