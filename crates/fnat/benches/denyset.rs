//! The global deny set at its largest: a million prefixes (60 % host routes, 30 % /24s,
//! 10 % /20 to /23, like a real blocklist), its build time (the control
//! plane's, once per change) and the cost of one lookup (the worker's, once per new
//! connection), for addresses mostly outside it and inside it.
//!
//! Run: `cargo bench -p fnat --bench denyset`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use criterion::Criterion;
use fnat::denyset::PrefixSet;

fn rng(mut x: u64) -> impl FnMut() -> u64 {
    move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    }
}

fn prefixes(n: usize) -> Vec<(IpAddr, u8)> {
    let mut next = rng(0x5eed);
    (0..n)
        .map(|_| {
            let r = next();
            let len = match r % 10 {
                0..=5 => 32,
                6..=8 => 24,
                _ => 20 + (r >> 8) as u8 % 4,
            };
            (IpAddr::V4(Ipv4Addr::from((r >> 16) as u32)), len)
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let list = prefixes(1_000_000);
    let t = Instant::now();
    let set = PrefixSet::build(list.iter().copied());
    println!("denyset: built from {} prefixes in {:.1} ms", set.len(), t.elapsed().as_secs_f64() * 1e3);
    let mut g = c.benchmark_group("denyset_build");
    g.sample_size(10);
    g.bench_function("1M IPv4 prefixes", |b| b.iter(|| PrefixSet::build(black_box(&list).iter().copied())));
    g.finish();

    let mut next = rng(42);
    let probes: Vec<Ipv4Addr> = (0..4096).map(|_| Ipv4Addr::from(next() as u32)).collect();
    let hits = probes.iter().filter(|a| set.contains_v4(**a)).count();
    println!("denyset: {hits} of {} random probes are in the set", probes.len());
    let inside: Vec<Ipv4Addr> = list
        .iter()
        .step_by(250)
        .map(|(a, _)| match a {
            IpAddr::V4(a) => *a,
            IpAddr::V6(_) => unreachable!(),
        })
        .collect();
    let mut g = c.benchmark_group("denyset_lookup");
    g.bench_function("1M prefixes, random addresses (per lookup)", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) & 4095;
            set.contains_v4(black_box(probes[i]))
        })
    });
    g.bench_function("1M prefixes, addresses in the set (per lookup)", |b| {
        let mut i = 0;
        b.iter(|| {
            i = (i + 1) % inside.len();
            set.contains_v4(black_box(inside[i]))
        })
    });
    g.finish();
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
    c.final_summary();
}
