//! The whole agent: VRRP instances, their tracked scripts and interfaces, and the health
//! checkers applied to the dataplane, on one tokio runtime.

pub mod fifo;
pub mod held;
pub mod mail;

use crate::bfd::{self, BfdStatus, Demux};
use crate::check::pool::{Notices, Pool, VsState};
use crate::check::{spawn_checkers_from, BfdEvent, CheckStats, HeldAddrs, Probe, RsChecks, RsId, Transition};
use crate::dataplane::{Dataplane, DataplaneError, SyncRoles};
use crate::keepalived::config::{BfdInstance, LifecycleScript, Track, VrrpInstance};
use crate::keepalived::{Config, Loaded};
use crate::reload::{self, Change};
use crate::script::{self, kill_group, log_exit, spawn_in_group};
use crate::vrrp::fsm::State;
use crate::vrrp::garp::GarpPacer;
use crate::vrrp::instance::{Instance, InstanceStatus, Leave, TrackRx, Tracked};
use crate::vrrp::io::IoError;
use crate::vrrp::sync::{Membership, SyncGroup};
use crate::vrrp::{process, track};
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

/// keepalived's `vrrp_startup_delay`: when the delay that starts now ends, logged as
/// keepalived's "Delaying startup"; none without VRRP instances or a delay.
fn vrrp_startup_hold(cfg: &Config) -> Option<tokio::time::Instant> {
    let delay = cfg.global_defs.vrrp_startup_delay.filter(|d| *d > 0.0 && !cfg.vrrp_instances.is_empty())?;
    tracing::info!(
        instances = cfg.vrrp_instances.len(),
        "vrrp_startup_delay: no VRRP instance becomes MASTER for {delay} s (they start as BACKUP and listen)"
    );
    Some(tokio::time::Instant::now() + Duration::from_secs_f64(delay))
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
    /// Each BFD session's status, in configuration order (replaced by a reload).
    pub bfd: Arc<Mutex<Vec<watch::Receiver<BfdStatus>>>>,
    /// BFD packets that reached no session.
    pub bfd_demux: Arc<Demux>,
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

    /// The BFD sessions' status, in configuration order.
    pub fn bfd_sessions(&self) -> Vec<BfdStatus> {
        self.bfd.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|r| r.borrow().clone()).collect()
    }
}

/// Starts `start`'s tracker for `name` in `map` unless one runs for the same `conf`
/// (an unchanged tracker keeps its state across a reload).
fn ensure_tracker(
    map: &mut HashMap<String, Tracker>,
    name: &str,
    conf: serde_json::Value,
    start: impl FnOnce() -> (watch::Receiver<bool>, JoinHandle<()>),
) {
    if map.get(name).is_some_and(|x| x.conf == conf) {
        return;
    }
    let (rx, task) = start();
    if let Some(old) = map.insert(name.to_string(), Tracker { conf, rx, task }) {
        old.task.abort();
    }
}

/// A running VRRP instance.
struct Inst {
    name: String,
    /// How it is to leave (none: running).
    stop: watch::Sender<Option<Leave>>,
    task: JoinHandle<()>,
    /// Its interface watchers.
    side: Vec<JoinHandle<()>>,
    status: watch::Receiver<InstanceStatus>,
}

/// A running BFD session: whether it is Up (the same channel across restarts of the
/// session, so that the instances tracking it keep following it), and its status.
struct BfdRun {
    conf: serde_json::Value,
    up: Arc<watch::Sender<bool>>,
    /// The last change, for BFD_CHECK (kept across restarts too).
    event: Arc<watch::Sender<Option<bool>>>,
    status: watch::Receiver<BfdStatus>,
    task: JoinHandle<()>,
}

/// A running tracked script or process: whether it counts as up.
struct Tracker {
    conf: serde_json::Value,
    rx: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

/// Everything running, and what it was started from.
struct Agent {
    cfg: Config,
    dp: Arc<dyn Dataplane>,
    insts: Vec<Inst>,
    scripts: HashMap<String, Tracker>,
    /// The `vrrp_track_process` runners, by name.
    processes: HashMap<String, Tracker>,
    /// The `bfd_instance` sessions, by name.
    bfd: HashMap<String, BfdRun>,
    /// Their receiving sockets.
    bfd_demux: Arc<Demux>,
    /// Their status, in configuration order (for status reporting).
    bfd_statuses: Arc<Mutex<Vec<watch::Receiver<BfdStatus>>>>,
    checkers: HashMap<RsId, JoinHandle<()>>,
    pool: Arc<Mutex<Pool>>,
    statuses: Arc<Mutex<Vec<watch::Receiver<InstanceStatus>>>>,
    tx: mpsc::Sender<Transition>,
    stats: Arc<CheckStats>,
    /// The addresses rvsd holds for the agent (`ha_suspend`'s checkers follow them).
    held: HeldAddrs,
    /// keepalived's notify FIFOs.
    fifos: Arc<fifo::Notifier>,
    reloads: Arc<ReloadStats>,
    /// keepalived's `vrrp_startup_delay`: when it ends (the agent's start plus the delay).
    /// Every instance started before then, at start or by a reload, waits for it (as
    /// keepalived's `vrrp_delayed_start_time`, set at start only).
    vrrp_hold: Option<tokio::time::Instant>,
    /// The pacing of gratuitous ARPs and NAs, shared by every instance, its intervals the
    /// configuration's (set again at each reload).
    garp_pacer: Arc<GarpPacer>,
}

impl Agent {
    /// Runs a session for each of `bfds` (keepalived runs every `bfd_instance`, tracked or
    /// not: the neighbour may track it): an unchanged one keeps running, a changed one
    /// restarts (Down until the neighbour answers again), one no longer there stops.
    fn ensure_bfd(&mut self, bfds: &[BfdInstance]) {
        self.bfd.retain(|name, r| {
            let keep = bfds.iter().any(|b| &b.name == name);
            if !keep {
                r.task.abort();
            }
            keep
        });
        for b in bfds {
            // What the session runs on: its weights are its trackers' business (the
            // instances' fingerprints hold them), so a weight changed alone restarts nothing.
            let mut conf = reload::comparable(b);
            if let serde_json::Value::Object(m) = &mut conf {
                for k in ["weight", "weight_reverse", "vrrp", "checker"] {
                    m.remove(k);
                }
            }
            if self.bfd.get(&b.name).is_some_and(|r| r.conf == conf) {
                continue;
            }
            let (up, event) = match self.bfd.remove(&b.name) {
                Some(old) => {
                    old.task.abort();
                    tracing::info!(bfd_instance = %b.name, "BFD session restarts (its block changed)");
                    (old.up, old.event)
                }
                None => (Arc::new(watch::channel(false).0), Arc::new(watch::channel(None).0)),
            };
            // A new session is Down: its trackers and checkers hear so (keepalived's BFD
            // process tells them every session's state at start and reload).
            up.send_replace(false);
            event.send_replace(Some(false));
            let (tx, status) = watch::channel(bfd::initial_status(b));
            let out = bfd::Outputs { up: up.clone(), event: event.clone(), status: tx };
            let task = tokio::spawn(bfd::run_session(b.clone(), self.bfd_demux.clone(), out));
            self.bfd.insert(b.name.clone(), BfdRun { conf, up, event, status, task });
        }
        *self.bfd_statuses.lock().unwrap_or_else(|e| e.into_inner()) =
            bfds.iter().filter_map(|b| self.bfd.get(&b.name)).map(|r| r.status.clone()).collect();
    }

    /// Starts the instances of `self.cfg` named in `names` (with their tracked scripts,
    /// processes and interfaces). Members of a sync group are started together (a change to
    /// one changes them all, see [`reload::instance_fingerprint`]), each group with a new
    /// [`SyncGroup`] of the members started (members not running, such as ones a config
    /// id filtered out, do not count). Those in `resume` carry on in the state of the one
    /// they replace, announcing their addresses when the flag says some were added
    /// ([`Instance::resume`]).
    fn start_instances(
        &mut self,
        names: &HashSet<String>,
        resume: &HashMap<String, (InstanceStatus, bool)>,
    ) -> Result<Vec<Inst>, AgentError> {
        let cfg = self.cfg.clone();
        // Tracked scripts and processes: one runner per vrrp_script or vrrp_track_process
        // that something tracks; an unchanged one keeps running.
        let chosen_insts = || cfg.vrrp_instances.iter().filter(|i| names.contains(&i.name));
        for s in &cfg.vrrp_scripts {
            if chosen_insts().any(|i| i.track_script.iter().any(|t| t.name == s.name)) {
                ensure_tracker(&mut self.scripts, &s.name, reload::comparable(s), || {
                    let (tx, rx) = watch::channel(!s.init_fail);
                    (rx, tokio::spawn(track::run_script(s.clone(), tx)))
                });
            }
        }
        for p in &cfg.vrrp_track_processes {
            if chosen_insts().any(|i| i.track_process.iter().any(|t| t.name == p.name)) {
                ensure_tracker(&mut self.processes, &p.name, reload::comparable(p), || {
                    // As keepalived, the processes running at start count at once.
                    let (tx, rx) = watch::channel(process::quorum_met(p));
                    (rx, tokio::spawn(process::run(p.clone(), tx)))
                });
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
            // An entry's `weight N [reverse]`, else its object's: reversed, the weight
            // applies the other way round (keepalived's `weight_reverse`).
            let up_down = |t: &Track, own: Option<(i32, bool)>, rx: watch::Receiver<bool>| {
                let (w, r) = own.unwrap_or((0, false));
                let (w, reverse) = (t.weight.unwrap_or(w), t.reverse.unwrap_or(r));
                let (weight, invert) = if reverse { (-w, true) } else { (w, false) };
                Tracked { name: t.name.clone(), weight, invert, rx: TrackRx::UpDown(rx) }
            };
            for t in &i.track_script {
                let Some(rx) = self.scripts.get(&t.name).map(|s| s.rx.clone()) else { continue };
                let own = cfg.vrrp_scripts.iter().find(|s| s.name == t.name).map(|s| (s.weight, s.weight_reverse));
                tracked.push(up_down(t, own, rx));
            }
            for t in &i.track_process {
                let Some(rx) = self.processes.get(&t.name).map(|s| s.rx.clone()) else { continue };
                let own =
                    cfg.vrrp_track_processes.iter().find(|p| p.name == t.name).map(|p| (p.weight, p.weight_reverse));
                tracked.push(up_down(t, own, rx));
            }
            for t in &i.track_interface {
                let (tx, rx) = watch::channel(track::interface_up(&t.name));
                side.push(tokio::spawn(track::watch_interface(t.name.clone(), Duration::from_millis(500), tx)));
                tracked.push(up_down(t, None, rx));
            }
            // keepalived's track_src_ip: FAULT while the configured source is not on the
            // instance's interface.
            if let Some(src) = i.unicast_src_ip.filter(|_| i.track_src_ip) {
                let (tx, rx) = watch::channel(track::interface_has_address(&i.interface, src));
                let period = Duration::from_millis(500);
                side.push(tokio::spawn(track::watch_address(i.interface.clone(), src, period, tx)));
                let t = Track { name: format!("track_src_ip {src}"), weight: Some(0), reverse: None };
                tracked.push(up_down(&t, None, rx));
            }
            for t in &i.track_bfd {
                // No session (-B/--no_bfd): down for ever, as keepalived's.
                let rx = self.bfd.get(&t.name).map_or_else(|| watch::channel(false).1, |r| r.up.subscribe());
                let own = cfg.bfd_instances.iter().find(|b| b.name == t.name).map(|b| (b.weight, b.weight_reverse));
                tracked.push(up_down(t, own, rx));
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
        // vrrp_sync_group: the members go MASTER, BACKUP and FAULT together (a fault of
        // one, whatever its cause, is the group's: crate::vrrp::sync).
        let mut memberships: HashMap<usize, Membership> = HashMap::new();
        // The resumed state of the groups whose members all hand over, by member.
        let mut group_states: HashMap<usize, State> = HashMap::new();
        for g in &cfg.vrrp_sync_groups {
            let members: Vec<usize> = g
                .members
                .iter()
                .filter_map(|m| cfg.vrrp_instances.iter().position(|i| &i.name == m))
                .filter(|n| chosen.contains(n))
                .filter(|n| !memberships.contains_key(n))
                .collect();
            if members.is_empty() {
                continue;
            }
            let running: Vec<&str> = g
                .members
                .iter()
                .filter(|m| !names.contains(*m) && self.insts.iter().any(|i| &i.name == *m))
                .map(String::as_str)
                .collect();
            if !running.is_empty() {
                // Not expected: members restart together (their fingerprints include the group).
                tracing::warn!(group = %g.name, ?running, "vrrp_sync_group: members left running are not in the new group");
            }
            let member_names: Vec<String> = members.iter().map(|&n| cfg.vrrp_instances[n].name.clone()).collect();
            // Every member handed over at a reload: the group carries on in their states.
            let states: Option<Vec<State>> = member_names.iter().map(|m| resume.get(m).map(|(s, _)| s.state)).collect();
            let (group, ms) =
                SyncGroup::new(&g.name, g.notify.clone(), self.fifos.clone(), &member_names, states.as_deref());
            if states.is_some() {
                group_states.extend(members.iter().map(|&n| (n, group.state())));
            }
            memberships.extend(members.iter().copied().zip(ms));
        }
        let mut out = Vec::new();
        for n in chosen {
            let i = &cfg.vrrp_instances[n];
            let tracked = tracked_by.remove(&n).unwrap_or_default();
            let side = side_by.remove(&n).unwrap_or_default();
            let (mut inst, status) = match Instance::new(
                i.clone(),
                &cfg.global_defs,
                self.dp.clone(),
                tracked,
                self.fifos.clone(),
                self.garp_pacer.clone(),
            ) {
                Ok(x) => x,
                Err(e) => {
                    side.iter().for_each(JoinHandle::abort);
                    out.iter().for_each(|x: &Inst| x.side.iter().for_each(JoinHandle::abort));
                    return Err(AgentError::Socket(i.name.clone(), e));
                }
            };
            if let Some(m) = memberships.remove(&n) {
                inst.join_group(m);
            }
            if let Some(t) = self.vrrp_hold {
                inst.hold_until(t);
            }
            if let Some((was, announce)) = resume.get(&i.name) {
                inst.resume(was, *announce, group_states.get(&n).copied());
            }
            let (stop, stop_rx) = watch::channel(None);
            let task = tokio::spawn(inst.run(stop_rx));
            out.push(Inst { name: i.name.clone(), stop, task, side, status });
        }
        Ok(out)
    }

    /// Stops an instance (see [`Leave`]) and waits for it; returns its last status
    /// (handing over: the state it was in).
    async fn stop_instance(inst: Inst, how: Leave) -> InstanceStatus {
        let _ = inst.stop.send(Some(how));
        let _ = inst.task.await;
        inst.side.iter().for_each(JoinHandle::abort);
        let last = inst.status.borrow().clone();
        last
    }

    fn publish_statuses(&self) {
        let order: HashMap<&str, usize> =
            self.cfg.vrrp_instances.iter().enumerate().map(|(n, i)| (i.name.as_str(), n)).collect();
        let mut v: Vec<&Inst> = self.insts.iter().collect();
        v.sort_by_key(|i| order.get(i.name.as_str()).copied().unwrap_or(usize::MAX));
        *self.statuses.lock().unwrap_or_else(|e| e.into_inner()) = v.iter().map(|i| i.status.clone()).collect();
    }

    /// A master handed over at a reload ([`Leave::Handover`]): the addresses and virtual
    /// routes its block `old` holds and its successor's `new` has not (none: nothing is
    /// kept) are released now (keepalived's `clear_diff_vrrp_vip` / `_vroutes`); its
    /// successor adds the rest. Returns whether `new` adds addresses (then the successor
    /// announces them).
    fn release_dropped(&self, old: &VrrpInstance, new: Option<&VrrpInstance>) -> bool {
        let name = &old.name;
        let vips = new.map(VrrpInstance::vips).unwrap_or_default();
        let routes: Vec<_> = new.iter().flat_map(|n| &n.virtual_routes).map(|r| r.spec()).collect();
        for r in old.virtual_routes.iter().map(|r| r.spec()).filter(|r| !routes.contains(r)) {
            if let Err(e) = self.dp.del_route(&r) {
                tracing::error!(instance = %name, prefix = %r.prefix, "remove virtual route: {e}");
            }
        }
        let had = old.vips();
        for (addr, port) in had.iter().filter(|v| !vips.contains(v)) {
            if let Err(e) = self.dp.del_vip(*addr, port) {
                tracing::error!(instance = %name, %addr, "remove VIP: {e}");
            }
        }
        vips.iter().any(|v| !had.contains(v))
    }

    /// Writes `n`'s FIFO lines, starts its scripts and sends its mails (neither waited
    /// for).
    fn notify(&self, n: Notices) {
        n.fifo.iter().for_each(|l| self.fifos.lvs(l));
        n.scripts.into_iter().for_each(script::spawn);
        n.mail.into_iter().for_each(|m| self.fifos.mail.send(m));
    }

    fn spawn_checkers(&mut self, mut start: Vec<(RsChecks, bool)>) {
        // BFD_CHECKs follow their sessions' changes (none without a session: -B).
        for c in start.iter_mut().flat_map(|(s, _)| &mut s.checks) {
            if let Probe::Bfd { name, event } = &mut c.probe {
                *event = BfdEvent(self.bfd.get(name.as_str()).map(|r| r.event.subscribe()));
            }
        }
        for (id, task) in spawn_checkers_from(start, self.tx.clone(), self.stats.clone(), &self.held) {
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
        // keepalived refuses a reload that moves it to another network namespace
        // (`unsupported_change`): the namespace is entered once, at start.
        let (ns_was, ns) = (&self.cfg.global_defs.net_namespace, &loaded.config.global_defs.net_namespace);
        let moved = ns_was != ns;
        if moved {
            tracing::error!(
                "reload: net_namespace {} -> {}: the namespace cannot change at a reload (keepalived refuses it too): \
                 restart rvs-agent",
                ns_was.as_deref().unwrap_or("none"),
                ns.as_deref().unwrap_or("none"),
            );
        }
        let refused = errors > 0 || moved;
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
        self.fifos.mail.reconfigure(&new);
        let (diff, next, plan, quorum) = {
            let pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            let (diff, next, plan) = reload::plan(&self.cfg, &pool, &new);
            // Removed servers' down notifiers first, then the quorums they moved.
            let flush = new.global_defs.lvs_flush_on_stop.is_some();
            let mut quorum = next.removed_notices(&pool, flush);
            quorum.append(next.quorum_notices(Some(&pool)));
            (diff, next, plan, quorum)
        };
        let unbound = (unbound_sync_daemon(&self.cfg), unbound_sync_daemon(&new));
        let (delay_was, delay) = (self.cfg.global_defs.vrrp_startup_delay, new.global_defs.vrrp_startup_delay);
        if self.cfg.global_defs.startup_script != new.global_defs.startup_script {
            tracing::info!("reload: startup_script changed: it runs at rvs-agent's next start (as keepalived)");
        }
        if delay_was != delay {
            tracing::info!(
                "reload: vrrp_startup_delay {} -> {}: applies from rvs-agent's next start (as keepalived, not on reload)",
                delay_was.map_or("none".to_string(), |d| format!("{d} s")),
                delay.map_or("none".to_string(), |d| format!("{d} s")),
            );
        }
        // Pacing applies to the instances carried on as to those started (a garp_group
        // alone changed is no instance's change).
        self.garp_pacer.set(&new);
        // BFD sessions before the instances that track them.
        self.ensure_bfd(&new.bfd_instances);
        if diff.is_empty() {
            tracing::info!("reload: no changes");
            self.reload_unbound_sync(unbound);
            // Nothing for the dataplane or the checkers, but the pool follows the file:
            // what only the agent acts on (notify scripts, `omega`) is the new file's.
            *self.pool.lock().unwrap_or_else(|e| e.into_inner()) = next;
            // A quorum or hysteresis changed alone still moves a quorum.
            self.notify(quorum);
            self.cfg = new;
            return;
        }
        for line in diff.lines() {
            tracing::info!("reload: {line}");
        }
        // 1. Instances removed or changed leave first (their VRIDs may be reused); a
        //    changed one handing over to its successor leaves its state to it. The notify
        //    FIFOs and mail settings are the new file's already (keepalived opens the new
        //    FIFOs before its clear_diff_vrrp).
        let going: HashMap<&str, Change> =
            diff.instances.iter().filter(|(_, c)| *c != Change::Added).map(|(n, c)| (n.as_str(), *c)).collect();
        let (stopping, kept): (Vec<Inst>, Vec<Inst>) =
            std::mem::take(&mut self.insts).into_iter().partition(|i| going.contains_key(i.name.as_str()));
        self.insts = kept;
        let mut resume = HashMap::new();
        for i in stopping {
            let how = match going[i.name.as_str()] {
                Change::Changed => reload::changed_leaves(&self.cfg, &new, &i.name),
                _ => Leave::Removed,
            };
            let name = i.name.clone();
            let last = Agent::stop_instance(i, how).await;
            if how == Leave::Handover {
                let find = |c: &Config| c.vrrp_instances.iter().find(|i| i.name == name).cloned();
                let added = match (find(&self.cfg), find(&new)) {
                    (Some(old), new_block) if last.state == State::Master => {
                        self.release_dropped(&old, new_block.as_ref())
                    }
                    _ => false,
                };
                resume.insert(name, (last, added));
            }
        }
        // 1b. An lvs_sync_daemon without an instance (instances with one have just
        //     stopped, or start below, with their roles).
        self.reload_unbound_sync(unbound);
        // 1c. lvs_timeouts (before the services, as at start).
        diff.apply_timeouts(self.dp.as_ref());
        // 2. Services and real servers, with the pool they now follow.
        {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            *pool = next;
            diff.apply_services(self.dp.as_ref());
        }
        // The quorum notifiers of virtual servers added, or whose quorum moved.
        self.notify(quorum);
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
            match self.start_instances(&starting, &resume) {
                Ok(started) => self.insts.extend(started),
                Err(e) => {
                    tracing::error!("reload: {e}");
                    // The masters handed over whose successors did not start must not
                    // leave their VIPs behind (the peer takes over).
                    for (name, (was, _)) in resume.iter().filter(|(_, (was, _))| was.state == State::Master) {
                        let Some(i) = self.cfg.vrrp_instances.iter().find(|i| &i.name == name) else { continue };
                        self.release_dropped(i, None);
                        let daemon = self.cfg.global_defs.lvs_sync_daemon.as_ref();
                        if let Some(d) = daemon.filter(|d| d.instance.as_deref() == Some(name.as_str())) {
                            let _ = self.dp.set_sync_roles(SyncRoles::stopped(d.syncid), "instance not restarted");
                        }
                        tracing::warn!(instance = %name, priority = was.priority, "not restarted: its VIPs released");
                    }
                }
            }
        }
        // Scripts and processes nothing tracks any more.
        let insts = &self.cfg.vrrp_instances;
        let scripts: HashSet<&str> =
            insts.iter().flat_map(|i| i.track_script.iter().map(|t| t.name.as_str())).collect();
        let procs: HashSet<&str> = insts.iter().flat_map(|i| i.track_process.iter().map(|t| t.name.as_str())).collect();
        for (map, tracked) in [(&mut self.scripts, scripts), (&mut self.processes, procs)] {
            map.retain(|name, s| {
                let keep = tracked.contains(name.as_str());
                if !keep {
                    s.task.abort();
                }
                keep
            });
        }
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
    // This host's name for the mails, looked up once, off the runtime and not waited for
    // (it may ask DNS; a mail sent before it is known waits for it).
    drop(tokio::task::spawn_blocking(mail::this_host));
    // keepalived's startup_script: before anything, waited for (stopped at its timeout).
    // Asked to stop meanwhile: nothing starts, the shutdown script runs (keepalived's
    // sigend before its children start).
    if let Some(s) = &cfg.global_defs.startup_script {
        if !lifecycle_script("startup", s, Some(shutdown.clone())).await {
            if let Some(s) = &cfg.global_defs.shutdown_script {
                lifecycle_script("shutdown", s, None).await;
            }
            return Ok(());
        }
    }
    // Every address the agent adds to rvsd or removes goes through `held`, which also
    // hears rvsd's listings of its addresses, and tells the checkers of `ha_suspend`
    // virtual servers whether their VIP is here.
    // keepalived's vrrp_startup_delay counts from the start.
    let vrrp_hold = vrrp_startup_hold(&cfg);
    let held = held::HeldVips::new(dp);
    let held_rx = held.subscribe();
    let dp: Arc<dyn Dataplane> = Arc::new(held);
    // keepalived's lvs_timeouts: rvsd's global timeouts, before the services (as
    // keepalived's start_check sets IPVS's before loading its virtual servers).
    if cfg.global_defs.lvs_timeouts.is_set() {
        if let Err(e) = dp.set_timeouts(cfg.global_defs.lvs_timeouts) {
            tracing::error!("lvs_timeouts: {e}");
        }
    }
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
        processes: HashMap::new(),
        bfd: HashMap::new(),
        bfd_demux: Demux::new(),
        bfd_statuses: Arc::new(Mutex::new(Vec::new())),
        checkers: HashMap::new(),
        pool: pool.clone(),
        statuses: Arc::new(Mutex::new(Vec::new())),
        tx,
        stats: stats.clone(),
        held: held_rx,
        fifos: Arc::new(fifo::Notifier::new(&cfg.global_defs)),
        reloads: Arc::new(ReloadStats::default()),
        vrrp_hold,
        garp_pacer: Arc::new(GarpPacer::new(&cfg)),
    };
    agent.fifos.mail.reconfigure(&cfg);
    // keepalived's init_services: each virtual server starts with its quorum up (its
    // quorum_up runs) or, below it with a sorry server, down (its quorum_down runs).
    let start = pool.lock().unwrap_or_else(|e| e.into_inner()).quorum_notices(None);
    agent.notify(start);
    agent.ensure_bfd(&cfg.bfd_instances);
    let all: HashSet<String> = cfg.vrrp_instances.iter().map(|i| i.name.clone()).collect();
    agent.insts = agent.start_instances(&all, &HashMap::new())?;
    agent.publish_statuses();
    // Checkers, each from its server's health at start (down under `alpha`).
    agent.spawn_checkers(checks);
    on_start(Running {
        instances: agent.statuses.clone(),
        check_stats: stats,
        pool: pool.clone(),
        reloads: agent.reloads.clone(),
        bfd: agent.bfd_statuses.clone(),
        bfd_demux: agent.bfd_demux.clone(),
    });
    let mut shutdown_c = shutdown.clone();
    let mut reload_open = true;
    loop {
        tokio::select! {
            t = rx.recv() => {
                // The agent holds a sender: never closed.
                let Some(t) = t else { continue };
                let mut pool = pool.lock().unwrap_or_else(|e| e.into_inner());
                match pool.rs(t.id) {
                    Some(rs) if !rs.up && !t.up => {
                        tracing::info!(rs = %rs.addr, reason = %t.reason, "real server's first checks failed: it stays down");
                    }
                    Some(rs) => {
                        tracing::warn!(rs = %rs.addr, up = t.up, reason = %t.reason, "real server health changed");
                    }
                    None => {}
                }
                match pool.apply(&t, dp.as_ref()) {
                    Ok(n) => agent.notify(n),
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
    for (_, b) in agent.bfd.drain() {
        b.task.abort();
    }
    // keepalived's omega: the down notifiers of the servers up, then quorum_down, for
    // each virtual server with omega (none without); run while the instances leave.
    // With lvs_flush_on_stop, keepalived runs the quorum notifiers only.
    let quorum_only = agent.cfg.global_defs.lvs_flush_on_stop.is_some();
    let omega = pool.lock().unwrap_or_else(|e| e.into_inner()).omega_notices(quorum_only);
    if !omega.fifo.is_empty() {
        tracing::info!(scripts = omega.scripts.len(), "omega: running the down notifiers at shutdown");
    }
    omega.fifo.iter().for_each(|l| agent.fifos.lvs(l));
    omega.mail.into_iter().for_each(|m| agent.fifos.mail.send(m));
    let omega_scripts = start_shutdown_scripts(omega.scripts, SHUTDOWN_SCRIPT_LIMIT);
    // Every instance leaves at once, then each is waited for.
    let insts = std::mem::take(&mut agent.insts);
    for i in &insts {
        let _ = i.stop.send(Some(Leave::Stop));
    }
    for i in insts {
        Agent::stop_instance(i, Leave::Stop).await;
    }
    // As keepalived's checker_terminate_phase2: both sync roles stop.
    if let Some(id) = unbound_sync_daemon(&agent.cfg) {
        unbound_sync_roles(dp.as_ref(), id, false);
    }
    wait_scripts(omega_scripts).await;
    // The instances' `Stopping` mails and omega's.
    agent.fifos.mail.flush(mail::SHUTDOWN_WAIT).await;
    // After the instances' last lines; the scripts reading them are stopped.
    agent.fifos.close();
    // keepalived's shutdown_script: once everything has stopped (the running file's: a
    // reload may change it, as keepalived's).
    if let Some(s) = &agent.cfg.global_defs.shutdown_script {
        lifecycle_script("shutdown", s, None).await;
    }
    Ok(())
}

/// Runs keepalived's startup or shutdown script `s` and waits for it: at its timeout, or
/// when `stop` says so, its process group gets SIGTERM, then SIGKILL 2 s later
/// (keepalived's `handle_child_timeout`). Returns false when `stop` ended it.
async fn lifecycle_script(what: &str, s: &LifecycleScript, stop: Option<watch::Receiver<bool>>) -> bool {
    tracing::info!(script = %s.cmd, "running the {what} script");
    let Some(mut child) = spawn_in_group(&s.cmd) else { return true };
    let stopped = async move {
        match stop {
            Some(mut rx) => {
                let _ = rx.wait_for(|s| *s).await;
            }
            None => std::future::pending().await,
        }
    };
    let limit = Duration::from_secs(u64::from(s.timeout));
    let (why, timed_out) = tokio::select! {
        r = tokio::time::timeout(limit, child.wait()) => match r {
            Ok(r) => {
                log_exit(&s.cmd, r);
                return true;
            }
            Err(_) => (format!("still running after its {limit:?}"), true),
        },
        _ = stopped => ("asked to stop meanwhile".to_string(), false),
    };
    tracing::warn!(script = %s.cmd, "{what} script {why}: stopped (SIGTERM, then SIGKILL after 2 s)");
    kill_group(&mut child, Duration::from_secs(2)).await;
    timed_out
}

/// How long a script run at shutdown (`omega`'s notifiers) may take before it is killed:
/// keepalived's `TIMER_HZ` given to `system_call_script` by `do_rs_notifies` and
/// `do_vs_notifies` when stopping (then `child_killed_thread` kills its process group).
const SHUTDOWN_SCRIPT_LIMIT: Duration = Duration::from_secs(1);

/// Starts `cmds` at once, in order (each `/bin/sh -c`, in a process group of its own),
/// and returns the tasks waiting for them: a script still running `limit` after it
/// started has its process group killed (SIGKILL), as keepalived's scripts at shutdown
/// (and its startup and shutdown scripts), so that the agent neither exits before its
/// notifiers are done (a service manager would kill them with it) nor waits on a hung
/// one.
fn start_shutdown_scripts(cmds: Vec<crate::keepalived::config::Script>, limit: Duration) -> tokio::task::JoinSet<()> {
    let mut set = tokio::task::JoinSet::new();
    for cmd in cmds {
        let Some(mut child) = spawn_in_group(&cmd) else { continue };
        set.spawn(async move {
            match tokio::time::timeout(limit, child.wait()).await {
                Ok(r) => log_exit(&cmd, r),
                Err(_) => {
                    tracing::warn!(script = %cmd, "script still running {limit:?} after it started: killed");
                    kill_group(&mut child, Duration::ZERO).await;
                }
            }
        });
    }
    set
}

/// Waits for the scripts [`start_shutdown_scripts`] started (each ends within its limit).
async fn wait_scripts(mut set: tokio::task::JoinSet<()>) {
    while set.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataplane::FakeDataplane;
    use crate::keepalived::{parse_str, Options};
    use std::path::{Path, PathBuf};
    use std::time::Instant;

    /// Two virtual servers, each with two real servers (no checkers: up while the agent
    /// runs) whose notifiers and the virtual server's quorum notifiers touch a file named
    /// after them in `dir`; `omega_a` / `omega_b` say which has `omega`.
    fn conf(dir: &Path, omega_a: bool, omega_b: bool) -> String {
        let touch = |name: &str| format!("\"/bin/touch {}\"", dir.join(name).display());
        let vs = |vip: &str, n: &str, omega: bool| {
            format!(
                "virtual_server {vip} 80 {{\n lb_kind FNAT\n{} quorum_down {}\n quorum_up {}\n\
                 real_server 10.0.0.1 80 {{\n  notify_down {}\n  notify_up {}\n }}\n\
                 real_server 10.0.0.2 80 {{\n  notify_down {}\n }}\n}}\n",
                if omega { " omega\n" } else { "" },
                touch(&format!("{n}-quorum-down")),
                touch(&format!("{n}-quorum-up")),
                touch(&format!("{n}-rs1-down")),
                touch(&format!("{n}-rs1-up")),
                touch(&format!("{n}-rs2-down")),
            )
        };
        format!("{}{}", vs("192.0.2.1", "a", omega_a), vs("192.0.2.2", "b", omega_b))
    }

    fn load(text: &str) -> Loaded {
        let l = parse_str(text, "k.conf", Options::default());
        assert!(!l.has_errors(), "{:?}", l.diagnostics);
        l
    }

    /// The files the scripts made in `dir`, sorted.
    fn made(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    /// Runs the agent on `start`, applies `reloads`, shuts it down and returns how long
    /// the shutdown took.
    async fn run_and_stop(start: &str, reloads: &[String]) -> Duration {
        let dp = Arc::new(FakeDataplane::new());
        let (stop, stop_rx) = watch::channel(false);
        let (reload_tx, reload_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_with_reload(load(start).config, dp, stop_rx, reload_rx, |_| {}));
        let settle = || tokio::time::sleep(Duration::from_millis(100));
        settle().await;
        for r in reloads {
            reload_tx.send(load(r)).unwrap();
            settle().await;
        }
        let t = Instant::now();
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        t.elapsed()
    }

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rvs-agent-omega-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// keepalived's `startup_script` runs before anything (the services are loaded after
    /// it ends), `shutdown_script` after everything (after omega's notifiers); a hung one
    /// is killed at its timeout and the agent goes on.
    #[tokio::test]
    async fn startup_and_shutdown_scripts_bracket_the_agent() {
        let dir = scratch("lifecycle");
        let log = dir.join("log");
        // The startup script takes a while: nothing may start before it ends.
        let line = |what: &str, wait: &str| format!("\"/bin/sh -c 'sleep {wait}; echo {what} >> {}'\"", log.display());
        let text = format!(
            "global_defs {{\n startup_script {}\n shutdown_script {}\n shutdown_script_timeout 2\n}}\n{}",
            line("start", "0.5"),
            line("stop", "0"),
            conf(&dir, true, false).replace("/bin/touch ", &format!("/bin/sh -c 'echo $0 >> {}' ", log.display()))
        );
        let lines =
            |log: &Path| std::fs::read_to_string(log).unwrap_or_default().lines().map(String::from).collect::<Vec<_>>();
        let dp = Arc::new(FakeDataplane::new());
        let (stop, stop_rx) = watch::channel(false);
        let (_reload_tx, reload_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_with_reload(load(&text).config, dp.clone(), stop_rx, reload_rx, |_| {}));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(dp.calls().is_empty() && lines(&log).is_empty(), "nothing before the startup script ends");
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(!dp.calls().is_empty(), "the services after it");
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        let got = lines(&log);
        assert_eq!(got.first().map(String::as_str), Some("start"), "{got:?}");
        assert_eq!(got.last().map(String::as_str), Some("stop"), "{got:?}");
        assert!(got.len() > 2, "the notifiers ran between them: {got:?}");
        // A hung startup script: stopped at its timeout, then the agent starts.
        let hung = "global_defs {\n startup_script \"/bin/sleep 30\"\n startup_script_timeout 1\n}\n";
        let dp = Arc::new(FakeDataplane::new());
        let (stop, stop_rx) = watch::channel(false);
        let (_reload_tx, reload_rx) = mpsc::unbounded_channel();
        let text = format!("{hung}{}", conf(&dir, false, false));
        let task = tokio::spawn(run_with_reload(load(&text).config, dp.clone(), stop_rx, reload_rx, |_| {}));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(!dp.calls().is_empty(), "started once the startup script's timeout passed");
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        // Asked to stop during the startup script: nothing starts, the shutdown script runs.
        std::fs::remove_file(&log).unwrap();
        let text = format!(
            "{}{}",
            hung.replace("}\n", &format!(" shutdown_script {}\n}}\n", line("stop", "0"))),
            conf(&dir, false, false)
        );
        let dp = Arc::new(FakeDataplane::new());
        let (stop, stop_rx) = watch::channel(false);
        let (_reload_tx, reload_rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(run_with_reload(load(&text).config, dp.clone(), stop_rx, reload_rx, |_| {}));
        tokio::time::sleep(Duration::from_millis(200)).await;
        let t = Instant::now();
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
        assert!(dp.calls().is_empty(), "nothing started: {:?}", dp.calls());
        assert_eq!(lines(&log), ["stop"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A reload that moves the agent to another network namespace is refused whole, as
    /// keepalived's `unsupported_change`; the shutdown script is the running file's (a
    /// reload may change it, as keepalived's).
    #[tokio::test]
    async fn a_reload_cannot_move_the_namespace_and_may_change_the_shutdown_script() {
        let dir = scratch("reload-ns");
        let log = dir.join("log");
        let stop_line = |w: &str| format!(" shutdown_script \"/bin/sh -c 'echo {w} >> {}'\"\n", log.display());
        let base = |ns: &str, w: &str| format!("{ns}global_defs {{\n{}}}\n{}", stop_line(w), conf(&dir, false, false));
        let dp = Arc::new(FakeDataplane::new());
        let (stop, stop_rx) = watch::channel(false);
        let (reload_tx, reload_rx) = mpsc::unbounded_channel();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let start = load(&base("", "first")).config;
        let task = tokio::spawn(run_with_reload(start, dp, stop_rx, reload_rx, move |r| {
            let _ = tx.send(r.reloads);
        }));
        let reloads = rx.await.unwrap();
        let settle = || tokio::time::sleep(Duration::from_millis(100));
        reload_tx.send(load(&base("net_namespace blue\n", "moved"))).unwrap();
        settle().await;
        assert_eq!(reloads.refused.load(Ordering::Relaxed), 1, "a namespace change is refused");
        reload_tx.send(load(&base("", "second"))).unwrap();
        settle().await;
        assert_eq!(reloads.applied.load(Ordering::Relaxed), 1);
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        assert_eq!(std::fs::read_to_string(&log).unwrap(), "second\n", "the reloaded file's shutdown script");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// keepalived's `omega`: at shutdown the virtual server with it runs its real servers'
    /// `notify_down` and its `quorum_down` (done by the time the agent returns) and writes
    /// their `RS ... DOWN` and `VS ... DOWN` FIFO lines; the one without runs nothing, nor
    /// does any up notifier. (Each `quorum_up` ran at start: both quorums are met then.)
    #[tokio::test]
    async fn omega_runs_the_down_notifiers_at_shutdown_and_only_there() {
        let dir = scratch("run");
        // With keepalived's lvs_notify_fifo (made here and read after the agent is gone).
        let fifo = scratch("fifo").join("lvs");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut reader = {
            use std::os::unix::fs::OpenOptionsExt;
            let nonblock = nix::fcntl::OFlag::O_NONBLOCK.bits();
            std::fs::OpenOptions::new().read(true).custom_flags(nonblock).open(&fifo).unwrap()
        };
        let fifo_conf = format!("global_defs {{\n lvs_notify_fifo {}\n}}\n", fifo.display());
        run_and_stop(&format!("{fifo_conf}{}", conf(&dir, true, false)), &[]).await;
        assert_eq!(made(&dir), ["a-quorum-down", "a-quorum-up", "a-rs1-down", "a-rs2-down", "b-quorum-up"]);
        let mut lines = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut lines);
        assert_eq!(
            lines,
            "VS [192.0.2.1]:tcp:80 UP\nVS [192.0.2.2]:tcp:80 UP\n\
             RS [10.0.0.1]:tcp:80 [192.0.2.1]:tcp:80 DOWN\nRS [10.0.0.2]:tcp:80 [192.0.2.1]:tcp:80 DOWN\n\
             VS [192.0.2.1]:tcp:80 DOWN\n"
        );
        std::fs::remove_dir_all(fifo.parent().unwrap()).unwrap();
        // Without omega anywhere: nothing at shutdown.
        std::fs::remove_dir_all(&dir).unwrap();
        let dir = scratch("none");
        run_and_stop(&conf(&dir, false, false), &[]).await;
        assert_eq!(made(&dir), ["a-quorum-up", "b-quorum-up"], "only the start's");
        // A reload that turns omega on (nothing else changes) makes the shutdown run them.
        std::fs::remove_dir_all(&dir).unwrap();
        let dir = scratch("reload");
        // (The reload moves no quorum: no quorum_up again.)
        run_and_stop(&conf(&dir, false, false), &[conf(&dir, false, true)]).await;
        assert_eq!(made(&dir), ["a-quorum-up", "b-quorum-down", "b-quorum-up", "b-rs1-down", "b-rs2-down"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// keepalived's start (`init_service_vs` -> `update_quorum_state(vs, init)`, then each
    /// checker's first result, `update_svr_checker_state` with `!has_run`): a virtual
    /// server whose quorum is met runs its quorum_up (`VS ... UP`); one below its quorum
    /// with a sorry server (here: its only server starts down under alpha) runs its
    /// quorum_down (`VS ... DOWN`) with the sorry server in; one below without a sorry
    /// server runs neither. The first failing round of a server alpha started down runs
    /// its notify_down (`RS ... DOWN`) once; the rounds after it, nothing.
    #[tokio::test]
    async fn the_start_runs_the_quorum_notifiers_and_alpha_first_failures_as_keepalived() {
        let dir = scratch("start");
        let fifo = scratch("start-fifo").join("lvs");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let mut reader = {
            use std::os::unix::fs::OpenOptionsExt;
            let nonblock = nix::fcntl::OFlag::O_NONBLOCK.bits();
            std::fs::OpenOptions::new().read(true).custom_flags(nonblock).open(&fifo).unwrap()
        };
        // A port nothing listens on: the checks fail at once.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = |name: &str| format!("\"echo x >> {}\"", dir.join(name).display());
        let vs = |vip: &str, n: &str, extra: &str, rs: &str| {
            format!(
                "virtual_server {vip} 80 {{\n lb_kind FNAT\n delay_loop 0.05\n{extra} quorum_up {}\n quorum_down {}\n\
                 real_server {rs} {{\n  notify_up {}\n  notify_down {}\n{} }}\n}}\n",
                log(&format!("{n}-quorum-up")),
                log(&format!("{n}-quorum-down")),
                log(&format!("{n}-rs-up")),
                log(&format!("{n}-rs-down")),
                if rs.starts_with("127.") { "  TCP_CHECK {\n   connect_timeout 0.2\n  }\n" } else { "" },
            )
        };
        let text = format!(
            "global_defs {{\n lvs_notify_fifo {}\n}}\n{}{}{}",
            fifo.display(),
            vs("192.0.2.1", "a", " alpha\n sorry_server 10.0.9.9 80\n", &format!("127.0.0.1 {closed}")),
            vs("192.0.2.2", "b", "", "10.0.0.1 80"),
            vs("192.0.2.3", "c", " alpha\n", &format!("127.0.0.1 {closed}")),
        );
        let dp = Arc::new(FakeDataplane::new());
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(load(&text).config, dp.clone(), stop_rx, |_| {}));
        // Several rounds (50 ms apart) after the first.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let key = |vip: &str| crate::dataplane::ServiceKey::new(crate::dataplane::Proto::Tcp, vip.parse().unwrap(), 80);
        let rs_of = |vip: &str| {
            dp.service(&key(vip)).unwrap().real_servers.iter().map(|r| r.addr.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(rs_of("192.0.2.1"), ["10.0.9.9:80"], "the sorry server serves a");
        assert!(rs_of("192.0.2.3").is_empty(), "c: no server, no sorry server");
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let runs = |name: &str| std::fs::read_to_string(dir.join(name)).map(|t| t.lines().count()).unwrap_or(0);
        assert_eq!(made(&dir), ["a-quorum-down", "a-rs-down", "b-quorum-up", "c-rs-down"]);
        for f in made(&dir) {
            assert_eq!(runs(&f), 1, "{f} ran once");
        }
        let mut lines = String::new();
        let _ = std::io::Read::read_to_string(&mut reader, &mut lines);
        let mut lines: Vec<&str> = lines.lines().collect();
        assert_eq!(lines[..2], ["VS [192.0.2.1]:tcp:80 DOWN", "VS [192.0.2.2]:tcp:80 UP"], "at start, in order");
        lines[2..].sort();
        assert_eq!(
            lines[2..],
            [
                format!("RS [127.0.0.1]:tcp:{closed} [192.0.2.1]:tcp:80 DOWN"),
                format!("RS [127.0.0.1]:tcp:{closed} [192.0.2.3]:tcp:80 DOWN"),
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
        std::fs::remove_dir_all(fifo.parent().unwrap()).unwrap();
    }

    /// keepalived's `ha_suspend` through the agent: the checkers of a virtual server with
    /// it run only while rvsd holds one of its addresses for the agent (here
    /// `static_ipaddress`, as a VRRP instance's VIPs while MASTER). Every real server is
    /// on a port nothing listens on: a's (its VIP held) and c's (no ha_suspend) go down
    /// and out; b's (its VIP not held) and g's (a group, no member held) stay in, their
    /// checkers suspended; a reload that adds b's VIP and a member of g resumes theirs.
    #[tokio::test]
    async fn ha_suspend_checks_only_the_virtual_servers_whose_address_is_held() {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let vs = |target: &str, ha: bool| {
            format!(
                "virtual_server {target} {{\n lb_kind FNAT\n delay_loop 0.05\n warmup 0\n{}\
                 real_server 127.0.0.1 {closed} {{\n  TCP_CHECK {{\n   connect_timeout 0.2\n   retry 0\n  }}\n }}\n}}\n",
                if ha { " ha_suspend\n" } else { "" }
            )
        };
        let conf = |held: &[&str]| {
            let statics: String = held.iter().map(|a| format!(" {a}/32 dev dpdk0\n")).collect();
            format!(
                "static_ipaddress {{\n{statics}}}\nvirtual_server_group g {{\n 192.0.2.10 80\n 192.0.2.11 80\n}}\n{}{}{}{}",
                vs("192.0.2.1 80", true),
                vs("192.0.2.2 80", true),
                vs("192.0.2.3 80", false),
                vs("group g", true)
            )
        };
        let dp = Arc::new(FakeDataplane::new());
        let (stop, stop_rx) = watch::channel(false);
        let (reload_tx, reload_rx) = mpsc::unbounded_channel();
        let task =
            tokio::spawn(run_with_reload(load(&conf(&["192.0.2.1"])).config, dp.clone(), stop_rx, reload_rx, |_| {}));
        let key = |vip: &str| crate::dataplane::ServiceKey::new(crate::dataplane::Proto::Tcp, vip.parse().unwrap(), 80);
        let serving = |vip: &str| !dp.service(&key(vip)).unwrap().real_servers.is_empty();
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = |vips: [&str; 4]| vips.map(serving);
        assert_eq!(now(["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.10"]), [false, true, false, true]);
        reload_tx.send(load(&conf(&["192.0.2.1", "192.0.2.2", "192.0.2.11"]))).unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(now(["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.10"]), [false, false, false, false]);
        stop.send(true).unwrap();
        task.await.unwrap().unwrap();
    }

    /// keepalived's `lvs_flush_on_stop` (`clear_services` without `clear_service_rs`): at
    /// shutdown `omega` runs the quorum notifiers only, no real server's `notify_down`; a
    /// reload that adds it counts at the next shutdown.
    #[tokio::test]
    async fn with_lvs_flush_on_stop_omega_runs_the_quorum_notifiers_only() {
        let flush = "global_defs {\n lvs_flush_on_stop VS\n}\n";
        let dir = scratch("flush");
        run_and_stop(&format!("{flush}{}", conf(&dir, true, true)), &[]).await;
        assert_eq!(made(&dir), ["a-quorum-down", "a-quorum-up", "b-quorum-down", "b-quorum-up"]);
        std::fs::remove_dir_all(&dir).unwrap();
        let dir = scratch("flush-reload");
        run_and_stop(&conf(&dir, true, false), &[format!("{flush}{}", conf(&dir, true, false))]).await;
        assert_eq!(made(&dir), ["a-quorum-down", "a-quorum-up", "b-quorum-up"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A notifier still running a second after the shutdown started it is killed (its
    /// process group, as keepalived): the agent neither exits before its notifiers end
    /// nor hangs on one.
    #[tokio::test]
    async fn a_hung_omega_notifier_is_killed_after_a_second() {
        let dir = scratch("hung");
        let late = dir.join("late");
        let text = conf(&dir, true, false).replacen(
            &format!("/bin/touch {}", dir.join("a-quorum-down").display()),
            &format!("/bin/sh -c 'sleep 3; touch {}'", late.display()),
            1,
        );
        let took = run_and_stop(&text, &[]).await;
        assert!(took >= SHUTDOWN_SCRIPT_LIMIT && took < Duration::from_secs(3), "{took:?}");
        assert_eq!(
            made(&dir),
            ["a-quorum-up", "a-rs1-down", "a-rs2-down", "b-quorum-up"],
            "the others ran to their end (the quorum_up ones at start)"
        );
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!late.exists(), "the hung script's group was killed");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
