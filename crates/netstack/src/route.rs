//! The routing table: longest-prefix match for IPv4 and IPv6.
//!
//! Built and changed by the control thread (`rvsip route add ...`, connected routes
//! from [`crate::AddrTable::connected_routes`]), then published read-only to the
//! workers, which call [`RouteTable::lookup`] per packet. A change clones the table and
//! edits the clone, so the table is `Clone + Send + Sync` and holds no interior
//! mutability.
//!
//! Layout: per address family, one hash map per prefix length present, keyed by the
//! masked address (`u32` / `u128`), kept in descending order of length. A lookup masks
//! the destination with each length in turn and stops at the first hit: at most one
//! probe per distinct prefix length (typically a handful), no allocation, no
//! recursion. Several routes for the same prefix may coexist with different metrics;
//! the lowest metric wins, as in Linux.

use core::fmt;
use core::hash::Hash;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::hash::FastMap;
use crate::{Family, PortId, Stamp};

/// What kind of route this is, as in DPVS's `dpip route add ... scope ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Reachable through a gateway (or any route the operator adds without a scope).
    #[default]
    Global,
    /// Directly connected: the destination itself is the next hop (derived from the
    /// port's addresses, or added by hand).
    Link,
    /// Traffic *to* this prefix (normally one /32 or /128) belongs to the kernel: the
    /// worker hands it to the port's kernel twin instead of handling it.
    KniHost,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Global => "global",
            Scope::Link => "link",
            Scope::KniHost => "kni_host",
        })
    }
}

/// A route: packets for `prefix` leave through `dev`, to the gateway `via` if any,
/// otherwise straight to their destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Route {
    /// The destination prefix (host bits zero).
    pub prefix: IpNet,
    /// The gateway, if the destination is not on the link.
    #[serde(default)]
    pub via: Option<IpAddr>,
    /// The port packets leave through.
    pub dev: PortId,
    /// Connected, through a gateway, or handed to the kernel.
    #[serde(default)]
    pub scope: Scope,
    /// The preferred source address for packets the dataplane originates on this route.
    #[serde(default)]
    pub src: Option<IpAddr>,
    /// Preference among routes for the same prefix: lower wins.
    #[serde(default)]
    pub metric: u32,
}

impl Route {
    /// A directly connected route (scope link, no gateway).
    pub fn connected(prefix: IpNet, dev: PortId, src: Option<IpAddr>) -> Route {
        Route { prefix, via: None, dev, scope: Scope::Link, src, metric: 0 }
    }

    /// A route through the gateway `via` (scope global).
    pub fn via(prefix: IpNet, via: IpAddr, dev: PortId) -> Route {
        Route { prefix, via: Some(via), dev, scope: Scope::Global, src: None, metric: 0 }
    }

    /// A `kni_host` route: traffic to `prefix` goes to `dev`'s kernel twin.
    pub fn kni_host(prefix: IpNet, dev: PortId) -> Route {
        Route { prefix, via: None, dev, scope: Scope::KniHost, src: None, metric: 0 }
    }

    /// The neighbour a packet for `dst` is sent to: the gateway, or `dst` itself on a
    /// connected route.
    #[inline]
    pub fn next_hop(&self, dst: IpAddr) -> IpAddr {
        self.via.unwrap_or(dst)
    }

    /// The address family of the prefix.
    pub fn family(&self) -> Family {
        Family::of(&self.prefix.addr())
    }
}

impl fmt::Display for Route {
    /// `10.0.0.0/24 via 10.0.0.1 dev port 0 scope global src 10.0.0.5 metric 0`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.prefix)?;
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        write!(f, " dev {} scope {}", self.dev, self.scope)?;
        if let Some(s) = self.src {
            write!(f, " src {s}")?;
        }
        write!(f, " metric {}", self.metric)
    }
}

/// Why a route could not be added or deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// A route for this prefix with this metric exists already.
    #[error("route {prefix} metric {metric} exists")]
    Exists {
        /// The prefix.
        prefix: IpNet,
        /// The metric.
        metric: u32,
    },
    /// No such route.
    #[error("no route for {0}")]
    NotFound(IpNet),
    /// The prefix has bits set past its length (a typo more often than not).
    #[error("{given} has host bits set; did you mean {suggested}?")]
    HostBits {
        /// What was given.
        given: IpNet,
        /// The prefix with the host bits cleared.
        suggested: IpNet,
    },
    /// A gateway or source address of the other family than the prefix.
    #[error("{addr} is not of the address family of {prefix}")]
    FamilyMismatch {
        /// The offending address.
        addr: IpAddr,
        /// The prefix.
        prefix: IpNet,
    },
}

/// An address as the integer the per-length maps are keyed by.
trait Key: Copy + Eq + Hash {
    /// The address with the bits past `len` cleared (`len` at most the width).
    fn masked(self, len: u8) -> Self;
}

impl Key for u32 {
    #[inline]
    fn masked(self, len: u8) -> u32 {
        match len {
            0 => 0,
            l if l >= 32 => self,
            l => self & (u32::MAX << (32 - l)),
        }
    }
}

impl Key for u128 {
    #[inline]
    fn masked(self, len: u8) -> u128 {
        match len {
            0 => 0,
            l if l >= 128 => self,
            l => self & (u128::MAX << (128 - l)),
        }
    }
}

/// The routes of one prefix length.
#[derive(Debug, Clone)]
struct Level<K> {
    len: u8,
    /// Routes per masked prefix, sorted by metric (lowest first); never empty.
    routes: FastMap<K, Vec<Route>>,
}

/// The routes of one address family.
#[derive(Debug, Clone)]
struct Lpm<K> {
    /// One level per prefix length present, longest first.
    levels: Vec<Level<K>>,
}

impl<K> Default for Lpm<K> {
    fn default() -> Self {
        Lpm { levels: Vec::new() }
    }
}

impl<K: Key> Lpm<K> {
    fn add(&mut self, key: K, len: u8, route: Route) -> Result<(), RouteError> {
        let pos = match self.levels.binary_search_by(|l| len.cmp(&l.len)) {
            Ok(i) => i,
            Err(i) => {
                self.levels.insert(i, Level { len, routes: FastMap::default() });
                i
            }
        };
        let list = self.levels[pos].routes.entry(key).or_default();
        match list.binary_search_by_key(&route.metric, |r| r.metric) {
            Ok(_) => Err(RouteError::Exists { prefix: route.prefix, metric: route.metric }),
            Err(i) => {
                list.insert(i, route);
                Ok(())
            }
        }
    }

    fn del(&mut self, key: K, len: u8, metric: Option<u32>) -> Option<Route> {
        let pos = self.levels.iter().position(|l| l.len == len)?;
        let level = &mut self.levels[pos];
        let list = level.routes.get_mut(&key)?;
        let i = match metric {
            Some(m) => list.iter().position(|r| r.metric == m)?,
            None => 0,
        };
        let removed = list.remove(i);
        if list.is_empty() {
            level.routes.remove(&key);
            if level.routes.is_empty() {
                self.levels.remove(pos);
            }
        }
        Some(removed)
    }

    fn get(&self, key: K, len: u8) -> Option<&[Route]> {
        let level = self.levels.iter().find(|l| l.len == len)?;
        level.routes.get(&key).map(Vec::as_slice)
    }

    #[inline]
    fn lookup(&self, addr: K) -> Option<&Route> {
        for level in &self.levels {
            if let Some(list) = level.routes.get(&addr.masked(level.len)) {
                return list.first();
            }
        }
        None
    }

    fn iter(&self) -> impl Iterator<Item = &Route> {
        self.levels.iter().flat_map(|l| l.routes.values().flatten())
    }

    fn retain(&mut self, mut keep: impl FnMut(&Route) -> bool) -> usize {
        let mut removed = 0;
        for level in &mut self.levels {
            level.routes.retain(|_, list| {
                let before = list.len();
                list.retain(&mut keep);
                removed += before - list.len();
                !list.is_empty()
            });
        }
        self.levels.retain(|l| !l.routes.is_empty());
        removed
    }
}

/// The IPv4 and IPv6 routing tables (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    v4: Lpm<u32>,
    v6: Lpm<u128>,
    len: usize,
    stamp: Stamp,
}

impl RouteTable {
    /// An empty table.
    pub fn new() -> RouteTable {
        RouteTable::default()
    }

    /// Adds a route. Errors: the prefix has host bits set, the gateway or source is of
    /// the other family, or a route for the prefix with the same metric exists.
    pub fn add(&mut self, route: Route) -> Result<(), RouteError> {
        self.stamp = Stamp::fresh();
        let prefix = route.prefix;
        if prefix.trunc() != prefix {
            return Err(RouteError::HostBits { given: prefix, suggested: prefix.trunc() });
        }
        for addr in [route.via, route.src].into_iter().flatten() {
            if Family::of(&addr) != route.family() {
                return Err(RouteError::FamilyMismatch { addr, prefix });
            }
        }
        let len = prefix.prefix_len();
        match prefix {
            IpNet::V4(n) => self.v4.add(u32::from(n.network()), len, route)?,
            IpNet::V6(n) => self.v6.add(u128::from(n.network()), len, route)?,
        }
        self.len += 1;
        Ok(())
    }

    /// Deletes the route for `prefix` with `metric`, or the preferred one (lowest
    /// metric) if `metric` is `None`, and returns it.
    pub fn del(&mut self, prefix: IpNet, metric: Option<u32>) -> Result<Route, RouteError> {
        self.stamp = Stamp::fresh();
        let p = prefix.trunc();
        let len = p.prefix_len();
        let removed = match p {
            IpNet::V4(n) => self.v4.del(u32::from(n.network()), len, metric),
            IpNet::V6(n) => self.v6.del(u128::from(n.network()), len, metric),
        };
        let r = removed.ok_or(RouteError::NotFound(prefix))?;
        self.len -= 1;
        Ok(r)
    }

    /// The routes for exactly `prefix`, preferred first (empty if none).
    pub fn get(&self, prefix: IpNet) -> &[Route] {
        let p = prefix.trunc();
        let len = p.prefix_len();
        let found = match p {
            IpNet::V4(n) => self.v4.get(u32::from(n.network()), len),
            IpNet::V6(n) => self.v6.get(u128::from(n.network()), len),
        };
        found.unwrap_or(&[])
    }

    /// This state of the table's contents: changes with every route added or removed
    /// (a worker keeps the next hops it resolved until it does).
    #[inline]
    pub fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// The route for `dst`: the longest matching prefix, lowest metric among routes for
    /// that prefix. Per packet: no allocation, one hash probe per prefix length present.
    #[inline]
    pub fn lookup(&self, dst: IpAddr) -> Option<&Route> {
        match dst {
            IpAddr::V4(a) => self.lookup_v4(a),
            IpAddr::V6(a) => self.lookup_v6(a),
        }
    }

    /// [`RouteTable::lookup`] for an IPv4 destination.
    #[inline]
    pub fn lookup_v4(&self, dst: Ipv4Addr) -> Option<&Route> {
        self.v4.lookup(u32::from(dst))
    }

    /// [`RouteTable::lookup`] for an IPv6 destination.
    #[inline]
    pub fn lookup_v6(&self, dst: Ipv6Addr) -> Option<&Route> {
        self.v6.lookup(u128::from(dst))
    }

    /// Every route: IPv4 first, longer prefixes first; the order among prefixes of one
    /// length is unspecified (sort for display).
    pub fn iter(&self) -> impl Iterator<Item = &Route> {
        self.v4.iter().chain(self.v6.iter())
    }

    /// Keeps only the routes `keep` approves of (e.g. drop every route through a port
    /// being removed) and returns how many were removed.
    pub fn retain(&mut self, mut keep: impl FnMut(&Route) -> bool) -> usize {
        self.stamp = Stamp::fresh();
        let removed = self.v4.retain(&mut keep) + self.v6.retain(&mut keep);
        self.len -= removed;
        removed
    }

    /// The number of routes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there is no route at all.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn via(prefix: &str, gw: &str, dev: u16) -> Route {
        Route::via(net(prefix), ip(gw), PortId(dev))
    }

    fn dev_of(t: &RouteTable, dst: &str) -> Option<(IpNet, PortId)> {
        t.lookup(ip(dst)).map(|r| (r.prefix, r.dev))
    }

    #[test]
    fn table_is_shareable() {
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<RouteTable>();
    }

    #[test]
    fn ipv4_longest_prefix_wins() {
        let mut t = RouteTable::new();
        t.add(via("0.0.0.0/0", "192.168.0.1", 0)).unwrap();
        t.add(Route::connected(net("10.0.0.0/8"), PortId(1), None)).unwrap();
        t.add(Route::connected(net("10.1.0.0/16"), PortId(2), None)).unwrap();
        t.add(via("10.1.2.0/24", "10.1.0.254", 3)).unwrap();
        t.add(Route::kni_host(net("10.1.2.3/32"), PortId(4))).unwrap();
        assert_eq!(t.len(), 5);

        assert_eq!(dev_of(&t, "8.8.8.8"), Some((net("0.0.0.0/0"), PortId(0))));
        assert_eq!(dev_of(&t, "10.200.0.1"), Some((net("10.0.0.0/8"), PortId(1))));
        assert_eq!(dev_of(&t, "10.1.255.255"), Some((net("10.1.0.0/16"), PortId(2))));
        assert_eq!(dev_of(&t, "10.1.2.4"), Some((net("10.1.2.0/24"), PortId(3))));
        assert_eq!(dev_of(&t, "10.1.2.3"), Some((net("10.1.2.3/32"), PortId(4))));
        assert_eq!(t.lookup(ip("10.1.2.3")).unwrap().scope, Scope::KniHost);
        // Edges of a prefix.
        assert_eq!(dev_of(&t, "10.1.2.0"), Some((net("10.1.2.0/24"), PortId(3))));
        assert_eq!(dev_of(&t, "10.1.3.0"), Some((net("10.1.0.0/16"), PortId(2))));
        assert_eq!(dev_of(&t, "11.0.0.0"), Some((net("0.0.0.0/0"), PortId(0))));

        // Next hops: the gateway, or the destination on a connected route.
        let r = t.lookup(ip("10.1.2.9")).unwrap();
        assert_eq!(r.next_hop(ip("10.1.2.9")), ip("10.1.0.254"));
        let r = t.lookup(ip("10.1.9.9")).unwrap();
        assert_eq!(r.next_hop(ip("10.1.9.9")), ip("10.1.9.9"));

        // No IPv6 route: no answer, whatever the IPv4 default says.
        assert!(t.lookup(ip("2001:db8::1")).is_none());
    }

    #[test]
    fn no_default_route_means_no_route() {
        let mut t = RouteTable::new();
        t.add(Route::connected(net("192.168.1.0/24"), PortId(0), Some(ip("192.168.1.10")))).unwrap();
        assert!(t.lookup(ip("192.168.2.1")).is_none());
        assert_eq!(t.lookup(ip("192.168.1.1")).unwrap().src, Some(ip("192.168.1.10")));
        assert!(RouteTable::new().lookup(ip("1.2.3.4")).is_none());
    }

    #[test]
    fn ipv6_longest_prefix_wins() {
        let mut t = RouteTable::new();
        t.add(via("::/0", "fe80::1", 0)).unwrap();
        t.add(Route::connected(net("2001:db8::/32"), PortId(1), None)).unwrap();
        t.add(Route::connected(net("2001:db8:1::/48"), PortId(2), None)).unwrap();
        t.add(via("2001:db8:1:2::/64", "2001:db8:1::1", 3)).unwrap();
        t.add(Route::kni_host(net("2001:db8:1:2::5/128"), PortId(4))).unwrap();
        t.add(via("2001:db8:1:2::/63", "2001:db8:1::2", 5)).unwrap();

        assert_eq!(dev_of(&t, "2a00::1").unwrap().1, PortId(0));
        assert_eq!(dev_of(&t, "2001:db8:ffff::1").unwrap().1, PortId(1));
        assert_eq!(dev_of(&t, "2001:db8:1:ffff::1").unwrap().1, PortId(2));
        assert_eq!(dev_of(&t, "2001:db8:1:2::6").unwrap().1, PortId(3));
        assert_eq!(dev_of(&t, "2001:db8:1:3::6").unwrap().1, PortId(5), "/63 covers ::3");
        assert_eq!(dev_of(&t, "2001:db8:1:2::5").unwrap().1, PortId(4));
        assert!(t.lookup(ip("10.0.0.1")).is_none());
        assert_eq!(t.iter().count(), 6);
    }

    #[test]
    fn metrics_duplicates_and_deletes() {
        let mut t = RouteTable::new();
        let mut a = via("10.0.0.0/8", "192.168.0.1", 0);
        a.metric = 10;
        let mut b = via("10.0.0.0/8", "192.168.1.1", 1);
        b.metric = 5;
        t.add(a).unwrap();
        t.add(b).unwrap();
        assert_eq!(t.add(a), Err(RouteError::Exists { prefix: net("10.0.0.0/8"), metric: 10 }));
        assert_eq!(t.lookup(ip("10.9.9.9")), Some(&b), "lowest metric wins");
        assert_eq!(t.get(net("10.0.0.0/8")), &[b, a]);

        assert_eq!(t.del(net("10.0.0.0/8"), Some(10)), Ok(a));
        assert_eq!(t.del(net("10.0.0.0/8"), Some(10)), Err(RouteError::NotFound(net("10.0.0.0/8"))));
        assert_eq!(t.del(net("10.0.0.0/8"), None), Ok(b));
        assert!(t.is_empty() && t.lookup(ip("10.9.9.9")).is_none());
        assert_eq!(t.del(net("10.0.0.0/8"), None), Err(RouteError::NotFound(net("10.0.0.0/8"))));
        assert!(t.get(net("10.0.0.0/8")).is_empty());
    }

    #[test]
    fn validation() {
        let mut t = RouteTable::new();
        assert_eq!(
            t.add(Route::connected(net("10.0.0.1/24"), PortId(0), None)),
            Err(RouteError::HostBits { given: net("10.0.0.1/24"), suggested: net("10.0.0.0/24") })
        );
        assert_eq!(
            t.add(via("10.0.0.0/24", "fe80::1", 0)),
            Err(RouteError::FamilyMismatch { addr: ip("fe80::1"), prefix: net("10.0.0.0/24") })
        );
        let mut r = Route::connected(net("2001:db8::/64"), PortId(0), Some(ip("10.0.0.1")));
        assert!(matches!(t.add(r), Err(RouteError::FamilyMismatch { .. })));
        r.src = Some(ip("2001:db8::1"));
        t.add(r).unwrap();
        assert_eq!(t.len(), 1);
        assert!(t
            .add(Route::connected(net("10.0.0.1/24"), PortId(0), None))
            .unwrap_err()
            .to_string()
            .contains("10.0.0.0/24"));
    }

    #[test]
    fn retain_and_clone_are_independent() {
        let mut t = RouteTable::new();
        t.add(via("0.0.0.0/0", "192.168.0.1", 0)).unwrap();
        t.add(Route::connected(net("192.168.0.0/24"), PortId(0), None)).unwrap();
        t.add(Route::connected(net("172.16.0.0/16"), PortId(1), None)).unwrap();
        t.add(Route::connected(net("fd00::/64"), PortId(1), None)).unwrap();
        let snapshot = t.clone();
        assert_eq!(t.retain(|r| r.dev != PortId(1)), 2);
        assert_eq!(t.len(), 2);
        assert_eq!(dev_of(&t, "172.16.0.1").unwrap().1, PortId(0), "falls back to the default");
        assert_eq!(dev_of(&snapshot, "172.16.0.1").unwrap().1, PortId(1), "the published copy is untouched");
        assert_eq!(snapshot.len(), 4);
    }

    #[test]
    fn display_and_serde_defaults() {
        let mut r = via("10.0.0.0/24", "10.0.0.1", 0);
        r.src = Some(ip("10.0.0.5"));
        assert_eq!(r.to_string(), "10.0.0.0/24 via 10.0.0.1 dev port 0 scope global src 10.0.0.5 metric 0");
        assert_eq!(Scope::KniHost.to_string(), "kni_host");
        assert_eq!(r.family(), Family::V4);
    }

    #[test]
    fn masks() {
        assert_eq!(0xffff_ffffu32.masked(0), 0);
        assert_eq!(0xffff_ffffu32.masked(1), 0x8000_0000);
        assert_eq!(0xffff_ffffu32.masked(32), 0xffff_ffff);
        assert_eq!(u128::MAX.masked(128), u128::MAX);
        assert_eq!(u128::MAX.masked(64), u128::MAX << 64);
    }
}
