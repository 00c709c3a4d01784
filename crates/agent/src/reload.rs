//! Reload (SIGHUP): what differs between the running configuration and a new one, so
//! that only the differences are applied.
//!
//! * VRRP instances: an instance is unchanged when its own block, the `global_defs`, the
//!   `vrrp_script`s it tracks and its sync groups (with every member's block) are; an
//!   unchanged instance keeps running in its state (a master stays master, no election);
//!   a changed one hands over to its successor in its state, as keepalived's
//!   `restore_vrrp_state` ([`changed_leaves`]: a master keeps its VIPs, gains the new
//!   ones, drops the ones gone, and no script runs); removed ones are stopped (keepalived's
//!   `FAULT` or, with `notify_deleted`, `DELETED` notifies), added ones started.
//! * Services ([`diff_services`]): added, removed, changed (scheduler, persistence, local
//!   addresses); within the services kept, real servers added, removed, weights changed,
//!   or edited in place when their forwarding method or thresholds change (they keep
//!   their connections, and their checkers run on).
//!   Services are compared as the dataplane holds them (live weights: a server that is
//!   down stays down), so an unchanged service is sent unchanged and rvsd keeps its real
//!   servers (and their connections).
//! * SNAT rules ([`diff_snat`]): added, removed, or with other WAN addresses, by match
//!   (what names a rule in rvsd); applied with [`Dataplane::set_snat`], which touches only
//!   those.
//! * Checkers ([`Pool::reload`]): started for added real servers, stopped for removed
//!   ones, restarted only when a server's checks changed.
//! * keepalived's `lvs_timeouts` (global_defs): rvsd's global timeouts set again when they
//!   changed ([`Diff::apply_timeouts`]), as keepalived sets IPVS's on every reload. It is
//!   not part of an instance's fingerprint (neither are `vrrp_startup_delay`, which counts
//!   at the agent's start only, and `lvs_flush_on_stop`, read at shutdown): changing them
//!   restarts no VRRP instance.
//!
//! Line numbers do not count as a change (`loc` fields are ignored).

use crate::check::pool::{CheckerChange, CheckerPlan, Pool};
use crate::dataplane::{Dataplane, LvsTimeouts, RealServer, Service, ServiceKey};
use crate::keepalived::config::VrrpInstance;
use crate::keepalived::Config;
use crate::vrrp::instance::Leave;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::SocketAddr;

/// How one item differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Only in the new configuration.
    Added,
    /// Only in the old one.
    Removed,
    /// In both, different.
    Changed,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        })
    }
}

/// A real-server difference within a service present before and after.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RsChange {
    /// Added (`RealServerAdd`).
    Added(ServiceKey, RealServer),
    /// Removed (`RealServerDel`).
    Removed(ServiceKey, SocketAddr),
    /// Weight from, to (`RealServerEdit`).
    Weight(ServiceKey, SocketAddr, u32, u32),
    /// More than the weight (forwarding method, `uthreshold`, `lthreshold`): the server
    /// from, to (`RealServerEdit` of each).
    Edit(ServiceKey, RealServer, RealServer),
}

/// The differences between two sets of services.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceDiff {
    /// Services added, removed, or changed in anything but their real servers.
    pub services: Vec<(ServiceKey, Change)>,
    /// Real servers of services present in both.
    pub real_servers: Vec<RsChange>,
}

fn template(s: &Service) -> Service {
    let mut t = Service { real_servers: Vec::new(), ..s.clone() };
    t.local_addrs.sort_by(|a, b| (a.addr, &a.port_name).cmp(&(b.addr, &b.port_name)));
    t
}

/// Compares services by key: added, removed, changed (scheduler, persistence, local
/// addresses), and the real servers of those in both, by address: added, removed, their
/// weight changed, or anything else of them (forwarding method, thresholds).
pub fn diff_services(old: &[Service], new: &[Service]) -> ServiceDiff {
    let o: BTreeMap<ServiceKey, &Service> = old.iter().map(|s| (s.key, s)).collect();
    let n: BTreeMap<ServiceKey, &Service> = new.iter().map(|s| (s.key, s)).collect();
    let mut d = ServiceDiff::default();
    for (k, a) in &o {
        let Some(b) = n.get(k) else {
            d.services.push((*k, Change::Removed));
            continue;
        };
        if template(a) != template(b) {
            d.services.push((*k, Change::Changed));
        }
        for r in &a.real_servers {
            match b.real_servers.iter().find(|x| x.addr == r.addr) {
                None => d.real_servers.push(RsChange::Removed(*k, r.addr)),
                Some(x) if x == r => {}
                Some(x) if (RealServer { weight: r.weight, ..x.clone() }) == *r => {
                    d.real_servers.push(RsChange::Weight(*k, r.addr, r.weight, x.weight))
                }
                Some(x) => d.real_servers.push(RsChange::Edit(*k, r.clone(), x.clone())),
            }
        }
        for x in &b.real_servers {
            if !a.real_servers.iter().any(|r| r.addr == x.addr) {
                d.real_servers.push(RsChange::Added(*k, x.clone()));
            }
        }
    }
    for k in n.keys().filter(|k| !o.contains_key(k)) {
        d.services.push((*k, Change::Added));
    }
    d
}

fn strip_loc(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.remove("loc");
            m.values_mut().for_each(strip_loc);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_loc),
        _ => {}
    }
}

/// A value for comparison, without locations.
pub(crate) fn comparable<T: serde::Serialize>(t: &T) -> Value {
    let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
    strip_loc(&mut v);
    v
}

/// Everything an instance's behaviour depends on, without locations: equal fingerprints
/// mean the running instance can be kept.
pub fn instance_fingerprint(cfg: &Config, name: &str) -> Option<Value> {
    cfg.vrrp_instances.iter().find(|i| i.name == name)?;
    let groups: Vec<_> = cfg.vrrp_sync_groups.iter().filter(|g| g.members.iter().any(|m| m == name)).collect();
    let mut members: BTreeSet<&str> = groups.iter().flat_map(|g| g.members.iter().map(String::as_str)).collect();
    members.insert(name);
    let insts: Vec<_> = cfg.vrrp_instances.iter().filter(|i| members.contains(i.name.as_str())).collect();
    let tracked: BTreeSet<&str> = insts.iter().flat_map(|i| i.track_script.iter().map(|t| t.name.as_str())).collect();
    let scripts: Vec<_> = cfg.vrrp_scripts.iter().filter(|s| tracked.contains(s.name.as_str())).collect();
    let procs: BTreeSet<&str> = insts.iter().flat_map(|i| i.track_process.iter().map(|t| t.name.as_str())).collect();
    let processes: Vec<_> = cfg.vrrp_track_processes.iter().filter(|p| procs.contains(p.name.as_str())).collect();
    // A tracked bfd_instance's weight (its session runs apart: crate::agent::Agent::ensure_bfd).
    let bfds: BTreeSet<&str> = insts.iter().flat_map(|i| i.track_bfd.iter().map(|t| t.name.as_str())).collect();
    let bfd_weights: Vec<_> = cfg
        .bfd_instances
        .iter()
        .filter(|b| bfds.contains(b.name.as_str()))
        .map(|b| (&b.name, b.weight, b.weight_reverse, b.vrrp))
        .collect();
    // What in global_defs is not the instances' business (mail: read at each reload,
    // crate::agent::mail; vrrp_strict, vrrp_down_timer_adverts and
    // vrrp_notify_priority_changes: their effects are in the instances' own fields).
    let mut global = comparable(&cfg.global_defs);
    if let Value::Object(m) = &mut global {
        for k in [
            "lvs_timeouts",
            "vrrp_startup_delay",
            "lvs_flush_on_stop",
            "smtp",
            "net_namespace",
            "vrrp_strict",
            "script_security",
            "startup_script",
            "shutdown_script",
            "vrrp_down_timer_adverts",
            "vrrp_notify_priority_changes",
            "rs_init_notifies",
        ] {
            m.remove(k);
        }
    }
    // Nor an instance's or group's own smtp_alert, nor an instance's strict_mode (its
    // effects are in the instance's other fields).
    let quiet = |v: Value| {
        let mut v = v;
        if let Value::Array(items) = &mut v {
            for i in items {
                if let Some(Value::Object(n)) = i.get_mut("notify") {
                    n.remove("smtp_alert");
                }
                if let Value::Object(i) = i {
                    i.remove("strict_mode");
                }
            }
        }
        v
    };
    Some(comparable(&serde_json::json!({
        "global": global,
        "instances": quiet(comparable(&insts)),
        "scripts": comparable(&scripts),
        "processes": comparable(&processes),
        "bfd": comparable(&bfd_weights),
        "groups": quiet(comparable(&groups)),
    })))
}

/// Instances added, removed, changed (see [`instance_fingerprint`]), in configuration order.
pub fn diff_instances(old: &Config, new: &Config) -> Vec<(String, Change)> {
    let mut out = Vec::new();
    for i in &old.vrrp_instances {
        match new.vrrp_instances.iter().any(|x| x.name == i.name) {
            false => out.push((i.name.clone(), Change::Removed)),
            true if instance_fingerprint(old, &i.name) != instance_fingerprint(new, &i.name) => {
                out.push((i.name.clone(), Change::Changed))
            }
            true => {}
        }
    }
    for i in &new.vrrp_instances {
        if !old.vrrp_instances.iter().any(|x| x.name == i.name) {
            out.push((i.name.clone(), Change::Added));
        }
    }
    out
}

/// How an instance a reload changed leaves, as keepalived's `vrrp_exist`: the same
/// router (same VRID, interface, port, family, multicast group, or unicast with the same
/// source) hands over to its successor in its state ([`Leave::Handover`]: a master stays
/// master, nothing is notified); another router is the old one removed
/// ([`Leave::Removed`]) and a new one started. A sync group hands over when its members
/// (the same in both files) all do, and restarts with them otherwise ([`Leave::Stop`]);
/// an instance whose `lvs_sync_daemon` binding changes restarts too (its
/// connection-sync roles start over with it).
pub fn changed_leaves(old: &Config, new: &Config, name: &str) -> Leave {
    let group = |c: &'_ Config| c.vrrp_sync_groups.iter().find(|g| g.members.iter().any(|m| m == name)).cloned();
    let sync_id = |c: &Config, name: &str| {
        c.global_defs.lvs_sync_daemon.as_ref().filter(|d| d.instance.as_deref() == Some(name)).map(|d| d.syncid)
    };
    let find = |c: &'_ Config, name: &str| c.vrrp_instances.iter().find(|i| i.name == name).cloned();
    let key = |i: &VrrpInstance, c: &Config| {
        let to = if i.unicast() { i.unicast_src_ip } else { Some(i.mcast_group(&c.global_defs)) };
        (i.vrid, i.interface.clone(), i.vip_port().to_string(), i.is_ipv6(), i.unicast(), to)
    };
    let same = |name: &str| match (find(old, name), find(new, name)) {
        (Some(a), Some(b)) => key(&a, old) == key(&b, new),
        _ => false,
    };
    let handover = |name: &str| same(name) && sync_id(old, name) == sync_id(new, name);
    if !same(name) {
        return Leave::Removed;
    }
    let all = match (group(old), group(new)) {
        (None, None) => handover(name),
        (Some(a), Some(b)) if (&a.name, &a.members) == (&b.name, &b.members) => a.members.iter().all(|m| handover(m)),
        _ => false,
    };
    if all {
        Leave::Handover
    } else {
        Leave::Stop
    }
}

/// SNAT rules (`virtual_server match`) added, removed, or whose WAN addresses changed (as a
/// set: rvsd takes them in turn), by match; each with its name in the new configuration
/// (the old one for a removed rule). A rule renamed with the same match is not a change:
/// rvsd names rules by match.
pub fn diff_snat(old: &Config, new: &Config) -> Vec<(String, Change)> {
    let label = |r: &ctl::SnatSpec| format!("{} ({})", r.name.as_deref().unwrap_or_default(), r.match_text());
    let wan = |r: &ctl::SnatSpec| r.wan.iter().copied().collect::<BTreeSet<_>>();
    let mut out = Vec::new();
    for o in old.snat.iter().map(|s| &s.rule) {
        match new.snat.iter().map(|s| &s.rule).find(|n| n.same_match(o)) {
            None => out.push((label(o), Change::Removed)),
            Some(n) if wan(n) != wan(o) => out.push((label(n), Change::Changed)),
            Some(_) => {}
        }
    }
    for n in new.snat.iter().map(|s| &s.rule) {
        if !old.snat.iter().any(|o| o.rule.same_match(n)) {
            out.push((label(n), Change::Added));
        }
    }
    out
}

/// Everything a reload changes.
#[derive(Debug, Clone, Default)]
pub struct Diff {
    /// VRRP instances.
    pub instances: Vec<(String, Change)>,
    /// Services and real servers (live weights).
    pub services: ServiceDiff,
    /// Checkers.
    pub checkers: Vec<CheckerChange>,
    /// The services after the reload (live weights).
    pub new_services: Vec<Service>,
    /// SNAT rules (see [`diff_snat`]).
    pub snat: Vec<(String, Change)>,
    /// The SNAT rules after the reload.
    pub new_snat: Vec<ctl::SnatSpec>,
    /// keepalived's `lvs_timeouts`, `(before, after)`, when they differ.
    pub timeouts: Option<(LvsTimeouts, LvsTimeouts)>,
}

impl Diff {
    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
            && self.services.services.is_empty()
            && self.services.real_servers.is_empty()
            && self.checkers.is_empty()
            && self.snat.is_empty()
            && self.timeouts.is_none()
    }

    /// One line per difference, for the log.
    pub fn lines(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (name, c) in &self.instances {
            let what = match c {
                Change::Added => "added: started",
                Change::Removed => "removed: stopped",
                Change::Changed => "changed",
            };
            out.push(format!("vrrp_instance {name} {what}"));
        }
        for (k, c) in &self.services.services {
            out.push(format!("virtual server {} {c}", svc(k)));
        }
        for r in &self.services.real_servers {
            out.push(match r {
                RsChange::Added(k, rs) => {
                    format!("virtual server {}: real server {} added, weight {}", svc(k), rs.addr, rs.weight)
                }
                RsChange::Removed(k, a) => format!("virtual server {}: real server {a} removed", svc(k)),
                RsChange::Weight(k, a, from, to) => {
                    format!("virtual server {}: real server {a} weight {from} -> {to}", svc(k))
                }
                RsChange::Edit(k, from, to) => {
                    format!("virtual server {}: real server {} {}", svc(k), to.addr, rs_edits(from, to))
                }
            });
        }
        for c in &self.checkers {
            let what = match c.change {
                Change::Added => "started",
                Change::Removed => "stopped",
                Change::Changed => "restarted (checks changed)",
            };
            out.push(format!("virtual server {}: real server {} checker {what}", c.vs, c.rs));
        }
        for (rule, c) in &self.snat {
            let what = match c {
                Change::Changed => "WAN addresses changed",
                c => &c.to_string(),
            };
            out.push(format!("SNAT rule {rule} {what}"));
        }
        if let Some((from, to)) = &self.timeouts {
            out.push(format!("lvs_timeouts {from} -> {to}"));
        }
        out
    }

    /// Applies a change of `lvs_timeouts`: the dataplane is asked for the new timeouts
    /// (those no longer set go back to its own values); nothing is sent when they did not
    /// change.
    pub fn apply_timeouts(&self, dp: &dyn Dataplane) {
        let Some((_, to)) = self.timeouts else { return };
        if let Err(e) = dp.set_timeouts(to) {
            tracing::error!("reload: lvs_timeouts: {e}");
        }
    }

    /// Applies the SNAT differences: the dataplane reconciles the new rules with what it
    /// holds (nothing is sent when no rule changed).
    pub fn apply_snat(&self, dp: &dyn Dataplane) {
        if self.snat.is_empty() {
            return;
        }
        if let Err(e) = dp.set_snat(&self.new_snat) {
            tracing::error!("reload: SNAT rules: {e}");
        }
    }

    /// Applies the service differences to the dataplane with the smallest requests: real
    /// servers one by one when no service as such changes; else the whole set (unchanged
    /// services identical, so rvsd keeps their real servers and connections).
    pub fn apply_services(&self, dp: &dyn Dataplane) {
        if !self.services.services.is_empty() {
            if let Err(e) = dp.set_services(&self.new_services) {
                tracing::error!("reload: loading services: {e}");
            }
            return;
        }
        for r in &self.services.real_servers {
            let res = match r {
                RsChange::Added(k, rs) => dp.add_real_server(k, rs.clone()),
                RsChange::Removed(k, a) => dp.del_real_server(k, *a),
                RsChange::Weight(k, a, _, to) => dp.set_weight(k, *a, *to),
                RsChange::Edit(k, _, to) => dp.edit_real_server(k, to.clone()),
            };
            if let Err(e) = res {
                tracing::error!("reload: {r:?}: {e}");
            }
        }
    }
}

/// What an edit of a real server changes, as keepalived.conf words it: `lvs_method NAT
/// -> DR, uthreshold 0 -> 100` (`lvs_method`: the real server's own, or its virtual
/// server's `lb_kind`).
fn rs_edits(from: &RealServer, to: &RealServer) -> String {
    let mut out = Vec::new();
    if from.fwd != to.fwd {
        out.push(format!("lvs_method {} -> {}", from.fwd.lb_kind(), to.fwd.lb_kind()));
    }
    for (word, a, b) in
        [("uthreshold", from.upper, to.upper), ("lthreshold", from.lower, to.lower), ("weight", from.weight, to.weight)]
    {
        if a != b {
            out.push(format!("{word} {a} -> {b}"));
        }
    }
    out.join(", ")
}

/// `tcp 192.0.2.1:80`, `fwmark 1`.
fn svc(k: &ServiceKey) -> String {
    k.to_string()
}

/// The differences from `old` (running, with `pool`'s live health) to `new`, the pool for
/// `new` and the checkers to stop and start.
pub fn plan(old: &Config, pool: &Pool, new: &Config) -> (Diff, Pool, CheckerPlan) {
    let (next, checkers) = pool.reload(new);
    let new_services = next.services();
    let diff = Diff {
        instances: diff_instances(old, new),
        services: diff_services(&pool.services(), &new_services),
        checkers: checkers.changes.clone(),
        new_services,
        snat: diff_snat(old, new),
        new_snat: new.snat.iter().map(|s| s.rule.clone()).collect(),
        timeouts: {
            let (from, to) = (old.global_defs.lvs_timeouts, new.global_defs.lvs_timeouts);
            (from != to).then_some((from, to))
        },
    };
    (diff, next, checkers)
}

/// The differences between two configurations, `old` as the agent starts from it (every
/// real server up, but those `alpha` starts down).
pub fn diff(old: &Config, new: &Config) -> Diff {
    let (pool, _, _) = Pool::from_config(old);
    plan(old, &pool, new).0
}

#[cfg(test)]
mod tests;
