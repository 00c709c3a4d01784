//! The control thread (main lcore): owns the authoritative configuration ([`State`]),
//! the neighbour table and the ports. It answers control-socket requests — a change is
//! validated whole, published as a new generation, and answered only when every worker
//! runs it — learns the neighbours workers saw, answers signals, and gathers the
//! workers' counters. It sleeps between rounds; it never busy-polls.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ctl::{
    AddrView, BondView, ConnCursor, ErrorCode, LinkChange, LinkStats, LinkView, NeighView, RealServerView, Request,
    Response, ServiceView, SlaveView, WorkerView,
};
use dpdk::{Burst, Mbuf, Mempool, Port, RingConsumer, RingProducer, RxQueue, TxBuffer};
use fnat::stats::Counters;
use netstack::{Learned, NeighState, NeighTable, PortId};
use serde_json::json;

use crate::clock::Clock;
use crate::counters::NetCounters;
use crate::server::Job;
use crate::shared::{Command, PortView, Reply, Shared, WorkerReport};
use crate::state::{AddrSpec, Refused, State};

/// Learned neighbours are re-resolved after this long without being seen.
const NEIGH_REACHABLE_MS: u64 = 300_000;
/// How long a change may take to reach every worker.
const CONFIRM_WAIT: Duration = Duration::from_secs(2);
/// Most connections in one listing page.
const MAX_CONN_PAGE: u32 = 10_000;

/// A port's kernel twin, driven by the control thread only (the tap PMD makes a
/// syscall per poll, which the workers must not pay).
pub struct Twin {
    /// The twin's DPDK port (tap PMD).
    pub port: Port,
    /// The kernel interface name (`dpdk0.kni`).
    pub ifname: String,
    /// Its receive queue: what the kernel sends.
    pub rx: RxQueue,
    /// Its transmit buffer: what goes up to the kernel.
    pub tx: TxBuffer,
    /// The link state last mirrored from the port.
    pub link_up: bool,
}

/// A port the control thread owns.
pub struct PortHandle {
    /// Flow rules steering replies to their workers (destroyed before the port).
    pub flows: Vec<dpdk::Flow>,
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

/// A capture being written.
struct ActiveCapture {
    port: usize,
    remaining: u64,
    written: u64,
    deadline: Instant,
    path: String,
    writer: crate::capture::PcapngWriter<std::io::BufWriter<std::fs::File>>,
    reply: std::sync::mpsc::Sender<Response>,
}

/// How often the control thread checks active-backup bonds' links.
const BOND_WATCH: Duration = Duration::from_millis(20);

/// Frames moved between the workers and the twins per control round, at most.
const KNI_BURSTS_PER_ROUND: usize = 64;

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
    kni_up: RingConsumer,
    kni_down: RingProducer,
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
        kni_up: RingConsumer,
        kni_down: RingProducer,
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
            kni_up,
            kni_down,
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
            let mut busy = self.pump_twins();
            if bond_at.elapsed() > BOND_WATCH {
                bond_at = Instant::now();
                self.watch_bonds();
            }
            if link_at.elapsed() > Duration::from_secs(1) {
                link_at = Instant::now();
                self.mirror_links();
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

    /// Moves frames between the workers and the kernel twins: up (workers' ring → twin
    /// transmit) and down (twin receive → worker 0, which sends them out of the port).
    /// True if anything moved.
    fn pump_twins(&mut self) -> bool {
        let mut moved = false;
        let mut b = Burst::new();
        for _ in 0..KNI_BURSTS_PER_ROUND {
            if self.kni_up.dequeue_burst(&mut b) == 0 {
                break;
            }
            moved = true;
            for m in b.drain() {
                match self.ports.get_mut(m.port() as usize).and_then(|p| p.twin.as_mut()) {
                    Some(t) => t.tx.push(m),
                    None => drop(m),
                }
            }
        }
        for (i, p) in self.ports.iter_mut().enumerate() {
            let Some(t) = &mut p.twin else { continue };
            t.tx.flush();
            for _ in 0..KNI_BURSTS_PER_ROUND {
                if t.rx.rx_burst(&mut b) == 0 {
                    break;
                }
                moved = true;
                for m in b.as_mut_slice().iter_mut().flatten() {
                    m.set_port(i as u16);
                }
                // A full ring drops what does not fit (the burst frees it).
                self.kni_down.enqueue_burst(&mut b);
                b.clear();
            }
        }
        moved
    }

    /// Active-backup bonds: when the slave carrying traffic loses its link and another
    /// slave has one, make that one primary. The bonding driver does this itself for
    /// slaves whose link it polls or is interrupted about; rvsd watches as well, since
    /// some drivers announce link interrupts that never come (tap, here).
    fn watch_bonds(&mut self) {
        for h in &self.ports {
            if h.slaves.is_empty() || dpdk::Bond::mode(&h.port).ok() != Some(1) {
                continue;
            }
            let Ok(current) = dpdk::Bond::primary(&h.port) else { continue };
            let up = |p: &Port| p.link().map(|l| l.up).unwrap_or(false);
            if h.slaves.iter().find(|s| s.id() == current).is_some_and(up) {
                continue;
            }
            if let Some(next) = h.slaves.iter().find(|s| s.id() != current && up(s)) {
                match dpdk::Bond::set_primary(&h.port, next) {
                    Ok(()) => {
                        tracing::warn!(bond = %h.name, from = current, to = next.id(), "bond: active slave lost its link; failed over")
                    }
                    Err(e) => tracing::warn!(bond = %h.name, "bond: failover to slave {} refused: {e}", next.id()),
                }
            }
        }
    }

    /// Makes each twin's link follow its port's.
    fn mirror_links(&mut self) {
        for p in &mut self.ports {
            let up = p.port.link().map(|l| l.up).unwrap_or(false);
            if let Some(t) = &mut p.twin {
                if t.link_up != up && t.port.set_link(up).is_ok() {
                    tracing::info!(port = %p.name, twin = %t.ifname, up, "twin link follows the port");
                    t.link_up = up;
                }
            }
        }
    }

    /// Learns the bindings workers reported; true if the table changed.
    fn learn(&mut self) -> bool {
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

    fn publish_neighs(&self) -> u64 {
        let cur = self.shared.current();
        let mut next = (*cur).clone();
        next.gen = cur.gen + 1;
        next.neighs = Arc::new(self.neighs.clone());
        self.shared.publish(next);
        cur.gen + 1
    }

    fn publish_ports(&self, ports: Vec<PortView>) -> u64 {
        let cur = self.shared.current();
        let mut next = (*cur).clone();
        next.gen = cur.gen + 1;
        next.ports = Arc::new(ports);
        self.shared.publish(next);
        cur.gen + 1
    }

    /// Waits until every worker runs generation `gen`.
    fn confirm(&self, gen: u64) -> Response {
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
    fn apply(&mut self, next: State) -> Response {
        let cur = self.shared.current();
        match next.snapshot(cur.gen + 1, Some(&cur), Arc::clone(&cur.ports), Arc::clone(&cur.neighs)) {
            Err(r) => Response::error(r.code, r.message),
            Ok(snap) => {
                let gen = snap.gen;
                self.state = next;
                self.shared.publish(snap);
                self.confirm(gen)
            }
        }
    }

    fn handle(&mut self, req: Request) -> Response {
        match self.try_handle(req) {
            Ok(r) => r,
            Err(r) => Response::error(r.code, r.message),
        }
    }

    fn try_handle(&mut self, req: Request) -> Result<Response, Refused> {
        let mut next = self.state.clone();
        Ok(match req {
            Request::Status => Response::Status {
                version: env!("CARGO_PKG_VERSION").into(),
                gen: self.shared.gen.load(Ordering::Acquire),
                worker_gens: self.shared.workers.iter().map(|w| w.seen_gen.load(Ordering::Acquire)).collect(),
                conn_pool_size: self.pool_size,
                uptime_s: self.started.elapsed().as_secs(),
            },
            Request::ServiceList { stats } => self.service_list(stats)?,
            Request::ServiceAdd(spec) => {
                if next.service(&spec.service.key()).is_ok() {
                    return Err(Refused::new(ErrorCode::Exists, format!("service {} exists", spec.service.key())));
                }
                next.services.push(spec);
                self.apply(next)
            }
            Request::ServiceEdit { service } => {
                let i = next.service(&service.key())?;
                let old = &mut next.services[i].service;
                let rs = std::mem::take(&mut old.real_servers);
                *old = service;
                old.real_servers = rs;
                self.apply(next)
            }
            Request::ServiceDel { key } => {
                let i = next.service(&key)?;
                next.services.remove(i);
                self.apply(next)
            }
            Request::ServiceReplace { services } => {
                next.services = services;
                self.apply(next)
            }
            Request::RealServerAdd { key, rs } => {
                let i = next.service(&key)?;
                let s = &mut next.services[i].service;
                if s.real_servers.iter().any(|r| r.addr == rs.addr && r.port == rs.port) {
                    return Err(Refused::new(
                        ErrorCode::Exists,
                        format!("service {key}: real server {} exists", sockaddr(rs.addr, rs.port)),
                    ));
                }
                s.real_servers.push(rs);
                self.apply(next)
            }
            Request::RealServerEdit { key, addr, port, change } => {
                let i = next.service(&key)?;
                let rs = next.services[i]
                    .service
                    .real_servers
                    .iter_mut()
                    .find(|r| r.addr == addr && r.port == port)
                    .ok_or_else(|| {
                        Refused::new(
                            ErrorCode::NotFound,
                            format!("service {key}: no real server {}", sockaddr(addr, port)),
                        )
                    })?;
                if let Some(w) = change.weight {
                    rs.weight = w;
                }
                if let Some(u) = change.upper {
                    rs.upper = u;
                }
                if let Some(l) = change.lower {
                    rs.lower = l;
                }
                self.apply(next)
            }
            Request::RealServerDel { key, addr, port } => {
                let i = next.service(&key)?;
                let list = &mut next.services[i].service.real_servers;
                let j = list.iter().position(|r| r.addr == addr && r.port == port).ok_or_else(|| {
                    Refused::new(ErrorCode::NotFound, format!("service {key}: no real server {}", sockaddr(addr, port)))
                })?;
                list.remove(j);
                self.apply(next)
            }
            Request::LaddrAdd { key, addr } => {
                let i = next.service(&key)?;
                if next.services[i].laddrs.contains(&addr) {
                    return Err(Refused::new(ErrorCode::Exists, format!("service {key}: local address {addr} exists")));
                }
                next.services[i].laddrs.push(addr);
                self.apply(next)
            }
            Request::LaddrDel { key, addr } => {
                let i = next.service(&key)?;
                let l = &mut next.services[i].laddrs;
                let j = l.iter().position(|a| *a == addr).ok_or_else(|| {
                    Refused::new(ErrorCode::NotFound, format!("service {key}: no local address {addr}"))
                })?;
                l.remove(j);
                self.apply(next)
            }
            Request::ZeroCounters => {
                for w in &self.shared.workers {
                    let _ = w.commands.push(Command::Zero);
                }
                Response::Done { gen: self.shared.gen.load(Ordering::Acquire) }
            }
            Request::ConnList { cursor, max } => self.conn_page(cursor, max)?,
            Request::TimeoutsGet => Response::Timeouts { timeouts: self.state.timeouts },
            Request::TimeoutsSet { tcp, tcpfin, udp } => {
                if tcp > 0 {
                    next.timeouts.established = tcp;
                }
                if tcpfin > 0 {
                    next.timeouts.fin_wait = tcpfin;
                }
                if udp > 0 {
                    next.timeouts.udp = udp;
                }
                self.apply(next)
            }
            Request::LinkList { stats } => Response::Links { links: self.links(stats) },
            Request::LinkSet { dev, change } => self.link_set(&dev, change)?,
            Request::AddrAdd { dev, addr, sapool, lease: _ } => {
                let port = next.port(&dev)?;
                if next.has_addr(addr.addr()) {
                    return Err(Refused::new(ErrorCode::Exists, format!("address {} exists", addr.addr())));
                }
                next.addrs.push(AddrSpec { port, net: addr, sapool });
                self.apply(next)
            }
            Request::AddrDel { dev, addr } => {
                let port = next.port(&dev)?;
                let i = next
                    .addrs
                    .iter()
                    .position(|a| a.port == port && a.net.addr() == addr)
                    .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("no address {addr} on {dev}")))?;
                next.addrs.remove(i);
                self.apply(next)
            }
            Request::AddrList => {
                let snap = self.shared.current();
                let addrs = self
                    .state
                    .addrs
                    .iter()
                    .map(|a| AddrView {
                        dev: self.state.port_names[a.port].clone(),
                        addr: a.net,
                        sapool: a.sapool,
                        vip: snap.addrs.owner(a.net.addr()).is_some_and(|(_, e)| e.flags.vip),
                    })
                    .collect();
                Response::Addrs { addrs }
            }
            Request::RouteAdd(route) => {
                next.port(&route.dev)?;
                if next.routes.iter().any(|r| r.prefix == route.prefix && r.metric == route.metric) {
                    return Err(Refused::new(
                        ErrorCode::Exists,
                        format!("route {} metric {} exists", route.prefix, route.metric),
                    ));
                }
                next.routes.push(route);
                self.apply(next)
            }
            Request::RouteDel { prefix, metric } => {
                let i = next
                    .routes
                    .iter()
                    .position(|r| r.prefix == prefix && metric.is_none_or(|m| m == r.metric))
                    .ok_or_else(|| Refused::new(ErrorCode::NotFound, format!("no static route {prefix}")))?;
                next.routes.remove(i);
                self.apply(next)
            }
            Request::RouteList => Response::Routes { routes: self.state.route_views() },
            Request::NeighAdd { addr, mac, dev } => {
                let port = self.state.port(&dev)?;
                self.neighs.insert_static(addr, mac, PortId(port as u16), self.clock.now_ms());
                let gen = self.publish_neighs();
                self.confirm(gen)
            }
            Request::NeighDel { addr } => {
                if self.neighs.delete(addr).is_none() {
                    return Err(Refused::new(ErrorCode::NotFound, format!("no neighbour {addr}")));
                }
                let gen = self.publish_neighs();
                self.confirm(gen)
            }
            Request::NeighList => {
                let mut neighs: Vec<NeighView> = self
                    .neighs
                    .iter()
                    .map(|(addr, e)| NeighView {
                        addr,
                        mac: e.mac,
                        dev: self.state.port_names.get(e.port.0 as usize).cloned().unwrap_or_default(),
                        state: match e.state {
                            NeighState::Static => "static",
                            NeighState::Reachable => "reachable",
                            NeighState::Stale => "stale",
                        }
                        .into(),
                    })
                    .collect();
                neighs.sort_by_key(|n| n.addr);
                Response::Neighs { neighs }
            }
            Request::SendGarp { addr, dev, count } => self.send_garp(addr, &dev, count)?,
            Request::Capture { .. } => return Err(Refused::new(ErrorCode::Internal, "capture is handled apart")),
            Request::WorkerStats => {
                let reports = self.reports(Duration::from_secs(2)).ok_or_else(worker_silent)?;
                Response::Workers { workers: reports.iter().map(worker_view).collect() }
            }
        })
    }

    fn service_list(&self, stats: bool) -> Result<Response, Refused> {
        let reports = self.reports(Duration::from_secs(2)).ok_or_else(worker_silent)?;
        let snap = self.shared.current();
        let sum = |pick: &dyn Fn(&WorkerReport) -> Option<Counters>| {
            let mut c = Counters::default();
            for r in &reports {
                if let Some(x) = pick(r) {
                    c.add(&x);
                }
            }
            c
        };
        let mut services = Vec::new();
        for spec in &self.state.services {
            let s = &spec.service;
            let built = snap.services.lookup(s.proto, s.vip, s.vport).map(|i| snap.services.service(i));
            let svc_counters =
                built.map(|b| sum(&|r| r.core.services.get(b.id.0 as usize).copied())).unwrap_or_default();
            let dests = s
                .real_servers
                .iter()
                .map(|rs| {
                    let id = built
                        .and_then(|b| b.dests.iter().find(|d| d.addr == rs.addr && d.port == rs.port))
                        .map(|d| d.id);
                    let c = id.map(|id| sum(&|r| r.core.real_servers.get(id.0 as usize).copied())).unwrap_or_default();
                    RealServerView { config: *rs, active: c.active, inactive: c.inactive, stats: stats.then_some(c) }
                })
                .collect();
            services.push(ServiceView {
                service: s.clone(),
                laddrs: spec.laddrs.clone(),
                dests,
                stats: stats.then_some(svc_counters),
            });
        }
        Ok(Response::Services { services })
    }

    fn conn_page(&self, cursor: ConnCursor, max: u32) -> Result<Response, Refused> {
        let n = self.shared.workers.len();
        let w = cursor.worker as usize;
        if w >= n {
            return Ok(Response::Conns { conns: Vec::new(), next: None });
        }
        let slot = &self.shared.workers[w];
        while slot.replies.pop().is_some() {}
        let max = max.clamp(1, MAX_CONN_PAGE) as usize;
        let _ = slot.commands.push(Command::ListConns { cursor: cursor.pos, max });
        let deadline = Instant::now() + Duration::from_secs(2);
        loop {
            if let Some(Reply::Conns(conns, next)) = slot.replies.pop() {
                let next = match next {
                    Some(pos) => Some(ConnCursor { worker: cursor.worker, pos }),
                    None if w + 1 < n => Some(ConnCursor { worker: cursor.worker + 1, pos: 0 }),
                    None => None,
                };
                return Ok(Response::Conns { conns, next });
            }
            if Instant::now() > deadline {
                return Err(worker_silent());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    fn links(&self, stats: bool) -> Vec<LinkView> {
        let snap = self.shared.current();
        self.ports
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let link = h.port.link().unwrap_or(dpdk::LinkStatus { up: false, speed_mbps: 0, full_duplex: false });
                let view = &snap.ports[i];
                LinkView {
                    id: i as u16,
                    name: h.name.clone(),
                    device: h.device.clone(),
                    driver: h.driver.clone(),
                    mac: view.mac,
                    mtu: view.mtu,
                    up: link.up,
                    speed_mbps: link.speed_mbps,
                    full_duplex: link.full_duplex,
                    promisc: h.port.promiscuous(),
                    forward2kni: view.forward2kni,
                    rx_queues: h.queues,
                    tx_queues: h.queues,
                    socket: h.socket,
                    bond: (!h.slaves.is_empty()).then(|| {
                        // DPDK's "active" slaves are those with link; in active-backup
                        // the one carrying traffic is the current primary.
                        let linked = dpdk::Bond::active_slaves(&h.port).unwrap_or_default();
                        let mode = dpdk::Bond::mode(&h.port).unwrap_or(u8::MAX);
                        let current = dpdk::Bond::primary(&h.port).ok();
                        BondView {
                            mode: bond_mode_name(mode).into(),
                            primary: current.and_then(|id| h.slaves.iter().position(|s| s.id() == id)),
                            slaves: h
                                .slaves
                                .iter()
                                .map(|s| SlaveView {
                                    device: s.info().map(|i| i.name).unwrap_or_default(),
                                    up: s.link().map(|l| l.up).unwrap_or(false),
                                    active: if mode == 1 { current == Some(s.id()) } else { linked.contains(&s.id()) },
                                })
                                .collect(),
                        }
                    }),
                    stats: stats.then(|| {
                        let s = h.port.stats().unwrap_or_default();
                        let q = h.queues.min(16) as usize;
                        LinkStats {
                            ipackets: s.ipackets,
                            opackets: s.opackets,
                            ibytes: s.ibytes,
                            obytes: s.obytes,
                            imissed: s.imissed,
                            ierrors: s.ierrors,
                            oerrors: s.oerrors,
                            rx_nombuf: s.rx_nombuf,
                            q_ipackets: s.q_ipackets[..q].to_vec(),
                            q_opackets: s.q_opackets[..q].to_vec(),
                        }
                    }),
                }
            })
            .collect()
    }

    fn link_set(&mut self, dev: &str, change: LinkChange) -> Result<Response, Refused> {
        let i = self.state.port(dev)?;
        let unsupported =
            |what: &str, e: dpdk::Error| Refused::new(ErrorCode::Unsupported, format!("{dev}: {what}: {e}"));
        if let Some(up) = change.up {
            self.ports[i].port.set_link(up).map_err(|e| unsupported(if up { "link up" } else { "link down" }, e))?;
        }
        if let Some(p) = change.promisc {
            self.ports[i].port.set_promiscuous(p).map_err(|e| unsupported("promisc", e))?;
        }
        if let Some(f) = change.forward2kni {
            let mut ports = (*self.shared.current().ports).clone();
            ports[i].forward2kni = f;
            let gen = self.publish_ports(ports);
            return Ok(self.confirm(gen));
        }
        Ok(Response::Done { gen: self.shared.gen.load(Ordering::Acquire) })
    }

    /// Starts a capture; its reply is sent when it ends.
    fn start_capture(&mut self, req: Request, reply: std::sync::mpsc::Sender<Response>) -> Result<(), Refused> {
        let Request::Capture { dev, dir, count, filter, path, timeout_s } = req else {
            unreachable!("checked by caller")
        };
        if self.capture.is_some() {
            return Err(Refused::new(ErrorCode::Invalid, "a capture is running already"));
        }
        let port = self.state.port(&dev)?;
        let filter =
            crate::capture::Filter::parse(&filter).map_err(|e| Refused::new(ErrorCode::Invalid, e.to_string()))?;
        if !std::path::Path::new(&path).is_absolute() {
            return Err(Refused::new(ErrorCode::Invalid, format!("capture file {path:?} must be an absolute path")));
        }
        if count == 0 || timeout_s == 0 {
            return Err(Refused::new(ErrorCode::Invalid, "count and timeout must be at least 1"));
        }
        let file =
            std::fs::File::create(&path).map_err(|e| Refused::new(ErrorCode::Invalid, format!("{path}: {e}")))?;
        let writer = crate::capture::PcapngWriter::new(std::io::BufWriter::new(file), &dev)
            .map_err(|e| Refused::new(ErrorCode::Internal, format!("{path}: {e}")))?;
        let (rx, tx) = match dir {
            ctl::CaptureDir::Rx => (true, false),
            ctl::CaptureDir::Tx => (false, true),
            ctl::CaptureDir::Both => (true, true),
        };
        let mut ports = (*self.shared.current().ports).clone();
        ports[port].capture = Some(Arc::new(crate::shared::CaptureSpec { rx, tx, filter }));
        self.publish_ports(ports);
        tracing::info!(port = %dev, %path, count, "capture started");
        self.capture = Some(ActiveCapture {
            port,
            remaining: u64::from(count),
            written: 0,
            deadline: Instant::now() + Duration::from_secs(u64::from(timeout_s)),
            path,
            writer,
            reply,
        });
        Ok(())
    }

    /// Writes captured frames; ends the capture at its count or deadline. True if any
    /// frame was written.
    fn pump_capture(&mut self) -> bool {
        let Some(cap) = &mut self.capture else { return false };
        let mut b = Burst::new();
        let mut moved = false;
        for _ in 0..KNI_BURSTS_PER_ROUND {
            if self.capture_rx.dequeue_burst(&mut b) == 0 {
                break;
            }
            moved = true;
            let now =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64);
            for m in b.drain() {
                if cap.remaining > 0 && cap.writer.write(m.data(), now).is_ok() {
                    cap.remaining -= 1;
                    cap.written += 1;
                }
            }
        }
        if cap.remaining == 0 || Instant::now() > cap.deadline {
            let cap = self.capture.take().expect("checked above");
            let mut ports = (*self.shared.current().ports).clone();
            ports[cap.port].capture = None;
            let gen = self.publish_ports(ports);
            let _ = self.confirm(gen);
            // Copies made before the workers saw the change are dropped.
            while self.capture_rx.dequeue_burst(&mut b) > 0 {
                b.clear();
            }
            let resp = match cap.writer.finish() {
                Ok(_) => Response::Captured { packets: cap.written, path: cap.path.clone() },
                Err(e) => Response::error(ErrorCode::Internal, format!("{}: {e}", cap.path)),
            };
            tracing::info!(packets = cap.written, path = %cap.path, "capture ended");
            let _ = cap.reply.send(resp);
        }
        moved
    }

    /// Sends `count` gratuitous ARPs / unsolicited neighbour advertisements for `addr`
    /// from port `dev` (through worker 0's transmit queue).
    fn send_garp(&mut self, addr: IpAddr, dev: &str, count: u32) -> Result<Response, Refused> {
        let port = self.state.port(dev)?;
        if !(1..=100).contains(&count) {
            return Err(Refused::new(ErrorCode::Invalid, format!("count {count} is outside 1..=100")));
        }
        let mac = self.shared.current().ports[port].mac;
        let mut b = Burst::new();
        for _ in 0..count {
            let mut m = Mbuf::alloc(&self.pool).ok_or_else(|| Refused::new(ErrorCode::Internal, "mbuf pool empty"))?;
            let buf = m.append(128).ok_or_else(|| Refused::new(ErrorCode::Internal, "mbuf too small"))?;
            let len = match addr {
                IpAddr::V4(a) => netstack::arp::build_gratuitous(buf, mac, a),
                IpAddr::V6(a) => netstack::nd::build_unsolicited_na(buf, mac, a),
            }
            .map_err(|e| Refused::new(ErrorCode::Internal, format!("building the announcement: {e}")))?;
            m.trim(128 - len);
            m.set_port(port as u16);
            let _ = b.push(m);
            if b.is_full() {
                self.kni_down.enqueue_burst(&mut b);
                b.clear();
            }
        }
        self.kni_down.enqueue_burst(&mut b);
        let dropped = b.len();
        b.clear();
        if dropped > 0 {
            return Err(Refused::new(ErrorCode::Internal, format!("{dropped} announcements dropped: queue full")));
        }
        Ok(Response::Done { gen: self.shared.gen.load(Ordering::Acquire) })
    }

    /// Every worker's report, or `None` if one did not answer within `wait`.
    pub fn reports(&self, wait: Duration) -> Option<Vec<WorkerReport>> {
        for w in &self.shared.workers {
            while w.replies.pop().is_some() {}
            let _ = w.commands.push(Command::Stats);
        }
        let deadline = Instant::now() + wait;
        let mut out = Vec::with_capacity(self.shared.workers.len());
        for w in &self.shared.workers {
            loop {
                if let Some(Reply::Stats(r)) = w.replies.pop() {
                    out.push(*r);
                    break;
                }
                if Instant::now() > deadline {
                    return None;
                }
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        Some(out)
    }

    /// Counters of all workers as one JSON value.
    pub fn stats(&self, wait: Duration) -> Option<serde_json::Value> {
        self.reports(wait).map(|r| summary(self.shared.gen.load(Ordering::Acquire), &r))
    }
}

fn bond_mode_name(m: u8) -> &'static str {
    match m {
        0 => "round-robin",
        1 => "active-backup",
        2 => "balance-xor",
        3 => "broadcast",
        4 => "lacp",
        5 => "tlb",
        6 => "alb",
        _ => "?",
    }
}

fn worker_silent() -> Refused {
    Refused::new(ErrorCode::Timeout, "a worker did not answer within 2 s")
}

fn sockaddr(addr: IpAddr, port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::new(addr, port)
}

/// Drops by name, core and network layer merged, non-zero only.
fn merged_drops(core: &fnat::stats::StatsSnapshot, net: &NetCounters) -> BTreeMap<String, u64> {
    let mut drops: BTreeMap<String, u64> =
        core.drops.iter().filter(|(_, v)| **v > 0).map(|(k, v)| (k.clone(), *v)).collect();
    for (k, v) in net.drop_map() {
        *drops.entry(k.to_string()).or_default() += v;
    }
    drops
}

fn worker_view(r: &WorkerReport) -> WorkerView {
    WorkerView {
        id: r.id,
        lcore: r.lcore,
        gen: r.gen,
        conns: u64::from(r.conns),
        rx_packets: r.net.rx_packets,
        tx_packets: r.net.tx_packets,
        totals: r.core.total,
        loops: r.net.loops,
        busy_loops: r.net.busy_loops,
        drops: merged_drops(&r.core, &r.net),
    }
}

/// The JSON summary of worker reports: totals, drops by name (core and network layer
/// merged), and each worker's report.
pub fn summary(gen: u64, reports: &[WorkerReport]) -> serde_json::Value {
    let core = fnat::stats::StatsSnapshot::sum(reports.iter().map(|r| &r.core));
    let mut net = NetCounters::default();
    for r in reports {
        net.add(&r.net);
    }
    json!({
        "gen": gen,
        "conns": reports.iter().map(|r| u64::from(r.conns)).sum::<u64>(),
        "totals": core.total,
        "drops": merged_drops(&core, &net),
        "net": net,
        "workers": reports,
    })
}
