//! keepalived's `vrrp_sync_group`: the members of a group move between MASTER and BACKUP
//! together, and the group has notify scripts and FIFO lines of its own.
//!
//! As keepalived 2.2.7 (`vrrp_sync.c`, `vrrp_scheduler.c`'s transition table,
//! `vrrp_notify.c`'s `send_group_notifies`):
//! * a member whose Master_Down_Timer (or preemption) runs out becomes MASTER only when
//!   the group is MASTER already or every other running member wants MASTER too (its own
//!   timer ran out, or it is MASTER); otherwise it stays BACKUP and re-arms its timer
//!   ("prefer backup state to avoid thrashing", `vrrp_sync_can_goto_master`). When one
//!   member goes MASTER the others go MASTER at once (`vrrp_sync_master`);
//! * when a MASTER member leaves for BACKUP (it heard a higher priority) every other MASTER
//!   member leaves MASTER too, without a priority 0 advert (`vrrp_sync_backup`, which
//!   calls `vrrp_state_leave_master(isync, false)`);
//! * a member with a fault of its own (a weight-0 tracked object, its interface) puts the
//!   group in FAULT and every other member with it, a MASTER one leaving MASTER with a
//!   priority 0 advert (`vrrp_sync_fault`: `vrrp_state_leave_master` sends one for FAULT;
//!   [`Command::Fault`]); the group leaves FAULT,
//!   every member returning to BACKUP, once no member has a fault of its own any more
//!   (`try_up_instance`'s `num_member_fault` back to 0, then `vrrp_sync_backup`:
//!   [`Command::LeaveFault`]). A member whose own fault ends while another's remains
//!   stays in FAULT, as keepalived;
//! * on each change of the group's state its `notify_master` / `notify_backup` /
//!   `notify_fault` / `notify_stop` runs, its generic `notify` runs with `GROUP NAME
//!   STATE 0` (keepalived gives a group priority 0), and the notify FIFO gets `GROUP
//!   "NAME" STATE 0`. The first is BACKUP (or FAULT) once every member has started
//!   (keepalived's `vrrp_init_state`), the last STOP once every member has stopped.
//!
//! Each member's task holds a [`Membership`]: it asks the group before becoming MASTER
//! ([`Membership::want_master`]), reports the states it enters ([`Membership::entered`])
//! and whether it wants MASTER and has a fault of its own ([`Membership::report`]), and
//! reads the group's
//! [`Command`]s. The group is a [`SyncGroup`] behind a mutex, held only for those calls.

use super::fsm::{Event, State};
use crate::agent::fifo::Notifier;
use crate::keepalived::config::Notify;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::mpsc;

/// What a group tells one of its members to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Become MASTER (another member did): [`Event::GoMaster`].
    Master,
    /// Leave MASTER for BACKUP (another member did): [`Event::GoBackup`].
    Backup,
    /// Enter FAULT (a member has a fault of its own): [`Event::GroupFault`] `(true)`.
    Fault,
    /// Leave FAULT for BACKUP, unless the member has a fault of its own (no member has one
    /// any more): [`Event::GroupFault`] `(false)`.
    LeaveFault,
}

impl Command {
    /// The state machine's event for the command.
    pub fn event(self) -> Event {
        match self {
            Command::Master => Event::GoMaster,
            Command::Backup => Event::GoBackup,
            Command::Fault => Event::GroupFault(true),
            Command::LeaveFault => Event::GroupFault(false),
        }
    }
}

/// A member as the group sees it.
#[derive(Debug)]
struct Member {
    name: String,
    /// The state it last entered (Initialize: not started yet, or stopped).
    state: State,
    /// It has entered a state since it started.
    ran: bool,
    /// keepalived's `wantstate == MASTER` (see [`super::fsm::Fsm::wants_master`]).
    wants: bool,
    /// It has a fault of its own (see [`super::fsm::Fsm::own_fault`]).
    own_fault: bool,
    tx: mpsc::UnboundedSender<Command>,
}

#[derive(Debug)]
struct Inner {
    /// The group's state (keepalived's `sgroup->state`); Initialize before every member
    /// started, and again once every member stopped.
    state: State,
    /// The state last notified (none before the first notify).
    notified: Option<State>,
    /// The state last mailed (keepalived's `last_email_state`).
    mailed: Option<State>,
    members: Vec<Member>,
}

/// One running `vrrp_sync_group`: its members' states and what they want.
#[derive(Debug)]
pub struct SyncGroup {
    name: String,
    notify: Notify,
    fifos: Arc<Notifier>,
    inner: Mutex<Inner>,
}

/// A member's handle on its group (one per member's task).
#[derive(Debug)]
pub struct Membership {
    group: Arc<SyncGroup>,
    index: usize,
    rx: mpsc::UnboundedReceiver<Command>,
}

impl SyncGroup {
    /// A group of the running instances `members` (members that are not running, such as
    /// ones a config id filtered out, are left out by the caller: they do not count).
    /// `resumed`: the members carry on in these states across a reload (see
    /// [`crate::vrrp::instance::Instance::resume`]), and so does the group, as keepalived's
    /// `vrrp_complete_init`: MASTER when every member is, FAULT when one is, else BACKUP;
    /// nothing is notified for it. Returns the group and each member's [`Membership`], in
    /// the order of `members`.
    pub fn new(
        name: &str,
        notify: Notify,
        fifos: Arc<Notifier>,
        members: &[String],
        resumed: Option<&[State]>,
    ) -> (Arc<SyncGroup>, Vec<Membership>) {
        let mut rxs = Vec::new();
        let members: Vec<Member> = members
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let (tx, rx) = mpsc::unbounded_channel();
                rxs.push(rx);
                let state = resumed.and_then(|r| r.get(i).copied()).unwrap_or(State::Initialize);
                let ran = state != State::Initialize;
                // A member resumed in FAULT counts as faulty until it reports otherwise, so
                // that the group leaves FAULT once none is.
                let own_fault = state == State::Fault;
                Member { name: m.clone(), state, ran, wants: state == State::Master, own_fault, tx }
            })
            .collect();
        let (state, notified) = match resumed {
            Some(r) if !r.is_empty() && r.iter().all(|s| *s == State::Master) => (State::Master, Some(State::Master)),
            Some(r) if r.contains(&State::Fault) => (State::Fault, Some(State::Fault)),
            // Mixed MASTER and BACKUP (a member changed while another stopped): BACKUP,
            // its MASTER members going BACKUP (see Instance::resume).
            Some(_) => (State::Backup, Some(State::Backup)),
            None => (State::Initialize, None),
        };
        let group = Arc::new(SyncGroup {
            name: name.to_string(),
            notify,
            fifos,
            inner: Mutex::new(Inner { state, notified, mailed: None, members }),
        });
        let ms =
            rxs.into_iter().enumerate().map(|(index, rx)| Membership { group: group.clone(), index, rx }).collect();
        (group, ms)
    }

    /// The group's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group's state (Initialize before every member started and after they stopped).
    pub fn state(&self) -> State {
        self.lock().state
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// keepalived's `vrrp_sync_can_goto_master` and `vrrp_sync_master`.
    fn want_master(&self, index: usize) -> bool {
        let mut g = self.lock();
        g.members[index].wants = true;
        if g.state == State::Master {
            return true;
        }
        if g.state == State::Fault {
            return false;
        }
        let waiting: Vec<&str> = g
            .members
            .iter()
            .enumerate()
            .filter(|(i, m)| *i != index && !m.wants && m.state != State::Master)
            .map(|(_, m)| m.name.as_str())
            .collect();
        if !waiting.is_empty() {
            // Every Master_Down_Interval while another member hears its master: debug only.
            tracing::debug!(
                group = %self.name,
                instance = %g.members[index].name,
                waiting = ?waiting,
                "VRRP_Group: not every member wants MASTER: staying BACKUP"
            );
            return false;
        }
        tracing::info!(group = %self.name, "VRRP_Group: syncing instances to MASTER state");
        for (i, m) in g.members.iter_mut().enumerate() {
            if i != index && m.state != State::Master {
                m.wants = true;
                let _ = m.tx.send(Command::Master);
            }
        }
        // Notified when the member enters MASTER (after its own notifies, as keepalived).
        g.state = State::Master;
        true
    }

    /// The group leaves MASTER for BACKUP: keepalived's `vrrp_sync_backup`.
    fn sync_backup(&self, g: &mut Inner, index: usize) {
        tracing::info!(group = %self.name, "VRRP_Group: syncing instances to BACKUP state");
        for (i, m) in g.members.iter_mut().enumerate() {
            if i != index && m.state == State::Master {
                m.wants = false;
                let _ = m.tx.send(Command::Backup);
            }
        }
        g.state = State::Backup;
    }

    /// A member's wish for MASTER and own fault, after each of its events: a fault of
    /// its own puts the group in FAULT, the last one ending takes it out.
    fn report(&self, index: usize, wants: bool, own_fault: bool) {
        let mut g = self.lock();
        g.members[index].wants = wants;
        let had = std::mem::replace(&mut g.members[index].own_fault, own_fault);
        if own_fault && !had {
            self.sync_fault(&mut g, index);
        } else if had && !own_fault && g.state == State::Fault && !g.members.iter().any(|m| m.own_fault) {
            self.leave_fault(&mut g);
        }
    }

    /// keepalived's `vrrp_sync_fault`: every member (the one at fault too, so that its
    /// recovery waits for the group's) is put in FAULT. The group's notifies follow when a
    /// member enters FAULT (after the member's own, as keepalived).
    fn sync_fault(&self, g: &mut Inner, index: usize) {
        if g.state != State::Fault {
            tracing::info!(group = %self.name, instance = %g.members[index].name, "VRRP_Group: a member is in FAULT: syncing instances to FAULT state");
            g.state = State::Fault;
        }
        for m in g.members.iter_mut() {
            m.wants = false;
            let _ = m.tx.send(Command::Fault);
        }
    }

    /// No member has a fault of its own any more: the group leaves FAULT for BACKUP and
    /// every member with it (keepalived's `try_up_instance` then `vrrp_sync_backup`). The
    /// group's notifies follow when a member enters BACKUP.
    fn leave_fault(&self, g: &mut Inner) {
        tracing::info!(group = %self.name, "VRRP_Group: no member in FAULT: syncing instances to BACKUP state");
        for m in &g.members {
            let _ = m.tx.send(Command::LeaveFault);
        }
        g.state = State::Backup;
    }

    fn entered(&self, index: usize, state: State) {
        let mut g = self.lock();
        let prev = std::mem::replace(&mut g.members[index].state, state);
        if state != State::Initialize {
            g.members[index].ran = true;
        }
        let all_ran = g.members.iter().all(|m| m.ran);
        let any_fault = g.members.iter().any(|m| m.own_fault);
        match state {
            State::Master => {
                g.members[index].wants = true;
                if g.state != State::Master {
                    // A command crossed a change of the group: it leaves again.
                    tracing::info!(group = %self.name, instance = %g.members[index].name, "VRRP_Group: not MASTER: the member leaves MASTER");
                    let _ = g.members[index].tx.send(Command::Backup);
                }
            }
            State::Backup => match g.state {
                State::Initialize if all_ran && prev != State::Master => {
                    g.state = if any_fault { State::Fault } else { State::Backup };
                }
                State::Master => self.sync_backup(&mut g, index),
                _ => {}
            },
            // The group entered FAULT when the fault was reported (Membership::report).
            State::Fault => {}
            State::Initialize => {
                // A stopped member does not count.
                g.members[index].own_fault = false;
                if g.members.iter().all(|m| m.ran && m.state == State::Initialize) {
                    g.state = State::Initialize;
                }
            }
        }
        // Notified once every member has started (BACKUP or FAULT first), and STOP once
        // every member has stopped.
        let stopped = g.state == State::Initialize && g.notified.is_some() && g.members.iter().all(|m| m.ran);
        if (g.state != State::Initialize || stopped) && g.notified != Some(g.state) {
            let s = g.state;
            g.notified = Some(s);
            if stopped {
                // Once only: a group is not started again (a reload makes a new one).
                g.members.iter_mut().for_each(|m| m.ran = false);
            }
            self.notify(s, &mut g.mailed);
        }
    }

    /// keepalived's `send_group_notifies`: the state's script, the generic one (`GROUP
    /// NAME STATE 0`) and the FIFO line (`GROUP "NAME" STATE 0`).
    /// Then the mail ([`crate::agent::mail::Mailer::send_vrrp`]).
    fn notify(&self, state: State, mailed: &mut Option<State>) {
        let n = &self.notify;
        let (specific, word) = match state {
            State::Master => (n.master.clone(), "MASTER"),
            State::Backup => (n.backup.clone(), "BACKUP"),
            State::Fault => (n.fault.clone(), "FAULT"),
            State::Initialize => (n.stop.clone(), "STOP"),
        };
        tracing::info!(group = %self.name, "VRRP_Group: entering {word} state");
        let generic = n.any.as_ref().map(|s| s.with_args(&format!("GROUP {} {word} 0", self.name)));
        for cmd in specific.into_iter().chain(generic) {
            crate::script::spawn(cmd);
        }
        self.fifos.vrrp(&format!("GROUP \"{}\" {word} 0\n", self.name));
        self.fifos.mail.send_vrrp(true, &self.name, state, mailed);
    }
}

impl Membership {
    /// The group.
    pub fn group(&self) -> &Arc<SyncGroup> {
        &self.group
    }

    /// The member's Master_Down_Timer (or preemption) ran out: whether it may become
    /// MASTER now (the group is MASTER, or every other member wants MASTER too). When it
    /// may, the others are told to become MASTER too ([`Command::Master`]).
    pub fn want_master(&self) -> bool {
        self.group.want_master(self.index)
    }

    /// The member entered `state` (its notifies are sent): the group follows (a MASTER
    /// member leaving for BACKUP takes the others out of MASTER, [`Command::Backup`]) and
    /// sends its own notifies when its state changes. Initialize: the member stopped.
    pub fn entered(&self, state: State) {
        self.group.entered(self.index, state);
    }

    /// Whether the member wants MASTER now ([`super::fsm::Fsm::wants_master`]) and has a
    /// fault of its own ([`super::fsm::Fsm::own_fault`]): reported after every event, so
    /// that another member deciding for the group sees it. A fault of its own beginning
    /// puts the group in FAULT ([`Command::Fault`] to every member); the last one ending
    /// takes it out ([`Command::LeaveFault`]).
    pub fn report(&self, wants: bool, own_fault: bool) {
        self.group.report(self.index, wants, own_fault);
    }

    /// The group's next command for this member.
    pub async fn recv(&mut self) -> Command {
        match self.rx.recv().await {
            Some(c) => c,
            // The group holds every sender while a membership exists.
            None => std::future::pending().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(n: usize) -> (Arc<SyncGroup>, Vec<Membership>) {
        let names: Vec<String> = (0..n).map(|i| format!("I{i}")).collect();
        SyncGroup::new("G", Notify::default(), Arc::new(Notifier::default()), &names, None)
    }

    fn cmds(m: &mut Membership) -> Vec<Command> {
        let mut v = Vec::new();
        while let Ok(c) = m.rx.try_recv() {
            v.push(c);
        }
        v
    }

    /// A group carried over a reload: MASTER when every member was, FAULT when one was
    /// (left once no member reports a fault of its own), else BACKUP; nothing notified.
    #[tokio::test]
    async fn a_resumed_group_takes_its_members_states() {
        let resumed = |states: &[State]| {
            let names: Vec<String> = (0..states.len()).map(|i| format!("I{i}")).collect();
            SyncGroup::new("G", Notify::default(), Arc::new(Notifier::default()), &names, Some(states))
        };
        use State::{Backup, Fault, Master};
        assert_eq!(resumed(&[Master, Master]).0.state(), Master);
        assert_eq!(resumed(&[Master, Backup]).0.state(), Backup);
        let (g, mut ms) = resumed(&[Fault, Master]);
        assert_eq!(g.state(), Fault);
        // The member that was in FAULT reports no fault of its own any more: the group
        // leaves FAULT (no member has one).
        ms[1].report(false, false);
        assert_eq!(g.state(), Fault);
        ms[0].report(false, false);
        assert_eq!(g.state(), Backup);
        assert_eq!(cmds(&mut ms[1]), [Command::LeaveFault]);
        // Already master: a member asking again is granted at once.
        let (_, ms) = resumed(&[Master, Master]);
        assert!(ms[0].want_master());
    }

    /// The group's decisions: MASTER only when every member wants it; a MASTER member
    /// leaving for BACKUP takes the others with it; FAULT and back; STOP once all stopped.
    #[tokio::test]
    async fn members_move_together() {
        let (g, mut ms) = group(2);
        assert_eq!(g.state(), State::Initialize);
        ms[0].entered(State::Backup);
        assert_eq!(g.state(), State::Initialize, "not every member started");
        ms[1].entered(State::Backup);
        assert_eq!(g.state(), State::Backup);
        // The first wants MASTER alone: refused.
        assert!(!ms[0].want_master());
        assert!(cmds(&mut ms[1]).is_empty());
        // The second heard a master's advert, then its timer too ran out.
        ms[1].report(false, false);
        assert!(!ms[0].want_master());
        assert!(ms[1].want_master());
        assert_eq!(cmds(&mut ms[0]), [Command::Master]);
        assert_eq!(g.state(), State::Master);
        ms[1].entered(State::Master);
        ms[0].entered(State::Master);
        // The first hears a higher priority: the second leaves MASTER.
        ms[0].entered(State::Backup);
        assert_eq!(cmds(&mut ms[1]), [Command::Backup]);
        assert_eq!(g.state(), State::Backup);
        ms[1].entered(State::Backup);
        assert!(cmds(&mut ms[0]).is_empty());
        // Faults: the first has one, every member is told to enter FAULT.
        ms[0].report(false, true);
        assert_eq!(g.state(), State::Fault);
        assert_eq!(cmds(&mut ms[0]), [Command::Fault]);
        assert_eq!(cmds(&mut ms[1]), [Command::Fault]);
        ms[0].entered(State::Fault);
        ms[1].entered(State::Fault);
        assert!(!ms[1].want_master(), "no MASTER while in FAULT");
        // The second gets one too; the first's ends: still FAULT, nothing sent.
        ms[1].report(false, true);
        assert_eq!(cmds(&mut ms[0]), [Command::Fault]);
        cmds(&mut ms[1]);
        ms[0].report(false, false);
        assert_eq!(g.state(), State::Fault, "a member still has a fault");
        assert!(cmds(&mut ms[0]).is_empty() && cmds(&mut ms[1]).is_empty());
        // The last ends: every member leaves FAULT.
        ms[1].report(false, false);
        assert_eq!(g.state(), State::Backup);
        assert_eq!(cmds(&mut ms[0]), [Command::LeaveFault]);
        assert_eq!(cmds(&mut ms[1]), [Command::LeaveFault]);
        ms[0].entered(State::Backup);
        ms[1].entered(State::Backup);
        assert_eq!(g.state(), State::Backup);
        // Stop.
        ms[0].entered(State::Initialize);
        assert_eq!(g.state(), State::Backup);
        ms[1].entered(State::Initialize);
        assert_eq!(g.state(), State::Initialize);
    }
}
