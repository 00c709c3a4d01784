//! Local addresses (LIPs) and local ports: which worker owns a port, and how a worker
//! picks `(LIP, lport)` for a new connection.
//!
//! # Ownership ([`PortOwnership`])
//! A reply from a real server arrives at `LIP:lport`; it must reach the worker holding
//! the connection. Ownership is a pure function of the port, so any worker (and the
//! NIC) can tell without a table:
//! - `slots = n` when the worker count `n` is a power of two, else
//!   `next_power_of_two(n) × 16`;
//! - `owner(lport) = (lport & (slots − 1)) % n`.
//!
//! A NIC flow rule per slot matches `dst_port & (slots − 1) == slot` and steers it to
//! the owner's queue ([`PortOwnership::flow_rules`]). With a power-of-two `n` that is
//! one rule per worker and a perfect split; otherwise each worker owns
//! `⌊slots/n⌋` or `⌈slots/n⌉` slots, an imbalance of at most ~6 % (at `n = 2^k − 1`).
//!
//! # Allocation ([`SaPool`])
//! Each worker walks, per LIP, a cursor over the ports it owns within the configured
//! range, and takes the first port whose *outbound key* `(proto, RIP:rport, LIP:lport)`
//! is not in its connection table, within a bounded number of probes. So one port is
//! reused towards different real servers and capacity is
//! `#LIPs × usable ports × #(RIP:rport)` as in DPVS. A service's LIPs are used in turn
//! (round robin, per address family).
//!
//! Freed ports need no bookkeeping: a port is free towards a destination exactly when
//! the table lacks that outbound key. The cost: every allocation pays one table
//! lookup per probe, and near exhaustion of one `(LIP, RIP:rport)` pair the probes
//! mostly fail, so a new connection can be refused (counted as "no local port") while
//! a few ports are still free. The sequential cursor helps: connections tend to end in
//! the order they started, so the ports just ahead of the cursor are the oldest and
//! most likely free.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::conn::Addr;

/// Why a port-ownership or pool configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SaPoolError {
    /// The worker count must be 1..=4096.
    #[error("worker count must be 1..=4096, got {0}")]
    BadWorkers(u32),
    /// The worker id is not below the worker count.
    #[error("worker {worker} out of range for {workers} workers")]
    BadWorker {
        /// The worker id given.
        worker: u16,
        /// The worker count.
        workers: u16,
    },
    /// The port range is empty or starts at 0.
    #[error("bad local port range {lo}..={hi}")]
    BadRange {
        /// First port.
        lo: u16,
        /// Last port.
        hi: u16,
    },
    /// The worker owns no port in the range.
    #[error("worker {0} owns no local port in the configured range")]
    NoPorts(u16),
}

/// Which worker owns each local port (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortOwnership {
    workers: u16,
    slots: u32,
}

impl PortOwnership {
    /// The ownership function for `workers` workers.
    pub fn new(workers: u32) -> Result<PortOwnership, SaPoolError> {
        if workers == 0 || workers > 4096 {
            return Err(SaPoolError::BadWorkers(workers));
        }
        let slots = if workers.is_power_of_two() { workers } else { workers.next_power_of_two() * 16 };
        Ok(PortOwnership { workers: workers as u16, slots })
    }

    /// Number of workers.
    #[inline]
    pub fn workers(&self) -> u16 {
        self.workers
    }

    /// Number of port slots (a power of two).
    #[inline]
    pub fn slots(&self) -> u32 {
        self.slots
    }

    /// The mask a flow rule applies to the destination port (`slots − 1`).
    #[inline]
    pub fn mask(&self) -> u16 {
        (self.slots - 1) as u16
    }

    /// The worker owning local port `lport`.
    #[inline]
    pub fn owner(&self, lport: u16) -> u16 {
        ((lport as u32 & (self.slots - 1)) % self.workers as u32) as u16
    }

    /// The `(value, mask)` pairs of `worker`'s slots: a reply belongs to it when
    /// `dst_port & mask == value` for one of them. One pair when the worker count is
    /// a power of two; `slots / n` (about 16..32) otherwise.
    pub fn flow_rules(&self, worker: u16) -> Vec<(u16, u16)> {
        (0..self.slots).filter(|s| s % self.workers as u32 == worker as u32).map(|s| (s as u16, self.mask())).collect()
    }
}

/// The usable local port range (inclusive), default `1025..=65535`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortRange {
    /// First usable port.
    pub lo: u16,
    /// Last usable port.
    pub hi: u16,
}

impl Default for PortRange {
    fn default() -> Self {
        PortRange { lo: 1025, hi: 65535 }
    }
}

/// Why no `(LIP, lport)` could be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AllocError {
    /// The service's LIP set has no address of the real server's family.
    #[error("no local address of the real server's family")]
    NoLip,
    /// Every probe found its port in use.
    #[error("no free local port")]
    NoPort,
}

#[derive(Debug, Clone, Default)]
struct LipRing {
    lips: Vec<Addr>,
    cursors: Vec<u32>,
    rr: u32,
}

/// One worker's local address sets and port cursors.
#[derive(Debug, Clone)]
pub struct SaPool {
    own: PortOwnership,
    worker: u16,
    ports: Vec<u16>,
    /// Per LIP set: IPv4 ring, IPv6 ring.
    sets: Vec<[LipRing; 2]>,
    max_probes: u32,
}

impl SaPool {
    /// A pool for `worker` under `own`, over the ports of `range` the worker owns,
    /// trying at most `max_probes` ports per allocation.
    pub fn new(own: PortOwnership, worker: u16, range: PortRange, max_probes: u32) -> Result<SaPool, SaPoolError> {
        if worker >= own.workers() {
            return Err(SaPoolError::BadWorker { worker, workers: own.workers() });
        }
        if range.lo == 0 || range.lo > range.hi {
            return Err(SaPoolError::BadRange { lo: range.lo, hi: range.hi });
        }
        let ports: Vec<u16> = (range.lo..=range.hi).filter(|p| own.owner(*p) == worker).collect();
        if ports.is_empty() {
            return Err(SaPoolError::NoPorts(worker));
        }
        Ok(SaPool { own, worker, ports, sets: Vec::new(), max_probes: max_probes.max(1) })
    }

    /// Adds a LIP set (one per service, or shared) and returns its index for
    /// [`alloc`](Self::alloc). Control path (allocates).
    pub fn add_set(&mut self, lips: &[Addr]) -> usize {
        let mut rings: [LipRing; 2] = Default::default();
        for l in lips {
            rings[usize::from(!l.is_v4())].lips.push(*l);
        }
        // Spread each family's cursors over the ports so its LIPs do not probe in
        // lockstep (the first LIP starts at the first port).
        let np = self.ports.len() as u64;
        for r in &mut rings {
            let n = r.lips.len() as u64;
            r.cursors = (0..n).map(|i| (i * np / n) as u32).collect();
        }
        self.sets.push(rings);
        self.sets.len() - 1
    }

    /// Replaces the addresses of set `set`, keeping cursors of LIPs still present.
    pub fn set_lips(&mut self, set: usize, lips: &[Addr]) {
        let old = std::mem::take(&mut self.sets[set]);
        let idx = self.add_set(lips);
        let mut new = self.sets.pop().expect("just pushed");
        debug_assert_eq!(idx, self.sets.len());
        for fam in 0..2 {
            for (i, l) in new[fam].lips.iter().enumerate() {
                if let Some(j) = old[fam].lips.iter().position(|o| o == l) {
                    new[fam].cursors[i] = old[fam].cursors[j];
                }
            }
        }
        self.sets[set] = new;
    }

    /// Number of LIP sets.
    pub fn set_count(&self) -> usize {
        self.sets.len()
    }

    /// The addresses of set `set` (IPv4 first).
    pub fn lips(&self, set: usize) -> impl Iterator<Item = Addr> + '_ {
        self.sets[set].iter().flat_map(|r| r.lips.iter().copied())
    }

    /// Whether `a` is a LIP of any set (the classification of replies; a short scan).
    #[inline]
    pub fn is_lip(&self, a: &Addr) -> bool {
        let fam = usize::from(!a.is_v4());
        self.sets.iter().any(|s| s[fam].lips.contains(a))
    }

    /// The ownership function in force.
    pub fn ownership(&self) -> PortOwnership {
        self.own
    }

    /// This pool's worker.
    pub fn worker(&self) -> u16 {
        self.worker
    }

    /// Ports this worker owns per LIP.
    pub fn ports_per_lip(&self) -> usize {
        self.ports.len()
    }

    /// Picks `(LIP, lport)` from set `set` for a real server of family `v4`:
    /// LIPs in turn, each from its cursor, taking the first port for which
    /// `in_use(lip, port)` is false (the caller checks its outbound key), at most
    /// `max_probes` probes. No allocation.
    #[inline]
    pub fn alloc(
        &mut self,
        set: usize,
        v4: bool,
        mut in_use: impl FnMut(Addr, u16) -> bool,
    ) -> Result<(Addr, u16), AllocError> {
        let Some(rings) = self.sets.get_mut(set) else {
            return Err(AllocError::NoLip);
        };
        let ring = &mut rings[usize::from(!v4)];
        let n = ring.lips.len() as u32;
        if n == 0 {
            return Err(AllocError::NoLip);
        }
        let np = self.ports.len() as u32;
        for _ in 0..self.max_probes {
            let li = ring.rr as usize;
            ring.rr = if ring.rr + 1 >= n { 0 } else { ring.rr + 1 };
            let c = &mut ring.cursors[li];
            let port = self.ports[*c as usize];
            *c = if *c + 1 >= np { 0 } else { *c + 1 };
            let lip = ring.lips[li];
            if !in_use(lip, port) {
                return Ok((lip, port));
            }
        }
        Err(AllocError::NoPort)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ownership_partitions_every_port() {
        for n in 1..=17u32 {
            let o = PortOwnership::new(n).unwrap();
            assert!(o.slots().is_power_of_two());
            let mut count = vec![0u32; n as usize];
            let rules: Vec<Vec<(u16, u16)>> = (0..n as u16).map(|w| o.flow_rules(w)).collect();
            for p in 0..=u16::MAX {
                let w = o.owner(p);
                count[w as usize] += 1;
                // Exactly the owner's flow rules match (periodic: check the low ports).
                if p >= 2048 {
                    continue;
                }
                let matching: Vec<u16> =
                    (0..n as u16).filter(|w| rules[*w as usize].iter().any(|(v, m)| p & m == *v)).collect();
                assert_eq!(matching, vec![w]);
            }
            let (min, max) = (count.iter().min().unwrap(), count.iter().max().unwrap());
            let imbalance = (*max as f64 - *min as f64) / *min as f64;
            assert!(imbalance <= 0.0667, "n={n}: {imbalance}");
            if n.is_power_of_two() {
                assert_eq!(o.flow_rules(0).len(), 1);
                assert_eq!(min, max);
            }
        }
        assert!(PortOwnership::new(0).is_err());
        assert!(PortOwnership::new(5000).is_err());
    }

    #[test]
    fn alloc_round_robins_lips_and_owns_its_ports() {
        let o = PortOwnership::new(3).unwrap();
        let mut p = SaPool::new(o, 1, PortRange::default(), 16).unwrap();
        let l1 = Addr::v4([10, 0, 0, 1]);
        let l2 = Addr::v4([10, 0, 0, 2]);
        let l6 = Addr::v6([0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let s = p.add_set(&[l1, l2, l6]);
        assert!(p.is_lip(&l2) && p.is_lip(&l6) && !p.is_lip(&Addr::v4([1, 1, 1, 1])));
        let a = p.alloc(s, true, |_, _| false).unwrap();
        let b = p.alloc(s, true, |_, _| false).unwrap();
        assert_ne!(a.0, b.0);
        assert_eq!(o.owner(a.1), 1);
        assert_eq!(p.alloc(s, false, |_, _| false).unwrap().0, l6);
        let s2 = p.add_set(&[l1]);
        assert_eq!(p.alloc(s2, false, |_, _| false), Err(AllocError::NoLip));
        assert_eq!(p.alloc(99, true, |_, _| false), Err(AllocError::NoLip));
    }

    #[test]
    fn exhaustion_then_reuse() {
        let o = PortOwnership::new(1).unwrap();
        let range = PortRange { lo: 2000, hi: 2009 };
        let mut p = SaPool::new(o, 0, range, 4).unwrap();
        let l = Addr::v4([10, 0, 0, 1]);
        let s = p.add_set(&[l]);
        let mut used = HashSet::new();
        for _ in 0..10 {
            let (_, port) = p.alloc(s, true, |_, pt| used.contains(&pt)).unwrap();
            assert!((2000..=2009).contains(&port));
            assert!(used.insert(port));
        }
        assert_eq!(p.alloc(s, true, |_, pt| used.contains(&pt)), Err(AllocError::NoPort));
        used.remove(&2003);
        // Bounded probes may miss a lone free port; enough attempts find it.
        let mut got = None;
        for _ in 0..3 {
            if let Ok(x) = p.alloc(s, true, |_, pt| used.contains(&pt)) {
                got = Some(x.1);
                break;
            }
        }
        assert_eq!(got, Some(2003));
    }

    #[test]
    fn bad_configs() {
        let o = PortOwnership::new(2).unwrap();
        assert!(SaPool::new(o, 2, PortRange::default(), 1).is_err());
        assert!(SaPool::new(o, 0, PortRange { lo: 0, hi: 10 }, 1).is_err());
        assert!(SaPool::new(o, 1, PortRange { lo: 10, hi: 10 }, 1).is_err());
    }
}
