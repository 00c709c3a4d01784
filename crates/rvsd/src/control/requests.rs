//! Request dispatch: each request goes to its verb (the service set's in
//! [`ctl::verbs`], shared with `rvsadm -R`; addresses, routes, timeouts and
//! neighbours on [`State`]) or its view; a change is applied to a copy of the state,
//! validated whole and published (see [`Control::change`]).

use std::net::IpAddr;
use std::sync::atomic::Ordering;

use ctl::{verbs, ErrorCode, LinkChange, Request, Response};
use dpdk::{Burst, Mbuf};
use ipnet::IpNet;

use super::Control;
use crate::shared::Command;
use crate::state::{Refused, State};

/// Stages held at once, at most.
const MAX_STAGES: usize = 8;
/// Services held in all stages together, at most.
const MAX_STAGED_SERVICES: usize = 2_000_000;

impl Control {
    /// `ServiceStage`: holds the part; forgets stages older than [`ctl::STAGE_TTL_SECS`].
    fn stage(&mut self, stage: u64, services: Vec<ctl::ServiceSpec>) -> Result<Response, Refused> {
        let ttl = std::time::Duration::from_secs(ctl::STAGE_TTL_SECS);
        self.staged.retain(|_, (at, _)| at.elapsed() < ttl);
        let held: usize = self.staged.values().map(|(_, v)| v.len()).sum();
        if held + services.len() > MAX_STAGED_SERVICES {
            return Err(Refused::new(
                ErrorCode::TooLarge,
                format!("more than {MAX_STAGED_SERVICES} services staged at once"),
            ));
        }
        if !self.staged.contains_key(&stage) && self.staged.len() >= MAX_STAGES {
            return Err(Refused::new(
                ErrorCode::TooLarge,
                format!("more than {MAX_STAGES} service sets staged at once"),
            ));
        }
        let (at, held) = self.staged.entry(stage).or_insert_with(|| (std::time::Instant::now(), Vec::new()));
        *at = std::time::Instant::now();
        held.extend(services);
        Ok(Response::Staged { stage, services: held.len() as u64 })
    }

    /// Connection sync's shared state, or why there is none.
    fn sync_shared(&self) -> Result<&crate::sync::SyncShared, Refused> {
        self.shared.sync.as_ref().ok_or_else(|| {
            Refused::new(
                ErrorCode::Unsupported,
                "connection sync is not set up: rvsd.toml has no [sync] section (its key, peers and syncid: docs/HA.md)",
            )
        })
    }

    /// Carries out one request of control connection `client` (the lessee of what it
    /// adds with `lease`; a capture is started apart: its reply comes when it ends).
    pub(super) fn handle(&mut self, req: Request, client: u64) -> Response {
        match self.try_handle(req, client) {
            Ok(r) => r,
            Err(r) => Response::error(r.code, r.message),
        }
    }

    fn try_handle(&mut self, req: Request, client: u64) -> Result<Response, Refused> {
        Ok(match req {
            Request::Status {} => self.status(),
            Request::ServiceList { stats } => self.service_list(stats)?,
            Request::ServicePage { stats, from, max } => self.service_page(stats, from, max)?,
            Request::ServiceAdd(spec) => self.change(|s| verbs::service_add(&mut s.services, spec))?,
            Request::ServiceEdit { service } => self.change(|s| verbs::service_edit(&mut s.services, service))?,
            Request::ServiceDel { key } => self.change(|s| verbs::service_del(&mut s.services, &key))?,
            Request::ServiceReplace { services, snat } => {
                self.change(|s| verbs::replace(&mut s.services, &mut s.snat, services, snat))?
            }
            Request::ServiceStage { stage, services } => self.stage(stage, services)?,
            Request::ServiceReplaceStaged { stage, snat } => {
                let Some((_, services)) = self.staged.remove(&stage) else {
                    return Err(Refused::new(
                        ErrorCode::NotFound,
                        format!(
                            "no staged service set {stage} (never staged, committed, or older than {} s)",
                            ctl::STAGE_TTL_SECS
                        ),
                    ));
                };
                self.change(|s| verbs::replace(&mut s.services, &mut s.snat, services, snat))?
            }
            Request::RealServerAdd { key, rs } => self.change(|s| verbs::real_server_add(&mut s.services, &key, rs))?,
            Request::RealServerEdit { key, addr, port, change } => {
                if change.weight.is_some() {
                    let rs = std::net::SocketAddr::new(addr, verbs::effective_port(port, key.vport));
                    self.weight_set = Some((key, rs));
                }
                let r = self.change(|s| verbs::real_server_edit(&mut s.services, &key, addr, port, change));
                self.weight_set = None;
                r?
            }
            Request::RealServerDel { key, addr, port } => {
                self.change(|s| verbs::real_server_del(&mut s.services, &key, addr, port))?
            }
            Request::LaddrAdd { key, addr } => self.change(|s| verbs::laddr_add(&mut s.services, &key, addr))?,
            Request::LaddrDel { key, addr } => self.change(|s| verbs::laddr_del(&mut s.services, &key, addr))?,
            Request::ServiceAcl { key, allow, add, prefixes } => {
                self.change(|s| verbs::service_acl(&mut s.services, &key, allow, add, prefixes))?
            }
            Request::ZeroCounters { key } => {
                if let Some(k) = key {
                    verbs::find(&self.state.services, &k)?;
                }
                let cmd = key.map_or(Command::Zero, Command::ZeroService);
                for w in &self.shared.workers {
                    let _ = w.commands.push(cmd.clone());
                }
                Response::Done { gen: self.shared.gen.load(Ordering::Acquire) }
            }
            Request::ConnList { cursor, max, templates } => self.conn_page(cursor, max, templates)?,
            Request::TimeoutsGet {} => Response::Timeouts { timeouts: self.state.timeouts },
            Request::EdgeDeny { change, prefixes } => self.change(|s| s.edge_deny(change, prefixes))?,
            Request::EdgeDenyList { from, max } => {
                let all = &self.state.deny;
                let start = (from.unwrap_or(0) as usize).min(all.len());
                let n = max.unwrap_or(ctl::MAX_DENY_PAGE).clamp(1, ctl::MAX_DENY_PAGE) as usize;
                let end = start.saturating_add(n).min(all.len());
                Response::EdgeDeny { prefixes: all[start..end].to_vec(), next: (end < all.len()).then_some(end as u32) }
            }
            Request::SnatList {} => Response::Snat { rules: self.state.snat.clone() },
            Request::FwmarkList {} => Response::Fwmark { rules: self.state.fwmark.clone() },
            Request::FwmarkAdd { rule } => self.change(|s| verbs::fwmark_add(&mut s.fwmark, rule))?,
            Request::FwmarkDel { rule } => self.change(|s| verbs::fwmark_del(&mut s.fwmark, &rule))?,
            Request::SyncDaemon { role, start, syncid, mcast_interface } => {
                let sync = self.sync_shared()?;
                sync.set(role, start, syncid, mcast_interface.as_deref())
                    .map_err(|m| Refused::new(ErrorCode::Invalid, m))?;
                // Done, as every change: the audit log records who switched the role.
                Response::Done { gen: self.shared.gen.load(Ordering::Acquire) }
            }
            Request::SyncDaemons {} => Response::SyncDaemons {
                daemons: self.shared.sync.as_ref().map(crate::sync::SyncShared::daemons).unwrap_or_default(),
            },
            Request::SnatAdd { rule } => self.change(|s| verbs::snat_add(&mut s.snat, rule))?,
            Request::SnatDel { rule } => self.change(|s| verbs::snat_del(&mut s.snat, &rule))?,
            Request::SnatWan { rule, wan, add } => self.change(|s| verbs::snat_wan(&mut s.snat, &rule, wan, add))?,
            Request::TimeoutsSet { tcp, tcpfin, udp } => self.change(|s| {
                s.timeouts_set(tcp, tcpfin, udp);
                Ok(())
            })?,
            Request::LinkList { stats } => Response::Links { links: self.links(stats) },
            Request::LinkSet { dev, change } => self.link_set(&dev, change)?,
            Request::VlanList {} => Response::Vlans { vlans: self.vlan_views() },
            Request::VlanAdd { name, link, id } => self.vlan_add(&name, &link, id)?,
            Request::VlanDel { name } => self.vlan_del(&name)?,
            Request::AddrAdd { dev, addr, sapool, lease: true } if self.leased.contains_key(&addr.addr()) => {
                self.lease_take(&dev, addr, sapool, client)?
            }
            Request::AddrAdd { dev, addr, sapool, lease } => {
                let done = self.change(|s| s.addr_add(&dev, addr, sapool))?;
                if lease && self.state.has_addr(addr.addr()) {
                    self.leased.insert(addr.addr(), client);
                }
                done
            }
            Request::AddrDel { dev, addr } => {
                let done = self.change(|s| s.addr_del(&dev, addr))?;
                if !self.state.has_addr(addr) {
                    self.leased.remove(&addr);
                }
                done
            }
            Request::AddrList {} => Response::Addrs { addrs: self.addr_views() },
            Request::RouteAdd(route) => self.change(|s| s.route_add(route))?,
            Request::RouteDel { prefix, metric } => self.change(|s| s.route_del(prefix, metric))?,
            Request::RouteList {} => Response::Routes { routes: self.state.route_views() },
            Request::NeighAdd { addr, mac, dev } => {
                self.state.neigh_add(&mut self.neighs, addr, mac, &dev, self.clock.now_ms())?;
                let gen = self.publish_neighs();
                self.confirm(gen)
            }
            Request::NeighDel { addr } => {
                State::neigh_del(&mut self.neighs, addr)?;
                let gen = self.publish_neighs();
                self.confirm(gen)
            }
            Request::NeighList { after, max } => self.neigh_page(after, max),
            Request::SendGarp { addr, dev, count } => self.send_garp(addr, &dev, count)?,
            Request::Capture { .. } => return Err(Refused::new(ErrorCode::Internal, "capture is handled apart")),
            Request::WorkerStats {} => Response::Workers { workers: self.worker_views()? },
        })
    }

    /// A leased address added again, with a lease, by control connection `client`
    /// (rvs-agent reconnecting, before its old connection's close was seen): the lease
    /// is `client`'s from then on, and the old connection's end leaves the address. Only
    /// the very address (port, prefix, sapool) is taken over; any other is refused as
    /// `addr_add` refuses it.
    fn lease_take(&mut self, dev: &str, net: IpNet, sapool: bool, client: u64) -> Result<Response, Refused> {
        let port = self.state.port(dev)?;
        let same = self.state.addrs.iter().any(|a| a.port == port && a.net == net && a.sapool == sapool);
        if !same {
            return Err(Refused::new(ErrorCode::Exists, format!("address {} exists", net.addr())));
        }
        if let Some(was) = self.leased.insert(net.addr(), client).filter(|was| *was != client) {
            tracing::info!(addr = %net.addr(), %dev, from = was, to = client, "lease taken over by another control connection");
        }
        Ok(Response::Done { gen: self.shared.gen.load(Ordering::Acquire) })
    }

    /// Control connection `client` is gone (it closed, or hung up with a request in
    /// flight): a capture it started ends, and so do its leases, each address removed
    /// from whichever port holds it now. The leases end whatever happens, so that no
    /// reload keeps an address for a connection that is gone; an address no lease of
    /// `client`'s holds any more stays (another connection took it over, a SIGHUP's
    /// file declared it, or a client removed it).
    pub(super) fn client_gone(&mut self, client: u64) {
        self.end_capture_of(client);
        let mut ended: Vec<IpAddr> = self.leased.iter().filter(|(_, c)| **c == client).map(|(a, _)| *a).collect();
        ended.sort();
        let mut gone = Vec::new();
        for addr in ended {
            self.leased.remove(&addr);
            // (Gone already: nothing to remove.)
            let Some(port) = self.state.addrs.iter().find(|a| a.net.addr() == addr).map(|a| a.port) else {
                continue;
            };
            let Some(dev) = self.state.port_names.get(port).cloned() else {
                tracing::warn!(%addr, port, "lease ended, but the address's port has no name: the address stays");
                continue;
            };
            tracing::info!(%addr, %dev, "control connection closed: its lease on the address ends");
            gone.push((dev, addr));
        }
        // One generation for them all (an agent holding many VIPs would otherwise hold
        // the control thread for one worker confirmation each); if the whole set is
        // refused, one at a time, so that one address's refusal keeps only that one.
        let refused = match self.remove_addrs(&gone) {
            Err(_) if gone.len() > 1 => {
                let mut each = Vec::new();
                for one in &gone {
                    match self.remove_addrs(std::slice::from_ref(one)) {
                        Ok(r) => each.extend(r),
                        Err(message) => each.push((one.0.clone(), one.1, message)),
                    }
                }
                each
            }
            Err(message) => gone.into_iter().map(|(dev, addr)| (dev, addr, message.clone())).collect(),
            Ok(r) => r,
        };
        for (dev, addr, message) in refused {
            tracing::warn!(%addr, %dev, "lease ended, but the address could not be removed: {message}");
        }
    }

    /// Removes `addrs` (port, address) in one generation: the ones refused by name
    /// (the others are removed), or the generation's refusal (none is).
    fn remove_addrs(&mut self, addrs: &[(String, IpAddr)]) -> Result<Vec<(String, IpAddr, String)>, String> {
        let mut refused = Vec::new();
        let r = self.change(|s| {
            for (dev, addr) in addrs {
                if let Err(e) = s.addr_del(dev, *addr) {
                    refused.push((dev.clone(), *addr, e.message));
                }
            }
            Ok(())
        });
        match r {
            Ok(Response::Error { code, message }) if code != ErrorCode::Timeout => Err(message),
            Err(Refused { message, .. }) => Err(message),
            Ok(_) => Ok(refused),
        }
    }

    /// Applies `verb` to a copy of the state; if it agrees, validates the copy whole,
    /// adopts it, publishes it and waits for every worker ([`Control::apply`]).
    fn change(&mut self, verb: impl FnOnce(&mut State) -> Result<(), Refused>) -> Result<Response, Refused> {
        let mut next = self.state.clone();
        verb(&mut next)?;
        Ok(self.apply(next))
    }

    pub(super) fn link_set(&mut self, dev: &str, change: LinkChange) -> Result<Response, Refused> {
        let i = self.state.port(dev)?;
        let unsupported =
            |what: &str, e: dpdk::Error| Refused::new(ErrorCode::Unsupported, format!("{dev}: {what}: {e}"));
        if let Some(v) = i.checked_sub(self.ports.len()).and_then(|j| self.vlans.get(j)) {
            if change.up.is_some() || change.promisc.is_some() || change.mac.is_some() {
                let parent = &self.ports[v.parent].name;
                return Err(Refused::new(
                    ErrorCode::Unsupported,
                    format!("{dev} is VLAN {} on {parent}: its link, promiscuity and MAC are {parent}'s", v.id),
                ));
            }
        }
        if let Some(up) = change.up {
            self.ports[i].port.set_link(up).map_err(|e| unsupported(if up { "link up" } else { "link down" }, e))?;
        }
        if let Some(p) = change.promisc {
            self.ports[i].port.set_promiscuous(p).map_err(|e| unsupported("promisc", e))?;
        }
        if let Some(mac) = change.mac {
            // Not multicast (the I/G bit), not zero: an address a port may send from.
            if mac.0[0] & 1 != 0 || mac.0 == [0; 6] {
                return Err(Refused::new(ErrorCode::Invalid, format!("{dev}: {mac} is not a unicast MAC")));
            }
            self.ports[i].port.set_mac(mac.0).map_err(|e| unsupported("addr", e))?;
            if let Some(t) = &mut self.ports[i].twin {
                if let Err(e) = t.port.set_mac(mac.0) {
                    tracing::warn!(port = dev, twin = %t.ifname, "the twin keeps its MAC: {e}");
                }
            }
            tracing::info!(port = dev, %mac, "port MAC changed");
        }
        if change.forward2kni.is_some() || change.mac.is_some() {
            let mut ports = (*self.shared.current().ports).clone();
            if let Some(f) = change.forward2kni {
                ports[i].forward2kni = f;
            }
            if let Some(mac) = change.mac {
                ports[i].mac = mac;
            }
            let gen = self.publish_ports(ports);
            let done = self.confirm(gen);
            if change.mac.is_some() {
                // Neighbours learn the new MAC now, not when their entries lapse.
                let v4: Vec<IpAddr> = self
                    .state
                    .addrs
                    .iter()
                    .filter(|a| a.port == i && a.net.addr().is_ipv4())
                    .map(|a| a.net.addr())
                    .collect();
                for a in v4 {
                    if let Err(r) = self.send_garp(a, dev, 1) {
                        tracing::warn!(port = dev, addr = %a, "gratuitous ARP: {}", r.message);
                    }
                }
            }
            return Ok(done);
        }
        Ok(Response::Done { gen: self.shared.gen.load(Ordering::Acquire) })
    }

    /// Sends `count` gratuitous ARPs / unsolicited neighbour advertisements for `addr`
    /// from port `dev` (through worker 0's transmit queue).
    fn send_garp(&mut self, addr: IpAddr, dev: &str, count: u32) -> Result<Response, Refused> {
        let port = self.state.port(dev)?;
        if !(1..=100).contains(&count) {
            return Err(Refused::new(ErrorCode::Invalid, format!("count {count} is outside 1..=100")));
        }
        let snap = self.shared.current();
        // Announcing another host's address (the gateway's) would take its traffic.
        if snap.addrs.owner(addr).is_none_or(|(p, _)| p.0 as usize != port) {
            return Err(Refused::new(
                ErrorCode::Invalid,
                format!("{addr} is not an address of {dev}: rvsd announces only its own (add it first)"),
            ));
        }
        let mac = snap.ports[port].mac;
        let mut b = Burst::new();
        for _ in 0..count {
            let mut m = Mbuf::alloc(&self.pool).ok_or_else(|| Refused::new(ErrorCode::Internal, "mbuf pool empty"))?;
            let buf = m.append(128).ok_or_else(|| Refused::new(ErrorCode::Internal, "mbuf too small"))?;
            let len = match addr {
                IpAddr::V4(a) => netstack::arp::build_gratuitous(buf, mac, a),
                IpAddr::V6(a) => netstack::nd::build_unsolicited_na(buf, mac, a),
            }
            .map_err(|e| Refused::new(ErrorCode::Internal, format!("building the announcement: {e}")))?;
            m.trim(128 - len);
            m.set_port(port as u16);
            let _ = b.push(m);
            if b.is_full() {
                self.twin_down.enqueue_burst(&mut b);
                b.clear();
            }
        }
        self.twin_down.enqueue_burst(&mut b);
        let dropped = b.len();
        b.clear();
        if dropped > 0 {
            return Err(Refused::new(ErrorCode::Internal, format!("{dropped} announcements dropped: queue full")));
        }
        Ok(Response::Done { gen: self.shared.gen.load(Ordering::Acquire) })
    }
}
