//! What the measured workers run: the configuration, the services, the engines.
//!
//! The worker is configured as rvsd configures it: a TOML configuration parsed and
//! checked by rvsd's own parser (one TCP service VIP:80 with 16 LIPs and 5 real
//! servers, static neighbours for the client and server networks on the sink port), the
//! first snapshot built from it by rvsd's state, and each worker's FullNAT core from
//! rvsd's `engine_config`, with a finer timer wheel (see [`Setup::engine`]). The DPDK
//! side (EAL, pool, ports, queues) is the harness's (`crate::harness::Rig`).

use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use dpdk::{MbufRing, Mempool, Port, RingConsumer, RingProducer, RingSync, RxQueue, TxBuffer};
use fnat::engine::Engine;
use fnat::timer::WheelConfig;
use netstack::{NeighTable, PortId};
use rvsd::clock::Clock;
use rvsd::config::Config;
use rvsd::dataplane::engine_config;
use rvsd::shared::{PortView, Shared, Snapshot};
use rvsd::state::State;
use rvsd::worker::{Worker, WorkerParts};
use wire::EthernetAddress;

/// The virtual service's address and port.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// The virtual service's port.
pub const VPORT: u16 = 80;
/// Local addresses (LIPs) of the service.
const LIPS: u8 = 16;
/// Real servers of the service.
const REAL_SERVERS: u8 = 5;
/// Distinct flows the new-connection stream cycles through (the connection table holds
/// the large population and these).
pub const STREAM_FLOWS: u32 = 1 << 18;
/// Slots of each worker's twin and capture rings (nothing reads them).
const SIDE_RING: u32 = 1024;

/// The daemon configuration the worker runs (parsed and checked like rvsd's own).
fn bench_config(pool_size: u32) -> Result<Config> {
    let mut t = String::new();
    t.push_str(
        r#"
[eal]
file_prefix = "rvsbench"
[workers]
lcores = [1]
[[port]]
name = "sink"
vdev = "net_null0,no-rx=1"
[[port]]
name = "src"
vdev = "net_ring_rvsbench"
"#,
    );
    t.push_str(&format!("[conn]\npool_size = {pool_size}\ntoa = true\n"));
    t.push_str("[[addr]]\ndev = \"sink\"\naddr = \"192.168.254.1/24\"\n");
    t.push_str(&format!("[[addr]]\ndev = \"src\"\naddr = \"{VIP}/32\"\n"));
    let mut lips = Vec::new();
    for i in 1..=LIPS {
        let lip = format!("192.168.200.{i}");
        t.push_str(&format!("[[addr]]\ndev = \"sink\"\naddr = \"{lip}/32\"\nsapool = true\n"));
        lips.push(format!("\"{lip}\""));
    }
    t.push_str("[[route]]\nprefix = \"10.0.0.0/8\"\nvia = \"192.168.254.2\"\ndev = \"sink\"\n");
    t.push_str("[[route]]\nprefix = \"172.16.0.0/16\"\nvia = \"192.168.254.3\"\ndev = \"sink\"\n");
    t.push_str("[[neigh]]\naddr = \"192.168.254.2\"\nmac = \"02:00:00:00:fe:02\"\ndev = \"sink\"\n");
    t.push_str("[[neigh]]\naddr = \"192.168.254.3\"\nmac = \"02:00:00:00:fe:03\"\ndev = \"sink\"\n");
    t.push_str(&format!(
        "[[service]]\nproto = \"tcp\"\nvip = \"{VIP}\"\nport = {VPORT}\nscheduler = \"rr\"\nladdrs = [{}]\n",
        lips.join(", ")
    ));
    for i in 1..=REAL_SERVERS {
        t.push_str(&format!("[[service.real_server]]\naddr = \"172.16.0.{i}\"\nport = 8080\n"));
    }
    Config::parse("rvs-bench.toml", &t).map_err(|e| anyhow!("bench config: {e}"))
}

/// The first snapshot: the configuration's state over the two ports.
fn bench_snapshot(cfg: &Config, sink: &Port, src: &Port) -> Result<Snapshot> {
    let view = |name: &str, p: &Port| -> Result<PortView> {
        Ok(PortView {
            name: name.into(),
            mac: EthernetAddress(p.mac()?),
            mtu: 1500,
            forward2kni: false,
            twin: false,
            capture: None,
        })
    };
    let views = vec![view("sink", sink)?, view("src", src)?];
    let mut neighs = NeighTable::new(64);
    for nb in &cfg.neighs {
        let port = cfg.port_index(&nb.dev).ok_or_else(|| anyhow!("no port {}", nb.dev))?;
        neighs.insert_static(nb.addr, nb.mac, PortId(port as u16), 0);
    }
    State::from_config(cfg)
        .snapshot(1, None, Arc::new(views), Arc::new(neighs))
        .map_err(|e| anyhow!("bench snapshot: {e:?}"))
}

/// The configuration, clock and shared state of the workers of one run.
pub struct Setup {
    cfg: Config,
    /// The workers' common clock.
    pub clock: Clock,
    /// State shared between the workers and the feeder (which plays the control thread).
    pub shared: Arc<Shared>,
    /// How many workers the configuration is split between.
    workers: u32,
}

impl Setup {
    /// The setup of `workers` workers whose connection table holds `large` connections
    /// and the new-connection stream, over the ports `sink` (port 0) and `src` (port 1).
    pub fn new(large: u32, workers: u32, sink: &Port, src: &Port) -> Result<Setup> {
        let cfg = bench_config((large + STREAM_FLOWS).next_power_of_two())?;
        let clock = Clock::new();
        let shared = Arc::new(Shared::new(bench_snapshot(&cfg, sink, src)?, workers as usize));
        Ok(Setup { cfg, clock, shared, workers })
    }

    /// Worker `id`'s FullNAT core, bound to the current services.
    fn engine(&self, id: u16) -> Result<Engine> {
        let mut ec = engine_config(&self.cfg, id, self.workers);
        // 1 ms wheel slots (the daemon's are 32 ms) so that connections of the new-connection
        // stream leave the table ~1 ms after their SYN; 2^20 slots keep the horizon above
        // the ESTABLISHED timeout (no re-filing of the live population during the run).
        ec.wheel = WheelConfig { resolution_ms: 1, slots: 1 << 20 };
        // The plain FullNAT path: in auto mode the SYN proxy would answer the
        // new-connection stream with cookies instead of opening connections.
        ec.synproxy.mode = fnat::synproxy::SynProxyMode::Off;
        let mut engine = Engine::new(&ec, self.clock.now_ms()).context("engine")?;
        engine.bind(&self.shared.current().services);
        Ok(engine)
    }

    /// Worker `id` (on lcore `1 + id`) over its queues (`rx`, `tx`: one per port), with
    /// its own engine and the redirect rings wired by the caller (`redirect_tx`: one per
    /// worker, `None` for itself). No kernel twins and no captures here: frames for them
    /// would go up rings that nothing reads (the bench's traffic never needs them).
    pub fn worker(
        &self,
        id: u16,
        pool: &Arc<Mempool>,
        (rx, tx): (Vec<RxQueue>, Vec<TxBuffer>),
        redirect_tx: Vec<Option<RingProducer>>,
        redirect_rx: Vec<RingConsumer>,
    ) -> Result<Worker> {
        let side = |name: String| -> Result<RingProducer> {
            let ring = MbufRing::new(&name, SIDE_RING, RingSync::SpSc).with_context(|| format!("ring {name}"))?;
            ring.producer().ok_or_else(|| anyhow!("ring {name}: producer taken"))
        };
        Ok(Worker::new(WorkerParts {
            id,
            lcore: 1 + id as u32,
            rx,
            tx,
            pool: Arc::clone(pool),
            engine: self.engine(id)?,
            shared: Arc::clone(&self.shared),
            clock: self.clock,
            expire_nodest: false,
            twin_up: side(format!("rvsbench_twin_up{id}"))?,
            twin_down: None,
            capture: side(format!("rvsbench_capture{id}"))?,
            redirect_tx,
            redirect_rx,
        }))
    }
}
