//! The trait through which the agent drives rvsd, and three implementations:
//! [`RvsdDataplane`], rvsd's control socket (the binary's default); an in-memory
//! [`FakeDataplane`] that records every call (tests); and [`LinuxDataplane`], which puts
//! VIPs on a Linux interface with `ip addr` and only logs services (VRRP without rvsd:
//! `rvs-agent --dataplane linux`, as the keepalived interop tests run it).
//!
//! The trait maps one to one onto rvsd's control socket: VIPs are addresses on a named DPDK
//! port (`dpip addr add VIP dev dpdk0`), gratuitous ARP / unsolicited NA is sent by rvsd from
//! that port, services are `(proto, vip, vport)` or a firewall mark (`ipvsadm -f`) with a
//! scheduler, persistence, FullNAT local addresses and real servers `(addr, port, weight)`
//! (`ipvsadm -A/-a`, DPVS `-P`), and a weight change is `ipvsadm -e`. SNAT rules (DPVS's `virtual_server match`) are kept as
//! rvsd's control protocol names them (`ipvsadm -A -H MATCH`, `-a -H MATCH -r WAN:0 -J`).

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;

mod rvsd;
pub use rvsd::{to_spec, RvsdDataplane, RETRY_INTERVAL};

/// The DPDK port behind a kernel interface name: rvsd's twin of port `dpdk0` is
/// `dpdk0.kni`, and keepalived's `interface` names the twin (where VRRP is spoken), so a
/// `vrrp_instance` without `dpdk_interface` holds its VIPs on the port its interface is the
/// twin of. Other names are returned unchanged.
pub fn port_of(interface: &str) -> &str {
    interface.strip_suffix(".kni").filter(|p| !p.is_empty()).unwrap_or(interface)
}

/// How the dataplane connection is doing, for `rvs-agent status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataplaneStatus {
    /// `rvsd`, `linux` or `fake`.
    pub kind: String,
    /// Where it is reached (rvsd's control socket).
    pub target: Option<String>,
    /// Whether the last exchange succeeded.
    pub connected: bool,
    /// The latest error not yet overcome, with rvsd's message.
    pub last_error: Option<String>,
    /// Changes waiting to be applied.
    pub pending: usize,
    /// Services are loaded only while their VIP is held (rvsd refuses a service whose VIP
    /// is not one of its addresses); see [`RvsdDataplane`].
    pub services_follow_vips: bool,
    /// Connections made again after the first (rvsd restarted, or the connection broke).
    #[serde(default)]
    pub reconnects: u64,
    /// rvsd's latest refusal of a connection-sync role change (keepalived's
    /// `lvs_sync_daemon`), until one is accepted.
    #[serde(default)]
    pub sync_error: Option<String>,
    /// The real servers rvsd's passive check (`dest_check`) holds out of scheduling now,
    /// as rvsd last listed them (every couple of seconds while a service has the check):
    /// weight 0 in rvsd whatever weight the agent gave them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub held_out: Vec<HeldOut>,
}

/// A real server held out of scheduling by rvsd's passive check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldOut {
    /// The service.
    pub service: ServiceKey,
    /// The real server, as the service holds it ([`ServiceKey::rs_addr`]).
    pub rs: SocketAddr,
}

/// A failed dataplane call.
#[derive(Debug, thiserror::Error)]
pub enum DataplaneError {
    /// The dataplane refused or could not be reached.
    #[error("dataplane: {0}")]
    Failed(String),
    /// The service is not loaded.
    #[error("no such service {0:?}")]
    NoService(ServiceKey),
}

/// Transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Proto {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// What identifies a service: `(proto, vip, vport)`, or a firewall mark and a family
/// (keepalived's `virtual_server fwmark`; rvsd's fwmark services, see
/// [`fnat::service`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServiceKey {
    /// Protocol (TCP on a fwmark service, which takes TCP and UDP: ipvsadm's form).
    pub proto: Proto,
    /// Virtual address (on a fwmark service, the unspecified address of its family).
    pub vip: IpAddr,
    /// Virtual port (0 on a fwmark service).
    pub vport: u16,
    /// The firewall mark of a fwmark service; 0 on a VIP:port service (and absent from
    /// the serialized form, which is then what it was before fwmark services).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub fwmark: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ServiceKey {
    /// The VIP:port service `proto vip:vport`.
    pub const fn new(proto: Proto, vip: IpAddr, vport: u16) -> ServiceKey {
        ServiceKey { proto, vip, vport, fwmark: 0 }
    }

    /// The fwmark service `mark` of the family of `v6`, as rvsd keys it
    /// ([`fnat::service::ServiceKey::of_fwmark`]): TCP, the unspecified address, port 0.
    pub const fn of_fwmark(mark: u32, v6: bool) -> ServiceKey {
        let vip = match v6 {
            true => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            false => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        };
        ServiceKey { proto: Proto::Tcp, vip, vport: 0, fwmark: mark }
    }

    /// Whether this is a fwmark service.
    pub const fn is_fwmark(&self) -> bool {
        self.fwmark != 0
    }

    /// The address a real (or sorry) server written `addr` and forwarded by `fwd` has in
    /// this service: `addr` for NAT and FullNAT, but the service's port for DR and TUN,
    /// which send each packet on unchanged (rvsd refuses another port): a VIP:port
    /// service's port, 0 in a fwmark service (each flow keeps its destination port).
    /// keepalived sends it so: `ipvs_group_cmd` gives a group's DR and TUN servers each
    /// `IP PORT` member's own port (only warning that the ports don't match) and port 0 in
    /// its fwmark entries; `validate_check_config` resets a `virtual_server IP PORT`'s to
    /// its port and clears a `virtual_server fwmark`'s, with a warning (the parser does
    /// the same to the configuration). A group's real servers themselves keep the port
    /// written (their checkers, status and FIFO lines), whatever its entries.
    pub fn rs_addr(&self, addr: SocketAddr, fwd: fnat::types::FwdMode) -> SocketAddr {
        match fwd.keeps_packet() {
            true => SocketAddr::new(addr.ip(), self.vport),
            false => addr,
        }
    }
}

impl std::fmt::Display for ServiceKey {
    /// `tcp 192.0.2.1:80`, `udp [2001:db8::1]:53`, `fwmark 1`, `fwmark 1 IPv6` (as rvsd
    /// names services).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let proto = match self.proto {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        };
        match (self.fwmark, self.vip) {
            (0, vip) => write!(f, "{proto} {}", SocketAddr::new(vip, self.vport)),
            (m, IpAddr::V4(_)) => write!(f, "fwmark {m}"),
            (m, IpAddr::V6(_)) => write!(f, "fwmark {m} IPv6"),
        }
    }
}

/// A real server behind a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealServer {
    /// Address and port.
    pub addr: SocketAddr,
    /// Scheduling weight; 0 keeps existing connections but takes no new ones.
    pub weight: u32,
    /// Upper connection threshold (`uthreshold`; 0: none).
    #[serde(default)]
    pub upper: u32,
    /// Lower connection threshold (`lthreshold`; 0: 3/4 of upper).
    #[serde(default)]
    pub lower: u32,
    /// How its connections are forwarded (`lb_kind` / `lvs_method`).
    #[serde(default)]
    pub fwd: fnat::types::FwdMode,
}

impl RealServer {
    /// A FullNAT real server without thresholds.
    pub fn new(addr: SocketAddr, weight: u32) -> RealServer {
        RealServer { addr, weight, upper: 0, lower: 0, fwd: Default::default() }
    }
}

/// Hash scheduler flags (`sh-port`, `sh-fallback` and their `mh-` twins).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchedFlags {
    /// Hash the source port too.
    pub port: bool,
    /// Fall back to another server when the hashed one is unavailable.
    pub fallback: bool,
}

/// A FullNAT local address and the DPDK port that owns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalAddr {
    /// The local (source) address towards real servers.
    pub addr: IpAddr,
    /// The DPDK port name, e.g. `dpdk0`.
    pub port_name: String,
    /// Also a `virtual_ipaddress` of a vrrp_instance: a LIP that moves with the VIPs
    /// (connection sync). The agent adds it to rvsd as a `sapool` address while the
    /// instance is MASTER and removes it otherwise, and the service is loaded without it
    /// on a backup (rvsd keeps it in standby); see [`RvsdDataplane`].
    #[serde(default)]
    pub moves_with_vip: bool,
}

/// A service as the dataplane holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wrr`, `wlc`, ...).
    pub scheduler: String,
    /// Persistence timeout in seconds, if any.
    pub persistence_timeout: Option<u32>,
    /// Persistence netmask (`persistence_granularity`), if any.
    pub persistence_granularity: Option<IpAddr>,
    /// FullNAT local addresses.
    pub local_addrs: Vec<LocalAddr>,
    /// Real servers.
    pub real_servers: Vec<RealServer>,
    /// The SYN proxy (`syn_proxy`); unset = rvsd's default mode.
    #[serde(default)]
    pub syn_proxy: Option<fnat::synproxy::SynProxyMode>,
    /// The PROXY protocol header (`proxy_protocol`); unset = none.
    #[serde(default)]
    pub proxy_protocol: Option<fnat::service::ProxyProtocol>,
    /// Hash scheduler flags; unset: rvsd's defaults.
    #[serde(default)]
    pub sched_flags: Option<SchedFlags>,
    /// Sources refused (`daddr_group_name`).
    #[serde(default)]
    pub deny: Vec<IpNet>,
    /// When not empty, the only sources admitted (`waddr_group_name`).
    #[serde(default)]
    pub allow: Vec<IpNet>,
    /// The idle timeout in seconds of the service's established TCP connections and of
    /// its UDP ones (DPVS's `establish_timeout`, rvsd's `conn_timeout`); 0 = rvsd's global
    /// timeouts.
    #[serde(default)]
    pub conn_timeout: u32,
    /// rvsd's passive health check (`dest_check`); unset = off.
    #[serde(default)]
    pub dest_check: Option<fnat::destcheck::DestCheck>,
    /// A connection whose real server has weight 0 ends at its next packet
    /// (`expire_quiescent_conn`, rvsd's `expire_quiescent`).
    #[serde(default)]
    pub expire_quiescent: bool,
    /// One-packet scheduling (`ops`, UDP).
    #[serde(default)]
    pub ops: bool,
}

/// What the agent needs from rvsd.
pub trait Dataplane: Send + Sync {
    /// Adds a virtual address to a DPDK port (becoming master).
    fn add_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError>;
    /// Removes a virtual address (becoming backup or fault, or stopping).
    fn del_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError>;
    /// Sends `count` gratuitous ARPs (IPv4) or unsolicited neighbour advertisements (IPv6)
    /// for `addr` from the port.
    fn send_garp(&self, addr: IpAddr, port_name: &str, count: u32) -> Result<(), DataplaneError>;
    /// Makes the loaded services exactly `services`: adds the new, removes the absent,
    /// updates the changed, leaves the identical ones (and their connections) alone.
    fn set_services(&self, services: &[Service]) -> Result<(), DataplaneError>;
    /// Sets one real server's weight (0 on failure with `inhibit_on_failure`).
    fn set_weight(&self, service: &ServiceKey, rs: SocketAddr, weight: u32) -> Result<(), DataplaneError>;
    /// Adds a real server to a service, or updates its weight.
    fn add_real_server(&self, service: &ServiceKey, rs: RealServer) -> Result<(), DataplaneError>;
    /// Makes a real server of a service `rs` in place: its weight, thresholds and
    /// forwarding method (a reload that changes more than its weight); it keeps its
    /// connections.
    fn edit_real_server(&self, service: &ServiceKey, rs: RealServer) -> Result<(), DataplaneError>;
    /// Removes a real server from a service (failure without `inhibit_on_failure`).
    fn del_real_server(&self, service: &ServiceKey, rs: SocketAddr) -> Result<(), DataplaneError>;
    /// Adds a route (`static_routes`): kept, and added again should the dataplane lose
    /// it, while the agent runs. An empty `dev` lets the dataplane pick the gateway's port.
    fn add_route(&self, route: &ctl::RouteSpec) -> Result<(), DataplaneError>;
    /// Removes a route added with [`Dataplane::add_route`] (a `virtual_routes` line when
    /// its instance leaves MASTER); no longer added again. One already gone is fine.
    fn del_route(&self, route: &ctl::RouteSpec) -> Result<(), DataplaneError>;
    /// Makes the SNAT rules this agent keeps in the dataplane exactly `rules`
    /// (keepalived.conf's `virtual_server match` blocks), rules being named by their match
    /// ([`ctl::SnatSpec::same_match`]): one the dataplane lacks is added with its WAN
    /// addresses; one it has gets its WAN addresses made `rule.wan` (one by one, so that
    /// the others' connections are untouched); one this agent added earlier and `rules`
    /// no longer has is deleted. Rules the agent never added (rvsd.toml's `[[snat]]`,
    /// `rvsadm -A -H`) are left alone unless `rules` has their match.
    fn set_snat(&self, rules: &[ctl::SnatSpec]) -> Result<(), DataplaneError>;
    /// Makes the connection-sync roles the dataplane runs `roles` (keepalived's
    /// `lvs_sync_daemon`, switched on VRRP transitions as keepalived switches IPVS's sync
    /// daemons); `why` says what asks, for messages. Kept as the wanted state: rvsd is
    /// asked to stop the roles turned off, then to start the roles turned on (all of them
    /// on every new connection, a restarted rvsd starting with its `[sync]`'s). A refusal
    /// is logged with rvsd's message once per change and does not stop anything else.
    fn set_sync_roles(&self, roles: SyncRoles, why: &str) -> Result<(), DataplaneError> {
        tracing::debug!(?roles, why, "connection-sync roles (this dataplane has none)");
        Ok(())
    }
    /// Makes the dataplane's global connection timeouts `timeouts` (keepalived's
    /// `lvs_timeouts`, `ipvsadm --set`), as keepalived sets IPVS's at start and on reload.
    /// A timeout of 0 is not set by the file: the dataplane's own value (rvsd.toml's, or
    /// what it had before the agent changed it) applies; all 0 puts back every value the
    /// agent changed. Kept as the wanted state and asked for again on every new connection
    /// (a restarted rvsd starts with rvsd.toml's timeouts); a refusal is logged with the
    /// dataplane's message.
    fn set_timeouts(&self, timeouts: LvsTimeouts) -> Result<(), DataplaneError> {
        tracing::debug!(?timeouts, "lvs_timeouts (this dataplane has none)");
        Ok(())
    }
    /// How the connection to the dataplane is doing.
    fn status(&self) -> DataplaneStatus {
        DataplaneStatus { connected: true, ..Default::default() }
    }
    /// Asks for every address the dataplane holds, whoever added it (its own
    /// configuration, `rvsip`, another agent), to be reported to `listener`, now and then
    /// as they are learnt: keepalived's checkers see the box's addresses through netlink
    /// (`ha_suspend`). Returns whether reports will come (this default: no).
    fn watch_addresses(&self, listener: AddressListener) -> bool {
        drop(listener);
        false
    }
}

/// Where a dataplane reports the addresses it holds ([`Dataplane::watch_addresses`]).
pub type AddressListener = Box<dyn Fn(BTreeSet<IpAddr>) + Send + Sync>;

/// A dataplane's [`AddressListener`], once one is set.
#[derive(Default)]
pub struct AddressReports(Mutex<Option<AddressListener>>);

impl AddressReports {
    /// Sets the listener (replacing any earlier one).
    pub fn set(&self, listener: AddressListener) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Some(listener);
    }

    /// Tells the listener, if any, that the dataplane holds exactly `addrs`.
    pub fn report(&self, addrs: BTreeSet<IpAddr>) {
        if let Some(l) = self.0.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
            l(addrs);
        }
    }
}

impl std::fmt::Debug for AddressReports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AddressReports")
    }
}

/// The connection-sync roles wanted of rvsd (ipvsadm's master and backup sync daemons),
/// as keepalived's `lvs_sync_daemon` drives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncRoles {
    /// The master role runs (this box announces its connections).
    pub master: bool,
    /// The backup role runs (this box installs its peers' connections).
    pub backup: bool,
    /// The sync id sent with each request (`--syncid`): rvsd refuses one that is not its
    /// `[sync]` syncid.
    pub syncid: u8,
}

impl SyncRoles {
    /// The roles for a VRRP state, as keepalived: master while MASTER, backup otherwise.
    pub fn for_master(master: bool, syncid: u8) -> SyncRoles {
        SyncRoles { master, backup: !master, syncid }
    }

    /// Both stopped (keepalived stops the running one when it stops).
    pub fn stopped(syncid: u8) -> SyncRoles {
        SyncRoles { master: false, backup: false, syncid }
    }

    /// The `(role, start)` requests that take rvsd from `from` (what it was last asked;
    /// `None`: unknown, as on a new connection) to `self`: stops first, then starts
    /// (keepalived's order: `ipvs_syncd_master` stops the backup daemon, then starts the
    /// master one), master before backup. With `from` unknown, or of another sync id,
    /// every role is asked for.
    pub fn requests(&self, from: Option<&SyncRoles>) -> Vec<(ctl::SyncRole, bool)> {
        let from = from.filter(|f| f.syncid == self.syncid);
        let want = [(ctl::SyncRole::Master, self.master), (ctl::SyncRole::Backup, self.backup)];
        let had = |role: ctl::SyncRole| {
            from.map(|f| match role {
                ctl::SyncRole::Master => f.master,
                ctl::SyncRole::Backup => f.backup,
            })
        };
        let stops = want.iter().filter(|(r, on)| !on && had(*r) != Some(false)).map(|(r, _)| (*r, false));
        let starts = want.iter().filter(|(r, on)| *on && had(*r) != Some(true)).map(|(r, _)| (*r, true));
        stops.chain(starts).collect()
    }
}

/// The global connection timeouts keepalived's `lvs_timeouts` sets (`ipvsadm --set TCP
/// TCPFIN UDP`, rvsd's `TimeoutsSet`), in seconds; 0: not set (the dataplane's own value).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LvsTimeouts {
    /// Established TCP connections (`tcp`).
    pub tcp: u32,
    /// TCP connections after a FIN (`tcpfin`).
    pub tcpfin: u32,
    /// UDP connections (`udp`).
    pub udp: u32,
}

impl LvsTimeouts {
    /// Whether any timeout is set (keepalived applies `lvs_timeouts` only then).
    pub fn is_set(&self) -> bool {
        *self != LvsTimeouts::default()
    }

    /// The timeouts as an array, `[tcp, tcpfin, udp]`.
    pub fn to_array(self) -> [u32; 3] {
        [self.tcp, self.tcpfin, self.udp]
    }
}

impl std::fmt::Display for LvsTimeouts {
    /// keepalived's syntax, the timeouts set only (`tcp 900 udp 60`; `none` when none is).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let set: Vec<String> = [("tcp", self.tcp), ("tcpfin", self.tcpfin), ("udp", self.udp)]
            .iter()
            .filter(|(_, v)| *v > 0)
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        if set.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&set.join(" "))
        }
    }
}

/// One recorded call on the [`FakeDataplane`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `add_vip`.
    AddVip(IpNet, String),
    /// `del_vip`.
    DelVip(IpNet, String),
    /// `send_garp`.
    Garp(IpAddr, String, u32),
    /// `set_services` with the keys given.
    SetServices(Vec<ServiceKey>),
    /// `set_weight`.
    SetWeight(ServiceKey, SocketAddr, u32),
    /// `add_real_server`.
    AddRs(ServiceKey, SocketAddr, u32),
    /// `del_real_server`.
    DelRs(ServiceKey, SocketAddr),
    /// `edit_real_server`.
    EditRs(ServiceKey, RealServer),
    /// `set_snat` with the rules' matches ([`ctl::SnatSpec::match_text`]).
    SetSnat(Vec<String>),
    /// `set_sync_roles`.
    SyncRoles(SyncRoles),
    /// `set_timeouts`.
    Timeouts(LvsTimeouts),
}

#[derive(Debug, Default)]
struct FakeState {
    vips: Vec<(IpNet, String)>,
    services: BTreeMap<ServiceKey, Service>,
    routes: Vec<ctl::RouteSpec>,
    snat: Vec<ctl::SnatSpec>,
    sync: Option<SyncRoles>,
    timeouts: Option<LvsTimeouts>,
    calls: Vec<Call>,
}

/// An in-memory dataplane: holds VIPs and services, records every call.
#[derive(Debug, Default)]
pub struct FakeDataplane {
    inner: Mutex<FakeState>,
    reports: AddressReports,
}

impl FakeDataplane {
    /// An empty dataplane.
    pub fn new() -> FakeDataplane {
        FakeDataplane::default()
    }

    /// The VIPs currently held.
    pub fn vips(&self) -> Vec<(IpNet, String)> {
        self.lock().vips.clone()
    }

    /// A loaded service.
    pub fn service(&self, key: &ServiceKey) -> Option<Service> {
        self.lock().services.get(key).cloned()
    }

    /// The routes added.
    pub fn routes(&self) -> Vec<ctl::RouteSpec> {
        self.lock().routes.clone()
    }

    /// The SNAT rules last set.
    pub fn snat(&self) -> Vec<ctl::SnatSpec> {
        self.lock().snat.clone()
    }

    /// The connection-sync roles last set.
    pub fn sync_roles(&self) -> Option<SyncRoles> {
        self.lock().sync
    }

    /// The timeouts last set ([`Dataplane::set_timeouts`]); none before the first call.
    pub fn timeouts(&self) -> Option<LvsTimeouts> {
        self.lock().timeouts
    }

    /// Every call so far, in order.
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    /// Reports `addrs` as what the dataplane holds (as rvsd's listing would), to the
    /// listener of [`Dataplane::watch_addresses`].
    pub fn report_addresses(&self, addrs: &[IpAddr]) {
        self.reports.report(addrs.iter().copied().collect());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Dataplane for FakeDataplane {
    fn add_route(&self, route: &ctl::RouteSpec) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        if !s.routes.contains(route) {
            s.routes.push(route.clone());
        }
        Ok(())
    }

    fn del_route(&self, route: &ctl::RouteSpec) -> Result<(), DataplaneError> {
        self.lock().routes.retain(|r| r != route);
        Ok(())
    }

    fn add_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        s.calls.push(Call::AddVip(addr, port_name.to_string()));
        if !s.vips.iter().any(|(a, p)| *a == addr && p == port_name) {
            s.vips.push((addr, port_name.to_string()));
        }
        Ok(())
    }

    fn del_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        s.calls.push(Call::DelVip(addr, port_name.to_string()));
        s.vips.retain(|(a, p)| !(*a == addr && p == port_name));
        Ok(())
    }

    fn send_garp(&self, addr: IpAddr, port_name: &str, count: u32) -> Result<(), DataplaneError> {
        self.lock().calls.push(Call::Garp(addr, port_name.to_string(), count));
        Ok(())
    }

    fn set_services(&self, services: &[Service]) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        s.calls.push(Call::SetServices(services.iter().map(|v| v.key).collect()));
        s.services = services.iter().map(|v| (v.key, v.clone())).collect();
        Ok(())
    }

    fn set_weight(&self, service: &ServiceKey, rs: SocketAddr, weight: u32) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        s.calls.push(Call::SetWeight(*service, rs, weight));
        let svc = s.services.get_mut(service).ok_or(DataplaneError::NoService(*service))?;
        match svc.real_servers.iter_mut().find(|r| r.addr == rs) {
            Some(r) => r.weight = weight,
            None => return Err(DataplaneError::Failed(format!("no real server {rs}"))),
        }
        Ok(())
    }

    fn add_real_server(&self, service: &ServiceKey, rs: RealServer) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        s.calls.push(Call::AddRs(*service, rs.addr, rs.weight));
        let svc = s.services.get_mut(service).ok_or(DataplaneError::NoService(*service))?;
        match svc.real_servers.iter_mut().find(|r| r.addr == rs.addr) {
            Some(r) => r.weight = rs.weight,
            None => svc.real_servers.push(rs),
        }
        Ok(())
    }

    fn del_real_server(&self, service: &ServiceKey, rs: SocketAddr) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        s.calls.push(Call::DelRs(*service, rs));
        let svc = s.services.get_mut(service).ok_or(DataplaneError::NoService(*service))?;
        svc.real_servers.retain(|r| r.addr != rs);
        Ok(())
    }

    fn edit_real_server(&self, service: &ServiceKey, rs: RealServer) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        s.calls.push(Call::EditRs(*service, rs.clone()));
        let svc = s.services.get_mut(service).ok_or(DataplaneError::NoService(*service))?;
        match svc.real_servers.iter_mut().find(|r| r.addr == rs.addr) {
            Some(r) => *r = rs,
            None => return Err(DataplaneError::Failed(format!("no real server {}", rs.addr))),
        }
        Ok(())
    }

    fn set_snat(&self, rules: &[ctl::SnatSpec]) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        s.calls.push(Call::SetSnat(rules.iter().map(ctl::SnatSpec::match_text).collect()));
        s.snat = rules.to_vec();
        Ok(())
    }

    fn set_sync_roles(&self, roles: SyncRoles, _why: &str) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        s.calls.push(Call::SyncRoles(roles));
        s.sync = Some(roles);
        Ok(())
    }

    fn set_timeouts(&self, timeouts: LvsTimeouts) -> Result<(), DataplaneError> {
        let mut s = self.lock();
        s.calls.push(Call::Timeouts(timeouts));
        s.timeouts = Some(timeouts);
        Ok(())
    }

    fn status(&self) -> DataplaneStatus {
        DataplaneStatus { kind: "fake".into(), connected: true, ..Default::default() }
    }

    fn watch_addresses(&self, listener: AddressListener) -> bool {
        self.reports.set(listener);
        true
    }
}

/// VIPs on a Linux interface through `ip addr` (the interface name is the port name);
/// services are only logged. For running VRRP without rvsd (`--dataplane linux`), as in
/// the keepalived interop tests.
#[derive(Debug, Default)]
pub struct LinuxDataplane {
    fake: FakeDataplane,
}

impl LinuxDataplane {
    /// A new one.
    pub fn new() -> LinuxDataplane {
        LinuxDataplane::default()
    }

    fn ip(args: &[&str]) -> Result<(), DataplaneError> {
        let out = std::process::Command::new("ip")
            .args(args)
            .output()
            .map_err(|e| DataplaneError::Failed(format!("ip {args:?}: {e}")))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(DataplaneError::Failed(format!("ip {args:?}: {}", String::from_utf8_lossy(&out.stderr).trim())))
        }
    }
}

impl Dataplane for LinuxDataplane {
    fn add_route(&self, r: &ctl::RouteSpec) -> Result<(), DataplaneError> {
        tracing::info!(prefix = %r.prefix, "adding static route");
        let mut args = vec!["route".to_string(), "replace".into(), r.prefix.to_string()];
        if let Some(v) = r.via {
            args.extend(["via".into(), v.to_string()]);
        }
        if !r.dev.is_empty() {
            args.extend(["dev".into(), r.dev.clone()]);
        }
        if let Some(s) = r.src {
            args.extend(["src".into(), s.to_string()]);
        }
        if r.scope == ctl::RouteScope::Link {
            args.extend(["scope".into(), "link".into()]);
        }
        args.extend(["metric".into(), r.metric.to_string()]);
        Self::ip(&args.iter().map(String::as_str).collect::<Vec<_>>())
    }

    fn del_route(&self, r: &ctl::RouteSpec) -> Result<(), DataplaneError> {
        tracing::info!(prefix = %r.prefix, "removing route");
        // Already gone is fine (as for VIPs).
        let _ = Self::ip(&["route", "del", &r.prefix.to_string(), "metric", &r.metric.to_string()]);
        Ok(())
    }

    fn add_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError> {
        tracing::info!(%addr, port_name, "adding VIP");
        let a = addr.to_string();
        // `replace` is idempotent.
        Self::ip(&["addr", "replace", &a, "dev", port_name, "nodad"])
            .or_else(|_| Self::ip(&["addr", "replace", &a, "dev", port_name]))
    }

    fn del_vip(&self, addr: IpNet, port_name: &str) -> Result<(), DataplaneError> {
        tracing::info!(%addr, port_name, "removing VIP");
        let _ = Self::ip(&["addr", "del", &addr.to_string(), "dev", port_name]);
        Ok(())
    }

    fn send_garp(&self, addr: IpAddr, port_name: &str, count: u32) -> Result<(), DataplaneError> {
        // The kernel announces the addresses it is given itself; RvsdDataplane has rvsd
        // send these from the DPDK port.
        tracing::debug!(%addr, port_name, count, "gratuitous ARP/NA (left to the kernel)");
        Ok(())
    }

    fn set_services(&self, services: &[Service]) -> Result<(), DataplaneError> {
        tracing::info!(count = services.len(), "services (not applied: no rvsd)");
        self.fake.set_services(services)
    }

    fn set_weight(&self, service: &ServiceKey, rs: SocketAddr, weight: u32) -> Result<(), DataplaneError> {
        tracing::info!(%service, %rs, weight, "weight");
        self.fake.set_weight(service, rs, weight)
    }

    fn add_real_server(&self, service: &ServiceKey, rs: RealServer) -> Result<(), DataplaneError> {
        tracing::info!(%service, rs = %rs.addr, weight = rs.weight, "add real server");
        self.fake.add_real_server(service, rs)
    }

    fn del_real_server(&self, service: &ServiceKey, rs: SocketAddr) -> Result<(), DataplaneError> {
        tracing::info!(%service, %rs, "remove real server");
        self.fake.del_real_server(service, rs)
    }

    fn edit_real_server(&self, service: &ServiceKey, rs: RealServer) -> Result<(), DataplaneError> {
        tracing::info!(%service, rs = %rs.addr, weight = rs.weight, fwd = ?rs.fwd, "edit real server");
        self.fake.edit_real_server(service, rs)
    }

    fn set_snat(&self, rules: &[ctl::SnatSpec]) -> Result<(), DataplaneError> {
        tracing::info!(count = rules.len(), "SNAT rules (not applied: no rvsd)");
        self.fake.set_snat(rules)
    }

    fn set_sync_roles(&self, roles: SyncRoles, why: &str) -> Result<(), DataplaneError> {
        tracing::info!(
            master = roles.master,
            backup = roles.backup,
            syncid = roles.syncid,
            why,
            "connection-sync roles (not applied: no rvsd)"
        );
        self.fake.set_sync_roles(roles, why)
    }

    fn set_timeouts(&self, timeouts: LvsTimeouts) -> Result<(), DataplaneError> {
        tracing::info!(
            tcp = timeouts.tcp,
            tcpfin = timeouts.tcpfin,
            udp = timeouts.udp,
            "lvs_timeouts (not applied: no rvsd)"
        );
        self.fake.set_timeouts(timeouts)
    }

    fn status(&self) -> DataplaneStatus {
        DataplaneStatus { kind: "linux".into(), connected: true, ..Default::default() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ServiceKey {
        ServiceKey::new(Proto::Tcp, "192.0.2.1".parse().unwrap(), 80)
    }

    /// The requests of a sync role change: keepalived's order (stops, then starts), only
    /// what changed, everything when what rvsd runs is unknown or of another sync id.
    #[test]
    fn sync_role_changes_become_keepalived_s_requests() {
        use ctl::SyncRole::{Backup, Master};
        let backup = SyncRoles::for_master(false, 5);
        let master = SyncRoles::for_master(true, 5);
        assert_eq!(backup.requests(None), [(Master, false), (Backup, true)]);
        assert_eq!(master.requests(None), [(Backup, false), (Master, true)]);
        assert_eq!(master.requests(Some(&backup)), [(Backup, false), (Master, true)]);
        assert_eq!(backup.requests(Some(&master)), [(Master, false), (Backup, true)]);
        assert_eq!(backup.requests(Some(&backup)), []);
        assert_eq!(SyncRoles::stopped(5).requests(Some(&master)), [(Master, false)]);
        assert_eq!(SyncRoles::stopped(5).requests(Some(&backup)), [(Backup, false)]);
        let both = SyncRoles { master: true, backup: true, syncid: 0 };
        assert_eq!(both.requests(None), [(Master, true), (Backup, true)]);
        assert_eq!(SyncRoles::stopped(0).requests(Some(&both)), [(Master, false), (Backup, false)]);
        // Another sync id: all asked again.
        assert_eq!(SyncRoles::for_master(true, 6).requests(Some(&master)), [(Backup, false), (Master, true)]);
    }

    #[test]
    fn fake_tracks_vips_services_and_weights() {
        let dp = FakeDataplane::new();
        let vip: IpNet = "192.0.2.1/32".parse().unwrap();
        dp.add_vip(vip, "dpdk0").unwrap();
        dp.add_vip(vip, "dpdk0").unwrap();
        assert_eq!(dp.vips(), vec![(vip, "dpdk0".to_string())]);
        let rs: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let svc = Service {
            key: key(),
            scheduler: "rr".into(),
            persistence_timeout: None,
            persistence_granularity: None,
            syn_proxy: None,
            proxy_protocol: None,
            sched_flags: None,
            deny: Vec::new(),
            allow: Vec::new(),
            conn_timeout: 0,
            dest_check: None,
            expire_quiescent: false,
            ops: false,
            local_addrs: vec![LocalAddr {
                addr: "10.0.0.100".parse().unwrap(),
                port_name: "dpdk1".into(),
                moves_with_vip: false,
            }],
            real_servers: vec![RealServer::new(rs, 100)],
        };
        dp.set_services(&[svc]).unwrap();
        dp.set_weight(&key(), rs, 0).unwrap();
        assert_eq!(dp.service(&key()).unwrap().real_servers[0].weight, 0);
        dp.del_real_server(&key(), rs).unwrap();
        assert!(dp.service(&key()).unwrap().real_servers.is_empty());
        dp.del_vip(vip, "dpdk0").unwrap();
        assert!(dp.vips().is_empty());
        let other = ServiceKey { vport: 81, ..key() };
        assert!(matches!(dp.set_weight(&other, rs, 1), Err(DataplaneError::NoService(_))));
        assert_eq!(dp.calls().len(), 7);
    }
}
