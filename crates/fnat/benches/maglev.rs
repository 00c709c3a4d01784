//! Maglev (mh) lookup-table build time: 1000 real servers, table size 65537, the
//! work the control thread does once per reconfiguration of an mh service.
//! Also the per-connection lookup, for scale.
//!
//! Run: `cargo bench -p fnat --bench maglev`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use criterion::Criterion;
use fnat::sched::maglev::MaglevTable;
use fnat::service::{Dest, RsId};

fn dests(n: u32, weight: impl Fn(u32) -> u32) -> Vec<Dest> {
    (0..n)
        .map(|i| Dest {
            id: RsId(i),
            addr: IpAddr::V4(Ipv4Addr::from(0x0a01_0001 + i)),
            port: 8080,
            weight: weight(i),
            mark: Default::default(),
            upper: 0,
            lower: 0,
            fwd: Default::default(),
        })
        .collect()
}

fn build(c: &mut Criterion) {
    let equal = dests(1000, |_| 1);
    let weighted = dests(1000, |i| i % 10 + 1);
    let mut g = c.benchmark_group("maglev_build");
    g.sample_size(20);
    g.bench_function("1000 servers, M=65537, equal weights", |b| {
        b.iter(|| MaglevTable::build(black_box(&equal), 65_537))
    });
    g.bench_function("1000 servers, M=65537, weights 1..=10", |b| {
        b.iter(|| MaglevTable::build(black_box(&weighted), 65_537))
    });
    g.finish();

    let table = MaglevTable::build(&equal, 65_537);
    let client = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));
    c.bench_function("maglev_slot (per-connection hash)", |b| {
        b.iter(|| table.slot(black_box(client), black_box(40_000), false))
    });
}

// What `criterion_group!`/`criterion_main!` expand to, written out so that every item
// here carries a doc comment.
/// Run the benchmarks (needs `harness = false` on this bench target).
fn main() {
    let mut c = Criterion::default().configure_from_args();
    build(&mut c);
    c.final_summary();
}
