//! `rvsadm -R`: the rules on stdin (as `-S` prints them) become one set of services,
//! sent as a single `ServiceReplace` so that the switch is atomic.
//!
//! Each line is an rvsadm command line without the program name; blank lines and `#`
//! comments are skipped. Lines apply in order to a set that starts empty: `-A`, `-E`,
//! `-D`, `-a`, `-e`, `-d`, `-P`, `-Q` and `-C` are understood; anything else is an error
//! naming the line.

use ctl::{Request, ServiceSpec};
use fnat::service::{RealServerConfig, ServiceKey};

use super::{parse, AdmCmd};
use crate::{usage, CliError};

/// The services the rules in `text` describe.
pub fn plan(text: &str) -> Result<Vec<ServiceSpec>, CliError> {
    let mut set: Vec<ServiceSpec> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = |msg: String| usage(format!("line {}: {msg}", i + 1));
        let argv: Vec<&str> = std::iter::once("rvsadm").chain(line.split_whitespace()).collect();
        let req = match parse(&argv) {
            Ok(AdmCmd::Change(req)) => req,
            Ok(_) => return Err(at(format!("'{line}' cannot be restored (only -A -E -D -a -e -d -P -Q -C)"))),
            Err(e) => return Err(at(e.to_string())),
        };
        apply(&mut set, req).map_err(at)?;
    }
    Ok(set)
}

fn find(set: &mut [ServiceSpec], key: &ServiceKey) -> Result<usize, String> {
    set.iter().position(|s| s.service.key() == *key).ok_or_else(|| format!("no service {key}"))
}

fn same_rs(rs: &RealServerConfig, addr: std::net::IpAddr, port: u16, vport: u16) -> bool {
    let p = |x: u16| if x == 0 { vport } else { x };
    rs.addr == addr && p(rs.port) == p(port)
}

/// Applies one change to the set, as rvsd would.
fn apply(set: &mut Vec<ServiceSpec>, req: Request) -> Result<(), String> {
    match req {
        Request::ServiceAdd(spec) => {
            let key = spec.service.key();
            if set.iter().any(|s| s.service.key() == key) {
                return Err(format!("service {key} defined twice"));
            }
            set.push(spec);
        }
        Request::ServiceEdit { service } => {
            let i = find(set, &service.key())?;
            let rss = std::mem::take(&mut set[i].service.real_servers);
            set[i].service = service;
            set[i].service.real_servers = rss;
        }
        Request::ServiceDel { key } => {
            let i = find(set, &key)?;
            set.remove(i);
        }
        Request::ServiceReplace { services } => *set = services,
        Request::RealServerAdd { key, rs } => {
            let i = find(set, &key)?;
            let svc = &mut set[i].service;
            if svc.real_servers.iter().any(|r| same_rs(r, rs.addr, rs.port, key.vport)) {
                return Err(format!("{key}: real server {} listed twice", crate::addr::addr_port(rs.addr, rs.port)));
            }
            svc.real_servers.push(rs);
        }
        Request::RealServerEdit { key, addr, port, change } => {
            let i = find(set, &key)?;
            let rs = set[i]
                .service
                .real_servers
                .iter_mut()
                .find(|r| same_rs(r, addr, port, key.vport))
                .ok_or_else(|| format!("{key}: no real server {}", crate::addr::addr_port(addr, port)))?;
            if let Some(w) = change.weight {
                rs.weight = w;
            }
            if let Some(u) = change.upper {
                rs.upper = u;
            }
            if let Some(l) = change.lower {
                rs.lower = l;
            }
        }
        Request::RealServerDel { key, addr, port } => {
            let i = find(set, &key)?;
            let rss = &mut set[i].service.real_servers;
            let j = rss
                .iter()
                .position(|r| same_rs(r, addr, port, key.vport))
                .ok_or_else(|| format!("{key}: no real server {}", crate::addr::addr_port(addr, port)))?;
            rss.remove(j);
        }
        Request::LaddrAdd { key, addr } => {
            let i = find(set, &key)?;
            if set[i].laddrs.contains(&addr) {
                return Err(format!("{key}: local address {addr} listed twice"));
            }
            set[i].laddrs.push(addr);
        }
        Request::LaddrDel { key, addr } => {
            let i = find(set, &key)?;
            let j = set[i]
                .laddrs
                .iter()
                .position(|a| *a == addr)
                .ok_or_else(|| format!("{key}: no local address {addr}"))?;
            set[i].laddrs.remove(j);
        }
        _ => return Err("only -A -E -D -a -e -d -P -Q -C can be restored".to_string()),
    }
    Ok(())
}
