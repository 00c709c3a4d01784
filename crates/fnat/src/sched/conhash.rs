//! Consistent hashing on a ring (DPVS's `conhash`, `ip_vs_conhash.c` over libconhash):
//! the client address (DPVS's hash target `sip`; and port with `hash_port`) hashes to
//! a point on a 32-bit ring, and the first server point at or after it is the client's
//! server.
//!
//! Each server with a positive weight puts `160 x weight / gcd` points on the ring
//! (DPVS's `REPLICA`), each at a hash of the server's address, port and the point's
//! number, so every balancer with the same configuration builds the same ring and a
//! server's points stay where they are whatever the other servers do: adding or
//! removing a server moves only the clients whose points it takes or frees (about
//! `1/N` of them), and a weight change moves only the clients between the points added
//! or removed. A drained (weight 0) server has no points. Where the points would
//! exceed [`CONHASH_MAX_POINTS`] (large weights or many servers), every server's count
//! is scaled down in proportion (at least one point each).
//!
//! The hash is rvs's own (DPVS hashes the decimal text of the address fold with MD5),
//! so an rvs and a DPVS box do not send one client to the same server. When the
//! client's server is overloaded, with `hash_fallback` (rvs's default) the ring is
//! walked on to the next point of an available server, spreading the server's clients
//! over the others as a removal would; without it, no server (as DPVS does).

use std::net::IpAddr;

use super::{hash_endpoint, Candidates};
use crate::service::Dest;

/// Points per unit of weight (weights divided by their gcd), as DPVS's `REPLICA`.
pub const CONHASH_REPLICAS: u64 = 160;
/// Most points on one service's ring (8 bytes each: 1 MiB).
pub const CONHASH_MAX_POINTS: u64 = 1 << 17;

const SEED_POINT: u64 = 0x6368_706f;
const SEED_CLIENT: u64 = 0x6368_636c;

/// One service's ring: points sorted by position, each `position << 32 | server index`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConhashTable {
    points: Box<[u64]>,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl ConhashTable {
    /// The ring of `dests` (weights as point counts; drained servers left out).
    pub fn build(dests: &[Dest]) -> ConhashTable {
        let g = dests.iter().map(|d| u64::from(d.weight)).filter(|&w| w > 0).fold(0, gcd);
        if g == 0 {
            return ConhashTable { points: Box::new([]) };
        }
        let wanted: u64 = dests.iter().map(|d| u64::from(d.weight) / g * CONHASH_REPLICAS).sum();
        let count = |w: u32| {
            let n = u64::from(w) / g * CONHASH_REPLICAS;
            if wanted <= CONHASH_MAX_POINTS {
                n
            } else {
                (n * CONHASH_MAX_POINTS / wanted).max(1)
            }
        };
        let mut points = Vec::with_capacity(wanted.min(CONHASH_MAX_POINTS + dests.len() as u64) as usize);
        for (i, d) in dests.iter().enumerate().filter(|(_, d)| d.weight > 0) {
            for r in 0..count(d.weight) {
                let at = hash_endpoint(d.addr, d.port, SEED_POINT ^ r) >> 32;
                points.push(at << 32 | i as u64);
            }
        }
        points.sort_unstable();
        ConhashTable { points: points.into_boxed_slice() }
    }

    /// Points on the ring.
    pub fn len(&self) -> usize {
        self.points.len()
    }

    /// Whether the ring has no point (no server with a positive weight).
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The index of the first point at or after the client's position (wrapping).
    fn first_point(&self, client: IpAddr, cport: u16, hash_port: bool) -> usize {
        let port = if hash_port { cport } else { 0 };
        let at = hash_endpoint(client, port, SEED_CLIENT) >> 32;
        let i = self.points.partition_point(|&p| p >> 32 < at);
        if i == self.points.len() {
            0
        } else {
            i
        }
    }

    /// The server of point `i`.
    fn server(&self, i: usize) -> Option<usize> {
        self.points.get(i).map(|&p| (p & 0xffff_ffff) as usize)
    }
}

/// The client's server, with fallback as configured.
pub(crate) fn pick(
    c: &Candidates<'_>,
    t: &ConhashTable,
    client: IpAddr,
    cport: u16,
    hash_port: bool,
    fallback: bool,
) -> Option<usize> {
    let start = t.first_point(client, cport, hash_port);
    let first = t.server(start)?;
    if c.available(first) {
        return Some(first);
    }
    // The walk ends early only if some server is available: check that first.
    if !fallback || !(0..c.len()).any(|i| c.available(i)) {
        return None;
    }
    let n = t.len();
    (1..n).filter_map(|k| t.server((start + k) % n)).find(|&i| c.available(i))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;
    use std::net::Ipv4Addr;

    fn client(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0xc633_0000 + i))
    }

    fn picks(d: &[Dest], t: &ConhashTable, n: u32) -> Vec<Option<usize>> {
        let (s, c) = (slots(d.len()), counters(&vec![(0, 0, false); d.len()]));
        let v = view(d, &s, &c);
        (0..n).map(|i| pick(&v, t, client(i), 0, false, true)).collect()
    }

    /// 160 points per unit of weight (weights over their gcd); shares of 100,000
    /// clients follow the weights within a few percent.
    #[test]
    fn points_and_shares_follow_the_weights() {
        let d = dests(&[2, 4, 6, 0]);
        let t = ConhashTable::build(&d);
        assert_eq!(t.len(), (1 + 2 + 3) * 160);
        let mut share = [0usize; 4];
        for p in picks(&d, &t, 100_000) {
            share[p.unwrap()] += 1;
        }
        assert_eq!(share[3], 0, "a drained server has no point");
        for (i, want) in [(0, 1.0 / 6.0), (1, 2.0 / 6.0), (2, 3.0 / 6.0)] {
            let got = share[i] as f64 / 100_000.0;
            assert!((got - want).abs() < 0.05, "server {i}: {got} of the clients, want {want}");
        }
    }

    /// Removing one of 10 servers moves only its own clients (about a tenth); the
    /// others keep theirs. Adding it back restores the first mapping exactly.
    #[test]
    fn removing_a_server_moves_only_its_clients() {
        let d = dests(&[1; 10]);
        let before = picks(&d, &ConhashTable::build(&d), 20_000);
        let mut drained = d.clone();
        drained[3].weight = 0;
        let after = picks(&drained, &ConhashTable::build(&drained), 20_000);
        let mut moved = 0;
        for (b, a) in before.iter().zip(&after) {
            if b != a {
                assert_eq!(*b, Some(3), "only server 3's clients move");
                moved += 1;
            }
        }
        assert!((1_000..3_000).contains(&moved), "{moved} of 20,000 moved");
        assert_eq!(picks(&d, &ConhashTable::build(&d), 20_000), before, "the same ring again");
    }

    /// The ring depends on the servers' addresses, not on their order in the list.
    #[test]
    fn the_ring_does_not_depend_on_the_list_order() {
        let d = dests(&[1, 2, 3]);
        let mut r = d.clone();
        r.reverse();
        let (a, b) = (picks(&d, &ConhashTable::build(&d), 5_000), picks(&r, &ConhashTable::build(&r), 5_000));
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.map(|i| d[i].addr), y.map(|i| r[i].addr));
        }
    }

    /// Large weights are scaled down to the cap, keeping their proportion; every server
    /// keeps at least one point.
    #[test]
    fn large_weights_are_capped() {
        let d = dests(&[65_535, 65_534, 1]);
        let t = ConhashTable::build(&d);
        assert!(t.len() as u64 <= CONHASH_MAX_POINTS + 3, "{}", t.len());
        let of = |i: usize| t.points.iter().filter(|&&p| (p & 0xffff_ffff) as usize == i).count();
        assert!(of(2) >= 1 && of(0) > 60_000 && of(1) > 60_000, "{} {} {}", of(0), of(1), of(2));
        assert!(ConhashTable::build(&dests(&[0, 0])).is_empty());
        assert!(ConhashTable::build(&[]).is_empty());
    }

    /// An overloaded server's clients go to the next available point with fallback,
    /// nowhere without; nothing is available: none.
    #[test]
    fn overload_and_fallback() {
        let d = dests(&[1, 1, 1]);
        let t = ConhashTable::build(&d);
        let s = slots(3);
        let c = counters(&[(0, 0, false), (0, 0, true), (0, 0, false)]);
        let v = view(&d, &s, &c);
        let all = picks(&d, &t, 3_000);
        let mut spread = [0usize; 3];
        for (i, p) in all.iter().enumerate() {
            let (with, without) =
                (pick(&v, &t, client(i as u32), 0, false, true), pick(&v, &t, client(i as u32), 0, false, false));
            if *p == Some(1) {
                assert_eq!(without, None);
                spread[with.unwrap()] += 1;
            } else {
                assert_eq!((with, without), (*p, *p), "others keep their server");
            }
        }
        assert!(spread[0] > 100 && spread[2] > 100 && spread[1] == 0, "{spread:?}");
        let none = counters(&[(0, 0, true); 3]);
        assert_eq!(pick(&view(&d, &s, &none), &t, client(1), 0, false, true), None);
    }

    /// With `hash_port`, one client's connections from different ports spread.
    #[test]
    fn hash_port_spreads_one_client() {
        let d = dests(&[1; 4]);
        let t = ConhashTable::build(&d);
        let (s, c) = (slots(4), counters(&[(0, 0, false); 4]));
        let v = view(&d, &s, &c);
        let seen: std::collections::BTreeSet<_> =
            (1000..1100).filter_map(|p| pick(&v, &t, client(7), p, true, true)).collect();
        assert_eq!(seen.len(), 4);
        let one: std::collections::BTreeSet<_> =
            (1000..1100).filter_map(|p| pick(&v, &t, client(7), p, false, true)).collect();
        assert_eq!(one.len(), 1);
    }

    #[test]
    #[ignore = "timing; run in release: cargo test -p fnat --release --lib conhash_build_time -- --ignored --nocapture"]
    fn conhash_build_time() {
        let d = dests(&[1; 1000]);
        let t0 = std::time::Instant::now();
        let runs = 20;
        for _ in 0..runs {
            std::hint::black_box(ConhashTable::build(std::hint::black_box(&d)));
        }
        println!(
            "conhash build, 1000 servers, {} points: {:?} per ring",
            ConhashTable::build(&d).len(),
            t0.elapsed() / runs
        );
    }
}
