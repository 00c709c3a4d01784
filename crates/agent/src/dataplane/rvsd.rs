//! [`RvsdDataplane`]: the agent's [`Dataplane`] over rvsd's control socket ([`ctl`]).
//!
//! | agent                     | rvsd request                                                   |
//! |---------------------------|----------------------------------------------------------------|
//! | VIP added / removed       | `AddrAdd { dev, addr, sapool: false, lease: true }` / `AddrDel` |
//! | LIP that moves with the VIPs added / removed | `AddrAdd { dev, addr, sapool: true, lease: true }` / `AddrDel` |
//! | gratuitous ARP / NA       | `SendGarp { addr, dev, count }` (count clamped to 1..=100)     |
//! | services (at start)       | `ServiceReplace` (the keepalived.conf's services, nothing else)|
//! | real server down / up     | `RealServerEdit { weight }` (inhibit_on_failure), else `RealServerDel` / `RealServerAdd` |
//! | real server's mode or thresholds changed (reload) | `RealServerEdit { weight, upper, lower, fwd }`, what changed only |
//! | SNAT rules (start, reload) | `SnatList`, then `SnatDel` / `SnatAdd` / `SnatWan` for what differs |
//! | connection-sync roles (`lvs_sync_daemon`) | `SyncDaemon { role, start, syncid }`: stops, then starts |
//! | global timeouts (`lvs_timeouts`, at start, on reload and on every connection) | `TimeoutsGet`, then `TimeoutsSet { tcp, tcpfin, udp }` |
//! | the box's addresses (`ha_suspend`), every second and on each reconciliation | `AddrList` |
//!
//! The port of a VIP is the instance's `dpdk_interface`, else its `interface` with `.kni`
//! stripped ([`super::port_of`]). A `local_address_group` becomes the services' `laddrs`:
//! each must already be a `sapool` address of rvsd (rvsd's own configuration); one that is
//! not is reported by name and its service is left out until it appears. The exception is
//! a LIP that moves with the VIPs (below).
//!
//! # LIPs that follow the VIP (connection sync)
//! After a failover the new master must own the local addresses of the connections rvsd
//! synced to it, or the real servers' replies go nowhere. A local address that is also a
//! `virtual_ipaddress` of a vrrp_instance ([`super::LocalAddr::moves_with_vip`]) is
//! therefore handled like a VIP, but added with `sapool: true`: added when the instance
//! becomes MASTER (and announced), removed when it leaves, reconciled like VIPs (a held one
//! rvsd has as a sapool address of its port is fine; one it has without sapool is reported
//! and left alone; a released one is removed even though it is a sapool address; other
//! sapool addresses are rvsd's own and never removed). Its services do not wait for it:
//! they are loaded on the backup too (rvsd keeps a service whose LIP no port has in
//! standby), so that the backup can install the synced connections. keepalived.conf
//! validation makes such an address's `dev` the port its `local_address_group` names.
//!
//! # Never blocking VRRP
//! The trait's calls only record the wanted state and queue the change; one thread
//! (`rvsd-ctl`) owns the connection and applies the queue in order, so a slow or dead
//! rvsd never delays an advertisement. The wanted state (VIPs held and released, services
//! with their live weights) is kept whole, so anything lost is reapplied:
//! * rvsd unreachable: the error is logged once, the connection retried every
//!   [`RETRY_INTERVAL`]; on reconnection (e.g. rvsd restarted and lost everything) the
//!   state is reconciled with `AddrList` / `ServiceList` and held VIPs that had to be added
//!   again are announced;
//! * a refusal is logged with rvsd's message (once per message until a clean
//!   reconciliation), and the state is reconciled again every few seconds, so a fix in
//!   rvsd (a missing sapool address, say) is picked up without restarting the agent;
//! * every second rvsd is asked `Status`: its `loaded_ns` tells a SIGHUP (`systemctl
//!   reload rvsd`), which rebuilt rvsd's state from rvsd.toml (keeping only this
//!   connection's leased VIPs); the whole state is then reconciled at once, as after a
//!   restart. An idle connection is also checked every second with `AddrList`, whose
//!   answer (every address rvsd holds, whoever added it) goes to
//!   [`Dataplane::watch_addresses`]'s listener: `ha_suspend` follows it.
//!
//! # Services and VIPs
//! keepalived keeps the services loaded on both nodes and moves only the addresses. rvsd
//! (today) refuses a service whose VIP is not one of its addresses. When it says so, the
//! agent switches to loading a VIP's services together with the VIP (`AddrAdd` then
//! `ServiceAdd`) and removing them before it (`ServiceDel` then `AddrDel`); status shows
//! `services_follow_vips`. The probe is repeated on every connection, so an rvsd that
//! accepts such services gets keepalived's behaviour with no change here. A fwmark
//! service (`virtual_server fwmark`) has no VIP: it is loaded on both nodes in either
//! case, as keepalived loads it (the marks, rvsd's own rules, name the VIPs).
//!
//! # SNAT rules
//! keepalived.conf's `virtual_server match` blocks are reconciled with rvsd's rules by
//! match (rvsd's name for a rule) at start, on every reload and on every reconnection:
//! `SnatList`, then `SnatDel` for the rules this agent added that the file no longer has
//! (first: a new rule may take a deleted one's name), `SnatAdd` for the file's rules rvsd
//! lacks, and `SnatWan` additions then removals for those whose WAN addresses differ. The
//! agent remembers which rules it added (until rvsd restarts, which it tells by `Status`'s
//! `started_ns`: a new process holds none of them): the others, rvsd.toml's
//! `[[snat]]` or `rvsadm -A -H`, are never deleted, though a file rule with the same match
//! sets their WAN addresses. A rule's name is not compared (rvsd keeps the name it was added
//! with). With no rule in the file and none added, rvsd is not asked (an rvsd without SNAT
//! works as before).
//!
//! # Connection-sync roles
//! keepalived's `lvs_sync_daemon` ([`Dataplane::set_sync_roles`]): each change is sent as
//! keepalived sends it to IPVS, the roles turned off stopped first, then the roles turned
//! on started (`SyncDaemon { role, start, syncid, mcast_interface: None }`; the interface
//! is `[sync]`'s, which rvsd would refuse to be named when it is unicast). On every new
//! connection (rvsd restarted: it runs `[sync]`'s roles again) the wanted roles are asked
//! for whole: the one off stopped, the one on started. A refusal (no `[sync]`, another
//! syncid, a master without peers) is logged once with rvsd's message, shown in status
//! (`sync_error`) until a change is accepted, and not retried until the next change or
//! connection: it holds up nothing else.
//!
//! # Global timeouts
//! keepalived's `lvs_timeouts` ([`Dataplane::set_timeouts`]), as keepalived sets IPVS's
//! (`ipvs_set_timeouts`, libipvs's `ipvs_set_timeout`): the timeouts the file sets are sent
//! with `TimeoutsSet` (0 for the others: rvsd keeps them), when they are set or changed and
//! again on every new connection, since a restarted rvsd starts with rvsd.toml's. Before
//! each `TimeoutsSet`, `TimeoutsGet` reads rvsd's values: one that is not the agent's (never
//! changed by it, or rvsd restarted, or `rvsadm --set` changed it since) is rvsd's own. As
//! keepalived puts back the kernel's original value of a timeout its file no longer sets
//! (a reload without it, or without `lvs_timeouts` at all), the agent sends rvsd's own value
//! of a timeout it changed and the file no longer sets. A refusal is logged with rvsd's
//! message, once per change or connection, and holds up nothing else. At stop the agent
//! leaves rvsd's timeouts as they are, as it leaves the services (keepalived, which removes
//! its services, puts the kernel's back).

use super::{
    AddressListener, AddressReports, Dataplane, DataplaneError, DataplaneStatus, HeldOut, LvsTimeouts, Proto,
    RealServer, Service, ServiceKey, SyncRoles,
};
use ctl::{
    AddrView, Client, CtlError, ErrorCode, RealServerEdit, Request, Response, RouteSpec, ServiceSpec, ServiceView,
};
use fnat::persist::PersistConfig;
use fnat::sched::SchedKind;
use fnat::service::{RealServerConfig, ServiceConfig};
use ipnet::IpNet;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How often an unreachable rvsd is tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(1);
/// How often an idle connection is checked.
const PING_INTERVAL: Duration = Duration::from_secs(1);
/// How often rvsd is asked whether it read its file again (`Status`'s `loaded_ns`).
const IDENTIFY_EVERY: Duration = Duration::from_secs(1);
/// How soon a refused change is attempted again (by reconciliation).
const REFUSED_RETRY: Duration = Duration::from_secs(5);
/// Announcements for a held VIP that had to be added again (rvsd restarted).
const REANNOUNCE: u32 = 3;

#[derive(Debug, Clone)]
enum Op {
    AddVip(IpNet, String),
    DelVip(IpNet, String),
    Garp(IpAddr, String, u32),
    Services,
    Weight(ServiceKey, SocketAddr, u32),
    AddRs(ServiceKey, RealServer),
    DelRs(ServiceKey, SocketAddr),
    /// A real server's settings changed (a reload): what differs.
    EditRs(ServiceKey, SocketAddr, RealServerEdit),
    AddRoute(RouteSpec),
    DelRoute(RouteSpec),
    Snat,
    /// Connection-sync roles, and what asks for them.
    Sync(SyncRoles, String),
    /// Global timeouts (`lvs_timeouts`).
    Timeouts(LvsTimeouts),
}

/// What the agent wants rvsd to hold, and the queue of changes towards it.
#[derive(Debug, Default)]
struct Wanted {
    /// VIPs held (master), by address.
    held: BTreeMap<IpAddr, (IpNet, String)>,
    /// VIPs released (backup, fault, stopped): absent from rvsd.
    released: BTreeMap<IpAddr, (IpNet, String)>,
    /// The services, with their current real servers and weights.
    services: Vec<Service>,
    /// Whether `set_services` was called.
    services_set: bool,
    /// Routes (`static_routes`, and `virtual_routes` of masters), added again whenever
    /// rvsd lacks them.
    routes: Vec<RouteSpec>,
    /// Routes removed (`virtual_routes` of an instance that left MASTER): absent from rvsd.
    released_routes: Vec<RouteSpec>,
    /// keepalived.conf's SNAT rules.
    snat: Vec<ctl::SnatSpec>,
    /// Whether `set_snat` was called.
    snat_set: bool,
    /// The connection-sync roles (`set_sync_roles`), and what asked for them.
    sync: Option<(SyncRoles, String)>,
    /// The global timeouts (`set_timeouts`); none before the first call.
    timeouts: Option<LvsTimeouts>,
    ops: VecDeque<Op>,
    stop: bool,
    status: DataplaneStatus,
}

impl Wanted {
    /// Whether `ip` is a local address that moves with the VIPs ([`super::LocalAddr::moves_with_vip`]).
    fn moves_with_vip(&self, ip: IpAddr) -> bool {
        vip_lips(&self.services).contains(&ip)
    }
}

/// The services' local addresses that move with the VIPs: added to rvsd as `sapool`
/// addresses by `add_vip`, and not required to be in rvsd for their services to load.
fn vip_lips(services: &[Service]) -> HashSet<IpAddr> {
    services.iter().flat_map(|s| &s.local_addrs).filter(|l| l.moves_with_vip).map(|l| l.addr).collect()
}

/// How messages name an address the agent adds: a VIP, or a LIP that moves with the VIPs.
fn addr_kind(lip: bool) -> &'static str {
    if lip {
        "local address"
    } else {
        "VIP"
    }
}

#[derive(Debug, Default)]
struct Shared {
    wanted: Mutex<Wanted>,
    cv: Condvar,
    /// Where rvsd's address listings go ([`Dataplane::watch_addresses`]).
    reports: AddressReports,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Wanted> {
        self.wanted.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// rvsd through its control socket; see the module documentation.
pub struct RvsdDataplane {
    shared: Arc<Shared>,
    thread: Mutex<Option<(std::thread::JoinHandle<()>, mpsc::Receiver<()>)>>,
}

impl std::fmt::Debug for RvsdDataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RvsdDataplane").field("status", &self.status()).finish()
    }
}

impl RvsdDataplane {
    /// Starts the connection thread for rvsd's control socket at `socket` (it need not
    /// exist yet: the connection is retried).
    pub fn new(socket: impl AsRef<Path>) -> RvsdDataplane {
        let path = socket.as_ref().to_path_buf();
        let shared = Arc::new(Shared::default());
        {
            let mut w = shared.lock();
            w.status.kind = "rvsd".into();
            w.status.target = Some(path.display().to_string());
        }
        let (done_tx, done_rx) = mpsc::channel();
        let worker = Worker::new(shared.clone(), path);
        let thread = std::thread::Builder::new()
            .name("rvsd-ctl".into())
            .spawn(move || {
                worker.run();
                let _ = done_tx.send(());
            })
            .expect("spawn the rvsd-ctl thread");
        RvsdDataplane { shared, thread: Mutex::new(Some((thread, done_rx))) }
    }

    /// Applies what is queued (one more connection attempt if rvsd is unreachable), then
    /// stops the connection thread; gives up waiting after `timeout`. Called on exit, so
    /// that the VIPs released on shutdown really leave rvsd.
    pub fn close(&self, timeout: Duration) {
        self.shared.lock().stop = true;
        self.shared.cv.notify_all();
        let t = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((thread, done)) = t {
            match done.recv_timeout(timeout) {
                Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let _ = thread.join();
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    tracing::warn!("rvsd did not take the last changes within {timeout:?}");
                }
            }
        }
    }

    /// Waits until the queue is empty and the state reconciled (tests).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            let s = self.status();
            if s.pending == 0 && s.connected && s.last_error.is_none() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    fn push(&self, op: Op, change: impl FnOnce(&mut Wanted)) {
        let mut w = self.shared.lock();
        change(&mut w);
        w.ops.push_back(op);
        w.status.pending = w.ops.len();
        drop(w);
        self.shared.cv.notify_all();
    }

    fn edit_rs(
        &self,
        key: &ServiceKey,
        op: Op,
        f: impl FnOnce(&mut Vec<RealServer>) -> Result<(), DataplaneError>,
    ) -> Result<(), DataplaneError> {
        let mut w = self.shared.lock();
        let svc = w.services.iter_mut().find(|s| s.key == *key).ok_or(DataplaneError::NoService(*key))?;
        f(&mut svc.real_servers)?;
        w.ops.push_back(op);
        w.status.pending = w.ops.len();
        drop(w);
        self.shared.cv.notify_all();
        Ok(())
    }
}

impl Drop for RvsdDataplane {
    fn drop(&mut self) {
        self.close(Duration::from_secs(5));
    }
}

impl Dataplane for RvsdDataplane {
    fn add_route(&self, route: &RouteSpec) -> Result<(), DataplaneError> {
        tracing::info!(prefix = %route.prefix, "adding static route");
        self.push(Op::AddRoute(route.clone()), |w| {
            w.released_routes.retain(|r| r != route);
            if !w.routes.contains(route) {
                w.routes.push(route.clone());
            }
        });
        Ok(())
    }

    fn del_route(&self, route: &RouteSpec) -> Result<(), DataplaneError> {
        tracing::info!(prefix = %route.prefix, "removing route");
        self.push(Op::DelRoute(route.clone()), |w| {
            w.routes.retain(|r| r != route);
            if !w.released_routes.contains(route) {
                w.released_routes.push(route.clone());
            }
        });
        Ok(())
    }

    fn add_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError> {
        self.push(Op::AddVip(addr, port_name.into()), |w| {
            if w.moves_with_vip(addr.addr()) {
                tracing::info!(%addr, port = port_name, "adding local address (sapool; it moves with the VIPs)");
            } else {
                tracing::info!(%addr, port = port_name, "adding VIP");
            }
            w.released.remove(&addr.addr());
            w.held.insert(addr.addr(), (addr, port_name.into()));
        });
        Ok(())
    }

    fn del_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError> {
        self.push(Op::DelVip(addr, port_name.into()), |w| {
            tracing::info!(%addr, port = port_name, "removing {}", addr_kind(w.moves_with_vip(addr.addr())));
            w.held.remove(&addr.addr());
            w.released.insert(addr.addr(), (addr, port_name.into()));
        });
        Ok(())
    }

    fn send_garp(&self, addr: IpAddr, port_name: &str, count: u32) -> Result<(), DataplaneError> {
        if count > 0 {
            self.push(Op::Garp(addr, port_name.into(), count), |_| {});
        }
        Ok(())
    }

    fn set_services(&self, services: &[Service]) -> Result<(), DataplaneError> {
        tracing::info!(count = services.len(), "loading services");
        self.push(Op::Services, |w| {
            w.services = services.to_vec();
            w.services_set = true;
        });
        Ok(())
    }

    fn set_weight(&self, service: &ServiceKey, rs: SocketAddr, weight: u32) -> Result<(), DataplaneError> {
        self.edit_rs(service, Op::Weight(*service, rs, weight), |list| {
            let r = list.iter_mut().find(|r| r.addr == rs).ok_or_else(|| no_rs(service, rs))?;
            r.weight = weight;
            Ok(())
        })
    }

    fn add_real_server(&self, service: &ServiceKey, rs: RealServer) -> Result<(), DataplaneError> {
        self.edit_rs(service, Op::AddRs(*service, rs.clone()), |list| {
            match list.iter_mut().find(|r| r.addr == rs.addr) {
                Some(r) => r.weight = rs.weight,
                None => list.push(rs),
            }
            Ok(())
        })
    }

    fn del_real_server(&self, service: &ServiceKey, rs: SocketAddr) -> Result<(), DataplaneError> {
        self.edit_rs(service, Op::DelRs(*service, rs), |list| {
            list.retain(|r| r.addr != rs);
            Ok(())
        })
    }

    /// rvsd is asked for what differs from the server wanted so far, alone: a weight set
    /// (even the one it had) would bring back a server rvsd's passive check holds out.
    fn edit_real_server(&self, service: &ServiceKey, rs: RealServer) -> Result<(), DataplaneError> {
        let mut w = self.shared.lock();
        let svc = w.services.iter_mut().find(|s| s.key == *service).ok_or(DataplaneError::NoService(*service))?;
        let r = svc.real_servers.iter_mut().find(|r| r.addr == rs.addr).ok_or_else(|| no_rs(service, rs.addr))?;
        let differs = |a: u32, b: u32| (a != b).then_some(b);
        let change = RealServerEdit {
            weight: differs(r.weight, rs.weight),
            upper: differs(r.upper, rs.upper),
            lower: differs(r.lower, rs.lower),
            fwd: (r.fwd != rs.fwd).then_some(rs.fwd),
        };
        if change == RealServerEdit::default() {
            return Ok(());
        }
        *r = rs.clone();
        w.ops.push_back(Op::EditRs(*service, rs.addr, change));
        w.status.pending = w.ops.len();
        drop(w);
        self.shared.cv.notify_all();
        Ok(())
    }

    fn set_snat(&self, rules: &[ctl::SnatSpec]) -> Result<(), DataplaneError> {
        tracing::info!(count = rules.len(), "SNAT rules");
        self.push(Op::Snat, |w| {
            w.snat = rules.to_vec();
            w.snat_set = true;
        });
        Ok(())
    }

    fn set_sync_roles(&self, roles: SyncRoles, why: &str) -> Result<(), DataplaneError> {
        tracing::info!(
            master = roles.master,
            backup = roles.backup,
            syncid = roles.syncid,
            "{why}: connection-sync roles"
        );
        self.push(Op::Sync(roles, why.to_string()), |w| w.sync = Some((roles, why.to_string())));
        Ok(())
    }

    fn set_timeouts(&self, timeouts: LvsTimeouts) -> Result<(), DataplaneError> {
        tracing::info!(tcp = timeouts.tcp, tcpfin = timeouts.tcpfin, udp = timeouts.udp, "lvs_timeouts {timeouts}");
        self.push(Op::Timeouts(timeouts), |w| w.timeouts = Some(timeouts));
        Ok(())
    }

    fn status(&self) -> DataplaneStatus {
        self.shared.lock().status.clone()
    }

    fn watch_addresses(&self, listener: AddressListener) -> bool {
        self.shared.reports.set(listener);
        true
    }
}

/// An edit of a real server for messages: `lvs_method DR uthreshold 10`.
fn edit_words(c: &RealServerEdit) -> String {
    let mut out = Vec::new();
    if let Some(f) = c.fwd {
        out.push(format!("lvs_method {}", f.lb_kind()));
    }
    for (word, v) in [("weight", c.weight), ("uthreshold", c.upper), ("lthreshold", c.lower)] {
        if let Some(v) = v {
            out.push(format!("{word} {v}"));
        }
    }
    out.join(" ")
}

fn no_rs(key: &ServiceKey, rs: SocketAddr) -> DataplaneError {
    DataplaneError::Failed(format!("service {}: no real server {rs}", core_key(key)))
}

/// rvsd's key for a service (a fwmark service's too: [`ServiceKey::of_fwmark`] is
/// rvsd's [`fnat::service::ServiceKey::of_fwmark`]).
pub fn core_key(k: &ServiceKey) -> fnat::service::ServiceKey {
    fnat::service::ServiceKey {
        proto: match k.proto {
            Proto::Tcp => fnat::types::Proto::Tcp,
            Proto::Udp => fnat::types::Proto::Udp,
        },
        vip: k.vip,
        vport: k.vport,
        fwmark: k.fwmark,
    }
}

/// A SNAT rule's name for messages (its match when it has none).
fn snat_name(r: &ctl::SnatSpec) -> String {
    r.name.clone().unwrap_or_else(|| r.match_text())
}

/// A netmask as a prefix length.
fn prefix_len(mask: IpAddr) -> Option<u8> {
    let (ones, lead) = match mask {
        IpAddr::V4(m) => (u32::from(m).count_ones(), u32::from(m).leading_ones()),
        IpAddr::V6(m) => (u128::from(m).count_ones(), u128::from(m).leading_ones()),
    };
    (ones == lead).then_some(ones as u8)
}

/// rvsd's form of a service (without the check of its local addresses).
pub fn to_spec(s: &Service) -> Result<ServiceSpec, String> {
    let key = core_key(&s.key);
    let sched: SchedKind = s
        .scheduler
        .parse()
        .map_err(|e| format!("virtual_server {key}: lb_algo {}: rvsd does not support it: {e}", s.scheduler))?;
    let mut cfg = ServiceConfig::with_key(key);
    cfg.sched = sched;
    if let Some(t) = s.persistence_timeout.filter(|t| *t > 0) {
        let mut p = PersistConfig { timeout_s: t, ..PersistConfig::default() };
        if let Some(m) = s.persistence_granularity {
            let len = prefix_len(m)
                .ok_or_else(|| format!("virtual_server {key}: persistence_granularity {m} is not a netmask"))?;
            match m {
                IpAddr::V4(_) => p.netmask_v4 = len,
                IpAddr::V6(_) => p.netmask_v6 = len,
            }
        }
        cfg.persistence = Some(p);
    }
    cfg.real_servers = s.real_servers.iter().map(rs_config).collect();
    if s.syn_proxy.is_some() && key.proto != fnat::types::Proto::Tcp {
        return Err(format!("virtual_server {key}: syn_proxy is for TCP services"));
    }
    cfg.synproxy = s.syn_proxy;
    if s.proxy_protocol == Some(fnat::service::ProxyProtocol::V1) && key.proto != fnat::types::Proto::Tcp {
        return Err(format!("virtual_server {key}: proxy_protocol v1 speaks of TCP only (UDP services take v2)"));
    }
    cfg.proxy_protocol = s.proxy_protocol;
    if let Some(f) = s.sched_flags {
        (cfg.hash_port, cfg.hash_fallback) = (f.port, f.fallback);
    }
    cfg.deny = s.deny.clone();
    cfg.allow = s.allow.clone();
    cfg.conn_timeout = s.conn_timeout;
    cfg.dest_check = s.dest_check;
    cfg.expire_quiescent = s.expire_quiescent;
    cfg.ops = s.ops;
    Ok(ServiceSpec { service: cfg, laddrs: s.local_addrs.iter().map(|l| l.addr).collect() })
}

fn rs_config(r: &RealServer) -> RealServerConfig {
    RealServerConfig {
        addr: r.addr.ip(),
        port: r.addr.port(),
        weight: r.weight,
        upper: r.upper,
        lower: r.lower,
        fwd: r.fwd,
    }
}

/// A service in a form where equal means "rvsd needs no change": real servers' port 0
/// as the virtual port (as rvsd stores it), real servers and local addresses in a
/// canonical order.
fn canonical(spec: &ServiceSpec) -> ServiceSpec {
    let mut s = spec.clone();
    let vport = s.service.vport;
    for r in &mut s.service.real_servers {
        r.port = ctl::verbs::effective_port(r.port, vport);
    }
    s.service.real_servers.sort_by_key(|r| (r.addr, r.port));
    s.laddrs.sort();
    s.service.deny.sort();
    s.service.allow.sort();
    s
}

fn view_spec(v: &ServiceView) -> ServiceSpec {
    ServiceSpec { service: v.service.clone(), laddrs: v.laddrs.clone() }
}

/// Why an exchange failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    /// The connection is gone (dropped; reconnection and reconciliation are due).
    Io,
    /// rvsd refused (logged; reconciliation is due).
    Refused,
}

/// A failed exchange, before judging it.
enum Exchange {
    /// The connection is gone (already dropped and logged).
    Io,
    /// rvsd refused, with its code and message.
    Refused(ErrorCode, String),
}

/// Whether rvsd's refusal says a service's VIP must be one of its addresses.
fn needs_vip(message: &str) -> bool {
    message.contains("VIP") && message.contains("is not an address of any port")
}

struct Worker {
    shared: Arc<Shared>,
    path: PathBuf,
    client: Option<Client>,
    /// Whether a whole reconciliation is due (on connection, after a refusal).
    resync: bool,
    /// No ServiceReplace yet: services rvsd has that keepalived.conf does not are dropped
    /// by the first one (keepalived.conf is the whole truth at start); later ones keep
    /// services others added.
    first: bool,
    /// The services of keepalived.conf as last loaded (rvsd's keys): one the file drops
    /// on reload is unloaded, not taken for a service another tool added. Forgotten
    /// when rvsd restarts (see `rvsd_started`).
    mine: HashSet<fnat::service::ServiceKey>,
    /// When the rvsd last connected to started (`Status`'s `started_ns`; 0 unknown): a
    /// new value is a new process, which holds none of what this agent loaded, only
    /// rvsd.toml's. What `mine` and `snat_added` remember is then forgotten, so that a
    /// service or rule that keepalived.conf dropped while rvsd was away, and that the
    /// restarted rvsd has from rvsd.toml, is kept as rvsd's own instead of deleted.
    rvsd_started: u64,
    /// When that rvsd last built its state from rvsd.toml (`Status`'s `loaded_ns`; 0
    /// unknown): a new value is a SIGHUP, which replaced what this agent loaded (but
    /// its leased VIPs) with the file's, as a restart does; the idle check asks.
    rvsd_loaded: u64,
    /// When rvsd was last asked when it started and loaded its file.
    identified_at: Instant,
    /// Whether rvsd needs a service's VIP to exist (learnt from its refusal; probed
    /// again on every connection).
    follow_vips: bool,
    /// With `follow_vips`: the VIPs whose services rvsd holds (as far as this thread did).
    loaded: HashSet<IpAddr>,
    /// When to try again (connection or reconciliation).
    retry_at: Instant,
    /// Last successful exchange.
    last_ok: Instant,
    /// Errors logged since the last clean reconciliation.
    logged: HashSet<String>,
    last_error: Option<String>,
    /// Connections made.
    connections: u64,
    /// The SNAT rules this agent added to rvsd (by match) and has not deleted: the only
    /// ones it deletes when keepalived.conf no longer has them.
    snat_added: Vec<ctl::SnatSpec>,
    /// The connection-sync roles last asked of rvsd on this connection (accepted or not).
    sync_applied: Option<SyncRoles>,
    /// rvsd's latest refusal of a sync role change, until one is accepted.
    sync_error: Option<String>,
    /// The global timeouts last asked of rvsd on this connection (accepted or not).
    timeouts_applied: Option<LvsTimeouts>,
    /// The held VIPs whose leases this connection holds (it added them, or took them
    /// over from an earlier connection whose close rvsd may not have seen yet, so that
    /// that close does not remove them) or found no lease on: each taken over once per
    /// connection.
    leases_taken: HashSet<IpAddr>,
    /// Per timeout (`[tcp, tcpfin, udp]`), the value the agent set in rvsd and has not put
    /// back (0: none).
    timeouts_sent: [u32; 3],
    /// Per timeout, rvsd's own value (read before the agent changed it): what a timeout
    /// the file no longer sets is put back to.
    timeouts_own: [Option<u32>; 3],
    /// The servers rvsd's passive check held out at the last look, and when to look again.
    held_out: Vec<HeldOut>,
    held_out_at: Instant,
}

/// How often rvsd's services are listed, while one has `dest_check`, for the servers its
/// passive check holds out (`rvs-agent status`).
const HELD_OUT_INTERVAL: Duration = Duration::from_secs(2);

/// The names of `lvs_timeouts`' timeouts, in [`LvsTimeouts::to_array`]'s order.
const TIMEOUT_NAMES: [&str; 3] = ["tcp", "tcpfin", "udp"];

impl Worker {
    fn new(shared: Arc<Shared>, path: PathBuf) -> Worker {
        let now = Instant::now();
        Worker {
            shared,
            path,
            client: None,
            resync: true,
            first: true,
            mine: HashSet::new(),
            rvsd_started: 0,
            rvsd_loaded: 0,
            identified_at: Instant::now(),
            follow_vips: false,
            loaded: HashSet::new(),
            retry_at: now,
            last_ok: now,
            logged: HashSet::new(),
            last_error: None,
            connections: 0,
            snat_added: Vec::new(),
            sync_applied: None,
            sync_error: None,
            timeouts_applied: None,
            leases_taken: HashSet::new(),
            timeouts_sent: [0; 3],
            timeouts_own: [None; 3],
            held_out: Vec::new(),
            held_out_at: now,
        }
    }

    fn run(mut self) {
        loop {
            let (ops, stop) = self.wait();
            if stop && ops.is_empty() {
                break;
            }
            self.step(ops);
            self.publish();
            if stop {
                break;
            }
        }
    }

    /// Waits for queued changes, or until a retry or a check is due.
    fn wait(&mut self) -> (Vec<Op>, bool) {
        let mut w = self.shared.lock();
        loop {
            if !w.ops.is_empty() || w.stop {
                let ops: Vec<Op> = w.ops.drain(..).collect();
                return (ops, w.stop);
            }
            let now = Instant::now();
            // While a refused reconciliation waits for its retry, rvsd is still asked
            // every second whether it read its file again.
            let due = match (self.client.is_none(), self.resync) {
                (true, _) => self.retry_at,
                (false, true) => self.retry_at.min(self.identified_at + IDENTIFY_EVERY),
                (false, false) => self.last_ok + PING_INTERVAL,
            };
            if now >= due {
                return (Vec::new(), false);
            }
            w = self.shared.cv.wait_timeout(w, due - now).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn publish(&mut self) {
        let mut w = self.shared.lock();
        w.status.connected = self.client.is_some();
        w.status.last_error = self.last_error.clone();
        w.status.pending = w.ops.len();
        w.status.services_follow_vips = self.follow_vips;
        w.status.reconnects = self.connections.saturating_sub(1);
        w.status.sync_error = self.sync_error.clone();
        w.status.held_out = self.held_out.clone();
    }

    /// Lists rvsd's services for the real servers its passive check holds out, when a
    /// service has the check and the last look is [`HELD_OUT_INTERVAL`] old.
    fn look_for_held_out(&mut self) -> Result<(), Fail> {
        if Instant::now() < self.held_out_at {
            return Ok(());
        }
        self.held_out_at = Instant::now() + HELD_OUT_INTERVAL;
        let checked: Vec<Service> =
            self.shared.lock().services.iter().filter(|s| s.dest_check.is_some()).cloned().collect();
        if checked.is_empty() {
            self.held_out.clear();
            return Ok(());
        }
        let Some(views) = self.list_services()? else { return Ok(()) };
        self.held_out = checked
            .iter()
            .flat_map(|s| {
                let key = core_key(&s.key);
                let view = views.iter().find(|v| v.service.key() == key);
                s.real_servers
                    .iter()
                    .filter(move |r| {
                        view.is_some_and(|v| {
                            v.dests.iter().any(|d| {
                                d.inhibited
                                    && d.config.addr == r.addr.ip()
                                    && ctl::verbs::effective_port(d.config.port, s.key.vport)
                                        == ctl::verbs::effective_port(r.addr.port(), s.key.vport)
                            })
                        })
                    })
                    .map(|r| HeldOut { service: s.key, rs: r.addr })
                    .collect::<Vec<_>>()
            })
            .collect();
        Ok(())
    }

    fn step(&mut self, ops: Vec<Op>) {
        if self.client.is_none() && !self.connect() {
            // Everything but announcements is in the wanted state, applied on reconnection.
            return;
        }
        // Whether rvsd read its file again (then everything is reconciled at once),
        // every second whatever else goes on.
        if self.identified_at.elapsed() >= IDENTIFY_EVERY && !self.identify() {
            return;
        }
        if self.resync && ops.is_empty() && Instant::now() < self.retry_at {
            // Woken to ask rvsd (above), not yet to retry the refused reconciliation:
            // the idle check still runs (`ha_suspend` follows the addresses).
            if self.list_addresses().is_ok() {
                let _ = self.look_for_held_out();
            }
            return;
        }
        if self.resync {
            match self.reconcile() {
                Ok(()) => self.resync = false,
                Err(Fail::Io) => return,
                Err(Fail::Refused) => self.retry_at = Instant::now() + REFUSED_RETRY,
            }
            // State changes are covered by the reconciliation; announcements are not.
            for op in ops {
                if let Op::Garp(..) = op {
                    if self.apply(op) == Err(Fail::Io) {
                        return;
                    }
                }
            }
            return;
        }
        if ops.is_empty() {
            // The idle check lists the addresses: `ha_suspend` follows them; and the
            // services now and then, for what the passive check holds out.
            if self.list_addresses().is_ok() {
                let _ = self.look_for_held_out();
            }
            return;
        }
        for op in ops {
            match self.apply(op) {
                Ok(()) => {}
                Err(Fail::Io) => return,
                Err(Fail::Refused) => {
                    self.resync = true;
                    self.retry_at = Instant::now() + REFUSED_RETRY;
                }
            }
        }
    }

    fn connect(&mut self) -> bool {
        match Client::connect(&self.path) {
            Ok(c) => {
                tracing::info!(socket = %self.path.display(), "connected to rvsd");
                self.client = Some(c);
                self.connections += 1;
                self.resync = true;
                self.follow_vips = false;
                self.loaded.clear();
                // A restarted rvsd runs its [sync]'s roles: the wanted ones are asked again;
                // and starts with rvsd.toml's timeouts: the wanted ones are set again.
                self.sync_applied = None;
                self.timeouts_applied = None;
                self.leases_taken.clear();
                self.last_ok = Instant::now();
                self.identify()
            }
            Err(e) => {
                self.error(format!("rvsd unreachable: {e} (retrying every {RETRY_INTERVAL:?})"));
                self.retry_at = Instant::now() + RETRY_INTERVAL;
                false
            }
        }
    }

    /// Asks rvsd when it started and when it last read rvsd.toml: a restarted rvsd
    /// holds nothing this agent loaded, and a reloaded one (SIGHUP) holds the file's
    /// state instead (but for the agent's leased VIPs), so what the agent remembers
    /// loading is forgotten; after a reload, the whole state is reconciled again at once.
    /// Whether the connection still stands.
    fn identify(&mut self) -> bool {
        self.identified_at = Instant::now();
        let (started, loaded) = match self.exchange("status", Request::Status {}) {
            Ok(Response::Status { started_ns, loaded_ns, .. }) => (started_ns, loaded_ns),
            Err(Exchange::Io) => return false,
            // An rvsd that does not say: nothing is forgotten.
            Ok(_) | Err(Exchange::Refused(..)) => (0, 0),
        };
        let changed = |now: u64, was: u64| now != 0 && was != 0 && now != was;
        if changed(started, self.rvsd_started) {
            tracing::info!(
                services = self.mine.len(),
                snat = self.snat_added.len(),
                "rvsd restarted: what the agent loaded before is no longer there; what the restarted rvsd \
                 holds and keepalived.conf does not is kept as rvsd's own"
            );
            self.forget_loaded();
        } else if changed(loaded, self.rvsd_loaded) {
            tracing::info!(
                services = self.mine.len(),
                snat = self.snat_added.len(),
                "rvsd read rvsd.toml again (SIGHUP), which replaced what the agent loaded: loading it again; \
                 what rvsd holds from the file and keepalived.conf does not is kept as rvsd's own"
            );
            self.forget_loaded();
            self.resync = true;
            // At once, even while a refused reconciliation waits for its retry.
            self.retry_at = Instant::now();
        }
        if started != 0 {
            (self.rvsd_started, self.rvsd_loaded) = (started, loaded);
        }
        true
    }

    /// Forgets what this agent loaded into an rvsd whose state was rebuilt from its file,
    /// and the timeouts it set there (a reload does not touch the sync roles; a restart,
    /// a new connection, asks them again anyway).
    fn forget_loaded(&mut self) {
        self.mine.clear();
        self.snat_added.clear();
        self.loaded.clear();
        self.timeouts_applied = None;
    }

    /// Logs an error once (until the next clean reconciliation) and shows it in status.
    fn error(&mut self, msg: String) {
        if self.logged.insert(msg.clone()) {
            tracing::error!("{msg}");
        } else {
            tracing::debug!("{msg}");
        }
        self.last_error = Some(msg);
    }

    /// One request. A broken connection is dropped (and logged): reconnection and
    /// reconciliation follow.
    fn exchange(&mut self, what: &str, req: Request) -> Result<Response, Exchange> {
        let Some(c) = self.client.as_mut() else { return Err(Exchange::Io) };
        tracing::debug!(?req, "rvsd request");
        match c.call(req) {
            Ok(r) => {
                self.last_ok = Instant::now();
                Ok(r)
            }
            Err(CtlError::Remote { code, message }) => {
                self.last_ok = Instant::now();
                Err(Exchange::Refused(code, message))
            }
            Err(e) => {
                self.client = None;
                self.resync = true;
                self.retry_at = Instant::now();
                self.error(format!("{what}: connection to rvsd lost: {e}"));
                Err(Exchange::Io)
            }
        }
    }

    /// One request; `fine` error codes count as success (`Ok(None)`), others are logged.
    /// rvsd's services, page by page (any number of them fits), all of one generation
    /// (a change while listing starts it again, a few times at most); `None` after an
    /// error was reported.
    fn list_services(&mut self) -> Result<Option<Vec<ServiceView>>, Fail> {
        'again: for _ in 0..5 {
            let (mut all, mut from, mut first_gen) = (Vec::new(), 0u32, None);
            loop {
                match self.call("list services", Request::ServicePage { stats: false, from, max: None }, &[])? {
                    Some(Response::ServicePage { services, next, gen }) => {
                        if *first_gen.get_or_insert(gen) != gen {
                            continue 'again;
                        }
                        all.extend(services);
                        match next {
                            Some(n) if n > from => from = n,
                            _ => return Ok(Some(all)),
                        }
                    }
                    // An rvsd from before paging answers with the whole list.
                    Some(Response::Services { services }) => return Ok(Some(services)),
                    other => {
                        self.error(format!("list services: unexpected reply {other:?}"));
                        return Ok(None);
                    }
                }
            }
        }
        self.error("list services: the services kept changing while being listed".into());
        Ok(None)
    }

    fn call(&mut self, what: &str, req: Request, fine: &[ErrorCode]) -> Result<Option<Response>, Fail> {
        match self.exchange(what, req) {
            Ok(r) => Ok(Some(r)),
            Err(Exchange::Io) => Err(Fail::Io),
            Err(Exchange::Refused(code, message)) if fine.contains(&code) => {
                tracing::debug!("{what}: {message} (fine)");
                Ok(None)
            }
            Err(Exchange::Refused(code, message)) => {
                self.error(format!("{what}: rvsd refused ({}): {message}", code.name()));
                Err(Fail::Refused)
            }
        }
    }

    /// rvsd says a service's VIP must be one of its addresses: from now on a VIP's
    /// services come and go with it.
    fn learn_follow(&mut self, message: &str) {
        tracing::warn!(
            "rvsd refuses services whose VIP it does not hold ({message}); services are loaded with \
             their VIP on becoming master and removed before it on leaving"
        );
        self.follow_vips = true;
    }

    fn unload_services_of(&mut self, vip: IpAddr) -> Result<(), Fail> {
        self.loaded.remove(&vip);
        for s in self.services_of(vip) {
            let key = core_key(&s.key);
            self.call(&format!("unload service {key}"), Request::ServiceDel { key }, &[ErrorCode::NotFound])?;
        }
        Ok(())
    }

    /// Removes a VIP (its services first when they follow it).
    fn remove_vip(&mut self, ip: IpAddr, dev: &str) -> Result<(), Fail> {
        if self.follow_vips {
            self.unload_services_of(ip)?;
        }
        let kind = addr_kind(self.shared.lock().moves_with_vip(ip));
        let what = format!("remove {kind} {ip} from {dev}");
        let req = || Request::AddrDel { dev: dev.to_string(), addr: ip };
        match self.exchange(&what, req()) {
            Ok(_) | Err(Exchange::Refused(ErrorCode::NotFound, _)) => Ok(()),
            Err(Exchange::Io) => Err(Fail::Io),
            Err(Exchange::Refused(ErrorCode::Invalid, m)) if !self.follow_vips && needs_vip(&m) => {
                self.learn_follow(&m);
                self.unload_services_of(ip)?;
                self.call(&what, req(), &[ErrorCode::NotFound]).map(|_| ())
            }
            Err(Exchange::Refused(code, message)) => {
                self.error(format!("{what}: rvsd refused ({}): {message}", code.name()));
                Err(Fail::Refused)
            }
        }
    }

    /// The services of the VIP `vip` (a fwmark service has no VIP: it is nobody's).
    fn services_of(&self, vip: IpAddr) -> Vec<Service> {
        self.shared.lock().services.iter().filter(|s| !s.key.is_fwmark() && s.key.vip == vip).cloned().collect()
    }

    /// A real-server change may find no service: fine when it is not loaded because its
    /// VIP is not held (the wanted state has the change for when it is). A fwmark service,
    /// which has no VIP to follow, is always loaded.
    fn absent_ok(&self, key: &ServiceKey) -> &'static [ErrorCode] {
        if self.follow_vips && !key.is_fwmark() && !self.loaded.contains(&key.vip) {
            &[ErrorCode::NotFound]
        } else {
            &[]
        }
    }

    fn apply(&mut self, op: Op) -> Result<(), Fail> {
        let follow = self.follow_vips;
        match op {
            Op::AddVip(net, dev) => {
                // A LIP that moves with the VIPs is added as a sapool address.
                let lip = self.shared.lock().moves_with_vip(net.addr());
                let what = format!("add {} {net} to {dev}", addr_kind(lip));
                let req = Request::AddrAdd { dev, addr: net, sapool: lip, lease: true };
                let added = self.call(&what, req, &[ErrorCode::Exists])?;
                // This connection's lease now (added, or taken over), or none's to take.
                self.leases_taken.insert(net.addr());
                if added.is_none() && lip {
                    // rvsd has it already: reconciliation checks it is a sapool address.
                    self.resync = true;
                    self.retry_at = Instant::now();
                }
                if follow {
                    for s in self.services_of(net.addr()) {
                        let spec = match to_spec(&s) {
                            Ok(spec) => spec,
                            Err(e) => {
                                self.error(e);
                                return Err(Fail::Refused);
                            }
                        };
                        let what = format!("load service {}", core_key(&s.key));
                        if self.call(&what, Request::ServiceAdd(spec), &[ErrorCode::Exists])?.is_none() {
                            // Already there, maybe stale: compare everything.
                            return Err(Fail::Refused);
                        }
                    }
                    self.loaded.insert(net.addr());
                }
            }
            Op::DelVip(net, dev) => self.remove_vip(net.addr(), &dev)?,
            Op::Garp(addr, dev, count) => {
                // rvsd announces only addresses the port holds: one it refused to add was
                // said so then; a held VIP removed behind the agent's back is put back by
                // reconciling.
                let what = format!("announce {addr} on {dev}");
                let req = Request::SendGarp { addr, dev, count: count.clamp(1, 100) };
                if self.call(&what, req, &[ErrorCode::Invalid])?.is_none()
                    && self.shared.lock().held.contains_key(&addr)
                {
                    self.error(format!("{what}: rvsd does not hold it; reconciling"));
                    return Err(Fail::Refused);
                }
            }
            Op::Services => {
                self.resync = true;
                return self.reconcile().map(|()| self.resync = false);
            }
            Op::Weight(key, rs, weight) => {
                let absent = self.absent_ok(&key);
                let key = core_key(&key);
                let change = RealServerEdit { weight: Some(weight), ..Default::default() };
                let req = Request::RealServerEdit { key, addr: rs.ip(), port: rs.port(), change };
                self.call(&format!("service {key}: set {rs} weight {weight}"), req, absent)?;
            }
            Op::AddRs(key, rs) => {
                let absent = self.absent_ok(&key);
                let ck = core_key(&key);
                let what = format!("service {ck}: add real server {}", rs.addr);
                let fine = [absent, &[ErrorCode::Exists]].concat();
                let req = Request::RealServerAdd { key: ck, rs: rs_config(&rs) };
                if self.call(&what, req, &fine)?.is_none() {
                    let change = RealServerEdit { weight: Some(rs.weight), fwd: Some(rs.fwd), ..Default::default() };
                    let req = Request::RealServerEdit { key: ck, addr: rs.addr.ip(), port: rs.addr.port(), change };
                    self.call(&what, req, &[ErrorCode::NotFound])?;
                }
            }
            Op::AddRoute(route) => {
                let what = format!("add static route {}", route.prefix);
                self.call(&what, Request::RouteAdd(route), &[ErrorCode::Exists])?;
            }
            Op::DelRoute(route) => {
                let what = format!("remove route {}", route.prefix);
                let req = Request::RouteDel { prefix: route.prefix, metric: Some(route.metric) };
                self.call(&what, req, &[ErrorCode::NotFound])?;
            }
            Op::EditRs(key, rs, change) => {
                let absent = self.absent_ok(&key);
                let key = core_key(&key);
                let what = format!("service {key}: real server {rs}: {}", edit_words(&change));
                let req = Request::RealServerEdit { key, addr: rs.ip(), port: rs.port(), change };
                self.call(&what, req, absent)?;
            }
            Op::DelRs(key, rs) => {
                let key = core_key(&key);
                let req = Request::RealServerDel { key, addr: rs.ip(), port: rs.port() };
                self.call(&format!("service {key}: remove real server {rs}"), req, &[ErrorCode::NotFound])?;
            }
            Op::Snat => {
                let snat = self.shared.lock().snat.clone();
                if self.reconcile_snat(&snat)? {
                    return Err(Fail::Refused);
                }
            }
            Op::Sync(roles, why) => self.apply_sync(roles, &why)?,
            // Asked already on this connection (by the reconciliation that found it).
            Op::Timeouts(timeouts) if self.timeouts_applied == Some(timeouts) => {}
            Op::Timeouts(timeouts) => self.apply_timeouts(timeouts)?,
        }
        Ok(())
    }

    /// Asks rvsd for the global `timeouts` (see the module documentation): reads rvsd's
    /// values (`TimeoutsGet`), then sets the file's and puts back rvsd's own of those the
    /// agent changed and the file no longer sets (`TimeoutsSet`, 0 for the others). A
    /// refusal is logged with rvsd's message and is not an error here (nothing is retried
    /// until the next change or connection); only a lost connection is.
    fn apply_timeouts(&mut self, timeouts: LvsTimeouts) -> Result<(), Fail> {
        self.timeouts_applied = Some(timeouts);
        let want = timeouts.to_array();
        let put_back = |sent: &[u32; 3]| (0..3).any(|i| want[i] == 0 && sent[i] != 0);
        if !timeouts.is_set() && !put_back(&self.timeouts_sent) {
            // Nothing set by the file, nothing changed by the agent: rvsd is not asked.
            return Ok(());
        }
        match self.exchange("lvs_timeouts: read rvsd's timeouts", Request::TimeoutsGet {}) {
            Ok(Response::Timeouts { timeouts: t }) => {
                let now = [t.established, t.fin_wait, t.udp];
                for ((now, sent), own) in now.into_iter().zip(&mut self.timeouts_sent).zip(&mut self.timeouts_own) {
                    // Not the agent's value: rvsd's own (never changed by the agent, rvsd
                    // restarted since, or `rvsadm --set`).
                    if *sent == 0 || now != *sent {
                        *own = Some(now);
                        *sent = 0;
                    }
                }
            }
            Ok(other) => tracing::warn!("lvs_timeouts: read rvsd's timeouts: unexpected reply {other:?}"),
            Err(Exchange::Io) => return Err(Fail::Io),
            Err(Exchange::Refused(code, message)) => {
                tracing::warn!("lvs_timeouts: read rvsd's timeouts: rvsd refused ({}): {message}", code.name());
            }
        }
        let mut req = [0u32; 3];
        let mut restored = Vec::new();
        for i in 0..3 {
            if want[i] != 0 {
                req[i] = want[i];
            } else if self.timeouts_sent[i] != 0 {
                match self.timeouts_own[i] {
                    Some(own) => {
                        req[i] = own;
                        restored.push(format!("{} {own}", TIMEOUT_NAMES[i]));
                    }
                    None => tracing::warn!(
                        "lvs_timeouts: rvsd's own {} timeout is unknown: it stays {} s",
                        TIMEOUT_NAMES[i],
                        self.timeouts_sent[i]
                    ),
                }
            }
        }
        if req == [0; 3] {
            return Ok(());
        }
        let [tcp, tcpfin, udp] = req;
        match self.exchange("lvs_timeouts: set rvsd's timeouts", Request::TimeoutsSet { tcp, tcpfin, udp }) {
            Ok(_) => {
                let restored = if restored.is_empty() {
                    String::new()
                } else {
                    format!("; put back to rvsd's own: {}", restored.join(" "))
                };
                tracing::info!(tcp, tcpfin, udp, "lvs_timeouts {timeouts}: set in rvsd{restored}");
                self.timeouts_sent = want;
            }
            Err(Exchange::Io) => return Err(Fail::Io),
            Err(Exchange::Refused(code, message)) => {
                tracing::error!(
                    "lvs_timeouts {timeouts}: rvsd refused to set its timeouts (tcp {tcp} tcpfin {tcpfin} udp {udp}) \
                     ({}): {message}",
                    code.name()
                );
            }
        }
        Ok(())
    }

    /// Asks rvsd for connection-sync `roles` (see the module documentation): the requests
    /// that differ from what this connection last asked, stops first. A refusal is logged
    /// once for the change, with rvsd's message, and is not an error here (nothing is
    /// retried until the next change or connection); only a lost connection is.
    fn apply_sync(&mut self, roles: SyncRoles, why: &str) -> Result<(), Fail> {
        let requests = roles.requests(self.sync_applied.as_ref());
        if requests.is_empty() {
            // Asked already on this connection (accepted or not: a refusal stands).
            return Ok(());
        }
        self.sync_applied = Some(roles);
        let syncid = roles.syncid;
        // (what was refused, rvsd's code and message), grouped by message.
        let mut refused: Vec<(Vec<String>, String)> = Vec::new();
        for (role, start) in requests {
            let (verb, done) = if start { ("start", "started") } else { ("stop", "stopped") };
            let what = format!("{verb} the {} role", role.name());
            let req = Request::SyncDaemon { role, start, syncid: Some(syncid), mcast_interface: None };
            match self.exchange(&format!("{why}: {what}"), req) {
                Ok(_) => tracing::info!(role = role.name(), syncid, "{why}: connection-sync role {done} in rvsd"),
                Err(Exchange::Io) => {
                    self.sync_applied = None;
                    return Err(Fail::Io);
                }
                Err(Exchange::Refused(code, message)) => {
                    let message = format!("({}): {message}", code.name());
                    match refused.iter_mut().find(|(_, m)| *m == message) {
                        Some((whats, _)) => whats.push(what),
                        None => refused.push((vec![what], message)),
                    }
                }
            }
        }
        if refused.is_empty() {
            if self.sync_error.take().is_some() {
                tracing::info!(syncid, "{why}: rvsd accepted the connection-sync roles");
            }
            return Ok(());
        }
        let text: Vec<String> = refused
            .iter()
            .map(|(whats, m)| format!("rvsd refused to {} (syncid {syncid}) {m}", whats.join(" and ")))
            .collect();
        let msg = format!("{why}: {}", text.join("; "));
        tracing::error!("{msg}");
        self.sync_error = Some(msg);
        Ok(())
    }

    /// Makes rvsd hold exactly the wanted VIPs and services, reading what it has first.
    fn reconcile(&mut self) -> Result<(), Fail> {
        let (held, released, services, services_set, routes, released_routes, snat, timeouts) = {
            let w = self.shared.lock();
            let routes = (w.routes.clone(), w.released_routes.clone());
            let snat = w.snat_set.then(|| w.snat.clone());
            let t = w.timeouts;
            (w.held.clone(), w.released.clone(), w.services.clone(), w.services_set, routes.0, routes.1, snat, t)
        };
        let mut refused = false;
        let present: HashMap<IpAddr, AddrView> =
            self.list_addresses()?.into_iter().map(|a| (a.addr.addr(), a)).collect();
        // 0. The global timeouts, when this connection has not had them asked (a restarted
        //    rvsd has rvsd.toml's), before the services whose connections they time.
        if let Some(t) = timeouts.filter(|t| self.timeouts_applied != Some(*t)) {
            self.apply_timeouts(t)?;
        }
        let lips = vip_lips(&services);
        // 1. Held VIPs (and LIPs that move with them) first: services may need them.
        let mut announce = Vec::new();
        for (ip, (net, dev)) in &held {
            let lip = lips.contains(ip);
            let kind = addr_kind(lip);
            match present.get(ip) {
                Some(a) if a.dev == *dev && (a.sapool || !lip) => {
                    if !self.leases_taken.contains(ip) {
                        // Held already: an earlier connection's lease, taken over (rvsd
                        // says `Exists` of an address no lease holds: the file's, rvsip's).
                        // Announced again if taken: it may have gone and come back since
                        // the listing (the old connection's close seen in between).
                        let req = Request::AddrAdd { dev: dev.clone(), addr: a.addr, sapool: a.sapool, lease: true };
                        // (A refused one is tried again at the next reconciliation.)
                        match self.call(&format!("take over the lease on {kind} {ip}"), req, &[ErrorCode::Exists]) {
                            Ok(done) => {
                                self.leases_taken.insert(*ip);
                                if done.is_some() {
                                    announce.push((*ip, dev.clone()));
                                }
                            }
                            Err(Fail::Io) => return Err(Fail::Io),
                            Err(Fail::Refused) => refused = true,
                        }
                    }
                }
                Some(a) if a.dev == *dev => {
                    self.error(format!(
                        "local address {ip} moves with the VIPs (virtual_ipaddress) but rvsd holds it without sapool: \
                         left alone; remove it (`rvsip addr del {ip} dev {dev}`) and the agent adds it with sapool"
                    ));
                    refused = true;
                }
                Some(a) => {
                    self.error(format!("{kind} {ip} is an address of {} in rvsd, not of {dev}: left alone", a.dev));
                    refused = true;
                }
                None => {
                    let req = Request::AddrAdd { dev: dev.clone(), addr: *net, sapool: lip, lease: true };
                    match self.call(&format!("add {kind} {net} to {dev}"), req, &[ErrorCode::Exists]) {
                        Ok(_) => {
                            self.leases_taken.insert(*ip);
                            announce.push((*ip, dev.clone()));
                        }
                        Err(Fail::Io) => return Err(Fail::Io),
                        Err(Fail::Refused) => refused = true,
                    }
                }
            }
        }
        // 2. Services.
        if services_set {
            refused |= self.reconcile_services(&services, &present, &held, &released)?;
        }
        // 2b. SNAT rules.
        if let Some(snat) = snat {
            refused |= self.reconcile_snat(&snat)?;
        }
        // 3. Released VIPs (after their services), and released LIPs that move with them
        //    (sapool addresses; other sapool addresses are rvsd's own, left alone).
        for (ip, (_, dev)) in &released {
            if present.get(ip).is_some_and(|a| a.dev == *dev && (!a.sapool || lips.contains(ip))) {
                match self.remove_vip(*ip, dev) {
                    Ok(_) => {}
                    Err(Fail::Io) => return Err(Fail::Io),
                    Err(Fail::Refused) => refused = true,
                }
            }
        }
        // 4. Static routes (rvsd refuses one it has as existing).
        for route in routes {
            let what = format!("add static route {}", route.prefix);
            match self.call(&what, Request::RouteAdd(route), &[ErrorCode::Exists]) {
                Ok(_) => {}
                Err(Fail::Io) => return Err(Fail::Io),
                Err(Fail::Refused) => refused = true,
            }
        }
        // 4b. Released routes (rvsd has none of them after a restart: not found is fine).
        for route in released_routes {
            let what = format!("remove route {}", route.prefix);
            let req = Request::RouteDel { prefix: route.prefix, metric: Some(route.metric) };
            match self.call(&what, req, &[ErrorCode::NotFound]) {
                Ok(_) => {}
                Err(Fail::Io) => return Err(Fail::Io),
                Err(Fail::Refused) => refused = true,
            }
        }
        // 4c. Connection-sync roles, when this connection has not had them asked.
        let sync = self.shared.lock().sync.clone();
        if let Some((roles, why)) = sync.filter(|(r, _)| self.sync_applied != Some(*r)) {
            self.apply_sync(roles, &why)?;
        }
        // 5. VIPs that had to be added again are announced.
        for (ip, dev) in announce {
            let req = Request::SendGarp { addr: ip, dev: dev.clone(), count: REANNOUNCE };
            match self.call(&format!("announce {ip} on {dev}"), req, &[]) {
                Ok(_) => {}
                Err(Fail::Io) => return Err(Fail::Io),
                Err(Fail::Refused) => refused = true,
            }
        }
        if refused {
            return Err(Fail::Refused);
        }
        if self.last_error.take().is_some() {
            tracing::info!("rvsd holds the wanted VIPs and services again");
        }
        self.logged.clear();
        Ok(())
    }

    /// rvsd's addresses, reported to [`Shared::reports`] too.
    fn list_addresses(&mut self) -> Result<Vec<AddrView>, Fail> {
        match self.call("list addresses", Request::AddrList {}, &[])? {
            Some(Response::Addrs { addrs }) => {
                self.shared.reports.report(addrs.iter().map(|a| a.addr.addr()).collect());
                Ok(addrs)
            }
            other => {
                self.error(format!("list addresses: unexpected reply {other:?}"));
                Err(Fail::Refused)
            }
        }
    }

    /// One request of a reconciliation: `Ok(true)` done (or a `fine` refusal), `Ok(false)`
    /// refused (logged), `Err` the connection is gone.
    fn attempt(&mut self, what: &str, req: Request, fine: &[ErrorCode]) -> Result<bool, Fail> {
        match self.call(what, req, fine) {
            Ok(_) => Ok(true),
            Err(Fail::Io) => Err(Fail::Io),
            Err(Fail::Refused) => Ok(false),
        }
    }

    /// Makes rvsd's SNAT rules agree with keepalived.conf's `wanted` (see the module
    /// documentation). Returns whether something was refused.
    fn reconcile_snat(&mut self, wanted: &[ctl::SnatSpec]) -> Result<bool, Fail> {
        if wanted.is_empty() && self.snat_added.is_empty() {
            return Ok(false);
        }
        let current = match self.call("list SNAT rules", Request::SnatList {}, &[])? {
            Some(Response::Snat { rules }) => rules,
            other => {
                self.error(format!("list SNAT rules: unexpected reply {other:?}"));
                return Ok(true);
            }
        };
        let mut refused = false;
        // 1. Rules this agent added that the file no longer has (first: a new rule may
        //    take a deleted one's name).
        let gone: Vec<ctl::SnatSpec> =
            self.snat_added.iter().filter(|a| !wanted.iter().any(|w| w.same_match(a))).cloned().collect();
        for r in gone {
            if current.iter().any(|c| c.same_match(&r)) {
                let what = format!("delete SNAT rule {} ({})", snat_name(&r), r.match_text());
                if !self.attempt(&what, Request::SnatDel { rule: r.clone() }, &[ErrorCode::NotFound])? {
                    refused = true;
                    continue;
                }
                tracing::info!(rule = snat_name(&r), "SNAT rule deleted from rvsd");
            }
            self.snat_added.retain(|a| !a.same_match(&r));
        }
        // 2. The file's rules: added, or their WAN addresses made the file's.
        for w in wanted {
            let name = snat_name(w);
            if let Some(a) = self.snat_added.iter_mut().find(|a| a.same_match(w)) {
                a.clone_from(w);
            }
            let Some(have) = current.iter().find(|c| c.same_match(w)) else {
                let what = format!("add SNAT rule {name} ({})", w.match_text());
                if self.attempt(&what, Request::SnatAdd { rule: w.clone() }, &[])? {
                    tracing::info!(rule = name, wan = w.wan.len(), "SNAT rule added to rvsd");
                    if !self.snat_added.iter().any(|a| a.same_match(w)) {
                        self.snat_added.push(w.clone());
                    }
                } else {
                    refused = true;
                }
                continue;
            };
            let adds = w.wan.iter().filter(|ip| !have.wan.contains(ip)).map(|ip| (*ip, true));
            let removes = have.wan.iter().filter(|ip| !w.wan.contains(ip)).map(|ip| (*ip, false));
            for (wan, add) in adds.chain(removes).collect::<Vec<_>>() {
                let (verb, fine) = if add { ("add", ErrorCode::Exists) } else { ("remove", ErrorCode::NotFound) };
                let what = format!("SNAT rule {name}: {verb} WAN address {wan}");
                let req = Request::SnatWan { rule: w.clone(), wan, add };
                if self.attempt(&what, req, &[fine])? {
                    tracing::info!(rule = name, %wan, add, "SNAT rule's WAN address changed in rvsd");
                } else {
                    refused = true;
                }
            }
        }
        Ok(refused)
    }

    /// Returns whether something was refused.
    fn reconcile_services(
        &mut self,
        services: &[Service],
        present: &HashMap<IpAddr, AddrView>,
        held: &BTreeMap<IpAddr, (IpNet, String)>,
        released: &BTreeMap<IpAddr, (IpNet, String)>,
    ) -> Result<bool, Fail> {
        let mut refused = false;
        let mut specs = Vec::new();
        // A LIP that moves with the VIPs is in rvsd only on the master: a backup loads the
        // service without it (rvsd keeps it in standby until the address is added).
        let lips = vip_lips(services);
        for s in services {
            let spec = match to_spec(s) {
                Ok(spec) => spec,
                Err(e) => {
                    self.error(e);
                    refused = true;
                    continue;
                }
            };
            let key = spec.service.key();
            let bad: Vec<String> = spec
                .laddrs
                .iter()
                .filter(|l| match present.get(l) {
                    Some(a) => !a.sapool,
                    None => !lips.contains(l),
                })
                .map(|l| {
                    let port = s.local_addrs.iter().find(|x| x.addr == *l).map_or("", |x| x.port_name.as_str());
                    let port = if port.is_empty() { "DEV" } else { port };
                    if lips.contains(l) {
                        return format!(
                            "virtual_server {key}: local address {l} moves with the VIPs (virtual_ipaddress) but rvsd \
                             holds it without sapool; remove it (`rvsip addr del {l} dev {port}`) and the agent adds \
                             it with sapool"
                        );
                    }
                    format!(
                        "virtual_server {key}: local address {l} (local_address_group) is not a sapool address of rvsd; \
                         add it to rvsd's configuration ([[addr]] with sapool = true) or `rvsip addr add {l}/LEN dev {port} sapool`"
                    )
                })
                .collect();
            if !bad.is_empty() {
                bad.into_iter().for_each(|m| self.error(m));
                refused = true;
                continue;
            }
            specs.push(spec);
        }
        let Some(current) = self.list_services()? else { return Ok(true) };
        let managed: HashSet<_> = services.iter().map(|s| core_key(&s.key)).collect();
        let others: Vec<ServiceSpec> = if self.first {
            Vec::new()
        } else {
            let theirs = |k: &fnat::service::ServiceKey| !managed.contains(k) && !self.mine.contains(k);
            current.iter().filter(|v| theirs(&v.service.key())).map(view_spec).collect()
        };
        let have: BTreeMap<_, _> = current.iter().map(|v| (v.service.key(), canonical(&view_spec(v)))).collect();
        loop {
            let follow = self.follow_vips;
            // A fwmark service has no VIP: it is loaded whatever the VIPs do.
            let with_vip = |s: &ServiceConfig| {
                let vip = &s.vip;
                s.fwmark != 0 || (present.contains_key(vip) || held.contains_key(vip)) && !released.contains_key(vip)
            };
            let mut want: Vec<ServiceSpec> =
                specs.iter().filter(|s| !follow || with_vip(&s.service)).cloned().collect();
            want.extend(others.iter().cloned());
            let want_map: BTreeMap<_, _> = want.iter().map(|s| (s.service.key(), canonical(s))).collect();
            if want_map == have {
                self.loaded = want.iter().map(|s| s.service.vip).collect();
                break;
            }
            let n = want.len();
            let vips: HashSet<IpAddr> = want.iter().map(|s| s.service.vip).collect();
            match self.exchange("load services", Request::ServiceReplace { services: want, snat: None }) {
                Ok(_) => {
                    self.loaded = vips;
                    tracing::info!(services = n, "services loaded into rvsd");
                    break;
                }
                Err(Exchange::Io) => return Err(Fail::Io),
                Err(Exchange::Refused(ErrorCode::Invalid, m)) if !follow && needs_vip(&m) => self.learn_follow(&m),
                Err(Exchange::Refused(code, message)) => {
                    self.error(format!("load services: rvsd refused ({}): {message}", code.name()));
                    return Ok(true);
                }
            }
        }
        self.first = false;
        self.mine = managed;
        Ok(refused)
    }
}

#[cfg(test)]
mod tests;
