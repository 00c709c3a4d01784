//! The control verbs over the service set, written once: rvsd's control thread applies
//! each request with them, and `rvsadm -R` applies a change script with them, so both
//! refuse the same things with the same sentence and leave the same set behind.
//!
//! - One function per verb: [`service_add`], [`service_edit`], [`service_del`],
//!   [`service_replace`], [`real_server_add`], [`real_server_edit`],
//!   [`real_server_del`], [`laddr_add`], [`laddr_del`], over the SNAT rules
//!   [`snat_add`], [`snat_del`], [`snat_wan`], [`snat_replace`], and over both
//!   [`replace`]; [`apply`] dispatches a [`Request`] to them.
//! - A real server's port 0 means "the virtual port" (as in LVS). It is resolved where a
//!   verb stores a real server, so a listing shows the same port whichever path added
//!   it, and a verb naming a real server finds it by either spelling. On an all-ports
//!   service (virtual port 0) a real server's port stays 0: the client's port is kept.
//! - [`validate`] is the one check of a whole set against the addresses the ports own,
//!   shared by `rvsd --check-config` and every change on the control socket (a
//!   `rvsadm -R` script arrives as one `ServiceReplace`). The VIP rule: a service whose
//!   VIP is not (yet) an address of any port is accepted everywhere. A VRRP backup
//!   keeps its services loaded and gets the address from the agent when it becomes
//!   master; until then no traffic for the VIP reaches the box. [`unowned_vips`] names
//!   such services for a warning. Likewise a local address no port owns is in standby
//!   (the LIPs that move with the VIP, for connection sync; [`standby_laddrs`]).

use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;

use fnat::fwmark::{FwmarkError, FwmarkRule};
use fnat::service::{DestMarks, RealServerConfig, ServiceConfig, ServiceKey, ServiceTable};

use crate::error::ErrorCode;
use crate::proto::{RealServerEdit, Request, Response, ServiceSpec};
use crate::SnatSpec;

/// A refused change: the stable code and the sentence the client sees.
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

impl From<Refused> for Response {
    fn from(r: Refused) -> Response {
        Response::error(r.code, r.message)
    }
}

/// A real server's effective port on a service with virtual port `vport`: 0 means the
/// virtual port (on an all-ports service it stays 0).
pub fn effective_port(port: u16, vport: u16) -> u16 {
    if port == 0 {
        vport
    } else {
        port
    }
}

/// Resolves every real server's port 0 to the virtual port.
fn normalise(service: &mut ServiceConfig) {
    let vport = service.vport;
    for rs in &mut service.real_servers {
        rs.port = effective_port(rs.port, vport);
    }
}

/// The position of the service `key`.
pub fn find(set: &[ServiceSpec], key: &ServiceKey) -> Result<usize, Refused> {
    // From the end: a script (`rvsadm -R`, a save) adds a service and then its real
    // servers, so the service a line names is nearly always the last one added.
    set.iter()
        .rposition(|s| s.service.key() == *key)
        .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("no service {key}")))
}

/// The position of real server `addr:port` in the service `key` (port 0 = the virtual
/// port), with the service's position.
fn find_rs(set: &[ServiceSpec], key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(usize, usize), Refused> {
    let i = find(set, key)?;
    let port = effective_port(port, key.vport);
    set[i]
        .service
        .real_servers
        .iter()
        .position(|r| r.addr == addr && effective_port(r.port, key.vport) == port)
        .map(|j| (i, j))
        .ok_or_else(|| {
            Refused::new(ErrorCode::NotFound, format!("{key}: no real server {}", SocketAddr::new(addr, port)))
        })
}

/// Adds a service (with the real servers and LIPs it brings). Refused if one with the
/// same key exists.
pub fn service_add(set: &mut Vec<ServiceSpec>, mut spec: ServiceSpec) -> Result<(), Refused> {
    let key = spec.service.key();
    if set.iter().any(|s| s.service.key() == key) {
        return Err(Refused::new(ErrorCode::Exists, format!("service {key} defined twice")));
    }
    normalise(&mut spec.service);
    set.push(spec);
    Ok(())
}

/// Changes a service's settings; its real servers and LIPs are kept (`real_servers` of
/// `service` is ignored).
pub fn service_edit(set: &mut [ServiceSpec], service: ServiceConfig) -> Result<(), Refused> {
    let i = find(set, &service.key())?;
    let old = &mut set[i].service;
    let rs = std::mem::take(&mut old.real_servers);
    // The deny and allow lists, like the real servers, change only by their verbs.
    let (deny, allow) = (std::mem::take(&mut old.deny), std::mem::take(&mut old.allow));
    *old = service;
    old.real_servers = rs;
    old.deny = deny;
    old.allow = allow;
    Ok(())
}

/// Deletes the service `key`.
pub fn service_del(set: &mut Vec<ServiceSpec>, key: &ServiceKey) -> Result<(), Refused> {
    let i = find(set, key)?;
    set.remove(i);
    Ok(())
}

/// Replaces the whole set (duplicates and the rest are for [`validate`]).
pub fn service_replace(set: &mut Vec<ServiceSpec>, mut services: Vec<ServiceSpec>) {
    for s in &mut services {
        normalise(&mut s.service);
    }
    *set = services;
}

/// Adds a real server to the service `key`. Refused if the service has one with the
/// same address and effective port.
pub fn real_server_add(set: &mut [ServiceSpec], key: &ServiceKey, mut rs: RealServerConfig) -> Result<(), Refused> {
    rs.port = effective_port(rs.port, key.vport);
    if find_rs(set, key, rs.addr, rs.port).is_ok() {
        return Err(Refused::new(
            ErrorCode::Exists,
            format!("{key}: real server {} listed twice", SocketAddr::new(rs.addr, rs.port)),
        ));
    }
    let i = find(set, key)?;
    set[i].service.real_servers.push(rs);
    Ok(())
}

/// Changes the values `change` gives of real server `addr:port` of the service `key`.
pub fn real_server_edit(
    set: &mut [ServiceSpec],
    key: &ServiceKey,
    addr: IpAddr,
    port: u16,
    change: RealServerEdit,
) -> Result<(), Refused> {
    let (i, j) = find_rs(set, key, addr, port)?;
    let rs = &mut set[i].service.real_servers[j];
    if let Some(w) = change.weight {
        rs.weight = w;
    }
    if let Some(u) = change.upper {
        rs.upper = u;
    }
    if let Some(l) = change.lower {
        rs.lower = l;
    }
    if let Some(m) = change.fwd {
        rs.fwd = m;
    }
    Ok(())
}

/// Removes real server `addr:port` from the service `key`.
pub fn real_server_del(set: &mut [ServiceSpec], key: &ServiceKey, addr: IpAddr, port: u16) -> Result<(), Refused> {
    let (i, j) = find_rs(set, key, addr, port)?;
    set[i].service.real_servers.remove(j);
    Ok(())
}

/// Adds the local address `addr` to the service `key`.
pub fn laddr_add(set: &mut [ServiceSpec], key: &ServiceKey, addr: IpAddr) -> Result<(), Refused> {
    let i = find(set, key)?;
    if set[i].laddrs.contains(&addr) {
        return Err(Refused::new(ErrorCode::Exists, format!("{key}: local address {addr} listed twice")));
    }
    set[i].laddrs.push(addr);
    Ok(())
}

/// Removes the local address `addr` from the service `key`.
pub fn laddr_del(set: &mut [ServiceSpec], key: &ServiceKey, addr: IpAddr) -> Result<(), Refused> {
    let i = find(set, key)?;
    let l = &mut set[i].laddrs;
    let j = l
        .iter()
        .position(|a| *a == addr)
        .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("{key}: no local address {addr}")))?;
    l.remove(j);
    Ok(())
}

/// Adds `prefixes` to (or deletes them from) service `key`'s allow or deny list.
/// Adding one already there changes nothing; deleting one not there is refused.
pub fn service_acl(
    set: &mut [ServiceSpec],
    key: &ServiceKey,
    allow: bool,
    add: bool,
    prefixes: Vec<IpNet>,
) -> Result<(), Refused> {
    let i = find(set, key)?;
    let s = &mut set[i].service;
    let (l, name) = if allow { (&mut s.allow, "allow") } else { (&mut s.deny, "deny") };
    // Sets, not searches of the list: a request of many prefixes against a long list
    // costs its length, not the product (a million would hold the control thread).
    let mut have: std::collections::HashSet<IpNet> = l.iter().copied().collect();
    if add {
        for p in prefixes.into_iter().map(|p| p.trunc()) {
            if have.insert(p) {
                l.push(p);
            }
        }
        return Ok(());
    }
    let mut gone = std::collections::HashSet::with_capacity(prefixes.len());
    for p in prefixes.into_iter().map(|p| p.trunc()) {
        if !have.remove(&p) && !gone.contains(&p) {
            return Err(Refused::new(ErrorCode::NotFound, format!("{key}: {p} is not in the {name} list")));
        }
        gone.insert(p);
    }
    l.retain(|x| !gone.contains(x));
    Ok(())
}

/// Adds a SNAT rule (`rvsadm -A -H MATCH [--name NAME]`): refused when a rule has its
/// match or its name already, or its name is not one word; a rule without a name gets
/// the first free `snat<N>`.
pub fn snat_add(rules: &mut Vec<SnatSpec>, mut rule: SnatSpec) -> Result<(), Refused> {
    if let Some(o) = rules.iter().find(|o| o.same_match(&rule)) {
        return Err(Refused::new(
            ErrorCode::Exists,
            format!("SNAT rule {:?} has that match already ({})", o.name.as_deref().unwrap_or(""), o.match_text()),
        ));
    }
    let name = match rule.name.take() {
        Some(n) if n.is_empty() || n.chars().any(|c| c.is_whitespace() || c.is_control()) => {
            return Err(Refused::new(
                ErrorCode::Invalid,
                format!("SNAT rule name {n:?}: one word (rvsadm -S writes it as --name NAME)"),
            ));
        }
        Some(n) if rules.iter().any(|o| o.name.as_deref() == Some(n.as_str())) => {
            return Err(Refused::new(ErrorCode::Exists, format!("a SNAT rule is named {n:?} already")));
        }
        Some(n) => n,
        None => (0..)
            .map(|i| format!("snat{i}"))
            .find(|n| rules.iter().all(|o| o.name.as_ref() != Some(n)))
            .unwrap_or_default(),
    };
    rules.push(SnatSpec { name: Some(name), ..rule });
    Ok(())
}

/// The position of the SNAT rule with `rule`'s match.
fn snat_find(rules: &[SnatSpec], rule: &SnatSpec) -> Result<usize, Refused> {
    rules
        .iter()
        .position(|o| o.same_match(rule))
        .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("no SNAT rule with match {}", rule.match_text())))
}

/// Deletes the SNAT rule with `rule`'s match (`rvsadm -D -H`).
pub fn snat_del(rules: &mut Vec<SnatSpec>, rule: &SnatSpec) -> Result<(), Refused> {
    let i = snat_find(rules, rule)?;
    rules.remove(i);
    Ok(())
}

/// Adds or removes a WAN address of the SNAT rule with `rule`'s match
/// (`rvsadm -a|-d -H MATCH -r WAN -J`).
pub fn snat_wan(rules: &mut [SnatSpec], rule: &SnatSpec, wan: IpAddr, add: bool) -> Result<(), Refused> {
    let i = snat_find(rules, rule)?;
    let r = &mut rules[i];
    let name = r.name.clone().unwrap_or_default();
    match (add, r.wan.iter().position(|w| *w == wan)) {
        (true, Some(_)) => Err(Refused::new(ErrorCode::Exists, format!("SNAT rule {name:?} has {wan} already"))),
        (true, None) => {
            r.wan.push(wan);
            Ok(())
        }
        (false, Some(j)) => {
            r.wan.remove(j);
            Ok(())
        }
        (false, None) => Err(Refused::new(ErrorCode::NotFound, format!("SNAT rule {name:?} has no WAN address {wan}"))),
    }
}

/// Replaces every SNAT rule with `new`, each added in turn with [`snat_add`] (so a
/// duplicate match or name is refused as one added alone would be).
pub fn snat_replace(rules: &mut Vec<SnatSpec>, new: Vec<SnatSpec>) -> Result<(), Refused> {
    let mut set = Vec::with_capacity(new.len());
    for r in new {
        snat_add(&mut set, r)?;
    }
    *rules = set;
    Ok(())
}

/// Adds a fwmark rule at the end of the list (`rvsip fwmark add`): refused when it is
/// there already, wrong alone, or would never match ([`fnat::fwmark::check_next`]).
pub fn fwmark_add(rules: &mut Vec<FwmarkRule>, rule: FwmarkRule) -> Result<(), Refused> {
    fnat::fwmark::check_next(rules, &rule).map_err(|e| {
        let code = if matches!(e, FwmarkError::Duplicate(_)) { ErrorCode::Exists } else { ErrorCode::Invalid };
        Refused::new(code, e.to_string())
    })?;
    if rules.len() >= fnat::fwmark::MAX_FWMARK_RULES {
        let n = fnat::fwmark::MAX_FWMARK_RULES;
        return Err(Refused::new(ErrorCode::Invalid, format!("{n} fwmark rules already: at most {n}")));
    }
    rules.push(rule);
    Ok(())
}

/// Deletes a fwmark rule (`rvsip fwmark del`).
pub fn fwmark_del(rules: &mut Vec<FwmarkRule>, rule: &FwmarkRule) -> Result<(), Refused> {
    let i = rules
        .iter()
        .position(|r| r == rule)
        .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("no fwmark rule {rule}")))?;
    rules.remove(i);
    Ok(())
}

/// Replaces every service (`rvsadm -R`, `-C`, the agent's services), and with
/// `new_snat` every SNAT rule too (`rvsadm -R`, `-C`), as one change: nothing changes
/// when the SNAT rules are refused.
pub fn replace(
    services: &mut Vec<ServiceSpec>,
    snat: &mut Vec<SnatSpec>,
    new_services: Vec<ServiceSpec>,
    new_snat: Option<Vec<SnatSpec>>,
) -> Result<(), Refused> {
    if let Some(new) = new_snat {
        snat_replace(snat, new)?;
    }
    service_replace(services, new_services);
    Ok(())
}

/// The rules `rvsadm -S` saves and `-R` restores: the services and the SNAT rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rules {
    /// The services.
    pub services: Vec<ServiceSpec>,
    /// The SNAT rules (DPVS's match services).
    pub snat: Vec<SnatSpec>,
}

/// Whether `req` is a change of the services or the SNAT rules (what [`apply`]
/// carries out).
pub fn changes_rules(req: &Request) -> bool {
    matches!(
        req,
        Request::ServiceAdd(_)
            | Request::ServiceEdit { .. }
            | Request::ServiceDel { .. }
            | Request::ServiceReplace { .. }
            | Request::RealServerAdd { .. }
            | Request::RealServerEdit { .. }
            | Request::RealServerDel { .. }
            | Request::LaddrAdd { .. }
            | Request::LaddrDel { .. }
            | Request::ServiceAcl { .. }
            | Request::SnatAdd { .. }
            | Request::SnatDel { .. }
            | Request::SnatWan { .. }
    )
}

/// Applies one change of the rules with its verb. Any other request is refused
/// (`bad_request`): see [`changes_rules`].
pub fn apply(rules: &mut Rules, req: Request) -> Result<(), Refused> {
    let set = &mut rules.services;
    match req {
        Request::ServiceAdd(spec) => service_add(set, spec),
        Request::ServiceEdit { service } => service_edit(set, service),
        Request::ServiceDel { key } => service_del(set, &key),
        Request::ServiceReplace { services, snat } => replace(set, &mut rules.snat, services, snat),
        Request::RealServerAdd { key, rs } => real_server_add(set, &key, rs),
        Request::RealServerEdit { key, addr, port, change } => real_server_edit(set, &key, addr, port, change),
        Request::RealServerDel { key, addr, port } => real_server_del(set, &key, addr, port),
        Request::LaddrAdd { key, addr } => laddr_add(set, &key, addr),
        Request::LaddrDel { key, addr } => laddr_del(set, &key, addr),
        Request::ServiceAcl { key, allow, add, prefixes } => service_acl(set, &key, allow, add, prefixes),
        Request::SnatAdd { rule } => snat_add(&mut rules.snat, rule),
        Request::SnatDel { rule } => snat_del(&mut rules.snat, &rule),
        Request::SnatWan { rule, wan, add } => snat_wan(&mut rules.snat, &rule, wan, add),
        other => Err(Refused::new(ErrorCode::BadRequest, format!("{other:?} is not a change of the rules"))),
    }
}

/// One problem [`validate`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The position of the service in the set, when one service is at fault.
    pub service: Option<usize>,
    /// The position of the local address in that service's `laddrs`, when one is.
    pub laddr: Option<usize>,
    /// The refusal (code `invalid`) naming the service and the problem.
    pub refused: Refused,
}

/// How a port holds an address, as far as services care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owned {
    /// An address of a port, not a local address.
    Plain,
    /// A `sapool` address: FullNAT may use its ports (a LIP).
    Sapool,
}

/// Checks a whole service set against the addresses the ports own (`owner` says how,
/// `None` if no port does) and builds the core's table (`prev` keeps real-server
/// identities). Every LIP must be a `sapool` address of the VIP's family (an IPv6 VIP
/// may also take IPv4 LIPs, for NAT64), or no address at all: such a LIP is in standby
/// (it takes no new connections until it is added with `sapool`, as a VRRP backup's
/// LIPs that move with the VIP: connection sync, docs/HA.md); the
/// core checks the rest (duplicates, weights, families, persistence netmask,
/// thresholds). A VIP need not be owned (see the module documentation).
///
/// Every LIP problem is returned; the core reports its first.
pub fn validate(
    set: &[ServiceSpec],
    owner: &dyn Fn(IpAddr) -> Option<Owned>,
    prev: Option<&ServiceTable>,
    marks: &DestMarks,
) -> Result<ServiceTable, Vec<Problem>> {
    let configs: Vec<ServiceConfig> = set.iter().map(|s| s.service.clone()).collect();
    with_core(address_problems(set, owner), ServiceTable::build_marked(&configs, prev, marks))
}

/// [`validate`] without building the core's table (its schedulers' Maglev tables cost
/// about a millisecond each): for a configuration check (`rvsd --check-config`,
/// `rvs-agent -t`), which says the same.
pub fn check(set: &[ServiceSpec], owner: &dyn Fn(IpAddr) -> Option<Owned>) -> Result<(), Vec<Problem>> {
    let configs: Vec<ServiceConfig> = set.iter().map(|s| s.service.clone()).collect();
    with_core(address_problems(set, owner), ServiceTable::check(&configs))
}

/// The address problems, and the core's first, if any; else the core's answer.
fn with_core<T>(mut problems: Vec<Problem>, core: Result<T, fnat::service::ServiceError>) -> Result<T, Vec<Problem>> {
    match core {
        Ok(built) if problems.is_empty() => Ok(built),
        Ok(_) => Err(problems),
        Err(e) => {
            problems.push(Problem {
                service: None,
                laddr: None,
                refused: Refused::new(ErrorCode::Invalid, e.to_string()),
            });
            Err(problems)
        }
    }
}

/// [`validate`]'s own checks: real servers that are rvs's addresses, and local addresses.
fn address_problems(set: &[ServiceSpec], owner: &dyn Fn(IpAddr) -> Option<Owned>) -> Vec<Problem> {
    let mut problems = Vec::new();
    let vips: std::collections::HashSet<IpAddr> = set.iter().map(|s| s.service.vip).collect();
    for (i, s) in set.iter().enumerate() {
        let key = s.service.key();
        let problem = |laddr: Option<usize>, msg: String| Problem {
            service: Some(i),
            laddr,
            refused: Refused::new(ErrorCode::Invalid, format!("service {key}: {msg}")),
        };
        // A real server that is rvs itself would loop every connection back in.
        for r in &s.service.real_servers {
            if vips.contains(&r.addr) {
                problems.push(problem(None, format!("real server {} is a virtual address", r.addr)));
            } else if owner(r.addr).is_some() {
                problems.push(problem(None, format!("real server {} is an address of rvs", r.addr)));
            }
        }
        for (j, l) in s.laddrs.iter().enumerate() {
            if s.laddrs[..j].contains(l) {
                problems.push(problem(Some(j), format!("local address {l} is listed twice")));
                continue;
            }
            let what = match owner(*l) {
                // In standby until a port holds it (see above).
                None => None,
                Some(Owned::Plain) => Some("is not a sapool address"),
                // An IPv6 VIP may take IPv4 LIPs: NAT64 to IPv4 real servers.
                Some(Owned::Sapool) if l.is_ipv4() != s.service.vip.is_ipv4() && s.service.vip.is_ipv4() => {
                    Some("is of the other address family")
                }
                Some(Owned::Sapool) => None,
            };
            if let Some(what) = what {
                problems.push(Problem {
                    service: Some(i),
                    laddr: Some(j),
                    refused: Refused::new(ErrorCode::Invalid, format!("service {key}: local address {l} {what}")),
                });
            }
        }
    }
    problems
}

/// The VIP:port services (position and key) whose VIP no port owns yet. They are valid (a VRRP
/// backup's services); `rvsd --check-config` names them in a warning.
pub fn unowned_vips(set: &[ServiceSpec], owner: &dyn Fn(IpAddr) -> Option<Owned>) -> Vec<(usize, ServiceKey)> {
    set.iter()
        .enumerate()
        .filter(|(_, s)| s.service.fwmark == 0 && owner(s.service.vip).is_none())
        .map(|(i, s)| (i, s.service.key()))
        .collect()
}

/// The local addresses (service position and key, address) no port owns yet: valid
/// (in standby until added with `sapool`, see [`validate`]); `rvsd --check-config` names
/// them in a warning, as a typo would be one.
pub fn standby_laddrs(
    set: &[ServiceSpec],
    owner: &dyn Fn(IpAddr) -> Option<Owned>,
) -> Vec<(usize, ServiceKey, IpAddr)> {
    set.iter()
        .enumerate()
        .flat_map(|(i, s)| s.laddrs.iter().filter(|l| owner(**l).is_none()).map(move |l| (i, s.service.key(), *l)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnat::persist::PersistConfig;
    use fnat::types::Proto;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn key(vport: u16) -> ServiceKey {
        ServiceKey::new(Proto::Tcp, ip("198.18.0.100"), vport)
    }

    fn spec(vport: u16) -> ServiceSpec {
        ServiceSpec { service: ServiceConfig::new(Proto::Tcp, ip("198.18.0.100"), vport), laddrs: vec![] }
    }

    fn rs(addr: &str, port: u16) -> RealServerConfig {
        RealServerConfig { addr: ip(addr), port, weight: 1, upper: 0, lower: 0, fwd: Default::default() }
    }

    fn refusal(r: Result<(), Refused>) -> (ErrorCode, String) {
        let e = r.unwrap_err();
        (e.code, e.message)
    }

    #[test]
    fn duplicate_and_missing_service_are_refused() {
        let mut set = Vec::new();
        service_add(&mut set, spec(80)).unwrap();
        assert_eq!(
            refusal(service_add(&mut set, spec(80))),
            (ErrorCode::Exists, "service tcp 198.18.0.100:80 defined twice".into())
        );
        service_add(&mut set, spec(81)).unwrap();
        assert_eq!(set.len(), 2);
        let missing = (ErrorCode::NotFound, "no service tcp 198.18.0.100:82".to_string());
        assert_eq!(refusal(service_del(&mut set, &key(82))), missing);
        assert_eq!(refusal(service_edit(&mut set, spec(82).service)), missing);
        assert_eq!(refusal(real_server_add(&mut set, &key(82), rs("198.19.0.11", 80))), missing);
        assert_eq!(refusal(laddr_add(&mut set, &key(82), ip("198.19.0.10"))), missing);
        service_del(&mut set, &key(81)).unwrap();
        assert_eq!(set, vec![spec(80)]);
    }

    #[test]
    fn edit_keeps_real_servers_and_laddrs() {
        let mut set = Vec::new();
        service_add(&mut set, spec(80)).unwrap();
        real_server_add(&mut set, &key(80), rs("198.19.0.11", 8080)).unwrap();
        laddr_add(&mut set, &key(80), ip("198.19.0.10")).unwrap();
        let mut edit = spec(80).service;
        edit.persistence = Some(PersistConfig::default());
        edit.real_servers = vec![rs("198.19.0.99", 1)];
        service_edit(&mut set, edit).unwrap();
        assert_eq!(set[0].service.persistence, Some(PersistConfig::default()));
        assert_eq!(set[0].service.real_servers, vec![rs("198.19.0.11", 8080)]);
        assert_eq!(set[0].laddrs, vec![ip("198.19.0.10")]);
    }

    #[test]
    fn real_server_port_zero_is_the_virtual_port() {
        let mut set = Vec::new();
        service_add(&mut set, spec(80)).unwrap();
        real_server_add(&mut set, &key(80), rs("198.19.0.11", 0)).unwrap();
        assert_eq!(set[0].service.real_servers, vec![rs("198.19.0.11", 80)], "stored with the virtual port");
        // The same server spelt with the explicit port, or with 0 again: a duplicate.
        let dup = (ErrorCode::Exists, "tcp 198.18.0.100:80: real server 198.19.0.11:80 listed twice".to_string());
        assert_eq!(refusal(real_server_add(&mut set, &key(80), rs("198.19.0.11", 80))), dup);
        assert_eq!(refusal(real_server_add(&mut set, &key(80), rs("198.19.0.11", 0))), dup);
        // And the other way round.
        real_server_add(&mut set, &key(80), rs("198.19.0.12", 80)).unwrap();
        assert_eq!(
            refusal(real_server_add(&mut set, &key(80), rs("198.19.0.12", 0))),
            (ErrorCode::Exists, "tcp 198.18.0.100:80: real server 198.19.0.12:80 listed twice".into())
        );
        // Edit and delete find it by either spelling.
        real_server_edit(
            &mut set,
            &key(80),
            ip("198.19.0.11"),
            0,
            RealServerEdit { weight: Some(7), ..Default::default() },
        )
        .unwrap();
        assert_eq!(set[0].service.real_servers[0].weight, 7);
        real_server_del(&mut set, &key(80), ip("198.19.0.12"), 0).unwrap();
        real_server_del(&mut set, &key(80), ip("198.19.0.11"), 80).unwrap();
        assert!(set[0].service.real_servers.is_empty());
        // An all-ports service keeps port 0 (the client's port).
        service_add(&mut set, spec(0)).unwrap();
        real_server_add(&mut set, &key(0), rs("198.19.0.11", 0)).unwrap();
        assert_eq!(set[1].service.real_servers, vec![rs("198.19.0.11", 0)]);
        // A service added or replaced whole is normalised too.
        let mut with_rs = spec(443);
        with_rs.service.real_servers = vec![rs("198.19.0.11", 0)];
        service_add(&mut set, with_rs.clone()).unwrap();
        assert_eq!(set[2].service.real_servers, vec![rs("198.19.0.11", 443)]);
        service_replace(&mut set, vec![with_rs]);
        assert_eq!(set.len(), 1);
        assert_eq!(set[0].service.real_servers, vec![rs("198.19.0.11", 443)]);
    }

    #[test]
    fn missing_real_server_is_refused() {
        let mut set = Vec::new();
        service_add(&mut set, spec(80)).unwrap();
        real_server_add(&mut set, &key(80), rs("198.19.0.11", 8080)).unwrap();
        let missing = (ErrorCode::NotFound, "tcp 198.18.0.100:80: no real server 198.19.0.11:80".to_string());
        assert_eq!(refusal(real_server_del(&mut set, &key(80), ip("198.19.0.11"), 0)), missing);
        assert_eq!(
            refusal(real_server_edit(&mut set, &key(80), ip("198.19.0.11"), 80, RealServerEdit::default())),
            missing
        );
        assert_eq!(set[0].service.real_servers.len(), 1, "nothing changed");
    }

    #[test]
    fn duplicate_and_missing_laddr_are_refused() {
        let mut set = Vec::new();
        service_add(&mut set, spec(80)).unwrap();
        laddr_add(&mut set, &key(80), ip("198.19.0.10")).unwrap();
        assert_eq!(
            refusal(laddr_add(&mut set, &key(80), ip("198.19.0.10"))),
            (ErrorCode::Exists, "tcp 198.18.0.100:80: local address 198.19.0.10 listed twice".into())
        );
        assert_eq!(
            refusal(laddr_del(&mut set, &key(80), ip("198.19.0.9"))),
            (ErrorCode::NotFound, "tcp 198.18.0.100:80: no local address 198.19.0.9".into())
        );
        laddr_del(&mut set, &key(80), ip("198.19.0.10")).unwrap();
        assert!(set[0].laddrs.is_empty());
    }

    #[test]
    fn apply_dispatches_rule_changes_only() {
        let mut rules = Rules::default();
        apply(&mut rules, Request::ServiceAdd(spec(80))).unwrap();
        apply(&mut rules, Request::RealServerAdd { key: key(80), rs: rs("198.19.0.11", 0) }).unwrap();
        apply(&mut rules, Request::LaddrAdd { key: key(80), addr: ip("198.19.0.10") }).unwrap();
        assert_eq!(rules.services[0].service.real_servers, vec![rs("198.19.0.11", 80)]);
        assert!(changes_rules(&Request::ServiceReplace { services: vec![], snat: None }));
        assert!(changes_rules(&Request::SnatAdd { rule: SnatSpec::default() }));
        assert!(!changes_rules(&Request::TimeoutsGet {}));
        let e = apply(&mut rules, Request::TimeoutsGet {}).unwrap_err();
        assert_eq!(e.code, ErrorCode::BadRequest);
        let m = |t: &str| SnatSpec::from_match(t).unwrap();
        apply(&mut rules, Request::SnatAdd { rule: m("proto=tcp,oif=dpdk1") }).unwrap();
        apply(&mut rules, Request::SnatWan { rule: m("proto=tcp,oif=dpdk1"), wan: ip("203.0.113.1"), add: true })
            .unwrap();
        assert_eq!(rules.snat[0].name.as_deref(), Some("snat0"));
        assert_eq!(rules.snat[0].wan, vec![ip("203.0.113.1")]);
        // A replace without SNAT rules (keepalived's services) leaves them; with, sets them.
        apply(&mut rules, Request::ServiceReplace { services: vec![], snat: None }).unwrap();
        assert!(rules.services.is_empty());
        assert_eq!(rules.snat.len(), 1);
        apply(&mut rules, Request::ServiceReplace { services: vec![], snat: Some(vec![]) }).unwrap();
        assert!(rules.snat.is_empty());
    }

    #[test]
    fn snat_verbs_refuse_duplicates_and_unknown_rules() {
        let m = |t: &str| SnatSpec::from_match(t).unwrap();
        let mut rules = Vec::new();
        snat_add(&mut rules, m("proto=udp")).unwrap();
        snat_add(&mut rules, SnatSpec { name: Some("lan".into()), ..m("src-range=10.0.0.1-10.0.0.9") }).unwrap();
        snat_add(&mut rules, m("proto=tcp")).unwrap();
        let names: Vec<_> = rules.iter().map(|r| r.name.clone().unwrap()).collect();
        assert_eq!(names, ["snat0", "lan", "snat1"]);
        assert_eq!(refusal(snat_add(&mut rules, m("proto=udp"))).0, ErrorCode::Exists);
        let (code, msg) = refusal(snat_add(&mut rules, SnatSpec { name: Some("two words".into()), ..m("oif=y") }));
        assert!(code == ErrorCode::Invalid && msg.contains("one word"), "a name -S could not write back: {msg}");
        assert_eq!(
            refusal(snat_add(&mut rules, SnatSpec { name: Some("lan".into()), ..m("oif=x") })),
            (ErrorCode::Exists, "a SNAT rule is named \"lan\" already".into())
        );
        assert_eq!(
            refusal(snat_wan(&mut rules, &m("proto=udp"), ip("203.0.113.1"), false)),
            (ErrorCode::NotFound, "SNAT rule \"snat0\" has no WAN address 203.0.113.1".into())
        );
        assert_eq!(
            refusal(snat_del(&mut rules, &m("oif=nowhere"))),
            (ErrorCode::NotFound, "no SNAT rule with match oif=nowhere".into())
        );
        // A replace is all or nothing: a duplicate match leaves the old rules.
        let before = rules.clone();
        assert_eq!(refusal(snat_replace(&mut rules, vec![m("proto=tcp"), m("proto=tcp")])).0, ErrorCode::Exists);
        assert_eq!(rules, before);
        snat_replace(&mut rules, vec![m("proto=tcp")]).unwrap();
        assert_eq!(rules.len(), 1);
    }

    #[test]
    fn fwmark_verbs_append_refuse_duplicates_and_bad_rules() {
        let r = |mark, t: &str| FwmarkRule::from_match(mark, t).unwrap();
        let mut rules = Vec::new();
        fwmark_add(&mut rules, r(2, "proto=tcp,src-range=198.51.100.0/24,dst-range=192.0.2.1:80")).unwrap();
        fwmark_add(&mut rules, r(1, "dst-range=192.0.2.1:80")).unwrap();
        assert_eq!(rules.iter().map(|x| x.mark).collect::<Vec<_>>(), [2, 1], "appended in order");
        // A rule an earlier one of another mark covers whole would never match.
        assert_eq!(
            refusal(fwmark_add(&mut rules, r(3, "proto=udp,src-range=198.51.100.7,dst-range=192.0.2.1:80"))),
            (
                ErrorCode::Invalid,
                "fwmark rule mark 3 proto=udp,src-range=198.51.100.7,dst-range=192.0.2.1:80 would never match: the \
                 earlier rule mark 1 dst-range=192.0.2.1:80 takes every flow it would (the first match wins; delete \
                 that one first, or narrow it)"
                    .into()
            )
        );
        // One of its own mark changes nothing: accepted.
        fwmark_add(&mut rules, r(1, "proto=udp,dst-range=192.0.2.1:80")).unwrap();
        fwmark_del(&mut rules, &r(1, "proto=udp,dst-range=192.0.2.1:80")).unwrap();
        assert_eq!(
            refusal(fwmark_add(&mut rules, r(1, "dst-range=192.0.2.1:80"))),
            (ErrorCode::Exists, "fwmark rule mark 1 dst-range=192.0.2.1:80 is there already".into())
        );
        let bad = FwmarkRule { mark: 0, ..r(1, "dst-range=192.0.2.1") };
        assert_eq!(refusal(fwmark_add(&mut rules, bad)).0, ErrorCode::Invalid);
        assert_eq!(
            refusal(fwmark_del(&mut rules, &r(3, "dst-range=192.0.2.1:80"))),
            (ErrorCode::NotFound, "no fwmark rule mark 3 dst-range=192.0.2.1:80".into())
        );
        fwmark_del(&mut rules, &r(1, "dst-range=192.0.2.1:80")).unwrap();
        assert_eq!(rules, vec![r(2, "proto=tcp,src-range=198.51.100.0/24,dst-range=192.0.2.1:80")]);
    }

    #[test]
    fn validation_checks_laddrs_and_the_core_but_not_the_vip() {
        let owner = |a: IpAddr| match a.to_string().as_str() {
            "198.19.0.10" | "2001:db8::10" => Some(Owned::Sapool),
            "198.19.0.1" => Some(Owned::Plain),
            _ => None,
        };
        // A VIP no port owns (a VRRP backup): valid, and named for a warning.
        let mut s = spec(80);
        s.laddrs = vec![ip("198.19.0.10")];
        s.service.real_servers = vec![rs("198.19.0.11", 80)];
        let set = vec![s.clone()];
        assert!(validate(&set, &owner, None, &Default::default()).is_ok());
        assert_eq!(unowned_vips(&set, &owner), vec![(0, key(80))]);

        // Every LIP problem is reported, with its position.
        s.laddrs = vec![ip("198.19.0.10"), ip("198.19.0.99"), ip("198.19.0.1"), ip("2001:db8::10")];
        let p = validate(&[s.clone()], &owner, None, &Default::default()).unwrap_err();
        let got: Vec<(Option<usize>, Option<usize>, &str)> =
            p.iter().map(|p| (p.service, p.laddr, p.refused.message.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Some(0), Some(2), "service tcp 198.18.0.100:80: local address 198.19.0.1 is not a sapool address"),
                (
                    Some(0),
                    Some(3),
                    "service tcp 198.18.0.100:80: local address 2001:db8::10 is of the other address family"
                ),
            ]
        );
        assert!(p.iter().all(|p| p.refused.code == ErrorCode::Invalid));
        // The one no port owns is in standby, named for a warning.
        assert_eq!(standby_laddrs(&[s.clone()], &owner), vec![(0, key(80), ip("198.19.0.99"))]);

        // A LIP listed twice; a real server that is a VIP or one of rvs's addresses.
        let mut t = s.clone();
        t.laddrs = vec![ip("198.19.0.10"), ip("198.19.0.10")];
        t.service.real_servers = vec![rs("198.18.0.100", 8080), rs("198.19.0.1", 80), rs("198.19.0.11", 80)];
        let p = validate(&[t], &owner, None, &Default::default()).unwrap_err();
        let got: Vec<&str> = p.iter().map(|p| p.refused.message.as_str()).collect();
        assert_eq!(
            got,
            vec![
                "service tcp 198.18.0.100:80: real server 198.18.0.100 is a virtual address",
                "service tcp 198.18.0.100:80: real server 198.19.0.1 is an address of rvs",
                "service tcp 198.18.0.100:80: local address 198.19.0.10 is listed twice",
            ]
        );
        assert_eq!(p[2].laddr, Some(1));

        // The core's checks (here the persistence netmask) come through once.
        s.laddrs = vec![ip("198.19.0.10")];
        s.service.persistence = Some(PersistConfig { netmask_v4: 33, ..PersistConfig::default() });
        let p = validate(&[s], &owner, None, &Default::default()).unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].refused.message, "tcp 198.18.0.100:80: persistence netmask /33 is longer than an IPv4 address");
    }
}
