//! The DPDK side and the feeder: EAL, pool and ports ([`Rig`]), and the main lcore's
//! [`Harness`], which keeps the source port's receive ring full, talks to the worker as
//! the control thread would, and measures.
//!
//! Ports: `sink` (port 0) is `net_null0,no-rx=1`: the worker transmits into it and the
//! driver frees every buffer; `src` (port 1) is a `net_ring` port over SP/SC rings of
//! [`RING_SLOTS`] slots (one per queue) that the feeder fills, one mempool buffer per
//! frame, allocated and copied here, as a NIC would DMA them.
//!
//! Rates are taken in windows of [`WINDOW_SECS`] (best and median reported). Whether
//! the feeder kept up is shown by the worker's empty loops (converted to time with a
//! calibrated empty-loop duration) and by the time the feeder spent waiting for room;
//! whether another process took the CPU, by the threads' schedstat.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use dpdk::{Burst, Eal, Mbuf, MbufRing, Mempool, Port, PortConfig, RingConsumer, RingProducer, RingSync};
use dpdk::{RxQueue, TxBuffer};
use fnat::engine::listing::ConnInfo;
use fnat::types::FwdMode;
use frame::NetCounter;
use rvsd::shared::{Command, ConnFilter, Reply, Shared, WorkerReport};
use wire::EthernetAddress;

use crate::cli::RunArgs;
use crate::frames::{Feed, Frames};
use crate::report::{median, min_or_zero, CaseResult};

/// Slots of the source port's receive ring (net_ring's own default, as testpmd's).
const RING_SLOTS: u32 = 1024;
/// Mbufs in the pool.
const MBUFS: u32 = 32767;
/// Mbufs in the pool's per-lcore cache.
const MBUF_CACHE: u32 = 256;
/// Length of one measurement window (rates are reported as the best and the median
/// of the windows).
pub const WINDOW_SECS: f64 = 0.25;
/// Windows in which the worker's empty loops took more than this share of its on-CPU
/// time (the feeder fell behind) do not count for the CPU time per packet.
pub const MAX_IDLE_FOR_NS: f64 = 0.05;
/// Connections listed per `ListConns` page.
const LIST_PAGE: usize = 65_536;

/// EAL, pool, ports; the caller starts what runs on the other lcores.
pub struct Rig {
    /// The EAL (dropped last).
    pub eal: Eal,
    /// The mbuf pool.
    pub pool: Arc<Mempool>,
    /// The source port's receive rings, one per queue.
    pub rings: Vec<Arc<MbufRing>>,
    /// Port 0.
    pub sink: Port,
    /// Port 1.
    pub src: Port,
    /// Receive queues, by port id, then by queue.
    pub rx: Vec<Vec<RxQueue>>,
    /// Transmit buffers, by port id, then by queue.
    pub tx: Vec<Vec<TxBuffer>>,
}

/// The next queue of every port (index = port id), receive and transmit: one worker's
/// share.
pub fn next_queues(rx: &mut [Vec<RxQueue>], tx: &mut [Vec<TxBuffer>]) -> (Vec<RxQueue>, Vec<TxBuffer>) {
    (rx.iter_mut().map(|q| q.remove(0)).collect(), tx.iter_mut().map(|q| q.remove(0)).collect())
}

/// `queues` receive and transmit queues per port (one per worker); `lcores`: the EAL's
/// `--lcores` (lcore 0, the main one, is the feeder).
pub fn rig(a: &RunArgs, queues: u16, lcores: &str) -> Result<Rig> {
    let prefix = format!("{}-{}", a.file_prefix, std::process::id());
    let mut args = vec![
        "rvs-bench".to_string(),
        "--lcores".into(),
        lcores.into(),
        "--main-lcore".into(),
        "0".into(),
        "--no-pci".into(),
        "--file-prefix".into(),
        prefix,
        "--vdev=net_null0,no-rx=1".into(),
        "--log-level=lib.eal:warning".into(),
    ];
    if a.huge {
        args.extend(["-m".into(), "512".into()]);
    } else {
        args.extend(["--no-huge".into(), "-m".into(), "512".into()]);
    }
    let eal = Eal::init(&args).context("EAL init")?;
    let pool = Arc::new(Mempool::new("rvsbench_pool", MBUFS, MBUF_CACHE, 2176, -1).context("mbuf pool")?);
    let mut sink = Port::by_name("net_null0").context("sink port")?;
    let mut rings = Vec::new();
    let mut dead = Vec::new();
    for q in 0..queues {
        let sfx = if q == 0 { String::new() } else { format!("{q}") };
        rings.push(MbufRing::new(&format!("rvsbench_src_rx{sfx}"), RING_SLOTS, RingSync::SpSc).context("source ring")?);
        dead.push(
            MbufRing::new(&format!("rvsbench_src_tx{sfx}"), RING_SLOTS, RingSync::SpSc).context("source tx ring")?,
        );
    }
    let mut src = Port::from_rings("net_ring_rvsbench", &rings, &dead).context("source port")?;
    if sink.id() != 0 || src.id() != 1 {
        bail!("unexpected port ids: sink {} src {}", sink.id(), src.id());
    }
    let pc = PortConfig {
        rx_queues: queues,
        tx_queues: queues,
        rx_desc: 1024,
        tx_desc: 1024,
        rss_hf: 0,
        mtu: None,
        promiscuous: false,
        lsc_interrupt: false,
    };
    let (rx0, tx0) = sink.configure(&pc, &pool).context("configure sink")?;
    let (rx1, tx1) = src.configure(&pc, &pool).context("configure source")?;
    sink.start().context("start sink")?;
    src.start().context("start source")?;
    Ok(Rig { eal, pool, rings, sink, src, rx: vec![rx0, rx1], tx: vec![tx0, tx1] })
}

/// Counters read from the worker (or the macswap loop) at one instant.
#[derive(Debug, Clone, Default)]
struct Counts {
    tsc: u64,
    rx: u64,
    /// Frames the worker handed to a transmit queue (forwarded; the macswap loop: 0).
    tx: u64,
    loops: u64,
    busy: u64,
    conns_created: u64,
    live: u64,
    redirect_out: u64,
    redirect_in: u64,
    sink_out: u64,
    drops: BTreeMap<String, u64>,
    /// Nanoseconds on CPU of the worker thread and of the feeder thread.
    worker_ns: u64,
    feeder_ns: u64,
}

/// Nanoseconds thread `tid` of this process has run, from its schedstat.
pub fn cpu_ns(tid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat"))
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// The thread id of the thread named `name` in this process.
pub fn thread_named(name: &str) -> Option<u32> {
    for e in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            return e.file_name().to_str()?.parse().ok();
        }
    }
    None
}

/// Sets thread `tid` to `SCHED_IDLE` or back to `SCHED_OTHER` (with `chrt`).
pub fn set_sched_idle(tid: u32, idle: bool) -> Result<()> {
    let policy = if idle { "--idle" } else { "--other" };
    let st = std::process::Command::new("chrt")
        .args([policy, "-p", "0", &tid.to_string()])
        .status()
        .context("run chrt (util-linux)")?;
    if !st.success() {
        bail!("chrt {policy} -p 0 {tid}: {st}");
    }
    Ok(())
}

/// The last reply left in worker `wid`'s reply queue if it is a report (after the
/// worker stopped: its final counters).
pub fn last_stats(shared: &Shared, wid: usize) -> Option<WorkerReport> {
    let mut last = None;
    while let Some(r) = shared.workers[wid].replies.pop() {
        last = Some(r);
    }
    match last {
        Some(Reply::Stats(fin)) => Some(*fin),
        _ => None,
    }
}

/// The counters the macswap loop keeps.
#[derive(Default)]
pub struct IoCounters {
    /// Packets received.
    pub rx: AtomicU64,
    /// Loops.
    pub loops: AtomicU64,
    /// Loops that received something.
    pub busy: AtomicU64,
}

/// What runs on lcore 1.
pub enum Target {
    /// The real worker (or workers: [`Harness::wid`] is the one measured).
    Worker(Arc<Shared>),
    /// The bare macswap loop.
    Io(Arc<IoCounters>),
}

/// A ring the feeder can feed: the ring, its producer, the port to tag mbufs with.
pub type FeedTarget = (Arc<MbufRing>, RingProducer, Option<u16>);

/// The feeder side of the harness (lcore 0).
pub struct Harness {
    pool: Arc<Mempool>,
    /// The ring fed (the source port's receive ring, or a redirect ring) and its
    /// producer.
    ring: Arc<MbufRing>,
    prod: RingProducer,
    /// The port to tag each fed mbuf with (`Mbuf::set_port`), as a worker does before
    /// it redirects a packet; `None`: left as allocated.
    mark_port: Option<u16>,
    /// A redirect ring the feeder empties (freeing what it takes), standing in for the
    /// owning worker.
    pub drain: Option<RingConsumer>,
    drained: Burst,
    pending: Burst,
    sink: Port,
    /// Kept open while the harness feeds it.
    _src: Port,
    /// The source port's MAC (the destination of every frame fed).
    pub src_mac: EthernetAddress,
    hz: u64,
    /// TSC of the previous step, and whether it found the ring full.
    last_tsc: u64,
    last_blocked: bool,
    /// Cycles the feeder spent waiting for room since the last reset.
    wait_cycles: u64,
    /// Seconds one empty worker loop takes (calibrated with no traffic).
    pub idle_loop_secs: f64,
    /// While set, the feeder asks the worker for its counters this often (seconds), as
    /// a Prometheus scrape does through the control thread: what scraping costs a worker.
    pub poll_stats: Option<f64>,
    /// Thread id of the worker measured (lcore 1).
    pub worker_tid: u32,
    /// Thread id of the feeder (this thread).
    feeder_tid: u32,
    target: Target,
    /// The measured worker's slot in `Shared::workers`.
    pub wid: usize,
    /// Log each measurement.
    pub verbose: bool,
}

impl Harness {
    /// The feeder of `ring` (the source port's receive ring), measuring `target` on
    /// lcore 1 with the ports `sink` and `src`.
    pub fn new(pool: &Arc<Mempool>, ring: &Arc<MbufRing>, sink: Port, src: Port, target: Target) -> Result<Harness> {
        let prod = ring.producer().ok_or_else(|| anyhow!("ring producer taken"))?;
        let src_mac = EthernetAddress(src.mac()?);
        Ok(Harness {
            pool: Arc::clone(pool),
            ring: Arc::clone(ring),
            prod,
            mark_port: None,
            drain: None,
            drained: Burst::new(),
            pending: Burst::new(),
            sink,
            _src: src,
            src_mac,
            hz: dpdk::tsc_hz(),
            last_tsc: dpdk::tsc(),
            last_blocked: false,
            wait_cycles: 0,
            idle_loop_secs: 0.0,
            poll_stats: None,
            worker_tid: thread_named("rte-worker-1").unwrap_or(0),
            feeder_tid: std::process::id(),
            target,
            wid: 0,
            verbose: true,
        })
    }

    /// One feeder step: top the pending burst up with copies of the next frames and
    /// move as many as fit into the ring. Returns how many went in.
    #[inline]
    fn step(&mut self, feed: &mut Feed) -> usize {
        let now = dpdk::tsc();
        if self.last_blocked {
            self.wait_cycles += now - self.last_tsc;
        }
        self.last_tsc = now;
        self.last_blocked = false;
        self.recycle(feed);
        while !self.pending.is_full() && !feed.done() {
            let Some(mut m) = Mbuf::from_slice(&self.pool, feed.frames.get(feed.next)) else { break };
            if let Some(p) = self.mark_port {
                m.set_port(p);
            }
            let _ = self.pending.push(m);
            feed.advance();
        }
        if self.pending.is_empty() {
            std::hint::spin_loop();
            return 0;
        }
        let n = self.prod.enqueue_burst(&mut self.pending);
        if n == 0 {
            self.last_blocked = true;
            std::hint::spin_loop();
        }
        n
    }

    /// Empties the redirect ring the feeder drains, if any (one burst), freeing what
    /// it takes.
    #[inline]
    fn drain_redirects(&mut self) {
        if let Some(d) = &mut self.drain {
            if d.dequeue_burst(&mut self.drained) > 0 {
                self.drained.clear();
            }
        }
    }

    /// Takes one burst from the redirect ring the feeder drains, if any, and reuses
    /// those mbufs for the next frames of a cyclic feed (overwritten with them; the
    /// worker redirected them untouched): no free and allocation per packet, so that
    /// the feeder keeps up with a worker that only redirects. What cannot be reused
    /// is freed.
    #[inline]
    fn recycle(&mut self, feed: &mut Feed) {
        let Some(d) = &mut self.drain else { return };
        if d.dequeue_burst(&mut self.drained) == 0 {
            return;
        }
        let cyclic = feed.left.is_none() && feed.frames.count() > 0;
        for mut m in self.drained.drain() {
            if !cyclic || self.pending.is_full() || m.len() != feed.frames.len {
                continue;
            }
            m.data_mut().copy_from_slice(feed.frames.get(feed.next));
            if let Some(p) = self.mark_port {
                m.set_port(p);
            }
            let _ = self.pending.push(m);
            feed.advance();
        }
    }

    /// Feeds until everything of a finite feed is in the ring and the ring is empty.
    pub fn feed_all(&mut self, feed: &mut Feed) {
        while !feed.done() || !self.pending.is_empty() {
            self.step(feed);
        }
        while self.ring.count() > 0 {
            self.drain_redirects();
            std::hint::spin_loop();
        }
    }

    /// Feeds `ring` (through `prod`, tagging mbufs with `mark_port`) from now on;
    /// returns the ring, producer and tag used until now. Call it with nothing pending
    /// (after [`feed_all`](Self::feed_all)).
    pub fn feed_into(&mut self, ring: Arc<MbufRing>, prod: RingProducer, mark_port: Option<u16>) -> FeedTarget {
        debug_assert!(self.pending.is_empty(), "switch the feed only when nothing is pending");
        let old_ring = std::mem::replace(&mut self.ring, ring);
        let old_prod = std::mem::replace(&mut self.prod, prod);
        let old_mark = std::mem::replace(&mut self.mark_port, mark_port);
        (old_ring, old_prod, old_mark)
    }

    /// `s` seconds in TSC cycles.
    pub fn secs_to_tsc(&self, s: f64) -> u64 {
        (s * self.hz as f64) as u64
    }

    /// Feeds `feed` for `secs` seconds (asking for the worker's counters every
    /// [`Harness::poll_stats`] meanwhile, if set).
    fn feed_for(&mut self, feed: &mut Feed, secs: f64) {
        let end = dpdk::tsc() + self.secs_to_tsc(secs);
        let every = self.poll_stats.map(|s| self.secs_to_tsc(s));
        let mut poll_at = every.map(|e| dpdk::tsc() + e);
        while dpdk::tsc() < end {
            for _ in 0..8 {
                self.step(feed);
            }
            if let (Some(at), Some(e)) = (poll_at, every) {
                if dpdk::tsc() >= at {
                    let _ = self.report(feed);
                    poll_at = Some(at + e);
                }
            }
        }
    }

    /// Sends `cmd` to the worker and keeps feeding until it answers.
    fn request(&mut self, cmd: Command, feed: &mut Feed) -> Result<Reply> {
        let Target::Worker(shared) = &self.target else { bail!("no worker") };
        let shared = Arc::clone(shared);
        let slot = &shared.workers[self.wid];
        slot.commands.push(cmd).map_err(|_| anyhow!("command queue full"))?;
        let deadline = dpdk::tsc() + self.secs_to_tsc(30.0);
        loop {
            if let Some(r) = slot.replies.pop() {
                return Ok(r);
            }
            if dpdk::tsc() > deadline {
                bail!("the worker did not answer within 30 s");
            }
            self.step(feed);
        }
    }

    /// The worker's counters (one Stats round trip while feeding `feed`).
    pub fn report(&mut self, feed: &mut Feed) -> Result<WorkerReport> {
        match self.request(Command::Stats, feed)? {
            Reply::Stats(r) => Ok(*r),
            _ => bail!("unexpected reply"),
        }
    }

    /// The counters now (worker: one Stats round trip while feeding).
    fn counts(&mut self, feed: &mut Feed) -> Result<Counts> {
        let sink_out = self.sink.stats().map(|s| s.opackets).unwrap_or(0);
        let (worker_ns, feeder_ns) = (cpu_ns(self.worker_tid), cpu_ns(self.feeder_tid));
        match &self.target {
            Target::Io(c) => Ok(Counts {
                tsc: dpdk::tsc(),
                rx: c.rx.load(Ordering::Relaxed),
                loops: c.loops.load(Ordering::Relaxed),
                busy: c.busy.load(Ordering::Relaxed),
                sink_out,
                worker_ns,
                feeder_ns,
                ..Counts::default()
            }),
            Target::Worker(_) => {
                let r = self.report(feed)?;
                let tsc = dpdk::tsc();
                let mut drops: BTreeMap<String, u64> = r.core.drops.clone();
                for (k, v) in r.net.drops.nonzero() {
                    *drops.entry(format!("net.{}", k.name())).or_default() += v;
                }
                let net = |c: NetCounter| r.net.get(c);
                Ok(Counts {
                    tsc,
                    rx: net(NetCounter::RxPackets) + net(NetCounter::RedirectIn),
                    tx: net(NetCounter::TxPackets),
                    loops: net(NetCounter::Loops),
                    busy: net(NetCounter::BusyLoops),
                    conns_created: r.core.total.conns,
                    live: r.conns as u64,
                    redirect_out: net(NetCounter::RedirectOut),
                    redirect_in: net(NetCounter::RedirectIn),
                    sink_out,
                    drops,
                    worker_ns,
                    feeder_ns,
                })
            }
        }
    }

    /// The worker's connections that `filter` keeps, by `ListConns` pages (filtered
    /// pages may be short or empty before the end: see [`ConnFilter::list`]).
    pub fn list(&mut self, filter: ConnFilter) -> Result<Vec<ConnInfo>> {
        let mut out = Vec::new();
        let mut cursor = 0;
        loop {
            match self.request(Command::ListConns { cursor, max: LIST_PAGE, filter }, &mut Feed::idle())? {
                Reply::Conns(page, next) => {
                    out.extend(page);
                    match next {
                        Some(c) => cursor = c,
                        None => return Ok(out),
                    }
                }
                _ => bail!("unexpected reply"),
            }
        }
    }

    /// Measures how long an empty worker loop takes: a short time with no traffic, the
    /// worker thread's on-CPU time (schedstat, so that time another process held the
    /// CPU does not count) divided by its loops.
    pub fn calibrate_idle(&mut self) -> Result<()> {
        let mut idle = Feed::idle();
        let a = self.counts(&mut idle)?;
        let end = dpdk::tsc() + self.secs_to_tsc(0.2);
        while dpdk::tsc() < end {
            self.drain_redirects();
            std::hint::spin_loop();
        }
        let b = self.counts(&mut idle)?;
        let loops = b.loops.saturating_sub(a.loops).max(1);
        let on_cpu = b.worker_ns.saturating_sub(a.worker_ns) as f64 / 1e9;
        let wall = (b.tsc - a.tsc) as f64 / self.hz as f64;
        // Without schedstat (worker_ns stays 0), wall time.
        self.idle_loop_secs = if on_cpu > 0.0 { on_cpu } else { wall } / loops as f64;
        eprintln!("rvs-bench: an empty worker loop takes {:.0} ns", self.idle_loop_secs * 1e9);
        Ok(())
    }

    /// Warm-up, then `secs` of `frames` in turn, in windows of [`WINDOW_SECS`]; the
    /// counters' differences.
    pub fn measure(&mut self, case: &str, live: u64, frames: &Frames, secs: f64) -> Result<CaseResult> {
        let mut feed = Feed::cyclic(frames);
        self.feed_for(&mut feed, 0.3_f64.min(secs / 4.0));
        let first = self.counts(&mut feed)?;
        self.wait_cycles = 0;
        let windows = ((secs / WINDOW_SECS).round() as usize).max(1);
        let mut marks = vec![first.clone()];
        for _ in 0..windows {
            self.feed_for(&mut feed, secs / windows as f64);
            marks.push(self.counts(&mut feed)?);
        }
        let (a, b) = (&first, marks.last().expect("one window at least"));
        let wait = self.wait_cycles as f64 / (b.tsc - a.tsc) as f64;
        let dt = (b.tsc - a.tsc) as f64 / self.hz as f64;
        let rate = |x: &Counts, y: &Counts, f: fn(&Counts) -> u64| {
            (f(y) - f(x)) as f64 / ((y.tsc - x.tsc) as f64 / self.hz as f64)
        };
        let rx_w: Vec<f64> = marks.windows(2).map(|w| rate(&w[0], &w[1], |c| c.rx) / 1e6).collect();
        let new_w: Vec<f64> = marks.windows(2).map(|w| rate(&w[0], &w[1], |c| c.conns_created)).collect();
        // Worker CPU time per packet: on-CPU time less the empty loops; and the share of
        // that on-CPU time the empty loops took.
        let idle_ns = self.idle_loop_secs * 1e9;
        let ns_per_pkt = |x: &Counts, y: &Counts| -> (f64, f64) {
            let loops = y.loops.saturating_sub(x.loops);
            let empty = loops.saturating_sub(y.busy.saturating_sub(x.busy));
            let on_cpu = y.worker_ns.saturating_sub(x.worker_ns) as f64;
            let idle = empty as f64 * idle_ns;
            let pkts = y.rx.saturating_sub(x.rx);
            if pkts == 0 || on_cpu <= 0.0 {
                return (0.0, 1.0);
            }
            ((on_cpu - idle).max(0.0) / pkts as f64, (idle / on_cpu).min(1.0))
        };
        // Only windows in which the worker was kept busy count: where it idled, the
        // figure rests on the estimate of the empty loops' cost.
        let ns_w: Vec<f64> = marks
            .windows(2)
            .map(|w| ns_per_pkt(&w[0], &w[1]))
            .filter(|&(ns, idle)| ns > 0.0 && idle <= MAX_IDLE_FOR_NS)
            .map(|(ns, _)| ns)
            .collect();
        let mut drops = BTreeMap::new();
        for (k, v) in &b.drops {
            let d = v - a.drops.get(k).copied().unwrap_or(0);
            if d > 0 {
                drops.insert(k.clone(), d);
            }
        }
        let loops = b.loops.saturating_sub(a.loops);
        let empty = loops.saturating_sub(b.busy.saturating_sub(a.busy));
        let r = CaseResult {
            case: case.to_string(),
            live,
            secs: dt,
            rx_mpps: rate(a, b, |c| c.rx) / 1e6,
            rx_mpps_median: median(rx_w.clone()),
            rx_mpps_max: rx_w.iter().copied().fold(0.0, f64::max),
            sink_mpps: rate(a, b, |c| c.sink_out) / 1e6,
            new_conns_per_s: rate(a, b, |c| c.conns_created),
            new_conns_per_s_median: median(new_w),
            empty_loops: if loops > 0 { empty as f64 / loops as f64 } else { 0.0 },
            worker_idle: (empty as f64 * self.idle_loop_secs / dt).min(1.0),
            feeder_wait: wait,
            worker_cpu: (b.worker_ns - a.worker_ns) as f64 / 1e9 / dt,
            feeder_cpu: (b.feeder_ns - a.feeder_ns) as f64 / 1e9 / dt,
            live_end: b.live,
            drops,
            ns_per_pkt: ns_per_pkt(a, b).0,
            ns_windows: ns_w.len() as u32,
            win_mpps: rx_w.clone(),
            win_ns: ns_w.clone(),
            ns_per_pkt_best: min_or_zero(&ns_w),
            ns_per_pkt_median: median(ns_w),
            redirect_out: b.redirect_out - a.redirect_out,
            redirect_in: b.redirect_in - a.redirect_in,
            rx_pkts: b.rx - a.rx,
            tx_pkts: b.tx - a.tx,
            fwd: FwdMode::FullNat,
            idle_loop_ns: self.idle_loop_secs * 1e9,
        };
        if self.verbose {
            eprintln!(
            "rvs-bench: {case:<9} live {live:>8}: rx {:.3} Mpps (median {:.3}, best {:.3}), sink {:.3} Mpps, new {:.0}/s, worker idle {:.3} (empty loops {:.3}), feeder waiting {:.3}, on-CPU worker {:.3} feeder {:.3}, worker ns/pkt {:.1} (best {:.1}, median {:.1} of {} busy windows), redirected out {} in {}, live at end {}, drops {:?}",
            r.rx_mpps, r.rx_mpps_median, r.rx_mpps_max, r.sink_mpps, r.new_conns_per_s, r.worker_idle, r.empty_loops, r.feeder_wait, r.worker_cpu, r.feeder_cpu, r.ns_per_pkt, r.ns_per_pkt_best, r.ns_per_pkt_median, r.ns_windows, r.redirect_out, r.redirect_in, r.live_end, r.drops
        );
        }
        Ok(r)
    }
}
