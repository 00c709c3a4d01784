//! One worker: a run-to-completion loop on its own lcore, doing I/O only.
//!
//! Each iteration: notice a new configuration generation (one atomic load), answer the
//! control thread's commands, receive a burst from each port's queue and hand every
//! frame to the frame logic ([`frame::Node`]: ARP, ND, local delivery, routing,
//! neighbours), run the burst's IP frames through the FullNAT core together, give the
//! core's verdicts back to the frame logic, then run timers and neighbour retries, and
//! flush the transmit buffers and rings. Nothing here allocates, locks or makes a
//! syscall per packet: buffers come from the mempool, tables are read from the
//! immutable snapshot, counters are the worker's own.

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use dpdk::{Burst, Mbuf, Mempool, RingConsumer, RingProducer, RxQueue, TxBuffer};
use fnat::engine::{Engine, Verdict, EVERY_WORKER};
use fnat::stats::DropReason;
use frame::{Io, Net, NetCounter, NetCounters, NetDrop, Node, TwinClass, ETH_LEN};
use netstack::PortId;
use wire::EthernetAddress;

use crate::clock::Clock;
use crate::pktbuf::MbufSlot;
use crate::shared::{Command, Exhaustion, NeighSeen, PortView, Reply, Shared, Snapshot, WorkerReport};

/// Connections the timer wheel may free per loop (keeps every loop short).
const EXPIRE_BUDGET: u32 = 256;
/// How many frames ahead of the one being read its mbuf header is prefetched: a whole
/// burst's at once stalled the worker on the prefetches themselves (the core tracks
/// only so many misses).
const HEADER_AHEAD: usize = 8;
/// How many frames ahead of the one being read its data is prefetched: far enough for
/// the line to arrive, near enough that the header it is found from already has.
const DATA_AHEAD: usize = 4;
/// Synced connections a worker installs per loop at most (the rest wait in its inbox).
const SYNC_INSTALL_BUDGET: usize = 64;
/// Connections a worker announces per loop while it walks its table for a peer that
/// started (at most what the sync queue has room for).
const SYNC_WALK_BUDGET: usize = 256;

/// What a worker is made of; built by the dataplane on the main lcore.
pub struct WorkerParts {
    /// Worker id (0-based).
    pub id: u16,
    /// The lcore it runs on.
    pub lcore: u32,
    /// Its receive queue on each port (index = port id).
    pub rx: Vec<RxQueue>,
    /// Its transmit buffer on each port (index = port id).
    pub tx: Vec<TxBuffer>,
    /// The packet buffer pool (for ARP requests and ICMP errors).
    pub pool: Arc<Mempool>,
    /// Its FullNAT core.
    pub engine: Engine,
    /// State shared with the control thread.
    pub shared: Arc<Shared>,
    /// The common clock.
    pub clock: Clock,
    /// Free a removed real server's connections at once (LVS `expire_nodest_conn`).
    pub expire_nodest: bool,
    /// Frames for the kernel twins go up this ring (the control thread writes them to
    /// the twins), tagged with their port in `Mbuf::port`.
    pub twin_up: RingProducer,
    /// The control protocols' frames for the twins go up this one (pumped first; see
    /// [`frame::twin`]).
    pub twin_up_control: RingProducer,
    /// This worker's budgets for frames going up: its share of `[workers]
    /// twin_up_pps` for each twin, and the whole of `twin_control_pps` for each control
    /// class.
    pub twin_budget: frame::TwinBudget,
    /// Frames the kernel sent on a twin, to transmit (tagged with their port); only
    /// one worker gets this.
    pub twin_down: Option<RingConsumer>,
    /// Copies of captured frames go up this ring (to the control thread's writer).
    pub capture: RingProducer,
    /// Rings to the other workers (index = worker id; `None` for this worker), for
    /// replies whose local port they own.
    pub redirect_tx: Vec<Option<RingProducer>>,
    /// Rings from the other workers.
    pub redirect_rx: Vec<RingConsumer>,
    /// How it waits when idle.
    pub backoff: Backoff,
}

/// How an idle worker waits for packets (`[workers] polling`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Polling {
    /// Spin on the queues whatever comes (DPDK's way: the lowest latency, a whole CPU).
    #[default]
    Busy,
    /// Spin while there is traffic; after [`EMPTY_LOOPS_BEFORE_SLEEP`] empty loops,
    /// sleep, doubling the sleep from [`FIRST_SLEEP_US`] up to the maximum while the
    /// queues stay empty (VPP's adaptive mode and DPDK's power examples, without
    /// interrupts, which the virtual PMDs lack).
    Adaptive,
}

/// Empty loops an adaptive worker spins through before its first sleep (some tens of
/// microseconds: a burst arriving meanwhile is met spinning).
pub const EMPTY_LOOPS_BEFORE_SLEEP: u32 = 1024;
/// An adaptive worker's first sleep, µs.
pub const FIRST_SLEEP_US: u32 = 16;

/// An adaptive worker's idle state: empty loops in a row and the next sleep.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    on: bool,
    empty: u32,
    next_us: u32,
    max_us: u32,
}

impl Backoff {
    /// The back-off of `polling`, sleeping at most `max_us`.
    pub fn new(polling: Polling, max_us: u32) -> Backoff {
        Backoff { on: polling == Polling::Adaptive, empty: 0, next_us: FIRST_SLEEP_US.min(max_us), max_us }
    }

    /// After a loop that handled `got` frames: how long to sleep now, if at all. Any
    /// frame resets it; busy polling never sleeps.
    #[inline]
    pub fn after_loop(&mut self, got: usize) -> Option<std::time::Duration> {
        if !self.on {
            return None;
        }
        if got > 0 {
            self.empty = 0;
            self.next_us = FIRST_SLEEP_US.min(self.max_us);
            return None;
        }
        self.empty = self.empty.saturating_add(1);
        if self.empty < EMPTY_LOOPS_BEFORE_SLEEP {
            return None;
        }
        let d = std::time::Duration::from_micros(u64::from(self.next_us));
        self.next_us = self.next_us.saturating_mul(2).min(self.max_us);
        Some(d)
    }
}

/// Removed real servers whose connections are being expired, at most.
const NODEST_QUEUE: usize = 1024;
/// Connection slots scanned per loop while expiring them.
const NODEST_SLOTS_PER_LOOP: u32 = 4096;

/// A running worker.
pub struct Worker {
    id: u16,
    lcore: u32,
    rx: Vec<RxQueue>,
    engine: Engine,
    shared: Arc<Shared>,
    clock: Clock,
    snap: Arc<Snapshot>,
    /// The snapshot's ports as the frame logic reads them (rebuilt per generation).
    links: Vec<frame::Port>,
    node: Node<MbufSlot>,
    io: WorkerIo,
    burst: Burst,
    persist_at: u64,
    expire_nodest: bool,
    nodest: Vec<fnat::service::RsId>,
    nodest_pos: u32,
    twin_down: Option<RingConsumer>,
    redirect_rx: Vec<RingConsumer>,
    backoff: Backoff,
    ip_batch: [MbufSlot; dpdk::BURST_SIZE],
    verdicts: [Verdict; dpdk::BURST_SIZE],
    /// When the `worker_stall` failpoint stops this worker (see [`stall_at`]).
    stall_at: Option<u64>,
    /// The sync thread's resync count this worker has acted on, and where its walk of
    /// the table for a peer that started stands (see [`Worker::sync`]).
    resync_seen: u64,
    sync_walk: Option<u32>,
}

/// Fault injection for tests of rvsd's own supervision: with
/// `RVS_FAILPOINT=worker_stall:ID:MS` in its environment, worker `ID` stops making
/// progress `MS` milliseconds after it starts (as a worker stuck in a bug would), so the
/// systemd watchdog test can see WATCHDOG=1 withheld. Read once, at start.
fn stall_at(id: u16, now: u64) -> Option<u64> {
    let spec = std::env::var("RVS_FAILPOINT").ok()?;
    let mut parts = spec.strip_prefix("worker_stall:")?.split(':');
    let (worker, after) = (parts.next()?.parse::<u16>().ok()?, parts.next()?.parse::<u64>().ok()?);
    (worker == id).then(|| {
        tracing::warn!(worker = id, after_ms = after, "RVS_FAILPOINT: this worker will stall");
        now + after
    })
}

/// Every frame's IP header follows a 14-byte Ethernet header.
const L3_OFFSETS: [usize; dpdk::BURST_SIZE] = [ETH_LEN; dpdk::BURST_SIZE];

/// The worker's queues and buffer pool, as the frame logic uses them ([`Io`]), and what
/// happens on them (ring and queue overflows, copies that found no buffer).
struct WorkerIo {
    tx: Vec<TxBuffer>,
    pool: Arc<Mempool>,
    shared: Arc<Shared>,
    /// The ports of the current generation (for their capture settings).
    ports: Arc<Vec<PortView>>,
    /// Whether any of them captures (one test per frame instead of a port lookup).
    capturing: bool,
    twin_up: RingProducer,
    twin_out: Burst,
    twin_up_control: RingProducer,
    twin_control_out: Burst,
    redirect_tx: Vec<Option<RingProducer>>,
    redirect_out: Vec<Burst>,
    capture: RingProducer,
    counters: NetCounters,
    /// The frames going through the core were handed over by other workers.
    redirected: bool,
}

/// What the frame logic reads of a generation: its ports (as `links`) and tables.
#[inline]
fn net<'a>(links: &'a [frame::Port], snap: &'a Snapshot) -> Net<'a> {
    Net { ports: links, addrs: &snap.addrs, routes: &snap.routes, neighs: &snap.neighs }
}

/// Whether a capture runs on any of `ports`.
fn capturing(ports: &[PortView]) -> bool {
    ports.iter().any(|p| p.capture.is_some())
}

fn links(ports: &[PortView]) -> Vec<frame::Port> {
    ports
        .iter()
        .map(|p| frame::Port {
            name: p.name.clone(),
            mac: p.mac,
            mtu: p.mtu,
            forward2kni: p.forward2kni,
            twin: p.twin,
            vlan: p.vlan,
        })
        .collect()
}

impl Worker {
    /// A worker on the current snapshot.
    pub fn new(p: WorkerParts) -> Worker {
        let snap = p.shared.current();
        let mut engine = p.engine;
        engine.set_own_addrs(snap.addrs.iter().map(|e| e.ip()));
        engine.set_snat(Arc::clone(&snap.snat));
        Worker {
            id: p.id,
            lcore: p.lcore,
            rx: p.rx,
            engine,
            clock: p.clock,
            links: links(&snap.ports),
            node: {
                let mut n = Node::new();
                n.set_twin_budget(p.twin_budget);
                n
            },
            io: WorkerIo {
                tx: p.tx,
                pool: p.pool,
                shared: p.shared.clone(),
                ports: snap.ports.clone(),
                capturing: capturing(&snap.ports),
                redirected: false,
                twin_up: p.twin_up,
                twin_out: Burst::new(),
                twin_up_control: p.twin_up_control,
                twin_control_out: Burst::new(),
                redirect_out: p.redirect_tx.iter().map(|_| Burst::new()).collect(),
                redirect_tx: p.redirect_tx,
                capture: p.capture,
                counters: NetCounters::default(),
            },
            shared: p.shared,
            snap,
            burst: Burst::new(),
            persist_at: 0,
            expire_nodest: p.expire_nodest,
            nodest: Vec::with_capacity(NODEST_QUEUE),
            nodest_pos: 0,
            twin_down: p.twin_down,
            redirect_rx: p.redirect_rx,
            backoff: p.backoff,
            ip_batch: Default::default(),
            verdicts: [Verdict::NotMine; dpdk::BURST_SIZE],
            stall_at: stall_at(p.id, p.clock.now_ms()),
            resync_seen: 0,
            sync_walk: None,
        }
    }

    /// Runs until the control thread sets the stop flag; returns 0.
    pub fn run(mut self) -> i32 {
        self.shared.workers[self.id as usize].seen_gen.store(self.snap.gen, Ordering::Release);
        tracing::info!(worker = self.id, lcore = self.lcore, "worker running");
        while !self.shared.stop.load(Ordering::Relaxed) {
            self.refresh();
            self.commands();
            let now = self.clock.now_ms();
            self.shared.workers[self.id as usize].heartbeat.store(now, Ordering::Relaxed);
            if self.stall_at.is_some_and(|t| now >= t) {
                while !self.shared.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                continue;
            }
            let mut got = 0;
            for port in 0..self.rx.len() {
                let n = self.rx[port].rx_burst(&mut self.burst);
                if n == 0 {
                    continue;
                }
                got += n;
                self.receive_burst(port, n, now);
            }
            got += self.redirected_in(now);
            got += self.down_from_twins();
            self.node.counters.inc(NetCounter::Loops);
            if got > 0 {
                self.node.counters.inc(NetCounter::BusyLoops);
            }
            self.engine.expire(now, EXPIRE_BUDGET);
            self.node.tend_hops(&mut self.engine);
            if self.shared.sync.is_some() {
                self.sync(now);
            }
            let reports = &self.shared.workers[self.id as usize].dest_reports;
            self.engine.take_dest_reports(|r| reports.push(r).is_ok());
            if now >= self.persist_at {
                self.engine.expire_persistence(now);
                self.persist_at = now + 1000;
            }
            if let Some(&rs) = self.nodest.last() {
                match self.engine.expire_rs(rs, self.nodest_pos, NODEST_SLOTS_PER_LOOP).1 {
                    Some(pos) => self.nodest_pos = pos,
                    None => {
                        self.nodest.pop();
                        self.nodest_pos = 0;
                    }
                }
            }
            let net = net(&self.links, &self.snap);
            if self.node.housekeeping(&net, now, &mut self.io) {
                // 802.3ad bonds send LACPDUs from inside transmit calls: poll idle
                // ports too (DPDK asks for at least every 100 ms).
                for t in &mut self.io.tx {
                    t.poll();
                }
            }
            self.io.flush();
            if let Some(d) = self.backoff.after_loop(got) {
                self.node.counters.inc(NetCounter::IdleSleeps);
                std::thread::sleep(d);
            }
        }
        // Leave a final report for the control thread's shutdown summary.
        let report = self.report();
        let _ = self.shared.workers[self.id as usize].replies.push(Reply::Stats(Box::new(report)));
        0
    }

    /// The `n` frames received on `port` into `self.burst`: each through the frame
    /// logic; the IP frames for the core then go through it together.
    #[inline]
    fn receive_burst(&mut self, port: usize, n: usize, now: u64) {
        let net = net(&self.links, &self.snap);
        let mut k = 0;
        let mut tagged = false;
        // The feeding core (a NIC's driver, or another lcore) wrote each mbuf's header and
        // data: each frame's header is loaded a few frames ahead and its data fewer, so
        // the misses overlap instead of stalling every frame twice.
        for i in 0..HEADER_AHEAD {
            self.burst.prefetch_header(i);
        }
        for i in 0..DATA_AHEAD {
            self.burst.prefetch_data(i);
        }
        for i in 0..n {
            self.burst.prefetch_header(i + HEADER_AHEAD);
            self.burst.prefetch_data(i + DATA_AHEAD);
            let Some(m) = self.burst.take(i) else { continue };
            self.io.capture_copy(port, &m, true);
            let mut arrived = port;
            if let Some(mut ip) = self.node.receive(&net, &mut arrived, MbufSlot(Some(m)), &mut self.io) {
                if arrived != port {
                    // A VLAN sub-interface's frame: its port goes with it.
                    tagged = true;
                }
                if let Some(m) = &mut ip.0 {
                    m.set_port(arrived as u16);
                }
                self.ip_batch[k] = ip;
                k += 1;
            }
        }
        self.burst.forget_taken();
        self.through_core(k, now, (!tagged).then_some(port));
    }

    /// Runs the first `k` frames of `ip_batch` through the core together (their
    /// connection lookups overlap their cache misses), then each with its verdict
    /// through the frame logic. `port` is where they arrived; `None` reads it from each
    /// mbuf (redirected frames carry it).
    #[inline]
    fn through_core(&mut self, k: usize, now: u64, port: Option<usize>) {
        if k == 0 {
            return;
        }
        self.engine.process_burst(
            &self.snap.services,
            &mut self.ip_batch[..k],
            &L3_OFFSETS[..k],
            now,
            &mut self.verdicts[..k],
        );
        let net = net(&self.links, &self.snap);
        for i in 0..k {
            let b = std::mem::take(&mut self.ip_batch[i]);
            let port = port.unwrap_or_else(|| b.0.as_ref().map_or(0, |m| m.port() as usize));
            self.node.after_core(&net, port, b, self.verdicts[i], &mut self.engine, &mut self.io);
        }
    }

    /// Picks up a newly published generation.
    fn refresh(&mut self) {
        let gen = self.shared.gen.load(Ordering::Acquire);
        if gen == self.snap.gen {
            return;
        }
        let new = self.shared.current();
        let mut rebind = !Arc::ptr_eq(&new.services, &self.snap.services);
        if rebind && self.expire_nodest {
            for d in self.snap.services.services().iter().flat_map(|s| &s.dests) {
                if new.services.dest(d.id).is_none() && self.nodest.len() < NODEST_QUEUE {
                    self.nodest.push(d.id);
                }
            }
        }
        if !Arc::ptr_eq(&new.laddrs, &self.snap.laddrs) {
            for set in new.laddrs.iter() {
                rebind |= self.engine.set_local_addrs(set.service, &set.lips);
            }
        }
        if rebind {
            let slot = &self.shared.workers[self.id as usize];
            if let Some(built) = slot.take_slot_state() {
                let offered = built.features();
                let left = self.engine.adopt_slot_state(built);
                let (adopted, handed_back) = (offered.minus(left.features()), left.features());
                tracing::info!(worker = self.id, ?adopted, ?handed_back, "per-slot state built by the control thread");
                // What it had already (a peer's record brought it) goes back to the
                // control thread to be freed there, not here.
                if !handed_back.is_empty() {
                    let _ = slot.slot_state_back.push(left);
                }
            }
            self.engine.bind(&new.services);
        }
        if !Arc::ptr_eq(&new.addrs, &self.snap.addrs) {
            // A new flow from any of these is a land attack.
            self.engine.set_own_addrs(new.addrs.iter().map(|e| e.ip()));
        }
        if new.timeouts != self.snap.timeouts {
            self.engine.set_timeouts(new.timeouts);
        }
        if !Arc::ptr_eq(&new.deny, &self.snap.deny) {
            self.engine.set_deny_set(Arc::clone(&new.deny));
        }
        if !Arc::ptr_eq(&new.snat, &self.snap.snat) {
            self.engine.set_snat(Arc::clone(&new.snat));
        }
        if !Arc::ptr_eq(&new.ports, &self.snap.ports) {
            // Once per generation, off the per-packet path.
            self.links = links(&new.ports);
            self.io.ports = new.ports.clone();
            self.io.capturing = capturing(&new.ports);
        }
        self.snap = new;
        self.shared.workers[self.id as usize].seen_gen.store(self.snap.gen, Ordering::Release);
        let net = net(&self.links, &self.snap);
        self.node.release_resolved(&net, &mut self.io);
    }

    /// Connection sync: the connections this worker announced go to the sync thread;
    /// some of those peers announced are installed.
    fn sync(&mut self, now: u64) {
        let slot = &self.shared.workers[self.id as usize];
        let master = self.shared.sync.as_ref().is_some_and(|s| s.runs(crate::sync::MASTER));
        if master != self.engine.sync_announces() {
            self.engine.set_sync_announce(master);
        }
        // A walk asked for while one runs starts when that one ends (from the start:
        // the new peer missed what was walked), never restarts it: peers appearing
        // faster than a walk of a large table ends cannot keep it from ending.
        let want = self.shared.resync.load(Ordering::Relaxed);
        if want != self.resync_seen && self.sync_walk.is_none() {
            self.resync_seen = want;
            self.sync_walk = Some(0);
        }
        if let Some(cursor) = self.sync_walk {
            // A slice of the whole table, as much as the queue has room for.
            let room = slot.sync_out.capacity() - slot.sync_out.len();
            if room > 0 {
                self.sync_walk = self.engine.sync_walk(cursor, room.min(SYNC_WALK_BUDGET), now);
            }
        }
        self.engine.take_sync(|r| slot.sync_out.push(r).is_ok());
        for _ in 0..SYNC_INSTALL_BUDGET {
            let Some(r) = slot.sync_in.pop() else { break };
            // Refusals are counted by the engine.
            let _ = self.engine.install_synced(&self.snap.services, &r, now);
        }
    }

    /// Answers the control thread.
    fn commands(&mut self) {
        let slot = &self.shared.workers[self.id as usize];
        while let Some(cmd) = slot.commands.pop() {
            let reply = match cmd {
                Command::Stats => Reply::Stats(Box::new(self.report())),
                Command::ZeroService(key) => {
                    self.engine.zero_service(&self.snap.services, &key);
                    Reply::Done
                }
                Command::Zero => {
                    self.engine.zero_stats();
                    self.node.counters.zero();
                    self.io.counters.zero();
                    for t in &mut self.io.tx {
                        t.dropped = 0;
                    }
                    Reply::Done
                }
                Command::Exhaustion => {
                    let stats = self.engine.stats();
                    Reply::Exhaustion(Exhaustion {
                        pool_full: stats.drops(DropReason::PoolFull),
                        no_local_port: stats.drops(DropReason::NoLocalPort),
                        no_mbuf: self.node.counters.drops.get(NetDrop::NoMbuf)
                            + self.io.counters.drops.get(NetDrop::NoMbuf),
                    })
                }
                Command::ListConns { cursor, max, filter } => {
                    let (conns, next) = filter.list(&self.engine, cursor, max, self.clock.now_ms());
                    Reply::Conns(conns, next)
                }
                Command::ListTemplates { cursor, max } => {
                    let now = self.clock.now_ms();
                    let (conns, next) = self.engine.list_templates(&self.snap.services, cursor, max, now);
                    Reply::Conns(conns, next)
                }
            };
            let _ = self.shared.workers[self.id as usize].replies.push(reply);
        }
    }

    fn report(&self) -> WorkerReport {
        let mut net = self.node.counters;
        net.add(&self.io.counters);
        let tx_dropped: Vec<u64> = self.io.tx.iter().map(|t| t.dropped).collect();
        net.drops.add_n(NetDrop::TxFull, tx_dropped.iter().sum());
        WorkerReport {
            id: self.id,
            lcore: self.lcore,
            gen: self.snap.gen,
            conns: self.engine.conns().len(),
            tables: self.engine.table_gauges(),
            core: self.engine.stats_snapshot(),
            net,
            tx_dropped,
            lip_conns: self.engine.pools().lip_conns().map(|(a, n)| (a.ip(), n)).collect(),
        }
    }

    /// Processes the replies other workers handed over, a burst at a time through the
    /// core (their connection lookups overlap); returns how many.
    fn redirected_in(&mut self, now: u64) -> usize {
        let mut got = 0;
        for r in 0..self.redirect_rx.len() {
            let n = self.redirect_rx[r].dequeue_burst(&mut self.burst);
            got += n;
            let mut k = 0;
            for i in 0..n {
                if let Some(m) = self.burst.take(i) {
                    self.io.counters.inc(NetCounter::RedirectIn);
                    self.ip_batch[k] = MbufSlot(Some(m));
                    k += 1;
                }
            }
            self.burst.forget_taken();
            self.io.redirected = true;
            self.through_core(k, now, None);
            self.io.redirected = false;
        }
        got
    }

    /// Transmits what the kernel sent on the twins; returns how many frames.
    fn down_from_twins(&mut self) -> usize {
        let Some(down) = &mut self.twin_down else { return 0 };
        let n = down.dequeue_burst(&mut self.burst);
        let net = net(&self.links, &self.snap);
        for i in 0..n {
            let Some(m) = self.burst.take(i) else { continue };
            let port = m.port() as usize;
            self.node.from_twin(&net, port, MbufSlot(Some(m)), &mut self.io);
        }
        self.burst.forget_taken();
        n
    }
}

impl WorkerIo {
    /// Queues a copy of a frame for the control thread's capture writer if a capture
    /// on `port` wants it; never waits. Inlined to its test, which is all it costs a
    /// frame while nothing captures.
    #[inline(always)]
    fn capture_copy(&mut self, port: usize, m: &Mbuf, rx: bool) {
        if self.capturing {
            self.capture_copy_now(port, m, rx);
        }
    }

    /// [`capture_copy`](Self::capture_copy) while a capture runs.
    #[inline(never)]
    fn capture_copy_now(&mut self, port: usize, m: &Mbuf, rx: bool) {
        let Some(c) = self.ports.get(port).and_then(|p| p.capture.as_ref()) else { return };
        if !(if rx { c.rx } else { c.tx }) || !c.filter.matches(m) {
            return;
        }
        let Some(tx) = self.tx.get(port) else { return };
        let dir = if rx { dpdk::pcapng::Direction::In } else { dpdk::pcapng::Direction::Out };
        // Formatted for DPDK's pcapng writer here, with the time it was seen.
        let copy = dpdk::pcapng::copy(m, tx.port(), u32::from(tx.queue()), &self.pool, dir, dpdk::tsc());
        let Some(copy) = copy else {
            return self.counters.drop(NetDrop::NoMbuf);
        };
        let mut b = Burst::new();
        let _ = b.push(copy);
        self.capture.enqueue_burst(&mut b);
        // A full ring drops the copy (the burst frees it): capture never slows forwarding.
        b.clear();
    }

    fn flush_redirect(&mut self, owner: usize) {
        let n = self.redirect_out[owner].len();
        if n == 0 {
            return;
        }
        let Some(tx) = &mut self.redirect_tx[owner] else { return };
        let sent = tx.enqueue_burst(&mut self.redirect_out[owner]);
        self.counters.counts.add_n(NetCounter::RedirectOut, sent as u64);
        self.counters.drops.add_n(NetDrop::Redirect, (n - sent) as u64);
        self.redirect_out[owner].clear();
    }

    /// An ICMP error whose connection may be any other worker's ([`EVERY_WORKER`]): a
    /// copy to each of them (the node hands over none it was handed).
    #[cold]
    fn hand_to_every_worker(&mut self, port: usize, m: Mbuf) {
        for owner in 0..self.redirect_out.len() {
            if self.redirect_tx[owner].is_none() {
                continue;
            }
            let Some(c) = m.copy_to(&self.pool) else {
                self.counters.drop(NetDrop::NoMbuf);
                continue;
            };
            self.push_redirect(owner, port, c);
        }
    }

    /// Queues a frame for worker `owner` (a handed-over packet of port `port`),
    /// sending the queue first when it is full.
    #[inline]
    fn push_redirect(&mut self, owner: usize, port: usize, mut m: Mbuf) {
        m.set_port(port as u16);
        if self.redirect_out[owner].is_full() {
            self.flush_redirect(owner);
        }
        if self.redirect_out[owner].push(m).is_err() {
            self.counters.drop(NetDrop::Redirect);
        }
    }

    /// Sends the frames gathered for the twins, each class on its ring; a full ring
    /// drops (never waits).
    fn flush_twin(&mut self) {
        for control in [true, false] {
            let (ring, out) = match control {
                true => (&mut self.twin_up_control, &mut self.twin_control_out),
                false => (&mut self.twin_up, &mut self.twin_out),
            };
            let n = out.len();
            if n == 0 {
                continue;
            }
            let sent = ring.enqueue_burst(out) as u64;
            out.clear();
            self.counters.counts.add_n(NetCounter::TwinUp, sent);
            if control {
                self.counters.counts.add_n(NetCounter::TwinUpControl, sent);
            }
            let full = if control { NetDrop::TwinFullControl } else { NetDrop::TwinFull };
            self.counters.drops.add_n(full, n as u64 - sent);
        }
    }

    /// End of a loop: the twins' ring, the other workers' rings, the ports.
    fn flush(&mut self) {
        self.flush_twin();
        for owner in 0..self.redirect_out.len() {
            self.flush_redirect(owner);
        }
        for t in &mut self.tx {
            t.flush();
        }
    }
}

impl Io<MbufSlot> for WorkerIo {
    #[inline]
    fn alloc(&mut self) -> Option<MbufSlot> {
        Mbuf::alloc(&self.pool).map(|m| MbufSlot(Some(m)))
    }

    #[inline]
    fn copy(&mut self, b: &MbufSlot) -> Option<MbufSlot> {
        b.0.as_ref()?.copy_to(&self.pool).map(|m| MbufSlot(Some(m)))
    }

    /// Every frame the worker sends passes here, so a capture of sent frames sees them all.
    #[inline]
    fn transmit(&mut self, port: usize, b: MbufSlot) {
        let Some(m) = b.0 else { return };
        if port >= self.tx.len() {
            return self.counters.drop(NetDrop::NoRoute);
        }
        self.capture_copy(port, &m, false);
        self.tx[port].push(m);
    }

    #[inline]
    fn up_to_twin(&mut self, port: usize, b: MbufSlot, class: TwinClass) {
        let Some(mut m) = b.0 else { return };
        m.set_port(port as u16);
        let control = class.is_control();
        let full = if control { self.twin_control_out.is_full() } else { self.twin_out.is_full() };
        if full {
            self.flush_twin();
        }
        let out = if control { &mut self.twin_control_out } else { &mut self.twin_out };
        if out.push(m).is_err() {
            self.counters.drop(if control { NetDrop::TwinFullControl } else { NetDrop::TwinFull });
        }
    }

    #[inline]
    fn redirect(&mut self, owner: u16, port: usize, b: MbufSlot) {
        let Some(m) = b.0 else { return };
        if owner == EVERY_WORKER {
            return self.hand_to_every_worker(port, m);
        }
        let owner = owner as usize;
        if owner >= self.redirect_out.len() || self.redirect_tx[owner].is_none() {
            return self.counters.drop(NetDrop::Redirect);
        }
        self.push_redirect(owner, port, m);
    }

    #[inline]
    fn handed_over(&self) -> bool {
        self.redirected
    }

    #[inline]
    fn seen_neighbour(&mut self, ip: IpAddr, mac: EthernetAddress, port: usize) {
        if self.shared.neigh_seen.push(NeighSeen { ip, mac, port: PortId(port as u16) }).is_err() {
            self.counters.drop(NetDrop::NeighQueueFull);
        }
    }

    fn asking_neighbour(&mut self, ip: IpAddr, port: usize) {
        if self.shared.neigh_asked.push((ip, PortId(port as u16))).is_err() {
            self.counters.drop(NetDrop::NeighQueueFull);
        }
    }
}

#[cfg(test)]
mod backoff_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn adaptive_sleeps_after_a_quiet_spell_and_backs_off_to_its_maximum() {
        let mut busy = Backoff::new(Polling::Busy, 500);
        assert!((0..10_000).all(|_| busy.after_loop(0).is_none()), "busy polling never sleeps");
        let mut b = Backoff::new(Polling::Adaptive, 100);
        assert!((1..EMPTY_LOOPS_BEFORE_SLEEP).all(|_| b.after_loop(0).is_none()), "spins first");
        let sleeps: Vec<Duration> = (0..5).filter_map(|_| b.after_loop(0)).collect();
        let us = |n| Duration::from_micros(n);
        assert_eq!(sleeps, vec![us(16), us(32), us(64), us(100), us(100)]);
        assert_eq!(b.after_loop(3), None, "a frame wakes it");
        assert!((1..EMPTY_LOOPS_BEFORE_SLEEP).all(|_| b.after_loop(0).is_none()), "and it spins again");
        assert_eq!(b.after_loop(0), Some(us(16)), "from the first sleep");
        let mut tiny = Backoff::new(Polling::Adaptive, 1);
        assert_eq!((0..EMPTY_LOOPS_BEFORE_SLEEP).filter_map(|_| tiny.after_loop(0)).last(), Some(us(1)));
    }
}
