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
//! `capture` starts and writes a capture; `bonds` watches bonds' slaves. The
//! kernel twins' pump and link mirroring are in [`crate::twin`].

mod bonds;
mod capture;
pub mod destcheck;
mod health;
mod metrics;
mod reload;
mod requests;
mod views;
mod vlans;
mod watchdog;

pub use metrics::service_label;
pub use views::summary;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctl::{ErrorCode, Request, Response};
use dpdk::{Burst, Mbuf, Mempool, Port, RingConsumer, RingProducer};
use netstack::{Learned, NeighEntry, NeighProbe, NeighTable, PortId, Refusal, Solicited};
use serde::Serialize;
use wire::EthernetAddress;

use crate::clock::Clock;
use crate::server::Job;
use crate::shared::{PortView, Shared};
use crate::state::State;
use crate::steering::{DpdkFlows, PortSteering};
use crate::twin::Twin;

use self::capture::ActiveCapture;
pub use self::reload::{fixed_changes, ReloadSource};

/// How often the control thread looks for neighbours due a probe (and for the
/// removal of those that never answered). Probes of an entry are at least 10 ms apart.
const NEIGH_TICK: Duration = Duration::from_millis(100);
/// At most one warning about refused or evicted neighbours per this long.
const NEIGH_WARN_EVERY: Duration = Duration::from_secs(10);
/// Addresses the workers may be resolving at once, as the control thread remembers
/// them (64 next hops per worker).
const SOLICITED_MAX: usize = 8192;

/// What the control thread did with the neighbour bindings workers reported, and with
/// its own probes (the `neigh` object of the stats JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct NeighCounters {
    /// New entries learned.
    pub learned: u64,
    /// Entries whose MAC or port changed.
    pub changed: u64,
    /// Entries confirmed by an answer to a probe.
    pub confirmed: u64,
    /// Learned entries evicted to make room on a full port.
    pub evicted: u64,
    /// Unicast probes sent (ARP requests / neighbour solicitations).
    pub probes: u64,
    /// Probes that could not be sent (no buffer, no source address, queue full).
    pub probe_failed: u64,
    /// Entries removed after every probe went unanswered.
    pub expired: u64,
    /// Bindings refused: not unicast.
    pub refused_not_unicast: u64,
    /// Bindings refused: one of our addresses.
    pub refused_own_address: u64,
    /// Bindings refused: in no connected subnet of the port they arrived on.
    pub refused_off_link: u64,
    /// Bindings refused: a static entry holds the address.
    pub refused_static: u64,
    /// Bindings refused: a new neighbour that no worker asked for (rvs learns new
    /// neighbours only from the answers to its own requests).
    pub refused_unsolicited: u64,
    /// Bindings refused: a new neighbour on a port full of the configuration's next
    /// hops (real servers, gateways), which it is not one of.
    pub refused_full: u64,
    /// Requests not remembered: too many addresses asked for at once (their answers are
    /// refused as unsolicited; the next request tries again).
    pub asked_full: u64,
}

impl NeighCounters {
    fn refused(&mut self, r: Refusal) {
        *match r {
            Refusal::NotUnicast => &mut self.refused_not_unicast,
            Refusal::Own => &mut self.refused_own_address,
            Refusal::OffLink => &mut self.refused_off_link,
            Refusal::Static => &mut self.refused_static,
        } += 1;
    }

    fn refused_total(&self) -> u64 {
        self.refused_not_unicast
            + self.refused_own_address
            + self.refused_off_link
            + self.refused_static
            + self.refused_unsolicited
            + self.refused_full
    }
}

/// Neighbours that moved (a failover, or a host on the link claiming another's address),
/// not yet told in a warning.
#[derive(Debug, Default)]
struct Moves {
    /// The last move: address, entry before, new MAC and port.
    last: Option<(IpAddr, NeighEntry, EthernetAddress, PortId)>,
    /// Moves since the last warning.
    untold: u64,
    /// When the last warning went out.
    warned: Option<Instant>,
}

/// The next hops the configuration names (real servers, routes' gateways), whose
/// neighbour entries a full port evicts last ([`NeighTable::learn_keeping`]): the set is
/// built when a full port first asks, once per change of the services or routes
/// published (most generations evict nothing).
#[derive(Default)]
struct KeptHops {
    /// The tables the set is built from.
    from: Option<(Arc<fnat::service::ServiceTable>, Arc<netstack::RouteTable>)>,
    addrs: std::cell::OnceCell<std::collections::HashSet<IpAddr, fnat::hash::SeededFold>>,
}

impl KeptHops {
    /// Follows `snap`'s services and routes (the set is built again on demand if they
    /// changed).
    fn refresh(&mut self, snap: &crate::shared::Snapshot) {
        let same = |(s, r): &(Arc<_>, Arc<_>)| Arc::ptr_eq(s, &snap.services) && Arc::ptr_eq(r, &snap.routes);
        if !self.from.as_ref().is_some_and(same) {
            self.from = Some((Arc::clone(&snap.services), Arc::clone(&snap.routes)));
            self.addrs = std::cell::OnceCell::new();
        }
    }

    /// Whether the configuration names `ip` as a next hop.
    fn contains(&self, ip: &IpAddr) -> bool {
        let set = self.addrs.get_or_init(|| {
            let mut set = std::collections::HashSet::default();
            if let Some((services, routes)) = &self.from {
                set.extend(services.services().iter().flat_map(|s| s.dests.iter().map(|d| d.addr)));
                set.extend(routes.iter().filter_map(|r| r.via));
            }
            set
        });
        set.contains(ip)
    }
}

/// The time of day in nanoseconds since the Unix epoch (0 if the clock is before it).
fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Tells systemd (when rvsd runs under it) what rvsd is doing.
fn notify(state: &str) {
    if let Err(e) = ctl::systemd::notify(state) {
        tracing::warn!("sd_notify: {e}");
    }
}

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

/// How often the control thread checks bonds' slaves.
const BOND_WATCH: Duration = Duration::from_millis(20);

/// The control thread's state.
pub struct Control {
    shared: Arc<Shared>,
    clock: Clock,
    neighs: NeighTable,
    state: State,
    ports: Vec<PortHandle>,
    /// The VLAN sub-interfaces (ports numbered after `ports`) and their twins.
    pub vlans: Vec<crate::twin::VlanHandle>,
    jobs: Receiver<Job>,
    pool_size: u32,
    started: Instant,
    /// When this process started ([`ctl::Response::Status`]'s `started_ns`).
    started_ns: u64,
    /// When the state was last built from the configuration file (`loaded_ns`).
    loaded_ns: u64,
    /// The addresses control connections added with a lease and still hold (rvs-agent's
    /// VIPs), each with its lessee (the server's connection id): the lessee's, so a
    /// SIGHUP keeps them (see `reload`), and only its own lease end removes them.
    leased: HashMap<IpAddr, u64>,
    /// The workers' rings up to the twins: the control protocols', then the rest's
    /// (pumped in that order, see `frame::twin`).
    twin_up: [RingConsumer; 2],
    twin_down: RingProducer,
    pool: Arc<Mempool>,
    capture_rx: RingConsumer,
    capture: Option<ActiveCapture>,
    neigh_counters: NeighCounters,
    /// The counters at the last warning about refused / evicted neighbours.
    neigh_warned: (Instant, NeighCounters),
    neigh_moves: Moves,
    /// The addresses workers asked for lately, whose answers alone add neighbours.
    solicited: Solicited,
    /// The next hops whose neighbours a full port evicts last.
    kept_hops: KeptHops,
    probes: Vec<NeighProbe>,
    /// Set by SIGTERM/SIGINT.
    pub term: Arc<AtomicBool>,
    /// Set by SIGUSR1: log counters.
    pub usr1: Arc<AtomicBool>,
    /// Set by SIGHUP: read the configuration file again.
    pub hup: Arc<AtomicBool>,
    /// The file SIGHUP reads, and the configuration running.
    pub reload_source: Option<ReloadSource>,
    /// Service sets arriving in parts (`ServiceStage`), by stage, with their last part's time.
    staged: std::collections::BTreeMap<u64, (Instant, Vec<ctl::ServiceSpec>)>,
    /// Link and exhaustion conditions, for their onset and recovery lines.
    health: health::Health,
    /// Scrapes: the metrics endpoint's (`[metrics]`) and DPDK telemetry's commands.
    pub scrapes: Option<Receiver<crate::metrics::Scrape>>,
    /// LACP bonds' slaves, by port id: whether each was aggregated at the last look.
    lacp_aggregated: std::collections::HashMap<u16, bool>,
    /// The passive check's account of real servers (`dest_check`).
    dest_check: destcheck::DestChecker,
    /// The real server whose weight the request being applied sets (the passive check
    /// brings it back if it holds it out in the down-only form).
    weight_set: Option<(fnat::service::ServiceKey, std::net::SocketAddr)>,
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
        twin_up: [RingConsumer; 2],
        twin_down: RingProducer,
        pool: Arc<Mempool>,
        capture_rx: RingConsumer,
    ) -> Control {
        // The first snapshot's table, with `[neigh_defs]`'s cap and timers.
        let neighs = (*shared.current().neighs).clone();
        Control {
            shared,
            clock,
            neighs,
            state,
            ports,
            vlans: Vec::new(),
            jobs,
            pool_size,
            started: Instant::now(),
            started_ns: now_ns(),
            loaded_ns: now_ns(),
            leased: HashMap::new(),
            twin_up,
            twin_down,
            pool,
            capture_rx,
            capture: None,
            neigh_counters: NeighCounters::default(),
            neigh_warned: (Instant::now(), NeighCounters::default()),
            neigh_moves: Moves::default(),
            solicited: Solicited::new(SOLICITED_MAX),
            kept_hops: KeptHops::default(),
            probes: Vec::new(),
            term: Arc::new(AtomicBool::new(false)),
            usr1: Arc::new(AtomicBool::new(false)),
            hup: Arc::new(AtomicBool::new(false)),
            reload_source: None,
            scrapes: None,
            health: health::Health::default(),
            staged: Default::default(),
            lacp_aggregated: Default::default(),
            dest_check: Default::default(),
            weight_set: None,
        }
    }

    /// Runs until SIGTERM/SIGINT (SIGHUP reloads, SIGUSR1 logs counters); returns the
    /// ports for an orderly shutdown.
    pub fn run(mut self) -> Vec<PortHandle> {
        let mut watchdog = watchdog::Watchdog::from_env(&self.shared);
        notify("READY=1\nSTATUS=forwarding");
        let mut aged_at = Instant::now();
        let mut link_at = Instant::now();
        let mut bond_at = Instant::now();
        while !self.term.load(Ordering::Relaxed) {
            let mut busy = Twin::pump(&mut self.twin_up, &mut self.twin_down, &mut self.ports, &mut self.vlans);
            if bond_at.elapsed() > BOND_WATCH {
                bond_at = Instant::now();
                self.watch_bonds();
            }
            if link_at.elapsed() > health::EVERY {
                link_at = Instant::now();
                Twin::mirror_links(&mut self.ports, &mut self.vlans);
                self.health.sample(&self.shared, &self.ports, &self.pool);
            }
            if self.hup.swap(false, Ordering::Relaxed) {
                notify("RELOADING=1\nSTATUS=reloading the configuration");
                self.reload();
                notify("READY=1\nSTATUS=forwarding");
            }
            if let Some(w) = &mut watchdog {
                w.tick(&self.shared);
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
            if aged_at.elapsed() > NEIGH_TICK {
                aged_at = Instant::now();
                self.refresh_neighs();
            }
            busy |= self.pump_capture();
            busy |= self.check_dests();
            self.shared.free_returned_slot_state();
            while let Ok(job) = self.jobs.try_recv() {
                busy = true;
                let (req, reply, file, client) = match job {
                    Job::Request { req, reply, file, client } => (req, reply, file, client),
                    Job::Gone { client } => {
                        self.client_gone(client);
                        continue;
                    }
                };
                if let Request::Capture { .. } = req {
                    if let Err(r) = self.start_capture(req, reply.clone(), file, client) {
                        let _ = reply.send(Response::error(r.code, r.message));
                    }
                    continue;
                }
                let resp = self.handle(req, client);
                let _ = reply.send(resp);
            }
            while let Some(scrape) = self.scrapes.as_ref().and_then(|r| r.try_recv().ok()) {
                busy = true;
                self.scrape(scrape);
            }
            if !busy {
                std::thread::sleep(Duration::from_micros(500));
            }
        }
        notify("STOPPING=1\nSTATUS=stopping");
        self.ports
    }

    /// Learns the bindings workers reported, if [`netstack::admit`] agrees (the
    /// workers asked it already; the addresses may have changed since) and, for a new
    /// neighbour, if a worker asked for it ([`netstack::Solicited`]); true if what the
    /// workers read changed. Refusals and evictions are counted, not logged one by one;
    /// a known neighbour's new MAC or port is logged (at most one warning per
    /// [`NEIGH_WARN_EVERY`]).
    pub(super) fn learn(&mut self) -> bool {
        let mut changed = false;
        let now = self.clock.now_ms();
        let snap = self.shared.current();
        self.kept_hops.refresh(&snap);
        self.take_asks(now);
        while let Some(s) = self.shared.neigh_seen.pop() {
            let mac = s.mac;
            if let Err(r) = netstack::admit(&snap.addrs, &self.neighs, s.ip, mac, s.port) {
                self.neigh_counters.refused(r);
                continue;
            }
            let before = self.neighs.lookup(s.ip).copied();
            if before.is_none() && !self.solicited.awaited(s.ip, s.port, now) {
                // Asked while this loop ran, perhaps: the ask is queued before the request
                // leaves.
                self.take_asks(now);
                if !self.solicited.awaited(s.ip, s.port, now) {
                    self.neigh_counters.refused_unsolicited += 1;
                    continue;
                }
            }
            let kept = &self.kept_hops;
            let learned = self.neighs.learn_keeping(s.ip, mac, s.port, now, &|ip| kept.contains(ip));
            // A request answered (a new neighbour's, or a probe's) is awaited no more.
            self.solicited.answered(s.ip, s.port);
            let c = &mut self.neigh_counters;
            match learned {
                Learned::Added => c.learned += 1,
                Learned::Evicted(_) => {
                    c.learned += 1;
                    c.evicted += 1;
                }
                Learned::Changed => c.changed += 1,
                Learned::Confirmed => c.confirmed += 1,
                Learned::Full => c.refused_full += 1,
                Learned::Refreshed | Learned::KeptStatic => {}
            }
            match (learned, before) {
                (Learned::Changed, Some(b)) => {
                    self.neigh_moves.last = Some((s.ip, b, mac, s.port));
                    self.neigh_moves.untold += 1;
                }
                (Learned::Added, _) => tracing::debug!(ip = %s.ip, %mac, port = %s.port, "neighbour learned"),
                _ => {}
            }
            changed |= learned.changed();
        }
        self.warn_neighs();
        changed
    }

    /// Remembers the addresses the workers asked for.
    fn take_asks(&mut self, now: u64) {
        while let Some((ip, port)) = self.shared.neigh_asked.pop() {
            if !self.solicited.asked(ip, port, now) {
                self.neigh_counters.asked_full += 1;
            }
        }
    }

    /// Sends the probes that are due, removes the neighbours that never answered, and
    /// publishes the table if what the workers read changed (an entry entering probe
    /// must be seen by the workers, so that they report its answer).
    fn refresh_neighs(&mut self) {
        let mut probes = std::mem::take(&mut self.probes);
        probes.clear();
        let now = self.clock.now_ms();
        self.solicited.expire(now);
        let e = self.neighs.expire(now, &mut probes);
        self.neigh_counters.expired += e.removed as u64;
        if e.changed() {
            self.publish_neighs();
        }
        if !probes.is_empty() {
            self.send_probes(&probes);
        }
        self.probes = probes;
    }

    /// Sends unicast ARP requests / neighbour solicitations to the MACs the table
    /// knows, through worker 0's transmit queue (as the twins' frames go).
    fn send_probes(&mut self, probes: &[NeighProbe]) {
        let snap = self.shared.current();
        let mut b = Burst::new();
        let now = self.clock.now_ms();
        for p in probes {
            // An answer that comes after the entry was removed adds it again.
            self.solicited.asked(p.ip, p.port, now);
            let (Some(view), Some(src)) = (snap.ports.get(p.port.0 as usize), snap.addrs.source_for(p.port, p.ip))
            else {
                self.neigh_counters.probe_failed += 1;
                continue;
            };
            let Some(mut m) = Mbuf::alloc(&self.pool) else {
                self.neigh_counters.probe_failed += 1;
                continue;
            };
            let Some(buf) = m.append(128) else {
                self.neigh_counters.probe_failed += 1;
                continue;
            };
            let built = match (src, p.ip) {
                (IpAddr::V4(s), IpAddr::V4(t)) => netstack::arp::build_unicast_request(buf, view.mac, s, t, p.mac),
                (IpAddr::V6(s), IpAddr::V6(t)) => netstack::nd::build_unicast_solicit(buf, view.mac, s, t, p.mac),
                _ => {
                    self.neigh_counters.probe_failed += 1;
                    continue;
                }
            };
            let Ok(len) = built else {
                self.neigh_counters.probe_failed += 1;
                continue;
            };
            m.trim(128 - len);
            m.set_port(p.port.0);
            let _ = b.push(m);
            self.neigh_counters.probes += 1;
            if b.is_full() {
                self.twin_down.enqueue_burst(&mut b);
                self.neigh_counters.probe_failed += b.len() as u64;
                b.clear();
            }
        }
        self.twin_down.enqueue_burst(&mut b);
        self.neigh_counters.probe_failed += b.len() as u64;
        b.clear();
    }

    /// At most one warning per [`NEIGH_WARN_EVERY`] about the bindings refused and
    /// the entries evicted since the last one, and one about neighbours that moved (a
    /// failover, or someone on the link claiming a server's or a gateway's address).
    fn warn_neighs(&mut self) {
        self.warn_moves();
        let (at, last) = self.neigh_warned;
        if at.elapsed() < NEIGH_WARN_EVERY {
            return;
        }
        let c = self.neigh_counters;
        let (refused, evicted) = (c.refused_total() - last.refused_total(), c.evicted - last.evicted);
        // Answers nobody here asked for are counted, not warned of: the kernel's own
        // (its twin shares the port's MAC) and late ones come in normal operation.
        let unsolicited = c.refused_unsolicited - last.refused_unsolicited;
        if refused > unsolicited || evicted > 0 {
            tracing::warn!(
                refused,
                evicted,
                off_link = c.refused_off_link - last.refused_off_link,
                own_address = c.refused_own_address - last.refused_own_address,
                full = c.refused_full - last.refused_full,
                unsolicited,
                "neighbours: bindings refused or evicted in the last {}s (see the stats' \"neigh\" counters)",
                at.elapsed().as_secs()
            );
        }
        self.neigh_warned = (Instant::now(), c);
    }

    /// Warns of the neighbours that moved: the first at once, then at most once per
    /// [`NEIGH_WARN_EVERY`] (the last one, and how many).
    fn warn_moves(&mut self) {
        let m = &mut self.neigh_moves;
        if m.untold == 0 || m.warned.is_some_and(|w| w.elapsed() < NEIGH_WARN_EVERY) {
            return;
        }
        let Some((ip, was, mac, port)) = m.last.take() else { return };
        let snap = self.shared.current();
        let name = |p: PortId| snap.ports.get(p.0 as usize).map_or_else(|| p.to_string(), |v| v.name.clone());
        tracing::warn!(
            moved = m.untold,
            "neighbour {ip} moved from {} on {} to {mac} on {} (the last of `moved` neighbours that moved since \
             the last such warning; a failover, or a host on the link claiming the address: a static [[neigh]] \
             entry pins it)",
            was.mac,
            name(was.port),
            name(port),
        );
        (m.untold, m.warned) = (0, Some(Instant::now()));
    }

    /// The control thread's neighbour counters.
    pub fn neigh_counters(&self) -> NeighCounters {
        self.neigh_counters
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
    pub(super) fn apply(&mut self, mut next: State) -> Response {
        let cur = self.shared.current();
        // The passive check's marks as they will be after the change, adopted with it.
        let mut checker = self.dest_check.clone();
        checker.changed(&self.state.services, &next.services);
        if let Some(k) = self.weight_set.take() {
            checker.weight_set(&k);
        }
        next.marks = checker.marks();
        match next.snapshot(cur.gen + 1, Some(&cur), Arc::clone(&cur.ports), Arc::clone(&cur.neighs)) {
            Err(r) => Response::error(r.code, r.message),
            Ok(snap) => {
                let mut gen = snap.gen;
                let addrs = Arc::clone(&snap.addrs);
                self.state = next;
                self.dest_check = checker;
                self.dest_check.published();
                self.shared.publish(snap);
                self.resteer();
                // Learned neighbours an address change made inadmissible (their subnet
                // left the port, or the address became ours) go.
                let none = NeighTable::new(0);
                if self.neighs.retain_learned(|ip, e| netstack::admit(&addrs, &none, ip, e.mac, e.port).is_ok()) > 0 {
                    gen = self.publish_neighs();
                }
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
