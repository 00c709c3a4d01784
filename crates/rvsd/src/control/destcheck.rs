//! The passive check's judgement (DPVS's `--dest-check`, [`fnat::destcheck`]): the
//! control thread counts the workers' DOWN and UP reports per real server, takes a
//! server out of scheduling when `down_retry` failures come within `down_wait`, and
//! lets it back in when its time out ends. The time out doubles at each new failure
//! and halves at each UP report after a reopening, within `inhibit_min..inhibit_max`
//! (DPVS's master lcore, `msg_cb_notify_master`); a server let back in that has not
//! failed for `inhibit_max` seconds starts afresh (its time out back to `inhibit_min`).
//! In the down-only form a server taken out stays out until its weight is set again
//! (`rvsadm -e ... -w`, even to the same value; a health checker's change; a reload
//! that changes it).
//!
//! The decision is a mark per real server ([`DestMark`]) that every generation built
//! from then on carries ([`crate::state::State::marks`]): the configured weight is
//! never touched, so `rvsadm -S`, a reload or rvs-agent's reconciliation keep it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ctl::{ErrorCode, Response, ServiceSpec};
use fnat::destcheck::{DestCheck, DestMark};
use fnat::engine::destcheck::DestReport;
use fnat::service::{DestMarks, ServiceKey, ServiceTable};

use super::Control;

/// A real server by service and address (stable across generations, unlike `RsId`
/// when a server is removed and added back, which starts it afresh as DPVS does).
type DestKey = (ServiceKey, SocketAddr);

/// Where a server stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// In scheduling, never taken out (or not for `inhibit_max` seconds).
    Normal,
    /// Taken out until then (`None`: down only, until its weight is set).
    Inhibited(Option<Instant>),
    /// Let back in after a time out, then.
    Reopened(Instant),
}

/// One real server's account.
#[derive(Debug, Clone, Copy)]
struct Entry {
    phase: Phase,
    /// Failures counted in the current window, and when the window closes.
    downs: u8,
    window_end: Option<Instant>,
    /// The next time out, in seconds.
    inhibit_s: u32,
}

/// The passive check's state: every real server it has heard of.
#[derive(Debug, Clone, Default)]
pub struct DestChecker {
    dests: HashMap<DestKey, Entry>,
    /// The marks changed since the generation running was built.
    dirty: bool,
    /// Not before then (a generation with the marks was refused: tried again later).
    retry_at: Option<Instant>,
}

/// How long after a refused generation the marks are published again.
const RETRY: Duration = Duration::from_secs(1);

impl DestChecker {
    /// A worker's report about real server `rep.rs` of the running `table`. Reports of
    /// servers no longer there, of services without the check, or of servers out of
    /// scheduling (taken out, or weight 0) are ignored.
    pub fn report(&mut self, table: &ServiceTable, rep: DestReport, now: Instant) {
        let Some((svc, i)) = table.locate(rep.rs) else { return };
        let s = table.service(svc);
        let Some(check) = s.config.dest_check else { return };
        let d = &s.dests[i];
        let key = (s.key, SocketAddr::new(d.addr, d.port));
        let e = self.dests.entry(key).or_insert(Entry {
            phase: Phase::Normal,
            downs: 0,
            window_end: None,
            inhibit_s: u32::from(check.inhibit_min),
        });
        if rep.up {
            if matches!(e.phase, Phase::Reopened(_)) {
                e.inhibit_s = (e.inhibit_s / 2).max(u32::from(check.inhibit_min));
            }
            return;
        }
        if matches!(e.phase, Phase::Inhibited(_)) || d.weight == 0 {
            return;
        }
        if e.window_end.is_some_and(|t| t <= now) {
            e.downs = 0;
            e.window_end = None;
        }
        e.downs = e.downs.saturating_add(1);
        if e.downs == 1 && check.down_retry > 1 {
            e.window_end = Some(now + Duration::from_secs(u64::from(check.down_wait)));
        }
        if e.downs < check.down_retry {
            return;
        }
        let failed = e.downs;
        e.downs = 0;
        e.window_end = None;
        self.dirty = true;
        if check.down_only() {
            e.phase = Phase::Inhibited(None);
            tracing::warn!(
                "passive check: {}: real server {} taken out until its weight is set again ({failed} failed \
                 connection{})",
                key.0,
                key.1,
                if failed == 1 { "" } else { "s" }
            );
            return;
        }
        let secs = e.inhibit_s.clamp(u32::from(check.inhibit_min), u32::from(check.inhibit_max));
        e.phase = Phase::Inhibited(Some(now + Duration::from_secs(u64::from(secs))));
        e.inhibit_s = secs.saturating_mul(2).min(u32::from(check.inhibit_max));
        tracing::warn!(
            "passive check: {}: real server {} taken out for {secs} s ({failed} failed connection{})",
            key.0,
            key.1,
            if failed == 1 { "" } else { "s" }
        );
    }

    /// Closes the windows, ends the time outs due by `now`, and forgets the past of
    /// servers that have not failed for `inhibit_max` since they were let back in.
    pub fn tick(&mut self, table: &ServiceTable, now: Instant) {
        for (key, e) in &mut self.dests {
            if e.window_end.is_some_and(|t| t <= now) {
                e.downs = 0;
                e.window_end = None;
            }
            match e.phase {
                Phase::Inhibited(Some(t)) if t <= now => {
                    e.phase = Phase::Reopened(now);
                    self.dirty = true;
                    tracing::info!(
                        "passive check: {}: real server {} back in scheduling (next time out {} s)",
                        key.0,
                        key.1,
                        e.inhibit_s
                    );
                }
                Phase::Reopened(at) => {
                    let check = table.find(&key.0).and_then(|i| table.service(i).config.dest_check);
                    let max = check.map_or(0, |c| u64::from(c.inhibit_max));
                    if now.duration_since(at) >= Duration::from_secs(max) {
                        e.phase = Phase::Normal;
                        e.inhibit_s = check.map_or(0, |c| u32::from(c.inhibit_min));
                        self.dirty = true;
                    }
                }
                _ => {}
            }
        }
    }

    /// Brings back a server taken out in the down-only form: its weight was set
    /// (`RealServerEdit` with a weight, even the one it had).
    pub fn weight_set(&mut self, key: &DestKey) {
        if self.dests.get(key).is_some_and(|e| e.phase == Phase::Inhibited(None)) {
            tracing::info!("passive check: {}: real server {} back in scheduling (weight set)", key.0, key.1);
            self.dests.remove(key);
            self.dirty = true;
        }
    }

    /// After a change from `old` to `new`: servers gone, or of services that dropped or
    /// changed their check, are forgotten; a server taken out in the down-only form
    /// whose weight was set comes back.
    pub fn changed(&mut self, old: &[ServiceSpec], new: &[ServiceSpec]) {
        let weights = |set: &[ServiceSpec]| -> HashMap<DestKey, (u32, Option<DestCheck>)> {
            let mut m = HashMap::new();
            for s in set {
                let c = &s.service;
                for r in &c.real_servers {
                    let port = ctl::verbs::effective_port(r.port, c.vport);
                    m.insert((c.key(), SocketAddr::new(r.addr, port)), (r.weight, c.dest_check));
                }
            }
            m
        };
        let (before, after) = (weights(old), weights(new));
        let n = self.dests.len();
        let mut freed = false;
        self.dests.retain(|key, e| {
            let (Some(a), Some(b)) = (after.get(key), before.get(key)) else { return false };
            if a.1.is_none() || a.1 != b.1 {
                return false;
            }
            if e.phase == Phase::Inhibited(None) && a.0 != b.0 {
                tracing::info!("passive check: {}: real server {} back in scheduling (weight set)", key.0, key.1);
                freed = true;
                return false;
            }
            true
        });
        // A forgotten server that was out comes back with the next generation.
        self.dirty |= freed || self.dests.len() != n;
    }

    /// The marks every generation carries.
    pub fn marks(&self) -> DestMarks {
        self.dests
            .iter()
            .filter_map(|(k, e)| match e.phase {
                Phase::Normal => None,
                Phase::Inhibited(_) => Some((*k, DestMark::Inhibited)),
                Phase::Reopened(_) => Some((*k, DestMark::Reopened)),
            })
            .collect()
    }

    /// Whether the marks changed since the generation running was built, and may be
    /// published now.
    pub fn due(&self, now: Instant) -> bool {
        self.dirty && self.retry_at.is_none_or(|t| t <= now)
    }

    /// The generation built with [`DestChecker::marks`] runs: nothing is due.
    pub fn published(&mut self) {
        self.dirty = false;
        self.retry_at = None;
    }

    /// The generation with the marks was refused: publish again after a second.
    pub fn refused(&mut self, now: Instant) {
        self.retry_at = Some(now + RETRY);
    }
}

impl Control {
    /// Takes the workers' reports, ends what is due, and publishes a generation with the
    /// new marks when they changed; true if there were reports.
    pub(super) fn check_dests(&mut self) -> bool {
        let now = Instant::now();
        let snap = self.shared.current();
        let mut any = false;
        for w in &self.shared.workers {
            while let Some(r) = w.dest_reports.pop() {
                self.dest_check.report(&snap.services, r, now);
                any = true;
            }
        }
        self.dest_check.tick(&snap.services, now);
        if self.dest_check.due(now) {
            match self.apply(self.state.clone()) {
                // Adopted; some worker was slow to confirm (apply logged nothing).
                Response::Error { code: ErrorCode::Timeout, message } => tracing::warn!("passive check: {message}"),
                Response::Error { message, .. } => {
                    tracing::error!("passive check: the new generation was refused (tried again in 1 s): {message}");
                    self.dest_check.refused(now);
                }
                _ => {}
            }
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnat::service::{RealServerConfig, RsId, ServiceConfig};
    use fnat::types::Proto;

    fn spec(check: &str, weights: &[u32]) -> ServiceSpec {
        let mut c = ServiceConfig::new(Proto::Tcp, "10.0.0.1".parse().unwrap(), 80);
        c.dest_check = Some(check.parse().unwrap());
        for (i, &w) in weights.iter().enumerate() {
            c.real_servers.push(RealServerConfig {
                addr: format!("10.1.0.{}", i + 1).parse().unwrap(),
                port: 80,
                weight: w,
                upper: 0,
                lower: 0,
                fwd: Default::default(),
            });
        }
        ServiceSpec { service: c, laddrs: vec![] }
    }

    fn table(set: &[ServiceSpec], marks: &DestMarks) -> ServiceTable {
        let configs: Vec<_> = set.iter().map(|s| s.service.clone()).collect();
        ServiceTable::build_marked(&configs, None, marks).unwrap()
    }

    /// Whether a publication was due, as the control loop would take it.
    fn take(c: &mut DestChecker) -> bool {
        let due = c.due(Instant::now());
        c.published();
        due
    }

    fn down(c: &mut DestChecker, t: &ServiceTable, rs: u32, now: Instant) {
        c.report(t, DestReport { rs: RsId(rs), up: false }, now);
    }

    fn mark(c: &DestChecker, i: u8) -> Option<DestMark> {
        let key = ("tcp 10.0.0.1:80", format!("10.1.0.{i}:80"));
        c.marks().iter().find(|(k, _)| (k.0.to_string().as_str(), k.1.to_string()) == key).map(|(_, m)| *m)
    }

    #[test]
    fn a_failure_takes_a_server_out_for_a_time_out_that_doubles_and_halves() {
        let set = [spec("default", &[1, 1])];
        let mut c = DestChecker::default();
        let t0 = Instant::now();
        let t = table(&set, &c.marks());
        down(&mut c, &t, 0, t0);
        assert!(take(&mut c));
        assert_eq!(mark(&c, 1), Some(DestMark::Inhibited));
        assert_eq!(mark(&c, 2), None, "the other server is untouched");
        let t = table(&set, &c.marks());
        assert_eq!(t.services()[0].dests[0].weight, 0, "out of scheduling");
        assert_eq!(set[0].service.real_servers[0].weight, 1, "the configured weight is kept");
        // Reports from before the new generation change nothing.
        down(&mut c, &t, 0, t0);
        c.tick(&t, t0 + Duration::from_millis(4900));
        assert!(!take(&mut c));
        c.tick(&t, t0 + Duration::from_secs(5));
        assert!(take(&mut c));
        assert_eq!(mark(&c, 1), Some(DestMark::Reopened));
        let t = table(&set, &c.marks());
        assert_eq!(t.services()[0].dests[0].weight, 1);
        // Failing again: out for twice as long.
        let t1 = t0 + Duration::from_secs(6);
        down(&mut c, &t, 0, t1);
        c.tick(&t, t1 + Duration::from_millis(9900));
        assert_eq!(mark(&c, 1), Some(DestMark::Inhibited));
        c.tick(&t, t1 + Duration::from_secs(10));
        assert_eq!(mark(&c, 1), Some(DestMark::Reopened));
        // Two UPs halve the next time out twice (20 -> 10 -> 5, not below the minimum).
        let t = table(&set, &c.marks());
        for _ in 0..3 {
            c.report(&t, DestReport { rs: RsId(0), up: true }, t1);
        }
        let t2 = t1 + Duration::from_secs(20);
        down(&mut c, &t, 0, t2);
        c.tick(&t, t2 + Duration::from_secs(5));
        assert_eq!(mark(&c, 1), Some(DestMark::Reopened), "back after 5 s");
    }

    #[test]
    fn down_retry_counts_failures_within_the_window() {
        let set = [spec("3,1,2s,5-60s", &[1])];
        let mut c = DestChecker::default();
        let t = table(&set, &c.marks());
        let t0 = Instant::now();
        down(&mut c, &t, 0, t0);
        down(&mut c, &t, 0, t0);
        c.tick(&t, t0 + Duration::from_secs(2));
        down(&mut c, &t, 0, t0 + Duration::from_secs(2));
        assert_eq!(mark(&c, 1), None, "the window closed after two");
        down(&mut c, &t, 0, t0 + Duration::from_secs(3));
        down(&mut c, &t, 0, t0 + Duration::from_secs(3));
        assert_eq!(mark(&c, 1), Some(DestMark::Inhibited));
    }

    #[test]
    fn drained_and_unchecked_servers_are_not_taken_out() {
        let set = [spec("default", &[0, 1]), {
            let mut s = spec("default", &[1]);
            s.service.vport = 81;
            s.service.dest_check = None;
            s
        }];
        let mut c = DestChecker::default();
        let t = table(&set, &c.marks());
        let now = Instant::now();
        down(&mut c, &t, 0, now);
        down(&mut c, &t, 2, now);
        down(&mut c, &t, 99, now);
        assert!(c.marks().is_empty());
        assert!(!take(&mut c));
    }

    #[test]
    fn down_only_lasts_until_the_weight_is_set_and_removal_forgets() {
        let set = vec![spec("1,3s", &[1, 1])];
        let mut c = DestChecker::default();
        let t = table(&set, &c.marks());
        let now = Instant::now();
        down(&mut c, &t, 0, now);
        down(&mut c, &t, 1, now);
        c.tick(&t, now + Duration::from_secs(86_400));
        assert_eq!(mark(&c, 1), Some(DestMark::Inhibited), "no time out in the down-only form");
        take(&mut c);
        // A reload with the same weights keeps it out; the weight set (rvsadm -e -w, to
        // the weight it had) brings it back.
        c.changed(&set, &set);
        assert!(!take(&mut c));
        let key = |i: u8| (set[0].service.key(), SocketAddr::new(format!("10.1.0.{i}").parse().unwrap(), 80));
        c.weight_set(&key(1));
        assert!(take(&mut c));
        assert_eq!(mark(&c, 1), None);
        down(&mut c, &t, 0, now);
        assert!(take(&mut c), "out again");
        c.weight_set(&key(3));
        assert!(!take(&mut c), "another server: nothing");
        // A reload that changes its weight brings it back too.
        let mut next = set.clone();
        next[0].service.real_servers[0].weight = 2;
        c.changed(&set, &next);
        assert!(take(&mut c));
        assert_eq!(mark(&c, 1), None);
        assert_eq!(mark(&c, 2), Some(DestMark::Inhibited));
        // Server 2 removed: forgotten (added back, it starts afresh).
        let mut gone = next.clone();
        gone[0].service.real_servers.pop();
        c.changed(&next, &gone);
        assert!(take(&mut c));
        assert!(c.marks().is_empty());
    }

    #[test]
    fn a_server_quiet_for_inhibit_max_starts_afresh() {
        let set = [spec("1,1,3s,2-8s", &[1])];
        let mut c = DestChecker::default();
        let t = table(&set, &c.marks());
        let t0 = Instant::now();
        down(&mut c, &t, 0, t0);
        c.tick(&t, t0 + Duration::from_secs(2));
        assert_eq!(mark(&c, 1), Some(DestMark::Reopened));
        take(&mut c);
        c.tick(&t, t0 + Duration::from_secs(9));
        assert!(!take(&mut c));
        c.tick(&t, t0 + Duration::from_secs(10));
        assert!(take(&mut c), "8 s without a failure");
        assert_eq!(mark(&c, 1), None);
        // Its next time out is the shortest again.
        let t1 = t0 + Duration::from_secs(11);
        down(&mut c, &t, 0, t1);
        c.tick(&t, t1 + Duration::from_secs(2));
        assert_eq!(mark(&c, 1), Some(DestMark::Reopened), "2 s, not 4");
    }

    #[test]
    fn a_refused_generation_is_tried_again_a_second_later() {
        let set = [spec("default", &[1])];
        let mut c = DestChecker::default();
        let t = table(&set, &c.marks());
        let now = Instant::now();
        down(&mut c, &t, 0, now);
        assert!(c.due(now));
        c.refused(now);
        assert!(!c.due(now + Duration::from_millis(900)));
        assert!(c.due(now + RETRY));
        c.published();
        assert!(!c.due(now + RETRY));
    }
}
