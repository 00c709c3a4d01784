//! Maglev hashing (`ip_vs_mh.c`; Eisenbud et al., NSDI 2016, section 3.4): consistent
//! hashing through a lookup table of prime size M, built once per generation.
//!
//! Each server with a positive weight gets a preference list of all M slots, the
//! permutation `offset + j * skip (mod M)`, with `offset` and `skip` from a hash of its
//! address and port (so every balancer with the same configuration builds the same
//! table). Servers take turns claiming their next free preferred slot until the table
//! is full. Weights: after one turn each (so every server owns a slot), the next turn
//! always goes to the server with the smallest `(owned + 1) / weight` (ties to the
//! earlier server), so at every point each server owns its weighted share of the
//! claimed slots within one slot; with equal weights this is plain round robin, as in
//! the paper. Removing a server frees its slots, which the others' preference lists
//! absorb, and moves few of the others' slots (see the tests for the figure).
//!
//! Lookup hashes the client address (and port with `hash_port`) to a slot. When that
//! server is drained or overloaded, with `hash_fallback` the client is rehashed a few
//! times, then the table is walked from its slot to the first available server; both
//! deterministic per client. Drained (weight 0) servers are left out of the table.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::net::IpAddr;

use super::{hash_endpoint, Candidates};
use crate::service::Dest;

/// Default table size: a prime above 65536, so up to ~650 servers get their share
/// within 1%.
pub const MH_DEFAULT_TABLE_SIZE: u32 = 65_537;
/// Smallest accepted table size (IPVS's smallest).
pub const MH_MIN_TABLE_SIZE: u32 = 251;
/// Largest accepted table size (the largest prime below 2^20; 4 MiB per service).
pub const MH_MAX_TABLE_SIZE: u32 = 1_048_573;

const EMPTY: u32 = u32::MAX;
const SEED_OFFSET: u64 = 0x6d68_6f66;
const SEED_SKIP: u64 = 0x6d68_736b;
const SEED_CLIENT: u64 = 0x6d68_636c;
/// How many rehashes the fallback tries before walking the table.
const FALLBACK_REHASHES: u64 = 8;

/// Whether `n` is prime (trial division; table build time only).
pub fn is_prime(n: u32) -> bool {
    if n < 2 {
        return false;
    }
    if n & 1 == 0 {
        return n == 2;
    }
    let mut d = 3u32;
    while u64::from(d) * u64::from(d) <= u64::from(n) {
        if n.rem_euclid(d) == 0 {
            return false;
        }
        d += 2;
    }
    true
}

/// A built Maglev lookup table: slot -> server index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaglevTable {
    entries: Vec<u32>,
}

/// A class's turn in the weighted fill (its members share a weight): ordered by
/// `(owned + 1) / weight`, then the index of the member whose turn it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Turn {
    next: u64,
    weight: u64,
    member: u32,
    class: u32,
}

impl Ord for Turn {
    fn cmp(&self, o: &Self) -> Ordering {
        // Reversed so that BinaryHeap (a max-heap) pops the smallest pass first.
        (o.next * self.weight).cmp(&(self.next * o.weight)).then(o.member.cmp(&self.member))
    }
}

impl PartialOrd for Turn {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl MaglevTable {
    /// Build the table of size `size` (a prime, at least the number of servers; the
    /// service table validates it) over the servers with a positive weight.
    pub fn build(dests: &[Dest], size: u32) -> Self {
        Self::build_with(dests, size, false)
    }

    /// [`build`](Self::build); `by_heap` gives every member a class of its own (the
    /// plain weighted fill the classes must agree with, in tests).
    fn build_with(dests: &[Dest], size: u32, by_heap: bool) -> Self {
        let m = size.max(1) as usize;
        let mut entries = vec![EMPTY; m];
        let members: Vec<u32> = (0..dests.len() as u32).filter(|&i| dests[i as usize].weight > 0).collect();
        if members.is_empty() {
            return MaglevTable { entries };
        }
        let m64 = m as u64;
        let mut pos: Vec<u64> = Vec::with_capacity(members.len());
        let mut skip: Vec<u64> = Vec::with_capacity(members.len());
        for &i in &members {
            let d = &dests[i as usize];
            pos.push(hash_endpoint(d.addr, d.port, SEED_OFFSET) % m64);
            skip.push(if m64 > 1 { hash_endpoint(d.addr, d.port, SEED_SKIP) % (m64 - 1) + 1 } else { 1 });
        }
        let mut filled = 0usize;
        // Which slots are claimed, a bit each: the probes (about M ln M of them, most
        // late in the fill) read 8 KiB that stay in the first-level cache rather than
        // the 256 KiB table.
        let mut taken = vec![0u64; m.div_ceil(64)];
        // Claim the member's next free preferred slot.
        let mut claim = |k: usize, entries: &mut Vec<u32>| {
            // The position lives in a register while the member probes.
            let (mut p, s) = (pos[k], skip[k]);
            loop {
                let c = p as usize;
                p += s;
                if p >= m64 {
                    p -= m64;
                }
                let (word, bit) = (c >> 6, 1u64 << (c & 63));
                if taken[word] & bit == 0 {
                    taken[word] |= bit;
                    entries[c] = members[k];
                    pos[k] = p;
                    return;
                }
            }
        };
        // One turn each, so every member owns a slot (size >= members).
        for k in 0..members.len() {
            if filled == m {
                break;
            }
            claim(k, &mut entries);
            filled += 1;
        }
        // The weighted fill: the member with the smallest pass `(owned + 1) / weight`
        // claims next, the lower index first on a tie. Members of one weight pass in
        // lockstep, so they form a class taking turns in index order, and the heap holds
        // a class per distinct weight (keyed by its pass and its next member), not a
        // member each: the same order at a fraction of the cost. (`by_heap`: a class per
        // member, the plain form, for the tests.)
        let mut classes: Vec<(u64, Vec<usize>)> = Vec::new();
        for (k, &i) in members.iter().enumerate() {
            let w = u64::from(dests[i as usize].weight);
            match classes.iter_mut().find(|(cw, _)| *cw == w && !by_heap) {
                Some((_, ks)) => ks.push(k),
                None => classes.push((w, vec![k])),
            }
        }
        let mut cursor = vec![0usize; classes.len()];
        let mut heap: BinaryHeap<Turn> = classes
            .iter()
            .enumerate()
            .map(|(c, (w, ks))| Turn { next: 2, weight: *w, member: ks[0] as u32, class: c as u32 })
            .collect();
        while filled < m {
            let Some(mut t) = heap.pop() else { break };
            let c = t.class as usize;
            // The class keeps the turn (no heap traffic) until another class's comes
            // first: runs of a whole class with few distinct weights.
            loop {
                claim(t.member as usize, &mut entries);
                filled += 1;
                cursor[c] += 1;
                if cursor[c] == classes[c].1.len() {
                    cursor[c] = 0;
                    t.next += 1;
                }
                t.member = classes[c].1[cursor[c]] as u32;
                if filled == m || heap.peek().is_some_and(|top| *top > t) {
                    break;
                }
            }
            heap.push(t);
        }
        MaglevTable { entries }
    }

    /// The table size M.
    pub fn size(&self) -> usize {
        self.entries.len()
    }

    /// The server index owning `slot`, if any.
    pub fn get(&self, slot: usize) -> Option<usize> {
        match self.entries.get(slot) {
            Some(&i) if i != EMPTY => Some(i as usize),
            _ => None,
        }
    }

    /// Every slot's server index (`u32::MAX` = none), for inspection and tests.
    pub fn entries(&self) -> &[u32] {
        &self.entries
    }

    /// The slot of a client: hash of its address, and port when `hash_port`.
    pub fn slot(&self, client: IpAddr, cport: u16, hash_port: bool) -> usize {
        self.rehash_slot(client, cport, hash_port, 0)
    }

    fn rehash_slot(&self, client: IpAddr, cport: u16, hash_port: bool, round: u64) -> usize {
        let port = if hash_port { cport } else { 0 };
        (hash_endpoint(client, port, SEED_CLIENT.wrapping_add(round)) % self.entries.len().max(1) as u64) as usize
    }
}

/// The client's server, with fallback as configured.
pub(crate) fn pick(
    c: &Candidates<'_>,
    t: &MaglevTable,
    client: IpAddr,
    cport: u16,
    hash_port: bool,
    fallback: bool,
) -> Option<usize> {
    let slot = t.slot(client, cport, hash_port);
    let first = t.get(slot)?;
    if c.available(first) {
        return Some(first);
    }
    if !fallback {
        return None;
    }
    for round in 1..=FALLBACK_REHASHES {
        if let Some(i) = t.get(t.rehash_slot(client, cport, hash_port, round)) {
            if c.available(i) {
                return Some(i);
            }
        }
    }
    // Rare (most servers unavailable): walk the table, after checking that the walk
    // will end early.
    if !(0..c.len()).any(|i| c.available(i)) {
        return None;
    }
    let m = t.size();
    (1..m).filter_map(|k| t.get((slot + k) % m)).find(|&i| c.available(i))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::net::Ipv4Addr;

    fn shares(t: &MaglevTable, n: usize) -> Vec<usize> {
        let mut s = vec![0; n];
        for &e in t.entries() {
            s[e as usize] += 1;
        }
        s
    }

    #[test]
    fn primes() {
        assert!(is_prime(65_537) && is_prime(251) && is_prime(MH_MAX_TABLE_SIZE) && is_prime(2));
        assert!(!is_prime(65_536) && !is_prime(1) && !is_prime(65_535) && !is_prime(9));
    }

    #[test]
    fn weight_classes_fill_as_one_turn_per_member_would() {
        for (n, w, m) in [(1, 1, 7), (3, 5, 7), (600, 1, 65_537), (1000, 3, 65_537)] {
            let d = dests(&vec![w; n]);
            assert_eq!(MaglevTable::build(&d, m), MaglevTable::build_with(&d, m, true), "{n} servers of weight {w}");
        }
        // Mixed weights, interleaved classes, ties across classes (2/2 = 4/4), and a
        // weight-0 server (no member).
        for weights in [vec![2, 0, 2, 2], vec![1, 2, 4, 2, 1, 4, 3], (0..1000).map(|i| i % 10 + 1).collect()] {
            let d = dests(&weights);
            for m in [251, 65_537] {
                if m >= weights.len() as u32 {
                    assert_eq!(MaglevTable::build(&d, m), MaglevTable::build_with(&d, m, true), "{weights:?} M={m}");
                }
            }
        }
    }

    /// Every balancer of an ECMP group must build the same table from the same servers,
    /// also while a rolling upgrade runs two versions: a change of the tables must be a
    /// deliberate one (this checksum was taken before the build was made faster, and
    /// still holds).
    #[test]
    fn tables_are_those_of_earlier_versions() {
        let mut h = 0u64;
        for w in [vec![1u32; 1000], (0..1000).map(|i| i % 10 + 1).collect(), vec![2, 0, 2, 2, 7, 1]] {
            for m in [251u32, 65_537] {
                if m as usize >= w.len() {
                    for &e in MaglevTable::build(&dests(&w), m).entries() {
                        h = h.wrapping_mul(31).wrapping_add(u64::from(e));
                    }
                }
            }
        }
        assert_eq!(h, 0x9736_2866_9024_4084);
    }

    #[test]
    fn weighted_share_within_one_percent() {
        // N = 100, M = 65537 > 100 N; weights 1..=4.
        let weights: Vec<u32> = (0..100).map(|i| i % 4 + 1).collect();
        let d = dests(&weights);
        let t = MaglevTable::build(&d, 65_537);
        let total_w: u32 = weights.iter().sum();
        let mut worst = 0f64;
        for (i, &got) in shares(&t, 100).iter().enumerate() {
            let want = 65_537.0 * f64::from(weights[i]) / f64::from(total_w);
            worst = worst.max((got as f64 - want).abs() / want);
        }
        println!("mh weighted share: worst deviation {:.3}%", worst * 100.0);
        assert!(worst < 0.01);
        // Equal weights, N = 600: still within 1% (109 slots each).
        let t = MaglevTable::build(&dests(&[1; 600]), 65_537);
        let s = shares(&t, 600);
        let (lo, hi) = (s.iter().min().unwrap(), s.iter().max().unwrap());
        assert!(hi - lo <= 1, "{lo}..{hi}");
    }

    #[test]
    fn removal_moves_few_other_slots() {
        let mut d = dests(&[1; 100]);
        let before = MaglevTable::build(&d, 65_537);
        let removed = d.remove(37);
        let after = MaglevTable::build(&d, 65_537);
        let addr_before = |slot: usize| {
            let i = before.get(slot).unwrap();
            if i == 37 {
                None
            } else {
                Some(dests(&[1; 100])[i].addr)
            }
        };
        let mut moved_others = 0;
        let mut owned_by_removed = 0;
        for slot in 0..65_537 {
            let now = d[after.get(slot).unwrap()].addr;
            assert_ne!(now, removed.addr);
            match addr_before(slot) {
                None => owned_by_removed += 1,
                Some(a) if a != now => moved_others += 1,
                Some(_) => {}
            }
        }
        let pct = 100.0 * moved_others as f64 / f64::from(65_537 - owned_by_removed);
        println!("mh: removing 1 of 100 servers moved {owned_by_removed} of its slots and {moved_others} ({pct:.2}%) of the others'");
        assert!(pct < 3.0, "{pct}");
    }

    #[test]
    fn drained_left_out_and_fallback() {
        let d = dests(&[1, 0, 1, 1]);
        let t = MaglevTable::build(&d, 251);
        assert_eq!(shares(&t, 4)[1], 0);
        let s = slots(4);
        let ok = counters(&[(0, 0, false); 4]);
        let over = counters(&[(0, 0, false), (0, 0, false), (0, 0, true), (0, 0, false)]);
        let none = counters(&[(0, 0, true); 4]);
        for n in 0..500u32 {
            let client = IpAddr::V4(Ipv4Addr::from(0xc000_0200 + n));
            let a = pick(&view(&d, &s, &ok), &t, client, 0, false, true).unwrap();
            assert_eq!(pick(&view(&d, &s, &ok), &t, client, 9, false, true), Some(a));
            let b = pick(&view(&d, &s, &over), &t, client, 0, false, true).unwrap();
            assert!(b != 2 && (a == 2 || a == b));
            if a == 2 {
                assert_eq!(pick(&view(&d, &s, &over), &t, client, 0, false, false), None);
            }
            assert_eq!(pick(&view(&d, &s, &none), &t, client, 0, false, true), None);
        }
        let empty = MaglevTable::build(&dests(&[0, 0]), 251);
        assert_eq!(pick(&view(&d, &s, &ok), &empty, "10.0.0.1".parse().unwrap(), 0, false, true), None);
    }

    #[test]
    #[ignore = "timing; run in release: cargo test -p fnat --release --lib maglev_build_time -- --ignored --nocapture"]
    fn maglev_build_time() {
        let d = dests(&[1; 1000]);
        let t0 = std::time::Instant::now();
        let runs = 20;
        for _ in 0..runs {
            std::hint::black_box(MaglevTable::build(std::hint::black_box(&d), 65_537));
        }
        println!("mh build, 1000 servers, M=65537: {:?} per table", t0.elapsed() / runs);
    }
}
