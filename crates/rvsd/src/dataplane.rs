//! Bring-up and shutdown: the control socket, EAL, the mempool, ports, the first
//! snapshot, one worker per worker lcore, the control thread on the main lcore; then, on
//! SIGTERM/SIGINT, stop the workers, log the final counters and release the ports before
//! the EAL, and remove the EAL's runtime directory. A start that fails part-way unwinds
//! the same way: workers stopped and joined, ports closed, the EAL cleaned up, the
//! runtime directory and the socket removed.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use dpdk::{Eal, LaunchHandle, MbufRing, Mempool, Port, PortConfig, RingSync, RSS_IP, RSS_TCP, RSS_UDP};
use fnat::engine::{config::EngineConfig, Engine};
use fnat::sapool::PortRange;
use netstack::{NeighTable, NeighTimers, PortId};

use crate::clock::Clock;
use crate::config::Config;
use crate::control::{summary, Control, PortHandle};
use crate::metrics::MetricsServer;
use crate::server::{Access, Limits, Server};
use crate::shared::{PortView, Shared};
use crate::state::State;
use crate::steering::{DpdkFlows, PortMode, PortSteering};
use crate::twin::{Twin, VlanHandle};
use crate::worker::{Worker, WorkerParts};

/// The device name of a port's vdev string or PCI address.
fn device_name(p: &crate::config::PortConf) -> String {
    match (&p.vdev, &p.pci) {
        (Some(v), _) => v.split(',').next().unwrap_or(v).to_string(),
        (None, Some(pci)) => pci.clone(),
        (None, None) => String::new(),
    }
}

/// Frames queued from the workers to the twins, and from the twins to worker 0.
/// (The control protocols' ring up is as large: see `frame::twin`.)
const TWIN_RING: u32 = 8192;
/// Replies queued from one worker to another.
const REDIRECT_RING: u32 = 4096;

/// The DPDK device name of a slave's vdev string or PCI address.
fn slave_device(s: &str) -> &str {
    s.split(',').next().unwrap_or(s)
}

/// Creates a bond of the configured slaves; returns the bond port, its device name and
/// the slave ports (which must outlive it).
fn make_bond(name: &str, b: &crate::config::BondConf) -> Result<(Port, String, Vec<Port>)> {
    use crate::config::{BondModeConf, XmitPolicyConf};
    let slaves: Vec<Port> = b
        .slaves
        .iter()
        .map(|s| Port::by_name(slave_device(s)).with_context(|| format!("bond {name}: slave {s}")))
        .collect::<Result<_>>()?;
    let mode = match b.mode {
        BondModeConf::RoundRobin => dpdk::BondMode::RoundRobin,
        BondModeConf::ActiveBackup => dpdk::BondMode::ActiveBackup,
        BondModeConf::BalanceXor => dpdk::BondMode::BalanceXor,
        BondModeConf::Lacp => dpdk::BondMode::Lacp,
    };
    let dev = format!("net_bonding_{name}");
    let bond = dpdk::Bond::create(&dev, mode, 0).with_context(|| format!("bond {name}"))?;
    for s in &slaves {
        dpdk::Bond::add_slave(&bond, s).with_context(|| format!("bond {name}: add slave"))?;
    }
    if let Some(p) = b.xmit_policy {
        let policy = match p {
            XmitPolicyConf::Layer2 => dpdk::XmitPolicy::Layer2,
            XmitPolicyConf::Layer23 => dpdk::XmitPolicy::Layer23,
            XmitPolicyConf::Layer34 => dpdk::XmitPolicy::Layer34,
        };
        dpdk::Bond::set_xmit_policy(&bond, policy).with_context(|| format!("bond {name}: transmit policy"))?;
    }
    if mode == dpdk::BondMode::ActiveBackup {
        dpdk::Bond::set_primary(&bond, &slaves[b.primary]).with_context(|| format!("bond {name}: primary"))?;
    }
    dpdk::Bond::set_link_monitor(&bond, b.monitor_ms).with_context(|| format!("bond {name}: link monitoring"))?;
    tracing::info!(bond = %name, mode = ?b.mode, slaves = b.slaves.len(), "bond created");
    Ok((bond, dev, slaves))
}

/// Installs the flow rules that steer replies to their owners' queues for the LIPs of
/// the configuration, per the `steering` setting; where a port refuses them (`auto`),
/// replies reach their owner by redirect, and the log says so. The control thread keeps
/// the rules in step with LIPs added and removed later.
fn install_steering(state: &State, ports: &mut [PortHandle]) -> Result<()> {
    for (i, p) in ports.iter_mut().enumerate() {
        let lips = state.lips_on(i);
        if let Err(e) = p.steering.sync(&mut DpdkFlows(p.port.id()), &lips) {
            if p.steering.strict() {
                anyhow::bail!("steering: {e}");
            }
            tracing::warn!(port = %p.name, "steering: {e}");
        }
        match p.steering.mode() {
            PortMode::Rules => {
                tracing::info!(port = %p.name, lips = lips.len(), "steering: {}: flow rules installed", p.name)
            }
            PortMode::Redirect => tracing::info!(port = %p.name, "steering: {}: redirect", p.name),
            PortMode::Undecided => {}
        }
    }
    Ok(())
}

/// The engine configuration of worker `id` of `n`.
pub fn engine_config(cfg: &Config, id: u16, n: u32) -> EngineConfig {
    EngineConfig {
        worker: id,
        workers: n,
        conn_capacity: cfg.conn.pool_size,
        timeouts: cfg.timeouts,
        toa: cfg.conn.toa,
        uoa_max_trail: cfg.conn.uoa_max_trail,
        // UOA options and UDP PROXY headers never make a datagram too big for any port.
        grown_max_len: cfg.ports.iter().map(|p| p.mtu).min().unwrap_or(1500),
        port_range: PortRange { lo: cfg.conn.lport_min, hi: cfg.conn.lport_max },
        syn_recv_max: cfg.conn.syn_recv_max,
        expire_quiescent_template: cfg.conn.expire_quiescent_template,
        local_addrs: State::from_config(cfg).local_addr_sets(),
        synproxy: cfg.synproxy.clone(),
        mem_advice: Some(fnat::engine::config::MemAdvice(dpdk::mem::advise_huge_pages)),
        ..EngineConfig::default()
    }
}

/// The EAL's runtime directory (`/var/run/dpdk/<file_prefix>`): removed when this goes,
/// on every way out of [`run`], if this process created it or held it as DPDK's primary
/// process (a directory another running process holds is left alone).
struct RuntimeDir {
    path: PathBuf,
    existed: bool,
    ours: bool,
}

impl RuntimeDir {
    /// Notes whether the directory exists before the EAL starts.
    fn before_eal(prefix: &str) -> RuntimeDir {
        let path = crate::preflight::runtime_dir(prefix);
        RuntimeDir { existed: path.exists(), path, ours: false }
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        // Ours if we held it, or if it appeared with our EAL's attempt.
        if (self.ours || !self.existed) && self.path.exists() {
            match std::fs::remove_dir_all(&self.path) {
                Ok(()) => tracing::debug!(dir = %self.path.display(), "DPDK runtime directory removed"),
                Err(e) => tracing::warn!(dir = %self.path.display(), "DPDK runtime directory: {e}"),
            }
        }
    }
}

/// The launched workers. Dropping this stops them and waits for each, so nothing they
/// use (ports, rings, the pool, the EAL) goes away under them: on a failed start as on a
/// clean shutdown.
struct Workers {
    shared: Arc<Shared>,
    handles: Vec<LaunchHandle>,
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for h in self.handles.drain(..) {
            h.wait();
        }
    }
}

/// Runs the dataplane until SIGTERM/SIGINT; SIGHUP reads `path` (the file `cfg` came
/// from) again and applies what may change at run time. The host was checked before
/// ([`crate::preflight`]); what still fails is returned with the key it concerns
/// (`control.socket: ...`, `port[1]: ...`), after everything started is stopped and
/// released and the DPDK runtime directory removed.
pub fn run(cfg: Config, path: Option<std::path::PathBuf>) -> Result<()> {
    // Signals from the first moment: one during start-up ends it cleanly (and a SIGHUP
    // then, as any later, never ends rvsd).
    let term = Arc::new(AtomicBool::new(false));
    let usr1 = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, Arc::clone(&hup))?;
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&term))?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&term))?;
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&usr1))?;
    crate::server::raise_fd_limit();

    // The control socket first: nothing of DPDK is touched if it cannot be had.
    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel();
    let access = Access::new(cfg.control.group.as_deref())?;
    let limits = Limits {
        max_clients: cfg.control.max_clients,
        idle: Duration::from_secs(cfg.control.idle_timeout),
        io: Duration::from_secs(cfg.control.io_timeout),
    };
    let server = Server::start(&cfg.control.socket, access, jobs_tx, limits).context("control.socket")?;
    let (scrape_tx, scrape_rx) = std::sync::mpsc::channel();
    let metrics = cfg.metrics.map(|m| MetricsServer::start(m.listen, scrape_tx.clone())).transpose()?;

    let mut runtime = RuntimeDir::before_eal(&cfg.eal.file_prefix);
    dpdk::log::to_tracing();
    let eal = Eal::init(cfg.eal_args()).context("eal: DPDK EAL initialisation")?;
    runtime.ours = true;
    if let Err(e) = crate::metrics::register_telemetry(&scrape_tx) {
        tracing::warn!("DPDK telemetry: {e:#} (EAL started with --no-telemetry?)");
    }
    // dpdk-dumpcap / dpdk-pdump attach as secondary processes, which needs memory shared
    // through hugepage files: not under --no-huge or --in-memory.
    let private = cfg.eal_args().into_iter().find(|a| a == "--no-huge" || a == "--in-memory");
    match (eal.pdump_init(), private) {
        (Ok(()), None) => tracing::info!(file_prefix = %cfg.eal.file_prefix, "pdump: dpdk-dumpcap can attach"),
        (Ok(()), Some(a)) => {
            tracing::info!("pdump: dpdk-dumpcap cannot attach: {a} shares no memory with secondary processes")
        }
        (Err(e), _) => tracing::warn!("pdump: dpdk-dumpcap cannot attach: {e}"),
    }
    let clock = Clock::new();
    let pool = Arc::new(
        Mempool::new("rvs_mbufs", cfg.mempool.mbufs, cfg.mempool.cache, cfg.mempool.data_room, -1)
            .context("mempool: mbuf pool")?,
    );
    let n = cfg.workers.lcores.len();
    let mut handles_ports = Vec::new();
    let mut views = Vec::new();
    let mut rxs = Vec::new();
    let mut txs = Vec::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let (mut port, dev, slaves) = match &p.bond {
            None => {
                let dev = device_name(p);
                (Port::by_name(&dev).with_context(|| format!("port[{i}]: {} ({dev})", p.name))?, dev, Vec::new())
            }
            Some(b) => make_bond(&p.name, b).with_context(|| format!("port[{i}].bond"))?,
        };
        let pc = PortConfig {
            rx_queues: n as u16,
            tx_queues: n as u16,
            rx_desc: p.rx_desc,
            tx_desc: p.tx_desc,
            rss_hf: if p.rss { RSS_IP | RSS_TCP | RSS_UDP } else { 0 },
            mtu: Some(p.mtu),
            promiscuous: p.promiscuous,
            lsc_interrupt: p.bond.is_some(),
        };
        let (rx, tx) =
            port.configure(&pc, &pool).with_context(|| format!("port[{i}]: configure {} ({dev})", p.name))?;
        port.start().with_context(|| format!("port[{i}]: start {}", p.name))?;
        let mac = wire::EthernetAddress(port.mac()?);
        let info = port.info()?;
        tracing::info!(port = %p.name, device = %dev, driver = %info.driver, %mac, queues = n, "port up");
        let twin = Twin::create(handles_ports.len(), &p.name, p.twin, p.mtu, &p.twin_addrs, mac, &pool)
            .with_context(|| format!("port[{i}].twin"))?;
        views.push(PortView {
            name: p.name.clone(),
            mac,
            mtu: p.mtu,
            forward2kni: false,
            twin: twin.is_some(),
            vlan: None,
            capture: None,
        });
        rxs.push(rx.into_iter());
        txs.push(tx.into_iter());
        handles_ports.push(PortHandle {
            steering: PortSteering::new(&p.name, cfg.steering, n as u32),
            port,
            slaves,
            name: p.name.clone(),
            device: dev,
            driver: info.driver,
            queues: n as u16,
            socket: info.socket,
            twin,
        });
    }
    // VLAN sub-interfaces: ports after the physical ones, on their parent's queues.
    let mut vlans = Vec::new();
    for (j, v) in cfg.vlans.iter().enumerate() {
        let parent = cfg.port_index(&v.link).ok_or_else(|| anyhow!("vlan[{j}]: no port {}", v.link))?;
        let (p, up) = (&cfg.ports[parent], &views[parent]);
        let name = v.name();
        let twin = Twin::create(cfg.ports.len() + j, &name, p.twin, p.mtu, &v.twin_addrs, up.mac, &pool)
            .with_context(|| format!("vlan[{j}].twin"))?;
        tracing::info!(vlan = %name, port = %p.name, id = v.id, "VLAN sub-interface up");
        views.push(PortView {
            name: name.clone(),
            mac: up.mac,
            mtu: p.mtu,
            forward2kni: false,
            twin: twin.is_some(),
            vlan: Some(frame::Vlan { parent, id: v.id }),
            capture: None,
        });
        vlans.push(VlanHandle { name, parent, id: v.id, twin });
    }
    let state = State::from_config(&cfg);
    install_steering(&state, &mut handles_ports)?;
    let mut neighs = NeighTable::new(cfg.neigh_defs.max_per_port);
    neighs.set_timers(NeighTimers::new(cfg.neigh_defs.reachable_ms));
    for nb in &cfg.neighs {
        let port = cfg.port_index(&nb.dev).ok_or_else(|| anyhow!("no port {}", nb.dev))?;
        neighs.insert_static(nb.addr, nb.mac, PortId(port as u16), 0);
    }
    let first =
        state.snapshot(1, None, Arc::new(views), Arc::new(neighs)).map_err(|e| anyhow!("configuration: {e}"))?;
    // The workers allocate the per-slot state of `first`'s services themselves, below,
    // before any traffic.
    let slots = fnat::engine::SlotProvisioner::new(cfg.conn.pool_size, cfg.synproxy.mode, &first.services);
    let shared = Arc::new(Shared::new(first, n, cfg.sync.as_ref(), slots));
    let twin_up = MbufRing::new("rvs_twin_up", TWIN_RING, RingSync::MpMc)?;
    let twin_up_control = MbufRing::new("rvs_twin_upc", TWIN_RING, RingSync::MpMc)?;
    let twin_down = MbufRing::new("rvs_twin_down", TWIN_RING, RingSync::SpSc)?;
    let capture = MbufRing::new("rvs_capture", TWIN_RING, RingSync::MpMc)?;
    // One single-producer/single-consumer ring per ordered pair of workers.
    let mut rings = Vec::new();
    for from in 0..n {
        let row: Vec<Option<Arc<MbufRing>>> = (0..n)
            .map(|to| {
                (from != to)
                    .then(|| MbufRing::new(&format!("rvs_rd_{from}_{to}"), REDIRECT_RING, RingSync::SpSc))
                    .transpose()
            })
            .collect::<Result<_, _>>()?;
        rings.push(row);
    }

    // Declared after everything the workers use, so an error from here on stops them
    // first.
    let mut workers = Workers { shared: Arc::clone(&shared), handles: Vec::new() };
    // One seed for every worker: they must agree on which owns a NAT client (and, with
    // connection sync, every peer too).
    let owner_seed = crate::sync::owner_seed(cfg.sync.as_ref());
    let port_seed = fnat::hash::SeededFold::random_seed();
    for (i, &lcore) in cfg.workers.lcores.iter().enumerate() {
        let id = i as u16;
        let ec = EngineConfig { owner_seed, port_seed, ..engine_config(&cfg, id, n as u32) };
        let engine = Engine::new(&ec, clock.now_ms()).context("worker core")?;
        let mut engine = engine;
        engine.bind(&shared.current().services);
        engine.set_deny_set(Arc::clone(&shared.current().deny));
        engine.set_sync(cfg.sync.as_ref().map(|s| s.engine_settings(cfg.conn.pool_size)));
        let parts = WorkerParts {
            id,
            lcore,
            rx: rxs.iter_mut().map(|q| q.next().expect("one rx queue per worker")).collect(),
            tx: txs.iter_mut().map(|q| q.next().expect("one tx queue per worker")).collect(),
            pool: Arc::clone(&pool),
            engine,
            shared: Arc::clone(&shared),
            clock,
            expire_nodest: cfg.conn.expire_nodest,
            twin_up: twin_up.producer().expect("a multi-producer ring has producers for all"),
            twin_up_control: twin_up_control.producer().expect("a multi-producer ring has producers for all"),
            // The bulk budget is each twin's, shared among the workers; each control
            // class's is each worker's (one peer's packets all land on one worker).
            twin_budget: frame::TwinBudget::new(
                u64::from(cfg.workers.twin_up_pps).div_ceil(n as u64),
                u64::from(cfg.workers.twin_control_pps),
            ),
            twin_down: if i == 0 { twin_down.consumer() } else { None },
            capture: capture.producer().expect("a multi-producer ring has producers for all"),
            redirect_tx: rings[i].iter().map(|r| r.as_ref().and_then(|r| r.producer())).collect(),
            redirect_rx: (0..n).filter_map(|from| rings[from][i].as_ref().and_then(|r| r.consumer())).collect(),
            backoff: crate::worker::Backoff::new(cfg.workers.polling, cfg.workers.max_sleep_us),
        };
        let worker = Worker::new(parts);
        workers.handles.push(
            eal.launch(lcore, move || worker.run())
                .with_context(|| format!("workers.lcores[{i}]: launch worker on lcore {lcore}"))?,
        );
    }

    // Connection sync: its own thread, off the workers' path (none without `[sync]`).
    let sync = cfg.sync.as_ref().map(|c| crate::sync::start(c, Arc::clone(&shared), owner_seed)).transpose()?;
    let nports = handles_ports.len();
    let mut control = Control::new(
        Arc::clone(&shared),
        clock,
        state,
        handles_ports,
        jobs_rx,
        cfg.conn.pool_size,
        [
            twin_up_control.consumer().expect("the control thread is the only consumer"),
            twin_up.consumer().expect("the control thread is the only consumer"),
        ],
        twin_down.producer().expect("the control thread is the only producer"),
        Arc::clone(&pool),
        capture.consumer().expect("the control thread is the only consumer"),
    );
    control.vlans = vlans;
    control.term = term;
    control.usr1 = usr1;
    control.hup = hup;
    control.scrapes = Some(scrape_rx);
    control.reload_source = path.map(|path| crate::control::ReloadSource { path, running: cfg.clone() });
    tracing::info!(workers = n, ports = nports, services = cfg.services.len(), socket = %cfg.control.socket.display(), "rvsd: forwarding");
    let ports = control.run();
    drop(metrics);
    drop(server);
    drop(sync);

    tracing::info!("shutting down");
    drop(workers);
    let mut finals = Vec::new();
    for w in &shared.workers {
        while let Some(r) = w.replies.pop() {
            if let crate::shared::Reply::Stats(r) = r {
                finals.push(*r);
            }
        }
    }
    let mut last = summary(shared.gen.load(Ordering::Acquire), &finals);
    if let Some(Ok(sync)) = shared.sync.as_ref().map(|s| s.counters.lock()) {
        last["sync"] = serde_json::json!(*sync);
    }
    tracing::info!("rvsd: stopped {last}");
    // Ports (and twins) first, then the rings and their queued mbufs, then the pool,
    // then the EAL, then its runtime directory.
    drop(ports);
    drop(twin_up);
    drop(twin_up_control);
    drop(twin_down);
    drop(capture);
    drop(rings);
    drop(shared);
    drop(pool);
    drop(eal);
    drop(runtime);
    Ok(())
}
