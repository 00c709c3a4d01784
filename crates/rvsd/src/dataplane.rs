//! Bring-up and shutdown: EAL, the mempool, ports, the first snapshot, one worker per
//! worker lcore, the control thread on the main lcore; then, on SIGTERM/SIGINT, stop the
//! workers, log the final counters and release the ports before the EAL.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use dpdk::{Eal, Mempool, Port, PortConfig, RSS_IP, RSS_TCP, RSS_UDP};
use fnat::engine::{Engine, EngineConfig};
use fnat::sapool::PortRange;
use netstack::{NeighTable, PortId};

use crate::clock::Clock;
use crate::config::Config;
use crate::control::{summary, Control, PortHandle};
use crate::server::{Access, Server};
use crate::shared::{PortView, Shared};
use crate::state::State;
use crate::worker::{Worker, WorkerParts};

/// Learned neighbours the control thread keeps at most.
const MAX_NEIGHBOURS: usize = 65536;

/// The device name of a port's vdev string or PCI address.
fn device_name(p: &crate::config::PortConf) -> String {
    match (&p.vdev, &p.pci) {
        (Some(v), _) => v.split(',').next().unwrap_or(v).to_string(),
        (None, Some(pci)) => pci.clone(),
        (None, None) => String::new(),
    }
}

/// The engine configuration of worker `id` of `n`.
pub fn engine_config(cfg: &Config, id: u16, n: u32) -> EngineConfig {
    EngineConfig {
        worker: id,
        workers: n,
        conn_capacity: cfg.conn.pool_size,
        timeouts: cfg.timeouts,
        toa: cfg.conn.toa,
        port_range: PortRange { lo: cfg.conn.lport_min, hi: cfg.conn.lport_max },
        local_addrs: State::from_config(cfg).local_addr_sets(),
        ..EngineConfig::default()
    }
}

/// Runs the dataplane until SIGTERM/SIGINT.
pub fn run(cfg: Config) -> Result<()> {
    let eal = Eal::init(cfg.eal_args()).context("DPDK EAL initialisation")?;
    let clock = Clock::new();
    let pool = Arc::new(
        Mempool::new("rvs_mbufs", cfg.mempool.mbufs, cfg.mempool.cache, cfg.mempool.data_room, -1).context("mbuf pool")?,
    );
    let n = cfg.workers.lcores.len();
    let mut handles_ports = Vec::new();
    let mut views = Vec::new();
    let mut rxs = Vec::new();
    let mut txs = Vec::new();
    for p in &cfg.ports {
        let dev = device_name(p);
        let mut port = Port::by_name(&dev).with_context(|| format!("port {} ({dev})", p.name))?;
        let pc = PortConfig {
            rx_queues: n as u16,
            tx_queues: n as u16,
            rx_desc: p.rx_desc,
            tx_desc: p.tx_desc,
            rss_hf: if p.rss { RSS_IP | RSS_TCP | RSS_UDP } else { 0 },
            mtu: Some(p.mtu),
            promiscuous: p.promiscuous,
        };
        let (rx, tx) = port.configure(&pc, &pool).with_context(|| format!("configure {} ({dev})", p.name))?;
        port.start().with_context(|| format!("start {}", p.name))?;
        let mac = wire::EthernetAddress(port.mac()?);
        let info = port.info()?;
        tracing::info!(port = %p.name, device = %dev, driver = %info.driver, %mac, queues = n, "port up");
        views.push(PortView { name: p.name.clone(), mac, mtu: p.mtu, forward2kni: false });
        rxs.push(rx.into_iter());
        txs.push(tx.into_iter());
        handles_ports.push(PortHandle {
            port,
            name: p.name.clone(),
            device: dev,
            driver: info.driver,
            queues: n as u16,
            socket: info.socket,
        });
    }
    let state = State::from_config(&cfg);
    let mut neighs = NeighTable::new(MAX_NEIGHBOURS);
    for nb in &cfg.neighs {
        let port = cfg.port_index(&nb.dev).ok_or_else(|| anyhow!("no port {}", nb.dev))?;
        neighs.insert_static(nb.addr, nb.mac, PortId(port as u16), 0);
    }
    let first = state.snapshot(1, None, Arc::new(views), Arc::new(neighs)).map_err(|e| anyhow!("configuration: {e}"))?;
    let shared = Arc::new(Shared::new(first, n));

    let mut handles = Vec::new();
    for (i, &lcore) in cfg.workers.lcores.iter().enumerate() {
        let id = i as u16;
        let engine = Engine::new(&engine_config(&cfg, id, n as u32), clock.now_ms()).context("worker core")?;
        let mut engine = engine;
        engine.bind(&shared.current().services);
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
        };
        let worker = Worker::new(parts);
        handles.push(eal.launch(lcore, move || worker.run()).with_context(|| format!("launch worker on lcore {lcore}"))?);
    }

    let (jobs_tx, jobs_rx) = std::sync::mpsc::channel();
    let access = Access::new(cfg.control.group.as_deref())?;
    let server = Server::start(&cfg.control.socket, access, jobs_tx).context("control socket")?;
    let nports = handles_ports.len();
    let control = Control::new(Arc::clone(&shared), clock, state, handles_ports, jobs_rx, cfg.conn.pool_size);
    signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&control.term))?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&control.term))?;
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, Arc::clone(&control.usr1))?;
    tracing::info!(workers = n, ports = nports, services = cfg.services.len(), socket = %cfg.control.socket.display(), "rvsd: forwarding");
    let ports = control.run();
    drop(server);

    tracing::info!("shutting down");
    shared.stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.wait();
    }
    let mut finals = Vec::new();
    for w in &shared.workers {
        while let Some(r) = w.replies.pop() {
            if let crate::shared::Reply::Stats(r) = r {
                finals.push(*r);
            }
        }
    }
    tracing::info!("rvsd: stopped {}", summary(shared.gen.load(Ordering::Acquire), &finals));
    // Ports before the pool, the pool before the EAL.
    drop(ports);
    drop(shared);
    drop(pool);
    drop(eal);
    Ok(())
}
