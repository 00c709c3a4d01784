//! Connection-path benchmarks (plain harness, `harness = false`): ns per packet for
//! established inbound and outbound FullNAT translation with 1 thousand, 1 million and
//! (opt-in, `RVS_BENCH_10M=1`: ~1.5 GB, ~20 s) 10 million live connections; ns per new
//! connection; ns per raw table lookup, and the memory's floor for it (two dependent
//! random reads per key, nothing else: [`memory_floor`]); bytes per connection.
//!
//! `cargo bench -p fnat --bench conn` (`RVS_BENCH_10M=1` for the 10M case; `RVS_BENCH_N=n`
//! for one population, with `RVS_BENCH_NEW_ONLY=1` to open its connections and stop;
//! `RVS_BENCH_SMALL_PAGES=1` to leave the table in 4 KiB pages: by default its pool and
//! buckets get rvsd's advice, transparent huge pages).
//!
//! Method: connections are opened through [`Engine::process_burst`] with SYNs from random
//! client addresses and ports (that is the new-connection figure, all-in: service
//! lookup, scheduler, local port probe, insert, timer, translation). Then bursts of 32
//! packets of randomly chosen live connections go through [`Engine::process_burst`];
//! each buffer is re-stamped with its connection's addresses and ports before the burst
//! (a few stores, like a NIC writing a fresh packet; the checksums are left as they are:
//! the engine only updates them incrementally on established flows). The SYNs' TCP
//! checksums are kept right as they are stamped (the engine checks a new flow's
//! checksum before scheduling it). "stamp only" is that re-stamping alone. The buffers
//! bring DPDK's prefetch hint, as rvsd's mbufs do ([`PacketBuf::prefetch`]): the figures
//! are the core as the dataplane runs it.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use fnat::buf::{NoRoom, PacketBuf, VecBuf};
use fnat::conn::{Conn, ConnKey, ConnTable, Staged, BURST};
use fnat::engine::config::{EngineConfig, LocalAddrSet, MemAdvice};
use fnat::engine::sync::SyncSettings;
use fnat::engine::{Engine, Verdict};
use fnat::sched::SchedKind;
use fnat::service::{RealServerConfig, ServiceConfig, ServiceTable};
use fnat::types::Proto;
use wire::builder::PacketBuilder;
use wire::sync::RecordRepr;
use wire::TcpFlags;

const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const RS_COUNT: u32 = 64;
const LIP_COUNT: u32 = 16;
const PACKETS: usize = 1 << 20;
const REPEAT: usize = 5;

/// A test buffer with the dataplane's cache hint (DPDK's prefetch, as rvsd's mbufs).
struct Buf(VecBuf);

impl PacketBuf for Buf {
    fn data(&self) -> &[u8] {
        self.0.data()
    }
    fn data_mut(&mut self) -> &mut [u8] {
        self.0.data_mut()
    }
    fn headroom(&self) -> usize {
        self.0.headroom()
    }
    fn tailroom(&self) -> usize {
        self.0.tailroom()
    }
    fn grow_front(&mut self, len: usize) -> Result<(), NoRoom> {
        self.0.grow_front(len)
    }
    fn grow_back(&mut self, len: usize) -> Result<(), NoRoom> {
        self.0.grow_back(len)
    }
    fn truncate(&mut self, len: usize) {
        self.0.truncate(len)
    }
    fn shrink_front(&mut self, len: usize) -> Result<(), NoRoom> {
        self.0.shrink_front(len)
    }
    #[inline(always)]
    fn prefetch<T>(r: &T) {
        dpdk::prefetch(r);
    }
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// One live connection as the benchmark stamps its packets.
#[derive(Clone, Copy)]
struct Flow {
    cip: [u8; 4],
    cport: u16,
    rip: [u8; 4],
    lip: [u8; 4],
    lport: u16,
}

fn v4(a: IpAddr) -> [u8; 4] {
    match a {
        IpAddr::V4(a) => a.octets(),
        IpAddr::V6(_) => unreachable!(),
    }
}

/// Writes src/dst address and ports into a bare IPv4+TCP packet (20-byte IP header).
#[inline]
fn stamp(d: &mut [u8], src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) {
    d[12..16].copy_from_slice(&src);
    d[16..20].copy_from_slice(&dst);
    d[20..22].copy_from_slice(&sport.to_be_bytes());
    d[22..24].copy_from_slice(&dport.to_be_bytes());
}

/// [`stamp`] keeping the TCP checksum right (updated incrementally, as a sender's own
/// would be): for the SYNs, whose checksum the engine verifies.
#[inline]
fn stamp_syn(d: &mut [u8], src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16) {
    let word = |d: &[u8], i: usize| u16::from_be_bytes([d[i], d[i + 1]]);
    let mut delta = wire::checksum::Delta::new();
    let addr = |d: &[u8], i: usize| u32::from_be_bytes([d[i], d[i + 1], d[i + 2], d[i + 3]]);
    delta.replace32(addr(d, 12), u32::from_be_bytes(src));
    delta.replace32(addr(d, 16), u32::from_be_bytes(dst));
    delta.replace16(word(d, 20), sport);
    delta.replace16(word(d, 22), dport);
    stamp(d, src, sport, dst, dport);
    let c = delta.apply(word(d, 36));
    d[36..38].copy_from_slice(&c.to_be_bytes());
}

/// An engine for `n` connections (and room to spare) with the benchmark's service.
fn engine(n: u32) -> (Engine, ServiceTable) {
    let mut svc = ServiceConfig::new(Proto::Tcp, VIP.into(), 80);
    svc.sched = SchedKind::Rr;
    svc.real_servers = (0..RS_COUNT)
        .map(|i| RealServerConfig {
            addr: Ipv4Addr::new(10, 2, (i >> 8) as u8, i as u8 + 1).into(),
            port: 8080,
            weight: 1,
            upper: 0,
            lower: 0,
            fwd: Default::default(),
        })
        .collect();
    let table = ServiceTable::build(&[svc], None).unwrap();
    let cfg = EngineConfig {
        conn_capacity: n + n / 8 + 64,
        local_addrs: vec![LocalAddrSet {
            service: None,
            lips: (0..LIP_COUNT).map(|i| IpAddr::from(Ipv4Addr::new(10, 1, 0, i as u8 + 1))).collect(),
        }],
        max_real_servers: RS_COUNT as usize,
        // Every SYN's connection stays: by default only a quarter of the pool may wait
        // in SYN_RECV, and the oldest would be evicted to make room.
        syn_recv_max: n + n / 8 + 64,
        // The plain path: in auto mode the SYN proxy would answer this SYN stream itself
        // (its own figures: `--bench synproxy`).
        synproxy: fnat::synproxy::SynProxyConfig {
            mode: fnat::synproxy::SynProxyMode::Off,
            ..fnat::synproxy::SynProxyConfig::default()
        },
        // The pool and the buckets in transparent huge pages, as rvsd allocates them.
        mem_advice: huge_pages().then_some(MemAdvice(dpdk::mem::advise_huge_pages)),
        ..EngineConfig::default()
    };
    let mut e = Engine::new(&cfg, 0).unwrap();
    e.bind(&table);
    (e, table)
}

fn setup(n: u32) -> (Engine, ServiceTable, Vec<Flow>, f64) {
    let (mut e, table) = engine(n);
    let syn = PacketBuilder::ipv4(Ipv4Addr::new(1, 1, 1, 1), VIP).tcp(1, 80).flags(TcpFlags::SYN).build();
    // SYNs from distinct clients scattered over 11.0.0.0/8 (no martian source among
    // them), prepared beforehand, opened in bursts of 32.
    // Client i is x = i × an odd constant mod 2^39 (a bijection, so no two SYNs share a
    // client address and port): its top 24 bits the address, the rest the port - 32768.
    let clients: Vec<([u8; 4], u16)> = (0..n as u64)
        .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15) & ((1 << 39) - 1))
        .map(|x| (((x >> 15) as u32 | 0x0b00_0000).to_be_bytes(), (x & 0x7fff) as u16 | 0x8000))
        .collect();
    let mut bufs: Vec<Buf> = (0..BURST).map(|_| Buf(VecBuf::new(&syn))).collect();
    let l3 = [0usize; BURST];
    let mut out = [Verdict::NotMine; BURST];
    let t0 = Instant::now();
    for chunk in clients.chunks(BURST) {
        for (b, (cip, cport)) in bufs.iter_mut().zip(chunk) {
            stamp_syn(b.data_mut(), *cip, *cport, VIP.octets(), 80);
        }
        let m = chunk.len();
        e.process_burst(&table, &mut bufs[..m], &l3[..m], 1, &mut out[..m]);
    }
    let new_ns = t0.elapsed().as_nanos() as f64 / n as f64;
    assert_eq!(e.stats().drops(fnat::stats::DropReason::BadL4Checksum), 0, "the SYNs' checksums are right");
    let flows = e
        .conns()
        .iter()
        .map(|(_, c)| Flow {
            cip: v4(c.cip().ip()),
            cport: c.cport(),
            rip: v4(c.rip().ip()),
            lip: v4(c.lip().ip()),
            lport: c.lport(),
        })
        .collect::<Vec<_>>();
    assert_eq!(flows.len(), n as usize, "every SYN opened a connection and it is still live");
    (e, table, flows, new_ns)
}

/// The packets of a run: one flow per packet, drawn at random from the live ones
/// (gathered beforehand so the timed loop reads them sequentially).
fn draw(flows: &[Flow], seed: u64) -> Vec<Flow> {
    let mut rng = Rng(seed);
    (0..PACKETS).map(|_| flows[(rng.next() % flows.len() as u64) as usize]).collect()
}

/// Best of `REPEAT` passes: ns per packet through `process_burst` (or stamping only).
fn run(e: &mut Engine, table: &ServiceTable, pkts: &[Flow], inbound: bool, stamp_only: bool) -> f64 {
    let tmpl = PacketBuilder::ipv4(Ipv4Addr::new(1, 1, 1, 1), VIP)
        .tcp(1, 80)
        .seq(1)
        .ack(1)
        .flags(TcpFlags::ACK)
        .payload(&[0u8; 6])
        .build();
    let mut bufs: Vec<Buf> = (0..BURST).map(|_| Buf(VecBuf::new(&tmpl))).collect();
    let l3 = [0usize; BURST];
    let mut out = [Verdict::NotMine; BURST];
    let vip = VIP.octets();
    let mut best = f64::MAX;
    for _ in 0..REPEAT {
        let mut fwd = 0usize;
        let t0 = Instant::now();
        for chunk in pkts.chunks(BURST) {
            for (b, f) in bufs.iter_mut().zip(chunk) {
                if inbound {
                    stamp(b.data_mut(), f.cip, f.cport, vip, 80);
                } else {
                    stamp(b.data_mut(), f.rip, 8080, f.lip, f.lport);
                }
            }
            if stamp_only {
                black_box(&mut bufs);
                continue;
            }
            let m = chunk.len();
            e.process_burst(table, &mut bufs[..m], &l3[..m], 2, &mut out[..m]);
            fwd += out[..m].iter().filter(|v| matches!(v, Verdict::Forward { .. })).count();
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / pkts.len() as f64);
        if !stamp_only {
            assert_eq!(fwd, pkts.len(), "every packet must hit its connection");
        }
    }
    best
}

/// Best of `REPEAT` passes: ns per key of `ConnTable::lookup_burst` with each key's
/// `find`, and of one-by-one `lookup` (inbound keys of random live flows).
fn raw_lookup(e: &Engine, pkts: &[Flow]) -> (f64, f64) {
    let vip = IpAddr::from(VIP).into();
    let keys: Vec<ConnKey> =
        pkts.iter().map(|f| ConnKey::new(Proto::Tcp, IpAddr::from(f.cip).into(), f.cport, vip, 80)).collect();
    let t: &ConnTable = e.conns();
    let mut staged = [Staged::default(); BURST];
    let (mut burst, mut single) = (f64::MAX, f64::MAX);
    for _ in 0..REPEAT {
        let t0 = Instant::now();
        for c in keys.chunks(BURST) {
            t.lookup_burst(c, &mut staged[..c.len()], Buf::prefetch);
            for (k, s) in c.iter().zip(&staged) {
                black_box(t.find(*s, k));
            }
        }
        burst = burst.min(t0.elapsed().as_nanos() as f64 / keys.len() as f64);
        let t0 = Instant::now();
        for k in &keys {
            black_box(t.lookup(k));
        }
        single = single.min(t0.elapsed().as_nanos() as f64 / keys.len() as f64);
    }
    (burst, single)
}

/// Whether the table's memory goes in transparent huge pages, as rvsd puts it (the
/// default; `RVS_BENCH_SMALL_PAGES=1`: without the advice).
fn huge_pages() -> bool {
    std::env::var_os("RVS_BENCH_SMALL_PAGES").is_none()
}

/// An empty vector with room for `n`, given the pool's memory advice first.
fn advised<T>(n: usize) -> Vec<T> {
    let v = Vec::with_capacity(n);
    if huge_pages() {
        dpdk::mem::advise_huge_pages(v.as_ptr() as usize, n * std::mem::size_of::<T>());
    }
    v
}

/// A connection's cache line, for [`memory_floor`].
#[repr(C, align(64))]
#[derive(Clone, Copy)]
struct Line([u32; 16]);

/// Best of `REPEAT` passes: ns per key of what a lookup cannot do without at this
/// table's size, the memory's part alone: two dependent random reads per key (a bucket's
/// word in an array of `buckets`, then the 64-byte line it names in one of `capacity`),
/// made as `lookup_burst` makes them (groups of `BURST`: the buckets prefetched as
/// hashed, then read, then the lines touched), without hashing or comparing. The gap
/// between it and "lookup burst" is the lookup's own work; what it costs is the floor
/// for any table that reads two random lines per packet.
fn memory_floor(buckets: usize, capacity: usize, keys: usize) -> f64 {
    let mut rng = Rng(7);
    let mut heads: Vec<u32> = advised(buckets);
    heads.extend((0..buckets).map(|_| (rng.next() % capacity as u64) as u32));
    let mut lines: Vec<Line> = advised(capacity);
    lines.resize(capacity, Line([1; 16]));
    let picks: Vec<u32> = (0..keys).map(|_| (rng.next() % buckets as u64) as u32).collect();
    let mut best = f64::MAX;
    for _ in 0..REPEAT {
        let t0 = Instant::now();
        let mut acc = 0u32;
        for group in picks.chunks(BURST) {
            let mut nodes = [0u32; BURST];
            for (n, &b) in nodes.iter_mut().zip(group) {
                Buf::prefetch(&heads[b as usize]);
                *n = b;
            }
            for n in nodes.iter_mut().take(group.len()) {
                *n = heads[*n as usize];
            }
            for &n in nodes.iter().take(group.len()) {
                acc ^= lines[n as usize].0[0];
            }
            black_box(acc);
        }
        best = best.min(t0.elapsed().as_nanos() as f64 / keys as f64);
    }
    best
}

/// The first ACK of each flow, in bursts (it moves the flow to ESTABLISHED, where
/// connection sync announces it; the announced records are taken after each burst, as
/// the worker loop does, into `sink`). Returns ns per flow.
fn establish(e: &mut Engine, table: &ServiceTable, flows: &[Flow], sink: &mut Vec<RecordRepr>) -> f64 {
    let tmpl = PacketBuilder::ipv4(Ipv4Addr::new(1, 1, 1, 1), VIP).tcp(1, 80).flags(TcpFlags::ACK).build();
    let mut bufs: Vec<Buf> = (0..BURST).map(|_| Buf(VecBuf::new(&tmpl))).collect();
    let l3 = [0usize; BURST];
    let mut out = [Verdict::NotMine; BURST];
    let t0 = Instant::now();
    for chunk in flows.chunks(BURST) {
        for (b, f) in bufs.iter_mut().zip(chunk) {
            stamp(b.data_mut(), f.cip, f.cport, VIP.octets(), 80);
        }
        let m = chunk.len();
        e.process_burst(table, &mut bufs[..m], &l3[..m], 1, &mut out[..m]);
        e.take_sync(|r| {
            sink.push(r);
            true
        });
    }
    t0.elapsed().as_nanos() as f64 / flows.len() as f64
}

/// What a generation that brings the first SYN proxy service costs the worker that
/// binds it: the proxy's per-slot state for `n` connections and room to spare, written
/// whole (`fnat::conn::slots`).
fn slot_state_case(n: u32) {
    let (mut e, table) = engine(n);
    let mut svc = table.services()[0].config.clone();
    svc.synproxy = Some(fnat::synproxy::SynProxyMode::On);
    let on = ServiceTable::build(&[svc], Some(&table)).unwrap();
    // As rvsd does: the publishing thread builds the array, the worker adopts it and binds.
    let (mut adopting, _) = engine(n);
    let mut slots = fnat::engine::SlotProvisioner::new(e.conns().capacity(), e.synproxy().mode(None), &table);
    let t0 = Instant::now();
    let new = slots.take_new(&on);
    let built = slots.build(new);
    let built_ms = t0.elapsed().as_secs_f64() * 1e3;
    let t0 = Instant::now();
    drop(adopting.adopt_slot_state(built));
    adopting.bind(&on);
    let adopt_ms = t0.elapsed().as_secs_f64() * 1e3;
    // A worker handed nothing writes it itself.
    let before = e.bytes_per_slot();
    let t0 = Instant::now();
    e.bind(&on);
    let ms = t0.elapsed().as_secs_f64() * 1e3;
    println!(
        "{n:>9} conns: the first SYN proxy service ({:.1} B/slot): the worker binds it in {adopt_ms:5.2} ms with \
         its state built by the publishing thread ({built_ms:5.1} ms there), {ms:5.1} ms building it itself",
        e.bytes_per_slot() - before
    );
}

fn case(n: u32) {
    let (mut e, table, flows, new_ns) = setup(n);
    establish(&mut e, &table, &flows, &mut Vec::new());
    let pkts = draw(&flows, 99);
    let stamp_ns = run(&mut e, &table, &pkts, true, true);
    let inb = run(&mut e, &table, &pkts, true, false);
    let outb = run(&mut e, &table, &pkts, false, false);
    let (lb, ls) = raw_lookup(&e, &pkts);
    let floor = memory_floor(e.conns().bucket_count(), e.conns().capacity() as usize, pkts.len());
    let bytes = e.conns().bytes_per_conn() * e.conns().capacity() as f64 / n as f64 + 8.0;
    println!(
        "{n:>9} conns: new {new_ns:6.1} ns/conn | established in {inb:5.1} ns/pkt, out {outb:5.1} ns/pkt \
         (stamp only {stamp_ns:4.1}) | lookup burst {lb:5.1} ns/key, single {ls:5.1} ns/key, memory floor {floor:4.1} ns/key | \
         {bytes:5.1} B/conn live, {:5.1} B/conn of capacity ({:5.1} with the engine's side arrays; the SYN proxy's \
         24 more where a service's mode is not off)",
        e.conns().bytes_per_conn() + 8.0,
        e.bytes_per_slot()
    );
}

/// Connection sync's cost on the worker with the connections `n` SYNs leave open: establishing each
/// (the first ACK, which announces it) and established bursts, with sync off and on; and
/// a peer's engine installing every announced record.
fn sync_case(n: u32) {
    let mut figures = Vec::new();
    let mut records = Vec::with_capacity(n as usize);
    for on in [false, true] {
        let (mut e, table, flows, _) = setup(n);
        if on {
            e.set_sync(Some(SyncSettings { announce: true, grace_ms: 10_000, max_synced: n }));
        }
        let mut sink = Vec::with_capacity(n as usize);
        let est = establish(&mut e, &table, &flows, &mut sink);
        assert_eq!(sink.len(), if on { flows.len() } else { 0 }, "every flow announced once, with sync on");
        let inb = run(&mut e, &table, &draw(&flows, 99), true, false);
        figures.push((est, inb));
        records = sink;
    }
    let (mut peer, table) = engine(n);
    peer.set_sync(Some(SyncSettings { announce: true, grace_ms: 10_000, max_synced: n }));
    let t0 = Instant::now();
    for r in &records {
        let _ = black_box(peer.install_synced(&table, r, 1));
    }
    let install = t0.elapsed().as_nanos() as f64 / records.len() as f64;
    assert_eq!(peer.synced_live() as usize, records.len(), "the peer installs every record");
    let [(est_off, in_off), (est_on, in_on)] = [figures[0], figures[1]];
    println!(
        "{:>9} conns, sync: establish {est_off:5.1} -> {est_on:5.1} ns/conn ({:.0} k conns/s announced per worker, \
         +{:.1} ns each) | established in {in_off:5.1} -> {in_on:5.1} ns/pkt ({:+.1} %) | peer installs {install:5.1} ns/record",
        records.len(),
        1e6 / est_on,
        est_on - est_off,
        (in_on / in_off - 1.0) * 100.0
    );
}

fn main() {
    // `cargo test --benches` runs this binary with `--bench` absent: keep it quick.
    let quick = !std::env::args().any(|a| a == "--bench");
    println!(
        "size_of::<Conn>() = {} B; timer links = 8 B/conn; buckets = {} x capacity, 4 B each",
        std::mem::size_of::<Conn>(),
        fnat::conn::BUCKETS_PER_CONN
    );
    if quick {
        case(1_000);
        sync_case(1_000);
        slot_state_case(1_000);
        return;
    }
    if let Some(n) = std::env::var("RVS_BENCH_N").ok().and_then(|v| v.parse().ok()) {
        if std::env::var_os("RVS_BENCH_NEW_ONLY").is_some() {
            // For a profiler: opening the connections alone.
            println!("{n:>9} conns: new {:6.1} ns/conn", setup(n).3);
            return;
        }
        case(n);
        sync_case(n);
        slot_state_case(n);
        return;
    }
    case(1_000);
    case(1_000_000);
    sync_case(1_000_000);
    slot_state_case(1_000_000);
    if std::env::var_os("RVS_BENCH_10M").is_some() {
        case(10_000_000);
    } else {
        println!("(10M case skipped: set RVS_BENCH_10M=1; needs ~1.5 GB and ~20 s)");
    }
}
