//! The control thread (main lcore): owns the authoritative neighbour table, learns what
//! the workers saw, publishes new snapshots, answers signals, and gathers the workers'
//! counters. It sleeps between rounds; it never busy-polls.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use netstack::{Learned, NeighTable};
use serde_json::json;

use crate::clock::Clock;
use crate::counters::NetCounters;
use crate::shared::{Command, Reply, Shared, WorkerReport};

/// Learned neighbours are re-resolved after this long without being seen.
const NEIGH_REACHABLE_MS: u64 = 300_000;

/// The control thread's state.
pub struct Control {
    shared: Arc<Shared>,
    neighs: NeighTable,
    clock: Clock,
    /// Set by SIGTERM/SIGINT.
    pub term: Arc<AtomicBool>,
    /// Set by SIGUSR1: log counters.
    pub usr1: Arc<AtomicBool>,
}

impl Control {
    /// Control over `shared`, starting from its current neighbour table.
    pub fn new(shared: Arc<Shared>, clock: Clock) -> Control {
        let neighs = (*shared.current().neighs).clone();
        Control { shared, neighs, clock, term: Arc::new(AtomicBool::new(false)), usr1: Arc::new(AtomicBool::new(false)) }
    }

    /// Runs until SIGTERM/SIGINT.
    pub fn run(&mut self) {
        let mut aged_at = Instant::now();
        while !self.term.load(Ordering::Relaxed) {
            if self.usr1.swap(false, Ordering::Relaxed) {
                match self.stats(Duration::from_secs(2)) {
                    Some(v) => tracing::info!("rvsd: stats {v}"),
                    None => tracing::warn!("a worker did not answer the stats request"),
                }
            }
            let mut changed = self.learn();
            if aged_at.elapsed() > Duration::from_secs(10) {
                aged_at = Instant::now();
                changed |= self.neighs.expire(self.clock.now_ms(), NEIGH_REACHABLE_MS).removed > 0;
            }
            if changed {
                self.publish_neighs();
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Learns the bindings workers reported; true if the table changed.
    fn learn(&mut self) -> bool {
        let mut changed = false;
        let now = self.clock.now_ms();
        while let Some(s) = self.shared.neigh_seen.pop() {
            match self.neighs.learn(s.ip, s.mac, s.port, now) {
                Learned::Added | Learned::Changed => {
                    tracing::debug!(ip = %s.ip, mac = %s.mac, port = %s.port, "neighbour learned");
                    changed = true;
                }
                Learned::Full => tracing::warn!(ip = %s.ip, "neighbour table full"),
                _ => {}
            }
        }
        changed
    }

    fn publish_neighs(&self) {
        let cur = self.shared.current();
        let mut next = (*cur).clone();
        next.gen = cur.gen + 1;
        next.neighs = Arc::new(self.neighs.clone());
        self.shared.publish(next);
    }

    /// Every worker's report, or `None` if one did not answer within `wait`.
    pub fn reports(&self, wait: Duration) -> Option<Vec<WorkerReport>> {
        for w in &self.shared.workers {
            while w.replies.pop().is_some() {}
            let _ = w.commands.push(Command::Stats);
        }
        let deadline = Instant::now() + wait;
        let mut out = Vec::with_capacity(self.shared.workers.len());
        for w in &self.shared.workers {
            loop {
                if let Some(Reply::Stats(r)) = w.replies.pop() {
                    out.push(*r);
                    break;
                }
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        }
        Some(out)
    }

    /// Counters of all workers as one JSON value.
    pub fn stats(&self, wait: Duration) -> Option<serde_json::Value> {
        self.reports(wait).map(|r| summary(self.shared.gen.load(Ordering::Acquire), &r))
    }
}

/// The JSON summary of worker reports: totals, drops by name (core and network layer
/// merged), and each worker's report.
pub fn summary(gen: u64, reports: &[WorkerReport]) -> serde_json::Value {
    let core = fnat::stats::StatsSnapshot::sum(reports.iter().map(|r| &r.core));
    let mut net = NetCounters::default();
    for r in reports {
        net.add(&r.net);
    }
    let mut drops: BTreeMap<String, u64> = core.drops.iter().filter(|(_, v)| **v > 0).map(|(k, v)| (k.clone(), *v)).collect();
    for (k, v) in net.drop_map() {
        *drops.entry(k.to_string()).or_default() += v;
    }
    json!({
        "gen": gen,
        "conns": reports.iter().map(|r| u64::from(r.conns)).sum::<u64>(),
        "totals": core.total,
        "drops": drops,
        "net": net,
        "workers": reports,
    })
}
