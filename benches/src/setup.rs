//! What the measured workers run: the configuration, the services, the engines.
//!
//! The worker is configured as rvsd configures it: a TOML configuration parsed and
//! checked by rvsd's own parser (one TCP service VIP:80 with 16 LIPs and 5 real
//! servers, static neighbours for the client and server networks on the sink port; the
//! real servers in one forwarding mode, see [`bench_config`]), the
//! first snapshot built from it by rvsd's state, and each worker's FullNAT core from
//! rvsd's `engine_config`, with a finer timer wheel (see [`Setup::engine`]). The DPDK
//! side (EAL, pool, ports, queues) is the harness's (`crate::harness::Rig`).

use std::net::Ipv4Addr;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use dpdk::{MbufRing, Mempool, Port, RingConsumer, RingProducer, RingSync, RxQueue, TxBuffer};
use fnat::engine::Engine;
use fnat::timer::WheelConfig;
use fnat::types::FwdMode;
use netstack::{NeighTable, PortId};
use rvsd::clock::Clock;
use rvsd::config::Config;
use rvsd::dataplane::engine_config;
use rvsd::shared::{PortView, Shared, Snapshot};
use rvsd::state::State;
use rvsd::worker::{Worker, WorkerParts};
use wire::EthernetAddress;

use crate::cli::fwd_word;

/// The virtual service's address and port.
pub const VIP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 100);
/// The virtual service's port.
pub const VPORT: u16 = 80;
/// Local addresses (LIPs) of the service, at least (see [`lips`]).
const LIPS: u32 = 16;
/// Real servers of the service.
const REAL_SERVERS: u32 = 5;
/// Local ports of one LIP (rvsd's default range, 1025..=65535), shared by the workers.
const LOCAL_PORTS: u32 = 64_511;
/// Distinct flows the new-connection stream cycles through (the connection table holds
/// the large population and these).
pub const STREAM_FLOWS: u32 = 1 << 18;
/// Slots of each worker's twin and capture rings (nothing reads them).
const SIDE_RING: u32 = 1024;

/// The LIPs of a service whose `workers` workers each hold `conns` connections: [`LIPS`]
/// times the power of two that keeps each worker's local-port space (`LIPs × its share
/// of the ports × 5 real servers`, see `fnat::sapool`) at most half full. 16 up to
/// 2.58 million connections for one worker, 1.29 million each for two (`conns` counts
/// the new-connection stream's too: the populations up to 2 M measured before this
/// rule, and the redirect cases' 1 M, keep their 16); 64 for 10 million (a space of
/// 20.6 million). With 16 LIPs, 10 million
/// connections do not fit (5.2 million ports) and the port allocation sweeps the whole
/// range for each SYN past that. A power of two is prime to the 5 real servers, so
/// round robin gives every LIP all of them in turn and its ports fill evenly.
fn lips(conns: u32, workers: u32) -> u32 {
    let half = u64::from(LIPS * (LOCAL_PORTS / workers.max(1)) * REAL_SERVERS / 2);
    LIPS * u64::from(conns).div_ceil(half).max(1).next_power_of_two() as u32
}

/// The `i`-th local address (from 0): 192.168.200.1 to .250, then 192.168.201.1, ...
fn lip(i: u32) -> Ipv4Addr {
    Ipv4Addr::new(192, 168, 200 + (i / 250) as u8, 1 + (i % 250) as u8)
}

/// The daemon configuration the worker runs (parsed and checked like rvsd's own), its
/// real servers forwarded in mode `fwd`:
/// - FullNAT: real servers on port 8080, the service's 16 LIPs as source addresses;
/// - NAT: port 8080, no LIPs (the client's address reaches the server);
/// - DR: the service's port (80: DR cannot change it), no LIPs;
/// - TUN: port 80, the LIPs kept (the first is the tunnel's source);
/// - SNAT: no service; a `[[snat]]` rule takes the clients' flows to `VIP:80`, an
///   outside address routed out of the sink port, with 80 WAN addresses (16 LIPs × 5
///   real servers: the same local-port space as FullNAT's towards one destination; the
///   same translation as FullNAT without TOA, found by the SNAT rule after the service
///   lookup misses).
///
/// The real servers sit on the sink port's link (172.16.0.0/16, static neighbours), as
/// DR needs, in every mode, so the route and neighbour lookups cost the same. `n_lips`:
/// the service's LIPs ([`lips`]; SNAT: 5 times as many WAN addresses).
fn bench_config(pool_size: u32, n_lips: u32, fwd: FwdMode) -> Result<Config> {
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
    t.push_str("[[addr]]\ndev = \"sink\"\naddr = \"172.16.255.254/16\"\n");
    let snat = fwd == FwdMode::Snat;
    if !snat {
        t.push_str(&format!("[[addr]]\ndev = \"src\"\naddr = \"{VIP}/32\"\n"));
    }
    let mut lips = Vec::new();
    if fwd.needs_local_addrs() || snat {
        // SNAT's flows all go to one destination (VIP:80), where FullNAT's spread over 5
        // real servers: 5 times the WAN addresses give the same local-port space.
        let n = if snat { n_lips * REAL_SERVERS } else { n_lips };
        if n > 250 * 50 {
            bail!("{n} local addresses: more than the bench's scheme numbers");
        }
        for i in 0..n {
            let lip = lip(i);
            t.push_str(&format!("[[addr]]\ndev = \"sink\"\naddr = \"{lip}/32\"\nsapool = true\n"));
            lips.push(format!("\"{lip}\""));
        }
    }
    t.push_str("[[route]]\nprefix = \"10.0.0.0/8\"\nvia = \"192.168.254.2\"\ndev = \"sink\"\n");
    t.push_str("[[neigh]]\naddr = \"192.168.254.2\"\nmac = \"02:00:00:00:fe:02\"\ndev = \"sink\"\n");
    for i in 1..=REAL_SERVERS {
        t.push_str(&format!("[[neigh]]\naddr = \"172.16.0.{i}\"\nmac = \"02:00:00:00:fe:{i:02x}\"\ndev = \"sink\"\n"));
    }
    if snat {
        // No service: the clients' flows to the "VIP" (an outside address here, routed
        // out of the sink port) leave from 80 WAN addresses.
        t.push_str(&format!("[[route]]\nprefix = \"{VIP}/32\"\nvia = \"192.168.254.2\"\ndev = \"sink\"\n"));
        t.push_str(&format!(
            "[[snat]]\nname = \"bench\"\nsrc_range = \"10.0.0.0/8\"\noif = \"sink\"\nwan = [{}]\n",
            lips.join(", ")
        ));
        return Config::parse("rvs-bench.toml", &t).map_err(|e| anyhow!("bench config: {e}"));
    }
    t.push_str(&format!(
        "[[service]]\nproto = \"tcp\"\nvip = \"{VIP}\"\nport = {VPORT}\nscheduler = \"rr\"\nladdrs = [{}]\n",
        lips.join(", ")
    ));
    let (word, rport) = (fwd_word(fwd), if fwd.keeps_packet() { VPORT } else { 8080 });
    for i in 1..=REAL_SERVERS {
        t.push_str(&format!("[[service.real_server]]\naddr = \"172.16.0.{i}\"\nport = {rport}\nfwd = \"{word}\"\n"));
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
            vlan: None,
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
    /// and the new-connection stream, real servers in mode `fwd`, the service with
    /// `n_lips` LIPs (0: [`lips`]), over the ports `sink` (port 0) and `src` (port 1).
    pub fn new(large: u32, workers: u32, fwd: FwdMode, n_lips: u32, sink: &Port, src: &Port) -> Result<Setup> {
        let n_lips = if n_lips > 0 { n_lips } else { lips(large.saturating_add(STREAM_FLOWS), workers) };
        let pool = (large + STREAM_FLOWS).next_power_of_two();
        eprintln!("rvs-bench: connection pool {pool} per worker, {n_lips} LIPs");
        let cfg = bench_config(pool, n_lips, fwd)?;
        let clock = Clock::new();
        let snapshot = bench_snapshot(&cfg, sink, src)?;
        // The engines' SYN proxy is off (see `engine`).
        let slots = fnat::engine::SlotProvisioner::new(pool, fnat::synproxy::SynProxyMode::Off, &snapshot.services);
        let shared = Arc::new(Shared::new(snapshot, workers as usize, None, slots));
        Ok(Setup { cfg, clock, shared, workers })
    }

    /// The most half-open (`SYN_RECV`) connections a worker keeps: past it the oldest is
    /// evicted (`[conn] syn_recv_max`, by default a quarter of the pool).
    pub fn syn_recv_limit(&self) -> u32 {
        engine_config(&self.cfg, 0, self.workers).syn_recv_limit()
    }

    /// Worker `id`'s core, bound to the current services.
    fn engine(&self, id: u16) -> Result<Engine> {
        let mut ec = engine_config(&self.cfg, id, self.workers);
        // 1 ms wheel slots (the daemon's are 32 ms) so that connections of the new-connection
        // stream leave the table ~1 ms after their SYN; 2^20 slots keep the horizon above
        // the ESTABLISHED timeout (no re-filing of the live population during the run).
        ec.wheel = WheelConfig { resolution_ms: 1, slots: 1 << 20 };
        // The plain path: in auto mode the SYN proxy would answer the new-connection
        // stream with cookies instead of opening connections (DR and TUN refuse it).
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
            twin_up_control: side(format!("rvsbench_twin_upc{id}"))?,
            twin_budget: frame::TwinBudget::unlimited(),
            twin_down: None,
            capture: side(format!("rvsbench_capture{id}"))?,
            redirect_tx,
            redirect_rx,
            // Measured spinning, as a dedicated box runs.
            backoff: rvsd::worker::Backoff::new(rvsd::worker::Polling::Busy, 1),
        }))
    }
}
