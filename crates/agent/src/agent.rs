//! The whole agent: VRRP instances, their tracked scripts and interfaces, and the health
//! checkers applied to the dataplane, on one tokio runtime.

use crate::check::pool::{Pool, VsState};
use crate::check::{spawn_checkers, CheckStats};
use crate::dataplane::{Dataplane, DataplaneError};
use crate::keepalived::Config;
use crate::vrrp::instance::{spawn_script, Instance, InstanceStatus, Tracked};
use crate::vrrp::io::IoError;
use crate::vrrp::track;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A VRRP socket could not be opened.
    #[error("vrrp_instance {0}: {1}")]
    Socket(String, IoError),
    /// The dataplane refused the initial services.
    #[error("loading services: {0}")]
    Dataplane(#[from] DataplaneError),
}

/// Handles to what is running, for status reporting.
pub struct Running {
    /// Each instance's status.
    pub instances: Vec<watch::Receiver<InstanceStatus>>,
    /// Checker counters.
    pub check_stats: Arc<CheckStats>,
    /// The virtual servers with each real server's health (locked briefly on every change).
    pub pool: Arc<Mutex<Pool>>,
}

impl Running {
    /// A copy of the virtual servers' state.
    pub fn virtual_servers(&self) -> Vec<VsState> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).vs.clone()
    }
}

/// Runs everything `cfg` describes until `shutdown` turns true; instances then leave
/// cleanly (priority 0, VIPs removed) before this returns. `on_start` receives the handles
/// once everything is started.
pub async fn run(
    cfg: Config,
    dp: Arc<dyn Dataplane>,
    shutdown: watch::Receiver<bool>,
    on_start: impl FnOnce(Running),
) -> Result<(), AgentError> {
    // Services first (both nodes hold them: failover only moves VIPs).
    let (pool, services, checks) = Pool::from_config(&cfg);
    let pool = Arc::new(Mutex::new(pool));
    if !services.is_empty() {
        dp.set_services(&services)?;
    }
    // Tracked scripts: one runner per vrrp_script that something tracks.
    let mut script_rx: HashMap<String, watch::Receiver<bool>> = HashMap::new();
    let mut side_tasks = Vec::new();
    for s in &cfg.vrrp_scripts {
        if cfg.vrrp_instances.iter().any(|i| i.track_script.iter().any(|t| t.name == s.name)) {
            let (tx, rx) = watch::channel(true);
            side_tasks.push(tokio::spawn(track::run_script(s.clone(), tx)));
            script_rx.insert(s.name.clone(), rx);
        }
    }
    // Each instance's tracked objects.
    let mut tracked_by: Vec<Vec<Tracked>> = Vec::new();
    for i in &cfg.vrrp_instances {
        let mut tracked = Vec::new();
        for t in &i.track_script {
            let Some(rx) = script_rx.get(&t.name) else { continue };
            let s = cfg.vrrp_scripts.iter().find(|s| s.name == t.name);
            let w = t.weight.unwrap_or_else(|| s.map_or(0, |s| s.weight));
            let reverse = s.is_some_and(|s| s.weight_reverse);
            let (weight, invert) = if reverse { (-w, true) } else { (w, false) };
            tracked.push(Tracked { name: t.name.clone(), weight, invert, rx: rx.clone() });
        }
        for t in &i.track_interface {
            let (tx, rx) = watch::channel(track::interface_up(&t.name));
            side_tasks.push(tokio::spawn(track::watch_interface(t.name.clone(), Duration::from_millis(500), tx)));
            tracked.push(Tracked { name: t.name.clone(), weight: t.weight.unwrap_or(0), invert: false, rx });
        }
        tracked_by.push(tracked);
    }
    // vrrp_sync_group: a fault of one member (a weight-0 tracked object failing) is a fault
    // of every member.
    let mut shared: Vec<Vec<Tracked>> = cfg.vrrp_instances.iter().map(|_| Vec::new()).collect();
    for g in &cfg.vrrp_sync_groups {
        let members: Vec<usize> =
            g.members.iter().filter_map(|m| cfg.vrrp_instances.iter().position(|i| &i.name == m)).collect();
        for &a in &members {
            for &b in members.iter().filter(|&&b| b != a) {
                for t in tracked_by[b].iter().filter(|t| t.weight == 0) {
                    shared[a].push(Tracked {
                        name: format!("{}/{}", cfg.vrrp_instances[b].name, t.name),
                        weight: 0,
                        invert: t.invert,
                        rx: t.rx.clone(),
                    });
                }
            }
        }
    }
    let mut statuses = Vec::new();
    let mut instance_tasks = Vec::new();
    for ((i, mut tracked), extra) in cfg.vrrp_instances.iter().zip(tracked_by).zip(shared) {
        tracked.extend(extra);
        let (inst, st) = Instance::new(i.clone(), &cfg.global_defs, dp.clone(), tracked)
            .map_err(|e| AgentError::Socket(i.name.clone(), e))?;
        statuses.push(st);
        instance_tasks.push(tokio::spawn(inst.run(shutdown.clone())));
    }
    // Checkers.
    let stats = Arc::new(CheckStats::default());
    let (tx, mut rx) = mpsc::channel(1024);
    let checker_tasks = spawn_checkers(checks, tx, stats.clone());
    on_start(Running { instances: statuses, check_stats: stats, pool: pool.clone() });
    let mut shutdown_c = shutdown.clone();
    let mut checks_open = true;
    loop {
        tokio::select! {
            t = rx.recv(), if checks_open => {
                // No checkers at all (no virtual servers): keep running for VRRP.
                let Some(t) = t else {
                    checks_open = false;
                    continue;
                };
                let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(rs) = pool.rs(t.id) {
                    tracing::warn!(rs = %rs.addr, up = t.up, reason = %t.reason, "real server health changed");
                }
                match pool.apply(&t, dp.as_ref()) {
                    Ok(scripts) => scripts.into_iter().for_each(spawn_script),
                    Err(e) => tracing::error!("applying health change: {e}"),
                }
            }
            r = shutdown_c.changed() => {
                if r.is_err() || *shutdown_c.borrow() {
                    break;
                }
            }
        }
    }
    for t in checker_tasks.into_iter().chain(side_tasks) {
        t.abort();
    }
    for t in instance_tasks {
        let _ = t.await;
    }
    Ok(())
}
