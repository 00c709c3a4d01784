//! State changes an operator must hear of, logged once at onset and once at recovery
//! (with a reminder at most every [`REMIND`] while they last): a port's link going down
//! or up, the connection pool or the local ports running out, the mbuf pool running
//! out. Sampled every [`EVERY`] from small counters the workers copy on request, so a
//! flood of refusals costs one line, not one per packet.

use std::time::{Duration, Instant};

use crate::shared::{Command, Exhaustion, Reply, Shared};

use super::PortHandle;

/// How often the control thread samples.
pub const EVERY: Duration = Duration::from_secs(1);
/// How often a lasting condition is logged again.
const REMIND: Duration = Duration::from_secs(60);
/// The mbuf pool counts as exhausted above this share in use, recovered below the second.
const MBUF_HIGH: f64 = 0.95;
const MBUF_LOW: f64 = 0.80;

/// One condition with an onset and a recovery.
#[derive(Debug, Default)]
struct Condition {
    since: Option<Instant>,
    reminded: Option<Instant>,
    /// What it counted since the onset.
    count: u64,
}

impl Condition {
    /// Feeds one sample: `on` (with `n` new events); logs onset, reminder, recovery.
    fn sample(&mut self, what: &str, on: bool, n: u64, now: Instant) {
        match (self.since, on) {
            (None, true) => {
                tracing::warn!("{what}: started ({n} in the last {} s)", EVERY.as_secs());
                *self = Condition { since: Some(now), reminded: Some(now), count: n };
            }
            (Some(since), true) => {
                self.count += n;
                if self.reminded.is_some_and(|r| now.duration_since(r) >= REMIND) {
                    self.reminded = Some(now);
                    tracing::warn!(
                        "{what}: still, for {} s ({} so far)",
                        now.duration_since(since).as_secs(),
                        self.count
                    );
                }
            }
            (Some(since), false) => {
                tracing::info!(
                    "{what}: recovered after {} s ({} in all)",
                    now.duration_since(since).as_secs(),
                    self.count
                );
                *self = Condition::default();
            }
            (None, false) => {}
        }
    }
}

/// What the control thread remembers between samples.
#[derive(Debug, Default)]
pub struct Health {
    links: Vec<Option<bool>>,
    last: Vec<Exhaustion>,
    pool_full: Condition,
    no_local_port: Condition,
    no_mbuf: Condition,
    mbufs: Condition,
}

impl Health {
    /// Samples the ports' links, the workers' exhaustion counters and the mbuf pool.
    pub fn sample(&mut self, shared: &Shared, ports: &[PortHandle], pool: &dpdk::Mempool) {
        let now = Instant::now();
        self.links.resize(ports.len(), None);
        for (h, seen) in ports.iter().zip(self.links.iter_mut()) {
            let up = h.port.link().map(|l| l.up).unwrap_or(false);
            match *seen {
                Some(was) if was != up && up => tracing::info!(port = %h.name, "link up"),
                Some(was) if was != up => tracing::warn!(port = %h.name, "link down"),
                None if !up => tracing::warn!(port = %h.name, "link down"),
                _ => {}
            }
            *seen = Some(up);
        }

        if let Some(counts) = exhaustion(shared) {
            // The workers' counters start at zero with rvsd.
            self.last.resize(counts.len(), Exhaustion::default());
            // Counters zeroed (rvsadm -Z) count as no new events.
            let delta = |f: fn(&Exhaustion) -> u64| -> u64 {
                counts.iter().zip(&self.last).map(|(n, o)| f(n).saturating_sub(f(o))).sum()
            };
            let full = delta(|e| e.pool_full);
            let port = delta(|e| e.no_local_port);
            let mbuf = delta(|e| e.no_mbuf);
            self.pool_full.sample("connection pool exhausted (pool_full)", full > 0, full, now);
            self.no_local_port.sample("local ports exhausted (no_local_port)", port > 0, port, now);
            self.no_mbuf.sample("packets dropped for want of mbufs (no_mbuf)", mbuf > 0, mbuf, now);
            self.last = counts;
        }

        let share = f64::from(pool.in_use()) / f64::from(pool.size().max(1));
        let on = if self.mbufs.since.is_some() { share > MBUF_LOW } else { share > MBUF_HIGH };
        self.mbufs.sample("mbuf pool nearly exhausted", on, u64::from(pool.in_use()), now);
    }
}

/// Every worker's exhaustion counters (`None` if one did not answer within 100 ms).
fn exhaustion(shared: &Shared) -> Option<Vec<Exhaustion>> {
    shared.ask_all(
        || Command::Exhaustion,
        Duration::from_millis(100),
        |r| match r {
            Reply::Exhaustion(e) => Some(e),
            _ => None,
        },
    )
}
