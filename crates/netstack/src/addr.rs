//! The addresses the dataplane owns, per port: port addresses, VIPs and LIPs.
//!
//! As in DPVS (`dpip addr add 10.0.0.5/24 dev dpdk0 [sapool]`), every address the
//! dataplane answers for is an address on a port: the inbound port holds the VIPs, the
//! outbound port the local addresses (LIPs, flag `sapool`) that FullNAT uses as the
//! source towards real servers. Workers ask [`AddrTable::owner`] per packet whether a
//! destination is theirs; the control thread builds the table and derives the
//! connected routes from it.

use core::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::hash::FastMap;
use crate::route::Route;
use crate::{Family, PortId};

/// What an address is used for, beyond being answered for (ARP, ND, ping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AddrFlags {
    /// A local address (LIP) whose ports FullNAT hands out as connection sources
    /// (DPVS's `sapool`).
    pub sapool: bool,
    /// A virtual service address. VIPs move between boxes on failover, so they are not
    /// chosen as a port's primary (source) address while another address exists.
    pub vip: bool,
}

impl AddrFlags {
    /// A plain port address.
    pub const NONE: AddrFlags = AddrFlags { sapool: false, vip: false };
    /// A LIP.
    pub const SAPOOL: AddrFlags = AddrFlags { sapool: true, vip: false };
    /// A VIP.
    pub const VIP: AddrFlags = AddrFlags { sapool: false, vip: true };
}

impl fmt::Display for AddrFlags {
    /// The flags as `rvsip addr show` prints them: `sapool`, `vip`, both, or nothing.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.sapool, self.vip) {
            (true, true) => f.write_str("sapool vip"),
            (true, false) => f.write_str("sapool"),
            (false, true) => f.write_str("vip"),
            (false, false) => Ok(()),
        }
    }
}

/// One owned address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AddrEntry {
    /// The port that holds it.
    pub port: PortId,
    /// The address with its prefix length (`10.0.0.5/24`), which gives the connected
    /// route.
    pub addr: IpNet,
    /// What it is used for.
    #[serde(default)]
    pub flags: AddrFlags,
}

impl AddrEntry {
    /// The address itself.
    pub fn ip(&self) -> IpAddr {
        self.addr.addr()
    }
}

/// Why an address could not be added or deleted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddrError {
    /// The address is owned already (on this port or another).
    #[error("{addr} already exists on {port}")]
    Exists {
        /// The address.
        addr: IpAddr,
        /// The port that holds it.
        port: PortId,
    },
    /// No such address.
    #[error("{0} is not an address of the dataplane")]
    NotFound(IpAddr),
    /// The address is held by another port than the one named.
    #[error("{addr} is on {port}, not {asked}")]
    OtherPort {
        /// The address.
        addr: IpAddr,
        /// The port that holds it.
        port: PortId,
        /// The port named in the request.
        asked: PortId,
    },
    /// Not an address a host can own: unspecified, multicast, broadcast or loopback.
    #[error("{0} cannot be a host address")]
    Invalid(IpAddr),
}

/// The addresses owned by the dataplane (see the module documentation). `Clone + Send
/// + Sync`: rebuilt by the control thread and shared read-only with the workers.
#[derive(Debug, Clone, Default)]
pub struct AddrTable {
    /// In the order added (the first of a family on a port is its primary).
    entries: Vec<AddrEntry>,
    /// Address -> index into `entries`.
    index: FastMap<IpAddr, usize>,
    /// The primary address per port and family, recomputed on every change.
    primary: FastMap<(PortId, Family), IpAddr>,
    /// The connected subnets per port (the prefixes of its non-host addresses, each
    /// once), recomputed on every change; read by [`AddrTable::on_link`].
    connected: Vec<(PortId, IpNet)>,
}

fn host_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    }
}

impl AddrTable {
    /// An empty table.
    pub fn new() -> AddrTable {
        AddrTable::default()
    }

    /// Adds `addr` (address and prefix length) to `port`. Errors if the address is
    /// owned already, on any port, or cannot be a host address.
    pub fn add(&mut self, port: PortId, addr: IpNet, flags: AddrFlags) -> Result<(), AddrError> {
        let ip = addr.addr();
        if !host_address(ip) {
            return Err(AddrError::Invalid(ip));
        }
        if let Some(e) = self.owner(ip) {
            return Err(AddrError::Exists { addr: ip, port: e.0 });
        }
        self.index.insert(ip, self.entries.len());
        self.entries.push(AddrEntry { port, addr, flags });
        self.recompute_primaries();
        Ok(())
    }

    /// Removes the address `ip` from `port` and returns its entry.
    pub fn del(&mut self, port: PortId, ip: IpAddr) -> Result<AddrEntry, AddrError> {
        let &i = self.index.get(&ip).ok_or(AddrError::NotFound(ip))?;
        let held = self.entries[i].port;
        if held != port {
            return Err(AddrError::OtherPort { addr: ip, port: held, asked: port });
        }
        let e = self.entries.remove(i);
        self.index.remove(&ip);
        for v in self.index.values_mut() {
            if *v > i {
                *v -= 1;
            }
        }
        self.recompute_primaries();
        Ok(e)
    }

    fn recompute_primaries(&mut self) {
        self.connected.clear();
        for e in &self.entries {
            let prefix = e.addr.trunc();
            if e.addr.prefix_len() < e.addr.max_prefix_len() && !self.connected.contains(&(e.port, prefix)) {
                self.connected.push((e.port, prefix));
            }
        }
        self.primary.clear();
        // Non-VIP addresses first, then VIPs for ports that have nothing else.
        for vip_pass in [false, true] {
            for e in self.entries.iter().filter(|e| e.flags.vip == vip_pass) {
                self.primary.entry((e.port, Family::of(&e.ip()))).or_insert(e.ip());
            }
        }
    }

    /// Whether `ip` is ours, and on which port. Per packet: one hash probe.
    #[inline]
    pub fn owner(&self, ip: IpAddr) -> Option<(PortId, &AddrEntry)> {
        let &i = self.index.get(&ip)?;
        let e = self.entries.get(i)?;
        Some((e.port, e))
    }

    /// The source address for packets the dataplane originates on `port` (ARP and ND
    /// requests, ICMP errors): the first address of `family` added to the port, a VIP
    /// only if the port has no other address of that family. One hash probe.
    #[inline]
    pub fn primary(&self, port: PortId, family: Family) -> Option<IpAddr> {
        self.primary.get(&(port, family)).copied()
    }

    /// The best source address on `port` for talking to the on-link neighbour `target`
    /// (e.g. the sender address of an ARP request): an address of the port whose subnet
    /// holds `target` (non-VIP first), else the primary. Scans the table: control path.
    pub fn source_for(&self, port: PortId, target: IpAddr) -> Option<IpAddr> {
        let on_link = |vip: bool| {
            self.entries
                .iter()
                .find(|e| e.port == port && e.flags.vip == vip && e.addr.contains(&target))
                .map(|e| e.ip())
        };
        on_link(false).or_else(|| on_link(true)).or_else(|| self.primary(port, Family::of(&target)))
    }

    /// The connected subnet of `port` that holds `ip` (the prefix of one of the port's
    /// addresses; host addresses such as a /32 VIP imply none), if any. Scans the
    /// table's few prefixes without allocating: cheap enough for every ARP / ND frame.
    #[inline]
    pub fn on_link(&self, port: PortId, ip: IpAddr) -> Option<IpNet> {
        self.connected.iter().find(|(p, net)| *p == port && net.contains(&ip)).map(|(_, net)| *net)
    }

    /// Every address, in the order added.
    pub fn iter(&self) -> impl Iterator<Item = &AddrEntry> {
        self.entries.iter()
    }

    /// The local addresses (flag `sapool`) FullNAT may use as sources.
    pub fn sapool(&self) -> impl Iterator<Item = &AddrEntry> {
        self.entries.iter().filter(|e| e.flags.sapool)
    }

    /// The number of addresses.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no address is owned.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The connected routes the addresses imply: for each address `a/len` on port `p`,
    /// `a/len` truncated, dev `p`, scope link, source a non-VIP address of that subnet
    /// when there is one. One route per (prefix, port). Host addresses (/32, /128, the
    /// usual form of a VIP) imply no route: the address is reached by
    /// [`AddrTable::owner`], not by routing. Two ports holding addresses in the same
    /// subnet give two routes of the same prefix and metric, which
    /// [`crate::RouteTable::add`] refuses for the second: a misconfiguration to report.
    pub fn connected_routes(&self) -> Vec<Route> {
        let mut out: Vec<Route> = Vec::new();
        for vip_pass in [false, true] {
            for e in self.entries.iter().filter(|e| e.flags.vip == vip_pass) {
                if e.addr.prefix_len() == e.addr.max_prefix_len() {
                    continue;
                }
                let prefix = e.addr.trunc();
                if !out.iter().any(|r| r.prefix == prefix && r.dev == e.port) {
                    out.push(Route::connected(prefix, e.port, Some(e.ip())));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::route::{RouteTable, Scope};

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn table() -> AddrTable {
        let mut t = AddrTable::new();
        t.add(PortId(0), net("192.168.10.100/32"), AddrFlags::VIP).unwrap();
        t.add(PortId(0), net("192.168.10.5/24"), AddrFlags::NONE).unwrap();
        t.add(PortId(1), net("10.0.0.5/24"), AddrFlags::SAPOOL).unwrap();
        t.add(PortId(1), net("10.0.0.6/24"), AddrFlags::SAPOOL).unwrap();
        t.add(PortId(1), net("2001:db8::5/64"), AddrFlags::SAPOOL).unwrap();
        t.add(PortId(1), net("172.16.0.5/16"), AddrFlags::NONE).unwrap();
        t
    }

    #[test]
    fn owner_finds_every_address() {
        let t = table();
        let (port, e) = t.owner(ip("192.168.10.100")).unwrap();
        assert_eq!(port, PortId(0));
        assert!(e.flags.vip && !e.flags.sapool);
        assert_eq!(t.owner(ip("10.0.0.6")).unwrap().0, PortId(1));
        assert_eq!(t.owner(ip("2001:db8::5")).unwrap().1.addr, net("2001:db8::5/64"));
        assert!(t.owner(ip("10.0.0.7")).is_none());
        assert_eq!(t.len(), 6);
        assert_eq!(t.sapool().count(), 3);
        let order: Vec<IpAddr> = t.iter().map(|e| e.ip()).collect();
        assert_eq!(order[0], ip("192.168.10.100"));
        assert_eq!(order[5], ip("172.16.0.5"));
    }

    #[test]
    fn duplicates_and_invalid_addresses() {
        let mut t = table();
        assert_eq!(
            t.add(PortId(1), net("192.168.10.100/32"), AddrFlags::NONE),
            Err(AddrError::Exists { addr: ip("192.168.10.100"), port: PortId(0) })
        );
        assert_eq!(
            t.add(PortId(1), net("10.0.0.5/16"), AddrFlags::NONE),
            Err(AddrError::Exists { addr: ip("10.0.0.5"), port: PortId(1) })
        );
        for bad in ["0.0.0.0/0", "224.0.0.18/32", "255.255.255.255/32", "127.0.0.1/8", "::/0", "ff02::1/128", "::1/128"]
        {
            let n = net(bad);
            assert_eq!(t.add(PortId(0), n, AddrFlags::NONE), Err(AddrError::Invalid(n.addr())), "{bad}");
        }
        assert_eq!(t.len(), 6);
    }

    #[test]
    fn delete_keeps_the_index_right() {
        let mut t = table();
        assert_eq!(
            t.del(PortId(1), ip("192.168.10.5")),
            Err(AddrError::OtherPort { addr: ip("192.168.10.5"), port: PortId(0), asked: PortId(1) })
        );
        assert_eq!(t.del(PortId(0), ip("192.168.10.5")).unwrap().addr, net("192.168.10.5/24"));
        assert_eq!(t.del(PortId(0), ip("192.168.10.5")), Err(AddrError::NotFound(ip("192.168.10.5"))));
        // Entries after the removed one are still found.
        for e in ["10.0.0.5", "10.0.0.6", "2001:db8::5", "172.16.0.5", "192.168.10.100"] {
            assert_eq!(t.owner(ip(e)).unwrap().1.ip(), ip(e));
        }
        assert_eq!(t.len(), 5);
    }

    #[test]
    fn primary_prefers_the_first_non_vip() {
        let mut t = table();
        assert_eq!(t.primary(PortId(0), Family::V4), Some(ip("192.168.10.5")), "the VIP came first, but moves");
        assert_eq!(t.primary(PortId(1), Family::V4), Some(ip("10.0.0.5")));
        assert_eq!(t.primary(PortId(1), Family::V6), Some(ip("2001:db8::5")));
        assert_eq!(t.primary(PortId(0), Family::V6), None);
        assert_eq!(t.primary(PortId(9), Family::V4), None);
        t.del(PortId(0), ip("192.168.10.5")).unwrap();
        assert_eq!(t.primary(PortId(0), Family::V4), Some(ip("192.168.10.100")), "a VIP when nothing else");
        t.del(PortId(1), ip("10.0.0.5")).unwrap();
        assert_eq!(t.primary(PortId(1), Family::V4), Some(ip("10.0.0.6")));
    }

    #[test]
    fn source_for_prefers_the_subnet_of_the_target() {
        let t = table();
        assert_eq!(t.source_for(PortId(1), ip("172.16.9.9")), Some(ip("172.16.0.5")));
        assert_eq!(t.source_for(PortId(1), ip("10.0.0.77")), Some(ip("10.0.0.5")));
        assert_eq!(t.source_for(PortId(1), ip("8.8.8.8")), Some(ip("10.0.0.5")), "primary otherwise");
        assert_eq!(t.source_for(PortId(0), ip("192.168.10.1")), Some(ip("192.168.10.5")));
        assert_eq!(t.source_for(PortId(1), ip("2001:db8::1")), Some(ip("2001:db8::5")));
        assert_eq!(t.source_for(PortId(0), ip("2001:db8::1")), None);
    }

    #[test]
    fn on_link_is_per_port_and_ignores_host_addresses() {
        let mut t = table();
        assert_eq!(t.on_link(PortId(0), ip("192.168.10.77")), Some(net("192.168.10.0/24")));
        assert_eq!(t.on_link(PortId(1), ip("192.168.10.77")), None, "another port's subnet");
        assert_eq!(t.on_link(PortId(0), ip("192.168.11.1")), None);
        assert_eq!(t.on_link(PortId(1), ip("172.16.200.1")), Some(net("172.16.0.0/16")));
        assert_eq!(t.on_link(PortId(1), ip("2001:db8::99")), Some(net("2001:db8::/64")));
        t.add(PortId(0), net("203.0.113.9/32"), AddrFlags::VIP).unwrap();
        assert_eq!(t.on_link(PortId(0), ip("203.0.113.8")), None, "a /32 implies no subnet");
        t.del(PortId(0), ip("192.168.10.5")).unwrap();
        assert_eq!(t.on_link(PortId(0), ip("192.168.10.77")), None, "recomputed on delete");
    }

    #[test]
    fn connected_routes_go_into_a_route_table() {
        let t = table();
        let routes = t.connected_routes();
        let summary: Vec<(IpNet, PortId, Option<IpAddr>)> = routes.iter().map(|r| (r.prefix, r.dev, r.src)).collect();
        assert_eq!(
            summary,
            vec![
                (net("192.168.10.0/24"), PortId(0), Some(ip("192.168.10.5"))),
                (net("10.0.0.0/24"), PortId(1), Some(ip("10.0.0.5"))),
                (net("2001:db8::/64"), PortId(1), Some(ip("2001:db8::5"))),
                (net("172.16.0.0/16"), PortId(1), Some(ip("172.16.0.5"))),
            ]
        );
        assert!(routes.iter().all(|r| r.scope == Scope::Link && r.via.is_none()));
        let mut rt = RouteTable::new();
        for r in routes {
            rt.add(r).unwrap();
        }
        let r = rt.lookup(ip("10.0.0.200")).unwrap();
        assert_eq!((r.dev, r.next_hop(ip("10.0.0.200"))), (PortId(1), ip("10.0.0.200")));
    }

    #[test]
    fn a_vip_in_a_subnet_gives_a_route_only_if_alone() {
        let mut t = AddrTable::new();
        t.add(PortId(0), net("10.1.0.100/24"), AddrFlags::VIP).unwrap();
        let r = t.connected_routes();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].src, Some(ip("10.1.0.100")));
        t.add(PortId(0), net("10.1.0.2/24"), AddrFlags::NONE).unwrap();
        let r = t.connected_routes();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].src, Some(ip("10.1.0.2")));
    }

    #[test]
    fn flags_display_and_shareable() {
        assert_eq!(AddrFlags::SAPOOL.to_string(), "sapool");
        assert_eq!(AddrFlags { sapool: true, vip: true }.to_string(), "sapool vip");
        assert_eq!(AddrFlags::NONE.to_string(), "");
        fn assert_send_sync<T: Send + Sync + Clone>() {}
        assert_send_sync::<AddrTable>();
    }
}
