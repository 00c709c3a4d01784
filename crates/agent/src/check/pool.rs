//! From configuration and checker transitions to dataplane state: the services to load
//! (one per virtual server, or per member of its group), and what a real server going down
//! or up changes: weight 0 with `inhibit_on_failure`, else removal; quorum with hysteresis
//! switching to the sorry server; notify_up/down and quorum_up/down scripts.

use super::{rs_checks, RsChecks, RsId, Transition};
use crate::dataplane::{Dataplane, DataplaneError, LocalAddr, RealServer, Service, ServiceKey};
use crate::keepalived::config::{Config, VsTarget};
use serde::Serialize;
use std::net::SocketAddr;

/// One real server's live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RsState {
    /// Address.
    pub addr: SocketAddr,
    /// Configured weight.
    pub weight: u32,
    /// Weight 0 instead of removal on failure.
    pub inhibit: bool,
    /// Current health.
    pub up: bool,
    /// Script run on up.
    pub notify_up: Option<String>,
    /// Script run on down.
    pub notify_down: Option<String>,
    /// Why the last health change happened (none yet: up since start).
    pub reason: Option<String>,
}

/// One virtual server's live state (possibly several dataplane services, for a group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VsState {
    /// The dataplane services it stands for.
    pub keys: Vec<ServiceKey>,
    /// Real servers.
    pub rs: Vec<RsState>,
    /// `quorum`.
    pub quorum: u32,
    /// `hysteresis`.
    pub hysteresis: u32,
    /// `sorry_server`.
    pub sorry: Option<SocketAddr>,
    /// `quorum_up` script.
    pub quorum_up: Option<String>,
    /// `quorum_down` script.
    pub quorum_down: Option<String>,
    /// Whether the quorum is currently met.
    pub quorum_ok: bool,
}

impl VsState {
    fn live_weight(&self) -> u64 {
        self.rs.iter().filter(|r| r.up).map(|r| u64::from(r.weight)).sum()
    }
}

/// All virtual servers, with the map from checker ids to real servers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pool {
    /// Virtual servers in configuration order.
    pub vs: Vec<VsState>,
    ids: Vec<(usize, usize)>,
}

impl Pool {
    /// Builds the pool, the services to load (every real server up, as keepalived without
    /// `alpha`) and the checks to run.
    pub fn from_config(cfg: &Config) -> (Pool, Vec<Service>, Vec<RsChecks>) {
        let mut pool = Pool::default();
        let mut services = Vec::new();
        let mut checks = Vec::new();
        for v in &cfg.virtual_servers {
            let addrs: Vec<SocketAddr> = match &v.target {
                VsTarget::Addr(a) => vec![*a],
                VsTarget::Group(g) => cfg
                    .virtual_server_groups
                    .iter()
                    .filter(|x| &x.name == g)
                    .flat_map(|x| x.members.iter().copied())
                    .collect(),
            };
            let keys: Vec<ServiceKey> =
                addrs.iter().map(|a| ServiceKey { proto: v.protocol, vip: a.ip(), vport: a.port() }).collect();
            let local_addrs: Vec<LocalAddr> = v
                .laddr_group_name
                .as_ref()
                .and_then(|n| cfg.local_address_groups.iter().find(|g| &g.name == n))
                .map(|g| {
                    g.addrs
                        .iter()
                        .map(|(a, dev)| LocalAddr { addr: *a, port_name: dev.clone().unwrap_or_default() })
                        .collect()
                })
                .unwrap_or_default();
            let vs_index = pool.vs.len();
            let mut rs = Vec::new();
            for (ri, r) in v.real_servers.iter().enumerate() {
                let id: RsId = pool.ids.len();
                pool.ids.push((vs_index, ri));
                checks.push(rs_checks(id, r, v.delay_loop));
                rs.push(RsState {
                    addr: r.addr,
                    weight: r.weight,
                    inhibit: r.inhibit_on_failure,
                    up: true,
                    notify_up: r.notify_up.clone(),
                    notify_down: r.notify_down.clone(),
                    reason: None,
                });
            }
            for k in &keys {
                services.push(Service {
                    key: *k,
                    scheduler: v.lb_algo.clone(),
                    persistence_timeout: v.persistence_timeout,
                    persistence_granularity: v.persistence_granularity,
                    local_addrs: local_addrs.clone(),
                    real_servers: rs.iter().map(|r| RealServer { addr: r.addr, weight: r.weight }).collect(),
                });
            }
            let mut state = VsState {
                keys,
                rs,
                quorum: v.quorum,
                hysteresis: v.hysteresis,
                sorry: v.sorry_server,
                quorum_up: v.quorum_up.clone(),
                quorum_down: v.quorum_down.clone(),
                quorum_ok: true,
            };
            state.quorum_ok = state.live_weight() >= u64::from(state.quorum);
            pool.vs.push(state);
        }
        (pool, services, checks)
    }

    /// The real server a checker id stands for.
    pub fn rs(&self, id: RsId) -> Option<&RsState> {
        let &(v, r) = self.ids.get(id)?;
        self.vs.get(v).and_then(|v| v.rs.get(r))
    }

    /// Applies a transition to the dataplane; returns the scripts to run (notify_up/down,
    /// quorum_up/down), in order.
    pub fn apply(&mut self, t: &Transition, dp: &dyn Dataplane) -> Result<Vec<String>, DataplaneError> {
        let mut scripts = Vec::new();
        let Some(&(vi, ri)) = self.ids.get(t.id) else { return Ok(scripts) };
        let vs = &mut self.vs[vi];
        let rs = &mut vs.rs[ri];
        if rs.up == t.up {
            return Ok(scripts);
        }
        rs.up = t.up;
        rs.reason = Some(t.reason.clone());
        let rs = rs.clone();
        for key in &vs.keys {
            match (t.up, rs.inhibit) {
                (true, true) => dp.set_weight(key, rs.addr, rs.weight)?,
                (true, false) => dp.add_real_server(key, RealServer { addr: rs.addr, weight: rs.weight })?,
                (false, true) => dp.set_weight(key, rs.addr, 0)?,
                (false, false) => dp.del_real_server(key, rs.addr)?,
            }
        }
        scripts.extend(if t.up { rs.notify_up } else { rs.notify_down });
        let live = vs.live_weight();
        let (q, h) = (u64::from(vs.quorum), u64::from(vs.hysteresis));
        if vs.quorum_ok && live < q.saturating_sub(h) {
            vs.quorum_ok = false;
            if let Some(s) = vs.sorry {
                for key in &vs.keys {
                    dp.add_real_server(key, RealServer { addr: s, weight: 1 })?;
                }
            }
            scripts.extend(vs.quorum_down.clone());
        } else if !vs.quorum_ok && live >= q + h {
            vs.quorum_ok = true;
            if let Some(s) = vs.sorry {
                for key in &vs.keys {
                    dp.del_real_server(key, s)?;
                }
            }
            scripts.extend(vs.quorum_up.clone());
        }
        Ok(scripts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{Call, FakeDataplane, Proto};
    use crate::keepalived::{parse_str, Options};

    const CONF: &str = "virtual_server_group g {\n 192.0.2.1 80\n 192.0.2.2 80\n}\n\
        local_address_group l {\n 10.0.0.100 dpdk1\n}\n\
        virtual_server group g {\n lb_kind FNAT\n lb_algo rr\n laddr_group_name l\n delay_loop 2\n quorum 150\n hysteresis 10\n\
        sorry_server 10.0.9.9 80\n quorum_down \"/bin/qdown\"\n quorum_up \"/bin/qup\"\n\
        real_server 10.0.1.1 80 {\n weight 100\n inhibit_on_failure\n notify_down \"/bin/down1\"\n TCP_CHECK {\n connect_timeout 1\n }\n }\n\
        real_server 10.0.1.2 80 {\n weight 100\n TCP_CHECK {\n connect_timeout 1\n }\n }\n}\n";

    fn key(vip: &str) -> ServiceKey {
        ServiceKey { proto: Proto::Tcp, vip: vip.parse().unwrap(), vport: 80 }
    }

    fn down(id: RsId) -> Transition {
        Transition { id, up: false, reason: "test".into() }
    }

    fn up(id: RsId) -> Transition {
        Transition { id, up: true, reason: "test".into() }
    }

    #[test]
    fn group_expands_to_services_with_local_addresses_and_checks() {
        let l = parse_str(CONF, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let (pool, services, checks) = Pool::from_config(&l.config);
        assert_eq!(services.len(), 2);
        assert_eq!(services[1].key, key("192.0.2.2"));
        assert_eq!(services[0].local_addrs[0].port_name, "dpdk1");
        assert_eq!(services[0].real_servers.len(), 2);
        assert_eq!(checks.len(), 2);
        assert_eq!(checks[1].delay_loop, std::time::Duration::from_secs(2));
        assert!(pool.vs[0].quorum_ok);
        assert_eq!(pool.rs(1).unwrap().addr, "10.0.1.2:80".parse().unwrap());
    }

    #[test]
    fn failure_inhibits_or_removes_and_quorum_switches_to_sorry_server() {
        let l = parse_str(CONF, "t", Options::default());
        let (mut pool, services, _) = Pool::from_config(&l.config);
        let dp = FakeDataplane::new();
        dp.set_services(&services).unwrap();
        let rs1: SocketAddr = "10.0.1.1:80".parse().unwrap();
        let rs2: SocketAddr = "10.0.1.2:80".parse().unwrap();
        let sorry: SocketAddr = "10.0.9.9:80".parse().unwrap();
        // rs1 (inhibit) down: weight 0 on both services; live 100 < 150 - 10: quorum lost.
        let s = pool.apply(&down(0), &dp).unwrap();
        assert_eq!(s, ["/bin/down1", "/bin/qdown"]);
        let svc = dp.service(&key("192.0.2.1")).unwrap();
        assert_eq!(svc.real_servers.iter().find(|r| r.addr == rs1).unwrap().weight, 0);
        assert!(svc.real_servers.iter().any(|r| r.addr == sorry));
        // rs2 (no inhibit) down: removed.
        pool.apply(&down(1), &dp).unwrap();
        assert!(!dp.service(&key("192.0.2.2")).unwrap().real_servers.iter().any(|r| r.addr == rs2));
        // Repeated transitions are no-ops.
        let before = dp.calls().len();
        pool.apply(&down(1), &dp).unwrap();
        assert_eq!(dp.calls().len(), before);
        // rs2 back: 100 < 150 + 10, still no quorum.
        assert!(pool.apply(&up(1), &dp).unwrap().is_empty());
        assert!(dp.calls().contains(&Call::AddRs(key("192.0.2.2"), rs2, 100)));
        // rs1 back: 200 >= 160: quorum restored, sorry server removed.
        assert_eq!(pool.apply(&up(0), &dp).unwrap(), ["/bin/qup"]);
        let svc = dp.service(&key("192.0.2.1")).unwrap();
        assert!(!svc.real_servers.iter().any(|r| r.addr == sorry));
        assert_eq!(svc.real_servers.iter().find(|r| r.addr == rs1).unwrap().weight, 100);
    }
}
