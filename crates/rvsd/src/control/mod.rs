//! The control thread (main lcore): owns the authoritative configuration ([`State`]),
//! the neighbour table and the ports. It answers control-socket requests — a change is
//! validated whole, published as a new generation, and answered only when every worker
//! runs it — learns the neighbours workers saw, answers signals, and gathers the
//! workers' counters. It sleeps between rounds; it never busy-polls.
//!
//! The rooms: this file holds [`Control`] and its loop, neighbour learning and
//! publishing; `requests` dispatches requests to the verbs (the service set's in
//! [`ctl::verbs`], the others on [`State`]); `views` builds the listings (services,
//! connections, links, addresses, neighbours, worker counters and the stats summary);
//! `capture` starts and writes a capture; `bonds` watches active-backup bonds. The
//! kernel twins' pump and link mirroring are in [`crate::twin`].

mod bonds;
mod capture;
mod requests;
mod views;

pub use views::summary;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctl::{ErrorCode, Request, Response};
use dpdk::{Mempool, Port, RingConsumer, RingProducer};
use netstack::{Learned, NeighTable};

use crate::clock::Clock;
use crate::server::Job;
use crate::shared::{PortView, Shared};
use crate::state::State;
use crate::steering::{DpdkFlows, PortSteering};
use crate::twin::Twin;

use self::capture::ActiveCapture;

/// Learned neighbours are re-resolved after this long without being seen.
const NEIGH_REACHABLE_MS: u64 = 300_000;
/// How long a change may take to reach every worker.
const CONFIRM_WAIT: Duration = Duration::from_secs(2);

/// A port the control thread owns.
pub struct PortHandle {
    /// Flow rules steering replies to their workers, per LIP (destroyed before the port).
    pub steering: PortSteering<dpdk::Flow>,
    /// The DPDK port.
    pub port: Port,
    /// A bond's slave ports (after the bond, which uses them).
    pub slaves: Vec<Port>,
    /// Operator's name.
    pub name: String,
    /// DPDK device name.
    pub device: String,
    /// Driver name.
    pub driver: String,
    /// Queues per direction (one per worker).
    pub queues: u16,
    /// NUMA socket.
    pub socket: i32,
    /// Its kernel twin.
    pub twin: Option<Twin>,
}

/// How often the control thread checks active-backup bonds' links.
const BOND_WATCH: Duration = Duration::from_millis(20);

/// The control thread's state.
pub struct Control {
    shared: Arc<Shared>,
    clock: Clock,
    neighs: NeighTable,
    state: State,
    ports: Vec<PortHandle>,
    jobs: Receiver<Job>,
    pool_size: u32,
    started: Instant,
    twin_up: RingConsumer,
    twin_down: RingProducer,
    pool: Arc<Mempool>,
    capture_rx: RingConsumer,
    capture: Option<ActiveCapture>,
    /// Set by SIGTERM/SIGINT.
    pub term: Arc<AtomicBool>,
    /// Set by SIGUSR1: log counters.
    pub usr1: Arc<AtomicBool>,
}

impl Control {
    /// Control over `shared`, whose snapshot was derived from `state`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        shared: Arc<Shared>,
        clock: Clock,
        state: State,
        ports: Vec<PortHandle>,
        jobs: Receiver<Job>,
        pool_size: u32,
        twin_up: RingConsumer,
        twin_down: RingProducer,
        pool: Arc<Mempool>,
        capture_rx: RingConsumer,
    ) -> Control {
        let neighs = (*shared.current().neighs).clone();
        Control {
            shared,
            clock,
            neighs,
            state,
            ports,
            jobs,
            pool_size,
            started: Instant::now(),
            twin_up,
            twin_down,
            pool,
            capture_rx,
            capture: None,
            term: Arc::new(AtomicBool::new(false)),
            usr1: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Runs until SIGTERM/SIGINT; returns the ports for an orderly shutdown.
    pub fn run(mut self) -> Vec<PortHandle> {
        let mut aged_at = Instant::now();
        let mut link_at = Instant::now();
        let mut bond_at = Instant::now();
        while !self.term.load(Ordering::Relaxed) {
            let mut busy = Twin::pump(&mut self.twin_up, &mut self.twin_down, &mut self.ports);
            if bond_at.elapsed() > BOND_WATCH {
                bond_at = Instant::now();
                self.watch_bonds();
            }
            if link_at.elapsed() > Duration::from_secs(1) {
                link_at = Instant::now();
                Twin::mirror_links(&mut self.ports);
            }
            if self.usr1.swap(false, Ordering::Relaxed) {
                match self.stats(Duration::from_secs(2)) {
                    Some(v) => tracing::info!("rvsd: stats {v}"),
                    None => tracing::warn!("a worker did not answer the stats request"),
                }
            }
            if self.learn() {
                self.publish_neighs();
            }
            if aged_at.elapsed() > Duration::from_secs(10) {
                aged_at = Instant::now();
                if self.neighs.expire(self.clock.now_ms(), NEIGH_REACHABLE_MS).removed > 0 {
                    self.publish_neighs();
                }
            }
            busy |= self.pump_capture();
            while let Ok((req, reply)) = self.jobs.try_recv() {
                busy = true;
                if let Request::Capture { .. } = req {
                    if let Err(r) = self.start_capture(req, reply.clone()) {
                        let _ = reply.send(Response::error(r.code, r.message));
                    }
                    continue;
                }
                let resp = self.handle(req);
                let _ = reply.send(resp);
            }
            if !busy {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        self.ports
    }

    /// Learns the bindings workers reported; true if the table changed.
    pub(super) fn learn(&mut self) -> bool {
        let mut changed = false;
        let now = self.clock.now_ms();
        while let Some(s) = self.shared.neigh_seen.pop() {
            match self.neighs.learn(s.ip, s.mac, s.port, now) {
                Learned::Added | Learned::Changed => {
                    tracing::debug!(ip = %s.ip, mac = %s.mac, port = %s.port, "neighbour learned");
                    changed = true;
                }
                Learned::Full => tracing::warn!(ip = %s.ip, "neighbour table full"),
                _ => {}
            }
        }
        changed
    }

    pub(super) fn publish_neighs(&self) -> u64 {
        let cur = self.shared.current();
        let mut next = (*cur).clone();
        next.gen = cur.gen + 1;
        next.neighs = Arc::new(self.neighs.clone());
        self.shared.publish(next);
        cur.gen + 1
    }

    pub(super) fn publish_ports(&self, ports: Vec<PortView>) -> u64 {
        let cur = self.shared.current();
        let mut next = (*cur).clone();
        next.gen = cur.gen + 1;
        next.ports = Arc::new(ports);
        self.shared.publish(next);
        cur.gen + 1
    }

    /// Waits until every worker runs generation `gen`.
    pub(super) fn confirm(&self, gen: u64) -> Response {
        let deadline = Instant::now() + CONFIRM_WAIT;
        loop {
            let behind: Vec<usize> = (0..self.shared.workers.len())
                .filter(|&i| self.shared.workers[i].seen_gen.load(Ordering::Acquire) < gen)
                .collect();
            if behind.is_empty() {
                return Response::Done { gen };
            }
            if Instant::now() > deadline {
                return Response::error(
                    ErrorCode::Timeout,
                    format!("generation {gen} was published but workers {behind:?} did not confirm it within {CONFIRM_WAIT:?}"),
                );
            }
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Validates `next` whole, adopts it, publishes it and waits for every worker.
    pub(super) fn apply(&mut self, next: State) -> Response {
        let cur = self.shared.current();
        match next.snapshot(cur.gen + 1, Some(&cur), Arc::clone(&cur.ports), Arc::clone(&cur.neighs)) {
            Err(r) => Response::error(r.code, r.message),
            Ok(snap) => {
                let gen = snap.gen;
                self.state = next;
                self.shared.publish(snap);
                self.resteer();
                self.confirm(gen)
            }
        }
    }

    /// Keeps each port's steering rules in step with its LIPs (redirect covers a LIP
    /// whose rules could not be installed).
    fn resteer(&mut self) {
        for (i, p) in self.ports.iter_mut().enumerate() {
            let lips = self.state.lips_on(i);
            if let Err(e) = p.steering.sync(&mut DpdkFlows(p.port.id()), &lips) {
                tracing::warn!(port = %p.name, "steering: {e}");
            }
        }
    }
}
