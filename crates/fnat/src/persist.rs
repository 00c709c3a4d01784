//! Persistence templates: "this client (masked by a netmask) goes to that real server
//! for this service, until the template expires" (ipvsadm `-p timeout -M netmask`).
//!
//! Each worker owns one [`PersistTable`] (inside its `SchedState`), sized at start-up:
//! the map reserves room up front and never grows past its capacity, so a new
//! connection never allocates; when it is full, a new template is refused
//! ([`PersistFull`]) and the caller counts it. Expired templates stop matching at
//! once (lookups compare the expiry with the clock) and their room is reclaimed by
//! [`PersistTable::expire`], which the worker calls periodically.
//!
//! Templates are keyed by the service's stable identity ([`SvcId`]) and hold a stable
//! real-server identity ([`RsId`]), so they survive a reconfiguration that keeps the
//! service and the server.

use std::collections::HashMap;

use crate::hash::SeededFold;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};

use crate::service::{RsId, SvcId};
use crate::types::Millis;

/// ipvsadm's default persistence timeout (`-p` without a value), in seconds.
pub const DEFAULT_PERSIST_TIMEOUT_S: u32 = 300;

/// Persistence settings of a service (ipvsadm `-p timeout -M netmask`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersistConfig {
    /// How long a template lives after its last use, in seconds (at least 1).
    #[serde(default = "default_timeout_s")]
    pub timeout_s: u32,
    /// Prefix length applied to IPv4 clients before keying the template (0..=32; 32 =
    /// one template per client address, 24 = one per /24, as ipvsadm `-M 255.255.255.0`).
    #[serde(default = "default_netmask_v4")]
    pub netmask_v4: u8,
    /// Prefix length applied to IPv6 clients (0..=128).
    #[serde(default = "default_netmask_v6")]
    pub netmask_v6: u8,
}

fn default_timeout_s() -> u32 {
    DEFAULT_PERSIST_TIMEOUT_S
}

fn default_netmask_v4() -> u8 {
    32
}

fn default_netmask_v6() -> u8 {
    128
}

impl Default for PersistConfig {
    fn default() -> Self {
        PersistConfig { timeout_s: DEFAULT_PERSIST_TIMEOUT_S, netmask_v4: 32, netmask_v6: 128 }
    }
}

impl PersistConfig {
    /// The client address as the template sees it: masked by the family's prefix.
    pub fn mask(&self, client: IpAddr) -> IpAddr {
        mask_addr(client, self.netmask_v4, self.netmask_v6)
    }

    /// The timeout in milliseconds of the worker clock.
    pub fn timeout_ms(&self) -> Millis {
        Millis::from(self.timeout_s) * 1000
    }
}

/// `addr` with every bit past the family's prefix length cleared (prefixes longer
/// than the address are treated as the full length).
pub fn mask_addr(addr: IpAddr, v4_prefix: u8, v6_prefix: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let bits = u32::from(a);
            let mask = match v4_prefix {
                0 => 0,
                p if p >= 32 => u32::MAX,
                p => u32::MAX << (32 - u32::from(p)),
            };
            IpAddr::V4(Ipv4Addr::from(bits & mask))
        }
        IpAddr::V6(a) => {
            let bits = u128::from(a);
            let mask = match v6_prefix {
                0 => 0,
                p if p >= 128 => u128::MAX,
                p => u128::MAX << (128 - u32::from(p)),
            };
            IpAddr::V6(Ipv6Addr::from(bits & mask))
        }
    }
}

/// What a template is found by: the service and the masked client address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PersistKey {
    /// The service's stable identity.
    pub svc: SvcId,
    /// The client address after masking with the service's netmask.
    pub client: IpAddr,
}

/// The persistence table is at its capacity: no template can be added until some
/// expire. The connection is refused and the refusal counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("persistence table full")]
pub struct PersistFull;

/// One template: where the client goes and until when.
#[derive(Debug, Clone, Copy)]
struct Template {
    rs: RsId,
    expires: Millis,
}

/// A worker's persistence templates, with a fixed capacity, and how many point to
/// each real server (ipvsadm's `PersistConn`).
#[derive(Debug)]
pub struct PersistTable {
    map: HashMap<PersistKey, Template, SeededFold>,
    capacity: usize,
    /// Templates held per real-server id (expired ones not yet reclaimed included);
    /// covers the ids given out so far ([`PersistTable::cover`]).
    per_rs: Vec<u32>,
}

/// One template as listed: the key, its server and the time it has left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateInfo {
    /// The service and the masked client.
    pub key: PersistKey,
    /// The real server the client goes to.
    pub rs: RsId,
    /// Milliseconds until it expires.
    pub expires_ms: Millis,
}

impl PersistTable {
    /// A table that holds up to `capacity` templates. It reserves twice that in the
    /// hash map so that inserting after removals only ever rehashes in place (the map
    /// cleans its tombstones without allocating while it is at most half full), hence
    /// no allocation after this call.
    pub fn with_capacity(capacity: usize) -> Self {
        PersistTable {
            map: HashMap::with_capacity_and_hasher(capacity.saturating_mul(2), SeededFold::random()),
            capacity,
            per_rs: Vec::new(),
        }
    }

    /// Makes the per-server counts cover ids below `rs_bound` (control path: called
    /// when a new service generation is bound, so counting never allocates).
    pub fn cover(&mut self, rs_bound: u32) {
        if self.per_rs.len() < rs_bound as usize {
            self.per_rs.resize(rs_bound as usize, 0);
        }
    }

    /// How many templates point to `rs` (expired ones not yet reclaimed included).
    pub fn count(&self, rs: RsId) -> u32 {
        self.per_rs.get(rs.0 as usize).copied().unwrap_or(0)
    }

    /// The template counts by real-server id.
    pub fn counts(&self) -> &[u32] {
        &self.per_rs
    }

    fn counted(&mut self, rs: RsId, up: bool) {
        if let Some(n) = self.per_rs.get_mut(rs.0 as usize) {
            *n = if up { n.saturating_add(1) } else { n.saturating_sub(1) };
        }
    }

    /// Up to `max` live templates from position `cursor` of the table's order, and the
    /// position to continue from (`None` at the end). Control path: it walks the table
    /// from its start to the page (a page of a large table costs the worker that walk),
    /// and a table changed between pages may repeat or skip a template.
    pub fn page(&self, cursor: u32, max: usize, now: Millis) -> (Vec<TemplateInfo>, Option<u32>) {
        let mut out = Vec::new();
        // Positions from the table's own count: a cursor from a client (u32::MAX, say)
        // only skips everything.
        for (pos, (key, t)) in self.map.iter().enumerate().skip(cursor as usize) {
            if out.len() >= max {
                return (out, Some(pos as u32));
            }
            if now < t.expires {
                out.push(TemplateInfo { key: *key, rs: t.rs, expires_ms: t.expires - now });
            }
        }
        (out, None)
    }

    /// How many templates the table may hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many templates it holds now (expired ones not yet reclaimed included).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds no template.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The real server of the live template for `key`, if there is one at `now`.
    pub fn lookup(&self, key: &PersistKey, now: Millis) -> Option<RsId> {
        match self.map.get(key) {
            Some(t) if now < t.expires => Some(t.rs),
            _ => None,
        }
    }

    /// Push the expiry of the template for `key` (if any) to `expires`: a template's
    /// timeout is counted from its last use.
    pub fn touch(&mut self, key: &PersistKey, expires: Millis) {
        if let Some(t) = self.map.get_mut(key) {
            t.expires = expires;
        }
    }

    /// Create or replace the template for `key`. Fails, changing nothing, when the
    /// key is new and the table is at capacity.
    pub fn insert(&mut self, key: PersistKey, rs: RsId, expires: Millis) -> Result<(), PersistFull> {
        if let Some(t) = self.map.get_mut(&key) {
            let old = std::mem::replace(t, Template { rs, expires }).rs;
            if old != rs {
                self.counted(old, false);
                self.counted(rs, true);
            }
            return Ok(());
        }
        if self.map.len() >= self.capacity {
            return Err(PersistFull);
        }
        self.map.insert(key, Template { rs, expires });
        self.counted(rs, true);
        Ok(())
    }

    /// Drop the template for `key`, if any (its server is gone or drained).
    pub fn remove(&mut self, key: &PersistKey) {
        if let Some(t) = self.map.remove(key) {
            self.counted(t.rs, false);
        }
    }

    /// Whether there is a template for `key`, live or expired but not yet reclaimed.
    pub fn contains(&self, key: &PersistKey) -> bool {
        self.map.contains_key(key)
    }

    /// Whether a new key would be refused.
    pub fn is_full(&self) -> bool {
        self.map.len() >= self.capacity
    }

    /// Reclaim every template expired at `now`; returns how many. It walks the whole
    /// table, so call it periodically (e.g. once a second), not per packet.
    pub fn expire(&mut self, now: Millis) -> usize {
        let before = self.map.len();
        let per_rs = &mut self.per_rs;
        self.map.retain(|_, t| {
            let live = now < t.expires;
            if !live {
                if let Some(n) = per_rs.get_mut(t.rs.0 as usize) {
                    *n = n.saturating_sub(1);
                }
            }
            live
        });
        before - self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn masks_v4_and_v6() {
        assert_eq!(mask_addr(v4("10.1.2.3"), 24, 128), v4("10.1.2.0"));
        assert_eq!(mask_addr(v4("10.1.2.3"), 32, 128), v4("10.1.2.3"));
        assert_eq!(mask_addr(v4("10.1.2.3"), 0, 128), v4("0.0.0.0"));
        assert_eq!(mask_addr(v4("10.1.2.3"), 9, 128), v4("10.0.0.0"));
        assert_eq!(mask_addr(v4("2001:db8::1:2"), 32, 64), v4("2001:db8::"));
        assert_eq!(mask_addr(v4("2001:db8::1:2"), 32, 128), v4("2001:db8::1:2"));
    }

    #[test]
    fn expiry_capacity_and_refresh() {
        let mut t = PersistTable::with_capacity(2);
        let k = |n: u32| PersistKey { svc: SvcId(1), client: IpAddr::V4(Ipv4Addr::from(n)) };
        t.insert(k(1), RsId(7), 1000).unwrap();
        t.insert(k(2), RsId(8), 2000).unwrap();
        assert_eq!(t.insert(k(3), RsId(9), 2000), Err(PersistFull));
        // Replacing an existing key is allowed when full.
        t.insert(k(2), RsId(9), 2000).unwrap();
        assert_eq!(t.lookup(&k(1), 999), Some(RsId(7)));
        assert_eq!(t.lookup(&k(1), 1000), None, "expired at its deadline");
        t.touch(&k(1), 5000);
        assert_eq!(t.lookup(&k(1), 1000), Some(RsId(7)));
        assert_eq!(t.expire(2500), 1);
        assert_eq!(t.len(), 1);
        t.insert(k(3), RsId(9), 9000).unwrap();
        assert!(t.is_full());
    }

    /// Counts per server follow inserts, replacements, removals and reclaims; a page
    /// lists the live templates only, and the pages together list each once.
    #[test]
    fn counts_per_server_and_pages() {
        let mut t = PersistTable::with_capacity(16);
        t.cover(3);
        let k = |n: u32| PersistKey { svc: SvcId(1), client: IpAddr::V4(Ipv4Addr::from(n)) };
        for n in 0..5 {
            t.insert(k(n), RsId(n % 2), 1000 + Millis::from(n)).unwrap();
        }
        assert_eq!((t.count(RsId(0)), t.count(RsId(1)), t.count(RsId(2))), (3, 2, 0));
        t.insert(k(0), RsId(2), 5000).unwrap();
        t.insert(k(0), RsId(2), 6000).unwrap();
        assert_eq!(t.counts(), [2, 2, 1], "replaced: moved once");
        t.remove(&k(1));
        t.remove(&k(1));
        assert_eq!(t.counts(), [2, 1, 1]);
        t.insert(k(9), RsId(7), 9000).unwrap();
        assert_eq!(t.count(RsId(7)), 0, "an id not covered is not counted");
        // At 1003: k(2) (until 1002) and k(3) (1003) have expired; k(4), k(0), k(9) have not.
        let mut seen = Vec::new();
        let mut cursor = Some(0);
        while let Some(c) = cursor {
            let (page, next) = t.page(c, 2, 1003);
            assert!(page.len() <= 2);
            seen.extend(page);
            cursor = next;
        }
        seen.sort_by_key(|i| i.key.client);
        let listed: Vec<(IpAddr, RsId, Millis)> = seen.iter().map(|i| (i.key.client, i.rs, i.expires_ms)).collect();
        assert_eq!(listed, [(k(0).client, RsId(2), 4997), (k(4).client, RsId(0), 1), (k(9).client, RsId(7), 7997)]);
        // A client's cursor past the end (the largest there is) pages nothing, no overflow.
        let (page, next) = t.page(u32::MAX, 2, 1003);
        assert!(page.is_empty() && next.is_none());
        assert_eq!(t.expire(1003), 2);
        assert_eq!(t.counts(), [1, 0, 1], "k(2) and k(3) reclaimed");
        assert_eq!(t.expire(10_000), 3);
        assert_eq!(t.counts(), [0, 0, 0]);
    }

    /// What the last page of a million templates costs the worker (run in release:
    /// `cargo test -p fnat --release --lib page_walk_time -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn page_walk_time() {
        const N: u32 = 1 << 20;
        let mut t = PersistTable::with_capacity(N as usize);
        t.cover(4);
        for n in 0..N {
            t.insert(PersistKey { svc: SvcId(0), client: IpAddr::V4(Ipv4Addr::from(n)) }, RsId(n % 4), 1000).unwrap();
        }
        let start = std::time::Instant::now();
        let (page, next) = t.page(N - 1000, 1000, 0);
        let took = start.elapsed();
        assert_eq!((page.len(), next), (1000, None));
        println!("last page of {N} templates: {took:?}");
    }

    #[test]
    fn no_growth_under_churn() {
        let mut t = PersistTable::with_capacity(64);
        let cap = t.map.capacity();
        for round in 0..200u32 {
            for i in 0..64u32 {
                let key = PersistKey { svc: SvcId(0), client: IpAddr::V4(Ipv4Addr::from(round * 1000 + i)) };
                t.insert(key, RsId(i), Millis::from(round) + 1).unwrap();
            }
            t.expire(Millis::from(round) + 1);
        }
        assert_eq!(t.map.capacity(), cap, "the map never reallocated");
    }
}
