//! SIGHUP: the configuration file is read again and what may change at run time is
//! applied as one new generation, as `rvsadm -R` applies a rule set: services, real
//! servers, local addresses, addresses, routes, timeouts, SNAT rules and the global deny set.
//! Connections that stay valid keep flowing. A file that does not load, or that changes
//! what only a restart can (EAL, workers, ports, pools, the control socket, steering,
//! the SYN proxy's and neighbours' settings, static neighbours, metrics, connection
//! sync), changes nothing: the
//! log says why, naming the keys, and rvsd runs on.

use std::path::PathBuf;

use ctl::Response;
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
        next.port_names = self.state.port_names.clone();
        match self.apply(next) {
            Response::Error { message, .. } => tracing::error!("SIGHUP: {file} refused, nothing changed: {message}"),
            _ => {
                let gen = self.shared.current().gen;
                tracing::info!(gen, services = new.services.len(), "SIGHUP: {file} applied");
                if let Some(src) = &mut self.reload_source {
                    src.running = new;
                }
            }
        }
    }
}
