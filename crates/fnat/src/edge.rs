//! Edge policy: which new connections a worker admits, decided once per new flow
//! (a SYN, or a UDP flow's first datagram) right after the input checks
//! ([`crate::sanity`]) and before the SYN proxy or the scheduler. Established
//! connections are never looked at: a change applies from the next new flow.
//!
//! The checks, in order, each with its drop reason:
//! 1. the global deny set ([`PrefixSet`], up to a million prefixes): `denied`;
//! 2. the service's deny list (DPVS's blacklist): `denied`;
//! 3. the service's allow list (DPVS's whitelist; when not empty, only sources in it
//!    are admitted): `not_allowed`;
//! 4. the service's new-connection rate limit, a token bucket per worker holding
//!    `rate / workers` tokens per second and `ceil(burst / workers)` at most (full
//!    again whenever a new service generation is adopted): `rate_limited`;
//! 5. the service's per-source connection limit, live connections of one source
//!    address to the service on this worker (see [`SourceTable`]): `source_limit`.
//!
//! Everything is changed atomically: the global set is an `Arc<PrefixSet>` swapped
//! whole ([`Edge::set_deny`]), a service's lists and limits are part of its
//! [`ServiceTable`](crate::service::ServiceTable) generation ([`ServicePolicy`], built
//! once per generation). Nothing here allocates, locks or makes a system call per
//! packet.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::conn::Addr;
use crate::denyset::PrefixSet;
use crate::stats::DropReason;
use crate::types::Millis;

/// A service's new-connection rate limit (DPVS has none; rvsadm `--rate N[:burst]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// New connections per second admitted to the service (over all workers), >= 1.
    pub rate: u32,
    /// How many may come at once after a quiet time; 0 = `rate` (one second's worth).
    #[serde(default)]
    pub burst: u32,
}

/// A service's edge policy as built into a generation (from its
/// [`ServiceConfig`](crate::service::ServiceConfig)).
#[derive(Debug, Clone, Default)]
pub struct ServicePolicy {
    /// Sources refused (blacklist).
    pub deny: PrefixSet,
    /// When not empty, the only sources admitted (whitelist).
    pub allow: PrefixSet,
    /// New connections per second, if limited.
    pub rate: Option<RateLimit>,
    /// Live connections per source address (per worker); 0 = none.
    pub source_limit: u32,
}

impl ServicePolicy {
    /// Builds the policy from a service's lists (control path: allocates).
    pub fn build(deny: &[IpNet], allow: &[IpNet], rate: Option<RateLimit>, source_limit: u32) -> ServicePolicy {
        let set = |l: &[IpNet]| PrefixSet::build(l.iter().map(|n| (n.addr(), n.prefix_len())));
        ServicePolicy { deny: set(deny), allow: set(allow), rate, source_limit }
    }

    /// Whether any check of the service's own applies.
    pub fn is_empty(&self) -> bool {
        self.deny.is_empty() && self.allow.is_empty() && self.rate.is_none() && self.source_limit == 0
    }
}

/// One token bucket (per worker and service). Tokens are counted in millionths.
#[derive(Debug, Clone, Copy, Default)]
struct Bucket {
    micro: u64,
    last: Millis,
    /// Whether it has been filled since the generation was adopted.
    primed: bool,
}

const MICRO: u64 = 1_000_000;

impl Bucket {
    /// Takes one token if there is one; refills at `rate / workers` per second up to
    /// `ceil(burst / workers)`.
    #[inline]
    fn take(&mut self, r: RateLimit, workers: u32, now: Millis) -> bool {
        let w = u64::from(workers.max(1));
        let burst = u64::from(if r.burst == 0 { r.rate } else { r.burst }).max(1);
        let cap = burst.div_ceil(w).max(1) * MICRO;
        if !self.primed {
            *self = Bucket { micro: cap, last: now, primed: true };
        } else if now > self.last {
            let add = (now - self.last).saturating_mul(u64::from(r.rate)).saturating_mul(MICRO / 1000) / w;
            self.micro = self.micro.saturating_add(add).min(cap);
            self.last = now;
        }
        if self.micro >= MICRO {
            self.micro -= MICRO;
            true
        } else {
            false
        }
    }
}

/// Longest probe sequence of the source table; an entry is always this close to its
/// hash position, so a lookup reads at most this many slots.
pub const MAX_PROBE: usize = 32;

/// Slots of a worker's source table at most (24 bytes each: 1.5 MiB).
pub const SOURCE_SLOTS: usize = 1 << 16;

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    addr: Addr,
    svc: u32,
    /// 0 = empty.
    count: u32,
}

/// Live connections per (service id, source address) on one worker: a fixed-size
/// open-addressing table (linear probing, backward-shift deletion), allocated once and
/// never grown. An entry exists while its count is above 0. When no slot is free
/// within [`MAX_PROBE`] of the key's position or the table is 7/8 full, a new source's
/// connection is admitted but not counted (fail open, so a flood of sources cannot
/// lock out new clients; the engine counts it as `source_untracked`).
#[derive(Debug, Clone)]
pub struct SourceTable {
    slots: Box<[Slot]>,
    mask: usize,
    seed: u64,
    len: usize,
}

impl SourceTable {
    /// A table of `slots` slots (a power of two at least [`MAX_PROBE`]); the hash is
    /// keyed by `seed`, so sources cannot be chosen to collide.
    pub fn new(slots: usize, seed: u64) -> SourceTable {
        let n = slots.next_power_of_two().max(MAX_PROBE);
        SourceTable { slots: vec![Slot::default(); n].into_boxed_slice(), mask: n - 1, seed, len: 0 }
    }

    #[inline]
    fn home(&self, svc: u32, a: &Addr) -> usize {
        let w = u128::from_le_bytes(a.0);
        let mut h = self.seed ^ u64::from(svc);
        for v in [w as u64, (w >> 64) as u64] {
            let m = u128::from(h ^ v) * 0x9e37_79b9_7f4a_7c15u128;
            h = (m as u64) ^ ((m >> 64) as u64);
        }
        h as usize & self.mask
    }

    #[inline]
    fn find(&self, svc: u32, a: &Addr) -> Option<usize> {
        let h = self.home(svc, a);
        for i in 0..MAX_PROBE {
            let j = (h + i) & self.mask;
            let s = &self.slots[j];
            if s.count == 0 {
                return None;
            }
            if s.svc == svc && s.addr == *a {
                return Some(j);
            }
        }
        None
    }

    /// Live counted connections of source `a` to service `svc`.
    #[inline]
    pub fn count(&self, svc: u32, a: &Addr) -> u32 {
        self.find(svc, a).map_or(0, |j| self.slots[j].count)
    }

    /// Counts one more connection; false if the table has no room for a new source.
    pub fn inc(&mut self, svc: u32, a: &Addr) -> bool {
        let h = self.home(svc, a);
        for i in 0..MAX_PROBE {
            let j = (h + i) & self.mask;
            let s = &mut self.slots[j];
            if s.count == 0 {
                if self.len >= (self.mask + 1) / 8 * 7 {
                    return false;
                }
                *s = Slot { addr: *a, svc, count: 1 };
                self.len += 1;
                return true;
            }
            if s.svc == svc && s.addr == *a {
                s.count = s.count.saturating_add(1);
                return true;
            }
        }
        false
    }

    /// Counts one connection less; the entry goes when its count reaches 0.
    pub fn dec(&mut self, svc: u32, a: &Addr) {
        let Some(j) = self.find(svc, a) else { return };
        self.slots[j].count -= 1;
        if self.slots[j].count > 0 {
            return;
        }
        // Backward-shift deletion: later entries of the cluster move into the hole
        // when their home position allows, so probes never meet a gap.
        self.len -= 1;
        let mut hole = j;
        let mut k = j;
        loop {
            k = (k + 1) & self.mask;
            let s = self.slots[k];
            if s.count == 0 {
                break;
            }
            let home = self.home(s.svc, &s.addr);
            if (k.wrapping_sub(home) & self.mask) >= (k.wrapping_sub(hole) & self.mask) {
                self.slots[hole] = s;
                hole = k;
            }
        }
        self.slots[hole].count = 0;
    }

    /// Sources tracked now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no source is tracked.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One worker's edge state: the global deny set, the token buckets of the bound
/// generation's services, and the source table.
#[derive(Debug, Clone)]
pub struct Edge {
    deny: Arc<PrefixSet>,
    workers: u32,
    /// Per `SvcIdx` of the bound generation.
    buckets: Vec<Bucket>,
    sources: SourceTable,
}

impl Edge {
    /// A worker's edge state for `workers` workers, sized for `max_services` services
    /// and a source table of `source_slots` slots (allocated now).
    pub fn new(workers: u32, max_services: usize, source_slots: usize, seed: u64) -> Edge {
        Edge {
            deny: Arc::new(PrefixSet::default()),
            workers: workers.max(1),
            buckets: Vec::with_capacity(max_services),
            sources: SourceTable::new(source_slots, seed),
        }
    }

    /// Replaces the global deny set (the control plane built it; swapping the `Arc` is
    /// the whole change).
    pub fn set_deny(&mut self, set: Arc<PrefixSet>) {
        self.deny = set;
    }

    /// The global deny set in force.
    pub fn deny(&self) -> &Arc<PrefixSet> {
        &self.deny
    }

    /// Adopts a generation of `services` services: every bucket starts full.
    pub fn rebind(&mut self, services: usize) {
        self.buckets.clear();
        self.buckets.resize(services, Bucket::default());
    }

    /// Whether a new flow from `src` to service `idx` (stable id `id`, policy `p`) is
    /// admitted at `now`: [`screen`](Self::screen), then [`take`](Self::take); the
    /// refusal's reason otherwise (the caller counts it).
    #[inline]
    pub fn admit(
        &mut self,
        idx: usize,
        id: u32,
        p: &ServicePolicy,
        src: IpAddr,
        now: Millis,
    ) -> Result<(), DropReason> {
        self.screen(p, src)?;
        self.take(idx, id, p, src, now)
    }

    /// The deny and allow lists (global and the service's `p`) alone: whether `src`
    /// may reach the service at all. Costs no token: what a SYN the SYN proxy answers
    /// with a cookie goes through, the rest waiting for the cookie's ACK.
    #[inline]
    pub fn screen(&self, p: &ServicePolicy, src: IpAddr) -> Result<(), DropReason> {
        if self.deny.contains(src) || p.deny.contains(src) {
            return Err(DropReason::Denied);
        }
        if !p.allow.is_empty() && !p.allow.contains(src) {
            return Err(DropReason::NotAllowed);
        }
        Ok(())
    }

    /// The service's rate limit (a token of it taken) and the per-source limit: what
    /// a connection about to be opened must pass.
    #[inline]
    pub fn take(&mut self, idx: usize, id: u32, p: &ServicePolicy, src: IpAddr, now: Millis) -> Result<(), DropReason> {
        if let Some(r) = p.rate {
            let w = self.workers;
            if let Some(b) = self.buckets.get_mut(idx) {
                if !b.take(r, w, now) {
                    return Err(DropReason::RateLimited);
                }
            }
        }
        self.source_room(id, p, src)
    }

    /// The per-source check alone: whether `src` may open one more connection to
    /// service `id` (the engine asks again when the SYN proxy opens a connection on a
    /// cookie ACK, since other handshakes of the source may have completed meanwhile).
    #[inline]
    pub fn source_room(&self, id: u32, p: &ServicePolicy, src: IpAddr) -> Result<(), DropReason> {
        if p.source_limit > 0 && self.sources.count(id, &Addr::from(src)) >= p.source_limit {
            return Err(DropReason::SourceLimit);
        }
        Ok(())
    }

    /// Counts a connection opened from `src` to service `id`; false if the table had no
    /// room (the connection is then not counted and must not be released).
    #[inline]
    pub fn opened(&mut self, id: u32, src: &Addr) -> bool {
        self.sources.inc(id, src)
    }

    /// Releases a counted connection of `src` to service `id` (it was freed).
    #[inline]
    pub fn released(&mut self, id: u32, src: &Addr) {
        self.sources.dec(id, src);
    }

    /// The source table (diagnostics, tests).
    pub fn sources(&self) -> &SourceTable {
        &self.sources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(l: &[&str]) -> Vec<IpNet> {
        l.iter().map(|s| s.parse().unwrap()).collect()
    }

    #[test]
    fn checks_apply_in_order_global_deny_service_deny_allow_rate_source() {
        let mut e = Edge::new(1, 4, 64, 7);
        e.set_deny(Arc::new(PrefixSet::build([(ip("192.0.2.0"), 24)])));
        e.rebind(1);
        let p = ServicePolicy::build(
            &nets(&["198.51.100.0/24", "10.9.0.0/16"]),
            &nets(&["10.0.0.0/8", "192.0.2.0/24"]),
            Some(RateLimit { rate: 2, burst: 2 }),
            1,
        );
        // Globally denied, though allowed by the service: denied, no token taken.
        assert_eq!(e.admit(0, 0, &p, ip("192.0.2.1"), 0), Err(DropReason::Denied));
        // Service deny beats its allow list.
        assert_eq!(e.admit(0, 0, &p, ip("10.9.1.1"), 0), Err(DropReason::Denied));
        assert_eq!(e.admit(0, 0, &p, ip("198.51.100.1"), 0), Err(DropReason::Denied));
        // Outside the allow list.
        assert_eq!(e.admit(0, 0, &p, ip("203.0.113.1"), 0), Err(DropReason::NotAllowed));
        // Two tokens, then rate limited (refusals above took none).
        assert_eq!(e.admit(0, 0, &p, ip("10.0.0.1"), 0), Ok(()));
        assert!(e.opened(0, &Addr::from(ip("10.0.0.1"))));
        // The source limit comes after the rate: this takes the second token, refused.
        assert_eq!(e.admit(0, 0, &p, ip("10.0.0.1"), 0), Err(DropReason::SourceLimit));
        assert_eq!(e.admit(0, 0, &p, ip("10.0.0.2"), 0), Err(DropReason::RateLimited));
        // Half a second later one token is back.
        assert_eq!(e.admit(0, 0, &p, ip("10.0.0.2"), 500), Ok(()));
        // An empty policy admits anything the global set does not deny.
        let none = ServicePolicy::default();
        assert!(none.is_empty() && !p.is_empty());
        assert_eq!(e.admit(0, 0, &none, ip("203.0.113.1"), 500), Ok(()));
        assert_eq!(e.admit(0, 0, &none, ip("192.0.2.9"), 500), Err(DropReason::Denied));
    }

    #[test]
    fn token_bucket_shares_rate_and_burst_among_workers_and_refills() {
        let r = RateLimit { rate: 100, burst: 10 };
        // Four workers: 25/s and ceil(10/4) = 3 tokens each.
        let mut b = Bucket::default();
        let took = (0..10).filter(|_| b.take(r, 4, 1000)).count();
        assert_eq!(took, 3);
        // 25/s: one token per 40 ms.
        assert!(!b.take(r, 4, 1039));
        assert!(b.take(r, 4, 1040));
        // A long pause refills to the burst, not beyond.
        let took = (0..10).filter(|_| b.take(r, 4, 100_000)).count();
        assert_eq!(took, 3);
        // burst 0 = one second's worth; clocks going back change nothing.
        let mut b = Bucket::default();
        let r = RateLimit { rate: 5, burst: 0 };
        assert_eq!((0..10).filter(|_| b.take(r, 1, 50)).count(), 5);
        assert!(!b.take(r, 1, 10));
    }

    #[test]
    fn rebind_refills_the_buckets() {
        let mut e = Edge::new(1, 2, 64, 1);
        e.rebind(1);
        let p = ServicePolicy::build(&[], &[], Some(RateLimit { rate: 1, burst: 1 }), 0);
        assert_eq!(e.admit(0, 0, &p, ip("10.0.0.1"), 0), Ok(()));
        assert_eq!(e.admit(0, 0, &p, ip("10.0.0.1"), 0), Err(DropReason::RateLimited));
        e.rebind(1);
        assert_eq!(e.admit(0, 0, &p, ip("10.0.0.1"), 0), Ok(()));
    }

    #[test]
    fn source_table_counts_releases_and_stays_bounded() {
        let mut t = SourceTable::new(64, 99);
        let a = |i: u32| Addr::from(IpAddr::from(std::net::Ipv4Addr::from(0x0a00_0000 + i)));
        assert!(t.inc(1, &a(1)) && t.inc(1, &a(1)) && t.inc(2, &a(1)));
        assert_eq!((t.count(1, &a(1)), t.count(2, &a(1)), t.count(1, &a(2))), (2, 1, 0));
        t.dec(1, &a(1));
        t.dec(1, &a(1));
        t.dec(1, &a(1)); // one too many: nothing there any more, nothing happens
        assert_eq!((t.count(1, &a(1)), t.count(2, &a(1)), t.len()), (0, 1, 1));
        // Fill: at most 7/8 of the 64 slots hold sources, the rest are refused.
        let admitted: Vec<u32> = (100..300).filter(|&i| t.inc(3, &a(i))).collect();
        assert_eq!(t.len(), 56);
        assert_eq!(admitted.len(), 55);
        // Every admitted source is still found after deletions shift the clusters.
        for (n, &i) in admitted.iter().enumerate() {
            if n % 2 == 0 {
                t.dec(3, &a(i));
            }
        }
        for (n, &i) in admitted.iter().enumerate() {
            assert_eq!(t.count(3, &a(i)), u32::from(n % 2 == 1), "source {i}");
        }
        assert_eq!(t.count(2, &a(1)), 1);
        for (n, &i) in admitted.iter().enumerate() {
            if n % 2 == 1 {
                t.dec(3, &a(i));
            }
        }
        t.dec(2, &a(1));
        assert!(t.is_empty());
        assert!(t.slots.iter().all(|s| s.count == 0));
    }
}
