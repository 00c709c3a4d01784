//! What the control thread and the workers share: the published configuration
//! snapshot (one atomic load per worker loop to notice a change), per-worker command
//! and reply queues, the neighbour-learning queue and the stop flag. Nothing here takes
//! a lock on the workers' path.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use crossbeam_queue::ArrayQueue;
use fnat::engine::{config::LocalAddrSet, listing::ConnInfo, Engine, SlotProvisioner, SlotState};
use fnat::service::ServiceTable;
use fnat::stats::StatsSnapshot;
use fnat::tcp_state::{TcpState, Timeouts};
use fnat::types::Millis;
use netstack::{AddrTable, NeighTable, PortId, RouteTable};
use serde::Serialize;
use wire::EthernetAddress;

use frame::NetCounters;

/// A port as the workers see it.
#[derive(Debug, Clone, Serialize)]
pub struct PortView {
    // (`capture` is not serialised: it is a running command, not configuration.)
    /// Operator's name (`dpdk0`).
    pub name: String,
    /// Its MAC.
    pub mac: EthernetAddress,
    /// Its MTU.
    pub mtu: u16,
    /// Copy everything received to the kernel twin (for capture).
    pub forward2kni: bool,
    /// The port has a kernel twin.
    pub twin: bool,
    /// For a VLAN sub-interface: its parent port and VLAN id.
    pub vlan: Option<frame::Vlan>,
    /// A capture running on this port.
    #[serde(skip)]
    pub capture: Option<Arc<CaptureSpec>>,
}

/// What a running capture records.
#[derive(Debug)]
pub struct CaptureSpec {
    /// Received frames.
    pub rx: bool,
    /// Sent frames.
    pub tx: bool,
    /// Which frames (compiled by libpcap).
    pub filter: dpdk::bpf::Filter,
}

/// One immutable generation of the configuration the workers run on. Parts that change
/// independently are behind their own `Arc`, so a neighbour learned does not copy the
/// services.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Generation number (increases by one per published change).
    pub gen: u64,
    /// Virtual services and real servers.
    pub services: Arc<ServiceTable>,
    /// Local address sets (LIPs) per service.
    pub laddrs: Arc<Vec<LocalAddrSet>>,
    /// Connection timeouts.
    pub timeouts: Timeouts,
    /// Addresses the dataplane owns.
    pub addrs: Arc<AddrTable>,
    /// Routes (connected, static, kni_host).
    pub routes: Arc<RouteTable>,
    /// Neighbours.
    pub neighs: Arc<NeighTable>,
    /// Ports, indexed by `PortId`.
    pub ports: Arc<Vec<PortView>>,
    /// The global deny set (`[edge]`, `rvsadm --deny`), swapped whole.
    pub deny: Arc<fnat::denyset::PrefixSet>,
    /// The SNAT rules with the routes their `oif` matches read (rebuilt with either).
    pub snat: Arc<fnat::snat::SnatTable>,
}

/// A neighbour binding a worker saw (ARP or ND); the control thread learns it.
#[derive(Debug, Clone, Copy)]
pub struct NeighSeen {
    /// The address.
    pub ip: IpAddr,
    /// Its MAC.
    pub mac: EthernetAddress,
    /// The port it was seen on.
    pub port: PortId,
}

/// A request from the control thread to one worker.
#[derive(Debug, Clone)]
pub enum Command {
    /// Report counters.
    Stats,
    /// Zero the counters.
    Zero,
    /// Zero one service's counters and its real servers'.
    ZeroService(fnat::service::ServiceKey),
    /// Report the exhaustion counters ([`Exhaustion`]): small, copied, no allocation.
    Exhaustion,
    /// List connections from `cursor`, at most `max`; only those `filter` keeps (see
    /// [`ConnFilter::list`]: a filtered page may be short, or empty, before the end).
    ListConns {
        /// Where to start (0 = beginning).
        cursor: u32,
        /// Most connections in this page.
        max: usize,
        /// Which connections ([`ConnFilter::All`]: every one, as `rvsadm -lnc` lists).
        filter: ConnFilter,
    },
    /// List persistence templates from position `cursor` of the worker's template
    /// table, at most `max` (`rvsadm -lnc --persistent-conn`).
    ListTemplates {
        /// Where to start (0 = beginning).
        cursor: u32,
        /// Most templates in this page.
        max: usize,
    },
}

/// Which connections a [`Command::ListConns`] lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ConnFilter {
    /// Every connection.
    #[default]
    All,
    /// Only the connections in this TCP state (rvs-bench: the half-open ones, whose
    /// `LIP:lport` it needs for the SYN-ACK).
    State(TcpState),
    /// Only the connections not in this TCP state (rvs-bench: any not `ESTABLISHED`).
    NotState(TcpState),
}

impl ConnFilter {
    /// Slots of the connection pool a filtered page looks at, at most (as an
    /// unfiltered one, [`fnat::engine::listing::LIST_SCAN_SLOTS`]).
    pub const SCAN_SLOTS: u32 = fnat::engine::listing::LIST_SCAN_SLOTS;

    /// Whether the filter keeps a connection in state `s`.
    pub fn keeps(self, s: TcpState) -> bool {
        match self {
            ConnFilter::All => true,
            ConnFilter::State(t) => s == t,
            ConnFilter::NotState(t) => s != t,
        }
    }

    /// `engine`'s page of [`Command::ListConns`]: up to `max` connections the filter keeps
    /// from slot `cursor` on, and the cursor to continue from (`None` at the end).
    /// Unfiltered, [`Engine::list`]'s page. Filtered, the page covers at most
    /// [`SCAN_SLOTS`](Self::SCAN_SLOTS) slots, so it may be short or empty with a cursor
    /// to go on from: a caller pages until the cursor is `None`. Control path (allocates
    /// the page).
    pub fn list(self, engine: &Engine, cursor: u32, max: usize, now: Millis) -> (Vec<ConnInfo>, Option<u32>) {
        if self == ConnFilter::All {
            return engine.list(cursor, max, now);
        }
        let table = engine.conns();
        let end = cursor.saturating_add(Self::SCAN_SLOTS);
        let mut out = Vec::new();
        let mut i = cursor;
        while out.len() < max {
            let Some(r) = table.next_live_in(i, end) else {
                return (out, table.resume(end, 0));
            };
            if self.keeps(table.get(r).state()) {
                // The listing's own view of that one connection (the slot is live).
                out.extend(engine.list(r.index(), 1, now).0);
            }
            i = r.index() + 1;
        }
        (out, table.resume(i, end.saturating_sub(i)))
    }
}

/// A worker's counters and state summary.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerReport {
    /// Worker id.
    pub id: u16,
    /// The lcore it runs on.
    pub lcore: u32,
    /// The configuration generation it runs.
    pub gen: u64,
    /// Live connections.
    pub conns: u32,
    /// Of them, those that give way first (half-open, unproven, synced copies).
    pub tables: fnat::stats::TableGauges,
    /// Core counters (services, real servers, drops); serialised compactly (only
    /// non-zero entries, keyed by stable id).
    #[serde(serialize_with = "compact_core")]
    pub core: StatsSnapshot,
    /// Dataplane counters (frame logic and the worker's queues).
    pub net: NetCounters,
    /// Frames each port's transmit queue of this worker did not take, by port index
    /// (also counted, summed, as the `tx_full` drop).
    pub tx_dropped: Vec<u64>,
    /// Per LIP this worker used: the connections holding one of its local ports.
    pub lip_conns: Vec<(IpAddr, u64)>,
}

/// Serialises core counters without the zero entries of the preallocated per-service
/// and per-real-server arrays.
pub fn compact_core<S: serde::Serializer>(c: &StatsSnapshot, s: S) -> Result<S::Ok, S::Error> {
    use std::collections::BTreeMap;
    let nonzero = |v: &[fnat::stats::Counters]| -> BTreeMap<usize, fnat::stats::Counters> {
        v.iter()
            .enumerate()
            .filter(|(_, c)| c.conns > 0 || c.pkts_in > 0 || c.pkts_out > 0)
            .map(|(i, c)| (i, *c))
            .collect()
    };
    #[derive(Serialize)]
    struct View<'a> {
        total: &'a fnat::stats::Counters,
        services: BTreeMap<usize, fnat::stats::Counters>,
        real_servers: BTreeMap<usize, fnat::stats::Counters>,
        drops: BTreeMap<&'a str, u64>,
        synproxy: &'a BTreeMap<String, u64>,
        events: BTreeMap<&'a str, u64>,
    }
    View {
        total: &c.total,
        services: nonzero(&c.services),
        real_servers: nonzero(&c.real_servers),
        drops: c.drops.iter().filter(|(_, v)| **v > 0).map(|(k, v)| (k.as_str(), *v)).collect(),
        synproxy: &c.synproxy,
        events: c.events.iter().filter(|(_, v)| **v > 0).map(|(k, v)| (k.as_str(), *v)).collect(),
    }
    .serialize(s)
}

/// A worker's answer to a [`Command`].
#[derive(Debug, Clone)]
pub enum Reply {
    /// Counters.
    Stats(Box<WorkerReport>),
    /// A page of connections and the cursor of the next page.
    Conns(Vec<ConnInfo>, Option<u32>),
    /// The exhaustion counters.
    Exhaustion(Exhaustion),
    /// A command without data was carried out.
    Done,
}

/// What a worker refused for want of room, as counted so far: the control thread logs
/// when exhaustion starts and when it ends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Exhaustion {
    /// New connections refused: the connection pool was full (`pool_full`).
    pub pool_full: u64,
    /// New connections refused: no free local port (`no_local_port`).
    pub no_local_port: u64,
    /// Packets dropped: no mbuf (`no_mbuf`).
    pub no_mbuf: u64,
}

/// One worker's mailbox and progress.
#[derive(Debug)]
pub struct WorkerSlot {
    /// The generation this worker runs.
    pub seen_gen: AtomicU64,
    /// The worker's clock (ms) at its latest loop: the control thread's proof that the
    /// worker makes progress (systemd's watchdog).
    pub heartbeat: AtomicU64,
    /// Commands for it.
    pub commands: ArrayQueue<Command>,
    /// Its replies.
    pub replies: ArrayQueue<Reply>,
    /// Connections it announces, for the sync thread (see [`crate::sync`]).
    pub sync_out: ArrayQueue<wire::sync::RecordRepr>,
    /// Connections peers announced, for it to install.
    pub sync_in: ArrayQueue<wire::sync::RecordRepr>,
    /// What it saw of real servers of services with the passive check, for the
    /// control thread ([`fnat::destcheck`]).
    pub dest_reports: ArrayQueue<fnat::engine::destcheck::DestReport>,
    /// Per-slot arrays the control thread built for a generation's new features, for
    /// the worker to adopt before it binds the generation ([`fnat::engine::slot_state`]).
    pub slot_state: Mutex<Option<SlotState>>,
    /// Those of them it had already, for the control thread to free
    /// ([`Shared::free_returned_slot_state`]).
    pub slot_state_back: ArrayQueue<SlotState>,
}

impl WorkerSlot {
    /// The per-slot arrays handed to it, if any (taken once).
    pub fn take_slot_state(&self) -> Option<SlotState> {
        self.slot_state.lock().ok()?.take()
    }
}

/// Passive-check reports a worker's queue holds until the control thread takes them
/// (it does every turn of its loop, within a millisecond when idle).
pub const DEST_REPORTS: usize = 1024;

/// Everything shared between the control thread and the workers.
#[derive(Debug)]
pub struct Shared {
    /// Set to stop the workers.
    pub stop: AtomicBool,
    /// The newest published generation number.
    pub gen: AtomicU64,
    /// The newest snapshot.
    pub snapshot: ArcSwap<Snapshot>,
    /// Per worker.
    pub workers: Vec<WorkerSlot>,
    /// Neighbour bindings seen by workers, for the control thread to learn.
    pub neigh_seen: ArrayQueue<NeighSeen>,
    /// Who has this address on this port? A worker asked:
    /// the answer, whichever worker it reaches, may be learned. A queue of its own, so
    /// that a flood of forged answers filling `neigh_seen` cannot push the asks out.
    pub neigh_asked: ArrayQueue<(IpAddr, PortId)>,
    /// Connection sync (`[sync]`): its configuration, roles and counters.
    pub sync: Option<crate::sync::SyncShared>,
    /// Raised by the sync thread when a peer starts: each worker then announces its
    /// whole table (once per raise).
    pub resync: AtomicU64,
    /// Which per-slot arrays a published generation needs built (see
    /// [`Shared::publish`]).
    slots: Mutex<SlotProvisioner>,
}

impl Shared {
    /// Shared state for `workers` workers starting at `snapshot`; `sync`: connection
    /// sync's configuration when it runs (its queues are sized only then); `slots`: the
    /// workers' per-slot arrays, as they are after binding `snapshot`'s services.
    pub fn new(
        snapshot: Snapshot,
        workers: usize,
        sync: Option<&crate::sync::SyncConf>,
        slots: SlotProvisioner,
    ) -> Shared {
        let sync_queue = if sync.is_some() { crate::sync::QUEUE } else { 1 };
        Shared {
            stop: AtomicBool::new(false),
            gen: AtomicU64::new(snapshot.gen),
            snapshot: ArcSwap::from_pointee(snapshot),
            workers: (0..workers)
                .map(|_| WorkerSlot {
                    seen_gen: AtomicU64::new(0),
                    heartbeat: AtomicU64::new(0),
                    commands: ArrayQueue::new(64),
                    replies: ArrayQueue::new(64),
                    sync_out: ArrayQueue::new(sync_queue),
                    sync_in: ArrayQueue::new(sync_queue),
                    dest_reports: ArrayQueue::new(DEST_REPORTS),
                    slot_state: Mutex::new(None),
                    slot_state_back: ArrayQueue::new(1),
                })
                .collect(),
            neigh_seen: ArrayQueue::new(4096),
            neigh_asked: ArrayQueue::new(4096),
            sync: sync.map(crate::sync::SyncShared::new),
            resync: AtomicU64::new(0),
            slots: Mutex::new(slots),
        }
    }

    /// Publishes a new snapshot (its `gen` must be the current one plus one). Where its
    /// services are the first to use a feature with per-slot state, that state's arrays
    /// are built here, on the publishing thread, and handed to every worker first: the
    /// workers then bind the generation without writing them.
    pub fn publish(&self, snapshot: Snapshot) {
        if !Arc::ptr_eq(&snapshot.services, &self.current().services) {
            self.provide_slot_state(&snapshot.services);
        }
        let gen = snapshot.gen;
        self.snapshot.store(Arc::new(snapshot));
        self.gen.store(gen, Ordering::Release);
    }

    /// Sends `cmd()` to every worker and takes each one's answer (`pick` says which reply
    /// is it; older replies left in a mailbox are discarded first); `None` if a worker
    /// did not answer within `wait`. Control thread only.
    pub fn ask_all<T>(
        &self,
        cmd: impl Fn() -> Command,
        wait: std::time::Duration,
        pick: impl Fn(Reply) -> Option<T>,
    ) -> Option<Vec<T>> {
        for w in &self.workers {
            while w.replies.pop().is_some() {}
            let _ = w.commands.push(cmd());
        }
        let deadline = std::time::Instant::now() + wait;
        let mut out = Vec::with_capacity(self.workers.len());
        for w in &self.workers {
            loop {
                match w.replies.pop().map(&pick) {
                    Some(Some(t)) => {
                        out.push(t);
                        break;
                    }
                    Some(None) => continue,
                    None if std::time::Instant::now() > deadline => return None,
                    None => std::thread::sleep(std::time::Duration::from_micros(50)),
                }
            }
        }
        Some(out)
    }

    /// Builds and hands to every worker the per-slot arrays `services` need that no
    /// earlier generation brought: for the SYN proxy's, ~15 ms a worker at the default
    /// pool, spent here (the kernel twins' frames wait in their rings meanwhile).
    fn provide_slot_state(&self, services: &ServiceTable) {
        let Ok(mut slots) = self.slots.lock() else { return };
        let new = slots.take_new(services);
        if new.is_empty() {
            return;
        }
        for w in &self.workers {
            let built = slots.build(new);
            if let Ok(mut mailbox) = w.slot_state.lock() {
                match mailbox.as_mut() {
                    Some(s) => s.merge(built),
                    None => *mailbox = Some(built),
                }
            }
        }
    }

    /// Frees the per-slot arrays workers handed back (they had them already): tens of
    /// megabytes each, freed on the control thread rather than the worker's. Control
    /// thread only, once a turn.
    pub fn free_returned_slot_state(&self) {
        for w in &self.workers {
            drop(w.slot_state_back.pop());
        }
    }

    /// The newest snapshot.
    pub fn current(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fnat::service::ServiceConfig;
    use fnat::synproxy::SynProxyMode;
    use fnat::types::Proto;

    fn snapshot(gen: u64, services: &[ServiceConfig]) -> Snapshot {
        Snapshot {
            gen,
            services: Arc::new(ServiceTable::build(services, None).expect("services")),
            laddrs: Arc::default(),
            timeouts: Timeouts::default(),
            addrs: Arc::default(),
            routes: Arc::default(),
            neighs: Arc::new(NeighTable::new(0)),
            ports: Arc::default(),
            deny: Arc::default(),
            snat: Arc::default(),
        }
    }

    #[test]
    fn the_first_generation_with_a_syn_proxy_service_hands_every_worker_its_state_once() {
        let mut off = ServiceConfig::new(Proto::Tcp, "192.0.2.1".parse().unwrap(), 80);
        off.synproxy = Some(SynProxyMode::Off);
        let first = snapshot(1, std::slice::from_ref(&off));
        let slots = SlotProvisioner::new(64, SynProxyMode::Auto, &first.services);
        let shared = Shared::new(first, 2, None, slots);
        let handed = |shared: &Shared| {
            shared.workers.iter().map(|w| w.take_slot_state().map(|s| s.features())).collect::<Vec<_>>()
        };
        shared.publish(snapshot(2, std::slice::from_ref(&off)));
        assert_eq!(handed(&shared), vec![None, None], "no new feature");
        let mut auto = off.clone();
        auto.synproxy = None;
        shared.publish(snapshot(3, std::slice::from_ref(&auto)));
        let syn = fnat::engine::SlotFeatures { synproxy: true, ..Default::default() };
        assert_eq!(handed(&shared), vec![Some(syn), Some(syn)]);
        assert_eq!(handed(&shared), vec![None, None], "taken once");
        shared.publish(snapshot(4, &[off]));
        shared.publish(snapshot(5, &[auto]));
        assert_eq!(handed(&shared), vec![None, None], "built once: an engine keeps its arrays");
        // Arrays a worker had already come back, and are freed by the control thread.
        assert!(shared.workers[1].slot_state_back.push(SlotState::default()).is_ok());
        shared.free_returned_slot_state();
        assert!(shared.workers.iter().all(|w| w.slot_state_back.is_empty()));
    }
}
