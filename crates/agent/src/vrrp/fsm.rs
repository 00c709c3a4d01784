//! The VRRP state machine (RFC 3768 section 6.4, RFC 5798 / RFC 9568 section 6.4) as a pure
//! function of events and a clock the caller supplies.
//!
//! [`Fsm::handle`] takes `now` (any monotonic [`Duration`] since an epoch the caller chooses)
//! and an [`Event`], and returns [`Action`]s; [`Fsm::next_deadline`] says when to call it
//! again with [`Event::Tick`]. No I/O, no real time: tests drive it on a simulated clock.
//!
//! Beyond the RFCs it has keepalived's knobs: an initial `state MASTER` hint, `nopreempt`,
//! `preempt_delay`, a fault state (a tracked interface or script with weight 0 failing) and
//! gratuitous ARP scheduling (`garp_master_delay`, `garp_master_repeat`,
//! `garp_master_refresh`, `garp_master_refresh_repeat`), and keepalived's answer to a
//! lower-priority advert while master (`lower_prio_no_advert`, `garp_lower_prio_repeat`,
//! `garp_lower_prio_delay`): an advert at once, forcing the other router back to backup,
//! and gratuitous ARPs, so that hosts and switches that followed the other router (a
//! healed split brain) learn this one again.
//!
//! A member of a `vrrp_sync_group` ([`FsmConfig::sync_group`]) never becomes master on
//! its own, as keepalived 2.2.7's `vrrp_sync_can_goto_master`: when its Master_Down_Timer
//! (or preemption) runs out it emits [`Action::WantMaster`], stays backup and re-arms its
//! timer; the caller asks the group whether every other member wants master too and, if
//! so, sends [`Event::GoMaster`] to every member. [`Event::GoBackup`] makes a master
//! member leave MASTER because another member did (keepalived's `vrrp_sync_backup`).
//! [`Event::GroupFault`] puts a member in FAULT because another member has a fault
//! (keepalived's `vrrp_sync_fault`) and takes it out when none has any more; a member's
//! own fault holds it in FAULT until its group leaves FAULT.

use super::packet::Version;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// An instance's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum State {
    /// Not started, or shut down.
    Initialize,
    /// Listening; takes over when the master goes quiet or a lower priority appears.
    Backup,
    /// Owns the virtual addresses and advertises.
    Master,
    /// A tracked interface or script failed: holds nothing, advertises nothing.
    Fault,
}

/// The configuration the machine needs (a subset of a `vrrp_instance`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FsmConfig {
    /// Protocol version: v3 learns the master's advert interval.
    pub version: Version,
    /// Configured priority (255: address owner, becomes master at once).
    pub priority: u8,
    /// Our advertisement interval.
    pub advert_interval: Duration,
    /// Whether a higher priority takes over from a lower priority master (keepalived's
    /// default; `nopreempt` turns it off).
    pub preempt: bool,
    /// keepalived's `preempt_delay`: how long a lower-priority master is tolerated first.
    pub preempt_delay: Duration,
    /// Our primary address on the interface: breaks ties between equal priorities.
    pub primary: IpAddr,
    /// keepalived's `state MASTER`: skip the initial wait and become master at startup.
    pub start_as_master: bool,
    /// `garp_master_delay`: a second burst of gratuitous ARPs this long after becoming master
    /// (zero: none).
    pub garp_master_delay: Duration,
    /// `garp_master_repeat`: gratuitous ARPs per burst.
    pub garp_master_repeat: u32,
    /// `garp_master_refresh`: periodic gratuitous ARPs while master (zero: none).
    pub garp_master_refresh: Duration,
    /// `higher_prio_send_advert`: on yielding to a higher priority, send one advert of
    /// our own first.
    #[serde(default)]
    pub higher_prio_send_advert: bool,
    /// `garp_master_refresh_repeat`: gratuitous ARPs per refresh.
    #[serde(default = "one")]
    pub garp_refresh_repeat: u32,
    /// `lower_prio_no_advert`: a master that hears a lower priority does not answer with
    /// an advert at once (keepalived's default answers).
    #[serde(default)]
    pub lower_prio_no_advert: bool,
    /// `garp_lower_prio_repeat`: gratuitous ARPs a master sends when it hears a lower
    /// priority (zero: none).
    #[serde(default = "five")]
    pub garp_lower_prio_repeat: u32,
    /// `garp_lower_prio_delay`: a second such burst this long after (zero: none).
    #[serde(default = "five_s")]
    pub garp_lower_prio_delay: Duration,
    /// A member of a `vrrp_sync_group`: the machine does not become master by itself but
    /// asks ([`Action::WantMaster`]) and waits for [`Event::GoMaster`], so that the
    /// group's members are masters together or not at all.
    #[serde(default)]
    pub sync_group: bool,
    /// keepalived's `down_timer_adverts`: how many of the master's advert intervals a
    /// backup waits (plus the skew) before taking over; the RFCs' 3 by default.
    #[serde(default = "three")]
    pub down_timer_adverts: u32,
}

fn three() -> u32 {
    3
}

fn one() -> u32 {
    1
}

fn five() -> u32 {
    5
}

fn five_s() -> Duration {
    Duration::from_secs(5)
}

/// How often at most a master answers lower-priority adverts (its advert and gratuitous
/// ARPs): the other router backs off at the first answer, so a flood of forged
/// lower-priority adverts cannot make this one flood the link.
pub const LOWER_PRIO_ANSWER_INTERVAL: Duration = Duration::from_secs(1);

impl FsmConfig {
    /// A configuration with keepalived's defaults for everything but the essentials.
    pub fn new(version: Version, priority: u8, advert_interval: Duration, primary: IpAddr) -> FsmConfig {
        FsmConfig {
            version,
            priority,
            advert_interval,
            preempt: true,
            preempt_delay: Duration::ZERO,
            primary,
            start_as_master: false,
            garp_master_delay: Duration::from_secs(5),
            garp_master_repeat: 5,
            garp_master_refresh: Duration::ZERO,
            higher_prio_send_advert: false,
            garp_refresh_repeat: 1,
            lower_prio_no_advert: false,
            garp_lower_prio_repeat: 5,
            garp_lower_prio_delay: Duration::from_secs(5),
            sync_group: false,
            down_timer_adverts: 3,
        }
    }
}

/// What happens to an instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The instance starts (Initialize -> Backup or Master).
    Startup,
    /// The instance stops: a master sends priority 0 so backups take over after Skew_Time.
    Shutdown,
    /// An advert for our VRID arrived (already validated: TTL, checksum, auth, version).
    Advert {
        /// Sender's primary address.
        src: IpAddr,
        /// Sender's priority.
        priority: u8,
        /// Sender's advert interval in centiseconds.
        interval_cs: u16,
    },
    /// Time passed: expired timers fire.
    Tick,
    /// The effective priority changed (tracked scripts or interfaces with a weight).
    Priority(u8),
    /// A tracked object with no weight failed (`true`) or every one recovered (`false`).
    Fault(bool),
    /// The sync group goes MASTER (keepalived's `vrrp_sync_master`): a backup member
    /// becomes master at once; any other state ignores it.
    GoMaster,
    /// Another member of the sync group left MASTER for BACKUP (keepalived's
    /// `vrrp_sync_backup`): a master member leaves MASTER too, without a priority 0
    /// advert (keepalived's `vrrp_state_leave_master(vrrp, false)`); any other state
    /// ignores it.
    GoBackup,
    /// The sync group enters FAULT (`true`, keepalived's `vrrp_sync_fault`: another member
    /// has a fault) or leaves it (`false`, keepalived's `vrrp_sync_backup` from FAULT: no
    /// member has one any more). Entering, the machine goes FAULT (a master leaving
    /// without a priority 0 advert, keepalived's `vrrp_state_leave_master(isync, false)`;
    /// one not started yet starts in FAULT); leaving, it goes BACKUP unless it has a fault
    /// of its own ([`Event::Fault`]).
    GroupFault(bool),
}

/// What the caller must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send an advert with this priority.
    SendAdvert {
        /// Priority to advertise (0 when leaving).
        priority: u8,
    },
    /// Add the virtual addresses to the dataplane.
    AddVips,
    /// Remove the virtual addresses from the dataplane.
    RemoveVips,
    /// Send gratuitous ARPs / unsolicited NAs for the virtual addresses.
    SendGarp {
        /// How many in this burst.
        repeat: u32,
    },
    /// Run the notify scripts for the new state.
    Notify(State),
    /// A master heard a lower priority and answers it (the actions that follow): logged,
    /// as keepalived logs "Received advert from ... with lower priority".
    LowerPriorityHeard {
        /// The other router.
        src: IpAddr,
        /// Its priority.
        priority: u8,
    },
    /// A sync group member's Master_Down_Timer (or preemption) ran out: it would become
    /// master, and stays backup until the caller answers with [`Event::GoMaster`] (its
    /// timer is re-armed meanwhile: keepalived's "prefer backup state to avoid
    /// thrashing").
    WantMaster,
}

/// One VRRP instance's state machine.
#[derive(Debug, Clone)]
pub struct Fsm {
    cfg: FsmConfig,
    state: State,
    priority: u8,
    /// A fault of its own ([`Event::Fault`]).
    fault: bool,
    /// Held in FAULT by its sync group ([`Event::GroupFault`]); a member's own fault sets
    /// it too, so that the member leaves FAULT only with its group.
    group_fault: bool,
    master_adver_interval: Duration,
    master: Option<IpAddr>,
    adver_at: Option<Duration>,
    master_down_at: Option<Duration>,
    preempt_at: Option<Duration>,
    garp_at: Option<Duration>,
    garp_refresh_at: Option<Duration>,
    /// The second burst after a lower-priority advert.
    garp_lower_at: Option<Duration>,
    /// When a lower-priority advert was last answered (rate limit).
    lower_answered_at: Option<Duration>,
    /// keepalived's `vrrp_startup_delay` (`vrrp_delayed_start_time`): no becoming master
    /// before this; a backup's timers run from it while it is ahead ([`Fsm::hold_until`]).
    not_before: Duration,
    /// [`Fsm::resume`].
    resume: Option<(State, bool)>,
    /// keepalived's `wantstate == MASTER`: the Master_Down_Timer (or preemption) ran out
    /// since a master's advert was last accepted, or the machine is master.
    wants_master: bool,
    /// A sync group member's preemption ran out: lower-priority adverts are discarded
    /// from now on (keepalived's `preempt_time` passed) until a master is accepted.
    preempt_due: bool,
}

impl Fsm {
    /// A machine in Initialize.
    pub fn new(cfg: FsmConfig) -> Fsm {
        let priority = cfg.priority;
        let master_adver_interval = cfg.advert_interval;
        Fsm {
            cfg,
            state: State::Initialize,
            priority,
            fault: false,
            group_fault: false,
            master_adver_interval,
            master: None,
            adver_at: None,
            master_down_at: None,
            preempt_at: None,
            garp_at: None,
            garp_refresh_at: None,
            garp_lower_at: None,
            lower_answered_at: None,
            not_before: Duration::ZERO,
            resume: None,
            wants_master: false,
            preempt_due: false,
        }
    }

    /// Whether the machine wants to be master (keepalived's `wantstate`): it is master, or
    /// its Master_Down_Timer (or preemption) ran out since it last accepted a master's
    /// advert. A sync group goes MASTER only when every running member wants it.
    pub fn wants_master(&self) -> bool {
        self.wants_master
    }

    /// Whether the machine has a fault of its own (a weight-0 tracked object failing, its
    /// interface unusable: [`Event::Fault`]), as opposed to being held in FAULT by its sync
    /// group: the group leaves FAULT once no member has one.
    pub fn own_fault(&self) -> bool {
        self.fault
    }

    /// Whether the machine is held in FAULT by its sync group ([`Event::GroupFault`]),
    /// for a caller replacing the machine (a new primary address) to carry it over.
    pub fn group_fault(&self) -> bool {
        self.group_fault
    }

    /// keepalived's `vrrp_startup_delay`: the machine does not become master before `t`
    /// (on its clock), as keepalived's `vrrp_init_instance_sands` with a
    /// `vrrp_delayed_start_time` ahead: while `t` is ahead, a backup's Master_Down_Timer
    /// (and preemption) runs from `t` instead of now, and an address owner or `state
    /// MASTER` starts as backup and takes over at `t` (keepalived: a 1 us Master_Down_Timer
    /// from the delayed start). Adverts are heard meanwhile: a master heard keeps it backup
    /// as usual. Call before [`Event::Startup`].
    pub fn hold_until(&mut self, t: Duration) {
        self.not_before = t;
    }

    /// keepalived's `restore_vrrp_state`: the machine replaces one a reload changed,
    /// which was in `state`. Unless it has a fault, a master starts as master (advert at
    /// once; `announce`: with its gratuitous ARPs, none otherwise, and no
    /// garp_master_delay burst), a backup as backup whatever its `state MASTER` or
    /// priority 255 (no election, as keepalived's `vrrp_init_state` with the restored
    /// state). Call before [`Event::Startup`].
    pub fn resume(&mut self, state: State, announce: bool) {
        self.resume = Some((state, announce));
    }

    /// Whether the machine is held back at `now` ([`Fsm::hold_until`]).
    pub fn held(&self, now: Duration) -> bool {
        now < self.not_before
    }

    /// Where a backup's timers start from: now, or the end of the startup delay while it is
    /// ahead.
    fn timers_from(&self, now: Duration) -> Duration {
        now.max(self.not_before)
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The effective priority.
    pub fn priority(&self) -> u8 {
        self.priority
    }

    /// The address of the current master as last seen (ourselves when master).
    pub fn master(&self) -> Option<IpAddr> {
        self.master
    }

    /// The master advertisement interval in use (learned from the master under v3).
    pub fn master_adver_interval(&self) -> Duration {
        self.master_adver_interval
    }

    /// Skew_Time: RFC 3768 `(256 - Priority) / 256` s; RFC 5798
    /// `((256 - Priority) * Master_Adver_Interval) / 256`.
    pub fn skew_time(&self) -> Duration {
        let p = 256 - u32::from(self.priority);
        match self.cfg.version {
            Version::V2 => Duration::from_secs(1) * p / 256,
            Version::V3 => self.master_adver_interval * p / 256,
        }
    }

    /// Master_Down_Interval: `3 * Master_Adver_Interval + Skew_Time` (keepalived's
    /// `down_timer_adverts` instead of 3).
    pub fn master_down_interval(&self) -> Duration {
        self.master_adver_interval * self.cfg.down_timer_adverts.max(1) + self.skew_time()
    }

    /// When to call [`Fsm::handle`] with [`Event::Tick`] next.
    pub fn next_deadline(&self) -> Option<Duration> {
        [self.adver_at, self.master_down_at, self.preempt_at, self.garp_at, self.garp_refresh_at, self.garp_lower_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Applies one event at time `now`.
    pub fn handle(&mut self, now: Duration, ev: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match ev {
            Event::Startup => {
                if self.state == State::Initialize {
                    self.start(now, &mut out);
                }
            }
            Event::Shutdown => {
                if self.state == State::Master {
                    out.push(Action::SendAdvert { priority: 0 });
                    out.push(Action::RemoveVips);
                }
                self.clear_timers();
                self.master = None;
                self.wants_master = false;
                self.state = State::Initialize;
            }
            Event::Tick => self.tick(now, &mut out),
            Event::Advert { src, priority, interval_cs } => self.advert(now, src, priority, interval_cs, &mut out),
            Event::Priority(p) => {
                // The owner's 255 is not subject to tracking; others stay in 1..=254.
                self.priority = if self.cfg.priority == 255 { 255 } else { p.clamp(1, 254) };
            }
            Event::Fault(f) => {
                if f && !self.fault {
                    self.fault = true;
                    // A sync group member leaves FAULT only with its group (keepalived's
                    // try_up_instance: not while the group has a member in fault).
                    self.group_fault |= self.cfg.sync_group;
                    self.enter_fault(&mut out);
                } else if !f && self.fault {
                    self.fault = false;
                    self.leave_fault(now, &mut out);
                }
            }
            Event::GroupFault(f) => {
                if f && !self.group_fault {
                    self.group_fault = true;
                    // keepalived's vrrp_sync_fault: vrrp_state_leave_master(isync, false)
                    // with wantstate FAULT, which sends a priority 0 advert (only a leave
                    // for BACKUP sends none), so the peer's member takes over at once.
                    self.enter_fault(&mut out);
                } else if !f && self.group_fault {
                    self.group_fault = false;
                    self.leave_fault(now, &mut out);
                }
            }
            Event::GoMaster => {
                if self.state == State::Backup {
                    self.become_master(now, &mut out);
                }
            }
            Event::GoBackup => {
                if self.state == State::Master {
                    // keepalived's vrrp_state_leave_master(isync, false): no advert.
                    self.master = None;
                    self.become_backup(now, &mut out);
                }
            }
        }
        out
    }

    /// A fault (own, or its group's) begins: a master leaves with a priority 0 advert
    /// (keepalived's vrrp_state_leave_master for FAULT), a running machine enters FAULT;
    /// one not started starts in FAULT.
    fn enter_fault(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Master {
            out.push(Action::SendAdvert { priority: 0 });
            out.push(Action::RemoveVips);
        }
        self.wants_master = false;
        if matches!(self.state, State::Backup | State::Master) {
            self.clear_timers();
            self.master = None;
            self.state = State::Fault;
            out.push(Action::Notify(State::Fault));
        }
    }

    /// A fault ended: BACKUP once neither its own nor its group's remains.
    fn leave_fault(&mut self, now: Duration, out: &mut Vec<Action>) {
        if !self.fault && !self.group_fault && self.state == State::Fault {
            self.become_backup(now, out);
        }
    }

    fn clear_timers(&mut self) {
        self.adver_at = None;
        self.master_down_at = None;
        self.preempt_at = None;
        self.garp_at = None;
        self.garp_refresh_at = None;
        self.garp_lower_at = None;
    }

    fn start(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.fault || self.group_fault {
            self.state = State::Fault;
            out.push(Action::Notify(State::Fault));
        } else if let Some((State::Master, announce)) = self.resume {
            self.become_master(now, out);
            if !announce {
                out.retain(|a| !matches!(a, Action::SendGarp { .. }));
            }
            self.garp_at = None;
        } else if matches!(self.resume, Some((State::Backup | State::Fault, _))) {
            self.become_backup(now, out);
        } else if (self.priority == 255 || self.cfg.start_as_master) && self.held(now) {
            // Held by the startup delay: backup until it ends, then master at once.
            self.become_backup(now, out);
            self.master_down_at = Some(self.not_before);
        } else if self.cfg.sync_group && self.priority == 255 {
            // An owner in a sync group wants master at once; the group decides (keepalived:
            // the group starts MASTER when all its members are owners).
            self.become_backup(now, out);
            self.want_master(now, out);
        } else if self.cfg.sync_group && self.cfg.start_as_master {
            // keepalived's vrrp_init_state for a member wanting MASTER in a BACKUP group:
            // "allow one adver_int to pass to ensure there is no other master".
            self.become_backup(now, out);
            self.master_down_at = Some(now + self.master_adver_interval + self.skew_time());
        } else if self.priority == 255 || self.cfg.start_as_master {
            self.become_master(now, out);
        } else {
            self.become_backup(now, out);
        }
    }

    fn become_master(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.clear_timers();
        self.state = State::Master;
        self.wants_master = true;
        self.preempt_due = false;
        self.master = Some(self.cfg.primary);
        self.master_adver_interval = self.cfg.advert_interval;
        out.push(Action::SendAdvert { priority: self.priority });
        out.push(Action::AddVips);
        out.push(Action::SendGarp { repeat: self.cfg.garp_master_repeat });
        out.push(Action::Notify(State::Master));
        self.adver_at = Some(now + self.cfg.advert_interval);
        if !self.cfg.garp_master_delay.is_zero() {
            self.garp_at = Some(now + self.cfg.garp_master_delay);
        }
        if !self.cfg.garp_master_refresh.is_zero() {
            self.garp_refresh_at = Some(now + self.cfg.garp_master_refresh);
        }
    }

    fn become_backup(&mut self, now: Duration, out: &mut Vec<Action>) {
        let was_master = self.state == State::Master;
        self.clear_timers();
        self.state = State::Backup;
        self.preempt_due = false;
        if was_master {
            self.wants_master = false;
            out.push(Action::RemoveVips);
        }
        out.push(Action::Notify(State::Backup));
        self.master_down_at = Some(self.timers_from(now) + self.master_down_interval());
    }

    fn tick(&mut self, now: Duration, out: &mut Vec<Action>) {
        match self.state {
            State::Backup => {
                let down = self.master_down_at.is_some_and(|t| now >= t);
                let preempt = self.preempt_at.is_some_and(|t| now >= t);
                if (down || preempt) && self.cfg.sync_group {
                    self.preempt_due |= preempt;
                    self.want_master(now, out);
                } else if down || preempt {
                    self.wants_master = true;
                    self.become_master(now, out);
                }
            }
            State::Master => {
                if self.adver_at.is_some_and(|t| now >= t) {
                    out.push(Action::SendAdvert { priority: self.priority });
                    self.adver_at = Some(now + self.cfg.advert_interval);
                }
                if self.garp_at.is_some_and(|t| now >= t) {
                    out.push(Action::SendGarp { repeat: self.cfg.garp_master_repeat });
                    self.garp_at = None;
                }
                if self.garp_lower_at.is_some_and(|t| now >= t) {
                    out.push(Action::SendGarp { repeat: self.cfg.garp_lower_prio_repeat });
                    self.garp_lower_at = None;
                }
                if self.garp_refresh_at.is_some_and(|t| now >= t) {
                    out.push(Action::SendGarp { repeat: self.cfg.garp_refresh_repeat });
                    self.garp_refresh_at = Some(now + self.cfg.garp_master_refresh);
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    fn advert(&mut self, now: Duration, src: IpAddr, priority: u8, interval_cs: u16, out: &mut Vec<Action>) {
        match self.state {
            State::Backup => {
                if priority == 0 {
                    // The master is leaving: take over after Skew_Time.
                    self.master_down_at = Some(self.timers_from(now) + self.skew_time());
                    self.preempt_at = None;
                    return;
                }
                if !self.cfg.preempt || priority >= self.priority {
                    self.accept_master(now, src, interval_cs);
                    self.preempt_at = None;
                    self.preempt_due = false;
                } else if !self.cfg.preempt_delay.is_zero() && !self.preempt_due {
                    // A lower priority master: tolerate it for preempt_delay, then take over.
                    self.accept_master(now, src, interval_cs);
                    if self.preempt_at.is_none() {
                        self.preempt_at = Some(self.timers_from(now) + self.cfg.preempt_delay);
                    }
                }
                // Otherwise discard: Master_Down_Timer runs out and we preempt.
            }
            State::Master => {
                if priority == 0 {
                    // Another master left: assert ourselves at once.
                    out.push(Action::SendAdvert { priority: self.priority });
                    self.adver_at = Some(now + self.cfg.advert_interval);
                } else if priority > self.priority || (priority == self.priority && ip_greater(src, self.cfg.primary)) {
                    if self.cfg.version == Version::V3 {
                        self.master_adver_interval = Duration::from_millis(u64::from(interval_cs) * 10);
                    }
                    self.master = Some(src);
                    if self.cfg.higher_prio_send_advert {
                        out.push(Action::SendAdvert { priority: self.priority });
                    }
                    self.become_backup(now, out);
                } else {
                    self.lower_priority(now, src, priority, out);
                }
            }
            State::Initialize | State::Fault => {}
        }
    }

    /// Master hears a lower priority (keepalived 2.2.7's `vrrp_state_master_rx`): another
    /// router believes it is master (a split brain healing, a router that missed our
    /// adverts). Answered at once with our advert (unless `lower_prio_no_advert`) and
    /// gratuitous ARPs (`garp_lower_prio_repeat`, again after `garp_lower_prio_delay`), at
    /// most once per [`LOWER_PRIO_ANSWER_INTERVAL`].
    fn lower_priority(&mut self, now: Duration, src: IpAddr, priority: u8, out: &mut Vec<Action>) {
        if self.lower_answered_at.is_some_and(|t| now < t + LOWER_PRIO_ANSWER_INTERVAL) {
            return;
        }
        self.lower_answered_at = Some(now);
        out.push(Action::LowerPriorityHeard { src, priority });
        if !self.cfg.lower_prio_no_advert {
            out.push(Action::SendAdvert { priority: self.priority });
            self.adver_at = Some(now + self.cfg.advert_interval);
        }
        if self.cfg.garp_lower_prio_repeat > 0 {
            out.push(Action::SendGarp { repeat: self.cfg.garp_lower_prio_repeat });
            if !self.cfg.garp_lower_prio_delay.is_zero() {
                self.garp_lower_at = Some(now + self.cfg.garp_lower_prio_delay);
            }
        }
    }

    /// A sync group member would become master: it asks the caller ([`Action::WantMaster`])
    /// and stays backup, its timer re-armed (keepalived's `vrrp_sync_can_goto_master`).
    fn want_master(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.wants_master = true;
        self.preempt_at = None;
        self.master_down_at = Some(self.timers_from(now) + self.master_down_interval());
        out.push(Action::WantMaster);
    }

    fn accept_master(&mut self, now: Duration, src: IpAddr, interval_cs: u16) {
        // keepalived's vrrp_state_backup: "Now we have received a backup, we want to be in
        // BACKUP state".
        self.wants_master = false;
        if self.cfg.version == Version::V3 && interval_cs > 0 {
            self.master_adver_interval = Duration::from_millis(u64::from(interval_cs) * 10);
        }
        self.master = Some(src);
        self.master_down_at = Some(self.timers_from(now) + self.master_down_interval());
    }
}

/// Compares addresses as unsigned integers in network order (RFC 5798 6.4.3).
pub fn ip_greater(a: IpAddr, b: IpAddr) -> bool {
    match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => a.octets() > b.octets(),
        (IpAddr::V6(a), IpAddr::V6(b)) => a.octets() > b.octets(),
        _ => false,
    }
}

/// keepalived's priority arithmetic over tracked objects: each `(weight, ok)` with a
/// positive weight adds it while `ok`; a negative weight subtracts it while failing; a zero
/// weight puts the instance in fault while failing. Returns the effective priority
/// (1..=254, 255 untouched) and whether the instance is in fault.
pub fn effective_priority(base: u8, tracked: &[(i32, bool)]) -> (u8, bool) {
    let mut p = i32::from(base);
    let mut fault = false;
    for &(w, ok) in tracked {
        match (w, ok) {
            (0, false) => fault = true,
            (w, true) if w > 0 => p += w,
            (w, false) if w < 0 => p += w,
            _ => {}
        }
    }
    if base == 255 {
        return (255, fault);
    }
    (p.clamp(1, 254) as u8, fault)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "10.0.0.2";
    const PEER_LOW: &str = "10.0.0.1";
    const PEER_HIGH: &str = "10.0.0.3";

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cfg(version: Version, prio: u8) -> FsmConfig {
        FsmConfig::new(version, prio, Duration::from_secs(1), ip(ME))
    }

    fn adv(src: &str, priority: u8, interval_cs: u16) -> Event {
        Event::Advert { src: ip(src), priority, interval_cs }
    }

    /// Ticks the machine at every deadline up to `until`, collecting actions.
    fn run_until(f: &mut Fsm, until: Duration) -> Vec<(Duration, Action)> {
        let mut out = Vec::new();
        while let Some(d) = f.next_deadline() {
            if d > until {
                break;
            }
            out.extend(f.handle(d, Event::Tick).into_iter().map(|a| (d, a)));
        }
        out
    }

    fn became_master(actions: &[Action]) -> bool {
        actions.contains(&Action::AddVips) && actions.contains(&Action::Notify(State::Master))
    }

    #[test]
    fn skew_and_master_down_follow_the_rfcs() {
        let f = Fsm::new(cfg(Version::V2, 100));
        // v2: (256-100)/256 s = 609.375 ms.
        assert_eq!(f.skew_time(), Duration::from_nanos(609_375_000));
        assert_eq!(f.master_down_interval(), Duration::from_nanos(3_609_375_000));
        let mut c = cfg(Version::V3, 100);
        c.advert_interval = ms(100);
        let f = Fsm::new(c);
        assert_eq!(f.skew_time(), Duration::from_nanos(60_937_500));
        assert_eq!(f.master_down_interval(), Duration::from_nanos(360_937_500));
        // keepalived's down_timer_adverts: that many advert intervals, plus the skew.
        let mut c = cfg(Version::V2, 100);
        c.down_timer_adverts = 1;
        let mut f = Fsm::new(c);
        assert_eq!(f.master_down_interval(), Duration::from_nanos(1_609_375_000));
        f.handle(ms(0), Event::Startup);
        assert!(run_until(&mut f, ms(1609)).is_empty());
        assert!(!run_until(&mut f, ms(1610)).is_empty(), "MASTER after one advert interval and the skew");
        assert_eq!(f.state(), State::Master);
    }

    #[test]
    fn backup_becomes_master_after_master_down_interval() {
        let mut f = Fsm::new(cfg(Version::V2, 100));
        assert_eq!(f.handle(ms(0), Event::Startup), vec![Action::Notify(State::Backup)]);
        assert_eq!(f.state(), State::Backup);
        assert!(run_until(&mut f, ms(3609)).is_empty());
        let acts: Vec<Action> = run_until(&mut f, ms(3610)).into_iter().map(|(_, a)| a).collect();
        assert_eq!(
            acts,
            vec![
                Action::SendAdvert { priority: 100 },
                Action::AddVips,
                Action::SendGarp { repeat: 5 },
                Action::Notify(State::Master)
            ]
        );
        assert_eq!(f.state(), State::Master);
        assert_eq!(f.master(), Some(ip(ME)));
    }

    #[test]
    fn master_advertises_every_interval_and_repeats_garp_after_delay() {
        let mut c = cfg(Version::V2, 100);
        c.start_as_master = true;
        c.garp_master_refresh = Duration::from_secs(4);
        let mut f = Fsm::new(c);
        assert!(became_master(&f.handle(ms(0), Event::Startup)));
        let acts = run_until(&mut f, ms(5000));
        let adverts: Vec<Duration> =
            acts.iter().filter(|(_, a)| matches!(a, Action::SendAdvert { .. })).map(|(t, _)| *t).collect();
        assert_eq!(adverts, (1..=5).map(Duration::from_secs).collect::<Vec<_>>());
        assert!(acts.contains(&(ms(4000), Action::SendGarp { repeat: 1 })), "refresh at 4 s");
        assert!(acts.contains(&(ms(5000), Action::SendGarp { repeat: 5 })), "garp_master_delay burst at 5 s");
    }

    /// keepalived's reload_master: a successor of a master starts as master at once, with
    /// its advert (gratuitous ARPs only when addresses were added); with a fault, in
    /// FAULT; a successor of a backup stays backup.
    #[test]
    fn a_resumed_master_is_master_at_once_unless_faulted() {
        let mut f = Fsm::new(cfg(Version::V2, 100));
        f.resume(State::Master, false);
        let acts = f.handle(ms(0), Event::Startup);
        assert!(became_master(&acts) && acts[0] == Action::SendAdvert { priority: 100 }, "{acts:?}");
        assert!(!acts.iter().any(|a| matches!(a, Action::SendGarp { .. })), "nothing added: no GARP");
        let mut f = Fsm::new(cfg(Version::V2, 100));
        f.resume(State::Master, true);
        assert!(f.handle(ms(0), Event::Startup).contains(&Action::SendGarp { repeat: 5 }));
        let mut f = Fsm::new(cfg(Version::V2, 100));
        f.resume(State::Master, false);
        f.handle(ms(0), Event::Fault(true));
        assert_eq!(f.handle(ms(0), Event::Startup), [Action::Notify(State::Fault)]);
        // A backup resumed stays backup, even an owner (keepalived's restored state).
        let mut f = Fsm::new(cfg(Version::V2, 255));
        f.resume(State::Backup, false);
        assert_eq!(f.handle(ms(0), Event::Startup), [Action::Notify(State::Backup)]);
        assert_eq!(f.state(), State::Backup);
    }

    #[test]
    fn owner_with_priority_255_becomes_master_at_once() {
        let mut f = Fsm::new(cfg(Version::V3, 255));
        assert!(became_master(&f.handle(ms(0), Event::Startup)));
        // Tracking never lowers the owner.
        f.handle(ms(1), Event::Priority(50));
        assert_eq!(f.priority(), 255);
    }

    #[test]
    fn backup_stays_backup_while_higher_master_advertises() {
        let mut f = Fsm::new(cfg(Version::V2, 100));
        f.handle(ms(0), Event::Startup);
        for t in (0..20).map(Duration::from_secs) {
            assert!(run_until(&mut f, t).is_empty());
            assert!(f.handle(t, adv(PEER_LOW, 150, 100)).is_empty());
        }
        assert_eq!(f.state(), State::Backup);
        assert_eq!(f.master(), Some(ip(PEER_LOW)));
        // Adverts stop at 19 s: master down at 19 s + 3.609 s.
        assert!(run_until(&mut f, ms(22_609)).is_empty());
        assert!(became_master(&run_until(&mut f, ms(22_610)).into_iter().map(|(_, a)| a).collect::<Vec<_>>()));
    }

    #[test]
    fn priority_zero_makes_backup_take_over_after_skew_time() {
        let mut f = Fsm::new(cfg(Version::V2, 100));
        f.handle(ms(0), Event::Startup);
        f.handle(ms(500), adv(PEER_LOW, 150, 100));
        f.handle(ms(1000), adv(PEER_LOW, 0, 100));
        // Skew_Time = 609.375 ms.
        assert!(run_until(&mut f, ms(1609)).is_empty());
        let acts: Vec<Action> = run_until(&mut f, ms(1610)).into_iter().map(|(_, a)| a).collect();
        assert!(became_master(&acts));
    }

    #[test]
    fn master_sends_priority_zero_on_shutdown() {
        let mut c = cfg(Version::V2, 100);
        c.start_as_master = true;
        let mut f = Fsm::new(c);
        f.handle(ms(0), Event::Startup);
        assert_eq!(f.handle(ms(10), Event::Shutdown), vec![Action::SendAdvert { priority: 0 }, Action::RemoveVips]);
        assert_eq!(f.state(), State::Initialize);
        assert_eq!(f.next_deadline(), None);
    }

    #[test]
    fn master_answers_priority_zero_from_another_master_at_once() {
        let mut c = cfg(Version::V2, 100);
        c.start_as_master = true;
        let mut f = Fsm::new(c);
        f.handle(ms(0), Event::Startup);
        assert_eq!(f.handle(ms(300), adv(PEER_LOW, 0, 100)), vec![Action::SendAdvert { priority: 100 }]);
        assert_eq!(f.next_deadline(), Some(ms(1300)));
    }

    #[test]
    fn master_yields_to_higher_priority_and_answers_lower() {
        let mut c = cfg(Version::V2, 100);
        c.start_as_master = true;
        let mut f = Fsm::new(c);
        f.handle(ms(0), Event::Startup);
        assert_eq!(
            f.handle(ms(100), adv(PEER_HIGH, 99, 100)),
            vec![
                Action::LowerPriorityHeard { src: ip(PEER_HIGH), priority: 99 },
                Action::SendAdvert { priority: 100 },
                Action::SendGarp { repeat: 5 }
            ],
            "a lower priority is answered (keepalived: forcing new election)"
        );
        assert_eq!(f.state(), State::Master);
        assert_eq!(f.handle(ms(200), adv(PEER_LOW, 101, 100)), vec![Action::RemoveVips, Action::Notify(State::Backup)]);
        assert_eq!(f.state(), State::Backup);
        assert_eq!(f.master(), Some(ip(PEER_LOW)));
    }

    /// keepalived's answer to a lower-priority advert while master: an advert at once and
    /// `garp_lower_prio_repeat` gratuitous ARPs, again `garp_lower_prio_delay` later; at
    /// most once a second however many arrive; `lower_prio_no_advert` and a repeat of 0
    /// turn each part off. The refresh sends `garp_master_refresh_repeat`.
    #[test]
    fn lower_priority_adverts_are_answered_at_most_once_a_second() {
        let mut c = cfg(Version::V3, 100);
        c.start_as_master = true;
        c.garp_master_delay = Duration::ZERO;
        c.garp_lower_prio_repeat = 3;
        c.garp_lower_prio_delay = Duration::from_secs(2);
        c.garp_master_refresh = Duration::from_secs(10);
        c.garp_refresh_repeat = 4;
        let mut f = Fsm::new(c.clone());
        f.handle(ms(0), Event::Startup);
        let answer = vec![
            Action::LowerPriorityHeard { src: ip(PEER_LOW), priority: 90 },
            Action::SendAdvert { priority: 100 },
            Action::SendGarp { repeat: 3 },
        ];
        assert_eq!(f.handle(ms(300), adv(PEER_LOW, 90, 100)), answer);
        // A flood of them within the second: nothing more.
        for t in (310..1300).step_by(10) {
            assert!(f.handle(ms(t), adv(PEER_LOW, 90, 100)).is_empty(), "at {t} ms");
        }
        assert_eq!(f.handle(ms(1300), adv(PEER_LOW, 90, 100)), answer, "answered again after a second");
        // The delayed second burst (rescheduled by the later answer), then the refresh.
        let acts = run_until(&mut f, ms(10_001));
        let garps: Vec<_> = acts.iter().filter(|(_, a)| matches!(a, Action::SendGarp { .. })).collect();
        assert_eq!(
            garps,
            [&(ms(3300), Action::SendGarp { repeat: 3 }), &(ms(10_000), Action::SendGarp { repeat: 4 })],
            "{acts:?}"
        );
        // Each part can be turned off.
        c.lower_prio_no_advert = true;
        c.garp_lower_prio_repeat = 0;
        let mut quiet = Fsm::new(c);
        quiet.handle(ms(0), Event::Startup);
        assert_eq!(
            quiet.handle(ms(300), adv(PEER_LOW, 90, 100)),
            [Action::LowerPriorityHeard { src: ip(PEER_LOW), priority: 90 }]
        );
        assert_eq!(quiet.state(), State::Master);
    }

    #[test]
    fn higher_prio_send_advert_advertises_once_before_yielding() {
        let mut c = cfg(Version::V2, 100);
        c.start_as_master = true;
        c.higher_prio_send_advert = true;
        let mut f = Fsm::new(c);
        f.handle(ms(0), Event::Startup);
        assert_eq!(
            f.handle(ms(200), adv(PEER_LOW, 101, 100)),
            vec![Action::SendAdvert { priority: 100 }, Action::RemoveVips, Action::Notify(State::Backup)]
        );
        assert_eq!(f.state(), State::Backup);
    }

    #[test]
    fn equal_priority_is_broken_by_the_higher_primary_address() {
        let mut c = cfg(Version::V3, 100);
        c.start_as_master = true;
        let mut f = Fsm::new(c);
        f.handle(ms(0), Event::Startup);
        // A lower address at equal priority: we stay master (and answer it).
        assert!(!f.handle(ms(100), adv(PEER_LOW, 100, 100)).contains(&Action::RemoveVips));
        assert_eq!(f.state(), State::Master);
        // A higher address at equal priority: we yield.
        assert!(f.handle(ms(200), adv(PEER_HIGH, 100, 100)).contains(&Action::RemoveVips));
        assert_eq!(f.state(), State::Backup);
        assert!(ip_greater(ip("10.0.0.10"), ip("10.0.0.9")));
        assert!(ip_greater(ip("fe80::2"), ip("fe80::1")));
    }

    #[test]
    fn preempt_takes_over_from_lower_priority_master() {
        let mut f = Fsm::new(cfg(Version::V2, 150));
        f.handle(ms(0), Event::Startup);
        // A lower-priority master keeps advertising: discarded, so Master_Down fires.
        let mut became = None;
        for i in 0..10u64 {
            let t = ms(i * 1000);
            for (at, a) in run_until(&mut f, t) {
                if a == Action::AddVips && became.is_none() {
                    became = Some(at);
                }
            }
            f.handle(t, adv(PEER_LOW, 100, 100));
        }
        // Master_Down_Interval for 150 = 3 s + 414.0625 ms.
        assert_eq!(became, Some(Duration::from_nanos(3_414_062_500)));
    }

    #[test]
    fn nopreempt_leaves_a_lower_priority_master_alone() {
        let mut c = cfg(Version::V2, 150);
        c.preempt = false;
        let mut f = Fsm::new(c);
        f.handle(ms(0), Event::Startup);
        for i in 0..20u64 {
            let t = ms(i * 1000);
            assert!(run_until(&mut f, t).is_empty());
            f.handle(t, adv(PEER_LOW, 100, 100));
        }
        assert_eq!(f.state(), State::Backup);
    }

    #[test]
    fn preempt_delay_tolerates_a_lower_master_then_takes_over() {
        let mut c = cfg(Version::V2, 150);
        c.preempt_delay = Duration::from_secs(10);
        let mut f = Fsm::new(c);
        f.handle(ms(0), Event::Startup);
        let mut became = None;
        for i in 0..30u64 {
            let t = ms(i * 1000 + 1);
            for (at, a) in run_until(&mut f, t) {
                if a == Action::AddVips && became.is_none() {
                    became = Some(at);
                }
            }
            if became.is_none() {
                f.handle(t, adv(PEER_LOW, 100, 100));
            }
        }
        // First lower advert at 1 ms: preemption at 10.001 s, not at Master_Down.
        assert_eq!(became, Some(ms(10_001)));
    }

    #[test]
    fn v3_backup_learns_the_masters_interval() {
        let mut f = Fsm::new(cfg(Version::V3, 100));
        f.handle(ms(0), Event::Startup);
        f.handle(ms(0), adv(PEER_HIGH, 200, 10)); // master advertises every 100 ms
        assert_eq!(f.master_adver_interval(), ms(100));
        // Master_Down = 300 ms + (156 * 100 ms / 256) = 360.9375 ms.
        assert_eq!(f.next_deadline(), Some(Duration::from_nanos(360_937_500)));
        // v2 does not learn: the interval is ours.
        let mut g = Fsm::new(cfg(Version::V2, 100));
        g.handle(ms(0), Event::Startup);
        g.handle(ms(0), adv(PEER_HIGH, 200, 300));
        assert_eq!(g.master_adver_interval(), Duration::from_secs(1));
    }

    #[test]
    fn fault_drops_vips_and_recovery_returns_to_backup() {
        let mut c = cfg(Version::V2, 100);
        c.start_as_master = true;
        let mut f = Fsm::new(c);
        f.handle(ms(0), Event::Startup);
        assert_eq!(
            f.handle(ms(100), Event::Fault(true)),
            vec![Action::SendAdvert { priority: 0 }, Action::RemoveVips, Action::Notify(State::Fault)]
        );
        assert_eq!(f.state(), State::Fault);
        assert_eq!(f.next_deadline(), None);
        assert!(f.handle(ms(200), adv(PEER_LOW, 50, 100)).is_empty(), "fault ignores adverts");
        assert_eq!(f.handle(ms(300), Event::Fault(false)), vec![Action::Notify(State::Backup)]);
        assert_eq!(f.state(), State::Backup);
        // Starting while faulted lands in Fault.
        let mut g = Fsm::new(cfg(Version::V2, 100));
        g.handle(ms(0), Event::Fault(true));
        assert_eq!(g.handle(ms(0), Event::Startup), vec![Action::Notify(State::Fault)]);
    }

    #[test]
    fn tracked_priority_drop_lets_the_backup_preempt() {
        // Master 100 with a script of weight -20; backup 90.
        let (p, fault) = effective_priority(100, &[(-20, false)]);
        assert_eq!((p, fault), (80, false));
        let mut backup = Fsm::new(FsmConfig::new(Version::V2, 90, Duration::from_secs(1), ip(PEER_HIGH)));
        backup.handle(ms(0), Event::Startup);
        // Master advertises 80 < 90: discarded, so the backup takes over at Master_Down.
        let mut became = false;
        for i in 0..6u64 {
            became |=
                became_master(&run_until(&mut backup, ms(i * 1000)).into_iter().map(|(_, a)| a).collect::<Vec<_>>());
            backup.handle(ms(i * 1000), adv(PEER_LOW, p, 100));
        }
        assert!(became);
        // And the master, at lower effective priority, yields to the backup's adverts.
        let mut c = cfg(Version::V2, 100);
        c.start_as_master = true;
        let mut m = Fsm::new(c);
        m.handle(ms(0), Event::Startup);
        m.handle(ms(1), Event::Priority(p));
        assert!(m.handle(ms(2), adv(PEER_HIGH, 90, 100)).contains(&Action::RemoveVips));
    }

    #[test]
    fn effective_priority_arithmetic() {
        assert_eq!(effective_priority(100, &[(10, true), (-5, true)]), (110, false));
        assert_eq!(effective_priority(100, &[(10, false), (-5, false)]), (95, false));
        assert_eq!(effective_priority(250, &[(10, true)]), (254, false));
        assert_eq!(effective_priority(5, &[(-10, false)]), (1, false));
        assert_eq!(effective_priority(100, &[(0, false)]), (100, true));
        assert_eq!(effective_priority(255, &[(-50, false)]), (255, false));
    }

    /// keepalived's `vrrp_startup_delay` (`vrrp_init_instance_sands` with
    /// `vrrp_delayed_start_time` ahead): nobody becomes master before the delay ends. A
    /// backup's Master_Down_Timer runs from the end of the delay (also when it hears a
    /// master meanwhile); an address owner or `state MASTER` starts as backup (holding
    /// nothing) and takes over when the delay ends; once it has passed, timers run from now
    /// again.
    #[test]
    fn the_startup_delay_holds_every_instance_back() {
        let hold = ms(5000);
        let masters = |acts: Vec<(Duration, Action)>| -> Vec<Duration> {
            acts.into_iter().filter(|(_, a)| *a == Action::Notify(State::Master)).map(|(t, _)| t).collect()
        };
        // A backup: master at the end of the delay + Master_Down_Interval, not before.
        let mut f = Fsm::new(cfg(Version::V2, 100));
        f.hold_until(hold);
        assert!(f.held(ms(0)) && !f.held(hold));
        assert_eq!(f.handle(ms(0), Event::Startup), [Action::Notify(State::Backup)]);
        let mdi = f.master_down_interval();
        assert_eq!(masters(run_until(&mut f, hold + mdi - ms(1))), []);
        assert_eq!(masters(run_until(&mut f, hold + mdi)), [hold + mdi]);
        // A master heard during the delay: its Master_Down_Timer too runs from the end.
        let mut f = Fsm::new(cfg(Version::V2, 100));
        f.hold_until(hold);
        f.handle(ms(0), Event::Startup);
        f.handle(ms(1000), adv(PEER_HIGH, 200, 100));
        assert_eq!(f.master(), Some(ip(PEER_HIGH)));
        assert_eq!(masters(run_until(&mut f, ms(20_000))), [hold + mdi]);
        // An address owner, and a `state MASTER`: backup first, master when the delay ends.
        let mut owner = Fsm::new(cfg(Version::V2, 255));
        let mut c = cfg(Version::V2, 100);
        c.start_as_master = true;
        let mut hinted = Fsm::new(c);
        for f in [&mut owner, &mut hinted] {
            f.hold_until(hold);
            let acts = f.handle(ms(0), Event::Startup);
            assert_eq!(acts, [Action::Notify(State::Backup)], "no VIP, no advert during the delay");
            assert_eq!(f.state(), State::Backup);
            assert_eq!(masters(run_until(f, hold - ms(1))), []);
            let at_end = run_until(f, hold);
            assert!(became_master(&at_end.iter().map(|(_, a)| a.clone()).collect::<Vec<_>>()));
            assert_eq!(masters(at_end), [hold]);
        }
        // Once the delay has passed, a backup's timers run from now: a fault cleared at 10 s
        // takes over at 10 s + Master_Down_Interval.
        let mut f = Fsm::new(cfg(Version::V2, 100));
        f.hold_until(hold);
        f.handle(ms(0), Event::Fault(true));
        f.handle(ms(0), Event::Startup);
        assert_eq!(f.state(), State::Fault);
        f.handle(ms(10_000), Event::Fault(false));
        assert_eq!(masters(run_until(&mut f, ms(20_000))), [ms(10_000) + mdi]);
        // Without a delay, the owner is master at once (as before).
        let mut f = Fsm::new(cfg(Version::V2, 255));
        assert!(became_master(&f.handle(ms(0), Event::Startup)));
    }

    fn member(prio: u8) -> FsmConfig {
        let mut c = cfg(Version::V2, prio);
        c.sync_group = true;
        c
    }

    /// A sync group member (keepalived's `vrrp_sync_can_goto_master`): its Master_Down_Timer
    /// running out does not make it master; it asks (`WantMaster`), stays backup, re-arms
    /// the timer (asking again each Master_Down_Interval) and wants master until a
    /// master's advert is accepted; `GoMaster` makes it master at once.
    #[test]
    fn a_sync_group_member_asks_before_becoming_master() {
        let mut f = Fsm::new(member(100));
        assert_eq!(f.handle(ms(0), Event::Startup), [Action::Notify(State::Backup)]);
        assert!(!f.wants_master());
        assert!(run_until(&mut f, ms(3609)).is_empty());
        assert_eq!(run_until(&mut f, ms(3610)), [(Duration::from_nanos(3_609_375_000), Action::WantMaster)]);
        assert_eq!(f.state(), State::Backup);
        assert!(f.wants_master());
        // Asked again a Master_Down_Interval later.
        assert_eq!(run_until(&mut f, ms(7219)), [(Duration::from_nanos(7_218_750_000), Action::WantMaster)]);
        // A master's advert accepted: no longer wants master, the timer runs from it.
        assert!(f.handle(ms(7300), adv(PEER_HIGH, 150, 100)).is_empty());
        assert!(!f.wants_master());
        assert_eq!(f.next_deadline(), Some(ms(7300) + f.master_down_interval()));
        // A priority 0 advert does not end the wish (keepalived keeps wantstate).
        run_until(&mut f, ms(20_000));
        assert!(f.wants_master());
        f.handle(ms(20_100), adv(PEER_HIGH, 0, 100));
        assert!(f.wants_master());
        // The group says MASTER.
        let acts = f.handle(ms(20_200), Event::GoMaster);
        assert!(became_master(&acts), "{acts:?}");
        assert_eq!(f.state(), State::Master);
        assert!(f.wants_master());
        // GoMaster is ignored by a master, a faulted or a stopped machine.
        assert!(f.handle(ms(20_300), Event::GoMaster).is_empty());
        let mut g = Fsm::new(member(100));
        g.handle(ms(0), Event::Fault(true));
        g.handle(ms(0), Event::Startup);
        assert!(g.handle(ms(1), Event::GoMaster).is_empty());
        assert_eq!(g.state(), State::Fault);
        assert!(Fsm::new(member(100)).handle(ms(0), Event::GoMaster).is_empty());
    }

    /// keepalived's `vrrp_sync_backup` -> `vrrp_state_leave_master(isync, false)`: a master
    /// member told to leave goes backup without a priority 0 advert, removing its VIPs, and
    /// stops wanting master; a backup ignores it.
    #[test]
    fn a_sync_group_member_leaves_master_with_its_group_without_an_advert() {
        let mut f = Fsm::new(member(100));
        f.handle(ms(0), Event::Startup);
        assert!(f.handle(ms(1), Event::GoBackup).is_empty(), "a backup ignores it");
        f.handle(ms(10), Event::GoMaster);
        assert_eq!(f.state(), State::Master);
        assert_eq!(f.handle(ms(500), Event::GoBackup), [Action::RemoveVips, Action::Notify(State::Backup)]);
        assert_eq!(f.state(), State::Backup);
        assert!(!f.wants_master());
        assert_eq!(f.master(), None);
        assert_eq!(f.next_deadline(), Some(ms(500) + f.master_down_interval()));
        // A master member that hears a higher priority leaves on its own (and the caller
        // takes its group out of MASTER).
        f.handle(ms(600), Event::GoMaster);
        assert_eq!(f.handle(ms(700), adv(PEER_HIGH, 150, 100)), [Action::RemoveVips, Action::Notify(State::Backup)]);
        assert!(!f.wants_master());
    }

    /// Preemption in a group: a lower-priority master's adverts are discarded, the member
    /// asks when its timer runs out; with preempt_delay it tolerates the lower master for
    /// the delay, then asks and from then on discards its adverts (keepalived's
    /// `preempt_time` passed), asking again each Master_Down_Interval.
    #[test]
    fn a_sync_group_member_asks_to_preempt() {
        let mut f = Fsm::new(member(150));
        f.handle(ms(0), Event::Startup);
        let mut asked = Vec::new();
        for i in 0..8u64 {
            let t = ms(i * 1000);
            asked.extend(run_until(&mut f, t).into_iter().filter(|(_, a)| *a == Action::WantMaster).map(|(t, _)| t));
            assert!(f.handle(t, adv(PEER_LOW, 100, 100)).is_empty());
        }
        assert_eq!(asked, [Duration::from_nanos(3_414_062_500), Duration::from_nanos(6_828_125_000)]);
        assert!(f.wants_master() && f.state() == State::Backup);
        let mut c = member(150);
        c.preempt_delay = Duration::from_secs(10);
        let mut f = Fsm::new(c);
        f.handle(ms(0), Event::Startup);
        let mut asked = Vec::new();
        for i in 0..18u64 {
            let t = ms(i * 1000 + 1);
            asked.extend(run_until(&mut f, t).into_iter().filter(|(_, a)| *a == Action::WantMaster).map(|(t, _)| t));
            f.handle(t, adv(PEER_LOW, 100, 100));
            if t < ms(10_001) {
                assert!(!f.wants_master(), "tolerating the lower master at {t:?}");
            }
        }
        let mdi = f.master_down_interval();
        assert_eq!(asked, [ms(10_001), ms(10_001) + mdi, ms(10_001) + mdi * 2]);
        assert!(f.wants_master());
        // A higher priority master accepted ends it.
        f.handle(ms(18_000), adv(PEER_HIGH, 200, 100));
        assert!(!f.wants_master());
    }

    /// At start: an address owner in a group wants master at once (the group decides:
    /// keepalived starts a group of owners as MASTER); `state MASTER` in a group starts as
    /// backup and asks after one advert interval plus Skew_Time (keepalived's
    /// vrrp_init_state: "allow one adver_int to pass to ensure there is no other master").
    #[test]
    fn sync_group_members_start_as_backup_even_as_owner_or_state_master() {
        let mut owner = Fsm::new(member(255));
        assert_eq!(owner.handle(ms(0), Event::Startup), [Action::Notify(State::Backup), Action::WantMaster]);
        assert!(owner.wants_master());
        assert!(became_master(&owner.handle(ms(1), Event::GoMaster)));
        let mut c = member(100);
        c.start_as_master = true;
        let mut hinted = Fsm::new(c);
        assert_eq!(hinted.handle(ms(0), Event::Startup), [Action::Notify(State::Backup)]);
        let at = ms(1000) + hinted.skew_time();
        assert_eq!(run_until(&mut hinted, ms(2000)), [(at, Action::WantMaster)]);
        // The startup delay holds a member too: it asks when the delay ends.
        let mut held = Fsm::new(member(255));
        held.hold_until(ms(5000));
        assert_eq!(held.handle(ms(0), Event::Startup), [Action::Notify(State::Backup)]);
        assert_eq!(run_until(&mut held, ms(5000)), [(ms(5000), Action::WantMaster)]);
        // A fault ends the wish; recovery waits for the group to leave FAULT, then starts
        // over as backup.
        held.handle(ms(5100), Event::Fault(true));
        assert!(!held.wants_master());
        assert!(held.own_fault() && held.group_fault());
        assert!(held.handle(ms(5200), Event::Fault(false)).is_empty(), "held by its group");
        assert_eq!(held.state(), State::Fault);
        assert!(!held.own_fault());
        assert_eq!(held.handle(ms(5300), Event::GroupFault(false)), [Action::Notify(State::Backup)]);
        assert!(!held.wants_master());
    }

    /// keepalived's `vrrp_sync_fault`: a member put in FAULT by its group leaves MASTER
    /// with a priority 0 advert (as for its own fault), and returns to BACKUP when the group leaves FAULT,
    /// unless it has a fault of its own; one not started yet starts in FAULT.
    #[test]
    fn a_sync_group_member_follows_its_group_into_and_out_of_fault() {
        let mut f = Fsm::new(member(100));
        f.handle(ms(0), Event::Startup);
        f.handle(ms(10), Event::GoMaster);
        assert_eq!(f.state(), State::Master);
        assert_eq!(
            f.handle(ms(100), Event::GroupFault(true)),
            [Action::SendAdvert { priority: 0 }, Action::RemoveVips, Action::Notify(State::Fault)]
        );
        assert_eq!(f.state(), State::Fault);
        assert!(!f.wants_master() && !f.own_fault());
        assert_eq!(f.next_deadline(), None);
        assert!(f.handle(ms(150), Event::GroupFault(true)).is_empty());
        assert!(f.handle(ms(150), Event::GoMaster).is_empty());
        assert_eq!(f.handle(ms(200), Event::GroupFault(false)), [Action::Notify(State::Backup)]);
        assert_eq!(f.next_deadline(), Some(ms(200) + f.master_down_interval()));
        // A fault of its own meanwhile keeps it in FAULT when the group leaves.
        f.handle(ms(300), Event::GroupFault(true));
        f.handle(ms(310), Event::Fault(true));
        assert!(f.handle(ms(400), Event::GroupFault(false)).is_empty());
        assert_eq!(f.state(), State::Fault);
        // The group no longer holds it: its own recovery takes it to BACKUP.
        assert_eq!(f.handle(ms(500), Event::Fault(false)), [Action::Notify(State::Backup)]);
        // Not started yet: starts in FAULT; a backup enters it too.
        let mut g = Fsm::new(member(100));
        assert!(g.handle(ms(0), Event::GroupFault(true)).is_empty());
        assert_eq!(g.handle(ms(0), Event::Startup), [Action::Notify(State::Fault)]);
        let mut b = Fsm::new(member(100));
        b.handle(ms(0), Event::Startup);
        assert_eq!(b.handle(ms(1), Event::GroupFault(true)), [Action::Notify(State::Fault)]);
    }
}
