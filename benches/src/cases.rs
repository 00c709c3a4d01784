//! The benchmark cases: what each subcommand runs on the lcores and feeds.
//!
//! - [`run_worker`] (`rvs-bench run`): the real worker on lcore 1, its real servers in
//!   one forwarding mode (`--fwd`); per population of live connections (small, then
//!   large), established flows inbound (client → VIP) and outbound (real server →
//!   LIP:lport under FullNAT, → the client under NAT, learned with `ListConns`; not
//!   under DR and TUN, whose replies do not pass rvs), and new connections (SYNs of
//!   distinct flows). Every measured packet must be forwarded.
//! - [`run_redirect`] (`rvs-bench redirect`): two workers; a reply at its owner (the
//!   plain path) against a reply at the other worker, redirected to the owner.
//! - [`run_io`] (`rvs-bench io`): the same feeder and ports with a bare macswap loop
//!   instead of the worker (this harness's own ceiling).
//!
//! Each builds its rig (`crate::harness`) and workers (`crate::setup`), opens the
//! connections with real handshakes, measures with the [`Harness`], and tears down in
//! the order DPDK needs (ports before the pool, the pool before the EAL).

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use dpdk::{Burst, Mbuf, MbufRing, RingSync};
use fnat::engine::listing::ConnInfo;
use fnat::sapool::PortOwnership;
use fnat::tcp_state::TcpState;
use fnat::types::FwdMode;
use frame::NetCounter;
use rvsd::shared::{ConnFilter, Shared};

use crate::cli::{fwd_label, RunArgs};
use crate::frames::{conn_frames, io_frames, syns, Feed, Frames};
use crate::harness::{
    cpu_ns, last_stats, next_queues, rig, set_sched_idle, thread_named, FeedTarget, Harness, IoCounters, Rig, Target,
};
use crate::report::{merge, CaseResult};
use crate::setup::{Setup, STREAM_FLOWS};

/// Slots of each redirect ring, as rvsd's (`REDIRECT_RING` in crates/rvsd/src/dataplane.rs).
const REDIRECT_RING: u32 = 4096;
/// Rounds the redirect cases are interleaved in (each case gets `secs / ROUNDS` per round).
const ROUNDS: usize = 4;

/// Opens the connections of flows `from..to` (clients from `base`) with a full
/// handshake (SYN, SYN-ACK from the real server to the LIP:lport the worker chose, or
/// to the client under NAT, ACK; DR and TUN: SYN and ACK, the SYN-ACK does not pass
/// rvs) and returns every live connection. The handshakes go in rounds of at most
/// `chunk` SYNs: a worker keeps a limited number of half-open connections and evicts
/// the oldest past it ([`Setup::syn_recv_limit`]). After each round's SYNs the worker
/// lists its half-open connections only (`ListConns` filtered on `SYN_RECV`: the
/// connections of earlier rounds, established, are skipped in the worker and never
/// copied), so a round costs its own connections and one walk of the pool, not the
/// whole population; the population is listed in full once, at the end.
fn open(h: &mut Harness, base: Ipv4Addr, from: u32, to: u32, chunk: u32) -> Result<Vec<ConnInfo>> {
    let t0 = Instant::now();
    // Time spent building frames, feeding the handshakes, and listing.
    let (mut build, mut feed, mut list) = (0.0, 0.0, 0.0);
    let lap = |t: &mut Instant, acc: &mut f64| {
        *acc += t.elapsed().as_secs_f64();
        *t = Instant::now();
    };
    let mac = h.src_mac;
    let mut lo = from;
    while lo < to {
        let hi = to.min(lo.saturating_add(chunk.max(1)));
        let mut t = Instant::now();
        let syns = syns(mac, base, lo, hi);
        lap(&mut t, &mut build);
        h.feed_all(&mut Feed::once(&syns));
        drop(syns);
        lap(&mut t, &mut feed);
        let half = h.list(ConnFilter::State(TcpState::SynRecv))?;
        lap(&mut t, &mut list);
        if half.len() != (hi - lo) as usize {
            eprintln!("rvs-bench: warning: {} half-open connections after {} SYNs", half.len(), hi - lo);
        }
        let f = conn_frames(mac, &half, false)?;
        drop(half);
        lap(&mut t, &mut build);
        h.feed_all(&mut Feed::once(&f.synack));
        h.feed_all(&mut Feed::once(&f.ack));
        lap(&mut t, &mut feed);
        lo = hi;
    }
    let mut t = Instant::now();
    let conns = h.list(ConnFilter::All)?;
    lap(&mut t, &mut list);
    let est = conns.iter().filter(|c| c.state == TcpState::Established).count();
    eprintln!(
        "rvs-bench: opened flows {from}..{to}: {} live, {est} established, {} with TOA ({:.1} s: handshakes fed {feed:.1} s, frames built {build:.1} s, listings {list:.1} s)",
        conns.len(),
        conns.iter().filter(|c| c.toa).count(),
        t0.elapsed().as_secs_f64()
    );
    if est != conns.len() {
        bail!("{} of {} connections are not established", conns.len() - est, conns.len());
    }
    Ok(conns)
}

/// Publishes a snapshot with `syn_recv` as the SYN_RECV timeout and waits for the worker.
fn set_syn_recv(h: &mut Harness, shared: &Shared, syn_recv: u32) -> Result<()> {
    let mut s = (*shared.current()).clone();
    s.gen += 1;
    s.timeouts.syn_recv = syn_recv;
    let gen = s.gen;
    shared.publish(s);
    let deadline = dpdk::tsc() + h.secs_to_tsc(5.0);
    while shared.workers[h.wid].seen_gen.load(Ordering::Acquire) != gen {
        if dpdk::tsc() > deadline {
            bail!("the worker did not take generation {gen}");
        }
        std::hint::spin_loop();
    }
    Ok(())
}

/// The new-connection case: SYNs of distinct flows (not in the table), each connection
/// expiring ~1 ms after its SYN (SYN_RECV timeout 0, 1 ms timer wheel), so the table
/// stays at its population while connections are created and freed at the same rate.
fn new_conns(h: &mut Harness, shared: &Shared, name: &str, live: u64, secs: f64) -> Result<CaseResult> {
    let stream = syns(h.src_mac, Ipv4Addr::new(10, 128, 0, 0), 0, STREAM_FLOWS);
    set_syn_recv(h, shared, 0)?;
    let r = h.measure(name, live, &stream, secs);
    // Let the ring drain and the stream's connections expire (SYN_RECV timeout 0)
    // before the timeout goes back up.
    h.feed_all(&mut Feed::idle());
    std::thread::sleep(std::time::Duration::from_millis(20));
    set_syn_recv(h, shared, fnat::tcp_state::Timeouts::default().syn_recv)?;
    // Let the stream's connections expire before the next case.
    let deadline = dpdk::tsc() + h.secs_to_tsc(5.0);
    loop {
        let rep = h.report(&mut Feed::idle())?;
        if rep.conns as u64 <= live || dpdk::tsc() > deadline {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    r
}

/// `rvs-bench run`: the real worker on lcore 1, its real servers in mode `--fwd`,
/// measured by [`worker_cases`].
pub fn run_worker(a: &RunArgs) -> Result<Vec<CaseResult>> {
    a.check_populations()?;
    let Rig { eal, pool, rings, sink, src, mut rx, mut tx } = rig(a, 1, "0@0,1@1")?;
    let ring = Arc::clone(&rings[0]);
    eprintln!("rvs-bench: real servers forwarded in {} mode", fwd_label(a.fwd));
    if a.fwd == FwdMode::Tunnel {
        // The outer header goes into the headroom of the mbuf the frame came in (the
        // feeder's copies start where a NIC's DMA would).
        let m = Mbuf::alloc(&pool).ok_or_else(|| anyhow!("mbuf pool empty"))?;
        let need = fnat::tunnel::overhead(true);
        if m.headroom() < need {
            bail!("mbuf headroom {} bytes: the tunnel's outer header needs {need}", m.headroom());
        }
        eprintln!("rvs-bench: mbuf headroom {} bytes, the tunnel's outer header takes {need}", m.headroom());
    }
    let setup = Setup::new(a.large, 1, a.fwd, a.lips, &sink, &src)?;
    let shared = Arc::clone(&setup.shared);
    // One worker: no other worker to redirect to.
    let worker = setup.worker(0, &pool, next_queues(&mut rx, &mut tx), vec![None], Vec::new())?;
    let handle = eal.launch(1, move || worker.run()).context("launch the worker on lcore 1")?;
    let mut h = Harness::new(&pool, &ring, sink, src, Target::Worker(Arc::clone(&shared)))?;
    let result = worker_cases(&mut h, &shared, a, setup.syn_recv_limit() / 2);
    shared.stop.store(true, Ordering::Relaxed);
    let rc = handle.wait();
    if result.is_ok() {
        if let Some(fin) = last_stats(&shared, 0) {
            eprintln!(
                "rvs-bench: worker stopped (rc {rc}): rx {} tx {} loops {} busy {} conns created {} live {}",
                fin.net.get(NetCounter::RxPackets),
                fin.net.get(NetCounter::TxPackets),
                fin.net.get(NetCounter::Loops),
                fin.net.get(NetCounter::BusyLoops),
                fin.core.total.conns,
                fin.conns
            );
        }
    }
    // Ports before the pool, the pool before the EAL.
    drop(h);
    drop(shared);
    drop(setup);
    drop(ring);
    drop(rings);
    drop(pool);
    drop(eal);
    result
}

/// Fails unless the worker forwarded (handed to a transmit queue) every packet it
/// received during case `r` and dropped none: a case that drops would measure the drop
/// path, not the mode's forwarding.
fn check_forwarded(r: &CaseResult) -> Result<()> {
    if r.rx_pkts == 0 || r.tx_pkts < r.rx_pkts || !r.drops.is_empty() {
        bail!(
            "{} (live {}): the worker received {} packets and forwarded {}, drops {:?}: every packet must be forwarded",
            r.case,
            r.live,
            r.rx_pkts,
            r.tx_pkts,
            r.drops
        );
    }
    Ok(())
}

/// The cases of [`run_worker`], per population: the connections are opened (the small
/// population, then the rest of the large one), then established inbound, established
/// outbound (FullNAT and NAT only: DR and TUN replies do not pass rvs) and new
/// connections are measured; `est-in-scraped` under FullNAT only. Case names carry the
/// mode other than FullNAT ([`RunArgs::case_name`]).
///
/// Handshakes are opened `chunk` at a time (see [`open`]).
fn worker_cases(h: &mut Harness, shared: &Shared, a: &RunArgs, chunk: u32) -> Result<Vec<CaseResult>> {
    let mut out = Vec::new();
    let mut push = |mut r: CaseResult| -> Result<()> {
        r.fwd = a.fwd;
        check_forwarded(&r)?;
        out.push(r);
        Ok(())
    };
    for (i, &n) in [a.small, a.large].iter().enumerate() {
        let from = if i == 0 { 0 } else { a.small };
        if n <= from && i > 0 {
            continue;
        }
        let mut conns = open(h, Ipv4Addr::new(10, 0, 0, 0), from, n, chunk)?;
        if i == 0 {
            h.calibrate_idle()?;
        }
        // The listing gives the connections in pool order; traffic comes in no order:
        // frames in listing order would walk the pool line after line, which the
        // hardware prefetcher serves, flattering every large population.
        shuffle(&mut conns);
        let f = conn_frames(h.src_mac, &conns, true)?;
        drop(conns);
        let live = f.data_in.count() as u64;
        if a.rest > 0.0 {
            eprintln!("rvs-bench: resting {} s before est-in at {live} live", a.rest);
            std::thread::sleep(std::time::Duration::from_secs_f64(a.rest));
        }
        push(h.measure(&a.case_name("est-in"), live, &f.data_in, a.secs)?)?;
        if i == 0 && a.fwd == FwdMode::FullNat {
            // The same with the worker's counters asked for every 100 ms, as a
            // Prometheus scrape at that interval asks (issue 16: metrics cost nothing).
            h.poll_stats = Some(0.1);
            let scraped = h.measure("est-in-scraped", live, &f.data_in, a.secs);
            h.poll_stats = None;
            push(scraped?)?;
        }
        if a.fwd.replies_through() {
            push(h.measure(&a.case_name("est-out"), live, &f.data_out, a.secs)?)?;
        }
        drop(f);
        push(new_conns(h, shared, &a.case_name("new-conn"), live, a.secs)?)?;
    }
    Ok(out)
}

/// Puts `v` in a random order (Fisher–Yates; a fixed seed, so every run sends the same
/// sequence).
fn shuffle<T>(v: &mut [T]) {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in (1..v.len()).rev() {
        // xorshift64
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.swap(i, (x % (i as u64 + 1)) as usize);
    }
}

/// `rvs-bench redirect`: what an established outbound packet (real server →
/// LIP:lport) costs when it reaches a worker that does not own its local port and is
/// handed to the owner over the redirect ring, against the plain path (it reaches its
/// owner).
///
/// Two real workers of a two-worker configuration (`engine_config(cfg, id, 2)`: worker
/// 0 owns the even local ports, worker 1 the odd ones), each with its own queue on both
/// ports, its own engine and its redirect rings wired as rvsd wires them, on lcores 1
/// and 2, both on CPU 1 (`--lcores 0@0,1@1,2@1`). Only one is measured at a time: the
/// other is set to `SCHED_IDLE` (`chrt --idle`), so it keeps about 0.3 % of the CPU.
/// Two busy-polling workers time-sliced on one CPU would hand packets over only at the
/// scheduler's slices (milliseconds, more than a 4096-slot ring holds), so the feeder
/// on CPU 0 stands in for the other worker at the far end of the redirect ring:
/// - `rd-plain-w0`: worker 0's replies to its own queue: the plain path (as `est-out`);
/// - `rd-in-w0`: the same replies put into worker 0's redirect ring from worker 1 by
///   the feeder (tagged with the source port, as worker 1 tags them): the owner's half
///   of a redirected packet;
/// - `rd-out-w1`: worker 0's replies to worker 1's queue; worker 1 (with as many
///   connections of its own, so its table misses cost what they would) looks each up,
///   finds that worker 0 owns its port and redirects it into the ring to worker 0,
///   which the feeder empties: the receiving worker's half;
/// - `rd-plain-w1`: worker 1's own replies: the plain path on the other worker.
///
/// The four cases run in [`ROUNDS`] interleaved rounds so that they see the same
/// machine. The figures are worker CPU time per packet (on-CPU time less empty
/// loops): a redirected packet costs `rd-out-w1` + `rd-in-w0`, the plain one
/// `rd-plain-w0`.
pub fn run_redirect(a: &RunArgs) -> Result<Vec<CaseResult>> {
    a.check_populations()?;
    a.check_fullnat("redirect")?;
    let Rig { eal, pool, rings, sink, src, mut rx, mut tx } = rig(a, 2, "0@0,1@1,2@1")?;
    // The same table size as `run` (so the plain path here compares with `est-out`).
    let setup = Setup::new(a.large, 2, FwdMode::FullNat, a.lips, &sink, &src)?;
    let shared = Arc::clone(&setup.shared);
    let ring = |name: &str| MbufRing::new(name, REDIRECT_RING, RingSync::SpSc).with_context(|| format!("ring {name}"));
    let taken = || anyhow!("ring handle taken");
    // Worker 0 → worker 1: wired, never used (worker 0 owns every reply it gets).
    let rd_0_1 = ring("rvsbench_rd_0_1")?;
    // Worker 1 → worker 0: worker 1 enqueues, the feeder empties it (as worker 0 would).
    let rd_1_0 = ring("rvsbench_rd_1_0")?;
    // "Worker 1" → worker 0: the feeder enqueues (as worker 1 would), worker 0 drains it.
    let rd_f_0 = ring("rvsbench_rd_f_0")?;
    let mut workers = Vec::new();
    for id in 0..2u16 {
        let (redirect_tx, redirect_rx) = if id == 0 {
            (vec![None, Some(rd_0_1.producer().ok_or_else(taken)?)], vec![rd_f_0.consumer().ok_or_else(taken)?])
        } else {
            (vec![Some(rd_1_0.producer().ok_or_else(taken)?), None], vec![rd_0_1.consumer().ok_or_else(taken)?])
        };
        workers.push(setup.worker(id, &pool, next_queues(&mut rx, &mut tx), redirect_tx, redirect_rx)?);
    }
    let tids = [thread_named("rte-worker-1"), thread_named("rte-worker-2")];
    let [Some(t0), Some(t1)] = tids else { bail!("no lcore threads rte-worker-1 and rte-worker-2") };
    // Worker 1 waits at SCHED_IDLE from the start.
    set_sched_idle(t1, true)?;
    let mut handles = Vec::new();
    for (i, w) in workers.into_iter().enumerate() {
        let lcore = 1 + i as u32;
        handles
            .push(eal.launch(lcore, move || w.run()).with_context(|| format!("launch worker {i} on lcore {lcore}"))?);
    }
    let mut h = Harness::new(&pool, &rings[0], sink, src, Target::Worker(Arc::clone(&shared)))?;
    h.worker_tid = t0;
    h.verbose = false;
    h.drain = Some(rd_1_0.consumer().ok_or_else(taken)?);
    let mut d = Duo {
        tids: [t0, t1],
        idle: [0.0; 2],
        parked: vec![
            None,
            Some((Arc::clone(&rd_f_0), rd_f_0.producer().ok_or_else(taken)?, Some(1))),
            Some((Arc::clone(&rings[1]), rings[1].producer().ok_or_else(taken)?, None)),
        ],
        inlet: Inlet::Src0,
    };
    let result = redirect_cases(&mut h, &mut d, a, setup.syn_recv_limit() / 2);
    // Both workers back to normal scheduling so they see the stop flag at once.
    h.feed_all(&mut Feed::idle());
    let restored = set_sched_idle(t0, false).and(set_sched_idle(t1, false));
    shared.stop.store(true, Ordering::Relaxed);
    for (wid, handle) in handles.into_iter().enumerate() {
        let rc = handle.wait();
        if let Some(fin) = last_stats(&shared, wid) {
            eprintln!(
                "rvs-bench: worker {wid} stopped (rc {rc}): rx {} tx {} redirected out {} in {} loops {} busy {} conns created {} live {}",
                fin.net.get(NetCounter::RxPackets),
                fin.net.get(NetCounter::TxPackets),
                fin.net.get(NetCounter::RedirectOut),
                fin.net.get(NetCounter::RedirectIn),
                fin.net.get(NetCounter::Loops),
                fin.net.get(NetCounter::BusyLoops),
                fin.core.total.conns,
                fin.conns
            );
        }
    }
    // Ports before the rings and the pool, the pool before the EAL.
    drop(h);
    drop(d);
    drop(rx);
    drop(tx);
    drop(shared);
    drop(setup);
    drop((rd_0_1, rd_1_0, rd_f_0, rings));
    drop(pool);
    drop(eal);
    restored?;
    result
}

/// What the feeder feeds in the redirect cases.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Inlet {
    /// Worker 0's queue of the source port.
    Src0 = 0,
    /// Worker 0's redirect ring from worker 1.
    Ring0 = 1,
    /// Worker 1's queue of the source port.
    Src1 = 2,
}

/// The two workers of the redirect cases and the feeder's inlets.
struct Duo {
    /// The workers' thread ids.
    tids: [u32; 2],
    /// Their calibrated empty-loop durations (seconds).
    idle: [f64; 2],
    /// The inlets not being fed (ring, producer, port tag), by [`Inlet`].
    parked: Vec<Option<FeedTarget>>,
    inlet: Inlet,
}

impl Duo {
    /// Makes worker `w` the running one (the other waits at `SCHED_IDLE`) and feeds
    /// `inlet`. What was fed is drained first, by the worker that was running.
    fn switch(&mut self, h: &mut Harness, w: usize, inlet: Inlet) -> Result<()> {
        h.feed_all(&mut Feed::idle());
        if inlet != self.inlet {
            let (ring, prod, mark) =
                self.parked[inlet as usize].take().ok_or_else(|| anyhow!("inlet {inlet:?} in use"))?;
            let old = h.feed_into(ring, prod, mark);
            self.parked[self.inlet as usize] = Some(old);
            self.inlet = inlet;
        }
        if w != h.wid {
            set_sched_idle(self.tids[w], false)?;
            set_sched_idle(self.tids[h.wid], true)?;
            h.wid = w;
            h.worker_tid = self.tids[w];
            h.idle_loop_secs = self.idle[w];
        }
        Ok(())
    }
}

/// Fails unless every connection's local port is owned by worker `w`.
fn check_owner(conns: &[ConnInfo], own: &PortOwnership, w: u16) -> Result<()> {
    let bad = conns.iter().filter(|c| own.owner(c.local.port()) != w).count();
    if bad > 0 {
        bail!("{bad} of {} connections of worker {w} have a local port it does not own", conns.len());
    }
    Ok(())
}

/// The cases of [`run_redirect`], per population: each worker opens its connections
/// (worker 0 from clients 10.0/16, worker 1 from 10.64/16; handshakes `chunk` at a
/// time, see [`open`]), then the four cases run in interleaved rounds.
fn redirect_cases(h: &mut Harness, d: &mut Duo, a: &RunArgs, chunk: u32) -> Result<Vec<CaseResult>> {
    let own = PortOwnership::new(2).map_err(|e| anyhow!("port ownership: {e:?}"))?;
    let mut pops = vec![(0, a.small)];
    if a.large > a.small {
        pops.push((a.small, a.large));
    }
    let mut out = Vec::new();
    for (i, (from, to)) in pops.into_iter().enumerate() {
        let mut replies = Vec::new();
        for (w, inlet, base) in
            [(0, Inlet::Src0, Ipv4Addr::new(10, 0, 0, 0)), (1, Inlet::Src1, Ipv4Addr::new(10, 64, 0, 0))]
        {
            d.switch(h, w, inlet)?;
            let mut conns = open(h, base, from, to, chunk)?;
            if i == 0 {
                h.calibrate_idle()?;
                d.idle[w] = h.idle_loop_secs;
            }
            check_owner(&conns, &own, w as u16)?;
            shuffle(&mut conns);
            replies.push(conn_frames(h.src_mac, &conns, true)?.data_out);
        }
        let live = replies[0].count() as u64;
        let cases: [(&str, usize, Inlet, &Frames); 4] = [
            ("rd-plain-w0", 0, Inlet::Src0, &replies[0]),
            ("rd-in-w0", 0, Inlet::Ring0, &replies[0]),
            ("rd-out-w1", 1, Inlet::Src1, &replies[0]),
            ("rd-plain-w1", 1, Inlet::Src1, &replies[1]),
        ];
        let mut parts: Vec<Vec<CaseResult>> = vec![Vec::new(); cases.len()];
        // On-CPU time of the waiting worker during each case, and the case's wall time.
        let mut other = [(0u64, 0.0f64); 4];
        for _ in 0..ROUNDS {
            for (k, &(name, w, inlet, frames)) in cases.iter().enumerate() {
                d.switch(h, w, inlet)?;
                let (t, c) = (std::time::Instant::now(), cpu_ns(d.tids[1 - w]));
                parts[k].push(h.measure(name, live, frames, a.secs / ROUNDS as f64)?);
                other[k].0 += cpu_ns(d.tids[1 - w]).saturating_sub(c);
                other[k].1 += t.elapsed().as_secs_f64();
            }
        }
        for (p, (o_ns, o_wall)) in parts.into_iter().zip(other) {
            let r = merge(p).ok_or_else(|| anyhow!("no rounds"))?;
            eprintln!(
                "rvs-bench: {:<11} live {live:>8}: worker ns/pkt {:.1} (best {:.1}, median {:.1} of {} busy windows), {:.3} Mpps, worker idle {:.3}, on-CPU {:.3} (the waiting worker {:.4}), redirected out {} in {}, drops {:?}",
                r.case, r.ns_per_pkt, r.ns_per_pkt_best, r.ns_per_pkt_median, r.ns_windows, r.rx_mpps, r.worker_idle, r.worker_cpu, o_ns as f64 / 1e9 / o_wall, r.redirect_out, r.redirect_in, r.drops
            );
            if r.case == "rd-out-w1" && r.redirect_out == 0 {
                bail!("worker 1 redirected nothing");
            }
            out.push(r);
        }
    }
    Ok(out)
}

/// `rvs-bench io`: the harness's own ceiling: the same feeder, ring and sink, with a bare macswap loop
/// on lcore 1 instead of the worker.
pub fn run_io(a: &RunArgs) -> Result<Vec<CaseResult>> {
    a.check_fullnat("io")?;
    let Rig { eal, pool, rings, sink, src, mut rx, mut tx } = rig(a, 1, "0@0,1@1")?;
    let ring = Arc::clone(&rings[0]);
    let counters = Arc::new(IoCounters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (c, st) = (Arc::clone(&counters), Arc::clone(&stop));
    let mut q = rx[1].remove(0);
    let mut out = tx[0].remove(0);
    let handle = eal.launch(1, move || {
        let mut b = Burst::new();
        let (mut n_rx, mut loops, mut busy) = (0u64, 0u64, 0u64);
        while !st.load(Ordering::Relaxed) {
            let n = q.rx_burst(&mut b);
            for mut m in b.drain() {
                let d = m.data_mut();
                for i in 0..6 {
                    d.swap(i, i + 6);
                }
                out.push(m);
            }
            out.flush();
            loops += 1;
            if n > 0 {
                busy += 1;
                n_rx += n as u64;
            }
            if loops % 64 == 0 {
                c.rx.store(n_rx, Ordering::Relaxed);
                c.loops.store(loops, Ordering::Relaxed);
                c.busy.store(busy, Ordering::Relaxed);
            }
        }
        0
    })?;
    let mut h = Harness::new(&pool, &ring, sink, src, Target::Io(counters))?;
    let frames = io_frames(h.src_mac);
    let r = h.calibrate_idle().and_then(|_| h.measure("io", 0, &frames, a.secs));
    stop.store(true, Ordering::Relaxed);
    handle.wait();
    drop(rx);
    drop(tx);
    drop(h);
    drop(ring);
    drop(rings);
    drop(pool);
    drop(eal);
    Ok(vec![r?])
}
