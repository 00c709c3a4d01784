//! From configuration and checker transitions to dataplane state: the services to load
//! (one per virtual server, or per member of its group), and what a real server going down
//! or up changes: weight 0 with `inhibit_on_failure`, else removal; quorum with hysteresis
//! switching to the sorry server; notify_up/down and quorum_up/down scripts.

use super::{rs_checks, RsChecks, RsId, Transition};
use crate::dataplane::{Dataplane, DataplaneError, LocalAddr, Proto, RealServer, Service, ServiceKey};
use crate::keepalived::config::{AddressGroupKind, Config, VsTarget};
use crate::reload::Change;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};

/// One real server's live state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RsState {
    /// Its checker's id (kept across reloads while the server stays).
    pub id: RsId,
    /// Address.
    pub addr: SocketAddr,
    /// Configured weight.
    pub weight: u32,
    /// Configured connection thresholds (upper, lower).
    pub thresholds: (u32, u32),
    /// How its connections are forwarded.
    pub fwd: fnat::types::FwdMode,
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
    /// The change of weight FILE_CHECKs ask for (0 without them).
    pub weight_delta: i64,
}

impl RsState {
    /// The weight while up: the configured one plus FILE_CHECK's change, at least 0.
    pub fn effective_weight(&self) -> u32 {
        (i64::from(self.weight) + self.weight_delta).clamp(0, i64::from(u32::MAX)) as u32
    }

    /// The real server as the dataplane holds it while up.
    fn dataplane(&self) -> RealServer {
        RealServer {
            addr: self.addr,
            weight: self.effective_weight(),
            upper: self.thresholds.0,
            lower: self.thresholds.1,
            fwd: self.fwd,
        }
    }
}

/// One virtual server's live state (possibly several dataplane services, for a group).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VsState {
    /// Its name in the log and in metrics ([`vs_label`]).
    pub name: String,
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
    /// The virtual server's `lb_kind`: how the sorry server is reached.
    pub sorry_fwd: fnat::types::FwdMode,
    /// `quorum_up` script.
    pub quorum_up: Option<String>,
    /// `quorum_down` script.
    pub quorum_down: Option<String>,
    /// Whether the quorum is currently met.
    pub quorum_ok: bool,
}

impl VsState {
    fn live_weight(&self) -> u64 {
        self.rs.iter().filter(|r| r.up).map(|r| u64::from(r.effective_weight())).sum()
    }
}

/// What identifies a virtual server across reloads: protocol and `IP PORT` or group name.
pub type VsIdent = (Proto, VsTarget);

/// A virtual server's identity for the log: `tcp 192.0.2.1:80` or `tcp group NAME`.
pub fn vs_label(id: &VsIdent) -> String {
    let proto = match id.0 {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    match &id.1 {
        VsTarget::Addr(a) => format!("{proto} {a}"),
        VsTarget::Group(g) => format!("{proto} group {g}"),
    }
}

/// What a health change asks for besides the dataplane.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Notices {
    /// Scripts to run (notify_up/down, quorum_up/down), in order.
    pub scripts: Vec<String>,
    /// Lines for keepalived's `lvs_notify_fifo` / `notify_fifo` (see
    /// [`crate::agent::fifo`]), in order.
    pub fifo: Vec<String>,
}

/// keepalived's `[ADDR]:PROTO:PORT` (`inet_sockaddrtotrio`).
fn trio(proto: Proto, addr: &str, port: u16) -> String {
    let proto = match proto {
        Proto::Tcp => "tcp",
        Proto::Udp => "udp",
    };
    format!("[{addr}]:{proto}:{port}")
}

/// A virtual server in keepalived's FIFO lines (`format_vs`): `[VIP]:PROTO:PORT`, or
/// `[GROUP]:0` for `virtual_server group GROUP` (keepalived prints its unset port).
fn fifo_vs(id: &VsIdent) -> String {
    match &id.1 {
        VsTarget::Addr(a) => trio(id.0, &a.ip().to_string(), a.port()),
        VsTarget::Group(g) => format!("[{g}]:0"),
    }
}

/// What the pool keeps of a virtual server's configuration besides its live state.
#[derive(Debug, Clone)]
struct VsMeta {
    ident: VsIdent,
    /// Its services without real servers.
    templates: Vec<Service>,
    /// Each real server's checker id and checks (parallel to [`VsState::rs`]).
    rs: Vec<RsChecks>,
}

/// A checker started, stopped or restarted by a reload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckerChange {
    /// The virtual server ([`vs_label`]).
    pub vs: String,
    /// The real server.
    pub rs: SocketAddr,
    /// Added: started; Removed: stopped; Changed: restarted (its checks changed).
    pub change: Change,
}

/// The checkers to stop and start to go from one pool to the next.
#[derive(Debug, Clone, Default)]
pub struct CheckerPlan {
    /// Checker ids to stop (removed real servers, changed checks).
    pub stop: Vec<RsId>,
    /// Checkers to start, with the server's current health.
    pub start: Vec<(RsChecks, bool)>,
    /// What changed, for the log.
    pub changes: Vec<CheckerChange>,
}

/// All virtual servers, with the map from checker ids to real servers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pool {
    /// Virtual servers in configuration order.
    pub vs: Vec<VsState>,
    #[serde(skip)]
    ids: BTreeMap<RsId, (usize, usize)>,
    #[serde(skip)]
    meta: Vec<VsMeta>,
    #[serde(skip)]
    next_id: RsId,
}

impl Pool {
    /// Builds the pool, the services to load (every real server up, as keepalived without
    /// `alpha`) and the checks to run.
    pub fn from_config(cfg: &Config) -> (Pool, Vec<Service>, Vec<RsChecks>) {
        let (pool, plan) = Pool::build(cfg, None);
        let services = pool.services();
        (pool, services, plan.start.into_iter().map(|(c, _)| c).collect())
    }

    /// The pool for a new configuration, carrying over the health of the real servers it
    /// keeps (same virtual server, same address; their checker ids are kept), and the
    /// checkers to stop and start: for removed and added real servers, and for those whose
    /// checks changed (restarted from the current health). Unchanged checkers keep running.
    pub fn reload(&self, cfg: &Config) -> (Pool, CheckerPlan) {
        Pool::build(cfg, Some(self))
    }

    fn build(cfg: &Config, old: Option<&Pool>) -> (Pool, CheckerPlan) {
        let mut pool = Pool { next_id: old.map_or(0, |o| o.next_id), ..Pool::default() };
        let mut plan = CheckerPlan::default();
        let mut old_vs: HashMap<&VsIdent, usize> = HashMap::new();
        if let Some(o) = old {
            for (i, m) in o.meta.iter().enumerate() {
                old_vs.entry(&m.ident).or_insert(i);
            }
        }
        let mut kept: HashSet<RsId> = HashSet::new();
        // Addresses VRRP moves: a local address among them moves with the VIPs.
        let vrrp: HashSet<IpAddr> = cfg
            .vrrp_instances
            .iter()
            .flat_map(|i| i.virtual_ipaddress.iter().chain(&i.virtual_ipaddress_excluded))
            .map(|v| v.addr.addr())
            .collect();
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
                        .map(|(a, dev)| LocalAddr {
                            addr: *a,
                            port_name: dev.clone().unwrap_or_default(),
                            moves_with_vip: vrrp.contains(a),
                        })
                        .collect()
                })
                .unwrap_or_default();
            let prefixes = |name: &Option<String>, kind: AddressGroupKind| -> Vec<ipnet::IpNet> {
                name.as_ref()
                    .and_then(|n| cfg.address_groups.iter().find(|g| g.kind == kind && &g.name == n))
                    .map(|g| g.prefixes.clone())
                    .unwrap_or_default()
            };
            let deny = prefixes(&v.daddr_group_name, AddressGroupKind::Deny);
            let allow = prefixes(&v.waddr_group_name, AddressGroupKind::Allow);
            let ident: VsIdent = (v.protocol, v.target.clone());
            let label = vs_label(&ident);
            let prev = old.and_then(|o| old_vs.get(&ident).map(|&i| (o, i)));
            let vs_index = pool.vs.len();
            let mut rs = Vec::new();
            let mut rs_meta = Vec::new();
            for (ri, r) in v.real_servers.iter().enumerate() {
                let fresh = rs_checks(0, r, v.delay_loop, v.proxy_protocol);
                let found = prev.and_then(|(o, i)| {
                    o.vs[i]
                        .rs
                        .iter()
                        .zip(&o.meta[i].rs)
                        .find(|(st, c)| st.addr == r.addr && !kept.contains(&c.id))
                        .map(|(st, c)| (st.clone(), c.clone()))
                });
                let (id, up, reason) = match found {
                    Some((st, c)) => {
                        kept.insert(c.id);
                        if c.checks != fresh.checks || c.delay_loop != fresh.delay_loop {
                            plan.stop.push(c.id);
                            plan.start.push((RsChecks { id: c.id, ..fresh.clone() }, st.up));
                            plan.changes.push(CheckerChange { vs: label.clone(), rs: r.addr, change: Change::Changed });
                        }
                        (c.id, st.up, st.reason)
                    }
                    None => {
                        let id = pool.next_id;
                        pool.next_id += 1;
                        plan.start.push((RsChecks { id, ..fresh.clone() }, true));
                        if old.is_some() {
                            plan.changes.push(CheckerChange { vs: label.clone(), rs: r.addr, change: Change::Added });
                        }
                        (id, true, None)
                    }
                };
                pool.ids.insert(id, (vs_index, ri));
                rs_meta.push(RsChecks { id, ..fresh });
                rs.push(RsState {
                    id,
                    addr: r.addr,
                    weight: r.weight,
                    thresholds: (r.upper, r.lower),
                    fwd: r.lb_kind,
                    inhibit: r.inhibit_on_failure,
                    up,
                    notify_up: r.notify_up.clone(),
                    notify_down: r.notify_down.clone(),
                    reason,
                    weight_delta: 0,
                });
            }
            let templates = keys
                .iter()
                .map(|k| Service {
                    key: *k,
                    scheduler: v.lb_algo.clone(),
                    persistence_timeout: v.persistence_timeout,
                    persistence_granularity: v.persistence_granularity,
                    syn_proxy: v.syn_proxy,
                    proxy_protocol: v.proxy_protocol,
                    sched_flags: v.sched_flags,
                    deny: deny.clone(),
                    allow: allow.clone(),
                    local_addrs: local_addrs.clone(),
                    real_servers: Vec::new(),
                })
                .collect();
            let mut state = VsState {
                name: label.clone(),
                keys,
                rs,
                quorum: v.quorum,
                hysteresis: v.hysteresis,
                sorry: v.sorry_server,
                sorry_fwd: v.lb_kind,
                quorum_up: v.quorum_up.clone(),
                quorum_down: v.quorum_down.clone(),
                quorum_ok: true,
            };
            let live = state.live_weight();
            let (q, h) = (u64::from(state.quorum), u64::from(state.hysteresis));
            state.quorum_ok = match prev {
                // Kept: the quorum moves only past the hysteresis, as on a health change.
                Some((o, i)) if o.vs[i].quorum_ok => live >= q.saturating_sub(h),
                Some(_) => live >= q + h,
                None => live >= q,
            };
            pool.vs.push(state);
            pool.meta.push(VsMeta { ident, templates, rs: rs_meta });
        }
        if let Some(o) = old {
            for (vi, m) in o.meta.iter().enumerate() {
                for (c, st) in m.rs.iter().zip(&o.vs[vi].rs) {
                    if !kept.contains(&c.id) {
                        plan.stop.push(c.id);
                        plan.changes.push(CheckerChange {
                            vs: vs_label(&m.ident),
                            rs: st.addr,
                            change: Change::Removed,
                        });
                    }
                }
            }
        }
        (pool, plan)
    }

    /// The services as the dataplane should hold them now: each real server with its
    /// configured weight while up, weight 0 while down with `inhibit_on_failure` (absent
    /// while down without), and the sorry server (weight 1) while the quorum is lost.
    pub fn services(&self) -> Vec<Service> {
        let mut out = Vec::new();
        for (vs, m) in self.vs.iter().zip(&self.meta) {
            let mut rs: Vec<RealServer> = vs
                .rs
                .iter()
                .filter(|r| r.up || r.inhibit)
                .map(|r| RealServer { weight: if r.up { r.effective_weight() } else { 0 }, ..r.dataplane() })
                .collect();
            if let (false, Some(s)) = (vs.quorum_ok, vs.sorry) {
                if !rs.iter().any(|r| r.addr == s) {
                    rs.push(RealServer { fwd: vs.sorry_fwd, ..RealServer::new(s, 1) });
                }
            }
            for t in &m.templates {
                out.push(Service { real_servers: rs.clone(), ..t.clone() });
            }
        }
        out
    }

    /// The real server a checker id stands for.
    pub fn rs(&self, id: RsId) -> Option<&RsState> {
        let &(v, r) = self.ids.get(&id)?;
        self.vs.get(v).and_then(|v| v.rs.get(r))
    }

    /// Applies a transition to the dataplane; returns the scripts to run (notify_up/down,
    /// quorum_up/down) and keepalived's notify FIFO lines, in order.
    pub fn apply(&mut self, t: &Transition, dp: &dyn Dataplane) -> Result<Notices, DataplaneError> {
        let mut out = Notices::default();
        let Some(&(vi, ri)) = self.ids.get(&t.id) else { return Ok(out) };
        let ident = &self.meta[vi].ident;
        let vs = &mut self.vs[vi];
        let rs = &mut vs.rs[ri];
        if rs.up == t.up && (!t.up || rs.weight_delta == t.weight_delta) {
            return Ok(out);
        }
        let health_changed = rs.up != t.up;
        rs.up = t.up;
        if t.up {
            rs.weight_delta = t.weight_delta;
        }
        rs.reason = Some(t.reason.clone());
        let rs = rs.clone();
        for key in &vs.keys {
            match (t.up, rs.inhibit, health_changed) {
                (true, _, false) | (true, true, true) => dp.set_weight(key, rs.addr, rs.effective_weight())?,
                (true, false, true) => dp.add_real_server(key, rs.dataplane())?,
                (false, true, _) => dp.set_weight(key, rs.addr, 0)?,
                (false, false, _) => dp.del_real_server(key, rs.addr)?,
            }
        }
        let state = |up: bool| if up { "UP" } else { "DOWN" };
        if health_changed {
            out.scripts.extend(if t.up { rs.notify_up } else { rs.notify_down });
            let rs_line = trio(ident.0, &rs.addr.ip().to_string(), rs.addr.port());
            out.fifo.push(format!("RS {rs_line} {} {}\n", fifo_vs(ident), state(t.up)));
        }
        let live = vs.live_weight();
        let (q, h) = (u64::from(vs.quorum), u64::from(vs.hysteresis));
        if vs.quorum_ok && live < q.saturating_sub(h) {
            vs.quorum_ok = false;
            tracing::warn!(vs = %fifo_vs(ident), live, quorum = q, hysteresis = h, "virtual server lost its quorum");
            if let Some(s) = vs.sorry {
                for key in &vs.keys {
                    dp.add_real_server(key, RealServer { fwd: vs.sorry_fwd, ..RealServer::new(s, 1) })?;
                }
            }
            out.scripts.extend(vs.quorum_down.clone());
            out.fifo.push(format!("VS {} DOWN\n", fifo_vs(ident)));
        } else if !vs.quorum_ok && live >= q + h {
            vs.quorum_ok = true;
            tracing::info!(vs = %fifo_vs(ident), live, quorum = q, hysteresis = h, "virtual server regained its quorum");
            if let Some(s) = vs.sorry {
                for key in &vs.keys {
                    dp.del_real_server(key, s)?;
                }
            }
            out.scripts.extend(vs.quorum_up.clone());
            out.fifo.push(format!("VS {} UP\n", fifo_vs(ident)));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::{Call, FakeDataplane};
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
        Transition { id, up: false, reason: "test".into(), weight_delta: 0 }
    }

    fn up(id: RsId) -> Transition {
        Transition { id, up: true, reason: "test".into(), weight_delta: 0 }
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
    fn address_groups_become_the_services_deny_and_allow_lists() {
        let conf = "deny_address_group bad {\n 192.0.2.0/24\n}\nallow_address_group good {\n 10.0.0.0/8\n}\n"
            .to_string()
            + &CONF.replace(
                " laddr_group_name l\n",
                " laddr_group_name l\n daddr_group_name bad\n waddr_group_name good\n",
            );
        let l = parse_str(&conf, "t", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        let (_, services, _) = Pool::from_config(&l.config);
        for s in &services {
            assert_eq!(s.deny, ["192.0.2.0/24".parse::<ipnet::IpNet>().unwrap()]);
            assert_eq!(s.allow, ["10.0.0.0/8".parse::<ipnet::IpNet>().unwrap()]);
        }
        let (_, plain, _) = Pool::from_config(&parse_str(CONF, "t", Options::default()).config);
        assert!(plain.iter().all(|s| s.deny.is_empty() && s.allow.is_empty()));
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
        assert_eq!(s.scripts, ["/bin/down1", "/bin/qdown"]);
        // keepalived's FIFO lines (a group's virtual server is [NAME]:0).
        assert_eq!(s.fifo, ["RS [10.0.1.1]:tcp:80 [g]:0 DOWN\n", "VS [g]:0 DOWN\n"]);
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
        let s = pool.apply(&up(1), &dp).unwrap();
        assert!(s.scripts.is_empty());
        assert_eq!(s.fifo, ["RS [10.0.1.2]:tcp:80 [g]:0 UP\n"]);
        assert!(dp.calls().contains(&Call::AddRs(key("192.0.2.2"), rs2, 100)));
        // rs1 back: 200 >= 160: quorum restored, sorry server removed.
        let s = pool.apply(&up(0), &dp).unwrap();
        assert_eq!(s.scripts, ["/bin/qup"]);
        assert_eq!(s.fifo, ["RS [10.0.1.1]:tcp:80 [g]:0 UP\n", "VS [g]:0 UP\n"]);
        let svc = dp.service(&key("192.0.2.1")).unwrap();
        assert!(!svc.real_servers.iter().any(|r| r.addr == sorry));
        assert_eq!(svc.real_servers.iter().find(|r| r.addr == rs1).unwrap().weight, 100);
    }
}
