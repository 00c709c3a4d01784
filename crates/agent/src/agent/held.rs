//! The addresses the box holds, for `ha_suspend`: keepalived's checker process follows
//! the box's addresses through a netlink reflector (`update_checker_activity` in 2.2.7's
//! `check/check_api.c`) and runs the checkers of an `ha_suspend` virtual server only while
//! one of its addresses is there. rvs's addresses live in rvsd. [`HeldVips`] wraps the
//! dataplane and publishes the set from two sources:
//! * the addresses the agent adds and removes itself (a VRRP instance's VIPs when it
//!   becomes MASTER, `static_ipaddress`), at once, and for those only the agent's word
//!   counts (a listing taken before the agent's change cannot bring one back);
//! * every other address rvsd reports holding ([`Dataplane::watch_addresses`]: rvsd.toml's
//!   addresses, `rvsip addr add`, the VIPs another rvs-agent added, as under `-C` beside a
//!   `-P` one), learnt about once a second.

use crate::check::HeldAddrs;
use crate::dataplane::{
    Dataplane, DataplaneError, DataplaneStatus, LvsTimeouts, RealServer, Service, ServiceKey, SyncRoles,
};
use ipnet::IpNet;
use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// A dataplane that passes every call on and publishes, as a [`HeldAddrs`], the addresses
/// the box holds (see the module documentation).
pub struct HeldVips {
    inner: Arc<dyn Dataplane>,
    state: Arc<State>,
}

struct State {
    sets: Mutex<Sets>,
    tx: watch::Sender<BTreeSet<IpAddr>>,
}

#[derive(Default)]
struct Sets {
    /// Each address the agent added and has not removed, with its DPDK port: the same
    /// address on two ports is held until both are removed (as keepalived counts an
    /// address on several interfaces).
    added: HashSet<(IpAddr, String)>,
    /// Every address the agent has added or removed: the agent's own, whatever rvsd's
    /// latest listing says of it.
    own: HashSet<IpAddr>,
    /// rvsd's latest listing.
    listed: BTreeSet<IpAddr>,
}

impl State {
    fn update(&self, f: impl FnOnce(&mut Sets)) {
        let mut sets = self.sets.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut sets);
        let now: BTreeSet<IpAddr> = sets
            .added
            .iter()
            .map(|(a, _)| *a)
            .chain(sets.listed.iter().copied().filter(|a| !sets.own.contains(a)))
            .collect();
        self.tx.send_if_modified(|held| {
            let changed = *held != now;
            *held = now;
            changed
        });
    }
}

impl HeldVips {
    /// Wraps `inner`, asking it for its addresses; nothing held yet.
    pub fn new(inner: Arc<dyn Dataplane>) -> HeldVips {
        let (tx, _) = watch::channel(BTreeSet::new());
        let state = Arc::new(State { sets: Mutex::new(Sets::default()), tx });
        let weak = Arc::downgrade(&state);
        inner.watch_addresses(Box::new(move |listed| {
            if let Some(state) = weak.upgrade() {
                state.update(|s| s.listed = listed);
            }
        }));
        HeldVips { inner, state }
    }

    /// Follows the addresses held.
    pub fn subscribe(&self) -> HeldAddrs {
        self.state.tx.subscribe()
    }
}

impl Dataplane for HeldVips {
    fn add_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError> {
        self.inner.add_vip(addr, port_name)?;
        self.state.update(|s| {
            s.added.insert((addr.addr(), port_name.to_string()));
            s.own.insert(addr.addr());
        });
        Ok(())
    }

    fn del_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError> {
        let r = self.inner.del_vip(addr, port_name);
        // Whatever rvsd answered, the agent no longer holds it.
        self.state.update(|s| {
            s.added.remove(&(addr.addr(), port_name.to_string()));
            s.own.insert(addr.addr());
        });
        r
    }

    fn send_garp(&self, addr: IpAddr, port_name: &str, count: u32) -> Result<(), DataplaneError> {
        self.inner.send_garp(addr, port_name, count)
    }

    fn set_services(&self, services: &[Service]) -> Result<(), DataplaneError> {
        self.inner.set_services(services)
    }

    fn set_weight(&self, service: &ServiceKey, rs: SocketAddr, weight: u32) -> Result<(), DataplaneError> {
        self.inner.set_weight(service, rs, weight)
    }

    fn add_real_server(&self, service: &ServiceKey, rs: RealServer) -> Result<(), DataplaneError> {
        self.inner.add_real_server(service, rs)
    }

    fn del_real_server(&self, service: &ServiceKey, rs: SocketAddr) -> Result<(), DataplaneError> {
        self.inner.del_real_server(service, rs)
    }

    fn edit_real_server(&self, service: &ServiceKey, rs: RealServer) -> Result<(), DataplaneError> {
        self.inner.edit_real_server(service, rs)
    }

    fn add_route(&self, route: &ctl::RouteSpec) -> Result<(), DataplaneError> {
        self.inner.add_route(route)
    }

    fn del_route(&self, route: &ctl::RouteSpec) -> Result<(), DataplaneError> {
        self.inner.del_route(route)
    }

    fn set_snat(&self, rules: &[ctl::SnatSpec]) -> Result<(), DataplaneError> {
        self.inner.set_snat(rules)
    }

    fn set_sync_roles(&self, roles: SyncRoles, why: &str) -> Result<(), DataplaneError> {
        self.inner.set_sync_roles(roles, why)
    }

    fn set_timeouts(&self, timeouts: LvsTimeouts) -> Result<(), DataplaneError> {
        self.inner.set_timeouts(timeouts)
    }

    fn status(&self) -> DataplaneStatus {
        self.inner.status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::FakeDataplane;

    /// Added addresses are published once each; an address on two ports stays held until
    /// both are removed; every call reaches the wrapped dataplane.
    #[test]
    fn publishes_the_addresses_added_and_not_removed() {
        let fake = Arc::new(FakeDataplane::new());
        let dp = HeldVips::new(fake.clone());
        let held = dp.subscribe();
        let a: IpNet = "192.0.2.1/32".parse().unwrap();
        let b: IpNet = "2001:db8::1/128".parse().unwrap();
        dp.add_vip(a, "dpdk0").unwrap();
        dp.add_vip(a, "dpdk1").unwrap();
        dp.add_vip(b, "dpdk0").unwrap();
        assert_eq!(*held.borrow(), [a.addr(), b.addr()].into_iter().collect());
        dp.del_vip(a, "dpdk0").unwrap();
        assert!(held.borrow().contains(&a.addr()), "still on dpdk1");
        dp.del_vip(a, "dpdk1").unwrap();
        assert_eq!(*held.borrow(), [b.addr()].into_iter().collect());
        assert_eq!(fake.vips(), [(b, "dpdk0".to_string())]);
        assert_eq!(dp.status(), fake.status());
    }

    /// What rvsd lists is held too (its own addresses, another agent's), except the
    /// agent's own addresses, for which the agent's word counts: a listing taken before
    /// it removed one does not bring it back, one taken before it added one does not take
    /// it away.
    #[test]
    fn rvsd_listed_addresses_count_except_the_agents_own() {
        let fake = Arc::new(FakeDataplane::new());
        let dp = HeldVips::new(fake.clone());
        let held = dp.subscribe();
        let (own, other): (IpAddr, IpAddr) = ("192.0.2.1".parse().unwrap(), "192.0.2.9".parse().unwrap());
        fake.report_addresses(&[other]);
        assert_eq!(*held.borrow(), [other].into_iter().collect());
        dp.add_vip(IpNet::from(own), "dpdk0").unwrap();
        fake.report_addresses(&[other]); // listed before the add reached rvsd
        assert_eq!(*held.borrow(), [own, other].into_iter().collect());
        dp.del_vip(IpNet::from(own), "dpdk0").unwrap();
        fake.report_addresses(&[own, other]); // listed before the removal reached rvsd
        assert_eq!(*held.borrow(), [other].into_iter().collect());
        fake.report_addresses(&[]); // someone removed it from rvsd
        assert!(held.borrow().is_empty());
        drop(dp);
        fake.report_addresses(&[other]); // a report after the wrapper is gone is dropped
    }
}
