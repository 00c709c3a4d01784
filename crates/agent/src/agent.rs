//! The whole agent: VRRP instances, their tracked scripts and interfaces, and the health
//! checkers applied to the dataplane, on one tokio runtime.

pub mod fifo;

use crate::check::pool::{Pool, VsState};
use crate::check::{spawn_checkers_from, CheckStats, RsChecks, RsId, Transition};
use crate::dataplane::{Dataplane, DataplaneError, SyncRoles};
use crate::keepalived::{Config, Loaded};
use crate::reload::{self, Change};
use crate::vrrp::instance::{spawn_script, Instance, InstanceStatus, TrackRx, Tracked};
use crate::vrrp::io::IoError;
use crate::vrrp::track;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Why the agent could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A VRRP socket could not be opened.
    #[error("vrrp_instance {0}: {1}")]
    Socket(String, IoError),
    /// The dataplane refused the initial services or SNAT rules.
    #[error("loading services: {0}")]
    Dataplane(#[from] DataplaneError),
}

/// The sync id of an `lvs_sync_daemon` that names no VRRP instance: keepalived's checker
/// process then runs both sync daemons while it runs (`checker_ipvs_syncd_needed`), and so
/// does the agent with rvsd's roles. A line naming an instance is the instance's
/// ([`Instance`]).
fn unbound_sync_daemon(cfg: &Config) -> Option<u8> {
    cfg.global_defs.lvs_sync_daemon.as_ref().filter(|d| d.instance.is_none()).map(|d| d.syncid)
}

/// Asks for both connection-sync roles (`on`) or neither, for an `lvs_sync_daemon`
/// without an instance.
fn unbound_sync_roles(dp: &dyn Dataplane, syncid: u8, on: bool) {
    let roles = SyncRoles { master: on, backup: on, syncid };
    let why = if on {
        "lvs_sync_daemon (no vrrp_instance: both roles while rvs-agent runs)"
    } else {
        "lvs_sync_daemon (stopping)"
    };
    if let Err(e) = dp.set_sync_roles(roles, why) {
        tracing::error!("{why}: {e}");
    }
}

/// How often a vrrp_instance's track_file is read.
const TRACK_FILE_PERIOD: Duration = Duration::from_millis(500);

/// Handles to what is running, for status reporting.
#[derive(Clone)]
pub struct Running {
    /// Each instance's status, in configuration order (replaced by a reload).
    pub instances: Arc<Mutex<Vec<watch::Receiver<InstanceStatus>>>>,
    /// Checker counters.
    pub check_stats: Arc<CheckStats>,
    /// The virtual servers with each real server's health (locked briefly on every change).
    pub pool: Arc<Mutex<Pool>>,
    /// What reloads did.
    pub reloads: Arc<ReloadStats>,
}

/// What configuration reloads (SIGHUP) did since the agent started.
#[derive(Debug, Default)]
pub struct ReloadStats {
    /// Reloads applied (a file without changes included).
    pub applied: AtomicU64,
    /// Reloads refused (the file had errors; nothing changed).
    pub refused: AtomicU64,
    /// Whether the last one was refused.
    pub last_refused: AtomicBool,
}

impl Running {
    /// A copy of the virtual servers' state.
    pub fn virtual_servers(&self) -> Vec<VsState> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).vs.clone()
    }

    /// The instances' status receivers, in configuration order.
    pub fn instances(&self) -> Vec<watch::Receiver<InstanceStatus>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A running VRRP instance.
struct Inst {
    name: String,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    /// Its interface watchers.
    side: Vec<JoinHandle<()>>,
    status: watch::Receiver<InstanceStatus>,
}

/// A running tracked script.
struct Script {
    conf: serde_json::Value,
    rx: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

/// Everything running, and what it was started from.
struct Agent {
    cfg: Config,
    dp: Arc<dyn Dataplane>,
    insts: Vec<Inst>,
    scripts: HashMap<String, Script>,
    checkers: HashMap<RsId, JoinHandle<()>>,
    pool: Arc<Mutex<Pool>>,
    statuses: Arc<Mutex<Vec<watch::Receiver<InstanceStatus>>>>,
    tx: mpsc::Sender<Transition>,
    stats: Arc<CheckStats>,
    /// keepalived's notify FIFOs.
    fifos: Arc<fifo::Notifier>,
    reloads: Arc<ReloadStats>,
}

impl Agent {
    /// Starts the instances of `self.cfg` named in `names` (with their tracked scripts and
    /// interfaces). Members of a sync group are started together (a change to one changes
    /// them all, see [`reload::instance_fingerprint`]).
    fn start_instances(&mut self, names: &HashSet<String>) -> Result<Vec<Inst>, AgentError> {
        let cfg = self.cfg.clone();
        // Tracked scripts: one runner per vrrp_script that something tracks; an unchanged
        // one keeps running.
        for s in &cfg.vrrp_scripts {
            let used = cfg
                .vrrp_instances
                .iter()
                .filter(|i| names.contains(&i.name))
                .any(|i| i.track_script.iter().any(|t| t.name == s.name));
            if !used {
                continue;
            }
            let conf = reload::comparable(s);
            if self.scripts.get(&s.name).is_some_and(|x| x.conf == conf) {
                continue;
            }
            let (tx, rx) = watch::channel(true);
            let task = tokio::spawn(track::run_script(s.clone(), tx));
            if let Some(old) = self.scripts.insert(s.name.clone(), Script { conf, rx, task }) {
                old.task.abort();
            }
        }
        let chosen: Vec<usize> =
            cfg.vrrp_instances.iter().enumerate().filter(|(_, i)| names.contains(&i.name)).map(|(n, _)| n).collect();
        // Each instance's tracked objects.
        let mut tracked_by: HashMap<usize, Vec<Tracked>> = HashMap::new();
        let mut side_by: HashMap<usize, Vec<JoinHandle<()>>> = HashMap::new();
        for &n in &chosen {
            let i = &cfg.vrrp_instances[n];
            let mut tracked = Vec::new();
            let mut side = Vec::new();
            for t in &i.track_script {
                let Some(rx) = self.scripts.get(&t.name).map(|s| s.rx.clone()) else { continue };
                let s = cfg.vrrp_scripts.iter().find(|s| s.name == t.name);
                let w = t.weight.unwrap_or_else(|| s.map_or(0, |s| s.weight));
                let reverse = s.is_some_and(|s| s.weight_reverse);
                let (weight, invert) = if reverse { (-w, true) } else { (w, false) };
                tracked.push(Tracked { name: t.name.clone(), weight, invert, rx: TrackRx::UpDown(rx) });
            }
            for t in &i.track_interface {
                let (tx, rx) = watch::channel(track::interface_up(&t.name));
                side.push(tokio::spawn(track::watch_interface(t.name.clone(), Duration::from_millis(500), tx)));
                let (name, weight) = (t.name.clone(), t.weight.unwrap_or(0));
                tracked.push(Tracked { name, weight, invert: false, rx: TrackRx::UpDown(rx) });
            }
            for t in &i.track_file {
                let now = track::file_effect(crate::check::file::read_now(&t.path, t.weight, t.reverse));
                let (tx, rx) = watch::channel(now);
                side.push(tokio::spawn(track::watch_file(t.clone(), TRACK_FILE_PERIOD, tx)));
                tracked.push(Tracked { name: t.name.clone(), weight: t.weight, invert: false, rx: TrackRx::File(rx) });
            }
            tracked_by.insert(n, tracked);
            side_by.insert(n, side);
        }
        // vrrp_sync_group: a fault of one member (a weight-0 tracked object failing) is a
        // fault of every member.
        let mut shared: HashMap<usize, Vec<Tracked>> = HashMap::new();
        for g in &cfg.vrrp_sync_groups {
            let members: Vec<usize> = g
                .members
                .iter()
                .filter_map(|m| cfg.vrrp_instances.iter().position(|i| &i.name == m))
                .filter(|n| chosen.contains(n))
                .collect();
            for &a in &members {
                for &b in members.iter().filter(|&&b| b != a) {
                    for t in tracked_by[&b].iter().filter(|t| t.weight == 0) {
                        shared.entry(a).or_default().push(Tracked {
                            name: format!("{}/{}", cfg.vrrp_instances[b].name, t.name),
                            weight: 0,
                            invert: t.invert,
                            rx: t.rx.clone(),
                        });
                    }
                }
            }
        }
        let mut out = Vec::new();
        for n in chosen {
            let i = &cfg.vrrp_instances[n];
            let mut tracked = tracked_by.remove(&n).unwrap_or_default();
            tracked.extend(shared.remove(&n).unwrap_or_default());
            let side = side_by.remove(&n).unwrap_or_default();
            let (inst, status) =
                match Instance::new(i.clone(), &cfg.global_defs, self.dp.clone(), tracked, self.fifos.clone()) {
                    Ok(x) => x,
                    Err(e) => {
                        side.iter().for_each(JoinHandle::abort);
                        out.iter().for_each(|x: &Inst| x.side.iter().for_each(JoinHandle::abort));
                        return Err(AgentError::Socket(i.name.clone(), e));
                    }
                };
            let (stop, stop_rx) = watch::channel(false);
            let task = tokio::spawn(inst.run(stop_rx));
            out.push(Inst { name: i.name.clone(), stop, task, side, status });
        }
        Ok(out)
    }

    /// Stops an instance as on shutdown (priority 0, VIPs removed) and waits for it.
    async fn stop_instance(inst: Inst) {
        let _ = inst.stop.send(true);
        let _ = inst.task.await;
        inst.side.iter().for_each(JoinHandle::abort);
    }

    fn publish_statuses(&self) {
        let order: HashMap<&str, usize> =
            self.cfg.vrrp_instances.iter().enumerate().map(|(n, i)| (i.name.as_str(), n)).collect();
        let mut v: Vec<&Inst> = self.insts.iter().collect();
        v.sort_by_key(|i| order.get(i.name.as_str()).copied().unwrap_or(usize::MAX));
        *self.statuses.lock().unwrap_or_else(|e| e.into_inner()) = v.iter().map(|i| i.status.clone()).collect();
    }

    fn spawn_checkers(&mut self, start: Vec<(RsChecks, bool)>) {
        for (id, task) in spawn_checkers_from(start, self.tx.clone(), self.stats.clone()) {
            if let Some(old) = self.checkers.insert(id, task) {
                old.abort();
            }
        }
    }

    /// Applies a re-read configuration: refused (and logged) when invalid; otherwise only
    /// the differences are applied, one log line each.
    /// Static addresses and routes new in `new` are added; ones it no longer has stay
    /// until rvs-agent restarts (a warning says which).
    fn reload_statics(&self, new: &Config) {
        let route = crate::keepalived::config::StaticRoute::spec;
        let old_routes: Vec<ctl::RouteSpec> = self.cfg.static_routes.iter().map(route).collect();
        let new_routes: Vec<ctl::RouteSpec> = new.static_routes.iter().map(route).collect();
        for r in new_routes.iter().filter(|r| !old_routes.contains(r)) {
            if let Err(e) = self.dp.add_route(r) {
                tracing::error!("reload: static route {}: {e}", r.prefix);
            }
        }
        let key = |a: &crate::keepalived::config::VirtualIp| (a.addr, a.dev.clone());
        let old_addrs: Vec<_> = self.cfg.static_ipaddress.iter().map(key).collect();
        for a in new.static_ipaddress.iter().filter(|a| !old_addrs.contains(&key(a))) {
            let dev = a.dev.as_deref().map(crate::keepalived::config::port_of_dev).unwrap_or_default();
            if let Err(e) = self.dp.add_vip(a.addr, dev) {
                tracing::error!("reload: static_ipaddress {}: {e}", a.addr);
            }
        }
        let new_addrs: Vec<_> = new.static_ipaddress.iter().map(key).collect();
        let gone = old_routes.iter().filter(|r| !new_routes.contains(r)).count()
            + old_addrs.iter().filter(|a| !new_addrs.contains(a)).count();
        if gone > 0 {
            tracing::warn!(
                "reload: {gone} static address(es)/route(s) no longer in the file stay until rvs-agent restarts"
            );
        }
    }

    /// A reload's change of an `lvs_sync_daemon` without an instance, `(old, new)` sync
    /// ids: both roles asked of the new one, or stopped when there is none.
    fn reload_unbound_sync(&self, (old, new): (Option<u8>, Option<u8>)) {
        match (old, new) {
            (old, new) if old == new => {}
            (_, Some(id)) => unbound_sync_roles(self.dp.as_ref(), id, true),
            (Some(id), None) => unbound_sync_roles(self.dp.as_ref(), id, false),
            (None, None) => {}
        }
    }

    async fn reload(&mut self, loaded: Loaded) {
        for d in &loaded.diagnostics {
            if d.is_error() {
                tracing::error!("reload: {d}");
            } else {
                tracing::warn!("reload: {d}");
            }
        }
        let errors = loaded.errors().count();
        let refused = errors > 0;
        self.reloads.last_refused.store(refused, Ordering::Relaxed);
        if refused {
            self.reloads.refused.fetch_add(1, Ordering::Relaxed);
            tracing::error!("reload refused: {errors} error(s); the running configuration is kept");
            return;
        }
        self.reloads.applied.fetch_add(1, Ordering::Relaxed);
        let new = loaded.config;
        self.reload_statics(&new);
        self.fifos.reconfigure(&new.global_defs);
        let (diff, next, plan) = {
            let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            reload::plan(&self.cfg, &pool, &new)
        };
        let unbound = (unbound_sync_daemon(&self.cfg), unbound_sync_daemon(&new));
        if diff.is_empty() {
            tracing::info!("reload: no changes");
            self.reload_unbound_sync(unbound);
            self.cfg = new;
            return;
        }
        for line in diff.lines() {
            tracing::info!("reload: {line}");
        }
        // 1. Instances removed or changed leave first (their VRIDs may be reused).
        let going: HashSet<&str> =
            diff.instances.iter().filter(|(_, c)| *c != Change::Added).map(|(n, _)| n.as_str()).collect();
        let (stopping, kept): (Vec<Inst>, Vec<Inst>) =
            std::mem::take(&mut self.insts).into_iter().partition(|i| going.contains(i.name.as_str()));
        self.insts = kept;
        for i in stopping {
            Agent::stop_instance(i).await;
        }
        // 1b. An lvs_sync_daemon without an instance (instances with one have just
        //     stopped, or start below, with their roles).
        self.reload_unbound_sync(unbound);
        // 2. Services and real servers, with the pool they now follow.
        {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            *pool = next;
            diff.apply_services(self.dp.as_ref());
        }
        diff.apply_snat(self.dp.as_ref());
        // 3. Checkers.
        for id in &plan.stop {
            if let Some(t) = self.checkers.remove(id) {
                t.abort();
            }
            self.stats.forget(*id);
        }
        self.spawn_checkers(plan.start);
        // 4. Instances added or changed.
        self.cfg = new;
        let starting: HashSet<String> =
            diff.instances.iter().filter(|(_, c)| *c != Change::Removed).map(|(n, _)| n.clone()).collect();
        if !starting.is_empty() {
            match self.start_instances(&starting) {
                Ok(started) => self.insts.extend(started),
                Err(e) => tracing::error!("reload: {e}"),
            }
        }
        // Scripts nothing tracks any more.
        let tracked: HashSet<&str> =
            self.cfg.vrrp_instances.iter().flat_map(|i| i.track_script.iter().map(|t| t.name.as_str())).collect();
        self.scripts.retain(|name, s| {
            let keep = tracked.contains(name.as_str());
            if !keep {
                s.task.abort();
            }
            keep
        });
        self.publish_statuses();
        tracing::info!("reload done");
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
    let (_tx, rx) = mpsc::unbounded_channel();
    run_with_reload(cfg, dp, shutdown, rx, on_start).await
}

/// As [`run`]; each configuration received on `reload` (a re-read file, SIGHUP) is
/// applied by its differences only (see [`crate::reload`]): unchanged instances keep their
/// state, unchanged services and their real servers are left alone. One with errors is
/// refused, every error logged, and nothing changes.
pub async fn run_with_reload(
    cfg: Config,
    dp: Arc<dyn Dataplane>,
    shutdown: watch::Receiver<bool>,
    mut reload: mpsc::UnboundedReceiver<Loaded>,
    on_start: impl FnOnce(Running),
) -> Result<(), AgentError> {
    // Services first (both nodes hold them: failover only moves VIPs).
    let (pool, services, checks) = Pool::from_config(&cfg);
    let pool = Arc::new(Mutex::new(pool));
    if !services.is_empty() {
        dp.set_services(&services)?;
    }
    // SNAT rules (`virtual_server match`): rvsd's own and others' are left alone.
    if !cfg.snat.is_empty() {
        dp.set_snat(&cfg.snat.iter().map(|s| s.rule.clone()).collect::<Vec<_>>())?;
    }
    // Static addresses and routes: held whatever the VRRP state, while the agent runs.
    for a in &cfg.static_ipaddress {
        let dev = a.dev.as_deref().map(crate::keepalived::config::port_of_dev).unwrap_or_default();
        dp.add_vip(a.addr, dev)?;
    }
    for r in &cfg.static_routes {
        dp.add_route(&r.spec())?;
    }
    // keepalived's lvs_sync_daemon without an instance: both sync roles while running.
    if let Some(id) = unbound_sync_daemon(&cfg) {
        unbound_sync_roles(dp.as_ref(), id, true);
    }
    let stats = Arc::new(CheckStats::default());
    let (tx, mut rx) = mpsc::channel(1024);
    let mut agent = Agent {
        cfg: cfg.clone(),
        dp: dp.clone(),
        insts: Vec::new(),
        scripts: HashMap::new(),
        checkers: HashMap::new(),
        pool: pool.clone(),
        statuses: Arc::new(Mutex::new(Vec::new())),
        tx,
        stats: stats.clone(),
        fifos: Arc::new(fifo::Notifier::new(&cfg.global_defs)),
        reloads: Arc::new(ReloadStats::default()),
    };
    let all: HashSet<String> = cfg.vrrp_instances.iter().map(|i| i.name.clone()).collect();
    agent.insts = agent.start_instances(&all)?;
    agent.publish_statuses();
    // Checkers.
    agent.spawn_checkers(checks.into_iter().map(|c| (c, true)).collect());
    on_start(Running {
        instances: agent.statuses.clone(),
        check_stats: stats,
        pool: pool.clone(),
        reloads: agent.reloads.clone(),
    });
    let mut shutdown_c = shutdown.clone();
    let mut reload_open = true;
    loop {
        tokio::select! {
            t = rx.recv() => {
                // The agent holds a sender: never closed.
                let Some(t) = t else { continue };
                let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(rs) = pool.rs(t.id) {
                    tracing::warn!(rs = %rs.addr, up = t.up, reason = %t.reason, "real server health changed");
                }
                match pool.apply(&t, dp.as_ref()) {
                    Ok(n) => {
                        n.fifo.iter().for_each(|l| agent.fifos.lvs(l));
                        n.scripts.into_iter().for_each(spawn_script);
                    }
                    Err(e) => tracing::error!("applying health change: {e}"),
                }
            }
            l = reload.recv(), if reload_open => match l {
                Some(l) => agent.reload(l).await,
                None => reload_open = false,
            },
            r = shutdown_c.changed() => {
                if r.is_err() || *shutdown_c.borrow() {
                    break;
                }
            }
        }
    }
    for (_, t) in agent.checkers.drain() {
        t.abort();
    }
    for (_, s) in agent.scripts.drain() {
        s.task.abort();
    }
    // Every instance leaves at once, then each is waited for.
    let insts = std::mem::take(&mut agent.insts);
    for i in &insts {
        let _ = i.stop.send(true);
    }
    for i in insts {
        Agent::stop_instance(i).await;
    }
    // As keepalived's checker_terminate_phase2: both sync roles stop.
    if let Some(id) = unbound_sync_daemon(&agent.cfg) {
        unbound_sync_roles(dp.as_ref(), id, false);
    }
    // After the instances' last lines; the scripts reading them are stopped.
    agent.fifos.close();
    Ok(())
}
