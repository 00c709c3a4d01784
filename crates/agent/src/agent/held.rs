//! The addresses rvsd holds for the agent, for `ha_suspend`: keepalived's checker process
//! follows the box's addresses through a netlink reflector (`update_checker_activity` in
//! 2.2.7's `check/check_api.c`) and runs the checkers of an `ha_suspend` virtual server
//! only while one of its addresses is there. rvs's VIPs live in rvsd, put there by the
//! agent itself (a VRRP instance's when it becomes MASTER, `static_ipaddress` at start), so
//! the agent learns them where it adds and removes them: [`HeldVips`] wraps the dataplane
//! and publishes the set after each change. Addresses rvsd holds by its own configuration
//! are not seen.

use crate::check::HeldAddrs;
use crate::dataplane::{Dataplane, DataplaneError, DataplaneStatus, RealServer, Service, ServiceKey, SyncRoles};
use ipnet::IpNet;
use std::collections::{BTreeSet, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use tokio::sync::watch;

/// A dataplane that passes every call on and keeps the set of virtual addresses added to
/// it (and not removed since), published as a [`HeldAddrs`].
pub struct HeldVips {
    inner: Arc<dyn Dataplane>,
    /// Each address with its DPDK port: the same address on two ports is held until
    /// both are removed (as keepalived counts an address on several interfaces).
    vips: Mutex<HashSet<(IpAddr, String)>>,
    tx: watch::Sender<BTreeSet<IpAddr>>,
}

impl HeldVips {
    /// Wraps `inner`; nothing held yet.
    pub fn new(inner: Arc<dyn Dataplane>) -> HeldVips {
        let (tx, _) = watch::channel(BTreeSet::new());
        HeldVips { inner, vips: Mutex::new(HashSet::new()), tx }
    }

    /// Follows the addresses held.
    pub fn subscribe(&self) -> HeldAddrs {
        self.tx.subscribe()
    }

    fn update(&self, f: impl FnOnce(&mut HashSet<(IpAddr, String)>)) {
        let mut vips = self.vips.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut vips);
        let now: BTreeSet<IpAddr> = vips.iter().map(|(a, _)| *a).collect();
        self.tx.send_if_modified(|held| {
            let changed = *held != now;
            *held = now;
            changed
        });
    }
}

impl Dataplane for HeldVips {
    fn add_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError> {
        self.inner.add_vip(addr, port_name)?;
        self.update(|v| {
            v.insert((addr.addr(), port_name.to_string()));
        });
        Ok(())
    }

    fn del_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError> {
        let r = self.inner.del_vip(addr, port_name);
        // Whatever rvsd answered, the agent no longer holds it.
        self.update(|v| {
            v.remove(&(addr.addr(), port_name.to_string()));
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
}
