//! The authoritative configuration the control thread owns, as plain lists, and the
//! derivation of a worker [`Snapshot`] from it. Every change (from the config file at
//! start, or from the control socket) is applied to a copy of the [`State`], turned into
//! a snapshot (which validates it whole), and only then adopted: an invalid change
//! leaves everything as it was.

use std::net::IpAddr;
use std::sync::Arc;

use ctl::{ErrorCode, RouteScope, RouteSpec, ServiceSpec};
use fnat::engine::LocalAddrSet;
use fnat::service::{ServiceKey, ServiceTable};
use fnat::tcp_state::Timeouts;
use ipnet::IpNet;
use netstack::{AddrFlags, AddrTable, NeighTable, PortId, Route, RouteTable, Scope};

use crate::config::{self, Config};
use crate::shared::{PortView, Snapshot};

/// A refused change: the code and the sentence the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refused {
    /// Stable code.
    pub code: ErrorCode,
    /// What is wrong.
    pub message: String,
}

impl Refused {
    /// A refusal.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Refused {
        Refused { code, message: message.into() }
    }
}

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
}

impl State {
    /// The state the configuration file describes.
    pub fn from_config(cfg: &Config) -> State {
        let port = |dev: &str| cfg.port_index(dev).unwrap_or(usize::MAX);
        State {
            port_names: cfg.ports.iter().map(|p| p.name.clone()).collect(),
            services: cfg
                .services
                .iter()
                .map(|s| ServiceSpec { service: s.to_core(), laddrs: s.laddrs.clone() })
                .collect(),
            addrs: cfg.addrs.iter().map(|a| AddrSpec { port: port(&a.dev), net: a.addr, sapool: a.sapool }).collect(),
            routes: cfg
                .routes
                .iter()
                .map(|r| RouteSpec {
                    prefix: r.prefix,
                    via: r.via,
                    dev: r.dev.clone(),
                    scope: match r.scope {
                        config::RouteScope::Global => RouteScope::Global,
                        config::RouteScope::Link => RouteScope::Link,
                        config::RouteScope::KniHost => RouteScope::KniHost,
                    },
                    src: r.src,
                    metric: 0,
                    connected: false,
                })
                .collect(),
            timeouts: cfg.timeouts,
        }
    }

    /// The index of port `dev`.
    pub fn port(&self, dev: &str) -> Result<usize, Refused> {
        self.port_names
            .iter()
            .position(|n| n == dev)
            .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("no port named {dev:?}")))
    }

    /// The index of the service `key`.
    pub fn service(&self, key: &ServiceKey) -> Result<usize, Refused> {
        self.services
            .iter()
            .position(|s| s.service.key() == *key)
            .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("no service {key}")))
    }

    /// The address table (VIP flags from the services).
    pub fn addr_table(&self) -> Result<AddrTable, Refused> {
        let mut t = AddrTable::new();
        for a in &self.addrs {
            let vip = self.services.iter().any(|s| s.service.vip == a.net.addr());
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

    /// The LIP sets of the services.
    pub fn local_addr_sets(&self) -> Vec<LocalAddrSet> {
        self.services.iter().map(|s| LocalAddrSet { service: Some(s.service.key()), lips: s.laddrs.clone() }).collect()
    }

    /// Checks what the tables cannot: LIPs are owned `sapool` addresses of the VIP's
    /// family. A VIP need not be an address yet: services stay loaded on a VRRP backup
    /// (fast failover) and the agent adds the VIP when it becomes master; until then no
    /// traffic for it reaches this box.
    fn check_services(&self, addrs: &AddrTable) -> Result<(), Refused> {
        for s in &self.services {
            let key = s.service.key();
            for l in &s.laddrs {
                match addrs.owner(*l) {
                    None => {
                        return Err(Refused::new(
                            ErrorCode::Invalid,
                            format!("service {key}: local address {l} is not an address of any port"),
                        ))
                    }
                    Some((_, e)) if !e.flags.sapool => {
                        return Err(Refused::new(
                            ErrorCode::Invalid,
                            format!("service {key}: local address {l} is not a sapool address"),
                        ))
                    }
                    _ => {}
                }
                if l.is_ipv4() != s.service.vip.is_ipv4() {
                    return Err(Refused::new(
                        ErrorCode::Invalid,
                        format!("service {key}: local address {l} is of the other address family"),
                    ));
                }
            }
        }
        Ok(())
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
        self.check_services(&addrs)?;
        let configs: Vec<_> = self.services.iter().map(|s| s.service.clone()).collect();
        let services = ServiceTable::build(&configs, prev.map(|p| &*p.services))
            .map_err(|e| Refused::new(ErrorCode::Invalid, e.to_string()))?;
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
        })
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
}
