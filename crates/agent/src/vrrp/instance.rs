//! One running VRRP instance: the [`Fsm`] driven by a [`VrrpSocket`], tokio's clock and
//! tracked objects; its actions applied to the [`Dataplane`] and notify scripts.
//!
//! The instance's own interface is tracked, as keepalived does: while it is missing, down
//! or without an address the instance is in FAULT (holding nothing). rvsd's kernel twins
//! exist only while rvsd runs, so this is what happens when rvsd stops or restarts: the
//! socket is dropped, and opened again (on the new interface) once the twin is back and
//! has its address; the instance then starts over as backup.
//!
//! The instance that keepalived's `lvs_sync_daemon` names drives rvsd's connection-sync
//! roles as keepalived drives IPVS's sync daemons (keepalived 2.2's `vrrp_init_state`,
//! `vrrp_state_become_master`, `vrrp_state_leave_master`, `vrrp_terminate_phase1`): the
//! backup role at start; on becoming MASTER the backup role stopped and the master role
//! started; on leaving MASTER (for BACKUP or FAULT) the master role stopped and the backup
//! role started; BACKUP <-> FAULT changes nothing; on stopping, the role running is
//! stopped. See [`Dataplane::set_sync_roles`].
//!
//! A member of a `vrrp_sync_group` ([`Instance::join_group`]) runs its state machine in
//! group mode: it becomes MASTER only when its group says so, and follows the group's
//! commands (see [`super::sync`]); a fault of its own, whatever the cause (a weight-0
//! tracked object, its interface), puts the whole group in FAULT.

use super::fsm::{effective_priority, Action, Event, Fsm, FsmConfig, State};
use super::garp::{send_garps, GarpPacer};
use super::io::{interface_index, IoError, SocketConfig, VrrpSocket};
use super::packet::{auth_pass, check_hop_limit, Advert, AhSend, Auth, PacketError, Received, Version};
use super::sync::Membership;
use super::track::interface_up;
use crate::agent::fifo::Notifier;
use crate::dataplane::{Dataplane, SyncRoles};
use crate::keepalived::config::{GlobalDefs, InitialState, Script, VrrpInstance};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// What `rvs-agent status` shows for an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceStatus {
    /// Instance name.
    pub name: String,
    /// Current state.
    pub state: State,
    /// Effective priority.
    pub priority: u8,
    /// Current master's address, as last seen.
    pub master: Option<IpAddr>,
    /// This node's address in the group (the adverts' source).
    pub address: IpAddr,
    /// Where VRRP is spoken.
    pub interface: String,
    /// The virtual addresses (held while master).
    pub vips: Vec<IpNet>,
    /// Configured priority (`priority`), before tracked objects change it.
    #[serde(default)]
    pub base_priority: u8,
    /// What the instance counted since it started.
    #[serde(default)]
    pub counters: InstanceCounters,
}

/// What an instance counts since it started (carried across a reload that changes it,
/// as keepalived's; an instance removed and added again starts over).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceCounters {
    /// Adverts sent (one per advertisement, whatever the number of unicast peers).
    pub adverts_sent: u64,
    /// Adverts of this virtual router accepted.
    pub adverts_received: u64,
    /// Packets read and refused, by reason: [`PacketError::reason`]'s, or `version` (the
    /// other VRRP version), `auth` (wrong password), `interval` (v2 advert_int mismatch),
    /// `not_peer` (a source not among the unicast peers).
    pub adverts_dropped: BTreeMap<String, u64>,
    /// Adverts accepted whose address list differs from the instance's
    /// `virtual_ipaddress` (keepalived's `addr_list_err`: the routers' configurations
    /// differ); not counted under `skip_check_adv_addr` but from a new master.
    #[serde(default)]
    pub address_mismatch: u64,
    /// State changes, each pair once.
    pub transitions: Vec<StateChange>,
    /// `auth_type AH`: the sequence number last sent or accepted (keepalived's
    /// `ipsecah_counter`, one for both: an advert must carry a higher one, one sent carries
    /// the next); carried across a reload with the counters, as keepalived's
    /// `restore_vrrp_state` carries it.
    #[serde(default)]
    pub ah_seq: u32,
}

/// How many times an instance went from one state to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateChange {
    /// The state left (`Initialize` at start).
    pub from: State,
    /// The state entered.
    pub to: State,
    /// How many times.
    pub count: u64,
}

/// A tracked object feeding an instance: its weight and its signal.
pub struct Tracked {
    /// Name for the log.
    pub name: String,
    /// Weight (0: fault while down). For `weight N reverse`, pass `-N` with an inverted
    /// signal. A track_file's is its configured weight (its signal carries the change).
    pub weight: i32,
    /// Inverts the signal (keepalived's `reverse`).
    pub invert: bool,
    /// Current state.
    pub rx: TrackRx,
}

/// What a tracked object reports.
#[derive(Debug, Clone)]
pub enum TrackRx {
    /// Up (true) or down: `vrrp_script`, `track_interface`.
    UpDown(watch::Receiver<bool>),
    /// A `track_file`'s change of priority (its number x weight), or none: FAULT (see
    /// [`super::track::file_effect`]).
    File(watch::Receiver<Option<i32>>),
}

impl TrackRx {
    /// Waits for the next change; an error once the sender is gone.
    pub async fn changed(&mut self) -> Result<(), watch::error::RecvError> {
        match self {
            TrackRx::UpDown(rx) => rx.changed().await,
            TrackRx::File(rx) => rx.changed().await,
        }
    }
}

impl Tracked {
    /// Its current effect as [`effective_priority`] takes it: `(weight, up)`; a
    /// track_file's change d is `(d, d >= 0)`, its FAULT `(0, false)`.
    pub fn effect(&self) -> (i32, bool) {
        match &self.rx {
            TrackRx::UpDown(rx) => (self.weight, *rx.borrow() != self.invert),
            TrackRx::File(rx) => match *rx.borrow() {
                Some(d) => (d, d >= 0),
                None => (0, false),
            },
        }
    }
}

/// The state machine configuration of a vrrp_instance (`primary` is our source address).
pub fn fsm_config(i: &VrrpInstance, g: &GlobalDefs, primary: IpAddr) -> FsmConfig {
    let mut c = FsmConfig::new(i.version, i.priority, Duration::from_secs_f64(i.advert_int), primary);
    c.preempt = !i.nopreempt;
    c.preempt_delay = Duration::from_secs_f64(i.preempt_delay);
    c.start_as_master = i.state == InitialState::Master;
    c.higher_prio_send_advert = i.higher_prio_send_advert;
    if let Some(d) = i.garp_master_delay.or(g.vrrp_garp_master_delay) {
        c.garp_master_delay = Duration::from_secs(u64::from(d));
    }
    if let Some(r) = i.garp_master_repeat.or(g.vrrp_garp_master_repeat) {
        c.garp_master_repeat = r;
    }
    if let Some(r) = i.garp_master_refresh.or(g.vrrp_garp_master_refresh) {
        c.garp_master_refresh = Duration::from_secs(u64::from(r));
    }
    if let Some(r) = i.garp_master_refresh_repeat.or(g.vrrp_garp_master_refresh_repeat) {
        c.garp_refresh_repeat = r.max(1);
    }
    // keepalived: the lower-priority answer defaults to the global garp_master settings.
    if let Some(r) = i.garp_lower_prio_repeat.or(g.vrrp_garp_lower_prio_repeat).or(g.vrrp_garp_master_repeat) {
        c.garp_lower_prio_repeat = r;
    }
    if let Some(d) = i.garp_lower_prio_delay.or(g.vrrp_garp_lower_prio_delay).or(g.vrrp_garp_master_delay) {
        c.garp_lower_prio_delay = Duration::from_secs(u64::from(d));
    }
    c.lower_prio_no_advert = i.lower_prio_no_advert;
    c.down_timer_adverts = i.down_timer_adverts;
    c
}

/// How often the instance's own interface is looked at.
const LINK_CHECK: Duration = Duration::from_millis(250);

/// keepalived 2.2.7's advert address check (`vrrp_check_packet`): whether `theirs` (an
/// advert's addresses from `src`) differs from `ours` and the difference is to be logged
/// now, and the sender to remember, and whether the advert differs (counted). Logged
/// once per sender until one of its adverts matches again (keepalived rate-limits the
/// message); `skip` (keepalived's `skip_check_adv_addr` for an advert from the known
/// master) compares nothing.
pub fn address_mismatch(
    last: Option<IpAddr>,
    skip: bool,
    src: IpAddr,
    ours: &[IpAddr],
    theirs: &[IpAddr],
) -> (Option<IpAddr>, bool, bool) {
    if skip {
        return (last, false, false);
    }
    let same = theirs.len() == ours.len() && ours.iter().all(|a| theirs.contains(a));
    match (same, last == Some(src)) {
        (true, true) => (None, false, false),
        (true, false) => (last, false, false),
        (false, true) => (last, false, true),
        (false, false) => (Some(src), true, true),
    }
}

/// How an instance leaves ([`Instance::run`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leave {
    /// rvs-agent stops (keepalived's `notify_shutdown`): a master sends priority 0 and
    /// releases its VIPs; `notify_stop`, `STOP` lines.
    Stop,
    /// A reload removed it (keepalived's `clear_diff_vrrp`): released as on stop, then
    /// `DELETED` with `notify_deleted`, else `FAULT` (keepalived's older word) unless it
    /// was in FAULT.
    Removed,
    /// A reload changed it and its successor takes over in its state
    /// ([`Instance::resume`]): nothing is released, nothing notified.
    Handover,
}

/// A running instance.
pub struct Instance {
    cfg: VrrpInstance,
    global: GlobalDefs,
    fsm: Fsm,
    sock_cfg: SocketConfig,
    /// The socket and the interface index it was opened on; none while the interface is
    /// unusable (FAULT).
    sock: Option<(VrrpSocket, u32)>,
    /// Why the socket could not be opened, last time (logged when it changes).
    open_error: Option<String>,
    /// The sender whose advert's address list differed from ours, logged once until one
    /// of its adverts matches again (keepalived's rate-limited VIPS_MISMATCH).
    addr_mismatch: std::cell::Cell<Option<IpAddr>>,
    /// Unicast peers whose adverts were seen with a TTL below 255 (warned once each).
    routed_peers: std::cell::RefCell<Vec<IpAddr>>,
    dp: Arc<dyn Dataplane>,
    epoch: Instant,
    tracked: Vec<Tracked>,
    status: watch::Sender<InstanceStatus>,
    /// keepalived's notify FIFOs (a line per state change).
    fifos: Arc<Notifier>,
    /// The state last entered (notified), for the transitions counted.
    entered: State,
    /// The state last mailed (keepalived's `last_email_state`).
    mailed: Option<State>,
    /// The state of the instance this one replaces at a reload ([`Instance::resume`]),
    /// until its first state is entered.
    resumed: Option<State>,
    /// A resumed master announces its addresses ([`Instance::resume`]).
    announce: bool,
    /// The state a resumed instance starts in (its own, or its group's decision).
    start_as: Option<State>,
    /// Resumed in a sync group in FAULT: it starts held in FAULT by the group.
    group_fault_at_start: bool,
    /// The sync id when `lvs_sync_daemon` names this instance: its state then selects
    /// rvsd's connection-sync roles.
    sync_id: Option<u8>,
    /// The connection-sync roles last asked for.
    sync_roles: Option<SyncRoles>,
    /// keepalived's `vrrp_startup_delay`: when the agent's startup delay ends (no MASTER
    /// before; see [`Instance::hold_until`]).
    hold: Option<Instant>,
    /// Its `vrrp_sync_group`, when it is a member of one.
    group: Option<Membership>,
    /// The pacing of gratuitous ARPs and NAs, shared with the instances started with it.
    garp_pacer: Arc<GarpPacer>,
    /// The spaced bursts under way: aborted when the instance leaves MASTER or stops.
    garp_tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn open(c: &SocketConfig) -> Result<(VrrpSocket, u32), IoError> {
    let index = interface_index(&c.interface)?;
    Ok((VrrpSocket::open(c)?, index))
}

impl Instance {
    /// Opens the socket on the instance's interface. Must run inside a tokio runtime. An
    /// interface that is missing or has no address is not an error: the instance waits in
    /// FAULT for it (rvsd's twin appears when rvsd starts); no permission for raw sockets
    /// is.
    pub fn new(
        cfg: VrrpInstance,
        global: &GlobalDefs,
        dp: Arc<dyn Dataplane>,
        tracked: Vec<Tracked>,
        fifos: Arc<Notifier>,
        garp_pacer: Arc<GarpPacer>,
    ) -> Result<(Instance, watch::Receiver<InstanceStatus>), IoError> {
        let sock_cfg = SocketConfig {
            interface: cfg.interface.clone(),
            ipv6: cfg.is_ipv6(),
            src: cfg.unicast_src_ip,
            unicast_peers: cfg.unicast_peers.clone(),
            mcast4: match cfg.mcast_group(global) {
                IpAddr::V4(g) => g,
                IpAddr::V6(_) => global.vrrp_mcast_group4,
            },
            mcast6: match cfg.mcast_group(global) {
                IpAddr::V6(g) => g,
                IpAddr::V4(_) => global.vrrp_mcast_group6,
            },
            unicast_ttl: cfg.unicast_ttl,
            unicast_only: cfg.unicast_fault_no_peer && cfg.unicast_block,
            ah: cfg.auth() == Auth::Ah,
        };
        let mut open_error = None;
        let sock = match open(&sock_cfg) {
            Ok(s) => Some(s),
            Err(e) if e.is_permanent() => return Err(e),
            Err(e) => {
                tracing::warn!(instance = %cfg.name, interface = %cfg.interface, "{e}: FAULT until the interface is usable");
                open_error = Some(e.to_string());
                None
            }
        };
        let unspecified =
            if sock_cfg.ipv6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
        let primary = sock.as_ref().map(|(s, _)| s.src()).or(cfg.unicast_src_ip).unwrap_or(unspecified);
        let fsm = Fsm::new(fsm_config(&cfg, global, primary));
        let (status, rx) = watch::channel(InstanceStatus {
            name: cfg.name.clone(),
            state: State::Initialize,
            priority: cfg.priority,
            master: None,
            address: primary,
            interface: cfg.interface.clone(),
            vips: cfg.virtual_ipaddress.iter().chain(&cfg.virtual_ipaddress_excluded).map(|v| v.addr).collect(),
            base_priority: cfg.priority,
            counters: InstanceCounters::default(),
        });
        let sync_id = global
            .lvs_sync_daemon
            .as_ref()
            .filter(|d| d.instance.as_deref() == Some(cfg.name.as_str()))
            .map(|d| d.syncid);
        let inst = Instance {
            cfg,
            global: global.clone(),
            fsm,
            sock_cfg,
            sock,
            open_error,
            addr_mismatch: std::cell::Cell::new(None),
            routed_peers: std::cell::RefCell::new(Vec::new()),
            dp,
            epoch: Instant::now(),
            tracked,
            status,
            fifos,
            entered: State::Initialize,
            mailed: None,
            resumed: None,
            announce: false,
            start_as: None,
            group_fault_at_start: false,
            sync_id,
            sync_roles: None,
            hold: None,
            group: None,
            garp_pacer,
            garp_tasks: Vec::new(),
        };
        Ok((inst, rx))
    }

    /// Makes the instance a member of a `vrrp_sync_group` (keepalived's `vrrp_sync_master`
    /// and `vrrp_sync_backup`): its state machine runs in group mode (it asks the group
    /// before becoming MASTER), it follows the group's commands, and it reports its states
    /// to the group. Call before [`Instance::run`].
    pub fn join_group(&mut self, m: Membership) {
        self.group = Some(m);
        let primary = self.status.borrow().address;
        self.fsm = self.new_fsm(primary);
        self.apply_hold();
    }

    /// A state machine for this instance with `primary` as its address (in group mode
    /// when the instance is a sync group member).
    fn new_fsm(&self, primary: IpAddr) -> Fsm {
        let mut c = fsm_config(&self.cfg, &self.global, primary);
        c.sync_group = self.group.is_some();
        Fsm::new(c)
    }

    /// keepalived's `restore_vrrp_state`: this instance replaces one a reload changed
    /// (same VRID, interface and family), whose last status was `was`. A master stays
    /// master (its VIPs stay in the dataplane, its advert goes out at once), entering the
    /// state it was in notifies nothing (no failover, no scripts, for a reload), and the
    /// counters carry on.
    /// `announce`: addresses were added, so a master sends its gratuitous ARPs (for all,
    /// as keepalived); otherwise it sends none. `group`: its sync group's resumed state,
    /// which decides, as keepalived's `vrrp_init_state` takes the group's: a master whose
    /// group is not MASTER goes BACKUP (its VIPs released, BACKUP notified), and every
    /// member of a FAULT group starts in FAULT.
    pub fn resume(&mut self, was: &InstanceStatus, announce: bool, group: Option<State>) {
        self.resumed = Some(was.state);
        self.announce = announce;
        self.start_as = Some(match (was.state, group) {
            (State::Master, Some(g)) if g != State::Master => State::Backup,
            (s, _) => s,
        });
        self.group_fault_at_start = group == Some(State::Fault);
        self.status.send_modify(|s| s.counters = was.counters.clone());
    }

    /// keepalived's `vrrp_startup_delay`: the instance does not become MASTER before `t`
    /// (the agent's start plus the delay), as keepalived's instances wait for
    /// `vrrp_delayed_start_time`: it starts as BACKUP, listening (an address owner or
    /// `state MASTER` too, holding nothing), and its Master_Down_Timer runs from `t` while
    /// `t` is ahead (see [`Fsm::hold_until`]). A `t` already past changes nothing. Call
    /// before [`Instance::run`].
    pub fn hold_until(&mut self, t: Instant) {
        self.hold = Some(t);
        self.apply_hold();
    }

    /// Gives the state machine the startup delay's end on its clock.
    fn apply_hold(&mut self) {
        if let Some(t) = self.hold {
            self.fsm.hold_until(t.saturating_duration_since(self.epoch));
        }
    }

    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    /// With `lvs_sync_daemon` naming this instance: asks the dataplane for the
    /// connection-sync roles of `master` (`Some(true)`: master, `Some(false)`: backup,
    /// `None`: both stopped) when they differ from the last asked for. `event` is for
    /// messages.
    fn sync_roles(&mut self, master: Option<bool>, event: &str) {
        let Some(syncid) = self.sync_id else { return };
        let roles = match master {
            Some(m) => SyncRoles::for_master(m, syncid),
            None => SyncRoles::stopped(syncid),
        };
        if self.sync_roles == Some(roles) {
            return;
        }
        self.sync_roles = Some(roles);
        let why = format!("lvs_sync_daemon (vrrp_instance {} {event})", self.cfg.name);
        if let Err(e) = self.dp.set_sync_roles(roles, &why) {
            tracing::error!(instance = %self.cfg.name, "{why}: {e}");
        }
    }

    /// Updates the counters in the status, without waking its watchers.
    fn count(&self, f: impl FnOnce(&mut InstanceCounters)) {
        self.status.send_if_modified(|s| {
            f(&mut s.counters);
            false
        });
    }

    /// Counts a packet dropped for `reason`.
    fn dropped(&self, reason: &str) {
        self.count(|c| *c.adverts_dropped.entry(reason.to_string()).or_default() += 1);
    }

    /// Runs until `leave` says how to leave (a dropped sender: [`Leave::Stop`]).
    pub async fn run(mut self, mut leave: watch::Receiver<Option<Leave>>) {
        let (changed_tx, mut changed_rx) = mpsc::channel::<()>(16);
        let forwarders: Vec<_> = self
            .tracked
            .iter()
            .map(|t| {
                let mut rx = t.rx.clone();
                let tx = changed_tx.clone();
                tokio::spawn(async move {
                    while rx.changed().await.is_ok() {
                        if tx.send(()).await.is_err() {
                            break;
                        }
                    }
                })
            })
            .collect();
        drop(changed_tx);
        self.retrack();
        let resumed_master = self.start_as == Some(State::Master);
        if self.group_fault_at_start {
            self.fsm.handle(self.now(), Event::GroupFault(true));
        }
        if let Some(s) = self.start_as {
            self.fsm.resume(s, self.announce);
        }
        let backup = self.cfg.priority != 255 && self.cfg.state != InitialState::Master;
        if !resumed_master && (self.resumed.is_some() || backup || self.fsm.held(self.now())) {
            // As keepalived: a node starting as backup holds nothing, whatever an earlier
            // run (killed before it could leave) left in the dataplane. An owner or `state
            // MASTER` held back by vrrp_startup_delay starts as backup too, and so does a
            // master resumed as BACKUP by its group.
            self.exec(vec![Action::RemoveVips]).await;
        }
        // As keepalived's vrrp_init_state: the backup sync role first, whatever the state
        // (one becoming MASTER at once switches to the master role as it enters it).
        // (A master resumed at a reload keeps the master role.)
        self.sync_roles(Some(resumed_master), "starting");
        let acts = self.fsm.handle(self.now(), Event::Startup);
        self.exec(acts).await;
        if resumed_master && self.fsm.state() != State::Master {
            // Resumed in FAULT: the VIPs its predecessor held go.
            self.exec(vec![Action::RemoveVips]).await;
        }
        let mut link = tokio::time::interval(LINK_CHECK);
        link.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deadline = self.fsm.next_deadline().map(|d| self.epoch + d);
            tokio::select! {
                r = leave.changed() => {
                    if r.is_err() || leave.borrow().is_some() {
                        break;
                    }
                }
                _ = link.tick() => self.check_link().await,
                r = recv(&self.sock) => match r {
                    Ok(Ok(rx)) => {
                        if let Some(ev) = self.accept(&rx) {
                            let acts = self.fsm.handle(self.now(), ev);
                            self.exec(acts).await;
                        }
                    }
                    Ok(Err(e)) => {
                        self.dropped(PacketError::reason(&e));
                        tracing::debug!(instance = %self.cfg.name, "dropped packet: {e}");
                    }
                    Err(e) => {
                        tracing::warn!(instance = %self.cfg.name, "receive: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                _ = sleep_until(deadline) => {
                    let acts = self.fsm.handle(self.now(), Event::Tick);
                    self.exec(acts).await;
                }
                Some(()) = changed_rx.recv() => {
                    let acts = self.retrack();
                    self.exec(acts).await;
                }
                cmd = group_recv(&mut self.group) => {
                    tracing::debug!(instance = %self.cfg.name, ?cmd, "sync group command");
                    let acts = self.fsm.handle(self.now(), cmd.event());
                    self.exec(acts).await;
                }
            }
        }
        let how = leave.borrow().unwrap_or(Leave::Stop);
        let was = self.fsm.state();
        if how != Leave::Handover {
            // As keepalived's vrrp_terminate_phase1: the sync role running stops first.
            self.sync_roles(None, "stopping");
            let acts = self.fsm.handle(self.now(), Event::Shutdown);
            self.exec(acts).await;
        }
        match how {
            Leave::Stop => {
                // As keepalived's notify_shutdown: notify_stop, `notify ... STOP`, the FIFO line.
                tracing::info!(instance = %self.cfg.name, "stopping");
                self.notify(State::Initialize);
            }
            Leave::Removed => {
                tracing::info!(instance = %self.cfg.name, "removed by the reload (or made another router)");
                self.removed(was);
            }
            Leave::Handover => {
                tracing::info!(instance = %self.cfg.name, state = ?was, "changed by the reload: handing over");
                if was == State::Master {
                    // keepalived's send_reload_advert: the backups hear the master just
                    // before the reload, so its successor has a whole Master_Down_Interval.
                    self.exec(vec![Action::SendAdvert { priority: self.fsm.priority() }]).await;
                }
            }
        }
        self.stop_garps();
        for f in forwarders {
            f.abort();
        }
    }

    /// Follows the instance's own interface: drops the socket when the interface goes
    /// away or down (FAULT), opens it again when it is back (BACKUP, as at start).
    async fn check_link(&mut self) {
        let iface = &self.cfg.interface;
        let index = if interface_up(iface) { interface_index(iface).ok() } else { None };
        match (&self.sock, index) {
            (Some((_, have)), Some(now)) if *have == now => {}
            (Some(_), _) => {
                tracing::warn!(instance = %self.cfg.name, interface = %iface, "interface gone or down: FAULT");
                self.sock = None;
                let acts = self.retrack();
                self.exec(acts).await;
            }
            (None, Some(_)) => match open(&self.sock_cfg) {
                Ok(sock) => {
                    let src = sock.0.src();
                    tracing::info!(instance = %self.cfg.name, interface = %iface, %src, "interface usable again");
                    self.sock = Some(sock);
                    self.open_error = None;
                    if src != self.status.borrow().address {
                        // A new primary address: start over with it (still held in FAULT
                        // by its sync group if it was).
                        let held = self.fsm.group_fault();
                        self.fsm = self.new_fsm(src);
                        self.apply_hold();
                        if held {
                            self.fsm.handle(self.now(), Event::GroupFault(true));
                        }
                        self.status.send_modify(|s| s.address = src);
                        let acts = self.retrack();
                        self.exec(acts).await;
                        let acts = self.fsm.handle(self.now(), Event::Startup);
                        self.exec(acts).await;
                    } else {
                        let acts = self.retrack();
                        self.exec(acts).await;
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    if self.open_error.as_deref() != Some(msg.as_str()) {
                        tracing::warn!(instance = %self.cfg.name, interface = %iface, "{msg}: still FAULT");
                        self.open_error = Some(msg);
                    }
                }
            },
            (None, None) => {}
        }
    }

    /// Recomputes priority and fault from the tracked objects and the interface.
    fn retrack(&mut self) -> Vec<Action> {
        let list: Vec<(i32, bool)> = self.tracked.iter().map(Tracked::effect).collect();
        let (prio, fault) = effective_priority(self.cfg.priority, &list);
        let fault = fault || self.sock.is_none();
        let now = self.now();
        let mut acts = Vec::new();
        if prio != self.fsm.priority() {
            tracing::info!(instance = %self.cfg.name, prio, "effective priority changed");
            let master = self.fsm.state() == State::Master;
            acts.extend(self.fsm.handle(now, Event::Priority(prio)));
            // keepalived's notify_priority_changes (send_instance_priority_notifies, in the
            // state the change found).
            if self.cfg.notify.priority_changes == Some(true) {
                let word = if master { "MASTER_PRIORITY" } else { "BACKUP_PRIORITY" };
                self.fifo_line(word, prio);
            }
        }
        acts.extend(self.fsm.handle(now, Event::Fault(fault)));
        acts
    }

    /// Turns a received advert into an event, or drops it (RFC 3768 / 5798 section 7.1).
    fn accept(&self, rx: &Received) -> Option<Event> {
        let a = &rx.advert;
        if Some(rx.src) == self.sock.as_ref().map(|(s, _)| s.src()) || a.vrid != self.cfg.vrid {
            return None;
        }
        let name = &self.cfg.name;
        if a.version != self.cfg.version {
            self.dropped("version");
            tracing::debug!(instance = %name, src = %rx.src, "advert of another VRRP version dropped");
            return None;
        }
        // TTL / hop limit first, as keepalived's vrrp_check_packet (an advert from off
        // the link moves no AH sequence number). TTL / hop limit: 255 for multicast (RFC 3768 / 5798 7.1); a unicast peer's
        // adverts may have been routed: its min_ttl/max_ttl, if any (keepalived's
        // vrrp_check_packet).
        let ttl_ok = if self.cfg.unicast_peers.is_empty() {
            check_hop_limit(rx.ttl).is_ok()
        } else {
            let range = self.cfg.unicast_peer_ttl.iter().find(|(p, _, _)| *p == rx.src);
            if range.is_none() && rx.ttl != 255 && !self.routed_peers.borrow().contains(&rx.src) {
                self.routed_peers.borrow_mut().push(rx.src);
                tracing::warn!(
                    instance = %name,
                    src = %rx.src,
                    ttl = rx.ttl,
                    "unicast advert with a TTL below 255 (routed, or the peer's unicast_ttl) accepted, as keepalived; \
                     give the peer `min_ttl 255` to refuse adverts from off the link"
                );
            }
            range.is_none_or(|&(_, min, max)| (min..=max).contains(&rx.ttl))
        };
        if !ttl_ok {
            self.dropped("ttl");
            tracing::debug!(instance = %name, src = %rx.src, ttl = rx.ttl, "advert with a TTL out of range dropped");
            return None;
        }
        if a.version == Version::V2 {
            if a.auth != self.cfg.auth() {
                self.dropped("auth");
                tracing::warn!(instance = %name, src = %rx.src, "advert with wrong authentication dropped");
                return None;
            }
            if a.auth == Auth::Ah {
                // keepalived's vrrp_in_chk_ipsecah: the ICV, the SPI (the sender's address),
                // then a sequence number above the last one (no replays).
                let key = auth_pass(self.cfg.auth_pass.as_deref().unwrap_or_default());
                let unicast = !self.cfg.unicast_peers.is_empty();
                let seen = self.status.borrow().counters.ah_seq;
                let verdict = match &rx.ah {
                    None => Err("AH: no AH header"),
                    Some(ah) if !ah.verify(&key, unicast) => {
                        Err("AH: invalid HMAC-MD5 (wrong password, or fields changed on the way)")
                    }
                    Some(ah) if IpAddr::from(ah.spi) != rx.src => Err("AH: the SPI is not the sender's address"),
                    Some(ah) if ah.seq <= seen => Err("AH: sequence number already seen (a replay)"),
                    Some(ah) => Ok(ah.seq),
                };
                match verdict {
                    Ok(seq) => self.count(|c| c.ah_seq = seq),
                    Err(why) => {
                        self.dropped("auth");
                        tracing::warn!(instance = %name, src = %rx.src, "advert dropped: {why}");
                        return None;
                    }
                }
            }
            if u64::from(a.interval_cs) * 10 != (self.cfg.advert_int * 1000.0).round() as u64 {
                self.dropped("interval");
                tracing::warn!(instance = %name, src = %rx.src, interval_cs = a.interval_cs, "advert interval mismatch: dropped");
                return None;
            }
        }
        if !self.cfg.unicast_peers.is_empty() && !self.cfg.unicast_peers.contains(&rx.src) {
            self.dropped("not_peer");
            tracing::debug!(instance = %name, src = %rx.src, "advert from a non-peer dropped");
            return None;
        }
        self.check_addresses(rx);
        self.count(|c| c.adverts_received += 1);
        Some(Event::Advert { src: rx.src, priority: a.priority, interval_cs: a.interval_cs })
    }

    /// keepalived 2.2.7's `vrrp_check_packet`: an advert whose address count or list
    /// differs from this instance's `virtual_ipaddress` is a configuration mismatch between
    /// the routers: logged (see [`address_mismatch`]), not dropped.
    fn check_addresses(&self, rx: &Received) {
        let ours: Vec<IpAddr> = self.cfg.virtual_ipaddress.iter().map(|v| v.addr.addr()).collect();
        let from_new_master = self.fsm.master() != Some(rx.src);
        let (last, log, differs) = address_mismatch(
            self.addr_mismatch.get(),
            self.cfg.skip_check_adv_addr && !from_new_master,
            rx.src,
            &ours,
            &rx.advert.addresses,
        );
        self.addr_mismatch.set(last);
        if differs {
            self.count(|c| c.address_mismatch += 1);
        }
        if log {
            tracing::warn!(
                instance = %self.cfg.name,
                src = %rx.src,
                ours = ?ours,
                theirs = ?rx.advert.addresses,
                "advert's addresses differ from this instance's virtual_ipaddress: the routers' configurations \
                 differ (accepted, as keepalived; skip_check_adv_addr compares only a new master's)"
            );
        }
    }

    fn advert(&self, priority: u8) -> Advert {
        Advert {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            interval_cs: (self.cfg.advert_int * 100.0).round() as u16,
            addresses: self.cfg.virtual_ipaddress.iter().map(|v| v.addr.addr()).collect(),
            auth: self.cfg.auth(),
        }
    }

    /// Tells the sync group (if any) whether the state machine wants MASTER now and has a
    /// fault of its own (which puts the whole group in FAULT).
    fn report_wants(&self) {
        if let Some(g) = &self.group {
            g.report(self.fsm.wants_master(), self.fsm.own_fault());
        }
    }

    async fn exec(&mut self, acts: Vec<Action>) {
        // The group first hears what the event changed (an accepted master's advert ends
        // wanting MASTER), before anything here waits.
        self.report_wants();
        let name = self.cfg.name.clone();
        let vips = self.cfg.vips();
        let mut acts: VecDeque<Action> = acts.into();
        while let Some(a) = acts.pop_front() {
            match a {
                Action::SendAdvert { priority } => {
                    let Some((sock, _)) = &self.sock else { continue };
                    let advert = self.advert(priority);
                    let ah = (advert.auth == Auth::Ah).then(|| {
                        let seq = self.status.borrow().counters.ah_seq.saturating_add(1);
                        self.count(|c| c.ah_seq = seq);
                        AhSend {
                            key: auth_pass(self.cfg.auth_pass.as_deref().unwrap_or_default()),
                            seq,
                            unicast: !self.cfg.unicast_peers.is_empty(),
                        }
                    });
                    match sock.send(&advert, self.cfg.checksum, ah).await {
                        Ok(()) => self.count(|c| c.adverts_sent += 1),
                        Err(e) => tracing::warn!(instance = %name, "send advert: {e}"),
                    }
                }
                Action::AddVips => {
                    for (addr, port) in &vips {
                        if let Err(e) = self.dp.add_vip(*addr, port) {
                            tracing::error!(instance = %name, %addr, "add VIP: {e}");
                        }
                    }
                    // virtual_routes follow the VIPs (after them: a route may use one as src).
                    for r in &self.cfg.virtual_routes {
                        if let Err(e) = self.dp.add_route(&r.spec()) {
                            tracing::error!(instance = %name, prefix = %r.prefix, "add virtual route: {e}");
                        }
                    }
                }
                Action::RemoveVips => {
                    // Leaving MASTER (or stopping): no more gratuitous ARPs for them.
                    self.stop_garps();
                    for r in &self.cfg.virtual_routes {
                        if let Err(e) = self.dp.del_route(&r.spec()) {
                            tracing::error!(instance = %name, prefix = %r.prefix, "remove virtual route: {e}");
                        }
                    }
                    for (addr, port) in &vips {
                        if let Err(e) = self.dp.del_vip(*addr, port) {
                            tracing::error!(instance = %name, %addr, "remove VIP: {e}");
                        }
                    }
                }
                Action::SendGarp { repeat } => {
                    let vips: Vec<_> = vips.iter().map(|(a, p)| (a.addr(), p.clone())).collect();
                    // A new burst supersedes what is left of the last (a refresh that comes
                    // round faster than a paced burst takes does not pile them up).
                    self.garp_tasks.drain(..).for_each(|t| t.abort());
                    self.garp_tasks.extend(send_garps(&self.dp, &name, &vips, repeat, &self.garp_pacer));
                }
                Action::LowerPriorityHeard { src, priority } => {
                    tracing::info!(
                        instance = %name,
                        %src,
                        priority,
                        ours = self.fsm.priority(),
                        "advert with a lower priority: forcing a new election (advert and gratuitous ARPs)"
                    );
                    // keepalived's send_event_notify (VRRP_EVENT_MASTER_RX_LOWER_PRI):
                    // the script, and the FIFO line whether or not there is one.
                    if let Some(cmd) = self.cfg.notify.master_rx_lower_pri.clone() {
                        crate::script::spawn(cmd);
                    }
                    self.fifo_line("MASTER_RX_LOWER_PRI", self.fsm.priority());
                }
                Action::WantMaster => {
                    // keepalived's vrrp_sync_can_goto_master: MASTER only with the group.
                    if self.group.as_ref().is_some_and(Membership::want_master) {
                        tracing::info!(instance = %name, "sync group: MASTER together");
                        acts.extend(self.fsm.handle(self.now(), Event::GoMaster));
                    } else {
                        tracing::debug!(instance = %name, "sync group: not every member wants MASTER: staying BACKUP");
                    }
                }
                Action::Notify(state) if self.resumed.take() == Some(state) => {
                    self.entered = state;
                    tracing::info!(instance = %name, ?state, "kept its state across the reload");
                }
                Action::Notify(state) => {
                    let from = std::mem::replace(&mut self.entered, state);
                    self.count(|c| match c.transitions.iter_mut().find(|t| (t.from, t.to) == (from, state)) {
                        Some(t) => t.count += 1,
                        None => c.transitions.push(StateChange { from, to: state, count: 1 }),
                    });
                    tracing::info!(instance = %name, ?state, priority = self.fsm.priority(), "entering state");
                    self.notify(state);
                    // keepalived's ipvs_syncd_master on becoming MASTER, ipvs_syncd_backup on
                    // leaving it (BACKUP or FAULT); nothing between BACKUP and FAULT.
                    match state {
                        State::Master => self.sync_roles(Some(true), "MASTER"),
                        State::Backup => self.sync_roles(Some(false), "BACKUP"),
                        State::Fault => self.sync_roles(Some(false), "FAULT"),
                        State::Initialize => {}
                    }
                }
            }
        }
        self.report_wants();
        let (state, priority, master) = (self.fsm.state(), self.fsm.priority(), self.fsm.master());
        self.status.send_if_modified(|s| {
            let changed = (s.state, s.priority, s.master) != (state, priority, master);
            (s.state, s.priority, s.master) = (state, priority, master);
            changed
        });
    }

    /// Aborts the spaced gratuitous ARP bursts under way (the instance left MASTER).
    fn stop_garps(&mut self) {
        for t in self.garp_tasks.drain(..) {
            t.abort();
        }
    }

    /// The state's script, the generic `notify` (`INSTANCE NAME WORD PRIORITY`) and the
    /// FIFO line (keepalived's `send_instance_notifies` but the mail).
    fn run_notifies(&self, specific: Option<Script>, word: &str) {
        let args = format!("INSTANCE {} {word} {}", self.cfg.name, self.fsm.priority());
        let generic = self.cfg.notify.any.as_ref().map(|s| s.with_args(&args));
        specific.into_iter().chain(generic).for_each(crate::script::spawn);
        self.fifo_line(word, self.fsm.priority());
    }

    /// keepalived's `clear_diff_vrrp` for an instance a reload removed, which was in
    /// `was`: `DELETED` with `notify_deleted` (its script, the generic one, the FIFO line,
    /// the `Deleted` mail), else keepalived's older `FAULT` (the generic script, the FIFO
    /// line, the mail; not `notify_fault`) unless it was in FAULT already. Not its sync
    /// group's business (the group is going too).
    fn removed(&mut self, was: State) {
        if self.cfg.notify.notify_deleted {
            self.run_notifies(self.cfg.notify.deleted.clone(), "DELETED");
            self.fifos.mail.send_deleted(&self.cfg.name);
        } else if was != State::Fault {
            // keepalived picks the script while the state still says DELETED (none), then
            // reports FAULT.
            self.run_notifies(None, "FAULT");
            self.fifos.mail.send_vrrp(false, &self.cfg.name, State::Fault, &mut self.mailed);
        }
    }

    /// keepalived's notify FIFO line for this instance: `INSTANCE "NAME" WORD PRIORITY`.
    fn fifo_line(&self, word: &str, priority: u8) {
        self.fifos.vrrp(&format!("INSTANCE \"{}\" {word} {priority}\n", self.cfg.name));
    }

    fn notify(&mut self, state: State) {
        let n = &self.cfg.notify;
        let (specific, word) = match state {
            State::Master => (n.master.clone(), "MASTER"),
            State::Backup => (n.backup.clone(), "BACKUP"),
            State::Fault => (n.fault.clone(), "FAULT"),
            State::Initialize => (n.stop.clone(), "STOP"),
        };
        self.run_notifies(specific, word);
        self.fifos.mail.send_vrrp(false, &self.cfg.name, state, &mut self.mailed);
        // Then the group's (keepalived: a member's notifies, then its group's).
        if let Some(g) = &self.group {
            g.entered(state);
        }
    }
}

async fn recv(sock: &Option<(VrrpSocket, u32)>) -> Result<Result<Received, super::packet::PacketError>, IoError> {
    match sock {
        Some((s, _)) => s.recv().await,
        None => std::future::pending().await,
    }
}

/// The sync group's next command; never, for an instance in no group.
async fn group_recv(group: &mut Option<Membership>) -> super::sync::Command {
    match group {
        Some(g) => g.recv().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// keepalived's advert address check: a differing list (count or members, in any
    /// order) is logged once per sender until it matches again; `skip` compares nothing.
    #[test]
    fn an_adverts_differing_addresses_are_logged_once_per_sender() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let (a, b) = (ip("10.0.0.1"), ip("10.0.0.2"));
        let ours = [ip("192.0.2.1"), ip("192.0.2.2")];
        let same = [ip("192.0.2.2"), ip("192.0.2.1")];
        let other = [ip("192.0.2.1"), ip("192.0.2.9")];
        assert_eq!(address_mismatch(None, false, a, &ours, &same), (None, false, false), "same set, other order");
        assert_eq!(address_mismatch(None, false, a, &ours, &other), (Some(a), true, true), "logged");
        assert_eq!(
            address_mismatch(Some(a), false, a, &ours, &other),
            (Some(a), false, true),
            "once, counted each time"
        );
        assert_eq!(address_mismatch(Some(a), false, a, &ours, &ours[..1]), (Some(a), false, true), "a count differing");
        assert_eq!(address_mismatch(Some(a), false, b, &ours, &other), (Some(b), true, true), "another sender");
        assert_eq!(address_mismatch(Some(a), false, a, &ours, &same), (None, false, false), "matches again");
        assert_eq!(address_mismatch(None, true, a, &ours, &other), (None, false, false), "skip_check_adv_addr");
    }
}
