//! The authoritative configuration the control thread owns, as plain lists, and the
//! derivation of a worker [`Snapshot`] from it. Every change (from the config file at
//! start, or from the control socket) is applied to a copy of the [`State`], turned into
//! a snapshot (which validates it whole), and only then adopted: an invalid change
//! leaves everything as it was.
//!
//! The verbs: the service set's are [`ctl::verbs`] (shared with `rvsadm -R`); the
//! address, route, timeout and neighbour verbs, which only rvsd has, are the methods
//! here ([`State::addr_add`], [`State::addr_del`], [`State::route_add`],
//! [`State::route_del`], [`State::timeouts_set`], [`State::neigh_add`],
//! [`State::neigh_del`]). The validation of the service set is
//! [`ctl::verbs::validate`], shared with `rvsd --check-config`.

use std::net::IpAddr;
use std::sync::Arc;

use ctl::verbs::{self, Owned};
use ctl::{ErrorCode, RouteScope, RouteSpec, ServiceSpec};
use fnat::engine::config::LocalAddrSet;
use fnat::tcp_state::Timeouts;
use ipnet::IpNet;
use netstack::{AddrFlags, AddrTable, NeighTable, PortId, Route, RouteTable, Scope};
use wire::EthernetAddress;

use fnat::denyset::PrefixSet;

use crate::config::Config;
use crate::shared::{PortView, Snapshot};

/// A refused change: the code and the sentence the client sees (the control verbs'
/// one error type).
pub use ctl::Refused;

/// An address on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddrSpec {
    /// Port index.
    pub port: usize,
    /// Address and prefix.
    pub net: IpNet,
    /// A LIP.
    pub sapool: bool,
}

/// What the dataplane should run.
#[derive(Debug, Clone)]
pub struct State {
    /// Port names, by index.
    pub port_names: Vec<String>,
    /// Services with their LIPs, in the order they were added.
    pub services: Vec<ServiceSpec>,
    /// Addresses.
    pub addrs: Vec<AddrSpec>,
    /// Static routes (connected routes are derived from the addresses).
    pub routes: Vec<RouteSpec>,
    /// Timeouts.
    pub timeouts: Timeouts,
    /// The global deny list, as given (listings, add and delete).
    pub deny: Arc<Vec<IpNet>>,
    /// The global deny set built from it (once per change of the list).
    pub deny_set: Arc<PrefixSet>,
    /// SNAT rules, in the order they are tried, each named.
    pub snat: Vec<ctl::SnatSpec>,
    /// The rules that mark new flows for fwmark services, in the order they are tried.
    pub fwmark: Vec<fnat::fwmark::FwmarkRule>,
    /// What the passive check made of real servers (kept by the control thread's
    /// [`crate::control::destcheck::DestChecker`]).
    pub marks: fnat::service::DestMarks,
}

/// The core's rule for `spec` (the `i`th; ports by `port`, an unknown one as an index
/// no port has).
pub fn snat_rule(spec: &ctl::SnatSpec, i: usize, port: impl Fn(&str) -> Option<usize>) -> fnat::snat::SnatRule {
    let idx = |d: &Option<String>| d.as_deref().map(|d| port(d).map_or(u16::MAX, |p| p as u16));
    fnat::snat::SnatRule {
        name: spec.name.clone().unwrap_or_else(|| format!("snat{i}")),
        proto: spec.proto,
        src: spec.src_range,
        dst: spec.dst_range,
        iif: idx(&spec.iif),
        oif: idx(&spec.oif),
        wan: spec.wan.clone(),
    }
}

/// DR real servers must be on one of the dataplane's links: rvs hands a DR packet to the
/// server's MAC unchanged (addressed to the VIP), so a server behind a gateway would
/// have the gateway route the packet back to rvs.
fn dr_servers_on_link(services: &fnat::service::ServiceTable, routes: &netstack::RouteTable) -> Result<(), Refused> {
    for s in services.services() {
        for d in s.dests.iter().filter(|d| d.fwd == fnat::types::FwdMode::Dr) {
            if let Some(via) = routes.lookup(d.addr).and_then(|r| r.via) {
                return Err(Refused::new(
                    ErrorCode::Invalid,
                    format!(
                        "{}: DR real server {} is reached through gateway {via}: DR needs the server on one of the \
                         dataplane's links (the gateway would route the packet, addressed to the VIP, back to rvs); \
                         use TUN or FullNAT for a routed server",
                        s.key, d.addr
                    ),
                ));
            }
        }
    }
    Ok(())
}

impl State {
    /// What is configured on port `port`: its addresses, the routes through it, its
    /// static neighbours and the SNAT rules that name it, as `rvsip` would name them
    /// (empty: nothing).
    pub fn port_users(&self, port: usize, neighs: &NeighTable) -> Vec<String> {
        let name = self.port_names.get(port).map_or("", String::as_str);
        let addrs = self.addrs.iter().filter(|a| a.port == port).map(|a| format!("address {}", a.net));
        let routes = self.routes.iter().filter(|r| r.dev == name).map(|r| format!("route {}", r.prefix));
        let statics = neighs
            .iter()
            .filter(|(_, e)| e.port.0 as usize == port && e.state == netstack::NeighState::Static)
            .map(|(ip, _)| format!("neighbour {ip}"));
        let names = |d: &Option<String>| d.as_deref() == Some(name);
        let snat = self
            .snat
            .iter()
            .filter(|r| names(&r.iif) || names(&r.oif))
            .map(|r| format!("SNAT rule {}", r.name.clone().unwrap_or_else(|| r.match_text())));
        addrs.chain(routes).chain(statics).chain(snat).collect()
    }

    /// The LIPs (sapool addresses) on port `port`.
    pub fn lips_on(&self, port: usize) -> Vec<IpAddr> {
        self.addrs.iter().filter(|a| a.port == port && a.sapool).map(|a| a.net.addr()).collect()
    }

    /// The state the configuration file describes.
    pub fn from_config(cfg: &Config) -> State {
        let port = |dev: &str| cfg.port_index(dev).unwrap_or(usize::MAX);
        State {
            port_names: cfg.port_names(),
            services: cfg.service_specs(),
            addrs: cfg.addrs.iter().map(|a| AddrSpec { port: port(&a.dev), net: a.addr, sapool: a.sapool }).collect(),
            routes: cfg
                .routes
                .iter()
                .map(|r| RouteSpec {
                    prefix: r.prefix,
                    via: r.via,
                    dev: r.dev.clone(),
                    scope: r.scope,
                    src: r.src,
                    metric: 0,
                    connected: false,
                })
                .collect(),
            timeouts: cfg.timeouts,
            deny: Arc::new(cfg.edge.loaded.clone()),
            deny_set: Arc::new(deny_set(&cfg.edge.loaded)),
            snat: cfg
                .snat
                .iter()
                .enumerate()
                .map(|(i, r)| ctl::SnatSpec {
                    name: Some(r.name.clone().unwrap_or_else(|| format!("snat{i}"))),
                    ..r.clone()
                })
                .collect(),
            fwmark: cfg.fwmark.clone(),
            marks: Default::default(),
        }
    }

    /// The SNAT table for workers, checked against the addresses and ports: each WAN
    /// address must be a sapool address, each `iif`/`oif` a port; `oif` matches read a
    /// copy of `routes`.
    fn snat_table(&self, addrs: &AddrTable, routes: &RouteTable) -> Result<fnat::snat::SnatTable, Refused> {
        let mut rules = Vec::with_capacity(self.snat.len());
        for (i, spec) in self.snat.iter().enumerate() {
            let name = spec.name.clone().unwrap_or_else(|| format!("snat{i}"));
            let port = |dev: &str| self.port(dev).ok();
            for dev in [&spec.iif, &spec.oif].into_iter().flatten() {
                if port(dev).is_none() {
                    return Err(Refused::new(ErrorCode::Invalid, format!("SNAT rule {name:?}: no port named {dev:?}")));
                }
            }
            let rule = snat_rule(spec, i, port);
            rule.validate().map_err(|e| Refused::new(ErrorCode::Invalid, e.to_string()))?;
            if let Some(w) = rule.wan.iter().find(|w| !addrs.owner(**w).is_some_and(|(_, e)| e.flags.sapool)) {
                return Err(Refused::new(
                    ErrorCode::Invalid,
                    format!("SNAT rule {name:?}: WAN address {w} is not a sapool address of any port"),
                ));
            }
            rules.push(rule);
        }
        let routes = routes.iter().map(|r| (r.prefix, (r.scope != Scope::KniHost).then_some(r.dev.0)));
        Ok(fnat::snat::SnatTable::new(rules, routes.collect::<Vec<_>>()))
    }

    /// Replaces the global deny list (`set`), or adds or deletes prefixes; the set is
    /// rebuilt whole and published with the next generation. Deleting a prefix that is
    /// not in the list is refused (naming it); adding one already there changes nothing.
    pub fn edge_deny(&mut self, op: ctl::EdgeDenyOp, prefixes: Vec<IpNet>) -> Result<(), Refused> {
        let mut list = match op {
            ctl::EdgeDenyOp::Set => prefixes,
            ctl::EdgeDenyOp::Add => {
                let mut l = (*self.deny).clone();
                let have: std::collections::HashSet<IpNet> = l.iter().copied().collect();
                l.extend(prefixes.into_iter().filter(|p| !have.contains(p)));
                l
            }
            ctl::EdgeDenyOp::Del => {
                let gone: std::collections::HashSet<IpNet> = prefixes.iter().copied().collect();
                let have: std::collections::HashSet<IpNet> = self.deny.iter().copied().collect();
                if let Some(p) = prefixes.iter().find(|p| !have.contains(p)) {
                    return Err(Refused::new(ErrorCode::NotFound, format!("{p} is not in the global deny list")));
                }
                self.deny.iter().copied().filter(|p| !gone.contains(p)).collect()
            }
        };
        // Each prefix once, where it first came (`set A B A` lists A, B).
        crate::config::keep_first(&mut list);
        self.deny_set = Arc::new(deny_set(&list));
        self.deny = Arc::new(list);
        Ok(())
    }

    /// The index of port `dev`.
    pub fn port(&self, dev: &str) -> Result<usize, Refused> {
        // (A deleted VLAN's number keeps an empty name, which no request names.)
        self.port_names
            .iter()
            .position(|n| n == dev && !dev.is_empty())
            .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("no port named {dev:?}")))
    }

    /// The address table (VIP flags from the services, and from the fwmark rules whose
    /// mark has a service).
    pub fn addr_table(&self) -> Result<AddrTable, Refused> {
        let mut t = AddrTable::new();
        let marked = |ip: IpAddr| {
            self.fwmark.iter().any(|r| {
                r.covers(IpNet::from(ip))
                    && self
                        .services
                        .iter()
                        .any(|s| s.service.fwmark == r.mark && s.service.vip.is_ipv4() == ip.is_ipv4())
            })
        };
        for a in &self.addrs {
            let vip = self.services.iter().any(|s| s.service.vip == a.net.addr()) || marked(a.net.addr());
            let flags = AddrFlags { sapool: a.sapool, vip };
            t.add(PortId(a.port as u16), a.net, flags)
                .map_err(|e| Refused::new(ErrorCode::Invalid, format!("address {}: {e}", a.net)))?;
        }
        Ok(t)
    }

    /// The route table: connected routes plus the static ones.
    pub fn route_table(&self, addrs: &AddrTable) -> Result<RouteTable, Refused> {
        let mut t = RouteTable::new();
        for r in addrs.connected_routes() {
            t.add(r).map_err(|e| Refused::new(ErrorCode::Invalid, format!("connected route: {e}")))?;
        }
        for r in &self.routes {
            let dev = PortId(self.port(&r.dev)? as u16);
            let mut route = match (r.scope, r.via) {
                (RouteScope::KniHost, _) => Route::kni_host(r.prefix, dev),
                (_, Some(via)) => Route::via(r.prefix, via, dev),
                (_, None) => Route::connected(r.prefix, dev, r.src),
            };
            if r.scope == RouteScope::Link {
                route.scope = Scope::Link;
            }
            route.src = r.src;
            route.metric = r.metric;
            t.add(route).map_err(|e| Refused::new(ErrorCode::Invalid, format!("route {}: {e}", r.prefix)))?;
        }
        Ok(t)
    }

    /// The LIP sets of the services: the local addresses that are `sapool` addresses
    /// now (one in standby, not yet an address, takes no new connections).
    pub fn local_addr_sets(&self) -> Vec<LocalAddrSet> {
        let held = |ip: &IpAddr| self.addrs.iter().any(|a| a.sapool && a.net.addr() == *ip);
        self.services
            .iter()
            .map(|s| LocalAddrSet {
                service: Some(s.service.key()),
                lips: s.laddrs.iter().copied().filter(held).collect(),
            })
            .collect()
    }

    /// Builds (and thereby validates) the snapshot for generation `gen`. `prev` keeps
    /// real-server identities (and so connections and counters) across the change.
    pub fn snapshot(
        &self,
        gen: u64,
        prev: Option<&Snapshot>,
        ports: Arc<Vec<PortView>>,
        neighs: Arc<NeighTable>,
    ) -> Result<Snapshot, Refused> {
        let addrs = self.addr_table()?;
        let routes = self.route_table(&addrs)?;
        let owner =
            |ip: IpAddr| addrs.owner(ip).map(|(_, e)| if e.flags.sapool { Owned::Sapool } else { Owned::Plain });
        let services = verbs::validate(&self.services, &owner, prev.map(|p| &*p.services), &self.marks)
            .map_err(|mut problems| problems.swap_remove(0).refused)?
            .with_fwmark_rules(&self.fwmark)
            .map_err(|e| Refused::new(ErrorCode::Invalid, e.to_string()))?;
        dr_servers_on_link(&services, &routes)?;
        self.fwmark_beside_kni_host()?;
        let snat = self.snat_table(&addrs, &routes)?;
        let laddrs = self.local_addr_sets();
        // Reuse unchanged parts so workers can tell what changed by pointer.
        let keep = |p: Option<&Snapshot>| p.filter(|p| *p.laddrs == laddrs).map(|p| Arc::clone(&p.laddrs));
        Ok(Snapshot {
            gen,
            services: Arc::new(services),
            laddrs: keep(prev).unwrap_or_else(|| Arc::new(laddrs)),
            timeouts: self.timeouts,
            addrs: Arc::new(addrs),
            routes: Arc::new(routes),
            neighs,
            ports,
            deny: Arc::clone(&self.deny_set),
            snat: Arc::new(snat),
        })
    }

    /// Refuses a fwmark rule over an address a kni_host route gives the kernel: the rule
    /// would take the kernel's own connections.
    fn fwmark_beside_kni_host(&self) -> Result<(), Refused> {
        for route in self.routes.iter().filter(|r| r.scope == RouteScope::KniHost) {
            if let Some(rule) = self.fwmark.iter().find(|f| f.covers(route.prefix)) {
                return Err(Refused::new(
                    ErrorCode::Invalid,
                    format!(
                        "fwmark rule {rule} covers {}, which a kni_host route gives the kernel; narrow its dst-range",
                        route.prefix
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The routes for listing: connected (derived) then static.
    pub fn route_views(&self) -> Vec<RouteSpec> {
        let mut out = Vec::new();
        if let Ok(addrs) = self.addr_table() {
            for r in addrs.connected_routes() {
                out.push(RouteSpec {
                    prefix: r.prefix,
                    via: None,
                    dev: self.port_names.get(r.dev.0 as usize).cloned().unwrap_or_default(),
                    scope: RouteScope::Link,
                    src: r.src,
                    metric: r.metric,
                    connected: true,
                });
            }
        }
        out.extend(self.routes.iter().cloned());
        out
    }

    /// Whether `ip` is configured on any port.
    pub fn has_addr(&self, ip: IpAddr) -> bool {
        self.addrs.iter().any(|a| a.net.addr() == ip)
    }

    /// Adds the address `net` to port `dev` (a LIP with `sapool`). Refused if any port
    /// has the address, or if its subnet overlaps one of another port ([`subnets_overlap`],
    /// as the configuration file is checked).
    pub fn addr_add(&mut self, dev: &str, net: IpNet, sapool: bool) -> Result<(), Refused> {
        let port = self.port(dev)?;
        if self.has_addr(net.addr()) {
            return Err(Refused::new(ErrorCode::Exists, format!("address {} exists", net.addr())));
        }
        if let Some(a) = self.addrs.iter().find(|a| a.port != port && subnets_overlap(&a.net, &net)) {
            let other = self.port_names.get(a.port).map_or("another port", String::as_str);
            return Err(Refused::new(
                ErrorCode::Invalid,
                format!("subnet {} on {dev} overlaps {} on {other}", net.trunc(), a.net.trunc()),
            ));
        }
        self.addrs.push(AddrSpec { port, net, sapool });
        Ok(())
    }

    /// Removes the address `addr` from port `dev`.
    pub fn addr_del(&mut self, dev: &str, addr: IpAddr) -> Result<(), Refused> {
        let port = self.port(dev)?;
        let i = self
            .addrs
            .iter()
            .position(|a| a.port == port && a.net.addr() == addr)
            .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("no address {addr} on {dev}")))?;
        self.addrs.remove(i);
        Ok(())
    }

    /// Adds a static route. Refused if one for the same prefix and metric exists.
    pub fn route_add(&mut self, mut route: RouteSpec) -> Result<(), Refused> {
        if route.dev.is_empty() {
            // dpip's `route add PREFIX via GW` without dev: the port GW is on.
            let via = route.via.ok_or_else(|| {
                Refused::new(ErrorCode::BadRequest, format!("route {}: needs dev or via", route.prefix))
            })?;
            let on = self.addrs.iter().find(|a| a.net.contains(&via) && a.port < self.port_names.len());
            let a = on.ok_or_else(|| {
                Refused::new(
                    ErrorCode::NotFound,
                    format!(
                        "route {}: no port has a connected subnet holding gateway {via}; name one with dev",
                        route.prefix
                    ),
                )
            })?;
            route.dev = self.port_names[a.port].clone();
        }
        self.port(&route.dev)?;
        if self.routes.iter().any(|r| r.prefix == route.prefix && r.metric == route.metric) {
            return Err(Refused::new(
                ErrorCode::Exists,
                format!("route {} metric {} exists", route.prefix, route.metric),
            ));
        }
        self.routes.push(route);
        Ok(())
    }

    /// Removes the static route for `prefix` (with `metric`, if given).
    pub fn route_del(&mut self, prefix: IpNet, metric: Option<u32>) -> Result<(), Refused> {
        let i = self
            .routes
            .iter()
            .position(|r| r.prefix == prefix && metric.is_none_or(|m| m == r.metric))
            .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("no static route {prefix}")))?;
        self.routes.remove(i);
        Ok(())
    }

    /// Sets timeouts like `ipvsadm --set tcp tcpfin udp`: 0 keeps a value.
    pub fn timeouts_set(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp > 0 {
            self.timeouts.established = tcp;
        }
        if tcpfin > 0 {
            self.timeouts.fin_wait = tcpfin;
        }
        if udp > 0 {
            self.timeouts.udp = udp;
        }
    }

    /// Adds (or replaces) the static neighbour `addr` on port `dev` in `neighs` (the
    /// neighbour table lives beside the state: workers also learn into it).
    pub fn neigh_add(
        &self,
        neighs: &mut NeighTable,
        addr: IpAddr,
        mac: EthernetAddress,
        dev: &str,
        now_ms: u64,
    ) -> Result<(), Refused> {
        let port = self.port(dev)?;
        if let Some(why) = static_neigh_problem(addr, mac) {
            return Err(Refused::new(ErrorCode::Invalid, why));
        }
        neighs.insert_static(addr, mac, PortId(port as u16), now_ms);
        Ok(())
    }

    /// Removes the neighbour `addr` (static or learned) from `neighs`.
    pub fn neigh_del(neighs: &mut NeighTable, addr: IpAddr) -> Result<(), Refused> {
        match neighs.delete(addr) {
            Some(_) => Ok(()),
            None => Err(Refused::new(ErrorCode::NotFound, format!("no neighbour {addr}"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnat::service::{RealServerConfig, ServiceConfig};
    use fnat::types::Proto;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn bare() -> State {
        State {
            port_names: vec!["dpdk0".into(), "dpdk1".into()],
            services: vec![],
            addrs: vec![],
            routes: vec![],
            timeouts: Timeouts::default(),
            deny: Arc::default(),
            deny_set: Arc::default(),
            snat: vec![],
            fwmark: vec![],
            marks: Default::default(),
        }
    }

    fn code(r: Result<(), Refused>) -> ErrorCode {
        r.unwrap_err().code
    }

    #[test]
    fn address_route_timeout_and_neighbour_verbs_refuse_what_they_should() {
        let mut s = bare();
        s.addr_add("dpdk0", net("198.18.0.1/24"), false).unwrap();
        assert_eq!(code(s.addr_add("dpdk1", net("198.18.0.1/32"), true)), ErrorCode::Exists);
        assert_eq!(code(s.addr_add("dpdk7", net("198.18.0.2/24"), false)), ErrorCode::NotFound);
        assert_eq!(code(s.addr_del("dpdk1", ip("198.18.0.1"))), ErrorCode::NotFound, "on another port");
        // One subnet on two ports, as the file is checked: refused, whichever is wider.
        for other in ["198.18.0.2/24", "198.18.0.0/16", "198.18.0.128/25"] {
            let e = s.addr_add("dpdk1", net(other), false).unwrap_err();
            assert_eq!(e.code, ErrorCode::Invalid, "{other}");
            assert!(e.message.contains("on dpdk1 overlaps 198.18.0.0/24 on dpdk0"), "{}", e.message);
        }
        s.addr_add("dpdk1", net("198.18.0.5/32"), false).unwrap();
        s.addr_add("dpdk0", net("198.18.0.6/25"), false).unwrap();
        s.addr_del("dpdk1", ip("198.18.0.5")).unwrap();
        s.addr_del("dpdk0", ip("198.18.0.6")).unwrap();
        s.addr_del("dpdk0", ip("198.18.0.1")).unwrap();
        assert!(s.addrs.is_empty());

        let route = RouteSpec {
            prefix: net("10.0.0.0/8"),
            via: Some(ip("198.18.0.254")),
            dev: "dpdk0".into(),
            scope: RouteScope::Global,
            src: None,
            metric: 0,
            connected: false,
        };
        s.route_add(route.clone()).unwrap();
        assert_eq!(code(s.route_add(route.clone())), ErrorCode::Exists);
        s.route_add(RouteSpec { metric: 5, ..route.clone() }).unwrap();
        assert_eq!(code(s.route_add(RouteSpec { dev: "dpdk7".into(), ..route })), ErrorCode::NotFound);
        s.route_del(net("10.0.0.0/8"), Some(5)).unwrap();
        s.route_del(net("10.0.0.0/8"), None).unwrap();
        assert_eq!(code(s.route_del(net("10.0.0.0/8"), None)), ErrorCode::NotFound);
        // Without dev: the port whose connected subnet holds the gateway (dpip's habit).
        let no_dev = RouteSpec { dev: String::new(), ..route.clone() };
        assert_eq!(code(s.route_add(no_dev.clone())), ErrorCode::NotFound, "no connected subnet yet");
        s.addr_add("dpdk1", net("198.18.0.1/24"), false).unwrap();
        s.route_add(no_dev).unwrap();
        assert_eq!(s.routes[0].dev, "dpdk1");
        let no_via = RouteSpec { dev: String::new(), via: None, prefix: net("10.1.0.0/16"), ..route };
        assert_eq!(code(s.route_add(no_via)), ErrorCode::BadRequest);

        s.timeouts_set(0, 30, 0);
        assert_eq!(s.timeouts.fin_wait, 30);
        assert_eq!(s.timeouts.established, Timeouts::default().established, "0 keeps a value");

        let mut neighs = NeighTable::new(16);
        let mac = EthernetAddress([2, 0, 0, 0, 0, 1]);
        assert_eq!(code(s.neigh_add(&mut neighs, ip("198.18.0.9"), mac, "dpdk7", 0)), ErrorCode::NotFound);
        for (addr, bad) in
            [("198.18.0.9", EthernetAddress([1, 0, 0x5e, 0, 0, 1])), ("198.18.0.9", EthernetAddress([0; 6]))]
                .into_iter()
                .chain([("224.0.0.5", mac), ("0.0.0.0", mac), ("ff02::1", mac)])
        {
            assert_eq!(code(s.neigh_add(&mut neighs, ip(addr), bad, "dpdk1", 0)), ErrorCode::Invalid, "{addr} {bad}");
        }
        assert!(neighs.is_empty());
        s.neigh_add(&mut neighs, ip("198.18.0.9"), mac, "dpdk1", 0).unwrap();
        State::neigh_del(&mut neighs, ip("198.18.0.9")).unwrap();
        assert_eq!(code(State::neigh_del(&mut neighs, ip("198.18.0.9"))), ErrorCode::NotFound);
    }

    /// A port (a VLAN to delete) is in use by what names it, SNAT rules included.
    #[test]
    fn a_ports_users_include_the_snat_rules_naming_it() {
        let mut s = bare();
        let mut neighs = NeighTable::new(4);
        assert!(s.port_users(1, &neighs).is_empty());
        s.addr_add("dpdk1", net("198.19.0.1/24"), false).unwrap();
        s.neigh_add(&mut neighs, ip("198.19.0.9"), EthernetAddress([2, 0, 0, 0, 0, 9]), "dpdk1", 0).unwrap();
        s.snat.push(ctl::SnatSpec { name: Some("out".into()), oif: Some("dpdk1".into()), ..Default::default() });
        s.snat.push(ctl::SnatSpec { iif: Some("dpdk0".into()), ..Default::default() });
        assert_eq!(s.port_users(1, &neighs), ["address 198.19.0.1/24", "neighbour 198.19.0.9", "SNAT rule out"]);
        assert_eq!(s.port_users(0, &neighs).len(), 1, "{:?}", s.port_users(0, &neighs));
    }

    /// An address a fwmark rule covers is a VIP once the rule's mark has a service
    /// (not the port's primary address); a rule over a kni_host address is refused.
    #[test]
    fn fwmark_rules_flag_their_vips_and_keep_off_the_kernel_s_addresses() {
        let mut s = bare();
        s.addr_add("dpdk0", net("198.18.0.1/24"), false).unwrap();
        s.addr_add("dpdk0", net("198.18.0.100/32"), false).unwrap();
        let rule = fnat::fwmark::FwmarkRule::from_match(1, "proto=tcp,dst-range=198.18.0.100:80-443").unwrap();
        verbs::fwmark_add(&mut s.fwmark, rule).unwrap();
        let flags = |s: &State| -> Vec<(IpAddr, bool)> {
            s.addr_table().unwrap().iter().map(|e| (e.ip(), e.flags.vip)).collect()
        };
        assert!(flags(&s).iter().all(|(_, vip)| !vip), "no service for the mark yet: {:?}", flags(&s));
        let svc = ServiceConfig::with_key(fnat::service::ServiceKey::of_fwmark(1, false));
        verbs::service_add(&mut s.services, ServiceSpec { service: svc, laddrs: vec![] }).unwrap();
        assert_eq!(flags(&s), vec![(ip("198.18.0.1"), false), (ip("198.18.0.100"), true)]);
        s.snapshot(1, None, Arc::new(vec![]), Arc::new(NeighTable::new(16))).expect("a fwmark service and its rule");
        s.route_add(RouteSpec {
            prefix: net("198.18.0.100/32"),
            via: None,
            dev: "dpdk0".into(),
            scope: RouteScope::KniHost,
            src: None,
            metric: 0,
            connected: false,
        })
        .unwrap();
        let e = s.snapshot(2, None, Arc::new(vec![]), Arc::new(NeighTable::new(16))).unwrap_err();
        assert_eq!(
            e.message,
            "fwmark rule mark 1 proto=tcp,dst-range=198.18.0.100:80-443 covers 198.18.0.100/32, which a kni_host \
             route gives the kernel; narrow its dst-range"
        );
    }

    #[test]
    fn a_snapshot_takes_a_vip_and_a_lip_before_their_addresses() {
        let mut s = bare();
        s.addr_add("dpdk1", net("198.19.0.10/24"), true).unwrap();
        let mut svc = ServiceConfig::new(Proto::Tcp, ip("198.18.0.200"), 80);
        svc.real_servers = vec![RealServerConfig {
            addr: ip("198.19.0.11"),
            port: 0,
            weight: 1,
            upper: 0,
            lower: 0,
            fwd: Default::default(),
        }];
        verbs::service_add(&mut s.services, ServiceSpec { service: svc, laddrs: vec![ip("198.19.0.10")] }).unwrap();
        let snap = s.snapshot(1, None, Arc::new(vec![]), Arc::new(NeighTable::new(16))).expect("VIP before address");
        assert_eq!(snap.services.len(), 1);
        let key = s.services[0].service.key();
        // A LIP that is no address yet (a VRRP backup's, moving with the VIP) is in
        // standby: the service's set leaves it out until it is added with sapool.
        verbs::laddr_add(&mut s.services, &key, ip("198.19.0.99")).unwrap();
        let snap = s.snapshot(2, None, Arc::new(vec![]), Arc::new(NeighTable::new(16))).expect("LIP in standby");
        assert_eq!(snap.laddrs[0].lips, vec![ip("198.19.0.10")]);
        s.addr_add("dpdk1", net("198.19.0.99/24"), true).unwrap();
        let snap = s.snapshot(3, None, Arc::new(vec![]), Arc::new(NeighTable::new(16))).expect("LIP held");
        assert_eq!(snap.laddrs[0].lips, vec![ip("198.19.0.10"), ip("198.19.0.99")]);
    }

    /// A DR real server behind a gateway is refused, and so is the route change that
    /// would put an on-link one behind a gateway; routed TUN servers are fine.
    #[test]
    fn dr_real_servers_must_be_on_link() {
        let mut s = bare();
        s.addr_add("dpdk1", net("198.19.0.1/24"), false).unwrap();
        let snap = |s: &State| s.snapshot(1, None, Arc::new(vec![]), Arc::new(NeighTable::new(16)));
        let rs = |addr: &str, fwd| RealServerConfig { addr: ip(addr), port: 0, weight: 1, upper: 0, lower: 0, fwd };
        let mut svc = ServiceConfig::new(Proto::Tcp, ip("198.18.0.200"), 80);
        svc.real_servers = vec![rs("198.19.0.11", fnat::types::FwdMode::Dr)];
        verbs::service_add(&mut s.services, ServiceSpec { service: svc, laddrs: vec![] }).unwrap();
        assert!(snap(&s).is_ok(), "on dpdk1's subnet");
        let gw = RouteSpec {
            prefix: net("10.9.0.0/16"),
            via: Some(ip("198.19.0.254")),
            dev: "dpdk1".into(),
            scope: RouteScope::Global,
            src: None,
            metric: 0,
            connected: false,
        };
        s.route_add(gw).unwrap();
        let key = s.services[0].service.key();
        verbs::real_server_add(&mut s.services, &key, rs("10.9.0.5", fnat::types::FwdMode::Dr)).unwrap();
        let e = snap(&s).unwrap_err();
        assert_eq!(e.code, ErrorCode::Invalid);
        assert!(e.message.contains("DR real server 10.9.0.5 is reached through gateway 198.19.0.254"), "{}", e.message);
        let mut tun = ServiceConfig::new(Proto::Tcp, ip("198.18.0.201"), 80);
        tun.real_servers = vec![rs("10.9.0.6", fnat::types::FwdMode::Tunnel)];
        let mut t = bare();
        t.addr_add("dpdk1", net("198.19.0.1/24"), false).unwrap();
        t.addr_add("dpdk1", net("198.19.0.10/24"), true).unwrap();
        t.routes = s.routes.clone();
        verbs::service_add(&mut t.services, ServiceSpec { service: tun, laddrs: vec![ip("198.19.0.10")] }).unwrap();
        assert!(snap(&t).is_ok(), "TUN servers may be routed");
    }
}

/// Whether two addresses on different ports would put one subnet on both: neighbours
/// and replies of that subnet would go astray. Host addresses (/32, /128) have none.
pub fn subnets_overlap(a: &IpNet, b: &IpNet) -> bool {
    let subnet = |n: &IpNet| n.prefix_len() < n.max_prefix_len();
    subnet(a) && subnet(b) && (a.contains(&b.addr()) || b.contains(&a.addr()))
}

/// What is wrong with a static neighbour (`[[neigh]]`, `rvsip neigh add`), if anything:
/// frames for a next hop go to one host, so its MAC is unicast (not zero) and so is its
/// address.
pub fn static_neigh_problem(addr: IpAddr, mac: EthernetAddress) -> Option<String> {
    if !mac.is_unicast() || mac == EthernetAddress::UNSPECIFIED {
        return Some(format!("neighbour {addr}: {mac} is not a unicast MAC"));
    }
    let unicast = match addr {
        IpAddr::V4(a) => !(a.is_unspecified() || a.is_multicast() || a.is_broadcast() || a.is_loopback()),
        IpAddr::V6(a) => !(a.is_unspecified() || a.is_multicast() || a.is_loopback()),
    };
    (!unicast).then(|| format!("neighbour {addr}: not a unicast address"))
}

/// The prefix set of a deny list (control path: up to a million prefixes, ~0.2 s).
pub fn deny_set(list: &[IpNet]) -> PrefixSet {
    PrefixSet::build(list.iter().map(|n| (n.addr(), n.prefix_len())))
}

#[cfg(test)]
mod edge_tests {
    use super::*;

    #[test]
    fn the_global_deny_list_is_replaced_added_to_and_deleted_from_with_its_set() {
        let cfg: crate::config::Config = toml::from_str("[eal]\n[workers]\nlcores = [1]\n").unwrap();
        let mut s = State::from_config(&cfg);
        let n = |v: &str| v.parse::<IpNet>().unwrap();
        s.edge_deny(ctl::EdgeDenyOp::Set, vec![n("192.0.2.0/24")]).unwrap();
        s.edge_deny(ctl::EdgeDenyOp::Add, vec![n("198.51.100.7/32"), n("192.0.2.0/24")]).unwrap();
        assert_eq!(s.deny.len(), 2);
        assert!(s.deny_set.contains("198.51.100.7".parse().unwrap()));
        let e = s.edge_deny(ctl::EdgeDenyOp::Del, vec![n("203.0.113.0/24")]).unwrap_err();
        assert!(e.message.contains("203.0.113.0/24"), "{}", e.message);
        s.edge_deny(ctl::EdgeDenyOp::Del, vec![n("192.0.2.0/24")]).unwrap();
        assert!(!s.deny_set.contains("192.0.2.1".parse().unwrap()));
        assert_eq!(*s.deny, vec![n("198.51.100.7/32")]);
        let (a, b) = (n("192.0.2.0/24"), n("2001:db8::/32"));
        s.edge_deny(ctl::EdgeDenyOp::Set, vec![a, b, a]).unwrap();
        assert_eq!(*s.deny, vec![a, b], "each prefix once, where it first came");
    }

    #[test]
    fn deny_file_lines_are_parsed_and_errors_name_the_line() {
        let l = crate::config::parse_prefix_lines("# c\n10.0.0.0/8\n\n192.0.2.1 # host\n2001:db8::/32\n").unwrap();
        assert_eq!(l.len(), 3);
        assert_eq!(l[1], "192.0.2.1/32".parse::<IpNet>().unwrap());
        let e = crate::config::parse_prefix_lines("10.0.0.0/8\nnope\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
    }
}
