//! SIGHUP: the configuration file is read again and what may change at run time is
//! applied as one new generation, as `rvsadm -R` applies a rule set: services, real
//! servers, local addresses, addresses, routes, timeouts, SNAT rules and the global deny set.
//! Connections that stay valid keep flowing. Addresses a live control connection added
//! with a lease (rvs-agent's VIPs on the VRRP master) are that connection's and stay;
//! what else clients changed is replaced, and `Status`'s `loaded_ns` tells them so
//! (rvs-agent then loads its services again). A file that does not load, or that changes
//! what only a restart can (EAL, workers, ports, pools, the control socket, steering,
//! the SYN proxy's and neighbours' settings, static neighbours, metrics, connection
//! sync), changes nothing: the
//! log says why, naming the keys, and rvsd runs on.

use std::collections::HashSet;
use std::path::PathBuf;

use ctl::{ErrorCode, Response};
use serde::Serialize;

use super::Control;
use crate::config::Config;
use crate::state::State;

/// Where the running configuration came from, and what it was.
pub struct ReloadSource {
    /// The file SIGHUP reads again.
    pub path: PathBuf,
    /// The configuration running now (the file as last applied).
    pub running: Config,
}

/// The sections of `b` that differ from `a` and cannot change while rvsd runs.
pub fn fixed_changes(a: &Config, b: &Config) -> Vec<&'static str> {
    fn same(x: &impl Serialize, y: &impl Serialize) -> bool {
        serde_json::to_value(x).ok() == serde_json::to_value(y).ok()
    }
    let sections = [
        ("eal", same(&a.eal, &b.eal)),
        ("mempool", same(&a.mempool, &b.mempool)),
        ("workers", same(&a.workers, &b.workers)),
        ("port", same(&a.ports, &b.ports)),
        ("vlan", same(&a.vlans, &b.vlans)),
        ("conn", same(&a.conn, &b.conn)),
        ("control", same(&a.control, &b.control)),
        ("steering", same(&a.steering, &b.steering)),
        ("synproxy", same(&a.synproxy, &b.synproxy)),
        ("neigh_defs", same(&a.neigh_defs, &b.neigh_defs)),
        ("neigh", same(&a.neighs, &b.neighs)),
        ("metrics", same(&a.metrics, &b.metrics)),
        ("sync", same(&a.sync, &b.sync)),
    ];
    sections.into_iter().filter(|(_, same)| !same).map(|(k, _)| k).collect()
}

impl Control {
    /// Reads the configuration file again and applies it (see the module doc); every
    /// outcome is logged.
    pub(super) fn reload(&mut self) {
        let Some(src) = &self.reload_source else {
            tracing::warn!("SIGHUP: rvsd was started without a configuration file to read again");
            return;
        };
        let file = src.path.display().to_string();
        let new = match Config::load(&src.path) {
            Ok(c) => c,
            Err(errs) => {
                tracing::error!("SIGHUP: {file} refused, nothing changed:\n{errs}");
                return;
            }
        };
        let fixed = fixed_changes(&src.running, &new);
        if !fixed.is_empty() {
            tracing::error!(
                "SIGHUP: {file}: {} cannot change while rvsd runs (restart it); nothing changed",
                fixed.join(", ")
            );
            return;
        }
        for w in new.warnings(&file) {
            tracing::warn!("SIGHUP: {w}");
        }
        // Ports and VLANs cannot change here: the numbers stay, with the VLANs added
        // by rvsip since the start.
        let mut next = State::from_config(&new);
        // A `[[vlan]]` of the file removed since (`rvsip vlan del`) keeps its number,
        // empty: what the file puts on it would land on no port.
        let removed = next.port_names.iter().enumerate().find_map(|(i, vlan)| {
            let gone = !vlan.is_empty() && self.state.port_names.get(i).is_some_and(String::is_empty);
            let users = if gone { next.port_users(i, &self.neighs) } else { Vec::new() };
            (!users.is_empty()).then(|| (vlan.clone(), users))
        });
        if let Some((vlan, users)) = removed {
            tracing::error!(
                "SIGHUP: {file}: [[vlan]] {vlan} was removed while rvsd ran (rvsip vlan del; one of that name \
                 added since is another sub-interface), and the file puts {} on it: restart rvsd to bring it \
                 back; nothing changed",
                users.join(", ")
            );
            return;
        }
        next.port_names = self.state.port_names.clone();
        // The leased addresses the file lacks, each as `rvsip addr add` would add it
        // (one the file's addresses now conflict with is the file's loss to make: left
        // out, said so); the file's state alone is kept aside in case it must do without.
        let lessees: Vec<_> = self
            .state
            .addrs
            .iter()
            .filter(|a| self.leased.contains_key(&a.net.addr()) && !next.has_addr(a.net.addr()))
            .collect();
        let bare = (!lessees.is_empty()).then(|| next.clone());
        let mut kept = HashSet::new();
        for a in lessees {
            let dev = self.state.port_names.get(a.port).cloned().unwrap_or_default();
            match next.addr_add(&dev, a.net, a.sapool) {
                Ok(()) => {
                    kept.insert(a.net.addr());
                }
                Err(r) => tracing::warn!("SIGHUP: {file}: leased address {} on {dev} not kept: {}", a.net, r.message),
            }
        }
        let mut outcome = self.apply(next);
        if let (false, Some(bare), Response::Error { code, message }) = (kept.is_empty(), bare, &outcome) {
            if *code != ErrorCode::Timeout {
                // The file applies without them, perhaps (a route of the file's where a
                // kept address's subnet would be): the file wins.
                tracing::warn!("SIGHUP: {file}: with the leased addresses kept: {message}; trying without them");
                kept.clear();
                outcome = self.apply(bare);
            }
        }
        match outcome {
            // A timeout is a generation published (the state is the file's) that a worker
            // was slow to confirm.
            Response::Error { code, message } if code != ErrorCode::Timeout => {
                tracing::error!("SIGHUP: {file} refused, nothing changed: {message}");
            }
            outcome => {
                self.loaded_ns = super::now_ns();
                self.leased.retain(|a, _| kept.contains(a));
                if !kept.is_empty() {
                    let mut list: Vec<String> = kept.iter().map(ToString::to_string).collect();
                    list.sort();
                    tracing::info!(
                        "SIGHUP: {file}: leased addresses kept (their control connections hold them): {}",
                        list.join(", ")
                    );
                }
                let gen = self.shared.current().gen;
                if let Response::Error { message, .. } = outcome {
                    tracing::warn!(gen, "SIGHUP: {file} applied, but {message}");
                } else {
                    tracing::info!(gen, services = new.services.len(), "SIGHUP: {file} applied");
                }
                if let Some(src) = &mut self.reload_source {
                    src.running = new;
                }
            }
        }
    }
}
