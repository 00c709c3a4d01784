//! One BFD session's state machine (RFC 5880 asynchronous mode, no echo, no
//! authentication), as a pure function of received packets and time: the I/O lives in
//! [`super::io`], so every rule here is tested with simulated clocks.
//!
//! It follows keepalived 2.2.7's `bfd_handle_packet` and timers, which a keepalived peer
//! expects:
//! - the packets go every `idle_tx` (at least 1 s, RFC 5880's rule for a session not Up)
//!   until the session is Up, then every `min_tx` (each time at least what the peer
//!   requires, `required min RX`), each interval shortened by a random 0–25 % (10–25 %
//!   with a multiplier of 1); going Up with `min_tx` ≠ `idle_tx` starts a Poll sequence,
//!   and the intervals are taken from the peer's packets only while not Up or on its Poll
//!   or Final;
//! - Down → Init on the peer's Down, Down or Init → Up on its Init (or Up, from Init); Up →
//!   Down on its Down or AdminDown, or when a detection time (the peer's multiplier × the
//!   agreed interval) passes without a packet from it;
//! - a Poll is answered at once with Final;
//! - a `passive` session says nothing until it has heard from its peer;
//! - a detection time after going Down the peer's discriminator and state are forgotten
//!   (the session starts afresh, as keepalived's `bfd_reset_state`).
//!
//! Trackers (`track_bfd`) are told when the session comes Up and when it leaves Up, except
//! when the peer took it down administratively (RFC 5882 section 3.2: an AdminDown is no
//! path failure; keepalived does not tell its VRRP process either).

use super::packet::{Diag, Repr, State};
use std::time::{Duration, Instant};

/// A session's timers and role, from its `bfd_instance`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// `min_rx`: the fastest we want the peer to send, microseconds.
    pub min_rx_us: u32,
    /// `min_tx`: how often we would send while Up, microseconds.
    pub min_tx_us: u32,
    /// `idle_tx`: how often we send while not Up, microseconds (≥ 1 s).
    pub idle_tx_us: u32,
    /// `multiplier`: intervals without a packet after which the peer is down.
    pub multiplier: u8,
    /// `passive`: silent until the peer speaks.
    pub passive: bool,
}

/// What a received packet or a timer did to the session, for its trackers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Came Up.
    Up,
    /// Left Up for this reason (not reported when the peer went AdminDown).
    Down(Diag),
}

/// One session.
#[derive(Debug, Clone)]
pub struct Session {
    timers: Timers,
    local_discr: u32,
    state: State,
    diag: Diag,
    remote_discr: u32,
    remote_state: State,
    remote_diag: Diag,
    remote_min_rx_us: u32,
    remote_min_tx_us: u32,
    remote_mult: u8,
    remote_demand: bool,
    poll: bool,
    final_: bool,
    /// The interval we send at (before jitter).
    local_tx_us: u32,
    /// The interval the peer sends at, as agreed.
    remote_tx_us: u32,
    next_tx: Option<Instant>,
    /// Init or Up: when the peer counts as gone. Down: when to forget it.
    deadline: Option<Instant>,
}

impl Session {
    /// A session in Down, with our discriminator `local_discr` (non-zero, unique among
    /// the agent's sessions); its first packet is due at `now` unless it is passive.
    pub fn new(timers: Timers, local_discr: u32, now: Instant) -> Session {
        Session {
            timers,
            local_discr,
            state: State::Down,
            diag: Diag::NONE,
            remote_discr: 0,
            remote_state: State::Down,
            remote_diag: Diag::NONE,
            // RFC 5880 section 6.8.1: bfd.RemoteMinRxInterval starts at 1.
            remote_min_rx_us: 1,
            remote_min_tx_us: 0,
            remote_mult: 0,
            remote_demand: false,
            poll: false,
            final_: false,
            local_tx_us: timers.idle_tx_us,
            remote_tx_us: 0,
            next_tx: (!timers.passive).then_some(now),
            deadline: None,
        }
    }

    /// Our discriminator.
    pub fn local_discr(&self) -> u32 {
        self.local_discr
    }

    /// The session state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Our diagnostic (why the session last went down).
    pub fn diag(&self) -> Diag {
        self.diag
    }

    /// The peer's state as it last said.
    pub fn remote_state(&self) -> State {
        self.remote_state
    }

    /// The peer's diagnostic as it last said (why it went down, if it did).
    pub fn remote_diag(&self) -> Diag {
        self.remote_diag
    }

    /// The peer's discriminator (0: not known).
    pub fn remote_discr(&self) -> u32 {
        self.remote_discr
    }

    /// The time without a packet from the peer after which it is down.
    pub fn detection_time(&self) -> Duration {
        Duration::from_micros(u64::from(self.remote_mult) * u64::from(self.remote_tx_us))
    }

    /// The interval we send at now (before jitter).
    pub fn tx_interval(&self) -> Duration {
        Duration::from_micros(u64::from(self.local_tx_us))
    }

    /// The next time [`Session::poll_timers`] has something to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        match (self.next_tx, self.deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Handles a valid packet from the peer (its TTL and session already checked). Returns
    /// the change for the trackers, and whether a packet must go at once (the answer to a
    /// Poll).
    pub fn receive(&mut self, r: &Repr, now: Instant) -> (Option<Change>, bool) {
        self.remote_discr = r.my_discr;
        self.remote_state = r.state;
        self.remote_diag = r.diag;
        self.remote_min_rx_us = r.min_rx_us;
        self.remote_min_tx_us = r.min_tx_us;
        self.remote_demand = r.demand;
        self.remote_mult = r.detect_mult;
        if r.final_ {
            self.poll = false;
        }
        let old_tx = self.local_tx_us;
        if self.state != State::Up || r.poll || r.final_ {
            self.agree_intervals();
        }
        let mut change = None;
        if r.state == State::AdminDown {
            // RFC 5882 section 3.2: not a failure of the path; the trackers are not told.
            if self.state != State::Down {
                self.go_down(Diag::NEIGHBOR_DOWN, now);
            }
        } else {
            match (self.state, r.state) {
                (State::Down, State::Down) => self.rise(State::Init),
                (State::Down, State::Init) | (State::Init, State::Init | State::Up) => {
                    self.rise(State::Up);
                    change = Some(Change::Up);
                }
                (State::Up, State::Down) => {
                    self.go_down(Diag::NEIGHBOR_DOWN, now);
                    change = Some(Change::Down(Diag::NEIGHBOR_DOWN));
                }
                _ => {}
            }
        }
        if matches!(self.state, State::Init | State::Up) {
            self.deadline = Some(now + self.detection_time());
        } else if self.deadline.is_none() {
            self.deadline = Some(now + self.detection_time().max(self.tx_interval()));
        }
        if !self.periodic() {
            self.next_tx = None;
        } else if self.next_tx.is_none() || self.local_tx_us < old_tx {
            // Not sending yet (passive, demand), or sending faster now: from now.
            self.next_tx = Some(now);
        }
        if r.poll {
            self.final_ = true;
        }
        (change, r.poll)
    }

    /// Whether packets go periodically (RFC 5880 section 6.8.7): not while the peer asks
    /// for none (a required min RX of 0, or demand mode with both Up), nor from a passive
    /// session that knows no peer.
    fn periodic(&self) -> bool {
        let demand = self.remote_demand && self.state == State::Up && self.remote_state == State::Up;
        !demand && self.remote_min_rx_us != 0 && !(self.timers.passive && self.remote_discr == 0)
    }

    /// Stops the periodic packets when they must not go, starts them (at `now`) when they
    /// must and are not going.
    fn rearm(&mut self, now: Instant) {
        match (self.periodic(), self.next_tx) {
            (false, _) => self.next_tx = None,
            (true, None) => self.next_tx = Some(now),
            (true, Some(_)) => {}
        }
    }

    /// Whether a packet the demux handed over may move the session: one without our
    /// discriminator, while the session is Init or Up, must come from the peer it knows
    /// (the same discriminator). Else a packet forging the neighbour's address (possible
    /// from off the link where the TTL rule is relaxed, as keepalived's default IPv6 hop
    /// limit of 64 does) could take the session down; a restarted peer, whose new
    /// discriminator this refuses, is Down here after a detection time anyway.
    pub fn accepts(&self, r: &Repr) -> bool {
        r.your_discr != 0 || !matches!(self.state, State::Init | State::Up) || r.my_discr == self.remote_discr
    }

    /// Takes the intervals from what each side wants (keepalived's
    /// `bfd_update_local_tx_intv` / `bfd_idle_local_tx_intv` and
    /// `bfd_update_remote_tx_intv`).
    fn agree_intervals(&mut self) {
        let ours = match (self.remote_state, self.state) {
            (State::Up, State::Init | State::Up) => self.timers.min_tx_us,
            _ => self.timers.idle_tx_us,
        };
        self.local_tx_us = ours.max(self.remote_min_rx_us);
        self.remote_tx_us = self.timers.min_rx_us.max(self.remote_min_tx_us);
    }

    fn rise(&mut self, to: State) {
        self.state = to;
        self.diag = Diag::NONE;
        if to == State::Up && self.timers.idle_tx_us != self.timers.min_tx_us && !self.final_ {
            self.poll = true;
        }
    }

    fn go_down(&mut self, diag: Diag, now: Instant) {
        self.state = State::Down;
        self.diag = diag;
        self.local_tx_us = self.timers.idle_tx_us.max(self.remote_min_rx_us);
        self.rearm(now);
        self.deadline = Some(now + self.detection_time().max(self.tx_interval()));
    }

    /// Runs what is due at `now`: the detection timer (Init or Up without a packet for a
    /// detection time: Down, "expired") and, in Down, forgetting the peer. Returns the
    /// change for the trackers.
    pub fn poll_timers(&mut self, now: Instant) -> Option<Change> {
        if self.deadline.is_none_or(|d| d > now) {
            return None;
        }
        self.deadline = None;
        match self.state {
            State::Init | State::Up => {
                let was_up = self.state == State::Up;
                // RFC 5880 section 6.8.1: the peer's discriminator is forgotten.
                self.remote_discr = 0;
                self.go_down(Diag::EXPIRED, now);
                was_up.then_some(Change::Down(Diag::EXPIRED))
            }
            State::Down | State::AdminDown => {
                self.remote_discr = 0;
                self.remote_state = State::Down;
                self.remote_demand = false;
                self.remote_min_rx_us = 1;
                self.poll = false;
                self.final_ = false;
                self.local_tx_us = self.timers.idle_tx_us;
                // A passive session falls silent again (RFC 5880 section 6.8.7); an
                // active one silenced by its peer (min RX 0, demand) speaks again.
                self.rearm(now);
                None
            }
        }
    }

    /// Whether a periodic packet is due at `now`.
    pub fn tx_due(&self, now: Instant) -> bool {
        self.next_tx.is_some_and(|t| t <= now)
    }

    /// The packet to send now; schedules the next one `tx_interval` less `jitter` (a
    /// random fraction in 0..1 of the RFC's allowed range) later.
    pub fn send(&mut self, now: Instant, jitter: f64) -> Repr {
        if self.poll && self.final_ {
            // Answering a Poll while wanting one: the parameters go with the Final.
            self.poll = false;
        }
        let r = Repr {
            diag: self.diag,
            state: self.state,
            poll: self.poll,
            final_: self.final_,
            cpi: false,
            demand: false,
            detect_mult: self.timers.multiplier,
            my_discr: self.local_discr,
            your_discr: self.remote_discr,
            min_tx_us: if self.state == State::Up { self.timers.min_tx_us } else { self.timers.idle_tx_us },
            min_rx_us: self.timers.min_rx_us,
            min_echo_rx_us: 0,
        };
        self.final_ = false;
        // RFC 5880 section 6.8.7: 0-25 % shorter; with a multiplier of 1, 10-25 %.
        let (lo, hi) = if self.timers.multiplier == 1 { (0.10, 0.25) } else { (0.0, 0.25) };
        let cut = lo + (hi - lo) * jitter.clamp(0.0, 1.0);
        self.next_tx = self.periodic().then(|| now + self.tx_interval().mul_f64(1.0 - cut));
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u32 = 1000;

    fn timers(min: u32, mult: u8) -> Timers {
        Timers { min_rx_us: min * MS, min_tx_us: min * MS, idle_tx_us: 1000 * MS, multiplier: mult, passive: false }
    }

    /// `x`'s turn at `t`: its timers, then what it sends, delivered to `y` when `live`
    /// (and `y`'s answer to a Poll back to `x`). Changes go to `cx` and `cy`.
    fn turn(x: &mut Session, y: &mut Session, t: Instant, live: bool, cx: &mut Vec<Change>, cy: &mut Vec<Change>) {
        cx.extend(x.poll_timers(t));
        while x.tx_due(t) {
            let p = x.send(t, 0.5);
            if live {
                let p = Repr::parse(&p.emit()).expect("a valid packet");
                let (c, answer) = y.receive(&p, t);
                cy.extend(c);
                if answer {
                    let f = y.send(t, 0.5);
                    cx.extend(x.receive(&f, t).0);
                }
            }
        }
    }

    /// Two sessions exchanging every packet they send, over `for_` in 1 ms steps; `cut`
    /// stops delivery from `b` from that time on. Returns both sides' tracker changes.
    fn run(a: &mut Session, b: &mut Session, t0: Instant, for_: Duration, cut: Option<Duration>) -> [Vec<Change>; 2] {
        let (mut ca, mut cb) = (Vec::new(), Vec::new());
        let mut t = t0;
        while t < t0 + for_ {
            turn(a, b, t, true, &mut ca, &mut cb);
            let live = cut.is_none_or(|c| t < t0 + c);
            turn(b, a, t, live, &mut cb, &mut ca);
            t += Duration::from_millis(1);
        }
        [ca, cb]
    }

    #[test]
    fn two_sessions_come_up_and_agree_on_the_faster_interval() {
        let t0 = Instant::now();
        let mut a = Session::new(timers(50, 3), 0x1111, t0);
        let mut b = Session::new(timers(100, 5), 0x2222, t0);
        let [ca, cb] = run(&mut a, &mut b, t0, Duration::from_secs(3), None);
        assert_eq!((a.state(), b.state()), (State::Up, State::Up));
        assert_eq!((ca, cb), (vec![Change::Up], vec![Change::Up]));
        assert_eq!((a.remote_discr(), b.remote_discr()), (0x2222, 0x1111));
        // a sends at max(its 50, b's 100 rx) = 100 ms; b at max(100, 50) = 100 ms; each
        // detects the other after its multiplier x that interval.
        assert_eq!((a.tx_interval(), b.tx_interval()), (Duration::from_millis(100), Duration::from_millis(100)));
        assert_eq!(a.detection_time(), Duration::from_millis(500), "b's multiplier 5 x 100 ms");
        assert_eq!(b.detection_time(), Duration::from_millis(300), "a's multiplier 3 x 100 ms");
    }

    #[test]
    fn a_silent_peer_is_down_after_the_detection_time_and_forgotten_later() {
        let t0 = Instant::now();
        let mut a = Session::new(timers(50, 3), 1, t0);
        let mut b = Session::new(timers(50, 3), 2, t0);
        // Up within 3 s; b falls silent at 3 s.
        let [ca, _] = run(&mut a, &mut b, t0, Duration::from_millis(3200), Some(Duration::from_secs(3)));
        assert_eq!(ca, vec![Change::Up, Change::Down(Diag::EXPIRED)]);
        assert_eq!((a.state(), a.diag()), (State::Down, Diag::EXPIRED));
        assert_eq!(a.remote_discr(), 0, "RFC 5880: forgotten at expiry");
        assert_eq!(a.tx_interval(), Duration::from_secs(1), "back to idle_tx");
    }

    #[test]
    fn the_peer_s_down_takes_the_session_down_and_its_admin_down_tells_no_tracker() {
        let t0 = Instant::now();
        let mut a = Session::new(timers(50, 3), 1, t0);
        let mut b = Session::new(timers(50, 3), 2, t0);
        run(&mut a, &mut b, t0, Duration::from_secs(3), None);
        let t = t0 + Duration::from_secs(3);
        let down = Repr { state: State::Down, diag: Diag::EXPIRED, ..b.send(t, 0.0) };
        assert_eq!(a.receive(&down, t).0, Some(Change::Down(Diag::NEIGHBOR_DOWN)));
        assert_eq!(a.state(), State::Down);

        let mut a = Session::new(timers(50, 3), 1, t0);
        let mut b = Session::new(timers(50, 3), 2, t0);
        run(&mut a, &mut b, t0, Duration::from_secs(3), None);
        let admin = Repr { state: State::AdminDown, diag: Diag::ADMIN_DOWN, ..b.send(t, 0.0) };
        assert_eq!(a.receive(&admin, t).0, None, "RFC 5882: AdminDown is no path failure");
        assert_eq!((a.state(), a.diag()), (State::Down, Diag::NEIGHBOR_DOWN));
    }

    #[test]
    fn a_poll_is_answered_with_final_and_going_up_polls() {
        let t0 = Instant::now();
        let mut a = Session::new(timers(50, 3), 1, t0);
        let mut b = Session::new(timers(50, 3), 2, t0);
        let hello = b.send(t0, 0.0);
        assert_eq!((hello.state, hello.your_discr, hello.min_tx_us), (State::Down, 0, 1_000_000));
        assert_eq!(a.receive(&hello, t0), (None, false));
        assert_eq!(a.state(), State::Init);
        let init = a.send(t0, 0.0);
        assert_eq!((init.state, init.your_discr), (State::Init, 2));
        assert_eq!(b.receive(&init, t0).0, Some(Change::Up));
        // b came Up with min_tx 50 ms != idle_tx 1 s: it polls, with its Up interval.
        let up = b.send(t0, 0.0);
        assert!(up.poll && !up.final_);
        assert_eq!(up.min_tx_us, 50_000);
        assert_eq!(a.receive(&up, t0), (Some(Change::Up), true));
        let fin = a.send(t0, 0.0);
        assert!(fin.final_ && !fin.poll, "the answer carries Final, its own poll waits");
        assert_eq!(b.receive(&fin, t0), (None, false));
        assert!(!b.send(t0, 0.0).poll, "b's poll sequence ended");
        assert!(!a.send(t0, 0.0).poll, "a came Up too: its new interval went with the Final (as keepalived)");
        assert_eq!(fin.min_tx_us, 50_000, "the Final carries a's Up interval");
    }

    #[test]
    fn a_passive_session_is_silent_until_spoken_to() {
        let t0 = Instant::now();
        let mut p = Session::new(Timers { passive: true, ..timers(50, 3) }, 1, t0);
        assert!(!p.tx_due(t0 + Duration::from_secs(10)));
        assert_eq!(p.next_deadline(), None);
        let mut b = Session::new(timers(50, 3), 2, t0);
        p.receive(&b.send(t0, 0.0), t0);
        assert!(p.tx_due(t0), "heard: answers at once");
        assert_eq!(p.state(), State::Init);
    }

    /// After a detection time in Down the peer is forgotten (its discriminator, its
    /// intervals), and a passive session falls silent again; the peer taking a session
    /// down by saying Down re-arms nothing on its later packets.
    #[test]
    fn down_forgets_the_peer_after_a_detection_time_and_a_passive_session_falls_silent() {
        let t0 = Instant::now();
        let mut p = Session::new(Timers { passive: true, ..timers(50, 3) }, 1, t0);
        let mut b = Session::new(timers(50, 3), 2, t0);
        run(&mut p, &mut b, t0, Duration::from_secs(3), None);
        assert_eq!(p.state(), State::Up);
        let t = t0 + Duration::from_secs(3);
        let down = Repr { state: State::Down, ..b.send(t, 0.0) };
        assert_eq!(p.receive(&down, t).0, Some(Change::Down(Diag::NEIGHBOR_DOWN)));
        assert_eq!(p.remote_discr(), 2, "known until forgotten");
        let forget = p.next_deadline().expect("the forget deadline");
        // The peer's later Down packets leave the deadline where it is.
        let later = t + Duration::from_millis(100);
        let mut again = Repr { state: State::AdminDown, ..down };
        again.diag = Diag::ADMIN_DOWN;
        p.receive(&again, later);
        assert!(p.next_deadline().is_some_and(|d| d <= forget.max(later)));
        let t2 = forget.max(later) + Duration::from_secs(2);
        assert_eq!(p.poll_timers(t2), None);
        assert_eq!((p.remote_discr(), p.remote_state()), (0, State::Down));
        assert_eq!(p.tx_interval(), Duration::from_secs(1));
        let after = t2 + Duration::from_secs(60);
        while p.tx_due(after) {
            p.send(after, 0.0);
        }
        assert!(!p.tx_due(after) && p.next_deadline().is_none(), "passive and no peer: silent (RFC 5880 6.8.7)");
    }

    /// A peer asking for no packets (required min RX 0) gets none periodically; a packet
    /// without our discriminator from another discriminator than the peer's is refused
    /// while Init or Up.
    #[test]
    fn zero_min_rx_stops_periodic_packets_and_an_unknown_discriminator_is_refused_while_up() {
        let t0 = Instant::now();
        let mut a = Session::new(timers(50, 3), 1, t0);
        let mut b = Session::new(timers(50, 3), 2, t0);
        run(&mut a, &mut b, t0, Duration::from_secs(3), None);
        let t = t0 + Duration::from_secs(3);
        let quiet = Repr { min_rx_us: 0, ..b.send(t, 0.0) };
        a.receive(&quiet, t);
        assert!(!a.tx_due(t + Duration::from_secs(10)), "no periodic packet while the peer wants none");
        let forged = Repr { state: State::Down, your_discr: 0, my_discr: 99, ..quiet };
        assert!(!a.accepts(&forged), "not the peer's discriminator, not ours");
        assert!(a.accepts(&Repr { my_discr: 2, ..forged }), "the peer itself, without our discriminator");
        assert!(a.accepts(&Repr { your_discr: 1, ..forged }), "ours named: the demux chose the session by it");
        // The peer gone quiet for good: Down at expiry, and once forgotten an active session
        // speaks again.
        let t2 = t + Duration::from_secs(10);
        assert_eq!(a.poll_timers(t2), Some(Change::Down(Diag::EXPIRED)));
        let t3 = t2 + Duration::from_secs(5);
        assert_eq!(a.poll_timers(t3), None);
        assert!(a.tx_due(t3), "an active session without a peer sends its Down packets again");
        let mut fresh = Session::new(timers(50, 3), 3, t0);
        assert!(fresh.accepts(&forged), "Down: any peer may start the session");
        fresh.receive(&forged, t);
        assert_eq!(fresh.state(), State::Init);
    }

    #[test]
    fn jitter_shortens_by_up_to_a_quarter_and_by_a_tenth_with_multiplier_one() {
        let t0 = Instant::now();
        let mut a = Session::new(timers(50, 3), 1, t0);
        a.send(t0, 1.0);
        assert_eq!(a.next_deadline(), Some(t0 + Duration::from_millis(750)));
        a.send(t0, 0.0);
        assert_eq!(a.next_deadline(), Some(t0 + Duration::from_secs(1)));
        let mut one = Session::new(timers(50, 1), 1, t0);
        one.send(t0, 0.0);
        assert_eq!(one.next_deadline(), Some(t0 + Duration::from_millis(900)));
    }
}
