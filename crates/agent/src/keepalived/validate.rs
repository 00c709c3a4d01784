//! Checks across a parsed [`Config`] (and across the two nodes of a pair): the mistakes
//! keepalived starts with silently.

use super::config::*;
use super::diag::{Diagnostic, Loc};
use crate::vrrp::packet::Version;
use std::collections::{HashMap, HashSet};

/// Validates one configuration.
pub fn validate(cfg: &Config) -> Vec<Diagnostic> {
    let mut d = Vec::new();
    let scripts: HashMap<&str, &VrrpScript> = cfg.vrrp_scripts.iter().map(|s| (s.name.as_str(), s)).collect();
    let mut seen_vrid: HashMap<(&str, u8, bool), &VrrpInstance> = HashMap::new();
    let mut names = HashSet::new();
    for i in &cfg.vrrp_instances {
        let e = |m: String| Diagnostic::error(i.loc.clone(), format!("vrrp_instance {}: {m}", i.name));
        let w = |m: String| Diagnostic::warning(i.loc.clone(), format!("vrrp_instance {}: {m}", i.name));
        if !names.insert(i.name.as_str()) {
            d.push(e("defined twice".into()));
        }
        if i.interface.is_empty() {
            d.push(e("no interface".into()));
        }
        if i.vrid == 0 {
            d.push(e("no virtual_router_id (1-255)".into()));
        }
        if i.virtual_ipaddress.is_empty() {
            d.push(e("no virtual_ipaddress".into()));
        }
        let v6 = i.is_ipv6();
        if i.virtual_ipaddress.iter().any(|v| v.addr.addr().is_ipv6() != v6) {
            d.push(e("virtual_ipaddress mixes IPv4 and IPv6 (use one instance per family)".into()));
        }
        if v6 && i.version == Version::V2 {
            d.push(e("IPv6 virtual addresses need VRRPv3 (version 3)".into()));
        }
        if i.vrid != 0 && !i.interface.is_empty() {
            if let Some(prev) = seen_vrid.insert((i.interface.as_str(), i.vrid, v6), i) {
                d.push(e(format!(
                    "virtual_router_id {} is already used on {} by vrrp_instance {} ({})",
                    i.vrid, i.interface, prev.name, prev.loc
                )));
            }
        }
        if i.unicast_block && i.unicast_peers.is_empty() {
            if i.unicast_fault_no_peer {
                d.push(
                    w("unicast_peer block has no peers: the instance stays in FAULT (unicast_fault_no_peer)".into()),
                );
            } else {
                d.push(e("unicast_peer block has no peers: adverts would go nowhere".into()));
            }
        }
        if let (Some(src), Some(peer)) = (i.unicast_src_ip, i.unicast_peers.first()) {
            if src.is_ipv6() != peer.is_ipv6() {
                d.push(e("unicast_src_ip and unicast_peer are of different families".into()));
            }
        }
        if i.track_src_ip && i.unicast_src_ip.is_none() {
            d.push(w("track_src_ip without unicast_src_ip or mcast_src_ip: nothing to track (as keepalived)".into()));
        }
        if i.nopreempt && i.state == InitialState::Master {
            d.push(w("nopreempt only works with state BACKUP (keepalived ignores it with MASTER)".into()));
        }
        let mut weighted = false;
        for t in &i.track_script {
            match scripts.get(t.name.as_str()) {
                None => d.push(e(format!("track_script {} names no vrrp_script", t.name))),
                Some(s) => weighted |= t.weight.unwrap_or(s.weight) != 0,
            }
        }
        for t in &i.track_process {
            match cfg.vrrp_track_processes.iter().find(|p| p.name == t.name) {
                None => d.push(e(format!("track_process {} names no vrrp_track_process", t.name))),
                Some(p) => weighted |= t.weight.unwrap_or(p.weight) != 0,
            }
        }
        for t in &i.track_bfd {
            match cfg.bfd_instances.iter().find(|b| b.name == t.name) {
                None => d.push(e(format!("track_bfd {} names no bfd_instance", t.name))),
                Some(b) if !b.vrrp => {
                    d.push(e(format!("track_bfd {}: that bfd_instance is for the checker only ('checker')", t.name)))
                }
                Some(b) => weighted |= t.weight.unwrap_or(b.weight) != 0,
            }
            if let Some(w) = t.weight.filter(|w| !(-253..=253).contains(w)) {
                d.push(e(format!("track_bfd {}: weight {w} is outside keepalived's -253..253", t.name)));
            }
        }
        weighted |= i.track_interface.iter().any(|t| t.weight.unwrap_or(0) != 0);
        if i.priority == 255 && weighted {
            d.push(e(
                "priority 255 (address owner) ignores tracking weights: this node can never fail over on a tracked failure"
                    .into(),
            ));
        }
    }
    let mut member_of: HashMap<&str, &str> = HashMap::new();
    for g in &cfg.vrrp_sync_groups {
        for m in &g.members {
            if !names.contains(m.as_str()) {
                d.push(Diagnostic::error(g.loc.clone(), format!("vrrp_sync_group {}: no vrrp_instance {m}", g.name)));
            }
            if let Some(other) = member_of.insert(m, &g.name) {
                d.push(Diagnostic::error(
                    g.loc.clone(),
                    format!("vrrp_instance {m} is in vrrp_sync_groups {other} and {}", g.name),
                ));
            }
        }
    }
    let mut groups: HashMap<&str, &Loc> = HashMap::new();
    for g in &cfg.virtual_server_groups {
        match groups.get(g.name.as_str()) {
            // keepalived's virtual servers find the first (`ipvs_get_group_by_name`) and
            // never the second, silently.
            Some(first) => d.push(Diagnostic::error(
                g.loc.clone(),
                format!(
                    "virtual_server_group {}: defined twice (first at {first}): keepalived uses the first alone \
                     and ignores this one; write the entries in one block",
                    g.name
                ),
            )),
            None => {
                groups.insert(&g.name, &g.loc);
            }
        }
    }
    let laddrs: HashSet<&str> = cfg.local_address_groups.iter().map(|g| g.name.as_str()).collect();
    let mut services = HashSet::new();
    for v in &cfg.virtual_servers {
        let what = v.target.describe();
        let e = |m: String| Diagnostic::error(v.loc.clone(), format!("{what}: {m}"));
        let w = |m: String| Diagnostic::warning(v.loc.clone(), format!("{what}: {m}"));
        if let VsTarget::Group(g) = &v.target {
            if !groups.contains_key(g.as_str()) {
                d.push(e(format!("no virtual_server_group {g}")));
            }
        }
        if !services.insert((v.target.clone(), v.protocol)) {
            d.push(e("defined twice".into()));
        }
        for (name, kind, key) in [
            (&v.daddr_group_name, AddressGroupKind::Deny, "daddr_group_name"),
            (&v.waddr_group_name, AddressGroupKind::Allow, "waddr_group_name"),
        ] {
            if let Some(n) = name {
                if !cfg.address_groups.iter().any(|g| g.kind == kind && &g.name == n) {
                    let block = if kind == AddressGroupKind::Deny { "deny" } else { "allow" };
                    d.push(e(format!("{key} {n}: no {block}_address_group {n}")));
                }
            }
        }
        match &v.laddr_group_name {
            Some(l) if !laddrs.contains(l.as_str()) => d.push(e(format!("no local_address_group {l}"))),
            None if v.lb_kind.needs_local_addrs() || v.real_servers.iter().any(|r| r.lb_kind.needs_local_addrs()) => {
                d.push(w("no laddr_group_name: FullNAT and TUN need local addresses (rvsd's defaults are used)".into()))
            }
            _ => {}
        }
        let mut rs_seen = HashSet::new();
        for rs in &v.real_servers {
            if !rs_seen.insert(rs.addr) {
                d.push(Diagnostic::error(rs.loc.clone(), format!("{what}: real_server {} defined twice", rs.addr)));
            }
            let mut followed = HashSet::new();
            for c in &rs.checks {
                let CheckKind::Bfd { name } = &c.kind else { continue };
                let e = |m: String| {
                    Diagnostic::error(c.loc.clone(), format!("real_server {}: BFD_CHECK {name}: {m}", rs.addr))
                };
                match cfg.bfd_instances.iter().find(|b| &b.name == name) {
                    None => d.push(e("no bfd_instance of that name".into())),
                    Some(b) if !b.checker => d.push(e("that bfd_instance is for VRRP only ('vrrp')".into())),
                    Some(_) => {}
                }
                if !followed.insert(name) {
                    d.push(e("the real server already follows it".into()));
                }
            }
        }
        let total: u64 = v.real_servers.iter().map(|r| u64::from(r.weight)).sum();
        if u64::from(v.quorum) > total && !v.real_servers.is_empty() {
            d.push(w(format!("quorum {} exceeds the total weight {total}: the service can never be up", v.quorum)));
        }
        if v.hysteresis >= v.quorum && v.hysteresis > 0 {
            d.push(w(format!("hysteresis {} is not below quorum {}", v.hysteresis, v.quorum)));
        }
        if v.real_servers.is_empty() && v.sorry_server.is_none() {
            d.push(w("no real_server and no sorry_server".into()));
        }
    }
    same_service_twice(cfg, &mut d);
    lips_that_move(cfg, &mut d);
    d
}

/// What rvsd's own check of a service (`ctl::verbs::check`, the core's rules on
/// real servers: thresholds, forwarding modes against the service's options, ports,
/// families) refuses in the services this file makes, each at its virtual_server: rvsd
/// refuses the whole set for one bad service, so `-t` must say so first. Only for a
/// file with no error yet (each service as it would be sent).
pub fn rvsd_refusals(cfg: &Config, d: &mut Vec<Diagnostic>) {
    let (_, services, _) = crate::check::pool::Pool::from_config(cfg);
    for s in &services {
        // What cannot be put in rvsd's words is reported where the services are loaded.
        let Ok(spec) = crate::dataplane::to_spec(s) else { continue };
        let Err(problems) = ctl::verbs::check(&[spec], &|_| None) else { continue };
        let v = cfg.virtual_servers.iter().find(|v| crate::check::pool::vs_keys(cfg, v).contains(&s.key));
        let loc = v.map_or_else(|| Loc { file: "".into(), line: 0 }, |v| v.loc.clone());
        for p in problems {
            let m = format!("rvsd would refuse this (and with it every other service): {}", p.refused.message);
            d.push(Diagnostic::error(loc.clone(), m));
        }
    }
}

/// One dataplane service from two virtual servers, or twice from one (a group): rvsd
/// would refuse the whole set. A fwmark service takes TCP and UDP, so a TCP and a UDP
/// virtual server on a group with fwmark entries (keepalived's habit for addresses) make
/// one service twice. Two virtual servers written alike are "defined twice" already.
fn same_service_twice(cfg: &Config, d: &mut Vec<Diagnostic>) {
    let mut seen: HashMap<crate::dataplane::ServiceKey, usize> = HashMap::new();
    for (i, v) in cfg.virtual_servers.iter().enumerate() {
        for k in crate::check::pool::vs_keys(cfg, v) {
            let Some(&j) = seen.get(&k) else {
                seen.insert(k, i);
                continue;
            };
            let other = &cfg.virtual_servers[j];
            if j != i && (&other.target, other.protocol) == (&v.target, v.protocol) {
                continue;
            }
            let whose = match j == i {
                true => "twice in its group".to_string(),
                false => format!("also {}'s ({})", other.target.describe(), other.loc),
            };
            let hint = match k.is_fwmark() {
                true => ": a fwmark service takes TCP and UDP, one virtual server per mark and family",
                false => "",
            };
            d.push(Diagnostic::error(v.loc.clone(), format!("{}: service {k} is {whose}{hint}", v.target.describe())));
        }
    }
}

/// A local address that is also a `virtual_ipaddress` moves with the VIPs (the agent adds
/// it to rvsd as a sapool address on MASTER, see `dataplane::rvsd`): it must go on the port
/// its `local_address_group` names.
fn lips_that_move(cfg: &Config, d: &mut Vec<Diagnostic>) {
    use crate::dataplane::port_of;
    let used: HashSet<&str> = cfg.virtual_servers.iter().filter_map(|v| v.laddr_group_name.as_deref()).collect();
    let groups: Vec<&LocalAddressGroup> =
        cfg.local_address_groups.iter().filter(|g| used.contains(g.name.as_str())).collect();
    let mut seen = HashSet::new();
    for i in &cfg.vrrp_instances {
        for v in i.virtual_ipaddress.iter().chain(&i.virtual_ipaddress_excluded) {
            let port = v.dev.as_deref().map_or_else(|| i.vip_port(), port_of);
            for g in &groups {
                let ports = g.addrs.iter().filter(|(a, _)| *a == v.addr.addr()).filter_map(|(_, dev)| dev.as_deref());
                for group_port in ports.map(port_of).filter(|p| *p != port) {
                    if !seen.insert((i.name.as_str(), v.addr, g.name.as_str(), group_port)) {
                        continue;
                    }
                    d.push(Diagnostic::error(
                        i.loc.clone(),
                        format!(
                            "vrrp_instance {}: virtual_ipaddress {} goes on {port}, but local_address_group {} has \
                             it on {group_port}: a local address that moves with the VIPs must be on its group's \
                             port (`{} dev {group_port}`)",
                            i.name, v.addr, g.name, v.addr
                        ),
                    ));
                }
            }
        }
    }
}

/// Validates the two nodes of a pair against each other: for every VRRP group they share
/// (same VRID and family), a tracked object whose weight cannot bridge the priority gap
/// (|prio A - prio B| >= |weight|) can never cause a failover.
pub fn validate_pair(a: &Config, b: &Config) -> Vec<Diagnostic> {
    let mut d = Vec::new();
    for ia in &a.vrrp_instances {
        for ib in b.vrrp_instances.iter().filter(|ib| ib.vrid == ia.vrid && ib.is_ipv6() == ia.is_ipv6()) {
            let gap = (i32::from(ia.priority) - i32::from(ib.priority)).abs();
            for (cfg, inst) in [(a, ia), (b, ib)] {
                let tracks = inst
                    .track_script
                    .iter()
                    .map(|t| {
                        let w =
                            t.weight.or_else(|| cfg.vrrp_scripts.iter().find(|s| s.name == t.name).map(|s| s.weight));
                        ("track_script", t.name.as_str(), w.unwrap_or(0))
                    })
                    .chain(inst.track_process.iter().map(|t| {
                        let own = cfg.vrrp_track_processes.iter().find(|p| p.name == t.name).map(|p| p.weight);
                        ("track_process", t.name.as_str(), t.weight.or(own).unwrap_or(0))
                    }))
                    .chain(inst.track_bfd.iter().map(|t| {
                        let own = cfg.bfd_instances.iter().find(|b| b.name == t.name).map(|b| b.weight);
                        ("track_bfd", t.name.as_str(), t.weight.or(own).unwrap_or(0))
                    }))
                    .chain(
                        inst.track_interface
                            .iter()
                            .map(|t| ("track_interface", t.name.as_str(), t.weight.unwrap_or(0))),
                    );
                for (kind, name, w) in tracks {
                    if w != 0 && gap >= w.abs() {
                        d.push(Diagnostic::error(
                            inst.loc.clone(),
                            format!(
                                "vrrp_instance {}: {kind} {name} weight {w} can never fail over VRID {}: priorities {} and {} differ by {gap} >= {}",
                                inst.name,
                                inst.vrid,
                                ia.priority,
                                ib.priority,
                                w.abs()
                            ),
                        ));
                    }
                }
            }
            if ia.priority == ib.priority && ia.priority == 255 {
                d.push(Diagnostic::error(ia.loc.clone(), format!("both nodes own VRID {} (priority 255)", ia.vrid)));
            }
        }
    }
    d
}
